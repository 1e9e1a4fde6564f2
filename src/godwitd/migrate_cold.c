/*
 * Cold and suspended migration, the source's job (migrate_cold.h for the
 * phases).  The job keeps what it must remember across a daemon restart in
 * its figures: the VM's state before the job ("was"), the destination's
 * job id, the confirm deadline, the transfer's figures.  A restarted
 * daemon resumes it by phase: the transfer continues where the destination
 * stands, start/verify ask the destination again, confirm waits again;
 * earlier phases put the VM back as it was.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwitd/jobs.h"
#include "godwitd/migrate.h"
#include "godwitd/migrate_cold.h"
#include "godwitd/peers.h"
#include "godwitd/vms.h"

#define COLD_FILES_MAX      16
#define COLD_POLL_MS        500
#define COLD_SHUTDOWN_S     120 /* --shutdown-timeout's default */
#define COLD_FIGURES_MS     250
#define COLD_DST_TIMEOUT_MS 15000

struct cold_src {
    char vm[STORE_NAME_MAX];
    char peer[STORE_NAME_MAX];
    char mode[STORE_WORD_MAX]; /* cold, suspended */
    int shutdown_timeout;      /* s */
    bool force, no_start, resume, suspend, confirm_auto;
    int64_t confirm_window_ms;
    int64_t bandwidth_mbps;
    /* remembered in the figures */
    char was[STORE_WORD_MAX]; /* the VM's state when the job began */
    int64_t confirm_deadline; /* unix ms, 0 until the confirm phase */
    json_t *result;           /* the destination's: vm_state, verify, clock */
    struct migrate_file files[COLD_FILES_MAX];
    unsigned nfiles;
    struct migrate_send send;
    json_t *sent_before; /* resumed: the files' figures before the restart */
    int64_t figures_ms;  /* figures last stored */
    struct job *job;
    /* the operator's verbs, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool want_confirm, want_revert;
    _Atomic bool cancel;
};

static void cold_free(void *p)
{
    struct cold_src *m = p;

    if (!m)
        return;
    peer_conn_free(m->send.conn);
    json_decref(m->result);
    json_decref(m->sent_before);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static struct cold_src *cold_new(void)
{
    struct cold_src *m = calloc(1, sizeof(*m));
    pthread_condattr_t ca;

    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    m->send.owner = m;
    return m;
}

/* ---- figures ---- */

static json_t *cold_figures(struct cold_src *m)
{
    uint64_t total = 0, done = 0, data = 0;
    json_t *files = json_array();

    for (unsigned i = 0; i < m->nfiles; i++) {
        struct migrate_file *f = &m->files[i];
        total += f->total;
        done += f->done;
        data += f->allocated;
        json_t *o =
            json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:b}", "name", f->name, "size", (json_int_t)f->size,
                      "allocated", (json_int_t)f->allocated, "data", (json_int_t)f->total, "done",
                      (json_int_t)f->done, "sent", (json_int_t)f->high, "complete", f->complete);
        if (f->complete) {
            json_object_set_new(o, "allocated_dst", json_integer((json_int_t)f->allocated_dst));
            json_object_set_new(o, "digest", json_string(f->digest));
        }
        json_array_append_new(files, o);
    }
    json_t *xf =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "total", (json_int_t)total,
                  "done", (json_int_t)done, "remaining", (json_int_t)(total - done), "allocated",
                  (json_int_t)data, "wire", (json_int_t)m->send.wire, "resent",
                  (json_int_t)m->send.resent, "chunks", (json_int_t)m->send.nsent, "compressed",
                  (json_int_t)m->send.compressed, "bad_chunks", (json_int_t)m->send.bad_chunks,
                  "resumes", (json_int_t)(m->send.resumes + m->send.reconnects), "files", files);
    json_t *f =
        json_pack("{s:s,s:s,s:I,s:s,s:o}", "mode", m->mode, "destination-host", m->peer,
                  "destination-job", (json_int_t)m->send.dst_job, "was", m->was, "transfer", xf);
    json_object_set_new(f, "confirm",
                        json_pack("{s:s,s:I}", "mode", m->confirm_auto ? "auto" : "manual",
                                  "deadline", (json_int_t)m->confirm_deadline));
    if (m->result)
        json_object_set(f, "result", m->result);
    return f;
}

void migrate_send_progress(struct migrate_send *s, bool final)
{
    struct cold_src *m = s->owner;
    int64_t now = store_now_ms();

    /* stored at most every COLD_FIGURES_MS (each store write is an fsync):
     * a daemon killed meanwhile resumes with counters that much behind,
     * while the destination's verified offset, not these, says where the
     * transfer continues */
    if (!final && now - m->figures_ms < COLD_FIGURES_MS)
        return;
    m->figures_ms = now;
    job_figures(m->job, cold_figures(m), final);
}

void migrate_send_unreachable(struct migrate_send *s, const char *why)
{
    struct cold_src *m = s->owner;
    char reason[STORE_TEXT_MAX];

    snprintf(reason, sizeof(reason),
             "host %s unreachable (%.300s); retrying, gives up after %lld s without progress",
             m->peer, why, (long long)(s->give_up_ms / 1000));
    if (job_hold_own(m->job, "technical", reason, NULL) < 0)
        gw_log("job %lld: cannot record the technical hold", (long long)job_id(m->job));
}

void migrate_send_reachable(struct migrate_send *s)
{
    struct cold_src *m = s->owner;
    char by[96];

    snprintf(by, sizeof(by), "host %s reachable again", m->peer);
    job_lift_own(m->job, "technical", by);
}

bool migrate_send_stop(struct migrate_send *s)
{
    struct cold_src *m = s->owner;

    return m->cancel || job_cancelled(m->job) || job_held(m->job) || job_stopping(m->job);
}

/* ---- the VM's files ---- */

static int cold_add_file(struct cold_src *m, const char *name, const char *path, char *err,
                         size_t errlen)
{
    struct migrate_file *f;
    struct stat st;

    if (m->nfiles >= COLD_FILES_MAX)
        return gw_fail(err, errlen, -E2BIG, "more than %d files to move", COLD_FILES_MAX);
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return gw_fail(err, errlen, -ENOENT, "%s: %s", path,
                       errno ? strerror(errno) : "not a regular file");
    f = &m->files[m->nfiles++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    snprintf(f->path, sizeof(f->path), "%s", path);
    f->size = (uint64_t)st.st_size;
    f->allocated = (uint64_t)st.st_blocks * 512;
    f->total = migrate_data_chunks(path, f->size);
    /* resumed: what was sent before the restart (a resend below it counts) */
    const json_t *o;
    size_t i;
    json_array_foreach(m->sent_before, i, o)
    {
        if (!strcmp(json_string_value(json_object_get(o, "name")) ?: "", name)) {
            const char *dg = json_string_value(json_object_get(o, "digest"));
            f->high = (uint64_t)json_integer_value(json_object_get(o, "sent"));
            f->complete = json_is_true(json_object_get(o, "complete")) && dg;
            if (f->complete) {
                f->done = f->total;
                f->allocated_dst =
                    (uint64_t)json_integer_value(json_object_get(o, "allocated_dst"));
                snprintf(f->digest, sizeof(f->digest), "%s", dg);
            }
        }
    }
    return 0;
}

/* The files that travel (boot files, disks, the saved state) and the
 * definition the destination gets (disks that do not stay on shared
 * storage become files of its VM folder).  *out: the definition. */
static int cold_plan(struct job *j, struct cold_src *m, json_t **out, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    json_t *def = vm_definition(d, m->vm), *disks;
    char dir[PATH_MAX], path[PATH_MAX + 300];
    const json_t *disk;
    struct dirent *e;
    DIR *dp;
    size_t i;
    int ret = 0;

    if (!def)
        return gw_fail(err, errlen, -ENOENT, "VM %s has no definition here", m->vm);
    m->nfiles = 0;
    godwitd_vm_dir(d, m->vm, dir, sizeof(dir));
    disks = json_array();
    json_array_foreach(json_object_get(def, "disks"), i, disk)
    {
        const char *file = json_string_value(json_object_get(disk, "file"));
        const char *p = json_string_value(json_object_get(disk, "path"));
        json_int_t size = json_integer_value(json_object_get(disk, "size"));
        char name[32], one_err[256];
        json_t *one = json_pack("{s:[O]}", "disks", disk);
        bool shared = p && migrate_disks_shared(d, one, one_err, sizeof(one_err)) == 0;
        json_decref(one);
        if (shared) { /* both hosts see it: it stays where it is */
            json_array_append(disks, (json_t *)disk);
            continue;
        }
        snprintf(name, sizeof(name), "disk%zu.raw", i);
        if (file)
            snprintf(path, sizeof(path), "%s/%s", dir, file);
        else
            snprintf(path, sizeof(path), "%s", p ? p : "");
        if (ret == 0)
            ret = cold_add_file(m, name, path, err, errlen);
        json_array_append_new(disks, json_pack("{s:s,s:I}", "file", name, "size", size));
    }
    json_object_set_new(def, "disks", disks);
    /* boot files: every other regular file of the folder but the
     * definition, logs, sockets and the saved state */
    dp = ret == 0 ? opendir(dir) : NULL;
    if (ret == 0 && !dp)
        ret = gw_fail(err, errlen, -errno, "%s: %s", dir, strerror(errno));
    while (ret == 0 && (e = readdir(dp))) {
        const char *n = e->d_name;
        size_t nl = strlen(n);
        struct stat st;
        /* the console log travels: the guest's history goes with it */
        bool skip = n[0] == '.' || !strcmp(n, VM_FILE_DEF) || !strcmp(n, VM_FILE_STATE) ||
                    (nl > 5 && !strcmp(n + nl - 5, ".sock")) ||
                    (nl > 4 && !strcmp(n + nl - 4, ".log") && strcmp(n, VM_FILE_LOG)) ||
                    (nl > 4 && !strncmp(n, "disk", 4) && !strcmp(n + nl - 4, ".raw"));
        snprintf(path, sizeof(path), "%s/%s", dir, n);
        if (skip || lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        ret = cold_add_file(m, n, path, err, errlen);
    }
    if (dp)
        closedir(dp);
    snprintf(path, sizeof(path), "%s/%s", dir, VM_FILE_STATE);
    if (ret == 0 && !strcmp(m->mode, "suspended") && !(m->suspend && access(path, F_OK) < 0)) {
        /* (--suspend before the suspend: the precheck counts the VM's
         * memory for it instead) */
        ret = cold_add_file(m, VM_FILE_STATE, path, err, errlen);
        if (ret < 0)
            ret = gw_fail(err, errlen, -ENOENT, "VM %s has no saved state (%s)", m->vm,
                          VM_FILE_STATE);
    }
    if (ret < 0) {
        json_decref(def);
        return ret;
    }
    *out = def;
    return 0;
}

static json_t *cold_files_json(struct cold_src *m)
{
    json_t *a = json_array();

    for (unsigned i = 0; i < m->nfiles; i++)
        json_array_append_new(a, json_pack("{s:s,s:I,s:I}", "name", m->files[i].name, "size",
                                           (json_int_t)m->files[i].size, "allocated",
                                           (json_int_t)m->files[i].allocated));
    return a;
}

/* Make the VM's files read-only (the confirm phase) or writable again. */
static void cold_protect(struct godwitd *d, struct cold_src *m, bool ro)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];

    godwitd_vm_dir(d, m->vm, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, VM_FILE_DEF);
    for (unsigned i = 0; i <= m->nfiles; i++) {
        const char *p = i < m->nfiles ? m->files[i].path : path;
        struct stat st;
        if (stat(p, &st) == 0)
            (void)chmod(p, ro ? st.st_mode & ~(mode_t)0222 : st.st_mode | S_IWUSR);
    }
}

/* ---- talking to the destination ---- */

static int cold_dst(struct job *j, struct cold_src *m, const char *what, json_t *body,
                    json_t **reply, char *err, size_t errlen)
{
    char api[128];

    snprintf(api, sizeof(api), "/1.0/incoming/%lld/%s", (long long)m->send.dst_job, what);
    return peer_call(job_daemon(j), m->peer, "POST", api, body, reply, NULL, COLD_DST_TIMEOUT_MS,
                     err, errlen);
}

static void cold_abort_dst(struct job *j, struct cold_src *m, const char *why)
{
    char err[256];
    json_t *body;

    if (m->send.dst_job <= 0)
        return;
    body = json_pack("{s:s}", "reason", why);
    for (int i = 0; i < 3; i++) {
        if (cold_dst(j, m, "abort", body, NULL, err, sizeof(err)) == 0 || strstr(err, "too late") ||
            strstr(err, "no incoming"))
            break;
        gw_log("job %lld: telling %s to give up: %s", (long long)job_id(j), m->peer, err);
        sleep(1);
    }
    json_decref(body);
}

/* ---- putting the VM back ---- */

static void cold_restore(struct job *j, struct cold_src *m)
{
    struct godwitd *d = job_daemon(j);
    char err[512], note[256];
    struct store_vm row;
    const char *now;
    int ret;

    godwitd_store_lock(d);
    ret = store_vm_get(d->store, m->vm, &row);
    godwitd_store_unlock(d);
    if (ret < 0)
        return;
    now = row.state;
    bool has_process = row.pid > 0 && (!strcmp(now, "running") || !strcmp(now, "stopping"));
    store_vm_clear(&row);
    cold_protect(d, m, false);
    if (has_process)
        return; /* it never stopped */
    /* a suspended VM's saved state is still in its folder */
    godwitd_store_lock(d);
    store_vm_set_state(d->store, m->vm,
                       !strcmp(m->mode, "suspended") ? "suspended"
                       : strcmp(m->was, "running")   ? m->was
                                                     : "stopped",
                       0, -1);
    godwitd_store_unlock(d);
    if (strcmp(m->was, "running"))
        return;
    if (!strcmp(m->mode, "suspended"))
        ret = vm_resume(d, m->vm, note, sizeof(note), err, sizeof(err));
    else
        ret = vm_spawn(d, m->vm, NULL, "running", err, sizeof(err));
    if (ret < 0)
        gw_log("job %lld: starting %s again here: %s", (long long)job_id(j), m->vm, err);
    else
        gw_log("job %lld: %s runs here again", (long long)job_id(j), m->vm);
}

/* ---- phases ---- */

/* What the transfer moves (before compression): the chunks that hold data. */
static uint64_t cold_bytes_to_move(const struct cold_src *m)
{
    uint64_t sum = 0;

    for (unsigned i = 0; i < m->nfiles; i++)
        sum += m->files[i].total;
    return sum;
}

static int cold_precheck(struct job *j, struct cold_src *m, json_t **def, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    bool start;
    json_t *body;
    int ret;

    ret = cold_plan(j, m, def, err, errlen);
    if (ret < 0)
        return ret;
    start = !strcmp(m->mode, "suspended") ? m->resume : !m->no_start && !strcmp(m->was, "running");
    json_t *files = cold_files_json(m);
    if (m->suspend && !strcmp(m->mode, "suspended")) {
        /* the state is not saved yet: at most the VM's memory */
        json_int_t mem = json_integer_value(json_object_get(*def, "memory"));
        json_array_append_new(files, json_pack("{s:s,s:I,s:I}", "name", VM_FILE_STATE, "size", mem,
                                               "allocated", mem));
    }
    body = json_pack("{s:O,s:o,s:s,s:o,s:b}", "vm", *def, "compat", migrate_compat(d), "mode",
                     m->mode, "files", files, "start", start);
    json_t *pre = NULL;
    ret = migrate_precheck_call(j, m->peer, body, &pre, err, errlen);
    if (ret == 0)
        ret = migrate_policy_gate(j, *def, m->peer, json_object_get(pre, "labels"),
                                  cold_bytes_to_move(m), err, errlen);
    json_decref(pre);
    json_decref(body);
    return ret;
}

/* Stop (cold) or suspend (--suspend) a running VM. */
static int cold_quiesce(struct job *j, struct cold_src *m, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    int ret;

    if (strcmp(m->was, "running"))
        return 0;
    if (m->suspend) {
        job_phase(j, "suspend");
        return vm_suspend(d, m->vm, err, errlen);
    }
    job_phase(j, "shutdown");
    ret = vm_stop(d, m->vm, m->shutdown_timeout, m->force, err, errlen);
    if (ret == -ETIMEDOUT)
        return gw_fail(err, errlen, ret,
                       "the guest did not power off within %d s; the VM keeps running on host "
                       "%s (--force powers it off after the timeout)",
                       m->shutdown_timeout, d->name);
    return ret;
}

static int cold_create_dst(struct job *j, struct cold_src *m, json_t *def, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    json_t *body, *r = NULL;
    bool start =
        !strcmp(m->mode, "suspended") ? m->resume : !m->no_start && !strcmp(m->was, "running");
    int ret;

    body = json_pack("{s:O,s:o,s:I,s:s,s:o,s:b,s:b}", "vm", def, "compat", migrate_compat(d),
                     "source_job", (json_int_t)job_id(j), "mode", m->mode, "files",
                     cold_files_json(m), "start", start, "resume", m->resume);
    ret = peer_call(d, m->peer, "POST", "/1.0/incoming", body, &r, NULL, COLD_DST_TIMEOUT_MS, err,
                    errlen);
    json_decref(body);
    if (ret < 0)
        return ret;
    m->send.dst_job = json_integer_value(json_object_get(r, "job"));
    json_decref(r);
    if (m->send.dst_job <= 0)
        return gw_fail(err, errlen, -EPROTO, "host %s answered without a job id", m->peer);
    migrate_send_progress(&m->send, true);
    return 0;
}

static int cold_transfer(struct job *j, struct cold_src *m, char *err, size_t errlen)
{
    const char *hook = getenv("GODWITD_FAULT_FLIP_CHUNK");
    int ret = 0;

    job_phase(j, "transfer");
    m->send.d = job_daemon(j);
    m->send.job = job_id(j);
    snprintf(m->send.peer, sizeof(m->send.peer), "%s", m->peer);
    m->send.flip_chunk = hook ? strtoull(hook, NULL, 10) : 0;
    xfer_rate_init(&m->send.rate,
                   m->bandwidth_mbps > 0 ? (uint64_t)m->bandwidth_mbps * 1000000 / 8 : 0);
    for (unsigned i = 0; i < m->nfiles && ret == 0; i++)
        if (!m->files[i].complete) /* (resumed: those are there already) */
            ret = migrate_send_file(&m->send, &m->files[i], err, errlen);
    migrate_send_progress(&m->send, true);
    return ret;
}

/* Ask the destination how its VM is (GET /1.0/incoming/ID): 1 arrived
 * (m->result set), 0 still starting, -errno failed or unreachable. */
static int cold_dst_state(struct job *j, struct cold_src *m, char *err, size_t errlen)
{
    char api[96];
    json_t *r = NULL;
    int ret;

    snprintf(api, sizeof(api), "/1.0/incoming/%lld", (long long)m->send.dst_job);
    ret = peer_call(job_daemon(j), m->peer, "GET", api, NULL, &r, NULL, COLD_DST_TIMEOUT_MS, err,
                    errlen);
    if (ret < 0)
        return ret == -EREMOTEIO ? -EPROTO : -EAGAIN;
    const char *st = json_string_value(json_object_get(r, "state"));
    const char *why = json_string_value(json_object_get(r, "error"));
    json_t *res = json_object_get(r, "result");
    if (json_is_object(res)) {
        json_decref(m->result);
        m->result = json_incref(res);
    }
    if (st && (!strcmp(st, "arrived") || !strcmp(st, "running")))
        ret = 1;
    else if (st && !strcmp(st, "failed"))
        ret = gw_fail(err, errlen, -EIO, "host %s: %s", m->peer,
                      why && why[0] ? why : "its copy failed");
    else
        ret = 0;
    json_decref(r);
    return ret;
}

static int cold_start(struct job *j, struct cold_src *m, bool resuming, char *err, size_t errlen)
{
    int64_t t0 = store_now_ms();
    bool verifying = false;
    int ret;

    job_phase(j, "start");
    if (!resuming) {
        ret = cold_dst(j, m, "complete", json_object(), NULL, err, errlen);
        if (ret < 0)
            return ret;
    }
    for (;;) {
        ret = cold_dst_state(j, m, err, errlen);
        const char *vs = json_string_value(json_object_get(m->result, "vm_state"));
        if (!verifying && (ret == 1 || (vs && !strcmp(vs, "running")))) {
            verifying = true;
            job_phase(j, "verify");
        }
        if (ret == 1) {
            migrate_send_progress(&m->send, true);
            return 0;
        }
        if (ret < 0 && ret != -EAGAIN)
            return ret;
        if (ret == -EAGAIN && store_now_ms() - t0 > 10 * 60 * 1000)
            return gw_fail(err, errlen, -ETIMEDOUT, "host %s stopped answering: %s", m->peer, err);
        if (ret == 0)
            t0 = store_now_ms();
        if (job_stopping(j))
            return gw_fail(err, errlen, -ESHUTDOWN, "godwitd stopped");
        if (m->cancel)
            return gw_fail(err, errlen, -ECANCELED, "cancelled");
        usleep(COLD_POLL_MS * 1000);
    }
}

/* The source's copy waits (read-only, state migrated) for confirm, revert
 * or the end of the window.  0 confirmed, JOB_REVERTED, -ESHUTDOWN. */
static int cold_confirm(struct job *j, struct cold_src *m, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    char e2[512], subject[STORE_NAME_MAX + 8];
    int ret = 0;

    snprintf(subject, sizeof(subject), "vm/%s", m->vm);
    job_phase(j, "confirm");
    godwitd_store_lock(d);
    store_vm_set_state(d->store, m->vm, "migrated", 0, -1);
    godwitd_store_unlock(d);
    cold_protect(d, m, true);
    if (!m->confirm_deadline)
        m->confirm_deadline = store_now_ms() + m->confirm_window_ms;
    migrate_send_progress(&m->send, true);
    pthread_mutex_lock(&m->lock);
    for (;;) {
        bool expired = m->confirm_auto && store_now_ms() >= m->confirm_deadline;
        if (m->want_revert) {
            m->want_revert = false;
            pthread_mutex_unlock(&m->lock);
            ret = cold_dst(j, m, "revert", json_object(), NULL, e2, sizeof(e2));
            if (ret == 0) {
                cold_restore(j, m);
                job_phase(j, "reverted");
                godwitd_event(d, "vm-reverted", subject,
                              json_pack("{s:s,s:s}", "vm", m->vm, "from", m->peer));
                return JOB_REVERTED;
            }
            gw_log("job %lld: revert: host %s: %s", (long long)job_id(j), m->peer, e2);
            godwitd_event(d, "job-revert-failed", subject, json_pack("{s:s}", "error", e2));
            pthread_mutex_lock(&m->lock);
            continue;
        }
        if (m->want_confirm || expired)
            break;
        if (d->stopping) {
            pthread_mutex_unlock(&m->lock);
            return gw_fail(err, errlen, -ESHUTDOWN, "godwitd stopped in the confirm phase");
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        t.tv_sec += 1;
        pthread_cond_timedwait(&m->cond, &m->lock, &t);
    }
    pthread_mutex_unlock(&m->lock);
    /* confirmed: this host's copy goes */
    if (cold_dst(j, m, "confirm", json_object(), NULL, e2, sizeof(e2)) < 0)
        gw_log("job %lld: telling %s of the confirm: %s", (long long)job_id(j), m->peer, e2);
    cold_protect(d, m, false);
    if (vm_forget(d, m->vm, e2, sizeof(e2)) < 0)
        gw_log("job %lld: forgetting %s: %s", (long long)job_id(j), m->vm, e2);
    godwitd_event(d, "vm-departed", subject, json_pack("{s:s,s:s}", "vm", m->vm, "to", m->peer));
    job_phase(j, "done");
    return 0;
}

static const char *const cold_phases[] = {"precheck", "shutdown", "suspend", "transfer",
                                          "start",    "verify",   "confirm"};

static unsigned cold_phase_index(const char *p)
{
    for (unsigned i = 0; i < GW_ARRAY_SIZE(cold_phases); i++)
        if (!strcmp(p, cold_phases[i]))
            return i;
    return 0;
}

/* The job from phase `from` on (0 precheck ... 6 confirm). */
static int cold_body(struct job *j, struct cold_src *m, unsigned from, char *err, size_t errlen)
{
    json_t *def = NULL;
    int ret = 0;

    if (from <= 3) {
        /* a new job, or one resumed mid-transfer: the plan is made again
         * (the same files, nothing changed them: the VM is stopped) */
        if (from == 0) /* --after-vm: nothing happens before that VM runs there */
            ret = migrate_after_vm_wait(
                j, json_string_value(json_object_get(job_options(j), "after_vm")), err, errlen);
        if (ret == 0)
            ret = from == 0 ? cold_precheck(j, m, &def, err, errlen)
                            : cold_plan(j, m, &def, err, errlen);
        if (ret == 0 && (m->cancel || job_cancelled(j)))
            ret = gw_fail(err, errlen, -ECANCELED, "cancelled");
        if (ret == 0 && from == 0 && job_held(j)) {
            /* held before anything changed: the VM runs on as it was */
            json_decref(def);
            migrate_send_progress(&m->send, true);
            return JOB_PARKED;
        }
        if (ret == 0 && from == 0)
            ret = cold_quiesce(j, m, err, errlen);
        if (ret == 0 && from == 0) {
            /* nobody starts it while it travels */
            godwitd_store_lock(job_daemon(j));
            store_vm_set_state(job_daemon(j)->store, m->vm, "migrating", 0, -1);
            godwitd_store_unlock(job_daemon(j));
            /* the plan again: the saved state exists only now */
            json_decref(def);
            def = NULL;
            ret = cold_plan(j, m, &def, err, errlen);
            if (ret == 0)
                ret = cold_create_dst(j, m, def, err, errlen);
        }
        if (ret == 0)
            ret = cold_transfer(j, m, err, errlen);
        json_decref(def);
        /* the transfer may happen before the window; the switchover not */
        if (ret == 0)
            ret = migrate_window_wait(
                j, json_string_value(json_object_get(job_options(j), "window")), err, errlen);
    }
    if (from >= 4) {
        /* resumed after the transfer: the files, for the figures and the
         * confirm phase's read-only marks */
        char e2[256];
        if (cold_plan(j, m, &def, e2, sizeof(e2)) == 0)
            for (unsigned i = 0; i < m->nfiles; i++) {
                m->files[i].done = m->files[i].total;
                m->files[i].complete = true;
            }
        json_decref(def);
    }
    if (ret == 0 && from <= 5)
        ret = cold_start(j, m, from >= 4, err, errlen);
    if (ret == 0)
        return cold_confirm(j, m, err, errlen);
    if (ret == -ESHUTDOWN || (job_stopping(j) && ret != -ECANCELED))
        return ret; /* resumed at the next start */
    if (job_held(j) && !m->cancel && !job_cancelled(j)) {
        /* held mid-transfer: the destination keeps every verified chunk;
         * the release continues from there */
        gw_log("job %lld: held: parked in phase %s", (long long)job_id(j),
               m->send.dst_job > 0 ? "transfer" : "precheck");
        migrate_send_progress(&m->send, true);
        return JOB_PARKED;
    }
    /* before confirm: the VM goes back to how it was */
    cold_abort_dst(j, m, err);
    cold_restore(j, m);
    migrate_send_progress(&m->send, true);
    return ret;
}

static int cold_run(struct job *j, char *err, size_t errlen)
{
    struct cold_src *m = job_arg(j);

    m->job = j;
    migrate_send_progress(&m->send, true); /* "was" is on record before anything changes */
    return cold_body(j, m, 0, err, errlen);
}

static void cold_cancel(struct job *j)
{
    struct cold_src *m = job_arg(j);

    if (m)
        m->cancel = true;
}

static int cold_control(struct job *j, const char *verb, const json_t *body, char *err,
                        size_t errlen)
{
    struct cold_src *m = job_arg(j);
    char phase[STORE_WORD_MAX];

    (void)body;
    job_phase_get(j, phase, sizeof(phase));
    if (!strcmp(verb, "hold")) {
        /* before the destination starts the VM: the transfer keeps what
         * it moved; later there is nothing to hold */
        if (strcmp(phase, "precheck") && strcmp(phase, "shutdown") && strcmp(phase, "suspend") &&
            strcmp(phase, "transfer"))
            return gw_fail(err, errlen, -EINVAL,
                           "job %lld is past its transfer (the VM is being started on %s or "
                           "arrived): nothing to hold",
                           (long long)job_id(j), m ? m->peer : "the destination");
        return 0;
    }
    if (!m || (strcmp(verb, "confirm") && strcmp(verb, "revert")))
        return gw_fail(err, errlen, -EOPNOTSUPP, "a %s migration has nothing to %s",
                       m ? m->mode : "cold", verb);
    if (strcmp(phase, "confirm"))
        return gw_fail(err, errlen, -EINVAL,
                       "job %lld is not waiting for a confirm yet: it can be confirmed or "
                       "reverted once the VM arrived on %s",
                       (long long)job_id(j), m->peer);
    pthread_mutex_lock(&m->lock);
    if (!strcmp(verb, "confirm"))
        m->want_confirm = true;
    else
        m->want_revert = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return 0;
}

/* Options (the job's) into m. */
static void cold_options(struct cold_src *m, const json_t *o)
{
    const char *mode = json_string_value(json_object_get(o, "mode"));
    const char *confirm = json_string_value(json_object_get(o, "confirm"));
    json_int_t win = json_integer_value(json_object_get(o, "confirm_window"));

    snprintf(m->mode, sizeof(m->mode), "%s", mode ? mode : "cold");
    m->shutdown_timeout = (int)json_integer_value(json_object_get(o, "shutdown_timeout"));
    if (m->shutdown_timeout <= 0)
        m->shutdown_timeout = COLD_SHUTDOWN_S;
    m->force = json_is_true(json_object_get(o, "force"));
    m->no_start = json_is_true(json_object_get(o, "no_start"));
    m->resume = json_is_true(json_object_get(o, "resume"));
    m->suspend = json_is_true(json_object_get(o, "suspend"));
    m->confirm_auto = !confirm || strcmp(confirm, "manual");
    m->confirm_window_ms = (win > 0 ? win : MIGRATE_CONFIRM_WINDOW_S) * 1000;
    m->bandwidth_mbps = json_integer_value(json_object_get(o, "bandwidth"));
    json_int_t gu = json_integer_value(json_object_get(o, "give_up_after"));
    m->send.give_up_ms = (gu > 0 ? gu : MIGRATE_GIVE_UP_S) * 1000;
}

/* A job found unfinished at start: on from its phase. */
static int cold_resume(struct job *j, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    struct cold_src *m = cold_new();
    struct store_job sj;
    json_t *fig = NULL;
    unsigned from;
    int ret;

    if (!m)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    godwitd_store_lock(d);
    ret = store_job_get(d->store, job_id(j), &sj);
    godwitd_store_unlock(d);
    if (ret < 0) {
        cold_free(m);
        return gw_fail(err, errlen, ret, "job %lld vanished", (long long)job_id(j));
    }
    m->job = j;
    snprintf(m->vm, sizeof(m->vm), "%s", sj.vm);
    snprintf(m->peer, sizeof(m->peer), "%s", sj.peer);
    cold_options(m, job_options(j));
    job_set_arg(j, m, cold_free);
    fig = sj.figures ? json_loads(sj.figures, 0, NULL) : NULL;
    snprintf(m->was, sizeof(m->was), "%s",
             json_string_value(json_object_get(fig, "was")) ?: "stopped");
    m->send.dst_job = json_integer_value(json_object_get(fig, "destination-job"));
    m->confirm_deadline =
        json_integer_value(json_object_get(json_object_get(fig, "confirm"), "deadline"));
    json_t *xf = json_object_get(fig, "transfer");
    m->send.wire = (uint64_t)json_integer_value(json_object_get(xf, "wire"));
    m->send.resent = (uint64_t)json_integer_value(json_object_get(xf, "resent"));
    m->send.nsent = (uint64_t)json_integer_value(json_object_get(xf, "chunks"));
    m->send.bad_chunks = (uint64_t)json_integer_value(json_object_get(xf, "bad_chunks"));
    m->send.resumes = (uint64_t)json_integer_value(json_object_get(xf, "resumes")) + 1;
    m->send.compressed = (uint64_t)json_integer_value(json_object_get(xf, "compressed"));
    if (json_is_object(json_object_get(fig, "result")))
        m->result = json_incref(json_object_get(fig, "result"));
    m->sent_before = json_incref(json_object_get(xf, "files"));
    from = cold_phase_index(sj.phase);
    store_job_clear(&sj);
    json_decref(fig);
    if (job_cancelled(j)) {
        /* cancelled while parked on a hold: put everything back */
        cold_abort_dst(j, m, "cancelled on the source");
        cold_restore(j, m);
        return gw_fail(err, errlen, -ECANCELED, "cancelled while held; the VM is back as it was");
    }
    if (job_held(j)) {
        gw_log("job %lld: held: stays parked", (long long)job_id(j));
        return JOB_PARKED;
    }
    if (job_released(j) && (from < 3 || m->send.dst_job <= 0)) {
        /* held before anything changed: start again from the precheck,
         * with the VM as it is now */
        struct store_vm vm;
        godwitd_store_lock(d);
        if (store_vm_get(d->store, m->vm, &vm) == 0) {
            snprintf(m->was, sizeof(m->was), "%s", vm.state);
            store_vm_clear(&vm);
        }
        godwitd_store_unlock(d);
        gw_log("job %lld: released: starts again from the precheck", (long long)job_id(j));
        return cold_body(j, m, 0, err, errlen);
    }
    gw_log("job %lld: %s migration of %s resumes in phase %s", (long long)job_id(j), m->mode, m->vm,
           cold_phases[from]);
    if (from < 3 || (from == 3 && m->send.dst_job <= 0)) {
        /* before the transfer: put the VM back as it was */
        if (m->send.dst_job > 0)
            cold_abort_dst(j, m, "interrupted: godwitd restarted on the source");
        cold_restore(j, m);
        return gw_fail(err, errlen, -ECANCELED,
                       "interrupted: godwitd restarted before the transfer; the VM is back as it "
                       "was");
    }
    /* the files' high marks are lost: resent counts what the destination
     * already had from here on */
    return cold_body(j, m, from, err, errlen); /* m is the job's now */
}

static const struct job_kind cold_kind = {
    .kind = "cold",
    .direction = "out",
    .run = cold_run,
    .cancel = cold_cancel,
    .resume = cold_resume,
    .control = cold_control,
    .holdable = true,
};

static const struct job_kind suspended_kind = {
    .kind = "suspended",
    .direction = "out",
    .run = cold_run,
    .cancel = cold_cancel,
    .resume = cold_resume,
    .control = cold_control,
    .holdable = true,
};

void migrate_cold_register(struct godwitd *d)
{
    jobs_register(d, &cold_kind);
    jobs_register(d, &suspended_kind);
}

/* ---- POST /1.0/vms/{name}/migrate, cold and suspended ---- */

void migrate_cold_post(struct api_request *req, struct api_reply *rep, const char *mode)
{
    struct godwitd *d = req->ctx;
    const json_t *b = req->body;
    const char *name = api_param(req, "name");
    const char *peer = json_string_value(json_object_get(b, "peer"));
    const char *confirm = json_string_value(json_object_get(b, "confirm"));
    json_int_t st = json_integer_value(json_object_get(b, "shutdown_timeout"));
    json_int_t win = json_integer_value(json_object_get(b, "confirm_window"));
    json_int_t bw = json_integer_value(json_object_get(b, "bandwidth"));
    bool suspend = json_is_true(json_object_get(b, "suspend"));
    struct store_vm vm;
    struct cold_src *m;
    char err[512], who[STORE_WHO_MAX], state[STORE_WORD_MAX] = "";
    int64_t id;
    int ret;

    if (confirm && strcmp(confirm, "auto") && strcmp(confirm, "manual"))
        return api_reply_error(rep, 400, "confirm: auto or manual");
    json_int_t gu = json_integer_value(json_object_get(b, "give_up_after"));
    if (json_object_get(b, "give_up_after") && (gu < 1 || gu > 7 * 86400))
        return api_reply_error(rep, 400, "give_up_after: 1-604800 s");
    if (st < 0 || st > 3600 || win < 0 || win > 30 * 86400 || bw < 0 || bw > 1000000)
        return api_reply_error(rep, 400,
                               "shutdown_timeout: 0-3600 s; confirm_window: 0-2592000 s; "
                               "bandwidth: 0-1000000 Mbit/s");
    if (!strcmp(mode, "cold") && (suspend || json_is_true(json_object_get(b, "resume"))))
        return api_reply_error(rep, 400, "suspend and resume belong to a suspended migration");
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, &vm);
    if (ret == 0) {
        snprintf(state, sizeof(state), "%s", vm.state);
        store_vm_clear(&vm);
    }
    godwitd_store_unlock(d);
    if (ret < 0)
        return api_reply_error(rep, 404, "no VM named '%s' on host %s", name, d->name);
    if (!strcmp(mode, "suspended") && !suspend && strcmp(state, "suspended"))
        return api_reply_error(rep, 409,
                               "VM %s is %s: a suspended migration needs it suspended (or "
                               "--suspend to suspend it first)",
                               name, state);
    if (!strcmp(mode, "suspended") && suspend && strcmp(state, "running"))
        return api_reply_error(rep, 409, "VM %s is %s: --suspend needs it running", name, state);
    if (!strcmp(mode, "cold") && strcmp(state, "running") && strcmp(state, "stopped") &&
        strcmp(state, "defined") && strcmp(state, "crashed"))
        return api_reply_error(
            rep, 409, "VM %s is %s: a cold migration needs it running or stopped", name, state);
    m = cold_new();
    if (!m)
        return api_reply_error(rep, 500, "out of memory");
    snprintf(m->vm, sizeof(m->vm), "%s", name);
    snprintf(m->peer, sizeof(m->peer), "%s", peer);
    json_t *opts =
        json_pack("{s:s,s:I,s:b,s:b,s:s,s:I,s:I,s:b,s:b}", "mode", mode, "shutdown_timeout", st,
                  "force", json_is_true(json_object_get(b, "force")), "no_start",
                  json_is_true(json_object_get(b, "no_start")), "confirm",
                  confirm ? confirm : "auto", "confirm_window", win, "bandwidth", bw, "suspend",
                  suspend, "resume", json_is_true(json_object_get(b, "resume")));
    if (json_object_get(b, "give_up_after"))
        json_object_set(opts, "give_up_after", json_object_get(b, "give_up_after"));
    if (json_object_get(b, "window"))
        json_object_set(opts, "window", json_object_get(b, "window"));
    if (json_object_get(b, "after_vm"))
        json_object_set(opts, "after_vm", json_object_get(b, "after_vm"));
    cold_options(m, opts);
    snprintf(m->was, sizeof(m->was), "%s", state);
    jobs_who(req, who, sizeof(who));
    struct job_hold_spec holds[2];
    size_t nholds = migrate_start_holds(d, req, holds);
    ret = jobs_start_held(d, !strcmp(mode, "cold") ? &cold_kind : &suspended_kind, name, peer, who,
                          opts, "precheck", m, cold_free, holds, nholds, &id, err, sizeof(err));
    json_decref((json_t *)holds[0].lift);
    json_decref((json_t *)holds[1].lift);
    json_decref(opts);
    if (ret < 0) {
        cold_free(m);
        return api_reply_error(rep, ret == -EEXIST ? 409 : 500, "%s", err);
    }
    api_reply_json(rep, 202, json_pack("{s:I}", "job", (json_int_t)id));
}
