/*
 * /1.0/peers: the hosts this one trusts (peers.h, docs/godwitd.md "Peers
 * API").
 *
 *   GET    /1.0/peers               list
 *   POST   /1.0/peers               pair with a host from its join token {name, token}
 *   GET    /1.0/peers/{name}        one peer; ?check=1 also calls its GET /1.0
 *   DELETE /1.0/peers/{name}        forget it (here only)
 *   POST   /1.0/peers/tokens        make a join token {ttl, address}
 *   POST   /1.0/peers/join          (HTTPS, any client certificate) the other
 *                                   half of a pairing {secret, name, host, address}
 *
 * Pairing, A joining B with B's token: A's daemon makes a TLS handshake
 * with the token's address and checks B's certificate against the token's
 * fingerprint before anything else (peer_probe), keeps that certificate,
 * then POSTs /1.0/peers/join over HTTPS pinned to it, presenting its own
 * certificate, with the token's secret, its own name and the name it
 * expects B to have.  B refuses a wrong expected name before touching the
 * token, consumes the token (single use, unexpired), records A under the
 * name A gave itself with the fingerprint and certificate of the TLS
 * session, and answers with its own name; A then records B.  A token id
 * is the first 32 hex digits of the secret's hash: the token text carries
 * no separate id.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "godwitd/peers.h"

#define PEER_TOKEN_TTL_MAX (7 * 24 * 3600) /* seconds */
#define PEER_TOKEN_ID_LEN  32              /* hex digits of the secret's hash */

static int peers_dir(const struct godwitd *d, char *out, size_t len)
{
    return snprintf(out, len, "%s/tls/peers", d->state_dir) >= (int)len ? -ENAMETOOLONG : 0;
}

int peers_init(struct godwitd *d, char *err, size_t errlen)
{
    char dir[PATH_MAX];

    if (peers_dir(d, dir, sizeof(dir)) < 0)
        return gw_fail(err, errlen, -ENAMETOOLONG, "state directory path too long");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return gw_fail(err, errlen, -errno, "cannot create '%s': %s", dir, strerror(errno));
    /* Before any thread: curl_global_init is not thread-safe everywhere. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return gw_fail(err, errlen, -EIO, "cannot initialise libcurl");
    return 0;
}

void peers_fini(struct godwitd *d)
{
    (void)d;
    curl_global_cleanup();
}

int peers_lookup_fingerprint(void *ctx, const char *fingerprint, char *name, size_t len)
{
    struct godwitd *d = ctx;
    struct store_peer p;
    int ret;

    if (!trust_fingerprint_valid(fingerprint))
        return -ENOENT;
    godwitd_store_lock(d);
    ret = store_peer_find_fingerprint(d->store, fingerprint, &p);
    godwitd_store_unlock(d);
    if (ret < 0)
        return ret;
    snprintf(name, len, "%s", p.name);
    return 0;
}

static json_t *peer_json(const struct store_peer *p)
{
    return json_pack("{s:s,s:s?,s:s,s:I}", "name", p->name, "address",
                     p->address[0] ? p->address : NULL, "fingerprint", p->fingerprint, "added",
                     (json_int_t)p->added_ms);
}

/* ---- GET /1.0/peers ------------------------------------------------------ */

static void peers_list(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    struct store_peer *v = NULL;
    size_t n = 0;
    int ret;

    godwitd_store_lock(d);
    ret = store_peer_list(d->store, &v, &n);
    godwitd_store_unlock(d);
    if (ret < 0) {
        api_reply_error(rep, 500, "cannot list the peers");
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, peer_json(&v[i]));
    free(v);
    api_reply_json(rep, 200, a);
}

/* ---- GET /1.0/peers/{name} ----------------------------------------------- */

static void peers_get(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = api_param(req, "name");
    const char *check = api_query(req, "check");
    struct store_peer p;
    int ret;

    if (!api_name_valid(name)) {
        api_reply_error(rep, 400, "invalid peer name '%.64s'", name);
        return;
    }
    godwitd_store_lock(d);
    ret = store_peer_get(d->store, name, &p);
    godwitd_store_unlock(d);
    if (ret == -ENOENT) {
        api_reply_error(rep, 404, "no peer named '%s'", name);
        return;
    }
    if (ret < 0) {
        api_reply_error(rep, 500, "cannot read the peer '%s'", name);
        return;
    }
    json_t *o = peer_json(&p);
    if (check && strcmp(check, "0") != 0) {
        char err[512];
        json_t *r = NULL;
        long st = 0;
        ret = peer_call(d, name, "GET", "/" API_VERSION, NULL, &r, &st, 0, err, sizeof(err));
        json_object_set_new(o, "reachable", json_boolean(ret == 0));
        if (ret == 0)
            json_object_set(o, "host", json_object_get(r, "host"));
        else
            json_object_set_new(o, "error", json_string(err));
        json_decref(r);
    }
    api_reply_json(rep, 200, o);
}

/* ---- DELETE /1.0/peers/{name} -------------------------------------------- */

static void peers_remove(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = api_param(req, "name");
    char path[PATH_MAX];
    int ret;

    if (!api_name_valid(name)) {
        api_reply_error(rep, 400, "invalid peer name '%.64s'", name);
        return;
    }
    godwitd_store_lock(d);
    ret = store_peer_remove(d->store, name);
    godwitd_store_unlock(d);
    if (ret == -ENOENT) {
        api_reply_error(rep, 404, "no peer named '%s'", name);
        return;
    }
    if (ret < 0) {
        api_reply_error(rep, 500, "cannot remove the peer '%s'", name);
        return;
    }
    if (peer_cert_path(d, name, path, sizeof(path)) == 0)
        unlink(path);
    gw_log("peers: removed %s (here only)", name);
    {
        char subject[STORE_NAME_MAX + 8];
        snprintf(subject, sizeof(subject), "peer/%s", name);
        godwitd_event(d, "peer-removed", subject, json_object());
    }
    api_reply_json(rep, 200,
                   json_pack("{s:s,s:s}", "removed", name, "note",
                             "removed on this host only: the peer still trusts this host until it "
                             "removes it too"));
}

/* ---- POST /1.0/peers/tokens ---------------------------------------------- */

static const struct api_field token_fields[] = {
    {"ttl", API_T_INT, false},
    {"address", API_T_STRING, false},
    {NULL, 0, false},
};

/* Whether the host part of "host:port" is a wildcard nobody can reach. */
static bool address_is_wildcard(const char *a)
{
    const char *colon = strrchr(a, ':');
    size_t hl = colon ? (size_t)(colon - a) : strlen(a);

    return hl == 0 || (hl == 7 && !strncmp(a, "0.0.0.0", 7)) || (hl == 4 && !strncmp(a, "[::]", 4));
}

static void peers_token(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    json_t *jttl = json_object_get(req->body, "ttl");
    const char *address = json_string_value(json_object_get(req->body, "address"));
    uint8_t secret[TRUST_SECRET_BYTES];
    char text[TRUST_TOKEN_TEXT_MAX], hash[TRUST_FP_HEX_LEN + 1], id[PEER_TOKEN_ID_LEN + 1];
    char err[256];
    json_int_t ttl = jttl ? json_integer_value(jttl) : TRUST_TOKEN_TTL_DEFAULT;
    int64_t expiry;
    int ret;

    if (!d->listen[0]) {
        api_reply_error(rep, 400,
                        "this host does not listen for peers: start godwitd with --listen "
                        "HOST:PORT first");
        return;
    }
    if (ttl < 1 || ttl > PEER_TOKEN_TTL_MAX) {
        api_reply_error(rep, 400, "ttl must be 1 to %d seconds", PEER_TOKEN_TTL_MAX);
        return;
    }
    if (!address) {
        if (address_is_wildcard(d->listen)) {
            api_reply_error(rep, 400,
                            "this host listens on %s, which peers cannot reach: give the address "
                            "they reach with --address HOST:PORT",
                            d->listen);
            return;
        }
        address = d->listen;
    }
    if (trust_address_check(address, err, sizeof(err)) < 0) {
        api_reply_error(rep, 400, "%s", err);
        return;
    }
    if (address_is_wildcard(address)) {
        api_reply_error(rep, 400, "address '%s' cannot be reached by peers", address);
        return;
    }
    expiry = (int64_t)time(NULL) + ttl;
    if (trust_token_make(address, d->id->fingerprint, secret, expiry, text, sizeof(text), err,
                         sizeof(err)) < 0 ||
        trust_secret_hash(secret, sizeof(secret), hash) < 0) {
        explicit_bzero(secret, sizeof(secret));
        api_reply_error(rep, 500, "cannot make a token: %s", err);
        return;
    }
    explicit_bzero(secret, sizeof(secret));
    snprintf(id, sizeof(id), "%.*s", PEER_TOKEN_ID_LEN, hash);
    godwitd_store_lock(d);
    (void)store_token_purge(d->store, store_now_ms(), NULL);
    ret = store_token_add(d->store, id, hash, expiry * 1000);
    godwitd_store_unlock(d);
    if (ret < 0) {
        api_reply_error(rep, 500, "cannot record the token");
        return;
    }
    gw_log("peers: join token %s made for %s, valid %lld s", id, address, (long long)ttl);
    api_reply_json(rep, 201,
                   json_pack("{s:s,s:I,s:s,s:s}", "token", text, "expires", (json_int_t)expiry,
                             "address", address, "fingerprint", d->id->fingerprint));
    explicit_bzero(text, sizeof(text));
}

/* ---- POST /1.0/peers/join (B's half) -------------------------------------- */

static const struct api_field join_fields[] = {
    {"secret", API_T_STRING, true},   /* the token's secret, base64url */
    {"name", API_T_STRING, true},     /* the joining host's own name */
    {"host", API_T_STRING, true},     /* the name it expects this host to have */
    {"address", API_T_STRING, false}, /* where it listens for peers, if it does */
    {NULL, 0, false},
};

/* Write a peer's certificate file (0600, whole or not at all). */
static int peer_save_cert(struct godwitd *d, const char *name, const char *pem, char *err,
                          size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX];

    if (peers_dir(d, dir, sizeof(dir)) < 0 || peer_cert_path(d, name, path, sizeof(path)) < 0)
        return gw_fail(err, errlen, -ENAMETOOLONG, "state directory path too long");
    return trust_write_file(dir, path, pem, strlen(pem), 0600, err, errlen);
}

static void peers_join(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *secret_text = json_string_value(json_object_get(req->body, "secret"));
    const char *name = json_string_value(json_object_get(req->body, "name"));
    const char *host = json_string_value(json_object_get(req->body, "host"));
    const char *address = json_string_value(json_object_get(req->body, "address"));
    uint8_t secret[TRUST_SECRET_BYTES + 1];
    char hash[TRUST_FP_HEX_LEN + 1], id[PEER_TOKEN_ID_LEN + 1], err[256], path[PATH_MAX];
    char *pem = NULL;
    struct store_peer p, other;
    int n, ret;

    if (req->peer.transport != API_TRANSPORT_TLS || !req->peer.fingerprint[0]) {
        api_reply_error(rep, 400, "a join comes over HTTPS with the joining host's certificate");
        return;
    }
    if (!api_name_valid(name)) {
        api_reply_error(rep, 400, "invalid host name '%.64s'", name);
        return;
    }
    if (!api_name_valid(host)) {
        api_reply_error(rep, 400, "invalid host name '%.64s'", host);
        return;
    }
    if (address && trust_address_check(address, err, sizeof(err)) < 0) {
        api_reply_error(rep, 400, "%s", err);
        return;
    }
    if (strcmp(host, d->name) != 0) {
        api_reply_error(rep, 409,
                        "this host is called '%s', not '%s': nothing was recorded and the token "
                        "is still valid (add it as '%s')",
                        d->name, host, d->name);
        return;
    }
    n = trust_base64url_decode(secret_text, strlen(secret_text), secret, sizeof(secret));
    if (n != TRUST_SECRET_BYTES) {
        api_reply_error(rep, 400, "malformed secret");
        return;
    }
    if (trust_secret_hash(secret, TRUST_SECRET_BYTES, hash) < 0) {
        explicit_bzero(secret, sizeof(secret));
        api_reply_error(rep, 500, "cannot hash the secret");
        return;
    }
    explicit_bzero(secret, sizeof(secret));
    snprintf(id, sizeof(id), "%.*s", PEER_TOKEN_ID_LEN, hash);
    if (api_request_peer_pem(req, &pem, err, sizeof(err)) < 0) {
        api_reply_error(rep, 403, "%s", err);
        return;
    }

    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.address, sizeof(p.address), "%s", address ? address : "");
    snprintf(p.fingerprint, sizeof(p.fingerprint), "%s", req->peer.fingerprint);
    godwitd_store_lock(d);
    ret = store_token_consume(d->store, id, hash, store_now_ms());
    if (ret < 0) {
        godwitd_store_unlock(d);
        gw_log("peers: join as '%s' from certificate %s refused: %s", name, req->peer.fingerprint,
               ret == -EALREADY    ? "token already used"
               : ret == -ETIMEDOUT ? "token expired"
                                   : "unknown token");
        if (ret == -EALREADY)
            api_reply_error(rep, 409, "token already used: make a new one");
        else if (ret == -ETIMEDOUT)
            api_reply_error(rep, 403, "token expired: make a new one");
        else if (ret == -ENOENT)
            api_reply_error(rep, 403, "unknown token (a wrong secret, or a token of another host)");
        else
            api_reply_error(rep, 500, "cannot check the token");
        free(pem);
        return;
    }
    if (strcmp(name, d->name) == 0 || trust_fingerprint_equal(p.fingerprint, d->id->fingerprint)) {
        godwitd_store_unlock(d);
        api_reply_error(rep, 409, "a host cannot pair with itself (the token is used up)");
        free(pem);
        return;
    }
    if (store_peer_get(d->store, name, &other) == 0 ||
        store_peer_find_fingerprint(d->store, p.fingerprint, &other) == 0) {
        godwitd_store_unlock(d);
        api_reply_error(rep, 409,
                        "this host already has a peer '%s' (certificate %.16s...): remove it "
                        "first; the token is used up",
                        other.name, other.fingerprint);
        free(pem);
        return;
    }
    ret = peer_save_cert(d, name, pem, err, sizeof(err));
    if (ret == 0) {
        ret = store_peer_add(d->store, &p);
        if (ret < 0 && peer_cert_path(d, name, path, sizeof(path)) == 0)
            unlink(path);
    }
    godwitd_store_unlock(d);
    free(pem);
    if (ret == -EEXIST) {
        api_reply_error(rep, 409, "this host already has a peer '%s' or with that certificate",
                        name);
        return;
    }
    if (ret < 0) {
        api_reply_error(rep, 500, "cannot record the peer: %s", err);
        return;
    }
    gw_log("peers: %s joined (certificate %s, address %s)", name, p.fingerprint,
           p.address[0] ? p.address : "none");
    {
        char subject[STORE_NAME_MAX + 8];
        snprintf(subject, sizeof(subject), "peer/%s", name);
        godwitd_event(d, "peer-added", subject, json_pack("{s:s}", "fingerprint", p.fingerprint));
    }
    api_reply_json(rep, 201,
                   json_pack("{s:s,s:s}", "name", d->name, "fingerprint", d->id->fingerprint));
}

/* ---- POST /1.0/peers (A's half) ------------------------------------------- */

static const struct api_field add_fields[] = {
    {"name", API_T_STRING, true},
    {"token", API_T_STRING, true},
    {NULL, 0, false},
};

static void peers_add(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = json_string_value(json_object_get(req->body, "name"));
    const char *text = json_string_value(json_object_get(req->body, "token"));
    struct trust_token tok;
    struct store_peer p, other;
    char err[512], dir[PATH_MAX], tmp[PATH_MAX + 32], path[PATH_MAX];
    char secret[64];
    char *pem = NULL;
    const char *bname;
    json_t *body = NULL, *reply = NULL;
    long st = 0;
    int ret;

    if (!api_name_valid(name)) {
        api_reply_error(rep, 400,
                        "invalid peer name '%.64s': 1-63 characters of a-z, 0-9 and '-', starting "
                        "with a letter",
                        name);
        return;
    }
    if (strlen(text) >= TRUST_TOKEN_TEXT_MAX * 2 ||
        trust_token_parse(text, &tok, err, sizeof(err)) < 0) {
        api_reply_error(rep, 400, "%s",
                        strlen(text) >= TRUST_TOKEN_TEXT_MAX * 2 ? "not a join token: too long"
                                                                 : err);
        return;
    }
    if (strcmp(name, d->name) == 0 ||
        trust_fingerprint_equal(tok.fingerprint, d->id->fingerprint)) {
        api_reply_error(rep, 400,
                        "that is this host's own name or token: a host cannot pair with itself");
        goto out;
    }
    godwitd_store_lock(d);
    ret = store_peer_get(d->store, name, &other) == 0                           ? -EEXIST
          : store_peer_find_fingerprint(d->store, tok.fingerprint, &other) == 0 ? -EEXIST
                                                                                : 0;
    godwitd_store_unlock(d);
    if (ret == -EEXIST) {
        api_reply_error(rep, 409, "there is already a peer '%s' (certificate %s)", other.name,
                        other.fingerprint);
        goto out;
    }

    /* 1. Who answers at the address: the token's certificate, or nothing
     *    more is said. */
    ret = peer_probe(d, tok.address, tok.fingerprint, &pem, err, sizeof(err));
    if (ret < 0) {
        gw_log("peers: adding %s at %s: %s", name, tok.address, err);
        api_reply_error(rep, ret == -ETIMEDOUT ? 504 : 502, "%s", err);
        goto out;
    }
    /* 2. The join itself, pinned to that certificate. */
    if (peers_dir(d, dir, sizeof(dir)) < 0 ||
        snprintf(tmp, sizeof(tmp), "%s/.join-%s.pem", dir, name) >= (int)sizeof(tmp) ||
        peer_cert_path(d, name, path, sizeof(path)) < 0) {
        api_reply_error(rep, 500, "state directory path too long");
        goto out;
    }
    if (trust_write_file(dir, tmp, pem, strlen(pem), 0600, err, sizeof(err)) < 0) {
        api_reply_error(rep, 500, "%s", err);
        goto out;
    }
    if (trust_base64url_encode(tok.secret, sizeof(tok.secret), secret, sizeof(secret)) < 0) {
        api_reply_error(rep, 500, "cannot encode the secret");
        goto out_unlink;
    }
    body = json_pack("{s:s,s:s,s:s}", "secret", secret, "name", d->name, "host", name);
    explicit_bzero(secret, sizeof(secret));
    if (body && d->listen[0] && !address_is_wildcard(d->listen))
        json_object_set_new(body, "address", json_string(d->listen));
    ret = peer_request(d, tok.address, tmp, "POST", "/" API_VERSION "/peers/join", body, &reply,
                       &st, 0, err, sizeof(err));
    json_decref(body);
    if (ret < 0) {
        if (ret == -EREMOTEIO)
            api_reply_error(rep, st == 409 || st == 403 ? (unsigned)st : 502, "%s refused: %s",
                            tok.address, err);
        else
            api_reply_error(rep, 502, "%s", err);
        goto out_unlink;
    }
    bname = json_string_value(json_object_get(reply, "name"));
    if (!bname || strcmp(bname, name) != 0) {
        /* B checks the expected name itself; this is a second look. */
        api_reply_error(rep, 502, "the host at %s calls itself '%.64s', not '%s'", tok.address,
                        bname ? bname : "", name);
        goto out_unlink;
    }
    /* 3. Record B. */
    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.address, sizeof(p.address), "%s", tok.address);
    snprintf(p.fingerprint, sizeof(p.fingerprint), "%s", tok.fingerprint);
    godwitd_store_lock(d);
    ret = rename(tmp, path) < 0 ? -errno : 0;
    if (ret == 0)
        ret = store_peer_add(d->store, &p);
    if (ret == 0)
        ret = store_peer_get(d->store, name, &p);
    else
        unlink(path);
    godwitd_store_unlock(d);
    if (ret < 0) {
        api_reply_error(rep, ret == -EEXIST ? 409 : 500,
                        "%s accepted this host, but it cannot be recorded here: %s", name,
                        ret == -EEXIST ? "a peer of that name or certificate appeared meanwhile"
                                       : strerror(-ret));
        goto out_unlink;
    }
    gw_log("peers: added %s at %s (certificate %s)", name, p.address, p.fingerprint);
    {
        char subject[STORE_NAME_MAX + 8];
        snprintf(subject, sizeof(subject), "peer/%s", name);
        godwitd_event(d, "peer-added", subject, json_pack("{s:s}", "fingerprint", p.fingerprint));
    }
    api_reply_json(rep, 201, peer_json(&p));
    goto out;
out_unlink:
    unlink(tmp);
out:
    json_decref(reply);
    free(pem);
    explicit_bzero(&tok, sizeof(tok));
}

const struct api_route peers_routes[] = {
    {"GET", "/1.0/peers", peers_list, NULL, 0},
    {"POST", "/1.0/peers", peers_add, add_fields, 0},
    {"POST", "/1.0/peers/tokens", peers_token, token_fields, 0},
    {"POST", "/1.0/peers/join", peers_join, join_fields, API_ROUTE_JOIN},
    {"GET", "/1.0/peers/{name}", peers_get, NULL, 0},
    {"DELETE", "/1.0/peers/{name}", peers_remove, NULL, 0},
};
const size_t peers_nroutes = GW_ARRAY_SIZE(peers_routes);
