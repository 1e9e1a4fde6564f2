/*
 * state_buf: little-endian field encoding with a sticky error (state_buf.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state_buf.h"

void state_buf_init(struct state_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void state_buf_fini(struct state_buf *b)
{
    if (b->cap)
        free(b->data);
    memset(b, 0, sizeof(*b));
}

void state_buf_reset(struct state_buf *b)
{
    b->len = 0;
    b->pos = 0;
    b->err = 0;
    b->msg[0] = '\0';
}

void state_buf_reader(struct state_buf *b, const void *data, size_t len)
{
    memset(b, 0, sizeof(*b));
    b->data = (uint8_t *)(uintptr_t)data;
    b->len = len;
}

void state_buf_fail(struct state_buf *b, int err, const char *fmt, ...)
{
    va_list ap;

    if (b->err)
        return;
    b->err = err ? err : -EINVAL;
    va_start(ap, fmt);
    vsnprintf(b->msg, sizeof(b->msg), fmt, ap);
    va_end(ap);
}

/* Room for n more bytes in a writer; false (sticky error) if impossible. */
static bool state_buf_reserve(struct state_buf *b, size_t n)
{
    size_t cap;
    uint8_t *p;

    if (b->err)
        return false;
    if (n > STATE_BUF_MAX || b->len > STATE_BUF_MAX - n) {
        state_buf_fail(b, -EFBIG, "section larger than %u bytes", STATE_BUF_MAX);
        return false;
    }
    if (b->len + n <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    p = realloc(b->cap ? b->data : NULL, cap);
    if (!p) {
        state_buf_fail(b, -ENOMEM, "out of memory");
        return false;
    }
    if (!b->cap && b->len)
        memcpy(p, b->data, b->len); /* a reader turned writer: never done, but safe */
    b->data = p;
    b->cap = cap;
    return true;
}

void state_put_bytes(struct state_buf *b, const void *p, size_t n)
{
    if (n == 0 || !state_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void state_put_le(struct state_buf *b, uint64_t v, unsigned n)
{
    uint8_t tmp[8];

    for (unsigned i = 0; i < n; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    state_put_bytes(b, tmp, n);
}

void state_put_u8(struct state_buf *b, uint8_t v)
{
    state_put_le(b, v, 1);
}

void state_put_u16(struct state_buf *b, uint16_t v)
{
    state_put_le(b, v, 2);
}

void state_put_u32(struct state_buf *b, uint32_t v)
{
    state_put_le(b, v, 4);
}

void state_put_u64(struct state_buf *b, uint64_t v)
{
    state_put_le(b, v, 8);
}

void state_put_bool(struct state_buf *b, bool v)
{
    state_put_le(b, v ? 1 : 0, 1);
}

void state_put_str(struct state_buf *b, const char *s)
{
    size_t n = strlen(s);

    if (n > 0xffff) {
        state_buf_fail(b, -EINVAL, "string of %zu bytes", n);
        return;
    }
    state_put_u16(b, (uint16_t)n);
    state_put_bytes(b, s, n);
}

void state_get_bytes(struct state_buf *b, void *p, size_t n)
{
    if (!b->err && n > b->len - b->pos)
        state_buf_fail(b, -EPROTO, "truncated: %zu bytes wanted at offset %zu of %zu", n, b->pos,
                       b->len);
    if (b->err) {
        memset(p, 0, n);
        return;
    }
    memcpy(p, b->data + b->pos, n);
    b->pos += n;
}

static uint64_t state_get_le(struct state_buf *b, unsigned n)
{
    uint8_t tmp[8];
    uint64_t v = 0;

    state_get_bytes(b, tmp, n);
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)tmp[i] << (8 * i);
    return v;
}

uint8_t state_get_u8(struct state_buf *b)
{
    return (uint8_t)state_get_le(b, 1);
}

uint16_t state_get_u16(struct state_buf *b)
{
    return (uint16_t)state_get_le(b, 2);
}

uint32_t state_get_u32(struct state_buf *b)
{
    return (uint32_t)state_get_le(b, 4);
}

uint64_t state_get_u64(struct state_buf *b)
{
    return state_get_le(b, 8);
}

bool state_get_bool(struct state_buf *b)
{
    uint8_t v = state_get_u8(b);

    if (v > 1)
        state_buf_fail(b, -EINVAL, "bad boolean %u at offset %zu", v, b->pos - 1);
    return v == 1;
}

void state_get_str(struct state_buf *b, char *out, size_t outlen)
{
    uint16_t n = state_get_u16(b);

    if (!b->err && (size_t)n >= outlen)
        state_buf_fail(b, -EINVAL, "string of %u bytes, at most %zu allowed", n, outlen - 1);
    if (b->err) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    state_get_bytes(b, out, n);
    out[b->err ? 0 : n] = '\0';
}

int state_buf_expect_end(struct state_buf *b, const char *what)
{
    if (!b->err && b->pos != b->len)
        state_buf_fail(b, -EPROTO, "%s: %zu unexpected bytes at the end", what, b->len - b->pos);
    return b->err;
}
