/*
 * The physical MMIO bus: a bounded, sorted table of device regions that
 * turns a physical address outside RAM into a call on the device owning it.
 *
 * Access rules mirror QEMU's memory core, so guests see the same faults:
 *   - an address no region covers is an access fault (-EFAULT);
 *   - the access must be naturally aligned and lie wholly inside one region;
 *   - its size must be within the region's [valid_min, valid_max];
 *   - an access larger than the device implements (impl_max) is split into
 *     impl_max-sized pieces, assembled little-endian (e.g. an 8-byte read of
 *     a 4-byte-register device reads two registers).
 *
 * The table is filled while the board is built and then only read, so the
 * hart thread may dispatch without locks.  Devices see offsets relative to
 * their region base.
 */
#ifndef GODWIT_MEM_BUS_H
#define GODWIT_MEM_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"

#define BUS_MAX_REGIONS 64

/* Device callbacks: off is relative to the region base; return 0 or -errno
 * (any error becomes an access fault for the guest). */
struct bus_ops {
    int (*read)(void *opaque, uint64_t off, unsigned size, uint64_t *val);
    int (*write)(void *opaque, uint64_t off, unsigned size, uint64_t val);
};

struct bus_region {
    const char *name;          /* for messages; static storage */
    uint64_t base;             /* guest-physical address */
    uint64_t size;             /* bytes, > 0 */
    unsigned valid_min;        /* smallest access size the guest may use (1,2,4,8) */
    unsigned valid_max;        /* largest access size the guest may use */
    unsigned impl_max;         /* largest size the callbacks handle; 0 = valid_max */
    const struct bus_ops *ops; /* static storage */
    void *opaque;
};

struct bus {
    unsigned count;                             /* regions in use */
    struct bus_region regions[BUS_MAX_REGIONS]; /* sorted by base, disjoint */
};

void bus_init(struct bus *b);

/*
 * Add a region (copied).  Returns 0, -EINVAL for a malformed region (zero
 * size, wrapping, bad access sizes), -EEXIST if it overlaps another, -ENOSPC
 * if the table is full.
 */
int bus_add(struct bus *b, const struct bus_region *r) gw_must_check;

/* The region covering pa, or NULL. */
const struct bus_region *bus_find(const struct bus *b, uint64_t pa);

/* Dispatch an access; 0 or -EFAULT (unassigned, misaligned, bad size, or the
 * device refused it). */
int bus_read(const struct bus *b, uint64_t pa, unsigned size, uint64_t *val) gw_must_check;
int bus_write(const struct bus *b, uint64_t pa, unsigned size, uint64_t val) gw_must_check;

#endif
