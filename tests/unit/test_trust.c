/*
 * Unit tests for src/godwitd/trust.c: the host identity on real files in a
 * temporary directory, fingerprints, join tokens (round trip and hostile
 * texts) and a real mutual-TLS handshake over a socketpair with pinning.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <gnutls/crypto.h>

#include "board_check.h"
#include "godwitd/trust.h"

static char tmp_root[] = "/tmp/godwit-test-trust-XXXXXX";

static char *path_in(const char *dir, const char *name)
{
    static char bufs[8][512];
    static unsigned next;
    char *p = bufs[next++ % 8];

    snprintf(p, sizeof(bufs[0]), "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0)
            perror("write");
        fchmod(fd, mode);
        close(fd);
    }
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
    char buf[8192];
    ssize_t n;
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);

    while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            break;
    if (out >= 0)
        fchmod(out, mode);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    return stat(path, &st) < 0 ? (mode_t)-1 : st.st_mode & 07777;
}

static unsigned count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    unsigned n = 0;

    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static bool lower_hex64(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

static void test_identity(void)
{
    char dir[512], err[256], fp[TRUST_FP_HEX_LEN + 1];
    struct trust_identity *id = NULL, *id2 = NULL;
    int ret;

    snprintf(dir, sizeof(dir), "%s/tls", tmp_root);
    ret = trust_identity_load_or_create(dir, "host-a", &id, err, sizeof(err));
    CHECK(ret == 0 && id, "identity created in a new directory (%s)", ret ? err : "ok");
    if (!id)
        return;
    CHECK_EQ(mode_of(dir), 0700, "tls directory is 0700");
    CHECK_EQ(mode_of(id->key_path), 0600, "host.key is 0600");
    CHECK_EQ(mode_of(id->cert_path), 0644, "host.crt is 0644");
    CHECK(lower_hex64(id->fingerprint), "fingerprint is 64 lowercase hex digits: %s",
          id->fingerprint);
    CHECK(trust_fingerprint_valid(id->fingerprint), "fingerprint_valid accepts it");
    CHECK(trust_fingerprint_of_pem(id->cert_pem, strlen(id->cert_pem), fp, err, sizeof(err)) == 0 &&
              strcmp(fp, id->fingerprint) == 0,
          "fingerprint of the PEM text is the identity's");
    CHECK(strstr(id->cert_pem, "BEGIN CERTIFICATE") != NULL, "cert_pem is PEM");
    CHECK_EQ(count_entries(dir), 2, "only host.key and host.crt in the directory (no temp files)");

    ret = trust_identity_load_or_create(dir, "host-a", &id2, err, sizeof(err));
    CHECK(ret == 0 && id2 && strcmp(id2->fingerprint, id->fingerprint) == 0,
          "reload gives the same fingerprint (%s)", ret ? err : "ok");
    trust_identity_free(id2);
    id2 = NULL;

    /* A key others can read is refused, and says what to do. */
    chmod(id->key_path, 0644);
    ret = trust_identity_load_or_create(dir, "host-a", &id2, err, sizeof(err));
    CHECK(ret == -EPERM && !id2 && strstr(err, "chmod 600"), "world-readable key refused: %s", err);
    chmod(id->key_path, 0640);
    ret = trust_identity_load_or_create(dir, "host-a", &id2, err, sizeof(err));
    CHECK(ret == -EPERM && !id2, "group-readable key refused");
    chmod(id->key_path, 0600);

    /* A key another user owns (only root can hand it over to test this). */
    if (geteuid() == 0 && chown(id->key_path, 65534, (gid_t)-1) == 0) {
        ret = trust_identity_load_or_create(dir, "host-a", &id2, err, sizeof(err));
        CHECK(ret == -EPERM && !id2 && strstr(err, "belongs to uid"),
              "key owned by another user refused: %s", err);
        if (chown(id->key_path, 0, (gid_t)-1) < 0)
            perror("chown");
    }

    /* A certificate that is not the key's. */
    {
        char other[512];
        struct trust_identity *b = NULL;

        snprintf(other, sizeof(other), "%s/tls-b", tmp_root);
        ret = trust_identity_load_or_create(other, "host-b", &b, err, sizeof(err));
        CHECK(ret == 0 && b && strcmp(b->fingerprint, id->fingerprint) != 0,
              "second identity has another fingerprint");
        if (b) {
            copy_file(id->cert_path, b->cert_path, 0644);
            ret = trust_identity_load_or_create(other, "host-b", &id2, err, sizeof(err));
            CHECK(ret == -EINVAL && !id2 && strstr(err, "does not belong"),
                  "certificate of another key refused: %s", err);
            trust_identity_free(b);
        }
    }

    /* Corrupt PEM, key and certificate. */
    {
        char bad[512];

        snprintf(bad, sizeof(bad), "%s/tls-bad", tmp_root);
        mkdir(bad, 0700);
        write_file(path_in(bad, "host.key"), "-----BEGIN PRIVATE KEY-----\nnot base64!\n", 0600);
        ret = trust_identity_load_or_create(bad, "host-c", &id2, err, sizeof(err));
        CHECK(ret == -EINVAL && !id2 && strstr(err, "not a PEM private key"),
              "corrupt key PEM refused: %s", err);
        copy_file(id->key_path, path_in(bad, "host.key"), 0600);
        write_file(path_in(bad, "host.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n", 0644);
        ret = trust_identity_load_or_create(bad, "host-c", &id2, err, sizeof(err));
        CHECK(ret == -EINVAL && !id2 && strstr(err, "not a PEM certificate"),
              "corrupt certificate PEM refused: %s", err);
        CHECK(trust_fingerprint_of_pem("garbage", 7, fp, err, sizeof(err)) == -EINVAL,
              "fingerprint_of_pem refuses garbage");

        /* Key kept, certificate gone: a new certificate for the same key. */
        unlink(path_in(bad, "host.crt"));
        ret = trust_identity_load_or_create(bad, "host-c", &id2, err, sizeof(err));
        CHECK(ret == 0 && id2, "missing certificate remade for an existing key (%s)",
              ret ? err : "ok");
        trust_identity_free(id2);
        id2 = NULL;

        /* Certificate kept, key gone: refused, the identity is lost. */
        unlink(path_in(bad, "host.key"));
        ret = trust_identity_load_or_create(bad, "host-c", &id2, err, sizeof(err));
        CHECK(ret == -ENOENT && !id2 && strstr(err, "missing"),
              "certificate without its key refused: %s", err);
    }
    CHECK(trust_identity_load_or_create(dir, "", &id2, err, sizeof(err)) == -EINVAL,
          "empty host name refused");
    trust_identity_free(id);
    trust_identity_free(NULL);
}

/* Re-encode a token's bytes after edit() with a valid checksum. */
static void reforge(const char *token, uint8_t version, char *out, size_t outlen)
{
    uint8_t buf[512], sum[32];
    int n = trust_base64url_decode(token, strlen(token), buf, sizeof(buf));

    if (n < 4)
        return;
    buf[0] = version;
    gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, (size_t)n - 4, sum);
    memcpy(buf + n - 4, sum, 4);
    if (trust_base64url_encode(buf, (size_t)n, out, outlen) < 0)
        out[0] = '\0';
}

static void test_tokens(void)
{
    const char *fp = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char tok[TRUST_TOKEN_TEXT_MAX], bad[TRUST_TOKEN_TEXT_MAX + 16], err[256];
    char hash[TRUST_FP_HEX_LEN + 1];
    uint8_t secret[TRUST_SECRET_BYTES], zero[TRUST_SECRET_BYTES] = {0};
    struct trust_token t;
    int ret;

    ret = trust_token_make("hostb.example:8443", fp, secret, 1900000000, tok, sizeof(tok), err,
                           sizeof(err));
    CHECK(ret == 0, "token made (%s)", ret ? err : tok);
    CHECK(memcmp(secret, zero, sizeof(zero)) != 0, "secret is random (not all zero)");
    ret = trust_token_parse(tok, &t, err, sizeof(err));
    CHECK(ret == 0 && t.version == 1 && strcmp(t.address, "hostb.example:8443") == 0 &&
              strcmp(t.fingerprint, fp) == 0 && memcmp(t.secret, secret, sizeof(secret)) == 0 &&
              t.expiry == 1900000000,
          "token round trip (%s)", ret ? err : "ok");
    CHECK(!trust_token_expired(&t, 1899999999), "not expired a second before");
    CHECK(trust_token_expired(&t, 1900000000), "expired at its expiry");

    snprintf(bad, sizeof(bad), "  %s\n", tok);
    CHECK(trust_token_parse(bad, &t, err, sizeof(err)) == 0, "surrounding white space ignored");

    /* Tampered: one character changed in the middle. */
    snprintf(bad, sizeof(bad), "%s", tok);
    bad[strlen(bad) / 2] = bad[strlen(bad) / 2] == 'A' ? 'B' : 'A';
    ret = trust_token_parse(bad, &t, err, sizeof(err));
    CHECK(ret == -EINVAL && strstr(err, "damaged"), "tampered token refused: %s", err);

    /* Truncated at several places. */
    for (size_t cut = 1; cut < strlen(tok); cut += 17) {
        snprintf(bad, sizeof(bad), "%.*s", (int)(strlen(tok) - cut), tok);
        ret = trust_token_parse(bad, &t, err, sizeof(err));
        if (ret != -EINVAL) {
            CHECK(0, "truncated by %zu refused", cut);
            break;
        }
    }
    CHECK(ret == -EINVAL, "truncated tokens refused: %s", err);

    reforge(tok, 2, bad, sizeof(bad));
    ret = trust_token_parse(bad, &t, err, sizeof(err));
    CHECK(ret == -EPROTONOSUPPORT && strstr(err, "version 2"), "wrong version refused: %s", err);

    CHECK(trust_token_parse("", &t, err, sizeof(err)) == -EINVAL, "empty token refused: %s", err);
    ret = trust_token_parse("hello world, not a token", &t, err, sizeof(err));
    CHECK(ret == -EINVAL && strstr(err, "character"), "garbage refused: %s", err);
    ret = trust_token_parse("aGVsbG8gd29ybGQ", &t, err, sizeof(err));
    CHECK(ret == -EINVAL, "valid base64url that is no token refused: %s", err);
    memset(bad, 'A', 500);
    bad[500] = '\0';
    CHECK(trust_token_parse(bad, &t, err, sizeof(err)) == -EINVAL, "overlong token refused: %s",
          err);

    /* Addresses. */
    CHECK(trust_token_make("[fd00::1]:8443", fp, secret, 1900000000, tok, sizeof(tok), err,
                           sizeof(err)) == 0 &&
              trust_token_parse(tok, &t, err, sizeof(err)) == 0 &&
              strcmp(t.address, "[fd00::1]:8443") == 0,
          "IPv6 address round trip");
    CHECK(trust_token_make("hostb", fp, secret, 1, tok, sizeof(tok), err, sizeof(err)) == -EINVAL,
          "address without port refused: %s", err);
    CHECK(trust_token_make("host b:1", fp, secret, 1, tok, sizeof(tok), err, sizeof(err)) ==
              -EINVAL,
          "address with a space refused: %s", err);
    CHECK(trust_token_make("hostb:70000", fp, secret, 1, tok, sizeof(tok), err, sizeof(err)) ==
              -EINVAL,
          "port out of range refused: %s", err);
    CHECK(trust_token_make("fd00::1:80", fp, secret, 1, tok, sizeof(tok), err, sizeof(err)) ==
              -EINVAL,
          "bare IPv6 refused: %s", err);
    CHECK(trust_token_make("hostb:1", "abc", secret, 1, tok, sizeof(tok), err, sizeof(err)) ==
              -EINVAL,
          "short fingerprint refused: %s", err);
    CHECK(trust_token_make("hostb:1", fp, secret, 0, tok, sizeof(tok), err, sizeof(err)) == -EINVAL,
          "zero expiry refused: %s", err);
    CHECK(trust_token_make("hostb:1", fp, secret, 1, tok, 20, err, sizeof(err)) == -ENOSPC,
          "small token buffer refused");

    /* Secret hashes. */
    CHECK(trust_secret_hash(secret, sizeof(secret), hash) == 0 && lower_hex64(hash),
          "secret hash is 64 hex digits");
    CHECK(trust_secret_check(secret, sizeof(secret), hash) == 0, "secret matches its hash");
    secret[0] ^= 1;
    CHECK(trust_secret_check(secret, sizeof(secret), hash) == -EPERM,
          "another secret does not match");
    CHECK(trust_secret_check(secret, sizeof(secret), "zz") == -EINVAL, "bad stored hash refused");

    CHECK(trust_fingerprint_equal(
              fp, "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff"),
          "fingerprint compare ignores case");
    CHECK(!trust_fingerprint_equal(
              fp, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefe"),
          "fingerprints differing in the last digit differ");
    CHECK(!trust_fingerprint_equal(fp, "0011"), "short fingerprint never equal");
    CHECK(trust_memcmp_ct("abc", "abc", 3) == 0 && trust_memcmp_ct("abc", "abd", 3) != 0,
          "constant-time compare");
}

/* One end of a handshake, run in a thread for the server side. */
struct tls_end {
    const struct trust_identity *id;
    const char *pin; /* fingerprint expected from the peer */
    bool server;
    int fd;
    int handshake;  /* gnutls result */
    int pinned;     /* trust_session_check_peer result */
    int version;    /* negotiated protocol */
    char *peer_pem; /* the peer's certificate, when pinned */
    int ca_verify;  /* GnuTLS's own check with the pinned certificate as trust anchor */
    char err[256];
};

static void *tls_run(void *arg)
{
    struct tls_end *e = arg;
    gnutls_session_t s;
    char buf[8];
    int r;

    e->pinned = -1;
    if (gnutls_init(&s, e->server ? GNUTLS_SERVER : GNUTLS_CLIENT) < 0) {
        e->handshake = -1;
        return NULL;
    }
    if (trust_session_setup(s, e->id, e->server, e->err, sizeof(e->err)) < 0) {
        e->handshake = -1;
        gnutls_deinit(s);
        return NULL;
    }
    gnutls_transport_set_int(s, e->fd);
    gnutls_handshake_set_timeout(s, 10000);
    do
        r = gnutls_handshake(s);
    while (r < 0 && !gnutls_error_is_fatal(r));
    e->handshake = r;
    e->version = gnutls_protocol_get_version(s);
    if (r == 0) {
        e->pinned = trust_session_check_peer(s, e->pin, e->err, sizeof(e->err));
        if (e->pinned == 0) {
            unsigned status = 0;

            if (trust_session_peer_pem(s, &e->peer_pem, e->err, sizeof(e->err)) < 0)
                e->pinned = -EIO;
            /* What libcurl does with CURLOPT_CAINFO = the peer's PEM: the
             * credentials carry the pinned certificate as trust anchor. */
            e->ca_verify = gnutls_certificate_verify_peers2(s, &status);
            if (e->ca_verify == 0 && status)
                e->ca_verify = -(int)status;
            /* Prove the channel works: each side sends and receives. */
            if (gnutls_record_send(s, "ping", 4) != 4)
                e->pinned = -EIO;
            do
                r = (int)gnutls_record_recv(s, buf, sizeof(buf));
            while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
            if (r != 4 || memcmp(buf, "ping", 4) != 0)
                e->pinned = -EIO;
        }
        gnutls_bye(s, GNUTLS_SHUT_WR);
    } else {
        snprintf(e->err, sizeof(e->err), "handshake: %s", gnutls_strerror(r));
    }
    close(e->fd); /* the other end sees EOF instead of waiting */
    gnutls_deinit(s);
    return NULL;
}

static void handshake(struct tls_end *server, struct tls_end *client)
{
    int sv[2];
    pthread_t t;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        CHECK(0, "socketpair");
        return;
    }
    server->fd = sv[0];
    client->fd = sv[1];
    pthread_create(&t, NULL, tls_run, server);
    tls_run(client);
    pthread_join(t, NULL);
}

static void test_mutual_tls(void)
{
    char da[512], db[512], dc[512], err[256], fp[TRUST_FP_HEX_LEN + 1];
    struct trust_identity *a = NULL, *b = NULL, *c = NULL;

    snprintf(da, sizeof(da), "%s/mtls-a", tmp_root);
    snprintf(db, sizeof(db), "%s/mtls-b", tmp_root);
    snprintf(dc, sizeof(dc), "%s/mtls-c", tmp_root);
    if (trust_identity_load_or_create(da, "a", &a, err, sizeof(err)) < 0 ||
        trust_identity_load_or_create(db, "b", &b, err, sizeof(err)) < 0 ||
        trust_identity_load_or_create(dc, "c", &c, err, sizeof(err)) < 0) {
        CHECK(0, "identities for TLS: %s", err);
        goto out;
    }

    {
        struct tls_end srv = {.id = b, .pin = a->fingerprint, .server = true};
        struct tls_end cli = {.id = a, .pin = b->fingerprint, .server = false};

        handshake(&srv, &cli);
        CHECK(srv.handshake == 0 && cli.handshake == 0, "mutual TLS handshake (%s / %s)", srv.err,
              cli.err);
        CHECK(cli.version == GNUTLS_TLS1_3, "TLS 1.3 negotiated");
        CHECK(cli.peer_pem &&
                  trust_fingerprint_of_pem(cli.peer_pem, strlen(cli.peer_pem), fp, err,
                                           sizeof(err)) == 0 &&
                  strcmp(fp, b->fingerprint) == 0,
              "peer PEM from the session has the peer's fingerprint");
        CHECK(cli.ca_verify != 0, "without a trust anchor GnuTLS itself does not accept B");
        free(srv.peer_pem);
        free(cli.peer_pem);
        CHECK(srv.pinned == 0, "server sees the client's pinned certificate (%s)", srv.err);
        CHECK(cli.pinned == 0, "client sees the server's pinned certificate (%s)", cli.err);
    }
    {
        /* C poses as A: B's pin refuses it. */
        struct tls_end srv = {.id = b, .pin = a->fingerprint, .server = true};
        struct tls_end cli = {.id = c, .pin = b->fingerprint, .server = false};

        handshake(&srv, &cli);
        CHECK(srv.pinned == -EPERM && strstr(srv.err, c->fingerprint),
              "server refuses an untrusted client: %s", srv.err);
        CHECK(cli.pinned != 0, "client's session does not carry data after the refusal");
        free(srv.peer_pem);
        free(cli.peer_pem);
    }
    {
        /* B's certificate as A's trust anchor (as libcurl's CAINFO would
         * set it): GnuTLS's own verification accepts the self-signed B. */
        struct trust_identity a2 = *a;
        struct tls_end srv = {.id = b, .pin = a->fingerprint, .server = true};
        struct tls_end cli = {.id = &a2, .pin = b->fingerprint, .server = false};
        char *key = NULL;
        size_t keylen = 0;
        gnutls_datum_t cp = {(unsigned char *)a->cert_pem, (unsigned)strlen(a->cert_pem)};
        gnutls_datum_t k, t = {(unsigned char *)b->cert_pem, (unsigned)strlen(b->cert_pem)};

        CHECK(trust_identity_key_pem(a, &key, &keylen, err, sizeof(err)) == 0 && key &&
                  strstr(key, "PRIVATE KEY"),
              "key PEM read back (%s)", key ? "ok" : err);
        k.data = (unsigned char *)key;
        k.size = (unsigned)keylen;
        if (key && gnutls_certificate_allocate_credentials(&a2.creds) == 0) {
            if (gnutls_certificate_set_x509_key_mem2(a2.creds, &cp, &k, GNUTLS_X509_FMT_PEM, NULL,
                                                     0) >= 0 &&
                gnutls_certificate_set_x509_trust_mem(a2.creds, &t, GNUTLS_X509_FMT_PEM) == 1) {
                handshake(&srv, &cli);
                CHECK(cli.pinned == 0 && cli.ca_verify == 0,
                      "pinned self-signed certificate verifies as its own trust anchor (%d)",
                      cli.ca_verify);
                free(srv.peer_pem);
                free(cli.peer_pem);
            } else {
                CHECK(0, "credentials with a trust anchor");
            }
            gnutls_certificate_free_credentials(a2.creds);
        }
        if (key)
            explicit_bzero(key, keylen);
        free(key);
    }
    {
        /* A client with no certificate at all: the server requires one. */
        struct trust_identity anon = {0};
        struct tls_end srv = {.id = b, .pin = a->fingerprint, .server = true};
        struct tls_end cli = {.id = &anon, .pin = b->fingerprint, .server = false};

        if (gnutls_certificate_allocate_credentials(&anon.creds) == 0) {
            handshake(&srv, &cli);
            CHECK(srv.handshake < 0 && srv.pinned != 0,
                  "server refuses a client without a certificate: %s", srv.err);
            free(srv.peer_pem);
            free(cli.peer_pem);
            gnutls_certificate_free_credentials(anon.creds);
        }
    }
    {
        /* A expects B, but C answers. */
        struct tls_end srv = {.id = c, .pin = a->fingerprint, .server = true};
        struct tls_end cli = {.id = a, .pin = b->fingerprint, .server = false};

        handshake(&srv, &cli);
        CHECK(cli.pinned == -EPERM, "client refuses an untrusted server: %s", cli.err);
        free(srv.peer_pem);
        free(cli.peer_pem);
    }
out:
    trust_identity_free(a);
    trust_identity_free(b);
    trust_identity_free(c);
}

/* Public-key pins (libcurl's CURLOPT_PINNEDPUBLICKEY) and whole-file
 * writes, as the peer client uses them. */
static void test_pins(void)
{
    char dir[512], err[256], pin[TRUST_PIN_MAX], pin2[TRUST_PIN_MAX], pin3[TRUST_PIN_MAX];
    struct trust_identity *a = NULL, *b = NULL;
    char fp_old[TRUST_FP_HEX_LEN + 1];

    snprintf(dir, sizeof(dir), "%s/pins-a", tmp_root);
    CHECK(trust_identity_load_or_create(dir, "pins-a", &a, err, sizeof(err)) == 0, "identity a");
    snprintf(dir, sizeof(dir), "%s/pins-b", tmp_root);
    CHECK(trust_identity_load_or_create(dir, "pins-b", &b, err, sizeof(err)) == 0, "identity b");
    if (!a || !b)
        goto out;
    CHECK(trust_pin_of_pem(a->cert_pem, strlen(a->cert_pem), pin, sizeof(pin), err, sizeof(err)) ==
              0,
          "pin of a: %s", err);
    CHECK(strncmp(pin, "sha256//", 8) == 0 && strlen(pin) == 8 + 44 && pin[8 + 43] == '=',
          "pin is sha256// and 44 base64 characters: %s", pin);
    CHECK(strcspn(pin + 8, "-_") == 44, "standard base64 alphabet, not base64url");
    CHECK(trust_pin_of_pem(b->cert_pem, strlen(b->cert_pem), pin2, sizeof(pin2), err,
                           sizeof(err)) == 0 &&
              strcmp(pin, pin2) != 0,
          "another key, another pin");
    CHECK(trust_pin_of_pem("not a pem", 9, pin3, sizeof(pin3), err, sizeof(err)) == -EINVAL,
          "garbage refused: %s", err);
    CHECK(trust_pin_of_pem(a->cert_pem, strlen(a->cert_pem), pin3, 20, err, sizeof(err)) == -ENOSPC,
          "small buffer refused");
    /* A new certificate for the same key keeps the pin, not the fingerprint. */
    snprintf(fp_old, sizeof(fp_old), "%s", a->fingerprint);
    unlink(a->cert_path);
    trust_identity_free(a);
    a = NULL;
    snprintf(dir, sizeof(dir), "%s/pins-a", tmp_root);
    CHECK(trust_identity_load_or_create(dir, "pins-a", &a, err, sizeof(err)) == 0, "a again");
    if (!a)
        goto out;
    CHECK(trust_pin_of_pem(a->cert_pem, strlen(a->cert_pem), pin3, sizeof(pin3), err,
                           sizeof(err)) == 0 &&
              strcmp(pin, pin3) == 0 && strcmp(fp_old, a->fingerprint) != 0,
          "same key, new certificate: same pin, new fingerprint");

    snprintf(dir, sizeof(dir), "%s/pins-a", tmp_root);
    CHECK(trust_write_file(dir, path_in(dir, "peer.pem"), "x\n", 2, 0600, err, sizeof(err)) == 0,
          "write_file: %s", err);
    CHECK_EQ(mode_of(path_in(dir, "peer.pem")), 0600, "written 0600");
    CHECK(trust_write_file("/nonexistent", "/nonexistent/x", "x", 1, 0600, err, sizeof(err)) < 0,
          "write_file into a missing directory fails: %s", err);
out:
    trust_identity_free(a);
    trust_identity_free(b);
}

int main(void)
{
    char cmd[600];

    /* A refused peer closes its end: writes then fail with EPIPE, as in
     * godwitd, which ignores SIGPIPE too. */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    test_identity();
    test_tokens();
    test_mutual_tls();
    test_pins();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0)
        printf("note: could not remove %s\n", tmp_root);
    return board_check_done();
}
