/*
 * bench/cpu kernels: each returns a 64-bit checksum of everything it
 * computed, so a wrong emulation shows up as a changed number. Iteration
 * counts come from BENCH_ITERS (quick or full build). Kernels allocate from
 * the bench heap, which bench_phase() resets between phases, and never
 * depend on time, so the same ELF gives the same checksums everywhere.
 */
#ifndef BENCH_KERN_H
#define BENCH_KERN_H

#include "rt.h"

/* integer (kern_int.c) */
uint64_t kern_list(void);   /* linked lists: find, reverse, merge sort */
uint64_t kern_matrix(void); /* int16/int32 matrix arithmetic */
uint64_t kern_state(void);  /* token-scanning state machine (switch) */
uint64_t kern_crc(void);    /* CRC-32 bitwise and table, CRC-16 */
uint64_t kern_hash(void);   /* open-addressing hash table under a spinlock */
uint64_t kern_sort(void);   /* qsort-style sort of ints and strings */

/* memory (kern_mem.c) */
uint64_t kern_memset(void);    /* 8 MiB fills, aligned and ragged */
uint64_t kern_memcpy(void);    /* 8 MiB copies: aligned, misaligned, overlap */
uint64_t kern_stream(void);    /* STREAM triad and a 16 MiB sum */
uint64_t kern_chase(void);     /* pointer chase, random cycle, 16 MiB/256 KiB */
uint64_t kern_gups(void);      /* random read-modify-write over 8 MiB */
uint64_t kern_pages(void);     /* one touch per 4 KiB page over 32 MiB */
uint64_t kern_smallcopy(void); /* many short copies, random size/alignment */

/* floating point (kern_fp.c) */
uint64_t kern_nbody(void);    /* double: sqrt, div, fma */
uint64_t kern_mandel(void);   /* double: mul/add/compare loop */
uint64_t kern_spectral(void); /* double: division-heavy mat-vec */
uint64_t kern_sgemm(void);    /* float: fmaf matmul, sqrtf/div normalise */
uint64_t kern_libm(void);     /* double: exp/log/sin polynomials, fcvt */

/* Shared helpers: memset/memcpy the way a libc writes them. */
void kern_mem_set(void *dst, int c, size_t n);
void kern_mem_copy(void *dst, const void *src, size_t n);
void kern_mem_move(void *dst, const void *src, size_t n);

/* Only the exact instruction, no errno fallback call. */
static inline double k_sqrt(double x)
{
    double r;
    __asm__("fsqrt.d %0, %1" : "=f"(r) : "f"(x));
    return r;
}

static inline float k_sqrtf(float x)
{
    float r;
    __asm__("fsqrt.s %0, %1" : "=f"(r) : "f"(x));
    return r;
}

static inline double k_fmin(double a, double b)
{
    double r;
    __asm__("fmin.d %0, %1, %2" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

static inline float k_fmaxf(float a, float b)
{
    float r;
    __asm__("fmax.s %0, %1, %2" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

/* Round to nearest even, as lrint() in the default rounding mode. */
static inline int64_t k_lrint(double x)
{
    int64_t r;
    __asm__("fcvt.l.d %0, %1, rne" : "=r"(r) : "f"(x));
    return r;
}

static inline uint64_t k_dbits(double d)
{
    union {
        double d;
        uint64_t u;
    } v = {d};
    return v.u;
}

static inline double k_bitsd(uint64_t u)
{
    union {
        uint64_t u;
        double d;
    } v = {u};
    return v.d;
}

static inline uint32_t k_fbits(float f)
{
    union {
        float f;
        uint32_t u;
    } v = {f};
    return v.u;
}

#endif
