/*
 * Outgoing and incoming migration of the virt machine (docs/state.md).
 *
 * An outgoing migration is a job on its own thread, so the run loop keeps
 * serving QMP (query-migrate, migrate_cancel) while RAM streams out.  The
 * devices belong to the run loop; the job gets them by asking the loop to
 * park (VIRT_REQ_PARK): the loop finishes the devices' batched work
 * (virtio pre_save), stops the harts if they ran (state finish-migrate,
 * STOP event), touches no device any more and signals the job, which then
 * saves everything.  When the job ends the loop un-parks: completed ->
 * postmigrate (the VM stays stopped, QEMU's way), failed or cancelled ->
 * the VM runs again if it ran before, untouched.
 *
 * Files are written atomically: a temporary file beside the target,
 * fsync, rename over the target, fsync of the directory.  Any failure
 * removes the temporary file and leaves an earlier state file as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "machine/virt_int.h"

enum virt_mig_status {
    MIG_ST_NONE,
    MIG_ST_SETUP,
    MIG_ST_ACTIVE,
    MIG_ST_DEVICE,
    MIG_ST_COMPLETED,
    MIG_ST_FAILED,
    MIG_ST_CANCELLING,
    MIG_ST_CANCELLED,
};

static const char *const virt_mig_status_names[] = {
    [MIG_ST_NONE] = "none",
    [MIG_ST_SETUP] = "setup",
    [MIG_ST_ACTIVE] = "active",
    [MIG_ST_DEVICE] = "device",
    [MIG_ST_COMPLETED] = "completed",
    [MIG_ST_FAILED] = "failed",
    [MIG_ST_CANCELLING] = "cancelling",
    [MIG_ST_CANCELLED] = "cancelled",
};

#define VIRT_MIG_EVQ 16

struct virt_mig {
    struct virt *vm;
    pthread_t thread;
    bool thread_live; /* started and not joined */
    _Atomic bool cancel;
    _Atomic bool want_park;
    _Atomic int status;
    /* status changes not yet sent as MIGRATION events (job -> loop) */
    pthread_mutex_t evlock;
    int evq[VIRT_MIG_EVQ];
    unsigned evn;
    _Atomic bool done; /* the thread finished: the loop joins it */
    /* what the loop did when it parked */
    bool was_running;
    enum virt_runstate prev_runstate;
    /* target */
    char path[PATH_MAX];
    char tmp[PATH_MAX + 16];
    int fd;
    /* statistics (host ns; written by the job, read under evlock) */
    uint64_t start_ns, setup_ns, park_ns, end_ns;
    struct virt_save_stats stats;
    uint64_t bytes;
    char error[300];
    bool logged; /* the failure was logged */
};

bool virt_migrate_active(const struct virt *vm)
{
    int st;

    if (!vm->mig)
        return false;
    st = atomic_load(&vm->mig->status);
    return st == MIG_ST_SETUP || st == MIG_ST_ACTIVE || st == MIG_ST_DEVICE ||
           st == MIG_ST_CANCELLING;
}

/* Job side: change status and tell the loop (it emits the event).  A
 * final status also marks the job done, under the same lock, so the loop
 * sees the final event and "done" together and can settle the run state
 * before a client hears "completed". */
static void virt_mig_set_status_final(struct virt_mig *m, int st, bool final)
{
    pthread_mutex_lock(&m->evlock);
    atomic_store(&m->status, st);
    if (m->evn < VIRT_MIG_EVQ)
        m->evq[m->evn++] = st;
    if (final)
        atomic_store(&m->done, true);
    pthread_mutex_unlock(&m->evlock);
    virt_post_request(m->vm, VIRT_REQ_MIG);
}

static void virt_mig_set_status(struct virt_mig *m, int st)
{
    virt_mig_set_status_final(m, st, false);
}

/* Job side: wait until the loop parked the machine (or cancel). */
static int virt_mig_park(struct virt_mig *m)
{
    struct virt *vm = m->vm;

    atomic_store(&m->want_park, true);
    virt_post_request(vm, VIRT_REQ_PARK);
    pthread_mutex_lock(&vm->park_lock);
    while (!vm->parked && !atomic_load(&m->cancel))
        pthread_cond_wait(&vm->park_cond, &vm->park_lock);
    pthread_mutex_unlock(&vm->park_lock);
    return vm->parked ? 0 : -ECANCELED;
}

static int virt_fsync_dir(const char *path)
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

static void *virt_mig_thread(void *arg)
{
    struct virt_mig *m = arg;
    struct virt *vm = m->vm;
    struct mig_stream *s = mig_stream_new(m->fd, false);
    int ret;

    m->setup_ns = gw_now_ns() - m->start_ns;
    virt_mig_set_status(m, MIG_ST_ACTIVE);
    if (!s) {
        snprintf(m->error, sizeof(m->error), "out of memory");
        ret = -ENOMEM;
        goto out;
    }
    ret = virt_mig_park(m);
    if (ret < 0) {
        snprintf(m->error, sizeof(m->error), "cancelled");
        goto out;
    }
    m->park_ns = gw_now_ns();
    virt_mig_set_status(m, MIG_ST_DEVICE);
    ret = virt_state_save(vm, s, &m->stats, &m->cancel);
    m->bytes = mig_stream_offset(s);
    if (ret == 0 && fsync(m->fd) < 0)
        mig_stream_fail(s, -errno, "fsync: %s", strerror(errno));
    ret = mig_stream_error(s);
    if (ret < 0) {
        snprintf(m->error, sizeof(m->error), "%.200s: %.90s", m->path, mig_stream_msg(s));
        goto out;
    }
    if (close(m->fd) < 0) {
        ret = -errno;
        snprintf(m->error, sizeof(m->error), "%.200s: close: %s", m->path, strerror(errno));
        m->fd = -1;
        goto out;
    }
    m->fd = -1;
    if (rename(m->tmp, m->path) < 0) {
        ret = -errno;
        snprintf(m->error, sizeof(m->error), "rename to %.200s: %s", m->path, strerror(errno));
        goto out;
    }
    m->tmp[0] = '\0';
    (void)virt_fsync_dir(m->path); /* the rename is durable; failure is only a weaker promise */
out:
    mig_stream_free(s);
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    if (m->tmp[0])
        unlink(m->tmp);
    m->end_ns = gw_now_ns();
    if (ret == 0)
        virt_mig_set_status_final(m, MIG_ST_COMPLETED, true);
    else if (ret == -ECANCELED || atomic_load(&m->cancel))
        virt_mig_set_status_final(m, MIG_ST_CANCELLED, true);
    else
        virt_mig_set_status_final(m, MIG_ST_FAILED, true);
    (void)vm;
    return NULL;
}

static void virt_mig_free(struct virt_mig *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->evlock);
    free(m);
}

int virt_migrate_start(struct virt *vm, const char *uri, char *err, size_t errlen)
{
    struct virt_mig *m;
    const char *path;
    int ret;

    if (virt_migrate_active(vm)) {
        snprintf(err, errlen, "There's a migration process in progress");
        return -EBUSY;
    }
    if (vm->runstate == VIRT_RS_INMIGRATE || vm->runstate == VIRT_RS_SHUTDOWN ||
        vm->runstate == VIRT_RS_INTERNAL_ERROR) {
        snprintf(err, errlen, "cannot migrate in state %s", virt_runstate_name(vm->runstate));
        return -EINVAL;
    }
    if (strncmp(uri, "file:", 5) != 0 || !uri[5]) {
        snprintf(err, errlen, "unsupported migration URI '%s' (use file:PATH)", uri);
        return -EINVAL;
    }
    path = uri + 5;
    if (strlen(path) >= PATH_MAX) {
        snprintf(err, errlen, "path too long");
        return -ENAMETOOLONG;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->vm = vm;
    m->fd = -1;
    pthread_mutex_init(&m->evlock, NULL);
    snprintf(m->path, sizeof(m->path), "%s", path);
    snprintf(m->tmp, sizeof(m->tmp), "%s.XXXXXX", path);
    m->start_ns = gw_now_ns();
    /* replace the previous job's record */
    virt_mig_free(vm->mig);
    vm->mig = m;
    virt_mig_set_status(m, MIG_ST_SETUP);
    m->fd = mkostemp(m->tmp, O_CLOEXEC);
    if (m->fd < 0) {
        ret = -errno;
        snprintf(err, errlen, "cannot create %s: %s", m->tmp, strerror(errno));
        snprintf(m->error, sizeof(m->error), "%s", err);
        m->tmp[0] = '\0';
        goto fail;
    }
    ret = pthread_create(&m->thread, NULL, virt_mig_thread, m);
    if (ret) {
        ret = -ret;
        snprintf(err, errlen, "cannot start the migration thread: %s", strerror(-ret));
        snprintf(m->error, sizeof(m->error), "%s", err);
        close(m->fd);
        m->fd = -1;
        unlink(m->tmp);
        goto fail;
    }
    m->thread_live = true;
    return 0;

fail:
    m->end_ns = gw_now_ns();
    virt_mig_set_status_final(m, MIG_ST_FAILED, true);
    return ret;
}

/* Loop side: park the machine for the job. */
static void virt_mig_do_park(struct virt *vm, struct virt_mig *m)
{
    m->prev_runstate = vm->runstate;
    m->was_running = vm->runstate == VIRT_RS_RUNNING;
    /* devices finish batched work so nothing is in flight */
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++)
        virtio_mmio_pre_save(&vm->virtio[i]);
    if (m->was_running)
        virt_pause(vm, VIRT_RS_FINISH_MIGRATE);
    else
        virt_set_runstate(vm, VIRT_RS_FINISH_MIGRATE);
    pthread_mutex_lock(&vm->park_lock);
    vm->parked = true;
    pthread_cond_broadcast(&vm->park_cond);
    pthread_mutex_unlock(&vm->park_lock);
}

static void virt_mig_finish(struct virt *vm, struct virt_mig *m);

void virt_migrate_poll(struct virt *vm)
{
    struct virt_mig *m = vm->mig;
    int evs[VIRT_MIG_EVQ];
    unsigned n;
    bool done;

    if (!m)
        return;
    if (atomic_load(&m->want_park) && !vm->parked && !atomic_load(&m->done))
        virt_mig_do_park(vm, m);
    pthread_mutex_lock(&m->evlock);
    n = m->evn;
    memcpy(evs, m->evq, n * sizeof(int));
    m->evn = 0;
    done = atomic_load(&m->done);
    pthread_mutex_unlock(&m->evlock);
    if (done)
        virt_mig_finish(vm, m); /* the run state is settled before the last event goes out */
    for (unsigned i = 0; i < n; i++)
        virt_event(vm, "MIGRATION", json_pack("{s:s}", "status", virt_mig_status_names[evs[i]]));
}

/* Loop side: the job ended; join it and settle the run state. */
static void virt_mig_finish(struct virt *vm, struct virt_mig *m)
{
    if (m->thread_live) {
        pthread_join(m->thread, NULL);
        m->thread_live = false;
    }
    atomic_store(&m->want_park, false);
    if (vm->parked) {
        pthread_mutex_lock(&vm->park_lock);
        vm->parked = false;
        pthread_mutex_unlock(&vm->park_lock);
        if (atomic_load(&m->status) == MIG_ST_COMPLETED)
            virt_set_runstate(vm, VIRT_RS_POSTMIGRATE);
        else if (m->was_running)
            virt_resume(vm);
        else
            virt_set_runstate(vm, m->prev_runstate);
    }
    if (atomic_load(&m->status) == MIG_ST_FAILED && !m->logged) {
        gw_log("migration failed: %s", m->error);
        m->logged = true;
    }
}

void virt_migrate_cancel(struct virt *vm)
{
    struct virt_mig *m = vm->mig;

    if (!m || !virt_migrate_active(vm))
        return;
    atomic_store(&m->cancel, true);
    virt_mig_set_status(m, MIG_ST_CANCELLING);
    /* wake a job waiting to park */
    pthread_mutex_lock(&vm->park_lock);
    pthread_cond_broadcast(&vm->park_cond);
    pthread_mutex_unlock(&vm->park_lock);
}

void virt_migrate_fini(struct virt *vm)
{
    struct virt_mig *m = vm->mig;

    if (!m)
        return;
    if (m->thread_live) {
        virt_migrate_cancel(vm);
        /* the job may be waiting for the loop: park it (we are the loop) */
        while (!atomic_load(&m->done)) {
            if (atomic_load(&m->want_park) && !vm->parked)
                virt_mig_do_park(vm, m);
            usleep(1000);
        }
        virt_migrate_poll(vm);
    }
    virt_mig_free(m);
    vm->mig = NULL;
}

json_t *virt_migrate_query(struct virt *vm)
{
    struct virt_mig *m = vm->mig;
    json_t *o, *ram;
    int st;
    uint64_t now = gw_now_ns(), end, total_pages;
    double secs;

    if (!m)
        return json_object();
    st = atomic_load(&m->status);
    end = atomic_load(&m->done) ? m->end_ns : now;
    o = json_pack("{s:s}", "status", virt_mig_status_names[st]);
    if (st == MIG_ST_SETUP)
        return o;
    json_object_set_new(o, st == MIG_ST_COMPLETED ? "total-time" : "total-time",
                        json_integer((json_int_t)((end - m->start_ns) / 1000000)));
    json_object_set_new(o, "setup-time", json_integer((json_int_t)(m->setup_ns / 1000000)));
    if (m->park_ns && atomic_load(&m->done))
        json_object_set_new(o, "downtime",
                            json_integer((json_int_t)((m->end_ns - m->park_ns) / 1000000)));
    else
        json_object_set_new(o, "expected-downtime", json_integer(0));
    total_pages = vm->mem->npages;
    secs = (double)(end - m->start_ns) / 1e9;
    ram =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I}", "transferred",
                  (json_int_t)m->bytes, "remaining",
                  (json_int_t)(atomic_load(&m->done)
                                   ? 0
                                   : (total_pages - m->stats.pages_normal - m->stats.pages_zero) *
                                         GMEM_PAGE_SIZE),
                  "total", (json_int_t)vm->mem->size, "duplicate", (json_int_t)m->stats.pages_zero,
                  "normal", (json_int_t)m->stats.pages_normal, "normal-bytes",
                  (json_int_t)(m->stats.pages_normal * GMEM_PAGE_SIZE), "dirty-sync-count",
                  (json_int_t)1, "mbps", secs > 0 ? (double)m->bytes * 8 / 1e6 / secs : 0.0,
                  "page-size", (json_int_t)GMEM_PAGE_SIZE);
    json_object_set_new(o, "ram", ram);
    if (st == MIG_ST_FAILED && m->error[0])
        json_object_set_new(o, "error-desc", json_string(m->error));
    return o;
}

int virt_incoming(struct virt *vm, const char *uri, char *err, size_t errlen)
{
    const char *path;
    struct mig_stream *s;
    char why[400];
    int fd, ret;

    if (strncmp(uri, "file:", 5) != 0 || !uri[5]) {
        snprintf(err, errlen, "-incoming %s: only file:PATH is supported", uri);
        return -EINVAL;
    }
    path = uri + 5;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ret = -errno;
        snprintf(err, errlen, "-incoming: cannot open %s: %s", path, strerror(errno));
        return ret;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    s = mig_stream_new(fd, true);
    if (!s) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ret = virt_state_load(vm, s, why, sizeof(why));
    if (ret < 0)
        snprintf(err, errlen, "-incoming: %s: state refused: %s", path, why);
    mig_stream_free(s);
    close(fd);
    return ret;
}
