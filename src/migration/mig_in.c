/*
 * The destination side of a migration (migration.h, docs/state.md).
 *
 * A state file loads before the machine runs.  For tcp: and unix: a thread
 * listens, accepts one connection and loads the stream as it arrives (RAM
 * straight into guest memory, components as their sections come; the run
 * loop touches no device meanwhile).  Once the EOF checksum matched and
 * every component loaded, the thread answers READY and waits for the
 * source's COMMIT; only then does the loop let the machine run
 * (ops->incoming_done).  Any failure (a refused stream, a closed or silent
 * connection, no commit in time) is reported with ops->incoming_failed
 * before the guest ran.  Every wait is bounded once a source connected.
 * A refused stream is answered with ERROR and the reason, and the rest of
 * the stream is drained for a moment so the source gets to read it
 * (mig_in_refuse).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/sock.h"
#include "migration/mig_int.h" /* ST_SET/ST_GET */
#include "migration/mig_proto.h"
#include "migration/mig_tls.h"
#include "migration/migration.h"

#define MIG_IN_COMMIT_MS 60000 /* wait this long for the commit after READY */
#define MIG_IN_IDLE_MS   30000 /* a source that sends nothing this long is gone */
#define MIG_IN_DRAIN_MS  2000  /* after ERROR: read and drop the stream this long */

/* GODWIT_TRACE=migration on the destination. */
#define MIG_IN_TRACE(in, what)                                                                     \
    do {                                                                                           \
        if ((in)->mm.trace)                                                                        \
            gw_log("incoming +%.3f ms: %s", (double)(gw_now_ns() - (in)->start_ns) / 1e6, what);   \
    } while (0)

enum { MIG_IN_WAITING, MIG_IN_ACTIVE, MIG_IN_DONE_OK, MIG_IN_FAILED };

struct mig_in {
    struct mig_machine mm;
    struct mig_uri uri;
    pthread_t thread;
    bool thread_live;
    int lfd;
    int port; /* tcp: the port lfd listens on (the one asked, or the one the kernel chose for 0) */
    _Atomic int fd;
    struct mig_tls_creds *creds; /* TLS: the server's keys (else NULL) */
    struct mig_tls *tls;         /* the session over fd, set before status ACTIVE */
    _Atomic bool cancel;
    _Atomic int status; /* MIG_IN_* */
    int reported;       /* last status reported (loop thread) */
    /* written by the thread before the status that publishes them; the
     * loop's query reads them with relaxed atomics */
    uint64_t paused_ns; /* from the commit */
    uint64_t start_ns, end_ns, bytes;
    char error[400];
};

/* Open a state file: only a regular file, never blocking in open(). */
static int mig_in_open_file(const char *path, char *err, size_t errlen)
{
    char why[400];
    int fd = gw_open_checked(path, O_RDONLY, 0, GW_OPEN_REG, why, sizeof(why));

    if (fd < 0) {
        snprintf(err, errlen, "-incoming: %s", why);
        return fd;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return fd;
}

int mig_in_load_file(const struct mig_machine *mm, const char *path, char *err, size_t errlen)
{
    struct state_stream *s;
    char why[400];
    int fd, ret;

    fd = mig_in_open_file(path, err, errlen);
    if (fd < 0)
        return fd;
    s = state_stream_new(fd, true);
    if (!s) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ret = mig_load(mm, s, NULL, NULL, why, sizeof(why));
    if (ret < 0)
        snprintf(err, errlen, "-incoming: %s: state refused: %s", path, why);
    state_stream_free(s);
    close(fd);
    return ret;
}

/* Everything before a ROUND marker is loaded: tell the source, which waits
 * for it before its next dirty sync (so a switchover never finds a backlog
 * of unloaded data on the way). */
static void mig_in_round(void *opaque, uint32_t round)
{
    struct mig_in *in = opaque;

    struct mig_chan ch = {.fd = atomic_load(&in->fd), .tls = in->tls};

    (void)mig_chan_send(&ch, MIG_MAGIC_REPLY, MIG_MSG_ROUND, round);
}

/* Loaded and verified: READY, then the COMMIT.  0 with in->paused_ns set,
 * or -errno with in->error set. */
static int mig_in_commit(struct mig_in *in, int fd)
{
    struct mig_chan ch = {.fd = fd, .tls = in->tls};
    uint32_t type;
    uint64_t value, since_start;
    int ret = mig_chan_send(&ch, MIG_MAGIC_REPLY, MIG_MSG_READY, 0);

    if (ret == 0)
        ret = mig_chan_recv(&ch, MIG_MAGIC_COMMIT, &type, &value, MIG_IN_COMMIT_MS);
    MIG_IN_TRACE(in, "commit");
    if (ret == 0 && type != MIG_MSG_COMMIT)
        ret = -EPROTO;
    /* The source paused after this connection began: a longer pause is a
     * corrupt or hostile message, and would move the guest's clock. */
    since_start = gw_now_ns() - in->start_ns;
    if (ret == 0 && value > since_start) {
        snprintf(in->error, sizeof(in->error),
                 "the commit claims a pause of %llu ms, longer than the migration (%llu ms): "
                 "not running it",
                 (unsigned long long)(value / 1000000),
                 (unsigned long long)(since_start / 1000000));
        return -EPROTO;
    }
    if (ret < 0) {
        snprintf(in->error, sizeof(in->error), "no commit from the source (%s): not running it",
                 ret == -EPIPE ? "connection closed" : strerror(-ret));
        return ret;
    }
    in->paused_ns = value;
    return 0;
}

/*
 * Refuse the migration: ERROR with the reason, then no more writes, and
 * read and drop what the source still sends until it closes (at most
 * MIG_IN_DRAIN_MS).  Closing with its stream unread would make our TCP
 * answer with a reset, and a reset can throw the ERROR away in the
 * source's stack before the source has read it.  With TLS the ERROR goes
 * over the session; the records that follow are dropped undecrypted.
 */
static void mig_in_refuse(struct mig_in *in, int fd, int errnum, const char *reason)
{
    uint64_t deadline = gw_now_ns() + MIG_IN_DRAIN_MS * 1000000ull, dropped = 0;
    char buf[65536];

    if (mig_chan_send_error(&(struct mig_chan){.fd = fd, .tls = in->tls}, errnum, reason) < 0)
        return; /* the source is gone: nothing to wait for */
    (void)shutdown(fd, SHUT_WR);
    while (!atomic_load(&in->cancel)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t now = gw_now_ns();
        ssize_t n;
        int r;

        if (now >= deadline)
            break;
        r = poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break; /* the source closed (or reset): it has read the ERROR or never will */
        dropped += (uint64_t)n;
    }
    if (in->mm.trace)
        gw_log("incoming: ERROR sent, then dropped %llu bytes of the stream",
               (unsigned long long)dropped);
}

static void *mig_in_thread(void *arg)
{
    struct mig_in *in = arg;
    struct state_stream *s = NULL;
    unsigned idle_ms = in->mm.idle_ms ? in->mm.idle_ms : MIG_IN_IDLE_MS;
    struct timeval idle = {.tv_sec = idle_ms / 1000, .tv_usec = (idle_ms % 1000) * 1000};
    char why[300];
    int fd, ret, st = MIG_IN_FAILED;

    fd = mig_accept(in->lfd, -1, &in->cancel);
    if (fd < 0) {
        snprintf(in->error, sizeof(in->error), "accept: %s", strerror(-fd));
        goto out;
    }
    /* a source that goes quiet must not hold us in inmigrate forever */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &idle, sizeof(idle));
    atomic_store(&in->fd, fd);
    if (in->creds) {
        /* nothing from a peer that does not hold the key reaches the loader */
        in->tls = mig_tls_open(in->creds, fd, MIG_TLS_HANDSHAKE_MS, why, sizeof(why));
        if (!in->tls) {
            snprintf(in->error, sizeof(in->error), "%s", why);
            goto out;
        }
        if (in->mm.trace)
            gw_log("incoming: TLS %s", mig_tls_describe(in->tls));
    }
    ST_SET(in->start_ns, gw_now_ns());
    atomic_store(&in->status, MIG_IN_ACTIVE);
    in->mm.ops->kick(in->mm.opaque);
    s = in->tls ? state_stream_new_io(&mig_tls_io, in->tls, true) : state_stream_new(fd, true);
    if (!s) {
        snprintf(in->error, sizeof(in->error), "out of memory");
        mig_in_refuse(in, fd, ENOMEM, in->error);
        goto out;
    }
    ret = mig_load(&in->mm, s, mig_in_round, in, why, sizeof(why));
    ST_SET(in->bytes, state_stream_offset(s));
    if (ret < 0) {
        snprintf(in->error, sizeof(in->error), "state refused: %s", why);
        mig_in_refuse(in, fd, -ret, why);
        goto out;
    }
    MIG_IN_TRACE(in, "loaded and verified");
    if (mig_in_commit(in, fd) == 0)
        st = MIG_IN_DONE_OK;
out:
    state_stream_free(s);
    ST_SET(in->end_ns, gw_now_ns());
    atomic_store(&in->status, st);
    in->mm.ops->kick(in->mm.opaque);
    return NULL;
}

int mig_in_start(struct mig_in **inp, const struct mig_machine *mm, const char *uri,
                 const struct mig_params *p, char *err, size_t errlen)
{
    struct mig_in *in;
    struct mig_uri u;
    int ret;

    *inp = NULL;
    if (mig_uri_parse(uri, false, &u, err, errlen) < 0)
        return -EINVAL;
    if (u.kind == MIG_URI_FILE) {
        snprintf(err, errlen, "a file: URI loads at once, it does not listen");
        return -EINVAL;
    }
    in = calloc(1, sizeof(*in));
    if (!in) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    in->mm = *mm;
    in->uri = u;
    atomic_store(&in->fd, -1);
    in->reported = MIG_IN_WAITING;
    if (p && p->tls_dir[0]) {
        in->creds = mig_tls_creds_load(p->tls_dir, true, err, errlen);
        if (!in->creds) {
            free(in);
            return -EINVAL;
        }
    }
    in->lfd = mig_listen(&u, err, errlen);
    if (in->lfd < 0) {
        ret = in->lfd;
        mig_tls_creds_free(in->creds);
        free(in);
        return ret;
    }
    if (u.kind == MIG_URI_TCP)
        in->port = sock_local_port(in->lfd);
    ret = pthread_create(&in->thread, NULL, mig_in_thread, in);
    if (ret) {
        close(in->lfd);
        mig_tls_creds_free(in->creds);
        free(in);
        snprintf(err, errlen, "cannot start the incoming thread: %s", strerror(ret));
        return -ret;
    }
    in->thread_live = true;
    *inp = in;
    return 0;
}

/* Join the thread and stop listening. */
static void mig_in_close(struct mig_in *in)
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

static void mig_in_close_fd(struct mig_in *in)
{
    int fd = atomic_exchange(&in->fd, -1);

    mig_tls_free(in->tls); /* the thread that used it has been joined */
    in->tls = NULL;
    if (fd >= 0)
        close(fd);
}

void mig_in_poll(struct mig_in *in)
{
    int st;
    char why[300];

    if (!in)
        return;
    st = atomic_load(&in->status);
    if (st == in->reported)
        return;
    if (in->reported == MIG_IN_WAITING)
        in->mm.ops->status(in->mm.opaque, MIG_ST_ACTIVE, 0);
    in->reported = st;
    if (st == MIG_IN_FAILED) {
        mig_in_close(in);
        mig_in_close_fd(in);
        in->mm.ops->status(in->mm.opaque, MIG_ST_FAILED, 0);
        in->mm.ops->incoming_failed(in->mm.opaque, in->error);
        return;
    }
    if (st != MIG_IN_DONE_OK)
        return;
    mig_in_close(in);
    /* the guest's clock kept counting while the source was paused, and
     * while the commit travelled here */
    if (in->mm.ops->incoming_done(in->mm.opaque, in->paused_ns + (gw_now_ns() - in->end_ns), why,
                                  sizeof(why)) < 0) {
        snprintf(in->error, sizeof(in->error), "%s", why);
        mig_in_close_fd(in);
        in->mm.ops->status(in->mm.opaque, MIG_ST_FAILED, 0);
        in->mm.ops->incoming_failed(in->mm.opaque, in->error);
        return;
    }
    MIG_IN_TRACE(in, "running");
    (void)mig_chan_send(&(struct mig_chan){.fd = atomic_load(&in->fd), .tls = in->tls},
                        MIG_MAGIC_REPLY, MIG_MSG_RUNNING, 0);
    mig_in_close_fd(in);
    in->mm.ops->status(in->mm.opaque, MIG_ST_COMPLETED, 0);
}

void mig_in_free(struct mig_in *in)
{
    int fd;

    if (!in)
        return;
    atomic_store(&in->cancel, true);
    fd = atomic_load(&in->fd);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    mig_in_close(in);
    mig_in_close_fd(in);
    mig_tls_creds_free(in->creds);
    free(in);
}

void mig_in_info(const struct mig_in *in, struct mig_info *info)
{
    int st = atomic_load(&in->status);
    uint64_t start = ST_GET(in->start_ns), end;

    memset(info, 0, sizeof(*info));
    info->status = st == MIG_IN_WAITING  ? MIG_ST_SETUP
                   : st == MIG_IN_ACTIVE ? MIG_ST_ACTIVE
                   : st == MIG_IN_FAILED ? MIG_ST_FAILED
                                         : MIG_ST_COMPLETED;
    info->done = st == MIG_IN_DONE_OK || st == MIG_IN_FAILED;
    info->live = true;
    info->incoming = true;
    end = st == MIG_IN_ACTIVE ? gw_now_ns() : ST_GET(in->end_ns);
    info->total_ms = start && end > start ? (end - start) / 1000000 : 0;
    info->transferred = ST_GET(in->bytes);
    if (in->uri.kind == MIG_URI_TCP && in->port > 0) {
        snprintf(info->listen_host, sizeof(info->listen_host), "%s", in->uri.host);
        info->listen_port = in->port;
    }
    if (st == MIG_IN_FAILED)
        snprintf(info->error, sizeof(info->error), "%s", in->error);
}
