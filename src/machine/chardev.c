/* Character backends; see chardev.h. */
#include "machine/chardev.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int chardev_parse(const char *s, struct chardev_spec *spec, char *err, size_t errlen)
{
    memset(spec, 0, sizeof(*spec));
    if (!strcmp(s, "stdio")) {
        spec->kind = CHARDEV_STDIO;
    } else if (!strcmp(s, "none") || !strcmp(s, "null")) {
        spec->kind = CHARDEV_NONE;
    } else if (!strncmp(s, "file:", 5)) {
        if (s[5] == '\0') {
            snprintf(err, errlen, "'file:' needs a path");
            return -EINVAL;
        }
        spec->kind = CHARDEV_FILE;
        spec->path = s + 5;
    } else {
        snprintf(err, errlen, "unsupported character device '%s' (use stdio, file:PATH or none)",
                 s);
        return -EINVAL;
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
    c->fd = -1;
    switch (spec->kind) {
    case CHARDEV_NONE: break;
    case CHARDEV_STDIO: c->fd = STDOUT_FILENO; break;
    case CHARDEV_FILE:
        c->fd = open(spec->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (c->fd < 0) {
            snprintf(err, errlen, "cannot open '%s': %s", spec->path, strerror(errno));
            free(c);
            return NULL;
        }
        c->owns_fd = 1;
        break;
    }
    return c;
}

void chardev_free(struct chardev *c)
{
    if (!c)
        return;
    if (c->owns_fd)
        close(c->fd);
    free(c);
}

int chardev_write(struct chardev *c, const uint8_t *buf, size_t len)
{
    size_t done = 0;

    if (c->fd < 0 || c->broken)
        return 0;
    while (done < len) {
        ssize_t n = write(c->fd, buf + done, len - done);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            (void)poll(&p, 1, -1);
            continue;
        }
        /* EPIPE, EIO, ENOSPC...: the guest cannot be told; drop output from now on. */
        c->broken = 1;
        return n < 0 ? -errno : -EIO;
    }
    return 0;
}
