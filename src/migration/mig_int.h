/*
 * Private parts of the engine: the statistics accessors every job uses
 * (mig_out.c, mig_live.c, mig_in.c), and the outgoing job shared by
 * mig_out.c (the job, its thread and the run loop's side) and mig_live.c
 * (pre-copy and commit).
 */
#ifndef GODWIT_MIGRATION_MIG_INT_H
#define GODWIT_MIGRATION_MIG_INT_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "migration/mig_block.h"
#include "migration/mig_netfwd.h"
#include "migration/mig_proto.h"
#include "migration/mig_throttle.h"
#include "migration/mig_tls.h"
#include "migration/migration.h"

/* Statistics the job writes and the loop reads: relaxed atomic accesses
 * (a value may be a moment old, never torn). */
#define ST_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define ST_GET(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define ST_INC(field)    __atomic_fetch_add(&(field), 1, __ATOMIC_RELAXED)

#define MIG_EVQ 16 /* status changes queued for the loop */

struct mig_out {
    struct mig_machine mm;
    pthread_t thread;
    bool thread_live; /* started and not joined */
    _Atomic bool cancel;
    _Atomic int status; /* enum mig_status */
    /* status changes and passes not yet reported (job -> loop): >= 0 a
     * status, < 0 the pass number negated.  lock also orders "done",
     * "committed" and the cancel decision. */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* park and sync handshakes */
    int evq[MIG_EVQ];
    unsigned evn;
    _Atomic bool done;      /* the thread finished: the loop joins it */
    _Atomic bool committed; /* COMMIT is (being) sent: no way back */
    /* park and dirty-sync handshakes (under lock) */
    bool want_park, parked;
    bool want_sync, synced;
    /* target */
    struct mig_uri uri;
    bool live; /* tcp: or unix: */
    char path[PATH_MAX];
    char tmp[PATH_MAX + 16];
    int fd;
    struct mig_tls_creds *creds; /* live over TLS: the keys (else NULL) */
    struct mig_tls *tls;         /* the session over fd, once shaken hands */
    struct mig_params params;    /* as when the job started */
    uint64_t *dirty;             /* live: the bitmap collected at the last sync */
    uint8_t *sent;               /* live: pages the destination holds non-zero */
    /* recoverable pre-copy (params.precopy_recover; mig_live.c) */
    uint32_t *tag;    /* per page: 1 + the last CHECKPOINT written before it went out (0: never) */
    uint64_t session; /* the migration's random id */
    uint64_t attempt; /* resumes tried (0: the first connection) */
    uint64_t ckpt;    /* the last CHECKPOINT written (numbers go on across connections) */
    uint64_t ckpt_at; /* this connection's stream offset at that checkpoint */
    bool first_pass;  /* the first pass has not finished: it goes on from it */
    struct gmem_page_iter it;
    uint64_t bytes_base;        /* bytes sent on earlier connections */
    _Atomic bool want_pause;    /* migrate-pause: stop at the next batch */
    _Atomic bool want_postcopy; /* migrate-start-postcopy: switch at the next round's end */
    bool postcopy;              /* switched: the destination runs, pages go on */
    uint64_t *pc_missing;       /* post-copy: pages the destination does not hold yet */
    uint64_t pc_requests, pc_pages, pc_bytes; /* statistics (ST_SET / ST_GET) */
    uint64_t pc_bad_requests;                 /* requests for pages past RAM (ignored) */
    bool pc_failed;                           /* post-copy broke off after the commit */
    _Atomic bool hold;                        /* x-godwit-hold-switchover */
    bool want_resume;                         /* migrate resume: true (under lock), to resume_uri */
    struct mig_uri resume_uri;
    char pause_reason[MIG_ERROR_DESC_LEN]; /* why it paused (under lock): error-desc meanwhile */
    uint64_t recoveries, resent;           /* statistics (ST_SET/ST_GET) */
    /* capability block: the disks that travel (NULL: none) */
    struct mig_blk *blk;
    /* capability x-godwit-net-forward: the ports' frames (NULL: none) */
    struct mig_fwd *fwd;
    /* committed and the destination runs, but the job still forwards
     * frames: status completed, the machine handed back (mig_out_handback) */
    _Atomic bool handback;
    bool handed_back; /* the loop did it */
    /* throttling (mig_throttle.h): the rule's state (job thread), and what
     * it decided for the loop (ST_SET/ST_GET) */
    struct mig_throttle thr;
    unsigned thr_pct;
    bool thr_limit;
    /* statistics (host ns; ST_SET by the job, ST_GET by the loop) */
    uint64_t rounds, dirty_pages_rate, expected_downtime_ms, remaining_pages;
    uint64_t start_ns, setup_ns, park_ns, end_ns, run_ns;
    uint64_t pages_normal, pages_zero, bytes;
    /* the destination answered ERROR: its reason ("" if none came intact) */
    bool refused;
    int refused_errno;
    char reason[MIG_REASON_MAX + 1];
    char error[MIG_ERROR_DESC_LEN]; /* written by the job before "done" */
    bool logged;
};

/* Job side (mig_out.c): status change for the loop to report. */
void mig_out_set_status(struct mig_out *j, enum mig_status st);
/* Job side, after COMMIT: report completed and give the machine back (it
 * migrated away), while the job goes on forwarding frames. */
void mig_out_handback(struct mig_out *j);
/* Job side: a pre-copy pass ended (MIGRATION_PASS). */
void mig_out_post_pass(struct mig_out *j);
/* Job side: have the loop park the machine / collect the dirty bitmap
 * into j->dirty; -ECANCELED if cancelled meanwhile. */
int mig_out_park(struct mig_out *j);
int mig_out_sync(struct mig_out *j);
/* Job side, after each dirty sync of pre-copy: QEMU's rule decides
 * whether to throttle (more); dirty and sent bytes since the last sync. */
void mig_out_throttle_sync(struct mig_out *j, uint64_t dirty_bytes, uint64_t xfer_bytes);
/* GODWIT_TRACE=migration. */
void mig_out_trace(const struct mig_out *j, const char *fmt, ...) gw_printf(2, 3);

/* Post-copy, after COMMIT (mig_postcopy.c): send every page set in
 * j->pc_missing, the destination's requests first; frames go on too.  0
 * once the destination has them all (PAGES_DONE), or -errno. */
int mig_pc_serve(struct mig_out *j, const struct mig_chan *ch);

/* The destination's side of post-copy (mig_postcopy.c). */
#define MIG_PC_LAT_BUCKETS 24    /* fault waits: 1 us .. 8 s, powers of two */
#define MIG_PC_IDLE_MS     30000 /* a source silent this long during post-copy is gone */
struct mig_pc_in {
    struct mig_machine mm;
    struct mig_chan ch;
    struct mig_fwd_in *fwd; /* frames come interleaved (NULL: none) */
    pthread_t thread;
    bool thread_live;
    pthread_mutex_t lock; /* with cond: a fault waits for its page */
    pthread_cond_t cond;
    unsigned waiting;
    uint64_t *requested;    /* pages asked for (loop thread only) */
    _Atomic bool pages_end; /* PAGES_END came and every page before it */
    _Atomic bool over;      /* the reader ended */
    /* statistics (ST_SET / ST_GET; lat[] is the loop's) */
    uint64_t faults, pages, lat_max_us;
    uint64_t lat[MIG_PC_LAT_BUCKETS];
    uint8_t buf[MIG_FRAME_MAX];
};
int mig_pc_in_init(struct mig_pc_in *pc, const struct mig_machine *mm);
void mig_pc_in_fini(struct mig_pc_in *pc);
/* gmem's fetch hook (the loop thread): ask for the missing pages of
 * first..last and wait until they are here. */
void mig_pc_in_fetch(void *opaque, uint64_t first, uint64_t last);
/* Loop thread, the guest about to run: the reader of pages and frames. */
int mig_pc_in_start(struct mig_pc_in *pc, struct mig_chan ch, struct mig_fwd_in *fwd);
void mig_pc_in_info(const struct mig_pc_in *pc, struct mig_info *info);

/* The commit protocol's channel: the socket, or the TLS session over it. */
static inline struct mig_chan mig_out_chan(const struct mig_out *j)
{
    return (struct mig_chan){.fd = j->fd, .tls = j->tls};
}

/* The live job's body (mig_live.c): pre-copy rounds, switchover, commit.
 * 0 once COMMIT went out; -errno with the reason in *sp.  A recoverable job
 * replaces *sp (and j->fd, j->tls) when it resumes on a new connection. */
int mig_live_run(struct mig_out *j, struct state_stream **sp);
/* A live connection's socket options: a send timeout for recoverable jobs
 * (a silent link must end in a pause, not a write blocked forever). */
void mig_live_sockopts(const struct mig_out *j, int fd);
/* After a failure before COMMIT: the destination may have refused the
 * stream and said why.  Read the reply channel for an ERROR (at most
 * MIG_LIVE_REASON_MS); sets j->refused and j->reason if one came. */
void mig_live_fetch_refusal(struct mig_out *j);

#endif
