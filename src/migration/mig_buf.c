/*
 * mig_buf: little-endian field encoding with a sticky error (mig_buf.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migration/mig_buf.h"

void mig_buf_init(struct mig_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void mig_buf_fini(struct mig_buf *b)
{
    if (b->cap)
        free(b->data);
    memset(b, 0, sizeof(*b));
}

void mig_buf_reset(struct mig_buf *b)
{
    b->len = 0;
    b->pos = 0;
    b->err = 0;
    b->msg[0] = '\0';
}

void mig_buf_reader(struct mig_buf *b, const void *data, size_t len)
{
    memset(b, 0, sizeof(*b));
    b->data = (uint8_t *)(uintptr_t)data;
    b->len = len;
}

void mig_buf_fail(struct mig_buf *b, int err, const char *fmt, ...)
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
static bool mig_buf_reserve(struct mig_buf *b, size_t n)
{
    size_t cap;
    uint8_t *p;

    if (b->err)
        return false;
    if (n > MIG_BUF_MAX || b->len > MIG_BUF_MAX - n) {
        mig_buf_fail(b, -EFBIG, "section larger than %u bytes", MIG_BUF_MAX);
        return false;
    }
    if (b->len + n <= b->cap)
        return true;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    p = realloc(b->cap ? b->data : NULL, cap);
    if (!p) {
        mig_buf_fail(b, -ENOMEM, "out of memory");
        return false;
    }
    if (!b->cap && b->len)
        memcpy(p, b->data, b->len); /* a reader turned writer: never done, but safe */
    b->data = p;
    b->cap = cap;
    return true;
}

void mig_put_bytes(struct mig_buf *b, const void *p, size_t n)
{
    if (n == 0 || !mig_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void mig_put_le(struct mig_buf *b, uint64_t v, unsigned n)
{
    uint8_t tmp[8];

    for (unsigned i = 0; i < n; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    mig_put_bytes(b, tmp, n);
}

void mig_put_u8(struct mig_buf *b, uint8_t v)
{
    mig_put_le(b, v, 1);
}

void mig_put_u16(struct mig_buf *b, uint16_t v)
{
    mig_put_le(b, v, 2);
}

void mig_put_u32(struct mig_buf *b, uint32_t v)
{
    mig_put_le(b, v, 4);
}

void mig_put_u64(struct mig_buf *b, uint64_t v)
{
    mig_put_le(b, v, 8);
}

void mig_put_bool(struct mig_buf *b, bool v)
{
    mig_put_le(b, v ? 1 : 0, 1);
}

void mig_put_str(struct mig_buf *b, const char *s)
{
    size_t n = strlen(s);

    if (n > 0xffff) {
        mig_buf_fail(b, -EINVAL, "string of %zu bytes", n);
        return;
    }
    mig_put_u16(b, (uint16_t)n);
    mig_put_bytes(b, s, n);
}

void mig_get_bytes(struct mig_buf *b, void *p, size_t n)
{
    if (!b->err && n > b->len - b->pos)
        mig_buf_fail(b, -EPROTO, "truncated: %zu bytes wanted at offset %zu of %zu", n, b->pos,
                     b->len);
    if (b->err) {
        memset(p, 0, n);
        return;
    }
    memcpy(p, b->data + b->pos, n);
    b->pos += n;
}

static uint64_t mig_get_le(struct mig_buf *b, unsigned n)
{
    uint8_t tmp[8];
    uint64_t v = 0;

    mig_get_bytes(b, tmp, n);
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)tmp[i] << (8 * i);
    return v;
}

uint8_t mig_get_u8(struct mig_buf *b)
{
    return (uint8_t)mig_get_le(b, 1);
}

uint16_t mig_get_u16(struct mig_buf *b)
{
    return (uint16_t)mig_get_le(b, 2);
}

uint32_t mig_get_u32(struct mig_buf *b)
{
    return (uint32_t)mig_get_le(b, 4);
}

uint64_t mig_get_u64(struct mig_buf *b)
{
    return mig_get_le(b, 8);
}

bool mig_get_bool(struct mig_buf *b)
{
    uint8_t v = mig_get_u8(b);

    if (v > 1)
        mig_buf_fail(b, -EINVAL, "bad boolean %u at offset %zu", v, b->pos - 1);
    return v == 1;
}

void mig_get_str(struct mig_buf *b, char *out, size_t outlen)
{
    uint16_t n = mig_get_u16(b);

    if (!b->err && (size_t)n >= outlen)
        mig_buf_fail(b, -EINVAL, "string of %u bytes, at most %zu allowed", n, outlen - 1);
    if (b->err) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    mig_get_bytes(b, out, n);
    out[b->err ? 0 : n] = '\0';
}

int mig_buf_expect_end(struct mig_buf *b, const char *what)
{
    if (!b->err && b->pos != b->len)
        mig_buf_fail(b, -EPROTO, "%s: %zu unexpected bytes at the end", what, b->len - b->pos);
    return b->err;
}
