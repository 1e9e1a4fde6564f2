/*
 * The RISC-V hart: RV64IMAFDC + Zicsr + Zifencei + Zicntr, M/S/U modes,
 * Sv39/Sv48, PMP CSRs.  Public interface only; internals live in hart_int.h.
 *
 * The hart knows nothing of the board.  It reaches the world through a
 * struct rv_hart_env supplied by the machine: guest RAM (struct gmem, which it
 * caches in a software TLB of host pointers), an MMIO callback pair for every
 * physical address outside RAM, and a clock for the time CSR.
 *
 * Threading: rv_hart_run() runs on one thread at a time.  rv_hart_set_irq()
 * and rv_hart_request_exit() may be called from any thread (atomics); the run
 * loop notices them at the next instruction-block boundary.
 */
#ifndef GODWIT_HART_HART_H
#define GODWIT_HART_HART_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "mem/gmem.h"

struct state_buf; /* state/state_buf.h: the save/load buffer */

struct rv_hart;

/* What the machine provides to a hart. */
struct rv_hart_env {
    struct gmem *mem; /* guest RAM */
    void *opaque;     /* passed back to the callbacks below */
    /*
     * Physical accesses outside RAM. size is 1, 2, 4 or 8; pa is naturally
     * aligned.  Return 0, or negative for an access fault (the hart raises
     * a load/store access fault).
     */
    int (*mmio_read)(void *opaque, uint64_t pa, unsigned size, uint64_t *val);
    int (*mmio_write)(void *opaque, uint64_t pa, unsigned size, uint64_t val);
    /* Current mtime (10 MHz ticks) for the time CSR. */
    uint64_t (*read_time)(void *opaque);
    /*
     * Optional debugging hook (NULL = off): called on every trap taken,
     * after the trap CSRs were written, with the privilege levels before
     * and after.  For the board's GODWIT_TRACE=traps; costs one branch.
     */
    void (*trace_trap)(void *opaque, uint64_t hartid, uint64_t cause, uint64_t epc, uint64_t tval,
                       unsigned from_priv, unsigned to_priv);
};

struct rv_hart_config {
    uint64_t hartid;      /* mhartid */
    unsigned pmp_entries; /* 0 or 16 (QEMU virt has 16) */
};

/* Interrupt bit numbers in mip/mie (privileged spec §3.1.9). */
enum {
    RV_IRQ_SSI = 1,
    RV_IRQ_MSI = 3,
    RV_IRQ_STI = 5,
    RV_IRQ_MTI = 7,
    RV_IRQ_SEI = 9,
    RV_IRQ_MEI = 11,
};

/* Why rv_hart_run() returned. */
enum rv_exit {
    RV_EXIT_BUDGET = 0, /* executed max_insns (or close to it) */
    RV_EXIT_WFI,        /* WFI executed: run again once rv_hart_irq_pending() (maybe now) */
    RV_EXIT_REQUEST,    /* rv_hart_request_exit() was called */
    RV_EXIT_FATAL,      /* the guest cannot continue; rv_hart_error() says why */
};

struct rv_hart *rv_hart_new(const struct rv_hart_config *cfg, const struct rv_hart_env *env);
void rv_hart_free(struct rv_hart *h);

/* Reset to M-mode at pc, as after power-on (registers zero, CSRs reset). */
void rv_hart_reset(struct rv_hart *h, uint64_t pc);

/*
 * Run up to about max_insns instructions.  Returns an enum rv_exit.
 * The instruction count is approximate (checked at block boundaries).
 */
int rv_hart_run(struct rv_hart *h, uint64_t max_insns);

/* Raise or lower an interrupt line (RV_IRQ_*): sets/clears the mip bit. */
void rv_hart_set_irq(struct rv_hart *h, unsigned irq, bool level);

/* Make rv_hart_run() return RV_EXIT_REQUEST soon. Thread-safe. */
void rv_hart_request_exit(struct rv_hart *h);

/* True if an enabled interrupt is pending (used to end a WFI sleep). */
bool rv_hart_irq_pending(const struct rv_hart *h);

/* Clean RAM pages this hart has made dirty so far (a store that found its
 * page unmarked in the dirty bitmap; counted where the hart marks it, so
 * the hot path pays nothing).  The run loop's dirty-limit reads the
 * growth per slice.  Same thread as rv_hart_run(). */
uint64_t rv_hart_dirtied(const struct rv_hart *h);

/* Message for RV_EXIT_FATAL (static storage in the hart). */
const char *rv_hart_error(const struct rv_hart *h);

/* Register access for loaders, debuggers and tests. */
uint64_t rv_hart_get_pc(const struct rv_hart *h);
void rv_hart_set_pc(struct rv_hart *h, uint64_t pc);
uint64_t rv_hart_get_x(const struct rv_hart *h, unsigned reg);
void rv_hart_set_x(struct rv_hart *h, unsigned reg, uint64_t val);
uint64_t rv_hart_get_f(const struct rv_hart *h, unsigned reg);
unsigned rv_hart_get_priv(const struct rv_hart *h);
uint64_t rv_hart_instret(const struct rv_hart *h);

/* Drop every cached translation and decoded instruction (e.g. after RAM was
 * rewritten from outside, or after loading state). */
void rv_hart_flush_caches(struct rv_hart *h);

/*
 * State (docs/state.md): every architectural register, CSR, the privilege
 * level, the LR reservation and the interrupt lines, as a versioned
 * section.  Caches are never saved; load flushes them.  Load validates
 * (privilege, misa, PMP, satp mode...) and leaves the hart untouched on
 * error (0 or -EINVAL with the reason in b).
 */
#define RV_HART_STATE_VERSION 1
void rv_hart_save(const struct rv_hart *h, struct state_buf *b);
int rv_hart_load(struct rv_hart *h, struct state_buf *b, unsigned version) gw_must_check;

#endif
