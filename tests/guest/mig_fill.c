/*
 * Live-migration benchmark guest for channel throughput (bench/migrate,
 * daemons.py's TLS row): fill the RAM from the end of the program up to the
 * device tree the boot ROM passed in a1 (most of RAM: ~1022 MiB with
 * -m 1G) once with pseudo-random words (xorshift64: no zero page, nothing a
 * compressor could shrink), print
 *
 *     mig_fill: filled N MiB in M ms t=MTIME
 *
 * and then idle as mig_ticker does (`tick N t=MTIME` every 10 ms of mtime,
 * touching no memory but the stack).  A live migration after the fill sends
 * every page once and little else, so ram.transferred / total-time is the
 * channel's rate.  Runs forever; not a diff.py program.
 */
#include "rt.h"

#define PAGE_SIZE   4096UL
#define TICK_PERIOD 100000UL /* mtime units (100 ns): 10 ms */
#define SPIN_DELAY  4096     /* loop iterations between two reads of mtime */

int main(void)
{
    uint64_t start = ((uint64_t)(uintptr_t)_heap_start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    uint64_t end = rt_boot_a1 & ~(PAGE_SIZE - 1);
    if (end < start + (8UL << 20) || end > 0x80000000UL + (16UL << 30))
        end = start + (60UL << 20);
    uint64_t t0 = rt_mtime(), x = 0x9e3779b97f4a7c15UL ^ t0;
    for (volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)start; (uint64_t)(uintptr_t)p < end;
         p++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *p = x;
    }
    uint64_t t = rt_mtime();
    rt_printf("mig_fill: filled %lu MiB in %lu ms t=%lu\n", (unsigned long)((end - start) >> 20),
              (unsigned long)((t - t0) / 10000), (unsigned long)t);
    uint64_t next = t + TICK_PERIOD;
    for (uint64_t n = 1;; n++) {
        while ((t = rt_mtime()) < next)
            for (int i = 0; i < SPIN_DELAY; i++)
                __asm__ volatile("nop");
        rt_printf("tick %lu t=%lu\n", (unsigned long)n, (unsigned long)t);
        next = t + TICK_PERIOD;
    }
}
