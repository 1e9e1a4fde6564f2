/*
 * The virt machine's QMP commands (docs/qmp.md): run control, power,
 * migration and state, with QEMU's names, arguments and answers.  The
 * protocol itself lives in src/qmp; handlers run on the run-loop thread,
 * between hart slices, so they may touch the machine directly.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "machine/virt_int.h"
#include "state/state_format.h"

/* QEMU version we answer as: our QMP follows 7.2's schema. */
#define VIRT_QMP_MAJOR 7
#define VIRT_QMP_MINOR 2
#define VIRT_QMP_MICRO 0

void virt_event(struct virt *vm, const char *name, json_t *data)
{
    if (!vm->qmp) {
        json_decref(data);
        return;
    }
    qmp_server_event(vm->qmp, name, data);
}

/* The machine is busy with a migration job: refuse what would touch it. */
static json_t *virt_qmp_busy(struct virt *vm, struct qmp_error *err)
{
    if (virt_migrate_active(vm))
        return qmp_error_set(err, QMP_ERR_GENERIC, "There's a migration process in progress");
    if (vm->runstate == VIRT_RS_INMIGRATE)
        return qmp_error_set(err, QMP_ERR_GENERIC, "Guest is waiting for an incoming migration");
    return NULL;
}

static json_t *qmp_query_status(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;

    (void)args;
    (void)err;
    return json_pack("{s:b, s:b, s:s}", "running", vm->runstate == VIRT_RS_RUNNING, "singlestep", 0,
                     "status", virt_runstate_name(vm->runstate));
}

static json_t *qmp_stop(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;

    (void)args;
    if (virt_qmp_busy(vm, err) || err->cls)
        return NULL;
    if (vm->runstate == VIRT_RS_RUNNING)
        virt_pause(vm, VIRT_RS_PAUSED);
    else if (vm->runstate == VIRT_RS_PRELAUNCH)
        ; /* stays prelaunch, as QEMU */
    else if (vm->runstate == VIRT_RS_POSTMIGRATE)
        virt_set_runstate(vm, VIRT_RS_PAUSED);
    return NULL;
}

static json_t *qmp_cont(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    char why[500];

    (void)args;
    if (virt_qmp_busy(vm, err) || err->cls)
        return NULL;
    if (vm->migrated_away)
        return qmp_error_set(err, QMP_ERR_GENERIC,
                             "the VM was migrated live and runs on the destination now; it "
                             "cannot run here as well");
    switch (vm->runstate) {
    case VIRT_RS_SHUTDOWN:
        return qmp_error_set(err, QMP_ERR_GENERIC, "Resetting the Virtual Machine is required");
    case VIRT_RS_INTERNAL_ERROR:
        return qmp_error_set(err, QMP_ERR_GENERIC, "Resetting the Virtual Machine is required");
    default: break;
    }
    /* disk locks: a migration that failed after the handover may have lost them */
    if (virt_disks_lock(vm, why, sizeof(why)) < 0)
        return qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
    virt_resume(vm);
    return NULL;
}

static json_t *qmp_system_reset(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    char why[300];

    (void)args;
    if (virt_qmp_busy(vm, err) || err->cls)
        return NULL;
    if (virt_reset(vm, why, sizeof(why)) < 0)
        return qmp_error_set(err, QMP_ERR_GENERIC, "reset failed: %s", why);
    virt_event(vm, "RESET", json_pack("{s:b, s:s}", "guest", 0, "reason", "host-qmp-system-reset"));
    return NULL;
}

static json_t *qmp_system_powerdown(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    int ret;

    (void)args;
    if (virt_qmp_busy(vm, err) || err->cls)
        return NULL;
    /* As QEMU: the request is an event plus a signal to the guest; whether
     * the guest honours it is the guest's business. */
    virt_event(vm, "POWERDOWN", NULL);
    ret = virt_agent_send(vm, "powerdown");
    if (ret == -ENODEV)
        gw_log("system_powerdown: the machine has no agent port (org.godwit.agent.0); "
               "the guest was not told");
    else if (ret < 0 && ret != -EAGAIN)
        gw_log("system_powerdown: agent port: %s", strerror(-ret));
    return NULL;
}

static json_t *qmp_quit(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;

    (void)args;
    (void)err;
    virt_post_request(vm, VIRT_REQ_QUIT);
    return NULL;
}

static json_t *qmp_migrate(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    const char *uri = NULL;
    char why[400];
    json_t *v;
    const char *key;
    bool resume = false, blk = false;

    json_object_foreach(args, key, v)
    {
        if (!strcmp(key, "uri")) {
            if (!json_is_string(v))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Invalid parameter type for 'uri', expected: string");
            uri = json_string_value(v);
        } else if (!strcmp(key, "blk") || !strcmp(key, "inc") || !strcmp(key, "detach") ||
                   !strcmp(key, "resume")) {
            if (!json_is_boolean(v))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Invalid parameter type for '%s', expected: boolean", key);
            if (!strcmp(key, "resume"))
                resume = json_is_true(v);
            else if (!strcmp(key, "blk"))
                blk = json_is_true(v);
            else if (json_is_true(v) && strcmp(key, "detach") != 0)
                return qmp_error_set(err, QMP_ERR_GENERIC, "'%s' is not supported", key);
        } else {
            return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected", key);
        }
    }
    if (!uri)
        return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter 'uri' is missing");
    if (resume) {
        /* a paused pre-copy goes on over a new connection */
        if (mig_out_resume(vm->mig, uri, why, sizeof(why)) < 0)
            return qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
        return NULL;
    }
    if (blk && !virt_migrate_active(vm))
        vm->mig_params.block = true; /* as QEMU 7.2: blk turns the capability on */
    if (virt_migrate_start(vm, uri, why, sizeof(why)) < 0)
        return qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
    return NULL;
}

/* query-migrate's answer, QEMU's field names, from the engine's figures. */
static json_t *virt_mig_info_json(const struct mig_info *in)
{
    json_t *o = json_pack("{s:s}", "status", mig_status_name(in->status));

    if (in->incoming && in->listen_port > 0) {
        /* QEMU's: where -incoming / migrate-incoming listens (port as a string) */
        char port[16];
        snprintf(port, sizeof(port), "%d", in->listen_port);
        json_object_set_new(
            o, "socket-address",
            json_pack("[{s:s,s:s,s:s}]", "type", "inet", "host", in->listen_host, "port", port));
    }
    if (in->status == MIG_ST_SETUP)
        return o;
    json_object_set_new(o, "total-time", json_integer((json_int_t)in->total_ms));
    if (!in->incoming) {
        json_object_set_new(o, "setup-time", json_integer((json_int_t)in->setup_ms));
        if (in->has_downtime)
            json_object_set_new(o, "downtime", json_integer((json_int_t)in->downtime_ms));
        else
            json_object_set_new(o, "expected-downtime",
                                json_integer((json_int_t)in->expected_downtime_ms));
        json_object_set_new(o, "ram",
                            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I}",
                                      "transferred", (json_int_t)in->transferred, "remaining",
                                      (json_int_t)in->remaining, "total", (json_int_t)in->total,
                                      "duplicate", (json_int_t)in->pages_zero, "normal",
                                      (json_int_t)in->pages_normal, "normal-bytes",
                                      (json_int_t)(in->pages_normal * GMEM_PAGE_SIZE),
                                      "dirty-sync-count", (json_int_t)in->dirty_sync_count,
                                      "dirty-pages-rate", (json_int_t)in->dirty_pages_rate, "mbps",
                                      in->mbps, "page-size", (json_int_t)GMEM_PAGE_SIZE));
    } else {
        /* the destination counts what it received */
        json_object_set_new(o, "ram",
                            json_pack("{s:I}", "transferred", (json_int_t)in->transferred));
    }
    if (!in->incoming && in->has_disk) {
        /* QEMU 7.2's block migration figures, and ours */
        json_object_set_new(o, "disk",
                            json_pack("{s:I, s:I, s:I}", "transferred",
                                      (json_int_t)in->disk_transferred, "remaining",
                                      (json_int_t)in->disk_remaining, "total",
                                      (json_int_t)in->disk_total));
        json_object_set_new(o, "x-godwit-dirty-blocks-rate",
                            json_integer((json_int_t)in->disk_dirty_rate));
        json_object_set_new(o, "x-godwit-mirror", json_boolean(in->mirror));
    }
    if (in->has_fwd && !in->incoming) {
        /* frames across the switchover (docs/net.md) */
        json_object_set_new(
            o, "x-godwit-net-forward",
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:b}", "captured", (json_int_t)in->fwd_captured,
                      "forwarded", (json_int_t)in->fwd_forwarded, "overflow",
                      (json_int_t)in->fwd_overflow, "other", (json_int_t)in->fwd_other, "grace-ms",
                      (json_int_t)in->fwd_grace_ms, "active", in->fwd_active));
    } else if (in->has_fwd) {
        json_object_set_new(o, "x-godwit-net-forward",
                            json_pack("{s:I, s:I, s:I, s:b}", "received",
                                      (json_int_t)in->fwd_received, "delivered",
                                      (json_int_t)in->fwd_delivered, "dropped",
                                      (json_int_t)in->fwd_dropped, "active", in->fwd_active));
    }
    if (in->has_pc && !in->incoming) {
        json_t *ram = json_object_get(o, "ram");

        if (ram) { /* QEMU's names */
            json_object_set_new(ram, "postcopy-requests",
                                json_integer((json_int_t)in->pc_requests));
            json_object_set_new(ram, "postcopy-bytes", json_integer((json_int_t)in->pc_bytes));
        }
        json_object_set_new(o, "x-godwit-postcopy",
                            json_pack("{s:I, s:I, s:I}", "pages", (json_int_t)in->pc_pages,
                                      "requests", (json_int_t)in->pc_requests, "bad-requests",
                                      (json_int_t)in->pc_bad_requests));
    } else if (in->has_pc) {
        json_object_set_new(o, "x-godwit-postcopy",
                            json_pack("{s:I, s:I, s:{s:I, s:I, s:I}}", "faults",
                                      (json_int_t)in->pc_faults, "pages", (json_int_t)in->pc_pages,
                                      "fault-latency-us", "p50", (json_int_t)in->pc_lat_p50_us,
                                      "p99", (json_int_t)in->pc_lat_p99_us, "max",
                                      (json_int_t)in->pc_lat_max_us));
    }
    if (!in->incoming && (in->recoveries || in->resent)) {
        json_object_set_new(o, "x-godwit-recoveries", json_integer((json_int_t)in->recoveries));
        json_object_set_new(o, "x-godwit-resent", json_integer((json_int_t)in->resent));
    }
    if (in->error[0])
        json_object_set_new(o, "error-desc", json_string(in->error));
    return o;
}

/*
 * query-migrate's throttling figures (docs/state.md, "Throttling"), while
 * a throttle holds: QEMU 7.2's cpu-throttle-percentage; QEMU 8.1's
 * dirty-limit pair, in microseconds, which we define as (QEMU's come from
 * KVM's dirty ring, which we have no need for):
 *   dirty-limit-throttle-time-per-round: the longest any hart was held
 *     back during the last x-vcpu-dirty-limit-period;
 *   dirty-limit-ring-full-time: how long the harts over the limit take,
 *     while running, to dirty one period's allowance (vcpu-dirty-limit x
 *     period) at their own pace: their memory load, as QEMU's is;
 * and per hart under x-godwit-dirty-limit.
 */
static void virt_throttle_info_json(const struct virt *vm, const struct mig_info *info, json_t *o)
{
    const struct virt_throttle *t = &vm->throttle;
    uint64_t max_held = 0, allowance;
    double full_sum = 0;
    unsigned full_n = 0;
    json_t *harts;

    if (info->throttle_pct) {
        json_object_set_new(o, "cpu-throttle-percentage", json_integer(info->throttle_pct));
        json_object_set_new(o, "x-godwit-cpu-throttle-slept-ms",
                            json_integer((json_int_t)(t->slept_ns / 1000000)));
    }
    if (!info->dirty_limit_on || !t->now.limit_bps)
        return;
    allowance = (uint64_t)((double)t->now.limit_bps * (double)t->now.period_ns / 1e9);
    harts = json_array();
    for (unsigned i = 0; i < vm->nharts; i++) {
        const struct virt_hart_throttle *ht = &t->hart[i];

        if (ht->last_held_ns > max_held)
            max_held = ht->last_held_ns;
        if (ht->last_held_ns && ht->last_bytes && ht->last_run_ns) {
            full_sum += (double)allowance * (double)ht->last_run_ns / (double)ht->last_bytes / 1e3;
            full_n++;
        }
        json_array_append_new(
            harts, json_pack("{s:i, s:f, s:I, s:I, s:b}", "cpu-index", (int)i, "dirty-rate",
                             (double)ht->rate_bps / (1 << 20), "throttle-time-per-round",
                             (json_int_t)(ht->last_held_ns / 1000), "throttle-time-total-ms",
                             (json_int_t)(ht->held_ns / 1000000), "limited", ht->limited));
    }
    json_object_set_new(o, "dirty-limit-throttle-time-per-round",
                        json_integer((json_int_t)(max_held / 1000)));
    json_object_set_new(o, "dirty-limit-ring-full-time",
                        json_integer(full_n ? (json_int_t)(full_sum / full_n) : 0));
    json_object_set_new(o, "x-godwit-dirty-limit",
                        json_pack("{s:I, s:I, s:o}", "vcpu-dirty-limit",
                                  (json_int_t)(t->now.limit_bps >> 20), "period-ms",
                                  (json_int_t)(t->now.period_ns / 1000000), "harts", harts));
}

static json_t *qmp_query_migrate(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    struct mig_info info;
    json_t *o;

    (void)args;
    (void)err;
    if (vm->mig)
        mig_out_info(vm->mig, &info);
    else if (vm->inc)
        mig_in_info(vm->inc, &info);
    else
        return json_object();
    o = virt_mig_info_json(&info);
    if (vm->mig)
        virt_throttle_info_json(vm, &info, o);
    return o;
}

static json_t *qmp_migrate_cancel(void *opaque, json_t *args, struct qmp_error *err)
{
    (void)args;
    (void)err;
    mig_out_cancel(((struct virt *)opaque)->mig);
    return NULL;
}

/* QEMU's migrate-pause (post-copy only there): ours pauses pre-copy too. */
static json_t *qmp_migrate_pause(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    char why[300];

    if (json_object_size(args))
        return qmp_error_set(err, QMP_ERR_GENERIC, "migrate-pause takes no arguments");
    if (mig_out_pause(vm->mig, why, sizeof(why)) < 0)
        return qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
    return NULL;
}

/* QEMU's migrate-start-postcopy: switch the running migration to post-copy
 * at its next round's end (capability postcopy-ram). */
static json_t *qmp_migrate_start_postcopy(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    char why[300];

    if (json_object_size(args))
        return qmp_error_set(err, QMP_ERR_GENERIC, "migrate-start-postcopy takes no arguments");
    if (mig_out_start_postcopy(vm->mig, why, sizeof(why)) < 0)
        return qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
    return NULL;
}

/* QEMU's migrate-recover {uri}: a paused incoming listens for its source. */
static json_t *qmp_migrate_recover(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    json_t *uri = json_object_get(args, "uri");
    const char *key;
    json_t *v;
    char why[400];

    json_object_foreach(args, key, v)
    {
        if (strcmp(key, "uri") != 0)
            return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected", key);
    }
    if (!json_is_string(uri))
        return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter 'uri' is missing");
    if (mig_in_recover(vm->inc, json_string_value(uri), why, sizeof(why)) < 0)
        return qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
    return NULL;
}

static json_t *qmp_migrate_incoming(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    json_t *uri = json_object_get(args, "uri");
    const char *key;
    json_t *v;
    char why[400];

    json_object_foreach(args, key, v)
    {
        if (strcmp(key, "uri") != 0)
            return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected", key);
    }
    if (!json_is_string(uri))
        return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter 'uri' is missing");
    if (!vm->cfg.incoming || strcmp(vm->cfg.incoming, "defer") != 0)
        return qmp_error_set(err, QMP_ERR_GENERIC,
                             "'-incoming' was not specified on the command line");
    if (vm->inc || vm->runstate != VIRT_RS_INMIGRATE)
        return qmp_error_set(err, QMP_ERR_GENERIC,
                             "The incoming migration has already been started");
    if (virt_incoming_begin(vm, json_string_value(uri), why, sizeof(why)) < 0) {
        if (!strncmp(json_string_value(uri), "file:", 5))
            virt_post_request(vm, VIRT_REQ_FAIL); /* a half-loaded machine cannot go on */
        return qmp_error_set(err, QMP_ERR_GENERIC, "%s", why);
    }
    return NULL;
}

/* migrate-set-parameters: QEMU's names; unknown ones are refused. */
static json_t *qmp_migrate_set_parameters(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    struct mig_params p = vm->mig_params;
    const char *key;
    json_t *v;

    json_object_foreach(args, key, v)
    {
        if (!strcmp(key, "downtime-limit")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 2000000)
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Parameter 'downtime_limit' expects an integer in the range "
                                     "of 0 to 2000000 milliseconds");
            p.downtime_limit_ms = (uint64_t)json_integer_value(v);
        } else if (!strcmp(key, "max-bandwidth")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Parameter 'max_bandwidth' expects an integer in the range "
                                     "of 0 to %llu bytes/second",
                                     (unsigned long long)INT64_MAX);
            p.max_bandwidth = (uint64_t)json_integer_value(v);
        } else if (!strcmp(key, "cpu-throttle-initial") || !strcmp(key, "cpu-throttle-increment") ||
                   !strcmp(key, "max-cpu-throttle")) {
            /* QEMU names them with underscores in its messages */
            const char *qname = !strcmp(key, "cpu-throttle-initial")     ? "cpu_throttle_initial"
                                : !strcmp(key, "cpu-throttle-increment") ? "cpu_throttle_increment"
                                                                         : "max_cpu_throttle";
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 99)
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Parameter '%s' expects an integer in the range of 1 to 99",
                                     qname);
            if (!strcmp(key, "cpu-throttle-initial"))
                p.cpu_throttle_initial = (unsigned)json_integer_value(v);
            else if (!strcmp(key, "cpu-throttle-increment"))
                p.cpu_throttle_increment = (unsigned)json_integer_value(v);
            else
                p.max_cpu_throttle = (unsigned)json_integer_value(v);
        } else if (!strcmp(key, "cpu-throttle-tailslow")) {
            if (!json_is_boolean(v))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Invalid parameter type for 'cpu-throttle-tailslow', "
                                     "expected: boolean");
            p.cpu_throttle_tailslow = json_is_true(v);
        } else if (!strcmp(key, "x-vcpu-dirty-limit-period")) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1000)
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Parameter 'x-vcpu-dirty-limit-period' expects a value "
                                     "between 1 and 1000");
            p.dirty_limit_period_ms = (uint64_t)json_integer_value(v);
        } else if (!strcmp(key, "vcpu-dirty-limit")) {
            /* QEMU 8.1's words, grammar and all */
            if (!json_is_integer(v) || json_integer_value(v) < 1)
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Parameter 'vcpu_dirty_limit' expects is invalid, it must "
                                     "greater then 1 MB/s");
            p.vcpu_dirty_limit = (uint64_t)json_integer_value(v);
        } else if (!strcmp(key, "x-godwit-compress")) {
            if (!json_is_boolean(v))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Invalid parameter type for 'x-godwit-compress', expected: "
                                     "boolean");
            p.compress = json_is_true(v);
        } else if (!strcmp(key, "x-godwit-hold-switchover")) {
            if (!json_is_boolean(v))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Invalid parameter type for 'x-godwit-hold-switchover', "
                                     "expected: boolean");
            p.hold_switchover = json_is_true(v);
        } else if (!strcmp(key, "x-godwit-postcopy-auto")) {
            if (!json_is_boolean(v))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Invalid parameter type for 'x-godwit-postcopy-auto', "
                                     "expected: boolean");
            p.postcopy_auto = json_is_true(v);
        } else if (!strcmp(key, "tls-creds")) {
            /* QEMU's: an object's id, "" for none; its endpoint is checked
             * when a migration starts (only then is the side known) */
            const char *id = json_is_null(v) ? "" : json_string_value(v); /* StrOrNull */
            bool found = !id || !*id;

            if (!id)
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "Invalid parameter type for 'tls-creds', expected: string");
            for (unsigned i = 0; i < vm->ntls_creds && !found; i++)
                found = !strcmp(vm->tls_creds[i].id, id);
            if (!found || strlen(id) >= sizeof(p.tls_creds))
                return qmp_error_set(err, QMP_ERR_GENERIC,
                                     "No TLS credentials with id '%s' (add -object "
                                     "tls-creds-psk,id=%s,endpoint=...,dir=...)",
                                     id, id);
            snprintf(p.tls_creds, sizeof(p.tls_creds), "%s", id);
        } else {
            return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected", key);
        }
    }
    vm->mig_params = p;          /* all or nothing */
    if (virt_migrate_active(vm)) /* the one a running job takes at once */
        mig_out_update(vm->mig, &p);
    return NULL;
}

static json_t *qmp_query_migrate_parameters(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;

    (void)args;
    (void)err;
    const struct mig_params *p = &vm->mig_params;

    return json_pack("{s:I, s:I, s:b, s:b, s:b, s:s, s:i, s:i, s:b, s:i, s:I, s:I}",
                     "downtime-limit", (json_int_t)p->downtime_limit_ms, "max-bandwidth",
                     (json_int_t)p->max_bandwidth, "x-godwit-compress", p->compress,
                     "x-godwit-hold-switchover", p->hold_switchover, "x-godwit-postcopy-auto",
                     p->postcopy_auto, "tls-creds", p->tls_creds, "cpu-throttle-initial",
                     (int)p->cpu_throttle_initial, "cpu-throttle-increment",
                     (int)p->cpu_throttle_increment, "cpu-throttle-tailslow",
                     p->cpu_throttle_tailslow, "max-cpu-throttle", (int)p->max_cpu_throttle,
                     "vcpu-dirty-limit", (json_int_t)p->vcpu_dirty_limit,
                     "x-vcpu-dirty-limit-period", (json_int_t)p->dirty_limit_period_ms);
}

/* QEMU 7.2's migration capabilities: "events" works; the others exist in
 * name so clients that switch them off (libvirt does) keep working, and
 * switching one on is refused. */
static const char *const virt_mig_caps[] = {
    "xbzrle",
    "rdma-pin-all",
    "auto-converge",
    "zero-blocks",
    "compress",
    "events",
    "postcopy-ram",
    "x-colo",
    "release-ram",
    "block",
    "return-path",
    "pause-before-switchover",
    "multifd",
    "dirty-bitmaps",
    "postcopy-blocktime",
    "late-block-activate",
    "x-ignore-shared",
    "validate-uuid",
    "background-snapshot",
    "zero-copy-send",
    "postcopy-preempt",
    "dirty-limit", /* QEMU 8.1 */
    "x-godwit-precopy-recover",
    "x-godwit-net-forward",
};

static json_t *qmp_migrate_set_capabilities(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    json_t *caps = json_object_get(args, "capabilities"), *c;
    bool events = vm->mig_params.events, recover = vm->mig_params.precopy_recover;
    bool block = vm->mig_params.block, fwd = vm->mig_params.net_forward;
    bool autoconv = vm->mig_params.auto_converge, dlimit = vm->mig_params.dirty_limit;
    bool postcopy = vm->mig_params.postcopy;
    size_t i;

    if (!json_is_array(caps) || json_object_size(args) != 1)
        return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter 'capabilities' is missing");
    if (virt_migrate_active(vm))
        return qmp_error_set(err, QMP_ERR_GENERIC, "There's a migration process in progress");
    json_array_foreach(caps, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "capability"));
        json_t *state = json_object_get(c, "state");
        bool known = false;

        if (!name || !json_is_boolean(state))
            return qmp_error_set(err, QMP_ERR_GENERIC,
                                 "capabilities[%zu]: expected {\"capability\", \"state\"}", i);
        for (size_t k = 0; k < GW_ARRAY_SIZE(virt_mig_caps); k++)
            if (!strcmp(name, virt_mig_caps[k]))
                known = true;
        if (!known)
            return qmp_error_set(err, QMP_ERR_GENERIC,
                                 "Parameter 'capability' does not accept value '%s'", name);
        if (!strcmp(name, "events"))
            events = json_is_true(state);
        else if (!strcmp(name, "x-godwit-precopy-recover"))
            recover = json_is_true(state);
        else if (!strcmp(name, "block"))
            block = json_is_true(state);
        else if (!strcmp(name, "x-godwit-net-forward"))
            fwd = json_is_true(state);
        else if (!strcmp(name, "auto-converge"))
            autoconv = json_is_true(state);
        else if (!strcmp(name, "dirty-limit"))
            dlimit = json_is_true(state);
        else if (!strcmp(name, "postcopy-ram"))
            postcopy = json_is_true(state);
        else if (json_is_true(state))
            return qmp_error_set(err, QMP_ERR_GENERIC, "Migration capability '%s' is not supported",
                                 name);
    }
    if (autoconv && dlimit) /* QEMU 8.1's words */
        return qmp_error_set(err, QMP_ERR_GENERIC,
                             "dirty-limit conflicts with auto-converge either of then available "
                             "currently");
    vm->mig_params.auto_converge = autoconv;
    vm->mig_params.dirty_limit = dlimit;
    vm->mig_params.events = events;
    vm->mig_params.precopy_recover = recover;
    vm->mig_params.block = block;
    vm->mig_params.net_forward = fwd;
    vm->mig_params.postcopy = postcopy;
    mig_in_set_postcopy(vm->inc, postcopy); /* an -incoming one that waits */
    return NULL;
}

static json_t *qmp_query_migrate_capabilities(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    json_t *a = json_array();

    (void)args;
    (void)err;
    for (size_t k = 0; k < GW_ARRAY_SIZE(virt_mig_caps); k++)
        json_array_append_new(
            a,
            json_pack(
                "{s:s, s:b}", "capability", virt_mig_caps[k], "state",
                (!strcmp(virt_mig_caps[k], "events") && vm->mig_params.events) ||
                    (!strcmp(virt_mig_caps[k], "x-godwit-precopy-recover") &&
                     vm->mig_params.precopy_recover) ||
                    (!strcmp(virt_mig_caps[k], "block") && vm->mig_params.block) ||
                    (!strcmp(virt_mig_caps[k], "x-godwit-net-forward") &&
                     vm->mig_params.net_forward) ||
                    (!strcmp(virt_mig_caps[k], "auto-converge") && vm->mig_params.auto_converge) ||
                    (!strcmp(virt_mig_caps[k], "dirty-limit") && vm->mig_params.dirty_limit) ||
                    (!strcmp(virt_mig_caps[k], "postcopy-ram") && vm->mig_params.postcopy)));
    return a;
}

static json_t *qmp_state_hash(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    char hex[17];

    (void)args;
    if (vm->runstate == VIRT_RS_RUNNING || virt_migrate_active(vm) ||
        vm->runstate == VIRT_RS_INMIGRATE)
        return qmp_error_set(err, QMP_ERR_GENERIC,
                             "the VM must be stopped (stop first) to hash its state");
    snprintf(hex, sizeof(hex), "%016" PRIx64, virt_state_hash(vm));
    return json_pack("{s:s}", "hash", hex);
}

/* QEMU's: {"name": NAME}, or {} when -name was not given. */
static json_t *qmp_query_name(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;

    (void)args;
    (void)err;
    if (!vm->cfg.name[0])
        return json_object();
    return json_pack("{s:s}", "name", vm->cfg.name);
}

/* QEMU's: {"UUID": "..."}, the nil UUID when -uuid was not given. */
static json_t *qmp_query_uuid(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    char text[STATE_UUID_TEXT_LEN + 1];

    (void)args;
    (void)err;
    state_uuid_format(vm->cfg.uuid, text);
    return json_pack("{s:s}", "UUID", text);
}

static json_t *qmp_query_kvm(void *opaque, json_t *args, struct qmp_error *err)
{
    (void)opaque;
    (void)args;
    (void)err;
    return json_pack("{s:b, s:b}", "enabled", 0, "present", 0);
}

static json_t *qmp_query_cpus_fast(void *opaque, json_t *args, struct qmp_error *err)
{
    struct virt *vm = opaque;
    json_t *a = json_array();

    (void)args;
    (void)err;
    for (unsigned i = 0; i < vm->nharts; i++)
        json_array_append_new(a, json_pack("{s:i, s:s, s:i, s:s, s:{s:i, s:i, s:i}}", "cpu-index",
                                           (int)i, "qom-path", "/machine/soc0/harts", "thread-id",
                                           (int)getpid(), "target", "riscv64", "props", "core-id",
                                           0, "socket-id", 0, "node-id", 0));
    return a;
}

static const struct qmp_command virt_qmp_cmds[] = {
    {"query-status", qmp_query_status, true},
    {"stop", qmp_stop, true},
    {"cont", qmp_cont, true},
    {"system_reset", qmp_system_reset, true},
    {"system_powerdown", qmp_system_powerdown, true},
    {"quit", qmp_quit, true},
    {"migrate", qmp_migrate, false},
    {"query-migrate", qmp_query_migrate, true},
    {"migrate_cancel", qmp_migrate_cancel, true},
    {"migrate-incoming", qmp_migrate_incoming, false},
    {"migrate-pause", qmp_migrate_pause, true},
    {"migrate-start-postcopy", qmp_migrate_start_postcopy, true},
    {"migrate-recover", qmp_migrate_recover, false},
    {"migrate-set-parameters", qmp_migrate_set_parameters, false},
    {"query-migrate-parameters", qmp_query_migrate_parameters, true},
    {"migrate-set-capabilities", qmp_migrate_set_capabilities, false},
    {"query-migrate-capabilities", qmp_query_migrate_capabilities, true},
    {"query-name", qmp_query_name, true},
    {"query-uuid", qmp_query_uuid, true},
    {"query-kvm", qmp_query_kvm, true},
    {"query-cpus-fast", qmp_query_cpus_fast, true},
    {"x-godwit-state-hash", qmp_state_hash, true},
    {"announce-self", virt_qmp_announce_self, false},
    {"x-godwit-agent-ping", virt_qmp_agent_ping, false},
    {"x-godwit-agent-set-time", virt_qmp_agent_set_time, false},
};

int virt_qmp_init(struct virt *vm, char *err, size_t errlen)
{
    struct qmp_server_config qc = {
        .spec = vm->cfg.qmp + 5, /* after "unix:" */
        .cmds = virt_qmp_cmds,
        .ncmds = GW_ARRAY_SIZE(virt_qmp_cmds),
        .opaque = vm,
        .version_major = VIRT_QMP_MAJOR,
        .version_minor = VIRT_QMP_MINOR,
        .version_micro = VIRT_QMP_MICRO,
        .package = "godwit",
    };
    char why[300];

    qc.spec = vm->cfg.qmp;
    vm->qmp = qmp_server_new(&qc, why, sizeof(why));
    if (!vm->qmp) {
        snprintf(err, errlen, "-qmp %s: %s", vm->cfg.qmp, why);
        return -EINVAL;
    }
    return 0;
}

void virt_qmp_fini(struct virt *vm)
{
    qmp_server_free(vm->qmp);
    vm->qmp = NULL;
}
