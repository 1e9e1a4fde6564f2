/*
 * Character backends for serial ports: where a UART's bytes go on the host
 * and where its input comes from.  Host plumbing only; no guest state
 * lives here.
 *
 *   none / null        discard output, no input
 *   stdio              output to fd 1, input from fd 0 (a terminal is put in
 *                      raw mode and restored on every exit path)
 *   mon:stdio          the same with the Ctrl-A escapes (mux below)
 *   file:PATH          output to PATH (created or truncated, as QEMU does)
 *   unix:PATH,server=on,wait=off   a listening unix socket, one client at a
 *                      time; output while no client is connected is dropped,
 *                      as QEMU does (wait=on blocks until the first client);
 *                      a stale socket file is replaced, a live one refused
 *   unix:PATH          connect to a listening socket
 *
 * With mux on (-nographic), stdio input goes through QEMU's escape keys:
 * Ctrl-A x quits, Ctrl-A h prints help, Ctrl-A Ctrl-A sends Ctrl-A, Ctrl-A c
 * (monitor) and the others are ignored; the terminal's signal keys are off
 * so Ctrl-C reaches the guest.
 *
 * Input is polled, never read by a thread of its own: the run loop asks for
 * the fds to wait on (chardev_pollfds), calls chardev_service when one is
 * ready, and drains buffered input into the UART as it has room
 * (chardev_input / chardev_consume).  Single-threaded.
 */
#ifndef GODWIT_MACHINE_CHARDEV_H
#define GODWIT_MACHINE_CHARDEV_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sock.h"
#include "common/util.h"

enum chardev_kind {
    CHARDEV_NONE = 0,
    CHARDEV_STDIO,
    CHARDEV_FILE,
    CHARDEV_UNIX,
};

struct chardev_spec {
    enum chardev_kind kind;
    const char *path; /* CHARDEV_FILE / CHARDEV_UNIX: not owned (points into argv) */
    size_t path_len;  /* CHARDEV_UNIX: the path is path[0..path_len) */
    bool server;      /* unix: listen instead of connect */
    bool wait;        /* unix server: block until the first client connects */
    bool mux;         /* stdio: QEMU's Ctrl-A escapes, signal keys off */
};

#define CHARDEV_INBUF  4096
#define CHARDEV_ESCAPE 0x01 /* Ctrl-A */

struct chardev {
    enum chardev_kind kind;
    int out_fd;    /* -1: discard */
    int in_fd;     /* -1: no input (or it reached EOF) */
    int listen_fd; /* unix server, else -1 */
    int owns_out;  /* close out_fd on free */
    int broken;    /* a write failed for good (e.g. EPIPE): discard from now on */
    bool mux;
    bool escape;                  /* Ctrl-A seen, waiting for the command key */
    bool quit;                    /* Ctrl-A x */
    bool tty_saved;               /* stdin's termios was changed and must be restored */
    struct sock_unix_owner sock;  /* unix server: the socket file, removed on free if ours */
    uint8_t inbuf[CHARDEV_INBUF]; /* input read but not yet taken by the UART */
    size_t in_head, in_len;
};

/*
 * Parse "stdio", "mon:stdio", "none", "null", "file:PATH", "unix:PATH[,server=on|off]
 * [,wait=on|off]" (also QEMU's ",server" / ",nowait" spellings); 0 or
 * -EINVAL with a reason.
 */
int chardev_parse(const char *s, struct chardev_spec *spec, char *err, size_t errlen) gw_must_check;

/* Open a backend; NULL with a reason in err. */
struct chardev *chardev_open(const struct chardev_spec *spec, char *err, size_t errlen);

/* Restore the terminal, close fds, remove a listening socket's path. */
void chardev_free(struct chardev *c);

/*
 * Write everything (retrying on EINTR, waiting out EAGAIN), straight to the
 * fd so a guest that prints and powers off at once loses nothing.  Returns
 * 0 or -errno; after a hard error the backend discards output (a socket
 * client that goes away is dropped and the next one may connect).
 */
int chardev_write(struct chardev *c, const uint8_t *buf, size_t len);

/* Fill fds (up to max) with what to wait on for input; returns the count.
 * Nothing is asked while buffered input waits for the UART (back-pressure). */
int chardev_pollfds(const struct chardev *c, struct pollfd *fds, int max);

/* Accept a client, read available input (never blocks), run escapes. */
void chardev_service(struct chardev *c);

/* Buffered input for the guest: *len bytes at the returned pointer. */
const uint8_t *chardev_input(const struct chardev *c, size_t *len);

/* The guest took n bytes of chardev_input(). */
void chardev_consume(struct chardev *c, size_t n);

/* Ctrl-A x was typed. */
bool chardev_quit_requested(const struct chardev *c);

/*
 * Feed bytes typed on a mux console through the escape handling (exposed
 * for tests; chardev_service calls it).  Bytes meant for the guest are
 * appended to the input buffer (up to its size); returns how many of buf
 * were consumed.
 */
size_t chardev_mux_input(struct chardev *c, const uint8_t *buf, size_t len);

/*
 * Install handlers for fatal signals (SEGV, BUS, ILL, FPE, ABRT, QUIT, ...) and an
 * atexit hook that put the terminal back as it was before any stdio
 * backend made it raw, then let the process die as it would have.  Call
 * once from main before opening backends.
 */
void chardev_install_tty_guard(void);

#endif
