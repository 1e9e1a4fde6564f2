/*
 * virtio-rng: random bytes into every writable buffer the driver posts;
 * see virtio_rng.h.  getrandom() without flags only blocks before the
 * host's pool is initialised, i.e. never once the host has booted.
 */
#include "virtio/virtio_rng.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct vrng {
    struct virtio_dev vdev; /* first */
    int fd;                 /* -1: getrandom */
    struct virtq_elem *elem;
    struct vrng_stats stats;
};

/* Fill one buffer; 0 or -errno. */
static int vrng_fill(struct vrng *r, uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = r->fd < 0 ? getrandom(p, len, 0) : read(r->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Fill the chain's writable buffers (at most VRNG_MAX_REQUEST bytes);
 * returns the bytes written. */
static uint32_t vrng_request(struct vrng *r, const struct virtq_elem *e)
{
    size_t want = e->in_len < VRNG_MAX_REQUEST ? (size_t)e->in_len : VRNG_MAX_REQUEST;
    size_t done = 0;

    for (unsigned i = e->nout; i < e->nout + e->nin && done < want; i++) {
        size_t n = e->iov[i].iov_len;
        if (n > want - done)
            n = want - done;
        if (vrng_fill(r, e->iov[i].iov_base, n) < 0) {
            r->stats.errors++;
            break;
        }
        done += n;
    }
    r->stats.requests++;
    r->stats.bytes += done;
    return (uint32_t)done; /* virtq_push marks these bytes dirty */
}

static void vrng_queue_notify(struct virtio_dev *d, unsigned qi)
{
    struct vrng *r = (struct vrng *)d;
    struct virtq *q = &d->vq[qi];
    int ret;

    do {
        while ((ret = virtq_pop(d, q, r->elem)) > 0)
            virtq_push(d, q, r->elem, vrng_request(r, r->elem));
    } while (ret == 0 && virtq_enable_notify(d, q, true));
    virtq_notify(d, q);
}

static void vrng_fini(struct virtio_dev *d)
{
    struct vrng *r = (struct vrng *)d;

    if (r->fd >= 0)
        close(r->fd);
    free(r->elem);
    free(r);
}

static const struct virtio_dev_ops vrng_ops = {
    .name = "virtio-rng",
    .queue_notify = vrng_queue_notify,
    .fini = vrng_fini,
};

struct virtio_dev *vrng_new(struct gmem *mem, const struct vrng_config *cfg, char *err,
                            size_t errlen)
{
    struct vrng *r = calloc(1, sizeof(*r));

    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    r->fd = -1;
    r->elem = malloc(sizeof(*r->elem));
    if (!r->elem) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (cfg->filename) {
        /* /dev/urandom or a file; a named pipe could block open() forever */
        r->fd = gw_open_checked(cfg->filename, O_RDONLY, 0, GW_OPEN_REG | GW_OPEN_CHR, err, errlen);
        if (r->fd < 0)
            goto fail;
    }
    if (virtio_dev_init(&r->vdev, &vrng_ops, mem, VIRTIO_ID_RNG, 0, 1, VRNG_QUEUE_SIZE) < 0) {
        snprintf(err, errlen, "virtio-rng: bad device parameters");
        goto fail;
    }
    snprintf(r->vdev.id, sizeof(r->vdev.id), "%s", cfg->id ? cfg->id : "");
    return &r->vdev;

fail:
    vrng_fini(&r->vdev);
    return NULL;
}

const struct vrng_stats *vrng_stats(const struct virtio_dev *d)
{
    return &((const struct vrng *)d)->stats;
}
