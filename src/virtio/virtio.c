/*
 * The virtio core: status and feature negotiation, split virtqueues with
 * indirect descriptors and VIRTIO_F_EVENT_IDX, used-ring updates,
 * notification suppression, NEEDS_RESET.  See virtio.h for the contract.
 *
 * Every guest address is turned into a host pointer by gmem_ptr() at the
 * moment it is used (nothing is cached, so a loaded state needs no fix-up);
 * ring fields are read with memcpy (no alignment assumption beyond what
 * virtio_queue_set_ready() checked) and ordered with explicit fences, as
 * the driver may run on another thread in a later design.
 */
#include "virtio/virtio.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "virtio rings are little-endian");

#define VIRTIO_VENDOR_QEMU 0x554d4551u

/* Features the core implements for every device. */
#define VIRTIO_CORE_FEATURES                                                                       \
    (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |                         \
     VIRTIO_BIT(VIRTIO_F_EVENT_IDX))

/* ---- ring layout (virtio 1.2 §2.7) ------------------------------------------ */

static uint64_t virtq_avail_size(uint16_t num)
{
    return 6 + 2ull * num; /* flags, idx, ring[num], used_event */
}

static uint64_t virtq_used_size(uint16_t num)
{
    return 6 + 8ull * num; /* flags, idx, ring[num] {id, len}, avail_event */
}

/* Host pointer to a ring field; the whole area was checked against RAM when
 * the queue was enabled, and RAM never moves, so this cannot fail. */
static uint8_t *virtq_host(const struct virtio_dev *d, uint64_t gpa, uint64_t len)
{
    uint8_t *p = gmem_ptr(d->mem, gpa, len);

    assert(p);
    return p;
}

static uint16_t virtq_load16(const struct virtio_dev *d, uint64_t gpa)
{
    uint16_t v;

    memcpy(&v, virtq_host(d, gpa, 2), 2);
    return v;
}

static void virtq_store16(struct virtio_dev *d, uint64_t gpa, uint16_t v)
{
    memcpy(virtq_host(d, gpa, 2), &v, 2);
    gmem_mark_dirty(d->mem, gpa, 2);
}

static uint16_t virtq_avail_idx(const struct virtio_dev *d, const struct virtq *q)
{
    uint16_t idx = virtq_load16(d, q->avail_addr + 2);

    /* The ring entries below idx are read after idx (acquire). */
    atomic_thread_fence(memory_order_acquire);
    return idx;
}

static uint16_t virtq_used_event(const struct virtio_dev *d, const struct virtq *q)
{
    return virtq_load16(d, q->avail_addr + 4 + 2ull * q->num);
}

static void virtq_set_avail_event(struct virtio_dev *d, struct virtq *q, uint16_t v)
{
    uint64_t gpa = q->used_addr + 4 + 8ull * q->num;

    if (virtq_load16(d, gpa) != v) /* unchanged: no store, no dirty page */
        virtq_store16(d, gpa, v);
}

/* virtio 1.2 §2.7.10.1: should an event at event_idx fire when the index
 * moves from old to new? */
static bool virtq_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

/* ---- the device ------------------------------------------------------------- */

static void virtio_update_irq(struct virtio_dev *d)
{
    if (d->transport.set_irq)
        d->transport.set_irq(d->transport.opaque, d->isr != 0);
}

static void virtio_raise(struct virtio_dev *d, uint32_t bits)
{
    d->isr |= bits;
    virtio_update_irq(d);
}

int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, struct gmem *mem,
                    uint32_t device_id, uint64_t host_features, unsigned nvqs, uint16_t num_max)
{
    if (!ops || !ops->queue_notify || !ops->fini || !mem || nvqs > VIRTIO_MAX_VQS || num_max == 0 ||
        num_max > VIRTQ_MAX_SIZE || (num_max & (num_max - 1)))
        return -EINVAL;
    memset(d, 0, sizeof(*d));
    d->ops = ops;
    d->mem = mem;
    d->device_id = device_id;
    d->vendor_id = VIRTIO_VENDOR_QEMU;
    d->host_features = host_features;
    d->nvqs = nvqs;
    for (unsigned i = 0; i < nvqs; i++) {
        d->vq[i].num_max = num_max;
        d->vq[i].index = i;
    }
    return 0;
}

void virtio_dev_free(struct virtio_dev *d)
{
    if (d)
        d->ops->fini(d);
}

uint64_t virtio_host_features(const struct virtio_dev *d)
{
    return d->host_features | VIRTIO_CORE_FEATURES;
}

void virtio_reset(struct virtio_dev *d)
{
    for (unsigned i = 0; i < VIRTIO_MAX_VQS; i++) {
        struct virtq *q = &d->vq[i];
        uint16_t num_max = q->num_max;
        memset(q, 0, sizeof(*q));
        q->num_max = num_max;
        q->index = i;
    }
    d->status = 0;
    d->driver_features = 0;
    d->isr = 0;
    d->broken = false;
    virtio_update_irq(d);
    if (d->ops->reset)
        d->ops->reset(d);
}

int virtio_needs_reset(struct virtio_dev *d, const char *fmt, ...)
{
    va_list ap;
    char why[200];

    if (d->broken)
        return -EIO;
    d->broken = true;
    d->broken_count++;
    d->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (!d->broken_logged) {
        d->broken_logged = true;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        gw_log("%s%s%s: guest error, device needs reset: %s (further errors not logged)",
               d->ops->name, d->id[0] ? " " : "", d->id, why);
    }
    /* virtio 1.2 §2.1.2: with DRIVER_OK, tell the driver. */
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
        virtio_raise(d, VIRTIO_ISR_CONFIG);
    return -EIO;
}

void virtio_set_status(struct virtio_dev *d, uint32_t status)
{
    uint32_t old = d->status;

    if (status == 0) {
        virtio_reset(d);
        return;
    }
    status &= 0xff;
    if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
        uint64_t f = d->driver_features;
        bool ok = !(f & ~virtio_host_features(d)) && (f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
        if (ok && d->ops->features_ok)
            ok = d->ops->features_ok(d, f);
        if (!ok)
            status &= ~VIRTIO_STATUS_FEATURES_OK; /* the driver reads it back */
    }
    /* NEEDS_RESET is the device's: only a reset clears it. */
    d->status = status | (old & VIRTIO_STATUS_NEEDS_RESET);
    if (d->ops->status_changed)
        d->ops->status_changed(d, old);
    /* Buffers made available before DRIVER_OK are taken now (§2.1.2: not
     * before). */
    if ((d->status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK))
        for (unsigned i = 0; i < d->nvqs; i++)
            if (d->vq[i].ready && virtq_pending(d, &d->vq[i]))
                virtio_queue_notify(d, i);
}

void virtio_queue_set_ready(struct virtio_dev *d, unsigned qi, bool ready, uint16_t num,
                            uint64_t desc, uint64_t avail, uint64_t used)
{
    struct virtq *q;

    if (qi >= d->nvqs)
        return;
    q = &d->vq[qi];
    if (!ready) {
        q->ready = false;
        return;
    }
    if (num == 0 || num > q->num_max || (num & (num - 1))) {
        virtio_needs_reset(d, "queue %u: invalid size %u (max %u)", qi, num, q->num_max);
        return;
    }
    if ((desc & 15) || (avail & 1) || (used & 3) ||
        !gmem_contains(d->mem, desc, (uint64_t)num * VIRTQ_DESC_SIZE) ||
        !gmem_contains(d->mem, avail, virtq_avail_size(num)) ||
        !gmem_contains(d->mem, used, virtq_used_size(num))) {
        virtio_needs_reset(
            d, "queue %u: rings outside RAM or misaligned (desc 0x%llx avail 0x%llx used 0x%llx)",
            qi, (unsigned long long)desc, (unsigned long long)avail, (unsigned long long)used);
        return;
    }
    q->num = num;
    q->desc_addr = desc;
    q->avail_addr = avail;
    q->used_addr = used;
    q->last_avail = 0;
    q->used_idx = 0;
    q->signalled_used = 0;
    q->signalled_valid = false;
    q->ready = true;
}

static bool virtq_usable(const struct virtio_dev *d, const struct virtq *q)
{
    return q->ready && !d->broken;
}

void virtio_queue_notify(struct virtio_dev *d, unsigned qi)
{
    if (qi >= d->nvqs || !virtq_usable(d, &d->vq[qi]) || !(d->status & VIRTIO_STATUS_DRIVER_OK))
        return;
    d->ops->queue_notify(d, qi);
}

void virtio_isr_ack(struct virtio_dev *d, uint32_t bits)
{
    d->isr &= ~bits;
    virtio_update_irq(d);
}

void virtio_config_changed(struct virtio_dev *d)
{
    d->config_generation++;
    if (d->status & VIRTIO_STATUS_DRIVER_OK)
        virtio_raise(d, VIRTIO_ISR_CONFIG);
}

/* ---- virtqueues --------------------------------------------------------------- */

/* The number of chains available, or -EIO if the driver moved the index
 * further than the ring holds. */
static int virtq_avail_count(struct virtio_dev *d, struct virtq *q)
{
    uint16_t idx = virtq_avail_idx(d, q);
    uint16_t n = (uint16_t)(idx - q->last_avail);

    if (n > q->num)
        return virtio_needs_reset(d, "queue %u: available index moved from %u to %u (size %u)",
                                  q->index, q->last_avail, idx, q->num);
    return n;
}

unsigned virtq_pending(struct virtio_dev *d, struct virtq *q)
{
    int n;

    if (!virtq_usable(d, q))
        return 0;
    n = virtq_avail_count(d, q);
    return n < 0 ? 0 : (unsigned)n;
}

struct virtq_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

static void virtq_read_desc(const uint8_t *table, unsigned i, struct virtq_desc *desc)
{
    memcpy(desc, table + (size_t)i * VIRTQ_DESC_SIZE, VIRTQ_DESC_SIZE);
}

/* Add one buffer to elem, checking it against RAM and the chain limits. */
static int virtq_add_buf(struct virtio_dev *d, struct virtq *q, struct virtq_elem *e,
                         const struct virtq_desc *desc)
{
    unsigned n = e->nout + e->nin;
    void *p;

    if (desc->len == 0)
        return virtio_needs_reset(d, "queue %u: zero-sized buffer", q->index);
    if (n >= VIRTQ_MAX_SEGS)
        return virtio_needs_reset(d, "queue %u: chain of more than %u buffers", q->index,
                                  VIRTQ_MAX_SEGS);
    p = gmem_ptr(d->mem, desc->addr, desc->len);
    if (!p)
        return virtio_needs_reset(d, "queue %u: buffer 0x%llx+%u outside RAM", q->index,
                                  (unsigned long long)desc->addr, desc->len);
    if (desc->flags & VIRTQ_DESC_F_WRITE) {
        e->in_len += desc->len;
        e->nin++;
    } else {
        /* virtio 1.2 §2.7.4.2: readable buffers come first. */
        if (e->nin)
            return virtio_needs_reset(d, "queue %u: device-readable buffer after a writable one",
                                      q->index);
        e->out_len += desc->len;
        e->nout++;
    }
    if (e->in_len > VIRTQ_MAX_LEN || e->out_len > VIRTQ_MAX_LEN)
        return virtio_needs_reset(d, "queue %u: chain longer than %llu bytes", q->index,
                                  (unsigned long long)VIRTQ_MAX_LEN);
    e->iov[n].iov_base = p;
    e->iov[n].iov_len = desc->len;
    e->gpa[n] = desc->addr;
    return 0;
}

/*
 * Walk a chain starting at index i of a descriptor table of max entries.
 * At most max descriptors are followed: a longer chain must revisit one,
 * i.e. loop.  An indirect table is followed only from the head of a direct
 * chain (as QEMU and Linux do) and may not nest.
 */
static int virtq_walk(struct virtio_dev *d, struct virtq *q, struct virtq_elem *e,
                      const uint8_t *table, unsigned max, unsigned i, bool indirect)
{
    struct virtq_desc desc;
    int ret;

    for (unsigned count = 1;; count++) {
        virtq_read_desc(table, i, &desc);
        if (desc.flags & VIRTQ_DESC_F_INDIRECT) {
            const uint8_t *itab;
            if (indirect)
                return virtio_needs_reset(d, "queue %u: nested indirect table", q->index);
            if (count != 1 || (desc.flags & VIRTQ_DESC_F_NEXT))
                return virtio_needs_reset(d, "queue %u: indirect descriptor inside a chain",
                                          q->index);
            if (desc.len == 0 || desc.len % VIRTQ_DESC_SIZE ||
                desc.len / VIRTQ_DESC_SIZE > VIRTQ_MAX_SEGS)
                return virtio_needs_reset(d, "queue %u: indirect table of %u bytes", q->index,
                                          desc.len);
            itab = gmem_ptr(d->mem, desc.addr, desc.len);
            if (!itab)
                return virtio_needs_reset(d, "queue %u: indirect table 0x%llx+%u outside RAM",
                                          q->index, (unsigned long long)desc.addr, desc.len);
            return virtq_walk(d, q, e, itab, desc.len / VIRTQ_DESC_SIZE, 0, true);
        }
        ret = virtq_add_buf(d, q, e, &desc);
        if (ret < 0)
            return ret;
        if (!(desc.flags & VIRTQ_DESC_F_NEXT))
            return 0;
        i = desc.next;
        if (i >= max)
            return virtio_needs_reset(d, "queue %u: next index %u beyond the table (%u)", q->index,
                                      i, max);
        if (count >= max)
            return virtio_needs_reset(d, "queue %u: descriptor chain loops", q->index);
    }
}

int virtq_pop(struct virtio_dev *d, struct virtq *q, struct virtq_elem *e)
{
    const uint8_t *table;
    uint16_t head;
    int n, ret;

    if (!virtq_usable(d, q))
        return d->broken ? -EIO : 0;
    n = virtq_avail_count(d, q);
    if (n <= 0)
        return n;
    head = virtq_load16(d, q->avail_addr + 4 + 2ull * (q->last_avail & (q->num - 1)));
    if (head >= q->num)
        return virtio_needs_reset(d, "queue %u: head index %u beyond the ring (%u)", q->index, head,
                                  q->num);
    e->head = head;
    e->nout = e->nin = 0;
    e->out_len = e->in_len = 0;
    table = virtq_host(d, q->desc_addr, (uint64_t)q->num * VIRTQ_DESC_SIZE);
    ret = virtq_walk(d, q, e, table, q->num, head, false);
    if (ret < 0)
        return ret;
    q->last_avail++;
    /* As QEMU: with EVENT_IDX the driver notifies again once it makes
     * buffers available beyond what we have taken. */
    if (virtio_has_feature(d, VIRTIO_F_EVENT_IDX))
        virtq_set_avail_event(d, q, q->last_avail);
    return 1;
}

void virtq_push(struct virtio_dev *d, struct virtq *q, const struct virtq_elem *e, uint32_t len)
{
    uint64_t slot = q->used_addr + 4 + 8ull * (q->used_idx & (q->num - 1));
    uint32_t entry[2] = {e->head, len};

    if (!virtq_usable(d, q))
        return;
    virtq_elem_mark_dirty(d, e, 0, len);
    memcpy(virtq_host(d, slot, 8), entry, 8);
    gmem_mark_dirty(d->mem, slot, 8);
    q->used_idx++;
    /* The entry (and the buffer contents) are visible before the index. */
    atomic_thread_fence(memory_order_release);
    virtq_store16(d, q->used_addr + 2, q->used_idx);
}

void virtq_notify(struct virtio_dev *d, struct virtq *q)
{
    uint16_t old = q->signalled_used, new_idx = q->used_idx;
    bool valid = q->signalled_valid;

    if (!virtq_usable(d, q) || (valid && old == new_idx))
        return; /* nothing new to tell */
    q->signalled_used = new_idx;
    q->signalled_valid = true;
    /* The used index store is ordered before reading the driver's wishes. */
    atomic_thread_fence(memory_order_seq_cst);
    if (virtio_has_feature(d, VIRTIO_F_EVENT_IDX)) {
        if (valid && !virtq_need_event(virtq_used_event(d, q), new_idx, old))
            return;
    } else if (virtq_load16(d, q->avail_addr) & VIRTQ_AVAIL_F_NO_INTERRUPT) {
        return;
    }
    virtio_raise(d, VIRTIO_ISR_QUEUE);
}

bool virtq_enable_notify(struct virtio_dev *d, struct virtq *q, bool enable)
{
    if (!virtq_usable(d, q))
        return false;
    if (virtio_has_feature(d, VIRTIO_F_EVENT_IDX)) {
        /* Disabling is a hint the driver may ignore; with EVENT_IDX leaving
         * avail_event behind says the same thing. */
        if (enable)
            virtq_set_avail_event(d, q, q->last_avail);
    } else {
        uint16_t old = virtq_load16(d, q->used_addr);
        uint16_t flags = enable ? old & ~VIRTQ_USED_F_NO_NOTIFY : old | VIRTQ_USED_F_NO_NOTIFY;
        if (flags != old) /* the common case writes (and dirties) nothing */
            virtq_store16(d, q->used_addr, flags);
    }
    if (!enable)
        return false;
    /* Publish the wish before looking at the ring again (§2.7.13.4). */
    atomic_thread_fence(memory_order_seq_cst);
    return virtq_pending(d, q) != 0;
}

/* ---- element helpers ------------------------------------------------------------ */

size_t virtq_elem_read(const struct virtq_elem *e, size_t off, void *buf, size_t len)
{
    size_t done = 0;

    for (unsigned i = 0; i < e->nout && done < len; i++) {
        size_t n = e->iov[i].iov_len;
        if (off >= n) {
            off -= n;
            continue;
        }
        n -= off;
        if (n > len - done)
            n = len - done;
        memcpy((uint8_t *)buf + done, (uint8_t *)e->iov[i].iov_base + off, n);
        done += n;
        off = 0;
    }
    return done;
}

size_t virtq_elem_write(struct virtio_dev *d, const struct virtq_elem *e, size_t off,
                        const void *buf, size_t len)
{
    size_t done = 0;

    for (unsigned i = e->nout; i < e->nout + e->nin && done < len; i++) {
        size_t n = e->iov[i].iov_len;
        if (off >= n) {
            off -= n;
            continue;
        }
        n -= off;
        if (n > len - done)
            n = len - done;
        memcpy((uint8_t *)e->iov[i].iov_base + off, (const uint8_t *)buf + done, n);
        gmem_mark_dirty(d->mem, e->gpa[i] + off, n);
        done += n;
        off = 0;
    }
    return done;
}

void virtq_elem_mark_dirty(struct virtio_dev *d, const struct virtq_elem *e, size_t off, size_t len)
{
    for (unsigned i = e->nout; i < e->nout + e->nin && len; i++) {
        size_t n = e->iov[i].iov_len;
        if (off >= n) {
            off -= n;
            continue;
        }
        n -= off;
        if (n > len)
            n = len;
        gmem_mark_dirty(d->mem, e->gpa[i] + off, n);
        len -= n;
        off = 0;
    }
}

/* ---- state (docs/state.md) ---------------------------------------------------
 * Version 1: u32 device_id, u8 nvqs, u32 status, u64 driver_features,
 * u32 isr, u32 config_generation, bool broken; per queue (nvqs): u16 num,
 * bool ready, u64 desc avail used, u16 last_avail used_idx signalled_used,
 * bool signalled_valid; then the device type's part (ops->save).  Ring
 * contents live in guest RAM, which is migrated separately. */

void virtio_dev_pre_save(struct virtio_dev *d)
{
    if (d->ops->pre_save)
        d->ops->pre_save(d);
}

void virtio_dev_save(const struct virtio_dev *d, struct state_buf *b)
{
    state_put_u32(b, d->device_id);
    state_put_u8(b, (uint8_t)d->nvqs);
    state_put_u32(b, d->status);
    state_put_u64(b, d->driver_features);
    state_put_u32(b, d->isr);
    state_put_u32(b, d->config_generation);
    state_put_bool(b, d->broken);
    for (unsigned i = 0; i < d->nvqs; i++) {
        const struct virtq *q = &d->vq[i];
        state_put_u16(b, q->num);
        state_put_bool(b, q->ready);
        state_put_u64(b, q->desc_addr);
        state_put_u64(b, q->avail_addr);
        state_put_u64(b, q->used_addr);
        state_put_u16(b, q->last_avail);
        state_put_u16(b, q->used_idx);
        state_put_u16(b, q->signalled_used);
        state_put_bool(b, q->signalled_valid);
    }
    if (d->ops->save)
        d->ops->save(d, b);
}

/* The checks virtio_queue_set_ready() makes, for a loaded queue. */
static void virtq_check_loaded(const struct virtio_dev *d, const struct virtq *q,
                               struct state_buf *b)
{
    if (q->num > q->num_max || (q->num & (q->num - 1)))
        state_buf_fail(b, -EINVAL, "%s: queue %u size %u (a power of 2 up to %u)", d->ops->name,
                       q->index, q->num, q->num_max);
    else if (q->ready && q->num == 0)
        state_buf_fail(b, -EINVAL, "%s: queue %u ready without a size", d->ops->name, q->index);
    else if (q->ready &&
             ((q->desc_addr & 15) || (q->avail_addr & 1) || (q->used_addr & 3) ||
              !gmem_contains(d->mem, q->desc_addr, (uint64_t)q->num * VIRTQ_DESC_SIZE) ||
              !gmem_contains(d->mem, q->avail_addr, virtq_avail_size(q->num)) ||
              !gmem_contains(d->mem, q->used_addr, virtq_used_size(q->num))))
        state_buf_fail(b, -EINVAL, "%s: queue %u rings outside RAM or misaligned", d->ops->name,
                       q->index);
}

int virtio_dev_load(struct virtio_dev *d, struct state_buf *b, unsigned version)
{
    struct virtio_dev old = *d, s = *d; /* s: the loaded core state */
    uint32_t device_id;
    unsigned nvqs;

    if (version == 0 || version > VIRTIO_STATE_VERSION) {
        state_buf_fail(b, -EINVAL, "%s: state version %u, this build knows up to %u", d->ops->name,
                       version, VIRTIO_STATE_VERSION);
        return -EINVAL;
    }
    device_id = state_get_u32(b);
    nvqs = state_get_u8(b);
    if (!state_buf_error(b) && (device_id != d->device_id || nvqs != d->nvqs))
        state_buf_fail(b, -EINVAL,
                       "%s: state of device type %u with %u queues, this is type %u with %u",
                       d->ops->name, device_id, nvqs, d->device_id, d->nvqs);
    s.status = state_get_u32(b);
    s.driver_features = state_get_u64(b);
    s.isr = state_get_u32(b);
    s.config_generation = state_get_u32(b);
    s.broken = state_get_bool(b);
    if (state_buf_error(b))
        return -EINVAL;
    if (s.status & ~0xffu)
        state_buf_fail(b, -EINVAL, "%s: status 0x%x beyond the status byte", d->ops->name,
                       s.status);
    else if (s.broken && !(s.status & VIRTIO_STATUS_NEEDS_RESET))
        state_buf_fail(b, -EINVAL, "%s: broken without DEVICE_NEEDS_RESET", d->ops->name);
    else if (s.isr & ~(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG))
        state_buf_fail(b, -EINVAL, "%s: interrupt status 0x%x", d->ops->name, s.isr);
    /* Before FEATURES_OK the driver may have written anything; after it,
     * only what was offered was accepted (virtio_set_status). */
    else if ((s.status & VIRTIO_STATUS_FEATURES_OK) &&
             ((s.driver_features & ~virtio_host_features(d)) ||
              !(s.driver_features & VIRTIO_BIT(VIRTIO_F_VERSION_1))))
        state_buf_fail(b, -EINVAL, "%s: negotiated features 0x%llx not a subset of 0x%llx",
                       d->ops->name, (unsigned long long)s.driver_features,
                       (unsigned long long)virtio_host_features(d));
    for (unsigned i = 0; i < d->nvqs && !state_buf_error(b); i++) {
        struct virtq *q = &s.vq[i];
        q->num = state_get_u16(b);
        q->ready = state_get_bool(b);
        q->desc_addr = state_get_u64(b);
        q->avail_addr = state_get_u64(b);
        q->used_addr = state_get_u64(b);
        q->last_avail = state_get_u16(b);
        q->used_idx = state_get_u16(b);
        q->signalled_used = state_get_u16(b);
        q->signalled_valid = state_get_bool(b);
        if (!state_buf_error(b))
            virtq_check_loaded(d, q, b);
    }
    if (state_buf_error(b))
        return -EINVAL;

    /* The device type's part sees the new core state; if it refuses, the
     * core goes back to what it was. */
    d->status = s.status;
    d->driver_features = s.driver_features;
    d->isr = s.isr;
    d->config_generation = s.config_generation;
    d->broken = s.broken;
    memcpy(d->vq, s.vq, sizeof(d->vq));
    if (d->ops->load && d->ops->load(d, b, version) < 0) {
        state_buf_fail(b, -EINVAL, "%s: device state refused", d->ops->name);
        d->status = old.status;
        d->driver_features = old.driver_features;
        d->isr = old.isr;
        d->config_generation = old.config_generation;
        d->broken = old.broken;
        memcpy(d->vq, old.vq, sizeof(d->vq));
        return -EINVAL;
    }
    virtio_update_irq(d); /* level = isr != 0, whatever the PLIC latched */
    return 0;
}
