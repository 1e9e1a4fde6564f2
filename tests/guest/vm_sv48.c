/* Sv48 paging from S and U mode, incl. 512G pages: see vm.h. */
#define VM_LEVELS    4
#define VM_SATP_MODE SATP_MODE_SV48
#include "vm.h"

int main(void)
{
    return vm_main();
}
