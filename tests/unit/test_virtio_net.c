/*
 * virtio-net driven from the driver's side without a guest: this test
 * writes split rings into a gmem the way Linux would, talks to the device
 * through the virtio core, and uses a real slirp backend as the network
 * (ARP requests to 10.0.2.2 are answered synchronously).  Checks: config
 * space (MAC, link), transmit, receive with the 12-byte header, dirty
 * pages, back-pressure while no receive buffers are posted, frames larger
 * than the buffer, the announce bit with its control-queue ACK, RARP on
 * behalf of a driver without GUEST_ANNOUNCE, link down, hostile chains.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "board_check.h"
#include "net/net.h"
#include "virtio/virtio_net.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1ull << 20)
#define QNUM     16

static struct gmem *mem;
static int irq_level, irq_raises;
static char err[512];
static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0x01};

static void set_irq(void *opaque, bool level)
{
    (void)opaque;
    if (level && !irq_level)
        irq_raises++;
    irq_level = level;
}

/* ---- a tiny driver ------------------------------------------------------------ */

struct drvq {
    unsigned index;
    uint64_t desc, avail, used;
    uint16_t avail_idx, used_seen, next_desc;
};

static struct drvq rxq = {0, RAM_BASE + 0x0000, RAM_BASE + 0x1000, RAM_BASE + 0x2000, 0, 0, 0};
static struct drvq txq = {1, RAM_BASE + 0x3000, RAM_BASE + 0x4000, RAM_BASE + 0x5000, 0, 0, 0};
static struct drvq ctq = {2, RAM_BASE + 0x6000, RAM_BASE + 0x7000, RAM_BASE + 0x8000, 0, 0, 0};
static uint64_t next_buf = RAM_BASE + 0x10000;

static void *host(uint64_t gpa, uint64_t len)
{
    return gmem_ptr(mem, gpa, len);
}

static uint64_t alloc_buf(uint64_t len)
{
    uint64_t a = next_buf;
    next_buf += (len + 4095) & ~4095ull;
    return a;
}

struct seg {
    uint64_t gpa;
    uint32_t len;
    bool write;
};

static void add_chain(struct drvq *q, const struct seg *s, unsigned n)
{
    uint16_t head = q->next_desc;

    for (unsigned i = 0; i < n; i++) {
        uint16_t di = (uint16_t)((q->next_desc + i) % QNUM);
        uint8_t *d = host(q->desc + 16ull * di, 16);
        uint16_t flags = (uint16_t)((s[i].write ? 2 : 0) | (i + 1 < n ? 1 : 0));
        uint16_t next = (uint16_t)((di + 1) % QNUM);
        memcpy(d, &s[i].gpa, 8);
        memcpy(d + 8, &s[i].len, 4);
        memcpy(d + 12, &flags, 2);
        memcpy(d + 14, &next, 2);
    }
    q->next_desc = (uint16_t)((q->next_desc + n) % QNUM);
    memcpy(host(q->avail + 4 + 2ull * (q->avail_idx % QNUM), 2), &head, 2);
    q->avail_idx++;
    memcpy(host(q->avail + 2, 2), &q->avail_idx, 2);
}

/* Next used entry, if any: returns true with its length. */
static bool take_used(struct drvq *q, uint32_t *len)
{
    uint16_t idx;

    memcpy(&idx, host(q->used + 2, 2), 2);
    if (idx == q->used_seen)
        return false;
    memcpy(len, host(q->used + 4 + 8ull * (q->used_seen % QNUM) + 4, 4), 4);
    q->used_seen++;
    return true;
}

static bool page_dirty(uint64_t gpa)
{
    uint64_t p = (gpa - RAM_BASE) >> GMEM_PAGE_SHIFT;
    return (atomic_load(&mem->dirty[p / 64]) >> (p % 64)) & 1;
}

static void start(struct virtio_dev *d, uint64_t features)
{
    struct drvq *qs[3] = {&rxq, &txq, &ctq};

    virtio_reset(d);
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    d->driver_features = features;
    virtio_set_status(d,
                      VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    for (int i = 0; i < 3; i++) {
        memset(host(qs[i]->desc, 0x3000), 0, 0x3000);
        qs[i]->avail_idx = qs[i]->used_seen = qs[i]->next_desc = 0;
        virtio_queue_set_ready(d, qs[i]->index, true, QNUM, qs[i]->desc, qs[i]->avail, qs[i]->used);
    }
    virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                             VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* ---- frames ----------------------------------------------------------------- */

static size_t arp_request(uint8_t *f, const char *target)
{
    uint32_t sip = inet_addr("10.0.2.15"), tip = inet_addr(target);

    memset(f, 0, 42);
    memset(f, 0xff, 6);
    memcpy(f + 6, mac, 6);
    f[12] = 0x08;
    f[13] = 0x06;
    f[15] = 1;
    f[16] = 0x08;
    f[18] = 6;
    f[19] = 4;
    f[21] = 1;
    memcpy(f + 22, mac, 6);
    memcpy(f + 28, &sip, 4);
    memcpy(f + 38, &tip, 4);
    return 42;
}

/* Notify the transmit queue and have the chains back at once (the device
 * returns them in batches otherwise; test_tx_coalescing checks that). */
static void kick_tx(struct virtio_dev *d)
{
    virtio_queue_notify(d, 1);
    vnet_flush(d);
}

/* Transmit an ARP request as header + frame in two buffers. */
static void tx_arp(struct virtio_dev *d, const char *target)
{
    uint64_t h = alloc_buf(12), b = alloc_buf(64);
    struct seg s[2] = {{h, 12, false}, {b, 0, false}};

    memset(host(h, 12), 0, 12);
    s[1].len = (uint32_t)arp_request(host(b, 64), target);
    add_chain(&txq, s, 2);
    kick_tx(d);
}

static uint64_t post_rx(struct virtio_dev *d, uint32_t len, bool notify)
{
    uint64_t b = alloc_buf(len);
    struct seg s = {b, len, true};

    memset(host(b, len), 0xee, len);
    add_chain(&rxq, &s, 1);
    if (notify)
        virtio_queue_notify(d, 0);
    return b;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_basic(struct virtio_dev *d, struct net_backend *nb)
{
    const uint64_t feat = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
                          VIRTIO_BIT(VIRTIO_NET_F_STATUS) | VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) |
                          VIRTIO_BIT(VIRTIO_NET_F_GUEST_ANNOUNCE) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    uint64_t offered = virtio_host_features(d), rx1, rx2;
    const struct vnet_stats *st = vnet_stats(d);
    uint32_t len;
    uint8_t *p;

    CHECK(d->device_id == VIRTIO_ID_NET && d->nvqs == 3, "device id 1, three queues");
    CHECK((offered & feat) == feat, "offers VERSION_1, MAC, STATUS, CTRL_VQ, GUEST_ANNOUNCE");
    CHECK(
        (offered & VIRTIO_BIT(VIRTIO_NET_F_CSUM)) &&
            (offered & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4)) &&
            (offered & VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6)) &&
            (offered & VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM)) &&
            !(offered & (VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4))),
        "offers CSUM, HOST_TSO4/6, GUEST_CSUM; no mergeable buffers, no GUEST_TSO");
    CHECK(d->config_len >= 8 && !memcmp(d->config, mac, 6) && d->config[6] == 1 &&
              d->config[7] == 0,
          "config: the configured MAC, status LINK_UP");

    start(d, feat);
    CHECK((d->status & VIRTIO_STATUS_FEATURES_OK) && (d->status & VIRTIO_STATUS_DRIVER_OK),
          "features accepted, driver OK");

    rx1 = post_rx(d, 1530, true);
    irq_raises = 0;
    tx_arp(d, "10.0.2.2");
    CHECK(take_used(&txq, &len) && len == 0, "tx chain returned (used len 0)");
    CHECK(take_used(&rxq, &len) && len == 12 + 64, "the ARP reply arrived: used len %u", len);
    p = host(rx1, 128);
    CHECK(p[10] == 1 && p[11] == 0 && !memcmp(p, "\0\0\0\0\0\0\0\0\0\0", 10),
          "rx header: no flags, no GSO, num_buffers 1");
    CHECK(!memcmp(p + 12, mac, 6) && p[12 + 12] == 0x08 && p[12 + 13] == 0x06 && p[12 + 21] == 2 &&
              !memcmp(p + 12 + 28, "\x0a\x00\x02\x02", 4),
          "rx frame: an ARP reply from 10.0.2.2 to our MAC");
    CHECK(page_dirty(rx1), "the receive buffer's page is dirty");
    CHECK(irq_raises >= 1 && (d->isr & VIRTIO_ISR_QUEUE), "an interrupt was raised");
    CHECK(st->tx_frames == 1 && st->tx_bytes == 42 && st->rx_frames == 1 && st->rx_bytes == 64,
          "stats: tx 1/42, rx 1/64");
    virtio_isr_ack(d, VIRTIO_ISR_QUEUE);

    /* Back-pressure: no rx buffers -> the reply waits in the backend. */
    tx_arp(d, "10.0.2.3");
    CHECK(take_used(&txq, &len), "tx done");
    CHECK(!take_used(&rxq, &len) && net_backend_stats(nb)->rx_stalls >= 1,
          "no rx buffer: nothing delivered, the backend holds the frame");
    rx2 = post_rx(d, 1530, true);
    CHECK(take_used(&rxq, &len) && len == 12 + 64 &&
              !memcmp((uint8_t *)host(rx2, 128) + 12 + 28, "\x0a\x00\x02\x03", 4),
          "posting a buffer (notify) delivers the waiting frame");

    /* A buffer too small for the frame: dropped, the chain comes back empty. */
    post_rx(d, 40, true);
    tx_arp(d, "10.0.2.2");
    take_used(&txq, &len);
    CHECK(take_used(&rxq, &len) && len == 0 && st->rx_too_big == 1,
          "frame larger than the buffer: dropped, used len 0, counted");

    /* Hostile transmit chains: too short, or a header only. */
    {
        uint64_t h = alloc_buf(12);
        struct seg s = {h, 12, false};
        add_chain(&txq, &s, 1);
        kick_tx(d);
        CHECK(take_used(&txq, &len) && st->tx_errors == 1 && !d->broken,
              "header-only tx chain: counted, device fine");
    }
    {
        /* header and frame in one buffer, as Linux does with any_header_sg */
        uint64_t b = alloc_buf(64);
        struct seg s = {b, 12 + 42, false};
        uint64_t before = st->rx_frames;
        memset(host(b, 12), 0, 12);
        arp_request((uint8_t *)host(b, 64) + 12, "10.0.2.2");
        post_rx(d, 1530, true);
        add_chain(&txq, &s, 1);
        kick_tx(d);
        CHECK(take_used(&txq, &len) && take_used(&rxq, &len) && st->rx_frames == before + 1,
              "header and frame in one buffer");
    }

    /* Announce: the status bit and a config interrupt; the ACK clears it. */
    irq_raises = 0;
    CHECK(vnet_announce(d) == 1, "announce through the guest");
    CHECK((d->config[6] & VIRTIO_NET_S_ANNOUNCE) && (d->isr & VIRTIO_ISR_CONFIG) && irq_raises == 1,
          "VIRTIO_NET_S_ANNOUNCE set, config interrupt");
    {
        uint64_t c = alloc_buf(4), a = alloc_buf(1);
        struct seg s[2] = {{c, 2, false}, {a, 1, true}};
        uint8_t *ack = host(a, 1);
        ((uint8_t *)host(c, 2))[0] = VIRTIO_NET_CTRL_ANNOUNCE;
        ((uint8_t *)host(c, 2))[1] = VIRTIO_NET_CTRL_ANNOUNCE_ACK;
        *ack = 0xff;
        add_chain(&ctq, s, 2);
        virtio_queue_notify(d, 2);
        CHECK(take_used(&ctq, &len) && len == 1 && *ack == VIRTIO_NET_OK &&
                  !(d->config[6] & VIRTIO_NET_S_ANNOUNCE) && (d->config[6] & 1),
              "ANNOUNCE_ACK: OK, bit cleared, link still up");
        /* an unknown class gets ERR */
        ((uint8_t *)host(c, 2))[0] = 0;
        ((uint8_t *)host(c, 2))[1] = 0;
        add_chain(&ctq, s, 2);
        virtio_queue_notify(d, 2);
        CHECK(take_used(&ctq, &len) && *ack == VIRTIO_NET_ERR, "RX class (not offered): ERR");
        /* a command without an ack buffer breaks the device, not the host */
        add_chain(&ctq, s, 1);
        virtio_queue_notify(d, 2);
        CHECK(d->broken && (d->status & VIRTIO_STATUS_NEEDS_RESET),
              "control command without an ack byte: NEEDS_RESET");
    }

    /* Link down: frames are lost; up again: they flow. */
    start(d, feat);
    vnet_set_link(d, false);
    CHECK(!(d->config[6] & 1) && (d->isr & VIRTIO_ISR_CONFIG), "link down: status, interrupt");
    post_rx(d, 1530, true);
    tx_arp(d, "10.0.2.2");
    CHECK(!take_used(&rxq, &len), "link down: nothing received");
    vnet_set_link(d, true);
    tx_arp(d, "10.0.2.2");
    CHECK(take_used(&rxq, &len) && len == 12 + 64, "link up again: received");

    /* A driver without GUEST_ANNOUNCE: the host sends a RARP for it. */
    start(d, VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC));
    CHECK(vnet_announce(d) == 0 && st->rarps == 1, "no GUEST_ANNOUNCE: RARP sent by the host");

    /* Offloads not negotiated: a NEEDS_CSUM chain is refused. */
    {
        uint64_t h = alloc_buf(12), b = alloc_buf(64), before = st->tx_errors;
        struct seg sg[2] = {{h, 12, false}, {b, 42, false}};
        uint8_t *hd = host(h, 12);
        memset(hd, 0, 12);
        hd[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        arp_request(host(b, 64), "10.0.2.2");
        add_chain(&txq, sg, 2);
        kick_tx(d);
        CHECK(take_used(&txq, &len) && st->tx_errors == before + 1,
              "NEEDS_CSUM without CSUM negotiated: dropped, counted");
    }

    /* Reset: nothing is delivered to a reset device. */
    virtio_reset(d);
    tx_arp(d, "10.0.2.2");
    CHECK(!take_used(&rxq, &len), "reset device: nothing delivered");
}

/* A TCP super-frame (IPv4) with a partial checksum, as Linux sends with TSO. */
static size_t tcp_superframe(uint8_t *f, size_t payload)
{
    uint32_t src = inet_addr("10.0.2.15"), dst = inet_addr("10.0.2.2");
    uint8_t *ip = f + 14, *tcp = ip + 20;

    memset(f, 0, 14 + 40);
    memset(f, 0x52, 6);
    memcpy(f + 6, mac, 6);
    f[12] = 0x08;
    ip[0] = 0x45;
    ip[2] = (uint8_t)((40 + payload) >> 8);
    ip[3] = (uint8_t)(40 + payload);
    ip[8] = 64;
    ip[9] = 6;
    memcpy(ip + 12, &src, 4);
    memcpy(ip + 16, &dst, 4);
    tcp[0] = 0x9c;
    tcp[3] = 9; /* port 9 (discard): slirp answers with a reset, harmless */
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    for (size_t i = 0; i < payload; i++)
        tcp[20 + i] = (uint8_t)i;
    return 14 + 40 + payload;
}

static void test_offloads(struct virtio_dev *d)
{
    const uint64_t feat = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
                          VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
                          VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM);
    const struct vnet_stats *st = vnet_stats(d);
    uint64_t frames, h = alloc_buf(12), b = alloc_buf(16384);
    uint8_t *hd = host(h, 12);
    uint32_t len;

    start(d, feat);
    post_rx(d, 1530, true);
    post_rx(d, 1530, true);
    /* 10000 bytes at MSS 1460 -> 7 frames */
    {
        struct seg sg[2] = {{h, 12, false}, {b, 0, false}};
        memset(hd, 0, 12);
        hd[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        hd[1] = VIRTIO_NET_HDR_GSO_TCPV4;
        hd[2] = 54;   /* hdr_len */
        hd[4] = 0xb4; /* gso_size 1460 */
        hd[5] = 0x05;
        hd[6] = 34; /* csum_start */
        hd[8] = 16; /* csum_offset */
        sg[1].len = (uint32_t)tcp_superframe(host(b, 16384), 10000);
        frames = st->tx_frames;
        add_chain(&txq, sg, 2);
        kick_tx(d);
        CHECK(take_used(&txq, &len) && st->tx_tso == 1 && st->tx_frames == frames + 7,
              "TSO: a 10000-byte super-frame leaves as 7 frames");
    }
    /* A plain frame with NEEDS_CSUM: completed. */
    {
        struct seg sg[2] = {{h, 12, false}, {b, 0, false}};
        hd[1] = VIRTIO_NET_HDR_GSO_NONE;
        sg[1].len = (uint32_t)tcp_superframe(host(b, 16384), 100);
        add_chain(&txq, sg, 2);
        kick_tx(d);
        CHECK(take_used(&txq, &len) && st->tx_csum == 1, "NEEDS_CSUM: checksum completed");
        /* GSO type the device did not offer (UDP) or bad offsets: dropped */
        frames = st->tx_errors;
        hd[1] = VIRTIO_NET_HDR_GSO_UDP;
        add_chain(&txq, sg, 2);
        kick_tx(d);
        hd[1] = VIRTIO_NET_HDR_GSO_NONE;
        hd[6] = 0xff;
        hd[7] = 0xff;
        add_chain(&txq, sg, 2);
        kick_tx(d);
        CHECK(take_used(&txq, &len) && take_used(&txq, &len) && st->tx_errors == frames + 2,
              "GSO_UDP (not offered) and csum_start beyond the frame: dropped, counted");
    }
    /* slirp's resets to those segments are TCP with valid checksums:
     * they arrive flagged DATA_VALID. */
    {
        uint64_t rx = post_rx(d, 1530, true);
        bool flagged = false;
        while (take_used(&rxq, &len))
            ;
        flagged = ((uint8_t *)host(rx, 12))[0] == VIRTIO_NET_HDR_F_DATA_VALID;
        CHECK(st->rx_csum_valid > 0 && flagged, "received TCP frames flagged DATA_VALID (%llu)",
              (unsigned long long)st->rx_csum_valid);
    }
}

/* Transmitted chains come back in batches: at VNET_TX_COALESCE, at the
 * run loop's poll, with a deadline for a sleeping machine. */
static void test_tx_coalescing(struct virtio_dev *d)
{
    const uint64_t feat = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
                          VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    uint64_t h = alloc_buf(12), b = alloc_buf(64), now;
    struct seg sg[2] = {{h, 12, false}, {b, 42, false}};
    uint32_t len;
    unsigned got = 0;

    start(d, feat);
    memset(host(h, 12), 0, 12);
    arp_request(host(b, 64), "10.0.2.9"); /* nobody answers: no rx traffic */
    irq_raises = 0;
    for (int i = 0; i < 3; i++) {
        add_chain(&txq, sg, 2);
        virtio_queue_notify(d, 1);
    }
    now = gw_now_ns();
    CHECK(!take_used(&txq, &len) && vnet_stats(d)->tx_frames >= 3,
          "3 frames sent, their chains not returned yet");
    CHECK(d->ops->next_deadline(d) <= now + 100000, "a deadline within 100 us for a sleeping loop");
    d->ops->poll(d);
    while (take_used(&txq, &len))
        got++;
    CHECK(got == 3 && irq_raises == 1, "the run loop's poll returns all 3 with one interrupt");
    virtio_isr_ack(d, VIRTIO_ISR_QUEUE);
    /* A full batch comes back without waiting (QNUM 16: half the ring). */
    got = 0;
    for (int i = 0; i < QNUM / 2; i++) {
        add_chain(&txq, sg, 2);
        virtio_queue_notify(d, 1);
    }
    while (take_used(&txq, &len))
        got++;
    CHECK(got == QNUM / 2, "half a ring of chains is returned at once (%u)", got);
    add_chain(&txq, sg, 2);
    virtio_queue_notify(d, 1);
    start(d, feat); /* resets the device first */
    d->ops->poll(d);
    CHECK(!take_used(&txq, &len), "a reset forgets chains not returned");

    /* slirp answers inside the notify: the receive interrupt waits for the
     * transmit batch, and one interrupt covers both. */
    post_rx(d, 1530, true);
    arp_request(host(b, 64), "10.0.2.2");
    virtio_isr_ack(d, VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG);
    irq_raises = 0;
    add_chain(&txq, sg, 2);
    virtio_queue_notify(d, 1);
    {
        bool got_rx = take_used(&rxq, &len);
        CHECK(got_rx && len > 12 && !irq_level && !d->isr,
              "the reply is in the receive ring, its interrupt held back (%d %u %d %u)", got_rx,
              len, irq_level, d->isr);
    }
    d->ops->poll(d);
    CHECK(take_used(&txq, &len) && irq_raises == 1 && (d->isr & VIRTIO_ISR_QUEUE),
          "one interrupt for the transmit batch and the reply");
}

int main(void)
{
    struct net_opts o;
    struct net_backend *nb;
    struct virtio_dev *d;
    struct vnet_config cfg = {.id = "nic0"};
    struct virtio_transport tr = {NULL, set_irq};
    uint8_t m[6];

    setvbuf(stdout, NULL, _IOLBF, 0);
    mem = gmem_new(RAM_BASE, RAM_SIZE);
    CHECK(mem != NULL, "guest RAM");
    CHECK(net_parse("user,id=n0,ipv6=off", &o, err, sizeof(err)) == 0, "parse: %s", err);
    nb = net_backend_open(&o, err, sizeof(err));
    CHECK(nb != NULL, "slirp backend: %s", err);
    if (!mem || !nb)
        return board_check_done();

    vnet_default_mac(0, m);
    CHECK(!memcmp(m, "\x52\x54\x00\x12\x34\x56", 6), "default MAC of the first NIC");
    vnet_default_mac(2, m);
    CHECK(m[5] == 0x58, "the third NIC's default MAC ends in 58");

    memcpy(cfg.mac, "\x53\x00\x00\x00\x00\x01", 6);
    cfg.backend = nb;
    CHECK(vnet_new(mem, &cfg, err, sizeof(err)) == NULL, "multicast MAC refused: %s", err);
    memcpy(cfg.mac, mac, 6);
    err[0] = '\0';
    d = vnet_new(mem, &cfg, err, sizeof(err));
    CHECK(d != NULL, "vnet_new: %s", err);
    if (d) {
        d->transport = tr;
        vnet_get_mac(d, m);
        CHECK(!memcmp(m, mac, 6), "vnet_get_mac");
        test_basic(d, nb);
        test_offloads(d);
        test_tx_coalescing(d);
        virtio_dev_free(d);
    }
    net_backend_free(nb);
    gmem_free(mem);
    return board_check_done();
}
