/*
 * CPU- and memory-bound workload for the dirty-logging overhead benchmark
 * (bench/migrate/overhead): each iteration mixes a 64-bit hash (multiply,
 * shifts, xor), a store to a 32 MiB area, one word per 64-byte line in
 * address order (the next pass one word further on, so every word is
 * written in 8 passes and every page is dirtied again every pass, 64 stores
 * a page: a fast dirtier with some locality), and a load from a
 * pseudo-random word of the same area.  Every 10 ms of mtime it prints
 *
 *     tick N t=MTIME w=ITERATIONS
 *
 * (cumulative iterations), so the runner measures the guest's speed over
 * windows of mtime: alone, and while the VM is being live-migrated (dirty
 * logging on, pre-copy rounds going).  Runs forever; not a diff.py program.
 */
#include "rt.h"

#ifndef AREA_SIZE
#define AREA_SIZE (32UL << 20)
#endif
#define AREA_WORDS  (AREA_SIZE / 8)
#define TICK_PERIOD 100000UL /* mtime units (100 ns): 10 ms */
#define BATCH       1024UL   /* iterations between two clock reads */

int main(void)
{
    volatile uint64_t *area = (volatile uint64_t *)(((uintptr_t)_heap_start + 4095) & ~4095UL);
    uint64_t t = rt_mtime();
    rt_printf("mig_dirty_mix: %lu KiB area at %p, t=%lu\n", (unsigned long)(AREA_SIZE >> 10),
              (void *)area, (unsigned long)t);
    uint64_t x = 0x9e3779b97f4a7c15UL, sum = 0, iters = 0, w = 0;
    uint64_t next_tick = t + TICK_PERIOD, n = 1;
    for (;;) {
        for (unsigned long i = 0; i < BATCH; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint64_t h = x * 0xbf58476d1ce4e5b9UL;
            h ^= h >> 31;
            area[w] = h + sum;
            w += 8;
            if (w >= AREA_WORDS)
                w = (w + 1) & 7;
            sum += area[(h >> 20) & (AREA_WORDS - 1)];
        }
        iters += BATCH;
        t = rt_mtime();
        if (t >= next_tick) {
            rt_printf("tick %lu t=%lu w=%lu\n", (unsigned long)n++, (unsigned long)t,
                      (unsigned long)iters);
            next_tick = t + TICK_PERIOD;
        }
    }
}
