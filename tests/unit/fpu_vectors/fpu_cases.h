/*
 * FPU test cases shared by the host unit test (tests/unit/test_fpu.c) and the
 * bare-metal program that records QEMU's answers (gen.c in this folder):
 * operation numbers, the hand-written edge cases with their expected
 * results, and the deterministic biased random operand generator.  Both
 * sides iterate the same cases, so QEMU also checks the hand-written
 * expectations.  Freestanding: stdint.h only, no libc.
 */
#ifndef GODWIT_TESTS_FPU_CASES_H
#define GODWIT_TESTS_FPU_CASES_H

#include <stdint.h>

/* Formats (equal to enum rv_soft_fmt). */
#define S 0
#define D 1

#define FPU_CASES_UNUSED __attribute__((unused))

static inline uint64_t sign_bit(int fmt)
{
    return fmt == D ? 1ull << 63 : 1ull << 31;
}

enum {
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_SQRT,
    OP_FMADD,
    OP_FMSUB,
    OP_FNMSUB,
    OP_FNMADD,
    OP_MIN,
    OP_MAX,
    OP_EQ,
    OP_LT,
    OP_LE,
    OP_CLASS,
    OP_TO_I32,
    OP_TO_U32,
    OP_TO_I64,
    OP_TO_U64,
    OP_FROM_I32,
    OP_FROM_U32,
    OP_FROM_I64,
    OP_FROM_U64,
    OP_CVT, /* to the other format: f32->f64 for S, f64->f32 for D */
    OP_COUNT
};

static const char *const op_names[OP_COUNT] FPU_CASES_UNUSED = {
    "add",    "sub",    "mul",    "div",      "sqrt",     "fmadd",    "fmsub",    "fnmsub",
    "fnmadd", "min",    "max",    "eq",       "lt",       "le",       "class",    "to_i32",
    "to_u32", "to_i64", "to_u64", "from_i32", "from_u32", "from_i64", "from_u64", "cvt",
};

/* Operations whose result depends on the rounding mode. */
static inline int op_has_rm(int op)
{
    return !(op >= OP_MIN && op <= OP_CLASS);
}

/* fflags bits and rounding modes as the ISA encodes them (fcsr, frm). */
enum { NX = 1, UF = 2, OF = 4, DZ = 8, NV = 16 };
enum { RNE = 0, RTZ = 1, RDN = 2, RUP = 3, RMM = 4 };
#define ALL -1 /* every rounding mode */

struct edge {
    int op, fmt, rm;
    uint64_t a, b, c, r;
    unsigned fl;
};

/* binary64 constants */
#define DP0    0x0000000000000000ull
#define DN0    0x8000000000000000ull
#define DONE   0x3ff0000000000000ull
#define DMONE  0xbff0000000000000ull
#define DTWO   0x4000000000000000ull
#define DHALF  0x3fe0000000000000ull
#define DINF   0x7ff0000000000000ull
#define DNINF  0xfff0000000000000ull
#define DQNAN  0x7ff8000000000000ull
#define DQNAN2 0xfff8000000000123ull /* quiet, negative, with payload */
#define DSNAN  0x7ff0000000000001ull
#define DSNAN2 0xfff4000000000000ull
#define DMAX   0x7fefffffffffffffull
#define DNMAX  0xffefffffffffffffull
#define DMINN  0x0010000000000000ull /* 2^-1022 */
#define DMAXS  0x000fffffffffffffull
#define DMINS  0x0000000000000001ull /* 2^-1074 */
#define DCANON 0x7ff8000000000000ull

/* binary32 constants */
#define SP0    0x00000000u
#define SN0    0x80000000u
#define SONE   0x3f800000u
#define SMONE  0xbf800000u
#define STWO   0x40000000u
#define SHALF  0x3f000000u
#define SINF   0x7f800000u
#define SNINF  0xff800000u
#define SQNAN  0x7fc00000u
#define SQNAN2 0xffc00123u
#define SSNAN  0x7f800001u
#define SSNAN2 0xffa00000u
#define SMAX   0x7f7fffffu
#define SNMAX  0xff7fffffu
#define SMINN  0x00800000u
#define SMAXS  0x007fffffu
#define SMINS  0x00000001u
#define SCANON 0x7fc00000u

static const struct edge edges[] FPU_CASES_UNUSED = {
    /* ---- add / sub: signed zeros, infinities, NaNs ---- */
    {OP_ADD, D, RNE, DP0, DN0, 0, DP0, 0},
    {OP_ADD, D, RTZ, DP0, DN0, 0, DP0, 0},
    {OP_ADD, D, RUP, DP0, DN0, 0, DP0, 0},
    {OP_ADD, D, RMM, DP0, DN0, 0, DP0, 0},
    {OP_ADD, D, RDN, DP0, DN0, 0, DN0, 0},
    {OP_ADD, D, ALL, DN0, DN0, 0, DN0, 0},
    {OP_SUB, D, RNE, DONE, DONE, 0, DP0, 0},
    {OP_SUB, D, RDN, DONE, DONE, 0, DN0, 0},
    {OP_SUB, D, RDN, DN0, DP0, 0, DN0, 0},
    {OP_SUB, D, RNE, DP0, DP0, 0, DP0, 0},
    {OP_ADD, D, ALL, DINF, DNINF, 0, DCANON, NV},
    {OP_SUB, D, ALL, DINF, DINF, 0, DCANON, NV},
    {OP_ADD, D, ALL, DINF, DINF, 0, DINF, 0},
    {OP_ADD, D, ALL, DNINF, DMAX, 0, DNINF, 0},
    {OP_ADD, D, ALL, DQNAN2, DONE, 0, DCANON, 0},
    {OP_ADD, D, ALL, DONE, DSNAN, 0, DCANON, NV},
    {OP_ADD, D, ALL, DSNAN2, DQNAN, 0, DCANON, NV},
    {OP_ADD, D, ALL, DQNAN, DINF, 0, DCANON, 0},
    {OP_SUB, D, ALL, DSNAN, DSNAN, 0, DCANON, NV},
    /* overflow in each mode */
    {OP_ADD, D, RNE, DMAX, DMAX, 0, DINF, OF | NX},
    {OP_ADD, D, RMM, DMAX, DMAX, 0, DINF, OF | NX},
    {OP_ADD, D, RTZ, DMAX, DMAX, 0, DMAX, OF | NX},
    {OP_ADD, D, RDN, DMAX, DMAX, 0, DMAX, OF | NX},
    {OP_ADD, D, RUP, DMAX, DMAX, 0, DINF, OF | NX},
    {OP_ADD, D, RNE, DNMAX, DNMAX, 0, DNINF, OF | NX},
    {OP_ADD, D, RTZ, DNMAX, DNMAX, 0, DNMAX, OF | NX},
    {OP_ADD, D, RDN, DNMAX, DNMAX, 0, DNINF, OF | NX},
    {OP_ADD, D, RUP, DNMAX, DNMAX, 0, DNMAX, OF | NX},
    /* max + half an ulp: ties to even overflow, RMM overflows, RTZ does not */
    {OP_ADD, D, RNE, DMAX, 0x7c90000000000000ull, 0, DINF, OF | NX},
    {OP_ADD, D, RMM, DMAX, 0x7c90000000000000ull, 0, DINF, OF | NX},
    {OP_ADD, D, RTZ, DMAX, 0x7c90000000000000ull, 0, DMAX, NX},
    {OP_ADD, D, RNE, DMAX, 0x7c8fffffffffffffull, 0, DMAX, NX},
    /* halfway: 1 + 2^-53 */
    {OP_ADD, D, RNE, DONE, 0x3ca0000000000000ull, 0, DONE, NX},
    {OP_ADD, D, RMM, DONE, 0x3ca0000000000000ull, 0, 0x3ff0000000000001ull, NX},
    {OP_ADD, D, RUP, DONE, 0x3ca0000000000000ull, 0, 0x3ff0000000000001ull, NX},
    {OP_ADD, D, RTZ, DONE, 0x3ca0000000000000ull, 0, DONE, NX},
    {OP_ADD, D, RDN, DONE, 0x3ca0000000000000ull, 0, DONE, NX},
    {OP_SUB, D, RMM, DMONE, 0x3ca0000000000000ull, 0, 0xbff0000000000001ull, NX},
    {OP_SUB, D, RDN, DMONE, 0x3ca0000000000000ull, 0, 0xbff0000000000001ull, NX},
    {OP_SUB, D, RUP, DMONE, 0x3ca0000000000000ull, 0, DMONE, NX},
    /* (1 + 2^-52) + 2^-53: tie with odd lower neighbour, both go up */
    {OP_ADD, D, RNE, 0x3ff0000000000001ull, 0x3ca0000000000000ull, 0, 0x3ff0000000000002ull, NX},
    {OP_ADD, D, RMM, 0x3ff0000000000001ull, 0x3ca0000000000000ull, 0, 0x3ff0000000000002ull, NX},
    /* subnormal sums are exact: no UF */
    {OP_ADD, D, ALL, DMINS, DMINS, 0, 0x0000000000000002ull, 0},
    {OP_ADD, D, ALL, DMAXS, DMINS, 0, DMINN, 0},
    {OP_SUB, D, ALL, DMINN, DMINS, 0, DMAXS, 0},
    {OP_SUB, D, ALL, 0x3ff0000000000001ull, DONE, 0, 0x3cb0000000000000ull, 0},
    {OP_ADD, D, RNE, DONE, DMINS, 0, DONE, NX},
    {OP_ADD, D, RUP, DONE, DMINS, 0, 0x3ff0000000000001ull, NX},
    {OP_SUB, D, RTZ, DONE, DMINS, 0, 0x3fefffffffffffffull, NX},
    {OP_SUB, D, RNE, DONE, DMINS, 0, DONE, NX},
    /* binary32 */
    {OP_ADD, S, RNE, SP0, SN0, 0, SP0, 0},
    {OP_ADD, S, RDN, SP0, SN0, 0, SN0, 0},
    {OP_SUB, S, RDN, SONE, SONE, 0, SN0, 0},
    {OP_ADD, S, ALL, SINF, SNINF, 0, SCANON, NV},
    {OP_ADD, S, ALL, SQNAN2, SONE, 0, SCANON, 0},
    {OP_ADD, S, ALL, SSNAN, SONE, 0, SCANON, NV},
    {OP_ADD, S, RNE, SMAX, SMAX, 0, SINF, OF | NX},
    {OP_ADD, S, RTZ, SMAX, SMAX, 0, SMAX, OF | NX},
    {OP_ADD, S, RDN, SNMAX, SNMAX, 0, SNINF, OF | NX},
    {OP_ADD, S, RUP, SNMAX, SNMAX, 0, SNMAX, OF | NX},
    {OP_ADD, S, RNE, SONE, 0x33800000u, 0, SONE, NX}, /* 1 + 2^-24 */
    {OP_ADD, S, RMM, SONE, 0x33800000u, 0, 0x3f800001u, NX},
    {OP_ADD, S, RMM, SONE, 0x33000000u, 0, SONE, NX},
    {OP_ADD, S, ALL, SMAXS, SMINS, 0, SMINN, 0},

    /* ---- mul ---- */
    {OP_MUL, D, ALL, DINF, DP0, 0, DCANON, NV},
    {OP_MUL, D, ALL, DN0, DINF, 0, DCANON, NV},
    {OP_MUL, D, ALL, DN0, 0x4014000000000000ull, 0, DN0, 0},
    {OP_MUL, D, ALL, DINF, 0xc000000000000000ull, 0, DNINF, 0},
    {OP_MUL, D, ALL, DQNAN, DP0, 0, DCANON, 0},
    {OP_MUL, D, ALL, DSNAN, DINF, 0, DCANON, NV},
    {OP_MUL, D, RNE, DMAX, DTWO, 0, DINF, OF | NX},
    {OP_MUL, D, RTZ, DMAX, DTWO, 0, DMAX, OF | NX},
    {OP_MUL, D, RDN, DMAX, DTWO, 0, DMAX, OF | NX},
    {OP_MUL, D, RUP, DMAX, DTWO, 0, DINF, OF | NX},
    {OP_MUL, D, RMM, DMAX, DTWO, 0, DINF, OF | NX},
    {OP_MUL, D, RDN, DNMAX, DTWO, 0, DNINF, OF | NX},
    {OP_MUL, D, RUP, DNMAX, DTWO, 0, DNMAX, OF | NX},
    /* 1.5 * (1 + 3*2^-52) = 1.5 + 4.5 ulp: RNE to even (4), RMM away (5) */
    {OP_MUL, D, RNE, 0x3ff8000000000000ull, 0x3ff0000000000003ull, 0, 0x3ff8000000000004ull, NX},
    {OP_MUL, D, RMM, 0x3ff8000000000000ull, 0x3ff0000000000003ull, 0, 0x3ff8000000000005ull, NX},
    {OP_MUL, D, RUP, 0x3ff8000000000000ull, 0x3ff0000000000003ull, 0, 0x3ff8000000000005ull, NX},
    {OP_MUL, D, RTZ, 0x3ff8000000000000ull, 0x3ff0000000000003ull, 0, 0x3ff8000000000004ull, NX},
    {OP_MUL, D, RMM, 0xbff8000000000000ull, 0x3ff0000000000003ull, 0, 0xbff8000000000005ull, NX},
    {OP_MUL, D, RDN, 0xbff8000000000000ull, 0x3ff0000000000003ull, 0, 0xbff8000000000005ull, NX},
    /* exact subnormal product: no flags */
    {OP_MUL, D, ALL, DMINN, DHALF, 0, 0x0008000000000000ull, 0},
    {OP_MUL, D, ALL, DMINS, DTWO, 0, 0x0000000000000002ull, 0},
    /* 2^-1074 * 0.5: tie between 0 and minsub */
    {OP_MUL, D, RNE, DMINS, DHALF, 0, DP0, UF | NX},
    {OP_MUL, D, RMM, DMINS, DHALF, 0, DMINS, UF | NX},
    {OP_MUL, D, RUP, DMINS, DHALF, 0, DMINS, UF | NX},
    {OP_MUL, D, RDN, DMINS, DHALF, 0, DP0, UF | NX},
    {OP_MUL, D, RDN, DMINS | DN0, DHALF, 0, DMINS | DN0, UF | NX},
    {OP_MUL, D, RNE, DMINS, DMINS, 0, DP0, UF | NX},
    {OP_MUL, D, RUP, DMINS, DMINS, 0, DMINS, UF | NX},
    /* (1 - 2^-53) * 2^-1022: representable with an unbounded exponent, so tiny
     * after rounding in every mode; subnormal rounding is inexact */
    {OP_MUL, D, RNE, 0x3fefffffffffffffull, DMINN, 0, DMINN, UF | NX},
    {OP_MUL, D, RTZ, 0x3fefffffffffffffull, DMINN, 0, DMAXS, UF | NX},
    {OP_MUL, D, RUP, 0x3fefffffffffffffull, DMINN, 0, DMINN, UF | NX},
    {OP_MUL, D, RMM, 0x3fefffffffffffffull, DMINN, 0, DMINN, UF | NX},
    /* binary32 */
    {OP_MUL, S, ALL, SINF, SN0, 0, SCANON, NV},
    {OP_MUL, S, RNE, SMAX, STWO, 0, SINF, OF | NX},
    {OP_MUL, S, RTZ, SMAX, STWO, 0, SMAX, OF | NX},
    {OP_MUL, S, RNE, SMINS, SMINS, 0, SP0, UF | NX},
    {OP_MUL, S, RUP, SMINS, SMINS, 0, SMINS, UF | NX},
    {OP_MUL, S, RDN, SMINS | SN0, SMINS, 0, SMINS | SN0, UF | NX},
    {OP_MUL, S, RNE, 0x3fc00000u, 0x3f800003u, 0, 0x3fc00004u, NX},
    {OP_MUL, S, RMM, 0x3fc00000u, 0x3f800003u, 0, 0x3fc00005u, NX},

    /* ---- div ---- */
    {OP_DIV, D, ALL, DONE, DP0, 0, DINF, DZ},
    {OP_DIV, D, ALL, DONE, DN0, 0, DNINF, DZ},
    {OP_DIV, D, ALL, DNINF, DP0, 0, DNINF, 0},
    {OP_DIV, D, ALL, DP0, DP0, 0, DCANON, NV},
    {OP_DIV, D, ALL, DINF, DNINF, 0, DCANON, NV},
    {OP_DIV, D, ALL, DONE, DINF, 0, DP0, 0},
    {OP_DIV, D, ALL, DP0, 0xc008000000000000ull, 0, DN0, 0},
    {OP_DIV, D, ALL, DQNAN, DP0, 0, DCANON, 0},
    {OP_DIV, D, ALL, DSNAN, DP0, 0, DCANON, NV},
    {OP_DIV, D, RNE, DMAX, DHALF, 0, DINF, OF | NX},
    {OP_DIV, D, RTZ, DMAX, DHALF, 0, DMAX, OF | NX},
    {OP_DIV, D, ALL, DMINN, DTWO, 0, 0x0008000000000000ull, 0},
    {OP_DIV, D, RNE, DMINN, 0x4008000000000000ull, 0, 0x0005555555555555ull, UF | NX},
    {OP_DIV, D, RUP, DMINN, 0x4008000000000000ull, 0, 0x0005555555555556ull, UF | NX},
    {OP_DIV, D, RNE, DONE, 0x4008000000000000ull, 0, 0x3fd5555555555555ull, NX},
    {OP_DIV, D, RUP, DONE, 0x4008000000000000ull, 0, 0x3fd5555555555556ull, NX},
    {OP_DIV, S, ALL, SONE, SP0, 0, SINF, DZ},
    {OP_DIV, S, ALL, SN0, SN0, 0, SCANON, NV},
    {OP_DIV, S, RNE, SONE, 0x40400000u, 0, 0x3eaaaaabu, NX},
    {OP_DIV, S, RTZ, SONE, 0x40400000u, 0, 0x3eaaaaaau, NX},

    /* ---- sqrt ---- */
    {OP_SQRT, D, ALL, DN0, 0, 0, DN0, 0},
    {OP_SQRT, D, ALL, DP0, 0, 0, DP0, 0},
    {OP_SQRT, D, ALL, DMONE, 0, 0, DCANON, NV},
    {OP_SQRT, D, ALL, DNINF, 0, 0, DCANON, NV},
    {OP_SQRT, D, ALL, DMINS | DN0, 0, 0, DCANON, NV},
    {OP_SQRT, D, ALL, DINF, 0, 0, DINF, 0},
    {OP_SQRT, D, ALL, DQNAN2, 0, 0, DCANON, 0},
    {OP_SQRT, D, ALL, DSNAN, 0, 0, DCANON, NV},
    {OP_SQRT, D, ALL, DMINS, 0, 0, 0x1e60000000000000ull, 0}, /* 2^-537 */
    {OP_SQRT, D, ALL, 0x4010000000000000ull, 0, 0, DTWO, 0},
    {OP_SQRT, D, RNE, DTWO, 0, 0, 0x3ff6a09e667f3bcdull, NX},
    {OP_SQRT, D, RMM, DTWO, 0, 0, 0x3ff6a09e667f3bcdull, NX},
    {OP_SQRT, D, RUP, DTWO, 0, 0, 0x3ff6a09e667f3bcdull, NX},
    {OP_SQRT, D, RTZ, DTWO, 0, 0, 0x3ff6a09e667f3bccull, NX},
    {OP_SQRT, D, RDN, DTWO, 0, 0, 0x3ff6a09e667f3bccull, NX},
    {OP_SQRT, D, RNE, DMAX, 0, 0, 0x5fefffffffffffffull, NX},
    {OP_SQRT, D, RUP, DMAX, 0, 0, 0x5ff0000000000000ull, NX},
    {OP_SQRT, S, ALL, SN0, 0, 0, SN0, 0},
    {OP_SQRT, S, ALL, SMONE, 0, 0, SCANON, NV},
    {OP_SQRT, S, ALL, SSNAN, 0, 0, SCANON, NV},
    {OP_SQRT, S, RNE, STWO, 0, 0, 0x3fb504f3u, NX},
    {OP_SQRT, S, RTZ, STWO, 0, 0, 0x3fb504f3u, NX},
    {OP_SQRT, S, RUP, STWO, 0, 0, 0x3fb504f4u, NX},
    {OP_SQRT, S, RNE, SMINS, 0, 0, 0x1a3504f3u, NX}, /* sqrt(2^-149) = 2^-74.5 */
    {OP_SQRT, S, RUP, SMINS, 0, 0, 0x1a3504f4u, NX},

    /* ---- fused multiply-add ---- */
    {OP_FMADD, D, ALL, DINF, DP0, DQNAN, DCANON, NV}, /* RISC-V: NV even with a qNaN addend */
    {OP_FMADD, D, ALL, DP0, DNINF, DQNAN2, DCANON, NV},
    {OP_FMADD, D, ALL, DP0, DINF, DSNAN, DCANON, NV},
    {OP_FMADD, D, ALL, DQNAN, DONE, DONE, DCANON, 0},
    {OP_FMADD, D, ALL, DONE, DONE, DSNAN, DCANON, NV},
    {OP_FMADD, D, ALL, DQNAN, DP0, DINF, DCANON, 0},
    {OP_FMADD, D, ALL, DINF, DONE, DNINF, DCANON, NV},
    {OP_FMSUB, D, ALL, DINF, DONE, DINF, DCANON, NV},
    {OP_FMADD, D, ALL, DINF, DMONE, DNINF, DNINF, 0},
    {OP_FMADD, D, ALL, DONE, DTWO, DNINF, DNINF, 0},
    {OP_FMADD, D, RNE, DONE, DONE, DMONE, DP0, 0},
    {OP_FMADD, D, RDN, DONE, DONE, DMONE, DN0, 0},
    {OP_FMADD, D, RNE, DP0, 0xc014000000000000ull, DP0, DP0, 0}, /* -0 + +0 */
    {OP_FMADD, D, RDN, DP0, 0xc014000000000000ull, DP0, DN0, 0},
    {OP_FMADD, D, ALL, DN0, 0x4014000000000000ull, DN0, DN0, 0},
    {OP_FMADD, D, ALL, DP0, DONE, DP0, DP0, 0},
    {OP_FMADD, D, ALL, DP0, DONE, DMINS, DMINS, 0},
    /* the hart's fmsub/fnmadd/fnmsub sign flips on exact zero results */
    {OP_FMSUB, D, RNE, DONE, DONE, DONE, DP0, 0},
    {OP_FMSUB, D, RDN, DONE, DONE, DONE, DN0, 0},
    {OP_FNMADD, D, RNE, DONE, DONE, DMONE, DP0, 0},
    {OP_FNMADD, D, RDN, DONE, DONE, DMONE, DN0, 0},
    {OP_FNMSUB, D, RNE, DONE, DONE, DONE, DP0, 0},
    {OP_FNMADD, D, RNE, DP0, DONE, DP0, DN0, 0},
    {OP_FNMSUB, D, RNE, DP0, DONE, DP0, DP0, 0},
    {OP_FNMSUB, D, RNE, DP0, DONE, DN0, DN0, 0},
    {OP_FMSUB, D, RNE, DP0, DONE, DP0, DP0, 0},
    {OP_FMSUB, D, RNE, DN0, DONE, DP0, DN0, 0},
    /* 1*1 + 2^-53: one rounding, RMM differs */
    {OP_FMADD, D, RNE, DONE, DONE, 0x3ca0000000000000ull, DONE, NX},
    {OP_FMADD, D, RMM, DONE, DONE, 0x3ca0000000000000ull, 0x3ff0000000000001ull, NX},
    /* tiny product against 1 */
    {OP_FMADD, D, RNE, DMINS, DMINS, DONE, DONE, NX},
    {OP_FMADD, D, RUP, DMINS, DMINS, DONE, 0x3ff0000000000001ull, NX},
    {OP_FMADD, D, RDN, DMINS | DN0, DMINS, DONE, 0x3fefffffffffffffull, NX},
    {OP_FMADD, D, RTZ, DMINS | DN0, DMINS, DONE, 0x3fefffffffffffffull, NX},
    {OP_FMADD, D, RNE, DMINS | DN0, DMINS, DONE, DONE, NX},
    /* (1 + 2^-52)(1 - 2^-52) - 1 = -2^-104 exactly */
    {OP_FMADD, D, ALL, 0x3ff0000000000001ull, 0x3feffffffffffffeull, DMONE, 0xb970000000000000ull,
     0},
    /* max*2 - max = max: no intermediate overflow */
    {OP_FMADD, D, ALL, DMAX, DTWO, DNMAX, DMAX, 0},
    {OP_FMADD, D, RNE, DMAX, DTWO, DP0, DINF, OF | NX},
    {OP_FMADD, D, RTZ, DMAX, DTWO, DP0, DMAX, OF | NX},
    /* underflow through the product, exact and inexact */
    {OP_FMADD, D, ALL, DMINN, DHALF, DP0, 0x0008000000000000ull, 0},
    {OP_FMADD, D, RNE, DMINS, DHALF, DP0, DP0, UF | NX},
    {OP_FMADD, D, RNE, DMINS, DHALF, DN0, DP0, UF | NX},
    {OP_FMADD, D, RNE, DMINN, 0x3fe0000000000001ull, DMINS | DN0, 0x0008000000000000ull, UF | NX},
    /* binary32 */
    {OP_FMADD, S, ALL, SINF, SP0, SQNAN, SCANON, NV},
    {OP_FMADD, S, ALL, SSNAN, SONE, SONE, SCANON, NV},
    {OP_FMADD, S, RNE, SONE, SONE, SMONE, SP0, 0},
    {OP_FMADD, S, RDN, SONE, SONE, SMONE, SN0, 0},
    {OP_FMADD, S, RNE, SONE, SONE, 0x33800000u, SONE, NX},
    {OP_FMADD, S, RMM, SONE, SONE, 0x33800000u, 0x3f800001u, NX},
    {OP_FMADD, S, RUP, SMINS, SMINS, SONE, 0x3f800001u, NX},
    {OP_FMADD, S, ALL, 0x3f800001u, 0x3f7ffffeu, SMONE, 0xa8800000u, 0},

    /* ---- min / max (IEEE 754-2019 minimumNumber / maximumNumber) ---- */
    {OP_MIN, D, RNE, DN0, DP0, 0, DN0, 0},
    {OP_MIN, D, RNE, DP0, DN0, 0, DN0, 0},
    {OP_MAX, D, RNE, DN0, DP0, 0, DP0, 0},
    {OP_MAX, D, RNE, DP0, DN0, 0, DP0, 0},
    {OP_MIN, D, RNE, DQNAN2, DONE, 0, DONE, 0},
    {OP_MIN, D, RNE, DONE, DQNAN, 0, DONE, 0},
    {OP_MAX, D, RNE, DSNAN, DMONE, 0, DMONE, NV},
    {OP_MAX, D, RNE, DMONE, DSNAN2, 0, DMONE, NV},
    {OP_MIN, D, RNE, DQNAN, DQNAN2, 0, DCANON, 0},
    {OP_MIN, D, RNE, DSNAN, DQNAN, 0, DCANON, NV},
    {OP_MAX, D, RNE, DNINF, DMINS, 0, DMINS, 0},
    {OP_MIN, D, RNE, DNINF, DMINS, 0, DNINF, 0},
    {OP_MIN, D, RNE, DMONE, 0xc000000000000000ull, 0, 0xc000000000000000ull, 0},
    {OP_MAX, D, RNE, DMONE, 0xc000000000000000ull, 0, DMONE, 0},
    {OP_MIN, S, RNE, SN0, SP0, 0, SN0, 0},
    {OP_MAX, S, RNE, SN0, SP0, 0, SP0, 0},
    {OP_MIN, S, RNE, SQNAN2, SMONE, 0, SMONE, 0},
    {OP_MAX, S, RNE, SSNAN, SONE, 0, SONE, NV},
    {OP_MAX, S, RNE, SSNAN, SQNAN, 0, SCANON, NV},
    {OP_MIN, S, RNE, SMONE, STWO, 0, SMONE, 0},

    /* ---- comparisons: eq quiet, lt/le signalling ---- */
    {OP_EQ, D, RNE, DN0, DP0, 0, 1, 0},
    {OP_LT, D, RNE, DN0, DP0, 0, 0, 0},
    {OP_LE, D, RNE, DN0, DP0, 0, 1, 0},
    {OP_LE, D, RNE, DP0, DN0, 0, 1, 0},
    {OP_EQ, D, RNE, DQNAN, DQNAN, 0, 0, 0},
    {OP_EQ, D, RNE, DQNAN, DONE, 0, 0, 0},
    {OP_EQ, D, RNE, DSNAN, DONE, 0, 0, NV},
    {OP_LT, D, RNE, DQNAN, DONE, 0, 0, NV},
    {OP_LE, D, RNE, DONE, DQNAN2, 0, 0, NV},
    {OP_LT, D, RNE, DMONE, DHALF, 0, 1, 0},
    {OP_LT, D, RNE, DMONE, 0xc000000000000000ull, 0, 0, 0},
    {OP_LT, D, RNE, 0xc000000000000000ull, DMONE, 0, 1, 0},
    {OP_LT, D, RNE, DNINF, DINF, 0, 1, 0},
    {OP_LT, D, RNE, DMINS, DMINS | DN0, 0, 0, 0},
    {OP_LE, D, RNE, DONE, DONE, 0, 1, 0},
    {OP_LT, D, RNE, DONE, DONE, 0, 0, 0},
    {OP_EQ, D, RNE, DINF, DINF, 0, 1, 0},
    {OP_EQ, S, RNE, SN0, SP0, 0, 1, 0},
    {OP_EQ, S, RNE, SSNAN, SSNAN, 0, 0, NV},
    {OP_LT, S, RNE, SQNAN, SONE, 0, 0, NV},
    {OP_LE, S, RNE, SMONE, SN0, 0, 1, 0},
    {OP_LT, S, RNE, SONE, SMONE, 0, 0, 0},

    /* ---- classify ---- */
    {OP_CLASS, D, RNE, DNINF, 0, 0, 1u << 0, 0},
    {OP_CLASS, D, RNE, DMONE, 0, 0, 1u << 1, 0},
    {OP_CLASS, D, RNE, DMAXS | DN0, 0, 0, 1u << 2, 0},
    {OP_CLASS, D, RNE, DN0, 0, 0, 1u << 3, 0},
    {OP_CLASS, D, RNE, DP0, 0, 0, 1u << 4, 0},
    {OP_CLASS, D, RNE, DMINS, 0, 0, 1u << 5, 0},
    {OP_CLASS, D, RNE, DMINN, 0, 0, 1u << 6, 0},
    {OP_CLASS, D, RNE, DINF, 0, 0, 1u << 7, 0},
    {OP_CLASS, D, RNE, DSNAN2, 0, 0, 1u << 8, 0},
    {OP_CLASS, D, RNE, DQNAN2, 0, 0, 1u << 9, 0},
    {OP_CLASS, S, RNE, SNINF, 0, 0, 1u << 0, 0},
    {OP_CLASS, S, RNE, SNMAX, 0, 0, 1u << 1, 0},
    {OP_CLASS, S, RNE, SMINS | SN0, 0, 0, 1u << 2, 0},
    {OP_CLASS, S, RNE, SN0, 0, 0, 1u << 3, 0},
    {OP_CLASS, S, RNE, SP0, 0, 0, 1u << 4, 0},
    {OP_CLASS, S, RNE, SMAXS, 0, 0, 1u << 5, 0},
    {OP_CLASS, S, RNE, SMAX, 0, 0, 1u << 6, 0},
    {OP_CLASS, S, RNE, SINF, 0, 0, 1u << 7, 0},
    {OP_CLASS, S, RNE, SSNAN, 0, 0, 1u << 8, 0},
    {OP_CLASS, S, RNE, SQNAN, 0, 0, 1u << 9, 0},

    /* ---- float -> int32 (results sign-extended to 64 bits here) ---- */
    {OP_TO_I32, D, RNE, 0x41dfffffffe00000ull, 0, 0, 0x7fffffffull, NV}, /* 2^31 - 0.5 */
    {OP_TO_I32, D, RMM, 0x41dfffffffe00000ull, 0, 0, 0x7fffffffull, NV},
    {OP_TO_I32, D, RUP, 0x41dfffffffe00000ull, 0, 0, 0x7fffffffull, NV},
    {OP_TO_I32, D, RTZ, 0x41dfffffffe00000ull, 0, 0, 0x7fffffffull, NX},
    {OP_TO_I32, D, RDN, 0x41dfffffffe00000ull, 0, 0, 0x7fffffffull, NX},
    {OP_TO_I32, D, RTZ, 0xc1e0000000100000ull, 0, 0, 0xffffffff80000000ull, NX}, /* -2^31-0.5 */
    {OP_TO_I32, D, RNE, 0xc1e0000000100000ull, 0, 0, 0xffffffff80000000ull, NX},
    {OP_TO_I32, D, RUP, 0xc1e0000000100000ull, 0, 0, 0xffffffff80000000ull, NX},
    {OP_TO_I32, D, RMM, 0xc1e0000000100000ull, 0, 0, 0xffffffff80000000ull, NV},
    {OP_TO_I32, D, RDN, 0xc1e0000000100000ull, 0, 0, 0xffffffff80000000ull, NV},
    {OP_TO_I32, D, ALL, 0xc1e0000000000000ull, 0, 0, 0xffffffff80000000ull, 0},
    {OP_TO_I32, D, ALL, 0x41e0000000000000ull, 0, 0, 0x7fffffffull, NV},
    {OP_TO_I32, D, ALL, 0x41dfffffffc00000ull, 0, 0, 0x7fffffffull, 0},
    {OP_TO_I32, D, ALL, DQNAN2, 0, 0, 0x7fffffffull, NV},
    {OP_TO_I32, D, ALL, DSNAN, 0, 0, 0x7fffffffull, NV},
    {OP_TO_I32, D, ALL, DINF, 0, 0, 0x7fffffffull, NV},
    {OP_TO_I32, D, ALL, DNINF, 0, 0, 0xffffffff80000000ull, NV},
    {OP_TO_I32, D, ALL, DNMAX, 0, 0, 0xffffffff80000000ull, NV},
    {OP_TO_I32, D, ALL, DN0, 0, 0, 0, 0},
    {OP_TO_I32, D, RNE, DHALF, 0, 0, 0, NX},
    {OP_TO_I32, D, RMM, DHALF, 0, 0, 1, NX},
    {OP_TO_I32, D, RUP, DMINS, 0, 0, 1, NX},
    {OP_TO_I32, D, RDN, DMINS | DN0, 0, 0, ~0ull, NX},
    {OP_TO_I32, D, RNE, 0x3ff8000000000000ull, 0, 0, 2, NX}, /* 1.5 */
    {OP_TO_I32, D, RNE, 0x4004000000000000ull, 0, 0, 2, NX}, /* 2.5 */
    {OP_TO_I32, D, RMM, 0x4004000000000000ull, 0, 0, 3, NX},
    {OP_TO_I32, D, RMM, 0xc004000000000000ull, 0, 0, (uint64_t)-3, NX},
    {OP_TO_I32, D, RTZ, 0xc004000000000000ull, 0, 0, (uint64_t)-2, NX},
    {OP_TO_I32, D, RDN, 0xc004000000000000ull, 0, 0, (uint64_t)-3, NX},
    {OP_TO_I32, D, RMM, 0xbfe0000000000000ull, 0, 0, ~0ull, NX},
    {OP_TO_I32, S, ALL, 0x4f000000u, 0, 0, 0x7fffffffull, NV},        /* 2^31 */
    {OP_TO_I32, S, ALL, 0x4effffffu, 0, 0, 0x7fffff80ull, 0},         /* 2^31 - 128 */
    {OP_TO_I32, S, ALL, 0xcf000000u, 0, 0, 0xffffffff80000000ull, 0}, /* -2^31 */
    {OP_TO_I32, S, ALL, 0xcf000001u, 0, 0, 0xffffffff80000000ull, NV},
    {OP_TO_I32, S, ALL, SQNAN2, 0, 0, 0x7fffffffull, NV},
    {OP_TO_I32, S, RMM, SHALF, 0, 0, 1, NX},
    /* float -> uint32 (zero-extended) */
    {OP_TO_U32, D, RTZ, 0xbfd3333333333333ull, 0, 0, 0, NX}, /* -0.3 */
    {OP_TO_U32, D, RNE, 0xbfd3333333333333ull, 0, 0, 0, NX},
    {OP_TO_U32, D, RUP, 0xbfd3333333333333ull, 0, 0, 0, NX},
    {OP_TO_U32, D, RMM, 0xbfd3333333333333ull, 0, 0, 0, NX},
    {OP_TO_U32, D, RDN, 0xbfd3333333333333ull, 0, 0, 0, NV},
    {OP_TO_U32, D, RNE, 0xbfe0000000000000ull, 0, 0, 0, NX}, /* -0.5 -> -0 */
    {OP_TO_U32, D, RMM, 0xbfe0000000000000ull, 0, 0, 0, NV}, /* -0.5 -> -1 */
    {OP_TO_U32, D, ALL, DMONE, 0, 0, 0, NV},
    {OP_TO_U32, D, ALL, DN0, 0, 0, 0, 0},
    {OP_TO_U32, D, ALL, DNINF, 0, 0, 0, NV},
    {OP_TO_U32, D, ALL, DINF, 0, 0, 0xffffffffull, NV},
    {OP_TO_U32, D, ALL, DQNAN, 0, 0, 0xffffffffull, NV},
    {OP_TO_U32, D, ALL, DSNAN2, 0, 0, 0xffffffffull, NV},
    {OP_TO_U32, D, RNE, 0x41effffffff00000ull, 0, 0, 0xffffffffull, NV}, /* 2^32 - 0.5 */
    {OP_TO_U32, D, RTZ, 0x41effffffff00000ull, 0, 0, 0xffffffffull, NX},
    {OP_TO_U32, D, ALL, 0x41f0000000000000ull, 0, 0, 0xffffffffull, NV},
    {OP_TO_U32, D, ALL, 0x41efffffffe00000ull, 0, 0, 0xffffffffull, 0},
    {OP_TO_U32, S, ALL, 0x4f800000u, 0, 0, 0xffffffffull, NV},
    {OP_TO_U32, S, ALL, 0x4f7fffffu, 0, 0, 0xffffff00ull, 0},
    {OP_TO_U32, S, RTZ, 0xbf7fffffu, 0, 0, 0, NX},
    {OP_TO_U32, S, RNE, 0xbf7fffffu, 0, 0, 0, NV},
    /* float -> int64 */
    {OP_TO_I64, D, ALL, 0xc3e0000000000000ull, 0, 0, 0x8000000000000000ull, 0},
    {OP_TO_I64, D, ALL, 0xc3e0000000000001ull, 0, 0, 0x8000000000000000ull, NV},
    {OP_TO_I64, D, ALL, 0x43e0000000000000ull, 0, 0, 0x7fffffffffffffffull, NV},
    {OP_TO_I64, D, ALL, 0x43dfffffffffffffull, 0, 0, 0x7ffffffffffffc00ull, 0},
    {OP_TO_I64, D, ALL, DQNAN, 0, 0, 0x7fffffffffffffffull, NV},
    {OP_TO_I64, D, ALL, DNINF, 0, 0, 0x8000000000000000ull, NV},
    {OP_TO_I64, D, ALL, DMAX, 0, 0, 0x7fffffffffffffffull, NV},
    {OP_TO_I64, D, RNE, 0x4330000000000001ull, 0, 0, 0x0010000000000001ull, 0},
    {OP_TO_I64, D, RNE, 0x432ffffffffffffdull, 0, 0, 0x000ffffffffffffeull, NX},
    {OP_TO_I64, D, RMM, 0x432ffffffffffffdull, 0, 0, 0x000fffffffffffffull, NX},
    {OP_TO_I64, S, ALL, 0xdf000000u, 0, 0, 0x8000000000000000ull, 0},
    {OP_TO_I64, S, ALL, 0x5f000000u, 0, 0, 0x7fffffffffffffffull, NV},
    {OP_TO_I64, S, ALL, 0x5effffffu, 0, 0, 0x7fffff8000000000ull, 0},
    /* float -> uint64 */
    {OP_TO_U64, D, ALL, 0x43f0000000000000ull, 0, 0, ~0ull, NV}, /* 2^64 */
    {OP_TO_U64, D, ALL, 0x43efffffffffffffull, 0, 0, 0xfffffffffffff800ull, 0},
    {OP_TO_U64, D, ALL, 0x43e0000000000000ull, 0, 0, 0x8000000000000000ull, 0},
    {OP_TO_U64, D, RNE, 0xbfe0000000000000ull, 0, 0, 0, NX},
    {OP_TO_U64, D, RMM, 0xbfe0000000000000ull, 0, 0, 0, NV},
    {OP_TO_U64, D, ALL, DMONE, 0, 0, 0, NV},
    {OP_TO_U64, D, ALL, DQNAN2, 0, 0, ~0ull, NV},
    {OP_TO_U64, D, ALL, DNINF, 0, 0, 0, NV},
    {OP_TO_U64, S, ALL, 0x5f800000u, 0, 0, ~0ull, NV},
    {OP_TO_U64, S, ALL, 0x5f7fffffu, 0, 0, 0xffffff0000000000ull, 0},
    {OP_TO_U64, S, RUP, SMINS, 0, 0, 1, NX},

    /* ---- int -> float ---- */
    {OP_FROM_I64, D, RNE, 0x7fffffffffffffffull, 0, 0, 0x43e0000000000000ull, NX},
    {OP_FROM_I64, D, RMM, 0x7fffffffffffffffull, 0, 0, 0x43e0000000000000ull, NX},
    {OP_FROM_I64, D, RUP, 0x7fffffffffffffffull, 0, 0, 0x43e0000000000000ull, NX},
    {OP_FROM_I64, D, RTZ, 0x7fffffffffffffffull, 0, 0, 0x43dfffffffffffffull, NX},
    {OP_FROM_I64, D, RDN, 0x7fffffffffffffffull, 0, 0, 0x43dfffffffffffffull, NX},
    {OP_FROM_I64, D, ALL, 0x8000000000000000ull, 0, 0, 0xc3e0000000000000ull, 0},
    {OP_FROM_I64, D, RDN, 0x8000000000000001ull, 0, 0, 0xc3e0000000000000ull, NX},
    {OP_FROM_I64, D, RUP, 0x8000000000000001ull, 0, 0, 0xc3dfffffffffffffull, NX},
    {OP_FROM_I64, D, ALL, 0, 0, 0, DP0, 0},
    {OP_FROM_I64, D, ALL, ~0ull, 0, 0, DMONE, 0},
    /* 2^53 + 1: tie, RNE to even (down), RMM away */
    {OP_FROM_I64, D, RNE, 0x0020000000000001ull, 0, 0, 0x4340000000000000ull, NX},
    {OP_FROM_I64, D, RMM, 0x0020000000000001ull, 0, 0, 0x4340000000000001ull, NX},
    {OP_FROM_I64, D, RMM, (uint64_t)-0x0020000000000001ll, 0, 0, 0xc340000000000001ull, NX},
    {OP_FROM_U64, D, RNE, ~0ull, 0, 0, 0x43f0000000000000ull, NX},
    {OP_FROM_U64, D, RTZ, ~0ull, 0, 0, 0x43efffffffffffffull, NX},
    {OP_FROM_U64, D, ALL, 0x8000000000000000ull, 0, 0, 0x43e0000000000000ull, 0},
    {OP_FROM_U64, D, RMM, 0x8000000000000400ull, 0, 0, 0x43e0000000000001ull, NX},
    {OP_FROM_U64, D, RNE, 0x8000000000000400ull, 0, 0, 0x43e0000000000000ull, NX},
    {OP_FROM_I32, D, ALL, 0x80000000ull, 0, 0, 0xc1e0000000000000ull, 0},
    {OP_FROM_I32, D, ALL, 0x7fffffffull, 0, 0, 0x41dfffffffc00000ull, 0},
    {OP_FROM_U32, D, ALL, 0xffffffffull, 0, 0, 0x41efffffffe00000ull, 0},
    {OP_FROM_I32, S, RNE, 16777217, 0, 0, 0x4b800000u, NX},
    {OP_FROM_I32, S, RMM, 16777217, 0, 0, 0x4b800001u, NX},
    {OP_FROM_I32, S, RUP, 16777217, 0, 0, 0x4b800001u, NX},
    {OP_FROM_I32, S, RNE, 16777219, 0, 0, 0x4b800002u, NX},
    {OP_FROM_I32, S, RTZ, 16777219, 0, 0, 0x4b800001u, NX},
    {OP_FROM_I32, S, ALL, 0x80000000ull, 0, 0, 0xcf000000u, 0},
    {OP_FROM_I32, S, RNE, 0x7fffffffull, 0, 0, 0x4f000000u, NX},
    {OP_FROM_I32, S, RTZ, 0x7fffffffull, 0, 0, 0x4effffffu, NX},
    {OP_FROM_I32, S, ALL, 0xffffffffull, 0, 0, SMONE, 0},
    {OP_FROM_U32, S, RNE, 0xffffffffull, 0, 0, 0x4f800000u, NX},
    {OP_FROM_U32, S, RTZ, 0xffffffffull, 0, 0, 0x4f7fffffu, NX},
    {OP_FROM_U32, S, ALL, 0, 0, 0, SP0, 0},
    {OP_FROM_I64, S, RNE, 0x7fffffffffffffffull, 0, 0, 0x5f000000u, NX},
    {OP_FROM_I64, S, RDN, 0x8000000000000001ull, 0, 0, 0xdf000000u, NX},
    {OP_FROM_I64, S, RUP, 0x8000000000000001ull, 0, 0, 0xdeffffffu, NX},
    {OP_FROM_U64, S, RNE, ~0ull, 0, 0, 0x5f800000u, NX},
    {OP_FROM_U64, S, RTZ, ~0ull, 0, 0, 0x5f7fffffu, NX},
    {OP_FROM_U64, S, RMM, 0x8000008000000000ull, 0, 0, 0x5f000001u, NX},
    {OP_FROM_U64, S, RNE, 0x8000008000000000ull, 0, 0, 0x5f000000u, NX},

    /* ---- f64 -> f32 ---- */
    {OP_CVT, D, RNE, 0x3ff0000010000000ull, 0, 0, SONE, NX}, /* 1 + 2^-24 */
    {OP_CVT, D, RMM, 0x3ff0000010000000ull, 0, 0, 0x3f800001u, NX},
    {OP_CVT, D, RUP, 0x3ff0000010000000ull, 0, 0, 0x3f800001u, NX},
    {OP_CVT, D, RNE, DMAX, 0, 0, SINF, OF | NX},
    {OP_CVT, D, RTZ, DMAX, 0, 0, SMAX, OF | NX},
    {OP_CVT, D, RDN, DNMAX, 0, 0, SNINF, OF | NX},
    {OP_CVT, D, RUP, DNMAX, 0, 0, SNMAX, OF | NX},
    {OP_CVT, D, RNE, 0x47effffff0000000ull, 0, 0, SINF, OF | NX}, /* FLT_MAX + half ulp */
    {OP_CVT, D, RTZ, 0x47effffff0000000ull, 0, 0, SMAX, NX},
    {OP_CVT, D, RNE, 0x47efffffefffffffull, 0, 0, SMAX, NX},
    {OP_CVT, D, ALL, 0x47efffffe0000000ull, 0, 0, SMAX, 0},
    {OP_CVT, D, RNE, 0x3690000000000000ull, 0, 0, SP0, UF | NX}, /* 2^-150 */
    {OP_CVT, D, RMM, 0x3690000000000000ull, 0, 0, SMINS, UF | NX},
    {OP_CVT, D, RUP, 0x3690000000000000ull, 0, 0, SMINS, UF | NX},
    {OP_CVT, D, RNE, 0x3690000000000001ull, 0, 0, SMINS, UF | NX},
    {OP_CVT, D, RNE, 0x36a8000000000000ull, 0, 0, 0x00000002u, UF | NX}, /* 1.5 * 2^-149 */
    {OP_CVT, D, ALL, 0x36a0000000000000ull, 0, 0, SMINS, 0},
    {OP_CVT, D, ALL, 0x36b0000000000000ull, 0, 0, 0x00000002u, 0},
    /* FLT_MIN * (1 - 2^-25): rounds to FLT_MIN at full precision, so not tiny in RNE */
    {OP_CVT, D, RNE, 0x380ffffff0000000ull, 0, 0, SMINN, NX},
    {OP_CVT, D, RMM, 0x380ffffff0000000ull, 0, 0, SMINN, NX},
    {OP_CVT, D, RUP, 0x380ffffff0000000ull, 0, 0, SMINN, NX},
    {OP_CVT, D, RTZ, 0x380ffffff0000000ull, 0, 0, SMAXS, UF | NX},
    {OP_CVT, D, RDN, 0x380ffffff0000000ull, 0, 0, SMAXS, UF | NX},
    /* FLT_MIN * (1 - 2^-24): exact at full precision, hence tiny */
    {OP_CVT, D, RNE, 0x380fffffe0000000ull, 0, 0, SMINN, UF | NX},
    {OP_CVT, D, RMM, 0x380fffffe0000000ull, 0, 0, SMINN, UF | NX},
    {OP_CVT, D, RTZ, 0x380fffffe0000000ull, 0, 0, SMAXS, UF | NX},
    {OP_CVT, D, ALL, DSNAN, 0, 0, SCANON, NV},
    {OP_CVT, D, ALL, DQNAN2, 0, 0, SCANON, 0},
    {OP_CVT, D, ALL, DNINF, 0, 0, SNINF, 0},
    {OP_CVT, D, ALL, DN0, 0, 0, SN0, 0},
    {OP_CVT, D, RNE, DMINS, 0, 0, SP0, UF | NX},
    {OP_CVT, D, RUP, DMINS, 0, 0, SMINS, UF | NX},
    /* ---- f32 -> f64 ---- */
    {OP_CVT, S, ALL, SSNAN, 0, 0, DCANON, NV},
    {OP_CVT, S, ALL, SQNAN2, 0, 0, DCANON, 0},
    {OP_CVT, S, ALL, SMINS, 0, 0, 0x36a0000000000000ull, 0},
    {OP_CVT, S, ALL, SMAXS | SN0, 0, 0, 0xb80fffffc0000000ull, 0},
    {OP_CVT, S, ALL, SN0, 0, 0, DN0, 0},
    {OP_CVT, S, ALL, SNINF, 0, 0, DNINF, 0},
    {OP_CVT, S, ALL, SMAX, 0, 0, 0x47efffffe0000000ull, 0},
};

static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return rng_next(s) % n;
}

/* A significand pattern of mb bits: random, short, runs of ones, near-extremes. */
static inline uint64_t gen_mant(uint64_t *s, int mb)
{
    uint64_t mask = (1ull << mb) - 1, r = rng_next(s);
    int k = (int)rng_below(s, (uint64_t)mb + 1);
    switch (rng_below(s, 8)) {
    case 0:
    case 1:
    case 2: return r & mask;
    case 3: return (r << (mb - k)) & mask;             /* only k leading bits */
    case 4: return (mask >> k) << k;                   /* ones then zeros */
    case 5: return mask >> k;                          /* zeros then ones */
    case 6: return ((r & mask) >> k) ^ (mask >> k);    /* leading zeros, random tail */
    default: return (1ull << (k < mb ? k : 0)) & mask; /* single bit or zero */
    }
}

/*
 * A random value of format fmt biased to interesting places: specials,
 * subnormals, the extreme exponents, around 1, and, when near >= 0, the
 * biased exponent near (used to make sums cancel, products underflow...).
 */
static inline uint64_t gen_fp(uint64_t *s, int fmt, int near)
{
    int mb = fmt == D ? 52 : 23, emaxf = fmt == D ? 2047 : 255, bias = emaxf / 2;
    uint64_t sign = rng_below(s, 2) ? sign_bit(fmt) : 0, m = gen_mant(s, mb);
    long e;
    unsigned r = (unsigned)rng_below(s, 100);

    if (near >= 0 && r < 60) {
        long spread = rng_below(s, 2) ? 3 : mb + 4;
        e = near + (long)rng_below(s, (uint64_t)(2 * spread + 1)) - spread;
    } else if (r < 64) {
        return sign; /* zero */
    } else if (r < 67) {
        return sign | ((uint64_t)emaxf << mb); /* infinity */
    } else if (r < 70) {
        uint64_t q = 1ull << (mb - 1); /* NaN: quiet or signalling, random payload */
        uint64_t pay = rng_next(s) & (q - 1);
        if (rng_below(s, 2))
            return sign | ((uint64_t)emaxf << mb) | q | pay;
        return sign | ((uint64_t)emaxf << mb) | (pay ? pay : 1);
    } else if (r < 78) {
        e = 0; /* subnormal */
    } else if (r < 84) {
        e = 1 + (long)rng_below(s, (uint64_t)mb + 3);
    } else if (r < 90) {
        e = emaxf - 1 - (long)rng_below(s, (uint64_t)mb + 3);
    } else if (r < 97) {
        e = bias - 40 + (long)rng_below(s, 81);
    } else {
        e = 1 + (long)rng_below(s, (uint64_t)emaxf - 1);
    }
    if (e < 0)
        e = 0;
    if (e >= emaxf)
        e = emaxf - 1;
    if (e == 0 && m == 0)
        m = 1;
    return sign | ((uint64_t)e << mb) | m;
}

static inline int biased_exp(int fmt, uint64_t x)
{
    return fmt == D ? (int)((x >> 52) & 0x7ff) : (int)((x >> 23) & 0xff);
}

/* Integers for conversions: small, near powers of two, near the limits, random. */
static inline uint64_t gen_int(uint64_t *s)
{
    int k = (int)rng_below(s, 65);
    uint64_t r = rng_next(s);
    switch (rng_below(s, 6)) {
    case 0: return k == 64 ? r : r & ((1ull << k) - 1);
    case 1: return (k == 64 ? 0 : 1ull << k) + (uint64_t)((int64_t)rng_below(s, 9) - 4);
    case 2: return (uint64_t)0 - (k == 64 ? r : r & ((1ull << k) - 1));
    case 3: return r >> rng_below(s, 64) << rng_below(s, 64);
    case 4: return (uint64_t)(int32_t)(r >> rng_below(s, 64));
    default: return r;
    }
}

/* Float operands for conversions to integer: around 2^-2 .. 2^66, halfway values. */
static inline uint64_t gen_for_int(uint64_t *s, int fmt)
{
    int bias = fmt == D ? 1023 : 127;
    if (rng_below(s, 5) == 0)
        return gen_fp(s, fmt, -1);
    return gen_fp(s, fmt, bias - 2 + (int)rng_below(s, 69));
}

/*
 * Operands whose product (OP_MUL) or quotient (OP_DIV) lies within a few
 * ulps of the smallest normal, from either side: for products the cases
 * where tininess before and after rounding differ.  (A quotient of normals
 * cannot come closer than 2^-p below a power of two unless it is exact, so
 * for division these only exercise the subnormal boundary.)  For the product
 * b's significand is an approximate reciprocal of a's; for the quotient a's
 * significand is b's plus a small delta.
 */
static inline void near_min_normal(uint64_t *s, int op, int fmt, uint64_t *a, uint64_t *b)
{
    int mb = fmt == D ? 52 : 23, bias = fmt == D ? 1023 : 127;
    uint64_t hidden = 1ull << mb, mmask = hidden - 1;
    int64_t delta = (int64_t)rng_below(s, 7) - 3;
    uint64_t sa = rng_below(s, 2) ? sign_bit(fmt) : 0, sb = rng_below(s, 2) ? sign_bit(fmt) : 0;
    uint64_t ma = hidden | (rng_next(s) & mmask), mbv;
    int fa, fb;

    if (op == OP_MUL) {
        /* ma * mbv ~ 2^(2mb+1): the product is ~2^(ea + eb + 1) */
        mbv = (uint64_t)((int64_t)(((unsigned __int128)1 << (2 * mb + 1)) / ma) + delta);
        if (mbv >= hidden << 1)
            mbv = (hidden << 1) - 1;
        fa = 1 + (int)rng_below(s, (uint64_t)bias - 2);
        fb = bias - fa - (int)rng_below(s, 2); /* unbiased ea + eb + 1 = emin or emin - 1 */
    } else {
        /* (mbv + delta) / mbv ~ 1: the quotient is ~2^(ea - eb) */
        mbv = hidden | (rng_next(s) & mmask);
        ma = (uint64_t)((int64_t)mbv + delta);
        if (ma < hidden)
            ma = hidden;
        if (ma >= hidden << 1)
            ma = (hidden << 1) - 1;
        fa = 1 + (int)rng_below(s, 40);
        fb = fa + bias - 1 + (int)rng_below(s, 2); /* ea - eb = emin or emin - 1 */
    }
    *a = sa | ((uint64_t)fa << mb) | (ma & mmask);
    *b = sb | ((uint64_t)fb << mb) | (mbv & mmask);
}

static inline void gen_operands(uint64_t *s, int op, int fmt, uint64_t *a, uint64_t *b, uint64_t *c)
{
    int bias = fmt == D ? 1023 : 127, p = fmt == D ? 53 : 24, emaxf = fmt == D ? 2047 : 255;
    int ea;

    *a = gen_fp(s, fmt, -1);
    *b = gen_fp(s, fmt, -1);
    *c = gen_fp(s, fmt, -1);
    ea = biased_exp(fmt, *a);
    switch (op) {
    case OP_ADD:
    case OP_SUB:
    case OP_MIN:
    case OP_MAX:
    case OP_EQ:
    case OP_LT:
    case OP_LE: *b = gen_fp(s, fmt, ea); break;
    case OP_MUL:
    case OP_DIV: {
        if (rng_below(s, 5) == 0) {
            near_min_normal(s, op, fmt, a, b);
            break;
        }
        /* aim the result's exponent at the subnormal range or the overflow edge */
        int target = rng_below(s, 2) ? 1 - (int)rng_below(s, (uint64_t)p + 3)
                                     : emaxf - 3 + (int)rng_below(s, 5);
        int eb = op == OP_MUL ? target - ea + bias : ea - target + bias;
        if (rng_below(s, 3))
            *b = gen_fp(s, fmt, eb < 0 ? 0 : eb);
        break;
    }
    case OP_FMADD:
    case OP_FMSUB:
    case OP_FNMSUB:
    case OP_FNMADD: {
        int eb = biased_exp(fmt, *b);
        if (rng_below(s, 6) == 0) { /* product at the tininess boundary, small addend */
            near_min_normal(s, OP_MUL, fmt, a, b);
            *c = rng_below(s, 2) ? gen_fp(s, fmt, 0) : *c & sign_bit(fmt);
            break;
        }
        if (rng_below(s, 4) == 0) {
            int target = rng_below(s, 2) ? 1 - (int)rng_below(s, (uint64_t)p + 3)
                                         : emaxf - 3 + (int)rng_below(s, 5);
            *b = gen_fp(s, fmt, target - ea + bias < 0 ? 0 : target - ea + bias);
            eb = biased_exp(fmt, *b);
        }
        if (rng_below(s, 3)) {
            int pe = ea + eb - bias;
            *c = gen_fp(s, fmt, pe < 0 ? 0 : pe);
        }
        break;
    }
    case OP_TO_I32:
    case OP_TO_U32:
    case OP_TO_I64:
    case OP_TO_U64: *a = gen_for_int(s, fmt); break;
    case OP_FROM_I32:
    case OP_FROM_U32: *a = gen_int(s) & 0xffffffffull; break;
    case OP_FROM_I64:
    case OP_FROM_U64: *a = gen_int(s); break;
    case OP_CVT:
        if (fmt == D && rng_below(s, 2)) /* around the binary32 range limits */
            *a = gen_fp(s, D,
                        rng_below(s, 2) ? 1023 - 126 - (int)rng_below(s, 26)
                                        : 1023 + 126 + (int)rng_below(s, 4));
        break;
    default: break;
    }
}

/* A normal value with a random k-bit significand (leading one included). */
static inline uint64_t gen_short(uint64_t *s, int fmt, int k, int field)
{
    int mb = fmt == D ? 52 : 23;
    uint64_t m = (rng_next(s) & ((1ull << (k - 1)) - 1)) << (mb - k + 1);
    uint64_t sign = rng_below(s, 2) ? sign_bit(fmt) : 0;
    if (field < 1)
        field = 1;
    if (field > (fmt == D ? 2046 : 254))
        field = fmt == D ? 2046 : 254;
    return sign | ((uint64_t)field << mb) | m;
}

/*
 * Operands for which an exact halfway case is likely, where RMM and RNE
 * part: products and fused products of short significands, sums whose
 * addends overlap by a few bits, x.5 conversions to integer, integers of
 * p + 1 significant bits, binary64 values with 25 significant bits.
 */
static inline void gen_tie_operands(uint64_t *s, int op, int fmt, uint64_t *a, uint64_t *b,
                                    uint64_t *c)
{
    int mb = fmt == D ? 52 : 23, p = mb + 1, bias = fmt == D ? 1023 : 127;
    int fa = bias - 30 + (int)rng_below(s, 61);
    int half = (p + 1) / 2 + (int)rng_below(s, 2);

    *a = gen_short(s, fmt, half, fa);
    *b = gen_short(s, fmt, half, bias - 30 + (int)rng_below(s, 61));
    *c = 0;
    switch (op) {
    case OP_ADD:
    case OP_SUB: /* b's few bits straddle a's last place */
        *a = gen_short(s, fmt, p - (int)rng_below(s, 3), fa);
        *b = gen_short(s, fmt, 1 + (int)rng_below(s, 4), fa - p + 1 - (int)rng_below(s, 4));
        if (rng_below(s, 2)) {
            uint64_t t = *a;
            *a = *b;
            *b = t;
        }
        break;
    case OP_FMADD:
    case OP_FMSUB:
    case OP_FNMSUB:
    case OP_FNMADD: {
        int pe = biased_exp(fmt, *a) + biased_exp(fmt, *b) - bias;
        *c = rng_below(s, 4) ? gen_short(s, fmt, 1 + (int)rng_below(s, 8),
                                         pe - (int)rng_below(s, (uint64_t)p + 4))
                             : 0;
        break;
    }
    case OP_TO_I32:
    case OP_TO_U32:
    case OP_TO_I64:
    case OP_TO_U64: { /* (2m + 1) / 2 with m < 2^(bits - 1) */
        int bits = 1 + (int)rng_below(s, p < 30 ? (uint64_t)p : 30);
        uint64_t v = ((rng_next(s) & ((1ull << (bits - 1)) - 1)) << 1) | 1;
        int len = 64 - __builtin_clzll(v);
        *a = (rng_below(s, 2) ? sign_bit(fmt) : 0) | ((uint64_t)(bias + len - 2) << mb) |
             ((v << (mb - len + 1)) & ((1ull << mb) - 1));
        break;
    }
    case OP_FROM_I32:
    case OP_FROM_U32:
    case OP_FROM_I64:
    case OP_FROM_U64: { /* p + 1 significant bits ending in one */
        int width = op == OP_FROM_I32 || op == OP_FROM_U32 ? 32 : 64;
        int room = width - 1 - p;
        uint64_t v = (1ull << p) | (rng_next(s) & ((1ull << p) - 1)) | 1;
        v <<= room > 0 ? rng_below(s, (uint64_t)room) : 0;
        if ((op == OP_FROM_I32 || op == OP_FROM_I64) && rng_below(s, 2))
            v = 0 - v;
        *a = width == 32 ? v & 0xffffffffull : v;
        break;
    }
    case OP_CVT:
        if (fmt == D) /* 25 significant bits: halfway in binary32 */
            *a = (rng_below(s, 2) ? sign_bit(D) : 0) |
                 ((uint64_t)(1023 - 40 + (int)rng_below(s, 81)) << 52) |
                 ((rng_next(s) & 0xffffffull) << 29) | (1ull << 28);
        break;
    default: break;
    }
}

#endif
