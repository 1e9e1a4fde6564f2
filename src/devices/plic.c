/* SiFive PLIC register model and interrupt routing; see plic.h.  Register
 * behaviour follows QEMU 7.2's sifive_plic as wired on the virt board. */
#include "devices/plic.h"

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
