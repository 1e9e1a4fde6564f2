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

#define JOBS_KINDS_MAX     16
#define JOBS_PROGRESS_MS   250  /* migration-progress events, at most every */
#define JOBS_SETTLE_MS     5000 /* jobs_settle at the latest after jobs_init */
#define JOBS_FINI_WAIT_MS  5000 /* jobs_fini waits for runners this long */
#define JOBS_RECENT_MS     (24 * 3600 * 1000LL)
#define JOBS_RECENT_MAX    50
#define JOBS_HISTORY_MAX   10000
#define JOBS_HISTORY_BATCH 500
#define JOBS_RESTART_ERROR "interrupted: godwitd restarted"

struct job {
    struct godwitd *d;
    const struct job_kind *k;
    int64_t id;
    void *arg;
    void (*free_arg)(void *);
    json_t *options;  /* owned */
    bool resuming;    /* run k->resume instead of k->run */
    bool released;    /* resume runs because the last hold lifted */
    atomic_bool held; /* an active hold: park at the next safe point */
    atomic_bool cancelled;
    int64_t progress_ms; /* last migration-progress event (unix ms), runner only */
    struct job *next;    /* jobs->runners */
};

struct jobs_pending {
    int64_t id;
    char kind[STORE_WORD_MAX];
    char direction[STORE_WORD_MAX];
};

struct jobs {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a runner ended; stop */
    const struct job_kind *kinds[JOBS_KINDS_MAX];
    unsigned nkinds;
    struct job *runners;
    unsigned nrunners;
    struct jobs_pending *pending; /* unfinished at start, no runner yet */
    size_t npending;
    bool initialized, settled;
    atomic_bool stop; /* jobs_fini: runners wind down */
    bool settle_thread;
    pthread_t settler;
};

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

int job_hold_own(struct job *j, const char *type, const char *reason, int64_t *hold)
{
    struct store_hold h = {0};
    int ret;

    h.job_id = j->id;
    snprintf(h.type, sizeof(h.type), "%s", type);
    snprintf(h.reason, sizeof(h.reason), "%s", reason);
    snprintf(h.set_by, sizeof(h.set_by), "godwitd (the job itself)");
    godwitd_store_lock(j->d);
    ret = store_hold_add(j->d->store, &h, hold);
    godwitd_store_unlock(j->d);
    if (ret == 0)
        events_notify(j->d);
    return ret;
}

int job_lift_own(struct job *j, const char *type, const char *by)
{
    struct store_hold *hs = NULL;
    size_t n = 0;
    int lifted = 0;

    godwitd_store_lock(j->d);
    if (store_hold_list(j->d->store, j->id, true, &hs, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(hs[i].type, type) && store_hold_lift(j->d->store, hs[i].id, by) == 0)
                lifted++;
    godwitd_store_unlock(j->d);
    store_hold_list_free(hs, n);
    if (lifted)
        events_notify(j->d);
    return lifted;
}

/* Has the job an active hold that parks it (any but technical, which the
 * job itself keeps retrying through)?  Under the store lock. */
static bool job_parking_holds(struct godwitd *d, int64_t id)
{
    struct store_hold *hs = NULL;
    size_t n = 0;
    bool park = false;

    if (store_hold_list(d->store, id, true, &hs, &n) < 0)
        return false;
    for (size_t i = 0; i < n; i++)
        park |= strcmp(hs[i].type, "technical") != 0;
    store_hold_list_free(hs, n);
    return park;
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

static void jobs_recheck_slots(struct jobs *js, struct godwitd *d);

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
static void jobs_after_finished(struct jobs *js, struct godwitd *d, int64_t done_id,
                                const char *status);

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

static const struct job_kind *kind_find(struct jobs *js, const char *kind, const char *direction)
{
    for (unsigned i = 0; i < js->nkinds; i++)
        if (!strcmp(js->kinds[i]->kind, kind) && !strcmp(js->kinds[i]->direction, direction))
            return js->kinds[i];
    return NULL;
}

/* Under js->lock: start a resume runner for a parked job of a holdable
 * kind (its last hold lifted, or it is being cancelled: cancelled set).
 * 0, or -errno. */
static int job_wake(struct jobs *js, struct godwitd *d, const struct job_kind *k, int64_t id,
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
                     !strcmp(row.status, "held") && !cancelled && job_parking_holds(d, id));
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
        running = !store_job_status_final(row.status) && !job_parking_holds(old->d, old->id);
        store_job_clear(&row);
    }
    godwitd_store_unlock(old->d);
    if (running || cancelled)
        (void)job_wake(js, old->d, old->k, old->id, cancelled);
}

/* Under js->lock: job `done_id` finished (status): lift the dependency
 * holds that waited for it, and run the jobs that have no hold left. */
static void jobs_after_finished(struct jobs *js, struct godwitd *d, int64_t done_id,
                                const char *status)
{
    struct store_job *v = NULL;
    size_t n = 0;
    char by[96];

    snprintf(by, sizeof(by), "job %" PRId64 " finished (%s)", done_id, status);
    godwitd_store_lock(d);
    if (store_job_list(d->store, true, &v, &n) < 0)
        n = 0;
    godwitd_store_unlock(d);
    for (size_t i = 0; i < n; i++) {
        struct store_hold *hs = NULL;
        size_t nh = 0, lifted = 0;
        bool running = false;

        if (strcmp(v[i].status, "held"))
            continue;
        godwitd_store_lock(d);
        if (store_hold_list(d->store, v[i].id, true, &hs, &nh) == 0) {
            for (size_t k = 0; k < nh; k++) {
                json_t *l = hs[k].lift ? json_loads(hs[k].lift, 0, NULL) : NULL;
                if (!strcmp(hs[k].type, "dependency") &&
                    json_integer_value(json_object_get(l, "after_job")) == done_id &&
                    store_hold_lift(d->store, hs[k].id, by) == 0)
                    lifted++;
                json_decref(l);
            }
            store_hold_list_free(hs, nh);
        }
        struct store_job r;
        if (lifted && store_job_get(d->store, v[i].id, &r) == 0) {
            running = !store_job_status_final(r.status) && !job_parking_holds(d, v[i].id);
            store_job_clear(&r);
        }
        godwitd_store_unlock(d);
        if (!lifted)
            continue;
        gw_log("job %" PRId64 ": %s: its dependency hold lifted", v[i].id, by);
        struct job *j;
        for (j = js->runners; j; j = j->next)
            if (j->id == v[i].id)
                break;
        if (running && j)
            atomic_store(&j->held, false);
        else if (running) {
            const struct job_kind *k = kind_find(js, v[i].kind, v[i].direction);
            if (k && k->resume)
                (void)job_wake(js, d, k, v[i].id, false);
        }
    }
    store_job_list_free(v, n);
    jobs_recheck_slots(js, d);
}

/* Under the store lock: outgoing jobs that hold a migration slot (running,
 * not yet waiting for a confirm). */
static unsigned jobs_out_slots_used(struct godwitd *d)
{
    struct store_job *v = NULL;
    size_t n = 0;
    unsigned used = 0;

    if (store_job_list(d->store, true, &v, &n) < 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        used += !strcmp(v[i].direction, "out") && !strcmp(v[i].status, "running") &&
                strcmp(v[i].phase, "confirm");
    store_job_list_free(v, n);
    return used;
}

/* Under js->lock: while this host has a free outgoing slot, lift the
 * oldest resources hold waiting for one ({"slot": "out"}) and run its job. */
static void jobs_recheck_slots(struct jobs *js, struct godwitd *d)
{
    unsigned max = d->max_out ? d->max_out : 2;

    for (;;) {
        struct store_job *v = NULL;
        size_t n = 0;
        int64_t job = 0, hold = 0;

        godwitd_store_lock(d);
        if (jobs_out_slots_used(d) >= max || store_job_list(d->store, true, &v, &n) < 0) {
            godwitd_store_unlock(d);
            return;
        }
        for (size_t i = 0; i < n && !hold; i++) { /* oldest first */
            struct store_hold *hs = NULL;
            size_t nh = 0;
            if (strcmp(v[i].status, "held") ||
                store_hold_list(d->store, v[i].id, true, &hs, &nh) < 0)
                continue;
            for (size_t k = 0; k < nh && !hold; k++) {
                json_t *l = hs[k].lift ? json_loads(hs[k].lift, 0, NULL) : NULL;
                const char *slot = json_string_value(json_object_get(l, "slot"));
                if (!strcmp(hs[k].type, "resources") && slot && !strcmp(slot, "out")) {
                    hold = hs[k].id;
                    job = v[i].id;
                }
                json_decref(l);
            }
            store_hold_list_free(hs, nh);
        }
        bool running = false;
        char kind[STORE_WORD_MAX] = "", dir[STORE_WORD_MAX] = "";
        if (hold && store_hold_lift(d->store, hold, "a migration slot is free") == 0) {
            struct store_job r;
            if (store_job_get(d->store, job, &r) == 0) {
                running = !job_parking_holds(d, job);
                snprintf(kind, sizeof(kind), "%s", r.kind);
                snprintf(dir, sizeof(dir), "%s", r.direction);
                store_job_clear(&r);
            }
        } else {
            hold = 0;
        }
        godwitd_store_unlock(d);
        store_job_list_free(v, n);
        if (!hold)
            return;
        events_notify(d);
        gw_log("job %" PRId64 ": a migration slot is free: its resources hold lifted", job);
        struct job *j;
        for (j = js->runners; j; j = j->next)
            if (j->id == job)
                break;
        if (running && j)
            atomic_store(&j->held, false);
        else if (running) {
            const struct job_kind *k = kind_find(js, kind, dir);
            if (k && k->resume)
                (void)job_wake(js, d, k, job, false);
        }
        if (!running)
            return; /* still held otherwise: the slot stays free for now */
    }
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
        atomic_store(&j->held, !strcmp(row.status, "held") && job_parking_holds(d, p.id));
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
    if (kind_find(js, k->kind, k->direction) || js->nkinds >= JOBS_KINDS_MAX) {
        gw_log("jobs: kind %s %s registered twice or too many kinds", k->kind, k->direction);
    } else {
        js->kinds[js->nkinds++] = k;
        if (js->initialized)
            pending_pickup(js, d, k);
    }
    pthread_mutex_unlock(&js->lock);
}

/* Under js->lock and the store lock: is job `after` finished (or gone)? */
static bool job_is_over(struct godwitd *d, int64_t after)
{
    struct store_job r;
    bool over = true;

    if (store_job_get(d->store, after, &r) == 0) {
        over = store_job_status_final(r.status);
        store_job_clear(&r);
    }
    return over;
}

/* Under js->lock, once at start: dependency holds on jobs that finished
 * while this daemon was down lift now. */
static void jobs_recheck_dependencies(struct jobs *js, struct godwitd *d)
{
    struct store_job *v = NULL;
    size_t n = 0;
    int64_t over[64];
    size_t nover = 0;

    godwitd_store_lock(d);
    if (store_job_list(d->store, true, &v, &n) < 0)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        struct store_hold *hs = NULL;
        size_t nh = 0;
        if (strcmp(v[i].status, "held") || store_hold_list(d->store, v[i].id, true, &hs, &nh))
            continue;
        for (size_t k = 0; k < nh && nover < GW_ARRAY_SIZE(over); k++) {
            json_t *l = hs[k].lift ? json_loads(hs[k].lift, 0, NULL) : NULL;
            int64_t after = json_integer_value(json_object_get(l, "after_job"));
            if (!strcmp(hs[k].type, "dependency") && after > 0 && job_is_over(d, after))
                over[nover++] = after;
            json_decref(l);
        }
        store_hold_list_free(hs, nh);
    }
    godwitd_store_unlock(d);
    store_job_list_free(v, n);
    for (size_t i = 0; i < nover; i++)
        jobs_after_finished(js, d, over[i], "finished while godwitd was down");
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
    if (!kind_find(js, k->kind, k->direction)) {
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
        if (after > 0 && job_is_over(d, after))
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
        const struct job_kind *k = kind_find(js, row.kind, row.direction);
        if (!pending && k && k->holdable && k->resume)
            /* a parked job of a holdable kind: its resume cleans up (puts
             * the VM back, tells the destination) and ends it cancelled */
            ret = job_wake(js, d, k, id, true);
        else
            ret = job_finish_idle(d, id, "cancelled", NULL, err, errlen);
        if (ret < 0 && !err[0])
            gw_fail(err, errlen, ret, "cannot cancel job %" PRId64, id);
    }
    store_job_clear(&row);
    pthread_mutex_unlock(&js->lock);
    return ret;
}

int jobs_hold(struct godwitd *d, int64_t id, const char *type, const char *reason,
              const char *set_by, const json_t *lift, int64_t *hold, char *err, size_t errlen)
{
    struct jobs *js = d->jobs;
    struct store_job row;
    struct store_hold h = {0};
    const struct job_kind *k;
    struct job *j;
    int ret;

    if (!js)
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    if (!store_hold_type_valid(type))
        return gw_fail(err, errlen, -EINVAL,
                       "unknown hold type '%s' (technical, resources, compliance, dependency, "
                       "window, budget, manual)",
                       type ? type : "");
    if (!reason || !reason[0] || strlen(reason) >= STORE_TEXT_MAX)
        return gw_fail(err, errlen, -EINVAL, "a hold needs a reason (1 to %d characters)",
                       STORE_TEXT_MAX - 1);
    pthread_mutex_lock(&js->lock);
    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    godwitd_store_unlock(d);
    if (ret < 0) {
        pthread_mutex_unlock(&js->lock);
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    }
    k = kind_find(js, row.kind, row.direction);
    if (store_job_status_final(row.status))
        ret = gw_fail(err, errlen, -EINVAL, "job %" PRId64 " is %s already: nothing to hold", id,
                      row.status);
    else if (!k || !k->holdable)
        ret = gw_fail(err, errlen, -EOPNOTSUPP, "a %s %s job cannot be held%s", row.kind,
                      !strcmp(row.direction, "in") ? "incoming" : "outgoing",
                      !strcmp(row.kind, "live") ? " yet (live migration holds need godwit-vm to "
                                                  "pause pre-copy: not built yet)"
                      : !strcmp(row.direction, "in") ? " (hold it on its source host)"
                                                     : "");
    for (j = js->runners; ret == 0 && j; j = j->next)
        if (j->id == id && j->k->control)
            ret = j->k->control(j, "hold", NULL, err, errlen);
    if (ret == 0) {
        h.job_id = id;
        snprintf(h.type, sizeof(h.type), "%s", type);
        snprintf(h.reason, sizeof(h.reason), "%s", reason);
        snprintf(h.set_by, sizeof(h.set_by), "%s", set_by ? set_by : "unknown");
        h.lift = lift ? json_dumps(lift, JSON_COMPACT) : NULL;
        godwitd_store_lock(d);
        ret = store_hold_add(d->store, &h, hold);
        free(h.lift);
        h.lift = NULL;
        if (ret < 0)
            gw_fail(err, errlen, ret, "%s", store_errmsg(d->store));
        godwitd_store_unlock(d);
    }
    for (j = js->runners; ret == 0 && j; j = j->next)
        if (j->id == id)
            atomic_store(&j->held, true);
    store_job_clear(&row);
    pthread_mutex_unlock(&js->lock);
    if (ret == 0)
        events_notify(d);
    return ret;
}

int jobs_release(struct godwitd *d, int64_t id, int64_t hold, const char *by, char *err,
                 size_t errlen)
{
    struct jobs *js = d->jobs;
    struct store_hold *hs = NULL;
    struct store_job row;
    size_t n = 0, lifted = 0;
    bool running = false;
    struct job *j;
    int ret;

    if (!js)
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    pthread_mutex_lock(&js->lock);
    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    if (ret == 0) {
        ret = store_hold_list(d->store, id, true, &hs, &n);
        for (size_t i = 0; ret == 0 && i < n; i++) {
            if (hold ? hs[i].id != hold : strcmp(hs[i].type, "manual"))
                continue;
            ret = store_hold_lift(d->store, hs[i].id, by ? by : "unknown");
            lifted += ret == 0;
        }
        if (ret < 0)
            gw_fail(err, errlen, ret, "%s", store_errmsg(d->store));
        store_hold_list_free(hs, n);
        store_job_clear(&row);
        if (ret == 0 && store_job_get(d->store, id, &row) == 0) {
            running = !store_job_status_final(row.status) && !job_parking_holds(d, id);
            store_job_clear(&row);
        }
    } else {
        gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    }
    godwitd_store_unlock(d);
    if (ret == 0 && !lifted && hold)
        ret =
            gw_fail(err, errlen, -ENOENT, "job %" PRId64 " has no active hold %" PRId64, id, hold);
    else if (ret == 0 && !lifted)
        ret = gw_fail(err, errlen, -EALREADY, "job %" PRId64 " has no active manual hold", id);
    if (ret == 0 && running) {
        for (j = js->runners; j; j = j->next)
            if (j->id == id)
                break;
        if (j) {
            atomic_store(&j->held, false); /* it has not parked yet: it goes on */
        } else {
            const struct job_kind *k = NULL;
            godwitd_store_lock(d);
            if (store_job_get(d->store, id, &row) == 0) {
                k = kind_find(js, row.kind, row.direction);
                store_job_clear(&row);
            }
            godwitd_store_unlock(d);
            if (k && k->resume)
                ret = job_wake(js, d, k, id, false);
        }
    }
    pthread_mutex_unlock(&js->lock);
    if (ret == 0)
        events_notify(d);
    return ret;
}

bool job_approved(const struct job *j)
{
    struct store_hold *hs = NULL;
    size_t n = 0;
    bool yes = false;

    godwitd_store_lock(j->d);
    if (store_hold_list(j->d->store, j->id, false, &hs, &n) == 0)
        for (size_t i = 0; i < n; i++)
            yes |= !strcmp(hs[i].type, "compliance") && hs[i].lifted_ms &&
                   !strncmp(hs[i].lifted_by, "approved by ", 12);
    godwitd_store_unlock(j->d);
    store_hold_list_free(hs, n);
    return yes;
}

int jobs_approve(struct godwitd *d, int64_t id, const char *who, const char *note, char *err,
                 size_t errlen)
{
    struct jobs *js = d->jobs;
    struct store_hold *hs = NULL;
    struct store_job row;
    size_t n = 0, lifted = 0, waiting = 0;
    bool running = false, refused = false;
    char by[STORE_WHO_MAX + 160];
    int ret;

    if (!js)
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    snprintf(by, sizeof(by), "approved by %s%s%.120s", who, note && note[0] ? ": " : "",
             note ? note : "");
    pthread_mutex_lock(&js->lock);
    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    if (ret == 0 && store_hold_list(d->store, id, true, &hs, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            json_t *l = hs[i].lift ? json_loads(hs[i].lift, 0, NULL) : NULL;
            if (!strcmp(hs[i].type, "compliance") && json_is_true(json_object_get(l, "approval"))) {
                waiting++;
                if (json_is_true(json_object_get(l, "four_eyes")) && !strcmp(row.started_by, who))
                    refused = true;
                else if (store_hold_lift(d->store, hs[i].id, by) == 0)
                    lifted++;
            }
            json_decref(l);
        }
        store_hold_list_free(hs, n);
        struct store_job r2;
        if (lifted && store_job_get(d->store, id, &r2) == 0) {
            running = !store_job_status_final(r2.status) && !job_parking_holds(d, id);
            store_job_clear(&r2);
        }
    }
    godwitd_store_unlock(d);
    if (ret < 0)
        ret = gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    else if (refused && !lifted)
        ret = gw_fail(err, errlen, -EPERM,
                      "four-eyes: %s started job %" PRId64 " and cannot approve it; someone "
                      "else must",
                      who, id);
    else if (!waiting)
        ret = gw_fail(err, errlen, -EALREADY, "job %" PRId64 " waits for no approval", id);
    if (ret == 0 && running) {
        struct job *j;
        for (j = js->runners; j; j = j->next)
            if (j->id == id)
                break;
        const struct job_kind *k = kind_find(js, row.kind, row.direction);
        if (j)
            atomic_store(&j->held, false);
        else if (k && k->resume)
            ret = job_wake(js, d, k, id, false);
    }
    if (ret == 0 || ret == -EPERM || ret == -EALREADY)
        store_job_clear(&row);
    pthread_mutex_unlock(&js->lock);
    if (ret == 0)
        events_notify(d);
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

/* ---- the API ---- */

static json_t *json_text_or(const char *text, json_t *fallback)
{
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;

    if (v) {
        json_decref(fallback);
        return v;
    }
    return fallback;
}

static json_t *json_ms(int64_t ms)
{
    return ms > 0 ? json_integer(ms) : json_null();
}

/* The job object (without history). */
static json_t *job_json(const struct store_job *r)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)r->id, "kind", r->kind, "direction", r->direction, "vm", r->vm,
                     "peer", r->peer, "phase", r->phase, "status", r->status, "started_by",
                     r->started_by, "created", (json_int_t)r->created_ms, "started",
                     json_ms(r->started_ms), "ended", json_ms(r->ended_ms), "options",
                     json_text_or(r->options, json_object()), "figures",
                     json_text_or(r->figures, json_object()), "error",
                     r->error ? json_string(r->error) : json_null());
}

/* The job's holds, oldest first: {id, type, reason, set_by, since, lifted:
 * null or {by, at}}. */
static json_t *job_holds(struct godwitd *d, int64_t id)
{
    struct store_hold *hs = NULL;
    json_t *a = json_array();
    size_t n = 0;

    godwitd_store_lock(d);
    int ret = store_hold_list(d->store, id, false, &hs, &n);
    godwitd_store_unlock(d);
    for (size_t i = 0; ret == 0 && i < n; i++)
        json_array_append_new(
            a, json_pack("{s:I,s:s,s:s,s:s,s:I,s:o}", "id", (json_int_t)hs[i].id, "type",
                         hs[i].type, "reason", hs[i].reason, "set_by", hs[i].set_by, "since",
                         (json_int_t)hs[i].set_ms, "lifted",
                         hs[i].lifted_ms ? json_pack("{s:s,s:I}", "by", hs[i].lifted_by, "at",
                                                     (json_int_t)hs[i].lifted_ms)
                                         : json_null()));
    store_hold_list_free(hs, n);
    return a;
}

/* The job's events, oldest first; migration-progress ones only if asked. */
static json_t *job_history(struct godwitd *d, int64_t id, bool progress)
{
    json_t *h = json_array();
    char subject[32];
    int64_t since = 0;
    size_t total = 0;

    snprintf(subject, sizeof(subject), "job/%" PRId64, id);
    while (h && total < JOBS_HISTORY_MAX) {
        struct store_event *v = NULL;
        size_t n = 0;
        int ret;

        godwitd_store_lock(d);
        ret = store_event_list_subject(d->store, subject, since, JOBS_HISTORY_BATCH, &v, &n);
        godwitd_store_unlock(d);
        if (ret < 0)
            break;
        for (size_t i = 0; i < n; i++) {
            since = v[i].id;
            total++;
            if (!progress && !strcmp(v[i].type, "migration-progress"))
                continue;
            json_array_append_new(h, json_pack("{s:I, s:s, s:o}", "time", (json_int_t)v[i].time_ms,
                                               "type", v[i].type, "data",
                                               json_text_or(v[i].data, json_object())));
        }
        store_event_list_free(v, n);
        if (n < JOBS_HISTORY_BATCH)
            break;
    }
    return h;
}

/* {id}: a positive integer, else a 400 reply. */
static bool job_id_param(struct api_request *req, struct api_reply *rep, int64_t *id)
{
    const char *s = api_param(req, "id");
    char *end;
    long long v;

    if (!s || *s < '1' || *s > '9') {
        api_reply_error(rep, 400, "job id '%s': a positive integer", s ? s : "");
        return false;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0) {
        api_reply_error(rep, 400, "job id '%s': a positive integer", s);
        return false;
    }
    *id = v;
    return true;
}

static json_t *job_holds(struct godwitd *d, int64_t id);

static void jobs_list_get(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *all_q = api_query(req, "all");
    struct store_job *v = NULL;
    size_t n = 0, finished = 0;
    int64_t now = store_now_ms();
    json_t *arr;
    bool all;
    int ret;

    if (all_q && strcmp(all_q, "0") && strcmp(all_q, "1"))
        return api_reply_error(rep, 400, "all: 0 or 1");
    all = all_q && !strcmp(all_q, "1");
    jobs_settle(d);
    godwitd_store_lock(d);
    ret = store_job_list(d->store, false, &v, &n);
    if (ret < 0)
        api_reply_error(rep, 500, "jobs: %s", store_errmsg(d->store));
    godwitd_store_unlock(d);
    if (ret < 0)
        return;
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (!all && store_job_status_final(v[i].status) &&
            (now - v[i].ended_ms > JOBS_RECENT_MS || ++finished > JOBS_RECENT_MAX))
            continue;
        json_t *o = job_json(&v[i]);
        if (o && !strcmp(v[i].status, "held")) /* why it waits, at a glance */
            json_object_set_new(o, "holds", job_holds(d, v[i].id));
        json_array_append_new(arr, o);
    }
    store_job_list_free(v, n);
    if (!arr)
        return api_reply_error(rep, 500, "out of memory");
    api_reply_json(rep, 200, json_pack("{s:o}", "jobs", arr));
}

/* The job with its history: a 200 body, or an error reply and NULL. */
static json_t *job_full(struct api_request *req, struct api_reply *rep, int64_t id)
{
    struct godwitd *d = req->ctx;
    const char *progress = api_query(req, "progress");
    struct store_job row;
    json_t *o;
    int ret;

    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    if (ret < 0 && ret != -ENOENT)
        api_reply_error(rep, 500, "job %" PRId64 ": %s", id, store_errmsg(d->store));
    godwitd_store_unlock(d);
    if (ret == -ENOENT)
        api_reply_error(rep, 404, "no job %" PRId64, id);
    if (ret < 0)
        return NULL;
    o = job_json(&row);
    store_job_clear(&row);
    if (o)
        json_object_set_new(o, "holds", job_holds(d, id));
    if (o)
        json_object_set_new(o, "history", job_history(d, id, progress && !strcmp(progress, "1")));
    if (!o)
        api_reply_error(rep, 500, "out of memory");
    return o;
}

static void jobs_show(struct api_request *req, struct api_reply *rep)
{
    const char *progress = api_query(req, "progress");
    int64_t id;
    json_t *o;

    if (!job_id_param(req, rep, &id))
        return;
    if (progress && strcmp(progress, "0") && strcmp(progress, "1"))
        return api_reply_error(rep, 400, "progress: 0 or 1");
    jobs_settle(req->ctx);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 200, o);
}

static void jobs_cancel_post(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    char err[256] = "";
    int64_t id;
    json_t *o;
    int ret;

    if (!job_id_param(req, rep, &id))
        return;
    jobs_settle(d);
    ret = jobs_cancel(d, id, err, sizeof(err));
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "no job %" PRId64, id);
    if (ret == -EINVAL)
        return api_reply_error(rep, 409, "%s", err);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    gw_log("job %" PRId64 ": cancel asked", id);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 202, o);
}

/* POST /1.0/jobs/{id}/confirm and /revert: the operator's answer to a job
 * waiting in its confirm phase. */
static void jobs_verb_post(struct api_request *req, struct api_reply *rep, const char *verb)
{
    struct godwitd *d = req->ctx;
    char err[512] = "";
    int64_t id;
    json_t *o;
    int ret;

    if (!job_id_param(req, rep, &id))
        return;
    jobs_settle(d);
    ret = jobs_control(d, id, verb, req->body, err, sizeof(err));
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "no job %" PRId64, id);
    if (ret == -EINVAL || ret == -EOPNOTSUPP)
        return api_reply_error(rep, 409, "%s", err);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    gw_log("job %" PRId64 ": %s asked", id, verb);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 202, o);
}

/* POST /1.0/jobs/{id}/hold {reason, type?}: 201 {hold, job}. */
static void jobs_hold_post(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *reason = json_string_value(json_object_get(req->body, "reason"));
    const char *type = json_string_value(json_object_get(req->body, "type"));
    char err[512] = "", who[STORE_WHO_MAX];
    int64_t id, hold = 0;
    json_t *o;
    int ret;

    if (!job_id_param(req, rep, &id))
        return;
    jobs_settle(d);
    jobs_who(req, who, sizeof(who));
    ret = jobs_hold(d, id, type ? type : "manual", reason, who, NULL, &hold, err, sizeof(err));
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "no job %" PRId64, id);
    if (ret == -EINVAL && (!reason || !reason[0] || strstr(err, "hold type")))
        return api_reply_error(rep, 400, "%s", err);
    if (ret == -EINVAL || ret == -EOPNOTSUPP)
        return api_reply_error(rep, 409, "%s", err);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    gw_log("job %" PRId64 ": hold %" PRId64 " set by %s: %s", id, hold, who, reason);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 201, json_pack("{s:I,s:o}", "hold", (json_int_t)hold, "job", o));
}

/* POST /1.0/jobs/{id}/release {hold?}: 202 and the job. */
static void jobs_release_post(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    json_int_t hold = json_integer_value(json_object_get(req->body, "hold"));
    char err[512] = "", who[STORE_WHO_MAX];
    int64_t id;
    json_t *o;
    int ret;

    if (!job_id_param(req, rep, &id))
        return;
    if (hold < 0)
        return api_reply_error(rep, 400, "hold: a hold id");
    jobs_settle(d);
    jobs_who(req, who, sizeof(who));
    ret = jobs_release(d, id, hold, who, err, sizeof(err));
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "%s", err);
    if (ret == -EALREADY)
        return api_reply_error(rep, 409, "%s", err);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    gw_log("job %" PRId64 ": released by %s", id, who);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 202, o);
}

/* POST /1.0/jobs/{id}/approve {note?}: 202 and the job. */
static void jobs_approve_post(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *note = json_string_value(json_object_get(req->body, "note"));
    char err[512] = "", who[STORE_WHO_MAX];
    int64_t id;
    json_t *o;
    int ret;

    if (!job_id_param(req, rep, &id))
        return;
    jobs_settle(d);
    jobs_who(req, who, sizeof(who));
    ret = jobs_approve(d, id, who, note, err, sizeof(err));
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "%s", err);
    if (ret == -EPERM)
        return api_reply_error(rep, 403, "%s", err);
    if (ret == -EALREADY)
        return api_reply_error(rep, 409, "%s", err);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    gw_log("job %" PRId64 ": approved by %s", id, who);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 202, o);
}

static const struct api_field jobs_approve_body[] = {{"note", API_T_STRING, false},
                                                     {NULL, 0, false}};
static const struct api_field jobs_hold_body[] = {
    {"reason", API_T_STRING, true}, {"type", API_T_STRING, false}, {NULL, 0, false}};
static const struct api_field jobs_release_body[] = {{"hold", API_T_INT, false}, {NULL, 0, false}};

static void jobs_confirm_post(struct api_request *req, struct api_reply *rep)
{
    jobs_verb_post(req, rep, "confirm");
}

static void jobs_revert_post(struct api_request *req, struct api_reply *rep)
{
    jobs_verb_post(req, rep, "revert");
}

const struct api_route jobs_routes[] = {
    {"GET", "/1.0/jobs", jobs_list_get, NULL},
    {"GET", "/1.0/jobs/{id}", jobs_show, NULL},
    {"POST", "/1.0/jobs/{id}/cancel", jobs_cancel_post, NULL},
    {"POST", "/1.0/jobs/{id}/confirm", jobs_confirm_post, NULL},
    {"POST", "/1.0/jobs/{id}/revert", jobs_revert_post, NULL},
    {"POST", "/1.0/jobs/{id}/hold", jobs_hold_post, jobs_hold_body},
    {"POST", "/1.0/jobs/{id}/release", jobs_release_post, jobs_release_body},
    {"POST", "/1.0/jobs/{id}/approve", jobs_approve_post, jobs_approve_body},
};
const size_t jobs_nroutes = GW_ARRAY_SIZE(jobs_routes);
