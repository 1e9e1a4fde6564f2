/*
 * The destination of a cold or suspended migration (migrate_int.h;
 * docs/godwitd.md "Cold and suspended migration").  Peers only:
 *
 *   POST /1.0/incoming/{id}/xfer?name=N&size=S        open (or continue) file N: {verified}
 *   POST /1.0/incoming/{id}/chunk?name=N&offset=..&len=..&hash=..&map=..&enc=..
 *                                                     one chunk (raw body): {verified}
 *   POST /1.0/incoming/{id}/xfer-done?name=N&digest=D the file is complete: {allocated}
 *   POST /1.0/incoming/{id}/complete                  every file is here: start / verify
 *   POST /1.0/incoming/{id}/revert                    the source takes the VM back
 *   POST /1.0/incoming/{id}/confirm                   the source let go of its copy
 *
 * The job (kind cold or suspended, direction in) has phases transfer →
 * start → verify → done.  Files arrive through the transfer engine
 * (xfer.h) into part files in the VM's folder; a file replaces the empty
 * one vm_define made only once its digest matches.  A suspended VM's state
 * file is checked end to end (state_check) before the VM counts as
 * arrived.  Any failure before the VM arrived removes it and its folder;
 * a daemon stopped during the transfer keeps the part files, and the job
 * waits for the source again after the restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwitd/jobs.h"
#include "godwitd/migrate.h"
#include "godwitd/migrate_int.h"
#include "godwitd/peers.h"
#include "godwitd/vms.h"
#include "godwitd/xfer.h"
#include "qmp/qmp_client.h"
#include "state/state_check.h"

#define COLD_IDLE_MS      (7 * 86400 * 1000LL) /* a source silent this long (held?) gave up */
#define COLD_ASK_IDLE_MS  (5 * 60 * 1000LL) /* a source silent this long is asked about its job */
#define COLD_ASK_EVERY_MS (60 * 1000LL)     /* ... this often */
#define COLD_VERIFY_MS    (180 * 1000)      /* the started VM's agent must answer within this */
#define COLD_PLAIN_MS     3000              /* a VM without an agent must keep running this long */
#define COLD_PING_MS      2000
#define COLD_XID_MAX      96

struct incoming_cold {
    pthread_mutex_t xlock; /* the file being received (one sender at a time) */
    char xid[COLD_XID_MAX];
    char cur[80];
    struct xfer_dst *dst;
    int64_t active_ms; /* the source's last request */
    bool start, resume;
    bool complete; /* the source sent everything */
    char vm_state[STORE_WORD_MAX];
    char verify[256];
    char clock[256];
};

int migrate_in_cold_attach(struct incoming *in, const json_t *body)
{
    struct incoming_cold *c = calloc(1, sizeof(*c));
    const json_t *start = json_object_get(body, "start");

    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->xlock, NULL);
    snprintf(c->xid, sizeof(c->xid), "%s:%lld", in->peer,
             (long long)json_integer_value(json_object_get(body, "source_job")));
    c->start = !start || json_is_true(start);
    c->resume = json_is_true(json_object_get(body, "resume"));
    c->active_ms = store_now_ms();
    in->cold = c;
    return 0;
}

void migrate_in_cold_free(struct incoming *in)
{
    struct incoming_cold *c = in->cold;

    if (!c)
        return;
    xfer_dst_free(c->dst);
    pthread_mutex_destroy(&c->xlock);
    free(c);
    in->cold = NULL;
}

void migrate_in_cold_status(struct incoming *in, json_t *o)
{
    struct incoming_cold *c = in->cold;
    static const char *const names[] = {"receiving", "starting", "arrived", "failed"};

    json_object_set_new(o, "state", json_string(names[in->state]));
    json_object_set_new(o, "result",
                        json_pack("{s:s,s:s,s:s}", "vm_state", c->vm_state, "verify", c->verify,
                                  "clock", c->clock));
}

/* ---- the file routes ---- */

/* The cold incoming named by {id} that still receives files, with a
 * reference; NULL after replying. */
static struct incoming *cold_receiving(struct api_request *req, struct api_reply *rep)
{
    struct incoming *in = migrate_in_lookup(req, rep);
    bool ok;

    if (!in)
        return NULL;
    pthread_mutex_lock(&in->lock);
    ok = in->cold && in->state == IN_PREPARING && !in->abort;
    if (ok)
        in->cold->active_ms = store_now_ms();
    pthread_mutex_unlock(&in->lock);
    if (!ok) {
        api_reply_error(rep, 409, "incoming migration %lld no longer receives files",
                        (long long)in->job);
        migrate_in_put(in);
        return NULL;
    }
    return in;
}

/* A file name the source may send: a plain name that is not the
 * definition, a socket or a log but the console's (the guest's history
 * travels with it). */
static bool cold_name_ok(const char *n)
{
    size_t l = n ? strlen(n) : 0;

    return migrate_in_file_name_ok(n) &&
           (!strcmp(n, VM_FILE_LOG) || !(l > 4 && !strcmp(n + l - 4, ".log"))) &&
           !(l > 5 && !strcmp(n + l - 5, ".sock"));
}

static int cold_errno_status(int ret)
{
    switch (ret) {
    case -EBADMSG: return 422;
    case -ERANGE: return 409;
    case -EINVAL: return 400;
    case -ENOSPC:
    case -EDQUOT:
    case -EFBIG: return 507;
    default: return 500;
    }
}

static void cold_xfer(struct api_request *req, struct api_reply *rep)
{
    struct incoming *in = cold_receiving(req, rep);
    const char *name = api_query(req, "name");
    char dir[PATH_MAX], err[512];
    long long size;
    int ret;

    if (!in)
        return;
    if (!cold_name_ok(name) || migrate_in_query_int(req, "size", (long long)XFER_FILE_MAX, &size)) {
        api_reply_error(rep, 400, "bad file (name '%s')", name ? name : "");
        goto out;
    }
    struct incoming_cold *c = in->cold;
    pthread_mutex_lock(&c->xlock);
    if (c->dst && strcmp(c->cur, name)) {
        xfer_dst_free(c->dst);
        c->dst = NULL;
    }
    if (!c->dst) {
        godwitd_vm_dir(in->d, in->vm, dir, sizeof(dir));
        ret = xfer_dst_open(dir, name, (uint64_t)size, c->xid, &c->dst, err, sizeof(err));
        if (ret < 0) {
            pthread_mutex_unlock(&c->xlock);
            api_reply_error(rep, cold_errno_status(ret), "host %s: %s", in->d->name, err);
            goto out;
        }
        snprintf(c->cur, sizeof(c->cur), "%s", name);
    }
    api_reply_json(rep, 200, json_pack("{s:I}", "verified", (json_int_t)xfer_dst_verified(c->dst)));
    pthread_mutex_unlock(&c->xlock);
out:
    migrate_in_put(in);
}

static const char *cold_query(void *ctx, const char *key)
{
    return api_query(ctx, key);
}

static void cold_chunk(struct api_request *req, struct api_reply *rep)
{
    struct incoming *in = cold_receiving(req, rep);
    const char *name = api_query(req, "name");
    struct xfer_chunk ch;
    char err[512];
    int ret;

    if (!in)
        return;
    struct incoming_cold *c = in->cold;
    pthread_mutex_lock(&c->xlock);
    if (!c->dst || !name || strcmp(c->cur, name)) {
        pthread_mutex_unlock(&c->xlock);
        api_reply_error(rep, 409, "file '%s' is not open: ask .../xfer first", name ? name : "");
        goto out;
    }
    ret = xfer_chunk_parse(cold_query, req, &ch, err, sizeof(err));
    if (ret == 0) {
        ch.body = req->raw;
        ch.body_len = req->raw_len;
        ret = xfer_dst_chunk(c->dst, &ch, err, sizeof(err));
    }
    if (ret < 0)
        api_reply_error(rep, cold_errno_status(ret), "host %s: %s: %s (verified up to %llu)",
                        in->d->name, name, err, (unsigned long long)xfer_dst_verified(c->dst));
    else
        api_reply_json(rep, 200,
                       json_pack("{s:I}", "verified", (json_int_t)xfer_dst_verified(c->dst)));
    pthread_mutex_unlock(&c->xlock);
out:
    migrate_in_put(in);
}

static void cold_xfer_done(struct api_request *req, struct api_reply *rep)
{
    struct incoming *in = cold_receiving(req, rep);
    const char *name = api_query(req, "name"), *digest = api_query(req, "digest");
    uint64_t allocated = 0;
    char err[512];
    int ret;

    if (!in)
        return;
    struct incoming_cold *c = in->cold;
    pthread_mutex_lock(&c->xlock);
    if (!c->dst || !name || strcmp(c->cur, name) || !digest) {
        pthread_mutex_unlock(&c->xlock);
        api_reply_error(rep, 409, "file '%s' is not open: ask .../xfer first", name ? name : "");
        goto out;
    }
    ret = xfer_dst_finish(c->dst, digest, &allocated, err, sizeof(err));
    xfer_dst_free(c->dst);
    c->dst = NULL;
    c->cur[0] = '\0';
    pthread_mutex_unlock(&c->xlock);
    if (ret < 0) {
        api_reply_error(rep, cold_errno_status(ret), "host %s: %s: %s", in->d->name, name, err);
        goto out;
    }
    pthread_mutex_lock(&in->lock);
    in->nfiles++;
    pthread_mutex_unlock(&in->lock);
    api_reply_json(rep, 200, json_pack("{s:I}", "allocated", (json_int_t)allocated));
out:
    migrate_in_put(in);
}

static void cold_complete(struct api_request *req, struct api_reply *rep)
{
    struct incoming *in = cold_receiving(req, rep);

    if (!in)
        return;
    pthread_mutex_lock(&in->lock);
    in->cold->complete = true;
    in->state = IN_STARTED;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    api_reply_json(rep, 202, json_pack("{s:b}", "complete", 1));
    migrate_in_put(in);
}

/* The finished (or finishing) incoming job {id} of a cold or suspended
 * migration: its VM's name.  0, or replied. */
static int cold_arrived_vm(struct api_request *req, struct api_reply *rep, char *vm, size_t len)
{
    struct godwitd *d = req->ctx;
    const char *s = api_param(req, "id");
    struct store_job sj;
    char *end;
    long long id;
    int ret;

    errno = 0;
    id = s ? strtoll(s, &end, 10) : -1;
    if (!s || errno || *end || id <= 0) {
        api_reply_error(rep, 400, "bad job id '%s'", s ? s : "");
        return -EINVAL;
    }
    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &sj);
    godwitd_store_unlock(d);
    if (ret < 0 || strcmp(sj.direction, "in") || !strcmp(sj.kind, "live")) {
        if (ret == 0)
            store_job_clear(&sj);
        api_reply_error(rep, 404, "no incoming cold or suspended migration %lld here", id);
        return -ENOENT;
    }
    snprintf(vm, len, "%s", sj.vm);
    ret = strcmp(sj.status, "done") && strcmp(sj.status, "running") ? -EINVAL : 0;
    if (ret < 0)
        api_reply_error(rep, 409, "incoming migration %lld is %s", id, sj.status);
    store_job_clear(&sj);
    return ret;
}

static void cold_revert(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    char vm[STORE_NAME_MAX], err[512], subject[STORE_NAME_MAX + 8];
    struct store_vm row;
    int ret;

    if (cold_arrived_vm(req, rep, vm, sizeof(vm)) < 0)
        return;
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, vm, &row);
    godwitd_store_unlock(d);
    if (ret < 0) /* gone already (a revert asked twice) */
        return api_reply_json(rep, 200, json_pack("{s:b,s:s}", "reverted", 1, "vm", vm));
    store_vm_clear(&row);
    ret = vm_kill(d, vm, 10000, err, sizeof(err));
    if (ret < 0 && ret != -ESRCH)
        return api_reply_error(rep, 500, "host %s cannot stop %s: %s", d->name, vm, err);
    if (vm_forget(d, vm, err, sizeof(err)) < 0)
        return api_reply_error(rep, 500, "host %s cannot delete %s: %s", d->name, vm, err);
    snprintf(subject, sizeof(subject), "vm/%s", vm);
    godwitd_event(d, "vm-reverted", subject, json_pack("{s:s}", "vm", vm));
    api_reply_json(rep, 200, json_pack("{s:b,s:s}", "reverted", 1, "vm", vm));
}

static void cold_confirm(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    char vm[STORE_NAME_MAX], subject[STORE_NAME_MAX + 8];

    if (cold_arrived_vm(req, rep, vm, sizeof(vm)) < 0)
        return;
    snprintf(subject, sizeof(subject), "vm/%s", vm);
    godwitd_event(d, "vm-confirmed", subject, json_pack("{s:s}", "vm", vm));
    api_reply_json(rep, 200, json_pack("{s:b,s:s}", "confirmed", 1, "vm", vm));
}

/* ---- the job ---- */

/* A source silent for a while: does its job still run?  A source that
 * gave up while it could not reach us (a technical hold past its
 * --give-up-after) could not tell us; it answers now.  true with why set
 * when its job has ended (or is gone); false while it runs or the source
 * does not answer.  Called without in->lock. */
static bool cold_source_ended(struct incoming *in, const struct job *j, char *why, size_t whylen)
{
    int64_t sj = json_integer_value(json_object_get(job_options(j), "source_job"));
    char api[64], e2[256];
    json_t *r = NULL;
    long status = 0;
    bool ended = false;

    if (sj <= 0)
        return false;
    snprintf(api, sizeof(api), "/1.0/jobs/%lld", (long long)sj);
    if (peer_call(in->d, in->peer, "GET", api, NULL, &r, &status, 5000, e2, sizeof(e2)) < 0) {
        if (status == 404) {
            snprintf(why, whylen, "host %s has no job %lld any more: nothing will come", in->peer,
                     (long long)sj);
            return true;
        }
        return false;
    }
    const char *st = json_string_value(json_object_get(r, "status"));
    const char *e = json_string_value(json_object_get(r, "error"));
    if (st && (!strcmp(st, "failed") || !strcmp(st, "cancelled") || !strcmp(st, "done") ||
               !strcmp(st, "reverted"))) {
        snprintf(why, whylen,
                 "the source's job %lld on host %s ended (%s%s%.300s) without telling "
                 "this host",
                 (long long)sj, in->peer, st, e && e[0] ? ": " : "", e ? e : "");
        ended = true;
    }
    json_decref(r);
    return ended;
}

/* Test hook: GODWITD_COLD_ASK_IDLE_MS replaces COLD_ASK_IDLE_MS and
 * COLD_ASK_EVERY_MS (the tests cannot wait minutes). */
static int64_t cold_ask_idle_ms(void)
{
    const char *v = getenv("GODWITD_COLD_ASK_IDLE_MS");
    long long ms = v ? atoll(v) : 0;

    return ms > 0 ? ms : COLD_ASK_IDLE_MS;
}

/* Wait for the source to send everything (0), give up, or stop. */
static int cold_wait_files(struct job *j, struct incoming *in, char *err, size_t errlen)
{
    struct godwitd *d = in->d;
    int64_t ask_idle = cold_ask_idle_ms(), asked = 0;
    int64_t ask_every = ask_idle < COLD_ASK_EVERY_MS ? ask_idle : COLD_ASK_EVERY_MS;
    int ret = 0;

    pthread_mutex_lock(&in->lock);
    while (in->state == IN_PREPARING && !in->abort && !d->stopping && !job_cancelled(j) &&
           store_now_ms() - in->cold->active_ms < COLD_IDLE_MS) {
        struct timespec t;
        int64_t now = store_now_ms();
        if (now - in->cold->active_ms >= ask_idle && now - asked >= ask_every) {
            char why[500];
            asked = now;
            pthread_mutex_unlock(&in->lock);
            bool ended = cold_source_ended(in, j, why, sizeof(why));
            pthread_mutex_lock(&in->lock);
            if (ended && in->state == IN_PREPARING && !in->abort) {
                gw_log("incoming %s: %s: giving up", in->vm, why);
                snprintf(in->error, sizeof(in->error), "%s", why);
                in->abort = true;
                break;
            }
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += 1;
        pthread_cond_timedwait(&in->cond, &in->lock, &t);
    }
    if (in->state == IN_PREPARING) {
        if (d->stopping && !in->abort && !job_cancelled(j))
            ret = gw_fail(err, errlen, -ESHUTDOWN,
                          "godwitd stopped; the transfer continues "
                          "after the restart");
        else
            ret = gw_fail(err, errlen, -ECANCELED, "%s",
                          in->abort && in->error[0] ? in->error
                          : job_cancelled(j)        ? "cancelled"
                                                    : "the source stopped sending for 7 days");
    } else if (in->state == IN_FAILED) {
        ret = gw_fail(err, errlen, -ECANCELED, "%s", in->error);
    }
    pthread_mutex_unlock(&in->lock);
    return ret;
}

/* The started VM answers its agent's ping (or, without an agent, keeps
 * running a moment): 0 with the note, or -errno. */
static int cold_verify(struct job *j, struct incoming *in, char *note, size_t notelen, char *err,
                       size_t errlen)
{
    struct godwitd *d = in->d;
    json_t *def = vm_definition(d, in->vm);
    bool agent = json_is_true(json_object_get(def, "agent"));
    int64_t t0 = store_now_ms();
    char last[256] = "no answer yet";

    json_decref(def);
    job_phase(j, "verify");
    for (;;) {
        struct store_vm row;
        bool running = false;
        godwitd_store_lock(d);
        if (store_vm_get(d->store, in->vm, &row) == 0) {
            running = !strcmp(row.state, "running");
            store_vm_clear(&row);
        }
        godwitd_store_unlock(d);
        if (!running)
            return gw_fail(err, errlen, -EIO, "the VM stopped on host %s while it was verified",
                           d->name);
        int64_t waited = store_now_ms() - t0;
        if (!agent && waited >= COLD_PLAIN_MS) {
            snprintf(note, notelen,
                     "verified by its running state alone: the VM has no guest agent");
            return 0;
        }
        if (agent) {
            json_t *r = NULL;
            char e2[256];
            if (migrate_in_qmp(d, in->vm, "x-godwit-agent-ping",
                               json_pack("{s:i}", "timeout", COLD_PING_MS), &r, e2,
                               sizeof(e2)) == 0) {
                snprintf(note, notelen,
                         "the guest agent answered a ping after %lld ms (%lld ms "
                         "round trip)",
                         (long long)(store_now_ms() - t0),
                         (long long)json_integer_value(json_object_get(r, "ms")));
                json_decref(r);
                return 0;
            }
            snprintf(last, sizeof(last), "%s", e2);
        }
        if (waited > COLD_VERIFY_MS)
            return gw_fail(err, errlen, -ETIMEDOUT,
                           "the VM's guest agent did not answer a ping within %d s on host %s "
                           "(%s)",
                           COLD_VERIFY_MS / 1000, d->name, last);
        if (job_cancelled(j) || in->abort || d->stopping)
            return gw_fail(err, errlen, -ECANCELED, "interrupted while verifying");
        usleep(500 * 1000);
    }
}

/* A suspended VM's state file: whole and loadable here. */
static int cold_check_state(struct incoming *in, char *err, size_t errlen)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    struct state_report *r = calloc(1, sizeof(*r));
    int fd, ret;

    if (!r)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    godwitd_vm_dir(in->d, in->vm, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, VM_FILE_STATE);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ret = gw_fail(err, errlen, -errno, "the saved state did not arrive on host %s: %s",
                      in->d->name, strerror(errno));
    } else {
        ret = state_check(fd, r);
        if (ret < 0)
            ret = gw_fail(err, errlen, -EPROTO, "the saved state is not valid on host %s: %s",
                          in->d->name, r->error);
        close(fd);
    }
    free(r->config);
    free(r);
    return ret;
}

static json_t *cold_result(struct incoming *in)
{
    struct incoming_cold *c = in->cold;

    return json_pack("{s:s,s:s,s:s}", "vm_state", c->vm_state, "verify", c->verify, "clock",
                     c->clock);
}

/* Everything arrived: make the VM this host's (stopped, suspended, or
 * started and verified). */
static int cold_arrive(struct job *j, struct incoming *in, char *err, size_t errlen)
{
    struct godwitd *d = in->d;
    struct incoming_cold *c = in->cold;
    bool suspended = !strcmp(in->mode, "suspended");
    const char *state = suspended ? "suspended" : "stopped";
    int ret = 0;

    job_phase(j, "start");
    if (suspended)
        ret = cold_check_state(in, err, errlen);
    if (ret < 0)
        return ret;
    godwitd_store_lock(d);
    ret = store_vm_set_state(d->store, in->vm, state, 0, -1);
    godwitd_store_unlock(d);
    if (ret < 0)
        return gw_fail(err, errlen, -EIO, "cannot record the VM's state");
    snprintf(c->vm_state, sizeof(c->vm_state), "%s", state);
    if (suspended && c->resume) {
        ret = vm_resume(d, in->vm, c->clock, sizeof(c->clock), err, errlen);
        if (ret == 0)
            snprintf(c->vm_state, sizeof(c->vm_state), "running");
    } else if (!suspended && c->start) {
        ret = vm_spawn(d, in->vm, NULL, "running", err, errlen);
        if (ret == 0)
            snprintf(c->vm_state, sizeof(c->vm_state), "running");
    }
    if (ret == 0 && !strcmp(c->vm_state, "running"))
        ret = cold_verify(j, in, c->verify, sizeof(c->verify), err, errlen);
    else if (ret == 0)
        snprintf(c->verify, sizeof(c->verify), "not started (it stays %s)", c->vm_state);
    return ret;
}

static int cold_body(struct job *j, struct incoming *in, char *err, size_t errlen)
{
    struct godwitd *d = in->d;
    int ret = cold_wait_files(j, in, err, errlen);

    if (ret == -ESHUTDOWN) {
        migrate_in_unlink(in);
        return ret;
    }
    if (ret == 0)
        ret = cold_arrive(j, in, err, errlen);
    if (ret == 0) {
        char subject[STORE_NAME_MAX + 8];
        job_figures(j, cold_result(in), true);
        pthread_mutex_lock(&in->lock);
        in->state = IN_RUNNING;
        pthread_cond_broadcast(&in->cond);
        pthread_mutex_unlock(&in->lock);
        snprintf(subject, sizeof(subject), "vm/%s", in->vm);
        godwitd_event(d, "vm-arrived", subject,
                      json_pack("{s:s,s:s,s:s}", "vm", in->vm, "from", in->peer, "state",
                                in->cold->vm_state));
        migrate_in_unlink(in);
        job_phase(j, "done");
        return 0;
    }
    migrate_in_fail(in, "%s", err);
    /* nothing of the VM stays here: its folder holds the part files */
    char why[256];
    if (vm_kill(d, in->vm, 5000, why, sizeof(why)) < 0 && !strstr(why, "not running") &&
        !strstr(why, "no process"))
        gw_log("incoming %s: %s", in->vm, why);
    if (vm_forget(d, in->vm, why, sizeof(why)) < 0)
        gw_log("incoming %s: %s", in->vm, why);
    migrate_in_unlink(in);
    return ret;
}

static int cold_run(struct job *j, char *err, size_t errlen)
{
    return cold_body(j, job_arg(j), err, errlen);
}

static void cold_cancel(struct job *j)
{
    struct incoming *in = job_arg(j);

    pthread_mutex_lock(&in->lock);
    in->abort = true;
    snprintf(in->error, sizeof(in->error), "cancelled on host %s", in->d->name);
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
}

/* After a restart: a transfer goes on (the part files are in the VM's
 * folder and the source asks where to continue); a job that was starting
 * the VM fails and removes it (the source then takes its VM back). */
static int cold_resume(struct job *j, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    struct store_job sj;
    struct incoming *in;
    json_t *body;
    int ret;

    godwitd_store_lock(d);
    ret = store_job_get(d->store, job_id(j), &sj);
    godwitd_store_unlock(d);
    if (ret < 0)
        return gw_fail(err, errlen, ret, "job %lld vanished", (long long)job_id(j));
    if (strcmp(sj.phase, "transfer")) {
        char why[256];
        (void)vm_kill(d, sj.vm, 5000, why, sizeof(why));
        (void)vm_forget(d, sj.vm, why, sizeof(why));
        store_job_clear(&sj);
        return gw_fail(err, errlen, -ECANCELED,
                       "interrupted: godwitd restarted while starting the VM");
    }
    in = migrate_in_new(d, sj.vm, sj.peer);
    body = sj.options ? json_loads(sj.options, 0, NULL) : json_object();
    if (!in || migrate_in_cold_attach(in, body) < 0) {
        json_decref(body);
        store_job_clear(&sj);
        if (in) {
            in->refs = 1;
            migrate_in_put(in);
        }
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    }
    snprintf(in->mode, sizeof(in->mode), "%s", sj.kind);
    in->job = job_id(j);
    json_decref(body);
    store_job_clear(&sj);
    migrate_in_link(in);
    gw_log("incoming %s: job %lld waits for its source to continue the transfer", in->vm,
           (long long)in->job);
    ret = cold_body(j, in, err, errlen);
    migrate_in_put(in); /* the job's reference (resume has no job arg) */
    return ret;
}

const struct job_kind migrate_in_cold_kind = {
    .kind = "cold",
    .direction = "in",
    .run = cold_run,
    .cancel = cold_cancel,
    .resume = cold_resume,
};

const struct job_kind migrate_in_suspended_kind = {
    .kind = "suspended",
    .direction = "in",
    .run = cold_run,
    .cancel = cold_cancel,
    .resume = cold_resume,
};

void migrate_in_cold_register(struct godwitd *d)
{
    jobs_register(d, &migrate_in_cold_kind);
    jobs_register(d, &migrate_in_suspended_kind);
}

static const struct api_field cold_complete_body[] = {{NULL, 0, false}};

const struct api_route migrate_in_cold_routes[] = {
    {"POST", "/1.0/incoming/{id}/xfer", cold_xfer, NULL, API_ROUTE_PEER | API_ROUTE_RAW},
    {"POST", "/1.0/incoming/{id}/chunk", cold_chunk, NULL, API_ROUTE_PEER | API_ROUTE_RAW},
    {"POST", "/1.0/incoming/{id}/xfer-done", cold_xfer_done, NULL, API_ROUTE_PEER | API_ROUTE_RAW},
    {"POST", "/1.0/incoming/{id}/complete", cold_complete, cold_complete_body, API_ROUTE_PEER},
    {"POST", "/1.0/incoming/{id}/revert", cold_revert, NULL, API_ROUTE_PEER},
    {"POST", "/1.0/incoming/{id}/confirm", cold_confirm, NULL, API_ROUTE_PEER},
};
const size_t migrate_in_cold_nroutes = GW_ARRAY_SIZE(migrate_in_cold_routes);
