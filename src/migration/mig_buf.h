/*
 * mig_buf: the byte buffer a component saves its state into and loads it
 * back from (one section of the state stream, docs/state.md).
 *
 * Every field is written little-endian with a fixed width, whatever the
 * host, so a section means the same everywhere.  Both directions keep a
 * sticky error (redis rio style): a component writes or reads all its
 * fields and checks once at the end.  Reading past the end, a bad bool, or
 * mig_buf_fail() sets the error; later reads then return zeros, so a load
 * function never acts on garbage as long as it checks mig_buf_error()
 * before applying what it read.
 *
 * Save/load pairs live side by side in each component, e.g.
 *     void clint_save(const struct clint *c, struct mig_buf *b);
 *     int  clint_load(struct clint *c, struct mig_buf *b, unsigned version);
 * A load function reads into a temporary copy, validates every value it
 * cannot accept (a queue size that is not a power of two, a privilege level
 * that does not exist, an index past its table...), and applies the copy
 * only when everything was right: a refused load leaves the component as
 * it was.  It returns 0 or -EINVAL after mig_buf_fail() said why.
 */
#ifndef GODWIT_MIGRATION_MIG_BUF_H
#define GODWIT_MIGRATION_MIG_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define MIG_BUF_MAX (64u << 20) /* largest section payload, bytes */

struct mig_buf {
    uint8_t *data;
    size_t len; /* bytes written (writer) or available (reader) */
    size_t cap; /* allocated (writer); 0 for a reader over foreign memory */
    size_t pos; /* read cursor */
    int err;    /* 0, or the first -errno */
    char msg[160];
};

/* An empty growable writer.  mig_buf_fini() frees it. */
void mig_buf_init(struct mig_buf *b);
void mig_buf_fini(struct mig_buf *b);
/* Forget the contents, keep the allocation. */
void mig_buf_reset(struct mig_buf *b);

/* A reader over len bytes at data (not copied, not freed). */
void mig_buf_reader(struct mig_buf *b, const void *data, size_t len);

/* 0 or the sticky -errno; mig_buf_msg() says why ("" if nothing failed). */
static inline int mig_buf_error(const struct mig_buf *b)
{
    return b->err;
}
static inline const char *mig_buf_msg(const struct mig_buf *b)
{
    return b->msg;
}

/* Record a failure (the first one wins): err is -errno, fmt the reason. */
void mig_buf_fail(struct mig_buf *b, int err, const char *fmt, ...) gw_printf(3, 4);

/* Bytes left to read. */
static inline size_t mig_buf_left(const struct mig_buf *b)
{
    return b->len - b->pos;
}

void mig_put_u8(struct mig_buf *b, uint8_t v);
void mig_put_u16(struct mig_buf *b, uint16_t v);
void mig_put_u32(struct mig_buf *b, uint32_t v);
void mig_put_u64(struct mig_buf *b, uint64_t v);
void mig_put_bool(struct mig_buf *b, bool v);
void mig_put_bytes(struct mig_buf *b, const void *p, size_t n);
/* Length-prefixed (u16) string, at most 65535 bytes. */
void mig_put_str(struct mig_buf *b, const char *s);

uint8_t mig_get_u8(struct mig_buf *b);
uint16_t mig_get_u16(struct mig_buf *b);
uint32_t mig_get_u32(struct mig_buf *b);
uint64_t mig_get_u64(struct mig_buf *b);
bool mig_get_bool(struct mig_buf *b);                     /* anything but 0 or 1 is an error */
void mig_get_bytes(struct mig_buf *b, void *p, size_t n); /* zero-fills on error */
/* Reads a mig_put_str string into out (NUL-terminated); longer than
 * outlen-1 is an error. */
void mig_get_str(struct mig_buf *b, char *out, size_t outlen);

/* Reader: fail unless everything was consumed (catches a section longer
 * than its version says).  Returns mig_buf_error(). */
int mig_buf_expect_end(struct mig_buf *b, const char *what);

#endif
