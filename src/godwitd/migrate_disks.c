/*
 * Where a live migration's disks go (migrate.h): on storage both hosts
 * see they stay where they are and godwit-vm hands their locks over; any
 * other disk moves inside the live stream (godwit-vm's capability `block`,
 * docs/state.md "Disks in the stream") into an empty sparse file of the
 * same size that the destination makes in the VM's folder.  One VM's
 * disks all stay or all move: godwit-vm streams every writable disk once
 * `block` is on, and a shared image written by the destination while the
 * source runs on it would be corrupted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "godwitd/migrate.h"
#include "godwitd/vms.h"

int migrate_disks_shared(struct godwitd *d, const json_t *def, char *err, size_t errlen)
{
    const json_t *disks = json_object_get(def, "disks"), *disk;
    size_t i;

    json_array_foreach(disks, i, disk)
    {
        const char *file = json_string_value(json_object_get(disk, "file"));
        const char *p = json_string_value(json_object_get(disk, "path"));
        char *rp;
        bool ok = false;

        if (file || !p || p[0] != '/')
            return gw_fail(err, errlen, -EXDEV,
                           "disk '%s' lives in the VM's folder on host %s, not on storage both "
                           "hosts see",
                           file ? file
                           : p  ? p
                                : "?",
                           d->name);
        /* a path that does not exist here is not shared with this host */
        rp = realpath(p, NULL);
        for (unsigned s = 0; rp && s < d->nshared && !ok; s++) {
            size_t l = strlen(d->shared[s]);
            ok = !strncmp(rp, d->shared[s], l) && (rp[l] == '/' || !strcmp(d->shared[s], "/"));
        }
        free(rp);
        if (!ok)
            return gw_fail(err, errlen, -EXDEV,
                           "disk '%s' is not on storage both hosts see (host %s shares %s%s)", p,
                           d->name, d->nshared ? "" : "no directory; see --shared-storage",
                           d->nshared ? d->shared[0] : "");
    }
    return 0;
}

/* "1.2 GiB", "4 GiB" */
static const char *plan_bytes(char *out, size_t len, uint64_t b)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    unsigned u = 0;

    while (v >= 1024 && u + 1 < GW_ARRAY_SIZE(unit)) {
        v /= 1024;
        u++;
    }
    /* as the CLI's figures: whole or from 100 up without decimals */
    if (u == 0 || v >= 100 || v == (double)(long long)v)
        snprintf(out, len, "%.0f %s", v, unit[u]);
    else
        snprintf(out, len, "%.1f %s", v, unit[u]);
    return out;
}

int migrate_live_plan(struct godwitd *d, const char *vm, const json_t *def, json_t **plan,
                      json_t **dst_def, char *err, size_t errlen)
{
    const json_t *disk;
    json_t *list = json_array(), *disks = json_array(), *p;
    uint64_t size_sum = 0, alloc_sum = 0;
    unsigned local = 0, shared = 0;
    char dir[PATH_MAX], path[PATH_MAX + 64], why[300] = "", a[32], b[32], text[256];
    size_t i;
    int ret = 0;

    if (godwitd_vm_dir(d, vm, dir, sizeof(dir)) < 0) {
        ret = gw_fail(err, errlen, -ENAMETOOLONG, "the VM's folder path is too long");
        goto out;
    }
    json_array_foreach(json_object_get(def, "disks"), i, disk)
    {
        const char *file = json_string_value(json_object_get(disk, "file"));
        const char *dp = json_string_value(json_object_get(disk, "path"));
        json_t *one = json_pack("{s:[O]}", "disks", disk);
        bool on_shared = dp && migrate_disks_shared(d, one, why, sizeof(why)) == 0;
        struct stat st;

        json_decref(one);
        errno = 0;
        if (file)
            snprintf(path, sizeof(path), "%s/%s", dir, file);
        else
            snprintf(path, sizeof(path), "%s", dp ? dp : "");
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
            ret = gw_fail(err, errlen, -ENOENT, "disk %zu: %s: %s", i, path,
                          errno ? strerror(errno) : "not a regular file");
            goto out;
        }
        json_array_append_new(list,
                              json_pack("{s:I,s:s,s:I,s:I,s:s}", "disk", (json_int_t)i, "source",
                                        file ? file : path, "size", (json_int_t)st.st_size,
                                        "allocated", (json_int_t)st.st_blocks * 512, "moves",
                                        on_shared ? "shared" : "stream"));
        if (on_shared) {
            shared++;
            json_array_append(disks, (json_t *)disk);
            continue;
        }
        /* the destination makes diskN.raw this size; godwit-vm refuses a
         * size that differs, and the definition counts 512-byte sectors */
        if (st.st_size <= 0 || st.st_size % 512) {
            ret = gw_fail(err, errlen, -EINVAL,
                          "disk %zu (%s) is %lld bytes, not whole 512-byte sectors: it cannot "
                          "move live; move the VM stopped with --cold",
                          i, path, (long long)st.st_size);
            goto out;
        }
        local++;
        size_sum += (uint64_t)st.st_size;
        alloc_sum += (uint64_t)st.st_blocks * 512;
        snprintf(path, sizeof(path), "disk%zu.raw", i);
        json_array_append_new(disks,
                              json_pack("{s:s,s:I}", "file", path, "size", (json_int_t)st.st_size));
    }
    if (local && shared) {
        ret = gw_fail(err, errlen, -EXDEV,
                      "VM %s has %u disk%s on shared storage and %u on this host's own: a live "
                      "migration moves all of a VM's disks in the stream or none; move it "
                      "stopped with --cold, or put its disks on the same kind of storage",
                      vm, shared, shared == 1 ? "" : "s", local);
        goto out;
    }
    if (local)
        snprintf(text, sizeof(text),
                 "%u local disk%s, %s allocated of %s, move%s with the live "
                 "stream",
                 local, local == 1 ? "" : "s", plan_bytes(a, sizeof(a), alloc_sum),
                 plan_bytes(b, sizeof(b), size_sum), local == 1 ? "s" : "");
    else if (shared)
        snprintf(text, sizeof(text), "%u disk%s on shared storage, stay%s where %s", shared,
                 shared == 1 ? "" : "s", shared == 1 ? "s" : "",
                 shared == 1 ? "it is" : "they are");
    else
        snprintf(text, sizeof(text), "none");
    p = json_pack("{s:s,s:o,s:I,s:I,s:I,s:I,s:s}", "storage",
                  local    ? "stream"
                  : shared ? "shared"
                           : "none",
                  "disks", list, "local", (json_int_t)local, "shared", (json_int_t)shared,
                  "disk_bytes", (json_int_t)alloc_sum, "disk_size", (json_int_t)size_sum, "text",
                  text);
    list = NULL;
    if (dst_def) {
        *dst_def = json_deep_copy(def);
        json_object_set(*dst_def, "disks", disks);
    }
    *plan = p;
out:
    json_decref(list);
    json_decref(disks);
    return ret;
}

json_t *migrate_live_plan_files(const json_t *plan)
{
    json_t *files = json_array();
    const json_t *x;
    size_t i;

    json_array_foreach(json_object_get(plan, "disks"), i, x)
    {
        char name[32];
        if (strcmp(json_string_value(json_object_get(x, "moves")) ?: "", "stream"))
            continue;
        snprintf(name, sizeof(name), "disk%lld.raw",
                 (long long)json_integer_value(json_object_get(x, "disk")));
        json_array_append_new(files, json_pack("{s:s,s:O,s:O}", "name", name, "size",
                                               json_object_get(x, "size"), "allocated",
                                               json_object_get(x, "allocated")));
    }
    return files;
}
