/*
 * Jobs (jobs.c): the unit of every long operation.  A job is a row in the
 * store (kind, direction, vm, peer, phase, status, figures, error) and,
 * while it runs, a thread executing its kind's run function.  /1.0/jobs
 * lists, shows (with its history from the event log) and cancels them.
 */
#ifndef GODWIT_GODWITD_JOBS_H
#define GODWIT_GODWITD_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "godwitd/godwitd.h"

struct job;

struct job_kind {
    const char *kind;      /* "live", "cold", "suspended" (store_job_kind_valid) */
    const char *direction; /* "out" or "in" */
    /* The job's body, in its own thread: return 0 (done), or -errno with
     * the reason already set by job_fail / a message in err. */
    int (*run)(struct job *j, char *err, size_t errlen);
    /* Asked to cancel (from another thread): make run return soon. May be NULL. */
    void (*cancel)(struct job *j);
    /* A job of this kind found unfinished when the daemon starts: finish
     * its bookkeeping (it runs as run does, in a thread).  NULL: the job is
     * marked failed "interrupted by a daemon restart". */
    int (*resume)(struct job *j, char *err, size_t errlen);
};

/* Register a kind (at init, before jobs_init picks up unfinished jobs). */
void jobs_register(struct godwitd *d, const struct job_kind *k);

/*
 * Create a job (store row, status running, phase first_phase, options a
 * JSON object borrowed) and start its thread with arg (owned by the job's
 * code; freed by free_arg when the job ends, may be NULL).  0 and *id, or
 * -errno with err.
 */
int jobs_start(struct godwitd *d, const struct job_kind *k, const char *vm, const char *peer,
               const char *started_by, const json_t *options, const char *first_phase, void *arg,
               void (*free_arg)(void *), int64_t *id, char *err, size_t errlen);

/* Inside run: */
int64_t job_id(const struct job *j);
struct godwitd *job_daemon(const struct job *j);
void *job_arg(const struct job *j);
const json_t *job_options(const struct job *j); /* borrowed */
bool job_cancelled(const struct job *j);
/* Enter a phase (event job-phase). */
void job_phase(struct job *j, const char *phase);
/* Replace the job's figures (a JSON object, stolen); emits a
 * migration-progress event at most every 250 ms unless final. */
void job_figures(struct job *j, json_t *figures, bool final);

/* Cancel a job by id: 0, -ENOENT, -EINVAL (already finished). */
int jobs_cancel(struct godwitd *d, int64_t id, char *err, size_t errlen);

#endif
