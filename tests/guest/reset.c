/*
 * System reset through the test device (0x7777): the machine restarts at
 * the reset vector with the program reloaded, while RAM outside the loaded
 * image keeps its contents (as on QEMU), so a marker there tells the second
 * boot from the first.  The second boot checks the hart came back in its
 * reset state and exits.
 */
#include "rt.h"

#define MARK  ((volatile uint64_t *)0x87000000UL)
#define MAGIC 0x5245534554544553UL /* "SETTESER" */

static uint64_t initialised_data = 0x1234;

int main(void)
{
    if (MARK[0] != MAGIC) {
        MARK[0] = MAGIC;
        MARK[1] = 1;
        initialised_data = 0x5678; /* must be reloaded by the reset */
        csr_write(mscratch, 0x99);
        rt_printf("first boot: resetting\n");
        *(volatile uint32_t *)RT_TEST_BASE = 0x7777;
        for (volatile int i = 0; i < 10000000; i++)
            ;
        rt_printf("reset did not happen\n");
        return 1;
    }
    MARK[0] = 0;
    rt_printf("second boot after reset: boots=%lu data=%lx hartid=%lx mstatus.MIE=%lu "
              "satp=%lx medeleg=%lx mie=%lx\n",
              (unsigned long)MARK[1] + 1, (unsigned long)initialised_data,
              (unsigned long)rt_boot_a0, (csr_read(mstatus) >> 3) & 1, csr_read(satp),
              csr_read(medeleg), csr_read(mie));
    return 0;
}
