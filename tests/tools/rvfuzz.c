/*
 * rvfuzz: random RISC-V program generator for differential testing of
 * godwit-vm against qemu-system-riscv64.
 *
 * From a 64-bit seed it builds a bare-metal RV64GC ELF (written directly, no
 * assembler): a prologue that loads all 32 x and 32 f registers and frm from
 * seeded values, then SEGMENTS blocks of random instructions, each followed
 * by a dump of x1..x31, f0..f31, fcsr, the trap count and hash, and a
 * checksum of the 4 KiB scratch
 * area to the UART in hex, then a write of 0x5555 to the test device.
 *
 * The instructions are chosen so that the result is fully defined by the
 * ISA and the virt platform: integer ALU/M ops, loads/stores/AMOs into the
 * scratch area (data-dependent addresses are masked into range; one plain
 * load/store in eight is misaligned, which the platform performs), LR/SC only as an adjacent pair
 * on one address (a lone SC always fails), F/D arithmetic/conversions/compares/moves with static or
 * dynamic rounding (frm is only ever set to 0..4), fflags/frm CSR accesses, RVC forms, forward
 * branches and jumps, bounded loops, and raw random encodings filtered to the harmless opcodes
 * (ALU, FP, fence, custom, safe compressed forms; one case in four has 30% of them), whose illegal-
 * instruction and breakpoint traps are counted and hashed (mcause, mtval,
 * mepc) by the trap handler, which then skips the instruction.
 * Half the cases run the random code in M-mode; the others drop to S or U
 * with Sv39 or Sv48 paging (VA = PA, 4 KiB pages, A/D set by the hart),
 * proven by an M-only CSR read that must trap right after the mret.
 * Reserved registers: sp (x2) and s0 (x8) point into the scratch area for
 * the compressed sp- and s0-relative forms, gp (x3) is the scratch base for
 * everything else, tp (x4) counts loop iterations.  Any other trap prints
 * a 7a7a... marker, mcause, mepc and mtval and exits with failure status 3.
 *
 * Usage:
 *   rvfuzz gen SEED OUT.elf [-n INSNS] [-s SEGMENTS] [-a OUT.S]
 *       -a also writes the program as assembly (used to check the encoders
 *       against GNU as).
 *   rvfuzz batch DIR FIRST_SEED COUNT [-n INSNS] [-s SEGMENTS]
 *       writes DIR/case-SEED.elf for COUNT consecutive seeds.
 *   rvfuzz cmp EXPECTED ACTUAL
 *       compares two outputs; prints the first differing register and
 *       exits 1 on a difference, 0 when equal.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CODE_BASE    0x80000000UL
#define DATA_BASE    0x80100000UL /* scratch area, 4 KiB */
#define SCRATCH_SIZE 4096
/* Save area (8-byte slots): 0-31 x, 32-63 f, 64 fcsr, 65 trap count, 66 trap
 * hash, 67-69 trap handler spills. */
#define SAVE_OFF   4096
#define TRAP_COUNT (65 * 8)
#define TRAP_HASH  (66 * 8)
#define TRAP_SPILL (67 * 8)
#define INIT_OFF   (SAVE_OFF + 72 * 8) /* initial register values: 32 x + 32 f */
#define PT_OFF     0x2000              /* page tables for the S/U profiles: 4 pages */
#define PTE_U_BIT  0x10
#define DATA_SIZE  (PT_OFF + 4 * 4096)
#define CODE_MAX   (1 << 20)
/* Lines per dump: marker, x1..x31, f0..f31, fcsr, trap count, trap hash, checksum. */
#define NDUMP 68

#include "rvfuzz_emit.h"

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

/* ---- fixed parts: prologue, dump, trap handler, exit -------------------- */

static void emit_putc_routine(struct gen *g, size_t *putc_at)
{
    /* putc: a0 = char; clobbers t3, t4 */
    *putc_at = g->len;
    e32(g, enc_u(0x10000, 28, 0x37), "lui t3, 0x10000");
    size_t loop = g->len;
    e32(g, enc_i(5, 28, 4, 29, 0x03), "lbu t4, 5(t3)");
    e32(g, enc_i(0x20, 29, 7, 29, 0x13), "andi t4, t4, 32");
    e32(g, enc_b((int32_t)loop - (int32_t)g->len, ZERO, 29, 0), "beq t4, zero, .-8");
    e32(g, enc_s(0, 10, 28, 0, 0x23), "sb a0, 0(t3)");
    e32(g, enc_i(0, RA, 0, ZERO, 0x67), "ret");
}

static void emit_call(struct gen *g, size_t target, const char *name)
{
    int32_t off = (int32_t)target - (int32_t)g->len;
    e32(g, enc_j(off, RA), "jal ra, %s", name);
}

/* hex64: a1 = value; prints 16 hex digits and '\n'. clobbers a0, a2, a3, t3, t4, s1 */
static void emit_hex_routine(struct gen *g, size_t putc_at, size_t *hex_at)
{
    *hex_at = g->len;
    e32(g, enc_i(0, RA, 0, 9, 0x13), "mv s1, ra");
    e32(g, enc_i(16, ZERO, 0, 12, 0x13), "li a2, 16");
    size_t loop = g->len;
    if (g->as)
        fprintf(g->as, ".Lhexloop:\n");
    e32(g, (60u << 20) | 11 << 15 | 5 << 12 | 10 << 7 | 0x13, "srli a0, a1, 60");
    e32(g, (4u << 20) | 11 << 15 | 1 << 12 | 11 << 7 | 0x13, "slli a1, a1, 4");
    e32(g, enc_i(10, ZERO, 0, 13, 0x13), "li a3, 10");
    e32(g, enc_b(8, 13, 10, 4), "blt a0, a3, .+8");
    e32(g, enc_i(39, 10, 0, 10, 0x13), "addi a0, a0, 39");
    e32(g, enc_i('0', 10, 0, 10, 0x13), "addi a0, a0, 48");
    emit_call(g, putc_at, ".Lputc");
    e32(g, enc_i(-1, 12, 0, 12, 0x13), "addi a2, a2, -1");
    e32(g, enc_b((int32_t)loop - (int32_t)g->len, ZERO, 12, 1), "bne a2, zero, .Lhexloop");
    e32(g, enc_i('\n', ZERO, 0, 10, 0x13), "li a0, 10");
    emit_call(g, putc_at, ".Lputc");
    e32(g, enc_i(0, 9, 0, ZERO, 0x67), "jr s1");
}

/*
 * Dump: save everything to the save area (t0 via mscratch), print it and
 * the scratch checksum, then restore everything.
 */
static void emit_dump(struct gen *g, unsigned index, size_t dump_at)
{
    /* t0 goes to its slot through s0 (fixed at scratch + 3072): no CSR, so
     * this works in every privilege mode. */
    const int32_t t0_slot = SAVE_OFF + T0 * 8 - 3072;
    e32(g, enc_s(t0_slot, T0, S0, 3, 0x23), "sd t0, %d(s0)", t0_slot);
    emit_la(g, T0, DATA_BASE + SAVE_OFF);
    for (unsigned r = 1; r < 32; r++)
        if (r != T0)
            e32(g, enc_s((int32_t)(r * 8), r, T0, 3, 0x23), "sd %s, %u(t0)", xname[r], r * 8);
    for (unsigned r = 0; r < 32; r++)
        e32(g, enc_s((int32_t)(256 + r * 8), r, T0, 3, 0x27), "fsd %s, %u(t0)", fname[r],
            256 + r * 8);
    e32(g, enc_i(3, ZERO, 2, T1, 0x73), "frcsr t1");
    e32(g, enc_s(512, T1, T0, 3, 0x23), "sd t1, 512(t0)");
    e32(g, enc_i((int32_t)index, ZERO, 0, 11, 0x13), "li a1, %u", index);
    emit_call(g, dump_at, ".Ldump");
    /* restore */
    emit_la(g, T0, DATA_BASE + SAVE_OFF);
    e32(g, enc_i(512, T0, 3, T1, 0x03), "ld t1, 512(t0)");
    e32(g, enc_i(3, T1, 1, ZERO, 0x73), "fscsr t1");
    for (unsigned r = 0; r < 32; r++)
        e32(g, enc_i((int32_t)(256 + r * 8), T0, 3, r, 0x07), "fld %s, %u(t0)", fname[r],
            256 + r * 8);
    for (unsigned r = 1; r < 32; r++)
        if (r != T0)
            e32(g, enc_i((int32_t)(r * 8), T0, 3, r, 0x03), "ld %s, %u(t0)", xname[r], r * 8);
    e32(g, enc_i(T0 * 8, T0, 3, T0, 0x03), "ld t0, %d(t0)", T0 * 8);
}

/*
 * The dump routine proper: a1 = dump index.  Prints "dump N" as a hex
 * value line, then x1..x31, f0..f31, fcsr, checksum.  Uses s1..s3 (saved
 * already), a0..a3, t3, t4.
 */
static void emit_dump_routine(struct gen *g, size_t hex_at, size_t *dump_at)
{
    *dump_at = g->len;
    e32(g, enc_i(0, RA, 0, 19, 0x13), "mv s3, ra");
    /* marker line: 0xd0d0d0d0000000NN */
    emit_li(g, 18, 0xd0d0d0d000000000ULL);
    e32(g, enc_r(0, 11, 18, 0, 11, 0x33), "add a1, s2, a1");
    emit_call(g, hex_at, ".Lhex");
    emit_la(g, 18, DATA_BASE + SAVE_OFF + 8);          /* s2 = &save[1] */
    e32(g, enc_i(66, ZERO, 0, 20, 0x13), "li s4, 66"); /* x, f, fcsr, trap count/hash */
    size_t loop = g->len;
    if (g->as)
        fprintf(g->as, ".Ldumploop:\n");
    e32(g, enc_i(0, 18, 3, 11, 0x03), "ld a1, 0(s2)");
    emit_call(g, hex_at, ".Lhex");
    e32(g, enc_i(8, 18, 0, 18, 0x13), "addi s2, s2, 8");
    e32(g, enc_i(-1, 20, 0, 20, 0x13), "addi s4, s4, -1");
    e32(g, enc_b((int32_t)loop - (int32_t)g->len, ZERO, 20, 1), "bne s4, zero, .Ldumploop");
    /* checksum: h = rotl(h, 7) ^ word over the scratch area */
    emit_la(g, 18, DATA_BASE);
    e32(g, enc_i(SCRATCH_SIZE / 8, ZERO, 0, 20, 0x13), "li s4, %d", SCRATCH_SIZE / 8);
    e32(g, enc_i(0, ZERO, 0, 11, 0x13), "li a1, 0");
    size_t cl = g->len;
    if (g->as)
        fprintf(g->as, ".Lsumloop:\n");
    e32(g, enc_i(0, 18, 3, 12, 0x03), "ld a2, 0(s2)");
    e32(g, (7u << 20) | 11 << 15 | 1 << 12 | 13 << 7 | 0x13, "slli a3, a1, 7");
    e32(g, (57u << 20) | 11 << 15 | 5 << 12 | 11 << 7 | 0x13, "srli a1, a1, 57");
    e32(g, enc_r(0, 13, 11, 6, 11, 0x33), "or a1, a1, a3");
    e32(g, enc_r(0, 12, 11, 4, 11, 0x33), "xor a1, a1, a2");
    e32(g, enc_i(8, 18, 0, 18, 0x13), "addi s2, s2, 8");
    e32(g, enc_i(-1, 20, 0, 20, 0x13), "addi s4, s4, -1");
    e32(g, enc_b((int32_t)cl - (int32_t)g->len, ZERO, 20, 1), "bne s4, zero, .Lsumloop");
    emit_call(g, hex_at, ".Lhex");
    e32(g, enc_i(0, 19, 0, ZERO, 0x67), "jr s3");
}

static void emit_exit(struct gen *g, uint32_t value)
{
    e32(g, enc_u(0x100, T0, 0x37), "lui t0, 0x100");
    emit_li(g, T1, value);
    e32(g, enc_s(0, T1, T0, 2, 0x23), "sw t1, 0(t0)");
    size_t self = g->len;
    e32(g, enc_j((int32_t)self - (int32_t)g->len, ZERO), "j .");
}

/* rd = rotl(rd, 7) ^ src, with tmp as scratch. */
static void emit_mix(struct gen *g, unsigned rd, unsigned src, unsigned tmp)
{
    e32(g, (7u << 20) | rd << 15 | 1 << 12 | tmp << 7 | 0x13, "slli %s, %s, 7", xname[tmp],
        xname[rd]);
    e32(g, (57u << 20) | rd << 15 | 5 << 12 | rd << 7 | 0x13, "srli %s, %s, 57", xname[rd],
        xname[rd]);
    e32(g, enc_r(0, tmp, rd, 6, rd, 0x33), "or %s, %s, %s", xname[rd], xname[rd], xname[tmp]);
    e32(g, enc_r(0, src, rd, 4, rd, 0x33), "xor %s, %s, %s", xname[rd], xname[rd], xname[src]);
}

/*
 * Trap handler.  Illegal-instruction and breakpoint traps (from the random
 * encodings) are counted and hashed (mcause, mtval, mepc) into the save
 * area and skipped; anything else prints a marker, mcause, mepc and mtval
 * and exits with status 3 (a generator bug, or an emulator one).
 */
static void emit_trap_routine(struct gen *g, size_t hex_at, size_t *trap_at)
{
    while (g->len & 3)
        e16(g, 0x0001, "c.nop");
    *trap_at = g->len;
    if (g->as)
        fprintf(g->as, ".Ltrap:\n");
    const unsigned T3 = 28;
    e32(g, enc_i(0x340, T0, 1, ZERO, 0x73), "csrw mscratch, t0");
    emit_la(g, T0, DATA_BASE + SAVE_OFF);
    e32(g, enc_s(TRAP_SPILL, T1, T0, 3, 0x23), "sd t1, %d(t0)", TRAP_SPILL);
    e32(g, enc_s(TRAP_SPILL + 8, T2, T0, 3, 0x23), "sd t2, %d(t0)", TRAP_SPILL + 8);
    e32(g, enc_s(TRAP_SPILL + 16, T3, T0, 3, 0x23), "sd t3, %d(t0)", TRAP_SPILL + 16);
    e32(g, enc_i(0x342, ZERO, 2, T1, 0x73), "csrr t1, mcause");
    e32(g, enc_i(-2, T1, 0, T2, 0x13), "addi t2, t1, -2");
    e32(g, enc_b(16, ZERO, T2, 0), "beq t2, zero, .+16");
    e32(g, enc_i(-3, T1, 0, T2, 0x13), "addi t2, t1, -3");
    e32(g, enc_b(8, ZERO, T2, 0), "beq t2, zero, .+8");
    size_t fatal_jump = g->len;
    e32(g, enc_j(0, ZERO), ".4byte .LTFJ");
    /* count++, hash = mix(hash, cause, tval, epc) */
    e32(g, enc_i(TRAP_COUNT, T0, 3, T2, 0x03), "ld t2, %d(t0)", TRAP_COUNT);
    e32(g, enc_i(1, T2, 0, T2, 0x13), "addi t2, t2, 1");
    e32(g, enc_s(TRAP_COUNT, T2, T0, 3, 0x23), "sd t2, %d(t0)", TRAP_COUNT);
    e32(g, enc_i(TRAP_HASH, T0, 3, T2, 0x03), "ld t2, %d(t0)", TRAP_HASH);
    emit_mix(g, T2, T1, T3);
    e32(g, enc_i(0x343, ZERO, 2, T1, 0x73), "csrr t1, mtval");
    emit_mix(g, T2, T1, T3);
    e32(g, enc_i(0x341, ZERO, 2, T1, 0x73), "csrr t1, mepc");
    emit_mix(g, T2, T1, T3);
    e32(g, enc_s(TRAP_HASH, T2, T0, 3, 0x23), "sd t2, %d(t0)", TRAP_HASH);
    /* mepc += length of the trapping instruction */
    e32(g, enc_i(0, T1, 5, T2, 0x03), "lhu t2, 0(t1)");
    e32(g, enc_i(3, T2, 7, T2, 0x13), "andi t2, t2, 3");
    e32(g, enc_i(-3, T2, 0, T2, 0x13), "addi t2, t2, -3");
    e32(g, enc_b(12, ZERO, T2, 0), "beq t2, zero, .+12");
    e32(g, enc_i(2, T1, 0, T1, 0x13), "addi t1, t1, 2");
    e32(g, enc_j(8, ZERO), "j .+8");
    e32(g, enc_i(4, T1, 0, T1, 0x13), "addi t1, t1, 4");
    e32(g, enc_i(0x341, T1, 1, ZERO, 0x73), "csrw mepc, t1");
    e32(g, enc_i(TRAP_SPILL, T0, 3, T1, 0x03), "ld t1, %d(t0)", TRAP_SPILL);
    e32(g, enc_i(TRAP_SPILL + 8, T0, 3, T2, 0x03), "ld t2, %d(t0)", TRAP_SPILL + 8);
    e32(g, enc_i(TRAP_SPILL + 16, T0, 3, T3, 0x03), "ld t3, %d(t0)", TRAP_SPILL + 16);
    e32(g, enc_i(0x340, ZERO, 2, T0, 0x73), "csrr t0, mscratch");
    e32(g, 0x30200073, "mret");
    /* fatal */
    {
        uint32_t j = enc_j((int32_t)(g->len - fatal_jump), ZERO);
        for (int i = 0; i < 4; i++)
            g->code[fatal_jump + i] = (uint8_t)(j >> (8 * i));
        if (g->as)
            fprintf(g->as, ".set .LTFJ, 0x%08x\n", j);
    }
    emit_li(g, 11, 0x7a7a7a7a7a7a7a7aULL);
    emit_call(g, hex_at, ".Lhex");
    e32(g, enc_i(0x342, ZERO, 2, 11, 0x73), "csrr a1, mcause");
    emit_call(g, hex_at, ".Lhex");
    e32(g, enc_i(0x341, ZERO, 2, 11, 0x73), "csrr a1, mepc");
    emit_call(g, hex_at, ".Lhex");
    e32(g, enc_i(0x343, ZERO, 2, 11, 0x73), "csrr a1, mtval");
    emit_call(g, hex_at, ".Lhex");
    emit_exit(g, (3u << 16) | 0x3333);
}

/* ---- data: initial registers and scratch --------------------------------- */

static uint64_t interesting_x(struct rng *r)
{
    static const uint64_t v[] = {0,
                                 1,
                                 (uint64_t)-1,
                                 0x7fffffffffffffffULL,
                                 0x8000000000000000ULL,
                                 0x7fffffff,
                                 0xffffffff80000000ULL,
                                 0xffffffff,
                                 0x80000000,
                                 2,
                                 (uint64_t)-2};
    switch (rndn(r, 4)) {
    case 0: return v[rndn(r, sizeof(v) / sizeof(v[0]))];
    case 1: return (uint64_t)(int64_t)(int8_t)rnd(r);
    default: return rnd(r);
    }
}

static uint64_t interesting_f(struct rng *r)
{
    static const uint32_t s[] = {0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000,
                                 0xff800000, 0x7fc00000, 0x7f800001, 0x00000001, 0x007fffff,
                                 0x00800000, 0x7f7fffff, 0x4b000000, 0x3effffff, 0x4f000000};
    static const uint64_t d[] = {0,
                                 0x8000000000000000ULL,
                                 0x3ff0000000000000ULL,
                                 0xbff0000000000000ULL,
                                 0x7ff0000000000000ULL,
                                 0xfff0000000000000ULL,
                                 0x7ff8000000000000ULL,
                                 0x7ff0000000000001ULL,
                                 1,
                                 0x000fffffffffffffULL,
                                 0x0010000000000000ULL,
                                 0x7fefffffffffffffULL,
                                 0x4330000000000000ULL,
                                 0x43e0000000000000ULL,
                                 0x41e0000000000000ULL,
                                 0x3fe0000000000000ULL};
    switch (rndn(r, 6)) {
    case 0: return 0xffffffff00000000ULL | s[rndn(r, sizeof(s) / sizeof(s[0]))];
    case 1: return d[rndn(r, sizeof(d) / sizeof(d[0]))];
    case 2: return 0xffffffff00000000ULL | (uint32_t)rnd(r); /* boxed random single */
    case 3: { /* moderate doubles: sign, exponent near 1.0, random mantissa */
        uint64_t m = rnd(r) & 0x000fffffffffffffULL;
        uint64_t e = (uint64_t)(1023 - 8 + rndn(r, 16)) << 52;
        return (rnd(r) & 0x8000000000000000ULL) | e | m;
    }
    case 4: { /* moderate singles */
        uint32_t m = (uint32_t)rnd(r) & 0x7fffff;
        uint32_t e = (127 - 8 + rndn(r, 16)) << 23;
        return 0xffffffff00000000ULL | ((uint32_t)rnd(r) & 0x80000000u) | e | m;
    }
    default: return rnd(r); /* anything, often unboxed */
    }
}

static void fill_data(struct rng *r, uint8_t *data)
{
    for (size_t i = 0; i < SCRATCH_SIZE; i += 8) {
        uint64_t v = rndn(r, 2) ? interesting_x(r) : interesting_f(r);
        memcpy(data + i, &v, 8);
    }
    memset(data + SAVE_OFF, 0, 72 * 8);
    for (unsigned i = 0; i < 32; i++) {
        uint64_t v = interesting_x(r);
        memcpy(data + INIT_OFF + i * 8, &v, 8);
    }
    for (unsigned i = 0; i < 32; i++) {
        uint64_t v = interesting_f(r);
        memcpy(data + INIT_OFF + 256 + i * 8, &v, 8);
    }
    uint64_t frm = rndn(r, 5);
    memcpy(data + INIT_OFF + 512, &frm, 8);
}

/* ---- program assembly ----------------------------------------------------- */

static void emit_prologue(struct gen *g, size_t *trap_fix)
{
    e32(g, enc_i(0xf14, ZERO, 2, T0, 0x73), "csrr t0, mhartid");
    size_t park = g->len;
    e32(g, enc_b(12, ZERO, T0, 0), "beq t0, zero, .+12");
    e32(g, 0x10500073, "wfi");
    e32(g, enc_j((int32_t)park + 4 - (int32_t)g->len, ZERO), "j .-4");
    /* mtvec = trap routine (patched later: auipc + addi) */
    *trap_fix = g->len;
    e32(g, enc_u(0, T0, 0x17), ".4byte .LTF1");        /* auipc t0, (patched in build) */
    e32(g, enc_i(0, T0, 0, T0, 0x13), ".4byte .LTF2"); /* addi t0, t0, ... */
    e32(g, enc_i(0x305, T0, 1, ZERO, 0x73), "csrw mtvec, t0");
    /* FPU on */
    e32(g, enc_u(0x2, T0, 0x37), "lui t0, 0x2");
    e32(g, enc_i(0x300, T0, 2, ZERO, 0x73), "csrs mstatus, t0");
    if (g->mode != 3) {
        /* PMP entry 0 open to all, paging on, mret into S/U after the loads. */
        e32(g, enc_i(-1, ZERO, 0, T0, 0x13), "li t0, -1");
        e32(g, (10u << 20) | T0 << 15 | 5 << 12 | T0 << 7 | 0x13, "srli t0, t0, 10");
        e32(g, enc_i(0x3b0, T0, 1, ZERO, 0x73), "csrw pmpaddr0, t0");
        e32(g, enc_i(0x1f, ZERO, 0, T0, 0x13), "li t0, 0x1f");
        e32(g, enc_i(0x3a0, T0, 1, ZERO, 0x73), "csrw pmpcfg0, t0");
        emit_la(g, T0, DATA_BASE + PT_OFF);
        e32(g, (12u << 20) | T0 << 15 | 5 << 12 | T0 << 7 | 0x13, "srli t0, t0, 12");
        e32(g, enc_i(g->levels == 3 ? 8 : 9, ZERO, 0, T1, 0x13), "li t1, %u",
            g->levels == 3 ? 8 : 9);
        e32(g, (60u << 20) | T1 << 15 | 1 << 12 | T1 << 7 | 0x13, "slli t1, t1, 60");
        e32(g, enc_r(0, T1, T0, 6, T0, 0x33), "or t0, t0, t1");
        e32(g, enc_i(0x180, T0, 1, ZERO, 0x73), "csrw satp, t0");
        e32(g, 0x12000073, "sfence.vma");
        e32(g, enc_u(0x2, T0, 0x37), "lui t0, 0x2");
        e32(g, enc_i(-0x800, T0, 0, T0, 0x13), "addi t0, t0, -2048"); /* 3 << 11 */
        e32(g, enc_i(0x300, T0, 3, ZERO, 0x73), "csrc mstatus, t0");
        if (g->mode == 1) {
            e32(g, enc_i(0x400, ZERO, 0, T0, 0x13), "li t0, 0x400"); /* 1 << 11 */
            e32(g, (1u << 20) | T0 << 15 | 1 << 12 | T0 << 7 | 0x13, "slli t0, t0, 1");
            e32(g, enc_i(0x300, T0, 2, ZERO, 0x73), "csrs mstatus, t0");
        }
        g->mret_fix = g->len;
        e32(g, enc_u(0, T0, 0x17), ".4byte .LMF1"); /* auipc t0 (patched) */
        e32(g, enc_i(0, T0, 0, T0, 0x13), ".4byte .LMF2");
        e32(g, enc_i(0x341, T0, 1, ZERO, 0x73), "csrw mepc, t0");
    }
    /* registers from the init table */
    emit_la(g, 31, DATA_BASE + INIT_OFF);
    e32(g, enc_i(512, 31, 3, T0, 0x03), "ld t0, 512(t6)");
    e32(g, enc_i(2, T0, 1, ZERO, 0x73), "fsrm t0");
    e32(g, enc_i(1, ZERO, 1, ZERO, 0x73), "fsflags zero");
    for (unsigned r = 0; r < 32; r++)
        e32(g, enc_i((int32_t)(256 + r * 8), 31, 3, r, 0x07), "fld %s, %u(t6)", fname[r],
            256 + r * 8);
    for (unsigned r = 1; r < 31; r++)
        e32(g, enc_i((int32_t)(r * 8), 31, 3, r, 0x03), "ld %s, %u(t6)", xname[r], r * 8);
    e32(g, enc_i(31 * 8, 31, 3, 31, 0x03), "ld t6, %d(t6)", 31 * 8);
    /* reserved pointers into the scratch area */
    emit_la(g, GP, DATA_BASE + 2048);
    emit_la(g, SP, DATA_BASE + 1024);
    emit_la(g, S0, DATA_BASE + 3072);
    e32(g, enc_i(0, ZERO, 0, TP, 0x13), "li tp, 0");
    if (g->mode != 3) {
        e32(g, 0x30200073, "mret");
        int32_t off = (int32_t)(g->len - g->mret_fix);
        int32_t lo = sext12(off);
        uint32_t hi = (uint32_t)((off - lo) >> 12) & 0xfffff;
        uint32_t a = enc_u(hi, T0, 0x17), b = enc_i(lo, T0, 0, T0, 0x13);
        for (int i = 0; i < 4; i++) {
            g->code[g->mret_fix + i] = (uint8_t)(a >> (8 * i));
            g->code[g->mret_fix + 4 + i] = (uint8_t)(b >> (8 * i));
        }
        if (g->as)
            fprintf(g->as, ".set .LMF1, 0x%08x\n.set .LMF2, 0x%08x\n", a, b);
        /* Proof of the privilege drop: an M-only CSR read must trap (counted). */
        e32(g, enc_i(0x340, ZERO, 2, ZERO, 0x73), "csrr zero, mscratch");
    }
}

/*
 * Page tables for the S/U profiles, in the data segment at PT_OFF: VA = PA
 * for every 4 KiB page of code and data (code R-X, data RW-, U set in the
 * U profile) and one gigapage for the devices (UART, test device).  A and D
 * start clear, so the hart sets them as the program runs.
 */
static void build_page_tables(struct gen *g, uint8_t *data, size_t code_len)
{
    uint64_t base = DATA_BASE + PT_OFF, u = g->mode == 0 ? PTE_U_BIT : 0;
    uint64_t tab[4] = {base, base + 4096, base + 8192, base + 12288};
    memset(data + PT_OFF, 0, 4 * 4096);
#define PT_SET(t, idx, val) memcpy(data + PT_OFF + (t)*4096 + (idx)*8, &(uint64_t){val}, 8)
    unsigned t = 0;
    if (g->levels == 4) {
        PT_SET(0, 0, (tab[1] >> 12) << 10 | 1); /* VA 0..512G -> level-2 table */
        t = 1;
    }
    /* level-2 table t: [0] devices gigapage, [2] 0x80000000 -> level-1 table */
    PT_SET(t, 0, 0 | 0x7 | u);                      /* V R W, PPN 0 */
    PT_SET(t, 2, (tab[t + 1] >> 12) << 10 | 1);     /* pointer */
    PT_SET(t + 1, 0, (tab[t + 2] >> 12) << 10 | 1); /* 0x80000000..+2M -> level 0 */
    for (uint64_t a = CODE_BASE; a < CODE_BASE + code_len; a += 4096)
        PT_SET(t + 2, (a >> 12) & 511, (a >> 12) << 10 | 0xb | u); /* V R X */
    for (uint64_t a = DATA_BASE; a < DATA_BASE + DATA_SIZE; a += 4096)
        PT_SET(t + 2, (a >> 12) & 511, (a >> 12) << 10 | 0x7 | u); /* V R W */
#undef PT_SET
}

static int build(uint64_t seed, unsigned insns, unsigned segments, uint8_t *code, size_t *code_len,
                 uint8_t *data, FILE *as, uint64_t *entry)
{
    struct gen g = {.rng = {seed * 0x2545f4914f6cdd1dULL + 1}, .code = code, .as = as};
    if (as)
        fprintf(as, "# rvfuzz seed %" PRIu64 "\n\t.text\n\t.option norvc\n", seed);
    fill_data(&g.rng, data);
    /* One case in four stresses the decoder with many raw random encodings. */
    g.random_pct = rndn(&g.rng, 4) == 0 ? 30 : 0;
    /* Half the cases run in M; the rest in S or U under Sv39 or Sv48. */
    switch (rndn(&g.rng, 8)) {
    case 4: g.mode = 1, g.levels = 3; break;
    case 5: g.mode = 0, g.levels = 3; break;
    case 6: g.mode = 1, g.levels = 4; break;
    case 7: g.mode = 0, g.levels = 4; break;
    default: g.mode = 3, g.levels = 0; break;
    }
    if (as)
        fprintf(as, "# random encodings: %u%% extra; mode %c%s\n", g.random_pct, "US?M"[g.mode],
                g.levels == 3   ? " Sv39"
                : g.levels == 4 ? " Sv48"
                                : "");
    size_t trap_fix;
    emit_prologue(&g, &trap_fix);
    /* Jump over the routines. */
    size_t skip = g.len;
    e32(&g, enc_j(0, ZERO), "j .Lmain");
    size_t putc_at, hex_at, dump_at, trap_at;
    if (g.as)
        fprintf(g.as, ".Lputc:\n");
    emit_putc_routine(&g, &putc_at);
    if (g.as)
        fprintf(g.as, ".Lhex:\n");
    emit_hex_routine(&g, putc_at, &hex_at);
    if (g.as)
        fprintf(g.as, ".Ldump:\n");
    emit_dump_routine(&g, hex_at, &dump_at);
    emit_trap_routine(&g, hex_at, &trap_at);
    {
        int32_t off = (int32_t)(g.len - skip);
        uint32_t j = enc_j(off, ZERO);
        for (int i = 0; i < 4; i++)
            code[skip + i] = (uint8_t)(j >> (8 * i));
        if (g.as)
            fprintf(g.as, ".Lmain:\n");
    }
    {
        int32_t off = (int32_t)(trap_at - trap_fix);
        int32_t lo = sext12(off);
        uint32_t hi = (uint32_t)((off - lo) >> 12) & 0xfffff;
        uint32_t a = enc_u(hi, T0, 0x17), b = enc_i(lo, T0, 0, T0, 0x13);
        for (int i = 0; i < 4; i++) {
            code[trap_fix + i] = (uint8_t)(a >> (8 * i));
            code[trap_fix + 4 + i] = (uint8_t)(b >> (8 * i));
        }
        if (g.as)
            fprintf(g.as, ".set .LTF1, 0x%08x\n.set .LTF2, 0x%08x\n", a, b);
    }
    for (unsigned s = 0; s < segments && !g.fail; s++) {
        gen_block(&g, insns);
        emit_dump(&g, s, dump_at);
    }
    emit_exit(&g, 0x5555);
    if (g.fail)
        return -ENOSPC;
    if (g.mode != 3)
        build_page_tables(&g, data, g.len);
    *code_len = g.len;
    *entry = CODE_BASE;
    return 0;
}

#include "rvfuzz_io.h"

/* ---- main ------------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr, "usage: rvfuzz gen SEED OUT.elf [-n INSNS] [-s SEGMENTS] [-a OUT.S]\n"
                    "       rvfuzz batch DIR FIRST_SEED COUNT [-n INSNS] [-s SEGMENTS]\n"
                    "       rvfuzz cmp EXPECTED ACTUAL\n");
    return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (!strcmp(argv[1], "cmp")) {
        if (argc != 4)
            return usage();
        return cmp_outputs(argv[2], argv[3]);
    }
    bool batch = !strcmp(argv[1], "batch");
    if (!batch && strcmp(argv[1], "gen"))
        return usage();
    int npos = batch ? 3 : 2;
    if (argc < 2 + npos)
        return usage();
    uint64_t insns = 150, segments = 4, count = 1, seed;
    const char *asm_out = NULL;
    for (int i = 2 + npos; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc) {
            if (parse_u64(argv[++i], &insns) || insns < 1 || insns > 20000)
                return usage();
        } else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
            if (parse_u64(argv[++i], &segments) || segments < 1 || segments > 64)
                return usage();
        } else if (!strcmp(argv[i], "-a") && i + 1 < argc && !batch) {
            asm_out = argv[++i];
        } else {
            return usage();
        }
    }
    if (batch) {
        if (parse_u64(argv[3], &seed) || parse_u64(argv[4], &count))
            return usage();
        for (uint64_t i = 0; i < count; i++) {
            char path[4096];
            snprintf(path, sizeof(path), "%s/case-%" PRIu64 ".elf", argv[2], seed + i);
            int r = gen_one(seed + i, path, NULL, (unsigned)insns, (unsigned)segments);
            if (r) {
                fprintf(stderr, "rvfuzz: %s: %s\n", path, strerror(-r));
                return 1;
            }
        }
        return 0;
    }
    if (parse_u64(argv[2], &seed))
        return usage();
    int r = gen_one(seed, argv[3], asm_out, (unsigned)insns, (unsigned)segments);
    if (r) {
        fprintf(stderr, "rvfuzz: %s: %s\n", argv[3], strerror(-r));
        return 1;
    }
    return 0;
}
