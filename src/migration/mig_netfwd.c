/*
 * Frames across the switchover, both sides (mig_netfwd.h; docs/net.md,
 * "The switchover").
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "migration/mig_int.h"
#include "migration/mig_netfwd.h"
#include "migration/mig_tls.h"

struct mig_fwd *mig_fwd_new(const struct mig_machine *mm)
{
    struct mig_fwd *f;

    if (!mm->ops->net_ports || !mm->ops->net_take || !mm->ops->net_requeue)
        return NULL;
    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->n = mm->ops->net_ports(mm->opaque, f->ports, MIG_FRAME_PORTS);
    f->kept = f->n ? calloc(MIG_FWD_FRAMES, sizeof(*f->kept)) : NULL;
    if (!f->kept) {
        free(f);
        return NULL;
    }
    return f;
}

static void mig_fwd_forget(struct mig_fwd *f)
{
    for (unsigned i = 0; i < f->nkept; i++)
        free(f->kept[i].data);
    f->nkept = 0;
    f->kept_bytes = 0;
}

void mig_fwd_free(struct mig_fwd *f)
{
    if (!f)
        return;
    mig_fwd_forget(f);
    free(f->kept);
    free(f);
}

static bool mig_fwd_mac_is(const uint8_t *a, const uint8_t *b)
{
    return !memcmp(a, b, 6);
}

/* One frame read from port i: keep it (paused) or forward it. */
static void mig_fwd_take(struct mig_fwd *f, unsigned i, const struct mig_chan *ch, size_t len)
{
    const struct mig_net_port *p = &f->ports[i];
    bool ours = mig_fwd_mac_is(f->buf, p->mac);
    struct mig_fwd_frame *k;

    /* our own address as the sender: the destination's announce (or the
     * guest's gratuitous ARP there) came through the switch to the old
     * port, so the network knows where the NIC is now */
    if (mig_fwd_mac_is(f->buf + 6, p->mac) && !f->learnt_ns && f->forwarding)
        f->learnt_ns = gw_now_ns();
    if (!ours)
        ST_SET(f->other, f->other + 1);
    if (f->forwarding) {
        size_t n;

        if (!ours || f->broken)
            return;
        n = mig_frame_encode(f->out, p->port, f->buf, len);
        if (mig_chan_write(ch, f->out, n) < 0) {
            f->broken = true;
            return;
        }
        ST_SET(f->forwarded, f->forwarded + 1);
        return;
    }
    if (f->nkept == MIG_FWD_FRAMES || f->kept_bytes + len > MIG_FWD_BYTES) {
        ST_SET(f->overflow, f->overflow + 1);
        return;
    }
    k = &f->kept[f->nkept];
    k->data = malloc(len);
    if (!k->data) {
        ST_SET(f->overflow, f->overflow + 1);
        return;
    }
    memcpy(k->data, f->buf, len);
    k->port = p->port;
    k->len = (uint32_t)len;
    k->ours = ours;
    f->nkept++;
    f->kept_bytes += len;
    ST_SET(f->captured, f->captured + 1);
}

/* Read what waits at port i (at most a queue's worth per call, so a flood
 * cannot keep the job here). */
static void mig_fwd_read_port(struct mig_fwd *f, const struct mig_machine *mm, unsigned i,
                              const struct mig_chan *ch)
{
    for (unsigned k = 0; k < MIG_FWD_FRAMES; k++) {
        long n = mm->ops->net_take(mm->opaque, f->ports[i].port, f->buf, sizeof(f->buf));

        if (n <= 0)
            return;
        if ((size_t)n < MIG_FRAME_MIN)
            continue;
        mig_fwd_take(f, i, ch, (size_t)n);
    }
}

void mig_fwd_drain(struct mig_fwd *f, const struct mig_machine *mm, const struct mig_chan *ch)
{
    for (unsigned i = 0; i < f->n; i++)
        mig_fwd_read_port(f, mm, i, ch);
}

int mig_fwd_wait(struct mig_fwd *f, const struct mig_machine *mm, const struct mig_chan *ch,
                 int timeout_ms)
{
    uint64_t deadline = gw_now_ns() + (uint64_t)timeout_ms * 1000000ull;

    for (;;) {
        struct pollfd p[1 + MIG_FRAME_PORTS];
        uint64_t now = gw_now_ns();
        int r;

        if (ch->tls && mig_tls_pending(ch->tls))
            return 1;
        if (now >= deadline)
            return 0;
        p[0] = (struct pollfd){.fd = ch->fd, .events = POLLIN};
        for (unsigned i = 0; i < f->n; i++)
            p[1 + i] = (struct pollfd){.fd = f->ports[i].fd, .events = POLLIN};
        r = poll(p, 1 + f->n, (int)((deadline - now) / 1000000ull) + 1);
        if (r < 0 && errno != EINTR)
            return -errno;
        for (unsigned i = 0; r > 0 && i < f->n; i++)
            if (p[1 + i].revents)
                mig_fwd_read_port(f, mm, i, ch);
        if (r > 0 && p[0].revents)
            return 1;
    }
}

int mig_fwd_send_paused(struct mig_fwd *f, const struct mig_chan *ch)
{
    uint64_t sent = 0;
    int ret = 0;

    for (unsigned i = 0; i < f->nkept && ret == 0; i++) {
        const struct mig_fwd_frame *k = &f->kept[i];

        if (!k->ours)
            continue;
        ret = mig_chan_write(ch, f->out, mig_frame_encode(f->out, k->port, k->data, k->len));
        if (ret == 0)
            sent++;
    }
    ST_SET(f->forwarded, f->forwarded + sent);
    mig_fwd_forget(f);
    f->forwarding = true;
    if (ret == 0)
        ret = mig_chan_send(ch, MIG_MAGIC_FRAME, MIG_MSG_FRAMES_PAUSED, sent);
    if (ret < 0)
        f->broken = true;
    return ret;
}

void mig_fwd_grace(struct mig_fwd *f, const struct mig_machine *mm, const struct mig_chan *ch,
                   uint64_t since_ns)
{
    uint64_t end = since_ns + MIG_FWD_GRACE_MS * 1000000ull, now;
    uint8_t junk[256];

    f->forwarding = true;
    while (!f->broken && (now = gw_now_ns()) < end) {
        uint64_t stop = end;
        int r;

        if (f->learnt_ns && f->learnt_ns + MIG_FWD_TAIL_MS * 1000000ull < stop)
            stop = f->learnt_ns + MIG_FWD_TAIL_MS * 1000000ull;
        if (now >= stop)
            break;
        r = mig_fwd_wait(f, mm, ch, (int)((stop - now) / 1000000ull) + 1);
        if (r < 0)
            break;
        if (r > 0) {
            /* the destination says nothing after RUNNING: this is its
             * close (or a reset): nobody takes frames any more */
            if (ch->tls) {
                ssize_t n = mig_tls_recv(ch->tls, junk, sizeof(junk), 1);

                if (n == 0 || (n < 0 && n != -ETIMEDOUT && n != -EAGAIN && n != -EINTR))
                    f->broken = true;
            } else {
                ssize_t n = recv(ch->fd, junk, sizeof(junk), MSG_DONTWAIT);

                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                    f->broken = true;
            }
        }
    }
    ST_SET(f->grace_ms, (gw_now_ns() - since_ns) / 1000000ull);
    if (!f->broken)
        (void)mig_chan_send(ch, MIG_MAGIC_FRAME, MIG_MSG_FWD_END, ST_GET(f->forwarded));
}

void mig_fwd_requeue(struct mig_fwd *f, const struct mig_machine *mm)
{
    for (unsigned i = 0; i < f->nkept; i++)
        mm->ops->net_requeue(mm->opaque, f->kept[i].port, f->kept[i].data, f->kept[i].len);
    mig_fwd_forget(f);
}

void mig_fwd_info(const struct mig_fwd *f, struct mig_info *info)
{
    info->has_fwd = true;
    info->fwd_captured = ST_GET(f->captured);
    info->fwd_forwarded = ST_GET(f->forwarded);
    info->fwd_overflow = ST_GET(f->overflow);
    info->fwd_other = ST_GET(f->other);
    info->fwd_grace_ms = ST_GET(f->grace_ms);
}

/* ---- destination ------------------------------------------------------------------- */

int mig_fwd_in_init(struct mig_fwd_in *f, const struct mig_machine *mm)
{
    memset(f, 0, sizeof(*f));
    f->q = calloc(MIG_FWD_FRAMES, sizeof(*f->q));
    if (!f->q)
        return -ENOMEM;
    f->mm = *mm;
    pthread_mutex_init(&f->lock, NULL);
    return 0;
}

void mig_fwd_in_fini(struct mig_fwd_in *f)
{
    if (!f->q)
        return; /* never set up, or done: the statistics stay */
    if (f->thread_live) {
        pthread_join(f->thread, NULL);
        f->thread_live = false;
    }
    for (unsigned i = 0; i < f->n; i++)
        free(f->q[(f->head + i) % MIG_FWD_FRAMES].data);
    free(f->q);
    f->q = NULL;
    pthread_mutex_destroy(&f->lock);
}

/* A frame in f->buf for the loop; false when there is no room (dropped). */
bool mig_fwd_in_queue(struct mig_fwd_in *f, unsigned port, size_t len)
{
    struct mig_fwd_frame *k;
    uint8_t *data = malloc(len);
    bool ok = false;

    ST_SET(f->received, f->received + 1);
    pthread_mutex_lock(&f->lock);
    if (data && f->n < MIG_FWD_FRAMES && f->bytes + len <= MIG_FWD_BYTES) {
        k = &f->q[(f->head + f->n) % MIG_FWD_FRAMES];
        memcpy(data, f->buf, len);
        *k = (struct mig_fwd_frame){.port = port, .len = (uint32_t)len, .ours = true, .data = data};
        f->n++;
        f->bytes += len;
        ok = true;
    }
    pthread_mutex_unlock(&f->lock);
    if (!ok) {
        free(data);
        ST_SET(f->dropped, f->dropped + 1);
    }
    return ok;
}

int mig_fwd_in_paused(struct mig_fwd_in *f, const struct mig_chan *ch)
{
    uint64_t deadline = gw_now_ns() + MIG_FWD_PAUSED_MS * 1000000ull, got = 0, value;

    for (;;) {
        uint64_t now = gw_now_ns();
        uint32_t type;
        unsigned port;
        size_t len;
        int ret;

        ret = now < deadline ? mig_chan_recv_frame(ch, &type, &value, &port, f->buf, &len,
                                                   (int)((deadline - now) / 1000000ull) + 1)
                             : -ETIMEDOUT;
        if (ret == 0 && type == MIG_MSG_FRAME) {
            got++;
            mig_fwd_in_queue(f, port, len);
            continue;
        }
        if (ret == 0 && type == MIG_MSG_FRAMES_PAUSED && value == got)
            return 0;
        f->broken = true;
        return ret < 0 ? ret : -EPROTO;
    }
}

void mig_fwd_in_deliver(struct mig_fwd_in *f)
{
    for (;;) {
        struct mig_fwd_frame k;

        pthread_mutex_lock(&f->lock);
        if (!f->n) {
            pthread_mutex_unlock(&f->lock);
            return;
        }
        k = f->q[f->head];
        f->head = (f->head + 1) % MIG_FWD_FRAMES;
        f->n--;
        f->bytes -= k.len;
        pthread_mutex_unlock(&f->lock);
        if (f->mm.ops->net_inject &&
            f->mm.ops->net_inject(f->mm.opaque, k.port, k.data, k.len) == 0)
            ST_SET(f->delivered, f->delivered + 1);
        else
            ST_SET(f->dropped, f->dropped + 1);
        free(k.data);
    }
}

static void *mig_fwd_in_thread(void *arg)
{
    struct mig_fwd_in *f = arg;

    for (;;) {
        uint32_t type;
        uint64_t value;
        unsigned port;
        size_t len;
        int ret = mig_chan_recv_frame(&f->ch, &type, &value, &port, f->buf, &len, MIG_FWD_IDLE_MS);

        if (ret < 0 || type != MIG_MSG_FRAME)
            break; /* FWD_END, the source closed, silence, or garbage: over */
        mig_fwd_in_queue(f, port, len);
        f->mm.ops->kick(f->mm.opaque);
    }
    atomic_store(&f->over, true);
    f->mm.ops->kick(f->mm.opaque);
    return NULL;
}

int mig_fwd_in_start(struct mig_fwd_in *f, struct mig_chan ch)
{
    int ret;

    f->ch = ch;
    ret = pthread_create(&f->thread, NULL, mig_fwd_in_thread, f);
    if (ret)
        return -ret;
    f->thread_live = true;
    return 0;
}

void mig_fwd_in_info(const struct mig_fwd_in *f, struct mig_info *info)
{
    info->has_fwd = true;
    info->fwd_active = f->thread_live && !atomic_load(&f->over);
    info->fwd_received = ST_GET(f->received);
    info->fwd_delivered = ST_GET(f->delivered);
    info->fwd_dropped = ST_GET(f->dropped);
}
