/*
 * Boot images and the device tree: the DTB parsed back with libfdt, the
 * RISC-V Image header parser, and the placement of firmware, kernel,
 * initrd and DTB in RAM with the fw_dynamic_info the reset ROM hands over
 * (addresses as QEMU 7.2 chooses them, e.g. DTB at 0x8fe00000 and initrd at
 * 0x88200000 for 256 MiB).
 */
#include <errno.h>
#include <libfdt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "board_check.h"
#include "machine/virt_boot.h"
#include "machine/virt_fdt.h"
#include "machine/virt_int.h"

static const char *prop_str(const void *fdt, const char *path, const char *name)
{
    int off = fdt_path_offset(fdt, path);
    return off < 0 ? NULL : fdt_getprop(fdt, off, name, NULL);
}

static bool prop_is(const void *fdt, const char *path, const char *name, const char *want)
{
    const char *s = prop_str(fdt, path, name);
    return s && !strcmp(s, want);
}

/* Cell i of a property, or 0xdeadbeef. */
static uint32_t prop_cell(const void *fdt, const char *path, const char *name, int i)
{
    int off = fdt_path_offset(fdt, path), len = 0;
    const fdt32_t *p = off < 0 ? NULL : fdt_getprop(fdt, off, name, &len);
    return p && len >= 4 * (i + 1) ? fdt32_to_cpu(p[i]) : 0xdeadbeefu;
}

static int prop_len(const void *fdt, const char *path, const char *name)
{
    int off = fdt_path_offset(fdt, path), len = -1;
    if (off < 0 || !fdt_getprop(fdt, off, name, &len))
        return -1;
    return len;
}

static uint32_t phandle_of(const void *fdt, const char *path)
{
    int off = fdt_path_offset(fdt, path);
    return off < 0 ? 0 : fdt_get_phandle(fdt, off);
}

static void test_fdt(void)
{
    static const uint8_t seed[VIRT_FDT_RNG_SEED] = {1, 2, 3, [31] = 0x7f};
    struct virt_fdt_params p = {.rng_seed = seed,
                                .nharts = 4,
                                .ram_size = 256ull << 20,
                                .bootargs = "console=ttyS0 quiet",
                                .initrd_start = 0x88200000,
                                .initrd_end = 0x8830275a};
    void *fdt = NULL;
    size_t len = 0;
    char path[64];
    bool ok;

    CHECK(virt_fdt_build(&p, &fdt, &len) == 0 && fdt, "build a 4-hart tree");
    if (!fdt)
        return;
    CHECK(fdt_check_header(fdt) == 0 && fdt_totalsize(fdt) == len, "valid, packed blob");
    CHECK(prop_is(fdt, "/", "compatible", "riscv-virtio") &&
              prop_is(fdt, "/", "model", "riscv-virtio,qemu"),
          "root compatible and model as QEMU's");
    CHECK(prop_is(fdt, "/chosen", "bootargs", "console=ttyS0 quiet"), "bootargs");
    CHECK(prop_len(fdt, "/chosen", "rng-seed") == 32 &&
              prop_cell(fdt, "/chosen", "rng-seed", 0) == 0x01020300 &&
              prop_cell(fdt, "/chosen", "rng-seed", 7) == 0x7f,
          "rng-seed, 32 bytes");
    {
        uint8_t other[VIRT_FDT_RNG_SEED];
        memset(other, 0xee, sizeof(other));
        CHECK(virt_fdt_reseed(fdt, other) == 0 &&
                  prop_cell(fdt, "/chosen", "rng-seed", 0) == 0xeeeeeeee,
              "rng-seed refilled in place");
    }
    CHECK(prop_is(fdt, "/chosen", "stdout-path", "/soc/serial@10000000"), "stdout-path");
    CHECK_EQ(prop_cell(fdt, "/chosen", "linux,initrd-start", 0), 0x88200000, "initrd-start");
    CHECK_EQ(prop_cell(fdt, "/chosen", "linux,initrd-end", 0), 0x8830275a, "initrd-end");
    CHECK_EQ(prop_cell(fdt, "/memory@80000000", "reg", 1), 0x80000000, "memory base");
    CHECK_EQ(prop_cell(fdt, "/memory@80000000", "reg", 3), 256u << 20, "memory size");
    CHECK_EQ(prop_cell(fdt, "/cpus", "timebase-frequency", 0), 10000000, "timebase 10 MHz");

    ok = true;
    for (unsigned i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "/cpus/cpu@%u", i);
        ok &= prop_is(fdt, path, "riscv,isa", VIRT_FDT_ISA);
        ok &= prop_is(fdt, path, "mmu-type", "riscv,sv48");
        ok &= prop_is(fdt, path, "device_type", "cpu") && prop_is(fdt, path, "status", "okay");
        ok &= prop_cell(fdt, path, "reg", 0) == i;
        snprintf(path, sizeof(path), "/cpus/cpu-map/cluster0/core%u", i);
        ok &= prop_cell(fdt, path, "cpu", 0) == 7 - 2 * i; /* QEMU's numbering */
        snprintf(path, sizeof(path), "/cpus/cpu@%u/interrupt-controller", i);
        ok &= prop_is(fdt, path, "compatible", "riscv,cpu-intc");
        ok &= phandle_of(fdt, path) == 8 - 2 * i;
    }
    CHECK(ok, "4 cpus: isa, mmu-type, reg, cpu-map, interrupt controllers");
    CHECK(!strcmp(VIRT_FDT_ISA, "rv64imafdc_zicntr_zicsr_zifencei_zihpm"),
          "riscv,isa names what the hart implements (no h, no zba/zbb/zbc/zbs, no sstc)");

    CHECK(prop_is(fdt, "/soc/plic@c000000", "compatible", "sifive,plic-1.0.0"),
          "PLIC compatible (first string)");
    CHECK_EQ(prop_cell(fdt, "/soc/plic@c000000", "riscv,ndev", 0), 96, "PLIC riscv,ndev");
    CHECK_EQ(prop_cell(fdt, "/soc/plic@c000000", "reg", 3), 0x600000, "PLIC size");
    CHECK_EQ(prop_len(fdt, "/soc/plic@c000000", "interrupts-extended"), 4 * 4 * 4,
             "PLIC: 2 lines x 4 harts");
    ok = true;
    for (int i = 0; i < 4; i++) {
        ok &= prop_cell(fdt, "/soc/plic@c000000", "interrupts-extended", 4 * i) == 8 - 2u * i;
        ok &= prop_cell(fdt, "/soc/plic@c000000", "interrupts-extended", 4 * i + 1) == 11;
        ok &= prop_cell(fdt, "/soc/plic@c000000", "interrupts-extended", 4 * i + 3) == 9;
        ok &= prop_cell(fdt, "/soc/clint@2000000", "interrupts-extended", 4 * i + 1) == 3;
        ok &= prop_cell(fdt, "/soc/clint@2000000", "interrupts-extended", 4 * i + 3) == 7;
    }
    CHECK(ok, "PLIC -> M (11) and S (9) external lines, CLINT -> 3 and 7, per hart");
    CHECK(prop_is(fdt, "/soc/clint@2000000", "compatible", "sifive,clint0"), "CLINT");
    CHECK_EQ(phandle_of(fdt, "/soc/plic@c000000"), 9, "PLIC phandle after the cpus");
    CHECK(prop_is(fdt, "/soc/serial@10000000", "compatible", "ns16550a") &&
              prop_cell(fdt, "/soc/serial@10000000", "clock-frequency", 0) == 0x384000 &&
              prop_cell(fdt, "/soc/serial@10000000", "interrupts", 0) == 10 &&
              prop_cell(fdt, "/soc/serial@10000000", "interrupt-parent", 0) == 9,
          "UART: ns16550a, 0x384000 Hz, IRQ 10 on the PLIC");
    CHECK(prop_is(fdt, "/soc/rtc@101000", "compatible", "google,goldfish-rtc") &&
              prop_cell(fdt, "/soc/rtc@101000", "interrupts", 0) == 11,
          "goldfish RTC, IRQ 11");
    CHECK(prop_is(fdt, "/soc/test@100000", "compatible", "sifive,test1") &&
              prop_len(fdt, "/soc/test@100000", "compatible") ==
                  (int)sizeof("sifive,test1\0sifive,test0\0syscon"),
          "test: sifive,test1 / sifive,test0 / syscon");
    CHECK(prop_is(fdt, "/poweroff", "compatible", "syscon-poweroff") &&
              prop_cell(fdt, "/poweroff", "value", 0) == 0x5555 &&
              prop_cell(fdt, "/poweroff", "regmap", 0) == phandle_of(fdt, "/soc/test@100000"),
          "syscon-poweroff writes 0x5555 to the test device");
    CHECK(prop_is(fdt, "/reboot", "compatible", "syscon-reboot") &&
              prop_cell(fdt, "/reboot", "value", 0) == 0x7777,
          "syscon-reboot writes 0x7777");
    ok = true;
    for (unsigned i = 0; i < 8; i++) {
        snprintf(path, sizeof(path), "/soc/virtio_mmio@%x", 0x10001000 + 0x1000 * i);
        ok &= prop_is(fdt, path, "compatible", "virtio,mmio");
        ok &= prop_cell(fdt, path, "interrupts", 0) == 1 + i;
    }
    CHECK(ok, "8 virtio-mmio slots, IRQ 1..8");
    CHECK(prop_is(fdt, "/soc/pci@30000000", "compatible", "pci-host-ecam-generic"), "PCIe host");
    CHECK(fdt_path_offset(fdt, "/fw-cfg@10100000") < 0 &&
              fdt_path_offset(fdt, "/flash@20000000") < 0,
          "nothing the board lacks (fw-cfg, flash)");
    free(fdt);

    p = (struct virt_fdt_params){.nharts = 1, .ram_size = 128ull << 20};
    CHECK(virt_fdt_build(&p, &fdt, &len) == 0, "1 hart, no initrd, no bootargs");
    CHECK(fdt_path_offset(fdt, "/chosen") >= 0 && !prop_str(fdt, "/chosen", "bootargs") &&
              prop_len(fdt, "/chosen", "linux,initrd-start") < 0 &&
              prop_len(fdt, "/chosen", "rng-seed") < 0,
          "no bootargs, initrd or seed properties when not given");
    free(fdt);
    p.nharts = 512;
    CHECK(virt_fdt_build(&p, &fdt, &len) == 0 &&
              prop_len(fdt, "/soc/plic@c000000", "interrupts-extended") == 512 * 16,
          "512 harts");
    free(fdt);
    p.nharts = 0;
    CHECK(virt_fdt_build(&p, &fdt, &len) == -EINVAL && !fdt, "0 harts refused");
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A fake kernel Image: header + some bytes. */
static void make_image(uint8_t *img, size_t len, uint64_t image_size)
{
    memset(img, 0x5a, len);
    put_le(img + 8, 0x200000, 8); /* text_offset */
    put_le(img + 16, image_size, 8);
    put_le(img + 32, 2, 4); /* version 0.2 */
    memcpy(img + 0x30, "RISCV\0\0\0", 8);
    put_le(img + RISCV_IMAGE_MAGIC2_OFF, RISCV_IMAGE_MAGIC2, 4);
}

static void test_image(void)
{
    uint8_t img[256];
    struct riscv_image_info info;

    make_image(img, sizeof(img), 0x1000);
    CHECK(riscv_image_parse(img, sizeof(img), &info) == 1 && info.image_size == 0x1000 &&
              info.text_offset == 0x200000 && info.version == 2,
          "Image header parsed");
    CHECK(riscv_image_parse(img, 0x3c, &info) == 0, "too short for the magic: not an Image");
    make_image(img, sizeof(img), 0);
    CHECK(riscv_image_parse(img, sizeof(img), &info) == 1 && info.image_size == sizeof(img),
          "image_size 0: the file size");
    make_image(img, sizeof(img), 16);
    CHECK(riscv_image_parse(img, sizeof(img), &info) == -EINVAL, "image_size below file size");
    make_image(img, sizeof(img), 1ull << 62);
    CHECK(riscv_image_parse(img, sizeof(img), &info) == -EINVAL, "absurd image_size");
    img[RISCV_IMAGE_MAGIC2_OFF] ^= 1;
    CHECK(riscv_image_parse(img, sizeof(img), &info) == 0, "no magic: not an Image");
}

static char *write_temp(const char *tag, const void *data, size_t len)
{
    char *path = malloc(64);
    int fd;

    snprintf(path, 64, "/tmp/godwit-test-%s-XXXXXX", tag);
    fd = mkstemp(path);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
        perror("temp file");
        exit(1);
    }
    close(fd);
    return path;
}

static uint64_t rom64(const struct virt *vm, unsigned off)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)vm->mrom[off + i] << (8 * i);
    return v;
}

static void test_layout(void)
{
    static uint8_t fw[100000], kern[300000], rd[70000];
    struct virt_config cfg;
    struct virt *vm;
    char err[512] = "";
    char *fw_path, *k_path, *rd_path;
    uint8_t *ram;

    memset(fw, 0x11, sizeof(fw));
    make_image(kern, sizeof(kern), 0x100000);
    memset(rd, 0x33, sizeof(rd));
    fw_path = write_temp("fw", fw, sizeof(fw));
    k_path = write_temp("kernel", kern, sizeof(kern));
    rd_path = write_temp("initrd", rd, sizeof(rd));

    virt_config_init(&cfg);
    cfg.ram_size = 256ull << 20;
    cfg.smp = 2;
    cfg.bios = fw_path;
    cfg.kernel = k_path;
    cfg.initrd = rd_path;
    cfg.append = "console=ttyS0";
    vm = virt_new(&cfg, err, sizeof(err));
    CHECK(vm != NULL, "board with firmware, Image, initrd (%s)", err);
    if (vm) {
        ram = vm->mem->host;
        CHECK(!memcmp(ram, fw, sizeof(fw)), "firmware at 0x80000000");
        CHECK_EQ(vm->kern.addr, 0x80200000, "kernel at the next 2 MiB boundary");
        CHECK(!memcmp(ram + 0x200000, kern, sizeof(kern)), "kernel bytes");
        CHECK_EQ(vm->initrd.addr, 0x88200000, "initrd at kernel + 128 MiB (QEMU)");
        CHECK(!memcmp(ram + 0x8200000, rd, sizeof(rd)), "initrd bytes");
        CHECK_EQ(vm->fdt.addr, 0x8fe00000, "DTB at the top of RAM, 2 MiB aligned (QEMU)");
        CHECK(fdt_check_header(ram + 0xfe00000) == 0, "DTB in RAM");
        CHECK_EQ(prop_cell(ram + 0xfe00000, "/chosen", "linux,initrd-end", 0),
                 0x88200000 + sizeof(rd), "DTB points at the initrd");
        CHECK_EQ(rom64(vm, VIRT_MROM_START_ADDR), 0x80000000, "ROM jumps to the firmware");
        CHECK_EQ(rom64(vm, VIRT_MROM_FDT_ADDR), 0x8fe00000, "ROM: a1 = DTB");
        CHECK_EQ(rom64(vm, VIRT_MROM_FW_DYN), 0x4942534f, "fw_dynamic_info.magic OSBI");
        CHECK_EQ(rom64(vm, VIRT_MROM_FW_DYN + 8), 2, "fw_dynamic_info.version");
        CHECK_EQ(rom64(vm, VIRT_MROM_FW_DYN + 16), 0x80200000, "next_addr = kernel entry");
        CHECK_EQ(rom64(vm, VIRT_MROM_FW_DYN + 24), 1, "next_mode = S");
        CHECK_EQ(rom64(vm, VIRT_MROM_FW_DYN + 32), 0, "options");
        CHECK_EQ(rom64(vm, VIRT_MROM_FW_DYN + 40), 0, "boot_hart");
        /* A reset copies the images again over whatever the guest did. */
        uint32_t seed0 = prop_cell(ram + 0xfe00000, "/chosen", "rng-seed", 0);
        uint32_t seed1 = prop_cell(ram + 0xfe00000, "/chosen", "rng-seed", 1);
        CHECK(prop_len(ram + 0xfe00000, "/chosen", "rng-seed") == 32, "the DTB has an rng-seed");
        memset(ram, 0, 0x10000000);
        CHECK(virt_reset(vm, err, sizeof(err)) == 0, "system reset");
        CHECK(prop_cell(ram + 0xfe00000, "/chosen", "rng-seed", 0) != seed0 ||
                  prop_cell(ram + 0xfe00000, "/chosen", "rng-seed", 1) != seed1,
              "a reset gives a new rng-seed");
        CHECK(!memcmp(ram, fw, sizeof(fw)) && !memcmp(ram + 0x200000, kern, sizeof(kern)) &&
                  !memcmp(ram + 0x8200000, rd, sizeof(rd)) &&
                  fdt_check_header(ram + 0xfe00000) == 0,
              "reset reloads firmware, kernel, initrd and DTB");
        virt_free(vm);
    }

    cfg.ram_size = 64ull << 20; /* initrd halfway into RAM when small */
    vm = virt_new(&cfg, err, sizeof(err));
    CHECK(vm && vm->initrd.addr == 0x80200000 + (32ull << 20) && vm->fdt.addr == 0x83e00000,
          "64 MiB: initrd at kernel + RAM/2, DTB at 0x83e00000");
    virt_free(vm);

    cfg.ram_size = 4ull << 20;
    vm = virt_new(&cfg, err, sizeof(err));
    CHECK(!vm && strstr(err, "does not fit"), "4 MiB: refused with a reason (%s)", err);
    virt_free(vm);

    cfg.ram_size = 2ull << 20; /* below VIRT_MIN_RAM: the board refuses it */
    vm = virt_new(&cfg, err, sizeof(err));
    CHECK(!vm && strstr(err, "invalid machine configuration"), "2 MiB: refused (%s)", err);
    virt_free(vm);

    make_image(kern, sizeof(kern), 16);
    free(k_path);
    k_path = write_temp("badkernel", kern, sizeof(kern));
    cfg.ram_size = 256ull << 20;
    cfg.kernel = k_path;
    vm = virt_new(&cfg, err, sizeof(err));
    CHECK(!vm && strstr(err, "inconsistent"), "bad Image header refused (%s)", err);
    virt_free(vm);

    cfg.bios = "/nonexistent/fw.bin";
    vm = virt_new(&cfg, err, sizeof(err));
    CHECK(!vm && strstr(err, "-bios") && strstr(err, "/nonexistent/fw.bin"),
          "missing firmware named (%s)", err);
    virt_free(vm);

    /* An ELF kernel goes to its own addresses and is entered at its
     * lowest one; the initrd follows it as for an Image. */
    {
        static uint8_t elf[512];
        char *e_path;
        memcpy(elf, "\177ELF", 4);
        elf[4] = 2;               /* ELFCLASS64 */
        elf[5] = 1;               /* little-endian */
        elf[6] = 1;               /* EV_CURRENT */
        put_le(elf + 16, 2, 2);   /* ET_EXEC */
        put_le(elf + 18, 243, 2); /* EM_RISCV */
        put_le(elf + 20, 1, 4);
        put_le(elf + 24, 0x80400010, 8); /* e_entry above the lowest address */
        put_le(elf + 32, 64, 8);         /* e_phoff */
        put_le(elf + 52, 64, 2);
        put_le(elf + 54, 56, 2);
        put_le(elf + 56, 1, 2);
        put_le(elf + 64, 1, 4);       /* PT_LOAD */
        put_le(elf + 64 + 8, 256, 8); /* p_offset */
        put_le(elf + 64 + 16, 0x80400000, 8);
        put_le(elf + 64 + 24, 0x80400000, 8);
        put_le(elf + 64 + 32, 256, 8);    /* p_filesz */
        put_le(elf + 64 + 40, 0x2000, 8); /* p_memsz */
        memset(elf + 256, 0xc3, 256);
        e_path = write_temp("elfkernel", elf, sizeof(elf));
        cfg.bios = fw_path;
        cfg.kernel = e_path;
        vm = virt_new(&cfg, err, sizeof(err));
        CHECK(vm != NULL, "ELF kernel with firmware (%s)", err);
        if (vm) {
            CHECK(vm->mem->host[0x400000] == 0xc3 && vm->mem->host[0x400000 + 256] == 0,
                  "ELF segment at its address, bss zeroed");
            CHECK_EQ(rom64(vm, VIRT_MROM_FW_DYN + 16), 0x80400000,
                     "next_addr = the ELF's lowest address (QEMU)");
            CHECK_EQ(vm->initrd.addr, 0x80400000 + (128ull << 20), "initrd above the ELF");
        }
        virt_free(vm);
        unlink(e_path);
        free(e_path);
    }

    unlink(fw_path);
    unlink(k_path);
    unlink(rd_path);
    free(fw_path);
    free(k_path);
    free(rd_path);
}

int main(void)
{
    test_fdt();
    test_image();
    test_layout();
    return board_check_done();
}
