/*
 * Small shared helpers: compiler hints, checked-result annotation, logging.
 * No state lives here; logging writes to stderr with a program-name prefix
 * set once by main (the only write-once global, never mutated afterwards).
 */
#ifndef GODWIT_COMMON_UTIL_H
#define GODWIT_COMMON_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define gw_likely(x)     __builtin_expect(!!(x), 1)
#define gw_unlikely(x)   __builtin_expect(!!(x), 0)
#define gw_must_check    __attribute__((warn_unused_result))
#define gw_printf(a, b)  __attribute__((format(printf, a, b)))
#define GW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Set the prefix used by gw_log (e.g. "godwit-vm"); call once from main. */
void gw_log_set_prog(const char *name);

/* Print "prog: message\n" to stderr. */
void gw_log(const char *fmt, ...) gw_printf(1, 2);
void gw_vlog(const char *fmt, va_list ap) gw_printf(1, 0);

/*
 * Parse a size such as "128M", "1G", "4096", "64K" (binary units).
 * Returns 0 and stores bytes, or -EINVAL.
 */
int gw_parse_size(const char *s, uint64_t *out) gw_must_check;

/* Little-endian fields of wire and file formats: n (1..8) bytes at p. */
static inline void gw_put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t gw_get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The value of a hex digit (either case), or -1. */
static inline int gw_hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Write a one-line reason into err (when err and errlen) and return ret:
 *     return gw_fail(err, errlen, -EINVAL, "bad port '%s'", s); */
int gw_fail(char *err, size_t errlen, int ret, const char *fmt, ...) gw_printf(4, 5);

/* Monotonic host time in nanoseconds. */
uint64_t gw_now_ns(void);

/* A deadline timeout_ms from now in gw_now_ns() time (timeout_ms < 0:
 * none, UINT64_MAX), and the milliseconds left of it for poll(): -1 without
 * a deadline, 0 once it passed, rounded up so that a poll never returns
 * just before the deadline. */
uint64_t gw_deadline_ns(int timeout_ms);
int gw_deadline_left_ms(uint64_t deadline);
/* poll() until something is ready or the deadline passes (EINTR retried):
 * > 0 ready, -ETIMEDOUT, or -errno. */
struct pollfd;
int gw_poll_until(struct pollfd *fds, unsigned nfds, uint64_t deadline);

/*
 * Open a file named on a command line or in a request without ever
 * blocking in open(): a named pipe with no peer would hang there for good,
 * deaf to SIGTERM.  Opens with O_NONBLOCK | O_CLOEXEC added to flags,
 * checks the file's type against allow (GW_OPEN_*), then clears
 * O_NONBLOCK.  Returns the fd, or -errno with "cannot open 'PATH': ..." or
 * "'PATH' is not a regular file (a named pipe)" in err.  For writing, a
 * named pipe with no reader fails at once (-ENXIO) where allowed at all.
 */
enum {
    GW_OPEN_REG = 1u << 0,  /* regular files */
    GW_OPEN_CHR = 1u << 1,  /* character devices (/dev/urandom) */
    GW_OPEN_BLK = 1u << 2,  /* block devices */
    GW_OPEN_FIFO = 1u << 3, /* named pipes */
};
int gw_open_checked(const char *path, int flags, mode_t mode, unsigned allow, char *err,
                    size_t errlen) gw_must_check;

#endif
