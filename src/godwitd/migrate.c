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
 * Holds (docs/holds.md): the stream is recoverable (x-godwit-precopy-recover),
 * so a hold from the prepare phase on pauses pre-copy (migrate-pause) while
 * the VM runs on here, and the release continues it (the destination's
 * POST /1.0/incoming/{id}/recover, then migrate resume:true); a lost link is
 * the same pause, on a technical hold the job keeps while it retries; a
 * --window holds the switchover (x-godwit-hold-switchover) until it opens.
 * src_steer does all of it, once a poll.
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
#include "godwitd/migrate_int.h"
#include "godwitd/peers.h"
#include "godwitd/vms.h"
#include "qmp/qmp_client.h"
#include "state/state_format.h"

#define SRC_QMP_MS       5000
#define SRC_FORWARD_MS   2000 /* wait this long for godwit-vm's frame forwarding to end */
#define SRC_RESOLVE_S    2    /* between questions to an unreachable destination */
#define SRC_CONFIRM_MS   30000
#define SRC_WATCH_POLLS  (1000 / MIGRATE_POLL_MS) /* ask the destination every second */
#define SRC_WATCH_MS     3000                     /* ... waiting this long for its answer */
#define SRC_WATCH_MISSES 2                        /* ... and cancel after this many without one */

#define SRC_ABORT_RETRY_MS 30000 /* an unreachable destination is told to give up for */
#define SRC_RETRY_MIN_MS   1000  /* a lost link: first recover attempt after */
#define SRC_RETRY_MAX_MS   8000  /* ... doubling up to */

/* Statuses of godwit-vm's outgoing migration (SPEC-precopy-hold.md). */
#define ST_PAUSED    "x-godwit-precopy-paused"
#define ST_RECOVER   "x-godwit-precopy-recover"
#define ST_CONVERGED "x-godwit-held-converged"

struct mig_src {
    char vm[STORE_NAME_MAX];
    char peer[STORE_NAME_MAX];
    int64_t downtime_ms;    /* 0: godwit-vm's default */
    int64_t bandwidth_mbps; /* 0: unlimited */
    int64_t dirty_limit;    /* --dirty-limit, MiB/s per vCPU; 0: none */
    int64_t give_up_ms;     /* a lost link: fail after this long without it */
    char window[96];        /* --window spec, "" none */
    char postcopy[8];       /* --postcopy: "on" (after the first pass), "auto", "" none */
    bool in_postcopy;       /* the job's phase is postcopy */
    int64_t dst_job;        /* the destination's job id, once it has one */
    _Atomic bool cancel;
    /* The follow loop's state, in memory only: a restarted daemon finds
     * it again from godwit-vm's status and the job's holds. */
    bool pause_sent;          /* migrate-pause went out for a hold */
    bool resume_sent;         /* migrate resume:true went out, not yet active */
    _Atomic bool recoverable; /* godwit-vm took x-godwit-precopy-recover (control reads it) */
    bool tech;                /* our technical hold is set */
    bool window_hold;         /* our window hold is set */
    int hold_switch;          /* x-godwit-hold-switchover as last set: -1 unknown */
    int64_t tech_since_ms;    /* when the link was lost */
    int64_t retry_ms;         /* next recover attempt (unix ms) */
    int64_t backoff_ms;
    int64_t pause_try_ms, switch_try_ms; /* a failed command is tried again after */
    json_t *plan;    /* migrate_live_plan's: where the disks go (NULL before the precheck) */
    json_t *net_fwd; /* the source's final x-godwit-net-forward (NULL before the end) */
};

static void src_free(void *p)
{
    struct mig_src *m = p;

    if (m) {
        json_decref(m->plan);
        json_decref(m->net_fwd);
    }
    free(m);
}

/* The job's options into m (new jobs and resumed ones alike). */
static void src_options(struct mig_src *m, const json_t *o)
{
    json_int_t gu = json_integer_value(json_object_get(o, "give_up_after"));
    const char *w = json_string_value(json_object_get(o, "window"));

    m->downtime_ms = json_integer_value(json_object_get(o, "downtime_limit"));
    m->bandwidth_mbps = json_integer_value(json_object_get(o, "bandwidth"));
    m->dirty_limit = json_integer_value(json_object_get(o, "dirty_limit"));
    m->give_up_ms = (gu > 0 ? gu : MIGRATE_GIVE_UP_S) * 1000;
    snprintf(m->window, sizeof(m->window), "%s", w ? w : "");
    snprintf(m->postcopy, sizeof(m->postcopy), "%s",
             json_string_value(json_object_get(o, "postcopy")) ?: "");
    m->hold_switch = -1;
}

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
        /* diskN.raw never: the destination made its own (empty, or a
         * shared disk's name) and the stream fills it */
        bool skip = n[0] == '.' || !strcmp(n, VM_FILE_DEF) || !strcmp(n, VM_FILE_LOG) ||
                    (nl > 5 && !strcmp(n + nl - 5, ".sock")) ||
                    (nl > 4 && !strcmp(n + nl - 4, ".log")) ||
                    (nl > 4 && !strncmp(n, "disk", 4) && !strcmp(n + nl - 4, ".raw"));
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

/* Tell the destination to give up (why).  An unreachable one is asked
 * again for SRC_ABORT_RETRY_MS: a recoverable incoming would otherwise
 * wait, paused, for its own give-up time. */
static void src_abort_dst(struct job *j, struct mig_src *m, const char *why)
{
    struct godwitd *d = job_daemon(j);
    int64_t end = store_now_ms() + SRC_ABORT_RETRY_MS;
    char api[96], err[256];
    json_t *body;
    int ret;

    if (m->dst_job <= 0)
        return;
    snprintf(api, sizeof(api), "/1.0/incoming/%lld/abort", (long long)m->dst_job);
    body = json_pack("{s:s}", "reason", why);
    while ((ret = peer_call(d, m->peer, "POST", api, body, NULL, NULL, 5000, err, sizeof(err))) <
               0 &&
           ret != -EREMOTEIO && store_now_ms() < end && !d->stopping)
        sleep(1);
    if (ret < 0)
        gw_log("job %lld: telling %s to give up: %s", (long long)job_id(j), m->peer, err);
    json_decref(body);
}

/* What query-migrate says, as the job's figures (plus where it goes). */
static json_t *src_figures(struct mig_src *m, json_t *qm)
{
    json_t *f = qm ? json_deep_copy(qm) : json_object();

    json_object_set_new(f, "destination-host", json_string(m->peer));
    json_object_set_new(f, "destination-job", json_integer(m->dst_job));
    if (m->plan)
        json_object_set(f, "plan", m->plan);
    if (m->net_fwd) /* counted to the end of forwarding, after the last poll */
        json_object_set(f, "x-godwit-net-forward", m->net_fwd);
    return f;
}

/* Is the destination still there?  Its daemon (and through it its
 * godwit-vm) is asked every SRC_WATCH_POLLS polls during the transfer: 1
 * it answers (a paused incoming is alive), 0 its incoming VM failed or is
 * gone (why set: the source cancels, the VM keeps running here), -1 it
 * stopped answering (why set: a technical hold while the job retries). */
static int src_dst_alive(struct job *j, struct mig_src *m, unsigned *misses, char *why, size_t len)
{
    char api[96], e2[256];
    json_t *r = NULL;
    long status = 0;
    int ret;

    snprintf(api, sizeof(api), "/1.0/incoming/%lld", (long long)m->dst_job);
    ret = peer_call(job_daemon(j), m->peer, "GET", api, NULL, &r, &status, SRC_WATCH_MS, e2,
                    sizeof(e2));
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
    if (ret == -EREMOTEIO && status == 404) {
        snprintf(why, len, "host %s no longer has the incoming VM (%s)", m->peer, e2);
        return 0;
    }
    if (++*misses < SRC_WATCH_MISSES)
        return 1;
    snprintf(why, len, "host %s stopped answering during the transfer (%s)", m->peer, e2);
    return -1;
}

static int src_qmp_set(struct qmp_client *c, const char *key, json_t *value, char *err,
                       size_t errlen)
{
    json_t *p = json_pack("{s:o}", key, value);
    int ret = qmp_client_execute(c, "migrate-set-parameters", p, SRC_QMP_MS, NULL, err, errlen);

    json_decref(p);
    return ret;
}

/* The link to the destination is lost (why): a technical hold while the
 * job retries (once: later calls only log). */
static void src_link_lost(struct job *j, struct mig_src *m, const char *why)
{
    char reason[STORE_TEXT_MAX];

    if (m->tech)
        return;
    snprintf(reason, sizeof(reason),
             "link to %s lost: %.300s; the VM runs on here, pre-copy paused and kept; retrying, "
             "gives up after %lld s",
             m->peer, why, (long long)(m->give_up_ms / 1000));
    gw_log("job %lld: %s", (long long)job_id(j), reason);
    if (job_hold_own(j, "technical", reason, NULL) < 0)
        gw_log("job %lld: cannot record the technical hold", (long long)job_id(j));
    m->tech = true;
    m->tech_since_ms = store_now_ms();
    m->backoff_ms = SRC_RETRY_MIN_MS;
    m->retry_ms = m->tech_since_ms + m->backoff_ms;
}

/* Continue a paused pre-copy: the destination's godwitd listens again
 * (POST /1.0/incoming/{id}/recover → its godwit-vm's migrate-recover), then
 * migrate resume:true here.  0; -ENOENT the destination's incoming is
 * over (give up); another -errno: try again later. */
static int src_recover(struct job *j, struct mig_src *m, struct qmp_client *c, char *err,
                       size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    char api[96], host[STORE_ADDR_MAX], uri[STORE_ADDR_MAX + 32];
    json_t *r = NULL, *a;
    long status = 0;
    int port, ret;

    snprintf(api, sizeof(api), "/1.0/incoming/%lld/recover", (long long)m->dst_job);
    ret = peer_call(d, m->peer, "POST", api, NULL, &r, &status, 10000, err, errlen);
    /* 410: over there; 404 may be a destination daemon that restarted
     * and has not looked at its incoming VM yet (the watchdog's GET tells
     * a finished one) */
    if (ret == -EREMOTEIO && status == 410)
        return -ENOENT;
    if (ret < 0)
        return ret;
    port = (int)json_integer_value(json_object_get(r, "port"));
    json_decref(r);
    if (port <= 0 || port > 65535)
        return gw_fail(err, errlen, -EPROTO, "host %s answered without a port", m->peer);
    if (peer_host(d, m->peer, host, sizeof(host)) < 0)
        return gw_fail(err, errlen, -ENOENT, "no address for peer %s", m->peer);
    snprintf(uri, sizeof(uri), strchr(host, ':') ? "tcp:[%s]:%d" : "tcp:%s:%d", host, port);
    a = json_pack("{s:s,s:b}", "uri", uri, "resume", 1);
    ret = qmp_client_execute(c, "migrate", a, SRC_QMP_MS, NULL, err, errlen);
    json_decref(a);
    if (ret == 0)
        gw_log("job %lld: resuming pre-copy to %s (%s)", (long long)job_id(j), m->peer, uri);
    return ret;
}

/* Holds and the window during pre-copy, once a poll (st: godwit-vm's
 * status, qm its query-migrate): a hold pauses the stream (the VM runs on
 * here, nothing sent is lost); the last hold lifting, or a lost link
 * coming back, resumes it; a lost link past give_up_ms, or a destination
 * that lost its incoming VM, cancels (gone says why); outside the window
 * godwit-vm holds the switchover and keeps the destination in sync. */
static void src_steer(struct job *j, struct mig_src *m, struct qmp_client *c, const char *st,
                      const json_t *qm, char *gone, size_t gonelen)
{
    bool paused = !strcmp(st, ST_PAUSED);
    bool moving = !strcmp(st, "active") || !strcmp(st, ST_CONVERGED);
    int64_t now = store_now_ms();
    char e2[300];

    if (moving && job_held(j) && !m->pause_sent && m->recoverable && now >= m->pause_try_ms) {
        if (qmp_client_execute(c, "migrate-pause", NULL, SRC_QMP_MS, NULL, e2, sizeof(e2)) < 0) {
            gw_log("job %lld: migrate-pause: %s", (long long)job_id(j), e2);
            m->pause_try_ms = now + 1000; /* a second later */
        } else {
            gw_log("job %lld: held: pre-copy pauses, the VM runs on", (long long)job_id(j));
            m->pause_sent = true;
        }
    }
    if (moving && m->resume_sent) { /* a resume got through */
        m->resume_sent = false;
        m->pause_sent = false;
        if (m->tech) {
            char by[96];
            snprintf(by, sizeof(by), "link to %s back: pre-copy resumed", m->peer);
            job_lift_own(j, "technical", by);
            m->tech = false;
        }
    }
    if (paused && !job_held(j)) {
        const char *why = json_string_value(json_object_get(qm, "error-desc"));
        if (m->resume_sent || (!m->pause_sent && !m->tech)) {
            /* the link broke, or a resume did not get through */
            m->resume_sent = false;
            if (!m->tech)
                src_link_lost(j, m, why && why[0] ? why : "connection lost");
        } else if (!m->tech) {
            m->retry_ms = now; /* released: continue at once */
        }
        if (now >= m->retry_ms && (!m->tech || now - m->tech_since_ms <= m->give_up_ms)) {
            int ret = src_recover(j, m, c, e2, sizeof(e2));
            if (ret == 0) {
                m->resume_sent = true;
            } else if (ret == -ENOENT) {
                snprintf(gone, gonelen, "host %s cannot continue the paused transfer (%.200s)",
                         m->peer, e2);
                m->cancel = true;
                return;
            } else {
                src_link_lost(j, m, e2);
                gw_log("job %lld: recover: %s", (long long)job_id(j), e2);
            }
            m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : SRC_RETRY_MIN_MS;
            if (m->backoff_ms > SRC_RETRY_MAX_MS)
                m->backoff_ms = SRC_RETRY_MAX_MS;
            m->retry_ms = now + m->backoff_ms;
        }
    }
    if (moving && !m->resume_sent && !m->tech)
        m->backoff_ms = 0;
    if (m->tech && !job_held(j) && now - m->tech_since_ms > m->give_up_ms) {
        const char *why = json_string_value(json_object_get(qm, "error-desc"));
        snprintf(gone, gonelen, "gave up after %lld s without the link to %s (%.200s)",
                 (long long)(m->give_up_ms / 1000), m->peer,
                 why && why[0] ? why : "it did not come back");
        m->cancel = true;
        return;
    }
    if (m->window[0]) {
        struct migrate_window w;
        int64_t open = migrate_window_parse(m->window, &w, e2, sizeof(e2)) < 0
                           ? -1
                           : migrate_window_opens(&w, now);
        int want = open != 0;
        if (open < 0) {
            snprintf(gone, gonelen, "the window %s closed before the switchover", m->window);
            m->cancel = true;
            return;
        }
        if (want != m->hold_switch && now >= m->switch_try_ms) {
            if (src_qmp_set(c, "x-godwit-hold-switchover", json_boolean(want), e2, sizeof(e2)) <
                0) {
                gw_log("job %lld: x-godwit-hold-switchover: %s", (long long)job_id(j), e2);
                m->switch_try_ms = now + 1000;
            } else {
                m->hold_switch = want;
            }
        }
        if (!want && m->window_hold) {
            job_lift_own(j, "window", "the window opened: switching over");
            m->window_hold = false;
        }
        if (want && !strcmp(st, ST_CONVERGED) && !m->window_hold) {
            char reason[STORE_TEXT_MAX], rest[STORE_TEXT_MAX - 64];
            migrate_window_reason(m->window, open, now, rest, sizeof(rest));
            snprintf(reason, sizeof(reason), "held-converged: destination kept in sync; %s", rest);
            (void)job_hold_own(j, "window", reason, NULL);
            m->window_hold = true;
        }
    }
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
        if (!switching &&
            (!strcmp(st, "device") || !strcmp(st, "completed") || !strcmp(st, "postcopy-active"))) {
            switching = true;
            job_phase(j, "switchover");
        }
        if (!strcmp(st, "postcopy-active") && !m->in_postcopy) {
            /* the VM runs there now; the pages it lacks still come */
            m->in_postcopy = true;
            job_phase(j, "postcopy");
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
            if (m->in_postcopy) /* no way back: the VM ran there */
                return gw_fail(err, errlen, -EIO,
                               "%s; the VM ran on host %s and cannot go on there or here "
                               "(post-copy cannot roll back)",
                               why ? why : "post-copy broke off", m->peer);
            return gw_fail(err, errlen, -EIO, "%s; the VM runs on host %s",
                           why ? why : "the migration failed", job_daemon(j)->name);
        }
        /* the migration does not need this daemon: leave the job
         * unfinished, migrate_resume picks it up at the next start */
        if (job_stopping(j)) {
            json_decref(qm);
            return gw_fail(err, errlen, -ESHUTDOWN,
                           "godwitd stopped; the migration goes on without it");
        }
        if (!switching && !cancel_sent)
            src_steer(j, m, c, st, qm, gone, sizeof(gone));
        bool moving = !strcmp(st, "active") || !strcmp(st, ST_CONVERGED);
        json_decref(qm); /* st goes with it */
        if (!switching && !cancel_sent && !m->cancel && m->dst_job > 0 &&
            ++polls % SRC_WATCH_POLLS == 0) {
            char why[400];
            int alive = src_dst_alive(j, m, &misses, why, sizeof(why));
            if (alive > 0 && m->tech && !m->resume_sent && moving) {
                /* the stream never stopped (the pause did not land) */
                char by[96];
                snprintf(by, sizeof(by), "host %s answers again", m->peer);
                job_lift_own(j, "technical", by);
                m->tech = false;
            }
            if (alive == 0) {
                snprintf(gone, sizeof(gone), "%s", why);
                gw_log("job %lld: %s: cancelling", (long long)job_id(j), gone);
                m->cancel = true;
            } else if (alive < 0 && !m->tech) {
                /* pause the stream (if it still moves): it continues once
                 * the destination answers again */
                char e2[256];
                src_link_lost(j, m, why);
                if (moving && m->recoverable &&
                    qmp_client_execute(c, "migrate-pause", NULL, SRC_QMP_MS, NULL, e2, sizeof(e2)) <
                        0)
                    gw_log("job %lld: migrate-pause: %s", (long long)job_id(j), e2);
            }
        }
        if ((m->cancel || job_cancelled(j)) && !cancel_sent) {
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

/* godwit-vm forwards the frames that still reach this host to the
 * destination for a moment after the switchover (x-godwit-net-forward,
 * docs/net.md): its process ends once that is over (at most
 * SRC_FORWARD_MS), or the last frames for the VM would be lost here. */
static json_t *src_wait_forward(struct qmp_client *c)
{
    uint64_t deadline = gw_now_ns() + SRC_FORWARD_MS * 1000000ull;
    char err[256];

    for (;;) {
        json_t *qm = NULL;

        if (qmp_client_execute(c, "query-migrate", NULL, SRC_QMP_MS, &qm, err, sizeof(err)) < 0)
            return NULL;
        if (!json_is_true(json_object_get(json_object_get(qm, "x-godwit-net-forward"), "active")) ||
            gw_now_ns() >= deadline)
            return qm; /* the figures with the forwarding's final counts */
        json_decref(qm);
        usleep(20000);
    }
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
    if (c) {
        json_t *qm = src_wait_forward(c);

        json_t *fwd = json_object_get(qm, "x-godwit-net-forward");

        if (fwd) {
            json_decref(m->net_fwd);
            m->net_fwd = json_incref(fwd);
            job_figures(j, src_figures(m, qm), true);
        }
        json_decref(qm);
    }
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

/* The destination defines the VM (dst_def: the plan's, moving disks as
 * empty sparse files of its folder), receives the boot files (def: this
 * host's) and starts its godwit-vm. */
static int src_prepare(struct job *j, struct mig_src *m, json_t *def, json_t *dst_def, char *key,
                       char *host, size_t hostlen, int *port, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    json_t *body, *r = NULL;
    uint8_t raw[MIGRATE_KEY_BYTES];
    char api[96];
    int ret;

    body = json_pack("{s:O,s:o,s:I,s:o}", "vm", dst_def, "compat", migrate_compat(d), "source_job",
                     (json_int_t)job_id(j), "files", migrate_live_plan_files(m->plan));
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
    body = json_pack("{s:s,s:I,s:b}", "key", key, "give_up_after",
                     (json_int_t)(m->give_up_ms / 1000), "postcopy", m->postcopy[0] != 0);
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
    json_t *def = vm_definition(d, m->vm), *dst_def = NULL, *body, *last = NULL;
    char key[2 * MIGRATE_KEY_BYTES + 1], host[STORE_ADDR_MAX], uri[STORE_ADDR_MAX + 32];
    struct qmp_client *c = NULL;
    int port = 0, ret;

    if (!def)
        return gw_fail(err, errlen, -ENOENT, "VM %s has no definition here", m->vm);
    /* --after-vm: nothing happens before that VM runs there */
    ret = migrate_after_vm_wait(j, json_string_value(json_object_get(job_options(j), "after_vm")),
                                err, errlen);
    /* precheck: here, then there */
    if (ret == 0) {
        /* the disks: on shared storage they stay, else they move in the stream */
        json_decref(m->plan);
        m->plan = NULL;
        ret = migrate_live_plan(d, m->vm, def, &m->plan, &dst_def, err, errlen);
        if (ret == 0)
            job_figures(j, src_figures(m, NULL), true);
    }
    if (ret == 0) {
        json_t *pre = NULL;
        uint64_t need = (uint64_t)json_integer_value(json_object_get(def, "memory")) +
                        (uint64_t)json_integer_value(json_object_get(m->plan, "disk_bytes"));
        body = json_pack("{s:O,s:o,s:o}", "vm", dst_def, "compat", migrate_compat(d), "files",
                         migrate_live_plan_files(m->plan));
        ret = migrate_precheck_call(j, m->peer, body, &pre, err, errlen);
        if (ret == 0)
            ret = migrate_policy_gate(j, def, m->peer, json_object_get(pre, "labels"), need, err,
                                      errlen);
        json_decref(pre);
        json_decref(body);
    }
    if (ret == 0 && m->cancel)
        ret = gw_fail(err, errlen, -ECANCELED, "cancelled");
    if (ret == 0 && job_held(j)) {
        /* held before anything was created on the destination: the VM
         * runs on; the release starts again from the precheck */
        json_decref(def);
        json_decref(dst_def);
        return JOB_PARKED;
    }
    if (ret == 0 && m->window[0]) { /* it transfers before its window, switches over inside */
        struct migrate_window w;
        ret = migrate_window_parse(m->window, &w, err, errlen);
        if (ret < 0)
            ret = gw_fail(err, errlen, -ETIME, "the window %s closed before the switchover",
                          m->window);
    }
    if (ret == 0) {
        job_phase(j, "prepare");
        ret = src_prepare(j, m, def, dst_def, key, host, sizeof(host), &port, err, errlen);
    }
    json_decref(def);
    json_decref(dst_def);
    if (ret == 0 && m->cancel)
        ret = gw_fail(err, errlen, -ECANCELED, "cancelled");
    if (ret == 0)
        ret = migrate_key_write(d, m->vm, key, err, errlen);
    memset(key, 0, sizeof(key));
    if (ret == 0)
        ret = src_qmp(d, m->vm, &c, err, errlen);
    if (ret == 0) {
        /* a lost link or a hold pauses pre-copy instead of failing it (a
         * VM started by an older godwit-vm cannot: it migrates as before) */
        json_t *a = json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability",
                              "x-godwit-precopy-recover", "state", 1);
        char e2[256];
        m->recoverable = qmp_client_execute(c, "migrate-set-capabilities", a, SRC_QMP_MS, NULL, e2,
                                            sizeof(e2)) == 0;
        json_decref(a);
        if (!m->recoverable)
            gw_log("job %lld: VM %s cannot pause pre-copy (%s): no holds once it transfers",
                   (long long)job_id(j), m->vm, e2);
    }
    if (ret == 0) {
        /* the disks in the stream, or not (the capability stays from an
         * earlier attempt: say it either way) */
        bool blk = !strcmp(json_string_value(json_object_get(m->plan, "storage")) ?: "", "stream");
        json_t *a =
            json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "block", "state", blk);
        char e2[256];
        if (qmp_client_execute(c, "migrate-set-capabilities", a, SRC_QMP_MS, NULL, e2, sizeof(e2)) <
                0 &&
            blk)
            ret = gw_fail(err, errlen, -EOPNOTSUPP,
                          "VM %s's godwit-vm cannot move its disks in the stream (%s): restart "
                          "the VM with this host's build, or move it stopped with --cold",
                          m->vm, e2);
        json_decref(a);
        if (ret == 0 && blk)
            gw_log("job %lld: %s: %s", (long long)job_id(j), m->vm,
                   json_string_value(json_object_get(m->plan, "text")));
    }
    if (ret == 0 && m->postcopy[0]) {
        /* post-copy (docs/state.md): the capability on both sides (the
         * destination set it when it started listening); "auto" switches
         * only when pre-copy cannot converge, "on" after the first pass */
        bool blk = !strcmp(json_string_value(json_object_get(m->plan, "storage")) ?: "", "stream");
        json_t *a =
            json_pack("{s:[{s:s,s:b}]}", "capabilities", "capability", "postcopy-ram", "state", 1);
        char e2[256];

        if (blk)
            ret = gw_fail(err, errlen, -EINVAL,
                          "post-copy cannot move VM %s's disks in the stream: migrate without "
                          "--postcopy",
                          m->vm);
        else if (qmp_client_execute(c, "migrate-set-capabilities", a, SRC_QMP_MS, NULL, e2,
                                    sizeof(e2)) < 0 ||
                 src_qmp_set(c, "x-godwit-postcopy-auto",
                             json_boolean(!strcmp(m->postcopy, "auto")), e2, sizeof(e2)) < 0)
            ret = gw_fail(err, errlen, -EOPNOTSUPP,
                          "VM %s's godwit-vm cannot do post-copy (%s): restart the VM with this "
                          "host's build, or migrate without --postcopy",
                          m->vm, e2);
        json_decref(a);
    }
    if (ret == 0 && m->window[0]) {
        /* outside its window it converges and waits, keeping the
         * destination in sync (src_steer lets it go inside) */
        struct migrate_window w;
        bool open = migrate_window_parse(m->window, &w, NULL, 0) == 0 &&
                    migrate_window_opens(&w, store_now_ms()) == 0;
        char e2[256];
        if (src_qmp_set(c, "x-godwit-hold-switchover", json_boolean(!open), e2, sizeof(e2)) < 0)
            ret = gw_fail(err, errlen, -EOPNOTSUPP,
                          "VM %s's godwit-vm cannot hold its switchover for a window (%s): "
                          "restart the VM with this host's build, or migrate without --window",
                          m->vm, e2);
        m->hold_switch = !open;
    }
    if (ret == 0) {
        /* --dirty-limit: QEMU 8.1's dirty-limit, which excludes
         * auto-converge (said off in the same call); without it the
         * capability is said off, as an earlier attempt may have left it */
        json_t *a =
            json_pack("{s:[{s:s,s:b},{s:s,s:b}]}", "capabilities", "capability", "auto-converge",
                      "state", 0, "capability", "dirty-limit", "state", m->dirty_limit > 0);
        char e2[256];
        if (qmp_client_execute(c, "migrate-set-capabilities", a, SRC_QMP_MS, NULL, e2, sizeof(e2)) <
                0 &&
            m->dirty_limit > 0)
            ret = gw_fail(err, errlen, -EOPNOTSUPP,
                          "VM %s's godwit-vm cannot limit its dirty rate (%s): restart the VM "
                          "with this host's build, or migrate without --dirty-limit",
                          m->vm, e2);
        json_decref(a);
    }
    if (ret == 0) {
        json_t *p = json_pack("{s:s}", "tls-creds", MIGRATE_TLS_OUT);
        if (m->dirty_limit > 0)
            json_object_set_new(p, "vcpu-dirty-limit", json_integer(m->dirty_limit));
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
        /* --postcopy: switch at the end of the first pass */
        if (ret == 0 && !strcmp(m->postcopy, "on") &&
            qmp_client_execute(c, "migrate-start-postcopy", NULL, SRC_QMP_MS, NULL, err, errlen) <
                0)
            gw_log("job %lld: migrate-start-postcopy: %s (pre-copy goes on)", (long long)job_id(j),
                   err);
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

/* A live migration can be held until its switchover: in its precheck it
 * parks, from its prepare phase on its pre-copy pauses (src_steer) while
 * the VM runs on here.  The switchover itself cannot wait. */
static int src_control(struct job *j, const char *verb, const json_t *body, char *err,
                       size_t errlen)
{
    char phase[STORE_WORD_MAX];

    (void)body;
    if (strcmp(verb, "hold"))
        return gw_fail(err, errlen, -EOPNOTSUPP, "a live migration has nothing to %s", verb);
    job_phase_get(j, phase, sizeof(phase));
    struct mig_src *m = job_arg(j);
    if (m && !strcmp(phase, "transfer") && !m->recoverable)
        return gw_fail(err, errlen, -EINVAL,
                       "job %lld transfers from a godwit-vm that cannot pause pre-copy (VM %s "
                       "was started by an older build); cancel it instead",
                       (long long)job_id(j), m->vm);
    if (strcmp(phase, "precheck") && strcmp(phase, "prepare") && strcmp(phase, "transfer"))
        return gw_fail(err, errlen, -EINVAL,
                       "job %lld is in its %s phase: too late to hold a live migration (it ends "
                       "in moments)",
                       (long long)job_id(j), phase);
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

    char phase[STORE_WORD_MAX];

    /* a job parked on a hold in its precheck (nothing on the destination
     * yet); from its prepare phase on a held job follows its migration */
    job_phase_get(j, phase, sizeof(phase));
    bool parked = !strcmp(phase, "precheck");
    if (parked && job_cancelled(j))
        return gw_fail(err, errlen, -ECANCELED, "cancelled while held; the VM runs on host %s",
                       d->name);
    if (parked && job_held(j))
        return JOB_PARKED;
    if (parked && job_released(j)) {
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
        src_options(m, o);
        job_set_arg(j, m, src_free);
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
    m->plan = json_incref(json_object_get(fig, "plan"));
    json_decref(fig);
    store_job_clear(&sj);
    src_options(m, job_options(j));
    /* what the follow loop kept before the restart: a held job's stream
     * was paused for its hold; its own holds are still set */
    m->pause_sent = job_held(j);
    m->tech = job_has_own(j, "technical");
    m->window_hold = job_has_own(j, "window");
    if (m->tech) {
        m->tech_since_ms = store_now_ms(); /* the give-up time counts again */
        m->backoff_ms = SRC_RETRY_MIN_MS;
    }
    /* cancel and control see it (a cancel while held ends the stream) */
    job_set_arg(j, m, NULL);
    if (src_qmp(d, m->vm, &c, err, errlen) == 0) {
        json_t *caps = NULL, *cap;
        size_t i;
        if (qmp_client_execute(c, "query-migrate-capabilities", NULL, SRC_QMP_MS, &caps, err,
                               errlen) == 0)
            json_array_foreach(caps, i, cap)
            {
                const char *n = json_string_value(json_object_get(cap, "capability"));
                if (n && !strcmp(n, "x-godwit-precopy-recover"))
                    m->recoverable = json_is_true(json_object_get(cap, "state"));
            }
        json_decref(caps);
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
    job_set_arg(j, NULL, NULL);
    src_free(m);
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

/* A new live job for VM name to peer (migrate_post.c): its state,
 * options and initial holds.  0 with *id, or -errno with a reason. */
int migrate_live_start(struct godwitd *d, const char *name, const char *peer, const char *who,
                       const json_t *opts, const struct job_hold_spec *holds, size_t nholds,
                       int64_t *id, char *err, size_t errlen)
{
    struct mig_src *m = calloc(1, sizeof(*m));
    int ret;

    if (!m)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    snprintf(m->vm, sizeof(m->vm), "%s", name);
    snprintf(m->peer, sizeof(m->peer), "%s", peer);
    src_options(m, opts);
    ret = jobs_start_held(d, &src_kind, name, peer, who, opts, "precheck", m, src_free, holds,
                          nholds, id, err, errlen);
    if (ret < 0)
        free(m);
    return ret;
}

void migrate_live_register(struct godwitd *d)
{
    jobs_register(d, &src_kind);
}
