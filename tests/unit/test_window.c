/*
 * Switchover windows (src/godwitd/migrate_window.c): parsing --window,
 * when a window opens (daily ones across midnight, intervals), refusals.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "board_check.h"
#include "godwitd/migrate.h"

static char err[256];

/* Unix ms of today's local HH:MM:SS (plus days). */
static int64_t local_at(int days, int h, int m, int s)
{
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    tm.tm_mday += days;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000;
}

static void test_parse(void)
{
    struct migrate_window w;
    static const char *const bad[] = {"",
                                      "1:00-2:00",
                                      "25:00-01:00",
                                      "10:00-10:00",
                                      "10:00-",
                                      "10:00-11:00x",
                                      "10:60-11:00",
                                      "2026-13-01T00:00Z/2026-12-01T00:00Z",
                                      "2030-01-01T10:00Z/2030-01-01T09:00Z",
                                      "2020-01-01T10:00Z/2020-01-01T11:00Z",
                                      "2030-01-01T10:00+25:00/2030-01-01T11:00Z"};

    CHECK(migrate_window_parse("01:00-03:30", &w, err, sizeof(err)) == 0 && w.daily &&
              w.from_s == 3600 && w.to_s == 3 * 3600 + 1800,
          "01:00-03:30: daily, 3600..12600 s");
    CHECK(migrate_window_parse("23:00:15-01:00", &w, err, sizeof(err)) == 0 &&
              w.from_s == 23 * 3600 + 15 && w.to_s == 3600,
          "23:00:15-01:00: crosses midnight");
    CHECK(migrate_window_parse("2030-01-01T10:00Z/2030-01-01T11:00:30+01:00", &w, err,
                               sizeof(err)) == 0 &&
              !w.daily && w.from_ms == 1893492000000LL && w.to_ms == 1893492030000LL,
          "an interval with Z and an offset: %lld %lld", (long long)w.from_ms, (long long)w.to_ms);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(migrate_window_parse(bad[i], &w, err, sizeof(err)) == -EINVAL && err[0],
              "'%s' refused: %s", bad[i], err);
}

static void test_opens(void)
{
    struct migrate_window w;

    migrate_window_parse("01:00-03:00", &w, err, sizeof(err));
    CHECK(migrate_window_opens(&w, local_at(0, 2, 0, 0)) == 0, "02:00 is inside 01:00-03:00");
    CHECK(migrate_window_opens(&w, local_at(0, 0, 30, 0)) == local_at(0, 1, 0, 0),
          "00:30: it opens at 01:00 today");
    CHECK(migrate_window_opens(&w, local_at(0, 3, 0, 0)) == local_at(1, 1, 0, 0),
          "03:00 (its end): it opens at 01:00 tomorrow");
    migrate_window_parse("23:00-01:00", &w, err, sizeof(err));
    CHECK(migrate_window_opens(&w, local_at(0, 23, 30, 0)) == 0 &&
              migrate_window_opens(&w, local_at(0, 0, 30, 0)) == 0,
          "23:30 and 00:30 are inside 23:00-01:00");
    CHECK(migrate_window_opens(&w, local_at(0, 12, 0, 0)) == local_at(0, 23, 0, 0),
          "noon: it opens at 23:00");
    migrate_window_parse("2030-01-01T10:00Z/2030-01-01T11:00Z", &w, err, sizeof(err));
    CHECK(migrate_window_opens(&w, 1893490000000LL) == 1893492000000LL, "before: its FROM");
    CHECK(migrate_window_opens(&w, 1893493000000LL) == 0, "inside: 0");
    CHECK(migrate_window_opens(&w, 1893496000000LL) == -1, "after: never again");
}

int main(void)
{
    test_parse();
    test_opens();
    return board_check_done();
}
