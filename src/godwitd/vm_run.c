/*
 * Running a VM (vms.h): its godwit-vm command line from the definition,
 * the child started in its own session, the wait for its QMP socket, the
 * TAPs of bridged NICs, the memory budget; kill and forget.  The watching
 * afterwards is supervise.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "godwitd/migrate.h"
#include "godwitd/vms_int.h"
#include "qmp/qmp_client.h"

extern char **environ;

/* ---- starting ---- */

static uint64_t vm_memory_budget(struct godwitd *d)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

    if (d->memory_budget)
        return d->memory_budget;
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
}

/* Sum under the store lock (held by the caller). */
static uint64_t vm_memory_locked(struct godwitd *d, const char *except)
{
    struct store_vm *v = NULL;
    size_t n = 0;
    uint64_t sum = 0;

    if (store_vm_list(d->store, &v, &n) < 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (vm_state_active(v[i].state) && (!except || strcmp(v[i].name, except)))
            sum += v[i].memory;
    store_vm_list_free(v, n);
    return sum;
}

uint64_t vm_memory_in_use(struct godwitd *d)
{
    uint64_t sum;

    godwitd_store_lock(d);
    sum = vm_memory_locked(d, NULL);
    godwitd_store_unlock(d);
    return sum;
}

struct vm_argv {
    char *v[128];
    unsigned n;
    bool oom;
};

static void vm_arg(struct vm_argv *a, const char *fmt, ...) gw_printf(2, 3);

static void vm_arg(struct vm_argv *a, const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    if (a->n + 1 >= GW_ARRAY_SIZE(a->v)) {
        a->oom = true;
        return;
    }
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s)
        a->oom = true;
    else
        a->v[a->n++] = s;
}

static void vm_argv_free(struct vm_argv *a)
{
    for (unsigned i = 0; i < a->n; i++)
        free(a->v[i]);
}

/* godwit-vm's command line for a definition (docs/godwitd.md "VMs"). */
static int vm_build_argv(struct godwitd *d, const json_t *def, const char *const *extra,
                         bool paused, struct vm_argv *a, char (*taps)[VM_TAP_NAME],
                         const char (*bridges)[VM_TAP_NAME], unsigned *ntaps)
{
    const char *name = json_string_value(json_object_get(def, "name"));
    const char *uuid = json_string_value(json_object_get(def, "uuid"));
    const char *fw = json_string_value(json_object_get(def, "firmware"));
    const char *kernel = json_string_value(json_object_get(def, "kernel"));
    const char *initrd = json_string_value(json_object_get(def, "initrd"));
    const char *append = json_string_value(json_object_get(def, "append"));
    char path[PATH_MAX];
    size_t i;
    json_t *v;

    (void)bridges;
    vm_arg(a, "%s", d->vm_binary);
    vm_arg(a, "-M");
    vm_arg(a, "virt");
    vm_arg(a, "-name");
    vm_arg(a, "%s", name);
    vm_arg(a, "-uuid");
    vm_arg(a, "%s", uuid);
    vm_arg(a, "-m");
    vm_arg(a, "%lldM", (long long)(json_integer_value(json_object_get(def, "memory")) >> 20));
    vm_arg(a, "-smp");
    vm_arg(a, "%lld", (long long)json_integer_value(json_object_get(def, "cpus")));
    vm_arg(a, "-nographic");
    vm_arg(a, "-monitor");
    vm_arg(a, "none");
    vm_arg(a, "-bios");
    if (!fw || !strcmp(fw, "default") || !strcmp(fw, "none")) {
        vm_arg(a, "%s", fw ? fw : "default");
    } else {
        vm_path(d, name, fw, path, sizeof(path));
        vm_arg(a, "%s", path);
    }
    if (kernel) {
        vm_path(d, name, kernel, path, sizeof(path));
        vm_arg(a, "-kernel");
        vm_arg(a, "%s", path);
    }
    if (initrd) {
        vm_path(d, name, initrd, path, sizeof(path));
        vm_arg(a, "-initrd");
        vm_arg(a, "%s", path);
    }
    if (append) {
        vm_arg(a, "-append");
        vm_arg(a, "%s", append);
    }
    vm_path(d, name, VM_FILE_QMP, path, sizeof(path));
    vm_arg(a, "-qmp");
    vm_arg(a, "unix:%s,server=on,wait=off", path);
    vm_path(d, name, VM_FILE_CONSOLE, path, sizeof(path));
    vm_arg(a, "-serial");
    vm_arg(a, "unix:%s,server=on,wait=off", path);
    json_array_foreach(json_object_get(def, "disks"), i, v)
    {
        const char *file = json_string_value(json_object_get(v, "file"));
        const char *p = json_string_value(json_object_get(v, "path"));
        if (file) {
            vm_path(d, name, file, path, sizeof(path));
            p = path;
        }
        vm_arg(a, "-drive");
        vm_arg(a, "file=%s,format=raw,if=none,id=disk%zu", p, i);
        vm_arg(a, "-device");
        vm_arg(a, "virtio-blk-device,drive=disk%zu", i);
    }
    *ntaps = 0;
    json_array_foreach(json_object_get(def, "nics"), i, v)
    {
        const char *type = json_string_value(json_object_get(v, "type"));
        const char *mac = json_string_value(json_object_get(v, "mac"));
        vm_arg(a, "-netdev");
        if (!strcmp(type, "bridge")) {
            vm_tap_name(uuid, (unsigned)i, taps[*ntaps]);
            vm_arg(a, "tap,id=net%zu,ifname=%s,script=no,downscript=no", i, taps[*ntaps]);
            (*ntaps)++;
        } else {
            char fwd[VM_HOSTFWD_MAX * 140] = "";
            size_t j, off = 0;
            json_t *r;
            json_array_foreach(json_object_get(v, "hostfwd"), j, r)
            {
                int k = snprintf(fwd + off, sizeof(fwd) - off, ",hostfwd=%s", json_string_value(r));
                if (k > 0 && (size_t)k < sizeof(fwd) - off)
                    off += (size_t)k;
            }
            vm_arg(a, "user,id=net%zu%s", i, fwd);
        }
        vm_arg(a, "-device");
        vm_arg(a, "virtio-net-device,netdev=net%zu,mac=%s", i, mac);
    }
    if (json_is_true(json_object_get(def, "agent"))) {
        vm_arg(a, "-device");
        vm_arg(a, "virtio-serial-device");
        vm_arg(a, "-device");
        vm_arg(a, "virtserialport,name=org.godwit.agent.0");
    }
    /* every VM can migrate out: its client TLS-PSK object names a key file
     * that exists only while a migration job runs (migrate.c) */
    if (migrate_tls_object(d, name, false, path, sizeof(path)) == 0) {
        vm_arg(a, "-object");
        vm_arg(a, "%s", path);
    }
    if (paused)
        vm_arg(a, "-S");
    for (i = 0; extra && extra[i]; i++)
        vm_arg(a, "%s", extra[i]);
    a->v[a->n] = NULL;
    return a->oom ? -ENOMEM : 0;
}

/* The last non-empty line of vm.log: why a child died at start. */
static void vm_log_tail(struct godwitd *d, const char *name, char *out, size_t len)
{
    char path[PATH_MAX], buf[1024];
    ssize_t n = 0;
    int fd;

    out[0] = '\0';
    if (vm_path(d, name, VM_FILE_VMLOG, path, sizeof(path)) < 0)
        return;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    if (end > 0)
        n = pread(fd, buf, sizeof(buf) - 1,
                  end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    char *line = strrchr(buf, '\n');
    snprintf(out, len, "%.400s", line ? line + 1 : buf);
}

/* Start the child: setsid, stdin /dev/null, stdout and stderr to vm.log. */
static int vm_exec(struct godwitd *d, const char *name, char *const *argv, pid_t *pid, char *err,
                   size_t errlen)
{
    char logp[PATH_MAX];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    struct stat st;
    int ret, oflags = O_WRONLY | O_CREAT | O_APPEND;

    if (vm_path(d, name, VM_FILE_VMLOG, logp, sizeof(logp)) < 0)
        return gw_fail(err, errlen, -ENAMETOOLONG, "the VM's folder path is too long");
    if (stat(logp, &st) == 0 && st.st_size > (off_t)VM_VMLOG_MAX)
        oflags |= O_TRUNC; /* bounded: cut at start when it grew too big */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, logp, oflags, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    /* nothing of the daemon's leaks into a process that outlives it */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    ret = posix_spawn(pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (ret)
        return gw_fail(err, errlen, -ret, "cannot run %s: %s", argv[0], strerror(ret));
    return 0;
}

int vm_spawn(struct godwitd *d, const char *name, const char *const *extra, const char *state,
             char *err, size_t errlen)
{
    return vm_spawn_ex(d, name, extra, state, false, VM_SPAWN_MS, err, errlen);
}

int vm_spawn_ex(struct godwitd *d, const char *name, const char *const *extra, const char *state,
                bool resume, int timeout_ms, char *err, size_t errlen)
{
    struct store_vm row;
    char prev[STORE_WORD_MAX], qmp_path[PATH_MAX], taps[VM_NICS_MAX][VM_TAP_NAME];
    char bridges[VM_NICS_MAX][VM_TAP_NAME];
    struct vm_argv a = {.n = 0};
    struct qmp_client *qmp = NULL;
    json_t *def = NULL;
    unsigned ntaps = 0, ntaps_made = 0;
    bool paused = !extra || !extra[0];
    pid_t pid = 0;
    int ret, status;
    uint64_t budget, used;

    if (!api_name_valid(name))
        return gw_fail(err, errlen, -EINVAL, "invalid VM name");
    if (!state || (strcmp(state, "running") && strcmp(state, "incoming")))
        return gw_fail(err, errlen, -EINVAL, "vm_spawn: state must be running or incoming");
    /* check and claim: defined/stopped/crashed -> starting, atomically */
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, &row);
    if (ret < 0) {
        godwitd_store_unlock(d);
        return gw_fail(err, errlen, ret, ret == -ENOENT ? "no VM '%s'" : "VM '%s': store error",
                       name);
    }
    /* a migration's destination defines the VM as "incoming" (so nobody
     * starts it meanwhile) and spawns it once its files arrived */
    bool arriving = !strcmp(state, "incoming") && !strcmp(row.state, "incoming") && row.pid == 0 &&
                    !sup_watching(d, name, NULL);
    if (vm_state_active(row.state) && !arriving) {
        ret = gw_fail(err, errlen, -EBUSY, "VM '%s' is %s", name, row.state);
        goto out_unlock;
    }
    if (!strcmp(row.state, "migrated")) {
        ret = gw_fail(err, errlen, -EBUSY, "VM '%s' has migrated away", name);
        goto out_unlock;
    }
    /* a suspended VM starts only from its saved state (vm_resume) */
    if (resume != !strcmp(row.state, "suspended")) {
        ret = resume ? gw_fail(err, errlen, -EBUSY, "VM '%s' is %s, not suspended", name, row.state)
                     : gw_fail(err, errlen, -EBUSY,
                               "VM '%s' is suspended: resume it (godwit vm resume) or discard "
                               "its saved state (godwit vm stop --force)",
                               name);
        goto out_unlock;
    }
    budget = vm_memory_budget(d);
    used = vm_memory_locked(d, name);
    if (used + row.memory > budget) {
        ret = gw_fail(err, errlen, -ENOSPC,
                      "not enough memory: VM '%s' needs %llu MiB, %llu MiB of the budget of "
                      "%llu MiB are in use",
                      name, (unsigned long long)(row.memory >> 20),
                      (unsigned long long)(used >> 20), (unsigned long long)(budget >> 20));
        goto out_unlock;
    }
    snprintf(prev, sizeof(prev), "%s", row.state);
    ret = store_vm_set_state(d->store, name, "starting", 0, row.exit_status);
    if (ret < 0) {
        ret = gw_fail(err, errlen, ret, "%s", store_errmsg(d->store));
        goto out_unlock;
    }
    godwitd_store_unlock(d);

    def = row.config ? json_loads(row.config, 0, NULL) : vm_definition(d, name);
    if (!def) {
        ret = gw_fail(err, errlen, -EIO, "VM '%s': its definition cannot be read", name);
        goto out_revert;
    }
    ret =
        vm_build_argv(d, def, extra, paused, &a, taps, (const char(*)[VM_TAP_NAME])bridges, &ntaps);
    if (ret < 0) {
        ret = gw_fail(err, errlen, ret, "out of memory");
        goto out_revert;
    }
    {
        size_t i, k = 0;
        json_t *v;
        json_array_foreach(json_object_get(def, "nics"), i, v)
        {
            const char *br = json_string_value(json_object_get(v, "bridge"));
            if (!br)
                continue;
            sup_tap_delete(taps[k]); /* a leftover of a crash */
            ret = sup_tap_create(taps[k], br, err, errlen);
            if (ret < 0)
                goto out_revert;
            ntaps_made = (unsigned)++k;
        }
    }
    vm_qmp_path(d, name, qmp_path, sizeof(qmp_path));
    ret = vm_exec(d, name, a.v, &pid, err, errlen);
    if (ret < 0)
        goto out_revert;
    /* wait for QMP, or the child's death */
    {
        uint64_t deadline = gw_deadline_ns(timeout_ms);
        for (;;) {
            char why[512]; /* a loader's reason after a long path */
            if (waitpid(pid, &status, WNOHANG) == pid) {
                vm_log_tail(d, name, why, sizeof(why));
                pid = 0;
                ret = gw_fail(err, errlen, -EIO, "godwit-vm exited at start (status %d): %s",
                              WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                              why[0] ? why : "no message");
                goto out_revert;
            }
            if (access(qmp_path, F_OK) == 0 &&
                qmp_client_connect(qmp_path, 1000, &qmp, NULL, 0) == 0)
                break;
            if (gw_deadline_left_ms(deadline) == 0) {
                ret = gw_fail(err, errlen, -ETIMEDOUT,
                              "godwit-vm did not answer on its QMP socket within %d s",
                              timeout_ms / 1000);
                goto out_revert;
            }
            usleep(20000);
        }
    }
    /* the row names the process before the supervisor may see it end */
    {
        struct store_vm cur;
        godwitd_store_lock(d);
        if (store_vm_get(d->store, name, &cur) == 0) {
            snprintf(cur.state, sizeof(cur.state), "%s", state);
            cur.pid = pid;
            if (strlen(qmp_path) < sizeof(cur.qmp_path))
                memcpy(cur.qmp_path, qmp_path, strlen(qmp_path) + 1);
            vm_path(d, name, VM_FILE_CONSOLE, cur.console_path, sizeof(cur.console_path));
            if (store_vm_put(d->store, &cur) < 0)
                gw_log("vm %s: %s", name, store_errmsg(d->store));
            store_vm_clear(&cur);
        }
        godwitd_store_unlock(d);
    }
    ret = sup_watch(d, name, pid, true, (const char(*)[VM_TAP_NAME])taps, ntaps_made, err, errlen);
    if (ret < 0)
        goto out_revert;
    ntaps_made = 0; /* the watch deletes them from now on */
    if (paused) {
        /* the console is connected: now the first byte of output is kept */
        char why[256];
        if (qmp_client_execute(qmp, "cont", NULL, 5000, NULL, why, sizeof(why)) < 0)
            gw_log("vm %s: cont: %s", name, why);
    }
    qmp_client_free(qmp);
    vm_argv_free(&a);
    json_decref(def);
    store_vm_clear(&row);
    vm_emit(d, "vm-started", name, json_pack("{s:I,s:s}", "pid", (json_int_t)pid, "state", state));
    gw_log("vm %s: started, pid %d", name, (int)pid);
    return 0;

out_unlock:
    godwitd_store_unlock(d);
    store_vm_clear(&row);
    return ret;
out_revert:
    qmp_client_free(qmp);
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    for (unsigned i = 0; i < ntaps_made; i++)
        sup_tap_delete(taps[i]);
    vm_argv_free(&a);
    json_decref(def);
    godwitd_store_lock(d);
    if (store_vm_set_state(d->store, name, prev, 0, row.exit_status) < 0)
        gw_log("vm %s: %s", name, store_errmsg(d->store));
    godwitd_store_unlock(d);
    store_vm_clear(&row);
    return ret;
}

/* ---- stopping ---- */

int vm_kill(struct godwitd *d, const char *name, int timeout_ms, char *err, size_t errlen)
{
    pid_t pid;

    if (!sup_watching(d, name, &pid))
        return gw_fail(err, errlen, -ESRCH, "VM '%s' is not running", name);
    sup_expect_exit(d, name, true);
    if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
        return gw_fail(err, errlen, -errno, "kill %d: %s", (int)pid, strerror(errno));
    if (sup_wait_exit(d, name, pid, timeout_ms) < 0)
        return gw_fail(err, errlen, -ETIMEDOUT, "VM '%s' (pid %d) did not end within %d ms", name,
                       (int)pid, timeout_ms);
    return 0;
}

int vm_forget(struct godwitd *d, const char *name, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    int ret;

    sup_forget(d, name);
    godwitd_store_lock(d);
    ret = store_vm_delete(d->store, name);
    godwitd_store_unlock(d);
    if (ret < 0 && ret != -ENOENT)
        return gw_fail(err, errlen, ret, "VM '%s': %s", name, store_errmsg(d->store));
    if (godwitd_vm_dir(d, name, dir, sizeof(dir)) == 0)
        vm_rmdir(dir);
    vm_emit(d, "vm-forgotten", name, NULL);
    return 0;
}
