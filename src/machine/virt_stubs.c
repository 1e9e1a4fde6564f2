/*
 * Stand-ins for parts of QEMU's virt board that godwit does not model yet,
 * so guests probing them see what they see on QEMU instead of an access
 * fault.  Stateless; each is replaced when the real device lands.
 *   - virtio-mmio slots with no backend: magic "virt", version 1 (QEMU's
 *     legacy default), device ID 0 (= nothing here), vendor "QEMU"; other
 *     registers read 0 and writes are ignored.  Linux skips such slots.
 *   - the two CFI flash banks without backing storage: read 0, ignore writes.
 */
#include "machine/virt_int.h"

#define VIRTIO_MMIO_MAGIC  0x74726976u /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x554d4551u /* "QEMU" */

static int virt_stub_virtio_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    uint64_t v;

    (void)opaque;
    switch (off) {
    case 0x000: v = VIRTIO_MMIO_MAGIC; break;
    case 0x004: v = 1; break; /* version: legacy */
    case 0x00c: v = VIRTIO_MMIO_VENDOR; break;
    default: v = 0; break; /* device ID 0 and everything else */
    }
    *val = size < 8 ? v & ((1ull << (size * 8)) - 1) : v;
    return 0;
}

static int virt_stub_ignore_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    (void)opaque;
    (void)off;
    (void)size;
    (void)val;
    return 0;
}

static int virt_stub_zero_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    (void)opaque;
    (void)off;
    (void)size;
    *val = 0;
    return 0;
}

const struct bus_ops virt_stub_virtio_ops = {virt_stub_virtio_read, virt_stub_ignore_write};
const struct bus_ops virt_stub_flash_ops = {virt_stub_zero_read, virt_stub_ignore_write};
