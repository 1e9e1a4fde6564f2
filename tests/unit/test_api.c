/*
 * godwitd's API plumbing (src/godwitd/api.c): the real server on a
 * temporary unix socket, talked to by the CLI's real libcurl client.  The
 * Makefile has no CLI library, so the client is compiled into this test by
 * including its source.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/cli/client.c"
#include "board_check.h"
#include "godwitd/api.h"
#include "godwitd/godwitd.h"
#include "godwitd/peers.h"
#include "godwitd/store.h"
#include "godwitd/trust.h"

struct tls_out {
    char *b;
    size_t len, cap;
};

static size_t tls_write(char *p, size_t size, size_t n, void *cls)
{
    struct tls_out *o = cls;
    size_t add = size * n;
    if (add > o->cap - o->len)
        add = o->cap - o->len;
    memcpy(o->b + o->len, p, add);
    o->len += add;
    return size * n;
}

static int test_ctx_value = 42;

static void h_echo(struct api_request *req, struct api_reply *rep)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(api_param(req, "name") ?: ""));
    json_object_set_new(o, "ctx", json_integer(req->ctx ? *(int *)req->ctx : -1));
    json_object_set_new(o, "uid",
                        json_integer(req->peer.has_cred ? (json_int_t)req->peer.uid : -1));
    json_object_set_new(o, "pid",
                        json_integer(req->peer.has_cred ? (json_int_t)req->peer.pid : -1));
    const char *q = api_query(req, "force");
    json_object_set_new(o, "force", json_string(q ? q : ""));
    if (req->body)
        json_object_set(o, "body", req->body);
    api_reply_json(rep, 200, o);
}

static void h_make(struct api_request *req, struct api_reply *rep)
{
    const char *name = json_string_value(json_object_get(req->body, "name"));
    if (!api_name_valid(name)) {
        api_reply_error(rep, 400, "invalid name '%s'", name);
        return;
    }
    api_reply_json(rep, 201, json_pack("{s:s}", "created", name));
}

static void h_slow(struct api_request *req, struct api_reply *rep)
{
    (void)req;
    usleep(200 * 1000);
    api_reply_json(rep, 200, json_pack("{s:b}", "slow", 1));
}

/* Who the server says is asking (transport, peer name, fingerprint). */
static void h_who(struct api_request *req, struct api_reply *rep)
{
    api_reply_json(rep, 200,
                   json_pack("{s:i,s:s,s:s}", "transport", (int)req->peer.transport, "name",
                             req->peer.name, "fingerprint", req->peer.fingerprint));
}

/* Takes a raw body, answers its length. */
static void h_sink(struct api_request *req, struct api_reply *rep)
{
    api_reply_json(rep, 200, json_pack("{s:I}", "bytes", (json_int_t)req->raw_len));
}

static const struct api_field make_fields[] = {
    {"name", API_T_STRING, true},
    {"memory", API_T_INT, false},
    {"live", API_T_BOOL, false},
    {NULL, 0, false},
};

static const struct api_route routes[] = {
    {"GET", "/1.0/things/{name}", h_echo, NULL, API_ROUTE_PEER},
    {"PUT", "/1.0/things/{name}", h_echo, NULL, 0},
    {"POST", "/1.0/things", h_make, make_fields, 0},
    {"GET", "/1.0/slow", h_slow, NULL, 0},
    {"POST", "/1.0/join", h_who, NULL, API_ROUTE_JOIN},
    {"GET", "/1.0/who", h_who, NULL, API_ROUTE_PEER},
    {"POST", "/1.0/sink", h_sink, NULL, API_ROUTE_PEER | API_ROUTE_RAW},
};

static void test_names(void)
{
    CHECK(api_name_valid("a"), "name 'a'");
    CHECK(api_name_valid("web1"), "name 'web1'");
    CHECK(api_name_valid("db-2-x"), "name 'db-2-x'");
    char n63[64], n64[65], n200[201];
    memset(n63, 'a', 63), n63[63] = '\0';
    memset(n64, 'a', 64), n64[64] = '\0';
    memset(n200, 'a', 200), n200[200] = '\0';
    CHECK(api_name_valid(n63), "63 characters accepted");
    CHECK(!api_name_valid(n64), "64 characters refused");
    CHECK(!api_name_valid(n200), "200 characters refused");
    CHECK(!api_name_valid(""), "empty refused");
    CHECK(!api_name_valid(NULL), "NULL refused");
    CHECK(!api_name_valid("1web"), "leading digit refused");
    CHECK(!api_name_valid("-web"), "leading dash refused");
    CHECK(!api_name_valid("Web"), "upper case refused");
    CHECK(!api_name_valid("a/b"), "'/' refused");
    CHECK(!api_name_valid(".."), "'..' refused");
    CHECK(!api_name_valid("a..b"), "'a..b' refused");
    CHECK(!api_name_valid("a b"), "space refused");
    CHECK(!api_name_valid("a_b"), "underscore refused");
    CHECK(!api_name_valid("a\n"), "newline refused");
}

static void test_json_check(void)
{
    char err[256];
    json_t *ok = json_pack("{s:s,s:i}", "name", "x", "memory", 5);
    CHECK(api_json_check(ok, make_fields, err, sizeof(err)) == 0, "valid object passes");
    json_t *unk = json_pack("{s:s,s:i}", "name", "x", "colour", 5);
    CHECK(api_json_check(unk, make_fields, err, sizeof(err)) == -EINVAL &&
              strstr(err, "unknown field 'colour'"),
          "unknown field refused: %s", err);
    json_t *type = json_pack("{s:s,s:s}", "name", "x", "memory", "5");
    CHECK(api_json_check(type, make_fields, err, sizeof(err)) == -EINVAL && strstr(err, "memory") &&
              strstr(err, "integer"),
          "wrong type refused: %s", err);
    json_t *miss = json_pack("{s:b}", "live", 1);
    CHECK(api_json_check(miss, make_fields, err, sizeof(err)) == -EINVAL &&
              strstr(err, "missing field 'name'"),
          "missing field refused: %s", err);
    json_t *arr = json_array();
    CHECK(api_json_check(arr, make_fields, err, sizeof(err)) == -EINVAL, "array refused: %s", err);
    json_decref(ok), json_decref(unk), json_decref(type), json_decref(miss), json_decref(arr);
}

static void test_resolve(const char *sock)
{
    struct cli_client c;
    char err[256], path[256];
    char hopt[256];
    snprintf(hopt, sizeof(hopt), "unix:%s", sock);
    setenv("GODWIT_HOST", "unix:/nonexistent/env.sock", 1);
    CHECK(cli_client_init(&c, hopt, err, sizeof(err)) == 0 && strcmp(c.socket_path, sock) == 0,
          "-H unix:PATH wins over GODWIT_HOST");
    CHECK(cli_client_init(&c, NULL, err, sizeof(err)) == 0 &&
              strcmp(c.socket_path, "/nonexistent/env.sock") == 0,
          "GODWIT_HOST used without -H");
    CHECK(cli_client_init(&c, "tcp:host:1", err, sizeof(err)) == -EINVAL, "-H tcp: refused: %s",
          err);
    unsetenv("GODWIT_HOST");
    if (geteuid() != 0) {
        setenv("XDG_STATE_HOME", "/xdg", 1);
        CHECK(cli_client_default_socket(path, sizeof(path), err, sizeof(err)) == 0 &&
                  strcmp(path, "/xdg/godwit/godwitd.sock") == 0,
              "default socket under XDG_STATE_HOME: %s", path);
        unsetenv("XDG_STATE_HOME");
        const char *home = getenv("HOME");
        char want[256];
        snprintf(want, sizeof(want), "%s/.local/state/godwit/godwitd.sock", home ? home : "");
        int r = cli_client_default_socket(path, sizeof(path), err, sizeof(err));
        CHECK(!home || (r == 0 && strcmp(path, want) == 0), "default socket under HOME: %s", path);
    } else {
        CHECK(cli_client_default_socket(path, sizeof(path), err, sizeof(err)) == 0 &&
                  strcmp(path, "/var/lib/godwit/godwitd.sock") == 0,
              "root's default socket: %s", path);
    }
    /* Nobody there: a clear transport error. */
    CHECK(cli_client_init(&c, "unix:/nonexistent/godwitd.sock", err, sizeof(err)) == 0,
          "client for a missing socket");
    long st = -1;
    json_t *rep = NULL;
    int r = cli_client_request(&c, "GET", "/1.0", NULL, &rep, &st, err, sizeof(err));
    CHECK(r < 0 && r != -EREMOTEIO && strstr(err, "is godwitd running"), "missing socket: %d %s", r,
          err);
}

struct conc {
    const struct cli_client *c;
    int ok;
};

static void *conc_thread(void *arg)
{
    struct conc *t = arg;
    char err[256];
    for (int i = 0; i < 5; i++) {
        json_t *rep = NULL;
        long st = 0;
        int r = cli_client_request(t->c, "GET", "/1.0/slow", NULL, &rep, &st, err, sizeof(err));
        if (r == 0 && st == 200 && json_is_true(json_object_get(rep, "slow")))
            t->ok++;
        json_decref(rep);
    }
    return NULL;
}

/* PUT a chunked body of 17 chunks of 64 KiB over a raw socket; true when
 * the answer is a 413. */
static bool chunked_too_large(const char *sock)
{
    struct sock_addr a;
    char err[256];
    if (sock_addr_unix(&a, sock, strlen(sock), err, sizeof(err)) < 0)
        return false;
    int fd = sock_connect(&a, 5000, 0, err, sizeof(err));
    if (fd < 0)
        return false;
    static char chunk[65536];
    memset(chunk, ' ', sizeof(chunk));
    const char *head = "PUT /1.0/things/x HTTP/1.1\r\nHost: godwit\r\n"
                       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    bool ok = write(fd, head, strlen(head)) == (ssize_t)strlen(head);
    for (int i = 0; ok && i < 17; i++) {
        const char *sz = "10000\r\n";
        ok = write(fd, sz, strlen(sz)) == (ssize_t)strlen(sz) &&
             write(fd, chunk, sizeof(chunk)) == (ssize_t)sizeof(chunk) && write(fd, "\r\n", 2) == 2;
    }
    ok = ok && write(fd, "0\r\n\r\n", 5) == 5;
    char buf[512] = "";
    size_t got = 0;
    ssize_t n;
    while (ok && got < sizeof(buf) - 1 && (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = '\0';
    close(fd);
    return ok && strncmp(buf, "HTTP/1.1 413", 12) == 0 && strstr(buf, "\"code\":413");
}

static void test_server(const char *sock)
{
    char err[256];
    struct api_config cfg = {
        .socket_path = sock,
        .host_name = "hosta",
        .routes = routes,
        .nroutes = GW_ARRAY_SIZE(routes),
        .ctx = &test_ctx_value,
    };
    struct api_server *s = api_server_start(&cfg, err, sizeof(err));
    CHECK(s != NULL, "server starts: %s", s ? "" : err);
    if (!s)
        return;
    struct stat sb;
    CHECK(stat(sock, &sb) == 0 && S_ISSOCK(sb.st_mode) && (sb.st_mode & 0777) == 0600,
          "socket is 0600: %o", (unsigned)(sb.st_mode & 0777));
    struct api_server *s2 = api_server_start(&cfg, err, sizeof(err));
    CHECK(s2 == NULL, "second server on a live socket refused: %s", err);
    api_server_stop(s2);

    struct cli_client c;
    char hopt[256];
    snprintf(hopt, sizeof(hopt), "unix:%s", sock);
    CHECK(cli_client_init(&c, hopt, err, sizeof(err)) == 0, "client init");
    c.timeout_ms = 10000;

    json_t *rep = NULL;
    long st = 0;
    int r = cli_client_request(&c, "GET", "/1.0", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == 0 && st == 200, "GET /1.0: %d %ld %s", r, st, r ? err : "");
    CHECK(rep && !strcmp(json_string_value(json_object_get(rep, "api_version")) ?: "", "1.0") &&
              !strcmp(json_string_value(json_object_get(rep, "server")) ?: "", "godwitd") &&
              !strcmp(json_string_value(json_object_get(rep, "host")) ?: "", "hosta") &&
              json_object_size(rep) == 3,
          "GET /1.0 body");
    json_decref(rep);
    r = cli_client_request(&c, "GET", "/1.0/", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == 0 && st == 200, "GET /1.0/ (trailing slash)");
    json_decref(rep);

    /* 404 */
    r = cli_client_request(&c, "GET", "/1.0/nothing", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == -EREMOTEIO && st == 404, "unknown path 404: %d %ld", r, st);
    CHECK(json_integer_value(json_object_get(json_object_get(rep, "error"), "code")) == 404 &&
              json_is_string(json_object_get(json_object_get(rep, "error"), "message")),
          "404 error body: %s", err);
    json_decref(rep);
    r = cli_client_request(&c, "GET", "/2.0", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == -EREMOTEIO && st == 404, "other version 404: %s", err);
    json_decref(rep);
    r = cli_client_request(&c, "GET", "/", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == -EREMOTEIO && st == 404, "root 404: %s", err);
    json_decref(rep);
    r = cli_client_request(&c, "GET", "/1.0//things", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == -EREMOTEIO && st == 404, "empty segment 404");
    json_decref(rep);
    r = cli_client_request(&c, "GET", "/1.0/things/a/b", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == -EREMOTEIO && st == 404, "extra segment 404");
    json_decref(rep);

    /* 405 */
    r = cli_client_request(&c, "DELETE", "/1.0", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == -EREMOTEIO && st == 405 && strstr(err, "not allowed"), "DELETE /1.0 405: %s", err);
    json_decref(rep);
    r = cli_client_request(&c, "DELETE", "/1.0/things/x", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == -EREMOTEIO && st == 405 && strstr(err, "GET, PUT"), "405 lists methods: %s", err);
    json_decref(rep);

    /* Path parameters, query, ctx, credentials, body. */
    json_t *body = json_pack("{s:i}", "x", 7);
    r = cli_client_request(&c, "PUT", "/1.0/things/web1?force=1", body, &rep, &st, err,
                           sizeof(err));
    json_decref(body);
    CHECK(r == 0 && st == 200, "PUT with params: %s", r ? err : "");
    CHECK(!strcmp(json_string_value(json_object_get(rep, "name")) ?: "", "web1"), "{name} param");
    CHECK(!strcmp(json_string_value(json_object_get(rep, "force")) ?: "", "1"), "query arg");
    CHECK(json_integer_value(json_object_get(rep, "ctx")) == 42, "handler ctx");
    CHECK(json_integer_value(json_object_get(rep, "uid")) == (json_int_t)geteuid(),
          "peer uid from SO_PEERCRED");
    CHECK(json_integer_value(json_object_get(rep, "pid")) == (json_int_t)getpid(),
          "peer pid from SO_PEERCRED");
    CHECK(json_integer_value(json_object_get(json_object_get(rep, "body"), "x")) == 7,
          "body parsed");
    json_decref(rep);

    /* 400s */
    r = cli_client_request_raw(&c, "PUT", "/1.0/things/x", "{\"a\":", 5, &rep, &st, err,
                               sizeof(err));
    CHECK(r == -EREMOTEIO && st == 400 && strstr(err, "malformed JSON"), "malformed 400: %s", err);
    json_decref(rep);
    body = json_pack("{s:s,s:s}", "name", "web1", "memory", "lots");
    r = cli_client_request(&c, "POST", "/1.0/things", body, &rep, &st, err, sizeof(err));
    json_decref(body);
    CHECK(r == -EREMOTEIO && st == 400 && strstr(err, "memory"), "wrong type 400: %s", err);
    json_decref(rep);
    body = json_pack("{s:s,s:i}", "name", "web1", "bogus", 1);
    r = cli_client_request(&c, "POST", "/1.0/things", body, &rep, &st, err, sizeof(err));
    json_decref(body);
    CHECK(r == -EREMOTEIO && st == 400 && strstr(err, "unknown field 'bogus'"),
          "unknown field 400: %s", err);
    json_decref(rep);
    r = cli_client_request(&c, "POST", "/1.0/things", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == -EREMOTEIO && st == 400, "missing body 400: %s", err);
    json_decref(rep);
    body = json_pack("{s:s}", "name", "../etc");
    r = cli_client_request(&c, "POST", "/1.0/things", body, &rep, &st, err, sizeof(err));
    json_decref(body);
    CHECK(r == -EREMOTEIO && st == 400 && strstr(err, "invalid name"), "bad name 400: %s", err);
    json_decref(rep);
    body = json_pack("{s:s,s:i,s:b}", "name", "web1", "memory", 512, "live", 1);
    r = cli_client_request(&c, "POST", "/1.0/things", body, &rep, &st, err, sizeof(err));
    json_decref(body);
    CHECK(r == 0 && st == 201, "valid POST 201: %s", r ? err : "");
    json_decref(rep);

    /* Body bounds: exactly 1 MiB passes the bound (then fails as JSON
     * only if malformed), 1 MiB + 1 is 413. */
    size_t big = API_BODY_MAX + 1;
    char *buf = malloc(big + 1);
    memset(buf, ' ', big);
    buf[0] = '{', buf[1] = '}';
    buf[big] = '\0';
    r = cli_client_request_raw(&c, "PUT", "/1.0/things/x", buf, API_BODY_MAX, &rep, &st, err,
                               sizeof(err));
    CHECK(r == 0 && st == 200, "1 MiB body accepted: %d %ld %s", r, st, r ? err : "");
    json_decref(rep);
    r = cli_client_request_raw(&c, "PUT", "/1.0/things/x", buf, big, &rep, &st, err, sizeof(err));
    CHECK(r == -EREMOTEIO && st == 413, "1 MiB + 1 body 413: %d %ld %s", r, st, err);
    CHECK(json_integer_value(json_object_get(json_object_get(rep, "error"), "code")) == 413,
          "413 error body");
    json_decref(rep);
    free(buf);
    /* A chunked body (no length declared) past the bound: read, dropped,
     * refused at the end. */
    CHECK(chunked_too_large(sock), "chunked 1 MiB + 64 KiB body 413");
    /* The server still answers after a refused body. */
    r = cli_client_request(&c, "GET", "/1.0", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == 0 && st == 200, "GET /1.0 after 413");
    json_decref(rep);

    /* Reply bound on the client side. */
    struct cli_client small = c;
    small.reply_max = 10;
    r = cli_client_request(&small, "GET", "/1.0", NULL, &rep, &st, err, sizeof(err));
    CHECK(r == -EMSGSIZE, "client reply bound: %d %s", r, err);

    /* Concurrency: 8 clients x 5 requests of 200 ms each finish in well
     * under the 8 s they would take one after another. */
    pthread_t th[8];
    struct conc cs[8];
    uint64_t t0 = gw_now_ns();
    for (int i = 0; i < 8; i++) {
        cs[i] = (struct conc){.c = &c};
        pthread_create(&th[i], NULL, conc_thread, &cs[i]);
    }
    int okc = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        okc += cs[i].ok;
    }
    uint64_t ms = (gw_now_ns() - t0) / 1000000;
    CHECK(okc == 40, "40 concurrent requests answered: %d", okc);
    CHECK(ms < 4000, "concurrent requests ran in parallel: %llu ms", (unsigned long long)ms);

    api_server_stop(s);
    CHECK(access(sock, F_OK) < 0 && errno == ENOENT, "socket file removed at stop");
    r = cli_client_request(&c, "GET", "/1.0", NULL, &rep, &st, err, sizeof(err));
    CHECK(r < 0 && r != -EREMOTEIO, "no answer after stop: %s", err);
}

/* The route table's decisions by transport, without a connection. */
static void test_route_find(void)
{
    char err[256], msg[256];
    unsigned st;
    struct api_request req;
    struct api_server *s = api_server_new_detached(routes, GW_ARRAY_SIZE(routes), err, sizeof(err));
    CHECK(s != NULL, "detached server: %s", err);
    if (!s)
        return;
    memset(&req, 0, sizeof(req));
    const struct api_route *r = api_route_find(s, "PUT", "/1.0/things/web1", API_TRANSPORT_UNIX,
                                               false, &req, &st, msg, sizeof(msg));
    CHECK(r && r->fn == h_echo && req.nparams == 1 && !strcmp(req.params[0].value, "web1"),
          "unix: PUT route with its param");
    r = api_route_find(s, "PUT", "/1.0/things/web1", API_TRANSPORT_TLS, true, NULL, &st, msg,
                       sizeof(msg));
    CHECK(!r && st == 403 && strstr(msg, "local operator only"), "TLS peer: local route 403: %s",
          msg);
    r = api_route_find(s, "GET", "/1.0/things/web1", API_TRANSPORT_TLS, true, NULL, &st, msg,
                       sizeof(msg));
    CHECK(r && r->fn == h_echo, "TLS peer: peer route");
    r = api_route_find(s, "GET", "/1.0", API_TRANSPORT_TLS, true, NULL, &st, msg, sizeof(msg));
    CHECK(r != NULL, "TLS peer: GET /1.0");
    r = api_route_find(s, "GET", "/1.0/nothing", API_TRANSPORT_TLS, true, NULL, &st, msg,
                       sizeof(msg));
    CHECK(!r && st == 404, "TLS peer: unknown path 404 (%u)", st);
    r = api_route_find(s, "GET", "/1.0/things/web1", API_TRANSPORT_TLS, false, NULL, &st, msg,
                       sizeof(msg));
    CHECK(!r && st == 403 && strstr(msg, "does not trust"), "TLS untrusted: peer route 403");
    r = api_route_find(s, "GET", "/nothing", API_TRANSPORT_TLS, false, NULL, &st, msg, sizeof(msg));
    CHECK(!r && st == 403, "TLS untrusted: unknown path 403 too (%u)", st);
    r = api_route_find(s, "POST", "/1.0/join", API_TRANSPORT_TLS, false, NULL, &st, msg,
                       sizeof(msg));
    CHECK(r && r->fn == h_who, "TLS untrusted: join route");
    r = api_route_find(s, "DELETE", "/1.0/things", API_TRANSPORT_UNIX, false, NULL, &st, msg,
                       sizeof(msg));
    CHECK(!r && st == 405 && strstr(msg, "POST"), "405 with the allowed methods: %s", msg);
    char longpath[2048];
    memset(longpath, 'a', sizeof(longpath) - 1), longpath[0] = '/', longpath[2047] = '\0';
    r = api_route_find(s, "GET", longpath, API_TRANSPORT_UNIX, false, NULL, &st, msg, sizeof(msg));
    CHECK(!r && st == 414, "long path 414");
    r = api_route_find(s, "GET", longpath, API_TRANSPORT_TLS, false, NULL, &st, msg, sizeof(msg));
    CHECK(!r && st == 403, "long path from an untrusted certificate: 403 (%u)", st);
    api_server_stop(s);
    static const struct api_route bad[] = {{"GET", "/1.0/x", h_who, NULL, 0x80}};
    s = api_server_new_detached(bad, 1, err, sizeof(err));
    CHECK(!s && strstr(err, "bad API route"), "unknown route flag refused");
}

/* ---- HTTPS: a real listener, libcurl clients with and without certificates */

static char tls_trusted_fp[TRUST_FP_HEX_LEN + 1];

static int test_lookup(void *ctx, const char *fp, char *name, size_t len)
{
    (void)ctx;
    if (!trust_fingerprint_equal(fp, tls_trusted_fp))
        return -ENOENT;
    snprintf(name, len, "peer-one");
    return 0;
}

/* One HTTPS request; cert NULL: no client certificate.  Returns the
 * curl code; *status and *reply as answered. */
static CURLcode tls_get(int port, const char *method, const char *path,
                        const struct trust_identity *client, long *status, json_t **reply)
{
    char url[256], buf[4096] = "";
    struct tls_out out = {buf, 0, sizeof(buf) - 1};
    CURL *c = curl_easy_init();
    snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    if (client) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, client->cert_path);
        curl_easy_setopt(c, CURLOPT_SSLKEY, client->key_path);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tls_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    CURLcode cc = curl_easy_perform(c);
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    buf[out.len] = '\0';
    *reply = out.len ? json_loads(buf, 0, NULL) : NULL;
    return cc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The kept peer connection (peer_conn_*) against the real HTTPS listener:
 * a struct godwitd holding the client identity and a store whose peer
 * "server" is this listener; N raw 1 MiB requests over peer_call_raw (a
 * handle and a handshake each) and over one peer_conn; then the server
 * restarts on the same port and the kept connection reconnects by itself.
 */
static void test_peer_conn(const char *dir, struct api_server **sp, struct api_config *cfg,
                           struct trust_identity *server, struct trust_identity *client)
{
    struct godwitd d = {0};
    struct store_peer p = {0};
    struct peer_conn *pc = NULL;
    char err[256], path[PATH_MAX + 64];
    enum { N = 200, SZ = 1 << 20 };
    unsigned char *body = calloc(1, SZ);
    json_t *rep = NULL;
    long st = 0;
    int ok = 0, ret;
    int port = api_server_tls_port(*sp);

    snprintf(d.state_dir, sizeof(d.state_dir), "%s/client-state", dir);
    snprintf(path, sizeof(path), "%s/tls/peers", d.state_dir);
    mkdir(d.state_dir, 0700);
    snprintf(path, sizeof(path), "%s/tls", d.state_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/tls/peers", d.state_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/tls/peers/server.pem", d.state_dir);
    FILE *f = fopen(path, "w");
    fputs(server->cert_pem, f);
    fclose(f);
    pthread_mutex_init(&d.store_lock, NULL);
    snprintf(path, sizeof(path), "%s/peers.db", d.state_dir);
    d.store = store_open(path, err, sizeof(err));
    d.id = client;
    snprintf(p.name, sizeof(p.name), "server");
    snprintf(p.address, sizeof(p.address), "127.0.0.1:%d", port);
    snprintf(p.fingerprint, sizeof(p.fingerprint), "%s", server->fingerprint);
    CHECK(d.store && store_peer_add(d.store, &p) == 0, "a store knowing the peer 'server'");

    CHECK(peer_conn_open(&d, "nobody", &pc, err, sizeof(err)) == -ENOENT && !pc,
          "peer_conn_open: unknown peer -ENOENT (%s)", err);
    CHECK(peer_conn_open(&d, "server", &pc, err, sizeof(err)) == 0,
          "peer_conn_open of the peer 'server'");
    CHECK(peer_conn_call(pc, "GET", "/1.0/who", NULL, &rep, &st, 0, err, sizeof(err)) == 0 &&
              st == 200 &&
              !strcmp(json_string_value(json_object_get(rep, "name")) ?: "", "peer-one"),
          "peer_conn_call GET: the server sees the pinned client");
    json_decref(rep);
    json_t *b = json_pack("{s:s}", "name", "x");
    ret = peer_conn_call(pc, "POST", "/1.0/things", b, &rep, &st, 0, err, sizeof(err));
    CHECK(ret == -EREMOTEIO && st == 403, "a local-only route: -EREMOTEIO 403 (%s)", err);
    json_decref(b);
    ret = peer_conn_call(pc, "GET", "/1.0/things/abc", NULL, &rep, &st, 0, err, sizeof(err));
    CHECK(ret == 0 && !strcmp(json_string_value(json_object_get(rep, "name")) ?: "", "abc") &&
              !json_object_get(rep, "body"),
          "a GET after a POST on the kept handle sends no body");
    json_decref(rep);

    double t0 = now_s();
    for (int i = 0; i < N; i++) {
        ret = peer_call_raw(&d, "server", "POST", "/1.0/sink", body, SZ, &rep, &st, 0, err,
                            sizeof(err));
        ok += ret == 0 && json_integer_value(json_object_get(rep, "bytes")) == SZ;
        json_decref(rep);
    }
    double t_call = now_s() - t0;
    CHECK(ok == N, "%d x 1 MiB over peer_call_raw: %.2f s, %.0f MB/s", N, t_call,
          N * (SZ / 1e6) / t_call);
    ok = 0;
    t0 = now_s();
    for (int i = 0; i < N; i++) {
        ret = peer_conn_call_raw(pc, "POST", "/1.0/sink", body, SZ, &rep, &st, 0, err, sizeof(err));
        ok += ret == 0 && json_integer_value(json_object_get(rep, "bytes")) == SZ;
        json_decref(rep);
    }
    double t_conn = now_s() - t0;
    CHECK(ok == N, "%d x 1 MiB over peer_conn_call_raw: %.2f s, %.0f MB/s (%.1fx)", N, t_conn,
          N * (SZ / 1e6) / t_conn, t_call / t_conn);
    ok = 0;
    t0 = now_s();
    for (int i = 0; i < N; i++) {
        ok += peer_call(&d, "server", "GET", "/1.0/who", NULL, NULL, &st, 0, err, sizeof(err)) == 0;
    }
    t_call = now_s() - t0;
    t0 = now_s();
    for (int i = 0; i < N; i++)
        ok += peer_conn_call(pc, "GET", "/1.0/who", NULL, NULL, &st, 0, err, sizeof(err)) == 0;
    t_conn = now_s() - t0;
    CHECK(ok == 2 * N, "%d small GETs: peer_call %.1f ms each, peer_conn_call %.2f ms each", N,
          t_call * 1e3 / N, t_conn * 1e3 / N);

    /* The server goes away and comes back: the kept handle reconnects. */
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    api_server_stop(*sp);
    cfg->listen = listen;
    *sp = api_server_start(cfg, err, sizeof(err));
    CHECK(*sp != NULL, "the server restarts on port %d: %s", port, *sp ? "" : err);
    ret = peer_conn_call_raw(pc, "POST", "/1.0/sink", body, 4096, &rep, &st, 0, err, sizeof(err));
    CHECK(ret == 0 && json_integer_value(json_object_get(rep, "bytes")) == 4096,
          "after the restart the kept connection reconnects by itself (%s)", ret ? err : "");
    json_decref(rep);
    peer_conn_free(pc);
    peer_conn_free(NULL);
    store_close(d.store);
    pthread_mutex_destroy(&d.store_lock);
    free(body);
}

static void test_tls(const char *dir)
{
    char err[256], path[256];
    struct trust_identity *server = NULL, *peer = NULL, *stranger = NULL;
    snprintf(path, sizeof(path), "%s/server", dir);
    CHECK(trust_identity_load_or_create(path, "server", &server, err, sizeof(err)) == 0,
          "server identity: %s", err);
    snprintf(path, sizeof(path), "%s/peer", dir);
    CHECK(trust_identity_load_or_create(path, "peer-one", &peer, err, sizeof(err)) == 0,
          "peer identity: %s", err);
    snprintf(path, sizeof(path), "%s/stranger", dir);
    CHECK(trust_identity_load_or_create(path, "stranger", &stranger, err, sizeof(err)) == 0,
          "stranger identity: %s", err);
    if (!server || !peer || !stranger)
        goto out;
    snprintf(tls_trusted_fp, sizeof(tls_trusted_fp), "%s", peer->fingerprint);
    snprintf(path, sizeof(path), "%s/tls.sock", dir);
    struct api_config cfg = {
        .socket_path = path,
        .host_name = "server",
        .routes = routes,
        .nroutes = GW_ARRAY_SIZE(routes),
        .ctx = &test_ctx_value,
        .listen = "127.0.0.1:0",
        .id = server,
        .peer_lookup = test_lookup,
    };
    struct api_server *s = api_server_start(&cfg, err, sizeof(err));
    CHECK(s != NULL, "server with HTTPS starts: %s", s ? "" : err);
    if (!s)
        goto out;
    int port = api_server_tls_port(s);
    CHECK(port > 0, "HTTPS port %d", port);
    long st;
    json_t *rep = NULL;

    CURLcode cc = tls_get(port, "GET", "/1.0", NULL, &st, &rep);
    CHECK(cc != CURLE_OK || st == 403, "no client certificate refused (curl %d, HTTP %ld)", cc, st);
    json_decref(rep);

    cc = tls_get(port, "GET", "/1.0/who", stranger, &st, &rep);
    CHECK(cc == CURLE_OK && st == 403, "untrusted certificate: 403 (curl %d, HTTP %ld)", cc, st);
    json_decref(rep);
    cc = tls_get(port, "POST", "/1.0/join", stranger, &st, &rep);
    CHECK(cc == CURLE_OK && st == 200, "untrusted certificate on the join route: %ld", st);
    CHECK(json_integer_value(json_object_get(rep, "transport")) == API_TRANSPORT_TLS &&
              !strcmp(json_string_value(json_object_get(rep, "name")) ?: "?", "") &&
              !strcmp(json_string_value(json_object_get(rep, "fingerprint")) ?: "",
                      stranger->fingerprint),
          "join handler sees TLS, no name, the stranger's fingerprint");
    json_decref(rep);

    cc = tls_get(port, "GET", "/1.0/who", peer, &st, &rep);
    CHECK(cc == CURLE_OK && st == 200, "trusted peer: 200 (curl %d, HTTP %ld)", cc, st);
    CHECK(!strcmp(json_string_value(json_object_get(rep, "name")) ?: "", "peer-one") &&
              !strcmp(json_string_value(json_object_get(rep, "fingerprint")) ?: "",
                      peer->fingerprint),
          "handler sees the peer's name and fingerprint");
    json_decref(rep);
    cc = tls_get(port, "GET", "/1.0", peer, &st, &rep);
    CHECK(cc == CURLE_OK && st == 200 &&
              !strcmp(json_string_value(json_object_get(rep, "host")) ?: "", "server"),
          "trusted peer: GET /1.0");
    json_decref(rep);
    cc = tls_get(port, "PUT", "/1.0/things/x", peer, &st, &rep);
    CHECK(cc == CURLE_OK && st == 403, "trusted peer: local-only route 403 (%ld)", st);
    json_decref(rep);
    test_peer_conn(dir, &s, &cfg, server, peer);
    api_server_stop(s);

    cfg.listen = "127.0.0.1:99999";
    s = api_server_start(&cfg, err, sizeof(err));
    CHECK(!s, "bad --listen refused: %s", err);
    api_server_stop(s);
out:
    trust_identity_free(server);
    trust_identity_free(peer);
    trust_identity_free(stranger);
}

int main(void)
{
    char dir[] = "/tmp/godwit-test-api-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char sock[128];
    snprintf(sock, sizeof(sock), "%s/godwitd.sock", dir);
    test_names();
    test_json_check();
    test_resolve(sock);
    test_server(sock);
    unlink(sock);
    test_route_find();
    test_tls(dir);
    {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'/server '%s'/peer '%s'/stranger '%s'/client-state",
                 dir, dir, dir, dir);
        CHECK(system(cmd) == 0, "cleanup");
    }
    rmdir(dir);
    curl_global_cleanup();
    return board_check_done();
}
