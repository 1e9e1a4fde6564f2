/*
 * The CLI's client of godwitd's REST API (see client.h).
 */
#include "cli/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_once_t cli_client_once = PTHREAD_ONCE_INIT;
static CURLcode cli_client_global;

static void cli_client_global_init(void)
{
    cli_client_global = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int cli_client_default_socket(char *buf, size_t len, char *err, size_t errlen)
{
    int n;
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    if (geteuid() == 0)
        n = snprintf(buf, len, "/var/lib/godwit/godwitd.sock");
    else if (xdg && xdg[0] == '/')
        n = snprintf(buf, len, "%s/godwit/godwitd.sock", xdg);
    else if (home && home[0] == '/')
        n = snprintf(buf, len, "%s/.local/state/godwit/godwitd.sock", home);
    else
        return gw_fail(err, errlen, -EINVAL,
                       "no default godwitd socket: neither XDG_STATE_HOME nor HOME is set "
                       "(use -H unix:PATH)");
    if (n < 0 || (size_t)n >= len)
        return gw_fail(err, errlen, -ENAMETOOLONG, "default godwitd socket path too long");
    return 0;
}

/* "unix:PATH" into c->socket_path; what names where it came from. */
static int cli_client_parse(struct cli_client *c, const char *addr, const char *what, char *err,
                            size_t errlen)
{
    if (strncmp(addr, "unix:", 5) != 0)
        return gw_fail(err, errlen, -EINVAL,
                       "%s '%s': only unix:PATH is supported (the local godwitd's socket)", what,
                       addr);
    const char *path = addr + 5;
    size_t l = strlen(path);
    if (l == 0)
        return gw_fail(err, errlen, -EINVAL, "%s '%s': empty socket path", what, addr);
    if (l >= sizeof(c->socket_path))
        return gw_fail(err, errlen, -ENAMETOOLONG, "%s '%s': socket path too long", what, addr);
    memcpy(c->socket_path, path, l + 1);
    return 0;
}

int cli_client_init(struct cli_client *c, const char *host_opt, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->timeout_ms = CLI_CLIENT_TIMEOUT_MS;
    c->reply_max = CLI_CLIENT_REPLY_MAX;
    if (host_opt)
        return cli_client_parse(c, host_opt, "-H", err, errlen);
    const char *env = getenv("GODWIT_HOST");
    if (env && env[0])
        return cli_client_parse(c, env, "GODWIT_HOST", err, errlen);
    return cli_client_default_socket(c->socket_path, sizeof(c->socket_path), err, errlen);
}

void cli_client_error_message(const json_t *reply, long status, char *buf, size_t len)
{
    json_t *e = json_object_get(reply, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (msg && msg[0]) {
        /* One line, whatever the daemon sent. */
        size_t i = 0;
        for (; msg[i] && i + 1 < len; i++)
            buf[i] = (msg[i] == '\n' || msg[i] == '\r') ? ' ' : msg[i];
        if (len)
            buf[i < len ? i : len - 1] = '\0';
    } else {
        snprintf(buf, len, "HTTP %ld", status);
    }
}

struct cli_client_buf {
    char *data;
    size_t len, max;
    bool too_large;
};

static size_t cli_client_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct cli_client_buf *b = userdata;
    size_t n = size * nmemb;
    if (n > b->max - b->len) {
        b->too_large = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    char *d = realloc(b->data, b->len + n + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, ptr, n);
    b->data = d;
    b->len += n;
    d[b->len] = '\0';
    return n;
}

int cli_client_request_raw(const struct cli_client *c, const char *method, const char *path,
                           const char *body, size_t len, json_t **reply, long *status, char *err,
                           size_t errlen)
{
    if (reply)
        *reply = NULL;
    if (status)
        *status = 0;
    pthread_once(&cli_client_once, cli_client_global_init);
    if (cli_client_global != CURLE_OK)
        return gw_fail(err, errlen, -EIO, "libcurl: %s", curl_easy_strerror(cli_client_global));
    CURL *h = curl_easy_init();
    if (!h)
        return gw_fail(err, errlen, -ENOMEM, "libcurl: cannot make a handle");

    char url[1024];
    snprintf(url, sizeof(url), "http://godwit%s", path);
    struct cli_client_buf b = {.max = c->reply_max ? c->reply_max : CLI_CLIENT_REPLY_MAX};
    struct curl_slist *hdrs = NULL;
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");

    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cli_client_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "godwit");
    if (c->timeout_ms > 0) {
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
    }
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }

    int ret = 0;
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK && code >= 400 && cc == CURLE_SEND_ERROR) {
        /* The daemon refused a body it would not read (413) and closed
         * before curl finished sending: the answer stands. */
        cc = CURLE_OK;
    }
    if (cc != CURLE_OK) {
        long oserr = 0;
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
        if (b.too_large) {
            ret =
                gw_fail(err, errlen, -EMSGSIZE, "godwitd's reply is larger than %zu bytes", b.max);
        } else if (cc == CURLE_COULDNT_CONNECT) {
            ret = -(oserr ? (int)oserr : ECONNREFUSED);
            gw_fail(err, errlen, 0, "cannot reach godwitd at unix:%s: %s (is godwitd running?)",
                    c->socket_path, strerror(-ret));
        } else if (cc == CURLE_OPERATION_TIMEDOUT) {
            ret =
                gw_fail(err, errlen, -ETIMEDOUT, "godwitd at unix:%s did not answer within %ld ms",
                        c->socket_path, c->timeout_ms);
        } else {
            ret = gw_fail(err, errlen, -EPROTO, "talking to godwitd at unix:%s: %s", c->socket_path,
                          curl_easy_strerror(cc));
        }
        goto out;
    }
    if (status)
        *status = code;
    json_t *j = NULL;
    if (b.len) {
        json_error_t jerr;
        j = json_loadb(b.data, b.len, 0, &jerr);
        if (!j) {
            ret = gw_fail(err, errlen, -EPROTO, "godwitd answered HTTP %ld with malformed JSON: %s",
                          code, jerr.text);
            goto out;
        }
    }
    if (code < 200 || code >= 300) {
        char msg[512];
        cli_client_error_message(j, code, msg, sizeof(msg));
        ret = gw_fail(err, errlen, -EREMOTEIO, "%s", msg);
    }
    if (reply)
        *reply = j;
    else
        json_decref(j);
out:
    free(b.data);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return ret;
}

int cli_client_request(const struct cli_client *c, const char *method, const char *path,
                       const json_t *body, json_t **reply, long *status, char *err, size_t errlen)
{
    char *text = NULL;
    if (body) {
        text = json_dumps(body, JSON_COMPACT);
        if (!text) {
            if (reply)
                *reply = NULL;
            return gw_fail(err, errlen, -ENOMEM, "cannot encode the request as JSON");
        }
    }
    int ret = cli_client_request_raw(c, method, path, text, text ? strlen(text) : 0, reply, status,
                                     err, errlen);
    free(text);
    return ret;
}
