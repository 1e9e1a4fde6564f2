/*
 * Private parts of the network backends: the object every backend embeds
 * first, the per-kind operations, and the receive queue shared by all of
 * them (net.c).  Backends are net_tap.c (tap_) and net_slirp.c (netslirp_).
 */
#ifndef GODWIT_NET_NET_INT_H
#define GODWIT_NET_NET_INT_H

#include "net/net.h"

struct net_backend_ops {
    const char *kind; /* "user", "tap" */
    /* One frame of len bytes (already bounded) from the guest. */
    int (*send)(struct net_backend *nb, const struct iovec *iov, int iovcnt, size_t len);
    int (*pollfds)(struct net_backend *nb, struct pollfd *fds, int max);
    void (*poll)(struct net_backend *nb);
    uint64_t (*next_deadline)(struct net_backend *nb); /* NULL: none */
    void (*fini)(struct net_backend *nb);              /* close fds; not the struct */
    /* Live migration's forwarding (NULL: the kind cannot): the fd frames
     * wait on, and one frame read from it into buf (its length, 0 when
     * none waits, -errno). */
    int (*fwd_fd)(struct net_backend *nb);
    long (*take)(struct net_backend *nb, uint8_t *buf, size_t cap);
    /* Live migration (net.h); NULL: the kind has no state to carry. */
    void (*save)(struct net_backend *nb, struct state_buf *b);
    int (*load)(struct net_backend *nb, struct state_buf *b, unsigned version);
    void (*loaded)(struct net_backend *nb);
    void (*migrated_away)(struct net_backend *nb);
};

/* A frame waiting for room in the peer. */
struct net_frame {
    size_t len;
    uint8_t data[];
};

struct net_backend {
    const struct net_backend_ops *ops;
    struct net_opts opts;
    struct net_peer peer;
    bool has_peer;
    bool need_flush; /* frames went to the peer since its last flush() */
    struct net_stats stats;
    /* Frames for the peer, oldest first: a ring of q_len entries at q_head. */
    struct net_frame *queue[NET_QUEUE_FRAMES];
    unsigned q_head, q_len;
    size_t q_bytes;
};

/* Set up the common part (the backend allocated the struct embedding it). */
void net_backend_init(struct net_backend *nb, const struct net_backend_ops *ops,
                      const struct net_opts *o);

/*
 * A frame for the guest: to the peer at once if it has room and nothing
 * is queued before it, else queued (dropped and counted when the queue is
 * full or no peer is attached).  Call net_flush() after a batch.
 */
void net_deliver(struct net_backend *nb, const uint8_t *buf, size_t len);

/* Tell the peer a batch of frames is over (its flush hook), if any went. */
void net_flush(struct net_backend *nb);

/* True while received frames cannot go on: frames queued, or the peer has
 * no room.  Backends stop reading from the host meanwhile. */
bool net_rx_blocked(struct net_backend *nb);

/* Copy an iovec of len bytes into buf (at least len bytes). */
void net_iov_gather(const struct iovec *iov, int iovcnt, uint8_t *buf, size_t len);

/* The kinds. */
struct net_backend *tap_open(const struct net_opts *o, char *err, size_t errlen);
struct net_backend *netslirp_open(const struct net_opts *o, char *err, size_t errlen);

#endif
