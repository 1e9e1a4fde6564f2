/*
 * Character backends for serial ports: where a UART's bytes go on the host
 * (later also where its input comes from).  Host plumbing only; no guest
 * state lives here.
 *
 *   none / null   discard output
 *   stdio         the process's stdout (fd 1), written through unbuffered
 *   file:PATH     PATH created or truncated, as QEMU does
 */
#ifndef GODWIT_MACHINE_CHARDEV_H
#define GODWIT_MACHINE_CHARDEV_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

enum chardev_kind {
    CHARDEV_NONE = 0,
    CHARDEV_STDIO,
    CHARDEV_FILE,
};

struct chardev_spec {
    enum chardev_kind kind;
    const char *path; /* CHARDEV_FILE: not owned (points into argv) */
};

struct chardev {
    enum chardev_kind kind;
    int fd;      /* -1 for CHARDEV_NONE */
    int owns_fd; /* close fd on free */
    int broken;  /* a write failed for good (e.g. EPIPE): discard from now on */
};

/* Parse "stdio", "none", "null" or "file:PATH"; 0 or -EINVAL with a reason. */
int chardev_parse(const char *s, struct chardev_spec *spec, char *err, size_t errlen) gw_must_check;

/* Open a backend; NULL with a reason in err. */
struct chardev *chardev_open(const struct chardev_spec *spec, char *err, size_t errlen);
void chardev_free(struct chardev *c);

/*
 * Write everything (retrying on EINTR and waiting out EAGAIN), straight to
 * the fd so a guest that prints and powers off at once loses nothing.
 * Returns 0 or -errno; after a hard error the backend discards output.
 */
int chardev_write(struct chardev *c, const uint8_t *buf, size_t len);

#endif
