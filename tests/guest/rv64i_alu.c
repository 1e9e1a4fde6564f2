/*
 * RV64I integer computation: every register-register and register-immediate
 * ALU instruction (incl. the W forms and shifts), LUI, AUIPC and writes to
 * x0, over a set of edge-case operands.  Prints every result.
 */
#include "rt.h"

static const uint64_t vals[] = {
    0,
    1,
    2,
    0x1f,
    0x3f,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    0x7fffffffffffffff,
    0x8000000000000000,
    0xffffffffffffffff,
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
RR(add)
RR(sub)
RR(sll)
RR(slt)
RR(sltu)
RR(xor)
RR(srl)
RR(sra)
RR(or)
RR(and)
RR(addw)
RR(subw)
RR(sllw)
RR(srlw)
RR(sraw)

struct rr_op {
    const char *name;
    uint64_t (*fn)(uint64_t, uint64_t);
};
#define RR_ENTRY(op)                                                                               \
    {                                                                                              \
#op, rr_##op                                                                               \
    }
static const struct rr_op rr_ops[] = {
    RR_ENTRY(add),  RR_ENTRY(sub),  RR_ENTRY(sll),  RR_ENTRY(slt),  RR_ENTRY(sltu),
    RR_ENTRY(xor),  RR_ENTRY(srl),  RR_ENTRY(sra),  RR_ENTRY(or),   RR_ENTRY(and),
    RR_ENTRY(addw), RR_ENTRY(subw), RR_ENTRY(sllw), RR_ENTRY(srlw), RR_ENTRY(sraw),
};

/* Register-immediate forms: one function per (op, imm). */
#define RI(op, tag, imm)                                                                           \
    static uint64_t ri_##op##_##tag(uint64_t a)                                                    \
    {                                                                                              \
        uint64_t r;                                                                                \
        __asm__ volatile(#op " %0, %1, %2" : "=r"(r) : "r"(a), "i"(imm));                          \
        return r;                                                                                  \
    }
#define IMM12(X, op)                                                                               \
    X(op, 0, 0)                                                                                    \
    X(op, 1, 1)                                                                                    \
    X(op, m1, -1) X(op, 2047, 2047) X(op, m2048, -2048) X(op, 0x555, 0x555) X(op, m0x556, -0x556)
#define SH64(X, op) X(op, 0, 0) X(op, 1, 1) X(op, 13, 13) X(op, 31, 31) X(op, 32, 32) X(op, 63, 63)
#define SH32(X, op) X(op, 0, 0) X(op, 1, 1) X(op, 13, 13) X(op, 31, 31)

IMM12(RI, addi)
IMM12(RI, slti)
IMM12(RI, sltiu)
IMM12(RI, xori)
IMM12(RI, ori)
IMM12(RI, andi)
IMM12(RI, addiw)
SH64(RI, slli)
SH64(RI, srli)
SH64(RI, srai)
SH32(RI, slliw)
SH32(RI, srliw)
SH32(RI, sraiw)

struct ri_op {
    const char *name;
    long imm;
    uint64_t (*fn)(uint64_t);
};
#define RI_ENTRY(op, tag, imm) {#op, imm, ri_##op##_##tag},
static const struct ri_op ri_ops[] = {
    IMM12(RI_ENTRY, addi) IMM12(RI_ENTRY, slti) IMM12(RI_ENTRY, sltiu) IMM12(RI_ENTRY, xori)
        IMM12(RI_ENTRY, ori) IMM12(RI_ENTRY, andi) IMM12(RI_ENTRY, addiw) SH64(RI_ENTRY, slli)
            SH64(RI_ENTRY, srli) SH64(RI_ENTRY, srai) SH32(RI_ENTRY, slliw) SH32(RI_ENTRY, srliw)
                SH32(RI_ENTRY, sraiw)};

#define LUI(tag, imm)                                                                              \
    static void lui_##tag(void)                                                                    \
    {                                                                                              \
        uint64_t r, pc, d;                                                                         \
        __asm__ volatile("lui %0, %1" : "=r"(r) : "i"(imm));                                       \
        rt_printf("lui %05x -> %016lx\n", imm, r);                                                 \
        __asm__ volatile("1: auipc %0, %2\n\t"                                                     \
                         "lla %1, 1b"                                                              \
                         : "=r"(r), "=r"(pc)                                                       \
                         : "i"(imm));                                                              \
        d = r - pc;                                                                                \
        rt_printf("auipc %05x -> pc+%016lx (%016lx)\n", imm, d, r);                                \
    }
LUI(0, 0)
LUI(1, 1)
LUI(7ffff, 0x7ffff)
LUI(80000, 0x80000)
LUI(fffff, 0xfffff)
LUI(12345, 0x12345)
LUI(abcde, 0xabcde)

static void test_x0(void)
{
    uint64_t r;
    __asm__ volatile("li t0, 5\n\t"
                     "add x0, t0, t0\n\t"
                     "addi x0, t0, 7\n\t"
                     "lui x0, 0x12345\n\t"
                     "mv %0, x0"
                     : "=r"(r)
                     :
                     : "t0");
    rt_printf("x0 after writes -> %lx\n", r);
    RT_CHECK(r == 0);
}

int main(void)
{
    rt_printf("values:");
    for (unsigned i = 0; i < NVALS; i++)
        rt_printf(" %lx", vals[i]);
    rt_printf("\nop a: op(a, b) for each b in values\n");
    for (unsigned o = 0; o < sizeof(rr_ops) / sizeof(rr_ops[0]); o++) {
        for (unsigned i = 0; i < NVALS; i++) {
            rt_printf("%s %lx:", rr_ops[o].name, vals[i]);
            for (unsigned j = 0; j < NVALS; j++)
                rt_printf(" %lx", rr_ops[o].fn(vals[i], vals[j]));
            rt_printf("\n");
        }
    }
    rt_printf("op imm: op(a, imm) for each a in values\n");
    for (unsigned o = 0; o < sizeof(ri_ops) / sizeof(ri_ops[0]); o++) {
        rt_printf("%s %ld:", ri_ops[o].name, ri_ops[o].imm);
        for (unsigned i = 0; i < NVALS; i++)
            rt_printf(" %lx", ri_ops[o].fn(vals[i]));
        rt_printf("\n");
    }
    lui_0();
    lui_1();
    lui_7ffff();
    lui_80000();
    lui_fffff();
    lui_12345();
    lui_abcde();
    test_x0();
    /* A few known answers so a common bug on both sides cannot hide. */
    RT_CHECK(rr_sraw(0x80000000, 4) == 0xfffffffff8000000);
    RT_CHECK(rr_srlw(0xffffffff80000000, 4) == 0x08000000);
    RT_CHECK(rr_sll(1, 65) == 2);
    RT_CHECK(rr_addw(0x7fffffff, 1) == 0xffffffff80000000);
    RT_CHECK(rr_sltu(0, 0xffffffffffffffff) == 1);
    RT_CHECK(rr_slt(0, 0xffffffffffffffff) == 0);
    RT_CHECK(ri_sltiu_m1(5) == 1);
    RT_CHECK(ri_srai_63(0x8000000000000000) == 0xffffffffffffffff);
    RT_CHECK(ri_sraiw_31(0x80000000) == 0xffffffffffffffff);
    return rt_check_failures();
}
