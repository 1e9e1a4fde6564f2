/*
 * virtio-blk (virtio 1.2 §5.2) backed by a raw image file.
 *
 * Requests are processed synchronously when the driver notifies the queue
 * (docs/virtio.md): preadv/pwritev move data straight between the file and
 * guest RAM, so no request is ever in flight when the machine pauses.
 *
 * Sparse images stay sparse: DISCARD and WRITE_ZEROES punch holes
 * (fallocate PUNCH_HOLE | KEEP_SIZE; ZERO_RANGE when the driver forbids
 * unmapping), and with detect-zeroes=unmap (the default) whole 4 KiB
 * blocks of zeros in a write are punched instead of written.
 *
 * Errors from the host (EIO, ENOSPC, EBADF, ...) reach the guest as
 * VIRTIO_BLK_S_IOERR; requests the device does not know get UNSUPP; a
 * request without room for its header or status puts the device into
 * NEEDS_RESET (it is a broken driver, not an I/O error).
 */
#ifndef GODWIT_VIRTIO_VIRTIO_BLK_H
#define GODWIT_VIRTIO_VIRTIO_BLK_H

#include "common/blk_dirty.h"
#include "common/image_lock.h"
#include "virtio/virtio.h"

/* Feature bits (virtio 1.2 §5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_GEOMETRY     4
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_CONFIG_WCE   11
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types and status values (§5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK           0
#define VIRTIO_BLK_S_IOERR        1
#define VIRTIO_BLK_S_UNSUPP       2

#define VIRTIO_BLK_WZ_F_UNMAP 1  /* write-zeroes flag: the device may deallocate */
#define VIRTIO_BLK_ID_BYTES   20 /* GET_ID answer: serial, NUL-padded */
#define VBLK_SECTOR           512u

/* Limits the device advertises (and enforces). */
#define VBLK_QUEUE_SIZE      256u                  /* as QEMU's queue-size */
#define VBLK_SEG_MAX         (VBLK_QUEUE_SIZE - 2) /* as QEMU: header and status take two */
#define VBLK_SIZE_MAX        (1u << 20)            /* bytes per segment */
#define VBLK_DISCARD_SEGS    32u                   /* ranges per DISCARD / WRITE_ZEROES */
#define VBLK_DISCARD_SECTORS 0x3fffffu             /* sectors per range (2 GiB - 512) */
#define VBLK_DISCARD_ALIGN   8u                    /* sectors: 4 KiB, the host page */
/* The most one read or write may move (what seg_max x size_max allow):
 * bigger ones fail with IOERR, so one request cannot hold the vCPU thread
 * for gigabytes of I/O. */
#define VBLK_MAX_REQUEST ((uint64_t)VBLK_SEG_MAX * VBLK_SIZE_MAX)

enum vblk_cache {
    VBLK_CACHE_WRITEBACK = 0, /* host page cache; FLUSH -> fdatasync (QEMU's default) */
    VBLK_CACHE_NONE,          /* O_DIRECT; FLUSH -> fdatasync */
    VBLK_CACHE_WRITETHROUGH,  /* O_DSYNC: every write is stable */
    VBLK_CACHE_DIRECTSYNC,    /* O_DIRECT | O_DSYNC */
    VBLK_CACHE_UNSAFE,        /* FLUSH is a no-op */
};

enum vblk_zeroes {
    VBLK_ZEROES_UNMAP = 0, /* zero blocks in writes are punched (default here) */
    VBLK_ZEROES_ON,        /* zero blocks become ZERO_RANGE (no data written) */
    VBLK_ZEROES_OFF,       /* writes are written as they are (QEMU's default) */
};

struct vblk_config {
    const char *path; /* image file (opened by vblk_new), or a name for messages */
    const char *id;   /* drive id, for messages; may be NULL */
    bool readonly;    /* readonly=on: VIRTIO_BLK_F_RO, writes fail with IOERR */
    bool discard;     /* discard=unmap (default here) vs ignore */
    enum vblk_cache cache;
    enum vblk_zeroes detect_zeroes;
    const char *serial;           /* GET_ID answer (at most 20 bytes used); NULL = none */
    enum image_lock_mode locking; /* file.locking= (vblk_lock) */
};

/* Statistics (host side, not guest state). */
struct vblk_stats {
    uint64_t reads, writes, flushes, discards, write_zeroes, get_ids;
    uint64_t read_bytes, write_bytes;
    uint64_t punched_bytes; /* zeros turned into holes (discard, write-zeroes, detect) */
    uint64_t errors;        /* requests answered IOERR */
    uint64_t unsupported;   /* requests answered UNSUPP */
};

/*
 * Open cfg->path (O_RDWR, or O_RDONLY with readonly; O_DIRECT / O_DSYNC as
 * the cache mode says) and build the device.  NULL with a reason in err.
 */
struct virtio_dev *vblk_new(struct gmem *mem, const struct vblk_config *cfg, char *err,
                            size_t errlen);

/* The same on an open fd, which the device takes over (closed by
 * virtio_dev_free, or on failure).  Tests use it to hand the device fds
 * that fail in real ways (opened write-only, a full device, ...). */
struct virtio_dev *vblk_new_fd(struct gmem *mem, int fd, const struct vblk_config *cfg, char *err,
                               size_t errlen);

/*
 * Image locks (common/image_lock.h), taken when the machine is about to
 * run, not when the device opens the image (an -incoming VM's source still
 * holds them).  vblk_lock takes a writer's or (readonly=on) a reader's
 * locks: 0 (also when they are held already, or file.locking=off, or with
 * auto on a file system without OFD locks, said once on stderr), -EAGAIN
 * with the holder named in err, or -errno.  vblk_unlock drops them.
 * vblk_flush makes every write stable (fdatasync; not with cache=unsafe).
 */
int vblk_lock(struct virtio_dev *d, char *err, size_t errlen) gw_must_check;

/* A live migration with its disks: mark written blocks in t (NULL: stop,
 * and complete a write that waited for room).  Loop thread. */
void vblk_set_dirty(struct virtio_dev *d, struct blk_dirty *t);
/* The image: its path (as opened), size in bytes, read-only; returns its fd. */
int vblk_image(const struct virtio_dev *d, const char **path, uint64_t *size, bool *readonly);
void vblk_unlock(struct virtio_dev *d);
bool vblk_locked(const struct virtio_dev *d);
int vblk_flush(struct virtio_dev *d) gw_must_check;

/* Capacity in 512-byte sectors. */
uint64_t vblk_capacity(const struct virtio_dev *d);

const struct vblk_stats *vblk_stats(const struct virtio_dev *d);

/* Parse QEMU's cache= and detect-zeroes= values; 0 or -EINVAL. */
int vblk_parse_cache(const char *s, enum vblk_cache *out) gw_must_check;
int vblk_parse_detect_zeroes(const char *s, enum vblk_zeroes *out) gw_must_check;

#endif
