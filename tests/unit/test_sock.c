/*
 * Unit tests for src/common/sock.c: port and address parsing (the range
 * 1..65535, never wrapped), unix sockets (stale files replaced, live ones
 * and other files refused, the owner-checked removal), TCP on 127.0.0.1
 * and ::1, descriptor flags (CLOEXEC, blocking or not, TCP_NODELAY),
 * accept with a timeout and a cancel flag, connect timing out on a full
 * backlog, and the reasons given when things fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board_check.h"
#include "common/sock.h"
#include "common/util.h"

static bool fd_cloexec(int fd)
{
    int f = fcntl(fd, F_GETFD);
    return f >= 0 && (f & FD_CLOEXEC);
}

static bool fd_nonblock(int fd)
{
    int f = fcntl(fd, F_GETFL);
    return f >= 0 && (f & O_NONBLOCK);
}

static int fd_nodelay(int fd)
{
    int v = 0;
    socklen_t l = sizeof(v);
    return getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l) < 0 ? -1 : v != 0;
}

static unsigned ms_since(uint64_t t0)
{
    return (unsigned)((gw_now_ns() - t0) / 1000000);
}

static void test_parse(void)
{
    static const struct {
        const char *s;
        unsigned flags;
        int ret;
        uint16_t port;
    } ports[] = {
        {"1", 0, 0, 1},
        {"65535", 0, 0, 65535},
        {"00080", 0, 0, 80},
        {"0", 0, -EINVAL, 0},
        {"0", SOCK_F_PORT_ANY, 0, 0},
        {"65536", SOCK_F_PORT_ANY, -EINVAL, 0},
        {"99999", 0, -EINVAL, 0},
        {"4294967297", 0, -EINVAL, 0},
        {"", 0, -EINVAL, 0},
        {"8a", 0, -EINVAL, 0},
        {"-1", 0, -EINVAL, 0},
        {"+1", 0, -EINVAL, 0},
        {" 1", 0, -EINVAL, 0},
        {"http", 0, -EINVAL, 0},
    };
    struct sock_addr a;
    char err[256], buf[300], longh[400];
    uint16_t port;

    for (size_t i = 0; i < GW_ARRAY_SIZE(ports); i++) {
        int r;
        port = 12345;
        r = sock_parse_port(ports[i].s, strlen(ports[i].s), ports[i].flags, &port);
        CHECK(r == ports[i].ret && (r < 0 || port == ports[i].port), "port '%s'%s: %d (%u)",
              ports[i].s, ports[i].flags ? " (any allowed)" : "", r, (unsigned)port);
    }
    CHECK(sock_parse_port("80x", 2, 0, &port) == 0 && port == 80, "port: only len bytes are read");

    CHECK(sock_parse_hostport("127.0.0.1:4444", 0, &a, err, sizeof(err)) == 0 &&
              a.kind == SOCK_KIND_TCP && !strcmp(a.host, "127.0.0.1") && a.port == 4444,
          "hostport: v4");
    CHECK(sock_parse_hostport("[::1]:5555", 0, &a, err, sizeof(err)) == 0 &&
              !strcmp(a.host, "::1") && a.port == 5555,
          "hostport: [v6]");
    CHECK(sock_parse_hostport(":6666", 0, &a, err, sizeof(err)) == 0 && a.host[0] == '\0' &&
              a.port == 6666,
          "hostport: any host");
    CHECK(sock_parse_hostport("example.org:443", 0, &a, err, sizeof(err)) == 0 &&
              !strcmp(a.host, "example.org"),
          "hostport: a name");
    static const char *const bad[] = {"host", "host:", "[::1]80", "[::1:80", "h:99999",
                                      "h:0",  "h:-5",  "h:80 ",   ""};
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        err[0] = '\0';
        CHECK(sock_parse_hostport(bad[i], 0, &a, err, sizeof(err)) == -EINVAL && err[0],
              "hostport: '%s' refused (%s)", bad[i], err);
    }
    CHECK(sock_parse_hostport("127.0.0.1:99999", 0, &a, err, sizeof(err)) == -EINVAL &&
              strstr(err, "1..65535") && strstr(err, "99999"),
          "hostport: the reason names the range and the string (%s)", err);
    CHECK(sock_parse_hostport("h:0", SOCK_F_PORT_ANY, &a, err, sizeof(err)) == 0 && a.port == 0,
          "hostport: port 0 where a listener allows it");
    memset(longh, 'h', sizeof(longh));
    memcpy(longh + 300, ":80", 4);
    CHECK(sock_parse_hostport(longh, 0, &a, err, sizeof(err)) == -EINVAL,
          "hostport: a 300-byte host refused");
    CHECK(sock_parse_hostport("", 0, &a, NULL, 0) == -EINVAL, "hostport: err may be NULL");

    CHECK(sock_addr_unix(&a, "/tmp/x.sock", 11, err, sizeof(err)) == 0 &&
              a.kind == SOCK_KIND_UNIX && !strcmp(a.path, "/tmp/x.sock"),
          "unix addr");
    CHECK(sock_addr_unix(&a, "/tmp/x.sock,server=on", 11, err, sizeof(err)) == 0 &&
              !strcmp(a.path, "/tmp/x.sock"),
          "unix addr: a prefix of a longer string");
    CHECK(sock_addr_unix(&a, "", 0, err, sizeof(err)) == -EINVAL, "unix addr: empty refused");
    CHECK(sock_addr_unix(&a, "/a\0b", 4, err, sizeof(err)) == -EINVAL,
          "unix addr: a NUL inside refused");
    memset(longh, 'p', sizeof(longh));
    CHECK(sock_addr_unix(&a, longh, SOCK_UNIX_PATH_MAX, err, sizeof(err)) == -ENAMETOOLONG &&
              strstr(err, "too long"),
          "unix addr: 108 bytes refused (%.40s...)", err);
    CHECK(sock_addr_unix(&a, longh, SOCK_UNIX_PATH_MAX - 1, err, sizeof(err)) == 0,
          "unix addr: 107 bytes fit");

    buf[0] = '\0';
    if (sock_parse_hostport("[::1]:80", 0, &a, err, sizeof(err)) == 0)
        sock_addr_format(&a, buf, sizeof(buf));
    CHECK(!strcmp(buf, "tcp:[::1]:80"), "format: %s", buf);
    buf[0] = '\0';
    if (sock_addr_unix(&a, "/run/x", 6, err, sizeof(err)) == 0)
        sock_addr_format(&a, buf, sizeof(buf));
    CHECK(!strcmp(buf, "unix:/run/x"), "format: %s", buf);
}

/* A connected pair through a listener on a; checks the descriptors. */
static void pair_checks(const struct sock_addr *a, int lfd, const char *what, bool tcp)
{
    char err[256];
    int cli, srv;

    cli = sock_connect(a, 2000, SOCK_F_NODELAY, err, sizeof(err));
    CHECK(cli >= 0, "%s: connect (%s)", what, cli < 0 ? err : "");
    srv = sock_accept(lfd, 2000, NULL, SOCK_F_NODELAY);
    CHECK(srv >= 0, "%s: accept (%d)", what, srv);
    if (cli < 0 || srv < 0)
        goto out;
    CHECK(fd_cloexec(cli) && fd_cloexec(srv), "%s: both ends CLOEXEC", what);
    CHECK(!fd_nonblock(cli) && !fd_nonblock(srv), "%s: both ends blocking by default", what);
    if (tcp)
        CHECK(fd_nodelay(cli) == 1 && fd_nodelay(srv) == 1, "%s: TCP_NODELAY on both ends", what);
    CHECK(write(cli, "ping", 4) == 4, "%s: write", what);
    char b[8] = {0};
    CHECK(read(srv, b, sizeof(b)) == 4 && !memcmp(b, "ping", 4), "%s: the bytes arrive", what);
out:
    if (cli >= 0)
        close(cli);
    if (srv >= 0)
        close(srv);
}

static void test_unix(void)
{
    struct sock_addr a;
    struct sock_unix_owner own, own2;
    char err[256], path[80];
    struct stat st;
    int lfd, lfd2, fd;

    snprintf(path, sizeof(path), "/tmp/godwit-sock-test-%d.sock", (int)getpid());
    unlink(path);
    CHECK(sock_addr_unix(&a, path, strlen(path), err, sizeof(err)) == 0, "unix: address");

    /* nobody there */
    fd = sock_connect(&a, 500, 0, err, sizeof(err));
    CHECK(fd == -ENOENT && strstr(err, path), "unix: connect to no file: -ENOENT (%s)", err);

    lfd = sock_listen(&a, 4, &own, err, sizeof(err));
    CHECK(lfd >= 0, "unix: listen (%s)", lfd < 0 ? err : "");
    if (lfd < 0)
        return;
    CHECK(fd_cloexec(lfd) && fd_nonblock(lfd), "unix: listener CLOEXEC and non-blocking");
    CHECK(!strcmp(own.path, path) && own.ino != 0, "unix: owner recorded");
    pair_checks(&a, lfd, "unix", false);

    /* non-blocking on request */
    fd = sock_connect(&a, 1000, SOCK_F_NONBLOCK, err, sizeof(err));
    int srv = sock_accept(lfd, 1000, NULL, SOCK_F_NONBLOCK);
    CHECK(fd >= 0 && srv >= 0 && fd_nonblock(fd) && fd_nonblock(srv),
          "unix: SOCK_F_NONBLOCK on both ends");
    if (fd >= 0)
        close(fd);
    if (srv >= 0)
        close(srv);

    /* accept: nothing waiting */
    CHECK(sock_accept(lfd, 0, NULL, 0) == -EAGAIN, "accept: timeout 0, nobody: -EAGAIN");

    /* a live socket is not taken over */
    err[0] = '\0';
    lfd2 = sock_listen(&a, 4, NULL, err, sizeof(err));
    CHECK(lfd2 == -EADDRINUSE && strstr(err, "already listening"),
          "unix: a live socket file is refused (%s)", err);
    if (lfd2 >= 0)
        close(lfd2);

    /* the listener goes (its file stays): the next one replaces it */
    close(lfd);
    fd = sock_connect(&a, 500, 0, err, sizeof(err));
    CHECK(fd == -ECONNREFUSED, "unix: connect to a stale file: -ECONNREFUSED (%s)", err);
    if (fd >= 0)
        close(fd);
    lfd = sock_listen(&a, 4, &own2, err, sizeof(err));
    CHECK(lfd >= 0, "unix: a stale socket file is replaced (%s)", lfd < 0 ? err : "");
    /* the first owner's removal must not take the second listener's file */
    sock_unix_release(&own);
    CHECK(stat(path, &st) == 0, "unix: release by a former owner leaves the new file");
    sock_unix_release(&own2);
    CHECK(stat(path, &st) < 0 && errno == ENOENT, "unix: release by the owner removes it");
    sock_unix_release(NULL);
    if (lfd >= 0)
        close(lfd);

    /* a regular file at the path is never removed */
    fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd >= 0)
        close(fd);
    err[0] = '\0';
    lfd = sock_listen(&a, 4, NULL, err, sizeof(err));
    CHECK(lfd == -EEXIST && stat(path, &st) == 0 && S_ISREG(st.st_mode),
          "unix: a regular file at the path is refused and kept (%s)", err);
    if (lfd >= 0)
        close(lfd);
    unlink(path);

    /* a full backlog: connect waits, then times out */
    lfd = sock_listen(&a, 0, &own, err, sizeof(err));
    int held[4], nheld = 0;
    uint64_t t0;
    for (int i = 0; i < 4; i++) {
        held[nheld] = sock_connect(&a, 0, 0, err, sizeof(err));
        if (held[nheld] < 0)
            break;
        nheld++;
    }
    t0 = gw_now_ns();
    fd = sock_connect(&a, 200, 0, err, sizeof(err));
    unsigned ms = ms_since(t0);
    CHECK(lfd >= 0 && nheld >= 1 && fd == -ETIMEDOUT && ms >= 190 && ms < 2000,
          "unix: connect to a full backlog times out (%d after %u ms, %d queued: %s)", fd, ms,
          nheld, err);
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    if (lfd >= 0)
        close(lfd);
    sock_unix_release(&own);

    err[0] = '\0';
    CHECK(sock_addr_unix(&a, "/nonexistent-dir/x.sock", 23, err, sizeof(err)) == 0 &&
              sock_listen(&a, 4, NULL, err, sizeof(err)) == -ENOENT && strstr(err, "nonexistent"),
          "unix: an impossible path fails with a reason (%s)", err);
}

struct canceller {
    _Atomic bool *flag;
    int after_ms;
};

static void *cancel_later(void *arg)
{
    struct canceller *c = arg;
    usleep((useconds_t)c->after_ms * 1000);
    atomic_store(c->flag, true);
    return NULL;
}

static void test_tcp(void)
{
    struct sock_addr a;
    char err[256];
    int lfd, port, fd;
    _Atomic bool cancel = false;
    uint64_t t0;
    unsigned ms;

    CHECK(sock_parse_hostport("127.0.0.1:0", SOCK_F_PORT_ANY, &a, err, sizeof(err)) == 0,
          "tcp: address with port 0");
    lfd = sock_listen(&a, 4, NULL, err, sizeof(err));
    CHECK(lfd >= 0, "tcp: listen on 127.0.0.1, any port (%s)", lfd < 0 ? err : "");
    if (lfd < 0)
        return;
    CHECK(fd_cloexec(lfd) && fd_nonblock(lfd), "tcp: listener CLOEXEC and non-blocking");
    port = sock_local_port(lfd);
    CHECK(port > 0 && port <= 65535, "tcp: the kernel picked port %d", port);
    a.port = (uint16_t)port;
    pair_checks(&a, lfd, "tcp v4", true);

    /* accept: timeout, cancel set before, cancel set while waiting */
    t0 = gw_now_ns();
    fd = sock_accept(lfd, 200, NULL, 0);
    ms = ms_since(t0);
    CHECK(fd == -ETIMEDOUT && ms >= 190 && ms < 2000, "accept: -ETIMEDOUT after %u ms", ms);
    atomic_store(&cancel, true);
    CHECK(sock_accept(lfd, -1, &cancel, 0) == -ECANCELED, "accept: a set cancel flag: -ECANCELED");
    atomic_store(&cancel, false);
    struct canceller c = {&cancel, 150};
    pthread_t th;
    if (pthread_create(&th, NULL, cancel_later, &c) == 0) {
        t0 = gw_now_ns();
        fd = sock_accept(lfd, -1, &cancel, 0);
        ms = ms_since(t0);
        pthread_join(th, NULL);
        CHECK(fd == -ECANCELED && ms >= 140 && ms < 1000,
              "accept: a cancel while waiting ends it within a poll period (%u ms)", ms);
    }
    close(lfd);

    /* nobody listens any more */
    err[0] = '\0';
    fd = sock_connect(&a, 1000, 0, err, sizeof(err));
    CHECK(fd == -ECONNREFUSED && strstr(err, "connect to tcp:127.0.0.1:"),
          "tcp: refused, with a reason (%s)", err);
    if (fd >= 0)
        close(fd);
    a.port = 0;
    CHECK(sock_connect(&a, 1000, 0, err, sizeof(err)) == -EINVAL && strstr(err, "1..65535"),
          "tcp: connect to port 0 refused (%s)", err);

    /* IPv6 loopback, where the host has it */
    CHECK(sock_parse_hostport("[::1]:0", SOCK_F_PORT_ANY, &a, err, sizeof(err)) == 0, "v6 addr");
    lfd = sock_listen(&a, 4, NULL, err, sizeof(err));
    if (lfd < 0) {
        printf("skip tcp v6: %s\n", err);
        return;
    }
    port = sock_local_port(lfd);
    a.port = (uint16_t)port;
    CHECK(port > 0, "tcp v6: port %d", port);
    pair_checks(&a, lfd, "tcp v6", true);
    close(lfd);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_parse();
    test_unix();
    test_tcp();
    return board_check_done();
}
