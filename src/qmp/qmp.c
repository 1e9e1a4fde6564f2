/*
 * QMP server: the listening socket, its clients and their buffers, and the
 * feed() pseudo-client.  Framing is in qmp_stream.c, request handling in
 * qmp_dispatch.c.
 *
 * Flow control: a client's input is framed and dispatched only while less
 * than QMP_PAUSE_BACKLOG bytes of its output wait unsent, so a client that
 * pipelines requests without reading replies is slowed down (we stop
 * reading its socket) rather than served into memory.  Output that still
 * passes QMP_MAX_BACKLOG (events pile up for a client that never reads)
 * disconnects the client.
 *
 * Clients are marked dead (peer gone, limits) and closed only by
 * qmp_sweep(), outside dispatch, because a handler may emit an event that
 * kills any client, including the one whose request it is serving.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/sock.h"
#include "qmp/qmp_int.h"

#define QMP_PAUSE_BACKLOG  (256u << 10) /* unsent bytes that pause reading */
#define QMP_LISTEN_BACKLOG 16

struct qmp_client {
    int fd;          /* socket; -1 for the feed() pseudo-client */
    bool active;     /* the pseudo-client has been greeted */
    bool negotiated; /* qmp_capabilities succeeded */
    bool dead;       /* close at the next sweep (feed(): report -EPROTO) */
    struct qmp_stream in;
    uint8_t *rbuf;     /* QMP_READ_CHUNK bytes; NULL for the pseudo-client */
    size_t rpos, rlen; /* rbuf[rpos..rlen) read but not yet framed */
    char *out;
    size_t out_off, out_len, out_cap; /* out[out_off..out_len) not yet sent */
    uint64_t waiting; /* ticket of a deferred reply (0: none); input waits meanwhile */
    json_t *wait_id;  /* that request's "id", or NULL */
};

struct qmp_server {
    struct qmp_dispatch disp;
    int listen_fd;               /* -1: socket-less (feed() only) */
    struct sock_unix_owner sock; /* the socket file, removed at free if still ours */
    struct qmp_client *clients[QMP_MAX_CLIENTS];
    unsigned nclients;
    struct qmp_client *pseudo;  /* feed()'s client, created on first use */
    unsigned dispatching;       /* >0 while handlers may run: no sweeping */
    struct qmp_client *current; /* whose request a handler serves (qmp_server_defer) */
    uint64_t deferred;          /* the ticket the running handler took, or 0 */
    uint64_t next_ticket;
    bool full_logged; /* "too many clients" said once */
};

static size_t client_pending(const struct qmp_client *c)
{
    return c->out_len - c->out_off;
}

static struct qmp_client *client_new(int fd)
{
    struct qmp_client *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->fd = fd;
    qmp_stream_init(&c->in);
    if (fd >= 0 && !(c->rbuf = malloc(QMP_READ_CHUNK))) {
        free(c);
        return NULL;
    }
    return c;
}

static void client_free(struct qmp_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    qmp_stream_fini(&c->in);
    json_decref(c->wait_id);
    free(c->rbuf);
    free(c->out);
    free(c);
}

/* Queue msg (stolen) as one line, "\r\n"-terminated as QEMU's monitor
 * writes it.  A client past QMP_MAX_BACKLOG is marked dead. */
static void client_queue(struct qmp_client *c, json_t *msg)
{
    char *text;
    size_t n;

    if (!msg || c->dead) {
        json_decref(msg);
        return;
    }
    text = json_dumps(msg, JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
    json_decref(msg);
    if (!text) {
        c->dead = true; /* out of memory: the client would miss a reply */
        return;
    }
    n = strlen(text);
    if (client_pending(c) + n + 2 > QMP_MAX_BACKLOG) {
        free(text);
        c->dead = true;
        return;
    }
    if (c->out_off && c->out_len + n + 2 > c->out_cap) {
        memmove(c->out, c->out + c->out_off, client_pending(c));
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + n + 2 > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        char *p;
        while (cap < c->out_len + n + 2)
            cap *= 2;
        p = realloc(c->out, cap);
        if (!p) {
            free(text);
            c->dead = true;
            return;
        }
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, text, n);
    memcpy(c->out + c->out_len + n, "\r\n", 2);
    c->out_len += n + 2;
    free(text);
}

/* Send what the socket takes now.  MSG_NOSIGNAL: a vanished peer must not
 * raise SIGPIPE in the VM process. */
static void client_write(struct qmp_client *c)
{
    while (c->fd >= 0 && client_pending(c)) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, client_pending(c), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        c->dead = true;
        c->out_off = c->out_len; /* nobody to send it to */
        break;
    }
    if (!client_pending(c))
        c->out_off = c->out_len = 0;
}

/* Act on one framing event for client c. */
static void client_handle(struct qmp_server *s, struct qmp_client *c, enum qmp_stream_event ev)
{
    char desc[96];

    switch (ev) {
    case QMP_STREAM_MORE: break;
    case QMP_STREAM_VALUE: {
        json_t *reply;

        s->dispatching++;
        s->current = c;
        s->deferred = 0;
        reply = qmp_dispatch_value(&s->disp, c->in.val, c->in.len, &c->negotiated);
        s->current = NULL;
        if (s->deferred && reply && json_object_get(reply, "return")) {
            /* The handler answers later (qmp_server_complete): keep the id. */
            c->waiting = s->deferred;
            c->wait_id = json_incref(json_object_get(reply, "id"));
            json_decref(reply);
        } else {
            client_queue(c, reply);
        }
        s->deferred = 0;
        s->dispatching--;
        break;
    }
    case QMP_STREAM_ERROR:
        client_queue(c, qmp_error_reply(QMP_ERR_GENERIC, c->in.err, NULL));
        break;
    case QMP_STREAM_TOO_BIG:
        snprintf(desc, sizeof(desc), "QMP input exceeds %u bytes; closing the connection",
                 QMP_MAX_REQUEST);
        client_queue(c, qmp_error_reply(QMP_ERR_GENERIC, desc, NULL));
        if (c->fd >= 0)
            gw_log("QMP: a client sent a request over %u bytes; disconnected it", QMP_MAX_REQUEST);
        c->dead = true;
        break;
    case QMP_STREAM_NOMEM:
        client_queue(c, qmp_error_reply(QMP_ERR_GENERIC, "out of memory", NULL));
        c->dead = true;
        break;
    }
}

/* Frame and dispatch what was read, until input or patience runs out. */
static void client_process(struct qmp_server *s, struct qmp_client *c)
{
    while (!c->dead && !c->waiting && c->rpos < c->rlen && client_pending(c) < QMP_PAUSE_BACKLOG) {
        size_t used = 0;
        enum qmp_stream_event ev =
            qmp_stream_feed(&c->in, c->rbuf + c->rpos, c->rlen - c->rpos, &used);
        c->rpos += used;
        client_handle(s, c, ev);
    }
}

static bool client_wants_input(const struct qmp_client *c)
{
    return !c->dead && !c->waiting && c->rpos == c->rlen && client_pending(c) < QMP_PAUSE_BACKLOG;
}

static void client_read(struct qmp_server *s, struct qmp_client *c)
{
    /* A few chunks per round: a big request moves on without starving
     * the other clients. */
    for (int k = 0; k < 4 && client_wants_input(c); k++) {
        ssize_t n = recv(c->fd, c->rbuf, QMP_READ_CHUNK, MSG_DONTWAIT);
        if (n > 0) {
            c->rpos = 0;
            c->rlen = (size_t)n;
            client_process(s, c);
        } else if (n == 0) {
            c->dead = true; /* EOF: a request cut short is dropped */
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                c->dead = true;
            break;
        }
    }
}

/* Close dead clients, sending them what fits first (the reply that
 * explains a disconnect, say). */
static void qmp_sweep(struct qmp_server *s)
{
    if (s->dispatching)
        return;
    for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
        struct qmp_client *c = s->clients[i];
        if (c && c->dead) {
            client_write(c);
            client_free(c);
            s->clients[i] = NULL;
            s->nclients--;
        }
    }
}

static int qmp_add_client(struct qmp_server *s, int fd)
{
    struct qmp_client *c;

    for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
        if (s->clients[i])
            continue;
        c = client_new(fd);
        if (!c)
            break;
        s->clients[i] = c;
        s->nclients++;
        client_queue(c, qmp_greeting(&s->disp));
        client_write(c);
        return 0;
    }
    /* Full: close at once, so the client sees EOF instead of hanging
     * without a greeting. */
    if (!s->full_logged)
        gw_log("QMP: %u clients already connected; refusing more", QMP_MAX_CLIENTS);
    s->full_logged = true;
    close(fd);
    return -EBUSY;
}

static void qmp_accept(struct qmp_server *s)
{
    int fd;

    /* Until none waits (or out of descriptors: retried next round). */
    while ((fd = sock_accept(s->listen_fd, 0, NULL, SOCK_F_NONBLOCK)) >= 0)
        (void)qmp_add_client(s, fd);
}

/* ---- socket setup ------------------------------------------------------ */

static int qmp_bool_opt(const char *v, size_t n, bool *out)
{
    static const char *const on[] = {"on", "yes", "true"}, *const off[] = {"off", "no", "false"};

    for (size_t i = 0; i < GW_ARRAY_SIZE(on); i++) {
        if (strlen(on[i]) == n && !strncmp(v, on[i], n)) {
            *out = true;
            return 0;
        }
        if (strlen(off[i]) == n && !strncmp(v, off[i], n)) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/*
 * "unix:PATH[,server[=on|off]][,wait=on|off][,nowait]": the -qmp syntax of
 * QEMU 7.2 and its older spellings.  As in QEMU, wait defaults to on for a
 * server.  Client mode (no server) is refused: nothing would connect to us.
 */
static int qmp_parse_spec(const char *spec, struct sock_addr *addr, bool *wait, char *err,
                          size_t errlen)
{
    char why[160];
    const char *p, *comma;
    bool server = false;
    size_t plen;
    int ret;

    if (strncmp(spec, "unix:", 5)) {
        snprintf(err, errlen, "QMP: unsupported socket '%s' (use unix:PATH,server=on,wait=off)",
                 spec);
        return -EINVAL;
    }
    p = spec + 5;
    comma = strchr(p, ',');
    plen = comma ? (size_t)(comma - p) : strlen(p);
    if (plen == 0) {
        snprintf(err, errlen, "QMP: '%s' needs a socket path", spec);
        return -EINVAL;
    }
    ret = sock_addr_unix(addr, p, plen, why, sizeof(why));
    if (ret < 0) {
        snprintf(err, errlen, "QMP: %s", why);
        return ret;
    }
    *wait = true;
    for (p = comma; p; p = comma) {
        const char *opt = p + 1, *eq;
        size_t n, klen;
        bool v = true;

        comma = strchr(opt, ',');
        n = comma ? (size_t)(comma - opt) : strlen(opt);
        eq = memchr(opt, '=', n);
        klen = eq ? (size_t)(eq - opt) : n;
        if (eq && qmp_bool_opt(eq + 1, n - klen - 1, &v) < 0) {
            snprintf(err, errlen, "QMP: bad value in '%.*s' (use on or off)", (int)n, opt);
            return -EINVAL;
        }
        if (klen == 6 && !strncmp(opt, "server", 6)) {
            server = v;
        } else if (klen == 4 && !strncmp(opt, "wait", 4)) {
            *wait = v;
        } else if (!eq && n == 6 && !strncmp(opt, "nowait", 6)) {
            *wait = false;
        } else {
            snprintf(err, errlen, "QMP: unsupported socket option '%.*s'", (int)n, opt);
            return -EINVAL;
        }
    }
    if (!server) {
        snprintf(err, errlen, "QMP: '%s' needs server=on (client mode is not supported)", spec);
        return -EINVAL;
    }
    return 0;
}

static int qmp_listen(struct qmp_server *s, const struct sock_addr *addr, char *err, size_t errlen)
{
    char why[200];
    int fd = sock_listen(addr, QMP_LISTEN_BACKLOG, &s->sock, why, sizeof(why));

    if (fd < 0) {
        snprintf(err, errlen, "QMP: %s", why);
        return fd;
    }
    s->listen_fd = fd;
    return 0;
}

/* wait=on: block until the first client, as QEMU does before the VM runs. */
static int qmp_wait_first(struct qmp_server *s, char *err, size_t errlen)
{
    struct pollfd p = {.fd = s->listen_fd, .events = POLLIN};
    sigset_t none;

    /* With every signal unblocked while we wait, so that INT/TERM (which
     * main blocks for its signal thread) still end the process. */
    sigemptyset(&none);
    gw_log("QMP: waiting for connection on: unix:%s,server=on", s->sock.path);
    while (s->nclients == 0) {
        if (ppoll(&p, 1, NULL, &none) < 0 && errno != EINTR) {
            int e = errno;
            snprintf(err, errlen, "QMP: waiting for a client: %s", strerror(e));
            return -e;
        }
        qmp_accept(s);
    }
    return 0;
}

/* ---- public API ---------------------------------------------------------- */

struct qmp_server *qmp_server_new(const struct qmp_server_config *cfg, char *err, size_t errlen)
{
    struct qmp_server *s = calloc(1, sizeof(*s));
    struct sock_addr addr;
    bool wait = false;

    if (!s) {
        snprintf(err, errlen, "QMP: out of memory");
        return NULL;
    }
    s->listen_fd = -1;
    if (qmp_dispatch_init(&s->disp, cfg, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    if (cfg->spec && (qmp_parse_spec(cfg->spec, &addr, &wait, err, errlen) < 0 ||
                      qmp_listen(s, &addr, err, errlen) < 0))
        goto out_free;
    if (cfg->spec && wait && qmp_wait_first(s, err, errlen) < 0)
        goto out_free;
    return s;

out_free:
    qmp_server_free(s);
    return NULL;
}

void qmp_server_free(struct qmp_server *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
        client_free(s->clients[i]);
    client_free(s->pseudo);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        /* Only our own socket file: another server may have replaced it. */
        sock_unix_release(&s->sock);
    }
    qmp_dispatch_fini(&s->disp);
    free(s);
}

int qmp_server_pollfds(struct qmp_server *s, struct pollfd *fds, int max)
{
    int n = 0;

    if (s->listen_fd >= 0 && n < max)
        fds[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
    for (unsigned i = 0; i < QMP_MAX_CLIENTS && n < max; i++) {
        struct qmp_client *c = s->clients[i];
        short ev = 0;
        if (!c)
            continue;
        if (client_wants_input(c))
            ev |= POLLIN;
        if (client_pending(c))
            ev |= POLLOUT;
        fds[n++] = (struct pollfd){.fd = c->fd, .events = ev};
    }
    return n;
}

void qmp_server_poll(struct qmp_server *s)
{
    struct pollfd fds[1 + QMP_MAX_CLIENTS];
    int n;

    /* Input held back while a reply was deferred: read on now that it went
     * out (no descriptor event would bring these clients here). */
    for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
        struct qmp_client *c = s->clients[i];
        if (c && !c->dead && !c->waiting && c->rpos < c->rlen) {
            client_process(s, c);
            client_write(c);
        }
    }
    n = qmp_server_pollfds(s, fds, (int)GW_ARRAY_SIZE(fds));
    /* One zero-timeout poll: an idle call costs a single syscall. */
    if (n == 0 || poll(fds, (nfds_t)n, 0) <= 0)
        return;
    for (int k = 0; k < n; k++) {
        struct qmp_client *c = NULL;
        if (!fds[k].revents)
            continue;
        if (fds[k].fd == s->listen_fd) {
            qmp_accept(s);
            continue;
        }
        for (unsigned i = 0; i < QMP_MAX_CLIENTS && !c; i++)
            if (s->clients[i] && s->clients[i]->fd == fds[k].fd)
                c = s->clients[i];
        if (!c || c->dead)
            continue;
        if (c->waiting && (fds[k].revents & (POLLHUP | POLLERR))) {
            c->dead = true; /* gone while its reply was deferred (input is not read then) */
            continue;
        }
        client_write(c);
        client_process(s, c); /* input held back while output was pending */
        if (fds[k].revents & (POLLIN | POLLHUP | POLLERR))
            client_read(s, c);
        client_write(c);
    }
    qmp_sweep(s);
}

void qmp_server_event(struct qmp_server *s, const char *name, json_t *data)
{
    struct timeval tv;
    json_t *ev;

    gettimeofday(&tv, NULL);
    ev = json_pack("{s:s}", "event", name);
    /* QEMU leaves "data" out of events that carry none (STOP, RESUME...). */
    if (ev && data)
        json_object_set(ev, "data", data);
    json_decref(data);
    if (ev)
        json_object_set_new(ev, "timestamp",
                            json_pack("{s:I,s:I}", "seconds", (json_int_t)tv.tv_sec, "microseconds",
                                      (json_int_t)tv.tv_usec));
    if (!ev)
        return;
    for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
        struct qmp_client *c = s->clients[i];
        if (c && c->negotiated && !c->dead) {
            client_queue(c, json_incref(ev));
            client_write(c);
        }
    }
    if (s->pseudo && s->pseudo->active && s->pseudo->negotiated)
        client_queue(s->pseudo, json_incref(ev));
    json_decref(ev);
    qmp_sweep(s);
}

void qmp_server_flush(struct qmp_server *s, int timeout_ms)
{
    uint64_t deadline = gw_now_ns() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000u;

    for (;;) {
        struct pollfd fds[QMP_MAX_CLIENTS];
        int n = 0;
        uint64_t now;

        for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
            struct qmp_client *c = s->clients[i];
            if (!c || c->dead)
                continue;
            client_write(c);
            if (client_pending(c) && !c->dead)
                fds[n++] = (struct pollfd){.fd = c->fd, .events = POLLOUT};
        }
        now = gw_now_ns();
        if (n == 0 || now >= deadline)
            break;
        if (poll(fds, (nfds_t)n, (int)((deadline - now + 999999) / 1000000)) < 0 && errno != EINTR)
            break;
    }
    qmp_sweep(s);
}

unsigned qmp_server_clients(const struct qmp_server *s)
{
    return s ? s->nclients : 0;
}

int qmp_server_feed(struct qmp_server *s, const void *data, size_t len, char **out)
{
    const uint8_t *p = data;
    struct qmp_client *c = s->pseudo;
    size_t pos = 0;
    int rc = 0;

    if (out)
        *out = NULL;
    if (!c) {
        c = s->pseudo = client_new(-1);
        if (!c)
            return -ENOMEM;
    }
    if (!c->active) {
        /* A fresh connection: greet it as a socket client is greeted. */
        c->active = true;
        client_queue(c, qmp_greeting(&s->disp));
    }
    while (pos < len && !c->dead && !c->waiting) {
        size_t used = 0;
        enum qmp_stream_event ev = qmp_stream_feed(&c->in, p + pos, len - pos, &used);
        pos += used;
        client_handle(s, c, ev);
    }
    if (out) {
        *out = malloc(client_pending(c) + 1);
        if (*out) {
            memcpy(*out, c->out + c->out_off, client_pending(c));
            (*out)[client_pending(c)] = '\0';
        }
    }
    c->out_off = c->out_len = 0;
    if (pos < len && !c->dead)
        rc = -EBUSY; /* a deferred reply is outstanding: the rest was not read */
    if (c->dead) {
        /* Disconnected: the next feed() starts a new connection. */
        client_free(c);
        s->pseudo = NULL;
        rc = -EPROTO;
    }
    return rc;
}

uint64_t qmp_server_defer(struct qmp_server *s)
{
    if (!s || !s->current || s->deferred)
        return 0;
    s->deferred = ++s->next_ticket;
    return s->deferred;
}

/* The client whose deferred reply has this ticket (gone: NULL). */
static struct qmp_client *qmp_waiting_client(struct qmp_server *s, uint64_t ticket)
{
    for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
        if (s->clients[i] && s->clients[i]->waiting == ticket)
            return s->clients[i];
    if (s->pseudo && s->pseudo->waiting == ticket)
        return s->pseudo;
    return NULL;
}

void qmp_server_complete(struct qmp_server *s, uint64_t ticket, json_t *ret,
                         const struct qmp_error *err)
{
    struct qmp_client *c = s && ticket ? qmp_waiting_client(s, ticket) : NULL;
    json_t *reply;

    if (!c) {
        json_decref(ret); /* the client left meanwhile */
        return;
    }
    if (err && err->cls) {
        json_decref(ret);
        reply = qmp_error_reply(err->cls, err->desc, c->wait_id);
    } else {
        reply = json_pack("{s:o}", "return", ret ? ret : json_object());
        if (reply && c->wait_id)
            json_object_set(reply, "id", c->wait_id);
    }
    json_decref(c->wait_id);
    c->wait_id = NULL;
    c->waiting = 0;
    client_queue(c, reply);
    /* Its further input is read at the next qmp_server_poll(): POLLOUT
     * for this reply brings the client there. */
    client_write(c);
}
