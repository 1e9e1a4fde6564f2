/*
 * Boot images for the virt board: firmware, kernel, initrd and device tree,
 * placed in RAM where QEMU 7.2 (hw/riscv/boot.c) places them:
 *
 *   firmware  at the base of RAM (a raw binary such as fw_dynamic.bin, or
 *             an ELF at its own addresses)
 *   kernel    at the first 2 MiB boundary after the firmware (RV64), or at
 *             the base of RAM with -bios none; an ELF goes to its own
 *             addresses and its lowest one is the entry
 *   initrd    at kernel entry + min(RAM / 2, 128 MiB)
 *   DTB       at the top of RAM (capped at 3 GiB), aligned down to 2 MiB
 *
 * and the reset ROM hands every hart a0 = hartid, a1 = DTB address, a2 =
 * fw_dynamic_info (next_addr = kernel entry, next_mode = S).
 *
 * Files are read once; a system reset copies the same bytes into RAM again
 * (QEMU re-copies its ROM blobs and leaves the rest of RAM alone).
 */
#ifndef GODWIT_MACHINE_VIRT_BOOT_H
#define GODWIT_MACHINE_VIRT_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define VIRT_KERNEL_ALIGN (2ull << 20) /* RV64 kernel / DTB alignment */
#define VIRT_FDT_LIMIT    (3ull << 30) /* QEMU keeps the DTB below 3 GiB */

/* RISC-V Linux Image header (Documentation/arch/riscv/boot-image-header.rst). */
#define RISCV_IMAGE_MAGIC2_OFF 0x38
#define RISCV_IMAGE_MAGIC2     0x05435352u /* "RSC\x05" */
#define RISCV_IMAGE_HDR_SIZE   0x40

struct riscv_image_info {
    uint64_t text_offset; /* where the kernel wants to sit from a 2 MiB boundary */
    uint64_t image_size;  /* bytes the kernel occupies when running (incl. bss) */
    uint32_t version;
};

/*
 * Parse a RISC-V Image header.  Returns 1 (a valid header, info filled), 0
 * (no Image magic: not an Image) or -EINVAL (magic present but the header
 * is inconsistent: image_size smaller than the file or absurdly large).
 */
int riscv_image_parse(const uint8_t *img, size_t len, struct riscv_image_info *info) gw_must_check;

/* One image copied into RAM at every (re)boot. */
struct virt_blob {
    uint8_t *data; /* malloc'd */
    size_t len;
    uint64_t addr;    /* guest-physical load address (flat images) */
    uint64_t reserve; /* bytes of RAM the image needs from addr (>= len) */
    bool elf;         /* load as ELF (addresses from the file) */
};

struct virt;

/*
 * Read the files named in the configuration, lay them out, build the DTB
 * and the reset ROM.  0 or -errno with a one-line reason in err.
 */
int virt_boot_prepare(struct virt *vm, char *err, size_t errlen) gw_must_check;

/* Copy firmware, kernel, initrd and DTB into RAM (power-on and reset). */
int virt_boot_load(struct virt *vm, char *err, size_t errlen) gw_must_check;

/* Free what virt_boot_prepare allocated. */
void virt_boot_fini(struct virt *vm);

#endif
