/* Sv39 paging from S and U mode: see vm.h. */
#define VM_LEVELS    3
#define VM_SATP_MODE SATP_MODE_SV39
#include "vm.h"

int main(void)
{
    return vm_main();
}
