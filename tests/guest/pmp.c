/*
 * PMP: physical memory protection as OpenSBI uses it.  The runtime's
 * allow-all entry moves to entry 15 (lowest priority) so entries 0..3 can
 * restrict: TOR (incl. entry 0's implicit base 0), NA4 and NAPOT regions with
 * each permission, S and U access to them (loads, stores, fetches), M-mode
 * unaffected unless the entry is locked, accesses straddling a region edge,
 * page-table walks that hit a protected region (access fault of the
 * original access type), MPRV, and locked entries ignoring writes.
 */
#include "rt.h"

#define PMP_R     0x01
#define PMP_W     0x02
#define PMP_X     0x04
#define PMP_TOR   0x08
#define PMP_NA4   0x10
#define PMP_NAPOT 0x18
#define PMP_L     0x80

/* Three consecutive pages (a < b < c), so TOR ranges between them are real. */
static uint32_t pages[3][1024] __attribute__((aligned(4096)));
#define page_a pages[0]
#define page_b pages[1]
#define page_c pages[2]
static uint64_t page_table_area[3][512] __attribute__((aligned(4096)));

static long do_load(long a)
{
    uint64_t v = 0xdead;
    __asm__ volatile("ld %0, 0(%1)" : "+r"(v) : "r"(a) : "memory");
    return (long)v;
}
static long do_store(long a)
{
    __asm__ volatile("sd %1, 0(%0)" ::"r"(a), "r"(0x77UL) : "memory");
    return 0;
}
static long do_fetch(long a)
{
    register long a0 __asm__("a0") = 0xdead;
    __asm__ volatile("jalr ra, 0(%1)" : "+r"(a0) : "r"(a) : "ra", "memory");
    return a0;
}
static long (*const fns[3])(long) = {do_load, do_store, do_fetch};

/* Run load/store/fetch at addr in mode; print ". " or the cause for each. */
static void probe(const char *what, int mode, uint64_t addr)
{
    rt_printf("%-34s %c:", what, "US?M"[mode]);
    for (int k = 0; k < 3; k++) {
        /* stores go to +8 so the fetched code at +0 stays intact */
        uint64_t a = k == 1 ? addr + 8 : addr;
        rt_trap_reset();
        long r;
        if (mode == RT_M)
            r = fns[k]((long)a);
        else
            r = rt_run_in_mode(mode, fns[k], (long)a);
        if (rt_trap_count)
            rt_printf(" %c=cause%lx/%s", "LSX"[k], (unsigned long)rt_last_trap.cause,
                      rt_last_trap.tval == a ? "tval=addr" : "tval=other");
        else
            rt_printf(" %c=ok%s", "LSX"[k], k == 2 && r != 42 ? "(bad code)" : "");
    }
    rt_printf("\n");
}

static void fill_code(uint32_t *p)
{
    for (int i = 0; i < 1024; i += 4) {
        p[i] = 0x02a00513;     /* li a0, 42 */
        p[i + 1] = 0x00008067; /* ret */
        p[i + 2] = 0;
        p[i + 3] = 0;
    }
}

static void set_cfg(int entry, uint64_t cfg)
{
    /* entries 0..7 in pmpcfg0, 8..15 in pmpcfg2 (RV64) */
    uint64_t shift = (uint64_t)(entry % 8) * 8, mask = 0xffUL << shift;
    if (entry < 8) {
        uint64_t v = csr_read(pmpcfg0);
        csr_write(pmpcfg0, (v & ~mask) | (cfg << shift));
    } else {
        uint64_t v = csr_read(pmpcfg2);
        csr_write(pmpcfg2, (v & ~mask) | (cfg << shift));
    }
}

static void set_addr(int entry, uint64_t v)
{
    switch (entry) {
    case 0: csr_write(pmpaddr0, v); break;
    case 1: csr_write(pmpaddr1, v); break;
    case 2: csr_write(pmpaddr2, v); break;
    case 3: csr_write(pmpaddr3, v); break;
    case 15: csr_write(pmpaddr15, v); break;
    }
}

static uint64_t napot(uint64_t base, uint64_t size)
{
    return (base >> 2) | ((size >> 3) - 1);
}

static void clear_entries(void)
{
    for (int e = 0; e < 4; e++) {
        set_cfg(e, 0);
        set_addr(e, 0);
    }
}

int main(void)
{
    fill_code(page_a);
    fill_code(page_b);
    fill_code(page_c);
    __asm__ volatile("fence.i" ::: "memory");
    uint64_t a = (uintptr_t)page_a, b = (uintptr_t)page_b, c = (uintptr_t)page_c;

    /* Allow-all moves to entry 15; entry 0 is freed. */
    set_addr(15, -1UL >> 10);
    set_cfg(15, PMP_NAPOT | PMP_R | PMP_W | PMP_X);
    set_cfg(0, 0);
    rt_printf("pmpcfg0 %lx pmpcfg2 %lx\n", csr_read(pmpcfg0), csr_read(pmpcfg2));
    probe("baseline page_a", RT_S, a);

    /* NAPOT 4K, no permissions. */
    set_addr(0, napot(a, 4096));
    set_cfg(0, PMP_NAPOT);
    for (int mode = RT_U; mode <= RT_M; mode += (mode == RT_S ? 2 : 1))
        probe("NAPOT page_a ---", mode, a);
    /* Each single permission. */
    static const struct {
        uint64_t perm;
        const char *name;
    } perms[] = {
        {PMP_R, "NAPOT page_a R--"},
        {PMP_X, "NAPOT page_a --X"},
        {PMP_R | PMP_W, "NAPOT page_a RW-"},
        {PMP_R | PMP_X, "NAPOT page_a R-X"},
    };
    for (unsigned i = 0; i < sizeof(perms) / sizeof(perms[0]); i++) {
        set_cfg(0, PMP_NAPOT | perms[i].perm);
        probe(perms[i].name, RT_U, a);
    }
    clear_entries();

    /* TOR [b, c): entry 0 = b (off), entry 1 = c (TOR, R only). */
    set_addr(0, b >> 2);
    set_addr(1, c >> 2);
    set_cfg(1, PMP_TOR | PMP_R);
    probe("TOR [page_b, page_c) R-- in b", RT_S, b);
    probe("TOR [page_b, page_c) R-- in c", RT_S, c);
    probe("TOR [page_b, page_c) R-- below", RT_S, a);
    /* Entry 0 as TOR: [0, pmpaddr0) = everything below RAM. */
    clear_entries();
    set_addr(0, 0x80000000UL >> 2);
    set_cfg(0, PMP_TOR);
    probe("TOR entry 0 [0, RAM) ---: page_a", RT_S, a);
    probe("TOR entry 0 [0, RAM) ---: PLIC", RT_S, 0x0c000000UL);
    clear_entries();

    /* NA4: 4 bytes at b+16, no permission; an 8-byte access straddling it. */
    set_addr(0, (b + 16) >> 2);
    set_cfg(0, PMP_NA4);
    probe("NA4 b+16 ---: at b+16", RT_S, b + 16);
    probe("NA4 b+16 ---: at b+8 (load covers 8..15)", RT_S, b);
    rt_trap_reset();
    long v = rt_run_in_mode(RT_S, do_load, (long)(b + 12));
    rt_printf("8-byte load at b+12 straddling the NA4 edge: %s cause %lx (v=%lx)\n",
              rt_trap_count ? "trap" : "no trap", (unsigned long)rt_last_trap.cause,
              rt_trap_count ? 0UL : (unsigned long)v);
    clear_entries();

    /* Priority: entry 0 (R) and entry 1 (RWX) both match; entry 0 wins. */
    set_addr(0, napot(a, 4096));
    set_cfg(0, PMP_NAPOT | PMP_R);
    set_addr(1, napot(a, 8192));
    set_cfg(1, PMP_NAPOT | PMP_R | PMP_W | PMP_X);
    probe("overlap: entry0 R-- over entry1 RWX", RT_S, a);
    clear_entries();

    /*
     * Page-table walk into a protected region: Sv39 with identity gigapages
     * for devices and RAM, and VA 0x40000000 -> page_a through a level-0
     * table that PMP then hides from S: the walk itself faults, with the
     * access-fault cause of the original access.
     */
    {
        uint64_t *root = page_table_area[0], *l1 = page_table_area[1], *l0 = page_table_area[2];
        const uint64_t va = 0x40000000UL, ad = PTE_A | PTE_D;
        for (int i = 0; i < 512; i++)
            root[i] = l1[i] = l0[i] = 0;
        root[0] = (0UL >> 12 << 10) | PTE_V | PTE_R | PTE_W | ad;
        root[2] = (0x80000000UL >> 12 << 10) | PTE_V | PTE_R | PTE_W | PTE_X | ad;
        root[1] = ((uintptr_t)l1 >> 12 << 10) | PTE_V;
        l1[0] = ((uintptr_t)l0 >> 12 << 10) | PTE_V;
        l0[0] = (a >> 12 << 10) | PTE_V | PTE_R | PTE_W | PTE_X | ad;
        csr_write(satp, rt_satp(SATP_MODE_SV39, root));
        __asm__ volatile("sfence.vma" ::: "memory");
        probe("Sv39 va 40000000, tables accessible", RT_S, va);
        set_addr(0, napot((uintptr_t)l0, 4096));
        set_cfg(0, PMP_NAPOT);
        __asm__ volatile("sfence.vma" ::: "memory");
        probe("Sv39 va 40000000, l0 table behind PMP", RT_S, va);
        clear_entries();
        csr_write(satp, 0);
        __asm__ volatile("sfence.vma" ::: "memory");
    }

    /* MPRV: M-mode loads with MPP = U obey U's PMP view. */
    set_addr(0, napot(a, 4096));
    set_cfg(0, PMP_NAPOT);
    {
        uint64_t st = csr_read(mstatus), val = 0xdead;
        rt_trap_reset();
        csr_write(mstatus, (st & ~MSTATUS_MPP) | MSTATUS_MPRV);
        __asm__ volatile("ld %0, 0(%1)" : "+r"(val) : "r"(a) : "memory");
        csr_write(mstatus, st);
        rt_printf("MPRV MPP=U load of --- page: %s cause %lx\n", rt_trap_count ? "trap" : "no trap",
                  (unsigned long)rt_last_trap.cause);
    }
    clear_entries();

    /* Locked entry: binds M too, and ignores writes until reset. */
    set_addr(3, napot(c, 4096));
    set_cfg(3, PMP_NAPOT | PMP_R | PMP_L);
    probe("locked NAPOT page_c R--", RT_M, c);
    set_cfg(3, PMP_NAPOT | PMP_R | PMP_W | PMP_X);
    set_addr(3, 0);
    rt_printf("locked entry after writes: cfg %lx addr %s\n", (csr_read(pmpcfg0) >> 24) & 0xff,
              csr_read(pmpaddr3) == napot(c, 4096) ? "unchanged" : "CHANGED");
    probe("locked NAPOT page_c after writes", RT_M, c);
    return rt_check_failures();
}
