/*
 * Exact integer soft float for binary32 and binary64 (see fpu_soft.h).
 *
 * Internal form of a finite nonzero operand: value = sig * 2^(exp - 62) with
 * bit 62 of sig set, whatever the format (subnormals are normalized on
 * unpack), so binary32 simply has more zero bits at the bottom.  Results are
 * brought to a 64-bit significand with its leading one at bit 63 and every
 * discarded bit ORed into bit 0 ("jamming"); with at least two spare bits
 * below the rounding position that is enough to round correctly in all five
 * modes.  round_pack() is the only place where rounding, overflow and
 * underflow are decided.
 */
#include "hart/fpu_soft.h"

#include "hart/fpu.h"

typedef unsigned __int128 u128;

enum { CLS_ZERO, CLS_FINITE, CLS_INF, CLS_QNAN, CLS_SNAN };

struct unpacked {
    int cls;
    unsigned sign;
    int exp;      /* unbiased exponent of bit 62 of sig */
    uint64_t sig; /* leading one at bit 62 (CLS_FINITE only) */
};

/* Format parameters: fraction bits, exponent bits, bias (emax = bias, emin = 1 - bias). */
static inline int fmt_mbits(int fmt)
{
    return fmt == RV_SOFT_F64 ? 52 : 23;
}

static inline int fmt_ebits(int fmt)
{
    return fmt == RV_SOFT_F64 ? 11 : 8;
}

static inline int fmt_bias(int fmt)
{
    return fmt == RV_SOFT_F64 ? 1023 : 127;
}

static inline uint64_t fmt_sign_bit(int fmt)
{
    return 1ull << (fmt_mbits(fmt) + fmt_ebits(fmt));
}

static inline uint64_t fmt_inf(int fmt, unsigned sign)
{
    return (sign ? fmt_sign_bit(fmt) : 0) | (((1ull << fmt_ebits(fmt)) - 1) << fmt_mbits(fmt));
}

static inline uint64_t fmt_zero(int fmt, unsigned sign)
{
    return sign ? fmt_sign_bit(fmt) : 0;
}

static inline uint64_t fmt_nan(int fmt)
{
    return fmt == RV_SOFT_F64 ? RV_F64_CANON_NAN : RV_F32_CANON_NAN;
}

static inline int clz64(uint64_t x)
{
    return __builtin_clzll(x);
}

static inline int clz128(u128 x)
{
    uint64_t hi = (uint64_t)(x >> 64);
    return hi ? clz64(hi) : 64 + clz64((uint64_t)x);
}

/* x >> d with every shifted-out one bit ORed into bit 0. */
static inline uint64_t shr_jam64(uint64_t x, int d)
{
    if (d == 0)
        return x;
    if (d < 64)
        return (x >> d) | ((x << (64 - d)) != 0);
    return x != 0;
}

static inline u128 shr_jam128(u128 x, int d)
{
    if (d == 0)
        return x;
    if (d < 128)
        return (x >> d) | (u128)((x << (128 - d)) != 0);
    return x != 0;
}

static struct unpacked unpack(int fmt, uint64_t x)
{
    int mb = fmt_mbits(fmt), eb = fmt_ebits(fmt);
    uint64_t emax_field = (1ull << eb) - 1;
    uint64_t e = (x >> mb) & emax_field;
    uint64_t m = x & ((1ull << mb) - 1);
    struct unpacked u = {.sign = (unsigned)(x >> (mb + eb)) & 1};

    if (e == emax_field) {
        if (m == 0)
            u.cls = CLS_INF;
        else
            u.cls = (m >> (mb - 1)) & 1 ? CLS_QNAN : CLS_SNAN;
    } else if (e == 0) {
        if (m == 0) {
            u.cls = CLS_ZERO;
        } else {
            /* subnormal: m * 2^(emin - mb); normalize the leading one to bit 62 */
            int n = clz64(m);
            u.cls = CLS_FINITE;
            u.sig = m << (n - 1);
            u.exp = (63 - n) + (1 - fmt_bias(fmt)) - mb;
        }
    } else {
        u.cls = CLS_FINITE;
        u.sig = (m | (1ull << mb)) << (62 - mb);
        u.exp = (int)e - fmt_bias(fmt);
    }
    return u;
}

/*
 * Shift sig right by shift (any amount >= 1) and round the quotient in mode
 * rm for a value of the given sign.  *inexact reports discarded nonzero bits.
 */
static uint64_t shift_round(uint64_t sig, int shift, unsigned sign, int rm, int *inexact)
{
    uint64_t q, rem, half;
    int up = 0;

    if (shift < 64) {
        q = sig >> shift;
        rem = sig & ((1ull << shift) - 1);
        half = 1ull << (shift - 1);
    } else if (shift == 64) {
        q = 0;
        rem = sig;
        half = 1ull << 63;
    } else {
        q = 0; /* everything is below half an ulp: only "nonzero" matters */
        rem = sig != 0;
        half = 2;
    }
    *inexact = rem != 0;
    switch (rm) {
    case RV_RM_RNE: up = rem > half || (rem == half && (q & 1)); break;
    case RV_RM_RTZ: up = 0; break;
    case RV_RM_RDN: up = rem != 0 && sign; break;
    case RV_RM_RUP: up = rem != 0 && !sign; break;
    case RV_RM_RMM: up = rem >= half; break;
    default: break;
    }
    return q + (uint64_t)up;
}

static uint64_t overflow(int fmt, unsigned sign, int rm, unsigned *fflags)
{
    *fflags |= RV_FFLAG_OF | RV_FFLAG_NX;
    if (rm == RV_RM_RTZ || (rm == RV_RM_RDN && !sign) || (rm == RV_RM_RUP && sign))
        return fmt_inf(fmt, sign) - 1; /* largest finite of that sign */
    return fmt_inf(fmt, sign);
}

/*
 * Round (-1)^sign * sig * 2^(exp - 63), with bit 63 of sig set and sticky
 * bits jammed into bit 0, to fmt.  RISC-V detects tininess after rounding:
 * a result is tiny if rounding to full precision with an unbounded exponent
 * stays below 2^emin; UF is raised for tiny inexact results only.
 */
static uint64_t round_pack(int fmt, unsigned sign, int exp, uint64_t sig, int rm, unsigned *fflags)
{
    int mb = fmt_mbits(fmt), p = mb + 1;
    int emin = 1 - fmt_bias(fmt), emax = fmt_bias(fmt);
    uint64_t sbit = sign ? fmt_sign_bit(fmt) : 0;
    uint64_t q;
    int inexact;

    if (exp >= emin) {
        q = shift_round(sig, 64 - p, sign, rm, &inexact);
        if (q >> p) { /* rounded up to the next power of two */
            q >>= 1;
            exp++;
        }
        if (exp > emax)
            return overflow(fmt, sign, rm, fflags);
        if (inexact)
            *fflags |= RV_FFLAG_NX;
        return sbit | ((uint64_t)(exp + fmt_bias(fmt)) << mb) | (q & ((1ull << mb) - 1));
    }

    int tiny = 1;
    if (exp == emin - 1) {
        int dummy;
        tiny = !(shift_round(sig, 64 - p, sign, rm, &dummy) >> p);
    }
    /* q <= 2^(p-1); q == 2^(p-1) lands in the exponent field as the smallest normal */
    q = shift_round(sig, 64 - p + (emin - exp), sign, rm, &inexact);
    if (inexact)
        *fflags |= tiny ? RV_FFLAG_NX | RV_FFLAG_UF : RV_FFLAG_NX;
    return sbit | q;
}

/* Round (-1)^sign * sig * 2^(e63 - 63) for any nonzero sig. */
static uint64_t norm_round64(int fmt, unsigned sign, int e63, uint64_t sig, int rm,
                             unsigned *fflags)
{
    int n = clz64(sig);
    return round_pack(fmt, sign, e63 - n, sig << n, rm, fflags);
}

/* Round (-1)^sign * x * 2^(e127 - 127) for any nonzero x. */
static uint64_t norm_round128(int fmt, unsigned sign, int e127, u128 x, int rm, unsigned *fflags)
{
    int n = clz128(x);
    x <<= n;
    uint64_t sig = (uint64_t)(x >> 64) | ((uint64_t)x != 0);
    return round_pack(fmt, sign, e127 - n, sig, rm, fflags);
}

static inline int is_nan_cls(int cls)
{
    return cls >= CLS_QNAN;
}

/* NaN result of an operation with NaN operands: NV if any is signalling. */
static uint64_t nan_result(int fmt, int c1, int c2, int c3, unsigned *fflags)
{
    if (c1 == CLS_SNAN || c2 == CLS_SNAN || c3 == CLS_SNAN)
        *fflags |= RV_FFLAG_NV;
    return fmt_nan(fmt);
}

static uint64_t invalid(int fmt, unsigned *fflags)
{
    *fflags |= RV_FFLAG_NV;
    return fmt_nan(fmt);
}

/* Sign of an exact zero sum of operands with opposite signs (IEEE 754 §6.3). */
static inline unsigned zero_sum_sign(int rm)
{
    return rm == RV_RM_RDN;
}

uint64_t rv_soft_add(int fmt, uint64_t a, uint64_t b, int rm, unsigned *fflags)
{
    struct unpacked x = unpack(fmt, a), y = unpack(fmt, b);

    if (x.cls >= CLS_INF || y.cls >= CLS_INF) {
        if (is_nan_cls(x.cls) || is_nan_cls(y.cls))
            return nan_result(fmt, x.cls, y.cls, CLS_ZERO, fflags);
        if (x.cls == CLS_INF && y.cls == CLS_INF && x.sign != y.sign)
            return invalid(fmt, fflags); /* inf - inf */
        return x.cls == CLS_INF ? a : b;
    }
    if (x.cls == CLS_ZERO) {
        if (y.cls == CLS_ZERO)
            return fmt_zero(fmt, x.sign == y.sign ? x.sign : zero_sum_sign(rm));
        return b;
    }
    if (y.cls == CLS_ZERO)
        return a;

    if (x.exp < y.exp || (x.exp == y.exp && x.sig < y.sig)) {
        struct unpacked t = x;
        x = y;
        y = t;
    }
    /* |x| >= |y|; the result has x's sign unless it is an exact zero */
    uint64_t ys = shr_jam64(y.sig, x.exp - y.exp);
    uint64_t sum;
    if (x.sign == y.sign) {
        sum = x.sig + ys;
    } else {
        sum = x.sig - ys;
        if (sum == 0)
            return fmt_zero(fmt, zero_sum_sign(rm));
    }
    return norm_round64(fmt, x.sign, x.exp + 1, sum, rm, fflags);
}

uint64_t rv_soft_mul(int fmt, uint64_t a, uint64_t b, int rm, unsigned *fflags)
{
    struct unpacked x = unpack(fmt, a), y = unpack(fmt, b);
    unsigned sign = x.sign ^ y.sign;

    if (is_nan_cls(x.cls) || is_nan_cls(y.cls))
        return nan_result(fmt, x.cls, y.cls, CLS_ZERO, fflags);
    if (x.cls == CLS_INF || y.cls == CLS_INF) {
        if (x.cls == CLS_ZERO || y.cls == CLS_ZERO)
            return invalid(fmt, fflags); /* inf * 0 */
        return fmt_inf(fmt, sign);
    }
    if (x.cls == CLS_ZERO || y.cls == CLS_ZERO)
        return fmt_zero(fmt, sign);

    /* product in [2^124, 2^126), value P * 2^(ex + ey - 124) */
    u128 prod = (u128)x.sig * y.sig;
    return norm_round128(fmt, sign, x.exp + y.exp + 3, prod, rm, fflags);
}

/* (hi:lo) / d for hi < d: the quotient fits in 64 bits. */
static inline uint64_t div128by64(uint64_t hi, uint64_t lo, uint64_t d, uint64_t *rem)
{
#if defined(__x86_64__)
    uint64_t q, r;
    __asm__("divq %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(hi), "rm"(d) : "cc");
    *rem = r;
    return q;
#else
    u128 n = ((u128)hi << 64) | lo;
    *rem = (uint64_t)(n % d);
    return (uint64_t)(n / d);
#endif
}

uint64_t rv_soft_div(int fmt, uint64_t a, uint64_t b, int rm, unsigned *fflags)
{
    struct unpacked x = unpack(fmt, a), y = unpack(fmt, b);
    unsigned sign = x.sign ^ y.sign;

    if (is_nan_cls(x.cls) || is_nan_cls(y.cls))
        return nan_result(fmt, x.cls, y.cls, CLS_ZERO, fflags);
    if (x.cls == CLS_INF) {
        if (y.cls == CLS_INF)
            return invalid(fmt, fflags); /* inf / inf */
        return fmt_inf(fmt, sign);
    }
    if (y.cls == CLS_INF)
        return fmt_zero(fmt, sign);
    if (y.cls == CLS_ZERO) {
        if (x.cls == CLS_ZERO)
            return invalid(fmt, fflags); /* 0 / 0 */
        *fflags |= RV_FFLAG_DZ;
        return fmt_inf(fmt, sign);
    }
    if (x.cls == CLS_ZERO)
        return fmt_zero(fmt, sign);

    /* (xs * 2^63) / ys lies in (2^62, 2^64): at least 62 quotient bits */
    uint64_t rem;
    uint64_t q = div128by64(x.sig >> 1, x.sig << 63, y.sig, &rem);
    q |= rem != 0;
    return norm_round64(fmt, sign, x.exp - y.exp, q, rm, fflags);
}

/*
 * floor(sqrt(n)) for n < 2^(2 * bits), bits <= 58, by the binary
 * digit-by-digit method, two bits of n per step.  The partial remainder stays
 * below 4 * (2 * root + 1) < 2^61, so 64-bit arithmetic is enough; the loop
 * has no data-dependent branch.  *rem_nonzero if n is not a perfect square.
 */
static uint64_t isqrt_bits(u128 n, int bits, int *rem_nonzero)
{
    uint64_t root = 0, rem = 0;

    for (int i = bits - 1; i >= 0; i--) {
        rem = (rem << 2) | ((uint64_t)(n >> (2 * i)) & 3);
        uint64_t trial = (root << 2) | 1;
        uint64_t ge = rem >= trial;
        rem -= trial & (0 - ge);
        root = (root << 1) | ge;
    }
    *rem_nonzero = rem != 0;
    return root;
}

uint64_t rv_soft_sqrt(int fmt, uint64_t a, int rm, unsigned *fflags)
{
    struct unpacked x = unpack(fmt, a);

    if (is_nan_cls(x.cls))
        return nan_result(fmt, x.cls, CLS_ZERO, CLS_ZERO, fflags);
    if (x.cls == CLS_ZERO)
        return a; /* sqrt(-0) = -0 */
    if (x.sign)
        return invalid(fmt, fflags);
    if (x.cls == CLS_INF)
        return a;

    /*
     * A root of rb = p + 4 bits (plus the sticky remainder) is enough to
     * round.  value = sig * 2^(exp - 62) = n * 2^(exp + 2 - odd - 2 * rb) with
     * n = sig * 2^(2 * rb - 64 + odd) in [2^(2rb-2), 2^(2rb)) and an even power
     * of two, so sqrt = isqrt(n) * 2^((exp + 2 - odd) / 2 - rb).  For binary32
     * the shift is to the right but only drops zero bits.
     */
    int rb = fmt_mbits(fmt) + 5, odd = x.exp & 1;
    int shift = 2 * rb - 64 + odd;
    u128 n = shift >= 0 ? (u128)x.sig << shift : (u128)(x.sig >> -shift);
    int inexact;
    uint64_t r = isqrt_bits(n, rb, &inexact);
    int e = (x.exp + 2 - odd) / 2 - rb; /* exact: the numerator is even */
    return norm_round64(fmt, 0, e + 63, r | (uint64_t)inexact, rm, fflags);
}

uint64_t rv_soft_fma(int fmt, uint64_t a, uint64_t b, uint64_t c, int rm, unsigned *fflags)
{
    struct unpacked x = unpack(fmt, a), y = unpack(fmt, b), z = unpack(fmt, c);
    unsigned psign = x.sign ^ y.sign;

    /* RISC-V §11.6: inf * 0 raises NV even if the addend is a quiet NaN */
    if ((x.cls == CLS_INF && y.cls == CLS_ZERO) || (x.cls == CLS_ZERO && y.cls == CLS_INF))
        return invalid(fmt, fflags);
    if (is_nan_cls(x.cls) || is_nan_cls(y.cls) || is_nan_cls(z.cls))
        return nan_result(fmt, x.cls, y.cls, z.cls, fflags);
    if (x.cls == CLS_INF || y.cls == CLS_INF) {
        if (z.cls == CLS_INF && z.sign != psign)
            return invalid(fmt, fflags); /* inf - inf */
        return fmt_inf(fmt, psign);
    }
    if (z.cls == CLS_INF)
        return c;
    if (x.cls == CLS_ZERO || y.cls == CLS_ZERO) {
        if (z.cls == CLS_ZERO)
            return fmt_zero(fmt, psign == z.sign ? psign : zero_sum_sign(rm));
        return c;
    }

    /* exact product P * 2^(ex + ey - 124), P in [2^124, 2^126) */
    u128 prod = (u128)x.sig * y.sig;
    int pexp = x.exp + y.exp;
    if (z.cls == CLS_ZERO)
        return norm_round128(fmt, psign, pexp + 3, prod, rm, fflags);

    /* addend C * 2^(ez - 124), C in [2^124, 2^125); align to the larger exponent */
    u128 add = (u128)z.sig << 62;
    int base;
    if (pexp >= z.exp) {
        add = shr_jam128(add, pexp - z.exp > 128 ? 128 : pexp - z.exp);
        base = pexp;
    } else {
        prod = shr_jam128(prod, z.exp - pexp > 128 ? 128 : z.exp - pexp);
        base = z.exp;
    }
    u128 sum;
    unsigned sign;
    if (psign == z.sign) {
        sum = prod + add;
        sign = psign;
    } else if (prod >= add) {
        sum = prod - add;
        sign = psign;
        if (sum == 0)
            return fmt_zero(fmt, zero_sum_sign(rm));
    } else {
        sum = add - prod;
        sign = z.sign;
    }
    return norm_round128(fmt, sign, base + 3, sum, rm, fflags);
}

uint64_t rv_soft_to_int(int fmt, uint64_t a, int rm, int is_signed, int width, unsigned *fflags)
{
    struct unpacked x = unpack(fmt, a);
    uint64_t umax = width == 64 ? ~0ull : (1ull << width) - 1;
    uint64_t smax = umax >> 1, smin = ~smax; /* smin sign-extended */
    uint64_t mag;
    int inexact = 0;

    switch (x.cls) {
    case CLS_ZERO: return 0;
    case CLS_QNAN:
    case CLS_SNAN: *fflags |= RV_FFLAG_NV; return is_signed ? smax : umax;
    case CLS_INF: goto saturate;
    default: break;
    }
    /* value = sig * 2^(exp - 62); anything >= 2^64 is out of every range */
    if (x.exp > 63)
        goto saturate;
    if (x.exp >= 62)
        mag = x.sig << (x.exp - 62);
    else
        mag = shift_round(x.sig, 62 - x.exp, x.sign, rm, &inexact);

    if (is_signed) {
        if (x.sign ? mag > smax + 1 : mag > smax)
            goto saturate;
    } else {
        if (x.sign ? mag != 0 : mag > umax)
            goto saturate;
    }
    if (inexact)
        *fflags |= RV_FFLAG_NX;
    return x.sign ? (uint64_t)0 - mag : mag;

saturate: /* NV replaces NX (QEMU and spec table 11.4) */
    *fflags |= RV_FFLAG_NV;
    if (is_signed)
        return x.sign ? smin : smax;
    return x.sign ? 0 : umax;
}

uint64_t rv_soft_from_int(int fmt, uint64_t mag, int neg, int rm, unsigned *fflags)
{
    if (mag == 0)
        return 0;
    return norm_round64(fmt, neg != 0, 63, mag, rm, fflags);
}

uint64_t rv_soft_convert(int to_fmt, int from_fmt, uint64_t a, int rm, unsigned *fflags)
{
    struct unpacked x = unpack(from_fmt, a);

    switch (x.cls) {
    case CLS_ZERO: return fmt_zero(to_fmt, x.sign);
    case CLS_INF: return fmt_inf(to_fmt, x.sign);
    case CLS_QNAN:
    case CLS_SNAN: return nan_result(to_fmt, x.cls, CLS_ZERO, CLS_ZERO, fflags);
    default: return round_pack(to_fmt, x.sign, x.exp, x.sig << 1, rm, fflags);
    }
}
