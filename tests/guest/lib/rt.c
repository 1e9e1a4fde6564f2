/*
 * godwit guest runtime: console, exit, self-checks, trap handling and the
 * return path of rt_run_in_mode.  See rt.h for the contract.  Single hart,
 * no reentrancy: a trap inside a trap handler is not supported.
 */
#include "rt.h"

#define UART_THR      0
#define UART_LSR      5
#define UART_LSR_THRE 0x20

uint64_t rt_boot_a0, rt_boot_a1;
/* in .data: the other harts read it before hart 0 clears .bss */
__attribute__((section(".data"))) struct rt_secondary rt_secondary;
volatile struct rt_trap_record rt_last_trap;
volatile unsigned long rt_trap_count;
rt_trap_hook_fn rt_mtrap_hook;
rt_trap_hook_fn rt_strap_hook;

static int check_failures;

/* Callee-saved state of rt_run_in_mode's caller (layout used by crt0.S). */
struct rt_mode_ctx {
    uint64_t ra, sp, s[12], mstatus, active;
};
struct rt_mode_ctx rt_mode_ctx;

/* Prototypes for the symbols only assembly uses. */
void rt_trap_m(struct rt_frame *f);
void rt_trap_s(struct rt_frame *f);

/* ---- console ------------------------------------------------------------ */

void rt_putc(char c)
{
    volatile uint8_t *uart = (volatile uint8_t *)RT_UART_BASE;
    while (!(uart[UART_LSR] & UART_LSR_THRE))
        ;
    uart[UART_THR] = (uint8_t)c;
}

void rt_puts(const char *s)
{
    while (*s)
        rt_putc(*s++);
}

static int emit_num(unsigned long long v, unsigned base, int upper, int neg, int width, int zero,
                    int left, int plus)
{
    char buf[24];
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0, count = 0;
    do {
        buf[n++] = digits[v % base];
        v /= base;
    } while (v);
    char sign = neg ? '-' : plus ? '+' : 0;
    int len = n + (sign != 0);
    if (sign && zero) {
        rt_putc(sign);
        count++;
    }
    if (!left) {
        for (; len < width; len++, count++)
            rt_putc(zero ? '0' : ' ');
    }
    if (sign && !zero) {
        rt_putc(sign);
        count++;
    }
    while (n)
        rt_putc(buf[--n]), count++;
    if (left) {
        for (; len < width; len++, count++)
            rt_putc(' ');
    }
    return count;
}

int rt_vprintf(const char *fmt, va_list ap)
{
    int count = 0;
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            rt_putc(*fmt);
            count++;
            continue;
        }
        fmt++;
        int zero = 0, left = 0, plus = 0, width = 0, lng = 0;
        for (;; fmt++) {
            if (*fmt == '0')
                zero = 1;
            else if (*fmt == '-')
                left = 1;
            else if (*fmt == '+')
                plus = 1;
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l' || *fmt == 'z') {
            lng++;
            fmt++;
        }
        if (left)
            zero = 0;
        switch (*fmt) {
        case 'd':
        case 'i': {
            long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
            unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
            count += emit_num(u, 10, 0, v < 0, width, zero, left, plus);
            break;
        }
        case 'u':
        case 'x':
        case 'X': {
            unsigned long long v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned int);
            count += emit_num(v, *fmt == 'u' ? 10 : 16, *fmt == 'X', 0, width, zero, left, 0);
            break;
        }
        case 'p':
            rt_puts("0x");
            count += 2 + emit_num((uintptr_t)va_arg(ap, void *), 16, 0, 0, 16, 1, 0, 0);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            int len = 0;
            if (!s)
                s = "(null)";
            while (s[len])
                len++;
            if (!left)
                for (; len < width; width--, count++)
                    rt_putc(' ');
            rt_puts(s);
            count += len;
            if (left)
                for (; len < width; width--, count++)
                    rt_putc(' ');
            break;
        }
        case 'c':
            rt_putc((char)va_arg(ap, int));
            count++;
            break;
        case '%':
            rt_putc('%');
            count++;
            break;
        case '\0': return count;
        default:
            rt_putc('%');
            rt_putc(*fmt);
            count += 2;
            break;
        }
    }
    return count;
}

int rt_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = rt_vprintf(fmt, ap);
    va_end(ap);
    return n;
}

/* ---- exit and checks ------------------------------------------------------ */

void rt_exit(int code)
{
    volatile uint32_t *test = (volatile uint32_t *)RT_TEST_BASE;
    if (code == 0)
        *test = 0x5555;
    else
        *test = ((uint32_t)(code & 0xffff) << 16) | 0x3333;
    for (;;)
        __asm__ volatile("wfi");
}

void rt_check_fail(const char *file, int line, const char *expr)
{
    check_failures++;
    rt_printf("CHECK FAILED %s:%d: %s\n", file, line, expr);
}

int rt_check_failures(void)
{
    return check_failures;
}

/* ---- traps ---------------------------------------------------------------- */

void rt_trap_reset(void)
{
    rt_trap_count = 0;
    rt_last_trap.cause = 0;
    rt_last_trap.tval = 0;
    rt_last_trap.epc = 0;
    rt_last_trap.status = 0;
    rt_last_trap.from_mode = -1;
    rt_last_trap.to_mode = -1;
}

static char mode_char(int m)
{
    switch (m) {
    case RT_U: return 'U';
    case RT_S: return 'S';
    case RT_M: return 'M';
    default: return '?';
    }
}

void rt_print_trap(const char *label)
{
    if (!rt_trap_count) {
        rt_printf("%s: no trap\n", label);
        return;
    }
    rt_printf("%s: traps=%lu cause=%lx tval=%lx from=%c to=%c\n", label, rt_trap_count,
              (unsigned long)rt_last_trap.cause, (unsigned long)rt_last_trap.tval,
              mode_char(rt_last_trap.from_mode), mode_char(rt_last_trap.to_mode));
}

static int is_fetch_fault(uint64_t cause)
{
    return cause == CAUSE_FETCH_MISALIGNED || cause == CAUSE_FETCH_ACCESS ||
           cause == CAUSE_FETCH_PAGE;
}

/* First halfword at the trapped pc, read with the trapped mode's view. */
static uint16_t read_insn_m(uint64_t va, int from)
{
    uint16_t insn;
    if (from == RT_M || (csr_read(satp) >> 60) == 0)
        return *(volatile uint16_t *)(uintptr_t)va;
    /* mstatus.MPP still holds `from`: MPRV makes the load use its view. */
    unsigned long old, bits = MSTATUS_MPRV | MSTATUS_MXR | MSTATUS_SUM;
    __asm__ volatile("csrr %0, mstatus\n\t"
                     "csrs mstatus, %2\n\t"
                     "lhu %1, 0(%3)\n\t"
                     "csrw mstatus, %0"
                     : "=&r"(old), "=&r"(insn)
                     : "r"(bits), "r"(va)
                     : "memory");
    return insn;
}

static uint16_t read_insn_s(uint64_t va)
{
    uint16_t insn;
    unsigned long old, bits = MSTATUS_MXR | MSTATUS_SUM;
    __asm__ volatile("csrr %0, sstatus\n\t"
                     "csrs sstatus, %2\n\t"
                     "lhu %1, 0(%3)\n\t"
                     "csrw sstatus, %0"
                     : "=&r"(old), "=&r"(insn)
                     : "r"(bits), "r"(va)
                     : "memory");
    return insn;
}

static void record(const struct rt_frame *f, int from, int to)
{
    rt_last_trap.cause = f->cause;
    rt_last_trap.tval = f->tval;
    rt_last_trap.epc = f->epc;
    rt_last_trap.status = f->status;
    rt_last_trap.from_mode = from;
    rt_last_trap.to_mode = to;
    rt_trap_count++;
}

/* Resume rt_run_in_mode's caller in M-mode with fn's return value. */
static void mode_return(struct rt_frame *f)
{
    static const int sreg[12] = {8, 9, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27};
    struct rt_mode_ctx *c = &rt_mode_ctx;
    c->active = 0;
    f->x[1] = c->ra;
    f->x[2] = c->sp;
    for (int i = 0; i < 12; i++)
        f->x[sreg[i]] = c->s[i];
    f->epc = c->ra;
    uint64_t st = f->status & ~(MSTATUS_MPP | MSTATUS_MPIE | MSTATUS_MPRV);
    st |= MSTATUS_MPP; /* back to M */
    if (c->mstatus & MSTATUS_MIE)
        st |= MSTATUS_MPIE;
    st |= c->mstatus & MSTATUS_MPRV;
    f->status = st;
}

void rt_trap_m(struct rt_frame *f)
{
    int from = (int)((f->status >> 11) & 3);
    if (!(f->cause & CAUSE_INTR) && (f->cause == CAUSE_ECALL_U || f->cause == CAUSE_ECALL_S) &&
        f->x[17] == RT_ECALL_RETURN && rt_mode_ctx.active) {
        mode_return(f);
        return;
    }
    record(f, from, RT_M);
    if (rt_mtrap_hook && rt_mtrap_hook(f))
        return;
    if (f->cause & CAUSE_INTR) {
        csr_clear(mie, 1UL << (f->cause & 63));
        return;
    }
    if (is_fetch_fault(f->cause))
        f->epc = f->x[1];
    else
        f->epc += rt_insn_len(read_insn_m(f->epc, from));
}

void rt_trap_s(struct rt_frame *f)
{
    int from = (f->status & MSTATUS_SPP) ? RT_S : RT_U;
    if (!(f->cause & CAUSE_INTR) && f->cause == CAUSE_ECALL_U && f->x[17] == RT_ECALL_RETURN) {
        /* Delegated end of rt_run_in_mode(RT_U): pass it on to M. */
        register uint64_t a0 __asm__("a0") = f->x[10];
        register uint64_t a7 __asm__("a7") = RT_ECALL_RETURN;
        __asm__ volatile("ecall" ::"r"(a0), "r"(a7) : "memory");
        for (;;)
            ;
    }
    record(f, from, RT_S);
    if (rt_strap_hook && rt_strap_hook(f))
        return;
    if (f->cause & CAUSE_INTR) {
        csr_clear(sie, 1UL << (f->cause & 63));
        return;
    }
    if (is_fetch_fault(f->cause))
        f->epc = f->x[1];
    else
        f->epc += rt_insn_len(read_insn_s(f->epc));
}
