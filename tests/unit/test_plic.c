/* Unit tests for the PLIC register model and its interrupt routing. */
#include <string.h>

#include "board_check.h"
#include "devices/plic.h"

#define BASE 0xc000000ull

struct lines {
    bool out[8]; /* per context */
    unsigned changes;
};

static void set_irq(void *o, unsigned ctx, bool level)
{
    struct lines *l = o;
    if (ctx < 8)
        l->out[ctx] = level;
    l->changes++;
}

static struct bus bus;

static uint64_t rd(uint64_t off)
{
    uint64_t v = 0xdead;
    if (bus_read(&bus, BASE + off, 4, &v) < 0)
        return 0xfa17;
    return v;
}

static void wr(uint64_t off, uint32_t v)
{
    CHECK(bus_write(&bus, BASE + off, 4, v) == 0, "write 0x%llx = 0x%x", (unsigned long long)off,
          v);
}

#define PRIO(id)     (4ull * (id))
#define ENABLE(c, w) (PLIC_ENABLE_OFF + PLIC_ENABLE_STRIDE * (c) + 4ull * (w))
#define THRESHOLD(c) (PLIC_CONTEXT_OFF + PLIC_CONTEXT_STRIDE * (c))
#define CLAIM(c)     (THRESHOLD(c) + 4)

int main(void)
{
    struct lines l;
    struct plic_host host = {&l, set_irq};
    struct plic *p;
    struct bus_region reg;
    uint64_t v;

    memset(&l, 0, sizeof(l));
    CHECK(plic_new(&host, 0) == NULL, "0 harts refused");
    p = plic_new(&host, 2); /* contexts 0 (h0 M), 1 (h0 S), 2 (h1 M), 3 (h1 S) */
    CHECK(p != NULL, "plic_new");
    if (!p)
        return board_check_done();
    bus_init(&bus);
    reg = (struct bus_region){"plic", BASE, PLIC_SIZE, 4, 4, 4, &plic_ops, p};
    CHECK(bus_add(&bus, &reg) == 0, "mapped");

    /* Register file. */
    CHECK_EQ(rd(PRIO(10)), 0, "priorities reset to 0");
    wr(PRIO(10), 0xff);
    CHECK_EQ(rd(PRIO(10)), 7, "3 priority bits");
    wr(PRIO(96), 5);
    CHECK_EQ(rd(PRIO(96)), 5, "ID 96 priority writable (QEMU accepts ndev's last)");
    CHECK_EQ(rd(PRIO(0)), 0, "ID 0 priority reads 0");
    wr(ENABLE(1, 0), 0xffffffff);
    CHECK_EQ(rd(ENABLE(1, 0)), 0xfffffffe, "enable bit of ID 0 is hardwired 0");
    wr(ENABLE(1, 0), 0);
    wr(ENABLE(3, 2), 0x12345678);
    CHECK_EQ(rd(ENABLE(3, 2)), 0x12345678, "context 3 enable word 2");
    CHECK_EQ(rd(ENABLE(3, 3)), 0, "enable words past the sources read 0");
    wr(ENABLE(3, 2), 0);
    wr(THRESHOLD(2), 0xf);
    CHECK_EQ(rd(THRESHOLD(2)), 7, "threshold has 3 bits");
    wr(THRESHOLD(2), 0);
    CHECK_EQ(rd(ENABLE(4, 0)), 0, "contexts past the harts read 0");
    CHECK_EQ(rd(THRESHOLD(4)), 0, "thresholds past the harts read 0");
    CHECK(bus_read(&bus, BASE + PRIO(10), 8, &v) < 0, "8-byte access faults");
    CHECK(bus_read(&bus, BASE + PRIO(10), 1, &v) < 0, "1-byte access faults");
    CHECK_EQ(rd(0x5ffffc), 0, "unassigned offsets inside the region read 0");

    /* A level source routed to hart 0's S context. */
    wr(PRIO(10), 1);
    wr(ENABLE(1, 0), 1u << 10);
    plic_set_irq(p, 10, true);
    CHECK_EQ(rd(PLIC_PENDING_OFF), 1u << 10, "line high: pending");
    CHECK(l.out[1] && !l.out[0] && !l.out[3], "SEIP of hart 0 only");
    wr(THRESHOLD(1), 1);
    CHECK(!l.out[1], "priority must exceed the threshold");
    CHECK_EQ(rd(CLAIM(1)), 0, "claim below threshold gives 0");
    wr(THRESHOLD(1), 0);
    CHECK(l.out[1], "threshold lowered: interrupt again");
    CHECK_EQ(rd(CLAIM(1)), 10, "claim returns the source");
    CHECK(!l.out[1], "claimed: output drops");
    CHECK_EQ(rd(PLIC_PENDING_OFF), 0, "claimed: pending clear");
    CHECK_EQ(rd(CLAIM(1)), 0, "second claim: nothing");
    wr(CLAIM(1), 10);
    CHECK(l.out[1], "complete with the line still high: pending again");
    CHECK_EQ(rd(CLAIM(1)), 10, "claimed again");
    plic_set_irq(p, 10, false);
    wr(CLAIM(1), 10);
    CHECK(!l.out[1] && rd(PLIC_PENDING_OFF) == 0, "line low at complete: quiet");

    /* Line pulses while claimed are not lost and not doubled. */
    plic_set_irq(p, 10, true);
    CHECK_EQ(rd(CLAIM(1)), 10, "claim");
    plic_set_irq(p, 10, false);
    plic_set_irq(p, 10, true);
    CHECK(!l.out[1], "claimed source stays gated");
    wr(CLAIM(1), 10);
    CHECK(l.out[1], "re-raised line seen after complete");
    plic_set_irq(p, 10, false);
    CHECK(l.out[1] && rd(PLIC_PENDING_OFF) == 1u << 10,
          "line low before the claim: the request stays pending (QEMU)");
    CHECK_EQ(rd(CLAIM(1)), 10, "and is claimed");
    wr(CLAIM(1), 10);
    CHECK(!l.out[1] && rd(PLIC_PENDING_OFF) == 0, "line low at complete: no new request");

    /* Priorities and ties across sources, and two harts. */
    wr(PRIO(1), 3);
    wr(PRIO(11), 3);
    wr(PRIO(40), 6);
    wr(ENABLE(1, 0), (1u << 1) | (1u << 11));
    wr(ENABLE(1, 1), 1u << 8); /* ID 40 */
    wr(ENABLE(2, 0), 1u << 11);
    plic_set_irq(p, 1, true);
    plic_set_irq(p, 11, true);
    plic_set_irq(p, 40, true);
    CHECK(l.out[1] && l.out[2] && !l.out[0] && !l.out[3], "hart 0 S and hart 1 M interrupted");
    CHECK_EQ(rd(PLIC_PENDING_OFF + 4), 1u << 8, "pending word 1");
    CHECK_EQ(rd(CLAIM(1)), 40, "highest priority first");
    CHECK_EQ(rd(CLAIM(1)), 1, "then the lowest ID among equal priorities");
    CHECK_EQ(rd(CLAIM(2)), 11, "hart 1 claims 11");
    CHECK(!l.out[2], "hart 1 has nothing left");
    CHECK_EQ(rd(CLAIM(1)), 0, "11 is claimed by hart 1: hart 0 gets nothing");
    CHECK(!l.out[1], "hart 0 quiet");
    wr(CLAIM(3), 11);
    CHECK_EQ(rd(CLAIM(1)), 0, "complete through a context that does not enable 11: ignored");
    wr(CLAIM(2), 11);
    CHECK(l.out[1] && l.out[2], "complete re-arms 11 for both contexts");
    plic_set_irq(p, 11, false);
    plic_set_irq(p, 1, false);
    plic_set_irq(p, 40, false);
    CHECK_EQ(rd(CLAIM(2)), 11, "11 stays pending after its line dropped");
    wr(CLAIM(2), 11);
    wr(CLAIM(1), 1);
    wr(CLAIM(1), 40);
    CHECK(!l.out[1] && !l.out[2], "all quiet");

    /* Out-of-range sources are ignored; reset keeps line levels. */
    plic_set_irq(p, 0, true);
    plic_set_irq(p, PLIC_NUM_SOURCES, true);
    CHECK_EQ(rd(PLIC_PENDING_OFF), 0, "IDs 0 and 96 have no line");
    wr(PRIO(5), 1);
    wr(ENABLE(0, 0), 1u << 5);
    plic_set_irq(p, 5, true);
    CHECK(l.out[0], "M context of hart 0");
    /* An enable write alone does not re-evaluate the outputs (QEMU 7.2). */
    wr(ENABLE(0, 0), 0);
    wr(PRIO(5), 1);
    CHECK(!l.out[0], "disabled, and the priority write updated the output");
    wr(ENABLE(0, 0), 1u << 5);
    CHECK(!l.out[0], "enable write: output not yet re-evaluated (QEMU)");
    wr(THRESHOLD(0), 0);
    CHECK(l.out[0], "the next threshold write raises it");
    plic_reset(p);
    CHECK(!l.out[0] && rd(PRIO(5)) == 0 && rd(ENABLE(0, 0)) == 0, "reset clears registers");
    CHECK_EQ(rd(PLIC_PENDING_OFF), 1u << 5, "a line still high is pending after reset");
    CHECK_EQ(rd(PLIC_PENDING_OFF + 8), 0, "pending word 2");
    wr(PLIC_PENDING_OFF, 0);
    CHECK_EQ(rd(PLIC_PENDING_OFF), 1u << 5, "pending is read-only");

    plic_free(p);
    plic_free(NULL);
    return board_check_done();
}
