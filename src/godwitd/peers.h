/*
 * Peers (peers.c): hosts this one trusts, and the client that calls them.
 * The HTTPS listener (--listen) is an API listener (api.c) whose clients
 * must present a pinned certificate.
 */
#ifndef GODWIT_GODWITD_PEERS_H
#define GODWIT_GODWITD_PEERS_H

#include <jansson.h>

#include "godwitd/godwitd.h"

#define PEER_CALL_TIMEOUT_MS 30000

/*
 * Call a trusted peer's API over HTTPS with mutual TLS: this host's
 * certificate as the client's, the peer's certificate pinned by its stored
 * fingerprint before a byte of the request is sent.  Same contract as the
 * CLI's client: 0 for a 2xx answer with *reply (new reference, may be
 * NULL); -EREMOTEIO for a 4xx/5xx with the peer's own message in err;
 * -ENOENT for an unknown peer; other -errno when unreachable.  timeout_ms
 * 0: PEER_CALL_TIMEOUT_MS.  Thread-safe.
 */
int peer_call(struct godwitd *d, const char *peer, const char *method, const char *path,
              const json_t *body, json_t **reply, long *status, int timeout_ms, char *err,
              size_t errlen);

/* The host part of a peer's address (for the migration stream to reach
 * it), from the stored "host:port".  0 or -ENOENT. */
int peer_host(struct godwitd *d, const char *peer, char *host, size_t len);

#endif
