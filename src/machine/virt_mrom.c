/*
 * The virt board's reset ROM (MROM at 0x1000): the trampoline every hart
 * starts at, and the fw_dynamic_info block OpenSBI's fw_dynamic reads.
 * Kept apart from virt.c so its unit test does not need the harts.
 */
#include <string.h>

#include "machine/virt_int.h"

/* RV64 instruction encoders (unprivileged spec, chapter "RV32I Base"). */
enum { RV_T0 = 5, RV_A0 = 10, RV_A1 = 11, RV_A2 = 12, RV_CSR_MHARTID = 0xf14 };

static uint32_t rv_enc_i(uint32_t imm, unsigned rs1, unsigned f3, unsigned rd, unsigned op)
{
    return (imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | op;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/*
 * The reset vector every hart starts at, with the same register effects as
 * QEMU's: t0 = start address, a0 = mhartid, a1 = device tree address, a2 =
 * &fw_dynamic_info (for OpenSBI's fw_dynamic), then jump to t0.  With
 * -bios none QEMU jumps to the start of RAM, not to the ELF entry; the ELF's
 * lowest address goes into fw_dynamic_info.next_addr.
 */
void virt_mrom_build(uint8_t *rom, size_t size, uint64_t start_addr, uint64_t fdt_addr,
                     uint64_t next_addr)
{
    const uint32_t code[] = {
        0x00000297,                                            /* auipc t0, 0 */
        rv_enc_i(VIRT_MROM_FW_DYN, RV_T0, 0, RV_A2, 0x13),     /* addi a2, t0, fw_dyn */
        rv_enc_i(RV_CSR_MHARTID, 0, 2, RV_A0, 0x73),           /* csrr a0, mhartid */
        rv_enc_i(VIRT_MROM_FDT_ADDR, RV_T0, 3, RV_A1, 0x03),   /* ld a1, fdt(t0) */
        rv_enc_i(VIRT_MROM_START_ADDR, RV_T0, 3, RV_T0, 0x03), /* ld t0, start(t0) */
        rv_enc_i(0, RV_T0, 0, 0, 0x67),                        /* jr t0 */
    };
    uint8_t *fw = rom + VIRT_MROM_FW_DYN;

    memset(rom, 0, size);
    for (size_t i = 0; i < GW_ARRAY_SIZE(code); i++)
        put_le(rom + 4 * i, code[i], 4);
    put_le(rom + VIRT_MROM_START_ADDR, start_addr, 8);
    put_le(rom + VIRT_MROM_FDT_ADDR, fdt_addr, 8);
    /* struct fw_dynamic_info: magic, version, next_addr, next_mode, options,
     * boot_hart (OpenSBI include/sbi/fw_dynamic.h). */
    put_le(fw + 0, VIRT_FW_DYN_MAGIC, 8);
    put_le(fw + 8, VIRT_FW_DYN_VERSION, 8);
    put_le(fw + 16, next_addr, 8);
    put_le(fw + 24, VIRT_FW_DYN_MODE_S, 8);
    put_le(fw + 32, 0, 8);
    put_le(fw + 40, 0, 8);
}

static int virt_mrom_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    const uint8_t *rom = opaque;
    uint64_t v = 0;

    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)rom[off + i] << (8 * i);
    *val = v;
    return 0;
}

static int virt_mrom_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    /* ROM: writes are ignored, as on QEMU. */
    (void)opaque;
    (void)off;
    (void)size;
    (void)val;
    return 0;
}

const struct bus_ops virt_mrom_ops = {virt_mrom_read, virt_mrom_write};
