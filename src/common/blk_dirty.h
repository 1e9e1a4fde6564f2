/*
 * Dirty tracking of a disk during a live migration with its disks
 * (docs/state.md, "Disks in the stream"): the device that writes the image
 * marks the 64 KiB blocks it changed; the migration job collects them, and
 * may bound how much may be dirty and unsent at once (active mirroring:
 * a write then waits until the job has sent enough).  Shared by the
 * virtio-blk device (the run loop's thread) and the migration job (its own
 * thread) through atomics only.
 */
#ifndef GODWIT_COMMON_BLK_DIRTY_H
#define GODWIT_COMMON_BLK_DIRTY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define BLK_DIRTY_SIZE 65536u /* bytes per tracked block (STATE_BLK_SIZE) */

struct blk_dirty {
    _Atomic uint64_t *bits; /* one bit per block, (nblocks + 63) / 64 words */
    uint64_t nblocks;
    _Atomic uint64_t marked; /* bits set since they were last collected */
    _Atomic uint64_t unsent; /* the job's: blocks collected and not sent yet */
    _Atomic uint64_t limit;  /* active mirroring: a write waits while marked + unsent > limit */
    _Atomic uint64_t waits;  /* writes that had to wait (statistics) */
};

/* Device side: bytes [off, off + len) changed (after the write completed). */
static inline void blk_dirty_mark(struct blk_dirty *t, uint64_t off, uint64_t len)
{
    if (!t || !len)
        return;
    for (uint64_t b = off / BLK_DIRTY_SIZE, last = (off + len - 1) / BLK_DIRTY_SIZE;
         b <= last && b < t->nblocks; b++) {
        uint64_t bit = 1ull << (b % 64);

        if (!(atomic_fetch_or(&t->bits[b / 64], bit) & bit))
            atomic_fetch_add(&t->marked, 1);
    }
}

/* Device side: may a write go ahead now?  (Always, unless mirroring bounds
 * the dirty data and that bound is reached.) */
static inline bool blk_dirty_room(const struct blk_dirty *t)
{
    uint64_t limit = t ? atomic_load(&t->limit) : 0;

    return !limit || atomic_load(&t->marked) + atomic_load(&t->unsent) <= limit;
}

/* Job side: move the marks into bitmap (OR), clearing them; the number of
 * blocks newly collected. */
static inline uint64_t blk_dirty_collect(struct blk_dirty *t, uint64_t *bitmap)
{
    uint64_t n = 0;

    for (uint64_t w = 0; w < (t->nblocks + 63) / 64; w++) {
        uint64_t v = atomic_exchange(&t->bits[w], 0);

        if (v) {
            n += (uint64_t)__builtin_popcountll(v);
            bitmap[w] |= v;
        }
    }
    atomic_fetch_sub(&t->marked, n);
    return n;
}

/* Job side: blocks [first, end) are about to be read and sent whole: forget
 * their marks (a write that completes after this marks them again, so
 * nothing newer than the read is lost); the number of marks dropped. */
static inline uint64_t blk_dirty_forget(struct blk_dirty *t, uint64_t first, uint64_t end)
{
    uint64_t n = 0;

    if (end > t->nblocks)
        end = t->nblocks;
    while (first < end) {
        unsigned lo = (unsigned)(first % 64);
        unsigned hi = end - first >= 64 - lo ? 64 : lo + (unsigned)(end - first);
        uint64_t mask = (hi == 64 ? ~0ull : (1ull << hi) - 1) & ~((1ull << lo) - 1);
        uint64_t v = atomic_fetch_and(&t->bits[first / 64], ~mask) & mask;

        n += (uint64_t)__builtin_popcountll(v);
        first += hi - lo;
    }
    if (n)
        atomic_fetch_sub(&t->marked, n);
    return n;
}

#endif
