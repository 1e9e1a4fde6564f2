/*
 * The migration engine (docs/state.md): saving a VM to a file, loading
 * one, and live migration with its commit protocol, for any machine that
 * offers the small interface below.  The engine knows guest RAM (mem/gmem)
 * and the stream format (state/), never the board: it reaches the machine
 * only through struct mig_machine_ops.
 *
 * Threads.  A job runs on a thread of its own, so the machine's run loop
 * keeps serving its control socket meanwhile.  The devices and the harts
 * belong to the run loop: when the job needs them quiet it asks the loop
 * (ops->kick), and the loop, in mig_out_poll(), parks the machine
 * (ops->park) and hands it over; the job gives it back when it ends
 * (ops->unpark, from mig_out_poll again).  The dirty bitmap is collected
 * the same way, between hart slices.  Every ops callback documents the
 * thread it runs on.
 *
 * Ownership.  Until the source has sent COMMIT it owns the VM: any failure
 * resumes it (unpark with MIG_UNPARK_RESUME).  After COMMIT it stays
 * stopped (MIG_UNPARK_GONE) and a destination runs only once it has read
 * COMMIT: never two copies running.
 */
#ifndef GODWIT_MIGRATION_MIGRATION_H
#define GODWIT_MIGRATION_MIGRATION_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "mem/gmem.h"
#include "state/state_block.h"
#include "state/state_buf.h"
#include "state/state_format.h"
#include "state/state_stream.h"

/* error-desc's room: "destination refused the migration: " and the
 * destination's reason (MIG_REASON_MAX bytes, mig_proto.h) */
#define MIG_ERROR_DESC_LEN 600

/* A disk that can travel with a live migration (capability `block`). */
struct mig_disk {
    unsigned slot;       /* where the machine has it (virtio-mmio index) */
    char path[PATH_MAX]; /* its image file */
    uint64_t size;       /* bytes */
};

struct blk_dirty;

/* A network port whose frames a live migration forwards at the switchover
 * (capability x-godwit-net-forward; docs/net.md, "The switchover"): a
 * -netdev with a NIC and a host side the job can read (TAP). */
struct mig_net_port {
    unsigned port;  /* the machine's netdev index (< MIG_FRAME_PORTS, mig_proto.h) */
    int fd;         /* readable when frames wait */
    uint8_t mac[6]; /* its NIC's address */
};

/* Parameters (QMP migrate-set-parameters, QEMU's names). */
struct mig_params {
    uint64_t downtime_limit_ms; /* "downtime-limit": 300 */
    uint64_t max_bandwidth;     /* "max-bandwidth", bytes/s: 128 MiB/s; 0 = unlimited */
    bool compress;              /* "x-godwit-compress": LZ4 for live streams (files always) */
    bool events;                /* capability "events": MIGRATION(_PASS) events (default on) */
    /* capability "x-godwit-precopy-recover": the live stream may pause
     * (migrate-pause) and survive a broken link during pre-copy; it resumes
     * with migrate resume: true (docs/state.md, "pausing and resuming") */
    bool precopy_recover;
    /* "x-godwit-hold-switchover": converge but do not switch over while
     * true (x-godwit-held-converged); may change while a job runs */
    bool hold_switchover;
    /* capability "block" (or migrate's "blk": true): the writable disks
     * travel in the live stream (docs/state.md, "Disks in the stream") */
    bool block;
    /* capability "x-godwit-net-forward" (default on): frames that reach
     * the VM's network ports from the pause on are kept and forwarded to
     * the destination after COMMIT (docs/net.md, "The switchover") */
    bool net_forward;
    /* Throttling (docs/state.md, "Throttling"; mig_throttle.h).  The two
     * capabilities exclude each other; the numbers may change while a job
     * runs (mig_out_update). */
    bool auto_converge;              /* capability "auto-converge" */
    unsigned cpu_throttle_initial;   /* "cpu-throttle-initial", %: 20 */
    unsigned cpu_throttle_increment; /* "cpu-throttle-increment", %: 10 */
    bool cpu_throttle_tailslow;      /* "cpu-throttle-tailslow": false */
    unsigned max_cpu_throttle;       /* "max-cpu-throttle", %: 99 */
    bool dirty_limit;                /* capability "dirty-limit" (QEMU 8.1) */
    uint64_t vcpu_dirty_limit;       /* "vcpu-dirty-limit", MB/s per hart: 1 */
    uint64_t dirty_limit_period_ms;  /* "x-vcpu-dirty-limit-period", ms: 1000 */
    /* capability "postcopy-ram" (both sides, as QEMU): the stream may
     * switch to post-copy (migrate-start-postcopy, or by itself with
     * x-godwit-postcopy-auto when pre-copy does not converge): the
     * destination runs at once and fetches the pages it lacks */
    bool postcopy;
    bool postcopy_auto;  /* "x-godwit-postcopy-auto" */
    char tls_creds[128]; /* "tls-creds": a tls-creds-psk object's id; "" = plain */
    /* The directory of that object's keys.psk, filled by the machine when
     * it starts a job (the engine knows no objects).  Non-empty: the live
     * channel is TLS (mig_tls.h), the source the client, the destination
     * the server. */
    char tls_dir[512];
};

/* QEMU 7.2's defaults (events on: godwit's clients wait on them). */
void mig_params_default(struct mig_params *p);

/* Status of a job, as QEMU names it (query-migrate "status"). */
enum mig_status {
    MIG_ST_NONE,
    MIG_ST_SETUP,
    MIG_ST_ACTIVE,
    MIG_ST_DEVICE,
    MIG_ST_COMPLETED,
    MIG_ST_FAILED,
    MIG_ST_CANCELLING,
    MIG_ST_CANCELLED,
    MIG_ST_PRECOPY_PAUSED,  /* x-godwit-precopy-paused: no connection, the guest runs on */
    MIG_ST_PRECOPY_RECOVER, /* x-godwit-precopy-recover: reconnecting */
    MIG_ST_HELD_CONVERGED,  /* x-godwit-held-converged: in sync, switchover held */
    MIG_ST_POSTCOPY_ACTIVE, /* postcopy-active: the destination runs, pages still come */
    MIG_ST_COUNT,
};
const char *mig_status_name(enum mig_status st);

/* How the machine gets its devices back when an outgoing job ends. */
enum mig_unpark {
    MIG_UNPARK_RESUME, /* failed or cancelled: as before the job (running again if it ran) */
    MIG_UNPARK_SAVED,  /* a file was written: stay stopped (postmigrate), the VM is still here */
    MIG_UNPARK_GONE,   /* committed: the VM runs on the destination now; stay stopped */
};

struct mig_machine_ops {
    /* Any thread: wake the run loop so it calls mig_out_poll()/mig_in_poll() soon. */
    void (*kick)(void *opaque);
    /* Loop thread: finish the devices' batched work, stop the harts (run
     * state finish-migrate, a STOP event if they ran); remember how it was. */
    void (*park)(void *opaque);
    /* Loop thread: the job is over; how tells what to do. */
    void (*unpark)(void *opaque, enum mig_unpark how);
    /* Loop thread: the job changed status, or finished a pre-copy pass
     * (pass > 0, status unchanged): the machine reports it (events). */
    void (*status)(void *opaque, enum mig_status st, uint64_t pass);
    /* Any thread: the configuration text whose hash goes into a header
     * (a malloc'ed string, NULL when out of memory). */
    char *(*config_text)(void *opaque);
    /* Job thread, machine parked: every component's section into s. */
    int (*save_components)(void *opaque, struct state_stream *s);
    /* Job thread, machine parked, live only: everything but EOF went out;
     * let go of what the destination must hold before it answers READY
     * (disk image locks; shared storage).  0, or -errno with a reason: the
     * migration fails.  A failed migration's unpark(RESUME) takes it back. */
    int (*handover)(void *opaque, char *err, size_t errlen);
    /* Loader thread, machine not running.  load_begin forgets which
     * components were loaded; load_component loads one section (0, or
     * -errno with the reason in err); load_end checks that every component
     * came exactly once and drops the machine's caches of RAM. */
    void (*load_begin)(void *opaque);
    int (*load_component)(void *opaque, const struct state_section *sec, struct state_buf *b,
                          char *err, size_t errlen);
    int (*load_end)(void *opaque, char *err, size_t errlen);
    /* Loop thread, destination: the state is loaded and committed; run the
     * VM (or keep it paused), its clock moved on by paused_ns (how long the
     * guest stood still).  0, or -errno with a reason: the VM cannot run
     * here (it is then lost: only for failures nothing could foresee). */
    int (*incoming_done)(void *opaque, uint64_t paused_ns, char *err, size_t errlen);
    /* Loop thread, destination: the incoming migration failed (the machine
     * never ran); the process should end as QEMU's does. */
    void (*incoming_failed)(void *opaque, const char *why);
    /* Any thread: the writable disks (at most max into d); NULL: none. */
    unsigned (*disks)(void *opaque, struct mig_disk *d, unsigned max);
    /* Loop thread: the disk in slot marks the blocks it writes into t
     * (NULL: stops; a write waiting for room completes). */
    void (*disk_track)(void *opaque, unsigned slot, struct blk_dirty *t);
    /* Frame forwarding (params.net_forward), job thread, while the machine
     * is parked or has migrated away (the loop leaves the backends alone
     * then).  net_ports: the ports (at most max into out).  net_take: one
     * frame waiting at a port's host side into buf (cap bytes): its
     * length, 0 when none waits, or -errno.  net_requeue: give one back
     * to the guest's side (the migration failed and the VM runs here
     * again), ahead of whatever the host side still holds.  NULL: none. */
    unsigned (*net_ports)(void *opaque, struct mig_net_port *out, unsigned max);
    long (*net_take)(void *opaque, unsigned port, uint8_t *buf, size_t cap);
    void (*net_requeue)(void *opaque, unsigned port, const uint8_t *frame, size_t len);
    /* Loop thread, destination: a frame the source forwarded, for the
     * guest on that port.  0, or -errno (no such port; dropped). */
    int (*net_inject)(void *opaque, unsigned port, const uint8_t *frame, size_t len);
};

/* The machine as the engine sees it. */
struct mig_machine {
    const struct mig_machine_ops *ops;
    void *opaque;
    struct gmem *mem;
    bool trace;          /* GODWIT_TRACE=migration: one line per round and phase */
    const char *name;    /* the VM's name, NULL: anonymous (into headers) */
    const uint8_t *uuid; /* 16 bytes, NULL: none */
    unsigned idle_ms;    /* destination: a source silent this long is gone (0: 30 s) */
    /* destination, tests only (GODWIT_TEST_READY_DELAY_MS): wait this long
     * before READY, so a test can act while the source stays parked */
    unsigned ready_delay_ms;
    /* destination, tests only (GODWIT_TEST_DIE_AFTER_COMMIT): end the
     * process right after COMMIT and the paused frames, before running */
    bool die_after_commit;
};

/* Statistics of a job (query-migrate's fields; ns are host monotonic). */
struct mig_info {
    enum mig_status status;
    bool live, done, incoming;
    uint64_t total_ms, setup_ms;
    bool has_downtime; /* downtime_ms is final, else expected_downtime_ms */
    uint64_t downtime_ms, expected_downtime_ms;
    uint64_t transferred, remaining, total; /* bytes */
    uint64_t pages_normal, pages_zero, dirty_sync_count, dirty_pages_rate;
    uint64_t recoveries, resent; /* resumes that worked; bytes re-sent because unverified */
    bool has_disk;               /* block migration: disk_* below */
    bool mirror;                 /* active mirroring is on */
    uint64_t disk_transferred, disk_remaining, disk_total, disk_dirty_rate; /* bytes, bytes/s */
    /* frame forwarding (docs/net.md): the source's counts (frames kept
     * while paused, sent to the destination, dropped for want of room,
     * kept but not for the VM, how long it forwarded after the commit),
     * or the destination's (received, handed to the guest, dropped) */
    /* post-copy: the source's pages sent and requests served, or the
     * destination's faults, pages received and fault waits (us) */
    bool has_pc;
    uint64_t pc_requests, pc_pages, pc_bytes, pc_faults, pc_bad_requests;
    uint64_t pc_lat_p50_us, pc_lat_p99_us, pc_lat_max_us;
    bool has_fwd, fwd_active;
    uint64_t fwd_captured, fwd_forwarded, fwd_overflow, fwd_other, fwd_grace_ms;
    uint64_t fwd_received, fwd_delivered, fwd_dropped;
    double mbps;
    /* throttling (mig_out_throttle): auto-converge's percentage (0: none),
     * dirty-limit applied */
    unsigned throttle_pct;
    bool dirty_limit_on;
    char error[MIG_ERROR_DESC_LEN]; /* failed or cancelled: why */
    /* incoming over tcp: where it listens (port 0 asked: the one chosen) */
    char listen_host[256];
    int listen_port; /* 0: none */
};

/* ---- outgoing (mig_out.c, mig_live.c) ---------------------------------------------- */

struct mig_out;

/*
 * Start an outgoing migration to uri: "file:PATH" (a state file, written
 * atomically: a temporary file, fsync, rename; an existing PATH must be a
 * regular file), "tcp:HOST:PORT" or "unix:PATH" (live).  The job record
 * is returned in *jobp even when starting failed (its status then says
 * failed); 0 or -errno with a message.  Loop thread.
 */
int mig_out_start(struct mig_out **jobp, const struct mig_machine *mm, const char *uri,
                  const struct mig_params *p, char *err, size_t errlen) gw_must_check;
/* Loop thread: serve the job (park, dirty collection, status changes, end). */
void mig_out_poll(struct mig_out *j);
/* Loop thread: migrate_cancel (no effect once committed or finished). */
void mig_out_cancel(struct mig_out *j);
/* Loop thread: cancel a running job, wait for it, free the record.  NULL is a no-op. */
void mig_out_free(struct mig_out *j);
/* True while the job runs (setup, active, device, cancelling). */
bool mig_out_active(const struct mig_out *j);
/* Loop thread: the job's statistics. */
void mig_out_info(const struct mig_out *j, struct mig_info *info);
/*
 * Loop thread, recoverable live jobs (params.precopy_recover).  pause:
 * stop sending at the next batch, end the connection cleanly, keep
 * tracking dirty pages (status x-godwit-precopy-paused; the guest runs on).
 * resume: reconnect to uri (the destination's migrate-recover) and go on
 * with what the destination lacks.  0 or -errno with a reason.
 */
int mig_out_pause(struct mig_out *j, char *err, size_t errlen) gw_must_check;
/* Loop thread: migrate-start-postcopy (capability postcopy-ram): switch at
 * the next round's end.  0 or -errno with a reason. */
int mig_out_start_postcopy(struct mig_out *j, char *err, size_t errlen) gw_must_check;
int mig_out_resume(struct mig_out *j, const char *uri, char *err, size_t errlen) gw_must_check;
/* Loop thread: migrate-set-parameters while the job runs: max-bandwidth,
 * downtime-limit and x-godwit-hold-switchover take effect at once (the
 * next batch, the next round). */
void mig_out_update(struct mig_out *j, const struct mig_params *p);

/* What the run loop holds the harts to now (mig_out_throttle). */
struct mig_throttle_now {
    unsigned pct;       /* auto-converge: every hart runs (100 - pct) % of the time; 0 = no */
    uint64_t limit_bps; /* dirty-limit: bytes/s each hart may dirty; 0 = no */
    uint64_t period_ns; /* dirty-limit: the measuring period (the burst a hart may write) */
};
/* Loop thread, between hart slices: the throttle a job asks for (all zero
 * without a job, before the rule fired, and once the job has ended in any
 * way or paused: throttling is lifted with it).  j may be NULL. */
void mig_out_throttle(const struct mig_out *j, struct mig_throttle_now *t);

/* ---- incoming (mig_in.c) --------------------------------------------------------------- */

struct mig_in;

/*
 * Load a state file into the machine (before it runs): 0 or -errno with a
 * message.  The file must be a regular file.
 */
int mig_in_load_file(const struct mig_machine *mm, const char *path, char *err,
                     size_t errlen) gw_must_check;
/*
 * Listen on a tcp:/unix: URI for one live migration, loaded by a thread
 * while the loop serves QMP.  p (NULL: defaults) gives tls_dir: then the
 * connection must complete a TLS handshake as the server before anything
 * is loaded.  *inp receives the job.  0 or -errno.
 */
int mig_in_start(struct mig_in **inp, const struct mig_machine *mm, const char *uri,
                 const struct mig_params *p, char *err, size_t errlen) gw_must_check;
/* Loop thread: report progress; once committed call ops->incoming_done. */
/* Loop thread: capability postcopy-ram changed (QEMU lets it be set after
 * -incoming, before the source connects). */
void mig_in_set_postcopy(struct mig_in *in, bool on);
void mig_in_poll(struct mig_in *in);
/* Loop thread: an incoming migration paused (x-godwit-precopy-paused)
 * listens on uri for the source's resume.  0 or -errno with a reason. */
int mig_in_recover(struct mig_in *in, const char *uri, char *err, size_t errlen) gw_must_check;
/* Stop listening / loading and free.  NULL is a no-op. */
void mig_in_free(struct mig_in *in);
void mig_in_info(const struct mig_in *in, struct mig_info *info);

/* ---- the stream, whole (mig_saveload.c) -------------------------------------------------- */

/*
 * Save the whole machine into s: header, configuration, every page that
 * holds data, the components, EOF.  The machine must be parked.  pages
 * counts RAM pages sent (normal) and elided (zero) as it goes (read by
 * other threads with relaxed atomics); cancel (may be NULL) stops it.
 */
int mig_save(const struct mig_machine *mm, struct state_stream *s, uint32_t flags,
             uint64_t *pages_normal, uint64_t *pages_zero, const _Atomic bool *cancel);
/*
 * Load a whole stream (header to EOF) into the machine; -errno with a
 * one-line reason in err.  round_cb (may be NULL) is called after each
 * ROUND marker with everything before it loaded.  The machine must not be
 * running; on failure it is half-loaded and must not run.
 */
int mig_load(const struct mig_machine *mm, struct state_stream *s,
             void (*round_cb)(void *opaque, uint32_t round), void *cb_opaque, char *err,
             size_t errlen) gw_must_check;

/* What a live destination learns while it loads (mig_load_live). */
struct mig_load_hooks {
    void *opaque;
    /* after each ROUND marker, everything before it loaded */
    void (*round)(void *opaque, uint32_t round);
    /* a recoverable stream's SESSION: 0 to go on, -errno with a reason to
     * refuse it (a resume of another migration) */
    int (*session)(void *opaque, uint64_t session, uint64_t attempt, char *err, size_t errlen);
    /* a CHECKPOINT verified: everything before it is here */
    void (*checkpoint)(void *opaque, uint64_t seq);
    /* disks (capability block): DISKS, each BLOCK, DISKSUM; 0 or -errno
     * with a reason (NULL: a stream with disks is refused) */
    int (*disks)(void *opaque, const struct state_disk *d, unsigned n, char *err, size_t errlen);
    int (*block)(void *opaque, const struct state_blk_view *v, char *err, size_t errlen);
    int (*disksum)(void *opaque, const uint64_t (*sums)[2], unsigned n, char *err, size_t errlen);
    bool resume;      /* in: a resumed stream: RAM is kept as it is */
    bool postcopy_ok; /* in: this side takes post-copy (capability postcopy-ram) */
    bool components;  /* out: a component section was loaded (past pausing) */
    uint32_t flags;   /* out: the stream header's STATE_F_* */
};
#define MIG_LOAD_PAUSED 1 /* mig_load_live: the source paused (PAUSE) */
/* mig_load for a live stream with hooks: 0 at EOF (verified), MIG_LOAD_PAUSED,
 * or -errno with the reason in err. */
int mig_load_live(const struct mig_machine *mm, struct state_stream *s, struct mig_load_hooks *h,
                  char *err, size_t errlen) gw_must_check;

/* Write the header (with the machine's identity and config hash) and the
 * configuration section. */
int mig_write_start(const struct mig_machine *mm, struct state_stream *s, uint32_t flags);

#endif
