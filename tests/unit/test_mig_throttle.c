/* Unit tests for the throttling arithmetic (migration/mig_throttle.h):
 * QEMU's trigger rule and throttle steps, the auto-converge sleep share,
 * the dirty-limit token bucket, and gmem's count of newly dirtied pages. */
#include "board_check.h"
#include "mem/gmem.h"
#include "migration/mig_throttle.h"
#include "migration/migration.h"

#define MS  1000000ull
#define S   1000000000ull
#define MiB (1ull << 20)

static void test_rule(void)
{
    struct mig_params p;
    struct mig_throttle t = {0};

    mig_params_default(&p);
    CHECK(!mig_throttle_sync(&t, &p, 1 * S, 100 * MiB, 1 * MiB),
          "neither capability: the rule never fires");
    CHECK(t.period_start_ns == 0, "and keeps no state");
    p.auto_converge = true;
    /* syncs closer than a second add up: only whole periods are judged */
    CHECK(!mig_throttle_sync(&t, &p, 1 * S, 10 * MiB, 10 * MiB), "first sync starts a period");
    CHECK(!mig_throttle_sync(&t, &p, 1 * S + 500 * MS, 10 * MiB, 10 * MiB), "half a period");
    CHECK(!mig_throttle_sync(&t, &p, 2 * S, 10 * MiB, 10 * MiB), "period 1: high once");
    CHECK_EQ(t.high, 1, "one high period (30 MiB dirty > 50 %% of 30 MiB sent)");
    CHECK_EQ(t.pct, 0, "no throttle after one");
    /* a converging period in between does not reset the count (QEMU) */
    CHECK(!mig_throttle_sync(&t, &p, 3 * S, 1 * MiB, 10 * MiB), "period 2: low");
    CHECK_EQ(t.high, 1, "a low period keeps the count");
    CHECK(mig_throttle_sync(&t, &p, 4 * S, 6 * MiB, 10 * MiB), "period 3: high twice: fires");
    CHECK_EQ(t.pct, 20, "cpu-throttle-initial");
    CHECK_EQ(t.high, 0, "count starts over");
    CHECK(!mig_throttle_sync(&t, &p, 5 * S, 5 * MiB, 10 * MiB), "exactly 50 %%: not above");
    CHECK(!mig_throttle_sync(&t, &p, 6 * S, 6 * MiB, 10 * MiB), "high once more");
    CHECK(mig_throttle_sync(&t, &p, 7 * S, 6 * MiB, 10 * MiB), "fires again");
    CHECK_EQ(t.pct, 30, "+ cpu-throttle-increment");
    CHECK(!t.limit_on, "dirty-limit stays off");

    p.auto_converge = false;
    p.dirty_limit = true;
    t = (struct mig_throttle){0};
    (void)mig_throttle_sync(&t, &p, 1 * S, 1 * MiB, 1 * MiB);
    (void)mig_throttle_sync(&t, &p, 2 * S, 1 * MiB, 1 * MiB);
    CHECK(mig_throttle_sync(&t, &p, 3 * S, 1 * MiB, 1 * MiB) && t.limit_on && t.pct == 0,
          "dirty-limit: the same rule switches the limit on, no percentage");
}

static void test_step(void)
{
    struct mig_params p;

    mig_params_default(&p);
    CHECK_EQ(mig_throttle_step(0, &p, 0, 0), 20, "first step: initial");
    CHECK_EQ(mig_throttle_step(90, &p, 0, 0), 99, "capped at max-cpu-throttle (99)");
    CHECK_EQ(mig_throttle_step(99, &p, 0, 0), 99, "stays at the cap");
    p.max_cpu_throttle = 50;
    CHECK_EQ(mig_throttle_step(45, &p, 0, 0), 50, "a lower max-cpu-throttle caps");
    p.max_cpu_throttle = 99;
    p.cpu_throttle_tailslow = true;
    /* at 40 %: cpu 60; dirty 100, threshold 90: ideal 54, so +6 < 10 */
    CHECK_EQ(mig_throttle_step(40, &p, 100, 90), 46, "tailslow: only what the ideal asks");
    CHECK_EQ(mig_throttle_step(40, &p, 100, 10), 50, "tailslow: never more than the increment");
}

static void test_sleep(void)
{
    CHECK_EQ(mig_throttle_sleep_ns(0, 10 * MS), 0, "0 %%: no sleep");
    CHECK_EQ(mig_throttle_sleep_ns(20, 8 * MS), 2 * MS, "20 %%: 8 ms run, 2 ms asleep");
    CHECK_EQ(mig_throttle_sleep_ns(50, 10 * MS), 10 * MS, "50 %%: as long as it ran");
    CHECK_EQ(mig_throttle_sleep_ns(99, 1 * MS), 99 * MS, "99 %%: 1 in 100");
}

static void test_bucket(void)
{
    struct mig_throttle_bucket b = {0};
    uint64_t lim = 4 * MiB, wait;

    CHECK_EQ(mig_throttle_bucket_spend(&b, lim, 1 * S, 10 * S, 2 * MiB), 0,
             "starts with a period's worth");
    CHECK_EQ(mig_throttle_bucket_spend(&b, lim, 1 * S, 10 * S, 2 * MiB), 0, "all of it");
    wait = mig_throttle_bucket_spend(&b, lim, 1 * S, 10 * S, 1 * MiB);
    CHECK_EQ(wait, 250 * MS, "1 MiB over at 4 MiB/s: 250 ms");
    CHECK_EQ(mig_throttle_bucket_spend(&b, lim, 1 * S, 10 * S + 250 * MS, 0), 0, "paid back");
    CHECK_EQ(mig_throttle_bucket_spend(&b, lim, 1 * S, 100 * S, 0), 0, "idle a long time...");
    CHECK(b.allowance == (int64_t)lim, "...earns one period's worth, no more");
    /* a steady writer: 100 slices of 1 MiB, each released when due */
    uint64_t now = 200 * S, total = 0;
    b = (struct mig_throttle_bucket){0};
    (void)mig_throttle_bucket_spend(&b, lim, 1 * S, now, 4 * MiB); /* the burst */
    for (int i = 0; i < 100; i++) {
        wait = mig_throttle_bucket_spend(&b, lim, 1 * S, now, 1 * MiB);
        now += wait;
        total += 1 * MiB;
    }
    CHECK(now - 200 * S >= 24 * S && now - 200 * S <= 26 * S,
          "100 MiB at 4 MiB/s takes 25 s (took %.2f s)", (double)(now - 200 * S) / 1e9);
    CHECK_EQ(mig_throttle_bucket_spend(&b, 0, 1 * S, now, 100 * MiB), 0, "limit 0: none");
}

static void test_gmem_newly(void)
{
    struct gmem *m = gmem_new(0x80000000ull, 64 * GMEM_PAGE_SIZE);
    uint64_t bm[1] = {0};

    CHECK(m != NULL, "gmem_new");
    if (!m)
        return;
    CHECK_EQ(gmem_mark_dirty(m, 0x80000000ull, 1), 1, "a clean page: 1");
    CHECK_EQ(gmem_mark_dirty(m, 0x80000008ull, 8), 0, "the same page again: 0");
    CHECK_EQ(gmem_mark_dirty(m, 0x80000000ull, 3 * GMEM_PAGE_SIZE), 2, "three, one dirty: 2");
    CHECK_EQ(gmem_mark_dirty(m, 0x70000000ull, 8), 0, "outside RAM: 0");
    CHECK_EQ(gmem_dirty_collect(m, bm), 3, "collected 3");
    CHECK_EQ(gmem_mark_dirty(m, 0x80000000ull, 1), 1, "clean again after the collection");
    gmem_free(m);
}

int main(void)
{
    test_rule();
    test_step();
    test_sleep();
    test_bucket();
    test_gmem_newly();
    return board_check_done();
}
