/* Throttling arithmetic (auto-converge, dirty-limit); see mig_throttle.h. */
#include "migration/mig_throttle.h"

#include "migration/migration.h"

unsigned mig_throttle_step(unsigned now, const struct mig_params *p, uint64_t dirty_bytes,
                           uint64_t threshold_bytes)
{
    unsigned max = p->max_cpu_throttle, inc = p->cpu_throttle_increment, next;

    if (max > MIG_THROTTLE_PCT_MAX)
        max = MIG_THROTTLE_PCT_MAX;
    if (now == 0) {
        next = p->cpu_throttle_initial;
    } else {
        if (p->cpu_throttle_tailslow && dirty_bytes) {
            /* QEMU's tailslow: no more than what would bring the dirty
             * rate down to the threshold, had it been proportional */
            double cpu_now = 100.0 - now;
            double ideal = cpu_now * ((double)threshold_bytes / (double)dirty_bytes);
            unsigned want = cpu_now > ideal ? (unsigned)(cpu_now - ideal) : 0;

            if (want < inc)
                inc = want;
        }
        next = now + inc;
    }
    if (next > max)
        next = max;
    if (next < MIG_THROTTLE_PCT_MIN)
        next = MIG_THROTTLE_PCT_MIN;
    return next;
}

bool mig_throttle_sync(struct mig_throttle *t, const struct mig_params *p, uint64_t now_ns,
                       uint64_t dirty_bytes, uint64_t xfer_bytes)
{
    uint64_t threshold;
    bool fire;

    if (!p->auto_converge && !p->dirty_limit)
        return false;
    if (t->period_start_ns == 0)
        t->period_start_ns = now_ns;
    t->dirty_bytes += dirty_bytes;
    t->xfer_bytes += xfer_bytes;
    if (now_ns - t->period_start_ns < MIG_THROTTLE_PERIOD_NS)
        return false;
    threshold = t->xfer_bytes * MIG_THROTTLE_THRESHOLD / 100;
    fire = t->dirty_bytes > threshold && ++t->high >= 2;
    if (fire) {
        t->high = 0;
        t->fired++;
        if (p->auto_converge)
            t->pct = mig_throttle_step(t->pct, p, t->dirty_bytes, threshold);
        if (p->dirty_limit)
            t->limit_on = true;
    }
    t->period_start_ns = now_ns;
    t->dirty_bytes = t->xfer_bytes = 0;
    return fire;
}

uint64_t mig_throttle_sleep_ns(unsigned pct, uint64_t ran_ns)
{
    if (pct == 0)
        return 0;
    if (pct > MIG_THROTTLE_PCT_MAX)
        pct = MIG_THROTTLE_PCT_MAX;
    return ran_ns * pct / (100 - pct);
}

uint64_t mig_throttle_bucket_spend(struct mig_throttle_bucket *b, uint64_t limit_bps,
                                   uint64_t period_ns, uint64_t now_ns, uint64_t bytes)
{
    int64_t cap = (int64_t)((double)limit_bps * (double)period_ns / 1e9);

    if (limit_bps == 0)
        return 0;
    if (b->at_ns == 0) {
        b->allowance = cap;
    } else if (now_ns > b->at_ns) {
        b->allowance += (int64_t)((double)limit_bps * (double)(now_ns - b->at_ns) / 1e9);
        if (b->allowance > cap)
            b->allowance = cap;
    }
    b->at_ns = now_ns;
    b->allowance -= (int64_t)bytes;
    if (b->allowance >= 0)
        return 0;
    return (uint64_t)((double)-b->allowance * 1e9 / (double)limit_bps);
}
