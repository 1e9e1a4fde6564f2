/* Guest RAM mapping and dirty bitmap; see gmem.h for the contract. */
#include "mem/gmem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

struct gmem *gmem_new(uint64_t base, uint64_t size)
{
    struct gmem *m;

    if (size == 0 || (size & (GMEM_PAGE_SIZE - 1)) || base + size < base)
        return NULL;
    m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m->host == MAP_FAILED)
        goto out_free;
    /* Transparent huge pages, as QEMU asks for guest RAM: far fewer host TLB
     * misses on the hart's memory path.  Advisory; failure is harmless. */
    (void)madvise(m->host, size, MADV_HUGEPAGE);
    m->base = base;
    m->size = size;
    m->npages = size >> GMEM_PAGE_SHIFT;
    m->dirty = calloc((m->npages + 63) / 64, sizeof(uint64_t));
    if (!m->dirty)
        goto out_unmap;
    return m;

out_unmap:
    munmap(m->host, size);
out_free:
    free(m);
    return NULL;
}

void gmem_free(struct gmem *m)
{
    if (!m)
        return;
    munmap(m->host, m->size);
    free((void *)m->dirty);
    free((void *)m->missing);
    free(m);
}

void gmem_fetch_range(const struct gmem *m, uint64_t off, uint64_t len)
{
    uint64_t first = off >> GMEM_PAGE_SHIFT, last = (off + len - 1) >> GMEM_PAGE_SHIFT;

    for (uint64_t p = first; p <= last; p++)
        if (gmem_page_missing(m, p)) {
            m->fetch(m->fetch_opaque, p, last);
            return; /* fetch returns once first..last are all here */
        }
}

int gmem_postcopy_begin(struct gmem *m, uint64_t *missing,
                        void (*fetch)(void *opaque, uint64_t first_page, uint64_t last_page),
                        void *opaque)
{
    m->fetch = fetch;
    m->fetch_opaque = opaque;
    atomic_thread_fence(memory_order_release);
    m->missing = (_Atomic uint64_t *)missing;
    return 0;
}

void gmem_page_arrived(struct gmem *m, uint64_t p)
{
    if (m->missing && p < m->npages)
        atomic_fetch_and_explicit(&m->missing[p / 64], ~(1ull << (p % 64)), memory_order_release);
}

void gmem_postcopy_end(struct gmem *m)
{
    _Atomic uint64_t *b = m->missing;

    m->missing = NULL;
    free((void *)b);
}

uint64_t gmem_missing_count(const struct gmem *m)
{
    uint64_t n = 0;

    for (uint64_t w = 0; m->missing && w < (m->npages + 63) / 64; w++)
        n += (uint64_t)__builtin_popcountll(atomic_load(&m->missing[w]));
    return n;
}

uint64_t gmem_mark_dirty(struct gmem *m, uint64_t gpa, uint64_t len)
{
    uint64_t first, last, newly = 0;

    if (len == 0 || !gmem_contains(m, gpa, 1))
        return 0;
    atomic_fetch_add_explicit(&m->write_gen, 1, memory_order_relaxed);
    if (!gmem_contains(m, gpa, len))
        len = m->size - (gpa - m->base);
    first = (gpa - m->base) >> GMEM_PAGE_SHIFT;
    last = (gpa - m->base + len - 1) >> GMEM_PAGE_SHIFT;
    /* The OR returns the old word: it tells a clean page from one already
     * marked (per-hart dirty rates, docs/state.md "Throttling").  Always a
     * locked read-modify-write, never test-then-set: a device thread's
     * write must be visible before its mark, or a collection between the
     * two could miss it. */
    for (uint64_t p = first; p <= last; p++) {
        uint64_t bit = 1ull << (p % 64);

        if (!(atomic_fetch_or_explicit(&m->dirty[p / 64], bit, memory_order_relaxed) & bit))
            newly++;
    }
    return newly;
}

int gmem_read(const struct gmem *m, uint64_t gpa, void *buf, uint64_t len)
{
    const void *p = gmem_ptr(m, gpa, len);

    if (!p)
        return -EFAULT;
    memcpy(buf, p, len);
    return 0;
}

int gmem_write(struct gmem *m, uint64_t gpa, const void *buf, uint64_t len)
{
    void *p = gmem_ptr(m, gpa, len);

    if (!p)
        return -EFAULT;
    memcpy(p, buf, len);
    gmem_mark_dirty(m, gpa, len);
    return 0;
}

/* /proc/self/pagemap: one u64 per virtual page; bit 63 present, bit 62
 * swapped (Documentation/admin-guide/mm/pagemap.rst). */
#define GMEM_PM_PRESENT (1ull << 63)
#define GMEM_PM_SWAPPED (1ull << 62)
#define GMEM_PM_CHUNK   4096u

int gmem_populated(const struct gmem *m, uint64_t first, uint64_t n, uint8_t *out)
{
    uint64_t buf[GMEM_PM_CHUNK];
    uint64_t vpage = ((uintptr_t)m->host >> GMEM_PAGE_SHIFT) + first;
    int fd, ret = 0;

    if (first > m->npages || n > m->npages - first)
        return -EINVAL;
    fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ret = -errno;
        goto all;
    }
    for (uint64_t done = 0; done < n;) {
        uint64_t c = n - done < GMEM_PM_CHUNK ? n - done : GMEM_PM_CHUNK;
        ssize_t r = pread(fd, buf, c * 8, (off_t)((vpage + done) * 8));

        if (r != (ssize_t)(c * 8)) {
            ret = r < 0 ? -errno : -EIO;
            close(fd);
            goto all;
        }
        for (uint64_t i = 0; i < c; i++)
            out[done + i] = (buf[i] & (GMEM_PM_PRESENT | GMEM_PM_SWAPPED)) != 0;
        done += c;
    }
    close(fd);
    return 0;
all:
    memset(out, 1, n);
    return ret;
}

bool gmem_page_is_zero(const void *page)
{
    const uint64_t *p = page;

    /* OR 8 words per step: the compiler vectorises it; bail out early on
     * the first non-zero block since most non-zero pages differ early */
    for (unsigned i = 0; i < GMEM_PAGE_SIZE / 8; i += 8) {
        if (p[i] | p[i + 1] | p[i + 2] | p[i + 3] | p[i + 4] | p[i + 5] | p[i + 6] | p[i + 7])
            return false;
    }
    return true;
}

void gmem_page_iter_init(struct gmem_page_iter *it, const struct gmem *m)
{
    it->m = m;
    it->next = 0;
    it->pop_base = 0;
    it->pop_n = 0;
}

uint64_t gmem_page_iter_next(struct gmem_page_iter *it)
{
    const struct gmem *m = it->m;

    while (it->next < m->npages) {
        uint64_t p = it->next++;

        if (p - it->pop_base >= it->pop_n) {
            it->pop_base = p;
            it->pop_n = m->npages - p < GMEM_ITER_CHUNK ? m->npages - p : GMEM_ITER_CHUNK;
            (void)gmem_populated(m, p, it->pop_n, it->pop); /* on error: all populated */
        }
        if (it->pop[p - it->pop_base] && !gmem_page_is_zero(m->host + p * GMEM_PAGE_SIZE))
            return p;
    }
    return UINT64_MAX;
}

uint64_t gmem_dirty_collect(struct gmem *m, uint64_t *bitmap)
{
    uint64_t words = (m->npages + 63) / 64, n = 0;

    for (uint64_t w = 0; w < words; w++) {
        bitmap[w] |= atomic_exchange_explicit(&m->dirty[w], 0, memory_order_acq_rel);
        n += (uint64_t)__builtin_popcountll(bitmap[w]);
    }
    atomic_fetch_add(&m->dirty_gen, 1);
    return n;
}

void gmem_clear(struct gmem *m)
{
    /* anonymous private memory: MADV_DONTNEED gives fresh zero pages */
    if (madvise(m->host, m->size, MADV_DONTNEED) < 0)
        memset(m->host, 0, m->size);
}
