/*
 * F/D conversions in every static rounding mode (dynamic mode must agree,
 * self-checked): float->int with saturation and the invalid flag
 * (fcvt.{w,wu,l,lu}.{s,d}), int->float rounding (fcvt.{s,d}.{w,wu,l,lu},
 * which only look at the low 32 bits for w/wu), and fcvt.s.d / fcvt.d.s
 * (rounding, overflow, NaN canonicalisation).  Integer results are full
 * 64-bit rd values (W results sign-extended); FP results are raw register
 * bits (single results show their NaN boxing).
 */
#include "rt.h"

#define NRM 5
static const char *const rm_names[NRM] = {"rne", "rtz", "rdn", "rup", "rmm"};

typedef uint64_t (*cvt_fn)(uint64_t a, uint64_t *flags);

/* in: how the operand gets into the instruction; out: how the result leaves. */
#define CVT_F2I(name, insn, mvin, rmstr)                                                           \
    static uint64_t name(uint64_t a, uint64_t *flags)                                              \
    {                                                                                              \
        uint64_t r, f;                                                                             \
        __asm__ volatile(mvin " ft0, %2\n\t"                                                       \
                              "csrw fflags, x0\n\t" insn " %0, ft0" rmstr "\n\t"                   \
                              "csrrw %1, fflags, x0"                                               \
                         : "=r"(r), "=r"(f)                                                        \
                         : "r"(a)                                                                  \
                         : "ft0");                                                                 \
        *flags = f;                                                                                \
        return r;                                                                                  \
    }
#define CVT_I2F(name, insn, mvin, rmstr)                                                           \
    static uint64_t name(uint64_t a, uint64_t *flags)                                              \
    {                                                                                              \
        uint64_t r, f;                                                                             \
        __asm__ volatile("csrw fflags, x0\n\t" insn " ft3, %2" rmstr "\n\t"                        \
                         "fmv.x.d %0, ft3\n\t"                                                     \
                         "csrrw %1, fflags, x0"                                                    \
                         : "=r"(r), "=r"(f)                                                        \
                         : "r"(a)                                                                  \
                         : "ft3");                                                                 \
        *flags = f;                                                                                \
        return r;                                                                                  \
    }
#define CVT_F2F(name, insn, mvin, rmstr)                                                           \
    static uint64_t name(uint64_t a, uint64_t *flags)                                              \
    {                                                                                              \
        uint64_t r, f;                                                                             \
        __asm__ volatile(mvin " ft0, %2\n\t"                                                       \
                              "csrw fflags, x0\n\t" insn " ft3, ft0" rmstr "\n\t"                  \
                              "fmv.x.d %0, ft3\n\t"                                                \
                              "csrrw %1, fflags, x0"                                               \
                         : "=r"(r), "=r"(f)                                                        \
                         : "r"(a)                                                                  \
                         : "ft0", "ft3");                                                          \
        *flags = f;                                                                                \
        return r;                                                                                  \
    }

/* fcvt.d.w, fcvt.d.wu and fcvt.d.s are exact: the assembler takes no rm. */
#define CVT_I2F_EXACT(name, insn, mvin, rmstr) CVT_I2F(name, insn, mvin, "")
#define CVT_F2F_EXACT(name, insn, mvin, rmstr) CVT_F2F(name, insn, mvin, "")

#define ALL_RM(KIND, tag, insn, mvin)                                                              \
    KIND(tag##_rne, insn, mvin, ", rne")                                                           \
    KIND(tag##_rtz, insn, mvin, ", rtz")                                                           \
    KIND(tag##_rdn, insn, mvin, ", rdn")                                                           \
    KIND(tag##_rup, insn, mvin, ", rup")                                                           \
    KIND(tag##_rmm, insn, mvin, ", rmm") KIND(tag##_dyn, insn, mvin, "")

ALL_RM(CVT_F2I, w_s, "fcvt.w.s", "fmv.w.x")
ALL_RM(CVT_F2I, wu_s, "fcvt.wu.s", "fmv.w.x")
ALL_RM(CVT_F2I, l_s, "fcvt.l.s", "fmv.w.x")
ALL_RM(CVT_F2I, lu_s, "fcvt.lu.s", "fmv.w.x")
ALL_RM(CVT_F2I, w_d, "fcvt.w.d", "fmv.d.x")
ALL_RM(CVT_F2I, wu_d, "fcvt.wu.d", "fmv.d.x")
ALL_RM(CVT_F2I, l_d, "fcvt.l.d", "fmv.d.x")
ALL_RM(CVT_F2I, lu_d, "fcvt.lu.d", "fmv.d.x")
ALL_RM(CVT_I2F, s_w, "fcvt.s.w", "")
ALL_RM(CVT_I2F, s_wu, "fcvt.s.wu", "")
ALL_RM(CVT_I2F, s_l, "fcvt.s.l", "")
ALL_RM(CVT_I2F, s_lu, "fcvt.s.lu", "")
ALL_RM(CVT_I2F_EXACT, d_w, "fcvt.d.w", "")
ALL_RM(CVT_I2F_EXACT, d_wu, "fcvt.d.wu", "")
ALL_RM(CVT_I2F, d_l, "fcvt.d.l", "")
ALL_RM(CVT_I2F, d_lu, "fcvt.d.lu", "")
ALL_RM(CVT_F2F, s_d, "fcvt.s.d", "fmv.d.x")
ALL_RM(CVT_F2F_EXACT, d_s, "fcvt.d.s", "fmv.w.x")

struct cvt_op {
    const char *name;
    int src; /* 's', 'd' or 'i': which value list */
    cvt_fn rm[NRM];
    cvt_fn dyn;
};
#define OPE(tag, name, src)                                                                        \
    {                                                                                              \
        name, src, {tag##_rne, tag##_rtz, tag##_rdn, tag##_rup, tag##_rmm}, tag##_dyn              \
    }
static const struct cvt_op ops[] = {
    OPE(w_s, "fcvt.w.s", 's'),   OPE(wu_s, "fcvt.wu.s", 's'), OPE(l_s, "fcvt.l.s", 's'),
    OPE(lu_s, "fcvt.lu.s", 's'), OPE(w_d, "fcvt.w.d", 'd'),   OPE(wu_d, "fcvt.wu.d", 'd'),
    OPE(l_d, "fcvt.l.d", 'd'),   OPE(lu_d, "fcvt.lu.d", 'd'), OPE(s_w, "fcvt.s.w", 'i'),
    OPE(s_wu, "fcvt.s.wu", 'i'), OPE(s_l, "fcvt.s.l", 'i'),   OPE(s_lu, "fcvt.s.lu", 'i'),
    OPE(d_w, "fcvt.d.w", 'i'),   OPE(d_wu, "fcvt.d.wu", 'i'), OPE(d_l, "fcvt.d.l", 'i'),
    OPE(d_lu, "fcvt.d.lu", 'i'), OPE(s_d, "fcvt.s.d", 'd'),   OPE(d_s, "fcvt.d.s", 's'),
};

static const uint64_t svals[] = {
    0x00000000, /* 0 */
    0x80000000, /* -0 */
    0x3f000000, /* 0.5 */
    0x3fc00000, /* 1.5 */
    0x40200000, /* 2.5 */
    0xbf000000, /* -0.5 */
    0xbfc00000, /* -1.5 */
    0xc0200000, /* -2.5 */
    0x3f7fffff, /* 0.99999994 */
    0xbf800000, /* -1 */
    0x4effffff, /* 2^31 - 128 */
    0x4f000000, /* 2^31 */
    0xcf000000, /* -2^31 */
    0xcf000001, /* -2^31 - 256 */
    0x4f800000, /* 2^32 */
    0x5effffff, /* 2^63 - 2^39 */
    0x5f000000, /* 2^63 */
    0xdf000000, /* -2^63 */
    0xdf000001, /* below -2^63 */
    0x5f800000, /* 2^64 */
    0x7f7fffff, /* max */
    0x00000001, /* min subnormal */
    0x80000001, /* -min subnormal */
    0x7f800000, /* inf */
    0xff800000, /* -inf */
    0x7fc00000, /* qNaN */
    0xffc00000, /* -qNaN */
    0x7f800001, /* sNaN */
    0x3fffffff, /* 1.9999999 */
};
static const uint64_t dvals[] = {
    0x0000000000000000, /* 0 */
    0x8000000000000000, /* -0 */
    0x3fe0000000000000, /* 0.5 */
    0x3ff8000000000000, /* 1.5 */
    0x4004000000000000, /* 2.5 */
    0xbfe0000000000000, /* -0.5 */
    0xbff8000000000000, /* -1.5 */
    0xc004000000000000, /* -2.5 */
    0xbff0000000000000, /* -1 */
    0x41dfffffffe00000, /* 2^31 - 0.5 */
    0x41dfffffffc00000, /* 2^31 - 1 */
    0x41e0000000000000, /* 2^31 */
    0xc1e0000000000000, /* -2^31 */
    0xc1e0000000100000, /* -2^31 - 0.5 */
    0xc1e0000000200000, /* -2^31 - 1 */
    0x41efffffffe00000, /* 2^32 - 1 */
    0x41effffffff00000, /* 2^32 - 0.5 */
    0x41f0000000000000, /* 2^32 */
    0x43dfffffffffffff, /* 2^63 - 1024 */
    0x43e0000000000000, /* 2^63 */
    0xc3e0000000000000, /* -2^63 */
    0xc3e0000000000001, /* below -2^63 */
    0x43f0000000000000, /* 2^64 */
    0x7fefffffffffffff, /* max */
    0x47efffffe0000000, /* single max */
    0x47efffffefffffff, /* just under single max + half ulp */
    0x47effffff0000000, /* single max + half ulp: overflows in rne */
    0x3810000000000000, /* single min normal */
    0x36a0000000000000, /* single min subnormal */
    0x3690000000000000, /* half single min subnormal */
    0x0000000000000001, /* min subnormal */
    0x7ff0000000000000, /* inf */
    0xfff0000000000000, /* -inf */
    0x7ff8000000000000, /* qNaN */
    0xfff8000000000001, /* -qNaN with payload */
    0x7ff0000000000001, /* sNaN */
    0x3fb999999999999a, /* 0.1 */
};
static const uint64_t ivals[] = {
    0,
    1,
    0xffffffffffffffff,
    0xfffffffffffffffd,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    0xffffffff00000001,
    0x1000001,
    0xffffff,
    0x7fffffffffffffff,
    0x8000000000000000,
    0x20000000000001,
    0x1fffffffffffff,
    0x123456789abcdef0,
    0xfedcba9876543281,
};

static void run(const struct cvt_op *op, uint64_t a)
{
    uint64_t r[NRM], fl[NRM];
    for (int m = 0; m < NRM; m++) {
        uint64_t d, dfl;
        r[m] = op->rm[m](a, &fl[m]);
        csr_write(frm, m);
        d = op->dyn(a, &dfl);
        csr_write(frm, 0);
        if (d != r[m] || dfl != fl[m]) {
            rt_printf(" [dyn %s: %lx/%lx]", rm_names[m], d, dfl);
            RT_CHECK(d == r[m] && dfl == fl[m]);
        }
    }
    rt_printf(" %lx/%lx", r[0], fl[0]);
    int open = 0;
    for (int m = 1; m < NRM; m++) {
        if (r[m] == r[0] && fl[m] == fl[0])
            continue;
        rt_printf("%c%s:%lx/%lx", open ? ',' : '{', rm_names[m], r[m], fl[m]);
        open = 1;
    }
    if (open)
        rt_putc('}');
}

static void print_list(const char *name, const uint64_t *v, unsigned n)
{
    rt_printf("%s values:", name);
    for (unsigned i = 0; i < n; i++)
        rt_printf(" %lx", v[i]);
    rt_printf("\n");
}

int main(void)
{
    const unsigned ns = sizeof(svals) / sizeof(svals[0]);
    const unsigned nd = sizeof(dvals) / sizeof(dvals[0]);
    const unsigned ni = sizeof(ivals) / sizeof(ivals[0]);
    print_list("single", svals, ns);
    print_list("double", dvals, nd);
    print_list("integer", ivals, ni);
    rt_printf("result = rne value/fflags {other rounding modes that differ}\n");
    for (unsigned o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
        const uint64_t *v = ops[o].src == 's' ? svals : ops[o].src == 'd' ? dvals : ivals;
        unsigned n = ops[o].src == 's' ? ns : ops[o].src == 'd' ? nd : ni;
        rt_printf("%s:", ops[o].name);
        for (unsigned i = 0; i < n; i++)
            run(&ops[o], v[i]);
        rt_printf("\n");
    }
    /* Known answers (spec table 11.4 / 12): saturation and NaN -> max. */
    uint64_t f;
    RT_CHECK(w_s_rne(0x7fc00000, &f) == 0x7fffffff && f == 0x10);
    RT_CHECK(wu_d_rtz(0xbff0000000000000, &f) == 0 && f == 0x10);
    RT_CHECK(wu_d_rtz(0xbfe0000000000000, &f) == 0 && f == 0x1);
    RT_CHECK(lu_s_rne(0xff800000, &f) == 0 && f == 0x10);
    RT_CHECK(l_d_rne(0x7ff0000000000000, &f) == 0x7fffffffffffffff && f == 0x10);
    RT_CHECK(wu_s_rne(0x4f800000, &f) == 0xffffffffffffffff && f == 0x10);
    RT_CHECK(d_s_rne(0x7f800001, &f) == 0x7ff8000000000000 && f == 0x10);
    return rt_check_failures();
}
