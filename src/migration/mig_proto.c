/*
 * URIs, sockets and control messages of the migration channel (mig_proto.h).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
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
               type == MIG_MSG_ROUND;
    if (magic == MIG_MAGIC_COMMIT)
        return type == MIG_MSG_COMMIT;
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

int mig_msg_send(int fd, uint32_t magic, uint32_t type, uint64_t value)
{
    uint8_t m[MIG_MSG_LEN];
    size_t off = 0;

    mig_msg_encode(m, magic, type, value);
    while (off < sizeof(m)) {
        ssize_t w = send(fd, m + off, sizeof(m) - off, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EPIPE;
        off += (size_t)w;
    }
    return 0;
}

int mig_msg_recv(int fd, uint32_t magic, uint32_t *type, uint64_t *value, int timeout_ms)
{
    uint8_t m[MIG_MSG_LEN];
    size_t off = 0;
    uint64_t deadline = gw_now_ns() + (uint64_t)timeout_ms * 1000000ull;

    while (off < sizeof(m)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t now = gw_now_ns();
        int r;
        ssize_t n;

        if (now >= deadline)
            return -ETIMEDOUT;
        r = poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        n = recv(fd, m + off, sizeof(m) - off, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EPIPE;
        off += (size_t)n;
    }
    return mig_msg_decode(m, magic, type, value);
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
    size_t off = 0;
    uint64_t deadline = gw_now_ns() + (uint64_t)timeout_ms * 1000000ull;

    if (!c->tls)
        return mig_msg_recv(c->fd, magic, type, value, timeout_ms);
    while (off < sizeof(m)) {
        uint64_t now = gw_now_ns();
        ssize_t n;

        if (now >= deadline)
            return -ETIMEDOUT;
        n = mig_tls_recv(c->tls, m + off, sizeof(m) - off,
                         (int)((deadline - now) / 1000000ull) + 1);
        if (n < 0)
            return n == -EAGAIN ? -ETIMEDOUT : (int)n;
        if (n == 0)
            return -EPIPE;
        off += (size_t)n;
    }
    return mig_msg_decode(m, magic, type, value);
}
