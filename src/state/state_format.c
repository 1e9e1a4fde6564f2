/*
 * The state stream's framing: header, sections, EOF checksum, RAM batches
 * (mig_format.h, docs/state.md).
 */
#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>

#include "state/state_format.h"

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int state_write_header(struct state_stream *s, const struct state_header *h)
{
    uint8_t b[STATE_HEADER_LEN];

    memcpy(b, STATE_MAGIC, STATE_MAGIC_LEN);
    put_le(b + 8, h->version, 4);
    put_le(b + 12, STATE_ENDIAN_CHECK, 4);
    put_le(b + 16, h->page_size, 4);
    put_le(b + 20, h->flags, 4);
    put_le(b + 24, h->config_hash, 8);
    return state_stream_write(s, b, sizeof(b));
}

int state_read_header(struct state_stream *s, struct state_header *h)
{
    uint8_t b[STATE_HEADER_LEN];
    uint32_t endian;

    memset(h, 0, sizeof(*h));
    if (state_stream_read(s, b, sizeof(b)) < 0)
        return state_stream_error(s);
    if (memcmp(b, STATE_MAGIC, STATE_MAGIC_LEN) != 0) {
        state_stream_fail(s, -EPROTO, "not a godwit state stream (bad magic)");
        return -EPROTO;
    }
    h->version = (uint32_t)get_le(b + 8, 4);
    endian = (uint32_t)get_le(b + 12, 4);
    h->page_size = (uint32_t)get_le(b + 16, 4);
    h->flags = (uint32_t)get_le(b + 20, 4);
    h->config_hash = get_le(b + 24, 8);
    if (endian != STATE_ENDIAN_CHECK) {
        state_stream_fail(s, -EPROTO, "bad endianness check 0x%08x (expected 0x%08x)", endian,
                        STATE_ENDIAN_CHECK);
        return -EPROTO;
    }
    if (h->version == 0 || h->version > STATE_FORMAT_VERSION) {
        state_stream_fail(s, -EPROTO, "state format version %u, this godwit reads 1..%u", h->version,
                        STATE_FORMAT_VERSION);
        return -EPROTO;
    }
    if (h->page_size != STATE_PAGE_SIZE) {
        state_stream_fail(s, -EPROTO, "page size %u, expected %u", h->page_size, STATE_PAGE_SIZE);
        return -EPROTO;
    }
    if (h->flags & ~(uint32_t)STATE_F_KNOWN) {
        state_stream_fail(s, -EPROTO, "unknown header flags 0x%x", h->flags);
        return -EPROTO;
    }
    return 0;
}

#define STATE_SEC_HDR_LEN 12

int state_write_section(struct state_stream *s, uint8_t type, const char *name, uint32_t instance,
                      uint16_t version, const void *payload, size_t len)
{
    uint8_t b[STATE_SEC_HDR_LEN];
    size_t nlen = name ? strlen(name) : 0;

    if (nlen > STATE_NAME_MAX || len > STATE_BUF_MAX) {
        state_stream_fail(s, -EINVAL, "section %s too large", name ? name : "?");
        return -EINVAL;
    }
    b[0] = type;
    b[1] = (uint8_t)nlen;
    put_le(b + 2, version, 2);
    put_le(b + 4, instance, 4);
    put_le(b + 8, len, 4);
    state_stream_write(s, b, sizeof(b));
    if (nlen)
        state_stream_write(s, name, nlen);
    if (len)
        state_stream_write(s, payload, len);
    return state_stream_error(s);
}

static bool state_type_known(uint8_t t)
{
    return t == STATE_SEC_CONFIG || t == STATE_SEC_RAM || t == STATE_SEC_DEVICE || t == STATE_SEC_ROUND ||
           t == STATE_SEC_ZERO || t == STATE_SEC_EOF;
}

int state_read_section(struct state_stream *s, struct state_section *sec)
{
    uint8_t b[STATE_SEC_HDR_LEN];
    uint64_t at = state_stream_offset(s);

    memset(sec, 0, sizeof(*sec));
    if (state_stream_read(s, b, sizeof(b)) < 0)
        return state_stream_error(s);
    sec->type = b[0];
    sec->version = (uint16_t)get_le(b + 2, 2);
    sec->instance = (uint32_t)get_le(b + 4, 4);
    sec->len = (uint32_t)get_le(b + 8, 4);
    if (!state_type_known(sec->type)) {
        state_stream_fail(s, -EPROTO, "unknown section type %u at byte %llu", sec->type,
                        (unsigned long long)at);
        return -EPROTO;
    }
    if (b[1] > STATE_NAME_MAX) {
        state_stream_fail(s, -EPROTO, "section name of %u bytes at byte %llu", b[1],
                        (unsigned long long)at);
        return -EPROTO;
    }
    if (sec->len > STATE_BUF_MAX) {
        state_stream_fail(s, -EPROTO, "section of %u bytes at byte %llu (limit %u)", sec->len,
                        (unsigned long long)at, STATE_BUF_MAX);
        return -EPROTO;
    }
    if (state_stream_read(s, sec->name, b[1]) < 0)
        return state_stream_error(s);
    sec->name[b[1]] = '\0';
    for (unsigned i = 0; i < b[1]; i++) {
        unsigned char c = (unsigned char)sec->name[i];
        if (c < 0x21 || c > 0x7e) {
            state_stream_fail(s, -EPROTO, "bad section name at byte %llu", (unsigned long long)at);
            return -EPROTO;
        }
    }
    if (sec->type == STATE_SEC_EOF && sec->len != 8) {
        state_stream_fail(s, -EPROTO, "EOF section of %u bytes", sec->len);
        return -EPROTO;
    }
    return 0;
}

int state_read_payload(struct state_stream *s, const struct state_section *sec, struct state_buf *b)
{
    state_buf_reset(b);
    if (sec->len) {
        /* grow the writer to len, then fill it straight from the stream */
        if (b->cap < sec->len) {
            size_t cap = b->cap ? b->cap : 256;
            uint8_t *p;

            while (cap < sec->len)
                cap *= 2;
            p = realloc(b->cap ? b->data : NULL, cap);
            if (!p) {
                state_stream_fail(s, -ENOMEM, "out of memory for a %u-byte section", sec->len);
                return -ENOMEM;
            }
            b->data = p;
            b->cap = cap;
        }
        if (state_stream_read(s, b->data, sec->len) < 0)
            return state_stream_error(s);
    }
    b->len = sec->len;
    b->pos = 0;
    return 0;
}

int state_write_eof(struct state_stream *s)
{
    uint8_t b[STATE_SEC_HDR_LEN] = {STATE_SEC_EOF, 0};
    uint8_t sum[8];

    put_le(b + 8, 8, 4);
    state_stream_write(s, b, sizeof(b));
    put_le(sum, state_stream_digest(s), 8);
    state_stream_write(s, sum, sizeof(sum));
    return state_stream_flush(s);
}

int state_read_eof(struct state_stream *s, const struct state_section *sec)
{
    uint64_t want = state_stream_digest(s), got;
    uint8_t sum[8];

    (void)sec;
    if (state_stream_read(s, sum, sizeof(sum)) < 0)
        return state_stream_error(s);
    got = get_le(sum, 8);
    if (got != want) {
        state_stream_fail(s, -EBADMSG,
                        "checksum mismatch: stream says %016llx, content hashes to %016llx "
                        "(corrupted)",
                        (unsigned long long)got, (unsigned long long)want);
        return -EBADMSG;
    }
    return 0;
}

/* ---- RAM ---------------------------------------------------------------- */

bool state_page_is_zero(const void *page)
{
    const uint64_t *p = page;

    /* OR 8 words per step: the compiler vectorises it; bail out early on
     * the first non-zero block since most non-zero pages differ early */
    for (unsigned i = 0; i < STATE_PAGE_SIZE / 8; i += 8) {
        if (p[i] | p[i + 1] | p[i + 2] | p[i + 3] | p[i + 4] | p[i + 5] | p[i + 6] | p[i + 7])
            return false;
    }
    return true;
}

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
