/*
 * QMP client (src/qmp/qmp_client.c) against the real server (src/qmp/qmp.c)
 * running on a thread of its own over a unix socket: greeting,
 * negotiation, commands that return and that fail, events queued while a
 * command waits and events waited for, timeouts (the late reply dropped
 * by its id), the server going away.  Then against a scripted peer on a
 * socketpair: malformed, oversized and out-of-protocol input, a refused
 * negotiation, stale replies, an event flood.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "board_check.h"
#include "qmp_test_cmds.h"
#include "common/sock.h"
#include "common/util.h"
#include "qmp/qmp.h"
#include "qmp/qmp_client.h"

#define T_MS 2000 /* timeout of calls that should succeed */

/* ---- the real server, on its own thread ---------------------------------- */

struct tserver {
    struct qmp_server *s;
    pthread_t thread;
    _Atomic bool stop;
    uint64_t emit_at; /* server thread only: send LATER at this time (0: no) */
};

/* {"names": ["A", "B", ...]}: those events, in order, before the reply. */
static json_t *cmd_emit(void *opaque, json_t *args, struct qmp_error *err)
{
    struct tserver *t = opaque;
    json_t *names = json_object_get(args, "names"), *n;
    size_t i;

    (void)err;
    json_array_foreach(names, i, n)
    {
        qmp_server_event(t->s, json_string_value(n), json_pack("{s:I}", "seq", (json_int_t)i));
    }
    return NULL;
}

/* {"ms": N}: the event LATER N ms after the reply. */
static json_t *cmd_emit_later(void *opaque, json_t *args, struct qmp_error *err)
{
    struct tserver *t = opaque;

    (void)err;
    t->emit_at = gw_now_ns() + (uint64_t)json_integer_value(json_object_get(args, "ms")) * 1000000;
    return NULL;
}

/* {"ms": N}: reply after N ms (the server thread stalls, as a slow VM would). */
static json_t *cmd_sleep(void *opaque, json_t *args, struct qmp_error *err)
{
    json_int_t ms = json_integer_value(json_object_get(args, "ms"));

    (void)opaque;
    (void)err;
    usleep((useconds_t)ms * 1000);
    return json_pack("{s:I}", "slept", ms);
}

/* The server answers, then goes away. */
static json_t *cmd_quit(void *opaque, json_t *args, struct qmp_error *err)
{
    struct tserver *t = opaque;

    (void)args;
    (void)err;
    atomic_store(&t->stop, true);
    return NULL;
}

static const struct qmp_command tcmds[] = {
    {"echo", cmd_echo, false},   {"fail", cmd_fail, false}, {"emit", cmd_emit, false},
    {"sleep", cmd_sleep, false}, {"quit", cmd_quit, false}, {"emit-later", cmd_emit_later, false},
};

static void *server_main(void *arg)
{
    struct tserver *t = arg;

    while (!atomic_load(&t->stop)) {
        struct pollfd fds[QMP_MAX_CLIENTS + 1];
        int n = qmp_server_pollfds(t->s, fds, (int)GW_ARRAY_SIZE(fds));

        (void)poll(fds, (nfds_t)n, 5);
        qmp_server_poll(t->s);
        if (t->emit_at && gw_now_ns() >= t->emit_at) {
            t->emit_at = 0;
            qmp_server_event(t->s, "LATER", NULL);
        }
    }
    qmp_server_event(t->s, "GONE", NULL); /* after the last reply */
    qmp_server_flush(t->s, 500);
    qmp_server_free(t->s);
    t->s = NULL;
    return NULL;
}

static bool server_start(struct tserver *t, const char *path)
{
    char spec[300], err[256];
    struct qmp_server_config cfg = {.spec = spec,
                                    .cmds = tcmds,
                                    .ncmds = GW_ARRAY_SIZE(tcmds),
                                    .opaque = t,
                                    .version_major = 7,
                                    .version_minor = 2,
                                    .version_micro = 0,
                                    .package = "godwit-test"};

    memset(t, 0, sizeof(*t));
    snprintf(spec, sizeof(spec), "unix:%s,server=on,wait=off", path);
    t->s = qmp_server_new(&cfg, err, sizeof(err));
    if (!t->s) {
        printf("     server: %s\n", err);
        return false;
    }
    return pthread_create(&t->thread, NULL, server_main, t) == 0;
}

static void server_stop(struct tserver *t)
{
    atomic_store(&t->stop, true);
    pthread_join(t->thread, NULL);
}

static unsigned ms_since(uint64_t t0)
{
    return (unsigned)((gw_now_ns() - t0) / 1000000);
}

static const char *ev_name(const json_t *ev)
{
    return json_string_value(json_object_get(ev, "event"));
}

static json_int_t ev_seq(const json_t *ev)
{
    return json_integer_value(json_object_get(json_object_get(ev, "data"), "seq"));
}

static void test_against_server(const char *dir)
{
    struct qmp_client *c = NULL;
    struct tserver t;
    char path[200], err[256];
    json_t *ret, *args, *ev;
    int r;

    snprintf(path, sizeof(path), "%s/qmp.sock", dir);
    r = qmp_client_connect(path, T_MS, &c, err, sizeof(err));
    CHECK(r == -ENOENT && !c && strstr(err, path), "no server: -ENOENT (%s)", err);
    if (!server_start(&t, path)) {
        CHECK(0, "server started");
        return;
    }

    /* greeting and negotiation */
    r = qmp_client_connect(path, T_MS, &c, err, sizeof(err));
    CHECK(r == 0 && c, "connect, greeting, qmp_capabilities (%s)", r ? err : "ok");
    if (r)
        goto out;
    const json_t *g = qmp_client_greeting(c);
    CHECK(json_integer_value(json_object_get(json_object_get(json_object_get(g, "version"), "qemu"),
                                             "major")) == 7 &&
              json_is_array(json_object_get(g, "capabilities")),
          "greeting: version 7.x and capabilities");
    r = qmp_client_execute(c, "query-version", NULL, T_MS, &ret, err, sizeof(err));
    CHECK(r == 0 && json_integer_value(json_object_get(json_object_get(ret, "qemu"), "minor")) == 2,
          "negotiated: query-version answers (not CommandNotFound)");
    json_decref(ret);

    /* a command that returns */
    args = json_pack("{s:i,s:s,s:[i,i]}", "a", 1, "s", "x\"y\n", "l", 2, 3);
    r = qmp_client_execute(c, "echo", args, T_MS, &ret, err, sizeof(err));
    CHECK(r == 0 && json_equal(ret, args), "command: echo returns its arguments");
    CHECK(!strcmp(qmp_client_error_class(c), ""), "no error class after a success");
    json_decref(ret);
    json_decref(args);
    r = qmp_client_execute(c, "emit", NULL, T_MS, NULL, err, sizeof(err));
    CHECK(r == 0, "command: no arguments, ret not wanted");
    args = json_integer(3);
    r = qmp_client_execute(c, "echo", args, T_MS, &ret, err, sizeof(err));
    json_decref(args);
    CHECK(r == -EINVAL && !ret, "command: arguments that are not an object: -EINVAL");

    /* error replies */
    r = qmp_client_execute(c, "fail", NULL, T_MS, &ret, err, sizeof(err));
    CHECK(r == -EREMOTEIO && !ret && !strcmp(qmp_client_error_class(c), "DeviceNotFound") &&
              strstr(err, "nodev"),
          "error reply: -EREMOTEIO, class %s, desc '%s'", qmp_client_error_class(c), err);
    r = qmp_client_execute(c, "no-such-command", NULL, T_MS, &ret, err, sizeof(err));
    CHECK(r == -EREMOTEIO && !strcmp(qmp_client_error_class(c), "CommandNotFound"),
          "unknown command: CommandNotFound (%s)", err);
    r = qmp_client_execute(c, "query-version", NULL, T_MS, NULL, err, sizeof(err));
    CHECK(r == 0, "the connection goes on after errors");

    /* events sent while a command waits are queued, in order */
    args = json_pack("{s:[s,s,s,s]}", "names", "A", "B", "A", "C");
    r = qmp_client_execute(c, "emit", args, T_MS, NULL, err, sizeof(err));
    json_decref(args);
    CHECK(r == 0 && qmp_client_events_queued(c) == 4, "4 events queued during a command (%u)",
          qmp_client_events_queued(c));
    r = qmp_client_wait_event(c, "C", 0, &ev, err, sizeof(err));
    CHECK(r == 0 && !strcmp(ev_name(ev), "C") && ev_seq(ev) == 3 &&
              json_is_object(json_object_get(ev, "timestamp")),
          "wait_event C: found in the queue, with data and timestamp");
    json_decref(ev);
    bool order = true;
    static const char *const want[] = {"A", "B", "A"};
    for (int i = 0; i < 3; i++) {
        r = qmp_client_event(c, 0, &ev, err, sizeof(err));
        order = order && r == 0 && !strcmp(ev_name(ev), want[i]);
        json_decref(ev);
    }
    CHECK(order, "the others stay queued, oldest first");
    r = qmp_client_event(c, 0, &ev, err, sizeof(err));
    CHECK(r == -EAGAIN && !ev, "event: timeout 0, none: -EAGAIN");
    uint64_t t0 = gw_now_ns();
    r = qmp_client_event(c, 100, &ev, err, sizeof(err));
    unsigned ms = ms_since(t0);
    CHECK(r == -ETIMEDOUT && ms >= 95 && ms < 1500, "event: -ETIMEDOUT after %u ms (%s)", ms, err);

    /* an event that comes after the reply */
    args = json_pack("{s:i}", "ms", 150);
    r = qmp_client_execute(c, "emit-later", args, T_MS, NULL, err, sizeof(err));
    json_decref(args);
    t0 = gw_now_ns();
    r = r ? r : qmp_client_wait_event(c, "LATER", T_MS, &ev, err, sizeof(err));
    ms = ms_since(t0);
    CHECK(r == 0 && !strcmp(ev_name(ev), "LATER") && !json_object_get(ev, "data") && ms >= 100,
          "wait_event: LATER arrives after %u ms", ms);
    json_decref(ev);

    /* a command that times out; its late reply must not answer the next */
    args = json_pack("{s:i}", "ms", 300);
    t0 = gw_now_ns();
    r = qmp_client_execute(c, "sleep", args, 50, &ret, err, sizeof(err));
    ms = ms_since(t0);
    json_decref(args);
    CHECK(r == -ETIMEDOUT && !ret && ms >= 45 && ms < 290 && strstr(err, "sleep"),
          "timeout: -ETIMEDOUT after %u ms (%s)", ms, err);
    args = json_pack("{s:s}", "after", "timeout");
    r = qmp_client_execute(c, "echo", args, T_MS, &ret, err, sizeof(err));
    CHECK(r == 0 && json_equal(ret, args),
          "the late reply is dropped: the next command gets its own");
    json_decref(ret);
    json_decref(args);

    /* the server goes away */
    args = json_pack("{s:[s]}", "names", "BYE");
    r = qmp_client_execute(c, "emit", args, T_MS, NULL, err, sizeof(err));
    json_decref(args);
    r = r ? r : qmp_client_execute(c, "quit", NULL, T_MS, NULL, err, sizeof(err));
    CHECK(r == 0, "quit answered before the server left");
    pthread_join(t.thread, NULL);
    r = qmp_client_execute(c, "query-version", NULL, T_MS, &ret, err, sizeof(err));
    CHECK((r == -EPIPE || r == -ECONNRESET) && !ret, "server gone: %d (%s)", r, err);
    r = qmp_client_execute(c, "query-version", NULL, T_MS, &ret, err, sizeof(err));
    CHECK(r == -EPIPE || r == -ECONNRESET, "and it stays gone: %d (%s)", r, err);
    r = qmp_client_event(c, T_MS, &ev, err, sizeof(err));
    CHECK(r == 0 && !strcmp(ev_name(ev), "BYE"), "an event queued before is still delivered");
    json_decref(ev);
    r = qmp_client_event(c, T_MS, &ev, err, sizeof(err));
    CHECK(r == 0 && !strcmp(ev_name(ev), "GONE"),
          "and so is the one sent after the last reply, just before the server left");
    json_decref(ev);
    r = qmp_client_event(c, T_MS, &ev, err, sizeof(err));
    CHECK(r < 0 && r != -ETIMEDOUT, "then events fail at once too (%s)", err);
    qmp_client_free(c);
    qmp_client_free(NULL);
    return;
out:
    qmp_client_free(c);
    server_stop(&t);
}

/* ---- a scripted peer on a socketpair ------------------------------------- */

struct peer {
    int fd;
    const char *script;
    size_t len;
    pthread_t thread;
};

/* Play the script: its chunks are separated by '\f' (a byte no JSON
 * text holds), and each chunk after the first waits for one read of the
 * client's request, as a server answers.  Then read until the client
 * closes. */
static void *peer_main(void *arg)
{
    struct peer *p = arg;
    size_t off = 0;
    char buf[4096];

    while (off < p->len) {
        const char *ff = memchr(p->script + off, '\f', p->len - off);
        size_t end = ff ? (size_t)(ff - p->script) : p->len;

        if (off && read(p->fd, buf, sizeof(buf)) <= 0)
            break;
        while (off < end) {
            ssize_t n = send(p->fd, p->script + off, end - off, MSG_NOSIGNAL);
            if (n <= 0)
                goto out;
            off += (size_t)n;
        }
        off += ff != NULL; /* past the '\f' */
    }
out:
    while (read(p->fd, buf, sizeof(buf)) > 0)
        ;
    close(p->fd);
    return NULL;
}

/* Attach a client to a peer playing script; the peer ends when the client
 * is freed (peer_end). */
static int peer_attach(struct peer *p, const char *script, size_t len, struct qmp_client **c,
                       char *err, size_t errlen)
{
    int sv[2];

    *c = NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    p->fd = sv[1];
    p->script = script;
    p->len = len;
    if (pthread_create(&p->thread, NULL, peer_main, p) != 0) {
        close(sv[0]);
        close(sv[1]);
        return -EAGAIN;
    }
    return qmp_client_attach(sv[0], 1000, c, err, errlen);
}

static void peer_end(struct peer *p, struct qmp_client *c)
{
    qmp_client_free(c); /* closes our end (the attach closed it on failure) */
    pthread_join(p->thread, NULL);
}

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"major\": 7}}, \"capabilities\": []}}\r\n"
#define CAPS_OK  "\f{\"return\": {}, \"id\": 1}\r\n"

static void test_malformed(void)
{
    static const struct {
        const char *what, *script;
        bool connects; /* the handshake succeeds; the next command fails */
    } cases[] = {
        {"garbage instead of a greeting", "hello\r\n", false},
        {"a greeting that is not an object", "[1, 2]\r\n", false},
        {"a scalar", "42\r\n", false},
        {"a reply before the greeting", "{\"return\": {}}\r\n" GREETING, false},
        {"mismatched brackets", "{\"QMP\": {]}\r\n", false},
        {"a control character", "{\"QMP\": {}\x01}\r\n", false},
        {"invalid JSON inside a value", "{\"QMP\": {\"a\": tru}}\r\n", false},
        {"duplicate keys", "{\"QMP\": {}, \"QMP\": {}}\r\n", false},
        {"a second greeting", GREETING CAPS_OK GREETING, true},
        {"a message that is neither reply nor event", GREETING CAPS_OK "{\"foo\": 1}\r\n", true},
        {"garbage after the handshake", GREETING CAPS_OK "{\"return\": \xff}\r\n", true},
        {"an event with a number for a name", GREETING CAPS_OK "{\"event\": 5}\r\n", true},
    };
    struct qmp_client *c;
    struct peer p;
    char err[256];
    json_t *ret;
    int r, r2;

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        err[0] = '\0';
        r = peer_attach(&p, cases[i].script, strlen(cases[i].script), &c, err, sizeof(err));
        if (cases[i].connects) {
            r2 = r ? r : qmp_client_execute(c, "x", NULL, 1000, &ret, err, sizeof(err));
            CHECK(r == 0 && r2 == -EPROTO && strstr(err, "QMP:"),
                  "malformed: %s: -EPROTO on the next command (%s)", cases[i].what, err);
            r2 = c ? qmp_client_execute(c, "x", NULL, 1000, &ret, err, sizeof(err)) : 0;
            CHECK(r2 == -EPROTO, "malformed: %s: and it stays broken", cases[i].what);
        } else {
            CHECK(r == -EPROTO && !c, "malformed: %s: -EPROTO (%s)", cases[i].what, err);
        }
        peer_end(&p, c);
    }

    /* a value over the framer's bound */
    size_t big = QMP_MAX_REQUEST + 100;
    char *s = malloc(big + 256);
    if (s) {
        size_t n =
            (size_t)snprintf(s, 256, "%s%s{\"event\": \"X\", \"data\": \"", GREETING, CAPS_OK);
        memset(s + n, 'a', big - n);
        memcpy(s + big, "\"}\r\n", 5);
        r = peer_attach(&p, s, strlen(s), &c, err, sizeof(err));
        r2 = r ? r : qmp_client_event(c, 2000, &ret, err, sizeof(err));
        CHECK(r2 == -EPROTO && strstr(err, "over"), "a message over %u bytes: -EPROTO (%s)",
              QMP_MAX_REQUEST, err);
        peer_end(&p, c);
        free(s);
    }

    /* the peer leaves in the middle of a message */
    static const char cut[] = GREETING CAPS_OK "{\"return\": {\"half";
    r = peer_attach(&p, cut, strlen(cut), &c, err, sizeof(err));
    if (r == 0)
        shutdown(p.fd, SHUT_WR); /* EOF for us after the half message */
    r2 = r ? r : qmp_client_execute(c, "x", NULL, 1000, &ret, err, sizeof(err));
    CHECK(r2 == -EPIPE, "EOF mid-message: -EPIPE (%s)", err);
    peer_end(&p, c);
}

static void test_scripted(void)
{
    struct qmp_client *c;
    struct peer p;
    char err[256];
    json_t *ret, *ev;
    int r;

    /* negotiation refused */
    static const char refuse[] = GREETING "\f{\"error\": {\"class\": \"GenericError\", \"desc\": "
                                          "\"no thanks\"}, \"id\": 1}\r\n";
    r = peer_attach(&p, refuse, strlen(refuse), &c, err, sizeof(err));
    CHECK(r == -EREMOTEIO && !c && strstr(err, "no thanks"), "negotiation refused: %s", err);
    peer_end(&p, c);

    /* stale and foreign replies are skipped by id; an id-less one answers */
    static const char stale[] = GREETING CAPS_OK "\f{\"return\": \"old\", \"id\": 999}\r\n"
                                                 "{\"return\": \"str-id\", \"id\": \"2\"}\r\n"
                                                 "{\"return\": \"new\", \"id\": 2}\r\n"
                                                 "\f{\"return\": \"noid\"}\r\n";
    r = peer_attach(&p, stale, strlen(stale), &c, err, sizeof(err));
    r = r ? r : qmp_client_execute(c, "x", NULL, 1000, &ret, err, sizeof(err));
    CHECK(r == 0 && !strcmp(json_string_value(ret) ?: "", "new"),
          "replies with other ids are skipped: %s", json_string_value(ret));
    json_decref(ret);
    r = c ? qmp_client_execute(c, "y", NULL, 1000, &ret, err, sizeof(err)) : -1;
    CHECK(r == 0 && !strcmp(json_string_value(ret) ?: "", "noid"),
          "a reply without an id answers the command in flight");
    json_decref(ret);
    peer_end(&p, c);

    /* an error reply without class or desc */
    static const char bare[] = GREETING CAPS_OK "\f{\"error\": {}, \"id\": 2}\r\n";
    r = peer_attach(&p, bare, strlen(bare), &c, err, sizeof(err));
    r = r ? r : qmp_client_execute(c, "x", NULL, 1000, &ret, err, sizeof(err));
    CHECK(r == -EREMOTEIO && !strcmp(qmp_client_error_class(c), "GenericError"),
          "an error reply without class: GenericError (%s)", err);
    peer_end(&p, c);

    /* a flood of events: the queue keeps the newest */
    unsigned nev = QMP_CLIENT_MAX_EVENTS + 76;
    size_t cap = strlen(GREETING CAPS_OK) + (size_t)nev * 64 + 1, len;
    char *flood = malloc(cap);
    if (flood) {
        len = (size_t)snprintf(flood, cap, "%s%s", GREETING, CAPS_OK);
        for (unsigned i = 0; i < nev; i++)
            len += (size_t)snprintf(flood + len, cap - len,
                                    "{\"event\": \"E\", \"data\": {\"seq\": %u}}\r\n", i);
        len += (size_t)snprintf(flood + len, cap - len, "{\"event\": \"LAST\"}\r\n");
        r = peer_attach(&p, flood, len, &c, err, sizeof(err));
        r = r ? r : qmp_client_wait_event(c, "LAST", 2000, &ev, err, sizeof(err));
        json_decref(ev);
        CHECK(r == 0 && qmp_client_events_queued(c) == QMP_CLIENT_MAX_EVENTS - 1 &&
                  qmp_client_events_dropped(c) == 77,
              "flood: %u queued, %llu dropped", c ? qmp_client_events_queued(c) : 0,
              c ? (unsigned long long)qmp_client_events_dropped(c) : 0);
        r = c ? qmp_client_event(c, 0, &ev, err, sizeof(err)) : -1;
        CHECK(r == 0 && ev_seq(ev) == 77, "flood: the oldest were dropped (first kept: %lld)",
              (long long)ev_seq(ev));
        json_decref(ev);
        peer_end(&p, c);
        free(flood);
    }
}

/* A server that accepts but never greets: connect gives up in time. */
static void test_silent(const char *dir)
{
    struct sock_addr a;
    struct qmp_client *c;
    char path[200], err[256];
    int lfd, r;

    snprintf(path, sizeof(path), "%s/silent.sock", dir);
    lfd = sock_addr_unix(&a, path, strlen(path), err, sizeof(err)) == 0
              ? sock_listen(&a, 4, NULL, err, sizeof(err))
              : -1;
    CHECK(lfd >= 0, "silent listener (%s)", lfd < 0 ? err : "");
    if (lfd < 0)
        return;
    uint64_t t0 = gw_now_ns();
    r = qmp_client_connect(path, 200, &c, err, sizeof(err));
    unsigned ms = ms_since(t0);
    CHECK(r == -ETIMEDOUT && !c && ms >= 190 && ms < 1500 && strstr(err, "greeting"),
          "no greeting: -ETIMEDOUT after %u ms (%s)", ms, err);
    close(lfd);
    unlink(path);
}

int main(void)
{
    char dir[] = "/tmp/godwit-qmpc-XXXXXX";

    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_against_server(dir);
    test_malformed();
    test_scripted();
    test_silent(dir);
    rmdir(dir);
    return board_check_done();
}
