/*
 * Traps: exception and interrupt entry with delegation, xRET, interrupt
 * selection, privilege changes (which pick the TLB/jump cache in use), and
 * the fatal-error latch.  Privileged spec §3.1.6-3.1.9, §3.3.2, §4.1.1.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "hart/hart_int.h"

void rv_fatal(struct rv_hart *h, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(h->err, sizeof(h->err), fmt, ap);
    va_end(ap);
    h->fatal = true;
}

/* Choose the TLBs and jump cache for the current privilege and MPRV/SUM. */
void rv_update_modes(struct rv_hart *h)
{
    unsigned p = h->priv, eff = p;
    unsigned imode = p == RV_PRV_M ? RV_IMODE_M : p == RV_PRV_S ? RV_IMODE_S : RV_IMODE_U;
    unsigned dmode;

    if (p == RV_PRV_M && (h->mstatus & MSTATUS_MPRV))
        eff = (unsigned)((h->mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);
    if (eff == RV_PRV_M)
        dmode = RV_DMODE_M;
    else if (eff == RV_PRV_S)
        dmode = (h->mstatus & MSTATUS_SUM) ? RV_DMODE_S_SUM : RV_DMODE_S;
    else
        dmode = RV_DMODE_U;
    h->dtlb = &h->dtlbs[dmode];
    h->itlb = &h->itlbs[imode];
    h->jc = &h->jcs[imode];
}

void rv_set_priv(struct rv_hart *h, unsigned priv)
{
    h->priv = priv;
    rv_update_modes(h);
}

static uint64_t trap_pc(uint64_t tvec, bool intr, unsigned code)
{
    uint64_t base = tvec & ~(uint64_t)3;

    /* vectored mode applies to interrupts only (priv spec §3.1.7) */
    if ((tvec & 3) == 1 && intr)
        return base + 4ull * code;
    return base;
}

void rv_raise(struct rv_hart *h, uint64_t cause, uint64_t tval, uint64_t epc)
{
    bool intr = (cause & RV_CAUSE_INTR) != 0;
    unsigned code = (unsigned)(cause & 63);
    unsigned p = h->priv;
    uint64_t deleg = intr ? h->mideleg : h->medeleg;
    uint64_t s = h->mstatus;

    epc &= ~(uint64_t)1;
    h->resv_addr = UINT64_MAX; /* a trap breaks an LR/SC sequence */
    if (p <= RV_PRV_S && ((deleg >> code) & 1)) {
        h->scause = cause;
        h->sepc = epc;
        h->stval = tval;
        s = (s & ~MSTATUS_SPIE) | ((s & MSTATUS_SIE) ? MSTATUS_SPIE : 0);
        s &= ~MSTATUS_SIE;
        s = (s & ~MSTATUS_SPP) | (p == RV_PRV_S ? MSTATUS_SPP : 0);
        h->mstatus = s;
        h->pc = trap_pc(h->stvec, intr, code);
        rv_set_priv(h, RV_PRV_S);
    } else {
        h->mcause = cause;
        h->mepc = epc;
        h->mtval = tval;
        s = (s & ~MSTATUS_MPIE) | ((s & MSTATUS_MIE) ? MSTATUS_MPIE : 0);
        s &= ~MSTATUS_MIE;
        s = (s & ~MSTATUS_MPP) | ((uint64_t)p << MSTATUS_MPP_SHIFT);
        h->mstatus = s;
        h->pc = trap_pc(h->mtvec, intr, code);
        rv_set_priv(h, RV_PRV_M);
    }
    if (gw_unlikely(h->env.trace_trap != NULL))
        h->env.trace_trap(h->env.opaque, h->cfg.hartid, cause, epc, tval, p, h->priv);
}

int rv_pending_irq(const struct rv_hart *h)
{
    /* priority order of priv spec §3.1.9 */
    static const int order[] = {RV_IRQ_MEI, RV_IRQ_MSI, RV_IRQ_MTI,
                                RV_IRQ_SEI, RV_IRQ_SSI, RV_IRQ_STI};
    uint64_t pend = rv_mip(h) & h->mie & 0xaaa, sel = 0; /* the six standard ones */
    bool m_en, s_en;

    if (!pend)
        return -1;
    m_en = h->priv < RV_PRV_M || (h->mstatus & MSTATUS_MIE);
    s_en = h->priv < RV_PRV_S || (h->priv == RV_PRV_S && (h->mstatus & MSTATUS_SIE));
    if (m_en)
        sel = pend & ~h->mideleg;
    if (!sel && s_en)
        sel = pend & h->mideleg;
    if (!sel)
        return -1;
    for (unsigned i = 0; i < GW_ARRAY_SIZE(order); i++)
        if ((sel >> order[i]) & 1)
            return order[i];
    return -1;
}

int rv_mret(struct rv_hart *h)
{
    uint64_t s = h->mstatus;
    unsigned pp = (unsigned)((s & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT);

    if (h->priv != RV_PRV_M)
        return -1;
    /* QEMU 7.2 quirk (helper_mret): leaving M-mode while PMP is implemented
     * but has no active rule is an illegal instruction. */
    if (h->pmp_n && h->pmp_active == 0 && pp != RV_PRV_M)
        return -1;
    s = (s & ~MSTATUS_MIE) | ((s & MSTATUS_MPIE) ? MSTATUS_MIE : 0);
    s |= MSTATUS_MPIE;
    s &= ~MSTATUS_MPP; /* least-privileged mode: U */
    if (pp != RV_PRV_M)
        s &= ~MSTATUS_MPRV;
    h->mstatus = s;
    h->pc = h->mepc & ~(uint64_t)1;
    rv_set_priv(h, pp);
    rv_kick(h);
    return 0;
}

int rv_sret(struct rv_hart *h)
{
    uint64_t s = h->mstatus;
    unsigned pp = (s & MSTATUS_SPP) ? RV_PRV_S : RV_PRV_U;

    if (h->priv == RV_PRV_U || (h->priv == RV_PRV_S && (s & MSTATUS_TSR)))
        return -1;
    s = (s & ~MSTATUS_SIE) | ((s & MSTATUS_SPIE) ? MSTATUS_SIE : 0);
    s |= MSTATUS_SPIE;
    s &= ~MSTATUS_SPP;
    s &= ~MSTATUS_MPRV; /* xRET to a mode below M clears MPRV (spec 1.12) */
    h->mstatus = s;
    h->pc = h->sepc & ~(uint64_t)1;
    rv_set_priv(h, pp);
    rv_kick(h);
    return 0;
}
