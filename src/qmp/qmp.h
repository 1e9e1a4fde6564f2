/*
 * QMP: the QEMU Machine Protocol server of godwit-vm (-qmp unix:PATH,...).
 *
 * Wire protocol as QEMU speaks it (docs/qmp.md), so existing clients
 * (qmp-shell, the Python qemu.qmp library, libvirt-style scripts) work:
 *   - on connect the server sends the greeting
 *       {"QMP": {"version": {"qemu": {"major","minor","micro"}, "package"},
 *                "capabilities": []}}
 *   - the client must first send {"execute": "qmp_capabilities"}; anything
 *     else before it gets a CommandNotFound error;
 *   - then {"execute": NAME, "arguments": {...}, "id": ANY} gets
 *     {"return": VALUE, "id": ANY} or
 *     {"error": {"class": CLASS, "desc": TEXT}, "id": ANY};
 *   - events go to every negotiated client:
 *       {"event": NAME, "data": {...}, "timestamp": {"seconds", "microseconds"}}.
 * Input is a stream of JSON objects: several may arrive in one read, one
 * may span many reads; whitespace between them is ignored.  Malformed JSON
 * gets a GenericError reply and the parser resynchronises; the connection
 * and the VM stay up.  Every client's input buffer is bounded
 * (QMP_MAX_REQUEST) and so is its output backlog (QMP_MAX_BACKLOG; a client
 * that stops reading is disconnected rather than growing memory).
 *
 * Threading: everything runs on the thread that calls qmp_server_poll()
 * (the machine's run loop); handlers run there too, so they may touch the
 * machine directly.  No global state: everything hangs off the server.
 */
#ifndef GODWIT_QMP_QMP_H
#define GODWIT_QMP_QMP_H

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define QMP_MAX_CLIENTS 8
#define QMP_MAX_REQUEST (1u << 20) /* bytes of one pending JSON value */
#define QMP_MAX_BACKLOG (8u << 20) /* bytes of unsent output per client */

/* Error classes QEMU uses (qapi/error.json). */
#define QMP_ERR_GENERIC        "GenericError"
#define QMP_ERR_NOT_FOUND      "CommandNotFound"
#define QMP_ERR_DEV_NOT_ACTIVE "DeviceNotActive"
#define QMP_ERR_DEV_NOT_FOUND  "DeviceNotFound"

struct qmp_error {
    const char *cls; /* one of QMP_ERR_*; NULL = no error */
    char desc[256];
};

/* Fill err (class and printf-style description); returns NULL so a
 * handler can `return qmp_error_set(err, ...);`. */
json_t *qmp_error_set(struct qmp_error *err, const char *cls, const char *fmt, ...) gw_printf(3, 4);

/*
 * A command handler: args is the "arguments" object (an empty object when
 * the client sent none; never NULL).  Returns the "return" value (a new
 * reference; NULL with err unset means {}), or NULL with err set.
 */
typedef json_t *(*qmp_handler_fn)(void *opaque, json_t *args, struct qmp_error *err);

struct qmp_command {
    const char *name;
    qmp_handler_fn fn;
    bool no_args; /* takes no arguments: any is refused before fn runs, as QEMU does */
};

struct qmp_server_config {
    const char *spec;               /* "unix:PATH,server=on,wait=off" (as -qmp takes it);
                                     * NULL: no socket, qmp_server_feed() only */
    const struct qmp_command *cmds; /* the machine's commands (built-ins are added) */
    size_t ncmds;
    void *opaque;                                    /* passed to handlers */
    int version_major, version_minor, version_micro; /* greeting / query-version */
    const char *package;                             /* e.g. "godwit" (query-version) */
};

struct qmp_server;

/*
 * Listen as spec says (a stale socket file at PATH is replaced; a live one
 * is refused).  With wait=on, blocks until the first client connects, as
 * QEMU does.  Built-in commands: qmp_capabilities, query-commands,
 * query-version.  NULL with a one-line reason in err.
 */
struct qmp_server *qmp_server_new(const struct qmp_server_config *cfg, char *err, size_t errlen);
/* Closes every client and removes the socket file.  NULL is a no-op. */
void qmp_server_free(struct qmp_server *s);

/* Descriptors to wait on (listening socket, clients; POLLOUT while output
 * is pending).  Returns how many were written (<= max). */
int qmp_server_pollfds(struct qmp_server *s, struct pollfd *fds, int max);

/* Accept, read, dispatch complete requests, write pending output.  Never
 * blocks.  Call it when a descriptor from qmp_server_pollfds() is ready,
 * and now and then anyway (cheap when idle). */
void qmp_server_poll(struct qmp_server *s);

/* Queue an event for every negotiated client.  data: NULL or an object
 * (the reference is stolen).  Sent at the next qmp_server_poll() and
 * flushed best-effort immediately. */
void qmp_server_event(struct qmp_server *s, const char *name, json_t *data);

/* Write every pending reply and event now (bounded wait, e.g. before the
 * process exits after "quit"). */
void qmp_server_flush(struct qmp_server *s, int timeout_ms);

/* Clients connected (negotiated or not). */
unsigned qmp_server_clients(const struct qmp_server *s);

/*
 * Feed raw bytes to a parser without a socket: the fuzz target and unit
 * tests use it.  Replies and events for this pseudo-client are appended to
 * out (a NUL-terminated string the caller frees), or dropped if out is
 * NULL.  Returns 0, or -EPROTO if the pseudo-client would have been
 * disconnected (oversized request).
 */
int qmp_server_feed(struct qmp_server *s, const void *data, size_t len, char **out);

/*
 * Deferred replies, for a command whose answer comes from something that
 * must not be waited for on this thread (the guest, say).  A handler calls
 * qmp_server_defer() and returns NULL with err unset: no reply is sent;
 * later, on the same thread, qmp_server_complete() sends it (ret: the
 * "return" value, stolen, NULL meaning {}; or err set).  Meanwhile that
 * client's further requests wait unread, so its replies stay in order;
 * other clients are served as usual.  A ticket whose client has gone is
 * dropped quietly.  qmp_server_defer() returns 0 outside a handler.
 * qmp_server_feed() returns -EBUSY when bytes after a deferred request were
 * left unread.  qmp_server_complete() never runs handlers, so it may be
 * called from device code in the middle of a hart's slice.
 */
uint64_t qmp_server_defer(struct qmp_server *s);
void qmp_server_complete(struct qmp_server *s, uint64_t ticket, json_t *ret,
                         const struct qmp_error *err);

#endif
