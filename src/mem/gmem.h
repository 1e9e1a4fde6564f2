/*
 * Guest physical RAM: one contiguous host mapping plus a dirty-page bitmap.
 *
 * Every guest-physical range that a device or loader touches goes through
 * gmem_ptr(), the single bounds-checked accessor; nothing else turns a guest
 * address into a host pointer (the hart's TLB caches results of gmem_ptr()).
 *
 * Dirty tracking (for live migration) is one bit per 4 KiB page, set with
 * atomic OR so device threads and harts can mark concurrently.  Harts mark a
 * page when they fill a write-TLB entry for it (TinyEMU style), so only the
 * first store through an entry costs anything; whoever collects the bitmap
 * must then flush the harts' write TLBs (gmem->dirty_gen tells them).
 */
#ifndef GODWIT_MEM_GMEM_H
#define GODWIT_MEM_GMEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"

#define GMEM_PAGE_SHIFT 12
#define GMEM_PAGE_SIZE  (1ull << GMEM_PAGE_SHIFT)

struct gmem {
    uint8_t *host;              /* host mapping of guest RAM */
    uint64_t base;              /* guest-physical address of host[0] */
    uint64_t size;              /* bytes, multiple of GMEM_PAGE_SIZE */
    uint64_t npages;            /* size >> GMEM_PAGE_SHIFT */
    _Atomic uint64_t *dirty;    /* bitmap, one bit per page */
    _Atomic uint64_t dirty_gen; /* bumped each time the bitmap is collected */
    /* Bumped by every gmem_mark_dirty() call: a hart compares it with the
     * marks it made itself to learn whether someone else (a device's DMA,
     * another hart) wrote RAM, e.g. code it has decoded (FENCE.I). */
    _Atomic uint64_t write_gen;
    _Atomic uint32_t harts; /* harts attached (rv_hart_new/rv_hart_free) */
    /* Post-copy (docs/state.md): pages not here yet, one bit per page, only
     * ever cleared (NULL when nothing is missing).  gmem_ptr() of a range
     * with a missing page calls fetch (which returns once every page of the
     * range is here) before it answers. */
    _Atomic uint64_t *missing;
    void (*fetch)(void *opaque, uint64_t first_page, uint64_t last_page);
    void *fetch_opaque;
};

/* Map size bytes of zeroed RAM at guest-physical base. NULL on failure. */
struct gmem *gmem_new(uint64_t base, uint64_t size);
void gmem_free(struct gmem *m);

/* True if [gpa, gpa+len) lies inside RAM (len 0 counts as inside if gpa is). */
static inline bool gmem_contains(const struct gmem *m, uint64_t gpa, uint64_t len)
{
    uint64_t off = gpa - m->base;
    return gpa >= m->base && off < m->size && len <= m->size - off;
}

/* Post-copy: wait until the pages of [off, off+len) (offsets into RAM) are here. */
void gmem_fetch_range(const struct gmem *m, uint64_t off, uint64_t len);

/* True while page p (an index) is missing (post-copy). */
static inline bool gmem_page_missing(const struct gmem *m, uint64_t p)
{
    return m->missing &&
           (atomic_load_explicit(&m->missing[p / 64], memory_order_acquire) >> (p % 64) & 1);
}

/* Host pointer for [gpa, gpa+len), or NULL if any byte is outside RAM.
 * During post-copy it first waits for pages that are not here yet. */
static inline void *gmem_ptr(const struct gmem *m, uint64_t gpa, uint64_t len)
{
    if (!gmem_contains(m, gpa, len))
        return 0;
    if (__builtin_expect(m->missing != 0, 0))
        gmem_fetch_range(m, gpa - m->base, len ? len : 1);
    return m->host + (gpa - m->base);
}

/*
 * Post-copy, destination side: start with the pages set in bitmap missing
 * (taken over: freed by gmem); fetch(opaque, first, last) must return once
 * pages first..last are here (gmem_page_arrived).  0 or -ENOMEM.
 */
int gmem_postcopy_begin(struct gmem *m, uint64_t *missing,
                        void (*fetch)(void *opaque, uint64_t first_page, uint64_t last_page),
                        void *opaque);
/* Page p's contents are in place: clear its missing bit (release). */
void gmem_page_arrived(struct gmem *m, uint64_t p);
/* Every page is here: back to plain accesses.  Only with no access in
 * flight (the run loop's thread, harts not running an instruction). */
void gmem_postcopy_end(struct gmem *m);
/* Pages still missing. */
uint64_t gmem_missing_count(const struct gmem *m);

/* Mark every page overlapping [gpa, gpa+len) dirty. Out-of-range is ignored.
 * Returns how many of those pages were clean (not marked since the last
 * collection): what the caller added to a live migration's work. */
uint64_t gmem_mark_dirty(struct gmem *m, uint64_t gpa, uint64_t len);

/*
 * Which pages have host memory behind them (resident or swapped out): a
 * page that never had any reads as zero and need not be read at all, which
 * matters because reading it would make the kernel allocate (and clear) a
 * huge page for it.  Sets out[i] = 1 for page first+i if it may hold data,
 * for n pages.  Returns 0, or -errno if the kernel cannot tell
 * (/proc/self/pagemap unavailable): then every out[i] is 1.
 */
int gmem_populated(const struct gmem *m, uint64_t first, uint64_t n, uint8_t *out);

/* True if the page (GMEM_PAGE_SIZE bytes, 8-aligned) is all zeroes. */
bool gmem_page_is_zero(const void *page);

/*
 * The one walk over the pages that hold data: populated (gmem_populated)
 * and not all zeroes, in ascending order.  Saving a state, the first pass
 * of a live migration and the state hash all use it, so a page that never
 * had memory behind it is never read (and never allocated by reading).
 *
 *     struct gmem_page_iter it;
 *     gmem_page_iter_init(&it, mem);
 *     for (uint64_t p; (p = gmem_page_iter_next(&it)) != UINT64_MAX;) ...
 *
 * it.next is the first page not looked at yet (progress: npages - next
 * remain).  The walk reads RAM as it is: pages written meanwhile are seen
 * or not, which live migration's dirty tracking covers.
 */
#define GMEM_ITER_CHUNK 4096u /* pages looked up in the pagemap at once */
struct gmem_page_iter {
    const struct gmem *m;
    uint64_t next;     /* next page index to look at */
    uint64_t pop_base; /* page index of pop[0] */
    uint64_t pop_n;    /* valid entries in pop[] */
    uint8_t pop[GMEM_ITER_CHUNK];
};
void gmem_page_iter_init(struct gmem_page_iter *it, const struct gmem *m);
uint64_t gmem_page_iter_next(struct gmem_page_iter *it);

/*
 * Collect the dirty bitmap: OR every page marked since the last
 * collection into bitmap ((npages + 63) / 64 words) and clear the marks;
 * then bump dirty_gen so every hart drops its write-TLB entries before its
 * next store (the next store to any page marks it again).  Call it only
 * where no hart is in the middle of a store (between hart slices).
 * Returns how many pages bitmap holds now.
 */
uint64_t gmem_dirty_collect(struct gmem *m, uint64_t *bitmap);

/* Give every page of RAM back: RAM reads as zero afterwards (a loader
 * starts from it: what a state does not send is zero). */
void gmem_clear(struct gmem *m);

/* Bounds-checked copies; return 0 or -EFAULT. Writes mark pages dirty. */
int gmem_read(const struct gmem *m, uint64_t gpa, void *buf, uint64_t len) gw_must_check;
int gmem_write(struct gmem *m, uint64_t gpa, const void *buf, uint64_t len) gw_must_check;

#endif
