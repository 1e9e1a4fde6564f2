/*
 * bench/cpu runtime: UART output, exit through the virt test device, phase
 * timing and checksums, a bump heap, Sv39 identity tables, the timer tick,
 * and the string functions GCC may call on its own even when freestanding.
 */
#include "rt.h"

#include <stdarg.h>

#define UART_BASE      0x10000000ul
#define UART_THR       0
#define UART_LSR       5
#define UART_LSR_THRE  0x20
#define TEST_BASE      0x00100000ul
#define TEST_PASS      0x5555u
#define TEST_FAIL      0x3333u
#define CLINT_MTIMECMP 0x02004000ul
#define CLINT_MTIME    0x0200bff8ul

/* Read by the trap vector in crt0.S. */
uint64_t bench_timer_interval;
uint64_t bench_timer_count;

static const char *bench_name;
static uint64_t bench_total;
static unsigned char *heap_next;
extern char _end[];

void bench_start(void);
void bench_trap_fatal(uint64_t cause, uint64_t epc, uint64_t tval);

void bench_putc(char c)
{
    volatile uint8_t *uart = (volatile uint8_t *)UART_BASE;

    while (!(uart[UART_LSR] & UART_LSR_THRE))
        ;
    uart[UART_THR] = (uint8_t)c;
}

void bench_puts(const char *s)
{
    while (*s)
        bench_putc(*s++);
}

static void put_num(uint64_t v, unsigned base, int neg, int width, char pad)
{
    char buf[24];
    int n = 0;

    do {
        buf[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        buf[n++] = '-';
    while (width-- > n)
        bench_putc(pad);
    while (n)
        bench_putc(buf[--n]);
}

void bench_printf(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            bench_putc(*fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, lng = 0;
        if (*fmt == '0')
            pad = *fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') {
            lng = 1;
            fmt++;
        }
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            int len = 0;
            while (s[len])
                len++;
            while (width-- > len)
                bench_putc(' ');
            bench_puts(s);
            break;
        }
        case 'c': bench_putc((char)va_arg(ap, int)); break;
        case 'd': {
            int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_num(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
            break;
        }
        case 'u':
            put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 0, width, pad);
            break;
        case 'x':
            put_num(lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, 0, width, pad);
            break;
        case '%': bench_putc('%'); break;
        default: bench_putc('?'); break;
        }
    }
    va_end(ap);
}

static void __attribute__((noreturn)) test_device_exit(uint32_t value)
{
    *(volatile uint32_t *)TEST_BASE = value;
    for (;;)
        __asm__ volatile("wfi");
}

void bench_fail(const char *why)
{
    bench_printf("FAIL %s\n", why);
    test_device_exit((1u << 16) | TEST_FAIL);
}

void bench_trap_fatal(uint64_t cause, uint64_t epc, uint64_t tval)
{
    bench_printf("FAIL trap mcause=%lx mepc=%lx mtval=%lx\n", cause, epc, tval);
    test_device_exit((2u << 16) | TEST_FAIL);
}

uint64_t bench_now(void)
{
    return *(volatile uint64_t *)CLINT_MTIME;
}

void *bench_alloc(size_t size, size_t align)
{
    uintptr_t p = ((uintptr_t)heap_next + align - 1) & ~(uintptr_t)(align - 1);

    if (p + size > BENCH_RAM_TOP || p + size < p)
        bench_fail("heap exhausted");
    heap_next = (unsigned char *)(p + size);
    return (void *)p;
}

void bench_begin(const char *workload)
{
    bench_name = workload;
    bench_printf("BENCH %s %s\n", workload, BENCH_QUICK_MODE ? "quick" : "full");
}

void bench_phase(const char *name, bench_kernel_fn fn)
{
    heap_next = (unsigned char *)_end;
    uint64_t t0 = bench_now();
    uint64_t chk = fn();
    uint64_t t1 = bench_now();
    bench_total = bench_mix(bench_total, chk);
    bench_printf("CHK %s %016lx\n", name, chk);
    bench_printf("TIME %s %lu\n", name, (t1 - t0) / (BENCH_MTIME_HZ / 1000000));
}

/*
 * Every workload runs under a 250 Hz timer tick whose handler also flushes
 * the TLB, as an OS kernel's tick and context switches do. Besides realism
 * this matters for QEMU: its TLB only grows when flushed, so a guest that
 * never flushes leaves it at 256 entries and measures a thrashing corner
 * no real guest hits.
 */
#define BENCH_TICK_HZ 250

void bench_start(void)
{
    uint64_t t0 = bench_now();

    /*
     * PMP entry 0: NAPOT over everything, RWX, as firmware (OpenSBI) leaves
     * it. S-mode needs it to touch memory at all; QEMU 7.2 in M-mode is also
     * measurably slower on memory-bound code (gups about 2x) without a rule.
     */
    __asm__ volatile("csrw pmpaddr0, %0" ::"r"(~0ul >> 10));
    __asm__ volatile("csrw pmpcfg0, %0" ::"r"(0x1ful));
    __asm__ volatile("csrw mcounteren, %0" ::"r"(7ul));
    bench_timer_start(BENCH_TICK_HZ);
    __asm__ volatile("csrsi mstatus, 8"); /* MIE */
    bench_main();
    __asm__ volatile("csrci mstatus, 8");
    bench_timer_stop();
    uint64_t elapsed = bench_now() - t0;
    uint64_t ticks = bench_timer_ticks();
    uint64_t expect = elapsed * BENCH_TICK_HZ / BENCH_MTIME_HZ;
    bench_printf("INFO %s guest time %lu us, %lu timer ticks\n", bench_name ? bench_name : "?",
                 elapsed / (BENCH_MTIME_HZ / 1000000), ticks);
    /* A tick that comes late is not made up for (the handler re-arms from
     * "now"), so an overloaded host loses some; only a broken interrupt path
     * loses nearly all. */
    if (expect >= 32 && ticks < expect / 16)
        bench_fail("timer interrupts lost");
    bench_printf("CHK total %016lx\n", bench_total);
    bench_puts("DONE\n");
    test_device_exit(TEST_PASS);
}

/* ---- Sv39 (privileged spec §4.4) ---- */
#define PTE_V     0x001u
#define PTE_R     0x002u
#define PTE_W     0x004u
#define PTE_X     0x008u
#define PTE_A     0x040u
#define PTE_D     0x080u
#define RAM_PAGES ((BENCH_RAM_TOP - BENCH_RAM_BASE) >> 12)

static uint64_t pt_root[512] __attribute__((aligned(4096)));
static uint64_t pt_l1[512] __attribute__((aligned(4096)));
static uint64_t pt_l0[RAM_PAGES] __attribute__((aligned(4096)));

static uint64_t pte_table(const void *next)
{
    return ((uint64_t)(uintptr_t)next >> 12) << 10 | PTE_V;
}

uint64_t bench_paging_init(void)
{
    /* A and D preset: hardware A/D updating is optional (Svadu). */
    pt_root[0] = (0ul >> 12) << 10 | PTE_V | PTE_R | PTE_W | PTE_A | PTE_D;
    pt_root[BENCH_RAM_BASE >> 30] = pte_table(pt_l1);
    for (uint64_t i = 0; i < RAM_PAGES; i++) {
        uint64_t pa = BENCH_RAM_BASE + (i << 12);
        pt_l0[i] = (pa >> 12) << 10 | PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D;
    }
    for (uint64_t i = 0; i < RAM_PAGES / 512; i++)
        pt_l1[((BENCH_RAM_BASE >> 21) & 511) + i] = pte_table(&pt_l0[i * 512]);

    uint64_t satp = 8ul << 60 | (uint64_t)(uintptr_t)pt_root >> 12;
    __asm__ volatile("csrw satp, %0\n\tsfence.vma" ::"r"(satp) : "memory");
    return satp;
}

void bench_timer_start(unsigned hz)
{
    bench_timer_interval = BENCH_MTIME_HZ / hz;
    *(volatile uint64_t *)CLINT_MTIMECMP = bench_now() + bench_timer_interval;
    __asm__ volatile("csrs mie, %0" ::"r"(1ul << 7)); /* MTIE */
}

void bench_timer_stop(void)
{
    __asm__ volatile("csrc mie, %0" ::"r"(1ul << 7));
    *(volatile uint64_t *)CLINT_MTIMECMP = ~0ul;
}

uint64_t bench_timer_ticks(void)
{
    return *(volatile uint64_t *)&bench_timer_count;
}

/*
 * GCC emits calls to these for struct copies and recognised loops even with
 * -ffreestanding; keep it from recognising the loops below as themselves.
 */
#define NO_LOOP_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

NO_LOOP_CALLS void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;

    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

NO_LOOP_CALLS void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    while (n--)
        *d++ = *s++;
    return dst;
}

NO_LOOP_CALLS void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;

    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}
