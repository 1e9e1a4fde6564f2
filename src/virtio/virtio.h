/*
 * The virtio core: device model, feature negotiation, device status and
 * split virtqueues (virtio 1.2 §2, §2.7), independent of the transport
 * (virtio_mmio.c) and of the device type (virtio_blk.c, virtio_rng.c,
 * virtio_net.c, ...).
 *
 * A device embeds a struct virtio_dev as its first member and hands the
 * core a struct virtio_dev_ops.  The transport owns the registers the
 * guest writes (feature selectors, queue selector, queue addresses) and
 * calls the core to change status, features and queues; the core calls the
 * device back (reset, notify, features) and the transport back (irq).
 *
 * Hostile guests.  Every ring and buffer address the guest gives goes
 * through gmem_ptr() (one bounds-checked accessor); a descriptor chain is
 * bounded by the queue size (direct) or VIRTQ_MAX_SEGS (indirect), loops
 * and nested indirect tables are refused, total lengths are bounded by
 * VIRTQ_MAX_LEN.  A malformed queue puts the device into DEVICE_NEEDS_RESET
 * (virtio 1.2 §2.1.2): the status bit is set, a configuration-change
 * interrupt is sent, the device processes nothing more until the driver
 * resets it, and the host logs it once per device.  The host never reads
 * or writes outside guest RAM.
 *
 * Dirty pages.  Every byte the device writes into guest RAM (used ring,
 * avail_event, device-writable buffers) is marked in the gmem dirty bitmap
 * (gmem_mark_dirty), the one the harts mark, so live migration sees it.
 * virtq_push() marks the first len bytes of the element's device-writable
 * buffers; a device writing elsewhere through elem->iov must call
 * virtq_elem_mark_dirty() itself.
 *
 * Threading.  A device is driven from one thread: the run loop that runs
 * the harts (QueueNotify MMIO writes arrive there, synchronously) and that
 * polls the device's host fds through the optional pollfds/poll/deadline
 * hooks.  Ring accesses still use acquire/release ordering, as the spec's
 * memory model requires (§2.7.13), so an I/O thread could be added later.
 *
 * State.  struct virtio_dev's and struct virtq's "guest-visible" fields are
 * what a save/load (migration) section carries; the rest is host plumbing.
 * No request is ever in flight between two run-loop steps (devices complete
 * requests synchronously), so nothing else needs saving.
 */
#ifndef GODWIT_VIRTIO_VIRTIO_H
#define GODWIT_VIRTIO_VIRTIO_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/util.h"
#include "mem/gmem.h"
#include "state/state_buf.h"

/* ---- constants from the spec ------------------------------------------------ */

/* Device status bits (virtio 1.2 §2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER      2u
#define VIRTIO_STATUS_DRIVER_OK   4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 0x40u
#define VIRTIO_STATUS_FAILED      0x80u

/* Reserved (transport-independent) feature bits (virtio 1.2 §6). */
#define VIRTIO_F_INDIRECT_DESC     28
#define VIRTIO_F_EVENT_IDX         29
#define VIRTIO_F_VERSION_1         32
#define VIRTIO_F_ACCESS_PLATFORM   33
#define VIRTIO_F_RING_PACKED       34
#define VIRTIO_F_IN_ORDER          35
#define VIRTIO_F_ORDER_PLATFORM    36
#define VIRTIO_F_SR_IOV            37
#define VIRTIO_F_NOTIFICATION_DATA 38
#define VIRTIO_BIT(n)              (1ull << (n))

/* Device IDs (virtio 1.2 §5). */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4

/* Interrupt status bits (InterruptStatus / ISR). */
#define VIRTIO_ISR_QUEUE  1u /* a used buffer notification */
#define VIRTIO_ISR_CONFIG 2u /* a configuration change notification */

/* Split virtqueue layout (virtio 1.2 §2.7). */
#define VIRTQ_DESC_F_NEXT          1
#define VIRTQ_DESC_F_WRITE         2
#define VIRTQ_DESC_F_INDIRECT      4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1

#define VIRTQ_DESC_SIZE 16 /* struct virtq_desc: addr u64, len u32, flags u16, next u16 */

/* ---- limits ----------------------------------------------------------------- */

#define VIRTQ_MAX_SIZE    1024u         /* largest queue size a device may offer (QEMU's too) */
#define VIRTQ_MAX_SEGS    1024u         /* buffers per chain (= IOV_MAX, preadv's limit) */
#define VIRTQ_MAX_LEN     0xffffffffull /* total bytes per chain (used.len is 32-bit) */
#define VIRTIO_MAX_VQS    16u           /* queues per device */
#define VIRTIO_CONFIG_MAX 0x100u        /* device config space bytes (MMIO: 0x100-0x1ff) */

/* ---- virtqueues --------------------------------------------------------------- */

/* One split virtqueue.  Guest-visible state first; the core keeps it. */
struct virtq {
    /* guest-visible (migrated) */
    uint16_t num;            /* queue size (power of 2, <= num_max); 0 = not set up */
    bool ready;              /* QueueReady: the driver enabled it */
    uint64_t desc_addr;      /* guest-physical: descriptor table */
    uint64_t avail_addr;     /* guest-physical: driver area (available ring) */
    uint64_t used_addr;      /* guest-physical: device area (used ring) */
    uint16_t last_avail;     /* next available-ring index the device takes */
    uint16_t used_idx;       /* shadow of used->idx (the device owns it) */
    uint16_t signalled_used; /* used_idx at the last interrupt (EVENT_IDX) */
    bool signalled_valid;    /* signalled_used means something */
    /* host */
    uint16_t num_max; /* QueueNumMax the device offers (0 = no such queue) */
    unsigned index;   /* queue number inside its device */
};

/*
 * A descriptor chain taken from the available ring, resolved into host
 * pointers: iov[0..nout) are the device-readable buffers (in chain order),
 * iov[nout..nout+nin) the device-writable ones; gpa[i] is where iov[i]
 * starts in guest-physical memory.  Every iov lies wholly inside guest RAM
 * (checked when the chain was read).  Big (24 KiB): allocate it once per
 * queue, not on the stack of a hot path.
 */
struct virtq_elem {
    uint16_t head;    /* descriptor index of the chain's head (goes into used ring) */
    unsigned nout;    /* device-readable buffers */
    unsigned nin;     /* device-writable buffers */
    uint64_t out_len; /* total bytes of the readable buffers */
    uint64_t in_len;  /* total bytes of the writable buffers */
    struct iovec iov[VIRTQ_MAX_SEGS];
    uint64_t gpa[VIRTQ_MAX_SEGS];
};

/* ---- the device -------------------------------------------------------------- */

struct virtio_dev;

struct virtio_dev_ops {
    const char *name; /* "virtio-blk", for messages */

    /* The driver wrote QueueNotify for queue q (q < nvqs, queue ready,
     * DRIVER_OK set, device not broken): pop, process, push, notify. */
    void (*queue_notify)(struct virtio_dev *d, unsigned q);

    /* Optional.  Device-specific reset (status written 0, system reset);
     * the core has already reset the queues, features and status. */
    void (*reset)(struct virtio_dev *d);

    /* Optional.  The driver set FEATURES_OK with `features` (already
     * checked to be a subset of the offered ones, with VERSION_1): return
     * false to refuse them (FEATURES_OK then reads back clear). */
    bool (*features_ok)(struct virtio_dev *d, uint64_t features);

    /* Optional.  Status changed (e.g. DRIVER_OK set: start receiving). */
    void (*status_changed)(struct virtio_dev *d, uint32_t old_status);

    /* Optional.  The driver wrote size (1, 2 or 4) bytes of the device
     * config space at off (bounded by config_len).  Without this hook
     * config writes are ignored (read-only config). */
    void (*config_write)(struct virtio_dev *d, uint32_t off, unsigned size, uint32_t val);

    /* Optional host I/O hooks, all called on the run-loop thread:
     * pollfds() fills up to max descriptors to wait on (returns how many);
     * poll() runs when one is ready, when next_deadline() (gw_now_ns()
     * clock; UINT64_MAX = none) has passed, and now and then while the
     * harts run.  A device with no host I/O leaves them NULL. */
    int (*pollfds)(struct virtio_dev *d, struct pollfd *fds, int max);
    void (*poll)(struct virtio_dev *d);
    uint64_t (*next_deadline)(struct virtio_dev *d);

    /* Optional state hooks (docs/state.md).  pre_save: finish work the
     * device batches (e.g. virtio-net's transmit completions) so nothing is
     * in flight; save/load: the device type's own guest-visible state after
     * the core's (load validates and returns 0 or -EINVAL via
     * state_buf_fail).  A device with no state of its own leaves them NULL. */
    void (*pre_save)(struct virtio_dev *d);
    void (*save)(const struct virtio_dev *d, struct state_buf *b);
    int (*load)(struct virtio_dev *d, struct state_buf *b, unsigned version);

    /* Release everything the device owns, the struct embedding d
     * included (virtio_dev_free() calls it). */
    void (*fini)(struct virtio_dev *d);
};

/* How a device reaches its transport (the transport fills it in). */
struct virtio_transport {
    void *opaque;
    /* The interrupt line: level = (isr != 0). */
    void (*set_irq)(void *opaque, bool level);
};

struct virtio_dev {
    /* guest-visible (migrated) */
    uint32_t status;            /* VIRTIO_STATUS_* the driver wrote (+ NEEDS_RESET) */
    uint64_t driver_features;   /* as the driver writes them; checked at FEATURES_OK */
    uint32_t isr;               /* VIRTIO_ISR_* pending, cleared by InterruptACK */
    uint32_t config_generation; /* bumped on every config change */
    struct virtq vq[VIRTIO_MAX_VQS];
    /* host */
    const struct virtio_dev_ops *ops;
    struct gmem *mem;
    uint32_t device_id;     /* VIRTIO_ID_* */
    uint32_t vendor_id;     /* 0x554d4551 "QEMU", as QEMU's devices */
    uint64_t host_features; /* offered; the core adds VERSION_1 */
    unsigned nvqs;          /* queues, <= VIRTIO_MAX_VQS */
    uint8_t *config;        /* device config space, little-endian; owned by the device */
    uint32_t config_len;    /* bytes, <= VIRTIO_CONFIG_MAX */
    struct virtio_transport transport;
    bool broken;           /* NEEDS_RESET set: ignore the queues until reset */
    bool broken_logged;    /* the host log line was printed (once per device) */
    uint64_t broken_count; /* times the device went NEEDS_RESET (statistics) */
    char id[32];           /* -device id= or the drive id, for messages */
};

/*
 * Set up d for a device: ops and mem are referenced, queues 0..nvqs-1 get
 * num_max (a power of 2, <= VIRTQ_MAX_SIZE).  host_features is what the
 * device offers; VIRTIO_F_VERSION_1, INDIRECT_DESC and EVENT_IDX are
 * added by the core (it implements them).  Returns 0 or -EINVAL.
 */
int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, struct gmem *mem,
                    uint32_t device_id, uint64_t host_features, unsigned nvqs,
                    uint16_t num_max) gw_must_check;

/* Free a device through ops->fini.  NULL is a no-op. */
void virtio_dev_free(struct virtio_dev *d);

/* Device reset (status 0 written, or a system reset): queues, features,
 * status, isr and the broken flag cleared, irq lowered, ops->reset called. */
void virtio_reset(struct virtio_dev *d);

/* The driver wrote the status register: handles 0 (reset), FEATURES_OK
 * (negotiation; the bit stays clear on refusal) and calls status_changed. */
void virtio_set_status(struct virtio_dev *d, uint32_t status);

/* The driver's feature bits are checked at FEATURES_OK time. */
static inline bool virtio_has_feature(const struct virtio_dev *d, unsigned bit)
{
    return (d->driver_features >> bit) & 1;
}

/* Offered feature bits, including the ones the core adds. */
uint64_t virtio_host_features(const struct virtio_dev *d);

/* The driver set QueueReady for q with the given layout: validates size
 * and addresses (ring areas inside RAM, aligned); on a bad layout the
 * device goes NEEDS_RESET and the queue stays disabled.  ready = false
 * disables the queue. */
void virtio_queue_set_ready(struct virtio_dev *d, unsigned q, bool ready, uint16_t num,
                            uint64_t desc, uint64_t avail, uint64_t used);

/* The driver notified queue q (QueueNotify): calls ops->queue_notify when
 * the queue may be processed (ready, DRIVER_OK, not broken). */
void virtio_queue_notify(struct virtio_dev *d, unsigned q);

/* InterruptACK: clear the given ISR bits, lower the line when none is left. */
void virtio_isr_ack(struct virtio_dev *d, uint32_t bits);

/* The device config changed: bump the generation, send a config interrupt
 * (if DRIVER_OK). */
void virtio_config_changed(struct virtio_dev *d);

/*
 * The guest broke the rules: set DEVICE_NEEDS_RESET, send a config-change
 * interrupt, stop processing until the driver resets the device, and log
 * the reason (printf-style) once per device.  Returns -EIO for convenience.
 */
int virtio_needs_reset(struct virtio_dev *d, const char *fmt, ...) gw_printf(2, 3);

/* ---- virtqueue API for devices ------------------------------------------------- */

/*
 * Take the next available chain of q into elem.  Returns 1 with elem
 * filled, 0 if the ring is empty, -EIO if the ring or the chain is
 * malformed (the device is then in NEEDS_RESET; stop processing).
 */
int virtq_pop(struct virtio_dev *d, struct virtq *q, struct virtq_elem *elem) gw_must_check;

/* Number of available chains not taken yet (0 when broken or malformed). */
unsigned virtq_pending(struct virtio_dev *d, struct virtq *q);

/*
 * Return elem to the driver through the used ring with len bytes written
 * into its device-writable buffers (those bytes are marked dirty).  Does
 * not interrupt: call virtq_notify() after a batch.
 */
void virtq_push(struct virtio_dev *d, struct virtq *q, const struct virtq_elem *elem, uint32_t len);

/*
 * Send a used-buffer interrupt if the driver wants one for what was pushed
 * since the last one (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with
 * VIRTIO_F_EVENT_IDX, virtio 1.2 §2.7.10).
 */
void virtq_notify(struct virtio_dev *d, struct virtq *q);

/*
 * Tell the driver whether the device wants QueueNotify writes for q
 * (VIRTQ_USED_F_NO_NOTIFY, or avail_event = last_avail with EVENT_IDX).
 * Devices that drain the queue synchronously on every notify leave it on.
 * Returns true if more chains became available meanwhile (re-check).
 */
bool virtq_enable_notify(struct virtio_dev *d, struct virtq *q, bool enable);

/* Copy len bytes at offset off of the device-readable buffers into buf;
 * returns bytes copied (less if the buffers are shorter). */
size_t virtq_elem_read(const struct virtq_elem *elem, size_t off, void *buf, size_t len);

/* Copy len bytes from buf into the device-writable buffers at offset off
 * (marking them dirty); returns bytes copied (less if they are shorter). */
size_t virtq_elem_write(struct virtio_dev *d, const struct virtq_elem *elem, size_t off,
                        const void *buf, size_t len);

/* Mark len bytes of the device-writable buffers from offset off dirty
 * (after writing through elem->iov directly, e.g. preadv). */
void virtq_elem_mark_dirty(struct virtio_dev *d, const struct virtq_elem *elem, size_t off,
                           size_t len);

/* ---- state (docs/state.md) ------------------------------------------------------- */

/*
 * The core's guest-visible part (status, driver features, ISR, config
 * generation, broken flag, every queue's layout and indices), then the
 * device type's (ops->save).  Load validates every queue (size a power of
 * two within num_max, rings inside RAM and aligned) and the features
 * (subset of the offered ones), then calls ops->load.  0 or -EINVAL.
 */
#define VIRTIO_STATE_VERSION 1
void virtio_dev_pre_save(struct virtio_dev *d);
void virtio_dev_save(const struct virtio_dev *d, struct state_buf *b);
int virtio_dev_load(struct virtio_dev *d, struct state_buf *b, unsigned version) gw_must_check;

#endif
