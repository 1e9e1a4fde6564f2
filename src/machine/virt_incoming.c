/*
 * The destination side of a migration (docs/state.md).
 *
 * -incoming file:PATH loads the state before the run starts.  For tcp: and
 * unix: the machine waits in state inmigrate while a thread listens,
 * accepts one connection and loads the stream as it arrives (RAM straight
 * into guest memory, components as their sections come; the run loop
 * touches no device meanwhile).  Once the EOF checksum matched and every
 * component loaded, the thread answers READY and waits for the source's
 * COMMIT; only then does the loop let the guest run (or keep it paused with
 * -S), with its clock moved on by the time the source was paused, and
 * announce its NICs.  Any failure (a refused stream, a closed connection, no
 * commit in time) ends the process with status 1 before the guest ran, as a
 * failed incoming migration ends QEMU.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "machine/virt_int.h"
#include "state/state_format.h"
#include "migration/mig_proto.h"

#define VIRT_INC_COMMIT_MS 60000 /* wait this long for the commit after READY */

/* GODWIT_TRACE=migration on the destination. */
#define INC_TRACE(in, ...)                                                                         \
    do {                                                                                           \
        if ((in)->vm->cfg.trace & VIRT_TRACE_MIGRATION)                                            \
            gw_log("incoming +%.3f ms: %s", (double)(gw_now_ns() - (in)->start_ns) / 1e6,          \
                   __VA_ARGS__);                                                                   \
    } while (0)

enum { INC_WAITING, INC_ACTIVE, INC_DONE_OK, INC_FAILED };

struct virt_incoming {
    struct virt *vm;
    struct mig_uri uri;
    pthread_t thread;
    bool thread_live;
    int lfd, fd;
    _Atomic bool cancel;
    _Atomic int status; /* INC_* */
    int reported;       /* last status sent as an event */
    uint64_t paused_ns; /* from the commit */
    uint64_t start_ns, end_ns;
    uint64_t bytes;
    char error[400];
};

static int virt_incoming_file(struct virt *vm, const char *path, char *err, size_t errlen)
{
    struct state_stream *s;
    char why[400];
    int fd, ret;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ret = -errno;
        snprintf(err, errlen, "-incoming: cannot open %s: %s", path, strerror(errno));
        return ret;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    s = state_stream_new(fd, true);
    if (!s) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ret = virt_state_load(vm, s, why, sizeof(why));
    if (ret < 0)
        snprintf(err, errlen, "-incoming: %s: state refused: %s", path, why);
    if (ret == 0) /* disk locks: loaded, about to run */
        ret = virt_disks_lock(vm, err, errlen);
    state_stream_free(s);
    close(fd);
    return ret;
}

/* Everything before a ROUND marker is loaded: tell the source, which waits
 * for it before its next dirty sync (so a switchover never finds a backlog
 * of unloaded data on the way). */
static void virt_incoming_round(void *opaque, uint32_t round)
{
    struct virt_incoming *in = opaque;

    if (in->fd >= 0)
        (void)mig_msg_send(in->fd, MIG_MAGIC_REPLY, MIG_MSG_ROUND, round);
}

static void *virt_incoming_thread(void *arg)
{
    struct virt_incoming *in = arg;
    struct virt *vm = in->vm;
    struct state_stream *s = NULL;
    char why[300];
    uint32_t type;
    uint64_t value;
    int fd, ret;

    fd = mig_accept(in->lfd, -1, &in->cancel);
    if (fd < 0) {
        snprintf(in->error, sizeof(in->error), "accept: %s", strerror(-fd));
        goto fail;
    }
    in->fd = fd;
    in->start_ns = gw_now_ns();
    atomic_store(&in->status, INC_ACTIVE);
    virt_post_request(vm, VIRT_REQ_MIG);
    s = state_stream_new(fd, true);
    if (!s) {
        snprintf(in->error, sizeof(in->error), "out of memory");
        goto fail;
    }
    vm->load_round_opaque = in;
    vm->load_round_cb = virt_incoming_round;
    ret = virt_state_load(vm, s, why, sizeof(why));
    vm->load_round_cb = NULL;
    in->bytes = state_stream_offset(s);
    if (ret < 0) {
        snprintf(in->error, sizeof(in->error), "state refused: %s", why);
        (void)mig_msg_send(fd, MIG_MAGIC_REPLY, MIG_MSG_ERROR, (uint64_t)-ret);
        goto fail;
    }
    INC_TRACE(in, "loaded and verified");
    ret = virt_disks_lock(vm, why, sizeof(why)); /* disk locks: before READY (ERROR if not) */
    if (ret < 0) {
        snprintf(in->error, sizeof(in->error), "%s", why);
        (void)mig_msg_send(fd, MIG_MAGIC_REPLY, MIG_MSG_ERROR, (uint64_t)-ret);
        goto fail;
    }
    ret = mig_msg_send(fd, MIG_MAGIC_REPLY, MIG_MSG_READY, 0);
    if (ret == 0)
        ret = mig_msg_recv(fd, MIG_MAGIC_COMMIT, &type, &value, VIRT_INC_COMMIT_MS);
    INC_TRACE(in, "commit");
    if (ret == 0 && type != MIG_MSG_COMMIT)
        ret = -EPROTO;
    if (ret < 0) {
        snprintf(in->error, sizeof(in->error), "no commit from the source (%s): not running it",
                 ret == -EPIPE ? "connection closed" : strerror(-ret));
        goto fail;
    }
    in->paused_ns = value;
    state_stream_free(s);
    in->end_ns = gw_now_ns();
    atomic_store(&in->status, INC_DONE_OK);
    virt_post_request(vm, VIRT_REQ_MIG);
    return NULL;
fail:
    state_stream_free(s);
    in->end_ns = gw_now_ns();
    atomic_store(&in->status, INC_FAILED);
    virt_post_request(vm, VIRT_REQ_MIG);
    return NULL;
}

int virt_incoming_start(struct virt *vm, const char *uri, char *err, size_t errlen)
{
    struct virt_incoming *in;
    struct mig_uri u;
    int ret;

    if (mig_uri_parse(uri, true, &u, err, errlen) < 0)
        return -EINVAL;
    if (u.kind == MIG_URI_FILE)
        return virt_incoming_file(vm, u.path, err, errlen);
    if (u.kind == MIG_URI_DEFER)
        return 0; /* QMP migrate-incoming comes later */
    if (vm->inc) {
        snprintf(err, errlen, "an incoming migration is already set up");
        return -EBUSY;
    }
    in = calloc(1, sizeof(*in));
    if (!in) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    in->vm = vm;
    in->uri = u;
    in->fd = -1;
    in->reported = INC_WAITING;
    in->lfd = mig_listen(&u, err, errlen);
    if (in->lfd < 0) {
        ret = in->lfd;
        free(in);
        return ret;
    }
    ret = pthread_create(&in->thread, NULL, virt_incoming_thread, in);
    if (ret) {
        close(in->lfd);
        free(in);
        snprintf(err, errlen, "cannot start the incoming thread: %s", strerror(ret));
        return -ret;
    }
    in->thread_live = true;
    vm->inc = in;
    return 0;
}

static void virt_incoming_close(struct virt_incoming *in)
{
    if (in->thread_live) {
        pthread_join(in->thread, NULL);
        in->thread_live = false;
    }
    if (in->lfd >= 0) {
        close(in->lfd);
        if (in->uri.kind == MIG_URI_UNIX)
            unlink(in->uri.path);
        in->lfd = -1;
    }
}

void virt_incoming_poll(struct virt *vm)
{
    struct virt_incoming *in = vm->inc;
    int st;

    if (!in)
        return;
    st = atomic_load(&in->status);
    if (st == in->reported)
        return;
    if (st == INC_ACTIVE || (in->reported == INC_WAITING && st != INC_WAITING))
        if (vm->mig_params.events)
            virt_event(vm, "MIGRATION", json_pack("{s:s}", "status", "active"));
    in->reported = st;
    if (st == INC_FAILED) {
        virt_incoming_close(in);
        gw_log("incoming migration failed: %s", in->error);
        if (vm->mig_params.events)
            virt_event(vm, "MIGRATION", json_pack("{s:s}", "status", "failed"));
        if (in->fd >= 0) {
            close(in->fd);
            in->fd = -1;
        }
        virt_post_request(vm, VIRT_REQ_FAIL);
        return;
    }
    if (st != INC_DONE_OK)
        return;
    virt_incoming_close(in);
    /* the guest's clock kept counting while the source was paused: the
     * switchover is a short stall to it, not a jump back */
    clint_set_mtime(vm->clint, clint_mtime(vm->clint) + in->paused_ns / CLINT_NS_PER_TICK +
                                   (gw_now_ns() - in->end_ns) / CLINT_NS_PER_TICK);
    virt_set_runstate(vm, VIRT_RS_PAUSED);
    if (!vm->cfg.start_paused)
        virt_resume(vm);
    INC_TRACE(in, "running");
    if (in->fd >= 0) {
        (void)mig_msg_send(in->fd, MIG_MAGIC_REPLY, MIG_MSG_RUNNING, 0);
        close(in->fd);
        in->fd = -1;
    }
    if (vm->mig_params.events)
        virt_event(vm, "MIGRATION", json_pack("{s:s}", "status", "completed"));
    {
        struct virt_announce_params ap;
        char why[200];

        virt_announce_params_default(&ap);
        if (virt_announce_start(vm, &ap, why, sizeof(why)) < 0)
            gw_log("announce after the migration: %s", why);
    }
}

void virt_incoming_fini(struct virt *vm)
{
    struct virt_incoming *in = vm->inc;

    if (!in)
        return;
    atomic_store(&in->cancel, true);
    if (in->fd >= 0)
        shutdown(in->fd, SHUT_RDWR);
    virt_incoming_close(in);
    if (in->fd >= 0)
        close(in->fd);
    free(in);
    vm->inc = NULL;
}

json_t *virt_incoming_query(struct virt *vm)
{
    struct virt_incoming *in = vm->inc;
    int st;
    uint64_t end;

    if (!in)
        return json_object();
    st = atomic_load(&in->status);
    if (st == INC_WAITING)
        return json_pack("{s:s}", "status", "setup");
    end = st == INC_ACTIVE ? gw_now_ns() : in->end_ns;
    return json_pack("{s:s, s:I, s:{s:I}}", "status",
                     st == INC_ACTIVE   ? "active"
                     : st == INC_FAILED ? "failed"
                                        : "completed",
                     "total-time", (json_int_t)((end - in->start_ns) / 1000000), "ram",
                     "transferred", (json_int_t)in->bytes);
}
