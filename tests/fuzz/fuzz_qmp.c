/*
 * libFuzzer target for the QMP server's input side: framing (qmp_stream.c),
 * request checks and dispatch (qmp_dispatch.c), through qmp_server_feed()
 * on a socket-less server with a few dummy commands.
 *
 *   make fuzz-qmp                        # clang, -fsanitize=fuzzer,address,undefined
 *   build/fuzz/fuzz_qmp -max_total_time=600 build/fuzz/qmp tests/fuzz/corpus/qmp
 *   $(BUILD)/tests/fuzz/replay_qmp tests/fuzz/corpus/qmp   # gcc, run by tests/run.sh
 *
 * Input: byte 0 picks how the rest is cut into feed() calls (0xF0 and up:
 * one byte per call; else two calls, split at byte0/240 of the length);
 * the rest is the client's byte stream.
 *
 * Invariants beyond "no crash, no sanitizer report":
 *   - every output line is a JSON object ending in "\r\n", and is a
 *     greeting, a reply ("return" or "error" with a known class) or an event;
 *   - framing does not depend on how the stream was cut: the same bytes fed
 *     in one call give the same lines (timestamps aside) and the same result.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qmp/qmp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *fz_echo(void *opaque, json_t *args, struct qmp_error *err)
{
    (void)opaque;
    (void)err;
    return json_incref(args);
}

static json_t *fz_fail(void *opaque, json_t *args, struct qmp_error *err)
{
    (void)opaque;
    const char *id = json_string_value(json_object_get(args, "id"));
    return qmp_error_set(err, QMP_ERR_DEV_NOT_FOUND, "Device '%s' not found", id ? id : "(none)");
}

/* An event from inside a handler: it reaches this very client first. */
static json_t *fz_emit(void *opaque, json_t *args, struct qmp_error *err)
{
    (void)err;
    qmp_server_event(*(struct qmp_server **)opaque, "FUZZ_EVENT", json_deep_copy(args));
    return NULL;
}

static const struct qmp_command fz_cmds[] = {
    {"echo", fz_echo, false},
    {"fail", fz_fail, false},
    {"emit", fz_emit, false},
};

/* Check every line; returns them as one array, timestamps removed. */
static json_t *fz_lines(const char *out)
{
    json_t *lines = json_array();
    const char *p = out;

    while (*p) {
        const char *nl = strstr(p, "\r\n");
        json_error_t jerr;
        json_t *v, *e;
        if (!nl)
            abort(); /* every line is terminated */
        v = json_loadb(p, (size_t)(nl - p), 0, &jerr);
        if (!json_is_object(v))
            abort();
        if (json_object_get(v, "error")) {
            e = json_object_get(v, "error");
            if (!json_is_string(json_object_get(e, "class")) ||
                !json_is_string(json_object_get(e, "desc")))
                abort();
        } else if (json_object_get(v, "event")) {
            if (!json_is_object(json_object_get(v, "timestamp")))
                abort();
            json_object_del(v, "timestamp");
        } else if (!json_object_get(v, "return") && !json_object_get(v, "QMP")) {
            abort();
        }
        json_array_append_new(lines, v);
        p = nl + 2;
    }
    return lines;
}

/* Feed in[] as cut by `how`; returns the checked lines and the result. */
static json_t *fz_run(const uint8_t *in, size_t len, unsigned how, bool whole, int *rc)
{
    struct qmp_server_config cfg = {.cmds = fz_cmds,
                                    .ncmds = GW_ARRAY_SIZE(fz_cmds),
                                    .version_major = 7,
                                    .version_minor = 2,
                                    .package = "fuzz"};
    struct qmp_server *s;
    char err[200], *out = NULL, *all = NULL;
    size_t alllen = 0, allcap = 0, cut;
    json_t *lines;

    cfg.opaque = &s;
    s = qmp_server_new(&cfg, err, sizeof(err));
    if (!s)
        abort();
    *rc = 0;
    for (size_t pos = 0, part = 0; pos < len && *rc == 0; pos += cut, part++) {
        if (whole)
            cut = len;
        else if (how >= 0xF0)
            cut = 1;
        else
            cut = part ? len - pos : len * how / 240;
        *rc = qmp_server_feed(s, in + pos, cut, &out);
        if (!out)
            abort();
        size_t n = strlen(out);
        if (alllen + n + 1 > allcap) {
            /* Doubling: a realloc per byte-sized feed() is quadratic under ASan. */
            allcap = allcap ? allcap : 4096;
            while (allcap < alllen + n + 1)
                allcap *= 2;
            all = realloc(all, allcap);
            if (!all)
                abort();
        }
        memcpy(all + alllen, out, n + 1);
        alllen += n;
        free(out);
    }
    if (*rc != 0 && *rc != -EPROTO)
        abort();
    lines = fz_lines(all ? all : "");
    free(all);
    qmp_server_free(s);
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *a, *b;
    int ra, rb;

    if (size < 1)
        return 0;
    a = fz_run(data + 1, size - 1, data[0], false, &ra);
    b = fz_run(data + 1, size - 1, data[0], true, &rb);
    if (ra != rb || !json_equal(a, b)) {
        char *ta = json_dumps(a, 0), *tb = json_dumps(b, 0);
        fprintf(stderr, "split %d: %s\nwhole %d: %s\n", ra, ta, rb, tb);
        abort();
    }
    json_decref(a);
    json_decref(b);
    return 0;
}
