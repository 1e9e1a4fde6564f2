/*
 * Directed IEEE corner cases that random and tabulated operands rarely hit:
 * tininess detected after rounding (RISC-V; underflow only if the result
 * rounded with unbounded exponent is below the smallest normal), overflow
 * to max-finite or infinity per rounding mode, exact zero results and their
 * sign per mode, signed zeros through sqrt/min/max/conversions, invalid
 * operations (0/0, inf-inf, inf*0, sqrt(-x)), NaN payloads never
 * propagated (canonical NaN), and conversions at the subnormal boundary.
 * Every case runs in the five static rounding modes; results are raw bits
 * and fflags.
 */
#include "rt.h"

#define NRM 5
static const char *const rm_names[NRM] = {"rne", "rtz", "rdn", "rup", "rmm"};

typedef uint64_t (*fn3)(uint64_t, uint64_t, uint64_t, uint64_t *);

#define OP(name, mv, insn_ops, rmstr)                                                              \
    static uint64_t name(uint64_t a, uint64_t b, uint64_t c, uint64_t *flags)                      \
    {                                                                                              \
        uint64_t r, f;                                                                             \
        __asm__ volatile(mv " ft0, %2\n\t" mv " ft1, %3\n\t" mv " ft2, %4\n\t"                     \
                            "csrw fflags, x0\n\t" insn_ops rmstr "\n\t"                            \
                            "fmv.x.d %0, ft3\n\t"                                                  \
                            "csrrw %1, fflags, x0"                                                 \
                         : "=r"(r), "=r"(f)                                                        \
                         : "r"(a), "r"(b), "r"(c)                                                  \
                         : "ft0", "ft1", "ft2", "ft3");                                            \
        *flags = f;                                                                                \
        return r;                                                                                  \
    }
#define ALL(name, mv, insn_ops)                                                                    \
    OP(name##_rne, mv, insn_ops, ", rne")                                                          \
    OP(name##_rtz, mv, insn_ops, ", rtz")                                                          \
    OP(name##_rdn, mv, insn_ops, ", rdn")                                                          \
    OP(name##_rup, mv, insn_ops, ", rup")                                                          \
    OP(name##_rmm, mv, insn_ops, ", rmm")                                                          \
    static const fn3 name[NRM] = {name##_rne, name##_rtz, name##_rdn, name##_rup, name##_rmm};

ALL(fmul_s, "fmv.w.x", "fmul.s ft3, ft0, ft1")
ALL(fadd_s, "fmv.w.x", "fadd.s ft3, ft0, ft1")
ALL(fsub_s, "fmv.w.x", "fsub.s ft3, ft0, ft1")
ALL(fdiv_s, "fmv.w.x", "fdiv.s ft3, ft0, ft1")
ALL(fsqrt_s, "fmv.w.x", "fsqrt.s ft3, ft0")
ALL(fmadd_s, "fmv.w.x", "fmadd.s ft3, ft0, ft1, ft2")
ALL(fnmsub_s, "fmv.w.x", "fnmsub.s ft3, ft0, ft1, ft2")
ALL(fmul_d, "fmv.d.x", "fmul.d ft3, ft0, ft1")
ALL(fadd_d, "fmv.d.x", "fadd.d ft3, ft0, ft1")
ALL(fsub_d, "fmv.d.x", "fsub.d ft3, ft0, ft1")
ALL(fdiv_d, "fmv.d.x", "fdiv.d ft3, ft0, ft1")
ALL(fsqrt_d, "fmv.d.x", "fsqrt.d ft3, ft0")
ALL(fmadd_d, "fmv.d.x", "fmadd.d ft3, ft0, ft1, ft2")
ALL(fcvt_s_d, "fmv.d.x", "fcvt.s.d ft3, ft0")

static void run(const char *what, const fn3 *f, uint64_t a, uint64_t b, uint64_t c)
{
    rt_printf("%-34s", what);
    for (int m = 0; m < NRM; m++) {
        uint64_t fl, r = f[m](a, b, c, &fl);
        rt_printf(" %s:%lx/%lx", rm_names[m], (unsigned long)r, (unsigned long)fl);
    }
    rt_printf("\n");
}

int main(void)
{
    /* Tininess after rounding: (2^-126 (1-2^-23)) * (1+2^-23) = 2^-126 (1-2^-46) */
    run("s tiny-after-round mul", fmul_s, 0x007fffff, 0x3f800001, 0);
    run("s tiny-after-round mul neg", fmul_s, 0x807fffff, 0x3f800001, 0);
    run("s exactly min normal", fmul_s, 0x00800000, 0x3f800000, 0);
    run("s subnormal exact (no UF)", fmul_s, 0x00800000, 0x3f000000, 0);
    run("s subnormal inexact (UF)", fmul_s, 0x00800001, 0x3f000000, 0);
    run("s fma tiny-after-round", fmadd_s, 0x007fffff, 0x3f800001, 0x00000000);
    run("s fma below min subnormal", fmadd_s, 0x00000001, 0x3e800000, 0x00000000);
    run("d tiny-after-round mul", fmul_d, 0x000fffffffffffff, 0x3ff0000000000001, 0);
    run("d min subnormal * 0.5", fmul_d, 0x0000000000000001, 0x3fe0000000000000, 0);
    run("d min subnormal * 0.75", fmul_d, 0x0000000000000001, 0x3fe8000000000000, 0);
    run("d add to subnormal", fadd_d, 0x0010000000000001, 0x8010000000000000, 0);
    /* Overflow: to max finite or infinity depending on mode and sign. */
    run("s overflow +", fmul_s, 0x7f7fffff, 0x40000000, 0);
    run("s overflow -", fmul_s, 0xff7fffff, 0x40000000, 0);
    run("s max + half ulp", fadd_s, 0x7f7fffff, 0x73000000, 0);
    run("s max + quarter ulp", fadd_s, 0x7f7fffff, 0x72800000, 0);
    run("d overflow +", fmul_d, 0x7fefffffffffffff, 0x4000000000000000, 0);
    run("d overflow - (div)", fdiv_d, 0xffefffffffffffff, 0x3fe0000000000000, 0);
    run("d fcvt.s.d overflow", fcvt_s_d, 0x47f0000000000000, 0, 0);
    run("d fcvt.s.d tiny-after-round", fcvt_s_d, 0x380fffffffc00000, 0, 0);
    run("d fcvt.s.d to subnormal", fcvt_s_d, 0x3690000000000001, 0, 0);
    /* Exact zero results: +0 except in rdn, where x - x = -0. */
    run("s x - x", fsub_s, 0x3fc00000, 0x3fc00000, 0);
    run("s -0 + +0", fadd_s, 0x80000000, 0x00000000, 0);
    run("s -0 + -0", fadd_s, 0x80000000, 0x80000000, 0);
    run("d fma 1*1 - 1", fmadd_d, 0x3ff0000000000000, 0x3ff0000000000000, 0xbff0000000000000);
    run("d fma -0*1 + 0", fmadd_d, 0x8000000000000000, 0x3ff0000000000000, 0);
    run("s fnmsub 1*1 - 1", fnmsub_s, 0x3f800000, 0x3f800000, 0x3f800000);
    /* Signed zeros and invalid operations. */
    run("s sqrt(-0)", fsqrt_s, 0x80000000, 0, 0);
    run("d sqrt(-min subnormal)", fsqrt_d, 0x8000000000000001, 0, 0);
    run("s 0/0", fdiv_s, 0x00000000, 0x80000000, 0);
    run("s 1/-0", fdiv_s, 0x3f800000, 0x80000000, 0);
    run("d inf-inf", fsub_d, 0x7ff0000000000000, 0x7ff0000000000000, 0);
    run("d inf/inf", fdiv_d, 0xfff0000000000000, 0x7ff0000000000000, 0);
    run("d x/inf", fdiv_d, 0xc000000000000000, 0x7ff0000000000000, 0);
    run("d fma inf*0 + 1", fmadd_d, 0x7ff0000000000000, 0, 0x3ff0000000000000);
    run("d fma inf*2 - inf", fmadd_d, 0x7ff0000000000000, 0x4000000000000000, 0xfff0000000000000);
    /* NaN payloads are not propagated: results are the canonical NaN. */
    run("s qNaN payload + 1", fadd_s, 0x7fc12345, 0x3f800000, 0);
    run("s sNaN payload * 1", fmul_s, 0xff812345, 0x3f800000, 0);
    run("d qNaN payload sqrt", fsqrt_d, 0xfff8000000abcdef, 0, 0);
    run("d fcvt.s.d of NaN payload", fcvt_s_d, 0x7ff8000012345678, 0, 0);
    run("d fma with qNaN addend", fmadd_d, 0x3ff0000000000000, 0x3ff0000000000000,
        0x7ff8000000000001);
    /* Ties to even and to max magnitude. */
    run("s 1 + 2^-24 (tie)", fadd_s, 0x3f800000, 0x33800000, 0);
    run("s 1+2^-23 + 2^-24 (tie)", fadd_s, 0x3f800001, 0x33800000, 0);
    run("s -1 - 2^-24 (tie)", fsub_s, 0xbf800000, 0x33800000, 0);
    run("d 1 + 2^-53 (tie)", fadd_d, 0x3ff0000000000000, 0x3ca0000000000000, 0);
    return rt_check_failures();
}
