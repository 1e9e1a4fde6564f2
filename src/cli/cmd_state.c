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
#include "state/state_reader.h"

#define STATE_MAX_SECTIONS 4096 /* listed individually; RAM batches are summed */

struct state_sec {
    char name[STATE_NAME_MAX + 1];
    uint32_t instance;
    uint16_t version;
    uint32_t len;
};

struct state_report {
    struct state_header h;
    bool header_ok;
    char *config;
    bool hash_ok;
    uint64_t ram_size;
    uint64_t ram_sections, ram_pages, ram_bytes, lz4_batches, zero_sections;
    struct state_sec secs[STATE_MAX_SECTIONS];
    unsigned nsecs;
    bool checksum_ok;
    uint64_t file_size;
    char error[400];
};

/* Walk the stream with the state reader (the loader's checks, RAM
 * validated only); fills r.  Returns 0 if valid. */
static int state_check(int fd, struct state_report *r)
{
    struct state_stream *s = state_stream_new(fd, true);
    struct state_reader *rd = s ? state_reader_new(s) : NULL;
    const struct state_header *h;
    const char *cfg;
    struct state_item it;
    int ret = -ENOMEM;

    if (!rd) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        goto out;
    }
    ret = state_reader_start(rd);
    h = state_reader_header(rd);
    if (h) {
        r->h = *h;
        r->header_ok = true;
    }
    cfg = state_reader_config(rd);
    if (cfg) {
        r->hash_ok = XXH3_64bits(cfg, strlen(cfg)) == r->h.config_hash;
        r->config = strdup(cfg);
        /* a refused text may hold anything: show it without control bytes */
        for (char *p = r->config; p && *p; p++)
            if (*p != '\n' && ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e))
                *p = '?';
    }
    if (ret < 0)
        goto refused;
    if (!r->config) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        ret = -ENOMEM;
        goto out;
    }
    if (state_config_get_u64(r->config, "ram", &r->ram_size) < 0 || r->ram_size == 0 ||
        r->ram_size % STATE_PAGE_SIZE) {
        r->ram_size = 0;
        snprintf(r->error, sizeof(r->error), "the configuration names no valid RAM size");
        ret = -EPROTO;
        goto out;
    }
    state_reader_set_ram(rd, NULL, r->ram_size / STATE_PAGE_SIZE);
    do {
        ret = state_reader_next(rd, &it);
        if (ret < 0)
            goto refused;
        switch (it.sec.type) {
        case STATE_SEC_RAM:
            r->ram_sections++;
            r->ram_pages += it.pages;
            r->ram_bytes += it.sec.len;
            r->lz4_batches += it.encoding == STATE_RAM_LZ4;
            break;
        case STATE_SEC_ZERO: r->zero_sections++; break;
        case STATE_SEC_DEVICE:
            if (r->nsecs < STATE_MAX_SECTIONS) {
                struct state_sec *d = &r->secs[r->nsecs++];
                snprintf(d->name, sizeof(d->name), "%s", it.sec.name);
                d->instance = it.sec.instance;
                d->version = it.sec.version;
                d->len = it.sec.len;
            }
            break;
        }
    } while (it.sec.type != STATE_SEC_EOF);
    /* a file holding a live stream: what follows its EOF is refused too */
    ret = state_reader_expect_end(rd, 0);
    if (ret == 0)
        goto out;
refused:
    snprintf(r->error, sizeof(r->error), "%s", state_reader_msg(rd));
out:
    if (rd)
        r->checksum_ok = state_reader_checksum_ok(rd);
    state_reader_free(rd);
    state_stream_free(s);
    return ret;
}

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
