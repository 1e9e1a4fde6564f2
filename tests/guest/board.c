/*
 * The virt board as a guest sees it: boot registers (a0 = hartid, a1 = a
 * device tree in RAM), the reset ROM's trampoline, the UART's reset register
 * values and scratch/divisor registers, CLINT and PLIC registers (3-bit
 * priorities and thresholds, enables, claim; interrupt flow is in plic.c),
 * the goldfish RTC ticking, the
 * test device, the eight empty virtio-mmio slots, the flash and PCIe windows,
 * and holes that must fault.  fw_cfg (0x10100000) is left out: godwit-vm
 * does not model it (docs/virt.md).
 */
#include "rt.h"

static uint32_t rd32(uint64_t a)
{
    return *(volatile uint32_t *)(uintptr_t)a;
}
static uint8_t rd8(uint64_t a)
{
    return *(volatile uint8_t *)(uintptr_t)a;
}
static void wr32(uint64_t a, uint32_t v)
{
    *(volatile uint32_t *)(uintptr_t)a = v;
}
static void wr8(uint64_t a, uint8_t v)
{
    *(volatile uint8_t *)(uintptr_t)a = v;
}

static uint32_t be32(const volatile uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A 4-byte read that may fault: prints the value or the cause. */
static void probe32(const char *what, uint64_t a)
{
    uint32_t v = 0xdeadbeef;
    rt_trap_reset();
    __asm__ volatile("lw %0, 0(%1)" : "+r"(v) : "r"(a) : "memory");
    if (rt_trap_count)
        rt_printf("%-28s %08lx: fault cause %lx\n", what, (unsigned long)a,
                  (unsigned long)rt_last_trap.cause);
    else
        rt_printf("%-28s %08lx: %08x\n", what, (unsigned long)a, v);
}

static void test_boot(void)
{
    rt_printf("boot a0 (hartid) = %lx\n", (unsigned long)rt_boot_a0);
    int in_ram = rt_boot_a1 >= 0x80000000UL && rt_boot_a1 < 0x88000000UL;
    rt_printf("boot a1 (fdt) in RAM: %s, 8-aligned: %s\n", in_ram ? "yes" : "no",
              rt_boot_a1 % 8 ? "no" : "yes");
    if (in_ram) {
        const volatile uint8_t *fdt = (const volatile uint8_t *)(uintptr_t)rt_boot_a1;
        rt_printf("fdt magic %08x version %u last_comp %u\n", be32(fdt), be32(fdt + 20),
                  be32(fdt + 24));
    }
    rt_printf("reset ROM:");
    for (int i = 0; i < 6; i++)
        rt_printf(" %08x", rd32(0x1000 + 4 * i));
    uint64_t start = *(volatile uint64_t *)0x1018, fdt = *(volatile uint64_t *)0x1020;
    rt_printf("\nROM start %lx, ROM fdt == a1: %s\n", (unsigned long)start,
              fdt == rt_boot_a1 ? "yes" : "no");
    /* fw_dynamic_info after the addresses: magic "OSBI", version, next_addr, next_mode */
    rt_printf("fw_dynamic_info: %lx %lx %lx %lx\n", *(volatile uint64_t *)0x1028,
              *(volatile uint64_t *)0x1030, *(volatile uint64_t *)0x1038,
              *(volatile uint64_t *)0x1040);
}

static void test_uart(void)
{
    const uint64_t u = RT_UART_BASE;
    rt_printf("uart IER %02x IIR %02x LCR %02x MCR %02x LSR %02x MSR %02x SCR %02x\n", rd8(u + 1),
              rd8(u + 2), rd8(u + 3), rd8(u + 4), rd8(u + 5), rd8(u + 6), rd8(u + 7));
    wr8(u + 7, 0xa5);
    rt_printf("uart SCR <- a5: %02x\n", rd8(u + 7));
    uint8_t lcr = rd8(u + 3);
    wr8(u + 3, lcr | 0x80);
    uint8_t dll = rd8(u + 0), dlm = rd8(u + 1);
    wr8(u + 0, 0x34);
    wr8(u + 1, 0x12);
    uint8_t dll2 = rd8(u + 0), dlm2 = rd8(u + 1);
    wr8(u + 0, dll);
    wr8(u + 1, dlm);
    wr8(u + 3, lcr);
    rt_printf("uart divisor %02x%02x, <- 1234: %02x%02x\n", dlm, dll, dlm2, dll2);
    wr8(u + 1, 0x0f);
    rt_printf("uart IER <- 0f: %02x IIR %02x\n", rd8(u + 1), rd8(u + 2));
    wr8(u + 1, 0);
    probe32("uart beyond 8 bytes", u + 0x10);
}

static void test_clint_plic(void)
{
    rt_printf("msip %x mtimecmp %lx\n", rd32(RT_CLINT_MSIP),
              (unsigned long)*(volatile uint64_t *)RT_CLINT_MTIMECMP);
    probe32("clint hole", RT_CLINT_BASE + 0xc000);

    const uint64_t p = 0x0c000000UL;
    wr32(p + 4 * 10, 0xffffffff);
    wr32(p + 4 * 1, 5);
    rt_printf("plic priority[10] <- ~0: %x, [1] <- 5: %x, [0]: %x\n", rd32(p + 40), rd32(p + 4),
              rd32(p));
    wr32(p + 0x2000, 0xffffffff);
    wr32(p + 0x2004, 0xffffffff);
    wr32(p + 0x2008, 0xffffffff);
    /* Bit 0 (source 0, which does not exist) is masked: QEMU 7.2 keeps it
     * writable, godwit-vm hardwires it to 0. */
    rt_printf("plic enable ctx0 <- ~0: %08x %08x %08x\n", rd32(p + 0x2000) & ~1u, rd32(p + 0x2004),
              rd32(p + 0x2008));
    wr32(p + 0x200000, 0xffffffff);
    rt_printf("plic threshold ctx0 <- ~0: %x, claim: %x\n", rd32(p + 0x200000), rd32(p + 0x200004));
    wr32(p + 0x201000, 3);
    rt_printf("plic threshold ctx1 (S) <- 3: %x\n", rd32(p + 0x201000));
    for (int i = 0; i < 3; i++)
        wr32(p + 0x2000 + 4 * i, 0);
    wr32(p + 0x200000, 0);
    wr32(p + 0x201000, 0);
    wr32(p + 40, 0);
    wr32(p + 4, 0);
    probe32("plic context 2 (no hart 1)", p + 0x202000);
}

static void test_misc_devices(void)
{
    uint64_t t1 = rd32(0x101000) | (uint64_t)rd32(0x101004) << 32;
    for (volatile int i = 0; i < 100000; i++)
        ;
    uint64_t t2 = rd32(0x101000) | (uint64_t)rd32(0x101004) << 32;
    rt_printf("goldfish rtc: nonzero %s, not going back %s\n", t1 ? "yes" : "no",
              t2 >= t1 ? "yes" : "no");
    probe32("test device read", RT_TEST_BASE);
    for (int i = 0; i < 8; i++) {
        uint64_t v = 0x10001000UL + 0x1000UL * (uint64_t)i;
        rt_printf("virtio-mmio %d: magic %08x version %x device %x vendor %08x\n", i, rd32(v),
                  rd32(v + 4), rd32(v + 8), rd32(v + 12));
    }
    probe32("flash 0", 0x20000000);
    probe32("flash 1", 0x22000000);
    probe32("pcie ecam 00:00.0 id", 0x30000000);
    probe32("pcie ecam 00:01.0 id", 0x30008000);
    probe32("pcie mmio window", 0x40000000);
    probe32("pcie pio window", 0x03000000);
    probe32("hole 0x0", 0x0);
    probe32("hole 0x10000", 0x10000);
    probe32("hole 0x04000000", 0x04000000);
    probe32("hole after RAM", 0x88000000);
}

int main(void)
{
    test_boot();
    test_uart();
    test_clint_plic();
    test_misc_devices();
    return rt_check_failures();
}
