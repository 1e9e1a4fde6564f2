/*
 * Unit tests for virtio-console (virtio-serial with multiport): a small
 * driver sets up all 16 queues in guest RAM through the virtio-mmio
 * registers, runs the control handshake Linux runs (DEVICE_READY ->
 * DEVICE_ADD, PORT_READY -> PORT_NAME / PORT_OPEN, PORT_OPEN), then checks
 * the agent channel both ways (vcon_agent_send with and without an open
 * port and buffers, pending bytes delivered when buffers come, the bound),
 * malformed control traffic -> NEEDS_RESET and recovery, and a save/load
 * round trip of the device's own state, including refused loads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "board_check.h"
#include "virtio/virtio_console.h"
#include "virtio/virtio_mmio.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1ull << 20)
#define QSIZE    16u
#define Q_AREA   0x3000ull                  /* per queue: desc, avail, used pages */
#define DATA     (RAM_BASE + 0x40000)       /* buffers: 256 bytes each, handed out in order */
#define NQ       (2 * (VCON_MAX_PORTS + 1)) /* 16 */
#define F_DRV                                                                                      \
    (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |                             \
     VIRTIO_BIT(VIRTIO_CONSOLE_F_MULTIPORT))

struct tq {
    uint16_t avail_idx, used_seen, next_desc;
};

struct drv {
    struct gmem *mem;
    struct virtio_dev *dev;
    struct virtio_mmio mmio;
    struct tq q[NQ];
    uint64_t next_buf; /* next free 256-byte buffer */
    bool irq;
};

static void drv_irq(void *opaque, bool level)
{
    ((struct drv *)opaque)->irq = level;
}

static uint32_t rd(struct drv *t, uint64_t off)
{
    uint64_t v = 0;
    if (virtio_mmio_ops.read(&t->mmio, off, 4, &v) < 0)
        return 0xdeadbeef;
    return (uint32_t)v;
}

static void wr(struct drv *t, uint64_t off, uint32_t v)
{
    (void)virtio_mmio_ops.write(&t->mmio, off, 4, v);
}

static uint64_t q_desc(unsigned q)
{
    return RAM_BASE + Q_AREA * q;
}

static void st16(struct drv *t, uint64_t gpa, uint16_t v)
{
    if (gmem_write(t->mem, gpa, &v, 2) < 0)
        abort();
}

static uint16_t ld16(struct drv *t, uint64_t gpa)
{
    uint16_t v = 0xdead;
    if (gmem_read(t->mem, gpa, &v, 2) < 0)
        return 0xdead;
    return v;
}

/* Reset, negotiate, set up every queue, DRIVER_OK. */
static void drv_start(struct drv *t)
{
    wr(t, VIRTIO_MMIO_STATUS, 0);
    memset(t->mem->host, 0, RAM_SIZE);
    memset(t->q, 0, sizeof(t->q));
    t->next_buf = DATA;
    wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)F_DRV);
    wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(F_DRV >> 32));
    wr(t, VIRTIO_MMIO_STATUS,
       VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    for (unsigned q = 0; q < NQ; q++) {
        uint64_t base = q_desc(q);
        wr(t, VIRTIO_MMIO_QUEUE_SEL, q);
        wr(t, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
        wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)base);
        wr(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(base >> 32));
        wr(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(base + 0x1000));
        wr(t, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)((base + 0x1000) >> 32));
        wr(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(base + 0x2000));
        wr(t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)((base + 0x2000) >> 32));
        wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
    }
    wr(t, VIRTIO_MMIO_STATUS, rd(t, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* Post one single-buffer chain on queue q (writable or readable); returns
 * the buffer's address.  data (len bytes) is copied in for readable ones. */
static uint64_t drv_post(struct drv *t, unsigned q, uint32_t len, bool write, const void *data)
{
    struct tq *s = &t->q[q];
    uint64_t buf = t->next_buf, desc = q_desc(q) + 16ull * s->next_desc;
    uint8_t d[16];
    uint16_t flags = write ? VIRTQ_DESC_F_WRITE : 0, next = 0;

    t->next_buf += 256;
    if (data && gmem_write(t->mem, buf, data, len) < 0)
        abort();
    memcpy(d, &buf, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
    if (gmem_write(t->mem, desc, d, 16) < 0)
        abort();
    st16(t, q_desc(q) + 0x1000 + 4 + 2ull * (s->avail_idx % QSIZE), s->next_desc);
    s->next_desc = (uint16_t)((s->next_desc + 1) % QSIZE);
    s->avail_idx++;
    st16(t, q_desc(q) + 0x1000 + 2, s->avail_idx);
    return buf;
}

static void kick(struct drv *t, unsigned q)
{
    wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* Next used entry of q: the bytes written into its buffer (at most 255). */
static bool drv_used(struct drv *t, unsigned q, uint8_t *out, uint32_t *len)
{
    struct tq *s = &t->q[q];
    uint32_t e[2];
    uint64_t buf;
    uint8_t d[16];

    if (ld16(t, q_desc(q) + 0x2000 + 2) == s->used_seen)
        return false;
    if (gmem_read(t->mem, q_desc(q) + 0x2000 + 4 + 8ull * (s->used_seen % QSIZE), e, 8) < 0)
        return false;
    s->used_seen++;
    *len = e[1];
    if (gmem_read(t->mem, q_desc(q) + 16ull * e[0], d, 16) < 0)
        return false;
    memcpy(&buf, d, 8);
    if (out && e[1] && gmem_read(t->mem, buf, out, e[1] < 255 ? e[1] : 255) < 0)
        return false;
    return true;
}

/* The driver sends one control message on c_ovq (queue 3). */
static void ctrl_out(struct drv *t, uint32_t id, uint16_t event, uint16_t value)
{
    uint8_t m[8];

    memcpy(m, &id, 4);
    memcpy(m + 4, &event, 2);
    memcpy(m + 6, &value, 2);
    drv_post(t, 3, 8, false, m);
    kick(t, 3);
}

/* The next control message the device put into c_ivq (queue 2). */
static bool ctrl_in(struct drv *t, uint32_t *id, uint16_t *event, uint16_t *value, char *name)
{
    uint8_t m[256] = {0};
    uint32_t len;

    if (!drv_used(t, 2, m, &len) || len < 8)
        return false;
    memcpy(id, m, 4);
    memcpy(event, m + 4, 2);
    memcpy(value, m + 6, 2);
    if (name) {
        memcpy(name, m + 8, len - 8);
        name[len - 8] = 0;
    }
    return true;
}

static bool needs_reset(struct drv *t)
{
    return rd(t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET;
}

static bool dirty(const struct gmem *m, uint64_t gpa)
{
    uint64_t p = (gpa - m->base) >> GMEM_PAGE_SHIFT;
    return (atomic_load(&m->dirty[p / 64]) >> (p % 64)) & 1;
}

/* Run the whole handshake for ports 1 and 2 and open port 1 (the agent). */
static void handshake(struct drv *t)
{
    for (int i = 0; i < 8; i++)
        drv_post(t, 2, 256, true, NULL);
    kick(t, 2);
    ctrl_out(t, 0xffffffff, VIRTIO_CONSOLE_DEVICE_READY, 1);
    ctrl_out(t, 1, VIRTIO_CONSOLE_PORT_READY, 1);
    ctrl_out(t, 2, VIRTIO_CONSOLE_PORT_READY, 1);
    ctrl_out(t, 1, VIRTIO_CONSOLE_PORT_OPEN, 1);
}

static struct virtio_dev *new_dev(struct gmem *mem, bool agent)
{
    struct vcon_config cfg = {.id = "vser0"};
    char err[200];
    struct virtio_dev *d = vcon_new(mem, &cfg, err, sizeof(err));

    if (!d)
        abort();
    if (vcon_add_port(d, agent ? VCON_AGENT_NAME : "plain", err, sizeof(err)) != 1 ||
        vcon_add_port(d, "other", err, sizeof(err)) != 2)
        abort();
    return d;
}

static void attach(struct drv *t, struct gmem *mem, struct virtio_dev *d)
{
    struct virtio_transport irq = {t, drv_irq};

    memset(t, 0, sizeof(*t));
    t->mem = mem;
    t->dev = d;
    virtio_mmio_init(&t->mmio, d, &irq);
}

static void test_ports_and_config(struct gmem *mem)
{
    struct vcon_config cfg = {0};
    char err[200], longname[VCON_NAME_MAX + 2];
    struct virtio_dev *d = vcon_new(mem, &cfg, err, sizeof(err));
    struct drv t;
    uint64_t v = 0;

    CHECK(d != NULL, "device without ports");
    if (!d)
        return;
    attach(&t, mem, d);
    CHECK_EQ(rd(&t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_CONSOLE, "device ID 3");
    wr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    CHECK(rd(&t, VIRTIO_MMIO_DEVICE_FEATURES) & (1u << VIRTIO_CONSOLE_F_MULTIPORT),
          "MULTIPORT offered");
    CHECK(virtio_mmio_ops.read(&t.mmio, 0x100 + 4, 4, &v) == 0 && v == VCON_MAX_PORTS,
          "config max_nr_ports = %u", VCON_MAX_PORTS);
    CHECK_EQ(vcon_agent_send(d, "powerdown"), -ENODEV, "no agent port: -ENODEV");
    CHECK_EQ(vcon_agent_connected(d), -ENODEV, "no agent port: not connected");
    CHECK_EQ(vcon_add_port(d, "a", err, sizeof(err)), 1, "first port is number 1");
    CHECK(vcon_add_port(d, "a", err, sizeof(err)) == -EEXIST && strstr(err, "'a'"),
          "duplicate name refused: %s", err);
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    CHECK_EQ(vcon_add_port(d, longname, err, sizeof(err)), -EINVAL, "long name refused");
    for (unsigned p = 2; p < VCON_MAX_PORTS; p++)
        CHECK_EQ(vcon_add_port(d, NULL, err, sizeof(err)), p, "unnamed port %u", p);
    CHECK_EQ(vcon_add_port(d, "z", err, sizeof(err)), -ENOSPC, "at most %u ports",
             VCON_MAX_PORTS - 1);
    virtio_dev_free(d);
}

static void test_handshake_and_agent(struct gmem *mem)
{
    struct virtio_dev *d = new_dev(mem, true);
    struct drv t;
    uint32_t id, len;
    uint16_t ev, val;
    char name[256];
    uint8_t buf[256];
    uint64_t b;

    attach(&t, mem, d);
    drv_start(&t);
    CHECK_EQ(vcon_agent_send(d, "powerdown"), -ENOTCONN, "agent port not open: -ENOTCONN");

    for (int i = 0; i < 3; i++)
        drv_post(&t, 2, 256, true, NULL);
    kick(&t, 2);
    ctrl_out(&t, 0xffffffff, VIRTIO_CONSOLE_DEVICE_READY, 1);
    CHECK(ctrl_in(&t, &id, &ev, &val, NULL) && id == 1 && ev == VIRTIO_CONSOLE_DEVICE_ADD,
          "DEVICE_READY -> DEVICE_ADD port 1");
    CHECK(ctrl_in(&t, &id, &ev, &val, NULL) && id == 2 && ev == VIRTIO_CONSOLE_DEVICE_ADD,
          "... and port 2");
    CHECK(!ctrl_in(&t, &id, &ev, &val, NULL), "... and nothing for port 0 (reserved)");
    CHECK(dirty(mem, DATA) && dirty(mem, q_desc(2) + 0x2000), "control buffer and ring dirty");

    ctrl_out(&t, 1, VIRTIO_CONSOLE_PORT_READY, 1);
    CHECK(ctrl_in(&t, &id, &ev, &val, name) && id == 1 && ev == VIRTIO_CONSOLE_PORT_NAME &&
              !strcmp(name, VCON_AGENT_NAME),
          "PORT_READY -> PORT_NAME '%s' (NUL included)", name);
    /* Only three buffers were posted: PORT_OPEN waits for the next one. */
    CHECK(!ctrl_in(&t, &id, &ev, &val, NULL), "no buffer: the message waits");
    drv_post(&t, 2, 256, true, NULL);
    kick(&t, 2);
    CHECK(ctrl_in(&t, &id, &ev, &val, NULL) && id == 1 && ev == VIRTIO_CONSOLE_PORT_OPEN &&
              val == 1,
          "... PORT_OPEN 1 (host-connected) once a buffer comes");
    drv_post(&t, 2, 256, true, NULL);
    kick(&t, 2);
    ctrl_out(&t, 2, VIRTIO_CONSOLE_PORT_READY, 1);
    CHECK(ctrl_in(&t, &id, &ev, &val, name) && id == 2 && ev == VIRTIO_CONSOLE_PORT_NAME &&
              !strcmp(name, "other"),
          "port 2: PORT_NAME 'other'");
    drv_post(&t, 2, 256, true, NULL);
    kick(&t, 2);
    CHECK(!ctrl_in(&t, &id, &ev, &val, NULL), "port 2 has no host side: no PORT_OPEN");

    CHECK_EQ(vcon_agent_send(d, "powerdown"), -ENOTCONN, "not opened by the guest yet");
    ctrl_out(&t, 1, VIRTIO_CONSOLE_PORT_OPEN, 1);
    CHECK_EQ(vcon_agent_connected(d), 1, "guest opened the agent port");
    CHECK_EQ(vcon_agent_send(d, "powerdown"), -EAGAIN, "no receive buffer: -EAGAIN (kept)");
    b = drv_post(&t, 4, 256, true, NULL); /* port 1 receiveq is queue 4 (§5.3.2) */
    kick(&t, 4);
    CHECK(drv_used(&t, 4, buf, &len) && len == 10 && !memcmp(buf, "powerdown\n", 10),
          "delivered when the buffer comes: 'powerdown\\n'");
    CHECK(dirty(mem, b), "receive buffer dirty");
    drv_post(&t, 4, 4, true, NULL);
    drv_post(&t, 4, 256, true, NULL);
    CHECK_EQ(vcon_agent_send(d, "reboot\n"), 0, "with buffers: delivered at once");
    CHECK(drv_used(&t, 4, buf, &len) && len == 4 && !memcmp(buf, "rebo", 4) &&
              drv_used(&t, 4, buf, &len) && len == 3 && !memcmp(buf, "ot\n", 3),
          "a line may span buffers");
    CHECK_EQ(vcon_agent_send(d, "two\nlines"), -EINVAL, "embedded newline refused");
    CHECK_EQ(vcon_agent_send(d, ""), -EINVAL, "empty line refused");
    {
        char line[VCON_LINE_MAX];
        int ret = 0, n = 0;
        memset(line, 'x', sizeof(line) - 1);
        line[sizeof(line) - 1] = 0;
        while ((ret = vcon_agent_send(d, line)) == -EAGAIN)
            n++;
        CHECK(ret == -ENOBUFS && n == VCON_PENDING_MAX / VCON_LINE_MAX,
              "bounded: %d lines kept, then -ENOBUFS", n);
    }
    ctrl_out(&t, 1, VIRTIO_CONSOLE_PORT_OPEN, 0);
    CHECK_EQ(vcon_agent_connected(d), 0, "guest closed the port");
    drv_post(&t, 4, 256, true, NULL);
    kick(&t, 4);
    CHECK(!drv_used(&t, 4, buf, &len), "pending bytes dropped when the guest closes");
    ctrl_out(&t, 1, VIRTIO_CONSOLE_PORT_OPEN, 1);

    /* guest -> host: lines, also split across chains; other ports drop. */
    drv_post(&t, 5, 6, false, "ready\n");
    drv_post(&t, 5, 5, false, "ok po");
    drv_post(&t, 5, 9, false, "werdown\r\n");
    kick(&t, 5);
    CHECK(vcon_stats(d)->agent_lines == 2 && !strcmp(vcon_stats(d)->agent_last, "ok powerdown"),
          "agent lines read: %" PRIu64 ", last '%s'", vcon_stats(d)->agent_lines,
          vcon_stats(d)->agent_last);
    CHECK(drv_used(&t, 5, NULL, &len) && len == 0, "transmit buffers returned (len 0)");
    drv_post(&t, 7, 4, false, "junk"); /* port 2 transmitq */
    kick(&t, 7);
    CHECK(vcon_stats(d)->tx_discarded == 4, "bytes to an unserved port dropped");
    CHECK(!needs_reset(&t), "no NEEDS_RESET on a well-behaved driver");

    virtio_mmio_reset(&t.mmio);
    CHECK_EQ(vcon_agent_send(d, "powerdown"), -ENOTCONN, "after a reset the port is closed");
    virtio_dev_free(d);
}

/* What the answer hook saw. */
struct answers {
    unsigned n;
    uint64_t tag[8];
    char line[8][VCON_LINE_MAX];
    bool null[8];
};

static void record_answer(void *opaque, uint64_t tag, const char *line)
{
    struct answers *a = opaque;

    if (a->n == 8)
        return;
    a->tag[a->n] = tag;
    a->null[a->n] = !line;
    snprintf(a->line[a->n], sizeof(a->line[a->n]), "%s", line ? line : "");
    a->n++;
}

static void guest_write(struct drv *t, const char *data, size_t len)
{
    drv_post(t, 5, (uint32_t)len, false, data); /* port 1 transmitq */
    kick(t, 5);
}

/* Answers are matched to commands in order; "ready", a closed port and a
 * reset void them; forgotten and tag-0 commands eat their answer. */
static void test_agent_answers(struct gmem *mem)
{
    struct virtio_dev *d = new_dev(mem, true);
    struct answers a = {0};
    struct drv t;
    int ret = 0, n = 0;

    attach(&t, mem, d);
    drv_start(&t);
    handshake(&t);
    vcon_set_agent_hook(d, record_answer, &a);
    CHECK_EQ(vcon_agent_request(d, "ping", 11), -EAGAIN, "ping sent (waits for a buffer)");
    CHECK_EQ(vcon_agent_request(d, "settime 1.5", 12), -EAGAIN, "settime sent");
    CHECK_EQ(vcon_agent_send(d, "powerdown"), -EAGAIN, "powerdown sent (nobody waits)");
    guest_write(&t, "pong\n", 5);
    CHECK(a.n == 1 && a.tag[0] == 11 && !strcmp(a.line[0], "pong"), "pong answers tag 11");
    vcon_agent_forget(d, 12);
    guest_write(&t, "ok settime\nok powerdown\njunk\n", 29);
    CHECK_EQ(a.n, 1u, "a forgotten command's late answer, a tag-0 answer and junk: no hook");

    CHECK_EQ(vcon_agent_request(d, "ping", 13), -EAGAIN, "ping 13");
    guest_write(&t, "ready\n", 6);
    CHECK(a.n == 2 && a.tag[1] == 13 && a.null[1], "'ready' (agent restarted) voids 13");
    guest_write(&t, "pong\n", 5);
    CHECK_EQ(a.n, 2u, "a pong nobody asked for is dropped");

    CHECK_EQ(vcon_agent_request(d, "ping", 14), -EAGAIN, "ping 14");
    guest_write(&t, "p\0g\x01\n", 5);
    CHECK(a.n == 3 && a.tag[2] == 14 && !strcmp(a.line[2], "p?g\x01"),
          "a NUL in the answer is made visible");

    CHECK_EQ(vcon_agent_request(d, "ping", 15), -EAGAIN, "ping 15");
    ctrl_out(&t, 1, VIRTIO_CONSOLE_PORT_OPEN, 0);
    CHECK(a.n == 4 && a.tag[3] == 15 && a.null[3], "closing the port voids 15");
    ctrl_out(&t, 1, VIRTIO_CONSOLE_PORT_OPEN, 1);
    while ((ret = vcon_agent_request(d, "ping", 0)) == -EAGAIN)
        n++;
    CHECK(ret == -EBUSY && n == (int)VCON_INFLIGHT, "bounded: %d in flight, then -EBUSY (%d)", n,
          ret);
    ctrl_out(&t, 1, VIRTIO_CONSOLE_PORT_OPEN, 0);
    ctrl_out(&t, 1, VIRTIO_CONSOLE_PORT_OPEN, 1);
    CHECK_EQ(vcon_agent_request(d, "ping", 16), -EAGAIN, "ping 16");
    virtio_mmio_reset(&t.mmio);
    CHECK(a.n == 5 && a.tag[4] == 16 && a.null[4], "a device reset voids 16");
    virtio_dev_free(d);
}

static void test_malformed(struct gmem *mem)
{
    struct virtio_dev *d = new_dev(mem, true);
    struct drv t;
    uint32_t id;
    uint16_t ev, val;

    attach(&t, mem, d);
    drv_start(&t);
    drv_post(&t, 3, 4, false, "abcd");
    kick(&t, 3);
    CHECK(needs_reset(&t), "4-byte control message -> NEEDS_RESET");
    CHECK(t.irq && (rd(&t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_ISR_CONFIG), "config interrupt");

    drv_start(&t);
    CHECK(!needs_reset(&t), "reset recovers");
    handshake(&t);
    CHECK(!needs_reset(&t) && vcon_agent_connected(d) == 1, "handshake after recovery");
    ctrl_out(&t, 5, VIRTIO_CONSOLE_PORT_OPEN, 1);
    CHECK(needs_reset(&t), "PORT_OPEN for port 5 (does not exist) -> NEEDS_RESET");

    drv_start(&t);
    ctrl_out(&t, 1000, VIRTIO_CONSOLE_PORT_READY, 1);
    CHECK(needs_reset(&t), "PORT_READY for port 1000 -> NEEDS_RESET");

    drv_start(&t);
    ctrl_out(&t, 1, VIRTIO_CONSOLE_PORT_OPEN, 2);
    CHECK(needs_reset(&t), "PORT_OPEN value 2 -> NEEDS_RESET");

    drv_start(&t);
    ctrl_out(&t, 1, VIRTIO_CONSOLE_RESIZE, 0);
    ctrl_out(&t, 1, 99, 0);
    CHECK(!needs_reset(&t) && vcon_stats(d)->ctrl_ignored == 2,
          "device-side and unknown events ignored");

    drv_start(&t);
    drv_post(&t, 2, 16, false, "readable-buffer!");
    kick(&t, 2);
    ctrl_out(&t, 0xffffffff, VIRTIO_CONSOLE_DEVICE_READY, 1);
    CHECK(needs_reset(&t), "device-readable buffer on c_ivq -> NEEDS_RESET");
    CHECK(!ctrl_in(&t, &id, &ev, &val, NULL), "nothing written");

    drv_start(&t);
    handshake(&t);
    drv_post(&t, 4, 8, false, "readable");
    CHECK_EQ(vcon_agent_send(d, "ping"), -EAGAIN, "readable receive buffer: nothing delivered");
    CHECK(needs_reset(&t), "device-readable buffer on a receiveq -> NEEDS_RESET");
    virtio_dev_free(d);
}

/* Save d's device part into b (a fresh writer). */
static void save(struct virtio_dev *d, struct state_buf *b)
{
    state_buf_init(b);
    d->ops->save(d, b);
}

static int load(struct virtio_dev *d, const struct state_buf *src, size_t len)
{
    struct state_buf r;

    state_buf_reader(&r, src->data, len);
    return d->ops->load(d, &r, VIRTIO_STATE_VERSION);
}

static void test_state(struct gmem *mem)
{
    struct virtio_dev *d = new_dev(mem, true), *e = new_dev(mem, true), *f = new_dev(mem, false);
    struct state_buf a, b;
    struct drv t;
    uint8_t buf[256];
    uint32_t id, len;
    uint16_t ev, val;

    attach(&t, mem, d);
    drv_start(&t);
    handshake(&t); /* 8 control buffers: 2 ADD, 2 NAME, 1 OPEN used */
    CHECK_EQ(vcon_agent_send(d, "powerdown"), -EAGAIN, "a line pending");
    ctrl_out(&t, 0xffffffff, VIRTIO_CONSOLE_DEVICE_READY, 1); /* 2 more ADD: 7 used */
    ctrl_out(&t, 1, VIRTIO_CONSOLE_PORT_READY, 1);            /* NAME + OPEN: 1 waits */
    save(d, &a);
    CHECK(state_buf_error(&a) == 0 && a.len > 20, "saved %zu bytes", a.len);

    CHECK_EQ(load(e, &a, a.len), 0, "loads into a device with the same ports");
    save(e, &b);
    CHECK(b.len == a.len && !memcmp(a.data, b.data, a.len), "round trip: same bytes again");
    CHECK_EQ(vcon_agent_connected(e), 1, "port open after load");
    state_buf_fini(&b);

    /* The loaded device carries on with the same rings: give it the core's
     * part by hand (virtio_dev_load's job), then post buffers. */
    e->status = d->status;
    e->driver_features = d->driver_features;
    memcpy(e->vq, d->vq, sizeof(e->vq));
    drv_post(&t, 4, 256, true, NULL);
    e->ops->queue_notify(e, 4);
    CHECK(drv_used(&t, 4, buf, &len) && len == 10 && !memcmp(buf, "powerdown\n", 10),
          "the pending line is delivered by the loaded device");
    while (ctrl_in(&t, &id, &ev, &val, NULL)) /* what d delivered */
        ;
    drv_post(&t, 2, 256, true, NULL);
    e->ops->queue_notify(e, 2);
    CHECK(ctrl_in(&t, &id, &ev, &val, NULL) && id == 1 && ev == VIRTIO_CONSOLE_PORT_OPEN,
          "... and the pending control message");

    CHECK(load(f, &a, a.len) < 0, "refused: different port names");
    CHECK_EQ(vcon_agent_connected(f), -ENODEV, "refused load leaves the device as it was");
    CHECK(load(e, &a, a.len - 1) < 0, "refused: truncated");
    a.data[0] = 99;
    CHECK(load(e, &a, a.len) < 0, "refused: unknown version");
    a.data[0] = 1;
    a.data[a.len - 10 - 1] = 0x7f; /* high byte of the agent byte count (LE u32) */
    CHECK(load(e, &a, a.len) < 0, "refused: more pending agent bytes than the bound");
    state_buf_fini(&a);
    virtio_dev_free(d);
    virtio_dev_free(e);
    virtio_dev_free(f);
}

int main(void)
{
    struct gmem *mem = gmem_new(RAM_BASE, RAM_SIZE);

    if (!mem)
        return 1;
    test_ports_and_config(mem);
    test_handshake_and_agent(mem);
    test_agent_answers(mem);
    test_malformed(mem);
    test_state(mem);
    gmem_free(mem);
    return board_check_done();
}
