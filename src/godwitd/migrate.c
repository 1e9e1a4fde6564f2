/* Placeholder: the migrate module is being built (issue 11). */
#include "godwitd/godwitd.h"

int migrate_init(struct godwitd *d, char *err, size_t errlen)
{
    (void)d, (void)err, (void)errlen;
    return 0;
}

void migrate_fini(struct godwitd *d)
{
    (void)d;
}

const struct api_route migrate_routes[1];
const size_t migrate_nroutes = 0;
