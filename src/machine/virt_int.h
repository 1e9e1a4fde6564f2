/*
 * Private parts of the virt board shared by virt.c (construction, reset,
 * reset ROM) and virt_run.c (the loop that runs the harts).
 */
#ifndef GODWIT_MACHINE_VIRT_INT_H
#define GODWIT_MACHINE_VIRT_INT_H

#include <stdatomic.h>

#include "devices/clint.h"
#include "devices/goldfish_rtc.h"
#include "devices/pcie_host.h"
#include "devices/plic.h"
#include "devices/sifive_test.h"
#include "devices/uart16550.h"
#include "hart/hart.h"
#include "machine/bus.h"
#include "machine/elf.h"
#include "machine/virt_boot.h"
#include "machine/virt.h"
#include "common/keyval.h"
#include "mem/gmem.h"
#include "net/net.h"
#include "virtio/virtio_mmio.h"

/* Requests to the run loop (bits of virt.requests). */
enum {
    VIRT_REQ_POWEROFF = 1 << 0, /* guest powered off; status in poweroff_code */
    VIRT_REQ_RESET = 1 << 1,    /* guest asked for a system reset */
    VIRT_REQ_STOP = 1 << 2,     /* the host asked us to stop (signal) */
};

struct virt;

/* What a virtio-mmio slot's interrupt callback needs. */
struct virt_virtio_slot {
    struct virt *vm;
    unsigned index; /* 0..VIRT_VIRTIO_COUNT-1: IRQ VIRT_VIRTIO_IRQ + index */
};

/* Layout of the reset ROM (offsets from VIRT_MROM_BASE). */
#define VIRT_MROM_START_ADDR 0x18          /* dword: where the trampoline jumps */
#define VIRT_MROM_FDT_ADDR   0x20          /* dword: a1 (device tree) */
#define VIRT_MROM_FW_DYN     0x28          /* struct fw_dynamic_info (OpenSBI) */
#define VIRT_FW_DYN_MAGIC    0x4942534full /* "OSBI" */
#define VIRT_FW_DYN_VERSION  2
#define VIRT_FW_DYN_MODE_S   1

struct virt {
    struct virt_config cfg;
    struct gmem *mem;
    struct bus bus;
    struct rv_hart_env env; /* shared by every hart; lives as long as they do */
    unsigned nharts;
    struct rv_hart **harts;
    bool *hart_wfi; /* hart is asleep in WFI until an interrupt is pending */
    struct uart *uart;
    struct clint *clint;
    struct plic *plic;
    struct sifive_test *test;
    struct goldfish_rtc *rtc;
    struct pcie_host *pcie;
    struct chardev *serial;
    struct virtio_mmio virtio[VIRT_VIRTIO_COUNT]; /* the slots (dev NULL: empty) */
    struct virt_virtio_slot virtio_slot[VIRT_VIRTIO_COUNT];
    uint64_t last_virtio_poll;                 /* host ns of the last device poll */
    struct net_backend *netdev[VIRT_MAX_OPTS]; /* -netdev backends (virt_net.c) */
    bool netdev_used[VIRT_MAX_OPTS];           /* a NIC is attached to it */
    unsigned nnetdevs;
    unsigned nics_default_mac; /* NICs given QEMU's default MAC so far */
    uint8_t *mrom;             /* VIRT_MROM_SIZE bytes */
    /* Boot images (virt_boot.c), kept to copy them again on reset. */
    struct virt_blob fw, kern, initrd, fdt;
    struct elf_info fw_elf, kern_elf; /* where ELF images went */
    uint64_t kernel_entry;            /* fw_dynamic_info.next_addr */
    int wake_fd;                      /* eventfd: wakes the loop from its WFI sleep */
    uint64_t last_input_poll;         /* host ns of the last console input check */
    _Atomic int requests;             /* VIRT_REQ_* */
    _Atomic int stop_signal;
    unsigned poweroff_code;
};

/* Reload the boot images and reset harts and devices, as a system reset does. */
int virt_reset(struct virt *vm, char *err, size_t errlen);

/* Wake the run loop if it sleeps (thread-safe).  A device thread that
 * raises an interrupt line must call it, or a hart asleep in WFI would only
 * notice at the next timer deadline. */
void virt_kick(struct virt *vm);

/*
 * Fill the reset ROM image: the trampoline jumps to start_addr with a1 =
 * fdt_addr; fw_dynamic_info.next_addr = next_addr.  virt_mrom_ops serve it
 * on the bus (opaque = the image): reads of any size, writes ignored.
 */
void virt_mrom_build(uint8_t *rom, size_t size, uint64_t start_addr, uint64_t fdt_addr,
                     uint64_t next_addr);
extern const struct bus_ops virt_mrom_ops;

/* Placeholders for devices not modelled yet (virt_stubs.c). */
extern const struct bus_ops virt_stub_flash_ops;

/*
 * virtio-mmio slots (virt_virtio.c).  init builds the devices the
 * command line asks for (-drive, -object, -device) into the slots, the
 * first -device in the last slot as on QEMU; 0 or -errno with a message.
 * The poll functions serve the devices' host I/O hooks from the run loop.
 */
int virt_virtio_init(struct virt *vm, char *err, size_t errlen) gw_must_check;
void virt_virtio_fini(struct virt *vm);
void virt_virtio_reset(struct virt *vm);
int virt_virtio_pollfds(struct virt *vm, struct pollfd *fds, int max);
void virt_virtio_poll(struct virt *vm);
uint64_t virt_virtio_next_deadline(struct virt *vm);

/*
 * Send one line to the guest agent (docs/virtio.md "Guest agent": e.g.
 * "powerdown") on the first virtio-serial port named org.godwit.agent.0:
 * vcon_agent_send()'s result (0, -EAGAIN: delivered when the guest posts a
 * buffer, -ENOTCONN: the guest has not opened the port, ...), or -ENODEV
 * if the machine has no such port.  Run-loop thread only.
 */
int virt_agent_send(struct virt *vm, const char *line);

/*
 * Networking (virt_net.c): init opens every -netdev backend (0 or -errno
 * with a message); create_nic builds a -device virtio-net-device from its
 * properties (netdev=, mac=, id=); check_peers warns about netdevs no NIC
 * uses; fini frees the backends (after the devices).
 */
int virt_net_init(struct virt *vm, char *err, size_t errlen) gw_must_check;
struct virtio_dev *virt_net_create_nic(struct virt *vm, struct keyval *kv, const char *spec,
                                       char *err, size_t errlen);
void virt_net_check_peers(const struct virt *vm);
void virt_net_fini(struct virt *vm);

#endif
