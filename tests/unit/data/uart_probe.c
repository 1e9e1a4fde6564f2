/*
 * Bare-metal probe that runs uart_seq.inc on a real (QEMU) virt board and
 * prints the log; its output is the expected text in tests/unit/test_uart.c.
 * Build and run (from the repo root):
 *   riscv64-unknown-elf-gcc -march=rv64gc -mabi=lp64d -mcmodel=medany -O1 \
 *     -nostdlib -ffreestanding -T tests/unit/data/probe.ld \
 *     -o /tmp/uart_probe.elf tests/unit/data/uart_probe.c
 *   qemu-system-riscv64 -M virt -m 128M -bios none -nographic \
 *     -kernel /tmp/uart_probe.elf
 */
#include <stdint.h>

#define UART 0x10000000ul

static char log_buf[4096];
static unsigned log_len;

static void log_c(char c)
{
    if (log_len < sizeof(log_buf))
        log_buf[log_len++] = c;
}

static void log_s(const char *s)
{
    while (*s)
        log_c(*s++);
}

static void log_hex(uint64_t v, int digits)
{
    log_c(' ');
    for (int i = digits * 4 - 4; i >= 0; i -= 4)
        log_c("0123456789abcdef"[(v >> i) & 15]);
}

static uint64_t rd(unsigned off, int size)
{
    uintptr_t a = UART + off;
    switch (size) {
    case 1: return *(volatile uint8_t *)a;
    case 2: return *(volatile uint16_t *)a;
    case 4: return *(volatile uint32_t *)a;
    default: return *(volatile uint64_t *)a;
    }
}

static void wr(unsigned off, int size, uint64_t v)
{
    uintptr_t a = UART + off;
    switch (size) {
    case 1: *(volatile uint8_t *)a = (uint8_t)v; break;
    case 2: *(volatile uint16_t *)a = (uint16_t)v; break;
    case 4: *(volatile uint32_t *)a = (uint32_t)v; break;
    default: *(volatile uint64_t *)a = v; break;
    }
}

static void run(void)
{
#define R(off)             log_hex(rd(off, 1), 2);
#define RS(off, size)      log_hex(rd(off, size), 2 * (size));
#define W(off, val)        wr(off, 1, val);
#define WS(off, size, val) wr(off, size, val);
#define T(str)             log_s(str);
#include "uart_seq.inc"
}

__attribute__((naked, section(".text.start"))) void _start(void)
{
    __asm__ volatile("li sp, 0x80100000\n"
                     "call main\n");
}

int main(void)
{
    run();
    for (unsigned i = 0; i < log_len; i++) {
        while (!(rd(5, 1) & 0x20))
            ;
        wr(0, 1, (uint8_t)log_buf[i]);
    }
    *(volatile uint32_t *)0x100000 = 0x5555;
    for (;;)
        ;
}
