/*
 * Throttling the harts while a live migration does not converge
 * (docs/state.md, "Throttling"): the run loop's side of auto-converge and
 * dirty-limit.  The engine decides (mig_out_throttle); here the loop,
 * between hart slices, holds harts back by wall-clock time, never by
 * spinning:
 *
 *  - auto-converge: every slice a hart runs (t ns) adds t * pct / (100 -
 *    pct) ns that the whole loop then sleeps (all harts are throttled
 *    alike, and they share this one thread), so each runs (100 - pct) %
 *    of the time it would have;
 *  - dirty-limit: each hart has a token bucket of bytes (mig_throttle.h);
 *    a hart that dirtied more than it may is skipped until it has earned
 *    them back, while the others run on; the loop sleeps only when every
 *    hart is held back or in WFI.
 *
 * Nothing here is guest state: it is all dropped when the throttle lifts.
 */
#include <string.h>

#include "machine/virt_int.h"

#define VIRT_THROTTLE_MIN_SLEEP_NS  1000000ull /* sleep owed in at least 1 ms pieces */
#define VIRT_THROTTLE_LIMITED_INSNS 256        /* slice of a hart dirty-limit holds back */

/* The period's figures become the last period's. */
static void virt_throttle_roll(struct virt_hart_throttle *ht, uint64_t now, uint64_t period_ns)
{
    uint64_t len;

    if (ht->win_start_ns == 0) {
        ht->win_start_ns = now;
        return;
    }
    len = now - ht->win_start_ns;
    if (len < period_ns)
        return;
    ht->rate_bps = (uint64_t)((double)ht->win_bytes * 1e9 / (double)len);
    ht->last_held_ns = ht->win_held_ns;
    ht->last_run_ns = ht->win_run_ns;
    ht->last_bytes = ht->win_bytes;
    ht->win_start_ns = now;
    ht->win_bytes = ht->win_held_ns = ht->win_run_ns = 0;
}

void virt_throttle_begin(struct virt *vm, uint64_t now)
{
    struct virt_throttle *t = &vm->throttle;
    struct mig_throttle_now n;

    mig_out_throttle(vm->mig, &n);
    if (n.limit_bps && !t->now.limit_bps) { /* switched on: start counting from here */
        for (unsigned i = 0; i < vm->nharts; i++) {
            memset(&t->hart[i], 0, sizeof(t->hart[i]));
            t->hart[i].seen = rv_hart_dirtied(vm->harts[i]);
        }
    }
    if (!n.limit_bps)
        for (unsigned i = 0; i < vm->nharts; i++)
            t->hart[i].resume_ns = 0; /* lifted: nobody waits any longer */
    if (!n.pct)
        t->debt_ns = 0;
    t->now = n;
    t->active = n.pct || n.limit_bps;
    if (n.limit_bps)
        for (unsigned i = 0; i < vm->nharts; i++)
            virt_throttle_roll(&t->hart[i], now, n.period_ns);
}

bool virt_throttle_held(const struct virt *vm, unsigned i, uint64_t now)
{
    return vm->throttle.active && vm->throttle.hart[i].resume_ns > now;
}

uint64_t virt_throttle_budget(const struct virt *vm, unsigned i, uint64_t budget)
{
    /* a hart the limit holds back runs short slices: the bytes it may
     * dirty come in small pieces, not one long sleep after a big slice */
    if (vm->throttle.active && vm->throttle.now.limit_bps && vm->throttle.hart[i].limited &&
        budget > VIRT_THROTTLE_LIMITED_INSNS)
        return VIRT_THROTTLE_LIMITED_INSNS;
    return budget;
}

void virt_throttle_slice(struct virt *vm, unsigned i, uint64_t start, uint64_t end)
{
    struct virt_throttle *t = &vm->throttle;
    struct virt_hart_throttle *ht = &t->hart[i];
    uint64_t ran = end > start ? end - start : 0;

    if (!t->active)
        return;
    if (t->now.pct)
        t->debt_ns += (int64_t)mig_throttle_sleep_ns(t->now.pct, ran);
    if (t->now.limit_bps) {
        uint64_t d = rv_hart_dirtied(vm->harts[i]), bytes = (d - ht->seen) * GMEM_PAGE_SIZE, wait;

        ht->seen = d;
        ht->win_bytes += bytes;
        ht->win_run_ns += ran;
        wait =
            mig_throttle_bucket_spend(&ht->bucket, t->now.limit_bps, t->now.period_ns, end, bytes);
        /* short slices from the first wait until it has earned back half
         * a period's worth: a slice that happened to dirty nothing (the
         * guest printing, say) must not let a long one through */
        if (wait)
            ht->limited = true;
        else if ((double)ht->bucket.allowance >=
                 (double)t->now.limit_bps * (double)t->now.period_ns / 2e9)
            ht->limited = false;
        if (wait) {
            ht->resume_ns = end + wait;
            ht->win_held_ns += wait;
            ht->held_ns += wait;
        }
    }
}

uint64_t virt_throttle_wake(const struct virt *vm, bool ran, uint64_t now)
{
    const struct virt_throttle *t = &vm->throttle;
    uint64_t until = UINT64_MAX;

    if (!t->active)
        return UINT64_MAX;
    if (t->debt_ns >= (int64_t)VIRT_THROTTLE_MIN_SLEEP_NS)
        return now + (uint64_t)t->debt_ns;
    if (ran)
        return UINT64_MAX;
    for (unsigned i = 0; i < vm->nharts; i++)
        if (t->hart[i].resume_ns > now && t->hart[i].resume_ns < until)
            until = t->hart[i].resume_ns;
    return until;
}

void virt_throttle_slept(struct virt *vm, uint64_t slept_ns)
{
    struct virt_throttle *t = &vm->throttle;

    if (!t->now.pct)
        return;
    t->debt_ns -= (int64_t)slept_ns;
    t->slept_ns += slept_ns;
    /* oversleeping (timer slack) is paid back by the next slices, but
     * a long stall (a parked machine) earns no credit */
    if (t->debt_ns < -(int64_t)VIRT_THROTTLE_MIN_SLEEP_NS)
        t->debt_ns = -(int64_t)VIRT_THROTTLE_MIN_SLEEP_NS;
}
