/*
 * The host agent's store: one SQLite database (godwit.db in the state
 * directory) holding this host's identity, the VMs it owns, its trusted
 * peers, join tokens, jobs, their holds and the event log.  Every SQL
 * statement of godwitd lives in store.c; callers see plain C structs.
 *
 * The database runs in WAL mode with foreign keys on; its schema version is
 * PRAGMA user_version, and store_open applies the missing migration steps in
 * order, one transaction each.  A database written by a newer godwit is
 * refused.  Every mutation is one transaction.
 *
 * Conventions: functions return 0 or a negative errno: -ENOENT (no such
 * row), -EEXIST (the name or id is taken), -EINVAL (a value outside its
 * set, or a finished job), -ENAMETOOLONG (a string longer than its field),
 * -EALREADY (a token already used, a hold already lifted), -ETIMEDOUT (an
 * expired token), -ENOMEM, -EIO (SQLite failed; store_errmsg says why).
 * Times are unix milliseconds (0: not yet).  Strings in fixed buffers are
 * NUL-terminated; JSON columns come back as malloc'ed strings (NULL when
 * unset) which the matching *_clear / *_list_free releases.  A store is used
 * from one thread at a time.
 */
#ifndef GODWIT_GODWITD_STORE_H
#define GODWIT_GODWITD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 1

#define STORE_NAME_MAX 64  /* VM, peer and host names: up to 63 characters */
#define STORE_WORD_MAX 32  /* states, phases, kinds, types */
#define STORE_UUID_MAX 40  /* 36 characters */
#define STORE_PATH_MAX 256 /* socket paths (sun_path is 108 anyway) */
#define STORE_ADDR_MAX 256 /* host:port */
#define STORE_FPR_MAX  128 /* certificate fingerprint, e.g. "sha256:<64 hex>" */
#define STORE_WHO_MAX  128 /* who started a job, set or lifted a hold */
#define STORE_TEXT_MAX 512 /* a hold's reason */

struct store;

/*
 * Open (or create, mode 0600) the database at path and bring its schema up
 * to STORE_SCHEMA_VERSION.  NULL and a one-line reason in err on failure.
 */
struct store *store_open(const char *path, char *err, size_t errlen);
void store_close(struct store *s); /* NULL: no-op */
/* The last failure's message (never NULL). */
const char *store_errmsg(const struct store *s);
/* The schema version of the open database. */
int store_schema_version(struct store *s);

/* The current time as the store records it (unix milliseconds). */
int64_t store_now_ms(void);

/* ---- this host ---- */
/* Set this host's name (the first call records created_ms). */
int store_host_set(struct store *s, const char *name);
/* -ENOENT before the first store_host_set. */
int store_host_get(struct store *s, char name[STORE_NAME_MAX], int64_t *created_ms);

/* ---- VMs ---- */
/* States a VM may be in: defined, starting, running, stopping, stopped,
 * suspended, crashed, migrating, migrated, incoming. */
bool store_vm_state_valid(const char *state);

struct store_vm {
    char name[STORE_NAME_MAX];
    char uuid[STORE_UUID_MAX];
    uint64_t memory; /* bytes */
    uint32_t cpus;
    char state[STORE_WORD_MAX];
    int64_t pid;                   /* 0: no process */
    char qmp_path[STORE_PATH_MAX]; /* "" when not running */
    char console_path[STORE_PATH_MAX];
    int exit_status;                /* wait status of the last exit, -1: none */
    int64_t created_ms, updated_ms; /* set by the store */
    char *config;                   /* the VM definition, JSON (malloc'ed) */
};

/* Insert a new VM: -EEXIST if the name is taken. */
int store_vm_add(struct store *s, const struct store_vm *vm);
/* Insert or replace every field but created_ms. */
int store_vm_put(struct store *s, const struct store_vm *vm);
int store_vm_get(struct store *s, const char *name, struct store_vm *out);
/* All VMs by name; *out is malloc'ed (free with store_vm_list_free). */
int store_vm_list(struct store *s, struct store_vm **out, size_t *n);
int store_vm_delete(struct store *s, const char *name);
/* State, pid and exit status together (a process starting or ending). */
int store_vm_set_state(struct store *s, const char *name, const char *state, int64_t pid,
                       int exit_status);
void store_vm_clear(struct store_vm *vm);
void store_vm_list_free(struct store_vm *v, size_t n);

/* ---- peers ---- */
struct store_peer {
    char name[STORE_NAME_MAX]; /* the name the peer gave itself */
    char address[STORE_ADDR_MAX];
    char fingerprint[STORE_FPR_MAX];
    int64_t added_ms; /* set by the store */
};

int store_peer_add(struct store *s, const struct store_peer *p); /* -EEXIST */
int store_peer_get(struct store *s, const char *name, struct store_peer *out);
/* The peer whose certificate has this fingerprint (TLS handshake check). */
int store_peer_find_fingerprint(struct store *s, const char *fpr, struct store_peer *out);
int store_peer_list(struct store *s, struct store_peer **out, size_t *n); /* free() */
int store_peer_remove(struct store *s, const char *name);

/* ---- join tokens (single use) ---- */
/* id: the token's public id; secret_hash: a hash of its secret (hex). */
int store_token_add(struct store *s, const char *id, const char *secret_hash, int64_t expires_ms);
/*
 * Mark the token used, atomically: 0 once; then -EALREADY.  -ENOENT for an
 * unknown id or a wrong hash, -ETIMEDOUT once now_ms >= its expiry.
 */
int store_token_consume(struct store *s, const char *id, const char *secret_hash, int64_t now_ms);
/* Delete used and expired tokens; *n (may be NULL) gets how many. */
int store_token_purge(struct store *s, int64_t now_ms, unsigned *n);

/* ---- jobs ---- */
/* kind: live, cold, suspended.  direction: out (this host is the source),
 * in (the destination).  status: running, held, done, failed, cancelled
 * (the last three are final). */
bool store_job_kind_valid(const char *kind);
bool store_job_status_valid(const char *status);
bool store_job_status_final(const char *status);

struct store_job {
    int64_t id; /* set by store_job_create */
    char kind[STORE_WORD_MAX];
    char direction[STORE_WORD_MAX];
    char vm[STORE_NAME_MAX];
    char peer[STORE_NAME_MAX];
    char phase[STORE_WORD_MAX]; /* precheck, prepare, transfer, ... (the engine's) */
    char status[STORE_WORD_MAX];
    char started_by[STORE_WHO_MAX];
    int64_t created_ms, started_ms, ended_ms;
    char *options; /* JSON: what the job was asked (bandwidth, window, ...) */
    char *figures; /* JSON: progress and results */
    char *error;   /* why it failed, plain text */
};

/* Create a job from kind, direction, vm, peer, phase, started_by, options
 * (status running, created now); *id gets its id. */
int store_job_create(struct store *s, const struct store_job *j, int64_t *id);
int store_job_get(struct store *s, int64_t id, struct store_job *out);
/* Jobs newest first; unfinished only when active_only. */
int store_job_list(struct store *s, bool active_only, struct store_job **out, size_t *n);
/* Enter a phase (the first call also records started_ms).  -EINVAL once
 * the job is finished. */
int store_job_set_phase(struct store *s, int64_t id, const char *phase);
/* Replace the figures (JSON). */
int store_job_set_figures(struct store *s, int64_t id, const char *figures);
/* End the job: status done, failed or cancelled; error and figures may be
 * NULL (figures NULL keeps the current ones).  Active holds are lifted by
 * "job finished".  -EINVAL if already finished or status not final. */
int store_job_finish(struct store *s, int64_t id, const char *status, const char *error,
                     const char *figures);
void store_job_clear(struct store_job *j);
void store_job_list_free(struct store_job *v, size_t n);

/* ---- holds ---- */
/* type: technical, resources, compliance, dependency, window, budget, manual. */
bool store_hold_type_valid(const char *type);

struct store_hold {
    int64_t id; /* set by store_hold_add */
    int64_t job_id;
    char type[STORE_WORD_MAX];
    char reason[STORE_TEXT_MAX];
    char set_by[STORE_WHO_MAX];
    int64_t set_ms;    /* set by the store */
    char *lift;        /* JSON: how it lifts (window, job, budget...) */
    int64_t lifted_ms; /* 0: active */
    char lifted_by[STORE_WHO_MAX];
};

/*
 * Put a job on hold: the job's status becomes held in the same
 * transaction.  -ENOENT for an unknown job, -EINVAL for a finished one or
 * an unknown type.
 */
int store_hold_add(struct store *s, const struct store_hold *h, int64_t *id);
int store_hold_get(struct store *s, int64_t id, struct store_hold *out);
/* A job's holds, oldest first; active ones only when active_only. */
int store_hold_list(struct store *s, int64_t job_id, bool active_only, struct store_hold **out,
                    size_t *n);
/*
 * Lift a hold; when it was the job's last active one, the job's status
 * goes back to running in the same transaction.  -EALREADY if lifted.
 */
int store_hold_lift(struct store *s, int64_t id, const char *lifted_by);
void store_hold_clear(struct store_hold *h);
void store_hold_list_free(struct store_hold *v, size_t n);

/* ---- events ----
 * Job changes record their own event in the same transaction (subject
 * "job/ID"): job-created, job-phase, job-finished, hold-set, hold-lifted.
 * Everything else is added by the caller. */
struct store_event {
    int64_t id; /* increasing */
    int64_t time_ms;
    char type[STORE_WORD_MAX];   /* vm-started, job-phase, hold-set, ... */
    char subject[STORE_WHO_MAX]; /* "vm/web1", "job/12", "peer/hostB" */
    char *data;                  /* JSON */
};

int store_event_add(struct store *s, const char *type, const char *subject, const char *data,
                    int64_t *id);
/* Events with id > since_id, oldest first, at most limit. */
int store_event_list_since(struct store *s, int64_t since_id, unsigned limit,
                           struct store_event **out, size_t *n);
/* A subject's events ("job/12": the job's history), oldest first. */
int store_event_list_subject(struct store *s, const char *subject, int64_t since_id, unsigned limit,
                             struct store_event **out, size_t *n);
/* Keep the newest keep events; *n (may be NULL) gets how many were deleted. */
int store_event_trim(struct store *s, unsigned keep, unsigned *n);
void store_event_list_free(struct store_event *v, size_t n);

#endif
