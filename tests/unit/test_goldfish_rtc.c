/* Unit tests for the goldfish RTC with fake clocks. */
#include <string.h>

#include "board_check.h"
#include "devices/goldfish_rtc.h"

struct clk {
    uint64_t real, mono;
    bool irq;
};

static uint64_t clk_real(void *o)
{
    return ((struct clk *)o)->real;
}

static uint64_t clk_mono(void *o)
{
    return ((struct clk *)o)->mono;
}

static void clk_irq(void *o, bool level)
{
    ((struct clk *)o)->irq = level;
}

static struct bus bus;

static uint64_t rd(uint64_t off, unsigned size)
{
    uint64_t v = 0xdead;
    if (bus_read(&bus, 0x101000 + off, size, &v) < 0)
        return 0xfa17;
    return v;
}

static int wr(uint64_t off, uint64_t v)
{
    return bus_write(&bus, 0x101000 + off, 4, v);
}

int main(void)
{
    struct clk c = {.real = 0x18ec155b3e13c6e0ull, .mono = 1000};
    struct goldfish_rtc_host host = {&c, clk_real, clk_mono, clk_irq};
    struct goldfish_rtc *r = goldfish_rtc_new(&host);
    struct bus_region reg;

    CHECK(r != NULL, "goldfish_rtc_new");
    if (!r)
        return board_check_done();
    bus_init(&bus);
    reg = (struct bus_region){"rtc", 0x101000, GOLDFISH_RTC_SIZE, 4, 8, 4, &goldfish_rtc_ops, r};
    CHECK(bus_add(&bus, &reg) == 0, "mapped");

    CHECK_EQ(rd(0x0, 4), 0x3e13c6e0, "TIME_LOW is the host wall clock");
    c.real += 1ull << 32;
    CHECK_EQ(rd(0x4, 4), 0x18ec155b, "TIME_HIGH is latched by the TIME_LOW read");
    CHECK_EQ(rd(0x0, 8), 0x18ec155c3e13c6e0ull, "8-byte read: low then latched high");
    CHECK_EQ(rd(0x0, 1), 0xfa17, "1-byte access faults");
    CHECK_EQ(rd(0x20, 4), 0, "0x20 reads 0");
    CHECK_EQ(rd(0x24, 4), 0xfa17, "0x24 is past the device");

    CHECK(wr(0x4, 0) == 0 && wr(0x0, 5) == 0 && rd(0x0, 4) == 5 && rd(0x4, 4) == 0,
          "the guest sets the time");
    c.real += 100;
    CHECK_EQ(rd(0x0, 8), 105, "and it keeps counting");

    CHECK(wr(0xc, 0) == 0 && wr(0x8, 1000) == 0 && rd(0x18, 4) == 1, "alarm armed");
    CHECK_EQ(rd(0x8, 4), 1000, "ALARM_LOW reads back");
    CHECK_EQ(goldfish_rtc_next_deadline(r), c.mono + 1000 - 105, "deadline in monotonic time");
    c.real += 894;
    goldfish_rtc_poll(r);
    CHECK(rd(0x18, 4) == 1 && !c.irq, "one ns early: still armed");
    c.real += 1;
    goldfish_rtc_poll(r);
    CHECK(rd(0x18, 4) == 0 && !c.irq, "alarm fired; irq masked while disabled");
    CHECK(wr(0x10, 1) == 0 && c.irq && rd(0x10, 4) == 1, "enabling the irq raises the line");
    CHECK(wr(0x1c, 1) == 0 && !c.irq, "CLEAR_INTERRUPT lowers it");
    CHECK(wr(0x8, 0) == 0 && c.irq && rd(0x18, 4) == 0, "alarm in the past fires at once");
    CHECK(wr(0xc, 0x100) == 0 && wr(0x8, 0) == 0 && rd(0x18, 4) == 1, "far alarm armed");
    CHECK(wr(0x14, 1) == 0 && rd(0x18, 4) == 0 && goldfish_rtc_next_deadline(r) == UINT64_MAX,
          "CLEAR_ALARM disarms");
    CHECK(wr(0x8, 0) == 0, "re-arm");
    goldfish_rtc_reset(r);
    CHECK(!c.irq && rd(0x18, 4) == 0 && rd(0x10, 4) == 0 && rd(0xc, 4) == 0,
          "reset clears alarm and irq state");
    CHECK(rd(0x0, 8) < 0x100000000ull, "reset keeps the guest-set clock");
    goldfish_rtc_free(r);
    goldfish_rtc_free(NULL);
    return board_check_done();
}
