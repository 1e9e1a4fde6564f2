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
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migration/mig_int.h"

#define MIG_LIVE_MAX_ROUNDS 30    /* then switch over even if the rest is too big */
#define MIG_LIVE_READY_MS   60000 /* wait this long for the destination's verdict */
#define MIG_LIVE_RUNNING_MS 5000  /* and for its RUNNING after the commit */
#define MIG_LIVE_REASON_MS  1000  /* after a failure: wait this long for an ERROR */

/* Sleep as needed to stay under max-bandwidth (0: unlimited). */
static void mig_live_throttle(struct mig_out *j, uint64_t bytes, uint64_t since_ns)
{
    uint64_t bw = j->params.max_bandwidth, want_ns, now;

    if (!bw)
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

static void mig_live_batch_flush(struct mig_live_ram *r)
{
    struct mig_out *j = r->j;

    if (!r->n)
        return;
    state_buf_reset(&r->b);
    state_ram_encode(&r->enc, j->mm.mem->host, r->pages, r->n, j->params.compress, &r->b);
    state_write_section(r->s, STATE_SEC_RAM, NULL, 0, 1, r->b.data, r->b.len);
    ST_SET(j->bytes, state_stream_offset(r->s));
    r->n = 0;
    mig_live_throttle(j, ST_GET(j->bytes) - r->bytes0, r->t0);
    if (atomic_load(&j->cancel))
        state_stream_fail(r->s, -ECANCELED, "cancelled");
    else
        mig_live_check_dest(j, r->s);
}

/* Queue page p (it holds data) for sending. */
static void mig_live_page(struct mig_live_ram *r, uint64_t p)
{
    r->j->sent[p] = 1;
    ST_INC(r->j->pages_normal);
    r->pages[r->n++] = (uint32_t)p;
    if (r->n == STATE_RAM_BATCH)
        mig_live_batch_flush(r);
}

/* The first pass: every page that holds data (the one gmem walk). */
static void mig_live_pass_all(struct mig_live_ram *r)
{
    struct mig_out *j = r->j;
    struct gmem_page_iter it;
    uint64_t p, npages = j->mm.mem->npages, normal0 = ST_GET(j->pages_normal);

    gmem_page_iter_init(&it, j->mm.mem);
    while (!state_stream_error(r->s) && (p = gmem_page_iter_next(&it)) != UINT64_MAX) {
        ST_SET(j->remaining_pages, npages - p);
        mig_live_page(r, p);
        ST_SET(j->pages_zero, it.next - (ST_GET(j->pages_normal) - normal0));
    }
    ST_SET(j->pages_zero, npages - (ST_GET(j->pages_normal) - normal0));
}

/* A later pass: the pages set in dirty (cleared as they go out). */
static void mig_live_pass_dirty(struct mig_live_ram *r, uint64_t *dirty)
{
    struct mig_out *j = r->j;
    uint64_t npages = j->mm.mem->npages;

    for (uint64_t p = 0; p < npages && !state_stream_error(r->s); p++) {
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
    else
        mig_live_pass_all(&r);
    mig_live_batch_flush(&r);
    state_zero_flush(&r.zero, s);
    state_buf_fini(&r.b);
    state_zero_encoder_fini(&r.zero);
    state_ram_encoder_fini(&r.enc);
    ST_SET(j->bytes, state_stream_offset(s));
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

    state_write_round(s, round);
    if (state_stream_flush(s) < 0)
        return state_stream_error(s);
    for (;;) {
        ret = mig_chan_recv(&ch, MIG_MAGIC_REPLY, &type, &value, MIG_LIVE_READY_MS);
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
    unsigned under; /* rounds that already fitted the downtime limit */
};

/*
 * After a round: collect the dirty set and decide.  1: switch over now;
 * 0: another round; -errno on failure.
 */
static int mig_live_decide(struct mig_out *j, struct state_stream *s, struct mig_live_round *rd)
{
    uint64_t words = (j->mm.mem->npages + 63) / 64, round_ns, dirty_pages, expected_ms;
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
    /* unknown bandwidth (nothing was sent): assume 1 GB/s */
    expected_ms = dirty_pages * GMEM_PAGE_SIZE * 1000 / (rd->bw ? rd->bw : 1000000000ull);
    ST_SET(j->expected_downtime_ms, expected_ms);
    mig_out_trace(j,
                  "round %llu: sent %llu bytes in %.1f ms (%llu MB/s); %llu pages dirty, "
                  "expected downtime %llu ms",
                  (unsigned long long)ST_GET(j->rounds),
                  (unsigned long long)(state_stream_offset(s) - rd->bytes), (double)round_ns / 1e6,
                  (unsigned long long)(rd->bw / 1000000), (unsigned long long)dirty_pages,
                  (unsigned long long)expected_ms);
    mig_out_post_pass(j);
    if (expected_ms <= j->params.downtime_limit_ms) {
        /* It fits.  Another round is cheap while the dirty set still
         * halves: a smaller rest is a shorter pause. */
        if (expected_ms <= 2 || rd->under >= 4 ||
            (rd->prev_dirty && dirty_pages * 2 > rd->prev_dirty))
            return 1;
        rd->under++;
    }
    rd->prev_dirty = dirty_pages;
    if (ST_GET(j->rounds) >= MIG_LIVE_MAX_ROUNDS) {
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

/* Parked: the last pages, the components, EOF, and the destination's verdict. */
static int mig_live_switchover(struct mig_out *j, struct state_stream *s)
{
    uint64_t words = (j->mm.mem->npages + 63) / 64, value;
    struct mig_chan ch = mig_out_chan(j);
    uint32_t type;
    char why[300];
    int ret;

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
    if (mig_live_send_ram(j, s, j->dirty) < 0)
        return state_stream_error(s);
    ST_SET(j->remaining_pages, 0);
    if (j->mm.ops->save_components(j->mm.opaque, s) < 0)
        return state_stream_error(s);
    if (j->mm.ops->handover && j->mm.ops->handover(j->mm.opaque, why, sizeof(why)) < 0) {
        state_stream_fail(s, -EIO, "%s", why);
        return -EIO;
    }
    if (state_write_eof(s) < 0 || state_stream_flush(s) < 0)
        return state_stream_error(s);
    ST_SET(j->bytes, state_stream_offset(s));
    mig_out_trace(j, "sent everything (%llu bytes)", (unsigned long long)ST_GET(j->bytes));
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
    uint32_t type;
    uint64_t value;
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
    ret = mig_chan_send(&ch, MIG_MAGIC_COMMIT, MIG_MSG_COMMIT, gw_now_ns() - j->park_ns);
    if (ret < 0) {
        /* The destination is gone: it cannot run without the commit; but we
         * cannot know whether it read it either, so the source stays
         * stopped: never two copies.  Management decides (docs/state.md). */
        gw_log("migration: sending the commit failed (%s): the VM stays stopped here; check "
               "the destination",
               strerror(-ret));
    } else if (mig_chan_recv(&ch, MIG_MAGIC_REPLY, &type, &value, MIG_LIVE_RUNNING_MS) == 0 &&
               type == MIG_MSG_RUNNING) {
        ST_SET(j->run_ns, gw_now_ns());
        mig_out_trace(j, "destination RUNNING");
    }
    return 0;
}

int mig_live_run(struct mig_out *j, struct state_stream *s)
{
    uint64_t words = (j->mm.mem->npages + 63) / 64;
    struct mig_live_round rd = {0};
    int ret;

    if (mig_write_start(&j->mm, s, STATE_F_LIVE) < 0)
        return state_stream_error(s);
    /* forget what was dirtied before: the first pass sends everything */
    if (mig_out_sync(j) < 0)
        return -ECANCELED;
    memset(j->dirty, 0, words * sizeof(uint64_t));
    rd.t = gw_now_ns();
    rd.bytes = state_stream_offset(s);
    ST_SET(j->expected_downtime_ms, j->params.downtime_limit_ms); /* QEMU's until it knows */
    if (mig_live_send_ram(j, s, NULL) < 0)
        return state_stream_error(s);
    while ((ret = mig_live_decide(j, s, &rd)) == 0)
        if (mig_live_send_ram(j, s, j->dirty) < 0)
            return state_stream_error(s);
    if (ret < 0)
        return ret;
    ret = mig_live_switchover(j, s);
    if (ret < 0)
        return ret;
    return mig_live_commit(j, s);
}
