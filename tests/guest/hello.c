/* Smoke test: console, printf formats, trap recording, exit status. */
#include "rt.h"

int main(void)
{
    rt_printf("hello from %s\n", "godwit-guest");
    rt_printf("[%d] [%5d] [%-5d] [%05d] [%u] [%x] [%X] [%016lx] [%ld]\n", -42, 42, 42, -42, 7u,
              0xbeefu, 0xbeefu, 0x123456789abcdefUL, -9000000000L);
    rt_printf("[%c] [%s] [%8s] [%-8s] [%p] [%%]\n", 'z', "str", "right", "left",
              (void *)0x80000000UL);
    rt_printf("misa=%lx mhartid=%lx\n", csr_read(misa), csr_read(mhartid));
    rt_trap_reset();
    __asm__ volatile("ebreak");
    rt_print_trap("ebreak");
    RT_CHECK(rt_last_trap.cause == CAUSE_BREAKPOINT);
    return rt_check_failures();
}
