/*
 * state_stream: buffered fd stream with a sticky error and an XXH3 checksum
 * (state_stream.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <xxhash.h>

#include "state/state_stream.h"

#define MIG_STREAM_BUF (1u << 20)

struct state_stream {
    int fd;                    /* -1 when io carries the stream */
    const struct state_io *io; /* NULL: read()/write() on fd */
    void *io_opaque;
    bool reading;
    int err;
    char msg[200];
    uint8_t *buf;
    size_t len;        /* writer: bytes queued; reader: bytes valid in buf */
    size_t pos;        /* reader: next byte in buf */
    bool eof;          /* reader: read() returned 0 */
    bool broken;       /* the transport failed (not the content): state_stream_broken */
    uint64_t offset;   /* bytes passed through the stream */
    uint64_t to_fd;    /* writer: bytes handed to the fd */
    uint64_t limit;    /* writer: fake a full device after this many (0 = off) */
    XXH3_state_t *xxh; /* checksum of every byte passed */
};

struct state_stream *state_stream_new(int fd, bool reading)
{
    struct state_stream *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->fd = fd;
    s->reading = reading;
    s->buf = malloc(MIG_STREAM_BUF);
    s->xxh = XXH3_createState();
    if (!s->buf || !s->xxh) {
        state_stream_free(s);
        return NULL;
    }
    XXH3_64bits_reset(s->xxh);
    return s;
}

struct state_stream *state_stream_new_io(const struct state_io *io, void *opaque, bool reading)
{
    struct state_stream *s = state_stream_new(-1, reading);

    if (s) {
        s->io = io;
        s->io_opaque = opaque;
    }
    return s;
}

/* One write or read on the transport: bytes, or -1 with errno set (the
 * plain fd keeps its direct system call). */
static ssize_t state_stream_sys_write(struct state_stream *s, const void *p, size_t n)
{
    ssize_t r;

    if (!s->io)
        return write(s->fd, p, n);
    r = s->io->write(s->io_opaque, p, n);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

static ssize_t state_stream_sys_read(struct state_stream *s, void *p, size_t n)
{
    ssize_t r;

    if (!s->io)
        return read(s->fd, p, n);
    r = s->io->read(s->io_opaque, p, n);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return r;
}

void state_stream_free(struct state_stream *s)
{
    if (!s)
        return;
    free(s->buf);
    if (s->xxh)
        XXH3_freeState(s->xxh);
    free(s);
}

void state_stream_fail(struct state_stream *s, int err, const char *fmt, ...)
{
    va_list ap;

    if (s->err)
        return;
    s->err = err ? err : -EIO;
    va_start(ap, fmt);
    vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
    va_end(ap);
}

int state_stream_error(const struct state_stream *s)
{
    return s->err;
}

const char *state_stream_msg(const struct state_stream *s)
{
    return s->msg;
}

uint64_t state_stream_offset(const struct state_stream *s)
{
    return s->offset;
}

bool state_stream_broken(const struct state_stream *s)
{
    return s->err && s->broken;
}

uint64_t state_stream_digest(const struct state_stream *s)
{
    return XXH3_64bits_digest(s->xxh);
}

void state_stream_set_limit(struct state_stream *s, uint64_t limit)
{
    s->limit = limit;
}

/* Write all of p to the fd (EINTR, short writes); sticky error. */
static int state_stream_put_fd(struct state_stream *s, const uint8_t *p, size_t n)
{
    while (n > 0 && !s->err) {
        size_t chunk = n;
        ssize_t w;

        if (s->limit) {
            if (s->to_fd >= s->limit) {
                state_stream_fail(s, -ENOSPC, "write: %s (limit)", strerror(ENOSPC));
                break;
            }
            if (chunk > s->limit - s->to_fd)
                chunk = (size_t)(s->limit - s->to_fd);
        }
        w = state_stream_sys_write(s, p, chunk);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) /* a send timeout (SO_SNDTIMEO) */
                state_stream_fail(s, -ETIMEDOUT,
                                  "write: no progress for too long: the receiver went quiet");
            else
                state_stream_fail(s, -errno, "write: %s", strerror(errno));
            s->broken = true;
            break;
        }
        if (w == 0) {
            state_stream_fail(s, -EIO, "write: no progress");
            break;
        }
        p += w;
        n -= (size_t)w;
        s->to_fd += (uint64_t)w;
    }
    return s->err;
}

int state_stream_flush(struct state_stream *s)
{
    if (s->reading || s->err)
        return s->err;
    if (s->len)
        state_stream_put_fd(s, s->buf, s->len);
    s->len = 0;
    return s->err;
}

int state_stream_write(struct state_stream *s, const void *p, size_t n)
{
    const uint8_t *src = p;

    if (s->err)
        return s->err;
    XXH3_64bits_update(s->xxh, p, n);
    s->offset += n;
    if (n >= MIG_STREAM_BUF) { /* big blocks (RAM) skip the copy */
        if (state_stream_flush(s) == 0)
            state_stream_put_fd(s, src, n);
        return s->err;
    }
    while (n > 0 && !s->err) {
        size_t room = MIG_STREAM_BUF - s->len, c = n < room ? n : room;

        memcpy(s->buf + s->len, src, c);
        s->len += c;
        src += c;
        n -= c;
        if (s->len == MIG_STREAM_BUF)
            state_stream_flush(s);
    }
    return s->err;
}

/* Refill the reader's buffer; false at end of stream or on error. */
static bool state_stream_fill(struct state_stream *s)
{
    ssize_t r;

    if (s->err || s->eof)
        return false;
    s->pos = 0;
    s->len = 0;
    for (;;) {
        r = state_stream_sys_read(s, s->buf, MIG_STREAM_BUF);
        if (r < 0 && errno == EINTR)
            continue;
        break;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        /* a socket with a receive timeout (SO_RCVTIMEO): the peer went quiet */
        state_stream_fail(s, -ETIMEDOUT, "no data for too long at byte %llu: the sender went quiet",
                          (unsigned long long)s->offset);
        s->broken = true;
        return false;
    }
    if (r < 0) {
        state_stream_fail(s, -errno, "read: %s", strerror(errno));
        s->broken = true;
        return false;
    }
    if (r == 0) {
        s->eof = true;
        return false;
    }
    s->len = (size_t)r;
    return true;
}

int state_stream_read(struct state_stream *s, void *p, size_t n)
{
    uint8_t *dst = p;
    size_t want = n;

    while (n > 0 && !s->err) {
        size_t avail = s->len - s->pos, c;

        if (avail == 0) {
            if (!state_stream_fill(s)) {
                if (!s->err) {
                    state_stream_fail(
                        s, -EPROTO, "truncated: stream ends at byte %llu, %zu more bytes expected",
                        (unsigned long long)s->offset, n);
                    s->broken = true;
                }
                break;
            }
            continue;
        }
        c = n < avail ? n : avail;
        memcpy(dst, s->buf + s->pos, c);
        XXH3_64bits_update(s->xxh, dst, c);
        s->pos += c;
        s->offset += c;
        dst += c;
        n -= c;
    }
    if (s->err)
        memset(p, 0, want);
    return s->err;
}

bool state_stream_at_eof(struct state_stream *s)
{
    if (s->pos < s->len)
        return false;
    return !state_stream_fill(s) && !s->err;
}

int state_stream_pending(struct state_stream *s, int timeout_ms)
{
    struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
    int r, n = 0;

    if (s->pos < s->len)
        return 1;
    if (s->eof)
        return 0;
    if (s->io)
        return s->io->pending(s->io_opaque, timeout_ms);
    do
        r = poll(&pfd, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    if (r == 0)
        return 0;
    /* readable: data, or only the other end's close (then FIONREAD says 0);
     * works on sockets, pipes and regular files (size - position) */
    if (ioctl(s->fd, FIONREAD, &n) < 0)
        return -errno;
    return n > 0;
}
