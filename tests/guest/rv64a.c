/*
 * RV64A: every AMO in W and D width (old value returned, memory after,
 * neighbouring word untouched, W results sign-extended, min/max signedness),
 * the aq/rl encodings, and LR/SC success and failure cases that the spec
 * pins down (SC without a reservation, SC to another address, a second SC).
 */
#include "rt.h"

static const uint64_t vals[] = {
    0,
    1,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    0x7fffffffffffffff,
    0x8000000000000000,
    0xffffffffffffffff,
    0x123456789abcdef0,
};
#define NVALS (sizeof(vals) / sizeof(vals[0]))

static volatile uint64_t cell[4] __attribute__((aligned(16)));

#define AMO(fn, mnemonic)                                                                          \
    static uint64_t amo_##fn(volatile void *p, uint64_t v)                                         \
    {                                                                                              \
        uint64_t r;                                                                                \
        __asm__ volatile(mnemonic " %0, %2, (%1)" : "=&r"(r) : "r"(p), "r"(v) : "memory");         \
        return r;                                                                                  \
    }
#define AMO_WD(op) AMO(op##_w, #op ".w") AMO(op##_d, #op ".d")
AMO_WD(amoswap)
AMO_WD(amoadd)
AMO_WD(amoxor)
AMO_WD(amoand)
AMO_WD(amoor)
AMO_WD(amomin)
AMO_WD(amomax)
AMO_WD(amominu)
AMO_WD(amomaxu)

struct amo_op {
    const char *name;
    uint64_t (*fn)(volatile void *, uint64_t);
    int wide;
};
#define E(op)                                                                                      \
    {#op ".w", amo_##op##_w, 0},                                                                   \
    {                                                                                              \
#op ".d", amo_##op##_d, 1                                                                  \
    }
static const struct amo_op ops[] = {
    E(amoswap), E(amoadd), E(amoxor),  E(amoand),  E(amoor),
    E(amomin),  E(amomax), E(amominu), E(amomaxu),
};

static void test_amos(void)
{
    rt_printf("values:");
    for (unsigned i = 0; i < NVALS; i++)
        rt_printf(" %lx", vals[i]);
    rt_printf("\nop mem: rd/new-mem for each operand in values (neighbour word checked)\n");
    for (unsigned o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
        for (unsigned i = 0; i < NVALS; i++) {
            rt_printf("%s %lx:", ops[o].name, vals[i]);
            for (unsigned j = 0; j < NVALS; j++) {
                cell[0] = vals[i];
                cell[1] = 0x5a5a5a5a5a5a5a5aUL;
                volatile void *p = &cell[0];
                uint64_t old = ops[o].fn(p, vals[j]);
                rt_printf(" %lx/%lx", old, cell[0]);
                if (cell[1] != 0x5a5a5a5a5a5a5a5aUL)
                    rt_printf("!next=%lx", cell[1]);
                RT_CHECK(cell[1] == 0x5a5a5a5a5a5a5a5aUL);
            }
            rt_printf("\n");
        }
    }
    /* W on the upper word of a doubleword. */
    cell[0] = 0x1111111122222222UL;
    uint64_t old = amo_amoadd_w((volatile uint8_t *)&cell[0] + 4, 0xf0000000);
    rt_printf("amoadd.w upper: rd=%016lx mem=%016lx\n", old, cell[0]);
    RT_CHECK(cell[0] == 0x0111111122222222UL && old == 0x11111111);
    cell[0] = 5;
    RT_CHECK(amo_amomin_d(&cell[0], -1UL) == 5 && cell[0] == -1UL);
    cell[0] = 5;
    RT_CHECK(amo_amominu_d(&cell[0], -1UL) == 5 && cell[0] == 5);
}

static void test_aqrl(void)
{
    uint64_t r1, r2, r3, r4;
    cell[0] = 10;
    __asm__ volatile("amoadd.d.aq %0, %4, (%5)\n\t"
                     "amoadd.d.rl %1, %4, (%5)\n\t"
                     "amoadd.d.aqrl %2, %4, (%5)\n\t"
                     "amoswap.w.aqrl %3, %4, (%5)"
                     : "=&r"(r1), "=&r"(r2), "=&r"(r3), "=&r"(r4)
                     : "r"(3UL), "r"(&cell[0])
                     : "memory");
    rt_printf("aq/rl: %lx %lx %lx %lx mem=%016lx\n", r1, r2, r3, r4, cell[0]);
}

static void test_lrsc(void)
{
    uint64_t v, sc, sc2;

    /* LR then SC to the same address succeeds and writes. */
    cell[0] = 0x1234;
    __asm__ volatile("lr.d %0, (%2)\n\t"
                     "sc.d %1, %3, (%2)"
                     : "=&r"(v), "=&r"(sc)
                     : "r"(&cell[0]), "r"(0x5678UL)
                     : "memory");
    rt_printf("lr.d/sc.d: loaded %lx sc_ok=%d mem=%lx\n", v, sc == 0, cell[0]);
    RT_CHECK(sc == 0 && cell[0] == 0x5678);

    /* A second SC after a successful one has no reservation. */
    __asm__ volatile("lr.d %0, (%3)\n\t"
                     "sc.d %1, %4, (%3)\n\t"
                     "sc.d %2, %5, (%3)"
                     : "=&r"(v), "=&r"(sc), "=&r"(sc2)
                     : "r"(&cell[0]), "r"(0x1111UL), "r"(0x2222UL)
                     : "memory");
    rt_printf("sc twice: first_ok=%d second_failed=%d mem=%lx\n", sc == 0, sc2 != 0, cell[0]);
    RT_CHECK(sc == 0 && sc2 != 0 && cell[0] == 0x1111);

    /* LR.W sign-extends; SC.W stores 32 bits only. */
    cell[0] = 0xaaaaaaaa80000001UL;
    __asm__ volatile("lr.w %0, (%2)\n\t"
                     "sc.w %1, %3, (%2)"
                     : "=&r"(v), "=&r"(sc)
                     : "r"(&cell[0]), "r"(0xffffffff7fffffffUL)
                     : "memory");
    rt_printf("lr.w/sc.w: loaded %016lx sc_ok=%d mem=%016lx\n", v, sc == 0, cell[0]);

    /* SC to a different address than the LR fails and does not write. */
    cell[0] = 1;
    cell[2] = 2;
    __asm__ volatile("lr.d %0, (%2)\n\t"
                     "sc.d %1, %4, (%3)"
                     : "=&r"(v), "=&r"(sc)
                     : "r"(&cell[0]), "r"(&cell[2]), "r"(0x99UL)
                     : "memory");
    rt_printf("sc other addr: failed=%d mem0=%lx mem2=%lx\n", sc != 0, cell[0], cell[2]);
    RT_CHECK(sc != 0 && cell[2] == 2);

    /* A bounded LR/SC increment loop. */
    cell[0] = 40;
    for (int i = 0; i < 2; i++)
        __asm__ volatile("1: lr.w.aq t0, (%0)\n\t"
                         "addi t0, t0, 1\n\t"
                         "sc.w.rl t1, t0, (%0)\n\t"
                         "bnez t1, 1b" ::"r"(&cell[0])
                         : "t0", "t1", "memory");
    rt_printf("lr/sc loop: %lx\n", cell[0]);
    RT_CHECK(cell[0] == 42);
}

int main(void)
{
    test_amos();
    test_aqrl();
    test_lrsc();
    return rt_check_failures();
}
