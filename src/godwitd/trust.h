/*
 * Trust between hosts (issue 11, docs/godwitd.md "Trust between hosts").
 *
 * Each host has one identity: an ECDSA P-256 key and a self-signed X.509
 * certificate in STATE/tls/, made on first start.  Peers do not use a CA:
 * each host pins the other's certificate by its SHA-256 fingerprint, learnt
 * once through a single-use join token (address, fingerprint, secret,
 * expiry) that the operator carries from host B to host A.
 *
 * Fingerprints are 64 lowercase hex digits, no colons: the SHA-256 of the
 * certificate's DER encoding (`openssl x509 -noout -fingerprint -sha256`
 * shows the same digits in upper case with colons).
 *
 * Nothing here keeps global state; GnuTLS initialises itself.
 */
#ifndef GODWIT_GODWITD_TRUST_H
#define GODWIT_GODWITD_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gnutls/gnutls.h>

#include "common/util.h"

#define TRUST_FP_HEX_LEN        64 /* characters of a fingerprint, without NUL */
#define TRUST_FP_BYTES          32 /* SHA-256 */
#define TRUST_SECRET_BYTES      32
#define TRUST_ADDRESS_MAX       255  /* "host:port", without NUL */
#define TRUST_TOKEN_VERSION     1    /* the only token version parsed */
#define TRUST_TOKEN_TEXT_MAX    512  /* enough for any version-1 token, with NUL */
#define TRUST_TOKEN_TTL_DEFAULT 3600 /* seconds */

struct trust_identity {
    char fingerprint[TRUST_FP_HEX_LEN + 1]; /* of host.crt */
    char *key_path;                         /* DIR/host.key (0600) */
    char *cert_path;                        /* DIR/host.crt */
    char *cert_pem;                         /* host.crt's text, NUL-terminated */
    /* Certificate and key for both ends of mutual TLS; owned. */
    gnutls_certificate_credentials_t creds;
};

/*
 * Load the identity in tls_dir, or make it on first use: tls_dir is created
 * 0700 if missing; a missing host.key gets a new ECDSA P-256 key (written
 * 0600 through a temporary file, fsync and rename); a missing host.crt gets
 * a self-signed certificate with CN = host_name, a random serial and a
 * validity of 30 years.  Refuses (negative errno, one line in err) a key
 * file that group or others can read or that another user owns, a PEM file
 * that does not parse, a certificate whose public key is not the key's, and
 * a certificate without its key.  On success *out is the caller's, freed
 * with trust_identity_free.
 */
int trust_identity_load_or_create(const char *tls_dir, const char *host_name,
                                  struct trust_identity **out, char *err,
                                  size_t errlen) gw_must_check;
void trust_identity_free(struct trust_identity *id); /* NULL: no-op */

/*
 * Prepare session (from gnutls_init) for mutual TLS with id: the system's
 * default priorities restricted to TLS 1.3, id's certificate, and on the
 * server side a client certificate required.  No CA checks are made: after
 * the handshake, before reading or sending anything, the caller pins the
 * peer with trust_session_check_peer (or looks its fingerprint up with
 * trust_fingerprint_of_session, e.g. on libmicrohttpd's session).  The
 * caller ignores SIGPIPE, as a refused peer may close first.
 */
int trust_session_setup(gnutls_session_t session, const struct trust_identity *id, bool server,
                        char *err, size_t errlen) gw_must_check;

/* The fingerprint of a PEM certificate (the first one in pem), or of the
 * certificate the peer presented in a completed handshake. */
int trust_fingerprint_of_pem(const char *pem, size_t len, char out[TRUST_FP_HEX_LEN + 1], char *err,
                             size_t errlen) gw_must_check;
int trust_fingerprint_of_session(gnutls_session_t session, char out[TRUST_FP_HEX_LEN + 1],
                                 char *err, size_t errlen) gw_must_check;

/* The certificate the peer of a completed handshake presented, as PEM in
 * *pem_out (malloc'd, NUL-terminated): what A keeps of B after a join, and
 * what an HTTPS client (libcurl's CURLOPT_CAINFO, the pinned self-signed
 * certificate as its own trust anchor) checks B against afterwards. */
int trust_session_peer_pem(gnutls_session_t session, char **pem_out, char *err,
                           size_t errlen) gw_must_check;

/* Read the identity's key again, with the same checks, as PEM in *pem_out
 * (malloc'd, NUL-terminated; the caller wipes it with explicit_bzero and
 * frees it): for libraries that take the key in memory (libmicrohttpd). */
int trust_identity_key_pem(const struct trust_identity *id, char **pem_out, size_t *len, char *err,
                           size_t errlen) gw_must_check;

/* 0 if the peer of a completed handshake presented the certificate whose
 * fingerprint is want, else -EPERM with both fingerprints in err. */
int trust_session_check_peer(gnutls_session_t session, const char *want, char *err,
                             size_t errlen) gw_must_check;

/* Whether a and b are the same well-formed fingerprint (case-insensitive),
 * in time independent of where they differ. */
bool trust_fingerprint_equal(const char *a, const char *b);
bool trust_fingerprint_valid(const char *fp);

/* Compare n bytes in time independent of their contents: 0 if equal. */
int trust_memcmp_ct(const void *a, const void *b, size_t n);

/*
 * Join tokens.  The text is base64url (no padding) of:
 *   u8  version (1)
 *   u8  address length N (1..255), then N printable bytes "host:port"
 *   32  certificate fingerprint (SHA-256, binary)
 *   32  secret
 *   u64 expiry, unix seconds, little endian
 *   4   first bytes of SHA-256 over everything before (catches typos and
 *       truncation; not a signature: the secret and the pinned fingerprint
 *       are what defeat a forged token)
 */
struct trust_token {
    unsigned version;
    char address[TRUST_ADDRESS_MAX + 1];
    char fingerprint[TRUST_FP_HEX_LEN + 1];
    uint8_t secret[TRUST_SECRET_BYTES];
    int64_t expiry; /* unix seconds */
};

/*
 * Make a token for address ("host:port", "[v6]:port") and fingerprint
 * valid until expiry (unix seconds): a fresh random secret goes to
 * secret_out (store only trust_secret_hash of it), the text to token_out
 * (TRUST_TOKEN_TEXT_MAX is always enough).
 */
int trust_token_make(const char *address, const char *fingerprint,
                     uint8_t secret_out[TRUST_SECRET_BYTES], int64_t expiry, char *token_out,
                     size_t token_len, char *err, size_t errlen) gw_must_check;

/* Parse and validate text strictly (alphabet, length, checksum, version,
 * address, sizes); leading and trailing white space is ignored.  Does not
 * look at the clock: see trust_token_expired. */
int trust_token_parse(const char *text, struct trust_token *out, char *err,
                      size_t errlen) gw_must_check;

/* Whether tok's expiry is at or before now (unix seconds). */
bool trust_token_expired(const struct trust_token *tok, int64_t now);

/* 0 if address is "host:port" with a printable host (a bracketed IPv6
 * literal allowed) and a port 1..65535. */
int trust_address_check(const char *address, char *err, size_t errlen) gw_must_check;

/* base64url (RFC 4648 §5) without padding.  Encode writes a NUL-terminated
 * text and returns its length, or -ENOSPC.  Decode is strict (no padding,
 * no white space, unused bits zero) and returns the byte count, -EINVAL or
 * -ENOSPC. */
int trust_base64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
int trust_base64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen);

/*
 * libcurl's public-key pin of a PEM certificate (CURLOPT_PINNEDPUBLICKEY):
 * "sha256//" and the standard base64 of the SHA-256 of its
 * SubjectPublicKeyInfo (DER).  out needs TRUST_PIN_MAX bytes.
 */
#define TRUST_PIN_MAX 64
int trust_pin_of_pem(const char *pem, size_t len, char *out, size_t outlen, char *err,
                     size_t errlen) gw_must_check;

/* Write data to path (in dir) whole or not at all, with mode: a temporary
 * file, fsync, rename, fsync of dir. */
int trust_write_file(const char *dir, const char *path, const void *data, size_t len, mode_t mode,
                     char *err, size_t errlen) gw_must_check;

/* SHA-256 of a secret as 64 lowercase hex digits: what the store keeps. */
int trust_secret_hash(const uint8_t *secret, size_t len,
                      char out[TRUST_FP_HEX_LEN + 1]) gw_must_check;

/* 0 if secret hashes to stored_hash (hex), compared in constant time. */
int trust_secret_check(const uint8_t *secret, size_t len, const char *stored_hash) gw_must_check;

#endif
