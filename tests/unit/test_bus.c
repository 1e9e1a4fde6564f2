/* Unit tests for the MMIO bus: placement, lookup, access rules, splitting. */
#include <errno.h>
#include <string.h>

#include "board_check.h"
#include "mem/bus.h"

struct fake_dev {
    uint64_t regs[16]; /* 4-byte registers at off 0,4,8... stored by index */
    unsigned reads, writes;
    unsigned last_size;
    uint64_t last_off;
};

static int fake_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    struct fake_dev *d = opaque;
    d->reads++;
    d->last_size = size;
    d->last_off = off;
    if (off / 4 >= 15) /* the last register refuses access */
        return -EINVAL;
    *val = d->regs[off / 4];
    return 0;
}

static int fake_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct fake_dev *d = opaque;
    d->writes++;
    d->last_size = size;
    d->last_off = off;
    if (off / 4 >= 15) /* the last register refuses access */
        return -EINVAL;
    d->regs[off / 4] = val;
    return 0;
}

static const struct bus_ops fake_ops = {fake_read, fake_write};

static struct bus_region mk(uint64_t base, uint64_t size, unsigned vmin, unsigned vmax,
                            unsigned impl, void *opaque)
{
    struct bus_region r = {"fake", base, size, vmin, vmax, impl, &fake_ops, opaque};
    return r;
}

int main(void)
{
    struct bus b;
    struct fake_dev a, c, w;
    struct bus_region r;
    uint64_t v;

    memset(&a, 0, sizeof(a));
    memset(&c, 0, sizeof(c));
    memset(&w, 0, sizeof(w));
    bus_init(&b);

    /* Insert out of order; the table must come out sorted. */
    r = mk(0x2000, 0x40, 4, 8, 4, &c);
    CHECK(bus_add(&b, &r) == 0, "add region at 0x2000");
    r = mk(0x1000, 0x40, 1, 8, 0, &a);
    CHECK(bus_add(&b, &r) == 0, "add region at 0x1000");
    r = mk(0x3000, 0x40, 1, 8, 8, &w);
    CHECK(bus_add(&b, &r) == 0, "add region at 0x3000");
    CHECK(b.count == 3 && b.regions[0].base == 0x1000 && b.regions[1].base == 0x2000 &&
              b.regions[2].base == 0x3000,
          "regions kept sorted by base");
    CHECK(b.regions[0].impl_max == 8, "impl_max defaults to valid_max");

    r = mk(0x103f, 0x10, 1, 8, 0, &a);
    CHECK(bus_add(&b, &r) == -EEXIST, "overlap at the end of a region is refused");
    r = mk(0xff0, 0x11, 1, 8, 0, &a);
    CHECK(bus_add(&b, &r) == -EEXIST, "overlap at the start of a region is refused");
    r = mk(0x0, 0x10000, 1, 8, 0, &a);
    CHECK(bus_add(&b, &r) == -EEXIST, "region covering others is refused");
    r = mk(0x5000, 0, 1, 8, 0, &a);
    CHECK(bus_add(&b, &r) == -EINVAL, "zero-size region is refused");
    r = mk(UINT64_MAX - 0xf, 0x20, 1, 8, 0, &a);
    CHECK(bus_add(&b, &r) == -EINVAL, "wrapping region is refused");
    r = mk(UINT64_MAX - 0xf, 0x10, 1, 8, 0, &a);
    CHECK(bus_add(&b, &r) == 0, "region ending at the top of the address space is fine");
    r = mk(0x6000, 0x10, 3, 8, 0, &a);
    CHECK(bus_add(&b, &r) == -EINVAL, "access size 3 is refused");
    r = mk(0x6000, 0x10, 8, 4, 0, &a);
    CHECK(bus_add(&b, &r) == -EINVAL, "valid_min > valid_max is refused");
    r = mk(0x6000, 0x10, 1, 4, 8, &a);
    CHECK(bus_add(&b, &r) == -EINVAL, "impl_max > valid_max is refused");

    CHECK(bus_find(&b, 0xfff) == NULL, "address below a region is unassigned");
    CHECK(bus_find(&b, 0x1000) == &b.regions[0], "first byte found");
    CHECK(bus_find(&b, 0x103f) == &b.regions[0], "last byte found");
    CHECK(bus_find(&b, 0x1040) == NULL, "byte after a region is unassigned");
    CHECK(bus_find(&b, 0) == NULL, "address 0 is unassigned");
    CHECK(bus_find(&b, UINT64_MAX) != NULL, "top byte found");

    a.regs[1] = 0x11223344;
    CHECK(bus_read(&b, 0x1004, 4, &v) == 0 && v == 0x11223344, "4-byte read reaches device");
    CHECK(a.last_off == 4 && a.last_size == 4, "device sees offset and size");
    a.regs[2] = 0xffffffffffffffffull;
    CHECK(bus_read(&b, 0x1008, 1, &v) == 0 && v == 0xff, "1-byte read truncated to size");
    CHECK(bus_read(&b, 0x1002, 4, &v) == -EFAULT, "misaligned read faults");
    CHECK(bus_read(&b, 0x1000, 3, &v) == -EFAULT, "size 3 faults");
    CHECK(bus_read(&b, 0x0, 4, &v) == -EFAULT, "unassigned read faults");
    CHECK(bus_write(&b, 0x1040, 4, 1) == -EFAULT, "unassigned write faults");
    CHECK(bus_read(&b, 0x1040, 8, &v) == -EFAULT, "read past region end faults");
    CHECK(bus_read(&b, 0x1100, 4, &v) == -EFAULT, "read in a gap faults");
    CHECK(bus_write(&b, 0x103c, 4, 5) == -EFAULT, "device refusal becomes a fault");

    CHECK(bus_read(&b, 0x2000, 1, &v) == -EFAULT, "below valid_min faults");
    CHECK(bus_write(&b, 0x2000, 2, 0) == -EFAULT, "below valid_min write faults");
    c.regs[0] = 0xaaaaaaaa;
    c.regs[1] = 0xbbbbbbbb;
    c.reads = 0;
    CHECK(bus_read(&b, 0x2000, 8, &v) == 0 && v == 0xbbbbbbbbaaaaaaaaull,
          "8-byte read split into two 4-byte reads, little-endian");
    CHECK(c.reads == 2 && c.last_size == 4 && c.last_off == 4, "split reads hit both registers");
    CHECK(bus_write(&b, 0x2008, 8, 0x1234567887654321ull) == 0 && c.regs[2] == 0x87654321 &&
              c.regs[3] == 0x12345678,
          "8-byte write split into two 4-byte writes");
    CHECK(bus_write(&b, 0x3000, 2, 0xabcdef) == 0 && w.regs[0] == 0xcdef,
          "write value masked to access size");
    return board_check_done();
}
