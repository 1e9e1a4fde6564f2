/*
 * `godwit job`: the daemon's jobs (migrations and other long operations).
 *
 *   godwit job list [--all]    unfinished and recently finished jobs (--all: every one)
 *   godwit job show ID         one job: its fields, figures and history
 *   godwit job cancel ID       ask a running job to stop
 *   godwit job watch ID        follow a job until it ends (progress.h)
 *   godwit job confirm ID      a cold or suspended migration: drop the source's copy
 *   godwit job revert ID [--yes]  ... or take the VM back (what it wrote there is lost)
 *   godwit job hold ID --reason TEXT   hold a job (a manual hold): it parks, keeping its progress
 *   godwit job release ID [HOLD]       lift one hold, or every manual one
 *   godwit job approve ID [--note TEXT] lift the compliance holds waiting for an approval
 *
 * --json prints what the daemon answered (list: the array of jobs).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/progress.h"

#define JOB_USAGE                                                                                  \
    "godwit job list [--all] | show ID | cancel ID | watch ID | confirm ID | revert ID [--yes] | " \
    "hold ID --reason TEXT | release ID [HOLD] | approve ID [--note TEXT]  [--json]"

#define JOB_VERB_WAIT_MS 60000 /* confirm / revert: how long to wait for the job to end */

/* A job id from the command line: a positive integer. */
static int job_arg_id(const char *s, int64_t *id)
{
    char *end;
    long long v;

    if (!s || *s < '1' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end || v <= 0)
        return -EINVAL;
    *id = v;
    return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

/* A job that ended (its stream's last state is history). */
static bool job_ended(const char *status)
{
    return !strcmp(status, "done") || !strcmp(status, "failed") || !strcmp(status, "cancelled") ||
           !strcmp(status, "reverted");
}

static long long jms(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* The status, and for a held job why it waits: "held: manual: change
 * freeze"; a live migration's paused or held-converged stream in words:
 * "held (pre-copy paused): manual: change freeze". */
static void job_status_text(const json_t *j, char *out, size_t len)
{
    const json_t *holds = json_object_get(j, "holds"), *h;
    const char *words = cli_progress_stream_words(json_object_get(j, "figures"));
    size_t i, n = 0;

    snprintf(out, len, "%s", jstr(j, "status"));
    if (words && !job_ended(jstr(j, "status")))
        snprintf(out + strlen(out), len - strlen(out), " (%s)", words);
    json_array_foreach(holds, i, h)
    {
        size_t l = strlen(out);
        if (!json_is_null(json_object_get(h, "lifted")) || l + 8 >= len)
            continue;
        snprintf(out + l, len - l, "%s%s: %s", n++ ? "; " : ": ", jstr(h, "type"),
                 jstr(h, "reason"));
    }
}

static int job_list(bool all)
{
    static const char *const headers[] = {"ID", "KIND", "VM", "PEER", "PHASE", "STATUS", "STARTED"};
    json_t *reply = NULL, *jobs, *j;
    struct cli_table *t;
    size_t i;

    if (cli_call("GET", all ? "/1.0/jobs?all=1" : "/1.0/jobs", NULL, &reply, NULL) != 0)
        return CLI_FAIL;
    jobs = json_object_get(reply, "jobs");
    if (!json_is_array(jobs)) {
        json_decref(reply);
        return cli_error("the daemon's job list is not an array");
    }
    if (cli_g.json) {
        cli_print_json(jobs);
        json_decref(reply);
        return CLI_OK;
    }
    if (json_array_size(jobs) == 0) {
        printf(all ? "no jobs\n" : "no jobs (godwit job list --all shows older ones)\n");
        json_decref(reply);
        return CLI_OK;
    }
    t = cli_table_new(GW_ARRAY_SIZE(headers), headers);
    json_array_foreach(jobs, i, j)
    {
        char id[32], kind[72], started[32];
        long long ms = jms(j, "started");

        snprintf(id, sizeof(id), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(j, "id")));
        snprintf(kind, sizeof(kind), "%s %s", jstr(j, "kind"), jstr(j, "direction"));
        cli_fmt_time_ms(started, sizeof(started), ms ? ms : jms(j, "created"));
        char status[160];
        job_status_text(j, status, sizeof(status));
        const char *row[] = {id,     kind,   jstr(j, "vm"), jstr(j, "peer"), jstr(j, "phase"),
                             status, started};
        cli_table_row(t, row);
    }
    cli_table_print(t);
    json_decref(reply);
    return CLI_OK;
}

/* A JSON value on one line (for options and event data). */
static void print_compact(const char *label, const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    printf("%s%s\n", label, s ? s : "?");
    free(s);
}

static void job_print(const json_t *j)
{
    const json_t *fig = json_object_get(j, "figures"), *ram = json_object_get(fig, "ram");
    const json_t *hist = json_object_get(j, "history"), *ev;
    const char *error = jstr(j, "error");
    char a[32], b[32];
    long long start = jms(j, "started"), end = jms(j, "ended");
    size_t i;

    printf("id:          %" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(j, "id")));
    printf("kind:        %s %s\n", jstr(j, "kind"), jstr(j, "direction"));
    printf("vm:          %s\n", jstr(j, "vm"));
    printf("peer:        %s\n", jstr(j, "peer"));
    printf("status:      %s\n", jstr(j, "status"));
    const char *words = cli_progress_stream_words(fig);
    if (words && !job_ended(jstr(j, "status")))
        printf("stream:      %s%s\n", words,
               !strcmp(words, "pre-copy paused")
                   ? " (the VM runs on the source; what was sent is kept)"
                   : "");
    printf("phase:       %s\n", jstr(j, "phase"));
    printf("started by:  %s\n", jstr(j, "started_by"));
    printf("created:     %s\n", cli_fmt_time_ms(a, sizeof(a), jms(j, "created")));
    printf("started:     %s\n", cli_fmt_time_ms(a, sizeof(a), start));
    printf("ended:       %s\n", cli_fmt_time_ms(a, sizeof(a), end));
    if (start > 0 && end >= start)
        printf("duration:    %s\n", cli_fmt_duration_ms(a, sizeof(a), end - start));
    if (error[0])
        printf("error:       %s\n", error);
    if (json_object_size(json_object_get(j, "options")))
        print_compact("options:     ", json_object_get(j, "options"));
    if (json_is_object(ram)) {
        json_t *t = json_object_get(ram, "transferred"), *m = json_object_get(ram, "total");

        if (json_is_number(t) && json_is_number(m))
            printf("ram:         %s of %s sent\n",
                   cli_fmt_bytes(a, sizeof(a), json_number_value(t)),
                   cli_fmt_bytes(b, sizeof(b), json_number_value(m)));
    }
    /* a live migration's disks: the plan, and what went in the stream */
    const json_t *plan = json_object_get(fig, "plan"), *disk = json_object_get(fig, "disk");
    if (json_is_string(json_object_get(plan, "text")))
        printf("disks:       %s\n", jstr(plan, "text"));
    char c[32];
    if (json_is_number(json_object_get(disk, "transferred")))
        printf("disk:        %s sent, %s left of %s%s\n",
               cli_fmt_bytes(a, sizeof(a), json_number_value(json_object_get(disk, "transferred"))),
               cli_fmt_bytes(b, sizeof(b), json_number_value(json_object_get(disk, "remaining"))),
               cli_fmt_bytes(c, sizeof(c), json_number_value(json_object_get(disk, "total"))),
               json_is_true(json_object_get(fig, "x-godwit-mirror")) ? " (mirroring)" : "");
    if (json_integer_value(json_object_get(fig, "x-godwit-recoveries")) > 0)
        printf("recoveries:  %" JSON_INTEGER_FORMAT " (%s re-sent after them)\n",
               json_integer_value(json_object_get(fig, "x-godwit-recoveries")),
               cli_fmt_bytes(a, sizeof(a),
                             (double)json_integer_value(json_object_get(fig, "x-godwit-resent"))));
    if (json_is_number(json_object_get(fig, "downtime")))
        printf("downtime:    %.0f ms\n", json_number_value(json_object_get(fig, "downtime")));
    /* frames that reached the old host across the switchover (docs/net.md) */
    const json_t *fwd = json_object_get(fig, "x-godwit-net-forward");
    if (json_is_object(fwd))
        printf("network:     %" JSON_INTEGER_FORMAT
               " frames forwarded to the new host (%" JSON_INTEGER_FORMAT
               " kept during the pause, %" JSON_INTEGER_FORMAT " dropped)\n",
               json_integer_value(json_object_get(fwd, "forwarded")),
               json_integer_value(json_object_get(fwd, "captured")),
               json_integer_value(json_object_get(fwd, "overflow")));
    const json_t *holds = json_object_get(j, "holds"), *h;
    json_array_foreach(holds, i, h)
    {
        const json_t *lifted = json_object_get(h, "lifted");
        printf("hold %-7" JSON_INTEGER_FORMAT "%s %s, set by %s at %s",
               json_integer_value(json_object_get(h, "id")), jstr(h, "type"), jstr(h, "reason"),
               jstr(h, "set_by"), cli_fmt_time_ms(a, sizeof(a), jms(h, "since")));
        if (json_is_object(lifted))
            printf("; lifted by %s at %s", jstr(lifted, "by"),
                   cli_fmt_time_ms(b, sizeof(b), jms(lifted, "at")));
        printf("\n");
    }
    if (json_object_size(fig))
        print_compact("figures:     ", fig);
    if (json_array_size(hist)) {
        printf("history:\n");
        json_array_foreach(hist, i, ev)
        {
            char line[64];

            snprintf(line, sizeof(line), "  %s  %-14s  ",
                     cli_fmt_time_ms(a, sizeof(a), jms(ev, "time")), jstr(ev, "type"));
            print_compact(line, json_object_get(ev, "data"));
        }
    }
}

static int job_show(int64_t id)
{
    char path[64];
    json_t *j = NULL;

    snprintf(path, sizeof(path), "/1.0/jobs/%" PRId64, id);
    if (cli_call("GET", path, NULL, &j, NULL) != 0)
        return CLI_FAIL;
    if (cli_g.json)
        cli_print_json(j);
    else
        job_print(j);
    json_decref(j);
    return CLI_OK;
}

static int job_cancel(int64_t id)
{
    char path[64];
    json_t *j = NULL;

    snprintf(path, sizeof(path), "/1.0/jobs/%" PRId64 "/cancel", id);
    if (cli_call("POST", path, NULL, &j, NULL) != 0)
        return CLI_FAIL;
    if (cli_g.json)
        cli_print_json(j);
    else if (!strcmp(jstr(j, "status"), "cancelled"))
        printf("job %" PRId64 " cancelled\n", id);
    else
        printf("job %" PRId64 ": cancel asked; it stops at its next safe point "
               "(godwit job watch %" PRId64 ")\n",
               id, id);
    json_decref(j);
    return CLI_OK;
}

/* POST confirm or revert, then wait (a while) for the job to end. */
static int job_verb(int64_t id, const char *verb, bool yes)
{
    char path[64], line[16];
    json_t *j = NULL;

    snprintf(path, sizeof(path), "/1.0/jobs/%" PRId64, id);
    if (cli_call("GET", path, NULL, &j, NULL) != 0)
        return CLI_FAIL;
    if (!strcmp(verb, "revert")) {
        fprintf(stderr,
                "Reverting job %" PRId64 ": the copy of VM %s on %s is stopped and deleted, and "
                "the VM comes back here from its files as they were before the migration.\n"
                "Whatever the guest wrote on %s since then is lost.\n",
                id, jstr(j, "vm"), jstr(j, "peer"), jstr(j, "peer"));
        if (!yes && isatty(STDIN_FILENO)) {
            fprintf(stderr, "Revert? [y/N] ");
            if (!fgets(line, sizeof(line), stdin) || (line[0] != 'y' && line[0] != 'Y')) {
                json_decref(j);
                fprintf(stderr, "nothing done\n");
                return CLI_FAIL;
            }
        }
    }
    json_decref(j);
    j = NULL;
    snprintf(path, sizeof(path), "/1.0/jobs/%" PRId64 "/%s", id, verb);
    if (cli_call("POST", path, NULL, &j, NULL) != 0)
        return CLI_FAIL;
    snprintf(path, sizeof(path), "/1.0/jobs/%" PRId64, id);
    for (int waited = 0; waited < JOB_VERB_WAIT_MS; waited += 200) {
        const char *st = jstr(j, "status");
        if (strcmp(st, "running"))
            break;
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
        json_decref(j);
        j = NULL;
        if (cli_call("GET", path, NULL, &j, NULL) != 0)
            return CLI_FAIL;
    }
    const char *st = jstr(j, "status");
    int ret = CLI_OK;
    if (cli_g.json)
        cli_print_json(j);
    else if (!strcmp(st, "done") && !strcmp(verb, "confirm"))
        printf("job %" PRId64 " confirmed: VM %s lives on %s; its copy here is gone\n", id,
               jstr(j, "vm"), jstr(j, "peer"));
    else if (!strcmp(st, "reverted"))
        printf("job %" PRId64 " reverted: VM %s is back here, its copy on %s is gone\n", id,
               jstr(j, "vm"), jstr(j, "peer"));
    else {
        cli_error("job %" PRId64 " is %s (phase %s) after the %s; see 'godwit job show %" PRId64
                  "'",
                  id, st, jstr(j, "phase"), verb, id);
        ret = CLI_FAIL;
    }
    if (cli_g.json && strcmp(st, strcmp(verb, "confirm") ? "reverted" : "done"))
        ret = CLI_FAIL;
    json_decref(j);
    return ret;
}

static int job_hold(int64_t id, const char *reason)
{
    char path[64];
    json_t *body = json_pack("{s:s,s:s}", "type", "manual", "reason", reason), *r = NULL;
    int ret;

    snprintf(path, sizeof(path), "/1.0/jobs/%" PRId64 "/hold", id);
    ret = cli_call("POST", path, body, &r, NULL);
    json_decref(body);
    if (ret)
        return CLI_FAIL;
    if (cli_g.json)
        cli_print_json(r);
    else
        printf("job %" PRId64 ": hold %" JSON_INTEGER_FORMAT " set (%s); it parks at its next "
               "safe point, keeping what it moved ('godwit job release %" PRId64 "')\n",
               id, json_integer_value(json_object_get(r, "hold")), reason, id);
    json_decref(r);
    return CLI_OK;
}

static int job_approve(int64_t id, const char *note)
{
    char path[64];
    json_t *body = note ? json_pack("{s:s}", "note", note) : json_object(), *r = NULL;
    int ret;

    snprintf(path, sizeof(path), "/1.0/jobs/%" PRId64 "/approve", id);
    ret = cli_call("POST", path, body, &r, NULL);
    json_decref(body);
    if (ret)
        return CLI_FAIL;
    if (cli_g.json) {
        cli_print_json(r);
    } else {
        char status[160];
        job_status_text(r, status, sizeof(status));
        printf("job %" PRId64 ": approved; %s\n", id,
               !strcmp(jstr(r, "status"), "held") ? status : "it goes on");
    }
    json_decref(r);
    return CLI_OK;
}

static int job_release(int64_t id, int64_t hold)
{
    char path[64];
    json_t *body = hold > 0 ? json_pack("{s:I}", "hold", (json_int_t)hold) : json_object();
    json_t *r = NULL;
    int ret;

    snprintf(path, sizeof(path), "/1.0/jobs/%" PRId64 "/release", id);
    ret = cli_call("POST", path, body, &r, NULL);
    json_decref(body);
    if (ret)
        return CLI_FAIL;
    if (cli_g.json) {
        cli_print_json(r);
    } else {
        char status[160];
        job_status_text(r, status, sizeof(status));
        printf("job %" PRId64 ": released; %s\n", id,
               !strcmp(jstr(r, "status"), "held") ? status : "it goes on from where it stopped");
    }
    json_decref(r);
    return CLI_OK;
}

int cli_cmd_job(int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"yes", no_argument, NULL, 'y'},
        {"reason", required_argument, NULL, 'r'},
        {"note", required_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_OPTS,
        {NULL, 0, NULL, 0},
    };
    const char *sub;
    bool all = false, yes = false;
    const char *reason = NULL, *note = NULL;
    int64_t id = 0;
    int c;

    if (argc < 2)
        return cli_usage_error(JOB_USAGE, "'job' needs a subcommand");
    sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        printf("usage: %s\n", JOB_USAGE);
        return CLI_OK;
    }
    if (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "cancel") &&
        strcmp(sub, "watch") && strcmp(sub, "confirm") && strcmp(sub, "revert") &&
        strcmp(sub, "hold") && strcmp(sub, "release") && strcmp(sub, "approve"))
        return cli_usage_error(JOB_USAGE, "unknown job subcommand '%s'", sub);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "h" CLI_COMMON_SHORT, opts, NULL)) != -1) {
        if (c == 'a' && !strcmp(sub, "list"))
            all = true;
        else if (c == 'y' && !strcmp(sub, "revert"))
            yes = true;
        else if (c == 'r' && !strcmp(sub, "hold"))
            reason = optarg;
        else if (c == 'N' && !strcmp(sub, "approve"))
            note = optarg;
        else if (c == 'h') {
            printf("usage: %s\n", JOB_USAGE);
            return CLI_OK;
        } else if (!cli_common_opt(c, optarg))
            /* getopt ran on argv + 1: the option it refused is argv[optind] here */
            return cli_usage_error(JOB_USAGE, "job %s: unknown option or missing value '%s'", sub,
                                   argv[optind] ? argv[optind] : "?");
    }
    argc -= optind + 1;
    argv += optind + 1;
    if (!strcmp(sub, "list")) {
        if (argc > 0)
            return cli_usage_error(JOB_USAGE, "job list: unexpected argument '%s'", argv[0]);
        return job_list(all);
    }
    if (!strcmp(sub, "release") && argc == 2) { /* release ID HOLD */
        int64_t hold;
        if (job_arg_id(argv[0], &id) < 0 || job_arg_id(argv[1], &hold) < 0)
            return cli_usage_error(JOB_USAGE, "job release: a job ID and a hold ID");
        return job_release(id, hold);
    }
    if (argc != 1)
        return cli_usage_error(
            JOB_USAGE, argc ? "job %s: one job ID, please" : "job %s: which job? give its ID", sub);
    if (job_arg_id(argv[0], &id) < 0)
        return cli_usage_error(JOB_USAGE, "job %s: '%s' is not a job ID (a positive integer)", sub,
                               argv[0]);
    if (!strcmp(sub, "show"))
        return job_show(id);
    if (!strcmp(sub, "cancel"))
        return job_cancel(id);
    if (!strcmp(sub, "confirm") || !strcmp(sub, "revert"))
        return job_verb(id, sub, yes);
    if (!strcmp(sub, "hold")) {
        if (!reason || !reason[0])
            return cli_usage_error(JOB_USAGE, "job hold: say why with --reason TEXT");
        return job_hold(id, reason);
    }
    if (!strcmp(sub, "release"))
        return job_release(id, 0);
    if (!strcmp(sub, "approve"))
        return job_approve(id, note);
    return cli_progress_follow(id);
}
