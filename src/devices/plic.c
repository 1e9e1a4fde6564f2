/* SiFive PLIC register model and interrupt routing; see plic.h.  Register
 * behaviour follows QEMU 7.2's sifive_plic as wired on the virt board. */
#include "devices/plic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool plic_bit(const uint32_t *bits, unsigned id)
{
    return (bits[id / 32] >> (id % 32)) & 1;
}

static void plic_set_bit(uint32_t *bits, unsigned id, bool on)
{
    if (on)
        bits[id / 32] |= 1u << (id % 32);
    else
        bits[id / 32] &= ~(1u << (id % 32));
}

/* Highest-priority source a context may take (lowest ID on ties), or 0. */
static unsigned plic_best(const struct plic *p, unsigned ctx)
{
    const struct plic_context_state *c = &p->ctx[ctx];
    unsigned best = 0;
    uint32_t best_prio = c->threshold;

    for (unsigned w = 0; w < PLIC_WORDS; w++) {
        uint32_t cand = p->st.pending[w] & c->enable[w] & ~p->st.claimed[w];
        while (cand) {
            unsigned id = w * 32 + (unsigned)__builtin_ctz(cand);
            cand &= cand - 1;
            if (p->st.priority[id] > best_prio) {
                best_prio = p->st.priority[id];
                best = id;
            }
        }
    }
    return best;
}

static void plic_update(struct plic *p)
{
    for (unsigned ctx = 0; ctx < p->ncontexts; ctx++) {
        bool level = plic_best(p, ctx) != 0;
        if (level != p->out[ctx]) {
            p->out[ctx] = level;
            if (p->host.set_irq)
                p->host.set_irq(p->host.opaque, ctx, level);
        }
    }
}

void plic_set_irq(struct plic *p, unsigned id, bool level)
{
    if (id == 0 || id >= PLIC_NUM_SOURCES || plic_bit(p->st.level, id) == level)
        return;
    plic_set_bit(p->st.level, id, level);
    /* Gateway: a rising line makes the source pending unless it is claimed
     * (then complete re-arms it); a falling line does not take the request
     * back: pending stays until a claim, as on QEMU 7.2 and real PLICs. */
    if (level && !plic_bit(p->st.claimed, id)) {
        plic_set_bit(p->st.pending, id, true);
        plic_update(p);
    }
}

void plic_reset(struct plic *p)
{
    memset(p->st.priority, 0, sizeof(p->st.priority));
    memset(p->st.claimed, 0, sizeof(p->st.claimed));
    memcpy(p->st.pending, p->st.level, sizeof(p->st.pending));
    memset(p->ctx, 0, p->ncontexts * sizeof(*p->ctx));
    plic_update(p);
}

struct plic *plic_new(const struct plic_host *host, unsigned nharts)
{
    struct plic *p;

    if (nharts == 0 || 2 * nharts > PLIC_MAX_CONTEXTS)
        return NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (host)
        p->host = *host;
    p->ncontexts = 2 * nharts;
    p->ctx = calloc(p->ncontexts, sizeof(*p->ctx));
    p->out = calloc(p->ncontexts, sizeof(*p->out));
    if (!p->ctx || !p->out) {
        plic_free(p);
        return NULL;
    }
    return p;
}

void plic_free(struct plic *p)
{
    if (!p)
        return;
    free(p->ctx);
    free(p->out);
    free(p);
}

static unsigned plic_claim(struct plic *p, unsigned ctx)
{
    unsigned id = plic_best(p, ctx);

    if (id) {
        plic_set_bit(p->st.pending, id, false);
        plic_set_bit(p->st.claimed, id, true);
        plic_update(p);
    }
    return id;
}

static void plic_complete(struct plic *p, unsigned ctx, uint32_t id)
{
    /* PLIC spec: completing an ID the context does not enable is ignored. */
    if (id == 0 || id >= PLIC_NUM_SOURCES || !plic_bit(p->ctx[ctx].enable, id))
        return;
    plic_set_bit(p->st.claimed, id, false);
    if (plic_bit(p->st.level, id))
        plic_set_bit(p->st.pending, id, true);
    plic_update(p);
}

static int plic_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    struct plic *p = opaque;

    (void)size;
    *val = 0;
    if (off < PLIC_PENDING_OFF) {
        uint64_t id = off / 4;
        if (id >= 1 && id <= PLIC_NUM_SOURCES)
            *val = p->st.priority[id];
    } else if (off < PLIC_ENABLE_OFF) {
        uint64_t w = (off - PLIC_PENDING_OFF) / 4;
        if (w < PLIC_WORDS)
            *val = p->st.pending[w];
    } else if (off < PLIC_CONTEXT_OFF) {
        uint64_t ctx = (off - PLIC_ENABLE_OFF) / PLIC_ENABLE_STRIDE;
        uint64_t w = (off % PLIC_ENABLE_STRIDE) / 4;
        if (ctx < p->ncontexts && w < PLIC_WORDS)
            *val = p->ctx[ctx].enable[w];
    } else {
        uint64_t ctx = (off - PLIC_CONTEXT_OFF) / PLIC_CONTEXT_STRIDE;
        uint64_t reg = off % PLIC_CONTEXT_STRIDE;
        if (ctx >= p->ncontexts)
            return 0;
        if (reg == 0)
            *val = p->ctx[ctx].threshold;
        else if (reg == 4)
            *val = plic_claim(p, (unsigned)ctx);
    }
    return 0;
}

static int plic_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct plic *p = opaque;
    uint32_t v = (uint32_t)val;

    (void)size;
    if (off < PLIC_PENDING_OFF) {
        uint64_t id = off / 4;
        if (id >= 1 && id <= PLIC_NUM_SOURCES) {
            p->st.priority[id] = v & PLIC_PRIO_MASK;
            plic_update(p);
        }
    } else if (off < PLIC_ENABLE_OFF) {
        /* pending bits are read-only */
    } else if (off < PLIC_CONTEXT_OFF) {
        uint64_t ctx = (off - PLIC_ENABLE_OFF) / PLIC_ENABLE_STRIDE;
        uint64_t w = (off % PLIC_ENABLE_STRIDE) / 4;
        /* Like QEMU 7.2's sifive_plic, an enable write does not re-evaluate
         * the outputs: a source already pending interrupts a context that
         * just enabled it at the next priority, threshold, claim, complete
         * or source event (Linux follows every enable with a priority
         * write, so it never notices; tests/guest/plic.c does). */
        if (ctx < p->ncontexts && w < PLIC_WORDS)
            p->ctx[ctx].enable[w] = w == 0 ? v & ~1u : v; /* ID 0 does not exist */
    } else {
        uint64_t ctx = (off - PLIC_CONTEXT_OFF) / PLIC_CONTEXT_STRIDE;
        uint64_t reg = off % PLIC_CONTEXT_STRIDE;
        if (ctx >= p->ncontexts)
            return 0;
        if (reg == 0) {
            p->ctx[ctx].threshold = v & PLIC_PRIO_MASK;
            plic_update(p);
        } else if (reg == 4) {
            plic_complete(p, (unsigned)ctx, v);
        }
    }
    return 0;
}

const struct bus_ops plic_ops = {plic_read, plic_write};

/* ---- state (docs/state.md) ---------------------------------------------------
 * Version 1: u32 ncontexts; priority[0..PLIC_NUM_SOURCES]; pending, claimed,
 * level (PLIC_WORDS u32 each); per context enable[PLIC_WORDS], threshold.
 * The outputs are not saved: load re-evaluates them and sends every one. */

void plic_save(const struct plic *p, struct state_buf *b)
{
    state_put_u32(b, p->ncontexts);
    for (unsigned i = 0; i <= PLIC_NUM_SOURCES; i++)
        state_put_u32(b, p->st.priority[i]);
    for (unsigned w = 0; w < PLIC_WORDS; w++) {
        state_put_u32(b, p->st.pending[w]);
        state_put_u32(b, p->st.claimed[w]);
        state_put_u32(b, p->st.level[w]);
    }
    for (unsigned c = 0; c < p->ncontexts; c++) {
        for (unsigned w = 0; w < PLIC_WORDS; w++)
            state_put_u32(b, p->ctx[c].enable[w]);
        state_put_u32(b, p->ctx[c].threshold);
    }
}

/* Bits of a source bitmap word that name real sources (1..NUM_SOURCES-1). */
static uint32_t plic_valid_bits(unsigned w)
{
    uint32_t m = UINT32_MAX;

    if (w == 0)
        m &= ~1u; /* ID 0 means "no interrupt" */
    if ((w + 1) * 32 > PLIC_NUM_SOURCES)
        m &= (PLIC_NUM_SOURCES % 32) ? (1u << (PLIC_NUM_SOURCES % 32)) - 1 : UINT32_MAX;
    return m;
}

int plic_load(struct plic *p, struct state_buf *b, unsigned version)
{
    struct plic_state st;
    struct plic_context_state *ctx;
    uint32_t n;

    if (version == 0 || version > PLIC_STATE_VERSION) {
        state_buf_fail(b, -EINVAL, "plic: state version %u, this build knows up to %u", version,
                       PLIC_STATE_VERSION);
        return -EINVAL;
    }
    n = state_get_u32(b);
    if (!state_buf_error(b) && n != p->ncontexts)
        state_buf_fail(b, -EINVAL, "plic: state for %u contexts, this one has %u", n, p->ncontexts);
    if (state_buf_error(b))
        return -EINVAL;
    for (unsigned i = 0; i <= PLIC_NUM_SOURCES; i++) {
        st.priority[i] = state_get_u32(b);
        if ((st.priority[i] & ~PLIC_PRIO_MASK) || (i == 0 && st.priority[0]))
            state_buf_fail(b, -EINVAL, "plic: source %u priority %u (at most %u, ID 0 has none)", i,
                           st.priority[i], PLIC_PRIO_MASK);
    }
    for (unsigned w = 0; w < PLIC_WORDS; w++) {
        st.pending[w] = state_get_u32(b);
        st.claimed[w] = state_get_u32(b);
        st.level[w] = state_get_u32(b);
        if ((st.pending[w] | st.claimed[w] | st.level[w]) & ~plic_valid_bits(w))
            state_buf_fail(b, -EINVAL, "plic: source bits beyond the %u sources (word %u)",
                           PLIC_NUM_SOURCES, w);
    }
    if (state_buf_error(b))
        return -EINVAL;
    ctx = calloc(n, sizeof(*ctx));
    if (!ctx) {
        state_buf_fail(b, -ENOMEM, "plic: out of memory");
        return -ENOMEM;
    }
    for (unsigned c = 0; c < n && !state_buf_error(b); c++) {
        for (unsigned w = 0; w < PLIC_WORDS; w++) {
            ctx[c].enable[w] = state_get_u32(b);
            if (ctx[c].enable[w] & ~plic_valid_bits(w))
                state_buf_fail(b, -EINVAL, "plic: context %u enables sources that do not exist", c);
        }
        ctx[c].threshold = state_get_u32(b);
        if (ctx[c].threshold & ~PLIC_PRIO_MASK)
            state_buf_fail(b, -EINVAL, "plic: context %u threshold %u (at most %u)", c,
                           ctx[c].threshold, PLIC_PRIO_MASK);
    }
    if (state_buf_error(b)) {
        free(ctx);
        return -EINVAL;
    }
    p->st = st;
    memcpy(p->ctx, ctx, n * sizeof(*ctx));
    free(ctx);
    /* The harts' MEIP/SEIP may hold anything: send every output. */
    for (unsigned c = 0; c < p->ncontexts; c++) {
        p->out[c] = plic_best(p, c) != 0;
        if (p->host.set_irq)
            p->host.set_irq(p->host.opaque, c, p->out[c]);
    }
    return 0;
}
