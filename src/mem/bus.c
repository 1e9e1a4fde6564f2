/* MMIO bus dispatch; see bus.h for the access rules. */
#include "mem/bus.h"

#include <errno.h>
#include <string.h>

static bool bus_size_ok(unsigned s)
{
    return s == 1 || s == 2 || s == 4 || s == 8;
}

void bus_init(struct bus *b)
{
    memset(b, 0, sizeof(*b));
}

int bus_add(struct bus *b, const struct bus_region *r)
{
    unsigned impl = r->impl_max ? r->impl_max : r->valid_max;
    unsigned pos;

    if (!r->ops || r->size == 0 || r->base + r->size - 1 < r->base)
        return -EINVAL;
    if (!bus_size_ok(r->valid_min) || !bus_size_ok(r->valid_max) || !bus_size_ok(impl) ||
        r->valid_min > r->valid_max || impl > r->valid_max)
        return -EINVAL;
    if (b->count == BUS_MAX_REGIONS)
        return -ENOSPC;
    for (pos = 0; pos < b->count; pos++) {
        const struct bus_region *o = &b->regions[pos];
        uint64_t o_last = o->base + o->size - 1, r_last = r->base + r->size - 1;
        if (r->base <= o_last && o->base <= r_last)
            return -EEXIST;
        if (o->base > r->base)
            break;
    }
    memmove(&b->regions[pos + 1], &b->regions[pos], (b->count - pos) * sizeof(b->regions[0]));
    b->regions[pos] = *r;
    b->regions[pos].impl_max = impl;
    b->count++;
    return 0;
}

const struct bus_region *bus_find(const struct bus *b, uint64_t pa)
{
    unsigned lo = 0, hi = b->count;

    /* Binary search for the last region whose base <= pa. */
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (b->regions[mid].base <= pa)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const struct bus_region *r = &b->regions[lo - 1];
    return pa - r->base < r->size ? r : NULL;
}

/* The region for a whole access, or NULL if the access is not allowed. */
static const struct bus_region *bus_lookup(const struct bus *b, uint64_t pa, unsigned size)
{
    const struct bus_region *r;

    if (!bus_size_ok(size) || (pa & (size - 1)))
        return NULL;
    r = bus_find(b, pa);
    if (!r || size > r->size - (pa - r->base))
        return NULL;
    if (size < r->valid_min || size > r->valid_max)
        return NULL;
    return r;
}

int bus_read(const struct bus *b, uint64_t pa, unsigned size, uint64_t *val)
{
    const struct bus_region *r = bus_lookup(b, pa, size);
    uint64_t off, acc = 0;

    if (!r)
        return -EFAULT;
    off = pa - r->base;
    if (size <= r->impl_max) {
        if (r->ops->read(r->opaque, off, size, &acc) < 0)
            return -EFAULT;
        *val = size == 8 ? acc : acc & ((1ull << (size * 8)) - 1);
        return 0;
    }
    for (unsigned done = 0; done < size; done += r->impl_max) {
        uint64_t part = 0;
        if (r->ops->read(r->opaque, off + done, r->impl_max, &part) < 0)
            return -EFAULT;
        part &= (1ull << (r->impl_max * 8)) - 1; /* impl_max < size <= 8 */
        acc |= part << (done * 8);
    }
    *val = acc;
    return 0;
}

int bus_write(const struct bus *b, uint64_t pa, unsigned size, uint64_t val)
{
    const struct bus_region *r = bus_lookup(b, pa, size);
    uint64_t off;

    if (!r)
        return -EFAULT;
    off = pa - r->base;
    if (size < 8)
        val &= (1ull << (size * 8)) - 1;
    if (size <= r->impl_max)
        return r->ops->write(r->opaque, off, size, val) < 0 ? -EFAULT : 0;
    for (unsigned done = 0; done < size; done += r->impl_max) {
        uint64_t part = (val >> (done * 8)) & ((1ull << (r->impl_max * 8)) - 1);
        if (r->ops->write(r->opaque, off + done, r->impl_max, part) < 0)
            return -EFAULT;
    }
    return 0;
}
