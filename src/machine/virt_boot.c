/* Boot image layout and loading for the virt board; see virt_boot.h. */
#include "machine/virt_boot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "machine/virt_fdt.h"
#include "machine/virt_int.h"

/* Largest initrd and firmware we read (RAM is at most 256 GiB anyway). */
#define VIRT_MAX_FILE (4ull << 30)

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int riscv_image_parse(const uint8_t *img, size_t len, struct riscv_image_info *info)
{
    if (len < RISCV_IMAGE_HDR_SIZE || rd_le(img + RISCV_IMAGE_MAGIC2_OFF, 4) != RISCV_IMAGE_MAGIC2)
        return 0;
    info->text_offset = rd_le(img + 8, 8);
    info->image_size = rd_le(img + 16, 8);
    info->version = (uint32_t)rd_le(img + 32, 4);
    /* image_size covers the loaded file plus bss; 0 means "unknown" (old
     * kernels).  Anything beyond RAM's limit is not a real header. */
    if (info->image_size > VIRT_MAX_RAM ||
        (info->image_size != 0 && info->image_size < (uint64_t)len))
        return -EINVAL;
    if (info->image_size == 0)
        info->image_size = len;
    return 1;
}

static bool is_elf(const uint8_t *img, size_t len)
{
    return len >= 4 && memcmp(img, "\177ELF", 4) == 0;
}

static int boot_read(const char *opt, const char *path, struct virt_blob *b, char *err,
                     size_t errlen)
{
    char why[300];
    int ret = elf_read_file(path, VIRT_MAX_FILE, &b->data, &b->len, why, sizeof(why));

    if (ret < 0) {
        snprintf(err, errlen, "%s: %s", opt, why);
        return ret;
    }
    /* An empty file is no image at all (QEMU refuses it too). */
    if (b->len == 0) {
        snprintf(err, errlen, "%s %s: the file is empty", opt, path);
        return -EINVAL;
    }
    b->elf = is_elf(b->data, b->len);
    b->reserve = b->len;
    return 0;
}

static bool ram_holds(const struct virt *vm, uint64_t addr, uint64_t len)
{
    return gmem_contains(vm->mem, addr, len);
}

/* Load an ELF image (validate + copy); fills info. */
static int boot_load_elf(struct virt *vm, const char *opt, const char *path,
                         const struct virt_blob *b, struct elf_info *info, char *err, size_t errlen)
{
    char why[300];
    int ret = elf_load(vm->mem, b->data, b->len, info, why, sizeof(why));

    if (ret < 0)
        snprintf(err, errlen, "%s %s: %s", opt, path, why);
    return ret;
}

static int boot_copy(struct virt *vm, const char *opt, const struct virt_blob *b, char *err,
                     size_t errlen)
{
    if (gmem_write(vm->mem, b->addr, b->data, b->len) < 0) {
        snprintf(err, errlen, "%s: does not fit in RAM at 0x%llx (%zu bytes)", opt,
                 (unsigned long long)b->addr, b->len);
        return -ENOMEM;
    }
    return 0;
}

/* Fresh random bytes for /chosen/rng-seed.  The seed only spares Linux an
 * entropy wait, so a short read (no entropy yet) leaves what is there. */
static void boot_random(uint8_t *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = getrandom(buf + done, len - done, GRND_NONBLOCK);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
}

int virt_boot_load(struct virt *vm, char *err, size_t errlen)
{
    const struct virt_config *cfg = &vm->cfg;
    uint8_t seed[VIRT_FDT_RNG_SEED];
    int ret = 0;

    /* Like QEMU 7.2, every boot gets a new seed. */
    boot_random(seed, sizeof(seed));
    (void)virt_fdt_reseed(vm->fdt.data, seed);

    if (vm->fw.data) {
        ret = vm->fw.elf ? boot_load_elf(vm, "-bios", cfg->bios, &vm->fw, &vm->fw_elf, err, errlen)
                         : boot_copy(vm, "-bios", &vm->fw, err, errlen);
        if (ret < 0)
            return ret;
    }
    if (vm->kern.data) {
        ret = vm->kern.elf
                  ? boot_load_elf(vm, "-kernel", cfg->kernel, &vm->kern, &vm->kern_elf, err, errlen)
                  : boot_copy(vm, "-kernel", &vm->kern, err, errlen);
        if (ret < 0)
            return ret;
    }
    if (vm->initrd.data) {
        ret = boot_copy(vm, "-initrd", &vm->initrd, err, errlen);
        if (ret < 0)
            return ret;
    }
    return boot_copy(vm, "device tree", &vm->fdt, err, errlen);
}

static int boot_overlap(const char *a, uint64_t a0, uint64_t a1, const char *b, uint64_t b0,
                        uint64_t b1, char *err, size_t errlen)
{
    if (a0 < b1 && b0 < a1) {
        snprintf(err, errlen,
                 "%s [0x%llx, 0x%llx) overlaps %s [0x%llx, 0x%llx); a larger -m may help", a,
                 (unsigned long long)a0, (unsigned long long)a1, b, (unsigned long long)b0,
                 (unsigned long long)b1);
        return -ENOMEM;
    }
    return 0;
}

int virt_boot_prepare(struct virt *vm, char *err, size_t errlen)
{
    const struct virt_config *cfg = &vm->cfg;
    uint64_t ram_end = VIRT_DRAM_BASE + cfg->ram_size, kernel_start = VIRT_DRAM_BASE;
    uint64_t kernel_end = VIRT_DRAM_BASE, entry = 0, top;
    uint8_t seed[VIRT_FDT_RNG_SEED] = {0}; /* filled by every virt_boot_load */
    struct virt_fdt_params fp = {
        .nharts = vm->nharts, .ram_size = cfg->ram_size, .bootargs = cfg->append, .rng_seed = seed};
    int ret;

    /* Firmware at the base of RAM; the kernel goes to the next 2 MiB. */
    if (cfg->bios) {
        uint64_t fw_end;
        ret = boot_read("-bios", cfg->bios, &vm->fw, err, errlen);
        if (ret < 0)
            return ret;
        if (vm->fw.elf) {
            ret = boot_load_elf(vm, "-bios", cfg->bios, &vm->fw, &vm->fw_elf, err, errlen);
            if (ret < 0)
                return ret;
            fw_end = vm->fw_elf.high;
        } else {
            vm->fw.addr = VIRT_DRAM_BASE;
            if (!ram_holds(vm, vm->fw.addr, vm->fw.len)) {
                snprintf(err, errlen, "-bios %s: firmware (%zu bytes) does not fit in RAM",
                         cfg->bios, vm->fw.len);
                return -ENOMEM;
            }
            fw_end = VIRT_DRAM_BASE + vm->fw.len;
        }
        kernel_start = (fw_end + VIRT_KERNEL_ALIGN - 1) & ~(VIRT_KERNEL_ALIGN - 1);
        kernel_end = kernel_start;
    }

    if (cfg->kernel) {
        ret = boot_read("-kernel", cfg->kernel, &vm->kern, err, errlen);
        if (ret < 0)
            return ret;
        if (vm->kern.elf) {
            ret = boot_load_elf(vm, "-kernel", cfg->kernel, &vm->kern, &vm->kern_elf, err, errlen);
            if (ret < 0)
                return ret;
            /* QEMU enters an ELF kernel at its lowest address. */
            entry = vm->kern_elf.low;
            kernel_end = vm->kern_elf.high;
        } else {
            struct riscv_image_info info;
            ret = riscv_image_parse(vm->kern.data, vm->kern.len, &info);
            if (ret < 0) {
                snprintf(err, errlen, "-kernel %s: RISC-V Image header is inconsistent",
                         cfg->kernel);
                return ret;
            }
            if (ret == 1)
                vm->kern.reserve = info.image_size;
            /* Like QEMU, a flat image (Image or raw binary) sits at kernel_start. */
            vm->kern.addr = kernel_start;
            entry = kernel_start;
            kernel_end = kernel_start + vm->kern.reserve;
            if (!ram_holds(vm, kernel_start, vm->kern.reserve)) {
                snprintf(err, errlen,
                         "-kernel %s: the kernel (%llu bytes at 0x%llx) does not fit in RAM",
                         cfg->kernel, (unsigned long long)vm->kern.reserve,
                         (unsigned long long)kernel_start);
                return -ENOMEM;
            }
        }
        if (vm->fw.data && !vm->fw.elf) {
            ret = boot_overlap("-bios", vm->fw.addr, vm->fw.addr + vm->fw.len, "-kernel", entry,
                               kernel_end, err, errlen);
            if (ret < 0)
                return ret;
        }
    }

    if (cfg->initrd) {
        ret = boot_read("-initrd", cfg->initrd, &vm->initrd, err, errlen);
        if (ret < 0)
            return ret;
        /* QEMU: far enough above the kernel that it survives decompression. */
        vm->initrd.addr =
            entry + (cfg->ram_size / 2 < (128ull << 20) ? cfg->ram_size / 2 : (128ull << 20));
        if (!ram_holds(vm, vm->initrd.addr, vm->initrd.len)) {
            snprintf(err, errlen,
                     "-initrd %s: the initrd (%zu bytes at 0x%llx) does not fit in "
                     "RAM; a larger -m may help",
                     cfg->initrd, vm->initrd.len, (unsigned long long)vm->initrd.addr);
            return -ENOMEM;
        }
        ret = boot_overlap("-initrd", vm->initrd.addr, vm->initrd.addr + vm->initrd.len, "-kernel",
                           entry, kernel_end, err, errlen);
        if (ret < 0)
            return ret;
        fp.initrd_start = vm->initrd.addr;
        fp.initrd_end = vm->initrd.addr + vm->initrd.len;
    }

    ret = virt_fdt_build(&fp, (void **)&vm->fdt.data, &vm->fdt.len);
    if (ret < 0) {
        snprintf(err, errlen, "cannot build the device tree: %s", strerror(-ret));
        return ret;
    }
    top = ram_end < VIRT_FDT_LIMIT ? ram_end : VIRT_FDT_LIMIT;
    if (top - VIRT_DRAM_BASE < vm->fdt.len + VIRT_KERNEL_ALIGN) {
        snprintf(err, errlen, "RAM too small for the device tree");
        return -ENOMEM;
    }
    vm->fdt.addr = (top - vm->fdt.len) & ~(VIRT_KERNEL_ALIGN - 1);
    if (vm->initrd.data) {
        ret = boot_overlap("device tree", vm->fdt.addr, vm->fdt.addr + vm->fdt.len, "-initrd",
                           vm->initrd.addr, vm->initrd.addr + vm->initrd.len, err, errlen);
        if (ret < 0)
            return ret;
    }
    if (cfg->kernel) {
        ret = boot_overlap("device tree", vm->fdt.addr, vm->fdt.addr + vm->fdt.len, "-kernel",
                           entry, kernel_end, err, errlen);
        if (ret < 0)
            return ret;
    }
    vm->kernel_entry = entry;

    /* Every hart starts at the base of RAM (firmware, or the -bios none
     * kernel) with a1 = DTB; fw_dynamic goes on to the kernel in S-mode. */
    virt_mrom_build(vm->mrom, VIRT_MROM_SIZE, VIRT_DRAM_BASE, vm->fdt.addr, entry);
    return virt_boot_load(vm, err, errlen);
}

void virt_boot_fini(struct virt *vm)
{
    free(vm->fw.data);
    free(vm->kern.data);
    free(vm->initrd.data);
    free(vm->fdt.data);
    memset(&vm->fw, 0, sizeof(vm->fw));
    memset(&vm->kern, 0, sizeof(vm->kern));
    memset(&vm->initrd, 0, sizeof(vm->initrd));
    memset(&vm->fdt, 0, sizeof(vm->fdt));
}

int virt_dump_dtb(const struct virt *vm, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    int ret = 0;

    if (!f) {
        ret = -errno;
        snprintf(err, errlen, "dumpdtb: cannot create '%s': %s", path, strerror(errno));
        return ret;
    }
    if (fwrite(vm->fdt.data, 1, vm->fdt.len, f) != vm->fdt.len)
        ret = -EIO;
    if (fclose(f) != 0 && !ret)
        ret = -errno;
    if (ret)
        snprintf(err, errlen, "dumpdtb: cannot write '%s': %s", path, strerror(-ret));
    return ret;
}
