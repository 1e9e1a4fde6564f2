/*
 * `godwit state check FILE [--json]`: validate a saved VM state without
 * running it (docs/state.md) and print what it holds: format version,
 * configuration, sections and sizes, RAM pages, checksum status.
 *
 * It reads the whole stream with the same section and RAM decoders the
 * VM's loader uses, so a file it calls valid is framed correctly, every
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
#include "state/state_format.h"

#define STATE_MAX_SECTIONS 4096 /* listed individually; RAM batches are summed */

struct state_sec {
    char name[STATE_NAME_MAX + 1];
    uint32_t instance;
    uint16_t version;
    uint32_t len;
};

struct state_report {
    struct state_header h;
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

static uint64_t state_config_ram(const char *cfg)
{
    const char *p = strstr(cfg, "\nram=");

    if (!p && !strncmp(cfg, "ram=", 4))
        p = cfg - 1;
    return p ? strtoull(p + 5, NULL, 10) : 0;
}

/* Read and validate; fills r.  Returns 0 if valid. */
static int state_check(int fd, struct state_report *r)
{
    struct state_stream *s = state_stream_new(fd, true);
    struct state_section sec;
    struct state_buf b;
    uint8_t *scratch = malloc((size_t)STATE_RAM_BATCH * STATE_PAGE_SIZE);
    int ret = -EPROTO;

    state_buf_init(&b);
    if (!s || !scratch) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        goto out;
    }
    if (state_read_header(s, &r->h) < 0)
        goto stream_err;
    if (state_read_section(s, &sec) < 0)
        goto stream_err;
    if (sec.type != STATE_SEC_CONFIG) {
        snprintf(r->error, sizeof(r->error), "the first section is not the configuration");
        goto out;
    }
    if (state_read_payload(s, &sec, &b) < 0)
        goto stream_err;
    r->config = strndup((const char *)b.data, b.len);
    if (!r->config) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        goto out;
    }
    r->hash_ok = XXH3_64bits(b.data, b.len) == r->h.config_hash;
    r->ram_size = state_config_ram(r->config);
    if (!r->hash_ok) {
        snprintf(r->error, sizeof(r->error), "the configuration does not match the header's hash");
        goto out;
    }
    if (r->ram_size == 0 || r->ram_size % STATE_PAGE_SIZE) {
        snprintf(r->error, sizeof(r->error), "the configuration names no valid RAM size");
        goto out;
    }
    for (;;) {
        if (state_read_section(s, &sec) < 0)
            goto stream_err;
        if (sec.type == STATE_SEC_EOF) {
            if (state_read_eof(s, &sec) < 0)
                goto stream_err;
            r->checksum_ok = true;
            if (!state_stream_at_eof(s)) {
                snprintf(r->error, sizeof(r->error), "data after the end of the state");
                goto out;
            }
            break;
        }
        if (state_read_payload(s, &sec, &b) < 0)
            goto stream_err;
        switch (sec.type) {
        case STATE_SEC_RAM: {
            int n = state_ram_decode(&b, NULL, r->ram_size / STATE_PAGE_SIZE, scratch);

            if (n < 0) {
                snprintf(r->error, sizeof(r->error), "RAM batch %" PRIu64 ": %s", r->ram_sections,
                         state_buf_msg(&b));
                goto out;
            }
            r->ram_sections++;
            r->ram_pages += (uint64_t)n;
            r->ram_bytes += sec.len;
            if (b.len && b.data[0] == STATE_RAM_LZ4)
                r->lz4_batches++;
            break;
        }
        case STATE_SEC_ZERO:
            if (state_zero_decode(&b, r->ram_size / STATE_PAGE_SIZE, NULL, NULL) < 0) {
                snprintf(r->error, sizeof(r->error), "zero runs: %s", state_buf_msg(&b));
                goto out;
            }
            r->zero_sections++;
            break;
        case STATE_SEC_ROUND: break;
        case STATE_SEC_CONFIG:
            snprintf(r->error, sizeof(r->error), "a second configuration section");
            goto out;
        case STATE_SEC_DEVICE:
            if (r->nsecs < STATE_MAX_SECTIONS) {
                struct state_sec *d = &r->secs[r->nsecs++];
                snprintf(d->name, sizeof(d->name), "%s", sec.name);
                d->instance = sec.instance;
                d->version = sec.version;
                d->len = sec.len;
            }
            break;
        }
    }
    ret = 0;
    goto out;
stream_err:
    snprintf(r->error, sizeof(r->error), "%s", state_stream_msg(s));
out:
    state_buf_fini(&b);
    free(scratch);
    state_stream_free(s);
    return ret;
}

static void state_print_text(const char *path, const struct state_report *r, bool ok)
{
    printf("state file:    %s (%" PRIu64 " bytes)\n", path, r->file_size);
    if (r->h.version)
        printf("format:        godwit state version %u, page size %u%s\n", r->h.version,
               r->h.page_size, (r->h.flags & STATE_F_LIVE) ? ", live stream" : "");
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
