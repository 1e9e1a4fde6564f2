/*
 * libFuzzer target for godwitd's request validation (godwitd/api.c): what
 * a local client or a peer host sends before any handler runs.  Route
 * matching with its {param}s and per-transport flags (api_route_find),
 * names (api_name_valid), JSON bodies checked against a route's fields
 * (api_json_check), and the join token inside a body (trust_token_parse).
 *
 *   make fuzz-api                       # clang, -fsanitize=fuzzer,address,undefined
 *   build/fuzz/fuzz_api -max_total_time=600 build/fuzz/api tests/fuzz/corpus/api
 *   $(BUILD)/tests/fuzz/replay_api tests/fuzz/corpus/api   # gcc, run by tests/run.sh
 *
 * Input: "METHOD PATH\n" then the body.  The route table has the shapes of
 * the peers API (literal and {param} segments, the three transport
 * classes, field lists with every type).  Invariants beyond "no crash": a
 * route found is one the transport may call; a refusal has a status among
 * 403/404/405/414 and a message; params are non-empty and hold no '/'; a
 * body that passes the check has only known fields of their declared
 * types; a name that passes is 1..63 of [a-z0-9-] starting with a letter;
 * a token that parses is well formed.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "godwitd/api.h"
#include "godwitd/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_handler(struct api_request *req, struct api_reply *rep)
{
    (void)req, (void)rep;
}

static const struct api_field fuzz_add_fields[] = {
    {"name", API_T_STRING, true},
    {"token", API_T_STRING, true},
    {NULL, 0, false},
};

static const struct api_field fuzz_all_fields[] = {
    {"ttl", API_T_INT, false},     {"address", API_T_STRING, false},
    {"rate", API_T_NUMBER, false}, {"live", API_T_BOOL, false},
    {"opts", API_T_OBJECT, false}, {"list", API_T_ARRAY, false},
    {"name", API_T_STRING, false}, {NULL, 0, false},
};

static const struct api_route fuzz_routes[] = {
    {"GET", "/1.0/peers", fuzz_handler, NULL, 0},
    {"POST", "/1.0/peers", fuzz_handler, fuzz_add_fields, 0},
    {"POST", "/1.0/peers/tokens", fuzz_handler, fuzz_all_fields, 0},
    {"POST", "/1.0/peers/join", fuzz_handler, fuzz_all_fields, API_ROUTE_JOIN},
    {"GET", "/1.0/peers/{name}", fuzz_handler, NULL, 0},
    {"DELETE", "/1.0/peers/{name}", fuzz_handler, NULL, 0},
    {"GET", "/1.0/vms/{name}/disks/{disk}", fuzz_handler, NULL, API_ROUTE_PEER},
    {"PUT", "/1.0/vms/{name}", fuzz_handler, fuzz_all_fields, API_ROUTE_PEER},
};

static bool fuzz_name_shape(const char *n)
{
    size_t l = strlen(n);

    if (l < 1 || l > API_NAME_MAX || n[0] < 'a' || n[0] > 'z')
        return false;
    for (size_t i = 0; i < l; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '-'))
            return false;
    return true;
}

static bool fuzz_type_ok(const json_t *v, enum api_type t)
{
    switch (t) {
    case API_T_STRING: return json_is_string(v);
    case API_T_INT: return json_is_integer(v);
    case API_T_NUMBER: return json_is_number(v);
    case API_T_BOOL: return json_is_boolean(v);
    case API_T_OBJECT: return json_is_object(v);
    case API_T_ARRAY: return json_is_array(v);
    }
    return false;
}

static void fuzz_token(const char *text)
{
    static const struct trust_token zero;
    struct trust_token tok;
    char err[256] = "";

    if (trust_token_parse(text, &tok, err, sizeof(err)) == 0) {
        if (tok.version != TRUST_TOKEN_VERSION || tok.expiry <= 0 ||
            !trust_fingerprint_valid(tok.fingerprint) ||
            trust_address_check(tok.address, NULL, 0) < 0)
            abort();
    } else if (!err[0] || memcmp(&tok, &zero, sizeof(tok)) != 0) {
        abort();
    }
}

static void fuzz_body(const struct api_route *r, const char *body, size_t len)
{
    json_error_t jerr;
    char err[256] = "";
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);

    if (!v)
        return;
    const struct api_field *fields = r && r->body ? r->body : fuzz_all_fields;
    if (api_json_check(v, fields, err, sizeof(err)) == 0) {
        const char *key;
        json_t *val;
        json_object_foreach(v, key, val)
        {
            const struct api_field *f = fields;
            while (f->name && strcmp(f->name, key) != 0)
                f++;
            if (!f->name || !fuzz_type_ok(val, f->type))
                abort();
        }
        for (const struct api_field *f = fields; f->name; f++)
            if (f->required && !json_object_get(v, f->name))
                abort();
    } else if (!err[0]) {
        abort();
    }
    const char *name = json_string_value(json_object_get(v, "name"));
    if (name && api_name_valid(name) && !fuzz_name_shape(name))
        abort();
    const char *token = json_string_value(json_object_get(v, "token"));
    if (token && strlen(token) < 4096)
        fuzz_token(token);
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct api_server *s;
    char line[1200], method[17], msg[256];
    const char *nl = memchr(data, '\n', size);
    size_t llen = nl ? (size_t)(nl - (const char *)data) : size;

    if (!s) {
        s = api_server_new_detached(fuzz_routes, sizeof(fuzz_routes) / sizeof(fuzz_routes[0]), msg,
                                    sizeof(msg));
        if (!s)
            abort();
    }
    if (llen >= sizeof(line))
        llen = sizeof(line) - 1;
    memcpy(line, data, llen);
    line[llen] = '\0';
    if (memchr(line, '\0', llen))
        return 0; /* MHD never hands over a NUL inside a request line */
    char *sp = strchr(line, ' ');
    if (!sp || sp - line >= (long)sizeof(method))
        return 0;
    memcpy(method, line, (size_t)(sp - line));
    method[sp - line] = '\0';
    const char *path = sp + 1;
    const struct api_route *found = NULL;

    for (int mode = 0; mode < 3; mode++) {
        enum api_transport t = mode == 0 ? API_TRANSPORT_UNIX : API_TRANSPORT_TLS;
        bool trusted = mode == 1;
        struct api_request req;
        unsigned st = 0;

        memset(&req, 0, sizeof(req));
        msg[0] = '\0';
        const struct api_route *r =
            api_route_find(s, method, path, t, trusted, &req, &st, msg, sizeof(msg));
        if (r) {
            if (t == API_TRANSPORT_TLS && !(r->flags & API_ROUTE_JOIN) &&
                !(trusted && (r->flags & API_ROUTE_PEER)))
                abort();
            if (strcmp(r->method, method) != 0 || req.nparams > API_PARAMS_MAX)
                abort();
            for (unsigned i = 0; i < req.nparams; i++) {
                const char *v = req.params[i].value;
                if (!v || !*v || strchr(v, '/') || !req.params[i].name[0])
                    abort();
                if (api_name_valid(v) && !fuzz_name_shape(v))
                    abort();
            }
            if (mode == 0)
                found = r;
        } else {
            if ((st != 403 && st != 404 && st != 405 && st != 414) || !msg[0])
                abort();
            if (t == API_TRANSPORT_TLS && !trusted && st != 403)
                abort();
        }
    }
    if (nl)
        fuzz_body(found, (const char *)nl + 1, size - (size_t)(nl - (const char *)data) - 1);
    /* The whole input as a pasted token, too. */
    if (size < 4096) {
        char text[4096];
        memcpy(text, data, size);
        text[size] = '\0';
        fuzz_token(text);
    }
    return 0;
}
