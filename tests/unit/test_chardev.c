/*
 * Character backends: QEMU's Ctrl-A escapes on a muxed console, input
 * buffering, and the unix socket server (one client at a time, output
 * dropped while nobody is connected, the next client after a disconnect).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "board_check.h"
#include "machine/chardev.h"

static size_t take_input(struct chardev *c, char *out, size_t max)
{
    size_t got = 0, len;
    const uint8_t *p;

    while ((p = chardev_input(c, &len)) && len && got < max) {
        if (len > max - got)
            len = max - got;
        memcpy(out + got, p, len);
        got += len;
        chardev_consume(c, len);
    }
    out[got] = '\0';
    return got;
}

static void test_mux(void)
{
    struct chardev_spec spec = {.kind = CHARDEV_NONE};
    char err[200], buf[CHARDEV_INBUF + 1], outbuf[1024];
    struct chardev *c = chardev_open(&spec, err, sizeof(err));
    int pfd[2];
    ssize_t n;

    CHECK(c != NULL && pipe(pfd) == 0, "backend and pipe");
    if (!c)
        return;
    c->out_fd = pfd[1];
    c->mux = true;

    chardev_mux_input(c, (const uint8_t *)"ls\r", 3);
    CHECK(take_input(c, buf, sizeof(buf) - 1) == 3 && !strcmp(buf, "ls\r"), "plain bytes pass");
    chardev_mux_input(c, (const uint8_t *)"a\001\001b", 4);
    CHECK(take_input(c, buf, sizeof(buf) - 1) == 3 && !memcmp(buf, "a\001b", 3),
          "Ctrl-A Ctrl-A sends one Ctrl-A");
    chardev_mux_input(c, (const uint8_t *)"\001", 1);
    chardev_mux_input(c, (const uint8_t *)"h", 1);
    n = read(pfd[0], outbuf, sizeof(outbuf) - 1);
    outbuf[n > 0 ? n : 0] = '\0';
    CHECK(take_input(c, buf, sizeof(buf) - 1) == 0 && strstr(outbuf, "C-a x    exit emulator") &&
              strstr(outbuf, "C-a C-a  sends C-a"),
          "Ctrl-A h prints help (escape split across reads), nothing to the guest");
    CHECK(!strstr(outbuf, "C-a c") && !strstr(outbuf, "C-a s") && !strstr(outbuf, "C-a t") &&
              !strstr(outbuf, "C-a b"),
          "the help lists only what works (no monitor, -snapshot, timestamps, break)");
    chardev_mux_input(c, (const uint8_t *)"\001c\001zq", 5);
    CHECK(take_input(c, buf, sizeof(buf) - 1) == 1 && buf[0] == 'q' && !chardev_quit_requested(c),
          "Ctrl-A c (no monitor) and unknown commands are swallowed");
    CHECK(chardev_mux_input(c, (const uint8_t *)"x\001xy", 4) == 3 && chardev_quit_requested(c),
          "Ctrl-A x quits; input after it is not taken");
    n = read(pfd[0], outbuf, sizeof(outbuf) - 1);
    outbuf[n > 0 ? n : 0] = '\0';
    CHECK(strstr(outbuf, "QEMU: Terminated") != NULL, "quit message as QEMU's");
    take_input(c, buf, sizeof(buf) - 1);

    c->quit = false;
    c->mux = false;
    chardev_mux_input(c, (const uint8_t *)"\001x", 2);
    CHECK(take_input(c, buf, sizeof(buf) - 1) == 2 && !chardev_quit_requested(c),
          "without mux Ctrl-A is data");

    /* The buffer wraps and refuses what does not fit. */
    memset(buf, 'z', sizeof(buf));
    CHECK(chardev_mux_input(c, (const uint8_t *)buf, 100) == 100, "100 bytes");
    chardev_consume(c, 60);
    CHECK(chardev_mux_input(c, (const uint8_t *)buf, CHARDEV_INBUF) == CHARDEV_INBUF - 40,
          "fills up to the buffer size");
    CHECK(take_input(c, buf, sizeof(buf) - 1) == CHARDEV_INBUF, "everything comes out, wrapped");

    close(pfd[0]);
    close(pfd[1]);
    c->out_fd = -1;
    chardev_free(c);
}

static int connect_to(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Service the backend until a poll says nothing more is ready. */
static void pump(struct chardev *c)
{
    for (int i = 0; i < 20; i++) {
        struct pollfd fds[2];
        int n = chardev_pollfds(c, fds, 2);
        if (n == 0 || poll(fds, (nfds_t)n, 20) <= 0)
            return;
        chardev_service(c);
    }
}

static void test_unix(void)
{
    char path[64], err[200], arg[96], buf[64];
    struct chardev_spec spec;
    struct chardev *c;
    int cl, cl2;
    ssize_t n;

    snprintf(path, sizeof(path), "/tmp/godwit-chardev-%d.sock", (int)getpid());
    snprintf(arg, sizeof(arg), "unix:%s,server=on,wait=off", path);
    CHECK(chardev_parse(arg, &spec, err, sizeof(err)) == 0, "parse %s", arg);
    c = chardev_open(&spec, err, sizeof(err));
    CHECK(c != NULL, "listening (%s)", err);
    if (!c)
        return;
    CHECK(chardev_write(c, (const uint8_t *)"lost", 4) == 0, "output without a client: dropped");
    cl = connect_to(path);
    CHECK(cl >= 0, "client connects");
    pump(c);
    CHECK(c->out_fd >= 0, "client accepted");
    CHECK(chardev_write(c, (const uint8_t *)"hello", 5) == 0, "output to the client");
    n = read(cl, buf, sizeof(buf));
    CHECK(n == 5 && !memcmp(buf, "hello", 5), "client reads it (and not the dropped bytes)");
    cl2 = connect_to(path); /* queued in the backlog, not served while cl is connected */
    CHECK(write(cl, "in\001x", 4) == 4, "client types");
    pump(c);
    CHECK(take_input(c, buf, sizeof(buf) - 1) == 4 && !memcmp(buf, "in\001x", 4),
          "input from the client, no escapes on a socket");
    CHECK(chardev_write(c, (const uint8_t *)"one", 3) == 0, "output goes to the first client");
    close(cl);
    pump(c);
    CHECK(c->out_fd >= 0 && cl2 >= 0, "first client gone: the next one is accepted");
    CHECK(chardev_write(c, (const uint8_t *)"two", 3) == 0 && cl2 >= 0 &&
              read(cl2, buf, sizeof(buf)) == 3 && !memcmp(buf, "two", 3),
          "the second client gets output written after it was accepted");
    if (cl2 >= 0)
        close(cl2);
    CHECK(chardev_write(c, (const uint8_t *)"bye", 3) == -EPIPE || c->out_fd < 0,
          "writing to a vanished client: EPIPE, no SIGPIPE");
    pump(c);
    CHECK(c->out_fd < 0, "second client gone");
    chardev_free(c);
    CHECK(access(path, F_OK) < 0, "socket path removed on close");
}

/* The client side (unix:PATH), and what may sit at a server's path. */
static void test_unix_paths(void)
{
    char path[64], err[200], arg[96], buf[8];
    struct chardev_spec spec, cspec;
    struct chardev *srv, *cli, *c;
    int fd;

    snprintf(path, sizeof(path), "/tmp/godwit-chardev-%d.sock", (int)getpid());
    snprintf(arg, sizeof(arg), "unix:%s", path);
    CHECK(chardev_parse(arg, &cspec, err, sizeof(err)) == 0, "parse %s", arg);
    err[0] = '\0';
    cli = chardev_open(&cspec, err, sizeof(err));
    CHECK(!cli && strstr(err, path), "client: nobody listening: refused with a reason (%s)", err);
    chardev_free(cli);

    snprintf(arg, sizeof(arg), "unix:%s,server=on,wait=off", path);
    CHECK(chardev_parse(arg, &spec, err, sizeof(err)) == 0, "parse %s", arg);
    err[0] = '\0';
    srv = chardev_open(&spec, err, sizeof(err));
    cli = srv ? chardev_open(&cspec, err, sizeof(err)) : NULL;
    CHECK(srv && cli, "client connects to a server chardev (%s)", err);
    if (srv && cli) {
        pump(srv);
        CHECK(chardev_write(cli, (const uint8_t *)"abc", 3) == 0, "client writes");
        for (int i = 0; i < 50 && srv->in_len < 3; i++)
            pump(srv);
        CHECK(take_input(srv, buf, sizeof(buf) - 1) == 3 && !memcmp(buf, "abc", 3),
              "the server reads it");
    }
    err[0] = '\0';
    c = srv ? chardev_open(&spec, err, sizeof(err)) : NULL;
    CHECK(srv && !c && strstr(err, "already listening"),
          "a second server on a live socket is refused (%s)", err);
    chardev_free(c);
    chardev_free(cli);
    chardev_free(srv);

    /* A regular file is never removed to make room for a socket. */
    fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd >= 0)
        close(fd);
    err[0] = '\0';
    c = chardev_open(&spec, err, sizeof(err));
    CHECK(!c && strstr(err, "not a socket") && access(path, F_OK) == 0,
          "a regular file at the path is refused and kept (%s)", err);
    chardev_free(c);
    unlink(path);
}

int main(void)
{
    struct chardev_spec spec;
    char err[200];

    CHECK(chardev_parse("stdio", &spec, err, sizeof(err)) == 0 && spec.kind == CHARDEV_STDIO,
          "stdio");
    CHECK(!spec.mux, "stdio: no escapes");
    CHECK(chardev_parse("mon:stdio", &spec, err, sizeof(err)) == 0 && spec.kind == CHARDEV_STDIO &&
              spec.mux,
          "mon:stdio: stdio with the escapes");
    CHECK(chardev_parse("unix:", &spec, err, sizeof(err)) < 0, "unix: without a path");
    CHECK(chardev_parse("unix:/x,wait=maybe", &spec, err, sizeof(err)) < 0, "bad wait value");
    CHECK(chardev_parse("unix:/x", &spec, err, sizeof(err)) == 0 && !spec.server, "unix client");
    CHECK(chardev_parse("tcp:1.2.3.4:5", &spec, err, sizeof(err)) < 0, "tcp refused");
    test_mux();
    test_unix();
    test_unix_paths();
    return board_check_done();
}
