/*
 * Requests to the guest agent that wait for its answer (QMP
 * x-godwit-agent-ping, x-godwit-agent-set-time; docs/qmp.md, the line
 * protocol in docs/virtio.md "Guest agent").
 *
 * Everything runs on the run-loop thread, which also runs the harts, so a
 * handler cannot wait for the guest: it sends the line, defers its QMP
 * reply (qmp_server_defer) and returns.  The answer arrives through the
 * device's hook (virt_agent_answer) while a hart runs the agent, or never:
 * virt_agent_poll() fails requests past their deadline, and the device
 * tells us when an answer can no longer come (port closed, agent
 * restarted, reset).  The device matches answers to commands in order and
 * drops answers to forgotten tags, so a late pong never satisfies a later
 * ping.  At most one request per QMP client waits (the server reads no
 * more from a client whose reply is deferred), hence VIRT_AGENT_REQS.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "machine/virt_int.h"
#include "virtio/virtio_console.h"

#define VIRT_AGENT_TIMEOUT_MS  1000 /* default "timeout" */
#define VIRT_AGENT_TIMEOUT_MAX 10000

/* The console device that has the agent port, or NULL. */
static struct virtio_dev *virt_agent_dev(struct virt *vm)
{
    for (unsigned i = VIRT_VIRTIO_COUNT; i-- > 0;) {
        struct virtio_dev *d = vm->virtio[i].dev;
        if (d && d->device_id == VIRTIO_ID_CONSOLE && vcon_agent_connected(d) != -ENODEV)
            return d;
    }
    return NULL;
}

int virt_agent_send(struct virt *vm, const char *line)
{
    struct virtio_dev *d = virt_agent_dev(vm);

    return d ? vcon_agent_send(d, line) : -ENODEV;
}

static void virt_agent_finish(struct virt *vm, struct virt_agent_req *r, json_t *ret,
                              const struct qmp_error *err)
{
    uint64_t ticket = r->ticket;

    memset(r, 0, sizeof(*r));
    qmp_server_complete(vm->qmp, ticket, ret, err);
}

static void virt_agent_fail(struct virt *vm, struct virt_agent_req *r, const char *fmt, ...)
    gw_printf(3, 4);

static void virt_agent_fail(struct virt *vm, struct virt_agent_req *r, const char *fmt, ...)
{
    struct qmp_error err = {.cls = QMP_ERR_GENERIC};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err.desc, sizeof(err.desc), fmt, ap);
    va_end(ap);
    virt_agent_finish(vm, r, NULL, &err);
}

/* A printable copy of a guest line for an error message. */
static void virt_agent_sanitize(char *out, size_t outlen, const char *line)
{
    size_t k = 0;

    for (; line[k] && k + 1 < outlen; k++)
        out[k] = line[k] >= 0x20 && line[k] < 0x7f ? line[k] : '?';
    out[k] = 0;
}

void virt_agent_answer(void *opaque, uint64_t tag, const char *line)
{
    struct virt *vm = opaque;
    struct virt_agent_req *r = NULL;
    char text[VCON_LINE_MAX];
    uint64_t ms;

    for (unsigned i = 0; i < VIRT_AGENT_REQS && !r; i++)
        if (vm->agent[i].ticket && vm->agent[i].tag == tag)
            r = &vm->agent[i];
    if (!r)
        return;
    if (!line) {
        virt_agent_fail(vm, r, "the guest agent went away before it answered");
        return;
    }
    ms = (gw_now_ns() - r->sent_ns + 500000) / 1000000;
    virt_agent_sanitize(text, sizeof(text), line);
    if (r->kind == VIRT_AGENT_PING && !strcmp(line, "pong")) {
        virt_agent_finish(vm, r, json_pack("{s:I}", "ms", (json_int_t)ms), NULL);
    } else if (r->kind == VIRT_AGENT_SETTIME && !strcmp(line, "ok settime")) {
        virt_agent_finish(vm, r, json_pack("{s:I}", "ms", (json_int_t)ms), NULL);
    } else if (r->kind == VIRT_AGENT_SETTIME && !strncmp(line, "error settime ", 14)) {
        virt_agent_fail(vm, r, "the guest agent could not set the time: %s", text + 14);
    } else {
        virt_agent_fail(vm, r, "the guest agent answered '%s'", text);
    }
}

void virt_agent_cancel(struct virt *vm, const char *why)
{
    for (unsigned i = 0; i < VIRT_AGENT_REQS; i++) {
        struct virt_agent_req *r = &vm->agent[i];
        struct virtio_dev *d = virt_agent_dev(vm);

        if (!r->ticket)
            continue;
        if (d)
            vcon_agent_forget(d, r->tag);
        virt_agent_fail(vm, r, "%s", why);
    }
}

uint64_t virt_agent_next_deadline(const struct virt *vm)
{
    uint64_t next = UINT64_MAX;

    for (unsigned i = 0; i < VIRT_AGENT_REQS; i++)
        if (vm->agent[i].ticket && vm->agent[i].deadline_ns < next)
            next = vm->agent[i].deadline_ns;
    return next;
}

void virt_agent_poll(struct virt *vm, uint64_t now)
{
    for (unsigned i = 0; i < VIRT_AGENT_REQS; i++) {
        struct virt_agent_req *r = &vm->agent[i];
        struct virtio_dev *d;

        if (!r->ticket || now < r->deadline_ns)
            continue;
        d = virt_agent_dev(vm);
        if (d)
            vcon_agent_forget(d, r->tag); /* its answer, if it comes, is dropped */
        virt_agent_fail(vm, r, "the guest agent did not answer within %u ms", r->timeout_ms);
    }
}

/* "timeout" (ms) and, for set-time, "time" (ns since the epoch). */
static json_t *virt_agent_args(json_t *args, bool want_time, unsigned *timeout_ms, bool *has_time,
                               int64_t *time_ns, struct qmp_error *err)
{
    const char *key;
    json_t *v;

    *timeout_ms = VIRT_AGENT_TIMEOUT_MS;
    *has_time = false;
    json_object_foreach(args, key, v)
    {
        if (!strcmp(key, "timeout")) {
            if (!json_is_integer(v))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Invalid parameter type for 'timeout', expected: integer");
            if (json_integer_value(v) < 1 || json_integer_value(v) > VIRT_AGENT_TIMEOUT_MAX)
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Parameter 'timeout' expects milliseconds from 1 to %d",
                                     VIRT_AGENT_TIMEOUT_MAX);
            *timeout_ms = (unsigned)json_integer_value(v);
        } else if (want_time && !strcmp(key, "time")) {
            if (!json_is_integer(v))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Invalid parameter type for 'time', expected: integer");
            if (json_integer_value(v) < 0)
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Parameter 'time' expects nanoseconds since the Unix epoch "
                                     "(0 or more)");
            *time_ns = json_integer_value(v);
            *has_time = true;
        } else {
            return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected", key);
        }
    }
    return NULL;
}

/* Send line as a request of this kind and defer the QMP reply. */
static json_t *virt_agent_start(struct virt *vm, enum virt_agent_kind kind, const char *line,
                                unsigned timeout_ms, struct qmp_error *err)
{
    struct virtio_dev *d = virt_agent_dev(vm);
    struct virt_agent_req *r = NULL;
    uint64_t ticket, tag;
    int ret;

    if (!d)
        return qmp_error_set(err, QMP_ERR_GENERIC, "the machine has no guest agent port");
    if (vm->runstate != VIRT_RS_RUNNING)
        return qmp_error_set(err, QMP_ERR_GENERIC,
                             "the VM is not running (status: %s); the guest agent cannot answer",
                             virt_runstate_name(vm->runstate));
    if (vcon_agent_connected(d) != 1)
        return qmp_error_set(err, QMP_ERR_GENERIC, "the guest agent is not connected");
    for (unsigned i = 0; i < VIRT_AGENT_REQS && !r; i++)
        if (!vm->agent[i].ticket)
            r = &vm->agent[i];
    if (!r)
        return qmp_error_set(err, QMP_ERR_GENERIC, "too many guest agent requests in progress");
    tag = ++vm->agent_next_tag;
    ret = vcon_agent_request(d, line, tag);
    if (ret < 0 && ret != -EAGAIN) {
        if (ret == -ENOBUFS || ret == -EBUSY)
            return qmp_error_set(err, QMP_ERR_GENERIC,
                                 "the guest agent is not reading its port (too many requests "
                                 "unanswered)");
        return qmp_error_set(err, QMP_ERR_GENERIC, "guest agent port: %s", strerror(-ret));
    }
    ticket = qmp_server_defer(vm->qmp);
    if (!ticket) {
        vcon_agent_forget(d, tag);
        return qmp_error_set(err, QMP_ERR_GENERIC, "cannot wait for the guest agent here");
    }
    r->ticket = ticket;
    r->tag = tag;
    r->kind = kind;
    r->timeout_ms = timeout_ms;
    r->sent_ns = gw_now_ns();
    r->deadline_ns = r->sent_ns + (uint64_t)timeout_ms * 1000000u;
    return NULL;
}

json_t *virt_qmp_agent_ping(void *opaque, json_t *args, struct qmp_error *err)
{
    unsigned timeout_ms;
    bool has_time;
    int64_t t;

    if (virt_agent_args(args, false, &timeout_ms, &has_time, &t, err) || err->cls)
        return NULL;
    return virt_agent_start(opaque, VIRT_AGENT_PING, "ping", timeout_ms, err);
}

json_t *virt_qmp_agent_set_time(void *opaque, json_t *args, struct qmp_error *err)
{
    char line[64];
    unsigned timeout_ms;
    bool has_time;
    int64_t t = 0;

    if (virt_agent_args(args, true, &timeout_ms, &has_time, &t, err) || err->cls)
        return NULL;
    if (!has_time) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
    snprintf(line, sizeof(line), "settime %" PRId64 ".%09" PRId64, t / 1000000000, t % 1000000000);
    return virt_agent_start(opaque, VIRT_AGENT_SETTIME, line, timeout_ms, err);
}
