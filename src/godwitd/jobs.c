/*
 * The job engine (jobs.h) and /1.0/jobs.
 *
 *   GET  /1.0/jobs[?all=1]           {"jobs":[...]}: unfinished ones and the
 *                                    finished of the last 24 h (at most 50);
 *                                    all=1: every job kept
 *   GET  /1.0/jobs/{id}[?progress=1] the job with its history (its events,
 *                                    migration-progress ones only with
 *                                    progress=1: the figures hold the latest)
 *   POST /1.0/jobs/{id}/cancel       202 and the job; 409 when finished
 *
 * Ownership: struct jobs (d->jobs) holds the registry of kinds, the list of
 * runners and the unfinished jobs found at start that wait for their kind.
 * A runner (struct job) is owned by its thread, which unlinks and frees it
 * at the end; while it is linked, jobs->lock keeps it alive for others.
 * Lock order: jobs->lock, then the store lock.  A runner finishes its store
 * row and unlinks itself under jobs->lock, so jobs_cancel sees either a
 * runner or a row that no runner will touch again.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "godwitd/godwitd.h"
#include "godwitd/jobs.h"

#include "godwitd/jobs_int.h"

static struct jobs *jobs_get(struct godwitd *d)
{
    struct jobs *js = d->jobs;
    pthread_condattr_t ca;

    if (js)
        return js;
    js = calloc(1, sizeof(*js));
    if (!js)
        return NULL;
    pthread_mutex_init(&js->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&js->cond, &ca);
    pthread_condattr_destroy(&ca);
    d->jobs = js;
    return js;
}

static void deadline_after(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* ---- inside run ---- */

int64_t job_id(const struct job *j)
{
    return j->id;
}

struct godwitd *job_daemon(const struct job *j)
{
    return j->d;
}

void *job_arg(const struct job *j)
{
    return j->arg;
}

const json_t *job_options(const struct job *j)
{
    return j->options;
}

bool job_held(const struct job *j)
{
    return atomic_load(&j->held);
}

bool job_released(const struct job *j)
{
    return j->released;
}

void job_set_arg(struct job *j, void *arg, void (*free_arg)(void *))
{
    struct jobs *js = j->d->jobs;

    pthread_mutex_lock(&js->lock);
    j->arg = arg;
    j->free_arg = free_arg;
    pthread_mutex_unlock(&js->lock);
}

bool job_cancelled(const struct job *j)
{
    return atomic_load(&j->cancelled);
}

bool job_stopping(const struct job *j)
{
    return j->d->stopping || atomic_load(&j->d->jobs->stop);
}

void job_phase_get(const struct job *j, char *out, size_t len)
{
    struct store_job row;

    out[0] = '\0';
    godwitd_store_lock(j->d);
    if (store_job_get(j->d->store, j->id, &row) == 0) {
        snprintf(out, len, "%s", row.phase);
        store_job_clear(&row);
    }
    godwitd_store_unlock(j->d);
}

void job_phase(struct job *j, const char *phase)
{
    int ret;

    godwitd_store_lock(j->d);
    ret = store_job_set_phase(j->d->store, j->id, phase);
    if (ret < 0)
        gw_log("job %" PRId64 ": phase %s: %s", j->id, phase, store_errmsg(j->d->store));
    godwitd_store_unlock(j->d);
    if (ret == 0)
        events_notify(j->d);
    if (ret == 0 && !strcmp(phase, "confirm") && j->d->jobs) {
        /* waiting for a confirm holds no migration slot */
        pthread_mutex_lock(&j->d->jobs->lock);
        jobs_recheck_slots(j->d->jobs, j->d);
        pthread_mutex_unlock(&j->d->jobs->lock);
    }
}

void job_figures(struct job *j, json_t *figures, bool final)
{
    char *text;
    int64_t now = store_now_ms();

    if (!figures)
        return;
    text = json_dumps(figures, JSON_COMPACT);
    if (!text) {
        json_decref(figures);
        return;
    }
    godwitd_store_lock(j->d);
    if (store_job_set_figures(j->d->store, j->id, text) < 0)
        gw_log("job %" PRId64 ": figures: %s", j->id, store_errmsg(j->d->store));
    godwitd_store_unlock(j->d);
    free(text);
    if (final || now - j->progress_ms >= JOBS_PROGRESS_MS) {
        char subject[32];

        j->progress_ms = now;
        snprintf(subject, sizeof(subject), "job/%" PRId64, j->id);
        godwitd_event(j->d, "migration-progress", subject, figures); /* steals */
        return;
    }
    json_decref(figures);
}

/* ---- runners ---- */

static void job_free(struct job *j)
{
    if (!j)
        return;
    if (j->free_arg)
        j->free_arg(j->arg);
    json_decref(j->options);
    free(j);
}

/* Under js->lock: finish the store row (unless the daemon stops and run
 * failed: then it stays for resume) and unlink the runner (still counted
 * in nrunners until it is freed). */

static void job_end(struct jobs *js, struct job *j, int ret, const char *err)
{
    struct godwitd *d = j->d;
    const char *status = NULL;
    bool notify = false;

    if (ret == JOB_PARKED)
        gw_log("job %" PRId64 ": parked", j->id);
    else if (ret == 0)
        status = "done";
    else if (ret == JOB_REVERTED)
        status = "reverted";
    else if (atomic_load(&j->cancelled))
        status = "cancelled";
    else if (!job_stopping(j))
        status = "failed";
    if (status) {
        godwitd_store_lock(d);
        if (store_job_finish(
                d->store, j->id, status,
                ret == 0 || ret == JOB_REVERTED ? NULL : (err[0] ? err : strerror(-ret)), NULL) < 0)
            gw_log("job %" PRId64 ": finish %s: %s", j->id, status, store_errmsg(d->store));
        else
            notify = true;
        godwitd_store_unlock(d);
    } else if (ret != JOB_PARKED) {
        gw_log("job %" PRId64 ": left unfinished for the next start: %s", j->id,
               err[0] ? err : strerror(-ret));
    }
    for (struct job **p = &js->runners; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    if (notify) {
        events_notify(d);
        jobs_after_finished(js, d, j->id, status);
    }
}

static void job_respawn_if_free(struct jobs *js, const struct job *old, bool cancelled);

static void *job_thread(void *opaque)
{
    struct job *j = opaque;
    struct jobs *js = j->d->jobs;
    char err[512] = "";
    int ret;

    if (j->resuming)
        ret = j->k->resume(j, err, sizeof(err));
    else
        ret = j->k->run(j, err, sizeof(err));
    if (ret > 0 && ret != JOB_PARKED && ret != JOB_REVERTED)
        ret = 0;
    pthread_mutex_lock(&js->lock);
    job_end(js, j, ret, err);
    if (ret == JOB_PARKED && j->k->holdable && !atomic_load(&js->stop)) {
        job_respawn_if_free(js, j, atomic_load(&j->cancelled)); /* a release raced the park */
        jobs_recheck_slots(js, j->d);                           /* its slot is free */
    }
    pthread_mutex_unlock(&js->lock);
    job_free(j); /* unlinked: nobody else sees j now */
    pthread_mutex_lock(&js->lock);
    js->nrunners--;
    pthread_cond_broadcast(&js->cond);
    pthread_mutex_unlock(&js->lock);
    return NULL;
}

/* Under js->lock: link j and start its thread (detached: it frees j). */
static int job_spawn(struct jobs *js, struct job *j)
{
    pthread_attr_t a;
    pthread_t t;
    int ret;

    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    j->next = js->runners;
    js->runners = j;
    js->nrunners++;
    ret = pthread_create(&t, &a, job_thread, j);
    pthread_attr_destroy(&a);
    if (ret) {
        js->runners = j->next;
        js->nrunners--;
        return -ret;
    }
    return 0;
}

const struct job_kind *jobs_kind_find(struct jobs *js, const char *kind, const char *direction)
{
    for (unsigned i = 0; i < js->nkinds; i++)
        if (!strcmp(js->kinds[i]->kind, kind) && !strcmp(js->kinds[i]->direction, direction))
            return js->kinds[i];
    return NULL;
}

/* Under js->lock: start a resume runner for a parked job of a holdable
 * kind (its last hold lifted, or it is being cancelled: cancelled set).
 * 0, or -errno. */
int jobs_wake(struct jobs *js, struct godwitd *d, const struct job_kind *k, int64_t id,
              bool cancelled)
{
    struct store_job row;
    struct job *j;
    int ret;

    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    godwitd_store_unlock(d);
    if (ret < 0)
        return ret;
    j = calloc(1, sizeof(*j));
    if (j) {
        j->d = d;
        j->k = k;
        j->id = id;
        j->resuming = true;
        j->released = !cancelled;
        godwitd_store_lock(d);
        atomic_store(&j->held,
                     !strcmp(row.status, "held") && !cancelled && jobs_parking_holds(d, id));
        godwitd_store_unlock(d);
        atomic_store(&j->cancelled, cancelled);
        j->options = row.options ? json_loads(row.options, 0, NULL) : json_object();
    }
    store_job_clear(&row);
    if (!j || !j->options) {
        job_free(j);
        return -ENOMEM;
    }
    ret = job_spawn(js, j);
    if (ret < 0)
        job_free(j);
    else
        gw_log("job %" PRId64 ": %s", id,
               cancelled ? "cleaning up after a cancel while held"
                         : "runs again: its holds lifted");
    return ret;
}

/* Under js->lock: old just parked; if its holds lifted meanwhile (status
 * running again) and nothing else runs it, start it again. */
static void job_respawn_if_free(struct jobs *js, const struct job *old, bool cancelled)
{
    struct store_job row;
    bool running = false;

    for (struct job *r = js->runners; r; r = r->next)
        if (r->id == old->id)
            return;
    godwitd_store_lock(old->d);
    if (store_job_get(old->d->store, old->id, &row) == 0) {
        running = !store_job_status_final(row.status) && !jobs_parking_holds(old->d, old->id);
        store_job_clear(&row);
    }
    godwitd_store_unlock(old->d);
    if (running || cancelled)
        (void)jobs_wake(js, old->d, old->k, old->id, cancelled);
}

/* Under js->lock: finish a job that has no runner. */
static int job_finish_idle(struct godwitd *d, int64_t id, const char *status, const char *error,
                           char *err, size_t errlen)
{
    int ret;

    godwitd_store_lock(d);
    ret = store_job_finish(d->store, id, status, error, NULL);
    if (ret < 0)
        gw_fail(err, errlen, ret, "%s", store_errmsg(d->store));
    godwitd_store_unlock(d);
    if (ret == 0) {
        events_notify(d);
        jobs_after_finished(d->jobs, d, id, status);
    }
    return ret;
}

/* Under js->lock: start the resume of pending job i (removing it). */
static void pending_resume(struct jobs *js, struct godwitd *d, size_t i, const struct job_kind *k)
{
    struct jobs_pending p = js->pending[i];
    struct store_job row;
    struct job *j;
    char err[256];
    int ret;

    js->pending[i] = js->pending[--js->npending];
    if (!k->resume) {
        if (job_finish_idle(d, p.id, "failed", JOBS_RESTART_ERROR, err, sizeof(err)) < 0)
            gw_log("job %" PRId64 ": %s", p.id, err);
        return;
    }
    godwitd_store_lock(d);
    ret = store_job_get(d->store, p.id, &row);
    godwitd_store_unlock(d);
    if (ret < 0)
        return;
    j = calloc(1, sizeof(*j));
    if (j) {
        j->d = d;
        j->k = k;
        j->id = p.id;
        j->resuming = true;
        godwitd_store_lock(d);
        atomic_store(&j->held, !strcmp(row.status, "held") && jobs_parking_holds(d, p.id));
        godwitd_store_unlock(d);
        j->options = row.options ? json_loads(row.options, 0, NULL) : NULL;
        if (!j->options)
            j->options = json_object();
    }
    store_job_clear(&row);
    if (!j || !j->options || job_spawn(js, j) < 0) {
        job_free(j);
        if (job_finish_idle(d, p.id, "failed", "cannot resume: out of resources", err,
                            sizeof(err)) < 0)
            gw_log("job %" PRId64 ": %s", p.id, err);
        return;
    }
    gw_log("job %" PRId64 ": resuming (%s %s)", p.id, k->kind, k->direction);
}

/* Under js->lock: resume the pending jobs of kind k. */
static void pending_pickup(struct jobs *js, struct godwitd *d, const struct job_kind *k)
{
    for (size_t i = 0; i < js->npending;) {
        if (!strcmp(js->pending[i].kind, k->kind) &&
            !strcmp(js->pending[i].direction, k->direction))
            pending_resume(js, d, i, k); /* moves the last entry to i */
        else
            i++;
    }
}

void jobs_register(struct godwitd *d, const struct job_kind *k)
{
    struct jobs *js = jobs_get(d);

    if (!js || !k || !k->kind || !k->direction || !k->run) {
        gw_log("jobs: cannot register a job kind");
        return;
    }
    pthread_mutex_lock(&js->lock);
    if (jobs_kind_find(js, k->kind, k->direction) || js->nkinds >= JOBS_KINDS_MAX) {
        gw_log("jobs: kind %s %s registered twice or too many kinds", k->kind, k->direction);
    } else {
        js->kinds[js->nkinds++] = k;
        if (js->initialized)
            pending_pickup(js, d, k);
    }
    pthread_mutex_unlock(&js->lock);
}

void jobs_settle(struct godwitd *d)
{
    struct jobs *js = d->jobs;
    char err[256];

    if (!js)
        return;
    pthread_mutex_lock(&js->lock);
    if (js->initialized && !js->settled) {
        js->settled = true;
        for (size_t i = 0; i < js->npending; i++) {
            gw_log("job %" PRId64 ": no %s %s job kind to resume it", js->pending[i].id,
                   js->pending[i].kind, js->pending[i].direction);
            if (job_finish_idle(d, js->pending[i].id, "failed", JOBS_RESTART_ERROR, err,
                                sizeof(err)) < 0)
                gw_log("job %" PRId64 ": %s", js->pending[i].id, err);
        }
        js->npending = 0;
        jobs_recheck_dependencies(js, d);
    }
    pthread_mutex_unlock(&js->lock);
}

int jobs_start(struct godwitd *d, const struct job_kind *k, const char *vm, const char *peer,
               const char *started_by, const json_t *options, const char *first_phase, void *arg,
               void (*free_arg)(void *), int64_t *id, char *err, size_t errlen)
{
    return jobs_start_held(d, k, vm, peer, started_by, options, first_phase, arg, free_arg, NULL, 0,
                           id, err, errlen);
}

int jobs_start_held(struct godwitd *d, const struct job_kind *k, const char *vm, const char *peer,
                    const char *started_by, const json_t *options, const char *first_phase,
                    void *arg, void (*free_arg)(void *), const struct job_hold_spec *holds,
                    size_t nholds, int64_t *id, char *err, size_t errlen)
{
    struct jobs *js = d->jobs;
    struct store_job row;
    struct job *j;
    char *opts;
    int ret;

    if (!js || !k)
        return gw_fail(err, errlen, -EINVAL, "the job runner is not up");
    jobs_settle(d);
    j = calloc(1, sizeof(*j));
    opts = json_dumps(options ? options : json_object(), JSON_COMPACT);
    if (!j || !opts) {
        free(j);
        free(opts);
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    }
    j->d = d;
    j->k = k;
    j->options = options ? json_deep_copy(options) : json_object();
    memset(&row, 0, sizeof(row));
    snprintf(row.kind, sizeof(row.kind), "%s", k->kind);
    snprintf(row.direction, sizeof(row.direction), "%s", k->direction);
    snprintf(row.vm, sizeof(row.vm), "%s", vm ? vm : "");
    snprintf(row.peer, sizeof(row.peer), "%s", peer ? peer : "");
    snprintf(row.phase, sizeof(row.phase), "%s", first_phase ? first_phase : "");
    snprintf(row.started_by, sizeof(row.started_by), "%s", started_by ? started_by : "");
    row.options = opts;
    pthread_mutex_lock(&js->lock);
    if (d->stopping || js->stop) {
        ret = gw_fail(err, errlen, -ESHUTDOWN, "godwitd is stopping");
        goto out_unlock;
    }
    if (!jobs_kind_find(js, k->kind, k->direction)) {
        ret = gw_fail(err, errlen, -EINVAL, "job kind %s %s is not registered", k->kind,
                      k->direction);
        goto out_unlock;
    }
    if (nholds && !k->holdable) {
        ret =
            gw_fail(err, errlen, -EOPNOTSUPP, "a %s %s job cannot be held", k->kind, k->direction);
        goto out_unlock;
    }
    godwitd_store_lock(d);
    ret = store_job_create(d->store, &row, &j->id);
    if (ret < 0)
        gw_fail(err, errlen, ret, "%s", store_errmsg(d->store));
    for (size_t i = 0; ret == 0 && i < nholds; i++) {
        json_int_t after = json_integer_value(json_object_get(holds[i].lift, "after_job"));
        struct store_hold h = {0};
        if (after > 0 && jobs_is_over(d, after))
            continue; /* nothing to wait for */
        h.job_id = j->id;
        snprintf(h.type, sizeof(h.type), "%s", holds[i].type);
        snprintf(h.reason, sizeof(h.reason), "%s", holds[i].reason);
        snprintf(h.set_by, sizeof(h.set_by), "%s", started_by ? started_by : "");
        h.lift = holds[i].lift ? json_dumps(holds[i].lift, JSON_COMPACT) : NULL;
        ret = store_hold_add(d->store, &h, NULL);
        free(h.lift);
        if (ret < 0)
            gw_fail(err, errlen, ret, "%s", store_errmsg(d->store));
        else
            atomic_store(&j->held, true);
    }
    if (ret < 0 && j->id > 0)
        (void)store_job_finish(d->store, j->id, "failed", err, NULL);
    godwitd_store_unlock(d);
    if (ret < 0)
        goto out_unlock;
    events_notify(d);
    j->arg = arg;
    j->free_arg = free_arg;
    ret = job_spawn(js, j);
    if (ret < 0) {
        char ferr[256];

        gw_fail(err, errlen, ret, "cannot start the job's thread: %s", strerror(-ret));
        if (job_finish_idle(d, j->id, "failed", err, ferr, sizeof(ferr)) < 0)
            gw_log("job %" PRId64 ": %s", j->id, ferr);
        goto out_unlock;
    }
    /* the runner cannot end before we unlock: j is still ours to read */
    if (id)
        *id = j->id;
    pthread_mutex_unlock(&js->lock);
    free(opts);
    return 0;

out_unlock:
    pthread_mutex_unlock(&js->lock);
    free(opts);
    json_decref(j->options);
    free(j);
    return ret;
}

int jobs_cancel(struct godwitd *d, int64_t id, char *err, size_t errlen)
{
    struct jobs *js = d->jobs;
    struct store_job row;
    struct job *j;
    int ret;

    if (!js)
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    pthread_mutex_lock(&js->lock);
    for (j = js->runners; j; j = j->next)
        if (j->id == id)
            break;
    if (j && j->k->control) {
        /* a job waiting for the operator's confirm or revert is not
         * cancelled: the VM already arrived on the destination */
        bool confirming = false;
        godwitd_store_lock(d);
        if (store_job_get(d->store, id, &row) == 0) {
            confirming = !strcmp(row.phase, "confirm");
            store_job_clear(&row);
        }
        godwitd_store_unlock(d);
        if (confirming) {
            pthread_mutex_unlock(&js->lock);
            return gw_fail(err, errlen, -EINVAL,
                           "job %" PRId64 " waits in its confirm phase (the VM arrived): end it "
                           "with godwit job confirm %" PRId64 " or godwit job revert %" PRId64,
                           id, id, id);
        }
    }
    if (j) {
        atomic_store(&j->cancelled, true);
        if (j->k->cancel)
            j->k->cancel(j);
        pthread_mutex_unlock(&js->lock);
        return 0;
    }
    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    if (ret < 0)
        gw_fail(err, errlen, ret, "no job %" PRId64, id);
    godwitd_store_unlock(d);
    if (ret == 0 && store_job_status_final(row.status))
        ret = gw_fail(err, errlen, -EINVAL, "job %" PRId64 " is %s already", id, row.status);
    else if (ret == 0) {
        /* held, or found at start and not resumed (yet): nothing runs it */
        bool pending = false;
        for (size_t i = 0; i < js->npending; i++)
            if (js->pending[i].id == id) {
                js->pending[i] = js->pending[--js->npending];
                pending = true;
                break;
            }
        const struct job_kind *k = jobs_kind_find(js, row.kind, row.direction);
        if (!pending && k && k->holdable && k->resume)
            /* a parked job of a holdable kind: its resume cleans up (puts
             * the VM back, tells the destination) and ends it cancelled */
            ret = jobs_wake(js, d, k, id, true);
        else
            ret = job_finish_idle(d, id, "cancelled", NULL, err, errlen);
        if (ret < 0 && !err[0])
            gw_fail(err, errlen, ret, "cannot cancel job %" PRId64, id);
    }
    store_job_clear(&row);
    pthread_mutex_unlock(&js->lock);
    return ret;
}

int jobs_control(struct godwitd *d, int64_t id, const char *verb, const json_t *body, char *err,
                 size_t errlen)
{
    struct jobs *js = d->jobs;
    struct store_job row;
    struct job *j;
    int ret;

    if (!js)
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    pthread_mutex_lock(&js->lock);
    for (j = js->runners; j; j = j->next)
        if (j->id == id)
            break;
    if (j) {
        ret = j->k->control ? j->k->control(j, verb, body, err, errlen)
                            : gw_fail(err, errlen, -EOPNOTSUPP, "a %s job has nothing to %s",
                                      j->k->kind, verb);
        pthread_mutex_unlock(&js->lock);
        return ret;
    }
    pthread_mutex_unlock(&js->lock);
    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    godwitd_store_unlock(d);
    if (ret < 0)
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    ret = gw_fail(err, errlen, -EINVAL, "job %" PRId64 " is %s%s: nothing to %s", id, row.status,
                  store_job_status_final(row.status) ? "" : " and not running here", verb);
    store_job_clear(&row);
    return ret;
}

void jobs_who(const struct api_request *req, char *out, size_t len)
{
    struct passwd pw, *res = NULL;
    char buf[1024];

    if (req->peer.transport == API_TRANSPORT_TLS) {
        snprintf(out, len, "peer");
        return;
    }
    if (!req->peer.has_cred) {
        snprintf(out, len, "unknown");
        return;
    }
    if (getpwuid_r(req->peer.uid, &pw, buf, sizeof(buf), &res) == 0 && res)
        snprintf(out, len, "uid %u (%s)", (unsigned)req->peer.uid, pw.pw_name);
    else
        snprintf(out, len, "uid %u", (unsigned)req->peer.uid);
}

unsigned jobs_running(struct godwitd *d)
{
    struct jobs *js = d->jobs;
    unsigned n;

    if (!js)
        return 0;
    pthread_mutex_lock(&js->lock);
    n = js->nrunners;
    pthread_mutex_unlock(&js->lock);
    return n;
}

/* ---- life cycle ---- */

/* Settle at the latest JOBS_SETTLE_MS after start, when no request came. */
static void *jobs_settle_thread(void *opaque)
{
    struct godwitd *d = opaque;
    struct jobs *js = d->jobs;
    struct timespec ts;

    deadline_after(&ts, JOBS_SETTLE_MS);
    pthread_mutex_lock(&js->lock);
    while (!js->stop && !js->settled &&
           pthread_cond_timedwait(&js->cond, &js->lock, &ts) != ETIMEDOUT)
        ;
    bool stop = js->stop;
    pthread_mutex_unlock(&js->lock);
    if (!stop)
        jobs_settle(d);
    return NULL;
}

int jobs_init(struct godwitd *d, char *err, size_t errlen)
{
    struct jobs *js = jobs_get(d);
    struct store_job *v = NULL;
    size_t n = 0;
    int ret;

    if (!js)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    godwitd_store_lock(d);
    ret = store_job_list(d->store, true, &v, &n);
    if (ret < 0)
        gw_fail(err, errlen, ret, "unfinished jobs: %s", store_errmsg(d->store));
    godwitd_store_unlock(d);
    if (ret < 0)
        return ret;
    pthread_mutex_lock(&js->lock);
    js->pending = n ? calloc(n, sizeof(*js->pending)) : NULL;
    if (n && !js->pending) {
        pthread_mutex_unlock(&js->lock);
        store_job_list_free(v, n);
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        js->pending[i].id = v[i].id;
        snprintf(js->pending[i].kind, sizeof(js->pending[i].kind), "%s", v[i].kind);
        snprintf(js->pending[i].direction, sizeof(js->pending[i].direction), "%s", v[i].direction);
    }
    js->npending = n;
    js->initialized = true;
    for (unsigned k = 0; k < js->nkinds; k++)
        pending_pickup(js, d, js->kinds[k]);
    if (js->npending)
        gw_log("jobs: %zu unfinished job(s) wait for their kind", js->npending);
    pthread_mutex_unlock(&js->lock);
    store_job_list_free(v, n);
    if (pthread_create(&js->settler, NULL, jobs_settle_thread, d) == 0)
        js->settle_thread = true;
    else
        jobs_settle(d);
    return 0;
}

void jobs_fini(struct godwitd *d)
{
    struct jobs *js = d->jobs;
    struct timespec ts;
    unsigned left;

    if (!js)
        return;
    pthread_mutex_lock(&js->lock);
    js->stop = true;
    pthread_cond_broadcast(&js->cond);
    pthread_mutex_unlock(&js->lock);
    if (js->settle_thread)
        pthread_join(js->settler, NULL);
    js->settle_thread = false;
    /* the runners see d->stopping (job_stopping) and wind down */
    deadline_after(&ts, JOBS_FINI_WAIT_MS);
    pthread_mutex_lock(&js->lock);
    while (js->nrunners && pthread_cond_timedwait(&js->cond, &js->lock, &ts) != ETIMEDOUT)
        ;
    left = js->nrunners;
    pthread_mutex_unlock(&js->lock);
    if (left) {
        /* they still reference js: leave it to the exiting process */
        gw_log("jobs: %u job runner(s) still busy; the jobs resume at the next start", left);
        return;
    }
    d->jobs = NULL;
    free(js->pending);
    pthread_cond_destroy(&js->cond);
    pthread_mutex_destroy(&js->lock);
    free(js);
}
