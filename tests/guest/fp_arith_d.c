/*
 * D extension arithmetic: fadd/fsub/fmul/fdiv/fsqrt/fmadd/fmsub/fnmadd/
 * fnmsub.d in every rounding mode with fflags (see fp_arith.h).
 */
#define FP_SUFFIX "d"
#define FP_MVIN   "fmv.d.x"
#define FP_NAME   "double"
#include "fp_arith.h"

static const uint64_t vals[] = {
    0x0000000000000000, 0x8000000000000000, 0x3ff0000000000000, 0xbff0000000000000,
    0x3ff8000000000000, 0x4008000000000000, 0x3fb999999999999a, 0x3fd5555555555555,
    0x7fefffffffffffff, 0xffefffffffffffff, 0x0010000000000000, 0x800fffffffffffff,
    0x0000000000000001, 0x7ff0000000000000, 0xfff0000000000000, 0x7ff8000000000000,
    0x7ff0000000000001, 0xfff8dead00000000, 0x4340000000000001, 0x3ca0000000000000,
};
static const uint64_t fvals[] = {
    0x0000000000000000, 0x8000000000000000, 0x3ff0000000000000, 0x7fefffffffffffff,
    0x7ff0000000000000, 0x7ff8000000000000, 0x0000000000000001,
};
static const uint64_t triples[][3] = {
    {0x3ff0000000000001, 0x3ff0000000000001, 0xbff0000000000000}, /* single rounding */
    {0x3ff0000000000001, 0x3fefffffffffffff, 0xbff0000000000000}, /* exact -2^-105 */
    {0x7ff0000000000000, 0x0000000000000000, 0x7ff8000000000000}, /* inf*0 + qNaN */
    {0x0000000000000000, 0xfff0000000000000, 0x3ff0000000000000}, /* 0*-inf + 1 */
    {0xbff0000000000000, 0x0000000000000000, 0x0000000000000000}, /* zero sign */
    {0x7fefffffffffffff, 0x4000000000000000, 0xfff0000000000000}, /* overflow + -inf */
    {0x7ff0000000000000, 0x3ff0000000000000, 0xfff0000000000000}, /* inf - inf */
    {0x7ff0000000000001, 0x3ff0000000000000, 0x3ff0000000000000}, /* sNaN operand */
    {0x3ff0000000000000, 0x3ff0000000000000, 0x7ff0000000000001}, /* sNaN addend */
    {0x0010000000000000, 0x3fe0000000000000, 0x0000000000000000}, /* exact subnormal */
    {0x0010000000000001, 0x3fe0000000000000, 0x8000000000000000}, /* inexact subnormal */
    {0x3fd5555555555555, 0x4008000000000000, 0xbff0000000000000}, /* (1/3)*3 - 1 */
};

int main(void)
{
    fp_arith_main(vals, sizeof(vals) / sizeof(vals[0]), fvals, sizeof(fvals) / sizeof(fvals[0]),
                  triples, sizeof(triples) / sizeof(triples[0]));
    return rt_check_failures();
}
