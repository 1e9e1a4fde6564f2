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
 *
 * Live migration (tcp:, unix:) is pre-copy with a commit protocol
 * (migration/mig_proto.h): every populated non-zero page, then rounds of
 * the pages dirtied meanwhile (the loop collects the dirty bitmap between
 * hart slices, when no hart is mid-store: VIRT_REQ_SYNC), estimating the
 * bandwidth each round; when the rest fits the downtime limit (or after
 * VIRT_MIG_MAX_ROUNDS rounds) the machine parks, the rest and the
 * components go out, and the source waits for READY before it sends
 * COMMIT.  Until COMMIT is sent any failure resumes the source; after it
 * the source stays stopped (postmigrate) and refuses `cont`.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include "machine/virt_int.h"
#include "state/state_format.h"
#include "migration/mig_proto.h"

#define VIRT_MIG_MAX_ROUNDS 30    /* then switch over even if the rest is too big */
#define VIRT_MIG_READY_MS   60000 /* wait this long for the destination's verdict */
#define VIRT_MIG_RUNNING_MS 5000  /* and for its RUNNING after the commit */
#define VIRT_MIG_CONNECT_MS 10000
#define VIRT_MIG_ZERO_RUNS  1024 /* zero runs per STATE_SEC_ZERO section */

/* Statistics the job writes and query-migrate reads on the loop thread:
 * relaxed atomic accesses (a value may be a moment old, never torn). */
#define ST_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define ST_GET(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define ST_INC(field)    __atomic_fetch_add(&(field), 1, __ATOMIC_RELAXED)

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
    struct mig_uri uri;
    bool live; /* tcp: or unix: */
    char path[PATH_MAX];
    char tmp[PATH_MAX + 16];
    int fd;
    struct virt_mig_params params; /* as when the job started */
    /* dirty-bitmap collection (job asks, loop collects: VIRT_REQ_SYNC) */
    _Atomic bool want_sync;
    bool synced;
    uint64_t *dirty; /* the bitmap collected at the last sync */
    uint8_t *sent;   /* pages the destination holds non-zero */
    _Atomic bool committed;
    uint64_t rounds, dirty_pages_rate, expected_downtime_ms, remaining_pages;
    uint64_t run_ns; /* destination's RUNNING received (downtime end) */
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

/* Job side: a MIGRATION_PASS event (QEMU sends one per dirty-bitmap sync). */
static void virt_post_event_pass(struct virt_mig *m)
{
    pthread_mutex_lock(&m->evlock);
    if (m->evn < VIRT_MIG_EVQ)
        m->evq[m->evn++] = -(int)m->rounds;
    pthread_mutex_unlock(&m->evlock);
    virt_post_request(m->vm, VIRT_REQ_MIG);
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

/* Job side: have the loop collect the dirty bitmap into m->dirty (between
 * hart slices, so no store is half done and every hart flushes its write
 * TLB before its next store).  -ECANCELED if cancelled meanwhile. */
static int virt_mig_sync(struct virt_mig *m)
{
    struct virt *vm = m->vm;

    pthread_mutex_lock(&vm->park_lock);
    m->synced = false;
    atomic_store(&m->want_sync, true);
    pthread_mutex_unlock(&vm->park_lock);
    virt_post_request(vm, VIRT_REQ_SYNC);
    pthread_mutex_lock(&vm->park_lock);
    while (!m->synced && !atomic_load(&m->cancel))
        pthread_cond_wait(&vm->park_cond, &vm->park_lock);
    pthread_mutex_unlock(&vm->park_lock);
    ST_INC(m->rounds);
    return m->synced ? 0 : -ECANCELED;
}

/* Loop side of virt_mig_sync. */
static void virt_mig_do_sync(struct virt *vm, struct virt_mig *m)
{
    struct gmem *mem = vm->mem;
    uint64_t words = (mem->npages + 63) / 64;

    /* OR: pages collected earlier but not sent yet stay pending (the last
     * sync before the switchover adds to the previous round's set) */
    for (uint64_t w = 0; w < words; w++)
        m->dirty[w] |= atomic_exchange_explicit(&mem->dirty[w], 0, memory_order_acq_rel);
    /* harts drop their write-TLB entries before their next store, so the
     * next store to any page marks it again */
    atomic_fetch_add(&mem->dirty_gen, 1);
    pthread_mutex_lock(&vm->park_lock);
    atomic_store(&m->want_sync, false);
    m->synced = true;
    pthread_cond_broadcast(&vm->park_cond);
    pthread_mutex_unlock(&vm->park_lock);
}

/* Sleep as needed to stay under max-bandwidth (0: unlimited). */
static void virt_mig_throttle(struct virt_mig *m, uint64_t bytes, uint64_t since_ns)
{
    uint64_t bw = m->params.max_bandwidth, want_ns, now;

    if (!bw)
        return;
    want_ns = (uint64_t)((double)bytes * 1e9 / (double)bw);
    for (;;) {
        now = gw_now_ns() - since_ns;
        if (now >= want_ns || atomic_load(&m->cancel))
            return;
        usleep((useconds_t)((want_ns - now) / 1000 > 50000 ? 50000 : (want_ns - now) / 1000 + 1));
    }
}

/* The RAM sender's state for one pass over (some) pages. */
struct virt_mig_ram {
    struct state_ram_encoder enc;
    struct state_buf b;
    struct state_buf zero; /* pending STATE_SEC_ZERO runs */
    uint32_t nzero;
    uint32_t zfirst, zcount;
    uint32_t pages[STATE_RAM_BATCH];
    unsigned n;
    uint64_t t0, bytes0; /* throttle window */
};

static void virt_mig_zero_flush(struct virt_mig_ram *r, struct state_stream *s, bool final)
{
    if (r->zcount) {
        state_put_u32(&r->zero, r->zfirst);
        state_put_u32(&r->zero, r->zcount);
        r->nzero++;
        r->zcount = 0;
    }
    if (r->nzero && (final || r->nzero >= VIRT_MIG_ZERO_RUNS)) {
        struct state_buf hdr;
        uint8_t cnt[4] = {(uint8_t)r->nzero, (uint8_t)(r->nzero >> 8), (uint8_t)(r->nzero >> 16),
                          (uint8_t)(r->nzero >> 24)};

        state_buf_init(&hdr);
        state_put_bytes(&hdr, cnt, 4);
        state_put_bytes(&hdr, r->zero.data, r->zero.len);
        state_write_section(s, STATE_SEC_ZERO, NULL, 0, 1, hdr.data, hdr.len);
        state_buf_fini(&hdr);
        state_buf_reset(&r->zero);
        r->nzero = 0;
    }
}

static void virt_mig_batch_flush(struct virt_mig *m, struct virt_mig_ram *r, struct state_stream *s)
{
    if (!r->n)
        return;
    state_buf_reset(&r->b);
    state_ram_encode(&r->enc, m->vm->mem->host, r->pages, r->n, m->params.compress, &r->b);
    state_write_section(s, STATE_SEC_RAM, NULL, 0, 1, r->b.data, r->b.len);
    ST_SET(m->bytes, state_stream_offset(s));
    r->n = 0;
    virt_mig_throttle(m, m->bytes - r->bytes0, r->t0);
}

/*
 * Send pages: every populated one (dirty == NULL, the first pass) or those
 * set in dirty.  Zero pages go as data never: a zero page the destination
 * holds non-zero becomes a zero run, others are skipped.
 */
static int virt_mig_send_ram(struct virt_mig *m, struct state_stream *s, uint64_t *dirty)
{
    struct virt_mig_ram r;
    const struct gmem *mem = m->vm->mem;
    uint8_t pop[4096];
    uint64_t pop_base = UINT64_MAX;

    memset(&r, 0, sizeof(r));
    if (state_ram_encoder_init(&r.enc) < 0) {
        state_stream_fail(s, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    state_buf_init(&r.b);
    state_buf_init(&r.zero);
    r.t0 = gw_now_ns();
    r.bytes0 = state_stream_offset(s);
    for (uint64_t p = 0; p < mem->npages && !state_stream_error(s); p++) {
        const uint8_t *page = mem->host + p * GMEM_PAGE_SIZE;

        if (dirty) {
            if (!(dirty[p / 64] >> (p % 64) & 1)) {
                if (!(p % 64) && !dirty[p / 64])
                    p += 63; /* skip a clean word at once */
                continue;
            }
            dirty[p / 64] &= ~(1ull << (p % 64)); /* sent (below): no longer pending */
        } else {
            if (p - pop_base >= sizeof(pop) || pop_base == UINT64_MAX) {
                pop_base = p;
                (void)gmem_populated(
                    mem, p, mem->npages - p < sizeof(pop) ? mem->npages - p : sizeof(pop), pop);
            }
            if (!pop[p - pop_base]) {
                ST_INC(m->stats.pages_zero);
                continue;
            }
            ST_SET(m->remaining_pages, mem->npages - p); /* the first pass: what is left of it */
        }
        if (state_page_is_zero(page)) {
            ST_INC(m->stats.pages_zero);
            if (!m->sent[p])
                continue;
            m->sent[p] = 0;
            if (r.zcount && r.zfirst + r.zcount == p) {
                r.zcount++;
            } else {
                virt_mig_zero_flush(&r, s, false);
                r.zfirst = (uint32_t)p;
                r.zcount = 1;
            }
            continue;
        }
        m->sent[p] = 1;
        ST_INC(m->stats.pages_normal);
        r.pages[r.n++] = (uint32_t)p;
        if (r.n == STATE_RAM_BATCH) {
            virt_mig_batch_flush(m, &r, s);
            if (atomic_load(&m->cancel))
                state_stream_fail(s, -ECANCELED, "cancelled");
        }
    }
    virt_mig_batch_flush(m, &r, s);
    virt_mig_zero_flush(&r, s, true);
    state_buf_fini(&r.b);
    state_buf_fini(&r.zero);
    state_ram_encoder_fini(&r.enc);
    ST_SET(m->bytes, state_stream_offset(s));
    return state_stream_error(s);
}

/* GODWIT_TRACE=migration: one line per round and per switchover phase. */
static void virt_mig_trace(const struct virt_mig *m, const char *fmt, ...) gw_printf(2, 3);
static void virt_mig_trace(const struct virt_mig *m, const char *fmt, ...)
{
    va_list ap;
    char line[300];

    if (!(m->vm->cfg.trace & VIRT_TRACE_MIGRATION))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    gw_log("migration +%.3f ms: %s", (double)(gw_now_ns() - m->start_ns) / 1e6, line);
}

static uint64_t virt_mig_popcount(const uint64_t *bm, uint64_t words)
{
    uint64_t n = 0;

    for (uint64_t w = 0; w < words; w++)
        n += (uint64_t)__builtin_popcountll(bm[w]);
    return n;
}

/* Record why waiting for the destination's answer failed (ret: -errno;
 * -EREMOTEIO: it answered ERROR). */
static void virt_mig_reply_failed(struct state_stream *s, int ret)
{
    state_stream_fail(s, ret, "%s",
                    ret == -EREMOTEIO   ? "the destination refused the state (see its log)"
                    : ret == -EPIPE     ? "the destination closed the connection"
                    : ret == -ETIMEDOUT ? "no answer from the destination"
                                        : strerror(-ret));
}

/* Write a ROUND marker and wait for the destination's acknowledgement of it
 * (it has loaded everything before it).  0, or -errno with the reason in s. */
static int virt_mig_round_end(struct virt_mig *m, struct state_stream *s)
{
    uint8_t rnd[12];
    uint32_t type, round = (uint32_t)(m->rounds + 1);
    uint64_t value, left = 0;
    int ret;

    for (int i = 0; i < 4; i++)
        rnd[i] = (uint8_t)(round >> (8 * i));
    for (int i = 0; i < 8; i++)
        rnd[4 + i] = (uint8_t)(left >> (8 * i));
    state_write_section(s, STATE_SEC_ROUND, NULL, 0, 1, rnd, sizeof(rnd));
    if (state_stream_flush(s) < 0)
        return state_stream_error(s);
    for (;;) {
        ret = mig_msg_recv(m->fd, MIG_MAGIC_REPLY, &type, &value, VIRT_MIG_READY_MS);
        if (ret == 0 && type == MIG_MSG_ROUND && value == round)
            return 0;
        if (ret == 0 && type == MIG_MSG_ROUND && value < round)
            continue;
        if (ret == 0)
            ret = type == MIG_MSG_ERROR ? -EREMOTEIO : -EPROTO;
        virt_mig_reply_failed(s, ret);
        return ret;
    }
}

/* Live: pre-copy rounds, switchover, commit.  0 once COMMIT went out. */
static int virt_mig_live(struct virt_mig *m, struct state_stream *s)
{
    struct virt *vm = m->vm;
    struct state_header h = {
        .version = STATE_FORMAT_VERSION, .page_size = STATE_PAGE_SIZE, .flags = STATE_F_LIVE};
    uint64_t words = (vm->mem->npages + 63) / 64, t, bytes, round_ns, bw = 0, prev_dirty = 0;
    char *cfg = virt_state_config_text(vm);
    unsigned under = 0;
    uint32_t type;
    uint64_t value;
    int ret;

    if (!cfg) {
        state_stream_fail(s, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    h.config_hash = virt_state_config_hash(vm);
    state_write_header(s, &h);
    state_write_section(s, STATE_SEC_CONFIG, "config", 0, 1, cfg, strlen(cfg));
    free(cfg);
    /* forget what was dirtied before: the first pass sends everything */
    if (virt_mig_sync(m) < 0)
        return -ECANCELED;
    memset(m->dirty, 0, words * sizeof(uint64_t));
    t = gw_now_ns();
    bytes = state_stream_offset(s);
    ST_SET(m->expected_downtime_ms,
           m->params.downtime_limit_ms); /* what QEMU shows until it knows */
    if (virt_mig_send_ram(m, s, NULL) < 0)
        return state_stream_error(s);
    for (;;) {
        uint64_t dirty_pages, expected_ms, sync_ns;

        /* end the round and wait until the destination loaded all of it:
         * the bandwidth is then end to end, and nothing is queued up on
         * the way when the source pauses */
        ret = virt_mig_round_end(m, s);
        if (ret < 0)
            return ret;
        round_ns = gw_now_ns() - t;
        if (round_ns > 1000000 && state_stream_offset(s) > bytes)
            bw = (uint64_t)((double)(state_stream_offset(s) - bytes) * 1e9 / (double)round_ns);
        if (virt_mig_sync(m) < 0)
            return -ECANCELED;
        sync_ns = gw_now_ns();
        dirty_pages = virt_mig_popcount(m->dirty, words);
        ST_SET(m->remaining_pages, dirty_pages);
        m->dirty_pages_rate =
            round_ns ? (uint64_t)((double)dirty_pages * 1e9 / (double)round_ns) : 0;
        /* unknown bandwidth (nothing was sent): assume 1 GB/s */
        expected_ms = dirty_pages * GMEM_PAGE_SIZE * 1000 / (bw ? bw : 1000000000ull);
        ST_SET(m->expected_downtime_ms, expected_ms);
        virt_mig_trace(m,
                       "round %llu: sent %llu bytes in %.1f ms (%llu MB/s); %llu pages dirty, "
                       "expected downtime %llu ms",
                       (unsigned long long)m->rounds,
                       (unsigned long long)(state_stream_offset(s) - bytes), (double)round_ns / 1e6,
                       (unsigned long long)(bw / 1000000), (unsigned long long)dirty_pages,
                       (unsigned long long)expected_ms);
        virt_post_event_pass(m);
        if (expected_ms <= m->params.downtime_limit_ms) {
            /* It fits.  Another round is cheap while the dirty set still
             * halves: a smaller rest is a shorter pause. */
            if (expected_ms <= 2 || under >= 4 || (prev_dirty && dirty_pages * 2 > prev_dirty))
                break;
            under++;
        }
        prev_dirty = dirty_pages;
        if (m->rounds >= VIRT_MIG_MAX_ROUNDS) {
            gw_log("migration: %llu pages still dirty after %llu rounds (about %llu ms at "
                   "%llu MB/s): switching over anyway",
                   (unsigned long long)dirty_pages, (unsigned long long)m->rounds,
                   (unsigned long long)expected_ms, (unsigned long long)(bw / 1000000));
            break;
        }
        t = sync_ns;
        bytes = state_stream_offset(s);
        if (virt_mig_send_ram(m, s, m->dirty) < 0)
            return state_stream_error(s);
    }
    /* switchover: park, the last pages, the components, EOF */
    ret = virt_mig_park(m);
    if (ret < 0)
        return ret;
    ST_SET(m->park_ns, gw_now_ns());
    virt_mig_trace(m, "parked");
    virt_mig_set_status(m, MIG_ST_DEVICE);
    if (virt_mig_sync(m) < 0)
        return -ECANCELED;
    virt_mig_trace(m, "final sync: %llu pages",
                   (unsigned long long)virt_mig_popcount(m->dirty, words));
    if (virt_mig_send_ram(m, s, m->dirty) < 0)
        return state_stream_error(s);
    ST_SET(m->remaining_pages, 0);
    if (virt_state_save_components(vm, s) < 0)
        return state_stream_error(s);
    /* disk locks: flushed and handed over before the EOF, so the destination
     * can take them before it answers READY; virt_mig_finish takes them back */
    if (virt_disks_unlock(vm, m->error, sizeof(m->error)) < 0) {
        state_stream_fail(s, -EIO, "%s", m->error);
        return -EIO;
    }
    if (state_write_eof(s) < 0)
        return state_stream_error(s);
    ST_SET(m->bytes, state_stream_offset(s));
    virt_mig_trace(m, "sent everything (%llu bytes)", (unsigned long long)m->bytes);
    /* the destination's verdict */
    ret = mig_msg_recv(m->fd, MIG_MAGIC_REPLY, &type, &value, VIRT_MIG_READY_MS);
    if (ret == 0 && type == MIG_MSG_ERROR)
        ret = -EREMOTEIO;
    else if (ret == 0 && type != MIG_MSG_READY)
        ret = -EPROTO;
    if (ret < 0) {
        virt_mig_reply_failed(s, ret);
        return ret;
    }
    if (atomic_load(&m->cancel)) {
        state_stream_fail(s, -ECANCELED, "cancelled");
        return -ECANCELED;
    }
    /* the point of no return: from here the VM belongs to the destination */
    pthread_mutex_lock(&m->evlock);
    atomic_store(&m->committed, true);
    pthread_mutex_unlock(&m->evlock);
    virt_mig_trace(m, "READY");
    ret = mig_msg_send(m->fd, MIG_MAGIC_COMMIT, MIG_MSG_COMMIT, gw_now_ns() - m->park_ns);
    if (ret < 0) {
        /* The destination is gone: it cannot run without the commit; but we
         * cannot know whether it read it either, so the source stays
         * stopped: never two copies.  Management decides (docs/state.md). */
        gw_log("migration: sending the commit failed (%s): the VM stays stopped here; check "
               "the destination",
               strerror(-ret));
    } else if (mig_msg_recv(m->fd, MIG_MAGIC_REPLY, &type, &value, VIRT_MIG_RUNNING_MS) == 0 &&
               type == MIG_MSG_RUNNING) {
        ST_SET(m->run_ns, gw_now_ns());
        virt_mig_trace(m, "destination RUNNING");
    }
    return 0;
}

static void *virt_mig_thread(void *arg)
{
    struct virt_mig *m = arg;
    struct virt *vm = m->vm;
    struct state_stream *s = NULL;
    char why[300];
    int ret;

    if (m->live) {
        m->fd = mig_connect(&m->uri, VIRT_MIG_CONNECT_MS, why, sizeof(why));
        if (m->fd < 0) {
            ret = m->fd;
            m->fd = -1;
            snprintf(m->error, sizeof(m->error), "%s", why);
            goto out;
        }
    }
    ST_SET(m->setup_ns, gw_now_ns() - m->start_ns);
    if (atomic_load(&m->cancel)) { /* cancelled during setup: never active */
        ret = -ECANCELED;
        goto out;
    }
    virt_mig_set_status(m, MIG_ST_ACTIVE);
    s = state_stream_new(m->fd, false);
    if (!s) {
        snprintf(m->error, sizeof(m->error), "out of memory");
        ret = -ENOMEM;
        goto out;
    }
    if (m->live) {
        ret = virt_mig_live(m, s);
        if (ret < 0 || state_stream_error(s)) {
            if (!ret)
                ret = state_stream_error(s);
            snprintf(m->error, sizeof(m->error), "%s",
                     state_stream_msg(s)[0] ? state_stream_msg(s) : strerror(-ret));
        }
        goto out;
    }
    ret = virt_mig_park(m);
    if (ret < 0) {
        snprintf(m->error, sizeof(m->error), "cancelled");
        goto out;
    }
    ST_SET(m->park_ns, gw_now_ns());
    virt_mig_set_status(m, MIG_ST_DEVICE);
    ret = virt_state_save(vm, s, &m->stats, &m->cancel);
    ST_SET(m->bytes, state_stream_offset(s));
    if (ret == 0 && fsync(m->fd) < 0)
        state_stream_fail(s, -errno, "fsync: %s", strerror(errno));
    ret = state_stream_error(s);
    if (ret < 0) {
        snprintf(m->error, sizeof(m->error), "%.200s: %.90s", m->path, state_stream_msg(s));
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
    state_stream_free(s);
    if (m->fd >= 0) {
        pthread_mutex_lock(&m->evlock);
        close(m->fd);
        m->fd = -1;
        pthread_mutex_unlock(&m->evlock);
    }
    if (m->tmp[0])
        unlink(m->tmp);
    ST_SET(m->end_ns, gw_now_ns());
    if (atomic_load(&m->committed))
        virt_mig_set_status_final(m, MIG_ST_COMPLETED, true);
    else if (ret == 0 && !m->live)
        virt_mig_set_status_final(m, MIG_ST_COMPLETED, true);
    else if (ret == -ECANCELED || atomic_load(&m->cancel))
        virt_mig_set_status_final(m, MIG_ST_CANCELLED, true);
    else
        virt_mig_set_status_final(m, MIG_ST_FAILED, true);
    return NULL;
}

static void virt_mig_free(struct virt_mig *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->evlock);
    free(m->dirty);
    free(m->sent);
    free(m);
}

int virt_migrate_start(struct virt *vm, const char *uri, char *err, size_t errlen)
{
    struct virt_mig *m;
    struct mig_uri u;
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
    if (mig_uri_parse(uri, false, &u, err, errlen) < 0)
        return -EINVAL;
    path = u.path;
    m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->vm = vm;
    m->fd = -1;
    m->uri = u;
    m->live = u.kind != MIG_URI_FILE;
    m->params = vm->mig_params;
    if (!m->live)
        m->params.compress = true; /* a file: smaller is better, nothing waits */
    pthread_mutex_init(&m->evlock, NULL);
    snprintf(m->path, sizeof(m->path), "%s", path);
    m->start_ns = gw_now_ns();
    if (m->live) {
        m->dirty = calloc((vm->mem->npages + 63) / 64, sizeof(uint64_t));
        m->sent = calloc(vm->mem->npages, 1);
        if (!m->dirty || !m->sent) {
            virt_mig_free(m);
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    }
    /* replace the previous job's record */
    virt_mig_free(vm->mig);
    vm->mig = m;
    virt_mig_set_status(m, MIG_ST_SETUP);
    if (m->live)
        goto start;
    snprintf(m->tmp, sizeof(m->tmp), "%s.XXXXXX", path);
    m->fd = mkostemp(m->tmp, O_CLOEXEC);
    if (m->fd < 0) {
        ret = -errno;
        snprintf(err, errlen, "cannot create %s: %s", m->tmp, strerror(errno));
        snprintf(m->error, sizeof(m->error), "%s", err);
        m->tmp[0] = '\0';
        goto fail;
    }
start:
    ret = pthread_create(&m->thread, NULL, virt_mig_thread, m);
    if (ret) {
        ret = -ret;
        snprintf(err, errlen, "cannot start the migration thread: %s", strerror(-ret));
        snprintf(m->error, sizeof(m->error), "%s", err);
        if (m->fd >= 0)
            close(m->fd);
        m->fd = -1;
        if (m->tmp[0])
            unlink(m->tmp);
        goto fail;
    }
    m->thread_live = true;
    return 0;

fail:
    ST_SET(m->end_ns, gw_now_ns());
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
    if (atomic_load(&m->want_sync))
        virt_mig_do_sync(vm, m);
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
    for (unsigned i = 0; i < n && vm->mig_params.events; i++) {
        if (evs[i] < 0)
            virt_event(vm, "MIGRATION_PASS", json_pack("{s:i}", "pass", -evs[i]));
        else
            virt_event(vm, "MIGRATION",
                       json_pack("{s:s}", "status", virt_mig_status_names[evs[i]]));
    }
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
        if (atomic_load(&m->status) == MIG_ST_COMPLETED) {
            virt_set_runstate(vm, VIRT_RS_POSTMIGRATE);
            if (m->live)
                vm->migrated_away = true; /* it runs on the destination now */
        } else if (virt_disks_reclaim(vm) < 0) {
            /* disk locks: a failed handover takes them back; without them
             * the VM stays paused (cont tries again) */
            virt_set_runstate(vm, VIRT_RS_PAUSED);
        } else if (m->was_running)
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
    pthread_mutex_lock(&m->evlock);
    if (atomic_load(&m->committed)) {
        pthread_mutex_unlock(&m->evlock);
        return; /* too late: the destination owns the VM */
    }
    atomic_store(&m->cancel, true);
    if (m->live && m->fd >= 0)
        shutdown(m->fd, SHUT_RDWR); /* unblocks a send or a wait for READY */
    pthread_mutex_unlock(&m->evlock);
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
    bool done;
    uint64_t now = gw_now_ns(), end, remaining, park, run, bytes, normal, zero;
    double secs;

    if (!m)
        return vm->inc ? virt_incoming_query(vm) : json_object();
    st = atomic_load(&m->status);
    done = atomic_load(&m->done); /* after it, the job's last values are visible */
    end = done ? ST_GET(m->end_ns) : now;
    park = ST_GET(m->park_ns);
    run = ST_GET(m->run_ns);
    bytes = ST_GET(m->bytes);
    normal = ST_GET(m->stats.pages_normal);
    zero = ST_GET(m->stats.pages_zero);
    o = json_pack("{s:s}", "status", virt_mig_status_names[st]);
    if (st == MIG_ST_SETUP)
        return o;
    json_object_set_new(o, "total-time", json_integer((json_int_t)((end - m->start_ns) / 1000000)));
    json_object_set_new(o, "setup-time", json_integer((json_int_t)(ST_GET(m->setup_ns) / 1000000)));
    if (park && done) {
        /* stop -> the destination runs (its RUNNING), or -> the end */
        uint64_t stop_end = run ? run : end;
        json_object_set_new(o, "downtime", json_integer((json_int_t)((stop_end - park) / 1000000)));
    } else {
        json_object_set_new(o, "expected-downtime",
                            json_integer((json_int_t)ST_GET(m->expected_downtime_ms)));
    }
    if (done)
        remaining = 0;
    else if (m->live)
        remaining = ST_GET(m->remaining_pages) * GMEM_PAGE_SIZE;
    else
        remaining = (vm->mem->npages - normal - zero) * GMEM_PAGE_SIZE;
    secs = (double)(end - m->start_ns) / 1e9;
    ram = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I}", "transferred",
                    (json_int_t)bytes, "remaining", (json_int_t)remaining, "total",
                    (json_int_t)vm->mem->size, "duplicate", (json_int_t)zero, "normal",
                    (json_int_t)normal, "normal-bytes", (json_int_t)(normal * GMEM_PAGE_SIZE),
                    "dirty-sync-count", (json_int_t)(m->live ? ST_GET(m->rounds) : 1),
                    "dirty-pages-rate", (json_int_t)ST_GET(m->dirty_pages_rate), "mbps",
                    secs > 0 ? (double)bytes * 8 / 1e6 / secs : 0.0, "page-size",
                    (json_int_t)GMEM_PAGE_SIZE);
    json_object_set_new(o, "ram", ram);
    if (done && (st == MIG_ST_FAILED || st == MIG_ST_CANCELLED) && m->error[0])
        json_object_set_new(o, "error-desc", json_string(m->error));
    return o;
}

void virt_mig_params_default(struct virt_mig_params *p)
{
    *p = (struct virt_mig_params){
        .downtime_limit_ms = 300,      /* QEMU's DEFAULT_MIGRATE_SET_DOWNTIME */
        .max_bandwidth = 128ull << 20, /* QEMU's MAX_THROTTLE */
        .compress = false,
        .events = true, /* QEMU's default is off; godwit's clients wait on them */
    };
}
