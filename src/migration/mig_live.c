/*
 * Live migration's sender (docs/state.md, "live migration"): pre-copy with
 * a commit protocol (migration/mig_proto.h).
 *
 * Every page that holds data goes first, then rounds of the pages dirtied
 * meanwhile (the loop collects the dirty bitmap between hart slices),
 * estimating the bandwidth each round from the destination's ROUND
 * acknowledgements; when the rest fits the downtime limit (or after
 * MIG_LIVE_MAX_ROUNDS rounds) the machine parks, the rest and the
 * components go out, and the source waits for READY before it sends
 * COMMIT.  Until COMMIT is sent any failure resumes the source; when the
 * destination refused the stream, its ERROR's reason becomes the job's
 * error (mig_live_fetch_refusal).
 *
 * Recoverable jobs (x-godwit-precopy-recover; docs/state.md, "pausing and
 * resuming"): the stream carries a SESSION and a CHECKPOINT every
 * MIG_LIVE_CKPT_BYTES and at every round's end; each page sent is tagged
 * with the last checkpoint before it.  migrate-pause ends the connection
 * with a checkpoint and PAUSE; a broken link during pre-copy ends it
 * without one.  Either way the job waits (x-godwit-precopy-paused) with the
 * guest running and dirty pages collected, until migrate resume: true names
 * the destination's new listener; the destination answers which checkpoint
 * it verified last, the pages tagged at or after it are sent again with
 * every page dirtied meanwhile, and the pass that was interrupted goes on
 * where it stopped.  x-godwit-hold-switchover keeps a converged job in
 * rounds (x-godwit-held-converged) until it is lifted.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/mig_int.h"

#define MIG_LIVE_MAX_ROUNDS 30         /* then switch over even if the rest is too big */
#define MIG_LIVE_READY_MS   60000      /* wait this long for the destination's verdict */
#define MIG_LIVE_RUNNING_MS 5000       /* and for its RUNNING after the commit */
#define MIG_LIVE_REASON_MS  1000       /* after a failure: wait this long for an ERROR */
#define MIG_LIVE_CKPT_BYTES (4u << 20) /* recoverable: a CHECKPOINT at least this often */
#define MIG_LIVE_SILENT_MS  15000      /* recoverable: a link this silent is broken */
#define MIG_LIVE_HELD_MS    100        /* held-converged: rounds at least this far apart */
#define MIG_LIVE_RESUME_MS  10000      /* resume: connect and handshake within this */
#define MIG_LIVE_MIRROR_MS  250        /* mirroring: a round sends new writes this long */

/* The job's bytes on the wire, every connection's. */
static void mig_live_count(struct mig_out *j, struct state_stream *s)
{
    ST_SET(j->bytes, j->bytes_base + state_stream_offset(s));
}

/* Stop the pass: the stream failed, or migrate-pause asked. */
static bool mig_live_stop(struct mig_out *j, struct state_stream *s)
{
    return state_stream_error(s) || atomic_load(&j->want_pause);
}

static void mig_live_check_dest(const struct mig_out *j, struct state_stream *s);
static void mig_live_throttle(struct mig_out *j, uint64_t bytes, uint64_t since_ns);

/* The disks' passes ask the same (mig_block.c's callback), and keep to
 * max-bandwidth like the RAM's. */
struct mig_live_stopper {
    struct mig_out *j;
    struct state_stream *s;
    uint64_t t0, bytes0;
};

static bool mig_live_stop_cb(void *opaque)
{
    struct mig_live_stopper *st = opaque;

    mig_live_throttle(st->j, state_stream_offset(st->s) - st->bytes0, st->t0);
    if (atomic_load(&st->j->cancel))
        state_stream_fail(st->s, -ECANCELED, "cancelled");
    else
        mig_live_check_dest(st->j, st->s);
    mig_live_count(st->j, st->s);
    return mig_live_stop(st->j, st->s);
}

/* Dirty blocks (the disks' bulk first): tag for recoverable jobs.  With
 * parked set (the switchover) every one goes, whatever stop says. */
static void mig_live_send_blocks(struct mig_out *j, struct state_stream *s)
{
    struct mig_live_stopper st = {
        .j = j, .s = s, .t0 = gw_now_ns(), .bytes0 = state_stream_offset(s)};
    uint32_t tag = (uint32_t)(j->ckpt + 1);

    if (!j->blk || !j->blk->n)
        return;
    if (!j->blk->bulk_done)
        mig_blk_bulk(j->blk, s, tag, mig_live_stop_cb, &st);
    if (j->blk->bulk_done && !mig_live_stop(j, s))
        mig_blk_send_dirty(j->blk, s, tag, mig_live_stop_cb, &st);
    /* mirroring: what the guest writes meanwhile goes at once, so its
     * writes find room at the link's pace, not once a round (for up to
     * MIG_LIVE_MIRROR_MS, then the round ends as usual) */
    while (j->blk->mirror && !ST_GET(j->park_ns) && !mig_live_stop(j, s) &&
           gw_now_ns() - st.t0 < MIG_LIVE_MIRROR_MS * 1000000ull) {
        if (!mig_blk_collect(j->blk)) {
            usleep(1000);
            continue;
        }
        mig_blk_send_dirty(j->blk, s, tag, mig_live_stop_cb, &st);
    }
    mig_live_count(j, s);
}

void mig_live_sockopts(const struct mig_out *j, int fd)
{
    struct timeval tv = {.tv_sec = MIG_LIVE_SILENT_MS / 1000};
    int on = 1, idle = 5, intvl = 2, cnt = 3;
    unsigned user_timeout = MIG_LIVE_SILENT_MS; /* data unacknowledged this long: broken */

    if (!j->params.precopy_recover)
        return;
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    if (j->uri.kind == MIG_URI_TCP) {
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
    }
}

/* Sleep as needed to stay under max-bandwidth (0: unlimited).  Not once
 * parked: the guest stands still until the rest is over, and the limit
 * protects the network from pre-copy's long stream, not from the short
 * final one (QEMU's completion is not rate-limited either). */
static void mig_live_throttle(struct mig_out *j, uint64_t bytes, uint64_t since_ns)
{
    uint64_t bw = ST_GET(j->params.max_bandwidth), want_ns, now;

    if (!bw || ST_GET(j->park_ns))
        return;
    want_ns = (uint64_t)((double)bytes * 1e9 / (double)bw);
    for (;;) {
        now = gw_now_ns() - since_ns;
        if (now >= want_ns || atomic_load(&j->cancel))
            return;
        usleep((useconds_t)((want_ns - now) / 1000 > 50000 ? 50000 : (want_ns - now) / 1000 + 1));
    }
}

/* The RAM sender's state for one pass over (some) pages. */
struct mig_live_ram {
    struct mig_out *j;
    struct state_stream *s;
    struct state_ram_encoder enc;
    struct state_buf b;
    struct state_zero_encoder zero; /* pages that became zero: ZERO runs */
    uint32_t pages[STATE_RAM_BATCH];
    unsigned n;
    uint64_t t0, bytes0; /* throttle window */
};

/* Whether the destination spoke during a pass: it answers nothing
 * between ROUND acknowledgements unless it refused the stream (ERROR) or
 * went away.  Then stop at once (fail s): the failure path reads its
 * reason.  A peek tells a reply from a close or a reset. */
static void mig_live_check_dest(const struct mig_out *j, struct state_stream *s)
{
    struct pollfd p = {.fd = j->fd, .events = POLLIN};
    char c;
    ssize_t n;

    if (poll(&p, 1, 0) <= 0)
        return;
    n = recv(j->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        state_stream_fail(s, -EPIPE, "the destination answered in the middle of the stream");
    else if (n == 0)
        state_stream_fail(s, -EPIPE, "the destination closed the connection");
    else if (errno != EAGAIN && errno != EINTR)
        state_stream_fail(s, -errno, "read: %s", strerror(errno));
}

/* Recoverable: a CHECKPOINT (the zero runs before it written first, so
 * every page tagged before it went out before it). */
static void mig_live_checkpoint(struct mig_out *j, struct state_stream *s,
                                struct state_zero_encoder *zero)
{
    if (!j->params.precopy_recover || state_stream_error(s))
        return;
    if (zero)
        state_zero_flush(zero, s);
    state_write_checkpoint(s, ++j->ckpt);
    j->ckpt_at = state_stream_offset(s);
}

static void mig_live_batch_flush(struct mig_live_ram *r)
{
    struct mig_out *j = r->j;

    if (!r->n)
        return;
    state_buf_reset(&r->b);
    state_ram_encode(&r->enc, j->mm.mem->host, r->pages, r->n, j->params.compress, &r->b);
    state_write_section(r->s, STATE_SEC_RAM, NULL, 0, 1, r->b.data, r->b.len);
    if (j->params.precopy_recover && state_stream_offset(r->s) - j->ckpt_at >= MIG_LIVE_CKPT_BYTES)
        mig_live_checkpoint(j, r->s, &r->zero);
    mig_live_count(j, r->s);
    r->n = 0;
    mig_live_throttle(j, state_stream_offset(r->s) - r->bytes0, r->t0);
    if (atomic_load(&j->cancel))
        state_stream_fail(r->s, -ECANCELED, "cancelled");
    else
        mig_live_check_dest(j, r->s);
}

/* Queue page p (it holds data) for sending. */
static void mig_live_page(struct mig_live_ram *r, uint64_t p)
{
    r->j->sent[p] = 1;
    if (r->j->tag)
        r->j->tag[p] = (uint32_t)(r->j->ckpt + 1);
    ST_INC(r->j->pages_normal);
    r->pages[r->n++] = (uint32_t)p;
    if (r->n == STATE_RAM_BATCH)
        mig_live_batch_flush(r);
}

/* The first pass: every page that holds data (the one gmem walk, in
 * j->it: a paused job goes on from where it stopped).  true once done. */
static bool mig_live_pass_all(struct mig_live_ram *r)
{
    struct mig_out *j = r->j;
    uint64_t p, npages = j->mm.mem->npages;

    while (!mig_live_stop(j, r->s)) {
        p = gmem_page_iter_next(&j->it);
        if (p == UINT64_MAX) {
            ST_SET(j->pages_zero, npages - ST_GET(j->pages_normal));
            return true;
        }
        ST_SET(j->remaining_pages, npages - p);
        mig_live_page(r, p);
        ST_SET(j->pages_zero, j->it.next - ST_GET(j->pages_normal));
    }
    return false;
}

/* A later pass: the pages set in dirty (cleared as they go out). */
static void mig_live_pass_dirty(struct mig_live_ram *r, uint64_t *dirty)
{
    struct mig_out *j = r->j;
    uint64_t npages = j->mm.mem->npages;

    for (uint64_t p = 0; p < npages && !mig_live_stop(j, r->s); p++) {
        if (!(dirty[p / 64] >> (p % 64) & 1)) {
            if (!(p % 64) && !dirty[p / 64])
                p += 63; /* skip a clean word at once */
            continue;
        }
        dirty[p / 64] &= ~(1ull << (p % 64)); /* sent (below): no longer pending */
        if (gmem_page_is_zero(j->mm.mem->host + p * GMEM_PAGE_SIZE)) {
            ST_INC(j->pages_zero);
            if (j->sent[p]) { /* the destination holds it non-zero: clear it there */
                j->sent[p] = 0;
                if (j->tag)
                    j->tag[p] = (uint32_t)(j->ckpt + 1);
                state_zero_add(&r->zero, r->s, (uint32_t)p);
            }
            continue;
        }
        mig_live_page(r, p);
    }
}

/* Send every page that holds data (dirty == NULL) or those set in dirty. */
static int mig_live_send_ram(struct mig_out *j, struct state_stream *s, uint64_t *dirty)
{
    struct mig_live_ram r;

    memset(&r, 0, sizeof(r));
    r.j = j;
    r.s = s;
    if (state_ram_encoder_init(&r.enc) < 0) {
        state_stream_fail(s, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    state_buf_init(&r.b);
    state_zero_encoder_init(&r.zero);
    r.t0 = gw_now_ns();
    r.bytes0 = state_stream_offset(s);
    if (dirty)
        mig_live_pass_dirty(&r, dirty);
    else if (mig_live_pass_all(&r))
        j->first_pass = false;
    mig_live_batch_flush(&r);
    state_zero_flush(&r.zero, s);
    state_buf_fini(&r.b);
    state_zero_encoder_fini(&r.zero);
    state_ram_encoder_fini(&r.enc);
    mig_live_count(j, s);
    return state_stream_error(s);
}

static uint64_t mig_live_popcount(const uint64_t *bm, uint64_t words)
{
    uint64_t n = 0;

    for (uint64_t w = 0; w < words; w++)
        n += (uint64_t)__builtin_popcountll(bm[w]);
    return n;
}

/* The destination answered ERROR (value): read its reason. */
static void mig_live_refused(struct mig_out *j, uint64_t value)
{
    struct mig_chan ch = mig_out_chan(j);
    int ret = mig_chan_recv_reason(&ch, value, j->reason, sizeof(j->reason), MIG_LIVE_REASON_MS);

    j->refused = true;
    j->refused_errno = mig_msg_error_errno(value);
    if (ret < 0) {
        j->reason[0] = '\0';
        mig_out_trace(j, "ERROR's reason unreadable: %s", strerror(-ret));
    }
}

void mig_live_fetch_refusal(struct mig_out *j)
{
    struct mig_chan ch = mig_out_chan(j);
    uint64_t deadline = gw_now_ns() + MIG_LIVE_REASON_MS * 1000000ull, now, value;
    uint32_t type;

    if (j->fd < 0 || j->refused)
        return;
    while ((now = gw_now_ns()) < deadline) {
        if (mig_chan_recv(&ch, MIG_MAGIC_REPLY, &type, &value,
                          (int)((deadline - now) / 1000000ull) + 1) < 0)
            return;
        if (type == MIG_MSG_ERROR) {
            mig_live_refused(j, value);
            return;
        }
        if (type != MIG_MSG_ROUND)
            return;
    }
}

/* Record why waiting for the destination's answer failed (ret: -errno;
 * -EREMOTEIO: it answered ERROR of this value). */
static void mig_live_reply_failed(struct mig_out *j, struct state_stream *s, int ret,
                                  uint64_t value)
{
    if (ret == -EREMOTEIO)
        mig_live_refused(j, value);
    state_stream_fail(s, ret, "%s",
                      ret == -EREMOTEIO   ? "the destination refused the state (see its log)"
                      : ret == -EPIPE     ? "the destination closed the connection"
                      : ret == -ETIMEDOUT ? "no answer from the destination"
                                          : strerror(-ret));
}

/* Write a ROUND marker and wait for the destination's acknowledgement of it
 * (it has loaded everything before it).  0, or -errno with the reason in s. */
static int mig_live_round_end(struct mig_out *j, struct state_stream *s)
{
    uint32_t type, round = (uint32_t)(ST_GET(j->rounds) + 1);
    struct mig_chan ch = mig_out_chan(j);
    uint64_t value;
    int ret;

    mig_live_checkpoint(j, s, NULL);
    state_write_round(s, round);
    if (state_stream_flush(s) < 0)
        return state_stream_error(s);
    for (;;) {
        ret = mig_chan_recv(&ch, MIG_MAGIC_REPLY, &type, &value,
                            j->params.precopy_recover ? MIG_LIVE_SILENT_MS : MIG_LIVE_READY_MS);
        if (ret == 0 && type == MIG_MSG_ROUND && value == round)
            return 0;
        if (ret == 0 && type == MIG_MSG_ROUND && value < round)
            continue;
        if (ret == 0)
            ret = type == MIG_MSG_ERROR ? -EREMOTEIO : -EPROTO;
        mig_live_reply_failed(j, s, ret, value);
        return ret;
    }
}

/* One pre-copy round's figures. */
struct mig_live_round {
    uint64_t t, bytes, bw, prev_dirty;
    unsigned under;       /* rounds that already fitted the downtime limit */
    uint64_t base_rounds; /* MIG_LIVE_MAX_ROUNDS counts from here (the last hold) */
    bool held;            /* the status says x-godwit-held-converged */
    unsigned noconv;      /* post-copy auto: rounds in a row the dirty set did not halve */
};

/* Held-converged: wait out the rest of MIG_LIVE_HELD_MS since the round
 * began, unless the hold lifts, or a pause or a cancel comes. */
static void mig_live_held_wait(struct mig_out *j, uint64_t since)
{
    uint64_t until = since + MIG_LIVE_HELD_MS * 1000000ull, now;

    pthread_mutex_lock(&j->lock);
    while (atomic_load(&j->hold) && !atomic_load(&j->want_pause) && !atomic_load(&j->cancel) &&
           (now = gw_now_ns()) < until) {
        struct timespec ts;
        uint64_t left = until - now;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(left / 1000000000ull);
        ts.tv_nsec += (long)(left % 1000000000ull);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->cond, &j->lock, &ts);
    }
    pthread_mutex_unlock(&j->lock);
}

/*
 * Active mirroring: once the bulk is done, when a round's dirty blocks are
 * still 40 % or more of the round before's (more than 16), bound what may
 * be dirty and unsent to half the downtime limit's worth at the measured
 * bandwidth (at least 16 blocks) beyond the backlog of the moment, whose
 * allowance shrinks as it is sent (mig_blk_mirror): a guest write then
 * waits for room, the guest's disk runs at the link's pace, and the rest
 * shrinks.
 */
static void mig_live_mirror_check(struct mig_out *j, struct mig_live_round *rd, uint64_t dirty)
{
    struct mig_blk *k = j->blk;
    uint64_t limit;

    /* a dirty set that shrinks by less than 60 % a round would take more
     * rounds than mirroring does to converge */
    if (dirty > 16 && k->prev_dirty && dirty * 10 >= k->prev_dirty * 4)
        k->stuck++;
    else
        k->stuck = 0;
    k->prev_dirty = dirty;
    if (k->stuck < 1)
        return;
    limit = (rd->bw ? rd->bw : 100000000ull) * ST_GET(j->params.downtime_limit_ms) / 1000 / 2 /
            STATE_BLK_SIZE;
    if (limit < 16)
        limit = 16;
    mig_blk_mirror(k, limit);
    gw_log("migration: the disks' dirty blocks stopped shrinking (%llu): active mirroring, at "
           "most %llu blocks (%llu MiB) dirty and unsent",
           (unsigned long long)dirty, (unsigned long long)limit,
           (unsigned long long)(limit * STATE_BLK_SIZE >> 20));
}

/*
 * After a round: collect the dirty set and decide.  1: switch over now;
 * 0: another round; -errno on failure.
 */
static int mig_live_decide(struct mig_out *j, struct state_stream *s, struct mig_live_round *rd)
{
    uint64_t words = (j->mm.mem->npages + 63) / 64, round_ns, dirty_pages, expected_ms;
    uint64_t dirty_blocks = 0;
    int ret;

    /* end the round and wait until the destination loaded all of it: the
     * bandwidth is then end to end, and nothing is queued up on the way
     * when the source pauses */
    ret = mig_live_round_end(j, s);
    if (ret < 0)
        return ret;
    round_ns = gw_now_ns() - rd->t;
    if (round_ns > 1000000 && state_stream_offset(s) > rd->bytes)
        rd->bw = (uint64_t)((double)(state_stream_offset(s) - rd->bytes) * 1e9 / (double)round_ns);
    if (mig_out_sync(j) < 0)
        return -ECANCELED;
    dirty_pages = mig_live_popcount(j->dirty, words);
    ST_SET(j->remaining_pages, dirty_pages);
    ST_SET(j->dirty_pages_rate,
           round_ns ? (uint64_t)((double)dirty_pages * 1e9 / (double)round_ns) : 0);
    /* ---- throttling (auto-converge, dirty-limit; mig_throttle.h): QEMU's
     * rule looks at every sync; the run loop applies what it decides ---- */
    mig_out_throttle_sync(j, dirty_pages * GMEM_PAGE_SIZE, state_stream_offset(s) - rd->bytes);
    if (j->blk && j->blk->n) {
        dirty_blocks = mig_blk_collect(j->blk);
        /* what the guest dirtied this round (not the backlog) */
        ST_SET(j->blk->dirty_rate, round_ns ? (uint64_t)((double)j->blk->last_new * STATE_BLK_SIZE *
                                                         1e9 / (double)round_ns)
                                            : 0);
    }
    /* unknown bandwidth (nothing was sent): assume 1 GB/s */
    expected_ms = (dirty_pages * GMEM_PAGE_SIZE + dirty_blocks * STATE_BLK_SIZE) * 1000 /
                  (rd->bw ? rd->bw : 1000000000ull);
    if (j->blk && !j->blk->bulk_done)
        expected_ms = UINT64_MAX / 2; /* the disks' bulk comes first */
    else if (j->blk && j->blk->n && !j->blk->mirror)
        mig_live_mirror_check(j, rd, dirty_blocks);
    ST_SET(j->expected_downtime_ms, expected_ms);
    mig_out_trace(j,
                  "round %llu: sent %llu bytes in %.1f ms (%llu MB/s); %llu pages dirty, "
                  "expected downtime %llu ms",
                  (unsigned long long)ST_GET(j->rounds),
                  (unsigned long long)(state_stream_offset(s) - rd->bytes), (double)round_ns / 1e6,
                  (unsigned long long)(rd->bw / 1000000), (unsigned long long)dirty_pages,
                  (unsigned long long)expected_ms);
    mig_out_post_pass(j);
    if (atomic_load(&j->hold)) {
        /* x-godwit-hold-switchover: converge, keep the destination in
         * sync, never switch over */
        bool fits = expected_ms <= ST_GET(j->params.downtime_limit_ms);

        if (fits != rd->held) {
            rd->held = fits;
            mig_out_set_status(j, fits ? MIG_ST_HELD_CONVERGED : MIG_ST_ACTIVE);
        }
        rd->under = 0;
        rd->prev_dirty = dirty_pages;
        rd->base_rounds = ST_GET(j->rounds);
        if (fits)
            mig_live_held_wait(j, rd->t);
        rd->t = gw_now_ns();
        rd->bytes = state_stream_offset(s);
        return 0;
    }
    /* post-copy: asked for (migrate-start-postcopy), or by itself
     * (x-godwit-postcopy-auto) once the dirty set stops halving twice
     * while the rest does not fit the downtime limit */
    if (j->params.postcopy && atomic_load(&j->want_postcopy) && !j->first_pass)
        return 2;
    if (j->params.postcopy && j->params.postcopy_auto &&
        expected_ms > ST_GET(j->params.downtime_limit_ms)) {
        rd->noconv = rd->prev_dirty && dirty_pages * 2 > rd->prev_dirty ? rd->noconv + 1 : 0;
        if (rd->noconv >= 2) {
            mig_out_trace(j, "not converging: switching to post-copy");
            return 2;
        }
    }
    if (rd->held) { /* the hold was lifted: switch over when the rest fits */
        rd->held = false;
        mig_out_set_status(j, MIG_ST_ACTIVE);
    }
    if (expected_ms <= ST_GET(j->params.downtime_limit_ms)) {
        /* It fits.  Another round is cheap while the dirty set still
         * halves: a smaller rest is a shorter pause. */
        if (expected_ms <= 2 || rd->under >= 4 ||
            (rd->prev_dirty && dirty_pages * 2 > rd->prev_dirty))
            return 1;
        rd->under++;
    }
    rd->prev_dirty = dirty_pages;
    if (ST_GET(j->rounds) - rd->base_rounds >= MIG_LIVE_MAX_ROUNDS && j->params.postcopy &&
        j->params.postcopy_auto)
        return 2;
    if (ST_GET(j->rounds) - rd->base_rounds >= MIG_LIVE_MAX_ROUNDS) {
        gw_log("migration: %llu pages still dirty after %llu rounds (about %llu ms at "
               "%llu MB/s): switching over anyway",
               (unsigned long long)dirty_pages, (unsigned long long)ST_GET(j->rounds),
               (unsigned long long)expected_ms, (unsigned long long)(rd->bw / 1000000));
        return 1;
    }
    rd->t = gw_now_ns();
    rd->bytes = state_stream_offset(s);
    return 0;
}

/* Parked: the last pages (post-copy: the list of those the destination
 * lacks, sent after the commit), the components, EOF, and the destination's
 * verdict. */
static int mig_live_switchover(struct mig_out *j, struct state_stream *s, bool postcopy)
{
    uint64_t words = (j->mm.mem->npages + 63) / 64, value;
    struct mig_chan ch = mig_out_chan(j);
    uint32_t type;
    char why[300];
    int ret;

    if (j->blk && j->blk->mirror) /* a write waiting for room completes as the devices park */
        mig_blk_mirror(j->blk, 0);
    ret = mig_out_park(j);
    if (ret < 0)
        return ret;
    ST_SET(j->park_ns, gw_now_ns());
    mig_out_trace(j, "parked");
    mig_out_set_status(j, MIG_ST_DEVICE);
    if (mig_out_sync(j) < 0)
        return -ECANCELED;
    mig_out_trace(j, "final sync: %llu pages",
                  (unsigned long long)mig_live_popcount(j->dirty, words));
    if (postcopy) {
        /* the dirty pages, and every page the first pass has not looked at
         * yet, come after the commit, on demand first */
        j->pc_missing = calloc(words, sizeof(uint64_t));
        if (!j->pc_missing) {
            state_stream_fail(s, -ENOMEM, "out of memory");
            return -ENOMEM;
        }
        memcpy(j->pc_missing, j->dirty, words * sizeof(uint64_t));
        if (j->first_pass)
            for (uint64_t p = j->it.next; p < j->mm.mem->npages; p++)
                j->pc_missing[p / 64] |= 1ull << (p % 64);
        j->postcopy = true;
        mig_out_trace(j, "post-copy: %llu pages to follow",
                      (unsigned long long)mig_live_popcount(j->pc_missing, words));
    } else if (mig_live_send_ram(j, s, j->dirty) < 0)
        return state_stream_error(s);
    ST_SET(j->remaining_pages, 0);
    if (j->blk && j->blk->n) {
        /* the disks are quiet: the last dirty blocks, then their digests */
        mig_out_trace(j, "final blocks: %llu", (unsigned long long)mig_blk_collect(j->blk));
        mig_live_send_blocks(j, s);
        if (state_stream_error(s) || mig_blk_write_sums(j->blk, s) < 0)
            return state_stream_error(s);
        ST_SET(j->blk->remaining, 0);
    }
    if (j->mm.ops->save_components(j->mm.opaque, s) < 0)
        return state_stream_error(s);
    /* shared storage: the destination takes the images over; with the
     * disks in the stream it has its own, and ours stay locked here */
    if (!j->blk && j->mm.ops->handover && j->mm.ops->handover(j->mm.opaque, why, sizeof(why)) < 0) {
        state_stream_fail(s, -EIO, "%s", why);
        return -EIO;
    }
    if (state_write_eof(s) < 0 || state_stream_flush(s) < 0)
        return state_stream_error(s);
    mig_live_count(j, s);
    mig_out_trace(j, "sent everything (%llu bytes)", (unsigned long long)ST_GET(j->bytes));
    /* frames for the VM keep arriving: keep them while the destination loads */
    ret = j->fwd ? mig_fwd_wait(j->fwd, &j->mm, &ch, MIG_LIVE_READY_MS) : 1;
    if (ret == 0)
        ret = -ETIMEDOUT;
    if (ret > 0)
        ret = mig_chan_recv(&ch, MIG_MAGIC_REPLY, &type, &value, MIG_LIVE_READY_MS);
    if (ret == 0 && type == MIG_MSG_ERROR)
        ret = -EREMOTEIO;
    else if (ret == 0 && type != MIG_MSG_READY)
        ret = -EPROTO;
    if (ret < 0)
        mig_live_reply_failed(j, s, ret, value);
    return ret;
}

/* READY came: the point of no return.  From here the VM belongs to the
 * destination, unless a cancel got in first. */
static int mig_live_commit(struct mig_out *j, struct state_stream *s)
{
    struct mig_chan ch = mig_out_chan(j);
    uint64_t words = (j->mm.mem->npages + 63) / 64;
    uint32_t type;
    uint64_t value, commit_ns;
    int ret;

    pthread_mutex_lock(&j->lock);
    if (atomic_load(&j->cancel)) {
        pthread_mutex_unlock(&j->lock);
        state_stream_fail(s, -ECANCELED, "cancelled");
        return -ECANCELED;
    }
    atomic_store(&j->committed, true);
    pthread_mutex_unlock(&j->lock);
    mig_out_trace(j, "READY");
    if (j->fwd)
        mig_fwd_drain(j->fwd, &j->mm, &ch);
    commit_ns = gw_now_ns();
    ret =
        mig_chan_send(&ch, MIG_MAGIC_COMMIT, j->postcopy ? MIG_MSG_COMMIT_POSTCOPY : MIG_MSG_COMMIT,
                      commit_ns - j->park_ns);
    if (ret == 0 && j->postcopy)
        ret = mig_chan_send_missing(&ch, j->pc_missing, j->mm.mem->npages);
    if (ret < 0) {
        /* The destination is gone: it cannot run without the commit; but we
         * cannot know whether it read it either, so the source stays
         * stopped: never two copies.  Management decides (docs/state.md). */
        gw_log("migration: sending the commit failed (%s): the VM stays stopped here; check "
               "the destination",
               strerror(-ret));
        return 0;
    }
    /* the frames that came while paused, right behind the commit */
    if (j->fwd && mig_fwd_send_paused(j->fwd, &ch) == 0)
        mig_out_trace(j, "forwarded %llu frames kept while paused",
                      (unsigned long long)ST_GET(j->fwd->forwarded));
    ret = j->fwd ? mig_fwd_wait(j->fwd, &j->mm, &ch, MIG_LIVE_RUNNING_MS) : 1;
    if (ret > 0 && mig_chan_recv(&ch, MIG_MAGIC_REPLY, &type, &value, MIG_LIVE_RUNNING_MS) == 0 &&
        type == MIG_MSG_RUNNING) {
        ST_SET(j->run_ns, gw_now_ns());
        mig_out_trace(j, "destination RUNNING");
    }
    if (j->postcopy) {
        mig_out_set_status(j, MIG_ST_POSTCOPY_ACTIVE);
        ret = mig_pc_serve(j, &ch);
        if (ret < 0) {
            /* no way back: the VM ran there; without recovery it is lost */
            gw_log("migration: post-copy broke off (%s) with %llu pages not delivered: the "
                   "VM cannot go on anywhere",
                   strerror(-ret), (unsigned long long)mig_live_popcount(j->pc_missing, words));
            snprintf(j->error, sizeof(j->error), "post-copy broke off: %s", strerror(-ret));
            j->pc_failed = true;
            return 0;
        }
    }
    if (j->fwd) {
        /* done for everyone else; the frames that still come here go on */
        mig_out_handback(j);
        mig_fwd_grace(j->fwd, &j->mm, &ch, commit_ns);
        mig_out_trace(j, "grace period over after %llu ms: %llu frames forwarded in all",
                      (unsigned long long)ST_GET(j->fwd->grace_ms),
                      (unsigned long long)ST_GET(j->fwd->forwarded));
    }
    return 0;
}

/* ---- pausing and resuming (recoverable jobs) ---------------------------------------- */

/* Close this connection: its stream, TLS session and socket. */
static void mig_live_close(struct mig_out *j, struct state_stream **sp)
{
    if (*sp) {
        j->bytes_base += state_stream_offset(*sp);
        state_stream_free(*sp);
        *sp = NULL;
    }
    ST_SET(j->bytes, j->bytes_base);
    pthread_mutex_lock(&j->lock);
    mig_tls_free(j->tls);
    j->tls = NULL;
    if (j->fd >= 0)
        close(j->fd);
    j->fd = -1;
    pthread_mutex_unlock(&j->lock);
}

/* migrate-pause: a checkpoint, PAUSE, and the end of this connection once
 * the destination has read it (it closes; at most MIG_LIVE_REASON_MS).
 * Our close must not reset the connection before then: a reset can throw
 * away what the destination has not read yet. */
static void mig_live_end_paused(struct mig_out *j, struct state_stream *s)
{
    char buf[4096];
    uint64_t deadline = gw_now_ns() + MIG_LIVE_REASON_MS * 1000000ull, now;

    mig_live_checkpoint(j, s, NULL);
    state_write_pause(s);
    if (state_stream_flush(s) < 0)
        return;
    mig_live_count(j, s);
    mig_out_trace(j, "PAUSE sent after checkpoint %llu", (unsigned long long)j->ckpt);
    (void)shutdown(j->fd, SHUT_WR);
    while ((now = gw_now_ns()) < deadline) {
        struct pollfd p = {.fd = j->fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, (int)((deadline - now) / 1000000ull) + 1) <= 0)
            break;
        n = recv(j->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            break;
    }
}

/* A failure during pre-copy: wait for a resume rather than fail?  Only a
 * recoverable job, not cancelled, whose destination did not refuse the
 * stream (its ERROR, if one comes within MIG_LIVE_REASON_MS, says so). */
static bool mig_live_recoverable(struct mig_out *j, int ret)
{
    if (!j->params.precopy_recover || atomic_load(&j->cancel) || ret == -ECANCELED ||
        ret == -EREMOTEIO || ret == -ENOMEM || j->refused)
        return false;
    if (j->fd >= 0)
        mig_live_fetch_refusal(j);
    return !j->refused;
}

/* The destination's answer to a resume: RESUME_AT its last verified
 * checkpoint, or ERROR with its reason.  0 with *ckpt, or -errno. */
static int mig_live_resume_answer(struct mig_out *j, uint64_t *ckpt, char *err, size_t errlen)
{
    struct mig_chan ch = mig_out_chan(j);
    uint32_t type;
    uint64_t value;
    char reason[MIG_REASON_MAX + 1];
    int ret = mig_chan_recv(&ch, MIG_MAGIC_REPLY, &type, &value, MIG_LIVE_RESUME_MS);

    if (ret < 0)
        return gw_fail(err, errlen, ret, "no answer to the resume from the destination (%s)",
                       ret == -EPIPE ? "connection closed" : strerror(-ret));
    if (type == MIG_MSG_ERROR) {
        if (mig_chan_recv_reason(&ch, value, reason, sizeof(reason), MIG_LIVE_REASON_MS) < 0 ||
            !reason[0])
            snprintf(reason, sizeof(reason), "%s", strerror(mig_msg_error_errno(value)));
        return gw_fail(err, errlen, -EREMOTEIO, "the destination refused the resume: %s", reason);
    }
    if (type != MIG_MSG_RESUME_AT)
        return gw_fail(err, errlen, -EPROTO, "the destination answered the resume with message %u",
                       type);
    if (value > j->ckpt)
        return gw_fail(err, errlen, -EPROTO,
                       "the destination claims checkpoint %llu; only %llu were sent",
                       (unsigned long long)value, (unsigned long long)j->ckpt);
    *ckpt = value;
    return 0;
}

/* What the destination may lack: every page sent after its checkpoint
 * goes again (it may hold that page non-zero: a zero one is cleared). */
static void mig_live_redirty(struct mig_out *j, uint64_t ckpt)
{
    uint64_t n = 0;

    for (uint64_t p = 0; p < j->mm.mem->npages; p++) {
        if (j->tag[p] > ckpt) {
            j->dirty[p / 64] |= 1ull << (p % 64);
            j->sent[p] = 1;
            n++;
        }
    }
    if (j->blk)
        ST_SET(j->resent, ST_GET(j->resent) + mig_blk_redirty(j->blk, ckpt) * STATE_BLK_SIZE);
    ST_SET(j->resent, ST_GET(j->resent) + n * GMEM_PAGE_SIZE);
    mig_out_trace(j, "resume: destination verified checkpoint %llu of %llu: %llu pages again",
                  (unsigned long long)ckpt, (unsigned long long)j->ckpt, (unsigned long long)n);
}

/* Connect to the destination's recover listener and shake hands: header,
 * configuration, SESSION (this migration, the next attempt), its answer.
 * 0 with *sp the new stream, or -errno with a reason. */
static int mig_live_reconnect(struct mig_out *j, struct state_stream **sp, const struct mig_uri *u,
                              char *err, size_t errlen)
{
    struct state_stream *s;
    uint64_t ckpt = 0;
    int fd, ret;

    fd = mig_connect(u, MIG_LIVE_RESUME_MS, err, errlen);
    if (fd < 0)
        return fd;
    mig_live_sockopts(j, fd);
    pthread_mutex_lock(&j->lock);
    if (atomic_load(&j->cancel)) {
        pthread_mutex_unlock(&j->lock);
        close(fd);
        return -ECANCELED;
    }
    j->fd = fd; /* a cancel shuts it down from here */
    pthread_mutex_unlock(&j->lock);
    if (j->creds) {
        struct mig_tls *tls = mig_tls_open(j->creds, fd, MIG_TLS_HANDSHAKE_MS, err, errlen);

        if (!tls) {
            mig_live_close(j, sp);
            return -EPROTO;
        }
        pthread_mutex_lock(&j->lock);
        j->tls = tls;
        pthread_mutex_unlock(&j->lock);
    }
    s = j->tls ? state_stream_new_io(&mig_tls_io, j->tls, false) : state_stream_new(fd, false);
    if (!s) {
        mig_live_close(j, sp);
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    }
    *sp = s;
    j->attempt++;
    if (mig_write_start(&j->mm, s,
                        STATE_F_LIVE | STATE_F_RECOVER | STATE_F_RESUME |
                            (j->fwd ? STATE_F_NETFWD : 0)) < 0 ||
        state_write_session(s, j->session, j->attempt) < 0 ||
        (j->blk && mig_blk_write_disks(j->blk, s) < 0) || state_stream_flush(s) < 0) {
        ret = gw_fail(err, errlen, state_stream_error(s), "%s", state_stream_msg(s));
        mig_live_close(j, sp);
        return ret;
    }
    ret = mig_live_resume_answer(j, &ckpt, err, errlen);
    if (ret < 0) {
        mig_live_close(j, sp);
        return ret;
    }
    mig_live_redirty(j, ckpt);
    j->ckpt_at = state_stream_offset(s);
    mig_live_count(j, s);
    return 0;
}

/* Paused (why): no connection, the guest runs, dirty pages are collected
 * at the next round.  Wait for migrate resume: true (or a cancel) and
 * reconnect; a failed attempt waits again.  0 with *sp the new stream. */
static int mig_live_paused(struct mig_out *j, struct state_stream **sp, const char *why)
{
    char err[MIG_ERROR_DESC_LEN - 40];
    struct mig_uri u;
    int ret;

    mig_live_close(j, sp);
    atomic_store(&j->want_pause, false);
    if (j->blk && j->blk->mirror) {
        /* nothing is sent while paused: the guest's writes must not wait
         * for room (mirroring starts again if the blocks do not shrink) */
        mig_blk_mirror(j->blk, 0);
        j->blk->stuck = j->blk->prev_dirty = 0;
    }
    pthread_mutex_lock(&j->lock);
    snprintf(j->pause_reason, sizeof(j->pause_reason), "%s", why);
    j->want_resume = false;
    pthread_mutex_unlock(&j->lock);
    gw_log("migration paused (%s): the VM runs on here; 'migrate' with resume: true goes on", why);
    mig_out_set_status(j, MIG_ST_PRECOPY_PAUSED);
    for (;;) {
        pthread_mutex_lock(&j->lock);
        while (!j->want_resume && !atomic_load(&j->cancel))
            pthread_cond_wait(&j->cond, &j->lock);
        u = j->resume_uri;
        pthread_mutex_unlock(&j->lock);
        if (atomic_load(&j->cancel))
            return -ECANCELED;
        mig_out_set_status(j, MIG_ST_PRECOPY_RECOVER);
        ret = mig_live_reconnect(j, sp, &u, err, sizeof(err));
        pthread_mutex_lock(&j->lock);
        j->want_resume = false;
        if (ret < 0)
            snprintf(j->pause_reason, sizeof(j->pause_reason), "resume failed: %s", err);
        else
            j->pause_reason[0] = '\0';
        pthread_mutex_unlock(&j->lock);
        if (ret == 0) {
            ST_INC(j->recoveries);
            mig_out_set_status(j, MIG_ST_ACTIVE);
            gw_log("migration resumed (attempt %llu)", (unsigned long long)j->attempt);
            return 0;
        }
        if (atomic_load(&j->cancel))
            return -ECANCELED;
        gw_log("migration: resume failed: %s", err);
        mig_out_set_status(j, MIG_ST_PRECOPY_PAUSED);
    }
}

/* Pre-copy until the rest fits the downtime limit (1), a pause is asked
 * (0, want_pause) or something fails (-errno). */
static int mig_live_precopy(struct mig_out *j, struct state_stream *s, struct mig_live_round *rd)
{
    int ret;

    for (;;) {
        if (mig_live_send_ram(j, s, j->first_pass ? NULL : j->dirty) < 0)
            return state_stream_error(s);
        if (!atomic_load(&j->want_pause))
            mig_live_send_blocks(j, s);
        if (state_stream_error(s))
            return state_stream_error(s);
        if (atomic_load(&j->want_pause))
            return 0;
        ret = mig_live_decide(j, s, rd);
        if (ret != 0)
            return ret;
        if (atomic_load(&j->want_pause))
            return 0;
    }
}

int mig_live_run(struct mig_out *j, struct state_stream **sp)
{
    uint64_t words = (j->mm.mem->npages + 63) / 64;
    uint32_t flags = STATE_F_LIVE;
    struct mig_live_round rd = {0};
    char why[MIG_ERROR_DESC_LEN - 40];
    int ret;

    if (j->params.precopy_recover) {
        flags |= STATE_F_RECOVER;
        while (!j->session)
            if (getrandom(&j->session, sizeof(j->session), 0) != sizeof(j->session))
                j->session = gw_now_ns() ^ ((uint64_t)getpid() << 32);
    }
    if (j->params.block) {
        struct mig_blk *k = calloc(1, sizeof(*k));

        if (!k || mig_blk_src_open(k, &j->mm, j->params.precopy_recover, why, sizeof(why)) < 0) {
            state_stream_fail(*sp, -EIO, "%s", k ? why : "out of memory");
            if (k)
                mig_blk_close(k);
            free(k);
            return -EIO;
        }
        if (!k->n) {
            gw_log("migration: capability block, but the VM has no writable disk: RAM only");
            mig_blk_close(k);
            free(k);
        } else {
            pthread_mutex_lock(&j->lock);
            j->blk = k; /* the loop attaches its devices at the first sync */
            pthread_mutex_unlock(&j->lock);
        }
    }
    if (j->params.postcopy)
        flags |= STATE_F_POSTCOPY;
    if (j->params.net_forward) {
        struct mig_fwd *f = mig_fwd_new(&j->mm);

        pthread_mutex_lock(&j->lock);
        j->fwd = f; /* NULL: no port to forward from */
        pthread_mutex_unlock(&j->lock);
        if (f)
            flags |= STATE_F_NETFWD;
    }
    if (mig_write_start(&j->mm, *sp, flags) < 0 ||
        (j->session && state_write_session(*sp, j->session, 0) < 0) ||
        (j->blk && mig_blk_write_disks(j->blk, *sp) < 0))
        return state_stream_error(*sp);
    /* forget what was dirtied before: the first pass sends everything */
    if (mig_out_sync(j) < 0)
        return -ECANCELED;
    memset(j->dirty, 0, words * sizeof(uint64_t));
    j->first_pass = true;
    gmem_page_iter_init(&j->it, j->mm.mem);
    rd.t = gw_now_ns();
    rd.bytes = state_stream_offset(*sp);
    ST_SET(j->expected_downtime_ms, j->params.downtime_limit_ms); /* QEMU's until it knows */
    for (;;) {
        ret = mig_live_precopy(j, *sp, &rd);
        if (ret == 1 || ret == 2)
            break;
        if (ret == 0 && atomic_load(&j->want_pause)) {
            mig_live_end_paused(j, *sp);
            snprintf(why, sizeof(why), "paused by migrate-pause");
        } else {
            if (ret == 0)
                ret = -EIO;
            if (!mig_live_recoverable(j, ret))
                return ret;
            snprintf(why, sizeof(why), "connection lost: %s",
                     state_stream_msg(*sp)[0] ? state_stream_msg(*sp) : strerror(-ret));
        }
        mig_out_trace(j, "%s", why);
        ret = mig_live_paused(j, sp, why);
        if (ret < 0)
            return ret;
        rd.t = gw_now_ns();
        rd.bytes = 0;
        rd.under = 0;
        rd.prev_dirty = 0;
        rd.held = false;
    }
    ret = mig_live_switchover(j, *sp, ret == 2);
    if (ret < 0)
        return ret;
    return mig_live_commit(j, *sp);
}
