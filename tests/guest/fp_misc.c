/*
 * F/D everything but arithmetic and conversions: sign injection, fmin/fmax
 * (signalling NaNs, +-0), feq/flt/fle flags, fclass, fmv in both
 * directions, NaN boxing (unboxed singles read as the canonical NaN), FP
 * loads/stores, fcsr/frm/fflags CSR access (incl. immediates and reserved
 * bits), illegal rounding modes (static and dynamic), and mstatus.FS
 * (Off traps, writes make it Dirty and set SD).
 */
#include "rt.h"

static const uint64_t svals[] = {
    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x00000001, 0x807fffff,
    0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0xff812345,
};
static const uint64_t dvals[] = {
    0x0000000000000000, 0x8000000000000000, 0x3ff0000000000000, 0xbff0000000000000,
    0x0000000000000001, 0x800fffffffffffff, 0x7ff0000000000000, 0xfff0000000000000,
    0x7ff8000000000000, 0xfff8000000000001, 0x7ff0000000000001, 0xfff0000000012345,
};
#define NS (sizeof(svals) / sizeof(svals[0]))
#define ND (sizeof(dvals) / sizeof(dvals[0]))

typedef uint64_t (*bin_fn)(uint64_t, uint64_t, uint64_t *);

/* Binary op with an FP result: operands moved in with mvin, result as raw bits. */
#define FBIN(name, insn, mvin)                                                                     \
    static uint64_t name(uint64_t a, uint64_t b, uint64_t *flags)                                  \
    {                                                                                              \
        uint64_t r, f;                                                                             \
        __asm__ volatile(mvin " ft0, %2\n\t" mvin " ft1, %3\n\t"                                   \
                              "csrw fflags, x0\n\t" insn " ft2, ft0, ft1\n\t"                      \
                              "fmv.x.d %0, ft2\n\t"                                                \
                              "csrrw %1, fflags, x0"                                               \
                         : "=r"(r), "=r"(f)                                                        \
                         : "r"(a), "r"(b)                                                          \
                         : "ft0", "ft1", "ft2");                                                   \
        *flags = f;                                                                                \
        return r;                                                                                  \
    }
/* Binary op with an integer result (comparisons). */
#define FCMP(name, insn, mvin)                                                                     \
    static uint64_t name(uint64_t a, uint64_t b, uint64_t *flags)                                  \
    {                                                                                              \
        uint64_t r, f;                                                                             \
        __asm__ volatile(mvin " ft0, %2\n\t" mvin " ft1, %3\n\t"                                   \
                              "csrw fflags, x0\n\t" insn " %0, ft0, ft1\n\t"                       \
                              "csrrw %1, fflags, x0"                                               \
                         : "=r"(r), "=r"(f)                                                        \
                         : "r"(a), "r"(b)                                                          \
                         : "ft0", "ft1");                                                          \
        *flags = f;                                                                                \
        return r;                                                                                  \
    }
FBIN(fsgnj_s, "fsgnj.s", "fmv.w.x")
FBIN(fsgnjn_s, "fsgnjn.s", "fmv.w.x")
FBIN(fsgnjx_s, "fsgnjx.s", "fmv.w.x")
FBIN(fmin_s, "fmin.s", "fmv.w.x")
FBIN(fmax_s, "fmax.s", "fmv.w.x")
FCMP(feq_s, "feq.s", "fmv.w.x")
FCMP(flt_s, "flt.s", "fmv.w.x")
FCMP(fle_s, "fle.s", "fmv.w.x")
FBIN(fsgnj_d, "fsgnj.d", "fmv.d.x")
FBIN(fsgnjn_d, "fsgnjn.d", "fmv.d.x")
FBIN(fsgnjx_d, "fsgnjx.d", "fmv.d.x")
FBIN(fmin_d, "fmin.d", "fmv.d.x")
FBIN(fmax_d, "fmax.d", "fmv.d.x")
FCMP(feq_d, "feq.d", "fmv.d.x")
FCMP(flt_d, "flt.d", "fmv.d.x")
FCMP(fle_d, "fle.d", "fmv.d.x")
/* Raw-register variants: operands loaded with fmv.d.x, so a single op sees
 * whatever 64-bit pattern (boxed or not) we give it. */
FBIN(fsgnj_s_raw, "fsgnj.s", "fmv.d.x")
FBIN(fsgnjn_s_raw, "fsgnjn.s", "fmv.d.x")
FBIN(fmin_s_raw, "fmin.s", "fmv.d.x")
FBIN(fadd_s_raw, "fadd.s", "fmv.d.x")
FCMP(feq_s_raw, "feq.s", "fmv.d.x")

struct bin_op {
    const char *name;
    bin_fn fn;
    int dbl;
};
static const struct bin_op bin_ops[] = {
    {"fsgnj.s", fsgnj_s, 0},   {"fsgnjn.s", fsgnjn_s, 0}, {"fsgnjx.s", fsgnjx_s, 0},
    {"fmin.s", fmin_s, 0},     {"fmax.s", fmax_s, 0},     {"feq.s", feq_s, 0},
    {"flt.s", flt_s, 0},       {"fle.s", fle_s, 0},       {"fsgnj.d", fsgnj_d, 1},
    {"fsgnjn.d", fsgnjn_d, 1}, {"fsgnjx.d", fsgnjx_d, 1}, {"fmin.d", fmin_d, 1},
    {"fmax.d", fmax_d, 1},     {"feq.d", feq_d, 1},       {"flt.d", flt_d, 1},
    {"fle.d", fle_d, 1},
};

static void test_binary(void)
{
    rt_printf("single values:");
    for (unsigned i = 0; i < NS; i++)
        rt_printf(" %lx", svals[i]);
    rt_printf("\ndouble values:");
    for (unsigned i = 0; i < ND; i++)
        rt_printf(" %lx", dvals[i]);
    rt_printf("\nop a: result/fflags for each b\n");
    for (unsigned o = 0; o < sizeof(bin_ops) / sizeof(bin_ops[0]); o++) {
        const uint64_t *v = bin_ops[o].dbl ? dvals : svals;
        unsigned n = bin_ops[o].dbl ? ND : NS;
        for (unsigned i = 0; i < n; i++) {
            rt_printf("%s %lx:", bin_ops[o].name, v[i]);
            for (unsigned j = 0; j < n; j++) {
                uint64_t fl, r = bin_ops[o].fn(v[i], v[j], &fl);
                rt_printf(" %lx/%lx", r, fl);
            }
            rt_printf("\n");
        }
    }
    uint64_t fl;
    /* Known answers: fmin(-0,+0) = -0, fmax with one sNaN returns the other
     * operand and raises NV, feq on qNaN is quiet, flt on qNaN is not. */
    RT_CHECK(fmin_d(0, 0x8000000000000000, &fl) == 0x8000000000000000 && fl == 0);
    RT_CHECK(fmax_d(0x7ff0000000000001, 0x3ff0000000000000, &fl) == 0x3ff0000000000000 &&
             fl == 0x10);
    RT_CHECK(fmax_s(0x7fc00000, 0x7f800001, &fl) == 0xffffffff7fc00000 && fl == 0x10);
    RT_CHECK(feq_s(0x7fc00000, 0x7fc00000, &fl) == 0 && fl == 0);
    RT_CHECK(flt_s(0x7fc00000, 0x3f800000, &fl) == 0 && fl == 0x10);
}

#define FCLASS(name, insn, mvin)                                                                   \
    static uint64_t name(uint64_t a)                                                               \
    {                                                                                              \
        uint64_t r;                                                                                \
        __asm__ volatile(mvin " ft0, %1\n\t" insn " %0, ft0" : "=r"(r) : "r"(a) : "ft0");          \
        return r;                                                                                  \
    }
FCLASS(fclass_s, "fclass.s", "fmv.w.x")
FCLASS(fclass_d, "fclass.d", "fmv.d.x")
FCLASS(fclass_s_raw, "fclass.s", "fmv.d.x")

static void test_fclass(void)
{
    static const uint64_t s[] = {0xff800000, 0xbf800000, 0x807fffff, 0x80000000,
                                 0x00000000, 0x00000001, 0x3f800000, 0x7f800000,
                                 0x7f800001, 0x7fc00000, 0xffffffff};
    static const uint64_t d[] = {0xfff0000000000000, 0xbff0000000000000, 0x800fffffffffffff,
                                 0x8000000000000000, 0x0000000000000000, 0x0000000000000001,
                                 0x3ff0000000000000, 0x7ff0000000000000, 0x7ff0000000000001,
                                 0x7ff8000000000000, 0xffffffffffffffff};
    rt_printf("fclass.s:");
    for (unsigned i = 0; i < sizeof(s) / sizeof(s[0]); i++)
        rt_printf(" %lx", fclass_s(s[i]));
    rt_printf("\nfclass.d:");
    for (unsigned i = 0; i < sizeof(d) / sizeof(d[0]); i++)
        rt_printf(" %lx", fclass_d(d[i]));
    rt_printf("\n");
    RT_CHECK(fclass_s(0xff800000) == 1 && fclass_s(0x7fc00000) == 0x200);
    RT_CHECK(fclass_d(0x7ff0000000000001) == 0x100 && fclass_d(0x1) == 0x20);
}

static void test_fmv_boxing(void)
{
    uint64_t r1, r2, r3, r4;
    /* fmv.x.w sign-extends bit 31; fmv.w.x boxes. */
    __asm__ volatile("fmv.w.x ft0, %4\n\t"
                     "fmv.x.w %0, ft0\n\t"
                     "fmv.x.d %1, ft0\n\t"
                     "fmv.w.x ft0, %5\n\t"
                     "fmv.x.w %2, ft0\n\t"
                     "fmv.d.x ft1, %6\n\t"
                     "fmv.x.d %3, ft1"
                     : "=&r"(r1), "=&r"(r2), "=&r"(r3), "=&r"(r4)
                     : "r"(0x12345678bf800000UL), "r"(0x7f000001UL), "r"(0x0123456789abcdefUL)
                     : "ft0", "ft1");
    rt_printf("fmv: x.w %lx boxed %lx x.w+ %lx d %lx\n", r1, r2, r3, r4);
    RT_CHECK(r1 == 0xffffffffbf800000 && r2 == 0xffffffffbf800000);

    /* Unboxed inputs to single ops read as the canonical NaN. */
    static const uint64_t raw[] = {0x000000003f800000, 0xfffffffe3f800000, 0x7fffffff3f800000,
                                   0xffffffff3f800000};
    for (unsigned i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        uint64_t fl1, fl2, fl3, fl4, fl5;
        uint64_t a = fadd_s_raw(raw[i], 0xffffffff3f800000, &fl1);
        uint64_t b = fsgnj_s_raw(raw[i], raw[i], &fl2);
        uint64_t c = fsgnjn_s_raw(raw[i], 0xffffffff3f800000, &fl3);
        uint64_t d = fmin_s_raw(raw[i], 0xffffffff40000000, &fl4);
        uint64_t e = feq_s_raw(raw[i], raw[i], &fl5);
        rt_printf("unboxed %lx: fadd %lx/%lx fsgnj %lx fsgnjn %lx fmin %lx/%lx feq %lx/%lx "
                  "fclass %lx\n",
                  raw[i], a, fl1, b, c, d, fl4, e, fl5, fclass_s_raw(raw[i]));
    }
    RT_CHECK(fclass_s_raw(0x3f800000) == 0x200);

    /* fmv.x.w and fsw take the low 32 bits even of an unboxed register. */
    uint32_t mem32 = 0;
    uint64_t lo;
    __asm__ volatile("fmv.d.x ft0, %2\n\t"
                     "fmv.x.w %0, ft0\n\t"
                     "fsw ft0, 0(%1)"
                     : "=&r"(lo)
                     : "r"(&mem32), "r"(0x1234567880000001UL)
                     : "ft0", "memory");
    rt_printf("unboxed fmv.x.w %lx fsw %x\n", lo, mem32);

    /* fcvt.d.s of an unboxed value: canonical NaN. */
    uint64_t cv, fl;
    __asm__ volatile("fmv.d.x ft0, %2\n\t"
                     "csrw fflags, x0\n\t"
                     "fcvt.d.s ft1, ft0\n\t"
                     "fmv.x.d %0, ft1\n\t"
                     "csrrw %1, fflags, x0"
                     : "=&r"(cv), "=&r"(fl)
                     : "r"(0x3f800000UL)
                     : "ft0", "ft1");
    rt_printf("unboxed fcvt.d.s %lx/%lx\n", cv, fl);
}

static void test_loadstore(void)
{
    static uint64_t mem[4] __attribute__((aligned(16)));
    mem[0] = 0x11223344c0490fdbUL;
    mem[1] = 0x400921fb54442d18UL;
    mem[2] = 0;
    mem[3] = 0;
    uint64_t a, b, c;
    __asm__ volatile("flw ft0, 0(%3)\n\t"
                     "flw ft1, 4(%3)\n\t"
                     "fld ft2, 8(%3)\n\t"
                     "fmv.x.d %0, ft0\n\t"
                     "fmv.x.d %1, ft1\n\t"
                     "fmv.x.d %2, ft2\n\t"
                     "fsw ft0, 16(%3)\n\t"
                     "fsw ft1, 20(%3)\n\t"
                     "fsd ft2, 24(%3)"
                     : "=&r"(a), "=&r"(b), "=&r"(c)
                     : "r"(mem)
                     : "ft0", "ft1", "ft2", "memory");
    rt_printf("flw %lx %lx fld %lx stored %lx %lx\n", a, b, c, mem[2], mem[3]);
    RT_CHECK(a == 0xffffffffc0490fdb && b == 0xffffffff11223344 && mem[2] == mem[0]);
    /* fld of a NaN pattern keeps the payload (no canonicalisation on load). */
    mem[0] = 0x7ff0000000000001UL;
    __asm__ volatile("fld ft0, 0(%1)\n\tfmv.x.d %0, ft0" : "=r"(a) : "r"(mem) : "ft0", "memory");
    rt_printf("fld sNaN %lx\n", a);
    RT_CHECK(a == 0x7ff0000000000001UL);
}

static void test_csrs(void)
{
    uint64_t a, b, c, d, e;
    __asm__ volatile("csrw fcsr, %5\n\t"
                     "csrr %0, fcsr\n\t"
                     "csrr %1, frm\n\t"
                     "csrr %2, fflags\n\t"
                     "csrw fcsr, %6\n\t"
                     "csrr %3, fcsr\n\t"
                     "csrrw %4, fcsr, x0"
                     : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d), "=&r"(e)
                     : "r"(0xffUL), "r"(0xffffffffffffff35UL));
    rt_printf("fcsr=ff: fcsr %lx frm %lx fflags %lx; fcsr=~0xca: %lx swap %lx\n", a, b, c, d, e);
    RT_CHECK(a == 0xff && b == 7 && c == 0x1f && d == 0x35);

    __asm__ volatile("csrwi frm, 3\n\t"
                     "csrwi fflags, 0x1f\n\t"
                     "csrr %0, fcsr\n\t"
                     "csrci fflags, 0x5\n\t"
                     "csrsi frm, 4\n\t"
                     "csrr %1, fcsr\n\t"
                     "frrm %2\n\t"
                     "fsrm %3, %5\n\t"
                     "fsflagsi %4, 2"
                     : "=&r"(a), "=&r"(b), "=&r"(c), "=&r"(d), "=&r"(e)
                     : "r"(1UL));
    rt_printf("csr imm: %lx %lx frrm %lx fsrm-old %lx fsflagsi-old %lx fcsr %lx\n", a, b, c, d, e,
              csr_read(fcsr));
    RT_CHECK(a == 0x7f && b == 0xfa && c == 7 && d == 7 && e == 0x1a && csr_read(fcsr) == 0x22);

    /* Flags accrue: a later exact op does not clear them. */
    csr_write(fcsr, 0);
    __asm__ volatile("fmv.w.x ft0, %2\n\t"
                     "fdiv.s ft1, ft0, ft0\n\t" /* 1/1: exact */
                     "fmv.w.x ft2, x0\n\t"
                     "fdiv.s ft1, ft0, ft2\n\t" /* 1/0: DZ */
                     "csrr %0, fflags\n\t"
                     "fadd.s ft1, ft0, ft0\n\t" /* exact */
                     "csrr %1, fflags"
                     : "=&r"(a), "=&r"(b)
                     : "r"(0x3f800000UL)
                     : "ft0", "ft1", "ft2");
    rt_printf("accrue: %lx %lx\n", a, b);
    RT_CHECK(a == 0x8 && b == 0x8);
    csr_write(fcsr, 0);
}

static void test_illegal_rm(void)
{
    /* Dynamic rounding with frm = 5, 6, 7 is illegal. */
    for (unsigned m = 5; m < 8; m++) {
        csr_write(frm, m);
        rt_trap_reset();
        __asm__ volatile("fadd.s ft0, ft1, ft2" ::: "ft0");
        csr_write(frm, 0);
        rt_printf("frm=%u dyn", m);
        rt_print_trap("");
    }
    /* Static rm = 5 and 6 (reserved) in the instruction: fadd.s ft0, ft1, ft2. */
    rt_trap_reset();
    __asm__ volatile(".insn r 0x53, 5, 0, ft0, ft1, ft2" ::: "ft0");
    rt_print_trap("fadd.s rm=5");
    rt_trap_reset();
    __asm__ volatile(".insn r 0x53, 6, 0, ft0, ft1, ft2" ::: "ft0");
    rt_print_trap("fadd.s rm=6");
    /* Static rm = 7 means dynamic: legal with frm valid. */
    rt_trap_reset();
    __asm__ volatile(".insn r 0x53, 7, 0, ft0, ft1, ft2" ::: "ft0");
    rt_print_trap("fadd.s rm=7 frm=0");
}

static void print_fs(const char *what)
{
    uint64_t s = csr_read(mstatus);
    rt_printf("%s: FS=%lu SD=%lu\n", what, (s >> 13) & 3, s >> 63);
}

static void test_fs(void)
{
    uint64_t r;
    csr_clear(mstatus, MSTATUS_FS);
    print_fs("FS off");
    rt_trap_reset();
    __asm__ volatile("fadd.d ft0, ft1, ft2" ::: "ft0");
    rt_print_trap("fadd.d with FS=Off");
    rt_trap_reset();
    __asm__ volatile("fmv.x.d %0, ft0" : "=r"(r));
    rt_print_trap("fmv.x.d with FS=Off");
    rt_trap_reset();
    __asm__ volatile("fld ft0, 0(sp)" ::: "ft0");
    rt_print_trap("fld with FS=Off");
    rt_trap_reset();
    __asm__ volatile("csrr %0, fcsr" : "=r"(r));
    rt_print_trap("csrr fcsr with FS=Off");
    rt_trap_reset();
    __asm__ volatile("csrr %0, fflags" : "=r"(r));
    rt_print_trap("csrr fflags with FS=Off");
    print_fs("still off");

    /* Initial -> Dirty on an FP register write. */
    csr_set(mstatus, 1UL << 13);
    print_fs("FS initial");
    __asm__ volatile("fmv.d.x ft0, x0" ::: "ft0");
    print_fs("after fmv.d.x");
    /* Clean (2) -> Dirty on an fcsr write. */
    csr_clear(mstatus, MSTATUS_FS);
    csr_set(mstatus, 2UL << 13);
    print_fs("FS clean");
    csr_write(fflags, 1);
    print_fs("after fflags write");
    csr_write(fflags, 0);
}

int main(void)
{
    test_binary();
    test_fclass();
    test_fmv_boxing();
    test_loadstore();
    test_csrs();
    test_illegal_rm();
    test_fs();
    return rt_check_failures();
}
