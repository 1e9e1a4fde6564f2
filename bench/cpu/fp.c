/*
 * Workload "fp": double and single precision in M-mode: n-body (sqrt,
 * division, fma), Mandelbrot, spectral norm (division), fmaf matmul with
 * sqrtf normalisation, and libm-shaped exp/log/sin.
 */
#include "kern.h"

void bench_main(void)
{
    bench_begin("fp");
    bench_phase("nbody", kern_nbody);
    bench_phase("mandel", kern_mandel);
    bench_phase("spectral", kern_spectral);
    bench_phase("sgemm", kern_sgemm);
    bench_phase("libm", kern_libm);
}
