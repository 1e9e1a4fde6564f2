/*
 * Dependencies on another VM (migrate.h, docs/holds.md "dependency"):
 * `--after-vm NAME@PEER` holds a migration until VM NAME runs on host PEER
 * (this host's own name included), e.g. a database that must arrive before
 * the application that talks to it.  The job keeps a dependency hold while
 * it waits and asks PEER every MIGRATE_AFTER_POLL_MS; a PEER that does not
 * answer is asked again (the hold says so), a VM that is not there yet is
 * waited for.  The wait happens inside the job, before its precheck, so it
 * survives a daemon restart (the job resumes in its precheck and waits
 * again).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "godwitd/api.h"
#include "godwitd/jobs.h"
#include "godwitd/migrate.h"
#include "godwitd/peers.h"
#include "godwitd/store.h"

#define MIGRATE_AFTER_POLL_MS 2000

int migrate_after_vm_parse(struct godwitd *d, const char *spec, char *vm, char *peer, char *err,
                           size_t errlen)
{
    const char *at = spec ? strchr(spec, '@') : NULL;
    size_t n = at ? (size_t)(at - spec) : 0;
    struct store_peer p;
    int ret;

    if (!at || n == 0 || n >= STORE_NAME_MAX || strchr(at + 1, '@'))
        return gw_fail(err, errlen, -EINVAL,
                       "after_vm: NAME@PEER (a VM and the host it must run "
                       "on), not '%s'",
                       spec ? spec : "");
    memcpy(vm, spec, n);
    vm[n] = '\0';
    snprintf(peer, STORE_NAME_MAX, "%s", at + 1);
    if (!api_name_valid(vm) || !api_name_valid(peer))
        return gw_fail(err, errlen, -EINVAL, "after_vm: '%s' is not a VM name at a host name",
                       spec);
    if (!strcmp(peer, d->name))
        return 0;
    godwitd_store_lock(d);
    ret = store_peer_get(d->store, peer, &p);
    godwitd_store_unlock(d);
    if (ret < 0)
        return gw_fail(err, errlen, -ENOENT,
                       "after_vm: no peer named '%s' (and it is not this host, %s)", peer, d->name);
    return 0;
}

/* Does VM vm run on host peer?  1 yes, 0 not (yet), -errno the host did
 * not answer (why says so). */
static int after_vm_runs(struct godwitd *d, const char *vm, const char *peer, char *why,
                         size_t whylen)
{
    char api[STORE_NAME_MAX + 16];
    json_t *r = NULL;
    long status = 0;
    int ret;

    if (!strcmp(peer, d->name)) {
        struct store_vm row;

        godwitd_store_lock(d);
        ret = store_vm_get(d->store, vm, &row);
        godwitd_store_unlock(d);
        if (ret < 0)
            return 0;
        ret = !strcmp(row.state, "running");
        store_vm_clear(&row);
        return ret;
    }
    snprintf(api, sizeof(api), "/1.0/vms/%s", vm);
    ret = peer_call(d, peer, "GET", api, NULL, &r, &status, 5000, why, whylen);
    if (ret < 0)
        return status == 404 ? 0 : ret;
    ret = !strcmp(json_string_value(json_object_get(r, "state")) ?: "", "running");
    json_decref(r);
    return ret;
}

int migrate_after_vm_wait(struct job *j, const char *spec, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    char vm[STORE_NAME_MAX], peer[STORE_NAME_MAX], why[256], reason[STORE_TEXT_MAX];
    bool held = false, unreachable = false;
    int ret;

    if (!spec || !spec[0])
        return 0;
    ret = migrate_after_vm_parse(d, spec, vm, peer, err, errlen);
    if (ret < 0)
        return ret;
    for (;;) {
        ret = after_vm_runs(d, vm, peer, why, sizeof(why));
        if (ret > 0) {
            if (held) {
                snprintf(reason, sizeof(reason), "VM %s runs on host %s", vm, peer);
                job_lift_own(j, "dependency", reason);
            }
            return 0;
        }
        if (!held || unreachable != (ret < 0)) {
            /* the reason says what it waits for, and whether it can ask */
            if (held)
                job_lift_own(j, "dependency", "the host answered again");
            if (ret < 0)
                snprintf(reason, sizeof(reason),
                         "waits for VM %s to run on host %s, which does not answer (%.150s)", vm,
                         peer, why);
            else
                snprintf(reason, sizeof(reason), "waits for VM %s to run on host %s", vm, peer);
            (void)job_hold_own(j, "dependency", reason, NULL);
            held = true;
            unreachable = ret < 0;
        }
        for (int waited = 0; waited < MIGRATE_AFTER_POLL_MS; waited += 200) {
            if (job_cancelled(j))
                return gw_fail(err, errlen, -ECANCELED, "cancelled while waiting for VM %s on %s",
                               vm, peer);
            if (job_stopping(j))
                return gw_fail(err, errlen, -ESHUTDOWN, "godwitd stopped");
            usleep(200 * 1000);
        }
    }
}
