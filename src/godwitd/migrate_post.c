/*
 * POST /1.0/vms/{name}/migrate (migrate.h): checks the request, picks the
 * kind (live, cold, suspended; auto follows the VM's state) and starts the
 * job: live ones through migrate_live_start (migrate.c), cold and suspended
 * ones through migrate_cold_post (migrate_cold.c).  Also the module's
 * init and fini.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "godwitd/jobs.h"
#include "godwitd/migrate.h"
#include "godwitd/migrate_cold.h"
#include "godwitd/migrate_int.h"
#include "godwitd/vms.h"

/* ---- POST /1.0/vms/{name}/migrate ---- */

static void migrate_post(struct api_request *req, struct api_reply *rep)
{
    struct godwitd *d = req->ctx;
    const char *name = api_param(req, "name");
    const char *peer = json_string_value(json_object_get(req->body, "peer"));
    const char *mode = json_string_value(json_object_get(req->body, "mode"));
    json_int_t dl = json_integer_value(json_object_get(req->body, "downtime_limit"));
    json_int_t bw = json_integer_value(json_object_get(req->body, "bandwidth"));
    json_int_t dlim = json_integer_value(json_object_get(req->body, "dirty_limit"));
    struct store_vm vm;
    struct store_peer p;
    struct store_job *jobs = NULL;
    size_t njobs = 0;
    char err[512], who[STORE_WHO_MAX];
    int64_t id;
    int ret;

    if (!api_name_valid(name))
        return api_reply_error(rep, 400, "bad VM name");
    if (!peer || !api_name_valid(peer))
        return api_reply_error(rep, 400, "peer: a peer host's name");
    if (dlim < 0 || dlim > 1000000)
        return api_reply_error(rep, 400, "dirty_limit: 1 to 1000000 MiB/s per vCPU (0: none)");
    const char *window = json_string_value(json_object_get(req->body, "window"));
    if (window) {
        struct migrate_window w;
        char werr[256];
        if (migrate_window_parse(window, &w, werr, sizeof(werr)) < 0)
            return api_reply_error(rep, 400, "%s", werr);
    }
    const char *after_vm = json_string_value(json_object_get(req->body, "after_vm"));
    if (after_vm) {
        char avm[STORE_NAME_MAX], apeer[STORE_NAME_MAX], aerr[256];
        if (migrate_after_vm_parse(d, after_vm, avm, apeer, aerr, sizeof(aerr)) < 0)
            return api_reply_error(rep, 400, "%s", aerr);
        if (!strcmp(avm, name) && (!strcmp(apeer, d->name) || (peer && !strcmp(apeer, peer))))
            return api_reply_error(rep, 400,
                                   "after_vm: VM %s would wait for itself (on host %s) forever",
                                   name, apeer);
    }
    json_int_t after = json_integer_value(json_object_get(req->body, "after"));
    if (json_object_get(req->body, "after")) {
        struct store_job aj;
        godwitd_store_lock(d);
        ret = after > 0 ? store_job_get(d->store, after, &aj) : -ENOENT;
        godwitd_store_unlock(d);
        if (ret < 0)
            return api_reply_error(rep, 404, "after: no job %lld on host %s", (long long)after,
                                   d->name);
        store_job_clear(&aj);
    }
    if (mode && strcmp(mode, "live") && strcmp(mode, "cold") && strcmp(mode, "suspended") &&
        strcmp(mode, "auto"))
        return api_reply_error(rep, 400, "mode: live, cold, suspended or auto");
    if (!mode || !strcmp(mode, "auto")) {
        /* by the VM's state: running → live, suspended → suspended, else cold */
        godwitd_store_lock(d);
        ret = store_vm_get(d->store, name, &vm);
        godwitd_store_unlock(d);
        if (ret < 0)
            return api_reply_error(rep, 404, "no VM named '%s' on host %s", name, d->name);
        mode = !strcmp(vm.state, "running")     ? "live"
               : !strcmp(vm.state, "suspended") ? "suspended"
                                                : "cold";
        store_vm_clear(&vm);
    }
    if (json_is_true(json_object_get(req->body, "suspend")))
        mode = "suspended";
    if (!strcmp(mode, "live")) {
        static const char *const cold_only[] = {"shutdown_timeout", "force",  "no_start",
                                                "confirm",          "resume", "confirm_window"};
        for (size_t i = 0; i < GW_ARRAY_SIZE(cold_only); i++)
            if (json_object_get(req->body, cold_only[i]))
                return api_reply_error(rep, 400,
                                       "%s is for cold and suspended migration; VM %s would "
                                       "move live",
                                       cold_only[i], name);
    }
    if (strcmp(mode, "live") && json_object_get(req->body, "postcopy"))
        return api_reply_error(rep, 400, "postcopy is for live migration; VM %s would move %s",
                               name, mode);
    if (strcmp(mode, "live")) {
        if (!api_name_valid(name))
            return api_reply_error(rep, 400, "bad VM name");
        if (!peer || !api_name_valid(peer))
            return api_reply_error(rep, 400, "peer: a peer host's name");
        godwitd_store_lock(d);
        ret = store_peer_get(d->store, peer, &p);
        godwitd_store_unlock(d);
        if (ret < 0)
            return api_reply_error(rep, 404, "no peer named '%s' (see godwit peer list)", peer);
        return migrate_cold_post(req, rep, mode);
    }
    const char *postcopy = json_string_value(json_object_get(req->body, "postcopy"));
    if (postcopy && strcmp(postcopy, "on") && strcmp(postcopy, "auto"))
        return api_reply_error(rep, 400, "postcopy: on or auto");
    if (dl < 0 || dl > 2000000 || bw < 0 || bw > 1000000)
        return api_reply_error(rep, 400,
                               "downtime_limit: 0-2000000 ms; bandwidth: 0-1000000 Mbit/s");
    json_int_t gu = json_integer_value(json_object_get(req->body, "give_up_after"));
    if (json_object_get(req->body, "give_up_after") && (gu < 1 || gu > 7 * 86400))
        return api_reply_error(rep, 400, "give_up_after: 1-604800 s");
    godwitd_store_lock(d);
    ret = store_vm_get(d->store, name, &vm);
    if (ret == 0) {
        bool running = !strcmp(vm.state, "running");
        char state[STORE_WORD_MAX];
        snprintf(state, sizeof(state), "%s", vm.state);
        store_vm_clear(&vm);
        if (!running) {
            godwitd_store_unlock(d);
            return api_reply_error(rep, 409, "VM %s is %s: a live migration needs it running", name,
                                   state);
        }
    }
    if (ret == 0)
        ret = store_peer_get(d->store, peer, &p) == 0 ? 0 : -ESRCH;
    if (ret == 0 && store_job_list(d->store, true, &jobs, &njobs) == 0) {
        for (size_t i = 0; i < njobs; i++)
            if (!strcmp(jobs[i].vm, name))
                ret = -EBUSY, id = jobs[i].id;
        store_job_list_free(jobs, njobs);
    }
    godwitd_store_unlock(d);
    if (ret == -ENOENT)
        return api_reply_error(rep, 404, "no VM named '%s' on host %s", name, d->name);
    if (ret == -ESRCH)
        return api_reply_error(rep, 404, "no peer named '%s' (see godwit peer list)", peer);
    if (ret == -EBUSY)
        return api_reply_error(rep, 409, "VM %s already has a job running (%lld)", name,
                               (long long)id);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", store_errmsg(d->store));
    jobs_who(req, who, sizeof(who));
    json_t *opts =
        json_pack("{s:s,s:I,s:I}", "mode", "live", "downtime_limit", dl, "bandwidth", bw);
    if (window)
        json_object_set_new(opts, "window", json_string(window));
    if (gu > 0)
        json_object_set_new(opts, "give_up_after", json_integer(gu));
    if (after_vm)
        json_object_set_new(opts, "after_vm", json_string(after_vm));
    if (dlim > 0)
        json_object_set_new(opts, "dirty_limit", json_integer(dlim));
    if (postcopy)
        json_object_set_new(opts, "postcopy", json_string(postcopy));
    struct job_hold_spec holds[2];
    size_t nholds = migrate_start_holds(d, req, holds);
    ret = migrate_live_start(d, name, peer, who, opts, holds, nholds, &id, err, sizeof(err));
    json_decref((json_t *)holds[0].lift);
    json_decref((json_t *)holds[1].lift);
    json_decref(opts);
    if (ret < 0)
        return api_reply_error(rep, 500, "%s", err);
    /* the plan as it stands now (the job makes it again in its precheck,
     * which also refuses what cannot move) */
    json_t *reply = json_pack("{s:I}", "job", (json_int_t)id), *def = vm_definition(d, name), *plan;
    if (def && migrate_live_plan(d, name, def, &plan, NULL, err, sizeof(err)) == 0)
        json_object_set_new(reply, "plan", plan);
    json_decref(def);
    api_reply_json(rep, 202, reply);
}

static const struct api_field migrate_body[] = {
    {"peer", API_T_STRING, true},           {"mode", API_T_STRING, false},
    {"downtime_limit", API_T_INT, false},   {"bandwidth", API_T_INT, false},
    {"shutdown_timeout", API_T_INT, false}, {"force", API_T_BOOL, false},
    {"no_start", API_T_BOOL, false},        {"confirm", API_T_STRING, false},
    {"confirm_window", API_T_INT, false},   {"suspend", API_T_BOOL, false},
    {"resume", API_T_BOOL, false},          {"after", API_T_INT, false},
    {"give_up_after", API_T_INT, false},    {"window", API_T_STRING, false},
    {"after_vm", API_T_STRING, false},      {"dirty_limit", API_T_INT, false},
    {"postcopy", API_T_STRING, false},      {NULL, 0, false}};

const struct api_route migrate_routes[] = {
    {"POST", "/1.0/vms/{name}/migrate", migrate_post, migrate_body, 0},
};
const size_t migrate_nroutes = GW_ARRAY_SIZE(migrate_routes);

int migrate_init(struct godwitd *d, char *err, size_t errlen)
{
    migrate_live_register(d);
    migrate_cold_register(d);
    return migrate_in_init(d, err, errlen);
}

void migrate_fini(struct godwitd *d)
{
    migrate_in_fini(d);
}
