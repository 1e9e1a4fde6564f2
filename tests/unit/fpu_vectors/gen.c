/*
 * Bare-metal riscv64 program that records QEMU's F/D behaviour as a C table
 * for tests/unit/test_fpu.c.  For every case -- the hand-written edge cases
 * of fpu_cases.h, special values crossed with each other, and biased random
 * operands -- it executes the real instruction once per rounding mode
 * (frm = 0..4 with dynamic rounding), clearing fflags before and reading
 * them after, and prints
 *     {op, fmt, a, b, c, {r_rne, ..., r_rmm}, {fl_rne, ..., fl_rmm}},
 * on the 16550 UART.  Operations without a rounding mode print one column.
 * Run by gen.sh; the output is committed as tests/unit/data/
 * fpu_qemu_vectors.inc so the unit test needs no QEMU.
 *
 * Result conventions match the test's call_pub(): binary32 results are the
 * 32 raw bits; fcvt.w[u] results are the 32-bit value, sign-extended for
 * .w and zero-extended for .wu; comparisons and fclass the integer.
 */
#include <stdint.h>

#include "fpu_cases.h"

#define UART_THR ((volatile uint8_t *)0x10000000)

int main(void);

static void out_char(char c)
{
    *UART_THR = (uint8_t)c;
}

static void out_str(const char *s)
{
    while (*s)
        out_char(*s++);
}

static void out_hex(uint64_t v)
{
    int started = 0;
    out_str("0x");
    for (int sh = 60; sh >= 0; sh -= 4) {
        unsigned d = (unsigned)(v >> sh) & 15;
        if (d || started || sh == 0) {
            out_char("0123456789abcdef"[d]);
            started = 1;
        }
    }
}

/*
 * One instruction with frm = rm, fflags cleared before and read after.
 * MV_IN/MV_OUT move raw bits between x and f registers (fmv.w.x NaN-boxes).
 */
#define EXEC(SETUP, INSN, TAIL, ...)                                                               \
    __asm__ volatile("csrw frm, %[rm]\n\t"                                                         \
                     "csrw fflags, zero\n\t" SETUP INSN TAIL "csrr %[fl], fflags\n\t"              \
                     : [r] "=&r"(r), [fl] "=&r"(f)                                                 \
                     : [a] "r"(a), [b] "r"(b), [c] "r"(c), [rm] "r"(rm)                            \
                     : "ft0", "ft1", "ft2", "ft3")

#define IN3(MV) MV " ft0, %[a]\n\t" MV " ft1, %[b]\n\t" MV " ft2, %[c]\n\t"

/* fp op fp, fp [, fp] -> fp */
#define DEF_FFF(NAME, MV_IN, MV_OUT, INSN)                                                         \
    static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, uint64_t rm, unsigned *fl)            \
    {                                                                                              \
        uint64_t r, f;                                                                             \
        EXEC(IN3(MV_IN), INSN "\n\t", MV_OUT " %[r], ft3\n\t");                                    \
        *fl = (unsigned)f;                                                                         \
        return r;                                                                                  \
    }

/* fp -> integer register (compare, classify, fcvt to integer) */
#define DEF_FFX(NAME, MV_IN, INSN)                                                                 \
    static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, uint64_t rm, unsigned *fl)            \
    {                                                                                              \
        uint64_t r, f;                                                                             \
        EXEC(IN3(MV_IN), INSN "\n\t", "");                                                         \
        *fl = (unsigned)f;                                                                         \
        return r;                                                                                  \
    }

/* integer register -> fp (fcvt from integer) */
#define DEF_XF(NAME, MV_OUT, INSN)                                                                 \
    static uint64_t NAME(uint64_t a, uint64_t b, uint64_t c, uint64_t rm, unsigned *fl)            \
    {                                                                                              \
        uint64_t r, f;                                                                             \
        EXEC("", INSN "\n\t", MV_OUT " %[r], ft3\n\t");                                            \
        *fl = (unsigned)f;                                                                         \
        return r;                                                                                  \
    }

/* fcvt.d.w[u] is exact and the assembler refuses a rounding mode for it */
#define RM_s ", dyn"
#define RM_d ""

#define FOR_FMT(SUF, MV_IN, MV_OUT)                                                                \
    DEF_FFF(add_##SUF, MV_IN, MV_OUT, "fadd." #SUF " ft3, ft0, ft1, dyn")                          \
    DEF_FFF(sub_##SUF, MV_IN, MV_OUT, "fsub." #SUF " ft3, ft0, ft1, dyn")                          \
    DEF_FFF(mul_##SUF, MV_IN, MV_OUT, "fmul." #SUF " ft3, ft0, ft1, dyn")                          \
    DEF_FFF(div_##SUF, MV_IN, MV_OUT, "fdiv." #SUF " ft3, ft0, ft1, dyn")                          \
    DEF_FFF(sqrt_##SUF, MV_IN, MV_OUT, "fsqrt." #SUF " ft3, ft0, dyn")                             \
    DEF_FFF(fmadd_##SUF, MV_IN, MV_OUT, "fmadd." #SUF " ft3, ft0, ft1, ft2, dyn")                  \
    DEF_FFF(fmsub_##SUF, MV_IN, MV_OUT, "fmsub." #SUF " ft3, ft0, ft1, ft2, dyn")                  \
    DEF_FFF(fnmsub_##SUF, MV_IN, MV_OUT, "fnmsub." #SUF " ft3, ft0, ft1, ft2, dyn")                \
    DEF_FFF(fnmadd_##SUF, MV_IN, MV_OUT, "fnmadd." #SUF " ft3, ft0, ft1, ft2, dyn")                \
    DEF_FFF(min_##SUF, MV_IN, MV_OUT, "fmin." #SUF " ft3, ft0, ft1")                               \
    DEF_FFF(max_##SUF, MV_IN, MV_OUT, "fmax." #SUF " ft3, ft0, ft1")                               \
    DEF_FFX(eq_##SUF, MV_IN, "feq." #SUF " %[r], ft0, ft1")                                        \
    DEF_FFX(lt_##SUF, MV_IN, "flt." #SUF " %[r], ft0, ft1")                                        \
    DEF_FFX(le_##SUF, MV_IN, "fle." #SUF " %[r], ft0, ft1")                                        \
    DEF_FFX(class_##SUF, MV_IN, "fclass." #SUF " %[r], ft0")                                       \
    DEF_FFX(to_i32_##SUF, MV_IN, "fcvt.w." #SUF " %[r], ft0, dyn")                                 \
    DEF_FFX(to_u32_##SUF, MV_IN, "fcvt.wu." #SUF " %[r], ft0, dyn")                                \
    DEF_FFX(to_i64_##SUF, MV_IN, "fcvt.l." #SUF " %[r], ft0, dyn")                                 \
    DEF_FFX(to_u64_##SUF, MV_IN, "fcvt.lu." #SUF " %[r], ft0, dyn")                                \
    DEF_XF(from_i32_##SUF, MV_OUT, "fcvt." #SUF ".w ft3, %[a]" RM_##SUF)                           \
    DEF_XF(from_u32_##SUF, MV_OUT, "fcvt." #SUF ".wu ft3, %[a]" RM_##SUF)                          \
    DEF_XF(from_i64_##SUF, MV_OUT, "fcvt." #SUF ".l ft3, %[a], dyn")                               \
    DEF_XF(from_u64_##SUF, MV_OUT, "fcvt." #SUF ".lu ft3, %[a], dyn")

FOR_FMT(s, "fmv.w.x", "fmv.x.w")
FOR_FMT(d, "fmv.d.x", "fmv.x.d")
DEF_FFF(cvt_s, "fmv.w.x", "fmv.x.d", "fcvt.d.s ft3, ft0")
DEF_FFF(cvt_d, "fmv.d.x", "fmv.x.w", "fcvt.s.d ft3, ft0, dyn")

typedef uint64_t (*exec_fn)(uint64_t, uint64_t, uint64_t, uint64_t, unsigned *);

#define FN_ROW(SUF)                                                                                \
    {                                                                                              \
        add_##SUF, sub_##SUF, mul_##SUF, div_##SUF, sqrt_##SUF, fmadd_##SUF, fmsub_##SUF,          \
            fnmsub_##SUF, fnmadd_##SUF, min_##SUF, max_##SUF, eq_##SUF, lt_##SUF, le_##SUF,        \
            class_##SUF, to_i32_##SUF, to_u32_##SUF, to_i64_##SUF, to_u64_##SUF, from_i32_##SUF,   \
            from_u32_##SUF, from_i64_##SUF, from_u64_##SUF, cvt_##SUF,                             \
    }

static const exec_fn exec_table[2][OP_COUNT] = {FN_ROW(s), FN_ROW(d)};

/* The raw result as the unit test's call_pub() returns it. */
static uint64_t normalize(int op, int fmt, uint64_t r)
{
    int fp_result = op <= OP_MAX || (op >= OP_FROM_I32 && op <= OP_FROM_U64);
    if (op == OP_CVT)
        return fmt == D ? r & 0xffffffffull : r;
    if (fp_result && fmt == S)
        return r & 0xffffffffull;
    if (op == OP_TO_U32)
        return r & 0xffffffffull; /* fcvt.wu sign-extends its 32-bit result */
    return r;
}

static void emit(int op, int fmt, uint64_t a, uint64_t b, uint64_t c)
{
    int n = op_has_rm(op) ? 5 : 1;
    uint64_t r[5];
    unsigned fl[5];

    if (fmt == S && !(op >= OP_FROM_I32 && op <= OP_FROM_U64)) {
        a &= 0xffffffffull, b &= 0xffffffffull, c &= 0xffffffffull;
    }
    if (op < OP_FMADD || op > OP_FNMADD)
        c = 0;
    if (op == OP_SQRT || op == OP_CLASS || op >= OP_TO_I32)
        b = 0;
    for (int rm = 0; rm < n; rm++)
        r[rm] = normalize(op, fmt, exec_table[fmt][op](a, b, c, (uint64_t)rm, &fl[rm]));

    out_char('{');
    out_hex((uint64_t)op);
    out_char(',');
    out_hex((uint64_t)fmt);
    out_char(',');
    out_hex(a);
    out_char(',');
    out_hex(b);
    out_char(',');
    out_hex(c);
    out_str(",{");
    for (int i = 0; i < n; i++) {
        out_hex(r[i]);
        out_char(i + 1 < n ? ',' : '}');
    }
    out_str(",{");
    for (int i = 0; i < n; i++) {
        out_hex(fl[i]);
        out_char(i + 1 < n ? ',' : '}');
    }
    out_str("},\n");
}

static const uint64_t specials_d[] = {
    DP0,
    DN0,
    DMINS,
    DMAXS | DN0,
    DMINN,
    DMINN | DN0,
    DONE,
    DMONE,
    0x3ff0000000000001ull,
    0x3ff8000000000000ull,
    0xc000000000000000ull,
    0x4008000000000000ull,
    0x3fefffffffffffffull,
    DMAX,
    DNMAX,
    DINF,
    DNINF,
    DQNAN,
    DSNAN,
    DQNAN2,
};
static const uint64_t specials_s[] = {
    SP0,   SN0,         SMINS,       SMAXS | SN0, SMINN,       SMINN | SN0, SONE,
    SMONE, 0x3f800001u, 0x3fc00000u, 0xc0000000u, 0x40400000u, 0x3f7fffffu, SMAX,
    SNMAX, SINF,        SNINF,       SQNAN,       SSNAN,       SQNAN2,
};
#define NSPECIAL (sizeof(specials_d) / sizeof(specials_d[0]))
_Static_assert(sizeof(specials_s) / sizeof(specials_s[0]) == NSPECIAL, "special lists");

static const uint64_t special_ints[] = {
    0,
    1,
    ~0ull,
    0x7fffffffull,
    0x80000000ull,
    0xffffffffull,
    0x01000001ull,
    0x7fffffffffffffffull,
    0x8000000000000000ull,
    0x8000000000000001ull,
    0x0020000000000001ull,
    0xfffffffffffff801ull,
    0x0000000100000001ull,
    0x8000008000000000ull,
};

/* Random cases per operation and format: biased, and aimed at halfway cases. */
#define N_RANDOM 100
#define N_TIES   60

int main(void)
{
    for (unsigned i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        const struct edge *e = &edges[i], *prev = &edges[i ? i - 1 : 0];
        if (i && e->op == prev->op && e->fmt == prev->fmt && e->a == prev->a && e->b == prev->b &&
            e->c == prev->c)
            continue; /* the same operands in another rounding mode */
        emit(e->op, e->fmt, e->a, e->b, e->c);
    }

    for (int fmt = S; fmt <= D; fmt++) {
        const uint64_t *sp = fmt == D ? specials_d : specials_s;
        for (int op = 0; op < OP_COUNT; op++) {
            if (op >= OP_FROM_I32 && op <= OP_FROM_U64) {
                for (unsigned i = 0; i < sizeof(special_ints) / sizeof(special_ints[0]); i++)
                    emit(op, fmt, special_ints[i], 0, 0);
            } else if (op == OP_SQRT || op == OP_CLASS || op >= OP_TO_I32) {
                for (unsigned i = 0; i < NSPECIAL; i++)
                    emit(op, fmt, sp[i], 0, 0);
            } else if (op == OP_FMADD) { /* a small cube of specials */
                static const unsigned pick[] = {0, 1, 2, 6, 7, 13, 15, 17, 18};
                enum { NP = sizeof(pick) / sizeof(pick[0]) };
                for (unsigned i = 0; i < NP * NP * NP; i++)
                    emit(op, fmt, sp[pick[i % NP]], sp[pick[i / NP % NP]], sp[pick[i / NP / NP]]);
            } else if (op < OP_FMADD || (op >= OP_MIN && op <= OP_LE)) {
                for (unsigned i = 0; i < NSPECIAL * NSPECIAL; i++)
                    emit(op, fmt, sp[i % NSPECIAL], sp[i / NSPECIAL], 0);
            }
        }
    }

    for (int fmt = S; fmt <= D; fmt++) {
        for (int op = 0; op < OP_COUNT; op++) {
            uint64_t s = 0x7f4a7c15ull * (uint64_t)(op + 1) + (uint64_t)fmt;
            if (!op_has_rm(op) || op == OP_DIV || op == OP_SQRT || (fmt == S && op == OP_CVT))
                continue; /* no halfway cases there */
            for (int i = 0; i < N_TIES; i++) {
                uint64_t a, b, c;
                gen_tie_operands(&s, op, fmt, &a, &b, &c);
                emit(op, fmt, a, b, c);
            }
        }
    }

    for (int fmt = S; fmt <= D; fmt++) {
        for (int op = 0; op < OP_COUNT; op++) {
            uint64_t s = 0x9e3779b9ull * (uint64_t)(op + 1) + (uint64_t)fmt;
            for (int i = 0; i < N_RANDOM; i++) {
                uint64_t a, b, c;
                gen_operands(&s, op, fmt, &a, &b, &c);
                emit(op, fmt, a, b, c);
            }
        }
    }
    return 0;
}
