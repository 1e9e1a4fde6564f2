/*
 * The CLI's client of godwitd's REST API: libcurl over the daemon's unix
 * socket (CURLOPT_UNIX_SOCKET_PATH), JSON in and out (jansson).
 *
 * Where the daemon is, first found wins:
 *   -H unix:PATH         (the command line; host_opt below)
 *   GODWIT_HOST=unix:PATH
 *   the default socket: /var/lib/godwit/godwitd.sock as root, else
 *   $XDG_STATE_HOME/godwit/godwitd.sock or ~/.local/state/godwit/godwitd.sock
 * Only unix: addresses today; remote hosts are reached through the local
 * daemon, never directly by the CLI.
 */
#ifndef GODWIT_CLI_CLIENT_H
#define GODWIT_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "common/sock.h"
#include "common/util.h"

#define CLI_CLIENT_TIMEOUT_MS 30000      /* whole request, connect included */
#define CLI_CLIENT_REPLY_MAX  (8u << 20) /* reply bodies: 8 MiB, more is an error */

struct cli_client {
    char socket_path[SOCK_UNIX_PATH_MAX];
    long timeout_ms; /* 0: none */
    size_t reply_max;
};

/*
 * Resolve the daemon's address (host_opt: the -H value or NULL) into c
 * with the default timeout and reply bound.  0, or -EINVAL with a reason
 * ("-H 'tcp:x': only unix:PATH is supported").
 */
int cli_client_init(struct cli_client *c, const char *host_opt, char *err,
                    size_t errlen) gw_must_check;

/* The default socket path for this user (see above).  0 or -errno. */
int cli_client_default_socket(char *buf, size_t len, char *err, size_t errlen) gw_must_check;

/*
 * One request: method ("GET"), path ("/1.0/vms"), body (NULL: none).
 * On an answer, *status is the HTTP status and *reply the parsed JSON body
 * (NULL when empty; the caller decrefs; reply may be NULL to ignore it).
 * Returns 0 for a 2xx answer; -EREMOTEIO for a 4xx/5xx one, with err the
 * daemon's one-line message; other -errno when the daemon could not be
 * reached or answered garbage (-ECONNREFUSED, -ENOENT, -ETIMEDOUT,
 * -EMSGSIZE for a reply over reply_max, -EPROTO), with a reason in err.
 */
int cli_client_request(const struct cli_client *c, const char *method, const char *path,
                       const json_t *body, json_t **reply, long *status, char *err,
                       size_t errlen) gw_must_check;

/* The same with a raw body (len bytes, sent as application/json as is). */
int cli_client_request_raw(const struct cli_client *c, const char *method, const char *path,
                           const char *body, size_t len, json_t **reply, long *status, char *err,
                           size_t errlen) gw_must_check;

/* A one-line message for an error reply: the "message" of
 * {"error":{"code":N,"message":...}}, else "HTTP N". */
void cli_client_error_message(const json_t *reply, long status, char *buf, size_t len);

#endif
