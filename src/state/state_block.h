/*
 * Disks in a live migration stream (docs/state.md, "Disks in the stream"):
 * the payloads of the DISKS, BLOCK and DISKSUM sections, encoded and
 * checked here so that the sender, the loader, the reader and the tests
 * share one reading.
 *
 *   DISKS    u32 count (1..STATE_DISKS_MAX), count x (u32 slot, u64 size
 *            in bytes, a multiple of 512)
 *   BLOCK    u32 disk (an index into DISKS), u32 flags (0), u64 offset (a
 *            multiple of STATE_BLK_SIZE), u32 blocks (1..STATE_BLK_RUN),
 *            the page map (2 bits per 4 KiB page, blocks x 16 pages, four
 *            pages a byte, the first page in the low bits: 0 a hole, 1 an
 *            allocated zero page, 2 data, 3 invalid), then the data pages in
 *            order.  The run may end past the disk's size only by the last
 *            block's tail (a disk whose size is not a multiple of the block),
 *            whose pages must then be holes.
 *   DISKSUM  u32 count (as DISKS), count x XXH3-128 (lo u64, hi u64) of the
 *            disk's blocks: see state_blk_digest.
 */
#ifndef GODWIT_STATE_STATE_BLOCK_H
#define GODWIT_STATE_STATE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "state/state_buf.h"

#define STATE_BLK_SIZE      65536u /* the unit of dirty tracking and of the digest */
#define STATE_BLK_PAGE      4096u
#define STATE_BLK_PAGES     (STATE_BLK_SIZE / STATE_BLK_PAGE) /* 16 */
#define STATE_BLK_RUN       16u                               /* blocks per BLOCK section: 1 MiB */
#define STATE_DISKS_MAX     8u
#define STATE_DISK_SIZE_MAX (1ull << 50) /* 1 PiB: a sane bound for an image */

enum { STATE_BLK_HOLE = 0, STATE_BLK_ZERO = 1, STATE_BLK_DATA = 2 };

struct state_disk {
    uint32_t slot;
    uint64_t size;
};

/* A decoded BLOCK payload; map and data point into the payload buffer. */
struct state_blk_view {
    uint32_t disk, blocks;
    uint64_t offset;
    const uint8_t *map; /* blocks * STATE_BLK_PAGES / 4 bytes */
    const uint8_t *data;
    uint32_t ndata; /* data pages */
};

static inline unsigned state_blk_kind(const uint8_t *map, unsigned page)
{
    return (map[page / 4] >> (2 * (page % 4))) & 3u;
}

static inline void state_blk_set_kind(uint8_t *map, unsigned page, unsigned kind)
{
    map[page / 4] =
        (uint8_t)((map[page / 4] & ~(3u << (2 * (page % 4)))) | kind << (2 * (page % 4)));
}

void state_disks_encode(struct state_buf *b, const struct state_disk *d, unsigned n);
/* 0 with *n disks in d[STATE_DISKS_MAX], or -EPROTO with the reason in b. */
int state_disks_decode(struct state_buf *b, struct state_disk *d, unsigned *n) gw_must_check;

/* Encode a BLOCK: map (blocks * 4 bytes) and the data pages (ndata of
 * them, in page order). */
void state_blk_encode(struct state_buf *b, uint32_t disk, uint64_t offset, uint32_t blocks,
                      const uint8_t *map, const uint8_t *data, uint32_t ndata);
/* Decode and check a BLOCK against the disks: 0 with v filled, or -EPROTO
 * with the reason in b. */
int state_blk_decode(struct state_buf *b, const struct state_disk *disks, unsigned ndisks,
                     struct state_blk_view *v) gw_must_check;

/* The digest of a disk from its blocks' hashes: XXH3-128 over the u64
 * XXH3-64 of each STATE_BLK_SIZE block's content in order (the last one
 * zero-padded).  state_blk_hash hashes one block; state_blk_zero_hash is
 * that of an all-zero block. */
uint64_t state_blk_hash(const void *block);
uint64_t state_blk_zero_hash(void);
void state_blk_digest(const uint64_t *hashes, uint64_t nblocks, uint64_t out[2]);

void state_disksum_encode(struct state_buf *b, const uint64_t (*sums)[2], unsigned n);
int state_disksum_decode(struct state_buf *b, uint64_t (*sums)[2], unsigned n) gw_must_check;

/* Blocks in a disk of size bytes. */
static inline uint64_t state_blk_count(uint64_t size)
{
    return (size + STATE_BLK_SIZE - 1) / STATE_BLK_SIZE;
}

#endif
