/*
 * F extension arithmetic: fadd/fsub/fmul/fdiv/fsqrt/fmadd/fmsub/fnmadd/
 * fnmsub.s in every rounding mode with fflags (see fp_arith.h).
 */
#define FP_SUFFIX "s"
#define FP_MVIN   "fmv.w.x"
#define FP_NAME   "single"
#include "fp_arith.h"

static const uint64_t vals[] = {
    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x3fc00000, 0x40400000, 0x3dcccccd,
    0x3eaaaaab, 0x7f7fffff, 0xff7fffff, 0x00800000, 0x807fffff, 0x00000001, 0x7f800000,
    0xff800000, 0x7fc00000, 0x7f800001, 0xffc12345, 0x4b800001, 0x33800000,
};
static const uint64_t fvals[] = {
    0x00000000, 0x80000000, 0x3f800000, 0x7f7fffff, 0x7f800000, 0x7fc00000, 0x00000001,
};
static const uint64_t triples[][3] = {
    {0x3f800001, 0x3f800001, 0xbf800000}, /* single rounding: exact 2^-22 + 2^-46 */
    {0x3f800001, 0x3f7fffff, 0xbf800000}, /* (1+2^-23)(1-2^-24) - 1 */
    {0x7f800000, 0x00000000, 0x7fc00000}, /* inf*0 + qNaN: NV required by RISC-V */
    {0x00000000, 0xff800000, 0x3f800000}, /* 0*-inf + 1 */
    {0xbf800000, 0x00000000, 0x00000000}, /* -1*0 + 0: zero sign depends on rm */
    {0x7f7fffff, 0x40000000, 0xff800000}, /* overflow product + -inf */
    {0x7f800000, 0x3f800000, 0xff800000}, /* inf - inf */
    {0x7f800001, 0x3f800000, 0x3f800000}, /* sNaN operand */
    {0x3f800000, 0x3f800000, 0x7f800001}, /* sNaN addend */
    {0x00800000, 0x3f000000, 0x00000000}, /* subnormal result, exact */
    {0x00800001, 0x3f000000, 0x80000000}, /* subnormal result, inexact: UF */
    {0x3eaaaaab, 0x40400000, 0xbf800000}, /* (1/3)*3 - 1 */
};

int main(void)
{
    fp_arith_main(vals, sizeof(vals) / sizeof(vals[0]), fvals, sizeof(fvals) / sizeof(fvals[0]),
                  triples, sizeof(triples) / sizeof(triples[0]));
    return rt_check_failures();
}
