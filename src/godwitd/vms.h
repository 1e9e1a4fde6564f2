/*
 * VMs and their supervision (vms.c: /1.0/vms; vm_def.c: definitions;
 * vm_run.c: starting and ending processes; supervise.c: the watched
 * processes, console relays, TAPs; docs/godwitd.md "VMs").
 *
 * A VM is a folder DIR/vms/NAME/ (definition vm.json, copies of its boot
 * files, its new disks, console.log, vm.log, the QMP, console and relay
 * sockets while it runs) plus its row in the store.  Its process is a
 * godwit-vm started with -name/-uuid, a QMP socket and the console on a
 * unix socket that godwitd holds and relays (console.log, bounded, and
 * console-relay.sock for `godwit vm console`).  The process is in its own
 * session and survives godwitd; a restarted godwitd reattaches after
 * checking its identity over QMP.  What other modules (migrate.c) use:
 */
#ifndef GODWIT_GODWITD_VMS_H
#define GODWIT_GODWITD_VMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "godwitd/godwitd.h"

/* Paths inside a VM's folder (name validated; out of PATH_MAX). */
#define VM_FILE_DEF     "vm.json" /* the definition */
#define VM_FILE_QMP     "qmp.sock"
#define VM_FILE_CONSOLE "console.sock"
#define VM_FILE_LOG     "console.log"
#define VM_FILE_STATE   "suspended.state" /* the saved state of a suspended VM, in its folder */

/*
 * Start the VM's godwit-vm with extra arguments appended (NULL-terminated;
 * e.g. {"-incoming", "defer", "-S", NULL} for a migration's destination),
 * wait until its QMP socket answers, record pid and state (state: the
 * store state to record, "running" or "incoming"), watch it, emit
 * vm-started.  Without extra arguments the VM starts paused (-S) and is
 * continued once its console is connected, so the log has its first byte;
 * with extra arguments nothing is continued (the caller owns the run
 * state).  The VM must be in a state without a process (defined, stopped,
 * crashed); it goes through "starting", and back to where it was on any
 * failure (TAPs removed, the child killed).  The memory budget counts
 * every VM with a process.
 * 0, or -errno with a one-line reason (the child's own error if it died):
 * -ENOENT no such VM, -EBUSY it has a process or migrated away, -ENOSPC
 * over the memory budget, -ENODEV a bridge is missing, -EIO the child
 * died, -ETIMEDOUT QMP never answered.
 */
int vm_spawn(struct godwitd *d, const char *name, const char *const *extra, const char *state,
             char *err, size_t errlen);

/* The VM's QMP socket path.  0 or -ENAMETOOLONG. */
int vm_qmp_path(const struct godwitd *d, const char *name, char *out, size_t len);

/* Forget a VM whose process this host no longer supervises (it moved away):
 * stop watching its pid without killing it (nor recording its exit), remove
 * its row and folder (disks referenced by path stay), emit vm-forgotten. */
int vm_forget(struct godwitd *d, const char *name, char *err, size_t errlen);

/* Kill the VM's process (SIGKILL) and wait for it to be reaped (at most
 * timeout_ms); the state becomes stopped (not crashed), its TAPs go.
 * -ESRCH when no process is watched, -ETIMEDOUT. */
int vm_kill(struct godwitd *d, const char *name, int timeout_ms, char *err, size_t errlen);

/* Power the VM off: ask the guest through its agent (QMP system_powerdown)
 * and wait up to timeout_s for its process to end; then (or at once for a
 * VM without an agent) force powers it off (SIGKILL), else it keeps
 * running.  0 (state stopped), or -errno with the reason: -ENOENT no such
 * VM, -EBUSY not running, -ENODEV no agent and no force, -ETIMEDOUT it did
 * not power down (and keeps running), -ECANCELED the daemon is stopping,
 * -EIO the request failed. */
int vm_stop(struct godwitd *d, const char *name, int timeout_s, bool force, char *err,
            size_t errlen);

/* Create a VM (folder and row, state "defined") from a definition: the
 * API's POST /1.0/vms body, or a vm.json from vm_definition() on another
 * host, extended with what travels with a VM: "uuid", NIC "mac"s, disks as
 * {"file": "diskN.raw", "size": N} (made sparse here; the caller may
 * fill it afterwards) or {"path": P}
 * (referenced: shared storage), and "kernel"/"initrd"/"firmware" either
 * absolute paths on this host (copied) or the folder's own names "kernel",
 * "initrd", "firmware.bin" (the caller transfers those files into the
 * folder).  What the migration's destination uses.  -EEXIST if the name is
 * taken, -EINVAL with the reason for a bad definition; nothing is left
 * behind on failure.  Emits vm-defined. */
int vm_define(struct godwitd *d, const json_t *def, char *err, size_t errlen);

/* A label key or value: 1-63 of a-z A-Z 0-9 . _ - (VM labels, host
 * labels, policy rules). */
bool vm_label_word_ok(const char *w);

/* The VM's definition (vm.json as JSON, new reference) or NULL.  Its file
 * names ("kernel", "disk0.raw") are relative to the VM's folder. */
json_t *vm_definition(struct godwitd *d, const char *name);

/* Put data (the console log the VM wrote on the host it came from) before
 * what this host's console.log holds, keeping the log bounded.  -ESRCH
 * when no console log is open for the VM. */
int vm_log_prepend(struct godwitd *d, const char *name, const char *data, size_t len, char *err,
                   size_t errlen);

/* Save the running (or paused) VM's state into its folder's VM_FILE_STATE
 * (written under a temporary name, renamed once godwit-vm reports the save
 * completed), end its process, state "suspended" (emits vm-suspended).
 * While the save runs the VM's state is "stopping".  0, or -errno with the
 * reason: -ENOENT no such VM, -EBUSY not running, -EIO the save failed (the
 * VM then keeps running as before; no partial file stays).  Unfinished jobs
 * are not checked here: the API refuses a VM that has one (409), and a
 * job (a suspended migration) calls this for its own VM. */
int vm_suspend(struct godwitd *d, const char *name, char *err, size_t errlen);

/* Start a suspended VM from its VM_FILE_STATE (godwit-vm -incoming
 * file:PATH -S), wait until it runs (cont), remove the state file, then set
 * the guest's clock through the agent (QMP x-godwit-agent-set-time); note
 * (may be NULL) gets one line saying what happened to the clock, e.g.
 * "guest clock set (12 ms)" or "guest clock not set: the VM has no guest
 * agent" / "... : <error>".  The clock failing does not fail the resume.
 * 0, or -errno with the reason (-ENOENT, -EBUSY not suspended, -ENOSPC over
 * the memory budget, -ENODEV a bridge is missing, -EIO load failed: the VM
 * stays suspended with its state file, nothing else changed; err includes
 * godwit-vm's own error).  Unfinished jobs are not checked here (the API
 * refuses a VM that has one; a migration's job calls this).  Emits
 * vm-resumed. */
int vm_resume(struct godwitd *d, const char *name, char *note, size_t notelen, char *err,
              size_t errlen);

/* Guest memory of all VMs this host runs or is receiving (bytes): every VM
 * in state starting, running, stopping, incoming or migrating. */
uint64_t vm_memory_in_use(struct godwitd *d);

#endif
