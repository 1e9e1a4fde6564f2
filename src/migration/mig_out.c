/*
 * An outgoing migration job (migration.h): its thread, its status and the
 * run loop's side of it.
 *
 * The job asks, the loop acts: to park the machine or collect the dirty
 * bitmap the job sets a flag under j->lock, kicks the loop and waits on
 * j->cond; the loop, in mig_out_poll(), does it and signals.  A cancel
 * wakes every wait.  Status changes queue up under j->lock and the loop
 * reports them (ops->status), so events leave from the loop thread only.
 * A final status is set together with "done" under the same lock: the loop
 * then joins the thread and gives the machine back (ops->unpark) before a
 * client can hear "completed".
 *
 * Files are written atomically: a temporary file beside the target,
 * fsync, rename over the target, fsync of the directory.  Any failure
 * removes the temporary file and leaves an earlier state file as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migration/mig_int.h"

#define MIG_OUT_CONNECT_MS 10000

static const char *const mig_status_names[MIG_ST_COUNT] = {
    [MIG_ST_NONE] = "none",
    [MIG_ST_SETUP] = "setup",
    [MIG_ST_ACTIVE] = "active",
    [MIG_ST_DEVICE] = "device",
    [MIG_ST_COMPLETED] = "completed",
    [MIG_ST_FAILED] = "failed",
    [MIG_ST_CANCELLING] = "cancelling",
    [MIG_ST_CANCELLED] = "cancelled",
    [MIG_ST_PRECOPY_PAUSED] = "x-godwit-precopy-paused",
    [MIG_ST_PRECOPY_RECOVER] = "x-godwit-precopy-recover",
    [MIG_ST_HELD_CONVERGED] = "x-godwit-held-converged",
    [MIG_ST_POSTCOPY_ACTIVE] = "postcopy-active",
};

const char *mig_status_name(enum mig_status st)
{
    return (unsigned)st < MIG_ST_COUNT ? mig_status_names[st] : "unknown";
}

void mig_params_default(struct mig_params *p)
{
    *p = (struct mig_params){
        .downtime_limit_ms = 300,      /* QEMU's DEFAULT_MIGRATE_SET_DOWNTIME */
        .max_bandwidth = 128ull << 20, /* QEMU's MAX_THROTTLE */
        .compress = false,
        .events = true, /* QEMU's default is off; godwit's clients wait on them */
        .net_forward = true,
        /* QEMU's DEFAULT_MIGRATE_CPU_THROTTLE_* and 8.1's dirty-limit defaults */
        .cpu_throttle_initial = 20,
        .cpu_throttle_increment = 10,
        .max_cpu_throttle = 99,
        .vcpu_dirty_limit = 1,
        .dirty_limit_period_ms = 1000,
    };
}

bool mig_out_active(const struct mig_out *j)
{
    int st;

    if (!j)
        return false;
    st = atomic_load(&j->status);
    return st == MIG_ST_SETUP || st == MIG_ST_ACTIVE || st == MIG_ST_DEVICE ||
           st == MIG_ST_CANCELLING || st == MIG_ST_PRECOPY_PAUSED || st == MIG_ST_PRECOPY_RECOVER ||
           st == MIG_ST_HELD_CONVERGED || st == MIG_ST_POSTCOPY_ACTIVE;
}

/* Queue an event for the loop (lock held). */
static void mig_out_queue(struct mig_out *j, int ev)
{
    if (j->evn < MIG_EVQ)
        j->evq[j->evn++] = ev;
}

/* Status change (job side, or the loop for cancelling).  A final status
 * also marks the job done; once done nothing changes the status again. */
static void mig_out_set_status_final(struct mig_out *j, enum mig_status st, bool final)
{
    pthread_mutex_lock(&j->lock);
    if (!atomic_load(&j->done)) {
        if (atomic_load(&j->status) != (int)st) /* completed early (handback): once */
            mig_out_queue(j, st);
        atomic_store(&j->status, st);
        if (final)
            atomic_store(&j->done, true);
    }
    pthread_mutex_unlock(&j->lock);
    j->mm.ops->kick(j->mm.opaque);
}

void mig_out_set_status(struct mig_out *j, enum mig_status st)
{
    mig_out_set_status_final(j, st, false);
}

void mig_out_handback(struct mig_out *j)
{
    ST_SET(j->end_ns, gw_now_ns());
    atomic_store(&j->handback, true);
    mig_out_set_status(j, MIG_ST_COMPLETED);
}

void mig_out_post_pass(struct mig_out *j)
{
    pthread_mutex_lock(&j->lock);
    mig_out_queue(j, -(int)ST_GET(j->rounds));
    pthread_mutex_unlock(&j->lock);
    j->mm.ops->kick(j->mm.opaque);
}

void mig_out_trace(const struct mig_out *j, const char *fmt, ...)
{
    va_list ap;
    char line[300];

    if (!j->mm.trace)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    gw_log("migration +%.3f ms: %s", (double)(gw_now_ns() - j->start_ns) / 1e6, line);
}

int mig_out_park(struct mig_out *j)
{
    bool parked;

    pthread_mutex_lock(&j->lock);
    j->want_park = true;
    pthread_mutex_unlock(&j->lock);
    j->mm.ops->kick(j->mm.opaque);
    pthread_mutex_lock(&j->lock);
    while (!j->parked && !atomic_load(&j->cancel))
        pthread_cond_wait(&j->cond, &j->lock);
    parked = j->parked;
    pthread_mutex_unlock(&j->lock);
    return parked ? 0 : -ECANCELED;
}

int mig_out_sync(struct mig_out *j)
{
    bool synced;

    pthread_mutex_lock(&j->lock);
    j->synced = false;
    j->want_sync = true;
    pthread_mutex_unlock(&j->lock);
    j->mm.ops->kick(j->mm.opaque);
    pthread_mutex_lock(&j->lock);
    while (!j->synced && !atomic_load(&j->cancel))
        pthread_cond_wait(&j->cond, &j->lock);
    synced = j->synced;
    pthread_mutex_unlock(&j->lock);
    ST_INC(j->rounds);
    return synced ? 0 : -ECANCELED;
}

static int mig_fsync_dir(const char *path)
{
    char copy[PATH_MAX];
    int fd, ret = 0;

    snprintf(copy, sizeof(copy), "%s", path);
    fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0 && errno != EINVAL)
        ret = -errno;
    close(fd);
    return ret;
}

/* The file job's body: park, save, fsync, rename.  0 or -errno (j->error). */
static int mig_out_file(struct mig_out *j, struct state_stream *s)
{
    int ret = mig_out_park(j);

    if (ret < 0) {
        snprintf(j->error, sizeof(j->error), "cancelled");
        return ret;
    }
    ST_SET(j->park_ns, gw_now_ns());
    mig_out_set_status(j, MIG_ST_DEVICE);
    ret = mig_save(&j->mm, s, 0, &j->pages_normal, &j->pages_zero, &j->cancel);
    ST_SET(j->bytes, state_stream_offset(s));
    if (ret == 0 && state_stream_flush(s) == 0 && fsync(j->fd) < 0)
        state_stream_fail(s, -errno, "fsync: %s", strerror(errno));
    ret = state_stream_error(s);
    if (ret < 0) {
        snprintf(j->error, sizeof(j->error), "%.200s: %.90s", j->path, state_stream_msg(s));
        return ret;
    }
    if (close(j->fd) < 0) {
        ret = -errno;
        snprintf(j->error, sizeof(j->error), "%.200s: close: %s", j->path, strerror(errno));
        j->fd = -1;
        return ret;
    }
    j->fd = -1;
    if (rename(j->tmp, j->path) < 0) {
        ret = -errno;
        snprintf(j->error, sizeof(j->error), "rename to %.200s: %s", j->path, strerror(errno));
        return ret;
    }
    j->tmp[0] = '\0';
    (void)mig_fsync_dir(j->path); /* the rename is durable; failure is only a weaker promise */
    return 0;
}

/* The live job's connection and body.  0 once committed. */
static int mig_out_live(struct mig_out *j, struct state_stream **sp)
{
    int ret = mig_live_run(j, sp);
    struct state_stream *s = *sp;

    if (!s) { /* ended while paused: no connection */
        if (ret < 0)
            snprintf(j->error, sizeof(j->error), "%s",
                     ret == -ECANCELED ? "cancelled" : strerror(-ret));
        return ret;
    }
    if (ret < 0 || state_stream_error(s)) {
        if (!ret)
            ret = state_stream_error(s);
        /* a broken pipe, a reset or a strange reply often means the
         * destination refused the stream: its ERROR says why, better than
         * our errno (a failure of our own waits for nothing) */
        if ((ret == -EPIPE || ret == -ECONNRESET || ret == -ENOTCONN || ret == -EPROTO) &&
            !atomic_load(&j->cancel) && !atomic_load(&j->committed))
            mig_live_fetch_refusal(j);
        if (j->refused && j->reason[0])
            snprintf(j->error, sizeof(j->error), "destination refused the migration: %s",
                     j->reason);
        else if (j->refused)
            snprintf(j->error, sizeof(j->error),
                     "destination refused the migration (%s; no reason came intact, see its "
                     "log)",
                     strerror(j->refused_errno));
        else
            snprintf(j->error, sizeof(j->error), "%s",
                     state_stream_msg(s)[0] ? state_stream_msg(s) : strerror(-ret));
    }
    return ret;
}

static void *mig_out_thread(void *arg)
{
    struct mig_out *j = arg;
    struct state_stream *s = NULL;
    int ret;

    if (j->live) {
        int fd = mig_connect(&j->uri, MIG_OUT_CONNECT_MS, j->error, sizeof(j->error));

        pthread_mutex_lock(&j->lock);
        j->fd = fd < 0 ? -1 : fd;
        pthread_mutex_unlock(&j->lock);
        if (fd < 0) {
            ret = fd;
            goto out;
        }
        mig_live_sockopts(j, fd);
        if (j->creds) {
            /* shut down by a cancel meanwhile: the handshake fails at once */
            j->tls = mig_tls_open(j->creds, fd, MIG_TLS_HANDSHAKE_MS, j->error, sizeof(j->error));
            if (!j->tls) {
                ret = -EPROTO;
                goto out;
            }
            mig_out_trace(j, "TLS: %s", mig_tls_describe(j->tls));
        }
    }
    ST_SET(j->setup_ns, gw_now_ns() - j->start_ns);
    if (atomic_load(&j->cancel)) { /* cancelled during setup: never active */
        ret = -ECANCELED;
        goto out;
    }
    mig_out_set_status(j, MIG_ST_ACTIVE);
    s = j->tls ? state_stream_new_io(&mig_tls_io, j->tls, false) : state_stream_new(j->fd, false);
    if (!s) {
        snprintf(j->error, sizeof(j->error), "out of memory");
        ret = -ENOMEM;
        goto out;
    }
    ret = j->live ? mig_out_live(j, &s) : mig_out_file(j, s);
out:
    state_stream_free(s);
    pthread_mutex_lock(&j->lock);
    mig_tls_free(j->tls);
    j->tls = NULL;
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    pthread_mutex_unlock(&j->lock);
    if (j->tmp[0])
        unlink(j->tmp);
    /* not committed: the VM runs here again, with the frames kept for it */
    if (j->fwd && !atomic_load(&j->committed))
        mig_fwd_requeue(j->fwd, &j->mm);
    if (!atomic_load(&j->handback))
        ST_SET(j->end_ns, gw_now_ns());
    if (j->pc_failed)
        mig_out_set_status_final(j, MIG_ST_FAILED, true);
    else if (atomic_load(&j->committed) || ret == 0)
        mig_out_set_status_final(j, MIG_ST_COMPLETED, true);
    else if (ret == -ECANCELED || atomic_load(&j->cancel))
        mig_out_set_status_final(j, MIG_ST_CANCELLED, true);
    else
        mig_out_set_status_final(j, MIG_ST_FAILED, true);
    return NULL;
}

static void mig_out_release(struct mig_out *j)
{
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->cond);
    free(j->dirty);
    free(j->sent);
    free(j->tag);
    free(j->pc_missing);
    mig_fwd_free(j->fwd);
    if (j->blk) {
        mig_blk_close(j->blk);
        free(j->blk);
    }
    mig_tls_creds_free(j->creds);
    free(j);
}

/* A file target: refuse what exists and is not a regular file (a device
 * node, a FIFO: rename() would replace it), then create the temporary
 * file beside it.  0 or -errno with err set. */
static int mig_out_open_file(struct mig_out *j, char *err, size_t errlen)
{
    struct stat st;

    if (stat(j->path, &st) == 0 && !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s exists and is not a regular file: not replacing it", j->path);
        return -EINVAL;
    }
    snprintf(j->tmp, sizeof(j->tmp), "%s.XXXXXX", j->path);
    j->fd = mkostemp(j->tmp, O_CLOEXEC);
    if (j->fd < 0) {
        int ret = -errno;

        snprintf(err, errlen, "cannot create %s: %s", j->tmp, strerror(errno));
        j->tmp[0] = '\0';
        return ret;
    }
    return 0;
}

int mig_out_start(struct mig_out **jobp, const struct mig_machine *mm, const char *uri,
                  const struct mig_params *p, char *err, size_t errlen)
{
    struct mig_out *j;
    struct mig_uri u;
    int ret;

    *jobp = NULL;
    if (mig_uri_parse(uri, false, &u, err, errlen) < 0)
        return -EINVAL;
    j = calloc(1, sizeof(*j));
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    j->mm = *mm;
    j->fd = -1;
    j->uri = u;
    j->live = u.kind != MIG_URI_FILE;
    j->params = *p;
    if (!j->live) {
        j->params.compress = true; /* a file: smaller is better, nothing waits */
        j->params.precopy_recover = false;
        j->params.block = false; /* a file holds no disks */
    }
    atomic_store(&j->hold, j->live && p->hold_switchover);
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    snprintf(j->path, sizeof(j->path), "%s", u.path);
    j->start_ns = gw_now_ns();
    *jobp = j;
    mig_out_set_status(j, MIG_ST_SETUP);
    if (p->tls_dir[0] && !j->live) {
        snprintf(err, errlen,
                 "tls-creds is set: TLS needs a tcp: or unix: migration, not a "
                 "file (clear it with migrate-set-parameters tls-creds \"\")");
        ret = -EINVAL;
        goto fail;
    }
    if (p->tls_dir[0]) {
        j->creds = mig_tls_creds_load(p->tls_dir, false, err, errlen);
        if (!j->creds) {
            ret = -EINVAL;
            goto fail;
        }
    }
    if (j->live) {
        j->dirty = calloc((mm->mem->npages + 63) / 64, sizeof(uint64_t));
        j->sent = calloc(mm->mem->npages, 1);
        if (p->precopy_recover)
            j->tag = calloc(mm->mem->npages, sizeof(*j->tag));
        if (!j->dirty || !j->sent || (p->precopy_recover && !j->tag)) {
            snprintf(err, errlen, "out of memory");
            ret = -ENOMEM;
            goto fail;
        }
    } else if ((ret = mig_out_open_file(j, err, errlen)) < 0) {
        goto fail;
    }
    ret = pthread_create(&j->thread, NULL, mig_out_thread, j);
    if (ret) {
        ret = -ret;
        snprintf(err, errlen, "cannot start the migration thread: %s", strerror(-ret));
        if (j->fd >= 0)
            close(j->fd);
        j->fd = -1;
        if (j->tmp[0])
            unlink(j->tmp);
        goto fail;
    }
    j->thread_live = true;
    return 0;

fail:
    snprintf(j->error, sizeof(j->error), "%s", err);
    ST_SET(j->end_ns, gw_now_ns());
    mig_out_set_status_final(j, MIG_ST_FAILED, true);
    return ret;
}

/* Loop side: give the machine back (the job ended, or handed it back). */
static void mig_out_unpark(struct mig_out *j)
{
    int st = atomic_load(&j->status);
    bool parked;

    pthread_mutex_lock(&j->lock);
    parked = j->parked;
    j->parked = j->want_park = false;
    pthread_mutex_unlock(&j->lock);
    if (j->blk) /* the devices stop marking (a write waiting for room completes) */
        mig_blk_attach(j->blk, &j->mm, false);
    /* committed: never back here, even when post-copy broke off after */
    if (parked)
        j->mm.ops->unpark(j->mm.opaque, st != MIG_ST_COMPLETED && !atomic_load(&j->committed)
                                            ? MIG_UNPARK_RESUME
                                        : j->live ? MIG_UNPARK_GONE
                                                  : MIG_UNPARK_SAVED);
}

/* Loop side: the job ended; join it and give the machine back. */
static void mig_out_finish(struct mig_out *j)
{
    int st = atomic_load(&j->status);

    if (j->thread_live) {
        pthread_join(j->thread, NULL);
        j->thread_live = false;
    }
    mig_out_unpark(j);
    if (st == MIG_ST_FAILED && !j->logged) {
        gw_log("migration failed: %s", j->error);
        j->logged = true;
    }
}

/* Loop side: whatever the job waits for. */
static void mig_out_serve(struct mig_out *j)
{
    bool sync, park;

    pthread_mutex_lock(&j->lock);
    sync = j->want_sync && !j->synced;
    park = j->want_park && !j->parked && !atomic_load(&j->done);
    pthread_mutex_unlock(&j->lock);
    if (sync) {
        /* the disks' devices mark from the first sync on */
        if (j->blk)
            mig_blk_attach(j->blk, &j->mm, true);
        /* between hart slices: no store is half done */
        gmem_dirty_collect(j->mm.mem, j->dirty);
        pthread_mutex_lock(&j->lock);
        j->want_sync = false;
        j->synced = true;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
    }
    if (park) {
        j->mm.ops->park(j->mm.opaque);
        pthread_mutex_lock(&j->lock);
        j->parked = true;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
    }
}

void mig_out_poll(struct mig_out *j)
{
    int evs[MIG_EVQ];
    unsigned n;
    bool done;

    if (!j)
        return;
    mig_out_serve(j);
    pthread_mutex_lock(&j->lock);
    n = j->evn;
    memcpy(evs, j->evq, n * sizeof(int));
    j->evn = 0;
    done = atomic_load(&j->done);
    pthread_mutex_unlock(&j->lock);
    if (done)
        mig_out_finish(j); /* the run state is settled before the last event goes out */
    else if (atomic_load(&j->handback) && !j->handed_back) {
        j->handed_back = true; /* the job forwards frames on; the VM has gone */
        mig_out_unpark(j);
    }
    for (unsigned i = 0; i < n; i++) {
        if (evs[i] < 0)
            j->mm.ops->status(j->mm.opaque, (enum mig_status)atomic_load(&j->status),
                              (uint64_t)-evs[i]);
        else
            j->mm.ops->status(j->mm.opaque, (enum mig_status)evs[i], 0);
    }
}

void mig_out_cancel(struct mig_out *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->lock);
    /* decided under the lock that also orders "committed" and "done": a
     * committed or finished job keeps its status */
    if (atomic_load(&j->committed) || atomic_load(&j->done) || atomic_load(&j->cancel)) {
        pthread_mutex_unlock(&j->lock);
        return;
    }
    atomic_store(&j->cancel, true);
    atomic_store(&j->status, MIG_ST_CANCELLING);
    mig_out_queue(j, MIG_ST_CANCELLING);
    if (j->live && j->fd >= 0)
        shutdown(j->fd, SHUT_RDWR);   /* unblocks a send or a wait for READY */
    pthread_cond_broadcast(&j->cond); /* wakes a job waiting to park or sync */
    pthread_mutex_unlock(&j->lock);
    j->mm.ops->kick(j->mm.opaque);
}

void mig_out_free(struct mig_out *j)
{
    if (!j)
        return;
    if (j->thread_live) {
        mig_out_cancel(j);
        /* the job may be waiting for the loop: serve it (we are the loop) */
        while (!atomic_load(&j->done)) {
            mig_out_serve(j);
            usleep(1000);
        }
        mig_out_poll(j);
    }
    mig_out_release(j);
}

void mig_out_info(const struct mig_out *j, struct mig_info *info)
{
    uint64_t now = gw_now_ns(), end, park, run, normal, zero;
    bool over;

    memset(info, 0, sizeof(*info));
    info->status = (enum mig_status)atomic_load(&j->status);
    info->done = atomic_load(&j->done); /* after it, the job's last values are visible */
    over = info->done || atomic_load(&j->handback);
    info->live = j->live;
    end = over ? ST_GET(j->end_ns) : now;
    park = ST_GET(j->park_ns);
    run = ST_GET(j->run_ns);
    normal = ST_GET(j->pages_normal);
    zero = ST_GET(j->pages_zero);
    info->total_ms = (end - j->start_ns) / 1000000;
    info->setup_ms = ST_GET(j->setup_ns) / 1000000;
    if (park && over) {
        /* stop -> the destination runs (its RUNNING), or -> the end */
        info->has_downtime = true;
        info->downtime_ms = ((run ? run : end) - park) / 1000000;
    }
    info->expected_downtime_ms = ST_GET(j->expected_downtime_ms);
    info->transferred = ST_GET(j->bytes);
    info->total = j->mm.mem->size;
    if (over)
        info->remaining = 0;
    else if (j->live)
        info->remaining = ST_GET(j->remaining_pages) * GMEM_PAGE_SIZE;
    else
        info->remaining = (j->mm.mem->npages - normal - zero) * GMEM_PAGE_SIZE;
    info->pages_normal = normal;
    info->pages_zero = zero;
    info->dirty_sync_count = j->live ? ST_GET(j->rounds) : 1;
    info->dirty_pages_rate = ST_GET(j->dirty_pages_rate);
    info->recoveries = ST_GET(j->recoveries);
    info->resent = ST_GET(j->resent);
    pthread_mutex_lock((pthread_mutex_t *)&j->lock);
    if (j->blk) {
        const struct mig_blk *k = j->blk;

        info->has_disk = true;
        info->mirror = k->mirror;
        info->disk_total = ST_GET(k->total);
        info->disk_transferred = ST_GET(k->transferred);
        info->disk_dirty_rate = ST_GET(k->dirty_rate);
        info->disk_remaining = over ? 0 : mig_blk_pending(k) * STATE_BLK_SIZE;
        if (!over && !k->bulk_done) {
            /* the bulk's rest: what it has not looked at yet */
            for (unsigned i = k->bulk_disk; i < k->n; i++) {
                uint64_t from = i == k->bulk_disk ? k->bulk_off : 0;
                info->disk_remaining += from < k->d[i].info.size ? k->d[i].info.size - from : 0;
            }
        }
    }
    if (j->postcopy) {
        info->has_pc = true;
        info->pc_requests = ST_GET(j->pc_requests);
        info->pc_pages = ST_GET(j->pc_pages);
        info->pc_bytes = ST_GET(j->pc_bytes);
        info->pc_bad_requests = ST_GET(j->pc_bad_requests);
        if (!info->done)
            info->status = atomic_load(&j->status); /* postcopy-active */
    }
    if (j->fwd) {
        mig_fwd_info(j->fwd, info);
        info->fwd_active = !info->done && atomic_load(&j->handback);
    }
    pthread_mutex_unlock((pthread_mutex_t *)&j->lock);
    {
        struct mig_throttle_now t;

        mig_out_throttle(j, &t);
        info->throttle_pct = t.pct;
        info->dirty_limit_on = t.limit_bps != 0;
    }
    info->mbps = end > j->start_ns
                     ? (double)info->transferred * 8 / 1e6 / ((double)(end - j->start_ns) / 1e9)
                     : 0.0;
    if (info->done && (info->status == MIG_ST_FAILED || info->status == MIG_ST_CANCELLED)) {
        snprintf(info->error, sizeof(info->error), "%s", j->error);
    } else if (info->status == MIG_ST_PRECOPY_PAUSED || info->status == MIG_ST_PRECOPY_RECOVER) {
        pthread_mutex_lock((pthread_mutex_t *)&j->lock);
        snprintf(info->error, sizeof(info->error), "%s", j->pause_reason);
        pthread_mutex_unlock((pthread_mutex_t *)&j->lock);
    }
}

int mig_out_start_postcopy(struct mig_out *j, char *err, size_t errlen)
{
    int st = j ? atomic_load(&j->status) : MIG_ST_NONE;

    if (!j || !j->live || atomic_load(&j->done) ||
        (st != MIG_ST_ACTIVE && st != MIG_ST_HELD_CONVERGED && st != MIG_ST_SETUP))
        return gw_fail(err, errlen, -EINVAL,
                       "migrate-start-postcopy: no live migration is in pre-copy");
    if (!j->params.postcopy)
        return gw_fail(err, errlen, -EINVAL,
                       "migrate-start-postcopy: the migration was started without capability "
                       "postcopy-ram");
    atomic_store(&j->want_postcopy, true);
    return 0;
}

int mig_out_pause(struct mig_out *j, char *err, size_t errlen)
{
    int st = j ? atomic_load(&j->status) : MIG_ST_NONE;

    if (!j || !j->live || atomic_load(&j->done))
        return gw_fail(err, errlen, -EINVAL, "migrate-pause: no live migration is running");
    if (!j->params.precopy_recover)
        return gw_fail(err, errlen, -EINVAL,
                       "migrate-pause: this migration cannot be resumed (it was started without "
                       "the x-godwit-precopy-recover capability): cancel it instead");
    if (st == MIG_ST_PRECOPY_PAUSED || st == MIG_ST_PRECOPY_RECOVER)
        return gw_fail(err, errlen, -EALREADY, "migrate-pause: the migration is already paused");
    if (st != MIG_ST_ACTIVE && st != MIG_ST_HELD_CONVERGED)
        return gw_fail(err, errlen, -EINVAL,
                       "migrate-pause: the migration is %s: only pre-copy (active) can pause",
                       mig_status_name((enum mig_status)st));
    atomic_store(&j->want_pause, true);
    pthread_mutex_lock(&j->lock);
    pthread_cond_broadcast(&j->cond); /* a held round waiting out its interval */
    pthread_mutex_unlock(&j->lock);
    return 0;
}

int mig_out_resume(struct mig_out *j, const char *uri, char *err, size_t errlen)
{
    struct mig_uri u;

    if (!j || !j->live || atomic_load(&j->done) || atomic_load(&j->status) != MIG_ST_PRECOPY_PAUSED)
        return gw_fail(err, errlen, -EINVAL,
                       "migrate resume: no paused migration to resume (status %s)",
                       j ? mig_status_name((enum mig_status)atomic_load(&j->status)) : "none");
    if (mig_uri_parse(uri, false, &u, err, errlen) < 0)
        return -EINVAL;
    if (u.kind == MIG_URI_FILE)
        return gw_fail(err, errlen, -EINVAL,
                       "migrate resume: a live migration resumes over tcp: "
                       "or unix:, not to a file");
    pthread_mutex_lock(&j->lock);
    if (j->want_resume) {
        pthread_mutex_unlock(&j->lock);
        return gw_fail(err, errlen, -EALREADY, "migrate resume: already resuming");
    }
    j->resume_uri = u;
    j->want_resume = true;
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
    return 0;
}

void mig_out_update(struct mig_out *j, const struct mig_params *p)
{
    if (!j || !j->live)
        return;
    ST_SET(j->params.max_bandwidth, p->max_bandwidth);
    ST_SET(j->params.downtime_limit_ms, p->downtime_limit_ms);
    ST_SET(j->params.cpu_throttle_initial, p->cpu_throttle_initial);
    ST_SET(j->params.cpu_throttle_increment, p->cpu_throttle_increment);
    ST_SET(j->params.cpu_throttle_tailslow, p->cpu_throttle_tailslow);
    ST_SET(j->params.max_cpu_throttle, p->max_cpu_throttle);
    ST_SET(j->params.vcpu_dirty_limit, p->vcpu_dirty_limit);
    ST_SET(j->params.dirty_limit_period_ms, p->dirty_limit_period_ms);
    if (ST_GET(j->thr_pct) > p->max_cpu_throttle) /* a lower cap holds at once */
        ST_SET(j->thr_pct, p->max_cpu_throttle);
    atomic_store(&j->hold, p->hold_switchover);
    pthread_mutex_lock(&j->lock);
    pthread_cond_broadcast(&j->cond);
    pthread_mutex_unlock(&j->lock);
}

void mig_out_throttle_sync(struct mig_out *j, uint64_t dirty_bytes, uint64_t xfer_bytes)
{
    struct mig_params p = {
        .auto_converge = j->params.auto_converge, /* capabilities: fixed while the job runs */
        .dirty_limit = j->params.dirty_limit,
    };

    /* what migrate-set-parameters may change meanwhile */
    p.cpu_throttle_initial = ST_GET(j->params.cpu_throttle_initial);
    p.cpu_throttle_increment = ST_GET(j->params.cpu_throttle_increment);
    p.cpu_throttle_tailslow = ST_GET(j->params.cpu_throttle_tailslow);
    p.max_cpu_throttle = ST_GET(j->params.max_cpu_throttle);
    j->thr.pct = ST_GET(j->thr_pct); /* lowered by a new max-cpu-throttle */
    if (!mig_throttle_sync(&j->thr, &p, gw_now_ns(), dirty_bytes, xfer_bytes))
        return;
    ST_SET(j->thr_pct, j->thr.pct);
    ST_SET(j->thr_limit, j->thr.limit_on);
    if (p.auto_converge)
        gw_log("migration: not converging: auto-converge throttles the guest to %u %%", j->thr.pct);
    else if (j->thr.fired == 1)
        gw_log("migration: not converging: dirty-limit holds each hart to %llu MB/s",
               (unsigned long long)ST_GET(j->params.vcpu_dirty_limit));
}

void mig_out_throttle(const struct mig_out *j, struct mig_throttle_now *t)
{
    int st;

    *t = (struct mig_throttle_now){0};
    if (!j || !j->live || atomic_load(&j->done) || atomic_load(&j->committed) ||
        atomic_load(&j->cancel))
        return;
    st = atomic_load(&j->status);
    /* paused (migrate-pause, a broken link) counts as ended: the guest
     * runs at full speed until the migration goes on */
    if (st != MIG_ST_ACTIVE && st != MIG_ST_HELD_CONVERGED)
        return;
    t->pct = ST_GET(j->thr_pct);
    if (ST_GET(j->thr_limit)) {
        t->limit_bps = ST_GET(j->params.vcpu_dirty_limit) << 20; /* QEMU's MB: MiB */
        t->period_ns = ST_GET(j->params.dirty_limit_period_ms) * 1000000ull;
    }
}
