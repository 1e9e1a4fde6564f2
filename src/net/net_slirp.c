/*
 * The user-mode backend (-netdev user): libslirp, the TCP/IP stack QEMU
 * uses, turns the guest's frames into host socket calls.  The guest sees
 * QEMU's network: 10.0.2.0/24, gateway and host 10.0.2.2, DNS forwarder
 * 10.0.2.3, DHCP handing out 10.0.2.15 on; IPv6 fec0::/64 (host fec0::2,
 * DNS fec0::3) unless ipv6=off.  hostfwd= rules listen on the host and
 * forward to the guest; restrict=on keeps the guest from reaching anything
 * but the host forwards.
 *
 * slirp is not thread-safe and needs nothing of its own but its sockets
 * and timers, so it runs on the run-loop thread like everything else:
 *   - the loop waits on slirp's sockets (net_backend_pollfds: slirp picks
 *     the fds and events, slirp_pollfds_fill) until the earliest of slirp's
 *     own timeout (TCP fast/slow timers) and our timer list (slirp's
 *     timer_new_opaque/timer_mod callbacks);
 *   - net_backend_poll() fills again, polls with a zero timeout to learn
 *     revents, lets slirp do its socket work (slirp_pollfds_poll), then
 *     fires expired timers;
 *   - frames slirp sends to the guest arrive through send_packet, also
 *     from inside slirp_input() (ARP and DHCP replies, TCP ACKs).
 *
 * Back-pressure (see net.h): while the guest has no room for frames, the
 * sockets are polled only for output (POLLIN masked off), so slirp reads
 * nothing more from the host; what slirp still sends meanwhile is queued
 * by net.c and dropped (counted) beyond its bound, like a full NIC queue.
 *
 * Timers run on the host monotonic clock (gw_now_ns), slirp's virtual
 * clock included: a paused VM's slirp keeps time as the host does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

#define NETSLIRP_FDS_MAX        1024u       /* sockets polled at once, at most */
#define NETSLIRP_OVERFLOW_NS    10000000ull /* poll every 10 ms when fds did not fit */
#define NETSLIRP_GUEST_ERRS_MAX 10          /* guest errors logged per backend */

#if SLIRP_CONFIG_VERSION_MAX >= 4
#define NETSLIRP_CONFIG_VERSION 4
#else
#define NETSLIRP_CONFIG_VERSION SLIRP_CONFIG_VERSION_MAX
#endif

/* One of slirp's timers. */
struct netslirp_timer {
    struct netslirp_timer *next;
    struct netslirp *owner;
    bool opaque_kind; /* fire through slirp_handle_timer(id, cb_opaque) */
    SlirpTimerId id;  /* opaque_kind */
    SlirpTimerCb cb;  /* !opaque_kind: cb(cb_opaque) */
    void *cb_opaque;
    uint64_t deadline; /* gw_now_ns() clock; UINT64_MAX = not armed */
};

struct netslirp {
    struct net_backend nb; /* first: the common part */
    Slirp *slirp;
    struct netslirp_timer *timers;
    struct pollfd *fds; /* what slirp asked for at the last fill */
    unsigned nfds, cap;
    bool fds_overflow;      /* slirp wanted more than NETSLIRP_FDS_MAX or memory ran out */
    bool mask_in;           /* filling while the guest has no room: no POLLIN */
    uint64_t fill_deadline; /* slirp's own timeout, from the last fill */
    unsigned guest_errors;
    uint8_t buf[NET_FRAME_MAX]; /* gathers a guest frame for slirp_input */
};

static struct netslirp *netslirp_of(struct net_backend *nb)
{
    return (struct netslirp *)nb;
}

/* ---- slirp's callbacks -------------------------------------------------- */

static ssize_t netslirp_send_packet(const void *buf, size_t len, void *opaque)
{
    struct netslirp *s = opaque;

    net_deliver(&s->nb, buf, len);
    return (ssize_t)len;
}

static void netslirp_guest_error(const char *msg, void *opaque)
{
    struct netslirp *s = opaque;

    if (s->guest_errors++ < NETSLIRP_GUEST_ERRS_MAX)
        gw_log("netdev %s: guest error: %s", s->nb.opts.id, msg);
}

static int64_t netslirp_clock_get_ns(void *opaque)
{
    (void)opaque;
    return (int64_t)gw_now_ns();
}

static struct netslirp_timer *netslirp_timer_add(struct netslirp *s)
{
    struct netslirp_timer *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL; /* slirp's RA timer then never fires: IPv6 adverts only */
    t->owner = s;
    t->deadline = UINT64_MAX;
    t->next = s->timers;
    s->timers = t;
    return t;
}

static void *netslirp_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
    struct netslirp_timer *t = netslirp_timer_add(opaque);

    if (t) {
        t->cb = cb;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void *netslirp_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct netslirp_timer *t = netslirp_timer_add(opaque);

    if (t) {
        t->opaque_kind = true;
        t->id = id;
        t->cb_opaque = cb_opaque;
    }
    return t;
}

static void netslirp_timer_free(void *timer, void *opaque)
{
    struct netslirp *s = opaque;

    for (struct netslirp_timer **p = &s->timers; *p; p = &(*p)->next) {
        if (*p == timer) {
            *p = (*p)->next;
            free(timer);
            return;
        }
    }
}

/* expire_time: milliseconds on the clock_get_ns clock. */
static void netslirp_timer_mod(void *timer, int64_t expire_time, void *opaque)
{
    struct netslirp_timer *t = timer;

    (void)opaque;
    if (t)
        t->deadline = expire_time <= 0 ? 0 : (uint64_t)expire_time * 1000000ull;
}

static void netslirp_register_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque; /* we ask slirp for its fds at every fill */
}

static void netslirp_unregister_poll_fd(int fd, void *opaque)
{
    (void)fd;
    (void)opaque;
}

static void netslirp_notify(void *opaque)
{
    (void)opaque; /* single-threaded: the loop polls slirp again anyway */
}

static const SlirpCb netslirp_callbacks = {
    .send_packet = netslirp_send_packet,
    .guest_error = netslirp_guest_error,
    .clock_get_ns = netslirp_clock_get_ns,
    .timer_new = netslirp_timer_new,
    .timer_free = netslirp_timer_free,
    .timer_mod = netslirp_timer_mod,
    .register_poll_fd = netslirp_register_poll_fd,
    .unregister_poll_fd = netslirp_unregister_poll_fd,
    .notify = netslirp_notify,
#if NETSLIRP_CONFIG_VERSION >= 4
    .timer_new_opaque = netslirp_timer_new_opaque,
#endif
};

/* ---- polling ------------------------------------------------------------ */

static int netslirp_add_poll(int fd, int events, void *opaque)
{
    struct netslirp *s = opaque;
    short ev = 0;

    if (s->mask_in)
        events &= ~(SLIRP_POLL_IN | SLIRP_POLL_PRI | SLIRP_POLL_HUP);
    if (events & SLIRP_POLL_IN)
        ev |= POLLIN;
    if (events & SLIRP_POLL_OUT)
        ev |= POLLOUT;
    if (events & SLIRP_POLL_PRI)
        ev |= POLLPRI;
    if (events & SLIRP_POLL_HUP)
        ev |= POLLHUP;
    if (events & SLIRP_POLL_ERR)
        ev |= POLLERR;
    if (!(ev & (POLLIN | POLLOUT | POLLPRI)))
        return -1; /* nothing to wait for now (input masked) */
    if (s->nfds == s->cap) {
        unsigned cap = s->cap ? s->cap * 2 : 16;
        struct pollfd *p;
        if (cap > NETSLIRP_FDS_MAX || !(p = realloc(s->fds, cap * sizeof(*p)))) {
            s->fds_overflow = true;
            return -1;
        }
        s->fds = p;
        s->cap = cap;
    }
    s->fds[s->nfds] = (struct pollfd){.fd = fd, .events = ev};
    return (int)s->nfds++;
}

static int netslirp_get_revents(int idx, void *opaque)
{
    struct netslirp *s = opaque;
    short rev;
    int out = 0;

    if (idx < 0 || (unsigned)idx >= s->nfds)
        return 0;
    rev = s->fds[idx].revents;
    if (rev & POLLIN)
        out |= SLIRP_POLL_IN;
    if (rev & POLLOUT)
        out |= SLIRP_POLL_OUT;
    if (rev & POLLPRI)
        out |= SLIRP_POLL_PRI;
    if (rev & (POLLHUP | POLLNVAL))
        out |= SLIRP_POLL_HUP;
    if (rev & POLLERR)
        out |= SLIRP_POLL_ERR;
    return out;
}

/* Ask slirp what to wait for; remembers its timeout. */
static void netslirp_fill(struct netslirp *s)
{
    uint32_t timeout_ms = UINT32_MAX;
    uint64_t now = gw_now_ns();

    s->nfds = 0;
    s->fds_overflow = false;
    s->mask_in = net_rx_blocked(&s->nb);
    slirp_pollfds_fill(s->slirp, &timeout_ms, netslirp_add_poll, s);
    s->fill_deadline = timeout_ms == UINT32_MAX ? UINT64_MAX : now + timeout_ms * 1000000ull;
    if (s->fds_overflow && s->fill_deadline > now + NETSLIRP_OVERFLOW_NS)
        s->fill_deadline = now + NETSLIRP_OVERFLOW_NS;
}

static int netslirp_pollfds(struct net_backend *nb, struct pollfd *fds, int max)
{
    struct netslirp *s = netslirp_of(nb);
    unsigned n;

    netslirp_fill(s);
    n = s->nfds < (unsigned)max ? s->nfds : (unsigned)max;
    if (n)
        memcpy(fds, s->fds, n * sizeof(*fds));
    if (n < s->nfds) {
        /* The loop has no room for all of them: come back soon instead. */
        uint64_t soon = gw_now_ns() + NETSLIRP_OVERFLOW_NS;
        if (s->fill_deadline > soon)
            s->fill_deadline = soon;
    }
    return (int)n;
}

static void netslirp_run_timers(struct netslirp *s)
{
    uint64_t now = gw_now_ns();
    bool again = true;

    /* A timer callback may free or add timers: rescan after each one (a
     * bounded number of times, should one re-arm itself in the past). */
    for (int rounds = 0; again && rounds < 64; rounds++) {
        again = false;
        for (struct netslirp_timer *t = s->timers; t; t = t->next) {
            if (t->deadline > now)
                continue;
            t->deadline = UINT64_MAX;
#if NETSLIRP_CONFIG_VERSION >= 4
            if (t->opaque_kind)
                slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
            else
#endif
                if (t->cb)
                t->cb(t->cb_opaque);
            again = true;
            break;
        }
    }
}

static void netslirp_poll(struct net_backend *nb)
{
    struct netslirp *s = netslirp_of(nb);
    int ret = 0;

    netslirp_fill(s);
    if (s->nfds) {
        do {
            ret = poll(s->fds, s->nfds, 0);
        } while (ret < 0 && errno == EINTR);
    }
    slirp_pollfds_poll(s->slirp, ret < 0, netslirp_get_revents, s);
    netslirp_run_timers(s);
}

static uint64_t netslirp_next_deadline(struct net_backend *nb)
{
    struct netslirp *s = netslirp_of(nb);
    uint64_t d = s->fill_deadline;

    for (struct netslirp_timer *t = s->timers; t; t = t->next)
        if (t->deadline < d)
            d = t->deadline;
    return d;
}

static int netslirp_send(struct net_backend *nb, const struct iovec *iov, int iovcnt, size_t len)
{
    struct netslirp *s = netslirp_of(nb);

    if (iovcnt == 1) {
        slirp_input(s->slirp, iov[0].iov_base, (int)len);
    } else {
        net_iov_gather(iov, iovcnt, s->buf, len);
        slirp_input(s->slirp, s->buf, (int)len);
    }
    return 0;
}

static void netslirp_fini(struct net_backend *nb)
{
    struct netslirp *s = netslirp_of(nb);

    if (s->slirp)
        slirp_cleanup(s->slirp);
    while (s->timers) {
        struct netslirp_timer *t = s->timers;
        s->timers = t->next;
        free(t);
    }
    free(s->fds);
}

static const struct net_backend_ops netslirp_ops = {
    .kind = "user",
    .send = netslirp_send,
    .pollfds = netslirp_pollfds,
    .poll = netslirp_poll,
    .next_deadline = netslirp_next_deadline,
    .fini = netslirp_fini,
};

/* ---- construction ------------------------------------------------------- */

static int netslirp_add_forwards(struct netslirp *s, char *err, size_t errlen)
{
    const struct net_opts *o = &s->nb.opts;

    for (unsigned i = 0; i < o->nhostfwd; i++) {
        const struct net_hostfwd *f = &o->hostfwd[i];
        char host[INET_ADDRSTRLEN], guest[INET_ADDRSTRLEN];

        errno = 0;
        if (slirp_add_hostfwd(s->slirp, f->udp, f->host_addr, f->host_port, f->guest_addr,
                              f->guest_port) == 0)
            continue;
        inet_ntop(AF_INET, &f->host_addr, host, sizeof(host));
        inet_ntop(AF_INET, &f->guest_addr, guest, sizeof(guest));
        snprintf(err, errlen, "user: could not set up host forwarding rule '%s:%s:%u-%s:%u'%s%s",
                 f->udp ? "udp" : "tcp", host, f->host_port, guest, f->guest_port,
                 errno ? ": " : "", errno ? strerror(errno) : "");
        return -EADDRINUSE;
    }
    return 0;
}

struct net_backend *netslirp_open(const struct net_opts *o, char *err, size_t errlen)
{
    struct netslirp *s = calloc(1, sizeof(*s));
    SlirpConfig cfg;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    net_backend_init(&s->nb, &netslirp_ops, o);
    s->fill_deadline = UINT64_MAX;

    memset(&cfg, 0, sizeof(cfg));
    cfg.version = NETSLIRP_CONFIG_VERSION;
    cfg.restricted = o->restricted;
    cfg.in_enabled = true;
    cfg.vnetwork = o->net;
    cfg.vnetmask = o->mask;
    cfg.vhost = o->host;
    cfg.in6_enabled = o->ipv6;
    inet_pton(AF_INET6, "fec0::", &cfg.vprefix_addr6);
    cfg.vprefix_len = 64;
    inet_pton(AF_INET6, "fec0::2", &cfg.vhost6);
    inet_pton(AF_INET6, "fec0::3", &cfg.vnameserver6);
    cfg.vhostname = s->nb.opts.hostname[0] ? s->nb.opts.hostname : NULL;
    cfg.vdhcp_start = o->dhcp_start;
    cfg.vnameserver = o->dns;

    s->slirp = slirp_new(&cfg, &netslirp_callbacks, s);
    if (!s->slirp) {
        snprintf(err, errlen, "user: slirp could not be initialised");
        goto fail;
    }
    if (netslirp_add_forwards(s, err, errlen) < 0)
        goto fail;
    return &s->nb;

fail:
    net_backend_free(&s->nb);
    return NULL;
}
