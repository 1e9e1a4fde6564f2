/*
 * Trust between hosts: the host identity (key and self-signed certificate
 * in STATE/tls/), fingerprints for pinning, mutual-TLS session setup and
 * single-use join tokens.  See trust.h for the contracts and
 * docs/godwitd.md for the threat model.
 *
 * Files are written whole or not at all (temporary file, fsync, rename,
 * fsync of the directory), so a crash during first start leaves either no
 * key or a complete one.  The key is created 0600 and refused on load when
 * anyone but its owner could read it.
 */
#include "godwitd/trust.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#define TRUST_PEM_MAX         (64 * 1024) /* bytes; a host.key or host.crt is < 2 KiB */
#define TRUST_CERT_YEARS      30
#define TRUST_SERIAL_BYTES    16
#define TRUST_TOKEN_SUM_BYTES 4
/* version, address length, fingerprint, secret, expiry, checksum */
#define TRUST_TOKEN_FIXED (1 + 1 + TRUST_FP_BYTES + TRUST_SECRET_BYTES + 8 + TRUST_TOKEN_SUM_BYTES)

/* --- small helpers ------------------------------------------------------ */

int trust_memcmp_ct(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;

    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff != 0;
}

static void hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* Exactly 2 * len hex digits into len bytes. */
static int hex_decode(const char *in, uint8_t *out, size_t len)
{
    if (strlen(in) != 2 * len)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        int hi = gw_hex_digit(in[2 * i]), lo = gw_hex_digit(in[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

bool trust_fingerprint_valid(const char *fp)
{
    uint8_t raw[TRUST_FP_BYTES];

    return fp && hex_decode(fp, raw, sizeof(raw)) == 0;
}

bool trust_fingerprint_equal(const char *a, const char *b)
{
    uint8_t ra[TRUST_FP_BYTES], rb[TRUST_FP_BYTES];

    if (!a || !b || hex_decode(a, ra, sizeof(ra)) < 0 || hex_decode(b, rb, sizeof(rb)) < 0)
        return false;
    return trust_memcmp_ct(ra, rb, sizeof(ra)) == 0;
}

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;

    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

/* --- files --------------------------------------------------------------- */

/*
 * Read a PEM file of at most TRUST_PEM_MAX bytes into a NUL-terminated
 * buffer.  private_key: refuse unless the file is ours and mode 0600 or
 * stricter.  Returns 0, -ENOENT when missing, or another -errno with err.
 */
static int read_pem(const char *path, bool private_key, char **out, size_t *outlen, char *err,
                    size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    int fd, ret;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return -ENOENT;
        return gw_fail(err, errlen, -errno, "cannot open '%s': %s", path, strerror(errno));
    }
    if (fstat(fd, &st) < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot stat '%s': %s", path, strerror(errno));
        goto out_close;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = gw_fail(err, errlen, -EINVAL, "'%s' is not a regular file", path);
        goto out_close;
    }
    if (private_key && st.st_uid != geteuid()) {
        ret = gw_fail(err, errlen, -EPERM,
                      "'%s' belongs to uid %u, not to this user (uid %u): refusing the host key",
                      path, (unsigned)st.st_uid, (unsigned)geteuid());
        goto out_close;
    }
    if (private_key && (st.st_mode & 077)) {
        ret = gw_fail(err, errlen, -EPERM,
                      "'%s' has mode %04o: the host key must not be readable by group or others "
                      "(chmod 600 it, and consider it leaked)",
                      path, (unsigned)(st.st_mode & 07777));
        goto out_close;
    }
    if (st.st_size > TRUST_PEM_MAX) {
        ret = gw_fail(err, errlen, -EFBIG, "'%s' is too large for a PEM file (%lld bytes)", path,
                      (long long)st.st_size);
        goto out_close;
    }
    buf = malloc(TRUST_PEM_MAX + 1);
    if (!buf) {
        ret = gw_fail(err, errlen, -ENOMEM, "out of memory");
        goto out_close;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, TRUST_PEM_MAX - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = gw_fail(err, errlen, -errno, "cannot read '%s': %s", path, strerror(errno));
            goto out_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == TRUST_PEM_MAX) {
            ret = gw_fail(err, errlen, -EFBIG, "'%s' is too large for a PEM file", path);
            goto out_free;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    close(fd);
    return 0;

out_free:
    free(buf);
out_close:
    close(fd);
    return ret;
}

/* Write data to path atomically with the given mode. */
static int write_atomic(const char *dir, const char *path, const void *data, size_t len,
                        mode_t mode, char *err, size_t errlen)
{
    char *tmp = NULL;
    size_t done = 0;
    int fd, dfd, ret;

    if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return ret;
    }
    if (fchmod(fd, mode) < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot chmod '%s': %s", tmp, strerror(errno));
        goto out_unlink;
    }
    while (done < len) {
        ssize_t n = write(fd, (const char *)data + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = gw_fail(err, errlen, -errno, "cannot write '%s': %s", tmp, strerror(errno));
            goto out_unlink;
        }
        done += (size_t)n;
    }
    if (fsync(fd) < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot fsync '%s': %s", tmp, strerror(errno));
        goto out_unlink;
    }
    if (close(fd) < 0) {
        fd = -1;
        ret = gw_fail(err, errlen, -errno, "cannot close '%s': %s", tmp, strerror(errno));
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot rename '%s' to '%s': %s", tmp, path,
                      strerror(errno));
        goto out_unlink;
    }
    free(tmp);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* the rename itself must survive a crash */
        if (fsync(dfd) < 0)
            ret = gw_fail(err, errlen, -errno, "cannot fsync '%s': %s", dir, strerror(errno));
        else
            ret = 0;
        close(dfd);
        return ret;
    }
    return gw_fail(err, errlen, -errno, "cannot open '%s': %s", dir, strerror(errno));

out_unlink:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return ret;
}

static int make_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return gw_fail(err, errlen, -errno, "cannot create '%s': %s", dir, strerror(errno));
    if (stat(dir, &st) < 0)
        return gw_fail(err, errlen, -errno, "cannot stat '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return gw_fail(err, errlen, -ENOTDIR, "'%s' is not a directory", dir);
    return 0;
}

/* --- key and certificate ------------------------------------------------- */

static int make_key(gnutls_x509_privkey_t *out, char *err, size_t errlen)
{
    gnutls_x509_privkey_t key;
    int r;

    r = gnutls_x509_privkey_init(&key);
    if (r < 0)
        return gw_fail(err, errlen, -ENOMEM, "gnutls: %s", gnutls_strerror(r));
    r = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
    if (r < 0) {
        gnutls_x509_privkey_deinit(key);
        return gw_fail(err, errlen, -EIO, "cannot generate the host key: %s", gnutls_strerror(r));
    }
    *out = key;
    return 0;
}

static int make_cert(gnutls_x509_privkey_t key, const char *host_name, gnutls_x509_crt_t *out,
                     char *err, size_t errlen)
{
    uint8_t serial[TRUST_SERIAL_BYTES], keyid[64];
    size_t keyid_len = sizeof(keyid);
    time_t now = time(NULL);
    gnutls_x509_crt_t crt;
    const char *what;
    int r;

    r = gnutls_x509_crt_init(&crt);
    if (r < 0)
        return gw_fail(err, errlen, -ENOMEM, "gnutls: %s", gnutls_strerror(r));
    what = "random serial";
    r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
    if (r < 0)
        goto out_fail;
    serial[0] &= 0x7f; /* a positive INTEGER (RFC 5280 §4.1.2.2) */
    serial[0] |= 0x01; /* and never a short one */
    what = "certificate fields";
    if ((r = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
        (r = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
        (r = gnutls_x509_crt_set_activation_time(crt, now - 24 * 3600)) < 0 ||
        (r = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)TRUST_CERT_YEARS * 365 * 24 *
                                                                3600)) < 0 ||
        (r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, host_name,
                                           (unsigned)strlen(host_name))) < 0 ||
        (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
        (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
        (r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
        (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
        (r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_CLIENT, 0)) < 0 ||
        (r = gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, keyid, &keyid_len)) < 0 ||
        (r = gnutls_x509_crt_set_subject_key_id(crt, keyid, keyid_len)) < 0)
        goto out_fail;
    what = "self-signature";
    r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
    if (r < 0)
        goto out_fail;
    *out = crt;
    return 0;

out_fail:
    gnutls_x509_crt_deinit(crt);
    return gw_fail(err, errlen, -EIO, "cannot make the host certificate (%s): %s", what,
                   gnutls_strerror(r));
}

static int key_matches_cert(gnutls_x509_privkey_t key, gnutls_x509_crt_t crt)
{
    uint8_t a[64], b[64];
    size_t alen = sizeof(a), blen = sizeof(b);

    if (gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, a, &alen) < 0 ||
        gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, b, &blen) < 0)
        return 0;
    return alen == blen && memcmp(a, b, alen) == 0;
}

static int fingerprint_of_crt(gnutls_x509_crt_t crt, char out[TRUST_FP_HEX_LEN + 1])
{
    uint8_t fp[TRUST_FP_BYTES];
    size_t len = sizeof(fp);

    if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &len) < 0 || len != sizeof(fp))
        return -EIO;
    hex_encode(fp, len, out);
    return 0;
}

void trust_identity_free(struct trust_identity *id)
{
    if (!id)
        return;
    if (id->creds)
        gnutls_certificate_free_credentials(id->creds);
    free(id->key_path);
    free(id->cert_path);
    free(id->cert_pem);
    free(id);
}

/* Load host.key (or make and write it) into *key; *key_pem gets its text. */
static int load_or_make_key(const char *dir, const char *path, gnutls_x509_privkey_t *key,
                            gnutls_datum_t *key_pem, bool *made, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    gnutls_datum_t d;
    int ret, r;

    *made = false;
    ret = read_pem(path, true, &text, &len, err, errlen);
    if (ret == -ENOENT) {
        ret = make_key(key, err, errlen);
        if (ret < 0)
            return ret;
        r = gnutls_x509_privkey_export2(*key, GNUTLS_X509_FMT_PEM, key_pem);
        if (r < 0) {
            gnutls_x509_privkey_deinit(*key);
            return gw_fail(err, errlen, -EIO, "cannot encode the host key: %s", gnutls_strerror(r));
        }
        ret = write_atomic(dir, path, key_pem->data, key_pem->size, 0600, err, errlen);
        if (ret < 0) {
            gnutls_free(key_pem->data);
            gnutls_x509_privkey_deinit(*key);
            return ret;
        }
        *made = true;
        return 0;
    }
    if (ret < 0)
        return ret;
    r = gnutls_x509_privkey_init(key);
    if (r < 0) {
        free(text);
        return gw_fail(err, errlen, -ENOMEM, "gnutls: %s", gnutls_strerror(r));
    }
    d.data = (unsigned char *)text;
    d.size = (unsigned)len;
    r = gnutls_x509_privkey_import(*key, &d, GNUTLS_X509_FMT_PEM);
    if (r < 0) {
        ret = gw_fail(err, errlen, -EINVAL, "'%s' is not a PEM private key: %s", path,
                      gnutls_strerror(r));
        goto out_fail;
    }
    r = gnutls_x509_privkey_export2(*key, GNUTLS_X509_FMT_PEM, key_pem);
    if (r < 0) {
        ret = gw_fail(err, errlen, -EIO, "cannot encode the host key: %s", gnutls_strerror(r));
        goto out_fail;
    }
    explicit_bzero(text, len);
    free(text);
    return 0;

out_fail:
    explicit_bzero(text, len);
    free(text);
    gnutls_x509_privkey_deinit(*key);
    return ret;
}

int trust_identity_load_or_create(const char *tls_dir, const char *host_name,
                                  struct trust_identity **out, char *err, size_t errlen)
{
    struct trust_identity *id;
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t key_pem = {NULL, 0}, cert_pem;
    char *text = NULL;
    size_t len = 0;
    bool key_made;
    int ret, r;

    *out = NULL;
    if (!host_name || !*host_name || strlen(host_name) > 64)
        return gw_fail(err, errlen, -EINVAL, "host name must be 1 to 64 characters");
    ret = make_dir(tls_dir, err, errlen);
    if (ret < 0)
        return ret;
    id = calloc(1, sizeof(*id));
    if (!id)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    id->key_path = path_join(tls_dir, "host.key");
    id->cert_path = path_join(tls_dir, "host.crt");
    if (!id->key_path || !id->cert_path) {
        ret = gw_fail(err, errlen, -ENOMEM, "out of memory");
        goto out_free;
    }

    /* A certificate without its key is an identity lost: say so rather
     * than quietly becoming another host that peers no longer trust. */
    if (access(id->key_path, F_OK) < 0 && errno == ENOENT && access(id->cert_path, F_OK) == 0) {
        ret = gw_fail(err, errlen, -ENOENT,
                      "'%s' exists but its key '%s' is missing: restore the key, or remove the "
                      "certificate to make a new identity (peers must then be added again)",
                      id->cert_path, id->key_path);
        goto out_free;
    }
    ret = load_or_make_key(tls_dir, id->key_path, &key, &key_pem, &key_made, err, errlen);
    if (ret < 0)
        goto out_free;

    ret = key_made ? -ENOENT : read_pem(id->cert_path, false, &text, &len, err, errlen);
    if (ret == -ENOENT) {
        ret = make_cert(key, host_name, &crt, err, errlen);
        if (ret < 0)
            goto out_key;
        r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cert_pem);
        if (r < 0) {
            ret =
                gw_fail(err, errlen, -EIO, "cannot encode the certificate: %s", gnutls_strerror(r));
            goto out_crt;
        }
        ret = write_atomic(tls_dir, id->cert_path, cert_pem.data, cert_pem.size, 0644, err, errlen);
        text = malloc(cert_pem.size + 1);
        if (text) {
            memcpy(text, cert_pem.data, cert_pem.size);
            text[cert_pem.size] = '\0';
            len = cert_pem.size;
        }
        gnutls_free(cert_pem.data);
        if (ret < 0)
            goto out_crt;
        if (!text) {
            ret = gw_fail(err, errlen, -ENOMEM, "out of memory");
            goto out_crt;
        }
    } else if (ret < 0) {
        goto out_key;
    } else {
        gnutls_datum_t d = {(unsigned char *)text, (unsigned)len};

        r = gnutls_x509_crt_init(&crt);
        if (r < 0) {
            ret = gw_fail(err, errlen, -ENOMEM, "gnutls: %s", gnutls_strerror(r));
            goto out_key;
        }
        r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
        if (r < 0) {
            ret = gw_fail(err, errlen, -EINVAL, "'%s' is not a PEM certificate: %s", id->cert_path,
                          gnutls_strerror(r));
            goto out_crt;
        }
    }
    if (!key_matches_cert(key, crt)) {
        ret = gw_fail(err, errlen, -EINVAL,
                      "'%s' does not belong to the key '%s' (public keys differ): restore the "
                      "matching pair, or remove the certificate to make a new one",
                      id->cert_path, id->key_path);
        goto out_crt;
    }
    if (fingerprint_of_crt(crt, id->fingerprint) < 0) {
        ret = gw_fail(err, errlen, -EIO, "cannot compute the fingerprint of '%s'", id->cert_path);
        goto out_crt;
    }

    r = gnutls_certificate_allocate_credentials(&id->creds);
    if (r < 0) {
        ret = gw_fail(err, errlen, -ENOMEM, "gnutls: %s", gnutls_strerror(r));
        goto out_crt;
    }
    {
        gnutls_datum_t c = {(unsigned char *)text, (unsigned)len};

        r = gnutls_certificate_set_x509_key_mem2(id->creds, &c, &key_pem, GNUTLS_X509_FMT_PEM, NULL,
                                                 0);
    }
    if (r < 0) {
        ret = gw_fail(err, errlen, -EINVAL, "cannot use '%s' with '%s': %s", id->cert_path,
                      id->key_path, gnutls_strerror(r));
        goto out_crt;
    }
    id->cert_pem = text;
    text = NULL;
    ret = 0;

out_crt:
    gnutls_x509_crt_deinit(crt);
out_key:
    if (key_pem.data) {
        explicit_bzero(key_pem.data, key_pem.size);
        gnutls_free(key_pem.data);
    }
    gnutls_x509_privkey_deinit(key);
out_free:
    free(text);
    if (ret < 0) {
        trust_identity_free(id);
        return ret;
    }
    *out = id;
    return 0;
}

/* --- sessions and fingerprints ------------------------------------------ */

int trust_session_setup(gnutls_session_t session, const struct trust_identity *id, bool server,
                        char *err, size_t errlen)
{
    int r;

    /* Both ends are godwit: TLS 1.3 only, on top of the system's policy. */
    r = gnutls_set_default_priority_append(session, "-VERS-ALL:+VERS-TLS1.3", NULL, 0);
    if (r >= 0)
        r = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, id->creds);
    if (r < 0)
        return gw_fail(err, errlen, -EIO, "gnutls: %s", gnutls_strerror(r));
    if (server)
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
    return 0;
}

int trust_fingerprint_of_pem(const char *pem, size_t len, char out[TRUST_FP_HEX_LEN + 1], char *err,
                             size_t errlen)
{
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len};
    gnutls_x509_crt_t crt;
    int r, ret = 0;

    if (len > TRUST_PEM_MAX)
        return gw_fail(err, errlen, -EINVAL, "certificate too large");
    r = gnutls_x509_crt_init(&crt);
    if (r < 0)
        return gw_fail(err, errlen, -ENOMEM, "gnutls: %s", gnutls_strerror(r));
    r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    if (r < 0)
        ret = gw_fail(err, errlen, -EINVAL, "not a PEM certificate: %s", gnutls_strerror(r));
    else if (fingerprint_of_crt(crt, out) < 0)
        ret = gw_fail(err, errlen, -EIO, "cannot compute the certificate's fingerprint");
    gnutls_x509_crt_deinit(crt);
    return ret;
}

int trust_fingerprint_of_session(gnutls_session_t session, char out[TRUST_FP_HEX_LEN + 1],
                                 char *err, size_t errlen)
{
    const gnutls_datum_t *certs;
    uint8_t fp[TRUST_FP_BYTES];
    unsigned n = 0;

    if (gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_X509)
        return gw_fail(err, errlen, -EPERM, "peer did not present an X.509 certificate");
    certs = gnutls_certificate_get_peers(session, &n);
    if (!certs || n == 0)
        return gw_fail(err, errlen, -EPERM, "peer presented no certificate");
    /* The first is the peer's own; the pin covers its DER bytes exactly. */
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size, fp) < 0)
        return gw_fail(err, errlen, -EIO, "cannot hash the peer certificate");
    hex_encode(fp, sizeof(fp), out);
    return 0;
}

int trust_session_peer_pem(gnutls_session_t session, char **pem_out, char *err, size_t errlen)
{
    const gnutls_datum_t *certs;
    gnutls_datum_t pem = {NULL, 0};
    gnutls_x509_crt_t crt;
    unsigned n = 0;
    int r, ret = 0;

    *pem_out = NULL;
    if (gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_X509)
        return gw_fail(err, errlen, -EPERM, "peer did not present an X.509 certificate");
    certs = gnutls_certificate_get_peers(session, &n);
    if (!certs || n == 0)
        return gw_fail(err, errlen, -EPERM, "peer presented no certificate");
    r = gnutls_x509_crt_init(&crt);
    if (r < 0)
        return gw_fail(err, errlen, -ENOMEM, "gnutls: %s", gnutls_strerror(r));
    r = gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER);
    if (r >= 0)
        r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem);
    if (r < 0) {
        ret = gw_fail(err, errlen, -EINVAL, "cannot read the peer certificate: %s",
                      gnutls_strerror(r));
    } else {
        *pem_out = malloc(pem.size + 1);
        if (*pem_out) {
            memcpy(*pem_out, pem.data, pem.size);
            (*pem_out)[pem.size] = '\0';
        } else {
            ret = gw_fail(err, errlen, -ENOMEM, "out of memory");
        }
        gnutls_free(pem.data);
    }
    gnutls_x509_crt_deinit(crt);
    return ret;
}

int trust_identity_key_pem(const struct trust_identity *id, char **pem_out, size_t *len, char *err,
                           size_t errlen)
{
    int ret = read_pem(id->key_path, true, pem_out, len, err, errlen);

    if (ret == -ENOENT)
        return gw_fail(err, errlen, -ENOENT, "'%s' has disappeared", id->key_path);
    return ret;
}

int trust_session_check_peer(gnutls_session_t session, const char *want, char *err, size_t errlen)
{
    char got[TRUST_FP_HEX_LEN + 1];
    int ret;

    ret = trust_fingerprint_of_session(session, got, err, errlen);
    if (ret < 0)
        return ret;
    if (!trust_fingerprint_equal(got, want))
        return gw_fail(err, errlen, -EPERM,
                       "peer certificate %s is not the pinned one (%s): refusing the peer", got,
                       want ? want : "none");
    return 0;
}

/* --- secrets -------------------------------------------------------------- */

int trust_secret_hash(const uint8_t *secret, size_t len, char out[TRUST_FP_HEX_LEN + 1])
{
    uint8_t h[TRUST_FP_BYTES];

    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, secret, len, h) < 0)
        return -EIO;
    hex_encode(h, sizeof(h), out);
    return 0;
}

int trust_secret_check(const uint8_t *secret, size_t len, const char *stored_hash)
{
    uint8_t h[TRUST_FP_BYTES], want[TRUST_FP_BYTES];

    if (!stored_hash || hex_decode(stored_hash, want, sizeof(want)) < 0)
        return -EINVAL;
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, secret, len, h) < 0)
        return -EIO;
    return trust_memcmp_ct(h, want, sizeof(h)) ? -EPERM : 0;
}

/* --- base64url ------------------------------------------------------------ */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int trust_base64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
    size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0), o = 0;

    if (need + 1 > outlen)
        return -ENOSPC;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        size_t rest = len - i;

        if (rest > 1)
            v |= (uint32_t)in[i + 1] << 8;
        if (rest > 2)
            v |= in[i + 2];
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        if (rest > 1)
            out[o++] = b64url[v >> 6 & 63];
        if (rest > 2)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
    return (int)o;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int trust_base64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
{
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;

    if (len % 4 == 1)
        return -EINVAL; /* no whole byte in a lone character */
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value(in[i]);

        if (v < 0)
            return -EINVAL;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == outlen)
                return -ENOSPC;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -EINVAL; /* unused trailing bits must be zero: one text per token */
    return (int)o;
}

/* --- join tokens ---------------------------------------------------------- */

int trust_address_check(const char *address, char *err, size_t errlen)
{
    size_t len = address ? strlen(address) : 0;
    const char *colon, *host_end;
    unsigned long port = 0;

    if (len == 0 || len > TRUST_ADDRESS_MAX)
        return gw_fail(err, errlen, -EINVAL, "address must be 1 to %d characters of host:port",
                       TRUST_ADDRESS_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)address[i] <= 0x20 || (unsigned char)address[i] >= 0x7f)
            return gw_fail(err, errlen, -EINVAL,
                           "address has a non-printable or space character at offset %zu", i);
    colon = strrchr(address, ':');
    if (!colon || colon == address)
        return gw_fail(err, errlen, -EINVAL, "address '%s' is not host:port", address);
    host_end = colon;
    if (!colon[1] || strlen(colon + 1) > 5)
        return gw_fail(err, errlen, -EINVAL, "address '%s' has no valid port", address);
    for (const char *p = colon + 1; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return gw_fail(err, errlen, -EINVAL, "address '%s' has no valid port", address);
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return gw_fail(err, errlen, -EINVAL, "address '%s': port must be 1 to 65535", address);
    if (address[0] == '[') {
        if (host_end[-1] != ']' || host_end - address < 3)
            return gw_fail(err, errlen, -EINVAL, "address '%s': bad [IPv6] literal", address);
        for (const char *p = address + 1; p < host_end - 1; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return gw_fail(err, errlen, -EINVAL, "address '%s': bad [IPv6] literal", address);
        return 0;
    }
    for (const char *p = address; p < host_end; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            return gw_fail(err, errlen, -EINVAL,
                           "address '%s': host may hold only letters, digits, '.', '-' and '_' "
                           "(IPv6 goes in brackets)",
                           address);
    return 0;
}

int trust_token_make(const char *address, const char *fingerprint,
                     uint8_t secret_out[TRUST_SECRET_BYTES], int64_t expiry, char *token_out,
                     size_t token_len, char *err, size_t errlen)
{
    uint8_t buf[TRUST_TOKEN_FIXED + TRUST_ADDRESS_MAX], sum[TRUST_FP_BYTES];
    size_t alen, o = 0;
    int ret;

    ret = trust_address_check(address, err, errlen);
    if (ret < 0)
        return ret;
    if (expiry <= 0)
        return gw_fail(err, errlen, -EINVAL, "token expiry must be a positive unix time");
    alen = strlen(address);
    buf[o++] = TRUST_TOKEN_VERSION;
    buf[o++] = (uint8_t)alen;
    memcpy(buf + o, address, alen);
    o += alen;
    if (hex_decode(fingerprint ? fingerprint : "", buf + o, TRUST_FP_BYTES) < 0)
        return gw_fail(err, errlen, -EINVAL, "fingerprint must be %d hex digits", TRUST_FP_HEX_LEN);
    o += TRUST_FP_BYTES;
    if (gnutls_rnd(GNUTLS_RND_KEY, secret_out, TRUST_SECRET_BYTES) < 0)
        return gw_fail(err, errlen, -EIO, "cannot draw a random secret");
    memcpy(buf + o, secret_out, TRUST_SECRET_BYTES);
    o += TRUST_SECRET_BYTES;
    gw_put_le(buf + o, (uint64_t)expiry, 8);
    o += 8;
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, o, sum) < 0)
        return gw_fail(err, errlen, -EIO, "cannot checksum the token");
    memcpy(buf + o, sum, TRUST_TOKEN_SUM_BYTES);
    o += TRUST_TOKEN_SUM_BYTES;
    ret = trust_base64url_encode(buf, o, token_out, token_len);
    explicit_bzero(buf, sizeof(buf));
    if (ret < 0)
        return gw_fail(err, errlen, -ENOSPC, "token buffer too small");
    return 0;
}

int trust_token_parse(const char *text, struct trust_token *out, char *err, size_t errlen)
{
    uint8_t buf[TRUST_TOKEN_FIXED + TRUST_ADDRESS_MAX], sum[TRUST_FP_BYTES];
    size_t len, n, alen, o;
    int ret;

    memset(out, 0, sizeof(*out));
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    len = strlen(text);
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
                   text[len - 1] == '\r'))
        len--;
    if (len == 0)
        return gw_fail(err, errlen, -EINVAL, "empty join token");
    for (size_t i = 0; i < len; i++)
        if (b64url_value(text[i]) < 0)
            return gw_fail(err, errlen, -EINVAL,
                           "not a join token: unexpected character at position %zu (a token is "
                           "letters, digits, '-' and '_')",
                           i + 1);
    ret = trust_base64url_decode(text, len, buf, sizeof(buf));
    if (ret == -ENOSPC)
        return gw_fail(err, errlen, -EINVAL, "not a join token: too long");
    if (ret < 0)
        return gw_fail(err, errlen, -EINVAL, "join token is truncated or mistyped");
    n = (size_t)ret;
    if (n < 2 + TRUST_TOKEN_SUM_BYTES)
        return gw_fail(err, errlen, -EINVAL, "join token is truncated");
    /* Every version ends in the same checksum, so a damaged token is told
     * apart from one of another version. */
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, buf, n - TRUST_TOKEN_SUM_BYTES, sum) < 0)
        return gw_fail(err, errlen, -EIO, "cannot checksum the token");
    if (buf[0] == TRUST_TOKEN_VERSION && n < TRUST_TOKEN_FIXED + (size_t)buf[1] &&
        trust_memcmp_ct(sum, buf + n - TRUST_TOKEN_SUM_BYTES, TRUST_TOKEN_SUM_BYTES))
        return gw_fail(err, errlen, -EINVAL, "join token is truncated (%zu of %zu bytes)", n,
                       TRUST_TOKEN_FIXED + (size_t)buf[1]);
    if (trust_memcmp_ct(sum, buf + n - TRUST_TOKEN_SUM_BYTES, TRUST_TOKEN_SUM_BYTES))
        return gw_fail(err, errlen, -EINVAL,
                       "join token is damaged (checksum mismatch): copy it again whole");
    if (buf[0] != TRUST_TOKEN_VERSION)
        return gw_fail(err, errlen, -EPROTONOSUPPORT,
                       "join token version %u is not supported (this godwit reads version %d)",
                       buf[0], TRUST_TOKEN_VERSION);
    alen = buf[1];
    if (alen == 0 || n != TRUST_TOKEN_FIXED + alen)
        return gw_fail(err, errlen, -EINVAL, "join token has a bad length (%zu bytes)", n);
    o = 2;
    memcpy(out->address, buf + o, alen);
    out->address[alen] = '\0';
    o += alen;
    if (memchr(out->address, '\0', alen) || trust_address_check(out->address, NULL, 0) < 0) {
        ret = gw_fail(err, errlen, -EINVAL, "join token holds an invalid address");
        memset(out, 0, sizeof(*out));
        return ret;
    }
    hex_encode(buf + o, TRUST_FP_BYTES, out->fingerprint);
    o += TRUST_FP_BYTES;
    memcpy(out->secret, buf + o, TRUST_SECRET_BYTES);
    o += TRUST_SECRET_BYTES;
    out->expiry = (int64_t)gw_get_le(buf + o, 8);
    out->version = buf[0];
    explicit_bzero(buf, sizeof(buf));
    if (out->expiry <= 0) {
        memset(out, 0, sizeof(*out));
        return gw_fail(err, errlen, -EINVAL, "join token has an invalid expiry");
    }
    return 0;
}

bool trust_token_expired(const struct trust_token *tok, int64_t now)
{
    return tok->expiry <= now;
}

/* --- pins and files ------------------------------------------------------- */

int trust_write_file(const char *dir, const char *path, const void *data, size_t len, mode_t mode,
                     char *err, size_t errlen)
{
    return write_atomic(dir, path, data, len, mode, err, errlen);
}

int trust_pin_of_pem(const char *pem, size_t len, char *out, size_t outlen, char *err,
                     size_t errlen)
{
    gnutls_datum_t d = {(unsigned char *)pem, (unsigned)len}, spki = {NULL, 0};
    gnutls_x509_crt_t crt = NULL;
    gnutls_pubkey_t pub = NULL;
    uint8_t h[TRUST_FP_BYTES];
    char b64[64];
    int r, ret = 0, n;

    if (len > TRUST_PEM_MAX)
        return gw_fail(err, errlen, -EINVAL, "certificate too large");
    if ((r = gnutls_x509_crt_init(&crt)) < 0 || (r = gnutls_pubkey_init(&pub)) < 0) {
        ret = gw_fail(err, errlen, -ENOMEM, "gnutls: %s", gnutls_strerror(r));
        goto out;
    }
    if ((r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM)) < 0 ||
        (r = gnutls_pubkey_import_x509(pub, crt, 0)) < 0 ||
        (r = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki)) < 0) {
        ret = gw_fail(err, errlen, -EINVAL, "cannot read the certificate's public key: %s",
                      gnutls_strerror(r));
        goto out;
    }
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, h) < 0) {
        ret = gw_fail(err, errlen, -EIO, "cannot hash the public key");
        goto out;
    }
    /* Standard base64 with padding, from the url alphabet. */
    n = trust_base64url_encode(h, sizeof(h), b64, sizeof(b64));
    if (n < 0) {
        ret = gw_fail(err, errlen, -ENOSPC, "pin buffer too small");
        goto out;
    }
    for (int i = 0; i < n; i++)
        b64[i] = b64[i] == '-' ? '+' : b64[i] == '_' ? '/' : b64[i];
    while (n % 4)
        b64[n++] = '=';
    b64[n] = '\0';
    if (snprintf(out, outlen, "sha256//%s", b64) >= (int)outlen)
        ret = gw_fail(err, errlen, -ENOSPC, "pin buffer too small");
out:
    gnutls_free(spki.data);
    if (pub)
        gnutls_pubkey_deinit(pub);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    return ret;
}
