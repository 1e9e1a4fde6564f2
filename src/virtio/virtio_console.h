/*
 * virtio-console (virtio 1.2 §5.3) with VIRTIO_CONSOLE_F_MULTIPORT: QEMU's
 * -device virtio-serial-device with -device virtserialport,name=... ports,
 * which Linux's built-in virtio_console driver turns into /dev/vportNpM
 * with /sys/class/virtio-ports/vportNpM/name.
 *
 * Queues (§5.3.2): 0/1 receiveq/transmitq of port 0, 2 the control
 * receiveq (c_ivq, device -> driver), 3 the control transmitq (c_ovq,
 * driver -> device), then 2(p+1)/2(p+1)+1 for port p >= 1.  max_nr_ports
 * is VCON_MAX_PORTS, which fills the core's 16 queues.  Port 0 is reserved
 * for a console port, as in QEMU, so virtserialports are numbered from 1
 * (the first one is /dev/vport0p1 in a guest with one virtio device).
 *
 * A port is "host-connected" (PORT_OPEN 1 sent to the guest) only if
 * something on the host serves it.  Today that is one port: the guest
 * agent channel VCON_AGENT_NAME, served by godwit-vm itself (a line
 * protocol, docs/virtio.md "Guest agent").  Other ports have no backend
 * (no chardevs yet): the guest sees them closed, its writes block and its
 * reads return end-of-file, as on QEMU with an unconnected chardev.
 *
 * Everything runs on the run-loop thread, synchronously on QueueNotify;
 * host -> guest bytes and control messages that find no posted buffer wait
 * in bounded queues and go out when the driver posts one.  Guest-visible
 * state (saved by the ops->save hook): whether the driver said
 * DEVICE_READY, each port's PORT_READY and PORT_OPEN, the control messages
 * and agent bytes not delivered yet.
 */
#ifndef GODWIT_VIRTIO_VIRTIO_CONSOLE_H
#define GODWIT_VIRTIO_VIRTIO_CONSOLE_H

#include "virtio/virtio.h"

/* Feature bits (virtio 1.2 §5.3.3). */
#define VIRTIO_CONSOLE_F_SIZE        0
#define VIRTIO_CONSOLE_F_MULTIPORT   1
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2

/* Control events (virtio 1.2 §5.3.6.2). */
#define VIRTIO_CONSOLE_DEVICE_READY  0
#define VIRTIO_CONSOLE_DEVICE_ADD    1
#define VIRTIO_CONSOLE_DEVICE_REMOVE 2
#define VIRTIO_CONSOLE_PORT_READY    3
#define VIRTIO_CONSOLE_CONSOLE_PORT  4
#define VIRTIO_CONSOLE_RESIZE        5
#define VIRTIO_CONSOLE_PORT_OPEN     6
#define VIRTIO_CONSOLE_PORT_NAME     7

#define VCON_CTRL_HDR    8u    /* struct virtio_console_control: le32 id, le16 event, le16 value */
#define VCON_CONFIG_LEN  12u   /* cols u16, rows u16, max_nr_ports u32, emerg_wr u32 */
#define VCON_MAX_PORTS   7u    /* max_nr_ports: (7 + 1) * 2 = 16 queues = VIRTIO_MAX_VQS */
#define VCON_QUEUE_SIZE  128u  /* QEMU's port and control queue size */
#define VCON_NAME_MAX    127u  /* bytes of a port name */
#define VCON_LINE_MAX    256u  /* bytes of one agent line, newline included */
#define VCON_PENDING_MAX 4096u /* host -> guest agent bytes waiting for a receive buffer */
#define VCON_CTRL_QUEUED 64u   /* control messages waiting for a c_ivq buffer */
#define VCON_INFLIGHT    32u   /* agent commands sent and not answered yet */

/* The port godwit-vm serves itself (the guest agent channel). */
#define VCON_AGENT_NAME "org.godwit.agent.0"

struct vcon_config {
    const char *id; /* for messages; may be NULL */
};

struct vcon_stats {
    uint64_t ctrl_in, ctrl_out; /* control messages from / to the driver */
    uint64_t ctrl_dropped;      /* to the driver, dropped: the queue of VCON_CTRL_QUEUED was full */
    uint64_t ctrl_ignored;      /* from the driver, with an event a driver does not send */
    uint64_t tx_bytes, rx_bytes; /* port data from / to the driver */
    uint64_t tx_discarded;       /* bytes written to a port nothing on the host serves */
    uint64_t agent_lines;        /* complete lines the guest wrote on the agent port */
    char agent_last[64];         /* the last of them, without the newline, sanitised */
};

/* A device without ports; NULL with a reason in err. */
struct virtio_dev *vcon_new(struct gmem *mem, const struct vcon_config *cfg, char *err,
                            size_t errlen);

/*
 * Add a port named name (NULL or "": unnamed) before the guest runs; it
 * takes the next free port number from 1 (returned).  -ENOSPC when the
 * device has VCON_MAX_PORTS - 1 of them, -EEXIST for a name already taken,
 * -EINVAL for a name longer than VCON_NAME_MAX, with a reason in err.
 */
int vcon_add_port(struct virtio_dev *d, const char *name, char *err, size_t errlen) gw_must_check;

/*
 * Queue one line of text to the guest on the agent port (a '\n' is added
 * unless line ends with one; line must hold no other newline and be at
 * most VCON_LINE_MAX bytes with it).  Returns 0 when the whole line is in
 * guest buffers; -EAGAIN when it (or bytes before it) waits for the driver
 * to post a receive buffer: it is delivered then; -ENODEV if the device
 * has no agent port; -ENOTCONN if the guest has not opened it (PORT_OPEN
 * 1); -ENOBUFS if VCON_PENDING_MAX bytes already wait; -EINVAL for a bad
 * line.  Run-loop thread only.
 */
int vcon_agent_send(struct virtio_dev *d, const char *line) gw_must_check;

/*
 * Matching answers to commands.  The agent answers every command line with
 * exactly one line, in order; "ready" (a fresh agent) answers nothing.  So
 * the device keeps the commands sent and not answered yet in a FIFO (at
 * most VCON_INFLIGHT), and every other guest line answers the oldest.  A
 * command sent with a nonzero tag has its answer handed to the hook:
 * fn(opaque, tag, line) with the line (without its newline, at most
 * VCON_LINE_MAX - 1 bytes, NUL-terminated; the guest may have put any byte
 * but NUL and newline in it), or line NULL when the answer can no longer
 * come (the guest closed the port, the agent restarted, device reset or
 * state load).  Tag 0 (vcon_agent_send) and forgotten tags: the answer is
 * consumed and dropped, so a late answer never satisfies a later command.
 */
typedef void (*vcon_agent_answer_fn)(void *opaque, uint64_t tag, const char *line);

void vcon_set_agent_hook(struct virtio_dev *d, vcon_agent_answer_fn fn, void *opaque);

/* vcon_agent_send() with a tag for the answer; also -EBUSY when
 * VCON_INFLIGHT commands wait for answers.  Run-loop thread only. */
int vcon_agent_request(struct virtio_dev *d, const char *line, uint64_t tag) gw_must_check;

/* Nobody waits for tag's answer any more (a timeout): it is dropped when
 * it comes.  No-op for an unknown tag. */
void vcon_agent_forget(struct virtio_dev *d, uint64_t tag);

/* Has the guest opened the agent port (-ENODEV: no such port)? 1 or 0. */
int vcon_agent_connected(const struct virtio_dev *d);

const struct vcon_stats *vcon_stats(const struct virtio_dev *d);

#endif
