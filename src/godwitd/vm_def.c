/*
 * VM definitions (vms_int.h): checking a create request or a travelling
 * definition, and making the VM's folder, files and row from it.
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
 * Everything is checked before anything changes: a refused definition
 * leaves no folder, row or file behind, and a failure half-way removes the
 * folder again.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "godwitd/vms_int.h"

#define VM_MEMORY_MIN   (4ull << 20)
#define VM_MEMORY_MAX   (1ull << 40)
#define VM_CPUS_MAX     64
#define VM_DISK_MAX     (16ull << 40)
#define VM_APPEND_MAX   4096
#define VM_VIRTIO_SLOTS 8

static int vm_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int vm_rmdir(const char *dir)
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

void vm_tap_name(const char *uuid, unsigned i, char out[VM_TAP_NAME])
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
#define VM_LABELS_MAX 16

bool vm_label_word_ok(const char *w)
{
    size_t n = w ? strlen(w) : 0;

    if (n < 1 || n > 63)
        return false;
    for (; *w; w++)
        if (!((*w >= 'a' && *w <= 'z') || (*w >= 'A' && *w <= 'Z') || (*w >= '0' && *w <= '9') ||
              *w == '.' || *w == '_' || *w == '-'))
            return false;
    return true;
}

json_t *vm_def_build(const json_t *body, bool travel, json_t *copies, char *err, size_t errlen)
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
    /* labels (policies match them: docs/holds.md); they travel with the VM */
    const json_t *jl = json_object_get(body, "labels");
    if (jl) {
        const char *k;
        json_t *lv;
        if (!json_is_object(jl) || json_object_size(jl) > VM_LABELS_MAX) {
            gw_fail(err, errlen, -EINVAL, "field 'labels': an object of at most %d KEY: VALUE",
                    VM_LABELS_MAX);
            goto fail;
        }
        json_object_foreach((json_t *)jl, k, lv)
        {
            if (!vm_label_word_ok(k) || !json_is_string(lv) ||
                !vm_label_word_ok(json_string_value(lv))) {
                gw_fail(err, errlen, -EINVAL,
                        "label '%s': keys and values are 1-63 of a-z A-Z 0-9 . _ -", k);
                goto fail;
            }
        }
        json_object_set(def, "labels", (json_t *)jl);
    }
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
int vm_materialise(struct godwitd *d, json_t *def, const json_t *copies, char *err, size_t errlen)
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
