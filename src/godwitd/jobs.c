/* Placeholder: the jobs module is being built (issue 11). */
#include "godwitd/godwitd.h"

int jobs_init(struct godwitd *d, char *err, size_t errlen)
{
    (void)d, (void)err, (void)errlen;
    return 0;
}

void jobs_fini(struct godwitd *d)
{
    (void)d;
}

const struct api_route jobs_routes[1];
const size_t jobs_nroutes = 0;
