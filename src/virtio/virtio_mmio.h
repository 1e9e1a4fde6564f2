/*
 * The virtio-mmio transport, version 2 (the modern interface, virtio 1.2
 * §4.2.2), as the slots of QEMU's virt board: a 0x200-byte register window
 * (0x000-0x0ff registers, 0x100-0x1ff device config space) and one
 * interrupt line per slot.
 *
 * Register accesses must be 4 bytes wide (QEMU logs and ignores others:
 * reads give 0); the config space takes 1, 2 and 4-byte accesses (the
 * board's bus splits 8-byte ones).  A slot without a device answers as
 * QEMU's empty slots (magic, version 1, device ID 0, vendor; all else 0),
 * so Linux skips it.
 *
 * struct virtio_mmio holds the transport's guest-visible registers (the
 * selectors and the queue layout the driver is writing, applied when it
 * sets QueueReady); the device's state lives in struct virtio_dev.
 */
#ifndef GODWIT_VIRTIO_VIRTIO_MMIO_H
#define GODWIT_VIRTIO_VIRTIO_MMIO_H

#include "mem/bus.h"
#include "virtio/virtio.h"
#include "state/state_buf.h"

#define VIRTIO_MMIO_SIZE    0x200u
#define VIRTIO_MMIO_MAGIC   0x74726976u /* "virt" */
#define VIRTIO_MMIO_VENDOR  0x554d4551u /* "QEMU" */
#define VIRTIO_MMIO_VERSION 2u

/* Register offsets (virtio 1.2 §4.2.2). */
enum {
    VIRTIO_MMIO_MAGIC_VALUE = 0x000,
    VIRTIO_MMIO_VERSION_REG = 0x004,
    VIRTIO_MMIO_DEVICE_ID = 0x008,
    VIRTIO_MMIO_VENDOR_ID = 0x00c,
    VIRTIO_MMIO_DEVICE_FEATURES = 0x010,
    VIRTIO_MMIO_DEVICE_FEATURES_SEL = 0x014,
    VIRTIO_MMIO_DRIVER_FEATURES = 0x020,
    VIRTIO_MMIO_DRIVER_FEATURES_SEL = 0x024,
    VIRTIO_MMIO_QUEUE_SEL = 0x030,
    VIRTIO_MMIO_QUEUE_NUM_MAX = 0x034,
    VIRTIO_MMIO_QUEUE_NUM = 0x038,
    VIRTIO_MMIO_QUEUE_READY = 0x044,
    VIRTIO_MMIO_QUEUE_NOTIFY = 0x050,
    VIRTIO_MMIO_INTERRUPT_STATUS = 0x060,
    VIRTIO_MMIO_INTERRUPT_ACK = 0x064,
    VIRTIO_MMIO_STATUS = 0x070,
    VIRTIO_MMIO_QUEUE_DESC_LOW = 0x080,
    VIRTIO_MMIO_QUEUE_DESC_HIGH = 0x084,
    VIRTIO_MMIO_QUEUE_DRIVER_LOW = 0x090,
    VIRTIO_MMIO_QUEUE_DRIVER_HIGH = 0x094,
    VIRTIO_MMIO_QUEUE_DEVICE_LOW = 0x0a0,
    VIRTIO_MMIO_QUEUE_DEVICE_HIGH = 0x0a4,
    VIRTIO_MMIO_SHM_SEL = 0x0ac,
    VIRTIO_MMIO_SHM_LEN_LOW = 0x0b0,
    VIRTIO_MMIO_SHM_LEN_HIGH = 0x0b4,
    VIRTIO_MMIO_SHM_BASE_LOW = 0x0b8,
    VIRTIO_MMIO_SHM_BASE_HIGH = 0x0bc,
    VIRTIO_MMIO_QUEUE_RESET = 0x0c0,
    VIRTIO_MMIO_CONFIG_GENERATION = 0x0fc,
    VIRTIO_MMIO_CONFIG = 0x100,
};

/* The layout the driver writes for one queue before enabling it. */
struct virtio_mmio_queue {
    uint16_t num;
    uint64_t desc, avail, used;
};

struct virtio_mmio {
    /* guest-visible (migrated with the device) */
    uint32_t device_features_sel;
    uint32_t driver_features_sel;
    uint32_t queue_sel;
    struct virtio_mmio_queue queue[VIRTIO_MAX_VQS];
    /* host */
    struct virtio_dev *dev; /* NULL: an empty slot */
};

/* Attach dev (may be NULL: empty slot); irq is the slot's interrupt line,
 * copied into dev->transport. */
void virtio_mmio_init(struct virtio_mmio *m, struct virtio_dev *dev,
                      const struct virtio_transport *irq);

/* System reset: transport registers cleared, device reset. */
void virtio_mmio_reset(struct virtio_mmio *m);

/* Bus callbacks, opaque = struct virtio_mmio *.  Map VIRTIO_MMIO_SIZE
 * bytes with accesses of 1-8 bytes, implemented up to 4. */
extern const struct bus_ops virtio_mmio_ops;

/*
 * State of a slot: the transport registers, then the device (virtio_dev_save:
 * status, features, ISR, every queue, then the device type's own part).
 * Call virtio_mmio_pre_save() first: it asks the device to finish work it
 * batches (ops->pre_save), so nothing is in flight.  Load validates queue
 * layouts against guest RAM and re-sends the interrupt line; a slot's
 * device type must match (the configuration hash already says so).
 */
#define VIRTIO_MMIO_STATE_VERSION 1
void virtio_mmio_pre_save(struct virtio_mmio *m);
void virtio_mmio_save(const struct virtio_mmio *m, struct state_buf *b);
int virtio_mmio_load(struct virtio_mmio *m, struct state_buf *b, unsigned version) gw_must_check;

#endif
