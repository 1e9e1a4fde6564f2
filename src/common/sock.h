/*
 * Stream sockets, unix and TCP (IPv4/IPv6): address parsing, listen,
 * connect and accept with deadlines.  The one place godwit opens a socket:
 * the QMP server, the chardev's unix socket and the migration channel all
 * go through here, and so do the QMP client and (next) godwitd.
 *
 * Every descriptor returned is close-on-exec.  A listening socket is
 * non-blocking (so an accept with a timeout never hangs on a connection the
 * peer already abandoned); connected sockets are blocking unless
 * SOCK_F_NONBLOCK is asked.  Ports are checked to lie in 1..65535 (0, "any
 * port", only where a listener asks for it with SOCK_F_PORT_ANY): "99999"
 * is an error, never a port taken modulo 65536.
 *
 * Errors: -errno, with a one-line reason in err (which may be NULL).  No
 * state lives here.
 */
#ifndef GODWIT_COMMON_SOCK_H
#define GODWIT_COMMON_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/util.h"

#define SOCK_UNIX_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path), NUL included */
#define SOCK_HOST_MAX      256 /* a host name or address literal, NUL included */

enum sock_kind {
    SOCK_KIND_UNIX = 1,
    SOCK_KIND_TCP,
};

struct sock_addr {
    enum sock_kind kind;
    char path[SOCK_UNIX_PATH_MAX]; /* unix: the socket file */
    char host[SOCK_HOST_MAX];      /* tcp: name or literal, no brackets; "" = any / loopback */
    uint16_t port;                 /* tcp */
};

/* Flags for the functions below (ignored where they make no sense). */
#define SOCK_F_NODELAY  0x1u /* TCP_NODELAY on a TCP socket */
#define SOCK_F_NONBLOCK 0x2u /* a connected socket returned non-blocking */
#define SOCK_F_PORT_ANY 0x4u /* parsing: port 0 allowed (a listener's "any port") */

/*
 * Parse a decimal port "1".."65535" (leading zeros allowed, nothing else:
 * no sign, space or service name); "0" only with SOCK_F_PORT_ANY.
 * 0 or -EINVAL.
 */
int sock_parse_port(const char *s, size_t len, unsigned flags, uint16_t *port) gw_must_check;

/*
 * Parse "HOST:PORT", "[V6]:PORT" or ":PORT" (any host) into a TCP address.
 * 0 or -EINVAL with a reason naming the string.
 */
int sock_parse_hostport(const char *s, unsigned flags, struct sock_addr *a, char *err,
                        size_t errlen) gw_must_check;

/* A unix address from path[0..len) (len < SOCK_UNIX_PATH_MAX, no NUL
 * inside).  0 or -EINVAL / -ENAMETOOLONG with a reason. */
int sock_addr_unix(struct sock_addr *a, const char *path, size_t len, char *err,
                   size_t errlen) gw_must_check;

/* "unix:PATH" or "tcp:HOST:PORT" (for messages). */
void sock_addr_format(const struct sock_addr *a, char *buf, size_t len);

/* Identity of the socket file a unix listener bound, so that it is removed
 * at the end only if nobody has replaced it since.  The change time is part
 * of it because a file made after ours was removed may get its inode. */
struct sock_unix_owner {
    char path[SOCK_UNIX_PATH_MAX];
    dev_t dev;
    ino_t ino;
    struct timespec ctime;
};

/*
 * Listen on a.  Unix: a stale socket file (nobody answers on it) is
 * replaced; a live one is refused with -EADDRINUSE and anything else at
 * the path with -EEXIST; owner (may be NULL) records the file bound.  TCP:
 * SO_REUSEADDR, the first address the host resolves to that binds; port 0
 * picks a free port (sock_local_port says which).  Returns the listening
 * fd (non-blocking, CLOEXEC) or -errno.
 */
int sock_listen(const struct sock_addr *a, int backlog, struct sock_unix_owner *owner, char *err,
                size_t errlen) gw_must_check;

/* Remove the socket file a listener bound, if it is still the same file.
 * NULL or an empty owner is a no-op. */
void sock_unix_release(const struct sock_unix_owner *owner);

/*
 * Connect to a within timeout_ms (-1: no limit; name resolution is not
 * bounded).  TCP tries every address the host resolves to until one
 * answers, all within the one deadline.  Returns the fd (blocking unless
 * SOCK_F_NONBLOCK; SOCK_F_NODELAY as asked) or -errno (-ETIMEDOUT,
 * -ECONNREFUSED, -ENOENT, -EHOSTUNREACH when the host does not resolve...).
 */
int sock_connect(const struct sock_addr *a, int timeout_ms, unsigned flags, char *err,
                 size_t errlen) gw_must_check;

/*
 * Accept one connection on lfd.  timeout_ms 0: only one already waiting
 * (-EAGAIN if none); -1: no limit; otherwise -ETIMEDOUT when it passes.
 * cancel (may be NULL) is polled every 100 ms: -ECANCELED once it is true.
 * Returns the fd (CLOEXEC, blocking unless SOCK_F_NONBLOCK, SOCK_F_NODELAY
 * on TCP as asked) or -errno.
 */
int sock_accept(int lfd, int timeout_ms, const _Atomic bool *cancel, unsigned flags) gw_must_check;

/* The port a TCP socket is bound to (after listening on port 0), or -errno. */
int sock_local_port(int fd);

/* fd options; 0 or -errno. */
int sock_set_nonblock(int fd, bool on);
int sock_set_nodelay(int fd);
/* SO_SNDBUF and SO_RCVBUF (the kernel may cap them; best effort). */
void sock_set_buffers(int fd, int bytes);

#endif
