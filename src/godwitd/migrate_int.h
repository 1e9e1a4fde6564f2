/*
 * What the destination's modules share (migrate_in.c: the live kind and
 * the generic /1.0/incoming routes; migrate_in_cold.c: the cold and
 * suspended kinds' transfer, start, verify, confirm and revert).  Every
 * incoming migration is a struct incoming on one list, found by this
 * host's job id.
 */
#ifndef GODWIT_GODWITD_MIGRATE_INT_H
#define GODWIT_GODWITD_MIGRATE_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "godwitd/godwitd.h"
#include "godwitd/jobs.h"

struct incoming_cold;

/* Live: preparing (files, then start) → started (the stream runs) →
 * running (the VM is this host's) or failed.  Cold and suspended:
 * preparing (receiving files) → started (start, verify) → running (the VM
 * arrived, running or not) or failed. */
enum in_state { IN_PREPARING, IN_STARTED, IN_RUNNING, IN_FAILED };

struct incoming {
    char mode[STORE_WORD_MAX]; /* "live", "cold", "suspended" */
    struct godwitd *d;
    int64_t job;
    char vm[STORE_NAME_MAX];
    char peer[STORE_NAME_MAX];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum in_state state;
    bool abort;
    char error[512];
    unsigned nfiles; /* files received (finished) */
    char *log;       /* the source's console log, arriving after the switchover */
    size_t log_len;
    bool log_done;
    struct incoming_cold *cold; /* cold and suspended only */
    /* live, pre-copy paused (a hold at the source, a lost link): */
    char migration[STORE_WORD_MAX]; /* the incoming godwit-vm's status, polled */
    int64_t give_up_ms;             /* the source's --give-up-after */
    int64_t paused_ms;              /* paused since (unix ms), 0 not paused */
    unsigned recovers;              /* POST .../recover answered */
    struct incoming *next;
    unsigned refs; /* the list's and the job's */
};

struct migrate_in {
    pthread_mutex_t lock;
    struct incoming *list;
};

/* Incoming list and references (migrate_in.c). */
struct incoming *migrate_in_new(struct godwitd *d, const char *vm, const char *peer);
void migrate_in_link(struct incoming *in); /* on the list (takes no reference) */
struct incoming *migrate_in_find(struct godwitd *d, int64_t job);
void migrate_in_put(struct incoming *in);
void migrate_in_unlink(struct incoming *in);
void migrate_in_fail(struct incoming *in, const char *fmt, ...) gw_printf(2, 3);
/* The incoming named by the route's {id} with a reference, or NULL after
 * replying 400/404. */
struct incoming *migrate_in_lookup(struct api_request *req, struct api_reply *rep);
/* Whether def may come here in this mode ("live", "cold", "suspended"):
 * 0, or an HTTP status with the reason in msg.  files (may be NULL): the
 * [{name, size, allocated}] the source will send, for the space check;
 * start: the VM will run here (its memory counts). */
unsigned migrate_in_check(struct godwitd *d, const json_t *def, const json_t *compat,
                          const char *mode, const json_t *files, bool start, char *msg, size_t len);
bool migrate_in_file_name_ok(const char *n);
int migrate_in_query_int(const struct api_request *req, const char *key, long long max,
                         long long *out);
/* One QMP command to the VM (args stolen); *ret (may be NULL) the answer. */
int migrate_in_qmp(struct godwitd *d, const char *vm, const char *cmd, json_t *args, json_t **ret,
                   char *err, size_t errlen);

/* The cold and suspended kinds (migrate_in_cold.c). */
extern const struct job_kind migrate_in_cold_kind, migrate_in_suspended_kind;
void migrate_in_cold_register(struct godwitd *d);
/* The cold part of a new incoming: 0 or -ENOMEM. */
int migrate_in_cold_attach(struct incoming *in, const json_t *body);
void migrate_in_cold_free(struct incoming *in);
/* GET /1.0/incoming/{id}'s extra fields for a cold incoming (under in->lock). */
void migrate_in_cold_status(struct incoming *in, json_t *reply);
extern const struct api_route migrate_in_cold_routes[];
extern const size_t migrate_in_cold_nroutes;

/* The live source job (migrate.c) for migrate_post.c: start one (its
 * state, options and initial holds; 0 with *id, or -errno with a
 * reason), and register the kind at init. */
int migrate_live_start(struct godwitd *d, const char *name, const char *peer, const char *who,
                       const json_t *opts, const struct job_hold_spec *holds, size_t nholds,
                       int64_t *id, char *err, size_t errlen);
void migrate_live_register(struct godwitd *d);

#endif
