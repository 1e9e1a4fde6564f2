/*
 * godwit: the operator's command-line tool (docs/godwitd.md, README).
 *
 *   godwit [-H unix:PATH] [--json] COMMAND ...
 *
 * Commands live one group per file (cmd_*.c) behind this table.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/util.h"

struct cli_command {
    const char *name;
    const char *usage;
    int (*fn)(int argc, char **argv);
};

static const struct cli_command cli_commands[] = {
    {"vm", "vm create|list|show|start|stop|kill|delete|console ...   virtual machines", cli_cmd_vm},
    {"migrate", "migrate NAME PEER --live [--downtime-limit MS] [--bandwidth MBPS] [--detach]",
     cli_cmd_migrate},
    {"job", "job list|show|cancel ...   migrations and other long operations", cli_cmd_job},
    {"peer", "peer token|add|list|remove ...   hosts this one trusts", cli_cmd_peer},
    {"state", "state check FILE [--json]   validate a saved VM state, print a summary",
     cli_cmd_state},
};

static void cli_usage(FILE *f)
{
    fprintf(f, "usage: godwit [-H unix:PATH] [--json] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < GW_ARRAY_SIZE(cli_commands); i++)
        fprintf(f, "  godwit %s\n", cli_commands[i].usage);
    fprintf(f, "\n'godwit COMMAND --help' tells more.  Exit status: 0 done, 1 failed, 2 usage.\n");
}

int main(int argc, char **argv)
{
    int i = 1;

    gw_log_set_prog("godwit");
    /* global options before the command */
    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "--json")) {
            cli_g.json = true;
            i++;
        } else if ((!strcmp(argv[i], "-H") || !strcmp(argv[i], "--host")) && i + 1 < argc) {
            cli_g.host = argv[i + 1];
            i += 2;
        } else if (!strncmp(argv[i], "-H", 2) && argv[i][2]) {
            cli_g.host = argv[i] + 2;
            i++;
        } else if (!strncmp(argv[i], "--host=", 7)) {
            cli_g.host = argv[i] + 7;
            i++;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            cli_usage(stdout);
            return CLI_OK;
        } else {
            fprintf(stderr, "godwit: unknown option '%s'\n", argv[i]);
            cli_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (i >= argc) {
        cli_usage(stderr);
        return CLI_USAGE;
    }
    for (size_t c = 0; c < GW_ARRAY_SIZE(cli_commands); c++)
        if (!strcmp(argv[i], cli_commands[c].name))
            return cli_commands[c].fn(argc - i, argv + i);
    fprintf(stderr, "godwit: unknown command '%s'\n", argv[i]);
    cli_usage(stderr);
    return CLI_USAGE;
}
