/*
 * godwitd's REST API plumbing: an HTTP/1.1 server (libmicrohttpd) with JSON
 * bodies (jansson) under /1.0/, a route table, bounded request bodies,
 * errors as {"error":{"code":N,"message":"..."}}.  The resources (vms,
 * jobs, peers, events) live in their own files and hand their routes here.
 *
 * Listeners: today one unix socket (the local operator; made with
 * sock_listen, mode 0600, the peer's SO_PEERCRED credentials given to the
 * handlers as the acting user).  The server keeps an array of listeners,
 * each its own MHD daemon sharing the one route table, so an HTTPS listener
 * for peers (client certificate pinned by fingerprint) is one more entry
 * whose requests carry API_TRANSPORT_TLS and the peer's fingerprint instead
 * of credentials.
 *
 * Threads: each listener runs MHD's internal polling thread with one thread
 * per connection (MHD_USE_THREAD_PER_CONNECTION), at most
 * API_CONNECTIONS_MAX connections, idle ones dropped after
 * API_IDLE_TIMEOUT_S.  A thread per connection lets a handler block (a
 * store transaction, a QMP round trip) and lets GET /1.0/events stream for
 * as long as the client stays, without stalling other requests.  Handlers
 * therefore run concurrently: whatever they share they must lock.
 */
#ifndef GODWIT_GODWITD_API_H
#define GODWIT_GODWITD_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"

#define API_VERSION         "1.0"
#define API_BODY_MAX        (1u << 20) /* request bodies: 1 MiB, more is 413 */
#define API_NAME_MAX        63         /* VM, peer and host names */
#define API_PARAMS_MAX      4          /* {name} segments in one route */
#define API_CONNECTIONS_MAX 64
#define API_IDLE_TIMEOUT_S  60

enum api_transport {
    API_TRANSPORT_UNIX = 1, /* local socket: peer's uid/gid/pid known */
    API_TRANSPORT_TLS,      /* HTTPS (--listen): a peer host's client certificate */
};

/* Which transports may call a route (api_route.flags).  0: the local unix
 * socket only; a TLS client calling such a route gets 403. */
#define API_ROUTE_PEER 0x1u /* trusted peers over HTTPS too */
#define API_ROUTE_JOIN 0x2u /* any HTTPS client with a certificate (the join) */
/* The body is bytes, not JSON (file chunks): the handler gets req->raw and
 * req->raw_len (at most API_BODY_MAX) and takes its arguments from the
 * query string; such a route has no field list. */
#define API_ROUTE_RAW 0x4u

#define API_FP_HEX_LEN 64 /* a certificate fingerprint (trust.h) */

/* Who is asking. */
struct api_peer {
    enum api_transport transport;
    bool has_cred; /* unix: SO_PEERCRED answered */
    uid_t uid;
    gid_t gid;
    pid_t pid;
    /* TLS: the trusted peer's name ("" for a not-yet-trusted client on an
     * API_ROUTE_JOIN route) and the SHA-256 fingerprint of the certificate
     * it presented (64 lowercase hex). */
    char name[API_NAME_MAX + 1];
    char fingerprint[API_FP_HEX_LEN + 1];
};

struct api_param {
    const char *name;  /* as in the pattern, without braces */
    const char *value; /* the path segment (MHD already percent-decoded it) */
};

/* One request as a handler sees it; everything is valid during the call. */
struct api_server;

struct api_request {
    void *ctx; /* api_config.ctx */
    const struct api_server *server;
    const char *method;
    const char *path;
    struct api_param params[API_PARAMS_MAX];
    unsigned nparams;
    json_t *body;             /* parsed body (NULL when the request had none) */
    const unsigned char *raw; /* API_ROUTE_RAW: the body's bytes (NULL: none) */
    size_t raw_len;
    struct api_peer peer;
    void *conn_;                           /* internal: MHD connection, for api_query */
    char param_names_[API_PARAMS_MAX][32]; /* internal: storage of params[].name */
    char path_[1024];                      /* internal: storage of params[].value */
};

/* What a handler answers: status and a JSON body (owned; NULL: none, or for
 * an error status a generic message). */
struct api_reply {
    unsigned status;
    json_t *body;
    /* A streamed reply instead of body (chunked, for GET /1.0/events):
     * stream(cls, buf, max) is called from the connection's thread for
     * more bytes and returns how many it wrote (> 0), or -1 at the end (or
     * when the client or the daemon goes away); it may block (it should
     * wake at least every second so a stopping daemon is not held up).
     * stream_free(cls) runs once when the reply is over. */
    ssize_t (*stream)(void *cls, char *buf, size_t max);
    void (*stream_free)(void *cls);
    void *stream_cls;
};

typedef void (*api_handler_fn)(struct api_request *req, struct api_reply *rep);

/* Body validation: the fields a JSON object may have. */
enum api_type {
    API_T_STRING = 1,
    API_T_INT,
    API_T_NUMBER, /* integer or real */
    API_T_BOOL,
    API_T_OBJECT,
    API_T_ARRAY,
};

struct api_field {
    const char *name;
    enum api_type type;
    bool required;
};

/*
 * A route: method ("GET", "POST", ...) and a pattern such as
 * "/1.0/vms/{name}" (segments literal or {param}; a {param} matches one
 * non-empty segment).  body: NULL accepts any JSON body (or none);
 * otherwise the body must be an object with only these fields, of these
 * types (terminated by a {NULL} entry), checked before the handler runs.
 */
struct api_route {
    const char *method;
    const char *pattern;
    api_handler_fn fn;
    const struct api_field *body;
    unsigned flags; /* API_ROUTE_*: who may call it besides the unix socket */
};

/* Is the certificate with this fingerprint a trusted peer's?  0 with its
 * name in name (len bytes), -ENOENT when not; other -errno on failure.
 * Called from connection threads. */
typedef int (*api_peer_lookup_fn)(void *ctx, const char *fingerprint, char *name, size_t len);

struct trust_identity;

struct api_config {
    const char *socket_path;        /* unix listener, made 0600 */
    const char *host_name;          /* GET /1.0 "host"; NULL: gethostname() */
    const struct api_route *routes; /* besides the built-in GET /1.0 */
    size_t nroutes;
    void *ctx; /* handed to every handler in req->ctx */
    /*
     * HTTPS for peers: listen ("host:port"; NULL or "": none) with the
     * identity's key and certificate, TLS 1.3 only, a client certificate
     * required.  Requests whose certificate peer_lookup does not know
     * reach only API_ROUTE_JOIN routes; the others get 403 (and a log
     * line).  Trusted peers reach API_ROUTE_PEER and API_ROUTE_JOIN routes.
     */
    const char *listen;
    const struct trust_identity *id;
    api_peer_lookup_fn peer_lookup;
};

/* Start the listeners.  The route table and strings in cfg are copied
 * where needed (routes and ctx are not: they must outlive the server).
 * NULL with a reason in err. */
struct api_server *api_server_start(const struct api_config *cfg, char *err, size_t errlen);

/* Stop accepting, wait for the requests in flight, close and remove the
 * socket file (if still ours), free everything.  NULL is a no-op. */
void api_server_stop(struct api_server *s);

/* The TCP port of the HTTPS listener (useful with port 0), or -ENOENT. */
int api_server_tls_port(const struct api_server *s);

/* The certificate a TLS request's client presented, as PEM in *pem
 * (malloc'd).  -EPERM for a request that did not come over TLS. */
int api_request_peer_pem(const struct api_request *req, char **pem, char *err,
                         size_t errlen) gw_must_check;

/*
 * What a request for method and path may reach, without a connection: the
 * route table's answer as the server gives it (for tests and fuzzing).
 * Returns the route (params filled into req when req is non-NULL) or NULL
 * with *status 404 (no such path), 405 (another method) or 414; with
 * transport TLS and trusted false only API_ROUTE_JOIN routes pass, and a
 * route the transport may not call gives NULL and 403.
 */
const struct api_route *api_route_find(const struct api_server *s, const char *method,
                                       const char *path, enum api_transport transport, bool trusted,
                                       struct api_request *req, unsigned *status, char *msg,
                                       size_t msglen);

/* A server with routes but no listener (api_route_find, fuzzing);
 * api_server_stop frees it. */
struct api_server *api_server_new_detached(const struct api_route *routes, size_t nroutes,
                                           char *err, size_t errlen);

/* The host name GET /1.0 reports. */
const char *api_server_host(const struct api_server *s);

/* A name for a VM, peer or host: 1..63 of [a-z0-9-], starting with a
 * letter.  Rejects NULL, '/', "..", spaces, upper case, too long. */
bool api_name_valid(const char *name);

/* A query argument ("?force=1"), or NULL. */
const char *api_query(const struct api_request *req, const char *key);

/* A path parameter by name ({name} in the pattern), or NULL. */
const char *api_param(const struct api_request *req, const char *name);

/* Check obj against fields (a {NULL}-terminated list): an object, every
 * required field there, no field unknown, each of its type.  0 or -EINVAL
 * with the reason in err ("field 'memory': expected an integer"). */
int api_json_check(const json_t *obj, const struct api_field *fields, char *err,
                   size_t errlen) gw_must_check;

/* Set the reply: status with a JSON body (reference stolen). */
void api_reply_json(struct api_reply *rep, unsigned status, json_t *body);

/* Set an error reply {"error":{"code":status,"message":...}}. */
void api_reply_error(struct api_reply *rep, unsigned status, const char *fmt, ...) gw_printf(3, 4);

/* The error body for status and message (new reference). */
json_t *api_error_body(unsigned status, const char *message);

#endif
