/*
 * Helpers for the hart unit tests: a tiny RV64 assembler (encoders), a test
 * machine (16 MiB of RAM at 0x8000_0000, a scratch MMIO window, a fake
 * clock), and a check macro that prints one line per check.
 *
 * Convention: programs are emitted at RAM base; the M-mode trap vector
 * (HT_TRAP) holds "j .", so after any trap ht_run() returns RV_EXIT_BUDGET
 * with the hart spinning there, and the test inspects the CSRs through
 * hart_int.h.
 */
#ifndef GODWIT_TESTS_HART_TEST_H
#define GODWIT_TESTS_HART_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hart/hart_int.h"

static int ht_failed, ht_passed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            ht_passed++;                                                                           \
            printf("ok   ");                                                                       \
        } else {                                                                                   \
            ht_failed++;                                                                           \
            printf("FAIL ");                                                                       \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("  (%s:%d)\n", __FILE__, __LINE__);                                                 \
    } while (0)

#define CHECK_EQ(a, b, what)                                                                       \
    do {                                                                                           \
        uint64_t a_ = (uint64_t)(a), b_ = (uint64_t)(b);                                           \
        CHECK(a_ == b_, "%s: 0x%" PRIx64 " == 0x%" PRIx64, what, a_, b_);                          \
    } while (0)

enum { HT_RAM = 0x80000000u, HT_RAM_SIZE = 16u << 20, HT_TRAP = 0x80100000u };
enum { HT_MMIO = 0x10000000u, HT_MMIO_SIZE = 0x1000 };

struct ht {
    struct gmem *mem;
    struct rv_hart *h;
    uint64_t pc; /* next emit address */
    uint64_t mmio[HT_MMIO_SIZE / 8];
    unsigned mmio_writes;
    uint64_t time;
};

static inline int ht_mmio_read(void *opaque, uint64_t pa, unsigned size, uint64_t *val)
{
    struct ht *t = opaque;
    uint64_t v;

    if (pa < HT_MMIO || pa + size > HT_MMIO + HT_MMIO_SIZE)
        return -1;
    v = t->mmio[(pa - HT_MMIO) / 8] >> (8 * ((pa - HT_MMIO) % 8));
    *val = size == 8 ? v : v & ((1ull << (8 * size)) - 1);
    return 0;
}

static inline int ht_mmio_write(void *opaque, uint64_t pa, unsigned size, uint64_t val)
{
    struct ht *t = opaque;
    uint64_t *w, mask;
    unsigned sh;

    if (pa < HT_MMIO || pa + size > HT_MMIO + HT_MMIO_SIZE)
        return -1;
    w = &t->mmio[(pa - HT_MMIO) / 8];
    sh = 8 * ((pa - HT_MMIO) % 8);
    mask = size == 8 ? ~0ull : ((1ull << (8 * size)) - 1);
    *w = (*w & ~(mask << sh)) | ((val & mask) << sh);
    t->mmio_writes++;
    return 0;
}

static inline uint64_t ht_time(void *opaque)
{
    struct ht *t = opaque;
    return t->time += 10;
}

static inline void ht_put32(struct ht *t, uint64_t pa, uint32_t v)
{
    if (gmem_write(t->mem, pa, &v, 4))
        abort();
}

static inline void ht_put16(struct ht *t, uint64_t pa, uint16_t v)
{
    if (gmem_write(t->mem, pa, &v, 2))
        abort();
}

static inline void ht_put64(struct ht *t, uint64_t pa, uint64_t v)
{
    if (gmem_write(t->mem, pa, &v, 8))
        abort();
}

static inline uint64_t ht_get64(struct ht *t, uint64_t pa)
{
    uint64_t v = 0;
    if (gmem_read(t->mem, pa, &v, 8))
        abort();
    return v;
}

static inline void emit(struct ht *t, uint32_t insn)
{
    ht_put32(t, t->pc, insn);
    t->pc += 4;
}

static inline void emit16(struct ht *t, uint16_t insn)
{
    ht_put16(t, t->pc, insn);
    t->pc += 2;
}

/* ---- encoders -------------------------------------------------------------- */

static inline uint32_t enc_r(unsigned f7, unsigned rs2, unsigned rs1, unsigned f3, unsigned rd,
                             unsigned op)
{
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}

static inline uint32_t enc_i(int32_t imm, unsigned rs1, unsigned f3, unsigned rd, unsigned op)
{
    return ((uint32_t)imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}

static inline uint32_t enc_s(int32_t imm, unsigned rs2, unsigned rs1, unsigned f3, unsigned op)
{
    uint32_t u = (uint32_t)imm;
    return ((u >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | (u & 31) << 7 | op;
}

static inline uint32_t enc_b(int32_t off, unsigned rs2, unsigned rs1, unsigned f3)
{
    uint32_t u = (uint32_t)off;
    return ((u >> 12) & 1) << 31 | ((u >> 5) & 0x3f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
           ((u >> 1) & 0xf) << 8 | ((u >> 11) & 1) << 7 | 0x63;
}

static inline uint32_t enc_j(int32_t off, unsigned rd)
{
    uint32_t u = (uint32_t)off;
    return ((u >> 20) & 1) << 31 | ((u >> 1) & 0x3ff) << 21 | ((u >> 11) & 1) << 20 |
           ((u >> 12) & 0xff) << 12 | rd << 7 | 0x6f;
}

#define ADDI(rd, rs1, imm)        enc_i(imm, rs1, 0, rd, 0x13)
#define ADDIW(rd, rs1, imm)       enc_i(imm, rs1, 0, rd, 0x1b)
#define SLLI(rd, rs1, sh)         enc_i(sh, rs1, 1, rd, 0x13)
#define ORI(rd, rs1, imm)         enc_i(imm, rs1, 6, rd, 0x13)
#define ADD(rd, a, b)             enc_r(0, b, a, 0, rd, 0x33)
#define SUB(rd, a, b)             enc_r(0x20, b, a, 0, rd, 0x33)
#define MUL(rd, a, b)             enc_r(1, b, a, 0, rd, 0x33)
#define MULH(rd, a, b)            enc_r(1, b, a, 1, rd, 0x33)
#define DIV(rd, a, b)             enc_r(1, b, a, 4, rd, 0x33)
#define DIVU(rd, a, b)            enc_r(1, b, a, 5, rd, 0x33)
#define REM(rd, a, b)             enc_r(1, b, a, 6, rd, 0x33)
#define DIVW(rd, a, b)            enc_r(1, b, a, 4, rd, 0x3b)
#define SRA(rd, a, b)             enc_r(0x20, b, a, 5, rd, 0x33)
#define SLT(rd, a, b)             enc_r(0, b, a, 2, rd, 0x33)
#define SLTU(rd, a, b)            enc_r(0, b, a, 3, rd, 0x33)
#define LUI(rd, imm20)            ((uint32_t)(imm20) << 12 | (rd) << 7 | 0x37)
#define AUIPC(rd, imm20)          ((uint32_t)(imm20) << 12 | (rd) << 7 | 0x17)
#define LB(rd, rs1, imm)          enc_i(imm, rs1, 0, rd, 0x03)
#define LH(rd, rs1, imm)          enc_i(imm, rs1, 1, rd, 0x03)
#define LW(rd, rs1, imm)          enc_i(imm, rs1, 2, rd, 0x03)
#define LD(rd, rs1, imm)          enc_i(imm, rs1, 3, rd, 0x03)
#define LBU(rd, rs1, imm)         enc_i(imm, rs1, 4, rd, 0x03)
#define LWU(rd, rs1, imm)         enc_i(imm, rs1, 6, rd, 0x03)
#define SB(rs2, rs1, imm)         enc_s(imm, rs2, rs1, 0, 0x23)
#define SH(rs2, rs1, imm)         enc_s(imm, rs2, rs1, 1, 0x23)
#define SW(rs2, rs1, imm)         enc_s(imm, rs2, rs1, 2, 0x23)
#define SD(rs2, rs1, imm)         enc_s(imm, rs2, rs1, 3, 0x23)
#define BEQ(a, b, off)            enc_b(off, b, a, 0)
#define BNE(a, b, off)            enc_b(off, b, a, 1)
#define BLT(a, b, off)            enc_b(off, b, a, 4)
#define JAL(rd, off)              enc_j(off, rd)
#define JALR(rd, rs1, imm)        enc_i(imm, rs1, 0, rd, 0x67)
#define ECALL                     0x00000073u
#define EBREAK                    0x00100073u
#define MRET                      0x30200073u
#define SRET                      0x10200073u
#define WFI                       0x10500073u
#define FENCE_I                   0x0000100fu
#define SFENCE_VMA(a, b)          enc_r(0x09, b, a, 0, 0, 0x73)
#define CSRRW(rd, csr, rs1)       enc_i(csr, rs1, 1, rd, 0x73)
#define CSRRS(rd, csr, rs1)       enc_i(csr, rs1, 2, rd, 0x73)
#define CSRRC(rd, csr, rs1)       enc_i(csr, rs1, 3, rd, 0x73)
#define CSRRWI(rd, csr, im)       enc_i(csr, im, 5, rd, 0x73)
#define CSRRSI(rd, csr, im)       enc_i(csr, im, 6, rd, 0x73)
#define CSRR(rd, csr)             CSRRS(rd, csr, 0)
#define CSRW(csr, rs1)            CSRRW(0, csr, rs1)
#define AMO(f5, rd, rs1, rs2, dw) enc_r((f5) << 2, rs2, rs1, (dw) ? 3 : 2, rd, 0x2f)
#define LR_W(rd, rs1)             AMO(0x02, rd, rs1, 0, 0)
#define SC_W(rd, rs1, rs2)        AMO(0x03, rd, rs1, rs2, 0)
#define LR_D(rd, rs1)             AMO(0x02, rd, rs1, 0, 1)
#define SC_D(rd, rs1, rs2)        AMO(0x03, rd, rs1, rs2, 1)
#define AMOADD_W(rd, rs1, rs2)    AMO(0x00, rd, rs1, rs2, 0)
#define AMOSWAP_D(rd, rs1, rs2)   AMO(0x01, rd, rs1, rs2, 1)
#define AMOMAX_W(rd, rs1, rs2)    AMO(0x14, rd, rs1, rs2, 0)
#define FLD(rd, rs1, imm)         enc_i(imm, rs1, 3, rd, 0x07)
#define FSD(rs2, rs1, imm)        enc_s(imm, rs2, rs1, 3, 0x27)
#define FLW(rd, rs1, imm)         enc_i(imm, rs1, 2, rd, 0x07)
#define FADD_D(rd, a, b, rm)      enc_r(0x01, b, a, rm, rd, 0x53)
#define FADD_S(rd, a, b, rm)      enc_r(0x00, b, a, rm, rd, 0x53)
#define FMV_D_X(rd, rs1)          enc_r(0x79, 0, rs1, 0, rd, 0x53)
#define FMV_X_D(rd, rs1)          enc_r(0x71, 0, rs1, 0, rd, 0x53)
#define FMV_X_W(rd, rs1)          enc_r(0x70, 0, rs1, 0, rd, 0x53)
#define FCVT_D_L(rd, rs1)         enc_r(0x69, 2, rs1, 7, rd, 0x53)

/* CSR numbers used by the tests */
enum {
    C_SSTATUS = 0x100,
    C_SIE = 0x104,
    C_STVEC = 0x105,
    C_SEPC = 0x141,
    C_SCAUSE = 0x142,
    C_STVAL = 0x143,
    C_SIP = 0x144,
    C_SATP = 0x180,
    C_MSTATUS = 0x300,
    C_MISA = 0x301,
    C_MEDELEG = 0x302,
    C_MIDELEG = 0x303,
    C_MIE = 0x304,
    C_MTVEC = 0x305,
    C_MCOUNTEREN = 0x306,
    C_MSCRATCH = 0x340,
    C_MEPC = 0x341,
    C_MCAUSE = 0x342,
    C_MTVAL = 0x343,
    C_MIP = 0x344,
    C_PMPCFG0 = 0x3a0,
    C_PMPADDR0 = 0x3b0,
    C_CYCLE = 0xc00,
    C_TIME = 0xc01,
    C_INSTRET = 0xc02,
    C_MINSTRET = 0xb02,
    C_MHARTID = 0xf14,
    C_MVENDORID = 0xf11,
    C_FCSR = 0x003,
    C_FRM = 0x002,
    C_FFLAGS = 0x001,
};

/* Load a 64-bit constant into rd (clobbers nothing else). */
static inline void li(struct ht *t, unsigned rd, uint64_t v)
{
    int64_t s = (int64_t)v;
    if (s >= -2048 && s < 2048) {
        emit(t, ADDI(rd, 0, (int32_t)s));
        return;
    }
    if (s >= INT32_MIN && s <= INT32_MAX) {
        int32_t lo = (int32_t)((uint32_t)v << 20) >> 20;
        uint32_t hi = (uint32_t)((s - lo) >> 12) & 0xfffff;
        emit(t, LUI(rd, hi));
        if (lo)
            emit(t, ADDIW(rd, rd, lo));
        return;
    }
    /* generic: build from the top in 11-bit chunks */
    li(t, rd, (uint64_t)(s >> 33));
    emit(t, SLLI(rd, rd, 11));
    emit(t, ORI(rd, rd, (int32_t)((v >> 22) & 0x7ff)));
    emit(t, SLLI(rd, rd, 11));
    emit(t, ORI(rd, rd, (int32_t)((v >> 11) & 0x7ff)));
    emit(t, SLLI(rd, rd, 11));
    emit(t, ORI(rd, rd, (int32_t)(v & 0x7ff)));
}

static inline void ht_init(struct ht *t)
{
    struct rv_hart_config cfg = {.hartid = 0, .pmp_entries = 16};
    struct rv_hart_env env;

    memset(t, 0, sizeof(*t));
    t->mem = gmem_new(HT_RAM, HT_RAM_SIZE);
    if (!t->mem)
        abort();
    env = (struct rv_hart_env){.mem = t->mem,
                               .opaque = t,
                               .mmio_read = ht_mmio_read,
                               .mmio_write = ht_mmio_write,
                               .read_time = ht_time};
    t->h = rv_hart_new(&cfg, &env);
    if (!t->h)
        abort();
    rv_hart_reset(t->h, HT_RAM);
    t->h->mtvec = HT_TRAP;
    ht_put32(t, HT_TRAP, JAL(0, 0));
    t->pc = HT_RAM;
}

static inline void ht_fini(struct ht *t)
{
    rv_hart_free(t->h);
    gmem_free(t->mem);
}

/* Run until the hart spins in a trap handler (or stops for another reason). */
static inline int ht_run(struct ht *t)
{
    return rv_hart_run(t->h, 100000);
}

/* Full-access PMP entry 0 (so M can enter S/U, as OpenSBI does). */
static inline void ht_pmp_open(struct ht *t)
{
    t->h->pmpaddr[0] = UINT64_MAX >> 10;
    t->h->pmpcfg[0] = 0x1f; /* NAPOT RWX */
    rv_pmp_changed(t->h);
}

/* Switch to privilege p at the next emitted instruction via MRET. */
static inline void ht_enter(struct ht *t, unsigned p)
{
    uint64_t target = t->pc + 4 * 4 + 12 * 4; /* after the sequence below (padded) */
    uint64_t start = t->pc;
    li(t, 5, target);
    emit(t, CSRW(C_MEPC, 5));
    li(t, 5, 3ull << 11);
    emit(t, CSRRC(0, C_MSTATUS, 5));
    li(t, 5, (uint64_t)p << 11);
    emit(t, CSRRS(0, C_MSTATUS, 5));
    emit(t, MRET);
    while (t->pc < target)
        emit(t, ADDI(0, 0, 0));
    if (t->pc != target || start + 64 != target)
        abort();
}

static inline int ht_summary(void)
{
    printf("%d passed, %d failed\n", ht_passed, ht_failed);
    return ht_failed ? 1 : 0;
}

#endif
