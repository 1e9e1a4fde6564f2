/*
 * rvfuzz's random instruction selection (included by rvfuzz.c after
 * rvfuzz_emit.h): register and immediate pickers, one generator per
 * instruction group (ALU, upper, memory, AMO, LR/SC, FP, RVC, raw random
 * encodings), straight-line runs and blocks with forward branches patched
 * at the end.  Kept apart from the fixed program parts (prologue, dump,
 * trap handler) and the ELF writer so each reads on its own.
 */
#ifndef GODWIT_TESTS_TOOLS_RVFUZZ_GEN_H
#define GODWIT_TESTS_TOOLS_RVFUZZ_GEN_H

/* ---- random instruction selection --------------------------------------- */

static bool reserved(unsigned r)
{
    return r == ZERO || r == SP || r == GP || r == TP || r == S0;
}

static unsigned rd_any(struct gen *g)
{
    unsigned r;
    do
        r = rndn(&g->rng, 32);
    while (reserved(r));
    return r;
}

static unsigned rs_any(struct gen *g)
{
    return rndn(&g->rng, 32); /* reading any register is fine */
}

/* Compressed register x8..x15 usable as a destination (not s0). */
static unsigned rdp(struct gen *g)
{
    return 9 + rndn(&g->rng, 7);
}

static unsigned frd(struct gen *g)
{
    return rndn(&g->rng, 32);
}

static unsigned rm_pick(struct gen *g)
{
    static const unsigned rms[] = {0, 1, 2, 3, 4, 7, 7};
    return rms[rndn(&g->rng, sizeof(rms) / sizeof(rms[0]))];
}

static void gen_alu_rr(struct gen *g)
{
    static const struct {
        const char *n;
        uint32_t f7, f3, op;
    } ops[] = {
        {"add", 0, 0, 0x33},   {"sub", 0x20, 0, 0x33}, {"sll", 0, 1, 0x33},
        {"slt", 0, 2, 0x33},   {"sltu", 0, 3, 0x33},   {"xor", 0, 4, 0x33},
        {"srl", 0, 5, 0x33},   {"sra", 0x20, 5, 0x33}, {"or", 0, 6, 0x33},
        {"and", 0, 7, 0x33},   {"addw", 0, 0, 0x3b},   {"subw", 0x20, 0, 0x3b},
        {"sllw", 0, 1, 0x3b},  {"srlw", 0, 5, 0x3b},   {"sraw", 0x20, 5, 0x3b},
        {"mul", 1, 0, 0x33},   {"mulh", 1, 1, 0x33},   {"mulhsu", 1, 2, 0x33},
        {"mulhu", 1, 3, 0x33}, {"div", 1, 4, 0x33},    {"divu", 1, 5, 0x33},
        {"rem", 1, 6, 0x33},   {"remu", 1, 7, 0x33},   {"mulw", 1, 0, 0x3b},
        {"divw", 1, 4, 0x3b},  {"divuw", 1, 5, 0x3b},  {"remw", 1, 6, 0x3b},
        {"remuw", 1, 7, 0x3b},
    };
    unsigned k = rndn(&g->rng, sizeof(ops) / sizeof(ops[0]));
    unsigned rd = rd_any(g), a = rs_any(g), b = rs_any(g);
    e32(g, enc_r(ops[k].f7, b, a, ops[k].f3, rd, ops[k].op), "%s %s, %s, %s", ops[k].n, xname[rd],
        xname[a], xname[b]);
}

static int32_t imm12(struct gen *g)
{
    static const int32_t special[] = {0, 1, -1, 2047, -2048, 0x7f, -0x80, 0x555};
    if (rndn(&g->rng, 4) == 0)
        return special[rndn(&g->rng, 8)];
    return (int32_t)rnd_range(&g->rng, -2048, 2047);
}

static void gen_alu_imm(struct gen *g)
{
    static const struct {
        const char *n;
        uint32_t f3, op;
        int shift; /* 0: imm12, 6: shamt6 (+f6), 5: shamt5 (+f7) */
        uint32_t hi;
    } ops[] = {
        {"addi", 0, 0x13, 0, 0},     {"slti", 2, 0x13, 0, 0},  {"sltiu", 3, 0x13, 0, 0},
        {"xori", 4, 0x13, 0, 0},     {"ori", 6, 0x13, 0, 0},   {"andi", 7, 0x13, 0, 0},
        {"addiw", 0, 0x1b, 0, 0},    {"slli", 1, 0x13, 6, 0},  {"srli", 5, 0x13, 6, 0},
        {"srai", 5, 0x13, 6, 0x10},  {"slliw", 1, 0x1b, 5, 0}, {"srliw", 5, 0x1b, 5, 0},
        {"sraiw", 5, 0x1b, 5, 0x20},
    };
    unsigned k = rndn(&g->rng, sizeof(ops) / sizeof(ops[0]));
    unsigned rd = rd_any(g), a = rs_any(g);
    if (ops[k].shift == 0) {
        int32_t imm = imm12(g);
        e32(g, enc_i(imm, a, ops[k].f3, rd, ops[k].op), "%s %s, %s, %d", ops[k].n, xname[rd],
            xname[a], imm);
    } else if (ops[k].shift == 6) {
        uint32_t sh = rndn(&g->rng, 64);
        uint32_t insn =
            (ops[k].hi << 26) | (sh << 20) | a << 15 | ops[k].f3 << 12 | rd << 7 | ops[k].op;
        e32(g, insn, "%s %s, %s, %u", ops[k].n, xname[rd], xname[a], sh);
    } else {
        uint32_t sh = rndn(&g->rng, 32);
        uint32_t insn =
            (ops[k].hi << 25) | (sh << 20) | a << 15 | ops[k].f3 << 12 | rd << 7 | ops[k].op;
        e32(g, insn, "%s %s, %s, %u", ops[k].n, xname[rd], xname[a], sh);
    }
}

static void gen_upper(struct gen *g)
{
    unsigned rd = rd_any(g);
    uint32_t imm = (uint32_t)rnd(&g->rng) & 0xfffff;
    if (rndn(&g->rng, 2))
        e32(g, enc_u(imm, rd, 0x37), "lui %s, 0x%x", xname[rd], imm);
    else
        e32(g, enc_u(imm, rd, 0x17), "auipc %s, 0x%x", xname[rd], imm);
}

/* tmp = gp + (src & mask): an aligned address in the upper scratch half. */
static unsigned addr_reg(struct gen *g, unsigned size)
{
    unsigned tmp = rd_any(g), src = rs_any(g);
    int32_t mask = 0x7f8 & ~(int32_t)(size - 1) & 0x7ff;
    if (size < 8)
        mask = 0x7ff & ~(int32_t)(size - 1);
    e32(g, enc_i(mask, src, 7, tmp, 0x13), "andi %s, %s, %d", xname[tmp], xname[src], mask);
    e32(g, enc_r(0, GP, tmp, 0, tmp, 0x33), "add %s, %s, gp", xname[tmp], xname[tmp]);
    return tmp;
}

static void gen_mem(struct gen *g)
{
    static const struct {
        const char *n;
        unsigned size;
        uint32_t f3;
        bool store, fp;
    } ops[] = {
        {"lb", 1, 0, false, false},  {"lh", 2, 1, false, false},  {"lw", 4, 2, false, false},
        {"ld", 8, 3, false, false},  {"lbu", 1, 4, false, false}, {"lhu", 2, 5, false, false},
        {"lwu", 4, 6, false, false}, {"sb", 1, 0, true, false},   {"sh", 2, 1, true, false},
        {"sw", 4, 2, true, false},   {"sd", 8, 3, true, false},   {"flw", 4, 2, false, true},
        {"fld", 8, 3, false, true},  {"fsw", 4, 2, true, true},   {"fsd", 8, 3, true, true},
    };
    unsigned k = rndn(&g->rng, sizeof(ops) / sizeof(ops[0]));
    unsigned size = ops[k].size, base;
    int32_t off;
    if (size > 1 && rndn(&g->rng, 8) == 0) {
        /* Misaligned, inside the scratch page: the virt platform (QEMU and
         * godwit) performs these rather than trapping. */
        base = GP;
        off = (int32_t)rnd_range(&g->rng, -2048, 2048 - (int)size);
        if (!(off & (int32_t)(size - 1)))
            off += 1;
    } else if (rndn(&g->rng, 2)) {
        base = addr_reg(g, size); /* [scratch+2048, scratch+4096-size] */
        off = (int32_t)rnd_range(&g->rng, -2048 / (int)size, 0) * (int32_t)size;
    } else {
        base = GP; /* gp = scratch + 2048 */
        off = (int32_t)rnd_range(&g->rng, -2048 / (int)size, (2048 - (int)size) / (int)size) *
              (int32_t)size;
    }
    uint32_t op = ops[k].store ? (ops[k].fp ? 0x27 : 0x23) : (ops[k].fp ? 0x07 : 0x03);
    if (ops[k].store) {
        unsigned v = ops[k].fp ? frd(g) : rs_any(g);
        e32(g, enc_s(off, v, base, ops[k].f3, op), "%s %s, %d(%s)", ops[k].n,
            ops[k].fp ? fname[v] : xname[v], off, xname[base]);
    } else {
        unsigned rd = ops[k].fp ? frd(g) : rd_any(g);
        e32(g, enc_i(off, base, ops[k].f3, rd, op), "%s %s, %d(%s)", ops[k].n,
            ops[k].fp ? fname[rd] : xname[rd], off, xname[base]);
    }
}

static void gen_amo(struct gen *g)
{
    static const struct {
        const char *n;
        uint32_t f5;
    } ops[] = {
        {"amoswap", 1}, {"amoadd", 0},  {"amoxor", 4},   {"amoand", 12},  {"amoor", 8},
        {"amomin", 16}, {"amomax", 20}, {"amominu", 24}, {"amomaxu", 28},
    };
    static const char *const ord[4] = {"", ".rl", ".aq", ".aqrl"};
    unsigned k = rndn(&g->rng, sizeof(ops) / sizeof(ops[0]));
    bool d = rndn(&g->rng, 2);
    unsigned aqrl = rndn(&g->rng, 4);
    unsigned addr = addr_reg(g, d ? 8 : 4);
    unsigned rd = rd_any(g), v = rs_any(g);
    uint32_t insn =
        ops[k].f5 << 27 | aqrl << 25 | v << 20 | addr << 15 | (d ? 3u : 2u) << 12 | rd << 7 | 0x2f;
    e32(g, insn, "%s.%c%s %s, %s, (%s)", ops[k].n, d ? 'd' : 'w', ord[aqrl], xname[rd], xname[v],
        xname[addr]);
}

static void gen_alu_simple(struct gen *g, unsigned avoid);

/* LR; 0-3 ALU ops not touching the address register; SC to the same address. */
static void gen_lrsc(struct gen *g)
{
    bool d = rndn(&g->rng, 2);
    unsigned addr = addr_reg(g, d ? 8 : 4);
    unsigned rd;
    do /* the address register must survive until the last SC */
        rd = rd_any(g);
    while (rd == addr);
    uint32_t f3 = d ? 3 : 2;
    e32(g, 2u << 27 | addr << 15 | f3 << 12 | rd << 7 | 0x2f, "lr.%c %s, (%s)", d ? 'd' : 'w',
        xname[rd], xname[addr]);
    for (unsigned i = rndn(&g->rng, 4); i; i--)
        gen_alu_simple(g, addr);
    unsigned rs = rs_any(g), rd2;
    do
        rd2 = rd_any(g);
    while (rd2 == addr);
    e32(g, 3u << 27 | rs << 20 | addr << 15 | f3 << 12 | rd2 << 7 | 0x2f, "sc.%c %s, %s, (%s)",
        d ? 'd' : 'w', xname[rd2], xname[rs], xname[addr]);
    /* A lone SC now has no reservation and must fail. */
    if (rndn(&g->rng, 4) == 0) {
        rd2 = rd_any(g);
        e32(g, 3u << 27 | rs << 20 | addr << 15 | f3 << 12 | rd2 << 7 | 0x2f, "sc.%c %s, %s, (%s)",
            d ? 'd' : 'w', xname[rd2], xname[rs], xname[addr]);
    }
}

/* One add/xor/addi-like op whose destination is not `avoid`. */
static void gen_alu_simple(struct gen *g, unsigned avoid)
{
    unsigned rd;
    do
        rd = rd_any(g);
    while (rd == avoid);
    unsigned a = rs_any(g), b = rs_any(g);
    if (rndn(&g->rng, 2))
        e32(g, enc_r(0, b, a, 4, rd, 0x33), "xor %s, %s, %s", xname[rd], xname[a], xname[b]);
    else
        e32(g, enc_r(0, b, a, 0, rd, 0x3b), "addw %s, %s, %s", xname[rd], xname[a], xname[b]);
}

static void gen_fp(struct gen *g)
{
    unsigned d = rndn(&g->rng, 2); /* fmt: 0 = S, 1 = D */
    char sfx = d ? 'd' : 's';
    unsigned rd = frd(g), a = frd(g), b = frd(g), c = frd(g), rm = rm_pick(g);
    unsigned xr = rd_any(g), xs = rs_any(g);
    switch (rndn(&g->rng, 14)) {
    case 0:
    case 1: {
        static const char *const n[4] = {"fadd", "fsub", "fmul", "fdiv"};
        unsigned k = rndn(&g->rng, 4);
        e32(g, enc_r(k << 2 | d, b, a, rm, rd, 0x53), "%s.%c %s, %s, %s, %s", n[k], sfx, fname[rd],
            fname[a], fname[b], rmname[rm]);
        break;
    }
    case 2:
        e32(g, enc_r(0x2c | d, 0, a, rm, rd, 0x53), "fsqrt.%c %s, %s, %s", sfx, fname[rd], fname[a],
            rmname[rm]);
        break;
    case 3:
    case 4: {
        static const char *const n[4] = {"fmadd", "fmsub", "fnmsub", "fnmadd"};
        unsigned k = rndn(&g->rng, 4);
        e32(g, c << 27 | d << 25 | b << 20 | a << 15 | rm << 12 | rd << 7 | (0x43 + 4 * k),
            "%s.%c %s, %s, %s, %s, %s", n[k], sfx, fname[rd], fname[a], fname[b], fname[c],
            rmname[rm]);
        break;
    }
    case 5: {
        static const char *const n[3] = {"fsgnj", "fsgnjn", "fsgnjx"};
        unsigned k = rndn(&g->rng, 3);
        e32(g, enc_r(0x10 | d, b, a, k, rd, 0x53), "%s.%c %s, %s, %s", n[k], sfx, fname[rd],
            fname[a], fname[b]);
        break;
    }
    case 6: {
        unsigned k = rndn(&g->rng, 2);
        e32(g, enc_r(0x14 | d, b, a, k, rd, 0x53), "%s.%c %s, %s, %s", k ? "fmax" : "fmin", sfx,
            fname[rd], fname[a], fname[b]);
        break;
    }
    case 7: {
        static const char *const n[3] = {"fle", "flt", "feq"};
        unsigned k = rndn(&g->rng, 3);
        e32(g, enc_r(0x50 | d, b, a, k, xr, 0x53), "%s.%c %s, %s, %s", n[k], sfx, xname[xr],
            fname[a], fname[b]);
        break;
    }
    case 8:
        e32(g, enc_r(0x70 | d, 0, a, 1, xr, 0x53), "fclass.%c %s, %s", sfx, xname[xr], fname[a]);
        break;
    case 9: { /* fp -> int */
        static const char *const n[4] = {"w", "wu", "l", "lu"};
        unsigned k = rndn(&g->rng, 4);
        e32(g, enc_r(0x60 | d, k, a, rm, xr, 0x53), "fcvt.%s.%c %s, %s, %s", n[k], sfx, xname[xr],
            fname[a], rmname[rm]);
        break;
    }
    case 10: { /* int -> fp; fcvt.d.w/wu are exact and take rm = 0 */
        static const char *const n[4] = {"w", "wu", "l", "lu"};
        unsigned k = rndn(&g->rng, 4);
        if (d && k < 2)
            e32(g, enc_r(0x68 | d, k, xs, 0, rd, 0x53), "fcvt.%c.%s %s, %s", sfx, n[k], fname[rd],
                xname[xs]);
        else
            e32(g, enc_r(0x68 | d, k, xs, rm, rd, 0x53), "fcvt.%c.%s %s, %s, %s", sfx, n[k],
                fname[rd], xname[xs], rmname[rm]);
        break;
    }
    case 11: /* fcvt.s.d / fcvt.d.s */
        if (d)
            e32(g, enc_r(0x21, 0, a, 0, rd, 0x53), "fcvt.d.s %s, %s", fname[rd], fname[a]);
        else
            e32(g, enc_r(0x20, 1, a, rm, rd, 0x53), "fcvt.s.d %s, %s, %s", fname[rd], fname[a],
                rmname[rm]);
        break;
    case 12: /* moves */
        if (rndn(&g->rng, 2))
            e32(g, enc_r(0x70 | d, 0, a, 0, xr, 0x53), "fmv.x.%c %s, %s", d ? 'd' : 'w', xname[xr],
                fname[a]);
        else
            e32(g, enc_r(0x78 | d, 0, xs, 0, rd, 0x53), "fmv.%c.x %s, %s", d ? 'd' : 'w', fname[rd],
                xname[xs]);
        break;
    default: /* fflags / frm CSR accesses (frm only ever gets 0..4) */
        switch (rndn(&g->rng, 4)) {
        case 0: e32(g, enc_i(1, ZERO, 2, xr, 0x73), "frflags %s", xname[xr]); break;
        case 1: e32(g, enc_i(1, xs, 1, xr, 0x73), "fsflags %s, %s", xname[xr], xname[xs]); break;
        case 2: e32(g, enc_i(2, ZERO, 2, xr, 0x73), "frrm %s", xname[xr]); break;
        default: {
            unsigned m = rndn(&g->rng, 5);
            e32(g, enc_i(2, m, 5, xr, 0x73), "fsrmi %s, %u", xname[xr], m);
            break;
        }
        }
        break;
    }
}

static void gen_rvc(struct gen *g)
{
    unsigned rd = rd_any(g), rs = rd_any(g), p = rdp(g), q = 8 + rndn(&g->rng, 8);
    int32_t imm = (int32_t)rnd_range(&g->rng, -32, 31);
    if (!imm)
        imm = 1;
    switch (rndn(&g->rng, 16)) {
    case 0: e16(g, enc_ci(0, imm, rd, 1), "c.addi %s, %d", xname[rd], imm); break;
    case 1: e16(g, enc_ci(1, imm, rd, 1), "c.addiw %s, %d", xname[rd], imm); break;
    case 2: e16(g, enc_ci(2, imm, rd, 1), "c.li %s, %d", xname[rd], imm); break;
    case 3: /* c.lui: rd != 0, 2; nzimm[17:12] */
        e16(g, enc_ci(3, imm, rd, 1), "c.lui %s, 0x%x", xname[rd],
            (unsigned)((uint32_t)imm & 0xfffff));
        break;
    case 4: {
        unsigned sh = 1 + rndn(&g->rng, 63);
        unsigned k = rndn(&g->rng, 2);
        e16(g, (uint16_t)(4u << 13 | (sh >> 5) << 12 | k << 10 | (p - 8) << 7 | (sh & 31) << 2 | 1),
            "%s %s, %u", k ? "c.srai" : "c.srli", xname[p], sh);
        break;
    }
    case 5:
        e16(g,
            (uint16_t)(4u << 13 | (((uint32_t)imm >> 5) & 1) << 12 | 2u << 10 | (p - 8) << 7 |
                       ((uint32_t)imm & 31) << 2 | 1),
            "c.andi %s, %d", xname[p], imm);
        break;
    case 6: {
        static const char *const n[6] = {"c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw"};
        unsigned k = rndn(&g->rng, 6);
        e16(g,
            (uint16_t)(4u << 13 | (k >= 4) << 12 | 3u << 10 | (p - 8) << 7 | (k & 3) << 5 |
                       (q - 8) << 2 | 1),
            "%s %s, %s", n[k], xname[p], xname[q]);
        break;
    }
    case 7: {
        unsigned sh = 1 + rndn(&g->rng, 63);
        e16(g, enc_ci(0, (int32_t)sh, rd, 2), "c.slli %s, %u", xname[rd], sh);
        break;
    }
    case 8:
        e16(g, (uint16_t)(0x8u << 12 | rd << 7 | rs << 2 | 2), "c.mv %s, %s", xname[rd], xname[rs]);
        break;
    case 9:
        e16(g, (uint16_t)(0x9u << 12 | rd << 7 | rs << 2 | 2), "c.add %s, %s", xname[rd],
            xname[rs]);
        break;
    case 10: { /* sp-relative loads: c.lwsp / c.ldsp / c.fldsp */
        unsigned k = rndn(&g->rng, 3);
        if (k == 0) {
            uint32_t off = rndn(&g->rng, 64) * 4;
            e16(g,
                (uint16_t)(2u << 13 | ((off >> 5) & 1) << 12 | rd << 7 | ((off >> 2) & 7) << 4 |
                           ((off >> 6) & 3) << 2 | 2),
                "c.lwsp %s, %u(sp)", xname[rd], off);
        } else {
            uint32_t off = rndn(&g->rng, 64) * 8;
            unsigned r = k == 1 ? rd : frd(g);
            e16(g,
                (uint16_t)((k == 1 ? 3u : 1u) << 13 | ((off >> 5) & 1) << 12 | r << 7 |
                           ((off >> 3) & 3) << 5 | ((off >> 6) & 7) << 2 | 2),
                "%s %s, %u(sp)", k == 1 ? "c.ldsp" : "c.fldsp", k == 1 ? xname[r] : fname[r], off);
        }
        break;
    }
    case 11: { /* sp-relative stores */
        unsigned k = rndn(&g->rng, 3), v = rs_any(g);
        if (k == 0) {
            uint32_t off = rndn(&g->rng, 64) * 4;
            e16(g,
                (uint16_t)(6u << 13 | ((off >> 2) & 0xf) << 9 | ((off >> 6) & 3) << 7 | v << 2 | 2),
                "c.swsp %s, %u(sp)", xname[v], off);
        } else {
            uint32_t off = rndn(&g->rng, 64) * 8;
            unsigned r = k == 1 ? v : frd(g);
            e16(g,
                (uint16_t)((k == 1 ? 7u : 5u) << 13 | ((off >> 3) & 7) << 10 |
                           ((off >> 6) & 7) << 7 | r << 2 | 2),
                "%s %s, %u(sp)", k == 1 ? "c.sdsp" : "c.fsdsp", k == 1 ? xname[r] : fname[r], off);
        }
        break;
    }
    case 12:
    case 13: { /* s0-relative: c.lw c.ld c.fld c.sw c.sd c.fsd */
        static const struct {
            const char *n;
            uint32_t f3;
            unsigned size;
            bool fp;
        } ops[] = {{"c.lw", 2, 4, false}, {"c.ld", 3, 8, false}, {"c.fld", 1, 8, true},
                   {"c.sw", 6, 4, false}, {"c.sd", 7, 8, false}, {"c.fsd", 5, 8, true}};
        unsigned k = rndn(&g->rng, 6);
        unsigned r = ops[k].fp ? 8 + rndn(&g->rng, 8) : (ops[k].f3 >= 6 ? q : p);
        uint32_t off;
        uint16_t insn;
        if (ops[k].size == 4) {
            off = rndn(&g->rng, 32) * 4;
            insn = (uint16_t)(ops[k].f3 << 13 | ((off >> 3) & 7) << 10 | 0u << 7 |
                              ((off >> 2) & 1) << 6 | ((off >> 6) & 1) << 5 | (r - 8) << 2);
        } else {
            off = rndn(&g->rng, 32) * 8;
            insn = (uint16_t)(ops[k].f3 << 13 | ((off >> 3) & 7) << 10 | 0u << 7 |
                              ((off >> 6) & 3) << 5 | (r - 8) << 2);
        }
        e16(g, insn, "%s %s, %u(s0)", ops[k].n, ops[k].fp ? fname[r] : xname[r], off);
        break;
    }
    case 14: { /* c.addi4spn rd', sp, nzuimm */
        uint32_t u = (1 + rndn(&g->rng, 255)) * 4;
        e16(g,
            (uint16_t)(((u >> 4) & 3) << 11 | ((u >> 6) & 0xf) << 7 | ((u >> 2) & 1) << 6 |
                       ((u >> 3) & 1) << 5 | (p - 8) << 2),
            "c.addi4spn %s, sp, %u", xname[p], u);
        break;
    }
    default: e16(g, 0x0001, "c.nop"); break;
    }
}

/*
 * A random encoding, filtered so that whatever it decodes to cannot touch
 * memory outside the scratch area, transfer control, access CSRs or write a
 * reserved register: ALU/FP/fence opcodes with random fields (reserved
 * combinations must raise illegal instruction, trapping to the counting
 * handler), custom/reserved opcodes, and the safe compressed forms.
 */
static bool reserved_rd(unsigned rd)
{
    return rd == SP || rd == GP || rd == TP || rd == S0;
}

static void gen_random_encoding(struct gen *g)
{
    for (;;) {
        uint32_t w = (uint32_t)rnd(&g->rng);
        if (rndn(&g->rng, 3)) { /* 32-bit */
            w |= 3;
            unsigned op = w & 0x7f, rd = (w >> 7) & 31;
            if ((op & 0x1f) == 0x1f) /* 48-bit and longer encodings */
                continue;
            switch (op) {
            case 0x13: /* OP-IMM */
            case 0x1b: /* OP-IMM-32 */
            case 0x33: /* OP */
            case 0x3b: /* OP-32 */
            case 0x37: /* LUI */
            case 0x17: /* AUIPC */
            case 0x53: /* OP-FP */
            case 0x43:
            case 0x47:
            case 0x4b:
            case 0x4f: /* fused multiply-add */
            case 0x0f: /* MISC-MEM: fences */
            case 0x0b:
            case 0x2b:
            case 0x5b:
            case 0x7b: /* custom-0..3 */
            case 0x57:
            case 0x77: /* OP-V, OP-P: absent */ break;
            default: continue;
            }
            if (reserved_rd(rd))
                continue;
            e32(g, w, ".4byte 0x%08x", w);
            return;
        }
        uint16_t h = (uint16_t)w;
        if ((h & 3) == 3)
            continue;
        unsigned q = h & 3, f3 = h >> 13, rd = (h >> 7) & 31, rdp3 = (h >> 7) & 7;
        unsigned rs2 = (h >> 2) & 31, rdp_low = (h >> 2) & 7;
        bool ok = false;
        if (q == 0) {
            ok = (f3 == 0 && rdp_low != 0) || f3 == 4; /* c.addi4spn (not s0), reserved */
        } else if (q == 1) {
            if (f3 <= 3)
                ok = !reserved_rd(rd); /* c.addi, c.addiw, c.li, c.lui (not c.addi16sp) */
            else if (f3 == 4)
                ok = rdp3 != 0; /* c.srli/srai/andi/sub/... on x9..x15 */
        } else {
            if (f3 == 0 || f3 == 2 || f3 == 3)
                ok = !reserved_rd(rd); /* c.slli, c.lwsp, c.ldsp (sp-relative) */
            else if (f3 == 1 || f3 >= 5)
                ok = true; /* c.fldsp, c.fsdsp, c.swsp, c.sdsp: sp-relative */
            else if (!((h >> 12) & 1))
                ok = (rs2 != 0 && !reserved_rd(rd)) || (rd == 0 && rs2 == 0); /* c.mv, c.jr x0 */
            else
                ok = (rs2 != 0 && !reserved_rd(rd)) || (rd == 0 && rs2 == 0); /* c.add, c.ebreak */
        }
        if (!ok)
            continue;
        e16(g, h, ".2byte 0x%04x", h);
        return;
    }
}

static void gen_straight(struct gen *g)
{
    if (rndn(&g->rng, 100) < g->random_pct) {
        gen_random_encoding(g);
        return;
    }
    unsigned k = rndn(&g->rng, 100);
    if (k < 22)
        gen_alu_rr(g);
    else if (k < 36)
        gen_alu_imm(g);
    else if (k < 39)
        gen_upper(g);
    else if (k < 50)
        gen_mem(g);
    else if (k < 54)
        gen_amo(g);
    else if (k < 56)
        gen_lrsc(g);
    else if (k < 76)
        gen_fp(g);
    else if (k < 80)
        gen_random_encoding(g);
    else
        gen_rvc(g);
}

/* Forward-branch fix-ups: patched when the target position is reached. */
struct fixup {
    size_t at;       /* byte offset of the branch */
    unsigned target; /* instruction index to land on */
    int kind;        /* 0 = B-type, 1 = JAL, 2 = c.beqz/bnez, 3 = c.j, 4 = auipc+jalr */
    unsigned label;
};

static void patch(struct gen *g, const struct fixup *f)
{
    int32_t off = (int32_t)(g->len - f->at);
    uint8_t *p = g->code + f->at;
    uint32_t w = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    switch (f->kind) {
    case 0: w = (w & 0x01fff07f) | (enc_b(off, 0, 0, 0) & ~0x01fff07fu); break;
    case 1: w = (w & 0xfff) | (enc_j(off, 0) & ~0xfffu); break;
    case 2: {
        uint16_t h = (uint16_t)w, nh = enc_cb_branch(0, 0, off);
        h = (uint16_t)((h & 0xe383) | (nh & ~0xe383));
        w = (w & 0xffff0000) | h;
        break;
    }
    case 3: {
        uint16_t h = (uint16_t)w, nh = enc_cj(off);
        h = (uint16_t)((h & 0xe003) | (nh & ~0xe003));
        w = (w & 0xffff0000) | h;
        break;
    }
    case 4: { /* jalr at +4: offset relative to the auipc */
        uint8_t *q = p + 4;
        uint32_t j =
            (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
        j = (j & 0xfffff) | ((uint32_t)off & 0xfff) << 20;
        for (int i = 0; i < 4; i++)
            q[i] = (uint8_t)(j >> (8 * i));
        if (g->as)
            fprintf(g->as, ".set .LJ%u, 0x%08x\n", f->label, j);
        break;
    }
    }
    size_t n = (f->kind == 2 || f->kind == 3) ? 2 : 4;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(w >> (8 * i));
    emit_label(g, f->label);
}

/* A block of n random instructions with forward branches and bounded loops. */
static void gen_block(struct gen *g, unsigned n)
{
    struct fixup fix[64];
    unsigned nfix = 0;
    for (unsigned i = 0; i < n && !g->fail; i++) {
        for (unsigned f = 0; f < nfix;) {
            if (fix[f].target == i) {
                patch(g, &fix[f]);
                fix[f] = fix[--nfix];
            } else {
                f++;
            }
        }
        unsigned k = rndn(&g->rng, 100);
        if (k < 6 && nfix < 64) { /* conditional branch forward over 1..8 */
            static const uint32_t f3s[6] = {0, 1, 4, 5, 6, 7};
            static const char *const bnames[6] = {"beq", "bne", "blt", "bge", "bltu", "bgeu"};
            unsigned b = rndn(&g->rng, 6), a = rs_any(g), c = rs_any(g);
            struct fixup *f = &fix[nfix++];
            f->at = g->len;
            f->target = i + 1 + 1 + rndn(&g->rng, 8);
            f->kind = 0;
            f->label = g->label++;
            e32(g, enc_b(0, c, a, f3s[b]), "%s %s, %s, .L%u", bnames[b], xname[a], xname[c],
                f->label);
        } else if (k < 8 && nfix < 64) { /* c.beqz / c.bnez */
            unsigned b = rndn(&g->rng, 2), r = 8 + rndn(&g->rng, 8);
            struct fixup *f = &fix[nfix++];
            f->at = g->len;
            f->target = i + 1 + 1 + rndn(&g->rng, 6);
            f->kind = 2;
            f->label = g->label++;
            e16(g, enc_cb_branch(b ? 7 : 6, r - 8, 0), "%s %s, .L%u", b ? "c.bnez" : "c.beqz",
                xname[r], f->label);
        } else if (k < 9 && nfix < 64) { /* jal forward */
            unsigned rd = rndn(&g->rng, 3) ? rd_any(g) : ZERO;
            struct fixup *f = &fix[nfix++];
            f->at = g->len;
            f->target = i + 1 + 1 + rndn(&g->rng, 8);
            f->kind = 1;
            f->label = g->label++;
            e32(g, enc_j(0, rd), "jal %s, .L%u", xname[rd], f->label);
        } else if (k < 10 && nfix < 64) { /* c.j forward */
            struct fixup *f = &fix[nfix++];
            f->at = g->len;
            f->target = i + 1 + 1 + rndn(&g->rng, 8);
            f->kind = 3;
            f->label = g->label++;
            e16(g, enc_cj(0), "c.j .L%u", f->label);
        } else if (k < 11 && nfix < 64) { /* auipc + jalr forward */
            unsigned t = rd_any(g), rd = rd_any(g);
            struct fixup *f = &fix[nfix++];
            f->at = g->len;
            f->target = i + 1 + 1 + rndn(&g->rng, 8);
            f->kind = 4;
            f->label = g->label++;
            unsigned lab = g->label++;
            if (g->as)
                fprintf(g->as, ".L%u:\n", lab);
            e32(g, enc_u(0, t, 0x17), "auipc %s, 0", xname[t]);
            /* GNU as takes no forward label difference as an immediate: the
             * listing uses a symbol that patch() defines. */
            e32(g, enc_i(0, t, 0, rd, 0x67), ".4byte .LJ%u", f->label);
        } else if (k < 13 && nfix == 0 && n - i > 12) { /* bounded loop */
            unsigned iters = 1 + rndn(&g->rng, 5), body = 2 + rndn(&g->rng, 8);
            e32(g, enc_i((int32_t)iters, ZERO, 0, TP, 0x13), "addi tp, zero, %u", iters);
            size_t top = g->len;
            unsigned lab = g->label++;
            emit_label(g, lab);
            for (unsigned j = 0; j < body; j++) {
                unsigned c = rndn(&g->rng, 10);
                if (c < 3)
                    gen_alu_rr(g);
                else if (c < 5)
                    gen_alu_imm(g);
                else if (c < 6)
                    gen_mem(g);
                else if (c < 8)
                    gen_fp(g);
                else
                    gen_rvc(g);
            }
            e32(g, enc_i(-1, TP, 0, TP, 0x13), "addi tp, tp, -1");
            e32(g, enc_b((int32_t)top - (int32_t)g->len, ZERO, TP, 1), "bne tp, zero, .L%u", lab);
            i += body + 2;
        } else {
            gen_straight(g);
        }
    }
    /* Land any branch that points past the end right here. */
    for (unsigned f = 0; f < nfix; f++)
        patch(g, &fix[f]);
}

#endif
