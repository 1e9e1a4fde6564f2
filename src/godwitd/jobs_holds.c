/*
 * Holds (jobs.h, docs/holds.md): setting and lifting them, approvals,
 * the holds a job keeps itself, dependency holds lifted when a job
 * finishes, and the outgoing migration slots of resources holds.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "godwitd/jobs_int.h"

int job_hold_own(struct job *j, const char *type, const char *reason, int64_t *hold)
{
    struct store_hold h = {0};
    int ret;

    h.job_id = j->id;
    snprintf(h.type, sizeof(h.type), "%s", type);
    snprintf(h.reason, sizeof(h.reason), "%s", reason);
    snprintf(h.set_by, sizeof(h.set_by), "%s", JOBS_OWN_SET_BY);
    godwitd_store_lock(j->d);
    ret = store_hold_add(j->d->store, &h, hold);
    godwitd_store_unlock(j->d);
    if (ret == 0)
        events_notify(j->d);
    return ret;
}

int job_lift_own(struct job *j, const char *type, const char *by)
{
    struct store_hold *hs = NULL;
    size_t n = 0;
    int lifted = 0;

    godwitd_store_lock(j->d);
    if (store_hold_list(j->d->store, j->id, true, &hs, &n) == 0)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(hs[i].type, type) && store_hold_lift(j->d->store, hs[i].id, by) == 0)
                lifted++;
    godwitd_store_unlock(j->d);
    store_hold_list_free(hs, n);
    if (lifted)
        events_notify(j->d);
    return lifted;
}

bool job_has_own(struct job *j, const char *type)
{
    struct store_hold *hs = NULL;
    size_t n = 0;
    bool has = false;

    godwitd_store_lock(j->d);
    if (store_hold_list(j->d->store, j->id, true, &hs, &n) == 0)
        for (size_t i = 0; i < n; i++)
            has |= !strcmp(hs[i].type, type) && !strcmp(hs[i].set_by, JOBS_OWN_SET_BY);
    godwitd_store_unlock(j->d);
    store_hold_list_free(hs, n);
    return has;
}

/* Has the job an active hold that parks it?  Any but technical holds and
 * the holds the job keeps itself (job_hold_own: it waits through them in
 * its thread and lifts them; a parked job would never see them lift).
 * Under the store lock. */
bool jobs_parking_holds(struct godwitd *d, int64_t id)
{
    struct store_hold *hs = NULL;
    size_t n = 0;
    bool park = false;

    if (store_hold_list(d->store, id, true, &hs, &n) < 0)
        return false;
    for (size_t i = 0; i < n; i++)
        park |= strcmp(hs[i].type, "technical") != 0 && strcmp(hs[i].set_by, JOBS_OWN_SET_BY);
    store_hold_list_free(hs, n);
    return park;
}

/* Under js->lock: job `done_id` finished (status): lift the dependency
 * holds that waited for it, and run the jobs that have no hold left. */
void jobs_after_finished(struct jobs *js, struct godwitd *d, int64_t done_id, const char *status)
{
    struct store_job *v = NULL;
    size_t n = 0;
    char by[96];

    snprintf(by, sizeof(by), "job %" PRId64 " finished (%s)", done_id, status);
    godwitd_store_lock(d);
    if (store_job_list(d->store, true, &v, &n) < 0)
        n = 0;
    godwitd_store_unlock(d);
    for (size_t i = 0; i < n; i++) {
        struct store_hold *hs = NULL;
        size_t nh = 0, lifted = 0;
        bool running = false;

        if (strcmp(v[i].status, "held"))
            continue;
        godwitd_store_lock(d);
        if (store_hold_list(d->store, v[i].id, true, &hs, &nh) == 0) {
            for (size_t k = 0; k < nh; k++) {
                json_t *l = hs[k].lift ? json_loads(hs[k].lift, 0, NULL) : NULL;
                if (!strcmp(hs[k].type, "dependency") &&
                    json_integer_value(json_object_get(l, "after_job")) == done_id &&
                    store_hold_lift(d->store, hs[k].id, by) == 0)
                    lifted++;
                json_decref(l);
            }
            store_hold_list_free(hs, nh);
        }
        struct store_job r;
        if (lifted && store_job_get(d->store, v[i].id, &r) == 0) {
            running = !store_job_status_final(r.status) && !jobs_parking_holds(d, v[i].id);
            store_job_clear(&r);
        }
        godwitd_store_unlock(d);
        if (!lifted)
            continue;
        gw_log("job %" PRId64 ": %s: its dependency hold lifted", v[i].id, by);
        struct job *j;
        for (j = js->runners; j; j = j->next)
            if (j->id == v[i].id)
                break;
        if (running && j)
            atomic_store(&j->held, false);
        else if (running) {
            const struct job_kind *k = jobs_kind_find(js, v[i].kind, v[i].direction);
            if (k && k->resume)
                (void)jobs_wake(js, d, k, v[i].id, false);
        }
    }
    store_job_list_free(v, n);
    jobs_recheck_slots(js, d);
}

/* Under the store lock: outgoing jobs that hold a migration slot (running,
 * not yet waiting for a confirm). */
static unsigned jobs_out_slots_used(struct godwitd *d)
{
    struct store_job *v = NULL;
    size_t n = 0;
    unsigned used = 0;

    if (store_job_list(d->store, true, &v, &n) < 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        used += !strcmp(v[i].direction, "out") && !strcmp(v[i].status, "running") &&
                strcmp(v[i].phase, "confirm");
    store_job_list_free(v, n);
    return used;
}

/* Under js->lock: while this host has a free outgoing slot, lift the
 * oldest resources hold waiting for one ({"slot": "out"}) and run its job. */
void jobs_recheck_slots(struct jobs *js, struct godwitd *d)
{
    unsigned max = d->max_out ? d->max_out : 2;

    for (;;) {
        struct store_job *v = NULL;
        size_t n = 0;
        int64_t job = 0, hold = 0;

        godwitd_store_lock(d);
        if (jobs_out_slots_used(d) >= max || store_job_list(d->store, true, &v, &n) < 0) {
            godwitd_store_unlock(d);
            return;
        }
        for (size_t i = 0; i < n && !hold; i++) { /* oldest first */
            struct store_hold *hs = NULL;
            size_t nh = 0;
            if (strcmp(v[i].status, "held") ||
                store_hold_list(d->store, v[i].id, true, &hs, &nh) < 0)
                continue;
            for (size_t k = 0; k < nh && !hold; k++) {
                json_t *l = hs[k].lift ? json_loads(hs[k].lift, 0, NULL) : NULL;
                const char *slot = json_string_value(json_object_get(l, "slot"));
                if (!strcmp(hs[k].type, "resources") && slot && !strcmp(slot, "out")) {
                    hold = hs[k].id;
                    job = v[i].id;
                }
                json_decref(l);
            }
            store_hold_list_free(hs, nh);
        }
        bool running = false;
        char kind[STORE_WORD_MAX] = "", dir[STORE_WORD_MAX] = "";
        if (hold && store_hold_lift(d->store, hold, "a migration slot is free") == 0) {
            struct store_job r;
            if (store_job_get(d->store, job, &r) == 0) {
                running = !jobs_parking_holds(d, job);
                snprintf(kind, sizeof(kind), "%s", r.kind);
                snprintf(dir, sizeof(dir), "%s", r.direction);
                store_job_clear(&r);
            }
        } else {
            hold = 0;
        }
        godwitd_store_unlock(d);
        store_job_list_free(v, n);
        if (!hold)
            return;
        events_notify(d);
        gw_log("job %" PRId64 ": a migration slot is free: its resources hold lifted", job);
        struct job *j;
        for (j = js->runners; j; j = j->next)
            if (j->id == job)
                break;
        if (running && j)
            atomic_store(&j->held, false);
        else if (running) {
            const struct job_kind *k = jobs_kind_find(js, kind, dir);
            if (k && k->resume)
                (void)jobs_wake(js, d, k, job, false);
        }
        if (!running)
            return; /* still held otherwise: the slot stays free for now */
    }
}

/* Under js->lock and the store lock: is job `after` finished (or gone)? */
bool jobs_is_over(struct godwitd *d, int64_t after)
{
    struct store_job r;
    bool over = true;

    if (store_job_get(d->store, after, &r) == 0) {
        over = store_job_status_final(r.status);
        store_job_clear(&r);
    }
    return over;
}

/* Under js->lock, once at start: dependency holds on jobs that finished
 * while this daemon was down lift now. */
void jobs_recheck_dependencies(struct jobs *js, struct godwitd *d)
{
    struct store_job *v = NULL;
    size_t n = 0;
    int64_t over[64];
    size_t nover = 0;

    godwitd_store_lock(d);
    if (store_job_list(d->store, true, &v, &n) < 0)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        struct store_hold *hs = NULL;
        size_t nh = 0;
        if (strcmp(v[i].status, "held") || store_hold_list(d->store, v[i].id, true, &hs, &nh))
            continue;
        for (size_t k = 0; k < nh && nover < GW_ARRAY_SIZE(over); k++) {
            json_t *l = hs[k].lift ? json_loads(hs[k].lift, 0, NULL) : NULL;
            int64_t after = json_integer_value(json_object_get(l, "after_job"));
            if (!strcmp(hs[k].type, "dependency") && after > 0 && jobs_is_over(d, after))
                over[nover++] = after;
            json_decref(l);
        }
        store_hold_list_free(hs, nh);
    }
    godwitd_store_unlock(d);
    store_job_list_free(v, n);
    for (size_t i = 0; i < nover; i++)
        jobs_after_finished(js, d, over[i], "finished while godwitd was down");
}

int jobs_hold(struct godwitd *d, int64_t id, const char *type, const char *reason,
              const char *set_by, const json_t *lift, int64_t *hold, char *err, size_t errlen)
{
    struct jobs *js = d->jobs;
    struct store_job row;
    struct store_hold h = {0};
    const struct job_kind *k;
    struct job *j;
    int ret;

    if (!js)
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    if (!store_hold_type_valid(type))
        return gw_fail(err, errlen, -EINVAL,
                       "unknown hold type '%s' (technical, resources, compliance, dependency, "
                       "window, budget, manual)",
                       type ? type : "");
    if (!reason || !reason[0] || strlen(reason) >= STORE_TEXT_MAX)
        return gw_fail(err, errlen, -EINVAL, "a hold needs a reason (1 to %d characters)",
                       STORE_TEXT_MAX - 1);
    pthread_mutex_lock(&js->lock);
    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    godwitd_store_unlock(d);
    if (ret < 0) {
        pthread_mutex_unlock(&js->lock);
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    }
    k = jobs_kind_find(js, row.kind, row.direction);
    if (store_job_status_final(row.status))
        ret = gw_fail(err, errlen, -EINVAL, "job %" PRId64 " is %s already: nothing to hold", id,
                      row.status);
    else if (!k || !k->holdable)
        ret = gw_fail(err, errlen, -EOPNOTSUPP, "a %s %s job cannot be held%s", row.kind,
                      !strcmp(row.direction, "in") ? "incoming" : "outgoing",
                      !strcmp(row.direction, "in") ? " (hold it on its source host)" : "");
    for (j = js->runners; ret == 0 && j; j = j->next)
        if (j->id == id && j->k->control)
            ret = j->k->control(j, "hold", NULL, err, errlen);
    if (ret == 0) {
        h.job_id = id;
        snprintf(h.type, sizeof(h.type), "%s", type);
        snprintf(h.reason, sizeof(h.reason), "%s", reason);
        snprintf(h.set_by, sizeof(h.set_by), "%s", set_by ? set_by : "unknown");
        h.lift = lift ? json_dumps(lift, JSON_COMPACT) : NULL;
        godwitd_store_lock(d);
        ret = store_hold_add(d->store, &h, hold);
        free(h.lift);
        h.lift = NULL;
        if (ret < 0)
            gw_fail(err, errlen, ret, "%s", store_errmsg(d->store));
        godwitd_store_unlock(d);
    }
    for (j = js->runners; ret == 0 && j; j = j->next)
        if (j->id == id)
            atomic_store(&j->held, true);
    store_job_clear(&row);
    pthread_mutex_unlock(&js->lock);
    if (ret == 0)
        events_notify(d);
    return ret;
}

int jobs_release(struct godwitd *d, int64_t id, int64_t hold, const char *by, char *err,
                 size_t errlen)
{
    struct jobs *js = d->jobs;
    struct store_hold *hs = NULL;
    struct store_job row;
    size_t n = 0, lifted = 0;
    bool running = false;
    struct job *j;
    int ret;

    if (!js)
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    pthread_mutex_lock(&js->lock);
    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    if (ret == 0) {
        ret = store_hold_list(d->store, id, true, &hs, &n);
        for (size_t i = 0; ret == 0 && i < n; i++) {
            if (hold ? hs[i].id != hold : strcmp(hs[i].type, "manual"))
                continue;
            ret = store_hold_lift(d->store, hs[i].id, by ? by : "unknown");
            lifted += ret == 0;
        }
        if (ret < 0)
            gw_fail(err, errlen, ret, "%s", store_errmsg(d->store));
        store_hold_list_free(hs, n);
        store_job_clear(&row);
        if (ret == 0 && store_job_get(d->store, id, &row) == 0) {
            running = !store_job_status_final(row.status) && !jobs_parking_holds(d, id);
            store_job_clear(&row);
        }
    } else {
        gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    }
    godwitd_store_unlock(d);
    if (ret == 0 && !lifted && hold)
        ret =
            gw_fail(err, errlen, -ENOENT, "job %" PRId64 " has no active hold %" PRId64, id, hold);
    else if (ret == 0 && !lifted)
        ret = gw_fail(err, errlen, -EALREADY, "job %" PRId64 " has no active manual hold", id);
    if (ret == 0 && running) {
        for (j = js->runners; j; j = j->next)
            if (j->id == id)
                break;
        if (j) {
            atomic_store(&j->held, false); /* it has not parked yet: it goes on */
        } else {
            const struct job_kind *k = NULL;
            godwitd_store_lock(d);
            if (store_job_get(d->store, id, &row) == 0) {
                k = jobs_kind_find(js, row.kind, row.direction);
                store_job_clear(&row);
            }
            godwitd_store_unlock(d);
            if (k && k->resume)
                ret = jobs_wake(js, d, k, id, false);
        }
    }
    pthread_mutex_unlock(&js->lock);
    if (ret == 0)
        events_notify(d);
    return ret;
}

bool job_approved(const struct job *j)
{
    struct store_hold *hs = NULL;
    size_t n = 0;
    bool yes = false;

    godwitd_store_lock(j->d);
    if (store_hold_list(j->d->store, j->id, false, &hs, &n) == 0)
        for (size_t i = 0; i < n; i++)
            yes |= !strcmp(hs[i].type, "compliance") && hs[i].lifted_ms &&
                   !strncmp(hs[i].lifted_by, "approved by ", 12);
    godwitd_store_unlock(j->d);
    store_hold_list_free(hs, n);
    return yes;
}

int jobs_approve(struct godwitd *d, int64_t id, const char *who, const char *note, char *err,
                 size_t errlen)
{
    struct jobs *js = d->jobs;
    struct store_hold *hs = NULL;
    struct store_job row;
    size_t n = 0, lifted = 0, waiting = 0;
    bool running = false, refused = false;
    char by[STORE_WHO_MAX + 160];
    int ret;

    if (!js)
        return gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    snprintf(by, sizeof(by), "approved by %s%s%.120s", who, note && note[0] ? ": " : "",
             note ? note : "");
    pthread_mutex_lock(&js->lock);
    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    if (ret == 0 && store_hold_list(d->store, id, true, &hs, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            json_t *l = hs[i].lift ? json_loads(hs[i].lift, 0, NULL) : NULL;
            if (!strcmp(hs[i].type, "compliance") && json_is_true(json_object_get(l, "approval"))) {
                waiting++;
                if (json_is_true(json_object_get(l, "four_eyes")) && !strcmp(row.started_by, who))
                    refused = true;
                else if (store_hold_lift(d->store, hs[i].id, by) == 0)
                    lifted++;
            }
            json_decref(l);
        }
        store_hold_list_free(hs, n);
        struct store_job r2;
        if (lifted && store_job_get(d->store, id, &r2) == 0) {
            running = !store_job_status_final(r2.status) && !jobs_parking_holds(d, id);
            store_job_clear(&r2);
        }
    }
    godwitd_store_unlock(d);
    if (ret < 0)
        ret = gw_fail(err, errlen, -ENOENT, "no job %" PRId64, id);
    else if (refused && !lifted)
        ret = gw_fail(err, errlen, -EPERM,
                      "four-eyes: %s started job %" PRId64 " and cannot approve it; someone "
                      "else must",
                      who, id);
    else if (!waiting)
        ret = gw_fail(err, errlen, -EALREADY, "job %" PRId64 " waits for no approval", id);
    if (ret == 0 && running) {
        struct job *j;
        for (j = js->runners; j; j = j->next)
            if (j->id == id)
                break;
        const struct job_kind *k = jobs_kind_find(js, row.kind, row.direction);
        if (j)
            atomic_store(&j->held, false);
        else if (k && k->resume)
            ret = jobs_wake(js, d, k, id, false);
    }
    if (ret == 0 || ret == -EPERM || ret == -EALREADY)
        store_job_clear(&row);
    pthread_mutex_unlock(&js->lock);
    if (ret == 0)
        events_notify(d);
    return ret;
}
