/*
 * ELF loader for bare-metal programs (-kernel prog.elf with -bios none).
 *
 * Accepts ELF64 little-endian RISC-V ET_EXEC images and copies every PT_LOAD
 * segment to its physical address (p_paddr, as QEMU does) in guest RAM,
 * zero-filling p_memsz beyond p_filesz.  The file is hostile input: every
 * header field, offset, size and address is checked against the image size
 * and RAM, with overflow-safe arithmetic, and the whole image is validated
 * before the first byte is written, so a rejected file leaves RAM untouched.
 */
#ifndef GODWIT_MACHINE_ELF_H
#define GODWIT_MACHINE_ELF_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "mem/gmem.h"

/* Largest ELF file elf_read_file accepts by default (bytes). */
#define ELF_MAX_FILE_SIZE (1ull << 31)

struct elf_info {
    uint64_t entry; /* e_entry */
    uint64_t low;   /* lowest physical address loaded */
    uint64_t high;  /* one past the highest physical address loaded */
    unsigned nload; /* PT_LOAD segments with a non-zero p_memsz */
};

/*
 * Validate img[0..len) and load it into mem.  On failure returns -ENOEXEC
 * (not a usable ELF) or -ENOMEM, writes a one-line reason into err (without
 * the file name) and leaves RAM unchanged.
 */
int elf_load(struct gmem *mem, const uint8_t *img, size_t len, struct elf_info *info, char *err,
             size_t errlen) gw_must_check;

/*
 * Read a whole regular file of at most max_size bytes into a malloc'd
 * buffer.  Anything else (a named pipe, a device, a directory) is refused
 * without blocking.  Returns 0, or -errno with a reason (naming the path)
 * in err.
 */
int elf_read_file(const char *path, uint64_t max_size, uint8_t **buf, size_t *len, char *err,
                  size_t errlen) gw_must_check;

#endif
