/*
 * The job progress display (progress.h).  Everything it shows comes from
 * the job object the daemon returns; it keeps only what makes the display
 * steady between polls (the percentage shown, the last phase printed).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/progress.h"

#define PROGRESS_BAR  20  /* characters inside [] */
#define PROGRESS_LINE 256 /* the live line, before fitting the terminal */
#define PROGRESS_PAGE 4096

static volatile sig_atomic_t progress_interrupted;

static void progress_sigint(int sig)
{
    (void)sig;
    progress_interrupted = 1;
}

void cli_progress_init(struct cli_progress *p, FILE *out, bool live)
{
    memset(p, 0, sizeof(*p));
    p->out = out;
    p->live = live;
    p->shown = -1;
}

/* A number from an object (integer or real), or -1. */
static double num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_number(v) ? json_number_value(v) : -1;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double cli_progress_percent(struct cli_progress *p, const json_t *figures, bool done)
{
    const json_t *ram = json_object_get(figures, "ram");
    const json_t *xf = json_object_get(figures, "transfer");
    double t = num(ram, "transferred"), r = num(ram, "remaining"), m = num(ram, "total");
    double raw = -1, gap;

    if (done) {
        p->shown = 100;
        return p->shown;
    }
    /* a cold or suspended migration: the share of the files' data the
     * destination verified */
    if (xf) {
        t = num(xf, "done");
        m = num(xf, "total");
        r = m >= 0 && t >= 0 ? m - t : -1;
    }
    /* the share of RAM the destination holds: the first pass walks it all
     * (zero pages cost nothing to send but count as done), later passes
     * leave only the dirty set in remaining; bytes sent alone would read
     * 20 % for a mostly empty guest that is nearly done */
    /* disks in the stream: their share weighs what they move (the plan's
     * allocated bytes), the RAM's its size */
    const json_t *disk = json_object_get(figures, "disk");
    double dt = num(disk, "total"), dr = num(disk, "remaining");
    double dw = num(json_object_get(figures, "plan"), "disk_bytes");
    if (dw <= 0)
        dw = dt;
    if (!xf && dt > 0 && dr >= 0 && dr <= dt && m > 0 && r >= 0 && r <= m)
        raw = 100.0 * ((m - r) + dw * (dt - dr) / dt) / (m + dw);
    else if (m > 0 && r >= 0 && r <= m)
        raw = 100.0 * (m - r) / m;
    else if (t >= 0 && r >= 0 && t + r > 0)
        raw = 100.0 * t / (t + r);
    else if (t >= 0 && m > 0)
        raw = 100.0 * t / m;
    if (raw < 0)
        return p->shown;
    if (raw > 99)
        raw = 99; /* 100 is for a job that is done */
    if (p->shown < 0)
        p->shown = 0;
    gap = raw - p->shown;
    if (gap <= 0)
        return p->shown;
    if (gap <= CLI_PROGRESS_STEP)
        p->shown = raw;
    else
        p->shown += gap / 4 > CLI_PROGRESS_STEP ? gap / 4 : CLI_PROGRESS_STEP;
    return p->shown;
}

const char *cli_progress_stream_words(const json_t *figures)
{
    const char *st = json_string_value(json_object_get(figures, "status"));

    if (!st)
        return NULL;
    if (!strcmp(st, "x-godwit-precopy-paused"))
        return "pre-copy paused";
    if (!strcmp(st, "x-godwit-precopy-recover"))
        return "reconnecting";
    if (!strcmp(st, "x-godwit-held-converged"))
        return "held-converged: destination kept in sync";
    if (!strcmp(st, "active") && json_is_true(json_object_get(figures, "x-godwit-mirror")))
        return "mirroring";
    if (!strcmp(st, "postcopy-active"))
        return "post-copy: the VM runs there, its missing pages follow";
    return NULL;
}

/* Milliseconds the job has run (to its end, or now). */
static long long job_elapsed_ms(const json_t *job)
{
    double start = num(job, "started"), end = num(job, "ended");

    if (start <= 0)
        start = num(job, "created");
    if (start <= 0)
        return -1;
    if (end <= 0)
        end = (double)now_ms();
    return end > start ? (long long)(end - start) : 0;
}

static int term_width(FILE *f)
{
    struct winsize ws;

    if (fileno(f) < 0) /* a memory stream (tests) */
        return PROGRESS_LINE - 1;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
        return ws.ws_col < PROGRESS_LINE ? ws.ws_col : PROGRESS_LINE - 1;
    return 80;
}

/* Append to a line buffer, bounded. */
static void line_add(char *line, size_t len, const char *fmt, ...) gw_printf(3, 4);
static void line_add(char *line, size_t len, const char *fmt, ...)
{
    size_t used = strlen(line);
    va_list ap;

    if (used + 1 >= len)
        return;
    va_start(ap, fmt);
    vsnprintf(line + used, len - used, fmt, ap);
    va_end(ap);
}

/* Append "  text" to the live line if it still fits in width columns;
 * once one does not (*room false), the less important rest stays out too. */
static void line_field(char *line, size_t len, int width, bool *room, const char *fmt, ...)
    gw_printf(5, 6);
static void line_field(char *line, size_t len, int width, bool *room, const char *fmt, ...)
{
    char f[96];
    va_list ap;

    if (!*room)
        return;
    va_start(ap, fmt);
    vsnprintf(f, sizeof(f), fmt, ap);
    va_end(ap);
    if ((int)(strlen(line) + 2 + strlen(f)) <= width)
        line_add(line, len, "  %s", f);
    else
        *room = false;
}

/* The live line for one poll, at most width columns: the fields in order
 * of importance, the last ones left out on a narrow terminal. */
static void progress_line(struct cli_progress *p, const json_t *job, char *line, size_t len,
                          int width)
{
    const char *phase = json_string_value(json_object_get(job, "phase"));
    const char *status = json_string_value(json_object_get(job, "status"));
    const json_t *fig = json_object_get(job, "figures");
    const json_t *ram = json_object_get(fig, "ram");
    double pct = cli_progress_percent(p, fig, status && !strcmp(status, "done"));
    double t = num(ram, "transferred"), m = num(ram, "total"), mbps = num(ram, "mbps");
    double dirty = num(ram, "dirty-pages-rate"), page = num(ram, "page-size");
    double downtime = num(fig, "expected-downtime"), rounds = num(ram, "dirty-sync-count");
    const json_t *xf = json_object_get(fig, "transfer");
    long long el = job_elapsed_ms(job);
    char a[32], b[32];
    bool room = true;

    if (xf) { /* cold, suspended: the files */
        t = num(xf, "done");
        m = num(xf, "total");
        mbps = el > 0 && num(xf, "wire") >= 0 ? num(xf, "wire") * 8 / 1000.0 / (double)el : -1;
    }
    const char *words = cli_progress_stream_words(fig);
    bool say_status = status && strcmp(status, "running") && (!phase || strcmp(status, phase));

    line[0] = '\0';
    line_add(line, len, "%-9s", phase && phase[0] ? phase : "-");
    if (say_status || words)
        line_add(line, len, " (%s%s%s)", say_status ? status : "", say_status && words ? ", " : "",
                 words ? words : "");
    if (pct >= 0) {
        int fill = (int)(pct * PROGRESS_BAR / 100 + 0.5);

        line_add(line, len, " [");
        for (int i = 0; i < PROGRESS_BAR; i++)
            line_add(line, len, "%c", i < fill ? '#' : '.');
        line_add(line, len, "] %3.0f%%", pct);
    }
    if (xf && t >= 0 && m >= 0)
        line_field(line, len, width, &room, "%s of %s", cli_fmt_bytes(a, sizeof(a), t),
                   cli_fmt_bytes(b, sizeof(b), m));
    else if (t >= 0 && m > 0)
        line_field(line, len, width, &room, "%s sent, RAM %s", cli_fmt_bytes(a, sizeof(a), t),
                   cli_fmt_bytes(b, sizeof(b), m));
    else if (t >= 0)
        line_field(line, len, width, &room, "%s sent", cli_fmt_bytes(a, sizeof(a), t));
    const json_t *disk = json_object_get(fig, "disk");
    double dt = num(disk, "total"), dr = num(disk, "remaining"), dx = num(disk, "transferred");
    if (!xf && dt > 0 && dx >= 0) /* disks in the stream: sent, and what is left */
        line_field(line, len, width, &room, "disk %s sent, %s left",
                   cli_fmt_bytes(a, sizeof(a), dx), cli_fmt_bytes(b, sizeof(b), dr >= 0 ? dr : 0));
    if (mbps >= 0) /* QEMU's mbps is megabits per second */
        line_field(line, len, width, &room, "%.1f MB/s", mbps / 8);
    if (el >= 0)
        line_field(line, len, width, &room, "%s", cli_fmt_duration_ms(a, sizeof(a), el));
    if (downtime >= 0)
        line_field(line, len, width, &room, "downtime ~%.0f ms", downtime);
    if (dirty > 0)
        line_field(line, len, width, &room, "dirty %s/s",
                   cli_fmt_bytes(a, sizeof(a), dirty * (page > 0 ? page : PROGRESS_PAGE)));
    if (rounds > 1)
        line_field(line, len, width, &room, "pass %.0f", rounds);
    /* a throttle holds the guest back (docs/state.md, "Throttling") */
    double throttle = num(fig, "cpu-throttle-percentage");
    double dlimit = num(json_object_get(fig, "x-godwit-dirty-limit"), "vcpu-dirty-limit");
    if (throttle > 0)
        line_field(line, len, width, &room, "throttled %.0f%%", throttle);
    if (dlimit > 0)
        line_field(line, len, width, &room, "dirty-limit %.0f MB/s", dlimit);
    if ((int)strlen(line) > width) /* a wrapped line cannot be redrawn in place */
        line[width] = '\0';
}

void cli_progress_clear(struct cli_progress *p)
{
    if (p->live && p->drawn) {
        fputs("\r\033[K", p->out);
        fflush(p->out);
    }
    p->drawn = false;
}

void cli_progress_show(struct cli_progress *p, const json_t *job)
{
    const char *phase = json_string_value(json_object_get(job, "phase"));
    const char *status = json_string_value(json_object_get(job, "status"));
    const char *words = cli_progress_stream_words(json_object_get(job, "figures"));
    char line[PROGRESS_LINE];

    if (!phase)
        phase = "";
    if (!status)
        status = "";
    if (p->live) {
        progress_line(p, job, line, sizeof(line), term_width(p->out) - 1);
        fprintf(p->out, "\r\033[K%s", line);
        fflush(p->out);
        p->drawn = true;
    } else if (strcmp(phase, p->phase) || strcmp(status, p->status) ||
               strcmp(words ? words : "", p->words)) {
        (void)cli_progress_percent(p, json_object_get(job, "figures"), !strcmp(status, "done"));
        fprintf(p->out, "job %" JSON_INTEGER_FORMAT ": %s%s%s%s%s\n",
                json_integer_value(json_object_get(job, "id")), phase[0] ? phase : "-",
                strcmp(status, "running") && strcmp(status, phase) ? ", " : "",
                strcmp(status, "running") && strcmp(status, phase) ? status : "", words ? ", " : "",
                words ? words : "");
        fflush(p->out);
    }
    snprintf(p->phase, sizeof(p->phase), "%s", phase);
    snprintf(p->status, sizeof(p->status), "%s", status);
    snprintf(p->words, sizeof(p->words), "%s", words ? words : "");
}

void cli_progress_summary(const json_t *job)
{
    const char *status = json_string_value(json_object_get(job, "status"));
    const char *error = json_string_value(json_object_get(job, "error"));
    const json_t *fig = json_object_get(job, "figures");
    json_int_t id = json_integer_value(json_object_get(job, "id"));
    double sent = num(json_object_get(fig, "ram"), "transferred");
    double downtime = num(fig, "downtime");

    if (json_object_get(fig, "transfer"))
        sent = num(json_object_get(fig, "transfer"), "wire");
    char d[32], b[32], line[256] = "";

    line_add(line, sizeof(line), "job %" JSON_INTEGER_FORMAT " %s after %s", id,
             status ? status : "?", cli_fmt_duration_ms(d, sizeof(d), job_elapsed_ms(job)));
    if (sent >= 0)
        line_add(line, sizeof(line), ", %s sent", cli_fmt_bytes(b, sizeof(b), sent));
    if (downtime >= 0)
        line_add(line, sizeof(line), ", downtime %.0f ms", downtime);
    if (status && (!strcmp(status, "done") || !strcmp(status, "reverted")))
        printf("%s\n", line);
    else if (error && error[0])
        cli_error("%s: %s", line, error);
    else
        cli_error("%s", line);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL); /* Ctrl-C cuts it short */
}

int cli_progress_follow(int64_t id)
{
    return cli_progress_follow_job(id, NULL, false);
}

int cli_progress_follow_job(int64_t id, json_t **final, bool until_confirm)
{
    struct sigaction sa, old;
    struct cli_progress p;
    FILE *out = cli_g.json ? stderr : stdout;
    char path[64];
    json_t *job = NULL;
    int ret = CLI_FAIL;

    snprintf(path, sizeof(path), "/1.0/jobs/%" PRId64, id);
    cli_progress_init(&p, out, isatty(fileno(out)));
    progress_interrupted = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = progress_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old); /* no SA_RESTART: the sleep ends at once */
    for (;;) {
        const char *status;

        json_decref(job);
        job = NULL;
        if (cli_call("GET", path, NULL, &job, NULL) != 0) {
            cli_progress_clear(&p);
            break;
        }
        if (progress_interrupted)
            break;
        status = json_string_value(json_object_get(job, "status"));
        cli_progress_show(&p, job);
        const char *phase = json_string_value(json_object_get(job, "phase"));
        if (until_confirm && status && !strcmp(status, "running") && phase &&
            !strcmp(phase, "confirm")) {
            /* the VM arrived: the job waits for the operator's word */
            cli_progress_clear(&p);
            ret = CLI_OK;
            if (final) {
                *final = job;
                job = NULL;
            }
            goto out;
        }
        if (status && (!strcmp(status, "done") || !strcmp(status, "failed") ||
                       !strcmp(status, "cancelled") || !strcmp(status, "reverted"))) {
            cli_progress_clear(&p);
            if (cli_g.json && !final)
                cli_print_json(job);
            /* a failure says why on stderr, --json or not */
            if (!cli_g.json || strcmp(status, "done"))
                cli_progress_summary(job);
            ret = !strcmp(status, "done") || !strcmp(status, "reverted") ? CLI_OK : CLI_FAIL;
            if (final) {
                *final = job;
                job = NULL;
            }
            goto out;
        }
        sleep_ms(CLI_PROGRESS_POLL_MS);
        if (progress_interrupted)
            break;
    }
    if (progress_interrupted) {
        cli_progress_clear(&p);
        cli_error("stopped watching job %" PRId64 "; it goes on (godwit job watch %" PRId64
                  ", godwit job cancel %" PRId64 ")",
                  id, id, id);
    }
out:
    sigaction(SIGINT, &old, NULL);
    json_decref(job);
    return ret;
}
