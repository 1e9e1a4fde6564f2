/*
 * Throttling test guest (tests/linux/throttle_test.py; docs/state.md,
 * "Throttling"): two harts, run with -smp 2.
 *
 *  - hart 0 writes one 8-byte word in each 4 KiB page of an area
 *    (MIG_THROTTLE_AREA bytes, 24 MiB, from _heap_start), page after
 *    page, round robin, as fast as it can: the writer a dirty-limit must
 *    slow.  The word holds the page number and a pass count (never zero).
 *    MIG_THROTTLE_SPIN N (mig_throttle_spin.c: 4000) spins N iterations
 *    of a loop that touches no memory after each page: a writer whose
 *    dirty rate is bound by the CPU time it gets, which auto-converge's
 *    throttle can bring down.
 *  - hart 1 counts in a loop that writes no memory but a progress record
 *    of three words (one page) every 65536 counts: the idle hart a
 *    dirty-limit must leave alone.
 *
 * Every 100 ms of mtime hart 0 prints
 *
 *     thr t=MTIME w=PAGES h1t=MTIME1 h1=COUNT
 *
 * PAGES: pages hart 0 wrote since the start; COUNT: hart 1's count at
 * MTIME1 (hart 1's own clock reading, so its rate is right even when hart 0
 * prints late because it was held back).  Runs forever; not a diff.py
 * program.
 */
#include "rt.h"

#ifndef MIG_THROTTLE_AREA
#define MIG_THROTTLE_AREA (24UL << 20) /* fits -m 64M */
#endif
#ifndef MIG_THROTTLE_SPIN
#define MIG_THROTTLE_SPIN 0 /* register-only loop iterations after each page */
#endif
#define PAGE_SIZE    4096UL
#define PRINT_PERIOD 1000000UL /* mtime units (100 ns): 100 ms */
#define BATCH        64UL      /* pages between two clock reads */

/* hart 1's progress: seq odd while it writes (hart 0 retries) */
static volatile uint64_t h1_seq, h1_count, h1_time;
static uint8_t h1_stack[8192] __attribute__((aligned(16)));

static void hart1_main(unsigned long hartid)
{
    uint64_t n = 0;

    (void)hartid;
    for (;;) {
        n++;
        if ((n & 0xffff) == 0) {
            h1_seq++;
            __asm__ volatile("fence w, w" ::: "memory");
            h1_count = n;
            h1_time = rt_mtime();
            __asm__ volatile("fence w, w" ::: "memory");
            h1_seq++;
        }
    }
}

static void h1_read(uint64_t *count, uint64_t *time)
{
    uint64_t s;

    do {
        s = h1_seq;
        __asm__ volatile("fence r, r" ::: "memory");
        *count = h1_count;
        *time = h1_time;
        __asm__ volatile("fence r, r" ::: "memory");
    } while ((s & 1) || s != h1_seq);
}

int main(void)
{
    uint64_t start = ((uint64_t)(uintptr_t)_heap_start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    uint64_t npages = MIG_THROTTLE_AREA / PAGE_SIZE, page = 0, pass = 1, written = 0;
    uint64_t next_print;

    rt_secondary.sp = (uint64_t)(uintptr_t)(h1_stack + sizeof(h1_stack));
    __asm__ volatile("fence w, w" ::: "memory");
    rt_secondary.entry = hart1_main;
    __asm__ volatile("fence w, w" ::: "memory");
    *(volatile uint32_t *)(RT_CLINT_MSIP + 4) = 1; /* wake hart 1 */
    rt_printf("mig_throttle: area %lu MiB at 0x%lx\n", (unsigned long)(MIG_THROTTLE_AREA >> 20),
              (unsigned long)start);
    next_print = rt_mtime() + PRINT_PERIOD;
    for (;;) {
        uint64_t now;

        for (unsigned long i = 0; i < BATCH; i++) {
            *(volatile uint64_t *)(uintptr_t)(start + page * PAGE_SIZE) = (page << 32) | pass;
            for (unsigned long k = 0; k < MIG_THROTTLE_SPIN; k++)
                __asm__ volatile("" ::: "memory");
            if (++page == npages) {
                page = 0;
                pass++;
            }
        }
        written += BATCH;
        now = rt_mtime();
        if (now >= next_print) {
            uint64_t c, t;

            h1_read(&c, &t);
            rt_printf("thr t=%lu w=%lu h1t=%lu h1=%lu\n", (unsigned long)now,
                      (unsigned long)written, (unsigned long)t, (unsigned long)c);
            next_print = now + PRINT_PERIOD;
        }
    }
    return 0;
}
