/*
 * The virt board: QEMU riscv64 "virt" compatible memory map (DESIGN.md §2),
 * its devices, the reset ROM and the loop that runs the harts.
 *
 *   0x0000_1000  MROM (reset vector: a0 = mhartid, a1 = DT address, a2 =
 *                fw_dynamic_info, jump to RAM base, as QEMU's)
 *   0x0010_0000  SiFive test finisher
 *   0x0010_1000  goldfish RTC
 *   0x0200_0000  CLINT (msip, mtimecmp @+0x4000, mtime @+0xbff8)
 *   0x0c00_0000  PLIC (96 sources, M and S context per hart)
 *   0x0300_0000  PCIe PIO window (empty bus: all-ones)
 *   0x1000_0000  UART 16550A
 *   0x1000_1000  8 virtio-mmio slots, 0x1000 apart (virtio/virtio_mmio.c; the
 *                first -device goes into the last slot, as on QEMU)
 *   0x2000_0000  2 x 32 MiB flash (no backing: reads 0)
 *   0x3000_0000  PCIe ECAM (host bridge 00:00.0 only)
 *   0x4000_0000  PCIe MMIO window (all-ones)
 *   0x8000_0000  RAM
 *   16 GiB-aligned above RAM: 16 GiB high PCIe MMIO window (all-ones)
 * Not modelled, so it raises access faults where QEMU has a device:
 * fw_cfg (0x1010_0000).  Addresses that no device claims raise access
 * faults, as on QEMU (checked against 7.2).
 *
 * Threading: the harts run round-robin on the thread calling virt_run();
 * virt_request_stop() may be called from any thread (e.g. a signal thread).
 */
#ifndef GODWIT_MACHINE_VIRT_H
#define GODWIT_MACHINE_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/chardev.h"

#define VIRT_MAX_HARTS   512 /* QEMU 7.2's limit for virt */
#define VIRT_DEFAULT_RAM (128ull << 20)
#define VIRT_MAX_RAM     (256ull << 30)
/* The program's first 2 MiB and the device tree in the 2 MiB above it. */
#define VIRT_MIN_RAM (4ull << 20)

#define VIRT_MROM_BASE      0x1000ull
#define VIRT_MROM_SIZE      0xf000ull
#define VIRT_TEST_BASE      0x100000ull
#define VIRT_RTC_BASE       0x101000ull
#define VIRT_CLINT_BASE     0x2000000ull
#define VIRT_PLIC_BASE      0xc000000ull
#define VIRT_PCIE_PIO_BASE  0x3000000ull
#define VIRT_PCIE_PIO_SIZE  0x10000ull
#define VIRT_UART0_BASE     0x10000000ull
#define VIRT_VIRTIO_BASE    0x10001000ull
#define VIRT_VIRTIO_COUNT   8
#define VIRT_VIRTIO_STRIDE  0x1000ull
#define VIRT_VIRTIO_SIZE    0x200ull
#define VIRT_FLASH_BASE     0x20000000ull
#define VIRT_FLASH_SIZE     0x4000000ull
#define VIRT_PCIE_ECAM_BASE 0x30000000ull
#define VIRT_PCIE_MMIO_BASE 0x40000000ull
#define VIRT_PCIE_MMIO_SIZE 0x40000000ull
#define VIRT_DRAM_BASE      0x80000000ull
#define VIRT_PCIE_HIGH_SIZE (16ull << 30)

#define VIRT_MAX_OPTS 16 /* -drive, -device, -netdev, -object: each at most this often */

/* Debian's OpenSBI, what -bios default (or no -bios) loads. */
#define VIRT_DEFAULT_BIOS "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin"

struct virt_config {
    uint64_t ram_size;          /* bytes, a multiple of 8 KiB */
    unsigned smp;               /* harts, 1..VIRT_MAX_HARTS */
    const char *bios;           /* firmware file; NULL = none (-bios none) */
    const char *kernel;         /* ELF or RISC-V Image (-kernel); may be NULL with firmware */
    const char *initrd;         /* -initrd, or NULL */
    const char *append;         /* -append (/chosen/bootargs), or NULL */
    const char *dumpdtb;        /* -machine dumpdtb=FILE: write the DTB and exit */
    struct chardev_spec serial; /* UART0 backend */
    bool console_mux;           /* serial on stdio with QEMU's Ctrl-A escapes (-nographic) */
    bool no_reboot;             /* guest reset request exits instead */
    const char *qmp;            /* -qmp unix:PATH,..., or NULL */
    const char *incoming;       /* -incoming URI (file:PATH), or NULL */
    bool start_paused;          /* -S: stay paused until QMP cont */
    char name[64];              /* -name: 1..63 printable ASCII bytes; "" = none */
    uint8_t uuid[16];           /* -uuid: the VM's UUID; all zero = none */
    unsigned trace;             /* VIRT_TRACE_* bits (GODWIT_TRACE) */
    /* QEMU-style option strings, in command-line order, interpreted when
     * the board is built (machine/virt_virtio.c); they point into argv. */
    const char *drives[VIRT_MAX_OPTS]; /* -drive file=..,format=raw,if=none,id=.. */
    unsigned ndrives;
    const char *devices[VIRT_MAX_OPTS]; /* -device virtio-blk-device,drive=.. */
    unsigned ndevices;
    const char *netdevs[VIRT_MAX_OPTS]; /* -netdev user|tap,id=.. */
    unsigned nnetdevs;
    const char *objects[VIRT_MAX_OPTS]; /* -object rng-random|rng-builtin,id=.. */
    unsigned nobjects;
};

/* Debug tracing to stderr, chosen with GODWIT_TRACE=name[,name...]. */
enum {
    VIRT_TRACE_TRAPS = 1 << 0,     /* "traps": every trap: hart, cause, epc, tval, modes */
    VIRT_TRACE_MIGRATION = 1 << 1, /* "migration": rounds and switchover phases, timed */
};

/* Parse a GODWIT_TRACE value into VIRT_TRACE_* bits; -EINVAL names the
 * unknown word in err. */
int virt_trace_parse(const char *s, unsigned *bits, char *err, size_t errlen) gw_must_check;

/* Defaults as QEMU's: 128 MiB, one hart, serial none (set by -nographic),
 * firmware VIRT_DEFAULT_BIOS. */
void virt_config_init(struct virt_config *cfg);

struct virt;

/*
 * Build the board: RAM, devices, harts; load the kernel; open the serial
 * backend.  NULL with a one-line reason in err.
 */
struct virt *virt_new(const struct virt_config *cfg, char *err, size_t errlen);
void virt_free(struct virt *vm);

/*
 * Run until the guest powers off, fails fatally, or a stop is requested.
 * Returns the process exit status: the test finisher's code, 0 for a
 * requested stop, 1 after a fatal guest error (message printed).
 */
int virt_run(struct virt *vm);

/* Ask virt_run() to return status 0 soon (thread- and signal-thread-safe). */
void virt_request_stop(struct virt *vm, int signo);

/* Write the board's device tree blob to path (-machine dumpdtb=).  0 or
 * -errno with a reason in err. */
int virt_dump_dtb(const struct virt *vm, const char *path, char *err, size_t errlen) gw_must_check;

#endif
