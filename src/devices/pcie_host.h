/*
 * The virt board's PCIe host (QEMU's "gpex") with an empty bus: config
 * space through ECAM shows only the host bridge at 00:00.0 (Red Hat
 * 1b36:0008, class 0x0600); every other function reads all-ones, and so do
 * the PIO and MMIO windows, whose writes are ignored.  This is what a guest
 * sees on QEMU without -device pci devices; real devices come later.
 *
 * The host bridge's writable registers (command, cache line size,
 * interrupt line) are the guest-visible state.
 */
#ifndef GODWIT_DEVICES_PCIE_HOST_H
#define GODWIT_DEVICES_PCIE_HOST_H

#include <stdint.h>

#include "mem/bus.h"
#include "state/state_buf.h"

#define PCIE_ECAM_SIZE 0x10000000ull /* 256 buses */

struct pcie_host_state {
    uint16_t command;   /* writable bits 0x0507 */
    uint8_t cache_line; /* 0x0c */
    uint8_t int_line;   /* 0x3c */
};

struct pcie_host {
    struct pcie_host_state st;
};

struct pcie_host *pcie_host_new(void);
void pcie_host_free(struct pcie_host *p);
void pcie_host_reset(struct pcie_host *p);

/* ECAM config space (opaque = struct pcie_host *), sizes 1..8, impl 4. */
extern const struct bus_ops pcie_host_ecam_ops;
/* An empty window: reads all-ones, writes ignored (opaque unused). */
extern const struct bus_ops pcie_host_window_ops;

/* State: whatever the guest can write in the host bridge's config space. */
#define PCIE_HOST_STATE_VERSION 1
void pcie_host_save(const struct pcie_host *p, struct state_buf *b);
int pcie_host_load(struct pcie_host *p, struct state_buf *b, unsigned version) gw_must_check;

#endif
