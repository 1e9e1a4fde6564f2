/*
 * state_stream: the byte stream a VM's state travels on (a file, a socket, a
 * pipe), buffered, with a sticky error and a running XXH3-64 checksum of
 * every byte that passed (redis rio style: the writer checks once, at the
 * end; the reader learns "truncated" or "I/O error" from one place).
 *
 * A stream is either a writer or a reader over one file descriptor, or
 * over a transport (struct state_io: a TLS session).  It never owns more
 * than its buffer: the caller opens and closes the fd or the transport.
 * Threading: one thread at a time.
 */
#ifndef GODWIT_STATE_STATE_STREAM_H
#define GODWIT_STATE_STATE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"

struct state_stream;

/*
 * A transport other than a plain fd (a TLS session).  read returns bytes
 * read (0 at end of stream) or -errno (-EAGAIN: the peer went quiet past
 * the transport's timeout); write returns bytes written (> 0) or -errno.
 * pending is state_stream_pending's question for bytes the transport holds
 * or can read within timeout_ms: 1, 0 or -errno.  The callbacks own
 * nothing the stream frees.
 */
struct state_io {
    ssize_t (*read)(void *opaque, void *p, size_t n);
    ssize_t (*write)(void *opaque, const void *p, size_t n);
    int (*pending)(void *opaque, int timeout_ms);
};

/* A writer (reading = false) or reader over fd.  NULL on allocation failure. */
struct state_stream *state_stream_new(int fd, bool reading);
/* The same over a transport (io and opaque must outlive the stream). */
struct state_stream *state_stream_new_io(const struct state_io *io, void *opaque, bool reading);
/* Frees the buffer (a writer's unflushed bytes are lost: flush first).
 * Does not close the fd.  NULL is a no-op. */
void state_stream_free(struct state_stream *s);

/* Writer: queue n bytes (sticky error; returns state_stream_error()). */
int state_stream_write(struct state_stream *s, const void *p, size_t n);
/* Writer: push buffered bytes to the fd. */
int state_stream_flush(struct state_stream *s);

/* Reader: exactly n bytes into p, or an error (-EPROTO "truncated" at end of
 * stream, -EIO etc.); p is zero-filled on error. */
int state_stream_read(struct state_stream *s, void *p, size_t n);
/* Reader: true if the stream ended cleanly here (no byte left). */
bool state_stream_at_eof(struct state_stream *s);
/* Reader: are there bytes past those consumed, without consuming any?  1
 * if some are buffered or readable on the fd within timeout_ms (0: only
 * what is there already), 0 if none (or the other end closed), -errno if
 * the fd cannot tell (the error is not sticky). */
int state_stream_pending(struct state_stream *s, int timeout_ms);

/* Sticky state: 0 or the first -errno; the message says what failed. */
int state_stream_error(const struct state_stream *s);
const char *state_stream_msg(const struct state_stream *s);
void state_stream_fail(struct state_stream *s, int err, const char *fmt, ...) gw_printf(3, 4);

/* Bytes written or read so far. */
uint64_t state_stream_offset(const struct state_stream *s);

/* True when the stream failed because its transport did (a read error, a
 * timeout, the end of the stream in the middle of an item) rather than
 * because of what it carried: a recoverable live migration waits for the
 * sender to come back instead of failing (migration.h). */
bool state_stream_broken(const struct state_stream *s);
/* XXH3-64 of every byte written or read so far. */
uint64_t state_stream_digest(const struct state_stream *s);

/* Writer: stop after limit bytes have gone to the fd, as if the device were
 * full (-ENOSPC); for tests and fault injection.  0 = no limit. */
void state_stream_set_limit(struct state_stream *s, uint64_t limit);

#endif
