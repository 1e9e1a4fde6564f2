/*
 * godwit: the operator's command-line tool.  Commands live one per file
 * (cmd_*.c) behind this table.
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
    {"state", "state check FILE [--json]   validate a saved VM state, print a summary",
     cli_cmd_state},
};

static void cli_usage(FILE *f)
{
    fprintf(f, "usage: godwit COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < GW_ARRAY_SIZE(cli_commands); i++)
        fprintf(f, "  godwit %s\n", cli_commands[i].usage);
}

int main(int argc, char **argv)
{
    gw_log_set_prog("godwit");
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        cli_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < GW_ARRAY_SIZE(cli_commands); i++)
        if (!strcmp(argv[1], cli_commands[i].name))
            return cli_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "godwit: unknown command '%s'\n", argv[1]);
    cli_usage(stderr);
    return 2;
}
