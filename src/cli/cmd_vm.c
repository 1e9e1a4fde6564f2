/* Placeholder: `godwit vm` is being built (issue 11). */
#include "cli/cli.h"

int cli_cmd_vm(int argc, char **argv)
{
    (void)argc, (void)argv;
    return cli_error("'vm': not built yet");
}
