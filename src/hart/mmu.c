/*
 * Address translation and the slow memory paths: Sv39/Sv48/Sv57 page walks
 * with hardware A/D updates (as QEMU 7.2 does), PMP (TOR/NA4/NAPOT, lock
 * bits), TLB fills, MMIO dispatch, misaligned accesses and AMOs.
 *
 * Every guest physical address goes through gmem_ptr()/gmem_contains() or
 * the MMIO callbacks.  TLB entries are filled only for whole RAM pages with
 * uniform PMP permission; write entries only for pages without decoded code,
 * after marking them dirty (see hart_int.h for the invariants).
 */
#include "hart/hart_int.h"
#include "hart/ops.h"

#define PTE_V    (1ull << 0)
#define PTE_R    (1ull << 1)
#define PTE_W    (1ull << 2)
#define PTE_X    (1ull << 3)
#define PTE_U    (1ull << 4)
#define PTE_A    (1ull << 6)
#define PTE_D    (1ull << 7)
#define PPN_MASK ((1ull << 44) - 1)

/* ---- TLB maintenance ------------------------------------------------------ */

static void tlb_clear(struct rv_tlb_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        e[i].tag = RV_TLB_INVALID;
}

/* Everything translated through satp: U and S modes (M is bare). */
void rv_tlb_flush(struct rv_hart *h)
{
    static const unsigned dm[] = {RV_DMODE_U, RV_DMODE_S, RV_DMODE_S_SUM};

    for (unsigned i = 0; i < GW_ARRAY_SIZE(dm); i++) {
        tlb_clear(h->dtlbs[dm[i]].r, RV_TLB_SIZE);
        tlb_clear(h->dtlbs[dm[i]].w, RV_TLB_SIZE);
    }
    tlb_clear(h->itlbs[RV_IMODE_U], RV_TLB_SIZE);
    tlb_clear(h->itlbs[RV_IMODE_S], RV_TLB_SIZE);
    /* the jump caches bypass the fetch TLB, so they go too */
    for (unsigned m = RV_IMODE_U; m <= RV_IMODE_S; m++)
        for (unsigned i = 0; i < RV_JC_SIZE; i++)
            h->jcs[m][i].pc = 1;
}

void rv_tlb_flush_write(struct rv_hart *h)
{
    for (unsigned m = 0; m < RV_DMODE_N; m++)
        tlb_clear(h->dtlbs[m].w, RV_TLB_SIZE);
}

void rv_tlb_flush_data(struct rv_hart *h)
{
    for (unsigned m = 0; m < RV_DMODE_N; m++) {
        tlb_clear(h->dtlbs[m].r, RV_TLB_SIZE);
        tlb_clear(h->dtlbs[m].w, RV_TLB_SIZE);
    }
}

void rv_tlb_evict_wpage(struct rv_hart *h, uint64_t ppage)
{
    for (unsigned m = 0; m < RV_DMODE_N; m++)
        for (unsigned i = 0; i < RV_TLB_SIZE; i++)
            if (h->dtlbs[m].w[i].ppage == ppage)
                h->dtlbs[m].w[i].tag = RV_TLB_INVALID;
}

/* ---- PMP (priv spec §3.7) --------------------------------------------------- */

enum { PMP_R = 1, PMP_W = 2, PMP_X = 4, PMP_L = 0x80 };

/* Inclusive address range of entry i; false if it matches nothing. */
static bool pmp_range(const struct rv_hart *h, unsigned i, uint64_t *lo, uint64_t *hi)
{
    uint8_t cfg = h->pmpcfg[i];
    uint64_t a = h->pmpaddr[i];

    switch ((cfg >> 3) & 3) {
    case 1: { /* TOR */
        uint64_t base = i ? h->pmpaddr[i - 1] << 2 : 0, top = a << 2;
        if (top <= base)
            return false;
        *lo = base;
        *hi = top - 1;
        return true;
    }
    case 2: /* NA4 */
        *lo = a << 2;
        *hi = *lo + 3;
        return true;
    case 3: { /* NAPOT: trailing ones give the size (as QEMU 7.2 decodes) */
        unsigned t;
        if (a == UINT64_MAX) {
            *lo = 0;
            *hi = UINT64_MAX;
            return true;
        }
        t = (unsigned)__builtin_ctzll(~a);
        *lo = (a & ~((1ull << t) - 1)) << 2;
        *hi = t + 3 >= 64 ? UINT64_MAX : *lo + ((1ull << (t + 3)) - 1);
        return true;
    }
    default: return false;
    }
}

bool rv_pmp_check(const struct rv_hart *h, uint64_t pa, unsigned size, enum rv_access acc,
                  unsigned priv)
{
    uint64_t last = pa + size - 1, lo, hi;

    for (unsigned i = 0; i < h->pmp_n; i++) {
        uint8_t cfg = h->pmpcfg[i];
        if (!pmp_range(h, i, &lo, &hi) || last < lo || pa > hi)
            continue;
        if (pa < lo || last > hi)
            return false; /* an access must lie entirely within its entry */
        if (priv == RV_PRV_M && !(cfg & PMP_L))
            return true;
        return (cfg & (acc == RV_ACC_R ? PMP_R : acc == RV_ACC_W ? PMP_W : PMP_X)) != 0;
    }
    /* no match: M succeeds; S/U fail when PMP is implemented (QEMU 7.2 even
     * with zero active rules) */
    return priv == RV_PRV_M || h->pmp_n == 0;
}

/* True if one PMP decision holds for the whole 4 KiB page (TLB-cacheable). */
static bool pmp_page_uniform(const struct rv_hart *h, uint64_t page)
{
    uint64_t lo, hi;

    for (unsigned i = 0; i < h->pmp_n; i++) {
        if (!pmp_range(h, i, &lo, &hi) || page + 4095 < lo || page > hi)
            continue;
        return lo <= page && hi >= page + 4095;
    }
    return true;
}

void rv_pmp_changed(struct rv_hart *h)
{
    h->pmp_active = 0;
    for (unsigned i = 0; i < h->pmp_n; i++)
        if ((h->pmpcfg[i] >> 3) & 3)
            h->pmp_active++;
    rv_tlb_flush(h);
    tlb_clear(h->dtlbs[RV_DMODE_M].r, RV_TLB_SIZE);
    tlb_clear(h->dtlbs[RV_DMODE_M].w, RV_TLB_SIZE);
    tlb_clear(h->itlbs[RV_IMODE_M], RV_TLB_SIZE);
    for (unsigned i = 0; i < RV_JC_SIZE; i++)
        h->jcs[RV_IMODE_M][i].pc = 1;
}

/* ---- page walk (priv spec §4.3.2, §4.4, §4.5) ------------------------------ */

static uint64_t fault_cause(enum rv_access acc, bool page)
{
    if (page)
        return acc == RV_ACC_X   ? RV_EXC_INSN_PAGE
               : acc == RV_ACC_W ? RV_EXC_STORE_PAGE
                                 : RV_EXC_LOAD_PAGE;
    return acc == RV_ACC_X   ? RV_EXC_INSN_ACCESS
           : acc == RV_ACC_W ? RV_EXC_STORE_ACCESS
                             : RV_EXC_LOAD_ACCESS;
}

static int fail(struct rv_hart *h, enum rv_access acc, bool page, uint64_t va)
{
    h->exc_cause = fault_cause(acc, page);
    h->exc_tval = va;
    return -1;
}

/* Effective privilege, SUM and MXR for an access of kind acc. */
static unsigned access_priv(const struct rv_hart *h, enum rv_access acc)
{
    if (acc != RV_ACC_X && h->priv == RV_PRV_M && (h->mstatus & MSTATUS_MPRV))
        return (unsigned)((h->mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
    return h->priv;
}

/*
 * Translate va for an access of kind acc at privilege priv.  On success
 * stores the physical address; on failure sets exc_cause/exc_tval and
 * returns -1.  PMP on the final address is left to the caller.
 */
static int translate(struct rv_hart *h, uint64_t va, enum rv_access acc, unsigned priv,
                     uint64_t *pa)
{
    unsigned mode = (unsigned)(h->satp >> 60), levels;
    bool sum = (h->mstatus & MSTATUS_SUM) != 0, mxr = (h->mstatus & MSTATUS_MXR) != 0;
    uint64_t a;

    if (priv == RV_PRV_M || mode == 0) {
        *pa = va;
        return 0;
    }
    levels = mode == 8 ? 3 : mode == 9 ? 4 : 5;
    {
        unsigned vabits = 12 + 9 * levels;
        int64_t canon = (int64_t)(va << (64 - vabits)) >> (64 - vabits);
        if ((uint64_t)canon != va)
            return fail(h, acc, true, va);
    }
    a = (h->satp & PPN_MASK) << 12;
    for (int i = (int)levels - 1; i >= 0; i--) {
        unsigned shift = 12 + 9 * (unsigned)i;
        uint64_t pte_pa = a + ((va >> shift) & 511) * 8, pte, ppn;
        uint8_t *p;

        /* implicit walk accesses are checked as S-mode reads (§3.7.1) */
        if (!rv_pmp_check(h, pte_pa, 8, RV_ACC_R, RV_PRV_S))
            return fail(h, acc, false, va);
        p = gmem_ptr(h->mem, pte_pa, 8);
        if (!p)
            return fail(h, acc, false, va);
        memcpy(&pte, p, 8);
        if (!(pte & PTE_V) || (!(pte & PTE_R) && (pte & PTE_W)) || (pte >> 54))
            return fail(h, acc, true, va);
        ppn = (pte >> 10) & PPN_MASK;
        if (!(pte & (PTE_R | PTE_X))) {
            a = ppn << 12;
            continue;
        }
        /* leaf */
        if (i > 0 && (ppn & ((1ull << (9 * i)) - 1)))
            return fail(h, acc, true, va); /* misaligned superpage */
        if (priv == RV_PRV_U) {
            if (!(pte & PTE_U))
                return fail(h, acc, true, va);
        } else if ((pte & PTE_U) && (acc == RV_ACC_X || !sum)) {
            return fail(h, acc, true, va);
        }
        if ((acc == RV_ACC_R && !((pte & PTE_R) || (mxr && (pte & PTE_X)))) ||
            (acc == RV_ACC_W && !(pte & PTE_W)) || (acc == RV_ACC_X && !(pte & PTE_X)))
            return fail(h, acc, true, va);
        {
            uint64_t npte = pte | PTE_A | (acc == RV_ACC_W ? PTE_D : 0);
            if (npte != pte) {
                /* hardware A/D update, like QEMU 7.2 (Svadu behaviour) */
                memcpy(p, &npte, 8);
                gmem_mark_dirty(h->mem, pte_pa, 8);
                if (rv_page_has_code(h, pte_pa))
                    rv_code_write(h, pte_pa, 8);
            }
        }
        *pa = (ppn << 12) | (va & ((1ull << shift) - 1));
        return 0;
    }
    return fail(h, acc, true, va);
}

/* ---- TLB fill ---------------------------------------------------------------- */

static void tlb_fill(struct rv_tlb_entry *e, uint64_t va, uint64_t pa, uint8_t *host)
{
    e->tag = va & RV_PAGE_MASK;
    e->addend = (uintptr_t)(host - (pa & 0xfff)) - (uintptr_t)(va & RV_PAGE_MASK);
    e->ppage = pa & RV_PAGE_MASK;
}

static bool page_in_ram(const struct rv_hart *h, uint64_t pa)
{
    return gmem_contains(h->mem, pa & RV_PAGE_MASK, 4096);
}

int rv_fetch_translate(struct rv_hart *h, uint64_t va, uint64_t *pa, uint8_t **host)
{
    struct rv_tlb_entry *e = &h->itlb[(va >> 12) & (RV_TLB_SIZE - 1)];
    uint64_t p;

    if (e->tag == (va & RV_PAGE_MASK)) {
        *host = (uint8_t *)(uintptr_t)(va + e->addend);
        *pa = e->ppage | (va & 0xfff);
        return 0;
    }
    if (translate(h, va, RV_ACC_X, h->priv, &p))
        return -1;
    if (!rv_pmp_check(h, p, 2, RV_ACC_X, h->priv))
        return fail(h, RV_ACC_X, false, va);
    *pa = p;
    if (!page_in_ram(h, p)) {
        *host = NULL; /* e.g. the reset ROM: the caller fetches through MMIO */
        return 0;
    }
    *host = gmem_ptr(h->mem, p, 1);
    if (pmp_page_uniform(h, p & RV_PAGE_MASK))
        tlb_fill(e, va, p, *host);
    return 0;
}

/* Data translation + PMP for one naturally aligned access. */
static int data_pa(struct rv_hart *h, uint64_t va, unsigned size, enum rv_access acc, uint64_t *pa,
                   unsigned *priv)
{
    *priv = access_priv(h, acc);
    if (translate(h, va, acc, *priv, pa))
        return -1;
    if (!rv_pmp_check(h, *pa, size, acc, *priv))
        return fail(h, acc, false, va);
    return 0;
}

static int load_aligned(struct rv_hart *h, uint64_t va, unsigned size, uint64_t *val)
{
    uint64_t pa, v = 0;
    unsigned priv;
    uint8_t *host;

    if (data_pa(h, va, size, RV_ACC_R, &pa, &priv))
        return -1;
    host = gmem_ptr(h->mem, pa, size);
    if (host) {
        memcpy(&v, host, size); /* little-endian host */
        if (pmp_page_uniform(h, pa & RV_PAGE_MASK))
            tlb_fill(&h->dtlb->r[(va >> 12) & (RV_TLB_SIZE - 1)], va, pa, host);
    } else if (!h->env.mmio_read || h->env.mmio_read(h->env.opaque, pa, size, &v) < 0) {
        return fail(h, RV_ACC_R, false, va);
    }
    *val = v;
    return 0;
}

/* Returns 1 if decoded code was overwritten. */
static int store_ram(struct rv_hart *h, uint64_t va, uint64_t pa, uint8_t *host, unsigned size,
                     uint64_t val)
{
    uint64_t ppage = pa & RV_PAGE_MASK;
    int modified = 0;
    uint64_t gen;

    if (rv_page_has_code(h, pa) && rv_code_write(h, pa, size))
        modified = 1;
    memcpy(host, &val, size);
    gmem_mark_dirty(h->mem, ppage, 1);
    gen = atomic_load_explicit(&h->mem->dirty_gen, memory_order_acquire);
    if (gen != h->dirty_gen) {
        rv_tlb_flush_write(h);
        h->dirty_gen = gen;
    }
    if (!rv_page_has_code(h, pa) && pmp_page_uniform(h, ppage))
        tlb_fill(&h->dtlb->w[(va >> 12) & (RV_TLB_SIZE - 1)], va, pa, host);
    return modified;
}

static int store_aligned(struct rv_hart *h, uint64_t va, unsigned size, uint64_t val)
{
    uint64_t pa;
    unsigned priv;
    uint8_t *host;

    if (data_pa(h, va, size, RV_ACC_W, &pa, &priv))
        return -1;
    host = gmem_ptr(h->mem, pa, size);
    if (host)
        return store_ram(h, va, pa, host, size, val);
    if (!h->env.mmio_write || h->env.mmio_write(h->env.opaque, pa, size, val) < 0)
        return fail(h, RV_ACC_W, false, va);
    return 0;
}

/*
 * QEMU 7.2 performs misaligned loads and stores (no address-misaligned
 * trap).  We split them into bytes; a store first checks that both pages
 * are writable so a fault leaves memory untouched, and a fault on the second
 * page reports that page's first address, as QEMU does.
 */
int rv_load_slow(struct rv_hart *h, uint64_t va, unsigned size, uint64_t *val)
{
    uint64_t v = 0, b;

    if (gw_likely((va & (size - 1)) == 0))
        return load_aligned(h, va, size, val);
    for (unsigned i = 0; i < size; i++) {
        if (load_aligned(h, va + i, 1, &b))
            return -1;
        v |= b << (8 * i);
    }
    *val = v;
    return 0;
}

int rv_store_slow(struct rv_hart *h, uint64_t va, unsigned size, uint64_t val)
{
    uint64_t pa;
    unsigned priv;
    int modified = 0;

    if (gw_likely((va & (size - 1)) == 0))
        return store_aligned(h, va, size, val);
    if (data_pa(h, va, 1, RV_ACC_W, &pa, &priv))
        return -1;
    if (((va + size - 1) ^ va) & RV_PAGE_MASK) {
        uint64_t va2 = (va + size - 1) & RV_PAGE_MASK;
        if (data_pa(h, va2, 1, RV_ACC_W, &pa, &priv))
            return -1;
    }
    for (unsigned i = 0; i < size; i++) {
        int r = store_aligned(h, va + i, 1, (val >> (8 * i)) & 0xff);
        if (r < 0)
            return -1;
        modified |= r;
    }
    return modified;
}

/* ---- AMOs and LR/SC (unpriv spec ch. 8) ------------------------------------- */

static uint64_t amo_op(unsigned f5, uint64_t old, uint64_t src, bool dword)
{
    if (!dword) {
        old = (uint64_t)(int64_t)(int32_t)old;
        src = (uint64_t)(int64_t)(int32_t)src;
    }
    switch (f5) {
    case RV_AMO_SWAP: return src;
    case RV_AMO_ADD: return old + src;
    case RV_AMO_XOR: return old ^ src;
    case RV_AMO_AND: return old & src;
    case RV_AMO_OR: return old | src;
    case RV_AMO_MIN: return (int64_t)old < (int64_t)src ? old : src;
    case RV_AMO_MAX: return (int64_t)old > (int64_t)src ? old : src;
    case RV_AMO_MINU: return old < src ? old : src;
    case RV_AMO_MAXU: return old > src ? old : src;
    default: return old;
    }
}

int rv_amo(struct rv_hart *h, const struct rv_insn *ins, bool dword)
{
    unsigned size = dword ? 8 : 4, f5 = ins->rm, priv;
    uint64_t va = h->x[ins->rs1], pa, old = 0;
    uint8_t *host;

    if (f5 == RV_AMO_SC) {
        /* QEMU semantics: fail without any access unless the address matches
         * the LR; succeed iff memory still holds the value LR loaded. */
        uint64_t expect = h->resv_val;
        bool match = h->resv_addr == va;
        h->resv_addr = UINT64_MAX;
        if (!match) {
            h->x[ins->rd] = 1;
            return 0;
        }
        if (data_pa(h, va, size, RV_ACC_W, &pa, &priv))
            return -1;
        host = gmem_ptr(h->mem, pa, size);
        if (!host)
            return fail(h, RV_ACC_W, false, va);
        memcpy(&old, host, size);
        if (dword ? old != expect : (uint32_t)old != (uint32_t)expect) {
            h->x[ins->rd] = 1;
            return 0;
        }
        {
            uint64_t src = h->x[ins->rs2];
            h->x[ins->rd] = 0;
            return store_ram(h, va, pa, host, size, src);
        }
    }
    /* QEMU 7.2 reports misaligned LR/AMO as a load address-misaligned trap */
    if (va & (size - 1)) {
        h->exc_cause = RV_EXC_LOAD_MISALIGNED;
        h->exc_tval = va;
        return -1;
    }
    if (f5 == RV_AMO_LR) {
        if (load_aligned(h, va, size, &old))
            return -1;
        if (!dword)
            old = (uint64_t)(int64_t)(int32_t)old;
        h->resv_addr = va;
        h->resv_val = old;
        h->x[ins->rd] = old;
        return 0;
    }
    if (data_pa(h, va, size, RV_ACC_W, &pa, &priv))
        return -1;
    if (!rv_pmp_check(h, pa, size, RV_ACC_R, priv))
        return fail(h, RV_ACC_W, false, va);
    host = gmem_ptr(h->mem, pa, size);
    if (!host)
        return fail(h, RV_ACC_W, false, va); /* no atomics on MMIO */
    memcpy(&old, host, size);
    {
        uint64_t src = h->x[ins->rs2], nv = amo_op(f5, old, src, dword);
        if (!dword)
            old = (uint64_t)(int64_t)(int32_t)old;
        h->x[ins->rd] = old;
        return store_ram(h, va, pa, host, size, nv);
    }
}
