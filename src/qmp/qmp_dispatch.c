/*
 * QMP requests: the checks QEMU's qmp_dispatch() makes on a request
 * (qapi/qmp-dispatch.c, same wording, so clients that match on error text
 * keep working), the negotiation gate, and the built-in commands
 * qmp_capabilities, query-commands and query-version.
 *
 * The command table is copied at init: built-ins first, then the
 * machine's commands; names are unique.  Nothing here touches a socket.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp_int.h"

static const char *const qmp_builtin_names[] = {"qmp_capabilities", "query-commands",
                                                "query-version"};

json_t *qmp_error_set(struct qmp_error *err, const char *cls, const char *fmt, ...)
{
    va_list ap;

    err->cls = cls;
    va_start(ap, fmt);
    vsnprintf(err->desc, sizeof(err->desc), fmt, ap);
    va_end(ap);
    return NULL;
}

int qmp_dispatch_init(struct qmp_dispatch *d, const struct qmp_server_config *cfg, char *err,
                      size_t errlen)
{
    size_t nb = GW_ARRAY_SIZE(qmp_builtin_names), n = 0;

    memset(d, 0, sizeof(*d));
    if (cfg->ncmds && !cfg->cmds) {
        snprintf(err, errlen, "QMP: %zu commands but no table", cfg->ncmds);
        return -EINVAL;
    }
    d->cmds = calloc(nb + cfg->ncmds, sizeof(*d->cmds));
    if (!d->cmds) {
        snprintf(err, errlen, "QMP: out of memory");
        return -ENOMEM;
    }
    for (size_t i = 0; i < nb; i++)
        d->cmds[n++] = (struct qmp_cmd_entry){qmp_builtin_names[i], NULL, true, false};
    for (size_t i = 0; i < cfg->ncmds; i++) {
        const struct qmp_command *c = &cfg->cmds[i];
        if (!c->name || !c->fn) {
            snprintf(err, errlen, "QMP: command %zu has no name or handler", i);
            goto out_free;
        }
        for (size_t k = 0; k < n; k++) {
            if (!strcmp(d->cmds[k].name, c->name)) {
                snprintf(err, errlen, "QMP: command '%s' defined twice", c->name);
                goto out_free;
            }
        }
        d->cmds[n++] = (struct qmp_cmd_entry){c->name, c->fn, false, c->no_args};
    }
    d->ncmds = n;
    d->opaque = cfg->opaque;
    d->major = cfg->version_major;
    d->minor = cfg->version_minor;
    d->micro = cfg->version_micro;
    d->package = cfg->package ? cfg->package : "";
    return 0;

out_free:
    free(d->cmds);
    d->cmds = NULL;
    return -EINVAL;
}

void qmp_dispatch_fini(struct qmp_dispatch *d)
{
    free(d->cmds);
    d->cmds = NULL;
    d->ncmds = 0;
}

/* {"qemu": {"micro", "minor", "major"}, "package"}: QEMU's key order. */
static json_t *qmp_version(const struct qmp_dispatch *d)
{
    return json_pack("{s:{s:i,s:i,s:i},s:s}", "qemu", "micro", d->micro, "minor", d->minor, "major",
                     d->major, "package", d->package);
}

json_t *qmp_greeting(const struct qmp_dispatch *d)
{
    /* QEMU 7.2 offers ["oob"]; we have no out-of-band execution. */
    return json_pack("{s:{s:o,s:[]}}", "QMP", "version", qmp_version(d), "capabilities");
}

json_t *qmp_error_reply(const char *cls, const char *desc, json_t *id)
{
    json_t *r = json_pack("{s:{s:s,s:s}}", "error", "class", cls, "desc", desc);

    if (r && id)
        json_object_set(r, "id", id);
    return r;
}

/* Commands without parameters refuse any, as QEMU's visit_check_struct(). */
static bool qmp_no_args(json_t *args, struct qmp_error *err)
{
    const char *key;
    json_t *v;

    json_object_foreach(args, key, v)
    {
        qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected", key);
        return false;
    }
    return true;
}

/* qmp_capabilities {"enable": [QMPCapability...]} (qapi/control.json). */
static json_t *qmp_capabilities(json_t *args, bool *negotiated, struct qmp_error *err)
{
    const char *key;
    json_t *v, *enable = NULL;
    size_t i;

    json_object_foreach(args, key, v)
    {
        if (strcmp(key, "enable"))
            return qmp_error_set(err, QMP_ERR_GENERIC, "Parameter '%s' is unexpected", key);
        enable = v;
    }
    if (enable && !json_is_array(enable))
        return qmp_error_set(err, QMP_ERR_GENERIC,
                             "Invalid parameter type for 'enable', expected: array");
    json_array_foreach(enable, i, v)
    {
        if (!json_is_string(v))
            return qmp_error_set(err, QMP_ERR_GENERIC,
                                 "Invalid parameter type for 'enable[%zu]', expected: string", i);
        /* QMPCapability has one member, "oob"; we offer none of it. */
        if (strcmp(json_string_value(v), "oob"))
            /* 'null' is what QEMU 7.2 really prints here (a visitor quirk). */
            return qmp_error_set(err, QMP_ERR_GENERIC,
                                 "Parameter 'null' does not accept value '%s'",
                                 json_string_value(v));
    }
    if (*negotiated)
        return qmp_error_set(err, QMP_ERR_NOT_FOUND,
                             "Capabilities negotiation is already complete, command ignored");
    if (json_array_size(enable))
        return qmp_error_set(err, QMP_ERR_GENERIC, "Capability oob not available");
    *negotiated = true;
    return json_object();
}

static json_t *qmp_query_commands(const struct qmp_dispatch *d, json_t *args, struct qmp_error *err)
{
    json_t *list;

    if (!qmp_no_args(args, err))
        return NULL;
    list = json_array();
    for (size_t i = 0; list && i < d->ncmds; i++)
        json_array_append_new(list, json_pack("{s:s}", "name", d->cmds[i].name));
    return list;
}

static json_t *qmp_run_builtin(struct qmp_dispatch *d, const char *name, json_t *args,
                               bool *negotiated, struct qmp_error *err)
{
    if (!strcmp(name, "qmp_capabilities"))
        return qmp_capabilities(args, negotiated, err);
    if (!strcmp(name, "query-commands"))
        return qmp_query_commands(d, args, err);
    if (!qmp_no_args(args, err))
        return NULL;
    return qmp_version(d);
}

/* The request-level checks of QEMU's qmp_dispatch_check_obj(), in the
 * order the members come; returns false with desc filled. */
static bool qmp_check_request(json_t *req, char *desc, size_t desclen)
{
    const char *key;
    json_t *v;

    json_object_foreach(req, key, v)
    {
        if (!strcmp(key, "execute")) {
            if (!json_is_string(v)) {
                snprintf(desc, desclen, "QMP input member 'execute' must be a string");
                return false;
            }
        } else if (!strcmp(key, "arguments")) {
            if (!json_is_object(v)) {
                snprintf(desc, desclen, "QMP input member 'arguments' must be an object");
                return false;
            }
        } else if (strcmp(key, "id")) {
            /* "exec-oob" lands here too: QEMU refuses it unless oob was
             * negotiated, and we never offer oob. */
            snprintf(desc, desclen, "QMP input member '%s' is unexpected", key);
            return false;
        }
    }
    if (!json_object_get(req, "execute")) {
        snprintf(desc, desclen, "QMP input lacks member 'execute'");
        return false;
    }
    return true;
}

json_t *qmp_dispatch_value(struct qmp_dispatch *d, const char *text, size_t len, bool *negotiated)
{
    struct qmp_error err = {NULL, ""};
    const struct qmp_cmd_entry *cmd = NULL;
    json_error_t jerr;
    json_t *req, *id, *args, *ret, *reply;
    const char *name;
    char desc[320];

    req = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    if (!req) {
        snprintf(desc, sizeof(desc), "JSON parse error, %s", jerr.text);
        return qmp_error_reply(QMP_ERR_GENERIC, desc, NULL);
    }
    if (!json_is_object(req)) {
        json_decref(req);
        return qmp_error_reply(QMP_ERR_GENERIC, "QMP input must be a JSON object", NULL);
    }
    id = json_object_get(req, "id");
    if (!qmp_check_request(req, desc, sizeof(desc))) {
        reply = qmp_error_reply(QMP_ERR_GENERIC, desc, id);
        goto out;
    }
    name = json_string_value(json_object_get(req, "execute"));
    for (size_t i = 0; i < d->ncmds && !cmd; i++)
        if (!strcmp(d->cmds[i].name, name))
            cmd = &d->cmds[i];
    /* Before negotiation only qmp_capabilities exists (QEMU swaps in its
     * qmp_cap_negotiation_commands list and rewrites the message). */
    if (!*negotiated && (!cmd || strcmp(cmd->name, "qmp_capabilities"))) {
        reply = qmp_error_reply(QMP_ERR_NOT_FOUND,
                                "Expecting capabilities negotiation with 'qmp_capabilities'", id);
        goto out;
    }
    if (!cmd) {
        snprintf(desc, sizeof(desc), "The command %s has not been found", name);
        reply = qmp_error_reply(QMP_ERR_NOT_FOUND, desc, id);
        goto out;
    }
    args = json_object_get(req, "arguments");
    if (!args)
        args = json_object();
    else
        json_incref(args);
    if (!args) {
        reply = qmp_error_reply(QMP_ERR_GENERIC, "out of memory", id);
        goto out;
    }
    if (cmd->builtin)
        ret = qmp_run_builtin(d, cmd->name, args, negotiated, &err);
    else if (cmd->no_args && !qmp_no_args(args, &err))
        ret = NULL;
    else
        ret = cmd->fn(d->opaque, args, &err);
    json_decref(args);
    if (err.cls) {
        json_decref(ret);
        reply = qmp_error_reply(err.cls, err.desc, id);
        goto out;
    }
    reply = json_pack("{s:o}", "return", ret ? ret : json_object());
    if (reply && id)
        json_object_set(reply, "id", id);
out:
    json_decref(req);
    return reply;
}
