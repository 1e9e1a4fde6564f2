/*
 * Frames across the switchover (capability x-godwit-net-forward; docs/net.md,
 * "The switchover").  Private to the engine.
 *
 * Source: from the moment the machine parks, frames that reach the VM's
 * network ports wait in the kernel (the loop no longer reads them); while
 * the job waits for READY it reads them itself and keeps them (bounded:
 * MIG_FWD_FRAMES / MIG_FWD_BYTES, the rest dropped and counted).  After
 * COMMIT it sends the ones addressed to the VM's NICs to the destination
 * (FRAMEs, then FRAMES_PAUSED; mig_proto.h) and goes on forwarding what
 * still arrives for a grace period: until the network shows it has learnt
 * the NIC's new place (a frame from the NIC's own address reaches the old
 * port: the destination's announce went through the switch) plus
 * MIG_FWD_TAIL_MS, at most MIG_FWD_GRACE_MS; then FWD_END.  Frames for
 * other addresses (broadcasts, multicasts) reach the destination's port
 * by themselves and are not forwarded: nothing arrives twice.  A migration
 * that fails gives every kept frame back to the VM, which runs here again.
 *
 * Destination: the frames kept during the pause are read right after
 * COMMIT (at most MIG_FWD_PAUSED_MS) and handed to the guest before it
 * runs, so they come before anything its own port received since; the
 * grace period's frames follow as they arrive (a thread reads them, the
 * loop delivers them).
 */
#ifndef GODWIT_MIGRATION_MIG_NETFWD_H
#define GODWIT_MIGRATION_MIG_NETFWD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migration/mig_proto.h"
#include "migration/migration.h"

#define MIG_FWD_FRAMES    4096       /* frames kept while paused, at most */
#define MIG_FWD_BYTES     (8u << 20) /* and their bytes */
#define MIG_FWD_GRACE_MS  1000       /* forward this long after the commit, at most */
#define MIG_FWD_TAIL_MS   50         /* and this long after the network learnt the new place */
#define MIG_FWD_PAUSED_MS 200        /* destination: wait this long for the paused frames */
#define MIG_FWD_IDLE_MS   2000       /* destination: a forwarder silent this long is done */

struct mig_fwd_frame {
    uint32_t port, len;
    bool ours; /* addressed to the port's NIC */
    uint8_t *data;
};

/* The source's side of one job. */
struct mig_fwd {
    struct mig_net_port ports[MIG_FRAME_PORTS];
    unsigned n;
    struct mig_fwd_frame *kept; /* MIG_FWD_FRAMES */
    unsigned nkept;
    size_t kept_bytes;
    uint64_t learnt_ns; /* when a frame from a NIC's own address came back (0: not yet) */
    bool forwarding;    /* after COMMIT: frames for the VM go out as they come */
    bool broken;        /* the channel failed: stop sending */
    /* statistics (ST_SET / ST_GET: the loop reads them) */
    uint64_t captured, forwarded, overflow, other, grace_ms;
    uint8_t buf[MIG_FRAME_MAX];
    uint8_t out[MIG_MSG_LEN + MIG_FRAME_MAX + 8];
};

/* The destination's side of one migration. */
struct mig_fwd_in {
    pthread_mutex_t lock;    /* the queue: reader thread -> loop */
    struct mig_fwd_frame *q; /* a ring of MIG_FWD_FRAMES */
    unsigned head, n;
    size_t bytes; /* in q: at most MIG_FWD_BYTES */
    struct mig_machine mm;
    struct mig_chan ch;
    pthread_t thread;
    bool thread_live;
    _Atomic bool over; /* the reader ended (FWD_END, a close, silence, an error) */
    bool broken;       /* the paused frames did not come intact: no reader */
    /* statistics (ST_SET / ST_GET) */
    uint64_t received, delivered, dropped;
    uint8_t buf[MIG_FRAME_MAX];
};

/* 0, or -ENOMEM. */
int mig_fwd_in_init(struct mig_fwd_in *f, const struct mig_machine *mm);
/* Join the reader (whose socket the caller has shut down or that ended)
 * and free what waits. */
void mig_fwd_in_fini(struct mig_fwd_in *f);
/* Loader thread, right after COMMIT: the frames kept while the source was
 * paused, up to FRAMES_PAUSED (at most MIG_FWD_PAUSED_MS).  0, or -errno:
 * forwarding stops (the migration goes on: it has committed). */
int mig_fwd_in_paused(struct mig_fwd_in *f, const struct mig_chan *ch);
/* Any thread: the frame in f->buf (len bytes, for port) waits for the
 * loop; false when there is no room (dropped, counted). */
bool mig_fwd_in_queue(struct mig_fwd_in *f, unsigned port, size_t len);
/* Loop thread: hand what waits to the guest, in arrival order. */
void mig_fwd_in_deliver(struct mig_fwd_in *f);
/* Loop thread, the guest runs: read the grace period's frames on a thread
 * of their own until FWD_END, the source's close, or MIG_FWD_IDLE_MS of
 * silence (it kicks the loop for each batch).  0 or -errno. */
int mig_fwd_in_start(struct mig_fwd_in *f, struct mig_chan ch);
void mig_fwd_in_info(const struct mig_fwd_in *f, struct mig_info *info);

/* The ports of the machine (NULL with none, or without the ops). */
struct mig_fwd *mig_fwd_new(const struct mig_machine *mm);
void mig_fwd_free(struct mig_fwd *f);

/* Wait up to timeout_ms for the channel to have something to read,
 * reading the ports meanwhile (kept while paused, forwarded once
 * forwarding).  1 readable, 0 timed out, -errno. */
int mig_fwd_wait(struct mig_fwd *f, const struct mig_machine *mm, const struct mig_chan *ch,
                 int timeout_ms);
/* Read what waits at the ports now. */
void mig_fwd_drain(struct mig_fwd *f, const struct mig_machine *mm, const struct mig_chan *ch);
/* After COMMIT: the kept frames for the VM, then FRAMES_PAUSED; from now
 * on frames are forwarded as they come.  0 or -errno. */
int mig_fwd_send_paused(struct mig_fwd *f, const struct mig_chan *ch);
/* The grace period (from since_ns, the commit), then FWD_END. */
void mig_fwd_grace(struct mig_fwd *f, const struct mig_machine *mm, const struct mig_chan *ch,
                   uint64_t since_ns);
/* The migration failed: every kept frame back to the VM, in order. */
void mig_fwd_requeue(struct mig_fwd *f, const struct mig_machine *mm);
/* query-migrate's figures. */
void mig_fwd_info(const struct mig_fwd *f, struct mig_info *info);

#endif
