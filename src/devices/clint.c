/* CLINT: msip, mtimecmp and mtime registers and the MSIP/MTIP levels; see
 * clint.h.  Access sizes and reset behaviour match QEMU 7.2's virt ACLINT. */
#include "devices/clint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hart/hart.h"

static uint64_t clint_now(const struct clint *c)
{
    return c->host.now_ns ? c->host.now_ns(c->host.opaque) : gw_now_ns();
}

/* 10 MHz ticks since base (host time before base counts as tick 0). */
static uint64_t clint_ticks(const struct clint *c, uint64_t now)
{
    return now > c->base_ns ? (now - c->base_ns) / CLINT_NS_PER_TICK : 0;
}

static uint64_t clint_mtime_at(const struct clint *c, uint64_t now)
{
    if (c->frozen)
        return c->frozen_mtime;
    return clint_ticks(c, now) + c->st.delta;
}

uint64_t clint_mtime(const struct clint *c)
{
    return clint_mtime_at(c, clint_now(c));
}

static void clint_set_line(struct clint *c, unsigned hart, unsigned irq, bool level, bool *cache)
{
    if (*cache == level)
        return;
    *cache = level;
    if (c->host.set_irq)
        c->host.set_irq(c->host.opaque, hart, irq, level);
}

static void clint_update_hart(struct clint *c, unsigned hart, uint64_t mtime)
{
    clint_set_line(c, hart, RV_IRQ_MTI, mtime >= c->st.harts[hart].mtimecmp, &c->mtip[hart]);
}

uint64_t clint_update(struct clint *c)
{
    uint64_t mtime = clint_mtime(c);

    for (unsigned i = 0; i < c->nharts; i++)
        clint_update_hart(c, i, mtime);
    return mtime;
}

void clint_set_mtime(struct clint *c, uint64_t mtime)
{
    c->st.delta = mtime - clint_ticks(c, clint_now(c));
    if (c->frozen)
        c->frozen_mtime = mtime;
    clint_update(c);
}

void clint_freeze(struct clint *c, bool frozen)
{
    if (frozen == c->frozen)
        return;
    if (frozen) {
        c->frozen_mtime = clint_mtime(c);
        c->frozen = true;
    } else {
        c->frozen = false;
        clint_set_mtime(c, c->frozen_mtime); /* continue from where it stood */
    }
}

uint64_t clint_next_deadline(const struct clint *c)
{
    if (c->frozen)
        return UINT64_MAX; /* time stands still: no timer can fire */
    uint64_t now = clint_now(c);
    uint64_t mtime = clint_mtime_at(c, now);
    uint64_t into_tick = now > c->base_ns ? (now - c->base_ns) % CLINT_NS_PER_TICK : 0;
    uint64_t best = UINT64_MAX;

    for (unsigned i = 0; i < c->nharts; i++) {
        uint64_t cmp = c->st.harts[i].mtimecmp, ticks, at;
        if (cmp <= mtime) {
            if (!c->mtip[i])
                return now; /* due, not yet raised */
            continue;
        }
        ticks = cmp - mtime;
        if (ticks > (UINT64_MAX - now) / CLINT_NS_PER_TICK)
            continue; /* beyond the end of host time */
        at = now + ticks * CLINT_NS_PER_TICK - into_tick;
        if (at < best)
            best = at;
    }
    return best;
}

void clint_reset(struct clint *c)
{
    uint64_t mtime;

    c->st.delta = 0;
    mtime = clint_mtime(c);
    /* The harts were reset too (mip cleared): send every level afresh. */
    for (unsigned i = 0; i < c->nharts; i++) {
        c->st.harts[i].msip = 0;
        c->msip_level[i] = true;
        clint_set_line(c, i, RV_IRQ_MSI, false, &c->msip_level[i]);
        c->mtip[i] = !(mtime >= c->st.harts[i].mtimecmp);
        clint_update_hart(c, i, mtime);
    }
}

struct clint *clint_new(const struct clint_host *host, unsigned nharts)
{
    struct clint *c;

    if (nharts == 0 || nharts > CLINT_MAX_HARTS)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (host)
        c->host = *host;
    c->nharts = nharts;
    c->base_ns = clint_now(c);
    /* mtimecmp = 0 raises MTIP at once, as on QEMU where mip.MTIP is set
     * at power-on. */
    clint_reset(c);
    return c;
}

void clint_free(struct clint *c)
{
    free(c);
}

static int clint_msip_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    struct clint *c = opaque;
    uint64_t hart = off / 4;

    (void)size;
    *val = hart < c->nharts ? c->st.harts[hart].msip : 0;
    return 0;
}

static int clint_msip_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct clint *c = opaque;
    uint64_t hart = off / 4;

    (void)size;
    if (hart >= c->nharts)
        return 0;
    c->st.harts[hart].msip = (uint32_t)(val & 1);
    clint_set_line(c, (unsigned)hart, RV_IRQ_MSI, val & 1, &c->msip_level[hart]);
    return 0;
}

/* Merge a 4- or 8-byte write at byte offset (off & 7) into a 64-bit register. */
static uint64_t clint_merge(uint64_t old, uint64_t off, unsigned size, uint64_t val)
{
    if (size == 8)
        return val;
    if (off & 4)
        return (old & 0xffffffffull) | (val << 32);
    return (old & ~0xffffffffull) | (val & 0xffffffffull);
}

static uint64_t clint_extract(uint64_t reg, uint64_t off, unsigned size)
{
    if (size == 8)
        return reg;
    return (off & 4) ? reg >> 32 : reg & 0xffffffffull;
}

static int clint_mtimer_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    struct clint *c = opaque;
    uint64_t reg = 0;

    if (off >= CLINT_MTIME_OFF) {
        reg = clint_mtime(c);
        /* A guest that reads mtime >= mtimecmp must also find MTIP set. */
        for (unsigned i = 0; i < c->nharts; i++)
            clint_update_hart(c, i, reg);
    } else {
        uint64_t hart = off / 8;
        if (hart < c->nharts)
            reg = c->st.harts[hart].mtimecmp;
    }
    *val = clint_extract(reg, off, size);
    return 0;
}

static int clint_mtimer_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct clint *c = opaque;

    if (off >= CLINT_MTIME_OFF) {
        clint_set_mtime(c, clint_merge(clint_mtime(c), off, size, val));
    } else {
        uint64_t hart = off / 8;
        if (hart >= c->nharts)
            return 0;
        c->st.harts[hart].mtimecmp = clint_merge(c->st.harts[hart].mtimecmp, off, size, val);
        clint_update_hart(c, (unsigned)hart, clint_mtime(c));
    }
    return 0;
}

const struct bus_ops clint_msip_ops = {clint_msip_read, clint_msip_write};
const struct bus_ops clint_mtimer_ops = {clint_mtimer_read, clint_mtimer_write};

/* ---- state (docs/state.md) ---------------------------------------------------
 * Version 1: u32 nharts, u64 mtime, then per hart u64 mtimecmp, u32 msip.
 * mtime is the value at save time; load makes it continue from there on
 * this host's clock (DESIGN §4: the guest sees the gap as a short stall). */

void clint_save(const struct clint *c, struct state_buf *b)
{
    state_put_u32(b, c->nharts);
    state_put_u64(b, clint_mtime(c));
    for (unsigned i = 0; i < c->nharts; i++) {
        state_put_u64(b, c->st.harts[i].mtimecmp);
        state_put_u32(b, c->st.harts[i].msip);
    }
}

int clint_load(struct clint *c, struct state_buf *b, unsigned version)
{
    struct clint_hart_state *harts;
    uint32_t n;
    uint64_t mtime;

    if (version == 0 || version > CLINT_STATE_VERSION) {
        state_buf_fail(b, -EINVAL, "clint: state version %u, this build knows up to %u", version,
                       CLINT_STATE_VERSION);
        return -EINVAL;
    }
    n = state_get_u32(b);
    mtime = state_get_u64(b);
    if (!state_buf_error(b) && n != c->nharts)
        state_buf_fail(b, -EINVAL, "clint: state for %u harts, this one has %u", n, c->nharts);
    if (state_buf_error(b))
        return -EINVAL;
    harts = calloc(n, sizeof(*harts));
    if (!harts) {
        state_buf_fail(b, -ENOMEM, "clint: out of memory");
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n && !state_buf_error(b); i++) {
        harts[i].mtimecmp = state_get_u64(b);
        harts[i].msip = state_get_u32(b);
        if (harts[i].msip > 1)
            state_buf_fail(b, -EINVAL, "clint: hart %u msip 0x%x (only bit 0 exists)", i,
                           harts[i].msip);
    }
    if (state_buf_error(b)) {
        free(harts);
        return -EINVAL;
    }
    memcpy(c->st.harts, harts, n * sizeof(*harts));
    free(harts);
    clint_set_mtime(c, mtime);
    /* The harts' mip may hold anything: send every level afresh, as
     * clint_reset does. */
    for (unsigned i = 0; i < c->nharts; i++) {
        c->msip_level[i] = !(c->st.harts[i].msip & 1);
        clint_set_line(c, i, RV_IRQ_MSI, c->st.harts[i].msip & 1, &c->msip_level[i]);
        c->mtip[i] = !(mtime >= c->st.harts[i].mtimecmp);
        clint_update_hart(c, i, mtime);
    }
    return 0;
}
