/*
 * Network backends, the common part: -netdev parsing (QEMU's spellings and
 * defaults), the receive queue with back-pressure, and dispatch to the
 * kinds (net_tap.c, net_slirp.c).  See net.h.
 */
#include "net/net_int.h"
#include "state/state_buf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing ------------------------------------------------------------ */

#define NET_SPEC_MAX 4096

static int net_fail(char *err, size_t errlen, const char *fmt, ...) gw_printf(3, 4);

static int net_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int net_parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "y") || !strcmp(v, "true"))
        *out = true;
    else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "n") || !strcmp(v, "false"))
        *out = false;
    else
        return -EINVAL;
    return 0;
}

static int net_parse_addr(const char *v, struct in_addr *a)
{
    return inet_pton(AF_INET, v, a) == 1 ? 0 : -EINVAL;
}

/* A port 1..65535, decimal. */
static int net_parse_port(const char *v, uint16_t *port)
{
    unsigned long n;
    char *end;

    if (!isdigit((unsigned char)*v))
        return -EINVAL;
    errno = 0;
    n = strtoul(v, &end, 10);
    if (errno || *end || n < 1 || n > 65535)
        return -EINVAL;
    *port = (uint16_t)n;
    return 0;
}

/* QEMU's id rule: a letter, then letters, digits, '-', '.', '_'. */
static bool net_id_valid(const char *id)
{
    if (!isalpha((unsigned char)*id))
        return false;
    for (const char *p = id + 1; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
            return false;
    return true;
}

int net_parse_mac(const char *s, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
            return -EINVAL;
        mac[i] = (uint8_t)strtoul((char[]){s[0], s[1], 0}, NULL, 16);
        s += 2;
        if (i < 5) {
            if (*s != ':' && *s != '-')
                return -EINVAL;
            s++;
        }
    }
    /* A NIC's own address is never a group address. */
    return *s || (mac[0] & 1) ? -EINVAL : 0;
}

/*
 * "net=A[/M]": M is a prefix length or a dotted mask; without one the
 * classful mask QEMU picks (A: /8, B: /16, C: /24).
 */
static int net_parse_net(const char *v, struct in_addr *net, struct in_addr *mask)
{
    char buf[64];
    char *slash;
    uint32_t a, m;

    if (strlen(v) >= sizeof(buf))
        return -EINVAL;
    strcpy(buf, v);
    slash = strchr(buf, '/');
    if (slash)
        *slash++ = '\0';
    if (net_parse_addr(buf, net) < 0)
        return -EINVAL;
    a = ntohl(net->s_addr);
    if (!slash) {
        m = !(a & 0x80000000u) ? 0xff000000u : !(a & 0x40000000u) ? 0xffff0000u : 0xffffff00u;
    } else if (strchr(slash, '.')) {
        struct in_addr ma;
        if (net_parse_addr(slash, &ma) < 0)
            return -EINVAL;
        m = ntohl(ma.s_addr);
        if (m & (~m >> 1)) /* not a run of ones then zeros */
            return -EINVAL;
    } else {
        char *end;
        unsigned long bits;
        if (!isdigit((unsigned char)*slash))
            return -EINVAL;
        bits = strtoul(slash, &end, 10);
        if (*end || bits > 32)
            return -EINVAL;
        m = bits ? 0xffffffffu << (32 - bits) : 0;
    }
    /* slirp needs room for the host, DNS and DHCP addresses. */
    if (m == 0 || (~m & 0xffffffffu) < 31)
        return -EINVAL;
    mask->s_addr = htonl(m);
    net->s_addr = htonl(a & m);
    return 0;
}

/* "[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT" (QEMU's hostfwd syntax). */
static int net_parse_hostfwd(const char *v, struct net_hostfwd *f)
{
    char buf[128];
    char *proto, *haddr, *hport, *gaddr, *gport;

    if (strlen(v) >= sizeof(buf))
        return -EINVAL;
    strcpy(buf, v);
    proto = buf;
    haddr = strchr(proto, ':');
    if (!haddr)
        return -EINVAL;
    *haddr++ = '\0';
    hport = strchr(haddr, ':');
    if (!hport)
        return -EINVAL;
    *hport++ = '\0';
    gaddr = strchr(hport, '-');
    if (!gaddr)
        return -EINVAL;
    *gaddr++ = '\0';
    gport = strchr(gaddr, ':');
    if (!gport)
        return -EINVAL;
    *gport++ = '\0';

    memset(f, 0, sizeof(*f));
    if (!strcmp(proto, "udp"))
        f->udp = true;
    else if (*proto && strcmp(proto, "tcp") != 0)
        return -EINVAL;
    if (*haddr && net_parse_addr(haddr, &f->host_addr) < 0)
        return -EINVAL;
    if (*gaddr && net_parse_addr(gaddr, &f->guest_addr) < 0)
        return -EINVAL;
    if (net_parse_port(hport, &f->host_port) < 0 || net_parse_port(gport, &f->guest_port) < 0)
        return -EINVAL;
    return 0;
}

static int net_parse_user_opt(struct net_opts *o, const char *key, const char *val, bool *net_set,
                              bool *host_set, bool *dns_set, bool *dhcp_set, char *err,
                              size_t errlen)
{
    bool b;

    if (!strcmp(key, "net")) {
        if (net_parse_net(val, &o->net, &o->mask) < 0)
            return net_fail(err, errlen, "user: invalid net='%s' (e.g. 10.0.2.0/24)", val);
        *net_set = true;
    } else if (!strcmp(key, "host")) {
        if (net_parse_addr(val, &o->host) < 0)
            return net_fail(err, errlen, "user: invalid host address '%s'", val);
        *host_set = true;
    } else if (!strcmp(key, "dns")) {
        if (net_parse_addr(val, &o->dns) < 0)
            return net_fail(err, errlen, "user: invalid dns address '%s'", val);
        *dns_set = true;
    } else if (!strcmp(key, "dhcpstart")) {
        if (net_parse_addr(val, &o->dhcp_start) < 0)
            return net_fail(err, errlen, "user: invalid dhcpstart address '%s'", val);
        *dhcp_set = true;
    } else if (!strcmp(key, "restrict") || !strcmp(key, "restricted")) {
        if (net_parse_bool(val, &o->restricted) < 0)
            return net_fail(err, errlen, "user: %s needs on or off, not '%s'", key, val);
    } else if (!strcmp(key, "ipv4")) {
        if (net_parse_bool(val, &b) < 0 || !b)
            return net_fail(err, errlen, "user: ipv4=%s is not supported (IPv4 is always on)", val);
    } else if (!strcmp(key, "ipv6")) {
        if (net_parse_bool(val, &o->ipv6) < 0)
            return net_fail(err, errlen, "user: ipv6 needs on or off, not '%s'", val);
    } else if (!strcmp(key, "hostname")) {
        if (strlen(val) >= sizeof(o->hostname))
            return net_fail(err, errlen, "user: hostname too long");
        strcpy(o->hostname, val);
    } else if (!strcmp(key, "hostfwd")) {
        if (o->nhostfwd >= NET_MAX_HOSTFWD)
            return net_fail(err, errlen, "user: more than %d hostfwd rules", NET_MAX_HOSTFWD);
        if (net_parse_hostfwd(val, &o->hostfwd[o->nhostfwd]) < 0)
            return net_fail(err, errlen,
                            "user: invalid hostfwd='%s' (want [tcp|udp]:[HOSTADDR]:HOSTPORT-"
                            "[GUESTADDR]:GUESTPORT)",
                            val);
        o->nhostfwd++;
    } else {
        return net_fail(err, errlen, "user: unsupported option '%s'", key);
    }
    return 0;
}

/* The user network's addresses must fit together (as QEMU checks them). */
static int net_check_user(struct net_opts *o, bool host_set, bool dns_set, bool dhcp_set, char *err,
                          size_t errlen)
{
    uint32_t net = ntohl(o->net.s_addr), mask = ntohl(o->mask.s_addr);
    uint32_t host, dns, dhcp;

    if (!host_set)
        o->host.s_addr = htonl(net | 2);
    if (!dns_set)
        o->dns.s_addr = htonl(net | 3);
    if (!dhcp_set)
        o->dhcp_start.s_addr = htonl(net | 15);
    host = ntohl(o->host.s_addr);
    dns = ntohl(o->dns.s_addr);
    dhcp = ntohl(o->dhcp_start.s_addr);
    if ((host & mask) != net)
        return net_fail(err, errlen, "user: host address is not in the guest network");
    if ((dns & mask) != net || dns == host)
        return net_fail(err, errlen,
                        "user: dns address must be in the guest network and not the host");
    if ((dhcp & mask) != net || dhcp == host || dhcp == dns)
        return net_fail(err, errlen,
                        "user: dhcpstart must be in the guest network, not host or dns");
    for (unsigned i = 0; i < o->nhostfwd; i++) {
        struct net_hostfwd *f = &o->hostfwd[i];
        if (!f->guest_addr.s_addr)
            f->guest_addr = o->dhcp_start;
        else if ((ntohl(f->guest_addr.s_addr) & mask) != net)
            return net_fail(err, errlen, "user: hostfwd guest address is not in the guest network");
    }
    return 0;
}

static int net_parse_tap_opt(struct net_opts *o, const char *key, const char *val, char *err,
                             size_t errlen)
{
    bool b;

    if (!strcmp(key, "ifname")) {
        if (!*val || strlen(val) >= sizeof(o->ifname) || strchr(val, '/'))
            return net_fail(err, errlen, "tap: invalid ifname '%s' (1 to %d characters)", val,
                            NET_IFNAME_MAX - 1);
        strcpy(o->ifname, val);
    } else if (!strcmp(key, "script") || !strcmp(key, "downscript")) {
        if (*val && strcmp(val, "no") != 0)
            return net_fail(err, errlen,
                            "tap: %s=%s: godwit-vm does not run network scripts; configure the "
                            "TAP device beforehand and use %s=no",
                            key, val, key);
    } else if (!strcmp(key, "vnet_hdr")) {
        if (net_parse_bool(val, &o->vnet_hdr) < 0)
            return net_fail(err, errlen, "tap: vnet_hdr needs on or off, not '%s'", val);
    } else if (!strcmp(key, "vhost")) {
        if (net_parse_bool(val, &b) < 0 || b)
            return net_fail(err, errlen, "tap: vhost=%s is not supported (only vhost=off)", val);
    } else if (!strcmp(key, "fd")) {
        char *end;
        long n;
        errno = 0;
        n = strtol(val, &end, 10);
        if (!isdigit((unsigned char)*val) || *end || errno || n > 1000000)
            return net_fail(err, errlen, "tap: invalid fd='%s'", val);
        o->fd = (int)n;
    } else {
        return net_fail(err, errlen, "tap: unsupported option '%s'", key);
    }
    return 0;
}

int net_parse(const char *spec, struct net_opts *o, char *err, size_t errlen)
{
    char buf[NET_SPEC_MAX];
    char *save = NULL, *tok;
    bool net_set = false, host_set = false, dns_set = false, dhcp_set = false;
    int ret;

    memset(o, 0, sizeof(*o));
    o->fd = -1;
    o->ipv6 = true;
    o->net.s_addr = htonl(0x0a000200); /* 10.0.2.0/24 */
    o->mask.s_addr = htonl(0xffffff00);
    if (strlen(spec) >= sizeof(buf))
        return net_fail(err, errlen, "value too long");
    strcpy(buf, spec);
    tok = strtok_r(buf, ",", &save);
    if (tok && !strncmp(tok, "type=", 5))
        tok += 5;
    if (!tok || strchr(tok, '='))
        return net_fail(err, errlen, "no netdev type given (user or tap)");
    if (!strcmp(tok, "user"))
        o->kind = NET_KIND_USER;
    else if (!strcmp(tok, "tap"))
        o->kind = NET_KIND_TAP;
    else
        return net_fail(err, errlen, "netdev type '%s' is not supported (user or tap)", tok);

    while ((tok = strtok_r(NULL, ",", &save))) {
        char *val = strchr(tok, '=');
        if (!val)
            return net_fail(err, errlen, "option '%s' needs a value (key=value)", tok);
        *val++ = '\0';
        if (!strcmp(tok, "id")) {
            if (strlen(val) >= sizeof(o->id) || !net_id_valid(val))
                return net_fail(err, errlen, "invalid id '%s'", val);
            strcpy(o->id, val);
            continue;
        }
        if (o->kind == NET_KIND_USER)
            ret = net_parse_user_opt(o, tok, val, &net_set, &host_set, &dns_set, &dhcp_set, err,
                                     errlen);
        else
            ret = net_parse_tap_opt(o, tok, val, err, errlen);
        if (ret < 0)
            return ret;
    }
    if (!o->id[0])
        return net_fail(err, errlen, "parameter 'id' is missing");
    if (o->kind == NET_KIND_USER) {
        (void)net_set;
        return net_check_user(o, host_set, dns_set, dhcp_set, err, errlen);
    }
    if (o->fd >= 0 && o->ifname[0])
        return net_fail(err, errlen, "tap: fd= and ifname= exclude each other");
    return 0;
}

/* ---- the receive queue ---------------------------------------------------- */

void net_backend_init(struct net_backend *nb, const struct net_backend_ops *ops,
                      const struct net_opts *o)
{
    nb->ops = ops;
    nb->opts = *o;
}

static struct net_frame *net_queue_head(struct net_backend *nb)
{
    return nb->q_len ? nb->queue[nb->q_head] : NULL;
}

static void net_queue_pop(struct net_backend *nb)
{
    struct net_frame *f = nb->queue[nb->q_head];

    nb->q_bytes -= f->len;
    free(f);
    nb->queue[nb->q_head] = NULL;
    nb->q_head = (nb->q_head + 1) % NET_QUEUE_FRAMES;
    nb->q_len--;
}

static void net_queue_push(struct net_backend *nb, const uint8_t *buf, size_t len)
{
    struct net_frame *f;

    if (nb->q_len == NET_QUEUE_FRAMES || nb->q_bytes + len > NET_QUEUE_BYTES) {
        nb->stats.rx_dropped++;
        return;
    }
    f = malloc(sizeof(*f) + len);
    if (!f) {
        nb->stats.rx_dropped++;
        return;
    }
    f->len = len;
    memcpy(f->data, buf, len);
    nb->queue[(nb->q_head + nb->q_len) % NET_QUEUE_FRAMES] = f;
    nb->q_len++;
    nb->q_bytes += len;
}

/* Offer one frame to the peer: 1 taken (or dropped for good), 0 no room. */
static int net_offer(struct net_backend *nb, const uint8_t *buf, size_t len)
{
    int ret;

    if (!nb->has_peer) {
        nb->stats.rx_dropped++;
        return 1;
    }
    if (nb->peer.can_receive && !nb->peer.can_receive(nb->peer.opaque))
        return 0;
    ret = nb->peer.receive(nb->peer.opaque, buf, len);
    if (ret == -EAGAIN)
        return 0;
    nb->need_flush = true;
    if (ret < 0) {
        nb->stats.rx_dropped++;
    } else {
        nb->stats.rx_frames++;
        nb->stats.rx_bytes += len;
    }
    return 1;
}

void net_deliver(struct net_backend *nb, const uint8_t *buf, size_t len)
{
    if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
        nb->stats.rx_dropped++;
        return;
    }
    if (nb->q_len == 0 && net_offer(nb, buf, len))
        return;
    if (nb->q_len == 0)
        nb->stats.rx_stalls++;
    net_queue_push(nb, buf, len);
}

void net_flush(struct net_backend *nb)
{
    if (nb->need_flush && nb->has_peer && nb->peer.flush) {
        nb->need_flush = false;
        nb->peer.flush(nb->peer.opaque);
    }
}

bool net_rx_blocked(struct net_backend *nb)
{
    if (nb->q_len)
        return true;
    return nb->has_peer && nb->peer.can_receive && !nb->peer.can_receive(nb->peer.opaque);
}

void net_iov_gather(const struct iovec *iov, int iovcnt, uint8_t *buf, size_t len)
{
    size_t off = 0;

    for (int i = 0; i < iovcnt && off < len; i++) {
        size_t n = iov[i].iov_len < len - off ? iov[i].iov_len : len - off;
        memcpy(buf + off, iov[i].iov_base, n);
        off += n;
    }
}

/* ---- the public face -------------------------------------------------------- */

struct net_backend *net_backend_open(const struct net_opts *o, char *err, size_t errlen)
{
    switch (o->kind) {
    case NET_KIND_USER: return netslirp_open(o, err, errlen);
    case NET_KIND_TAP: return tap_open(o, err, errlen);
    }
    snprintf(err, errlen, "unknown netdev kind");
    return NULL;
}

void net_backend_free(struct net_backend *nb)
{
    if (!nb)
        return;
    nb->ops->fini(nb);
    while (nb->q_len)
        net_queue_pop(nb);
    free(nb);
}

void net_backend_attach(struct net_backend *nb, const struct net_peer *peer)
{
    if (peer) {
        nb->peer = *peer;
        nb->has_peer = true;
    } else {
        memset(&nb->peer, 0, sizeof(nb->peer));
        nb->has_peer = false;
    }
    nb->need_flush = false;
}

const char *net_backend_id(const struct net_backend *nb)
{
    return nb->opts.id;
}

const char *net_backend_kind(const struct net_backend *nb)
{
    return nb->ops->kind;
}

const struct net_stats *net_backend_stats(const struct net_backend *nb)
{
    return &nb->stats;
}

int net_backend_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
    size_t len = 0;
    int ret;

    for (int i = 0; i < iovcnt; i++) {
        len += iov[i].iov_len;
        if (len > NET_FRAME_MAX)
            break;
    }
    if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
        nb->stats.tx_dropped++;
        return -EMSGSIZE;
    }
    ret = nb->ops->send(nb, iov, iovcnt, len);
    if (ret < 0) {
        nb->stats.tx_dropped++;
    } else {
        nb->stats.tx_frames++;
        nb->stats.tx_bytes += len;
    }
    net_flush(nb); /* slirp may have answered at once (ARP, DHCP, ACKs) */
    return ret;
}

void net_backend_rx_ready(struct net_backend *nb)
{
    struct net_frame *f;

    while ((f = net_queue_head(nb)) && net_offer(nb, f->data, f->len))
        net_queue_pop(nb);
    net_flush(nb);
}

int net_backend_fwd_fd(struct net_backend *nb)
{
    return nb->ops->fwd_fd ? nb->ops->fwd_fd(nb) : -1;
}

long net_backend_take(struct net_backend *nb, uint8_t *buf, size_t cap)
{
    return nb->ops->take ? nb->ops->take(nb, buf, cap) : 0;
}

void net_backend_requeue(struct net_backend *nb, const uint8_t *buf, size_t len)
{
    if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
        nb->stats.rx_dropped++;
        return;
    }
    net_queue_push(nb, buf, len); /* the loop's next poll hands the queue over first */
}

void net_backend_inject(struct net_backend *nb, const uint8_t *buf, size_t len)
{
    nb->stats.rx_forwarded++;
    net_deliver(nb, buf, len);
    net_flush(nb);
}

int net_backend_pollfds(struct net_backend *nb, struct pollfd *fds, int max)
{
    return max > 0 ? nb->ops->pollfds(nb, fds, max) : 0;
}

void net_backend_poll(struct net_backend *nb)
{
    net_backend_rx_ready(nb);
    nb->ops->poll(nb);
    net_flush(nb);
}

uint64_t net_backend_next_deadline(struct net_backend *nb)
{
    return nb->ops->next_deadline ? nb->ops->next_deadline(nb) : UINT64_MAX;
}

/* ---- live migration ------------------------------------------------------------ */

bool net_backend_migrates(const struct net_backend *nb)
{
    return nb->ops->save != NULL;
}

void net_backend_save(struct net_backend *nb, struct state_buf *b)
{
    if (nb->ops->save)
        nb->ops->save(nb, b);
}

int net_backend_load(struct net_backend *nb, struct state_buf *b, unsigned version)
{
    if (!nb->ops->load) {
        state_buf_fail(b, -EINVAL, "netdev %s (%s) has no state to load", nb->opts.id,
                       nb->ops->kind);
        return -EINVAL;
    }
    return nb->ops->load(nb, b, version);
}

void net_backend_loaded(struct net_backend *nb)
{
    if (nb->ops->loaded)
        nb->ops->loaded(nb);
    net_flush(nb);
}

void net_backend_migrated_away(struct net_backend *nb)
{
    /* only the kinds that have something to let go: a TAP port may still
     * be read by the migration job (frame forwarding) */
    if (nb->ops->migrated_away)
        nb->ops->migrated_away(nb);
}
