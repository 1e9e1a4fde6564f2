/*
 * Live-migration benchmark guest that dirties memory (bench/migrate): writes
 * one 8-byte word in each 4 KiB page of an area, page after page, round
 * robin, at MIG_DIRTY_RATE pages per second of mtime (default 4096 pages/s,
 * 16 MiB/s, over a 64 MiB area: every page is rewritten every 4 s), and
 * prints, as mig_ticker does, every 10 ms of mtime:
 *
 *     tick N t=MTIME w=PAGES
 *
 * (PAGES: pages written since the start).  The word written holds the page
 * number and a pass count, so no page ever goes back to zero (a migration
 * cannot skip it as a zero page).
 *
 * Pacing: the guest earns MIG_DIRTY_RATE pages of credit per second of mtime,
 * capped at 10 ms worth, so after a stall (a migration's downtime) it does
 * not dirty a burst to catch up; between pages it spins lightly (a delay
 * loop of 1024 iterations between two reads of mtime, as mig_ticker does).
 *
 * MIG_DIRTY_RATE 0 (mig_dirty_max.c) writes as fast as it can, checking the
 * clock every 256 pages, over MIG_DIRTY_AREA bytes, where 0 means from the
 * end of the program up to the device tree the boot ROM passed in a1 (most
 * of RAM: ~250 MiB with -m 256M).  MIG_DIRTY_FILL 1 (mig_dirty_fill.c)
 * first writes one word in every page of the area, so the whole area is
 * populated from the start (a migration's first pass sends all of it) while
 * the rate stays what MIG_DIRTY_RATE says.  Runs forever; not a diff.py
 * program.
 */
#include "rt.h"

#ifndef MIG_DIRTY_RATE
#define MIG_DIRTY_RATE 4096UL /* pages per second; 0: as fast as possible */
#endif
#ifndef MIG_DIRTY_AREA
#define MIG_DIRTY_AREA (64UL << 20) /* bytes; 0: up to the device tree */
#endif
#ifndef MIG_DIRTY_FILL
#define MIG_DIRTY_FILL 0 /* 1: populate every page of the area before the loop */
#endif
#define PAGE_SIZE   4096UL
#define TICK_PERIOD 100000UL   /* mtime units (100 ns): 10 ms */
#define MTIME_HZ    10000000UL /* CLINT mtime frequency */
#define BATCH       256UL      /* pages between two clock reads at full speed */
#define SPIN_DELAY  1024       /* loop iterations between two idle clock reads */

int main(void)
{
    uint64_t start = ((uint64_t)(uintptr_t)_heap_start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    uint64_t end = start + MIG_DIRTY_AREA;
    if (MIG_DIRTY_AREA == 0) {
        end = rt_boot_a1 & ~(PAGE_SIZE - 1);
        if (end < start + (8UL << 20) || end > 0x80000000UL + (16UL << 30))
            end = start + (60UL << 20);
    }
    uint64_t npages = (end - start) / PAGE_SIZE;
    /* pass 0 of every page: never zero, as the loop's words are not */
    for (uint64_t n = 0; MIG_DIRTY_FILL && n < npages; n++)
        *(volatile uint64_t *)(uintptr_t)(start + n * PAGE_SIZE) = (n << 32) | 0x80000000UL;
    uint64_t t = rt_mtime();
    rt_printf("mig_dirty: area 0x%lx-0x%lx (%lu MiB), %lu pages/s%s%s, t=%lu\n",
              (unsigned long)start, (unsigned long)end, (unsigned long)((end - start) >> 20),
              (unsigned long)MIG_DIRTY_RATE, MIG_DIRTY_RATE ? "" : " (as fast as possible)",
              MIG_DIRTY_FILL ? ", filled" : "", (unsigned long)t);

    const uint64_t cap = MIG_DIRTY_RATE ? TICK_PERIOD * MIG_DIRTY_RATE : 0;
    uint64_t written = 0, page = 0, pass = 1, credit = 0, last = t;
    uint64_t next_tick = t + TICK_PERIOD, n = 1;
    for (;;) {
        t = rt_mtime();
        if (t >= next_tick) {
            rt_printf("tick %lu t=%lu w=%lu\n", (unsigned long)n++, (unsigned long)t,
                      (unsigned long)written);
            next_tick = t + TICK_PERIOD;
        }
        uint64_t todo = BATCH;
        if (MIG_DIRTY_RATE) {
            /* credit in units of 1/MIG_DIRTY_RATE mtime: (t - last) * rate */
            credit += (t - last) * MIG_DIRTY_RATE;
            if (credit > cap)
                credit = cap;
            last = t;
            todo = credit / MTIME_HZ;
            credit -= todo * MTIME_HZ;
            if (!todo)
                for (int i = 0; i < SPIN_DELAY; i++)
                    __asm__ volatile("nop");
        }
        for (; todo; todo--) {
            volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)(start + page * PAGE_SIZE);
            *p = (page << 32) | pass;
            written++;
            if (++page == npages) {
                page = 0;
                pass++;
            }
        }
    }
}
