/*
 * The failure path of the sifive test device: the guest prints, then
 * reports failure code 7, which both emulators must turn into exit status 7.
 * expect-exit: 7
 */
#include "rt.h"

int main(void)
{
    rt_printf("reporting failure code 7\n");
    return 7;
}
