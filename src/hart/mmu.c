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

void rv_tlb_clear(struct rv_tlb *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        t->e[t->log[i]].tag = RV_TLB_INVALID;
    t->n = 0;
}

void rv_tlb_clear_all(struct rv_hart *h)
{
    for (unsigned m = 0; m < RV_DMODE_N; m++) {
        rv_tlb_clear(&h->dtlbs[m].r);
        rv_tlb_clear(&h->dtlbs[m].w);
    }
    for (unsigned m = 0; m < RV_IMODE_N; m++)
        rv_tlb_clear(&h->itlbs[m]);
    rv_jc_flush(h);
}

/* Everything translated through satp: U and S modes (M is bare). */
void rv_tlb_flush(struct rv_hart *h)
{
    h->super_n = 0;
    h->super_overflow = false;
    memset(h->fetch_pages, 0, sizeof(h->fetch_pages));
    static const unsigned dm[] = {RV_DMODE_U, RV_DMODE_S, RV_DMODE_S_SUM};

    for (unsigned i = 0; i < GW_ARRAY_SIZE(dm); i++) {
        rv_tlb_clear(&h->dtlbs[dm[i]].r);
        rv_tlb_clear(&h->dtlbs[dm[i]].w);
    }
    rv_tlb_clear(&h->itlbs[RV_IMODE_U]);
    rv_tlb_clear(&h->itlbs[RV_IMODE_S]);
    /* the jump caches bypass the fetch TLB, so they go too */
    rv_jc_clear(&h->jcs[RV_IMODE_U]);
    rv_jc_clear(&h->jcs[RV_IMODE_S]);
}

static void drop_page(struct rv_tlb *t, uint64_t page)
{
    struct rv_tlb_entry *e = &t->e[(page >> 12) & (RV_TLB_SIZE - 1)];

    if (e->tag == page)
        e->tag = RV_TLB_INVALID;
}

/*
 * SFENCE.VMA with an address (priv spec §4.2.1): drop the U/S translations
 * of that page.  Entries are 4 KiB pieces of possibly larger pages, so if a
 * superpage around the address may be cached, flush everything instead.
 * The jump caches map a pc to a block through the old translation; the
 * entries for one page sit in a window of RV_JC_SIZE/2 slots.
 */
void rv_tlb_flush_page(struct rv_hart *h, uint64_t va)
{
    static const unsigned dm[] = {RV_DMODE_U, RV_DMODE_S, RV_DMODE_S_SUM};
    uint64_t page = va & RV_PAGE_MASK;
    unsigned base = (unsigned)(page >> 1) & (RV_JC_SIZE - 1);

    if (h->super_overflow) {
        rv_tlb_flush(h);
        return;
    }
    for (unsigned i = 0; i < h->super_n; i++) {
        if (h->super_region[i] == va >> 30) {
            rv_tlb_flush(h);
            return;
        }
    }
    for (unsigned i = 0; i < GW_ARRAY_SIZE(dm); i++) {
        drop_page(&h->dtlbs[dm[i]].r, page);
        drop_page(&h->dtlbs[dm[i]].w, page);
    }
    drop_page(&h->itlbs[RV_IMODE_U], page);
    drop_page(&h->itlbs[RV_IMODE_S], page);
    if (!((h->fetch_pages[(page >> 18) & 63] >> ((page >> 12) & 63)) & 1))
        return;
    for (unsigned m = RV_IMODE_U; m <= RV_IMODE_S; m++) {
        for (unsigned k = 0; k < 2048; k++) {
            struct rv_jc_entry *e = &h->jcs[m].e[(base + k) & (RV_JC_SIZE - 1)];
            if ((e->pc & RV_PAGE_MASK) == page)
                e->pc = 1;
        }
    }
}

/* A translation through a superpage was made: remember its region. */
static void note_superpage(struct rv_hart *h, uint64_t va, unsigned shift)
{
    if (shift > 30) {
        h->super_overflow = true;
        return;
    }
    for (unsigned i = 0; i < h->super_n; i++)
        if (h->super_region[i] == va >> 30)
            return;
    if (h->super_n == GW_ARRAY_SIZE(h->super_region))
        h->super_overflow = true;
    else
        h->super_region[h->super_n++] = va >> 30;
}

void rv_tlb_flush_write(struct rv_hart *h)
{
    for (unsigned m = 0; m < RV_DMODE_N; m++)
        rv_tlb_clear(&h->dtlbs[m].w);
}

void rv_tlb_flush_data(struct rv_hart *h)
{
    for (unsigned m = 0; m < RV_DMODE_N; m++) {
        rv_tlb_clear(&h->dtlbs[m].r);
        rv_tlb_clear(&h->dtlbs[m].w);
    }
}

/* Drop write entries that map guest physical page ppage (it now has code). */
void rv_tlb_evict_wpage(struct rv_hart *h, uint64_t ppage)
{
    uintptr_t host = (uintptr_t)gmem_ptr(h->mem, ppage, 1);

    for (unsigned m = 0; m < RV_DMODE_N; m++) {
        struct rv_tlb *t = &h->dtlbs[m].w;
        for (uint32_t i = 0; i < t->n; i++) {
            struct rv_tlb_entry *e = &t->e[t->log[i]];
            if (e->tag != RV_TLB_INVALID && (uintptr_t)(e->tag + e->addend) == host)
                e->tag = RV_TLB_INVALID;
        }
    }
}

static void tlb_fill(struct rv_tlb *t, uint64_t va, uint8_t *host)
{
    unsigned idx = (unsigned)(va >> 12) & (RV_TLB_SIZE - 1);
    struct rv_tlb_entry *e = &t->e[idx];

    if (e->tag == RV_TLB_INVALID) {
        if (t->n == RV_TLB_SIZE) /* entries evicted one by one were re-filled */
            rv_tlb_clear(t);
        t->log[t->n++] = (uint16_t)idx;
    }
    e->tag = va & RV_PAGE_MASK;
    e->addend = (uintptr_t)(host - (va & 0xfff)) - (uintptr_t)(va & RV_PAGE_MASK);
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
    uint64_t last = pa + size - 1;

    if (priv == RV_PRV_M && h->pmp_m_open)
        return true;
    for (uint32_t on = h->pmp_on; on; on &= on - 1) {
        unsigned i = (unsigned)__builtin_ctz(on);
        uint8_t cfg = h->pmpcfg[i];
        if (last < h->pmp_lo[i] || pa > h->pmp_hi[i])
            continue;
        if (pa < h->pmp_lo[i] || last > h->pmp_hi[i])
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
static bool pmp_page_uniform(const struct rv_hart *h, uint64_t page, unsigned priv)
{
    if (priv == RV_PRV_M && h->pmp_m_open)
        return true;
    for (uint32_t on = h->pmp_on; on; on &= on - 1) {
        unsigned i = (unsigned)__builtin_ctz(on);
        if (page + 4095 < h->pmp_lo[i] || page > h->pmp_hi[i])
            continue;
        return h->pmp_lo[i] <= page && h->pmp_hi[i] >= page + 4095;
    }
    return true;
}

void rv_pmp_changed(struct rv_hart *h)
{
    h->pmp_active = 0;
    h->pmp_on = 0;
    h->pmp_m_open = true;
    for (unsigned i = 0; i < h->pmp_n; i++) {
        if ((h->pmpcfg[i] >> 3) & 3) {
            h->pmp_active++;
            if (h->pmpcfg[i] & PMP_L)
                h->pmp_m_open = false;
        }
        if (pmp_range(h, i, &h->pmp_lo[i], &h->pmp_hi[i]))
            h->pmp_on |= 1u << i;
    }
    rv_tlb_clear_all(h);
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
                rv_mark_dirty(h, pte_pa, 8);
                if (rv_page_has_code(h, pte_pa))
                    rv_code_write(h, pte_pa, 8);
            }
        }
        *pa = (ppn << 12) | (va & ((1ull << shift) - 1));
        if (shift > 12)
            note_superpage(h, va, shift);
        return 0;
    }
    return fail(h, acc, true, va);
}

/* ---- TLB fill and slow paths ------------------------------------------------ */

static bool page_in_ram(const struct rv_hart *h, uint64_t pa)
{
    return gmem_contains(h->mem, pa & RV_PAGE_MASK, 4096);
}

int rv_fetch_translate(struct rv_hart *h, uint64_t va, uint64_t *pa, uint8_t **host)
{
    struct rv_tlb_entry *e = &h->itlb->e[(va >> 12) & (RV_TLB_SIZE - 1)];
    uint64_t p;

    if (e->tag == (va & RV_PAGE_MASK)) {
        *host = (uint8_t *)(uintptr_t)(va + e->addend);
        *pa = (uint64_t)(*host - h->mem->host) + h->mem->base;
        return 0;
    }
    if (translate(h, va, RV_ACC_X, h->priv, &p))
        return -1;
    if (h->priv != RV_PRV_M)
        h->fetch_pages[(va >> 18) & 63] |= 1ull << ((va >> 12) & 63);
    if (!rv_pmp_check(h, p, 2, RV_ACC_X, h->priv))
        return fail(h, RV_ACC_X, false, va);
    *pa = p;
    if (!page_in_ram(h, p)) {
        *host = NULL; /* e.g. the reset ROM: the caller fetches through MMIO */
        return 0;
    }
    *host = gmem_ptr(h->mem, p, 1);
    if (pmp_page_uniform(h, p & RV_PAGE_MASK, h->priv))
        tlb_fill(h->itlb, va, *host);
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

/* MMIO in naturally aligned pieces (byte by byte if misaligned). */
static int mmio_load(struct rv_hart *h, uint64_t pa, unsigned size, uint64_t *val)
{
    uint64_t v = 0, b;

    if (!h->env.mmio_read)
        return -1;
    if ((pa & (size - 1)) == 0 && (size & (size - 1)) == 0)
        return h->env.mmio_read(h->env.opaque, pa, size, val) < 0 ? -1 : 0;
    for (unsigned i = 0; i < size; i++) {
        if (h->env.mmio_read(h->env.opaque, pa + i, 1, &b) < 0)
            return -1;
        v |= (b & 0xff) << (8 * i);
    }
    *val = v;
    return 0;
}

static int mmio_store(struct rv_hart *h, uint64_t pa, unsigned size, uint64_t val)
{
    if (!h->env.mmio_write)
        return -1;
    if ((pa & (size - 1)) == 0 && (size & (size - 1)) == 0)
        return h->env.mmio_write(h->env.opaque, pa, size, val) < 0 ? -1 : 0;
    for (unsigned i = 0; i < size; i++)
        if (h->env.mmio_write(h->env.opaque, pa + i, 1, (val >> (8 * i)) & 0xff) < 0)
            return -1;
    return 0;
}

/* A load of 1..8 bytes that does not cross a page. */
static int load_page(struct rv_hart *h, uint64_t va, unsigned size, uint64_t *val)
{
    uint64_t pa, v = 0;
    unsigned priv;
    uint8_t *host;

    if (data_pa(h, va, size, RV_ACC_R, &pa, &priv))
        return -1;
    host = gmem_ptr(h->mem, pa, size);
    if (host) {
        switch (size) { /* little-endian host */
        case 1: v = *host; break;
        case 2: memcpy(&v, host, 2); break;
        case 4: memcpy(&v, host, 4); break;
        case 8: memcpy(&v, host, 8); break;
        default: memcpy(&v, host, size); break;
        }
        if (pmp_page_uniform(h, pa & RV_PAGE_MASK, priv))
            tlb_fill(&h->dtlb->r, va, host);
    } else if (mmio_load(h, pa, size, &v)) {
        return fail(h, RV_ACC_R, false, va);
    }
    *val = v;
    return 0;
}

/* Returns 1 if decoded code was overwritten. */
static int store_ram(struct rv_hart *h, uint64_t va, uint64_t pa, uint8_t *host, unsigned size,
                     uint64_t val, unsigned priv)
{
    uint64_t ppage = pa & RV_PAGE_MASK;
    int modified = 0;
    uint64_t gen;

    if (rv_page_has_code(h, pa) && rv_code_write(h, pa, size))
        modified = 1;
    switch (size) {
    case 1: *host = (uint8_t)val; break;
    case 2: memcpy(host, &val, 2); break;
    case 4: memcpy(host, &val, 4); break;
    case 8: memcpy(host, &val, 8); break;
    default: memcpy(host, &val, size); break;
    }
    rv_mark_dirty(h, ppage, 1);
    gen = atomic_load_explicit(&h->mem->dirty_gen, memory_order_acquire);
    if (gen != h->dirty_gen) {
        rv_tlb_flush_write(h);
        h->dirty_gen = gen;
    }
    if (!rv_page_has_code(h, pa) && pmp_page_uniform(h, ppage, priv))
        tlb_fill(&h->dtlb->w, va, host);
    return modified;
}

/* A store of 1..8 bytes that does not cross a page. */
static int store_page(struct rv_hart *h, uint64_t va, unsigned size, uint64_t val)
{
    uint64_t pa;
    unsigned priv;
    uint8_t *host;

    if (data_pa(h, va, size, RV_ACC_W, &pa, &priv))
        return -1;
    host = gmem_ptr(h->mem, pa, size);
    if (host)
        return store_ram(h, va, pa, host, size, val, priv);
    if (mmio_store(h, pa, size, val))
        return fail(h, RV_ACC_W, false, va);
    return 0;
}

/*
 * QEMU 7.2 performs misaligned loads and stores (no address-misaligned
 * trap); the interpreter's fast path handles those inside a page.  Here, an
 * access crossing a page is split in two; a store first checks that both
 * pages are writable so a fault leaves memory untouched, and a fault on the
 * second page reports that page's first address, as QEMU does.
 */
int rv_load_slow(struct rv_hart *h, uint64_t va, unsigned size, uint64_t *val)
{
    unsigned n1 = 4096 - (unsigned)(va & 0xfff);
    uint64_t lo, hi;

    if (gw_likely(n1 >= size))
        return load_page(h, va, size, val);
    if (load_page(h, va, n1, &lo) || load_page(h, va + n1, size - n1, &hi))
        return -1;
    *val = lo | hi << (8 * n1);
    return 0;
}

int rv_store_slow(struct rv_hart *h, uint64_t va, unsigned size, uint64_t val)
{
    unsigned n1 = 4096 - (unsigned)(va & 0xfff), priv;
    uint64_t pa;
    int r1, r2;

    if (gw_likely(n1 >= size))
        return store_page(h, va, size, val);
    if (data_pa(h, va, n1, RV_ACC_W, &pa, &priv) ||
        data_pa(h, va + n1, size - n1, RV_ACC_W, &pa, &priv))
        return -1;
    r1 = store_page(h, va, n1, val);
    if (r1 < 0)
        return -1;
    r2 = store_page(h, va + n1, size - n1, val >> (8 * n1));
    if (r2 < 0)
        return -1;
    return r1 | r2;
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

/* Host address of an aligned AMO through the current TLB, or NULL.  A write
 * entry implies a RAM page without decoded code, already marked dirty, with
 * write (hence read) permission. */
static uint8_t *amo_host(struct rv_hart *h, uint64_t va, unsigned size, bool write)
{
    const struct rv_tlb *t = write ? &h->dtlb->w : &h->dtlb->r;
    const struct rv_tlb_entry *e = &t->e[(va >> 12) & (RV_TLB_SIZE - 1)];

    if ((va & (size - 1)) || e->tag != (va & RV_PAGE_MASK))
        return NULL;
    return (uint8_t *)(uintptr_t)(va + e->addend);
}

int rv_amo(struct rv_hart *h, const struct rv_insn *ins, bool dword)
{
    unsigned size = dword ? 8 : 4, f5 = ins->rm, priv;
    uint64_t va = h->x[ins->rs1], pa, old = 0;
    uint8_t *host;

    /* fast path: the page is in the TLB (the common spinlock/counter case) */
    host = f5 == RV_AMO_SC ? NULL : amo_host(h, va, size, f5 != RV_AMO_LR);
    if (host) {
        memcpy(&old, host, size);
        if (!dword)
            old = (uint64_t)(int64_t)(int32_t)old;
        if (f5 == RV_AMO_LR) {
            h->resv_addr = va;
            h->resv_val = old;
        } else {
            uint64_t nv = amo_op(f5, old, h->x[ins->rs2], dword);
            memcpy(host, &nv, size);
        }
        h->x[ins->rd] = old;
        return 0;
    }
    if (f5 == RV_AMO_SC && h->resv_addr == va && (host = amo_host(h, va, size, true))) {
        uint64_t src = h->x[ins->rs2];
        memcpy(&old, host, size);
        h->resv_addr = UINT64_MAX;
        if (dword ? old != h->resv_val : (uint32_t)old != (uint32_t)h->resv_val) {
            h->x[ins->rd] = 1;
        } else {
            memcpy(host, &src, size);
            h->x[ins->rd] = 0;
        }
        return 0;
    }

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
            return store_ram(h, va, pa, host, size, src, priv);
        }
    }
    /* QEMU 7.2 reports misaligned LR/AMO as a load address-misaligned trap */
    if (va & (size - 1)) {
        h->exc_cause = RV_EXC_LOAD_MISALIGNED;
        h->exc_tval = va;
        return -1;
    }
    if (f5 == RV_AMO_LR) {
        if (load_page(h, va, size, &old))
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
        return store_ram(h, va, pa, host, size, nv, priv);
    }
}
