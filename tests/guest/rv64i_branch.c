/*
 * RV64I control transfer: the six conditional branches over operand pairs
 * (taken or not, forward and backward), JAL and JALR link values, JALR
 * offsets with the low bit cleared, and JALR with rd == rs1.
 */
#include "rt.h"

static const uint64_t vals[] = {
    0,
    1,
    2,
    0x7fffffff,
    0x80000000,
    0x7fffffffffffffff,
    0x8000000000000000,
    0xffffffffffffffff,
    0xfffffffffffffffe,
};
#define NVALS (sizeof(vals) / sizeof(vals[0]))

/* Forward branch: returns 1 if taken. */
#define BR_FWD(op)                                                                                 \
    static int fwd_##op(uint64_t a, uint64_t b)                                                    \
    {                                                                                              \
        int t;                                                                                     \
        __asm__ volatile("li %0, 1\n\t" #op " %1, %2, 1f\n\t"                                      \
                         "li %0, 0\n"                                                              \
                         "1:"                                                                      \
                         : "=&r"(t)                                                                \
                         : "r"(a), "r"(b));                                                        \
        return t;                                                                                  \
    }
/* Backward branch: the branch sits after its target; returns 1 if taken. */
#define BR_BWD(op)                                                                                 \
    static int bwd_##op(uint64_t a, uint64_t b)                                                    \
    {                                                                                              \
        int t;                                                                                     \
        __asm__ volatile("li %0, 0\n\t"                                                            \
                         "j 2f\n"                                                                  \
                         "1: li %0, 1\n\t"                                                         \
                         "j 3f\n"                                                                  \
                         "2: " #op " %1, %2, 1b\n"                                                 \
                         "3:"                                                                      \
                         : "=&r"(t)                                                                \
                         : "r"(a), "r"(b));                                                        \
        return t;                                                                                  \
    }
#define BR(op) BR_FWD(op) BR_BWD(op)
BR(beq)
BR(bne)
BR(blt)
BR(bge)
BR(bltu)
BR(bgeu)

struct br_op {
    const char *name;
    int (*fwd)(uint64_t, uint64_t);
    int (*bwd)(uint64_t, uint64_t);
};
#define BR_ENTRY(op)                                                                               \
    {                                                                                              \
#op, fwd_##op, bwd_##op                                                                    \
    }
static const struct br_op br_ops[] = {
    BR_ENTRY(beq), BR_ENTRY(bne), BR_ENTRY(blt), BR_ENTRY(bge), BR_ENTRY(bltu), BR_ENTRY(bgeu),
};

static void test_branches(void)
{
    for (unsigned o = 0; o < sizeof(br_ops) / sizeof(br_ops[0]); o++) {
        for (unsigned i = 0; i < NVALS; i++) {
            char line[NVALS + 1];
            for (unsigned j = 0; j < NVALS; j++) {
                int f = br_ops[o].fwd(vals[i], vals[j]);
                int b = br_ops[o].bwd(vals[i], vals[j]);
                line[j] = (char)('0' + f + 2 * b);
            }
            line[NVALS] = 0;
            rt_printf("%s %016lx: %s\n", br_ops[o].name, vals[i], line);
        }
    }
    RT_CHECK(fwd_blt(0xffffffffffffffff, 0) == 1);
    RT_CHECK(fwd_bltu(0xffffffffffffffff, 0) == 0);
    RT_CHECK(bwd_bge(0, 0) == 1);
}

static void test_jal(void)
{
    uint64_t link, here, r;
    /* jal forward over an instruction: link = address after the jal */
    __asm__ volatile("li %2, 0\n\t"
                     "1: jal %0, 2f\n\t"
                     "li %2, 99\n"
                     "2: lla %1, 1b"
                     : "=&r"(link), "=&r"(here), "=&r"(r));
    rt_printf("jal fwd: link-pc=%lx skipped=%lx\n", link - here, r);
    /* jal backward */
    __asm__ volatile("li %2, 0\n\t"
                     "j 2f\n"
                     "1: addi %2, %2, 1\n\t"
                     "j 3f\n"
                     "2: jal %0, 1b\n"
                     "3: lla %1, 2b"
                     : "=&r"(link), "=&r"(here), "=&r"(r));
    rt_printf("jal bwd: link-pc=%lx ran=%lx\n", link - here, r);
    /* jal x0 (plain j) leaves no trace */
    __asm__ volatile("li %0, 7\n\t"
                     "jal x0, 1f\n\t"
                     "li %0, 8\n"
                     "1:"
                     : "=&r"(r));
    rt_printf("jal x0: %lx\n", r);
}

static void test_jalr(void)
{
    uint64_t link, here, r;
    /* jalr with a positive offset and with the target's low bit set */
    __asm__ volatile("lla t0, 2f\n\t"
                     "addi t0, t0, -7\n\t" /* target = 2f - 8 + 1: offset 8 brings it to 2f+1 */
                     "li %2, 0\n"
                     "1: jalr %0, 8(t0)\n\t"
                     "li %2, 1\n"
                     ".balign 4\n"
                     "2: lla %1, 1b"
                     : "=&r"(link), "=&r"(here), "=&r"(r)
                     :
                     : "t0");
    rt_printf("jalr odd target: link-pc=%lx fallthrough=%lx\n", link - here, r);
    /* negative offset */
    __asm__ volatile("lla t0, 2f\n\t"
                     "addi t0, t0, 64\n\t"
                     "li %2, 0\n"
                     "1: jalr %0, -64(t0)\n\t"
                     "li %2, 1\n"
                     "2: lla %1, 1b"
                     : "=&r"(link), "=&r"(here), "=&r"(r)
                     :
                     : "t0");
    rt_printf("jalr neg offset: link-pc=%lx fallthrough=%lx\n", link - here, r);
    /* rd == rs1: the target uses the old value */
    __asm__ volatile("lla t1, 2f\n\t"
                     "li %2, 0\n"
                     "1: jalr t1, 0(t1)\n\t"
                     "li %2, 1\n"
                     "2: lla %1, 1b\n\t"
                     "mv %0, t1"
                     : "=&r"(link), "=&r"(here), "=&r"(r)
                     :
                     : "t1");
    rt_printf("jalr rd==rs1: link-pc=%lx fallthrough=%lx\n", link - here, r);
    RT_CHECK(link - here == 4 && r == 0);
    /* jalr x0 (ret-like) */
    __asm__ volatile("lla t0, 1f\n\t"
                     "li %0, 3\n\t"
                     "jalr x0, 0(t0)\n\t"
                     "li %0, 4\n"
                     "1:"
                     : "=&r"(r)
                     :
                     : "t0");
    rt_printf("jalr x0: %lx\n", r);
}

static void test_loop(void)
{
    uint64_t sum = 0, i = 0;
    __asm__ volatile("li %1, 100\n\t"
                     "li %0, 0\n"
                     "1: add %0, %0, %1\n\t"
                     "addi %1, %1, -1\n\t"
                     "bnez %1, 1b"
                     : "=&r"(sum), "=&r"(i));
    rt_printf("loop sum 1..100 = %lu\n", sum);
    RT_CHECK(sum == 5050);
}

int main(void)
{
    test_branches();
    test_jal();
    test_jalr();
    test_loop();
    return rt_check_failures();
}
