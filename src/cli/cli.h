/*
 * The godwit CLI: one function per command (kvmtool style), behind the
 * command table in main.c.  Each gets argv starting at its own name and
 * returns the process exit status (0 ok, 1 failure, 2 usage).
 */
#ifndef GODWIT_CLI_CLI_H
#define GODWIT_CLI_CLI_H

int cli_cmd_state(int argc, char **argv);

#endif
