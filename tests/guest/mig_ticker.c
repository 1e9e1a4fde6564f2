/*
 * Live-migration benchmark guest, the idle one (bench/migrate): print
 *
 *     tick N t=MTIME
 *
 * every 10 ms of the CLINT mtime (10 MHz) and wait in between, touching no
 * memory but the stack.  The gap between two ticks on either side of a live
 * migration is the pause the guest saw: in wall-clock time between the last
 * line on the source's serial output and the first on the destination's,
 * and in mtime between two consecutive ticks (the next deadline is set from
 * the time a tick is printed, so a late tick is never made up for and the
 * gap is 10 ms plus the stall).
 *
 * The wait is a light spin: a delay loop of 4096 iterations (tens of
 * microseconds) between two reads of mtime, so the emulator is not asked
 * for the device all the time (QEMU takes its global lock for every MMIO
 * access, which the migration thread needs too).
 * A WFI woken by the timer (mie.MTIE set, mstatus.MIE clear) would be idler,
 * but QEMU 7.2 does not re-arm the CLINT timer on the destination of a
 * migration, so the guest would sleep there forever; build with
 * -DMIG_TICKER_WFI to get that variant.  Runs forever; not a diff.py
 * program.
 */
#include "rt.h"

#define TICK_PERIOD 100000UL /* mtime units (100 ns): 10 ms */
#define SPIN_DELAY  4096     /* loop iterations between two reads of mtime */

int main(void)
{
#ifdef MIG_TICKER_WFI
    csr_clear(mstatus, MSTATUS_MIE);
    csr_set(mie, MIP_MTIP);
#endif
    uint64_t t = rt_mtime();
    rt_printf("mig_ticker: a tick every 10 ms, t=%lu\n", (unsigned long)t);
    uint64_t next = t + TICK_PERIOD;
    for (uint64_t n = 1;; n++) {
#ifdef MIG_TICKER_WFI
        rt_set_mtimecmp(next);
#endif
        while ((t = rt_mtime()) < next) {
#ifdef MIG_TICKER_WFI
            __asm__ volatile("wfi");
#else
            for (int i = 0; i < SPIN_DELAY; i++)
                __asm__ volatile("nop");
#endif
        }
        rt_printf("tick %lu t=%lu\n", (unsigned long)n, (unsigned long)t);
        next = t + TICK_PERIOD;
    }
}
