/*
 * Workload "mmu": the way a Linux guest really runs: S-mode with Sv39
 * paging on (identity map, 4 KiB pages over the 64 MiB the benchmark uses),
 * under the runtime's 250 Hz tick whose handler flushes the TLB as a
 * context switch would. A mix of the other workloads' kernels; their
 * checksums equal the M-mode ones, only the translation path differs.
 */
#include "kern.h"

static long mmu_phases(void *arg)
{
    (void)arg;
    bench_phase("list", kern_list);
    bench_phase("hash", kern_hash);
    bench_phase("sort", kern_sort);
    bench_phase("memcpy", kern_memcpy);
    bench_phase("chase", kern_chase);
    bench_phase("gups", kern_gups);
    bench_phase("pages", kern_pages);
    bench_phase("smallcopy", kern_smallcopy);
    bench_phase("nbody", kern_nbody);
    return 0;
}

void bench_main(void)
{
    bench_begin("mmu");
    bench_paging_init();
    bench_run_smode(mmu_phases, NULL);
}
