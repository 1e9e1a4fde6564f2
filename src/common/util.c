/* Shared helpers: logging, size parsing, host clock. */
#include "common/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *gw_prog = "godwit";

void gw_log_set_prog(const char *name)
{
    gw_prog = name;
}

void gw_vlog(const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    fprintf(stderr, "%s: %s\n", gw_prog, buf);
}

void gw_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gw_vlog(fmt, ap);
    va_end(ap);
}

int gw_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    switch (*end) {
    case '\0': break;
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    case 't':
    case 'T':
        shift = 40;
        end++;
        break;
    default: return -EINVAL;
    }
    if (*end == 'B' || *end == 'b' || *end == 'i')
        end++;
    if (*end != '\0')
        return -EINVAL;
    if (shift && v > (UINT64_MAX >> shift))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

uint64_t gw_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int gw_fail(char *err, size_t errlen, int ret, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return ret;
}

uint64_t gw_deadline_ns(int timeout_ms)
{
    return timeout_ms < 0 ? UINT64_MAX : gw_now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

int gw_deadline_left_ms(uint64_t deadline)
{
    uint64_t now = gw_now_ns(), ms;

    if (deadline == UINT64_MAX)
        return -1;
    if (now >= deadline)
        return 0;
    ms = (deadline - now + 999999) / 1000000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

int gw_poll_until(struct pollfd *fds, unsigned nfds, uint64_t deadline)
{
    for (;;) {
        int r = poll(fds, nfds, gw_deadline_left_ms(deadline));

        if (r > 0)
            return r;
        if (r == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static const char *gw_file_kind(mode_t mode)
{
    if (S_ISFIFO(mode))
        return "a named pipe";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a file";
}

int gw_open_checked(const char *path, int flags, mode_t mode, unsigned allow, char *err,
                    size_t errlen)
{
    struct stat st;
    int fd, fl, ret;

    fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode);
    if (fd < 0) {
        ret = -errno;
        snprintf(err, errlen, "cannot open '%s': %s", path,
                 ret == -ENXIO ? "a named pipe with no reader" : strerror(-ret));
        return ret;
    }
    if (fstat(fd, &st) < 0) {
        ret = -errno;
        snprintf(err, errlen, "cannot stat '%s': %s", path, strerror(-ret));
        goto fail;
    }
    if (!((S_ISREG(st.st_mode) && (allow & GW_OPEN_REG)) ||
          (S_ISCHR(st.st_mode) && (allow & GW_OPEN_CHR)) ||
          (S_ISBLK(st.st_mode) && (allow & GW_OPEN_BLK)) ||
          (S_ISFIFO(st.st_mode) && (allow & GW_OPEN_FIFO)))) {
        ret = -EINVAL;
        snprintf(err, errlen, "'%s' is not a regular file (%s)", path, gw_file_kind(st.st_mode));
        goto fail;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        ret = -errno;
        snprintf(err, errlen, "cannot use '%s': %s", path, strerror(-ret));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return ret;
}
