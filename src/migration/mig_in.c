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
 *
 * A recoverable stream (STATE_F_RECOVER) that the source paused, or whose
 * connection broke before any component arrived, does not fail: the thread
 * keeps the RAM it loaded and the last CHECKPOINT it verified, closes the
 * connection and waits (x-godwit-precopy-paused) for migrate-recover to
 * name a listener; a source that connects there with a resumed stream of
 * the same SESSION is told that checkpoint (RESUME_AT) and the load goes on
 * from there.  A resume that is not this migration's is refused and the
 * thread waits for the next one; the guest never runs meanwhile.
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

enum {
    MIG_IN_WAITING,
    MIG_IN_ACTIVE,
    MIG_IN_DONE_OK,
    MIG_IN_FAILED,
    MIG_IN_PAUSED,
    MIG_IN_RECOVER
};

struct mig_in {
    struct mig_machine mm;
    struct mig_uri uri;
    pthread_t thread;
    bool thread_live;
    int lfd;  /* under lock once the thread runs (migrate-recover replaces it) */
    int port; /* tcp: the port lfd listens on (the one asked, or the one the kernel chose for 0) */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a paused thread waits for migrate-recover's listener */
    /* recoverable streams (the thread's, but pause_reason under lock) */
    bool recoverable;    /* the first stream had a SESSION */
    bool resuming;       /* the current connection must resume this migration */
    bool resume_refused; /* ... and its SESSION was refused */
    uint64_t session, attempt, ckpt;
    uint64_t bytes_base;      /* bytes received on earlier connections */
    struct mig_blk blk;       /* capability block: our images being written */
    bool netfwd;              /* the source forwards frames after COMMIT (STATE_F_NETFWD) */
    struct mig_fwd_in fwd;    /* ... which wait here for the loop */
    bool fwd_running;         /* loop: the grace period's reader runs (fd stays open) */
    _Atomic bool postcopy_ok; /* capability postcopy-ram here (may be set after -incoming) */
    bool pc_init;             /* pc below is set up */
    bool pc_flag;             /* the stream may switch to post-copy (STATE_F_POSTCOPY) */
    uint64_t *pc_bitmap;      /* COMMIT_POSTCOPY's MISSING, until gmem takes it */
    struct mig_pc_in pc;      /* post-copy: faults and the pages' reader */
    bool pc_running;          /* loop: pages still come (status postcopy-active) */
    bool pc_reader;           /* loop: the reader has not been joined */
    char pause_reason[300];   /* why it paused (query-migrate's error-desc meanwhile) */
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

    /* what the round wrote to our images goes to disk now, so the pause
     * (DISKSUM's fdatasync) has little left to write */
    for (unsigned i = 0; i < in->blk.n; i++)
        (void)fdatasync(in->blk.d[i].fd);
    (void)mig_chan_send(&ch, MIG_MAGIC_REPLY, MIG_MSG_ROUND, round);
}

/* The stream's SESSION: the first connection names the migration; a
 * resumed one must be the same migration, a later attempt.  Then RESUME_AT
 * tells its source what arrived intact. */
static int mig_in_session(void *opaque, uint64_t session, uint64_t attempt, char *err,
                          size_t errlen)
{
    struct mig_in *in = opaque;
    struct mig_chan ch = {.fd = atomic_load(&in->fd), .tls = in->tls};
    int ret;

    if (!in->resuming) {
        in->recoverable = true;
        in->session = session;
        return 0;
    }
    if (session != in->session) {
        in->resume_refused = true;
        return gw_fail(err, errlen, -EPERM,
                       "a resume of another migration (session %016llx; the paused one is "
                       "%016llx)",
                       (unsigned long long)session, (unsigned long long)in->session);
    }
    if (attempt <= in->attempt) {
        in->resume_refused = true;
        return gw_fail(err, errlen, -EPERM, "resume attempt %llu after attempt %llu (a replay?)",
                       (unsigned long long)attempt, (unsigned long long)in->attempt);
    }
    ret = mig_chan_send(&ch, MIG_MAGIC_REPLY, MIG_MSG_RESUME_AT, in->ckpt);
    if (ret < 0)
        return gw_fail(err, errlen, ret, "answering the resume: %s", strerror(-ret));
    in->attempt = attempt;
    in->resuming = false; /* from here it is the migration again */
    if (in->mm.trace)
        gw_log("incoming: resumed (attempt %llu) after checkpoint %llu",
               (unsigned long long)attempt, (unsigned long long)in->ckpt);
    atomic_store(&in->status, MIG_IN_ACTIVE);
    in->mm.ops->kick(in->mm.opaque);
    return 0;
}

static void mig_in_checkpoint(void *opaque, uint64_t seq)
{
    ((struct mig_in *)opaque)->ckpt = seq;
}

static int mig_in_disks(void *opaque, const struct state_disk *d, unsigned n, char *err,
                        size_t errlen)
{
    struct mig_in *in = opaque;

    return mig_blk_dst_disks(&in->blk, &in->mm, d, n, err, errlen);
}

static int mig_in_block(void *opaque, const struct state_blk_view *v, char *err, size_t errlen)
{
    return mig_blk_dst_block(&((struct mig_in *)opaque)->blk, v, err, errlen);
}

static int mig_in_disksum(void *opaque, const uint64_t (*sums)[2], unsigned n, char *err,
                          size_t errlen)
{
    return mig_blk_dst_sums(&((struct mig_in *)opaque)->blk, sums, n, err, errlen);
}

/* Loaded and verified: READY, then the COMMIT.  0 with in->paused_ns set,
 * or -errno with in->error set. */
static int mig_in_commit(struct mig_in *in, int fd)
{
    struct mig_chan ch = {.fd = fd, .tls = in->tls};
    uint32_t type;
    uint64_t value, since_start;
    int ret;

    if (in->mm.ready_delay_ms)
        usleep(in->mm.ready_delay_ms * 1000u);
    ret = mig_chan_send(&ch, MIG_MAGIC_REPLY, MIG_MSG_READY, 0);

    if (ret == 0)
        ret = mig_chan_recv(&ch, MIG_MAGIC_COMMIT, &type, &value, MIG_IN_COMMIT_MS);
    MIG_IN_TRACE(in, "commit");
    if (ret == 0 && type != MIG_MSG_COMMIT && !(type == MIG_MSG_COMMIT_POSTCOPY && in->pc_flag))
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
    if (type == MIG_MSG_COMMIT_POSTCOPY) {
        /* which pages are still to come: the guest runs without them */
        uint64_t npages = in->mm.mem->npages;
        uint32_t magic;
        unsigned port;
        size_t len;

        in->pc_bitmap = calloc((npages + 63) / 64, sizeof(uint64_t));
        ret = !in->pc_bitmap ? -ENOMEM
                             : mig_chan_recv_post(&ch, &magic, &type, &value, &port, NULL, &len,
                                                  in->pc_bitmap, npages, MIG_FWD_PAUSED_MS * 10);
        if (ret == 0 && (magic != MIG_MAGIC_PAGE || type != MIG_MSG_MISSING))
            ret = -EPROTO;
        if (ret < 0) {
            /* committed: the source stays stopped and this VM cannot run */
            snprintf(in->error, sizeof(in->error),
                     "post-copy: the list of missing pages did not come intact (%s)",
                     strerror(-ret));
            return ret;
        }
        MIG_IN_TRACE(in, "post-copy");
    }
    /* the frames that reached the source while it was paused follow */
    if (in->netfwd) {
        ret = mig_fwd_in_paused(&in->fwd, &ch);
        if (ret < 0)
            gw_log("incoming: the frames kept by the source did not arrive intact (%s): not "
                   "forwarding",
                   strerror(-ret));
        MIG_IN_TRACE(in, "paused frames");
    }
    if (in->mm.die_after_commit)
        _exit(9); /* a test: the destination dies after the point of no return */
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

/* Accept one connection on lfd and, with TLS, shake hands: the fd (in->fd
 * and in->tls set), or -errno with in->error set. */
static int mig_in_accept(struct mig_in *in, int lfd)
{
    unsigned idle_ms = in->mm.idle_ms ? in->mm.idle_ms : MIG_IN_IDLE_MS;
    struct timeval idle = {.tv_sec = idle_ms / 1000, .tv_usec = (idle_ms % 1000) * 1000};
    char why[300];
    int fd = mig_accept(lfd, -1, &in->cancel);

    if (fd < 0) {
        snprintf(in->error, sizeof(in->error), "accept: %s", strerror(-fd));
        return fd;
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
            return -EPROTO;
        }
        if (in->mm.trace)
            gw_log("incoming: TLS %s", mig_tls_describe(in->tls));
    }
    return fd;
}

/* This connection is over (the thread goes on with another). */
static void mig_in_drop_conn(struct mig_in *in)
{
    int fd = atomic_exchange(&in->fd, -1);

    mig_tls_free(in->tls);
    in->tls = NULL;
    if (fd >= 0)
        close(fd);
}

/* Paused: wait for migrate-recover's listener (or a cancel).  The listener
 * to accept on, or -ECANCELED. */
static int mig_in_wait_listener(struct mig_in *in, const char *why)
{
    int lfd;

    pthread_mutex_lock(&in->lock);
    snprintf(in->pause_reason, sizeof(in->pause_reason), "%s", why);
    pthread_mutex_unlock(&in->lock);
    atomic_store(&in->status, MIG_IN_PAUSED);
    in->mm.ops->kick(in->mm.opaque);
    pthread_mutex_lock(&in->lock);
    while (in->lfd < 0 && !atomic_load(&in->cancel))
        pthread_cond_wait(&in->cond, &in->lock);
    lfd = in->lfd;
    pthread_mutex_unlock(&in->lock);
    return atomic_load(&in->cancel) ? -ECANCELED : lfd;
}

static void *mig_in_thread(void *arg)
{
    struct mig_in *in = arg;
    struct state_stream *s = NULL;
    struct mig_load_hooks h = {.opaque = arg,
                               .round = mig_in_round,
                               .session = mig_in_session,
                               .checkpoint = mig_in_checkpoint,
                               .disks = mig_in_disks,
                               .block = mig_in_block,
                               .disksum = mig_in_disksum};
    char why[300], lost[200];
    int fd, lfd, ret, st = MIG_IN_FAILED;

    pthread_mutex_lock(&in->lock);
    lfd = in->lfd;
    pthread_mutex_unlock(&in->lock);
    fd = mig_in_accept(in, lfd);
    if (fd < 0)
        goto out;
    ST_SET(in->start_ns, gw_now_ns());
    atomic_store(&in->status, MIG_IN_ACTIVE);
    in->mm.ops->kick(in->mm.opaque);
    for (;;) {
        bool broken, paused;

        s = in->tls ? state_stream_new_io(&mig_tls_io, in->tls, true) : state_stream_new(fd, true);
        if (!s) {
            snprintf(in->error, sizeof(in->error), "out of memory");
            mig_in_refuse(in, fd, ENOMEM, in->error);
            goto out;
        }
        h.resume = in->resuming;
        h.postcopy_ok = atomic_load(&in->postcopy_ok);
        in->resume_refused = false;
        ret = mig_load_live(&in->mm, s, &h, why, sizeof(why));
        ST_SET(in->bytes, in->bytes_base + state_stream_offset(s));
        if (ret == 0)
            break;
        broken = ret < 0 && state_stream_broken(s);
        paused = ret == MIG_LOAD_PAUSED;
        if (!(in->resuming && ret < 0)) /* a refused resume's bytes are not the migration's */
            in->bytes_base += state_stream_offset(s);
        ST_SET(in->bytes, in->bytes_base);
        snprintf(lost, sizeof(lost), "%s", state_stream_msg(s));
        state_stream_free(s);
        s = NULL;
        if (in->resuming && ret < 0) {
            /* not this migration's resume, or not one at all: nothing of
             * it was loaded; refuse it and wait for the real source */
            gw_log("incoming: a resume was refused: %s", why);
            mig_in_refuse(in, fd, -ret, why);
            mig_in_drop_conn(in);
            snprintf(lost, sizeof(lost), "%.199s", why);
            snprintf(why, sizeof(why), "refused a resume (%.200s); still waiting for the source",
                     lost);
        } else if (in->recoverable && !h.components && (paused || broken)) {
            /* keep what arrived; the source resumes on a new connection */
            mig_in_drop_conn(in);
            pthread_mutex_lock(&in->lock);
            if (in->lfd >= 0) { /* the first listener: migrate-recover names the next */
                close(in->lfd);
                if (in->uri.kind == MIG_URI_UNIX)
                    unlink(in->uri.path);
                in->lfd = -1;
                in->port = 0;
            }
            pthread_mutex_unlock(&in->lock);
            if (paused)
                snprintf(why, sizeof(why), "paused by the source (checkpoint %llu)",
                         (unsigned long long)in->ckpt);
            else
                snprintf(why, sizeof(why), "connection lost: %.200s (checkpoint %llu)",
                         lost[0] ? lost : "closed", (unsigned long long)in->ckpt);
        } else {
            snprintf(in->error, sizeof(in->error), "state refused: %s", why);
            mig_in_refuse(in, fd, ret < 0 ? -ret : EPROTO, why);
            goto out;
        }
        if (in->mm.trace)
            gw_log("incoming: %s", why);
        for (;;) {
            lfd = mig_in_wait_listener(in, why);
            if (lfd < 0) {
                snprintf(in->error, sizeof(in->error), "cancelled while paused");
                goto out;
            }
            fd = mig_in_accept(in, lfd);
            if (fd >= 0)
                break;
            if (fd != -EPROTO || atomic_load(&in->cancel))
                goto out; /* the listener failed, or a cancel */
            /* a peer without the key (or plaintext): not our source;
             * drop it and wait on */
            gw_log("incoming: a resume connection was refused: %s", in->error);
            mig_in_drop_conn(in);
            snprintf(lost, sizeof(lost), "%.199s", in->error);
            in->error[0] = '\0';
            snprintf(why, sizeof(why),
                     "refused a resume connection (%.200s); still waiting for "
                     "the source",
                     lost);
        }
        in->resuming = true;
        atomic_store(&in->status, MIG_IN_RECOVER);
        in->mm.ops->kick(in->mm.opaque);
    }
    MIG_IN_TRACE(in, "loaded and verified");
    in->netfwd = (h.flags & STATE_F_NETFWD) && in->fwd.q;
    in->pc_flag = (h.flags & STATE_F_POSTCOPY) != 0;
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
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->cond, NULL);
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
    (void)mig_fwd_in_init(&in->fwd, mm); /* without memory: no forwarding */
    in->pc_init = mig_pc_in_init(&in->pc, mm) == 0;
    atomic_store(&in->postcopy_ok, p && p->postcopy && in->pc_init);
    ret = pthread_create(&in->thread, NULL, mig_in_thread, in);
    if (ret) {
        mig_fwd_in_fini(&in->fwd);
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

int mig_in_recover(struct mig_in *in, const char *uri, char *err, size_t errlen)
{
    struct mig_uri u;
    int st = in ? atomic_load(&in->status) : MIG_IN_FAILED, lfd;

    if (!in || (st != MIG_IN_PAUSED && st != MIG_IN_RECOVER))
        return gw_fail(err, errlen, -EINVAL,
                       "migrate-recover: no incoming migration is paused (it can only be "
                       "recovered while x-godwit-precopy-paused)");
    if (mig_uri_parse(uri, false, &u, err, errlen) < 0)
        return -EINVAL;
    if (u.kind == MIG_URI_FILE)
        return gw_fail(err, errlen, -EINVAL,
                       "migrate-recover: the source resumes over tcp: or unix:, not from a file");
    pthread_mutex_lock(&in->lock);
    if (in->lfd >= 0) {
        /* already listening (an earlier migrate-recover): the same
         * address again is a no-op (a manager retrying), another one is
         * refused: the source may be connecting to the first */
        bool same =
            u.kind == in->uri.kind &&
            (u.kind == MIG_URI_UNIX ? !strcmp(u.path, in->uri.path)
                                    : !strcmp(u.host, in->uri.host) &&
                                          (!strcmp(u.port, "0") || atoi(u.port) == in->port));
        char where[600];

        if (in->uri.kind == MIG_URI_UNIX)
            snprintf(where, sizeof(where), "unix:%s", in->uri.path);
        else
            snprintf(where, sizeof(where), "tcp:%s:%d", in->uri.host, in->port);
        pthread_mutex_unlock(&in->lock);
        if (same)
            return 0;
        return gw_fail(err, errlen, -EBUSY,
                       "migrate-recover: already listening on %s for the source's resume", where);
    }
    pthread_mutex_unlock(&in->lock);
    lfd = mig_listen(&u, err, errlen);
    if (lfd < 0)
        return lfd;
    pthread_mutex_lock(&in->lock);
    in->uri = u;
    in->lfd = lfd;
    in->port = u.kind == MIG_URI_TCP ? sock_local_port(lfd) : 0;
    atomic_store(&in->status, MIG_IN_RECOVER); /* listening for the source */
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    in->mm.ops->kick(in->mm.opaque);
    return 0;
}

/* The status the loop reports for a thread state. */
static enum mig_status mig_in_status(int st)
{
    switch (st) {
    case MIG_IN_WAITING: return MIG_ST_SETUP;
    case MIG_IN_ACTIVE: return MIG_ST_ACTIVE;
    case MIG_IN_PAUSED: return MIG_ST_PRECOPY_PAUSED;
    case MIG_IN_RECOVER: return MIG_ST_PRECOPY_RECOVER;
    case MIG_IN_FAILED: return MIG_ST_FAILED;
    default: return MIG_ST_COMPLETED;
    }
}

void mig_in_poll(struct mig_in *in)
{
    int st;
    char why[300];

    if (!in)
        return;
    if (in->pc_running) {
        if (in->netfwd)
            mig_fwd_in_deliver(&in->fwd);
        if (atomic_load(&in->pc.pages_end) && !gmem_missing_count(in->mm.mem)) {
            /* every page is here: plain memory from now on */
            (void)mig_chan_send(&in->pc.ch, MIG_MAGIC_REPLY, MIG_MSG_PAGES_DONE, 0);
            gmem_postcopy_end(in->mm.mem);
            in->pc_running = false;
            ST_SET(in->end_ns, gw_now_ns());
            MIG_IN_TRACE(in, "post-copy complete");
            in->mm.ops->status(in->mm.opaque, MIG_ST_COMPLETED, 0);
        }
    }
    if (in->pc_reader && !in->pc_running && atomic_load(&in->pc.over)) {
        mig_fwd_in_deliver(&in->fwd);
        mig_pc_in_fini(&in->pc); /* joins the reader */
        mig_in_close_fd(in);
        in->pc_reader = false;
    }
    if (in->fwd_running) {
        mig_fwd_in_deliver(&in->fwd);
        if (atomic_load(&in->fwd.over)) {
            mig_fwd_in_fini(&in->fwd); /* joins the reader */
            mig_in_close_fd(in);
            in->fwd_running = false;
        }
    }
    st = atomic_load(&in->status);
    if (st == in->reported)
        return;
    if (in->reported == MIG_IN_WAITING && st != MIG_IN_ACTIVE)
        in->mm.ops->status(in->mm.opaque, MIG_ST_ACTIVE, 0);
    in->reported = st;
    if (st == MIG_IN_ACTIVE || st == MIG_IN_PAUSED || st == MIG_IN_RECOVER) {
        in->mm.ops->status(in->mm.opaque, mig_in_status(st), 0);
        return;
    }
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
    /* post-copy: the guest runs without the pages still to come */
    if (in->pc_bitmap) {
        gmem_postcopy_begin(in->mm.mem, in->pc_bitmap, mig_pc_in_fetch, &in->pc);
        in->pc_bitmap = NULL; /* gmem's */
        in->pc.ch = (struct mig_chan){.fd = atomic_load(&in->fd), .tls = in->tls};
        in->pc_running = true;
        /* the pages' reader first: delivering a frame may already touch a
         * missing page (one reader for pages and frames; the socket stays
         * open) */
        if (mig_pc_in_start(&in->pc, in->pc.ch, in->netfwd ? &in->fwd : NULL) == 0)
            in->pc_reader = true;
        else
            gw_log("post-copy: cannot start the pages' reader: the guest will wait for them");
    }
    /* the frames the source kept while paused reach the guest first */
    mig_fwd_in_deliver(&in->fwd);
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
    if (in->pc_running) {
        in->mm.ops->status(in->mm.opaque, MIG_ST_POSTCOPY_ACTIVE, 0);
        return;
    }
    if (in->netfwd && !in->fwd.broken &&
        mig_fwd_in_start(&in->fwd, (struct mig_chan){.fd = atomic_load(&in->fd), .tls = in->tls}) ==
            0)
        in->fwd_running = true; /* the socket stays open for the grace period */
    else
        mig_in_close_fd(in);
    in->mm.ops->status(in->mm.opaque, MIG_ST_COMPLETED, 0);
}

void mig_in_set_postcopy(struct mig_in *in, bool on)
{
    if (in)
        atomic_store(&in->postcopy_ok, on && in->pc_init);
}

void mig_in_free(struct mig_in *in)
{
    int fd;

    if (!in)
        return;
    atomic_store(&in->cancel, true);
    pthread_mutex_lock(&in->lock);
    pthread_cond_broadcast(&in->cond); /* a paused thread waiting for a listener */
    pthread_mutex_unlock(&in->lock);
    fd = atomic_load(&in->fd);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    mig_in_close(in);
    mig_fwd_in_fini(&in->fwd); /* its reader ends with the socket */
    if (in->pc_init)
        mig_pc_in_fini(&in->pc); /* so does post-copy's */
    free(in->pc_bitmap);
    mig_in_close_fd(in);
    mig_tls_creds_free(in->creds);
    mig_blk_close(&in->blk);
    pthread_mutex_destroy(&in->lock);
    pthread_cond_destroy(&in->cond);
    free(in);
}

void mig_in_info(const struct mig_in *in, struct mig_info *info)
{
    int st = atomic_load(&in->status);
    uint64_t start = ST_GET(in->start_ns), end;

    memset(info, 0, sizeof(*info));
    info->status = mig_in_status(st);
    info->done = st == MIG_IN_DONE_OK || st == MIG_IN_FAILED;
    info->live = true;
    info->incoming = true;
    end = st == MIG_IN_DONE_OK || st == MIG_IN_FAILED ? ST_GET(in->end_ns) : gw_now_ns();
    info->total_ms = start && end > start ? (end - start) / 1000000 : 0;
    info->transferred = ST_GET(in->bytes);
    pthread_mutex_lock((pthread_mutex_t *)&in->lock);
    if (in->uri.kind == MIG_URI_TCP && in->port > 0) {
        snprintf(info->listen_host, sizeof(info->listen_host), "%s", in->uri.host);
        info->listen_port = in->port;
    }
    if (st == MIG_IN_PAUSED || st == MIG_IN_RECOVER)
        snprintf(info->error, sizeof(info->error), "%s", in->pause_reason);
    pthread_mutex_unlock((pthread_mutex_t *)&in->lock);
    if (st == MIG_IN_FAILED)
        snprintf(info->error, sizeof(info->error), "%s", in->error);
    if (in->netfwd)
        mig_fwd_in_info(&in->fwd, info);
    if (in->pc_flag && in->pc_init && (in->pc_running || in->pc.faults || in->pc.pages)) {
        mig_pc_in_info(&in->pc, info);
        if (in->pc_running) {
            info->status = MIG_ST_POSTCOPY_ACTIVE;
            info->done = false;
        }
    }
}
