/*
 * Hart state save/load (hart.h, docs/state.md).
 *
 * The section holds the architectural state only: integer and FP
 * registers, pc, privilege, every CSR, the counters' bases, PMP, the LR
 * reservation and the interrupt lines.  Everything derived from it is
 * recomputed on load (PMP ranges, the TLB/jump-cache pointers for the
 * privilege) and every cache is dropped, so a loaded hart can never run a
 * translation or decoded block of the state it replaced.
 *
 * Layout, version 1 (all little-endian, fixed width):
 *   u64 hartid, u64 x[1..31], u64 pc, u64 f[0..31], u32 fflags, u32 frm,
 *   u8 priv, u64 mstatus misa medeleg mideleg mie mip_sw mip_hw mtvec stvec
 *   mscratch sscratch mepc sepc mcause scause mtval stval mcounteren
 *   scounteren mcountinhibit menvcfg senvcfg satp, u64 instret cycle_base
 *   instret_base cycle_frozen instret_frozen, u8 pmp_n, pmp_n x (u8 cfg,
 *   u64 addr), u64 resv_addr resv_val.
 * exc_cause/exc_tval are not saved: they only carry a fault from a slow
 * path to the instruction that raises it, never across a run-loop step.
 */
#include <errno.h>

#include "hart/hart_int.h"
#include "state/state_buf.h"

/* Everything the section carries, read before anything is applied. */
struct rv_hart_image {
    uint64_t hartid;
    uint64_t x[32];
    uint64_t pc;
    uint64_t f[32];
    uint8_t priv;
    struct rv_csr_image csr;
    uint64_t misa, mip_hw;
    uint64_t mscratch, sscratch, mcause, scause, mtval, stval;
    uint64_t mcounteren, scounteren, mcountinhibit;
    uint64_t instret, cycle_base, instret_base, cycle_frozen, instret_frozen;
    uint8_t pmp_n;
    uint8_t pmpcfg[16];
    uint64_t pmpaddr[16];
    uint64_t resv_addr, resv_val;
};

/* Interrupt lines a device can drive (priv spec §3.1.9: the six standard
 * interrupts; the board never raises anything else). */
#define RV_MIP_HW_MASK 0xaaaull

void rv_hart_save(const struct rv_hart *h, struct state_buf *b)
{
    state_put_u64(b, h->cfg.hartid);
    for (unsigned i = 1; i < 32; i++)
        state_put_u64(b, h->x[i]);
    state_put_u64(b, h->pc);
    for (unsigned i = 0; i < 32; i++)
        state_put_u64(b, h->f[i]);
    state_put_u32(b, h->fflags);
    state_put_u32(b, h->frm);
    state_put_u8(b, (uint8_t)h->priv);
    state_put_u64(b, h->mstatus);
    state_put_u64(b, h->misa);
    state_put_u64(b, h->medeleg);
    state_put_u64(b, h->mideleg);
    state_put_u64(b, h->mie);
    state_put_u64(b, h->mip_sw);
    state_put_u64(b, atomic_load(&h->mip_hw));
    state_put_u64(b, h->mtvec);
    state_put_u64(b, h->stvec);
    state_put_u64(b, h->mscratch);
    state_put_u64(b, h->sscratch);
    state_put_u64(b, h->mepc);
    state_put_u64(b, h->sepc);
    state_put_u64(b, h->mcause);
    state_put_u64(b, h->scause);
    state_put_u64(b, h->mtval);
    state_put_u64(b, h->stval);
    state_put_u64(b, h->mcounteren);
    state_put_u64(b, h->scounteren);
    state_put_u64(b, h->mcountinhibit);
    state_put_u64(b, h->menvcfg);
    state_put_u64(b, h->senvcfg);
    state_put_u64(b, h->satp);
    state_put_u64(b, h->instret);
    state_put_u64(b, h->cycle_base);
    state_put_u64(b, h->instret_base);
    state_put_u64(b, h->cycle_frozen);
    state_put_u64(b, h->instret_frozen);
    state_put_u8(b, (uint8_t)h->pmp_n);
    for (unsigned i = 0; i < h->pmp_n; i++) {
        state_put_u8(b, h->pmpcfg[i]);
        state_put_u64(b, h->pmpaddr[i]);
    }
    state_put_u64(b, h->resv_addr);
    state_put_u64(b, h->resv_val);
}

/* Read the section into s; the sticky error covers truncation. */
static void rv_hart_read(struct rv_hart_image *s, struct state_buf *b)
{
    s->hartid = state_get_u64(b);
    s->x[0] = 0;
    for (unsigned i = 1; i < 32; i++)
        s->x[i] = state_get_u64(b);
    s->pc = state_get_u64(b);
    for (unsigned i = 0; i < 32; i++)
        s->f[i] = state_get_u64(b);
    s->csr.fflags = state_get_u32(b);
    s->csr.frm = state_get_u32(b);
    s->priv = state_get_u8(b);
    s->csr.mstatus = state_get_u64(b);
    s->misa = state_get_u64(b);
    s->csr.medeleg = state_get_u64(b);
    s->csr.mideleg = state_get_u64(b);
    s->csr.mie = state_get_u64(b);
    s->csr.mip_sw = state_get_u64(b);
    s->mip_hw = state_get_u64(b);
    s->csr.mtvec = state_get_u64(b);
    s->csr.stvec = state_get_u64(b);
    s->mscratch = state_get_u64(b);
    s->sscratch = state_get_u64(b);
    s->csr.mepc = state_get_u64(b);
    s->csr.sepc = state_get_u64(b);
    s->mcause = state_get_u64(b);
    s->scause = state_get_u64(b);
    s->mtval = state_get_u64(b);
    s->stval = state_get_u64(b);
    s->mcounteren = state_get_u64(b);
    s->scounteren = state_get_u64(b);
    s->mcountinhibit = state_get_u64(b);
    s->csr.menvcfg = state_get_u64(b);
    s->csr.senvcfg = state_get_u64(b);
    s->csr.satp = state_get_u64(b);
    s->instret = state_get_u64(b);
    s->cycle_base = state_get_u64(b);
    s->instret_base = state_get_u64(b);
    s->cycle_frozen = state_get_u64(b);
    s->instret_frozen = state_get_u64(b);
    s->pmp_n = state_get_u8(b);
    memset(s->pmpcfg, 0, sizeof(s->pmpcfg));
    memset(s->pmpaddr, 0, sizeof(s->pmpaddr));
    if (s->pmp_n > 16) {
        state_buf_fail(b, -EINVAL, "hart: %u PMP entries (at most 16)", s->pmp_n);
        return;
    }
    for (unsigned i = 0; i < s->pmp_n; i++) {
        s->pmpcfg[i] = state_get_u8(b);
        s->pmpaddr[i] = state_get_u64(b);
    }
    s->resv_addr = state_get_u64(b);
    s->resv_val = state_get_u64(b);
}

/* Everything a running hart could not have produced is refused. */
static void rv_hart_check(const struct rv_hart *h, const struct rv_hart_image *s,
                          struct state_buf *b)
{
    const char *why;

    if (state_buf_error(b))
        return;
    if (s->hartid != h->cfg.hartid)
        state_buf_fail(b, -EINVAL, "hart: state of hart %llu loaded into hart %llu",
                       (unsigned long long)s->hartid, (unsigned long long)h->cfg.hartid);
    else if (s->priv != RV_PRV_U && s->priv != RV_PRV_S && s->priv != RV_PRV_M)
        state_buf_fail(b, -EINVAL, "hart: privilege level %u does not exist", s->priv);
    else if (s->misa != h->misa)
        state_buf_fail(b, -EINVAL, "hart: misa 0x%llx, this hart implements 0x%llx",
                       (unsigned long long)s->misa, (unsigned long long)h->misa);
    else if (s->pmp_n != h->pmp_n)
        state_buf_fail(b, -EINVAL, "hart: %u PMP entries, this hart has %u", s->pmp_n, h->pmp_n);
    else if (s->pc & 1) /* IALIGN=16 with C (unprivileged spec §1.5) */
        state_buf_fail(b, -EINVAL, "hart: odd pc 0x%llx", (unsigned long long)s->pc);
    else if (s->mip_hw & ~RV_MIP_HW_MASK)
        state_buf_fail(b, -EINVAL, "hart: interrupt lines 0x%llx do not exist",
                       (unsigned long long)s->mip_hw);
    else if ((why = rv_csr_check(&s->csr)) != NULL)
        state_buf_fail(b, -EINVAL, "hart: %s", why);
}

int rv_hart_load(struct rv_hart *h, struct state_buf *b, unsigned version)
{
    struct rv_hart_image s;

    if (version == 0 || version > RV_HART_STATE_VERSION) {
        state_buf_fail(b, -EINVAL, "hart: state version %u, this build knows up to %u", version,
                       RV_HART_STATE_VERSION);
        return -EINVAL;
    }
    rv_hart_read(&s, b);
    rv_hart_check(h, &s, b);
    if (state_buf_error(b))
        return -EINVAL;

    memcpy(h->x, s.x, sizeof(s.x));
    h->x[RV_XSINK] = 0;
    h->pc = s.pc;
    memcpy(h->f, s.f, sizeof(s.f));
    h->fflags = s.csr.fflags;
    h->frm = s.csr.frm;
    h->priv = s.priv;
    h->mstatus = s.csr.mstatus;
    h->medeleg = s.csr.medeleg;
    h->mideleg = s.csr.mideleg;
    h->mie = s.csr.mie;
    h->mip_sw = s.csr.mip_sw;
    atomic_store(&h->mip_hw, s.mip_hw);
    h->mtvec = s.csr.mtvec;
    h->stvec = s.csr.stvec;
    h->mscratch = s.mscratch;
    h->sscratch = s.sscratch;
    h->mepc = s.csr.mepc;
    h->sepc = s.csr.sepc;
    h->mcause = s.mcause;
    h->scause = s.scause;
    h->mtval = s.mtval;
    h->stval = s.stval;
    h->mcounteren = s.mcounteren;
    h->scounteren = s.scounteren;
    h->mcountinhibit = s.mcountinhibit;
    h->menvcfg = s.csr.menvcfg;
    h->senvcfg = s.csr.senvcfg;
    h->satp = s.csr.satp;
    h->instret = s.instret;
    h->cycle_base = s.cycle_base;
    h->instret_base = s.instret_base;
    h->cycle_frozen = s.cycle_frozen;
    h->instret_frozen = s.instret_frozen;
    memcpy(h->pmpcfg, s.pmpcfg, sizeof(h->pmpcfg));
    memcpy(h->pmpaddr, s.pmpaddr, sizeof(h->pmpaddr));
    h->resv_addr = s.resv_addr;
    h->resv_val = s.resv_val;
    h->exc_cause = h->exc_tval = 0;
    h->fatal = false;
    h->err[0] = '\0';

    /* Derived state and caches: nothing of the old state may survive. */
    rv_update_modes(h);
    rv_pmp_changed(h);
    rv_hart_flush_caches(h);
    rv_kick(h); /* a loaded interrupt may be pending */
    return 0;
}
