/*
 * SiFive PLIC ("sifive,plic-1.0.0" / "riscv,plic0") as QEMU 7.2 builds it
 * for the virt board: 96 interrupt sources (ID 0 means "none"), 3 priority
 * bits, and two contexts per hart, M-mode (2*hart) and S-mode (2*hart+1).
 * Register map (offsets from 0x0c00_0000, 32-bit accesses only):
 *   0x000000 + 4*id            source priority (0 = never interrupts)
 *   0x001000 + 4*word          pending bits (read-only)
 *   0x002000 + 0x80*ctx + 4*w  enable bits of a context
 *   0x200000 + 0x1000*ctx      priority threshold
 *   0x200004 + 0x1000*ctx      claim (read) / complete (write)
 * Any other offset inside the 0x600000 region reads 0 and ignores writes,
 * as on QEMU.
 *
 * Sources are level-triggered, like the gateways in front of a real PLIC:
 * a line going high makes its source pending unless it is claimed; the
 * request then stays pending (even if the line drops) until a claim, which
 * clears it; complete re-arms the gateway (pending again at once if the
 * line is still high).  As on QEMU, writing an enable register does not by
 * itself re-evaluate the outputs (the next event does).  Checked against
 * QEMU 7.2 by tests/guest/plic.c.  A context's external interrupt (MEIP or SEIP)
 * is high while some enabled, pending source has a priority above the
 * context's threshold.
 *
 * plic_state is the guest-visible part (saved and loaded later); line
 * levels are part of it because they are device outputs the PLIC latched.
 * Single-threaded: device callbacks run on the thread running the harts.
 */
#ifndef GODWIT_DEVICES_PLIC_H
#define GODWIT_DEVICES_PLIC_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/bus.h"
#include "state/state_buf.h"

#define PLIC_NUM_SOURCES  96 /* IDs 0..95; "riscv,ndev" = 96 as QEMU says */
#define PLIC_WORDS        ((PLIC_NUM_SOURCES + 31) / 32)
#define PLIC_PRIO_MASK    7u /* 3 priority bits */
#define PLIC_MAX_CONTEXTS (2 * 512)
#define PLIC_SIZE         0x600000ull /* QEMU maps room for 512 harts */

#define PLIC_PRIORITY_OFF   0x0
#define PLIC_PENDING_OFF    0x1000
#define PLIC_ENABLE_OFF     0x2000
#define PLIC_ENABLE_STRIDE  0x80
#define PLIC_CONTEXT_OFF    0x200000
#define PLIC_CONTEXT_STRIDE 0x1000

struct plic_context_state {
    uint32_t enable[PLIC_WORDS];
    uint32_t threshold;
};

/* Guest-visible state. */
struct plic_state {
    uint32_t priority[PLIC_NUM_SOURCES + 1]; /* QEMU accepts writes for ID 96 too */
    uint32_t pending[PLIC_WORDS];
    uint32_t claimed[PLIC_WORDS]; /* claimed, not yet completed */
    uint32_t level[PLIC_WORDS];   /* input line levels */
};

struct plic_host {
    void *opaque;
    /* A context's interrupt output changed: ctx/2 is the hart, ctx&1 = S. */
    void (*set_irq)(void *opaque, unsigned ctx, bool level);
};

struct plic {
    struct plic_state st;
    struct plic_host host;
    unsigned ncontexts;
    struct plic_context_state *ctx; /* ncontexts entries (guest state) */
    bool *out;                      /* last level sent per context */
};

/* nharts in 1..512; NULL on bad arguments or allocation failure. */
struct plic *plic_new(const struct plic_host *host, unsigned nharts);
void plic_free(struct plic *p);

/* System reset: every register 0; outputs lowered.  Input levels are kept
 * (they belong to the devices, which reset themselves). */
void plic_reset(struct plic *p);

/* A device's interrupt line (source id 1..PLIC_NUM_SOURCES-1). */
void plic_set_irq(struct plic *p, unsigned id, bool level);

/* Bus callbacks (opaque = struct plic *); map with 4-byte accesses only. */
extern const struct bus_ops plic_ops;

/* State: priorities, pending, enables, thresholds, claims, line levels.
 * Load re-evaluates and re-sends every context's interrupt line. */
#define PLIC_STATE_VERSION 1
void plic_save(const struct plic *p, struct state_buf *b);
int plic_load(struct plic *p, struct state_buf *b, unsigned version) gw_must_check;

#endif
