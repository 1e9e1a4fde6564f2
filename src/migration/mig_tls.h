/*
 * TLS for the live-migration channel (docs/state.md, "TLS"): QEMU's
 * tls-creds-psk object and its key file, and a GnuTLS session over a
 * connected socket that carries both the state stream and the commit
 * protocol's control messages.
 *
 * The key file is QEMU's: DIR/keys.psk, one "identity:hexkey" a line; the
 * client uses the identity "qemu" (QEMU's default).  Both ends must hold the
 * same key: a peer without it, or one that speaks plaintext, fails the
 * handshake, so not a byte of its stream reaches the loader.
 *
 * TLS 1.3 (or 1.2) with a PSK and an (EC)DHE exchange, AES-GCM preferred.
 * Threading: a session may send on one thread while another receives
 * (GnuTLS allows it); one sender and one receiver at a time.
 */
#ifndef GODWIT_MIGRATION_MIG_TLS_H
#define GODWIT_MIGRATION_MIG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"
#include "state/state_stream.h"

#define MIG_TLS_IDENTITY     "qemu" /* QEMU's default PSK identity */
#define MIG_TLS_HANDSHAKE_MS 10000

struct mig_tls_creds;
struct mig_tls;

/*
 * Load DIR/keys.psk for a client (server = false: the key of identity
 * MIG_TLS_IDENTITY) or a server (every identity in the file).  A missing,
 * malformed or group/world-accessible file is refused with a reason.  NULL
 * on failure.
 */
struct mig_tls_creds *mig_tls_creds_load(const char *dir, bool server, char *err, size_t errlen);
void mig_tls_creds_free(struct mig_tls_creds *c); /* NULL is a no-op */

/*
 * Shake hands on the connected fd as the creds' side, within timeout_ms.
 * The session uses but does not own fd (the caller closes it after
 * mig_tls_free).  NULL with a reason in err (wrong key, plaintext peer,
 * timeout).  creds must outlive the session.
 */
struct mig_tls *mig_tls_open(const struct mig_tls_creds *c, int fd, int timeout_ms, char *err,
                             size_t errlen);
/* Free the session (no close_notify: the commit protocol ends the talk). */
void mig_tls_free(struct mig_tls *t); /* NULL is a no-op */

/* Send all n bytes: 0 or -errno. */
int mig_tls_send(struct mig_tls *t, const void *p, size_t n);
/* Receive up to n bytes within timeout_ms (-1: no limit but the socket's):
 * bytes (> 0), 0 at end of stream, -ETIMEDOUT, or -errno. */
ssize_t mig_tls_recv(struct mig_tls *t, void *p, size_t n, int timeout_ms);
/* Data to read without waiting: a decrypted record already buffered. */
bool mig_tls_pending(struct mig_tls *t);
/* The negotiated protocol, key exchange and cipher, e.g. "TLS1.3 ECDHE-PSK AES-128-GCM". */
const char *mig_tls_describe(const struct mig_tls *t);

/* The state stream's transport over a session (opaque: the struct mig_tls). */
extern const struct state_io mig_tls_io;

#endif
