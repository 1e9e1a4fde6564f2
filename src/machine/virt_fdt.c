/*
 * Device tree of the virt board; see virt_fdt.h.  Written with libfdt's
 * sequential-write API into a growing buffer; a writer struct carries a
 * sticky error so the node builders need no check after every property.
 * Node and property order follow QEMU 7.2 (which prepends, so its siblings
 * come out in reverse creation order), phandles too: per hart the cpu then
 * its interrupt controller, then the PLIC, then the test device.
 */
#include "machine/virt_fdt.h"

#include <errno.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/clint.h"
#include "devices/goldfish_rtc.h"
#include "devices/pcie_host.h"
#include "devices/plic.h"
#include "devices/sifive_test.h"
#include "machine/virt.h"

struct fdt_writer {
    void *buf;
    int err; /* first libfdt error, sticky */
};

static void fw_check(struct fdt_writer *w, int ret)
{
    if (ret < 0 && !w->err)
        w->err = ret;
}

static void fw_begin(struct fdt_writer *w, const char *fmt, ...) gw_printf(2, 3);

static void fw_begin(struct fdt_writer *w, const char *fmt, ...)
{
    char name[64];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    if (!w->err)
        fw_check(w, fdt_begin_node(w->buf, name));
}

static void fw_end(struct fdt_writer *w)
{
    if (!w->err)
        fw_check(w, fdt_end_node(w->buf));
}

static void fw_prop(struct fdt_writer *w, const char *name, const void *val, int len)
{
    if (!w->err)
        fw_check(w, fdt_property(w->buf, name, val, len));
}

static void fw_str(struct fdt_writer *w, const char *name, const char *s)
{
    fw_prop(w, name, s, (int)strlen(s) + 1);
}

/* A string list: the strings given with their NULs, e.g. "a\0b" (len incl. final NUL). */
static void fw_strs(struct fdt_writer *w, const char *name, const char *s, size_t len)
{
    fw_prop(w, name, s, (int)len);
}

static void fw_u32(struct fdt_writer *w, const char *name, uint32_t v)
{
    fdt32_t be = cpu_to_fdt32(v);
    fw_prop(w, name, &be, sizeof(be));
}

static void fw_cells(struct fdt_writer *w, const char *name, const uint32_t *cells, unsigned n)
{
    fdt32_t be[128];

    if (n > GW_ARRAY_SIZE(be)) {
        fw_check(w, -FDT_ERR_BADVALUE);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        be[i] = cpu_to_fdt32(cells[i]);
    fw_prop(w, name, be, (int)(n * sizeof(be[0])));
}

/* reg = <base size> with #address-cells = #size-cells = 2. */
static void fw_reg(struct fdt_writer *w, uint64_t base, uint64_t size)
{
    uint32_t c[4] = {(uint32_t)(base >> 32), (uint32_t)base, (uint32_t)(size >> 32),
                     (uint32_t)size};
    fw_cells(w, "reg", c, 4);
}

static void fw_empty(struct fdt_writer *w, const char *name)
{
    fw_prop(w, name, NULL, 0);
}

#define FW_STRS(w, name, lit) fw_strs(w, name, lit, sizeof(lit))

/* Phandles, numbered as QEMU numbers them: it creates the cpu nodes from
 * the last hart down, each cpu before its interrupt controller. */
static uint32_t ph_cpu(const struct virt_fdt_params *p, unsigned hart)
{
    return 1 + 2 * (p->nharts - 1 - hart);
}

static uint32_t ph_intc(const struct virt_fdt_params *p, unsigned hart)
{
    return 2 + 2 * (p->nharts - 1 - hart);
}

static uint32_t ph_plic(const struct virt_fdt_params *p)
{
    return 1 + 2 * p->nharts;
}

static uint32_t ph_test(const struct virt_fdt_params *p)
{
    return 2 + 2 * p->nharts;
}

static void fdt_chosen(struct fdt_writer *w, const struct virt_fdt_params *p)
{
    fw_begin(w, "chosen");
    if (p->initrd_end > p->initrd_start) {
        /* One cell as QEMU writes them when they fit; Linux reads either. */
        if (p->initrd_end <= UINT32_MAX) {
            fw_u32(w, "linux,initrd-end", (uint32_t)p->initrd_end);
            fw_u32(w, "linux,initrd-start", (uint32_t)p->initrd_start);
        } else {
            fw_prop(w, "linux,initrd-end", &(fdt64_t){cpu_to_fdt64(p->initrd_end)}, 8);
            fw_prop(w, "linux,initrd-start", &(fdt64_t){cpu_to_fdt64(p->initrd_start)}, 8);
        }
    }
    if (p->rng_seed)
        fw_prop(w, "rng-seed", p->rng_seed, VIRT_FDT_RNG_SEED);
    if (p->bootargs)
        fw_str(w, "bootargs", p->bootargs);
    fw_str(w, "stdout-path", "/soc/serial@10000000");
    fw_end(w);
}

static void fdt_syscon_node(struct fdt_writer *w, const struct virt_fdt_params *p, const char *name,
                            uint32_t value)
{
    char compat[32];

    fw_begin(w, "%s", name);
    fw_u32(w, "value", value);
    fw_u32(w, "offset", 0);
    fw_u32(w, "regmap", ph_test(p));
    snprintf(compat, sizeof(compat), "syscon-%s", name);
    fw_str(w, "compatible", compat);
    fw_end(w);
}

static void fdt_cpus(struct fdt_writer *w, const struct virt_fdt_params *p)
{
    fw_begin(w, "cpus");
    fw_u32(w, "#address-cells", 1);
    fw_u32(w, "#size-cells", 0);
    fw_u32(w, "timebase-frequency", (uint32_t)CLINT_TIMEBASE_HZ);
    for (unsigned i = 0; i < p->nharts; i++) {
        fw_begin(w, "cpu@%u", i);
        fw_u32(w, "phandle", ph_cpu(p, i));
        fw_str(w, "device_type", "cpu");
        fw_u32(w, "reg", i);
        fw_str(w, "status", "okay");
        fw_str(w, "compatible", "riscv");
        fw_str(w, "riscv,isa", VIRT_FDT_ISA);
        fw_str(w, "mmu-type", VIRT_FDT_MMU_TYPE);
        fw_begin(w, "interrupt-controller");
        fw_u32(w, "#interrupt-cells", 1);
        fw_empty(w, "interrupt-controller");
        fw_str(w, "compatible", "riscv,cpu-intc");
        fw_u32(w, "phandle", ph_intc(p, i));
        fw_end(w);
        fw_end(w);
    }
    fw_begin(w, "cpu-map");
    fw_begin(w, "cluster0");
    for (unsigned i = 0; i < p->nharts; i++) {
        fw_begin(w, "core%u", i);
        fw_u32(w, "cpu", ph_cpu(p, i));
        fw_end(w);
    }
    fw_end(w);
    fw_end(w);
    fw_end(w);
}

/* A device on the PLIC: reg, interrupts, interrupt-parent. */
static void fdt_plic_dev(struct fdt_writer *w, const struct virt_fdt_params *p, uint32_t irq)
{
    fw_u32(w, "interrupts", irq);
    fw_u32(w, "interrupt-parent", ph_plic(p));
}

static void fdt_pci(struct fdt_writer *w, const struct virt_fdt_params *p)
{
    uint64_t ram_end = VIRT_DRAM_BASE + p->ram_size;
    uint64_t high = (ram_end + VIRT_PCIE_HIGH_SIZE - 1) & ~(VIRT_PCIE_HIGH_SIZE - 1);
    uint32_t ranges[] = {0x1000000,
                         0,
                         0,
                         0,
                         (uint32_t)VIRT_PCIE_PIO_BASE,
                         0,
                         (uint32_t)VIRT_PCIE_PIO_SIZE,
                         0x2000000,
                         0,
                         (uint32_t)VIRT_PCIE_MMIO_BASE,
                         0,
                         (uint32_t)VIRT_PCIE_MMIO_BASE,
                         0,
                         (uint32_t)VIRT_PCIE_MMIO_SIZE,
                         0x3000000,
                         (uint32_t)(high >> 32),
                         (uint32_t)high,
                         (uint32_t)(high >> 32),
                         (uint32_t)high,
                         (uint32_t)(VIRT_PCIE_HIGH_SIZE >> 32),
                         (uint32_t)VIRT_PCIE_HIGH_SIZE};
    uint32_t map[4 * 4 * 6], mask[4] = {0x1800, 0, 0, 7}, range[2] = {0, 0xff};
    unsigned n = 0;

    fw_begin(w, "pci@%llx", (unsigned long long)VIRT_PCIE_ECAM_BASE);
    fw_cells(w, "interrupt-map-mask", mask, 4);
    /* Legacy INTx swizzle: slot s, pin 1..4 -> PLIC 0x20 + (pin - 1 + s) % 4. */
    for (uint32_t slot = 0; slot < 4; slot++) {
        for (uint32_t pin = 1; pin <= 4; pin++) {
            uint32_t e[6] = {slot << 11, 0,          0,
                             pin,        ph_plic(p), VIRT_PCIE_IRQ + (pin - 1 + slot) % 4};
            memcpy(&map[n], e, sizeof(e));
            n += 6;
        }
    }
    fw_cells(w, "interrupt-map", map, n);
    fw_cells(w, "ranges", ranges, GW_ARRAY_SIZE(ranges));
    fw_reg(w, VIRT_PCIE_ECAM_BASE, PCIE_ECAM_SIZE);
    fw_empty(w, "dma-coherent");
    fw_cells(w, "bus-range", range, 2);
    fw_u32(w, "linux,pci-domain", 0);
    fw_str(w, "device_type", "pci");
    fw_str(w, "compatible", "pci-host-ecam-generic");
    fw_u32(w, "#size-cells", 2);
    fw_u32(w, "#interrupt-cells", 1);
    fw_u32(w, "#address-cells", 3);
    fw_end(w);
}

static void fdt_soc(struct fdt_writer *w, const struct virt_fdt_params *p)
{
    fw_begin(w, "soc");
    fw_u32(w, "#address-cells", 2);
    fw_u32(w, "#size-cells", 2);
    fw_str(w, "compatible", "simple-bus");
    fw_empty(w, "ranges");

    fw_begin(w, "rtc@%llx", (unsigned long long)VIRT_RTC_BASE);
    fdt_plic_dev(w, p, VIRT_RTC_IRQ);
    fw_reg(w, VIRT_RTC_BASE, 0x1000);
    fw_str(w, "compatible", "google,goldfish-rtc");
    fw_end(w);

    fw_begin(w, "serial@%llx", (unsigned long long)VIRT_UART0_BASE);
    fdt_plic_dev(w, p, VIRT_UART0_IRQ);
    fw_u32(w, "clock-frequency", VIRT_UART_CLOCK);
    fw_reg(w, VIRT_UART0_BASE, 0x100);
    fw_str(w, "compatible", "ns16550a");
    fw_end(w);

    fw_begin(w, "test@%llx", (unsigned long long)VIRT_TEST_BASE);
    fw_u32(w, "phandle", ph_test(p));
    fw_reg(w, VIRT_TEST_BASE, SIFIVE_TEST_SIZE);
    FW_STRS(w, "compatible", "sifive,test1\0sifive,test0\0syscon");
    fw_end(w);

    fdt_pci(w, p);

    for (int i = VIRT_VIRTIO_COUNT - 1; i >= 0; i--) {
        uint64_t base = VIRT_VIRTIO_BASE + (uint64_t)i * VIRT_VIRTIO_STRIDE;
        fw_begin(w, "virtio_mmio@%llx", (unsigned long long)base);
        fdt_plic_dev(w, p, VIRT_VIRTIO_IRQ + (uint32_t)i);
        fw_reg(w, base, VIRT_VIRTIO_STRIDE);
        fw_str(w, "compatible", "virtio,mmio");
        fw_end(w);
    }

    fw_begin(w, "plic@%llx", (unsigned long long)VIRT_PLIC_BASE);
    fw_u32(w, "phandle", ph_plic(p));
    fw_u32(w, "riscv,ndev", PLIC_NUM_SOURCES);
    fw_reg(w, VIRT_PLIC_BASE, PLIC_SIZE);
    fw_prop(w, "interrupts-extended", NULL, 0); /* placeholder, filled below */
    fw_empty(w, "interrupt-controller");
    FW_STRS(w, "compatible", "sifive,plic-1.0.0\0riscv,plic0");
    fw_u32(w, "#address-cells", 0);
    fw_u32(w, "#interrupt-cells", 1);
    fw_end(w);

    fw_begin(w, "clint@%llx", (unsigned long long)VIRT_CLINT_BASE);
    fw_prop(w, "interrupts-extended", NULL, 0);
    fw_reg(w, VIRT_CLINT_BASE, 0x10000);
    FW_STRS(w, "compatible", "sifive,clint0\0riscv,clint0");
    fw_end(w);
    fw_end(w); /* soc */
}

/* interrupts-extended lists grow with the hart count, past what the
 * sequential writer handles comfortably in one call: fill them in with the
 * read-write API once the tree is finished. */
static int fdt_fill_ext(void *fdt, const struct virt_fdt_params *p, const char *path,
                        unsigned line_a, unsigned line_b)
{
    size_t n = 4 * (size_t)p->nharts;
    fdt32_t *be = calloc(n, sizeof(*be));
    int off, ret;

    if (!be)
        return -FDT_ERR_NOSPACE;
    for (unsigned i = 0; i < p->nharts; i++) {
        be[4 * i + 0] = cpu_to_fdt32(ph_intc(p, i));
        be[4 * i + 1] = cpu_to_fdt32(line_a);
        be[4 * i + 2] = cpu_to_fdt32(ph_intc(p, i));
        be[4 * i + 3] = cpu_to_fdt32(line_b);
    }
    off = fdt_path_offset(fdt, path);
    ret = off < 0 ? off : fdt_setprop(fdt, off, "interrupts-extended", be, (int)(n * 4));
    free(be);
    return ret;
}

static int fdt_write_tree(void *buf, int size, const struct virt_fdt_params *p)
{
    struct fdt_writer w = {.buf = buf};

    fw_check(&w, fdt_create(buf, size));
    fw_check(&w, w.err ? 0 : fdt_finish_reservemap(buf));
    fw_begin(&w, "%s", "");
    fw_u32(&w, "#address-cells", 2);
    fw_u32(&w, "#size-cells", 2);
    fw_str(&w, "compatible", "riscv-virtio");
    fw_str(&w, "model", "riscv-virtio,qemu");
    fdt_chosen(&w, p);
    fdt_syscon_node(&w, p, "poweroff", SIFIVE_TEST_PASS);
    fdt_syscon_node(&w, p, "reboot", SIFIVE_TEST_RESET);
    fw_begin(&w, "memory@%llx", (unsigned long long)VIRT_DRAM_BASE);
    fw_str(&w, "device_type", "memory");
    fw_reg(&w, VIRT_DRAM_BASE, p->ram_size);
    fw_end(&w);
    fdt_cpus(&w, p);
    fdt_soc(&w, p);
    fw_end(&w); /* root */
    if (!w.err)
        fw_check(&w, fdt_finish(buf));
    if (!w.err)
        fw_check(&w, fdt_open_into(buf, buf, size));
    if (!w.err)
        fw_check(&w, fdt_fill_ext(buf, p, "/soc/plic@c000000", 11, 9)); /* MEI, SEI */
    if (!w.err)
        fw_check(&w, fdt_fill_ext(buf, p, "/soc/clint@2000000", 3, 7)); /* MSI, MTI */
    if (!w.err)
        fw_check(&w, fdt_pack(buf));
    return w.err;
}

int virt_fdt_build(const struct virt_fdt_params *p, void **blob, size_t *len)
{
    int size = 16384 + 512 * (int)p->nharts;

    *blob = NULL;
    *len = 0;
    if (p->nharts == 0 || p->nharts > VIRT_MAX_HARTS)
        return -EINVAL;
    if (p->bootargs)
        size += (int)strnlen(p->bootargs, 1 << 20);
    for (int tries = 0; tries < 8; tries++, size *= 2) {
        void *buf = calloc(1, (size_t)size);
        int ret;

        if (!buf)
            return -ENOMEM;
        ret = fdt_write_tree(buf, size, p);
        if (ret == 0) {
            *blob = buf;
            *len = fdt_totalsize(buf);
            return 0;
        }
        free(buf);
        if (ret != -FDT_ERR_NOSPACE)
            return -EINVAL;
    }
    return -ENOMEM;
}

int virt_fdt_reseed(void *fdt, const uint8_t *seed)
{
    int off = fdt_path_offset(fdt, "/chosen");

    if (off < 0 || fdt_setprop_inplace(fdt, off, "rng-seed", seed, VIRT_FDT_RNG_SEED) < 0)
        return -ENOENT;
    return 0;
}
