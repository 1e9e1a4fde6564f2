/*
 * Zifencei: code written to RAM as data runs after fence.i; rewriting code
 * that already ran (and ran often) takes effect after fence.i, for both
 * 4-byte and compressed encodings; and a store that rewrites an instruction
 * later in the currently executing straight-line block, followed by
 * fence.i, executes the new instruction.
 */
#include "rt.h"

static uint32_t code[16] __attribute__((aligned(64)));

/* addi a0, x0, imm ; jalr x0, 0(ra) */
static void write_li_ret(int imm)
{
    code[0] = ((uint32_t)(imm & 0xfff) << 20) | (10u << 7) | 0x13;
    code[1] = 0x00008067;
}

/* c.li a0, imm ; c.jr ra (one 32-bit word) */
static void write_c_li_ret(int imm)
{
    uint16_t li = (uint16_t)(0x4000 | ((imm & 0x20) << 7) | (10 << 7) | ((imm & 0x1f) << 2) | 1);
    uint16_t jr = 0x8082;
    code[0] = (uint32_t)li | ((uint32_t)jr << 16);
}

static long call_code(void)
{
    long (*fn)(void) = (long (*)(void))(uintptr_t)code;
    return fn();
}

/* Rewrite the addi at 1: to "addi a0, x0, imm", fence.i, then run it. */
static long smc_inline(int imm)
{
    long r;
    uint32_t insn = ((uint32_t)(imm & 0xfff) << 20) | (10u << 7) | 0x13;
    __asm__ volatile("lla t0, 1f\n\t"
                     "sw %1, 0(t0)\n\t"
                     "fence.i\n\t"
                     ".option push\n\t"
                     ".option norvc\n"
                     "1: addi a0, x0, 1\n\t"
                     ".option pop\n\t"
                     "mv %0, a0"
                     : "=&r"(r)
                     : "r"(insn)
                     : "t0", "a0", "memory");
    return r;
}

int main(void)
{
    write_li_ret(11);
    __asm__ volatile("fence.i" ::: "memory");
    long a = call_code();
    long hot = 0;
    for (int i = 0; i < 1000; i++)
        hot += call_code();
    write_li_ret(-22);
    __asm__ volatile("fence.i" ::: "memory");
    long b = call_code();
    write_c_li_ret(31);
    __asm__ volatile("fence.i" ::: "memory");
    long c = call_code();
    write_c_li_ret(-32);
    __asm__ volatile("fence.i" ::: "memory");
    long d = call_code();
    write_li_ret(2047);
    __asm__ volatile("fence.i" ::: "memory");
    long e = call_code();
    rt_printf("smc: %ld hot=%ld %ld %ld %ld %ld\n", a, hot, b, c, d, e);
    RT_CHECK(a == 11 && hot == 11000 && b == -22 && c == 31 && d == -32 && e == 2047);

    long s1 = smc_inline(2);
    long s2 = smc_inline(3);
    long s3 = 0;
    for (int i = 0; i < 100; i++)
        s3 += smc_inline(i);
    rt_printf("inline smc: %ld %ld %ld\n", s1, s2, s3);
    RT_CHECK(s1 == 2 && s2 == 3 && s3 == 4950);
    return rt_check_failures();
}
