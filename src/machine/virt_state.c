/*
 * The virt machine's part of a state stream (docs/state.md): its
 * configuration text, and its components, in this order after RAM:
 *
 *   "virt"        machine: harts asleep in WFI
 *   "hart" i      each hart
 *   "clint", "plic", "uart", "rtc", "pcie"
 *   "virtio-mmio" i   each of the 8 slots (transport + device)
 *   "netdev-user" i   each -netdev user backend, in -netdev order (libslirp's
 *                     state: DHCP leases; net.h)
 *
 * The migration engine (src/migration) writes and reads the stream around
 * them and calls these through the board's mig_machine_ops
 * (virt_migration.c).  A load checks each component's section as it comes
 * and, at the end, that every component came exactly once; on any error the
 * half-loaded machine is thrown away (nothing ever ran).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "machine/virt_fdt.h"
#include "machine/virt_int.h"
#include "state/state_format.h"

#define VIRT_STATE_VERSION 1 /* the "virt" section */

/* ---- configuration ------------------------------------------------------------- */

char *virt_state_config_text(const struct virt *vm)
{
    struct state_buf b;
    char line[256];
    int n;

    state_buf_init(&b);
#define ADD(...)                                                                                   \
    do {                                                                                           \
        n = snprintf(line, sizeof(line), __VA_ARGS__);                                             \
        state_put_bytes(&b, line, (size_t)n);                                                      \
    } while (0)
    ADD("machine=virt\n");
    ADD("ram=%llu\n", (unsigned long long)vm->cfg.ram_size);
    ADD("harts=%u\n", vm->nharts);
    ADD("isa=%s\n", VIRT_FDT_ISA);
    ADD("pmp=16\n");
    for (unsigned i = 0; i < VIRT_VIRTIO_COUNT; i++) {
        const struct virtio_dev *d = vm->virtio[i].dev;

        if (!d)
            continue;
        ADD("virtio%u=%s features=0x%llx queues=%u", i, d->ops->name,
            (unsigned long long)virtio_host_features(d), d->nvqs);
        for (unsigned q = 0; q < d->nvqs; q++)
            ADD("%c%u", q ? ',' : ':', d->vq[q].num_max);
        ADD(" config=%u\n", d->config_len);
    }
#undef ADD
    state_put_u8(&b, 0);
    if (state_buf_error(&b)) {
        state_buf_fini(&b);
        return NULL;
    }
    return (char *)b.data; /* owned by the caller now */
}

uint64_t virt_state_config_hash(const struct virt *vm)
{
    char *t = virt_state_config_text(vm);
    uint64_t h = t ? XXH3_64bits(t, strlen(t)) : 0;

    free(t);
    return h;
}

/* ---- components ---------------------------------------------------------------------- */

static void virt_machine_save(const struct virt *vm, struct state_buf *b)
{
    state_put_u32(b, vm->nharts);
    for (unsigned i = 0; i < vm->nharts; i++)
        state_put_bool(b, vm->hart_wfi[i]);
}

static int virt_machine_load(struct virt *vm, struct state_buf *b, unsigned version)
{
    uint32_t n;

    if (version > VIRT_STATE_VERSION) {
        state_buf_fail(b, -EINVAL, "virt: section version %u, this godwit knows %u", version,
                       VIRT_STATE_VERSION);
        return -EINVAL;
    }
    n = state_get_u32(b);
    if (!b->err && n != vm->nharts)
        state_buf_fail(b, -EINVAL, "virt: %u harts saved, this machine has %u", n, vm->nharts);
    for (unsigned i = 0; i < vm->nharts && !b->err; i++)
        vm->hart_wfi[i] = state_get_bool(b);
    return state_buf_expect_end(b, "virt");
}

/* One saveable component: name, instance count, save, load. */
struct virt_comp {
    const char *name;
    unsigned version;
    void (*save)(struct virt *vm, unsigned i, struct state_buf *b);
    int (*load)(struct virt *vm, unsigned i, struct state_buf *b, unsigned version);
};

static void c_virt_save(struct virt *vm, unsigned i, struct state_buf *b)
{
    (void)i;
    virt_machine_save(vm, b);
}
static int c_virt_load(struct virt *vm, unsigned i, struct state_buf *b, unsigned v)
{
    (void)i;
    return virt_machine_load(vm, b, v);
}
static void c_hart_save(struct virt *vm, unsigned i, struct state_buf *b)
{
    rv_hart_save(vm->harts[i], b);
}
static int c_hart_load(struct virt *vm, unsigned i, struct state_buf *b, unsigned v)
{
    return rv_hart_load(vm->harts[i], b, v);
}
static void c_clint_save(struct virt *vm, unsigned i, struct state_buf *b)
{
    (void)i;
    clint_save(vm->clint, b); /* a stopped machine's clock stands still (clint_freeze) */
}
static int c_clint_load(struct virt *vm, unsigned i, struct state_buf *b, unsigned v)
{
    (void)i;
    return clint_load(vm->clint, b, v);
}
static void c_plic_save(struct virt *vm, unsigned i, struct state_buf *b)
{
    (void)i;
    plic_save(vm->plic, b);
}
static int c_plic_load(struct virt *vm, unsigned i, struct state_buf *b, unsigned v)
{
    (void)i;
    return plic_load(vm->plic, b, v);
}
static void c_uart_save(struct virt *vm, unsigned i, struct state_buf *b)
{
    (void)i;
    uart_save(vm->uart, b);
}
static int c_uart_load(struct virt *vm, unsigned i, struct state_buf *b, unsigned v)
{
    (void)i;
    return uart_load(vm->uart, b, v);
}
static void c_rtc_save(struct virt *vm, unsigned i, struct state_buf *b)
{
    (void)i;
    goldfish_rtc_save(vm->rtc, b);
}
static int c_rtc_load(struct virt *vm, unsigned i, struct state_buf *b, unsigned v)
{
    (void)i;
    return goldfish_rtc_load(vm->rtc, b, v);
}
static void c_pcie_save(struct virt *vm, unsigned i, struct state_buf *b)
{
    (void)i;
    pcie_host_save(vm->pcie, b);
}
static int c_pcie_load(struct virt *vm, unsigned i, struct state_buf *b, unsigned v)
{
    (void)i;
    return pcie_host_load(vm->pcie, b, v);
}
static void c_virtio_save(struct virt *vm, unsigned i, struct state_buf *b)
{
    virtio_mmio_save(&vm->virtio[i], b);
}
static int c_virtio_load(struct virt *vm, unsigned i, struct state_buf *b, unsigned v)
{
    return virtio_mmio_load(&vm->virtio[i], b, v);
}
static void c_netdev_save(struct virt *vm, unsigned i, struct state_buf *b)
{
    net_backend_save(virt_net_migrating(vm, i), b);
}
static int c_netdev_load(struct virt *vm, unsigned i, struct state_buf *b, unsigned v)
{
    return net_backend_load(virt_net_migrating(vm, i), b, v);
}

/* Save and load order: the machine, the harts, then the interrupt
 * controllers before the devices that drive their lines. */
static const struct virt_comp virt_comps[] = {
    {"virt", VIRT_STATE_VERSION, c_virt_save, c_virt_load},
    {"hart", RV_HART_STATE_VERSION, c_hart_save, c_hart_load},
    {"clint", CLINT_STATE_VERSION, c_clint_save, c_clint_load},
    {"plic", PLIC_STATE_VERSION, c_plic_save, c_plic_load},
    {"uart", UART_STATE_VERSION, c_uart_save, c_uart_load},
    {"rtc", GOLDFISH_RTC_STATE_VERSION, c_rtc_save, c_rtc_load},
    {"pcie", PCIE_HOST_STATE_VERSION, c_pcie_save, c_pcie_load},
    {"virtio-mmio", VIRTIO_MMIO_STATE_VERSION, c_virtio_save, c_virtio_load},
    {"netdev-user", NET_STATE_VERSION, c_netdev_save, c_netdev_load},
};

_Static_assert(GW_ARRAY_SIZE(virt_comps) == VIRT_STATE_COMPONENTS, "VIRT_STATE_COMPONENTS");

static unsigned virt_comp_count(const struct virt *vm, const struct virt_comp *c)
{
    if (c->save == c_hart_save)
        return vm->nharts;
    if (c->save == c_virtio_save)
        return VIRT_VIRTIO_COUNT;
    if (c->save == c_netdev_save)
        return virt_net_migrating_count(vm);
    return 1;
}

/* Every component's section into s (ops->save_components). */
int virt_state_save_components(struct virt *vm, struct state_stream *s)
{
    struct state_buf b;

    state_buf_init(&b);
    for (size_t k = 0; k < GW_ARRAY_SIZE(virt_comps) && !state_stream_error(s); k++) {
        const struct virt_comp *c = &virt_comps[k];

        for (unsigned i = 0; i < virt_comp_count(vm, c); i++) {
            state_buf_reset(&b);
            c->save(vm, i, &b);
            if (state_buf_error(&b)) {
                state_stream_fail(s, state_buf_error(&b), "saving %s %u: %s", c->name, i,
                                  state_buf_msg(&b));
                break;
            }
            state_write_section(s, STATE_SEC_DEVICE, c->name, i, (uint16_t)c->version, b.data,
                                b.len);
        }
    }
    state_buf_fini(&b);
    return state_stream_error(s);
}

/* ---- load --------------------------------------------------------------------------- */

void virt_state_load_begin(struct virt *vm)
{
    memset(vm->load_seen, 0, sizeof(vm->load_seen));
}

int virt_state_load_component(struct virt *vm, const struct state_section *sec, struct state_buf *b,
                              char *err, size_t errlen)
{
    const struct virt_comp *c = NULL;
    size_t k;

    for (k = 0; k < GW_ARRAY_SIZE(virt_comps); k++)
        if (!strcmp(virt_comps[k].name, sec->name)) {
            c = &virt_comps[k];
            break;
        }
    if (!c) {
        snprintf(err, errlen, "unknown component '%s' in the state", sec->name);
        return -EPROTO;
    }
    if (sec->instance >= virt_comp_count(vm, c)) {
        snprintf(err, errlen, "%s %u: this machine has %u", sec->name, sec->instance,
                 virt_comp_count(vm, c));
        return -EPROTO;
    }
    if (vm->load_seen[k][sec->instance / 64] & (1ull << (sec->instance % 64))) {
        snprintf(err, errlen, "%s %u appears twice", sec->name, sec->instance);
        return -EPROTO;
    }
    if (sec->version == 0 || sec->version > c->version) {
        snprintf(err, errlen, "%s %u: section version %u, this godwit knows 1..%u", sec->name,
                 sec->instance, sec->version, c->version);
        return -EPROTO;
    }
    if (c->load(vm, sec->instance, b, sec->version) < 0 || state_buf_expect_end(b, sec->name) < 0) {
        snprintf(err, errlen, "%s %u: %s", sec->name, sec->instance,
                 state_buf_msg(b)[0] ? state_buf_msg(b) : "refused");
        return -EPROTO;
    }
    vm->load_seen[k][sec->instance / 64] |= 1ull << (sec->instance % 64);
    return 0;
}

int virt_state_load_end(struct virt *vm, char *err, size_t errlen)
{
    for (size_t k = 0; k < GW_ARRAY_SIZE(virt_comps); k++) {
        unsigned want = virt_comp_count(vm, &virt_comps[k]), found = 0;

        for (unsigned i = 0; i < want; i++)
            found += (vm->load_seen[k][i / 64] >> (i % 64)) & 1;
        if (found != want) {
            snprintf(err, errlen, "the state lacks %u of %u '%s' sections", want - found, want,
                     virt_comps[k].name);
            return -EPROTO;
        }
    }
    /* RAM changed behind the harts' backs */
    for (unsigned i = 0; i < vm->nharts; i++)
        rv_hart_flush_caches(vm->harts[i]);
    return 0;
}

/* ---- hash ----------------------------------------------------------------------------- */

uint64_t virt_state_hash(struct virt *vm)
{
    XXH3_state_t *x = XXH3_createState();
    struct gmem_page_iter it;
    struct state_buf b;
    uint64_t h, p;

    if (!x)
        return 0;
    XXH3_64bits_reset(x);
    /* RAM by content: the index and bytes of every page that holds data */
    gmem_page_iter_init(&it, vm->mem);
    while ((p = gmem_page_iter_next(&it)) != UINT64_MAX) {
        XXH3_64bits_update(x, &p, sizeof(p));
        XXH3_64bits_update(x, vm->mem->host + p * GMEM_PAGE_SIZE, GMEM_PAGE_SIZE);
    }
    state_buf_init(&b);
    for (size_t k = 0; k < GW_ARRAY_SIZE(virt_comps); k++) {
        const struct virt_comp *c = &virt_comps[k];

        /* A user netdev's stack is not the VM's own state: its IP id counter
         * moves whenever slirp sends, even with the VM stopped. */
        if (c->save == c_netdev_save)
            continue;
        for (unsigned i = 0; i < virt_comp_count(vm, c); i++) {
            state_buf_reset(&b);
            c->save(vm, i, &b);
            /* The clock is left out: after a live migration the destination's
             * mtime has moved on by the switchover pause (docs/state.md), yet
             * the VM is the same.  The CLINT section starts u32 harts, u64 mtime. */
            if (c->save == c_clint_save && b.len >= 12)
                memset(b.data + 4, 0, 8);
            XXH3_64bits_update(x, c->name, strlen(c->name));
            XXH3_64bits_update(x, b.data, b.len);
        }
    }
    state_buf_fini(&b);
    h = XXH3_64bits_digest(x);
    XXH3_freeState(x);
    return h;
}
