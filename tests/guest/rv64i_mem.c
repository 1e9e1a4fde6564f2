/*
 * RV64I loads and stores: every width with sign/zero extension at every
 * aligned offset of a patterned buffer, positive/negative/extreme 12-bit
 * offsets, stores of every width (buffer dumped after each), little-endian
 * byte order, and a load into x0.  Misaligned accesses are in traps.c.
 */
#include "rt.h"

static uint8_t buf[64] __attribute__((aligned(16)));
static uint8_t big[4096 + 64] __attribute__((aligned(16)));

static void fill(void)
{
    for (int i = 0; i < 64; i++)
        buf[i] = (uint8_t)(0x71 + i * 0x25);
}

static void dump(const char *what)
{
    rt_printf("%s:", what);
    for (int i = 0; i < 32; i++)
        rt_printf(" %02x", buf[i]);
    rt_printf("\n");
}

#define LOAD(op)                                                                                   \
    static uint64_t ld_##op(const void *p)                                                         \
    {                                                                                              \
        uint64_t r;                                                                                \
        __asm__ volatile(#op " %0, 0(%1)" : "=r"(r) : "r"(p) : "memory");                          \
        return r;                                                                                  \
    }
LOAD(lb)
LOAD(lbu)
LOAD(lh)
LOAD(lhu)
LOAD(lw)
LOAD(lwu)
LOAD(ld)

#define STORE(op)                                                                                  \
    static void st_##op(void *p, uint64_t v)                                                       \
    {                                                                                              \
        __asm__ volatile(#op " %1, 0(%0)" ::"r"(p), "r"(v) : "memory");                            \
    }
STORE(sb)
STORE(sh)
STORE(sw)
STORE(sd)

static void test_loads(void)
{
    fill();
    dump("pattern");
    for (int off = 0; off < 16; off++) {
        rt_printf("off %2d: lb %016lx lbu %016lx", off, ld_lb(buf + off), ld_lbu(buf + off));
        if (off % 2 == 0)
            rt_printf(" lh %016lx lhu %016lx", ld_lh(buf + off), ld_lhu(buf + off));
        if (off % 4 == 0)
            rt_printf(" lw %016lx lwu %016lx", ld_lw(buf + off), ld_lwu(buf + off));
        if (off % 8 == 0)
            rt_printf(" ld %016lx", ld_ld(buf + off));
        rt_printf("\n");
    }
    /* Sign extension with the top bit clear and set. */
    uint8_t ext[8] = {0x7f, 0x80, 0xff, 0x7f, 0x00, 0x80, 0xff, 0xff};
    rt_printf("ext lb %lx %lx lh %lx %lx lw %lx %lx\n", ld_lb(ext), ld_lb(ext + 1), ld_lh(ext + 2),
              ld_lh(ext + 4), ld_lw(ext), ld_lw(ext + 4));
    RT_CHECK(ld_lb(ext + 1) == 0xffffffffffffff80);
    RT_CHECK(ld_lbu(ext + 1) == 0x80);
    RT_CHECK(ld_lhu(ext + 4) == 0x8000);
    RT_CHECK(ld_lw(ext + 4) == 0xffffffffffff8000);
}

static void test_offsets(void)
{
    for (int i = 0; i < (int)sizeof(big); i++)
        big[i] = (uint8_t)(i ^ (i >> 8));
    uint8_t *mid = big + 2048;
    uint64_t a, b, c, d;
    __asm__ volatile("ld %0, 2040(%4)\n\t"
                     "ld %1, -2048(%4)\n\t"
                     "lbu %2, 2047(%4)\n\t"
                     "lb %3, -1(%4)"
                     : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d)
                     : "r"(mid)
                     : "memory");
    rt_printf("offsets: ld+2040 %016lx ld-2048 %016lx lbu+2047 %lx lb-1 %lx\n", a, b, c, d);
    __asm__ volatile("sd %1, 2040(%0)\n\t"
                     "sd %1, -2048(%0)\n\t"
                     "sb %1, 2047(%0)\n\t"
                     "sh %1, -2(%0)" ::"r"(mid),
                     "r"(0x0123456789abcdefUL)
                     : "memory");
    rt_printf("stored: %016lx %016lx %02x %04x\n", *(uint64_t *)(mid + 2040),
              *(uint64_t *)(mid - 2048), mid[2047], *(uint16_t *)(mid - 2));
    /* Load into x0 still reads; the register stays zero. */
    uint64_t z;
    __asm__ volatile("ld x0, 0(%1)\n\tmv %0, x0" : "=r"(z) : "r"(mid) : "memory");
    rt_printf("ld x0 -> %lx\n", z);
}

static void test_stores(void)
{
    const uint64_t v = 0x8899aabbccddeeffUL;
    for (int off = 0; off < 16; off++) {
        fill();
        st_sb(buf + off, v);
        rt_printf("sb %2d", off);
        dump("");
    }
    for (int off = 0; off < 16; off += 2) {
        fill();
        st_sh(buf + off, v);
        rt_printf("sh %2d", off);
        dump("");
    }
    for (int off = 0; off < 16; off += 4) {
        fill();
        st_sw(buf + off, v);
        rt_printf("sw %2d", off);
        dump("");
    }
    for (int off = 0; off < 16; off += 8) {
        fill();
        st_sd(buf + off, v);
        rt_printf("sd %2d", off);
        dump("");
    }
    fill();
    st_sw(buf, 0x11223344);
    RT_CHECK(buf[0] == 0x44 && buf[3] == 0x11);
    /* Store then load the same address at different widths. */
    st_sd(buf, 0xfedcba9876543210UL);
    st_sb(buf + 3, 0x5a);
    rt_printf("mixed: ld %016lx lw %016lx lhu %lx\n", ld_ld(buf), ld_lw(buf + 4), ld_lhu(buf + 2));
}

int main(void)
{
    test_loads();
    test_offsets();
    test_stores();
    return rt_check_failures();
}
