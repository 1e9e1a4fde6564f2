/*
 * The virt board's virtio-mmio slots: -drive/-device/-object strings turn
 * into devices in QEMU's slot order (first -device in the last slot), empty
 * slots answer as QEMU's, a device's interrupt reaches the PLIC source of
 * its slot, and bad option strings fail with messages naming the problem.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "board_check.h"
#include "machine/virt_fdt.h"
#include "machine/virt_int.h"

static char dir[] = "/tmp/godwit-vv-XXXXXX";
static char elf_path[128], disk_a[128], disk_b[128];

static void write_elf(void)
{
    uint8_t img[124] = {0};
    uint32_t wfi = 0x10500073;
    FILE *f;

    memcpy(img, "\177ELF\2\1\1", 7);
    img[16] = 2;   /* ET_EXEC */
    img[18] = 243; /* EM_RISCV */
    img[20] = 1;
    memcpy(img + 24, &(uint64_t){0x80000000}, 8);
    img[32] = 64;
    img[54] = 56;
    img[56] = 1;
    img[64] = 1;
    memcpy(img + 64 + 8, &(uint64_t){120}, 8);
    memcpy(img + 64 + 16, &(uint64_t){0x80000000}, 8);
    memcpy(img + 64 + 24, &(uint64_t){0x80000000}, 8);
    memcpy(img + 64 + 32, &(uint64_t){4}, 8);
    memcpy(img + 64 + 40, &(uint64_t){4}, 8);
    memcpy(img + 120, &wfi, 4);
    f = fopen(elf_path, "wb");
    if (!f || fwrite(img, 1, sizeof(img), f) != sizeof(img) || fclose(f) != 0)
        abort();
}

static void make_disk(const char *path, long size)
{
    FILE *f = fopen(path, "wb");
    if (!f || ftruncate(fileno(f), size) != 0 || fclose(f) != 0)
        abort();
}

/* Build a board with the given option strings (NULL-terminated lists),
 * waiting for an incoming migration (-incoming defer) if incoming. */
static struct virt *board_in(const char *const *drives, const char *const *devices,
                             const char *const *objects, bool incoming, char *err, size_t errlen)
{
    struct virt_config cfg;

    virt_config_init(&cfg);
    cfg.incoming = incoming ? "defer" : NULL;
    cfg.bios = NULL;
    cfg.kernel = elf_path;
    cfg.ram_size = 16 << 20;
    for (; drives && *drives; drives++)
        cfg.drives[cfg.ndrives++] = *drives;
    for (; devices && *devices; devices++)
        cfg.devices[cfg.ndevices++] = *devices;
    for (; objects && *objects; objects++)
        cfg.objects[cfg.nobjects++] = *objects;
    err[0] = 0;
    return virt_new(&cfg, err, errlen);
}

static struct virt *board(const char *const *drives, const char *const *devices,
                          const char *const *objects, char *err, size_t errlen)
{
    return board_in(drives, devices, objects, false, err, errlen);
}

static uint32_t rd(struct virt *vm, uint64_t pa)
{
    uint64_t v = 0xdead;
    if (bus_read(&vm->bus, pa, 4, &v) < 0)
        return 0xfa17;
    return (uint32_t)v;
}

static void wr(struct virt *vm, uint64_t pa, uint32_t v)
{
    if (bus_write(&vm->bus, pa, 4, v) < 0)
        printf("     write 0x%llx failed\n", (unsigned long long)pa);
}

static uint64_t slot(unsigned i)
{
    return VIRT_VIRTIO_BASE + i * VIRT_VIRTIO_STRIDE;
}

static void expect_error(const char *const *drives, const char *const *devices,
                         const char *const *objects, const char *want, const char *what)
{
    char err[512];
    struct virt *vm = board(drives, devices, objects, err, sizeof(err));

    CHECK(!vm && strstr(err, want), "%s: error mentions '%s' (got '%s')", what, want, err);
    virt_free(vm);
}

static void test_layout(void)
{
    char a[200], b[200], err[512];
    const char *drives[] = {a, b, NULL};
    const char *devices[] = {"virtio-blk-device,drive=a,serial=first", "virtio-blk-device,drive=b",
                             "virtio-rng-device,rng=r0", NULL};
    const char *objects[] = {"rng-random,id=r0,filename=/dev/urandom", NULL};
    struct virt *vm;
    uint64_t base, blk = slot(7);

    snprintf(a, sizeof(a), "file=%s,format=raw,if=none,id=a", disk_a);
    snprintf(b, sizeof(b), "file=%s,format=raw,if=none,id=b,readonly=on,cache=unsafe", disk_b);
    vm = board(drives, devices, objects, err, sizeof(err));
    CHECK(vm != NULL, "board with two disks and an rng (%s)", err);
    if (!vm)
        return;
    CHECK(rd(vm, slot(7) + 8) == 2 && rd(vm, slot(7) + 0x100) == 2048,
          "first -device in the last slot (0x10008000): the 1 MiB disk");
    CHECK(rd(vm, slot(6) + 8) == 2 && rd(vm, slot(6) + 0x100) == 4096,
          "second -device below it: the 2 MiB disk");
    CHECK_EQ(rd(vm, slot(5) + 8), 4, "third: virtio-rng");
    CHECK(rd(vm, slot(7) + 4) == 2 && rd(vm, slot(7)) == 0x74726976, "version 2, magic");
    for (unsigned i = 0; i < 5; i++) {
        base = slot(i);
        CHECK(rd(vm, base) == 0x74726976 && rd(vm, base + 4) == 1 && rd(vm, base + 8) == 0 &&
                  rd(vm, base + 0xc) == 0x554d4551,
              "slot %u empty, as QEMU's", i);
    }
    wr(vm, slot(6) + 0x14, 0);
    CHECK(rd(vm, slot(6) + 0x10) & (1u << 5), "readonly=on: VIRTIO_BLK_F_RO");

    /* A GET_ID request on the first disk raises PLIC source 8. */
    {
        uint64_t ram = VIRT_DRAM_BASE + 0x100000, desc = ram, avail = ram + 0x1000,
                 used = ram + 0x2000, data = ram + 0x3000;
        uint8_t d[48] = {0}, hdr[16] = {8}, idbuf[20];
        uint16_t av[3] = {0, 1, 0};
        memcpy(d, &(uint64_t){data}, 8);
        memcpy(d + 8, &(uint32_t){16}, 4);
        memcpy(d + 12, &(uint16_t){1}, 2);
        memcpy(d + 14, &(uint16_t){1}, 2);
        memcpy(d + 16, &(uint64_t){data + 0x100}, 8);
        memcpy(d + 24, &(uint32_t){20}, 4);
        memcpy(d + 28, &(uint16_t){3}, 2);
        memcpy(d + 30, &(uint16_t){2}, 2);
        memcpy(d + 32, &(uint64_t){data + 0x200}, 8);
        memcpy(d + 40, &(uint32_t){1}, 4);
        memcpy(d + 44, &(uint16_t){2}, 2);
        if (gmem_write(vm->mem, desc, d, sizeof(d)) < 0 || gmem_write(vm->mem, data, hdr, 16) < 0 ||
            gmem_write(vm->mem, avail, av, sizeof(av)) < 0)
            abort();
        wr(vm, blk + 0x70, 3);
        wr(vm, blk + 0x24, 1);
        wr(vm, blk + 0x20, 1); /* VERSION_1 */
        wr(vm, blk + 0x70, 11);
        wr(vm, blk + 0x30, 0);
        wr(vm, blk + 0x38, 16);
        wr(vm, blk + 0x80, (uint32_t)desc);
        wr(vm, blk + 0x90, (uint32_t)avail);
        wr(vm, blk + 0xa0, (uint32_t)used);
        wr(vm, blk + 0x44, 1);
        wr(vm, blk + 0x70, 15);
        wr(vm, blk + 0x50, 0);
        CHECK(rd(vm, blk + 0x60) == 1 && gmem_read(vm->mem, data + 0x100, idbuf, 20) == 0 &&
                  !memcmp(idbuf, "first", 6),
              "GET_ID answered through the board");
        CHECK(rd(vm, VIRT_PLIC_BASE + 0x1000) & (1u << (VIRT_VIRTIO_IRQ + 7)),
              "PLIC source 8 pending");
        wr(vm, blk + 0x64, 1);
        CHECK_EQ(rd(vm, blk + 0x60), 0, "InterruptACK");
        CHECK(virt_reset(vm, err, sizeof(err)) == 0 && rd(vm, blk + 0x70) == 0 &&
                  rd(vm, blk + 0x44) == 0,
              "a system reset resets the devices");
    }
    virt_free(vm);
}

static void test_errors(void)
{
    char a[200], ax[220];
    const char *drive_a[] = {a, NULL};
    const char *blk_a[] = {"virtio-blk-device,drive=a", NULL};

    snprintf(a, sizeof(a), "file=%s,format=raw,if=none,id=a", disk_a);
    expect_error(NULL, (const char *[]){"virtio-gpu-device", NULL}, NULL,
                 "unsupported device 'virtio-gpu-device'", "unknown device");
    expect_error(NULL, blk_a, NULL, "no -drive with id 'a'", "missing drive");
    expect_error(NULL, (const char *[]){"virtio-blk-device", NULL}, NULL, "drive= is required",
                 "blk without drive");
    expect_error(drive_a, (const char *[]){"virtio-blk-device,drive=a,frob=1", NULL}, NULL,
                 "unsupported property 'frob'", "unknown device property");
    expect_error(drive_a,
                 (const char *[]){"virtio-blk-device,drive=a", "virtio-blk-device,drive=a", NULL},
                 NULL, "already in use", "drive used twice");
    expect_error(drive_a,
                 (const char *[]){"virtio-blk-device,drive=a,serial=123456789012345678901", NULL},
                 NULL, "serial is longer", "serial too long");
    expect_error((const char *[]){"file=/nonexistent/x.img,format=raw,if=none,id=a", NULL}, blk_a,
                 NULL, "could not open '/nonexistent/x.img'", "missing file");
    snprintf(ax, sizeof(ax), "%s,format=qcow2", a);
    expect_error((const char *[]){ax, NULL}, blk_a, NULL, "format 'qcow2' is not supported",
                 "qcow2");
    expect_error((const char *[]){"file=x,id=a", NULL}, blk_a, NULL, "only if=none", "if missing");
    expect_error((const char *[]){"file=x,if=none", NULL}, NULL, NULL, "id= is required", "no id");
    snprintf(ax, sizeof(ax), "%s,cache=fast", a);
    expect_error((const char *[]){ax, NULL}, blk_a, NULL, "cache=fast", "bad cache mode");
    snprintf(ax, sizeof(ax), "%s,snapshot=on", a);
    expect_error((const char *[]){ax, NULL}, blk_a, NULL, "unsupported option 'snapshot'",
                 "unknown drive option");
    expect_error((const char *[]){a, a, NULL}, NULL, NULL, "duplicate id 'a'", "duplicate id");
    expect_error(NULL, (const char *[]){"virtio-rng-device,rng=r9", NULL}, NULL,
                 "no -object with id 'r9'", "missing rng object");
    expect_error(NULL, NULL, (const char *[]){"memory-backend-ram,id=m", NULL},
                 "unsupported object type", "unknown object");
    expect_error(NULL, NULL, (const char *[]){"tls-creds-psk,id=t,endpoint=middle,dir=/tmp", NULL},
                 "use client or server", "tls-creds-psk: bad endpoint");
    expect_error(NULL, NULL, (const char *[]){"tls-creds-psk,id=t,endpoint=server", NULL},
                 "dir= is required", "tls-creds-psk: no dir");
    expect_error(NULL, NULL, (const char *[]){"tls-creds-psk,id=t,dir=/tmp,username=bob", NULL},
                 "unsupported property 'username'", "tls-creds-psk: username= unsupported");
    expect_error(NULL, NULL,
                 (const char *[]){"tls-creds-psk,id=t,dir=/tmp", "rng-builtin,id=t", NULL},
                 "duplicate id 't'", "objects: duplicate id");
    expect_error(NULL, (const char *[]){"virtio-rng-device,rng=t", NULL},
                 (const char *[]){"tls-creds-psk,id=t,dir=/tmp", NULL}, "not a random source",
                 "tls-creds-psk as an rng");
    expect_error(NULL,
                 (const char *[]){"virtio-rng-device", "virtio-rng-device", "virtio-rng-device",
                                  "virtio-rng-device", "virtio-rng-device", "virtio-rng-device",
                                  "virtio-rng-device", "virtio-rng-device", "virtio-rng-device",
                                  NULL},
                 NULL, "no free virtio-mmio slot", "nine devices");
}

/* Image locks (common/image_lock.h) through the board: a second machine
 * on a writable image is refused, file.locking=off skips it, readers
 * share, an -incoming machine locks only when virt_disks_lock says so,
 * virt_disks_unlock hands the images over. */
static void test_locks(void)
{
    const char *blk[] = {"virtio-blk-device,drive=b", NULL};
    const char *blk2[] = {"virtio-blk-device,drive=b", "virtio-blk-device,drive=c", NULL};
    char w[200], ro[220], off[220], bad[220], c[200], err[512];
    struct virt *a, *b, *inc;

    snprintf(w, sizeof(w), "file=%s,format=raw,if=none,id=b", disk_b);
    snprintf(ro, sizeof(ro), "%s,readonly=on", w);
    snprintf(off, sizeof(off), "%s,file.locking=off", w);
    snprintf(bad, sizeof(bad), "%s,file.locking=maybe", w);
    snprintf(c, sizeof(c), "file=%s,format=raw,if=none,id=c", disk_b);
    expect_error((const char *[]){bad, NULL}, blk, NULL, "file.locking=maybe: use on, off or auto",
                 "bad file.locking");
    a = board((const char *[]){w, NULL}, blk, NULL, err, sizeof(err));
    CHECK(a != NULL, "writer A (%s)", err);
    expect_error((const char *[]){w, NULL}, blk, NULL,
                 "-drive id=b: Failed to get \"write\" lock: this process already uses the image",
                 "second writer refused");
    expect_error((const char *[]){ro, NULL}, blk, NULL, "Failed to get shared \"write\" lock",
                 "reader refused while A writes");
    b = board((const char *[]){off, NULL}, blk, NULL, err, sizeof(err));
    CHECK(b != NULL, "file.locking=off: not refused (%s)", err);
    virt_free(b);
    inc = board_in((const char *[]){w, NULL}, blk, NULL, true, err, sizeof(err));
    CHECK(inc != NULL, "an -incoming machine opens the image A holds (%s)", err);
    CHECK(inc && virt_disks_lock(inc, err, sizeof(err)) == -EAGAIN &&
              strstr(err, "Failed to get \"write\" lock"),
          "and cannot lock it while A runs: %s", err);
    CHECK(virt_disks_unlock(a, err, sizeof(err)) == 0, "A hands over");
    CHECK(inc && virt_disks_lock(inc, err, sizeof(err)) == 0, "the incoming machine locks (%s)",
          err);
    CHECK(inc && virt_disks_lock(inc, err, sizeof(err)) == 0, "twice is a no-op");
    CHECK(virt_disks_lock(a, err, sizeof(err)) == -EAGAIN, "A cannot take it back now");
    virt_free(inc);
    CHECK(virt_disks_reclaim(a) == 0, "A takes it back once the other is gone");
    virt_free(a);

    expect_error((const char *[]){w, c, NULL}, blk2, NULL, "-drive id=c: Failed to get",
                 "one image on two drives of one machine");
    a = board((const char *[]){ro, NULL}, blk, NULL, err, sizeof(err));
    b = board((const char *[]){ro, NULL}, blk, NULL, err, sizeof(err));
    CHECK(a && b, "readonly=on twice (%s)", err);
    expect_error((const char *[]){w, NULL}, blk, NULL, "Failed to get \"write\" lock",
                 "a writer refused by readers");
    virt_free(a);
    virt_free(b);
    a = board((const char *[]){w, NULL}, blk, NULL, err, sizeof(err));
    CHECK(a != NULL, "writer after the readers left (%s)", err);
    virt_free(a);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    snprintf(elf_path, sizeof(elf_path), "%s/wfi.elf", dir);
    snprintf(disk_a, sizeof(disk_a), "%s/a,,b.img", dir); /* ",," in the option string */
    snprintf(disk_b, sizeof(disk_b), "%s/b.img", dir);
    write_elf();
    make_disk(disk_a, 1 << 20);
    make_disk(disk_b, 2 << 20);
    {
        /* The file is really named "a,b.img"; the option string says "a,,b.img". */
        char real[128];
        snprintf(real, sizeof(real), "%s/a,b.img", dir);
        if (rename(disk_a, real) != 0)
            abort();
    }
    test_layout();
    test_errors();
    test_locks();
    {
        char real[128];
        snprintf(real, sizeof(real), "%s/a,b.img", dir);
        unlink(real);
    }
    unlink(disk_b);
    unlink(elf_path);
    rmdir(dir);
    return board_check_done();
}
