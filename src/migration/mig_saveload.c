/*
 * A whole machine into a stream and back (docs/state.md):
 *
 *   header (flags, configuration hash, the VM's identity)
 *   "config"      the configuration text the hash covers
 *   RAM batches   every page that holds data (zero pages are elided)
 *   components    the machine's sections (ops->save_components)
 *   EOF           XXH3-64 of everything before it
 *
 * A live stream has rounds of RAM batches, ZERO runs and ROUND markers
 * before its components.  Loading validates as it goes; the machine only
 * runs once the EOF checksum matched and every component was found
 * exactly once (ops->load_end).  On any error the caller throws the
 * half-loaded machine away.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "migration/migration.h"

int mig_write_start(const struct mig_machine *mm, struct state_stream *s, uint32_t flags)
{
    struct state_header h = {
        .version = STATE_FORMAT_VERSION, .page_size = STATE_PAGE_SIZE, .flags = flags};
    char *cfg = mm->ops->config_text(mm->opaque);

    if (!cfg) {
        state_stream_fail(s, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    h.config_hash = XXH3_64bits(cfg, strlen(cfg));
    state_write_header(s, &h);
    state_write_section(s, STATE_SEC_CONFIG, "config", 0, 1, cfg, strlen(cfg));
    free(cfg);
    return state_stream_error(s);
}

static int mig_save_ram(const struct mig_machine *mm, struct state_stream *s,
                        uint64_t *pages_normal, uint64_t *pages_zero, const _Atomic bool *cancel)
{
    struct state_ram_encoder enc;
    struct gmem_page_iter it;
    struct state_buf b;
    uint32_t pages[STATE_RAM_BATCH];
    unsigned n = 0;
    uint64_t p, normal = 0;

    if (state_ram_encoder_init(&enc) < 0) {
        state_stream_fail(s, -ENOMEM, "out of memory");
        return -ENOMEM;
    }
    state_buf_init(&b);
    gmem_page_iter_init(&it, mm->mem);
    do {
        p = gmem_page_iter_next(&it);
        if (p != UINT64_MAX) {
            pages[n++] = (uint32_t)p;
            __atomic_store_n(pages_normal, ++normal, __ATOMIC_RELAXED);
        }
        __atomic_store_n(pages_zero, it.next - normal, __ATOMIC_RELAXED);
        if (n == STATE_RAM_BATCH || (p == UINT64_MAX && n)) {
            state_buf_reset(&b);
            state_ram_encode(&enc, mm->mem->host, pages, n, true, &b);
            state_write_section(s, STATE_SEC_RAM, NULL, 0, 1, b.data, b.len);
            n = 0;
            if (cancel && atomic_load(cancel))
                state_stream_fail(s, -ECANCELED, "cancelled");
        }
    } while (p != UINT64_MAX && !state_stream_error(s));
    state_buf_fini(&b);
    state_ram_encoder_fini(&enc);
    return state_stream_error(s);
}

int mig_save(const struct mig_machine *mm, struct state_stream *s, uint32_t flags,
             uint64_t *pages_normal, uint64_t *pages_zero, const _Atomic bool *cancel)
{
    if (mig_write_start(mm, s, flags) < 0)
        return state_stream_error(s);
    mig_save_ram(mm, s, pages_normal, pages_zero, cancel);
    if (!state_stream_error(s))
        mm->ops->save_components(mm->opaque, s);
    state_write_eof(s);
    return state_stream_error(s);
}

/* ---- load ----------------------------------------------------------------------------- */

/* Explain a configuration mismatch: the first line that differs. */
static void mig_config_diff(const char *saved, const char *ours, char *err, size_t errlen)
{
    const char *a = saved, *b = ours;

    while (*a || *b) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");

        if (la != lb || memcmp(a, b, la) != 0) {
            snprintf(err, errlen,
                     "the state was saved by a differently configured machine: "
                     "saved '%.*s', this machine '%.*s'",
                     (int)la, a, (int)lb, b);
            return;
        }
        a += la + (a[la] == '\n');
        b += lb + (b[lb] == '\n');
    }
    snprintf(err, errlen, "the state's configuration hash does not match its configuration");
}

/* Header and configuration: the stream must come from a machine like ours. */
static int mig_load_start(const struct mig_machine *mm, struct state_stream *s,
                          struct state_header *h, struct state_buf *b, char *err, size_t errlen)
{
    struct state_section sec;
    char *ours = mm->ops->config_text(mm->opaque);
    int ret = -EPROTO;

    if (!ours) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (state_read_header(s, h) < 0 || state_read_section(s, &sec) < 0) {
        snprintf(err, errlen, "%s", state_stream_msg(s));
        goto out;
    }
    if (sec.type != STATE_SEC_CONFIG) {
        snprintf(err, errlen, "the state stream does not start with its configuration");
        goto out;
    }
    if (state_read_payload(s, &sec, b) < 0) {
        snprintf(err, errlen, "%s", state_stream_msg(s));
        goto out;
    }
    if (h->config_hash != XXH3_64bits(ours, strlen(ours))) {
        char *saved = strndup((const char *)b->data, b->len);

        mig_config_diff(saved ? saved : "", ours, err, errlen);
        free(saved);
        goto out;
    }
    if (b->len != strlen(ours) || memcmp(b->data, ours, b->len) != 0) {
        snprintf(err, errlen, "the state's configuration text does not match its hash");
        goto out;
    }
    ret = 0;
out:
    free(ours);
    return ret;
}

static void mig_zero_run(void *opaque, uint64_t first, uint64_t count)
{
    struct gmem *mem = opaque;

    memset(mem->host + first * GMEM_PAGE_SIZE, 0, count * GMEM_PAGE_SIZE);
}

struct mig_loader {
    const struct mig_machine *mm;
    struct state_stream *s;
    void (*round_cb)(void *opaque, uint32_t round);
    void *cb_opaque;
    uint8_t *scratch; /* STATE_RAM_BATCH pages */
    char *err;
    size_t errlen;
};

/* One section after the configuration: 0, or -errno with err set. */
static int mig_load_section(struct mig_loader *l, const struct state_section *sec,
                            struct state_buf *b)
{
    struct gmem *mem = l->mm->mem;

    switch (sec->type) {
    case STATE_SEC_RAM:
        if (state_ram_decode(b, mem->host, mem->npages, l->scratch) < 0) {
            snprintf(l->err, l->errlen, "RAM at byte %llu: %s",
                     (unsigned long long)state_stream_offset(l->s), state_buf_msg(b));
            return -EPROTO;
        }
        return 0;
    case STATE_SEC_ZERO:
        if (state_zero_decode(b, mem->npages, mig_zero_run, mem) < 0) {
            snprintf(l->err, l->errlen, "zero pages: %s", state_buf_msg(b));
            return -EPROTO;
        }
        return 0;
    case STATE_SEC_ROUND: {
        uint32_t round = state_get_u32(b);

        if (state_buf_error(b)) {
            snprintf(l->err, l->errlen, "ROUND marker: %s", state_buf_msg(b));
            return -EPROTO;
        }
        if (l->round_cb)
            l->round_cb(l->cb_opaque, round);
        return 0;
    }
    case STATE_SEC_CONFIG:
        snprintf(l->err, l->errlen, "a second configuration section");
        return -EPROTO;
    case STATE_SEC_DEVICE:
        return l->mm->ops->load_component(l->mm->opaque, sec, b, l->err, l->errlen) < 0 ? -EPROTO
                                                                                        : 0;
    default: snprintf(l->err, l->errlen, "unexpected section type %u", sec->type); return -EPROTO;
    }
}

int mig_load(const struct mig_machine *mm, struct state_stream *s,
             void (*round_cb)(void *opaque, uint32_t round), void *cb_opaque, char *err,
             size_t errlen)
{
    struct mig_loader l = {mm, s, round_cb, cb_opaque, NULL, err, errlen};
    struct state_header h;
    struct state_section sec;
    struct state_buf b;
    int ret;

    err[0] = '\0';
    state_buf_init(&b);
    l.scratch = malloc((size_t)STATE_RAM_BATCH * STATE_PAGE_SIZE);
    if (!l.scratch) {
        snprintf(err, errlen, "out of memory");
        ret = -ENOMEM;
        goto out;
    }
    ret = mig_load_start(mm, s, &h, &b, err, errlen);
    if (ret < 0)
        goto out;
    gmem_clear(mm->mem);
    mm->ops->load_begin(mm->opaque);
    for (;;) {
        if (state_read_section(s, &sec) < 0)
            goto stream_err;
        if (sec.type == STATE_SEC_EOF)
            break;
        if (state_read_payload(s, &sec, &b) < 0)
            goto stream_err;
        ret = mig_load_section(&l, &sec, &b);
        if (ret < 0)
            goto out;
    }
    if (state_read_eof(s, &sec) < 0)
        goto stream_err;
    /* A file ends here.  A live stream's socket stays open for the commit
     * protocol, but nothing may follow EOF before the source has our
     * verdict: bytes already here are a second stream or an attack. */
    if (!(h.flags & STATE_F_LIVE) ? !state_stream_at_eof(s) : state_stream_buffered(s) > 0) {
        state_stream_fail(s, -EPROTO, "data after the end of the state");
        goto stream_err;
    }
    ret = mm->ops->load_end(mm->opaque, err, errlen);
    goto out;

stream_err:
    snprintf(err, errlen, "%s", state_stream_msg(s)[0] ? state_stream_msg(s) : "malformed state");
    ret = state_stream_error(s) ? state_stream_error(s) : -EPROTO;
out:
    if (ret < 0 && !err[0])
        snprintf(err, errlen, "malformed state");
    state_buf_fini(&b);
    free(l.scratch);
    return ret;
}
