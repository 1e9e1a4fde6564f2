/* Placeholder: the vms module is being built (issue 11). */
#include "godwitd/godwitd.h"

int vms_init(struct godwitd *d, char *err, size_t errlen)
{
    (void)d, (void)err, (void)errlen;
    return 0;
}

void vms_fini(struct godwitd *d)
{
    (void)d;
}

const struct api_route vms_routes[1];
const size_t vms_nroutes = 0;
