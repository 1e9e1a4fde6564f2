/*
 * Unit tests for the virtio core and the virtio-mmio transport: feature
 * negotiation, direct and indirect chains, EVENT_IDX and NO_INTERRUPT
 * suppression, malformed queues -> NEEDS_RESET (and recovery by reset),
 * dirty marking of everything the device writes, empty slots.
 *
 * The device under test is a "sink": it takes every chain, records its
 * shape, fills the writable part with 0xa5 and returns it.
 */
#include <errno.h>
#include <stdlib.h>

#include "board_check.h"
#include "virtq_driver.h"

struct sink {
    struct virtio_dev vdev;
    struct virtq_elem elem;
    unsigned popped;
    int last_pop; /* last virtq_pop() result */
    struct {
        uint16_t head;
        unsigned nout, nin;
        uint64_t out_len, in_len;
        uint64_t gpa0;
    } last;
    uint8_t config[8];
    uint32_t config_written;
};

static void sink_notify(struct virtio_dev *d, unsigned qi)
{
    struct sink *s = (struct sink *)d;
    struct virtq *q = &d->vq[qi];
    static uint8_t fill[65536];

    memset(fill, 0xa5, sizeof(fill));
    while ((s->last_pop = virtq_pop(d, q, &s->elem)) > 0) {
        size_t n = s->elem.in_len < sizeof(fill) ? s->elem.in_len : sizeof(fill);
        s->popped++;
        s->last.head = s->elem.head;
        s->last.nout = s->elem.nout;
        s->last.nin = s->elem.nin;
        s->last.out_len = s->elem.out_len;
        s->last.in_len = s->elem.in_len;
        s->last.gpa0 = s->elem.gpa[0];
        virtq_elem_write(d, &s->elem, 0, fill, n);
        virtq_push(d, q, &s->elem, (uint32_t)n);
    }
    virtq_notify(d, q);
}

static void sink_config_write(struct virtio_dev *d, uint32_t off, unsigned size, uint32_t val)
{
    struct sink *s = (struct sink *)d;
    (void)size;
    s->config_written = off << 16 | (val & 0xffff);
}

static void sink_fini(struct virtio_dev *d)
{
    (void)d; /* static storage */
}

static const struct virtio_dev_ops sink_ops = {
    .name = "sink",
    .queue_notify = sink_notify,
    .config_write = sink_config_write,
    .fini = sink_fini,
};

#define F_V1   VIRTIO_BIT(VIRTIO_F_VERSION_1)
#define F_IND  VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)
#define F_EVT  VIRTIO_BIT(VIRTIO_F_EVENT_IDX)
#define ST_ALL (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK)

static struct gmem *mem;
static struct sink sink;
static struct td t;

static void fresh(uint64_t features, uint16_t num)
{
    td_attach(&t, mem, &sink.vdev);
    td_setup(&t, features, num);
    sink.popped = 0;
    td_ack(&t);
    t.irq_raises = 0;
}

static bool broken(void)
{
    return (td_rd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET) != 0;
}

static void test_registers(void)
{
    uint64_t v = 0;
    struct virtio_mmio empty;

    td_attach(&t, mem, &sink.vdev);
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976, "magic 'virt'");
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_VERSION_REG), 2, "version 2 (modern)");
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_DEVICE_ID), 42, "device ID");
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_VENDOR_ID), 0x554d4551, "vendor QEMU");
    td_wr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)(F_IND | F_EVT | 0x10),
             "features bank 0: device's + INDIRECT_DESC + EVENT_IDX");
    td_wr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_DEVICE_FEATURES), 1, "features bank 1: VERSION_1");
    td_wr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_DEVICE_FEATURES), 0, "features bank 2: none");
    td_wr(&t, VIRTIO_MMIO_QUEUE_SEL, 1);
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_QUEUE_NUM_MAX), 64, "queue 1 max size");
    td_wr(&t, VIRTIO_MMIO_QUEUE_SEL, 2);
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "queue 2 does not exist");
    td_wr(&t, VIRTIO_MMIO_QUEUE_SEL, 1000);
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "queue 1000 does not exist");
    td_wr(&t, VIRTIO_MMIO_QUEUE_READY, 1); /* ignored */
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffff, "no shared memory");

    CHECK(virtio_mmio_ops.read(&t.mmio, VIRTIO_MMIO_CONFIG + 1, 1, &v) == 0 && v == 0x22,
          "config byte read");
    CHECK(virtio_mmio_ops.read(&t.mmio, VIRTIO_MMIO_CONFIG + 4, 4, &v) == 0 && v == 0x88776655,
          "config dword read");
    CHECK(virtio_mmio_ops.read(&t.mmio, VIRTIO_MMIO_CONFIG + 8, 4, &v) == 0 && v == 0xffffffff,
          "config beyond its length reads all-ones");
    CHECK(virtio_mmio_ops.read(&t.mmio, VIRTIO_MMIO_CONFIG + 7, 2, &v) == 0 && v == 0xffff,
          "config straddling its end reads all-ones");
    (void)virtio_mmio_ops.write(&t.mmio, VIRTIO_MMIO_CONFIG + 2, 2, 0xbeef);
    CHECK_EQ(sink.config_written, 2u << 16 | 0xbeef, "config write reaches the device");
    CHECK(virtio_mmio_ops.read(&t.mmio, VIRTIO_MMIO_MAGIC_VALUE, 2, &v) == 0 && v == 0,
          "register read of 2 bytes gives 0 (QEMU)");

    virtio_mmio_init(&empty, NULL, NULL);
    CHECK(virtio_mmio_ops.read(&empty, 0, 4, &v) == 0 && v == 0x74726976, "empty slot: magic");
    CHECK(virtio_mmio_ops.read(&empty, 4, 4, &v) == 0 && v == 1, "empty slot: version 1");
    CHECK(virtio_mmio_ops.read(&empty, 8, 4, &v) == 0 && v == 0, "empty slot: device ID 0");
    CHECK(virtio_mmio_ops.read(&empty, 0, 1, &v) == 0 && v == 0x76, "empty slot: byte read");
    CHECK(virtio_mmio_ops.write(&empty, 0x70, 4, 1) == 0, "empty slot: writes ignored");
}

static void test_negotiation(void)
{
    td_attach(&t, mem, &sink.vdev);
    CHECK_EQ(td_negotiate(&t, F_V1 | F_IND), ST_ALL, "FEATURES_OK accepted");
    CHECK(virtio_has_feature(&sink.vdev, VIRTIO_F_INDIRECT_DESC) &&
              !virtio_has_feature(&sink.vdev, VIRTIO_F_EVENT_IDX),
          "negotiated features");
    CHECK_EQ(td_negotiate(&t, F_IND), ST_ALL & ~VIRTIO_STATUS_FEATURES_OK,
             "FEATURES_OK refused without VERSION_1");
    CHECK_EQ(td_negotiate(&t, F_V1 | VIRTIO_BIT(7)), ST_ALL & ~VIRTIO_STATUS_FEATURES_OK,
             "FEATURES_OK refused with a feature not offered");
    td_negotiate(&t, F_V1);
    td_wr(&t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    td_wr(&t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)F_IND);
    CHECK(!virtio_has_feature(&sink.vdev, VIRTIO_F_INDIRECT_DESC),
          "features frozen after FEATURES_OK");
    td_wr(&t, VIRTIO_MMIO_STATUS, 0);
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_STATUS), 0, "status 0 resets");
    CHECK_EQ(sink.vdev.driver_features, 0, "reset clears features");
}

static void test_direct_chain(void)
{
    struct td_buf b[4] = {{TD_DATA, 16, false},
                          {TD_DATA + 0x1000, 100, false},
                          {TD_DATA + 0x2000, 200, true},
                          {TD_DATA + 0x3000, 300, true}};
    uint32_t id = 0, len = 0;
    uint8_t got[300];
    uint16_t head;

    fresh(F_V1, 16);
    head = td_add(&t, b, 4, false);
    td_kick(&t, 0);
    CHECK(sink.popped == 1 && sink.last.head == head && sink.last.nout == 2 && sink.last.nin == 2 &&
              sink.last.out_len == 116 && sink.last.in_len == 500 && sink.last.gpa0 == TD_DATA,
          "direct chain: 2 readable + 2 writable buffers");
    CHECK(td_used(&t, &id, &len) && id == head && len == 500, "used entry: head and length");
    CHECK(t.irq && t.irq_raises == 1, "interrupt raised");
    CHECK_EQ(td_ack(&t), VIRTIO_ISR_QUEUE, "InterruptStatus: used buffer");
    CHECK(!t.irq, "InterruptACK lowers the line");
    CHECK(gmem_read(mem, TD_DATA + 0x3000, got, 300) == 0 && got[0] == 0xa5 && got[299] == 0xa5,
          "writable buffers filled");
    CHECK(gmem_read(mem, TD_DATA + 0x1000, got, 100) == 0 && got[0] == 0, "readable untouched");

    /* Many chains, wrapping the ring twice. */
    for (int i = 0; i < 40; i++) {
        td_add(&t, b, 4, false);
        td_kick(&t, 0);
    }
    while (td_used(&t, &id, &len))
        ;
    CHECK(sink.popped == 41 && t.used_seen == 41 && !broken(), "41 chains through a 16-ring");
    td_kick(&t, 0);
    CHECK_EQ(sink.popped, 41, "a notify with nothing new does nothing");
    td_kick(&t, 7);
    CHECK(!broken(), "notify of a queue that does not exist is ignored");
}

static void test_indirect(void)
{
    struct td_buf b[3] = {
        {TD_DATA, 16, false}, {TD_DATA + 0x1000, 512, true}, {TD_DATA + 0x2000, 1, true}};
    uint32_t id, len;
    uint16_t head;

    fresh(F_V1 | F_IND, 16);
    head = td_add(&t, b, 3, true);
    td_kick(&t, 0);
    CHECK(sink.popped == 1 && sink.last.nout == 1 && sink.last.nin == 2 &&
              sink.last.in_len == 513 && td_used(&t, &id, &len) && id == head && len == 513,
          "indirect chain of 3");
    CHECK(!broken(), "device healthy");
}

static void test_event_idx(void)
{
    struct td_buf b[1] = {{TD_DATA, 8, true}};
    uint16_t used_event_gpa_off = (uint16_t)(4 + 2 * 16);

    fresh(F_V1 | F_EVT, 16);
    /* used_event = 2: interrupt when used idx passes 2 (i.e. reaches 3). */
    td_st16(&t, TD_AVAIL + used_event_gpa_off, 2);
    td_add(&t, b, 1, false);
    td_kick(&t, 0);
    CHECK(t.irq_raises == 1, "first used buffer always interrupts");
    CHECK_EQ(td_ld16(&t, TD_USED + 4 + 8 * 16), 1, "avail_event = last_avail after pop");
    td_ack(&t);
    td_add(&t, b, 1, false);
    td_kick(&t, 0);
    CHECK(t.irq_raises == 1, "used idx 2 does not cross used_event 2: no interrupt");
    td_add(&t, b, 1, false);
    td_kick(&t, 0);
    CHECK(t.irq_raises == 2, "used idx 3 crosses used_event 2: interrupt");
    td_ack(&t);
    CHECK_EQ(td_ld16(&t, TD_USED + 4 + 8 * 16), 3, "avail_event follows");

    /* Without EVENT_IDX: VIRTQ_AVAIL_F_NO_INTERRUPT suppresses. */
    fresh(F_V1, 16);
    td_st16(&t, TD_AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
    td_add(&t, b, 1, false);
    td_kick(&t, 0);
    CHECK(sink.popped == 1 && t.irq_raises == 0, "NO_INTERRUPT: used but no interrupt");
    td_st16(&t, TD_AVAIL, 0);
    td_add(&t, b, 1, false);
    td_kick(&t, 0);
    CHECK(t.irq_raises == 1, "flag cleared: interrupt");
    CHECK_EQ(td_ld16(&t, TD_USED), 0, "used flags: notifications wanted");
    CHECK(!virtq_enable_notify(&sink.vdev, &sink.vdev.vq[0], false) &&
              td_ld16(&t, TD_USED) == VIRTQ_USED_F_NO_NOTIFY,
          "enable_notify(false) sets NO_NOTIFY");
    td_publish(&t, 0);
    CHECK(virtq_enable_notify(&sink.vdev, &sink.vdev.vq[0], true) && td_ld16(&t, TD_USED) == 0,
          "enable_notify(true) clears it and reports the pending chain");
}

static void test_before_driver_ok(void)
{
    struct td_buf b[1] = {{TD_DATA, 8, true}};

    td_attach(&t, mem, &sink.vdev);
    sink.popped = 0;
    td_negotiate(&t, F_V1);
    td_queue(&t, 0, 8);
    td_add(&t, b, 1, false);
    td_kick(&t, 0);
    CHECK_EQ(sink.popped, 0, "no buffer is taken before DRIVER_OK (§2.1.2)");
    td_driver_ok(&t);
    CHECK_EQ(sink.popped, 1, "pending buffers are taken at DRIVER_OK");
}

/* A malformed chain must leave the device in NEEDS_RESET with a config
 * interrupt, take nothing more, and recover after a reset. */
static void expect_broken(const char *what)
{
    struct td_buf ok[1] = {{TD_DATA, 8, true}};
    unsigned popped = sink.popped;
    uint32_t isr;

    td_kick(&t, 0);
    isr = td_ack(&t);
    CHECK(broken() && (isr & VIRTIO_ISR_CONFIG) && sink.last_pop < 0 && sink.popped == popped,
          "%s -> NEEDS_RESET + config interrupt", what);
    td_add(&t, ok, 1, false);
    td_kick(&t, 0);
    CHECK(sink.popped == popped && !t.irq, "%s: nothing processed while broken", what);
}

static void test_malformed(void)
{
    struct td_buf b2[2] = {{TD_DATA, 8, false}, {TD_DATA + 0x1000, 8, true}};
    struct td_buf ok[1] = {{TD_DATA, 8, true}};
    uint64_t count0;

    fresh(F_V1 | F_IND, 16);
    count0 = sink.vdev.broken_count;
    td_put_desc(&t, TD_DESC, 0, TD_DATA, 8, VIRTQ_DESC_F_NEXT, 1);
    td_put_desc(&t, TD_DESC, 1, TD_DATA, 8, VIRTQ_DESC_F_NEXT, 0);
    td_publish(&t, 0);
    expect_broken("descriptor loop");
    CHECK_EQ(sink.vdev.broken_count, count0 + 1, "counted once");

    td_setup(&t, F_V1 | F_IND, 16);
    CHECK(!broken(), "reset clears NEEDS_RESET");
    td_add(&t, ok, 1, false);
    td_kick(&t, 0);
    CHECK(td_used(&t, &(uint32_t){0}, &(uint32_t){0}), "works again after reset");

    fresh(F_V1 | F_IND, 16);
    td_publish(&t, 16);
    expect_broken("head index == queue size");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_DESC, 0, TD_DATA, 8, VIRTQ_DESC_F_NEXT, 99);
    td_publish(&t, 0);
    expect_broken("next index beyond the table");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_DESC, 0, TD_DATA, 0, 0, 0);
    td_publish(&t, 0);
    expect_broken("zero-length buffer");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_DESC, 0, TD_RAM_BASE + TD_RAM_SIZE - 4, 8, 0, 0);
    td_publish(&t, 0);
    expect_broken("buffer crossing the end of RAM");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_DESC, 0, 0x10000000, 8, 0, 0); /* the UART, not RAM */
    td_publish(&t, 0);
    expect_broken("buffer in MMIO space");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_DESC, 0, 0xfffffffffffffff8ull, 16, 0, 0);
    td_publish(&t, 0);
    expect_broken("buffer wrapping the address space");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_DESC, 0, TD_DATA, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
    td_put_desc(&t, TD_DESC, 1, TD_DATA, 8, 0, 0);
    td_publish(&t, 0);
    expect_broken("readable buffer after a writable one");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_INDIRECT, 0, TD_INDIRECT, 16, VIRTQ_DESC_F_INDIRECT, 0);
    td_put_desc(&t, TD_DESC, 0, TD_INDIRECT, 16, VIRTQ_DESC_F_INDIRECT, 0);
    td_publish(&t, 0);
    expect_broken("nested indirect table");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_DESC, 0, TD_INDIRECT, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
    td_publish(&t, 0);
    expect_broken("indirect with NEXT");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_DESC, 0, TD_INDIRECT, 24, VIRTQ_DESC_F_INDIRECT, 0);
    td_publish(&t, 0);
    expect_broken("indirect table length not a multiple of 16");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_DESC, 0, TD_INDIRECT, 16 * 2048, VIRTQ_DESC_F_INDIRECT, 0);
    td_publish(&t, 0);
    expect_broken("indirect table of 2048 entries");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_INDIRECT, 0, TD_DATA, 8, VIRTQ_DESC_F_NEXT, 1);
    td_put_desc(&t, TD_INDIRECT, 1, TD_DATA, 8, VIRTQ_DESC_F_NEXT, 0);
    td_put_desc(&t, TD_DESC, 0, TD_INDIRECT, 32, VIRTQ_DESC_F_INDIRECT, 0);
    td_publish(&t, 0);
    expect_broken("loop inside an indirect table");

    fresh(F_V1 | F_IND, 16);
    td_add(&t, b2, 2, false);
    td_st16(&t, TD_AVAIL + 2, 17); /* 17 new entries in a 16-ring */
    expect_broken("available index moved too far");

    fresh(F_V1 | F_IND, 16);
    td_put_desc(&t, TD_DESC, 0, TD_DATA, 0x80000000u, VIRTQ_DESC_F_NEXT, 1);
    td_put_desc(&t, TD_DESC, 1, TD_DATA, 0x80000000u, 0, 0);
    td_publish(&t, 0);
    expect_broken("buffers larger than RAM");

    /* Bad layouts at QueueReady. */
    td_attach(&t, mem, &sink.vdev);
    td_negotiate(&t, F_V1);
    td_wr(&t, VIRTIO_MMIO_QUEUE_SEL, 0);
    td_wr(&t, VIRTIO_MMIO_QUEUE_NUM, 12);
    td_wr(&t, VIRTIO_MMIO_QUEUE_READY, 1);
    CHECK(broken() && td_rd(&t, VIRTIO_MMIO_QUEUE_READY) == 0, "queue size 12 refused");
    td_negotiate(&t, F_V1);
    td_wr(&t, VIRTIO_MMIO_QUEUE_NUM, 512);
    td_wr(&t, VIRTIO_MMIO_QUEUE_READY, 1);
    CHECK(broken() && td_rd(&t, VIRTIO_MMIO_QUEUE_READY) == 0, "queue size above max refused");
    td_negotiate(&t, F_V1);
    td_wr(&t, VIRTIO_MMIO_QUEUE_NUM, 16);
    td_wr(&t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(TD_RAM_BASE + TD_RAM_SIZE - 16));
    td_wr(&t, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
    td_wr(&t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)TD_AVAIL);
    td_wr(&t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)TD_USED);
    td_wr(&t, VIRTIO_MMIO_QUEUE_READY, 1);
    CHECK(broken() && td_rd(&t, VIRTIO_MMIO_QUEUE_READY) == 0,
          "descriptor table crossing the end of RAM refused");
    td_negotiate(&t, F_V1);
    td_wr(&t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)TD_DESC + 8);
    td_wr(&t, VIRTIO_MMIO_QUEUE_READY, 1);
    CHECK(broken(), "misaligned descriptor table refused");
    td_negotiate(&t, F_V1);
    td_wr(&t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)TD_DESC);
    td_wr(&t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 1);
    td_wr(&t, VIRTIO_MMIO_QUEUE_READY, 1);
    CHECK(broken(), "used ring above 4 GiB (outside RAM) refused");
    CHECK(!t.irq, "no config interrupt before DRIVER_OK");
}

static void test_dirty(void)
{
    struct td_buf b[3] = {{TD_DATA, 16, false},
                          {TD_DATA + 0x5000, 4096 + 8, true}, /* spans two pages */
                          {TD_DATA + 0x9000, 100, true}};

    fresh(F_V1 | F_EVT, 16);
    td_add(&t, b, 3, false);
    td_clear_dirty(mem);
    td_kick(&t, 0);
    CHECK(td_dirty(mem, TD_USED), "used ring page dirty");
    CHECK(td_dirty(mem, TD_DATA + 0x5000) && td_dirty(mem, TD_DATA + 0x6000) &&
              td_dirty(mem, TD_DATA + 0x9000),
          "written buffers dirty (both pages of the spanning one)");
    CHECK(!td_dirty(mem, TD_DATA) && !td_dirty(mem, TD_DESC) && !td_dirty(mem, TD_AVAIL) &&
              !td_dirty(mem, TD_DATA + 0x7000),
          "readable buffer, descriptor table, avail ring, untouched page clean");
}

int main(void)
{
    mem = gmem_new(TD_RAM_BASE, TD_RAM_SIZE);
    if (!mem)
        return 1;
    if (virtio_dev_init(&sink.vdev, &sink_ops, mem, 42, 0x10, 2, 64) < 0)
        return 1;
    memcpy(sink.config, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
    sink.vdev.config = sink.config;
    sink.vdev.config_len = sizeof(sink.config);
    CHECK(virtio_dev_init(&sink.vdev, &sink_ops, mem, 42, 0, 2, 48) == -EINVAL,
          "queue size must be a power of 2");
    if (virtio_dev_init(&sink.vdev, &sink_ops, mem, 42, 0x10, 2, 64) < 0)
        return 1;
    sink.vdev.config = sink.config;
    sink.vdev.config_len = sizeof(sink.config);

    test_registers();
    test_negotiation();
    test_direct_chain();
    test_indirect();
    test_event_idx();
    test_before_driver_ok();
    test_malformed();
    test_dirty();
    gmem_free(mem);
    return board_check_done();
}
