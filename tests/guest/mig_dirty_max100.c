/*
 * Live-migration benchmark guest of bench/migrate/heavy.sh (issue 16's
 * max-dirty case: "a 512 MiB guest rewriting 100 MiB as fast as it can"):
 * mig_dirty_max.c over a fixed 100 MiB area instead of most of RAM, so the
 * rest of a 512 MiB guest stays zero pages and the figures measure the hot
 * 100 MiB, not the size of RAM.  See mig_dirty.c.
 */
#define MIG_DIRTY_RATE 0UL
#define MIG_DIRTY_AREA (100UL << 20)
#include "mig_dirty.c"
