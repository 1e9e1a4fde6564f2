/*
 * The migration oracle (DESIGN.md §6, the idea of QEMU's migration-test
 * guest): rewrite every page of a large RAM area, pass after pass, and check
 * before each rewrite that the page still holds what the previous pass wrote.
 * A page lost, left stale or moved by a save/restore or a live migration is
 * caught by the guest itself on the destination.
 *
 * The area runs from the end of the program (_heap_start) to the device tree
 * that the boot ROM passed in a1 (QEMU and godwit-vm put it in the last
 * 2 MiB of RAM), so it covers most of RAM whatever -m says: 122 MiB with
 * -m 128M, 58 MiB with -m 64M.  Without a usable a1 it is MIG_AREA_SIZE.
 *
 * Every 8-byte word holds (page number << 32) | pass, so a page copied to
 * the wrong address is caught too.  Pass 1 expects zero everywhere: RAM
 * starts clean.  After each full pass it prints `pass N t=MTIME` (MTIME: the
 * CLINT mtime, 10 MHz), and mtime must never go backwards between two
 * passes.  It never exits on its own; a mismatch prints
 *
 *     FAIL page 0xADDR word I expected 0xP got 0xQ
 *
 * and exits with status 3 through the test device (4 when time went back).
 * Not a diff.py program (it runs forever): tests/linux/state_test.py runs it.
 */
#include "rt.h"

#ifndef MIG_AREA_SIZE
#define MIG_AREA_SIZE (60UL << 20)
#endif
#define PAGE_SIZE  4096UL
#define PAGE_WORDS (PAGE_SIZE / 8)

/* Check that every word of the page holds `want` and rewrite it with `next`;
 * returns the index of the first bad word (its value in *got) or -1. */
static long rewrite_page(volatile uint64_t *p, uint64_t want, uint64_t next, uint64_t *got)
{
    for (unsigned long i = 0; i < PAGE_WORDS; i++) {
        uint64_t v = p[i];
        if (v != want) {
            *got = v;
            return (long)i;
        }
        p[i] = next;
    }
    return -1;
}

int main(void)
{
    uint64_t start = ((uint64_t)(uintptr_t)_heap_start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
    uint64_t end = rt_boot_a1 & ~(PAGE_SIZE - 1);
    if (end < start + (8UL << 20) || end > 0x80000000UL + (16UL << 30))
        end = start + MIG_AREA_SIZE;
    uint64_t npages = (end - start) / PAGE_SIZE;
    rt_printf("mig_pagepass: area 0x%lx-0x%lx (%lu pages, %lu MiB)\n", (unsigned long)start,
              (unsigned long)end, (unsigned long)npages, (unsigned long)((end - start) >> 20));

    uint64_t last_t = rt_mtime();
    for (uint64_t pass = 1;; pass++) {
        for (uint64_t n = 0; n < npages; n++) {
            uint64_t addr = start + n * PAGE_SIZE;
            uint64_t tag = (addr >> 12) << 32;
            uint64_t want = pass == 1 ? 0 : (tag | (pass - 1));
            uint64_t got = 0;
            long bad = rewrite_page((volatile uint64_t *)(uintptr_t)addr, want, tag | pass, &got);
            if (bad >= 0) {
                rt_printf("FAIL page 0x%lx word %ld expected 0x%lx got 0x%lx (pass %lu)\n",
                          (unsigned long)addr, bad, (unsigned long)want, (unsigned long)got,
                          (unsigned long)pass);
                rt_exit(3);
            }
        }
        uint64_t t = rt_mtime();
        rt_printf("pass %lu t=%lu\n", (unsigned long)pass, (unsigned long)t);
        if (t < last_t) {
            rt_printf("FAIL time went backwards: t=%lu after t=%lu\n", (unsigned long)t,
                      (unsigned long)last_t);
            rt_exit(4);
        }
        last_t = t;
    }
}
