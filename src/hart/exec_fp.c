/*
 * F and D compute instructions (unpriv spec ch. 11-12): operand fetch with
 * NaN-boxing, rounding-mode resolution, fflags accumulation and FS dirty
 * tracking.  The IEEE arithmetic itself is fpu.c's (fpu.h).  Loads and
 * stores of FP registers live in exec.c's fast path.
 */
#include "hart/fpu.h"
#include "hart/hart_int.h"
#include "hart/ops.h"

/* A single in a 64-bit register is valid only when NaN-boxed (§12.2). */
static inline uint32_t rd32(const struct rv_hart *h, unsigned r)
{
    uint64_t v = h->f[r];
    return (v >> 32) == 0xffffffffu ? (uint32_t)v : RV_F32_CANON_NAN;
}

static inline void wr32(struct rv_hart *h, unsigned r, uint32_t v)
{
    h->f[r] = 0xffffffff00000000ull | v;
}

#define SX32(v) ((uint64_t)(int64_t)(int32_t)(uint32_t)(v))

int rv_exec_fp(struct rv_hart *h, const struct rv_insn *ins)
{
    unsigned op = ins->op, rd = ins->rd, a = ins->rs1, b = ins->rs2, c = ins->rs3;
    unsigned fl = h->fflags, fl0 = fl;
    int rm = ins->rm;
    uint64_t *x = h->x, *f = h->f;
    bool fwrite = true; /* writes an FP register */

    if (rv_fs_off(h))
        return -1;
    if (rm == 7)
        rm = (int)h->frm;
    if (rm > 4)
        return -1; /* dynamic mode with an invalid frm */

    switch (op) {
    /* ---- single ---- */
    case RV_OP_FADD_S: wr32(h, rd, rv_f32_add(rd32(h, a), rd32(h, b), rm, &fl)); break;
    case RV_OP_FSUB_S: wr32(h, rd, rv_f32_sub(rd32(h, a), rd32(h, b), rm, &fl)); break;
    case RV_OP_FMUL_S: wr32(h, rd, rv_f32_mul(rd32(h, a), rd32(h, b), rm, &fl)); break;
    case RV_OP_FDIV_S: wr32(h, rd, rv_f32_div(rd32(h, a), rd32(h, b), rm, &fl)); break;
    case RV_OP_FSQRT_S: wr32(h, rd, rv_f32_sqrt(rd32(h, a), rm, &fl)); break;
    case RV_OP_FSGNJ_S: wr32(h, rd, (rd32(h, a) & 0x7fffffffu) | (rd32(h, b) & 0x80000000u)); break;
    case RV_OP_FSGNJN_S:
        wr32(h, rd, (rd32(h, a) & 0x7fffffffu) | (~rd32(h, b) & 0x80000000u));
        break;
    case RV_OP_FSGNJX_S: wr32(h, rd, rd32(h, a) ^ (rd32(h, b) & 0x80000000u)); break;
    case RV_OP_FMIN_S: wr32(h, rd, rv_f32_min(rd32(h, a), rd32(h, b), &fl)); break;
    case RV_OP_FMAX_S: wr32(h, rd, rv_f32_max(rd32(h, a), rd32(h, b), &fl)); break;
    case RV_OP_FCVT_W_S:
        x[rd] = SX32(rv_f32_to_i32(rd32(h, a), rm, &fl));
        fwrite = false;
        break;
    case RV_OP_FCVT_WU_S:
        x[rd] = SX32(rv_f32_to_u32(rd32(h, a), rm, &fl));
        fwrite = false;
        break;
    case RV_OP_FCVT_L_S:
        x[rd] = (uint64_t)rv_f32_to_i64(rd32(h, a), rm, &fl);
        fwrite = false;
        break;
    case RV_OP_FCVT_LU_S:
        x[rd] = rv_f32_to_u64(rd32(h, a), rm, &fl);
        fwrite = false;
        break;
    case RV_OP_FMV_X_W: /* raw low bits, no NaN-box check */
        x[rd] = SX32(f[a]);
        fwrite = false;
        break;
    case RV_OP_FEQ_S:
        x[rd] = (uint64_t)rv_f32_eq(rd32(h, a), rd32(h, b), &fl);
        fwrite = false;
        break;
    case RV_OP_FLT_S:
        x[rd] = (uint64_t)rv_f32_lt(rd32(h, a), rd32(h, b), &fl);
        fwrite = false;
        break;
    case RV_OP_FLE_S:
        x[rd] = (uint64_t)rv_f32_le(rd32(h, a), rd32(h, b), &fl);
        fwrite = false;
        break;
    case RV_OP_FCLASS_S:
        x[rd] = rv_f32_classify(rd32(h, a));
        fwrite = false;
        break;
    case RV_OP_FCVT_S_W: wr32(h, rd, rv_i32_to_f32((int32_t)x[a], rm, &fl)); break;
    case RV_OP_FCVT_S_WU: wr32(h, rd, rv_u32_to_f32((uint32_t)x[a], rm, &fl)); break;
    case RV_OP_FCVT_S_L: wr32(h, rd, rv_i64_to_f32((int64_t)x[a], rm, &fl)); break;
    case RV_OP_FCVT_S_LU: wr32(h, rd, rv_u64_to_f32(x[a], rm, &fl)); break;
    case RV_OP_FMV_W_X: wr32(h, rd, (uint32_t)x[a]); break;
    case RV_OP_FMADD_S: wr32(h, rd, rv_f32_fma(rd32(h, a), rd32(h, b), rd32(h, c), rm, &fl)); break;
    case RV_OP_FMSUB_S:
        wr32(h, rd, rv_f32_fma(rd32(h, a), rd32(h, b), rd32(h, c) ^ 0x80000000u, rm, &fl));
        break;
    case RV_OP_FNMSUB_S:
        wr32(h, rd, rv_f32_fma(rd32(h, a) ^ 0x80000000u, rd32(h, b), rd32(h, c), rm, &fl));
        break;
    case RV_OP_FNMADD_S:
        wr32(h, rd,
             rv_f32_fma(rd32(h, a) ^ 0x80000000u, rd32(h, b), rd32(h, c) ^ 0x80000000u, rm, &fl));
        break;

    /* ---- double ---- */
    case RV_OP_FADD_D: f[rd] = rv_f64_add(f[a], f[b], rm, &fl); break;
    case RV_OP_FSUB_D: f[rd] = rv_f64_sub(f[a], f[b], rm, &fl); break;
    case RV_OP_FMUL_D: f[rd] = rv_f64_mul(f[a], f[b], rm, &fl); break;
    case RV_OP_FDIV_D: f[rd] = rv_f64_div(f[a], f[b], rm, &fl); break;
    case RV_OP_FSQRT_D: f[rd] = rv_f64_sqrt(f[a], rm, &fl); break;
    case RV_OP_FSGNJ_D: f[rd] = (f[a] & ~(1ull << 63)) | (f[b] & (1ull << 63)); break;
    case RV_OP_FSGNJN_D: f[rd] = (f[a] & ~(1ull << 63)) | (~f[b] & (1ull << 63)); break;
    case RV_OP_FSGNJX_D: f[rd] = f[a] ^ (f[b] & (1ull << 63)); break;
    case RV_OP_FMIN_D: f[rd] = rv_f64_min(f[a], f[b], &fl); break;
    case RV_OP_FMAX_D: f[rd] = rv_f64_max(f[a], f[b], &fl); break;
    case RV_OP_FCVT_W_D:
        x[rd] = SX32(rv_f64_to_i32(f[a], rm, &fl));
        fwrite = false;
        break;
    case RV_OP_FCVT_WU_D:
        x[rd] = SX32(rv_f64_to_u32(f[a], rm, &fl));
        fwrite = false;
        break;
    case RV_OP_FCVT_L_D:
        x[rd] = (uint64_t)rv_f64_to_i64(f[a], rm, &fl);
        fwrite = false;
        break;
    case RV_OP_FCVT_LU_D:
        x[rd] = rv_f64_to_u64(f[a], rm, &fl);
        fwrite = false;
        break;
    case RV_OP_FMV_X_D:
        x[rd] = f[a];
        fwrite = false;
        break;
    case RV_OP_FEQ_D:
        x[rd] = (uint64_t)rv_f64_eq(f[a], f[b], &fl);
        fwrite = false;
        break;
    case RV_OP_FLT_D:
        x[rd] = (uint64_t)rv_f64_lt(f[a], f[b], &fl);
        fwrite = false;
        break;
    case RV_OP_FLE_D:
        x[rd] = (uint64_t)rv_f64_le(f[a], f[b], &fl);
        fwrite = false;
        break;
    case RV_OP_FCLASS_D:
        x[rd] = rv_f64_classify(f[a]);
        fwrite = false;
        break;
    case RV_OP_FCVT_D_W: f[rd] = rv_i32_to_f64((int32_t)x[a], rm, &fl); break;
    case RV_OP_FCVT_D_WU: f[rd] = rv_u32_to_f64((uint32_t)x[a], rm, &fl); break;
    case RV_OP_FCVT_D_L: f[rd] = rv_i64_to_f64((int64_t)x[a], rm, &fl); break;
    case RV_OP_FCVT_D_LU: f[rd] = rv_u64_to_f64(x[a], rm, &fl); break;
    case RV_OP_FMV_D_X: f[rd] = x[a]; break;
    case RV_OP_FMADD_D: f[rd] = rv_f64_fma(f[a], f[b], f[c], rm, &fl); break;
    case RV_OP_FMSUB_D: f[rd] = rv_f64_fma(f[a], f[b], f[c] ^ (1ull << 63), rm, &fl); break;
    case RV_OP_FNMSUB_D: f[rd] = rv_f64_fma(f[a] ^ (1ull << 63), f[b], f[c], rm, &fl); break;
    case RV_OP_FNMADD_D:
        f[rd] = rv_f64_fma(f[a] ^ (1ull << 63), f[b], f[c] ^ (1ull << 63), rm, &fl);
        break;
    case RV_OP_FCVT_S_D: wr32(h, rd, rv_f64_to_f32(f[a], rm, &fl)); break;
    case RV_OP_FCVT_D_S: f[rd] = rv_f32_to_f64(rd32(h, a), &fl); break;
    default: return -1;
    }
    h->fflags = fl;
    if (fwrite || fl != fl0)
        rv_fs_dirty(h);
    return 0;
}
