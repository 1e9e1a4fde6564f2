/*
 * The virt board's virtio-mmio slots: turns -drive, -object and -device
 * strings into devices, places them in the slots as QEMU 7.2 does (the
 * first -device in the last slot, 0x1000_8000 / IRQ 8, the next one below
 * it, ...: QEMU's bus list is in reverse creation order), wires their
 * interrupt lines to the PLIC and their host fds into the run loop.
 *
 * One row of virt_device_types per -device driver; a device type parses
 * its own properties and must use every one it is given (an unknown
 * property is an error naming it, as in QEMU).  A virtserialport is not a
 * slot device: it becomes a port of a virtio-serial-device given before
 * it (the last one, or the one its bus= names).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/keyval.h"
#include "machine/virt_fdt.h"
#include "machine/virt_int.h"
#include "virtio/virtio_blk.h"
#include "virtio/virtio_console.h"
#include "virtio/virtio_rng.h"

/* ---- -drive ------------------------------------------------------------------ */

struct virt_drive {
    struct keyval kv;
    const char *id;
    struct vblk_config blk;
    bool used; /* attached to a device */
};

static int virt_drive_parse(struct virt_drive *dr, const char *spec, char *err, size_t errlen)
{
    char why[200];
    const char *v, *unused;
    bool ro;

    if (keyval_parse(&dr->kv, spec, NULL, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "-drive %s: %s", spec, why);
        return -EINVAL;
    }
    dr->blk.path = keyval_get(&dr->kv, "file");
    dr->id = keyval_get(&dr->kv, "id");
    dr->blk.id = dr->id;
    dr->blk.discard = true;
    if (!dr->blk.path || !*dr->blk.path) {
        snprintf(err, errlen, "-drive %s: file= is required", spec);
        return -EINVAL;
    }
    if (!dr->id || !*dr->id) {
        snprintf(err, errlen, "-drive %s: id= is required (for -device ...,drive=ID)", spec);
        return -EINVAL;
    }
    v = keyval_get(&dr->kv, "format");
    if (v && strcmp(v, "raw") != 0) {
        snprintf(err, errlen, "-drive %s: format '%s' is not supported (only raw)", spec, v);
        return -EINVAL;
    }
    v = keyval_get(&dr->kv, "if");
    if (!v || strcmp(v, "none") != 0) {
        snprintf(err, errlen,
                 "-drive %s: only if=none is supported (with -device virtio-blk-device,drive=%s)",
                 spec, dr->id);
        return -EINVAL;
    }
    if (keyval_get_bool(&dr->kv, "readonly", false, &ro) < 0) {
        snprintf(err, errlen, "-drive %s: readonly must be on or off", spec);
        return -EINVAL;
    }
    dr->blk.readonly = ro;
    v = keyval_get(&dr->kv, "cache");
    if (v && vblk_parse_cache(v, &dr->blk.cache) < 0) {
        snprintf(err, errlen,
                 "-drive %s: cache=%s: use writeback, none, writethrough, directsync or unsafe",
                 spec, v);
        return -EINVAL;
    }
    v = keyval_get(&dr->kv, "detect-zeroes");
    if (v && vblk_parse_detect_zeroes(v, &dr->blk.detect_zeroes) < 0) {
        snprintf(err, errlen, "-drive %s: detect-zeroes=%s: use off, on or unmap", spec, v);
        return -EINVAL;
    }
    v = keyval_get(&dr->kv, "discard");
    if (v) {
        if (!strcmp(v, "unmap") || !strcmp(v, "on")) {
            dr->blk.discard = true;
        } else if (!strcmp(v, "ignore") || !strcmp(v, "off")) {
            dr->blk.discard = false;
        } else {
            snprintf(err, errlen, "-drive %s: discard=%s: use unmap or ignore", spec, v);
            return -EINVAL;
        }
    }
    v = keyval_get(&dr->kv, "file.locking");
    if (v && image_lock_parse_mode(v, &dr->blk.locking) < 0) {
        snprintf(err, errlen, "-drive %s: file.locking=%s: use on, off or auto", spec, v);
        return -EINVAL;
    }
    v = keyval_get(&dr->kv, "aio"); /* accepted: I/O is synchronous here whatever it says */
    if (v && strcmp(v, "threads") && strcmp(v, "native") && strcmp(v, "io_uring")) {
        snprintf(err, errlen, "-drive %s: aio=%s: use threads, native or io_uring", spec, v);
        return -EINVAL;
    }
    v = keyval_get(&dr->kv, "media");
    if (v && strcmp(v, "disk") != 0) {
        snprintf(err, errlen, "-drive %s: media=%s is not supported (only disk)", spec, v);
        return -EINVAL;
    }
    unused = keyval_unused(&dr->kv);
    if (unused) {
        snprintf(err, errlen, "-drive %s: unsupported option '%s'", spec, unused);
        return -EINVAL;
    }
    return 0;
}

/* ---- -object ------------------------------------------------------------------- */

struct virt_object {
    struct keyval kv;
    const char *type; /* rng-random, rng-builtin, tls-creds-psk */
    const char *id;
    const char *filename;
    const char *endpoint, *dir; /* tls-creds-psk */
};

static int virt_object_parse(struct virt_object *o, const char *spec, char *err, size_t errlen)
{
    char why[200];
    const char *unused;

    if (keyval_parse(&o->kv, spec, "qom-type", why, sizeof(why)) < 0) {
        snprintf(err, errlen, "-object %s: %s", spec, why);
        return -EINVAL;
    }
    o->type = keyval_get(&o->kv, "qom-type");
    o->id = keyval_get(&o->kv, "id");
    if (!o->type || (strcmp(o->type, "rng-random") && strcmp(o->type, "rng-builtin") &&
                     strcmp(o->type, "tls-creds-psk"))) {
        snprintf(err, errlen,
                 "-object %s: unsupported object type (rng-random, rng-builtin, tls-creds-psk)",
                 spec);
        return -EINVAL;
    }
    if (!o->id || !*o->id) {
        snprintf(err, errlen, "-object %s: id= is required", spec);
        return -EINVAL;
    }
    if (!strcmp(o->type, "rng-random"))
        o->filename = keyval_get(&o->kv, "filename"); /* QEMU's default: /dev/urandom */
    if (!strcmp(o->type, "tls-creds-psk")) {
        o->endpoint = keyval_get(&o->kv, "endpoint"); /* QEMU's default: client */
        o->dir = keyval_get(&o->kv, "dir");
        if (o->endpoint && strcmp(o->endpoint, "client") && strcmp(o->endpoint, "server")) {
            snprintf(err, errlen, "-object %s: endpoint=%s: use client or server", spec,
                     o->endpoint);
            return -EINVAL;
        }
        if (!o->dir || !*o->dir) {
            snprintf(err, errlen, "-object %s: dir= is required (the folder of keys.psk)", spec);
            return -EINVAL;
        }
        if (strlen(o->id) >= sizeof(((struct virt_tls_creds *)0)->id) ||
            strlen(o->dir) >= sizeof(((struct virt_tls_creds *)0)->dir)) {
            snprintf(err, errlen, "-object %s: id= or dir= is too long", spec);
            return -EINVAL;
        }
    }
    unused = keyval_unused(&o->kv);
    if (unused) {
        snprintf(err, errlen, "-object %s: unsupported property '%s'", spec, unused);
        return -EINVAL;
    }
    return 0;
}

/* ---- -device ------------------------------------------------------------------- */

struct virt_build {
    struct virt *vm;
    struct virt_drive drives[VIRT_MAX_OPTS];
    struct virt_object objects[VIRT_MAX_OPTS];
    struct virtio_dev *serial[VIRT_VIRTIO_COUNT]; /* virtio-serial devices so far, in order */
    unsigned nserial;
};

struct virt_device_type {
    const char *name;
    /* Build the device from its properties (kv, "driver" already taken). */
    struct virtio_dev *(*create)(struct virt_build *b, struct keyval *kv, const char *spec,
                                 char *err, size_t errlen);
};

static struct virtio_dev *virt_create_blk(struct virt_build *b, struct keyval *kv, const char *spec,
                                          char *err, size_t errlen)
{
    const char *drive = keyval_get(kv, "drive"), *serial = keyval_get(kv, "serial");
    struct virt_drive *dr = NULL;
    struct vblk_config cfg;
    char why[300];
    struct virtio_dev *d;
    struct stat st;

    (void)keyval_get(kv, "id");
    if (!drive) {
        snprintf(err, errlen, "-device %s: drive= is required", spec);
        return NULL;
    }
    for (unsigned i = 0; i < b->vm->cfg.ndrives; i++)
        if (!strcmp(b->drives[i].id, drive))
            dr = &b->drives[i];
    if (!dr) {
        snprintf(err, errlen, "-device %s: no -drive with id '%s'", spec, drive);
        return NULL;
    }
    if (dr->used) {
        snprintf(err, errlen, "-device %s: drive '%s' is already in use", spec, drive);
        return NULL;
    }
    if (serial && strlen(serial) > VIRTIO_BLK_ID_BYTES) {
        snprintf(err, errlen, "-device %s: serial is longer than %d bytes", spec,
                 VIRTIO_BLK_ID_BYTES);
        return NULL;
    }
    /*
     * An image is a regular file or a block device.  Opening a named pipe
     * would block (readonly=on) or fail obscurely; stat opens nothing.
     */
    if (stat(dr->blk.path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        snprintf(err, errlen, "-drive %s: not a regular file or a block device", dr->blk.path);
        return NULL;
    }
    cfg = dr->blk;
    cfg.serial = serial;
    d = vblk_new(b->vm->mem, &cfg, why, sizeof(why));
    if (!d) {
        snprintf(err, errlen, "-drive %s: %s", dr->blk.path, why);
        return NULL;
    }
    dr->used = true;
    return d;
}

static struct virtio_dev *virt_create_rng(struct virt_build *b, struct keyval *kv, const char *spec,
                                          char *err, size_t errlen)
{
    const char *rng = keyval_get(kv, "rng");
    struct vrng_config cfg = {.id = keyval_get(kv, "id")};
    char why[300];
    struct virtio_dev *d;

    if (rng) {
        const struct virt_object *o = NULL;
        for (unsigned i = 0; i < b->vm->cfg.nobjects; i++)
            if (!strcmp(b->objects[i].id, rng))
                o = &b->objects[i];
        if (!o) {
            snprintf(err, errlen, "-device %s: no -object with id '%s'", spec, rng);
            return NULL;
        }
        if (!strcmp(o->type, "tls-creds-psk")) {
            snprintf(err, errlen, "-device %s: -object '%s' is %s, not a random source", spec, rng,
                     o->type);
            return NULL;
        }
        /* /dev/urandom and /dev/random are what getrandom() reads anyway. */
        if (o->filename && strcmp(o->filename, "/dev/urandom") &&
            strcmp(o->filename, "/dev/random"))
            cfg.filename = o->filename;
    }
    d = vrng_new(b->vm->mem, &cfg, why, sizeof(why));
    if (!d)
        snprintf(err, errlen, "-device %s: %s", spec, why);
    return d;
}

static struct virtio_dev *virt_create_net(struct virt_build *b, struct keyval *kv, const char *spec,
                                          char *err, size_t errlen)
{
    return virt_net_create_nic(b->vm, kv, spec, err, errlen);
}

static struct virtio_dev *virt_create_serial(struct virt_build *b, struct keyval *kv,
                                             const char *spec, char *err, size_t errlen)
{
    struct vcon_config cfg = {.id = keyval_get(kv, "id")};
    char why[300];
    struct virtio_dev *d;

    (void)keyval_get(kv, "max_ports"); /* QEMU's default 31; ours is fixed (VCON_MAX_PORTS) */
    d = vcon_new(b->vm->mem, &cfg, why, sizeof(why));
    if (!d) {
        snprintf(err, errlen, "-device %s: %s", spec, why);
    } else {
        vcon_set_agent_hook(d, virt_agent_answer, b->vm);
        b->serial[b->nserial++] = d; /* at most one per slot: the caller checked */
    }
    return d;
}

/*
 * -device virtserialport,name=NAME[,id=..][,bus=ID.0]: a port of the last
 * virtio-serial-device, or of the one whose bus (QEMU names it "ID.0")
 * bus= gives.  Without a chardev the port is closed on the host side,
 * except VCON_AGENT_NAME, which godwit-vm serves.  0 or -EINVAL.
 */
static int virt_add_serial_port(struct virt_build *b, struct keyval *kv, const char *spec,
                                char *err, size_t errlen)
{
    const char *name = keyval_get(kv, "name"), *bus = keyval_get(kv, "bus"), *unused;
    struct virtio_dev *d = b->nserial ? b->serial[b->nserial - 1] : NULL;
    char why[200];

    (void)keyval_get(kv, "id");
    if (keyval_get(kv, "chardev")) {
        snprintf(err, errlen, "-device %s: chardev= on virtserialport is not supported yet", spec);
        return -EINVAL;
    }
    unused = keyval_unused(kv);
    if (unused) {
        snprintf(err, errlen, "-device %s: unsupported property '%s'", spec, unused);
        return -EINVAL;
    }
    if (bus) {
        size_t n = strlen(bus);
        d = NULL;
        for (unsigned i = 0; i < b->nserial && n > 2 && !strcmp(bus + n - 2, ".0"); i++)
            if (strlen(b->serial[i]->id) == n - 2 && !strncmp(b->serial[i]->id, bus, n - 2))
                d = b->serial[i];
        if (!d) {
            snprintf(err, errlen,
                     "-device %s: no bus '%s' (a virtio-serial-device with id=ID before it has "
                     "bus ID.0)",
                     spec, bus);
            return -EINVAL;
        }
    }
    if (!d) {
        snprintf(err, errlen, "-device %s: needs a -device virtio-serial-device before it", spec);
        return -EINVAL;
    }
    if (vcon_add_port(d, name, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "-device %s: %s", spec, why);
        return -EINVAL;
    }
    return 0;
}

static const struct virt_device_type virt_device_types[] = {
    {"virtio-blk-device", virt_create_blk},
    {"virtio-rng-device", virt_create_rng},
    {"virtio-net-device", virt_create_net},
    {"virtio-serial-device", virt_create_serial},
    {"virtserialport", NULL}, /* a port, not a slot device: virt_add_serial_port */
};

/* Build one -device: *out is the new slot device, or NULL for a
 * virtserialport (added to its virtio-serial device).  0 or -EINVAL. */
static int virt_device_create(struct virt_build *b, const char *spec, struct virtio_dev **out,
                              char *err, size_t errlen)
{
    struct keyval kv;
    const struct virt_device_type *t = NULL;
    const char *driver, *unused;
    char why[200];
    int ret = -EINVAL;

    *out = NULL;
    if (keyval_parse(&kv, spec, "driver", why, sizeof(why)) < 0) {
        snprintf(err, errlen, "-device %s: %s", spec, why);
        goto out;
    }
    driver = keyval_get(&kv, "driver");
    for (size_t i = 0; driver && i < GW_ARRAY_SIZE(virt_device_types); i++)
        if (!strcmp(driver, virt_device_types[i].name))
            t = &virt_device_types[i];
    if (!t) {
        snprintf(err, errlen,
                 "-device %s: unsupported device '%s' (virtio-blk-device, virtio-rng-device, "
                 "virtio-net-device, virtio-serial-device, virtserialport)",
                 spec, driver ? driver : "");
        goto out;
    }
    if (!t->create) {
        ret = virt_add_serial_port(b, &kv, spec, err, errlen);
        goto out;
    }
    *out = t->create(b, &kv, spec, err, errlen);
    if (!*out)
        goto out;
    unused = keyval_unused(&kv);
    if (unused) {
        snprintf(err, errlen, "-device %s: unsupported property '%s'", spec, unused);
        virtio_dev_free(*out);
        *out = NULL;
        goto out;
    }
    ret = 0;
out:
    keyval_fini(&kv);
    return ret;
}

/* ---- the slots ------------------------------------------------------------------- */

static void virt_virtio_irq(void *opaque, bool level)
{
    struct virt_virtio_slot *slot = opaque;

    plic_set_irq(slot->vm->plic, VIRT_VIRTIO_IRQ + slot->index, level);
}

int virt_virtio_init(struct virt *vm, char *err, size_t errlen)
{
    const struct virt_config *cfg = &vm->cfg;
    struct virt_build *b;
    int ret = 0;

    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++) {
        vm->virtio_slot[i] = (struct virt_virtio_slot){.vm = vm, .index = i};
        virtio_mmio_init(&vm->virtio[i], NULL, NULL);
    }
    ret = virt_net_init(vm, err, errlen);
    if (ret < 0)
        return ret;
    b = calloc(1, sizeof(*b));
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    b->vm = vm;
    for (unsigned i = 0; i < cfg->ndrives && !ret; i++) {
        ret = virt_drive_parse(&b->drives[i], cfg->drives[i], err, errlen);
        for (unsigned k = 0; k < i && !ret; k++) {
            if (!strcmp(b->drives[k].id, b->drives[i].id)) {
                snprintf(err, errlen, "-drive %s: duplicate id '%s'", cfg->drives[i],
                         b->drives[i].id);
                ret = -EINVAL;
            }
        }
    }
    for (unsigned i = 0; i < cfg->nobjects && !ret; i++) {
        const struct virt_object *o = &b->objects[i];

        ret = virt_object_parse(&b->objects[i], cfg->objects[i], err, errlen);
        for (unsigned k = 0; k < i && !ret; k++) {
            if (!strcmp(b->objects[k].id, o->id)) {
                snprintf(err, errlen, "-object %s: duplicate id '%s'", cfg->objects[i], o->id);
                ret = -EINVAL;
            }
        }
        if (!ret && !strcmp(o->type, "tls-creds-psk")) {
            /* kept for migrate-set-parameters tls-creds (virt_migration.c) */
            struct virt_tls_creds *t = &vm->tls_creds[vm->ntls_creds++];

            snprintf(t->id, sizeof(t->id), "%s", o->id);
            snprintf(t->dir, sizeof(t->dir), "%s", o->dir);
            t->server = o->endpoint && !strcmp(o->endpoint, "server");
        }
    }
    for (unsigned i = 0, nslots = 0; i < cfg->ndevices && !ret; i++) {
        struct virtio_transport irq = {.set_irq = virt_virtio_irq};
        struct virtio_dev *d;
        unsigned slot;

        ret = virt_device_create(b, cfg->devices[i], &d, err, errlen);
        if (ret || !d)
            continue; /* an error, or a port added to its device */
        if (nslots == VIRT_VIRTIO_COUNT) {
            snprintf(err, errlen, "-device %s: no free virtio-mmio slot (the board has %d)",
                     cfg->devices[i], VIRT_VIRTIO_COUNT);
            virtio_dev_free(d);
            ret = -ENOSPC;
            break;
        }
        slot = VIRT_VIRTIO_COUNT - 1 - nslots; /* QEMU fills from the top */
        irq.opaque = &vm->virtio_slot[slot];
        virtio_mmio_init(&vm->virtio[slot], d, &irq);
        nslots++;
    }
    for (unsigned i = 0; i < VIRT_MAX_OPTS; i++) {
        keyval_fini(&b->drives[i].kv);
        keyval_fini(&b->objects[i].kv);
    }
    free(b);
    if (!ret)
        virt_net_check_peers(vm);
    return ret;
}

/* ---- disk image locks ------------------------------------------------------------ */

int virt_disks_lock(struct virt *vm, char *err, size_t errlen)
{
    bool took[VIRT_VIRTIO_COUNT] = {false};
    char why[400];
    int ret = 0;

    for (unsigned i = VIRT_VIRTIO_COUNT; i-- > 0 && !ret;) { /* the first -device first */
        struct virtio_dev *d = vm->virtio[i].dev;

        if (!d || d->device_id != VIRTIO_ID_BLOCK || vblk_locked(d))
            continue;
        ret = vblk_lock(d, why, sizeof(why));
        if (ret < 0)
            snprintf(err, errlen, "-drive id=%s: %s", d->id, why);
        took[i] = ret == 0 && vblk_locked(d);
    }
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT && ret; i++)
        if (took[i])
            vblk_unlock(vm->virtio[i].dev); /* all or none */
    return ret;
}

int virt_disks_unlock(struct virt *vm, char *err, size_t errlen)
{
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++) {
        struct virtio_dev *d = vm->virtio[i].dev;
        int ret;

        if (!d || d->device_id != VIRTIO_ID_BLOCK)
            continue;
        ret = vblk_flush(d);
        if (ret < 0) {
            snprintf(err, errlen, "-drive id=%s: flush before the handover: %s", d->id,
                     strerror(-ret));
            return ret;
        }
    }
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++)
        if (vm->virtio[i].dev && vm->virtio[i].dev->device_id == VIRTIO_ID_BLOCK)
            vblk_unlock(vm->virtio[i].dev);
    return 0;
}

int virt_disks_reclaim(struct virt *vm)
{
    uint64_t deadline = gw_now_ns() + (uint64_t)VIRT_DISKS_RECLAIM_MS * 1000000;
    char why[500];
    int ret;

    while ((ret = virt_disks_lock(vm, why, sizeof(why))) == -EAGAIN && gw_now_ns() < deadline)
        usleep(10000);
    if (ret < 0)
        gw_log("the migration did not complete and the disk locks cannot be taken back (%s): "
               "the VM stays paused; cont tries again",
               why);
    return ret;
}

void virt_virtio_fini(struct virt *vm)
{
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++) {
        virtio_dev_free(vm->virtio[i].dev);
        vm->virtio[i].dev = NULL;
    }
    virt_net_fini(vm); /* the NICs have detached from their backends */
}

void virt_virtio_reset(struct virt *vm)
{
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++)
        virtio_mmio_reset(&vm->virtio[i]);
}

int virt_virtio_pollfds(struct virt *vm, struct pollfd *fds, int max)
{
    int n = 0;

    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT && n < max; i++) {
        struct virtio_dev *d = vm->virtio[i].dev;
        if (d && d->ops->pollfds)
            n += d->ops->pollfds(d, fds + n, max - n);
    }
    return n;
}

void virt_virtio_poll(struct virt *vm)
{
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++) {
        struct virtio_dev *d = vm->virtio[i].dev;
        if (d && d->ops->poll)
            d->ops->poll(d);
    }
}

uint64_t virt_virtio_next_deadline(struct virt *vm)
{
    uint64_t next = UINT64_MAX;

    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++) {
        struct virtio_dev *d = vm->virtio[i].dev;
        if (d && d->ops->next_deadline) {
            uint64_t t = d->ops->next_deadline(d);
            if (t < next)
                next = t;
        }
    }
    return next;
}
