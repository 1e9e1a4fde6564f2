/*
 * libFuzzer target for the virtqueue walker and the devices behind it:
 * the input is a queue configuration, a few virtio-mmio register writes
 * and a guest RAM image holding the rings, descriptors and requests.
 *
 *   make fuzz-virtq                      # clang, -fsanitize=fuzzer,address,undefined
 *   build/fuzz/fuzz_virtq -max_total_time=600 build/fuzz/virtq tests/fuzz/corpus/virtq
 *   $(BUILD)/tests/fuzz/replay_virtq tests/fuzz/corpus/virtq   # gcc, run by tests/run.sh
 *
 * Input layout (little-endian):
 *   0  u8  device: 0 a sink (takes every chain), 1 virtio-blk on a memfd,
 *          2 virtio-rng (mod 3)
 *   1  u8  flags: 1 EVENT_IDX, 2 INDIRECT_DESC, 4 blk readonly,
 *          8 skip DRIVER_OK, 16 device-specific features too, 32 the queue
 *          has interrupted before (at the starting index: EVENT_IDX's
 *          used_event then decides)
 *   2  u16 queue size written to QueueNum
 *   4  u16 avail->idx (written into the image if the ring is in RAM)
 *   6  u16 starting last_avail / used index (a queue that ran a while)
 *   8  u32 desc, 12 u32 avail, 16 u32 used: offsets from the RAM base
 *          (anything: outside RAM must be refused)
 *   20 u8  notifies (1 + n % 4), 21 u8 number of register ops (<= 16)
 *   22 u16 reserved
 *   24 register ops, 8 bytes each: u16 offset, u8 size, u8 is_write, u32 value
 *   then the RAM image (at most FUZZ_RAM bytes; the rest of RAM is zero).
 *
 * Invariants beyond "no crash, no sanitizer report": every guest page
 * whose contents changed is marked dirty; a broken device has NEEDS_RESET
 * set.  (The rings may overlap each other and the buffers, so nothing is
 * assumed about their contents afterwards.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "virtio/virtio_blk.h"
#include "virtio/virtio_mmio.h"
#include "virtio/virtio_rng.h"

#define FUZZ_RAM_BASE 0x80000000ull
#define FUZZ_RAM      (64u * 1024)
#define FUZZ_HDR      24u
#define FUZZ_MAX_OPS  16u
#define FUZZ_DISK     (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
    struct virtio_dev vdev;
    struct virtq_elem elem;
};

static void sink_notify(struct virtio_dev *d, unsigned qi)
{
    struct sink *s = (struct sink *)d;
    struct virtq *q = &d->vq[qi];
    static const uint8_t fill[256] = {1};
    int r;

    do {
        while ((r = virtq_pop(d, q, &s->elem)) > 0) {
            size_t n = virtq_elem_write(d, &s->elem, 0, fill, sizeof(fill));
            virtq_push(d, q, &s->elem, (uint32_t)n);
        }
    } while (r == 0 && virtq_enable_notify(d, q, true));
    virtq_notify(d, q);
}

static void sink_fini(struct virtio_dev *d)
{
    (void)d;
}

static const struct virtio_dev_ops sink_ops = {
    .name = "sink",
    .queue_notify = sink_notify,
    .fini = sink_fini,
};

struct fuzz_state {
    struct gmem *mem;
    struct sink sink;
    struct virtio_dev *blk, *blk_ro, *rng;
    uint8_t before[FUZZ_RAM];
    bool debug; /* FUZZ_VIRTQ_DEBUG set: one line per input on stderr */
};

static void fuzz_irq(void *opaque, bool level)
{
    (void)opaque;
    (void)level;
}

static struct fuzz_state *fuzz_init(void)
{
    static struct fuzz_state st;
    struct vblk_config bc = {.path = "fuzz-disk", .discard = true};
    struct vrng_config rc = {0};
    char err[200];
    int fd;

    st.mem = gmem_new(FUZZ_RAM_BASE, FUZZ_RAM);
    if (!st.mem || virtio_dev_init(&st.sink.vdev, &sink_ops, st.mem, 42, 0, 2, 256) < 0)
        abort();
    fd = memfd_create("fuzz-disk", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, FUZZ_DISK) < 0)
        abort();
    st.blk = vblk_new_fd(st.mem, dup(fd), &bc, err, sizeof(err));
    bc.readonly = true;
    st.blk_ro = vblk_new_fd(st.mem, fd, &bc, err, sizeof(err));
    st.rng = vrng_new(st.mem, &rc, err, sizeof(err));
    st.debug = getenv("FUZZ_VIRTQ_DEBUG") != NULL;
    if (!st.blk || !st.blk_ro || !st.rng)
        abort();
    /* The devices log a malformed queue once each; that is expected here. */
    st.sink.vdev.broken_logged = st.blk->broken_logged = st.blk_ro->broken_logged =
        st.rng->broken_logged = true;
    return &st;
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr(struct virtio_mmio *m, uint64_t off, uint32_t v)
{
    (void)virtio_mmio_ops.write(m, off, 4, v);
}

static uint32_t rd(struct virtio_mmio *m, uint64_t off)
{
    uint64_t v = 0;
    (void)virtio_mmio_ops.read(m, off, 4, &v);
    return (uint32_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct fuzz_state *st;
    struct virtio_transport irq = {NULL, fuzz_irq};
    struct virtio_mmio m;
    struct virtio_dev *d;
    uint64_t features, desc, avail, used;
    unsigned nops, notifies;
    uint8_t flags;
    size_t img;

    if (!st)
        st = fuzz_init();
    if (size < FUZZ_HDR)
        return 0;
    flags = data[1];
    switch (data[0] % 3) {
    case 0: d = &st->sink.vdev; break;
    case 1: d = (flags & 4) ? st->blk_ro : st->blk; break;
    default: d = st->rng; break;
    }
    nops = data[21] % (FUZZ_MAX_OPS + 1);
    if (size < FUZZ_HDR + 8 * nops)
        return 0;
    img = size - FUZZ_HDR - 8 * nops;
    if (img > FUZZ_RAM)
        img = FUZZ_RAM;
    memset(st->mem->host, 0, FUZZ_RAM);
    memcpy(st->mem->host, data + FUZZ_HDR + 8 * nops, img);
    desc = FUZZ_RAM_BASE + get32(data + 8);
    avail = FUZZ_RAM_BASE + get32(data + 12);
    used = FUZZ_RAM_BASE + get32(data + 16);
    if (gmem_contains(st->mem, avail + 2, 2))
        memcpy(st->mem->host + (avail + 2 - FUZZ_RAM_BASE), data + 4, 2);

    /* Bring the device up as a driver would. */
    virtio_mmio_init(&m, d, &irq);
    virtio_mmio_reset(&m);
    features = VIRTIO_BIT(VIRTIO_F_VERSION_1);
    if (flags & 1)
        features |= VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
    if (flags & 2)
        features |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
    if (flags & 16)
        features |= d->host_features;
    wr(&m, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(&m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(&m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
    wr(&m, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(&m, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
    wr(&m, VIRTIO_MMIO_STATUS,
       VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
    wr(&m, VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(&m, VIRTIO_MMIO_QUEUE_NUM, get16(data + 2));
    wr(&m, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
    wr(&m, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
    wr(&m, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
    wr(&m, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
    wr(&m, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
    wr(&m, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
    wr(&m, VIRTIO_MMIO_QUEUE_READY, 1);
    if (d->vq[0].ready) {
        /* A queue that has been running: indices anywhere in 0..65535. */
        d->vq[0].last_avail = get16(data + 6);
        d->vq[0].used_idx = get16(data + 6);
        d->vq[0].signalled_used = get16(data + 6);
        d->vq[0].signalled_valid = (flags & 32) != 0;
        if (gmem_contains(st->mem, used + 2, 2))
            memcpy(st->mem->host + (used + 2 - FUZZ_RAM_BASE), data + 6, 2);
    }
    if (!(flags & 8))
        wr(&m, VIRTIO_MMIO_STATUS, rd(&m, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);

    memcpy(st->before, st->mem->host, FUZZ_RAM);
    for (uint64_t i = 0; i < (st->mem->npages + 63) / 64; i++)
        atomic_store(&st->mem->dirty[i], 0);

    for (unsigned i = 0; i < nops; i++) {
        const uint8_t *op = data + FUZZ_HDR + 8 * i;
        unsigned sz = 1u << (op[2] & 3);
        uint64_t off = get16(op) % VIRTIO_MMIO_SIZE & ~(uint64_t)(sz - 1);
        uint64_t v;
        if (sz == 8)
            sz = 4;
        if (op[3] & 1)
            (void)virtio_mmio_ops.write(&m, off, sz, get32(op + 4));
        else
            (void)virtio_mmio_ops.read(&m, off, sz, &v);
    }
    notifies = 1 + data[20] % 4;
    for (unsigned i = 0; i < notifies; i++)
        wr(&m, VIRTIO_MMIO_QUEUE_NOTIFY, 0);

    /* Every changed page is dirty. */
    for (size_t p = 0; p < FUZZ_RAM; p += GMEM_PAGE_SIZE) {
        uint64_t pg = p >> GMEM_PAGE_SHIFT;
        bool dirty = (atomic_load(&st->mem->dirty[pg / 64]) >> (pg % 64)) & 1;
        if (!dirty && memcmp(st->before + p, st->mem->host + p, GMEM_PAGE_SIZE))
            abort();
    }
    if (d->broken && !(d->status & VIRTIO_STATUS_NEEDS_RESET))
        abort();
    if (st->debug)
        fprintf(stderr, "fuzz_virtq: %s: status 0x%x%s, queue ready %d, used %u, isr %u\n",
                d->ops->name, d->status, d->broken ? " (needs reset)" : "", d->vq[0].ready,
                d->vq[0].used_idx, d->isr);
    virtio_mmio_reset(&m);
    return 0;
}
