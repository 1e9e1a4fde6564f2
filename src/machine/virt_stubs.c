/*
 * Stand-ins for parts of QEMU's virt board that godwit does not model yet,
 * so guests probing them see what they see on QEMU instead of an access
 * fault.  Stateless; each is replaced when the real device lands.
 *   - the two CFI flash banks without backing storage: read 0, ignore writes.
 * (Empty virtio-mmio slots are served by virtio/virtio_mmio.c.)
 */
#include "machine/virt_int.h"

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

const struct bus_ops virt_stub_flash_ops = {virt_stub_zero_read, virt_stub_ignore_write};
