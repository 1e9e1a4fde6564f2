/*
 * The virt board: builds RAM, the MMIO bus and its devices, the harts and
 * the reset ROM, loads the kernel, and resets it all on request.  The run
 * loop lives in virt_run.c.  See virt.h for the memory map.
 */
#include "machine/virt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "machine/virt_fdt.h"
#include "machine/virt_int.h"

/* ---- glue between harts, bus and devices ------------------------------------ */

/*
 * Once the guest has asked to power off or reset, the machine is stopping:
 * QEMU executes nothing after the finisher's store, while our harts notice
 * the exit request only at a block boundary.  Until the loop acts, device
 * accesses do nothing (reads give 0), so no output leaks past the store.
 */
static bool virt_stopping(struct virt *vm)
{
    return atomic_load_explicit(&vm->requests, memory_order_relaxed) &
           (VIRT_REQ_POWEROFF | VIRT_REQ_RESET);
}

static int virt_mmio_read(void *opaque, uint64_t pa, unsigned size, uint64_t *val)
{
    struct virt *vm = opaque;

    if (gw_unlikely(virt_stopping(vm))) {
        *val = 0;
        return 0;
    }
    return bus_read(&vm->bus, pa, size, val);
}

static int virt_mmio_write(void *opaque, uint64_t pa, unsigned size, uint64_t val)
{
    struct virt *vm = opaque;

    if (gw_unlikely(virt_stopping(vm)))
        return 0;
    return bus_write(&vm->bus, pa, size, val);
}

/* The time CSR.  Observing mtime also brings MTIP up to date, so a guest
 * that sees mtime >= mtimecmp also sees mip.MTIP (a level, as on QEMU). */
static uint64_t virt_read_time(void *opaque)
{
    struct virt *vm = opaque;

    return clint_update(vm->clint);
}

static void virt_clint_irq(void *opaque, unsigned hart, unsigned irq, bool level)
{
    struct virt *vm = opaque;
    if (hart < vm->nharts)
        rv_hart_set_irq(vm->harts[hart], irq, level);
}

/* GODWIT_TRACE=traps: one line per trap, for diffing against QEMU's
 * `-d int` log when a guest goes astray. */
static void virt_trace_trap(void *opaque, uint64_t hartid, uint64_t cause, uint64_t epc,
                            uint64_t tval, unsigned from_priv, unsigned to_priv)
{
    static const char prv[] = "USHM";

    (void)opaque;
    fprintf(stderr, "trap: hart %llu %s %llu epc 0x%016llx tval 0x%016llx %c->%c\n",
            (unsigned long long)hartid, (cause >> 63) ? "interrupt" : "exception",
            (unsigned long long)(cause & ~(1ull << 63)), (unsigned long long)epc,
            (unsigned long long)tval, prv[from_priv & 3], prv[to_priv & 3]);
}

/* PLIC context ctx = 2*hart + (S ? 1 : 0) drives that hart's MEIP or SEIP. */
static void virt_plic_irq(void *opaque, unsigned ctx, bool level)
{
    struct virt *vm = opaque;
    unsigned hart = ctx / 2;

    if (hart < vm->nharts)
        rv_hart_set_irq(vm->harts[hart], (ctx & 1) ? RV_IRQ_SEI : RV_IRQ_MEI, level);
}

static void virt_uart_irq(void *opaque, bool level)
{
    struct virt *vm = opaque;
    plic_set_irq(vm->plic, VIRT_UART0_IRQ, level);
}

static void virt_rtc_irq(void *opaque, bool level)
{
    struct virt *vm = opaque;
    plic_set_irq(vm->plic, VIRT_RTC_IRQ, level);
}

static void virt_uart_output(void *opaque, const uint8_t *buf, size_t len)
{
    struct virt *vm = opaque;
    (void)chardev_write(vm->serial, buf, len);
}

static void virt_test_request(void *opaque, enum sifive_test_request req, unsigned code)
{
    struct virt *vm = opaque;

    if (req == SIFIVE_TEST_REQ_POWEROFF) {
        vm->poweroff_code = code;
        atomic_fetch_or(&vm->requests, VIRT_REQ_POWEROFF);
    } else {
        atomic_fetch_or(&vm->requests, VIRT_REQ_RESET);
    }
    /* Stop after the current instruction; the loop acts on the request. */
    for (unsigned i = 0; i < vm->nharts; i++)
        rv_hart_request_exit(vm->harts[i]);
}

void virt_kick(struct virt *vm)
{
    uint64_t one = 1;
    ssize_t n;

    do {
        n = write(vm->wake_fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}

void virt_post_request(struct virt *vm, int bits)
{
    atomic_fetch_or(&vm->requests, bits);
    for (unsigned i = 0; i < vm->nharts; i++)
        rv_hart_request_exit(vm->harts[i]);
    virt_kick(vm);
}

void virt_request_stop(struct virt *vm, int signo)
{
    atomic_store(&vm->stop_signal, signo);
    atomic_fetch_or(&vm->requests, VIRT_REQ_STOP);
    for (unsigned i = 0; i < vm->nharts; i++)
        rv_hart_request_exit(vm->harts[i]);
    virt_kick(vm);
}

/* ---- construction ---------------------------------------------------------- */

static int virt_map(struct virt *vm, const char *name, uint64_t base, uint64_t size, unsigned vmin,
                    unsigned vmax, unsigned impl, const struct bus_ops *ops, void *opaque,
                    char *err, size_t errlen)
{
    struct bus_region r = {name, base, size, vmin, vmax, impl, ops, opaque};
    int ret = bus_add(&vm->bus, &r);

    if (ret < 0)
        snprintf(err, errlen, "cannot map %s at 0x%llx: %s", name, (unsigned long long)base,
                 strerror(-ret));
    return ret;
}

/* QEMU virt's devices and their access-size rules (checked against 7.2). */
static int virt_map_devices(struct virt *vm, char *err, size_t errlen)
{
    int ret;

    ret = virt_map(vm, "mrom", VIRT_MROM_BASE, VIRT_MROM_SIZE, 1, 8, 8, &virt_mrom_ops, vm->mrom,
                   err, errlen);
    if (!ret)
        ret = virt_map(vm, "sifive_test", VIRT_TEST_BASE, SIFIVE_TEST_SIZE, 2, 4, 4,
                       &sifive_test_ops, vm->test, err, errlen);
    if (!ret)
        ret = virt_map(vm, "clint.msip", VIRT_CLINT_BASE + CLINT_MSIP_OFF, CLINT_MSIP_SIZE, 4, 4, 4,
                       &clint_msip_ops, vm->clint, err, errlen);
    if (!ret)
        ret = virt_map(vm, "clint.mtimer", VIRT_CLINT_BASE + CLINT_MTIMER_OFF, CLINT_MTIMER_SIZE, 4,
                       8, 8, &clint_mtimer_ops, vm->clint, err, errlen);
    if (!ret)
        ret = virt_map(vm, "plic", VIRT_PLIC_BASE, PLIC_SIZE, 4, 4, 4, &plic_ops, vm->plic, err,
                       errlen);
    if (!ret)
        ret = virt_map(vm, "uart0", VIRT_UART0_BASE, UART_REG_SIZE, 1, 8, 8, &uart_bus_ops,
                       vm->uart, err, errlen);
    if (!ret)
        ret = virt_map(vm, "rtc", VIRT_RTC_BASE, GOLDFISH_RTC_SIZE, 4, 8, 4, &goldfish_rtc_ops,
                       vm->rtc, err, errlen);
    for (unsigned i = 0; !ret && i < VIRT_VIRTIO_COUNT; i++)
        ret = virt_map(vm, "virtio-mmio", VIRT_VIRTIO_BASE + i * VIRT_VIRTIO_STRIDE,
                       VIRT_VIRTIO_SIZE, 1, 8, 4, &virtio_mmio_ops, &vm->virtio[i], err, errlen);
    if (!ret)
        ret = virt_map(vm, "flash", VIRT_FLASH_BASE, VIRT_FLASH_SIZE, 1, 8, 8, &virt_stub_flash_ops,
                       NULL, err, errlen);
    if (!ret)
        ret = virt_map(vm, "pcie.ecam", VIRT_PCIE_ECAM_BASE, PCIE_ECAM_SIZE, 1, 8, 4,
                       &pcie_host_ecam_ops, vm->pcie, err, errlen);
    if (!ret)
        ret = virt_map(vm, "pcie.pio", VIRT_PCIE_PIO_BASE, VIRT_PCIE_PIO_SIZE, 1, 8, 8,
                       &pcie_host_window_ops, NULL, err, errlen);
    if (!ret)
        ret = virt_map(vm, "pcie.mmio", VIRT_PCIE_MMIO_BASE, VIRT_PCIE_MMIO_SIZE, 1, 8, 8,
                       &pcie_host_window_ops, NULL, err, errlen);
    if (!ret) {
        /* QEMU puts the 64-bit window at the first 16 GiB boundary above RAM. */
        uint64_t ram_end = VIRT_DRAM_BASE + vm->cfg.ram_size;
        uint64_t high = (ram_end + VIRT_PCIE_HIGH_SIZE - 1) & ~(VIRT_PCIE_HIGH_SIZE - 1);
        ret = virt_map(vm, "pcie.mmio-high", high, VIRT_PCIE_HIGH_SIZE, 1, 8, 8,
                       &pcie_host_window_ops, NULL, err, errlen);
    }
    return ret;
}

/* Reset harts and devices; RAM is left as it is. */
static void virt_power_on(struct virt *vm)
{
    /* Every hart starts in the reset ROM, which sets a0-a2 and jumps on. */
    for (unsigned i = 0; i < vm->nharts; i++) {
        rv_hart_reset(vm->harts[i], VIRT_MROM_BASE);
        rv_hart_flush_caches(vm->harts[i]); /* RAM was rewritten behind its back */
        vm->hart_wfi[i] = false;
    }
    uart_reset(vm->uart);
    goldfish_rtc_reset(vm->rtc);
    pcie_host_reset(vm->pcie);
    virt_virtio_reset(vm);
    plic_reset(vm->plic);   /* after the devices: their lines are low now */
    clint_reset(vm->clint); /* after the harts: re-sends MTIP/MSIP */
}

int virt_reset(struct virt *vm, char *err, size_t errlen)
{
    /* QEMU re-copies its ROM blobs (firmware, kernel, initrd, DTB) on reset
     * and leaves the rest of RAM alone. */
    int ret = virt_boot_load(vm, err, errlen);

    if (ret < 0)
        return ret;
    virt_power_on(vm);
    return 0;
}

struct virt *virt_new(const struct virt_config *cfg, char *err, size_t errlen)
{
    struct virt *vm;
    struct uart_host uart_host;
    struct clint_host clint_host;
    struct sifive_test_host test_host;
    struct plic_host plic_host;
    struct goldfish_rtc_host rtc_host;
    char why[400];

    if (cfg->smp < 1 || cfg->smp > VIRT_MAX_HARTS || cfg->ram_size < VIRT_MIN_RAM ||
        cfg->ram_size > VIRT_MAX_RAM || (cfg->ram_size & (GMEM_PAGE_SIZE - 1)) ||
        (!cfg->kernel && !cfg->bios)) {
        snprintf(err, errlen, "invalid machine configuration");
        return NULL;
    }
    vm = calloc(1, sizeof(*vm));
    if (!vm) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    vm->cfg = *cfg;
    vm->wake_fd = -1;
    vm->nharts = cfg->smp;
    bus_init(&vm->bus);

    vm->mem = gmem_new(VIRT_DRAM_BASE, cfg->ram_size);
    if (!vm->mem) {
        snprintf(err, errlen, "cannot allocate %llu MiB of guest RAM",
                 (unsigned long long)(cfg->ram_size >> 20));
        goto fail;
    }
    vm->mrom = calloc(1, VIRT_MROM_SIZE);
    if (!vm->mrom) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (virt_boot_prepare(vm, err, errlen) < 0)
        goto fail;
    if (cfg->dumpdtb)
        return vm; /* the caller writes the DTB and exits: no devices needed */

    vm->serial = chardev_open(&cfg->serial, why, sizeof(why));
    if (!vm->serial) {
        snprintf(err, errlen, "-serial: %s", why);
        goto fail;
    }
    vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (vm->wake_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    vm->harts = calloc(vm->nharts, sizeof(*vm->harts));
    vm->hart_wfi = calloc(vm->nharts, sizeof(*vm->hart_wfi));
    if (!vm->harts || !vm->hart_wfi) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }

    vm->env = (struct rv_hart_env){
        .mem = vm->mem,
        .opaque = vm,
        .mmio_read = virt_mmio_read,
        .mmio_write = virt_mmio_write,
        .read_time = virt_read_time,
        .trace_trap = (cfg->trace & VIRT_TRACE_TRAPS) ? virt_trace_trap : NULL,
    };
    for (unsigned i = 0; i < vm->nharts; i++) {
        struct rv_hart_config hc = {.hartid = i, .pmp_entries = 16};
        vm->harts[i] = rv_hart_new(&hc, &vm->env);
        if (!vm->harts[i]) {
            snprintf(err, errlen, "cannot create hart %u", i);
            goto fail;
        }
    }

    uart_host =
        (struct uart_host){.opaque = vm, .output = virt_uart_output, .set_irq = virt_uart_irq};
    clint_host = (struct clint_host){.opaque = vm, .set_irq = virt_clint_irq};
    test_host = (struct sifive_test_host){.opaque = vm, .request = virt_test_request};
    plic_host = (struct plic_host){.opaque = vm, .set_irq = virt_plic_irq};
    rtc_host = (struct goldfish_rtc_host){.opaque = vm, .set_irq = virt_rtc_irq};
    /* The PLIC first: the other devices' constructors may drive their lines. */
    vm->plic = plic_new(&plic_host, vm->nharts);
    if (!vm->plic) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    vm->uart = uart_new(&uart_host);
    vm->clint = clint_new(&clint_host, vm->nharts);
    vm->test = sifive_test_new(&test_host);
    vm->rtc = goldfish_rtc_new(&rtc_host);
    vm->pcie = pcie_host_new();
    if (!vm->uart || !vm->clint || !vm->test || !vm->rtc || !vm->pcie) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (virt_virtio_init(vm, err, errlen) < 0)
        goto fail;
    if (virt_map_devices(vm, err, errlen) < 0)
        goto fail;
    /* an -incoming VM locks its disks once the state is loaded: its source
     * holds them until then (virt_incoming.c) */
    if (!cfg->incoming && virt_disks_lock(vm, err, errlen) < 0)
        goto fail;
    virt_power_on(vm);
    /* An incoming migration listens before QMP answers, so a client that
     * sees "inmigrate" can start the migration at once. */
    virt_migration_init(vm);
    if (cfg->incoming && strncmp(cfg->incoming, "file:", 5) != 0 &&
        virt_incoming_begin(vm, cfg->incoming, err, errlen) < 0)
        goto fail;
    if (cfg->qmp && virt_qmp_init(vm, err, errlen) < 0)
        goto fail;
    return vm;

fail:
    virt_free(vm);
    return NULL;
}

void virt_free(struct virt *vm)
{
    if (!vm)
        return;
    virt_migration_fini(vm);
    virt_qmp_fini(vm);
    virt_virtio_fini(vm);
    pcie_host_free(vm->pcie);
    goldfish_rtc_free(vm->rtc);
    sifive_test_free(vm->test);
    clint_free(vm->clint);
    uart_free(vm->uart);
    plic_free(vm->plic);
    if (vm->harts)
        for (unsigned i = 0; i < vm->nharts; i++)
            if (vm->harts[i])
                rv_hart_free(vm->harts[i]);
    free(vm->harts);
    free(vm->hart_wfi);
    free(vm->mrom);
    if (vm->wake_fd >= 0)
        close(vm->wake_fd);
    chardev_free(vm->serial);
    gmem_free(vm->mem);
    virt_boot_fini(vm);
    free(vm);
}
