/*
 * RV64M: mul, mulh, mulhsu, mulhu, div, divu, rem, remu and the W forms
 * over edge-case operands, including division by zero and the signed
 * overflow case (most negative / -1).  Prints every result.
 */
#include "rt.h"

static const uint64_t vals[] = {
    0,
    1,
    2,
    3,
    0xffffffffffffffff,
    0xfffffffffffffffd,
    0x7fffffff,
    0x80000000,
    0xffffffff80000000,
    0xffffffff,
    0x7fffffffffffffff,
    0x8000000000000000,
    0x123456789abcdef0,
    0xfedcba9876543281,
};
#define NVALS (sizeof(vals) / sizeof(vals[0]))

#define RR(op)                                                                                     \
    static uint64_t rr_##op(uint64_t a, uint64_t b)                                                \
    {                                                                                              \
        uint64_t r;                                                                                \
        __asm__ volatile(#op " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));                            \
        return r;                                                                                  \
    }
RR(mul)
RR(mulh)
RR(mulhsu)
RR(mulhu)
RR(div)
RR(divu)
RR(rem)
RR(remu)
RR(mulw)
RR(divw)
RR(divuw)
RR(remw)
RR(remuw)

struct rr_op {
    const char *name;
    uint64_t (*fn)(uint64_t, uint64_t);
};
#define E(op)                                                                                      \
    {                                                                                              \
#op, rr_##op                                                                               \
    }
static const struct rr_op ops[] = {
    E(mul),  E(mulh), E(mulhsu), E(mulhu), E(div),  E(divu),  E(rem),
    E(remu), E(mulw), E(divw),   E(divuw), E(remw), E(remuw),
};

int main(void)
{
    rt_printf("values:");
    for (unsigned i = 0; i < NVALS; i++)
        rt_printf(" %lx", vals[i]);
    rt_printf("\nop a: op(a, b) for each b in values\n");
    for (unsigned o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
        for (unsigned i = 0; i < NVALS; i++) {
            rt_printf("%s %lx:", ops[o].name, vals[i]);
            for (unsigned j = 0; j < NVALS; j++)
                rt_printf(" %lx", ops[o].fn(vals[i], vals[j]));
            rt_printf("\n");
        }
    }
    /* Spec table 7.1 known answers. */
    RT_CHECK(rr_div(5, 0) == 0xffffffffffffffff);
    RT_CHECK(rr_divu(5, 0) == 0xffffffffffffffff);
    RT_CHECK(rr_rem(5, 0) == 5);
    RT_CHECK(rr_remu(5, 0) == 5);
    RT_CHECK(rr_div(0x8000000000000000, -1UL) == 0x8000000000000000);
    RT_CHECK(rr_rem(0x8000000000000000, -1UL) == 0);
    RT_CHECK(rr_divw(0x80000000, -1UL) == 0xffffffff80000000);
    RT_CHECK(rr_remw(0x80000000, -1UL) == 0);
    RT_CHECK(rr_divuw(7, 0) == 0xffffffffffffffff);
    RT_CHECK(rr_remuw(0x1ffffffff, 0) == 0xffffffffffffffff);
    RT_CHECK(rr_mulhsu(-1UL, -1UL) == 0xffffffffffffffff);
    RT_CHECK(rr_mulhu(-1UL, -1UL) == 0xfffffffffffffffe);
    RT_CHECK(rr_mulh(-1UL, -1UL) == 0);
    return rt_check_failures();
}
