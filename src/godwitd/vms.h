/*
 * VMs and their supervision (vms.c: /1.0/vms; supervise.c: the children).
 *
 * A VM is a folder DIR/vms/NAME/ (definition vm.json, boot files, disks,
 * console log, QMP and console sockets) plus its row in the store.  Its
 * process is a child godwit-vm started with -name/-uuid, a QMP socket and
 * the console on a unix socket with a bounded log.  What other modules
 * (migrate.c) use:
 */
#ifndef GODWIT_GODWITD_VMS_H
#define GODWIT_GODWITD_VMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "godwitd/godwitd.h"

/* Paths inside a VM's folder (name validated; out of PATH_MAX). */
#define VM_FILE_DEF     "vm.json"     /* the definition */
#define VM_FILE_QMP     "qmp.sock"
#define VM_FILE_CONSOLE "console.sock"
#define VM_FILE_LOG     "console.log"

/*
 * Start the VM's godwit-vm with extra arguments appended (NULL-terminated;
 * e.g. {"-incoming", "defer", "-S", NULL} for a migration's destination),
 * wait until its QMP socket answers, record pid and state (state: the
 * store state to record, "running" or "incoming"), emit vm-started.
 * 0, or -errno with a one-line reason (the child's own error if it died).
 */
int vm_spawn(struct godwitd *d, const char *name, const char *const *extra, const char *state,
             char *err, size_t errlen);

/* The VM's QMP socket path.  0 or -ENAMETOOLONG. */
int vm_qmp_path(const struct godwitd *d, const char *name, char *out, size_t len);

/* Forget a VM whose process this host no longer supervises (it moved away):
 * stop watching its pid without killing it, remove its row and folder. */
int vm_forget(struct godwitd *d, const char *name, char *err, size_t errlen);

/* Kill the VM's process (SIGKILL) and wait for it to be reaped (at most
 * timeout_ms); the state becomes stopped (not crashed). */
int vm_kill(struct godwitd *d, const char *name, int timeout_ms, char *err, size_t errlen);

/* Create a VM (folder and row) from a definition in the form of the API's
 * POST /1.0/vms body extended with what travels with a VM (uuid, macs, disk
 * paths): what a migration's destination uses.  -EEXIST if the name is taken. */
int vm_define(struct godwitd *d, const json_t *def, char *err, size_t errlen);

/* The VM's definition (vm.json as JSON, new reference) or NULL. */
json_t *vm_definition(struct godwitd *d, const char *name);

/* Guest memory of all VMs this host runs or is receiving (bytes). */
uint64_t vm_memory_in_use(struct godwitd *d);

#endif
