/*
 * The peer client (peers.h): godwitd calling another godwitd's API over
 * HTTPS with mutual TLS (libcurl, GnuTLS flavour), and the join's first
 * handshake (GnuTLS directly).
 *
 * Pinning: a peer's stored certificate is the only trust anchor libcurl
 * gets (CURLOPT_CAINFO, peer verification on, host name check off: a
 * self-signed certificate names no address) and its public key is pinned
 * too (CURLOPT_PINNEDPUBLICKEY).  libcurl checks both when the handshake
 * ends, before it writes the request, so a host with another certificate
 * never sees a byte of it.  No proxy from the environment is used.
 */
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/sock.h"
#include "godwitd/peers.h"

struct peer_buf {
    char *data;
    size_t len;
    bool too_large;
};

static size_t peer_write(char *ptr, size_t size, size_t n, void *cls)
{
    struct peer_buf *b = cls;
    size_t add = size * n;

    if (add > PEER_REPLY_MAX - b->len) {
        b->too_large = true;
        return 0;
    }
    char *p = realloc(b->data, b->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, ptr, add);
    b->data = p;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* The message of an error body, else "HTTP N". */
static void peer_error_message(const json_t *reply, long status, char *err, size_t errlen)
{
    const char *m = json_string_value(json_object_get(json_object_get(reply, "error"), "message"));

    if (m)
        snprintf(err, errlen, "%s", m);
    else
        snprintf(err, errlen, "HTTP %ld", status);
}

/* The pin of the certificate in ca_path: the same file libcurl is given as
 * the anchor. */
static int peer_pin_of_file(const char *ca_path, char *pin, size_t pinlen, char *err, size_t errlen)
{
    FILE *f = fopen(ca_path, "re");
    char *pem;
    size_t pemlen;
    int ret;

    if (!f)
        return gw_fail(err, errlen, -ENOENT, "cannot read the peer certificate '%s': %s", ca_path,
                       strerror(errno));
    pem = malloc(65536);
    pemlen = pem ? fread(pem, 1, 65535, f) : 0;
    fclose(f);
    if (!pem)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    pem[pemlen] = '\0';
    ret = trust_pin_of_pem(pem, pemlen, pin, pinlen, err, errlen);
    free(pem);
    return ret;
}

/* The options of a handle that stay for every request on it: mutual TLS,
 * the pinned anchor and key, no proxy.  pin and cerr must outlive c. */
static void peer_handle_setup(CURL *c, struct godwitd *d, const char *ca_path, const char *pin,
                              char *cerr)
{
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_3);
    curl_easy_setopt(c, CURLOPT_SSLCERT, d->id->cert_path);
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_SSLKEY, d->id->key_path);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(c, CURLOPT_CAINFO, ca_path);
    curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, pin);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, peer_write);
}

/* One request on a set-up handle (fresh or kept): the per-request options,
 * perform, and the answer turned into the peer_call contract. */
static int peer_perform(CURL *c, const char *cerr, const char *address, const char *method,
                        const char *path, const json_t *body, const void *raw, size_t rawlen,
                        json_t **reply, long *status, int timeout_ms, char *err, size_t errlen)
{
    char url[TRUST_ADDRESS_MAX + 1100];
    char *text = NULL;
    struct peer_buf buf = {NULL, 0, false};
    struct curl_slist *hdrs = NULL;
    json_t *r = NULL;
    long st = 0;
    CURLcode cc;
    int ret;

    if (reply)
        *reply = NULL;
    if (status)
        *status = 0;
    if (timeout_ms <= 0)
        timeout_ms = PEER_CALL_TIMEOUT_MS;
    if (strlen(path) > 1024 || path[0] != '/')
        return gw_fail(err, errlen, -EINVAL, "bad path");
    snprintf(url, sizeof(url), "https://%s%s", address, path);
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text)
            return gw_fail(err, errlen, -ENOMEM, "out of memory");
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (text)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    else if (raw)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
    if (!text && !raw)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L); /* a kept handle forgets its last body */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
    if (text) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    } else if (raw) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)rawlen);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, raw);
    }
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        const char *why = cerr[0] ? cerr : curl_easy_strerror(cc);
        if (cc == CURLE_WRITE_ERROR && buf.too_large)
            cc = CURLE_FILESIZE_EXCEEDED;
        switch (cc) {
        case CURLE_FILESIZE_EXCEEDED:
            ret = gw_fail(err, errlen, -EMSGSIZE, "%s answered more than %u bytes", address,
                          PEER_REPLY_MAX);
            break;
        case CURLE_COULDNT_CONNECT:
            ret = gw_fail(err, errlen, -ECONNREFUSED, "cannot connect to %s: %s", address, why);
            break;
        case CURLE_COULDNT_RESOLVE_HOST:
            ret = gw_fail(err, errlen, -EHOSTUNREACH, "cannot resolve %s: %s", address, why);
            break;
        case CURLE_OPERATION_TIMEDOUT:
            ret = gw_fail(err, errlen, -ETIMEDOUT, "%s did not answer in time: %s", address, why);
            break;
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
            ret = gw_fail(err, errlen, -EPERM,
                          "%s does not present the pinned certificate (%s): nothing was sent",
                          address, why);
            break;
        default: ret = gw_fail(err, errlen, -EIO, "%s: %s", address, why); break;
        }
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
    if (status)
        *status = st;
    if (buf.len) {
        json_error_t jerr;
        r = json_loadb(buf.data, buf.len, 0, &jerr);
        if (!r) {
            ret = gw_fail(err, errlen, -EPROTO, "%s answered HTTP %ld with a body that is not JSON",
                          address, st);
            goto out;
        }
    }
    if (st < 200 || st >= 300) {
        peer_error_message(r, st, err, errlen);
        ret = -EREMOTEIO;
        goto out;
    }
    if (reply) {
        *reply = r;
        r = NULL;
    }
    ret = 0;
out:
    /* Nothing of this request may stay reachable from a kept handle. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    json_decref(r);
    free(buf.data);
    free(text);
    curl_slist_free_all(hdrs);
    return ret;
}

static int peer_request_any(struct godwitd *d, const char *address, const char *ca_path,
                            const char *method, const char *path, const json_t *body,
                            const void *raw, size_t rawlen, json_t **reply, long *status,
                            int timeout_ms, char *err, size_t errlen)
{
    char pin[TRUST_PIN_MAX], cerr[CURL_ERROR_SIZE] = "";
    CURL *c;
    int ret;

    if (reply)
        *reply = NULL;
    if (status)
        *status = 0;
    if (strlen(path) > 1024 || path[0] != '/')
        return gw_fail(err, errlen, -EINVAL, "bad path");
    ret = peer_pin_of_file(ca_path, pin, sizeof(pin), err, errlen);
    if (ret < 0)
        return ret;
    c = curl_easy_init();
    if (!c)
        return gw_fail(err, errlen, -ENOMEM, "cannot start a libcurl handle");
    peer_handle_setup(c, d, ca_path, pin, cerr);
    ret = peer_perform(c, cerr, address, method, path, body, raw, rawlen, reply, status, timeout_ms,
                       err, errlen);
    curl_easy_cleanup(c);
    return ret;
}

int peer_request(struct godwitd *d, const char *address, const char *ca_path, const char *method,
                 const char *path, const json_t *body, json_t **reply, long *status, int timeout_ms,
                 char *err, size_t errlen)
{
    return peer_request_any(d, address, ca_path, method, path, body, NULL, 0, reply, status,
                            timeout_ms, err, errlen);
}

int peer_cert_path(const struct godwitd *d, const char *peer, char *out, size_t len)
{
    return snprintf(out, len, "%s/tls/peers/%s.pem", d->state_dir, peer) >= (int)len ? -ENAMETOOLONG
                                                                                     : 0;
}

/* The peer's address and certificate path. */
static int peer_where(struct godwitd *d, const char *peer, char *address, size_t alen, char *ca,
                      size_t calen, char *err, size_t errlen)
{
    struct store_peer p;
    int ret;

    if (!api_name_valid(peer))
        return gw_fail(err, errlen, -ENOENT, "no peer named '%.64s'", peer ? peer : "");
    godwitd_store_lock(d);
    ret = store_peer_get(d->store, peer, &p);
    godwitd_store_unlock(d);
    if (ret == -ENOENT)
        return gw_fail(err, errlen, -ENOENT, "no peer named '%s'", peer);
    if (ret < 0)
        return gw_fail(err, errlen, ret, "cannot read the peer '%s'", peer);
    if (!p.address[0])
        return gw_fail(err, errlen, -EDESTADDRREQ,
                       "peer '%s' has no address (it does not listen for peers)", peer);
    snprintf(address, alen, "%s", p.address);
    if (peer_cert_path(d, peer, ca, calen) < 0)
        return gw_fail(err, errlen, -ENAMETOOLONG, "state directory path too long");
    return 0;
}

int peer_call(struct godwitd *d, const char *peer, const char *method, const char *path,
              const json_t *body, json_t **reply, long *status, int timeout_ms, char *err,
              size_t errlen)
{
    char ca[PATH_MAX], address[STORE_ADDR_MAX];
    int ret;

    if (reply)
        *reply = NULL;
    ret = peer_where(d, peer, address, sizeof(address), ca, sizeof(ca), err, errlen);
    if (ret < 0)
        return ret;
    return peer_request_any(d, address, ca, method, path, body, NULL, 0, reply, status, timeout_ms,
                            err, errlen);
}

int peer_call_raw(struct godwitd *d, const char *peer, const char *method, const char *path,
                  const void *data, size_t len, json_t **reply, long *status, int timeout_ms,
                  char *err, size_t errlen)
{
    char ca[PATH_MAX], address[STORE_ADDR_MAX];
    static const char empty[1];
    int ret;

    if (reply)
        *reply = NULL;
    ret = peer_where(d, peer, address, sizeof(address), ca, sizeof(ca), err, errlen);
    if (ret < 0)
        return ret;
    return peer_request_any(d, address, ca, method, path, NULL, data ? data : empty, len, reply,
                            status, timeout_ms, err, errlen);
}

/* A kept connection: one easy handle, whose connection cache keeps the
 * TLS session open between requests (HTTP/1.1 keep-alive). */
struct peer_conn {
    CURL *c;
    unsigned long connects; /* TCP connections made so far */
    char address[STORE_ADDR_MAX];
    char ca[PATH_MAX];
    char pin[TRUST_PIN_MAX];
    char cerr[CURL_ERROR_SIZE];
};

int peer_conn_open(struct godwitd *d, const char *peer, struct peer_conn **out, char *err,
                   size_t errlen)
{
    struct peer_conn *pc;
    int ret;

    *out = NULL;
    pc = calloc(1, sizeof(*pc));
    if (!pc)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    ret =
        peer_where(d, peer, pc->address, sizeof(pc->address), pc->ca, sizeof(pc->ca), err, errlen);
    if (ret == 0)
        ret = peer_pin_of_file(pc->ca, pc->pin, sizeof(pc->pin), err, errlen);
    if (ret < 0) {
        free(pc);
        return ret;
    }
    pc->c = curl_easy_init();
    if (!pc->c) {
        free(pc);
        return gw_fail(err, errlen, -ENOMEM, "cannot start a libcurl handle");
    }
    peer_handle_setup(pc->c, d, pc->ca, pc->pin, pc->cerr);
    *out = pc;
    return 0;
}

int peer_conn_call_raw(struct peer_conn *c, const char *method, const char *path, const void *data,
                       size_t len, json_t **reply, long *status, int timeout_ms, char *err,
                       size_t errlen)
{
    static const char empty[1];

    long n = 0;
    int ret;

    c->cerr[0] = '\0';
    ret = peer_perform(c->c, c->cerr, c->address, method, path, NULL, data ? data : empty, len,
                       reply, status, timeout_ms, err, errlen);
    if (curl_easy_getinfo(c->c, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK && n > 0)
        c->connects += (unsigned long)n;
    return ret;
}

unsigned long peer_conn_connects(const struct peer_conn *c)
{
    return c ? c->connects : 0;
}

int peer_conn_call(struct peer_conn *c, const char *method, const char *path, const json_t *body,
                   json_t **reply, long *status, int timeout_ms, char *err, size_t errlen)
{
    long n = 0;
    int ret;

    c->cerr[0] = '\0';
    ret = peer_perform(c->c, c->cerr, c->address, method, path, body, NULL, 0, reply, status,
                       timeout_ms, err, errlen);
    if (curl_easy_getinfo(c->c, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK && n > 0)
        c->connects += (unsigned long)n;
    return ret;
}

void peer_conn_free(struct peer_conn *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->c);
    free(c);
}

int peer_host(struct godwitd *d, const char *peer, char *host, size_t len)
{
    struct store_peer p;
    const char *colon;
    int ret;

    if (!api_name_valid(peer))
        return -ENOENT;
    godwitd_store_lock(d);
    ret = store_peer_get(d->store, peer, &p);
    godwitd_store_unlock(d);
    if (ret < 0)
        return ret == -ENOENT ? -ENOENT : ret;
    colon = strrchr(p.address, ':');
    if (!colon)
        return -ENOENT;
    if (p.address[0] == '[' && colon > p.address + 1 && colon[-1] == ']')
        return snprintf(host, len, "%.*s", (int)(colon - p.address - 2), p.address + 1) >= (int)len
                   ? -ENAMETOOLONG
                   : 0;
    return snprintf(host, len, "%.*s", (int)(colon - p.address), p.address) >= (int)len
               ? -ENAMETOOLONG
               : 0;
}

/* Run the handshake on a blocking fd with a deadline. */
static int peer_handshake(gnutls_session_t s, int timeout_ms)
{
    int r;

    gnutls_handshake_set_timeout(s, (unsigned)timeout_ms);
    do
        r = gnutls_handshake(s);
    while (r < 0 && !gnutls_error_is_fatal(r));
    return r;
}

int peer_probe(struct godwitd *d, const char *address, const char *fingerprint, char **pem,
               char *err, size_t errlen)
{
    struct sock_addr a;
    gnutls_session_t s = NULL;
    int fd, r, ret;

    *pem = NULL;
    ret = sock_parse_hostport(address, 0, &a, err, errlen);
    if (ret < 0)
        return ret;
    fd = sock_connect(&a, PEER_PROBE_TIMEOUT_MS, SOCK_F_NODELAY, err, errlen);
    if (fd < 0)
        return fd;
    {
        /* A server that accepts and then says nothing must not hold us. */
        struct timeval tv = {PEER_PROBE_TIMEOUT_MS / 1000, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    r = gnutls_init(&s, GNUTLS_CLIENT);
    if (r < 0) {
        ret = gw_fail(err, errlen, -ENOMEM, "gnutls: %s", gnutls_strerror(r));
        goto out;
    }
    ret = trust_session_setup(s, d->id, false, err, errlen);
    if (ret < 0)
        goto out;
    gnutls_transport_set_int(s, fd);
    r = peer_handshake(s, PEER_PROBE_TIMEOUT_MS);
    if (r < 0) {
        ret = gw_fail(err, errlen, -EPROTO, "TLS handshake with %s failed: %s", address,
                      gnutls_strerror(r));
        goto out;
    }
    ret = trust_session_check_peer(s, fingerprint, err, errlen);
    if (ret < 0) {
        char got[TRUST_FP_HEX_LEN + 1] = "?";
        if (trust_fingerprint_of_session(s, got, NULL, 0) < 0)
            snprintf(got, sizeof(got), "none");
        ret = gw_fail(err, errlen, -EPERM,
                      "the host at %s presents certificate %s, not the token's %s: refusing to "
                      "send it the secret",
                      address, got, fingerprint);
        goto out;
    }
    ret = trust_session_peer_pem(s, pem, err, errlen);
    if (ret == 0)
        gnutls_bye(s, GNUTLS_SHUT_WR);
out:
    if (s)
        gnutls_deinit(s);
    close(fd);
    return ret;
}
