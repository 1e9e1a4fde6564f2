/*
 * QMP server: the wire protocol over real unix sockets in a temporary
 * directory (greeting, negotiation, id echo, every error class, framing
 * across and within writes, limits, events, many clients, stale and live
 * socket files, wait=on) and through qmp_server_feed().
 *
 * Server and clients share this thread: every client wait pumps the
 * server (qmp_server_poll) until the expected bytes arrive.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "board_check.h"
#include "qmp_test_cmds.h"
#include "common/util.h"
#include "qmp/qmp.h"

struct tclient {
    int fd;
    bool eof;
    size_t len;
    char buf[1 << 16];
};

struct tctx {
    struct qmp_server *s;
    uint64_t ticket; /* the last deferred reply (cmd_defer) */
};

static json_t *cmd_nothing(void *opaque, json_t *args, struct qmp_error *err)
{
    (void)opaque;
    (void)args;
    (void)err;
    return NULL;
}

/* Emits an event from inside a handler (before its own reply). */
static json_t *cmd_emit(void *opaque, json_t *args, struct qmp_error *err)
{
    struct tctx *t = opaque;
    (void)err;
    qmp_server_event(t->s, "TEST_EVENT", json_deep_copy(args));
    return NULL;
}

/* Answers later: the test completes t->ticket. */
static json_t *cmd_defer(void *opaque, json_t *args, struct qmp_error *err)
{
    struct tctx *t = opaque;
    (void)args;
    (void)err;
    t->ticket = qmp_server_defer(t->s);
    return NULL;
}

static const struct qmp_command test_cmds[] = {
    {"defer", cmd_defer, true},     {"echo", cmd_echo, false}, {"fail", cmd_fail, false},
    {"nothing", cmd_nothing, true}, {"emit", cmd_emit, false},
};

static struct qmp_server *new_server(const char *spec, struct tctx *t, char *err, size_t errlen)
{
    struct qmp_server_config cfg = {.spec = spec,
                                    .cmds = test_cmds,
                                    .ncmds = GW_ARRAY_SIZE(test_cmds),
                                    .opaque = t,
                                    .version_major = 7,
                                    .version_minor = 2,
                                    .version_micro = 0,
                                    .package = "godwit-test"};
    t->s = qmp_server_new(&cfg, err, errlen);
    return t->s;
}

/* Serve for up to ms milliseconds (poll-driven, as a run loop would). */
static void pump(struct qmp_server *s, int ms)
{
    uint64_t end = gw_now_ns() + (uint64_t)ms * 1000000u;
    do {
        struct pollfd fds[QMP_MAX_CLIENTS + 1];
        int n = qmp_server_pollfds(s, fds, (int)GW_ARRAY_SIZE(fds));
        (void)poll(fds, (nfds_t)n, 2);
        qmp_server_poll(s);
    } while (gw_now_ns() < end);
}

static int tc_connect(struct tclient *c, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    memset(c, 0, sizeof(*c));
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -errno;
    return 0;
}

static void tc_close(struct tclient *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Next line from the server, parsed (NULL on EOF or timeout); the raw
 * line goes to raw when given. */
static json_t *tc_recv_raw(struct qmp_server *s, struct tclient *c, int ms, char *raw,
                           size_t rawlen)
{
    uint64_t end = gw_now_ns() + (uint64_t)ms * 1000000u;

    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf) + 1;
            json_t *v = json_loadb(c->buf, n, 0, NULL);
            if (raw)
                snprintf(raw, rawlen, "%.*s", (int)n, c->buf);
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            return v;
        }
        if (c->eof || gw_now_ns() > end)
            return NULL;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
        if (r > 0)
            c->len += (size_t)r;
        else if (r == 0 || (errno != EAGAIN && errno != EINTR))
            c->eof = true; /* EOF, or ECONNRESET when the server dropped us */
        else
            pump(s, 1);
    }
}

static json_t *tc_recv(struct qmp_server *s, struct tclient *c)
{
    return tc_recv_raw(s, c, 2000, NULL, 0);
}

/* Send everything (pumping the server meanwhile); false if the server
 * went away. */
static bool tc_send(struct qmp_server *s, struct tclient *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t r = send(c->fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0)
            off += (size_t)r;
        else if (r < 0 && (errno == EAGAIN || errno == EINTR))
            pump(s, 1);
        else
            return false;
    }
    return true;
}

static json_t *tc_cmd(struct qmp_server *s, struct tclient *c, const char *req)
{
    if (!tc_send(s, c, req, strlen(req)))
        return NULL;
    return tc_recv(s, c);
}

static bool is_error(json_t *v, const char *cls, const char *desc)
{
    json_t *e = json_object_get(v, "error");
    const char *d = json_string_value(json_object_get(e, "desc"));
    bool ok = e && !strcmp(json_string_value(json_object_get(e, "class")) ?: "", cls) && d &&
              (!desc || strstr(d, desc));
    if (!ok) {
        char *t = json_dumps(v, 0);
        printf("     got %s\n", t ? t : "(nothing)");
        free(t);
    }
    json_decref(v);
    return ok;
}

static bool is_return_empty(json_t *v)
{
    json_t *r = json_object_get(v, "return");
    bool ok = json_is_object(r) && json_object_size(r) == 0;
    json_decref(v);
    return ok;
}

/* Connect and read the greeting; negotiate too when asked. */
static bool tc_open(struct qmp_server *s, struct tclient *c, const char *path, bool negotiate)
{
    json_t *g;
    if (tc_connect(c, path) < 0)
        return false;
    g = tc_recv(s, c);
    if (!json_object_get(g, "QMP")) {
        json_decref(g);
        return false;
    }
    json_decref(g);
    return !negotiate || is_return_empty(tc_cmd(s, c, "{\"execute\": \"qmp_capabilities\"}"));
}

static void test_greeting_and_negotiation(struct qmp_server *s, const char *path)
{
    struct tclient c;
    char raw[512];
    json_t *g, *v;

    CHECK(tc_connect(&c, path) == 0, "connect");
    g = tc_recv_raw(s, &c, 2000, raw, sizeof(raw));
    v = json_object_get(json_object_get(g, "QMP"), "version");
    CHECK(json_integer_value(json_object_get(json_object_get(v, "qemu"), "major")) == 7 &&
              json_integer_value(json_object_get(json_object_get(v, "qemu"), "minor")) == 2 &&
              !strcmp(json_string_value(json_object_get(v, "package")) ?: "", "godwit-test"),
          "greeting carries the version");
    CHECK(json_array_size(json_object_get(json_object_get(g, "QMP"), "capabilities")) == 0 &&
              json_is_array(json_object_get(json_object_get(g, "QMP"), "capabilities")),
          "greeting offers no capabilities");
    CHECK(strlen(raw) > 2 && !strcmp(raw + strlen(raw) - 2, "\r\n"), "lines end in CR LF");
    json_decref(g);

    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": \"query-version\"}"), QMP_ERR_NOT_FOUND,
                   "Expecting capabilities negotiation with 'qmp_capabilities'"),
          "a command before negotiation: CommandNotFound");
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": \"nope\"}"), QMP_ERR_NOT_FOUND,
                   "Expecting capabilities negotiation"),
          "an unknown command before negotiation: the same");
    CHECK(is_error(tc_cmd(s, &c, "{\"arguments\": {}}"), QMP_ERR_GENERIC,
                   "QMP input lacks member 'execute'"),
          "a malformed request before negotiation: GenericError");
    CHECK(is_error(tc_cmd(s, &c,
                          "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": "
                          "[\"oob\"]}}"),
                   QMP_ERR_GENERIC, "Capability oob not available"),
          "oob refused");
    CHECK(is_error(tc_cmd(s, &c,
                          "{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": "
                          "[\"bogus\"]}}"),
                   QMP_ERR_GENERIC, "does not accept value 'bogus'"),
          "unknown capability refused");
    v = tc_cmd(s, &c, "{\"execute\": \"qmp_capabilities\", \"id\": {\"k\": [1, \"x\"]}}");
    {
        json_t *want = json_pack("{s:[i,s]}", "k", 1, "x");
        CHECK(json_equal(json_object_get(v, "id"), want) &&
                  json_object_size(json_object_get(v, "return")) == 0,
              "negotiation returns {} and echoes an object id");
        json_decref(want);
    }
    json_decref(v);
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": \"qmp_capabilities\", \"id\": 3}"),
                   QMP_ERR_NOT_FOUND,
                   "Capabilities negotiation is already complete, command ignored"),
          "second negotiation: CommandNotFound");
    v = tc_cmd(s, &c, "{\"execute\": \"query-version\", \"id\": \"v1\"}");
    CHECK(json_integer_value(json_object_get(json_object_get(json_object_get(v, "return"), "qemu"),
                                             "major")) == 7 &&
              !strcmp(json_string_value(json_object_get(v, "id")) ?: "", "v1"),
          "query-version, string id echoed");
    json_decref(v);
    v = tc_cmd(s, &c, "{\"execute\": \"query-commands\"}");
    {
        unsigned found = 0;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(v, "return"), i, e)
        {
            const char *n = json_string_value(json_object_get(e, "name")) ?: "";
            found += !strcmp(n, "qmp_capabilities") + !strcmp(n, "query-commands") +
                     !strcmp(n, "query-version") + !strcmp(n, "echo") + !strcmp(n, "fail") +
                     !strcmp(n, "nothing") + !strcmp(n, "emit") + !strcmp(n, "defer");
        }
        CHECK(found == 8 && json_array_size(json_object_get(v, "return")) == 8,
              "query-commands lists built-ins and custom commands");
    }
    json_decref(v);
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": \"query-version\", \"arguments\": {\"x\": 1}}"),
                   QMP_ERR_GENERIC, "Parameter 'x' is unexpected"),
          "built-ins refuse arguments");
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": \"nothing\", \"arguments\": {\"y\": 2}}"),
                   QMP_ERR_GENERIC, "Parameter 'y' is unexpected"),
          "a command marked no_args refuses arguments before its handler runs");
    tc_close(&c);
}

static void test_errors(struct qmp_server *s, const char *path)
{
    struct tclient c;
    json_t *v;

    CHECK(tc_open(s, &c, path, true), "client for error tests");
    CHECK(is_error(tc_cmd(s, &c, "[1, 2]"), QMP_ERR_GENERIC, "QMP input must be a JSON object"),
          "an array: GenericError");
    CHECK(is_error(tc_cmd(s, &c, "42 "), QMP_ERR_GENERIC, "QMP input must be a JSON object"),
          "a number: GenericError");
    CHECK(
        is_error(tc_cmd(s, &c, "{\"id\": 1}"), QMP_ERR_GENERIC, "QMP input lacks member 'execute'"),
        "no execute");
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": \"echo\", \"arguments\": [1]}"), QMP_ERR_GENERIC,
                   "QMP input member 'arguments' must be an object"),
          "arguments not an object");
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": 1}"), QMP_ERR_GENERIC,
                   "QMP input member 'execute' must be a string"),
          "execute not a string");
    v = tc_cmd(s, &c, "{\"execute\": \"echo\", \"x\": 1, \"id\": 9}");
    CHECK(json_integer_value(json_object_get(v, "id")) == 9 && json_incref(v) &&
              is_error(v, QMP_ERR_GENERIC, "QMP input member 'x' is unexpected"),
          "unexpected member, id still echoed");
    json_decref(v);
    CHECK(is_error(tc_cmd(s, &c, "{\"exec-oob\": \"echo\"}"), QMP_ERR_GENERIC,
                   "QMP input member 'exec-oob' is unexpected"),
          "exec-oob refused (no oob)");
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": \"no-such\"}"), QMP_ERR_NOT_FOUND,
                   "The command no-such has not been found"),
          "unknown command");
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": \"fail\", \"id\": 1}"), QMP_ERR_DEV_NOT_FOUND,
                   "Device 'nodev' not found"),
          "a handler's error class and text");
    CHECK(is_return_empty(tc_cmd(s, &c, "{\"execute\": \"nothing\"}")),
          "a handler returning NULL gives {}");
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": tru}"), QMP_ERR_GENERIC, "JSON parse error"),
          "malformed JSON: parse error");
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": \"echo\", \"execute\": \"echo\"}"), QMP_ERR_GENERIC,
                   "JSON parse error"),
          "duplicate key: parse error");
    CHECK(is_error(tc_cmd(s, &c, "{\"execute\": \"echo\", \"id\": \"unterminated\n"),
                   QMP_ERR_GENERIC, "JSON parse error"),
          "unterminated string: parse error at the newline");
    CHECK(is_error(tc_cmd(s, &c, "{\"a\": [1}\n"), QMP_ERR_GENERIC, "mismatched"),
          "mismatched brackets: parse error");
    CHECK(is_error(tc_cmd(s, &c, "{\"a\": \xff"), QMP_ERR_GENERIC, "JSON parse error"),
          "0xFF: parse error");
    CHECK(is_return_empty(tc_cmd(s, &c, "{\"execute\": \"nothing\"}")),
          "the parser recovered after each error");
    CHECK(is_error(tc_cmd(s, &c, "}"), QMP_ERR_GENERIC, "stray"), "a stray closer");
    v = tc_cmd(s, &c, "{\"execute\": \"echo\", \"arguments\": {\"s\": \"\xc3\xa9\\u0041\"}}");
    CHECK(!strcmp(json_string_value(json_object_get(json_object_get(v, "return"), "s")) ?: "",
                  "\xc3\xa9"
                  "A"),
          "UTF-8 and escapes round-trip");
    json_decref(v);
    tc_close(&c);
}

static void test_framing(struct qmp_server *s, const char *path)
{
    const char *two = "{\"execute\": \"echo\", \"arguments\": {\"n\": 1}}"
                      "  {\"execute\": \"echo\", \"arguments\": {\"n\": 2}, \"id\": 2}";
    const char *one = "{\"execute\": \"echo\", \"arguments\": {\"s\": \"}{\\\"]\"}, \"id\": 7}";
    struct tclient c;
    json_t *a, *b;
    bool ok = true;

    CHECK(tc_open(s, &c, path, true), "client for framing tests");
    tc_send(s, &c, two, strlen(two));
    a = tc_recv(s, &c);
    b = tc_recv(s, &c);
    CHECK(json_integer_value(json_object_get(json_object_get(a, "return"), "n")) == 1 &&
              json_integer_value(json_object_get(json_object_get(b, "return"), "n")) == 2,
          "two values in one write: two replies in order");
    json_decref(a);
    json_decref(b);
    for (size_t i = 0; i < strlen(one) && ok; i++) {
        ok = tc_send(s, &c, one + i, 1);
        pump(s, 1);
    }
    a = tc_recv(s, &c);
    CHECK(ok && json_integer_value(json_object_get(a, "id")) == 7 &&
              !strcmp(json_string_value(json_object_get(json_object_get(a, "return"), "s")) ?: "",
                      "}{\"]"),
          "one value sent byte by byte (brackets inside a string)");
    json_decref(a);

    /* Pipelining: far more replies than the pause threshold, not read
     * until all requests are sent. */
    {
        static const char req[] = "{\"execute\": \"query-version\"}\n";
        size_t n = 4000, got = 0;
        char *buf = malloc(n * (sizeof(req) - 1));
        for (size_t i = 0; i < n; i++)
            memcpy(buf + i * (sizeof(req) - 1), req, sizeof(req) - 1);
        ok = tc_send(s, &c, buf, n * (sizeof(req) - 1));
        free(buf);
        while ((a = tc_recv(s, &c)) && json_object_get(a, "return")) {
            json_decref(a);
            if (++got == n)
                break;
        }
        CHECK(ok && got == n, "4000 pipelined requests: 4000 replies (got %zu)", got);
    }
    tc_close(&c);
}

static void test_limits(struct qmp_server *s, const char *path)
{
    struct tclient a, big, cut;
    size_t len = QMP_MAX_REQUEST + 4096;
    char *req = malloc(len);
    unsigned before;
    json_t *v;

    CHECK(tc_open(s, &a, path, true), "bystander client");
    CHECK(tc_open(s, &big, path, true), "client that sends too much");
    before = qmp_server_clients(s);
    memset(req, 'a', len);
    {
        static const char head[] = "{\"execute\": \"echo\", \"arguments\": {\"s\": \"";
        memcpy(req, head, sizeof(head) - 1);
    }
    (void)tc_send(s, &big, req, len); /* the server may hang up before the end */
    free(req);
    v = tc_recv_raw(s, &big, 3000, NULL, 0);
    CHECK(is_error(v, QMP_ERR_GENERIC, "exceeds"), "over QMP_MAX_REQUEST: an error reply");
    v = tc_recv_raw(s, &big, 3000, NULL, 0);
    CHECK(!v && big.eof, "... then the connection is closed");
    json_decref(v);
    pump(s, 20);
    CHECK(qmp_server_clients(s) == before - 1, "server dropped that client only");
    CHECK(is_return_empty(tc_cmd(s, &a, "{\"execute\": \"nothing\"}")),
          "another client carries on");
    tc_close(&big);

    CHECK(tc_open(s, &cut, path, true), "client that leaves mid-request");
    before = qmp_server_clients(s);
    tc_send(s, &cut, "{\"execute\": \"ec", 15);
    pump(s, 10);
    tc_close(&cut);
    pump(s, 20);
    CHECK(qmp_server_clients(s) == before - 1, "disconnect mid-request: client gone");

    /* A client that asks and leaves before the reply: the send must fail
     * with EPIPE, not kill us with SIGPIPE. */
    CHECK(tc_open(s, &cut, path, true), "client that leaves before its reply");
    tc_send(s, &cut, "{\"execute\": \"query-commands\"}", 30);
    tc_close(&cut);
    pump(s, 20);
    CHECK(is_return_empty(tc_cmd(s, &a, "{\"execute\": \"nothing\"}")),
          "no SIGPIPE, still serving");
    tc_close(&a);
    pump(s, 20);
}

static void test_events(struct qmp_server *s, const char *path)
{
    struct tclient neg, raw;
    json_t *v;

    CHECK(tc_open(s, &neg, path, true), "negotiated client");
    CHECK(tc_open(s, &raw, path, false), "unnegotiated client");
    qmp_server_event(s, "STOP", NULL);
    qmp_server_event(s, "DATA_EVENT", json_pack("{s:i}", "x", 5));
    v = tc_recv(s, &neg);
    CHECK(!strcmp(json_string_value(json_object_get(v, "event")) ?: "", "STOP") &&
              !json_object_get(v, "data") &&
              json_is_integer(json_object_get(json_object_get(v, "timestamp"), "seconds")) &&
              json_is_integer(json_object_get(json_object_get(v, "timestamp"), "microseconds")),
          "event without data: event and timestamp");
    json_decref(v);
    v = tc_recv(s, &neg);
    CHECK(json_integer_value(json_object_get(json_object_get(v, "data"), "x")) == 5,
          "event with data");
    json_decref(v);
    v = tc_cmd(s, &raw, "{\"execute\": \"qmp_capabilities\"}");
    CHECK(json_object_get(v, "return") != NULL, "unnegotiated client saw no event");
    json_decref(v);
    tc_send(s, &neg, "{\"execute\": \"emit\", \"arguments\": {\"y\": 1}, \"id\": 4}", 51);
    v = tc_recv(s, &neg);
    CHECK(!strcmp(json_string_value(json_object_get(v, "event")) ?: "", "TEST_EVENT"),
          "an event from a handler comes before its reply");
    json_decref(v);
    v = tc_recv(s, &neg);
    CHECK(json_integer_value(json_object_get(v, "id")) == 4, "... then the reply");
    json_decref(v);
    v = tc_recv(s, &raw);
    CHECK(!strcmp(json_string_value(json_object_get(v, "event")) ?: "", "TEST_EVENT"),
          "the other (now negotiated) client gets it too");
    json_decref(v);
    tc_close(&neg);
    tc_close(&raw);
    pump(s, 20);
}

static void test_many_clients(struct qmp_server *s, const char *path)
{
    struct tclient c[QMP_MAX_CLIENTS + 1];
    unsigned ok = 0;
    json_t *v;

    for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
        ok += tc_open(s, &c[i], path, true);
    CHECK(ok == QMP_MAX_CLIENTS && qmp_server_clients(s) == QMP_MAX_CLIENTS,
          "%u clients served at once", QMP_MAX_CLIENTS);
    CHECK(tc_connect(&c[QMP_MAX_CLIENTS], path) == 0, "one more connects");
    v = tc_recv_raw(s, &c[QMP_MAX_CLIENTS], 500, NULL, 0);
    CHECK(!v && c[QMP_MAX_CLIENTS].eof, "... and is closed without a greeting");
    tc_close(&c[QMP_MAX_CLIENTS]);
    ok = 0;
    for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
        ok += is_return_empty(tc_cmd(s, &c[i], "{\"execute\": \"nothing\"}"));
    CHECK(ok == QMP_MAX_CLIENTS, "all of them still answered");
    tc_close(&c[0]);
    pump(s, 20);
    CHECK(tc_open(s, &c[0], path, true), "a freed slot takes a new client");
    for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
        tc_close(&c[i]);
    pump(s, 20);
    CHECK(qmp_server_clients(s) == 0, "all gone");
}

/* A client that never reads while events pile up is dropped. */
static void test_backlog(const char *dir)
{
    char path[256], err[256];
    struct tctx t;
    struct qmp_server *s;
    struct tclient c;
    char *big = malloc(256 << 10);

    snprintf(path, sizeof(path), "unix:%s/backlog.sock,server=on,wait=off", dir);
    s = new_server(path, &t, err, sizeof(err));
    CHECK(s != NULL, "backlog server: %s", s ? "up" : err);
    if (!s) {
        free(big);
        return;
    }
    snprintf(path, sizeof(path), "%s/backlog.sock", dir);
    CHECK(tc_open(s, &c, path, true), "client that stops reading");
    memset(big, 'e', (256 << 10) - 1);
    big[(256 << 10) - 1] = '\0';
    for (int i = 0; i < 64 && qmp_server_clients(s); i++) {
        qmp_server_event(s, "BIG", json_pack("{s:s}", "s", big));
        pump(s, 1);
    }
    CHECK(qmp_server_clients(s) == 0, "dropped past QMP_MAX_BACKLOG of unread events");
    tc_close(&c);
    qmp_server_free(s);
    free(big);
}

static void test_sockets(const char *dir)
{
    char spec[300], path[256], err[256], longp[200];
    struct tctx t, t2;
    struct qmp_server *s, *s2;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct tclient c;
    struct stat st;
    int fd;

    /* A stale socket file, as a crashed VM leaves it. */
    snprintf(path, sizeof(path), "%s/stale.sock", dir);
    memcpy(sa.sun_path, path, strlen(path) + 1); /* dir is short: fits */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "stale socket made");
    close(fd);
    snprintf(spec, sizeof(spec), "unix:%s,server,nowait", path);
    s = new_server(spec, &t, err, sizeof(err));
    CHECK(s != NULL, "stale socket file replaced (old spelling server,nowait): %s", s ? "ok" : err);
    CHECK(s && tc_open(s, &c, path, true), "and it serves");
    tc_close(&c);

    snprintf(spec, sizeof(spec), "unix:%s,server=on,wait=off", path);
    s2 = new_server(spec, &t2, err, sizeof(err));
    CHECK(!s2 && strstr(err, "already listening"), "a live server is not replaced: %s", err);
    qmp_server_free(s2);
    qmp_server_free(s);
    CHECK(stat(path, &st) < 0 && errno == ENOENT, "free removes the socket file");

    snprintf(path, sizeof(path), "%s/regular", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    snprintf(spec, sizeof(spec), "unix:%s,server=on,wait=off", path);
    s = new_server(spec, &t, err, sizeof(err));
    CHECK(!s && strstr(err, "not a socket") && stat(path, &st) == 0,
          "a regular file is left alone: %s", err);
    qmp_server_free(s);
    unlink(path);

    memset(longp, 'x', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    snprintf(spec, sizeof(spec), "unix:%s/%s,server=on,wait=off", dir, longp);
    s = new_server(spec, &t, err, sizeof(err));
    CHECK(!s && strstr(err, "too long"), "a path longer than sun_path: %s", err);
    s = new_server("tcp:127.0.0.1:4444,server=on", &t, err, sizeof(err));
    CHECK(!s && strstr(err, "unix:PATH"), "tcp refused: %s", err);
    snprintf(spec, sizeof(spec), "unix:%s/c.sock", dir);
    s = new_server(spec, &t, err, sizeof(err));
    CHECK(!s && strstr(err, "server=on"), "client mode refused: %s", err);
    snprintf(spec, sizeof(spec), "unix:%s/c.sock,server=on,bogus=1", dir);
    s = new_server(spec, &t, err, sizeof(err));
    CHECK(!s && strstr(err, "bogus"), "unknown option refused: %s", err);

    /* wait=on (and plain "server"): qmp_server_new blocks for a client. */
    snprintf(path, sizeof(path), "%s/wait.sock", dir);
    pid_t pid = fork();
    if (pid == 0) {
        struct tclient cc;
        char buf[512];
        for (int i = 0; i < 200 && tc_connect(&cc, path) < 0; i++) {
            close(cc.fd);
            usleep(10000);
        }
        usleep(100000);
        _exit(recv(cc.fd, buf, sizeof(buf), 0) > 0 ? 0 : 1);
    }
    snprintf(spec, sizeof(spec), "unix:%s,server", path);
    s = new_server(spec, &t, err, sizeof(err));
    CHECK(s && qmp_server_clients(s) == 1, "server (wait=on by default) returns with a client");
    if (s)
        qmp_server_flush(s, 1000);
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "that client got its greeting");
    qmp_server_free(s);
}

/* Deferred replies: the client waits (its next request too), others do
 * not; the reply keeps the id; a gone client's ticket is dropped. */
static void test_deferred(struct qmp_server *s, const char *path, struct tctx *t)
{
    struct tclient *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    const char *two = "{\"execute\": \"defer\", \"id\": \"d1\"}\n"
                      "{\"execute\": \"echo\", \"arguments\": {\"n\": 2}, \"id\": 2}\n";
    struct qmp_error err = {.cls = QMP_ERR_GENERIC, .desc = "the guest said no"};
    json_t *v;
    char *txt;
    unsigned nclients;

    a->fd = b->fd = -1;
    CHECK(qmp_server_defer(s) == 0, "defer outside a handler: 0");
    if (!tc_open(s, a, path, true) || !tc_open(s, b, path, true)) {
        CHECK(0, "two clients");
        goto out;
    }
    t->ticket = 0;
    CHECK(tc_send(s, a, two, strlen(two)), "deferred request and another sent");
    pump(s, 20);
    CHECK(t->ticket != 0, "the handler got a ticket");
    v = tc_recv_raw(s, a, 100, NULL, 0);
    CHECK(!v, "no reply while deferred, and the next request waits");
    json_decref(v);
    v = tc_cmd(s, b, "{\"execute\": \"echo\", \"arguments\": {\"b\": 1}}");
    CHECK(json_integer_value(json_object_get(json_object_get(v, "return"), "b")) == 1,
          "another client is served meanwhile");
    json_decref(v);
    qmp_server_complete(s, t->ticket, json_pack("{s:i}", "ms", 7), NULL);
    v = tc_recv(s, a);
    txt = json_dumps(v, JSON_SORT_KEYS);
    CHECK(txt && !strcmp(txt, "{\"id\": \"d1\", \"return\": {\"ms\": 7}}"), "the reply: %s",
          txt ? txt : "(none)");
    free(txt);
    json_decref(v);
    v = tc_recv(s, a);
    CHECK(json_integer_value(json_object_get(v, "id")) == 2, "then the held-back request");
    json_decref(v);
    qmp_server_complete(s, t->ticket, json_object(), NULL); /* twice: dropped */
    v = tc_recv_raw(s, a, 50, NULL, 0);
    CHECK(!v, "a ticket completes once");
    json_decref(v);

    v = tc_cmd(s, a, "{\"execute\": \"defer\"}");
    CHECK(!v, "deferred again");
    qmp_server_complete(s, t->ticket, NULL, &err);
    v = tc_recv(s, a);
    CHECK(is_error(v, QMP_ERR_GENERIC, "the guest said no"), "a deferred error");

    CHECK(tc_send(s, b, "{\"execute\": \"defer\"}", 21), "b defers");
    pump(s, 20);
    nclients = qmp_server_clients(s);
    tc_close(b);
    pump(s, 20);
    CHECK(qmp_server_clients(s) == nclients - 1, "a client gone while waiting is closed");
    qmp_server_complete(s, t->ticket, json_object(), NULL); /* b is gone: dropped */
    v = tc_cmd(s, a, "{\"execute\": \"nothing\"}");
    CHECK(is_return_empty(v), "the server goes on after a gone client's ticket");
out:
    tc_close(a);
    tc_close(b);
    free(a);
    free(b);
}

static void test_feed_deferred(void)
{
    struct tctx t;
    char err[256], *out = NULL;
    struct qmp_server *s = new_server(NULL, &t, err, sizeof(err));
    const char *req = "{\"execute\": \"qmp_capabilities\"}{\"execute\": \"defer\", \"id\": 5}"
                      "{\"execute\": \"nothing\"}";
    int r;

    if (!s)
        return;
    r = qmp_server_feed(s, req, strlen(req), &out);
    CHECK(r == -EBUSY && out && !strstr(out, "\"id\": 5"), "feed: deferred, rest unread (%d)", r);
    free(out);
    qmp_server_complete(s, t.ticket, NULL, NULL);
    r = qmp_server_feed(s, "", 0, &out);
    CHECK(r == 0 && out && !strcmp(out, "{\"return\": {}, \"id\": 5}\r\n"), "feed: the reply: %s",
          out ? out : "");
    free(out);
    qmp_server_free(s);
}

static void test_feed(void)
{
    struct tctx t;
    char err[256], *out = NULL;
    struct qmp_server *s = new_server(NULL, &t, err, sizeof(err));
    const char *req = "{\"execute\": \"qmp_capabilities\"}{\"execute\": \"echo\", \"id\": 1";
    char *big;
    int r;

    CHECK(s != NULL, "socket-less server");
    if (!s)
        return;
    r = qmp_server_feed(s, req, strlen(req), &out);
    CHECK(r == 0 && out && strstr(out, "{\"QMP\": {") == out && strstr(out, "{\"return\": {}}\r\n"),
          "feed: greeting, negotiation");
    CHECK(out && !strstr(out, "\"id\": 1"), "the partial request waits");
    free(out);
    r = qmp_server_feed(s, "}", 1, &out);
    CHECK(r == 0 && out && !strcmp(out, "{\"return\": {}, \"id\": 1}\r\n"),
          "feed: completed by the next call: %s", out ? out : "");
    free(out);
    qmp_server_event(s, "EV", NULL);
    r = qmp_server_feed(s, "", 0, &out);
    CHECK(r == 0 && out && strstr(out, "{\"event\": \"EV\""), "feed: events for the pseudo-client");
    free(out);
    CHECK(qmp_server_feed(s, "{\"execute\": \"nothing\"}", 22, NULL) == 0, "feed: out NULL");

    big = malloc(QMP_MAX_REQUEST + 10);
    memset(big, ' ', QMP_MAX_REQUEST + 10);
    big[0] = '[';
    r = qmp_server_feed(s, big, QMP_MAX_REQUEST + 10, &out);
    CHECK(r == -EPROTO && out && strstr(out, "exceeds"), "feed: oversized value -> -EPROTO");
    free(out);
    free(big);
    r = qmp_server_feed(s, "{\"execute\": \"query-version\"}", 28, &out);
    CHECK(r == 0 && out && strstr(out, "{\"QMP\"") && strstr(out, "Expecting capabilities"),
          "feed: afterwards a new, unnegotiated connection");
    free(out);
    CHECK(qmp_server_clients(s) == 0, "feed's pseudo-client is not counted");
    qmp_server_free(s);
    qmp_server_free(NULL);

    {
        static const struct qmp_command dup[] = {{"query-version", cmd_nothing, false}};
        struct qmp_server_config cfg = {.cmds = dup, .ncmds = 1};
        s = qmp_server_new(&cfg, err, sizeof(err));
        CHECK(!s && strstr(err, "twice"), "a command defined twice is refused: %s", err);
    }
}

int main(void)
{
    char dir[] = "/tmp/godwit-qmp-XXXXXX", spec[300], path[256], err[256];
    struct tctx t;
    struct qmp_server *s;

    gw_log_set_prog("test_qmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/qmp.sock", dir);
    snprintf(spec, sizeof(spec), "unix:%s,server=on,wait=off", path);
    s = new_server(spec, &t, err, sizeof(err));
    CHECK(s != NULL, "server on %s: %s", path, s ? "up" : err);
    if (s) {
        test_greeting_and_negotiation(s, path);
        test_errors(s, path);
        test_framing(s, path);
        test_limits(s, path);
        test_events(s, path);
        test_many_clients(s, path);
        test_deferred(s, path, &t);
        qmp_server_free(s);
    }
    test_backlog(dir);
    test_sockets(dir);
    test_feed();
    test_feed_deferred();
    if (rmdir(dir) < 0)
        printf("note: %s not empty\n", dir);
    return board_check_done();
}
