/*
 * Unit tests for the disks of a live stream (src/state/state_block.c):
 * DISKS, BLOCK and DISKSUM payloads round trip, and hostile ones are
 * refused with a reason (a block past the end, a disk that does not
 * exist, a malformed map, data that does not match the map, a digest for
 * another number of disks); the digest is that of the blocks' hashes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board_check.h"
#include "common/blk_dirty.h"
#include "state/state_block.h"

static bool has(const char *s, const char *word)
{
    return s && strstr(s, word);
}

/* Decode a payload into v; 0 or the error, its reason in msg. */
static int decode(const struct state_buf *w, const struct state_disk *d, unsigned n,
                  struct state_blk_view *v, char *msg, size_t msglen)
{
    struct state_buf r;
    int ret;

    state_buf_reader(&r, w->data, w->len);
    ret = state_blk_decode(&r, d, n, v);
    snprintf(msg, msglen, "%s", state_buf_msg(&r));
    return ret;
}

static void test_disks(void)
{
    struct state_disk in[2] = {{.slot = 1, .size = 1 << 30}, {.slot = 3, .size = 4096 * 3 + 512}};
    struct state_disk out[STATE_DISKS_MAX];
    struct state_buf w, r;
    unsigned n = 0;

    state_buf_init(&w);
    state_disks_encode(&w, in, 2);
    state_buf_reader(&r, w.data, w.len);
    CHECK(state_disks_decode(&r, out, &n) == 0 && n == 2 && out[1].slot == 3 &&
              out[1].size == in[1].size,
          "DISKS: two disks round trip");
    /* hostile: none, too many, a size not a multiple of 512, a slot twice */
    struct {
        uint32_t count;
        struct state_disk d[2];
        const char *word;
    } bad[] = {{0, {{0}}, "0 disks"},
               {STATE_DISKS_MAX + 1, {{0}}, "disks (1 to"},
               {1, {{.slot = 0, .size = 1000}}, "of 1000 bytes"},
               {2, {{.slot = 2, .size = 4096}, {.slot = 2, .size = 4096}}, "slot 2 twice"}};
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        state_buf_reset(&w);
        state_put_u32(&w, bad[i].count);
        for (uint32_t k = 0; k < bad[i].count && k < 2; k++) {
            state_put_u32(&w, bad[i].d[k].slot);
            state_put_u64(&w, bad[i].d[k].size);
        }
        state_buf_reader(&r, w.data, w.len);
        CHECK(state_disks_decode(&r, out, &n) == -EPROTO && has(state_buf_msg(&r), bad[i].word),
              "DISKS refused: %s (%s)", bad[i].word, state_buf_msg(&r));
    }
    state_buf_fini(&w);
}

static void test_blocks(void)
{
    struct state_disk disks[1] = {{.slot = 0, .size = 3 * STATE_BLK_SIZE + 8192}};
    uint8_t map[(STATE_BLK_RUN + 1) * STATE_BLK_PAGES / 4] = {0}; /* room for a run too long */
    uint8_t *data = calloc(STATE_BLK_RUN * STATE_BLK_PAGES, STATE_BLK_PAGE);
    struct state_blk_view v;
    struct state_buf w;
    char msg[300];

    state_buf_init(&w);
    /* two blocks: page 0 data, page 1 allocated zero, page 17 data */
    state_blk_set_kind(map, 0, STATE_BLK_DATA);
    state_blk_set_kind(map, 1, STATE_BLK_ZERO);
    state_blk_set_kind(map, 17, STATE_BLK_DATA);
    memset(data, 0xab, 2 * STATE_BLK_PAGE);
    state_blk_encode(&w, 0, STATE_BLK_SIZE, 2, map, data, 2);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == 0 && v.blocks == 2 && v.ndata == 2 &&
              v.offset == STATE_BLK_SIZE && state_blk_kind(v.map, 1) == STATE_BLK_ZERO &&
              v.data[0] == 0xab,
          "BLOCK: a run of two blocks round trips (%s)", msg);
    /* the last, partial block: pages past the end must be holes */
    memset(map, 0, sizeof(map));
    state_blk_set_kind(map, 1, STATE_BLK_DATA);
    state_buf_reset(&w);
    state_blk_encode(&w, 0, 3 * STATE_BLK_SIZE, 1, map, data, 1);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == 0, "BLOCK: the partial last block (%s)",
          msg);
    state_blk_set_kind(map, 2, STATE_BLK_DATA);
    state_buf_reset(&w);
    state_blk_encode(&w, 0, 3 * STATE_BLK_SIZE, 1, map, data, 2);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == -EPROTO && has(msg, "past the end"),
          "BLOCK refused: data past the disk's end (%s)", msg);
    /* a run past the end, a disk that does not exist, unaligned, too long */
    memset(map, 0, sizeof(map));
    state_buf_reset(&w);
    state_blk_encode(&w, 0, 4 * STATE_BLK_SIZE, 1, map, data, 0);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == -EPROTO && has(msg, "past the end"),
          "BLOCK refused: a block past the end (%s)", msg);
    state_buf_reset(&w);
    state_blk_encode(&w, 3, 0, 1, map, data, 0);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == -EPROTO && has(msg, "disk 3"),
          "BLOCK refused: a disk that does not exist (%s)", msg);
    state_buf_reset(&w);
    state_blk_encode(&w, 0, 4096, 1, map, data, 0);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == -EPROTO && has(msg, "aligned"),
          "BLOCK refused: unaligned (%s)", msg);
    state_buf_reset(&w);
    state_blk_encode(&w, 0, 0, STATE_BLK_RUN + 1, map, data, 0);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == -EPROTO,
          "BLOCK refused: a run longer than 16 blocks (%s)", msg);
    /* a map with kind 3, data that does not match the map */
    memset(map, 0, sizeof(map));
    state_blk_set_kind(map, 5, 3);
    state_buf_reset(&w);
    state_blk_encode(&w, 0, 0, 1, map, data, 0);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == -EPROTO && has(msg, "kind 3"),
          "BLOCK refused: a page of kind 3 (%s)", msg);
    memset(map, 0, sizeof(map));
    state_blk_set_kind(map, 5, STATE_BLK_DATA);
    state_buf_reset(&w);
    state_blk_encode(&w, 0, 0, 1, map, data, 2);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == -EPROTO && has(msg, "data pages"),
          "BLOCK refused: more data than the map says (%s)", msg);
    state_buf_reset(&w);
    state_blk_encode(&w, 0, 0, 1, map, data, 0);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == -EPROTO && has(msg, "data pages"),
          "BLOCK refused: less data than the map says (%s)", msg);
    state_buf_reset(&w);
    state_put_u32(&w, 0);
    state_put_u32(&w, 1);
    state_put_u64(&w, 0);
    state_put_u32(&w, 1);
    CHECK(decode(&w, disks, 1, &v, msg, sizeof(msg)) == -EPROTO && has(msg, "flags"),
          "BLOCK refused: flags (%s)", msg);
    state_buf_fini(&w);
    free(data);
}

static void test_digest(void)
{
    uint64_t h[3], a[2], b[2], sums[2][2], back[2][2];
    uint8_t *blk = calloc(1, STATE_BLK_SIZE);
    struct state_buf w, r;

    h[0] = h[1] = h[2] = state_blk_zero_hash();
    CHECK(state_blk_hash(blk) == h[0], "digest: a zero block hashes as the zero hash");
    state_blk_digest(h, 3, a);
    blk[100] = 1;
    h[1] = state_blk_hash(blk);
    state_blk_digest(h, 3, b);
    CHECK(a[0] != b[0] || a[1] != b[1], "digest: one byte changes the digest");
    sums[0][0] = a[0], sums[0][1] = a[1], sums[1][0] = b[0], sums[1][1] = b[1];
    state_buf_init(&w);
    state_disksum_encode(&w, (const uint64_t(*)[2])sums, 2);
    state_buf_reader(&r, w.data, w.len);
    CHECK(state_disksum_decode(&r, back, 2) == 0 && back[1][1] == b[1], "DISKSUM round trips");
    state_buf_reader(&r, w.data, w.len);
    CHECK(state_disksum_decode(&r, back, 1) == -EPROTO && has(state_buf_msg(&r), "for 2 disks"),
          "DISKSUM refused: for another number of disks (%s)", state_buf_msg(&r));
    state_buf_fini(&w);
    free(blk);
}

/* The device's marks (src/common/blk_dirty.h): collect moves them, forget
 * drops exactly the range the bulk is about to send, mirroring's bound. */
static void test_dirty(void)
{
    _Atomic uint64_t bits[3] = {0};
    uint64_t got[3] = {0};
    struct blk_dirty t = {.bits = bits, .nblocks = 150};

    blk_dirty_mark(&t, 0, 1);                           /* block 0 */
    blk_dirty_mark(&t, 63 * BLK_DIRTY_SIZE - 1, 2);     /* 62, 63 */
    blk_dirty_mark(&t, 64 * BLK_DIRTY_SIZE, 1);         /* 64 */
    blk_dirty_mark(&t, 129 * BLK_DIRTY_SIZE, 1);        /* 129 */
    blk_dirty_mark(&t, 149 * BLK_DIRTY_SIZE, 10 << 20); /* 149, the rest past the end */
    blk_dirty_mark(&t, 0, BLK_DIRTY_SIZE);              /* 0 again: counted once */
    CHECK(atomic_load(&t.marked) == 6, "dirty: 6 blocks marked (%llu)",
          (unsigned long long)atomic_load(&t.marked));
    CHECK(blk_dirty_forget(&t, 63, 130) == 3, "dirty: forget [63, 130) drops 63, 64, 129");
    CHECK(atomic_load(&t.marked) == 3, "dirty: 3 marks left");
    CHECK(blk_dirty_forget(&t, 140, 1000) == 1, "dirty: forget stops at the disk's end");
    CHECK(blk_dirty_collect(&t, got) == 2 && got[0] == ((1ull << 62) | 1) && !got[1] && !got[2],
          "dirty: collect moves the marks that are left (0 and 62)");
    CHECK(atomic_load(&t.marked) == 0 && !bits[0], "dirty: collected marks are cleared");
    atomic_store(&t.limit, 2);
    atomic_store(&t.unsent, 1);
    blk_dirty_mark(&t, 5 * BLK_DIRTY_SIZE, 1);
    CHECK(blk_dirty_room(&t), "dirty: mirroring lets a write through at its bound");
    blk_dirty_mark(&t, 6 * BLK_DIRTY_SIZE, 1);
    CHECK(!blk_dirty_room(&t), "dirty: mirroring holds a write past its bound");
    atomic_store(&t.limit, 0);
    CHECK(blk_dirty_room(&t), "dirty: no bound without mirroring");
}

int main(void)
{
    test_dirty();
    test_disks();
    test_blocks();
    test_digest();
    return board_check_done();
}
