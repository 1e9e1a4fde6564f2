/*
 * Live migration between hosts (migrate.c source side, migrate_in.c
 * destination side; docs/godwitd.md "Live migration").
 *
 * Source job (kind live, direction out), phases:
 *   precheck    the disks' plan (migrate_live_plan: shared storage, or
 *               all in the stream); the destination checks name, memory
 *               budget, build and stream format, shared storage, room for
 *               the moving disks (POST /1.0/incoming/precheck)
 *   prepare     the destination defines the VM (moving disks as empty
 *               sparse diskN.raw), receives its boot files and starts
 *               godwit-vm -incoming with a fresh TLS-PSK key
 *               (POST /1.0/incoming, .../file, .../start)
 *   transfer    godwit-vm streams RAM, CPU, devices (and the moving disks:
 *               capability block) over TLS; a hold or
 *               a lost link pauses pre-copy (the VM runs on here), the
 *               release or the link's return continues it; outside a
 *               --window it converges and stays held-converged
 *   switchover  the source pauses; the destination loads, READY, COMMIT
 *   done        the destination confirmed its VM runs; the source's process
 *               ended and this host forgot the VM
 * or failed / cancelled with the reason (the destination's own, when it
 * refused).  Before COMMIT every failure leaves the VM running here.
 *
 * Destination job (kind live, direction in), phases prepare, transfer,
 * done: it owns the incoming godwit-vm until it runs (then the VM is this
 * host's) or fails (then it is killed and its folder removed, with the
 * partial disks).
 */
#ifndef GODWIT_GODWITD_MIGRATE_H
#define GODWIT_GODWITD_MIGRATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "godwitd/godwitd.h"

struct job;

#define MIGRATE_FILE_CHUNK   (1u << 20) /* boot file bytes per request (raw; API_BODY_MAX) */
#define MIGRATE_POLL_MS      50         /* query-migrate while it runs (figures, the end) */
#define MIGRATE_PREPARE_IDLE 600        /* s an incoming may wait for its source */
#define MIGRATE_KEY_BYTES    32         /* TLS-PSK key per job */
#define MIGRATE_TLS_OUT      "gwout"    /* -object id of the source side (every VM) */
#define MIGRATE_TLS_IN       "gwin"     /* -object id on an incoming VM */
#define MIGRATE_TLS_DIR      "tls"      /* vms/NAME/tls/keys.psk while a job runs */

/* The -object arguments every godwit-vm godwitd starts gets, so that it can
 * migrate out later (the key file is written only while a job runs).
 * Writes "tls-creds-psk,id=gwout,endpoint=client,dir=DIR/vms/NAME/tls". */
int migrate_tls_object(const struct godwitd *d, const char *vm, bool server, char *out, size_t len);

/* This host's compatibility figures: {"format": N, "vm-build": "..."}. */
json_t *migrate_compat(struct godwitd *d);

/* Shared between migrate.c and migrate_in.c. */
int migrate_key_write(const struct godwitd *d, const char *vm, const char *hex, char *err,
                      size_t errlen);
void migrate_key_remove(const struct godwitd *d, const char *vm);
/* The definition's disks all lie in a --shared-storage directory of this
 * host: 0, or -EXDEV naming the first that does not. */
int migrate_disks_shared(struct godwitd *d, const json_t *def, char *err, size_t errlen);
/*
 * What a live migration does with VM vm's disks (definition def), in
 * migrate_disks.c: *plan gets
 *   {"storage": "stream" | "shared" | "none", "local": N, "shared": N,
 *    "disk_bytes": allocated bytes that move, "disk_size": their sizes,
 *    "disks": [{"disk": i, "source", "size", "allocated", "moves": "stream" | "shared"}],
 *    "text": "1 local disk, 1.2 GiB allocated of 4 GiB, moves with the live stream"}
 * and *dst_def (may be NULL) the definition the destination gets (disks
 * that move become {"file": "diskN.raw", "size"} of its VM folder).  A VM
 * with disks of both kinds, or a moving disk that is not whole 512-byte
 * sectors, is refused (-EXDEV, -EINVAL with the reason); a disk that
 * cannot be read, -ENOENT.
 */
int migrate_live_plan(struct godwitd *d, const char *vm, const json_t *def, json_t **plan,
                      json_t **dst_def, char *err, size_t errlen);
/* The moving disks of a plan as the precheck's "files" (the destination's
 * space check): [{"name": "diskN.raw", "size", "allocated"}]. */
json_t *migrate_live_plan_files(const json_t *plan);

/* POST /1.0/incoming/precheck for job j, waiting while the peer receives
 * its --max-migrations at once (a resources hold the job keeps while it
 * asks again every MIGRATE_BUSY_RETRY_S).  As peer_call. */
#define MIGRATE_BUSY_RETRY_S 2
int migrate_precheck_call(struct job *j, const char *peer, const json_t *body, json_t **reply,
                          char *err, size_t errlen);

/*
 * The host's migration policy (STATE/policy.json, docs/holds.md) for job
 * j moving VM def to a host labelled dst_labels (the precheck's answer):
 *   {"four_eyes": bool,
 *    "rules": [{"vm_label": "K=V", "require_host_label": "K=V"},
 *              {"vm_label": "K=V", "approval": true}, ...],
 *    "budget": {"PEER": "10G"}}
 * A required host label the destination lacks refuses (-EPERM, err says
 * which rule); an approval rule puts the job on a compliance hold (it
 * parks at its precheck) unless it was approved already.  No file: no
 * rules.  A malformed file refuses too (-EINVAL): a policy is not guessed.
 */
int migrate_policy_gate(struct job *j, const json_t *def, const char *peer,
                        const json_t *dst_labels, uint64_t need_bytes, char *err, size_t errlen);
/* The policy's "budget": {"PEER": "10G", ...}, bytes a day to that peer
 * (wire bytes of the jobs created since local midnight): a job that would
 * go over waits on a budget hold for the next day; one larger than the
 * whole budget is refused (-EPERM). */
int migrate_budget_wait(struct job *j, const char *peer, const json_t *budget, uint64_t need,
                        char *err, size_t errlen);

/* A switchover window (--window): daily "HH:MM[:SS]-HH:MM[:SS]" in local
 * time (may cross midnight), or "FROM/TO", two ISO 8601 times
 * (YYYY-MM-DDTHH:MM[:SS] with Z, +HH:MM or -HH:MM, else local time). */
struct migrate_window {
    bool daily;
    int from_s, to_s;       /* daily: seconds after local midnight */
    int64_t from_ms, to_ms; /* interval: unix ms */
};
/* 0, or -EINVAL with why (a malformed spec, an empty window, an interval
 * that ended). */
int migrate_window_parse(const char *spec, struct migrate_window *w, char *err, size_t errlen);
/* 0 when now (unix ms) is inside the window; else the unix ms it opens
 * next (-1: never again). */
int64_t migrate_window_opens(const struct migrate_window *w, int64_t now_ms);
/* The window hold's reason: "switches over only inside the window SPEC:
 * it opens WHEN (in ...)". */
void migrate_window_reason(const char *spec, int64_t open_ms, int64_t now_ms, char *out,
                           size_t len);
/* Inside job j (cold and suspended), before its switchover: wait for the window (a window hold
 * the job keeps meanwhile, lifted when it opens).  0, -ECANCELED,
 * -ESHUTDOWN (resumed at the next start), -ETIME (it will never open). */
int migrate_window_wait(struct job *j, const char *spec, char *err, size_t errlen);

/* --after-vm NAME@PEER (migrate_after.c): parse and check it (PEER a
 * known peer or this host; vm and peer STORE_NAME_MAX bytes): 0 or -errno
 * with a reason.  Inside job j: hold (dependency) until that VM runs
 * there: 0, -ECANCELED, -ESHUTDOWN (resumed at the next start). */
int migrate_after_vm_parse(struct godwitd *d, const char *spec, char *vm, char *peer, char *err,
                           size_t errlen);
int migrate_after_vm_wait(struct job *j, const char *spec, char *err, size_t errlen);

int migrate_in_init(struct godwitd *d, char *err, size_t errlen);
void migrate_in_fini(struct godwitd *d);

#endif
