/*
 * Live-migration benchmark guest dirtying memory as fast as it can: one word
 * per 4 KiB page, round robin over most of RAM (from the end of the program
 * to the device tree), with the same `tick N t=MTIME w=PAGES` lines every
 * 10 ms of mtime.  mig_dirty.c with MIG_DIRTY_RATE 0 (see there).
 */
#define MIG_DIRTY_RATE 0UL
#define MIG_DIRTY_AREA 0UL
#include "mig_dirty.c"
