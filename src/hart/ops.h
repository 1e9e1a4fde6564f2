/*
 * Internal opcodes of the pre-decoded instruction format (struct rv_insn).
 * decode.c maps RV64GC encodings onto them; exec.c dispatches on them with
 * computed goto.  Integer/system ops each have their own handler; the F/D
 * compute ops (RV_FP_OPS) share one handler that calls exec_fp.c.
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
    X(FADD_S) X(FSUB_S) X(FMUL_S) X(FDIV_S) X(FSQRT_S) \
    X(FSGNJ_S) X(FSGNJN_S) X(FSGNJX_S) X(FMIN_S) X(FMAX_S) \
    X(FCVT_W_S) X(FCVT_WU_S) X(FCVT_L_S) X(FCVT_LU_S) \
    X(FMV_X_W) X(FEQ_S) X(FLT_S) X(FLE_S) X(FCLASS_S) \
    X(FCVT_S_W) X(FCVT_S_WU) X(FCVT_S_L) X(FCVT_S_LU) X(FMV_W_X) \
    X(FMADD_S) X(FMSUB_S) X(FNMSUB_S) X(FNMADD_S) \
    X(FADD_D) X(FSUB_D) X(FMUL_D) X(FDIV_D) X(FSQRT_D) \
    X(FSGNJ_D) X(FSGNJN_D) X(FSGNJX_D) X(FMIN_D) X(FMAX_D) \
    X(FCVT_W_D) X(FCVT_WU_D) X(FCVT_L_D) X(FCVT_LU_D) \
    X(FMV_X_D) X(FEQ_D) X(FLT_D) X(FLE_D) X(FCLASS_D) \
    X(FCVT_D_W) X(FCVT_D_WU) X(FCVT_D_L) X(FCVT_D_LU) X(FMV_D_X) \
    X(FMADD_D) X(FMSUB_D) X(FNMSUB_D) X(FNMADD_D) \
    X(FCVT_S_D) X(FCVT_D_S)
/* clang-format on */

#define RV_OP_ENUM(name) RV_OP_##name,
enum rv_op {
    RV_INT_OPS(RV_OP_ENUM) RV_OP_FP_FIRST_,
    RV_OP_FP_BASE_ = RV_OP_FP_FIRST_ - 1,
    RV_FP_OPS(RV_OP_ENUM) RV_OP_COUNT
};
#undef RV_OP_ENUM

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
