/*
 * `godwit peer ...`: the hosts this one trusts (docs/godwitd.md, "Trust
 * between hosts" and "Peers API").
 *
 *   godwit peer token [--ttl SECONDS] [--address HOST:PORT]
 *   godwit peer add NAME TOKEN
 *   godwit peer list
 *   godwit peer show NAME [--check]
 *   godwit peer remove NAME
 *
 * Every one takes --json.  Pairing is made by the daemons: the CLI only
 * hands the token to its own daemon.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define PEER_USAGE                                                                                 \
    "godwit peer token [--ttl SECONDS] [--address HOST:PORT] | add NAME TOKEN | list |\n"          \
    "                   show NAME [--check] | remove NAME   [--json]"

/* The daemon's rule (api_name_valid), checked here too so that a bad name
 * never becomes a strange URL. */
static bool peer_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 63 || !(name[0] >= 'a' && name[0] <= 'z'))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return false;
    return true;
}

/* Parse the options of a subcommand (argv[0] is its name): the common
 * ones, plus the ones in extra.  Returns the index of the first operand,
 * or -1 after a usage message. */
static int peer_opts(int argc, char **argv, const struct option *extra, size_t nextra,
                     int (*take)(int c, const char *arg, void *cls), void *cls)
{
    struct option opts[8] = {CLI_COMMON_OPTS};
    size_t n = 2;
    int c;

    for (size_t i = 0; i < nextra && n + 1 < GW_ARRAY_SIZE(opts); i++)
        opts[n++] = extra[i];
    opts[n] = (struct option){NULL, 0, NULL, 0};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, CLI_COMMON_SHORT, opts, NULL)) != -1) {
        if (cli_common_opt(c, optarg))
            continue;
        if (c != '?' && c != ':' && take && take(c, optarg, cls) == 0)
            continue;
        if (c == '?' || c == ':')
            cli_usage_error(PEER_USAGE, "peer %s: unknown option or missing value '%s'", argv[0],
                            argv[optind - 1]);
        return -1;
    }
    return optind;
}

/* ---- token ---------------------------------------------------------------- */

struct token_opts {
    long long ttl; /* 0: the daemon's default */
    const char *address;
    bool bad;
};

static int token_take(int c, const char *arg, void *cls)
{
    struct token_opts *o = cls;
    char *end;

    switch (c) {
    case 't':
        errno = 0;
        o->ttl = strtoll(arg, &end, 10);
        if (errno || end == arg || *end || o->ttl <= 0) {
            cli_usage_error(PEER_USAGE, "--ttl '%s': a number of seconds", arg);
            o->bad = true;
            return -1;
        }
        return 0;
    case 'a': o->address = arg; return 0;
    default: return -1;
    }
}

static int peer_token(int argc, char **argv)
{
    static const struct option extra[] = {
        {"ttl", required_argument, NULL, 't'},
        {"address", required_argument, NULL, 'a'},
    };
    struct token_opts o = {0, NULL, false};
    json_t *body, *reply = NULL;
    char when[64];
    int i = peer_opts(argc, argv, extra, GW_ARRAY_SIZE(extra), token_take, &o);

    if (i < 0)
        return CLI_USAGE;
    if (i < argc)
        return cli_usage_error(PEER_USAGE, "peer token: unexpected argument '%s'", argv[i]);
    body = json_object();
    if (o.ttl)
        json_object_set_new(body, "ttl", json_integer(o.ttl));
    if (o.address)
        json_object_set_new(body, "address", json_string(o.address));
    int ret = cli_call("POST", "/1.0/peers/tokens", body, &reply, NULL);
    json_decref(body);
    if (ret)
        return CLI_FAIL;
    if (cli_g.json) {
        cli_print_json(reply);
    } else {
        printf("%s\n", json_string_value(json_object_get(reply, "token")));
        fprintf(stderr,
                "godwit: a single-use join token for %s, valid until %s; on the other host run:\n"
                "  godwit peer add NAME TOKEN   (NAME: this host's name)\n",
                json_string_value(json_object_get(reply, "address")),
                cli_fmt_time_ms(when, sizeof(when),
                                json_integer_value(json_object_get(reply, "expires")) * 1000));
    }
    json_decref(reply);
    return CLI_OK;
}

/* ---- add ------------------------------------------------------------------ */

static int peer_add(int argc, char **argv)
{
    json_t *body, *reply = NULL;
    int i = peer_opts(argc, argv, NULL, 0, NULL, NULL);

    if (i < 0)
        return CLI_USAGE;
    if (argc - i != 2)
        return cli_usage_error(PEER_USAGE, "peer add: give NAME and TOKEN");
    if (!peer_name_ok(argv[i]))
        return cli_usage_error(PEER_USAGE,
                               "invalid peer name '%s': 1-63 characters of a-z, 0-9 and '-', "
                               "starting with a letter",
                               argv[i]);
    body = json_pack("{s:s,s:s}", "name", argv[i], "token", argv[i + 1]);
    int ret = cli_call("POST", "/1.0/peers", body, &reply, NULL);
    json_decref(body);
    if (ret)
        return CLI_FAIL;
    if (cli_g.json)
        cli_print_json(reply);
    else
        printf("added peer %s at %s (certificate %s)\n",
               json_string_value(json_object_get(reply, "name")),
               json_string_value(json_object_get(reply, "address")),
               json_string_value(json_object_get(reply, "fingerprint")));
    json_decref(reply);
    return CLI_OK;
}

/* ---- list / show -------------------------------------------------------- */

static int peer_list(int argc, char **argv)
{
    static const char *const hdr[] = {"NAME", "ADDRESS", "FINGERPRINT", "ADDED"};
    json_t *reply = NULL, *p;
    size_t k;
    int i = peer_opts(argc, argv, NULL, 0, NULL, NULL);

    if (i < 0)
        return CLI_USAGE;
    if (i < argc)
        return cli_usage_error(PEER_USAGE, "peer list: unexpected argument '%s'", argv[i]);
    if (cli_call("GET", "/1.0/peers", NULL, &reply, NULL))
        return CLI_FAIL;
    if (cli_g.json) {
        cli_print_json(reply);
        json_decref(reply);
        return CLI_OK;
    }
    struct cli_table *t = cli_table_new(4, hdr);
    json_array_foreach(reply, k, p)
    {
        char when[64];
        const char *addr = json_string_value(json_object_get(p, "address"));
        const char *row[4] = {
            json_string_value(json_object_get(p, "name")),
            addr ? addr : "-",
            json_string_value(json_object_get(p, "fingerprint")),
            cli_fmt_time_ms(when, sizeof(when), json_integer_value(json_object_get(p, "added"))),
        };
        cli_table_row(t, row);
    }
    cli_table_print(t);
    json_decref(reply);
    return CLI_OK;
}

static int show_take(int c, const char *arg, void *cls)
{
    (void)arg;
    if (c != 'c')
        return -1;
    *(bool *)cls = true;
    return 0;
}

static int peer_show(int argc, char **argv)
{
    static const struct option extra[] = {{"check", no_argument, NULL, 'c'}};
    bool check = false;
    char path[128], when[64];
    json_t *reply = NULL;
    int i = peer_opts(argc, argv, extra, 1, show_take, &check);

    if (i < 0)
        return CLI_USAGE;
    if (argc - i != 1)
        return cli_usage_error(PEER_USAGE, "peer show: give one NAME");
    if (!peer_name_ok(argv[i]))
        return cli_usage_error(PEER_USAGE, "invalid peer name '%s'", argv[i]);
    snprintf(path, sizeof(path), "/1.0/peers/%s%s", argv[i], check ? "?check=1" : "");
    if (cli_call("GET", path, NULL, &reply, NULL))
        return CLI_FAIL;
    if (cli_g.json) {
        cli_print_json(reply);
    } else {
        const char *addr = json_string_value(json_object_get(reply, "address"));
        printf("name:         %s\n", json_string_value(json_object_get(reply, "name")));
        printf("address:      %s\n", addr ? addr : "- (it does not listen for peers)");
        printf("fingerprint:  %s\n", json_string_value(json_object_get(reply, "fingerprint")));
        printf("added:        %s\n",
               cli_fmt_time_ms(when, sizeof(when),
                               json_integer_value(json_object_get(reply, "added"))));
        if (check) {
            json_t *err = json_object_get(reply, "error");
            if (json_is_true(json_object_get(reply, "reachable")))
                printf("reachable:    yes (it answers as %s)\n",
                       json_string_value(json_object_get(reply, "host")));
            else
                printf("reachable:    no: %s\n", err ? json_string_value(err) : "?");
        }
    }
    int ret = check && !json_is_true(json_object_get(reply, "reachable")) ? CLI_FAIL : CLI_OK;
    json_decref(reply);
    return ret;
}

/* ---- remove ------------------------------------------------------------- */

static int peer_remove(int argc, char **argv)
{
    char path[128];
    json_t *reply = NULL;
    int i = peer_opts(argc, argv, NULL, 0, NULL, NULL);

    if (i < 0)
        return CLI_USAGE;
    if (argc - i != 1)
        return cli_usage_error(PEER_USAGE, "peer remove: give one NAME");
    if (!peer_name_ok(argv[i]))
        return cli_usage_error(PEER_USAGE, "invalid peer name '%s'", argv[i]);
    snprintf(path, sizeof(path), "/1.0/peers/%s", argv[i]);
    if (cli_call("DELETE", path, NULL, &reply, NULL))
        return CLI_FAIL;
    if (cli_g.json)
        cli_print_json(reply);
    else
        printf("removed peer %s on this host only: it still trusts this host until it removes "
               "it too\n",
               argv[i]);
    json_decref(reply);
    return CLI_OK;
}

int cli_cmd_peer(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int argc, char **argv);
    } subs[] = {
        {"token", peer_token}, {"add", peer_add},       {"list", peer_list},
        {"show", peer_show},   {"remove", peer_remove},
    };

    if (argc < 2)
        return cli_usage_error(PEER_USAGE, "peer: which one?");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: %s\n", PEER_USAGE);
        return CLI_OK;
    }
    for (size_t i = 0; i < GW_ARRAY_SIZE(subs); i++)
        if (!strcmp(argv[1], subs[i].name))
            return subs[i].fn(argc - 1, argv + 1);
    return cli_usage_error(PEER_USAGE, "peer: unknown command '%s'", argv[1]);
}
