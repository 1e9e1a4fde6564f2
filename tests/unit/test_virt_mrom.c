/*
 * The reset ROM must match QEMU 7.2's byte for byte (same register effects
 * for every guest): the dwords below were read from 0x1000 by a bare-metal
 * program on qemu-system-riscv64 -M virt -m 128M -bios none.
 */
#include <stdlib.h>
#include <string.h>

#include "board_check.h"
#include "machine/virt_int.h"

static const uint64_t qemu_mrom[] = {
    0x0282861300000297ull, /* auipc t0,0; addi a2,t0,40 */
    0x0202b583f1402573ull, /* csrr a0,mhartid; ld a1,32(t0) */
    0x000280670182b283ull, /* ld t0,24(t0); jr t0 */
    0x0000000080000000ull, /* start address: RAM base */
    0x0000000087e00000ull, /* device tree address (QEMU's for 128 MiB) */
    0x000000004942534full, /* fw_dynamic_info.magic "OSBI" */
    0x0000000000000002ull, /* version */
    0x0000000080000000ull, /* next_addr */
    0x0000000000000001ull, /* next_mode: S */
    0x0000000000000000ull, /* options */
    0x0000000000000000ull, /* boot_hart */
};

int main(void)
{
    uint8_t *rom = malloc(VIRT_MROM_SIZE);
    struct bus bus;
    struct bus_region r;
    uint64_t v;
    unsigned bad = 0, nonzero = 0;

    CHECK(rom != NULL, "allocate ROM image");
    if (!rom)
        return board_check_done();
    memset(rom, 0xaa, VIRT_MROM_SIZE);
    virt_mrom_build(rom, VIRT_MROM_SIZE, VIRT_DRAM_BASE, 0x87e00000ull, VIRT_DRAM_BASE);
    bus_init(&bus);
    r = (struct bus_region){"mrom", VIRT_MROM_BASE, VIRT_MROM_SIZE, 1, 8, 8, &virt_mrom_ops, rom};
    CHECK(bus_add(&bus, &r) == 0, "ROM mapped at 0x1000");
    for (unsigned i = 0; i < GW_ARRAY_SIZE(qemu_mrom); i++) {
        if (bus_read(&bus, VIRT_MROM_BASE + 8 * i, 8, &v) < 0 || v != qemu_mrom[i]) {
            bad++;
            printf("     0x%x: got %016llx want %016llx\n", 0x1000 + 8 * i, (unsigned long long)v,
                   (unsigned long long)qemu_mrom[i]);
        }
    }
    CHECK(bad == 0, "the first %zu dwords match QEMU's reset ROM", GW_ARRAY_SIZE(qemu_mrom));
    for (size_t off = 8 * GW_ARRAY_SIZE(qemu_mrom); off < VIRT_MROM_SIZE; off++)
        nonzero += rom[off] != 0;
    CHECK(nonzero == 0, "the rest of the ROM reads as zero");
    CHECK(bus_read(&bus, 0x1000, 4, &v) == 0 && v == 0x00000297, "4-byte read");
    CHECK(bus_read(&bus, 0x1001, 1, &v) == 0 && v == 0x02, "1-byte read");
    CHECK(bus_read(&bus, 0x1030, 2, &v) == 0 && v == 0x0002, "2-byte read");
    CHECK(bus_write(&bus, 0x1000, 4, 0x12345678) == 0 && bus_read(&bus, 0x1000, 4, &v) == 0 &&
              v == 0x00000297,
          "writes are ignored (no fault)");
    CHECK(bus_read(&bus, 0xfff8, 8, &v) == 0 && v == 0, "last dword readable");
    CHECK(bus_read(&bus, 0x10000, 4, &v) < 0, "0x10000 is past the ROM");
    free(rom);
    return board_check_done();
}
