/*
 * URIs, sockets and control messages of the migration channel (mig_proto.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <xxhash.h>

#include "common/sock.h"
#include "migration/mig_proto.h"
#include "migration/mig_tls.h"

#define MIG_SOCK_BUF       (4 << 20) /* SO_SNDBUF / SO_RCVBUF of the channel, bytes */
#define MIG_LISTEN_BACKLOG 4

int mig_uri_parse(const char *uri, bool allow_defer, struct mig_uri *u, char *err, size_t errlen)
{
    struct sock_addr a;
    const char *rest;

    memset(u, 0, sizeof(*u));
    if (allow_defer && !strcmp(uri, "defer")) {
        u->kind = MIG_URI_DEFER;
        return 0;
    }
    if (!strncmp(uri, "file:", 5) || !strncmp(uri, "unix:", 5)) {
        u->kind = uri[0] == 'f' ? MIG_URI_FILE : MIG_URI_UNIX;
        rest = uri + 5;
        if (!*rest || strlen(rest) >= sizeof(u->path) ||
            (u->kind == MIG_URI_UNIX && strlen(rest) >= SOCK_UNIX_PATH_MAX)) {
            snprintf(err, errlen, "'%s': empty or too long path", uri);
            return -EINVAL;
        }
        snprintf(u->path, sizeof(u->path), "%s", rest);
        return 0;
    }
    if (!strncmp(uri, "tcp:", 4)) {
        /* Port 0 parses (a listener's "any port", as in QEMU); connecting
         * to it is refused by sock_connect. */
        if (sock_parse_hostport(uri + 4, SOCK_F_PORT_ANY, &a, NULL, 0) < 0 ||
            strlen(a.host) >= sizeof(u->host)) {
            snprintf(err, errlen, "'%s': expected tcp:HOST:PORT with a port in 0..65535", uri);
            return -EINVAL;
        }
        u->kind = MIG_URI_TCP;
        memcpy(u->host, a.host, sizeof(u->host));
        snprintf(u->port, sizeof(u->port), "%u", (unsigned)a.port);
        return 0;
    }
    snprintf(err, errlen, "unsupported migration URI '%s' (file:PATH, tcp:HOST:PORT, unix:PATH%s)",
             uri, allow_defer ? ", defer" : "");
    return -EINVAL;
}

/* The socket address of a tcp: or unix: URI. */
static int mig_sock_addr(const struct mig_uri *u, struct sock_addr *a, char *err, size_t errlen)
{
    uint16_t port;

    if (u->kind == MIG_URI_UNIX)
        return sock_addr_unix(a, u->path, strlen(u->path), err, errlen);
    if (u->kind != MIG_URI_TCP) {
        snprintf(err, errlen, "not a socket URI");
        return -EINVAL;
    }
    if (sock_parse_port(u->port, strlen(u->port), SOCK_F_PORT_ANY, &port) < 0 ||
        strlen(u->host) >= sizeof(a->host)) {
        snprintf(err, errlen, "tcp:%s:%s: bad host or port", u->host, u->port);
        return -EINVAL;
    }
    memset(a, 0, sizeof(*a));
    a->kind = SOCK_KIND_TCP;
    memcpy(a->host, u->host, strlen(u->host) + 1);
    a->port = port;
    return 0;
}

int mig_connect(const struct mig_uri *u, int timeout_ms, char *err, size_t errlen)
{
    struct sock_addr a;
    int fd = mig_sock_addr(u, &a, err, errlen);

    if (fd < 0)
        return fd;
    fd = sock_connect(&a, timeout_ms, SOCK_F_NODELAY, err, errlen);
    if (fd >= 0)
        sock_set_buffers(fd, MIG_SOCK_BUF);
    return fd;
}

int mig_listen(const struct mig_uri *u, char *err, size_t errlen)
{
    struct sock_addr a;
    int ret = mig_sock_addr(u, &a, err, errlen);

    return ret < 0 ? ret : sock_listen(&a, MIG_LISTEN_BACKLOG, NULL, err, errlen);
}

int mig_accept(int lfd, int timeout_ms, const _Atomic bool *cancel)
{
    int fd = sock_accept(lfd, timeout_ms, cancel, SOCK_F_NODELAY);

    if (fd >= 0)
        sock_set_buffers(fd, MIG_SOCK_BUF);
    return fd;
}

/* The check field: XXH3-64 of magic, type and value as they travel. */
static uint64_t mig_msg_check(const uint8_t *m)
{
    return XXH3_64bits(m, MIG_MSG_CHECKED);
}

/* Types a sender of this magic may send: anything else is refused, so a
 * message that passes the check but means nothing cannot be acted on. */
static bool mig_msg_type_known(uint32_t magic, uint32_t type)
{
    if (magic == MIG_MAGIC_REPLY)
        return type == MIG_MSG_READY || type == MIG_MSG_ERROR || type == MIG_MSG_RUNNING ||
               type == MIG_MSG_ROUND || type == MIG_MSG_RESUME_AT || type == MIG_MSG_PAGE_REQ ||
               type == MIG_MSG_PAGES_DONE;
    if (magic == MIG_MAGIC_COMMIT)
        return type == MIG_MSG_COMMIT || type == MIG_MSG_COMMIT_POSTCOPY;
    if (magic == MIG_MAGIC_PAGE)
        return type == MIG_MSG_MISSING || type == MIG_MSG_PAGE || type == MIG_MSG_PAGE_ZERO ||
               type == MIG_MSG_PAGES_END;
    if (magic == MIG_MAGIC_FRAME)
        return type == MIG_MSG_FRAME || type == MIG_MSG_FRAMES_PAUSED || type == MIG_MSG_FWD_END;
    return false;
}

void mig_msg_encode(uint8_t m[MIG_MSG_LEN], uint32_t magic, uint32_t type, uint64_t value)
{
    gw_put_le(m, magic, 4);
    gw_put_le(m + 4, type, 4);
    gw_put_le(m + 8, value, 8);
    gw_put_le(m + MIG_MSG_CHECKED, mig_msg_check(m), 8);
}

int mig_msg_decode(const uint8_t m[MIG_MSG_LEN], uint32_t magic, uint32_t *type, uint64_t *value)
{
    uint32_t t = (uint32_t)gw_get_le(m + 4, 4);

    if (gw_get_le(m + MIG_MSG_CHECKED, 8) != mig_msg_check(m))
        return -EPROTO; /* corrupted on the way, or not a control message */
    if ((uint32_t)gw_get_le(m, 4) != magic || !mig_msg_type_known(magic, t))
        return -EPROTO;
    *type = t;
    *value = gw_get_le(m + 8, 8);
    return 0;
}

/* Read exactly n bytes from fd within timeout_ms: 0, -ETIMEDOUT, -EPIPE
 * on EOF, or -errno. */
static int mig_fd_read_full(int fd, uint8_t *m, size_t n, int timeout_ms)
{
    size_t off = 0;
    uint64_t deadline = gw_now_ns() + (uint64_t)timeout_ms * 1000000ull;

    while (off < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t now = gw_now_ns();
        int r;
        ssize_t got;

        if (now >= deadline)
            return -ETIMEDOUT;
        r = poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        got = recv(fd, m + off, n - off, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            return -EPIPE;
        off += (size_t)got;
    }
    return 0;
}

/* The same on a channel. */
static int mig_chan_read_full(const struct mig_chan *c, uint8_t *m, size_t n, int timeout_ms)
{
    size_t off = 0;
    uint64_t deadline = gw_now_ns() + (uint64_t)timeout_ms * 1000000ull;

    if (!c->tls)
        return mig_fd_read_full(c->fd, m, n, timeout_ms);
    while (off < n) {
        uint64_t now = gw_now_ns();
        ssize_t got;

        if (now >= deadline)
            return -ETIMEDOUT;
        got = mig_tls_recv(c->tls, m + off, n - off, (int)((deadline - now) / 1000000ull) + 1);
        if (got < 0)
            return got == -EAGAIN ? -ETIMEDOUT : (int)got;
        if (got == 0)
            return -EPIPE;
        off += (size_t)got;
    }
    return 0;
}

/* Send all n bytes on fd (no SIGPIPE): 0 or -errno. */
static int mig_fd_write_full(int fd, const uint8_t *m, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = send(fd, m + off, n - off, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EPIPE;
        off += (size_t)w;
    }
    return 0;
}

int mig_msg_send(int fd, uint32_t magic, uint32_t type, uint64_t value)
{
    uint8_t m[MIG_MSG_LEN];

    mig_msg_encode(m, magic, type, value);
    return mig_fd_write_full(fd, m, sizeof(m));
}

int mig_msg_recv(int fd, uint32_t magic, uint32_t *type, uint64_t *value, int timeout_ms)
{
    uint8_t m[MIG_MSG_LEN];
    int ret = mig_fd_read_full(fd, m, sizeof(m), timeout_ms);

    return ret < 0 ? ret : mig_msg_decode(m, magic, type, value);
}

int mig_chan_send(const struct mig_chan *c, uint32_t magic, uint32_t type, uint64_t value)
{
    uint8_t m[MIG_MSG_LEN];

    if (!c->tls)
        return mig_msg_send(c->fd, magic, type, value);
    mig_msg_encode(m, magic, type, value);
    return mig_tls_send(c->tls, m, sizeof(m));
}

int mig_chan_recv(const struct mig_chan *c, uint32_t magic, uint32_t *type, uint64_t *value,
                  int timeout_ms)
{
    uint8_t m[MIG_MSG_LEN];
    int ret = mig_chan_read_full(c, m, sizeof(m), timeout_ms);

    return ret < 0 ? ret : mig_msg_decode(m, magic, type, value);
}

int mig_chan_write(const struct mig_chan *c, const void *p, size_t n)
{
    return c->tls ? mig_tls_send(c->tls, p, n) : mig_fd_write_full(c->fd, p, n);
}

int mig_chan_wait(const struct mig_chan *c, int timeout_ms)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int r;

    if (c->tls && mig_tls_pending(c->tls))
        return 1;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r > 0;
}

/* ---- forwarded frames ---------------------------------------------------------------- */

size_t mig_frame_encode(uint8_t *out, unsigned port, const uint8_t *frame, size_t len)
{
    uint64_t value = (uint64_t)len | (uint64_t)port << 32;

    mig_msg_encode(out, MIG_MAGIC_FRAME, MIG_MSG_FRAME, value);
    memcpy(out + MIG_MSG_LEN, frame, len);
    gw_put_le(out + MIG_MSG_LEN + len, XXH3_64bits_withSeed(frame, len, value), 8);
    return MIG_MSG_LEN + len + 8;
}

int mig_chan_recv_frame(const struct mig_chan *c, uint32_t *type, uint64_t *value, unsigned *port,
                        uint8_t *buf, size_t *len, int timeout_ms)
{
    uint8_t check[8];
    size_t n;
    int ret = mig_chan_recv(c, MIG_MAGIC_FRAME, type, value, timeout_ms);

    if (ret < 0 || *type != MIG_MSG_FRAME)
        return ret;
    n = (size_t)(*value & 0xffffffffu);
    if (n < MIG_FRAME_MIN || n > MIG_FRAME_MAX || (*value >> 32) >= MIG_FRAME_PORTS)
        return -EPROTO;
    ret = mig_chan_read_full(c, buf, n, timeout_ms);
    if (ret == 0)
        ret = mig_chan_read_full(c, check, sizeof(check), timeout_ms);
    if (ret < 0)
        return ret;
    if (gw_get_le(check, 8) != XXH3_64bits_withSeed(buf, n, *value))
        return -EPROTO;
    *port = (unsigned)(*value >> 32);
    *len = n;
    return 0;
}

size_t mig_page_encode(uint8_t *out, uint64_t page, const uint8_t *data)
{
    mig_msg_encode(out, MIG_MAGIC_PAGE, MIG_MSG_PAGE, page);
    memcpy(out + MIG_MSG_LEN, data, MIG_PAGE_SIZE);
    gw_put_le(out + MIG_MSG_LEN + MIG_PAGE_SIZE, XXH3_64bits_withSeed(data, MIG_PAGE_SIZE, page),
              8);
    return MIG_MSG_LEN + MIG_PAGE_SIZE + 8;
}

int mig_chan_send_missing(const struct mig_chan *c, const uint64_t *bitmap, uint64_t npages)
{
    size_t words = (size_t)((npages + 63) / 64), n = MIG_MSG_LEN + words * 8 + 8;
    uint8_t *m = malloc(n);
    int ret;

    if (!m)
        return -ENOMEM;
    mig_msg_encode(m, MIG_MAGIC_PAGE, MIG_MSG_MISSING, npages);
    for (size_t w = 0; w < words; w++)
        gw_put_le(m + MIG_MSG_LEN + w * 8, bitmap[w], 8);
    gw_put_le(m + MIG_MSG_LEN + words * 8, XXH3_64bits_withSeed(m + MIG_MSG_LEN, words * 8, npages),
              8);
    ret = mig_chan_write(c, m, n);
    free(m);
    return ret;
}

int mig_chan_recv_post(const struct mig_chan *c, uint32_t *magic, uint32_t *type, uint64_t *value,
                       unsigned *port, uint8_t *buf, size_t *len, uint64_t *bitmap,
                       uint64_t maxpages, int timeout_ms)
{
    uint8_t m[MIG_MSG_LEN], check[8];
    int ret = mig_chan_read_full(c, m, sizeof(m), timeout_ms);

    if (ret < 0)
        return ret;
    *magic = (uint32_t)gw_get_le(m, 4);
    if (*magic != MIG_MAGIC_PAGE)
        *magic = MIG_MAGIC_FRAME; /* anything else must pass as a frame message */
    ret = mig_msg_decode(m, *magic, type, value);
    if (ret < 0)
        return ret;
    *len = 0;
    if (*magic == MIG_MAGIC_FRAME && *type == MIG_MSG_FRAME) {
        size_t n = (size_t)(*value & 0xffffffffu);

        if (n < MIG_FRAME_MIN || n > MIG_FRAME_MAX || (*value >> 32) >= MIG_FRAME_PORTS)
            return -EPROTO;
        if ((ret = mig_chan_read_full(c, buf, n, timeout_ms)) < 0 ||
            (ret = mig_chan_read_full(c, check, 8, timeout_ms)) < 0)
            return ret;
        if (gw_get_le(check, 8) != XXH3_64bits_withSeed(buf, n, *value))
            return -EPROTO;
        *port = (unsigned)(*value >> 32);
        *len = n;
    } else if (*magic == MIG_MAGIC_PAGE && *type == MIG_MSG_PAGE) {
        if (*value >= maxpages)
            return -EPROTO;
        if ((ret = mig_chan_read_full(c, buf, MIG_PAGE_SIZE, timeout_ms)) < 0 ||
            (ret = mig_chan_read_full(c, check, 8, timeout_ms)) < 0)
            return ret;
        if (gw_get_le(check, 8) != XXH3_64bits_withSeed(buf, MIG_PAGE_SIZE, *value))
            return -EPROTO;
        *len = MIG_PAGE_SIZE;
    } else if (*magic == MIG_MAGIC_PAGE && *type == MIG_MSG_PAGE_ZERO) {
        if (*value >= maxpages)
            return -EPROTO;
    } else if (*magic == MIG_MAGIC_PAGE && *type == MIG_MSG_MISSING) {
        size_t words = (size_t)((*value + 63) / 64);
        uint8_t *raw;

        if (*value != maxpages || !bitmap)
            return -EPROTO; /* the source's RAM is ours: the same pages */
        raw = malloc(words * 8);
        if (!raw)
            return -ENOMEM;
        ret = mig_chan_read_full(c, raw, words * 8, timeout_ms);
        if (ret == 0)
            ret = mig_chan_read_full(c, check, 8, timeout_ms);
        if (ret == 0 && gw_get_le(check, 8) != XXH3_64bits_withSeed(raw, words * 8, *value))
            ret = -EPROTO;
        for (size_t w = 0; ret == 0 && w < words; w++)
            bitmap[w] = gw_get_le(raw + w * 8, 8);
        if (ret == 0 && (*value % 64) && (bitmap[words - 1] >> (*value % 64)))
            ret = -EPROTO; /* bits past the last page */
        free(raw);
        if (ret < 0)
            return ret;
        *len = words * 8;
    }
    return 0;
}

/* ---- ERROR's reason ---------------------------------------------------------------- */

/* Bytes of the well-formed UTF-8 character at p (n bytes left), 0 if none
 * starts there (a stray continuation, an overlong form, a surrogate, past
 * U+10FFFF, cut short).  RFC 3629 §4. */
static size_t mig_utf8_len(const uint8_t *p, size_t n)
{
    uint8_t b = p[0], lo = 0x80, hi = 0xbf;
    size_t len;

    if (b < 0x80)
        return 1;
    if (b >= 0xc2 && b <= 0xdf)
        len = 2;
    else if (b >= 0xe0 && b <= 0xef)
        len = 3;
    else if (b >= 0xf0 && b <= 0xf4)
        len = 4;
    else
        return 0;
    if (b == 0xe0)
        lo = 0xa0;
    else if (b == 0xed)
        hi = 0x9f;
    else if (b == 0xf0)
        lo = 0x90;
    else if (b == 0xf4)
        hi = 0x8f;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

/* Whether the character of len bytes at p may be printed: no C0 or C1
 * control, no DEL. */
static bool mig_char_printable(const uint8_t *p, size_t len)
{
    if (len == 1)
        return p[0] >= 0x20 && p[0] != 0x7f;
    return !(len == 2 && p[0] == 0xc2 && p[1] < 0xa0); /* U+0080..U+009F */
}

size_t mig_msg_error_encode(uint8_t out[MIG_ERROR_MAX], int errnum, const char *reason)
{
    const uint8_t *r = (const uint8_t *)(reason ? reason : "");
    size_t len = strnlen((const char *)r, MIG_REASON_MAX + 1), cut = 0;
    uint64_t value;

    /* cut a long reason after its last whole character that fits */
    while (cut < len) {
        size_t c = mig_utf8_len(r + cut, len - cut);

        if (!c)
            c = 1; /* not UTF-8: the receiver replaces it */
        if (cut + c > MIG_REASON_MAX)
            break;
        cut += c;
    }
    value = (uint32_t)errnum | (uint64_t)cut << 32;
    mig_msg_encode(out, MIG_MAGIC_REPLY, MIG_MSG_ERROR, value);
    if (!cut)
        return MIG_MSG_LEN;
    memcpy(out + MIG_MSG_LEN, r, cut);
    gw_put_le(out + MIG_MSG_LEN + cut, XXH3_64bits_withSeed(r, cut, value), MIG_REASON_CHECK);
    return MIG_MSG_LEN + cut + MIG_REASON_CHECK;
}

int mig_msg_reason_len(uint64_t value, size_t *len)
{
    uint64_t l = value >> 32;

    if (l > MIG_REASON_MAX)
        return -EPROTO;
    *len = (size_t)l;
    return 0;
}

int mig_msg_error_errno(uint64_t value)
{
    uint32_t e = (uint32_t)value;

    return e && e < 4096 ? (int)e : EREMOTEIO;
}

int mig_msg_reason_decode(uint64_t value, const uint8_t *tail, size_t n, char *reason,
                          size_t reasonlen)
{
    size_t len, out = 0;

    if (reasonlen)
        reason[0] = '\0';
    if (mig_msg_reason_len(value, &len) < 0)
        return -EPROTO;
    if (!len)
        return n == 0 ? 0 : -EPROTO;
    if (n != len + MIG_REASON_CHECK)
        return -EPROTO; /* truncated, or more than announced */
    if (gw_get_le(tail + len, MIG_REASON_CHECK) != XXH3_64bits_withSeed(tail, len, value))
        return -EPROTO;
    if (!reasonlen)
        return 0;
    for (size_t i = 0; i < len;) {
        size_t c = mig_utf8_len(tail + i, len - i);
        const uint8_t *from = tail + i;

        if (!c || !mig_char_printable(tail + i, c)) {
            from = (const uint8_t *)"?";
            i += c ? c : 1;
            c = 1;
        } else {
            i += c;
        }
        if (out + c >= reasonlen)
            break; /* whole characters only */
        memcpy(reason + out, from, c);
        out += c;
    }
    reason[out] = '\0';
    return 0;
}

int mig_chan_send_error(const struct mig_chan *c, int errnum, const char *reason)
{
    uint8_t m[MIG_ERROR_MAX];
    size_t n = mig_msg_error_encode(m, errnum, reason);

    return c->tls ? mig_tls_send(c->tls, m, n) : mig_fd_write_full(c->fd, m, n);
}

int mig_chan_recv_reason(const struct mig_chan *c, uint64_t value, char *reason, size_t reasonlen,
                         int timeout_ms)
{
    uint8_t tail[MIG_REASON_MAX + MIG_REASON_CHECK];
    size_t len;
    int ret;

    if (reasonlen)
        reason[0] = '\0';
    if (mig_msg_reason_len(value, &len) < 0)
        return -EPROTO;
    if (!len)
        return 0;
    ret = mig_chan_read_full(c, tail, len + MIG_REASON_CHECK, timeout_ms);
    if (ret < 0)
        return ret;
    return mig_msg_reason_decode(value, tail, len + MIG_REASON_CHECK, reason, reasonlen);
}
