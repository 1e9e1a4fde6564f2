/*
 * `godwit migrate NAME PEER [--live|--cold|--suspend] [options]`
 *
 * Moves VM NAME from this host to the trusted peer PEER.  Live (the default
 * for a running VM): it keeps running while memory, CPU and devices
 * stream.  Cold (--cold, the default for a stopped VM): it is powered off,
 * its definition, boot files and disks move, it starts there.  Suspended
 * (the default for a suspended VM, or --suspend to suspend it first): its
 * saved state moves with its files and it wakes up there with --resume.
 * The daemon makes a job and answers at once; the command then follows the
 * job with the progress display (src/cli/progress.h) until it ends (live)
 * or the VM arrived and the job waits for confirm (cold, suspended), or
 * with --detach prints the job id and returns.  With --json the final
 * result is one object on stdout: job, vm, source, destination, status,
 * phase, error, total_time_ms, downtime_ms, bytes, rounds, figures, plan
 * (live: where the disks go, migrate.h's migrate_live_plan; the human
 * output prints its text first as "disks: ...").  Exit
 * 0 when the VM arrived on PEER, 1 when the migration failed (the VM is
 * back here as it was unless the message says otherwise), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/progress.h"

#define MIGRATE_USAGE                                                                              \
    "godwit migrate NAME PEER [--live [--downtime-limit MS] [--dirty-limit MBPS] | --cold "        \
    "[--shutdown-timeout S] "                                                                      \
    "[--force] [--no-start] | --suspend [--resume]] [--confirm auto|manual] "                      \
    "[--confirm-window S] [--give-up-after S] [--bandwidth MBPS] [--after JOB] [--after-vm "       \
    "NAME@PEER] "                                                                                  \
    "[--window HH:MM-HH:MM|FROM/TO] [--detach] [--json]"

static void migrate_help(void)
{
    printf("usage: %s\n"
           "\n"
           "Move VM NAME to the peer host PEER (see 'godwit peer list').  The kind follows\n"
           "the VM's state unless one is given: running -> live, suspended -> suspended,\n"
           "stopped -> cold.\n"
           "\n"
           "  --live               live migration: memory, CPU and devices stream while the\n"
           "                       VM runs; the pause at the switchover is milliseconds;\n"
           "                       disks not on shared storage stream with them (their\n"
           "                       allocated data only; the plan printed first says so)\n"
           "  --downtime-limit MS  the longest pause allowed at the switchover (default 300)\n"
           "  --dirty-limit MBPS   if pre-copy stops converging, slow each vCPU that dirties\n"
           "                       more than MBPS MiB/s of memory to about that (the others\n"
           "                       run at full speed); QEMU's dirty-limit (docs/state.md)\n"
           "  --postcopy[=auto]    post-copy: the VM runs on the destination after the first\n"
           "                       pre-copy pass and fetches the memory it still lacks\n"
           "                       (=auto: only when pre-copy cannot converge).  It cannot\n"
           "                       roll back: a lost link or a failed host after the switch\n"
           "                       loses the VM.  Not with disks that move in the stream\n"
           "  --cold               power the VM off (through its guest agent), move its\n"
           "                       definition, boot files and disks, start it there\n"
           "  --shutdown-timeout S wait S seconds for the guest to power off (default 120);\n"
           "                       then the job fails and the VM keeps running...\n"
           "  --force              ...unless --force: then it is powered off\n"
           "  --no-start           leave it stopped on the destination\n"
           "  --suspend            save the running VM's state, move it with its files\n"
           "                       (a suspended VM moves this way without --suspend)\n"
           "  --resume             resume the suspended VM on the destination (default: it\n"
           "                       stays suspended there)\n"
           "  --confirm auto|manual  cold and suspended: the source keeps its copy, read-only,\n"
           "                       until 'godwit job confirm ID' or 'godwit job revert ID';\n"
           "                       auto (the default) confirms by itself after the window\n"
           "  --confirm-window S   how long auto waits (default 600 s)\n"
           "  --bandwidth MBPS     cap the transfer at MBPS megabits per second (default: none)\n"
           "  --give-up-after S    a peer that stops answering (or a lost link) puts the job\n"
           "                       on a technical hold while it retries (a live one pauses\n"
           "                       pre-copy and keeps what was sent); after S seconds\n"
           "                       (default 3600) it fails and the VM runs on / is put back\n"
           "  --window HH:MM-HH:MM  switch over only inside this daily window (local time; may\n"
           "                       cross midnight), or FROM/TO (two ISO 8601 times): the\n"
           "                       transfer may run before it; a live migration that converged\n"
           "                       waits held-converged (the VM runs here, the destination kept\n"
           "                       in sync under --bandwidth); meanwhile the job is held (window)\n"
           "  --after JOB          hold the migration until job JOB of this host has finished\n"
           "                       (a dependency hold: 'godwit job show' lists it)\n"
           "  --after-vm NAME@PEER hold the migration until VM NAME runs on host PEER (a peer\n"
           "                       or this host; a dependency hold, asked every 2 s)\n"
           "  --detach             print the job id and return; follow it with\n"
           "                       'godwit job watch ID'\n"
           "  --json               print the result as JSON\n"
           "\n"
           "Until the VM has arrived, any failure leaves it here as it was (started again\n"
           "if the migration had shut it down).  Exit status: 0 moved, 1 failed, 2 usage.\n",
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

/* The --json result of a finished migration job (plan: the daemon's
 * answer's, used when the job's figures have none). */
static json_t *migrate_result(const json_t *job, const char *host, const json_t *plan)
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
    json_object_set(r, "plan",
                    json_object_get(f, "plan") ? json_object_get(f, "plan") : (json_t *)plan);
    /* absent figures are nulls, not missing keys: scripts index them */
    const char *keys[] = {"error",  "total_time_ms", "downtime_ms", "bytes",
                          "rounds", "figures",       "plan"};
    for (size_t i = 0; i < GW_ARRAY_SIZE(keys); i++)
        if (!json_object_get(r, keys[i]))
            json_object_set_new(r, keys[i], json_null());
    return r;
}

/* A cold or suspended job whose VM arrived: where it stands, and what the
 * operator does next. */
static void migrate_arrived(const json_t *job, int64_t id)
{
    const char *phase = json_string_value(json_object_get(job, "phase"));
    const json_t *f = json_object_get(job, "figures");
    const json_t *res = json_object_get(f, "result"), *cf = json_object_get(f, "confirm");
    const char *vs = json_string_value(json_object_get(res, "vm_state"));
    const char *verify = json_string_value(json_object_get(res, "verify"));
    const char *clock = json_string_value(json_object_get(res, "clock"));
    json_int_t deadline = json_integer_value(json_object_get(cf, "deadline"));
    const char *cmode = json_string_value(json_object_get(cf, "mode"));

    if (!phase || strcmp(phase, "confirm"))
        return;
    printf("VM %s arrived on %s: %s", json_string_value(json_object_get(job, "vm")),
           json_string_value(json_object_get(job, "peer")), vs ? vs : "?");
    if (verify && verify[0])
        printf(" (%s)", verify);
    printf("\n");
    if (clock && clock[0])
        printf("%s\n", clock);
    printf("The copy here is kept, read-only, until 'godwit job confirm %" PRId64
           "' or 'godwit job revert %" PRId64 "'",
           id, id);
    if (cmode && !strcmp(cmode, "auto") && deadline > 0) {
        time_t t = (time_t)(deadline / 1000);
        struct tm tm;
        char when[32];
        localtime_r(&t, &tm);
        strftime(when, sizeof(when), "%H:%M:%S", &tm);
        printf("; it confirms by itself at %s", when);
    }
    printf(".\n");
}

int cli_cmd_migrate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"live", no_argument, NULL, 'l'},
        {"cold", no_argument, NULL, 'c'},
        {"suspend", no_argument, NULL, 's'},
        {"resume", no_argument, NULL, 'r'},
        {"shutdown-timeout", required_argument, NULL, 't'},
        {"force", no_argument, NULL, 'f'},
        {"no-start", no_argument, NULL, 'n'},
        {"confirm", required_argument, NULL, 'C'},
        {"confirm-window", required_argument, NULL, 'W'},
        {"after", required_argument, NULL, 'A'},
        {"after-vm", required_argument, NULL, 'V'},
        {"give-up-after", required_argument, NULL, 'G'},
        {"window", required_argument, NULL, 'w'},
        {"downtime-limit", required_argument, NULL, 'd'},
        {"dirty-limit", required_argument, NULL, 'L'},
        {"postcopy", optional_argument, NULL, 'P'},
        {"bandwidth", required_argument, NULL, 'b'},
        {"detach", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    long long downtime = -1, bandwidth = -1, dirty_limit = -1, shutdown = -1, window = -1,
              after = -1, give_up = -1;
    bool detach = false, force = false, no_start = false, resume = false;
    const char *mode = NULL, *confirm = NULL, *win_spec = NULL, *after_vm = NULL;
    const char *postcopy = NULL;
    json_t *body, *reply = NULL, *host = NULL, *job = NULL, *plan;
    char path[160];
    int c, ret;
    int64_t id;

    optind = 1;
    while ((c = getopt_long(argc, argv, "h" CLI_COMMON_SHORT, opts, NULL)) != -1) {
        switch (c) {
        case 'l':
        case 'c':
        case 's':
            if (mode && strcmp(mode, c == 'l' ? "live" : c == 'c' ? "cold" : "suspended"))
                return cli_usage_error(MIGRATE_USAGE, "--live, --cold and --suspend exclude "
                                                      "each other");
            mode = c == 'l' ? "live" : c == 'c' ? "cold" : "suspended";
            break;
        case 'r': resume = true; break;
        case 'f': force = true; break;
        case 'n': no_start = true; break;
        case 't':
            if (migrate_number("--shutdown-timeout", optarg, 3600, &shutdown))
                return CLI_USAGE;
            break;
        case 'W':
            if (migrate_number("--confirm-window", optarg, 30 * 86400, &window))
                return CLI_USAGE;
            break;
        case 'w': win_spec = optarg; break;
        case 'V':
            if (!strchr(optarg, '@') || optarg[0] == '@' || !optarg[strcspn(optarg, "@") + 1])
                return cli_usage_error(MIGRATE_USAGE, "--after-vm: NAME@PEER");
            after_vm = optarg;
            break;
        case 'G':
            if (migrate_number("--give-up-after", optarg, 7 * 86400, &give_up) || give_up == 0)
                return cli_usage_error(MIGRATE_USAGE, "--give-up-after: 1 to 604800 seconds");
            break;
        case 'A':
            if (migrate_number("--after", optarg, INT64_MAX, &after) || after == 0)
                return cli_usage_error(MIGRATE_USAGE, "--after: a job ID");
            break;
        case 'C':
            if (strcmp(optarg, "auto") && strcmp(optarg, "manual"))
                return cli_usage_error(MIGRATE_USAGE, "--confirm: auto or manual");
            confirm = optarg;
            break;
        case 'd':
            if (migrate_number("--downtime-limit", optarg, 2000000, &downtime))
                return CLI_USAGE;
            break;
        case 'b':
            if (migrate_number("--bandwidth", optarg, 1000000, &bandwidth))
                return CLI_USAGE;
            break;
        case 'L':
            if (migrate_number("--dirty-limit", optarg, 1000000, &dirty_limit) || dirty_limit == 0)
                return cli_usage_error(MIGRATE_USAGE, "--dirty-limit: 1 to 1000000 MiB/s");
            break;
        case 'P':
            if (optarg && strcmp(optarg, "auto"))
                return cli_usage_error(MIGRATE_USAGE, "--postcopy or --postcopy=auto");
            postcopy = optarg ? "auto" : "on";
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
    if (mode && !strcmp(mode, "live") &&
        (shutdown >= 0 || force || no_start || resume || confirm || window >= 0))
        return cli_usage_error(MIGRATE_USAGE, "--shutdown-timeout, --force, --no-start, --resume "
                                              "and --confirm are for cold and suspended "
                                              "migration");
    if ((!mode || strcmp(mode, "live")) && downtime >= 0 && mode)
        return cli_usage_error(MIGRATE_USAGE, "--downtime-limit is for live migration");
    if ((!mode || strcmp(mode, "live")) && dirty_limit > 0 && mode)
        return cli_usage_error(MIGRATE_USAGE, "--dirty-limit is for live migration");
    if (postcopy && mode && strcmp(mode, "live"))
        return cli_usage_error(MIGRATE_USAGE, "--postcopy is for live migration");
    if (mode && !strcmp(mode, "cold") && resume)
        return cli_usage_error(MIGRATE_USAGE, "--resume is for suspended migration");
    body = json_pack("{s:s,s:s}", "peer", argv[optind + 1], "mode", mode ? mode : "auto");
    if (mode && !strcmp(mode, "suspended"))
        json_object_set_new(body, "suspend", json_true());
    if (shutdown >= 0)
        json_object_set_new(body, "shutdown_timeout", json_integer(shutdown));
    if (window >= 0)
        json_object_set_new(body, "confirm_window", json_integer(window));
    if (force)
        json_object_set_new(body, "force", json_true());
    if (no_start)
        json_object_set_new(body, "no_start", json_true());
    if (resume)
        json_object_set_new(body, "resume", json_true());
    if (confirm)
        json_object_set_new(body, "confirm", json_string(confirm));
    if (after > 0)
        json_object_set_new(body, "after", json_integer(after));
    if (after_vm)
        json_object_set_new(body, "after_vm", json_string(after_vm));
    if (win_spec)
        json_object_set_new(body, "window", json_string(win_spec));
    if (give_up > 0)
        json_object_set_new(body, "give_up_after", json_integer(give_up));
    if (downtime >= 0)
        json_object_set_new(body, "downtime_limit", json_integer(downtime));
    if (bandwidth >= 0)
        json_object_set_new(body, "bandwidth", json_integer(bandwidth));
    if (dirty_limit > 0)
        json_object_set_new(body, "dirty_limit", json_integer(dirty_limit));
    if (postcopy) {
        json_object_set_new(body, "postcopy", json_string(postcopy));
        if (!cli_g.json)
            fprintf(stderr,
                    "warning: post-copy cannot roll back: once %s runs on %s, a lost link or a "
                    "failed host before every page has arrived loses the VM on both hosts\n",
                    argv[optind], argv[optind + 1]);
    }
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
    plan = json_incref(json_object_get(reply, "plan"));
    json_decref(reply);
    if (id <= 0) {
        json_decref(plan);
        return cli_error("the daemon answered without a job id");
    }
    /* the plan before the job goes: where the disks go, the bytes they move */
    if (!cli_g.json && plan)
        printf("disks: %s\n", json_string_value(json_object_get(plan, "text")) ?: "?");
    if (detach) {
        if (cli_g.json) {
            json_t *o = json_pack("{s:I}", "job", (json_int_t)id);
            if (plan)
                json_object_set(o, "plan", plan);
            cli_print_json(o);
            json_decref(o);
        } else {
            printf("job %" PRId64 ": migrating %s to %s (follow it with 'godwit job watch %" PRId64
                   "')\n",
                   id, argv[optind], argv[optind + 1], id);
        }
        json_decref(plan);
        return CLI_OK;
    }
    ret = cli_progress_follow_job(id, &job, true);
    if (!cli_g.json && job && ret == CLI_OK)
        migrate_arrived(job, id);
    if (cli_g.json && job) {
        if (cli_call("GET", "/1.0", NULL, &host, NULL) != 0)
            host = NULL;
        json_t *r = migrate_result(job, json_string_value(json_object_get(host, "host")), plan);
        cli_print_json(r);
        json_decref(r);
        json_decref(host);
    }
    json_decref(job);
    json_decref(plan);
    return ret;
}
