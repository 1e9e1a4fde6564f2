/*
 * What every command shares: the global options, the call to the daemon
 * with its error line, JSON and table output, number formatting.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"

struct cli_globals cli_g;

static struct cli_client cli_conn;
static bool cli_conn_ready;

bool cli_common_opt(int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_JSON: cli_g.json = true; return true;
    case CLI_OPT_HOST:
        cli_g.host = arg;
        cli_conn_ready = false;
        return true;
    default: return false;
    }
}

static void cli_verror(const char *fmt, va_list ap) gw_printf(1, 0);
static void cli_verror(const char *fmt, va_list ap)
{
    fputs("godwit: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cli_verror(fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cli_verror(fmt, ap);
    va_end(ap);
    if (usage)
        fprintf(stderr, "usage: %s\n", usage);
    return CLI_USAGE;
}

static int cli_ready(void)
{
    char err[256];

    if (cli_conn_ready)
        return 0;
    if (cli_client_init(&cli_conn, cli_g.host, err, sizeof(err)) < 0)
        return cli_error("%s", err);
    cli_conn_ready = true;
    return 0;
}

const char *cli_socket_path(void)
{
    return cli_ready() == 0 ? cli_conn.socket_path : "";
}

int cli_call(const char *method, const char *path, const json_t *body, json_t **reply, long *status)
{
    char err[512];
    long st = 0;
    int ret;

    if (reply)
        *reply = NULL;
    if (cli_ready() != 0)
        return CLI_FAIL;
    ret = cli_client_request(&cli_conn, method, path, body, reply, &st, err, sizeof(err));
    if (status)
        *status = st;
    if (ret == 0)
        return 0;
    if (reply) {
        json_decref(*reply);
        *reply = NULL;
    }
    return cli_error("%s", err);
}

int cli_call_timeout(const char *method, const char *path, const json_t *body, json_t **reply,
                     long *status, long timeout_ms)
{
    long saved;
    int ret;

    if (cli_ready() != 0)
        return CLI_FAIL;
    saved = cli_conn.timeout_ms;
    cli_conn.timeout_ms = timeout_ms;
    ret = cli_call(method, path, body, reply, status);
    cli_conn.timeout_ms = saved;
    return ret;
}

void cli_print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

    if (s) {
        puts(s);
        free(s);
    }
}

struct cli_table {
    unsigned ncols;
    size_t nrows, cap;
    char **cells; /* row-major, header row first */
};

struct cli_table *cli_table_new(unsigned ncols, const char *const *headers)
{
    struct cli_table *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->ncols = ncols;
    cli_table_row(t, headers);
    return t;
}

void cli_table_row(struct cli_table *t, const char *const *cells)
{
    if (!t)
        return;
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));
        if (!c)
            return;
        t->cells = c;
        t->cap = cap;
    }
    for (unsigned i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = strdup(cells[i] ? cells[i] : "");
    t->nrows++;
}

void cli_table_print(struct cli_table *t)
{
    size_t *w;

    if (!t)
        return;
    w = calloc(t->ncols, sizeof(*w));
    for (size_t r = 0; w && r < t->nrows; r++)
        for (unsigned c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            size_t l = s ? strlen(s) : 0;
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; w && r < t->nrows; r++) {
        for (unsigned c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (!s)
                s = "";
            if (c + 1 == t->ncols)
                printf("%s\n", s);
            else
                printf("%-*s  ", (int)w[c], s);
        }
    }
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(w);
    free(t);
}

const char *cli_fmt_bytes(char *buf, size_t len, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;

    while (bytes >= 1024 && u + 1 < GW_ARRAY_SIZE(units)) {
        bytes /= 1024;
        u++;
    }
    if (u == 0 || bytes >= 100 || bytes == (long long)bytes)
        snprintf(buf, len, "%.0f %s", bytes, units[u]);
    else
        snprintf(buf, len, "%.1f %s", bytes, units[u]);
    return buf;
}

const char *cli_fmt_time_ms(char *buf, size_t len, long long ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0 || !localtime_r(&t, &tm) || !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, len, "-");
    return buf;
}

const char *cli_fmt_duration_ms(char *buf, size_t len, long long ms)
{
    if (ms < 0)
        snprintf(buf, len, "-");
    else if (ms < 1000)
        snprintf(buf, len, "%lld ms", ms);
    else if (ms < 60000)
        snprintf(buf, len, "%.2f s", ms / 1000.0);
    else if (ms < 3600000)
        snprintf(buf, len, "%lld min %lld s", ms / 60000, ms / 1000 % 60);
    else
        snprintf(buf, len, "%lld h %lld min", ms / 3600000, ms / 60000 % 60);
    return buf;
}
