/*
 * Interrupts: the CLINT timer (mtimecmp/mtime) and software interrupt
 * (msip) taken in M-mode, mip.MTIP/MSIP following the device, WFI waking
 * with interrupts globally disabled, priority between pending interrupts,
 * M-level interrupts preempting S/U regardless of mstatus.MIE, delegated
 * interrupts not taken in M, S software interrupts via sip.SSIP, the
 * OpenSBI-style timer (S asks M by ecall, M's timer handler raises
 * mip.STIP for S), and vectored mtvec.  Only causes, modes and
 * orderings are printed, never times.
 */
#include "rt.h"

#define ECALL_SET_TIMER 0x54494d45 /* "TIME": a0 = absolute mtimecmp for S */
#define INTR(n)         (CAUSE_INTR | (n))

struct event {
    uint64_t cause;
    int from, to;
};
static volatile struct event log[32];
static volatile int nlog;
static volatile int sbi_timer; /* M forwards MTI to S as STIP */

static void log_event(const struct rt_frame *f, int from, int to)
{
    if (nlog < 32) {
        log[nlog].cause = f->cause;
        log[nlog].from = from;
        log[nlog].to = to;
    }
    nlog++;
}

static void print_log(const char *what)
{
    rt_printf("%s:", what);
    for (int i = 0; i < nlog && i < 32; i++)
        rt_printf(" %s%lu(%c->%c)", log[i].cause & CAUSE_INTR ? "irq" : "exc",
                  (unsigned long)(log[i].cause & 0xff), "US?M"[log[i].from], "US?M"[log[i].to]);
    if (!nlog)
        rt_printf(" none");
    rt_printf("\n");
    nlog = 0;
}

static int m_hook(struct rt_frame *f)
{
    int from = (int)((f->status >> 11) & 3);
    if (f->cause & CAUSE_INTR) {
        log_event(f, from, RT_M);
        switch (f->cause & 0xff) {
        case 7:
            if (sbi_timer) {
                csr_set(mip, MIP_STIP);
                csr_clear(mie, MIP_MTIP);
            } else {
                rt_set_mtimecmp(-1UL);
            }
            break;
        case 3: rt_set_msip(0); break;
        case 1: csr_clear(mip, MIP_SSIP); break;
        default: csr_clear(mie, 1UL << (f->cause & 0xff)); break;
        }
        return 1;
    }
    if (f->cause == CAUSE_ECALL_S && f->x[17] == ECALL_SET_TIMER) {
        rt_set_mtimecmp(f->x[10]);
        csr_clear(mip, MIP_STIP);
        csr_set(mie, MIP_MTIP);
        f->epc += 4;
        return 1;
    }
    return 0;
}

static void s_set_timer(uint64_t when)
{
    register uint64_t a0 __asm__("a0") = when;
    register uint64_t a7 __asm__("a7") = ECALL_SET_TIMER;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a7) : "memory");
}

static int s_hook(struct rt_frame *f)
{
    int from = (f->status & MSTATUS_SPP) ? RT_S : RT_U;
    if (f->cause & CAUSE_INTR) {
        log_event(f, from, RT_S);
        switch (f->cause & 0xff) {
        case 5: s_set_timer(-1UL); break; /* M clears STIP */
        case 1: csr_clear(sip, MIP_SSIP); break;
        default: csr_clear(sie, 1UL << (f->cause & 0xff)); break;
        }
        return 1;
    }
    return 0;
}

static void wait_events(int n)
{
    uint64_t deadline = rt_mtime() + 10000000; /* 1 s of mtime */
    while (nlog < n && rt_mtime() < deadline)
        __asm__ volatile("wfi");
}

static void test_m_timer(void)
{
    rt_set_mtimecmp(-1UL);
    rt_printf("mtimecmp far: MTIP=%lu\n", (csr_read(mip) >> 7) & 1);
    rt_set_mtimecmp(0);
    rt_printf("mtimecmp=0: MTIP=%lu\n", (csr_read(mip) >> 7) & 1);
    rt_set_mtimecmp(-1UL);
    rt_printf("mtimecmp far again: MTIP=%lu\n", (csr_read(mip) >> 7) & 1);

    /* Timer interrupt taken in M from a WFI loop. */
    rt_set_mtimecmp(rt_mtime() + 2000);
    csr_set(mie, MIP_MTIP);
    csr_set(mstatus, MSTATUS_MIE);
    wait_events(1);
    csr_clear(mstatus, MSTATUS_MIE);
    csr_clear(mie, MIP_MTIP);
    print_log("M timer");
    rt_printf("after handler: MTIP=%lu\n", (csr_read(mip) >> 7) & 1);

    /* WFI wakes on a pending enabled interrupt even with MIE = 0; no trap. */
    rt_set_mtimecmp(rt_mtime() + 2000);
    csr_set(mie, MIP_MTIP);
    uint64_t deadline = rt_mtime() + 10000000;
    while (!(csr_read(mip) & MIP_MTIP) && rt_mtime() < deadline)
        __asm__ volatile("wfi");
    rt_printf("wfi with MIE=0: MTIP=%lu", (csr_read(mip) >> 7) & 1);
    print_log(", traps");
    csr_clear(mie, MIP_MTIP);
    rt_set_mtimecmp(-1UL);

    /* 32-bit halves of mtimecmp. */
    volatile uint32_t *cmp = (volatile uint32_t *)RT_CLINT_MTIMECMP;
    cmp[1] = 0x12345678;
    cmp[0] = 0x9abcdef0;
    rt_printf("mtimecmp halves: %lx\n", *(volatile uint64_t *)RT_CLINT_MTIMECMP);
    rt_set_mtimecmp(-1UL);
}

static void test_msip(void)
{
    rt_set_msip(1);
    rt_printf("msip=1: MSIP=%lu msip reg=%x\n", (csr_read(mip) >> 3) & 1,
              *(volatile uint32_t *)RT_CLINT_MSIP);
    csr_set(mie, MIP_MSIP);
    csr_set(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop");
    csr_clear(mstatus, MSTATUS_MIE);
    print_log("M software");
    rt_printf("after handler: MSIP=%lu\n", (csr_read(mip) >> 3) & 1);
    /* Only bit 0 of msip is writable. */
    rt_set_msip(0xfffffffe);
    rt_printf("msip <- fffffffe: %x MSIP=%lu\n", *(volatile uint32_t *)RT_CLINT_MSIP,
              (csr_read(mip) >> 3) & 1);
    csr_clear(mie, MIP_MSIP);
}

static void test_priority(void)
{
    /*
     * MTI and MSI both pending: MSI first (priv spec 3.1.9).  Not tested with
     * an undelegated SSI as well: QEMU 7.2 takes the lowest-numbered pending
     * interrupt first (SSI before MSI and MTI), against the spec's order.
     */
    rt_set_mtimecmp(0);
    rt_set_msip(1);
    csr_set(mie, MIP_MTIP | MIP_MSIP);
    csr_set(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop\n\tnop");
    csr_clear(mstatus, MSTATUS_MIE);
    csr_clear(mie, MIP_MTIP | MIP_MSIP);
    print_log("priority MSI/MTI");
    /* An undelegated SSI alone is an M-level interrupt. */
    csr_set(mip, MIP_SSIP);
    csr_set(mie, MIP_SSIP);
    csr_set(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop\n\tnop");
    csr_clear(mstatus, MSTATUS_MIE);
    csr_clear(mie, MIP_SSIP);
    print_log("undelegated SSI");
}

static long s_spin(long n)
{
    for (volatile long i = 0; i < n; i++)
        ;
    return 0;
}

static long s_wait(long n)
{
    uint64_t deadline = rt_mtime() + 10000000;
    while (nlog < n && rt_mtime() < deadline)
        __asm__ volatile("wfi");
    return nlog;
}

static long s_ssip(long unused)
{
    (void)unused;
    csr_set(sie, MIP_SSIP);
    csr_set(sstatus, MSTATUS_SIE);
    csr_set(sip, MIP_SSIP);
    __asm__ volatile("nop");
    csr_clear(sstatus, MSTATUS_SIE);
    return 0;
}

static long s_sbi_timer(long unused)
{
    (void)unused;
    csr_set(sie, MIP_STIP);
    csr_set(sstatus, MSTATUS_SIE);
    s_set_timer(rt_mtime() + 2000);
    s_wait(2);
    csr_clear(sstatus, MSTATUS_SIE);
    /* STIP must be clear again now. */
    return (long)(csr_read(sip) & MIP_STIP);
}

static void test_lower_modes(void)
{
    /* M timer while in S and U with mstatus.MIE = 0: still taken. */
    for (int mode = RT_U; mode <= RT_S; mode++) {
        rt_set_mtimecmp(0);
        csr_set(mie, MIP_MTIP);
        csr_clear(mstatus, MSTATUS_MIE | MSTATUS_MPIE);
        rt_run_in_mode(mode, s_spin, 10);
        csr_clear(mie, MIP_MTIP);
        print_log(mode == RT_S ? "MTI while in S, MIE=0" : "MTI while in U, MIE=0");
    }

    /* Delegated SSIP pending in M with MIE = 1: not taken in M. */
    csr_write(mideleg, MIP_SSIP | MIP_STIP);
    csr_set(mie, MIP_SSIP);
    csr_set(mip, MIP_SSIP);
    csr_set(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop\n\tnop");
    csr_clear(mstatus, MSTATUS_MIE);
    print_log("delegated SSIP in M");
    /* In S it needs SIE = 1; in U it is always enabled. */
    csr_clear(sstatus, MSTATUS_SIE);
    rt_run_in_mode(RT_S, s_spin, 10);
    print_log("delegated SSIP in S, SIE=0");
    rt_run_in_mode(RT_U, s_spin, 10);
    print_log("delegated SSIP in U");
    csr_clear(mip, MIP_SSIP);

    /* S raises its own software interrupt. */
    rt_run_in_mode(RT_S, s_ssip, 0);
    print_log("S writes sip.SSIP");

    /* OpenSBI-style timer for S. */
    sbi_timer = 1;
    long stip = rt_run_in_mode(RT_S, s_sbi_timer, 0);
    sbi_timer = 0;
    print_log("S timer via M");
    rt_printf("STIP after: %ld\n", stip);
    csr_write(mideleg, 0);
    csr_write(mie, 0);
    rt_set_mtimecmp(-1UL);
}

/* Vectored mtvec table: entry i records i in sscratch, then the common
 * entry (which reads mcause anyway). */
extern char vec_m[];
__asm__(".text\n"
        ".balign 256\n"
        ".option push\n"
        ".option norvc\n"
        "vec_m:\n"
        ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
        "  j vec_m_\\i\n"
        ".endr\n"
        ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"
        "vec_m_\\i:\n"
        "  csrwi sscratch, \\i\n" /* free here: no S trap is in flight */
        "  j rt_trap_entry_m\n"
        ".endr\n"
        ".option pop\n");

static void test_vectored(void)
{
    extern char _strap_stack_top[];
    uint64_t old = csr_read(mtvec);
    csr_write(mtvec, (uintptr_t)vec_m | 1);
    rt_printf("mtvec vectored: mode=%lu\n", csr_read(mtvec) & 3);

    csr_write(sscratch, 0x55);
    rt_trap_reset();
    __asm__ volatile("li a7, 0\n\tecall" ::: "a7");
    rt_printf("ecall: entry %lu", csr_read(sscratch));
    rt_print_trap("");

    csr_write(sscratch, 0x55);
    rt_set_mtimecmp(0);
    csr_set(mie, MIP_MTIP);
    csr_set(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop");
    csr_clear(mstatus, MSTATUS_MIE);
    csr_clear(mie, MIP_MTIP);
    rt_printf("timer: entry %lu", csr_read(sscratch));
    print_log("");

    csr_write(sscratch, 0x55);
    rt_set_msip(1);
    csr_set(mie, MIP_MSIP);
    csr_set(mstatus, MSTATUS_MIE);
    __asm__ volatile("nop");
    csr_clear(mstatus, MSTATUS_MIE);
    csr_clear(mie, MIP_MSIP);
    rt_printf("msip: entry %lu", csr_read(sscratch));
    print_log("");

    csr_write(mtvec, old);
    csr_write(sscratch, (uintptr_t)_strap_stack_top);
    rt_set_mtimecmp(-1UL);
}

int main(void)
{
    rt_mtrap_hook = m_hook;
    rt_strap_hook = s_hook;
    test_m_timer();
    test_msip();
    test_priority();
    test_lower_modes();
    test_vectored();
    rt_mtrap_hook = 0;
    rt_strap_hook = 0;
    return rt_check_failures();
}
