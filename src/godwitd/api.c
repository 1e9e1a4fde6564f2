/*
 * godwitd's HTTP/JSON API server (see api.h): libmicrohttpd on a unix
 * socket and (with --listen) on HTTPS for peers, one thread per
 * connection, a route table under /1.0/.
 *
 * HTTPS: TLS 1.3 only, this host's key and certificate; every connection's
 * GnuTLS session is told to require a client certificate before its
 * handshake starts (MHD_OPTION_NOTIFY_CONNECTION), so a client without one
 * fails the handshake.  No CA is involved: when a request's headers have
 * arrived (before its body is read) the certificate's fingerprint is looked
 * up among the pinned peers (api_config.peer_lookup) and the route's flags
 * decide; refusals are 403 with a log line.
 */
#include "godwitd/api.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "common/sock.h"
#include "godwitd/trust.h"

#define API_LISTENERS_MAX  2 /* the unix socket; HTTPS for peers */
#define API_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3"
#define API_SEGS_MAX       16

struct api_listener {
    enum api_transport transport;
    struct MHD_Daemon *mhd;
    struct sock_unix_owner owner; /* unix: the socket file to remove */
    struct api_server *server;
};

struct api_server {
    struct api_listener listeners[API_LISTENERS_MAX];
    unsigned nlisteners;
    struct api_route *routes; /* built-in ones first, then the config's */
    size_t nroutes;
    char host_name[256];
    void *ctx;
    api_peer_lookup_fn peer_lookup;
    int tls_port; /* -ENOENT: no HTTPS listener */
};

/* Per-request state, from the first call of the access handler to
 * MHD_OPTION_NOTIFY_COMPLETED. */
struct api_conn_req {
    char *buf;
    size_t len, cap;
    bool too_large;
    struct api_peer tls; /* TLS: who the certificate says is asking */
};

bool api_name_valid(const char *name)
{
    if (!name || !(name[0] >= 'a' && name[0] <= 'z'))
        return false;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (n >= API_NAME_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

const char *api_query(const struct api_request *req, const char *key)
{
    if (!req->conn_)
        return NULL;
    return MHD_lookup_connection_value(req->conn_, MHD_GET_ARGUMENT_KIND, key);
}

const char *api_param(const struct api_request *req, const char *name)
{
    for (unsigned i = 0; i < req->nparams; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

static const char *api_type_name(enum api_type t)
{
    switch (t) {
    case API_T_STRING: return "a string";
    case API_T_INT: return "an integer";
    case API_T_NUMBER: return "a number";
    case API_T_BOOL: return "a boolean";
    case API_T_OBJECT: return "an object";
    case API_T_ARRAY: return "an array";
    }
    return "?";
}

static bool api_type_ok(const json_t *v, enum api_type t)
{
    switch (t) {
    case API_T_STRING: return json_is_string(v);
    case API_T_INT: return json_is_integer(v);
    case API_T_NUMBER: return json_is_number(v);
    case API_T_BOOL: return json_is_boolean(v);
    case API_T_OBJECT: return json_is_object(v);
    case API_T_ARRAY: return json_is_array(v);
    }
    return false;
}

int api_json_check(const json_t *obj, const struct api_field *fields, char *err, size_t errlen)
{
    if (!json_is_object(obj))
        return gw_fail(err, errlen, -EINVAL, "the body must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        const struct api_field *f = fields;
        while (f->name && strcmp(f->name, key) != 0)
            f++;
        if (!f->name)
            return gw_fail(err, errlen, -EINVAL, "unknown field '%.64s'", key);
        if (!api_type_ok(v, f->type))
            return gw_fail(err, errlen, -EINVAL, "field '%s': expected %s", f->name,
                           api_type_name(f->type));
    }
    for (const struct api_field *f = fields; f->name; f++)
        if (f->required && !json_object_get(obj, f->name))
            return gw_fail(err, errlen, -EINVAL, "missing field '%s'", f->name);
    return 0;
}

json_t *api_error_body(unsigned status, const char *message)
{
    return json_pack("{s:{s:i,s:s}}", "error", "code", (json_int_t)status, "message", message);
}

void api_reply_json(struct api_reply *rep, unsigned status, json_t *body)
{
    json_decref(rep->body);
    rep->status = status;
    rep->body = body;
}

void api_reply_error(struct api_reply *rep, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    api_reply_json(rep, status, api_error_body(status, msg));
}

/* ---- routing ------------------------------------------------------------- */

/* Split path (a copy in buf) at '/': "/1.0/vms/x" -> "1.0","vms","x".  A
 * trailing slash is ignored; an empty segment inside ("//") fails. */
static int api_split(char *buf, char **segs, unsigned max)
{
    if (buf[0] != '/')
        return -1;
    size_t len = strlen(buf);
    if (len > 1 && buf[len - 1] == '/')
        buf[len - 1] = '\0';
    unsigned n = 0;
    char *p = buf + 1;
    if (!*p)
        return 0;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash)
            *slash = '\0';
        if (!*p || n == max)
            return -1;
        segs[n++] = p;
        if (!slash)
            return (int)n;
        p = slash + 1;
    }
}

/* Does pattern match the path's segments?  Fills the request's params. */
static bool api_match(const char *pattern, char **segs, int nsegs, struct api_request *req)
{
    char pbuf[256];
    char *psegs[API_SEGS_MAX];
    snprintf(pbuf, sizeof(pbuf), "%s", pattern);
    int np = api_split(pbuf, psegs, API_SEGS_MAX);
    if (np != nsegs)
        return false;
    unsigned nparams = 0;
    for (int i = 0; i < np; i++) {
        size_t l = strlen(psegs[i]);
        if (l >= 2 && psegs[i][0] == '{' && psegs[i][l - 1] == '}') {
            if (nparams == API_PARAMS_MAX)
                return false;
            nparams++;
        } else if (strcmp(psegs[i], segs[i]) != 0) {
            return false;
        }
    }
    if (!req)
        return true;
    req->nparams = 0;
    for (int i = 0; i < np; i++) {
        size_t l = strlen(psegs[i]);
        if (l >= 2 && psegs[i][0] == '{' && psegs[i][l - 1] == '}') {
            unsigned k = req->nparams++;
            snprintf(req->param_names_[k], sizeof(req->param_names_[k]), "%.*s", (int)(l - 2),
                     psegs[i] + 1);
            req->params[k].name = req->param_names_[k];
            req->params[k].value = segs[i];
        }
    }
    return true;
}

/* ---- MHD glue ------------------------------------------------------------ */

static enum MHD_Result api_send(struct MHD_Connection *conn, unsigned status, json_t *body,
                                const char *allow)
{
    char *text = NULL;
    if (!body && status >= 400)
        body = api_error_body(status, status == 404   ? "not found"
                                      : status == 500 ? "internal error"
                                                      : "request failed");
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
    }
    size_t len = 0;
    if (text) {
        len = strlen(text);
        char *t = realloc(text, len + 2);
        if (t) {
            text = t;
            text[len++] = '\n';
            text[len] = '\0';
        }
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, text ? text : (void *)"", text ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    if (text)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

struct api_stream {
    ssize_t (*fn)(void *cls, char *buf, size_t max);
    void (*free_fn)(void *cls);
    void *cls;
};

static ssize_t api_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct api_stream *st = cls;
    (void)pos;
    ssize_t n = st->fn(st->cls, buf, max);
    return n > 0 ? n : MHD_CONTENT_READER_END_OF_STREAM;
}

static void api_stream_done(void *cls)
{
    struct api_stream *st = cls;
    if (st->free_fn)
        st->free_fn(st->cls);
    free(st);
}

/* A chunked reply whose bytes come from rep->stream. */
static enum MHD_Result api_send_stream(struct MHD_Connection *conn, const struct api_reply *rep)
{
    struct api_stream *st = calloc(1, sizeof(*st));
    if (!st) {
        if (rep->stream_free)
            rep->stream_free(rep->stream_cls);
        json_decref(rep->body);
        return MHD_NO;
    }
    st->fn = rep->stream;
    st->free_fn = rep->stream_free;
    st->cls = rep->stream_cls;
    json_decref(rep->body);
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 4096, api_stream_read, st, api_stream_done);
    if (!r) {
        api_stream_done(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-ndjson");
    enum MHD_Result ret = MHD_queue_response(conn, rep->status ? rep->status : 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result api_send_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    return api_send(conn, status, api_error_body(status, msg), NULL);
}

static void api_peer_cred(struct MHD_Connection *conn, struct api_peer *peer)
{
    peer->transport = API_TRANSPORT_UNIX;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    struct ucred uc;
    socklen_t l = sizeof(uc);
    if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) == 0 && l == sizeof(uc)) {
        peer->has_cred = true;
        peer->uid = uc.uid;
        peer->gid = uc.gid;
        peer->pid = uc.pid;
    }
}

static void api_log_refusal(const char *method, const char *url, const struct api_peer *p,
                            const char *msg)
{
    if (p->name[0])
        gw_log("api: refused %.16s %.200s from peer %s (certificate %s): %s", method, url, p->name,
               p->fingerprint, msg);
    else
        gw_log("api: refused %.16s %.200s from untrusted certificate %s: %s", method, url,
               p->fingerprint, msg);
}

/* May a client on this transport call route r? */
static bool api_route_allowed(const struct api_route *r, enum api_transport transport, bool trusted)
{
    if (transport != API_TRANSPORT_TLS)
        return true;
    if (r->flags & API_ROUTE_JOIN)
        return true;
    return trusted && (r->flags & API_ROUTE_PEER);
}

const struct api_route *api_route_find(const struct api_server *s, const char *method,
                                       const char *path, enum api_transport transport, bool trusted,
                                       struct api_request *req, unsigned *status, char *msg,
                                       size_t msglen)
{
    char pathbuf[1024];
    char *segs[API_SEGS_MAX];
    const struct api_route *route = NULL;
    bool forbidden = false;
    char allow[128] = "";

    *status = 0;
    if (msg && msglen)
        msg[0] = '\0';
    if (strlen(path) >= sizeof(pathbuf)) {
        if (transport == API_TRANSPORT_TLS && !trusted) {
            *status = 403;
            snprintf(msg, msglen, "this host does not trust your certificate");
            return NULL;
        }
        *status = 414;
        snprintf(msg, msglen, "path too long");
        return NULL;
    }
    snprintf(pathbuf, sizeof(pathbuf), "%s", path);
    int nsegs = api_split(pathbuf, segs, API_SEGS_MAX);
    if (nsegs >= 1 && strcmp(segs[0], API_VERSION) == 0) {
        for (size_t i = 0; i < s->nroutes; i++) {
            const struct api_route *r = &s->routes[i];
            if (!api_match(r->pattern, segs, nsegs, NULL))
                continue;
            if (strcmp(r->method, method) == 0) {
                if (api_route_allowed(r, transport, trusted))
                    route = r;
                else
                    forbidden = true;
                break;
            }
            size_t al = strlen(allow);
            snprintf(allow + al, sizeof(allow) - al, "%s%s", al ? ", " : "", r->method);
        }
    }
    /* A client whose certificate is not pinned learns nothing of the
     * route table: whatever it asks but the join is the same 403. */
    if (transport == API_TRANSPORT_TLS && !trusted && !route) {
        *status = 403;
        snprintf(msg, msglen,
                 "this host does not trust your certificate (join with a token first)");
        return NULL;
    }
    if (forbidden) {
        *status = 403;
        snprintf(msg, msglen, "%s %s is for the local operator only, not for peers", method, path);
        return NULL;
    }
    if (nsegs < 1 || strcmp(segs[0], API_VERSION) != 0) {
        *status = 404;
        snprintf(msg, msglen, "not found (the API lives under /1.0/)");
        return NULL;
    }
    if (!route) {
        if (allow[0]) {
            *status = 405;
            snprintf(msg, msglen, "method %.16s not allowed on %.200s (allowed: %s)", method, path,
                     allow);
            return NULL;
        }
        *status = 404;
        snprintf(msg, msglen, "not found");
        return NULL;
    }
    if (req) {
        /* The params point into the path's segments: split again into the
         * request's own storage, which lives as long as the request. */
        snprintf(req->path_, sizeof(req->path_), "%s", path);
        nsegs = api_split(req->path_, segs, API_SEGS_MAX);
        req->path = path;
        (void)api_match(route->pattern, segs, nsegs, req);
    }
    return route;
}

static enum MHD_Result api_dispatch(struct api_listener *li, struct MHD_Connection *conn,
                                    const char *url, const char *method, struct api_conn_req *cr)
{
    struct api_server *s = li->server;
    char msg[256];
    unsigned status;

    struct api_request req = {
        .ctx = s->ctx,
        .server = s,
        .method = method,
        .path = url,
        .conn_ = conn,
    };
    const struct api_route *route = api_route_find(
        s, method, url, li->transport, cr->tls.name[0] != '\0', &req, &status, msg, sizeof(msg));
    if (!route) {
        if (status == 405) {
            const char *allow = strstr(msg, "(allowed: ");
            char hdr[128] = "";
            if (allow)
                snprintf(hdr, sizeof(hdr), "%.*s", (int)(strlen(allow) - 11), allow + 10);
            return api_send(conn, 405, api_error_body(405, msg), hdr);
        }
        if (status == 403)
            api_log_refusal(method, url, &cr->tls, msg);
        return api_send_error(conn, status, msg);
    }

    if (cr->too_large) {
        snprintf(msg, sizeof(msg), "request body larger than %u bytes", API_BODY_MAX);
        return api_send_error(conn, 413, msg);
    }
    if (cr->len && (route->flags & API_ROUTE_RAW)) {
        req.raw = (const unsigned char *)cr->buf;
        req.raw_len = cr->len;
    } else if (cr->len) {
        json_error_t jerr;
        req.body = json_loadb(cr->buf, cr->len, JSON_REJECT_DUPLICATES, &jerr);
        if (!req.body) {
            snprintf(msg, sizeof(msg), "malformed JSON body: %s (line %d, column %d)", jerr.text,
                     jerr.line, jerr.column);
            return api_send_error(conn, 400, msg);
        }
    }
    if (route->body) {
        if (!req.body) {
            return api_send_error(conn, 400, "a JSON object body is required");
        }
        if (api_json_check(req.body, route->body, msg, sizeof(msg)) < 0) {
            json_decref(req.body);
            return api_send_error(conn, 400, msg);
        }
    }
    if (li->transport == API_TRANSPORT_TLS)
        req.peer = cr->tls;
    else
        api_peer_cred(conn, &req.peer);
    req.peer.transport = li->transport;

    struct api_reply rep = {.status = 200};
    route->fn(&req, &rep);
    json_decref(req.body);
    if (rep.stream)
        return api_send_stream(conn, &rep);
    return api_send(conn, rep.status, rep.body, NULL);
}

/* The TLS session of an HTTPS connection, or NULL. */
static gnutls_session_t api_tls_session(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return ci ? (gnutls_session_t)ci->tls_session : NULL;
}

/* Who the client certificate of an HTTPS request says is asking: its
 * fingerprint, and the name of the pinned peer it belongs to ("" if none).
 * 0, or -errno with msg (403 / 500 worth). */
static int api_tls_identify(struct api_listener *li, struct MHD_Connection *conn,
                            struct api_peer *p, char *msg, size_t msglen)
{
    struct api_server *s = li->server;
    gnutls_session_t session = api_tls_session(conn);
    int ret;

    memset(p, 0, sizeof(*p));
    p->transport = API_TRANSPORT_TLS;
    if (!session)
        return gw_fail(msg, msglen, -EPERM, "no TLS session");
    ret = trust_fingerprint_of_session(session, p->fingerprint, msg, msglen);
    if (ret < 0)
        return ret;
    ret =
        s->peer_lookup ? s->peer_lookup(s->ctx, p->fingerprint, p->name, sizeof(p->name)) : -ENOENT;
    if (ret == -ENOENT) {
        p->name[0] = '\0';
        return 0;
    }
    if (ret < 0)
        return gw_fail(msg, msglen, ret, "cannot look the peer up: %s", strerror(-ret));
    return 0;
}

int api_request_peer_pem(const struct api_request *req, char **pem, char *err, size_t errlen)
{
    gnutls_session_t session;

    *pem = NULL;
    if (req->peer.transport != API_TRANSPORT_TLS || !req->conn_ ||
        !(session = api_tls_session(req->conn_)))
        return gw_fail(err, errlen, -EPERM, "the request did not come over TLS");
    return trust_session_peer_pem(session, pem, err, errlen);
}

static enum MHD_Result api_access(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct api_listener *li = cls;
    (void)version;
    struct api_conn_req *cr = *con_cls;
    if (!cr) {
        cr = calloc(1, sizeof(*cr));
        if (!cr)
            return MHD_NO;
        *con_cls = cr;
        /* HTTPS: who is asking, and may they ask this, before the body. */
        if (li->transport == API_TRANSPORT_TLS) {
            char msg[256];
            unsigned status;
            int ret = api_tls_identify(li, conn, &cr->tls, msg, sizeof(msg));
            if (ret < 0) {
                gw_log("api: refused %s %s over TLS: %s", method, url, msg);
                return api_send_error(conn, ret == -EPERM ? 403 : 500, msg);
            }
            if (!api_route_find(li->server, method, url, API_TRANSPORT_TLS, cr->tls.name[0] != '\0',
                                NULL, &status, msg, sizeof(msg)) &&
                status == 403) {
                api_log_refusal(method, url, &cr->tls, msg);
                return api_send_error(conn, 403, msg);
            }
        }
        /* A declared length over the bound: refuse before the body comes
         * (no 100 Continue, the connection is closed after the reply). */
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || end == cl || n > API_BODY_MAX) {
                char msg[96];
                snprintf(msg, sizeof(msg), "request body larger than %u bytes", API_BODY_MAX);
                return api_send_error(conn, 413, msg);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cr->too_large || n > API_BODY_MAX - cr->len) {
            /* Chunked and too long: drop the rest, answer 413 at the end. */
            cr->too_large = true;
            free(cr->buf);
            cr->buf = NULL;
            cr->len = cr->cap = 0;
            return MHD_YES;
        }
        if (cr->len + n > cr->cap) {
            size_t cap = cr->cap ? cr->cap : 4096;
            while (cap < cr->len + n)
                cap *= 2;
            if (cap > API_BODY_MAX)
                cap = API_BODY_MAX;
            char *b = realloc(cr->buf, cap);
            if (!b)
                return MHD_NO;
            cr->buf = b;
            cr->cap = cap;
        }
        memcpy(cr->buf + cr->len, upload_data, n);
        cr->len += n;
        return MHD_YES;
    }
    return api_dispatch(li, conn, url, method, cr);
}

static void api_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    struct api_conn_req *cr = *con_cls;
    if (cr) {
        free(cr->buf);
        free(cr);
        *con_cls = NULL;
    }
}

static void api_mhd_log(void *cls, const char *fmt, va_list ap) gw_printf(2, 0);
static void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t l = strlen(msg);
    while (l && msg[l - 1] == '\n')
        msg[--l] = '\0';
    gw_log("api: %s", msg);
}

/* ---- built-in routes ----------------------------------------------------- */

const char *api_server_host(const struct api_server *s)
{
    return s->host_name;
}

static void api_get_root(struct api_request *req, struct api_reply *rep)
{
    api_reply_json(rep, 200,
                   json_pack("{s:s,s:s,s:s}", "api_version", API_VERSION, "server", "godwitd",
                             "host", api_server_host(req->server)));
}

static const struct api_route api_builtin_routes[] = {
    {"GET", "/" API_VERSION, api_get_root, NULL, API_ROUTE_PEER},
};

int api_server_tls_port(const struct api_server *s)
{
    return s->tls_port;
}

/* ---- start / stop -------------------------------------------------------- */

static int api_listen_unix(struct api_server *s, const char *path, char *err, size_t errlen)
{
    struct api_listener *li = &s->listeners[s->nlisteners];
    struct sock_addr a;
    int ret = sock_addr_unix(&a, path, strlen(path), err, errlen);
    if (ret < 0)
        return ret;
    /* Make the socket 0600 from the start: no window where another user
     * could connect. */
    mode_t old = umask(0177);
    int fd = sock_listen(&a, 64, &li->owner, err, errlen);
    umask(old);
    if (fd < 0)
        return fd;
    if (chmod(li->owner.path, 0600) < 0) {
        ret = -errno;
        close(fd);
        sock_unix_release(&li->owner);
        return gw_fail(err, errlen, ret, "chmod '%s': %s", path, strerror(-ret));
    }
    /* chmod changed the file's ctime, part of the identity the owner
     * records: record the new one, or the file would never be removed. */
    struct stat st;
    if (stat(li->owner.path, &st) == 0 && st.st_dev == li->owner.dev && st.st_ino == li->owner.ino)
        li->owner.ctime = st.st_ctim;
    li->transport = API_TRANSPORT_UNIX;
    li->server = s;
    li->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                   MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_POLL,
                               0, NULL, NULL, api_access, li, MHD_OPTION_EXTERNAL_LOGGER,
                               api_mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_CONNECTIONS_MAX,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_IDLE_TIMEOUT_S,
                               MHD_OPTION_NOTIFY_COMPLETED, api_completed, li, MHD_OPTION_END);
    if (!li->mhd) {
        /* MHD may or may not have closed the fd it was handed. */
        if (fcntl(fd, F_GETFD) >= 0)
            close(fd);
        sock_unix_release(&li->owner);
        return gw_fail(err, errlen, -EIO, "cannot start the HTTP server on '%s'", path);
    }
    s->nlisteners++;
    return 0;
}

/* HTTPS: require a client certificate on every connection, before its
 * handshake starts (MHD made the session; the connection's thread runs the
 * handshake after this). */
static void api_tls_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                           enum MHD_ConnectionNotificationCode toe)
{
    (void)cls, (void)socket_context;
    if (toe != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    gnutls_session_t session = api_tls_session(conn);
    if (session)
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
}

static int api_listen_tls(struct api_server *s, const char *address,
                          const struct trust_identity *id, char *err, size_t errlen)
{
    struct api_listener *li = &s->listeners[s->nlisteners];
    struct sock_addr a;
    char *key = NULL;
    size_t keylen = 0;
    int fd, ret;

    if (!id)
        return gw_fail(err, errlen, -EINVAL, "--listen needs the host identity");
    ret = sock_parse_hostport(address, SOCK_F_PORT_ANY, &a, err, errlen);
    if (ret < 0)
        return ret;
    ret = trust_identity_key_pem(id, &key, &keylen, err, errlen);
    if (ret < 0)
        return ret;
    fd = sock_listen(&a, 64, NULL, err, errlen);
    if (fd < 0) {
        explicit_bzero(key, keylen);
        free(key);
        return fd;
    }
    s->tls_port = sock_local_port(fd);
    li->transport = API_TRANSPORT_TLS;
    li->server = s;
    li->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
            MHD_USE_ERROR_LOG | MHD_USE_POLL | MHD_USE_TLS,
        0, NULL, NULL, api_access, li, MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)API_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, api_completed, li, MHD_OPTION_NOTIFY_CONNECTION,
        api_tls_notify, li, MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT, id->cert_pem,
        MHD_OPTION_HTTPS_PRIORITIES, API_TLS_PRIORITIES, MHD_OPTION_END);
    /* MHD loaded the key into its credentials at start: wipe our copy. */
    explicit_bzero(key, keylen);
    free(key);
    if (!li->mhd) {
        s->tls_port = -ENOENT;
        if (fcntl(fd, F_GETFD) >= 0)
            close(fd);
        return gw_fail(err, errlen, -EIO, "cannot start the HTTPS server on '%s'", address);
    }
    s->nlisteners++;
    return 0;
}

static struct api_server *api_server_new(const struct api_route *routes, size_t nroutes, char *err,
                                         size_t errlen)
{
    struct api_server *s = calloc(1, sizeof(*s));
    if (!s) {
        gw_fail(err, errlen, -ENOMEM, "out of memory");
        return NULL;
    }
    s->tls_port = -ENOENT;
    size_t nb = GW_ARRAY_SIZE(api_builtin_routes);
    s->nroutes = nb + nroutes;
    s->routes = calloc(s->nroutes, sizeof(*s->routes));
    if (!s->routes) {
        free(s);
        gw_fail(err, errlen, -ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(s->routes, api_builtin_routes, sizeof(api_builtin_routes));
    for (size_t i = 0; i < nroutes; i++) {
        const struct api_route *r = &routes[i];
        if (!r->method || !r->pattern || !r->fn ||
            strncmp(r->pattern, "/" API_VERSION, strlen("/" API_VERSION)) != 0 ||
            strlen(r->pattern) >= 256 ||
            (r->flags & ~(API_ROUTE_PEER | API_ROUTE_JOIN | API_ROUTE_RAW))) {
            free(s->routes);
            free(s);
            gw_fail(err, errlen, -EINVAL, "bad API route '%s'", r->pattern ? r->pattern : "");
            return NULL;
        }
        s->routes[nb + i] = *r;
    }
    return s;
}

struct api_server *api_server_new_detached(const struct api_route *routes, size_t nroutes,
                                           char *err, size_t errlen)
{
    struct api_server *s = api_server_new(routes, nroutes, err, errlen);
    if (s)
        snprintf(s->host_name, sizeof(s->host_name), "detached");
    return s;
}

struct api_server *api_server_start(const struct api_config *cfg, char *err, size_t errlen)
{
    struct api_server *s = api_server_new(cfg->routes, cfg->nroutes, err, errlen);
    if (!s)
        return NULL;
    s->ctx = cfg->ctx;
    s->peer_lookup = cfg->peer_lookup;
    if (cfg->host_name)
        snprintf(s->host_name, sizeof(s->host_name), "%s", cfg->host_name);
    else if (gethostname(s->host_name, sizeof(s->host_name) - 1) < 0)
        snprintf(s->host_name, sizeof(s->host_name), "localhost");
    if (!cfg->socket_path || api_listen_unix(s, cfg->socket_path, err, errlen) < 0) {
        if (!cfg->socket_path)
            gw_fail(err, errlen, -EINVAL, "no socket path");
        free(s->routes);
        free(s);
        return NULL;
    }
    if (cfg->listen && cfg->listen[0] && api_listen_tls(s, cfg->listen, cfg->id, err, errlen) < 0) {
        api_server_stop(s);
        return NULL;
    }
    return s;
}

void api_server_stop(struct api_server *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->nlisteners; i++) {
        MHD_stop_daemon(s->listeners[i].mhd); /* closes the listening fd */
        sock_unix_release(&s->listeners[i].owner);
    }
    free(s->routes);
    free(s);
}
