/*
 * Unit tests for the RAM part of the state stream (src/state/state_format.c):
 * zero-page detection, RAM batches (runs, raw and LZ4, round trips) and
 * zero runs, with hostile payloads: every refusal must say why, and a
 * refused batch must leave RAM untouched.
 */
#include <inttypes.h>

#include "mem/gmem.h"
#include "state_stream_test.h"

/* ---- RAM --------------------------------------------------------------------- */

#define NPAGES 16u

static void test_page_is_zero(void)
{
    static const unsigned offs[] = {0, 1, 7, 8, 63, 64, 65, 511, 2048, 4032, 4088, 4095};
    uint8_t *page = aligned_alloc(STATE_PAGE_SIZE, STATE_PAGE_SIZE);
    unsigned wrong = 0;

    memset(page, 0, STATE_PAGE_SIZE);
    CHECK(gmem_page_is_zero(page), "zero: a zero page is zero");
    for (unsigned i = 0; i < GW_ARRAY_SIZE(offs); i++) {
        page[offs[i]] = 1;
        CHECK(!gmem_page_is_zero(page), "zero: one 0x01 at offset %u", offs[i]);
        page[offs[i]] = 0x80;
        CHECK(!gmem_page_is_zero(page), "zero: one 0x80 at offset %u", offs[i]);
        page[offs[i]] = 0;
    }
    for (unsigned off = 0; off < STATE_PAGE_SIZE; off++) {
        page[off] = (uint8_t)(1u << (off % 8));
        wrong += gmem_page_is_zero(page);
        page[off] = 0;
    }
    CHECK(wrong == 0, "zero: every one of the 4096 offsets seen");
    CHECK(gmem_page_is_zero(page), "zero: zero again after restoring");
    free(page);
}

struct ram_fixture {
    uint8_t *ram;     /* NPAGES source pages */
    uint8_t *dst;     /* NPAGES destination pages */
    uint8_t *scratch; /* STATE_RAM_BATCH pages */
    struct state_ram_encoder e;
};

static void fill_compressible(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)("the quick brown fox "[(i + seed) % 20]);
}

/* Encode pages[] of f->ram, decode into a zeroed f->dst; check it. */
static void ram_roundtrip(struct ram_fixture *f, const char *what, const uint32_t *pages,
                          unsigned n, bool compress, int want_enc)
{
    struct state_buf w, r;
    unsigned bad = 0;
    int ret;

    state_buf_init(&w);
    state_ram_encode(&f->e, f->ram, pages, n, compress, &w);
    CHECK(!state_buf_error(&w) && w.len > 16, "ram %s: encoded (%zu bytes)", what, w.len);
    CHECK(w.data[0] == want_enc && w.data[1] == 0 && w.data[2] == 0 && w.data[3] == 0,
          "ram %s: encoding %s", what, want_enc == STATE_RAM_LZ4 ? "LZ4" : "raw");
    if (want_enc == STATE_RAM_RAW)
        CHECK(w.len > (size_t)n * STATE_PAGE_SIZE, "ram %s: raw holds every byte", what);
    else
        CHECK(w.len < (size_t)n * STATE_PAGE_SIZE / 2, "ram %s: LZ4 is smaller", what);

    memset(f->dst, 0, (size_t)NPAGES * STATE_PAGE_SIZE);
    state_buf_reader(&r, w.data, w.len);
    ret = state_ram_decode(&r, f->dst, NPAGES, f->scratch);
    CHECK(ret == (int)n && !state_buf_error(&r) && state_buf_left(&r) == 0,
          "ram %s: decoded %d pages \"%s\"", what, ret, state_buf_msg(&r));
    for (unsigned p = 0; p < NPAGES; p++) {
        bool sent = false;
        const uint8_t *d = f->dst + (size_t)p * STATE_PAGE_SIZE;

        for (unsigned i = 0; i < n; i++)
            sent |= pages[i] == p;
        if (sent ? memcmp(d, f->ram + (size_t)p * STATE_PAGE_SIZE, STATE_PAGE_SIZE) != 0
                 : !gmem_page_is_zero(d))
            bad++;
    }
    CHECK(bad == 0, "ram %s: sent pages equal, the others still zero", what);

    state_buf_reader(&r, w.data, w.len);
    ret = state_ram_decode(&r, NULL, NPAGES, f->scratch);
    CHECK(ret == (int)n, "ram %s: validate-only decode (ram NULL)", what);
    state_buf_reader(&r, w.data, w.len);
    ret = state_ram_decode(&r, NULL, pages[n - 1], f->scratch);
    CHECK(ret < 0, "ram %s: refused by a RAM one page too small", what);
    state_buf_fini(&w);
}

static void test_ram_roundtrip(struct ram_fixture *f)
{
    static const uint32_t gaps[] = {0, 1, 2, 7, 9, 10};
    static const uint32_t last[] = {NPAGES - 1};
    static const uint8_t want_runs[] = {
        6, 0, 0, 0, 3, 0, 0, 0,                      /* n, nruns */
        0, 0, 0, 0, 3, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, /* (0,3) (7,1) */
        0, 9, 0, 0, 0, 2, 0, 0, 0,                   /* (9,2) */
    };
    uint32_t all[NPAGES];
    struct state_buf w;

    for (unsigned i = 0; i < NPAGES; i++)
        all[i] = i;
    fill_random(f->ram, (size_t)NPAGES * STATE_PAGE_SIZE);

    state_buf_init(&w);
    state_ram_encode(&f->e, f->ram, gaps, 6, false, &w);
    CHECK(w.len == 4 + sizeof(want_runs) + 4 + 6 * STATE_PAGE_SIZE &&
              !memcmp(w.data + 4, want_runs, sizeof(want_runs)),
          "ram: run list of pages 0,1,2,7,9,10 is (0,3)(7,1)(9,2)");
    CHECK(w.data[36] == 0x00 && w.data[37] == 0x60 && w.data[38] == 0 && w.data[39] == 0 &&
              !memcmp(w.data + 40, f->ram, 3 * STATE_PAGE_SIZE) &&
              !memcmp(w.data + 40 + 3 * STATE_PAGE_SIZE, f->ram + 7 * STATE_PAGE_SIZE,
                      STATE_PAGE_SIZE),
          "ram: raw length 24576 then the pages in order");
    state_buf_fini(&w);

    ram_roundtrip(f, "gaps raw", gaps, 6, false, STATE_RAM_RAW);
    ram_roundtrip(f, "gaps random+compress", gaps, 6, true, STATE_RAM_RAW);
    ram_roundtrip(f, "last page", last, 1, false, STATE_RAM_RAW);
    ram_roundtrip(f, "all random+compress", all, NPAGES, true, STATE_RAM_RAW);
    fill_compressible(f->ram, (size_t)NPAGES * STATE_PAGE_SIZE, 3);
    ram_roundtrip(f, "gaps text+compress", gaps, 6, true, STATE_RAM_LZ4);
    ram_roundtrip(f, "gaps text no compress", gaps, 6, false, STATE_RAM_RAW);
    ram_roundtrip(f, "all text+compress", all, NPAGES, true, STATE_RAM_LZ4);
    ram_roundtrip(f, "last text+compress", last, 1, true, STATE_RAM_LZ4);

    /* a full batch of STATE_RAM_BATCH pages (a bigger RAM) */
    {
        size_t big = (size_t)(STATE_RAM_BATCH + 8) * STATE_PAGE_SIZE;
        uint8_t *src = xmalloc(big), *dst = calloc(1, big);
        uint32_t pages[STATE_RAM_BATCH];
        struct state_buf r;
        int ret;

        for (unsigned i = 0; i < STATE_RAM_BATCH; i++)
            pages[i] = i + (i >= 100 ? 8 : 0); /* one gap */
        for (unsigned c = 0; c < 2; c++) {
            if (c)
                fill_compressible(src, big, 1);
            else
                fill_random(src, big);
            memset(dst, 0, big);
            state_buf_init(&w);
            state_ram_encode(&f->e, src, pages, STATE_RAM_BATCH, true, &w);
            state_buf_reader(&r, w.data, w.len);
            ret = state_ram_decode(&r, dst, STATE_RAM_BATCH + 8, f->scratch);
            CHECK(ret == (int)STATE_RAM_BATCH && w.data[0] == (c ? STATE_RAM_LZ4 : STATE_RAM_RAW) &&
                      !memcmp(dst, src, 100 * STATE_PAGE_SIZE) &&
                      !memcmp(dst + 108 * STATE_PAGE_SIZE, src + 108 * STATE_PAGE_SIZE,
                              (size_t)(STATE_RAM_BATCH - 100) * STATE_PAGE_SIZE) &&
                      gmem_page_is_zero(dst + 100 * STATE_PAGE_SIZE) &&
                      gmem_page_is_zero(dst + 107 * STATE_PAGE_SIZE),
                  "ram: a full batch of %u %s pages", STATE_RAM_BATCH, c ? "text" : "random");
            state_buf_fini(&w);
        }
        free(src);
        free(dst);
    }
}

/* A RAM payload header (encoding, reserved, n, nruns). */
static void ram_hdr(struct state_buf *w, uint8_t enc, uint32_t n, uint32_t nruns)
{
    state_buf_init(w);
    state_put_u8(w, enc);
    state_put_u8(w, 0);
    state_put_u16(w, 0);
    state_put_u32(w, n);
    state_put_u32(w, nruns);
}

static void ram_run(struct state_buf *w, uint32_t first, uint32_t count)
{
    state_put_u32(w, first);
    state_put_u32(w, count);
}

/* dlen then dlen bytes of data (0x5a). */
static void ram_data(struct state_buf *w, uint32_t dlen)
{
    uint8_t *p = xmalloc(dlen ? dlen : 1);

    memset(p, 0x5a, dlen);
    state_put_u32(w, dlen);
    state_put_bytes(w, p, dlen);
    free(p);
}

/* The payload in w must be refused, say why, and leave RAM untouched. */
static void ram_refused(struct ram_fixture *f, const char *what, struct state_buf *w)
{
    size_t size = (size_t)NPAGES * STATE_PAGE_SIZE;
    uint8_t *before = xmalloc(size);
    struct state_buf r;
    int ret, ret2;

    fill_random(f->dst, size);
    memcpy(before, f->dst, size);
    state_buf_reader(&r, w->data, w->len);
    ret = state_ram_decode(&r, f->dst, NPAGES, f->scratch);
    CHECK(ret < 0 && ret == state_buf_error(&r) && state_buf_msg(&r)[0] &&
              !memcmp(before, f->dst, size),
          "ram refused: %s, RAM untouched \"%s\"", what, state_buf_msg(&r));
    state_buf_reader(&r, w->data, w->len);
    ret2 = state_ram_decode(&r, NULL, NPAGES, f->scratch);
    CHECK(ret2 == ret, "ram refused: %s, also validate-only", what);
    state_buf_fini(w);
    free(before);
}

static void test_ram_hostile(struct ram_fixture *f)
{
    static const uint32_t two[] = {3, 4};
    static const uint32_t three[] = {3, 4, 5};
    struct state_buf w, lz;
    uint32_t dlen;

    ram_hdr(&w, STATE_RAM_RAW, 0, 0);
    ram_data(&w, 0);
    ram_refused(f, "n=0", &w);
    ram_hdr(&w, STATE_RAM_RAW, 0, 1);
    ram_run(&w, 0, 1);
    ram_data(&w, 0);
    ram_refused(f, "n=0 with a run", &w);
    ram_hdr(&w, STATE_RAM_RAW, STATE_RAM_BATCH + 1, 1);
    ram_run(&w, 0, STATE_RAM_BATCH + 1);
    ram_refused(f, "n=STATE_RAM_BATCH+1", &w);
    ram_hdr(&w, STATE_RAM_RAW, 0xffffffffu, 1);
    ram_refused(f, "n=0xffffffff", &w);
    ram_hdr(&w, STATE_RAM_RAW, 2, 3);
    ram_run(&w, 0, 1);
    ram_run(&w, 1, 1);
    ram_run(&w, 2, 1);
    ram_data(&w, 2 * STATE_PAGE_SIZE);
    ram_refused(f, "nruns > n", &w);
    ram_hdr(&w, STATE_RAM_RAW, 1, 0);
    ram_data(&w, STATE_PAGE_SIZE);
    ram_refused(f, "nruns=0", &w);
    ram_hdr(&w, STATE_RAM_RAW, 2, 1);
    ram_run(&w, NPAGES - 1, 2);
    ram_data(&w, 2 * STATE_PAGE_SIZE);
    ram_refused(f, "a run past npages_ram", &w);
    ram_hdr(&w, STATE_RAM_RAW, 1, 1);
    ram_run(&w, NPAGES, 1);
    ram_data(&w, STATE_PAGE_SIZE);
    ram_refused(f, "a run starting at npages_ram", &w);
    ram_hdr(&w, STATE_RAM_RAW, 2, 1);
    ram_run(&w, 0xffffffffu, 2);
    ram_data(&w, 2 * STATE_PAGE_SIZE);
    ram_refused(f, "a run whose end wraps 32 bits", &w);
    ram_hdr(&w, STATE_RAM_RAW, 2, 2);
    ram_run(&w, 0, 1);
    ram_run(&w, NPAGES, 1);
    ram_data(&w, 2 * STATE_PAGE_SIZE);
    ram_refused(f, "a good run then one past RAM", &w);
    ram_hdr(&w, STATE_RAM_RAW, 3, 2);
    ram_run(&w, 0, 1);
    ram_run(&w, 2, 1);
    ram_data(&w, 3 * STATE_PAGE_SIZE);
    ram_refused(f, "runs cover 2 of n=3", &w);
    ram_hdr(&w, STATE_RAM_RAW, 2, 2);
    ram_run(&w, 0, 2);
    ram_run(&w, 4, 1);
    ram_data(&w, 2 * STATE_PAGE_SIZE);
    ram_refused(f, "runs cover 3 of n=2", &w);
    ram_hdr(&w, STATE_RAM_RAW, 2, 2);
    ram_run(&w, 0, 0xffffffffu);
    ram_run(&w, 4, 3);
    ram_data(&w, 2 * STATE_PAGE_SIZE);
    ram_refused(f, "a run of 0xffffffff pages", &w);
    ram_hdr(&w, STATE_RAM_RAW, 2, 2);
    ram_run(&w, 0, 0);
    ram_run(&w, 4, 2);
    ram_data(&w, 2 * STATE_PAGE_SIZE);
    ram_refused(f, "a run of count 0", &w);
    ram_hdr(&w, 2, 1, 1);
    ram_run(&w, 0, 1);
    ram_data(&w, STATE_PAGE_SIZE);
    ram_refused(f, "unknown encoding 2", &w);
    ram_hdr(&w, 0xff, 1, 1);
    ram_run(&w, 0, 1);
    ram_data(&w, STATE_PAGE_SIZE);
    ram_refused(f, "unknown encoding 255", &w);
    ram_hdr(&w, STATE_RAM_RAW, 2, 1);
    ram_run(&w, 0, 2);
    ram_data(&w, STATE_PAGE_SIZE);
    ram_refused(f, "raw data one page short", &w);
    ram_hdr(&w, STATE_RAM_RAW, 1, 1);
    ram_run(&w, 0, 1);
    ram_data(&w, STATE_PAGE_SIZE + 1);
    ram_refused(f, "raw data one byte long", &w);
    ram_hdr(&w, STATE_RAM_RAW, 1, 1);
    ram_run(&w, 0, 1);
    state_put_u32(&w, STATE_PAGE_SIZE);
    state_put_bytes(&w, f->ram, STATE_PAGE_SIZE - 1);
    ram_refused(f, "raw data length says more than is there", &w);
    ram_hdr(&w, STATE_RAM_RAW, 1, 1);
    ram_run(&w, 0, 1);
    state_put_u32(&w, 0xffffffffu);
    ram_refused(f, "data length 0xffffffff", &w);
    ram_hdr(&w, STATE_RAM_RAW, 1, 1);
    ram_run(&w, 0, 1);
    ram_data(&w, STATE_PAGE_SIZE);
    state_put_u8(&w, 0);
    ram_refused(f, "a trailing byte", &w);
    ram_hdr(&w, STATE_RAM_RAW, 2, 2);
    ram_run(&w, 0, 1);
    ram_refused(f, "a truncated run list", &w);
    ram_hdr(&w, STATE_RAM_RAW, 1, 1);
    ram_run(&w, 0, 1);
    ram_refused(f, "no data length", &w);
    state_buf_init(&w);
    state_put_u8(&w, STATE_RAM_RAW);
    state_put_u16(&w, 0);
    ram_refused(f, "a truncated batch header", &w);
    state_buf_init(&w);
    ram_refused(f, "an empty payload", &w);

    /* LZ4: take a good payload and damage it */
    fill_compressible(f->ram, (size_t)NPAGES * STATE_PAGE_SIZE, 5);
    state_buf_init(&lz);
    state_ram_encode(&f->e, f->ram, two, 2, true, &lz);
    CHECK(lz.data[0] == STATE_RAM_LZ4, "ram lz4: the base payload is LZ4");
    dlen = (uint32_t)(lz.len - 24);
    CHECK(lz.data[20] == (uint8_t)dlen && lz.data[21] == (uint8_t)(dlen >> 8),
          "ram lz4: its data length is the rest");

    state_buf_init(&w);
    state_put_bytes(&w, lz.data, lz.len);
    memset(w.data + 24, 0xff, dlen);
    ram_refused(f, "LZ4 data all 0xff", &w);
    state_buf_init(&w);
    state_put_bytes(&w, lz.data, lz.len);
    fill_random(w.data + 24, dlen);
    ram_refused(f, "LZ4 data random", &w);
    state_buf_init(&w);
    state_put_bytes(&w, lz.data, lz.len);
    w.data[24] = 0xf0; /* first token: literal run of >= 15 continued */
    w.data[25] = 0xff;
    ram_refused(f, "LZ4 first token corrupted", &w);
    state_buf_init(&w);
    state_put_bytes(&w, lz.data, 20);
    state_put_u32(&w, dlen - 1);
    state_put_bytes(&w, lz.data + 24, dlen - 1);
    ram_refused(f, "LZ4 data truncated by a byte", &w);
    state_buf_init(&w);
    state_put_bytes(&w, lz.data, 20);
    state_put_u32(&w, dlen / 2);
    state_put_bytes(&w, lz.data + 24, dlen / 2);
    ram_refused(f, "LZ4 data cut in half", &w);
    state_buf_init(&w);
    state_put_bytes(&w, lz.data, lz.len);
    state_put_u8(&w, 0);
    ram_refused(f, "LZ4 with a trailing byte", &w);
    state_buf_init(&w);
    state_put_bytes(&w, lz.data, 20);
    state_put_u32(&w, 0);
    ram_refused(f, "LZ4 with no data", &w);
    state_buf_fini(&lz);

    /* LZ4 data of the wrong size: 3 pages claimed as 2, 1 page claimed as 2 */
    state_buf_init(&lz);
    state_ram_encode(&f->e, f->ram, three, 3, true, &lz);
    state_buf_init(&w);
    state_put_bytes(&w, lz.data, lz.len);
    w.data[4] = 2;  /* n */
    w.data[16] = 2; /* the one run's count */
    ram_refused(f, "LZ4 decoding to 3 pages for n=2", &w);
    state_buf_fini(&lz);
    state_buf_init(&lz);
    state_ram_encode(&f->e, f->ram, three, 1, true, &lz);
    state_buf_init(&w);
    state_put_bytes(&w, lz.data, lz.len);
    w.data[4] = 2;
    w.data[16] = 2;
    ram_refused(f, "LZ4 decoding to 1 page for n=2", &w);
    state_buf_fini(&lz);

    /* the unchanged LZ4 payload still decodes (the damage was the test's) */
    {
        struct state_buf r;
        int ret;

        state_buf_init(&lz);
        state_ram_encode(&f->e, f->ram, two, 2, true, &lz);
        state_buf_reader(&r, lz.data, lz.len);
        ret = state_ram_decode(&r, f->dst, NPAGES, f->scratch);
        CHECK(ret == 2 && !memcmp(f->dst + 3 * STATE_PAGE_SIZE, f->ram + 3 * STATE_PAGE_SIZE,
                                  2 * STATE_PAGE_SIZE),
              "ram lz4: the undamaged payload decodes");
        state_buf_fini(&lz);
    }
    /* a buffer already in error */
    {
        struct state_buf r;
        int ret;

        state_buf_init(&lz);
        state_ram_encode(&f->e, f->ram, two, 2, false, &lz);
        state_buf_reader(&r, lz.data, lz.len);
        state_buf_fail(&r, -EIO, "earlier");
        ret = state_ram_decode(&r, f->dst, NPAGES, f->scratch);
        CHECK(ret == -EIO && !strcmp(state_buf_msg(&r), "earlier"),
              "ram: a buffer in error stays in error");
        state_buf_fini(&lz);
    }
}

/* ---- zero runs --------------------------------------------------------------- */

struct zero_calls {
    unsigned n;
    uint64_t first[8], count[8];
};

static void zero_cb(void *opaque, uint64_t first, uint64_t count)
{
    struct zero_calls *z = opaque;

    if (z->n < 8) {
        z->first[z->n] = first;
        z->count[z->n] = count;
    }
    z->n++;
}

static void zero_refused(const char *what, struct state_buf *w)
{
    struct zero_calls z = {0};
    struct state_buf r;
    int ret;

    state_buf_reader(&r, w->data, w->len);
    ret = state_zero_decode(&r, NPAGES, zero_cb, &z);
    CHECK(ret < 0 && ret == state_buf_error(&r) && state_buf_msg(&r)[0] && z.n == 0,
          "zero refused: %s, no run applied \"%s\"", what, state_buf_msg(&r));
    state_buf_fini(w);
}

static void test_zero_runs(void)
{
    struct zero_calls z = {0};
    struct state_buf w, r;
    int ret;

    state_buf_init(&w);
    state_put_u32(&w, 3);
    ram_run(&w, 1, 2);
    ram_run(&w, 10, 5);
    ram_run(&w, NPAGES - 1, 1);
    state_buf_reader(&r, w.data, w.len);
    ret = state_zero_decode(&r, NPAGES, zero_cb, &z);
    CHECK(ret == 8 && z.n == 3 && z.first[0] == 1 && z.count[0] == 2 && z.first[1] == 10 &&
              z.count[1] == 5 && z.first[2] == NPAGES - 1 && z.count[2] == 1,
          "zero: three runs called back in order, 8 pages");
    state_buf_reader(&r, w.data, w.len);
    ret = state_zero_decode(&r, NPAGES, NULL, NULL);
    CHECK(ret == 8, "zero: validate only (fn NULL)");
    state_buf_fini(&w);

    state_buf_init(&w);
    state_put_u32(&w, 0);
    state_buf_reader(&r, w.data, w.len);
    z.n = 0;
    ret = state_zero_decode(&r, NPAGES, zero_cb, &z);
    CHECK(ret == 0 && z.n == 0, "zero: no runs");
    state_buf_fini(&w);

    state_buf_init(&w);
    state_put_u32(&w, 3);
    ram_run(&w, 1, 2);
    ram_run(&w, 4, 2);
    zero_refused("count 3 with 2 runs", &w);
    state_buf_init(&w);
    state_put_u32(&w, 1);
    ram_run(&w, 1, 2);
    ram_run(&w, 4, 2);
    zero_refused("count 1 with 2 runs", &w);
    state_buf_init(&w);
    state_put_u32(&w, 0xffffffffu);
    ram_run(&w, 1, 2);
    zero_refused("count 0xffffffff", &w);
    state_buf_init(&w);
    state_put_u32(&w, 1);
    ram_run(&w, 1, 2);
    state_put_u8(&w, 0);
    zero_refused("a trailing byte", &w);
    state_buf_init(&w);
    state_put_u16(&w, 1);
    zero_refused("a truncated count", &w);
    state_buf_init(&w);
    state_put_u32(&w, 1);
    ram_run(&w, 1, 0);
    zero_refused("a run of 0 pages", &w);
    state_buf_init(&w);
    state_put_u32(&w, 1);
    ram_run(&w, NPAGES - 1, 2);
    zero_refused("a run past RAM", &w);
    state_buf_init(&w);
    state_put_u32(&w, 1);
    ram_run(&w, 0xffffffffu, 0xffffffffu);
    zero_refused("a run at 0xffffffff", &w);
    state_buf_init(&w);
    state_put_u32(&w, 2);
    ram_run(&w, 0, 1);
    ram_run(&w, NPAGES, 1);
    zero_refused("a good run then one past RAM", &w);
}

/* Every ZERO section in the stream at fd: decoded runs appended to z (up to
 * 8 kept), pages summed; *nsec sections, *runs_max the most runs in one. */
static uint64_t zero_sections(int fd, struct zero_calls *z, unsigned *nsec, uint32_t *runs_max)
{
    size_t len;
    uint8_t *file = fd_contents(fd, &len);
    struct rd r = rd_open(file, len);
    struct state_section sec;
    struct state_buf b;
    uint64_t pages = 0;

    *nsec = 0;
    *runs_max = 0;
    state_buf_init(&b);
    while (!state_stream_at_eof(r.s) && state_read_section(r.s, &sec) == 0 &&
           sec.type == STATE_SEC_ZERO && state_read_payload(r.s, &sec, &b) == 0) {
        uint32_t nruns = b.len >= 4 ? (uint32_t)(b.data[0] | b.data[1] << 8 | b.data[2] << 16 |
                                                 (uint32_t)b.data[3] << 24)
                                    : 0;
        int ret = state_zero_decode(&b, 1ull << 32, zero_cb, z);

        if (ret < 0 || sec.version != 1 || sec.name[0]) {
            pages = UINT64_MAX;
            break;
        }
        pages += (uint64_t)ret;
        (*nsec)++;
        if (nruns > *runs_max)
            *runs_max = nruns;
    }
    state_buf_fini(&b);
    rd_close(&r);
    free(file);
    return pages;
}

static void test_zero_encoder(void)
{
    struct state_zero_encoder enc;
    struct zero_calls z = {0};
    struct state_stream *w;
    unsigned nsec;
    uint32_t runs_max;
    uint64_t pages;
    int fd = mem_fd(), ret = 0;

    /* runs form from ascending pages; a gap or a step back starts a run */
    state_zero_encoder_init(&enc);
    w = state_stream_new(fd, false);
    static const uint32_t add[] = {1, 2, 3, 7, 9, 10, 5, 0xfffffffe, 0xffffffff};
    for (size_t i = 0; i < sizeof(add) / sizeof(add[0]); i++)
        ret |= state_zero_add(&enc, w, add[i]);
    CHECK(ret == 0 && state_stream_offset(w) == 0, "zero enc: nothing written before the flush");
    ret |= state_zero_flush(&enc, w);
    ret |= state_zero_flush(&enc, w); /* nothing pending: no section */
    ret |= state_stream_flush(w);
    state_stream_free(w);
    pages = zero_sections(fd, &z, &nsec, &runs_max);
    CHECK(ret == 0 && nsec == 1 && runs_max == 5 && pages == 9 && z.n == 5 && z.first[0] == 1 &&
              z.count[0] == 3 && z.first[1] == 7 && z.count[1] == 1 && z.first[2] == 9 &&
              z.count[2] == 2 && z.first[3] == 5 && z.count[3] == 1 && z.first[4] == 0xfffffffe &&
              z.count[4] == 2,
          "zero enc: one section, runs 1+3, 7+1, 9+2, 5+1, 0xfffffffe+2 (%u sections, %" PRIu64
          " pages)",
          nsec, pages);
    CHECK(fd_size(fd) == 12 + 4 + 5 * 8, "zero enc: section of 12 + 4 + 5 runs x 8 bytes");
    close(fd);

    /* a long run stays one run; many short ones split at STATE_ZERO_RUNS */
    fd = mem_fd();
    w = state_stream_new(fd, false);
    for (uint32_t p = 100; p < 100 + 100000; p++)
        ret |= state_zero_add(&enc, w, p);
    ret |= state_zero_flush(&enc, w);
    for (uint32_t i = 0; i < 2 * STATE_ZERO_RUNS + 1; i++)
        ret |= state_zero_add(&enc, w, 2 * i);
    ret |= state_zero_flush(&enc, w);
    ret |= state_stream_flush(w);
    state_stream_free(w);
    memset(&z, 0, sizeof(z));
    pages = zero_sections(fd, &z, &nsec, &runs_max);
    CHECK(ret == 0 && nsec == 4 && runs_max == STATE_ZERO_RUNS &&
              pages == 100000 + 2 * STATE_ZERO_RUNS + 1 && z.first[0] == 100 &&
              z.count[0] == 100000 && z.first[1] == 0 && z.count[1] == 1 && z.first[2] == 2,
          "zero enc: 100000 pages in one run, then %u single pages in sections of at most %u "
          "runs (%u sections)",
          2 * STATE_ZERO_RUNS + 1, STATE_ZERO_RUNS, nsec);
    close(fd);

    /* a failed stream stays failed; the encoder says so */
    fd = mem_fd();
    w = state_stream_new(fd, false);
    state_stream_fail(w, -EIO, "injected");
    ret = state_zero_add(&enc, w, 1);
    CHECK(ret == -EIO && state_zero_flush(&enc, w) == -EIO && enc.nruns == 0 && enc.count == 0,
          "zero enc: a failed stream's error comes back, nothing left pending");
    state_stream_free(w);
    close(fd);
    state_zero_encoder_fini(&enc);
    state_zero_encoder_fini(&enc); /* twice is harmless */
}

int main(void)
{
    struct ram_fixture f;

    test_page_is_zero();
    f.ram = aligned_alloc(STATE_PAGE_SIZE, (size_t)NPAGES * STATE_PAGE_SIZE);
    f.dst = aligned_alloc(STATE_PAGE_SIZE, (size_t)NPAGES * STATE_PAGE_SIZE);
    f.scratch = xmalloc((size_t)STATE_RAM_BATCH * STATE_PAGE_SIZE);
    CHECK(state_ram_encoder_init(&f.e) == 0 && f.e.raw && f.e.comp, "ram: encoder init");
    test_ram_roundtrip(&f);
    test_ram_hostile(&f);
    state_ram_encoder_fini(&f.e);
    state_ram_encoder_fini(&f.e); /* twice is harmless */
    free(f.ram);
    free(f.dst);
    free(f.scratch);
    test_zero_runs();
    test_zero_encoder();
    return board_check_done();
}
