/*
 * Workload "int": CoreMark-like integer code in M-mode, bare metal.
 * Branchy control flow, loads and stores to small working sets, 16/32/64-bit
 * multiply, divide/remainder, indirect calls and jumps, atomics.
 */
#include "kern.h"

void bench_main(void)
{
    bench_begin("int");
    bench_phase("list", kern_list);
    bench_phase("matrix", kern_matrix);
    bench_phase("state", kern_state);
    bench_phase("crc", kern_crc);
    bench_phase("hash", kern_hash);
    bench_phase("sort", kern_sort);
}
