/*
 * What the job engine's files share (jobs.c: runners, start, cancel,
 * restart; jobs_holds.c: holds, approvals, dependencies, slots;
 * jobs_api.c: /1.0/jobs).  Not for other modules: they use jobs.h.
 */
#ifndef GODWIT_GODWITD_JOBS_INT_H
#define GODWIT_GODWITD_JOBS_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "godwitd/godwitd.h"
#include "godwitd/jobs.h"

#define JOBS_KINDS_MAX     16
#define JOBS_PROGRESS_MS   250  /* migration-progress events, at most every */
#define JOBS_SETTLE_MS     5000 /* jobs_settle at the latest after jobs_init */
#define JOBS_FINI_WAIT_MS  5000 /* jobs_fini waits for runners this long */
#define JOBS_RECENT_MS     (24 * 3600 * 1000LL)
#define JOBS_RECENT_MAX    50
#define JOBS_HISTORY_MAX   10000
#define JOBS_HISTORY_BATCH 500
#define JOBS_RESTART_ERROR "interrupted: godwitd restarted"
#define JOBS_OWN_SET_BY    "godwitd (the job itself)" /* set_by of job_hold_own's holds */

struct job {
    struct godwitd *d;
    const struct job_kind *k;
    int64_t id;
    void *arg;
    void (*free_arg)(void *);
    json_t *options;  /* owned */
    bool resuming;    /* run k->resume instead of k->run */
    bool released;    /* resume runs because the last hold lifted */
    atomic_bool held; /* an active hold: park at the next safe point */
    atomic_bool cancelled;
    int64_t progress_ms; /* last migration-progress event (unix ms), runner only */
    struct job *next;    /* jobs->runners */
};

struct jobs_pending {
    int64_t id;
    char kind[STORE_WORD_MAX];
    char direction[STORE_WORD_MAX];
};

struct jobs {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a runner ended; stop */
    const struct job_kind *kinds[JOBS_KINDS_MAX];
    unsigned nkinds;
    struct job *runners;
    unsigned nrunners;
    struct jobs_pending *pending; /* unfinished at start, no runner yet */
    size_t npending;
    bool initialized, settled;
    atomic_bool stop; /* jobs_fini: runners wind down */
    bool settle_thread;
    pthread_t settler;
};

/* jobs.c, under js->lock: the registered kind, or NULL. */
const struct job_kind *jobs_kind_find(struct jobs *js, const char *kind, const char *direction);
/* jobs.c, under js->lock: start a resume runner for a parked job of a
 * holdable kind (its last hold lifted, or cancelled: it cleans up). */
int jobs_wake(struct jobs *js, struct godwitd *d, const struct job_kind *k, int64_t id,
              bool cancelled);

/* jobs_holds.c.  Under the store lock: an active hold that parks the job
 * (any but technical holds and the job's own, job_hold_own). */
bool jobs_parking_holds(struct godwitd *d, int64_t id);
/* Under the store lock: job `after` finished (or gone). */
bool jobs_is_over(struct godwitd *d, int64_t after);
/* Under js->lock: job done_id finished: lift the dependency holds waiting
 * for it, then the slots. */
void jobs_after_finished(struct jobs *js, struct godwitd *d, int64_t done_id, const char *status);
/* Under js->lock: give freed outgoing slots to the oldest waiting jobs. */
void jobs_recheck_slots(struct jobs *js, struct godwitd *d);
/* Under js->lock, once at start: dependencies that finished meanwhile. */
void jobs_recheck_dependencies(struct jobs *js, struct godwitd *d);

#endif
