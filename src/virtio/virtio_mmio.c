/*
 * virtio-mmio transport, version 2 (virtio 1.2 §4.2.2); see virtio_mmio.h.
 * Register semantics follow QEMU 7.2's hw/virtio/virtio-mmio.c in modern
 * mode (force-legacy=false): 4-byte register accesses only (others read 0
 * and are ignored), feature banks 0 and 1, queue layout latched when the
 * driver sets QueueReady, config space reads beyond the device's config
 * read all-ones.
 */
#include "virtio/virtio_mmio.h"

#include <errno.h>
#include <string.h>

void virtio_mmio_init(struct virtio_mmio *m, struct virtio_dev *dev,
                      const struct virtio_transport *irq)
{
    memset(m, 0, sizeof(*m));
    m->dev = dev;
    if (dev && irq)
        dev->transport = *irq;
}

void virtio_mmio_reset(struct virtio_mmio *m)
{
    struct virtio_dev *dev = m->dev;

    memset(m, 0, sizeof(*m));
    m->dev = dev;
    if (dev)
        virtio_reset(dev);
}

static struct virtq *virtio_mmio_vq(struct virtio_mmio *m)
{
    return m->queue_sel < m->dev->nvqs ? &m->dev->vq[m->queue_sel] : NULL;
}

static struct virtio_mmio_queue *virtio_mmio_q(struct virtio_mmio *m)
{
    return m->queue_sel < VIRTIO_MAX_VQS ? &m->queue[m->queue_sel] : NULL;
}

static uint32_t virtio_mmio_config_read(const struct virtio_dev *d, uint64_t off, unsigned size)
{
    uint32_t v = 0;

    if (off + size > d->config_len)
        return size == 4 ? 0xffffffffu : (1u << (size * 8)) - 1;
    memcpy(&v, d->config + off, size);
    return v;
}

static uint32_t virtio_mmio_reg_read(struct virtio_mmio *m, uint64_t off)
{
    struct virtio_dev *d = m->dev;
    struct virtq *q;

    switch (off) {
    case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION_REG: return VIRTIO_MMIO_VERSION;
    case VIRTIO_MMIO_DEVICE_ID: return d->device_id;
    case VIRTIO_MMIO_VENDOR_ID: return d->vendor_id;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        if (m->device_features_sel > 1)
            return 0;
        return (uint32_t)(virtio_host_features(d) >> (32 * m->device_features_sel));
    case VIRTIO_MMIO_QUEUE_NUM_MAX: q = virtio_mmio_vq(m); return q ? q->num_max : 0;
    case VIRTIO_MMIO_QUEUE_READY: q = virtio_mmio_vq(m); return q ? q->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS: return d->isr;
    case VIRTIO_MMIO_STATUS: return d->status;
    case VIRTIO_MMIO_CONFIG_GENERATION: return d->config_generation;
    case VIRTIO_MMIO_SHM_LEN_LOW:
    case VIRTIO_MMIO_SHM_LEN_HIGH:
    case VIRTIO_MMIO_SHM_BASE_LOW:
    case VIRTIO_MMIO_SHM_BASE_HIGH:
        return 0xffffffffu; /* no shared memory region: length ~0 (§4.2.2) */
    default: return 0;      /* write-only or reserved */
    }
}

static int virtio_mmio_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    struct virtio_mmio *m = opaque;

    *val = 0;
    if (!m->dev) {
        /* An empty slot, as QEMU's (legacy by default): Linux sees device
         * ID 0 and skips it.  Any access size; narrow ones are truncated. */
        uint64_t v = 0;
        if (off == VIRTIO_MMIO_MAGIC_VALUE)
            v = VIRTIO_MMIO_MAGIC;
        else if (off == VIRTIO_MMIO_VERSION_REG)
            v = 1;
        else if (off == VIRTIO_MMIO_VENDOR_ID)
            v = VIRTIO_MMIO_VENDOR;
        *val = size < 8 ? v & ((1ull << (size * 8)) - 1) : v;
        return 0;
    }
    if (off >= VIRTIO_MMIO_CONFIG) {
        *val = virtio_mmio_config_read(m->dev, off - VIRTIO_MMIO_CONFIG, size);
        return 0;
    }
    if (size == 4)
        *val = virtio_mmio_reg_read(m, off);
    return 0;
}

static void virtio_mmio_set_addr(uint64_t *addr, bool high, uint32_t val)
{
    if (high)
        *addr = (*addr & 0xffffffffull) | (uint64_t)val << 32;
    else
        *addr = (*addr & ~0xffffffffull) | val;
}

static void virtio_mmio_reg_write(struct virtio_mmio *m, uint64_t off, uint32_t val)
{
    struct virtio_dev *d = m->dev;
    struct virtio_mmio_queue *mq = virtio_mmio_q(m);

    switch (off) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: m->device_features_sel = val; break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: m->driver_features_sel = val; break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        /* The driver may not change its features after FEATURES_OK. */
        if (m->driver_features_sel > 1 || (d->status & VIRTIO_STATUS_FEATURES_OK))
            break;
        if (m->driver_features_sel)
            d->driver_features = (d->driver_features & 0xffffffffull) | (uint64_t)val << 32;
        else
            d->driver_features = (d->driver_features & ~0xffffffffull) | val;
        break;
    case VIRTIO_MMIO_QUEUE_SEL: m->queue_sel = val; break;
    case VIRTIO_MMIO_QUEUE_NUM:
        if (mq)
            mq->num = (uint16_t)(val > 0xffff ? 0 : val);
        break;
    case VIRTIO_MMIO_QUEUE_READY:
        if (mq && m->queue_sel < d->nvqs)
            virtio_queue_set_ready(d, m->queue_sel, val & 1, mq->num, mq->desc, mq->avail,
                                   mq->used);
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY: virtio_queue_notify(d, val & 0xffff); break;
    case VIRTIO_MMIO_INTERRUPT_ACK: virtio_isr_ack(d, val); break;
    case VIRTIO_MMIO_STATUS:
        /* As QEMU: the low byte is the status; 0 resets the device, and the
         * transport's registers with it. */
        if ((val & 0xff) == 0)
            virtio_mmio_reset(m);
        else
            virtio_set_status(d, val & 0xff);
        break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW:
    case VIRTIO_MMIO_QUEUE_DESC_HIGH:
        if (mq)
            virtio_mmio_set_addr(&mq->desc, off == VIRTIO_MMIO_QUEUE_DESC_HIGH, val);
        break;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
        if (mq)
            virtio_mmio_set_addr(&mq->avail, off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, val);
        break;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
        if (mq)
            virtio_mmio_set_addr(&mq->used, off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, val);
        break;
    default: break; /* read-only or reserved: ignored, as QEMU */
    }
}

static int virtio_mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct virtio_mmio *m = opaque;
    struct virtio_dev *d = m->dev;

    if (!d)
        return 0;
    if (off >= VIRTIO_MMIO_CONFIG) {
        off -= VIRTIO_MMIO_CONFIG;
        if (off + size <= d->config_len && d->ops->config_write)
            d->ops->config_write(d, (uint32_t)off, size, (uint32_t)val);
        return 0;
    }
    if (size == 4)
        virtio_mmio_reg_write(m, off, (uint32_t)val);
    return 0;
}

const struct bus_ops virtio_mmio_ops = {virtio_mmio_read, virtio_mmio_write};

/* ---- state (docs/state.md) ---------------------------------------------------
 * Version 1: bool present (false: an empty slot, nothing follows); u32
 * device_features_sel driver_features_sel queue_sel; per queue of the
 * device: u16 num, u64 desc avail used (the staged layout, applied at
 * QueueReady); u16 the core's version, then virtio_dev_save().  Staged
 * values are whatever the driver wrote: they are checked when it sets
 * QueueReady, as they would be without a migration.  Selectors are kept
 * as written: a driver may leave one out of range, and every register
 * access bounds them (reads give 0), so they need no bound here. */

void virtio_mmio_pre_save(struct virtio_mmio *m)
{
    if (m->dev)
        virtio_dev_pre_save(m->dev);
}

void virtio_mmio_save(const struct virtio_mmio *m, struct state_buf *b)
{
    state_put_bool(b, m->dev != NULL);
    if (!m->dev)
        return;
    state_put_u32(b, m->device_features_sel);
    state_put_u32(b, m->driver_features_sel);
    state_put_u32(b, m->queue_sel);
    for (unsigned i = 0; i < m->dev->nvqs; i++) {
        state_put_u16(b, m->queue[i].num);
        state_put_u64(b, m->queue[i].desc);
        state_put_u64(b, m->queue[i].avail);
        state_put_u64(b, m->queue[i].used);
    }
    state_put_u16(b, VIRTIO_STATE_VERSION);
    virtio_dev_save(m->dev, b);
}

int virtio_mmio_load(struct virtio_mmio *m, struct state_buf *b, unsigned version)
{
    struct virtio_mmio s;
    bool present;
    unsigned dev_version;

    if (version == 0 || version > VIRTIO_MMIO_STATE_VERSION) {
        state_buf_fail(b, -EINVAL, "virtio-mmio: state version %u, this build knows up to %u",
                       version, VIRTIO_MMIO_STATE_VERSION);
        return -EINVAL;
    }
    present = state_get_bool(b);
    if (!state_buf_error(b) && present != (m->dev != NULL))
        state_buf_fail(b, -EINVAL, "virtio-mmio: state of %s slot loaded into %s one",
                       present ? "a device's" : "an empty", m->dev ? "a device's" : "an empty");
    if (state_buf_error(b))
        return -EINVAL;
    if (!present)
        return 0;
    memset(&s, 0, sizeof(s));
    s.device_features_sel = state_get_u32(b);
    s.driver_features_sel = state_get_u32(b);
    s.queue_sel = state_get_u32(b);
    for (unsigned i = 0; i < m->dev->nvqs; i++) {
        s.queue[i].num = state_get_u16(b);
        s.queue[i].desc = state_get_u64(b);
        s.queue[i].avail = state_get_u64(b);
        s.queue[i].used = state_get_u64(b);
    }
    dev_version = state_get_u16(b);
    if (state_buf_error(b))
        return -EINVAL;
    /* The device refuses (and stays as it was) before the transport
     * changes anything. */
    if (virtio_dev_load(m->dev, b, dev_version) < 0)
        return -EINVAL;
    s.dev = m->dev;
    *m = s;
    return 0;
}
