/* Placeholder: the peers module is being built (issue 11). */
#include "godwitd/godwitd.h"

int peers_init(struct godwitd *d, char *err, size_t errlen)
{
    (void)d, (void)err, (void)errlen;
    return 0;
}

void peers_fini(struct godwitd *d)
{
    (void)d;
}

const struct api_route peers_routes[1];
const size_t peers_nroutes = 0;
