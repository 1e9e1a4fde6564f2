/*
 * The interpreter's inner loop: executes pre-decoded blocks with direct-
 * threaded computed-goto dispatch (each insn holds its handler's address) until the instruction
 * limit is reached or something needs the outer loop (interrupt/exit signal, dirty-bitmap
 * collection, WFI, fatal).
 *
 * Conventions inside rv_exec():
 *  - vpc is the guest virtual pc of the block's first instruction; the pc of
 *    the current instruction is vpc + ins->pcoff (PC).
 *  - the retired-instruction count lives in a local (icount) and is added to
 *    only when leaving a block: instructions from bstart up to (not
 *    including) ins have retired.  Ops that call helpers which may read
 *    instret first "settle" it (SETTLE) into h->instret, so bstart == ins.
 *  - h->pc is valid only at next_block and in helpers; direct jumps and taken
 *    branches to the same page follow ins->chain to the next block without
 *    a lookup (GOTO_STATIC), after the same interrupt/budget checks.
 *  - loads/stores try the current data TLB inline (one compare: the tag also
 *    encodes alignment), and fall back to mmu.c.
 */
#include "hart/fpu.h"
#include "hart/hart_int.h"
#include "hart/ops.h"

#define PC     (vpc + ins->pcoff)
#define NEXT   goto *(++ins)->handler
#define SETTLE (icount += (uint64_t)(ins - bstart), bstart = ins, h->instret = icount)
#define JUMP(target, nret)                                                                         \
    do {                                                                                           \
        h->pc = (target);                                                                          \
        icount += (uint64_t)(ins - bstart) + (nret);                                               \
        goto next_block;                                                                           \
    } while (0)
/* Nothing asks the inner loop to stop: budget left, no signal, and the write
 * TLB still belongs to the current dirty-bitmap generation.  Checked when
 * icount reaches poll, i.e. at most every RV_POLL_INSNS instructions, and at
 * once after an instruction that may have enabled an interrupt (poll = 0). */
#define MAY_CONTINUE                                                                               \
    (gw_likely(icount < limit) &&                                                                  \
     gw_likely(!atomic_load_explicit(&h->signal, memory_order_relaxed)) &&                         \
     gw_likely(h->dirty_gen == atomic_load_explicit(&mem->dirty_gen, memory_order_relaxed)))
#define RV_POLL_INSNS 512
/* Transfer to a static target (direct jump, taken branch, block end). */
#define GOTO_STATIC(target, nret)                                                                  \
    do {                                                                                           \
        uint64_t t_ = (target);                                                                    \
        struct rv_block *nb_ = ins->chain;                                                         \
        icount += (uint64_t)(ins - bstart) + (nret);                                               \
        if (gw_likely(nb_ != NULL) && gw_likely(nb_->valid) && gw_likely(icount < poll)) {         \
            vpc = t_;                                                                              \
            b = nb_;                                                                               \
            ins = bstart = nb_->insns;                                                             \
            goto * ins->handler;                                                                   \
        }                                                                                          \
        h->pc = t_;                                                                                \
        if (ins->chainable) {                                                                      \
            chain_ins = ins;                                                                       \
            chain_gen = h->flush_gen;                                                              \
        }                                                                                          \
        goto next_block;                                                                           \
    } while (0)

#define TLB_IDX(va) (((va) >> 12) & (RV_TLB_SIZE - 1))
/* The entry for the page of va matches only if the last byte is in the same
 * page: misaligned accesses inside a page stay on the fast path (x86/arm64
 * hosts do unaligned loads); page-crossing ones go to mmu.c. */
#define TLB_TAG(va, size) (((va) + (size)-1) & RV_PAGE_MASK)

#define LOAD_OP(name, type)                                                                        \
    op_##name:                                                                                     \
    {                                                                                              \
        uint64_t va = x[ins->rs1] + (uint64_t)(int64_t)ins->imm;                                   \
        const struct rv_tlb_entry *e = &h->dtlb->r.e[TLB_IDX(va)];                                 \
        type v;                                                                                    \
        if (gw_likely(e->tag == TLB_TAG(va, sizeof(type)))) {                                      \
            memcpy(&v, (const void *)(uintptr_t)(va + e->addend), sizeof(type));                   \
        } else {                                                                                   \
            uint64_t t;                                                                            \
            if (rv_load_slow(h, va, sizeof(type), &t))                                             \
                goto mem_fault;                                                                    \
            v = (type)t;                                                                           \
        }                                                                                          \
        x[ins->rd] = (uint64_t)(int64_t)v;                                                         \
        NEXT;                                                                                      \
    }

#define STORE_OP(name, type)                                                                       \
    op_##name:                                                                                     \
    {                                                                                              \
        uint64_t va = x[ins->rs1] + (uint64_t)(int64_t)ins->imm;                                   \
        const struct rv_tlb_entry *e = &h->dtlb->w.e[TLB_IDX(va)];                                 \
        type v = (type)x[ins->rs2];                                                                \
        if (gw_likely(e->tag == TLB_TAG(va, sizeof(type)))) {                                      \
            memcpy((void *)(uintptr_t)(va + e->addend), &v, sizeof(type));                         \
            NEXT;                                                                                  \
        }                                                                                          \
        int r_ = rv_store_slow(h, va, sizeof(type), (uint64_t)v);                                  \
        if (r_ < 0)                                                                                \
            goto mem_fault;                                                                        \
        if (r_ > 0) /* wrote decoded code: leave the (possibly stale) block */                     \
            JUMP(PC + ins->len, 1);                                                                \
        NEXT;                                                                                      \
    }

#define BRANCH_OP(name, cond)                                                                      \
    op_##name : if (cond) GOTO_STATIC(PC + (uint64_t)(int64_t)ins->imm, 1);                        \
    NEXT;

#define ALU_OP(name, expr)                                                                         \
    op_##name : x[ins->rd] = (expr);                                                               \
    NEXT;

#define RS1     x[ins->rs1]
#define RS2     x[ins->rs2]
#define IMM     ((uint64_t)(int64_t)ins->imm)
#define SX32(v) ((uint64_t)(int64_t)(int32_t)(uint32_t)(v))

static inline uint64_t mulh(uint64_t a, uint64_t b)
{
    return (uint64_t)(((__int128)(int64_t)a * (__int128)(int64_t)b) >> 64);
}

static inline uint64_t mulhsu(uint64_t a, uint64_t b)
{
    return (uint64_t)(((__int128)(int64_t)a * (__int128)b) >> 64);
}

static inline uint64_t mulhu(uint64_t a, uint64_t b)
{
    return (uint64_t)(((unsigned __int128)a * b) >> 64);
}

/* M extension division corner cases: unpriv spec §7.2 table 7.1 */
static inline uint64_t div64(uint64_t a, uint64_t b)
{
    if (b == 0)
        return UINT64_MAX;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1)
        return a;
    return (uint64_t)((int64_t)a / (int64_t)b);
}

static inline uint64_t rem64(uint64_t a, uint64_t b)
{
    if (b == 0)
        return a;
    if ((int64_t)a == INT64_MIN && (int64_t)b == -1)
        return 0;
    return (uint64_t)((int64_t)a % (int64_t)b);
}

static inline uint64_t divw(uint64_t a, uint64_t b)
{
    int32_t x = (int32_t)a, y = (int32_t)b;
    if (y == 0)
        return UINT64_MAX;
    if (x == INT32_MIN && y == -1)
        return SX32(x);
    return SX32(x / y);
}

static inline uint64_t remw(uint64_t a, uint64_t b)
{
    int32_t x = (int32_t)a, y = (int32_t)b;
    if (y == 0)
        return SX32(x);
    if (x == INT32_MIN && y == -1)
        return 0;
    return SX32(x % y);
}

static inline uint64_t divuw(uint64_t a, uint64_t b)
{
    return (uint32_t)b == 0 ? UINT64_MAX : SX32((uint32_t)a / (uint32_t)b);
}

static inline uint64_t remuw(uint64_t a, uint64_t b)
{
    return (uint32_t)b == 0 ? SX32(a) : SX32((uint32_t)a % (uint32_t)b);
}

/* ---- F/D fast paths (the rest is in exec_fp.c) ------------------------------ */

/* A single in a 64-bit register is valid only when NaN-boxed (§12.2). */
static inline uint32_t unbox32(uint64_t v)
{
    return (v >> 32) == 0xffffffffu ? (uint32_t)v : RV_F32_CANON_NAN;
}

#define BOX32(v) (0xffffffff00000000ull | (uint32_t)(v))
#define SIGN64   (1ull << 63)
#define SIGN32   0x80000000u
#define FS1      h->f[ins->rs1]
#define FS2      h->f[ins->rs2]
#define FS3      h->f[ins->rs3]
#define FP_ON                                                                                      \
    if (gw_unlikely(rv_fs_off(h)))                                                                 \
    goto illegal
/* resolve the rounding mode into rm_; a dynamic mode needs a valid frm */
#define FP_RM                                                                                      \
    int rm_ = ins->rm;                                                                             \
    if (rm_ == 7)                                                                                  \
        rm_ = (int)h->frm;                                                                         \
    if (gw_unlikely(rm_ > 4))                                                                      \
    goto illegal
/* f[rd] = expr (using rm_ and fl_), accrue flags, FS dirty */
#define FP_TO_F(name, expr)                                                                        \
    op_##name:                                                                                     \
    {                                                                                              \
        FP_ON;                                                                                     \
        FP_RM;                                                                                     \
        unsigned fl_ = h->fflags;                                                                  \
        h->f[ins->rd] = (expr);                                                                    \
        h->fflags = fl_;                                                                           \
        rv_fs_dirty(h);                                                                            \
        NEXT;                                                                                      \
    }
/* x[rd] = expr; FS becomes dirty only if the flags changed */
#define FP_TO_X(name, expr)                                                                        \
    op_##name:                                                                                     \
    {                                                                                              \
        FP_ON;                                                                                     \
        FP_RM;                                                                                     \
        unsigned fl_ = h->fflags;                                                                  \
        x[ins->rd] = (expr);                                                                       \
        if (fl_ != h->fflags) {                                                                    \
            h->fflags = fl_;                                                                       \
            rv_fs_dirty(h);                                                                        \
        }                                                                                          \
        NEXT;                                                                                      \
    }

/* Keep one indirect jump per handler: GCC would otherwise merge the
 * identical dispatch tails, which ruins branch prediction. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-crossjumping", "no-tree-tail-merge")))
#endif
int rv_exec(struct rv_hart *h, uint64_t limit)
{
#define RV_LABEL(name)         [RV_OP_##name] = &&op_##name,
#define RV_FP_LABEL_0(name)    [RV_OP_##name] = &&op_fp,
#define RV_FP_LABEL_1(name)    [RV_OP_##name] = &&op_##name,
#define RV_FP_LABEL(name, hot) RV_FP_LABEL_##hot(name)
    static const void *const disp[RV_OP_COUNT] = {RV_INT_OPS(RV_LABEL) RV_FP_OPS(RV_FP_LABEL)};
#undef RV_LABEL
#undef RV_FP_LABEL_0
#undef RV_FP_LABEL_1
#undef RV_FP_LABEL
    uint64_t *const x = h->x;
    struct gmem *const mem = h->mem;
    struct rv_block *b;
    struct rv_insn *ins, *bstart, *chain_ins = NULL;
    uint64_t vpc, icount = h->instret, chain_gen = 0, poll = 0;

    h->disp = disp; /* translate_block() stores handler addresses in the insns */
next_block:
    if (gw_unlikely(icount >= poll)) {
        if (!MAY_CONTINUE) {
            h->instret = icount;
            return RV_EXEC_YIELD;
        }
        poll = limit - icount > RV_POLL_INSNS ? icount + RV_POLL_INSNS : limit;
    }
    vpc = h->pc;
    {
        const struct rv_jc_entry *je = &h->jc->e[(vpc >> 1) & (RV_JC_SIZE - 1)];
        if (gw_likely(je->pc == vpc) && gw_likely(je->blk->valid)) {
            b = je->blk;
        } else {
            b = rv_block_find(h, vpc);
            if (!b) {
                chain_ins = NULL;
                if (h->fatal) {
                    h->instret = icount;
                    return RV_EXEC_FATAL;
                }
                goto next_block; /* fetch fault: pc is now the trap handler */
            }
        }
    }
    if (chain_ins) {
        /* the previous block's static exit leads here: link it, unless the
         * cache was flushed meanwhile (chain_ins would be dead memory) */
        if (chain_gen == h->flush_gen && !b->cross)
            chain_ins->chain = b;
        chain_ins = NULL;
    }
    ins = bstart = b->insns;
    goto * ins->handler;

op_ILLEGAL:
    goto illegal;
op_NEXT:
    GOTO_STATIC(PC, 0);
op_NOP:
    NEXT;
    ALU_OP(LUI, IMM)
    ALU_OP(AUIPC, PC + IMM)
op_JAL : {
    uint64_t pc = PC;
    x[ins->rd] = pc + ins->len;
    GOTO_STATIC(pc + IMM, 1);
}
op_JALR : {
    uint64_t pc = PC, t = (RS1 + IMM) & ~(uint64_t)1;
    x[ins->rd] = pc + ins->len;
    JUMP(t, 1);
}
    BRANCH_OP(BEQ, RS1 == RS2)
    BRANCH_OP(BNE, RS1 != RS2)
    BRANCH_OP(BLT, (int64_t)RS1 < (int64_t)RS2)
    BRANCH_OP(BGE, (int64_t)RS1 >= (int64_t)RS2)
    BRANCH_OP(BLTU, RS1 < RS2)
    BRANCH_OP(BGEU, RS1 >= RS2)

    LOAD_OP(LB, int8_t)
    LOAD_OP(LH, int16_t)
    LOAD_OP(LW, int32_t)
    LOAD_OP(LD, uint64_t)
    LOAD_OP(LBU, uint8_t)
    LOAD_OP(LHU, uint16_t)
    LOAD_OP(LWU, uint32_t)
    STORE_OP(SB, uint8_t)
    STORE_OP(SH, uint16_t)
    STORE_OP(SW, uint32_t)
    STORE_OP(SD, uint64_t)

    ALU_OP(ADDI, RS1 + IMM)
    ALU_OP(SLTI, (int64_t)RS1 < (int64_t)IMM)
    ALU_OP(SLTIU, RS1 < IMM)
    ALU_OP(XORI, RS1 ^ IMM)
    ALU_OP(ORI, RS1 | IMM)
    ALU_OP(ANDI, RS1 & IMM)
    ALU_OP(SLLI, RS1 << ins->imm)
    ALU_OP(SRLI, RS1 >> ins->imm)
    ALU_OP(SRAI, (uint64_t)((int64_t)RS1 >> ins->imm))
    ALU_OP(ADD, RS1 + RS2)
    ALU_OP(SUB, RS1 - RS2)
    ALU_OP(SLL, RS1 << (RS2 & 63))
    ALU_OP(SLT, (int64_t)RS1 < (int64_t)RS2)
    ALU_OP(SLTU, RS1 < RS2)
    ALU_OP(XOR, RS1 ^ RS2)
    ALU_OP(SRL, RS1 >> (RS2 & 63))
    ALU_OP(SRA, (uint64_t)((int64_t)RS1 >> (RS2 & 63)))
    ALU_OP(OR, RS1 | RS2)
    ALU_OP(AND, RS1 & RS2)
    ALU_OP(ADDIW, SX32(RS1 + IMM))
    ALU_OP(SLLIW, SX32((uint32_t)RS1 << ins->imm))
    ALU_OP(SRLIW, SX32((uint32_t)RS1 >> ins->imm))
    ALU_OP(SRAIW, SX32((int32_t)RS1 >> ins->imm))
    ALU_OP(ADDW, SX32(RS1 + RS2))
    ALU_OP(SUBW, SX32(RS1 - RS2))
    ALU_OP(SLLW, SX32((uint32_t)RS1 << (RS2 & 31)))
    ALU_OP(SRLW, SX32((uint32_t)RS1 >> (RS2 & 31)))
    ALU_OP(SRAW, SX32((int32_t)RS1 >> (RS2 & 31)))
    ALU_OP(MUL, RS1 * RS2)
    ALU_OP(MULH, mulh(RS1, RS2))
    ALU_OP(MULHSU, mulhsu(RS1, RS2))
    ALU_OP(MULHU, mulhu(RS1, RS2))
    ALU_OP(DIV, div64(RS1, RS2))
    ALU_OP(DIVU, RS2 ? RS1 / RS2 : UINT64_MAX)
    ALU_OP(REM, rem64(RS1, RS2))
    ALU_OP(REMU, RS2 ? RS1 % RS2 : RS1)
    ALU_OP(MULW, SX32(RS1 * RS2))
    ALU_OP(DIVW, divw(RS1, RS2))
    ALU_OP(DIVUW, divuw(RS1, RS2))
    ALU_OP(REMW, remw(RS1, RS2))
    ALU_OP(REMUW, remuw(RS1, RS2))

op_FENCE_I : {
    uint64_t next = PC + ins->len;
    SETTLE;
    rv_fence_i(h);
    JUMP(next, 1);
}
op_ECALL:
    SETTLE;
    rv_raise(h,
             h->priv == RV_PRV_U   ? RV_EXC_ECALL_U
             : h->priv == RV_PRV_S ? RV_EXC_ECALL_S
                                   : RV_EXC_ECALL_M,
             0, PC);
    goto next_block;
op_EBREAK:
    SETTLE;
    rv_raise(h, RV_EXC_BREAKPOINT, 0, PC); /* QEMU 7.2 leaves tval 0 */
    goto next_block;
op_MRET:
    SETTLE;
    if (rv_mret(h))
        goto illegal;
    poll = 0; /* may have enabled an interrupt: look at once */
    icount++;
    goto next_block;
op_SRET:
    SETTLE;
    if (rv_sret(h))
        goto illegal;
    poll = 0; /* may have enabled an interrupt: look at once */
    icount++;
    goto next_block;
op_WFI:
    /* priv spec §3.3.3; like QEMU 7.2, WFI in U-mode is always illegal (S
     * exists) and in S-mode illegal when TW=1, without a time limit. */
    if (h->priv == RV_PRV_U || (h->priv == RV_PRV_S && (h->mstatus & MSTATUS_TW)))
        goto illegal;
    h->pc = PC + ins->len;
    icount += (uint64_t)(ins - bstart) + 1;
    /* Return to the board even when an enabled interrupt is already
     * pending (WFI then completes at once, spec-wise): a hart polling in a
     * WFI loop with interrupts masked (OpenSBI 1.1's secondary harts sit in
     * sbi_hsm_hart_wait with a stale MSIP, as on QEMU) gives up the rest of
     * its slice instead of spinning through it, and the board runs it again
     * right away since rv_hart_irq_pending() is true. */
    h->instret = icount;
    return RV_EXEC_WFI;
op_SFENCE_VMA:
    if (h->priv == RV_PRV_U || (h->priv == RV_PRV_S && (h->mstatus & MSTATUS_TVM)))
        goto illegal;
    if (ins->rs1)
        rv_tlb_flush_page(h, x[ins->rs1]);
    else
        rv_tlb_flush(h);
    JUMP(PC + ins->len, 1);
op_CSR:
    SETTLE;
    if (rv_csr_insn(h, ins, ins->rm))
        goto illegal;
    poll = 0; /* may have enabled an interrupt: look at once */
    JUMP(PC + ins->len, 1);
op_AMO : {
    SETTLE;
    int r = rv_amo(h, ins, ins->rs3);
    if (r < 0)
        goto mem_fault;
    if (r > 0)
        JUMP(PC + ins->len, 1);
    NEXT;
}

op_FLW : {
    if (gw_unlikely(rv_fs_off(h)))
        goto illegal;
    uint64_t va = RS1 + IMM;
    const struct rv_tlb_entry *e = &h->dtlb->r.e[TLB_IDX(va)];
    uint32_t v;
    if (gw_likely(e->tag == TLB_TAG(va, 4))) {
        memcpy(&v, (const void *)(uintptr_t)(va + e->addend), 4);
    } else {
        uint64_t t;
        if (rv_load_slow(h, va, 4, &t))
            goto mem_fault;
        v = (uint32_t)t;
    }
    h->f[ins->rd] = 0xffffffff00000000ull | v; /* NaN-box (unpriv spec §12.2) */
    rv_fs_dirty(h);
    NEXT;
}
op_FLD : {
    if (gw_unlikely(rv_fs_off(h)))
        goto illegal;
    uint64_t va = RS1 + IMM;
    const struct rv_tlb_entry *e = &h->dtlb->r.e[TLB_IDX(va)];
    uint64_t v;
    if (gw_likely(e->tag == TLB_TAG(va, 8))) {
        memcpy(&v, (const void *)(uintptr_t)(va + e->addend), 8);
    } else if (rv_load_slow(h, va, 8, &v)) {
        goto mem_fault;
    }
    h->f[ins->rd] = v;
    rv_fs_dirty(h);
    NEXT;
}
op_FSW:
op_FSD : {
    if (gw_unlikely(rv_fs_off(h)))
        goto illegal;
    unsigned size = ins->op == RV_OP_FSW ? 4 : 8;
    uint64_t va = RS1 + IMM, v = h->f[ins->rs2];
    const struct rv_tlb_entry *e = &h->dtlb->w.e[TLB_IDX(va)];
    if (gw_likely(e->tag == TLB_TAG(va, size))) {
        memcpy((void *)(uintptr_t)(va + e->addend), &v, size); /* little-endian host */
        NEXT;
    }
    int r = rv_store_slow(h, va, size, v);
    if (r < 0)
        goto mem_fault;
    if (r > 0)
        JUMP(PC + ins->len, 1);
    NEXT;
}
    FP_TO_F(FADD_D, rv_f64_add(FS1, FS2, rm_, &fl_))
    FP_TO_F(FSUB_D, rv_f64_sub(FS1, FS2, rm_, &fl_))
    FP_TO_F(FMUL_D, rv_f64_mul(FS1, FS2, rm_, &fl_))
    FP_TO_F(FDIV_D, rv_f64_div(FS1, FS2, rm_, &fl_))
    FP_TO_F(FSQRT_D, rv_f64_sqrt(FS1, rm_, &fl_))
    FP_TO_F(FMADD_D, rv_f64_fma(FS1, FS2, FS3, rm_, &fl_))
    FP_TO_F(FMSUB_D, rv_f64_fma(FS1, FS2, FS3 ^ SIGN64, rm_, &fl_))
    FP_TO_F(FNMSUB_D, rv_f64_fma(FS1 ^ SIGN64, FS2, FS3, rm_, &fl_))
    FP_TO_F(FNMADD_D, rv_f64_fma(FS1 ^ SIGN64, FS2, FS3 ^ SIGN64, rm_, &fl_))
    FP_TO_F(FSGNJ_D, (FS1 & ~SIGN64) | (FS2 & SIGN64))
    FP_TO_F(FSGNJN_D, (FS1 & ~SIGN64) | (~FS2 & SIGN64))
    FP_TO_F(FSGNJX_D, FS1 ^ (FS2 & SIGN64))
    FP_TO_F(FMIN_D, rv_f64_min(FS1, FS2, &fl_))
    FP_TO_F(FMAX_D, rv_f64_max(FS1, FS2, &fl_))
    FP_TO_F(FCVT_D_W, rv_i32_to_f64((int32_t)RS1, rm_, &fl_))
    FP_TO_F(FCVT_D_L, rv_i64_to_f64((int64_t)RS1, rm_, &fl_))
    FP_TO_F(FMV_D_X, RS1)
    FP_TO_X(FCVT_W_D, SX32(rv_f64_to_i32(FS1, rm_, &fl_)))
    FP_TO_X(FCVT_L_D, (uint64_t)rv_f64_to_i64(FS1, rm_, &fl_))
    FP_TO_X(FMV_X_D, FS1)
    FP_TO_X(FEQ_D, (uint64_t)rv_f64_eq(FS1, FS2, &fl_))
    FP_TO_X(FLT_D, (uint64_t)rv_f64_lt(FS1, FS2, &fl_))
    FP_TO_X(FLE_D, (uint64_t)rv_f64_le(FS1, FS2, &fl_))
    FP_TO_F(FADD_S, BOX32(rv_f32_add(unbox32(FS1), unbox32(FS2), rm_, &fl_)))
    FP_TO_F(FSUB_S, BOX32(rv_f32_sub(unbox32(FS1), unbox32(FS2), rm_, &fl_)))
    FP_TO_F(FMUL_S, BOX32(rv_f32_mul(unbox32(FS1), unbox32(FS2), rm_, &fl_)))
    FP_TO_F(FDIV_S, BOX32(rv_f32_div(unbox32(FS1), unbox32(FS2), rm_, &fl_)))
    FP_TO_F(FMADD_S, BOX32(rv_f32_fma(unbox32(FS1), unbox32(FS2), unbox32(FS3), rm_, &fl_)))
    FP_TO_F(FSGNJ_S, BOX32((unbox32(FS1) & ~SIGN32) | (unbox32(FS2) & SIGN32)))
    FP_TO_F(FMV_W_X, BOX32(RS1))
    FP_TO_X(FMV_X_W, SX32(FS1)) /* raw low bits, no NaN-box check */

op_fp:
    if (gw_unlikely(rv_exec_fp(h, ins)))
        goto illegal;
    NEXT;

mem_fault:
    SETTLE;
    rv_raise(h, h->exc_cause, h->exc_tval, PC);
    goto next_block;
illegal:
    SETTLE;
    /* QEMU 7.2 reports the instruction bits in tval */
    rv_raise(h, RV_EXC_ILLEGAL, rv_insn_raw(h, b, ins), PC);
    goto next_block;
}
