/*
 * QMP client: drives a godwit-vm (or a QEMU) over its QMP socket, for the
 * host agent (godwitd) and the godwit CLI.  Depends on the JSON framer
 * (qmp_stream.c), common/ and jansson only, never on the emulator.
 *
 * One synchronous command at a time: qmp_client_execute() sends
 * {"execute": NAME, "arguments": ARGS, "id": N} and waits for the reply
 * carrying that id.  Events that arrive meanwhile are queued (oldest
 * first) for qmp_client_event() / qmp_client_wait_event().  A reply that
 * comes after its command timed out is recognised by its id and dropped,
 * so the connection stays usable after a timeout.
 *
 * The server's input is hostile until proven otherwise: every message is
 * bounded by the framer (QMP_MAX_REQUEST bytes), the event queue by count
 * and bytes (the oldest events are dropped first, and counted); malformed
 * JSON, a message that is not an object, or one that is no greeting,
 * reply or event breaks the connection (-EPROTO from then on).  A broken
 * connection stays broken: every later call returns the same error.
 *
 * Errors are -errno with a one-line reason in err (err may be NULL):
 * -ETIMEDOUT, -EPIPE (the server closed the connection), -ECONNRESET,
 * -EPROTO (malformed input), -ENOMEM, and -EREMOTEIO when the server
 * answered with an error (its class: qmp_client_error_class()).
 * Not thread-safe: one thread uses a client at a time.  No globals.
 */
#ifndef GODWIT_QMP_QMP_CLIENT_H
#define GODWIT_QMP_QMP_CLIENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define QMP_CLIENT_MAX_EVENTS  1024u      /* events queued before the oldest are dropped */
#define QMP_CLIENT_EVENT_BYTES (4u << 20) /* bytes of queued events (as received), likewise */

struct qmp_client;

/*
 * Connect to the QMP unix socket at path, read the greeting and negotiate
 * capabilities (qmp_capabilities), all within timeout_ms (-1: no limit).
 * 0 and *out, or -errno with a reason (-ENOENT, -ECONNREFUSED: no server).
 */
int qmp_client_connect(const char *path, int timeout_ms, struct qmp_client **out, char *err,
                       size_t errlen) gw_must_check;

/* The same on a socket already connected (a socketpair, an inherited fd).
 * The client owns fd from now on, even on failure. */
int qmp_client_attach(int fd, int timeout_ms, struct qmp_client **out, char *err,
                      size_t errlen) gw_must_check;

/* Close the connection, drop queued events.  NULL is a no-op. */
void qmp_client_free(struct qmp_client *c);

/* The greeting's "QMP" object ({"version": {...}, "capabilities": [...]});
 * borrowed, valid until qmp_client_free(). */
const json_t *qmp_client_greeting(const struct qmp_client *c);

/*
 * Run command cmd with args (NULL or an object; borrowed), waiting at most
 * timeout_ms (-1: no limit) for its reply.  0: *ret (if ret is not NULL)
 * is the "return" value, a new reference the caller releases.
 * -EREMOTEIO: the server refused it; err holds its "desc" and
 * qmp_client_error_class() its "class".  Other -errno as above.
 */
int qmp_client_execute(struct qmp_client *c, const char *cmd, json_t *args, int timeout_ms,
                       json_t **ret, char *err, size_t errlen) gw_must_check;

/* The class of the last error reply ("GenericError", "CommandNotFound",
 * ...); "" when the last command did not get one. */
const char *qmp_client_error_class(const struct qmp_client *c);

/*
 * The oldest queued event, or the next to arrive within timeout_ms (0:
 * only what has already arrived, -EAGAIN if none; -1: no limit).  0 and
 * *ev, the whole event object {"event", "data", "timestamp"} (a new
 * reference), or -errno.  Events queued before the connection broke are
 * still returned first.
 */
int qmp_client_event(struct qmp_client *c, int timeout_ms, json_t **ev, char *err,
                     size_t errlen) gw_must_check;

/* The oldest queued event named name, or the first to arrive within
 * timeout_ms; other events stay queued in order.  As qmp_client_event(). */
int qmp_client_wait_event(struct qmp_client *c, const char *name, int timeout_ms, json_t **ev,
                          char *err, size_t errlen) gw_must_check;

/* Events queued now, and dropped so far because the queue was full. */
unsigned qmp_client_events_queued(const struct qmp_client *c);
uint64_t qmp_client_events_dropped(const struct qmp_client *c);

/* The socket, to wait for input in a poll loop (then call
 * qmp_client_event() with timeout 0).  Events may already be queued
 * without the socket being readable: check qmp_client_events_queued(). */
int qmp_client_fd(const struct qmp_client *c);

#endif
