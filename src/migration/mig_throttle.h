/*
 * Throttling a guest that dirties memory faster than pre-copy sends it
 * (docs/state.md, "Throttling"): the arithmetic, kept apart from threads
 * and the board so a unit test can drive it.
 *
 * Two modes, QEMU's: auto-converge slows every hart to (100 - pct) % of
 * the time, pct growing while pre-copy still does not converge; dirty-limit
 * (QEMU 8.1) holds each hart whose own dirty rate exceeds vcpu-dirty-limit
 * to about that rate and leaves the others alone.  Both switch on by
 * QEMU's rule (mig_throttle_sync); the engine decides, the machine's run
 * loop applies (mig_out_throttle, then mig_throttle_bucket_spend and
 * mig_throttle_sleep_ns between hart slices).
 */
#ifndef GODWIT_MIGRATION_MIG_THROTTLE_H
#define GODWIT_MIGRATION_MIG_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

struct mig_params;

#define MIG_THROTTLE_PERIOD_NS                                                                     \
    1000000000ull                 /* QEMU: the rule is looked at once a second at most             \
                                   */
#define MIG_THROTTLE_THRESHOLD 50 /* QEMU's throttle-trigger-threshold default, % */
#define MIG_THROTTLE_PCT_MIN   1  /* QEMU's CPU_THROTTLE_PCT_MIN */
#define MIG_THROTTLE_PCT_MAX   99 /* QEMU's CPU_THROTTLE_PCT_MAX */

/* The engine's side: the rule's state over the sync periods of one job. */
struct mig_throttle {
    uint64_t period_start_ns; /* host ns the current sync period began (0: not yet) */
    uint64_t dirty_bytes;     /* dirtied in it (pages found dirty at each sync) */
    uint64_t xfer_bytes;      /* sent in it */
    unsigned high;            /* QEMU's dirty_rate_high_cnt */
    unsigned pct;             /* auto-converge: the throttle now, 0 = none */
    bool limit_on;            /* dirty-limit: applied */
    uint64_t fired;           /* times the rule fired */
};

/*
 * A dirty-bitmap sync at now_ns: dirty_bytes found dirty, xfer_bytes sent
 * since the last sync.  Once at least MIG_THROTTLE_PERIOD_NS have gone by
 * since the period began, QEMU's rule: the period's dirty bytes above
 * MIG_THROTTLE_THRESHOLD % of its sent bytes, a second time (not
 * necessarily in a row), fires: auto-converge steps pct
 * (mig_throttle_step), dirty-limit switches on.  True if it fired.
 */
bool mig_throttle_sync(struct mig_throttle *t, const struct mig_params *p, uint64_t now_ns,
                       uint64_t dirty_bytes, uint64_t xfer_bytes);

/* QEMU's mig_throttle_guest_down: the next throttle percentage from now
 * (0: not throttling yet) given the period's dirty bytes and threshold
 * bytes; within [1, max-cpu-throttle]. */
unsigned mig_throttle_step(unsigned now, const struct mig_params *p, uint64_t dirty_bytes,
                           uint64_t threshold_bytes);

/* auto-converge: how long a hart that ran ran_ns must then sleep so it
 * runs (100 - pct) % of the time (QEMU: pct / (1 - pct) of its slice). */
uint64_t mig_throttle_sleep_ns(unsigned pct, uint64_t ran_ns);

/*
 * dirty-limit, one hart: a token bucket of bytes it may dirty, refilled at
 * limit_bps and holding at most one period's worth (limit x period), so a
 * hart idle for a while may write a burst of one period and no more.
 */
struct mig_throttle_bucket {
    int64_t allowance; /* bytes; below zero: owed */
    uint64_t at_ns;    /* when it was last refilled (0: never: starts full) */
};
/* The hart dirtied bytes up to now_ns: the ns it must now stand still
 * (0: none) for its rate to stay at limit_bps. */
uint64_t mig_throttle_bucket_spend(struct mig_throttle_bucket *b, uint64_t limit_bps,
                                   uint64_t period_ns, uint64_t now_ns, uint64_t bytes);

#endif
