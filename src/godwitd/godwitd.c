/*
 * The small helpers every module of the daemon shares (godwitd.h): in the
 * agent library rather than main.c, so the unit tests link the real ones.
 */
#include <errno.h>
#include <stdio.h>

#include "godwitd/godwitd.h"

void godwitd_store_lock(struct godwitd *d)
{
    pthread_mutex_lock(&d->store_lock);
}

void godwitd_store_unlock(struct godwitd *d)
{
    pthread_mutex_unlock(&d->store_lock);
}

int godwitd_vm_dir(const struct godwitd *d, const char *vm, char *out, size_t len)
{
    return snprintf(out, len, "%s/vms/%s", d->state_dir, vm) >= (int)len ? -ENAMETOOLONG : 0;
}
