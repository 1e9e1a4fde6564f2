/*
 * NS16550A UART register model; see uart16550.h.  Register behaviour follows
 * the PC16550D datasheet as QEMU's 16550A model implements it, checked
 * register by register against qemu-system-riscv64 7.2 on the virt board.
 */
#include "devices/uart16550.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The virt board clocks its UART with a 399193 Hz baud base (QEMU's value). */
#define UART_BAUD_BASE 399193u

static uint64_t uart_now(const struct uart *u)
{
    return u->host.now_ns ? u->host.now_ns(u->host.opaque) : gw_now_ns();
}

/* Nanoseconds to move one character at the programmed speed and framing. */
static uint64_t uart_char_time_ns(const struct uart *u)
{
    unsigned divisor = u->st.divisor ? u->st.divisor : 1;
    unsigned bits =
        1 + 5 + (u->st.lcr & 3) + ((u->st.lcr & 0x08) ? 1 : 0) + ((u->st.lcr & 0x04) ? 2 : 1);
    return (uint64_t)bits * 1000000000ull * divisor / UART_BAUD_BASE;
}

static unsigned uart_rx_trigger(const struct uart *u)
{
    static const uint8_t levels[4] = {1, 4, 8, 14};
    return levels[(u->st.fcr & UART_FCR_ITL) >> 6];
}

static bool uart_fifo_mode(const struct uart *u)
{
    return u->st.fcr & UART_FCR_FE;
}

/* Recompute IIR from the pending conditions, in priority order, and drive
 * the interrupt line. */
static void uart_update_irq(struct uart *u)
{
    struct uart_state *s = &u->st;
    uint8_t id = UART_IIR_NO_INT;
    bool level;

    if ((s->ier & UART_IER_RLSI) && (s->lsr & UART_LSR_INT_ANY))
        id = UART_IIR_RLSI;
    else if ((s->ier & UART_IER_RDI) && s->timeout_ipending)
        id = UART_IIR_CTI;
    else if ((s->ier & UART_IER_RDI) && (s->lsr & UART_LSR_DR) &&
             (!uart_fifo_mode(u) || s->rx_count >= uart_rx_trigger(u)))
        id = UART_IIR_RDI;
    else if ((s->ier & UART_IER_THRI) && s->thr_ipending)
        id = UART_IIR_THRI;
    else if ((s->ier & UART_IER_MSI) && (s->msr & UART_MSR_ANY_DELTA))
        id = UART_IIR_MSI;
    s->iir = id | (uart_fifo_mode(u) ? UART_IIR_FE : 0);

    level = id != UART_IIR_NO_INT;
    if (level != u->irq_level) {
        u->irq_level = level;
        if (u->host.set_irq)
            u->host.set_irq(u->host.opaque, level);
    }
}

static void uart_rx_reset(struct uart *u)
{
    u->st.rx_head = 0;
    u->st.rx_count = 0;
    u->st.rx_timeout_ns = 0;
    u->st.timeout_ipending = 0;
}

void uart_reset(struct uart *u)
{
    struct uart_state *s = &u->st;

    memset(s, 0, sizeof(*s));
    s->divisor = 0x0c;
    s->mcr = UART_MCR_OUT2;
    s->lsr = UART_LSR_THRE | UART_LSR_TEMT;
    s->msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
    s->iir = UART_IIR_NO_INT;
    uart_update_irq(u);
}

struct uart *uart_new(const struct uart_host *host)
{
    struct uart *u = calloc(1, sizeof(*u));

    if (!u)
        return NULL;
    if (host)
        u->host = *host;
    uart_reset(u);
    return u;
}

void uart_free(struct uart *u)
{
    free(u);
}

/* One received character (from the backend or from loopback). */
static void uart_rx_byte(struct uart *u, uint8_t ch)
{
    struct uart_state *s = &u->st;

    if (uart_fifo_mode(u)) {
        /* Overruns never overwrite FIFO contents. */
        if (s->rx_count == UART_FIFO_SIZE) {
            s->lsr |= UART_LSR_OE;
        } else {
            s->rx_fifo[(s->rx_head + s->rx_count) % UART_FIFO_SIZE] = ch;
            s->rx_count++;
        }
        s->rx_timeout_ns = uart_now(u) + 4 * uart_char_time_ns(u);
    } else {
        if (s->lsr & UART_LSR_DR)
            s->lsr |= UART_LSR_OE;
        s->rbr = ch;
    }
    s->lsr |= UART_LSR_DR;
}

size_t uart_can_receive(const struct uart *u)
{
    if (uart_fifo_mode(u))
        return UART_FIFO_SIZE - u->st.rx_count;
    return (u->st.lsr & UART_LSR_DR) ? 0 : 1;
}

size_t uart_receive(struct uart *u, const uint8_t *buf, size_t len)
{
    size_t n = uart_can_receive(u);

    if (n > len)
        n = len;
    for (size_t i = 0; i < n; i++)
        uart_rx_byte(u, buf[i]);
    if (n)
        uart_update_irq(u);
    return n;
}

static void uart_transmit(struct uart *u, uint8_t ch)
{
    struct uart_state *s = &u->st;

    s->thr_ipending = 0;
    s->lsr &= ~(UART_LSR_THRE | UART_LSR_TEMT);
    if (s->mcr & UART_MCR_LOOP)
        uart_rx_byte(u, ch);
    else if (u->host.output)
        u->host.output(u->host.opaque, &ch, 1);
    /* The shift register drained at once: THR and the transmitter are empty. */
    s->lsr |= UART_LSR_THRE | UART_LSR_TEMT;
    s->thr_ipending = 1;
    uart_update_irq(u);
}

static void uart_write_fcr(struct uart *u, uint8_t val)
{
    struct uart_state *s = &u->st;

    /* Toggling FIFO enable flushes both FIFOs. */
    if ((val ^ s->fcr) & UART_FCR_FE)
        val |= UART_FCR_RFR | UART_FCR_XFR;
    if (val & UART_FCR_RFR) {
        s->lsr &= ~(UART_LSR_DR | UART_LSR_BI);
        uart_rx_reset(u);
    }
    if (val & UART_FCR_XFR) {
        s->lsr |= UART_LSR_THRE;
        s->thr_ipending = 1;
    }
    s->fcr = val & (UART_FCR_FE | UART_FCR_ITL | 0x08);
    uart_update_irq(u);
}

int uart_write(struct uart *u, uint64_t off, uint8_t val)
{
    struct uart_state *s = &u->st;
    bool dlab = s->lcr & UART_LCR_DLAB;

    switch (off) {
    case UART_RBR:
        if (dlab)
            s->divisor = (s->divisor & 0xff00) | val;
        else
            uart_transmit(u, val);
        break;
    case UART_IER:
        if (dlab) {
            s->divisor = (s->divisor & 0x00ff) | (uint16_t)(val << 8);
        } else {
            uint8_t changed = (s->ier ^ val) & 0x0f;
            s->ier = val & 0x0f;
            /*
             * Enabling the THRE interrupt while THR is empty makes it pending
             * again even if an IIR read had cleared it (drivers toggle IER to
             * re-arm it); disabling it drops the pending state.
             */
            if (changed & UART_IER_THRI)
                s->thr_ipending = (s->ier & UART_IER_THRI) && (s->lsr & UART_LSR_THRE);
            if (changed)
                uart_update_irq(u);
        }
        break;
    case UART_IIR: uart_write_fcr(u, val); break;
    case UART_LCR: s->lcr = val; break;
    case UART_MCR: s->mcr = val & 0x1f; break;
    case UART_LSR: /* read-only */
    case UART_MSR: /* read-only */ break;
    case UART_SCR: s->scr = val; break;
    default: return -EINVAL;
    }
    return 0;
}

static uint8_t uart_read_rbr(struct uart *u)
{
    struct uart_state *s = &u->st;
    uint8_t ret = 0;

    if (uart_fifo_mode(u)) {
        if (s->rx_count) {
            ret = s->rx_fifo[s->rx_head];
            s->rx_head = (uint8_t)((s->rx_head + 1) % UART_FIFO_SIZE);
            s->rx_count--;
        }
        if (s->rx_count == 0) {
            s->lsr &= ~(UART_LSR_DR | UART_LSR_BI);
            s->rx_timeout_ns = 0;
        } else {
            s->rx_timeout_ns = uart_now(u) + 4 * uart_char_time_ns(u);
        }
        s->timeout_ipending = 0;
    } else {
        ret = s->rbr;
        s->lsr &= ~(UART_LSR_DR | UART_LSR_BI);
    }
    uart_update_irq(u);
    return ret;
}

int uart_read(struct uart *u, uint64_t off, uint8_t *val)
{
    struct uart_state *s = &u->st;
    bool dlab = s->lcr & UART_LCR_DLAB;

    switch (off) {
    case UART_RBR: *val = dlab ? (uint8_t)s->divisor : uart_read_rbr(u); break;
    case UART_IER: *val = dlab ? (uint8_t)(s->divisor >> 8) : s->ier; break;
    case UART_IIR:
        *val = s->iir;
        /* Reading IIR while it reports THRE acknowledges that interrupt. */
        if ((s->iir & UART_IIR_ID) == UART_IIR_THRI && !(s->iir & UART_IIR_NO_INT)) {
            s->thr_ipending = 0;
            uart_update_irq(u);
        }
        break;
    case UART_LCR: *val = s->lcr; break;
    case UART_MCR: *val = s->mcr; break;
    case UART_LSR:
        *val = s->lsr;
        /* Error bits clear on read. */
        if (s->lsr & (UART_LSR_BI | UART_LSR_OE)) {
            s->lsr &= ~(UART_LSR_BI | UART_LSR_OE);
            uart_update_irq(u);
        }
        break;
    case UART_MSR:
        if (s->mcr & UART_MCR_LOOP) {
            /* Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
            *val = (uint8_t)(((s->mcr & UART_MCR_DTR) ? UART_MSR_DSR : 0) |
                             ((s->mcr & UART_MCR_RTS) ? UART_MSR_CTS : 0) |
                             ((s->mcr & UART_MCR_OUT1) ? UART_MSR_RI : 0) |
                             ((s->mcr & UART_MCR_OUT2) ? UART_MSR_DCD : 0));
        } else {
            *val = s->msr;
            if (s->msr & UART_MSR_ANY_DELTA) {
                s->msr &= 0xf0;
                uart_update_irq(u);
            }
        }
        break;
    case UART_SCR: *val = s->scr; break;
    default: return -EINVAL;
    }
    return 0;
}

void uart_poll(struct uart *u, uint64_t now_ns)
{
    struct uart_state *s = &u->st;

    if (s->rx_timeout_ns && now_ns >= s->rx_timeout_ns) {
        s->rx_timeout_ns = 0;
        if (s->rx_count) {
            s->timeout_ipending = 1;
            uart_update_irq(u);
        }
    }
}

uint64_t uart_next_deadline(const struct uart *u)
{
    return u->st.rx_timeout_ns ? u->st.rx_timeout_ns : UINT64_MAX;
}

bool uart_irq_level(const struct uart *u)
{
    return u->irq_level;
}

/* Bus glue: any access size reaches the byte register at its address; only
 * the low byte of a write counts and reads return the byte zero-extended. */
static int uart_bus_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    uint8_t b = 0;
    int ret;

    (void)size;
    ret = uart_read(opaque, off, &b);
    *val = b;
    return ret;
}

static int uart_bus_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    (void)size;
    return uart_write(opaque, off, (uint8_t)val);
}

const struct bus_ops uart_bus_ops = {uart_bus_read, uart_bus_write};

/* ---- state (docs/state.md) ---------------------------------------------------
 * Version 1: u8 rbr ier iir fcr lcr mcr lsr msr scr, u16 divisor, u8
 * thr_ipending timeout_ipending, u8 rx_count, rx_count FIFO bytes (oldest
 * first), u64 ns left until the character timeout (0 = not armed).  The
 * FIFO is saved unrotated, so rx_head is not part of the format.  The
 * timeout is relative: a host clock means nothing on another host. */

void uart_save(const struct uart *u, struct state_buf *b)
{
    const struct uart_state *s = &u->st;
    uint64_t left = 0;

    state_put_u8(b, s->rbr);
    state_put_u8(b, s->ier);
    state_put_u8(b, s->iir);
    state_put_u8(b, s->fcr);
    state_put_u8(b, s->lcr);
    state_put_u8(b, s->mcr);
    state_put_u8(b, s->lsr);
    state_put_u8(b, s->msr);
    state_put_u8(b, s->scr);
    state_put_u16(b, s->divisor);
    state_put_u8(b, s->thr_ipending);
    state_put_u8(b, s->timeout_ipending);
    state_put_u8(b, s->rx_count);
    for (unsigned i = 0; i < s->rx_count; i++)
        state_put_u8(b, s->rx_fifo[(s->rx_head + i) % UART_FIFO_SIZE]);
    if (s->rx_timeout_ns) {
        uint64_t now = uart_now(u);
        /* already due: fires at the first poll after load */
        left = s->rx_timeout_ns > now ? s->rx_timeout_ns - now : 1;
    }
    state_put_u64(b, left);
}

int uart_load(struct uart *u, struct state_buf *b, unsigned version)
{
    struct uart_state s;
    uint64_t left;

    if (version == 0 || version > UART_STATE_VERSION) {
        state_buf_fail(b, -EINVAL, "uart: state version %u, this build knows up to %u", version,
                       UART_STATE_VERSION);
        return -EINVAL;
    }
    memset(&s, 0, sizeof(s));
    s.rbr = state_get_u8(b);
    s.ier = state_get_u8(b);
    s.iir = state_get_u8(b);
    s.fcr = state_get_u8(b);
    s.lcr = state_get_u8(b);
    s.mcr = state_get_u8(b);
    s.lsr = state_get_u8(b);
    s.msr = state_get_u8(b);
    s.scr = state_get_u8(b);
    s.divisor = state_get_u16(b);
    s.thr_ipending = state_get_u8(b);
    s.timeout_ipending = state_get_u8(b);
    s.rx_count = state_get_u8(b);
    if (state_buf_error(b))
        return -EINVAL;
    /* Only values the register writes can produce (see uart_write). */
    if (s.ier & ~0x0f)
        state_buf_fail(b, -EINVAL, "uart: IER 0x%02x has reserved bits", s.ier);
    else if (s.mcr & ~0x1f)
        state_buf_fail(b, -EINVAL, "uart: MCR 0x%02x has reserved bits", s.mcr);
    else if (s.fcr & ~(UART_FCR_FE | UART_FCR_ITL | 0x08))
        state_buf_fail(b, -EINVAL, "uart: FCR 0x%02x has non-sticky bits", s.fcr);
    else if (s.thr_ipending > 1 || s.timeout_ipending > 1)
        state_buf_fail(b, -EINVAL, "uart: interrupt flags %u/%u are not booleans", s.thr_ipending,
                       s.timeout_ipending);
    else if (s.rx_count > UART_FIFO_SIZE)
        state_buf_fail(b, -EINVAL, "uart: %u bytes in a %u-byte FIFO", s.rx_count, UART_FIFO_SIZE);
    else if (s.rx_count && !(s.fcr & UART_FCR_FE))
        state_buf_fail(b, -EINVAL, "uart: FIFO contents with the FIFO disabled");
    else if (s.rx_count && !(s.lsr & UART_LSR_DR))
        state_buf_fail(b, -EINVAL, "uart: FIFO contents without LSR.DR");
    if (state_buf_error(b))
        return -EINVAL;
    state_get_bytes(b, s.rx_fifo, s.rx_count);
    left = state_get_u64(b);
    if (state_buf_error(b))
        return -EINVAL;
    u->st = s;
    if (left) {
        uint64_t now = uart_now(u);
        u->st.rx_timeout_ns = left > UINT64_MAX - now ? UINT64_MAX : now + left;
    }
    /* IIR is recomputed from the conditions; the line is sent again
     * whatever level the PLIC has latched. */
    uart_update_irq(u);
    if (u->host.set_irq)
        u->host.set_irq(u->host.opaque, u->irq_level);
    return 0;
}
