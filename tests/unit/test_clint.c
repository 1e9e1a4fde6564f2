/* Unit tests for the CLINT with a fake clock: register access, mtime
 * arithmetic, MSIP/MTIP levels, deadlines and reset (QEMU 7.2 semantics). */
#include <string.h>

#include "board_check.h"
#include "devices/clint.h"
#include "hart/hart.h"

#define BASE 0x2000000ull

struct fake {
    uint64_t now;
    bool line[4][16];
    unsigned changes;
};

static uint64_t fake_now(void *opaque)
{
    return ((struct fake *)opaque)->now;
}

static void fake_irq(void *opaque, unsigned hart, unsigned irq, bool level)
{
    struct fake *f = opaque;
    f->line[hart][irq] = level;
    f->changes++;
}

static struct bus bus;

static uint64_t rd(uint64_t off, unsigned size, int *err)
{
    uint64_t v = 0;
    *err = bus_read(&bus, BASE + off, size, &v);
    return v;
}

static int wr(uint64_t off, unsigned size, uint64_t v)
{
    return bus_write(&bus, BASE + off, size, v);
}

int main(void)
{
    struct fake f;
    struct clint_host host = {&f, fake_now, fake_irq};
    struct clint *c;
    struct bus_region r;
    int err;
    uint64_t v;

    memset(&f, 0, sizeof(f));
    f.now = 5000000000ull; /* 5 s of host uptime */
    CHECK(clint_new(&host, 0) == NULL, "0 harts refused");
    CHECK(clint_new(&host, CLINT_MAX_HARTS + 1) == NULL, "too many harts refused");
    c = clint_new(&host, 2);
    CHECK(c != NULL, "clint_new with 2 harts");
    if (!c)
        return board_check_done();
    bus_init(&bus);
    r = (struct bus_region){
        "msip", BASE + CLINT_MSIP_OFF, CLINT_MSIP_SIZE, 4, 4, 4, &clint_msip_ops, c};
    CHECK(bus_add(&bus, &r) == 0, "msip region mapped");
    r = (struct bus_region){
        "mtimer", BASE + CLINT_MTIMER_OFF, CLINT_MTIMER_SIZE, 4, 8, 8, &clint_mtimer_ops, c};
    CHECK(bus_add(&bus, &r) == 0, "mtimer region mapped");

    CHECK(f.line[0][RV_IRQ_MTI] && f.line[1][RV_IRQ_MTI], "power-on: mtimecmp=0 so MTIP high");
    CHECK_EQ(clint_mtime(c), 0, "mtime starts at 0 when the board is created");
    f.now += 1234567;
    CHECK_EQ(clint_mtime(c), 12345, "10 MHz: 1234567 ns = 12345 ticks");
    CHECK_EQ(rd(0xbff8, 8, &err), 12345, "mtime via 8-byte read");
    CHECK_EQ(rd(0xbff8, 4, &err), 12345, "mtime low half via 4-byte read");
    CHECK_EQ(rd(0xbffc, 4, &err), 0, "mtime high half via 4-byte read");

    /* Access sizes, as on QEMU: msip 4 only, mtimer 4 or 8, 1/2 fault. */
    (void)rd(0x0, 8, &err);
    CHECK(err < 0, "8-byte msip read faults");
    (void)rd(0x0, 2, &err);
    CHECK(err < 0, "2-byte msip read faults");
    (void)rd(0x4000, 1, &err);
    CHECK(err < 0, "1-byte mtimecmp read faults");
    (void)rd(0xc000, 4, &err);
    CHECK(err < 0, "+0xc000 is unassigned");

    /* MSIP */
    f.changes = 0;
    CHECK(wr(0x0, 4, 0xffffffff) == 0 && f.line[0][RV_IRQ_MSI], "msip=1 raises MSI on hart 0");
    CHECK_EQ(rd(0x0, 4, &err), 1, "msip reads back bit 0 only");
    CHECK(wr(0x0, 4, 2) == 0 && !f.line[0][RV_IRQ_MSI], "msip=2 clears (bit 0 only)");
    CHECK(wr(0x4, 4, 1) == 0 && f.line[1][RV_IRQ_MSI] && !f.line[0][RV_IRQ_MSI],
          "msip[1] raises MSI on hart 1 only");
    CHECK(wr(0x8, 4, 1) == 0 && rd(0x8, 4, &err) == 0, "msip of a missing hart: RAZ/WI");
    f.changes = 0;
    CHECK(wr(0x4, 4, 1) == 0 && f.changes == 0, "rewriting the same level sends nothing");

    /* MTIP follows mtime >= mtimecmp. */
    CHECK(wr(0x4000, 8, UINT64_MAX) == 0 && !f.line[0][RV_IRQ_MTI], "mtimecmp=max lowers MTIP");
    CHECK(f.line[1][RV_IRQ_MTI], "hart 1 MTIP untouched");
    CHECK(wr(0x4000, 8, 20000) == 0 && !f.line[0][RV_IRQ_MTI], "mtimecmp in the future: low");
    CHECK_EQ(clint_next_deadline(c), f.now + (20000 - 12345) * 100 - 67,
             "deadline is the host ns when mtime reaches mtimecmp");
    f.now = clint_next_deadline(c) - 1;
    clint_update(c);
    CHECK(!f.line[0][RV_IRQ_MTI], "one ns before the deadline: still low");
    f.now++;
    clint_update(c);
    CHECK(f.line[0][RV_IRQ_MTI] && clint_mtime(c) == 20000, "at the deadline: MTIP high");
    CHECK_EQ(rd(0x4000, 8, &err), 20000, "mtimecmp reads back");
    CHECK_EQ(rd(0x4004, 4, &err), 0, "mtimecmp high half");

    /* 4-byte halves merge into the 64-bit register. */
    CHECK(wr(0x4000, 8, 0x0123456789abcdefull) == 0, "mtimecmp 8-byte write");
    CHECK(wr(0x4004, 4, 0x77) == 0 && rd(0x4000, 8, &err) == 0x0000007789abcdefull,
          "high-half write keeps the low half");
    CHECK(wr(0x4000, 4, 0) == 0 && rd(0x4000, 8, &err) == 0x0000007700000000ull,
          "low-half write keeps the high half");
    CHECK(!f.line[0][RV_IRQ_MTI], "far mtimecmp: low");
    CHECK(wr(0x4004, 4, 0) == 0 && f.line[0][RV_IRQ_MTI], "high half 0: mtimecmp passed, high");
    CHECK(wr(0x4010, 8, 5) == 0 && rd(0x4010, 8, &err) == 0, "mtimecmp of a missing hart: RAZ/WI");

    /* Writing mtime moves time and re-evaluates MTIP. */
    CHECK(wr(0x4000, 8, 1000000) == 0 && !f.line[0][RV_IRQ_MTI], "mtimecmp = 1e6");
    CHECK(wr(0xbff8, 8, 2000000) == 0 && f.line[0][RV_IRQ_MTI], "mtime jumps past: high");
    CHECK_EQ(clint_mtime(c), 2000000, "mtime took the written value");
    f.now += 100;
    CHECK_EQ(clint_mtime(c), 2000001, "and keeps counting");
    CHECK(wr(0xbff8, 8, 0) == 0 && !f.line[0][RV_IRQ_MTI], "mtime = 0: low again");
    CHECK(wr(0xbffc, 4, 1) == 0 && clint_mtime(c) == (1ull << 32), "mtime high-half write");
    CHECK(wr(0xbff8, 4, 5) == 0 && clint_mtime(c) == (1ull << 32) + 5, "mtime low-half write");
    CHECK_EQ(clint_next_deadline(c), UINT64_MAX, "every MTIP already high: no deadline");
    (void)wr(0x4008, 8, UINT64_MAX);
    (void)wr(0x4000, 8, UINT64_MAX);
    CHECK_EQ(clint_next_deadline(c), UINT64_MAX, "no reachable mtimecmp: no deadline");
    c->st.harts[1].mtimecmp = 0; /* due but not raised yet (as between two updates) */
    CHECK_EQ(clint_next_deadline(c), f.now, "due but not raised: deadline is now");
    clint_update(c);

    /* Reset: msip cleared, delta dropped, mtimecmp kept (QEMU 7.2). */
    (void)wr(0x0, 4, 1);
    (void)wr(0x4000, 8, 0x123456789ull);
    clint_reset(c);
    CHECK(!f.line[0][RV_IRQ_MSI] && !f.line[1][RV_IRQ_MSI] && rd(0x0, 4, &err) == 0,
          "reset clears msip");
    CHECK_EQ(rd(0x4000, 8, &err), 0x123456789ull, "reset keeps mtimecmp");
    CHECK_EQ(clint_mtime(c), (f.now - 5000000000ull) / 100,
             "reset: mtime follows host clock again");
    v = clint_mtime(c);
    CHECK(!f.line[0][RV_IRQ_MTI] && v < 0x123456789ull, "reset: MTIP re-evaluated");

    clint_free(c);
    clint_free(NULL);
    return board_check_done();
}
