/*
 * virtio-console with multiport on the virtio core; see virtio_console.h.
 *
 * The control handshake, as Linux's virtio_console and QEMU's
 * virtio-serial-bus run it (virtio 1.2 §5.3.6.2):
 *   driver: DEVICE_READY 1            -> device: DEVICE_ADD for every port
 *   driver: PORT_READY 1 (port p)     -> device: PORT_NAME (if named),
 *                                        PORT_OPEN 1 (if host-connected)
 *   driver: PORT_OPEN 1/0 (port p)       a process opened / closed the port
 * Control messages to the driver go through c_ivq buffers; when none is
 * posted they wait (at most VCON_CTRL_QUEUED, then dropped and counted).
 *
 * Guest input is hostile: a control message shorter than its header, for
 * a port that does not exist, or with a value other than 0/1, and a device-
 * readable buffer on a receive queue, put the device in NEEDS_RESET.  Bytes
 * the guest writes on the agent port become lines of at most VCON_LINE_MAX
 * bytes (longer ones are cut); only the first VCON_LOG_LINES are logged.
 * Lines answer the commands in the in-flight FIFO in order (see
 * vcon_agent_request); a guest that answers wrongly or too often only
 * confuses its own answers.
 */
#include "virtio/virtio_console.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { VCON_CTRL_RXQ = 2, VCON_CTRL_TXQ = 3 }; /* c_ivq, c_ovq (§5.3.2) */

#define VCON_STATE_VERSION 1
#define VCON_LOG_LINES     32u /* agent lines logged per device, so a guest cannot flood the log */
#define VCON_MSG_MAX       (VCON_CTRL_HDR + VCON_NAME_MAX + 1) /* PORT_NAME with its NUL */

struct vcon_port {
    /* guest-visible */
    bool guest_ready; /* the driver sent PORT_READY 1 */
    bool guest_open;  /* the driver sent PORT_OPEN 1: a process has the port open */
    /* host */
    bool present;                 /* configured (port 0 stays absent: reserved) */
    bool agent;                   /* VCON_AGENT_NAME: godwit-vm serves it */
    char name[VCON_NAME_MAX + 1]; /* "" = unnamed */
};

struct vcon_msg {
    uint16_t len; /* bytes of data, VCON_CTRL_HDR..VCON_MSG_MAX */
    uint8_t data[VCON_MSG_MAX];
};

struct vcon {
    struct virtio_dev vdev; /* first */
    /* guest-visible */
    uint8_t config[VCON_CONFIG_LEN];
    bool driver_ready; /* the driver sent DEVICE_READY 1 */
    struct vcon_port port[VCON_MAX_PORTS];
    struct vcon_msg ctrl[VCON_CTRL_QUEUED]; /* to the driver, waiting for c_ivq buffers */
    unsigned ctrl_head, nctrl;              /* ring: oldest at ctrl_head */
    uint8_t agent_out[VCON_PENDING_MAX];    /* host -> guest agent bytes not delivered yet */
    uint32_t agent_nout;
    /* host */
    unsigned nports;          /* configured ports: numbers 1..nports */
    unsigned agent_port;      /* its number, 0 = none */
    char line[VCON_LINE_MAX]; /* guest -> host agent line being assembled */
    unsigned nline;
    bool line_cut; /* the current line was longer than VCON_LINE_MAX: rest dropped */
    uint64_t inflight[VCON_INFLIGHT];  /* tags of commands not answered yet (0: nobody waits) */
    unsigned inflight_head, ninflight; /* ring: oldest at inflight_head */
    vcon_agent_answer_fn hook;
    void *hook_opaque;
    struct virtq_elem *elem;
    struct vcon_stats stats;
};

static struct vcon *vcon_of(struct virtio_dev *d)
{
    return (struct vcon *)d;
}

static const struct vcon *vcon_of_const(const struct virtio_dev *d)
{
    return (const struct vcon *)d;
}

/* §5.3.2: port 0 on queues 0/1, the control queues 2/3, port p on 2(p+1). */
static unsigned vcon_rxq(unsigned port)
{
    return port == 0 ? 0 : 2 * (port + 1);
}

static unsigned vcon_port_of_queue(unsigned q)
{
    return q < 2 ? 0 : q / 2 - 1;
}

static bool vcon_running(const struct vcon *c)
{
    /* §2.1.2: no buffer is used before DRIVER_OK. */
    return (c->vdev.status & VIRTIO_STATUS_DRIVER_OK) && !c->vdev.broken;
}

/* ---- control messages to the driver (c_ivq) --------------------------------- */

/* Move waiting control messages into the driver's c_ivq buffers. */
static void vcon_ctrl_flush(struct vcon *c)
{
    struct virtio_dev *d = &c->vdev;
    struct virtq *q = &d->vq[VCON_CTRL_RXQ];
    bool pushed = false;

    while (c->nctrl && vcon_running(c)) {
        const struct vcon_msg *m = &c->ctrl[c->ctrl_head];
        size_t n;
        int ret = virtq_pop(d, q, c->elem);
        if (ret < 0)
            return;
        if (ret == 0) {
            if (virtq_enable_notify(d, q, true))
                continue; /* a buffer arrived meanwhile */
            break;
        }
        if (c->elem->nout) {
            virtio_needs_reset(d, "queue %u: control receive chain with a device-readable buffer",
                               q->index);
            return;
        }
        /* A buffer shorter than the message gets what fits (as QEMU);
         * Linux posts a page. */
        n = virtq_elem_write(d, c->elem, 0, m->data, m->len);
        virtq_push(d, q, c->elem, (uint32_t)n);
        pushed = true;
        c->ctrl_head = (c->ctrl_head + 1) % VCON_CTRL_QUEUED;
        c->nctrl--;
        c->stats.ctrl_out++;
    }
    if (pushed)
        virtq_notify(d, q);
}

/* Queue a control message (with name appended, NUL-terminated as QEMU
 * sends it, when not NULL) and deliver what can be delivered. */
static void vcon_ctrl_send(struct vcon *c, uint32_t id, uint16_t event, uint16_t value,
                           const char *name)
{
    struct vcon_msg *m;
    size_t nlen = name ? strlen(name) + 1 : 0;

    if (c->nctrl == VCON_CTRL_QUEUED) {
        c->stats.ctrl_dropped++; /* the driver posts no buffers but keeps asking */
        return;
    }
    assert(nlen <= VCON_NAME_MAX + 1);
    m = &c->ctrl[(c->ctrl_head + c->nctrl) % VCON_CTRL_QUEUED];
    gw_put_le(m->data, id, 4);
    gw_put_le(m->data + 4, event, 2);
    gw_put_le(m->data + 6, value, 2);
    if (nlen)
        memcpy(m->data + VCON_CTRL_HDR, name, nlen);
    m->len = (uint16_t)(VCON_CTRL_HDR + nlen);
    c->nctrl++;
    vcon_ctrl_flush(c);
}

/* ---- agent port: host -> guest ------------------------------------------------ */

/* Move waiting agent bytes into the driver's receive buffers of the agent
 * port (§5.3.6.1: the device writes into receiveq buffers). */
static void vcon_agent_flush(struct vcon *c)
{
    struct virtio_dev *d = &c->vdev;
    struct virtq *q;
    bool pushed = false;

    if (!c->agent_port || !c->port[c->agent_port].guest_open)
        return;
    q = &d->vq[vcon_rxq(c->agent_port)];
    while (c->agent_nout && vcon_running(c)) {
        size_t n;
        int ret = virtq_pop(d, q, c->elem);
        if (ret < 0)
            return;
        if (ret == 0) {
            if (virtq_enable_notify(d, q, true))
                continue;
            break;
        }
        if (c->elem->nout) {
            virtio_needs_reset(d, "queue %u: receive chain with a device-readable buffer",
                               q->index);
            return;
        }
        n = virtq_elem_write(d, c->elem, 0, c->agent_out, c->agent_nout);
        virtq_push(d, q, c->elem, (uint32_t)n);
        pushed = true;
        memmove(c->agent_out, c->agent_out + n, c->agent_nout - n);
        c->agent_nout -= (uint32_t)n;
        c->stats.rx_bytes += n;
    }
    if (pushed)
        virtq_notify(d, q);
}

/* Every command in flight is void (no answer can come): tell the hook. */
static void vcon_inflight_drop(struct vcon *c)
{
    while (c->ninflight) {
        uint64_t tag = c->inflight[c->inflight_head];
        c->inflight_head = (c->inflight_head + 1) % VCON_INFLIGHT;
        c->ninflight--;
        if (tag && c->hook)
            c->hook(c->hook_opaque, tag, NULL);
    }
    c->inflight_head = 0;
}

void vcon_set_agent_hook(struct virtio_dev *d, vcon_agent_answer_fn fn, void *opaque)
{
    struct vcon *c = vcon_of(d);

    c->hook = fn;
    c->hook_opaque = opaque;
}

void vcon_agent_forget(struct virtio_dev *d, uint64_t tag)
{
    struct vcon *c = vcon_of(d);

    for (unsigned i = 0; i < c->ninflight && tag; i++) {
        uint64_t *t = &c->inflight[(c->inflight_head + i) % VCON_INFLIGHT];
        if (*t == tag)
            *t = 0;
    }
}

int vcon_agent_send(struct virtio_dev *d, const char *line)
{
    return vcon_agent_request(d, line, 0);
}

int vcon_agent_request(struct virtio_dev *d, const char *line, uint64_t tag)
{
    struct vcon *c = vcon_of(d);
    size_t len = strlen(line);
    bool nl = len && line[len - 1] == '\n';

    if (!c->agent_port)
        return -ENODEV;
    if (!c->port[c->agent_port].guest_open)
        return -ENOTCONN;
    if (!len || memchr(line, '\n', len - nl) || len + !nl > VCON_LINE_MAX)
        return -EINVAL;
    if (c->agent_nout + len + !nl > VCON_PENDING_MAX)
        return -ENOBUFS;
    if (c->ninflight == VCON_INFLIGHT)
        return -EBUSY;
    c->inflight[(c->inflight_head + c->ninflight++) % VCON_INFLIGHT] = tag;
    memcpy(c->agent_out + c->agent_nout, line, len);
    c->agent_nout += (uint32_t)len;
    if (!nl)
        c->agent_out[c->agent_nout++] = '\n';
    vcon_agent_flush(c);
    return c->agent_nout ? -EAGAIN : 0;
}

int vcon_agent_connected(const struct virtio_dev *d)
{
    const struct vcon *c = vcon_of_const(d);

    if (!c->agent_port)
        return -ENODEV;
    return c->port[c->agent_port].guest_open;
}

/* ---- agent port: guest -> host ------------------------------------------------ */

/* A complete line from the guest agent ("ready", "ok powerdown", ...):
 * remembered and logged (the first VCON_LOG_LINES); "ready" voids the
 * commands in flight, any other line answers the oldest of them. */
static void vcon_agent_line(struct vcon *c)
{
    size_t n = c->nline, k;
    char text[VCON_LINE_MAX + 1];

    if (n && c->line[n - 1] == '\r')
        n--;
    for (k = 0; k < n && k + 1 < sizeof(c->stats.agent_last); k++) {
        char ch = c->line[k];
        c->stats.agent_last[k] = ch >= 0x20 && ch < 0x7f ? ch : '?';
    }
    c->stats.agent_last[k] = 0;
    if (c->stats.agent_lines < VCON_LOG_LINES)
        gw_log("%s%s%s: agent: %s%s%s", c->vdev.ops->name, c->vdev.id[0] ? " " : "", c->vdev.id,
               c->stats.agent_last, c->line_cut || k < n ? " (cut)" : "",
               c->stats.agent_lines + 1 == VCON_LOG_LINES ? " (further lines not logged)" : "");
    c->stats.agent_lines++;
    memcpy(text, c->line, n);
    text[n] = 0;
    c->nline = 0;
    c->line_cut = false;
    if (strlen(text) != n) {
        for (k = 0; k < n; k++) /* a NUL would cut the line short: make it visible */
            if (!text[k])
                text[k] = '?';
    }
    if (!strcmp(text, "ready")) {
        vcon_inflight_drop(c); /* a fresh agent never saw them */
    } else if (c->ninflight) {
        uint64_t tag = c->inflight[c->inflight_head];
        c->inflight_head = (c->inflight_head + 1) % VCON_INFLIGHT;
        c->ninflight--;
        if (tag && c->hook)
            c->hook(c->hook_opaque, tag, text);
    }
}

static void vcon_agent_input(struct vcon *c, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            vcon_agent_line(c);
        } else if (c->nline < sizeof(c->line)) {
            c->line[c->nline++] = (char)p[i];
        } else {
            c->line_cut = true;
        }
    }
}

/* The driver's transmitq of port p: take every chain, hand the bytes to
 * the agent or drop them (nothing on the host serves the port). */
static void vcon_port_tx(struct vcon *c, unsigned qi, unsigned p)
{
    struct virtio_dev *d = &c->vdev;
    struct virtq *q = &d->vq[qi];
    bool agent = p && p == c->agent_port;
    uint8_t buf[512];
    int ret;

    do {
        while ((ret = virtq_pop(d, q, c->elem)) > 0) {
            /* out_len is bounded by the core (4 GiB - 1): read in pieces. */
            for (uint64_t off = 0; agent && off < c->elem->out_len;) {
                size_t n = virtq_elem_read(c->elem, off, buf, sizeof(buf));
                if (!n)
                    break;
                vcon_agent_input(c, buf, n);
                off += n;
            }
            if (!agent)
                c->stats.tx_discarded += c->elem->out_len;
            c->stats.tx_bytes += c->elem->out_len;
            virtq_push(d, q, c->elem, 0);
        }
    } while (ret == 0 && virtq_enable_notify(d, q, true));
    virtq_notify(d, q);
}

/* ---- control messages from the driver (c_ovq) --------------------------------- */

/* One control message; 0, or -EIO after NEEDS_RESET. */
static int vcon_ctrl_handle(struct vcon *c, const uint8_t *hdr)
{
    struct virtio_dev *d = &c->vdev;
    uint32_t id = (uint32_t)gw_get_le(hdr, 4);
    uint16_t event = (uint16_t)gw_get_le(hdr + 4, 2);
    uint16_t value = (uint16_t)gw_get_le(hdr + 6, 2);
    struct vcon_port *port = id < VCON_MAX_PORTS ? &c->port[id] : NULL;

    c->stats.ctrl_in++;
    switch (event) {
    case VIRTIO_CONSOLE_DEVICE_READY:
    case VIRTIO_CONSOLE_PORT_READY:
    case VIRTIO_CONSOLE_PORT_OPEN: break;
    default:
        /* Events only a device sends (DEVICE_ADD, PORT_NAME, ...) or newer
         * ones: QEMU ignores them too. */
        c->stats.ctrl_ignored++;
        return 0;
    }
    if (value > 1)
        return virtio_needs_reset(d, "control event %u with value %u (0 or 1)", event, value);
    if (event == VIRTIO_CONSOLE_DEVICE_READY) {
        if (!value) {
            gw_log("%s%s%s: the guest driver failed to initialise", d->ops->name,
                   d->id[0] ? " " : "", d->id);
            return 0;
        }
        c->driver_ready = true;
        for (unsigned p = 1; p < VCON_MAX_PORTS; p++)
            if (c->port[p].present)
                vcon_ctrl_send(c, p, VIRTIO_CONSOLE_DEVICE_ADD, 1, NULL);
        return 0;
    }
    if (!port || !port->present)
        return virtio_needs_reset(d, "control event %u for port %u, which does not exist", event,
                                  id);
    if (event == VIRTIO_CONSOLE_PORT_READY) {
        port->guest_ready = value;
        if (!value)
            return 0; /* the driver could not add it: it says nothing more */
        if (port->name[0])
            vcon_ctrl_send(c, id, VIRTIO_CONSOLE_PORT_NAME, 1, port->name);
        if (port->agent)
            vcon_ctrl_send(c, id, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
        return 0;
    }
    port->guest_open = value;
    if (port->agent) {
        if (value) {
            vcon_agent_flush(c);
        } else {
            c->agent_nout = 0; /* nobody reads them any more (Linux would drop them) */
            c->nline = 0;
            c->line_cut = false;
            vcon_inflight_drop(c);
        }
    }
    return 0;
}

static void vcon_ctrl_rx(struct vcon *c)
{
    struct virtio_dev *d = &c->vdev;
    struct virtq *q = &d->vq[VCON_CTRL_TXQ];
    uint8_t hdr[VCON_CTRL_HDR];
    int ret;

    do {
        while ((ret = virtq_pop(d, q, c->elem)) > 0) {
            if (c->elem->out_len < VCON_CTRL_HDR) {
                virtio_needs_reset(d, "queue %u: control message of %llu bytes (at least %u)",
                                   q->index, (unsigned long long)c->elem->out_len, VCON_CTRL_HDR);
                return;
            }
            /* Copied out first: the guest cannot change it under us. */
            virtq_elem_read(c->elem, 0, hdr, sizeof(hdr));
            virtq_push(d, q, c->elem, 0);
            if (vcon_ctrl_handle(c, hdr) < 0)
                return;
        }
    } while (ret == 0 && virtq_enable_notify(d, q, true));
    virtq_notify(d, q);
}

/* ---- device ops ------------------------------------------------------------------ */

static void vcon_queue_notify(struct virtio_dev *d, unsigned qi)
{
    struct vcon *c = vcon_of(d);
    unsigned p = vcon_port_of_queue(qi);

    if (qi == VCON_CTRL_RXQ)
        vcon_ctrl_flush(c); /* the driver posted control buffers */
    else if (qi == VCON_CTRL_TXQ)
        vcon_ctrl_rx(c);
    else if (qi % 2)
        vcon_port_tx(c, qi, p);
    else if (p == c->agent_port)
        vcon_agent_flush(c); /* receive buffers: used only when there is data */
}

static void vcon_reset(struct virtio_dev *d)
{
    struct vcon *c = vcon_of(d);

    c->driver_ready = false;
    for (unsigned p = 0; p < VCON_MAX_PORTS; p++)
        c->port[p].guest_ready = c->port[p].guest_open = false;
    c->ctrl_head = c->nctrl = 0;
    c->agent_nout = 0;
    c->nline = 0;
    c->line_cut = false;
    vcon_inflight_drop(c);
}

static void vcon_status_changed(struct virtio_dev *d, uint32_t old)
{
    struct vcon *c = vcon_of(d);

    /* Messages queued before DRIVER_OK (none in practice) go out now. */
    if ((d->status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK))
        vcon_ctrl_flush(c);
}

/*
 * The device part of the state (after the core's, docs/state.md): its own
 * version byte, the port table (number and names must match the loading
 * device's configuration), DEVICE_READY, per port PORT_READY and
 * PORT_OPEN, the control messages and agent bytes not delivered yet.  The
 * half-assembled guest -> host line is host plumbing and is not saved.
 */
static void vcon_save(const struct virtio_dev *d, struct state_buf *b)
{
    const struct vcon *c = vcon_of_const(d);

    state_put_u8(b, VCON_STATE_VERSION);
    state_put_u8(b, (uint8_t)c->nports);
    state_put_bool(b, c->driver_ready);
    for (unsigned p = 1; p <= c->nports; p++) {
        state_put_str(b, c->port[p].name);
        state_put_bool(b, c->port[p].guest_ready);
        state_put_bool(b, c->port[p].guest_open);
    }
    state_put_u8(b, (uint8_t)c->nctrl);
    for (unsigned i = 0; i < c->nctrl; i++) {
        const struct vcon_msg *m = &c->ctrl[(c->ctrl_head + i) % VCON_CTRL_QUEUED];
        state_put_u16(b, m->len);
        state_put_bytes(b, m->data, m->len);
    }
    state_put_u32(b, c->agent_nout);
    state_put_bytes(b, c->agent_out, c->agent_nout);
}

static int vcon_load(struct virtio_dev *d, struct state_buf *b, unsigned version)
{
    struct vcon *c = vcon_of(d);
    struct vcon *t; /* the loaded state, applied only when all of it is valid */
    char name[VCON_NAME_MAX + 1];
    unsigned v, nports, nctrl;
    int ret = -EINVAL;

    (void)version; /* the core's section version; ours is the first byte */
    t = malloc(sizeof(*t));
    if (!t) {
        state_buf_fail(b, -ENOMEM, "virtio-console: out of memory");
        return -ENOMEM;
    }
    memcpy(t, c, sizeof(*t));
    v = state_get_u8(b);
    if (!state_buf_error(b) && v != VCON_STATE_VERSION) {
        state_buf_fail(b, -EINVAL, "virtio-console: state version %u (this build reads %u)", v,
                       VCON_STATE_VERSION);
        goto out;
    }
    nports = state_get_u8(b);
    if (!state_buf_error(b) && nports != c->nports) {
        state_buf_fail(b, -EINVAL, "virtio-console: %u ports saved, this device has %u", nports,
                       c->nports);
        goto out;
    }
    t->driver_ready = state_get_bool(b);
    for (unsigned p = 1; p <= c->nports && !state_buf_error(b); p++) {
        state_get_str(b, name, sizeof(name));
        if (!state_buf_error(b) && strcmp(name, c->port[p].name)) {
            state_buf_fail(b, -EINVAL, "virtio-console: port %u is '%s' here, saved as '%s'", p,
                           c->port[p].name, name);
            goto out;
        }
        t->port[p].guest_ready = state_get_bool(b);
        t->port[p].guest_open = state_get_bool(b);
    }
    nctrl = state_get_u8(b);
    if (!state_buf_error(b) && nctrl > VCON_CTRL_QUEUED) {
        state_buf_fail(b, -EINVAL, "virtio-console: %u control messages queued (at most %u)", nctrl,
                       VCON_CTRL_QUEUED);
        goto out;
    }
    t->ctrl_head = 0;
    t->nctrl = state_buf_error(b) ? 0 : nctrl;
    for (unsigned i = 0; i < t->nctrl && !state_buf_error(b); i++) {
        struct vcon_msg *m = &t->ctrl[i];
        m->len = state_get_u16(b);
        if (!state_buf_error(b) && (m->len < VCON_CTRL_HDR || m->len > VCON_MSG_MAX)) {
            state_buf_fail(b, -EINVAL, "virtio-console: control message of %u bytes", m->len);
            goto out;
        }
        state_get_bytes(b, m->data, m->len);
    }
    t->agent_nout = state_get_u32(b);
    if (!state_buf_error(b) &&
        (t->agent_nout > VCON_PENDING_MAX ||
         (t->agent_nout && (!c->agent_port || !t->port[c->agent_port].guest_open)))) {
        state_buf_fail(b, -EINVAL, "virtio-console: %u agent bytes pending", t->agent_nout);
        goto out;
    }
    if (state_buf_error(b))
        goto out;
    state_get_bytes(b, t->agent_out, t->agent_nout);
    if (state_buf_error(b))
        goto out;
    t->nline = 0;
    t->line_cut = false;
    vcon_inflight_drop(c); /* host plumbing: this device's commands are void */
    t->inflight_head = t->ninflight = 0;
    memcpy(c, t, sizeof(*c));
    ret = 0;
out:
    free(t);
    return ret;
}

static void vcon_fini(struct virtio_dev *d)
{
    struct vcon *c = vcon_of(d);

    free(c->elem);
    free(c);
}

static const struct virtio_dev_ops vcon_ops = {
    .name = "virtio-serial",
    .queue_notify = vcon_queue_notify,
    .reset = vcon_reset,
    .status_changed = vcon_status_changed,
    .save = vcon_save,
    .load = vcon_load,
    .fini = vcon_fini,
};

struct virtio_dev *vcon_new(struct gmem *mem, const struct vcon_config *cfg, char *err,
                            size_t errlen)
{
    struct vcon *c = calloc(1, sizeof(*c));

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->elem = malloc(sizeof(*c->elem));
    if (!c->elem) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (virtio_dev_init(&c->vdev, &vcon_ops, mem, VIRTIO_ID_CONSOLE,
                        VIRTIO_BIT(VIRTIO_CONSOLE_F_MULTIPORT), 2 * (VCON_MAX_PORTS + 1),
                        VCON_QUEUE_SIZE) < 0) {
        snprintf(err, errlen, "virtio-serial: bad device parameters");
        goto fail;
    }
    /* §5.3.4: cols, rows (only with F_SIZE), max_nr_ports, emerg_wr. */
    gw_put_le(c->config + 4, VCON_MAX_PORTS, 4);
    c->vdev.config = c->config;
    c->vdev.config_len = VCON_CONFIG_LEN;
    snprintf(c->vdev.id, sizeof(c->vdev.id), "%s", cfg->id ? cfg->id : "");
    return &c->vdev;

fail:
    vcon_fini(&c->vdev);
    return NULL;
}

int vcon_add_port(struct virtio_dev *d, const char *name, char *err, size_t errlen)
{
    struct vcon *c = vcon_of(d);
    unsigned p = c->nports + 1;

    if (!name)
        name = "";
    if (p >= VCON_MAX_PORTS) {
        snprintf(err, errlen, "at most %u ports per virtio-serial device", VCON_MAX_PORTS - 1);
        return -ENOSPC;
    }
    if (strlen(name) > VCON_NAME_MAX) {
        snprintf(err, errlen, "port name longer than %u bytes", VCON_NAME_MAX);
        return -EINVAL;
    }
    for (unsigned i = 1; i < p && name[0]; i++) {
        if (!strcmp(c->port[i].name, name)) {
            snprintf(err, errlen, "a port named '%s' already exists", name);
            return -EEXIST;
        }
    }
    c->port[p].present = true;
    snprintf(c->port[p].name, sizeof(c->port[p].name), "%s", name);
    if (!strcmp(name, VCON_AGENT_NAME)) {
        c->port[p].agent = true;
        c->agent_port = p;
    }
    c->nports = p;
    return (int)p;
}

const struct vcon_stats *vcon_stats(const struct virtio_dev *d)
{
    return &vcon_of_const(d)->stats;
}
