/*
 * What vms.c (the API and definitions) and supervise.c (the godwit-vm
 * processes, their console relays and TAPs) share.  Private to the two.
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

#define VM_FILE_RELAY  "console-relay.sock" /* godwit vm console attaches here */
#define VM_FILE_VMLOG  "vm.log"             /* godwit-vm's stdout and stderr */
#define VM_NICS_MAX    4
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

/* Wait until the watch of pid ended (its exit recorded): 0, -ETIMEDOUT
 * after timeout_ms, -ECANCELED once the daemon is stopping. */
int sup_wait_exit(struct godwitd *d, const char *name, pid_t pid, int timeout_ms);

/* Stop watching without touching the process (it moved away). */
void sup_forget(struct godwitd *d, const char *name);

/* TAP devices: make one (persistent, up, attached to bridge), delete one.
 * 0 or -errno with a reason. */
int sup_tap_create(const char *tap, const char *bridge, char *err, size_t errlen);
void sup_tap_delete(const char *tap);

/* A file in the VM's folder: DIR/vms/NAME/file.  0 or -ENAMETOOLONG. */
int vm_path(const struct godwitd *d, const char *name, const char *file, char *out, size_t len);

#endif
