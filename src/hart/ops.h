/*
 * Internal opcodes of the pre-decoded instruction format (struct rv_insn).
 * decode.c maps RV64GC encodings onto them; exec.c dispatches on them with
 * computed goto.  Integer/system ops each have their own handler; of the F/D
 * compute ops (RV_FP_OPS), the common ones (hot = 1) have their own handlers
 * in exec.c and the rest share one that calls exec_fp.c.
 */
#ifndef GODWIT_HART_OPS_H
#define GODWIT_HART_OPS_H

/* clang-format off */
#define RV_INT_OPS(X) \
    X(ILLEGAL) X(NEXT) X(NOP) \
    X(LUI) X(AUIPC) X(JAL) X(JALR) \
    X(BEQ) X(BNE) X(BLT) X(BGE) X(BLTU) X(BGEU) \
    X(LB) X(LH) X(LW) X(LD) X(LBU) X(LHU) X(LWU) \
    X(SB) X(SH) X(SW) X(SD) \
    X(ADDI) X(SLTI) X(SLTIU) X(XORI) X(ORI) X(ANDI) X(SLLI) X(SRLI) X(SRAI) \
    X(ADD) X(SUB) X(SLL) X(SLT) X(SLTU) X(XOR) X(SRL) X(SRA) X(OR) X(AND) \
    X(ADDIW) X(SLLIW) X(SRLIW) X(SRAIW) X(ADDW) X(SUBW) X(SLLW) X(SRLW) X(SRAW) \
    X(MUL) X(MULH) X(MULHSU) X(MULHU) X(DIV) X(DIVU) X(REM) X(REMU) \
    X(MULW) X(DIVW) X(DIVUW) X(REMW) X(REMUW) \
    X(FENCE_I) X(ECALL) X(EBREAK) X(MRET) X(SRET) X(WFI) X(SFENCE_VMA) X(CSR) \
    X(AMO) \
    X(FLW) X(FLD) X(FSW) X(FSD)

#define RV_FP_OPS(X) \
    X(FADD_S, 1) X(FSUB_S, 1) X(FMUL_S, 1) X(FDIV_S, 1) X(FSQRT_S, 0) \
    X(FSGNJ_S, 1) X(FSGNJN_S, 0) X(FSGNJX_S, 0) X(FMIN_S, 0) X(FMAX_S, 0) \
    X(FCVT_W_S, 0) X(FCVT_WU_S, 0) X(FCVT_L_S, 0) X(FCVT_LU_S, 0) \
    X(FMV_X_W, 1) X(FEQ_S, 0) X(FLT_S, 0) X(FLE_S, 0) X(FCLASS_S, 0) \
    X(FCVT_S_W, 0) X(FCVT_S_WU, 0) X(FCVT_S_L, 0) X(FCVT_S_LU, 0) X(FMV_W_X, 1) \
    X(FMADD_S, 1) X(FMSUB_S, 0) X(FNMSUB_S, 0) X(FNMADD_S, 0) \
    X(FADD_D, 1) X(FSUB_D, 1) X(FMUL_D, 1) X(FDIV_D, 1) X(FSQRT_D, 1) \
    X(FSGNJ_D, 1) X(FSGNJN_D, 1) X(FSGNJX_D, 1) X(FMIN_D, 1) X(FMAX_D, 1) \
    X(FCVT_W_D, 1) X(FCVT_WU_D, 0) X(FCVT_L_D, 1) X(FCVT_LU_D, 0) \
    X(FMV_X_D, 1) X(FEQ_D, 1) X(FLT_D, 1) X(FLE_D, 1) X(FCLASS_D, 0) \
    X(FCVT_D_W, 1) X(FCVT_D_WU, 0) X(FCVT_D_L, 1) X(FCVT_D_LU, 0) X(FMV_D_X, 1) \
    X(FMADD_D, 1) X(FMSUB_D, 1) X(FNMSUB_D, 1) X(FNMADD_D, 1) \
    X(FCVT_S_D, 0) X(FCVT_D_S, 0)
/* clang-format on */

#define RV_OP_ENUM(name)         RV_OP_##name,
#define RV_OP_ENUM_FP(name, hot) RV_OP_##name,
enum rv_op {
    RV_INT_OPS(RV_OP_ENUM) RV_OP_FP_FIRST_,
    RV_OP_FP_BASE_ = RV_OP_FP_FIRST_ - 1,
    RV_FP_OPS(RV_OP_ENUM_FP) RV_OP_COUNT
};
#undef RV_OP_ENUM
#undef RV_OP_ENUM_FP

#define RV_OP_FP_FIRST RV_OP_FADD_S

/* AMO funct5 values (unprivileged spec ch. 8) */
enum {
    RV_AMO_ADD = 0x00,
    RV_AMO_SWAP = 0x01,
    RV_AMO_LR = 0x02,
    RV_AMO_SC = 0x03,
    RV_AMO_XOR = 0x04,
    RV_AMO_OR = 0x08,
    RV_AMO_AND = 0x0c,
    RV_AMO_MIN = 0x10,
    RV_AMO_MAX = 0x14,
    RV_AMO_MINU = 0x18,
    RV_AMO_MAXU = 0x1c,
};

#endif
