/*
 * Interrupt wiring of the whole board: the UART (IRQ 10) and the goldfish
 * RTC alarm (IRQ 11) reach the PLIC, and the PLIC's contexts reach the
 * right hart's MEIP/SEIP.  Registers are driven through the board's bus as
 * a guest would; the RTC alarm is set in the past so it fires at once.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "board_check.h"
#include "machine/virt_fdt.h"
#include "machine/virt_int.h"

static struct virt *vm;

static uint64_t rd(uint64_t pa, unsigned size)
{
    uint64_t v = 0xdead;
    if (bus_read(&vm->bus, pa, size, &v) < 0)
        return 0xfa17;
    return v;
}

static void wr(uint64_t pa, unsigned size, uint64_t v)
{
    if (bus_write(&vm->bus, pa, size, v) < 0)
        printf("     write 0x%llx faulted\n", (unsigned long long)pa);
}

#define PLIC(off)     (VIRT_PLIC_BASE + (off))
#define CTX_ENABLE(c) PLIC(PLIC_ENABLE_OFF + PLIC_ENABLE_STRIDE * (c))
#define CTX_CLAIM(c)  PLIC(PLIC_CONTEXT_OFF + PLIC_CONTEXT_STRIDE * (c) + 4)

int main(void)
{
    static const uint8_t fw[64]; /* never runs: the test drives the bus */
    char path[] = "/tmp/godwit-test-irq-XXXXXX", err[300] = "";
    struct virt_config cfg;
    int fd = mkstemp(path);
    uint64_t t;

    CHECK(fd >= 0 && write(fd, fw, sizeof(fw)) == (ssize_t)sizeof(fw), "firmware file");
    close(fd);
    virt_config_init(&cfg);
    cfg.smp = 2;
    cfg.bios = path;
    vm = virt_new(&cfg, err, sizeof(err));
    CHECK(vm != NULL, "board (%s)", err);
    unlink(path);
    if (!vm)
        return board_check_done();

    /* UART receive interrupt -> source 10 -> hart 1's S context (3). */
    wr(PLIC(4 * VIRT_UART0_IRQ), 4, 1);
    wr(CTX_ENABLE(3), 4, 1u << VIRT_UART0_IRQ);
    wr(VIRT_UART0_BASE + UART_IER, 1, UART_IER_RDI);
    CHECK(uart_receive(vm->uart, (const uint8_t *)"k", 1) == 1, "a byte arrives");
    CHECK_EQ(rd(PLIC(PLIC_PENDING_OFF), 4), 1u << VIRT_UART0_IRQ, "UART line pending on the PLIC");
    CHECK(vm->plic->out[3] && !vm->plic->out[0] && !vm->plic->out[1] && !vm->plic->out[2],
          "only hart 1's S-mode external interrupt");
    CHECK_EQ(rd(CTX_CLAIM(3), 4), VIRT_UART0_IRQ, "hart 1 claims IRQ 10");
    CHECK_EQ(rd(VIRT_UART0_BASE + UART_RBR, 1), 'k', "driver reads the byte: line drops");
    wr(CTX_CLAIM(3), 4, VIRT_UART0_IRQ);
    CHECK(!vm->plic->out[3] && rd(PLIC(PLIC_PENDING_OFF), 4) == 0, "completed, quiet");

    /* RTC alarm -> source 11 -> hart 0's M context (0). */
    wr(PLIC(4 * VIRT_RTC_IRQ), 4, 2);
    wr(CTX_ENABLE(0), 4, 1u << VIRT_RTC_IRQ);
    t = rd(VIRT_RTC_BASE + 0x0, 4);
    t |= rd(VIRT_RTC_BASE + 0x4, 4) << 32;
    CHECK(t > 1600000000ull * 1000000000ull, "RTC reads the host wall clock (ns since 1970)");
    wr(VIRT_RTC_BASE + 0x10, 4, 1); /* IRQ_ENABLED */
    wr(VIRT_RTC_BASE + 0x0c, 4, (t - 1000) >> 32);
    wr(VIRT_RTC_BASE + 0x08, 4, (uint32_t)(t - 1000)); /* arms: already due */
    CHECK_EQ(rd(PLIC(PLIC_PENDING_OFF), 4), 1u << VIRT_RTC_IRQ, "alarm fired: IRQ 11 pending");
    CHECK(vm->plic->out[0] && !vm->plic->out[3], "hart 0's M-mode external interrupt");
    CHECK_EQ(rd(CTX_CLAIM(0), 4), VIRT_RTC_IRQ, "claim 11");
    wr(VIRT_RTC_BASE + 0x1c, 4, 1); /* CLEAR_INTERRUPT */
    wr(CTX_CLAIM(0), 4, VIRT_RTC_IRQ);
    CHECK(!vm->plic->out[0] && rd(PLIC(PLIC_PENDING_OFF), 4) == 0, "RTC interrupt cleared");

    /* A system reset leaves the PLIC quiet and its registers zero. */
    wr(PLIC(4 * VIRT_UART0_IRQ), 4, 3);
    CHECK(virt_reset(vm, err, sizeof(err)) == 0, "reset");
    CHECK(rd(PLIC(4 * VIRT_UART0_IRQ), 4) == 0 && rd(CTX_ENABLE(3), 4) == 0,
          "PLIC registers reset");
    virt_free(vm);
    return board_check_done();
}
