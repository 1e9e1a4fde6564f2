/*
 * Character backends; see chardev.h.
 *
 * The one piece of process-wide state: the terminal settings saved before
 * stdin was made raw, kept in a static so a fatal-signal handler (which
 * gets no context pointer) can put them back.  Written once when a stdio
 * backend opens, cleared when it closes; a terminal is a process-wide
 * resource, so there is nothing per-machine about it.
 */
#include "machine/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#define CHARDEV_CONNECT_MS 5000 /* unix:PATH (client): give up connecting after this */

static struct termios chardev_saved_tty;
static volatile sig_atomic_t chardev_tty_dirty;

static void chardev_tty_restore(void)
{
    if (chardev_tty_dirty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &chardev_saved_tty);
        chardev_tty_dirty = 0;
    }
}

static void chardev_fatal_signal(int sig)
{
    /* async-signal-safe: tcsetattr, then die of the same signal (SA_RESETHAND). */
    chardev_tty_restore();
    raise(sig);
}

void chardev_install_tty_guard(void)
{
    /* Every signal whose default action ends the process and that main
     * does not route to its signal thread (INT, TERM, HUP stop the loop
     * cleanly instead; PIPE is ignored). */
    static const int sigs[] = {SIGSEGV, SIGBUS,  SIGILL,  SIGFPE,  SIGABRT, SIGQUIT, SIGTRAP,
                               SIGSYS,  SIGXCPU, SIGXFSZ, SIGUSR1, SIGUSR2, SIGALRM};
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = chardev_fatal_signal;
    sa.sa_flags = (int)SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < GW_ARRAY_SIZE(sigs); i++)
        sigaction(sigs[i], &sa, NULL);
    atexit(chardev_tty_restore);
}

/* ---- parsing ------------------------------------------------------------ */

static int chardev_bool_opt(const char *v, size_t n, bool *out)
{
    if ((n == 2 && !strncmp(v, "on", 2)) || (n == 4 && !strncmp(v, "true", 4)) ||
        (n == 3 && !strncmp(v, "yes", 3)))
        *out = true;
    else if ((n == 3 && !strncmp(v, "off", 3)) || (n == 5 && !strncmp(v, "false", 5)) ||
             (n == 2 && !strncmp(v, "no", 2)))
        *out = false;
    else
        return -EINVAL;
    return 0;
}

static int chardev_parse_unix(const char *s, struct chardev_spec *spec, char *err, size_t errlen)
{
    const char *p = strchr(s, ',');

    spec->kind = CHARDEV_UNIX;
    spec->path = s;
    spec->path_len = p ? (size_t)(p - s) : strlen(s);
    spec->wait = true; /* QEMU's default for a server */
    if (spec->path_len == 0) {
        snprintf(err, errlen, "'unix:' needs a path");
        return -EINVAL;
    }
    if (spec->path_len >= SOCK_UNIX_PATH_MAX) {
        snprintf(err, errlen, "unix socket path too long");
        return -EINVAL;
    }
    while (p && *p == ',') {
        const char *opt = p + 1, *end = strchr(opt, ','), *eq;
        size_t n = end ? (size_t)(end - opt) : strlen(opt);
        bool v = true;
        eq = memchr(opt, '=', n);
        size_t klen = eq ? (size_t)(eq - opt) : n;
        if (eq && chardev_bool_opt(eq + 1, n - klen - 1, &v) < 0) {
            snprintf(err, errlen, "unix: bad value in '%.*s' (use on or off)", (int)n, opt);
            return -EINVAL;
        }
        if (klen == 6 && !strncmp(opt, "server", 6)) {
            spec->server = v;
        } else if (klen == 4 && !strncmp(opt, "wait", 4)) {
            spec->wait = v;
        } else if (!eq && n == 6 && !strncmp(opt, "nowait", 6)) {
            spec->wait = false;
        } else {
            snprintf(err, errlen, "unix: unsupported option '%.*s'", (int)n, opt);
            return -EINVAL;
        }
        p = end;
    }
    return 0;
}

int chardev_parse(const char *s, struct chardev_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof(*spec));
    if (!strcmp(s, "stdio")) {
        spec->kind = CHARDEV_STDIO;
    } else if (!strcmp(s, "mon:stdio")) {
        /* QEMU's muxed stdio (what -nographic uses): the Ctrl-A escapes. */
        spec->kind = CHARDEV_STDIO;
        spec->mux = true;
    } else if (!strcmp(s, "none") || !strcmp(s, "null")) {
        spec->kind = CHARDEV_NONE;
    } else if (!strncmp(s, "file:", 5)) {
        if (s[5] == '\0') {
            snprintf(err, errlen, "'file:' needs a path");
            return -EINVAL;
        }
        spec->kind = CHARDEV_FILE;
        spec->path = s + 5;
    } else if (!strncmp(s, "unix:", 5)) {
        return chardev_parse_unix(s + 5, spec, err, errlen);
    } else {
        snprintf(err, errlen,
                 "unsupported character device '%s' (use stdio, mon:stdio, file:PATH, "
                 "unix:PATH,server=on,wait=off or none)",
                 s);
        return -EINVAL;
    }
    return 0;
}

/* ---- opening and closing ------------------------------------------------ */

/* QEMU's stdio settings: raw input, output post-processing kept; the
 * signal keys stay on unless the console is muxed (-nographic). */
static void chardev_stdio_raw(struct chardev *c, bool mux)
{
    struct termios t;

    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &t) < 0)
        return;
    chardev_saved_tty = t;
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag |= OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | IEXTEN);
    if (mux)
        t.c_lflag &= ~(tcflag_t)ISIG;
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    chardev_tty_dirty = 1;
    c->tty_saved = true;
    tcsetattr(STDIN_FILENO, TCSANOW, &t);
}

static int chardev_open_unix(struct chardev *c, const struct chardev_spec *spec, char *err,
                             size_t errlen)
{
    struct sock_addr addr;
    int fd, ret;

    ret = sock_addr_unix(&addr, spec->path, spec->path_len, err, errlen);
    if (ret < 0)
        return ret;
    if (!spec->server) {
        fd = sock_connect(&addr, CHARDEV_CONNECT_MS, SOCK_F_NONBLOCK, err, errlen);
        if (fd < 0)
            return fd;
        c->in_fd = c->out_fd = fd;
        return 0;
    }
    fd = sock_listen(&addr, 1, &c->sock, err, errlen);
    if (fd < 0)
        return fd;
    c->listen_fd = fd;
    if (spec->wait) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        sigset_t none;
        int cl = -1;
        /* main blocks INT/TERM/HUP for its signal thread, which is not
         * running yet: wait with them unblocked so they still end us. */
        sigemptyset(&none);
        fprintf(stderr, "godwit-vm: waiting for connection on: unix:%s,server=on\n", c->sock.path);
        while (cl < 0) {
            if (ppoll(&p, 1, NULL, &none) < 0 && errno != EINTR)
                break;
            cl = sock_accept(fd, 0, NULL, SOCK_F_NONBLOCK);
        }
        if (cl >= 0)
            c->in_fd = c->out_fd = cl;
    }
    return 0;
}

struct chardev *chardev_open(const struct chardev_spec *spec, char *err, size_t errlen)
{
    struct chardev *c = calloc(1, sizeof(*c));

    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->kind = spec->kind;
    c->out_fd = c->in_fd = c->listen_fd = -1;
    switch (spec->kind) {
    case CHARDEV_NONE: break;
    case CHARDEV_STDIO:
        c->out_fd = STDOUT_FILENO;
        c->in_fd = STDIN_FILENO;
        c->mux = spec->mux;
        chardev_stdio_raw(c, spec->mux);
        break;
    case CHARDEV_FILE:
        /* a named pipe must have its reader already: never block in open() */
        c->out_fd = gw_open_checked(spec->path, O_WRONLY | O_CREAT | O_TRUNC, 0666,
                                    GW_OPEN_REG | GW_OPEN_CHR | GW_OPEN_FIFO, err, errlen);
        if (c->out_fd < 0) {
            free(c);
            return NULL;
        }
        c->owns_out = 1;
        break;
    case CHARDEV_UNIX:
        if (chardev_open_unix(c, spec, err, errlen) < 0) {
            free(c);
            return NULL;
        }
        c->owns_out = 1;
        break;
    }
    return c;
}

/* Drop the unix client (it went away); the listener takes the next one. */
static void chardev_drop_client(struct chardev *c)
{
    if (c->kind != CHARDEV_UNIX || c->out_fd < 0)
        return;
    close(c->out_fd);
    c->out_fd = c->in_fd = -1;
    c->in_head = c->in_len = 0;
    if (c->listen_fd < 0)
        c->broken = 1; /* a client socket that lost its server */
}

void chardev_free(struct chardev *c)
{
    if (!c)
        return;
    if (c->tty_saved)
        chardev_tty_restore();
    if (c->owns_out && c->out_fd >= 0)
        close(c->out_fd);
    if (c->listen_fd >= 0) {
        close(c->listen_fd);
        sock_unix_release(&c->sock);
    }
    free(c);
}

/* ---- output ------------------------------------------------------------- */

int chardev_write(struct chardev *c, const uint8_t *buf, size_t len)
{
    size_t done = 0;
    int stalls = 0;

    if (c->out_fd < 0 || c->broken)
        return 0;
    while (done < len) {
        /* Sockets: no SIGPIPE when the client has gone (we see EPIPE). */
        ssize_t n = c->kind == CHARDEV_UNIX ? send(c->out_fd, buf + done, len - done, MSG_NOSIGNAL)
                                            : write(c->out_fd, buf + done, len - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = c->out_fd, .events = POLLOUT};
            /* A socket client that stops reading must not hang the guest:
             * after a second of no progress its output is dropped. */
            if (c->kind == CHARDEV_UNIX && ++stalls > 10)
                return -EAGAIN;
            (void)poll(&p, 1, c->kind == CHARDEV_UNIX ? 100 : -1);
            continue;
        }
        if (c->kind == CHARDEV_UNIX) {
            chardev_drop_client(c);
            return n < 0 ? -errno : -EIO;
        }
        /* EPIPE, EIO, ENOSPC...: the guest cannot be told; drop output from now on. */
        c->broken = 1;
        return n < 0 ? -errno : -EIO;
    }
    return 0;
}

/* ---- input -------------------------------------------------------------- */

int chardev_pollfds(const struct chardev *c, struct pollfd *fds, int max)
{
    int n = 0;

    if (c->listen_fd >= 0 && c->out_fd < 0 && n < max)
        fds[n++] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
    if (c->in_fd >= 0 && c->in_len == 0 && n < max)
        fds[n++] = (struct pollfd){.fd = c->in_fd, .events = POLLIN};
    return n;
}

static void chardev_push(struct chardev *c, uint8_t ch)
{
    if (c->in_len < CHARDEV_INBUF)
        c->inbuf[(c->in_head + c->in_len++) % CHARDEV_INBUF] = ch;
}

/* QEMU's list, less what godwit does not do (s, t, b; c: there is no monitor). */
static const char chardev_help[] = "\r\n"
                                   "C-a h    print this help\r\n"
                                   "C-a x    exit emulator\r\n"
                                   "C-a C-a  sends C-a\r\n";

size_t chardev_mux_input(struct chardev *c, const uint8_t *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len && c->in_len < CHARDEV_INBUF && !c->quit; i++) {
        uint8_t ch = buf[i];
        if (!c->mux) {
            chardev_push(c, ch);
        } else if (c->escape) {
            c->escape = false;
            switch (ch) {
            case CHARDEV_ESCAPE: chardev_push(c, ch); break;
            case 'x':
                (void)chardev_write(c, (const uint8_t *)"QEMU: Terminated\r\n", 18);
                c->quit = true;
                break;
            case 'h':
            case '?':
                (void)chardev_write(c, (const uint8_t *)chardev_help, sizeof(chardev_help) - 1);
                break;
            default: break; /* c (no monitor), s, t, b and others: swallowed */
            }
        } else if (ch == CHARDEV_ESCAPE) {
            c->escape = true;
        } else {
            chardev_push(c, ch);
        }
    }
    return i;
}

void chardev_service(struct chardev *c)
{
    uint8_t buf[CHARDEV_INBUF];
    ssize_t n;

    if (c->listen_fd >= 0 && c->out_fd < 0) {
        int cl = sock_accept(c->listen_fd, 0, NULL, SOCK_F_NONBLOCK);
        if (cl >= 0) {
            c->in_fd = c->out_fd = cl;
            c->broken = 0;
        }
    }
    if (c->in_fd < 0 || c->in_len > 0)
        return;
    n = read(c->in_fd, buf, sizeof(buf));
    if (n > 0) {
        (void)chardev_mux_input(c, buf, (size_t)n);
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        /* EOF: a socket client left (the next may come); stdin stops here. */
        if (c->kind == CHARDEV_UNIX)
            chardev_drop_client(c);
        else
            c->in_fd = -1;
    }
}

const uint8_t *chardev_input(const struct chardev *c, size_t *len)
{
    /* Contiguous part only; the rest comes after chardev_consume. */
    size_t first = CHARDEV_INBUF - c->in_head;

    *len = c->in_len < first ? c->in_len : first;
    return c->inbuf + c->in_head;
}

void chardev_consume(struct chardev *c, size_t n)
{
    if (n > c->in_len)
        n = c->in_len;
    c->in_head = (c->in_head + n) % CHARDEV_INBUF;
    c->in_len -= n;
    if (c->in_len == 0)
        c->in_head = 0;
}

bool chardev_quit_requested(const struct chardev *c)
{
    return c->quit;
}
