/*
 * Disks in a live migration stream: see state_block.h.
 */
#include "state/state_block.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>

void state_disks_encode(struct state_buf *b, const struct state_disk *d, unsigned n)
{
    state_put_u32(b, n);
    for (unsigned i = 0; i < n; i++) {
        state_put_u32(b, d[i].slot);
        state_put_u64(b, d[i].size);
    }
}

int state_disks_decode(struct state_buf *b, struct state_disk *d, unsigned *n)
{
    uint32_t count = state_get_u32(b);

    if (!b->err && (count == 0 || count > STATE_DISKS_MAX))
        state_buf_fail(b, -EPROTO, "DISKS: %u disks (1 to %u)", count, STATE_DISKS_MAX);
    for (uint32_t i = 0; i < count && !b->err; i++) {
        d[i].slot = state_get_u32(b);
        d[i].size = state_get_u64(b);
        if (!b->err && (d[i].size == 0 || d[i].size % 512 || d[i].size > STATE_DISK_SIZE_MAX))
            state_buf_fail(b, -EPROTO, "DISKS: disk %u of %llu bytes", i,
                           (unsigned long long)d[i].size);
        for (uint32_t k = 0; k < i && !b->err; k++)
            if (d[k].slot == d[i].slot)
                state_buf_fail(b, -EPROTO, "DISKS: slot %u twice", d[i].slot);
    }
    if (state_buf_expect_end(b, "DISKS") < 0)
        return b->err;
    *n = count;
    return 0;
}

void state_blk_encode(struct state_buf *b, uint32_t disk, uint64_t offset, uint32_t blocks,
                      const uint8_t *map, const uint8_t *data, uint32_t ndata)
{
    state_put_u32(b, disk);
    state_put_u32(b, 0);
    state_put_u64(b, offset);
    state_put_u32(b, blocks);
    state_put_bytes(b, map, (size_t)blocks * STATE_BLK_PAGES / 4);
    state_put_bytes(b, data, (size_t)ndata * STATE_BLK_PAGE);
}

int state_blk_decode(struct state_buf *b, const struct state_disk *disks, unsigned ndisks,
                     struct state_blk_view *v)
{
    uint32_t flags, pages;
    uint64_t size, end;

    memset(v, 0, sizeof(*v));
    v->disk = state_get_u32(b);
    flags = state_get_u32(b);
    v->offset = state_get_u64(b);
    v->blocks = state_get_u32(b);
    if (b->err)
        return b->err;
    if (v->disk >= ndisks) {
        state_buf_fail(b, -EPROTO, "BLOCK for disk %u; the stream has %u", v->disk, ndisks);
        return b->err;
    }
    if (flags) {
        state_buf_fail(b, -EPROTO, "BLOCK with flags 0x%x", flags);
        return b->err;
    }
    if (v->blocks == 0 || v->blocks > STATE_BLK_RUN || v->offset % STATE_BLK_SIZE) {
        state_buf_fail(b, -EPROTO, "BLOCK of %u blocks at %llu (1 to %u, aligned to %u)", v->blocks,
                       (unsigned long long)v->offset, STATE_BLK_RUN, STATE_BLK_SIZE);
        return b->err;
    }
    size = disks[v->disk].size;
    end = v->offset + (uint64_t)v->blocks * STATE_BLK_SIZE;
    if (v->offset >= size || end > state_blk_count(size) * STATE_BLK_SIZE) {
        state_buf_fail(b, -EPROTO,
                       "BLOCK at %llu + %u blocks: past the end of disk %u (%llu bytes)",
                       (unsigned long long)v->offset, v->blocks, v->disk, (unsigned long long)size);
        return b->err;
    }
    pages = v->blocks * STATE_BLK_PAGES;
    if (state_buf_left(b) < pages / 4) {
        state_buf_fail(b, -EPROTO, "BLOCK: its page map is cut short");
        return b->err;
    }
    v->map = b->data + b->pos;
    b->pos += pages / 4;
    for (uint32_t p = 0; p < pages; p++) {
        unsigned k = state_blk_kind(v->map, p);
        uint64_t at = v->offset + (uint64_t)p * STATE_BLK_PAGE;

        if (k == 3) {
            state_buf_fail(b, -EPROTO, "BLOCK: page %u of the map has kind 3", p);
            return b->err;
        }
        if (at >= size && k != STATE_BLK_HOLE) {
            state_buf_fail(b, -EPROTO, "BLOCK: a page at byte %llu, past the end of disk %u",
                           (unsigned long long)at, v->disk);
            return b->err;
        }
        if (k == STATE_BLK_DATA)
            v->ndata++;
    }
    if (state_buf_left(b) != (size_t)v->ndata * STATE_BLK_PAGE) {
        state_buf_fail(b, -EPROTO, "BLOCK: %zu bytes of data for %u data pages", state_buf_left(b),
                       v->ndata);
        return b->err;
    }
    v->data = b->data + b->pos;
    b->pos += (size_t)v->ndata * STATE_BLK_PAGE;
    return 0;
}

uint64_t state_blk_hash(const void *block)
{
    return XXH3_64bits(block, STATE_BLK_SIZE);
}

uint64_t state_blk_zero_hash(void)
{
    static const uint8_t zero[STATE_BLK_SIZE];

    return XXH3_64bits(zero, sizeof(zero));
}

void state_blk_digest(const uint64_t *hashes, uint64_t nblocks, uint64_t out[2])
{
    XXH128_hash_t h = XXH3_128bits(hashes, nblocks * sizeof(uint64_t));

    out[0] = h.low64;
    out[1] = h.high64;
}

void state_disksum_encode(struct state_buf *b, const uint64_t (*sums)[2], unsigned n)
{
    state_put_u32(b, n);
    for (unsigned i = 0; i < n; i++) {
        state_put_u64(b, sums[i][0]);
        state_put_u64(b, sums[i][1]);
    }
}

int state_disksum_decode(struct state_buf *b, uint64_t (*sums)[2], unsigned n)
{
    uint32_t count = state_get_u32(b);

    if (!b->err && count != n)
        state_buf_fail(b, -EPROTO, "DISKSUM for %u disks; the stream has %u", count, n);
    for (uint32_t i = 0; i < count && !b->err; i++) {
        sums[i][0] = state_get_u64(b);
        sums[i][1] = state_get_u64(b);
    }
    return state_buf_expect_end(b, "DISKSUM");
}
