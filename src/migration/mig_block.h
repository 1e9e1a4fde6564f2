/*
 * Disks in a live migration (QEMU's capability `block`, `migrate` with
 * `blk: true`; docs/state.md, "Disks in the stream"): the source's side
 * reads its images and sends their blocks, the destination's writes them
 * into its own (empty, sparse, same size) images.  Private to the engine.
 *
 * Source: DISKS names the disks; the bulk walks every image's allocated
 * extents (SEEK_DATA/SEEK_HOLE) and sends them in BLOCK runs of up to 16
 * blocks of 64 KiB, each page marked a hole, an allocated zero or data
 * (only data travels); the device marks the blocks the guest writes
 * meanwhile (common/blk_dirty.h), and the rounds send them again with the
 * dirty RAM; once parked, the rest, then DISKSUM: per disk the XXH3-128
 * over the hashes of all its blocks as sent.  When the dirty blocks stop
 * shrinking the job switches on active mirroring: the device makes a guest
 * write wait while more than a bound of blocks are dirty and unsent, so
 * the disk cannot run away from the migration.
 *
 * Destination: the blocks are written as they come (data with pwrite,
 * allocated zeros with FALLOC_FL_ZERO_RANGE, holes punched where an
 * earlier run had written), each block's hash kept; DISKSUM must match
 * the digest of those hashes, and the images are fdatasync'ed, before the
 * destination answers READY.
 */
#ifndef GODWIT_MIGRATION_MIG_BLOCK_H
#define GODWIT_MIGRATION_MIG_BLOCK_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/blk_dirty.h"
#include "migration/migration.h"
#include "state/state_block.h"
#include "state/state_stream.h"

struct mig_blk_disk {
    struct mig_disk info; /* slot, path, size (from the machine) */
    int fd;               /* our own: O_RDONLY (source), O_WRONLY (destination) */
    uint64_t nblocks;
    uint64_t *hash; /* per block: XXH3-64 of its content as sent / written */
    /* source */
    struct blk_dirty track; /* the device marks, the job collects */
    uint64_t *dirty;        /* collected, not sent yet */
    uint32_t *tag;          /* recoverable: 1 + the last CHECKPOINT before the block went */
    /* destination */
    uint8_t *written; /* blocks written by this migration (a hole there is punched) */
};

struct mig_blk {
    unsigned n;
    struct mig_blk_disk d[STATE_DISKS_MAX];
    uint8_t *buf; /* STATE_BLK_RUN blocks, page-aligned */
    struct state_buf b;
    /* source: the bulk's progress */
    unsigned bulk_disk;
    uint64_t bulk_off;
    bool bulk_done;
    bool attached;              /* the devices mark into track */
    bool mirror;                /* active mirroring is on */
    uint64_t mirror_floor;      /* its bound once the backlog is gone (blocks per disk) */
    uint64_t last_new;          /* blocks newly marked at the last collection */
    uint64_t prev_dirty, stuck; /* rounds whose dirty blocks did not shrink */
    /* statistics (relaxed atomics: read by the loop) */
    uint64_t transferred, total, remaining, dirty_rate, dirty_blocks;
};

/* ---- source ---- */

/* The machine's disks that travel (writable virtio-blk images), opened for
 * reading: 0 (n may be 0: nothing to move) or -errno with a reason. */
int mig_blk_src_open(struct mig_blk *k, const struct mig_machine *mm, bool recover, char *err,
                     size_t errlen);
void mig_blk_close(struct mig_blk *k);
/* Loop thread: the devices start (t != NULL) or stop marking. */
void mig_blk_attach(struct mig_blk *k, const struct mig_machine *mm, bool on);
/* DISKS into s. */
int mig_blk_write_disks(struct mig_blk *k, struct state_stream *s);
/* The bulk: from where it stopped, until it is done (true) or stop()
 * says so (false); ckpt is the tag for what goes out. */
bool mig_blk_bulk(struct mig_blk *k, struct state_stream *s, uint32_t tag,
                  bool (*stop)(void *opaque), void *opaque);
/* Collect the devices' marks: the dirty blocks now pending. */
uint64_t mig_blk_collect(struct mig_blk *k);
/* Send the pending dirty blocks (all, unless stop() says so). */
void mig_blk_send_dirty(struct mig_blk *k, struct state_stream *s, uint32_t tag,
                        bool (*stop)(void *opaque), void *opaque);
/* Active mirroring on (0: off): a disk may hold this many dirty and
 * unsent blocks beyond its backlog now; the backlog's allowance shrinks by
 * half of what is sent, so the guest's writes get half the link while it
 * drains, then the bound is limit. */
void mig_blk_mirror(struct mig_blk *k, uint64_t limit);
/* After a resume: blocks sent after checkpoint ckpt go again. */
uint64_t mig_blk_redirty(struct mig_blk *k, uint64_t ckpt);
/* DISKSUM into s. */
int mig_blk_write_sums(struct mig_blk *k, struct state_stream *s);
/* Dirty and unsent blocks right now. */
uint64_t mig_blk_pending(const struct mig_blk *k);

/* ---- destination ---- */

/* DISKS arrived: open our images for writing and compare (count, slots,
 * sizes).  A resumed stream's DISKS must say the same again. */
int mig_blk_dst_disks(struct mig_blk *k, const struct mig_machine *mm,
                      const struct state_disk *disks, unsigned n, char *err, size_t errlen);
/* A BLOCK run: write it.  0 or -errno with a reason. */
int mig_blk_dst_block(struct mig_blk *k, const struct state_blk_view *v, char *err, size_t errlen);
/* DISKSUM: compare every digest, fdatasync the images.  0 or -errno. */
int mig_blk_dst_sums(struct mig_blk *k, const uint64_t (*sums)[2], unsigned n, char *err,
                     size_t errlen);

#endif
