/*
 * Whether a VM may come to this host (migrate_int.h): the build, the
 * name, memory, the incoming limit, shared storage and disk space for
 * the disks that travel (cold and suspended send them as files, live
 * streams them).  Used by the precheck and again when the incoming is created.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "godwitd/migrate.h"
#include "godwitd/migrate_int.h"
#include "godwitd/vms.h"

/* The build check: live needs the same godwit-vm build and stream format;
 * suspended the same state format (the file must load here); cold only a
 * godwit-vm that runs. */
static unsigned in_check_build(struct godwitd *d, const json_t *compat, const char *mode, char *msg,
                               size_t len)
{
    json_t *mine = migrate_compat(d);
    const char *build = json_string_value(json_object_get(mine, "vm-build"));
    bool ok;

    if (!strcmp(mode, "live"))
        ok = json_equal(mine, compat);
    else if (!strcmp(mode, "suspended"))
        ok = json_equal(json_object_get(mine, "format"), json_object_get(compat, "format"));
    else
        ok = true;
    if (ok && (!build || !strcmp(build, "unknown"))) {
        snprintf(msg, len, "host %s cannot run its godwit-vm (%s)", d->name, d->vm_binary);
        json_decref(mine);
        return 409;
    }
    if (!ok) {
        char *a = json_dumps(mine, JSON_COMPACT | JSON_SORT_KEYS);
        char *b = json_dumps(compat, JSON_COMPACT | JSON_SORT_KEYS);
        snprintf(msg, len, "incompatible build%s: host %s runs %s, the source runs %s",
                 strcmp(mode, "suspended") ? "" : " (the saved state's format)", d->name,
                 a ? a : "?", b ? b : "?");
        free(a);
        free(b);
    }
    json_decref(mine);
    return ok ? 0 : 409;
}

/* Room for the files (their allocated bytes plus headroom: 1 % and
 * 64 MiB) on the file system of this host's VM folders. */
static unsigned in_check_space(struct godwitd *d, const json_t *files, char *msg, size_t len)
{
    char dir[PATH_MAX + 8];
    struct statvfs sv;
    uint64_t need = 0, have, head;
    const json_t *f;
    size_t i;

    json_array_foreach(files, i, f)
    {
        json_int_t a = json_integer_value(json_object_get(f, "allocated"));
        if (a < 0 || (uint64_t)a > (1ull << 50)) {
            snprintf(msg, len, "file %zu: bad allocated size", i);
            return 400;
        }
        need += (uint64_t)a;
    }
    snprintf(dir, sizeof(dir), "%s/vms", d->state_dir);
    if (statvfs(dir, &sv) < 0) {
        snprintf(msg, len, "host %s: %s: %s", d->name, dir, strerror(errno));
        return 500;
    }
    have = (uint64_t)sv.f_bavail * sv.f_frsize;
    head = need / 100 + (64ull << 20);
    if (need + head > have) {
        snprintf(msg, len,
                 "not enough disk space on host %s: the VM's files need %llu MiB (plus %llu MiB "
                 "headroom), %llu MiB are free in %s",
                 d->name, (unsigned long long)(need >> 20), (unsigned long long)(head >> 20),
                 (unsigned long long)(have >> 20), dir);
        return 409;
    }
    return 0;
}

unsigned migrate_in_check(struct godwitd *d, const json_t *def, const json_t *compat,
                          const char *mode, const json_t *files, bool start, char *msg, size_t len)
{
    const char *name = json_string_value(json_object_get(def, "name"));
    struct store_vm vm;
    uint64_t mem, used, budget;
    unsigned st;
    int ret;

    if (!name || !api_name_valid(name)) {
        snprintf(msg, len, "the VM definition has no valid name");
        return 400;
    }
    if ((st = in_check_build(d, compat, mode, msg, len)))
        return st;
    /* incoming migrations at once (the source waits on a resources hold) */
    unsigned max = d->max_in ? d->max_in : 2, busy = 0;
    struct store_job *jv = NULL;
    size_t jn = 0;
    godwitd_store_lock(d);
    if (store_job_list(d->store, true, &jv, &jn) == 0)
        for (size_t i = 0; i < jn; i++)
            busy += !strcmp(jv[i].direction, "in") && !strcmp(jv[i].status, "running");
    godwitd_store_unlock(d);
    store_job_list_free(jv, jn);
    if (busy >= max) {
        snprintf(msg, len,
                 "host %s receives %u migrations at once (--max-migrations ...,%u): try again "
                 "later",
                 d->name, busy, max);
        return 409;
    }
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, &vm);
    godwitd_store_unlock(d);
    if (ret == 0) {
        snprintf(msg, len, "host %s already has a VM named '%s' (state %s)", d->name, name,
                 vm.state);
        store_vm_clear(&vm);
        return 409;
    }
    mem = (uint64_t)json_integer_value(json_object_get(def, "memory"));
    used = vm_memory_in_use(d);
    budget = d->memory_budget;
    if (!budget) {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        budget = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : UINT64_MAX;
    }
    if (!mem || (start && (used + mem > budget || used + mem < used)) || mem > budget) {
        snprintf(msg, len,
                 "not enough memory on host %s: the VM needs %llu MiB, %llu of the budget's "
                 "%llu MiB are in use",
                 d->name, (unsigned long long)(mem >> 20), (unsigned long long)(used >> 20),
                 (unsigned long long)(budget >> 20));
        return 409;
    }
    /* referenced disks must be on storage both hosts see; the others
     * travel (the source names them as files of the VM's folder: cold and
     * suspended send them, live streams them into empty sparse files) */
    const json_t *disk;
    size_t i;
    json_array_foreach(json_object_get(def, "disks"), i, disk)
    {
        if (json_object_get(disk, "path")) {
            json_t *one = json_pack("{s:[O]}", "disks", disk);
            int r = migrate_disks_shared(d, one, msg, len);
            json_decref(one);
            if (r < 0)
                return 409;
        }
    }
    if (!strcmp(mode, "live") && !json_array_size(files))
        return 0; /* shared storage only: nothing lands here but the boot files */
    return files ? in_check_space(d, files, msg, len) : 0;
}
