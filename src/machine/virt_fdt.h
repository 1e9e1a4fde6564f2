/*
 * The virt board's flattened device tree, written with libfdt: what Linux
 * and OpenSBI learn about the machine.  It describes exactly what the board
 * has (harts and the ISA they implement, RAM, CLINT, PLIC, UART, RTC, the
 * test/syscon finisher with syscon-poweroff/-reboot, the virtio-mmio slots,
 * the PCIe host) with QEMU 7.2's node names, properties and phandle
 * layout, so `-machine dumpdtb=` output diffs cleanly against QEMU's.
 * Nodes QEMU has and we lack (fw-cfg, flash, platform-bus, pmu) are left
 * out.  /chosen/rng-seed gives Linux early entropy, as on QEMU.  Kept apart from virt.c so tests
 * build a tree without a machine.
 */
#ifndef GODWIT_MACHINE_VIRT_FDT_H
#define GODWIT_MACHINE_VIRT_FDT_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* The ISA the hart implements, as "riscv,isa" spells it (canonical order). */
#define VIRT_FDT_ISA      "rv64imafdc_zicntr_zicsr_zifencei_zihpm"
#define VIRT_FDT_MMU_TYPE "riscv,sv48"
#define VIRT_UART_CLOCK   0x384000u /* Hz, QEMU's "clock-frequency" */

/* IRQ numbers on the PLIC (QEMU virt's). */
enum {
    VIRT_VIRTIO_IRQ = 1, /* 1..8 */
    VIRT_UART0_IRQ = 10,
    VIRT_RTC_IRQ = 11,
    VIRT_PCIE_IRQ = 0x20, /* 0x20..0x23 */
};

struct virt_fdt_params {
    unsigned nharts;
    uint64_t ram_size;     /* bytes at VIRT_DRAM_BASE */
    const char *bootargs;  /* NULL: no bootargs property */
    uint64_t initrd_start; /* 0 (and end 0): no initrd */
    uint64_t initrd_end;
    const uint8_t *rng_seed; /* VIRT_FDT_RNG_SEED bytes for /chosen/rng-seed, or NULL */
};

#define VIRT_FDT_RNG_SEED 32 /* bytes, as QEMU */

/* Give /chosen/rng-seed of a built tree fresh bytes (QEMU re-randomizes
 * it on every reset); 0, or -ENOENT if the tree has no seed. */
int virt_fdt_reseed(void *fdt, const uint8_t *seed);

/*
 * Build the tree into a malloc'd, packed blob.  Returns 0, or -ENOMEM /
 * -EINVAL (libfdt refused something: a bug) with *blob left NULL.
 */
int virt_fdt_build(const struct virt_fdt_params *p, void **blob, size_t *len) gw_must_check;

#endif
