/*
 * /1.0/vms: create, list, show, start, stop, kill, suspend, resume, delete
 * a VM, and read its console log (docs/godwitd.md "VMs"); the module's start (reattach to
 * running VMs) and stop.  Definitions are vm_def.c's, processes
 * vm_run.c's and supervise.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "godwitd/vms_int.h"
#include "qmp/qmp_client.h"

#define VM_STOP_TIMEOUT 60 /* s: vm stop waits this long by default */

/* ---- small helpers ---- */

static const char *vm_name_param(struct api_request *req, struct api_reply *rep)
{
    const char *name = api_param(req, "name");

    if (!api_name_valid(name)) {
        api_reply_error(rep, 400,
                        "invalid VM name: 1-63 characters of a-z, 0-9 and '-', starting with a "
                        "letter");
        return NULL;
    }
    return name;
}

bool vm_state_active(const char *state)
{
    static const char *const active[] = {"starting", "running", "stopping", "incoming",
                                         "migrating"};

    for (size_t i = 0; i < GW_ARRAY_SIZE(active); i++)
        if (!strcmp(state, active[i]))
            return true;
    return false;
}

int vm_row(struct godwitd *d, const char *name, struct store_vm *row)
{
    int ret;

    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, row);
    godwitd_store_unlock(d);
    return ret;
}

bool vm_job_locked(struct godwitd *d, const char *name, int64_t *id)
{
    struct store_job *jobs = NULL;
    size_t n = 0;
    bool found = false;

    if (store_job_list(d->store, true, &jobs, &n) < 0)
        return false;
    for (size_t i = 0; i < n && !found; i++)
        if (!strcmp(jobs[i].vm, name)) {
            found = true;
            if (id)
                *id = jobs[i].id;
        }
    store_job_list_free(jobs, n);
    return found;
}

void vm_emit(struct godwitd *d, const char *type, const char *name, json_t *data)
{
    char subject[STORE_WHO_MAX];

    snprintf(subject, sizeof(subject), "vm/%s", name);
    godwitd_event(d, type, subject, data ? data : json_object());
}

int vm_qmp_path(const struct godwitd *d, const char *name, char *out, size_t len)
{
    return vm_path(d, name, VM_FILE_QMP, out, len);
}

/* ---- the VM object ---- */

static json_t *vm_object(struct godwitd *d, const struct store_vm *row)
{
    json_t *def = row->config ? json_loads(row->config, 0, NULL) : NULL;
    json_t *o, *disks = json_array(), *nics = json_array(), *v;
    char path[PATH_MAX];
    size_t i;

    if (!def)
        def = vm_definition(d, row->name);
    o = json_pack("{s:s,s:s,s:s,s:I,s:i,s:I,s:s,s:I,s:I,s:i}", "name", row->name, "uuid", row->uuid,
                  "state", row->state, "memory", (json_int_t)row->memory, "cpus", (int)row->cpus,
                  "pid", (json_int_t)row->pid, "host", d->name, "created",
                  (json_int_t)row->created_ms, "updated", (json_int_t)row->updated_ms,
                  "exit_status", row->exit_status);
    if (!o) {
        json_decref(def);
        json_decref(disks);
        json_decref(nics);
        return NULL;
    }
    if (row->exit_status >= 0 && WIFEXITED(row->exit_status))
        json_object_set_new(o, "exit_code", json_integer(WEXITSTATUS(row->exit_status)));
    if (row->exit_status >= 0 && WIFSIGNALED(row->exit_status))
        json_object_set_new(o, "exit_signal", json_integer(WTERMSIG(row->exit_status)));
    godwitd_vm_dir(d, row->name, path, sizeof(path));
    json_object_set_new(o, "dir", json_string(path));
    vm_path(d, row->name, VM_FILE_RELAY, path, sizeof(path));
    json_object_set_new(o, "console_socket", json_string(path));
    vm_path(d, row->name, VM_FILE_LOG, path, sizeof(path));
    json_object_set_new(o, "console_log", json_string(path));
    vm_path(d, row->name, VM_FILE_QMP, path, sizeof(path));
    json_object_set_new(o, "qmp_socket", json_string(path));
    static const char *const copy[] = {"firmware", "kernel", "initrd", "append", "agent", "labels"};
    for (i = 0; i < GW_ARRAY_SIZE(copy); i++) {
        json_t *x = json_object_get(def, copy[i]);
        json_object_set(o, copy[i], x ? x : json_null());
    }
    json_array_foreach(json_object_get(def, "disks"), i, v)
    {
        const char *file = json_string_value(json_object_get(v, "file"));
        const char *p = json_string_value(json_object_get(v, "path"));
        struct stat st;
        if (file) {
            vm_path(d, row->name, file, path, sizeof(path));
            p = path;
        }
        if (!p)
            continue;
        bool ok = stat(p, &st) == 0;
        json_array_append_new(disks, json_pack("{s:s,s:I,s:I,s:b}", "path", p, "size",
                                               (json_int_t)(ok ? st.st_size : 0), "allocated",
                                               (json_int_t)(ok ? st.st_blocks * 512 : 0), "shared",
                                               file == NULL));
    }
    json_array_foreach(json_object_get(def, "nics"), i, v)
    {
        json_t *n = json_deep_copy(v);
        if (n && !strcmp(json_string_value(json_object_get(v, "type")) ?: "", "bridge")) {
            char tap[VM_TAP_NAME];
            vm_tap_name(row->uuid, (unsigned)i, tap);
            json_object_set_new(n, "tap", json_string(tap));
        }
        json_array_append_new(nics, n);
    }
    json_object_set_new(o, "disks", disks);
    json_object_set_new(o, "nics", nics);
    json_decref(def);
    {
        uint64_t size;
        int64_t saved;
        if (!strcmp(row->state, "suspended") && vm_state_info(d, row->name, &size, &saved) == 0)
            json_object_set_new(o, "suspended",
                                json_pack("{s:s,s:I,s:I}", "file", VM_FILE_STATE, "size",
                                          (json_int_t)size, "saved", (json_int_t)saved));
    }
    return o;
}

/* ---- handlers ---- */

static int vm_status_of(int ret)
{
    switch (ret) {
    case -ENOENT: return 404;
    case -EEXIST:
    case -EBUSY:
    case -ENOSPC:
    case -ENODEV:
    case -ESRCH:
    case -ETIMEDOUT: return 409;
    case -ECANCELED: return 503;
    case -EINVAL:
    case -ENAMETOOLONG: return 400;
    default: return 500;
    }
}

static void vms_create(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    char err[512];
    json_t *copies = json_array(), *def;
    struct store_vm row;
    int ret;

    def = vm_def_build(req->body, false, copies, err, sizeof(err));
    if (!def) {
        json_decref(copies);
        api_reply_error(rep, 400, "%s", err);
        return;
    }
    ret = vm_materialise(d, def, copies, err, sizeof(err));
    json_decref(copies);
    if (ret < 0) {
        json_decref(def);
        api_reply_error(rep, vm_status_of(ret), "%s", err);
        return;
    }
    const char *name = json_string_value(json_object_get(def, "name"));
    vm_emit(d, "vm-created", name, NULL);
    if (vm_row(d, name, &row) == 0) {
        api_reply_json(rep, 201, vm_object(d, &row));
        store_vm_clear(&row);
    } else {
        api_reply_error(rep, 500, "VM '%s' vanished", name);
    }
    json_decref(def);
}

static void vms_list(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    struct store_vm *v = NULL;
    size_t n = 0;
    json_t *arr;

    godwitd_store_lock(d);
    int ret = store_vm_list(d->store, &v, &n);
    godwitd_store_unlock(d);
    if (ret < 0) {
        api_reply_error(rep, 500, "the registry cannot be read");
        return;
    }
    arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, vm_object(d, &v[i]));
    store_vm_list_free(v, n);
    api_reply_json(rep, 200, json_pack("{s:o}", "vms", arr));
}

static void vms_show(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = vm_name_param(req, rep);
    struct store_vm row;

    if (!name)
        return;
    if (vm_row(d, name, &row) < 0) {
        api_reply_error(rep, 404, "no VM '%s'", name);
        return;
    }
    api_reply_json(rep, 200, vm_object(d, &row));
    store_vm_clear(&row);
}

static void vm_reply_object(struct godwitd *d, const char *name, struct api_reply *rep)
{
    struct store_vm row;

    if (vm_row(d, name, &row) < 0) {
        api_reply_json(rep, 200, json_object());
        return;
    }
    api_reply_json(rep, 200, vm_object(d, &row));
    store_vm_clear(&row);
}

/* Refuse (409) a VM with an unfinished job: true when refused. */
static bool vm_refuse_job(struct godwitd *d, const char *name, struct api_reply *rep)
{
    int64_t id = 0;
    bool busy;

    godwitd_store_lock(d);
    busy = vm_job_locked(d, name, &id);
    godwitd_store_unlock(d);
    if (busy)
        api_reply_error(rep, 409, "VM '%s' has a job running (%lld): wait for it or cancel it",
                        name, (long long)id);
    return busy;
}

/* Resume a suspended VM; the reply is the VM object with "clock": what
 * happened to the guest's clock. */
static void vm_resume_reply(struct godwitd *d, const char *name, struct api_reply *rep)
{
    char err[1024], note[256];
    struct store_vm row;
    int ret;

    if (vm_refuse_job(d, name, rep))
        return;
    ret = vm_resume(d, name, note, sizeof(note), err, sizeof(err));
    if (ret < 0) {
        api_reply_error(rep, ret == -EIO ? 500 : vm_status_of(ret), "%s", err);
        return;
    }
    if (vm_row(d, name, &row) < 0) {
        api_reply_json(rep, 200, json_pack("{s:s}", "clock", note));
        return;
    }
    json_t *o = vm_object(d, &row);
    json_object_set_new(o, "resumed", json_true());
    json_object_set_new(o, "clock", json_string(note));
    api_reply_json(rep, 200, o);
    store_vm_clear(&row);
}

static void vms_suspend(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = vm_name_param(req, rep);
    char err[1024];
    int ret;

    if (!name || vm_refuse_job(d, name, rep))
        return;
    ret = vm_suspend(d, name, err, sizeof(err));
    if (ret < 0) {
        api_reply_error(rep, ret == -EIO ? 500 : vm_status_of(ret), "%s", err);
        return;
    }
    vm_reply_object(d, name, rep);
}

static void vms_resume(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = vm_name_param(req, rep);

    if (name)
        vm_resume_reply(d, name, rep);
}

/* A suspended VM's row (true), for start, stop and kill. */
static bool vm_is_suspended(struct godwitd *d, const char *name)
{
    struct store_vm row;
    bool s;

    if (vm_row(d, name, &row) < 0)
        return false;
    s = !strcmp(row.state, "suspended");
    store_vm_clear(&row);
    return s;
}

static void vms_start(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = vm_name_param(req, rep);
    char err[512];
    int ret;

    if (!name)
        return;
    /* as libvirt's managed save: starting a suspended VM resumes it */
    if (vm_is_suspended(d, name)) {
        vm_resume_reply(d, name, rep);
        return;
    }
    ret = vm_spawn(d, name, NULL, "running", err, sizeof(err));
    if (ret < 0) {
        api_reply_error(rep, vm_status_of(ret), "%s", err);
        return;
    }
    vm_reply_object(d, name, rep);
}

static const struct api_field vm_stop_fields[] = {
    {"timeout", API_T_INT, false},
    {"force", API_T_BOOL, false},
    {NULL, 0, false},
};

void vm_set_state_if(struct godwitd *d, const char *name, pid_t pid, const char *state)
{
    struct store_vm row;

    godwitd_store_lock(d);
    if (store_vm_get(d->store, name, &row) == 0) {
        if (row.pid == pid && vm_state_active(row.state))
            store_vm_set_state(d->store, name, state, pid, row.exit_status);
        store_vm_clear(&row);
    }
    godwitd_store_unlock(d);
}

int vm_stop(struct godwitd *d, const char *name, int timeout_s, bool force, char *err,
            size_t errlen)
{
    char path[PATH_MAX];
    struct store_vm row;
    struct qmp_client *qmp = NULL;
    json_t *def;
    bool agent;
    pid_t pid;
    int ret;

    if (vm_row(d, name, &row) < 0)
        return gw_fail(err, errlen, -ENOENT, "no VM '%s'", name);
    if (strcmp(row.state, "running") || !sup_watching(d, name, &pid)) {
        ret = gw_fail(err, errlen, -EBUSY, "VM '%s' is %s, not running", name, row.state);
        store_vm_clear(&row);
        return ret;
    }
    store_vm_clear(&row);
    def = vm_definition(d, name);
    agent = json_is_true(json_object_get(def, "agent"));
    json_decref(def);
    if (!agent) {
        if (!force)
            return gw_fail(err, errlen, -ENODEV,
                           "VM '%s' has no guest agent, so it cannot be powered down gracefully; "
                           "use --force (or kill) to power it off",
                           name);
        return vm_kill(d, name, 10000, err, errlen);
    }
    sup_expect_exit(d, name, true);
    vm_set_state_if(d, name, pid, "stopping");
    vm_qmp_path(d, name, path, sizeof(path));
    ret = qmp_client_connect(path, 5000, &qmp, err, errlen);
    if (ret == 0)
        ret = qmp_client_execute(qmp, "system_powerdown", NULL, 5000, NULL, err, errlen);
    qmp_client_free(qmp);
    if (ret == 0)
        ret = sup_wait_exit(d, name, pid, timeout_s * 1000);
    if (ret == 0)
        return 0;
    if (force)
        return vm_kill(d, name, 10000, err, errlen);
    if (ret == -ECANCELED)
        /* the daemon stops: the power-down goes on; a restarted daemon
         * records stopped if the process is gone by then */
        return gw_fail(err, errlen, -ECANCELED,
                       "godwitd is stopping; VM '%s' was asked to power down", name);
    sup_expect_exit(d, name, false);
    vm_set_state_if(d, name, pid, "running");
    if (ret == -ETIMEDOUT)
        return gw_fail(err, errlen, -ETIMEDOUT,
                       "VM '%s' did not power down within %d s and keeps running; use --force "
                       "to power it off after the timeout",
                       name, timeout_s);
    char e2[256];
    snprintf(e2, sizeof(e2), "%s", err);
    return gw_fail(err, errlen, -EIO, "VM '%s': power-down request failed: %s", name, e2);
}

static void vms_stop(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = vm_name_param(req, rep);
    char err[512];
    json_int_t timeout = VM_STOP_TIMEOUT;
    bool force = false;
    struct store_vm row;
    int ret;

    if (!name)
        return;
    if (req->body) {
        if (api_json_check(req->body, vm_stop_fields, err, sizeof(err)) < 0) {
            api_reply_error(rep, 400, "%s", err);
            return;
        }
        if (json_object_get(req->body, "timeout"))
            timeout = json_integer_value(json_object_get(req->body, "timeout"));
        force = json_is_true(json_object_get(req->body, "force"));
    }
    if (timeout < 0 || timeout > 3600) {
        api_reply_error(rep, 400, "field 'timeout': 0 to 3600 seconds");
        return;
    }
    if (vm_row(d, name, &row) < 0) {
        api_reply_error(rep, 404, "no VM '%s'", name);
        return;
    }
    if (!strcmp(row.state, "suspended")) {
        /* no process to power down: --force throws the saved state away */
        store_vm_clear(&row);
        if (!force) {
            api_reply_error(rep, 409,
                            "VM '%s' is suspended: resume it (godwit vm resume), or discard its "
                            "saved state with --force",
                            name);
            return;
        }
        ret = vm_suspend_discard(d, name, err, sizeof(err));
        if (ret < 0) {
            api_reply_error(rep, vm_status_of(ret), "%s", err);
        } else if (vm_row(d, name, &row) == 0) {
            json_t *o = vm_object(d, &row);
            json_object_set_new(o, "discarded", json_true());
            api_reply_json(rep, 200, o);
            store_vm_clear(&row);
        } else {
            api_reply_json(rep, 200, json_pack("{s:b}", "discarded", 1));
        }
        return;
    }
    store_vm_clear(&row);
    ret = vm_stop(d, name, (int)timeout, force, err, sizeof(err));
    if (ret == 0)
        vm_reply_object(d, name, rep);
    else if (ret == -ENOENT)
        api_reply_error(rep, 404, "%s", err);
    else if (ret == -EBUSY || ret == -ENODEV || ret == -ETIMEDOUT)
        api_reply_error(rep, 409, "%s", err);
    else if (ret == -ECANCELED)
        api_reply_error(rep, 503, "%s", err);
    else if (ret == -EIO)
        api_reply_error(rep, 500, "%s", err);
    else
        api_reply_error(rep, vm_status_of(ret), "%s", err);
}

static void vms_kill(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = vm_name_param(req, rep);
    char err[512];
    struct store_vm row;
    int ret;

    if (!name)
        return;
    if (vm_row(d, name, &row) < 0) {
        api_reply_error(rep, 404, "no VM '%s'", name);
        return;
    }
    if (!strcmp(row.state, "suspended")) {
        store_vm_clear(&row);
        api_reply_error(rep, 409,
                        "VM '%s' is suspended: it has no process to kill (its saved state is "
                        "kept; godwit vm stop --force discards it)",
                        name);
        return;
    }
    store_vm_clear(&row);
    ret = vm_kill(d, name, 10000, err, sizeof(err));
    if (ret < 0) {
        api_reply_error(rep, vm_status_of(ret), "%s", err);
        return;
    }
    vm_reply_object(d, name, rep);
}

static void vms_delete(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = vm_name_param(req, rep);
    char dir[PATH_MAX];
    struct store_vm row;
    int ret;

    if (!name)
        return;
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, &row);
    if (ret < 0) {
        godwitd_store_unlock(d);
        api_reply_error(rep, 404, "no VM '%s'", name);
        return;
    }
    int64_t job = 0;
    if (vm_job_locked(d, name, &job)) {
        /* e.g. a cold migration keeping this copy until confirm or revert */
        godwitd_store_unlock(d);
        api_reply_error(rep, 409, "VM '%s' (%s) has a job running (%lld): wait for it%s", name,
                        row.state, (long long)job,
                        strcmp(row.state, "migrated") ? " or cancel it"
                                                      : ", or end it with godwit job confirm or "
                                                        "godwit job revert");
        store_vm_clear(&row);
        return;
    }
    if (vm_state_active(row.state) || sup_watching(d, name, NULL)) {
        godwitd_store_unlock(d);
        api_reply_error(rep, 409, "VM '%s' is %s: stop it first", name, row.state);
        store_vm_clear(&row);
        return;
    }
    store_vm_clear(&row);
    ret = store_vm_delete(d->store, name);
    godwitd_store_unlock(d);
    if (ret < 0) {
        api_reply_error(rep, 500, "VM '%s': cannot delete its row", name);
        return;
    }
    if (godwitd_vm_dir(d, name, dir, sizeof(dir)) == 0 && vm_rmdir(dir) < 0)
        gw_log("vm %s: cannot remove %s: %s", name, dir, strerror(errno));
    vm_emit(d, "vm-deleted", name, NULL);
    api_reply_json(rep, 200, json_pack("{s:s}", "deleted", name));
}

/* The log as a JSON string: bytes that are not printable ASCII (or tab,
 * newline, CR, escape) become '?', so the text is always valid UTF-8. */
static void vms_console_log(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = vm_name_param(req, rep);
    char path[PATH_MAX];
    struct store_vm row;
    char *buf;
    ssize_t n;
    int fd;

    if (!name)
        return;
    if (vm_row(d, name, &row) < 0) {
        api_reply_error(rep, 404, "no VM '%s'", name);
        return;
    }
    store_vm_clear(&row);
    vm_path(d, name, VM_FILE_LOG, path, sizeof(path));
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        api_reply_json(rep, 200, json_pack("{s:s}", "log", ""));
        return;
    }
    buf = malloc(VM_LOG_MAX + VM_LOG_KEEP + 1);
    n = buf ? read(fd, buf, VM_LOG_MAX + VM_LOG_KEEP) : -1;
    close(fd);
    if (n < 0) {
        free(buf);
        api_reply_error(rep, 500, "%s: cannot read", path);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c >= 0x7f || (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != 0x1b))
            buf[i] = '?';
    }
    api_reply_json(rep, 200, json_pack("{s:s%}", "log", buf, (size_t)n));
    free(buf);
}

static const struct api_field vm_create_fields[] = {
    {"name", API_T_STRING, true},    {"memory", API_T_INT, true},
    {"cpus", API_T_INT, false},      {"firmware", API_T_STRING, false},
    {"kernel", API_T_STRING, false}, {"initrd", API_T_STRING, false},
    {"append", API_T_STRING, false}, {"disks", API_T_ARRAY, false},
    {"nics", API_T_ARRAY, false},    {"agent", API_T_BOOL, false},
    {"labels", API_T_OBJECT, false}, {NULL, 0, false},
};

const struct api_route vms_routes[] = {
    {"POST", "/1.0/vms", vms_create, vm_create_fields},
    {"GET", "/1.0/vms", vms_list, NULL},
    /* peers read a VM's state too: --after-vm NAME@PEER asks it */
    {"GET", "/1.0/vms/{name}", vms_show, NULL, API_ROUTE_PEER},
    {"DELETE", "/1.0/vms/{name}", vms_delete, NULL},
    {"POST", "/1.0/vms/{name}/start", vms_start, NULL},
    {"POST", "/1.0/vms/{name}/stop", vms_stop, NULL},
    {"POST", "/1.0/vms/{name}/kill", vms_kill, NULL},
    {"POST", "/1.0/vms/{name}/suspend", vms_suspend, NULL},
    {"POST", "/1.0/vms/{name}/resume", vms_resume, NULL},
    {"GET", "/1.0/vms/{name}/console-log", vms_console_log, NULL},
};
const size_t vms_nroutes = GW_ARRAY_SIZE(vms_routes);

/* ---- daemon start and stop ---- */

/* Is the process at pid the VM (QMP answers with its name and UUID)? */
static bool vm_identity_ok(struct godwitd *d, const struct store_vm *row)
{
    char path[PATH_MAX];
    struct qmp_client *qmp = NULL;
    json_t *r = NULL;
    bool ok = false;

    if (row->pid <= 0 || kill((pid_t)row->pid, 0) < 0 ||
        vm_qmp_path(d, row->name, path, sizeof(path)) < 0 ||
        qmp_client_connect(path, VM_REATTACH_MS, &qmp, NULL, 0) < 0)
        return false;
    if (qmp_client_execute(qmp, "query-name", NULL, VM_REATTACH_MS, &r, NULL, 0) == 0)
        ok = !strcmp(json_string_value(json_object_get(r, "name")) ?: "", row->name);
    json_decref(r);
    r = NULL;
    if (ok && qmp_client_execute(qmp, "query-uuid", NULL, VM_REATTACH_MS, &r, NULL, 0) == 0)
        ok = !strcasecmp(json_string_value(json_object_get(r, "UUID")) ?: "", row->uuid);
    else
        ok = false;
    json_decref(r);
    qmp_client_free(qmp);
    return ok;
}

int vms_init(struct godwitd *d, char *err, size_t errlen)
{
    struct store_vm *v = NULL;
    size_t n = 0;
    int ret = sup_init(d, err, errlen);

    if (ret < 0)
        return ret;
    godwitd_store_lock(d);
    ret = store_vm_list(d->store, &v, &n);
    godwitd_store_unlock(d);
    if (ret < 0) {
        sup_fini(d);
        return gw_fail(err, errlen, ret, "the registry cannot be read");
    }
    for (size_t i = 0; i < n; i++) {
        struct store_vm *r = &v[i];
        char why[256], taps[VM_NICS_MAX][VM_TAP_NAME];
        unsigned ntaps = 0;

        if (!vm_state_active(r->state))
            continue;
        if (vm_identity_ok(d, r)) {
            json_t *def = r->config ? json_loads(r->config, 0, NULL) : NULL;
            size_t k;
            json_t *nic;
            json_array_foreach(json_object_get(def, "nics"), k, nic)
            {
                if (json_object_get(nic, "bridge") && ntaps < VM_NICS_MAX)
                    vm_tap_name(r->uuid, (unsigned)k, taps[ntaps++]);
            }
            json_decref(def);
            if (sup_watch(d, r->name, (pid_t)r->pid, false, (const char(*)[VM_TAP_NAME])taps, ntaps,
                          why, sizeof(why)) == 0) {
                const char *state = !strcmp(r->state, "incoming") ? "incoming" : "running";
                godwitd_store_lock(d);
                store_vm_set_state(d->store, r->name, state, r->pid, r->exit_status);
                godwitd_store_unlock(d);
                gw_log("vm %s: reattached to pid %lld", r->name, (long long)r->pid);
                vm_emit(d, "vm-reattached", r->name, json_pack("{s:I}", "pid", (json_int_t)r->pid));
                continue;
            }
            gw_log("vm %s: cannot watch pid %lld: %s", r->name, (long long)r->pid, why);
            continue;
        }
        /* gone while the daemon was away: stopping -> stopped (or
         * suspended: a suspend saved its state file), else crashed */
        bool clean = !strcmp(r->state, "stopping");
        if (clean && vm_state_info(d, r->name, NULL, NULL) == 0) {
            godwitd_store_lock(d);
            store_vm_set_state(d->store, r->name, "suspended", 0, -1);
            godwitd_store_unlock(d);
            gw_log("vm %s: process %lld is gone after its state was saved: recorded suspended",
                   r->name, (long long)r->pid);
            vm_emit(d, "vm-suspended", r->name, json_pack("{s:s}", "file", VM_FILE_STATE));
            continue;
        }
        godwitd_store_lock(d);
        store_vm_set_state(d->store, r->name, clean ? "stopped" : "crashed", 0, -1);
        godwitd_store_unlock(d);
        gw_log("vm %s: process %lld is gone: recorded %s", r->name, (long long)r->pid,
               clean ? "stopped" : "crashed");
        vm_emit(d, clean ? "vm-stopped" : "vm-crashed", r->name,
                json_pack("{s:I,s:i}", "pid", (json_int_t)r->pid, "exit_status", -1));
    }
    store_vm_list_free(v, n);
    return 0;
}

void vms_fini(struct godwitd *d)
{
    sup_fini(d); /* the VMs keep running */
}
