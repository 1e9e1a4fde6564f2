/*
 * The store's jobs and their holds (store.h): each change is one
 * transaction that also records its event, so a job's history is
 * store_event_list_subject("job/ID").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "godwitd/store_int.h"

/* ---- events recorded with the change they describe ---- */

/*
 * Inside a transaction: add event type for job id with data (a JSON object,
 * consumed), so that the change and its event commit together.
 */
static int job_event(struct store *s, int64_t id, const char *type, json_t *data)
{
    char subject[32];
    char *text;
    sqlite3_stmt *st;
    int ret;

    if (!data)
        return store_fail(s, -ENOMEM, "out of memory");
    text = json_dumps(data, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(data);
    if (!text)
        return store_fail(s, -ENOMEM, "out of memory");
    snprintf(subject, sizeof(subject), "job/%" PRId64, id);
    st = store_stmt(s, ST_EVENT_ADD);
    if (!st) {
        free(text);
        return -EIO;
    }
    sqlite3_bind_int64(st, 1, store_now_ms());
    store_bind_text(st, 2, type);
    store_bind_text(st, 3, subject);
    store_bind_text(st, 4, text);
    ret = store_run(s, st, "add event");
    free(text);
    return ret;
}

/* ---- jobs ---- */

static int job_row(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_job *j = elem;
    int ret;

    j->id = sqlite3_column_int64(st, 0);
    store_col_str(st, 1, j->kind, sizeof(j->kind));
    store_col_str(st, 2, j->direction, sizeof(j->direction));
    store_col_str(st, 3, j->vm, sizeof(j->vm));
    store_col_str(st, 4, j->peer, sizeof(j->peer));
    store_col_str(st, 5, j->phase, sizeof(j->phase));
    store_col_str(st, 6, j->status, sizeof(j->status));
    store_col_str(st, 7, j->started_by, sizeof(j->started_by));
    j->created_ms = sqlite3_column_int64(st, 8);
    j->started_ms = sqlite3_column_int64(st, 9);
    j->ended_ms = sqlite3_column_int64(st, 10);
    if ((ret = store_col_dup(s, st, 11, &j->options)) < 0 ||
        (ret = store_col_dup(s, st, 12, &j->figures)) < 0)
        return ret;
    return store_col_dup(s, st, 13, &j->error);
}

static void job_clear(void *elem)
{
    store_job_clear(elem);
}

int store_job_create(struct store *s, const struct store_job *j, int64_t *id)
{
    sqlite3_stmt *st;
    int ret;

    if ((ret = store_check_str(s, "job kind", j->kind, STORE_WORD_MAX, false)) < 0 ||
        (ret = store_check_str(s, "job direction", j->direction, STORE_WORD_MAX, false)) < 0 ||
        (ret = store_check_str(s, "VM name", j->vm, STORE_NAME_MAX, false)) < 0 ||
        (ret = store_check_str(s, "peer name", j->peer, STORE_NAME_MAX, false)) < 0 ||
        (ret = store_check_str(s, "job phase", j->phase, STORE_WORD_MAX, false)) < 0 ||
        (ret = store_check_str(s, "started by", j->started_by, STORE_WHO_MAX, true)) < 0)
        return ret;
    if (!store_job_kind_valid(j->kind))
        return store_fail(s, -EINVAL, "unknown job kind '%s'", j->kind);
    if (!store_job_direction_valid(j->direction))
        return store_fail(s, -EINVAL, "unknown job direction '%s'", j->direction);
    if ((ret = store_begin(s)) < 0)
        return ret;
    st = store_stmt(s, ST_JOB_CREATE);
    if (!st)
        return store_end(s, -EIO);
    store_bind_text(st, 1, j->kind);
    store_bind_text(st, 2, j->direction);
    store_bind_text(st, 3, j->vm);
    store_bind_text(st, 4, j->peer);
    store_bind_text(st, 5, j->phase);
    store_bind_text(st, 6, j->started_by);
    sqlite3_bind_int64(st, 7, store_now_ms());
    store_bind_text(st, 8, j->options);
    ret = store_run(s, st, "create job");
    if (ret == -EEXIST)
        store_fail(s, ret, "VM '%s' has an unfinished job already", j->vm);
    if (ret == 0) {
        int64_t jid = sqlite3_last_insert_rowid(s->db);

        if (id)
            *id = jid;
        ret = job_event(s, jid, "job-created",
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", j->kind, "direction",
                                  j->direction, "vm", j->vm, "peer", j->peer, "phase", j->phase));
    }
    return store_end(s, ret);
}

int store_job_get(struct store *s, int64_t id, struct store_job *out)
{
    sqlite3_stmt *st = store_stmt(s, ST_JOB_GET);
    int ret;

    memset(out, 0, sizeof(*out));
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    ret = store_one(s, st, job_row, out, "job");
    if (ret == -ENOENT)
        store_fail(s, ret, "no job %" PRId64, id);
    if (ret < 0)
        store_job_clear(out);
    return ret;
}

int store_job_list(struct store *s, bool active_only, struct store_job **out, size_t *n)
{
    sqlite3_stmt *st = store_stmt(s, active_only ? ST_JOB_LIST_ACTIVE : ST_JOB_LIST);

    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    return store_collect(s, st, sizeof(**out), job_row, (void **)out, n, job_clear);
}

/* Inside a transaction: the job's status into buf; -ENOENT if none. */
static int job_status(struct store *s, int64_t id, char *buf, size_t n)
{
    sqlite3_stmt *st = store_stmt(s, ST_JOB_STATUS);
    int rc, ret = 0;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        store_col_str(st, 0, buf, n);
    else if (rc == SQLITE_DONE)
        ret = store_fail(s, -ENOENT, "no job %" PRId64, id);
    else
        ret = store_sql_fail(s, sqlite3_extended_errcode(s->db), "job");
    store_done(st);
    return ret;
}

/* Inside a transaction: -EINVAL when the job is finished. */
static int job_unfinished(struct store *s, int64_t id)
{
    char status[STORE_WORD_MAX];
    int ret = job_status(s, id, status, sizeof(status));

    if (ret == 0 && store_job_status_final(status))
        ret = store_fail(s, -EINVAL, "job %" PRId64 " is %s already", id, status);
    return ret;
}

static int job_set_status(struct store *s, int64_t id, const char *status)
{
    sqlite3_stmt *st = store_stmt(s, ST_JOB_SET_STATUS);

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    store_bind_text(st, 2, status);
    return store_run(s, st, "set job status");
}

int store_job_set_phase(struct store *s, int64_t id, const char *phase)
{
    sqlite3_stmt *st;
    int ret = store_check_str(s, "job phase", phase, STORE_WORD_MAX, false);

    if (ret < 0 || (ret = store_begin(s)) < 0)
        return ret;
    ret = job_unfinished(s, id);
    if (ret == 0) {
        st = store_stmt(s, ST_JOB_SET_PHASE);
        if (!st)
            return store_end(s, -EIO);
        sqlite3_bind_int64(st, 1, id);
        store_bind_text(st, 2, phase);
        sqlite3_bind_int64(st, 3, store_now_ms());
        ret = store_run(s, st, "set job phase");
    }
    if (ret == 0)
        ret = job_event(s, id, "job-phase", json_pack("{s:s}", "phase", phase));
    return store_end(s, ret);
}

int store_job_set_figures(struct store *s, int64_t id, const char *figures)
{
    sqlite3_stmt *st = store_stmt(s, ST_JOB_SET_FIGURES);
    int ret;

    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    store_bind_text(st, 2, figures);
    ret = store_run(s, st, "set job figures");
    if (ret == 0 && store_changes(s) == 0)
        ret = store_fail(s, -ENOENT, "no job %" PRId64, id);
    return ret;
}

int store_job_finish(struct store *s, int64_t id, const char *status, const char *error,
                     const char *figures)
{
    sqlite3_stmt *st;
    int64_t now = store_now_ms();
    int ret;

    if (!store_job_status_final(status))
        return store_fail(s, -EINVAL, "'%s' is not a final job status", status ? status : "(null)");
    if ((ret = store_begin(s)) < 0)
        return ret;
    ret = job_unfinished(s, id);
    if (ret == 0) {
        st = store_stmt(s, ST_JOB_FINISH);
        if (!st)
            return store_end(s, -EIO);
        sqlite3_bind_int64(st, 1, id);
        store_bind_text(st, 2, status);
        store_bind_text(st, 3, error);
        store_bind_text(st, 4, figures);
        sqlite3_bind_int64(st, 5, now);
        ret = store_run(s, st, "finish job");
    }
    if (ret == 0) {
        st = store_stmt(s, ST_JOB_LIFT_ALL);
        if (!st)
            return store_end(s, -EIO);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, now);
        ret = store_run(s, st, "lift holds");
    }
    if (ret == 0)
        ret = job_event(s, id, "job-finished",
                        json_pack("{s:s, s:s?}", "status", status, "error", error));
    return store_end(s, ret);
}

void store_job_clear(struct store_job *j)
{
    if (!j)
        return;
    free(j->options);
    free(j->figures);
    free(j->error);
    j->options = j->figures = j->error = NULL;
}

void store_job_list_free(struct store_job *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_job_clear(&v[i]);
    free(v);
}

/* ---- holds ---- */

static int hold_row(struct store *s, sqlite3_stmt *st, void *elem)
{
    struct store_hold *h = elem;

    h->id = sqlite3_column_int64(st, 0);
    h->job_id = sqlite3_column_int64(st, 1);
    store_col_str(st, 2, h->type, sizeof(h->type));
    store_col_str(st, 3, h->reason, sizeof(h->reason));
    store_col_str(st, 4, h->set_by, sizeof(h->set_by));
    h->set_ms = sqlite3_column_int64(st, 5);
    h->lifted_ms = sqlite3_column_int64(st, 7);
    store_col_str(st, 8, h->lifted_by, sizeof(h->lifted_by));
    return store_col_dup(s, st, 6, &h->lift);
}

static void hold_clear(void *elem)
{
    store_hold_clear(elem);
}

int store_hold_add(struct store *s, const struct store_hold *h, int64_t *id)
{
    sqlite3_stmt *st;
    int64_t hid = 0;
    int ret;

    if ((ret = store_check_str(s, "hold type", h->type, STORE_WORD_MAX, false)) < 0 ||
        (ret = store_check_str(s, "hold reason", h->reason, STORE_TEXT_MAX, false)) < 0 ||
        (ret = store_check_str(s, "hold set by", h->set_by, STORE_WHO_MAX, false)) < 0)
        return ret;
    if (!store_hold_type_valid(h->type))
        return store_fail(s, -EINVAL, "unknown hold type '%s'", h->type);
    if ((ret = store_begin(s)) < 0)
        return ret;
    ret = job_unfinished(s, h->job_id);
    if (ret == 0) {
        st = store_stmt(s, ST_HOLD_ADD);
        if (!st)
            return store_end(s, -EIO);
        sqlite3_bind_int64(st, 1, h->job_id);
        store_bind_text(st, 2, h->type);
        store_bind_text(st, 3, h->reason);
        store_bind_text(st, 4, h->set_by);
        sqlite3_bind_int64(st, 5, store_now_ms());
        store_bind_text(st, 6, h->lift);
        ret = store_run(s, st, "add hold");
        hid = sqlite3_last_insert_rowid(s->db);
        if (ret == 0 && id)
            *id = hid;
    }
    if (ret == 0)
        ret = job_set_status(s, h->job_id, "held");
    if (ret == 0)
        ret = job_event(s, h->job_id, "hold-set",
                        json_pack("{s:I, s:s, s:s, s:s}", "hold", (json_int_t)hid, "type", h->type,
                                  "reason", h->reason, "set_by", h->set_by));
    return store_end(s, ret);
}

int store_hold_get(struct store *s, int64_t id, struct store_hold *out)
{
    sqlite3_stmt *st = store_stmt(s, ST_HOLD_GET);
    int ret;

    memset(out, 0, sizeof(*out));
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, id);
    ret = store_one(s, st, hold_row, out, "hold");
    if (ret == -ENOENT)
        store_fail(s, ret, "no hold %" PRId64, id);
    if (ret < 0)
        store_hold_clear(out);
    return ret;
}

int store_hold_list(struct store *s, int64_t job_id, bool active_only, struct store_hold **out,
                    size_t *n)
{
    sqlite3_stmt *st = store_stmt(s, active_only ? ST_HOLD_LIST_ACTIVE : ST_HOLD_LIST);

    *out = NULL;
    *n = 0;
    if (!st)
        return -EIO;
    sqlite3_bind_int64(st, 1, job_id);
    return store_collect(s, st, sizeof(**out), hold_row, (void **)out, n, hold_clear);
}

int store_hold_lift(struct store *s, int64_t id, const char *lifted_by)
{
    struct store_hold h;
    sqlite3_stmt *st;
    int64_t active = 0;
    int ret = store_check_str(s, "lifted by", lifted_by, STORE_WHO_MAX, false);

    if (ret < 0 || (ret = store_begin(s)) < 0)
        return ret;
    ret = store_hold_get(s, id, &h);
    store_hold_clear(&h);
    if (ret == 0 && h.lifted_ms)
        ret = store_fail(s, -EALREADY, "hold %" PRId64 " was lifted already", id);
    if (ret == 0) {
        st = store_stmt(s, ST_HOLD_LIFT);
        if (!st)
            return store_end(s, -EIO);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, store_now_ms());
        store_bind_text(st, 3, lifted_by);
        ret = store_run(s, st, "lift hold");
    }
    if (ret == 0) {
        st = store_stmt(s, ST_HOLD_ACTIVE_COUNT);
        if (!st)
            return store_end(s, -EIO);
        sqlite3_bind_int64(st, 1, h.job_id);
        if (sqlite3_step(st) == SQLITE_ROW)
            active = sqlite3_column_int64(st, 0);
        else
            ret = store_sql_fail(s, sqlite3_extended_errcode(s->db), "count holds");
        store_done(st);
    }
    if (ret == 0 && active == 0) {
        char status[STORE_WORD_MAX];

        ret = job_status(s, h.job_id, status, sizeof(status));
        if (ret == 0 && !strcmp(status, "held"))
            ret = job_set_status(s, h.job_id, "running");
    }
    if (ret == 0)
        ret = job_event(s, h.job_id, "hold-lifted",
                        json_pack("{s:I, s:s, s:s, s:b}", "hold", (json_int_t)id, "type", h.type,
                                  "lifted_by", lifted_by, "job_runs", active == 0));
    return store_end(s, ret);
}

void store_hold_clear(struct store_hold *h)
{
    if (!h)
        return;
    free(h->lift);
    h->lift = NULL;
}

void store_hold_list_free(struct store_hold *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_hold_clear(&v[i]);
    free(v);
}
