/* Placeholder: `godwit job` is being built (issue 11). */
#include "cli/cli.h"

int cli_cmd_job(int argc, char **argv)
{
    (void)argc, (void)argv;
    return cli_error("'job': not built yet");
}
