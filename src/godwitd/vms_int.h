/*
 * What the VM module's files share (private to them):
 *   vms.c        the API (/1.0/vms), reattach at start
 *   vm_def.c     definitions: checked, then made into folder, files, row
 *   vm_run.c     spawning godwit-vm, kill, forget, the memory budget
 *   supervise.c  the watched processes, console relays, TAPs
 *
 * The supervisor keeps one watch per VM process it knows (a child it
 * spawned, or a process reattached after a daemon restart).  One thread
 * polls every watch: it relays the VM's console (the VM's console.sock,
 * one connection, held by godwitd) to the bounded console.log and to at
 * most one client attached on console-relay.sock, and notices the process
 * ending (waitpid for children, kill(pid, 0) for reattached ones), then
 * records stopped or crashed in the store, removes the VM's TAPs and emits
 * vm-stopped / vm-crashed.  Watches are freed only by that thread; the
 * API threads flag them (expect an exit, forget) and wait on a condition.
 */
#ifndef GODWIT_GODWITD_VMS_INT_H
#define GODWIT_GODWITD_VMS_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "godwitd/vms.h"

#define VM_FILE_RELAY "console-relay.sock" /* godwit vm console attaches here */
#define VM_FILE_VMLOG "vm.log"             /* godwit-vm's stdout and stderr */
#include <jansson.h>

#define VM_NICS_MAX    4
#define VM_HOSTFWD_MAX 16
#define VM_DISKS_MAX   6
#define VM_TAP_NAME    16           /* IFNAMSIZ */
#define VM_LOG_MAX     (2u << 20)   /* console.log beyond this is cut ... */
#define VM_LOG_KEEP    (1u << 20)   /* ... to its last 1 MiB */
#define VM_VMLOG_MAX   (256u << 10) /* vm.log: kept if smaller at start */
#define VM_SPAWN_MS    15000        /* the QMP socket must answer by then */
#define VM_REATTACH_MS 2000         /* QMP identity check after a restart */

int sup_init(struct godwitd *d, char *err, size_t errlen);
void sup_fini(struct godwitd *d);

/* Watch a VM's process: open its console log, connect its console (the
 * first attempt right now), serve its relay socket.  taps: the TAP devices
 * made for it (deleted when it exits).  0 or -errno with a reason. */
int sup_watch(struct godwitd *d, const char *name, pid_t pid, bool child,
              const char (*taps)[VM_TAP_NAME], unsigned ntaps, char *err, size_t errlen);

/* Whether the VM's process is watched; *pid (may be NULL) gets it. */
bool sup_watching(struct godwitd *d, const char *name, pid_t *pid);

/* An exit of the VM's process from now on is an expected one (stop,
 * kill): recorded as stopped whatever its status.  on=false undoes it. */
void sup_expect_exit(struct godwitd *d, const char *name, bool on);

/* An exit of the VM's process from now on records state (e.g. "suspended":
 * its state was saved) whatever its status, and emits no vm-stopped /
 * vm-crashed: the caller announces it.  NULL undoes it. */
void sup_exit_as(struct godwitd *d, const char *name, const char *state);

/* Wait until the watch of pid ended (its exit recorded): 0, -ETIMEDOUT
 * after timeout_ms, -ECANCELED once the daemon is stopping. */
int sup_wait_exit(struct godwitd *d, const char *name, pid_t pid, int timeout_ms);

/* Stop watching without touching the process (it moved away). */
void sup_forget(struct godwitd *d, const char *name);

/* TAP devices: make one (persistent, up, attached to bridge), delete one.
 * 0 or -errno with a reason. */
int sup_tap_create(const char *tap, const char *bridge, char *err, size_t errlen);
void sup_tap_delete(const char *tap);

/* vm_spawn with the QMP wait bounded by timeout_ms (a state file loads
 * before QMP answers).  resume: the VM must be suspended (vm_resume);
 * without it a suspended VM is refused. */
int vm_spawn_ex(struct godwitd *d, const char *name, const char *const *extra, const char *state,
                bool resume, int timeout_ms, char *err, size_t errlen);

/* ---- vms.c ---- */

/* Whether the VM has an unfinished job (*id gets it), under the store lock
 * (held by the caller). */
bool vm_job_locked(struct godwitd *d, const char *name, int64_t *id);
/* Set the row's state if it still names pid and is active (stopping <->
 * running). */
void vm_set_state_if(struct godwitd *d, const char *name, pid_t pid, const char *state);

/* A state in which the VM has (or is getting) a process. */
bool vm_state_active(const char *state);
/* The VM's row, under the store lock.  0 or -errno. */
int vm_row(struct godwitd *d, const char *name, struct store_vm *row);
/* Emit an event about VM name (subject "vm/NAME"; data stolen, NULL: {}). */
void vm_emit(struct godwitd *d, const char *type, const char *name, json_t *data);

/* ---- vm_suspend.c ---- */

/* The state file's size and modification time (ms since epoch), either may
 * be NULL.  0, or -errno (-ENOENT: none). */
int vm_state_info(struct godwitd *d, const char *name, uint64_t *size, int64_t *saved_ms);
/* A suspended VM's saved state is thrown away: state "stopped", the file
 * removed, vm-stopped {"discarded": true}.  -EBUSY if not suspended. */
int vm_suspend_discard(struct godwitd *d, const char *name, char *err, size_t errlen);

/* ---- vm_def.c ---- */

/*
 * Check a POST /1.0/vms body (or, with travel, a definition from another
 * host: "uuid", NIC "mac"s and disk "file"s kept) and build the definition.
 * Nothing on disk changes.  copies gets {"src","dst"} pairs of boot files
 * to copy into the folder.  NULL with the reason in err.
 */
json_t *vm_def_build(const json_t *body, bool travel, json_t *copies, char *err, size_t errlen);

/* Make the folder, files and row (state defined) for a checked definition.
 * -EEXIST if the name is taken; on any failure nothing is left behind. */
int vm_materialise(struct godwitd *d, json_t *def, const json_t *copies, char *err, size_t errlen);

/* The TAP device of the VM's NIC i: "gw" + 8 hex digits of a hash of the
 * UUID and i (stable, fits IFNAMSIZ). */
void vm_tap_name(const char *uuid, unsigned i, char out[VM_TAP_NAME]);

/* rm -rf dir.  0 or -errno. */
int vm_rmdir(const char *dir);

/* A file in the VM's folder: DIR/vms/NAME/file.  0 or -ENAMETOOLONG. */
int vm_path(const struct godwitd *d, const char *name, const char *file, char *out, size_t len);

#endif
