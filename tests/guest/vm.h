/*
 * Shared body of vm_sv39.c and vm_sv48.c (define VM_LEVELS 3 or 4 and
 * VM_SATP_MODE first): page-based virtual memory seen from S and U mode.
 *
 *  - 4K pages, 2M and 1G superpages (and 512G in Sv48), misaligned
 *    superpages (page fault), non-canonical addresses (page fault);
 *  - reserved PTE encodings (W without R, invalid, leaf-less last level);
 *  - A/D bits set by hardware (as QEMU does): PTEs printed after accesses,
 *    and not set by an access that faults;
 *  - the permission matrix: every R/W/X combination x U bit, accessed by
 *    load/store/fetch from S (SUM/MXR on and off) and from U (MXR on/off);
 *  - sfence.vma (global, by address, by ASID) making PTE changes visible,
 *    and satp switches;
 *  - page-fault tval/epc, and page faults delegated to S.
 */
#ifndef GODWIT_GUEST_VM_H
#define GODWIT_GUEST_VM_H

#include "rt.h"

#define L  VM_LEVELS
#define AD (PTE_A | PTE_D)

/* Physical pages used as mapping targets. */
static uint64_t data_page[512] __attribute__((aligned(4096)));
static uint64_t data_page2[512] __attribute__((aligned(4096)));
static uint32_t code_page[1024] __attribute__((aligned(4096)));
/* Two pages mapped to adjacent VAs in the opposite physical order. */
static uint16_t split_pages[2][2048] __attribute__((aligned(4096)));

#define VA_BASE     0x40000000UL /* 4K test pages */
#define VA_2M       0x40200000UL
#define VA_2M_BAD   0x40400000UL
#define VA_1G       0xc0000000UL
#define VA_1G_BAD   0x100000000UL
#define VA_512G     0x8000000000UL
#define VA_512G_BAD 0x10000000000UL

/* ---- accessors: S versions here, U versions in the user region --------- */

static long s_load(long va)
{
    uint64_t v = 0xdead;
    __asm__ volatile("ld %0, 0(%1)" : "+r"(v) : "r"(va) : "memory");
    return (long)v;
}
static long s_store(long va)
{
    __asm__ volatile("sd %1, 0(%0)" ::"r"(va), "r"(0x5a5a5a5a00000000UL | (va & 0xffff))
                     : "memory");
    return 0;
}
static long s_fetch(long va)
{
    register long a0 __asm__("a0") = 0xdead;
    __asm__ volatile("jalr ra, 0(%1)" : "+r"(a0) : "r"(va) : "ra", "memory");
    return a0;
}
RT_USER static long u_load(long va)
{
    uint64_t v = 0xdead;
    __asm__ volatile("ld %0, 0(%1)" : "+r"(v) : "r"(va) : "memory");
    return (long)v;
}
RT_USER static long u_store(long va)
{
    __asm__ volatile("sd %1, 0(%0)" ::"r"(va), "r"(0x5a5a5a5a00000000UL | (va & 0xffff))
                     : "memory");
    return 0;
}
RT_USER static long u_fetch(long va)
{
    register long a0 __asm__("a0") = 0xdead;
    __asm__ volatile("jalr ra, 0(%1)" : "+r"(a0) : "r"(va) : "ra", "memory");
    return a0;
}

static long (*const acc_fn[2][3])(long) = {
    {u_load, u_store, u_fetch},
    {s_load, s_store, s_fetch},
};
static const char acc_name[3] = {'L', 'S', 'X'};

/* Run one access in mode; print "ok:value" or the trap cause. */
static void access(const char *label, int mode, int kind, uint64_t va)
{
    rt_trap_reset();
    long r = rt_run_in_mode(mode, acc_fn[mode][kind], (long)va);
    rt_printf("%s %c%c %lx: ", label, mode == RT_S ? 'S' : 'U', acc_name[kind], (unsigned long)va);
    if (rt_trap_count)
        rt_printf("trap cause=%lx tval=%lx to=%c\n", (unsigned long)rt_last_trap.cause,
                  (unsigned long)rt_last_trap.tval, rt_last_trap.to_mode == RT_S ? 'S' : 'M');
    else
        rt_printf("ok %lx\n", (unsigned long)r);
}

static uint64_t *root;

static void set_satp(uint64_t *r, uint64_t asid)
{
    csr_write(satp, rt_satp(VM_SATP_MODE, r) | (asid << 44));
    __asm__ volatile("sfence.vma" ::: "memory");
}

static void fill_targets(void)
{
    for (int i = 0; i < 512; i++) {
        data_page[i] = 0x1111000000000000UL | (uint64_t)i;
        data_page2[i] = 0x2222000000000000UL | (uint64_t)i;
    }
    for (int i = 0; i < 1024; i += 2) {
        code_page[i] = 0x02a00513;     /* li a0, 42 */
        code_page[i + 1] = 0x00008067; /* ret */
    }
    /* Markers in the 2M region at _heap_start and in RAM for 1G/512G reads. */
    volatile uint64_t *h = (volatile uint64_t *)(uintptr_t)_heap_start;
    h[0] = 0x4848484848480000UL;
    h[0x1000 / 8] = 0x4848484848481000UL;
    __asm__ volatile("fence.i" ::: "memory");
}

static void test_basic(void)
{
    uint64_t heap = (uintptr_t)_heap_start;
    rt_pt_map(root, L, VA_BASE, (uintptr_t)data_page, 0, PTE_R | PTE_W | AD);
    rt_pt_map(root, L, VA_BASE + 0x1000, (uintptr_t)code_page, 0, PTE_R | PTE_X | AD);
    rt_pt_map(root, L, VA_2M, heap, 1, PTE_R | PTE_W | AD);
    rt_pt_map(root, L, VA_2M_BAD, heap + 0x1000, 1, PTE_R | PTE_W | PTE_X | AD);
    rt_pt_map(root, L, VA_1G, 0x80000000UL, 2, PTE_R | PTE_W | PTE_X | AD);
    rt_pt_map(root, L, VA_1G_BAD, 0x80200000UL, 2, PTE_R | PTE_W | AD);
#if L == 4
    rt_pt_map(root, L, VA_512G, 0, 3, PTE_R | PTE_W | AD);
    rt_pt_map(root, L, VA_512G_BAD, 0x40000000UL, 3, PTE_R | PTE_W | AD);
#endif
    set_satp(root, 0);

    access("4K data", RT_S, 0, VA_BASE + 8);
    access("4K data", RT_S, 1, VA_BASE + 16);
    rt_printf("  data_page[2] = %lx\n", (unsigned long)data_page[2]);
    access("4K code", RT_S, 2, VA_BASE + 0x1000);
    access("4K code", RT_S, 2, VA_BASE + 0x1ff8);
    access("2M", RT_S, 0, VA_2M);
    access("2M +4K", RT_S, 0, VA_2M + 0x1000);
    access("2M misaligned", RT_S, 0, VA_2M_BAD);
    access("2M misaligned", RT_S, 1, VA_2M_BAD + 8);
    access("2M misaligned", RT_S, 2, VA_2M_BAD);
    access("1G", RT_S, 0, VA_1G + ((uintptr_t)data_page - 0x80000000UL) + 24);
    access("1G code", RT_S, 2, VA_1G + ((uintptr_t)code_page - 0x80000000UL));
    access("1G misaligned", RT_S, 0, VA_1G_BAD);
#if L == 4
    access("512G", RT_S, 0, VA_512G + (uintptr_t)data_page + 32);
    access("512G misaligned", RT_S, 0, VA_512G_BAD);
#endif
    /* Non-canonical: bits above the VA width must copy its top bit. */
#if L == 3
    access("non-canonical", RT_S, 0, 0x0000008000000000UL);
    access("non-canonical", RT_S, 1, 0xffffff0000000000UL);
    access("non-canonical", RT_S, 2, 0x4000000000000000UL);
    access("canonical neg unmapped", RT_S, 0, 0xffffffc000000000UL);
#else
    access("non-canonical", RT_S, 0, 0x0000800000000000UL);
    access("non-canonical", RT_S, 1, 0xffff000000000000UL);
    access("non-canonical", RT_S, 2, 0x4000000000000000UL);
    access("canonical neg unmapped", RT_S, 0, 0xffff800000000000UL);
#endif
    access("unmapped", RT_S, 0, VA_BASE + 0x100000);
    /* A misaligned load that crosses into an unmapped page must fault; which
     * address lands in tval is up to the implementation, so it is not shown. */
    rt_trap_reset();
    rt_run_in_mode(RT_S, s_load, (long)(VA_BASE + 0x1ffc));
    rt_printf("cross page SL: %s cause=%lx\n", rt_trap_count ? "trap" : "no trap",
              (unsigned long)rt_last_trap.cause);
}

static void test_reserved_ptes(void)
{
    uint64_t va = VA_BASE + 0x10000;
    static const struct {
        const char *name;
        uint64_t flags;
    } cases[] = {
        {"W only (reserved)", PTE_W | AD},
        {"W+X (reserved)", PTE_W | PTE_X | AD},
        {"V=0", 0},
        {"bit 60 (reserved)", PTE_R | PTE_W | AD | (1UL << 60)},
        {"PBMT=NC (no Svpbmt)", PTE_R | PTE_W | AD | (1UL << 61)},
        {"N (no Svnapot)", PTE_R | PTE_W | AD | (1UL << 63)},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++, va += 0x1000) {
        rt_pt_map(root, L, va, (uintptr_t)data_page, 0, cases[i].flags);
        uint64_t *pte = rt_pt_lookup(root, L, va);
        if (!cases[i].flags)
            *pte &= ~PTE_V;
        __asm__ volatile("sfence.vma" ::: "memory");
        for (int k = 0; k < 3; k++)
            access(cases[i].name, RT_S, k, va);
    }
    /* A pointer PTE (no R/W/X) at the last level. */
    rt_pt_map(root, L, va, (uintptr_t)data_page, 0, 0);
    __asm__ volatile("sfence.vma" ::: "memory");
    access("pointer at level 0", RT_S, 0, va);
}

static void print_pte(const char *what, uint64_t va)
{
    uint64_t *pte = rt_pt_lookup(root, L, va);
    rt_printf("  %s: pte flags %02lx ppn %s\n", what, (unsigned long)(*pte & 0xff),
              (*pte >> 10) == ((uintptr_t)data_page >> 12) ||
                      (*pte >> 10) == ((uintptr_t)code_page >> 12)
                  ? "same"
                  : "CHANGED");
}

static void test_ad(void)
{
    uint64_t va = VA_BASE + 0x20000;
    rt_pt_map(root, L, va, (uintptr_t)data_page, 0, PTE_R | PTE_W);
    rt_pt_map(root, L, va + 0x1000, (uintptr_t)data_page, 0, PTE_R | PTE_W);
    rt_pt_map(root, L, va + 0x2000, (uintptr_t)data_page, 0, PTE_R | PTE_W | PTE_A);
    rt_pt_map(root, L, va + 0x3000, (uintptr_t)code_page, 0, PTE_X);
    rt_pt_map(root, L, va + 0x4000, (uintptr_t)data_page, 0, PTE_R);
    rt_pt_map(root, L, va + 0x5000, (uintptr_t)data_page, 0, PTE_R | PTE_W | PTE_U);
    __asm__ volatile("sfence.vma" ::: "memory");
    print_pte("fresh", va);
    access("A/D", RT_S, 0, va);
    print_pte("after load", va);
    access("A/D", RT_S, 1, va);
    print_pte("after store", va);
    access("A/D", RT_S, 1, va + 0x1000);
    print_pte("store to A=0 D=0", va + 0x1000);
    access("A/D", RT_S, 1, va + 0x2000);
    print_pte("store to A=1 D=0", va + 0x2000);
    access("A/D", RT_S, 2, va + 0x3000);
    print_pte("fetch from X-only", va + 0x3000);
    access("A/D", RT_S, 1, va + 0x4000);
    print_pte("faulting store to R-only", va + 0x4000);
    access("A/D", RT_S, 0, va + 0x5000);
    print_pte("faulting S load of U page (SUM=0)", va + 0x5000);
    /* The non-leaf PTEs on the way are not marked. */
    uint64_t *t = root;
    rt_printf("  non-leaf flags:");
    for (int lvl = L - 1; lvl > 0; lvl--) {
        uint64_t e = t[(va >> (12 + 9 * lvl)) & 511];
        rt_printf(" %02lx", (unsigned long)(e & 0xff));
        t = (uint64_t *)(uintptr_t)((e >> 10) << 12);
    }
    rt_printf("\n");
}

static void test_matrix(void)
{
    static const struct {
        const char *name;
        uint64_t flags;
    } types[] = {
        {"R", PTE_R},          {"RW", PTE_R | PTE_W},          {"X", PTE_X},
        {"RX", PTE_R | PTE_X}, {"RWX", PTE_R | PTE_W | PTE_X},
    };
    static const struct {
        int mode;
        uint64_t bits;
        const char *name;
    } cfgs[] = {
        {RT_S, 0, "S"},
        {RT_S, MSTATUS_SUM, "S+SUM"},
        {RT_S, MSTATUS_MXR, "S+MXR"},
        {RT_S, MSTATUS_SUM | MSTATUS_MXR, "S+SUM+MXR"},
        {RT_U, 0, "U"},
        {RT_U, MSTATUS_MXR, "U+MXR"},
    };
    uint64_t va = VA_BASE + 0x40000;
    rt_printf("matrix: per config, load/store/fetch: . = ok, else the trap cause\n");
    for (unsigned t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        for (int u = 0; u < 2; u++, va += 0x1000) {
            uint64_t target =
                (types[t].flags & PTE_X) ? (uintptr_t)code_page : (uintptr_t)data_page;
            rt_pt_map(root, L, va, target, 0, types[t].flags | (u ? PTE_U : 0) | AD);
            __asm__ volatile("sfence.vma" ::: "memory");
            rt_printf("%-3s U=%d:", types[t].name, u);
            for (unsigned c = 0; c < sizeof(cfgs) / sizeof(cfgs[0]); c++) {
                csr_clear(mstatus, MSTATUS_SUM | MSTATUS_MXR);
                csr_set(mstatus, cfgs[c].bits);
                rt_printf(" %s=", cfgs[c].name);
                for (int k = 0; k < 3; k++) {
                    /* Stores go to the second half: the fetch target stays intact. */
                    uint64_t a = k == 1 ? va + 0x800 : va;
                    rt_trap_reset();
                    rt_run_in_mode(cfgs[c].mode, acc_fn[cfgs[c].mode][k], (long)a);
                    if (rt_trap_count)
                        rt_printf("%lx", (unsigned long)rt_last_trap.cause);
                    else
                        rt_putc('.');
                }
            }
            csr_clear(mstatus, MSTATUS_SUM | MSTATUS_MXR);
            rt_printf("\n");
        }
    }
}

static void test_sfence(void)
{
    uint64_t va = VA_BASE + 0x80000;
    rt_pt_map(root, L, va, (uintptr_t)data_page, 0, PTE_R | PTE_W | AD);
    __asm__ volatile("sfence.vma" ::: "memory");
    access("sfence before", RT_S, 0, va);
    uint64_t *pte = rt_pt_lookup(root, L, va);
    /* Remap to data_page2, then flush only that address. */
    *pte = (((uintptr_t)data_page2 >> 12) << 10) | PTE_V | PTE_R | PTE_W | AD;
    __asm__ volatile("sfence.vma %0, zero" ::"r"(va) : "memory");
    access("sfence.vma va", RT_S, 0, va);
    /* Invalidate, flush by ASID 0. */
    *pte &= ~PTE_V;
    __asm__ volatile("sfence.vma zero, %0" ::"r"(0UL) : "memory");
    access("sfence.vma asid after V=0", RT_S, 0, va);
    /* Valid again (back to data_page), global flush. */
    *pte = (((uintptr_t)data_page >> 12) << 10) | PTE_V | PTE_R | PTE_W | AD;
    __asm__ volatile("sfence.vma" ::: "memory");
    access("sfence.vma all", RT_S, 0, va);

    /* A second root with a different mapping for the same va, other ASID. */
    uint64_t *root2 = rt_pt_identity(L);
    rt_pt_map(root2, L, va, (uintptr_t)data_page2, 0, PTE_R | PTE_W | AD);
    set_satp(root2, 5);
    rt_printf("satp with ASID 5: %lx\n", (unsigned long)(csr_read(satp) >> 44 & 0xffff));
    access("root2", RT_S, 0, va);
    set_satp(root, 0);
    access("root1 again", RT_S, 0, va);
    /* Switching satp to Bare. */
    csr_write(satp, 0);
    __asm__ volatile("sfence.vma" ::: "memory");
    access("bare", RT_S, 0, (uintptr_t)&data_page[5]);
    set_satp(root, 0);
}

/*
 * Accesses that cross a page boundary where the two virtual pages are not
 * physically adjacent: VA_SPLIT -> split_pages[1], VA_SPLIT+4K ->
 * split_pages[0].  A misaligned load/store and a 4-byte instruction
 * straddling the boundary must use both physical pages; with the second
 * page unmapped they fault.  Also code written through a writable alias
 * and run through an executable one after fence.i.
 */
#define VA_SPLIT    0x40180000UL
#define VA_ALIAS_RW 0x40190000UL
#define VA_ALIAS_RX 0x40191000UL

static long s_store_split(long va)
{
    __asm__ volatile("sd %1, 0(%0)" ::"r"(va), "r"(0x8877665544332211UL) : "memory");
    return 0;
}

static long s_patch_and_run(long imm)
{
    /* li a0, imm; ret  written through the RW alias */
    volatile uint32_t *w = (volatile uint32_t *)VA_ALIAS_RW;
    w[0] = ((uint32_t)(imm & 0xfff) << 20) | (10u << 7) | 0x13;
    w[1] = 0x00008067;
    __asm__ volatile("fence.i" ::: "memory");
    return s_fetch((long)VA_ALIAS_RX);
}

static void test_split(void)
{
    uint64_t p0 = (uintptr_t)split_pages[0], p1 = (uintptr_t)split_pages[1];
    for (int i = 0; i < 2048; i++) {
        split_pages[0][i] = (uint16_t)(0xa000 + i);
        split_pages[1][i] = (uint16_t)(0xb000 + i);
    }
    /* A 4-byte "li a0, 0x123" split across the boundary, then ret. */
    const uint32_t li = 0x12300513;
    split_pages[1][2047] = (uint16_t)li;
    split_pages[0][0] = (uint16_t)(li >> 16);
    split_pages[0][1] = 0x8082; /* c.jr ra */
    __asm__ volatile("fence.i" ::: "memory");
    rt_pt_map(root, L, VA_SPLIT, p1, 0, PTE_R | PTE_W | PTE_X | AD);
    rt_pt_map(root, L, VA_SPLIT + 0x1000, p0, 0, PTE_R | PTE_W | PTE_X | AD);
    __asm__ volatile("sfence.vma" ::: "memory");
    access("split load", RT_S, 0, VA_SPLIT + 0xffc);
    access("split load", RT_S, 0, VA_SPLIT + 0xfff);
    access("split fetch", RT_S, 2, VA_SPLIT + 0xffe);
    rt_trap_reset();
    rt_run_in_mode(RT_S, s_store_split, (long)(VA_SPLIT + 0xffb));
    rt_printf("split store: %s, page1 tail %04x %04x %04x, page0 head %04x %04x\n",
              rt_trap_count ? "trap" : "ok", split_pages[1][2045], split_pages[1][2046],
              split_pages[1][2047], split_pages[0][0], split_pages[0][1]);
    /* Second page gone: the crossing accesses fault. */
    uint64_t *pte = rt_pt_lookup(root, L, VA_SPLIT + 0x1000);
    *pte &= ~PTE_V;
    __asm__ volatile("sfence.vma" ::: "memory");
    rt_trap_reset();
    rt_run_in_mode(RT_S, s_load, (long)(VA_SPLIT + 0xffc));
    rt_printf("split load, 2nd page unmapped: %s cause %lx\n", rt_trap_count ? "trap" : "no trap",
              (unsigned long)rt_last_trap.cause);
    rt_trap_reset();
    rt_run_in_mode(RT_S, s_fetch, (long)(VA_SPLIT + 0xffe));
    rt_printf("split fetch, 2nd page unmapped: %s cause %lx\n", rt_trap_count ? "trap" : "no trap",
              (unsigned long)rt_last_trap.cause);

    /* RW alias + RX alias of one physical page. */
    rt_pt_map(root, L, VA_ALIAS_RW, (uintptr_t)code_page, 0, PTE_R | PTE_W | AD);
    rt_pt_map(root, L, VA_ALIAS_RX, (uintptr_t)code_page, 0, PTE_R | PTE_X | AD);
    __asm__ volatile("sfence.vma" ::: "memory");
    long r1 = rt_run_in_mode(RT_S, s_patch_and_run, 0x11);
    long r2 = rt_run_in_mode(RT_S, s_patch_and_run, 0x22);
    long r3 = rt_run_in_mode(RT_S, s_patch_and_run, -5);
    rt_printf("code through RW alias, run through RX alias: %ld %ld %ld\n", r1, r2, r3);
    RT_CHECK(r1 == 0x11 && r2 == 0x22 && r3 == -5);
    /* restore code_page's first two words for later users */
    code_page[0] = 0x02a00513;
    code_page[1] = 0x00008067;
    __asm__ volatile("fence.i" ::: "memory");
}

static void test_delegated(void)
{
    csr_write(medeleg,
              (1UL << CAUSE_FETCH_PAGE) | (1UL << CAUSE_LOAD_PAGE) | (1UL << CAUSE_STORE_PAGE));
    access("delegated", RT_S, 0, VA_BASE + 0x100000);
    rt_printf("  sepc-relative: stval=%lx scause=%lx\n", (unsigned long)csr_read(stval),
              (unsigned long)csr_read(scause));
    access("delegated", RT_S, 1, VA_BASE + 0x100008);
    access("delegated", RT_S, 2, VA_BASE + 0x100000);
    access("delegated", RT_U, 0, VA_BASE + 0x100010);
    csr_write(medeleg, 0);
}

static int vm_main(void)
{
    fill_targets();
    rt_pt_reset();
    root = rt_pt_identity(L);
    rt_printf("%s: root %s\n", L == 3 ? "Sv39" : "Sv48",
              (uintptr_t)root & 0xfff ? "misaligned" : "page-aligned");
    test_basic();
    test_reserved_ptes();
    test_ad();
    test_matrix();
    test_sfence();
    test_split();
    test_delegated();
    csr_write(satp, 0);
    __asm__ volatile("sfence.vma" ::: "memory");
    return rt_check_failures();
}

#endif
