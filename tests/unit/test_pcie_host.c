/* Unit tests for the empty PCIe host: the bridge's config space as QEMU 7.2
 * shows it, all-ones elsewhere, writable-bit masks. */
#include "board_check.h"
#include "devices/pcie_host.h"

static struct bus bus;

static uint64_t rd(uint64_t off, unsigned size)
{
    uint64_t v = 0xdead;
    if (bus_read(&bus, 0x30000000 + off, size, &v) < 0)
        return 0xfa17;
    return v;
}

static int wr_errors;

static void wr(uint64_t off, unsigned size, uint64_t v)
{
    if (bus_write(&bus, 0x30000000 + off, size, v) < 0)
        wr_errors++;
}

int main(void)
{
    struct pcie_host *p = pcie_host_new();
    struct bus_region r;
    uint64_t v;
    unsigned nonzero = 0;

    CHECK(p != NULL, "pcie_host_new");
    if (!p)
        return board_check_done();
    bus_init(&bus);
    r = (struct bus_region){"ecam", 0x30000000, PCIE_ECAM_SIZE, 1, 8, 4, &pcie_host_ecam_ops, p};
    CHECK(bus_add(&bus, &r) == 0, "ECAM mapped");
    r = (struct bus_region){"pio", 0x3000000, 0x10000, 1, 8, 8, &pcie_host_window_ops, NULL};
    CHECK(bus_add(&bus, &r) == 0, "PIO window mapped");

    CHECK_EQ(rd(0x00, 4), 0x00081b36, "vendor/device 1b36:0008");
    CHECK_EQ(rd(0x08, 4), 0x06000000, "class: host bridge, revision 0");
    CHECK_EQ(rd(0x2c, 4), 0x11001af4, "subsystem 1af4:1100");
    CHECK_EQ(rd(0x00, 8), 0x0000000000081b36ull, "8-byte read splits");
    CHECK_EQ(rd(0x01, 1), 0x1b, "byte read at offset 1");
    CHECK_EQ(rd(0x02, 2), 0x0008, "word read at offset 2");
    for (unsigned off = 0x10; off < 0x100; off += 4)
        if (off != 0x2c && rd(off, 4) != 0)
            nonzero++;
    CHECK(nonzero == 0, "the rest of the header reads 0");
    CHECK_EQ(rd(0x100, 4), 0xffffffff, "extended config space reads all-ones");
    CHECK_EQ(rd(0x1000, 4), 0xffffffff, "function 00:00.1 absent");
    CHECK_EQ(rd(0x8000, 4), 0xffffffff, "device 00:01.0 absent");
    CHECK_EQ(rd(0x100000, 4), 0xffffffff, "bus 1 absent");

    wr(0x04, 4, 0xffffffff);
    CHECK_EQ(rd(0x04, 4), 0x507, "command: writable bits 0x0507, status reads 0");
    wr(0x0c, 4, 0xffffffff);
    CHECK_EQ(rd(0x0c, 4), 0xff, "cache line size writable");
    wr(0x3c, 4, 0xffffffff);
    CHECK_EQ(rd(0x3c, 4), 0xff, "interrupt line writable, pin 0");
    wr(0x00, 4, 0);
    wr(0x10, 4, 0xffffffff);
    CHECK(rd(0x00, 4) == 0x00081b36 && rd(0x10, 4) == 0, "IDs and BARs read-only");
    CHECK(wr_errors == 0, "config writes accepted");
    pcie_host_reset(p);
    CHECK(rd(0x04, 4) == 0 && rd(0x0c, 4) == 0 && rd(0x3c, 4) == 0, "reset clears them");
    CHECK(bus_read(&bus, 0x3000000, 8, &v) == 0 && v == UINT64_MAX, "PIO window: all-ones");
    CHECK(bus_write(&bus, 0x3000000, 4, 0) == 0, "PIO window: writes ignored");
    pcie_host_free(p);
    pcie_host_free(NULL);
    return board_check_done();
}
