/*
 * Peers (peers.c): hosts this one trusts, and the client that calls them
 * (peer_client.c).  The HTTPS listener (--listen) is an API listener
 * (api.c) whose clients must present a pinned certificate.
 *
 * What a peer is: a row in the store's peers table (name it gave itself,
 * address, fingerprint of its certificate) and its certificate as
 * STATE/tls/peers/NAME.pem (0600, written whole), the trust anchor and
 * public-key pin of every call to it.  Pairing: docs/godwitd.md "Trust
 * between hosts".
 */
#ifndef GODWIT_GODWITD_PEERS_H
#define GODWIT_GODWITD_PEERS_H

#include <jansson.h>

#include "godwitd/godwitd.h"

#define PEER_CALL_TIMEOUT_MS  30000
#define PEER_PROBE_TIMEOUT_MS 10000      /* the join's first handshake */
#define PEER_REPLY_MAX        (8u << 20) /* reply bodies: 8 MiB, more is an error */

/*
 * Call a trusted peer's API over HTTPS with mutual TLS: this host's
 * certificate as the client's, the peer's certificate pinned by its stored
 * fingerprint before a byte of the request is sent.  Same contract as the
 * CLI's client: 0 for a 2xx answer with *reply (new reference, may be
 * NULL); -EREMOTEIO for a 4xx/5xx with the peer's own message in err;
 * -ENOENT for an unknown peer; -EDESTADDRREQ for a peer without an address
 * (it does not listen); -EPERM when it presents another certificate
 * (nothing was sent); other -errno when unreachable.  timeout_ms
 * 0: PEER_CALL_TIMEOUT_MS.  Thread-safe.
 */
int peer_call(struct godwitd *d, const char *peer, const char *method, const char *path,
              const json_t *body, json_t **reply, long *status, int timeout_ms, char *err,
              size_t errlen);

/* The same with a body of raw bytes (application/octet-stream; for the
 * routes marked API_ROUTE_RAW): data/len, at most API_BODY_MAX. */
int peer_call_raw(struct godwitd *d, const char *peer, const char *method, const char *path,
                  const void *data, size_t len, json_t **reply, long *status, int timeout_ms,
                  char *err, size_t errlen);

/*
 * A connection to a peer that stays open between requests (one libcurl
 * easy handle, reused: HTTP/1.1 keep-alive, one TLS handshake for many
 * requests), with exactly the checks peer_call makes (pinned certificate
 * and public key, no proxy).  libcurl reconnects by itself when the server
 * closed the connection in between.  Not thread-safe: one user at a time.
 * 0 or -errno with err (peer_call's codes).
 */
struct peer_conn;
int peer_conn_open(struct godwitd *d, const char *peer, struct peer_conn **out, char *err,
                   size_t errlen);
/* As peer_call_raw, over the kept connection. */
int peer_conn_call_raw(struct peer_conn *c, const char *method, const char *path, const void *data,
                       size_t len, json_t **reply, long *status, int timeout_ms, char *err,
                       size_t errlen);
/* As peer_call (JSON body; NULL: none). */
int peer_conn_call(struct peer_conn *c, const char *method, const char *path, const json_t *body,
                   json_t **reply, long *status, int timeout_ms, char *err, size_t errlen);
/* TCP connections the kept connection made so far (1 after the first
 * call; more when libcurl had to connect again, e.g. after a cut link,
 * resending the request it was in). */
unsigned long peer_conn_connects(const struct peer_conn *c);
void peer_conn_free(struct peer_conn *c); /* NULL: no-op */

/* The host part of a peer's address (for the migration stream to reach
 * it), from the stored "host:port".  0 or -ENOENT. */
int peer_host(struct godwitd *d, const char *peer, char *host, size_t len);

/* STATE/tls/peers/NAME.pem.  0 or -ENAMETOOLONG. */
int peer_cert_path(const struct godwitd *d, const char *peer, char *out, size_t len);

/* For api_config.peer_lookup: ctx is the struct godwitd; 0 and the name of
 * the peer whose certificate has this fingerprint, or -ENOENT. */
int peers_lookup_fingerprint(void *ctx, const char *fingerprint, char *name, size_t len);

/*
 * An HTTPS request to address ("host:port") with this host's certificate
 * as the client's, where the server must present the certificate in
 * ca_path (its only trust anchor, and its public key pinned): checked
 * during the handshake, before any byte of the request is written.
 * Contract as peer_call.
 */
int peer_request(struct godwitd *d, const char *address, const char *ca_path, const char *method,
                 const char *path, const json_t *body, json_t **reply, long *status, int timeout_ms,
                 char *err, size_t errlen);

/*
 * The join's first contact: a TLS handshake with address presenting this
 * host's certificate, the server's certificate checked against the token's
 * fingerprint, nothing sent; its certificate as PEM in *pem (malloc'd).
 * -EPERM (another certificate), -ECONNREFUSED, -ETIMEDOUT, ... with err.
 */
int peer_probe(struct godwitd *d, const char *address, const char *fingerprint, char **pem,
               char *err, size_t errlen);

#endif
