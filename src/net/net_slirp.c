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
 *
 * Live migration (net.h, docs/net.md): libslirp 4.7 saves only its IP id
 * counter and DHCP leases (and guestfwd sockets, which godwit has none
 * of), so the guest's TCP connections through slirp end with the source.
 * To make that end prompt, we note the TCP connections the guest opens or
 * is offered (their SYNs cross send and send_packet) and forget them on a
 * RST; the list travels with the state, and the destination, once the VM
 * runs, sends the guest two ACKs per connection, one of them certainly
 * outside its receive window (netslirp_poke): the guest answers with an
 * ACK of its own, and the destination's slirp, which does not know the
 * connection, answers that with a RST the guest accepts (its sequence
 * number is the guest's own rcv_nxt).  A connection that had
 * already closed costs one RST the guest sends and slirp ignores.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_int.h"
#include "state/state_buf.h"

#define NETSLIRP_FDS_MAX        1024u       /* sockets polled at once, at most */
#define NETSLIRP_OVERFLOW_NS    10000000ull /* poll every 10 ms when fds did not fit */
#define NETSLIRP_GUEST_ERRS_MAX 10          /* guest errors logged per backend */
#define NETSLIRP_STATE_MAX      4096u       /* bytes of libslirp's saved state we accept */
#define NETSLIRP_CONNS_MAX      256u        /* TCP connections noted per backend */
#define NETSLIRP_NS_PER_MS      1000000ull

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

/* A TCP connection the guest may have open through slirp: the addresses
 * as the guest's frames carry them (network byte order). */
struct netslirp_conn {
    bool used;
    uint8_t guest_mac[6], peer_mac[6]; /* the guest's; the next hop's the guest sends to */
    uint8_t guest_ip[4], peer_ip[4];
    uint8_t guest_port[2], peer_port[2];
    uint64_t seen; /* gw_now_ns() of its last SYN */
};

#define NETSLIRP_CONN_BYTES (6 + 6 + 4 + 4 + 2 + 2) /* one in the saved state */

struct netslirp {
    struct net_backend nb; /* first: the common part */
    Slirp *slirp;          /* NULL once migrated away */
    struct netslirp_timer *timers;
    struct pollfd *fds; /* what slirp asked for at the last fill */
    unsigned nfds, cap;
    bool fds_overflow;      /* slirp wanted more than NETSLIRP_FDS_MAX or memory ran out */
    bool mask_in;           /* filling while the guest has no room: no POLLIN */
    uint64_t fill_deadline; /* slirp's own timeout, from the last fill */
    unsigned guest_errors;
    /* hostfwd rules, by index in nb.opts.hostfwd: bound, and still to bind
     * after a load (retried every NET_HOSTFWD_RETRY_MS until fwd_give_up) */
    uint32_t fwd_bound, fwd_pending;
    uint64_t fwd_next, fwd_give_up;
    struct netslirp_conn conns[NETSLIRP_CONNS_MAX];
    /* loaded: the source's connections, poked once the VM runs */
    struct netslirp_conn *poke;
    unsigned npoke;
    /* every socket slirp has open (register/unregister_poll_fd), so that
     * migrated_away can reset them: fill reports only those it waits on */
    int *sock_fds;
    unsigned nsock_fds, sock_cap;
    uint8_t buf[NET_FRAME_MAX]; /* gathers a guest frame for slirp_input */
};

_Static_assert(NET_MAX_HOSTFWD <= 32, "fwd_bound is a 32-bit mask");

static struct netslirp *netslirp_of(struct net_backend *nb)
{
    return (struct netslirp *)nb;
}

/* ---- the guest's TCP connections ------------------------------------------ */

/*
 * Note a frame between the guest and slirp: a SYN (either way) notes its
 * connection, a RST (either way) forgets it.  from_guest: the guest sent
 * it.  Only plain IPv4 over Ethernet: what the guest does over IPv6 is not
 * tracked (its connections still end with the source, without the prompt
 * reset).  When the table is full the oldest entry makes room.
 */
static void netslirp_note(struct netslirp *s, const uint8_t *f, size_t len, bool from_guest)
{
    const uint8_t *ip = f + 14, *tcp;
    unsigned ihl;
    uint8_t flags;
    struct netslirp_conn c = {.used = true}, *slot = NULL, *oldest = NULL;

    if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00 || (ip[0] >> 4) != 4 || ip[9] != 6)
        return;
    ihl = (ip[0] & 15u) * 4u;
    if (ihl < 20 || len < 14 + ihl + 20 || ((ip[6] & 0x1f) | ip[7]) != 0)
        return; /* a fragment beyond the first has no TCP header */
    tcp = ip + ihl;
    flags = tcp[13];
    if (!(flags & 0x06)) /* neither SYN nor RST */
        return;
    memcpy(c.guest_mac, from_guest ? f + 6 : f, 6);
    memcpy(c.peer_mac, from_guest ? f : f + 6, 6);
    memcpy(c.guest_ip, from_guest ? ip + 12 : ip + 16, 4);
    memcpy(c.peer_ip, from_guest ? ip + 16 : ip + 12, 4);
    memcpy(c.guest_port, from_guest ? tcp : tcp + 2, 2);
    memcpy(c.peer_port, from_guest ? tcp + 2 : tcp, 2);
    c.seen = gw_now_ns();
    for (unsigned i = 0; i < NETSLIRP_CONNS_MAX; i++) {
        struct netslirp_conn *e = &s->conns[i];
        if (!e->used) {
            if (!slot)
                slot = e;
            continue;
        }
        if (!memcmp(e->guest_ip, c.guest_ip, 4) && !memcmp(e->peer_ip, c.peer_ip, 4) &&
            !memcmp(e->guest_port, c.guest_port, 2) && !memcmp(e->peer_port, c.peer_port, 2)) {
            if (flags & 0x04)
                e->used = false; /* RST */
            else
                *e = c;
            return;
        }
        if (!oldest || e->seen < oldest->seen)
            oldest = e;
    }
    if (flags & 0x04)
        return;
    *(slot ? slot : oldest) = c;
}

static uint32_t netslirp_sum(const uint8_t *p, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

static uint16_t netslirp_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* A segment that gets a connection the new stack does not know reset: an
 * ACK from the peer with sequence number seq.  The guest answers one whose
 * seq lies outside its receive window with an ACK (RFC 9293 3.10.7.4), and
 * slirp answers that with a RST at the guest's rcv_nxt.  We do not know the
 * window, so the caller sends two, half the sequence space apart: a window
 * is smaller than that (RFC 7323: < 2^30), so one of them lies outside. */
static void netslirp_poke(struct netslirp *s, const struct netslirp_conn *c, uint32_t seq)
{
    uint8_t f[14 + 20 + 20];
    uint8_t *ip = f + 14, *tcp = ip + 20, pseudo[12];
    uint32_t sum;

    memset(f, 0, sizeof(f));
    memcpy(f, c->guest_mac, 6);
    memcpy(f + 6, c->peer_mac, 6);
    f[12] = 0x08;
    ip[0] = 0x45;
    ip[3] = 40;
    ip[6] = 0x40; /* DF */
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, c->peer_ip, 4);
    memcpy(ip + 16, c->guest_ip, 4);
    sum = netslirp_fold(netslirp_sum(ip, 20, 0));
    ip[10] = (uint8_t)(sum >> 8);
    ip[11] = (uint8_t)sum;
    memcpy(tcp, c->peer_port, 2);
    memcpy(tcp + 2, c->guest_port, 2);
    tcp[4] = (uint8_t)(seq >> 24);
    tcp[5] = (uint8_t)(seq >> 16);
    tcp[6] = (uint8_t)(seq >> 8);
    tcp[7] = (uint8_t)seq;
    tcp[12] = 5 << 4;
    tcp[13] = 0x10; /* ACK */
    tcp[15] = 1;    /* window 1: any value will do, the connection is gone */
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = 6;
    pseudo[10] = 0;
    pseudo[11] = 20;
    sum = netslirp_fold(netslirp_sum(tcp, 20, netslirp_sum(pseudo, 12, 0)));
    tcp[16] = (uint8_t)(sum >> 8);
    tcp[17] = (uint8_t)sum;
    net_deliver(&s->nb, f, sizeof(f));
}

/* ---- slirp's callbacks -------------------------------------------------- */

static ssize_t netslirp_send_packet(const void *buf, size_t len, void *opaque)
{
    struct netslirp *s = opaque;

    netslirp_note(s, buf, len, false);
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

/* Polling asks slirp for its fds at every fill; these only keep the list of
 * its sockets (a full list: allocation failure leaves one out, which then
 * closes with a FIN instead of a RST when the VM migrates away). */
static void netslirp_register_poll_fd(int fd, void *opaque)
{
    struct netslirp *s = opaque;

    if (s->nsock_fds == s->sock_cap) {
        unsigned cap = s->sock_cap ? s->sock_cap * 2 : 16;
        int *p = realloc(s->sock_fds, cap * sizeof(*p));
        if (!p)
            return;
        s->sock_fds = p;
        s->sock_cap = cap;
    }
    s->sock_fds[s->nsock_fds++] = fd;
}

static void netslirp_unregister_poll_fd(int fd, void *opaque)
{
    struct netslirp *s = opaque;

    for (unsigned i = 0; i < s->nsock_fds; i++) {
        if (s->sock_fds[i] == fd) {
            s->sock_fds[i] = s->sock_fds[--s->nsock_fds];
            return;
        }
    }
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

    if (!s->slirp)
        return 0;
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

static void netslirp_forwards_retry(struct netslirp *s);

static void netslirp_poll(struct net_backend *nb)
{
    struct netslirp *s = netslirp_of(nb);
    int ret = 0;

    if (!s->slirp)
        return;
    if (s->fwd_pending && gw_now_ns() >= s->fwd_next)
        netslirp_forwards_retry(s);
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

    if (!s->slirp)
        return UINT64_MAX;
    if (s->fwd_pending && s->fwd_next < d)
        d = s->fwd_next;
    for (struct netslirp_timer *t = s->timers; t; t = t->next)
        if (t->deadline < d)
            d = t->deadline;
    return d;
}

static int netslirp_send(struct net_backend *nb, const struct iovec *iov, int iovcnt, size_t len)
{
    struct netslirp *s = netslirp_of(nb);
    const uint8_t *f = iov[0].iov_base;

    if (!s->slirp)
        return -ENETDOWN; /* migrated away: the VM does not run here */
    if (iovcnt != 1) {
        net_iov_gather(iov, iovcnt, s->buf, len);
        f = s->buf;
    }
    netslirp_note(s, f, len, true);
    slirp_input(s->slirp, f, (int)len);
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
    free(s->poke);
    free(s->sock_fds);
}

/* ---- host forwarding ---------------------------------------------------- */

/* "tcp:127.0.0.1:2222-10.0.2.15:22": rule i as the user would write it. */
static void netslirp_rule_text(const struct netslirp *s, unsigned i, char *out, size_t outlen)
{
    const struct net_hostfwd *f = &s->nb.opts.hostfwd[i];
    char host[INET_ADDRSTRLEN], guest[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &f->host_addr, host, sizeof(host));
    inet_ntop(AF_INET, &f->guest_addr, guest, sizeof(guest));
    snprintf(out, outlen, "%s:%s:%u-%s:%u", f->udp ? "udp" : "tcp", host, f->host_port, guest,
             f->guest_port);
}

/* Bind rule i: 0, or -errno (errno of the listener when slirp left one). */
static int netslirp_forward_add(struct netslirp *s, unsigned i)
{
    const struct net_hostfwd *f = &s->nb.opts.hostfwd[i];

    errno = 0;
    if (slirp_add_hostfwd(s->slirp, f->udp, f->host_addr, f->host_port, f->guest_addr,
                          f->guest_port) < 0)
        return errno ? -errno : -EADDRINUSE;
    s->fwd_bound |= 1u << i;
    return 0;
}

static int netslirp_add_forwards(struct netslirp *s, char *err, size_t errlen)
{
    for (unsigned i = 0; i < s->nb.opts.nhostfwd; i++) {
        char rule[96];
        int ret = netslirp_forward_add(s, i);

        if (ret == 0)
            continue;
        netslirp_rule_text(s, i, rule, sizeof(rule));
        snprintf(err, errlen, "user: could not set up host forwarding rule '%s': %s", rule,
                 strerror(-ret));
        return -EADDRINUSE;
    }
    return 0;
}

/* After a load: bind what is still pending; on one host the source lets
 * go of its ports only once the destination has answered RUNNING, so a
 * port may be taken for a moment.  Gives up (logging each rule) at
 * fwd_give_up. */
static void netslirp_forwards_retry(struct netslirp *s)
{
    uint64_t now = gw_now_ns();
    int last = 0;

    for (unsigned i = 0; i < s->nb.opts.nhostfwd; i++) {
        if (!(s->fwd_pending & (1u << i)))
            continue;
        last = netslirp_forward_add(s, i);
        if (last == 0)
            s->fwd_pending &= ~(1u << i);
    }
    if (s->fwd_pending && now >= s->fwd_give_up) {
        for (unsigned i = 0; i < s->nb.opts.nhostfwd; i++) {
            char rule[96];
            if (!(s->fwd_pending & (1u << i)))
                continue;
            netslirp_rule_text(s, i, rule, sizeof(rule));
            gw_log("netdev %s: host forwarding rule '%s' is not bound: %s (retried for %u ms "
                   "after the state was loaded)",
                   s->nb.opts.id, rule, strerror(-last), NET_HOSTFWD_WAIT_MS);
        }
        s->fwd_pending = 0;
    }
    s->fwd_next = now + NET_HOSTFWD_RETRY_MS * NETSLIRP_NS_PER_MS;
}

/* ---- live migration ----------------------------------------------------- */

/* libslirp's saved state, gathered in a buffer (slirp writes piecewise). */
static ssize_t netslirp_state_write(const void *buf, size_t len, void *opaque)
{
    state_put_bytes(opaque, buf, len);
    return (ssize_t)len;
}

/* Reading a saved state back: slirp's own reader takes a short read for
 * zeros and goes on, so we note it (and what is left over) ourselves. */
struct netslirp_reader {
    const uint8_t *p;
    size_t len, pos;
    bool overrun;
};

static ssize_t netslirp_state_read(void *buf, size_t len, void *opaque)
{
    struct netslirp_reader *r = opaque;
    size_t n = len <= r->len - r->pos ? len : r->len - r->pos;

    memcpy(buf, r->p + r->pos, n);
    if (n < len) {
        memset((uint8_t *)buf + n, 0, len - n);
        r->overrun = true;
    }
    r->pos += n;
    return (ssize_t)n;
}

/*
 * Payload (version 1), integers little-endian:
 *   str  netdev id
 *   u32  slirp_state_version() of the saver's libslirp
 *   u32  n, then n bytes: slirp_state_save()'s output (n <= NETSLIRP_STATE_MAX)
 *   u32  connections (<= NETSLIRP_CONNS_MAX), then per connection: guest MAC,
 *        next-hop MAC (6 bytes each), guest IPv4, peer IPv4 (4 each), guest
 *        port, peer port (2 each, network order)
 */
static void netslirp_save(struct net_backend *nb, struct state_buf *b)
{
    struct netslirp *s = netslirp_of(nb);
    struct state_buf st;
    uint32_t n = 0;

    if (!s->slirp) {
        state_buf_fail(b, -ENETDOWN, "netdev %s: migrated away", nb->opts.id);
        return;
    }
    state_buf_init(&st);
    slirp_state_save(s->slirp, netslirp_state_write, &st);
    if (!state_buf_error(&st) && st.len > NETSLIRP_STATE_MAX)
        state_buf_fail(&st, -E2BIG, "libslirp's state is %zu bytes (at most %u)", st.len,
                       NETSLIRP_STATE_MAX);
    if (state_buf_error(&st)) {
        state_buf_fail(b, state_buf_error(&st), "netdev %s: %s", nb->opts.id, state_buf_msg(&st));
        state_buf_fini(&st);
        return;
    }
    state_put_str(b, nb->opts.id);
    state_put_u32(b, (uint32_t)slirp_state_version());
    state_put_u32(b, (uint32_t)st.len);
    state_put_bytes(b, st.data, st.len);
    state_buf_fini(&st);
    for (unsigned i = 0; i < NETSLIRP_CONNS_MAX; i++)
        n += s->conns[i].used;
    state_put_u32(b, n);
    for (unsigned i = 0; i < NETSLIRP_CONNS_MAX; i++) {
        const struct netslirp_conn *c = &s->conns[i];
        if (!c->used)
            continue;
        state_put_bytes(b, c->guest_mac, 6);
        state_put_bytes(b, c->peer_mac, 6);
        state_put_bytes(b, c->guest_ip, 4);
        state_put_bytes(b, c->peer_ip, 4);
        state_put_bytes(b, c->guest_port, 2);
        state_put_bytes(b, c->peer_port, 2);
    }
}

static int netslirp_load(struct net_backend *nb, struct state_buf *b, unsigned version)
{
    struct netslirp *s = netslirp_of(nb);
    const char *id = nb->opts.id;
    char saved_id[NET_ID_MAX];
    uint32_t slirp_version, n, nconn;
    struct netslirp_reader r = {0};
    int ret;

    if (version != 1 || !s->slirp) {
        state_buf_fail(b, -EINVAL, "netdev %s: cannot load section version %u", id, version);
        return -EINVAL;
    }
    state_get_str(b, saved_id, sizeof(saved_id));
    slirp_version = state_get_u32(b);
    n = state_get_u32(b);
    if (state_buf_error(b))
        return state_buf_error(b);
    if (strcmp(saved_id, id)) {
        state_buf_fail(b, -EINVAL, "the state's user netdev is '%s', this VM's is '%s'", saved_id,
                       id);
        return -EINVAL;
    }
    if (slirp_version == 0 || slirp_version > (uint32_t)slirp_state_version()) {
        state_buf_fail(b, -EINVAL,
                       "netdev %s: the slirp state is version %u, from a newer libslirp; this "
                       "one (%s) reads versions 1..%d",
                       id, slirp_version, slirp_version_string(), slirp_state_version());
        return -EINVAL;
    }
    if (n == 0 || n > NETSLIRP_STATE_MAX || n > state_buf_left(b)) {
        state_buf_fail(b, -EINVAL, "netdev %s: slirp state of %u bytes (1..%u, %zu left)", id, n,
                       NETSLIRP_STATE_MAX, state_buf_left(b));
        return -EINVAL;
    }
    r.p = b->data + b->pos;
    r.len = n;
    /* A first byte other than 0 announces guestfwd sockets, which no godwit
     * saves (it has no guestfwd=); libslirp would size their buffers from
     * the stream, unchecked. */
    if (r.p[0] != 0) {
        state_buf_fail(b, -EINVAL, "netdev %s: the slirp state holds guestfwd sockets", id);
        return -EINVAL;
    }
    ret = slirp_state_load(s->slirp, (int)slirp_version, netslirp_state_read, &r);
    if (ret < 0 || r.overrun || r.pos != r.len) {
        state_buf_fail(b, -EINVAL,
                       "netdev %s: libslirp refused its state (%s, %zu of %u bytes read)", id,
                       ret < 0     ? strerror(-ret)
                       : r.overrun ? "truncated"
                                   : "bytes left over",
                       r.pos, n);
        return -EINVAL;
    }
    b->pos += n;
    nconn = state_get_u32(b);
    if (!state_buf_error(b) &&
        (nconn > NETSLIRP_CONNS_MAX || (size_t)nconn * NETSLIRP_CONN_BYTES > state_buf_left(b))) {
        state_buf_fail(b, -EINVAL, "netdev %s: %u connections (at most %u, %zu bytes left)", id,
                       nconn, NETSLIRP_CONNS_MAX, state_buf_left(b));
    }
    if (state_buf_error(b))
        return state_buf_error(b);
    free(s->poke);
    s->npoke = 0;
    s->poke = nconn ? calloc(nconn, sizeof(*s->poke)) : NULL;
    if (nconn && !s->poke) {
        state_buf_fail(b, -ENOMEM, "netdev %s: out of memory", id);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < nconn && !state_buf_error(b); i++) {
        struct netslirp_conn *c = &s->poke[i];
        uint32_t gip;

        state_get_bytes(b, c->guest_mac, 6);
        state_get_bytes(b, c->peer_mac, 6);
        state_get_bytes(b, c->guest_ip, 4);
        state_get_bytes(b, c->peer_ip, 4);
        state_get_bytes(b, c->guest_port, 2);
        state_get_bytes(b, c->peer_port, 2);
        memcpy(&gip, c->guest_ip, 4);
        /* frames go only to a guest on this netdev's network */
        if (!state_buf_error(b) &&
            ((gip & nb->opts.mask.s_addr) != nb->opts.net.s_addr || (c->guest_mac[0] & 1)))
            state_buf_fail(b, -EINVAL, "netdev %s: connection %u is not the guest's", id, i);
        c->used = true;
        s->npoke = i + 1;
    }
    return state_buf_error(b);
}

static void netslirp_loaded(struct net_backend *nb)
{
    struct netslirp *s = netslirp_of(nb);
    uint32_t seq = (uint32_t)gw_now_ns();

    if (!s->slirp)
        return;
    if (nb->opts.hostfwd_later && nb->opts.nhostfwd && !s->fwd_bound && !s->fwd_pending) {
        uint64_t now = gw_now_ns();

        s->fwd_pending = (uint32_t)((1ull << nb->opts.nhostfwd) - 1);
        s->fwd_give_up = now + NET_HOSTFWD_WAIT_MS * NETSLIRP_NS_PER_MS;
        netslirp_forwards_retry(s);
    }
    for (unsigned i = 0; i < s->npoke; i++) {
        netslirp_poke(s, &s->poke[i], seq);
        netslirp_poke(s, &s->poke[i], seq + 0x80000000u);
    }
    free(s->poke);
    s->poke = NULL;
    s->npoke = 0;
}

static void netslirp_migrated_away(struct net_backend *nb)
{
    struct netslirp *s = netslirp_of(nb);

    if (!s->slirp)
        return;
    /* the listeners first, so a destination on this host can bind them */
    for (unsigned i = 0; i < nb->opts.nhostfwd; i++) {
        const struct net_hostfwd *f = &nb->opts.hostfwd[i];
        if (s->fwd_bound & (1u << i))
            slirp_remove_hostfwd(s->slirp, f->udp, f->host_addr, f->host_port);
    }
    s->fwd_bound = s->fwd_pending = 0;
    /* then every connection, with a RST rather than a FIN: a host peer
     * reading up to EOF must not take a cut stream for a whole one */
    for (unsigned i = 0; i < s->nsock_fds; i++) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        int type = 0;
        socklen_t tlen = sizeof(type);
        if (getsockopt(s->sock_fds[i], SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 &&
            type == SOCK_STREAM)
            (void)setsockopt(s->sock_fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    slirp_cleanup(s->slirp);
    s->slirp = NULL;
    s->nfds = 0;
    while (s->timers) {
        struct netslirp_timer *t = s->timers;
        s->timers = t->next;
        free(t);
    }
}

static const struct net_backend_ops netslirp_ops = {
    .kind = "user",
    .send = netslirp_send,
    .pollfds = netslirp_pollfds,
    .poll = netslirp_poll,
    .next_deadline = netslirp_next_deadline,
    .fini = netslirp_fini,
    .save = netslirp_save,
    .load = netslirp_load,
    .loaded = netslirp_loaded,
    .migrated_away = netslirp_migrated_away,
};

/* ---- construction ------------------------------------------------------- */

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
    /* an -incoming VM binds them once its state is loaded (netslirp_loaded) */
    if (!o->hostfwd_later && netslirp_add_forwards(s, err, errlen) < 0)
        goto fail;
    return &s->nb;

fail:
    net_backend_free(&s->nb);
    return NULL;
}
