/*
 * RISC-V F/D arithmetic (fpu.h): host-FPU fast paths in front of the exact
 * soft float of fpu_soft.c.
 *
 * A fast path is taken only where the host (x86-64 SSE, or any IEEE 754 host
 * FPU in round-to-nearest-even) provably returns the RISC-V result:
 *   - the rounding mode is RNE; sqrt also serves RTZ/RDN/RUP/RMM by an exact
 *     integer comparison of r*r with the operand, float-to-int also RTZ
 *     (truncating conversion), int-to-float every mode when exact;
 *   - the result is finite and, for operations that can underflow, larger
 *     in magnitude than the smallest normal, so neither OF nor UF can be
 *     due and no NaN needs canonicalizing (the host's flags and NaN
 *     conventions never matter);
 *   - the only flag left is NX, which is either already set in *fflags (the
 *     accrued flags are sticky, so nothing needs to be computed: QEMU's
 *     hardfloat trick) or derived exactly with integer arithmetic or an
 *     error-free transformation (Fast2Sum).
 * Everything else -- NaNs, infinities, zeros from mul/div/fma, tiny
 * results, overflow, directed rounding of arithmetic, RMM -- goes to the soft
 * float.
 *
 * Invariant: the host FP environment is the C default (round to nearest,
 * no flush-to-zero / denormals-are-zero), which -ffast-math would break (it
 * links code that sets FTZ/DAZ, and reassociates Fast2Sum away).  Host
 * exception flags are neither read nor cleared.  min/max, comparisons and
 * classify are integer-only.
 */
#include "hart/fpu.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/util.h"
#include "hart/fpu_soft.h"

#if defined(__FAST_MATH__)
#error "fpu.c relies on IEEE 754 semantics: do not build it with -ffast-math"
#endif
#if FLT_EVAL_METHOD != 0
#error "fpu.c needs float and double arithmetic evaluated in their own precision (SSE, not x87)"
#endif

typedef unsigned __int128 u128;

#define F32_SIGN    0x80000000u
#define F32_ABS     0x7fffffffu
#define F32_INF     0x7f800000u
#define F32_QUIET   0x00400000u
#define F32_MINNORM 0x00800000u
#define F32_MANT    0x007fffffu
#define F64_SIGN    0x8000000000000000ull
#define F64_ABS     0x7fffffffffffffffull
#define F64_INF     0x7ff0000000000000ull
#define F64_QUIET   0x0008000000000000ull
#define F64_MINNORM 0x0010000000000000ull
#define F64_MANT    0x000fffffffffffffull

static inline float f32_val(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof(f));
    return f;
}

static inline uint32_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof(b));
    return b;
}

static inline double f64_val(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof(d));
    return d;
}

static inline uint64_t f64_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof(b));
    return b;
}

/* Finite and strictly above the smallest normal: no OF, no UF, no NaN. */
static inline int f32_safe_result(uint32_t r)
{
    return (r & F32_ABS) - (F32_MINNORM + 1) < F32_INF - (F32_MINNORM + 1);
}

static inline int f64_safe_result(uint64_t r)
{
    return (r & F64_ABS) - (F64_MINNORM + 1) < F64_INF - (F64_MINNORM + 1);
}

/* Integer significand of a finite nonzero value (hidden bit for normals). */
static inline uint64_t f64_sig(uint64_t a)
{
    return (a & F64_MANT) | ((a & F64_INF) ? F64_MINNORM : 0);
}

static inline uint64_t odd_part(uint64_t m)
{
    return m >> __builtin_ctzll(m);
}

/*
 * Fast2Sum (Dekker): with |big| >= |small| and r = RN(big + small), the
 * rounding error small - (r - big) is computed exactly and without overflow.
 */
static inline int f64_add_inexact(double x, double y, double r)
{
    double big = fabs(x) >= fabs(y) ? x : y;
    double small = fabs(x) >= fabs(y) ? y : x;
    return small - (r - big) != 0;
}

static inline int f32_add_inexact(float x, float y, float r)
{
    float big = fabsf(x) >= fabsf(y) ? x : y;
    float small = fabsf(x) >= fabsf(y) ? y : x;
    return small - (r - big) != 0;
}

/*
 * Exactness of a fused multiply-add whose rounded result is finite and
 * normal (so every input is finite): a*b + c is exact iff the integer sum
 * of the significand product and the aligned addend has at most p
 * significant bits.  Returns 1 (inexact), 0 (exact), 2 (an exact zero: the
 * only exact zero result; a zero from underflow is not) or -1 when the two
 * terms are too far apart for 128 bits (the caller then asks the soft float).
 */
static inline int fma_inexact(int fmt, uint64_t a, uint64_t b, uint64_t c)
{
    int mb = fmt == RV_SOFT_F64 ? 52 : 23, p = mb + 1;
    uint64_t mmask = (1ull << mb) - 1, emask = fmt == RV_SOFT_F64 ? 0x7ff : 0xff;
    int ebits = fmt == RV_SOFT_F64 ? 11 : 8;
    int fa = (int)((a >> mb) & emask), fb = (int)((b >> mb) & emask), fc = (int)((c >> mb) & emask);
    /* value = m * 2^(max(field, 1) - bias - mb), hidden bit for normals */
    u128 x = (u128)((a & mmask) | (fa ? 1ull << mb : 0)) * ((b & mmask) | (fb ? 1ull << mb : 0));
    u128 y = (c & mmask) | (fc ? 1ull << mb : 0);
    int d = (fc ? fc : 1) - (fa ? fa : 1) - (fb ? fb : 1) + (emask >> 1) + mb; /* y vs x units */

    if (d < 2 * p - 126 || d > 126 - p) /* x < 2^(2p), y < 2^p must stay below 2^126 */
        return -1;
    if (d >= 0)
        y <<= d;
    else
        x <<= -d;
    int neg = (int)(((a ^ b ^ c) >> (mb + ebits)) & 1);
    u128 sum = neg ? (x > y ? x - y : y - x) : x + y;
    if (sum == 0)
        return 2;
    uint64_t hi = (uint64_t)(sum >> 64), lo = (uint64_t)sum;
    int lead = hi ? 127 - __builtin_clzll(hi) : 63 - __builtin_clzll(lo);
    int trail = lo ? __builtin_ctzll(lo) : 64 + __builtin_ctzll(hi);
    return lead - trail + 1 > p;
}

/* ---- binary64 arithmetic --------------------------------------------------- */

uint64_t rv_f64_add(uint64_t a, uint64_t b, int rm, unsigned *fflags)
{
    if (gw_likely(rm == RV_RM_RNE)) {
        double x = f64_val(a), y = f64_val(b), r = x + y;
        uint64_t rb = f64_bits(r);
        /* sums never round in the subnormal range, so finite is enough */
        if (gw_likely((rb & F64_INF) != F64_INF)) {
            if (!(*fflags & RV_FFLAG_NX) && f64_add_inexact(x, y, r))
                *fflags |= RV_FFLAG_NX;
            return rb;
        }
    }
    return rv_soft_add(RV_SOFT_F64, a, b, rm, fflags);
}

uint64_t rv_f64_sub(uint64_t a, uint64_t b, int rm, unsigned *fflags)
{
    return rv_f64_add(a, b ^ F64_SIGN, rm, fflags);
}

uint64_t rv_f64_mul(uint64_t a, uint64_t b, int rm, unsigned *fflags)
{
    if (gw_likely(rm == RV_RM_RNE)) {
        uint64_t rb = f64_bits(f64_val(a) * f64_val(b));
        if (gw_likely(f64_safe_result(rb))) {
            /* exact iff the odd part of the significand product fits in 53 bits */
            if (!(*fflags & RV_FFLAG_NX) &&
                ((u128)odd_part(f64_sig(a)) * odd_part(f64_sig(b))) >> 53)
                *fflags |= RV_FFLAG_NX;
            return rb;
        }
    }
    /* a finite value times zero: an exact zero in every mode */
    uint64_t xa = a & F64_ABS, xb = b & F64_ABS;
    if ((xa == 0 || xb == 0) && xa < F64_INF && xb < F64_INF)
        return (a ^ b) & F64_SIGN;
    return rv_soft_mul(RV_SOFT_F64, a, b, rm, fflags);
}

uint64_t rv_f64_div(uint64_t a, uint64_t b, int rm, unsigned *fflags)
{
    if (gw_likely(rm == RV_RM_RNE)) {
        uint64_t rb = f64_bits(f64_val(a) / f64_val(b));
        if (gw_likely(f64_safe_result(rb))) {
            /* exact iff r * b == a, i.e. the odd parts of the significands match */
            if (!(*fflags & RV_FFLAG_NX) &&
                (u128)odd_part(f64_sig(rb)) * odd_part(f64_sig(b)) != odd_part(f64_sig(a)))
                *fflags |= RV_FFLAG_NX;
            return rb;
        }
    }
    /* 0 / finite nonzero and finite / inf: an exact zero in every mode */
    uint64_t xa = a & F64_ABS, xb = b & F64_ABS;
    if ((xa == 0 && xb - 1 < F64_INF - 1) || (xa < F64_INF && xb == F64_INF))
        return (a ^ b) & F64_SIGN;
    return rv_soft_div(RV_SOFT_F64, a, b, rm, fflags);
}

/* sqrt of a positive normal: the root is normal, only NX is possible. */
static inline uint64_t f64_sqrt_normal(uint64_t a, int rm, unsigned *fflags)
{
    uint64_t rb = f64_bits(sqrt(f64_val(a)));
    if (rm == RV_RM_RNE && (*fflags & RV_FFLAG_NX))
        return rb;
    /* compare r^2 with a exactly: mr^2 * 2^(2er-104) vs ma * 2^(ea-52) */
    int ea = (int)(a >> 52) - 1023, er = (int)(rb >> 52) - 1023;
    u128 rr = (u128)f64_sig(rb) * f64_sig(rb);
    u128 aa = (u128)f64_sig(a) << (ea - 2 * er + 52);
    if (rr == aa)
        return rb;
    *fflags |= RV_FFLAG_NX;
    /* the root is never halfway between two doubles, so RMM == RNE */
    if (rm == RV_RM_RTZ || rm == RV_RM_RDN)
        return rr > aa ? rb - 1 : rb;
    if (rm == RV_RM_RUP)
        return rr < aa ? rb + 1 : rb;
    return rb;
}

uint64_t rv_f64_sqrt(uint64_t a, int rm, unsigned *fflags)
{
    if (gw_likely((a >> 52) - 1 < 0x7fe))
        return f64_sqrt_normal(a, rm, fflags);
    /* positive subnormal: sqrt(a * 2^108) * 2^-54, both scalings exact */
    if (a - 1 < F64_MINNORM - 1)
        return f64_sqrt_normal(f64_bits(f64_val(a) * 0x1p108), rm, fflags) - (54ull << 52);
    return rv_soft_sqrt(RV_SOFT_F64, a, rm, fflags);
}

uint64_t rv_f64_fma(uint64_t a, uint64_t b, uint64_t c, int rm, unsigned *fflags)
{
    /* host fma() is exactly rounded (a single instruction where the CPU has FMA) */
    if (gw_likely(rm == RV_RM_RNE)) {
        uint64_t rb = f64_bits(fma(f64_val(a), f64_val(b), f64_val(c)));
        if (gw_likely(f64_safe_result(rb))) {
            if (gw_likely(*fflags & RV_FFLAG_NX))
                return rb;
            int inexact = fma_inexact(RV_SOFT_F64, a, b, c);
            if (gw_likely(inexact >= 0)) {
                *fflags |= inexact == 1 ? RV_FFLAG_NX : 0;
                return rb;
            }
        } else if ((rb & F64_ABS) == 0 && fma_inexact(RV_SOFT_F64, a, b, c) == 2) {
            return rb; /* an exact zero: IEEE sign rules, the same as RISC-V's */
        }
    }
    return rv_soft_fma(RV_SOFT_F64, a, b, c, rm, fflags);
}

/* ---- binary32 arithmetic --------------------------------------------------- */

uint32_t rv_f32_add(uint32_t a, uint32_t b, int rm, unsigned *fflags)
{
    if (gw_likely(rm == RV_RM_RNE)) {
        float x = f32_val(a), y = f32_val(b), r = x + y;
        uint32_t rb = f32_bits(r);
        if (gw_likely((rb & F32_INF) != F32_INF)) {
            if (!(*fflags & RV_FFLAG_NX) && f32_add_inexact(x, y, r))
                *fflags |= RV_FFLAG_NX;
            return rb;
        }
    }
    return (uint32_t)rv_soft_add(RV_SOFT_F32, a, b, rm, fflags);
}

uint32_t rv_f32_sub(uint32_t a, uint32_t b, int rm, unsigned *fflags)
{
    return rv_f32_add(a, b ^ F32_SIGN, rm, fflags);
}

uint32_t rv_f32_mul(uint32_t a, uint32_t b, int rm, unsigned *fflags)
{
    if (gw_likely(rm == RV_RM_RNE)) {
        /* the double product of two floats is exact; one rounding to float */
        double d = (double)f32_val(a) * (double)f32_val(b);
        float r = (float)d;
        uint32_t rb = f32_bits(r);
        if (gw_likely(f32_safe_result(rb))) {
            if ((double)r != d)
                *fflags |= RV_FFLAG_NX;
            return rb;
        }
    }
    uint32_t xa = a & F32_ABS, xb = b & F32_ABS;
    if ((xa == 0 || xb == 0) && xa < F32_INF && xb < F32_INF)
        return (a ^ b) & F32_SIGN;
    return (uint32_t)rv_soft_mul(RV_SOFT_F32, a, b, rm, fflags);
}

uint32_t rv_f32_div(uint32_t a, uint32_t b, int rm, unsigned *fflags)
{
    if (gw_likely(rm == RV_RM_RNE)) {
        float r = f32_val(a) / f32_val(b);
        uint32_t rb = f32_bits(r);
        if (gw_likely(f32_safe_result(rb))) {
            /* r * b is exact in double: the quotient was exact iff it equals a */
            if ((double)r * (double)f32_val(b) != (double)f32_val(a))
                *fflags |= RV_FFLAG_NX;
            return rb;
        }
    }
    uint32_t xa = a & F32_ABS, xb = b & F32_ABS;
    if ((xa == 0 && xb - 1 < F32_INF - 1) || (xa < F32_INF && xb == F32_INF))
        return (a ^ b) & F32_SIGN;
    return (uint32_t)rv_soft_div(RV_SOFT_F32, a, b, rm, fflags);
}

uint32_t rv_f32_sqrt(uint32_t a, int rm, unsigned *fflags)
{
    /* positive finite nonzero (subnormals included): the root is normal */
    if (gw_likely(a - 1 < F32_INF - 1)) {
        float r = sqrtf(f32_val(a));
        uint32_t rb = f32_bits(r);
        double rr = (double)r * (double)r, aa = (double)f32_val(a); /* exact */
        if (rr == aa)
            return rb;
        *fflags |= RV_FFLAG_NX;
        if (rm == RV_RM_RTZ || rm == RV_RM_RDN)
            return rr > aa ? rb - 1 : rb;
        if (rm == RV_RM_RUP)
            return rr < aa ? rb + 1 : rb;
        return rb;
    }
    return (uint32_t)rv_soft_sqrt(RV_SOFT_F32, a, rm, fflags);
}

uint32_t rv_f32_fma(uint32_t a, uint32_t b, uint32_t c, int rm, unsigned *fflags)
{
    if (gw_likely(rm == RV_RM_RNE)) {
        uint32_t rb = f32_bits(fmaf(f32_val(a), f32_val(b), f32_val(c)));
        if (gw_likely(f32_safe_result(rb))) {
            if (gw_likely(*fflags & RV_FFLAG_NX))
                return rb;
            int inexact = fma_inexact(RV_SOFT_F32, a, b, c);
            if (gw_likely(inexact >= 0)) {
                *fflags |= inexact == 1 ? RV_FFLAG_NX : 0;
                return rb;
            }
        } else if ((rb & F32_ABS) == 0 && fma_inexact(RV_SOFT_F32, a, b, c) == 2) {
            return rb;
        }
    }
    return (uint32_t)rv_soft_fma(RV_SOFT_F32, a, b, c, rm, fflags);
}

/* ---- min/max, comparisons, classify (integer only, both formats) ---------- */

static inline uint64_t fmt_abs(int fmt)
{
    return fmt == RV_SOFT_F64 ? F64_ABS : F32_ABS;
}

static inline int is_nan(int fmt, uint64_t a)
{
    return (a & fmt_abs(fmt)) > (fmt == RV_SOFT_F64 ? F64_INF : F32_INF);
}

static inline int is_snan(int fmt, uint64_t a)
{
    return is_nan(fmt, a) && !(a & (fmt == RV_SOFT_F64 ? F64_QUIET : F32_QUIET));
}

/* a < b in the total order of non-NaN values where -0 < +0. */
static inline int ordered_lt(int fmt, uint64_t a, uint64_t b)
{
    uint64_t sign = fmt_abs(fmt) + 1;
    if ((a ^ b) & sign)
        return (a & sign) != 0;
    return (a & sign) ? a > b : a < b;
}

/* IEEE 754-2019 minimumNumber/maximumNumber as in RISC-V F 2.2 (§11.6). */
static inline uint64_t min_max(int fmt, uint64_t a, uint64_t b, int want_max, unsigned *fflags)
{
    int an = is_nan(fmt, a), bn = is_nan(fmt, b);
    if (gw_unlikely(an || bn)) {
        if (is_snan(fmt, a) || is_snan(fmt, b))
            *fflags |= RV_FFLAG_NV;
        if (an && bn)
            return fmt == RV_SOFT_F64 ? RV_F64_CANON_NAN : RV_F32_CANON_NAN;
        return an ? b : a;
    }
    return ordered_lt(fmt, a, b) != want_max ? a : b;
}

static inline int both_zero(int fmt, uint64_t a, uint64_t b)
{
    return ((a | b) & fmt_abs(fmt)) == 0;
}

static inline int cmp_eq(int fmt, uint64_t a, uint64_t b, unsigned *fflags)
{
    if (gw_unlikely(is_nan(fmt, a) || is_nan(fmt, b))) {
        if (is_snan(fmt, a) || is_snan(fmt, b))
            *fflags |= RV_FFLAG_NV;
        return 0;
    }
    return a == b || both_zero(fmt, a, b);
}

static inline int cmp_lt(int fmt, uint64_t a, uint64_t b, unsigned *fflags)
{
    if (gw_unlikely(is_nan(fmt, a) || is_nan(fmt, b))) {
        *fflags |= RV_FFLAG_NV;
        return 0;
    }
    return !both_zero(fmt, a, b) && ordered_lt(fmt, a, b);
}

static inline int cmp_le(int fmt, uint64_t a, uint64_t b, unsigned *fflags)
{
    if (gw_unlikely(is_nan(fmt, a) || is_nan(fmt, b))) {
        *fflags |= RV_FFLAG_NV;
        return 0;
    }
    return a == b || both_zero(fmt, a, b) || ordered_lt(fmt, a, b);
}

/* FCLASS: bit 0 -inf, 1 -normal, 2 -subnormal, 3 -0, 4 +0, 5 +subnormal,
 * 6 +normal, 7 +inf, 8 signalling NaN, 9 quiet NaN. */
static inline uint32_t classify(int fmt, uint64_t a)
{
    uint64_t abs = a & fmt_abs(fmt);
    uint64_t inf = fmt == RV_SOFT_F64 ? F64_INF : F32_INF;
    uint64_t minnorm = fmt == RV_SOFT_F64 ? F64_MINNORM : F32_MINNORM;
    int neg = (a & (fmt_abs(fmt) + 1)) != 0;

    if (abs > inf)
        return is_snan(fmt, a) ? 1u << 8 : 1u << 9;
    if (abs == inf)
        return neg ? 1u << 0 : 1u << 7;
    if (abs >= minnorm)
        return neg ? 1u << 1 : 1u << 6;
    if (abs != 0)
        return neg ? 1u << 2 : 1u << 5;
    return neg ? 1u << 3 : 1u << 4;
}

uint32_t rv_f32_min(uint32_t a, uint32_t b, unsigned *fflags)
{
    return (uint32_t)min_max(RV_SOFT_F32, a, b, 0, fflags);
}

uint32_t rv_f32_max(uint32_t a, uint32_t b, unsigned *fflags)
{
    return (uint32_t)min_max(RV_SOFT_F32, a, b, 1, fflags);
}

int rv_f32_eq(uint32_t a, uint32_t b, unsigned *fflags)
{
    return cmp_eq(RV_SOFT_F32, a, b, fflags);
}

int rv_f32_lt(uint32_t a, uint32_t b, unsigned *fflags)
{
    return cmp_lt(RV_SOFT_F32, a, b, fflags);
}

int rv_f32_le(uint32_t a, uint32_t b, unsigned *fflags)
{
    return cmp_le(RV_SOFT_F32, a, b, fflags);
}

uint32_t rv_f32_classify(uint32_t a)
{
    return classify(RV_SOFT_F32, a);
}

uint64_t rv_f64_min(uint64_t a, uint64_t b, unsigned *fflags)
{
    return min_max(RV_SOFT_F64, a, b, 0, fflags);
}

uint64_t rv_f64_max(uint64_t a, uint64_t b, unsigned *fflags)
{
    return min_max(RV_SOFT_F64, a, b, 1, fflags);
}

int rv_f64_eq(uint64_t a, uint64_t b, unsigned *fflags)
{
    return cmp_eq(RV_SOFT_F64, a, b, fflags);
}

int rv_f64_lt(uint64_t a, uint64_t b, unsigned *fflags)
{
    return cmp_lt(RV_SOFT_F64, a, b, fflags);
}

int rv_f64_le(uint64_t a, uint64_t b, unsigned *fflags)
{
    return cmp_le(RV_SOFT_F64, a, b, fflags);
}

uint32_t rv_f64_classify(uint64_t a)
{
    return classify(RV_SOFT_F64, a);
}

/* ---- float to integer ------------------------------------------------------ */

/*
 * Fast conversion of a double known to be a finite value with |x| < 2^62
 * (RNE) or < 2^63 (RTZ): cvtsd2si rounds per MXCSR (RNE), cvttsd2si
 * truncates.  Returns 0 and leaves *out alone for other modes.
 */
static inline int host_d_to_i64(double x, int rm, int64_t *out)
{
    if (rm == RV_RM_RTZ) {
        *out = (int64_t)x;
        return 1;
    }
#if defined(__SSE2__) && defined(__x86_64__)
    if (rm == RV_RM_RNE) {
        *out = _mm_cvtsd_si64(_mm_set_sd(x));
        return 1;
    }
#endif
    return 0;
}

/*
 * |x| < 2^limit_exp (for RTZ) or 2^(limit_exp - 1) (RNE, which may round up)
 * and x >= 0 when unsigned: the result is in range and only NX is possible.
 */
static inline int d_to_int_fast(double x, int rm, int limit_exp, int is_signed, unsigned *fflags,
                                int64_t *out)
{
    uint64_t b = f64_bits(x);
    int e = (int)((b & F64_ABS) >> 52) - 1023;
    if (e >= limit_exp - (rm != RV_RM_RTZ) || (!is_signed && (b & F64_SIGN)))
        return 0;
    if (!host_d_to_i64(x, rm, out))
        return 0;
    if ((double)*out != x)
        *fflags |= RV_FFLAG_NX;
    return 1;
}

int32_t rv_f64_to_i32(uint64_t a, int rm, unsigned *fflags)
{
    int64_t v;
    if (d_to_int_fast(f64_val(a), rm, 31, 1, fflags, &v))
        return (int32_t)v;
    return (int32_t)rv_soft_to_int(RV_SOFT_F64, a, rm, 1, 32, fflags);
}

uint32_t rv_f64_to_u32(uint64_t a, int rm, unsigned *fflags)
{
    int64_t v;
    if (d_to_int_fast(f64_val(a), rm, 32, 0, fflags, &v))
        return (uint32_t)v;
    return (uint32_t)rv_soft_to_int(RV_SOFT_F64, a, rm, 0, 32, fflags);
}

int64_t rv_f64_to_i64(uint64_t a, int rm, unsigned *fflags)
{
    int64_t v;
    if (d_to_int_fast(f64_val(a), rm, 63, 1, fflags, &v))
        return v;
    return (int64_t)rv_soft_to_int(RV_SOFT_F64, a, rm, 1, 64, fflags);
}

uint64_t rv_f64_to_u64(uint64_t a, int rm, unsigned *fflags)
{
    int64_t v;
    if (d_to_int_fast(f64_val(a), rm, 63, 0, fflags, &v))
        return (uint64_t)v;
    return rv_soft_to_int(RV_SOFT_F64, a, rm, 0, 64, fflags);
}

int32_t rv_f32_to_i32(uint32_t a, int rm, unsigned *fflags)
{
    int64_t v;
    if (d_to_int_fast((double)f32_val(a), rm, 31, 1, fflags, &v))
        return (int32_t)v;
    return (int32_t)rv_soft_to_int(RV_SOFT_F32, a, rm, 1, 32, fflags);
}

uint32_t rv_f32_to_u32(uint32_t a, int rm, unsigned *fflags)
{
    int64_t v;
    if (d_to_int_fast((double)f32_val(a), rm, 32, 0, fflags, &v))
        return (uint32_t)v;
    return (uint32_t)rv_soft_to_int(RV_SOFT_F32, a, rm, 0, 32, fflags);
}

int64_t rv_f32_to_i64(uint32_t a, int rm, unsigned *fflags)
{
    int64_t v;
    if (d_to_int_fast((double)f32_val(a), rm, 63, 1, fflags, &v))
        return v;
    return (int64_t)rv_soft_to_int(RV_SOFT_F32, a, rm, 1, 64, fflags);
}

uint64_t rv_f32_to_u64(uint32_t a, int rm, unsigned *fflags)
{
    int64_t v;
    if (d_to_int_fast((double)f32_val(a), rm, 63, 0, fflags, &v))
        return (uint64_t)v;
    return rv_soft_to_int(RV_SOFT_F32, a, rm, 0, 64, fflags);
}

/* ---- integer to float ------------------------------------------------------ */

/* Significant bits of a nonzero magnitude, from its leading to its trailing one. */
static inline int sig_width(uint64_t m)
{
    return 64 - __builtin_clzll(m) - __builtin_ctzll(m);
}

static inline uint64_t mag64(int64_t v)
{
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

uint64_t rv_i32_to_f64(int32_t v, int rm, unsigned *fflags)
{
    (void)rm, (void)fflags; /* always exact */
    return f64_bits((double)v);
}

uint64_t rv_u32_to_f64(uint32_t v, int rm, unsigned *fflags)
{
    (void)rm, (void)fflags;
    return f64_bits((double)v);
}

uint64_t rv_i64_to_f64(int64_t v, int rm, unsigned *fflags)
{
    uint64_t m = mag64(v);
    if (m == 0 || sig_width(m) <= 53)
        return f64_bits((double)v); /* exact in every mode */
    if (rm == RV_RM_RNE) {
        *fflags |= RV_FFLAG_NX;
        return f64_bits((double)v);
    }
    return rv_soft_from_int(RV_SOFT_F64, m, v < 0, rm, fflags);
}

uint64_t rv_u64_to_f64(uint64_t v, int rm, unsigned *fflags)
{
    if (v == 0 || sig_width(v) <= 53)
        return f64_bits((double)v);
    if (rm == RV_RM_RNE) {
        *fflags |= RV_FFLAG_NX;
        return f64_bits((double)v);
    }
    return rv_soft_from_int(RV_SOFT_F64, v, 0, rm, fflags);
}

uint32_t rv_i32_to_f32(int32_t v, int rm, unsigned *fflags)
{
    return rv_i64_to_f32(v, rm, fflags);
}

uint32_t rv_u32_to_f32(uint32_t v, int rm, unsigned *fflags)
{
    return rv_u64_to_f32(v, rm, fflags);
}

uint32_t rv_i64_to_f32(int64_t v, int rm, unsigned *fflags)
{
    uint64_t m = mag64(v);
    if (m == 0 || sig_width(m) <= 24)
        return f32_bits((float)v);
    if (rm == RV_RM_RNE) {
        *fflags |= RV_FFLAG_NX;
        return f32_bits((float)v);
    }
    return (uint32_t)rv_soft_from_int(RV_SOFT_F32, m, v < 0, rm, fflags);
}

uint32_t rv_u64_to_f32(uint64_t v, int rm, unsigned *fflags)
{
    if (v == 0 || sig_width(v) <= 24)
        return f32_bits((float)v);
    if (rm == RV_RM_RNE) {
        *fflags |= RV_FFLAG_NX;
        return f32_bits((float)v);
    }
    return (uint32_t)rv_soft_from_int(RV_SOFT_F32, v, 0, rm, fflags);
}

/* ---- between formats ------------------------------------------------------- */

uint64_t rv_f32_to_f64(uint32_t a, unsigned *fflags)
{
    if (gw_likely((a & F32_ABS) <= F32_INF))
        return f64_bits((double)f32_val(a)); /* exact, subnormals included */
    return rv_soft_convert(RV_SOFT_F64, RV_SOFT_F32, a, RV_RM_RNE, fflags);
}

uint32_t rv_f64_to_f32(uint64_t a, int rm, unsigned *fflags)
{
    if (gw_likely(rm == RV_RM_RNE)) {
        double x = f64_val(a);
        float r = (float)x;
        uint32_t rb = f32_bits(r);
        if (gw_likely(f32_safe_result(rb))) {
            if ((double)r != x)
                *fflags |= RV_FFLAG_NX;
            return rb;
        }
    }
    if ((a & F64_ABS) == 0)
        return (uint32_t)(a >> 32); /* signed zero */
    return (uint32_t)rv_soft_convert(RV_SOFT_F32, RV_SOFT_F64, a, rm, fflags);
}
