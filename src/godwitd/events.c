/*
 * GET /1.0/events: the event log as a stream of JSON lines (chunked HTTP).
 *
 *   GET /1.0/events[?since=ID][&subject=vm/web1][&follow=0]
 *
 * Each line is one event {"id","time","type","subject","data"}.  Without
 * since, the stream starts with events after the request (a live tail);
 * with since=0, from the oldest kept.  follow=0 ends the reply after the
 * stored events instead of waiting for new ones.  Streams wait on a
 * condition variable that godwitd_event / events_notify signal, waking at
 * least every second to notice a stopping daemon.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "godwitd/godwitd.h"

#define EVENTS_BATCH 64
#define EVENTS_KEEP  10000 /* events kept in the store (trimmed as they come) */

struct events {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t generation; /* bumped by every notify */
    unsigned added;      /* since the last trim */
};

struct events_stream {
    struct godwitd *d;
    int64_t since;
    char subject[STORE_WHO_MAX];
    bool follow;
    char *pending; /* bytes not yet handed to the connection */
    size_t len, off;
};

int events_init(struct godwitd *d, char *err, size_t errlen)
{
    struct events *e = calloc(1, sizeof(*e));
    pthread_condattr_t ca;

    if (!e)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    pthread_mutex_init(&e->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&e->cond, &ca);
    pthread_condattr_destroy(&ca);
    d->events = e;
    return 0;
}

void events_fini(struct godwitd *d)
{
    struct events *e = d->events;

    if (!e)
        return;
    d->events = NULL;
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

void events_notify(struct godwitd *d)
{
    struct events *e = d->events;

    if (!e)
        return;
    pthread_mutex_lock(&e->lock);
    e->generation++;
    pthread_cond_broadcast(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

void godwitd_event(struct godwitd *d, const char *type, const char *subject, json_t *data)
{
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    bool trim = false;

    json_decref(data);
    godwitd_store_lock(d);
    if (store_event_add(d->store, type, subject, text ? text : "{}", NULL) < 0)
        gw_log("event %s %s: %s", type, subject ? subject : "", store_errmsg(d->store));
    if (d->events && ++d->events->added >= 1000) {
        d->events->added = 0;
        trim = true;
    }
    if (trim && store_event_trim(d->store, EVENTS_KEEP, NULL) < 0)
        gw_log("events: trim: %s", store_errmsg(d->store));
    godwitd_store_unlock(d);
    free(text);
    events_notify(d);
}

static json_t *events_json(const struct store_event *ev)
{
    json_t *data = ev->data ? json_loads(ev->data, 0, NULL) : NULL;

    return json_pack("{s:I,s:I,s:s,s:s,s:o}", "id", (json_int_t)ev->id, "time",
                     (json_int_t)ev->time_ms, "type", ev->type, "subject", ev->subject, "data",
                     data ? data : json_object());
}

/* Fill st->pending with the next stored events as JSON lines; 0 if none. */
static size_t events_fetch(struct events_stream *st)
{
    struct store_event *v = NULL;
    size_t n = 0, total = 0;
    int ret;

    godwitd_store_lock(st->d);
    if (st->subject[0])
        ret = store_event_list_subject(st->d->store, st->subject, st->since, EVENTS_BATCH, &v, &n);
    else
        ret = store_event_list_since(st->d->store, st->since, EVENTS_BATCH, &v, &n);
    godwitd_store_unlock(st->d);
    if (ret < 0)
        return 0;
    free(st->pending);
    st->pending = NULL;
    st->len = st->off = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *j = events_json(&v[i]);
        char *line = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        st->since = v[i].id;
        if (!line)
            continue;
        size_t l = strlen(line);
        char *p = realloc(st->pending, total + l + 1);
        if (!p) {
            free(line);
            break;
        }
        st->pending = p;
        memcpy(p + total, line, l);
        p[total + l] = '\n';
        total += l + 1;
        free(line);
    }
    store_event_list_free(v, n);
    st->len = total;
    return total;
}

static ssize_t events_stream_read(void *cls, char *buf, size_t max)
{
    struct events_stream *st = cls;
    struct events *e = st->d->events;

    for (;;) {
        if (st->off < st->len) {
            size_t n = st->len - st->off < max ? st->len - st->off : max;
            memcpy(buf, st->pending + st->off, n);
            st->off += n;
            return (ssize_t)n;
        }
        if (st->d->stopping)
            return -1;
        pthread_mutex_lock(&e->lock);
        uint64_t gen = e->generation;
        pthread_mutex_unlock(&e->lock);
        if (events_fetch(st))
            continue;
        if (!st->follow)
            return -1;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        pthread_mutex_lock(&e->lock);
        while (e->generation == gen && !st->d->stopping &&
               pthread_cond_timedwait(&e->cond, &e->lock, &ts) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&e->lock);
        if (!st->follow)
            return -1;
        /* A heartbeat would need a byte; MHD notices a gone client on the
         * next write, so a quiet stream holds its thread until an event or
         * the idle timeout. */
    }
}

static void events_stream_free(void *cls)
{
    struct events_stream *st = cls;

    free(st->pending);
    free(st);
}

static void events_get(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *since = api_query(req, "since"), *subject = api_query(req, "subject");
    const char *follow = api_query(req, "follow");
    struct events_stream *st;
    char *end;

    if (subject && (!subject[0] || strlen(subject) >= STORE_WHO_MAX))
        return api_reply_error(rep, 400, "subject: 1-%d characters", STORE_WHO_MAX - 1);
    if (follow && strcmp(follow, "0") && strcmp(follow, "1"))
        return api_reply_error(rep, 400, "follow: 0 or 1");
    st = calloc(1, sizeof(*st));
    if (!st)
        return api_reply_error(rep, 500, "out of memory");
    st->d = d;
    st->follow = !follow || !strcmp(follow, "1");
    if (subject)
        snprintf(st->subject, sizeof(st->subject), "%s", subject);
    if (since) {
        errno = 0;
        long long v = strtoll(since, &end, 10);
        if (errno || end == since || *end || v < 0) {
            free(st);
            return api_reply_error(rep, 400, "since: an event id (0 or more)");
        }
        st->since = v;
    } else {
        /* a live tail: skip what is stored */
        struct store_event *v = NULL;
        size_t n = 0;
        godwitd_store_lock(d);
        st->since = 0;
        for (;;) {
            if (store_event_list_since(d->store, st->since, 1000, &v, &n) < 0 || n == 0)
                break;
            st->since = v[n - 1].id;
            store_event_list_free(v, n);
            v = NULL;
            if (n < 1000)
                break;
        }
        store_event_list_free(v, 0);
        godwitd_store_unlock(d);
    }
    rep->status = 200;
    rep->stream = events_stream_read;
    rep->stream_free = events_stream_free;
    rep->stream_cls = st;
}

const struct api_route events_routes[] = {
    {"GET", "/1.0/events", events_get, NULL},
};
const size_t events_nroutes = GW_ARRAY_SIZE(events_routes);
