/*
 * QMP client (qmp_client.h).  The socket is non-blocking; every wait is a
 * poll() against a deadline on the monotonic clock.  Bytes read are framed
 * by qmp_stream (the server's framer: one bounded value at a time) and
 * every complete message is handled at once: a reply goes to the command
 * waiting for it (or is dropped when stale), an event to the queue.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/sock.h"
#include "qmp/qmp_client.h"
#include "qmp/qmp_int.h"

struct qmp_client_event {
    json_t *ev;
    size_t bytes; /* its size as received */
};

struct qmp_client {
    int fd;
    struct qmp_stream in;
    uint8_t *rbuf;    /* QMP_READ_CHUNK bytes */
    json_t *greeting; /* the "QMP" object; NULL until it arrived */
    json_int_t next_id;
    json_int_t want_id; /* id of the command waiting for its reply; 0: none */
    json_t *reply;      /* that reply, once it arrived */
    struct qmp_client_event events[QMP_CLIENT_MAX_EVENTS]; /* ring, oldest at ev_head */
    unsigned ev_head, ev_len;
    size_t ev_bytes;
    uint64_t ev_dropped;
    int broken; /* sticky -errno once the connection is unusable; 0 while fine */
    char broken_why[160];
    char err_class[64]; /* class of the last error reply */
};

/* The connection is unusable from now on (the first reason stays). */
static int client_break(struct qmp_client *c, int ret, const char *fmt, ...) gw_printf(3, 4);
static int client_break(struct qmp_client *c, int ret, const char *fmt, ...)
{
    va_list ap;

    if (c->broken)
        return c->broken;
    va_start(ap, fmt);
    vsnprintf(c->broken_why, sizeof(c->broken_why), fmt, ap);
    va_end(ap);
    c->broken = ret;
    return ret;
}

static int client_broken(const struct qmp_client *c, char *err, size_t errlen)
{
    return gw_fail(err, errlen, c->broken, "QMP: %s", c->broken_why);
}

/* ---- the event queue ----------------------------------------------------- */

static struct qmp_client_event *event_at(struct qmp_client *c, unsigned i)
{
    return &c->events[(c->ev_head + i) % QMP_CLIENT_MAX_EVENTS];
}

static void event_drop_oldest(struct qmp_client *c)
{
    struct qmp_client_event *e = event_at(c, 0);

    json_decref(e->ev);
    c->ev_bytes -= e->bytes;
    e->ev = NULL;
    c->ev_head = (c->ev_head + 1) % QMP_CLIENT_MAX_EVENTS;
    c->ev_len--;
}

/* Queue ev (stolen); a full queue loses its oldest events. */
static void event_push(struct qmp_client *c, json_t *ev, size_t bytes)
{
    while (c->ev_len &&
           (c->ev_len == QMP_CLIENT_MAX_EVENTS || c->ev_bytes + bytes > QMP_CLIENT_EVENT_BYTES)) {
        event_drop_oldest(c);
        c->ev_dropped++;
    }
    *event_at(c, c->ev_len) = (struct qmp_client_event){ev, bytes};
    c->ev_len++;
    c->ev_bytes += bytes;
}

/* Take the i-th queued event out (the later ones move up). */
static json_t *event_take(struct qmp_client *c, unsigned i)
{
    struct qmp_client_event e = *event_at(c, i);

    for (unsigned k = i; k + 1 < c->ev_len; k++)
        *event_at(c, k) = *event_at(c, k + 1);
    event_at(c, c->ev_len - 1)->ev = NULL;
    c->ev_len--;
    c->ev_bytes -= e.bytes;
    if (c->ev_len == 0)
        c->ev_head = 0;
    return e.ev;
}

/* Index of the oldest event named name (any if NULL), or -1. */
static int event_find(struct qmp_client *c, const char *name)
{
    for (unsigned i = 0; i < c->ev_len; i++) {
        const char *n = json_string_value(json_object_get(event_at(c, i)->ev, "event"));
        if (!name || (n && !strcmp(n, name)))
            return (int)i;
    }
    return -1;
}

/* ---- input ------------------------------------------------------------------ */

/* One complete message from the server. */
static int client_message(struct qmp_client *c, const char *text, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *v, *id;

    if (!msg)
        return client_break(c, -EPROTO, "malformed JSON from the server: %s", jerr.text);
    if (!json_is_object(msg)) {
        json_decref(msg);
        return client_break(c, -EPROTO, "the server sent a JSON value that is not an object");
    }
    if ((v = json_object_get(msg, "QMP"))) {
        if (c->greeting || !json_is_object(v)) {
            json_decref(msg);
            return client_break(c, -EPROTO, "unexpected greeting from the server");
        }
        c->greeting = json_incref(v);
        json_decref(msg);
        return 0;
    }
    if (!c->greeting) {
        json_decref(msg);
        return client_break(c, -EPROTO, "the server sent no greeting");
    }
    if (json_is_string(json_object_get(msg, "event"))) {
        event_push(c, msg, len);
        return 0;
    }
    if (json_object_get(msg, "return") || json_is_object(json_object_get(msg, "error"))) {
        /* A reply without an id (QEMU sends none for a request it could
         * not parse) belongs to the command in flight; one with another id
         * is the late reply of a command that timed out. */
        id = json_object_get(msg, "id");
        if (c->want_id && !c->reply &&
            (!id || (json_is_integer(id) && json_integer_value(id) == c->want_id)))
            c->reply = msg;
        else
            json_decref(msg);
        return 0;
    }
    json_decref(msg);
    return client_break(c, -EPROTO, "the server sent neither a reply nor an event");
}

/* Frame and handle data[0..len). */
static int client_feed(struct qmp_client *c, const uint8_t *data, size_t len)
{
    size_t pos = 0;

    while (pos < len && !c->broken) {
        size_t used = 0;
        enum qmp_stream_event ev = qmp_stream_feed(&c->in, data + pos, len - pos, &used);

        pos += used;
        switch (ev) {
        case QMP_STREAM_MORE: break;
        case QMP_STREAM_VALUE: (void)client_message(c, c->in.val, c->in.len); break;
        case QMP_STREAM_ERROR:
            return client_break(c, -EPROTO, "malformed input from the server: %s", c->in.err);
        case QMP_STREAM_TOO_BIG:
            return client_break(c, -EPROTO, "the server sent a message over %u bytes",
                                QMP_MAX_REQUEST);
        case QMP_STREAM_NOMEM: return client_break(c, -ENOMEM, "out of memory");
        }
    }
    return c->broken;
}

/* Wait until the socket is readable (or the deadline), read once, handle
 * what came.  0, -ETIMEDOUT, or the connection's error. */
static int client_read(struct qmp_client *c, uint64_t deadline)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    ssize_t n;
    int r;

    if (c->broken)
        return c->broken;
    r = gw_poll_until(&p, 1, deadline);
    if (r == -ETIMEDOUT)
        return r;
    if (r < 0)
        return client_break(c, r, "poll: %s", strerror(-r));
    do {
        n = recv(c->fd, c->rbuf, QMP_READ_CHUNK, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n > 0)
        return client_feed(c, c->rbuf, (size_t)n);
    if (n == 0)
        return client_break(c, -EPIPE, "the server closed the connection");
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    return client_break(c, -errno, "read: %s", strerror(errno));
}

/* ---- output ------------------------------------------------------------------ */

/* A write failed for good: take what the server sent before it went (its
 * last events, say SHUTDOWN) before the connection is marked broken. */
static void client_drain(struct qmp_client *c)
{
    while (client_read(c, gw_now_ns()) == 0)
        ;
}

static int client_send(struct qmp_client *c, const char *text, size_t len, uint64_t deadline)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        int r;

        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            int e = errno;
            client_drain(c);
            return client_break(c, -e, "write: %s", strerror(e));
        }
        r = poll(&p, 1, gw_deadline_left_ms(deadline));
        if (r < 0 && errno != EINTR)
            return client_break(c, -errno, "poll: %s", strerror(errno));
        if (r == 0) {
            /* Half a request would garble the next one: give up on it all. */
            if (off)
                return client_break(c, -ETIMEDOUT, "timed out in the middle of a request");
            return -ETIMEDOUT;
        }
    }
    return 0;
}

/* ---- public API ------------------------------------------------------------ */

int qmp_client_attach(int fd, int timeout_ms, struct qmp_client **out, char *err, size_t errlen)
{
    uint64_t deadline = gw_deadline_ns(timeout_ms);
    struct qmp_client *c;
    int ret;

    *out = NULL;
    c = calloc(1, sizeof(*c));
    if (!c || !(c->rbuf = malloc(QMP_READ_CHUNK))) {
        free(c);
        close(fd);
        return gw_fail(err, errlen, -ENOMEM, "QMP: out of memory");
    }
    c->fd = fd;
    qmp_stream_init(&c->in);
    ret = sock_set_nonblock(fd, true);
    if (ret < 0) {
        gw_fail(err, errlen, ret, "QMP: %s", strerror(-ret));
        goto out_free;
    }
    while (!c->greeting) {
        ret = client_read(c, deadline);
        if (ret == -ETIMEDOUT) {
            gw_fail(err, errlen, ret, "QMP: no greeting from the server within %d ms", timeout_ms);
            goto out_free;
        }
        if (ret < 0) {
            client_broken(c, err, errlen);
            goto out_free;
        }
    }
    ret = qmp_client_execute(c, "qmp_capabilities", NULL, gw_deadline_left_ms(deadline), NULL, err,
                             errlen);
    if (ret < 0)
        goto out_free;
    *out = c;
    return 0;

out_free:
    qmp_client_free(c);
    return ret;
}

int qmp_client_connect(const char *path, int timeout_ms, struct qmp_client **out, char *err,
                       size_t errlen)
{
    uint64_t deadline = gw_deadline_ns(timeout_ms);
    struct sock_addr addr;
    char why[240];
    int fd;

    *out = NULL;
    fd = sock_addr_unix(&addr, path, strlen(path), why, sizeof(why));
    if (fd >= 0)
        fd = sock_connect(&addr, timeout_ms, SOCK_F_NONBLOCK, why, sizeof(why));
    if (fd < 0)
        return gw_fail(err, errlen, fd, "QMP: %s", why);
    return qmp_client_attach(fd, gw_deadline_left_ms(deadline), out, err, errlen);
}

void qmp_client_free(struct qmp_client *c)
{
    if (!c)
        return;
    while (c->ev_len)
        event_drop_oldest(c);
    json_decref(c->greeting);
    json_decref(c->reply);
    qmp_stream_fini(&c->in);
    free(c->rbuf);
    close(c->fd);
    free(c);
}

const json_t *qmp_client_greeting(const struct qmp_client *c)
{
    return c->greeting;
}

const char *qmp_client_error_class(const struct qmp_client *c)
{
    return c->err_class;
}

/* The reply in c->reply, taken apart. */
static int client_reply(struct qmp_client *c, json_t **ret, char *err, size_t errlen)
{
    json_t *reply = c->reply, *v;
    const char *cls, *desc;
    int r = 0;

    c->reply = NULL;
    if ((v = json_object_get(reply, "return"))) {
        if (ret)
            *ret = json_incref(v);
    } else {
        v = json_object_get(reply, "error");
        cls = json_string_value(json_object_get(v, "class"));
        desc = json_string_value(json_object_get(v, "desc"));
        snprintf(c->err_class, sizeof(c->err_class), "%s", cls ? cls : "GenericError");
        r = gw_fail(err, errlen, -EREMOTEIO, "%s", desc ? desc : "(no description)");
    }
    json_decref(reply);
    return r;
}

int qmp_client_execute(struct qmp_client *c, const char *cmd, json_t *args, int timeout_ms,
                       json_t **ret, char *err, size_t errlen)
{
    uint64_t deadline = gw_deadline_ns(timeout_ms);
    json_t *req;
    char *text;
    int r;

    if (ret)
        *ret = NULL;
    c->err_class[0] = '\0';
    if (c->broken)
        return client_broken(c, err, errlen);
    if (args && !json_is_object(args))
        return gw_fail(err, errlen, -EINVAL, "QMP: %s: arguments must be an object", cmd);
    req = json_pack("{s:s,s:I}", "execute", cmd, "id", (json_int_t)++c->next_id);
    if (req && args && json_object_set(req, "arguments", args) < 0) {
        json_decref(req);
        req = NULL;
    }
    text = req ? json_dumps(req, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) : NULL;
    json_decref(req);
    if (!text)
        return gw_fail(err, errlen, -ENOMEM, "QMP: out of memory");
    r = client_send(c, text, strlen(text), deadline);
    free(text);
    if (r < 0)
        goto out_fail;
    c->want_id = c->next_id;
    while (!c->reply) {
        r = client_read(c, deadline);
        if (r < 0)
            break;
    }
    c->want_id = 0;
    if (c->reply)
        return client_reply(c, ret, err, errlen);
out_fail:
    if (r == -ETIMEDOUT && !c->broken)
        return gw_fail(err, errlen, r, "QMP: %s: no reply within %d ms", cmd, timeout_ms);
    return client_broken(c, err, errlen);
}

int qmp_client_wait_event(struct qmp_client *c, const char *name, int timeout_ms, json_t **ev,
                          char *err, size_t errlen)
{
    uint64_t deadline = gw_deadline_ns(timeout_ms);
    int i, r;

    *ev = NULL;
    for (;;) {
        i = event_find(c, name);
        if (i >= 0) {
            *ev = event_take(c, (unsigned)i);
            return 0;
        }
        r = client_read(c, deadline);
        if (r == -ETIMEDOUT) {
            if (timeout_ms == 0)
                return gw_fail(err, errlen, -EAGAIN, "QMP: no event%s%s yet", name ? " " : "",
                               name ? name : "");
            return gw_fail(err, errlen, r, "QMP: no event%s%s within %d ms", name ? " " : "",
                           name ? name : "", timeout_ms);
        }
        if (r < 0)
            return client_broken(c, err, errlen);
    }
}

int qmp_client_event(struct qmp_client *c, int timeout_ms, json_t **ev, char *err, size_t errlen)
{
    return qmp_client_wait_event(c, NULL, timeout_ms, ev, err, errlen);
}

unsigned qmp_client_events_queued(const struct qmp_client *c)
{
    return c->ev_len;
}

uint64_t qmp_client_events_dropped(const struct qmp_client *c)
{
    return c->ev_dropped;
}

int qmp_client_fd(const struct qmp_client *c)
{
    return c->fd;
}
