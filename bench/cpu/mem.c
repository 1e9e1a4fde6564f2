/*
 * Workload "mem": memory streams and latency in M-mode (physical
 * addressing): several-MiB fills and copies, STREAM triad, pointer chasing,
 * random updates, page-stride touches, short copies.
 */
#include "kern.h"

void bench_main(void)
{
    bench_begin("mem");
    bench_phase("memset", kern_memset);
    bench_phase("memcpy", kern_memcpy);
    bench_phase("stream", kern_stream);
    bench_phase("chase", kern_chase);
    bench_phase("gups", kern_gups);
    bench_phase("pages", kern_pages);
    bench_phase("smallcopy", kern_smallcopy);
}
