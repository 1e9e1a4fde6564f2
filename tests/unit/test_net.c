/*
 * Network backends without a guest: -netdev option parsing, MAC parsing,
 * libslirp driven by a fake NIC (ARP, DHCP discover -> offer, ping of the
 * gateway, a hostfwd connection reaching the "guest" as a SYN), the receive
 * queue's back-pressure, and a TAP device inside a private network
 * namespace (skipped when we may not create one) exchanging frames with a
 * packet socket.  No traffic leaves this machine.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "board_check.h"
#include "net/net.h"
#include "net/net_offload.h"
#include "state/state_buf.h"

static char err[512];

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* ---- a fake NIC ----------------------------------------------------------- */

#define FAKE_FRAMES 64

struct fake_nic {
    bool room;      /* can_receive */
    bool refuse;    /* receive() says -EAGAIN */
    unsigned count; /* frames taken */
    unsigned flushes;
    size_t len[FAKE_FRAMES];
    uint8_t frame[FAKE_FRAMES][2048];
};

static bool fake_can_receive(void *opaque)
{
    struct fake_nic *f = opaque;
    return f->room;
}

static int fake_receive(void *opaque, const uint8_t *buf, size_t len)
{
    struct fake_nic *f = opaque;

    if (f->refuse)
        return -EAGAIN;
    if (f->count < FAKE_FRAMES) {
        f->len[f->count] = len;
        memcpy(f->frame[f->count], buf, len < 2048 ? len : 2048);
    }
    f->count++;
    return 0;
}

static void fake_flush(void *opaque)
{
    struct fake_nic *f = opaque;
    f->flushes++;
}

static void fake_attach(struct net_backend *nb, struct fake_nic *f)
{
    struct net_peer peer = {f, fake_can_receive, fake_receive, fake_flush};

    memset(f, 0, sizeof(*f));
    f->room = true;
    net_backend_attach(nb, &peer);
}

/* Index of the first frame from `from` on with EtherType type, or -1. */
static int fake_find(const struct fake_nic *f, unsigned from, uint16_t type)
{
    for (unsigned i = from; i < f->count && i < FAKE_FRAMES; i++)
        if (f->len[i] >= 14 && ((f->frame[i][12] << 8) | f->frame[i][13]) == type)
            return (int)i;
    return -1;
}

/* ---- frame building ------------------------------------------------------- */

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
    uint32_t sum = 0;

    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        sum += (uint32_t)p[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static size_t eth_header(uint8_t *f, const uint8_t *dst, uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, guest_mac, 6);
    put16(f + 12, type);
    return 14;
}

/* IPv4 header at p for a payload of len bytes; returns 20. */
static size_t ip_header(uint8_t *p, uint8_t proto, uint32_t src, uint32_t dst, size_t len)
{
    memset(p, 0, 20);
    p[0] = 0x45;
    put16(p + 2, (uint16_t)(20 + len));
    p[8] = 64;
    p[9] = proto;
    memcpy(p + 12, &src, 4);
    memcpy(p + 16, &dst, 4);
    put16(p + 10, ip_csum(p, 20));
    return 20;
}

static size_t build_arp_request(uint8_t *f, const char *target)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    size_t n = eth_header(f, bcast, 0x0806);
    uint8_t *a = f + n;
    uint32_t sip = inet_addr("10.0.2.15"), tip = inet_addr(target);

    memset(a, 0, 28);
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, 1);
    memcpy(a + 8, guest_mac, 6);
    memcpy(a + 14, &sip, 4);
    memcpy(a + 24, &tip, 4);
    return n + 28;
}

static size_t build_dhcp_discover(uint8_t *f)
{
    static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    size_t n = eth_header(f, bcast, 0x0800);
    uint8_t *ip = f + n, *udp = ip + 20, *b = udp + 8;
    size_t blen = 240 + 4;

    memset(b, 0, 300);
    b[0] = 1; /* BOOTREQUEST */
    b[1] = 1; /* Ethernet */
    b[2] = 6;
    memcpy(b + 4, "\x12\x34\x56\x78", 4); /* xid */
    put16(b + 10, 0x8000);                /* broadcast flag */
    memcpy(b + 28, guest_mac, 6);
    memcpy(b + 236, "\x63\x82\x53\x63", 4); /* magic cookie */
    b[240] = 53;                            /* DHCP message type */
    b[241] = 1;
    b[242] = 1; /* DISCOVER */
    b[243] = 255;
    blen = 300; /* BOOTP minimum */
    put16(udp, 68);
    put16(udp + 2, 67);
    put16(udp + 4, (uint16_t)(8 + blen));
    put16(udp + 6, 0); /* no UDP checksum */
    ip_header(ip, 17, 0, 0xffffffffu, 8 + blen);
    return n + 20 + 8 + blen;
}

static size_t build_ping(uint8_t *f, const uint8_t *dst_mac, const char *dst)
{
    size_t n = eth_header(f, dst_mac, 0x0800);
    uint8_t *ip = f + n, *icmp = ip + 20;

    memset(icmp, 0, 8 + 32);
    icmp[0] = 8; /* echo request */
    put16(icmp + 4, 0x4242);
    put16(icmp + 6, 1);
    memcpy(icmp + 8, "godwit-ping-payload-0123456789ab", 32);
    put16(icmp + 2, ip_csum(icmp, 40));
    ip_header(ip, 1, inet_addr("10.0.2.15"), inet_addr(dst), 40);
    return n + 20 + 40;
}

static int send_frame(struct net_backend *nb, uint8_t *f, size_t len)
{
    struct iovec iov[2] = {{f, 10}, {f + 10, len - 10}}; /* split: gather path */
    return net_backend_send(nb, iov, 2);
}

/* Poll the backend for up to ms milliseconds or until f holds want frames. */
static void pump(struct net_backend *nb, struct fake_nic *f, unsigned want, int ms)
{
    for (int i = 0; i < ms && f->count < want; i++) {
        struct pollfd fds[64];
        int n = net_backend_pollfds(nb, fds, 64);
        poll(fds, (nfds_t)n, 1);
        net_backend_poll(nb);
    }
}

/* ---- parsing ----------------------------------------------------------------- */

static int parse_opts(const char *spec, struct net_opts *o, char *e, size_t elen)
{
    e[0] = '\0';
    return net_parse(spec, o, e, elen);
}

static void test_parse(void)
{
    struct net_opts o;
    uint8_t mac[6];
    char a[INET_ADDRSTRLEN];

    CHECK(parse_opts("user,id=n0", &o, err, sizeof(err)) == 0 && o.kind == NET_KIND_USER &&
              !strcmp(o.id, "n0") && o.ipv6 && !o.restricted,
          "user,id=n0: %s", err);
    CHECK(o.net.s_addr == inet_addr("10.0.2.0") && o.mask.s_addr == inet_addr("255.255.255.0") &&
              o.host.s_addr == inet_addr("10.0.2.2") && o.dns.s_addr == inet_addr("10.0.2.3") &&
              o.dhcp_start.s_addr == inet_addr("10.0.2.15"),
          "QEMU's default addresses");
    CHECK(parse_opts("user,id=u,net=192.168.76.0/24,restrict=on,ipv6=off,"
                     "hostfwd=tcp::8080-:80,hostfwd=udp:127.0.0.1:5353-192.168.76.9:53",
                     &o, err, sizeof(err)) == 0,
          "user with net, restrict, hostfwd: %s", err);
    inet_ntop(AF_INET, &o.host, a, sizeof(a));
    CHECK(!strcmp(a, "192.168.76.2") && o.dhcp_start.s_addr == inet_addr("192.168.76.15") &&
              o.restricted && !o.ipv6,
          "addresses follow net= (host %s)", a);
    CHECK(o.nhostfwd == 2 && !o.hostfwd[0].udp && o.hostfwd[0].host_port == 8080 &&
              o.hostfwd[0].host_addr.s_addr == INADDR_ANY &&
              o.hostfwd[0].guest_addr.s_addr == inet_addr("192.168.76.15") &&
              o.hostfwd[0].guest_port == 80 && o.hostfwd[1].udp &&
              o.hostfwd[1].host_addr.s_addr == inet_addr("127.0.0.1") &&
              o.hostfwd[1].guest_addr.s_addr == inet_addr("192.168.76.9"),
          "hostfwd rules");
    CHECK(parse_opts("user,id=u,net=10.9.0.0/16,host=10.9.1.1,dns=10.9.1.2,dhcpstart=10.9.2.0", &o,
                     err, sizeof(err)) == 0 &&
              o.mask.s_addr == inet_addr("255.255.0.0") && o.host.s_addr == inet_addr("10.9.1.1"),
          "explicit addresses: %s", err);
    CHECK(parse_opts("user,id=u,net=10.0.2.0/24,hostfwd=tcp::1-10.0.3.1:2", &o, err, sizeof(err)) ==
              -EINVAL,
          "hostfwd guest address outside the network");
    CHECK(parse_opts("user,id=u,net=172.20.0.0/255.255.0.0", &o, err, sizeof(err)) == 0 &&
              o.mask.s_addr == inet_addr("255.255.0.0"),
          "dotted mask");

    CHECK(parse_opts("user", &o, err, sizeof(err)) == -EINVAL && strstr(err, "'id'"),
          "missing id -> \"%s\"", err);
    CHECK(parse_opts("bridge,id=n0", &o, err, sizeof(err)) == -EINVAL && strstr(err, "bridge"),
          "unsupported type -> \"%s\"", err);
    CHECK(parse_opts("user,id=n0,smb=/tmp", &o, err, sizeof(err)) == -EINVAL && strstr(err, "smb"),
          "unknown option named -> \"%s\"", err);
    CHECK(parse_opts("user,id=n0,hostfwd=tcp::80", &o, err, sizeof(err)) == -EINVAL &&
              strstr(err, "hostfwd"),
          "bad hostfwd -> \"%s\"", err);
    CHECK(parse_opts("user,id=n0,hostfwd=sctp::1-:2", &o, err, sizeof(err)) == -EINVAL,
          "bad hostfwd protocol");
    CHECK(parse_opts("user,id=n0,hostfwd=tcp::0-:22", &o, err, sizeof(err)) == -EINVAL,
          "port 0 refused");
    CHECK(parse_opts("user,id=n0,hostfwd=tcp::70000-:22", &o, err, sizeof(err)) == -EINVAL,
          "port > 65535 refused");
    CHECK(parse_opts("user,id=n0,host=10.0.3.2", &o, err, sizeof(err)) == -EINVAL &&
              strstr(err, "host"),
          "host outside the network -> \"%s\"", err);
    CHECK(parse_opts("user,id=n0,dns=10.0.2.2", &o, err, sizeof(err)) == -EINVAL,
          "dns = host refused");
    CHECK(parse_opts("user,id=n0,net=10.0.2.0/30", &o, err, sizeof(err)) == -EINVAL,
          "a network too small");
    CHECK(parse_opts("user,id=0bad", &o, err, sizeof(err)) == -EINVAL,
          "id must start with a letter");
    CHECK(parse_opts("user,id=n0,ipv4=off", &o, err, sizeof(err)) == -EINVAL, "ipv4=off refused");

    CHECK(parse_opts("tap,id=t0,ifname=tap0,script=no,downscript=no", &o, err, sizeof(err)) == 0 &&
              o.kind == NET_KIND_TAP && !strcmp(o.ifname, "tap0") && o.fd == -1 && !o.vnet_hdr,
          "tap,ifname,script=no: %s", err);
    CHECK(parse_opts("tap,id=t0,ifname=tap0,script=/etc/qemu-ifup", &o, err, sizeof(err)) ==
                  -EINVAL &&
              strstr(err, "does not run network scripts"),
          "script=PATH refused clearly -> \"%s\"", err);
    CHECK(parse_opts("tap,id=t0,downscript=yes", &o, err, sizeof(err)) == -EINVAL,
          "downscript=yes refused");
    CHECK(parse_opts("tap,id=t0,fd=5,vnet_hdr=on", &o, err, sizeof(err)) == 0 && o.fd == 5 &&
              o.vnet_hdr,
          "fd=, vnet_hdr=on");
    CHECK(parse_opts("tap,id=t0,fd=5,ifname=x", &o, err, sizeof(err)) == -EINVAL,
          "fd= with ifname= refused");
    CHECK(parse_opts("tap,id=t0,ifname=an-interface-name-too-long", &o, err, sizeof(err)) ==
              -EINVAL,
          "long ifname refused");
    CHECK(parse_opts("tap,id=t0,vhost=on", &o, err, sizeof(err)) == -EINVAL, "vhost=on refused");
    CHECK(parse_opts("type=tap,id=t0", &o, err, sizeof(err)) == 0 && o.kind == NET_KIND_TAP,
          "type=tap spelling");

    CHECK(net_parse_mac("52:54:00:12:34:56", mac) == 0 && !memcmp(mac, guest_mac, 6), "MAC");
    CHECK(net_parse_mac("52-54-00-ab-CD-ef", mac) == 0 && mac[3] == 0xab && mac[5] == 0xef,
          "MAC with dashes, mixed case");
    CHECK(net_parse_mac("01:00:5e:00:00:01", mac) == -EINVAL, "multicast MAC refused");
    CHECK(net_parse_mac("52:54:00:12:34", mac) == -EINVAL, "short MAC refused");
    CHECK(net_parse_mac("52:54:00:12:34:567", mac) == -EINVAL, "long MAC refused");
    CHECK(net_parse_mac("52:54:00:12:34:5g", mac) == -EINVAL, "non-hex MAC refused");
}

/* ---- slirp ----------------------------------------------------------------------- */

/* A TCP port on 127.0.0.1 nobody listens on right now. */
static uint16_t free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    uint16_t port = 0;

    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &alen) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

/* The DHCP option `code` of a BOOTP payload, or NULL. */
static const uint8_t *dhcp_option(const uint8_t *b, size_t len, uint8_t code)
{
    size_t i = 240;

    while (i + 1 < len && b[i] != 255) {
        if (b[i] == 0) {
            i++;
            continue;
        }
        if (b[i] == code)
            return b + i;
        i += 2u + b[i + 1];
    }
    return NULL;
}

static void test_slirp(void)
{
    struct net_opts o;
    struct net_backend *nb;
    static struct fake_nic nic;
    uint8_t f[1500], host_mac[6];
    char spec[128];
    uint16_t port = free_port();
    int i, sock;

    snprintf(spec, sizeof(spec), "user,id=u0,hostfwd=tcp:127.0.0.1:%u-:2222", port);
    CHECK(parse_opts(spec, &o, err, sizeof(err)) == 0, "parse %s: %s", spec, err);
    nb = net_backend_open(&o, err, sizeof(err));
    CHECK(nb != NULL, "open user backend: %s", err);
    if (!nb)
        return;
    CHECK(!strcmp(net_backend_kind(nb), "user") && !strcmp(net_backend_id(nb), "u0"), "kind, id");
    fake_attach(nb, &nic);

    /* ARP: who has 10.0.2.2?  slirp answers at once, inside send. */
    CHECK(send_frame(nb, f, build_arp_request(f, "10.0.2.2")) == 0, "send ARP request");
    i = fake_find(&nic, 0, 0x0806);
    CHECK(i >= 0 && nic.len[i] >= 42 && nic.frame[i][21] == 2 &&
              !memcmp(nic.frame[i] + 28, "\x0a\x00\x02\x02", 4) &&
              !memcmp(nic.frame[i], guest_mac, 6),
          "ARP reply for 10.0.2.2, to our MAC");
    if (i >= 0)
        memcpy(host_mac, nic.frame[i] + 22, 6);
    else
        memset(host_mac, 0xff, 6);
    CHECK(nic.flushes >= 1, "the peer's flush ran after the batch");

    /* DHCP: discover -> offer of 10.0.2.15 with router .2 and DNS .3. */
    nic.count = 0;
    CHECK(send_frame(nb, f, build_dhcp_discover(f)) == 0, "send DHCPDISCOVER");
    pump(nb, &nic, 1, 200);
    i = fake_find(&nic, 0, 0x0800);
    if (i >= 0 && nic.len[i] > 14 + 20 + 8 + 240) {
        const uint8_t *ip = nic.frame[i] + 14, *b = ip + 28;
        size_t blen = nic.len[i] - 42;
        const uint8_t *type = dhcp_option(b, blen, 53), *router = dhcp_option(b, blen, 3);
        const uint8_t *dns = dhcp_option(b, blen, 6);
        CHECK(ip[9] == 17 && ip[20] == 0 && ip[21] == 67 && b[0] == 2 &&
                  !memcmp(b + 4, "\x12\x34\x56\x78", 4),
              "a BOOTREPLY from port 67 with our xid");
        CHECK(!memcmp(b + 16, "\x0a\x00\x02\x0f", 4), "yiaddr 10.0.2.15");
        CHECK(type && type[2] == 2, "DHCPOFFER");
        CHECK(router && !memcmp(router + 2, "\x0a\x00\x02\x02", 4), "router 10.0.2.2");
        CHECK(dns && !memcmp(dns + 2, "\x0a\x00\x02\x03", 4), "DNS 10.0.2.3");
    } else {
        CHECK(0, "no DHCP offer came back (%u frames)", nic.count);
    }

    /* Ping the gateway: slirp answers echo requests to its own address. */
    nic.count = 0;
    CHECK(send_frame(nb, f, build_ping(f, host_mac, "10.0.2.2")) == 0, "send ping");
    pump(nb, &nic, 1, 500);
    i = fake_find(&nic, 0, 0x0800);
    CHECK(i >= 0 && nic.frame[i][14 + 9] == 1 && nic.frame[i][34] == 0 &&
              !memcmp(nic.frame[i] + 42, "godwit-ping-payload", 19) &&
              ip_csum(nic.frame[i] + 14, 20) == 0,
          "ICMP echo reply from 10.0.2.2, payload intact, header checksum valid");

    /* Back-pressure: with no room, frames are queued and input is masked;
     * rx_ready hands them over in order. */
    nic.count = 0;
    nic.room = false;
    send_frame(nb, f, build_arp_request(f, "10.0.2.3"));
    send_frame(nb, f, build_arp_request(f, "10.0.2.2"));
    CHECK(nic.count == 0 && net_backend_stats(nb)->rx_stalls >= 1, "no room: nothing delivered");
    nic.room = true;
    net_backend_rx_ready(nb);
    CHECK(nic.count == 2 && !memcmp(nic.frame[0] + 28, "\x0a\x00\x02\x03", 4) &&
              !memcmp(nic.frame[1] + 28, "\x0a\x00\x02\x02", 4),
          "rx_ready delivers the queued frames in order");
    nic.count = 0;
    nic.refuse = true;
    send_frame(nb, f, build_arp_request(f, "10.0.2.2"));
    nic.refuse = false;
    CHECK(nic.count == 0, "-EAGAIN from receive keeps the frame");
    net_backend_poll(nb);
    CHECK(nic.count == 1, "and poll delivers it later");

    /* hostfwd: a host connection to 127.0.0.1:port becomes a SYN to
     * 10.0.2.15:2222 (slirp knows our MAC from the ARP requests). */
    nic.count = 0;
    sock = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int r = connect(sock, (struct sockaddr *)&a, sizeof(a));
        CHECK(r == 0 || errno == EINPROGRESS, "connect to the forwarded port %u", port);
    }
    pump(nb, &nic, 1, 1000);
    i = fake_find(&nic, 0, 0x0800);
    CHECK(i >= 0 && nic.frame[i][14 + 9] == 6 &&
              !memcmp(nic.frame[i] + 14 + 16, "\x0a\x00\x02\x0f", 4) &&
              ((nic.frame[i][36] << 8) | nic.frame[i][37]) == 2222 &&
              (nic.frame[i][14 + 20 + 13] & 0x02),
          "hostfwd: a TCP SYN to 10.0.2.15:2222 reaches the NIC");
    close(sock);

    /* Detached: frames are dropped and counted, nothing breaks. */
    {
        uint64_t before = net_backend_stats(nb)->rx_dropped;
        net_backend_attach(nb, NULL);
        send_frame(nb, f, build_arp_request(f, "10.0.2.2"));
        CHECK(net_backend_stats(nb)->rx_dropped == before + 1, "no peer: dropped, counted");
    }
    CHECK(net_backend_stats(nb)->tx_frames >= 7, "tx counted");
    CHECK(send_frame(nb, f, 12) == -EMSGSIZE, "a runt frame is refused");
    net_backend_free(nb);

    /* A forward on a port in use fails at open, naming the rule. */
    {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t alen = sizeof(a);
        int ls = socket(AF_INET, SOCK_STREAM, 0);
        if (ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(ls, 1) == 0 &&
            getsockname(ls, (struct sockaddr *)&a, &alen) == 0) {
            snprintf(spec, sizeof(spec), "user,id=u1,hostfwd=tcp:127.0.0.1:%u-:22",
                     ntohs(a.sin_port));
            CHECK(parse_opts(spec, &o, err, sizeof(err)) == 0, "parse");
            nb = net_backend_open(&o, err, sizeof(err));
            CHECK(nb == NULL && strstr(err, "forwarding rule"), "port in use -> \"%s\"", err);
            net_backend_free(nb);
        }
        if (ls >= 0)
            close(ls);
    }
}

/* ---- offloads ------------------------------------------------------------------ */

/* The Internet checksum the slow, obvious way (RFC 1071), as a reference. */
static uint16_t ref_sum(const uint8_t *p, size_t len, uint32_t start)
{
    uint32_t sum = start;

    for (size_t i = 0; i < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | (i + 1 < len ? p[i + 1] : 0));
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

/* Ethernet + IPv4 or IPv6 + TCP (32-byte header) + payload pattern. */
static size_t build_tcp(uint8_t *f, bool v6, size_t payload, uint8_t flags)
{
    static const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 1};
    size_t n = eth_header(f, dst, v6 ? 0x86dd : 0x0800), l3 = n, l4;

    if (v6) {
        memset(f + l3, 0, 40);
        f[l3] = 0x60;
        put16(f + l3 + 4, (uint16_t)(32 + payload));
        f[l3 + 6] = 6;
        f[l3 + 7] = 64;
        memcpy(f + l3 + 8, "\xfe\xc0\0\0\0\0\0\0\0\0\0\0\0\0\0\x0f", 16);
        memcpy(f + l3 + 24, "\xfe\xc0\0\0\0\0\0\0\0\0\0\0\0\0\0\x02", 16);
        l4 = l3 + 40;
    } else {
        ip_header(f + l3, 6, inet_addr("10.0.2.15"), inet_addr("10.0.2.2"), 32 + payload);
        put16(f + l3 + 4, 0x1234);
        l4 = l3 + 20;
    }
    memset(f + l4, 0, 32);
    put16(f + l4, 40000);
    put16(f + l4 + 2, 5001);
    put16(f + l4 + 4, 0xffff);
    put16(f + l4 + 6, 0xf000); /* seq 0xfffff000: wraps inside the frame */
    f[l4 + 12] = 8 << 4;       /* 32-byte header */
    f[l4 + 13] = flags;
    put16(f + l4 + 14, 501);
    f[l4 + 20] = 1; /* NOP, NOP, timestamp option */
    f[l4 + 21] = 1;
    f[l4 + 22] = 8;
    f[l4 + 23] = 10;
    for (size_t i = 0; i < payload; i++)
        f[l4 + 32 + i] = (uint8_t)(i * 7 + 3);
    return l4 + 32 + payload;
}

struct segs {
    unsigned count;
    size_t len[64];
    uint8_t data[64][2048];
};

static void collect(void *opaque, const uint8_t *seg, size_t len)
{
    struct segs *s = opaque;

    if (s->count < 64 && len <= 2048) {
        memcpy(s->data[s->count], seg, len);
        s->len[s->count] = len;
    }
    s->count++;
}

static void test_tso(bool v6)
{
    static uint8_t f[70000], seg[NET_TSO_SEG_MAX];
    static struct segs out;
    const size_t payload = 5000, mss = 1448, l3 = 14, l4 = v6 ? 54 : 34, h = l4 + 32;
    size_t len = build_tcp(f, v6, payload, 0x80 | 0x10 | 0x08 | 0x01); /* CWR ACK PSH FIN */
    bool ok = true;
    size_t got = 0;

    memset(&out, 0, sizeof(out));
    CHECK(net_tso_segment(f, len, mss, seg, collect, &out) == 4 && out.count == 4,
          "%s: 5000 bytes at MSS 1448 -> 4 segments", v6 ? "IPv6" : "IPv4");
    for (unsigned i = 0; i < out.count && i < 4; i++) {
        const uint8_t *s = out.data[i];
        size_t n = i < 3 ? mss : payload - 3 * mss;
        uint32_t seq = ((uint32_t)s[l4 + 4] << 24 | (uint32_t)s[l4 + 5] << 16 |
                        (uint32_t)s[l4 + 6] << 8 | s[l4 + 7]);
        uint8_t fl = s[l4 + 13];
        ok &= out.len[i] == h + n;
        ok &= seq == 0xfffff000u + (uint32_t)(i * mss);
        ok &= (i == 3) ? (fl & 0x09) == 0x09 : !(fl & 0x09);
        ok &= (i == 0) ? (fl & 0x80) != 0 : !(fl & 0x80);
        ok &= (fl & 0x10) != 0;
        ok &= !memcmp(s + h, f + h + i * mss, n);
        ok &= !memcmp(s + l4 + 20, "\x01\x01\x08\x0a", 4); /* options copied */
        ok &= net_csum_verify(s, out.len[i]);
        if (v6) {
            ok &= (size_t)(s[l3 + 4] << 8 | s[l3 + 5]) == 32 + n;
            /* reference: pseudo-header (addresses, length, next header) + segment */
            uint32_t ps = ref_sum(s + l3 + 8, 32, 0) + (uint32_t)(32 + n) + 6;
            ok &= ref_sum(s + l4, 32 + n, ps) == 0xffff;
        } else {
            ok &= (size_t)(s[l3 + 2] << 8 | s[l3 + 3]) == 20 + 32 + n;
            ok &= (s[l3 + 4] << 8 | s[l3 + 5]) == 0x1234 + (int)i;
            ok &= ref_sum(s + l3, 20, 0) == 0xffff; /* IP header checksum */
            uint32_t ps = ref_sum(s + l3 + 12, 8, 0) + 6 + (uint32_t)(32 + n);
            ok &= ref_sum(s + l4, 32 + n, ps) == 0xffff;
        }
        got += n;
    }
    CHECK(ok && got == payload,
          "%s segments: lengths, seq, FIN/PSH last, CWR first, payload, checksums (reference)",
          v6 ? "IPv6" : "IPv4");

    /* A frame no longer than one MSS still gets its checksum. */
    memset(&out, 0, sizeof(out));
    len = build_tcp(f, v6, 100, 0x18);
    CHECK(net_tso_segment(f, len, mss, seg, collect, &out) == 1 && out.len[0] == len &&
              net_csum_verify(out.data[0], len),
          "%s: a small frame is one segment with a valid checksum", v6 ? "IPv6" : "IPv4");

    /* Hostile frames. */
    CHECK(net_tso_segment(f, h - 1, mss, seg, collect, &out) < 0, "truncated header refused");
    CHECK(net_tso_segment(f, len, 0, seg, collect, &out) < 0, "MSS 0 refused");
    CHECK(net_tso_segment(f, len, NET_TSO_SEG_MAX, seg, collect, &out) < 0, "huge MSS refused");
    f[v6 ? l3 + 6 : l3 + 9] = 17;
    CHECK(net_tso_segment(f, len, mss, seg, collect, &out) < 0, "UDP is not cut as TCP");
    f[v6 ? l3 + 6 : l3 + 9] = 6;
    f[l4 + 12] = 15 << 4; /* header longer than the frame allows? 60 bytes fits; shorten frame */
    CHECK(net_tso_segment(f, l4 + 40, mss, seg, collect, &out) < 0, "TCP header beyond the frame");
}

static void test_offload(void)
{
    static uint8_t f[2048];
    size_t len;
    uint32_t sum;

    test_tso(false);
    test_tso(true);

    /* NEEDS_CSUM for UDP: the field holds the pseudo-header sum. */
    {
        static const uint8_t dst[6] = {0x02, 0, 0, 0, 0, 1};
        size_t n = eth_header(f, dst, 0x0800);
        uint8_t *ip = f + n, *udp = ip + 20;
        ip_header(ip, 17, inet_addr("10.0.2.15"), inet_addr("10.0.2.3"), 8 + 33);
        put16(udp, 1234);
        put16(udp + 2, 53);
        put16(udp + 4, 8 + 33);
        for (int i = 0; i < 33; i++)
            udp[8 + i] = (uint8_t)(i + 1);
        sum = ref_sum(ip + 12, 8, 0) + 17 + 41;
        while (sum >> 16)
            sum = (sum & 0xffff) + (sum >> 16);
        put16(udp + 6, (uint16_t)sum);
        len = n + 20 + 41;
        CHECK(!net_csum_verify(f, len), "a partial checksum does not verify");
        CHECK(net_csum_complete(f, len, n + 20, 6) == 0 && net_csum_verify(f, len) &&
                  ref_sum(udp, 41, ref_sum(ip + 12, 8, 0) + 17 + 41) == 0xffff,
              "NEEDS_CSUM completed (odd length), verifies against the reference");
        CHECK(net_csum_verify(f, len + 10), "Ethernet padding after the IP packet is ignored");
        udp[20] ^= 0x40;
        CHECK(!net_csum_verify(f, len), "a flipped bit fails verification");
        udp[20] ^= 0x40;
        put16(udp + 6, 0);
        CHECK(net_csum_verify(f, len), "UDP/IPv4 without a checksum counts as valid");
        CHECK(net_csum_complete(f, len, n + 20, len) < 0 &&
                  net_csum_complete(f, len, len + 1, 0) < 0 &&
                  net_csum_complete(f, len, len - 1, 0) < 0,
              "checksum offsets outside the frame refused");
        CHECK(!net_csum_verify(f, 30) && !net_csum_verify(f, n + 20 + 7),
              "truncated frames do not verify");
        f[12] = 0x08;
        f[13] = 0x06;
        CHECK(!net_csum_verify(f, len), "ARP is not TCP/UDP");
    }
}

/* ---- tap (in a private network namespace) ---------------------------------- */

static int if_up(const char *name)
{
    struct ifreq ifr;
    int s = socket(AF_INET, SOCK_DGRAM, 0), ret = -1;

    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, name);
    if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        ret = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    if (s >= 0)
        close(s);
    return ret;
}

/* Runs in a child inside its own netns; returns the number of failures. */
static int tap_child(void)
{
    struct net_opts o;
    struct net_backend *nb;
    static struct fake_nic nic;
    uint8_t f[256], got[256];
    struct sockaddr_ll sll;
    int ps, failed = 0;
    ssize_t n;

    if (parse_opts("tap,id=t0,ifname=gwtap0,script=no,downscript=no", &o, err, sizeof(err)) < 0)
        return 1;
    nb = net_backend_open(&o, err, sizeof(err));
    if (!nb) {
        printf("FAIL open tap: %s\n", err);
        return 1;
    }
    fake_attach(nb, &nic);
    if (if_up("gwtap0") < 0) {
        printf("FAIL bring gwtap0 up: %s\n", strerror(errno));
        return 1;
    }
    /* A packet socket on the interface is "the host side". */
    ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)if_nametoindex("gwtap0");
    if (ps < 0 || bind(ps, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
        printf("FAIL packet socket: %s\n", strerror(errno));
        return 1;
    }

    /* guest -> host */
    build_arp_request(f, "192.168.77.1");
    memcpy(f + 6, "\x52\x54\x00\xaa\xbb\xcc", 6);
    struct iovec iov = {f, 42};
    failed += net_backend_send(nb, &iov, 1) != 0;
    n = -1;
    for (int i = 0; i < 100; i++) {
        struct pollfd p = {ps, POLLIN, 0};
        if (poll(&p, 1, 10) > 0) {
            n = recv(ps, got, sizeof(got), 0);
            if (n == 42 && !memcmp(got, f, 42))
                break;
        }
    }
    printf("%s tap: a frame sent by the NIC comes out of the interface\n",
           n == 42 && !memcmp(got, f, 42) ? "ok  " : "FAIL");
    failed += !(n == 42 && !memcmp(got, f, 42));

    /* host -> guest, with back-pressure */
    memcpy(f, "\x52\x54\x00\xaa\xbb\xcc", 6);
    memcpy(f + 6, "\x02\x00\x00\x00\x00\x01", 6);
    put16(f + 12, 0x88b5); /* local experimental EtherType */
    memset(f + 14, 0x5a, 50);
    nic.room = false;
    failed += send(ps, f, 64, 0) != 64;
    usleep(20000);
    {
        struct pollfd fds[4];
        int nf = net_backend_pollfds(nb, fds, 4);
        net_backend_poll(nb);
        printf("%s tap: no room -> fd not polled, nothing read\n",
               nf == 0 && nic.count == 0 ? "ok  " : "FAIL");
        failed += !(nf == 0 && nic.count == 0);
        nic.room = true;
        net_backend_rx_ready(nb);
        nf = net_backend_pollfds(nb, fds, 4);
        if (nf == 1)
            poll(fds, 1, 1000);
        net_backend_poll(nb);
    }
    {
        int i = fake_find(&nic, 0, 0x88b5);
        bool ok = i >= 0 && nic.len[i] == 64 && !memcmp(nic.frame[i], f, 64);
        printf("%s tap: a frame written to the interface reaches the NIC after rx_ready\n",
               ok ? "ok  " : "FAIL");
        failed += !ok;
    }
    net_backend_free(nb);
    close(ps);

    /* fd=N: an fd opened by someone else must be a TAP device. */
    {
        int pfd[2];
        if (pipe(pfd) == 0) {
            char spec[64];
            snprintf(spec, sizeof(spec), "tap,id=t1,fd=%d", pfd[0]);
            nb = parse_opts(spec, &o, err, sizeof(err)) == 0
                     ? net_backend_open(&o, err, sizeof(err))
                     : NULL;
            printf("%s tap: fd= of a pipe refused (%s)\n", nb ? "FAIL" : "ok  ", err);
            failed += nb != NULL;
            net_backend_free(nb);
        }
    }
    return failed;
}

static void test_tap(void)
{
    pid_t pid;
    int status;

    if (access("/dev/net/tun", R_OK | W_OK) != 0 || geteuid() != 0) {
        printf("skip tap tests: need root and /dev/net/tun\n");
        return;
    }
    pid = fork();
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) != 0) {
            printf("skip tap tests: cannot create a network namespace: %s\n", strerror(errno));
            _exit(77);
        }
        fflush(stdout);
        _exit(tap_child() ? 1 : 0);
    }
    fflush(stdout);
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        CHECK(0, "fork for the tap tests");
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        return;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "tap tests in a private netns");
}

/* ---- user networking across a migration ------------------------------------- */

/* The address slirp offers to a DHCPDISCOVER from mac (0 if none came). */
static uint32_t dhcp_offer_for(struct net_backend *nb, struct fake_nic *nic, const uint8_t mac[6])
{
    uint8_t f[1500];
    size_t len = build_dhcp_discover(f);
    uint32_t yiaddr = 0;
    int i;

    memcpy(f + 6, mac, 6);                /* Ethernet source */
    memcpy(f + 14 + 20 + 8 + 28, mac, 6); /* chaddr: slirp keys its leases on it */
    nic->count = 0;
    if (send_frame(nb, f, len) < 0)
        return 0;
    pump(nb, nic, 1, 200);
    i = fake_find(nic, 0, 0x0800);
    if (i >= 0 && nic->len[i] > 14 + 20 + 8 + 240 && nic->frame[i][14 + 9] == 17)
        memcpy(&yiaddr, nic->frame[i] + 14 + 28 + 16, 4);
    return yiaddr;
}

static struct net_backend *open_user(const char *spec, bool later)
{
    struct net_opts o;

    if (parse_opts(spec, &o, err, sizeof(err)) < 0)
        return NULL;
    o.hostfwd_later = later;
    return net_backend_open(&o, err, sizeof(err));
}

/* Load len bytes into a fresh backend; 0 or the error, its reason in why. */
static int load_into_fresh(const char *spec, const uint8_t *p, size_t len, char *why, size_t whylen)
{
    struct net_backend *nb = open_user(spec, true);
    struct state_buf r;
    int ret;

    if (!nb) {
        snprintf(why, whylen, "open: %.200s", err);
        return -99;
    }
    state_buf_reader(&r, p, len);
    ret = net_backend_load(nb, &r, NET_STATE_VERSION);
    if (ret == 0)
        ret = state_buf_expect_end(&r, "netdev-user");
    snprintf(why, whylen, "%s", state_buf_msg(&r));
    net_backend_free(nb);
    return ret;
}

/* Can we bind 127.0.0.1:port ourselves (nobody listens there)? */
static bool port_free(uint16_t port)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int s = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0;

    if (s >= 0)
        close(s);
    return ok;
}

static int listen_on(uint16_t port)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (s >= 0)
        (void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (s >= 0 && (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0)) {
        close(s);
        s = -1;
    }
    return s;
}

static void test_slirp_migration(void)
{
    static const uint8_t mac_b[6] = {0x52, 0x54, 0x00, 0x00, 0xbb, 0x02};
    static struct fake_nic nic;
    struct net_backend *src, *dst, *fresh;
    struct state_buf b, r;
    uint8_t f[1500], *bad;
    char spec[160], why[300];
    uint16_t port = free_port();
    size_t slirp_at, slirp_n, conn_at;
    uint32_t a, v;
    int i, sock, ls;

    snprintf(spec, sizeof(spec), "user,id=u0,hostfwd=tcp:127.0.0.1:%u-:2222", port);
    src = open_user(spec, false);
    CHECK(src && net_backend_migrates(src), "user backend: its state migrates (%s)", err);
    if (!src)
        return;
    fake_attach(src, &nic);

    /* Two leases: the guest's MAC gets .15, a second MAC .16. */
    a = dhcp_offer_for(src, &nic, guest_mac);
    CHECK(a == inet_addr("10.0.2.15"), "source: 10.0.2.15 offered to the first MAC");
    a = dhcp_offer_for(src, &nic, mac_b);
    CHECK(a == inet_addr("10.0.2.16"), "source: 10.0.2.16 offered to the second MAC");

    /* A hostfwd connection: its SYN to the guest is noted. */
    send_frame(src, f, build_arp_request(f, "10.0.2.2")); /* slirp learns our MAC */
    sock = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        (void)connect(sock, (struct sockaddr *)&sa, sizeof(sa));
    }
    nic.count = 0;
    pump(src, &nic, 1, 1000);
    i = fake_find(&nic, 0, 0x0800);
    CHECK(i >= 0 && nic.frame[i][14 + 9] == 6 && (nic.frame[i][14 + 20 + 13] & 0x02),
          "the hostfwd connection's SYN reached the guest");

    state_buf_init(&b);
    net_backend_save(src, &b);
    CHECK(!state_buf_error(&b) && b.len > 0, "save: %zu bytes %s", b.len, state_buf_msg(&b));

    /* Where the parts are: str id (u16 + 2 bytes), u32 version, u32 n, n
     * bytes of slirp, u32 connections, 24 bytes each. */
    slirp_at = 2 + 2 + 4 + 4;
    memcpy(&v, b.data + 2 + 2 + 4, 4);
    slirp_n = v;
    conn_at = slirp_at + slirp_n;
    memcpy(&v, b.data + conn_at, 4);
    CHECK(b.len == conn_at + 4 + 24 * (size_t)v && v == 1,
          "layout: %zu bytes of slirp state, %u connection(s) noted", slirp_n, v);

    /* A destination: the same netdev, hostfwd deferred. */
    dst = open_user(spec, true);
    CHECK(dst != NULL,
          "destination opens with its hostfwd deferred while the source holds the "
          "port (%s)",
          err);
    if (!dst) {
        state_buf_fini(&b);
        close(sock);
        net_backend_free(src);
        return;
    }
    state_buf_reader(&r, b.data, b.len);
    CHECK(net_backend_load(dst, &r, NET_STATE_VERSION) == 0 &&
              state_buf_expect_end(&r, "netdev-user") == 0,
          "load: %s", state_buf_msg(&r));
    fake_attach(dst, &nic);

    /* Loaded: the noted connection gets two pokes (ACKs from the peer to
     * the guest's port 2222, valid checksums). */
    nic.count = 0;
    net_backend_loaded(dst);
    {
        unsigned pokes = 0;
        for (unsigned k = 0; k < nic.count && k < FAKE_FRAMES; k++) {
            const uint8_t *ip = nic.frame[k] + 14, *tcp = ip + 20;
            uint8_t pseudo[12 + 20];
            if (nic.len[k] != 54 || ip[9] != 6 || ((tcp[2] << 8) | tcp[3]) != 2222 ||
                tcp[13] != 0x10 || memcmp(ip + 16, "\x0a\x00\x02\x0f", 4) ||
                memcmp(nic.frame[k], guest_mac, 6))
                continue;
            memcpy(pseudo, ip + 12, 8);
            pseudo[8] = 0;
            pseudo[9] = 6;
            pseudo[10] = 0;
            pseudo[11] = 20;
            memcpy(pseudo + 12, tcp, 20);
            if (ip_csum(ip, 20) == 0 && ip_csum(pseudo, sizeof(pseudo)) == 0)
                pokes++;
        }
        CHECK(pokes == 2,
              "loaded: two ACKs to 10.0.2.15:2222 with valid checksums (%u of %u "
              "frames)",
              pokes, nic.count);
    }

    /* The leases came along: the second MAC is offered .16 again (a fresh
     * stack offers it .15, its first free address). */
    a = dhcp_offer_for(dst, &nic, mac_b);
    CHECK(a == inet_addr("10.0.2.16"), "after load: the second MAC is offered 10.0.2.16 again");
    a = dhcp_offer_for(dst, &nic, guest_mac);
    CHECK(a == inet_addr("10.0.2.15"), "after load: the first MAC is offered 10.0.2.15 again");
    fresh = open_user("user,id=u0", false);
    if (fresh) {
        fake_attach(fresh, &nic);
        a = dhcp_offer_for(fresh, &nic, mac_b);
        CHECK(a == inet_addr("10.0.2.15"), "control: a fresh stack offers the second MAC .15");
        net_backend_free(fresh);
    }

    /* hostfwd handover: the destination retries while the source holds the
     * port, and binds it within a retry period once the source lets go. */
    fake_attach(dst, &nic);
    for (int k = 0; k < 5; k++) {
        net_backend_poll(dst);
        usleep(NET_HOSTFWD_RETRY_MS * 1000);
    }
    CHECK(!port_free(port), "the port is still the source's");
    net_backend_migrated_away(src);
    CHECK(net_backend_send(src, (struct iovec[]){{f, 60}}, 1) < 0,
          "migrated away: the source takes no more frames");
    for (int k = 0; k < 3; k++) {
        usleep(NET_HOSTFWD_RETRY_MS * 1000);
        net_backend_poll(dst);
    }
    {
        /* connect: if the destination listens now, its SYN reaches the NIC */
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons(port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), rc;
        nic.count = 0;
        send_frame(dst, f, build_arp_request(f, "10.0.2.2"));
        nic.count = 0;
        rc = connect(c, (struct sockaddr *)&sa, sizeof(sa));
        pump(dst, &nic, 1, 1000);
        i = fake_find(&nic, 0, 0x0800);
        CHECK((rc == 0 || errno == EINPROGRESS) && i >= 0 && nic.frame[i][14 + 9] == 6 &&
                  (nic.frame[i][14 + 20 + 13] & 0x02),
              "after the source let go: the destination's forward takes a new connection");
        close(c);
    }
    {
        /* the connection the source accepted was reset, not closed cleanly */
        char c;
        ssize_t n = recv(sock, &c, 1, 0);
        CHECK(n < 0 && errno == ECONNRESET, "the source's accepted connection was reset (%zd, %s)",
              n, n < 0 ? strerror(errno) : "data");
    }
    close(sock);
    net_backend_free(src);
    net_backend_free(dst);

    /* The destination binds even when the port is free at once, and
     * a VM that is not -incoming binds at open as before. */
    ls = listen_on(port);
    CHECK(ls >= 0, "hold the port");
    dst = open_user(spec, true);
    CHECK(dst != NULL, "deferred: opens while another process holds the port");
    net_backend_free(dst);
    dst = open_user(spec, false);
    CHECK(dst == NULL && strstr(err, "forwarding rule"), "not deferred: refused (%s)", err);
    net_backend_free(dst);
    if (ls >= 0)
        close(ls);

    /* Hostile states are refused. */
    CHECK(load_into_fresh(spec, b.data, b.len, why, sizeof(why)) == 0, "the state loads: %s", why);
    CHECK(load_into_fresh(spec, b.data, b.len - 1, why, sizeof(why)) < 0,
          "truncated by one byte: refused (%s)", why);
    CHECK(load_into_fresh(spec, b.data, conn_at - 1, why, sizeof(why)) < 0,
          "cut inside libslirp's state: refused (%s)", why);
    bad = malloc(b.len + 64);
    if (bad) {
        /* libslirp's part announced one byte short: libslirp reads past it */
        memcpy(bad, b.data, b.len);
        v = (uint32_t)slirp_n - 1;
        memcpy(bad + 2 + 2 + 4, &v, 4);
        memmove(bad + conn_at - 1, b.data + conn_at, b.len - conn_at);
        CHECK(load_into_fresh(spec, bad, b.len - 1, why, sizeof(why)) < 0 &&
                  strstr(why, "libslirp refused"),
              "libslirp's state one byte short: refused (%s)", why);
        /* one byte too many: left over */
        memcpy(bad, b.data, conn_at);
        bad[conn_at] = 0;
        memcpy(bad + conn_at + 1, b.data + conn_at, b.len - conn_at);
        v = (uint32_t)slirp_n + 1;
        memcpy(bad + 2 + 2 + 4, &v, 4);
        CHECK(load_into_fresh(spec, bad, b.len + 1, why, sizeof(why)) < 0 &&
                  strstr(why, "left over"),
              "libslirp's state one byte long: refused (%s)", why);
        /* from a newer libslirp */
        memcpy(bad, b.data, b.len);
        memcpy(&v, bad + 2 + 2, 4);
        v++;
        memcpy(bad + 2 + 2, &v, 4);
        CHECK(load_into_fresh(spec, bad, b.len, why, sizeof(why)) < 0 &&
                  strstr(why, "newer libslirp"),
              "a newer libslirp's state: refused (%s)", why);
        /* guestfwd sockets (libslirp would allocate what the stream says) */
        memcpy(bad, b.data, b.len);
        bad[slirp_at] = 42;
        CHECK(load_into_fresh(spec, bad, b.len, why, sizeof(why)) < 0 && strstr(why, "guestfwd"),
              "guestfwd sockets: refused (%s)", why);
        /* a connection outside the guest's network */
        memcpy(bad, b.data, b.len);
        memcpy(bad + conn_at + 4 + 12, "\x08\x08\x08\x08", 4);
        CHECK(load_into_fresh(spec, bad, b.len, why, sizeof(why)) < 0,
              "a connection to an address off the guest's network: refused (%s)", why);
        /* too many connections for the bytes */
        memcpy(bad, b.data, b.len);
        v = 2;
        memcpy(bad + conn_at, &v, 4);
        CHECK(load_into_fresh(spec, bad, b.len, why, sizeof(why)) < 0,
              "more connections than bytes: refused (%s)", why);
        /* garbage */
        srand(7);
        for (size_t k = 0; k < b.len; k++)
            bad[k] = (uint8_t)rand();
        CHECK(load_into_fresh(spec, bad, b.len, why, sizeof(why)) < 0, "garbage: refused (%s)",
              why);
        free(bad);
    }
    /* A port taken for longer than NET_HOSTFWD_WAIT_MS: the destination
     * logs the rule and stops trying (a port freed later stays unbound). */
    ls = listen_on(port);
    dst = open_user(spec, true);
    CHECK(ls >= 0 && dst != NULL, "a destination while another process holds the port");
    if (ls >= 0 && dst) {
        char logpath[] = "/tmp/godwit-test-net-XXXXXX", logbuf[1024] = "";
        int logfd = mkstemp(logpath), saved = dup(2);
        uint64_t t0 = gw_now_ns();
        ssize_t n;

        fflush(stderr);
        if (logfd >= 0)
            dup2(logfd, 2);
        net_backend_loaded(dst);
        while (gw_now_ns() - t0 < (NET_HOSTFWD_WAIT_MS + 300) * 1000000ull) {
            uint64_t d = net_backend_next_deadline(dst), now = gw_now_ns();
            usleep(d > now && d - now < 50000000ull ? (useconds_t)((d - now) / 1000) : 50000);
            net_backend_poll(dst);
        }
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        n = logfd >= 0 ? pread(logfd, logbuf, sizeof(logbuf) - 1, 0) : -1;
        logbuf[n > 0 ? n : 0] = '\0';
        if (logfd >= 0) {
            close(logfd);
            unlink(logpath);
        }
        snprintf(why, sizeof(why), "tcp:127.0.0.1:%u-10.0.2.15:2222", port);
        CHECK(strstr(logbuf, why) && strstr(logbuf, "not bound"),
              "after %u ms: a log line names the rule: \"%.200s\"", NET_HOSTFWD_WAIT_MS, logbuf);
        close(ls);
        ls = -1;
        for (int k = 0; k < 5; k++) {
            usleep(NET_HOSTFWD_RETRY_MS * 1000);
            net_backend_poll(dst);
        }
        CHECK(port_free(port), "and it stopped trying: the port freed later stays free");
    }
    if (ls >= 0)
        close(ls);
    net_backend_free(dst);

    CHECK(load_into_fresh("user,id=other", b.data, b.len, why, sizeof(why)) < 0 &&
              strstr(why, "'u0'") && strstr(why, "'other'"),
          "another netdev id: refused (%s)", why);
    state_buf_fini(&b);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_parse();
    test_offload();
    test_slirp();
    test_slirp_migration();
    test_tap();
    return board_check_done();
}
