/*
 * Zicntr: cycle, time and instret exist and never go backwards; time agrees
 * with the CLINT's mtime; instret and cycle advance over a loop; and
 * mcounteren/scounteren gate S- and U-mode access bit by bit.  No counter
 * value is printed (they legitimately differ between emulators).
 */
#include "rt.h"

struct counters {
    uint64_t cycle, time, instret;
};

static void read_all(struct counters *c)
{
    __asm__ volatile("rdcycle %0\n\trdtime %1\n\trdinstret %2"
                     : "=r"(c->cycle), "=r"(c->time), "=r"(c->instret));
}

static void test_monotonic(void)
{
    struct counters a, b;
    int back = 0;
    read_all(&a);
    for (int i = 0; i < 2000; i++) {
        read_all(&b);
        back |= (b.cycle < a.cycle) | (b.time < a.time) << 1 | (b.instret < a.instret) << 2;
        a = b;
    }
    rt_printf("monotonic: %s\n", back ? "NO" : "yes");
    RT_CHECK(!back);

    uint64_t i0, i1, c0, c1;
    __asm__ volatile("rdinstret %0\n\trdcycle %1" : "=r"(i0), "=r"(c0));
    for (volatile int i = 0; i < 1000; i++)
        ;
    __asm__ volatile("rdinstret %0\n\trdcycle %1" : "=r"(i1), "=r"(c1));
    rt_printf("instret advanced: %s, cycle advanced: %s\n", i1 > i0 ? "yes" : "no",
              c1 > c0 ? "yes" : "no");
    RT_CHECK(i1 > i0 && c1 > c0);
}

static void test_time_vs_mtime(void)
{
    int bad = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t m1 = rt_mtime(), t, m2;
        __asm__ volatile("rdtime %0" : "=r"(t));
        m2 = rt_mtime();
        bad |= !(m1 <= t && t <= m2);
    }
    rt_printf("mtime <= time <= mtime: %s\n", bad ? "NO" : "yes");
    RT_CHECK(!bad);
    /* mtime moves on its own. */
    uint64_t start = rt_mtime();
    int moved = 0;
    for (int i = 0; i < 1000000 && !moved; i++)
        moved = rt_mtime() != start;
    rt_printf("mtime advances: %s\n", moved ? "yes" : "no");
    RT_CHECK(moved);
}

static long read_cycle(long unused)
{
    (void)unused;
    uint64_t v;
    __asm__ volatile("rdcycle %0" : "=r"(v));
    return 0;
}
static long read_time(long unused)
{
    (void)unused;
    uint64_t v;
    __asm__ volatile("rdtime %0" : "=r"(v));
    return 0;
}
static long read_instret(long unused)
{
    (void)unused;
    uint64_t v;
    __asm__ volatile("rdinstret %0" : "=r"(v));
    return 0;
}

static void test_gating(void)
{
    static long (*const fns[3])(long) = {read_cycle, read_time, read_instret};
    static const char *const names[3] = {"cycle", "time", "instret"};
    static const unsigned long en[] = {0, 1, 2, 4, 7};
    for (unsigned m = 0; m < sizeof(en) / sizeof(en[0]); m++) {
        for (unsigned s = 0; s < sizeof(en) / sizeof(en[0]); s += 4) {
            csr_write(mcounteren, en[m]);
            csr_write(scounteren, en[s]);
            rt_printf("mcounteren=%lx scounteren=%lx:", en[m], en[s]);
            for (int mode = RT_U; mode <= RT_S; mode++) {
                for (int k = 0; k < 3; k++) {
                    rt_trap_reset();
                    rt_run_in_mode(mode, fns[k], 0);
                    rt_printf(" %c-%s=%s", mode == RT_S ? 'S' : 'U', names[k],
                              rt_trap_count ? "trap" : "ok");
                    if (rt_trap_count)
                        rt_printf("(%lx,%lx)", (unsigned long)rt_last_trap.cause,
                                  (unsigned long)rt_last_trap.tval);
                }
            }
            rt_printf("\n");
        }
    }
    csr_write(mcounteren, 0);
    csr_write(scounteren, 0);
}

int main(void)
{
    test_monotonic();
    test_time_vs_mtime();
    test_gating();
    return rt_check_failures();
}
