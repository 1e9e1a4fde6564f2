/*
 * state_buf: the byte buffer a component saves its state into and loads it
 * back from (one section of the state stream, docs/state.md).
 *
 * Every field is written little-endian with a fixed width, whatever the
 * host, so a section means the same everywhere.  Both directions keep a
 * sticky error (redis rio style): a component writes or reads all its
 * fields and checks once at the end.  Reading past the end, a bad bool, or
 * state_buf_fail() sets the error; later reads then return zeros, so a load
 * function never acts on garbage as long as it checks state_buf_error()
 * before applying what it read.
 *
 * Save/load pairs live side by side in each component, e.g.
 *     void clint_save(const struct clint *c, struct state_buf *b);
 *     int  clint_load(struct clint *c, struct state_buf *b, unsigned version);
 * A load function reads into a temporary copy, validates every value it
 * cannot accept (a queue size that is not a power of two, a privilege level
 * that does not exist, an index past its table...), and applies the copy
 * only when everything was right: a refused load leaves the component as
 * it was.  It returns 0 or -EINVAL after state_buf_fail() said why.
 */
#ifndef GODWIT_STATE_STATE_BUF_H
#define GODWIT_STATE_STATE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define STATE_BUF_MAX (64u << 20) /* largest section payload, bytes */

struct state_buf {
    uint8_t *data;
    size_t len; /* bytes written (writer) or available (reader) */
    size_t cap; /* allocated (writer); 0 for a reader over foreign memory */
    size_t pos; /* read cursor */
    int err;    /* 0, or the first -errno */
    char msg[160];
};

/* An empty growable writer.  state_buf_fini() frees it. */
void state_buf_init(struct state_buf *b);
void state_buf_fini(struct state_buf *b);
/* Forget the contents, keep the allocation. */
void state_buf_reset(struct state_buf *b);

/* A reader over len bytes at data (not copied, not freed). */
void state_buf_reader(struct state_buf *b, const void *data, size_t len);

/* 0 or the sticky -errno; state_buf_msg() says why ("" if nothing failed). */
static inline int state_buf_error(const struct state_buf *b)
{
    return b->err;
}
static inline const char *state_buf_msg(const struct state_buf *b)
{
    return b->msg;
}

/* Record a failure (the first one wins): err is -errno, fmt the reason. */
void state_buf_fail(struct state_buf *b, int err, const char *fmt, ...) gw_printf(3, 4);

/* Bytes left to read. */
static inline size_t state_buf_left(const struct state_buf *b)
{
    return b->len - b->pos;
}

void state_put_u8(struct state_buf *b, uint8_t v);
void state_put_u16(struct state_buf *b, uint16_t v);
void state_put_u32(struct state_buf *b, uint32_t v);
void state_put_u64(struct state_buf *b, uint64_t v);
void state_put_bool(struct state_buf *b, bool v);
void state_put_bytes(struct state_buf *b, const void *p, size_t n);
/* Length-prefixed (u16) string, at most 65535 bytes. */
void state_put_str(struct state_buf *b, const char *s);

uint8_t state_get_u8(struct state_buf *b);
uint16_t state_get_u16(struct state_buf *b);
uint32_t state_get_u32(struct state_buf *b);
uint64_t state_get_u64(struct state_buf *b);
bool state_get_bool(struct state_buf *b);                     /* anything but 0 or 1 is an error */
void state_get_bytes(struct state_buf *b, void *p, size_t n); /* zero-fills on error */
/* Reads a state_put_str string into out (NUL-terminated); longer than
 * outlen-1 is an error. */
void state_get_str(struct state_buf *b, char *out, size_t outlen);

/* Reader: fail unless everything was consumed (catches a section longer
 * than its version says).  Returns state_buf_error(). */
int state_buf_expect_end(struct state_buf *b, const char *what);

#endif
