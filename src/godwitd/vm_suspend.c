/*
 * Suspend and resume a VM on this host (vms.h; docs/godwitd.md "Suspend
 * and resume"): godwit-vm saves its state with QMP migrate file: into the
 * VM's folder, then its process ends and the VM is "suspended"; resuming
 * starts godwit-vm with -incoming file: and -S, continues it once the
 * state loaded, removes the file and sets the guest's clock through the
 * guest agent.
 *
 * Invariants: a VM is "suspended" only with a complete VM_FILE_STATE in its
 * folder (godwit-vm writes VM_FILE_STATE_NEW atomically, renamed here once
 * the save completed, before the process is asked to end); a failed save
 * leaves the VM running as before and no file; a failed load leaves it
 * suspended with its file.  While the state is saved the row says
 * "stopping" (no migration or stop starts meanwhile).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "godwitd/vms_int.h"
#include "qmp/qmp_client.h"
#include "state/state_check.h"

#define VM_FILE_STATE_NEW "suspended.state.new" /* the save's target until it completed */
#define SUSPEND_QMP_MS    5000                  /* one QMP command */
#define SUSPEND_QUIT_MS   10000                 /* the process ends after quit, or is killed */
#define SUSPEND_POLL_MS   50                    /* query-migrate while the save runs */
#define RESUME_LOAD_RATE  (64u << 20)           /* bytes/s a load is given at least */
#define CLOCK_TIMEOUT_MS  3000                  /* x-godwit-agent-set-time's own wait */
#define CLOCK_RETRY_MS    10000                 /* retries while the agent is not connected */

/* fsync the VM's folder: a rename or unlink in it is durable. */
static void vm_dir_sync(struct godwitd *d, const char *name)
{
    char dir[PATH_MAX];
    int fd;

    if (godwitd_vm_dir(d, name, dir, sizeof(dir)) < 0)
        return;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* Remove what an interrupted save left: VM_FILE_STATE_NEW and godwit-vm's
 * own temporary files beside it (VM_FILE_STATE_NEW.XXXXXX). */
static void vm_state_leftovers(struct godwitd *d, const char *name)
{
    char dir[PATH_MAX], path[PATH_MAX];
    struct dirent *e;
    DIR *dp;

    if (godwitd_vm_dir(d, name, dir, sizeof(dir)) < 0 || !(dp = opendir(dir)))
        return;
    while ((e = readdir(dp)))
        if (!strncmp(e->d_name, VM_FILE_STATE_NEW, strlen(VM_FILE_STATE_NEW)) &&
            vm_path(d, name, e->d_name, path, sizeof(path)) == 0 && unlink(path) == 0)
            gw_log("vm %s: removed %s (an interrupted save)", name, e->d_name);
    closedir(dp);
}

int vm_state_info(struct godwitd *d, const char *name, uint64_t *size, int64_t *saved_ms)
{
    char path[PATH_MAX];
    struct stat st;

    if (vm_path(d, name, VM_FILE_STATE, path, sizeof(path)) < 0)
        return -ENAMETOOLONG;
    if (stat(path, &st) < 0)
        return -errno;
    if (size)
        *size = (uint64_t)st.st_size;
    if (saved_ms)
        *saved_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return 0;
}

/* ---- suspend ---- */

/* Follow the save until it ends: 0 completed, -EIO with godwit-vm's
 * reason.  A stopping daemon cancels it (the VM runs on). */
static int vm_save_follow(struct godwitd *d, struct qmp_client *c, char *err, size_t errlen)
{
    bool cancelled = false;

    for (;;) {
        json_t *qm = NULL;
        char why[256];
        int ret =
            qmp_client_execute(c, "query-migrate", NULL, SUSPEND_QMP_MS, &qm, why, sizeof(why));
        if (ret < 0)
            return gw_fail(err, errlen, -EIO, "godwit-vm stopped answering during the save (%s)",
                           why);
        const char *st = json_string_value(json_object_get(qm, "status")) ?: "";
        if (!strcmp(st, "completed")) {
            json_decref(qm);
            return 0;
        }
        if (!strcmp(st, "failed") || !strcmp(st, "cancelled") || !strcmp(st, "none")) {
            const char *desc = json_string_value(json_object_get(qm, "error-desc"));
            ret = gw_fail(err, errlen, -EIO, "%s",
                          desc && desc[0]       ? desc
                          : !strcmp(st, "none") ? "the save did not start"
                          : cancelled           ? "cancelled: godwitd is stopping"
                                                : st);
            json_decref(qm);
            return ret;
        }
        json_decref(qm);
        if (d->stopping && !cancelled) {
            if (qmp_client_execute(c, "migrate_cancel", NULL, SUSPEND_QMP_MS, NULL, why,
                                   sizeof(why)) < 0)
                gw_log("suspend: migrate_cancel: %s", why);
            cancelled = true;
        }
        usleep(SUSPEND_POLL_MS * 1000);
    }
}

/* Is the VM's run state "running" (QMP query-status)? */
static bool vm_qmp_running(struct qmp_client *c)
{
    json_t *r = NULL;
    bool running = false;

    if (qmp_client_execute(c, "query-status", NULL, SUSPEND_QMP_MS, &r, NULL, 0) == 0)
        running = json_is_true(json_object_get(r, "running"));
    json_decref(r);
    return running;
}

int vm_suspend(struct godwitd *d, const char *name, char *err, size_t errlen)
{
    char state_path[PATH_MAX], new_path[PATH_MAX], qmp_path[PATH_MAX], uri[PATH_MAX + 8];
    char why[512] = "";
    struct qmp_client *c = NULL;
    struct store_vm row;
    bool was_running = false;
    uint64_t size = 0;
    int64_t saved = 0;
    pid_t pid = 0;
    json_t *a;
    int ret;

    if (!api_name_valid(name))
        return gw_fail(err, errlen, -EINVAL, "invalid VM name");
    if (vm_path(d, name, VM_FILE_STATE, state_path, sizeof(state_path)) < 0 ||
        vm_path(d, name, VM_FILE_STATE_NEW, new_path, sizeof(new_path)) < 0 ||
        vm_qmp_path(d, name, qmp_path, sizeof(qmp_path)) < 0)
        return gw_fail(err, errlen, -ENAMETOOLONG, "the VM's folder path is too long");
    /* check and claim: running -> stopping, atomically */
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, &row);
    if (ret < 0) {
        godwitd_store_unlock(d);
        return gw_fail(err, errlen, ret, ret == -ENOENT ? "no VM '%s'" : "VM '%s': store error",
                       name);
    }
    if (strcmp(row.state, "running") || !sup_watching(d, name, &pid) || row.pid != pid)
        ret = gw_fail(err, errlen, -EBUSY,
                      "VM '%s' is %s, not running: only a running VM can be "
                      "suspended",
                      name, row.state);
    else if (store_vm_set_state(d->store, name, "stopping", pid, row.exit_status) < 0)
        ret = gw_fail(err, errlen, -EIO, "VM '%s': %s", name, store_errmsg(d->store));
    godwitd_store_unlock(d);
    store_vm_clear(&row);
    if (ret < 0)
        return ret;

    vm_state_leftovers(d, name);
    ret = qmp_client_connect(qmp_path, SUSPEND_QMP_MS, &c, why, sizeof(why));
    if (ret == 0) {
        was_running = vm_qmp_running(c);
        /* a live migration may have left its TLS credentials set: a file
         * save refuses them */
        a = json_pack("{s:s}", "tls-creds", "");
        ret = qmp_client_execute(c, "migrate-set-parameters", a, SUSPEND_QMP_MS, NULL, why,
                                 sizeof(why));
        json_decref(a);
    }
    if (ret == 0) {
        snprintf(uri, sizeof(uri), "file:%s", new_path);
        a = json_pack("{s:s}", "uri", uri);
        ret = qmp_client_execute(c, "migrate", a, SUSPEND_QMP_MS, NULL, why, sizeof(why));
        json_decref(a);
    }
    if (ret == 0)
        ret = vm_save_follow(d, c, why, sizeof(why));
    if (ret == 0 && rename(new_path, state_path) < 0)
        ret = gw_fail(why, sizeof(why), -EIO, "%s: %s", state_path, strerror(errno));
    if (ret < 0) {
        /* the VM runs on as before: godwit-vm resumes a VM that ran when
         * its save fails; a VM paused after a completed save is continued */
        char e2[256];
        unlink(new_path);
        if (c && was_running && !vm_qmp_running(c) &&
            qmp_client_execute(c, "cont", NULL, SUSPEND_QMP_MS, NULL, e2, sizeof(e2)) < 0)
            gw_log("vm %s: cont after a failed save: %s", name, e2);
        qmp_client_free(c);
        vm_set_state_if(d, name, pid, "running");
        gw_log("vm %s: suspend failed: %s", name, why);
        /* a process that died meanwhile was recorded by the supervisor */
        return gw_fail(err, errlen, -EIO, "VM '%s': the save failed: %s; %s", name, why,
                       sup_watching(d, name, NULL) ? "it keeps running"
                                                   : "its process ended (see godwit vm show)");
    }
    vm_dir_sync(d, name);
    /* the state is saved: the process ends, and its end is the suspend */
    sup_exit_as(d, name, "suspended");
    if (qmp_client_execute(c, "quit", NULL, SUSPEND_QMP_MS, NULL, why, sizeof(why)) < 0 &&
        !strstr(why, "closed"))
        gw_log("vm %s: quit: %s", name, why);
    qmp_client_free(c);
    if (sup_wait_exit(d, name, pid, SUSPEND_QUIT_MS) < 0 &&
        vm_kill(d, name, SUSPEND_QUIT_MS, why, sizeof(why)) < 0)
        gw_log("vm %s: after its save: %s", name, why);
    /* the supervisor recorded "suspended"; if it could not (the daemon
     * stops), a restart finds "stopping", no process and the file */
    vm_state_info(d, name, &size, &saved);
    vm_emit(d, "vm-suspended", name,
            json_pack("{s:s,s:I,s:I}", "file", VM_FILE_STATE, "size", (json_int_t)size, "saved",
                      (json_int_t)saved));
    gw_log("vm %s: suspended (%llu bytes saved)", name, (unsigned long long)size);
    return 0;
}

int vm_suspend_discard(struct godwitd *d, const char *name, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct store_vm row;
    int ret;

    if (vm_path(d, name, VM_FILE_STATE, path, sizeof(path)) < 0)
        return gw_fail(err, errlen, -ENAMETOOLONG, "the VM's folder path is too long");
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, &row);
    if (ret < 0) {
        godwitd_store_unlock(d);
        return gw_fail(err, errlen, ret, ret == -ENOENT ? "no VM '%s'" : "VM '%s': store error",
                       name);
    }
    if (strcmp(row.state, "suspended"))
        ret = gw_fail(err, errlen, -EBUSY, "VM '%s' is %s, not suspended", name, row.state);
    else if (store_vm_set_state(d->store, name, "stopped", 0, row.exit_status) < 0)
        ret = gw_fail(err, errlen, -EIO, "VM '%s': %s", name, store_errmsg(d->store));
    else if (unlink(path) < 0 && errno != ENOENT)
        gw_log("vm %s: %s: %s", name, path, strerror(errno));
    godwitd_store_unlock(d);
    store_vm_clear(&row);
    if (ret < 0)
        return ret;
    vm_dir_sync(d, name);
    vm_emit(d, "vm-stopped", name, json_pack("{s:b}", "discarded", 1));
    gw_log("vm %s: its saved state was discarded", name);
    return 0;
}

/* ---- resume ---- */

/* Set the guest's clock to the host's through the agent (QMP
 * x-godwit-agent-set-time); note gets what happened. */
static void vm_clock_set(struct godwitd *d, const char *name, char *note, size_t notelen)
{
    char qmp_path[PATH_MAX], why[256] = "";
    uint64_t deadline = gw_deadline_ns(CLOCK_RETRY_MS);
    struct qmp_client *c = NULL;
    json_t *def = vm_definition(d, name);
    bool agent = json_is_true(json_object_get(def, "agent"));
    int ret;

    json_decref(def);
    if (!agent) {
        snprintf(note, notelen, "guest clock not set: the VM has no guest agent");
        return;
    }
    vm_qmp_path(d, name, qmp_path, sizeof(qmp_path));
    ret = qmp_client_connect(qmp_path, SUSPEND_QMP_MS, &c, why, sizeof(why));
    while (ret == 0) {
        struct timespec now;
        json_t *r = NULL, *a;
        clock_gettime(CLOCK_REALTIME, &now);
        a = json_pack("{s:I,s:i}", "time",
                      (json_int_t)now.tv_sec * 1000000000 + (json_int_t)now.tv_nsec, "timeout",
                      CLOCK_TIMEOUT_MS);
        ret = qmp_client_execute(c, "x-godwit-agent-set-time", a, CLOCK_TIMEOUT_MS + 2000, &r, why,
                                 sizeof(why));
        json_decref(a);
        if (ret == 0) {
            snprintf(note, notelen, "guest clock set (%lld ms)",
                     (long long)json_integer_value(json_object_get(r, "ms")));
            json_decref(r);
            qmp_client_free(c);
            return;
        }
        if (ret == -EREMOTEIO && !strcmp(qmp_client_error_class(c), "CommandNotFound")) {
            snprintf(why, sizeof(why), "this godwit-vm cannot set the guest clock");
            break;
        }
        /* the guest's agent may not have its port open yet: retry */
        if (ret != -EREMOTEIO || !strstr(why, "not connected") ||
            gw_deadline_left_ms(deadline) == 0)
            break;
        usleep(500000);
    }
    qmp_client_free(c);
    snprintf(note, notelen, "guest clock not set: %.200s", why[0] ? why : "no answer");
}

/* state_check over the whole file: 0, or -errno with the checker's reason. */
static int vm_state_check(const char *path, char *why, size_t len)
{
    struct state_report *r = calloc(1, sizeof(*r));
    int fd, ret;

    if (!r)
        return gw_fail(why, len, -ENOMEM, "out of memory");
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ret = gw_fail(why, len, -errno, "%s: %s", path, strerror(errno));
    } else {
        ret = state_check(fd, r);
        if (ret < 0)
            gw_fail(why, len, ret, "%s", r->error);
        close(fd);
    }
    free(r->config);
    free(r);
    return ret;
}

int vm_resume(struct godwitd *d, const char *name, char *note, size_t notelen, char *err,
              size_t errlen)
{
    char state_path[PATH_MAX], qmp_path[PATH_MAX], arg[PATH_MAX + 8], why[768] = "", clock[256];
    const char *extra[] = {"-incoming", arg, "-S", NULL};
    struct qmp_client *c = NULL;
    struct store_vm row;
    uint64_t size = 0;
    pid_t pid = 0;
    int ret, timeout_ms;

    if (note && notelen)
        note[0] = '\0';
    if (!api_name_valid(name))
        return gw_fail(err, errlen, -EINVAL, "invalid VM name");
    if (vm_path(d, name, VM_FILE_STATE, state_path, sizeof(state_path)) < 0 ||
        vm_qmp_path(d, name, qmp_path, sizeof(qmp_path)) < 0)
        return gw_fail(err, errlen, -ENAMETOOLONG, "the VM's folder path is too long");
    ret = vm_row(d, name, &row);
    if (ret < 0)
        return gw_fail(err, errlen, ret, ret == -ENOENT ? "no VM '%s'" : "VM '%s': store error",
                       name);
    ret = strcmp(row.state, "suspended")
              ? gw_fail(err, errlen, -EBUSY, "VM '%s' is %s, not suspended", name, row.state)
              : 0;
    store_vm_clear(&row);
    if (ret < 0)
        return ret;
    if (vm_state_info(d, name, &size, NULL) < 0)
        return gw_fail(err, errlen, -EIO,
                       "VM '%s' is suspended but its saved state %s is missing: discard it with "
                       "godwit vm stop --force",
                       name, state_path);
    /* the whole file through the state checker first: a damaged one is
     * refused with its reason before a process starts */
    ret = vm_state_check(state_path, why, sizeof(why));
    if (ret < 0)
        return gw_fail(err, errlen, -EIO,
                       "VM '%s': its saved state is not valid (%s); it stays suspended with its "
                       "state file",
                       name, why);
    /* the state loads before QMP answers: give a big one time */
    timeout_ms = VM_SPAWN_MS + (int)(size / (RESUME_LOAD_RATE / 1000));
    snprintf(arg, sizeof(arg), "file:%s", state_path);
    ret = vm_spawn_ex(d, name, extra, "running", true, timeout_ms, why, sizeof(why));
    if (ret == -EBUSY || ret == -ENOSPC || ret == -ENODEV)
        return gw_fail(err, errlen, ret, "%s", why);
    if (ret < 0) {
        gw_log("vm %s: resume failed: %s", name, why);
        return gw_fail(err, errlen, -EIO,
                       "VM '%s': its saved state did not load: %s; it stays suspended with "
                       "its state file",
                       name, why);
    }
    /* loaded and paused (-S): run it; if it cannot, it stays suspended */
    sup_exit_as(d, name, "suspended");
    ret = qmp_client_connect(qmp_path, SUSPEND_QMP_MS, &c, why, sizeof(why));
    if (ret == 0)
        ret = qmp_client_execute(c, "cont", NULL, SUSPEND_QMP_MS, NULL, why, sizeof(why));
    qmp_client_free(c);
    if (ret < 0) {
        char e2[256];
        if (vm_kill(d, name, SUSPEND_QUIT_MS, e2, sizeof(e2)) < 0)
            gw_log("vm %s: %s", name, e2);
        return gw_fail(err, errlen, -EIO,
                       "VM '%s': loaded, but it does not run: %s; it stays "
                       "suspended",
                       name, why);
    }
    sup_exit_as(d, name, NULL);
    sup_watching(d, name, &pid);
    if (unlink(state_path) < 0)
        gw_log("vm %s: %s: %s", name, state_path, strerror(errno));
    vm_dir_sync(d, name);
    vm_clock_set(d, name, clock, sizeof(clock));
    if (note)
        snprintf(note, notelen, "%s", clock);
    vm_emit(d, "vm-resumed", name,
            json_pack("{s:I,s:I,s:s}", "pid", (json_int_t)pid, "size", (json_int_t)size, "clock",
                      clock));
    gw_log("vm %s: resumed, pid %d; %s", name, (int)pid, clock);
    return 0;
}
