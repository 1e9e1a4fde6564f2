/*
 * Control and status registers (Zicsr, Zicntr, privileged spec ch. 2-3 and
 * §4.1).  Write masks and reset values follow QEMU 7.2's rv64 CPU without
 * the H extension (measured on qemu-system-riscv64 7.2), except where the
 * comments say otherwise.  A CSR that does not exist, is above the current
 * privilege, or is read-only and written, makes the instruction illegal.
 */
#include "hart/hart_int.h"

enum {
    CSR_FFLAGS = 0x001,
    CSR_FRM = 0x002,
    CSR_FCSR = 0x003,
    CSR_SSTATUS = 0x100,
    CSR_SIE = 0x104,
    CSR_STVEC = 0x105,
    CSR_SCOUNTEREN = 0x106,
    CSR_SENVCFG = 0x10a,
    CSR_SSCRATCH = 0x140,
    CSR_SEPC = 0x141,
    CSR_SCAUSE = 0x142,
    CSR_STVAL = 0x143,
    CSR_SIP = 0x144,
    CSR_SATP = 0x180,
    CSR_MSTATUS = 0x300,
    CSR_MISA = 0x301,
    CSR_MEDELEG = 0x302,
    CSR_MIDELEG = 0x303,
    CSR_MIE = 0x304,
    CSR_MTVEC = 0x305,
    CSR_MCOUNTEREN = 0x306,
    CSR_MENVCFG = 0x30a,
    CSR_MCOUNTINHIBIT = 0x320,
    CSR_MHPMEVENT3 = 0x323,
    CSR_MHPMEVENT31 = 0x33f,
    CSR_MSCRATCH = 0x340,
    CSR_MEPC = 0x341,
    CSR_MCAUSE = 0x342,
    CSR_MTVAL = 0x343,
    CSR_MIP = 0x344,
    CSR_PMPCFG0 = 0x3a0,
    CSR_PMPCFG2 = 0x3a2,
    CSR_PMPADDR0 = 0x3b0,
    CSR_PMPADDR15 = 0x3bf,
    CSR_MCYCLE = 0xb00,
    CSR_MINSTRET = 0xb02,
    CSR_MHPMCOUNTER3 = 0xb03,
    CSR_MHPMCOUNTER31 = 0xb1f,
    CSR_CYCLE = 0xc00,
    CSR_TIME = 0xc01,
    CSR_INSTRET = 0xc02,
    CSR_HPMCOUNTER3 = 0xc03,
    CSR_HPMCOUNTER31 = 0xc1f,
    CSR_MVENDORID = 0xf11,
    CSR_MARCHID = 0xf12,
    CSR_MIMPID = 0xf13,
    CSR_MHARTID = 0xf14,
    CSR_MCONFIGPTR = 0xf15,
};

/* QEMU 7.2 rv64 implements mhpmcounter3..18 (pmu-num=16) */
#define RV_HPM_LAST 18

/*
 * Write masks as QEMU 7.2 has them with h=false (tests/qemu-cmdline): it
 * still lets MPV/GVA, the VS* interrupt bits, LCOFI, the H exception causes
 * and menvcfg.STCE/PBMTE be written and read back.  They have no effect
 * here (nor there, without H); only the six standard interrupts are ever
 * taken.  Likewise UXL reads back any nonzero value written, as in QEMU,
 * while U-mode always runs as RV64.
 */
#define MSTATUS_MPV (1ull << 39)
#define MSTATUS_GVA (1ull << 38)
#define MSTATUS_WMASK                                                                              \
    (MSTATUS_SIE | MSTATUS_MIE | MSTATUS_SPIE | MSTATUS_MPIE | MSTATUS_SPP | MSTATUS_MPP |         \
     MSTATUS_FS | MSTATUS_VS | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_TVM |            \
     MSTATUS_TW | MSTATUS_TSR | MSTATUS_MPV | MSTATUS_GVA)
#define SSTATUS_RMASK                                                                              \
    (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_VS | MSTATUS_FS | MSTATUS_XS |             \
     MSTATUS_SUM | MSTATUS_MXR | MSTATUS_UXL | MSTATUS_SD)
#define SSTATUS_WMASK                                                                              \
    (MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_VS | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR)

#define MIP_SSIP     (1ull << RV_IRQ_SSI)
#define MIP_STIP     (1ull << RV_IRQ_STI)
#define MIP_SEIP     (1ull << RV_IRQ_SEI)
#define MIP_VSINTS   0x444ull     /* VSSIP, VSTIP, VSEIP */
#define MIP_LCOFIP   (1ull << 13) /* Sscofpmf */
#define S_INTS       (MIP_SSIP | MIP_STIP | MIP_SEIP)
#define MIE_MASK     (0xaaaull | MIP_VSINTS | MIP_LCOFIP)
#define MIP_WMASK    (S_INTS | MIP_VSINTS | MIP_LCOFIP) /* writable from M (priv spec §3.1.9) */
#define MIDELEG_MASK MIP_WMASK
#define SIE_MASK     (S_INTS | MIP_LCOFIP)
#define SIP_WMASK    (MIP_SSIP | MIP_LCOFIP)

/* exceptions 0-13, 15 and the H guest-page faults 20-23, as QEMU 7.2 */
#define MEDELEG_MASK 0xf0bfffull
#define MENVCFG_MASK 0xc0000000000000f1ull /* FIOM, CBIE, CBCFE, CBZE, PBMTE, STCE */
#define SENVCFG_MASK 0xf1ull

#define MISA_RV64   (2ull << 62)
#define MISA_EXT(c) (1ull << ((c) - 'A'))

static uint64_t read_mstatus(const struct rv_hart *h)
{
    uint64_t s = h->mstatus;

    if ((s & MSTATUS_FS) == MSTATUS_FS || (s & MSTATUS_VS) == MSTATUS_VS ||
        (s & MSTATUS_XS) == MSTATUS_XS)
        s |= MSTATUS_SD;
    return s;
}

static void write_mstatus(struct rv_hart *h, uint64_t mask, uint64_t v)
{
    uint64_t old = h->mstatus, s;

    if (v & MSTATUS_UXL)
        mask |= MSTATUS_UXL;
    s = (old & ~mask) | (v & mask);

    if (((s & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) == 2)
        s = (s & ~MSTATUS_MPP) | (old & MSTATUS_MPP); /* WARL: no H mode */
    h->mstatus = s;
    if ((old ^ s) & MSTATUS_MXR)
        rv_tlb_flush_data(h);
    rv_update_modes(h);
    rv_kick(h); /* MIE/SIE may have enabled a pending interrupt */
}

/* Counter visibility from S/U (priv spec §3.1.11, §4.1.5) */
static bool counter_ok(const struct rv_hart *h, unsigned idx)
{
    if (h->priv < RV_PRV_M && !((h->mcounteren >> idx) & 1))
        return false;
    if (h->priv == RV_PRV_U && !((h->scounteren >> idx) & 1))
        return false;
    return true;
}

static uint64_t read_cycle(const struct rv_hart *h)
{
    return (h->mcountinhibit & 1) ? h->cycle_frozen : h->instret - h->cycle_base;
}

static uint64_t read_instret(const struct rv_hart *h)
{
    return (h->mcountinhibit & 4) ? h->instret_frozen : h->instret - h->instret_base;
}

static int csr_read(struct rv_hart *h, unsigned csr, uint64_t *v)
{
    switch (csr) {
    case CSR_FFLAGS:
    case CSR_FRM:
    case CSR_FCSR:
        if (rv_fs_off(h))
            return -1;
        *v = csr == CSR_FFLAGS ? h->fflags : csr == CSR_FRM ? h->frm : (h->frm << 5) | h->fflags;
        return 0;
    case CSR_CYCLE:
    case CSR_TIME:
    case CSR_INSTRET:
        if (!counter_ok(h, csr & 31))
            return -1;
        if (csr == CSR_TIME)
            *v = h->env.read_time ? h->env.read_time(h->env.opaque) : 0;
        else
            *v = csr == CSR_CYCLE ? read_cycle(h) : read_instret(h);
        return 0;
    case CSR_SSTATUS: *v = read_mstatus(h) & SSTATUS_RMASK; return 0;
    case CSR_SIE: *v = h->mie & h->mideleg & SIE_MASK; return 0;
    case CSR_STVEC: *v = h->stvec; return 0;
    case CSR_SCOUNTEREN: *v = h->scounteren; return 0;
    case CSR_SENVCFG: *v = h->senvcfg; return 0;
    case CSR_SSCRATCH: *v = h->sscratch; return 0;
    case CSR_SEPC: *v = h->sepc; return 0;
    case CSR_SCAUSE: *v = h->scause; return 0;
    case CSR_STVAL: *v = h->stval; return 0;
    case CSR_SIP: *v = rv_mip(h) & h->mideleg & SIE_MASK; return 0;
    case CSR_SATP:
        if (h->priv == RV_PRV_S && (h->mstatus & MSTATUS_TVM))
            return -1;
        *v = h->satp;
        return 0;
    case CSR_MSTATUS: *v = read_mstatus(h); return 0;
    case CSR_MISA: *v = h->misa; return 0;
    case CSR_MEDELEG: *v = h->medeleg; return 0;
    case CSR_MIDELEG: *v = h->mideleg; return 0;
    case CSR_MIE: *v = h->mie; return 0;
    case CSR_MTVEC: *v = h->mtvec; return 0;
    case CSR_MCOUNTEREN: *v = h->mcounteren; return 0;
    case CSR_MENVCFG: *v = h->menvcfg; return 0;
    case CSR_MCOUNTINHIBIT: *v = h->mcountinhibit; return 0;
    case CSR_MSCRATCH: *v = h->mscratch; return 0;
    case CSR_MEPC: *v = h->mepc; return 0;
    case CSR_MCAUSE: *v = h->mcause; return 0;
    case CSR_MTVAL: *v = h->mtval; return 0;
    case CSR_MIP: *v = rv_mip(h); return 0;
    case CSR_PMPCFG0:
    case CSR_PMPCFG2: {
        unsigned base = csr == CSR_PMPCFG0 ? 0 : 8;
        if (!h->pmp_n)
            return -1;
        *v = 0;
        for (unsigned i = 0; i < 8; i++)
            *v |= (uint64_t)h->pmpcfg[base + i] << (8 * i);
        return 0;
    }
    case CSR_MCYCLE: *v = read_cycle(h); return 0;
    case CSR_MINSTRET: *v = read_instret(h); return 0;
    case CSR_MVENDORID:
    case CSR_MARCHID:
    case CSR_MIMPID:
    case CSR_MCONFIGPTR: *v = 0; return 0;
    case CSR_MHARTID: *v = h->cfg.hartid; return 0;
    default: break;
    }
    if (csr >= CSR_PMPADDR0 && csr <= CSR_PMPADDR15) {
        if (csr - CSR_PMPADDR0 >= h->pmp_n)
            return -1;
        *v = h->pmpaddr[csr - CSR_PMPADDR0];
        return 0;
    }
    if (csr >= CSR_HPMCOUNTER3 && csr <= CSR_HPMCOUNTER31) {
        if ((csr & 31) > RV_HPM_LAST || !counter_ok(h, csr & 31))
            return -1;
        *v = 0;
        return 0;
    }
    if (csr >= CSR_MHPMCOUNTER3 && csr <= CSR_MHPMCOUNTER31) {
        if ((csr & 31) > RV_HPM_LAST)
            return -1;
        *v = 0;
        return 0;
    }
    if (csr >= CSR_MHPMEVENT3 && csr <= CSR_MHPMEVENT31) {
        *v = 0;
        return 0;
    }
    return -1;
}

static void write_pmpcfg(struct rv_hart *h, unsigned base, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        if (!(h->pmpcfg[base + i] & 0x80)) /* locked entries ignore writes */
            h->pmpcfg[base + i] = (uint8_t)(v >> (8 * i));
    rv_pmp_changed(h);
}

static void write_pmpaddr(struct rv_hart *h, unsigned i, uint64_t v)
{
    /* a locked TOR entry also locks the address below it (§3.7.1) */
    if (i + 1 < h->pmp_n && (h->pmpcfg[i + 1] & 0x80) && ((h->pmpcfg[i + 1] >> 3) & 3) == 1)
        return;
    if (h->pmpcfg[i] & 0x80)
        return;
    h->pmpaddr[i] = v;
    rv_pmp_changed(h);
}

/* Counter writes replace the increment of the writing instruction, which the
 * interpreter adds after we return (Zicntr). */
static void write_counter(struct rv_hart *h, bool cycle, uint64_t v)
{
    if (cycle) {
        h->cycle_frozen = v;
        h->cycle_base = h->instret + 1 - v;
    } else {
        h->instret_frozen = v;
        h->instret_base = h->instret + 1 - v;
    }
}

static void write_countinhibit(struct rv_hart *h, uint64_t v)
{
    uint64_t old = h->mcountinhibit;

    if ((v & 1) && !(old & 1))
        h->cycle_frozen = read_cycle(h);
    if (!(v & 1) && (old & 1))
        h->cycle_base = h->instret + 1 - h->cycle_frozen;
    if ((v & 4) && !(old & 4))
        h->instret_frozen = read_instret(h);
    if (!(v & 4) && (old & 4))
        h->instret_base = h->instret + 1 - h->instret_frozen;
    h->mcountinhibit = v;
}

static int csr_write(struct rv_hart *h, unsigned csr, uint64_t v)
{
    switch (csr) {
    case CSR_FFLAGS: h->fflags = v & 0x1f; break;
    case CSR_FRM: h->frm = v & 7; break;
    case CSR_FCSR:
        h->fflags = v & 0x1f;
        h->frm = (v >> 5) & 7;
        break;
    case CSR_SSTATUS: write_mstatus(h, SSTATUS_WMASK, v); return 0;
    case CSR_SIE: {
        uint64_t m = h->mideleg & SIE_MASK;
        h->mie = (h->mie & ~m) | (v & m);
        rv_kick(h);
        return 0;
    }
    case CSR_STVEC:
        if ((v & 3) < 2) /* QEMU 7.2 ignores writes of a reserved mode */
            h->stvec = v;
        return 0;
    case CSR_SCOUNTEREN: h->scounteren = v; return 0;
    case CSR_SENVCFG: h->senvcfg = v & SENVCFG_MASK; return 0;
    case CSR_SSCRATCH: h->sscratch = v; return 0;
    case CSR_SEPC: h->sepc = v & ~(uint64_t)1; return 0;
    case CSR_SCAUSE: h->scause = v; return 0;
    case CSR_STVAL: h->stval = v; return 0;
    case CSR_SATP: {
        unsigned mode = (unsigned)(v >> 60);
        if (h->priv == RV_PRV_S && (h->mstatus & MSTATUS_TVM))
            return -1;
        /* Bare, Sv39, Sv48 and (like QEMU 7.2) Sv57; other modes: no effect */
        if (mode != 0 && mode != 8 && mode != 9 && mode != 10)
            return 0;
        if (v != h->satp) {
            h->satp = v;
            rv_tlb_flush(h);
        }
        return 0;
    }
    case CSR_MSTATUS: write_mstatus(h, MSTATUS_WMASK, v); return 0;
    case CSR_MISA: return 0; /* WARL, writes ignored (QEMU 7.2 without misa-w) */
    case CSR_MEDELEG: h->medeleg = v & MEDELEG_MASK; return 0;
    case CSR_MIDELEG:
        h->mideleg = v & MIDELEG_MASK;
        rv_kick(h);
        return 0;
    case CSR_MIE:
        h->mie = v & MIE_MASK;
        rv_kick(h);
        return 0;
    case CSR_MTVEC:
        if ((v & 3) < 2)
            h->mtvec = v;
        return 0;
    case CSR_MCOUNTEREN: h->mcounteren = v; return 0;
    case CSR_MENVCFG: h->menvcfg = v & MENVCFG_MASK; return 0;
    case CSR_MCOUNTINHIBIT: write_countinhibit(h, v); return 0;
    case CSR_MSCRATCH: h->mscratch = v; return 0;
    case CSR_MEPC: h->mepc = v & ~(uint64_t)1; return 0;
    case CSR_MCAUSE: h->mcause = v; return 0;
    case CSR_MTVAL: h->mtval = v; return 0;
    case CSR_PMPCFG0:
    case CSR_PMPCFG2: write_pmpcfg(h, csr == CSR_PMPCFG0 ? 0 : 8, v); return 0;
    case CSR_MCYCLE: write_counter(h, true, v); return 0;
    case CSR_MINSTRET: write_counter(h, false, v); return 0;
    default:
        if (csr >= CSR_PMPADDR0 && csr <= CSR_PMPADDR15) {
            write_pmpaddr(h, csr - CSR_PMPADDR0, v);
            return 0;
        }
        /* hpm counters/events: present, read zero, writes ignored */
        return 0;
    }
    rv_fs_dirty(h); /* the FP CSRs fall out of the switch */
    return 0;
}

/*
 * Execute a CSR instruction.  ins->rm holds funct3, ins->imm the CSR number,
 * ins->rs1 the source register or 5-bit immediate, ins->rs2 the original rd.
 * Returns 0, or -1 for an illegal instruction.
 */
int rv_csr_insn(struct rv_hart *h, const struct rv_insn *ins, unsigned funct3)
{
    unsigned csr = (unsigned)ins->imm & 0xfff, kind = funct3 & 3;
    uint64_t src = (funct3 & 4) ? ins->rs1 : h->x[ins->rs1], old, nv;
    bool write = kind == 1 || ins->rs1 != 0; /* CSRRS/C with x0 or 0: read only */

    if (((csr >> 8) & 3) > h->priv)
        return -1;
    if (write && (csr >> 10) == 3)
        return -1;
    if (csr_read(h, csr, &old))
        return -1;
    if (write) {
        if (csr == CSR_MIP || csr == CSR_SIP) {
            /* Read-modify-write acts on the software-writable bits only, so a
             * device's SEIP line is never latched into the software bit
             * (priv spec §3.1.9). */
            uint64_t m = csr == CSR_MIP ? MIP_WMASK : (h->mideleg & SIP_WMASK);
            uint64_t sw = h->mip_sw;
            nv = kind == 1 ? src : kind == 2 ? sw | src : sw & ~src;
            h->mip_sw = (sw & ~m) | (nv & m);
            rv_kick(h);
        } else {
            nv = kind == 1 ? src : kind == 2 ? old | src : old & ~src;
            if (csr_write(h, csr, nv))
                return -1;
        }
    }
    h->x[ins->rd] = old;
    return 0;
}

void rv_csr_reset(struct rv_hart *h)
{
    h->mstatus = (2ull << 32) | (2ull << 34); /* UXL = SXL = 64 bits */
    h->misa = MISA_RV64 | MISA_EXT('I') | MISA_EXT('M') | MISA_EXT('A') | MISA_EXT('F') |
              MISA_EXT('D') | MISA_EXT('C') | MISA_EXT('S') | MISA_EXT('U');
    h->medeleg = h->mideleg = h->mie = h->mip_sw = 0;
    h->mtvec = h->stvec = h->mscratch = h->sscratch = 0;
    h->mepc = h->sepc = h->mcause = h->scause = h->mtval = h->stval = 0;
    h->mcounteren = h->scounteren = h->mcountinhibit = 0;
    h->menvcfg = h->senvcfg = h->satp = 0;
    h->cycle_base = h->instret_base = h->instret;
    h->cycle_frozen = h->instret_frozen = 0;
    h->fflags = h->frm = 0;
    memset(h->pmpcfg, 0, sizeof(h->pmpcfg));
    memset(h->pmpaddr, 0, sizeof(h->pmpaddr));
    h->pmp_active = 0;
}

const char *rv_csr_check(const struct rv_csr_image *c)
{
    unsigned mode = (unsigned)(c->satp >> 60);

    if (c->mstatus & ~(MSTATUS_WMASK | MSTATUS_UXL | MSTATUS_SXL))
        return "mstatus has bits no write can set";
    if (((c->mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT) == 2)
        return "mstatus.MPP is the reserved privilege 2";
    if ((c->mstatus & MSTATUS_SXL) != (2ull << 34))
        return "mstatus.SXL is not 64 bits";
    if (!(c->mstatus & MSTATUS_UXL)) /* writes of 0 leave UXL alone */
        return "mstatus.UXL is 0";
    if (c->medeleg & ~MEDELEG_MASK)
        return "medeleg has bits outside its mask";
    if (c->mideleg & ~MIDELEG_MASK)
        return "mideleg has bits outside its mask";
    if (c->mie & ~MIE_MASK)
        return "mie has bits outside its mask";
    if (c->mip_sw & ~MIP_WMASK)
        return "mip has software bits outside its mask";
    if ((c->mtvec & 3) >= 2 || (c->stvec & 3) >= 2)
        return "trap vector with a reserved mode";
    if ((c->mepc | c->sepc) & 1)
        return "odd exception pc";
    if (c->menvcfg & ~MENVCFG_MASK)
        return "menvcfg has bits outside its mask";
    if (c->senvcfg & ~SENVCFG_MASK)
        return "senvcfg has bits outside its mask";
    /* the modes a satp write accepts (see csr_write) */
    if (mode != 0 && mode != 8 && mode != 9 && mode != 10)
        return "satp mode not supported";
    if (c->fflags > 0x1f || c->frm > 7)
        return "fcsr out of range";
    return NULL;
}
