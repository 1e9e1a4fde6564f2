/*
 * The host agent's shared context (docs/godwitd.md).  One struct godwitd per
 * process, made by main.c and handed to every module (API handlers get it
 * as req->ctx).  Modules own their own files and state:
 *
 *   api.c          HTTP plumbing: listeners, route table, JSON bodies, errors
 *   store*.c       SQLite: the registry, peers, tokens, jobs, holds, events
 *   trust.c        the host's key and certificate, fingerprints, join tokens
 *   events.c       GET /1.0/events and the wake-up of its streams
 *   vms.c          /1.0/vms: define, start, stop, kill, delete, show, console
 *   supervise.c    godwit-vm children: spawn, reap, reattach after a restart
 *   peers.c        /1.0/peers: join tokens, pairing, the peer HTTPS client
 *   jobs.c         /1.0/jobs: list, show, cancel; the job runner threads
 *   migrate.c      live migration between hosts (source and destination)
 *
 * Each resource module exports its routes as MODULE_routes[] with
 * MODULE_nroutes entries; main.c joins them into the API's table.
 *
 * Threads: API handlers run concurrently (a thread per connection), job
 * runners in their own threads, the supervisor in one.  The store is used
 * under godwitd_store_lock(); keep the critical sections short (no QMP or
 * network call while holding it).
 */
#ifndef GODWIT_GODWITD_GODWITD_H
#define GODWIT_GODWITD_GODWITD_H

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "godwitd/api.h"
#include "godwitd/store.h"
#include "godwitd/trust.h"

#define GODWITD_SHARED_MAX 16 /* --shared-storage directories */

struct events;
struct supervisor;
struct jobs;
struct migrate_in;

struct godwitd {
    char state_dir[PATH_MAX];
    char socket_path[PATH_MAX];
    char name[API_NAME_MAX + 1];
    char listen[STORE_ADDR_MAX];      /* --listen HOST:PORT for peers; "" none */
    char vm_binary[PATH_MAX];         /* the godwit-vm to run (--vm-binary) */
    char *shared[GODWITD_SHARED_MAX]; /* --shared-storage DIR, realpath'ed */
    unsigned nshared;
    uint64_t memory_budget;   /* --memory-budget: bytes all VMs may use; 0: the host's RAM */
    unsigned max_out, max_in; /* --max-migrations OUT[,IN]: concurrent migrations (2, 2) */
    json_t *labels;           /* --label KEY=VALUE...: this host's labels (policies), {} */
    int lock_fd;              /* DIR/godwitd.lock, flock'ed while the daemon runs */
    struct {
        pthread_mutex_t lock;
        char text[256]; /* `godwit-vm --version`'s first line ("" unknown) */
        dev_t dev;      /* ... of the binary with this identity */
        ino_t ino;
        off_t size;
        struct timespec mtime;
    } vm_build;

    pthread_mutex_t store_lock;
    struct store *store;
    struct trust_identity *id; /* DIR/tls: the host's key and certificate */
    struct api_server *api;
    struct events *events;
    struct supervisor *sup;
    struct jobs *jobs;
    struct migrate_in *migrate_in; /* incoming migrations (migrate_in.c) */
    _Atomic bool stopping;         /* SIGTERM seen: runners wind down, VMs stay */
};

void godwitd_store_lock(struct godwitd *d);
void godwitd_store_unlock(struct godwitd *d);

/* DIR/vms/NAME (name already validated).  0 or -ENAMETOOLONG. */
int godwitd_vm_dir(const struct godwitd *d, const char *vm, char *out, size_t len);

/* Record an event (type such as "vm-started", subject such as "vm/web1",
 * data a JSON object, stolen; NULL: {}) and wake the event streams.
 * Takes the store lock itself: call without holding it. */
void godwitd_event(struct godwitd *d, const char *type, const char *subject, json_t *data);

/* Wake the event streams after events were added some other way (the
 * store's own job events). */
void events_notify(struct godwitd *d);

/*
 * Module lifetimes, called by main.c in this order after the store and the
 * identity are up (and the fini in reverse order at SIGTERM).  Each init
 * returns 0 or -errno with a one-line reason in err; a fini undoes what its
 * init did and never stops a VM.
 *   events   the event streams
 *   vms      the supervisor: reattach to running VMs, record vanished ones
 *   peers    the peer client (the HTTPS listener is an API listener)
 *   jobs     the runner: pick up unfinished jobs after a restart
 *   migrate  registers the migration kinds with the job runner
 */
int events_init(struct godwitd *d, char *err, size_t errlen);
void events_fini(struct godwitd *d);
int vms_init(struct godwitd *d, char *err, size_t errlen);
void vms_fini(struct godwitd *d);
int peers_init(struct godwitd *d, char *err, size_t errlen);
void peers_fini(struct godwitd *d);
int jobs_init(struct godwitd *d, char *err, size_t errlen);
void jobs_fini(struct godwitd *d);
int migrate_init(struct godwitd *d, char *err, size_t errlen);
void migrate_fini(struct godwitd *d);

/* Module route tables ({NULL}-free arrays of MODULE_nroutes entries). */
extern const struct api_route events_routes[];
extern const size_t events_nroutes;
extern const struct api_route vms_routes[];
extern const size_t vms_nroutes;
extern const struct api_route peers_routes[];
extern const size_t peers_nroutes;
extern const struct api_route jobs_routes[];
extern const size_t jobs_nroutes;
extern const struct api_route migrate_routes[];
extern const size_t migrate_nroutes;
extern const struct api_route migrate_in_routes[]; /* the destination's, peers only */
extern const size_t migrate_in_nroutes;

#endif
