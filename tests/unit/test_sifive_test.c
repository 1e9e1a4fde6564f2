/* Unit tests for the SiFive test finisher: decoding, sizes, offsets. */
#include <string.h>

#include "board_check.h"
#include "devices/sifive_test.h"

struct rec {
    int calls;
    enum sifive_test_request req;
    unsigned code;
};

static void rec_request(void *opaque, enum sifive_test_request req, unsigned code)
{
    struct rec *r = opaque;
    r->calls++;
    r->req = req;
    r->code = code;
}

int main(void)
{
    struct rec rc;
    struct sifive_test_host host = {&rc, rec_request};
    struct sifive_test *t = sifive_test_new(&host);
    struct bus bus;
    struct bus_region r;
    uint64_t v = 1;

    memset(&rc, 0, sizeof(rc));
    CHECK(t != NULL, "sifive_test_new");
    if (!t)
        return board_check_done();
    bus_init(&bus);
    r = (struct bus_region){"test", 0x100000, SIFIVE_TEST_SIZE, 2, 4, 4, &sifive_test_ops, t};
    CHECK(bus_add(&bus, &r) == 0, "mapped at 0x100000");

    CHECK(bus_read(&bus, 0x100000, 4, &v) == 0 && v == 0, "reads return 0");
    CHECK(bus_read(&bus, 0x100000, 1, &v) < 0, "1-byte read faults");
    CHECK(bus_write(&bus, 0x100000, 8, 0x5555) < 0 && rc.calls == 0,
          "8-byte write faults and does nothing");
    CHECK(bus_write(&bus, 0x100000, 4, 0x5555) == 0 && rc.calls == 1 &&
              rc.req == SIFIVE_TEST_REQ_POWEROFF && rc.code == 0,
          "0x5555: power off, status 0");
    CHECK(bus_write(&bus, 0x100000, 4, (42u << 16) | 0x3333) == 0 && rc.calls == 2 &&
              rc.req == SIFIVE_TEST_REQ_POWEROFF && rc.code == 42,
          "(42<<16)|0x3333: power off, status 42");
    CHECK(bus_write(&bus, 0x100000, 4, 0xffff3333) == 0 && rc.code == 0xffff,
          "fail code keeps all 16 bits (the OS truncates the exit status)");
    CHECK(bus_write(&bus, 0x100000, 4, 0x7777) == 0 && rc.calls == 4 &&
              rc.req == SIFIVE_TEST_REQ_RESET,
          "0x7777: reset");
    CHECK(bus_write(&bus, 0x100000, 2, 0x5555) == 0 && rc.calls == 5 && rc.code == 0,
          "2-byte 0x5555 also powers off");
    CHECK(bus_write(&bus, 0x100000, 4, 0x1234) == 0 && rc.calls == 5, "other values ignored");
    CHECK(bus_write(&bus, 0x100004, 4, 0x5555) == 0 && rc.calls == 5, "other offsets ignored");
    sifive_test_free(t);
    sifive_test_free(NULL);
    return board_check_done();
}
