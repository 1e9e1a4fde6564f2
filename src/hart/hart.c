/*
 * Hart lifecycle, the public API (hart.h), the outer run loop (interrupts,
 * exit requests, dirty-bitmap generations) and the decode cache.
 *
 * Decode cache: blocks of pre-decoded instructions live in one arena and are
 * keyed by guest physical address (bhash).  Each RAM page that holds decoded
 * code lists its blocks and a mask of the 64-byte chunks they cover; a store
 * into a covered chunk (seen by the store slow path, because write-TLB
 * entries never map code pages) invalidates the page's blocks.  The jump
 * caches map a virtual pc straight to a block; they are flushed with the
 * fetch TLB.  When the arena is full, everything is dropped.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "hart/hart_int.h"
#include "hart/ops.h"

/* ---- decode cache ------------------------------------------------------------ */

static inline unsigned bhash_idx(uint64_t pa)
{
    return (unsigned)((pa >> 1) ^ (pa >> 17)) & ((1u << RV_BHASH_BITS) - 1);
}

void rv_jc_clear(struct rv_jc *j)
{
    for (uint32_t i = 0; i < j->n; i++)
        j->e[j->log[i]].pc = 1;
    j->n = 0;
}

void rv_jc_insert(struct rv_jc *j, uint64_t pc, struct rv_block *b)
{
    unsigned idx = (unsigned)(pc >> 1) & (RV_JC_SIZE - 1);
    struct rv_jc_entry *e = &j->e[idx];

    if (e->pc == 1) {
        /* logged once per fill; entries dropped one by one and filled
         * again can fill the log: then start over */
        if (j->n == RV_JC_SIZE)
            rv_jc_clear(j);
        j->log[j->n++] = (uint16_t)idx;
    }
    e->pc = pc;
    e->blk = b;
}

void rv_jc_flush(struct rv_hart *h)
{
    for (unsigned m = 0; m < RV_IMODE_N; m++)
        rv_jc_clear(&h->jcs[m]);
}

void rv_flush_blocks(struct rv_hart *h)
{
    memset(h->bhash, 0, sizeof(*h->bhash) << RV_BHASH_BITS);
    for (size_t i = 0; i < h->code_list_n; i++) {
        struct rv_code_page *cp = &h->code[h->code_list[i]];
        cp->blocks = NULL;
        cp->mask = 0;
        cp->listed = false;
    }
    h->code_list_n = 0;
    h->arena_used = 0;
    h->flush_gen++;
    h->wgen_seen = atomic_load(&h->mem->write_gen);
    h->own_seen = h->own_marks;
    rv_jc_flush(h);
}

/*
 * FENCE.I.  This hart's own stores already invalidated the code they hit
 * (store slow path), so only writes by others matter: a device's DMA or
 * another hart.  With one hart, write_gen moving by more than our own marks
 * means a device wrote RAM: drop everything.  With several harts their
 * stores need not pass through our slow path, so always drop everything.
 */
void rv_fence_i(struct rv_hart *h)
{
    uint64_t g = atomic_load(&h->mem->write_gen);

    if (atomic_load(&h->mem->harts) > 1 || g - h->wgen_seen != h->own_marks - h->own_seen)
        rv_flush_blocks(h);
    h->wgen_seen = g;
    h->own_seen = h->own_marks;
}

static void invalidate_page(struct rv_hart *h, struct rv_code_page *cp)
{
    for (struct rv_block *b = cp->blocks; b; b = b->pnext) {
        struct rv_block **pp = &h->bhash[bhash_idx(b->paddr)];
        b->valid = 0;
        while (*pp && *pp != b)
            pp = &(*pp)->hnext;
        if (*pp)
            *pp = b->hnext;
    }
    cp->blocks = NULL;
    cp->mask = 0;
}

/* A store of size bytes at pa hits a page with code: invalidate the page's
 * blocks if it touches a chunk they cover.  True if it did. */
bool rv_code_write(struct rv_hart *h, uint64_t pa, unsigned size)
{
    struct rv_code_page *cp = &h->code[(pa - h->mem->base) >> 12];
    unsigned first = (pa & 0xfff) >> 6, last = ((pa + size - 1) & 0xfff) >> 6;
    uint64_t m;

    if (last < first)
        last = 63;
    m = (last == 63 ? ~0ull : (1ull << (last + 1)) - 1) & ~((1ull << first) - 1);
    if (!(cp->mask & m))
        return false;
    invalidate_page(h, cp);
    return true;
}

uint32_t rv_insn_raw(struct rv_hart *h, const struct rv_block *b, const struct rv_insn *ins)
{
    const uint8_t *p;
    uint32_t raw = 0;

    if (ins->op == RV_OP_ILLEGAL)
        return (uint32_t)ins->imm;
    if (b->cross)
        return b->raw_cross;
    p = gmem_ptr(h->mem, b->paddr + ins->pcoff, ins->len);
    if (p)
        memcpy(&raw, p, ins->len);
    return raw;
}

static uint32_t fetch_raw(const uint8_t *page, unsigned off)
{
    uint32_t raw = (uint32_t)page[off] | (uint32_t)page[off + 1] << 8;
    if ((raw & 3) == 3)
        raw |= ((uint32_t)page[off + 2] | (uint32_t)page[off + 3] << 8) << 16;
    return raw;
}

/*
 * A direct jump or taken branch whose target lies in the same page can be
 * chained: the page's virtual-to-physical mapping is the one the current
 * block was entered through, so the target block is fixed by the physical
 * address alone.  off is the instruction's offset in the page.
 */
static void mark_chainable(struct rv_insn *in, unsigned off)
{
    int64_t t;

    if (in->op != RV_OP_JAL && (in->op < RV_OP_BEQ || in->op > RV_OP_BGEU))
        return;
    t = (int64_t)off + in->imm;
    in->chainable = t >= 0 && t < 4096;
}

static struct rv_block *translate_block(struct rv_hart *h, uint64_t pa, const uint8_t *host)
{
    const size_t maxsz = sizeof(struct rv_block) + RV_BLOCK_MAX * sizeof(struct rv_insn);
    const uint8_t *page = host - (pa & 0xfff);
    unsigned start = (unsigned)(pa & 0xfff), off = start, n = 0;
    struct rv_code_page *cp;
    struct rv_block *b;
    unsigned idx;

    if (h->arena_used + maxsz > RV_ARENA_SIZE)
        rv_flush_blocks(h);
    b = (struct rv_block *)(h->arena + h->arena_used);
    for (;;) {
        struct rv_insn *in = &b->insns[n++];
        if (n == RV_BLOCK_MAX || off >= 4096 || (off == 4094 && (page[off] & 3) == 3)) {
            memset(in, 0, sizeof(*in));
            in->op = RV_OP_NEXT;
            in->handler = h->disp[RV_OP_NEXT];
            in->pcoff = (uint16_t)(off - start);
            in->chainable = off < 4096;
            break;
        }
        rv_decode(fetch_raw(page, off), in);
        in->handler = h->disp[in->op];
        in->pcoff = (uint16_t)(off - start);
        mark_chainable(in, off);
        off += in->len;
        if (rv_op_ends_block(in->op))
            break;
    }
    b->paddr = pa;
    b->n = n;
    b->valid = 1;
    b->cross = 0;
    h->arena_used += (sizeof(struct rv_block) + n * sizeof(struct rv_insn) + 15) & ~(size_t)15;

    idx = bhash_idx(pa);
    b->hnext = h->bhash[idx];
    h->bhash[idx] = b;

    cp = &h->code[(pa - h->mem->base) >> 12];
    if (!cp->blocks)
        rv_tlb_evict_wpage(h, pa & RV_PAGE_MASK); /* stores must now see this page */
    if (!cp->listed) {
        cp->listed = true;
        h->code_list[h->code_list_n++] = (uint32_t)((pa - h->mem->base) >> 12);
    }
    b->pnext = cp->blocks;
    cp->blocks = b;
    {
        unsigned first = start >> 6, last = (off > start ? off - 1 : start) >> 6;
        if (last > 63)
            last = 63;
        for (unsigned c = first; c <= last; c++)
            cp->mask |= 1ull << c;
    }
    return b;
}

static void fetch_fault(struct rv_hart *h, uint64_t vpc)
{
    uint64_t cause = h->exc_cause, pa = vpc;

    rv_raise(h, cause, h->exc_tval, vpc);
    if (h->pc == vpc) {
        const char *what = cause == RV_EXC_INSN_PAGE ? "page fault" : "access fault";
        if (cause == RV_EXC_INSN_ACCESS && !gmem_contains(h->mem, pa, 2))
            what = "from unmapped address";
        rv_fatal(h,
                 "instruction fetch %s 0x%" PRIx64 " (trap vector also unfetchable): guest "
                 "jumped into nowhere (pc=0x%" PRIx64 ", mcause=0x%" PRIx64 ", mepc=0x%" PRIx64
                 ", scause=0x%" PRIx64 ", sepc=0x%" PRIx64 ", priv=%u)",
                 what, vpc, vpc, h->mcause, h->mepc, h->scause, h->sepc, h->priv);
    }
}

/* Fetch 16 bits at va from RAM or, for ROM/MMIO, through the bus. */
static int fetch_half(struct rv_hart *h, uint64_t va, uint32_t *out)
{
    uint64_t pa, v = 0;
    uint8_t *host;

    if (rv_fetch_translate(h, va, &pa, &host))
        return -1;
    if (host) {
        *out = (uint32_t)host[0] | (uint32_t)host[1] << 8;
        return 0;
    }
    if (!h->env.mmio_read || h->env.mmio_read(h->env.opaque, pa, 2, &v) < 0) {
        h->exc_cause = RV_EXC_INSN_ACCESS;
        h->exc_tval = va;
        return -1;
    }
    *out = (uint32_t)v & 0xffff;
    return 0;
}

/*
 * Instructions that cannot be cached: one straddling two pages (either page
 * may change independently) or one fetched from outside RAM (the reset ROM).
 * Decoded afresh each time into a temporary block.
 */
static struct rv_block *uncached_block(struct rv_hart *h, uint64_t vpc, uint64_t pa)
{
    struct rv_block *b = &h->xblk.b;
    uint32_t lo, hi = 0, raw;

    if (fetch_half(h, vpc, &lo) || ((lo & 3) == 3 && fetch_half(h, vpc + 2, &hi))) {
        fetch_fault(h, vpc);
        return NULL;
    }
    raw = lo | hi << 16;
    rv_decode(raw, &b->insns[0]);
    b->insns[0].handler = h->disp[b->insns[0].op];
    b->insns[0].pcoff = 0;
    memset(&b->insns[1], 0, sizeof(b->insns[1]));
    b->insns[1].op = RV_OP_NEXT;
    b->insns[1].handler = h->disp[RV_OP_NEXT];
    b->insns[1].pcoff = b->insns[0].len;
    b->paddr = pa;
    b->n = 2;
    b->valid = 1;
    b->cross = 1;
    b->raw_cross = raw;
    return b;
}

struct rv_block *rv_block_find(struct rv_hart *h, uint64_t vpc)
{
    struct rv_block *b;
    uint64_t pa;
    uint8_t *host;

    if (rv_fetch_translate(h, vpc, &pa, &host)) {
        fetch_fault(h, vpc);
        return NULL;
    }
    if (!host || ((pa & 0xfff) == 0xffe && (host[0] & 3) == 3))
        return uncached_block(h, vpc, pa);
    for (b = h->bhash[bhash_idx(pa)]; b; b = b->hnext)
        if (b->paddr == pa)
            break;
    if (!b)
        b = translate_block(h, pa, host);
    rv_jc_insert(h->jc, vpc, b);
    return b;
}

/* ---- lifecycle ------------------------------------------------------------------ */

struct rv_hart *rv_hart_new(const struct rv_hart_config *cfg, const struct rv_hart_env *env)
{
    struct rv_hart *h;

    if (!cfg || !env || !env->mem)
        return NULL;
    h = aligned_alloc(64, (sizeof(*h) + 63) & ~(size_t)63);
    if (!h)
        return NULL;
    memset(h, 0, sizeof(*h));
    h->cfg = *cfg;
    h->env = *env;
    h->mem = env->mem;
    h->pmp_n = cfg->pmp_entries > 16 ? 16 : cfg->pmp_entries;
    h->bhash = calloc((size_t)1 << RV_BHASH_BITS, sizeof(*h->bhash));
    h->code = calloc(h->mem->npages ? h->mem->npages : 1, sizeof(*h->code));
    h->code_list = calloc(h->mem->npages ? h->mem->npages : 1, sizeof(*h->code_list));
    h->arena = mmap(NULL, RV_ARENA_SIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!h->bhash || !h->code || !h->code_list || h->arena == MAP_FAILED) {
        if (h->arena == MAP_FAILED)
            h->arena = NULL;
        rv_hart_free(h);
        return NULL;
    }
    for (unsigned m = 0; m < RV_DMODE_N; m++) {
        for (unsigned i = 0; i < RV_TLB_SIZE; i++) {
            h->dtlbs[m].r.e[i].tag = RV_TLB_INVALID;
            h->dtlbs[m].w.e[i].tag = RV_TLB_INVALID;
        }
    }
    for (unsigned m = 0; m < RV_IMODE_N; m++) {
        for (unsigned i = 0; i < RV_TLB_SIZE; i++)
            h->itlbs[m].e[i].tag = RV_TLB_INVALID;
        for (unsigned i = 0; i < RV_JC_SIZE; i++)
            h->jcs[m].e[i].pc = 1;
    }
    atomic_fetch_add(&h->mem->harts, 1);
    h->attached = true;
    rv_hart_reset(h, h->mem->base);
    return h;
}

void rv_hart_free(struct rv_hart *h)
{
    if (!h)
        return;
    if (h->arena)
        munmap(h->arena, RV_ARENA_SIZE);
    if (h->attached)
        atomic_fetch_sub(&h->mem->harts, 1);
    free(h->code_list);
    free(h->code);
    free(h->bhash);
    free(h);
}

void rv_hart_flush_caches(struct rv_hart *h)
{
    rv_tlb_clear_all(h);
    rv_flush_blocks(h);
    h->dirty_gen = atomic_load(&h->mem->dirty_gen);
}

void rv_hart_reset(struct rv_hart *h, uint64_t pc)
{
    memset(h->x, 0, sizeof(h->x));
    memset(h->f, 0, sizeof(h->f));
    h->instret = 0;
    rv_csr_reset(h);
    h->resv_addr = UINT64_MAX;
    h->resv_val = 0;
    h->fatal = false;
    h->err[0] = 0;
    h->pc = pc;
    h->priv = RV_PRV_M;
    rv_update_modes(h);
    rv_hart_flush_caches(h);
    rv_pmp_changed(h);
    rv_kick(h);
}

/* ---- run loop ------------------------------------------------------------------ */

int rv_hart_run(struct rv_hart *h, uint64_t max_insns)
{
    uint64_t limit = h->instret + max_insns;

    if (limit < h->instret)
        limit = UINT64_MAX;
    if (h->fatal)
        return RV_EXIT_FATAL;
    for (;;) {
        uint64_t gen;
        int irq, r;

        atomic_store(&h->signal, 0);
        if (atomic_exchange(&h->exit_req, 0))
            return RV_EXIT_REQUEST;
        gen = atomic_load(&h->mem->dirty_gen);
        if (gen != h->dirty_gen) {
            rv_tlb_flush_write(h);
            h->dirty_gen = gen;
        }
        irq = rv_pending_irq(h);
        if (irq >= 0)
            rv_raise(h, RV_CAUSE_INTR | (uint64_t)irq, 0, h->pc);
        if (h->instret >= limit)
            return RV_EXIT_BUDGET;
        r = rv_exec(h, limit);
        if (r == RV_EXEC_WFI)
            return RV_EXIT_WFI;
        if (r == RV_EXEC_FATAL)
            return RV_EXIT_FATAL;
    }
}

void rv_hart_set_irq(struct rv_hart *h, unsigned irq, bool level)
{
    uint64_t bit = 1ull << (irq & 63);

    if (level)
        atomic_fetch_or(&h->mip_hw, bit);
    else
        atomic_fetch_and(&h->mip_hw, ~bit);
    atomic_store(&h->signal, 1);
}

void rv_hart_request_exit(struct rv_hart *h)
{
    atomic_store(&h->exit_req, 1);
    atomic_store(&h->signal, 1);
}

bool rv_hart_irq_pending(const struct rv_hart *h)
{
    /* WFI wakes on any locally enabled pending interrupt, regardless of the
     * global enables (priv spec §3.3.3). */
    return (rv_mip(h) & h->mie) != 0;
}

uint64_t rv_hart_dirtied(const struct rv_hart *h)
{
    return h->dirtied;
}

const char *rv_hart_error(const struct rv_hart *h)
{
    return h->err;
}

uint64_t rv_hart_get_pc(const struct rv_hart *h)
{
    return h->pc;
}

void rv_hart_set_pc(struct rv_hart *h, uint64_t pc)
{
    h->pc = pc & ~(uint64_t)1;
}

uint64_t rv_hart_get_x(const struct rv_hart *h, unsigned reg)
{
    return reg && reg < 32 ? h->x[reg] : 0;
}

void rv_hart_set_x(struct rv_hart *h, unsigned reg, uint64_t val)
{
    if (reg && reg < 32)
        h->x[reg] = val;
}

uint64_t rv_hart_get_f(const struct rv_hart *h, unsigned reg)
{
    return reg < 32 ? h->f[reg] : 0;
}

unsigned rv_hart_get_priv(const struct rv_hart *h)
{
    return h->priv;
}

uint64_t rv_hart_instret(const struct rv_hart *h)
{
    return h->instret;
}
