/*
 * Unit tests for the 16550A model.  The main check replays
 * data/uart_seq.inc through the bus and compares the log with what the same
 * script printed on qemu-system-riscv64 7.2 (data/uart_probe.c), so every
 * register read is checked against the oracle.  Smaller checks cover the
 * interrupt line, the receive path and the FIFO character timeout.
 */
#include <stdlib.h>
#include <string.h>

#include "board_check.h"
#include "devices/uart16550.h"
#include "mem/bus.h"

/* Output of data/uart_probe.c on QEMU (after the transmitted bytes). */
static const char qemu_log[] =
    "reset: 00 00 01 00 08 60 b0 00\n"
    "sizes: 0000 00000000 0000000000000000 0008 00000008 00b0\n"
    "SCR a5 a5 b0 MCR w4 18\n"
    "IER ff-> 0f IIR 02 01\n"
    "FCR1 IIR c1 FCRc7 IIR c1 FCR41 IIR c1 FCR81 IIR c1 FCR0 IIR 01\n"
    "LCR83: 0c 00 01 83 00 60 b0 a5 DL 12 34 dlab FCR1 IIR: c1 LCR3: 00 00 c1 03 00 60 b0 a5\n"
    "MCR1f loop: 00 00 01 03 1f 60 f0 a5 MCR10: 00 60 tx A in loop: 61 01 41 60 41 60 MCR1f: f0 f0 "
    "MCR10: 00 00 tx BC 63 43 43 43 60 fifo tx DE 61 c1 44 61 45 60 00 60 rx int c4 46 c1 break 60 "
    "60 MCR0: b0 b0 60\n"
    "fifo trigger 14: c1 61 c4 c6 63 61 01 c4 02 03 60 43\n"
    "rls int 06 63 01 79\n"
    "MCRff: 1f LSR w0: 60 MSR wff: b0 LCRff: ff\n"
    "IER2 IIR: 02 01 after tx IIR: 02 IERf IIR: 01 IER0 IIR 01\n"
    "IER2 again 02 01 xfr c2 c1\n"
    "dl wide: bc 34 21 0000000000000021\n";

struct sink {
    uint8_t out[256];
    size_t out_len;
    int irq_changes;
    bool irq;
    uint64_t now;
};

static void sink_output(void *opaque, const uint8_t *buf, size_t len)
{
    struct sink *s = opaque;
    for (size_t i = 0; i < len && s->out_len < sizeof(s->out); i++)
        s->out[s->out_len++] = buf[i];
}

static void sink_irq(void *opaque, bool level)
{
    struct sink *s = opaque;
    s->irq = level;
    s->irq_changes++;
}

static uint64_t sink_now(void *opaque)
{
    return ((struct sink *)opaque)->now;
}

static char logbuf[4096];
static size_t loglen;

static void log_s(const char *s)
{
    while (*s && loglen < sizeof(logbuf) - 1)
        logbuf[loglen++] = *s++;
}

static void log_hex(uint64_t v, int digits)
{
    char tmp[20];
    snprintf(tmp, sizeof(tmp), " %0*llx", digits, (unsigned long long)v);
    log_s(tmp);
}

static struct bus bus;
static int bus_errors;

static uint64_t rd(unsigned off, unsigned size)
{
    uint64_t v = 0;
    if (bus_read(&bus, 0x10000000 + off, size, &v) < 0)
        bus_errors++;
    return v;
}

static void wr(unsigned off, unsigned size, uint64_t v)
{
    if (bus_write(&bus, 0x10000000 + off, size, v) < 0)
        bus_errors++;
}

static void run_script(void)
{
#define R(off)             log_hex(rd(off, 1), 2);
#define RS(off, size)      log_hex(rd(off, size), 2 * (size));
#define W(off, val)        wr(off, 1, val);
#define WS(off, size, val) wr(off, size, val);
#define T(str)             log_s(str);
#include "data/uart_seq.inc"
}

static uint8_t reg(struct uart *u, unsigned off)
{
    uint8_t v = 0;
    (void)uart_read(u, off, &v);
    return v;
}

int main(void)
{
    struct sink sk;
    struct uart_host host = {&sk, sink_output, sink_irq, sink_now};
    struct uart *u;
    struct bus_region r;

    memset(&sk, 0, sizeof(sk));
    u = uart_new(&host);
    CHECK(u != NULL, "uart_new");
    if (!u)
        return board_check_done();
    bus_init(&bus);
    r = (struct bus_region){"uart", 0x10000000, UART_REG_SIZE, 1, 8, 8, &uart_bus_ops, u};
    CHECK(bus_add(&bus, &r) == 0, "uart mapped on the bus");

    run_script();
    logbuf[loglen] = 0;
    CHECK(bus_errors == 0, "script accesses all accepted");
    CHECK(strcmp(logbuf, qemu_log) == 0, "register script log matches QEMU 7.2");
    if (strcmp(logbuf, qemu_log) != 0)
        printf("--- got:\n%s\n--- want:\n%s\n", logbuf, qemu_log);
    CHECK(sk.out_len == 2 && sk.out[0] == 0 && sk.out[1] == 'x',
          "only non-loopback transmissions reach the backend");

    /* Interrupt line follows IIR. */
    uart_reset(u);
    sk.irq_changes = 0;
    CHECK(!sk.irq, "reset: irq low");
    (void)uart_write(u, UART_IER, UART_IER_THRI);
    CHECK(sk.irq && sk.irq_changes == 1, "enabling THRI with THR empty raises irq");
    CHECK(reg(u, UART_IIR) == 0x02, "IIR reports THRE");
    CHECK(!sk.irq, "reading IIR acknowledges THRE, irq low");
    (void)uart_write(u, UART_RBR, 'q');
    CHECK(sk.irq && sk.out_len == 3 && sk.out[2] == 'q', "transmit re-raises THRE irq");
    (void)uart_write(u, UART_IER, 0);
    CHECK(!sk.irq, "disabling IER lowers irq");

    /* Receive path, non-FIFO. */
    uart_reset(u);
    CHECK(uart_can_receive(u) == 1, "non-FIFO: room for one byte");
    CHECK(uart_receive(u, (const uint8_t *)"ab", 2) == 1, "non-FIFO: one byte accepted");
    CHECK(reg(u, UART_LSR) == 0x61, "LSR.DR set");
    CHECK(uart_can_receive(u) == 0, "non-FIFO: full until read");
    CHECK(reg(u, UART_RBR) == 'a' && reg(u, UART_LSR) == 0x60, "RBR read clears DR");
    (void)uart_write(u, UART_IER, UART_IER_RDI);
    CHECK(uart_receive(u, (const uint8_t *)"z", 1) == 1 && sk.irq, "RDI raises irq");
    CHECK(reg(u, UART_IIR) == 0x04, "IIR reports RDI");
    CHECK(reg(u, UART_RBR) == 'z' && !sk.irq, "reading RBR lowers irq");

    /* FIFO mode: trigger level and character timeout with a fake clock. */
    uart_reset(u);
    sk.now = 1000;
    (void)uart_write(u, UART_IIR, 0x81); /* FIFO on, trigger level 8 */
    (void)uart_write(u, UART_IER, UART_IER_RDI);
    CHECK(uart_can_receive(u) == UART_FIFO_SIZE, "FIFO: 16 bytes of room");
    CHECK(uart_receive(u, (const uint8_t *)"hello", 5) == 5, "FIFO: 5 bytes accepted");
    CHECK(!sk.irq && reg(u, UART_IIR) == 0xc1, "below trigger level: no irq yet");
    CHECK(uart_next_deadline(u) > sk.now && uart_next_deadline(u) != UINT64_MAX,
          "character timeout armed");
    uart_poll(u, uart_next_deadline(u) - 1);
    CHECK(!sk.irq, "timeout not fired early");
    uart_poll(u, uart_next_deadline(u));
    CHECK(sk.irq && reg(u, UART_IIR) == 0xcc, "character timeout raises CTI");
    CHECK(reg(u, UART_RBR) == 'h' && !sk.irq, "reading RBR clears the timeout");
    CHECK(uart_receive(u, (const uint8_t *)"0123", 4) == 4 && sk.irq && reg(u, UART_IIR) == 0xc4,
          "reaching the trigger level raises RDI");
    for (int i = 0; i < 8; i++)
        (void)reg(u, UART_RBR);
    CHECK(!(reg(u, UART_LSR) & UART_LSR_DR) && uart_next_deadline(u) == UINT64_MAX,
          "draining the FIFO clears DR and the timeout");
    CHECK(reg(u, UART_RBR) == 0, "empty FIFO reads 0");

    /* Out-of-range offsets are refused (the bus never sends them). */
    uint8_t v;
    CHECK(uart_read(u, 8, &v) < 0 && uart_write(u, 8, 0) < 0, "offset 8 refused");
    uart_free(u);
    uart_free(NULL);
    return board_check_done();
}
