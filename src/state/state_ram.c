/*
 * The state stream's RAM sections (state_format.h, docs/state.md): RAM
 * batches (a run list plus raw or LZ4 page data) and
 * zero runs.  Each encoder sits next to its decoder.
 */
#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>

#include "state/state_format.h"

int state_ram_encoder_init(struct state_ram_encoder *e)
{
    e->raw = malloc((size_t)STATE_RAM_BATCH * STATE_PAGE_SIZE);
    e->comp_cap = (size_t)LZ4_compressBound((int)(STATE_RAM_BATCH * STATE_PAGE_SIZE));
    e->comp = malloc(e->comp_cap);
    if (!e->raw || !e->comp) {
        state_ram_encoder_fini(e);
        return -ENOMEM;
    }
    return 0;
}

void state_ram_encoder_fini(struct state_ram_encoder *e)
{
    free(e->raw);
    free(e->comp);
    e->raw = e->comp = NULL;
}

void state_ram_encode(struct state_ram_encoder *e, const uint8_t *ram, const uint32_t *pages,
                      unsigned n, bool compress, struct state_buf *b)
{
    unsigned nruns = 0;
    size_t raw_len = (size_t)n * STATE_PAGE_SIZE;
    const uint8_t *data = NULL;
    int clen = 0;

    for (unsigned i = 0; i < n; i++)
        if (i == 0 || pages[i] != pages[i - 1] + 1)
            nruns++;
    if (compress) {
        for (unsigned i = 0; i < n; i++)
            memcpy(e->raw + (size_t)i * STATE_PAGE_SIZE, ram + (size_t)pages[i] * STATE_PAGE_SIZE,
                   STATE_PAGE_SIZE);
        clen = LZ4_compress_default((const char *)e->raw, (char *)e->comp, (int)raw_len,
                                    (int)e->comp_cap);
        if (clen > 0 && (size_t)clen < raw_len - raw_len / 16)
            data = e->comp;
        else
            data = e->raw; /* incompressible: raw is cheaper to load */
    }
    state_put_u8(b, data == e->comp && data ? STATE_RAM_LZ4 : STATE_RAM_RAW);
    state_put_u8(b, 0);
    state_put_u16(b, 0);
    state_put_u32(b, n);
    state_put_u32(b, nruns);
    for (unsigned i = 0; i < n;) {
        unsigned j = i + 1;
        while (j < n && pages[j] == pages[j - 1] + 1)
            j++;
        state_put_u32(b, pages[i]);
        state_put_u32(b, j - i);
        i = j;
    }
    if (data == e->comp && data) {
        state_put_u32(b, (uint32_t)clen);
        state_put_bytes(b, e->comp, (size_t)clen);
    } else if (data) {
        state_put_u32(b, (uint32_t)raw_len);
        state_put_bytes(b, e->raw, raw_len);
    } else {
        state_put_u32(b, (uint32_t)raw_len);
        for (unsigned i = 0; i < n; i++)
            state_put_bytes(b, ram + (size_t)pages[i] * STATE_PAGE_SIZE, STATE_PAGE_SIZE);
    }
}

int state_ram_decode(struct state_buf *b, uint8_t *ram, uint64_t npages_ram, uint8_t *scratch)
{
    uint8_t enc = state_get_u8(b);
    uint32_t n, nruns, dlen, total = 0;
    size_t runs_at;
    const uint8_t *data;

    state_get_u8(b);
    state_get_u16(b);
    n = state_get_u32(b);
    nruns = state_get_u32(b);
    if (b->err)
        return b->err;
    if (enc != STATE_RAM_RAW && enc != STATE_RAM_LZ4) {
        state_buf_fail(b, -EPROTO, "RAM batch: unknown encoding %u", enc);
        return b->err;
    }
    if (n == 0 || n > STATE_RAM_BATCH || nruns == 0 || nruns > n) {
        state_buf_fail(b, -EPROTO, "RAM batch: %u pages in %u runs", n, nruns);
        return b->err;
    }
    /* validate the run list before touching any page */
    runs_at = b->pos;
    for (uint32_t i = 0; i < nruns; i++) {
        uint32_t first = state_get_u32(b), count = state_get_u32(b);

        if (b->err)
            return b->err;
        if (count == 0 || count > n - total || (uint64_t)first + count > npages_ram) {
            state_buf_fail(b, -EPROTO,
                           "RAM batch: run of %u pages at page %u outside RAM (%llu pages)", count,
                           first, (unsigned long long)npages_ram);
            return b->err;
        }
        total += count;
    }
    if (total != n) {
        state_buf_fail(b, -EPROTO, "RAM batch: runs cover %u pages, header says %u", total, n);
        return b->err;
    }
    dlen = state_get_u32(b);
    if (b->err)
        return b->err;
    if (dlen > state_buf_left(b)) {
        state_buf_fail(b, -EPROTO, "RAM batch: %u data bytes, %zu left in the section", dlen,
                       state_buf_left(b));
        return b->err;
    }
    data = b->data + b->pos;
    if (enc == STATE_RAM_RAW) {
        if (dlen != n * STATE_PAGE_SIZE) {
            state_buf_fail(b, -EPROTO, "RAM batch: %u raw bytes for %u pages", dlen, n);
            return b->err;
        }
    } else {
        int r = LZ4_decompress_safe((const char *)data, (char *)scratch, (int)dlen,
                                    (int)(n * STATE_PAGE_SIZE));
        if (r != (int)(n * STATE_PAGE_SIZE)) {
            state_buf_fail(b, -EPROTO, "RAM batch: LZ4 data does not decode to %u pages", n);
            return b->err;
        }
        data = scratch;
    }
    b->pos += dlen;
    if (state_buf_expect_end(b, "RAM batch") < 0)
        return b->err;
    if (ram) {
        size_t off = 0, save = b->pos;

        b->pos = runs_at;
        for (uint32_t i = 0; i < nruns; i++) {
            uint32_t first = state_get_u32(b), count = state_get_u32(b);
            size_t len = (size_t)count * STATE_PAGE_SIZE;

            memcpy(ram + (size_t)first * STATE_PAGE_SIZE, data + off, len);
            off += len;
        }
        b->pos = save;
    }
    return (int)n;
}

void state_zero_encoder_init(struct state_zero_encoder *z)
{
    memset(z, 0, sizeof(*z));
    state_buf_init(&z->runs);
}

void state_zero_encoder_fini(struct state_zero_encoder *z)
{
    state_buf_fini(&z->runs);
    memset(z, 0, sizeof(*z));
}

/* Move the open run into the buffer (the count comes first: reserved). */
static void state_zero_close_run(struct state_zero_encoder *z)
{
    if (!z->count)
        return;
    if (z->runs.len == 0)
        state_put_u32(&z->runs, 0);
    state_put_u32(&z->runs, z->first);
    state_put_u32(&z->runs, z->count);
    z->nruns++;
    z->count = 0;
}

/* Write the complete runs as one section. */
static int state_zero_write(struct state_zero_encoder *z, struct state_stream *s)
{
    if (state_buf_error(&z->runs)) {
        state_stream_fail(s, state_buf_error(&z->runs), "zero runs: %s", state_buf_msg(&z->runs));
        return state_stream_error(s);
    }
    if (z->nruns) {
        for (unsigned i = 0; i < 4; i++)
            z->runs.data[i] = (uint8_t)(z->nruns >> (8 * i));
        state_write_section(s, STATE_SEC_ZERO, NULL, 0, 1, z->runs.data, z->runs.len);
    }
    state_buf_reset(&z->runs);
    z->nruns = 0;
    return state_stream_error(s);
}

int state_zero_add(struct state_zero_encoder *z, struct state_stream *s, uint32_t page)
{
    if (z->count && (uint64_t)z->first + z->count == page) {
        z->count++;
        return state_stream_error(s);
    }
    state_zero_close_run(z);
    if (z->nruns >= STATE_ZERO_RUNS)
        state_zero_write(z, s);
    z->first = page;
    z->count = 1;
    return state_stream_error(s);
}

int state_zero_flush(struct state_zero_encoder *z, struct state_stream *s)
{
    state_zero_close_run(z);
    return state_zero_write(z, s);
}

int state_zero_decode(struct state_buf *b, uint64_t npages_ram,
                      void (*fn)(void *opaque, uint64_t first, uint64_t count), void *opaque)
{
    uint32_t nruns = state_get_u32(b);
    uint64_t total = 0;
    size_t runs_at;

    if (b->err)
        return b->err;
    if ((uint64_t)nruns * 8 != state_buf_left(b)) {
        state_buf_fail(b, -EPROTO, "zero runs: %u runs in %zu bytes", nruns, state_buf_left(b));
        return b->err;
    }
    /* validate every run before clearing any page: a refused section
     * leaves RAM as it was (as state_ram_decode does) */
    runs_at = b->pos;
    for (uint32_t i = 0; i < nruns; i++) {
        uint32_t first = state_get_u32(b), count = state_get_u32(b);

        if (count == 0 || (uint64_t)first + count > npages_ram) {
            state_buf_fail(b, -EPROTO, "zero run of %u pages at page %u outside RAM", count, first);
            return b->err;
        }
        total += count;
    }
    if (fn) {
        size_t save = b->pos;

        b->pos = runs_at;
        for (uint32_t i = 0; i < nruns; i++) {
            uint32_t first = state_get_u32(b), count = state_get_u32(b);

            fn(opaque, first, count);
        }
        b->pos = save;
    }
    return total > INT32_MAX ? INT32_MAX : (int)total;
}
