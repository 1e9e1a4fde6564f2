/*
 * mig_dirty_mix.c over a 1 MiB area: the same CPU-bound loop (hash, a store
 * per 64-byte line, a random load), but its stores dirty at most 256 pages
 * between two syncs, so a live migration at 10 MB/s converges and can be
 * held there (bench/migrate/overhead.sh, BENCH_OVERHEAD_HELD=1: the guest's
 * speed while x-godwit-held-converged keeps the destination in sync).
 */
#define AREA_SIZE (1UL << 20)
#include "mig_dirty_mix.c"
