/*
 * The destination of a live migration (migrate.h).  Reached only by
 * trusted peers over HTTPS:
 *
 *   POST /1.0/incoming/precheck      {vm, compat}          200 or 409 with the reason
 *   POST /1.0/incoming               {vm, compat, source_job}   201 {job}
 *   POST /1.0/incoming/{id}/file?name=N&offset=O&size=S[&final=1]   the chunk's bytes
 *   POST /1.0/incoming/{id}/start    {key, postcopy?}      200 {port}
 *   POST /1.0/incoming/{id}/log[?final=1]   bytes of the source's console log,
 *                                                          after the switchover
 *   GET  /1.0/incoming/{id}                                {state, error, vm, migration}
 *   POST /1.0/incoming/{id}/recover                        200 {port}: a paused pre-copy
 *                                                          listens again (migrate-recover)
 *   POST /1.0/incoming/{id}/abort    {reason}
 *
 * {id} is this host's job id for the incoming VM.  The job's thread waits
 * for start (or abort, or MIGRATE_PREPARE_IDLE seconds), then watches the
 * incoming godwit-vm: running → the VM is this host's (state running, key
 * removed, job done); exited or failed → killed, folder removed, job
 * failed.  A pre-copy the source paused (a hold there, a lost link) is
 * alive: godwit-vm keeps what arrived and waits for the source's
 * .../recover; only a pause longer than the source's give-up time (plus
 * IN_GIVE_UP_GRACE_MS: its abort may not get through) fails it here.  Nothing the source sends is
 * trusted beyond its type checks: file names are plain names inside the VM's folder, offsets and
 * sizes are bounded, the definition goes through vm_define's checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "godwitd/jobs.h"
#include "godwitd/migrate.h"
#include "godwitd/migrate_cold.h"
#include "godwitd/migrate_int.h"
#include "godwitd/vms.h"
#include "qmp/qmp_client.h"

#define IN_FILE_MAX         (1ull << 32) /* a boot file of 4 GiB is not a boot file */
#define IN_FILES_MAX        16
#define IN_QMP_MS           5000
#define IN_LOG_MAX          (2u << 20) /* the source's console log (it keeps 1-2 MiB) */
#define IN_MIGRATION_POLLS  20         /* query-migrate every 20 polls (1 s) */
#define IN_GIVE_UP_GRACE_MS 30000
#define ST_PAUSED           "x-godwit-precopy-paused"
#define ST_RECOVER          "x-godwit-precopy-recover"

static const char *const in_state_names[] = {"preparing", "transferring", "running", "failed"};

static struct migrate_in *in_mod(struct godwitd *d)
{
    return d->migrate_in;
}

void migrate_in_put(struct incoming *in)
{
    struct migrate_in *m = in_mod(in->d);
    bool last;

    pthread_mutex_lock(&m->lock);
    last = --in->refs == 0;
    pthread_mutex_unlock(&m->lock);
    if (!last)
        return;
    migrate_in_cold_free(in);
    pthread_cond_destroy(&in->cond);
    pthread_mutex_destroy(&in->lock);
    free(in->log);
    free(in);
}

void migrate_in_link(struct incoming *in)
{
    struct migrate_in *m = in_mod(in->d);

    pthread_mutex_lock(&m->lock);
    in->next = m->list;
    m->list = in;
    pthread_mutex_unlock(&m->lock);
}

/* The incoming with this job id, with a reference, or NULL. */
struct incoming *migrate_in_find(struct godwitd *d, int64_t job)
{
    struct migrate_in *m = in_mod(d);
    struct incoming *in;

    pthread_mutex_lock(&m->lock);
    for (in = m->list; in && in->job != job; in = in->next)
        ;
    if (in)
        in->refs++;
    pthread_mutex_unlock(&m->lock);
    return in;
}

void migrate_in_unlink(struct incoming *in)
{
    struct migrate_in *m = in_mod(in->d);

    pthread_mutex_lock(&m->lock);
    for (struct incoming **p = &m->list; *p; p = &(*p)->next)
        if (*p == in) {
            *p = in->next;
            in->refs--; /* the list's */
            break;
        }
    pthread_mutex_unlock(&m->lock);
}

void migrate_in_fail(struct incoming *in, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&in->lock);
    if (in->state != IN_FAILED && in->state != IN_RUNNING) {
        va_start(ap, fmt);
        vsnprintf(in->error, sizeof(in->error), fmt, ap);
        va_end(ap);
        in->state = IN_FAILED;
    }
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
}

/* A new incoming with two references (the list's and the job's), not
 * yet on the list; NULL without memory. */
struct incoming *migrate_in_new(struct godwitd *d, const char *vm, const char *peer)
{
    struct incoming *in = calloc(1, sizeof(*in));
    pthread_condattr_t ca;

    if (!in)
        return NULL;
    in->d = d;
    snprintf(in->vm, sizeof(in->vm), "%s", vm);
    snprintf(in->peer, sizeof(in->peer), "%s", peer);
    pthread_mutex_init(&in->lock, NULL);
    /* every wait on it counts CLOCK_MONOTONIC time */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&in->cond, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(in->mode, sizeof(in->mode), "live");
    in->refs = 2;
    return in;
}

/* ---- the precheck ---- */

static void in_precheck(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    char msg[512];
    const char *mode = json_string_value(json_object_get(req->body, "mode"));
    const json_t *start = json_object_get(req->body, "start");
    unsigned st;

    if (!mode)
        mode = "live";
    if (strcmp(mode, "live") && strcmp(mode, "cold") && strcmp(mode, "suspended"))
        return api_reply_error(rep, 400, "mode: live, cold or suspended");
    st = migrate_in_check(d, json_object_get(req->body, "vm"), json_object_get(req->body, "compat"),
                          mode, json_object_get(req->body, "files"), !start || json_is_true(start),
                          msg, sizeof(msg));

    if (st)
        return api_reply_error(rep, st, "%s", msg);
    api_reply_json(rep, 200,
                   json_pack("{s:b,s:s,s:o}", "ok", 1, "host", d->name, "labels",
                             d->labels ? json_incref(d->labels) : json_object()));
}

/* ---- the destination's job ---- */

#define IN_ABORT_WAIT_MS 2000

/* Wait up to ms for the source's abort: true (in->error says why) if it
 * came. */
static bool in_wait_abort(struct incoming *in, long ms)
{
    struct timespec end, now;
    bool aborted;

    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += ms / 1000;
    end.tv_nsec += (ms % 1000) * 1000000L;
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&in->lock);
    while (!in->abort && !in->d->stopping) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
            break;
        pthread_cond_timedwait(&in->cond, &in->lock, &end);
    }
    aborted = in->abort;
    pthread_mutex_unlock(&in->lock);
    return aborted;
}

/* The incoming godwit-vm's migration status into in->migration: a paused
 * pre-copy waits for the source, up to its give-up time (plus a grace):
 * -ETIMEDOUT with err after that. */
static int in_watch_paused(struct incoming *in, struct qmp_client *c, char *err, size_t errlen)
{
    json_t *qm = NULL;
    int64_t now = store_now_ms(), since;
    char e2[256];

    if (qmp_client_execute(c, "query-migrate", NULL, IN_QMP_MS, &qm, e2, sizeof(e2)) < 0)
        return 0; /* query-status decides */
    const char *st = json_string_value(json_object_get(qm, "status"));
    bool waiting = st && (!strcmp(st, ST_PAUSED) || !strcmp(st, ST_RECOVER));
    pthread_mutex_lock(&in->lock);
    snprintf(in->migration, sizeof(in->migration), "%s", st ? st : "");
    if (!waiting)
        in->paused_ms = 0;
    else if (!in->paused_ms)
        in->paused_ms = now;
    since = in->paused_ms;
    pthread_mutex_unlock(&in->lock);
    json_decref(qm);
    int64_t limit =
        (in->give_up_ms > 0 ? in->give_up_ms : MIGRATE_GIVE_UP_S * 1000LL) + IN_GIVE_UP_GRACE_MS;
    if (waiting && now - since > limit)
        return gw_fail(err, errlen, -ETIMEDOUT,
                       "the source did not continue the paused transfer within %lld s",
                       (long long)(limit / 1000));
    return 0;
}

/* The incoming VM's outcome: wait for the process to run the guest (QMP
 * query-status "running") or to end. */
static int in_watch(struct incoming *in, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct qmp_client *c = NULL;
    int ret;

    if (vm_qmp_path(in->d, in->vm, path, sizeof(path)) < 0)
        return gw_fail(err, errlen, -ENAMETOOLONG, "path too long");
    ret = qmp_client_connect(path, IN_QMP_MS, &c, err, errlen);
    if (ret < 0)
        return ret;
    for (unsigned polls = 0;;) {
        json_t *r = NULL;
        bool abort_now;

        pthread_mutex_lock(&in->lock);
        abort_now = in->abort;
        pthread_mutex_unlock(&in->lock);
        if (abort_now) {
            qmp_client_free(c);
            return gw_fail(err, errlen, -ECANCELED, "%s",
                           in->error[0] ? in->error : "aborted by the source");
        }
        if (in->d->stopping) {
            /* the incoming VM goes on; in_resume decides at the next start */
            qmp_client_free(c);
            return gw_fail(err, errlen, -ESHUTDOWN, "godwitd stopped during the transfer");
        }
        ret = qmp_client_execute(c, "query-status", NULL, IN_QMP_MS, &r, err, errlen);
        if (ret < 0) {
            qmp_client_free(c);
            /* the process ends when the incoming migration fails: a
             * source that gave up says why a moment later */
            if (in_wait_abort(in, IN_ABORT_WAIT_MS))
                return gw_fail(err, errlen, -ECANCELED, "%s", in->error);
            return gw_fail(err, errlen, -EPIPE,
                           "the incoming godwit-vm ended before it ran the VM (see vms/%s/vm.log)",
                           in->vm);
        }
        const char *st = json_string_value(json_object_get(r, "status"));
        bool running = st && !strcmp(st, "running");
        json_decref(r);
        if (running)
            break;
        if (++polls % IN_MIGRATION_POLLS == 0 && in_watch_paused(in, c, err, errlen) < 0) {
            qmp_client_free(c);
            return -ETIMEDOUT;
        }
        usleep(50 * 1000);
    }
    qmp_client_free(c);
    return 0;
}

#define IN_LOG_WAIT_S 30

static void in_wait_log(struct incoming *in)
{
    struct timespec end, now;
    char err[256];

    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += IN_LOG_WAIT_S;
    pthread_mutex_lock(&in->lock);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (in->log_done || in->d->stopping || now.tv_sec >= end.tv_sec)
            break;
        now.tv_sec += 1;
        pthread_cond_timedwait(&in->cond, &in->lock, &now);
    }
    bool done = in->log_done;
    pthread_mutex_unlock(&in->lock);
    if (!done)
        gw_log("incoming %s: the source's console log did not come", in->vm);
    else if (in->log_len &&
             vm_log_prepend(in->d, in->vm, in->log, in->log_len, err, sizeof(err)) < 0)
        gw_log("incoming %s: %s", in->vm, err);
}

static int in_end(struct job *j, struct incoming *in, int ret, const char *err);

static int in_run(struct job *j, char *err, size_t errlen)
{
    struct incoming *in = job_arg(j);
    struct godwitd *d = in->d;
    struct timespec ts;
    int ret = 0;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += MIGRATE_PREPARE_IDLE;
    pthread_mutex_lock(&in->lock);
    while (in->state == IN_PREPARING && !in->abort && !d->stopping && !job_cancelled(j)) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec >= ts.tv_sec)
            break;
        t1.tv_sec += 1;
        pthread_cond_timedwait(&in->cond, &in->lock, &t1);
    }
    /* the abort's reason stays (copying in->error onto itself with
     * snprintf is undefined: glibc left it empty) */
    if (in->state == IN_PREPARING && !(in->abort && in->error[0]))
        snprintf(in->error, sizeof(in->error), "%s",
                 in->abort          ? "aborted by the source"
                 : job_cancelled(j) ? "cancelled"
                 : d->stopping      ? "godwitd stopped"
                                    : "the source never started the transfer");
    enum in_state st = in->state;
    pthread_mutex_unlock(&in->lock);
    if (st == IN_STARTED) {
        job_phase(j, "transfer");
        ret = in_watch(in, err, errlen);
    } else if (st == IN_PREPARING || st == IN_FAILED) {
        ret = gw_fail(err, errlen, -ECANCELED, "%s", in->error);
    }
    return in_end(j, in, ret, err);
}

/* The end of an incoming live job, watched to its outcome (ret: 0 the VM
 * runs here, else why not): the common tail of run and resume. */
static int in_end(struct job *j, struct incoming *in, int ret, const char *err)
{
    struct godwitd *d = in->d;

    if (ret == -ESHUTDOWN) {
        /* unfinished: nothing is killed; in_resume decides at the next start */
        migrate_in_unlink(in);
        return ret;
    }
    migrate_key_remove(d, in->vm);
    if (ret == 0) {
        struct store_vm row;
        godwitd_store_lock(d);
        if (store_vm_get(d->store, in->vm, &row) == 0) {
            store_vm_set_state(d->store, in->vm, "running", row.pid, row.exit_status);
            store_vm_clear(&row);
        }
        godwitd_store_unlock(d);
        pthread_mutex_lock(&in->lock);
        in->state = IN_RUNNING;
        pthread_cond_broadcast(&in->cond);
        pthread_mutex_unlock(&in->lock);
        char subject[STORE_NAME_MAX + 8];
        snprintf(subject, sizeof(subject), "vm/%s", in->vm);
        godwitd_event(d, "vm-arrived", subject,
                      json_pack("{s:s,s:s}", "vm", in->vm, "from", in->peer));
        /* the source sends its console log once it knows; it goes first */
        job_phase(j, "console-log");
        in_wait_log(in);
        migrate_in_unlink(in);
        job_phase(j, "done");
        return 0;
    }
    migrate_in_fail(in, "%s", err);
    /* nothing of the VM stays here */
    char why[256];
    if (vm_kill(d, in->vm, 5000, why, sizeof(why)) < 0 && strstr(why, "not running") == NULL)
        gw_log("incoming %s: %s", in->vm, why);
    if (vm_forget(d, in->vm, why, sizeof(why)) < 0)
        gw_log("incoming %s: %s", in->vm, why);
    migrate_in_unlink(in);
    return ret;
}

static void in_cancel(struct job *j)
{
    struct incoming *in = job_arg(j);

    if (!in) /* a resume that has not adopted its incoming yet */
        return;
    pthread_mutex_lock(&in->lock);
    in->abort = true;
    snprintf(in->error, sizeof(in->error), "cancelled on host %s", in->d->name);
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
}

static void in_free_arg(void *p)
{
    migrate_in_put(p);
}

#define IN_RESUME_WAIT_MS 10000

/* The reattached incoming godwit-vm of a job found unfinished at start:
 * true when it runs the guest, waiting up to IN_RESUME_WAIT_MS for a
 * switchover that was under way.  (The migration goes on without this
 * daemon: the source may have sent COMMIT meanwhile, and then this copy
 * is the only one.) */
static bool in_resume_runs(struct godwitd *d, const char *vm)
{
    char path[PATH_MAX], err[256];
    struct qmp_client *c = NULL;
    int64_t end = store_now_ms() + IN_RESUME_WAIT_MS;
    bool running = false;

    if (vm_qmp_path(d, vm, path, sizeof(path)) < 0 ||
        qmp_client_connect(path, IN_QMP_MS, &c, err, sizeof(err)) < 0)
        return false;
    while (!running && store_now_ms() < end) {
        json_t *r = NULL;
        if (qmp_client_execute(c, "query-status", NULL, IN_QMP_MS, &r, err, sizeof(err)) < 0)
            break;
        const char *st = json_string_value(json_object_get(r, "status"));
        running = st && !strcmp(st, "running");
        bool waiting = st && !strcmp(st, "inmigrate");
        json_decref(r);
        if (!running && !waiting)
            break;
        if (!running)
            usleep(100 * 1000);
    }
    qmp_client_free(c);
    return running;
}

/* The reattached incoming godwit-vm of a job found unfinished at start
 * still receives a live pre-copy (streaming, paused, or listening for the
 * source's resume): the job watches it again. */
static bool in_resume_streams(struct godwitd *d, const char *vm, bool paused_only)
{
    json_t *qm = NULL;
    char err[256];
    bool yes = false;

    if (migrate_in_qmp(d, vm, "query-migrate", NULL, &qm, err, sizeof(err)) == 0) {
        const char *st = json_string_value(json_object_get(qm, "status"));
        yes = st && ((!paused_only && !strcmp(st, "active")) || !strcmp(st, ST_PAUSED) ||
                     !strcmp(st, ST_RECOVER));
    }
    json_decref(qm);
    return yes;
}

/* After a restart: the incoming VM either runs (then it is ours), still
 * receives a pre-copy (then the job watches it again), or neither (then it
 * goes). */
static int in_resume(struct job *j, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    struct store_job sj;
    struct store_vm vm;
    bool running = false, incoming = false;
    int ret;

    godwitd_store_lock(d);
    ret = store_job_get(d->store, job_id(j), &sj);
    if (ret == 0) {
        ret = store_vm_get(d->store, sj.vm, &vm);
        if (ret == 0) {
            running = !strcmp(vm.state, "running");
            incoming = !strcmp(vm.state, "incoming") && vm.pid > 0;
            store_vm_clear(&vm);
        }
    }
    godwitd_store_unlock(d);
    /* a paused pre-copy cannot be switching over: no need to wait for it */
    bool paused = ret == 0 && !running && incoming && !strcmp(sj.kind, "live") &&
                  in_resume_streams(d, sj.vm, true);
    if (ret == 0 && !running && incoming && !paused && in_resume_runs(d, sj.vm)) {
        /* the switchover completed while this daemon was away */
        struct store_vm row;
        godwitd_store_lock(d);
        if (store_vm_get(d->store, sj.vm, &row) == 0) {
            store_vm_set_state(d->store, sj.vm, "running", row.pid, row.exit_status);
            store_vm_clear(&row);
        }
        godwitd_store_unlock(d);
        gw_log("incoming %s: the migration completed while godwitd was away: the VM runs here",
               sj.vm);
        running = true;
    }
    if (ret == 0 && running) {
        migrate_key_remove(d, sj.vm);
        /* the source still sends its console log once it knows */
        struct incoming *in = migrate_in_new(d, sj.vm, sj.peer);
        if (in) {
            in->job = job_id(j);
            in->state = IN_RUNNING;
            pthread_mutex_lock(&in_mod(d)->lock);
            in->next = in_mod(d)->list;
            in_mod(d)->list = in;
            pthread_mutex_unlock(&in_mod(d)->lock);
            job_phase(j, "console-log");
            in_wait_log(in);
            migrate_in_unlink(in);
            migrate_in_put(in);
        }
        store_job_clear(&sj);
        job_phase(j, "done");
        return 0;
    }
    if (ret == 0 && !running && incoming && !strcmp(sj.kind, "live") &&
        (paused || in_resume_streams(d, sj.vm, false))) {
        struct incoming *in = migrate_in_new(d, sj.vm, sj.peer);
        if (in) {
            in->job = job_id(j);
            in->state = IN_STARTED;
            migrate_in_link(in);
            job_set_arg(j, in, in_free_arg); /* the job's reference */
            gw_log("incoming %s: its pre-copy goes on: watching it again", sj.vm);
            store_job_clear(&sj);
            job_phase(j, "transfer");
            ret = in_watch(in, err, errlen);
            return in_end(j, in, ret, err);
        }
    }
    if (ret == 0) {
        char why[256];
        (void)vm_kill(d, sj.vm, 5000, why, sizeof(why));
        (void)vm_forget(d, sj.vm, why, sizeof(why));
        migrate_key_remove(d, sj.vm);
        store_job_clear(&sj);
    }
    return gw_fail(err, errlen, -ECANCELED, "interrupted: godwitd restarted during the transfer");
}

static const struct job_kind in_kind = {
    .kind = "live",
    .direction = "in",
    .run = in_run,
    .cancel = in_cancel,
    .resume = in_resume,
};

/* ---- handlers ---- */

static void in_create(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const json_t *def = json_object_get(req->body, "vm");
    char msg[512], who[STORE_WHO_MAX];
    struct incoming *in;
    unsigned st;
    int64_t id;
    json_t *opts;

    const char *mode = json_string_value(json_object_get(req->body, "mode"));
    const json_t *start = json_object_get(req->body, "start");
    const struct job_kind *kind = &in_kind;

    if (!mode)
        mode = "live";
    if (!strcmp(mode, "cold"))
        kind = &migrate_in_cold_kind;
    else if (!strcmp(mode, "suspended"))
        kind = &migrate_in_suspended_kind;
    else if (strcmp(mode, "live"))
        return api_reply_error(rep, 400, "mode: live, cold or suspended");
    st = migrate_in_check(d, def, json_object_get(req->body, "compat"), mode,
                          json_object_get(req->body, "files"), !start || json_is_true(start), msg,
                          sizeof(msg));
    if (st)
        return api_reply_error(rep, st, "%s", msg);
    if (vm_define(d, def, msg, sizeof(msg)) < 0)
        return api_reply_error(rep, 409, "cannot define the VM here: %s", msg);
    in = migrate_in_new(d, json_string_value(json_object_get(def, "name")),
                        req->peer.name[0] ? req->peer.name : "local");
    if (!in || (strcmp(mode, "live") && migrate_in_cold_attach(in, req->body) < 0)) {
        char why[256];
        (void)vm_forget(d, json_string_value(json_object_get(def, "name")), why, sizeof(why));
        if (in) {
            in->refs = 1;
            migrate_in_put(in);
        }
        return api_reply_error(rep, 500, "out of memory");
    }
    snprintf(in->mode, sizeof(in->mode), "%s", mode);
    godwitd_store_lock(d);
    store_vm_set_state(d->store, in->vm, "incoming", 0, -1);
    godwitd_store_unlock(d);
    snprintf(who, sizeof(who), "peer %s", in->peer);
    opts = json_pack("{s:O?,s:s,s:O?,s:O?}", "source_job", json_object_get(req->body, "source_job"),
                     "mode", mode, "start", start, "resume", json_object_get(req->body, "resume"));
    /* the list entry before the thread starts: its first look may come at once */
    pthread_mutex_lock(&in_mod(d)->lock);
    in->job = -1;
    in->next = in_mod(d)->list;
    in_mod(d)->list = in;
    if (jobs_start(d, kind, in->vm, in->peer, who, opts,
                   strcmp(mode, "live") ? "transfer" : "prepare", in, in_free_arg, &id, msg,
                   sizeof(msg)) < 0) {
        in_mod(d)->list = in->next;
        pthread_mutex_unlock(&in_mod(d)->lock);
        json_decref(opts);
        char why[256];
        (void)vm_forget(d, in->vm, why, sizeof(why));
        in->refs = 1;
        migrate_in_put(in);
        return api_reply_error(rep, 500, "%s", msg);
    }
    in->job = id;
    pthread_mutex_unlock(&in_mod(d)->lock);
    json_decref(opts);
    api_reply_json(rep, 201, json_pack("{s:I,s:s}", "job", (json_int_t)id, "host", d->name));
}

struct incoming *migrate_in_lookup(struct api_request *req, struct api_reply *rep)
{
    const char *s = api_param(req, "id");
    char *end;
    long long id;
    struct incoming *in;

    errno = 0;
    id = s ? strtoll(s, &end, 10) : -1;
    if (!s || errno || *end || id <= 0) {
        api_reply_error(rep, 400, "bad job id '%s'", s ? s : "");
        return NULL;
    }
    in = migrate_in_find(req->ctx, id);
    if (!in)
        api_reply_error(rep, 404, "no incoming migration %lld here", id);
    return in;
}

/* A file name the source may write into the VM's folder. */
bool migrate_in_file_name_ok(const char *n)
{
    if (!n || !n[0] || n[0] == '.' || strlen(n) > 64 || !strcmp(n, VM_FILE_DEF))
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_' || *p == '+'))
            return false;
    return true;
}

/* A query argument as an integer in 0..max: 0, or -EINVAL. */
int migrate_in_query_int(const struct api_request *req, const char *key, long long max,
                         long long *out)
{
    const char *v = api_query(req, key);
    char *end;

    if (!v || !v[0])
        return -EINVAL;
    errno = 0;
    *out = strtoll(v, &end, 10);
    return errno || *end || *out < 0 || *out > max ? -EINVAL : 0;
}

/* POST /1.0/incoming/ID/file?name=N&offset=O&size=S[&final=1], the chunk's
 * bytes as the body (raw: no JSON, no base64). */
static void in_file(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    struct incoming *in = migrate_in_lookup(req, rep);
    const char *name = api_query(req, "name"), *fin = api_query(req, "final");
    long long off = 0, size = 0;
    bool final = fin && !strcmp(fin, "1");
    char dir[PATH_MAX], path[PATH_MAX + 80], part[PATH_MAX + 96];
    size_t n = req->raw_len;
    int fd = -1;

    if (!in)
        return;
    if (!migrate_in_file_name_ok(name) ||
        migrate_in_query_int(req, "offset", IN_FILE_MAX, &off) < 0 ||
        migrate_in_query_int(req, "size", IN_FILE_MAX, &size) < 0 || off > size ||
        (uint64_t)off + n > (uint64_t)size || (fin && !final && strcmp(fin, "0"))) {
        api_reply_error(rep, 400, "bad file chunk (name '%s')", name ? name : "");
        goto out;
    }
    pthread_mutex_lock(&in->lock);
    bool preparing = in->state == IN_PREPARING && !in->abort;
    pthread_mutex_unlock(&in->lock);
    if (!preparing) {
        api_reply_error(rep, 409, "the incoming migration is no longer preparing");
        goto out;
    }
    godwitd_vm_dir(d, in->vm, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(part, sizeof(part), "%s/.%s.part", dir, name);
    fd = open(part, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (off == 0 ? O_TRUNC : 0), 0600);
    if (fd < 0 || (n > 0 && pwrite(fd, req->raw, n, off) != (ssize_t)n)) {
        api_reply_error(rep, 507, "cannot write %s: %s", name, strerror(errno));
        goto out;
    }
    if (final) {
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_size != size || fsync(fd) < 0) {
            api_reply_error(rep, 400, "%s: %lld bytes arrived, %lld announced", name,
                            (long long)st.st_size, size);
            goto out;
        }
        if (rename(part, path) < 0) {
            api_reply_error(rep, 500, "cannot rename %s: %s", name, strerror(errno));
            goto out;
        }
        pthread_mutex_lock(&in->lock);
        in->nfiles++;
        pthread_mutex_unlock(&in->lock);
    }
    api_reply_json(rep, 200, json_pack("{s:I}", "received", (json_int_t)off + (json_int_t)n));
out:
    if (fd >= 0)
        close(fd);
    migrate_in_put(in);
}

/* One QMP command to the incoming VM; *ret (may be NULL) its answer. */
int migrate_in_qmp(struct godwitd *d, const char *vm, const char *cmd, json_t *args, json_t **ret,
                   char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct qmp_client *c = NULL;
    int r;

    vm_qmp_path(d, vm, path, sizeof(path));
    r = qmp_client_connect(path, IN_QMP_MS, &c, err, errlen);
    if (r == 0)
        r = qmp_client_execute(c, cmd, args, IN_QMP_MS, ret, err, errlen);
    qmp_client_free(c);
    json_decref(args);
    return r;
}

static void in_start(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    struct incoming *in = migrate_in_lookup(req, rep);
    const char *key = json_string_value(json_object_get(req->body, "key"));
    char obj[PATH_MAX + 96], err[512], host[STORE_ADDR_MAX] = "0.0.0.0", uri[STORE_ADDR_MAX + 32];
    int port = -1, ret;

    if (!in)
        return;
    pthread_mutex_lock(&in->lock);
    bool preparing = in->state == IN_PREPARING && !in->abort;
    pthread_mutex_unlock(&in->lock);
    if (!preparing) {
        api_reply_error(rep, 409, "the incoming migration is no longer preparing");
        goto out;
    }
    if (!key || strlen(key) != 2 * MIGRATE_KEY_BYTES) {
        api_reply_error(rep, 400, "key: %d hex digits", 2 * MIGRATE_KEY_BYTES);
        goto out;
    }
    json_int_t gu = json_integer_value(json_object_get(req->body, "give_up_after"));
    pthread_mutex_lock(&in->lock);
    in->give_up_ms = gu > 0 && gu <= 7 * 86400 ? gu * 1000 : 0;
    pthread_mutex_unlock(&in->lock);
    /* listen where peers reach this host */
    if (d->listen[0]) {
        const char *colon = strrchr(d->listen, ':');
        if (colon && d->listen[0] != '[')
            snprintf(host, sizeof(host), "%.*s", (int)(colon - d->listen), d->listen);
    }
    ret = migrate_key_write(d, in->vm, key, err, sizeof(err));
    if (ret == 0)
        ret = migrate_tls_object(d, in->vm, true, obj, sizeof(obj));
    if (ret == 0) {
        const char *extra[] = {"-object", obj, "-incoming", "defer", NULL};
        ret = vm_spawn(d, in->vm, extra, "incoming", err, sizeof(err));
    }
    if (ret == 0)
        ret =
            migrate_in_qmp(d, in->vm, "migrate-set-parameters",
                           json_pack("{s:s}", "tls-creds", MIGRATE_TLS_IN), NULL, err, sizeof(err));
    /* post-copy: godwit-vm takes it only with the capability, as QEMU */
    if (ret == 0 && json_is_true(json_object_get(req->body, "postcopy")))
        ret = migrate_in_qmp(
            d, in->vm, "migrate-set-capabilities",
            json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "postcopy-ram", "state", 1),
            NULL, err, sizeof(err));
    /* port 0: the kernel picks a free one, query-migrate says which */
    snprintf(uri, sizeof(uri), "tcp:%s:0", host);
    if (ret == 0)
        ret = migrate_in_qmp(d, in->vm, "migrate-incoming", json_pack("{s:s}", "uri", uri), NULL,
                             err, sizeof(err));
    if (ret == 0) {
        json_t *qm = NULL;
        ret = migrate_in_qmp(d, in->vm, "query-migrate", NULL, &qm, err, sizeof(err));
        const char *p = json_string_value(
            json_object_get(json_array_get(json_object_get(qm, "socket-address"), 0), "port"));
        port = p ? atoi(p) : -1;
        json_decref(qm);
        if (ret == 0 && (port <= 0 || port > 65535))
            ret = gw_fail(err, sizeof(err), -EPROTO, "godwit-vm did not say where it listens");
    }
    /* godwit-vm read the key when migrate-incoming started: it goes now */
    migrate_key_remove(d, in->vm);
    if (ret < 0) {
        migrate_in_fail(in, "host %s could not start the incoming VM: %s", d->name, err);
        api_reply_error(rep, 500, "host %s could not start the incoming VM: %s", d->name, err);
        goto out;
    }
    pthread_mutex_lock(&in->lock);
    in->state = IN_STARTED;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    api_reply_json(rep, 200, json_pack("{s:i,s:s}", "port", port, "host", host));
out:
    migrate_in_put(in);
}

/* The source's console log, after the switchover, in chunks. */
static void in_log(struct api_request *req, struct api_reply *rep)
{
    struct incoming *in = migrate_in_lookup(req, rep);
    const char *fin = api_query(req, "final");
    bool final = fin && !strcmp(fin, "1");
    const uint8_t *buf = req->raw;
    int n = fin && !final && strcmp(fin, "0") ? -EINVAL : (int)req->raw_len;

    if (!in)
        return;
    pthread_mutex_lock(&in->lock);
    if (in->state != IN_RUNNING || in->log_done) {
        pthread_mutex_unlock(&in->lock);
        api_reply_error(rep, 409, "the VM does not run here yet, or its log already came");
    } else if (n < 0 || in->log_len + (size_t)n > IN_LOG_MAX) {
        pthread_mutex_unlock(&in->lock);
        api_reply_error(rep, 400, "bad console log chunk");
    } else {
        char *p = realloc(in->log, in->log_len + (size_t)n + 1);
        if (p) {
            if (n > 0)
                memcpy(p + in->log_len, buf, (size_t)n);
            in->log = p;
            in->log_len += (size_t)n;
        }
        in->log_done = final || !p;
        pthread_cond_broadcast(&in->cond);
        pthread_mutex_unlock(&in->lock);
        api_reply_json(rep, 200, json_pack("{s:I}", "received", (json_int_t)in->log_len));
    }
    migrate_in_put(in);
}

static void in_get(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *s = api_param(req, "id");
    struct incoming *in;
    struct store_job sj;
    char *end;
    long long id;

    errno = 0;
    id = s ? strtoll(s, &end, 10) : -1;
    if (!s || errno || *end || id <= 0)
        return api_reply_error(rep, 400, "bad job id '%s'", s ? s : "");
    in = migrate_in_find(d, id);
    if (in) {
        pthread_mutex_lock(&in->lock);
        json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "state", in_state_names[in->state], "error",
                              in->error, "vm", in->vm, "mode", in->mode);
        if (in->migration[0])
            json_object_set_new(o, "migration", json_string(in->migration));
        if (in->recovers)
            json_object_set_new(o, "recovers", json_integer(in->recovers));
        if (in->cold)
            migrate_in_cold_status(in, o);
        pthread_mutex_unlock(&in->lock);
        api_reply_json(rep, 200, o);
        migrate_in_put(in);
        return;
    }
    /* finished: the job's record says how */
    godwitd_store_lock(d);
    int ret = store_job_get(d->store, id, &sj);
    godwitd_store_unlock(d);
    if (ret < 0 || strcmp(sj.direction, "in")) {
        if (ret == 0)
            store_job_clear(&sj);
        return api_reply_error(rep, 404, "no incoming migration %lld here", id);
    }
    const char *state = !strcmp(sj.status, "done")          ? "running"
                        : store_job_status_final(sj.status) ? "failed"
                                                            : "transferring";
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:s}", "state", state, "error", sj.error ? sj.error : "", "vm",
                  sj.vm, "mode", sj.kind, "status", sj.status);
    /* cold and suspended: what the job found (the VM's state, the checks) */
    json_t *fig = strcmp(sj.kind, "live") && sj.figures ? json_loads(sj.figures, 0, NULL) : NULL;
    if (json_is_object(fig))
        json_object_set(o, "result", fig);
    json_decref(fig);
    api_reply_json(rep, 200, o);
    store_job_clear(&sj);
}

/* The source continues a paused pre-copy: godwit-vm listens again
 * (migrate-recover on a port the kernel picks) and the answer says where.
 * 409 while the stream has not noticed the pause yet (the source asks
 * again); 410 when the incoming is over. */
static void in_recover(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    struct incoming *in = migrate_in_lookup(req, rep);
    char err[512], host[STORE_ADDR_MAX] = "0.0.0.0", uri[STORE_ADDR_MAX + 32];
    json_t *qm = NULL;
    const char *st;
    int port = -1, ret;

    if (!in)
        return;
    pthread_mutex_lock(&in->lock);
    bool started = in->state == IN_STARTED && !in->abort && !strcmp(in->mode, "live");
    enum in_state state = in->state;
    pthread_mutex_unlock(&in->lock);
    if (!started) {
        api_reply_error(rep, 410, "the incoming migration is %s: nothing to continue",
                        in_state_names[state]);
        goto out;
    }
    ret = migrate_in_qmp(d, in->vm, "query-migrate", NULL, &qm, err, sizeof(err));
    st = json_string_value(json_object_get(qm, "status"));
    if (ret == 0 && st && !strcmp(st, ST_PAUSED)) {
        if (d->listen[0]) {
            const char *colon = strrchr(d->listen, ':');
            if (colon && d->listen[0] != '[')
                snprintf(host, sizeof(host), "%.*s", (int)(colon - d->listen), d->listen);
        }
        snprintf(uri, sizeof(uri), "tcp:%s:0", host);
        ret = migrate_in_qmp(d, in->vm, "migrate-recover", json_pack("{s:s}", "uri", uri), NULL,
                             err, sizeof(err));
        json_decref(qm);
        qm = NULL;
        if (ret == 0)
            ret = migrate_in_qmp(d, in->vm, "query-migrate", NULL, &qm, err, sizeof(err));
        st = json_string_value(json_object_get(qm, "status"));
    }
    if (ret < 0) {
        api_reply_error(rep, 500, "host %s: %s", d->name, err);
        goto out;
    }
    if (!st || strcmp(st, ST_RECOVER)) {
        api_reply_error(rep, 409, "the incoming stream on host %s is %s, not paused (yet)", d->name,
                        st ? st : "unknown");
        goto out;
    }
    /* a recover listening already (a retry) answers the same port */
    const char *p = json_string_value(
        json_object_get(json_array_get(json_object_get(qm, "socket-address"), 0), "port"));
    port = p ? atoi(p) : -1;
    if (port <= 0 || port > 65535) {
        api_reply_error(rep, 500, "host %s: godwit-vm did not say where it listens", d->name);
        goto out;
    }
    pthread_mutex_lock(&in->lock);
    in->recovers++;
    in->paused_ms = 0; /* the source is there: the give-up time counts again */
    pthread_mutex_unlock(&in->lock);
    gw_log("incoming %s: the source continues its paused transfer (port %d)", in->vm, port);
    api_reply_json(rep, 200, json_pack("{s:i,s:s}", "port", port, "host", host));
out:
    json_decref(qm);
    migrate_in_put(in);
}

static void in_abort(struct api_request *req, struct api_reply *rep)
{
    struct incoming *in = migrate_in_lookup(req, rep);
    const char *why = json_string_value(json_object_get(req->body, "reason"));

    if (!in)
        return;
    pthread_mutex_lock(&in->lock);
    if (in->state == IN_RUNNING) {
        pthread_mutex_unlock(&in->lock);
        api_reply_error(rep, 409, "too late: the VM runs on host %s", in->d->name);
        migrate_in_put(in);
        return;
    }
    in->abort = true;
    snprintf(in->error, sizeof(in->error), "the source gave up: %s", why ? why : "no reason");
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    api_reply_json(rep, 202, json_pack("{s:b}", "aborted", 1));
    migrate_in_put(in);
}

static const struct api_field in_precheck_body[] = {
    {"vm", API_T_OBJECT, true},    {"compat", API_T_OBJECT, true}, {"mode", API_T_STRING, false},
    {"files", API_T_ARRAY, false}, {"start", API_T_BOOL, false},   {NULL, 0, false}};
static const struct api_field in_create_body[] = {
    {"vm", API_T_OBJECT, true},       {"compat", API_T_OBJECT, true},
    {"source_job", API_T_INT, false}, {"mode", API_T_STRING, false},
    {"files", API_T_ARRAY, false},    {"start", API_T_BOOL, false},
    {"resume", API_T_BOOL, false},    {NULL, 0, false}};
static const struct api_field in_start_body[] = {{"key", API_T_STRING, true},
                                                 {"give_up_after", API_T_INT, false},
                                                 {"postcopy", API_T_BOOL, false},
                                                 {NULL, 0, false}};
static const struct api_field in_abort_body[] = {{"reason", API_T_STRING, false}, {NULL, 0, false}};

const struct api_route migrate_in_routes[] = {
    {"POST", "/1.0/incoming/precheck", in_precheck, in_precheck_body, API_ROUTE_PEER},
    {"POST", "/1.0/incoming", in_create, in_create_body, API_ROUTE_PEER},
    {"POST", "/1.0/incoming/{id}/file", in_file, NULL, API_ROUTE_PEER | API_ROUTE_RAW},
    {"POST", "/1.0/incoming/{id}/start", in_start, in_start_body, API_ROUTE_PEER},
    {"POST", "/1.0/incoming/{id}/log", in_log, NULL, API_ROUTE_PEER | API_ROUTE_RAW},
    {"GET", "/1.0/incoming/{id}", in_get, NULL, API_ROUTE_PEER},
    {"POST", "/1.0/incoming/{id}/recover", in_recover, NULL, API_ROUTE_PEER},
    {"POST", "/1.0/incoming/{id}/abort", in_abort, in_abort_body, API_ROUTE_PEER},
};
const size_t migrate_in_nroutes = GW_ARRAY_SIZE(migrate_in_routes);

int migrate_in_init(struct godwitd *d, char *err, size_t errlen)
{
    struct migrate_in *m = calloc(1, sizeof(*m));

    if (!m)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    pthread_mutex_init(&m->lock, NULL);
    d->migrate_in = m;
    jobs_register(d, &in_kind);
    migrate_in_cold_register(d);
    return 0;
}

void migrate_in_fini(struct godwitd *d)
{
    /* Job threads (the job module's, stopped after this module) may still
     * look at the list: it lives as long as the process. */
    (void)d;
}
