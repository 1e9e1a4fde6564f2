/*
 * Sending a VM's files to a peer for a cold or suspended migration
 * (migrate_cold.h; the destination's routes are migrate_in_cold.c's, the
 * chunking is xfer.h's).  One kept-alive HTTPS connection per job; each
 * chunk is one request whose answer says the destination verified it.
 *
 * Faults: a chunk the destination found damaged (422) is sent again, up to
 * MIGRATE_SEND_RESENDS times; a broken connection or an unreachable peer
 * makes the sender wait (backoff up to 5 s) and continue from the
 * destination's verified offset, for as long as some progress was made in
 * the last MIGRATE_SEND_STALL_MS; any other refusal (disk full there, a bad
 * request) ends the transfer with the destination's reason.
 *
 * Test hook: GODWITD_FAULT_FLIP_CHUNK=N flips one bit in the body of the
 * N-th chunk this job sends (first attempt only), after its hash was
 * computed, so the destination's check must catch it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "godwitd/migrate_cold.h"
#include "godwitd/peers.h"
#include "godwitd/xfer.h"

#define MIGRATE_SEND_RESENDS  3
#define MIGRATE_SEND_STALL_MS (10 * 60 * 1000)
#define MIGRATE_SEND_CALL_MS  30000

/* Bytes of the chunks that hold data (what the transfer moves, in chunk
 * units) below limit: the figures' total and done use the same measure,
 * so the percentage is monotonic and ends at 100. */
uint64_t migrate_data_chunks(const char *path, uint64_t limit)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint64_t sum = 0, last = UINT64_MAX;
    off_t pos = 0, end;
    struct stat st;

    if (fd < 0)
        return 0;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return 0;
    }
    if ((uint64_t)st.st_size < limit)
        limit = (uint64_t)st.st_size;
    while ((uint64_t)pos < limit) {
        pos = lseek(fd, pos, SEEK_DATA);
        if (pos < 0 || (uint64_t)pos >= limit)
            break;
        end = lseek(fd, pos, SEEK_HOLE);
        if (end < 0)
            end = st.st_size;
        if ((uint64_t)end > limit)
            end = (off_t)limit;
        for (uint64_t k = (uint64_t)pos / XFER_CHUNK; k * XFER_CHUNK < (uint64_t)end; k++) {
            if (k == last)
                continue;
            uint64_t a = k * XFER_CHUNK, b = a + XFER_CHUNK;
            if (b > (uint64_t)st.st_size)
                b = (uint64_t)st.st_size;
            sum += b - a;
            last = k;
        }
        pos = end;
    }
    close(fd);
    return sum;
}

static void send_backoff(struct migrate_send *s, unsigned *n)
{
    unsigned ms = 250u << (*n < 5 ? *n : 5);

    if (ms > 5000)
        ms = 5000;
    (*n)++;
    for (unsigned t = 0; t < ms && !migrate_send_stop(s); t += 50)
        usleep(50 * 1000);
}

static void send_drop_conn(struct migrate_send *s)
{
    peer_conn_free(s->conn);
    s->conn = NULL;
}

/* One call over the job's connection (opened on demand).  As
 * peer_conn_call_raw; *status 0 when the peer was not reached. */
static int send_call(struct migrate_send *s, const char *path, const void *data, size_t len,
                     json_t **reply, long *status, char *err, size_t errlen)
{
    int ret;

    *status = 0;
    if (!s->conn) {
        ret = peer_conn_open(s->d, s->peer, &s->conn, err, errlen);
        if (ret < 0)
            return ret;
    }
    unsigned long before = peer_conn_connects(s->conn);
    ret = peer_conn_call_raw(s->conn, "POST", path, data, len, reply, status, MIGRATE_SEND_CALL_MS,
                             err, errlen);
    if (before > 0 && peer_conn_connects(s->conn) > before) {
        /* libcurl found the connection broken and sent the request again
         * on a new one: a resume, and its body counts as sent twice */
        s->reconnects++;
        s->resent += len;
        s->wire += len;
    }
    if (ret < 0 && *status == 0)
        send_drop_conn(s); /* the next call connects again */
    return ret;
}

/* Where the destination stands with this file: 0 and *verified, -EAGAIN
 * (peer unreachable: try again), or another -errno (refused). */
static int send_open(struct migrate_send *s, struct migrate_file *f, uint64_t *verified, char *err,
                     size_t errlen)
{
    char api[512];
    json_t *r = NULL;
    long st;
    int ret;

    snprintf(api, sizeof(api), "/1.0/incoming/%lld/xfer?name=%s&size=%llu", (long long)s->dst_job,
             f->name, (unsigned long long)f->size);
    ret = send_call(s, api, NULL, 0, &r, &st, err, errlen);
    if (ret == 0) {
        json_int_t v = json_integer_value(json_object_get(r, "verified"));
        json_decref(r);
        if (v < 0 || (uint64_t)v > f->size)
            return gw_fail(err, errlen, -EPROTO, "host %s answered a bad offset", s->peer);
        *verified = (uint64_t)v;
        return 0;
    }
    return st == 0 && ret != -EPERM ? -EAGAIN : ret;
}

/* ---- read-ahead ----
 * A thread reads, hashes and compresses the next chunks (xfer_src_next)
 * while the current one travels and the destination writes it: the two
 * hosts' work overlaps instead of taking turns.  Two slots, each holding a
 * chunk and a copy of its body; the sender takes them in order. */

#define SEND_SLOTS 2

struct send_slot {
    struct xfer_chunk c;
    uint8_t *body; /* XFER_BODY_MAX bytes */
    int ret;       /* xfer_src_next's: 1 a chunk, 0 the end, -errno */
    char err[256];
};

struct send_pipe {
    struct xfer_src *src;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct send_slot slot[SEND_SLOTS];
    unsigned head, count; /* the oldest filled slot, how many are filled */
    bool stop, started;
};

static void *send_ahead(void *opaque)
{
    struct send_pipe *p = opaque;
    struct xfer_chunk c;
    char err[256];
    int r;

    do {
        pthread_mutex_lock(&p->lock);
        while (p->count == SEND_SLOTS && !p->stop)
            pthread_cond_wait(&p->cond, &p->lock);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        err[0] = '\0';
        r = xfer_src_next(p->src, &c, err, sizeof(err));
        pthread_mutex_lock(&p->lock);
        struct send_slot *sl = &p->slot[(p->head + p->count) % SEND_SLOTS];
        sl->ret = r;
        if (r == 1) {
            sl->c = c;
            memcpy(sl->body, c.body, c.body_len);
            sl->c.body = sl->body;
        }
        snprintf(sl->err, sizeof(sl->err), "%s", err);
        p->count++;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
    } while (r == 1);
    return NULL;
}

static int send_pipe_start(struct send_pipe *p, struct xfer_src *src, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->src = src;
    for (unsigned i = 0; i < SEND_SLOTS; i++) {
        p->slot[i].body = malloc(XFER_BODY_MAX);
        if (!p->slot[i].body) {
            for (unsigned k = 0; k < i; k++)
                free(p->slot[k].body);
            return gw_fail(err, errlen, -ENOMEM, "out of memory");
        }
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (pthread_create(&p->thread, NULL, send_ahead, p) != 0) {
        for (unsigned i = 0; i < SEND_SLOTS; i++)
            free(p->slot[i].body);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        return gw_fail(err, errlen, -EAGAIN, "cannot start the read-ahead thread");
    }
    p->started = true;
    return 0;
}

/* The next slot in order (waits for it): stays valid until send_pipe_next. */
static struct send_slot *send_pipe_peek(struct send_pipe *p)
{
    struct send_slot *sl;

    pthread_mutex_lock(&p->lock);
    while (p->count == 0)
        pthread_cond_wait(&p->cond, &p->lock);
    sl = &p->slot[p->head];
    pthread_mutex_unlock(&p->lock);
    return sl;
}

static void send_pipe_next(struct send_pipe *p)
{
    pthread_mutex_lock(&p->lock);
    p->head = (p->head + 1) % SEND_SLOTS;
    p->count--;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Stop and join the thread (after it, the source's digest and stats are
 * its own again). */
static void send_pipe_stop(struct send_pipe *p)
{
    if (!p->started)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    for (unsigned i = 0; i < SEND_SLOTS; i++)
        free(p->slot[i].body);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    p->started = false;
}

/* Send the chunks of one opened source from where it stands.  0 at the
 * end of the file, -EAGAIN to reconnect and continue, -errno refused. */
static int send_chunks(struct migrate_send *s, struct migrate_file *f, struct send_pipe *pipe,
                       char *err, size_t errlen)
{
    char api[512], q[256];
    uint8_t *flip = NULL;
    int ret;

    for (;;) {
        struct send_slot *sl = send_pipe_peek(pipe);
        unsigned tries = 0;
        long st = 0;

        ret = sl->ret;
        if (ret != 1) {
            if (ret < 0)
                snprintf(err, errlen, "%s", sl->err);
            break;
        }
        struct xfer_chunk c = sl->c;

        if (xfer_chunk_query(&c, q, sizeof(q)) < 0)
            return gw_fail(err, errlen, -ENAMETOOLONG, "chunk header too long");
        snprintf(api, sizeof(api), "/1.0/incoming/%lld/chunk?name=%s&%s", (long long)s->dst_job,
                 f->name, q);
        s->nsent++;
        for (;;) {
            const void *body = c.body;
            if (s->flip_chunk && s->nsent == s->flip_chunk && tries == 0 && c.body_len) {
                flip = malloc(c.body_len);
                if (flip) {
                    memcpy(flip, c.body, c.body_len);
                    flip[c.body_len / 2] ^= 0x10;
                    body = flip;
                    gw_log("job %lld: test hook: chunk %llu of %s sent with one bit flipped",
                           (long long)s->job, (unsigned long long)s->nsent, f->name);
                }
            }
            xfer_rate_wait(&s->rate, c.body_len);
            if (c.offset + c.len <= f->high || tries > 0)
                s->resent += c.body_len;
            s->wire += c.body_len;
            ret = send_call(s, api, body, c.body_len, NULL, &st, err, errlen);
            free(flip);
            flip = NULL;
            if (ret == 0 || st != 422 || ++tries > MIGRATE_SEND_RESENDS)
                break;
            s->bad_chunks++;
            gw_log("job %lld: host %s found chunk %llu of %s damaged: sending it again",
                   (long long)s->job, s->peer, (unsigned long long)(c.offset / XFER_CHUNK),
                   f->name);
        }
        if (ret < 0) {
            if (st == 0 && ret != -EPERM)
                return -EAGAIN;
            if (st == 409) /* out of step with the destination: ask again */
                return -EAGAIN;
            return ret;
        }
        if (c.offset + c.len > f->high)
            f->high = c.offset + c.len;
        f->done += c.len; /* chunks of zeros inside data extents count at the end */
        if (f->done > f->total)
            f->done = f->total;
        s->progress_ms = store_now_ms();
        migrate_send_progress(s, false);
        send_pipe_next(pipe);
        if (migrate_send_stop(s))
            return gw_fail(err, errlen, -ECANCELED, "cancelled");
    }
    return ret;
}

int migrate_send_file(struct migrate_send *s, struct migrate_file *f, char *err, size_t errlen)
{
    unsigned backoff = 0;
    bool first = true;
    int ret;

    s->progress_ms = store_now_ms();
    for (;;) {
        struct xfer_src *src = NULL;
        uint64_t verified = 0;
        char digest[XFER_DIGEST_HEX + 1];

        if (migrate_send_stop(s))
            return gw_fail(err, errlen, -ECANCELED, "cancelled");
        ret = send_open(s, f, &verified, err, errlen);
        if (ret == 0 && s->unreachable) {
            s->unreachable = false;
            migrate_send_reachable(s);
        }
        if (ret == 0) {
            if (!first) {
                s->resumes++;
                gw_log("job %lld: %s continues at %llu of %llu bytes", (long long)s->job, f->name,
                       (unsigned long long)verified, (unsigned long long)f->size);
            }
            first = false;
            ret = xfer_src_open(f->path, XFER_COMPRESS_AUTO, &src, err, errlen);
        }
        if (ret == 0)
            ret = xfer_src_skip_to(src, verified, err, errlen);
        struct send_pipe pipe = {0};
        if (ret == 0) {
            f->done = migrate_data_chunks(f->path, verified);
            ret = send_pipe_start(&pipe, src, err, errlen);
        }
        if (ret == 0)
            ret = send_chunks(s, f, &pipe, err, errlen);
        send_pipe_stop(&pipe);
        if (ret == 0 && (ret = xfer_src_digest(src, digest)) == 0) {
            struct xfer_stats xs;
            char api[512];
            json_t *r = NULL;
            long st;
            xfer_src_stats(src, &xs);
            s->compressed += xs.compressed;
            snprintf(api, sizeof(api), "/1.0/incoming/%lld/xfer-done?name=%s&digest=%s",
                     (long long)s->dst_job, f->name, digest);
            ret = send_call(s, api, NULL, 0, &r, &st, err, errlen);
            if (ret == 0) {
                f->allocated_dst = (uint64_t)json_integer_value(json_object_get(r, "allocated"));
                snprintf(f->digest, sizeof(f->digest), "%s", digest);
                f->done = f->total;
                f->complete = true;
            } else if (st == 0 && ret != -EPERM) {
                ret = -EAGAIN;
            }
            json_decref(r);
        }
        xfer_src_free(src);
        if (ret == 0) {
            migrate_send_progress(s, true);
            return 0;
        }
        if (ret != -EAGAIN)
            return ret;
        int64_t give_up = s->give_up_ms > 0 ? s->give_up_ms : MIGRATE_SEND_STALL_MS;
        if (store_now_ms() - s->progress_ms > give_up)
            return gw_fail(err, errlen, -ETIMEDOUT,
                           "gave up after %lld s without progress: host %s unreachable (%s)",
                           (long long)(give_up / 1000), s->peer, err);
        if (!s->unreachable) {
            s->unreachable = true;
            migrate_send_unreachable(s, err);
        }
        gw_log("job %lld: sending %s to %s: %s; trying again", (long long)s->job, f->name, s->peer,
               err);
        migrate_send_progress(s, true);
        send_backoff(s, &backoff);
    }
}
