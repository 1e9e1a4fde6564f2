/*
 * IEEE 754 binary32/binary64 arithmetic with exact RISC-V semantics
 * (unprivileged spec ch. 11-12, "F" and "D"): five rounding modes including
 * RMM, accrued exception flags, tininess detected after rounding, the
 * canonical NaN for every NaN result, saturating float-to-int conversions,
 * minimum/maximum per IEEE 754-2019 minimumNumber/maximumNumber with
 * signalling-NaN flags, and fused multiply-add with a single rounding.
 *
 * Operands and results are raw bit patterns.  NaN boxing of single values in
 * 64-bit registers is the hart's job, not this module's.  Every function
 * ORs the exception flags it raises into *fflags (RV_FFLAG_*), never clears.
 * rm is a resolved static mode 0..4 (never 7/DYN).
 */
#ifndef GODWIT_HART_FPU_H
#define GODWIT_HART_FPU_H

#include <stdint.h>

enum { RV_RM_RNE = 0, RV_RM_RTZ = 1, RV_RM_RDN = 2, RV_RM_RUP = 3, RV_RM_RMM = 4 };
enum {
    RV_FFLAG_NX = 1,  /* inexact */
    RV_FFLAG_UF = 2,  /* underflow */
    RV_FFLAG_OF = 4,  /* overflow */
    RV_FFLAG_DZ = 8,  /* divide by zero */
    RV_FFLAG_NV = 16, /* invalid */
};

#define RV_F32_CANON_NAN 0x7fc00000u
#define RV_F64_CANON_NAN 0x7ff8000000000000ull

/* binary32 */
uint32_t rv_f32_add(uint32_t a, uint32_t b, int rm, unsigned *fflags);
uint32_t rv_f32_sub(uint32_t a, uint32_t b, int rm, unsigned *fflags);
uint32_t rv_f32_mul(uint32_t a, uint32_t b, int rm, unsigned *fflags);
uint32_t rv_f32_div(uint32_t a, uint32_t b, int rm, unsigned *fflags);
uint32_t rv_f32_sqrt(uint32_t a, int rm, unsigned *fflags);
/* a*b+c with one rounding; fmsub/fnmadd/fnmsub flip the sign bits of a and/or c */
uint32_t rv_f32_fma(uint32_t a, uint32_t b, uint32_t c, int rm, unsigned *fflags);
uint32_t rv_f32_min(uint32_t a, uint32_t b, unsigned *fflags);
uint32_t rv_f32_max(uint32_t a, uint32_t b, unsigned *fflags);
/* comparisons return 0/1; eq is quiet (NV only on sNaN), lt/le signal on any NaN */
int rv_f32_eq(uint32_t a, uint32_t b, unsigned *fflags);
int rv_f32_lt(uint32_t a, uint32_t b, unsigned *fflags);
int rv_f32_le(uint32_t a, uint32_t b, unsigned *fflags);
/* FCLASS.S result mask (bit 0 = -inf ... bit 9 = quiet NaN) */
uint32_t rv_f32_classify(uint32_t a);
/* conversions: to integer saturate and raise NV on NaN/overflow (spec table 11.4) */
int32_t rv_f32_to_i32(uint32_t a, int rm, unsigned *fflags);
uint32_t rv_f32_to_u32(uint32_t a, int rm, unsigned *fflags);
int64_t rv_f32_to_i64(uint32_t a, int rm, unsigned *fflags);
uint64_t rv_f32_to_u64(uint32_t a, int rm, unsigned *fflags);
uint32_t rv_i32_to_f32(int32_t v, int rm, unsigned *fflags);
uint32_t rv_u32_to_f32(uint32_t v, int rm, unsigned *fflags);
uint32_t rv_i64_to_f32(int64_t v, int rm, unsigned *fflags);
uint32_t rv_u64_to_f32(uint64_t v, int rm, unsigned *fflags);

/* binary64 */
uint64_t rv_f64_add(uint64_t a, uint64_t b, int rm, unsigned *fflags);
uint64_t rv_f64_sub(uint64_t a, uint64_t b, int rm, unsigned *fflags);
uint64_t rv_f64_mul(uint64_t a, uint64_t b, int rm, unsigned *fflags);
uint64_t rv_f64_div(uint64_t a, uint64_t b, int rm, unsigned *fflags);
uint64_t rv_f64_sqrt(uint64_t a, int rm, unsigned *fflags);
uint64_t rv_f64_fma(uint64_t a, uint64_t b, uint64_t c, int rm, unsigned *fflags);
uint64_t rv_f64_min(uint64_t a, uint64_t b, unsigned *fflags);
uint64_t rv_f64_max(uint64_t a, uint64_t b, unsigned *fflags);
int rv_f64_eq(uint64_t a, uint64_t b, unsigned *fflags);
int rv_f64_lt(uint64_t a, uint64_t b, unsigned *fflags);
int rv_f64_le(uint64_t a, uint64_t b, unsigned *fflags);
uint32_t rv_f64_classify(uint64_t a);
int32_t rv_f64_to_i32(uint64_t a, int rm, unsigned *fflags);
uint32_t rv_f64_to_u32(uint64_t a, int rm, unsigned *fflags);
int64_t rv_f64_to_i64(uint64_t a, int rm, unsigned *fflags);
uint64_t rv_f64_to_u64(uint64_t a, int rm, unsigned *fflags);
uint64_t rv_i32_to_f64(int32_t v, int rm, unsigned *fflags);
uint64_t rv_u32_to_f64(uint32_t v, int rm, unsigned *fflags);
uint64_t rv_i64_to_f64(int64_t v, int rm, unsigned *fflags);
uint64_t rv_u64_to_f64(uint64_t v, int rm, unsigned *fflags);

/* between formats */
uint64_t rv_f32_to_f64(uint32_t a, unsigned *fflags);
uint32_t rv_f64_to_f32(uint64_t a, int rm, unsigned *fflags);

#endif
