/*
 * ELF64 loader; see elf.h.  Fields are read byte by byte as little-endian
 * values, never through casts of the file buffer, so alignment and host
 * byte order do not matter.  Reference: System V gABI "ELF-64 Object File
 * Format" and the RISC-V ELF psABI (EM_RISCV = 243).
 */
#include "machine/elf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EHDR_SIZE 64
#define PHDR_SIZE 56

#define ELFCLASS64  2
#define ELFDATA2LSB 1
#define EV_CURRENT  1
#define ET_EXEC     2
#define EM_RISCV    243
#define PT_LOAD     1
#define PN_XNUM     0xffff

struct elf_seg {
    unsigned index;  /* program header number, for messages */
    uint64_t offset; /* p_offset */
    uint64_t filesz; /* p_filesz */
    uint64_t paddr;  /* p_paddr */
    uint64_t memsz;  /* p_memsz */
};

static uint64_t rd_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int elf_fail(char *err, size_t errlen, const char *fmt, ...) gw_printf(3, 4);

static int elf_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -ENOEXEC;
}

static int elf_seg_cmp(const void *a, const void *b)
{
    const struct elf_seg *x = a, *y = b;

    if (x->paddr != y->paddr)
        return x->paddr < y->paddr ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

/* Check the ELF header; on success store the program header table geometry. */
static int elf_check_header(const uint8_t *img, size_t len, uint64_t *phoff, unsigned *phnum,
                            char *err, size_t errlen)
{
    uint64_t type, machine, version, phentsize;

    if (len < EHDR_SIZE)
        return elf_fail(err, errlen, "file too short for an ELF header (%zu bytes)", len);
    if (memcmp(img, "\177ELF", 4) != 0)
        return elf_fail(err, errlen, "not an ELF file (bad magic)");
    if (img[4] != ELFCLASS64)
        return elf_fail(err, errlen, "not a 64-bit ELF file (class %u); an RV64 program is needed",
                        img[4]);
    if (img[5] != ELFDATA2LSB)
        return elf_fail(err, errlen, "not a little-endian ELF file (data encoding %u)", img[5]);
    if (img[6] != EV_CURRENT)
        return elf_fail(err, errlen, "unsupported ELF identification version %u", img[6]);
    type = rd_le(img + 16, 2);
    machine = rd_le(img + 18, 2);
    version = rd_le(img + 20, 4);
    if (machine != EM_RISCV)
        return elf_fail(err, errlen, "not a RISC-V ELF file (e_machine %llu, want %u)",
                        (unsigned long long)machine, EM_RISCV);
    if (type != ET_EXEC)
        return elf_fail(err, errlen, "not an executable ELF file (e_type %llu, want ET_EXEC)",
                        (unsigned long long)type);
    if (version != EV_CURRENT)
        return elf_fail(err, errlen, "unsupported ELF version %llu", (unsigned long long)version);

    *phoff = rd_le(img + 32, 8);
    phentsize = rd_le(img + 54, 2);
    *phnum = (unsigned)rd_le(img + 56, 2);
    if (*phnum == 0)
        return elf_fail(err, errlen, "no program headers");
    if (*phnum == PN_XNUM)
        return elf_fail(err, errlen, "extended program header numbering is not supported");
    if (phentsize != PHDR_SIZE)
        return elf_fail(err, errlen, "program header entry size %llu, want %u",
                        (unsigned long long)phentsize, PHDR_SIZE);
    /* phnum <= 0xfffe, so the table size cannot overflow. */
    if (*phoff > len || (uint64_t)*phnum * PHDR_SIZE > len - *phoff)
        return elf_fail(err, errlen,
                        "program header table (offset 0x%llx, %u entries) extends past the end "
                        "of the file (%zu bytes)",
                        (unsigned long long)*phoff, *phnum, len);
    return 0;
}

/* Check one PT_LOAD segment against the file and RAM. */
static int elf_check_seg(const struct gmem *mem, const struct elf_seg *s, size_t len, char *err,
                         size_t errlen)
{
    if (s->offset > len || s->filesz > len - s->offset)
        return elf_fail(err, errlen,
                        "segment %u: file data (offset 0x%llx, size 0x%llx) extends past the end "
                        "of the file (%zu bytes)",
                        s->index, (unsigned long long)s->offset, (unsigned long long)s->filesz,
                        len);
    if (s->filesz > s->memsz)
        return elf_fail(err, errlen, "segment %u: file size 0x%llx exceeds memory size 0x%llx",
                        s->index, (unsigned long long)s->filesz, (unsigned long long)s->memsz);
    if (s->paddr + s->memsz < s->paddr)
        return elf_fail(err, errlen,
                        "segment %u: address 0x%llx + size 0x%llx wraps around the address space",
                        s->index, (unsigned long long)s->paddr, (unsigned long long)s->memsz);
    if (!gmem_contains(mem, s->paddr, s->memsz))
        return elf_fail(err, errlen,
                        "segment %u: [0x%llx, 0x%llx) is outside RAM [0x%llx, 0x%llx); "
                        "a larger -m may help",
                        s->index, (unsigned long long)s->paddr,
                        (unsigned long long)(s->paddr + s->memsz), (unsigned long long)mem->base,
                        (unsigned long long)(mem->base + mem->size));
    return 0;
}

int elf_load(struct gmem *mem, const uint8_t *img, size_t len, struct elf_info *info, char *err,
             size_t errlen)
{
    struct elf_seg *segs = NULL;
    uint64_t phoff = 0, entry;
    unsigned phnum = 0, nseg = 0;
    int ret;

    ret = elf_check_header(img, len, &phoff, &phnum, err, errlen);
    if (ret)
        return ret;
    entry = rd_le(img + 24, 8);

    segs = calloc(phnum, sizeof(*segs));
    if (!segs) {
        elf_fail(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (uint64_t)i * PHDR_SIZE;
        struct elf_seg s;

        if (rd_le(ph, 4) != PT_LOAD)
            continue;
        s.index = i;
        s.offset = rd_le(ph + 8, 8);
        s.paddr = rd_le(ph + 24, 8);
        s.filesz = rd_le(ph + 32, 8);
        s.memsz = rd_le(ph + 40, 8);
        if (s.memsz == 0 && s.filesz == 0)
            continue; /* occupies nothing */
        ret = elf_check_seg(mem, &s, len, err, errlen);
        if (ret)
            goto out;
        segs[nseg++] = s;
    }
    if (nseg == 0) {
        ret = elf_fail(err, errlen, "no loadable segment");
        goto out;
    }

    /* Segments must not overlap in physical memory (QEMU refuses that too). */
    qsort(segs, nseg, sizeof(*segs), elf_seg_cmp);
    for (unsigned i = 1; i < nseg; i++) {
        const struct elf_seg *a = &segs[i - 1], *b = &segs[i];
        if (b->paddr < a->paddr + a->memsz) {
            ret = elf_fail(err, errlen, "segments %u and %u overlap at 0x%llx", a->index, b->index,
                           (unsigned long long)b->paddr);
            goto out;
        }
    }
    if (!gmem_contains(mem, entry, 1)) {
        ret = elf_fail(err, errlen, "entry point 0x%llx is outside RAM", (unsigned long long)entry);
        goto out;
    }

    /* Everything checked: copy. */
    for (unsigned i = 0; i < nseg; i++) {
        const struct elf_seg *s = &segs[i];
        uint8_t *dst = gmem_ptr(mem, s->paddr, s->memsz);

        memcpy(dst, img + s->offset, s->filesz);
        memset(dst + s->filesz, 0, s->memsz - s->filesz);
        gmem_mark_dirty(mem, s->paddr, s->memsz);
    }
    if (info) {
        info->entry = entry;
        info->low = segs[0].paddr;
        info->high = 0;
        for (unsigned i = 0; i < nseg; i++)
            if (segs[i].paddr + segs[i].memsz > info->high)
                info->high = segs[i].paddr + segs[i].memsz;
        info->nload = nseg;
    }
    ret = 0;
out:
    free(segs);
    return ret;
}

/* What a path that is not a regular file is, for messages. */
int elf_read_file(const char *path, uint64_t max_size, uint8_t **bufp, size_t *lenp, char *err,
                  size_t errlen)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t done = 0;
    int fd, ret;

    fd = gw_open_checked(path, O_RDONLY, 0, GW_OPEN_REG, err, errlen);
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) < 0) {
        ret = -errno;
        snprintf(err, errlen, "cannot stat '%s': %s", path, strerror(-ret));
        goto out_close;
    }
    if ((uint64_t)st.st_size > max_size) {
        ret = -EFBIG;
        snprintf(err, errlen, "'%s' is too large (%lld bytes, limit %llu)", path,
                 (long long)st.st_size, (unsigned long long)max_size);
        goto out_close;
    }
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        ret = -ENOMEM;
        snprintf(err, errlen, "'%s': out of memory", path);
        goto out_close;
    }
    while (done < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ret = -errno;
            snprintf(err, errlen, "cannot read '%s': %s", path, strerror(-ret));
            goto out_free;
        }
        if (n == 0)
            break; /* file shrank: use what we got */
        done += (size_t)n;
    }
    close(fd);
    *bufp = buf;
    *lenp = done;
    return 0;

out_free:
    free(buf);
out_close:
    close(fd);
    return ret;
}
