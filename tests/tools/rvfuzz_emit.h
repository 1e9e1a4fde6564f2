/*
 * rvfuzz's code buffer and instruction encoders (included by rvfuzz.c after
 * its layout constants): the random source, the generator state with its
 * optional assembly listing, R/I/S/B/U/J and compressed encoders, and the
 * emit helpers (li, la, labels).  Kept apart from the generator so the
 * encoders, checked against GNU as with `rvfuzz gen -a`, read on their own.
 */
#ifndef GODWIT_TESTS_TOOLS_RVFUZZ_EMIT_H
#define GODWIT_TESTS_TOOLS_RVFUZZ_EMIT_H

/* Register numbers. */
enum { ZERO = 0, RA = 1, SP = 2, GP = 3, TP = 4, T0 = 5, T1 = 6, T2 = 7, S0 = 8 };

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned rndn(struct rng *r, unsigned n)
{
    return (unsigned)(rnd(r) % n);
}

static int64_t rnd_range(struct rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd(r) % (uint64_t)(hi - lo + 1));
}

struct gen {
    struct rng rng;
    uint8_t *code;
    size_t len;
    FILE *as; /* assembly listing, or NULL */
    unsigned label;
    unsigned random_pct; /* share of raw random encodings (decoder stress) */
    unsigned mode;       /* privilege the random code runs in: 3 = M, 1 = S, 0 = U */
    unsigned levels;     /* paging for S/U: 3 = Sv39, 4 = Sv48 */
    size_t mret_fix;     /* auipc+addi loading mepc, patched to the mret's successor */
    bool in_rvc;
    bool fail;
};

static const char *const xname[32] = {"zero", "ra", "sp",  "gp",  "tp", "t0", "t1", "t2",
                                      "s0",   "s1", "a0",  "a1",  "a2", "a3", "a4", "a5",
                                      "a6",   "a7", "s2",  "s3",  "s4", "s5", "s6", "s7",
                                      "s8",   "s9", "s10", "s11", "t3", "t4", "t5", "t6"};
static const char *const fname[32] = {"ft0", "ft1", "ft2",  "ft3",  "ft4", "ft5", "ft6",  "ft7",
                                      "fs0", "fs1", "fa0",  "fa1",  "fa2", "fa3", "fa4",  "fa5",
                                      "fa6", "fa7", "fs2",  "fs3",  "fs4", "fs5", "fs6",  "fs7",
                                      "fs8", "fs9", "fs10", "fs11", "ft8", "ft9", "ft10", "ft11"};
static const char *const rmname[8] = {"rne", "rtz", "rdn", "rup", "rmm", "", "", "dyn"};

static void asm_line(struct gen *g, bool rvc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void asm_line(struct gen *g, bool rvc, const char *fmt, ...)
{
    if (!g->as)
        return;
    if (rvc != g->in_rvc) {
        fprintf(g->as, ".option %s\n", rvc ? "rvc" : "norvc");
        g->in_rvc = rvc;
    }
    va_list ap;
    va_start(ap, fmt);
    fputc('\t', g->as);
    vfprintf(g->as, fmt, ap);
    fputc('\n', g->as);
    va_end(ap);
}

static void put32(struct gen *g, uint32_t v)
{
    if (g->len + 4 > CODE_MAX) {
        g->fail = true;
        return;
    }
    for (int i = 0; i < 4; i++)
        g->code[g->len++] = (uint8_t)(v >> (8 * i));
}

static void put16(struct gen *g, uint16_t v)
{
    if (g->len + 2 > CODE_MAX) {
        g->fail = true;
        return;
    }
    g->code[g->len++] = (uint8_t)v;
    g->code[g->len++] = (uint8_t)(v >> 8);
}

/* ---- 32-bit encoders ------------------------------------------------------ */

static uint32_t enc_r(uint32_t f7, unsigned rs2, unsigned rs1, uint32_t f3, unsigned rd,
                      uint32_t op)
{
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}

static uint32_t enc_i(int32_t imm, unsigned rs1, uint32_t f3, unsigned rd, uint32_t op)
{
    return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}

static uint32_t enc_s(int32_t imm, unsigned rs2, unsigned rs1, uint32_t f3, uint32_t op)
{
    uint32_t u = (uint32_t)imm;
    return ((u >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 0x1f) << 7 | op;
}

static uint32_t enc_b(int32_t off, unsigned rs2, unsigned rs1, uint32_t f3)
{
    uint32_t u = (uint32_t)off;
    return ((u >> 12) & 1) << 31 | ((u >> 5) & 0x3f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
           ((u >> 1) & 0xf) << 8 | ((u >> 11) & 1) << 7 | 0x63;
}

static uint32_t enc_u(uint32_t imm20, unsigned rd, uint32_t op)
{
    return (imm20 & 0xfffff) << 12 | rd << 7 | op;
}

static uint32_t enc_j(int32_t off, unsigned rd)
{
    uint32_t u = (uint32_t)off;
    return ((u >> 20) & 1) << 31 | ((u >> 1) & 0x3ff) << 21 | ((u >> 11) & 1) << 20 |
           ((u >> 12) & 0xff) << 12 | rd << 7 | 0x6f;
}

/* ---- 16-bit encoders ------------------------------------------------------ */

static uint16_t enc_ci(uint32_t f3, int32_t imm6, unsigned rd, uint32_t op)
{
    uint32_t u = (uint32_t)imm6;
    return (uint16_t)(f3 << 13 | ((u >> 5) & 1) << 12 | rd << 7 | (u & 0x1f) << 2 | op);
}

static uint16_t enc_cb_branch(uint32_t f3, unsigned rs1p, int32_t off)
{
    uint32_t u = (uint32_t)off;
    return (uint16_t)(f3 << 13 | ((u >> 8) & 1) << 12 | ((u >> 3) & 3) << 10 | rs1p << 7 |
                      ((u >> 6) & 3) << 5 | ((u >> 1) & 3) << 3 | ((u >> 5) & 1) << 2 | 1);
}

static uint16_t enc_cj(int32_t off)
{
    uint32_t u = (uint32_t)off;
    return (uint16_t)(0x5 << 13 | ((u >> 11) & 1) << 12 | ((u >> 4) & 1) << 11 |
                      ((u >> 8) & 3) << 9 | ((u >> 10) & 1) << 8 | ((u >> 6) & 1) << 7 |
                      ((u >> 7) & 1) << 6 | ((u >> 1) & 7) << 3 | ((u >> 5) & 1) << 2 | 1);
}

/* ---- emit helpers with listing ------------------------------------------- */

static void e32(struct gen *g, uint32_t insn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void e32(struct gen *g, uint32_t insn, const char *fmt, ...)
{
    put32(g, insn);
    if (g->as) {
        char buf[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        asm_line(g, false, "%s", buf);
    }
}

static void e16(struct gen *g, uint16_t insn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void e16(struct gen *g, uint16_t insn, const char *fmt, ...)
{
    put16(g, insn);
    if (g->as) {
        char buf[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        asm_line(g, true, "%s", buf);
    }
}

static void emit_label(struct gen *g, unsigned id)
{
    if (g->as)
        fprintf(g->as, ".L%u:\n", id);
}

/* Sign-extend the low 12 bits. */
static int32_t sext12(int64_t v)
{
    return (int32_t)(((uint64_t)v & 0xfff) ^ 0x800) - 0x800;
}

/* li rd, v for any 64-bit v (lui/addi(w)/slli sequence, all 32-bit insns). */
static void emit_li(struct gen *g, unsigned rd, uint64_t v)
{
    int64_t sv = (int64_t)v;
    if (sv >= -2048 && sv < 2048) {
        e32(g, enc_i((int32_t)sv, ZERO, 0, rd, 0x13), "addi %s, zero, %d", xname[rd], (int)sv);
        return;
    }
    if (sv >= INT32_MIN && sv <= INT32_MAX) {
        int32_t lo = sext12(sv);
        uint32_t hi = (uint32_t)((sv - lo) >> 12) & 0xfffff;
        e32(g, enc_u(hi, rd, 0x37), "lui %s, 0x%x", xname[rd], hi);
        if (lo)
            e32(g, enc_i(lo, rd, 0, rd, 0x1b), "addiw %s, %s, %d", xname[rd], xname[rd], lo);
        return;
    }
    /* Build the upper part, shift it into place, add the low 12 bits. */
    int32_t lo = sext12(sv);
    int64_t hi = (sv - lo) >> 12;
    int shift = 12;
    while (!(hi & 1) && hi) {
        hi >>= 1;
        shift++;
    }
    emit_li(g, rd, (uint64_t)hi);
    e32(g, enc_i(shift, rd, 1, rd, 0x13), "slli %s, %s, %d", xname[rd], xname[rd], shift);
    if (lo)
        e32(g, enc_i(lo, rd, 0, rd, 0x13), "addi %s, %s, %d", xname[rd], xname[rd], lo);
}

/* rd = address (absolute) via auipc/addi, pc-relative to the current position. */
static void emit_la(struct gen *g, unsigned rd, uint64_t addr)
{
    int64_t off = (int64_t)addr - (int64_t)(CODE_BASE + g->len);
    int32_t lo = sext12(off);
    uint32_t hi = (uint32_t)((off - lo) >> 12) & 0xfffff;
    e32(g, enc_u(hi, rd, 0x17), "auipc %s, 0x%x", xname[rd], hi);
    e32(g, enc_i(lo, rd, 0, rd, 0x13), "addi %s, %s, %d", xname[rd], xname[rd], lo);
}

#endif
