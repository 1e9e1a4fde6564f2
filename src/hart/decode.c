/*
 * RV64GC instruction decoder: raw encoding -> struct rv_insn.
 *
 * Everything that can be decided from the encoding alone is decided here, so
 * the interpreter never re-examines bits: reserved encodings and invalid
 * static rounding modes become RV_OP_ILLEGAL, rd = x0 becomes the sink
 * register, compressed instructions become their 32-bit equivalents, and
 * HINTs become RV_OP_NOP.  len and pcoff are filled in by the caller.
 */
#include "hart/hart_int.h"
#include "hart/ops.h"

static inline uint32_t bits(uint32_t v, unsigned hi, unsigned lo)
{
    return (v >> lo) & ((1u << (hi - lo + 1)) - 1);
}

static inline int32_t sext(uint32_t v, unsigned width)
{
    return (int32_t)(v << (32 - width)) >> (32 - width);
}

static void set(struct rv_insn *i, unsigned op, unsigned rd, unsigned rs1, unsigned rs2,
                int32_t imm)
{
    i->op = (uint8_t)op;
    i->rd = (uint8_t)(rd ? rd : RV_XSINK);
    i->rs1 = (uint8_t)rs1;
    i->rs2 = (uint8_t)rs2;
    i->imm = imm;
}

/* FP ops write f[rd], where f0 is a real register: no sink. */
static void set_f(struct rv_insn *i, unsigned op, unsigned rd, unsigned rs1, unsigned rs2,
                  int32_t imm)
{
    set(i, op, rd, rs1, rs2, imm);
    i->rd = (uint8_t)rd;
}

static void illegal(struct rv_insn *i, uint32_t raw)
{
    set(i, RV_OP_ILLEGAL, 0, 0, 0, (int32_t)raw);
}

/* Rounding-mode field: 5 and 6 are reserved (unpriv spec §11.2). */
static bool bad_rm(unsigned rm)
{
    return rm == 5 || rm == 6;
}

/* OP-FP (opcode 0x53) */
static void decode_opfp(uint32_t raw, struct rv_insn *i)
{
    unsigned rd = bits(raw, 11, 7), rs1 = bits(raw, 19, 15), rs2 = bits(raw, 24, 20);
    unsigned rm = bits(raw, 14, 12), f7 = bits(raw, 31, 25);
    unsigned op = RV_OP_ILLEGAL;
    bool uses_rm = true, xrd = false; /* xrd: rd is an integer register */

    switch (f7) {
    case 0x00: op = RV_OP_FADD_S; break;
    case 0x01: op = RV_OP_FADD_D; break;
    case 0x04: op = RV_OP_FSUB_S; break;
    case 0x05: op = RV_OP_FSUB_D; break;
    case 0x08: op = RV_OP_FMUL_S; break;
    case 0x09: op = RV_OP_FMUL_D; break;
    case 0x0c: op = RV_OP_FDIV_S; break;
    case 0x0d: op = RV_OP_FDIV_D; break;
    case 0x2c:
        if (rs2 == 0)
            op = RV_OP_FSQRT_S;
        break;
    case 0x2d:
        if (rs2 == 0)
            op = RV_OP_FSQRT_D;
        break;
    case 0x10:
    case 0x11:
        uses_rm = false;
        if (rm < 3)
            op = (f7 == 0x10 ? RV_OP_FSGNJ_S : RV_OP_FSGNJ_D) + rm;
        break;
    case 0x14:
    case 0x15:
        uses_rm = false;
        if (rm < 2)
            op = (f7 == 0x14 ? RV_OP_FMIN_S : RV_OP_FMIN_D) + rm;
        break;
    case 0x20:
        if (rs2 == 1)
            op = RV_OP_FCVT_S_D;
        break;
    case 0x21:
        if (rs2 == 0)
            op = RV_OP_FCVT_D_S;
        break;
    case 0x50:
    case 0x51:
        uses_rm = false;
        xrd = true;
        if (rm == 2)
            op = f7 == 0x50 ? RV_OP_FEQ_S : RV_OP_FEQ_D;
        else if (rm == 1)
            op = f7 == 0x50 ? RV_OP_FLT_S : RV_OP_FLT_D;
        else if (rm == 0)
            op = f7 == 0x50 ? RV_OP_FLE_S : RV_OP_FLE_D;
        break;
    case 0x60:
    case 0x61:
        xrd = true;
        if (rs2 < 4)
            op = (f7 == 0x60 ? RV_OP_FCVT_W_S : RV_OP_FCVT_W_D) + rs2;
        break;
    case 0x68:
    case 0x69:
        if (rs2 < 4)
            op = (f7 == 0x68 ? RV_OP_FCVT_S_W : RV_OP_FCVT_D_W) + rs2;
        break;
    case 0x70:
    case 0x71:
        uses_rm = false;
        xrd = true;
        if (rs2 == 0 && rm == 0)
            op = f7 == 0x70 ? RV_OP_FMV_X_W : RV_OP_FMV_X_D;
        else if (rs2 == 0 && rm == 1)
            op = f7 == 0x70 ? RV_OP_FCLASS_S : RV_OP_FCLASS_D;
        break;
    case 0x78:
    case 0x79:
        uses_rm = false;
        if (rs2 == 0 && rm == 0)
            op = f7 == 0x78 ? RV_OP_FMV_W_X : RV_OP_FMV_D_X;
        break;
    default: break;
    }
    if (op == RV_OP_ILLEGAL || (uses_rm && bad_rm(rm))) {
        illegal(i, raw);
        return;
    }
    if (xrd)
        set(i, op, rd, rs1, rs2, 0);
    else
        set_f(i, op, rd, rs1, rs2, 0);
    i->rm = (uint8_t)(uses_rm ? rm : 0); /* exec_fp checks rm only where it is one */
}

static void decode32(uint32_t raw, struct rv_insn *i)
{
    unsigned opc = raw & 0x7f, rd = bits(raw, 11, 7), f3 = bits(raw, 14, 12);
    unsigned rs1 = bits(raw, 19, 15), rs2 = bits(raw, 24, 20), f7 = bits(raw, 31, 25);
    int32_t imm_i = (int32_t)raw >> 20;
    int32_t imm_s = (int32_t)(raw & 0xfe000000) >> 20 | (int32_t)bits(raw, 11, 7);
    int32_t imm_b = sext(bits(raw, 31, 31) << 12 | bits(raw, 7, 7) << 11 | bits(raw, 30, 25) << 5 |
                             bits(raw, 11, 8) << 1,
                         13);
    int32_t imm_u = (int32_t)(raw & 0xfffff000);
    int32_t imm_j = sext(bits(raw, 31, 31) << 20 | bits(raw, 19, 12) << 12 |
                             bits(raw, 20, 20) << 11 | bits(raw, 30, 21) << 1,
                         21);

    switch (opc) {
    case 0x37: set(i, RV_OP_LUI, rd, 0, 0, imm_u); return;
    case 0x17: set(i, RV_OP_AUIPC, rd, 0, 0, imm_u); return;
    case 0x6f: set(i, RV_OP_JAL, rd, 0, 0, imm_j); return;
    case 0x67:
        if (f3 == 0) {
            set(i, RV_OP_JALR, rd, rs1, 0, imm_i);
            return;
        }
        break;
    case 0x63:
        if (f3 != 2 && f3 != 3) {
            static const uint8_t br[8] = {RV_OP_BEQ, RV_OP_BNE, 0,          0,
                                          RV_OP_BLT, RV_OP_BGE, RV_OP_BLTU, RV_OP_BGEU};
            set(i, br[f3], 0, rs1, rs2, imm_b);
            return;
        }
        break;
    case 0x03:
        if (f3 != 7) {
            static const uint8_t ld[7] = {RV_OP_LB,  RV_OP_LH,  RV_OP_LW, RV_OP_LD,
                                          RV_OP_LBU, RV_OP_LHU, RV_OP_LWU};
            set(i, ld[f3], rd, rs1, 0, imm_i);
            return;
        }
        break;
    case 0x23:
        if (f3 < 4) {
            set(i, RV_OP_SB + f3, 0, rs1, rs2, imm_s);
            return;
        }
        break;
    case 0x13:
        switch (f3) {
        case 0: set(i, RV_OP_ADDI, rd, rs1, 0, imm_i); return;
        case 2: set(i, RV_OP_SLTI, rd, rs1, 0, imm_i); return;
        case 3: set(i, RV_OP_SLTIU, rd, rs1, 0, imm_i); return;
        case 4: set(i, RV_OP_XORI, rd, rs1, 0, imm_i); return;
        case 6: set(i, RV_OP_ORI, rd, rs1, 0, imm_i); return;
        case 7: set(i, RV_OP_ANDI, rd, rs1, 0, imm_i); return;
        case 1:
            if (bits(raw, 31, 26) == 0) {
                set(i, RV_OP_SLLI, rd, rs1, 0, imm_i & 63);
                return;
            }
            break;
        case 5:
            if (bits(raw, 31, 26) == 0) {
                set(i, RV_OP_SRLI, rd, rs1, 0, imm_i & 63);
                return;
            }
            if (bits(raw, 31, 26) == 0x10) {
                set(i, RV_OP_SRAI, rd, rs1, 0, imm_i & 63);
                return;
            }
            break;
        default: break;
        }
        break;
    case 0x1b:
        if (f3 == 0) {
            set(i, RV_OP_ADDIW, rd, rs1, 0, imm_i);
            return;
        }
        if (f3 == 1 && f7 == 0) {
            set(i, RV_OP_SLLIW, rd, rs1, 0, (int32_t)rs2);
            return;
        }
        if (f3 == 5 && f7 == 0) {
            set(i, RV_OP_SRLIW, rd, rs1, 0, (int32_t)rs2);
            return;
        }
        if (f3 == 5 && f7 == 0x20) {
            set(i, RV_OP_SRAIW, rd, rs1, 0, (int32_t)rs2);
            return;
        }
        break;
    case 0x33:
        if (f7 == 0) {
            static const uint8_t o[8] = {RV_OP_ADD, RV_OP_SLL, RV_OP_SLT, RV_OP_SLTU,
                                         RV_OP_XOR, RV_OP_SRL, RV_OP_OR,  RV_OP_AND};
            set(i, o[f3], rd, rs1, rs2, 0);
            return;
        }
        if (f7 == 1) {
            set(i, RV_OP_MUL + f3, rd, rs1, rs2, 0);
            return;
        }
        if (f7 == 0x20 && (f3 == 0 || f3 == 5)) {
            set(i, f3 == 0 ? RV_OP_SUB : RV_OP_SRA, rd, rs1, rs2, 0);
            return;
        }
        break;
    case 0x3b:
        if (f7 == 0 && (f3 == 0 || f3 == 1 || f3 == 5)) {
            set(i, f3 == 0 ? RV_OP_ADDW : f3 == 1 ? RV_OP_SLLW : RV_OP_SRLW, rd, rs1, rs2, 0);
            return;
        }
        if (f7 == 0x20 && (f3 == 0 || f3 == 5)) {
            set(i, f3 == 0 ? RV_OP_SUBW : RV_OP_SRAW, rd, rs1, rs2, 0);
            return;
        }
        if (f7 == 1 && (f3 == 0 || f3 >= 4)) {
            static const uint8_t o[8] = {RV_OP_MULW, 0,           0,          0,
                                         RV_OP_DIVW, RV_OP_DIVUW, RV_OP_REMW, RV_OP_REMUW};
            set(i, o[f3], rd, rs1, rs2, 0);
            return;
        }
        break;
    case 0x0f:
        if (f3 == 0) {
            set(i, RV_OP_NOP, 0, 0, 0, 0); /* FENCE: one hart thread, memory is coherent */
            return;
        }
        if (f3 == 1) {
            set(i, RV_OP_FENCE_I, 0, 0, 0, 0);
            return;
        }
        break;
    case 0x73:
        if (f3 == 0) {
            switch (raw) {
            case 0x00000073: set(i, RV_OP_ECALL, 0, 0, 0, 0); return;
            case 0x00100073: set(i, RV_OP_EBREAK, 0, 0, 0, 0); return;
            case 0x30200073: set(i, RV_OP_MRET, 0, 0, 0, 0); return;
            case 0x10200073: set(i, RV_OP_SRET, 0, 0, 0, 0); return;
            case 0x10500073: set(i, RV_OP_WFI, 0, 0, 0, 0); return;
            default: break;
            }
            if (f7 == 0x09 && rd == 0) {
                set(i, RV_OP_SFENCE_VMA, 0, rs1, rs2, 0);
                return;
            }
            break;
        }
        if (f3 != 4) {
            /* rs1 holds the register or the 5-bit immediate; rm the funct3 */
            set(i, RV_OP_CSR, rd, rs1, 0, (int32_t)(raw >> 20));
            i->rs2 = (uint8_t)rd; /* original rd, to tell "rd = x0" (no read) */
            i->rm = (uint8_t)f3;
            return;
        }
        break;
    case 0x2f:
        if (f3 == 2 || f3 == 3) {
            unsigned f5 = bits(raw, 31, 27);
            switch (f5) {
            case RV_AMO_LR:
                if (rs2 != 0)
                    break;
                __attribute__((fallthrough));
            case RV_AMO_SC:
            case RV_AMO_SWAP:
            case RV_AMO_ADD:
            case RV_AMO_XOR:
            case RV_AMO_AND:
            case RV_AMO_OR:
            case RV_AMO_MIN:
            case RV_AMO_MAX:
            case RV_AMO_MINU:
            case RV_AMO_MAXU:
                set(i, RV_OP_AMO, rd, rs1, rs2, 0);
                i->rm = (uint8_t)f5;
                i->rs3 = f3 == 3;
                return;
            default: break;
            }
        }
        break;
    case 0x07:
        if (f3 == 2 || f3 == 3) {
            set_f(i, f3 == 2 ? RV_OP_FLW : RV_OP_FLD, rd, rs1, 0, imm_i);
            return;
        }
        break;
    case 0x27:
        if (f3 == 2 || f3 == 3) {
            set(i, f3 == 2 ? RV_OP_FSW : RV_OP_FSD, 0, rs1, rs2, imm_s);
            return;
        }
        break;
    case 0x43:
    case 0x47:
    case 0x4b:
    case 0x4f: {
        unsigned fmt = bits(raw, 26, 25);
        if (fmt < 2 && !bad_rm(f3)) {
            unsigned base = fmt ? RV_OP_FMADD_D : RV_OP_FMADD_S;
            set_f(i, base + ((opc - 0x43) >> 2), rd, rs1, rs2, 0);
            i->rs3 = (uint8_t)bits(raw, 31, 27);
            i->rm = (uint8_t)f3;
            return;
        }
        break;
    }
    case 0x53: decode_opfp(raw, i); return;
    default: break;
    }
    illegal(i, raw);
}

/* RVC (unprivileged spec ch. 16), RV64 variant */
static void decode16(uint32_t raw, struct rv_insn *i)
{
    unsigned q = raw & 3, f3 = bits(raw, 15, 13);
    unsigned rd = bits(raw, 11, 7), rs2 = bits(raw, 6, 2);
    unsigned rdp = 8 + bits(raw, 4, 2), rs1p = 8 + bits(raw, 9, 7);
    int32_t imm6 = sext(bits(raw, 12, 12) << 5 | bits(raw, 6, 2), 6);
    uint32_t ld_off = bits(raw, 12, 10) << 3 | bits(raw, 6, 5) << 6;
    uint32_t lw_off = bits(raw, 12, 10) << 3 | bits(raw, 6, 6) << 2 | bits(raw, 5, 5) << 6;

    if (q == 0) {
        switch (f3) {
        case 0: {
            uint32_t nz = bits(raw, 12, 11) << 4 | bits(raw, 10, 7) << 6 | bits(raw, 6, 6) << 2 |
                          bits(raw, 5, 5) << 3;
            if (nz == 0)
                break; /* includes the all-zero "defined illegal" instruction */
            set(i, RV_OP_ADDI, rdp, 2, 0, (int32_t)nz);
            return;
        }
        case 1: set_f(i, RV_OP_FLD, rdp, rs1p, 0, (int32_t)ld_off); return;
        case 2: set(i, RV_OP_LW, rdp, rs1p, 0, (int32_t)lw_off); return;
        case 3: set(i, RV_OP_LD, rdp, rs1p, 0, (int32_t)ld_off); return;
        case 5: set(i, RV_OP_FSD, 0, rs1p, rdp, (int32_t)ld_off); return;
        case 6: set(i, RV_OP_SW, 0, rs1p, rdp, (int32_t)lw_off); return;
        case 7: set(i, RV_OP_SD, 0, rs1p, rdp, (int32_t)ld_off); return;
        default: break;
        }
    } else if (q == 1) {
        switch (f3) {
        case 0: set(i, RV_OP_ADDI, rd, rd, 0, imm6); return; /* C.NOP / HINTs */
        case 1:
            if (rd == 0)
                break;
            set(i, RV_OP_ADDIW, rd, rd, 0, imm6);
            return;
        case 2: set(i, RV_OP_ADDI, rd, 0, 0, imm6); return; /* C.LI */
        case 3:
            if (rd == 2) {
                int32_t nz =
                    sext(bits(raw, 12, 12) << 9 | bits(raw, 6, 6) << 4 | bits(raw, 5, 5) << 6 |
                             bits(raw, 4, 3) << 7 | bits(raw, 2, 2) << 5,
                         10);
                if (nz == 0)
                    break;
                set(i, RV_OP_ADDI, 2, 2, 0, nz);
                return;
            }
            if (imm6 == 0)
                break;
            set(i, RV_OP_LUI, rd, 0, 0, (int32_t)((uint32_t)imm6 << 12));
            return;
        case 4: {
            unsigned f2 = bits(raw, 11, 10);
            uint32_t sh = bits(raw, 12, 12) << 5 | bits(raw, 6, 2);
            if (f2 == 0) {
                set(i, RV_OP_SRLI, rs1p, rs1p, 0, (int32_t)sh);
                return;
            }
            if (f2 == 1) {
                set(i, RV_OP_SRAI, rs1p, rs1p, 0, (int32_t)sh);
                return;
            }
            if (f2 == 2) {
                set(i, RV_OP_ANDI, rs1p, rs1p, 0, imm6);
                return;
            }
            {
                unsigned f = bits(raw, 6, 5);
                static const uint8_t o0[4] = {RV_OP_SUB, RV_OP_XOR, RV_OP_OR, RV_OP_AND};
                if (bits(raw, 12, 12) == 0) {
                    set(i, o0[f], rs1p, rs1p, rdp, 0);
                    return;
                }
                if (f < 2) {
                    set(i, f == 0 ? RV_OP_SUBW : RV_OP_ADDW, rs1p, rs1p, rdp, 0);
                    return;
                }
            }
            break;
        }
        case 5: {
            int32_t off =
                sext(bits(raw, 12, 12) << 11 | bits(raw, 11, 11) << 4 | bits(raw, 10, 9) << 8 |
                         bits(raw, 8, 8) << 10 | bits(raw, 7, 7) << 6 | bits(raw, 6, 6) << 7 |
                         bits(raw, 5, 3) << 1 | bits(raw, 2, 2) << 5,
                     12);
            set(i, RV_OP_JAL, 0, 0, 0, off);
            return;
        }
        case 6:
        case 7: {
            int32_t off =
                sext(bits(raw, 12, 12) << 8 | bits(raw, 11, 10) << 3 | bits(raw, 6, 5) << 6 |
                         bits(raw, 4, 3) << 1 | bits(raw, 2, 2) << 5,
                     9);
            set(i, f3 == 6 ? RV_OP_BEQ : RV_OP_BNE, 0, rs1p, 0, off);
            return;
        }
        default: break;
        }
    } else if (q == 2) {
        uint32_t sp_ld = bits(raw, 12, 12) << 5 | bits(raw, 6, 5) << 3 | bits(raw, 4, 2) << 6;
        uint32_t sp_lw = bits(raw, 12, 12) << 5 | bits(raw, 6, 4) << 2 | bits(raw, 3, 2) << 6;
        uint32_t sp_sd = bits(raw, 12, 10) << 3 | bits(raw, 9, 7) << 6;
        uint32_t sp_sw = bits(raw, 12, 9) << 2 | bits(raw, 8, 7) << 6;
        switch (f3) {
        case 0:
            set(i, RV_OP_SLLI, rd, rd, 0, (int32_t)(bits(raw, 12, 12) << 5 | bits(raw, 6, 2)));
            return;
        case 1: set_f(i, RV_OP_FLD, rd, 2, 0, (int32_t)sp_ld); return;
        case 2:
            if (rd == 0)
                break;
            set(i, RV_OP_LW, rd, 2, 0, (int32_t)sp_lw);
            return;
        case 3:
            if (rd == 0)
                break;
            set(i, RV_OP_LD, rd, 2, 0, (int32_t)sp_ld);
            return;
        case 4:
            if (bits(raw, 12, 12) == 0) {
                if (rs2 == 0) {
                    if (rd == 0)
                        break;
                    set(i, RV_OP_JALR, 0, rd, 0, 0); /* C.JR */
                    return;
                }
                set(i, RV_OP_ADD, rd, 0, rs2, 0); /* C.MV */
                return;
            }
            if (rs2 == 0) {
                if (rd == 0) {
                    set(i, RV_OP_EBREAK, 0, 0, 0, 0);
                    return;
                }
                set(i, RV_OP_JALR, 1, rd, 0, 0); /* C.JALR */
                return;
            }
            set(i, RV_OP_ADD, rd, rd, rs2, 0);
            return;
        case 5: set(i, RV_OP_FSD, 0, 2, rs2, (int32_t)sp_sd); return;
        case 6: set(i, RV_OP_SW, 0, 2, rs2, (int32_t)sp_sw); return;
        case 7: set(i, RV_OP_SD, 0, 2, rs2, (int32_t)sp_sd); return;
        default: break;
        }
    }
    illegal(i, raw);
}

void rv_decode(uint32_t raw, struct rv_insn *ins)
{
    memset(ins, 0, sizeof(*ins));
    if ((raw & 3) == 3) {
        ins->len = 4;
        decode32(raw, ins);
    } else {
        ins->len = 2;
        decode16(raw & 0xffff, ins);
    }
}

bool rv_op_ends_block(unsigned op)
{
    switch (op) {
    case RV_OP_ILLEGAL:
    case RV_OP_NEXT:
    case RV_OP_JAL:
    case RV_OP_JALR:
    case RV_OP_FENCE_I:
    case RV_OP_ECALL:
    case RV_OP_EBREAK:
    case RV_OP_MRET:
    case RV_OP_SRET:
    case RV_OP_WFI:
    case RV_OP_SFENCE_VMA:
    case RV_OP_CSR: return true;
    default: return false;
    }
}
