/*
 * CLINT (SiFive core-local interruptor, as QEMU's virt maps its ACLINT):
 *   +0x0000 msip[hart]      4 bytes each, bit 0 = machine software interrupt
 *   +0x4000 mtimecmp[hart]  8 bytes each (4- or 8-byte access)
 *   +0xbff8 mtime           8 bytes (4- or 8-byte access), writable
 * The board maps two bus regions: CLINT_MSIP_* (4-byte access only) and
 * CLINT_MTIMER_* (4 or 8); everything from +0xc000 up is unassigned, as on
 * QEMU.  Slots for harts that do not exist read 0 and ignore writes.
 *
 * Time: mtime counts at 10 MHz from the board's host clock:
 *     mtime = (now_ns - base_ns) / 100 + delta
 * base_ns is taken when the CLINT is created (QEMU's virtual clock starts
 * with the process); a guest write to mtime changes delta; a system reset
 * puts delta back to 0 while mtimecmp keeps its value, as QEMU 7.2 does.
 *
 * Interrupts are levels: MTIP(hart) = mtime >= mtimecmp[hart], MSIP(hart) =
 * msip[hart] & 1.  They are re-evaluated on every register write and by
 * clint_update(), which the machine loop calls between hart slices; only
 * changes are passed to host.set_irq.
 *
 * clint_state is the guest-visible part (saved/loaded later: on load the
 * saved mtime is restored through delta); the rest is host plumbing.
 */
#ifndef GODWIT_DEVICES_CLINT_H
#define GODWIT_DEVICES_CLINT_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/bus.h"
#include "state/state_buf.h"

#define CLINT_MAX_HARTS 512

#define CLINT_MSIP_OFF    0x0000
#define CLINT_MSIP_SIZE   0x4000
#define CLINT_MTIMER_OFF  0x4000
#define CLINT_MTIMER_SIZE 0x8000
#define CLINT_MTIME_OFF   0x7ff8 /* within the mtimer region (+0xbff8 overall) */
#define CLINT_TIMEBASE_HZ 10000000ull
#define CLINT_NS_PER_TICK 100ull

struct clint_hart_state {
    uint64_t mtimecmp;
    uint32_t msip; /* bit 0 */
};

/* Guest-visible state. */
struct clint_state {
    uint64_t delta; /* added to the host-derived tick count (mod 2^64) */
    struct clint_hart_state harts[CLINT_MAX_HARTS];
};

struct clint_host {
    void *opaque;
    /* Host monotonic time in ns (gw_now_ns in the board, a fake in tests). */
    uint64_t (*now_ns)(void *opaque);
    /* Set an interrupt line (RV_IRQ_MSI / RV_IRQ_MTI) of a hart. */
    void (*set_irq)(void *opaque, unsigned hart, unsigned irq, bool level);
};

struct clint {
    struct clint_state st;
    struct clint_host host;
    unsigned nharts;
    uint64_t base_ns;           /* host time of tick 0 */
    bool mtip[CLINT_MAX_HARTS]; /* levels last sent to the harts */
    bool msip_level[CLINT_MAX_HARTS];
    bool frozen;           /* clint_freeze(): mtime stands at frozen_mtime */
    uint64_t frozen_mtime; /* ticks */
};

/* nharts in 1..CLINT_MAX_HARTS; NULL on bad arguments or allocation failure. */
struct clint *clint_new(const struct clint_host *host, unsigned nharts);
void clint_free(struct clint *c);

/* System reset: msip cleared, mtime restarts from the host clock (delta 0),
 * mtimecmp kept; every interrupt line is sent again (call it after the
 * harts were reset, since that clears their mip). */
void clint_reset(struct clint *c);

/* Current mtime (what the time CSR reads). */
uint64_t clint_mtime(const struct clint *c);

/* Stop or restart the clock (the machine is paused: QEMU's virtual clock
 * stands still too).  While frozen, mtime reads frozen_mtime, set_mtime
 * moves it, no deadline is due; unfreezing continues from there. */
void clint_freeze(struct clint *c, bool frozen);

/* Set mtime as a guest write or a state load would. */
void clint_set_mtime(struct clint *c, uint64_t mtime);

/* Re-evaluate every hart's MTIP against the current mtime; returns that
 * mtime (so a reader of the time CSR sees a value consistent with MTIP). */
uint64_t clint_update(struct clint *c);

/* Host ns at which the next MTIP rises (some hart's mtime >= mtimecmp that
 * is not yet so), or UINT64_MAX if none will. */
uint64_t clint_next_deadline(const struct clint *c);

/* Bus callbacks (opaque = struct clint *). */
extern const struct bus_ops clint_msip_ops;   /* region CLINT_MSIP_SIZE, 4-byte */
extern const struct bus_ops clint_mtimer_ops; /* region CLINT_MTIMER_SIZE, 4/8-byte */

/* State: msip, mtimecmp and the current mtime.  Load makes mtime continue
 * from the saved value (delta recomputed against this host's clock) and
 * sends every interrupt line again.  0 or -EINVAL (reason in b). */
#define CLINT_STATE_VERSION 1
void clint_save(const struct clint *c, struct state_buf *b);
int clint_load(struct clint *c, struct state_buf *b, unsigned version) gw_must_check;

#endif
