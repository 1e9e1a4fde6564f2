/*
 * The busy page oracle (bench/hold, issue 13's benchmark): a guest that
 * keeps a large part of its RAM hot while checking all of it, so a live
 * migration that is paused, held and resumed must move every page it
 * dirtied meanwhile, and a page lost, left stale or moved on the way is
 * caught by the guest itself on the destination.
 *
 * The area runs from the end of the program (_heap_start) to the device tree
 * that the boot ROM passed in a1, as in mig_pagepass.c (~500 MiB with
 * -m 512M).  It is filled once: every 8-byte word of page P holds
 * (P << 32) | 1 (P: the page's physical address >> 12, never zero, so no
 * page is ever a zero page), then it prints
 *
 *     mig_busy: filled N MiB in M ms t=MTIME
 *
 * From then on:
 *  - hot: the first MIG_BUSY_HOT bytes of the area (64 MiB) are rewritten
 *    page after page, round robin, every MIG_BUSY_PERIOD_MS (250 ms) of
 *    mtime: each word of a page goes from (P << 32) | k to (P << 32) | k+1,
 *    and is checked to hold the first before it gets the second.  Paced as
 *    mig_dirty.c: a credit of pages per mtime, capped at 10 ms worth, so a
 *    stall (a migration's downtime) is not followed by a catch-up burst;
 *  - cold: the rest is only read, MIG_BUSY_COLD_RATE pages per second of
 *    mtime (same pacing), cycling, each page checked whole against its fill
 *    value; each full sweep prints `cold N t=MTIME`;
 *  - every 10 ms of mtime, as mig_dirty.c: `tick N t=MTIME w=PAGES` (PAGES:
 *    hot pages rewritten since the fill).
 *
 * A mismatch prints
 *
 *     FAIL hot|cold page 0xADDR word I expected 0xP got 0xQ
 *
 * and exits with status 3 through the test device (4 when mtime went back
 * between two ticks).  Runs forever; not a diff.py program.
 */
#include "rt.h"

#ifndef MIG_BUSY_HOT
#define MIG_BUSY_HOT (64UL << 20) /* bytes rewritten every period */
#endif
#ifndef MIG_BUSY_PERIOD_MS
#define MIG_BUSY_PERIOD_MS 250UL /* ms of mtime to rewrite the hot part once */
#endif
#ifndef MIG_BUSY_COLD_RATE
#define MIG_BUSY_COLD_RATE 32768UL /* cold pages checked per second of mtime */
#endif
#define PAGE_SIZE   4096UL
#define PAGE_WORDS  (PAGE_SIZE / 8)
#define TICK_PERIOD 100000UL     /* mtime units (100 ns): 10 ms */
#define MTIME_HZ    10000000UL   /* CLINT mtime frequency */
#define BATCH       64UL         /* pages between two clock reads */
#define SPIN_DELAY  1024         /* loop iterations between two idle clock reads */
#define AREA_MAX    (60UL << 20) /* without a usable a1 */

/* Check that every word of the page holds `want` and rewrite it with `next`
 * (want == next: check only); returns the index of the first bad word (its
 * value in *got) or -1. */
static long check_page(volatile uint64_t *p, uint64_t want, uint64_t next, uint64_t *got)
{
    for (unsigned long i = 0; i < PAGE_WORDS; i++) {
        uint64_t v = p[i];
        if (v != want) {
            *got = v;
            return (long)i;
        }
        if (next != want)
            p[i] = next;
    }
    return -1;
}

static void check_or_fail(const char *part, uint64_t addr, uint64_t want, uint64_t next)
{
    uint64_t got = 0;
    long bad = check_page((volatile uint64_t *)(uintptr_t)addr, want, next, &got);

    if (bad >= 0) {
        rt_printf("FAIL %s page 0x%lx word %ld expected 0x%lx got 0x%lx\n", part,
                  (unsigned long)addr, bad, (unsigned long)want, (unsigned long)got);
        rt_exit(3);
    }
}

/* Pages of credit earned since *last at `rate` pages per second of mtime
 * (*credit in units of 1/rate mtime), capped at one tick's worth. */
static uint64_t earn(uint64_t rate, uint64_t t, uint64_t *last, uint64_t *credit)
{
    uint64_t todo;

    *credit += (t - *last) * rate;
    if (*credit > TICK_PERIOD * rate)
        *credit = TICK_PERIOD * rate;
    *last = t;
    todo = *credit / MTIME_HZ;
    *credit -= todo * MTIME_HZ;
    return todo;
}

int main(void)
{
    uint64_t start = ((uint64_t)(uintptr_t)_heap_start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    uint64_t end = rt_boot_a1 & ~(PAGE_SIZE - 1);
    if (end < start + (8UL << 20) || end > 0x80000000UL + (16UL << 30))
        end = start + AREA_MAX;
    uint64_t npages = (end - start) / PAGE_SIZE;
    uint64_t hot = MIG_BUSY_HOT / PAGE_SIZE;
    if (hot > npages / 2)
        hot = npages / 2;
    uint64_t hot_rate = hot * 1000 / MIG_BUSY_PERIOD_MS, cold = npages - hot;
    rt_printf("mig_busy: area 0x%lx-0x%lx (%lu MiB), hot %lu MiB every %lu ms (%lu pages/s), "
              "cold %lu MiB checked at %lu pages/s\n",
              (unsigned long)start, (unsigned long)end, (unsigned long)((end - start) >> 20),
              (unsigned long)(hot * PAGE_SIZE >> 20), (unsigned long)MIG_BUSY_PERIOD_MS,
              (unsigned long)hot_rate, (unsigned long)(cold * PAGE_SIZE >> 20),
              (unsigned long)MIG_BUSY_COLD_RATE);

    uint64_t t0 = rt_mtime();
    for (uint64_t n = 0; n < npages; n++) {
        uint64_t addr = start + n * PAGE_SIZE, v = ((addr >> 12) << 32) | 1;
        volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)addr;
        for (unsigned long i = 0; i < PAGE_WORDS; i++)
            p[i] = v;
    }
    uint64_t t = rt_mtime();
    rt_printf("mig_busy: filled %lu MiB in %lu ms t=%lu\n", (unsigned long)((end - start) >> 20),
              (unsigned long)((t - t0) / 10000), (unsigned long)t);

    uint64_t written = 0, hp = 0, hpass = 1, cp = 0, sweeps = 0;
    uint64_t hot_credit = 0, hot_last = t, cold_credit = 0, cold_last = t;
    uint64_t next_tick = t + TICK_PERIOD, n = 1, last_t = t;
    for (;;) {
        t = rt_mtime();
        if (t < last_t) {
            rt_printf("FAIL time went backwards: t=%lu after t=%lu\n", (unsigned long)t,
                      (unsigned long)last_t);
            rt_exit(4);
        }
        last_t = t;
        if (t >= next_tick) {
            rt_printf("tick %lu t=%lu w=%lu\n", (unsigned long)n++, (unsigned long)t,
                      (unsigned long)written);
            next_tick = t + TICK_PERIOD;
        }
        uint64_t todo = earn(hot_rate, t, &hot_last, &hot_credit);
        uint64_t ctodo = earn(MIG_BUSY_COLD_RATE, t, &cold_last, &cold_credit);
        if (!todo && !ctodo)
            for (int i = 0; i < SPIN_DELAY; i++)
                __asm__ volatile("nop");
        /* at most a batch before the clock is read again: ticks stay on time */
        if (todo > BATCH) {
            hot_credit += (todo - BATCH) * MTIME_HZ;
            todo = BATCH;
        }
        if (ctodo > BATCH) {
            cold_credit += (ctodo - BATCH) * MTIME_HZ;
            ctodo = BATCH;
        }
        for (; todo; todo--) {
            uint64_t addr = start + hp * PAGE_SIZE, tag = (addr >> 12) << 32;
            check_or_fail("hot", addr, tag | hpass, tag | (hpass + 1));
            written++;
            if (++hp == hot) {
                hp = 0;
                hpass++;
            }
        }
        for (; ctodo; ctodo--) {
            uint64_t addr = start + (hot + cp) * PAGE_SIZE, v = ((addr >> 12) << 32) | 1;
            check_or_fail("cold", addr, v, v);
            if (++cp == cold) {
                cp = 0;
                rt_printf("cold %lu t=%lu\n", (unsigned long)++sweeps, (unsigned long)rt_mtime());
            }
        }
    }
}
