/*
 * Jobs (jobs.c): the unit of every long operation.  A job is a row in the
 * store (kind, direction, vm, peer, phase, status, figures, error) and,
 * while it runs, a thread executing its kind's run function.  /1.0/jobs
 * lists, shows (with its history from the event log) and cancels them.
 *
 * Ending: run returning 0 finishes the job done; -errno finishes it
 * cancelled when it was cancelled, else failed with err.  When the daemon
 * is stopping (job_stopping) and run returns an error, the job stays
 * unfinished in the store so that its kind's resume picks it up at the
 * next start.
 *
 * Restart: jobs_init records the unfinished jobs; each is handed to its
 * kind's resume as soon as that kind is registered (modules registering
 * kinds may init after jobs).  jobs_settle, called once every module is up
 * (by the /1.0/jobs handlers and jobs_start, which only run once the API
 * serves, or 5 s after jobs_init at the latest), fails the ones no
 * registered kind resumed: "interrupted: godwitd restarted".
 */
#ifndef GODWIT_GODWITD_JOBS_H
#define GODWIT_GODWITD_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "godwitd/godwitd.h"

struct job;

/* run / resume may return this to end the thread and leave the job
 * unfinished as it is (held: whatever lifts the hold starts it again);
 * jobs_cancel then finishes it cancelled without a runner. */
#define JOB_PARKED 1
/* run / resume may return this: the job ends with status "reverted" (the
 * operator undid a finished move: the VM is back where it came from). */
#define JOB_REVERTED 2

struct job_kind {
    const char *kind;      /* "live", "cold", "suspended" (store_job_kind_valid) */
    const char *direction; /* "out" or "in" */
    /* The job's body, in its own thread: return 0 (done), JOB_PARKED, or
     * -errno with the reason in err. */
    int (*run)(struct job *j, char *err, size_t errlen);
    /* Asked to cancel (from another thread, with the runner's lock held):
     * make run return soon; must not block.  May be NULL. */
    void (*cancel)(struct job *j);
    /* A job of this kind found unfinished (running or held) when the
     * daemon starts: finish its bookkeeping (it runs as run does, in a
     * thread, with job_arg NULL).  NULL: the job is marked failed
     * "interrupted: godwitd restarted". */
    int (*resume)(struct job *j, char *err, size_t errlen);
    /* An operator's verb for a running job (POST /1.0/jobs/{id}/VERB):
     * "confirm" or "revert" today.  Called from the API thread with the
     * runner's lock held: record the request and wake the runner, must not
     * block.  0, or -errno with err: -EINVAL not now (err says why),
     * -EOPNOTSUPP this kind has no such verb.  May be NULL. */
    int (*control)(struct job *j, const char *verb, const json_t *body, char *err, size_t errlen);
    /* Jobs of this kind can be held (jobs_hold): run and resume look at
     * job_held() at their safe points and return JOB_PARKED there,
     * keeping what they did; when the last hold lifts, resume runs again
     * (job_released() true).  control is asked "hold" first when the job
     * has a runner: -EINVAL refuses (not now).  A held job found at start
     * goes to resume with job_held() true: it parks again at once. */
    bool holdable;
};

/* Register a kind (a static struct that outlives the daemon), at any time
 * during module init, before or after jobs_init; unfinished jobs of that
 * kind found by jobs_init are resumed now.  One kind per kind/direction. */
void jobs_register(struct godwitd *d, const struct job_kind *k);

/* Every module is up: fail the unfinished jobs found at start that no
 * registered kind resumed.  Idempotent; the API handlers call it. */
void jobs_settle(struct godwitd *d);

/*
 * Create a job (store row, status running, phase first_phase, options a
 * JSON object borrowed, may be NULL) and start its thread with arg (owned
 * by the job's code from then on; free_arg(arg) runs when the job ends,
 * may be NULL).  0 and *id (may be NULL), or -errno with err (-EEXIST: the
 * VM has an unfinished job; -ESHUTDOWN: the daemon is stopping), and then
 * arg stays the caller's.
 */
int jobs_start(struct godwitd *d, const struct job_kind *k, const char *vm, const char *peer,
               const char *started_by, const json_t *options, const char *first_phase, void *arg,
               void (*free_arg)(void *), int64_t *id, char *err, size_t errlen);

/* A hold a job is born with (jobs_start_held): type, reason, and how it
 * lifts (a JSON object, borrowed; {"after_job": ID}: when that job of this
 * host finishes, whatever its status; NULL: by hand). */
struct job_hold_spec {
    const char *type;
    const char *reason;
    const json_t *lift;
};

/* jobs_start for a holdable kind, the job held from its first moment by
 * the given holds (its runner parks at its first safe point).  A
 * dependency hold on a job that has already finished is not set. */
int jobs_start_held(struct godwitd *d, const struct job_kind *k, const char *vm, const char *peer,
                    const char *started_by, const json_t *options, const char *first_phase,
                    void *arg, void (*free_arg)(void *), const struct job_hold_spec *holds,
                    size_t nholds, int64_t *id, char *err, size_t errlen);

/* Inside run: */
int64_t job_id(const struct job *j);
struct godwitd *job_daemon(const struct job *j);
void *job_arg(const struct job *j);
const json_t *job_options(const struct job *j); /* borrowed; {} when none */
/* A resumed job (which starts without an arg) hands its context to the
 * job: cancel and control see it, free_arg frees it when the job ends. */
void job_set_arg(struct job *j, void *arg, void (*free_arg)(void *));
bool job_cancelled(const struct job *j);
/* The daemon is stopping: return at a safe point; the job is resumed at
 * the next start (unless run returns 0). */
bool job_stopping(const struct job *j);
/* The job's current phase, as stored, into out ("" if unknown). */
void job_phase_get(const struct job *j, char *out, size_t len);
/* Enter a phase (event job-phase). */
void job_phase(struct job *j, const char *phase);
/* Replace the job's figures (a JSON object, stolen); emits a
 * migration-progress event (subject job/ID, data the figures) at most
 * every 250 ms unless final. */
void job_figures(struct job *j, json_t *figures, bool final);

/* Cancel a job by id: 0, -ENOENT, -EINVAL (already finished).  A job
 * without a runner (held, or waiting to be resumed) is finished cancelled
 * at once. */
int jobs_cancel(struct godwitd *d, int64_t id, char *err, size_t errlen);

/* Inside run: record a hold the job itself is in (technical: its peer is
 * unreachable and it keeps retrying): status held, event, but no parking.
 * 0 and *hold (may be NULL), or -errno.  job_lift_own lifts every active
 * hold of that type (by: what changed); the count lifted. */
int job_hold_own(struct job *j, const char *type, const char *reason, int64_t *hold);
int job_lift_own(struct job *j, const char *type, const char *by);
/* An active hold of that type the job set itself (a resumed job finds the
 * holds it kept before a restart). */
bool job_has_own(struct job *j, const char *type);

/* Inside run / resume: an active hold set by someone else (park at the
 * next safe point; a live job in transfer pauses its stream instead).
 * The job's own holds (job_hold_own) do not count: it keeps them itself. */
bool job_held(const struct job *j);
/* Inside resume: this runner started because the job's last hold lifted
 * (not because the daemon started). */
bool job_released(const struct job *j);

/*
 * Hold a job (a holdable kind, unfinished): a hold row (type, reason,
 * set_by), status held, event hold-set; its runner parks at its next safe
 * point.  0 and *hold, or -errno with err: -ENOENT no such job, -EINVAL
 * finished / unknown type / not now, -EOPNOTSUPP its kind cannot be held.
 */
int jobs_hold(struct godwitd *d, int64_t id, const char *type, const char *reason,
              const char *set_by, const json_t *lift, int64_t *hold, char *err, size_t errlen);
/*
 * Approve a job: lift its compliance holds that wait for an approval
 * (lift {"approval": true}), recording "approved by WHO[: note]".  With
 * four-eyes (lift "four_eyes": true) whoever started the job cannot:
 * -EPERM.  -EALREADY: nothing waits for an approval.  When no hold is
 * left the job goes on.
 */
int jobs_approve(struct godwitd *d, int64_t id, const char *who, const char *note, char *err,
                 size_t errlen);
/* Was the job ever approved (a compliance hold lifted by an approval)? */
bool job_approved(const struct job *j);
/*
 * Lift hold `hold` of job id (0: every active manual hold), recording by;
 * when none is left the job runs again from where it parked.  0, or
 * -ENOENT (job or hold), -EALREADY (nothing active to lift), -errno.
 */
int jobs_release(struct godwitd *d, int64_t id, int64_t hold, const char *by, char *err,
                 size_t errlen);

/* Hand an operator's verb to a running job (kind->control): 0, -ENOENT no
 * such job, -EINVAL finished or not now, -EOPNOTSUPP no such verb for its
 * kind; err says why. */
int jobs_control(struct godwitd *d, int64_t id, const char *verb, const json_t *body, char *err,
                 size_t errlen);

/* Who is asking, for started_by / set_by: "uid 1000 (alice)" for a local
 * request, "peer" over TLS, "unknown" otherwise. */
void jobs_who(const struct api_request *req, char *out, size_t len);

/* Runner threads still going (tests). */
unsigned jobs_running(struct godwitd *d);

#endif
