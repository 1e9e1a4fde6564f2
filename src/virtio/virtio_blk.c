/*
 * virtio-blk on a raw image file; see virtio_blk.h.
 *
 * One request queue, processed to the end on every notify, on the thread
 * that runs the harts (docs/virtio.md explains why).  Data moves with
 * preadv/pwritev between the file and the guest buffers of the chain; the
 * used ring write marks the written buffers dirty (virtq_push).
 *
 * Config space (virtio 1.2 §5.2.4), 60 bytes as QEMU 7.2 with discard and
 * write-zeroes: capacity, size_max, seg_max, geometry (0), blk_size,
 * topology (0), writeback, num_queues, the discard and write-zeroes limits.
 * The driver may write `writeback` (VIRTIO_BLK_F_CONFIG_WCE): 0 makes
 * every write stable before it completes.
 */
#include "virtio/virtio_blk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VBLK_CONFIG_LEN   60
#define VBLK_BLOCK        4096u      /* host block: the unit of zero detection */
#define VBLK_BOUNCE_SIZE  (1u << 20) /* O_DIRECT fallback buffer */
#define VBLK_ZERO_CHUNK   65536u     /* last-resort zero writes */
#define VBLK_OFF_CAPACITY 0
#define VBLK_OFF_SIZE_MAX 8
#define VBLK_OFF_SEG_MAX  12
#define VBLK_OFF_BLK_SIZE 20
#define VBLK_OFF_WCE      32
#define VBLK_OFF_NUM_Q    34
#define VBLK_OFF_DISCARD  36 /* max_discard_sectors, max_discard_seg, alignment */
#define VBLK_OFF_WZ       48 /* max_write_zeroes_sectors, max_write_zeroes_seg, may_unmap */

struct vblk {
    struct virtio_dev vdev; /* first: the core hands us &vdev */
    /* guest-visible: config[] (writeback lives there) */
    uint8_t config[VBLK_CONFIG_LEN];
    /* host */
    int fd;
    char path[256];
    char serial[VIRTIO_BLK_ID_BYTES];
    bool readonly, discard, direct;
    enum vblk_cache cache;
    enum vblk_zeroes detect_zeroes;
    enum image_lock_mode locking;
    bool locked;                  /* holds its image locks */
    bool no_punch, no_zero_range; /* the file system refused them once */
    uint64_t capacity;            /* sectors */
    struct virtq_elem *elem;
    struct iovec *iov; /* VIRTQ_MAX_SEGS: the data part of a request */
    uint8_t *bounce;   /* VBLK_BOUNCE_SIZE, page-aligned, allocated on first use */
    struct vblk_stats stats;
    /* a live migration with its disks (vblk_set_dirty): blocks written
     * are marked; with active mirroring a write may have to wait for room
     * (stalled: b->elem holds it until poll finds room) */
    struct blk_dirty *dirty;
    bool stalled;
};

struct vblk_range { /* DISCARD / WRITE_ZEROES segment (§5.2.6) */
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};

static size_t vblk_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

static struct vblk *vblk_of(struct virtio_dev *d)
{
    return (struct vblk *)d;
}

static void vblk_put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void vblk_put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* ---- iovec helpers ---------------------------------------------------------- */

/* dst = the bytes [off, off+len) of src; returns the count (<= VIRTQ_MAX_SEGS). */
static unsigned vblk_iov_slice(const struct iovec *src, unsigned n, size_t off, size_t len,
                               struct iovec *dst)
{
    unsigned k = 0;

    for (unsigned i = 0; i < n && len; i++) {
        size_t l = src[i].iov_len;
        if (off >= l) {
            off -= l;
            continue;
        }
        l -= off;
        if (l > len)
            l = len;
        dst[k].iov_base = (uint8_t *)src[i].iov_base + off;
        dst[k].iov_len = l;
        k++;
        len -= l;
        off = 0;
    }
    return k;
}

/* Drop the first n bytes of an iovec array (in place); returns the new start. */
static struct iovec *vblk_iov_advance(struct iovec *iov, unsigned *cnt, size_t n)
{
    while (*cnt && n >= iov->iov_len) {
        n -= iov->iov_len;
        iov++;
        (*cnt)--;
    }
    if (*cnt && n) {
        iov->iov_base = (uint8_t *)iov->iov_base + n;
        iov->iov_len -= n;
    }
    return iov;
}

static void vblk_iov_zero(struct iovec *iov, unsigned cnt)
{
    for (unsigned i = 0; i < cnt; i++)
        memset(iov[i].iov_base, 0, iov[i].iov_len);
}

static bool vblk_iov_is_zero(const struct iovec *iov, unsigned cnt)
{
    for (unsigned i = 0; i < cnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t l = iov[i].iov_len, j = 0;
        for (; j + 8 <= l; j += 8) {
            uint64_t w;
            memcpy(&w, p + j, 8);
            if (w)
                return false;
        }
        for (; j < l; j++)
            if (p[j])
                return false;
    }
    return true;
}

/* ---- file I/O ----------------------------------------------------------------- */

static uint8_t *vblk_bounce(struct vblk *b)
{
    if (!b->bounce && posix_memalign((void **)&b->bounce, 4096, VBLK_BOUNCE_SIZE))
        b->bounce = NULL;
    return b->bounce;
}

/* O_DIRECT refused the guest's buffers (alignment): go through a bounce
 * buffer.  off and len are sector multiples. */
static int vblk_bounce_io(struct vblk *b, bool write, struct iovec *iov, unsigned cnt, uint64_t off,
                          size_t len)
{
    uint8_t *buf = vblk_bounce(b);
    size_t done = 0;

    if (!buf)
        return -ENOMEM;
    while (done < len) {
        size_t chunk = len - done < VBLK_BOUNCE_SIZE ? len - done : VBLK_BOUNCE_SIZE;
        struct iovec part[VIRTQ_MAX_SEGS];
        unsigned pc = vblk_iov_slice(iov, cnt, done, chunk, part);
        ssize_t n;
        size_t got = 0, pos = 0;

        if (write)
            for (unsigned i = 0; i < pc; pos += part[i].iov_len, i++)
                memcpy(buf + pos, part[i].iov_base, part[i].iov_len);
        while (got < chunk) {
            n = write ? pwrite(b->fd, buf + got, chunk - got, (off_t)(off + done + got))
                      : pread(b->fd, buf + got, chunk - got, (off_t)(off + done + got));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return -errno;
            if (n == 0) {
                if (write)
                    return -EIO;
                memset(buf + got, 0, chunk - got); /* end of file reads zeros */
                break;
            }
            got += (size_t)n;
        }
        if (!write)
            for (unsigned i = 0; i < pc; pos += part[i].iov_len, i++)
                memcpy(part[i].iov_base, buf + pos, part[i].iov_len);
        done += chunk;
    }
    return 0;
}

/*
 * Move len bytes between the file at off and iov[0..cnt) (iov is consumed).
 * Short reads mean the end of the file: the rest reads as zeros, as QEMU's
 * raw driver does.  0 or -errno.
 */
static int vblk_rw_full(struct vblk *b, bool write, struct iovec *iov, unsigned cnt, uint64_t off,
                        size_t len)
{
    struct iovec *start = iov;
    unsigned start_cnt = cnt;

    while (len) {
        ssize_t n = write ? pwritev(b->fd, iov, (int)cnt, (off_t)off)
                          : preadv(b->fd, iov, (int)cnt, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EINVAL && b->direct && iov == start)
            return vblk_bounce_io(b, write, start, start_cnt, off, len);
        if (n < 0)
            return -errno;
        if (n == 0) {
            if (write)
                return -EIO;
            vblk_iov_zero(iov, cnt);
            return 0;
        }
        iov = vblk_iov_advance(iov, &cnt, (size_t)n);
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static bool vblk_unsupported(int err)
{
    return err == EOPNOTSUPP || err == ENOSYS || err == EINVAL || err == ENOTTY;
}

/* Make [off, off+len) read as zeros without writing data when the file
 * system allows: a hole if unmap is allowed, else an unwritten extent;
 * zeros written as a last resort.  0 or -errno. */
static int vblk_zero_range(struct vblk *b, uint64_t off, uint64_t len, bool unmap)
{
    static const uint8_t zeros[VBLK_ZERO_CHUNK];

    if (len == 0)
        return 0;
    if (!unmap && !b->no_zero_range) {
        if (fallocate(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ==
            0)
            return 0;
        if (!vblk_unsupported(errno))
            return -errno;
        b->no_zero_range = true;
    }
    if (!b->no_punch) {
        if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ==
            0) {
            b->stats.punched_bytes += len;
            return 0;
        }
        if (!vblk_unsupported(errno))
            return -errno;
        b->no_punch = true;
    }
    while (len) {
        size_t n = len < sizeof(zeros) ? (size_t)len : sizeof(zeros);
        ssize_t w = pwrite(b->fd, zeros, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        off += (uint64_t)w;
        len -= (uint64_t)w;
    }
    return 0;
}

/*
 * Write with zero detection: whole host blocks (VBLK_BLOCK, aligned in the
 * file) of zeros become holes (or unwritten extents), the rest is written.
 * Data runs and zero runs are each one system call.
 */
static int vblk_write_detect(struct vblk *b, struct iovec *iov, unsigned cnt, uint64_t off,
                             size_t len)
{
    struct iovec part[VIRTQ_MAX_SEGS];
    size_t pos = 0, run_start = 0;
    bool run_zero = false;
    int ret;

    while (pos < len) {
        uint64_t fo = off + pos;
        size_t blk = VBLK_BLOCK - (size_t)(fo % VBLK_BLOCK);
        bool zero = false;
        unsigned pc;

        if (blk > len - pos)
            blk = len - pos;
        if (blk == VBLK_BLOCK) {
            pc = vblk_iov_slice(iov, cnt, pos, blk, part);
            zero = vblk_iov_is_zero(part, pc);
        }
        if (pos > run_start && zero != run_zero) {
            /* flush the run [run_start, pos) */
            if (run_zero) {
                ret = vblk_zero_range(b, off + run_start, pos - run_start,
                                      b->detect_zeroes == VBLK_ZEROES_UNMAP);
            } else {
                pc = vblk_iov_slice(iov, cnt, run_start, pos - run_start, part);
                ret = vblk_rw_full(b, true, part, pc, off + run_start, pos - run_start);
            }
            if (ret < 0)
                return ret;
            run_start = pos;
        }
        run_zero = zero;
        pos += blk;
    }
    if (run_zero)
        return vblk_zero_range(b, off + run_start, len - run_start,
                               b->detect_zeroes == VBLK_ZEROES_UNMAP);
    cnt = vblk_iov_slice(iov, cnt, run_start, len - run_start, part);
    return vblk_rw_full(b, true, part, cnt, off + run_start, len - run_start);
}

static bool vblk_wce(const struct vblk *b)
{
    return b->config[VBLK_OFF_WCE] != 0;
}

static int vblk_sync(struct vblk *b)
{
    if (b->cache == VBLK_CACHE_UNSAFE)
        return 0;
    while (fdatasync(b->fd) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

/* After a write: with the driver's write cache off, make it stable now
 * (unless the file was opened O_DSYNC already). */
static int vblk_write_done(struct vblk *b)
{
    if (vblk_wce(b) || b->cache == VBLK_CACHE_WRITETHROUGH || b->cache == VBLK_CACHE_DIRECTSYNC)
        return 0;
    return vblk_sync(b);
}

/* ---- requests ----------------------------------------------------------------- */

static bool vblk_range_ok(const struct vblk *b, uint64_t sector, uint64_t bytes)
{
    return bytes % VBLK_SECTOR == 0 && sector <= b->capacity &&
           bytes / VBLK_SECTOR <= b->capacity - sector;
}

static uint8_t vblk_status_of(struct vblk *b, int ret)
{
    if (ret == 0)
        return VIRTIO_BLK_S_OK;
    b->stats.errors++;
    return VIRTIO_BLK_S_IOERR;
}

static uint8_t vblk_do_rw(struct vblk *b, const struct virtq_elem *e, bool write, uint64_t sector)
{
    size_t len;
    unsigned cnt;
    uint64_t off;
    int ret;

    if (write) {
        len = e->out_len - 16;
        cnt = vblk_iov_slice(e->iov, e->nout, 16, len, b->iov);
    } else {
        len = e->in_len - 1;
        cnt = vblk_iov_slice(e->iov + e->nout, e->nin, 0, len, b->iov);
    }
    if (!vblk_range_ok(b, sector, len) || len > VBLK_MAX_REQUEST || (write && b->readonly)) {
        b->stats.errors++;
        return VIRTIO_BLK_S_IOERR;
    }
    off = sector * VBLK_SECTOR;
    if (!write) {
        b->stats.reads++;
        b->stats.read_bytes += len;
        return vblk_status_of(b, vblk_rw_full(b, false, b->iov, cnt, off, len));
    }
    b->stats.writes++;
    b->stats.write_bytes += len;
    if (b->detect_zeroes != VBLK_ZEROES_OFF)
        ret = vblk_write_detect(b, b->iov, cnt, off, len);
    else
        ret = vblk_rw_full(b, true, b->iov, cnt, off, len);
    if (ret == 0)
        ret = vblk_write_done(b);
    blk_dirty_mark(b->dirty, off, len); /* even a failed write may have changed some */
    return vblk_status_of(b, ret);
}

/* DISCARD and WRITE_ZEROES: a list of ranges after the header. */
static uint8_t vblk_do_ranges(struct vblk *b, const struct virtq_elem *e, uint32_t type)
{
    struct vblk_range r[VBLK_DISCARD_SEGS];
    uint64_t bytes = e->out_len - 16;
    unsigned n = (unsigned)(bytes / sizeof(r[0]));
    int ret = 0;

    if (type == VIRTIO_BLK_T_DISCARD)
        b->stats.discards++;
    else
        b->stats.write_zeroes++;
    if (bytes == 0 || bytes % sizeof(r[0]) || n > VBLK_DISCARD_SEGS || b->readonly) {
        b->stats.errors++;
        return VIRTIO_BLK_S_IOERR;
    }
    virtq_elem_read(e, 16, r, n * sizeof(r[0]));
    for (unsigned i = 0; i < n; i++) {
        /* §5.2.6.2: unknown flags, or unmap on a discard, are unsupported. */
        if ((r[i].flags & ~(uint32_t)VIRTIO_BLK_WZ_F_UNMAP) ||
            (type == VIRTIO_BLK_T_DISCARD && r[i].flags)) {
            b->stats.unsupported++;
            return VIRTIO_BLK_S_UNSUPP;
        }
        if (r[i].num_sectors > VBLK_DISCARD_SECTORS ||
            !vblk_range_ok(b, r[i].sector, (uint64_t)r[i].num_sectors * VBLK_SECTOR)) {
            b->stats.errors++;
            return VIRTIO_BLK_S_IOERR;
        }
    }
    for (unsigned i = 0; i < n && ret == 0; i++) {
        uint64_t off = r[i].sector * VBLK_SECTOR, len = (uint64_t)r[i].num_sectors * VBLK_SECTOR;
        blk_dirty_mark(b->dirty, off, len);
        if (type == VIRTIO_BLK_T_WRITE_ZEROES) {
            ret = vblk_zero_range(b, off, len, r[i].flags & VIRTIO_BLK_WZ_F_UNMAP);
        } else if (b->discard && !b->no_punch && len) {
            /* Discard is a hint: a file system without holes ignores it. */
            if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                          (off_t)len) == 0)
                b->stats.punched_bytes += len;
            else if (vblk_unsupported(errno))
                b->no_punch = true;
            else
                ret = -errno;
        }
    }
    if (ret == 0 && type == VIRTIO_BLK_T_WRITE_ZEROES)
        ret = vblk_write_done(b);
    return vblk_status_of(b, ret);
}

/* Handle one request; returns the used length, or -1 if the chain has no
 * room for a header and a status byte (the device is then NEEDS_RESET). */
static int64_t vblk_request(struct vblk *b, const struct virtq_elem *e)
{
    struct {
        uint32_t type;
        uint32_t ioprio;
        uint64_t sector;
    } hdr;
    uint8_t status;

    if (e->out_len < sizeof(hdr) || e->in_len < 1) {
        virtio_needs_reset(&b->vdev, "request without header or status (out %llu, in %llu bytes)",
                           (unsigned long long)e->out_len, (unsigned long long)e->in_len);
        return -1;
    }
    virtq_elem_read(e, 0, &hdr, sizeof(hdr));
    switch (hdr.type) {
    case VIRTIO_BLK_T_IN: status = vblk_do_rw(b, e, false, hdr.sector); break;
    case VIRTIO_BLK_T_OUT: status = vblk_do_rw(b, e, true, hdr.sector); break;
    case VIRTIO_BLK_T_FLUSH:
        b->stats.flushes++;
        status = vblk_status_of(b, b->readonly ? 0 : vblk_sync(b));
        break;
    case VIRTIO_BLK_T_GET_ID: {
        size_t n = e->in_len - 1 < VIRTIO_BLK_ID_BYTES ? e->in_len - 1 : VIRTIO_BLK_ID_BYTES;
        b->stats.get_ids++;
        virtq_elem_write(&b->vdev, e, 0, b->serial, n);
        status = VIRTIO_BLK_S_OK;
        break;
    }
    case VIRTIO_BLK_T_DISCARD:
    case VIRTIO_BLK_T_WRITE_ZEROES: status = vblk_do_ranges(b, e, hdr.type); break;
    default:
        b->stats.unsupported++;
        status = VIRTIO_BLK_S_UNSUPP;
        break;
    }
    virtq_elem_write(&b->vdev, e, e->in_len - 1, &status, 1);
    /* As QEMU: the whole writable part counts as written. */
    return (int64_t)(e->in_len > UINT32_MAX ? UINT32_MAX : e->in_len);
}

/* Does the request in b->elem change the image (a write, a discard, a
 * write-zeroes)? */
static bool vblk_elem_writes(const struct vblk *b)
{
    uint32_t type;

    if (b->elem->out_len < 16)
        return false;
    virtq_elem_read(b->elem, 0, &type, sizeof(type));
    return type == VIRTIO_BLK_T_OUT || type == VIRTIO_BLK_T_DISCARD ||
           type == VIRTIO_BLK_T_WRITE_ZEROES;
}

/* Process requests until the queue is empty, or (active mirroring) a
 * write finds no room: it then waits in b->elem, stalled, and the guest
 * waits with it until vblk_poll finds room.  force: never wait (parking). */
static void vblk_drain(struct vblk *b, unsigned qi, bool force)
{
    struct virtio_dev *d = &b->vdev;
    struct virtq *q = &d->vq[qi];
    int r = 1;

    do {
        for (;;) {
            int64_t len;

            if (!b->stalled && (r = virtq_pop(d, q, b->elem)) <= 0)
                break;
            if (!force && b->dirty && vblk_elem_writes(b) && !blk_dirty_room(b->dirty)) {
                if (!b->stalled)
                    atomic_fetch_add(&b->dirty->waits, 1);
                b->stalled = true;
                virtq_notify(d, q); /* what completed so far */
                return;
            }
            b->stalled = false;
            len = vblk_request(b, b->elem);
            if (len < 0)
                return;
            virtq_push(d, q, b->elem, (uint32_t)len);
        }
    } while (r == 0 && virtq_enable_notify(d, q, true));
    virtq_notify(d, q);
}

static void vblk_queue_notify(struct virtio_dev *d, unsigned qi)
{
    struct vblk *b = vblk_of(d);

    if (!b->stalled) /* a stalled queue goes on from vblk_poll */
        vblk_drain(b, qi, false);
}

/* A stalled write: go on once there is room again (or mirroring ended). */
static void vblk_poll(struct virtio_dev *d)
{
    struct vblk *b = vblk_of(d);

    if (b->stalled && (!b->dirty || blk_dirty_room(b->dirty)))
        vblk_drain(b, 0, false);
}

static uint64_t vblk_next_deadline(struct virtio_dev *d)
{
    return vblk_of(d)->stalled ? gw_now_ns() + 1000000 : UINT64_MAX;
}

/* Parking for a migration or a save: a stalled write completes now. */
static void vblk_pre_save(struct virtio_dev *d)
{
    struct vblk *b = vblk_of(d);

    if (b->stalled)
        vblk_drain(b, 0, true);
}

void vblk_set_dirty(struct virtio_dev *d, struct blk_dirty *t)
{
    struct vblk *b = vblk_of(d);

    b->dirty = t;
    if (!t && b->stalled)
        vblk_drain(b, 0, true);
}

int vblk_image(const struct virtio_dev *d, const char **path, uint64_t *size, bool *readonly)
{
    const struct vblk *b = (const struct vblk *)d;

    *path = b->path;
    *size = b->capacity * VBLK_SECTOR;
    *readonly = b->readonly;
    return b->fd;
}

static void vblk_config_write(struct virtio_dev *d, uint32_t off, unsigned size, uint32_t val)
{
    struct vblk *b = vblk_of(d);

    /* Only `writeback` is writable, and only with CONFIG_WCE (§5.2.5). */
    if (off == VBLK_OFF_WCE && size == 1 && virtio_has_feature(d, VIRTIO_BLK_F_CONFIG_WCE))
        b->config[VBLK_OFF_WCE] = val ? 1 : 0;
}

static bool vblk_default_wce(const struct vblk *b)
{
    return b->cache != VBLK_CACHE_WRITETHROUGH && b->cache != VBLK_CACHE_DIRECTSYNC;
}

static void vblk_reset(struct virtio_dev *d)
{
    struct vblk *b = vblk_of(d);

    b->config[VBLK_OFF_WCE] = vblk_default_wce(b);
    b->stalled = false; /* the core reset the queue: the held request is gone with it */
}

static void vblk_fini(struct virtio_dev *d)
{
    struct vblk *b = vblk_of(d);

    if (b->fd >= 0)
        close(b->fd);
    free(b->elem);
    free(b->iov);
    free(b->bounce);
    free(b);
}

/* State (docs/state.md), after the core's: u8 writeback, the only config
 * byte the driver can change.  Requests complete inside the notify that
 * took them, so none is ever in flight (pre_save completes one that active
 * mirroring held back). */
static void vblk_save(const struct virtio_dev *d, struct state_buf *b)
{
    const struct vblk *blk = (const struct vblk *)d;

    state_put_u8(b, blk->config[VBLK_OFF_WCE]);
}

static int vblk_load(struct virtio_dev *d, struct state_buf *b, unsigned version)
{
    struct vblk *blk = vblk_of(d);
    uint8_t wce;

    (void)version; /* the core's version; 1 is all there is */
    wce = state_get_u8(b);
    if (!state_buf_error(b) && wce > 1)
        state_buf_fail(b, -EINVAL, "virtio-blk: writeback %u (0 or 1)", wce);
    if (state_buf_error(b))
        return -EINVAL;
    blk->config[VBLK_OFF_WCE] = wce;
    return 0;
}

static const struct virtio_dev_ops vblk_ops = {
    .name = "virtio-blk",
    .queue_notify = vblk_queue_notify,
    .reset = vblk_reset,
    .config_write = vblk_config_write,
    .poll = vblk_poll,
    .next_deadline = vblk_next_deadline,
    .pre_save = vblk_pre_save,
    .save = vblk_save,
    .load = vblk_load,
    .fini = vblk_fini,
};

static void vblk_fill_config(struct vblk *b)
{
    uint8_t *c = b->config;

    memset(c, 0, sizeof(b->config));
    vblk_put64(c + VBLK_OFF_CAPACITY, b->capacity);
    vblk_put32(c + VBLK_OFF_SIZE_MAX, VBLK_SIZE_MAX);
    vblk_put32(c + VBLK_OFF_SEG_MAX, VBLK_SEG_MAX);
    vblk_put32(c + VBLK_OFF_BLK_SIZE, VBLK_SECTOR);
    c[VBLK_OFF_WCE] = vblk_default_wce(b);
    c[VBLK_OFF_NUM_Q] = 1;
    vblk_put32(c + VBLK_OFF_DISCARD, VBLK_DISCARD_SECTORS);
    vblk_put32(c + VBLK_OFF_DISCARD + 4, VBLK_DISCARD_SEGS);
    vblk_put32(c + VBLK_OFF_DISCARD + 8, VBLK_DISCARD_ALIGN);
    vblk_put32(c + VBLK_OFF_WZ, VBLK_DISCARD_SECTORS);
    vblk_put32(c + VBLK_OFF_WZ + 4, VBLK_DISCARD_SEGS);
    c[VBLK_OFF_WZ + 8] = 1; /* write_zeroes_may_unmap */
}

struct virtio_dev *vblk_new_fd(struct gmem *mem, int fd, const struct vblk_config *cfg, char *err,
                               size_t errlen)
{
    uint64_t features = VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
                        VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
                        VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
                        VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
    const char *name = cfg->path ? cfg->path : "(fd)";
    struct vblk *b;
    off_t size;
    int fl;

    size = lseek(fd, 0, SEEK_END);
    if (size < 0) {
        snprintf(err, errlen, "%s: cannot get the size: %s", name, strerror(errno));
        close(fd);
        return NULL;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return NULL;
    }
    b->fd = fd;
    b->elem = malloc(sizeof(*b->elem));
    b->iov = calloc(VIRTQ_MAX_SEGS, sizeof(*b->iov));
    if (!b->elem || !b->iov) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(b->path, sizeof(b->path), "%s", name);
    if (cfg->serial)
        /* NUL-padded, unterminated when 20 bytes long (as GET_ID wants) */
        memcpy(b->serial, cfg->serial, vblk_min(strlen(cfg->serial), sizeof(b->serial)));
    b->readonly = cfg->readonly;
    b->discard = cfg->discard;
    b->cache = cfg->cache;
    b->detect_zeroes = cfg->detect_zeroes;
    b->locking = cfg->locking;
    fl = fcntl(fd, F_GETFL);
    b->direct = fl >= 0 && (fl & O_DIRECT);
    b->capacity = (uint64_t)size / VBLK_SECTOR;
    if (b->readonly)
        features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
    if (virtio_dev_init(&b->vdev, &vblk_ops, mem, VIRTIO_ID_BLOCK, features, 1, VBLK_QUEUE_SIZE) <
        0) {
        snprintf(err, errlen, "virtio-blk: bad device parameters");
        goto fail;
    }
    snprintf(b->vdev.id, sizeof(b->vdev.id), "%s", cfg->id ? cfg->id : "");
    vblk_fill_config(b);
    b->vdev.config = b->config;
    b->vdev.config_len = VBLK_CONFIG_LEN;
    return &b->vdev;

fail:
    b->vdev.ops = &vblk_ops;
    vblk_fini(&b->vdev);
    return NULL;
}

struct virtio_dev *vblk_new(struct gmem *mem, const struct vblk_config *cfg, char *err,
                            size_t errlen)
{
    int flags = (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    int fd;

    if (!cfg->path || !*cfg->path) {
        snprintf(err, errlen, "no image file given");
        return NULL;
    }
    if (cfg->cache == VBLK_CACHE_NONE || cfg->cache == VBLK_CACHE_DIRECTSYNC)
        flags |= O_DIRECT;
    if (cfg->cache == VBLK_CACHE_WRITETHROUGH || cfg->cache == VBLK_CACHE_DIRECTSYNC)
        flags |= O_DSYNC;
    fd = open(cfg->path, flags);
    if (fd < 0) {
        snprintf(err, errlen, "could not open '%s': %s", cfg->path, strerror(errno));
        return NULL;
    }
    return vblk_new_fd(mem, fd, cfg, err, errlen);
}

int vblk_lock(struct virtio_dev *d, char *err, size_t errlen)
{
    struct vblk *b = vblk_of(d);
    int ret;

    if (b->locked || b->locking == IMAGE_LOCK_OFF)
        return 0;
    ret = image_lock_acquire(b->fd, !b->readonly, b->path, err, errlen);
    if (ret == -ENOTSUP && b->locking == IMAGE_LOCK_AUTO) {
        gw_log("%s: not locked (file.locking=auto)", err);
        b->locking = IMAGE_LOCK_OFF;
        return 0;
    }
    b->locked = ret == 0;
    return ret;
}

void vblk_unlock(struct virtio_dev *d)
{
    struct vblk *b = vblk_of(d);

    if (b->locked)
        image_lock_release(b->fd);
    b->locked = false;
}

bool vblk_locked(const struct virtio_dev *d)
{
    return ((const struct vblk *)d)->locked;
}

int vblk_flush(struct virtio_dev *d)
{
    struct vblk *b = vblk_of(d);

    return b->readonly ? 0 : vblk_sync(b);
}

uint64_t vblk_capacity(const struct virtio_dev *d)
{
    return ((const struct vblk *)d)->capacity;
}

const struct vblk_stats *vblk_stats(const struct virtio_dev *d)
{
    return &((const struct vblk *)d)->stats;
}

int vblk_parse_cache(const char *s, enum vblk_cache *out)
{
    static const char *const names[] = {"writeback", "none", "writethrough", "directsync",
                                        "unsafe"};

    for (unsigned i = 0; i < GW_ARRAY_SIZE(names); i++) {
        if (!strcmp(s, names[i])) {
            *out = (enum vblk_cache)i;
            return 0;
        }
    }
    return -EINVAL;
}

int vblk_parse_detect_zeroes(const char *s, enum vblk_zeroes *out)
{
    if (!strcmp(s, "unmap"))
        *out = VBLK_ZEROES_UNMAP;
    else if (!strcmp(s, "on"))
        *out = VBLK_ZEROES_ON;
    else if (!strcmp(s, "off"))
        *out = VBLK_ZEROES_OFF;
    else
        return -EINVAL;
    return 0;
}
