/* Placeholder: `godwit migrate` is being built (issue 11). */
#include "cli/cli.h"

int cli_cmd_migrate(int argc, char **argv)
{
    (void)argc, (void)argv;
    return cli_error("'migrate': not built yet");
}
