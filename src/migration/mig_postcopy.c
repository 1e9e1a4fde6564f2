/*
 * Post-copy (capability postcopy-ram; docs/state.md, "Post-copy"): after
 * COMMIT_POSTCOPY and MISSING the destination runs, and this side sends the
 * pages it lacks: the ones it asks for at once (a hart or a device waits
 * for them), the rest in the background from the last one asked for
 * onwards (what a guest touches next tends to lie near what it touched
 * last), a few pages per write so a request never waits long behind them.
 * Frames that reach the VM's ports meanwhile are forwarded as in the grace
 * period (mig_netfwd.c).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>

#include "migration/mig_int.h"
#include "migration/mig_tls.h"

#define MIG_PC_BATCH   16    /* background pages per write */
#define MIG_PC_DONE_MS 60000 /* after PAGES_END: wait this long for PAGES_DONE */
#define MIG_PC_MSG_MS  1000  /* a message that began arrives within this */
/* background pages in the socket's send queue, at most: a page asked for
 * waits behind no more than this (one socket carries both; head-of-line) */
#define MIG_PC_INFLIGHT (256u << 10)

struct mig_pc {
    struct mig_out *j;
    const struct mig_chan *ch;
    uint8_t *buf; /* MIG_PC_BATCH encoded pages */
    size_t len;
    uint64_t cursor, left, npages;
    bool done;
};

static bool mig_pc_missing(const struct mig_pc *pc, uint64_t p)
{
    return pc->j->pc_missing[p / 64] >> (p % 64) & 1;
}

/* Page p into the batch (a zero page as PAGE_ZERO), its bit cleared. */
static void mig_pc_add(struct mig_pc *pc, uint64_t p)
{
    struct mig_out *j = pc->j;
    const uint8_t *data = j->mm.mem->host + p * GMEM_PAGE_SIZE;

    j->pc_missing[p / 64] &= ~(1ull << (p % 64));
    pc->left--;
    if (gmem_page_is_zero(data)) {
        mig_msg_encode(pc->buf + pc->len, MIG_MAGIC_PAGE, MIG_MSG_PAGE_ZERO, p);
        pc->len += MIG_MSG_LEN;
    } else {
        pc->len += mig_page_encode(pc->buf + pc->len, p, data);
    }
    ST_SET(j->pc_pages, j->pc_pages + 1);
}

static int mig_pc_flush(struct mig_pc *pc)
{
    int ret = 0;

    if (pc->len) {
        ret = mig_chan_write(pc->ch, pc->buf, pc->len);
        ST_SET(pc->j->pc_bytes, pc->j->pc_bytes + pc->len);
        ST_SET(pc->j->bytes, ST_GET(pc->j->bytes) + pc->len);
        pc->len = 0;
    }
    return ret;
}

/* The destination's messages that are here: requests, PAGES_DONE. */
static int mig_pc_requests(struct mig_pc *pc)
{
    while (mig_chan_wait(pc->ch, 0) > 0) {
        uint32_t type;
        uint64_t value;
        int ret = mig_chan_recv(pc->ch, MIG_MAGIC_REPLY, &type, &value, MIG_PC_MSG_MS);

        if (ret < 0)
            return ret;
        if (type == MIG_MSG_PAGES_DONE) {
            if (pc->left)
                return -EPROTO; /* it cannot have what was not sent */
            pc->done = true;
            return 0;
        }
        if (type == MIG_MSG_RUNNING)
            continue; /* late: the source stopped waiting for it */
        if (type != MIG_MSG_PAGE_REQ)
            return -EPROTO;
        if (value >= pc->npages) { /* a page the VM does not have: ignored, counted */
            ST_SET(pc->j->pc_bad_requests, pc->j->pc_bad_requests + 1);
            continue;
        }
        ST_SET(pc->j->pc_requests, pc->j->pc_requests + 1);
        if (!mig_pc_missing(pc, value))
            continue; /* already on its way */
        /* the batch first (it is on the way anyway), then the page alone */
        if ((ret = mig_pc_flush(pc)) < 0)
            return ret;
        mig_pc_add(pc, value);
        if ((ret = mig_pc_flush(pc)) < 0)
            return ret;
        pc->cursor = value + 1 < pc->npages ? value + 1 : 0;
    }
    return 0;
}

/* Bytes the kernel still holds to send on the socket (0 if it cannot say). */
static unsigned mig_pc_outq(const struct mig_pc *pc)
{
    int n = 0;

    return ioctl(pc->ch->fd, SIOCOUTQ, &n) == 0 && n > 0 ? (unsigned)n : 0;
}

/* The next missing page from the cursor on (wrapping), or UINT64_MAX. */
static uint64_t mig_pc_next(struct mig_pc *pc)
{
    for (uint64_t n = 0, p = pc->cursor; n < pc->npages; n++, p = p + 1 < pc->npages ? p + 1 : 0)
        if (!(p % 64) && !pc->j->pc_missing[p / 64] && pc->npages - n >= 64)
            n += 63, p += 63; /* a clear word at once */
        else if (mig_pc_missing(pc, p))
            return p;
    return UINT64_MAX;
}

int mig_pc_serve(struct mig_out *j, const struct mig_chan *ch)
{
    uint64_t words = (j->mm.mem->npages + 63) / 64, end_at = 0;
    struct mig_pc pc = {.j = j, .ch = ch, .npages = j->mm.mem->npages};
    bool end_sent = false;
    int ret = 0;

    pc.buf = malloc(MIG_PC_BATCH * (MIG_MSG_LEN + MIG_PAGE_SIZE + 8));
    if (!pc.buf)
        return -ENOMEM;
    for (uint64_t w = 0; w < words; w++)
        pc.left += (uint64_t)__builtin_popcountll(j->pc_missing[w]);
    mig_out_trace(j, "post-copy: serving %llu pages", (unsigned long long)pc.left);
    while (!pc.done) {
        if ((ret = mig_pc_requests(&pc)) < 0 || pc.done)
            break;
        if (j->fwd)
            mig_fwd_drain(j->fwd, &j->mm, ch);
        if (pc.left && mig_pc_outq(&pc) > MIG_PC_INFLIGHT) {
            /* the queue is long enough: wait for it, or for a request */
            if (mig_chan_wait(ch, 1) < 0) {
                ret = -EIO;
                break;
            }
            continue;
        }
        if (pc.left) {
            for (unsigned k = 0; k < MIG_PC_BATCH && pc.left; k++) {
                uint64_t p = mig_pc_next(&pc);

                if (p == UINT64_MAX)
                    break;
                mig_pc_add(&pc, p);
                pc.cursor = p + 1 < pc.npages ? p + 1 : 0;
            }
            if ((ret = mig_pc_flush(&pc)) < 0)
                break;
            ST_SET(j->remaining_pages, pc.left);
            continue;
        }
        if (!end_sent) {
            ret = mig_chan_send(ch, MIG_MAGIC_PAGE, MIG_MSG_PAGES_END, ST_GET(j->pc_pages));
            if (ret < 0)
                break;
            end_sent = true;
            end_at = gw_now_ns();
            mig_out_trace(j, "post-copy: every page sent (%llu, %llu asked for)",
                          (unsigned long long)ST_GET(j->pc_pages),
                          (unsigned long long)ST_GET(j->pc_requests));
        }
        if (gw_now_ns() - end_at > MIG_PC_DONE_MS * 1000000ull) {
            ret = -ETIMEDOUT;
            break;
        }
        if (j->fwd)
            ret = mig_fwd_wait(j->fwd, &j->mm, ch, 50) < 0 ? -EIO : 0;
        else
            ret = mig_chan_wait(ch, 50) < 0 ? -EIO : 0;
        if (ret < 0)
            break;
    }
    free(pc.buf);
    if (ret == 0)
        mig_out_trace(j, "post-copy: the destination has every page");
    return ret;
}

/* ---- destination ------------------------------------------------------------------- */

int mig_pc_in_init(struct mig_pc_in *pc, const struct mig_machine *mm)
{
    memset(pc, 0, sizeof(*pc));
    pc->mm = *mm;
    pc->requested = calloc((mm->mem->npages + 63) / 64, sizeof(uint64_t));
    if (!pc->requested)
        return -ENOMEM;
    pthread_mutex_init(&pc->lock, NULL);
    pthread_cond_init(&pc->cond, NULL);
    return 0;
}

void mig_pc_in_fini(struct mig_pc_in *pc)
{
    if (!pc->requested)
        return;
    if (pc->thread_live) {
        pthread_join(pc->thread, NULL);
        pc->thread_live = false;
    }
    free(pc->requested);
    pc->requested = NULL;
    pthread_mutex_destroy(&pc->lock);
    pthread_cond_destroy(&pc->cond);
}

/* The wait of one fault, into the latency figures. */
static void mig_pc_in_latency(struct mig_pc_in *pc, uint64_t ns)
{
    uint64_t us = ns / 1000;
    unsigned b = 0;

    while (b + 1 < MIG_PC_LAT_BUCKETS && us >= (1ull << b))
        b++;
    pc->lat[b]++;
    ST_SET(pc->faults, pc->faults + 1);
    if (us > ST_GET(pc->lat_max_us))
        ST_SET(pc->lat_max_us, us);
}

void mig_pc_in_fetch(void *opaque, uint64_t first, uint64_t last)
{
    struct mig_pc_in *pc = opaque;
    struct gmem *m = pc->mm.mem;
    uint64_t t0 = gw_now_ns();
    bool waited = false, told = false;

    for (uint64_t p = first; p <= last; p++) {
        if (!gmem_page_missing(m, p) || (pc->requested[p / 64] >> (p % 64) & 1))
            continue;
        pc->requested[p / 64] |= 1ull << (p % 64);
        if (mig_chan_send(&pc->ch, MIG_MAGIC_REPLY, MIG_MSG_PAGE_REQ, p) < 0 && !told) {
            gw_log("post-copy: asking the source for page %llu failed", (unsigned long long)p);
            told = true;
        }
    }
    pthread_mutex_lock(&pc->lock);
    for (uint64_t p = first; p <= last; p++) {
        while (gmem_page_missing(m, p)) {
            struct timespec ts;

            waited = true;
            if (atomic_load(&pc->over) && !told) {
                /* no recovery yet: nothing will bring it (docs/state.md) */
                gw_log("post-copy: the source is gone and page %llu never came: the guest "
                       "waits for it",
                       (unsigned long long)p);
                told = true;
            }
            pc->waiting++;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&pc->cond, &pc->lock, &ts);
            pc->waiting--;
        }
    }
    pthread_mutex_unlock(&pc->lock);
    if (waited)
        mig_pc_in_latency(pc, gw_now_ns() - t0);
}

static void *mig_pc_in_thread(void *arg)
{
    struct mig_pc_in *pc = arg;
    struct gmem *m = pc->mm.mem;
    uint64_t got = 0;

    for (;;) {
        uint32_t magic, type;
        uint64_t value;
        unsigned port = 0;
        size_t len;
        int ret = mig_chan_recv_post(&pc->ch, &magic, &type, &value, &port, pc->buf, &len, NULL,
                                     m->npages, MIG_PC_IDLE_MS);

        if (ret < 0) {
            if (!atomic_load(&pc->pages_end))
                gw_log("post-copy: the source's stream ended: %s",
                       ret == -EPIPE ? "connection closed" : strerror(-ret));
            break;
        }
        if (magic == MIG_MAGIC_PAGE && (type == MIG_MSG_PAGE || type == MIG_MSG_PAGE_ZERO)) {
            uint8_t *dst = m->host + value * GMEM_PAGE_SIZE;

            got++;
            if (gmem_page_missing(m, value)) {
                if (type == MIG_MSG_PAGE)
                    memcpy(dst, pc->buf, GMEM_PAGE_SIZE);
                else
                    memset(dst, 0, GMEM_PAGE_SIZE);
                gmem_page_arrived(m, value);
                ST_SET(pc->pages, pc->pages + 1);
            }
            pthread_mutex_lock(&pc->lock);
            if (pc->waiting)
                pthread_cond_broadcast(&pc->cond);
            pthread_mutex_unlock(&pc->lock);
            continue;
        }
        if (magic == MIG_MAGIC_PAGE && type == MIG_MSG_PAGES_END) {
            if (value != got) {
                gw_log("post-copy: the source says %llu pages, %llu came",
                       (unsigned long long)value, (unsigned long long)got);
                break;
            }
            atomic_store(&pc->pages_end, true);
            pc->mm.ops->kick(pc->mm.opaque);
            if (!pc->fwd)
                break;
            continue;
        }
        if (magic == MIG_MAGIC_FRAME && type == MIG_MSG_FRAME && pc->fwd) {
            memcpy(pc->fwd->buf, pc->buf, len); /* the queue copies from fwd->buf */
            mig_fwd_in_queue(pc->fwd, port, len);
            pc->mm.ops->kick(pc->mm.opaque);
            continue;
        }
        if (magic == MIG_MAGIC_FRAME && type == MIG_MSG_FWD_END) {
            pc->fwd = NULL; /* no more frames: pages only */
            if (atomic_load(&pc->pages_end))
                break;
            continue;
        }
        gw_log("post-copy: an unexpected message from the source (magic %08x type %u)", magic,
               type);
        break;
    }
    atomic_store(&pc->over, true);
    pthread_mutex_lock(&pc->lock);
    pthread_cond_broadcast(&pc->cond);
    pthread_mutex_unlock(&pc->lock);
    pc->mm.ops->kick(pc->mm.opaque);
    return NULL;
}

int mig_pc_in_start(struct mig_pc_in *pc, struct mig_chan ch, struct mig_fwd_in *fwd)
{
    int ret;

    pc->ch = ch;
    pc->fwd = fwd;
    ret = pthread_create(&pc->thread, NULL, mig_pc_in_thread, pc);
    if (ret)
        return -ret;
    pc->thread_live = true;
    return 0;
}

void mig_pc_in_info(const struct mig_pc_in *pc, struct mig_info *info)
{
    uint64_t n = 0, seen = 0, total = ST_GET(pc->faults);

    info->has_pc = true;
    info->pc_faults = total;
    info->pc_pages = ST_GET(pc->pages);
    info->pc_lat_max_us = ST_GET(pc->lat_max_us);
    /* percentiles from the power-of-two buckets: the bucket's upper bound */
    for (unsigned b = 0; b < MIG_PC_LAT_BUCKETS && total; b++) {
        n = pc->lat[b];
        if (seen < (total + 1) / 2 && seen + n >= (total + 1) / 2)
            info->pc_lat_p50_us = 1ull << b;
        if (seen < total - total / 100 && seen + n >= total - total / 100)
            info->pc_lat_p99_us = 1ull << b;
        seen += n;
    }
}
