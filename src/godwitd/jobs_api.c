/*
 * /1.0/jobs (jobs.h): list, show (with holds and history), cancel,
 * confirm, revert, hold, release, approve.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "godwitd/jobs_int.h"

static json_t *json_text_or(const char *text, json_t *fallback)
{
    json_t *v = text ? json_loads(text, 0, NULL) : NULL;

    if (v) {
        json_decref(fallback);
        return v;
    }
    return fallback;
}

static json_t *json_ms(int64_t ms)
{
    return ms > 0 ? json_integer(ms) : json_null();
}

/* The job object (without history). */
static json_t *job_json(const struct store_job *r)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "id",
                     (json_int_t)r->id, "kind", r->kind, "direction", r->direction, "vm", r->vm,
                     "peer", r->peer, "phase", r->phase, "status", r->status, "started_by",
                     r->started_by, "created", (json_int_t)r->created_ms, "started",
                     json_ms(r->started_ms), "ended", json_ms(r->ended_ms), "options",
                     json_text_or(r->options, json_object()), "figures",
                     json_text_or(r->figures, json_object()), "error",
                     r->error ? json_string(r->error) : json_null());
}

/* The job's holds, oldest first: {id, type, reason, set_by, since, lifted:
 * null or {by, at}}. */
static json_t *job_holds(struct godwitd *d, int64_t id)
{
    struct store_hold *hs = NULL;
    json_t *a = json_array();
    size_t n = 0;

    godwitd_store_lock(d);
    int ret = store_hold_list(d->store, id, false, &hs, &n);
    godwitd_store_unlock(d);
    for (size_t i = 0; ret == 0 && i < n; i++)
        json_array_append_new(
            a, json_pack("{s:I,s:s,s:s,s:s,s:I,s:o}", "id", (json_int_t)hs[i].id, "type",
                         hs[i].type, "reason", hs[i].reason, "set_by", hs[i].set_by, "since",
                         (json_int_t)hs[i].set_ms, "lifted",
                         hs[i].lifted_ms ? json_pack("{s:s,s:I}", "by", hs[i].lifted_by, "at",
                                                     (json_int_t)hs[i].lifted_ms)
                                         : json_null()));
    store_hold_list_free(hs, n);
    return a;
}

/* The job's events, oldest first; migration-progress ones only if asked. */
static json_t *job_history(struct godwitd *d, int64_t id, bool progress)
{
    json_t *h = json_array();
    char subject[32];
    int64_t since = 0;
    size_t total = 0;

    snprintf(subject, sizeof(subject), "job/%" PRId64, id);
    while (h && total < JOBS_HISTORY_MAX) {
        struct store_event *v = NULL;
        size_t n = 0;
        int ret;

        godwitd_store_lock(d);
        ret = store_event_list_subject(d->store, subject, since, JOBS_HISTORY_BATCH, &v, &n);
        godwitd_store_unlock(d);
        if (ret < 0)
            break;
        for (size_t i = 0; i < n; i++) {
            since = v[i].id;
            total++;
            if (!progress && !strcmp(v[i].type, "migration-progress"))
                continue;
            json_array_append_new(h, json_pack("{s:I, s:s, s:o}", "time", (json_int_t)v[i].time_ms,
                                               "type", v[i].type, "data",
                                               json_text_or(v[i].data, json_object())));
        }
        store_event_list_free(v, n);
        if (n < JOBS_HISTORY_BATCH)
            break;
    }
    return h;
}

/* {id}: a positive integer, else a 400 reply. */
static bool job_id_param(struct api_request *req, struct api_reply *rep, int64_t *id)
{
    const char *s = api_param(req, "id");
    char *end;
    long long v;

    if (!s || *s < '1' || *s > '9') {
        api_reply_error(rep, 400, "job id '%s': a positive integer", s ? s : "");
        return false;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0) {
        api_reply_error(rep, 400, "job id '%s': a positive integer", s);
        return false;
    }
    *id = v;
    return true;
}

static json_t *job_holds(struct godwitd *d, int64_t id);

static void jobs_list_get(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *all_q = api_query(req, "all");
    struct store_job *v = NULL;
    size_t n = 0, finished = 0;
    int64_t now = store_now_ms();
    json_t *arr;
    bool all;
    int ret;

    if (all_q && strcmp(all_q, "0") && strcmp(all_q, "1"))
        return api_reply_error(rep, 400, "all: 0 or 1");
    all = all_q && !strcmp(all_q, "1");
    jobs_settle(d);
    godwitd_store_lock(d);
    ret = store_job_list(d->store, false, &v, &n);
    if (ret < 0)
        api_reply_error(rep, 500, "jobs: %s", store_errmsg(d->store));
    godwitd_store_unlock(d);
    if (ret < 0)
        return;
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (!all && store_job_status_final(v[i].status) &&
            (now - v[i].ended_ms > JOBS_RECENT_MS || ++finished > JOBS_RECENT_MAX))
            continue;
        json_t *o = job_json(&v[i]);
        if (o && !strcmp(v[i].status, "held")) /* why it waits, at a glance */
            json_object_set_new(o, "holds", job_holds(d, v[i].id));
        json_array_append_new(arr, o);
    }
    store_job_list_free(v, n);
    if (!arr)
        return api_reply_error(rep, 500, "out of memory");
    api_reply_json(rep, 200, json_pack("{s:o}", "jobs", arr));
}

/* The job with its history: a 200 body, or an error reply and NULL. */
static json_t *job_full(struct api_request *req, struct api_reply *rep, int64_t id)
{
    struct godwitd *d = req->ctx;
    const char *progress = api_query(req, "progress");
    struct store_job row;
    json_t *o;
    int ret;

    godwitd_store_lock(d);
    ret = store_job_get(d->store, id, &row);
    if (ret < 0 && ret != -ENOENT)
        api_reply_error(rep, 500, "job %" PRId64 ": %s", id, store_errmsg(d->store));
    godwitd_store_unlock(d);
    if (ret == -ENOENT)
        api_reply_error(rep, 404, "no job %" PRId64, id);
    if (ret < 0)
        return NULL;
    o = job_json(&row);
    store_job_clear(&row);
    if (o)
        json_object_set_new(o, "holds", job_holds(d, id));
    if (o)
        json_object_set_new(o, "history", job_history(d, id, progress && !strcmp(progress, "1")));
    if (!o)
        api_reply_error(rep, 500, "out of memory");
    return o;
}

static void jobs_show(struct api_request *req, struct api_reply *rep)
{
    const char *progress = api_query(req, "progress");
    int64_t id;
    json_t *o;

    if (!job_id_param(req, rep, &id))
        return;
    if (progress && strcmp(progress, "0") && strcmp(progress, "1"))
        return api_reply_error(rep, 400, "progress: 0 or 1");
    jobs_settle(req->ctx);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 200, o);
}

static void jobs_cancel_post(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    char err[256] = "";
    int64_t id;
    json_t *o;
    int ret;

    if (!job_id_param(req, rep, &id))
        return;
    jobs_settle(d);
    ret = jobs_cancel(d, id, err, sizeof(err));
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "no job %" PRId64, id);
    if (ret == -EINVAL)
        return api_reply_error(rep, 409, "%s", err);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    gw_log("job %" PRId64 ": cancel asked", id);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 202, o);
}

/* POST /1.0/jobs/{id}/confirm and /revert: the operator's answer to a job
 * waiting in its confirm phase. */
static void jobs_verb_post(struct api_request *req, struct api_reply *rep, const char *verb)
{
    struct godwitd *d = req->ctx;
    char err[512] = "";
    int64_t id;
    json_t *o;
    int ret;

    if (!job_id_param(req, rep, &id))
        return;
    jobs_settle(d);
    ret = jobs_control(d, id, verb, req->body, err, sizeof(err));
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "no job %" PRId64, id);
    if (ret == -EINVAL || ret == -EOPNOTSUPP)
        return api_reply_error(rep, 409, "%s", err);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    gw_log("job %" PRId64 ": %s asked", id, verb);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 202, o);
}

/* POST /1.0/jobs/{id}/hold {reason, type?}: 201 {hold, job}. */
static void jobs_hold_post(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *reason = json_string_value(json_object_get(req->body, "reason"));
    const char *type = json_string_value(json_object_get(req->body, "type"));
    char err[512] = "", who[STORE_WHO_MAX];
    int64_t id, hold = 0;
    json_t *o;
    int ret;

    if (!job_id_param(req, rep, &id))
        return;
    jobs_settle(d);
    jobs_who(req, who, sizeof(who));
    ret = jobs_hold(d, id, type ? type : "manual", reason, who, NULL, &hold, err, sizeof(err));
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "no job %" PRId64, id);
    if (ret == -EINVAL && (!reason || !reason[0] || strstr(err, "hold type")))
        return api_reply_error(rep, 400, "%s", err);
    if (ret == -EINVAL || ret == -EOPNOTSUPP)
        return api_reply_error(rep, 409, "%s", err);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    gw_log("job %" PRId64 ": hold %" PRId64 " set by %s: %s", id, hold, who, reason);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 201, json_pack("{s:I,s:o}", "hold", (json_int_t)hold, "job", o));
}

/* POST /1.0/jobs/{id}/release {hold?}: 202 and the job. */
static void jobs_release_post(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    json_int_t hold = json_integer_value(json_object_get(req->body, "hold"));
    char err[512] = "", who[STORE_WHO_MAX];
    int64_t id;
    json_t *o;
    int ret;

    if (!job_id_param(req, rep, &id))
        return;
    if (hold < 0)
        return api_reply_error(rep, 400, "hold: a hold id");
    jobs_settle(d);
    jobs_who(req, who, sizeof(who));
    ret = jobs_release(d, id, hold, who, err, sizeof(err));
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "%s", err);
    if (ret == -EALREADY)
        return api_reply_error(rep, 409, "%s", err);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    gw_log("job %" PRId64 ": released by %s", id, who);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 202, o);
}

/* POST /1.0/jobs/{id}/approve {note?}: 202 and the job. */
static void jobs_approve_post(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *note = json_string_value(json_object_get(req->body, "note"));
    char err[512] = "", who[STORE_WHO_MAX];
    int64_t id;
    json_t *o;
    int ret;

    if (!job_id_param(req, rep, &id))
        return;
    jobs_settle(d);
    jobs_who(req, who, sizeof(who));
    ret = jobs_approve(d, id, who, note, err, sizeof(err));
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "%s", err);
    if (ret == -EPERM)
        return api_reply_error(rep, 403, "%s", err);
    if (ret == -EALREADY)
        return api_reply_error(rep, 409, "%s", err);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    gw_log("job %" PRId64 ": approved by %s", id, who);
    o = job_full(req, rep, id);
    if (o)
        api_reply_json(rep, 202, o);
}

static const struct api_field jobs_approve_body[] = {{"note", API_T_STRING, false},
                                                     {NULL, 0, false}};
static const struct api_field jobs_hold_body[] = {
    {"reason", API_T_STRING, true}, {"type", API_T_STRING, false}, {NULL, 0, false}};
static const struct api_field jobs_release_body[] = {{"hold", API_T_INT, false}, {NULL, 0, false}};

static void jobs_confirm_post(struct api_request *req, struct api_reply *rep)
{
    jobs_verb_post(req, rep, "confirm");
}

static void jobs_revert_post(struct api_request *req, struct api_reply *rep)
{
    jobs_verb_post(req, rep, "revert");
}

const struct api_route jobs_routes[] = {
    {"GET", "/1.0/jobs", jobs_list_get, NULL},
    /* peers read a job too: a destination asks whether its source's job
     * still runs (migrate_in_cold.c) */
    {"GET", "/1.0/jobs/{id}", jobs_show, NULL, API_ROUTE_PEER},
    {"POST", "/1.0/jobs/{id}/cancel", jobs_cancel_post, NULL},
    {"POST", "/1.0/jobs/{id}/confirm", jobs_confirm_post, NULL},
    {"POST", "/1.0/jobs/{id}/revert", jobs_revert_post, NULL},
    {"POST", "/1.0/jobs/{id}/hold", jobs_hold_post, jobs_hold_body},
    {"POST", "/1.0/jobs/{id}/release", jobs_release_post, jobs_release_body},
    {"POST", "/1.0/jobs/{id}/approve", jobs_approve_post, jobs_approve_body},
};
const size_t jobs_nroutes = GW_ARRAY_SIZE(jobs_routes);
