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

#include "rvfuzz_gen.h"

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
