/*
 * /1.0/vms: define, list, show, start, stop, kill, delete a VM, and read
 * its console log (docs/godwitd.md "VMs").  The processes themselves are
 * supervise.c's.
 *
 * A VM is self-contained: DIR/vms/NAME/ holds its definition vm.json
 * (0600), copies of its boot files (firmware.bin, kernel, initrd), its new
 * disks (diskN.raw, sparse), console.log, vm.log and the sockets while it
 * runs.  Disks given by path are referenced in place, not copied.  The
 * definition (JSON) names the folder's files relative to it:
 *
 *   {"name", "uuid", "memory" (bytes), "cpus", "firmware": "default" |
 *    "none" | "firmware.bin", "kernel": "kernel" | null, "initrd", "append",
 *    "disks": [{"file": "disk0.raw", "size": N} | {"path": "/abs", "size": N}],
 *    "nics": [{"type": "user", "mac", "hostfwd": [...]} |
 *             {"type": "bridge", "bridge": "br0", "mac"}],
 *    "agent": bool, "created": ms}
 *
 * Every request is checked whole before anything changes: a refused one
 * leaves no folder, row or file behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "godwitd/vms_int.h"
#include "qmp/qmp_client.h"

#define VM_MEMORY_MIN   (4ull << 20)
#define VM_MEMORY_MAX   (1ull << 40)
#define VM_CPUS_MAX     64
#define VM_DISK_MAX     (16ull << 40)
#define VM_APPEND_MAX   4096
#define VM_HOSTFWD_MAX  16
#define VM_VIRTIO_SLOTS 8
#define VM_STOP_TIMEOUT 60

extern char **environ;

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

static bool vm_state_active(const char *state)
{
    static const char *const active[] = {"starting", "running", "stopping", "incoming",
                                         "migrating"};

    for (size_t i = 0; i < GW_ARRAY_SIZE(active); i++)
        if (!strcmp(state, active[i]))
            return true;
    return false;
}

static int vm_row(struct godwitd *d, const char *name, struct store_vm *row)
{
    int ret;

    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, row);
    godwitd_store_unlock(d);
    return ret;
}

static void vm_emit(struct godwitd *d, const char *type, const char *name, json_t *data)
{
    char subject[STORE_WHO_MAX];

    snprintf(subject, sizeof(subject), "vm/%s", name);
    godwitd_event(d, type, subject, data ? data : json_object());
}

int vm_qmp_path(const struct godwitd *d, const char *name, char *out, size_t len)
{
    return vm_path(d, name, VM_FILE_QMP, out, len);
}

static int vm_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int vm_rmdir(const char *dir)
{
    return nftw(dir, vm_rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT ? -errno : 0;
}

/* Copy src (an absolute path to a regular file) to dst (made 0600). */
static int vm_copy_file(const char *src, const char *dst, char *err, size_t errlen)
{
    char buf[1 << 16];
    int in, out, ret = 0;
    ssize_t n;

    in = gw_open_checked(src, O_RDONLY, 0, GW_OPEN_REG, err, errlen);
    if (in < 0)
        return in;
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        ret = gw_fail(err, errlen, -errno, "%s: %s", dst, strerror(errno));
        close(in);
        return ret;
    }
    while ((n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write(out, buf, (size_t)n) != n) {
            ret = gw_fail(err, errlen, -EIO, "copying '%s': %s", src, strerror(errno));
            break;
        }
    }
    if (ret == 0 && fsync(out) < 0)
        ret = gw_fail(err, errlen, -errno, "%s: %s", dst, strerror(errno));
    close(in);
    close(out);
    return ret;
}

/* Write the definition to vm.json (0600): temporary file, fsync, rename. */
static int vm_write_def(struct godwitd *d, const char *name, const json_t *def, char *err,
                        size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    int fd, ret = 0;

    if (vm_path(d, name, VM_FILE_DEF, path, sizeof(path)) < 0)
        return gw_fail(err, errlen, -ENAMETOOLONG, "the VM's folder path is too long");
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return gw_fail(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
    if (json_dumpfd(def, fd, JSON_INDENT(2) | JSON_SORT_KEYS) < 0 || write(fd, "\n", 1) != 1 ||
        fsync(fd) < 0)
        ret = gw_fail(err, errlen, -EIO, "%s: cannot write", tmp);
    close(fd);
    if (ret == 0 && rename(tmp, path) < 0)
        ret = gw_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
    if (ret < 0)
        unlink(tmp);
    return ret;
}

json_t *vm_definition(struct godwitd *d, const char *name)
{
    char path[PATH_MAX];

    if (!api_name_valid(name) || vm_path(d, name, VM_FILE_DEF, path, sizeof(path)) < 0)
        return NULL;
    return json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
}

static void vm_uuid_new(char out[STORE_UUID_MAX])
{
    uint8_t b[16];

    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        uint64_t t = gw_now_ns() ^ (uint64_t)getpid() << 32;
        for (unsigned i = 0; i < 16; i++)
            b[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)(i * 37);
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* RFC 4122 version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, STORE_UUID_MAX,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

static bool vm_uuid_valid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (gw_hex_digit(s[i]) < 0) {
            return false;
        }
    }
    return true;
}

/* FNV-1a of the UUID and a salt: MACs and TAP names stable for the VM. */
static uint32_t vm_hash(const char *uuid, unsigned salt)
{
    uint32_t h = 2166136261u;

    for (const char *p = uuid; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ (salt + 1)) * 16777619u;
    return h ^ (h >> 15);
}

static void vm_mac(const char *uuid, unsigned i, char out[18])
{
    uint32_t h = vm_hash(uuid, i);

    snprintf(out, 18, "52:54:00:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
}

static bool vm_mac_valid(const char *s)
{
    if (strlen(s) != 17)
        return false;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? s[i] != ':' : gw_hex_digit(s[i]) < 0)
            return false;
    return (gw_hex_digit(s[1]) & 1) == 0; /* unicast */
}

static void vm_tap_name(const char *uuid, unsigned i, char out[VM_TAP_NAME])
{
    snprintf(out, VM_TAP_NAME, "gw%08x", vm_hash(uuid, 100 + i));
}

static bool vm_ifname_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= VM_TAP_NAME)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

/* A path godwit-vm's option syntax can carry: absolute, no comma. */
static int vm_check_path(const char *what, const char *p, char *err, size_t errlen)
{
    if (p[0] != '/')
        return gw_fail(err, errlen, -EINVAL, "%s '%s': an absolute path is needed", what, p);
    if (strchr(p, ',') || strlen(p) >= PATH_MAX - 64)
        return gw_fail(err, errlen, -EINVAL, "%s '%s': commas and long paths are not supported",
                       what, p);
    return 0;
}

static int vm_check_regular(const char *what, const char *p, struct stat *st, char *err,
                            size_t errlen)
{
    int ret = vm_check_path(what, p, err, errlen);

    if (ret < 0)
        return ret;
    if (stat(p, st) < 0)
        return gw_fail(err, errlen, -ENOENT, "%s '%s': %s", what, p, strerror(errno));
    if (!S_ISREG(st->st_mode))
        return gw_fail(err, errlen, -EINVAL, "%s '%s': not a regular file", what, p);
    return 0;
}

/* ---- definitions ---- */

/*
 * Check a POST /1.0/vms body (or a definition from a peer when travel:
 * then "uuid", NIC "mac"s and disk "file"s are kept) and build the
 * definition.  Nothing on disk changes.  copies gets {"src","dst"} pairs
 * of boot files to copy into the folder.  NULL with the reason.
 */
static json_t *vm_def_build(const json_t *body, bool travel, json_t *copies, char *err,
                            size_t errlen)
{
    const char *name = json_string_value(json_object_get(body, "name"));
    json_t *jmem = json_object_get(body, "memory"), *jcpus = json_object_get(body, "cpus");
    const char *firmware = json_string_value(json_object_get(body, "firmware"));
    const json_t *jdisks = json_object_get(body, "disks"), *jnics = json_object_get(body, "nics");
    json_t *jagent = json_object_get(body, "agent");
    const char *uuid = json_string_value(json_object_get(body, "uuid"));
    char uuidbuf[STORE_UUID_MAX];
    json_t *def = NULL, *disks = NULL, *nics = NULL;
    json_int_t mem, cpus;
    bool agent = jagent ? json_is_true(jagent) : true;
    size_t i;
    json_t *v;
    struct stat st;

    if (!api_name_valid(name)) {
        gw_fail(err, errlen, -EINVAL,
                "invalid VM name '%s': 1-63 characters of a-z, 0-9 and '-', starting with a "
                "letter",
                name ? name : "");
        return NULL;
    }
    if (!json_is_integer(jmem) || (mem = json_integer_value(jmem)) < (json_int_t)VM_MEMORY_MIN ||
        (uint64_t)mem > VM_MEMORY_MAX || mem % (1 << 20)) {
        gw_fail(err, errlen, -EINVAL,
                "field 'memory': bytes, a whole number of MiB from 4 MiB to 1 TiB");
        return NULL;
    }
    cpus = jcpus ? (json_is_integer(jcpus) ? json_integer_value(jcpus) : 0) : 1;
    if (cpus < 1 || cpus > VM_CPUS_MAX) {
        gw_fail(err, errlen, -EINVAL, "field 'cpus': 1 to %d", VM_CPUS_MAX);
        return NULL;
    }
    if (jagent && !json_is_boolean(jagent)) {
        gw_fail(err, errlen, -EINVAL, "field 'agent': expected a boolean");
        return NULL;
    }
    if (uuid && !travel) {
        gw_fail(err, errlen, -EINVAL, "field 'uuid': assigned by the host");
        return NULL;
    }
    if (uuid && !vm_uuid_valid(uuid)) {
        gw_fail(err, errlen, -EINVAL, "field 'uuid': not a UUID");
        return NULL;
    }
    if (!uuid) {
        vm_uuid_new(uuidbuf);
        uuid = uuidbuf;
    }
    def = json_pack("{s:s,s:s,s:I,s:I,s:b,s:I}", "name", name, "uuid", uuid, "memory", mem, "cpus",
                    cpus, "agent", agent, "created", (json_int_t)store_now_ms());
    if (!def)
        goto fail_nomem;
    /* boot files */
    if (!firmware)
        firmware = "default";
    if (!strcmp(firmware, "default") || !strcmp(firmware, "none") ||
        (travel && !strcmp(firmware, "firmware.bin"))) {
        json_object_set_new(def, "firmware", json_string(firmware));
    } else {
        if (vm_check_regular("firmware", firmware, &st, err, errlen) < 0)
            goto fail;
        json_object_set_new(def, "firmware", json_string("firmware.bin"));
        json_array_append_new(copies,
                              json_pack("{s:s,s:s}", "src", firmware, "dst", "firmware.bin"));
    }
    static const char *const boot[] = {"kernel", "initrd"};
    for (i = 0; i < GW_ARRAY_SIZE(boot); i++) {
        const char *p = json_string_value(json_object_get(body, boot[i]));
        if (!p || !p[0]) {
            json_object_set_new(def, boot[i], json_null());
            continue;
        }
        if (travel && !strcmp(p, boot[i])) {
            json_object_set_new(def, boot[i], json_string(p));
            continue;
        }
        if (vm_check_regular(boot[i], p, &st, err, errlen) < 0)
            goto fail;
        json_object_set_new(def, boot[i], json_string(boot[i]));
        json_array_append_new(copies, json_pack("{s:s,s:s}", "src", p, "dst", boot[i]));
    }
    if (!strcmp(firmware, "none") && json_is_null(json_object_get(def, "kernel"))) {
        gw_fail(err, errlen, -EINVAL, "firmware 'none' needs a kernel (a bare-metal ELF)");
        goto fail;
    }
    if (json_is_null(json_object_get(def, "kernel")) &&
        !json_is_null(json_object_get(def, "initrd"))) {
        gw_fail(err, errlen, -EINVAL, "an initrd needs a kernel");
        goto fail;
    }
    {
        const char *append = json_string_value(json_object_get(body, "append"));
        if (append && strlen(append) > VM_APPEND_MAX) {
            gw_fail(err, errlen, -EINVAL, "field 'append': at most %d characters", VM_APPEND_MAX);
            goto fail;
        }
        if (append && append[0] && json_is_null(json_object_get(def, "kernel"))) {
            gw_fail(err, errlen, -EINVAL, "field 'append' needs a kernel");
            goto fail;
        }
        json_object_set_new(def, "append", append && append[0] ? json_string(append) : json_null());
    }
    /* disks */
    disks = json_array();
    if (jdisks && !json_is_array(jdisks)) {
        gw_fail(err, errlen, -EINVAL, "field 'disks': expected an array");
        goto fail;
    }
    if (json_array_size(jdisks) > VM_DISKS_MAX) {
        gw_fail(err, errlen, -EINVAL, "at most %d disks", VM_DISKS_MAX);
        goto fail;
    }
    json_array_foreach(jdisks, i, v)
    {
        json_t *size = json_object_get(v, "size");
        const char *path = json_string_value(json_object_get(v, "path"));
        const char *file = json_string_value(json_object_get(v, "file"));
        char want[32];
        const char *key;
        size_t nkeys = json_object_size(v);

        if (!json_is_object(v) || nkeys == 0) {
            gw_fail(err, errlen, -EINVAL, "disk %zu: expected {\"size\": N} or {\"path\": P}", i);
            goto fail;
        }
        json_object_foreach(v, key, size)
        {
            if (strcmp(key, "size") && strcmp(key, "path") && !(travel && !strcmp(key, "file"))) {
                gw_fail(err, errlen, -EINVAL, "disk %zu: unknown field '%s'", i, key);
                goto fail;
            }
        }
        size = json_object_get(v, "size");
        snprintf(want, sizeof(want), "disk%zu.raw", i);
        if (path) {
            if (vm_check_regular("disk", path, &st, err, errlen) < 0)
                goto fail;
            if (size && !travel) {
                gw_fail(err, errlen, -EINVAL, "disk %zu: give a size or a path, not both", i);
                goto fail;
            }
            json_array_append_new(
                disks, json_pack("{s:s,s:I}", "path", path, "size", (json_int_t)st.st_size));
            continue;
        }
        if (!json_is_integer(size) || json_integer_value(size) <= 0 ||
            (uint64_t)json_integer_value(size) > VM_DISK_MAX) {
            gw_fail(err, errlen, -EINVAL, "disk %zu: 'size' must be bytes, 1 to 16 TiB", i);
            goto fail;
        }
        if (file && strcmp(file, want)) {
            gw_fail(err, errlen, -EINVAL, "disk %zu: file must be '%s'", i, want);
            goto fail;
        }
        json_int_t sz = (json_integer_value(size) + 511) / 512 * 512;
        json_array_append_new(disks, json_pack("{s:s,s:I}", "file", want, "size", sz));
    }
    json_object_set_new(def, "disks", disks);
    disks = NULL;
    /* nics */
    nics = json_array();
    if (jnics && !json_is_array(jnics)) {
        gw_fail(err, errlen, -EINVAL, "field 'nics': expected an array");
        goto fail;
    }
    if (json_array_size(jnics) > VM_NICS_MAX) {
        gw_fail(err, errlen, -EINVAL, "at most %d NICs", VM_NICS_MAX);
        goto fail;
    }
    json_array_foreach(jnics, i, v)
    {
        const char *type = json_string_value(json_object_get(v, "type"));
        const char *mac = json_string_value(json_object_get(v, "mac"));
        const char *key;
        json_t *x, *nic;
        char macbuf[18];

        if (!json_is_object(v) || !type || (strcmp(type, "user") && strcmp(type, "bridge"))) {
            gw_fail(err, errlen, -EINVAL, "nic %zu: 'type' must be \"user\" or \"bridge\"", i);
            goto fail;
        }
        json_object_foreach(v, key, x)
        {
            bool ok = !strcmp(key, "type") || (travel && !strcmp(key, "mac")) ||
                      (!strcmp(type, "user") && !strcmp(key, "hostfwd")) ||
                      (!strcmp(type, "bridge") && !strcmp(key, "bridge"));
            if (!ok) {
                gw_fail(err, errlen, -EINVAL, "nic %zu: unknown field '%s' for type %s", i, key,
                        type);
                goto fail;
            }
        }
        if (mac && !vm_mac_valid(mac)) {
            gw_fail(err, errlen, -EINVAL, "nic %zu: bad mac '%s'", i, mac);
            goto fail;
        }
        if (!mac) {
            vm_mac(uuid, (unsigned)i, macbuf);
            mac = macbuf;
        }
        nic = json_pack("{s:s,s:s}", "type", type, "mac", mac);
        json_array_append_new(nics, nic);
        if (!strcmp(type, "bridge")) {
            const char *br = json_string_value(json_object_get(v, "bridge"));
            if (!br || !vm_ifname_valid(br)) {
                gw_fail(err, errlen, -EINVAL, "nic %zu: 'bridge' must name a bridge device", i);
                goto fail;
            }
            json_object_set_new(nic, "bridge", json_string(br));
            continue;
        }
        x = json_object_get(v, "hostfwd");
        if (x && (!json_is_array(x) || json_array_size(x) > VM_HOSTFWD_MAX)) {
            gw_fail(err, errlen, -EINVAL, "nic %zu: 'hostfwd' must be a list of up to %d rules", i,
                    VM_HOSTFWD_MAX);
            goto fail;
        }
        size_t j;
        json_t *rule;
        json_array_foreach(x, j, rule)
        {
            const char *r = json_string_value(rule);
            if (!r || (strncmp(r, "tcp:", 4) && strncmp(r, "udp:", 4)) || strchr(r, ',') ||
                !strchr(r, '-') || strlen(r) > 128) {
                gw_fail(err, errlen, -EINVAL,
                        "nic %zu: hostfwd rule '%s': [tcp|udp]:[HOSTADDR]:PORT-[GUESTADDR]:PORT", i,
                        r ? r : "?");
                goto fail;
            }
        }
        json_object_set_new(nic, "hostfwd", x ? json_deep_copy(x) : json_array());
    }
    if (json_array_size(json_object_get(def, "disks")) + json_array_size(nics) + (agent ? 1 : 0) >
        VM_VIRTIO_SLOTS) {
        gw_fail(err, errlen, -EINVAL, "too many devices: disks, NICs and the agent share %d slots",
                VM_VIRTIO_SLOTS);
        goto fail;
    }
    json_object_set_new(def, "nics", nics);
    return def;
fail_nomem:
    gw_fail(err, errlen, -ENOMEM, "out of memory");
fail:
    json_decref(disks);
    json_decref(nics);
    json_decref(def);
    return NULL;
}

/* Make the folder, files and row for a checked definition.  -EEXIST if
 * the name is taken; on any failure nothing is left behind. */
static int vm_materialise(struct godwitd *d, json_t *def, const json_t *copies, char *err,
                          size_t errlen)
{
    const char *name = json_string_value(json_object_get(def, "name"));
    char dir[PATH_MAX], path[PATH_MAX];
    struct store_vm row;
    size_t i;
    json_t *v;
    int ret;

    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, &row);
    godwitd_store_unlock(d);
    if (ret == 0) {
        store_vm_clear(&row);
        return gw_fail(err, errlen, -EEXIST, "VM '%s' already exists", name);
    }
    if (godwitd_vm_dir(d, name, dir, sizeof(dir)) < 0 || strlen(dir) > PATH_MAX - 64)
        return gw_fail(err, errlen, -ENAMETOOLONG, "the VM's folder path is too long");
    if (mkdir(dir, 0700) < 0) {
        if (errno == EEXIST)
            return gw_fail(err, errlen, -EEXIST,
                           "VM '%s': its folder %s already exists (remove it, or pick another "
                           "name)",
                           name, dir);
        return gw_fail(err, errlen, -errno, "%s: %s", dir, strerror(errno));
    }
    json_array_foreach(copies, i, v)
    {
        vm_path(d, name, json_string_value(json_object_get(v, "dst")), path, sizeof(path));
        ret = vm_copy_file(json_string_value(json_object_get(v, "src")), path, err, errlen);
        if (ret < 0)
            goto out_rm;
    }
    json_array_foreach(json_object_get(def, "disks"), i, v)
    {
        const char *file = json_string_value(json_object_get(v, "file"));
        int fd;
        if (!file)
            continue;
        vm_path(d, name, file, path, sizeof(path));
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            ret = gw_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
            goto out_rm;
        }
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size == 0 &&
            ftruncate(fd, (off_t)json_integer_value(json_object_get(v, "size"))) < 0) {
            ret = gw_fail(err, errlen, -errno, "%s: %s", path, strerror(errno));
            close(fd);
            goto out_rm;
        }
        close(fd);
    }
    ret = vm_write_def(d, name, def, err, errlen);
    if (ret < 0)
        goto out_rm;
    memset(&row, 0, sizeof(row));
    snprintf(row.name, sizeof(row.name), "%s", name);
    snprintf(row.uuid, sizeof(row.uuid), "%s", json_string_value(json_object_get(def, "uuid")));
    row.memory = (uint64_t)json_integer_value(json_object_get(def, "memory"));
    row.cpus = (uint32_t)json_integer_value(json_object_get(def, "cpus"));
    snprintf(row.state, sizeof(row.state), "defined");
    row.exit_status = -1;
    row.config = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    godwitd_store_lock(d);
    ret = row.config ? store_vm_add(d->store, &row) : -ENOMEM;
    if (ret < 0)
        ret = gw_fail(err, errlen, ret, "%s",
                      ret == -EEXIST ? "the name or UUID is taken" : store_errmsg(d->store));
    godwitd_store_unlock(d);
    free(row.config);
    if (ret < 0)
        goto out_rm;
    return 0;
out_rm:
    vm_rmdir(dir);
    return ret;
}

int vm_define(struct godwitd *d, const json_t *def, char *err, size_t errlen)
{
    json_t *copies = json_array(), *built;
    int ret;

    built = vm_def_build(def, true, copies, err, errlen);
    if (!built) {
        json_decref(copies);
        return -EINVAL;
    }
    if (json_integer_value(json_object_get(def, "created")) > 0)
        json_object_set(built, "created", json_object_get(def, "created"));
    ret = vm_materialise(d, built, copies, err, errlen);
    json_decref(copies);
    if (ret == 0)
        vm_emit(d, "vm-defined", json_string_value(json_object_get(built, "name")), NULL);
    json_decref(built);
    return ret;
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
    static const char *const copy[] = {"firmware", "kernel", "initrd", "append", "agent"};
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
    return o;
}

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
    snprintf(out, len, "%.200s", line ? line + 1 : buf);
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
    if (vm_state_active(row.state)) {
        ret = gw_fail(err, errlen, -EBUSY, "VM '%s' is %s", name, row.state);
        goto out_unlock;
    }
    if (!strcmp(row.state, "migrated")) {
        ret = gw_fail(err, errlen, -EBUSY, "VM '%s' has migrated away", name);
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
        uint64_t deadline = gw_deadline_ns(VM_SPAWN_MS);
        for (;;) {
            char why[256];
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
                              VM_SPAWN_MS / 1000);
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

static void vms_start(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = vm_name_param(req, rep);
    char err[512];
    int ret;

    if (!name)
        return;
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

/* Set the row's state if it still names pid (stopping <-> running). */
static void vm_set_state_if(struct godwitd *d, const char *name, pid_t pid, const char *state)
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

static void vms_stop(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = vm_name_param(req, rep);
    char err[512], path[PATH_MAX];
    json_int_t timeout = VM_STOP_TIMEOUT;
    bool force = false, agent;
    struct store_vm row;
    struct qmp_client *qmp = NULL;
    json_t *def;
    pid_t pid;
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
    if (strcmp(row.state, "running") || !sup_watching(d, name, &pid)) {
        api_reply_error(rep, 409, "VM '%s' is %s, not running", name, row.state);
        store_vm_clear(&row);
        return;
    }
    store_vm_clear(&row);
    def = vm_definition(d, name);
    agent = json_is_true(json_object_get(def, "agent"));
    json_decref(def);
    if (!agent) {
        if (!force) {
            api_reply_error(rep, 409,
                            "VM '%s' has no guest agent, so it cannot be powered down gracefully; "
                            "use --force (or kill) to power it off",
                            name);
            return;
        }
        ret = vm_kill(d, name, 10000, err, sizeof(err));
        if (ret < 0)
            api_reply_error(rep, vm_status_of(ret), "%s", err);
        else
            vm_reply_object(d, name, rep);
        return;
    }
    sup_expect_exit(d, name, true);
    vm_set_state_if(d, name, pid, "stopping");
    vm_qmp_path(d, name, path, sizeof(path));
    ret = qmp_client_connect(path, 5000, &qmp, err, sizeof(err));
    if (ret == 0)
        ret = qmp_client_execute(qmp, "system_powerdown", NULL, 5000, NULL, err, sizeof(err));
    qmp_client_free(qmp);
    if (ret == 0)
        ret = sup_wait_exit(d, name, pid, (int)timeout * 1000);
    if (ret == 0) {
        vm_reply_object(d, name, rep);
        return;
    }
    if (force) {
        ret = vm_kill(d, name, 10000, err, sizeof(err));
        if (ret < 0)
            api_reply_error(rep, vm_status_of(ret), "%s", err);
        else
            vm_reply_object(d, name, rep);
        return;
    }
    if (ret == -ECANCELED) {
        /* the daemon stops: the power-down goes on; a restarted daemon
         * records stopped if the process is gone by then */
        api_reply_error(rep, 503, "godwitd is stopping; VM '%s' was asked to power down", name);
        return;
    }
    sup_expect_exit(d, name, false);
    vm_set_state_if(d, name, pid, "running");
    if (ret == -ETIMEDOUT)
        api_reply_error(rep, 409,
                        "VM '%s' did not power down within %lld s and keeps running; use --force "
                        "to power it off after the timeout",
                        name, (long long)timeout);
    else
        api_reply_error(rep, 500, "VM '%s': power-down request failed: %s", name, err);
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
    {"name", API_T_STRING, true},
    {"memory", API_T_INT, true},
    {"cpus", API_T_INT, false},
    {"firmware", API_T_STRING, false},
    {"kernel", API_T_STRING, false},
    {"initrd", API_T_STRING, false},
    {"append", API_T_STRING, false},
    {"disks", API_T_ARRAY, false},
    {"nics", API_T_ARRAY, false},
    {"agent", API_T_BOOL, false},
    {NULL, 0, false},
};

const struct api_route vms_routes[] = {
    {"POST", "/1.0/vms", vms_create, vm_create_fields},
    {"GET", "/1.0/vms", vms_list, NULL},
    {"GET", "/1.0/vms/{name}", vms_show, NULL},
    {"DELETE", "/1.0/vms/{name}", vms_delete, NULL},
    {"POST", "/1.0/vms/{name}/start", vms_start, NULL},
    {"POST", "/1.0/vms/{name}/stop", vms_stop, NULL},
    {"POST", "/1.0/vms/{name}/kill", vms_kill, NULL},
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
        /* gone while the daemon was away: stopping -> stopped, else crashed */
        bool clean = !strcmp(r->state, "stopping");
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
