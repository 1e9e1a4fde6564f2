/*
 * Live migration between hosts, the source's side (migrate.h for the
 * phases; migrate_in.c is the destination's).
 *
 *   POST /1.0/vms/{name}/migrate  {peer, mode: "live", downtime_limit, bandwidth}
 *        → 202 {job}: the job runs in its own thread.
 *
 * The data plane is godwit-vm's own: the source VM was started with a
 * client tls-creds-psk object whose key file exists only while a job runs;
 * the destination gets the same fresh key over the peers' mutual-TLS API.
 * godwitd only steers over QMP and reads query-migrate for the figures, so
 * a migration outlives a daemon that dies meanwhile: the restarted daemon
 * resumes the job's bookkeeping (migrate_resume).
 *
 * Ownership: until the destination says its VM runs, this host owns the
 * VM.  After query-migrate says completed (COMMIT was sent) the source
 * stays stopped and the job asks the destination until it answers: running
 * → this host ends its process and forgets the VM; anything else → the job
 * fails saying the VM is stopped here and what the destination reported.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "godwitd/jobs.h"
#include "godwitd/migrate.h"
#include "godwitd/migrate_cold.h"
#include "godwitd/peers.h"
#include "godwitd/vms.h"
#include "qmp/qmp_client.h"
#include "state/state_format.h"

#define SRC_QMP_MS       5000
#define SRC_RESOLVE_S    2 /* between questions to an unreachable destination */
#define SRC_CONFIRM_MS   30000
#define SRC_WATCH_POLLS  (1000 / MIGRATE_POLL_MS) /* ask the destination every second */
#define SRC_WATCH_MS     3000                     /* ... waiting this long for its answer */
#define SRC_WATCH_MISSES 2                        /* ... and cancel after this many without one */

struct mig_src {
    char vm[STORE_NAME_MAX];
    char peer[STORE_NAME_MAX];
    int64_t downtime_ms;    /* 0: godwit-vm's default */
    int64_t bandwidth_mbps; /* 0: unlimited */
    int64_t dst_job;        /* the destination's job id, once it has one */
    _Atomic bool cancel;
};

/* ---- shared helpers (migrate.h) ---- */

int migrate_tls_object(const struct godwitd *d, const char *vm, bool server, char *out, size_t len)
{
    char dir[PATH_MAX];

    if (godwitd_vm_dir(d, vm, dir, sizeof(dir)) < 0)
        return -ENAMETOOLONG;
    if (snprintf(out, len, "tls-creds-psk,id=%s,endpoint=%s,dir=%s/%s",
                 server ? MIGRATE_TLS_IN : MIGRATE_TLS_OUT, server ? "server" : "client", dir,
                 MIGRATE_TLS_DIR) >= (int)len)
        return -ENAMETOOLONG;
    return 0;
}

json_t *migrate_compat(struct godwitd *d)
{
    char line[256] = "";
    char cmd[PATH_MAX + 32];
    struct stat st;
    bool known;
    FILE *f;

    /* the build of the godwit-vm this host runs: its --version line, asked
     * again only when the binary changed (a popen costs 25-40 ms) */
    known = stat(d->vm_binary, &st) == 0;
    pthread_mutex_lock(&d->vm_build.lock);
    if (known && d->vm_build.text[0] && d->vm_build.dev == st.st_dev &&
        d->vm_build.ino == st.st_ino && d->vm_build.size == st.st_size &&
        d->vm_build.mtime.tv_sec == st.st_mtim.tv_sec &&
        d->vm_build.mtime.tv_nsec == st.st_mtim.tv_nsec) {
        snprintf(line, sizeof(line), "%s", d->vm_build.text);
        pthread_mutex_unlock(&d->vm_build.lock);
        return json_pack("{s:i,s:s}", "format", STATE_FORMAT_VERSION, "vm-build", line);
    }
    pthread_mutex_unlock(&d->vm_build.lock);
    snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", d->vm_binary);
    if (!strchr(d->vm_binary, '\'') && (f = popen(cmd, "r"))) {
        if (!fgets(line, sizeof(line), f))
            line[0] = '\0';
        pclose(f);
    }
    line[strcspn(line, "\n")] = '\0';
    if (known && line[0]) {
        pthread_mutex_lock(&d->vm_build.lock);
        snprintf(d->vm_build.text, sizeof(d->vm_build.text), "%s", line);
        d->vm_build.dev = st.st_dev;
        d->vm_build.ino = st.st_ino;
        d->vm_build.size = st.st_size;
        d->vm_build.mtime = st.st_mtim;
        pthread_mutex_unlock(&d->vm_build.lock);
    }
    return json_pack("{s:i,s:s}", "format", STATE_FORMAT_VERSION, "vm-build",
                     line[0] ? line : "unknown");
}

int migrate_key_write(const struct godwitd *d, const char *vm, const char *hex, char *err,
                      size_t errlen)
{
    char dir[PATH_MAX], tdir[PATH_MAX + 8], path[PATH_MAX + 32], tmp[PATH_MAX + 40];
    int fd;
    ssize_t n, want;
    char line[160];

    for (const char *p = hex; *p; p++)
        if (gw_hex_digit(*p) < 0)
            return gw_fail(err, errlen, -EINVAL, "the key is not hex");
    godwitd_vm_dir(d, vm, dir, sizeof(dir));
    snprintf(tdir, sizeof(tdir), "%s/%s", dir, MIGRATE_TLS_DIR);
    if (mkdir(tdir, 0700) < 0 && errno != EEXIST)
        return gw_fail(err, errlen, -errno, "%s: %s", tdir, strerror(errno));
    snprintf(path, sizeof(path), "%s/keys.psk", tdir);
    snprintf(tmp, sizeof(tmp), "%s/.keys.psk.tmp", tdir);
    want = snprintf(line, sizeof(line), "qemu:%s\n", hex);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return gw_fail(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
    n = write(fd, line, (size_t)want);
    if (n != want || fsync(fd) < 0 || close(fd) < 0) {
        unlink(tmp);
        return gw_fail(err, errlen, -EIO, "cannot write %s", tmp);
    }
    if (rename(tmp, path) < 0) {
        unlink(tmp);
        return gw_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    }
    return 0;
}

void migrate_key_remove(const struct godwitd *d, const char *vm)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];

    if (godwitd_vm_dir(d, vm, dir, sizeof(dir)) < 0)
        return;
    snprintf(path, sizeof(path), "%s/%s/keys.psk", dir, MIGRATE_TLS_DIR);
    unlink(path);
}

int migrate_disks_shared(struct godwitd *d, const json_t *def, char *err, size_t errlen)
{
    const json_t *disks = json_object_get(def, "disks"), *disk;
    size_t i;

    json_array_foreach(disks, i, disk)
    {
        const char *file = json_string_value(json_object_get(disk, "file"));
        const char *p = json_string_value(json_object_get(disk, "path"));
        char *rp;
        bool ok = false;

        if (file || !p || p[0] != '/')
            return gw_fail(
                err, errlen, -EXDEV,
                "disk '%s' lives in the VM's folder on host %s, not on storage both "
                "hosts see: create the VM with --disk PATH inside a --shared-storage "
                "directory, or move it stopped with --cold (live storage migration comes in a "
                "later release)",
                file ? file
                : p  ? p
                     : "?",
                d->name);
        /* a path that does not exist here is not shared with this host */
        rp = realpath(p, NULL);
        for (unsigned s = 0; rp && s < d->nshared && !ok; s++) {
            size_t l = strlen(d->shared[s]);
            ok = !strncmp(rp, d->shared[s], l) && (rp[l] == '/' || !strcmp(d->shared[s], "/"));
        }
        free(rp);
        if (!ok)
            return gw_fail(
                err, errlen, -EXDEV,
                "disk '%s' is not on storage both hosts see (host %s shares %s%s): "
                "move it stopped with --cold (live storage migration comes in a later release)",
                p, d->name, d->nshared ? "" : "no directory; see --shared-storage",
                d->nshared ? d->shared[0] : "");
    }
    return 0;
}

/* ---- the source's job ---- */

static int src_qmp(struct godwitd *d, const char *vm, struct qmp_client **c, char *err,
                   size_t errlen)
{
    char path[PATH_MAX];

    if (vm_qmp_path(d, vm, path, sizeof(path)) < 0)
        return gw_fail(err, errlen, -ENAMETOOLONG, "path too long");
    return qmp_client_connect(path, SRC_QMP_MS, c, err, errlen);
}

/* Send the VM folder's boot files (every regular file but the definition,
 * logs, sockets and disks) to the destination. */
static int src_send_files(struct job *j, struct mig_src *m, const json_t *def, char *err,
                          size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    char dir[PATH_MAX], path[PATH_MAX + 300], api[1024];
    const json_t *disks = json_object_get(def, "disks");
    struct dirent *e;
    DIR *dp;
    uint8_t *buf = malloc(MIGRATE_FILE_CHUNK);
    int ret = 0;

    godwitd_vm_dir(d, m->vm, dir, sizeof(dir));
    dp = opendir(dir);
    if (!dp || !buf) {
        ret = gw_fail(err, errlen, -errno ? -errno : -ENOMEM, "%s: %s", dir, strerror(errno));
        goto out;
    }
    while (ret == 0 && (e = readdir(dp))) {
        const char *n = e->d_name;
        size_t nl = strlen(n);
        bool skip = n[0] == '.' || !strcmp(n, VM_FILE_DEF) || !strcmp(n, VM_FILE_LOG) ||
                    (nl > 5 && !strcmp(n + nl - 5, ".sock")) ||
                    (nl > 4 && !strcmp(n + nl - 4, ".log"));
        const json_t *disk;
        size_t i;
        struct stat st;
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, n);
        json_array_foreach(disks, i, disk)
        {
            const char *f = json_string_value(json_object_get(disk, "file"));
            const char *p = json_string_value(json_object_get(disk, "path"));
            if ((f && !strcmp(f, n)) || (p && !strcmp(p, path)))
                skip = true;
        }
        if (skip || lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
            ret = gw_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
            break;
        }
        off_t off = 0;
        do {
            ssize_t got = pread(fd, buf, MIGRATE_FILE_CHUNK, off);
            if (got < 0) {
                ret = gw_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
                break;
            }
            bool final = off + got >= st.st_size;
            char qname[3 * 256];
            size_t q = 0;
            /* names are plain (letters, digits, . - _ +); '+' would read as a space */
            for (const char *c = n; *c && q + 4 < sizeof(qname); c++)
                q += (size_t)snprintf(qname + q, sizeof(qname) - q, *c == '+' ? "%%2B" : "%c", *c);
            snprintf(api, sizeof(api), "/1.0/incoming/%lld/file?name=%s&offset=%lld&size=%lld%s",
                     (long long)m->dst_job, qname, (long long)off, (long long)st.st_size,
                     final ? "&final=1" : "");
            ret = peer_call_raw(d, m->peer, "POST", api, buf, (size_t)got, NULL, NULL, 0, err,
                                errlen);
            off += got;
            if (final || got == 0)
                break;
        } while (ret == 0 && !m->cancel);
        close(fd);
        if (m->cancel && ret == 0)
            ret = gw_fail(err, errlen, -ECANCELED, "cancelled");
    }
out:
    if (dp)
        closedir(dp);
    free(buf);
    return ret;
}

static void src_abort_dst(struct job *j, struct mig_src *m, const char *why)
{
    char api[96], err[256];
    json_t *body;

    if (m->dst_job <= 0)
        return;
    snprintf(api, sizeof(api), "/1.0/incoming/%lld/abort", (long long)m->dst_job);
    body = json_pack("{s:s}", "reason", why);
    if (peer_call(job_daemon(j), m->peer, "POST", api, body, NULL, NULL, 5000, err, sizeof(err)) <
        0)
        gw_log("job %lld: telling %s to give up: %s", (long long)job_id(j), m->peer, err);
    json_decref(body);
}

/* What query-migrate says, as the job's figures (plus where it goes). */
static json_t *src_figures(struct mig_src *m, json_t *qm)
{
    json_t *f = qm ? json_deep_copy(qm) : json_object();

    json_object_set_new(f, "destination-host", json_string(m->peer));
    json_object_set_new(f, "destination-job", json_integer(m->dst_job));
    return f;
}

/* Is the destination still there?  Its daemon (and through it its
 * godwit-vm) is asked every SRC_WATCH_POLLS polls during the transfer; a
 * destination that stops answering, or whose incoming VM failed, makes the
 * source cancel (the VM keeps running here).  false with why set. */
static bool src_dst_alive(struct job *j, struct mig_src *m, unsigned *misses, char *why, size_t len)
{
    char api[96], e2[256];
    json_t *r = NULL;
    int ret;

    snprintf(api, sizeof(api), "/1.0/incoming/%lld", (long long)m->dst_job);
    ret =
        peer_call(job_daemon(j), m->peer, "GET", api, NULL, &r, NULL, SRC_WATCH_MS, e2, sizeof(e2));
    if (ret == 0) {
        const char *st = json_string_value(json_object_get(r, "state"));
        const char *e = json_string_value(json_object_get(r, "error"));
        bool failed = st && !strcmp(st, "failed");
        if (failed)
            snprintf(why, len, "host %s: %s", m->peer, e && e[0] ? e : "the incoming VM failed");
        json_decref(r);
        *misses = 0;
        return !failed;
    }
    if (++*misses < SRC_WATCH_MISSES)
        return true;
    snprintf(why, len, "host %s stopped answering during the transfer (%s)", m->peer, e2);
    return false;
}

/* Follow the outgoing migration until it ends.  0: completed (COMMIT
 * sent); -errno with the reason otherwise (the VM runs here again). */
static int src_follow(struct job *j, struct mig_src *m, struct qmp_client *c, json_t **last,
                      char *err, size_t errlen)
{
    bool cancel_sent = false, switching = false;
    unsigned polls = 0, misses = 0;
    char gone[400] = "";

    for (;;) {
        json_t *qm = NULL;
        int ret = qmp_client_execute(c, "query-migrate", NULL, SRC_QMP_MS, &qm, err, errlen);
        if (ret < 0) {
            char e2[256];
            snprintf(e2, sizeof(e2), "%s", err);
            return gw_fail(err, errlen, ret,
                           "the VM's godwit-vm on host %s stopped answering during the migration "
                           "(%s)",
                           job_daemon(j)->name, e2);
        }
        const char *st = json_string_value(json_object_get(qm, "status"));
        if (!st)
            st = "";
        if (!strcmp(st, "none") || !st[0]) {
            /* no migration ever started: the daemon died before 'migrate'
             * (migrate_resume), so nothing left and the VM runs here */
            json_decref(qm);
            return gw_fail(err, errlen, -ESRCH,
                           "interrupted before the transfer started; the VM runs on host %s",
                           job_daemon(j)->name);
        }
        if (!switching && (!strcmp(st, "device") || !strcmp(st, "completed"))) {
            switching = true;
            job_phase(j, "switchover");
        }
        bool final = !strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "cancelled");
        job_figures(j, src_figures(m, qm), final);
        if (final) {
            json_decref(*last);
            *last = qm;
            if (!strcmp(st, "completed"))
                return 0;
            const char *why = json_string_value(json_object_get(qm, "error-desc"));
            if (!strcmp(st, "cancelled") && gone[0])
                return gw_fail(err, errlen, -EIO, "%s; the VM runs on host %s", gone,
                               job_daemon(j)->name);
            if (!strcmp(st, "cancelled"))
                return gw_fail(err, errlen, -ECANCELED, "cancelled; the VM runs on host %s",
                               job_daemon(j)->name);
            return gw_fail(err, errlen, -EIO, "%s; the VM runs on host %s",
                           why ? why : "the migration failed", job_daemon(j)->name);
        }
        json_decref(qm);
        /* the migration does not need this daemon: leave the job
         * unfinished, migrate_resume picks it up at the next start */
        if (job_stopping(j))
            return gw_fail(err, errlen, -ESHUTDOWN,
                           "godwitd stopped; the migration goes on without it");
        if (!switching && !cancel_sent && m->dst_job > 0 && ++polls % SRC_WATCH_POLLS == 0 &&
            !src_dst_alive(j, m, &misses, gone, sizeof(gone))) {
            gw_log("job %lld: %s: cancelling", (long long)job_id(j), gone);
            m->cancel = true;
        }
        if (m->cancel && !cancel_sent) {
            char e2[256];
            if (qmp_client_execute(c, "migrate_cancel", NULL, SRC_QMP_MS, NULL, e2, sizeof(e2)) < 0)
                gw_log("job %lld: migrate_cancel: %s", (long long)job_id(j), e2);
            cancel_sent = true;
        }
        usleep(MIGRATE_POLL_MS * 1000);
    }
}

/* After COMMIT: ask the destination until it knows whether the VM runs
 * there.  0: it does.  -EIO: it does not (the VM is stopped here). */
static int src_resolve(struct job *j, struct mig_src *m, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    char api[96], e2[256];
    int64_t t0 = store_now_ms();
    bool said = false;

    snprintf(api, sizeof(api), "/1.0/incoming/%lld", (long long)m->dst_job);
    for (;;) {
        json_t *r = NULL;
        int ret = peer_call(d, m->peer, "GET", api, NULL, &r, NULL, 5000, e2, sizeof(e2));
        if (ret == 0) {
            const char *st = json_string_value(json_object_get(r, "state"));
            const char *why = json_string_value(json_object_get(r, "error"));
            if (st && !strcmp(st, "running")) {
                json_decref(r);
                return 0;
            }
            if (st && !strcmp(st, "failed")) {
                ret = gw_fail(err, errlen, -EIO,
                              "host %s reports its copy failed after the commit (%s): the VM is "
                              "paused on host %s and runs nowhere (its process is kept, listed "
                              "running); power it off with 'godwit vm kill %s' and start it "
                              "again with 'godwit vm start %s'",
                              m->peer, why && why[0] ? why : "no reason given", d->name, m->vm,
                              m->vm);
                json_decref(r);
                return ret;
            }
            json_decref(r);
        } else if (ret == -EREMOTEIO || store_now_ms() - t0 > SRC_CONFIRM_MS) {
            if (!said) {
                job_phase(j, "resolve");
                gw_log("job %lld: VM %s is stopped here until host %s says whether it runs there: "
                       "%s",
                       (long long)job_id(j), m->vm, m->peer, e2);
                said = true;
            }
        }
        if (d->stopping)
            return gw_fail(err, errlen, -EINTR, "godwitd stopped while resolving ownership");
        if (ret == 0)
            usleep(20 * 1000); /* it answered: the VM is about to run there */
        else
            sleep(SRC_RESOLVE_S);
    }
}

/* Send this host's console log of the VM to the destination, which puts
 * it before its own (the VM's log travels with it). */
static void src_send_log(struct job *j, struct mig_src *m)
{
    struct godwitd *d = job_daemon(j);
    char dir[PATH_MAX], path[PATH_MAX + 32], api[96], err[256];
    uint8_t *buf = malloc(MIGRATE_FILE_CHUNK);
    struct stat st;
    off_t off = 0;
    int fd = -1;

    godwitd_vm_dir(d, m->vm, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, VM_FILE_LOG);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > (off_t)(1u << 20))
        off = st.st_size - (off_t)(1u << 20); /* the destination keeps 1 MiB of it */
    while (buf) {
        ssize_t got = fd >= 0 ? pread(fd, buf, MIGRATE_FILE_CHUNK, off) : 0;
        if (got < 0)
            got = 0;
        bool final = (size_t)got < MIGRATE_FILE_CHUNK;
        snprintf(api, sizeof(api), "/1.0/incoming/%lld/log%s", (long long)m->dst_job,
                 final ? "?final=1" : "");
        int ret = peer_call_raw(d, m->peer, "POST", api, buf, (size_t)got, NULL, NULL, 0, err,
                                sizeof(err));
        if (ret < 0) {
            gw_log("job %lld: the console log did not reach %s: %s", (long long)job_id(j), m->peer,
                   err);
            break;
        }
        off += got;
        if (final)
            break;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
}

/* The VM runs on the destination: end its process here and forget it. */
static void src_release(struct job *j, struct mig_src *m)
{
    struct godwitd *d = job_daemon(j);
    struct qmp_client *c = NULL;
    char err[256], subject[STORE_NAME_MAX + 8];

    /* QMP first: forgetting removes the folder with its socket */
    if (src_qmp(d, m->vm, &c, err, sizeof(err)) < 0)
        c = NULL;
    src_send_log(j, m);
    /* End the stopped process while the supervisor still watches it: it
     * then removes the VM's TAP devices, which forgetting first would
     * leave on the bridge.  QMP quit only when it is not watched. */
    if (vm_kill(d, m->vm, SRC_QMP_MS, err, sizeof(err)) < 0 && c &&
        qmp_client_execute(c, "quit", NULL, SRC_QMP_MS, NULL, err, sizeof(err)) < 0 &&
        !strstr(err, "closed"))
        gw_log("job %lld: quit: %s", (long long)job_id(j), err);
    qmp_client_free(c);
    if (vm_forget(d, m->vm, err, sizeof(err)) < 0)
        gw_log("job %lld: forgetting %s: %s", (long long)job_id(j), m->vm, err);
    snprintf(subject, sizeof(subject), "vm/%s", m->vm);
    godwitd_event(d, "vm-departed", subject, json_pack("{s:s,s:s}", "vm", m->vm, "to", m->peer));
}

/* Ends a job whose migration completed or failed: the common tail of run
 * and resume. */
static int src_finish(struct job *j, struct mig_src *m, int ret, char *err, size_t errlen)
{
    if (ret == 0) {
        ret = src_resolve(j, m, err, errlen);
        if (ret == 0) {
            src_release(j, m);
            job_phase(j, "done");
        }
        return ret;
    }
    src_abort_dst(j, m, err);
    return ret;
}

static int src_prepare(struct job *j, struct mig_src *m, json_t *def, char *key, char *host,
                       size_t hostlen, int *port, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    json_t *body, *r = NULL;
    uint8_t raw[MIGRATE_KEY_BYTES];
    char api[96];
    int ret;

    body = json_pack("{s:O,s:o,s:I}", "vm", def, "compat", migrate_compat(d), "source_job",
                     (json_int_t)job_id(j));
    ret = peer_call(d, m->peer, "POST", "/1.0/incoming", body, &r, NULL, 0, err, errlen);
    json_decref(body);
    if (ret < 0)
        return ret;
    m->dst_job = json_integer_value(json_object_get(r, "job"));
    json_decref(r);
    if (m->dst_job <= 0)
        return gw_fail(err, errlen, -EPROTO, "host %s answered without a job id", m->peer);
    job_figures(j, src_figures(m, NULL), true);
    ret = src_send_files(j, m, def, err, errlen);
    if (ret < 0)
        return ret;
    if (gnutls_rnd(GNUTLS_RND_KEY, raw, sizeof(raw)) < 0)
        return gw_fail(err, errlen, -EIO, "no random key");
    for (unsigned i = 0; i < sizeof(raw); i++)
        snprintf(key + 2 * i, 3, "%02x", raw[i]);
    memset(raw, 0, sizeof(raw));
    snprintf(api, sizeof(api), "/1.0/incoming/%lld/start", (long long)m->dst_job);
    body = json_pack("{s:s}", "key", key);
    ret = peer_call(d, m->peer, "POST", api, body, &r, NULL, 60000, err, errlen);
    json_decref(body);
    if (ret < 0)
        return ret;
    *port = (int)json_integer_value(json_object_get(r, "port"));
    json_decref(r);
    if (*port <= 0 || *port > 65535)
        return gw_fail(err, errlen, -EPROTO, "host %s answered without a port", m->peer);
    if (peer_host(d, m->peer, host, hostlen) < 0)
        return gw_fail(err, errlen, -ENOENT, "no address for peer %s", m->peer);
    return 0;
}

static int src_run(struct job *j, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    struct mig_src *m = job_arg(j);
    json_t *def = vm_definition(d, m->vm), *body, *last = NULL;
    char key[2 * MIGRATE_KEY_BYTES + 1], host[STORE_ADDR_MAX], uri[STORE_ADDR_MAX + 32];
    struct qmp_client *c = NULL;
    int port = 0, ret;

    if (!def)
        return gw_fail(err, errlen, -ENOENT, "VM %s has no definition here", m->vm);
    /* --after-vm: nothing happens before that VM runs there */
    ret = migrate_after_vm_wait(j, json_string_value(json_object_get(job_options(j), "after_vm")),
                                err, errlen);
    /* precheck: here, then there */
    if (ret == 0)
        ret = migrate_disks_shared(d, def, err, errlen);
    if (ret == 0) {
        json_t *pre = NULL;
        body = json_pack("{s:O,s:o}", "vm", def, "compat", migrate_compat(d));
        ret = migrate_precheck_call(j, m->peer, body, &pre, err, errlen);
        if (ret == 0)
            ret = migrate_policy_gate(j, def, m->peer, json_object_get(pre, "labels"),
                                      (uint64_t)json_integer_value(json_object_get(def, "memory")),
                                      err, errlen);
        json_decref(pre);
        json_decref(body);
    }
    if (ret == 0 && m->cancel)
        ret = gw_fail(err, errlen, -ECANCELED, "cancelled");
    if (ret == 0 && job_held(j)) {
        /* held before anything was created on the destination: the VM
         * runs on; the release starts again from the precheck */
        json_decref(def);
        return JOB_PARKED;
    }
    if (ret == 0) /* a live migration happens inside its window, all of it */
        ret = migrate_window_wait(j, json_string_value(json_object_get(job_options(j), "window")),
                                  err, errlen);
    if (ret == 0) {
        job_phase(j, "prepare");
        ret = src_prepare(j, m, def, key, host, sizeof(host), &port, err, errlen);
    }
    json_decref(def);
    if (ret == 0 && m->cancel)
        ret = gw_fail(err, errlen, -ECANCELED, "cancelled");
    if (ret == 0)
        ret = migrate_key_write(d, m->vm, key, err, errlen);
    memset(key, 0, sizeof(key));
    if (ret == 0)
        ret = src_qmp(d, m->vm, &c, err, errlen);
    if (ret == 0) {
        json_t *p = json_pack("{s:s}", "tls-creds", MIGRATE_TLS_OUT);
        if (m->downtime_ms > 0)
            json_object_set_new(p, "downtime-limit", json_integer(m->downtime_ms));
        json_object_set_new(
            p, "max-bandwidth",
            json_integer(m->bandwidth_mbps > 0 ? m->bandwidth_mbps * 1000000 / 8 : 0));
        ret = qmp_client_execute(c, "migrate-set-parameters", p, SRC_QMP_MS, NULL, err, errlen);
        json_decref(p);
    }
    if (ret == 0) {
        job_phase(j, "transfer");
        snprintf(uri, sizeof(uri), strchr(host, ':') ? "tcp:[%s]:%d" : "tcp:%s:%d", host, port);
        json_t *a = json_pack("{s:s}", "uri", uri);
        ret = qmp_client_execute(c, "migrate", a, SRC_QMP_MS, NULL, err, errlen);
        json_decref(a);
    }
    /* the key was read when the migration started: it goes now */
    migrate_key_remove(d, m->vm);
    if (ret == 0)
        ret = src_follow(j, m, c, &last, err, errlen);
    qmp_client_free(c);
    if (ret != -ESHUTDOWN) /* else nothing to tell the destination yet */
        ret = src_finish(j, m, ret, err, errlen);
    if (last)
        job_figures(j, src_figures(m, last), true);
    json_decref(last);
    return ret;
}

static void src_cancel(struct job *j)
{
    struct mig_src *m = job_arg(j);

    if (m)
        m->cancel = true;
}

/* A live migration can be held only before its stream starts (godwit-vm
 * cannot pause pre-copy yet): in its precheck. */
static int src_control(struct job *j, const char *verb, const json_t *body, char *err,
                       size_t errlen)
{
    char phase[STORE_WORD_MAX];

    (void)body;
    if (strcmp(verb, "hold"))
        return gw_fail(err, errlen, -EOPNOTSUPP, "a live migration has nothing to %s", verb);
    job_phase_get(j, phase, sizeof(phase));
    if (strcmp(phase, "precheck"))
        return gw_fail(err, errlen, -EINVAL,
                       "job %lld is past its precheck: a live migration cannot be held once it "
                       "prepares the destination (pausing pre-copy needs godwit-vm support that "
                       "is not built yet); cancel it instead",
                       (long long)job_id(j));
    return 0;
}

/* A source job found unfinished at start: the migration went on without
 * the daemon; find out how it ended and finish the bookkeeping. */
static int src_resume(struct job *j, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    struct store_job sj;
    struct mig_src *m;
    struct qmp_client *c = NULL;
    json_t *fig = NULL, *last = NULL;
    int ret;

    /* a job parked on a hold (before its prepare phase: nothing on the
     * destination yet) */
    if (job_cancelled(j))
        return gw_fail(err, errlen, -ECANCELED, "cancelled while held; the VM runs on host %s",
                       d->name);
    if (job_held(j))
        return JOB_PARKED;
    if (job_released(j)) {
        const json_t *o = job_options(j);
        m = calloc(1, sizeof(*m));
        if (!m)
            return gw_fail(err, errlen, -ENOMEM, "out of memory");
        godwitd_store_lock(d);
        ret = store_job_get(d->store, job_id(j), &sj);
        godwitd_store_unlock(d);
        if (ret < 0) {
            free(m);
            return gw_fail(err, errlen, ret, "job %lld vanished", (long long)job_id(j));
        }
        snprintf(m->vm, sizeof(m->vm), "%s", sj.vm);
        snprintf(m->peer, sizeof(m->peer), "%s", sj.peer);
        store_job_clear(&sj);
        m->downtime_ms = json_integer_value(json_object_get(o, "downtime_limit"));
        m->bandwidth_mbps = json_integer_value(json_object_get(o, "bandwidth"));
        job_set_arg(j, m, free);
        gw_log("job %lld: released: starts again from the precheck", (long long)job_id(j));
        job_phase(j, "precheck");
        return src_run(j, err, errlen);
    }

    godwitd_store_lock(d);
    ret = store_job_get(d->store, job_id(j), &sj);
    godwitd_store_unlock(d);
    if (ret < 0)
        return gw_fail(err, errlen, ret, "job %lld vanished", (long long)job_id(j));
    m = calloc(1, sizeof(*m));
    if (!m) {
        store_job_clear(&sj);
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    }
    snprintf(m->vm, sizeof(m->vm), "%s", sj.vm);
    snprintf(m->peer, sizeof(m->peer), "%s", sj.peer);
    fig = sj.figures ? json_loads(sj.figures, 0, NULL) : NULL;
    m->dst_job = json_integer_value(json_object_get(fig, "destination-job"));
    json_decref(fig);
    store_job_clear(&sj);
    if (src_qmp(d, m->vm, &c, err, errlen) == 0) {
        ret = src_follow(j, m, c, &last, err, errlen);
        qmp_client_free(c);
        /* a migration that never started leaves query-migrate empty: the
         * daemon died before 'migrate'; the VM runs here */
    } else if (m->dst_job > 0) {
        /* no source process: only the destination knows */
        ret = 0;
    } else {
        ret = gw_fail(err, errlen, -EIO, "interrupted by a godwitd restart before the transfer");
    }
    if (ret != -ESHUTDOWN)
        ret = src_finish(j, m, ret, err, errlen);
    if (last)
        job_figures(j, src_figures(m, last), true);
    json_decref(last);
    free(m);
    return ret;
}

static const struct job_kind src_kind = {
    .kind = "live",
    .direction = "out",
    .run = src_run,
    .cancel = src_cancel,
    .resume = src_resume,
    .control = src_control,
    .holdable = true,
};

/* ---- POST /1.0/vms/{name}/migrate ---- */

static void migrate_post(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = api_param(req, "name");
    const char *peer = json_string_value(json_object_get(req->body, "peer"));
    const char *mode = json_string_value(json_object_get(req->body, "mode"));
    json_int_t dl = json_integer_value(json_object_get(req->body, "downtime_limit"));
    json_int_t bw = json_integer_value(json_object_get(req->body, "bandwidth"));
    struct store_vm vm;
    struct store_peer p;
    struct store_job *jobs = NULL;
    size_t njobs = 0;
    struct mig_src *m;
    char err[512], who[STORE_WHO_MAX];
    int64_t id;
    int ret;

    if (!api_name_valid(name))
        return api_reply_error(rep, 400, "bad VM name");
    if (!peer || !api_name_valid(peer))
        return api_reply_error(rep, 400, "peer: a peer host's name");
    const char *window = json_string_value(json_object_get(req->body, "window"));
    if (window) {
        struct migrate_window w;
        char werr[256];
        if (migrate_window_parse(window, &w, werr, sizeof(werr)) < 0)
            return api_reply_error(rep, 400, "%s", werr);
    }
    const char *after_vm = json_string_value(json_object_get(req->body, "after_vm"));
    if (after_vm) {
        char avm[STORE_NAME_MAX], apeer[STORE_NAME_MAX], aerr[256];
        if (migrate_after_vm_parse(d, after_vm, avm, apeer, aerr, sizeof(aerr)) < 0)
            return api_reply_error(rep, 400, "%s", aerr);
        if (!strcmp(avm, name) && (!strcmp(apeer, d->name) || (peer && !strcmp(apeer, peer))))
            return api_reply_error(rep, 400,
                                   "after_vm: VM %s would wait for itself (on host %s) forever",
                                   name, apeer);
    }
    json_int_t after = json_integer_value(json_object_get(req->body, "after"));
    if (json_object_get(req->body, "after")) {
        struct store_job aj;
        godwitd_store_lock(d);
        ret = after > 0 ? store_job_get(d->store, after, &aj) : -ENOENT;
        godwitd_store_unlock(d);
        if (ret < 0)
            return api_reply_error(rep, 404, "after: no job %lld on host %s", (long long)after,
                                   d->name);
        store_job_clear(&aj);
    }
    if (mode && strcmp(mode, "live") && strcmp(mode, "cold") && strcmp(mode, "suspended") &&
        strcmp(mode, "auto"))
        return api_reply_error(rep, 400, "mode: live, cold, suspended or auto");
    if (!mode || !strcmp(mode, "auto")) {
        /* by the VM's state: running → live, suspended → suspended, else cold */
        godwitd_store_lock(d);
        ret = store_vm_get(d->store, name, &vm);
        godwitd_store_unlock(d);
        if (ret < 0)
            return api_reply_error(rep, 404, "no VM named '%s' on host %s", name, d->name);
        mode = !strcmp(vm.state, "running")     ? "live"
               : !strcmp(vm.state, "suspended") ? "suspended"
                                                : "cold";
        store_vm_clear(&vm);
    }
    if (json_is_true(json_object_get(req->body, "suspend")))
        mode = "suspended";
    if (!strcmp(mode, "live")) {
        static const char *const cold_only[] = {"shutdown_timeout", "force",  "no_start",
                                                "confirm",          "resume", "confirm_window",
                                                "give_up_after"};
        for (size_t i = 0; i < GW_ARRAY_SIZE(cold_only); i++)
            if (json_object_get(req->body, cold_only[i]))
                return api_reply_error(rep, 400,
                                       "%s is for cold and suspended migration; VM %s would "
                                       "move live",
                                       cold_only[i], name);
    }
    if (strcmp(mode, "live")) {
        if (!api_name_valid(name))
            return api_reply_error(rep, 400, "bad VM name");
        if (!peer || !api_name_valid(peer))
            return api_reply_error(rep, 400, "peer: a peer host's name");
        godwitd_store_lock(d);
        ret = store_peer_get(d->store, peer, &p);
        godwitd_store_unlock(d);
        if (ret < 0)
            return api_reply_error(rep, 404, "no peer named '%s' (see godwit peer list)", peer);
        return migrate_cold_post(req, rep, mode);
    }
    if (dl < 0 || dl > 2000000 || bw < 0 || bw > 1000000)
        return api_reply_error(rep, 400,
                               "downtime_limit: 0-2000000 ms; bandwidth: 0-1000000 Mbit/s");
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, &vm);
    if (ret == 0) {
        bool running = !strcmp(vm.state, "running");
        char state[STORE_WORD_MAX];
        snprintf(state, sizeof(state), "%s", vm.state);
        store_vm_clear(&vm);
        if (!running) {
            godwitd_store_unlock(d);
            return api_reply_error(rep, 409, "VM %s is %s: a live migration needs it running", name,
                                   state);
        }
    }
    if (ret == 0)
        ret = store_peer_get(d->store, peer, &p) == 0 ? 0 : -ESRCH;
    if (ret == 0 && store_job_list(d->store, true, &jobs, &njobs) == 0) {
        for (size_t i = 0; i < njobs; i++)
            if (!strcmp(jobs[i].vm, name))
                ret = -EBUSY, id = jobs[i].id;
        store_job_list_free(jobs, njobs);
    }
    godwitd_store_unlock(d);
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "no VM named '%s' on host %s", name, d->name);
    if (ret == -ESRCH)
        return api_reply_error(rep, 404, "no peer named '%s' (see godwit peer list)", peer);
    if (ret == -EBUSY)
        return api_reply_error(rep, 409, "VM %s already has a job running (%lld)", name,
                               (long long)id);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", store_errmsg(d->store));
    m = calloc(1, sizeof(*m));
    if (!m)
        return api_reply_error(rep, 500, "out of memory");
    snprintf(m->vm, sizeof(m->vm), "%s", name);
    snprintf(m->peer, sizeof(m->peer), "%s", peer);
    m->downtime_ms = dl;
    m->bandwidth_mbps = bw;
    jobs_who(req, who, sizeof(who));
    json_t *opts =
        json_pack("{s:s,s:I,s:I}", "mode", "live", "downtime_limit", dl, "bandwidth", bw);
    if (window)
        json_object_set_new(opts, "window", json_string(window));
    if (after_vm)
        json_object_set_new(opts, "after_vm", json_string(after_vm));
    struct job_hold_spec holds[2];
    size_t nholds = migrate_start_holds(d, req, holds);
    ret = jobs_start_held(d, &src_kind, name, peer, who, opts, "precheck", m, free, holds, nholds,
                          &id, err, sizeof(err));
    json_decref((json_t *)holds[0].lift);
    json_decref((json_t *)holds[1].lift);
    json_decref(opts);
    if (ret < 0) {
        free(m);
        return api_reply_error(rep, 500, "%s", err);
    }
    api_reply_json(rep, 202, json_pack("{s:I}", "job", (json_int_t)id));
}

static const struct api_field migrate_body[] = {
    {"peer", API_T_STRING, true},           {"mode", API_T_STRING, false},
    {"downtime_limit", API_T_INT, false},   {"bandwidth", API_T_INT, false},
    {"shutdown_timeout", API_T_INT, false}, {"force", API_T_BOOL, false},
    {"no_start", API_T_BOOL, false},        {"confirm", API_T_STRING, false},
    {"confirm_window", API_T_INT, false},   {"suspend", API_T_BOOL, false},
    {"resume", API_T_BOOL, false},          {"after", API_T_INT, false},
    {"give_up_after", API_T_INT, false},    {"window", API_T_STRING, false},
    {"after_vm", API_T_STRING, false},      {NULL, 0, false}};

const struct api_route migrate_routes[] = {
    {"POST", "/1.0/vms/{name}/migrate", migrate_post, migrate_body, 0},
};
const size_t migrate_nroutes = GW_ARRAY_SIZE(migrate_routes);

int migrate_init(struct godwitd *d, char *err, size_t errlen)
{
    jobs_register(d, &src_kind);
    migrate_cold_register(d);
    return migrate_in_init(d, err, errlen);
}

void migrate_fini(struct godwitd *d)
{
    migrate_in_fini(d);
}
