/*
 * The virt machine's state as a stream (docs/state.md): which sections a
 * saved VM holds, in which order, and how a stream is checked against this
 * machine and loaded into it.
 *
 *   header (configuration hash)
 *   "config"      the configuration text the hash covers
 *   RAM batches   every non-zero page (zero pages are elided)
 *   "virt"        machine: harts asleep in WFI
 *   "hart" i      each hart
 *   "clint", "plic", "uart", "rtc", "pcie"
 *   "virtio-mmio" i   each of the 8 slots (transport + device)
 *   EOF           XXH3-64 of everything before it
 *
 * Loading validates as it goes and the machine only runs once the EOF
 * checksum matched and every component was found exactly once; on any
 * error the caller throws the half-loaded machine away (a process that was
 * started with -incoming exits; nothing ever ran).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
        state_put_bytes(&b, line, (size_t)n);                                                        \
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
};

static unsigned virt_comp_count(const struct virt *vm, const struct virt_comp *c)
{
    if (c->save == c_hart_save)
        return vm->nharts;
    if (c->save == c_virtio_save)
        return VIRT_VIRTIO_COUNT;
    return 1;
}

/* Every component's section into s. */
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
            state_write_section(s, STATE_SEC_DEVICE, c->name, i, (uint16_t)c->version, b.data, b.len);
        }
    }
    state_buf_fini(&b);
    return state_stream_error(s);
}

/* ---- RAM ------------------------------------------------------------------------------ */

static int virt_save_ram(struct virt *vm, struct state_stream *s, struct virt_save_stats *st,
                         const _Atomic bool *cancel)
{
    struct state_ram_encoder enc;
    struct state_buf b;
    uint32_t pages[STATE_RAM_BATCH];
    unsigned n = 0;
    const uint8_t *ram = vm->mem->host;
    uint64_t npages = vm->mem->npages;

    if (state_ram_encoder_init(&enc) < 0) {
        state_stream_fail(s, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    /* never-populated pages are zero: skip them without reading */
    uint8_t pop[4096];
    uint64_t pop_base = UINT64_MAX;

    state_buf_init(&b);
    for (uint64_t p = 0; p <= npages && !state_stream_error(s); p++) {
        bool flush = p == npages || n == STATE_RAM_BATCH;

        if (flush && n) {
            state_buf_reset(&b);
            state_ram_encode(&enc, ram, pages, n, true, &b);
            state_write_section(s, STATE_SEC_RAM, NULL, 0, 1, b.data, b.len);
            __atomic_fetch_add(&st->ram_bytes, b.len, __ATOMIC_RELAXED);
            n = 0;
            if (cancel && atomic_load(cancel)) {
                state_stream_fail(s, -ECANCELED, "cancelled");
                break;
            }
        }
        if (p == npages)
            break;
        if (p - pop_base >= sizeof(pop) || pop_base == UINT64_MAX) {
            pop_base = p;
            (void)gmem_populated(vm->mem, p, npages - p < sizeof(pop) ? npages - p : sizeof(pop),
                                 pop);
        }
        if (!pop[p - pop_base] || state_page_is_zero(ram + p * GMEM_PAGE_SIZE)) {
            __atomic_fetch_add(&st->pages_zero, 1, __ATOMIC_RELAXED);
            continue;
        }
        pages[n++] = (uint32_t)p;
        __atomic_fetch_add(&st->pages_normal, 1, __ATOMIC_RELAXED);
    }
    state_buf_fini(&b);
    state_ram_encoder_fini(&enc);
    return state_stream_error(s);
}

int virt_state_save(struct virt *vm, struct state_stream *s, struct virt_save_stats *st,
                    const _Atomic bool *cancel)
{
    struct state_header h = {.version = STATE_FORMAT_VERSION, .page_size = STATE_PAGE_SIZE};
    char *cfg = virt_state_config_text(vm);

    memset(st, 0, sizeof(*st));
    if (!cfg) {
        state_stream_fail(s, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    h.config_hash = XXH3_64bits(cfg, strlen(cfg));
    state_write_header(s, &h);
    state_write_section(s, STATE_SEC_CONFIG, "config", 0, 1, cfg, strlen(cfg));
    free(cfg);
    virt_save_ram(vm, s, st, cancel);
    virt_state_save_components(vm, s);
    state_write_eof(s);
    return state_stream_error(s);
}

/* ---- load --------------------------------------------------------------------------- */

/* Explain a configuration mismatch: the first line that differs. */
static void virt_config_diff(const char *saved, const char *ours, char *err, size_t errlen)
{
    const char *a = saved, *b = ours;

    while (*a || *b) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");

        if (la != lb || memcmp(a, b, la) != 0) {
            snprintf(err, errlen,
                     "the state was saved by a differently configured machine: "
                     "saved '%.*s', this machine '%.*s'",
                     (int)la, a, (int)lb, b);
            return;
        }
        a += la + (a[la] == '\n');
        b += lb + (b[lb] == '\n');
    }
    snprintf(err, errlen, "the state's configuration hash does not match its configuration");
}

/* Drop every page of RAM: what the stream does not send is zero. */
static void virt_ram_clear(struct virt *vm)
{
    /* anonymous private memory: MADV_DONTNEED gives fresh zero pages */
    if (madvise(vm->mem->host, vm->mem->size, MADV_DONTNEED) < 0)
        memset(vm->mem->host, 0, vm->mem->size);
}

static void virt_zero_run(void *opaque, uint64_t first, uint64_t count)
{
    struct virt *vm = opaque;

    memset(vm->mem->host + first * GMEM_PAGE_SIZE, 0, count * GMEM_PAGE_SIZE);
}

int virt_state_load(struct virt *vm, struct state_stream *s, char *err, size_t errlen)
{
    struct state_header h;
    struct state_section sec;
    struct state_buf b;
    uint8_t *scratch = malloc((size_t)STATE_RAM_BATCH * STATE_PAGE_SIZE);
    char *ours = virt_state_config_text(vm);
    uint64_t our_hash;
    int ret = -EPROTO;

    err[0] = '\0';
    state_buf_init(&b);
    if (!scratch || !ours) {
        snprintf(err, errlen, "out of memory");
        ret = -ENOMEM;
        goto out;
    }
    our_hash = XXH3_64bits(ours, strlen(ours));
    if (state_read_header(s, &h) < 0)
        goto stream_err;
    if (state_read_section(s, &sec) < 0)
        goto stream_err;
    if (sec.type != STATE_SEC_CONFIG) {
        snprintf(err, errlen, "the state stream does not start with its configuration");
        goto out;
    }
    if (state_read_payload(s, &sec, &b) < 0)
        goto stream_err;
    if (h.config_hash != our_hash) {
        char *saved = strndup((const char *)b.data, b.len);

        virt_config_diff(saved ? saved : "", ours, err, errlen);
        free(saved);
        goto out;
    }
    if (b.len != strlen(ours) || memcmp(b.data, ours, b.len) != 0) {
        snprintf(err, errlen, "the state's configuration text does not match its hash");
        goto out;
    }
    virt_ram_clear(vm);

    {
        /* found[k] counts instances of component k; each must appear once */
        unsigned found[GW_ARRAY_SIZE(virt_comps)] = {0};
        uint64_t *inst_seen[GW_ARRAY_SIZE(virt_comps)] = {0};
        size_t bitmap_words = (vm->nharts + 63) / 64 + 1;
        bool fail = false;

        for (size_t k = 0; k < GW_ARRAY_SIZE(virt_comps); k++) {
            inst_seen[k] = calloc(bitmap_words, sizeof(uint64_t));
            if (!inst_seen[k])
                fail = true;
        }
        while (!fail) {
            if (state_read_section(s, &sec) < 0) {
                fail = true;
                break;
            }
            if (sec.type == STATE_SEC_EOF) {
                if (state_read_eof(s, &sec) < 0) {
                    fail = true;
                    break;
                }
                /* a file ends here; a live stream's socket stays open for the
                 * commit protocol */
                if (!(h.flags & STATE_F_LIVE) && !state_stream_at_eof(s)) {
                    state_stream_fail(s, -EPROTO, "data after the end of the state");
                    fail = true;
                }
                break;
            }
            if (state_read_payload(s, &sec, &b) < 0) {
                fail = true;
                break;
            }
            switch (sec.type) {
            case STATE_SEC_RAM:
                if (state_ram_decode(&b, vm->mem->host, vm->mem->npages, scratch) < 0) {
                    snprintf(err, errlen, "RAM at byte %llu: %s",
                             (unsigned long long)state_stream_offset(s), state_buf_msg(&b));
                    ret = -EPROTO;
                    goto out_seen;
                }
                break;
            case STATE_SEC_ZERO:
                if (state_zero_decode(&b, vm->mem->npages, virt_zero_run, vm) < 0) {
                    snprintf(err, errlen, "zero pages: %s", state_buf_msg(&b));
                    goto out_seen;
                }
                break;
            case STATE_SEC_ROUND: {
                uint32_t round = state_get_u32(&b);

                if (state_buf_error(&b)) {
                    snprintf(err, errlen, "ROUND marker: %s", state_buf_msg(&b));
                    goto out_seen;
                }
                if (vm->load_round_cb)
                    vm->load_round_cb(vm->load_round_opaque, round);
                break;
            }
            case STATE_SEC_CONFIG:
                snprintf(err, errlen, "a second configuration section");
                goto out_seen;
            case STATE_SEC_DEVICE: {
                size_t k;
                const struct virt_comp *c = NULL;

                for (k = 0; k < GW_ARRAY_SIZE(virt_comps); k++)
                    if (!strcmp(virt_comps[k].name, sec.name)) {
                        c = &virt_comps[k];
                        break;
                    }
                if (!c) {
                    snprintf(err, errlen, "unknown component '%s' in the state", sec.name);
                    goto out_seen;
                }
                if (sec.instance >= virt_comp_count(vm, c)) {
                    snprintf(err, errlen, "%s %u: this machine has %u", sec.name, sec.instance,
                             virt_comp_count(vm, c));
                    goto out_seen;
                }
                if (inst_seen[k][sec.instance / 64] & (1ull << (sec.instance % 64))) {
                    snprintf(err, errlen, "%s %u appears twice", sec.name, sec.instance);
                    goto out_seen;
                }
                if (sec.version == 0 || sec.version > c->version) {
                    snprintf(err, errlen, "%s %u: section version %u, this godwit knows 1..%u",
                             sec.name, sec.instance, sec.version, c->version);
                    goto out_seen;
                }
                if (c->load(vm, sec.instance, &b, sec.version) < 0 ||
                    state_buf_expect_end(&b, sec.name) < 0) {
                    snprintf(err, errlen, "%s %u: %s", sec.name, sec.instance,
                             state_buf_msg(&b)[0] ? state_buf_msg(&b) : "refused");
                    goto out_seen;
                }
                inst_seen[k][sec.instance / 64] |= 1ull << (sec.instance % 64);
                found[k]++;
                break;
            }
            default: snprintf(err, errlen, "unexpected section type %u", sec.type); goto out_seen;
            }
        }
        if (fail) {
            snprintf(err, errlen, "%s", state_stream_msg(s)[0] ? state_stream_msg(s) : "out of memory");
            goto out_seen;
        }
        for (size_t k = 0; k < GW_ARRAY_SIZE(virt_comps); k++)
            if (found[k] != virt_comp_count(vm, &virt_comps[k])) {
                snprintf(err, errlen, "the state lacks %u of %u '%s' sections",
                         virt_comp_count(vm, &virt_comps[k]) - found[k],
                         virt_comp_count(vm, &virt_comps[k]), virt_comps[k].name);
                goto out_seen;
            }
        ret = 0;
    out_seen:
        for (size_t k = 0; k < GW_ARRAY_SIZE(virt_comps); k++)
            free(inst_seen[k]);
    }
    goto out;

stream_err:
    snprintf(err, errlen, "%s", state_stream_msg(s));
    ret = state_stream_error(s) ? state_stream_error(s) : -EPROTO;
out:
    if (ret == 0) {
        /* RAM changed behind the harts' backs */
        for (unsigned i = 0; i < vm->nharts; i++)
            rv_hart_flush_caches(vm->harts[i]);
    } else if (ret == -EPROTO && !err[0]) {
        snprintf(err, errlen, "malformed state");
    }
    state_buf_fini(&b);
    free(scratch);
    free(ours);
    return ret;
}

/* ---- hash ----------------------------------------------------------------------------- */

uint64_t virt_state_hash(struct virt *vm)
{
    XXH3_state_t *x = XXH3_createState();
    struct state_buf b;
    uint64_t h;

    if (!x)
        return 0;
    XXH3_64bits_reset(x);
    /* RAM by content: the index and bytes of every non-zero page (pages
     * never populated are zero and are not read, see gmem_populated) */
    for (uint64_t p = 0; p < vm->mem->npages; p += 4096) {
        uint8_t pop[4096];
        uint64_t n = vm->mem->npages - p < 4096 ? vm->mem->npages - p : 4096;

        (void)gmem_populated(vm->mem, p, n, pop);
        for (uint64_t i = 0; i < n; i++) {
            const uint8_t *page = vm->mem->host + (p + i) * GMEM_PAGE_SIZE;
            uint64_t idx = p + i;

            if (!pop[i] || state_page_is_zero(page))
                continue;
            XXH3_64bits_update(x, &idx, sizeof(idx));
            XXH3_64bits_update(x, page, GMEM_PAGE_SIZE);
        }
    }
    state_buf_init(&b);
    for (size_t k = 0; k < GW_ARRAY_SIZE(virt_comps); k++) {
        const struct virt_comp *c = &virt_comps[k];

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
