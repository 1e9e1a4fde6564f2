/*
 * state_reader: the one walk over a state stream (state_reader.h).
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "state/state_reader.h"

enum state_reader_phase {
    STATE_READER_NEW,     /* state_reader_start not called (or it failed) */
    STATE_READER_STARTED, /* header and CONFIG read: sections follow */
    STATE_READER_ENDED,   /* the EOF item was returned */
    STATE_READER_PAUSED,  /* the PAUSE item was returned */
};

struct state_reader {
    struct state_stream *s; /* not owned */
    enum state_reader_phase phase;
    struct state_header h;
    bool header_ok;   /* h was read and is valid */
    bool checksum_ok; /* the EOF checksum matched */
    char *config;     /* the CONFIG text, NUL-terminated */
    uint8_t *ram;     /* where RAM batches go; NULL: validate only */
    uint64_t npages;  /* RAM size in pages */
    uint8_t *scratch; /* STATE_RAM_BATCH pages for LZ4, allocated at the first batch */
    void (*zero_fn)(void *opaque, uint64_t first, uint64_t count);
    void *zero_opaque;
    uint32_t round;      /* the last ROUND marker's number (0: none yet) */
    bool session;        /* recoverable: the SESSION was read */
    uint64_t checkpoint; /* recoverable: the last CHECKPOINT verified */
    uint64_t digest;     /* recoverable: the stream's checksum before the current section */
    struct state_disk disks[STATE_DISKS_MAX]; /* DISKS, once read */
    unsigned ndisks;
    uint64_t sums[STATE_DISKS_MAX][2];
    struct state_buf buf; /* the current section's payload */
    int err;
    char msg[400];
};

struct state_reader *state_reader_new(struct state_stream *s)
{
    struct state_reader *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->s = s;
    state_buf_init(&r->buf);
    return r;
}

void state_reader_free(struct state_reader *r)
{
    if (!r)
        return;
    state_buf_fini(&r->buf);
    free(r->scratch);
    free(r->config);
    free(r);
}

int state_reader_error(const struct state_reader *r)
{
    return r->err;
}

const char *state_reader_msg(const struct state_reader *r)
{
    return r->msg;
}

const struct state_header *state_reader_header(const struct state_reader *r)
{
    return r->header_ok ? &r->h : NULL;
}

bool state_reader_checksum_ok(const struct state_reader *r)
{
    return r->checksum_ok;
}

const char *state_reader_config(const struct state_reader *r)
{
    return r->config;
}

bool state_reader_live(const struct state_reader *r)
{
    return r->h.flags & STATE_F_LIVE;
}

void state_reader_set_ram(struct state_reader *r, uint8_t *ram, uint64_t npages)
{
    r->ram = ram;
    r->npages = npages;
}

void state_reader_on_zero(struct state_reader *r,
                          void (*fn)(void *opaque, uint64_t first, uint64_t count), void *opaque)
{
    r->zero_fn = fn;
    r->zero_opaque = opaque;
}

/* Record a refusal (the first one wins); returns the error. */
static int reader_fail(struct state_reader *r, int err, const char *fmt, ...) gw_printf(3, 4);
static int reader_fail(struct state_reader *r, int err, const char *fmt, ...)
{
    va_list ap;

    if (r->err)
        return r->err;
    r->err = err ? err : -EPROTO;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    return r->err;
}

/* The stream failed: its reason is ours. */
static int reader_stream_failed(struct state_reader *r)
{
    return reader_fail(r, state_stream_error(r->s), "%s", state_stream_msg(r->s));
}

static const char *reader_type_name(uint8_t type)
{
    switch (type) {
    case STATE_SEC_CONFIG: return "CONFIG";
    case STATE_SEC_RAM: return "RAM";
    case STATE_SEC_DEVICE: return "component";
    case STATE_SEC_ROUND: return "ROUND";
    case STATE_SEC_ZERO: return "ZERO";
    case STATE_SEC_SESSION: return "SESSION";
    case STATE_SEC_CHECKPOINT: return "CHECKPOINT";
    case STATE_SEC_PAUSE: return "PAUSE";
    case STATE_SEC_DISKS: return "DISKS";
    case STATE_SEC_BLOCK: return "BLOCK";
    case STATE_SEC_DISKSUM: return "DISKSUM";
    default: return "EOF";
    }
}

/* Read a section header and its payload into r->buf (EOF: header only). */
static int reader_section(struct state_reader *r, struct state_item *it)
{
    memset(it, 0, sizeof(*it));
    it->offset = state_stream_offset(r->s);
    if (r->h.flags & STATE_F_RECOVER)
        r->digest = state_stream_digest(r->s); /* a CHECKPOINT covers what came before it */
    if (state_read_section(r->s, &it->sec) < 0)
        return reader_stream_failed(r);
    if (it->sec.type == STATE_SEC_EOF)
        return 0;
    /* the framing sections have one version so far; a newer one would mean
     * a layout this godwit cannot read (components carry their own) */
    if (it->sec.type != STATE_SEC_DEVICE && it->sec.version != 1)
        return reader_fail(r, -EPROTO, "%s section version %u at byte %llu, this godwit reads 1",
                           reader_type_name(it->sec.type), it->sec.version,
                           (unsigned long long)it->offset);
    if (state_read_payload(r->s, &it->sec, &r->buf) < 0)
        return reader_stream_failed(r);
    return 0;
}

int state_reader_start(struct state_reader *r)
{
    struct state_item it;

    if (r->err)
        return r->err;
    assert(r->phase == STATE_READER_NEW);
    if (state_read_header(r->s, &r->h) < 0)
        return reader_stream_failed(r);
    r->header_ok = true;
    if (reader_section(r, &it) < 0)
        return r->err;
    if (it.sec.type != STATE_SEC_CONFIG)
        return reader_fail(r, -EPROTO, "the state stream does not start with its configuration");
    /* kept even if refused below, to show what it says (up to a NUL) */
    r->config = strndup(r->buf.len ? (const char *)r->buf.data : "", r->buf.len);
    if (!r->config)
        return reader_fail(r, -ENOMEM, "out of memory");
    if (XXH3_64bits(r->buf.data, r->buf.len) != r->h.config_hash)
        return reader_fail(r, -EPROTO,
                           "the configuration does not match the header's hash (corrupted)");
    /* lines of printable ASCII: what a godwit writes, and safe to show */
    for (size_t i = 0; i < r->buf.len; i++) {
        uint8_t c = r->buf.data[i];

        if (c != '\n' && (c < 0x20 || c > 0x7e))
            return reader_fail(r, -EPROTO,
                               "the configuration text holds a byte that is not printable "
                               "(0x%02x at offset %zu)",
                               c, i);
    }
    r->phase = STATE_READER_STARTED;
    return 0;
}

/* Zero runs into the caller's RAM. */
static void reader_zero_ram(void *opaque, uint64_t first, uint64_t count)
{
    struct state_reader *r = opaque;

    memset(r->ram + first * STATE_PAGE_SIZE, 0, count * STATE_PAGE_SIZE);
}

static int reader_ram(struct state_reader *r, struct state_item *it)
{
    int n;

    if (!r->scratch) {
        r->scratch = malloc((size_t)STATE_RAM_BATCH * STATE_PAGE_SIZE);
        if (!r->scratch)
            return reader_fail(r, -ENOMEM, "out of memory");
    }
    n = state_ram_decode(&r->buf, r->ram, r->npages, r->scratch);
    if (n < 0)
        return reader_fail(r, n, "RAM at byte %llu: %s", (unsigned long long)it->offset,
                           state_buf_msg(&r->buf));
    it->pages = (uint32_t)n;
    it->encoding = r->buf.data[0];
    return 0;
}

static int reader_zero(struct state_reader *r, struct state_item *it)
{
    void (*fn)(void *, uint64_t, uint64_t) = r->zero_fn;
    void *opaque = r->zero_opaque;
    int n;

    if (!state_reader_live(r))
        return reader_fail(r, -EPROTO, "zero pages at byte %llu in a stream not marked live",
                           (unsigned long long)it->offset);
    if (!fn && r->ram) {
        fn = reader_zero_ram;
        opaque = r;
    }
    n = state_zero_decode(&r->buf, r->npages, fn, opaque);
    if (n < 0)
        return reader_fail(r, n, "zero pages at byte %llu: %s", (unsigned long long)it->offset,
                           state_buf_msg(&r->buf));
    it->pages = (uint32_t)n;
    return 0;
}

static int reader_round(struct state_reader *r, struct state_item *it)
{
    if (!state_reader_live(r))
        return reader_fail(r, -EPROTO, "a ROUND marker at byte %llu in a stream not marked live",
                           (unsigned long long)it->offset);
    if (state_round_decode(&r->buf, &it->round) < 0)
        return reader_fail(r, -EPROTO, "%s", state_buf_msg(&r->buf));
    if (it->round <= r->round)
        return reader_fail(r, -EPROTO, "ROUND marker %u after round %u (rounds must increase)",
                           it->round, r->round);
    r->round = it->round;
    return 0;
}

static bool reader_recoverable(const struct state_reader *r)
{
    return (r->h.flags & (STATE_F_LIVE | STATE_F_RECOVER)) == (STATE_F_LIVE | STATE_F_RECOVER);
}

static int reader_session(struct state_reader *r, struct state_item *it)
{
    if (!reader_recoverable(r))
        return reader_fail(r, -EPROTO, "a SESSION at byte %llu in a stream not marked recoverable",
                           (unsigned long long)it->offset);
    if (r->session)
        return reader_fail(r, -EPROTO, "a second SESSION at byte %llu",
                           (unsigned long long)it->offset);
    if (state_session_decode(&r->buf, &it->session, &it->attempt) < 0)
        return reader_fail(r, -EPROTO, "%s", state_buf_msg(&r->buf));
    if (!(r->h.flags & STATE_F_RESUME) != !it->attempt)
        return reader_fail(r, -EPROTO,
                           it->attempt ? "a SESSION resuming (attempt %llu) in a first stream"
                                       : "a resumed stream whose SESSION says attempt %llu",
                           (unsigned long long)it->attempt);
    r->session = true;
    return 0;
}

static int reader_checkpoint(struct state_reader *r, struct state_item *it)
{
    uint64_t digest;

    if (!reader_recoverable(r))
        return reader_fail(r, -EPROTO,
                           "a CHECKPOINT at byte %llu in a stream not marked recoverable",
                           (unsigned long long)it->offset);
    if (state_checkpoint_decode(&r->buf, &it->checkpoint, &digest) < 0)
        return reader_fail(r, -EPROTO, "%s", state_buf_msg(&r->buf));
    if (it->checkpoint <= r->checkpoint)
        return reader_fail(r, -EPROTO, "CHECKPOINT %llu after %llu (checkpoints must increase)",
                           (unsigned long long)it->checkpoint, (unsigned long long)r->checkpoint);
    if (digest != r->digest)
        return reader_fail(r, -EBADMSG,
                           "CHECKPOINT %llu at byte %llu: checksum mismatch, the stream says "
                           "%016llx, content hashes to %016llx (corrupted)",
                           (unsigned long long)it->checkpoint, (unsigned long long)it->offset,
                           (unsigned long long)digest, (unsigned long long)r->digest);
    r->checkpoint = it->checkpoint;
    return 0;
}

static int reader_pause(struct state_reader *r, struct state_item *it)
{
    if (!reader_recoverable(r))
        return reader_fail(r, -EPROTO, "a PAUSE at byte %llu in a stream not marked recoverable",
                           (unsigned long long)it->offset);
    if (it->sec.len)
        return reader_fail(r, -EPROTO, "a PAUSE of %u bytes (it has none)", it->sec.len);
    r->phase = STATE_READER_PAUSED;
    return 0;
}

static int reader_disks(struct state_reader *r, struct state_item *it)
{
    if (!state_reader_live(r))
        return reader_fail(r, -EPROTO, "DISKS at byte %llu in a stream not marked live",
                           (unsigned long long)it->offset);
    if (r->ndisks)
        return reader_fail(r, -EPROTO, "a second DISKS at byte %llu",
                           (unsigned long long)it->offset);
    if (state_disks_decode(&r->buf, r->disks, &r->ndisks) < 0)
        return reader_fail(r, -EPROTO, "%s", state_buf_msg(&r->buf));
    it->disks = r->disks;
    it->ndisks = r->ndisks;
    return 0;
}

static int reader_block(struct state_reader *r, struct state_item *it)
{
    if (!r->ndisks)
        return reader_fail(r, -EPROTO, "a BLOCK at byte %llu before DISKS",
                           (unsigned long long)it->offset);
    if (state_blk_decode(&r->buf, r->disks, r->ndisks, &it->blk) < 0)
        return reader_fail(r, -EPROTO, "at byte %llu: %s", (unsigned long long)it->offset,
                           state_buf_msg(&r->buf));
    it->disks = r->disks;
    it->ndisks = r->ndisks;
    return 0;
}

static int reader_disksum(struct state_reader *r, struct state_item *it)
{
    if (!r->ndisks)
        return reader_fail(r, -EPROTO, "a DISKSUM at byte %llu before DISKS",
                           (unsigned long long)it->offset);
    if (state_disksum_decode(&r->buf, r->sums, r->ndisks) < 0)
        return reader_fail(r, -EPROTO, "%s", state_buf_msg(&r->buf));
    it->sums = (const uint64_t(*)[2])r->sums;
    it->disks = r->disks;
    it->ndisks = r->ndisks;
    return 0;
}

bool state_reader_paused(const struct state_reader *r)
{
    return r->phase == STATE_READER_PAUSED;
}

uint64_t state_reader_checkpoint(const struct state_reader *r)
{
    return r->checkpoint;
}

static int reader_eof(struct state_reader *r)
{
    if (state_read_eof(r->s, NULL) < 0)
        return reader_stream_failed(r);
    r->checksum_ok = true;
    r->phase = STATE_READER_ENDED;
    /* a file ends here; a live stream's connection stays open for the
     * commit protocol (state_reader_expect_end) */
    if (!state_reader_live(r) && !state_stream_at_eof(r->s)) {
        if (state_stream_error(r->s))
            return reader_stream_failed(r);
        return reader_fail(r, -EPROTO, "data after the end of the state");
    }
    return 0;
}

int state_reader_next(struct state_reader *r, struct state_item *it)
{
    if (r->err)
        return r->err;
    if (r->phase != STATE_READER_STARTED)
        return reader_fail(r, -EPROTO, "%s",
                           r->phase == STATE_READER_NEW      ? "the state's header was not read"
                           : r->phase == STATE_READER_PAUSED ? "read past a PAUSE"
                                                             : "read past the end of the state");
    if (reader_section(r, it) < 0)
        return r->err;
    if (reader_recoverable(r) && !r->session && it->sec.type != STATE_SEC_SESSION)
        return reader_fail(r, -EPROTO,
                           "a recoverable stream whose configuration is not followed by its "
                           "SESSION (%s at byte %llu)",
                           reader_type_name(it->sec.type), (unsigned long long)it->offset);
    switch (it->sec.type) {
    case STATE_SEC_SESSION: return reader_session(r, it);
    case STATE_SEC_CHECKPOINT: return reader_checkpoint(r, it);
    case STATE_SEC_PAUSE: return reader_pause(r, it);
    case STATE_SEC_DISKS: return reader_disks(r, it);
    case STATE_SEC_BLOCK: return reader_block(r, it);
    case STATE_SEC_DISKSUM: return reader_disksum(r, it);
    case STATE_SEC_RAM: return reader_ram(r, it);
    case STATE_SEC_ZERO: return reader_zero(r, it);
    case STATE_SEC_ROUND: return reader_round(r, it);
    case STATE_SEC_EOF: return reader_eof(r);
    case STATE_SEC_CONFIG: return reader_fail(r, -EPROTO, "a second configuration section");
    case STATE_SEC_DEVICE:
        if (!it->sec.name[0])
            return reader_fail(r, -EPROTO, "a component section without a name at byte %llu",
                               (unsigned long long)it->offset);
        it->payload = &r->buf;
        return 0;
    }
    /* state_read_section refuses unknown types */
    return reader_fail(r, -EPROTO, "unknown section type %u", it->sec.type);
}

int state_reader_expect_end(struct state_reader *r, int timeout_ms)
{
    int more;

    if (r->err)
        return r->err;
    if (r->phase != STATE_READER_ENDED)
        return reader_fail(r, -EPROTO, "the state has not ended yet");
    if (!state_reader_live(r))
        return 0; /* checked at EOF */
    more = state_stream_pending(r->s, timeout_ms);
    if (more < 0)
        return reader_fail(r, more, "after the end of the state: %s", strerror(-more));
    if (more)
        return reader_fail(r, -EPROTO, "data after the end of the state");
    return 0;
}
