/*
 * The godwit CLI: one file per command group (cmd_vm.c, cmd_peer.c,
 * cmd_job.c, cmd_migrate.c, cmd_state.c) behind the table in main.c.  Each
 * gets argv starting at its own name and returns the process exit status:
 *   0 done, 1 the operation failed (one clear line why, on stderr),
 *   2 usage (a wrong command line).
 *
 * Global options, accepted before the command and by every command:
 *   -H unix:PATH | --host unix:PATH   the daemon (else $GODWIT_HOST, else
 *                                     the default socket, client.h)
 *   --json                            machine-readable output on stdout
 * Commands parse them with cli_common_opt() from their own getopt loops.
 */
#ifndef GODWIT_CLI_CLI_H
#define GODWIT_CLI_CLI_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/util.h"

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

struct cli_globals {
    const char *host; /* -H / --host, NULL: default */
    bool json;        /* --json */
};
extern struct cli_globals cli_g;

/* getopt_long entries for the global options: put CLI_COMMON_OPTS in a
 * command's option table, and hand unknown option characters to
 * cli_common_opt (true when it took the option). */
#define CLI_OPT_JSON 0x1001
#define CLI_OPT_HOST 'H'
#define CLI_COMMON_OPTS                                                                            \
    {"json", no_argument, NULL, CLI_OPT_JSON},                                                     \
    {                                                                                              \
        "host", required_argument, NULL, CLI_OPT_HOST                                              \
    }
#define CLI_COMMON_SHORT "H:"
bool cli_common_opt(int c, const char *arg);

/* Print "godwit: MESSAGE" on stderr; returns CLI_FAIL (or CLI_USAGE for
 * cli_usage_error) so callers can `return cli_error(...)`. */
int cli_error(const char *fmt, ...) gw_printf(1, 2);
int cli_usage_error(const char *usage, const char *fmt, ...) gw_printf(2, 3);

/*
 * One API call to the daemon (see client.h): method, path, body (borrowed,
 * NULL: none).  0 with *reply (a new reference, may be NULL; reply may be
 * NULL to ignore it), or CLI_FAIL after printing the daemon's message or
 * why it could not be reached.  status (may be NULL) gets the HTTP status.
 */
int cli_call(const char *method, const char *path, const json_t *body, json_t **reply,
             long *status);

/* cli_call with its own timeout for the whole request (ms; 0: none), for
 * calls the daemon answers only when a long operation ends (vm stop). */
int cli_call_timeout(const char *method, const char *path, const json_t *body, json_t **reply,
                     long *status, long timeout_ms);

/* The daemon's socket path as resolved for this run ("" if none). */
const char *cli_socket_path(void);

/* Print a JSON value on stdout, indented, with a newline. */
void cli_print_json(const json_t *v);

/* Aligned tables for humans: columns left-aligned, two spaces apart, a
 * header row in capitals.  Cells are copied. */
struct cli_table;
struct cli_table *cli_table_new(unsigned ncols, const char *const *headers);
void cli_table_row(struct cli_table *t, const char *const *cells);
void cli_table_print(struct cli_table *t); /* prints and frees */

/* Formatting helpers (buf returned). */
const char *cli_fmt_bytes(char *buf, size_t len, double bytes);   /* "512 MiB" */
const char *cli_fmt_time_ms(char *buf, size_t len, long long ms); /* local "2026-12-07 03:10:02" */
const char *cli_fmt_duration_ms(char *buf, size_t len, long long ms); /* "1.24 s", "3 min 2 s" */

/* The commands. */
int cli_cmd_state(int argc, char **argv);
int cli_cmd_vm(int argc, char **argv);
int cli_cmd_peer(int argc, char **argv);
int cli_cmd_job(int argc, char **argv);
int cli_cmd_migrate(int argc, char **argv);

#endif
