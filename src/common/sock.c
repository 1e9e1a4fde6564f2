/*
 * Stream sockets (sock.h).  Waits are poll() with a deadline on the
 * monotonic clock, so EINTR never stretches a timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/sock.h"

#define SOCK_CANCEL_POLL_MS 100 /* how often a cancel flag is looked at */
#define SOCK_RETRY_MS       10  /* unix connect: a full backlog is retried this often */

_Static_assert(SOCK_UNIX_PATH_MAX == sizeof(((struct sockaddr_un *)0)->sun_path),
               "SOCK_UNIX_PATH_MAX must match sun_path");

/* ---- deadlines ----------------------------------------------------------- */

static int sock_min_ms(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* ---- parsing -------------------------------------------------------------- */

int sock_parse_port(const char *s, size_t len, unsigned flags, uint16_t *port)
{
    uint32_t v = 0;

    if (len == 0)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint32_t)(s[i] - '0');
        if (v > 65535)
            return -EINVAL;
    }
    if (v == 0 && !(flags & SOCK_F_PORT_ANY))
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

int sock_parse_hostport(const char *s, unsigned flags, struct sock_addr *a, char *err,
                        size_t errlen)
{
    const char *host = s, *colon;
    size_t hlen;

    memset(a, 0, sizeof(*a));
    a->kind = SOCK_KIND_TCP;
    if (s[0] == '[') { /* [v6]:port */
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return gw_fail(err, errlen, -EINVAL, "'%s': expected [ADDRESS]:PORT", s);
        host = s + 1;
        hlen = (size_t)(end - host);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return gw_fail(err, errlen, -EINVAL, "'%s': expected HOST:PORT", s);
        hlen = (size_t)(colon - s);
    }
    if (hlen >= sizeof(a->host))
        return gw_fail(err, errlen, -EINVAL, "'%s': host name too long", s);
    if (sock_parse_port(colon + 1, strlen(colon + 1), flags, &a->port) < 0)
        return gw_fail(err, errlen, -EINVAL, "'%s': the port must be a number in %s..65535", s,
                       flags & SOCK_F_PORT_ANY ? "0" : "1");
    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';
    return 0;
}

int sock_addr_unix(struct sock_addr *a, const char *path, size_t len, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->kind = SOCK_KIND_UNIX;
    if (len == 0)
        return gw_fail(err, errlen, -EINVAL, "a unix socket needs a path");
    if (memchr(path, '\0', len))
        return gw_fail(err, errlen, -EINVAL, "a unix socket path cannot hold a NUL byte");
    if (len >= sizeof(a->path))
        return gw_fail(err, errlen, -ENAMETOOLONG,
                       "unix socket path is too long (%zu bytes, at most %zu): %.*s", len,
                       sizeof(a->path) - 1, (int)len, path);
    memcpy(a->path, path, len);
    a->path[len] = '\0';
    return 0;
}

void sock_addr_format(const struct sock_addr *a, char *buf, size_t len)
{
    if (a->kind == SOCK_KIND_UNIX)
        snprintf(buf, len, "unix:%s", a->path);
    else if (strchr(a->host, ':'))
        snprintf(buf, len, "tcp:[%s]:%u", a->host, (unsigned)a->port);
    else
        snprintf(buf, len, "tcp:%s:%u", a->host, (unsigned)a->port);
}

/* ---- options -------------------------------------------------------------- */

int sock_set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -errno;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int sock_set_nodelay(int fd)
{
    int one = 1;

    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ? -errno : 0;
}

void sock_set_buffers(int fd, int bytes)
{
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
}

int sock_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}

/* Blocking or not as flags ask, TCP_NODELAY on TCP if asked. */
static int sock_finish(int fd, bool tcp, unsigned flags)
{
    int ret = sock_set_nonblock(fd, flags & SOCK_F_NONBLOCK);

    if (ret == 0 && tcp && (flags & SOCK_F_NODELAY))
        ret = sock_set_nodelay(fd);
    return ret;
}

/* ---- listen --------------------------------------------------------------- */

static void sock_unix_sa(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, path, strnlen(path, sizeof(sa->sun_path) - 1));
}

/* A file at the socket path: replace it if nobody answers (a crashed
 * process left it), refuse if a server is alive or it is not a socket. */
static int sock_clear_stale(const struct sockaddr_un *sa, char *err, size_t errlen)
{
    struct stat st;
    int fd, r, e;

    if (lstat(sa->sun_path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return gw_fail(err, errlen, -EEXIST, "'%s' exists and is not a socket", sa->sun_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return gw_fail(err, errlen, -errno, "socket: %s", strerror(errno));
    r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    e = errno;
    close(fd);
    if (r == 0 || e == EAGAIN)
        return gw_fail(err, errlen, -EADDRINUSE, "a server is already listening on '%s'",
                       sa->sun_path);
    if (e != ECONNREFUSED)
        return gw_fail(err, errlen, -e, "cannot probe '%s': %s", sa->sun_path, strerror(e));
    if (unlink(sa->sun_path) < 0 && errno != ENOENT)
        return gw_fail(err, errlen, -errno, "cannot remove stale socket '%s': %s", sa->sun_path,
                       strerror(errno));
    return 0;
}

static int sock_listen_unix(const struct sock_addr *a, int backlog, struct sock_unix_owner *owner,
                            char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, ret;

    sock_unix_sa(&sa, a->path);
    ret = sock_clear_stale(&sa, err, errlen);
    if (ret < 0)
        return ret;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return gw_fail(err, errlen, -errno, "socket: %s", strerror(errno));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, backlog) < 0 ||
        lstat(sa.sun_path, &st) < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot listen on unix:%s: %s", sa.sun_path,
                      strerror(errno));
        close(fd);
        return ret;
    }
    if (owner) {
        memcpy(owner->path, sa.sun_path, sizeof(owner->path));
        owner->dev = st.st_dev;
        owner->ino = st.st_ino;
        owner->ctime = st.st_ctim;
    }
    return fd;
}

/* getaddrinfo for host (NULL when empty) and a port; 0 or -errno. */
static int sock_resolve(const struct sock_addr *a, bool passive, struct addrinfo **res, char *err,
                        size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    char port[8];
    int gai;

    if (passive)
        hints.ai_flags |= AI_PASSIVE;
    snprintf(port, sizeof(port), "%u", (unsigned)a->port);
    gai = getaddrinfo(a->host[0] ? a->host : NULL, port, &hints, res);
    if (gai == 0)
        return 0;
    return gw_fail(err, errlen, gai == EAI_SYSTEM ? -errno : -EHOSTUNREACH, "%s:%u: %s",
                   a->host[0] ? a->host : "(any)", (unsigned)a->port,
                   gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
}

static int sock_listen_tcp(const struct sock_addr *a, int backlog, char *err, size_t errlen)
{
    struct addrinfo *res, *ai;
    char what[SOCK_HOST_MAX + 16];
    int fd = -1, ret, one = 1;

    ret = sock_resolve(a, true, &res, err, errlen);
    if (ret < 0)
        return ret;
    ret = -EADDRNOTAVAIL;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
            break;
        ret = -errno;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        sock_addr_format(a, what, sizeof(what));
        return gw_fail(err, errlen, ret, "cannot listen on %s: %s", what, strerror(-ret));
    }
    return fd;
}

int sock_listen(const struct sock_addr *a, int backlog, struct sock_unix_owner *owner, char *err,
                size_t errlen)
{
    if (owner)
        memset(owner, 0, sizeof(*owner));
    if (a->kind == SOCK_KIND_UNIX)
        return sock_listen_unix(a, backlog, owner, err, errlen);
    if (a->kind == SOCK_KIND_TCP)
        return sock_listen_tcp(a, backlog, err, errlen);
    return gw_fail(err, errlen, -EINVAL, "not a socket address");
}

void sock_unix_release(const struct sock_unix_owner *owner)
{
    struct stat st;

    if (!owner || !owner->path[0])
        return;
    if (lstat(owner->path, &st) == 0 && st.st_dev == owner->dev && st.st_ino == owner->ino &&
        st.st_ctim.tv_sec == owner->ctime.tv_sec && st.st_ctim.tv_nsec == owner->ctime.tv_nsec)
        (void)unlink(owner->path);
}

/* ---- connect -------------------------------------------------------------- */

/* Wait for a non-blocking connect in progress; 0 or -errno. */
static int sock_connect_wait(int fd, uint64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int soerr = 0, r;
    socklen_t sl = sizeof(soerr);

    r = gw_poll_until(&p, 1, deadline);
    if (r < 0)
        return r;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        return -errno;
    return -soerr;
}

/* One address; the socket is non-blocking during the connect.  Returns
 * the fd or -errno. */
static int sock_connect_one(int family, const struct sockaddr *sa, socklen_t len, uint64_t deadline)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), ret = 0;

    if (fd < 0)
        return -errno;
    while (connect(fd, sa, len) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EINPROGRESS) {
            ret = sock_connect_wait(fd, deadline);
        } else if (errno == EAGAIN && family == AF_UNIX) {
            /* The listener's backlog is full: unix sockets say so at once
             * instead of queueing; try again until the deadline. */
            int left = gw_deadline_left_ms(deadline);
            if (left == 0) {
                ret = -ETIMEDOUT;
            } else {
                (void)poll(NULL, 0, sock_min_ms(left, SOCK_RETRY_MS));
                continue;
            }
        } else {
            ret = -errno;
        }
        break;
    }
    if (ret < 0) {
        close(fd);
        return ret;
    }
    return fd;
}

int sock_connect(const struct sock_addr *a, int timeout_ms, unsigned flags, char *err,
                 size_t errlen)
{
    uint64_t deadline = gw_deadline_ns(timeout_ms);
    char what[SOCK_HOST_MAX + 16];
    int fd, ret;

    sock_addr_format(a, what, sizeof(what));
    if (a->kind == SOCK_KIND_UNIX) {
        struct sockaddr_un sa;

        sock_unix_sa(&sa, a->path);
        fd = sock_connect_one(AF_UNIX, (struct sockaddr *)&sa, sizeof(sa), deadline);
    } else if (a->kind == SOCK_KIND_TCP) {
        struct addrinfo *res, *ai;

        if (a->port == 0)
            return gw_fail(err, errlen, -EINVAL, "connect to %s: the port must be in 1..65535",
                           what);
        ret = sock_resolve(a, false, &res, err, errlen);
        if (ret < 0)
            return ret;
        fd = -ECONNREFUSED;
        for (ai = res; ai; ai = ai->ai_next) {
            fd = sock_connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline);
            if (fd >= 0 || fd == -ETIMEDOUT)
                break;
        }
        freeaddrinfo(res);
    } else {
        return gw_fail(err, errlen, -EINVAL, "not a socket address");
    }
    if (fd < 0)
        return gw_fail(err, errlen, fd, "connect to %s: %s", what, strerror(-fd));
    ret = sock_finish(fd, a->kind == SOCK_KIND_TCP, flags);
    if (ret < 0) {
        close(fd);
        return gw_fail(err, errlen, ret, "connect to %s: %s", what, strerror(-ret));
    }
    return fd;
}

/* ---- accept --------------------------------------------------------------- */

int sock_accept(int lfd, int timeout_ms, const _Atomic bool *cancel, unsigned flags)
{
    uint64_t deadline = gw_deadline_ns(timeout_ms);

    for (;;) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        int left = gw_deadline_left_ms(deadline), r, fd;

        if (cancel && atomic_load(cancel))
            return -ECANCELED;
        if (cancel && left != 0)
            left = sock_min_ms(left, SOCK_CANCEL_POLL_MS);
        r = poll(&p, 1, left);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r > 0) {
            fd = accept4(lfd, NULL, NULL,
                         SOCK_CLOEXEC | ((flags & SOCK_F_NONBLOCK) ? SOCK_NONBLOCK : 0));
            if (fd >= 0) {
                if (flags & SOCK_F_NODELAY)
                    (void)sock_set_nodelay(fd); /* EOPNOTSUPP on a unix socket */
                return fd;
            }
            /* EAGAIN: the peer gave up between poll and accept. */
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                return -errno;
        }
        if (timeout_ms == 0)
            return -EAGAIN;
        if (gw_deadline_left_ms(deadline) == 0)
            return -ETIMEDOUT;
    }
}
