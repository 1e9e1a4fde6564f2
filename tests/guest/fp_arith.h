/*
 * Shared body of fp_arith_s.c and fp_arith_d.c: F/D arithmetic (add, sub,
 * mul, div, sqrt, and the four fused multiply-adds) in all five static
 * rounding modes, with the accrued flags after each.  Dynamic mode is run
 * with frm set to each mode and must match the static result (self-check).
 * Operands and results travel as raw bits (fmv), and results are read back
 * with fmv.x.d so single-precision results also show their NaN boxing.
 *
 * Define before including: FP_SUFFIX ("s" or "d"), FP_MVIN ("fmv.w.x" or
 * "fmv.d.x"), FP_NAME, and the value arrays.
 */
#ifndef GODWIT_GUEST_FP_ARITH_H
#define GODWIT_GUEST_FP_ARITH_H

#include "rt.h"

#define NRM 5
static const char *const rm_names[NRM] = {"rne", "rtz", "rdn", "rup", "rmm"};

typedef uint64_t (*fp2_fn)(uint64_t a, uint64_t b, uint64_t c, uint64_t *flags);

#define FP_BODY(insn_ops)                                                                          \
    uint64_t r, f;                                                                                 \
    __asm__ volatile(FP_MVIN " ft0, %2\n\t" FP_MVIN " ft1, %3\n\t" FP_MVIN " ft2, %4\n\t"          \
                             "csrw fflags, x0\n\t" insn_ops "\n\t"                                 \
                             "fmv.x.d %0, ft3\n\t"                                                 \
                             "csrrw %1, fflags, x0"                                                \
                     : "=r"(r), "=r"(f)                                                            \
                     : "r"(a), "r"(b), "r"(c)                                                      \
                     : "ft0", "ft1", "ft2", "ft3");                                                \
    *flags = f;                                                                                    \
    return r;

#define DEF2(op, tag, rmstr)                                                                       \
    static uint64_t op##_##tag(uint64_t a, uint64_t b, uint64_t c, uint64_t *flags)                \
    {                                                                                              \
        (void)c;                                                                                   \
        FP_BODY(#op "." FP_SUFFIX " ft3, ft0, ft1" rmstr)                                          \
    }
#define DEF1(op, tag, rmstr)                                                                       \
    static uint64_t op##_##tag(uint64_t a, uint64_t b, uint64_t c, uint64_t *flags)                \
    {                                                                                              \
        (void)b;                                                                                   \
        (void)c;                                                                                   \
        FP_BODY(#op "." FP_SUFFIX " ft3, ft0" rmstr)                                               \
    }
#define DEF3(op, tag, rmstr)                                                                       \
    static uint64_t op##_##tag(uint64_t a, uint64_t b, uint64_t c, uint64_t *flags)                \
    {                                                                                              \
        FP_BODY(#op "." FP_SUFFIX " ft3, ft0, ft1, ft2" rmstr)                                     \
    }
#define ALL_RM(DEF, op)                                                                            \
    DEF(op, rne, ", rne")                                                                          \
    DEF(op, rtz, ", rtz")                                                                          \
    DEF(op, rdn, ", rdn") DEF(op, rup, ", rup") DEF(op, rmm, ", rmm") DEF(op, dyn, "")

ALL_RM(DEF2, fadd)
ALL_RM(DEF2, fsub)
ALL_RM(DEF2, fmul)
ALL_RM(DEF2, fdiv)
ALL_RM(DEF1, fsqrt)
ALL_RM(DEF3, fmadd)
ALL_RM(DEF3, fmsub)
ALL_RM(DEF3, fnmadd)
ALL_RM(DEF3, fnmsub)

struct fp_op {
    const char *name;
    int arity;
    fp2_fn rm[NRM];
    fp2_fn dyn;
};
#define OPE(op, n)                                                                                 \
    {                                                                                              \
#op, n, {op##_rne, op##_rtz, op##_rdn, op##_rup, op##_rmm }, op##_dyn                      \
    }
static const struct fp_op fp_ops[] = {
    OPE(fadd, 2),  OPE(fsub, 2),  OPE(fmul, 2),   OPE(fdiv, 2),   OPE(fsqrt, 1),
    OPE(fmadd, 3), OPE(fmsub, 3), OPE(fnmadd, 3), OPE(fnmsub, 3),
};

/* Print a result: singles as 8 hex digits (marked if not NaN-boxed). */
static void fp_print_val(uint64_t r)
{
    if (FP_SUFFIX[0] == 's') {
        if ((r >> 32) != 0xffffffff) {
            rt_printf("!unboxed:%lx", r);
            RT_CHECK((r >> 32) == 0xffffffff);
        } else {
            rt_printf("%lx", r & 0xffffffff);
        }
    } else {
        rt_printf("%lx", r);
    }
}

/*
 * One result: " value/flags" for rne, then "{m:value/flags,...}" for each
 * other static mode whose result or flags differ from rne's.
 */
static void fp_run(const struct fp_op *op, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t r[NRM], fl[NRM];
    for (int m = 0; m < NRM; m++) {
        uint64_t d, dfl;
        r[m] = op->rm[m](a, b, c, &fl[m]);
        csr_write(frm, m);
        d = op->dyn(a, b, c, &dfl);
        csr_write(frm, 0);
        if (d != r[m] || dfl != fl[m]) {
            rt_printf(" [dyn %s: %lx/%lx vs %lx/%lx]", rm_names[m], d, dfl, r[m], fl[m]);
            RT_CHECK(d == r[m] && dfl == fl[m]);
        }
    }
    rt_putc(' ');
    fp_print_val(r[0]);
    rt_printf("/%lx", fl[0]);
    int open = 0;
    for (int m = 1; m < NRM; m++) {
        if (r[m] == r[0] && fl[m] == fl[0])
            continue;
        rt_printf("%c%s:", open ? ',' : '{', rm_names[m]);
        fp_print_val(r[m]);
        rt_printf("/%lx", fl[m]);
        open = 1;
    }
    if (open)
        rt_putc('}');
}

static void fp_arith_main(const uint64_t *vals, unsigned nvals, const uint64_t *fvals,
                          unsigned nfvals, const uint64_t (*triples)[3], unsigned ntriples)
{
    rt_printf("%s: one line per first operand(s), results over the value list\n", FP_NAME);
    rt_printf("values:");
    for (unsigned i = 0; i < nvals; i++)
        rt_printf(" %lx", vals[i]);
    rt_printf("\nresult = rne value/fflags {other rounding modes that differ}\n");
    for (unsigned o = 0; o < sizeof(fp_ops) / sizeof(fp_ops[0]); o++) {
        const struct fp_op *op = &fp_ops[o];
        if (op->arity == 1) {
            rt_printf("%s.%s:", op->name, FP_SUFFIX);
            for (unsigned i = 0; i < nvals; i++)
                fp_run(op, vals[i], 0, 0);
            rt_printf("\n");
        } else if (op->arity == 2) {
            for (unsigned i = 0; i < nvals; i++) {
                rt_printf("%s.%s %lx:", op->name, FP_SUFFIX, vals[i]);
                for (unsigned j = 0; j < nvals; j++)
                    fp_run(op, vals[i], vals[j], 0);
                rt_printf("\n");
            }
        } else {
            for (unsigned i = 0; i < nfvals; i++) {
                for (unsigned j = 0; j < nfvals; j++) {
                    rt_printf("%s.%s %lx %lx:", op->name, FP_SUFFIX, fvals[i], fvals[j]);
                    for (unsigned k = 0; k < nfvals; k++)
                        fp_run(op, fvals[i], fvals[j], fvals[k]);
                    rt_printf("\n");
                }
            }
            for (unsigned t = 0; t < ntriples; t++) {
                rt_printf("%s.%s %lx %lx %lx:", op->name, FP_SUFFIX, triples[t][0], triples[t][1],
                          triples[t][2]);
                fp_run(op, triples[t][0], triples[t][1], triples[t][2]);
                rt_printf("\n");
            }
        }
    }
}

#endif
