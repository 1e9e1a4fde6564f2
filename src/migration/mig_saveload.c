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
#include "state/state_reader.h"

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
    if (mm->uuid)
        memcpy(h.uuid, mm->uuid, sizeof(h.uuid));
    if (mm->name)
        snprintf(h.name, sizeof(h.name), "%s", mm->name);
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

/* The configuration read must be the machine's own. */
static int mig_load_config(const struct mig_machine *mm, struct state_reader *r, char *err,
                           size_t errlen)
{
    char *ours = mm->ops->config_text(mm->opaque);
    const char *saved = state_reader_config(r);
    int ret = 0;

    if (!ours) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (strcmp(saved, ours) != 0) {
        mig_config_diff(saved, ours, err, errlen);
        ret = -EPROTO;
    }
    free(ours);
    return ret;
}

int mig_load(const struct mig_machine *mm, struct state_stream *s,
             void (*round_cb)(void *opaque, uint32_t round), void *cb_opaque, char *err,
             size_t errlen)
{
    struct mig_load_hooks h = {.opaque = cb_opaque, .round = round_cb};
    int ret = mig_load_live(mm, s, &h, err, errlen);

    if (ret == MIG_LOAD_PAUSED) { /* only a live caller can resume */
        snprintf(err, errlen, "the source paused a stream nobody can resume");
        return -EPROTO;
    }
    return ret;
}

int mig_load_live(const struct mig_machine *mm, struct state_stream *s, struct mig_load_hooks *h,
                  char *err, size_t errlen)
{
    struct state_reader *r = state_reader_new(s);
    const struct state_header *hdr;
    bool disks = false, sums = false;
    struct state_item it;
    int ret;

    err[0] = '\0';
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    ret = state_reader_start(r);
    if (ret < 0)
        goto reader_err;
    ret = mig_load_config(mm, r, err, errlen);
    if (ret < 0)
        goto out;
    hdr = state_reader_header(r);
    h->flags = hdr->flags;
    if ((hdr->flags & STATE_F_POSTCOPY) && !h->postcopy_ok) {
        snprintf(err, errlen,
                 "the source may switch to post-copy, but capability postcopy-ram "
                 "is not set here (set it on both sides)");
        ret = -EPROTO;
        goto out;
    }
    if (!(hdr->flags & STATE_F_RESUME) != !h->resume) {
        snprintf(err, errlen, "%s",
                 h->resume ? "not a resumed stream: this migration is paused and waits for its "
                             "source to resume it"
                           : "a resumed stream, but no migration here was paused");
        ret = -EPROTO;
        goto out;
    }
    if (!h->resume)
        gmem_clear(mm->mem); /* a resumed stream goes on from what is here */
    state_reader_set_ram(r, mm->mem->host, mm->mem->npages);
    mm->ops->load_begin(mm->opaque);
    for (;;) {
        ret = state_reader_next(r, &it);
        if (ret < 0)
            goto reader_err;
        if (it.sec.type == STATE_SEC_EOF)
            break;
        if (it.sec.type == STATE_SEC_PAUSE) {
            ret = MIG_LOAD_PAUSED;
            goto out;
        }
        if (it.sec.type == STATE_SEC_ROUND && h->round)
            h->round(h->opaque, it.round);
        if (it.sec.type == STATE_SEC_CHECKPOINT && h->checkpoint)
            h->checkpoint(h->opaque, it.checkpoint);
        if (it.sec.type == STATE_SEC_SESSION && h->session &&
            (ret = h->session(h->opaque, it.session, it.attempt, err, errlen)) < 0)
            goto out;
        if (it.sec.type == STATE_SEC_DISKS || it.sec.type == STATE_SEC_BLOCK ||
            it.sec.type == STATE_SEC_DISKSUM) {
            if (!h->disks || !h->block || !h->disksum) {
                snprintf(err, errlen,
                         "the stream carries disks, which only a live migration can "
                         "take");
                ret = -EPROTO;
                goto out;
            }
            if (sums) {
                snprintf(err, errlen, "a disk section after DISKSUM");
                ret = -EPROTO;
                goto out;
            }
            if (it.sec.type == STATE_SEC_DISKS)
                ret = h->disks(h->opaque, it.disks, it.ndisks, err, errlen);
            else if (it.sec.type == STATE_SEC_BLOCK)
                ret = h->block(h->opaque, &it.blk, err, errlen);
            else
                ret = h->disksum(h->opaque, it.sums, it.ndisks, err, errlen);
            if (ret < 0)
                goto out;
            if (it.sec.type == STATE_SEC_DISKS)
                disks = true;
            if (it.sec.type == STATE_SEC_DISKSUM)
                sums = true;
        }
        if (it.sec.type == STATE_SEC_DEVICE) {
            h->components = true;
            ret = mm->ops->load_component(mm->opaque, &it.sec, it.payload, err, errlen);
            if (ret < 0)
                goto out;
        }
    }
    /* A file ended at EOF.  A live stream's socket stays open for the commit
     * protocol, but nothing may follow EOF before the source has our
     * verdict: bytes already here are a second stream or an attack. */
    ret = state_reader_expect_end(r, 0);
    if (ret < 0)
        goto reader_err;
    if (disks && !sums) {
        snprintf(err, errlen, "the stream named its disks but sent no DISKSUM: not running them");
        ret = -EPROTO;
        goto out;
    }
    ret = mm->ops->load_end(mm->opaque, err, errlen);
    goto out;

reader_err:
    snprintf(err, errlen, "%s", state_reader_msg(r)[0] ? state_reader_msg(r) : "malformed state");
out:
    if (ret < 0 && !err[0])
        snprintf(err, errlen, "malformed state");
    state_reader_free(r);
    return ret;
}
