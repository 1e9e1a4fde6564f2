/*
 * bench/cpu runtime: what a benchmark guest may use.
 *
 * Bare-metal RV64GC on the QEMU virt board, entered in M-mode by crt0.S.
 * A workload file defines bench_main(), which calls bench_phase() once per
 * kernel and returns; the runtime then prints the total and powers off.
 *
 * Output protocol (parsed by bench/cpu/run.sh, one record per line):
 *   BENCH <workload> <quick|full>
 *   CHK <phase> <16 hex digits>     checksum of one phase (must match QEMU)
 *   TIME <phase> <microseconds>     guest-side time of one phase (mtime)
 *   INFO <text>                     free text, never compared
 *   CHK total <16 hex digits>       all phase checksums folded together
 *   DONE
 * A failure prints "FAIL <reason>" and exits through the virt test device
 * with a non-zero code.
 */
#ifndef BENCH_RT_H
#define BENCH_RT_H

#include <stddef.h>
#include <stdint.h>

#ifdef BENCH_QUICK
#define BENCH_QUICK_MODE 1
#else
#define BENCH_QUICK_MODE 0
#endif

/* Iteration count of a kernel: full, or about 1/32 of it in the quick build. */
#define BENCH_ITERS(full) (BENCH_QUICK_MODE ? (((full) + 31) / 32) : (full))

/* Heap limit: 64 MiB of RAM from 0x8000_0000, all mapped by bench_paging_init. */
#define BENCH_RAM_BASE 0x80000000ul
#define BENCH_RAM_TOP  (BENCH_RAM_BASE + (64ul << 20))

#define BENCH_MTIME_HZ 10000000ul /* virt CLINT timebase */

/* Provided by the workload. */
void bench_main(void);

/* ---- output and exit ---- */
void bench_putc(char c);
void bench_puts(const char *s);
/* %s %c %d %u %x with optional 0/width and l/ll; nothing else. */
void bench_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_fail(const char *why) __attribute__((noreturn));

/* ---- phases ---- */
typedef uint64_t (*bench_kernel_fn)(void);
void bench_begin(const char *workload);
/* Resets the heap, runs fn, prints its CHK and TIME lines. */
void bench_phase(const char *name, bench_kernel_fn fn);

/* ---- helpers for kernels ---- */
uint64_t bench_now(void); /* mtime, BENCH_MTIME_HZ ticks */
/* Bump allocation from the heap; never fails silently (bench_fail). */
void *bench_alloc(size_t size, size_t align);

static inline uint64_t bench_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

/* xorshift64*: deterministic pseudo-random numbers, state never 0. */
static inline uint64_t bench_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* ---- privilege, paging and timer ---- */
/* Runs fn(arg) in S-mode on the current stack; returns its result. */
long bench_run_smode(long (*fn)(void *), void *arg);
/* Builds identity Sv39 tables: 4 KiB pages over [RAM_BASE, RAM_TOP),
 * a 1 GiB page over the devices below 0x4000_0000. Returns the satp value. */
uint64_t bench_paging_init(void);
/* Machine timer interrupt at hz; each tick also does sfence.vma.
 * bench_start() runs every workload under a 250 Hz tick. */
void bench_timer_start(unsigned hz);
void bench_timer_stop(void);
uint64_t bench_timer_ticks(void);

#endif
