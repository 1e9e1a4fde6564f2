/*
 * virtio-rng (virtio 1.2 §5.4): one queue the driver fills with writable
 * buffers; the device fills them with random bytes from the host's
 * getrandom(2), or from a file (QEMU's -object rng-random,filename=...).
 * Requests are answered synchronously on notify.  A request gets at most
 * VRNG_MAX_REQUEST bytes (the used length says how many).
 */
#ifndef GODWIT_VIRTIO_VIRTIO_RNG_H
#define GODWIT_VIRTIO_VIRTIO_RNG_H

#include "virtio/virtio.h"

#define VRNG_QUEUE_SIZE  1024u /* QEMU offers VIRTQUEUE_MAX_SIZE on virtio-mmio */
#define VRNG_MAX_REQUEST 65536u

struct vrng_config {
    const char *id;       /* for messages; may be NULL */
    const char *filename; /* NULL: getrandom(2); else read this file (e.g. /dev/urandom) */
};

struct vrng_stats {
    uint64_t requests, bytes;
    uint64_t errors; /* the source failed: the request got 0 bytes */
};

/* NULL with a reason in err (e.g. the file cannot be opened). */
struct virtio_dev *vrng_new(struct gmem *mem, const struct vrng_config *cfg, char *err,
                            size_t errlen);

const struct vrng_stats *vrng_stats(const struct virtio_dev *d);

#endif
