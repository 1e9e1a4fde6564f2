/*
 * A tiny virtio driver for the unit tests: negotiates through the
 * virtio-mmio registers (as Linux does), lays out one split queue in guest
 * RAM, adds direct or indirect chains, notifies, and reads the used ring.
 * Header-only; each test binary includes it once.
 *
 * Guest RAM layout (offsets from TD_RAM_BASE): descriptor table 0x0000,
 * available ring 0x1000, used ring 0x2000, indirect tables 0x3000,
 * data buffers from 0x10000 (td_buf()).
 */
#ifndef GODWIT_TESTS_VIRTQ_DRIVER_H
#define GODWIT_TESTS_VIRTQ_DRIVER_H

#include <string.h>

#include "virtio/virtio_mmio.h"

#define TD_RAM_BASE 0x80000000ull
#define TD_RAM_SIZE (1ull << 20)
#define TD_DESC     (TD_RAM_BASE + 0x0000)
#define TD_AVAIL    (TD_RAM_BASE + 0x1000)
#define TD_USED     (TD_RAM_BASE + 0x2000)
#define TD_INDIRECT (TD_RAM_BASE + 0x3000)
#define TD_DATA     (TD_RAM_BASE + 0x10000)

struct td_buf {
    uint64_t gpa;
    uint32_t len;
    bool write; /* device-writable */
};

struct td {
    struct gmem *mem;
    struct virtio_dev *dev;
    struct virtio_mmio mmio;
    uint16_t num;
    uint16_t avail_idx; /* the driver's next available index */
    uint16_t next_desc; /* descriptors are handed out round-robin */
    uint16_t used_seen; /* used entries consumed by td_used() */
    bool irq;           /* line level */
    unsigned irq_raises;
};

static void td_irq(void *opaque, bool level)
{
    struct td *t = opaque;
    if (level && !t->irq)
        t->irq_raises++;
    t->irq = level;
}

static uint32_t td_rd(struct td *t, uint64_t off)
{
    uint64_t v = 0;
    if (virtio_mmio_ops.read(&t->mmio, off, 4, &v) < 0)
        return 0xdeadbeef;
    return (uint32_t)v;
}

static void td_wr(struct td *t, uint64_t off, uint32_t v)
{
    (void)virtio_mmio_ops.write(&t->mmio, off, 4, v);
}

static uint16_t td_ld16(struct td *t, uint64_t gpa)
{
    uint16_t v = 0;
    if (gmem_read(t->mem, gpa, &v, 2) < 0)
        return 0xdead;
    return v;
}

static void td_st16(struct td *t, uint64_t gpa, uint16_t v)
{
    if (gmem_write(t->mem, gpa, &v, 2) < 0)
        abort();
}

/* Attach dev to the transport (dev's transport irq goes to td_irq). */
static void td_attach(struct td *t, struct gmem *mem, struct virtio_dev *dev)
{
    struct virtio_transport irq = {t, td_irq};

    memset(t, 0, sizeof(*t));
    t->mem = mem;
    t->dev = dev;
    virtio_mmio_init(&t->mmio, dev, &irq);
    memset(mem->host, 0, 0x10000); /* fresh rings */
}

/* Reset, negotiate `features` (returns the status read back after
 * FEATURES_OK), set up queue q with num entries at the fixed layout. */
static uint32_t td_negotiate(struct td *t, uint64_t features)
{
    td_wr(t, VIRTIO_MMIO_STATUS, 0);
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    td_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    td_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    td_wr(t, VIRTIO_MMIO_STATUS,
          VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    return td_rd(t, VIRTIO_MMIO_STATUS);
}

static void td_queue(struct td *t, unsigned q, uint16_t num)
{
    memset(t->mem->host, 0, 0x10000);
    t->num = num;
    t->avail_idx = t->next_desc = t->used_seen = 0;
    td_wr(t, VIRTIO_MMIO_QUEUE_SEL, q);
    td_wr(t, VIRTIO_MMIO_QUEUE_NUM, num);
    td_wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)TD_DESC);
    td_wr(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(TD_DESC >> 32));
    td_wr(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)TD_AVAIL);
    td_wr(t, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(TD_AVAIL >> 32));
    td_wr(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)TD_USED);
    td_wr(t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(TD_USED >> 32));
    td_wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
}

static void td_driver_ok(struct td *t)
{
    td_wr(t, VIRTIO_MMIO_STATUS, td_rd(t, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* Full bring-up: features, queue 0 of num entries, DRIVER_OK. */
static void td_setup(struct td *t, uint64_t features, uint16_t num)
{
    td_negotiate(t, features);
    td_queue(t, 0, num);
    td_driver_ok(t);
}

static void td_put_desc(struct td *t, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
                        uint16_t flags, uint16_t next)
{
    uint8_t d[16];

    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
    if (gmem_write(t->mem, table + 16ull * i, d, 16) < 0)
        abort();
}

/* Publish head in the available ring. */
static void td_publish(struct td *t, uint16_t head)
{
    td_st16(t, TD_AVAIL + 4 + 2ull * (t->avail_idx % t->num), head);
    t->avail_idx++;
    td_st16(t, TD_AVAIL + 2, t->avail_idx);
}

/* Add a chain of n buffers (direct, or through an indirect table at
 * TD_INDIRECT + 0x100 * slot); returns the head index. */
static uint16_t td_add(struct td *t, const struct td_buf *b, unsigned n, bool indirect)
{
    uint16_t head = t->next_desc;

    if (indirect) {
        uint64_t table = TD_INDIRECT + 0x100ull * (head % 16);
        for (unsigned i = 0; i < n; i++)
            td_put_desc(t, table, i, b[i].gpa, b[i].len,
                        (b[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
                        (uint16_t)(i + 1));
        td_put_desc(t, TD_DESC, head, table, 16 * n, VIRTQ_DESC_F_INDIRECT, 0);
        t->next_desc = (uint16_t)((head + 1) % t->num);
    } else {
        for (unsigned i = 0; i < n; i++) {
            uint16_t idx = (uint16_t)((head + i) % t->num);
            uint16_t next = (uint16_t)((idx + 1) % t->num);
            td_put_desc(t, TD_DESC, idx, b[i].gpa, b[i].len,
                        (b[i].write ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
                        next);
        }
        t->next_desc = (uint16_t)((head + n) % t->num);
    }
    td_publish(t, head);
    return head;
}

static void td_kick(struct td *t, unsigned q)
{
    td_wr(t, VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* Next used entry: returns true with id/len, false if none is new. */
static bool td_used(struct td *t, uint32_t *id, uint32_t *len)
{
    uint32_t e[2];

    if (td_ld16(t, TD_USED + 2) == t->used_seen)
        return false;
    if (gmem_read(t->mem, TD_USED + 4 + 8ull * (t->used_seen % t->num), e, 8) < 0)
        return false;
    t->used_seen++;
    *id = e[0];
    *len = e[1];
    return true;
}

/* Acknowledge every pending interrupt reason; returns what was pending. */
static uint32_t td_ack(struct td *t)
{
    uint32_t isr = td_rd(t, VIRTIO_MMIO_INTERRUPT_STATUS);
    td_wr(t, VIRTIO_MMIO_INTERRUPT_ACK, isr);
    return isr;
}

/* Is the dirty bit of the page holding gpa set? */
static bool td_dirty(const struct gmem *m, uint64_t gpa)
{
    uint64_t p = (gpa - m->base) >> GMEM_PAGE_SHIFT;
    return (atomic_load(&m->dirty[p / 64]) >> (p % 64)) & 1;
}

static void td_clear_dirty(struct gmem *m)
{
    for (uint64_t i = 0; i < (m->npages + 63) / 64; i++)
        atomic_store(&m->dirty[i], 0);
}

#endif
