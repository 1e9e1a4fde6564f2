/*
 * The virt board's networking: opens the -netdev backends (net/net.h) when
 * the board is built and creates -device virtio-net-device NICs on them
 * (called from the device table in virt_virtio.c).  The backends belong to
 * the board; a NIC attaches itself as its backend's peer and detaches when
 * it is freed, so the board frees the devices first, then the backends.
 *
 * As QEMU: every -netdev needs a unique id; a NIC takes one netdev and a
 * netdev serves one NIC; a NIC without mac= gets 52:54:00:12:34:56, the
 * next such NIC ...:57 and so on; a netdev no NIC uses is warned about
 * ("has no peer") and its frames go nowhere.  NIC properties: netdev=,
 * mac=, id=, and the offload switches csum=, host_tso4=, host_tso6=,
 * guest_csum= (on|off, default on).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "machine/virt_int.h"
#include "migration/mig_proto.h"
#include "migration/migration.h"
#include "virtio/virtio_net.h"

int virt_net_init(struct virt *vm, char *err, size_t errlen)
{
    const struct virt_config *cfg = &vm->cfg;

    for (unsigned i = 0; i < cfg->nnetdevs; i++) {
        struct net_opts o;
        char why[300];

        if (net_parse(cfg->netdevs[i], &o, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "-netdev %s: %s", cfg->netdevs[i], why);
            return -EINVAL;
        }
        /* an -incoming VM binds its hostfwd rules when its state is loaded:
         * on one host, the source holds the ports until the switchover */
        o.hostfwd_later = cfg->incoming != NULL;
        for (unsigned k = 0; k < i; k++) {
            if (!strcmp(net_backend_id(vm->netdev[k]), o.id)) {
                snprintf(err, errlen, "-netdev %s: duplicate id '%s'", cfg->netdevs[i], o.id);
                return -EINVAL;
            }
        }
        vm->netdev[i] = net_backend_open(&o, why, sizeof(why));
        if (!vm->netdev[i]) {
            snprintf(err, errlen, "-netdev %s: %s", cfg->netdevs[i], why);
            return -EINVAL;
        }
        vm->nnetdevs = i + 1;
    }
    return 0;
}

void virt_net_check_peers(const struct virt *vm)
{
    for (unsigned i = 0; i < vm->nnetdevs; i++)
        if (!vm->netdev_used[i])
            gw_log("warning: netdev %s has no peer", net_backend_id(vm->netdev[i]));
}

void virt_net_fini(struct virt *vm)
{
    for (unsigned i = 0; i < vm->nnetdevs; i++) {
        net_backend_free(vm->netdev[i]);
        vm->netdev[i] = NULL;
        vm->netdev_used[i] = false;
    }
    vm->nnetdevs = 0;
}

/* ---- live migration ------------------------------------------------------ */

unsigned virt_net_migrating_count(const struct virt *vm)
{
    unsigned n = 0;

    for (unsigned i = 0; i < vm->nnetdevs; i++)
        n += net_backend_migrates(vm->netdev[i]);
    return n;
}

struct net_backend *virt_net_migrating(struct virt *vm, unsigned i)
{
    for (unsigned k = 0; k < vm->nnetdevs; k++)
        if (net_backend_migrates(vm->netdev[k]) && i-- == 0)
            return vm->netdev[k];
    assert(!"virt_net_migrating: no such netdev");
    return NULL;
}

void virt_net_loaded(struct virt *vm)
{
    for (unsigned i = 0; i < vm->nnetdevs; i++)
        net_backend_loaded(vm->netdev[i]);
}

void virt_net_migrated_away(struct virt *vm)
{
    for (unsigned i = 0; i < vm->nnetdevs; i++)
        net_backend_migrated_away(vm->netdev[i]);
}

struct virtio_dev *virt_net_create_nic(struct virt *vm, struct keyval *kv, const char *spec,
                                       char *err, size_t errlen)
{
    const char *netdev = keyval_get(kv, "netdev"), *mac = keyval_get(kv, "mac");
    struct vnet_config cfg = {.id = keyval_get(kv, "id")};
    struct virtio_dev *d;
    char why[300];
    int idx = -1;

    if (!netdev) {
        snprintf(err, errlen, "-device %s: netdev= is required", spec);
        return NULL;
    }
    for (unsigned i = 0; i < vm->nnetdevs; i++)
        if (!strcmp(net_backend_id(vm->netdev[i]), netdev))
            idx = (int)i;
    if (idx < 0) {
        snprintf(err, errlen, "-device %s: no -netdev with id '%s'", spec, netdev);
        return NULL;
    }
    if (vm->netdev_used[idx]) {
        snprintf(err, errlen, "-device %s: netdev '%s' is already in use", spec, netdev);
        return NULL;
    }
    if (mac) {
        if (net_parse_mac(mac, cfg.mac) < 0) {
            snprintf(err, errlen,
                     "-device %s: invalid mac '%s' (six hex bytes, not a multicast address)", spec,
                     mac);
            return NULL;
        }
    } else {
        vnet_default_mac(vm->nics_default_mac++, cfg.mac);
    }
    {
        /* QEMU's offload switches (on by default there too). */
        static const char *const names[] = {"csum", "host_tso4", "host_tso6", "guest_csum"};
        bool *offs[] = {&cfg.no_csum, &cfg.no_host_tso4, &cfg.no_host_tso6, &cfg.no_guest_csum};
        for (size_t i = 0; i < GW_ARRAY_SIZE(names); i++) {
            bool on;
            if (keyval_get_bool(kv, names[i], true, &on) < 0) {
                snprintf(err, errlen, "-device %s: %s must be on or off", spec, names[i]);
                return NULL;
            }
            *offs[i] = !on;
        }
    }
    cfg.backend = vm->netdev[idx];
    d = vnet_new(vm->mem, &cfg, why, sizeof(why));
    if (!d) {
        snprintf(err, errlen, "-device %s: %s", spec, why);
        return NULL;
    }
    vm->netdev_used[idx] = true;
    return d;
}

/* ---- announce --------------------------------------------------------------- */

/*
 * QEMU's announce-self (net/announce.c) on our loop: one timer per id, the
 * first round at once, then gaps of initial, initial+step, ... ms capped at
 * max.  Each round every selected NIC sends a RARP from the host side and
 * its driver, if it negotiated GUEST_ANNOUNCE, is asked to announce itself
 * (gratuitous ARPs / unsolicited NAs for every address the guest has, which
 * the host cannot know).  Rounds run from virt_announce_poll(), which the
 * loop calls only while the harts run, so the guest's driver can answer.
 */

#define VIRT_NS_PER_MS 1000000ull

static const struct {
    const char *name;
    unsigned min, max;
} virt_announce_limits[] = {
    /* QEMU's migrate-set-parameters checks (announce-initial, ...); QEMU's
     * announce-self takes anything, but rounds 0 or a negative gap mean
     * nothing useful, and a bound keeps a round from being days away. */
    {"initial", 0, 100000},
    {"max", 0, 100000},
    {"rounds", 1, 1000},
    {"step", 1, 10000},
};

void virt_announce_params_default(struct virt_announce_params *p)
{
    *p =
        (struct virt_announce_params){.initial_ms = 50, .max_ms = 550, .rounds = 5, .step_ms = 100};
}

/* The gap in ms after round `done` (1 = after the first), as QEMU's
 * qemu_announce_timer_step: initial + (done-1)*step, at most max. */
static uint64_t virt_announce_gap_ms(const struct virt_announce_timer *t, unsigned done)
{
    uint64_t gap = t->initial_ms + (uint64_t)(done - 1) * t->step_ms;

    return gap > t->max_ms ? t->max_ms : gap;
}

/* Does name select the NIC in slot i (its -device id or its -netdev id)? */
static bool virt_announce_names(const struct virtio_dev *d, const char *name)
{
    return (d->id[0] && !strcmp(d->id, name)) || !strcmp(vnet_netdev_id(d), name);
}

int virt_announce_start(struct virt *vm, const struct virt_announce_params *p, char *err,
                        size_t errlen)
{
    const unsigned vals[] = {p->initial_ms, p->max_ms, p->rounds, p->step_ms};
    const char *id = p->id ? p->id : "";
    struct virt_announce_timer *t = NULL;
    uint32_t nics = 0;

    for (size_t k = 0; k < GW_ARRAY_SIZE(virt_announce_limits); k++) {
        if (vals[k] < virt_announce_limits[k].min || vals[k] > virt_announce_limits[k].max) {
            snprintf(err, errlen, "Parameter '%s' expects a value between %u and %u",
                     virt_announce_limits[k].name, virt_announce_limits[k].min,
                     virt_announce_limits[k].max);
            return -EINVAL;
        }
    }
    if (strlen(id) >= VIRT_ANNOUNCE_ID_MAX) {
        snprintf(err, errlen, "Parameter 'id' is longer than %d bytes", VIRT_ANNOUNCE_ID_MAX - 1);
        return -EINVAL;
    }
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++) {
        const struct virtio_dev *d = vm->virtio[i].dev;
        if (d && d->device_id == VIRTIO_ID_NET && !p->ifaces)
            nics |= 1u << i;
    }
    /* QEMU skips names it does not know in silence; a typo would then
     * announce nothing and nobody would notice, so we refuse them. */
    for (unsigned k = 0; p->ifaces && k < p->nifaces; k++) {
        bool found = false;
        for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++) {
            const struct virtio_dev *d = vm->virtio[i].dev;
            if (d && d->device_id == VIRTIO_ID_NET && virt_announce_names(d, p->ifaces[k])) {
                nics |= 1u << i;
                found = true;
            }
        }
        if (!found) {
            snprintf(err, errlen, "Device '%s' not found", p->ifaces[k]);
            return -ENODEV;
        }
    }
    /* the run with this id is replaced (QEMU resets its named timer) */
    for (unsigned k = 0; k < VIRT_ANNOUNCE_TIMERS && !t; k++)
        if (vm->announce.timers[k].active && !strcmp(vm->announce.timers[k].id, id))
            t = &vm->announce.timers[k];
    for (unsigned k = 0; k < VIRT_ANNOUNCE_TIMERS && !t; k++)
        if (!vm->announce.timers[k].active)
            t = &vm->announce.timers[k];
    if (!t) {
        snprintf(err, errlen, "%d announce-self runs with other ids are in progress",
                 VIRT_ANNOUNCE_TIMERS);
        return -EBUSY;
    }
    *t = (struct virt_announce_timer){
        .active = true,
        .nics = nics,
        .initial_ms = p->initial_ms,
        .max_ms = p->max_ms,
        .step_ms = p->step_ms,
        .rounds = p->rounds,
        .left = p->rounds,
        .due = 0, /* the first round is due at once */
    };
    snprintf(t->id, sizeof(t->id), "%s", id);
    return 0;
}

/* One round of timer t: every selected NIC, then schedule the next. */
static void virt_announce_round(struct virt *vm, struct virt_announce_timer *t, uint64_t now)
{
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++) {
        struct virtio_dev *d = vm->virtio[i].dev;
        if (!(t->nics & (1u << i)) || !d || d->device_id != VIRTIO_ID_NET)
            continue;
        /* vnet_announce asks the guest where it can, else sends the RARP
         * itself; QEMU does both, so add the RARP when the guest was asked. */
        if (vnet_announce(d) == 1) {
            vm->announce.guest_asked++;
            vnet_announce_rarp(d);
        }
        vm->announce.rarps++;
    }
    vm->announce.rounds++;
    if (--t->left == 0) {
        t->active = false;
        return;
    }
    /* From now, not from the due time, as QEMU re-arms its timer: a round
     * held back while the VM was paused does not bunch up the next ones. */
    t->due = now + virt_announce_gap_ms(t, t->rounds - t->left) * VIRT_NS_PER_MS;
}

void virt_announce_poll(struct virt *vm, uint64_t now)
{
    for (unsigned k = 0; k < VIRT_ANNOUNCE_TIMERS; k++) {
        struct virt_announce_timer *t = &vm->announce.timers[k];
        if (t->active && now >= t->due)
            virt_announce_round(vm, t, now);
    }
}

uint64_t virt_announce_next_deadline(const struct virt *vm)
{
    uint64_t deadline = UINT64_MAX;

    for (unsigned k = 0; k < VIRT_ANNOUNCE_TIMERS; k++) {
        const struct virt_announce_timer *t = &vm->announce.timers[k];
        if (t->active && t->due < deadline)
            deadline = t->due;
    }
    return deadline;
}

/* An integer member of announce-self's arguments (QEMU's 'int'); out of
 * range values are left to virt_announce_start's checks. */
static json_t *virt_announce_arg_uint(json_t *args, const char *name, unsigned *out,
                                      struct qmp_error *err)
{
    json_t *v = json_object_get(args, name);
    json_int_t i;

    if (!v)
        return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is missing", name);
    if (!json_is_integer(v))
        return qmp_error_set(err, QMP_ERR_GENERIC,
                             "Invalid parameter type for '%s', expected: integer", name);
    i = json_integer_value(v);
    /* negative or huge: any value above every limit gets the range message */
    *out = i < 0 || i > 1000000000 ? 1000000000u : (unsigned)i;
    if (i < 0) {
        for (size_t k = 0; k < GW_ARRAY_SIZE(virt_announce_limits); k++)
            if (!strcmp(virt_announce_limits[k].name, name))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Parameter '%s' expects a value between %u and %u", name,
                                     virt_announce_limits[k].min, virt_announce_limits[k].max);
    }
    return NULL;
}

json_t *virt_qmp_announce_self(void *opaque, json_t *args, struct qmp_error *err)
{
    static const char *const ints[] = {"initial", "max", "rounds", "step"};
    struct virt *vm = opaque;
    struct virt_announce_params p = {0};
    unsigned *outs[] = {&p.initial_ms, &p.max_ms, &p.rounds, &p.step_ms};
    const char *names[VIRT_VIRTIO_COUNT * 4];
    json_t *v, *ifaces;
    const char *key;
    char why[300];
    int ret;

    json_object_foreach(args, key, v)
    {
        bool known = !strcmp(key, "interfaces") || !strcmp(key, "id");
        for (size_t k = 0; k < GW_ARRAY_SIZE(ints); k++)
            known = known || !strcmp(key, ints[k]);
        if (!known)
            return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected", key);
    }
    /* QEMU's AnnounceParameters: the four numbers are mandatory members */
    for (size_t k = 0; k < GW_ARRAY_SIZE(ints); k++)
        if (virt_announce_arg_uint(args, ints[k], outs[k], err) || err->cls)
            return NULL;
    v = json_object_get(args, "id");
    if (v && !json_is_string(v))
        return qmp_error_set(err, QMP_ERR_GENERIC,
                             "Invalid parameter type for 'id', expected: string");
    p.id = v ? json_string_value(v) : NULL;
    ifaces = json_object_get(args, "interfaces");
    if (ifaces) {
        size_t n;
        if (!json_is_array(ifaces))
            return qmp_error_set(err, QMP_ERR_GENERIC,
                                 "Invalid parameter type for 'interfaces', expected: array");
        n = json_array_size(ifaces);
        /* a machine has at most VIRT_VIRTIO_COUNT NICs; allow repeats, but
         * bound what a client can make us walk */
        if (n > GW_ARRAY_SIZE(names))
            return qmp_error_set(err, QMP_ERR_GENERIC,
                                 "Parameter 'interfaces' has more than %zu names",
                                 GW_ARRAY_SIZE(names));
        for (size_t k = 0; k < n; k++) {
            json_t *s = json_array_get(ifaces, k);
            if (!json_is_string(s))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Invalid parameter type for 'interfaces[%zu]', expected: "
                                     "string",
                                     k);
            names[k] = json_string_value(s);
        }
        p.ifaces = names;
        p.nifaces = (unsigned)n;
    }
    ret = virt_announce_start(vm, &p, why, sizeof(why));
    if (ret == -ENODEV)
        return qmp_error_set(err, QMP_ERR_DEV_NOT_FOUND, "%s", why);
    if (ret < 0)
        return qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
    return NULL;
}

/* ---- frames across a live migration's switchover (docs/net.md) ------------ */

/* The NIC on netdev k, or NULL. */
static struct virtio_dev *virt_net_nic_of(struct virt *vm, unsigned k)
{
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++) {
        struct virtio_dev *d = vm->virtio[i].dev;

        if (d && d->device_id == VIRTIO_ID_NET &&
            !strcmp(vnet_netdev_id(d), net_backend_id(vm->netdev[k])))
            return d;
    }
    return NULL;
}

unsigned virt_net_fwd_ports(struct virt *vm, struct mig_net_port *out, unsigned max)
{
    unsigned n = 0;

    for (unsigned k = 0; k < vm->nnetdevs && n < max && k < MIG_FRAME_PORTS; k++) {
        struct virtio_dev *d = virt_net_nic_of(vm, k);
        int fd = net_backend_fwd_fd(vm->netdev[k]);

        if (!d || fd < 0)
            continue; /* no NIC, or a backend whose state travels (user) */
        out[n].port = k;
        out[n].fd = fd;
        vnet_get_mac(d, out[n].mac);
        n++;
    }
    return n;
}

long virt_net_fwd_take(struct virt *vm, unsigned port, uint8_t *buf, size_t cap)
{
    return port < vm->nnetdevs ? net_backend_take(vm->netdev[port], buf, cap) : -EINVAL;
}

void virt_net_fwd_requeue(struct virt *vm, unsigned port, const uint8_t *frame, size_t len)
{
    if (port < vm->nnetdevs)
        net_backend_requeue(vm->netdev[port], frame, len);
}

int virt_net_fwd_inject(struct virt *vm, unsigned port, const uint8_t *frame, size_t len)
{
    /* only a port that forwards here too: the source's configuration is
     * ours (the config hash), but a hostile stream could name any */
    if (port >= vm->nnetdevs || net_backend_fwd_fd(vm->netdev[port]) < 0 ||
        !virt_net_nic_of(vm, port))
        return -EINVAL;
    net_backend_inject(vm->netdev[port], frame, len);
    return 0;
}
