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

/* Monotonic host time in nanoseconds. */
uint64_t gw_now_ns(void);

#endif
