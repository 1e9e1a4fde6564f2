/*
 * Memory kernels: streams over several MiB (fills, copies, STREAM triad),
 * latency-bound pointer chasing through one random cycle, random
 * read-modify-write, one touch per page (TLB-bound), and the many short
 * copies of kernel and libc code. Buffers are far larger than any emulator
 * TLB so the slow paths of address translation get their share.
 */
#include "kern.h"

#define NO_LOOP_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))

/* ---- memset/memcpy shaped like a libc's ---- */

NO_LOOP_CALLS void kern_mem_set(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    uint64_t w = (uint8_t)c * 0x0101010101010101ull;

    while (n && ((uintptr_t)d & 7)) {
        *d++ = (uint8_t)c;
        n--;
    }
    uint64_t *q = (uint64_t *)d;
    for (; n >= 32; n -= 32, q += 4) {
        q[0] = w;
        q[1] = w;
        q[2] = w;
        q[3] = w;
    }
    for (; n >= 8; n -= 8)
        *q++ = w;
    d = (uint8_t *)q;
    while (n--)
        *d++ = (uint8_t)c;
}

NO_LOOP_CALLS void kern_mem_copy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;

    if (n < 16) {
        while (n--)
            *d++ = *s++;
        return;
    }
    while ((uintptr_t)d & 7) {
        *d++ = *s++;
        n--;
    }
    uint64_t *q = (uint64_t *)d;
    unsigned shift = ((uintptr_t)s & 7) * 8;
    if (!shift) {
        const uint64_t *p = (const uint64_t *)s;
        for (; n >= 32; n -= 32, p += 4, q += 4) {
            uint64_t a = p[0], b = p[1], c = p[2], e = p[3];
            q[0] = a;
            q[1] = b;
            q[2] = c;
            q[3] = e;
        }
        for (; n >= 8; n -= 8)
            *q++ = *p++;
        s = (const uint8_t *)p;
    } else {
        /* Misaligned source: aligned loads merged with shifts (little
         * endian). Reads at most the aligned words that hold the source. */
        const uint64_t *p = (const uint64_t *)((uintptr_t)s & ~(uintptr_t)7);
        uint64_t lo = *p++;
        for (; n >= 16; n -= 8) {
            uint64_t hi = *p++;
            *q++ = (lo >> shift) | (hi << (64 - shift));
            lo = hi;
        }
        s = (const uint8_t *)p - 8 + shift / 8;
    }
    d = (uint8_t *)q;
    while (n--)
        *d++ = *s++;
}

NO_LOOP_CALLS void kern_mem_move(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;

    if (d <= s || d >= s + n) {
        kern_mem_copy(dst, src, n);
        return;
    }
    /* Backwards, words when both ends line up, bytes otherwise. */
    d += n;
    s += n;
    if ((((uintptr_t)d ^ (uintptr_t)s) & 7) == 0) {
        while (n && ((uintptr_t)d & 7)) {
            *--d = *--s;
            n--;
        }
        for (; n >= 8; n -= 8) {
            d -= 8;
            s -= 8;
            *(uint64_t *)d = *(const uint64_t *)s;
        }
    }
    while (n--)
        *--d = *--s;
}

static void fill_random(uint64_t *p, size_t words, uint64_t seed)
{
    for (size_t i = 0; i < words; i++)
        p[i] = bench_rand(&seed);
}

/* Every 509th word (a prime stride): reads a sample, not a whole stream. */
static uint64_t sample_words(const uint64_t *p, size_t words, uint64_t h)
{
    for (size_t i = 0; i < words; i += 509)
        h = bench_mix(h, p[i]);
    return h;
}

uint64_t kern_memset(void)
{
    enum { LEN = 8 << 20 };
    uint8_t *buf = bench_alloc(LEN, 4096);
    uint64_t seed = 0x5e7, h = 0;

    long iters = BENCH_ITERS(384);
    for (long it = 0; it < iters; it++) {
        kern_mem_set(buf, (int)it, LEN);
        for (int k = 0; k < 256; k++) { /* ragged starts and lengths */
            uint64_t r = bench_rand(&seed);
            size_t off = r % (LEN - 8192), len = (r >> 32) % 8192;
            kern_mem_set(buf + off, (int)(r >> 24), len);
        }
        h = sample_words((const uint64_t *)buf, LEN / 8, h);
    }
    return h;
}

uint64_t kern_memcpy(void)
{
    enum { LEN = 8 << 20 };
    uint8_t *src = bench_alloc(LEN, 4096);
    uint8_t *dst = bench_alloc(LEN, 4096);
    uint64_t h = 0;

    fill_random((uint64_t *)src, LEN / 8, 0xc0b1);
    long iters = BENCH_ITERS(32);
    for (long it = 0; it < iters; it++) {
        kern_mem_copy(dst, src, LEN);
        h = sample_words((const uint64_t *)dst, LEN / 8, h);
        size_t so = 1 + (size_t)it % 7, doff = (size_t)it % 5;
        kern_mem_copy(dst + doff, src + so, LEN - 16);
        h = sample_words((const uint64_t *)dst, LEN / 8, h);
        /* Overlapping moves both ways, as when a buffer is compacted. */
        kern_mem_move(dst + 4096 + 3, dst + 4096, LEN / 2);
        kern_mem_move(dst + 64, dst + 4096 + 64, LEN / 2);
        h = sample_words((const uint64_t *)dst, LEN / 8, h);
        src[(size_t)it * 4099 % LEN] ^= (uint8_t)h;
    }
    return h;
}

uint64_t kern_stream(void)
{
    enum { WORDS = 256 * 1024, SUMLEN = 16 << 20 };
    uint64_t *a = bench_alloc(WORDS * 8, 4096);
    uint64_t *b = bench_alloc(WORDS * 8, 4096);
    uint64_t *c = bench_alloc(WORDS * 8, 4096);
    uint64_t *big = bench_alloc(SUMLEN, 4096);
    uint64_t h = 0;

    fill_random(b, WORDS, 1);
    fill_random(c, WORDS, 2);
    fill_random(big, SUMLEN / 8, 3);
    long iters = BENCH_ITERS(96);
    for (long it = 0; it < iters; it++) {
        uint64_t k = 3 + (uint64_t)it;
        for (size_t i = 0; i < WORDS; i++) /* triad */
            a[i] = b[i] + k * c[i];
        for (size_t i = 0; i < WORDS; i++) /* scale back into b */
            b[i] = a[i] ^ (c[i] >> 1);
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i < SUMLEN / 8; i += 4) { /* read stream */
            s0 += big[i];
            s1 ^= big[i + 1];
            s2 += big[i + 2];
            s3 ^= big[i + 3];
        }
        h = bench_mix(h, s0 ^ s1 ^ s2 ^ s3);
        h = sample_words(a, WORDS, h);
    }
    return h;
}

struct chase_node {
    struct chase_node *next;
    uint64_t payload[7]; /* one 64-byte line per node */
};

/* Links nodes into a single random cycle (Sattolo) and chases it. */
static uint64_t chase_region(size_t bytes, long steps, uint64_t seed)
{
    size_t n = bytes / sizeof(struct chase_node);
    struct chase_node *nodes = bench_alloc(bytes, 4096);
    uint32_t *perm = bench_alloc(n * sizeof(*perm), 64);

    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = bench_rand(&seed) % i;
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (size_t i = 0; i < n; i++) {
        nodes[i].next = &nodes[perm[i]];
        for (int k = 0; k < 5; k++)
            nodes[i].payload[k] = (i + (size_t)k) * 0x9e3779b9ull;
    }
    struct chase_node *p = &nodes[0];
    uint64_t acc = 0;
    for (long s = 0; s < steps; s += 4) {
        p = p->next;
        acc += p->payload[0];
        p = p->next;
        acc ^= p->payload[1];
        p = p->next;
        acc += p->payload[2];
        p = p->next;
        acc ^= p->payload[3];
        p->payload[4] += (uint64_t)s; /* a dirtying write now and then */
    }
    return bench_mix(acc, (uint64_t)(p - nodes));
}

uint64_t kern_chase(void)
{
    uint64_t h = chase_region(16 << 20, BENCH_ITERS(3000000), 0xc4a5e);
    return bench_mix(h, chase_region(256 << 10, BENCH_ITERS(3000000), 0x5a11));
}

uint64_t kern_gups(void)
{
    enum { WORDS = 1 << 20 }; /* 8 MiB */
    uint64_t *t = bench_alloc(WORDS * 8, 4096);
    uint64_t seed = 0x6005, h = 0;

    for (size_t i = 0; i < WORDS; i++)
        t[i] = i;
    long iters = BENCH_ITERS(80000000);
    for (long i = 0; i < iters; i++) {
        uint64_t r = bench_rand(&seed);
        t[r & (WORDS - 1)] ^= r;
    }
    return sample_words(t, WORDS, h);
}

uint64_t kern_pages(void)
{
    enum { PAGES = 8192, PAGE = 4096 }; /* 32 MiB */
    uint8_t *mem = bench_alloc((size_t)PAGES * PAGE, PAGE);
    uint32_t *order = bench_alloc(PAGES * sizeof(*order), 64);
    uint64_t seed = 0x9a9e, h = 0;

    for (uint32_t i = 0; i < PAGES; i++)
        order[i] = i;
    for (uint32_t i = PAGES - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(bench_rand(&seed) % (i + 1));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    kern_mem_set(mem, 0, (size_t)PAGES * PAGE); /* first touch of every page */
    long iters = BENCH_ITERS(960);
    for (long it = 0; it < iters; it++) {
        size_t off = ((size_t)it * 72) % (PAGE - 8) & ~(size_t)7;
        uint64_t acc = 0;
        for (size_t i = 0; i < PAGES; i++) {
            uint64_t *w = (uint64_t *)(mem + (size_t)order[i] * PAGE + off);
            acc += *w;
            *w = acc ^ (uint64_t)it;
        }
        /* clear_page() on a few pages, as an OS does on allocation. */
        for (size_t i = (size_t)it % 64; i < PAGES; i += 512)
            kern_mem_set(mem + (size_t)order[i] * PAGE, 0, PAGE);
        h = bench_mix(h, acc);
    }
    return h;
}

uint64_t kern_smallcopy(void)
{
    enum { LEN = 1 << 20 };
    uint8_t *a = bench_alloc(LEN, 4096);
    uint8_t *b = bench_alloc(LEN, 4096);
    uint64_t seed = 0x5c0e, h = 0;

    fill_random((uint64_t *)a, LEN / 8, 7);
    fill_random((uint64_t *)b, LEN / 8, 8);
    long iters = BENCH_ITERS(4000000);
    for (long i = 0; i < iters; i++) {
        uint64_t r = bench_rand(&seed);
        /* Mostly short: 1..64 bytes, sometimes up to 1 KiB. */
        size_t len = (r & 0x300) ? 1 + (r & 63) : 1 + ((r >> 16) & 1023);
        size_t so = (r >> 24) % (LEN - 1024), d = (r >> 44) % (LEN - 1024);
        if (i & 1)
            kern_mem_copy(b + d, a + so, len);
        else
            kern_mem_copy(a + d, b + so, len);
        h += b[d] ^ ((uint64_t)a[so] << 8);
    }
    h = sample_words((const uint64_t *)a, LEN / 8, h);
    return sample_words((const uint64_t *)b, LEN / 8, h);
}
