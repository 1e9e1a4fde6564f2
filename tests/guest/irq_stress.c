/*
 * Asynchronous interrupts landing anywhere: a machine timer that re-arms
 * itself every few microseconds interrupts a computation mixing ALU, RVC,
 * memory, AMO, LR/SC and FP work (with fflags), run in M, S and U mode.
 * However often and wherever the interrupts land, the results must be
 * exact; they are printed.  How many interrupts land depends on timing, so
 * it is not printed (interrupts.c checks delivery itself).
 */
#include "rt.h"

static volatile unsigned long ticks;

static int m_hook(struct rt_frame *f)
{
    if (f->cause == (CAUSE_INTR | 7)) {
        ticks++;
        rt_set_mtimecmp(rt_mtime() + 100);
        return 1;
    }
    return 0;
}

static uint64_t mem[64];
static uint64_t amo_counter, lrsc_counter;

struct result {
    uint64_t x, memsum, amo, lrsc, fbits, fflags;
};
static struct result res;

static long work(long iters)
{
    uint64_t x = 1;
    double y = 1.0;
    for (long i = 0; i < iters; i++) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        mem[i & 63] += x >> 60;
        __asm__ volatile("amoadd.d zero, %1, (%0)" ::"r"(&amo_counter), "r"(x & 7) : "memory");
        __asm__ volatile("1: lr.d t0, (%0)\n\t"
                         "c.addi t0, 3\n\t"
                         "sc.d t1, t0, (%0)\n\t"
                         "bnez t1, 1b" ::"r"(&lrsc_counter)
                         : "t0", "t1", "memory");
        __asm__ volatile("fmadd.d %0, %0, %1, %2" : "+f"(y) : "f"(1.0000001), "f"(0.25));
    }
    uint64_t sum = 0;
    for (int k = 0; k < 64; k++)
        sum += mem[k];
    res.x = x;
    res.memsum = sum;
    res.amo = amo_counter;
    res.lrsc = lrsc_counter;
    __asm__ volatile("fmv.x.d %0, %1" : "=r"(res.fbits) : "f"(y));
    res.fflags = csr_read(fflags);
    return 0;
}

static void run(int mode)
{
    for (int k = 0; k < 64; k++)
        mem[k] = 0;
    amo_counter = lrsc_counter = 0;
    csr_write(fflags, 0);
    ticks = 0;
    rt_set_mtimecmp(rt_mtime() + 100);
    csr_set(mie, MIP_MTIP);
    if (mode == RT_M) {
        csr_set(mstatus, MSTATUS_MIE);
        work(100000);
        csr_clear(mstatus, MSTATUS_MIE);
    } else {
        csr_clear(mstatus, MSTATUS_MIE | MSTATUS_MPIE);
        rt_run_in_mode(mode, work, 100000);
    }
    csr_clear(mie, MIP_MTIP);
    rt_set_mtimecmp(-1UL);
    rt_printf("%c: x %lx memsum %lx amo %lx lrsc %lx y %lx fflags %lx\n", "US?M"[mode],
              (unsigned long)res.x, (unsigned long)res.memsum, (unsigned long)res.amo,
              (unsigned long)res.lrsc, (unsigned long)res.fbits, (unsigned long)res.fflags);
    RT_CHECK(res.lrsc == 3 * 100000);
}

int main(void)
{
    rt_mtrap_hook = m_hook;
    run(RT_M);
    run(RT_S);
    run(RT_U);
    rt_mtrap_hook = 0;
    return rt_check_failures();
}
