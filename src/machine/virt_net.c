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
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "machine/virt_int.h"
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

/* ---- announce (placeholder until implemented) ------------------------------ */

void virt_announce_params_default(struct virt_announce_params *p)
{
    *p =
        (struct virt_announce_params){.initial_ms = 50, .max_ms = 550, .rounds = 5, .step_ms = 100};
}

int virt_announce_start(struct virt *vm, const struct virt_announce_params *p, char *err,
                        size_t errlen)
{
    (void)vm;
    (void)p;
    snprintf(err, errlen, "announce is not implemented yet");
    return -ENOSYS;
}

void virt_announce_poll(struct virt *vm, uint64_t now)
{
    (void)vm;
    (void)now;
}

uint64_t virt_announce_next_deadline(const struct virt *vm)
{
    (void)vm;
    return UINT64_MAX;
}

json_t *virt_qmp_announce_self(void *opaque, json_t *args, struct qmp_error *err)
{
    (void)opaque;
    (void)args;
    return qmp_error_set(err, QMP_ERR_GENERIC, "announce-self is not implemented yet");
}
