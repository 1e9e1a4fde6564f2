/*
 * Network backends: where a NIC's Ethernet frames go on the host, and where
 * the frames for the guest come from.  Host plumbing only; no guest state
 * lives here (a NIC's guest-visible state is in its device, e.g. virtio_net).
 *
 *   user   user-mode networking through libslirp (QEMU's -netdev user):
 *          NAT to the host's sockets, DHCP, DNS, port forwards (net_slirp.c)
 *   tap    a Linux TAP interface (/dev/net/tun), frames as they are (net_tap.c)
 *
 * A backend is opened from a parsed -netdev spec (net_parse), then attached
 * to one peer: the device that takes the frames the backend receives.  The
 * device sends with net_backend_send(); received frames reach it through
 * peer->receive() from net_backend_poll() (or, for slirp, synchronously
 * from inside net_backend_send(), e.g. an ARP reply).
 *
 * Back-pressure.  When the peer cannot take a frame (the guest posted no
 * receive buffers), the frame is queued (bounded: NET_QUEUE_FRAMES frames,
 * NET_QUEUE_BYTES bytes) and the backend stops reading from the host until
 * the peer calls net_backend_rx_ready():
 *   - tap: the fd is not polled for input, so frames wait in the kernel's
 *     TAP queue (txqueuelen) and the kernel drops beyond it, as with QEMU;
 *   - user: slirp's host sockets are not polled for input, so host peers
 *     see TCP flow control; frames slirp still produces meanwhile (replies
 *     to the guest's own packets, retransmissions) are queued, and dropped
 *     and counted (stats.rx_dropped) once the queue is full: slirp's TCP
 *     retransmits them later, as it does under QEMU.
 *
 * Polling.  The run loop owns the sleeping: it asks for fds to wait on
 * (net_backend_pollfds), a deadline (net_backend_next_deadline, for slirp's
 * timers), and calls net_backend_poll() when an fd is ready, the deadline
 * passed, or now and then while the harts run.  Everything runs on that one
 * thread; backends never block.
 */
#ifndef GODWIT_NET_NET_H
#define GODWIT_NET_NET_H

#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/util.h"

#define NET_ID_MAX       32      /* -netdev id= bytes, with the NUL */
#define NET_IFNAME_MAX   16      /* IFNAMSIZ */
#define NET_HOSTNAME_MAX 64      /* user: hostname= bytes, with the NUL */
#define NET_MAX_HOSTFWD  16      /* hostfwd= rules per user backend */
#define NET_FRAME_MIN    14      /* an Ethernet header */
#define NET_FRAME_MAX    65536   /* largest frame a backend passes on */
#define NET_QUEUE_FRAMES 256     /* frames queued for a peer that has no room */
#define NET_QUEUE_BYTES  1048576 /* bytes queued, at most */

enum net_kind {
    NET_KIND_USER = 1,
    NET_KIND_TAP,
};

/* One hostfwd= rule: host_addr:host_port on the host -> guest_addr:guest_port. */
struct net_hostfwd {
    bool udp;
    struct in_addr host_addr;  /* INADDR_ANY when the rule names none (as QEMU) */
    uint16_t host_port;        /* 1..65535 */
    struct in_addr guest_addr; /* the DHCP start address when the rule names none */
    uint16_t guest_port;       /* 1..65535 */
};

/* A parsed -netdev spec (strings copied: no pointers into argv). */
struct net_opts {
    enum net_kind kind;
    char id[NET_ID_MAX];
    /* user (defaults are QEMU's: 10.0.2.0/24, host .2, DNS .3, DHCP from .15) */
    struct in_addr net, mask; /* guest network */
    struct in_addr host;      /* the gateway / host as the guest sees it */
    struct in_addr dns;       /* slirp's DNS forwarder */
    struct in_addr dhcp_start;
    bool restricted; /* restrict=on: the guest reaches only the host-side services */
    bool ipv6;       /* ipv6=on (default): fec0::/64, host fec0::2, DNS fec0::3 */
    char hostname[NET_HOSTNAME_MAX];
    unsigned nhostfwd;
    struct net_hostfwd hostfwd[NET_MAX_HOSTFWD];
    /* Not an option: set by the board for an -incoming VM, whose hostfwd
     * rules are bound only once its state is loaded (net_backend_loaded):
     * on one host the source holds the ports until the switchover. */
    bool hostfwd_later;
    /* tap */
    char ifname[NET_IFNAME_MAX]; /* empty: the kernel picks tapN */
    int fd;                      /* fd=N: an open TAP fd handed to us; -1 = open ifname */
    bool vnet_hdr;               /* vnet_hdr=on: IFF_VNET_HDR framing (no offloads) */
};

/*
 * Parse a -netdev value: "user,id=ID[,net=A/M][,host=A][,dns=A]
 * [,dhcpstart=A][,restrict=on|off][,ipv4=on][,ipv6=on|off][,hostname=H]
 * [,hostfwd=[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT]..." or "tap,id=ID
 * [,ifname=NAME][,script=no][,downscript=no][,vnet_hdr=on|off][,fd=N]".
 * QEMU's spellings and defaults; godwit-vm runs no network scripts, so
 * script=/downscript= must be "no" (or absent).  0, or -EINVAL with a
 * one-line reason naming the option in err.
 */
int net_parse(const char *spec, struct net_opts *o, char *err, size_t errlen) gw_must_check;

/* Parse "52:54:00:12:34:56" (also '-' separators); 0 or -EINVAL. */
int net_parse_mac(const char *s, uint8_t mac[6]) gw_must_check;

/* The device side of a backend.  Callbacks run on the run-loop thread. */
struct net_peer {
    void *opaque;
    /* True if the device could take a frame now (receive buffers posted). */
    bool (*can_receive)(void *opaque);
    /* Take one Ethernet frame (copy it: buf is the backend's).  Returns 0,
     * -EAGAIN if there is no room now (the backend keeps the frame and
     * stops reading until net_backend_rx_ready()), or another -errno to
     * drop it (counted). */
    int (*receive)(void *opaque, const uint8_t *buf, size_t len);
    /* Optional: a batch of receive() calls is over (raise one interrupt). */
    void (*flush)(void *opaque);
};

/* Counters since the backend was opened (plain reads on the loop thread). */
struct net_stats {
    uint64_t tx_frames, tx_bytes; /* guest -> host, handed to the host */
    uint64_t tx_dropped;          /* guest frames the host refused (full, malformed) */
    uint64_t rx_frames, rx_bytes; /* host -> guest, taken by the peer */
    uint64_t rx_dropped;          /* host frames lost: queue full, no peer, peer refused */
    uint64_t rx_stalls;           /* times a frame had to wait for guest buffers */
    uint64_t rx_forwarded;        /* frames a migration's source forwarded here */
};

struct net_backend;

/* Open a backend; NULL with a one-line reason in err (e.g. no permission
 * to create a TAP device, a hostfwd port already taken). */
struct net_backend *net_backend_open(const struct net_opts *o, char *err, size_t errlen);

/* Close fds, free queued frames.  NULL is a no-op. */
void net_backend_free(struct net_backend *nb);

/* Attach the device (copied), or detach with NULL: frames are then dropped. */
void net_backend_attach(struct net_backend *nb, const struct net_peer *peer);

/* The -netdev id and kind ("user" or "tap"). */
const char *net_backend_id(const struct net_backend *nb);
const char *net_backend_kind(const struct net_backend *nb);

/*
 * Send one Ethernet frame from the guest, gathered from iov (total length
 * NET_FRAME_MIN..NET_FRAME_MAX).  Never blocks: a frame the host cannot
 * take now is dropped and counted.  0 or -errno (dropped).
 */
int net_backend_send(struct net_backend *nb, const struct iovec *iov, int iovcnt);

/*
 * Live migration's frame forwarding (docs/net.md, "The switchover"), only
 * while the run loop leaves the backend alone (the machine parked or
 * migrated away).  fwd_fd: the fd frames for the guest wait on, -1 if the
 * kind cannot forward (user: slirp's state travels instead).  take: read
 * one such frame into buf (cap bytes) without delivering it: its length,
 * 0 when none waits, -errno.  requeue: give a frame back to the guest's
 * side, queued ahead of what the host side still holds (the migration
 * failed).  inject: a frame forwarded from elsewhere, delivered as if it
 * had just arrived (counted in rx_forwarded).
 */
int net_backend_fwd_fd(struct net_backend *nb);
long net_backend_take(struct net_backend *nb, uint8_t *buf, size_t cap);
void net_backend_requeue(struct net_backend *nb, const uint8_t *buf, size_t len);
void net_backend_inject(struct net_backend *nb, const uint8_t *buf, size_t len);

/* The peer has room again: hand it queued frames, and resume reading. */
void net_backend_rx_ready(struct net_backend *nb);

/* Fill up to max fds to wait on; returns how many (none while the peer has
 * no room for a frame, except what slirp needs for its own output). */
int net_backend_pollfds(struct net_backend *nb, struct pollfd *fds, int max);

/* Do the work that is ready (never blocks). */
void net_backend_poll(struct net_backend *nb);

/* When net_backend_poll() must run next at the latest (gw_now_ns() clock),
 * or UINT64_MAX. */
uint64_t net_backend_next_deadline(struct net_backend *nb);

const struct net_stats *net_backend_stats(const struct net_backend *nb);

/*
 * Live migration (docs/net.md, "Live migration and user networking").
 *
 * A user backend's guest-visible state travels as a component section
 * (machine/virt_state.c, "netdev-user"): libslirp's own saved state (4.7:
 * the IP id counter and the DHCP leases; not its NAT table nor its TCP
 * connections, whose host sockets cannot move) and the TCP connections the
 * guest may still have open through it, so that the destination can get
 * each of them reset at once instead of leaving the guest waiting on a
 * peer that is gone.  A TAP backend has no such state.
 */
#define NET_STATE_VERSION    1    /* the "netdev-user" section */
#define NET_HOSTFWD_RETRY_MS 20   /* a loaded VM retries a taken hostfwd port this often */
#define NET_HOSTFWD_WAIT_MS  5000 /* for this long, then logs the rule and gives up */

struct state_buf;

/* True if the backend's state travels with the VM (user backends). */
bool net_backend_migrates(const struct net_backend *nb);

/* Append the backend's section payload to b (errors are sticky in b). */
void net_backend_save(struct net_backend *nb, struct state_buf *b);

/* Load a payload of section version `version` into a backend that has not
 * run yet.  Refuses, with the reason in b: another netdev id, a state from
 * a newer libslirp, guestfwd sockets, a length or field out of bounds, and
 * anything libslirp itself refuses or does not consume.  0 or -errno. */
int net_backend_load(struct net_backend *nb, struct state_buf *b, unsigned version) gw_must_check;

/* The VM's state is loaded and it is about to run: bind the hostfwd rules
 * deferred by hostfwd_later (a taken port is retried every
 * NET_HOSTFWD_RETRY_MS for NET_HOSTFWD_WAIT_MS, then logged by rule), and
 * send the guest a segment on every connection the state listed, whose
 * answer the new stack resets (the guest sees a prompt RST). */
void net_backend_loaded(struct net_backend *nb);

/* The VM runs elsewhere now (a live migration committed): release the
 * host's side for good: hostfwd listeners (so a destination on this host
 * can bind them) and every connection, reset so host peers are not left
 * waiting.  The backend then drops whatever it is given.  Never called on a
 * migration that failed: the source keeps everything. */
void net_backend_migrated_away(struct net_backend *nb);

#endif
