/*
 * virtio-net on the virtio core; see virtio_net.h.
 *
 * All guest memory goes through the core's checked chains (virtq_pop) and
 * copy helpers; receive buffers are written with virtq_elem_write (marks
 * pages dirty) and returned with virtq_push.  Everything runs on the
 * run-loop thread: transmit from QueueNotify, receive from the backend's
 * poll (or from inside a transmit, when slirp answers at once).
 */
#include "virtio/virtio_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_offload.h"

enum { VNET_RXQ = 0, VNET_TXQ = 1, VNET_CTRLQ = 2, VNET_NQUEUES = 3 };

#define VNET_CONFIG_LEN  10        /* mac[6], status, max_virtqueue_pairs */
#define VNET_TX_COALESCE 32u       /* transmitted chains returned together, at most */
#define VNET_TX_DELAY_NS 100000ull /* ... or after this long when the machine sleeps */

#define VNET_TX_MAX (65536u + 64u) /* a TSO super-frame: 64 KiB of IP plus link headers */

#define VNET_FEATURES                                                                              \
    (VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |                              \
     VIRTIO_BIT(VIRTIO_NET_F_CTRL_VQ) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_ANNOUNCE))
#define VNET_OFFLOAD_FEATURES                                                                      \
    (VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |                          \
     VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM))

struct vnet {
    struct virtio_dev vdev; /* first */
    /* guest-visible: the config space (little-endian), see vnet_config_store */
    uint8_t config[VNET_CONFIG_LEN];
    uint8_t mac[6];
    uint16_t status; /* VIRTIO_NET_S_* */
    /* host */
    struct net_backend *backend;
    struct virtq_elem *rx_elem, *tx_elem, *ctrl_elem; /* one each: rx runs inside tx */
    struct iovec *tx_iov;                             /* VIRTQ_MAX_SEGS: a frame minus its header */
    uint8_t *tx_buf;                                  /* VNET_TX_MAX: a frame to checksum or cut */
    uint8_t *tx_seg;                                  /* NET_TSO_SEG_MAX: one TSO segment */
    struct virtq_elem *done_elem;                     /* carries a head to virtq_push */
    /* Transmitted chains not yet returned (see vnet_tx): their heads, in
     * order, and when the oldest was sent (gw_now_ns). */
    uint16_t tx_pending[VNET_QUEUE_SIZE];
    unsigned ntx_pending;
    uint64_t tx_pending_since;
    bool rx_pushed; /* used rx buffers not yet signalled */
    struct vnet_stats stats;
};

static struct vnet *vnet_of(struct virtio_dev *d)
{
    return (struct vnet *)d;
}

void vnet_default_mac(unsigned index, uint8_t mac[6])
{
    static const uint8_t base[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

    memcpy(mac, base, 6);
    mac[5] = (uint8_t)(base[5] + index);
}

static void vnet_config_store(struct vnet *n)
{
    memcpy(n->config, n->mac, 6);
    n->config[6] = (uint8_t)n->status;
    n->config[7] = (uint8_t)(n->status >> 8);
    n->config[8] = 1; /* max_virtqueue_pairs (meaningful with MQ only) */
    n->config[9] = 0;
}

static bool vnet_running(const struct vnet *n)
{
    const struct virtio_dev *d = &n->vdev;

    return (d->status & VIRTIO_STATUS_DRIVER_OK) && !d->broken;
}

/* ---- receive (the backend's peer) ------------------------------------------- */

static bool vnet_can_receive(void *opaque)
{
    struct vnet *n = opaque;
    struct virtio_dev *d = &n->vdev;
    struct virtq *q = &d->vq[VNET_RXQ];

    if (!vnet_running(n) || !q->ready)
        return false;
    if (!(n->status & VIRTIO_NET_S_LINK_UP))
        return true; /* link down: frames are taken and lost, as on a wire */
    if (virtq_pending(d, q))
        return true;
    /* Empty: ask for a notify when buffers come (it resumes the backend),
     * and look again in case they came meanwhile. */
    return virtq_enable_notify(d, q, true);
}

static int vnet_receive(void *opaque, const uint8_t *buf, size_t len)
{
    struct vnet *n = opaque;
    struct virtio_dev *d = &n->vdev;
    struct virtq *q = &d->vq[VNET_RXQ];
    struct virtq_elem *e = n->rx_elem;
    /* virtio 1.2 §5.1.6.4: num_buffers is 1 without MRG_RXBUF (VERSION_1
     * has the field); DATA_VALID if we checked the checksum for the guest. */
    uint8_t hdr[VNET_HDR_LEN] = {[10] = 1};
    int ret;

    if (!vnet_running(n) || !q->ready)
        return -EAGAIN;
    if (!(n->status & VIRTIO_NET_S_LINK_UP))
        return -ENETDOWN; /* a cable unplugged: the frame is lost */
    ret = virtq_pop(d, q, e);
    if (ret < 0)
        return -EIO; /* the ring is broken: the device waits for a reset */
    if (ret == 0)
        return -EAGAIN;
    if (e->in_len < VNET_HDR_LEN + len) {
        n->stats.rx_too_big++;
        virtq_push(d, q, e, 0);
        n->rx_pushed = true;
        return -EMSGSIZE;
    }
    if (virtio_has_feature(d, VIRTIO_NET_F_GUEST_CSUM) && net_csum_verify(buf, len)) {
        hdr[0] = VIRTIO_NET_HDR_F_DATA_VALID;
        n->stats.rx_csum_valid++;
    }
    virtq_elem_write(d, e, 0, hdr, sizeof(hdr));
    virtq_elem_write(d, e, VNET_HDR_LEN, buf, len);
    virtq_push(d, q, e, (uint32_t)(VNET_HDR_LEN + len));
    n->rx_pushed = true;
    n->stats.rx_frames++;
    n->stats.rx_bytes += len;
    return 0;
}

/*
 * A batch of frames is in: one interrupt for all of them.  While
 * transmitted chains wait to be returned (vnet_tx), the interrupt waits
 * with them and vnet_tx_complete sends one for both queues: slirp
 * acknowledges every TCP segment at once, inside the notify that sent it,
 * so without this a sending guest took a receive interrupt per frame.  The
 * wait is bounded as the transmit batch is (32 chains, 1 ms, 100 us asleep).
 */
static void vnet_rx_flush(void *opaque)
{
    struct vnet *n = opaque;

    if (n->rx_pushed && !n->ntx_pending) {
        n->rx_pushed = false;
        virtq_notify(&n->vdev, &n->vdev.vq[VNET_RXQ]);
    }
}

/* ---- transmit ------------------------------------------------------------------ */

static uint16_t vnet_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* A TSO segment is ready: one frame to the backend. */
static void vnet_tx_emit(void *opaque, const uint8_t *seg, size_t len)
{
    struct vnet *n = opaque;
    struct iovec iov = {(void *)seg, len};

    if (net_backend_send(n->backend, &iov, 1) == 0) {
        n->stats.tx_frames++;
        n->stats.tx_bytes += len;
    }
}

/*
 * The guest asked for offload work (virtio 1.2 §5.1.6.2): complete a
 * partial checksum, or cut a TCP super-frame.  The frame is gathered into
 * tx_buf first, since both write into it or read it piecewise.
 */
static void vnet_tx_offload(struct vnet *n, const struct virtq_elem *e, const uint8_t *hdr)
{
    struct virtio_dev *d = &n->vdev;
    uint8_t gso = hdr[1] & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    size_t len = (size_t)e->out_len - VNET_HDR_LEN;
    struct iovec iov = {n->tx_buf, len};

    if (len > VNET_TX_MAX || virtq_elem_read(e, VNET_HDR_LEN, n->tx_buf, len) != len)
        goto bad;
    if (gso != VIRTIO_NET_HDR_GSO_NONE) {
        bool ok =
            (gso == VIRTIO_NET_HDR_GSO_TCPV4 && virtio_has_feature(d, VIRTIO_NET_F_HOST_TSO4)) ||
            (gso == VIRTIO_NET_HDR_GSO_TCPV6 && virtio_has_feature(d, VIRTIO_NET_F_HOST_TSO6));
        /* TSO computes every segment's checksums itself. */
        if (!ok ||
            net_tso_segment(n->tx_buf, len, vnet_le16(hdr + 4), n->tx_seg, vnet_tx_emit, n) < 0)
            goto bad;
        n->stats.tx_tso++;
        return;
    }
    if (!virtio_has_feature(d, VIRTIO_NET_F_CSUM) ||
        net_csum_complete(n->tx_buf, len, vnet_le16(hdr + 6), vnet_le16(hdr + 8)) < 0)
        goto bad;
    n->stats.tx_csum++;
    if (len > NET_FRAME_MAX)
        goto bad;
    if (net_backend_send(n->backend, &iov, 1) == 0) {
        n->stats.tx_frames++;
        n->stats.tx_bytes += len;
    }
    return;
bad:
    /* A driver asking for what it did not negotiate, or nonsense offsets:
     * the frame is dropped, as a NIC would. */
    n->stats.tx_errors++;
}

/* Send one chain: the readable buffers are a header then the frame. */
static void vnet_tx_one(struct vnet *n, const struct virtq_elem *e)
{
    uint8_t hdr[VNET_HDR_LEN];
    size_t skip = VNET_HDR_LEN;
    int cnt = 0;

    if (e->out_len < VNET_HDR_LEN + NET_FRAME_MIN || e->out_len > VNET_HDR_LEN + VNET_TX_MAX ||
        virtq_elem_read(e, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
        n->stats.tx_errors++;
        return;
    }
    if ((hdr[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) || hdr[1] != VIRTIO_NET_HDR_GSO_NONE) {
        vnet_tx_offload(n, e, hdr);
        return;
    }
    if (e->out_len > VNET_HDR_LEN + NET_FRAME_MAX) {
        n->stats.tx_errors++;
        return;
    }
    /* The common case goes out from guest memory as it is: the header may
     * share a buffer with the frame, or span several. */
    for (unsigned i = 0; i < e->nout; i++) {
        size_t len = e->iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        n->tx_iov[cnt].iov_base = (uint8_t *)e->iov[i].iov_base + skip;
        n->tx_iov[cnt].iov_len = len - skip;
        cnt++;
        skip = 0;
    }
    if (net_backend_send(n->backend, n->tx_iov, cnt) == 0) {
        n->stats.tx_frames++;
        n->stats.tx_bytes += e->out_len - VNET_HDR_LEN;
    }
}

/* Return the transmitted chains to the driver, one interrupt for all. */
static void vnet_tx_complete(struct vnet *n)
{
    struct virtio_dev *d = &n->vdev;
    struct virtq *q = &d->vq[VNET_TXQ];

    if (!n->ntx_pending)
        return;
    n->done_elem->nout = n->done_elem->nin = 0;
    for (unsigned i = 0; i < n->ntx_pending; i++) {
        n->done_elem->head = n->tx_pending[i];
        virtq_push(d, q, n->done_elem, 0);
    }
    n->ntx_pending = 0;
    virtq_notify(d, q);
    vnet_rx_flush(n);
}

/*
 * Send every available chain at once, but return them in batches: after
 * VNET_TX_COALESCE chains (or half the ring), at the run loop's next device
 * poll (at most 1 ms later while the harts run), or VNET_TX_DELAY_NS after
 * the oldest when the machine sleeps.  Linux asks for an interrupt at
 * (nearly) every completion, and a completion returned inside the very
 * notify that queued it lands right on its index: one interrupt per frame,
 * the largest cost of sending in an emulated guest.  Returning them in
 * batches, as a NIC with interrupt moderation does, more than halves the
 * guest's work per byte (docs/net.md).  The frames themselves leave at once.
 */
static void vnet_tx(struct vnet *n)
{
    struct virtio_dev *d = &n->vdev;
    struct virtq *q = &d->vq[VNET_TXQ];
    int ret;

    do {
        while ((ret = virtq_pop(d, q, n->tx_elem)) > 0) {
            vnet_tx_one(n, n->tx_elem);
            if (!n->ntx_pending)
                n->tx_pending_since = gw_now_ns();
            n->tx_pending[n->ntx_pending++] = n->tx_elem->head;
            if (n->ntx_pending >= VNET_TX_COALESCE || n->ntx_pending >= q->num / 2u)
                vnet_tx_complete(n);
        }
    } while (ret == 0 && virtq_enable_notify(d, q, true));
}

/* ---- control queue ------------------------------------------------------------- */

static uint8_t vnet_ctrl_cmd(struct vnet *n, uint8_t cls, uint8_t cmd)
{
    n->stats.ctrl_cmds++;
    if (cls == VIRTIO_NET_CTRL_ANNOUNCE && cmd == VIRTIO_NET_CTRL_ANNOUNCE_ACK &&
        virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_ANNOUNCE)) {
        /* §5.1.6.5.4: the driver announced itself; the bit may go. */
        n->status &= (uint16_t)~VIRTIO_NET_S_ANNOUNCE;
        vnet_config_store(n);
        return VIRTIO_NET_OK;
    }
    return VIRTIO_NET_ERR; /* classes whose features we do not offer */
}

static void vnet_ctrl(struct vnet *n)
{
    struct virtio_dev *d = &n->vdev;
    struct virtq *q = &d->vq[VNET_CTRLQ];
    struct virtq_elem *e = n->ctrl_elem;
    int ret;

    do {
        while ((ret = virtq_pop(d, q, e)) > 0) {
            uint8_t cmd[2], ack;
            /* §5.1.6.5: class, command, data (readable), then an ack byte. */
            if (virtq_elem_read(e, 0, cmd, 2) < 2 || e->in_len < 1) {
                virtio_needs_reset(d, "control queue: malformed command (%llu+%llu bytes)",
                                   (unsigned long long)e->out_len, (unsigned long long)e->in_len);
                return;
            }
            ack = vnet_ctrl_cmd(n, cmd[0], cmd[1]);
            virtq_elem_write(d, e, 0, &ack, 1);
            virtq_push(d, q, e, 1);
        }
    } while (ret == 0 && virtq_enable_notify(d, q, true));
    virtq_notify(d, q);
}

/* ---- virtio_dev_ops -------------------------------------------------------------- */

static void vnet_queue_notify(struct virtio_dev *d, unsigned qi)
{
    struct vnet *n = vnet_of(d);

    switch (qi) {
    case VNET_RXQ:
        /* New receive buffers: frames waiting in the backend may come. */
        net_backend_rx_ready(n->backend);
        break;
    case VNET_TXQ: vnet_tx(n); break;
    case VNET_CTRLQ: vnet_ctrl(n); break;
    default: break;
    }
}

static void vnet_reset(struct virtio_dev *d)
{
    struct vnet *n = vnet_of(d);

    n->status &= (uint16_t)~VIRTIO_NET_S_ANNOUNCE;
    n->rx_pushed = false;
    n->ntx_pending = 0;
    vnet_config_store(n);
}

static void vnet_status_changed(struct virtio_dev *d, uint32_t old)
{
    struct vnet *n = vnet_of(d);

    if ((d->status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK))
        net_backend_rx_ready(n->backend);
}

static int vnet_pollfds(struct virtio_dev *d, struct pollfd *fds, int max)
{
    return net_backend_pollfds(vnet_of(d)->backend, fds, max);
}

static void vnet_poll(struct virtio_dev *d)
{
    struct vnet *n = vnet_of(d);

    vnet_tx_complete(n);
    net_backend_poll(n->backend);
}

static uint64_t vnet_next_deadline(struct virtio_dev *d)
{
    struct vnet *n = vnet_of(d);
    uint64_t t = net_backend_next_deadline(n->backend);
    if (n->ntx_pending && n->tx_pending_since + VNET_TX_DELAY_NS < t)
        t = n->tx_pending_since + VNET_TX_DELAY_NS;
    return t;
}

static void vnet_fini(struct virtio_dev *d)
{
    struct vnet *n = vnet_of(d);

    if (n->backend)
        net_backend_attach(n->backend, NULL);
    free(n->rx_elem);
    free(n->tx_elem);
    free(n->ctrl_elem);
    free(n->tx_iov);
    free(n->tx_buf);
    free(n->tx_seg);
    free(n->done_elem);
    free(n);
}

/* ---- state (docs/state.md) -------------------------------------------------------
 * After the core's: u8 mac[6], u16 status (LINK_UP, ANNOUNCE).  The MAC
 * is configuration, saved to catch a state loaded into another NIC.
 * Transmitted chains held for batching are returned first (pre_save), and
 * a receive interrupt held with them is sent, so the used rings and the
 * ISR say everything and no chain is owned by the device. */

static void vnet_pre_save(struct virtio_dev *d)
{
    struct vnet *n = vnet_of(d);

    vnet_tx_complete(n);
    vnet_rx_flush(n);
}

static void vnet_save(const struct virtio_dev *d, struct state_buf *b)
{
    const struct vnet *n = (const struct vnet *)d;

    state_put_bytes(b, n->mac, 6);
    state_put_u16(b, n->status);
}

static int vnet_load(struct virtio_dev *d, struct state_buf *b, unsigned version)
{
    struct vnet *n = vnet_of(d);
    uint8_t mac[6];
    uint16_t status;

    (void)version; /* the core's version; 1 is all there is */
    state_get_bytes(b, mac, 6);
    status = state_get_u16(b);
    if (state_buf_error(b))
        return -EINVAL;
    if (memcmp(mac, n->mac, 6))
        state_buf_fail(b, -EINVAL,
                       "virtio-net: state of MAC %02x:%02x:%02x:%02x:%02x:%02x, this NIC has "
                       "%02x:%02x:%02x:%02x:%02x:%02x",
                       mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], n->mac[0], n->mac[1],
                       n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
    else if (status & ~(VIRTIO_NET_S_LINK_UP | VIRTIO_NET_S_ANNOUNCE))
        state_buf_fail(b, -EINVAL, "virtio-net: status 0x%x", status);
    if (state_buf_error(b))
        return -EINVAL;
    n->status = status;
    n->ntx_pending = 0;
    n->rx_pushed = false;
    vnet_config_store(n);
    /* The backend may have stopped reading for want of buffers the loaded
     * rings now have. */
    if (vnet_running(n))
        net_backend_rx_ready(n->backend);
    return 0;
}

static const struct virtio_dev_ops vnet_ops = {
    .name = "virtio-net",
    .queue_notify = vnet_queue_notify,
    .reset = vnet_reset,
    .status_changed = vnet_status_changed,
    .pollfds = vnet_pollfds,
    .poll = vnet_poll,
    .next_deadline = vnet_next_deadline,
    .pre_save = vnet_pre_save,
    .save = vnet_save,
    .load = vnet_load,
    .fini = vnet_fini,
};

/* ---- the public face ------------------------------------------------------------- */

struct virtio_dev *vnet_new(struct gmem *mem, const struct vnet_config *cfg, char *err,
                            size_t errlen)
{
    struct vnet *n;
    struct net_peer peer;
    uint64_t features;

    if (!cfg->backend) {
        snprintf(err, errlen, "virtio-net: no netdev");
        return NULL;
    }
    if (cfg->mac[0] & 1) {
        snprintf(err, errlen, "virtio-net: a multicast MAC address cannot be a NIC's");
        return NULL;
    }
    n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    n->rx_elem = malloc(sizeof(*n->rx_elem));
    n->tx_elem = malloc(sizeof(*n->tx_elem));
    n->ctrl_elem = malloc(sizeof(*n->ctrl_elem));
    n->tx_iov = malloc(VIRTQ_MAX_SEGS * sizeof(*n->tx_iov));
    n->tx_buf = malloc(VNET_TX_MAX);
    n->done_elem = malloc(sizeof(*n->done_elem));
    n->tx_seg = malloc(NET_TSO_SEG_MAX);
    if (!n->rx_elem || !n->tx_elem || !n->ctrl_elem || !n->tx_iov || !n->tx_buf || !n->tx_seg ||
        !n->done_elem) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    features = VNET_FEATURES | VNET_OFFLOAD_FEATURES;
    if (cfg->no_csum) /* TSO needs CSUM (§5.1.3.1) */
        features &= ~(VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) |
                      VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6));
    if (cfg->no_host_tso4)
        features &= ~VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4);
    if (cfg->no_host_tso6)
        features &= ~VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6);
    if (cfg->no_guest_csum)
        features &= ~VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM);
    if (virtio_dev_init(&n->vdev, &vnet_ops, mem, VIRTIO_ID_NET, features, VNET_NQUEUES,
                        VNET_QUEUE_SIZE) < 0) {
        snprintf(err, errlen, "virtio-net: bad device parameters");
        goto fail;
    }
    /* The control queue is smaller, as QEMU's. */
    n->vdev.vq[VNET_CTRLQ].num_max = VNET_CTRL_SIZE;
    snprintf(n->vdev.id, sizeof(n->vdev.id), "%s", cfg->id ? cfg->id : "");
    memcpy(n->mac, cfg->mac, 6);
    n->status = VIRTIO_NET_S_LINK_UP;
    vnet_config_store(n);
    n->vdev.config = n->config;
    n->vdev.config_len = VNET_CONFIG_LEN;
    n->backend = cfg->backend;
    peer = (struct net_peer){n, vnet_can_receive, vnet_receive, vnet_rx_flush};
    net_backend_attach(n->backend, &peer);
    return &n->vdev;

fail:
    vnet_fini(&n->vdev);
    return NULL;
}

/* A RARP "reverse request" from the NIC's MAC, as QEMU's announce frame. */
static void vnet_send_rarp(struct vnet *n)
{
    uint8_t f[60];
    struct iovec iov = {f, sizeof(f)};

    memset(f, 0, sizeof(f));
    memset(f, 0xff, 6); /* broadcast */
    memcpy(f + 6, n->mac, 6);
    f[12] = 0x80; /* ETH_P_RARP */
    f[13] = 0x35;
    f[14] = 0x00; /* hardware: Ethernet */
    f[15] = 0x01;
    f[16] = 0x08; /* protocol: IPv4 */
    f[17] = 0x00;
    f[18] = 6;
    f[19] = 4;
    f[20] = 0x00; /* opcode 3: reverse request */
    f[21] = 0x03;
    memcpy(f + 22, n->mac, 6); /* sender hardware address */
    memcpy(f + 32, n->mac, 6); /* target hardware address; IPs stay 0 */
    if (net_backend_send(n->backend, &iov, 1) == 0)
        n->stats.rarps++;
}

void vnet_announce_rarp(struct virtio_dev *d)
{
    vnet_send_rarp(vnet_of(d));
}

int vnet_announce(struct virtio_dev *d)
{
    struct vnet *n = vnet_of(d);

    if (vnet_running(n) && virtio_has_feature(d, VIRTIO_NET_F_GUEST_ANNOUNCE) &&
        virtio_has_feature(d, VIRTIO_NET_F_CTRL_VQ)) {
        n->status |= VIRTIO_NET_S_ANNOUNCE;
        vnet_config_store(n);
        virtio_config_changed(d);
        n->stats.announces++;
        return 1;
    }
    vnet_send_rarp(n);
    return 0;
}

void vnet_set_link(struct virtio_dev *d, bool up)
{
    struct vnet *n = vnet_of(d);
    uint16_t old = n->status;

    if (up)
        n->status |= VIRTIO_NET_S_LINK_UP;
    else
        n->status &= (uint16_t)~VIRTIO_NET_S_LINK_UP;
    if (n->status == old)
        return;
    vnet_config_store(n);
    virtio_config_changed(d);
    if (up)
        net_backend_rx_ready(n->backend);
}

void vnet_flush(struct virtio_dev *d)
{
    vnet_tx_complete(vnet_of(d));
}

const struct vnet_stats *vnet_stats(const struct virtio_dev *d)
{
    return &((const struct vnet *)d)->stats;
}

void vnet_get_mac(const struct virtio_dev *d, uint8_t mac[6])
{
    memcpy(mac, ((const struct vnet *)d)->mac, 6);
}

const char *vnet_netdev_id(const struct virtio_dev *d)
{
    return net_backend_id(((const struct vnet *)d)->backend);
}
