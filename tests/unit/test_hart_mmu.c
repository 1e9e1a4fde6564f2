/*
 * Hart unit tests for memory: Sv39/Sv48/Sv57 walks with A/D updates,
 * superpages (and misaligned ones), U/SUM/MXR permission checks, fault tval,
 * SFENCE.VMA, PMP enforcement, dirty-page tracking through the write TLB,
 * self-modifying code, FENCE.I, and instructions straddling two pages.
 */
#include "hart_test.h"

#define PTE_V (1ull << 0)
#define PTE_R (1ull << 1)
#define PTE_W (1ull << 2)
#define PTE_X (1ull << 3)
#define PTE_U (1ull << 4)
#define PTE_A (1ull << 6)
#define PTE_D (1ull << 7)

enum { PT_BASE = HT_RAM + 0x200000, DATA = HT_RAM + 0x300000, S_TRAP_VA = 0x50000000 };

struct pt {
    struct ht *t;
    uint64_t root, next;
    int levels;
};

static uint64_t pt_alloc(struct pt *p)
{
    uint64_t a = p->next;
    for (unsigned i = 0; i < 512; i++)
        ht_put64(p->t, a + 8 * i, 0);
    p->next += 4096;
    return a;
}

/* Map va -> pa with a leaf at level `leaf` (0 = 4 KiB, 1 = 2 MiB, ...).
 * Returns the PTE's physical address. */
static uint64_t pt_map(struct pt *p, uint64_t va, uint64_t pa, uint64_t flags, int leaf)
{
    uint64_t a = p->root;

    for (int i = p->levels - 1; i > leaf; i--) {
        uint64_t slot = a + ((va >> (12 + 9 * i)) & 511) * 8, pte = ht_get64(p->t, slot);
        if (!(pte & PTE_V)) {
            pte = (pt_alloc(p) >> 12) << 10 | PTE_V;
            ht_put64(p->t, slot, pte);
        }
        a = (pte >> 10) << 12;
    }
    a += ((va >> (12 + 9 * leaf)) & 511) * 8;
    ht_put64(p->t, a, (pa >> 12) << 10 | flags);
    return a;
}

/* Page tables with the first 2 MiB of RAM identity-mapped (code, trap
 * vector), satp set, PMP open, then enter S (or U) mode. */
static void mmu_setup(struct ht *t, struct pt *p, int levels, unsigned priv, uint64_t mstatus_set)
{
    uint64_t code_flags = PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D;

    ht_init(t);
    p->t = t;
    p->next = PT_BASE;
    p->levels = levels;
    p->root = pt_alloc(p);
    pt_map(p, HT_RAM, HT_RAM, code_flags | (priv == RV_PRV_U ? PTE_U : 0), 1);
    /* page tables and DATA, for S-mode PTE edits */
    pt_map(p, PT_BASE, PT_BASE, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D, 1);
    /* the trap-vector page again, supervisor-only, for S handlers under U */
    pt_map(p, S_TRAP_VA, HT_TRAP, PTE_V | PTE_R | PTE_X | PTE_A, 0);
    t->h->satp = (uint64_t)(levels == 3 ? 8 : levels == 4 ? 9 : 10) << 60 | (p->root >> 12);
    t->h->mstatus |= mstatus_set;
    ht_pmp_open(t);
    ht_enter(t, priv);
}

static uint64_t X(struct ht *t, unsigned r)
{
    return rv_hart_get_x(t->h, r);
}

static void test_walk(int levels)
{
    struct ht t;
    struct pt p;
    uint64_t va = levels == 3 ? 0x40000000ull : 0x800000000000ull - 0x100000000ull;
    uint64_t pte;
    char name[64];

    mmu_setup(&t, &p, levels, RV_PRV_S, 0);
    snprintf(name, sizeof(name), "Sv%d", 12 + 9 * levels);
    if (levels > 3) /* a high canonical address */
        va = (uint64_t)-1 << (11 + 9 * levels);
    pte = pt_map(&p, va, DATA, PTE_V | PTE_R | PTE_W, 0);
    ht_put64(&t, DATA + 16, 0x5a5a);
    li(&t, 1, va);
    emit(&t, LD(2, 1, 16));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, name);
    CHECK_EQ(X(&t, 2), 0x5a5a, "load through the page table");
    CHECK_EQ(ht_get64(&t, pte) & (PTE_A | PTE_D), PTE_A, "load sets A only");
    ht_fini(&t);

    mmu_setup(&t, &p, levels, RV_PRV_S, 0);
    pte = pt_map(&p, va, DATA, PTE_V | PTE_R | PTE_W, 0);
    li(&t, 1, va);
    li(&t, 2, 77);
    emit(&t, SD(2, 1, 24));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "store ok");
    CHECK_EQ(ht_get64(&t, DATA + 24), 77, "store reached the physical page");
    CHECK_EQ(ht_get64(&t, pte) & (PTE_A | PTE_D), PTE_A | PTE_D, "store sets A and D");
    ht_fini(&t);

    /* unmapped: store page fault with tval */
    mmu_setup(&t, &p, levels, RV_PRV_S, 0);
    li(&t, 1, va + 0x10000);
    emit(&t, SW(0, 1, 4));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_STORE_PAGE, "unmapped store: page fault");
    CHECK_EQ(t.h->mtval, va + 0x10004, "page fault tval = address");
    ht_fini(&t);

    /* read-only page */
    mmu_setup(&t, &p, levels, RV_PRV_S, 0);
    pt_map(&p, va, DATA, PTE_V | PTE_R | PTE_A, 0);
    li(&t, 1, va);
    emit(&t, LD(3, 1, 0));
    emit(&t, SD(3, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_STORE_PAGE, "store to read-only page");
    ht_fini(&t);

    /* non-canonical address */
    mmu_setup(&t, &p, levels, RV_PRV_S, 0);
    li(&t, 1, 1ull << (12 + 9 * levels));
    emit(&t, LD(3, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_LOAD_PAGE, "non-canonical address faults");
    ht_fini(&t);

    /* superpages: 2 MiB aligned works, misaligned faults */
    mmu_setup(&t, &p, levels, RV_PRV_S, 0);
    pt_map(&p, va, HT_RAM + 0x400000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D, 1);
    ht_put64(&t, HT_RAM + 0x400000 + 0x1238, 0x77);
    li(&t, 1, va + 0x1238);
    emit(&t, LD(3, 1, 0));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(X(&t, 3), 0x77, "2 MiB superpage");
    ht_fini(&t);

    mmu_setup(&t, &p, levels, RV_PRV_S, 0);
    pt_map(&p, va, HT_RAM + 0x401000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D, 1);
    li(&t, 1, va + 8);
    emit(&t, LD(3, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_LOAD_PAGE, "misaligned superpage faults");
    CHECK_EQ(t.h->mtval, va + 8, "tval");
    ht_fini(&t);
}

static void test_perms(void)
{
    struct ht t;
    struct pt p;
    uint64_t uva = 0x40001000, xva = 0x40002000;

    /* S touching a U page: needs SUM */
    mmu_setup(&t, &p, 3, RV_PRV_S, 0);
    pt_map(&p, uva, DATA, PTE_V | PTE_R | PTE_W | PTE_U, 0);
    li(&t, 1, uva);
    emit(&t, LD(2, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_LOAD_PAGE, "S load from U page without SUM");
    CHECK_EQ(t.h->mtval, uva, "tval");
    ht_fini(&t);

    mmu_setup(&t, &p, 3, RV_PRV_S, MSTATUS_SUM);
    pt_map(&p, uva, DATA, PTE_V | PTE_R | PTE_W | PTE_U, 0);
    ht_put64(&t, DATA, 0x1234);
    li(&t, 1, uva);
    emit(&t, LD(2, 1, 0));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(X(&t, 2), 0x1234, "S load from U page with SUM");
    ht_fini(&t);

    /* SUM never allows S to execute U pages */
    mmu_setup(&t, &p, 3, RV_PRV_S, MSTATUS_SUM);
    pt_map(&p, uva, DATA, PTE_V | PTE_R | PTE_X | PTE_U, 0);
    ht_put32(&t, DATA, EBREAK);
    li(&t, 1, uva);
    emit(&t, JALR(0, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_INSN_PAGE, "S fetch from U page");
    CHECK_EQ(t.h->mtval, uva, "fetch fault tval");
    ht_fini(&t);

    /* X-only page: loads need MXR */
    mmu_setup(&t, &p, 3, RV_PRV_S, 0);
    pt_map(&p, xva, DATA, PTE_V | PTE_X, 0);
    li(&t, 1, xva);
    emit(&t, LD(2, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_LOAD_PAGE, "load from X-only page without MXR");
    ht_fini(&t);

    mmu_setup(&t, &p, 3, RV_PRV_S, MSTATUS_MXR);
    pt_map(&p, xva, DATA, PTE_V | PTE_X, 0);
    ht_put64(&t, DATA, 0x99);
    li(&t, 1, xva);
    emit(&t, LD(2, 1, 0));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(X(&t, 2), 0x99, "load from X-only page with MXR");
    ht_fini(&t);

    /* U mode touching a supervisor page */
    mmu_setup(&t, &p, 3, RV_PRV_U, 0);
    pt_map(&p, uva, DATA, PTE_V | PTE_R | PTE_W, 0);
    li(&t, 1, uva);
    emit(&t, SD(0, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_STORE_PAGE, "U store to S page");
    ht_fini(&t);

    /* page fault delegated to S */
    mmu_setup(&t, &p, 3, RV_PRV_U, 0);
    t.h->medeleg = 1u << RV_EXC_LOAD_PAGE;
    t.h->stvec = S_TRAP_VA + 0x40;
    ht_put32(&t, HT_TRAP + 0x40, EBREAK);
    li(&t, 1, 0x7000);
    emit(&t, LW(2, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->scause, RV_EXC_LOAD_PAGE, "delegated page fault: scause");
    CHECK_EQ(t.h->stval, 0x7000, "stval");
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "S handler ran");
    ht_fini(&t);

    /* MPRV: M-mode loads with S translation */
    ht_init(&t);
    p.t = &t;
    p.next = PT_BASE;
    p.levels = 3;
    p.root = pt_alloc(&p);
    pt_map(&p, 0x40000000, DATA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D, 0);
    ht_put64(&t, DATA, 0xabc);
    t.h->satp = 8ull << 60 | (p.root >> 12);
    ht_pmp_open(&t);
    li(&t, 1, MSTATUS_MPRV | (1ull << 11));
    emit(&t, CSRRS(0, C_MSTATUS, 1));
    li(&t, 2, 0x40000000);
    emit(&t, LD(3, 2, 0));
    emit(&t, CSRRC(0, C_MSTATUS, 1));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "MPRV program ran");
    CHECK_EQ(X(&t, 3), 0xabc, "MPRV load translated with MPP=S");
    ht_fini(&t);
}

static void test_sfence(void)
{
    struct ht t;
    struct pt p;
    uint64_t va = 0x40000000, pte;

    mmu_setup(&t, &p, 3, RV_PRV_S, 0);
    pte = pt_map(&p, va, DATA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D, 0);
    ht_put64(&t, DATA, 1);
    ht_put64(&t, DATA + 0x1000, 2);
    li(&t, 1, va);
    li(&t, 5, pte);
    li(&t, 6, ((DATA + 0x1000) >> 12) << 10 | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    emit(&t, LD(2, 1, 0));
    emit(&t, SD(6, 5, 0)); /* page tables are identity-mapped (mmu_setup) */
    emit(&t, SFENCE_VMA(0, 0));
    emit(&t, LD(3, 1, 0));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "sfence program ran");
    CHECK_EQ(X(&t, 2), 1, "old mapping");
    CHECK_EQ(X(&t, 3), 2, "new mapping after sfence.vma");
    ht_fini(&t);

    /* sfence.vma with an address: a 4 KiB data page, a superpage (flushed
     * through another address inside it) and a code page */
    mmu_setup(&t, &p, 3, RV_PRV_S, 0);
    {
        uint64_t sva = 0x40200000, cva = 0x40001000, spte, cpte;
        pte = pt_map(&p, va, DATA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D, 0);
        spte = pt_map(&p, sva, HT_RAM + 0x400000, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D, 1);
        cpte = pt_map(&p, cva, DATA + 0x2000, PTE_V | PTE_R | PTE_X | PTE_A, 0);
        ht_put64(&t, DATA, 1);
        ht_put64(&t, DATA + 0x1000, 2);
        ht_put64(&t, HT_RAM + 0x400000 + 0x3000, 3);
        ht_put64(&t, HT_RAM + 0x600000 + 0x3000, 4);
        ht_put32(&t, DATA + 0x2000, ADDI(10, 0, 5));
        ht_put32(&t, DATA + 0x2004, JALR(0, 1, 0));
        ht_put32(&t, DATA + 0x3000, ADDI(10, 0, 6));
        ht_put32(&t, DATA + 0x3004, JALR(0, 1, 0));
        li(&t, 11, va);
        li(&t, 12, sva + 0x3000);
        li(&t, 13, cva);
        emit(&t, LD(14, 11, 0));
        emit(&t, LD(15, 12, 0));
        emit(&t, JALR(1, 13, 0));
        emit(&t, ADDI(16, 10, 0));
        li(&t, 5, pte);
        li(&t, 6, ((DATA + 0x1000) >> 12) << 10 | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        emit(&t, SD(6, 5, 0));
        li(&t, 5, spte);
        li(&t, 6, ((HT_RAM + 0x600000) >> 12) << 10 | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
        emit(&t, SD(6, 5, 0));
        li(&t, 5, cpte);
        li(&t, 6, ((DATA + 0x3000) >> 12) << 10 | PTE_V | PTE_R | PTE_X | PTE_A);
        emit(&t, SD(6, 5, 0));
        emit(&t, SFENCE_VMA(11, 0));
        li(&t, 17, sva + 0x100000); /* another address in the same 2 MiB page */
        emit(&t, SFENCE_VMA(17, 0));
        emit(&t, SFENCE_VMA(13, 0));
        emit(&t, LD(18, 11, 0));
        emit(&t, LD(19, 12, 0));
        emit(&t, JALR(1, 13, 0));
        emit(&t, EBREAK);
    }
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "sfence.vma addr program ran");
    CHECK_EQ(X(&t, 14) * 10 + X(&t, 15), 13, "old data mappings");
    CHECK_EQ(X(&t, 16), 5, "old code mapping");
    CHECK_EQ(X(&t, 18), 2, "4 KiB page remapped after sfence.vma addr");
    CHECK_EQ(X(&t, 19), 4, "superpage remapped after sfence.vma of another address in it");
    CHECK_EQ(X(&t, 10), 6, "code page remapped after sfence.vma addr");
    ht_fini(&t);

    /* TVM makes sfence.vma and satp illegal in S */
    mmu_setup(&t, &p, 3, RV_PRV_S, MSTATUS_TVM);
    emit(&t, SFENCE_VMA(0, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "sfence.vma with TVM");
    ht_fini(&t);

    mmu_setup(&t, &p, 3, RV_PRV_S, MSTATUS_TVM);
    emit(&t, CSRR(1, C_SATP));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_ILLEGAL, "satp with TVM");
    ht_fini(&t);
}

static void test_pmp(void)
{
    struct ht t;

    /* S: TOR over the low 4 MiB of RAM RWX, a read-only NAPOT 4 KiB page */
    ht_init(&t);
    t.h->pmpaddr[0] = (HT_RAM + 0x400000) >> 2;
    t.h->pmpcfg[0] = 0x0f;                                /* TOR RWX */
    t.h->pmpaddr[1] = ((HT_RAM + 0x500000) >> 2) | 0x1ff; /* NAPOT 4 KiB */
    t.h->pmpcfg[1] = 0x19;                                /* NAPOT R */
    rv_pmp_changed(t.h);
    ht_enter(&t, RV_PRV_S);
    li(&t, 1, HT_RAM + 0x500000);
    emit(&t, LD(2, 1, 8));
    emit(&t, SD(2, 1, 8));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_STORE_ACCESS, "PMP read-only: store access fault");
    CHECK_EQ(t.h->mtval, HT_RAM + 0x500008, "tval");
    ht_fini(&t);

    ht_init(&t);
    t.h->pmpaddr[0] = (HT_RAM + 0x400000) >> 2;
    t.h->pmpcfg[0] = 0x0f;
    rv_pmp_changed(t.h);
    ht_enter(&t, RV_PRV_S);
    li(&t, 1, HT_RAM + 0x600000);
    emit(&t, LD(2, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_LOAD_ACCESS, "S access matching no PMP entry fails");
    ht_fini(&t);

    /* M is bound by locked entries only */
    ht_init(&t);
    t.h->pmpaddr[0] = ((HT_RAM + 0x500000) >> 2) | 0x1ff;
    t.h->pmpcfg[0] = 0x19; /* NAPOT R, unlocked: M unaffected */
    t.h->pmpaddr[1] = ((HT_RAM + 0x600000) >> 2) | 0x1ff;
    t.h->pmpcfg[1] = 0x99; /* NAPOT R, locked */
    rv_pmp_changed(t.h);
    li(&t, 1, HT_RAM + 0x500000);
    emit(&t, SD(0, 1, 0));
    li(&t, 1, HT_RAM + 0x600000);
    emit(&t, LD(2, 1, 0));
    emit(&t, SD(0, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_STORE_ACCESS, "locked read-only entry binds M");
    CHECK_EQ(t.h->mtval, HT_RAM + 0x600000, "tval");
    ht_fini(&t);

    /* a walk whose PTE read PMP denies: access fault, not page fault */
    ht_init(&t);
    {
        struct pt p = {.t = &t, .next = HT_RAM + 0x700000, .levels = 3};
        p.root = pt_alloc(&p);
        pt_map(&p, HT_RAM, HT_RAM, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D, 1);
        t.h->satp = 8ull << 60 | (p.root >> 12);
    }
    t.h->pmpaddr[0] = (HT_RAM + 0x700000) >> 2;
    t.h->pmpcfg[0] = 0x0f; /* TOR: everything below the page tables */
    rv_pmp_changed(t.h);
    ht_enter(&t, RV_PRV_S);
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_INSN_ACCESS, "page-table read denied by PMP: access fault");
    ht_fini(&t);
}

static bool page_dirty(struct ht *t, uint64_t pa)
{
    uint64_t p = (pa - t->mem->base) >> 12;
    return (atomic_load(&t->mem->dirty[p / 64]) >> (p % 64)) & 1;
}

static void test_dirty(void)
{
    struct ht t;
    uint64_t buf = HT_RAM + 0x300000;

    ht_init(&t);
    li(&t, 1, buf);
    emit(&t, SD(1, 1, 0));
    emit(&t, SD(1, 1, 8)); /* second store: write-TLB hit */
    emit(&t, EBREAK);
    for (unsigned i = 0; i < (t.mem->npages + 63) / 64; i++)
        atomic_store(&t.mem->dirty[i], 0);
    ht_run(&t);
    CHECK(page_dirty(&t, buf), "store marks its page dirty");
    CHECK(!page_dirty(&t, buf + 4096), "neighbour page clean");
    ht_fini(&t);

    /* after a collection (bitmap cleared, dirty_gen bumped) the next store
     * through a previously filled write-TLB entry marks the page again */
    ht_init(&t);
    li(&t, 1, buf);
    uint64_t loop = t.pc;
    emit(&t, SD(1, 1, 0));
    emit(&t, ADDI(2, 2, 1));
    emit(&t, JAL(0, (int32_t)(loop - t.pc)));
    rv_hart_run(t.h, 1000);
    CHECK(page_dirty(&t, buf), "dirty after first round");
    for (unsigned i = 0; i < (t.mem->npages + 63) / 64; i++)
        atomic_store(&t.mem->dirty[i], 0);
    atomic_fetch_add(&t.mem->dirty_gen, 1);
    rv_hart_run(t.h, 1000);
    CHECK(page_dirty(&t, buf), "dirty again after collection");
    ht_fini(&t);
}

static void test_smc(void)
{
    struct ht t;
    uint64_t target;

    /* store over a later instruction of the running block */
    ht_init(&t);
    li(&t, 1, ADDI(5, 0, 42));
    emit(&t, AUIPC(2, 0));
    emit(&t, SW(1, 2, 12));
    emit(&t, ADDI(0, 0, 0));
    emit(&t, ADDI(5, 0, 1)); /* overwritten before it runs */
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(X(&t, 5), 42, "self-modifying code in the same block");
    ht_fini(&t);

    /* modify a function that already ran (and was cached), then call it */
    ht_init(&t);
    target = HT_RAM + 0x800;
    ht_put32(&t, target, ADDI(6, 6, 1));
    ht_put32(&t, target + 4, JALR(0, 1, 0));
    li(&t, 3, target);
    emit(&t, JALR(1, 3, 0));
    li(&t, 4, ADDI(6, 6, 100));
    emit(&t, SW(4, 3, 0));
    emit(&t, JALR(1, 3, 0));
    emit(&t, FENCE_I);
    emit(&t, JALR(1, 3, 0));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(X(&t, 6), 201, "modified cached code re-decoded");
    ht_fini(&t);

    /* data stores into a code page that miss the code bytes keep the code */
    ht_init(&t);
    li(&t, 1, t.pc + 0x400);
    emit(&t, ADDI(7, 0, 0));
    uint64_t loop = t.pc;
    emit(&t, SD(7, 1, 0));
    emit(&t, ADDI(7, 7, 1));
    emit(&t, ADDI(8, 7, -50));
    emit(&t, BNE(8, 0, (int32_t)(loop - t.pc)));
    emit(&t, EBREAK);
    ht_run(&t);
    CHECK_EQ(X(&t, 7), 50, "loop storing next to its own code");
    ht_fini(&t);
}

/* Code rewritten behind the hart's back (DMA, a loader) is picked up at the
 * next FENCE.I; the hart's own stores need none. */
static void test_fence_i_dma(void)
{
    struct ht t;
    uint64_t fn = HT_RAM + 0x3000, loop;

    ht_init(&t);
    ht_put32(&t, fn, ADDI(6, 6, 1));
    ht_put32(&t, fn + 4, JALR(0, 1, 0));
    li(&t, 3, fn);
    li(&t, 7, 2);
    loop = t.pc;
    emit(&t, FENCE_I);
    emit(&t, JALR(1, 3, 0));
    emit(&t, ADDI(7, 7, -1));
    emit(&t, BNE(7, 0, (int32_t)(loop - t.pc)));
    emit(&t, EBREAK);
    /* run up to the return of the first call (the budget is checked between
     * blocks), then let a "device" rewrite the function */
    rv_hart_run(t.h, 11);
    CHECK_EQ(X(&t, 6), 1, "first call ran the original code");
    ht_put32(&t, fn, ADDI(6, 6, 100)); /* gmem_write: marks dirty, bumps write_gen */
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "program finished");
    CHECK_EQ(X(&t, 6), 101, "FENCE.I picked up the DMA-written code");
    ht_fini(&t);
}

static void test_cross_page(void)
{
    struct ht t;
    uint64_t at = HT_RAM + 0x2000 - 2;

    ht_init(&t);
    ht_put16(&t, at, (uint16_t)ADDI(5, 0, 9));
    ht_put16(&t, at + 2, (uint16_t)(ADDI(5, 0, 9) >> 16));
    ht_put32(&t, at + 4, EBREAK);
    li(&t, 1, at);
    emit(&t, JALR(0, 1, 0));
    ht_run(&t);
    CHECK_EQ(t.h->mcause, RV_EXC_BREAKPOINT, "ran past the straddling instruction");
    CHECK_EQ(X(&t, 5), 9, "instruction straddling two pages");
    ht_fini(&t);

    /* second half unmapped: fetch page fault at the second page */
    {
        struct pt p;
        uint64_t va = 0x40000ffe;
        mmu_setup(&t, &p, 3, RV_PRV_S, 0);
        pt_map(&p, 0x40000000, DATA, PTE_V | PTE_R | PTE_X | PTE_A, 0);
        ht_put16(&t, DATA + 0xffe, 0x0513); /* low half of a 32-bit insn */
        li(&t, 1, va);
        emit(&t, JALR(0, 1, 0));
        ht_run(&t);
        CHECK_EQ(t.h->mcause, RV_EXC_INSN_PAGE, "second half unmapped");
        CHECK_EQ(t.h->mepc, va, "epc = instruction start");
        CHECK_EQ(t.h->mtval, va + 2, "tval = second page (QEMU)");
        ht_fini(&t);
    }
}

int main(void)
{
    test_walk(3);
    test_walk(4);
    test_walk(5);
    test_perms();
    test_sfence();
    test_pmp();
    test_dirty();
    test_smc();
    test_fence_i_dma();
    test_cross_page();
    return ht_summary();
}
