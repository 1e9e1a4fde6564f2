/*
 * The saved-state checker (state_check.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "state/state_check.h"
#include "state/state_config.h"
#include "state/state_reader.h"
#include "state/state_stream.h"

/* Walk the stream with the state reader (the loader's checks, RAM
 * validated only); fills r.  Returns 0 if valid. */
int state_check(int fd, struct state_report *r)
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
