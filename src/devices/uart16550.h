/*
 * NS16550A UART, register-compatible with QEMU's "serial" device as wired on
 * the virt board (one byte register per address, regshift 0, 8 registers).
 *
 * struct uart_state is the guest-visible register file (plain data, saved
 * and loaded as a versioned section later).  struct uart adds host plumbing:
 * the output sink, the interrupt line and the clock used for the receive
 * FIFO's character timeout.
 *
 * Transmission is synchronous: a THR write hands the byte to the sink at
 * once and THRE/TEMT are set again before the write returns, as QEMU does
 * when its backend accepts the byte, so the transmit FIFO never holds data.
 * In loopback (MCR bit 4) the byte goes to the receiver instead.
 *
 * Single-threaded: called from the thread running the harts.
 */
#ifndef GODWIT_DEVICES_UART16550_H
#define GODWIT_DEVICES_UART16550_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem/bus.h"
#include "state/state_buf.h"

#define UART_REG_SIZE  8 /* bytes of MMIO the virt board maps */
#define UART_FIFO_SIZE 16

/* Register offsets (DLAB=0 names). */
enum {
    UART_RBR = 0, /* read: receive buffer; write: THR; DLAB: DLL */
    UART_IER = 1, /* DLAB: DLM */
    UART_IIR = 2, /* read: IIR; write: FCR */
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
};

/* Register bits (PC16550D datasheet, §8.4-8.10). */
#define UART_IER_RDI  0x01 /* receive data available */
#define UART_IER_THRI 0x02 /* transmitter holding register empty */
#define UART_IER_RLSI 0x04 /* receiver line status */
#define UART_IER_MSI  0x08 /* modem status */

#define UART_IIR_NO_INT 0x01
#define UART_IIR_ID     0x0e
#define UART_IIR_MSI    0x00
#define UART_IIR_THRI   0x02
#define UART_IIR_RDI    0x04
#define UART_IIR_RLSI   0x06
#define UART_IIR_CTI    0x0c /* character timeout */
#define UART_IIR_FE     0xc0 /* FIFOs enabled */

#define UART_FCR_FE  0x01 /* FIFO enable */
#define UART_FCR_RFR 0x02 /* receive FIFO reset */
#define UART_FCR_XFR 0x04 /* transmit FIFO reset */
#define UART_FCR_ITL 0xc0 /* receive trigger level */

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR  0x01
#define UART_MCR_RTS  0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10

#define UART_LSR_DR      0x01
#define UART_LSR_OE      0x02
#define UART_LSR_PE      0x04
#define UART_LSR_FE      0x08
#define UART_LSR_BI      0x10
#define UART_LSR_THRE    0x20
#define UART_LSR_TEMT    0x40
#define UART_LSR_INT_ANY (UART_LSR_OE | UART_LSR_PE | UART_LSR_FE | UART_LSR_BI)

#define UART_MSR_DCTS      0x01
#define UART_MSR_DDSR      0x02
#define UART_MSR_TERI      0x04
#define UART_MSR_DDCD      0x08
#define UART_MSR_CTS       0x10
#define UART_MSR_DSR       0x20
#define UART_MSR_RI        0x40
#define UART_MSR_DCD       0x80
#define UART_MSR_ANY_DELTA 0x0f

/* Guest-visible state. */
struct uart_state {
    uint8_t rbr; /* last received byte (non-FIFO mode) */
    uint8_t ier; /* low 4 bits */
    uint8_t iir; /* as the guest reads it */
    uint8_t fcr; /* sticky bits: FE and trigger level */
    uint8_t lcr;
    uint8_t mcr; /* low 5 bits */
    uint8_t lsr;
    uint8_t msr;
    uint8_t scr;
    uint16_t divisor;         /* DLM:DLL */
    uint8_t thr_ipending;     /* THR-empty interrupt pending (cleared by IIR read) */
    uint8_t timeout_ipending; /* FIFO character timeout pending */
    uint8_t rx_fifo[UART_FIFO_SIZE];
    uint8_t rx_head;        /* index of the oldest byte */
    uint8_t rx_count;       /* bytes in rx_fifo */
    uint64_t rx_timeout_ns; /* host time the character timeout fires; 0 = not armed */
};

/* Host side: where transmitted bytes go, the IRQ line, the clock. */
struct uart_host {
    void *opaque;
    /* Deliver bytes to the backend; errors are the backend's business. */
    void (*output)(void *opaque, const uint8_t *buf, size_t len);
    /* Interrupt line level changed (to the PLIC later). May be NULL. */
    void (*set_irq)(void *opaque, bool level);
    /* Host monotonic ns, for the receive timeout. NULL = gw_now_ns. */
    uint64_t (*now_ns)(void *opaque);
};

struct uart {
    struct uart_state st;
    struct uart_host host;
    bool irq_level; /* last level sent to host.set_irq */
};

/* NULL on allocation failure. The UART starts in its reset state. */
struct uart *uart_new(const struct uart_host *host);
void uart_free(struct uart *u);

/* Power-on / system reset values. */
void uart_reset(struct uart *u);

/* Bus callbacks (opaque = struct uart *); any size, byte registers. */
extern const struct bus_ops uart_bus_ops;
int uart_read(struct uart *u, uint64_t off, uint8_t *val);
int uart_write(struct uart *u, uint64_t off, uint8_t val);

/*
 * Input from the backend (later: stdin, sockets).  Returns how many bytes
 * were accepted: in FIFO mode until the FIFO is full, else one byte when the
 * receive buffer is empty; uart_can_receive() tells ahead.
 */
size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len);
size_t uart_can_receive(const struct uart *u);

/* Fire the receive character timeout if its time has come (now in host ns). */
void uart_poll(struct uart *u, uint64_t now_ns);

/* Host ns of the next timed event (receive timeout), or UINT64_MAX. */
uint64_t uart_next_deadline(const struct uart *u);

/* Current interrupt line level. */
bool uart_irq_level(const struct uart *u);

/* State: the register file, both FIFOs and pending timing, relative to
 * now (deadlines are host-clock based).  Load re-sends the IRQ line. */
#define UART_STATE_VERSION 1
void uart_save(const struct uart *u, struct state_buf *b);
int uart_load(struct uart *u, struct state_buf *b, unsigned version) gw_must_check;

#endif
