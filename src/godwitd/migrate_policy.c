/*
 * What decides whether and when a migration may go (migrate.h,
 * docs/holds.md): the precheck call that waits while the destination is
 * busy, the host's policy (STATE/policy.json: label rules, approvals,
 * budgets) and the holds a new outgoing migration starts with
 * (dependency, resources).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "godwitd/jobs.h"
#include "godwitd/migrate.h"
#include "godwitd/migrate_cold.h"
#include "godwitd/peers.h"

int migrate_precheck_call(struct job *j, const char *peer, const json_t *body, json_t **reply,
                          char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    bool waiting = false;
    long st = 0;
    int ret;

    for (;;) {
        ret = peer_call(d, peer, "POST", "/1.0/incoming/precheck", body, reply, &st, 15000, err,
                        errlen);
        bool busy = ret == -EREMOTEIO && st == 409 && strstr(err, "migrations at once");
        if (!busy) {
            if (waiting) {
                char by[96];
                snprintf(by, sizeof(by), "host %s has a slot", peer);
                job_lift_own(j, "resources", by);
            }
            return ret;
        }
        if (!waiting) {
            char reason[STORE_TEXT_MAX];
            snprintf(reason, sizeof(reason), "%.300s; asking again every %d s", err,
                     MIGRATE_BUSY_RETRY_S);
            (void)job_hold_own(j, "resources", reason, NULL);
            waiting = true;
        }
        for (int t = 0; t < MIGRATE_BUSY_RETRY_S * 10; t++) {
            if (job_cancelled(j))
                return gw_fail(err, errlen, -ECANCELED, "cancelled while host %s was busy", peer);
            if (job_stopping(j))
                return gw_fail(err, errlen, -ESHUTDOWN, "godwitd stopped");
            usleep(100 * 1000);
        }
    }
}

/* "K=V" and its label object: does it hold? */
static bool policy_label_has(const json_t *labels, const char *kv)
{
    const char *eq = kv ? strchr(kv, '=') : NULL;
    char key[64];

    if (!eq || eq - kv >= (long)sizeof(key))
        return false;
    snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
    const char *v = json_string_value(json_object_get(labels, key));
    return v && !strcmp(v, eq + 1);
}

/* Bytes this host sent to peer since local midnight (every outgoing job
 * created today: its wire bytes, or a live job's RAM sent), except job
 * `skip`. */
static uint64_t budget_used_today(struct godwitd *d, const char *peer, int64_t skip)
{
    struct store_job *v = NULL;
    size_t n = 0;
    uint64_t used = 0;
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    int64_t midnight = (int64_t)mktime(&tm) * 1000;
    godwitd_store_lock(d);
    if (store_job_list(d->store, false, &v, &n) < 0)
        n = 0;
    godwitd_store_unlock(d);
    for (size_t i = 0; i < n; i++) {
        if (v[i].id == skip || strcmp(v[i].direction, "out") || strcmp(v[i].peer, peer) ||
            v[i].created_ms < midnight || !v[i].figures)
            continue;
        json_t *f = json_loads(v[i].figures, 0, NULL);
        json_int_t b = json_integer_value(json_object_get(json_object_get(f, "transfer"), "wire"));
        if (!b)
            b = json_integer_value(json_object_get(json_object_get(f, "ram"), "transferred"));
        if (b > 0)
            used += (uint64_t)b;
        json_decref(f);
    }
    store_job_list_free(v, n);
    return used;
}

int migrate_budget_wait(struct job *j, const char *peer, const json_t *budget, uint64_t need,
                        char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    uint64_t limit = 0;
    bool held = false;

    if (!budget)
        return 0;
    if (json_is_string(budget) && gw_parse_size(json_string_value(budget), &limit) < 0)
        return gw_fail(err, errlen, -EINVAL, "policy budget for %s: a size such as 10G", peer);
    if (json_is_integer(budget))
        limit = (uint64_t)json_integer_value(budget);
    if (!limit)
        return gw_fail(err, errlen, -EINVAL, "policy budget for %s: a size such as 10G", peer);
    if (need > limit)
        return gw_fail(err, errlen, -EPERM,
                       "refused by policy: this migration moves %llu MiB, more than the daily "
                       "budget of %llu MiB to host %s",
                       (unsigned long long)(need >> 20), (unsigned long long)(limit >> 20), peer);
    for (;;) {
        uint64_t used = budget_used_today(d, peer, job_id(j));
        if (used + need <= limit) {
            if (held)
                job_lift_own(j, "budget", "a new day's budget");
            return 0;
        }
        if (!held) {
            char reason[STORE_TEXT_MAX];
            snprintf(reason, sizeof(reason),
                     "the daily budget to host %s is %llu MiB: %llu MiB used today, this needs "
                     "%llu MiB; waits for the next day (local midnight)",
                     peer, (unsigned long long)(limit >> 20), (unsigned long long)(used >> 20),
                     (unsigned long long)(need >> 20));
            (void)job_hold_own(j, "budget", reason, NULL);
            held = true;
        }
        for (int t = 0; t < 50; t++) { /* look again every 5 s */
            if (job_cancelled(j))
                return gw_fail(err, errlen, -ECANCELED, "cancelled while waiting for its budget");
            if (job_stopping(j))
                return gw_fail(err, errlen, -ESHUTDOWN, "godwitd stopped");
            usleep(100 * 1000);
        }
    }
}

int migrate_policy_gate(struct job *j, const json_t *def, const char *peer,
                        const json_t *dst_labels, uint64_t need_bytes, char *err, size_t errlen)
{
    struct godwitd *d = job_daemon(j);
    const json_t *vml = json_object_get(def, "labels"), *rule;
    char path[PATH_MAX + 16], reason[STORE_TEXT_MAX] = "";
    json_error_t jerr;
    json_t *pol;
    size_t i;
    int ret = 0;

    snprintf(path, sizeof(path), "%s/policy.json", d->state_dir);
    if (access(path, F_OK) < 0)
        return 0;
    pol = json_load_file(path, 0, &jerr);
    if (!json_is_object(pol) ||
        (json_object_get(pol, "rules") && !json_is_array(json_object_get(pol, "rules")))) {
        json_decref(pol);
        return gw_fail(err, errlen, -EINVAL, "%s is not a valid policy (%s): refused", path,
                       pol ? "rules: an array" : jerr.text);
    }
    json_array_foreach(json_object_get(pol, "rules"), i, rule)
    {
        const char *when = json_string_value(json_object_get(rule, "vm_label"));
        const char *need = json_string_value(json_object_get(rule, "require_host_label"));
        bool approval = json_is_true(json_object_get(rule, "approval"));
        if (!when || !strchr(when, '=') || (need && !strchr(need, '=')) || (!need && !approval)) {
            ret = gw_fail(err, errlen, -EINVAL, "%s: rule %zu is malformed: refused", path, i);
            break;
        }
        if (!policy_label_has(vml, when))
            continue;
        if (need && !policy_label_has(dst_labels, need)) {
            ret = gw_fail(err, errlen, -EPERM,
                          "refused by policy: VMs labelled %s may only go to hosts labelled %s, "
                          "and host %s is not (rule %zu of %s)",
                          when, need, peer, i, path);
            break;
        }
        if (approval && !reason[0])
            snprintf(reason, sizeof(reason),
                     "VMs labelled %s need an approval to migrate (godwit job approve %lld)%s",
                     when, (long long)job_id(j),
                     json_is_true(json_object_get(pol, "four_eyes"))
                         ? "; four-eyes: not by whoever started it"
                         : "");
    }
    if (ret == 0 && json_object_get(pol, "budget"))
        ret = migrate_budget_wait(j, peer, json_object_get(json_object_get(pol, "budget"), peer),
                                  need_bytes, err, errlen);
    if (ret == 0 && reason[0] && !job_approved(j)) {
        json_t *lift = json_pack("{s:b,s:b}", "approval", 1, "four_eyes",
                                 json_is_true(json_object_get(pol, "four_eyes")));
        ret = jobs_hold(d, job_id(j), "compliance", reason, "policy (policy.json)", lift, NULL, err,
                        errlen);
        json_decref(lift);
    }
    json_decref(pol);
    return ret;
}

size_t migrate_start_holds(struct godwitd *d, const struct api_request *req,
                           struct job_hold_spec *h)
{
    static _Thread_local char reason[2][160];
    json_int_t after = json_integer_value(json_object_get(req->body, "after"));
    unsigned max = d->max_out ? d->max_out : 2, used = 0;
    struct store_job *v = NULL;
    size_t n = 0, k = 0;

    memset(h, 0, 2 * sizeof(*h));
    if (after > 0) {
        snprintf(reason[k], sizeof(reason[k]), "waits for job %lld to finish", (long long)after);
        h[k].type = "dependency";
        h[k].reason = reason[k];
        h[k].lift = json_pack("{s:I}", "after_job", after);
        k++;
    }
    /* this host's outgoing migrations at once: running, not yet waiting
     * for a confirm */
    godwitd_store_lock(d);
    if (store_job_list(d->store, true, &v, &n) == 0)
        for (size_t i = 0; i < n; i++)
            used += !strcmp(v[i].direction, "out") && !strcmp(v[i].status, "running") &&
                    strcmp(v[i].phase, "confirm");
    godwitd_store_unlock(d);
    store_job_list_free(v, n);
    if (used >= max) {
        snprintf(reason[k], sizeof(reason[k]),
                 "host %s runs %u outgoing migrations (--max-migrations %u): waits for a slot",
                 d->name, used, max);
        h[k].type = "resources";
        h[k].reason = reason[k];
        h[k].lift = json_pack("{s:s}", "slot", "out");
        k++;
    }
    return k;
}
