/*
 * URIs, sockets and control messages of the migration channel (mig_proto.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "migration/mig_proto.h"

int mig_uri_parse(const char *uri, bool allow_defer, struct mig_uri *u, char *err, size_t errlen)
{
    const char *rest, *colon;

    memset(u, 0, sizeof(*u));
    if (allow_defer && !strcmp(uri, "defer")) {
        u->kind = MIG_URI_DEFER;
        return 0;
    }
    if (!strncmp(uri, "file:", 5) || !strncmp(uri, "unix:", 5)) {
        u->kind = uri[0] == 'f' ? MIG_URI_FILE : MIG_URI_UNIX;
        rest = uri + 5;
        if (!*rest || strlen(rest) >= sizeof(u->path) ||
            (u->kind == MIG_URI_UNIX &&
             strlen(rest) >= sizeof(((struct sockaddr_un *)0)->sun_path))) {
            snprintf(err, errlen, "'%s': empty or too long path", uri);
            return -EINVAL;
        }
        snprintf(u->path, sizeof(u->path), "%s", rest);
        return 0;
    }
    if (!strncmp(uri, "tcp:", 4)) {
        u->kind = MIG_URI_TCP;
        rest = uri + 4;
        if (rest[0] == '[') { /* [v6]:port */
            const char *end = strchr(rest, ']');
            if (!end || end[1] != ':' || (size_t)(end - rest - 1) >= sizeof(u->host))
                goto bad_tcp;
            memcpy(u->host, rest + 1, (size_t)(end - rest - 1));
            colon = end + 1;
        } else {
            colon = strrchr(rest, ':');
            if (!colon || (size_t)(colon - rest) >= sizeof(u->host))
                goto bad_tcp;
            memcpy(u->host, rest, (size_t)(colon - rest));
        }
        if (!colon[1] || strlen(colon + 1) >= sizeof(u->port) ||
            strspn(colon + 1, "0123456789") != strlen(colon + 1))
            goto bad_tcp;
        snprintf(u->port, sizeof(u->port), "%s", colon + 1);
        return 0;
    bad_tcp:
        snprintf(err, errlen, "'%s': expected tcp:HOST:PORT", uri);
        return -EINVAL;
    }
    snprintf(err, errlen, "unsupported migration URI '%s' (file:PATH, tcp:HOST:PORT, unix:PATH%s)",
             uri, allow_defer ? ", defer" : "");
    return -EINVAL;
}

static int mig_set_blocking(int fd, bool blocking)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -errno;
    fl = blocking ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

static void mig_tune(int fd, bool tcp)
{
    int one = 1, buf = 4 << 20;

    if (tcp)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

/* Non-blocking connect with a deadline. */
static int mig_connect_addr(int fd, const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (mig_set_blocking(fd, false) < 0)
        return -errno;
    if (connect(fd, sa, len) == 0)
        return mig_set_blocking(fd, true);
    if (errno != EINPROGRESS)
        return -errno;
    if (poll(&p, 1, timeout_ms) <= 0)
        return -ETIMEDOUT;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return -errno;
    if (soerr)
        return -soerr;
    return mig_set_blocking(fd, true);
}

int mig_connect(const struct mig_uri *u, int timeout_ms, char *err, size_t errlen)
{
    int fd, ret;

    if (u->kind == MIG_URI_UNIX) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%.107s", u->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            ret = -errno;
            snprintf(err, errlen, "socket: %s", strerror(errno));
            return ret;
        }
        mig_tune(fd, false);
        ret = mig_connect_addr(fd, (struct sockaddr *)&sa, sizeof(sa), timeout_ms);
        if (ret < 0) {
            close(fd);
            snprintf(err, errlen, "connect to unix:%s: %s", u->path, strerror(-ret));
            return ret;
        }
        return fd;
    }
    if (u->kind == MIG_URI_TCP) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
        int gai = getaddrinfo(u->host[0] ? u->host : NULL, u->port, &hints, &res);

        if (gai) {
            snprintf(err, errlen, "tcp:%s:%s: %s", u->host, u->port, gai_strerror(gai));
            return -EHOSTUNREACH;
        }
        ret = -ECONNREFUSED;
        fd = -1;
        for (ai = res; ai; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) {
                ret = -errno;
                continue;
            }
            mig_tune(fd, true);
            ret = mig_connect_addr(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms);
            if (ret == 0)
                break;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0) {
            snprintf(err, errlen, "connect to tcp:%s:%s: %s", u->host, u->port, strerror(-ret));
            return ret;
        }
        return fd;
    }
    snprintf(err, errlen, "not a socket URI");
    return -EINVAL;
}

int mig_listen(const struct mig_uri *u, char *err, size_t errlen)
{
    int fd = -1, ret, one = 1;

    if (u->kind == MIG_URI_UNIX) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct stat st;

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%.107s", u->path);
        if (lstat(u->path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(u->path); /* stale, as QEMU does */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
            ret = -errno;
            snprintf(err, errlen, "listen on unix:%s: %s", u->path, strerror(errno));
            goto fail;
        }
        return fd;
    }
    if (u->kind == MIG_URI_TCP) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
        int gai = getaddrinfo(u->host[0] ? u->host : NULL, u->port, &hints, &res);

        if (gai) {
            snprintf(err, errlen, "tcp:%s:%s: %s", u->host, u->port, gai_strerror(gai));
            return -EINVAL;
        }
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 4) < 0) {
            ret = -errno;
            snprintf(err, errlen, "listen on tcp:%s:%s: %s", u->host, u->port, strerror(errno));
            freeaddrinfo(res);
            goto fail;
        }
        freeaddrinfo(res);
        return fd;
    }
    snprintf(err, errlen, "not a socket URI");
    return -EINVAL;
fail:
    if (fd >= 0)
        close(fd);
    return ret;
}

int mig_accept(int lfd, int timeout_ms, const _Atomic bool *cancel)
{
    int waited = 0;

    for (;;) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        int r, fd;

        if (cancel && atomic_load(cancel))
            return -ECANCELED;
        r = poll(&p, 1, 100);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r > 0) {
            fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                mig_tune(fd, true);
                return fd;
            }
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                return -errno;
        }
        waited += 100;
        if (timeout_ms >= 0 && waited >= timeout_ms)
            return -ETIMEDOUT;
    }
}

static void mig_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t mig_get(const uint8_t *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int mig_msg_send(int fd, uint32_t magic, uint32_t type, uint64_t value)
{
    uint8_t m[MIG_MSG_LEN];
    size_t off = 0;

    mig_put32(m, magic);
    mig_put32(m + 4, type);
    mig_put32(m + 8, (uint32_t)value);
    mig_put32(m + 12, (uint32_t)(value >> 32));
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
    if ((uint32_t)mig_get(m, 4) != magic)
        return -EPROTO;
    *type = (uint32_t)mig_get(m + 4, 4);
    *value = mig_get(m + 8, 8);
    return 0;
}
