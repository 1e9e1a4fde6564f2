/*
 * The virt board's side of the migration engine (src/migration): the ops
 * the engine drives the machine through, and the one place an incoming
 * migration starts.
 *
 * Parking: a job that needs the devices quiet asks the loop (kick ->
 * VIRT_REQ_MIG -> mig_out_poll -> virt_mig_park): the devices finish their
 * batched work (virtio pre_save), the harts stop if they ran (state
 * finish-migrate, STOP event), and the loop then touches no device until
 * the job gives the machine back (virt_mig_unpark): saved to a file ->
 * postmigrate (the VM stays stopped, QEMU's way); committed to a
 * destination -> postmigrate for good (cont is refused); failed or
 * cancelled -> as before, running again if it ran.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/virt_int.h"
#include "migration/mig_proto.h"
#include "virtio/virtio_blk.h"

static void virt_mig_kick(void *opaque)
{
    virt_post_request(opaque, VIRT_REQ_MIG);
}

static void virt_mig_park(void *opaque)
{
    struct virt *vm = opaque;

    vm->park_prev_runstate = vm->runstate;
    vm->park_was_running = vm->runstate == VIRT_RS_RUNNING;
    /* devices finish batched work so nothing is in flight */
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++)
        virtio_mmio_pre_save(&vm->virtio[i]);
    if (vm->park_was_running)
        virt_pause(vm, VIRT_RS_FINISH_MIGRATE);
    else
        virt_set_runstate(vm, VIRT_RS_FINISH_MIGRATE);
}

static void virt_mig_unpark(void *opaque, enum mig_unpark how)
{
    struct virt *vm = opaque;

    switch (how) {
    case MIG_UNPARK_GONE:
        vm->migrated_away = true; /* it runs on the destination now */
        virt_set_runstate(vm, VIRT_RS_POSTMIGRATE);
        virt_net_migrated_away(vm); /* slirp-mig: hostfwd ports and connections let go */
        break;
    case MIG_UNPARK_SAVED: virt_set_runstate(vm, VIRT_RS_POSTMIGRATE); break;
    case MIG_UNPARK_RESUME:
        if (virt_disks_reclaim(vm) < 0) {
            /* disk locks: a failed handover takes them back; without them
             * the VM stays paused (cont tries again) */
            virt_set_runstate(vm, VIRT_RS_PAUSED);
        } else if (vm->park_was_running)
            virt_resume(vm);
        else
            virt_set_runstate(vm, vm->park_prev_runstate);
        break;
    }
}

/* MIGRATION and MIGRATION_PASS events (capability "events"). */
static void virt_mig_status(void *opaque, enum mig_status st, uint64_t pass)
{
    struct virt *vm = opaque;

    if (!vm->mig_params.events)
        return;
    if (pass)
        virt_event(vm, "MIGRATION_PASS", json_pack("{s:I}", "pass", (json_int_t)pass));
    else
        virt_event(vm, "MIGRATION", json_pack("{s:s}", "status", mig_status_name(st)));
}

static char *virt_mig_config_text(void *opaque)
{
    return virt_state_config_text(opaque);
}

static int virt_mig_save_components(void *opaque, struct state_stream *s)
{
    return virt_state_save_components(opaque, s);
}

/* disk locks: flushed and handed over before the EOF, so the destination
 * can take them before it answers READY (shared storage) */
static int virt_mig_handover(void *opaque, char *err, size_t errlen)
{
    return virt_disks_unlock(opaque, err, errlen);
}

static void virt_mig_load_begin(void *opaque)
{
    virt_state_load_begin(opaque);
}

static int virt_mig_load_component(void *opaque, const struct state_section *sec,
                                   struct state_buf *b, char *err, size_t errlen)
{
    return virt_state_load_component(opaque, sec, b, err, errlen);
}

/* Loaded: the machine is about to run, so it takes its disk locks now (an
 * -incoming VM has none until here: the source held them); a destination
 * that cannot answers ERROR and the source resumes. */
static int virt_mig_load_end(void *opaque, char *err, size_t errlen)
{
    int ret = virt_state_load_end(opaque, err, errlen);

    return ret < 0 ? ret : virt_disks_lock(opaque, err, errlen);
}

/* A state is loaded: the machine runs, or stays paused with -S.  The
 * guest's clock moves on by paused_ns: a live migration's switchover is a
 * short stall to it, not a jump back (a file's state continues from its
 * saved time: paused_ns 0). */
static void virt_loaded(struct virt *vm, uint64_t paused_ns)
{
    if (paused_ns)
        clint_set_mtime(vm->clint, clint_mtime(vm->clint) + paused_ns / CLINT_NS_PER_TICK);
    virt_net_loaded(vm); /* slirp-mig: deferred hostfwd rules, connection resets */
    virt_set_runstate(vm, VIRT_RS_PAUSED);
    if (!vm->cfg.start_paused)
        virt_resume(vm);
}

static int virt_mig_incoming_done(void *opaque, uint64_t paused_ns, char *err, size_t errlen)
{
    struct virt *vm = opaque;
    struct virt_announce_params ap;
    char why[200];

    (void)err;
    (void)errlen;
    /* tell the network where the NICs are now: the first round goes as
     * the harts start (not at the loop's next tick); with -S the rounds
     * wait for cont */
    virt_announce_params_default(&ap);
    if (virt_announce_start(vm, &ap, why, sizeof(why)) < 0)
        gw_log("announce after the migration: %s", why);
    else if (!vm->cfg.start_paused)
        virt_announce_poll(vm, gw_now_ns());
    virt_loaded(vm, paused_ns);
    return 0;
}

static void virt_mig_incoming_failed(void *opaque, const char *why)
{
    gw_log("incoming migration failed: %s", why);
    virt_post_request(opaque, VIRT_REQ_FAIL); /* as QEMU: the process ends, nothing ran */
}

/* Block migration: the writable virtio-blk images, by slot. */
static unsigned virt_mig_disks(void *opaque, struct mig_disk *out, unsigned max)
{
    struct virt *vm = opaque;
    unsigned n = 0;

    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT && n < max; i++) {
        const struct virtio_dev *d = vm->virtio[i].dev;
        const char *path;
        uint64_t size;
        bool ro;

        if (!d || d->device_id != VIRTIO_ID_BLOCK)
            continue;
        (void)vblk_image(d, &path, &size, &ro);
        if (ro)
            continue; /* a read-only image does not change: it must be there already */
        out[n].slot = i;
        snprintf(out[n].path, sizeof(out[n].path), "%s", path);
        out[n].size = size;
        n++;
    }
    return n;
}

static void virt_mig_disk_track(void *opaque, unsigned slot, struct blk_dirty *t)
{
    struct virt *vm = opaque;
    struct virtio_dev *d = slot < VIRT_VIRTIO_COUNT ? vm->virtio[slot].dev : NULL;

    if (d && d->device_id == VIRTIO_ID_BLOCK)
        vblk_set_dirty(d, t);
}

static unsigned virt_mig_net_ports(void *opaque, struct mig_net_port *out, unsigned max)
{
    return virt_net_fwd_ports(opaque, out, max);
}

static long virt_mig_net_take(void *opaque, unsigned port, uint8_t *buf, size_t cap)
{
    return virt_net_fwd_take(opaque, port, buf, cap);
}

static void virt_mig_net_requeue(void *opaque, unsigned port, const uint8_t *frame, size_t len)
{
    virt_net_fwd_requeue(opaque, port, frame, len);
}

static int virt_mig_net_inject(void *opaque, unsigned port, const uint8_t *frame, size_t len)
{
    return virt_net_fwd_inject(opaque, port, frame, len);
}

static const struct mig_machine_ops virt_mig_ops = {
    .kick = virt_mig_kick,
    .park = virt_mig_park,
    .unpark = virt_mig_unpark,
    .status = virt_mig_status,
    .config_text = virt_mig_config_text,
    .save_components = virt_mig_save_components,
    .handover = virt_mig_handover,
    .load_begin = virt_mig_load_begin,
    .load_component = virt_mig_load_component,
    .load_end = virt_mig_load_end,
    .incoming_done = virt_mig_incoming_done,
    .incoming_failed = virt_mig_incoming_failed,
    .disks = virt_mig_disks,
    .disk_track = virt_mig_disk_track,
    .net_ports = virt_mig_net_ports,
    .net_take = virt_mig_net_take,
    .net_requeue = virt_mig_net_requeue,
    .net_inject = virt_mig_net_inject,
};

void virt_migration_init(struct virt *vm)
{
    vm->mm = (struct mig_machine){
        .ops = &virt_mig_ops,
        .opaque = vm,
        .mem = vm->mem,
        .trace = (vm->cfg.trace & VIRT_TRACE_MIGRATION) != 0,
        .name = vm->cfg.name[0] ? vm->cfg.name : NULL,
        .uuid = vm->cfg.uuid,
    };
    /* a test hook (docs/testing.md): the destination holds READY back */
    if (getenv("GODWIT_TEST_READY_DELAY_MS"))
        vm->mm.ready_delay_ms = (unsigned)strtoul(getenv("GODWIT_TEST_READY_DELAY_MS"), NULL, 10);
    vm->mm.die_after_commit = getenv("GODWIT_TEST_DIE_AFTER_COMMIT") != NULL;
    mig_params_default(&vm->mig_params);
}

bool virt_migrate_active(const struct virt *vm)
{
    return mig_out_active(vm->mig);
}

/* The tls-creds parameter into p->tls_dir for this side (server: the
 * destination): 0, or -EINVAL with a reason. */
static int virt_tls_resolve(const struct virt *vm, struct mig_params *p, bool server, char *err,
                            size_t errlen)
{
    p->tls_dir[0] = '\0';
    if (!p->tls_creds[0])
        return 0;
    for (unsigned i = 0; i < vm->ntls_creds; i++) {
        const struct virt_tls_creds *t = &vm->tls_creds[i];

        if (strcmp(t->id, p->tls_creds))
            continue;
        if (t->server != server) {
            snprintf(err, errlen, "TLS credentials '%s' have endpoint=%s: %s needs endpoint=%s",
                     t->id, t->server ? "server" : "client",
                     server ? "an incoming migration" : "an outgoing migration",
                     server ? "server" : "client");
            return -EINVAL;
        }
        snprintf(p->tls_dir, sizeof(p->tls_dir), "%s", t->dir);
        return 0;
    }
    snprintf(err, errlen, "No TLS credentials with id '%s'", p->tls_creds);
    return -EINVAL;
}

int virt_migrate_start(struct virt *vm, const char *uri, char *err, size_t errlen)
{
    struct mig_params params;
    struct mig_out *j;
    int ret;

    if (virt_migrate_active(vm)) {
        snprintf(err, errlen, "There's a migration process in progress");
        return -EBUSY;
    }
    if (vm->runstate == VIRT_RS_INMIGRATE || vm->runstate == VIRT_RS_SHUTDOWN ||
        vm->runstate == VIRT_RS_INTERNAL_ERROR) {
        snprintf(err, errlen, "cannot migrate in state %s", virt_runstate_name(vm->runstate));
        return -EINVAL;
    }
    if (vm->migrated_away) {
        snprintf(err, errlen,
                 "the VM was migrated live and runs on the destination now; it "
                 "cannot be migrated from here again");
        return -EINVAL;
    }
    if (vm->mem->missing) {
        snprintf(err, errlen, "post-copy is still bringing this VM's memory here");
        return -EBUSY;
    }
    params = vm->mig_params;
    if (params.postcopy && params.block) {
        snprintf(err, errlen,
                 "post-copy cannot move disks in the stream (capability block): "
                 "switch one off");
        return -EINVAL;
    }
    if (virt_tls_resolve(vm, &params, false, err, errlen) < 0)
        return -EINVAL;
    ret = mig_out_start(&j, &vm->mm, uri, &params, err, errlen);
    if (j) {
        /* the new job's record replaces the previous one's (query-migrate) */
        mig_out_free(vm->mig);
        vm->mig = j;
    }
    return ret;
}

int virt_incoming_begin(struct virt *vm, const char *uri, char *err, size_t errlen)
{
    struct mig_params params;
    struct mig_uri u;
    int ret;

    if (mig_uri_parse(uri, true, &u, err, errlen) < 0)
        return -EINVAL;
    if (vm->inc) {
        snprintf(err, errlen, "an incoming migration is already set up");
        return -EBUSY;
    }
    vm->runstate = VIRT_RS_INMIGRATE;
    /* the clock stands still from here: the restored guest continues from
     * its saved time, however long the load took */
    clint_freeze(vm->clint, true);
    switch (u.kind) {
    case MIG_URI_DEFER: return 0; /* QMP migrate-incoming comes later */
    case MIG_URI_FILE:
        ret = mig_in_load_file(&vm->mm, u.path, err, errlen);
        if (ret == 0)
            virt_loaded(vm, 0);
        return ret;
    default:
        params = vm->mig_params;
        if (virt_tls_resolve(vm, &params, true, err, errlen) < 0)
            return -EINVAL;
        return mig_in_start(&vm->inc, &vm->mm, uri, &params, err, errlen);
    }
}

void virt_migration_poll(struct virt *vm)
{
    mig_out_poll(vm->mig);
    mig_in_poll(vm->inc);
}

void virt_migration_fini(struct virt *vm)
{
    mig_out_free(vm->mig);
    vm->mig = NULL;
    mig_in_free(vm->inc);
    vm->inc = NULL;
}
