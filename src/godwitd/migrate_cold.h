/*
 * Cold and suspended migration, the source's side (migrate_cold.c: the job;
 * migrate_send.c: the files over the wire; docs/godwitd.md "Cold and
 * suspended migration").
 *
 * Source job (kind cold or suspended, direction out), phases:
 *   precheck   here (the VM's state, its files), then the destination
 *              (name, memory, build, disk space: POST /1.0/incoming/precheck)
 *   shutdown   cold: graceful power-down through the agent (--force: then
 *              power-off); skipped for a VM already stopped
 *   suspend    --suspend: the running VM's state is saved to its folder
 *   transfer   definition, boot files, disks (and the saved state) through
 *              the transfer engine: sparse, checksummed, resumable
 *   start      the destination makes the VM its own (starts it unless
 *              --no-start or it was not running; --resume for suspended)
 *   verify     the started VM's agent answers a ping there
 *   confirm    the source keeps its copy (state migrated, read-only) until
 *              confirm, revert, or the end of the confirm window (auto)
 *   done       confirmed: the source's copy is gone
 * Before confirm every failure puts the VM back here as it was (started
 * again if the job shut it down) and has the destination remove its copy.
 */
#ifndef GODWIT_GODWITD_MIGRATE_COLD_H
#define GODWIT_GODWITD_MIGRATE_COLD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "godwitd/godwitd.h"
#include "godwitd/xfer.h"

#define MIGRATE_CONFIRM_WINDOW_S 600  /* --confirm auto: the default window */
#define MIGRATE_GIVE_UP_S        3600 /* --give-up-after's default */

/* One file that travels. */
struct migrate_file {
    char name[80];                   /* its name in the destination's VM folder */
    char path[PATH_MAX];             /* where it is here */
    uint64_t size, allocated, total; /* total: bytes of the chunks that hold data */
    uint64_t done;                   /* of total, verified by the destination */
    uint64_t high;                   /* end of the highest chunk sent (resends below it) */
    uint64_t allocated_dst;          /* the destination's allocation, once complete */
    char digest[XFER_DIGEST_HEX + 1];
    bool complete;
};

/* The sender's state for one job. */
struct migrate_send {
    struct godwitd *d;
    int64_t job;
    char peer[STORE_NAME_MAX];
    int64_t dst_job;
    struct peer_conn *conn;
    struct xfer_rate rate;
    uint64_t wire, resent, compressed, nsent, bad_chunks, resumes;
    uint64_t reconnects; /* requests libcurl sent again on a new connection */
    int64_t give_up_ms;  /* without progress this long: fail (--give-up-after) */
    bool unreachable;    /* the peer did not answer: a technical hold is set */
    uint64_t flip_chunk; /* test hook (GODWITD_FAULT_FLIP_CHUNK), 0: off */
    int64_t progress_ms; /* the last verified chunk */
    void *owner;         /* the job's context, for the callbacks */
};

/* Send one file (resuming where the destination stands).  0, or -errno
 * with the reason. */
int migrate_send_file(struct migrate_send *s, struct migrate_file *f, char *err, size_t errlen);

/* Bytes of the chunks below limit that hold data (see struct migrate_file). */
uint64_t migrate_data_chunks(const char *path, uint64_t limit);

/* Implemented by migrate_cold.c for the sender: stop now?  Publish the
 * figures (at most every 250 ms unless final). */
bool migrate_send_stop(struct migrate_send *s);
void migrate_send_progress(struct migrate_send *s, bool final);
/* The peer stopped answering (why) / answers again: the job's technical
 * hold is set / lifted. */
void migrate_send_unreachable(struct migrate_send *s, const char *why);
void migrate_send_reachable(struct migrate_send *s);

/* POST /1.0/vms/{name}/migrate with mode cold or suspended (migrate.c
 * hands the request over). */
void migrate_cold_post(struct api_request *req, struct api_reply *rep, const char *mode);

void migrate_cold_register(struct godwitd *d);

/* The holds a new outgoing migration starts with (for jobs_start_held):
 * dependency for the request's "after" (a job id), resources when this
 * host already runs --max-migrations outgoing ones.  The count (0-2); the
 * caller drops each h[i].lift (NULL when unused). */
struct job_hold_spec;
size_t migrate_start_holds(struct godwitd *d, const struct api_request *req,
                           struct job_hold_spec *h);

#endif
