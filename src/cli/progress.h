/*
 * Following a job from the CLI (`godwit job watch`, `godwit migrate`): poll
 * GET /1.0/jobs/ID every CLI_PROGRESS_POLL_MS and show how it goes.
 *
 * On a terminal, one line redrawn in place: phase, a bar and a percentage,
 * RAM sent / total, MB/s, the dirty rate, the expected downtime, elapsed.
 * Elsewhere (a pipe, a log), one line per phase or status change.  At the
 * end a summary line, or with --json the final job object on stdout.
 *
 * A cold or suspended migration's figures have a "transfer" object instead
 * (total, done, wire, ...: the files' data): the percentage is done / total
 * and the rate the wire bytes over the elapsed time.
 *
 * The figures are QEMU's query-migrate answer as the migration module
 * stores it: ram.{transferred,total,remaining,mbps,dirty-pages-rate,
 * page-size,...}, expected-downtime, downtime, total-time.  The percentage
 * is the share of RAM the destination holds, (total - remaining) / total,
 * which stays meaningful across passes (remaining falls from the whole RAM
 * to the dirty set, and zero pages count though they cost nothing); it
 * never goes back, closes large gaps over a few polls instead of at once,
 * and shows 100 only once the job is done.
 *
 * A live migration whose disks stream (figures "disk" {transferred,
 * remaining, total}, QEMU 7.2's) counts them in the percentage, weighed by
 * the bytes they move (the plan's disk_bytes) against the RAM's size, and
 * shows "disk X sent, Y left"; while godwit-vm mirrors the guest's writes
 * (x-godwit-mirror) the status reads "(mirroring)".
 *
 * A live migration held mid pre-copy says so after its phase ("transfer
 * (held, pre-copy paused)", "(held, held-converged: destination kept in
 * sync)"): the bar stays where it was, nothing is lost.
 */
#ifndef GODWIT_CLI_PROGRESS_H
#define GODWIT_CLI_PROGRESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_PROGRESS_POLL_MS 100
#define CLI_PROGRESS_STEP    3.0 /* percent: gaps up to this are closed at once */

struct cli_progress {
    FILE *out;
    bool live;      /* redraw one line in place (a terminal) */
    bool drawn;     /* a live line is on screen */
    double shown;   /* the percentage shown, never decreasing; < 0: none yet */
    char phase[32]; /* the last phase and status reported */
    char status[32];
    char words[48]; /* cli_progress_stream_words, "" none */
};

/* out: where the display goes; live: redraw in place. */
void cli_progress_init(struct cli_progress *p, FILE *out, bool live);

/* The percentage to show for a job's figures (done: the job ended well);
 * < 0 when the figures say nothing of progress yet. */
double cli_progress_percent(struct cli_progress *p, const json_t *figures, bool done);

/* A live migration's stream state in words, from its figures (godwit-vm's
 * query-migrate status): "pre-copy paused", "reconnecting", "held-converged:
 * destination kept in sync", "mirroring" (active, disks mirrored); NULL for
 * any other (active, completed...). */
const char *cli_progress_stream_words(const json_t *figures);

/* Show one poll's job object. */
void cli_progress_show(struct cli_progress *p, const json_t *job);

/* Take the live line off the screen (before a summary or a message). */
void cli_progress_clear(struct cli_progress *p);

/* The final line for a finished job (stdout for done, stderr otherwise). */
void cli_progress_summary(const json_t *job);

/*
 * Follow job id until it ends, showing progress (on stdout; on stderr with
 * --json, where stdout gets the final job object).  Ctrl-C stops watching
 * only: the job goes on.  CLI_OK when the job is done; CLI_FAIL when it
 * failed or was cancelled, the daemon could not be asked, or on Ctrl-C.
 */
int cli_progress_follow(int64_t id);

/* The same, but with --json nothing is printed on stdout: *final (when the
 * job ended; else NULL) gets the last job object for the caller to print
 * its own result.  until_confirm: also stop (CLI_OK) when the job waits in
 * its confirm phase (a cold or suspended migration whose VM arrived). */
int cli_progress_follow_job(int64_t id, json_t **final, bool until_confirm);

#endif
