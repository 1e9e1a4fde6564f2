/* Placeholder: `godwit peer` is being built (issue 11). */
#include "cli/cli.h"

int cli_cmd_peer(int argc, char **argv)
{
    (void)argc, (void)argv;
    return cli_error("'peer': not built yet");
}
