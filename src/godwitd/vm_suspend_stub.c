/* TEMPORARY until the suspend branch lands: removed at merge. */
#include <errno.h>

#include "godwitd/vms.h"

int vm_suspend(struct godwitd *d, const char *name, char *err, size_t errlen)
{
    (void)d;
    (void)name;
    return gw_fail(err, errlen, -ENOSYS, "not yet");
}

int vm_resume(struct godwitd *d, const char *name, char *note, size_t notelen, char *err,
              size_t errlen)
{
    (void)d;
    (void)name;
    (void)note;
    (void)notelen;
    return gw_fail(err, errlen, -ENOSYS, "not yet");
}
