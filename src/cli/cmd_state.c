/*
 * `godwit state check FILE [--json]`: validate a saved VM state without
 * running it (docs/state.md) and print what it holds: format version,
 * configuration, sections and sizes, RAM pages, checksum status.
 *
 * It reads the whole stream with the state reader (src/state/state_reader.h)
 * the VM's loader uses, so a file it calls valid is framed correctly, every
 * RAM batch decodes inside the RAM size the configuration names, and the
 * checksum matches.  The components' own payloads are checked by the VM
 * that loads them (they need the machine to be judged).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cli/cli.h"
#include "state/state_config.h"
#include "state/state_check.h"
#include "state/state_reader.h"

static void state_print_text(const char *path, const struct state_report *r, bool ok)
{
    printf("state file:    %s (%" PRIu64 " bytes)\n", path, r->file_size);
    if (r->header_ok) {
        char uuid[STATE_UUID_TEXT_LEN + 1];

        state_uuid_format(r->h.uuid, uuid);
        printf("format:        godwit state version %u, page size %u%s\n", r->h.version,
               r->h.page_size, (r->h.flags & STATE_F_LIVE) ? ", live stream" : "");
        printf("name:          %s\n", r->h.name[0] ? r->h.name : "(none)");
        printf("uuid:          %s\n", state_uuid_is_nil(r->h.uuid) ? "(none)" : uuid);
    }
    if (r->config) {
        printf("config hash:   %016" PRIx64 " (%s)\n", r->h.config_hash,
               r->hash_ok ? "matches the configuration" : "MISMATCH");
        printf("configuration:\n");
        for (const char *p = r->config; *p;) {
            size_t n = strcspn(p, "\n");
            printf("  %.*s\n", (int)n, p);
            p += n + (p[n] == '\n');
        }
    }
    if (r->ram_size) {
        uint64_t total = r->ram_size / STATE_PAGE_SIZE;
        printf("RAM:           %" PRIu64 " of %" PRIu64 " pages stored (%.1f MiB), %" PRIu64
               " zero pages elided\n",
               r->ram_pages, total, (double)r->ram_pages * STATE_PAGE_SIZE / 1048576.0,
               total > r->ram_pages ? total - r->ram_pages : 0);
        printf("               %" PRIu64 " batches (%" PRIu64 " LZ4), %.1f MiB encoded\n",
               r->ram_sections, r->lz4_batches, (double)r->ram_bytes / 1048576.0);
    }
    if (r->nsecs) {
        printf("sections:\n  %-14s %8s %8s %10s\n", "component", "instance", "version", "bytes");
        for (unsigned i = 0; i < r->nsecs; i++)
            printf("  %-14s %8u %8u %10u\n", r->secs[i].name, r->secs[i].instance,
                   r->secs[i].version, r->secs[i].len);
    }
    printf("checksum:      %s\n", r->checksum_ok ? "ok (XXH3-64)" : "not verified");
    if (ok)
        printf("result:        valid\n");
    else
        printf("result:        INVALID: %s\n", r->error);
}

static void state_print_json(const char *path, const struct state_report *r, bool ok)
{
    json_t *o = json_object(), *secs = json_array();

    json_object_set_new(o, "file", json_string(path));
    json_object_set_new(o, "bytes", json_integer((json_int_t)r->file_size));
    json_object_set_new(o, "valid", json_boolean(ok));
    if (!ok)
        json_object_set_new(o, "error", json_string(r->error));
    json_object_set_new(o, "format-version", json_integer(r->h.version));
    json_object_set_new(o, "page-size", json_integer(r->h.page_size));
    json_object_set_new(o, "name", r->h.name[0] ? json_string(r->h.name) : json_null());
    if (!state_uuid_is_nil(r->h.uuid)) {
        char uuid[STATE_UUID_TEXT_LEN + 1];

        state_uuid_format(r->h.uuid, uuid);
        json_object_set_new(o, "uuid", json_string(uuid));
    } else {
        json_object_set_new(o, "uuid", json_null());
    }
    json_object_set_new(o, "live", json_boolean(r->h.flags & STATE_F_LIVE));
    if (r->config)
        json_object_set_new(o, "configuration", json_string(r->config));
    json_object_set_new(o, "config-hash-ok", json_boolean(r->hash_ok));
    json_object_set_new(o, "ram-size", json_integer((json_int_t)r->ram_size));
    json_object_set_new(o, "ram-pages", json_integer((json_int_t)r->ram_pages));
    json_object_set_new(o, "ram-batches", json_integer((json_int_t)r->ram_sections));
    json_object_set_new(o, "ram-encoded-bytes", json_integer((json_int_t)r->ram_bytes));
    for (unsigned i = 0; i < r->nsecs; i++)
        json_array_append_new(secs,
                              json_pack("{s:s, s:i, s:i, s:i}", "name", r->secs[i].name, "instance",
                                        (int)r->secs[i].instance, "version",
                                        (int)r->secs[i].version, "bytes", (int)r->secs[i].len));
    json_object_set_new(o, "sections", secs);
    json_object_set_new(o, "checksum-ok", json_boolean(r->checksum_ok));
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    putchar('\n');
    json_decref(o);
}

int cli_cmd_state(int argc, char **argv)
{
    const char *path = NULL;
    bool json = false, ok;
    struct state_report *r;
    struct stat st;
    int fd;

    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        fprintf(stderr, "usage: godwit state check FILE [--json]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (!path)
            path = argv[i];
        else {
            fprintf(stderr, "godwit state check: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: godwit state check FILE [--json]\n");
        return 2;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "godwit state check: %s: %s\n", path, strerror(errno));
        return 1;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        close(fd);
        fprintf(stderr, "godwit state check: out of memory\n");
        return 1;
    }
    if (fstat(fd, &st) == 0)
        r->file_size = (uint64_t)st.st_size;
    ok = state_check(fd, r) == 0;
    close(fd);
    if (json)
        state_print_json(path, r, ok);
    else
        state_print_text(path, r, ok);
    free(r->config);
    free(r);
    return ok ? 0 : 1;
}
