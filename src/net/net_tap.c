/*
 * The TAP backend: frames to and from a Linux TAP interface
 * (/dev/net/tun, IFF_TAP | IFF_NO_PI), the fd non-blocking.
 *
 * godwit-vm never runs network scripts: the interface is created (or
 * attached to, if it exists) by name and whoever set up the host (a test,
 * godwitd) puts it into a bridge and brings it up.  fd=N takes a TAP fd
 * that is already open (as QEMU's fd=, e.g. passed by a management daemon).
 * vnet_hdr=on asks for IFF_VNET_HDR framing: each frame carries a 10-byte
 * struct virtio_net_hdr, which we write as zeros and strip on reading (no
 * offloads are enabled on the TAP, so the kernel sends none).
 *
 * Back-pressure: the fd is polled for input only while the peer can take a
 * frame; otherwise frames wait in the kernel's queue.  A write the kernel
 * refuses (EAGAIN: the interface's queue is full; EIO: it is down) drops
 * the frame, as real hardware would, and is counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net/net_int.h"

#define TAP_VNET_HDR_LEN 10 /* struct virtio_net_hdr without num_buffers */
#define TAP_READ_BATCH   64 /* frames read per poll, so one NIC cannot hog the loop */
#define TAP_MAX_IOV      64 /* more pieces than this are gathered into one buffer */

struct tap {
    struct net_backend nb; /* first: the common part */
    int fd;
    bool vnet_hdr;
    char ifname[NET_IFNAME_MAX];
    uint8_t buf[TAP_VNET_HDR_LEN + NET_FRAME_MAX]; /* read / gather bounce buffer */
};

static struct tap *tap_of(struct net_backend *nb)
{
    return (struct tap *)nb;
}

static int tap_send(struct net_backend *nb, const struct iovec *iov, int iovcnt, size_t len)
{
    static const uint8_t zero_hdr[TAP_VNET_HDR_LEN];
    struct tap *t = tap_of(nb);
    struct iovec v[TAP_MAX_IOV + 1];
    int n = 0;
    ssize_t w;

    if (t->vnet_hdr)
        v[n++] = (struct iovec){(void *)zero_hdr, sizeof(zero_hdr)};
    if (iovcnt <= TAP_MAX_IOV) {
        memcpy(v + n, iov, (size_t)iovcnt * sizeof(*iov));
        n += iovcnt;
    } else {
        net_iov_gather(iov, iovcnt, t->buf, len);
        v[n++] = (struct iovec){t->buf, len};
    }
    do {
        w = writev(t->fd, v, n);
    } while (w < 0 && errno == EINTR);
    if (w < 0)
        return -errno;
    return 0;
}

static int tap_pollfds(struct net_backend *nb, struct pollfd *fds, int max)
{
    struct tap *t = tap_of(nb);

    if (max < 1 || net_rx_blocked(nb))
        return 0;
    fds[0] = (struct pollfd){.fd = t->fd, .events = POLLIN};
    return 1;
}

static void tap_poll(struct net_backend *nb)
{
    struct tap *t = tap_of(nb);
    size_t hdr = t->vnet_hdr ? TAP_VNET_HDR_LEN : 0;

    for (int i = 0; i < TAP_READ_BATCH && !net_rx_blocked(nb); i++) {
        ssize_t n = read(t->fd, t->buf, sizeof(t->buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* EAGAIN: all read; other errors: the interface went away */
        if ((size_t)n < hdr + NET_FRAME_MIN) {
            nb->stats.rx_dropped++;
            continue;
        }
        net_deliver(nb, t->buf + hdr, (size_t)n - hdr);
    }
}

static int tap_fwd_fd(struct net_backend *nb)
{
    return tap_of(nb)->fd;
}

static long tap_take(struct net_backend *nb, uint8_t *buf, size_t cap)
{
    struct tap *t = tap_of(nb);
    size_t hdr = t->vnet_hdr ? TAP_VNET_HDR_LEN : 0;

    for (;;) {
        ssize_t n = read(t->fd, t->buf, sizeof(t->buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : -errno;
        if (n == 0)
            return 0;
        if ((size_t)n < hdr + NET_FRAME_MIN || (size_t)n - hdr > cap) {
            nb->stats.rx_dropped++;
            continue;
        }
        memcpy(buf, t->buf + hdr, (size_t)n - hdr);
        return (long)((size_t)n - hdr);
    }
}

static void tap_fini(struct net_backend *nb)
{
    struct tap *t = tap_of(nb);

    if (t->fd >= 0)
        close(t->fd);
}

static const struct net_backend_ops tap_ops = {
    .kind = "tap",
    .send = tap_send,
    .pollfds = tap_pollfds,
    .poll = tap_poll,
    .fini = tap_fini,
    .fwd_fd = tap_fwd_fd,
    .take = tap_take,
};

/* Attach to (or create) the interface by name. */
static int tap_attach(struct tap *t, const struct net_opts *o, char *err, size_t errlen)
{
    struct ifreq ifr;

    t->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (t->fd < 0) {
        snprintf(err, errlen, "tap: cannot open /dev/net/tun: %s", strerror(errno));
        return -errno;
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (o->vnet_hdr ? IFF_VNET_HDR : 0);
    if (o->ifname[0])
        memcpy(ifr.ifr_name, o->ifname, strlen(o->ifname));
    if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        snprintf(err, errlen, "tap: cannot attach to %s%s%s: %s%s", o->ifname[0] ? "'" : "",
                 o->ifname[0] ? o->ifname : "a new TAP device", o->ifname[0] ? "'" : "",
                 strerror(e),
                 e == EPERM    ? " (needs CAP_NET_ADMIN, or a TAP device owned by this user)"
                 : e == EBUSY  ? " (in use by another process)"
                 : e == EINVAL ? " (a TUN device, or created with other flags, e.g. vnet_hdr)"
                               : "");
        return -e;
    }
    memcpy(t->ifname, ifr.ifr_name, sizeof(t->ifname) - 1);
    t->vnet_hdr = o->vnet_hdr;
    return 0;
}

/* Take an fd someone opened for us (fd=N): it must be a TAP device. */
static int tap_adopt(struct tap *t, const struct net_opts *o, char *err, size_t errlen)
{
    struct ifreq ifr;
    int fl;

    memset(&ifr, 0, sizeof(ifr));
    if (ioctl(o->fd, TUNGETIFF, &ifr) < 0) {
        snprintf(err, errlen, "tap: fd=%d is not a TUN/TAP device: %s", o->fd, strerror(errno));
        return -EINVAL;
    }
    if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_NO_PI)) {
        snprintf(err, errlen, "tap: fd=%d is not a TAP device opened with IFF_NO_PI", o->fd);
        return -EINVAL;
    }
    fl = fcntl(o->fd, F_GETFL);
    if (fl < 0 || fcntl(o->fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
        fcntl(o->fd, F_SETFD, FD_CLOEXEC) < 0) {
        snprintf(err, errlen, "tap: fd=%d: %s", o->fd, strerror(errno));
        return -EINVAL;
    }
    t->fd = o->fd;
    memcpy(t->ifname, ifr.ifr_name, sizeof(t->ifname) - 1);
    t->vnet_hdr = (ifr.ifr_flags & IFF_VNET_HDR) != 0; /* the fd's framing decides */
    return 0;
}

struct net_backend *tap_open(const struct net_opts *o, char *err, size_t errlen)
{
    struct tap *t = calloc(1, sizeof(*t));
    int ret;

    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    net_backend_init(&t->nb, &tap_ops, o);
    t->fd = -1;
    ret = o->fd >= 0 ? tap_adopt(t, o, err, errlen) : tap_attach(t, o, err, errlen);
    if (ret < 0) {
        net_backend_free(&t->nb);
        return NULL;
    }
    return &t->nb;
}
