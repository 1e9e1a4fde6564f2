/*
 * Exact software floating point, private to the FPU module (fpu.c is its only
 * user besides the unit tests).  One integer-only engine serves both formats:
 * operands are unpacked into a sign, an unbiased exponent and a 64-bit
 * significand with its leading one at bit 62, the operation is computed
 * exactly or with a sticky bit (64- or 128-bit integers), and one
 * round-and-pack step applies the rounding mode, the overflow rules and the
 * after-rounding tininess test of RISC-V (unprivileged spec §11.2).
 *
 * Every function here handles every input (NaN, infinity, zero, subnormal)
 * in every rounding mode 0..4 and ORs RV_FFLAG_* into *fflags.  Values are
 * raw bit patterns; binary32 values travel in the low 32 bits of a uint64_t
 * and results come back zero-extended.  fpu.c layers host-FPU fast paths on
 * top; these functions are the reference they fall back to.
 */
#ifndef GODWIT_HART_FPU_SOFT_H
#define GODWIT_HART_FPU_SOFT_H

#include <stdint.h>

enum rv_soft_fmt { RV_SOFT_F32 = 0, RV_SOFT_F64 = 1 };

/* a+b; subtraction is a + (b with its sign bit flipped). */
uint64_t rv_soft_add(int fmt, uint64_t a, uint64_t b, int rm, unsigned *fflags);
uint64_t rv_soft_mul(int fmt, uint64_t a, uint64_t b, int rm, unsigned *fflags);
uint64_t rv_soft_div(int fmt, uint64_t a, uint64_t b, int rm, unsigned *fflags);
uint64_t rv_soft_sqrt(int fmt, uint64_t a, int rm, unsigned *fflags);
/* a*b+c with a single rounding; NV for inf*0 even when c is a quiet NaN. */
uint64_t rv_soft_fma(int fmt, uint64_t a, uint64_t b, uint64_t c, int rm, unsigned *fflags);

/*
 * Float to integer of width bits (32 or 64), signed or not, saturating per
 * spec table 11.4.  The result is returned sign-extended (signed) or
 * zero-extended (unsigned) to 64 bits.
 */
uint64_t rv_soft_to_int(int fmt, uint64_t a, int rm, int is_signed, int width, unsigned *fflags);
/* The integer (-1)^neg * mag, rounded to fmt. */
uint64_t rv_soft_from_int(int fmt, uint64_t mag, int neg, int rm, unsigned *fflags);
/* Convert between formats (rounds when narrowing, exact when widening). */
uint64_t rv_soft_convert(int to_fmt, int from_fmt, uint64_t a, int rm, unsigned *fflags);

#endif
