/*
 * `godwit migrate NAME PEER [--live] [--downtime-limit MS] [--bandwidth MBPS] [--detach]`
 *
 * Moves VM NAME from this host to the trusted peer PEER while it runs
 * (live; the default and today the only kind).  The daemon makes a job and
 * answers at once; the command then follows the job with the progress
 * display (src/cli/progress.h) until it ends, or with --detach prints the
 * job id and returns.  With --json the final result is one object on
 * stdout: job, vm, source, destination, status, error, total_time_ms,
 * downtime_ms, bytes, rounds (and the job's figures as the daemon stored
 * them).  Exit 0 when the VM runs on PEER, 1 when the migration failed (the
 * VM runs here unless the message says otherwise), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/progress.h"

#define MIGRATE_USAGE                                                                              \
    "godwit migrate NAME PEER [--live] [--downtime-limit MS] [--bandwidth MBPS] [--detach] "       \
    "[--json]"

static void migrate_help(void)
{
    printf("usage: %s\n"
           "\n"
           "Move VM NAME to the peer host PEER (see 'godwit peer list') while it runs.\n"
           "\n"
           "  --live               live migration: memory, CPU and devices stream while the\n"
           "                       VM runs; the pause at the switchover is milliseconds\n"
           "                       (the default; cold and suspended migration come later)\n"
           "  --downtime-limit MS  the longest pause allowed at the switchover (default 300)\n"
           "  --bandwidth MBPS     cap the stream at MBPS megabits per second (default: none)\n"
           "  --detach             print the job id and return; follow it with\n"
           "                       'godwit job watch ID'\n"
           "  --json               print the result as JSON\n"
           "\n"
           "Until the destination confirms the VM runs there, any failure leaves it running\n"
           "here.  Exit status: 0 moved, 1 failed, 2 usage.\n",
           MIGRATE_USAGE);
}

static int migrate_number(const char *opt, const char *s, long long max, long long *out)
{
    char *end;

    errno = 0;
    *out = strtoll(s, &end, 10);
    if (errno || end == s || *end || *out < 0 || *out > max)
        return cli_usage_error(MIGRATE_USAGE, "%s '%s': a number from 0 to %lld", opt, s, max);
    return 0;
}

/* The --json result of a finished migration job. */
static json_t *migrate_result(const json_t *job, const char *host)
{
    const json_t *f = json_object_get(job, "figures"), *ram = json_object_get(f, "ram");
    json_t *r = json_object();

    json_object_set(r, "job", json_object_get(job, "id"));
    json_object_set(r, "vm", json_object_get(job, "vm"));
    json_object_set_new(r, "source", json_string(host));
    json_object_set(r, "destination", json_object_get(job, "peer"));
    json_object_set(r, "status", json_object_get(job, "status"));
    json_object_set(r, "phase", json_object_get(job, "phase"));
    json_object_set(r, "error", json_object_get(job, "error"));
    json_object_set(r, "total_time_ms", json_object_get(f, "total-time"));
    json_object_set(r, "downtime_ms", json_object_get(f, "downtime"));
    json_object_set(r, "bytes", json_object_get(ram, "transferred"));
    json_object_set(r, "rounds", json_object_get(ram, "dirty-sync-count"));
    json_object_set(r, "figures", (json_t *)f);
    /* absent figures are nulls, not missing keys: scripts index them */
    const char *keys[] = {"error", "total_time_ms", "downtime_ms", "bytes", "rounds", "figures"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(keys); i++)
        if (!json_object_get(r, keys[i]))
            json_object_set_new(r, keys[i], json_null());
    return r;
}

int cli_cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"live", no_argument, NULL, 'l'},
        {"downtime-limit", required_argument, NULL, 'd'},
        {"bandwidth", required_argument, NULL, 'b'},
        {"detach", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    long long downtime = -1, bandwidth = -1;
    bool detach = false;
    json_t *body, *reply = NULL, *host = NULL, *job = NULL;
    char path[160];
    int c, ret;
    int64_t id;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h" CLI_COMMON_SHORT, opts, NULL)) != -1) {
        switch (c) {
        case 'l': break;
        case 'd':
            if (migrate_number("--downtime-limit", optarg, 2000000, &downtime))
                return CLI_USAGE;
            break;
        case 'b':
            if (migrate_number("--bandwidth", optarg, 1000000, &bandwidth))
                return CLI_USAGE;
            break;
        case 'D': detach = true; break;
        case 'h': migrate_help(); return CLI_OK;
        default:
            if (cli_common_opt(c, optarg))
                break;
            return cli_usage_error(MIGRATE_USAGE, "bad option");
        }
    }
    if (argc - optind != 2)
        return cli_usage_error(MIGRATE_USAGE, "migrate takes a VM name and a peer name");
    body = json_pack("{s:s,s:s}", "peer", argv[optind + 1], "mode", "live");
    if (downtime >= 0)
        json_object_set_new(body, "downtime_limit", json_integer(downtime));
    if (bandwidth >= 0)
        json_object_set_new(body, "bandwidth", json_integer(bandwidth));
    snprintf(path, sizeof(path), "/1.0/vms/%s/migrate", argv[optind]);
    if (strchr(argv[optind], '/') || strchr(argv[optind], '?') || strlen(argv[optind]) > 63) {
        json_decref(body);
        return cli_error("bad VM name '%s'", argv[optind]);
    }
    ret = cli_call("POST", path, body, &reply, NULL);
    json_decref(body);
    if (ret)
        return ret;
    id = json_integer_value(json_object_get(reply, "job"));
    json_decref(reply);
    if (id <= 0)
        return cli_error("the daemon answered without a job id");
    if (detach) {
        if (cli_g.json) {
            json_t *o = json_pack("{s:I}", "job", (json_int_t)id);
            cli_print_json(o);
            json_decref(o);
        } else {
            printf("job %" PRId64 ": migrating %s to %s (follow it with 'godwit job watch %" PRId64
                   "')\n",
                   id, argv[optind], argv[optind + 1], id);
        }
        return CLI_OK;
    }
    ret = cli_progress_follow_job(id, &job);
    if (cli_g.json && job) {
        if (cli_call("GET", "/1.0", NULL, &host, NULL) != 0)
            host = NULL;
        json_t *r = migrate_result(job, json_string_value(json_object_get(host, "host")));
        cli_print_json(r);
        json_decref(r);
        json_decref(host);
    }
    json_decref(job);
    return ret;
}
