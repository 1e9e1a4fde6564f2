/*
 * Live-migration test guest with a known, low dirty rate over a populated
 * area (tests/linux/hold_test.py): every page of a 64 MiB area written once
 * at the start, then one word per page, round robin, at 256 pages per second
 * of mtime (1 MiB/s), with the same `tick N t=MTIME w=PAGES` lines every
 * 10 ms of mtime.  mig_dirty.c with MIG_DIRTY_FILL 1 (see there).
 */
#define MIG_DIRTY_RATE 256UL
#define MIG_DIRTY_FILL 1
#include "mig_dirty.c"
