/*
 * TLS-PSK sessions for live migration (mig_tls.h), on GnuTLS.
 */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migration/mig_tls.h"

#define MIG_TLS_MAX_KEYS 64
#define MIG_TLS_MAX_ID   128
#define MIG_TLS_MAX_KEY  256 /* bytes of key */
#define MIG_TLS_FILE_MAX 65536
/* TLS 1.3 and 1.2, PSK with (EC)DHE first, AES-GCM first (AES-NI). */
#define MIG_TLS_PRIORITY                                                                           \
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-PSK:+DHE-PSK:+PSK:"                 \
    "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305"

struct mig_tls_key {
    char id[MIG_TLS_MAX_ID];
    uint8_t key[MIG_TLS_MAX_KEY];
    size_t len;
};

struct mig_tls_creds {
    bool server;
    gnutls_psk_client_credentials_t client;
    gnutls_psk_server_credentials_t srv;
    struct mig_tls_key keys[MIG_TLS_MAX_KEYS];
    unsigned nkeys;
};

struct mig_tls {
    gnutls_session_t session;
    int fd;
    char desc[96];
};

/* One "identity:hexkey" line into k; false if malformed. */
static bool mig_tls_parse_line(const char *line, size_t len, struct mig_tls_key *k)
{
    const char *colon = memchr(line, ':', len), *hex;
    size_t idlen, hexlen;

    if (!colon)
        return false;
    idlen = (size_t)(colon - line);
    hex = colon + 1;
    hexlen = len - idlen - 1;
    if (idlen == 0 || idlen >= sizeof(k->id) || hexlen == 0 || hexlen % 2 ||
        hexlen / 2 > sizeof(k->key))
        return false;
    memcpy(k->id, line, idlen);
    k->id[idlen] = '\0';
    for (size_t i = 0; i < hexlen; i += 2) {
        int hi = gw_hex_digit(hex[i]), lo = gw_hex_digit(hex[i + 1]);

        if (hi < 0 || lo < 0)
            return false;
        k->key[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    k->len = hexlen / 2;
    return true;
}

/* Read and check DIR/keys.psk into c->keys. */
static int mig_tls_read_keys(struct mig_tls_creds *c, const char *dir, char *err, size_t errlen)
{
    char path[PATH_MAX], *buf = NULL;
    struct stat st;
    ssize_t n;
    int fd, ret = -EINVAL;
    unsigned lineno = 0;

    if (snprintf(path, sizeof(path), "%s/keys.psk", dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "tls-creds-psk: dir= is too long");
        return -ENAMETOOLONG;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ret = -errno;
        snprintf(err, errlen, "tls-creds-psk: cannot open %s: %s", path, strerror(errno));
        return ret;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "tls-creds-psk: %s is not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen,
                 "tls-creds-psk: %s is readable by others (mode %03o): chmod 600 it, it holds "
                 "secret keys",
                 path, (unsigned)(st.st_mode & 0777));
        ret = -EPERM;
        goto out;
    }
    if (st.st_size > MIG_TLS_FILE_MAX) {
        snprintf(err, errlen, "tls-creds-psk: %s is too large", path);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        ret = -ENOMEM;
        goto out;
    }
    n = read(fd, buf, (size_t)st.st_size);
    if (n != st.st_size) {
        snprintf(err, errlen, "tls-creds-psk: cannot read %s", path);
        ret = -EIO;
        goto out;
    }
    buf[n] = '\0';
    for (char *line = buf, *next; line < buf + n; line = next) {
        size_t len;

        next = strchr(line, '\n');
        next = next ? next + 1 : buf + n;
        len = (size_t)(next - line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        lineno++;
        if (len == 0)
            continue;
        if (c->nkeys == MIG_TLS_MAX_KEYS) {
            snprintf(err, errlen, "tls-creds-psk: %s has more than %d keys", path,
                     MIG_TLS_MAX_KEYS);
            goto out;
        }
        if (!mig_tls_parse_line(line, len, &c->keys[c->nkeys])) {
            snprintf(err, errlen,
                     "tls-creds-psk: %s line %u: expected identity:hexkey (an even number of "
                     "hex digits)",
                     path, lineno);
            goto out;
        }
        c->nkeys++;
    }
    if (c->nkeys == 0) {
        snprintf(err, errlen, "tls-creds-psk: %s holds no key", path);
        goto out;
    }
    ret = 0;
out:
    if (buf)
        explicit_bzero(buf, (size_t)st.st_size);
    free(buf);
    close(fd);
    return ret;
}

/* Server: the key of the identity the client named. */
static int mig_tls_server_key(gnutls_session_t session, const char *username, gnutls_datum_t *key)
{
    const struct mig_tls_creds *c = gnutls_session_get_ptr(session);

    for (unsigned i = 0; i < c->nkeys; i++) {
        if (strcmp(c->keys[i].id, username))
            continue;
        key->data = gnutls_malloc(c->keys[i].len);
        if (!key->data)
            return -1;
        memcpy(key->data, c->keys[i].key, c->keys[i].len);
        key->size = (unsigned)c->keys[i].len;
        return 0;
    }
    return -1; /* unknown identity: the handshake fails */
}

struct mig_tls_creds *mig_tls_creds_load(const char *dir, bool server, char *err, size_t errlen)
{
    struct mig_tls_creds *c = calloc(1, sizeof(*c));
    const struct mig_tls_key *mine = NULL;
    int r;

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->server = server;
    if (mig_tls_read_keys(c, dir, err, errlen) < 0)
        goto fail;
    if (server) {
        r = gnutls_psk_allocate_server_credentials(&c->srv);
        if (r == 0) {
            gnutls_psk_set_server_credentials_function(c->srv, mig_tls_server_key);
            r = gnutls_psk_set_server_known_dh_params(c->srv, GNUTLS_SEC_PARAM_MEDIUM);
        }
    } else {
        for (unsigned i = 0; i < c->nkeys && !mine; i++)
            if (!strcmp(c->keys[i].id, MIG_TLS_IDENTITY))
                mine = &c->keys[i];
        if (!mine) {
            snprintf(err, errlen, "tls-creds-psk: %s/keys.psk has no key for identity '%s'", dir,
                     MIG_TLS_IDENTITY);
            goto fail;
        }
        r = gnutls_psk_allocate_client_credentials(&c->client);
        if (r == 0) {
            gnutls_datum_t k = {.data = (unsigned char *)mine->key, .size = (unsigned)mine->len};

            r = gnutls_psk_set_client_credentials(c->client, MIG_TLS_IDENTITY, &k,
                                                  GNUTLS_PSK_KEY_RAW);
        }
    }
    if (r < 0) {
        snprintf(err, errlen, "tls-creds-psk: %s", gnutls_strerror(r));
        goto fail;
    }
    return c;
fail:
    mig_tls_creds_free(c);
    return NULL;
}

void mig_tls_creds_free(struct mig_tls_creds *c)
{
    if (!c)
        return;
    if (c->client)
        gnutls_psk_free_client_credentials(c->client);
    if (c->srv)
        gnutls_psk_free_server_credentials(c->srv);
    explicit_bzero(c->keys, sizeof(c->keys));
    free(c);
}

struct mig_tls *mig_tls_open(const struct mig_tls_creds *c, int fd, int timeout_ms, char *err,
                             size_t errlen)
{
    struct mig_tls *t = calloc(1, sizeof(*t));
    const char *where = NULL;
    int r;

    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->fd = fd;
    r = gnutls_init(&t->session, c->server ? GNUTLS_SERVER : GNUTLS_CLIENT);
    if (r < 0) {
        snprintf(err, errlen, "TLS: %s", gnutls_strerror(r));
        free(t);
        return NULL;
    }
    gnutls_session_set_ptr(t->session, (void *)c);
    r = gnutls_priority_set_direct(t->session, MIG_TLS_PRIORITY, &where);
    if (r == 0)
        r = gnutls_credentials_set(t->session, GNUTLS_CRD_PSK,
                                   c->server ? (void *)c->srv : (void *)c->client);
    if (r < 0) {
        snprintf(err, errlen, "TLS setup: %s", gnutls_strerror(r));
        goto fail;
    }
    gnutls_transport_set_int(t->session, fd);
    gnutls_handshake_set_timeout(t->session, (unsigned)timeout_ms);
    do
        r = gnutls_handshake(t->session);
    while (r < 0 && !gnutls_error_is_fatal(r));
    if (r < 0) {
        snprintf(err, errlen, "TLS handshake failed: %s%s", gnutls_strerror(r),
                 r == GNUTLS_E_TIMEDOUT ? "" : " (does the peer speak TLS with the same key?)");
        goto fail;
    }
    snprintf(t->desc, sizeof(t->desc), "%s %s %s",
             gnutls_protocol_get_name(gnutls_protocol_get_version(t->session)),
             gnutls_kx_get_name(gnutls_kx_get(t->session)) ?: "(TLS1.3 PSK)",
             gnutls_cipher_get_name(gnutls_cipher_get(t->session)));
    return t;
fail:
    gnutls_deinit(t->session);
    free(t);
    return NULL;
}

void mig_tls_free(struct mig_tls *t)
{
    if (!t)
        return;
    gnutls_deinit(t->session);
    free(t);
}

const char *mig_tls_describe(const struct mig_tls *t)
{
    return t->desc;
}

static int mig_tls_errno(ssize_t r)
{
    switch (r) {
    case GNUTLS_E_AGAIN: return -EAGAIN;
    case GNUTLS_E_INTERRUPTED: return -EINTR;
    case GNUTLS_E_TIMEDOUT: return -ETIMEDOUT;
    case GNUTLS_E_PUSH_ERROR: return -EPIPE;
    default: return -EPROTO; /* a record that does not authenticate, an alert, ... */
    }
}

/* Send n bytes, as few records as TLS allows (16 KiB each), corked into
 * large writes. */
static ssize_t mig_tls_write_cb(void *opaque, const void *p, size_t n)
{
    int r = mig_tls_send(opaque, p, n);

    return r < 0 ? r : (ssize_t)n;
}

int mig_tls_send(struct mig_tls *t, const void *p, size_t n)
{
    const uint8_t *src = p;
    bool cork = n > 16384;
    ssize_t r;

    if (cork)
        gnutls_record_cork(t->session);
    while (n > 0) {
        r = gnutls_record_send(t->session, src, n);
        if (r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r < 0)
            return mig_tls_errno(r);
        src += r;
        n -= (size_t)r;
    }
    /* not GNUTLS_RECORD_WAIT: that retries EAGAIN for ever, and a socket's
     * send timeout (SO_SNDTIMEO: a silent link) must end the write */
    while (cork) {
        r = gnutls_record_uncork(t->session, 0);
        if (r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r < 0)
            return mig_tls_errno(r);
        cork = gnutls_record_check_corked(t->session) > 0;
    }
    return 0;
}

ssize_t mig_tls_recv(struct mig_tls *t, void *p, size_t n, int timeout_ms)
{
    ssize_t r;

    gnutls_record_set_timeout(t->session, timeout_ms < 0 ? 0 : (unsigned)timeout_ms);
    do
        r = gnutls_record_recv(t->session, p, n);
    while (r == GNUTLS_E_INTERRUPTED);
    if (r == GNUTLS_E_PREMATURE_TERMINATION)
        return 0; /* closed without close_notify: the stream's end checks say the rest */
    if (r == GNUTLS_E_TIMEDOUT)
        return -ETIMEDOUT;
    return r < 0 ? mig_tls_errno(r) : r;
}

static ssize_t mig_tls_read_cb(void *opaque, void *p, size_t n)
{
    ssize_t r = mig_tls_recv(opaque, p, n, -1);

    return r == -ETIMEDOUT ? -EAGAIN : r;
}

bool mig_tls_pending(struct mig_tls *t)
{
    return gnutls_record_check_pending(t->session) > 0;
}

static int mig_tls_pending_cb(void *opaque, int timeout_ms)
{
    struct mig_tls *t = opaque;
    struct pollfd pfd = {.fd = t->fd, .events = POLLIN};
    int r;

    if (gnutls_record_check_pending(t->session) > 0)
        return 1;
    do
        r = poll(&pfd, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return r > 0;
}

const struct state_io mig_tls_io = {
    .read = mig_tls_read_cb,
    .write = mig_tls_write_cb,
    .pending = mig_tls_pending_cb,
};
