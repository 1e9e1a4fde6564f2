/*
 * virtio-net (virtio 1.2 §5.1): QEMU's -device virtio-net-device on a
 * virtio-mmio slot, in front of a network backend (net/net.h: user or tap).
 *
 * Queues: 0 receive, 1 transmit, 2 control.  Features offered: MAC (the
 * configured address, stable across boots), STATUS (link up), CTRL_VQ,
 * GUEST_ANNOUNCE, plus the core's VERSION_1, INDIRECT_DESC, EVENT_IDX, and
 * offloads done on the host whatever the backend (net/net_offload.h): CSUM
 * (complete the guest's partial checksums), HOST_TSO4/HOST_TSO6 (cut the
 * guest's TCP super-frames into MSS-sized frames), GUEST_CSUM (received
 * TCP/UDP frames whose checksum we verified carry DATA_VALID).  In an
 * emulator these save far more guest time than they cost host time.  No
 * mergeable receive buffers and no receive offloads (GUEST_TSO): every
 * frame takes one receive chain and frames are at most MTU-sized (Linux
 * posts 1518-byte + header buffers then).  A frame larger than the chain
 * it gets is dropped (the chain returns empty) and counted.
 *
 * Transmit runs on the driver's notify: every available chain is sent to
 * the backend at once (synchronously; a frame the backend refuses is
 * dropped, as on a wire), and the chains are returned to the driver in
 * batches (interrupt moderation: at most 32 or 1 ms later, see vnet_tx).  Receive is driven by the
 * backend (net_peer): while the driver has posted no receive buffers the device says it cannot
 * receive, asks the driver to notify when it adds some, and the backend
 * stops reading (back-pressure, see net.h); the notify resumes it.
 *
 * Announce (for live migration): vnet_announce() makes the guest send
 * gratuitous ARPs / unsolicited NAs itself through VIRTIO_NET_S_ANNOUNCE and a
 * configuration interrupt, acknowledged on the control queue
 * (VIRTIO_NET_CTRL_ANNOUNCE_ACK); a driver without GUEST_ANNOUNCE gets a
 * RARP broadcast from the host on its behalf instead (as QEMU's
 * qemu_announce_self).
 *
 * Guest-visible state: the config space (MAC, status), the queues (in
 * struct virtio_dev) and the transmitted chains not yet returned (call
 * vnet_flush() before saving the device: then there are none); the backend
 * is host plumbing.
 */
#ifndef GODWIT_VIRTIO_VIRTIO_NET_H
#define GODWIT_VIRTIO_VIRTIO_NET_H

#include "net/net.h"
#include "virtio/virtio.h"

#define VNET_QUEUE_SIZE 256u /* QEMU's default rx/tx_queue_size */
#define VNET_CTRL_SIZE  64u  /* QEMU's control queue size */

/* Feature bits (virtio 1.2 §5.1.3). */
#define VIRTIO_NET_F_CSUM           0
#define VIRTIO_NET_F_GUEST_CSUM     1
#define VIRTIO_NET_F_MTU            3
#define VIRTIO_NET_F_MAC            5
#define VIRTIO_NET_F_GUEST_TSO4     7
#define VIRTIO_NET_F_HOST_TSO4      11
#define VIRTIO_NET_F_HOST_TSO6      12
#define VIRTIO_NET_F_MRG_RXBUF      15
#define VIRTIO_NET_F_STATUS         16
#define VIRTIO_NET_F_CTRL_VQ        17
#define VIRTIO_NET_F_CTRL_RX        18
#define VIRTIO_NET_F_CTRL_VLAN      19
#define VIRTIO_NET_F_GUEST_ANNOUNCE 21
#define VIRTIO_NET_F_MQ             22
#define VIRTIO_NET_F_CTRL_MAC_ADDR  23

/* Config space status bits. */
#define VIRTIO_NET_S_LINK_UP  1u
#define VIRTIO_NET_S_ANNOUNCE 2u

/* Control queue (virtio 1.2 §5.1.6.5). */
#define VIRTIO_NET_OK                0
#define VIRTIO_NET_ERR               1
#define VIRTIO_NET_CTRL_ANNOUNCE     3
#define VIRTIO_NET_CTRL_ANNOUNCE_ACK 0

#define VNET_HDR_LEN 12 /* struct virtio_net_hdr with num_buffers (VERSION_1) */

/* struct virtio_net_hdr: flags (byte 0), gso_type (byte 1), then le16
 * hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_UDP      3
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN      0x80

struct vnet_config {
    const char *id;              /* -device id=, for messages; may be NULL */
    uint8_t mac[6];              /* the NIC's address (vnet_default_mac for QEMU's) */
    struct net_backend *backend; /* not owned; the device attaches as its peer */
    /* Offloads (QEMU's property names; all on unless turned off):
     * csum: the guest may leave checksums to us (CSUM), and with it
     * host_tso4/host_tso6: send 64 KiB TCP super-frames we cut (TSO);
     * guest_csum: received TCP/UDP checksums we verified are flagged valid. */
    bool no_csum, no_host_tso4, no_host_tso6, no_guest_csum;
};

struct vnet_stats {
    uint64_t tx_frames, tx_bytes;
    uint64_t tx_errors;     /* chains too short or too long to be a frame, bad offload requests */
    uint64_t tx_tso;        /* super-frames cut (their segments count in tx_frames) */
    uint64_t tx_csum;       /* checksums completed for the guest */
    uint64_t rx_csum_valid; /* received frames flagged DATA_VALID */
    uint64_t rx_frames, rx_bytes;
    uint64_t rx_too_big; /* frames larger than the receive chain: dropped */
    uint64_t announces;  /* vnet_announce() calls that reached the guest */
    uint64_t rarps;      /* RARP announcements sent on the guest's behalf */
    uint64_t ctrl_cmds;  /* control queue commands, acknowledged or not */
};

/* QEMU's default MAC for the index-th NIC without mac=: 52:54:00:12:34:56+index. */
void vnet_default_mac(unsigned index, uint8_t mac[6]);

/* NULL with a reason in err. */
struct virtio_dev *vnet_new(struct gmem *mem, const struct vnet_config *cfg, char *err,
                            size_t errlen);

/*
 * Announce the NIC on its network (after a live migration): with a driver
 * that negotiated GUEST_ANNOUNCE and is running, set VIRTIO_NET_S_ANNOUNCE
 * and send a configuration interrupt, and return 1 (the guest announces
 * itself, then acknowledges); otherwise send a RARP broadcast with the
 * NIC's MAC through the backend and return 0.
 */
int vnet_announce(struct virtio_dev *d);

/* Send the RARP broadcast alone, whatever the driver negotiated: QEMU's
 * announce-self sends it from the host side for every NIC, in addition to
 * the guest's own announce (counted in rarps when the backend takes it). */
void vnet_announce_rarp(struct virtio_dev *d);

/* Return every transmitted chain to the driver now (before a save or a
 * pause that must leave nothing in flight). */
void vnet_flush(struct virtio_dev *d);

/* Link status as the guest sees it (set_link); a change interrupts. */
void vnet_set_link(struct virtio_dev *d, bool up);

const struct vnet_stats *vnet_stats(const struct virtio_dev *d);
void vnet_get_mac(const struct virtio_dev *d, uint8_t mac[6]);
/* The id of the -netdev the NIC sits on (announce-self's interfaces). */
const char *vnet_netdev_id(const struct virtio_dev *d);

#endif
