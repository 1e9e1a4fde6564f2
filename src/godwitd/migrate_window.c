/*
 * Switchover windows (migrate.h, docs/holds.md "window"): parsing the
 * --window spec, when it opens, and the wait a job does before its
 * switchover.  Daily windows are local time (localtime_r, so DST moves
 * them with the clock); intervals are absolute.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "godwitd/jobs.h"
#include "godwitd/migrate.h"

/* "HH:MM[:SS]" → seconds after midnight; NULL on error, else the rest. */
static const char *window_clock(const char *s, int *out)
{
    int h, m, sec = 0, n = 0;

    if (sscanf(s, "%2d:%2d%n", &h, &m, &n) != 2 || n != 5)
        return NULL;
    s += n;
    if (*s == ':') {
        if (sscanf(s, ":%2d%n", &sec, &n) != 1 || n != 3)
            return NULL;
        s += n;
    }
    if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 59)
        return NULL;
    *out = h * 3600 + m * 60 + sec;
    return s;
}

/* An ISO 8601 time → unix ms; -1 on error. */
static int64_t window_iso(const char *s, size_t len)
{
    char buf[64];
    struct tm tm;
    const char *rest;
    time_t t;

    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(&tm, 0, sizeof(tm));
    rest = strptime(buf, "%Y-%m-%dT%H:%M", &tm);
    if (!rest)
        return -1;
    if (*rest == ':') {
        int sec, n = 0;
        if (sscanf(rest, ":%2d%n", &sec, &n) != 1 || n != 3 || sec > 60)
            return -1;
        tm.tm_sec = sec;
        rest += n;
    }
    if (!*rest) { /* local time */
        tm.tm_isdst = -1;
        t = mktime(&tm);
        return t == (time_t)-1 ? -1 : (int64_t)t * 1000;
    }
    t = timegm(&tm);
    if (!strcmp(rest, "Z"))
        return (int64_t)t * 1000;
    int oh, om, n = 0;
    if ((rest[0] == '+' || rest[0] == '-') && sscanf(rest + 1, "%2d:%2d%n", &oh, &om, &n) == 2 &&
        n == 5 && !rest[6] && oh <= 23 && om <= 59) {
        int64_t off = (int64_t)(oh * 3600 + om * 60) * (rest[0] == '+' ? 1 : -1);
        return ((int64_t)t - off) * 1000;
    }
    return -1;
}

int migrate_window_parse(const char *spec, struct migrate_window *w, char *err, size_t errlen)
{
    const char *slash = spec ? strchr(spec, '/') : NULL, *rest;

    memset(w, 0, sizeof(*w));
    if (!spec || !spec[0] || strlen(spec) > 80)
        return gw_fail(err, errlen, -EINVAL, "window: HH:MM-HH:MM or FROM/TO (ISO 8601)");
    if (slash) {
        w->from_ms = window_iso(spec, (size_t)(slash - spec));
        w->to_ms = window_iso(slash + 1, strlen(slash + 1));
        if (w->from_ms < 0 || w->to_ms < 0)
            return gw_fail(err, errlen, -EINVAL,
                           "window '%s': FROM/TO, each YYYY-MM-DDTHH:MM[:SS] with Z or +HH:MM "
                           "(else local time)",
                           spec);
        if (w->to_ms <= w->from_ms)
            return gw_fail(err, errlen, -EINVAL, "window '%s' ends before it begins", spec);
        if (w->to_ms <= store_now_ms())
            return gw_fail(err, errlen, -EINVAL, "window '%s' is over already", spec);
        return 0;
    }
    w->daily = true;
    rest = window_clock(spec, &w->from_s);
    if (rest && *rest == '-')
        rest = window_clock(rest + 1, &w->to_s);
    else
        rest = NULL;
    if (!rest || *rest)
        return gw_fail(err, errlen, -EINVAL,
                       "window '%s': HH:MM[:SS]-HH:MM[:SS] (daily, local time) or FROM/TO", spec);
    if (w->from_s == w->to_s)
        return gw_fail(err, errlen, -EINVAL, "window '%s' is empty", spec);
    return 0;
}

int64_t migrate_window_opens(const struct migrate_window *w, int64_t now_ms)
{
    if (!w->daily) {
        if (now_ms >= w->to_ms)
            return -1;
        return now_ms >= w->from_ms ? 0 : w->from_ms;
    }
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    int now_s = tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    bool inside = w->from_s < w->to_s ? now_s >= w->from_s && now_s < w->to_s
                                      : now_s >= w->from_s || now_s < w->to_s;
    if (inside)
        return 0;
    /* today's opening, or tomorrow's */
    tm.tm_hour = w->from_s / 3600;
    tm.tm_min = w->from_s / 60 % 60;
    tm.tm_sec = w->from_s % 60;
    tm.tm_isdst = -1;
    time_t open = mktime(&tm);
    if ((int64_t)open * 1000 <= now_ms) {
        tm.tm_mday++;
        tm.tm_isdst = -1;
        open = mktime(&tm);
    }
    return (int64_t)open * 1000;
}

void migrate_window_reason(const char *spec, int64_t open_ms, int64_t now_ms, char *out, size_t len)
{
    char when[32];
    time_t t = (time_t)(open_ms / 1000);
    struct tm tm;
    long long in_s = (open_ms - now_ms) / 1000;

    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out, len,
             "switches over only inside the window %s: it opens %s (in %lld h %lld min %lld s)",
             spec, when, in_s / 3600, in_s / 60 % 60, in_s % 60);
}

int migrate_window_wait(struct job *j, const char *spec, char *err, size_t errlen)
{
    struct migrate_window w;
    bool held = false;
    int ret;

    if (!spec || !spec[0])
        return 0;
    ret = migrate_window_parse(spec, &w, err, errlen);
    if (ret < 0 && !w.daily && w.to_ms > 0 && w.to_ms <= store_now_ms())
        return gw_fail(err, errlen, -ETIME, "the window %s closed before the switchover", spec);
    if (ret < 0)
        return ret;
    for (;;) {
        int64_t now = store_now_ms(), open = migrate_window_opens(&w, now);
        if (open == 0) {
            if (held)
                job_lift_own(j, "window", "the window opened");
            return 0;
        }
        if (open < 0)
            return gw_fail(err, errlen, -ETIME, "the window %s closed before the switchover", spec);
        if (!held) {
            char reason[STORE_TEXT_MAX];
            migrate_window_reason(spec, open, now, reason, sizeof(reason));
            (void)job_hold_own(j, "window", reason, NULL);
            held = true;
        }
        if (job_cancelled(j))
            return gw_fail(err, errlen, -ECANCELED, "cancelled while waiting for its window");
        if (job_stopping(j))
            return gw_fail(err, errlen, -ESHUTDOWN, "godwitd stopped");
        usleep(200 * 1000);
    }
}
