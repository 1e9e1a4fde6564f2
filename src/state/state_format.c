/*
 * The state stream's framing: header, sections, EOF checksum
 * (state_format.h, docs/state.md).  RAM batches and zero runs:
 * state_ram.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state/state_format.h"

/*
 * Header layout (format 2):
 *    0  magic[8]
 *    8  u32 version      12  u32 endian check
 *   16  u32 page size    20  u32 flags
 *   24  u64 configuration hash
 *   32  uuid[16]
 *   48  u8 name length, name[63] zero padded
 *  112
 */
#define STATE_HDR_FIXED 16 /* magic, version, endian check: the same in every format */
#define STATE_HDR_UUID  32
#define STATE_HDR_NAME  48

bool state_vm_name_valid(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > STATE_VM_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] > 0x7e)
            return false;
    return true;
}

int state_uuid_parse(const char *text, uint8_t uuid[STATE_UUID_LEN])
{
    uint8_t out[STATE_UUID_LEN];
    unsigned k = 0;

    if (strlen(text) != STATE_UUID_TEXT_LEN)
        return -EINVAL;
    for (unsigned i = 0; i < STATE_UUID_TEXT_LEN;) {
        int hi, lo;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i++] != '-')
                return -EINVAL;
            continue;
        }
        hi = gw_hex_digit(text[i]);
        lo = gw_hex_digit(text[i + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[k++] = (uint8_t)(hi << 4 | lo);
        i += 2;
    }
    memcpy(uuid, out, sizeof(out));
    return 0;
}

void state_uuid_format(const uint8_t uuid[STATE_UUID_LEN], char out[STATE_UUID_TEXT_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;

    for (unsigned i = 0; i < STATE_UUID_LEN; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[uuid[i] >> 4];
        *p++ = hex[uuid[i] & 15];
    }
    *p = '\0';
}

bool state_uuid_is_nil(const uint8_t uuid[STATE_UUID_LEN])
{
    for (unsigned i = 0; i < STATE_UUID_LEN; i++)
        if (uuid[i])
            return false;
    return true;
}

int state_write_header(struct state_stream *s, const struct state_header *h)
{
    uint8_t b[STATE_HEADER_LEN] = {0};
    size_t nlen = strnlen(h->name, sizeof(h->name));

    if (nlen && (nlen > STATE_VM_NAME_MAX || !state_vm_name_valid(h->name))) {
        state_stream_fail(s, -EINVAL, "the VM name cannot go into a state header");
        return -EINVAL;
    }
    memcpy(b, STATE_MAGIC, STATE_MAGIC_LEN);
    gw_put_le(b + 8, h->version, 4);
    gw_put_le(b + 12, STATE_ENDIAN_CHECK, 4);
    gw_put_le(b + 16, h->page_size, 4);
    gw_put_le(b + 20, h->flags, 4);
    gw_put_le(b + 24, h->config_hash, 8);
    memcpy(b + STATE_HDR_UUID, h->uuid, STATE_UUID_LEN);
    b[STATE_HDR_NAME] = (uint8_t)nlen;
    memcpy(b + STATE_HDR_NAME + 1, h->name, nlen);
    return state_stream_write(s, b, sizeof(b));
}

int state_read_header(struct state_stream *s, struct state_header *h)
{
    uint8_t b[STATE_HEADER_LEN];
    uint32_t endian;
    unsigned nlen;

    memset(h, 0, sizeof(*h));
    /* the part every format shares first: an old or foreign stream is
     * named for what it is before its shorter header is read as ours */
    if (state_stream_read(s, b, STATE_HDR_FIXED) < 0)
        return state_stream_error(s);
    if (memcmp(b, STATE_MAGIC, STATE_MAGIC_LEN) != 0) {
        state_stream_fail(s, -EPROTO, "not a godwit state stream (bad magic)");
        return -EPROTO;
    }
    h->version = (uint32_t)gw_get_le(b + 8, 4);
    endian = (uint32_t)gw_get_le(b + 12, 4);
    if (endian != STATE_ENDIAN_CHECK) {
        state_stream_fail(s, -EPROTO, "bad endianness check 0x%08x (expected 0x%08x)", endian,
                          STATE_ENDIAN_CHECK);
        return -EPROTO;
    }
    if (h->version == 0) {
        state_stream_fail(s, -EPROTO, "bad state format version 0");
        return -EPROTO;
    }
    if (h->version < STATE_FORMAT_VERSION) {
        state_stream_fail(s, -EPROTO,
                          "this state was saved by an older godwit (format %u); this godwit "
                          "reads format %u only: restore it with the godwit that saved it",
                          h->version, STATE_FORMAT_VERSION);
        return -EPROTO;
    }
    if (h->version > STATE_FORMAT_VERSION) {
        state_stream_fail(s, -EPROTO,
                          "this state was saved by a newer godwit (format %u); this godwit "
                          "reads format %u",
                          h->version, STATE_FORMAT_VERSION);
        return -EPROTO;
    }
    if (state_stream_read(s, b + STATE_HDR_FIXED, STATE_HEADER_LEN - STATE_HDR_FIXED) < 0)
        return state_stream_error(s);
    h->page_size = (uint32_t)gw_get_le(b + 16, 4);
    h->flags = (uint32_t)gw_get_le(b + 20, 4);
    h->config_hash = gw_get_le(b + 24, 8);
    if (h->page_size != STATE_PAGE_SIZE) {
        state_stream_fail(s, -EPROTO, "page size %u, expected %u", h->page_size, STATE_PAGE_SIZE);
        return -EPROTO;
    }
    if (h->flags & ~(uint32_t)STATE_F_KNOWN) {
        state_stream_fail(s, -EPROTO, "unknown header flags 0x%x", h->flags);
        return -EPROTO;
    }
    if (((h->flags & STATE_F_RECOVER) && !(h->flags & STATE_F_LIVE)) ||
        ((h->flags & STATE_F_RESUME) && !(h->flags & STATE_F_RECOVER)) ||
        ((h->flags & (STATE_F_NETFWD | STATE_F_POSTCOPY)) && !(h->flags & STATE_F_LIVE))) {
        state_stream_fail(s, -EPROTO,
                          "header flags 0x%x: a recoverable, resumed or forwarding stream must be "
                          "a live one",
                          h->flags);
        return -EPROTO;
    }
    memcpy(h->uuid, b + STATE_HDR_UUID, STATE_UUID_LEN);
    nlen = b[STATE_HDR_NAME];
    if (nlen > STATE_VM_NAME_MAX) {
        state_stream_fail(s, -EPROTO, "a VM name of %u bytes in the header (at most %u)", nlen,
                          STATE_VM_NAME_MAX);
        return -EPROTO;
    }
    for (unsigned i = 0; i < nlen; i++) {
        uint8_t c = b[STATE_HDR_NAME + 1 + i];

        if (c < 0x20 || c > 0x7e) {
            state_stream_fail(s, -EPROTO, "the VM name in the header is not printable text");
            return -EPROTO;
        }
    }
    for (unsigned i = STATE_HDR_NAME + 1 + nlen; i < STATE_HEADER_LEN; i++) {
        if (b[i]) {
            state_stream_fail(s, -EPROTO, "bytes after the VM name in the header are not zero");
            return -EPROTO;
        }
    }
    memcpy(h->name, b + STATE_HDR_NAME + 1, nlen);
    h->name[nlen] = '\0';
    return 0;
}

#define STATE_SEC_HDR_LEN 12

int state_write_section(struct state_stream *s, uint8_t type, const char *name, uint32_t instance,
                        uint16_t version, const void *payload, size_t len)
{
    uint8_t b[STATE_SEC_HDR_LEN];
    size_t nlen = name ? strlen(name) : 0;

    if (nlen > STATE_NAME_MAX || len > STATE_BUF_MAX) {
        state_stream_fail(s, -EINVAL, "section %s too large", name ? name : "?");
        return -EINVAL;
    }
    b[0] = type;
    b[1] = (uint8_t)nlen;
    gw_put_le(b + 2, version, 2);
    gw_put_le(b + 4, instance, 4);
    gw_put_le(b + 8, len, 4);
    state_stream_write(s, b, sizeof(b));
    if (nlen)
        state_stream_write(s, name, nlen);
    if (len)
        state_stream_write(s, payload, len);
    return state_stream_error(s);
}

static bool state_type_known(uint8_t t)
{
    return t == STATE_SEC_CONFIG || t == STATE_SEC_RAM || t == STATE_SEC_DEVICE ||
           t == STATE_SEC_ROUND || t == STATE_SEC_ZERO || t == STATE_SEC_SESSION ||
           t == STATE_SEC_CHECKPOINT || t == STATE_SEC_PAUSE || t == STATE_SEC_DISKS ||
           t == STATE_SEC_BLOCK || t == STATE_SEC_DISKSUM || t == STATE_SEC_EOF;
}

int state_read_section(struct state_stream *s, struct state_section *sec)
{
    uint8_t b[STATE_SEC_HDR_LEN];
    uint64_t at = state_stream_offset(s);

    memset(sec, 0, sizeof(*sec));
    if (state_stream_read(s, b, sizeof(b)) < 0)
        return state_stream_error(s);
    sec->type = b[0];
    sec->version = (uint16_t)gw_get_le(b + 2, 2);
    sec->instance = (uint32_t)gw_get_le(b + 4, 4);
    sec->len = (uint32_t)gw_get_le(b + 8, 4);
    if (!state_type_known(sec->type)) {
        state_stream_fail(s, -EPROTO, "unknown section type %u at byte %llu", sec->type,
                          (unsigned long long)at);
        return -EPROTO;
    }
    if (b[1] > STATE_NAME_MAX) {
        state_stream_fail(s, -EPROTO, "section name of %u bytes at byte %llu", b[1],
                          (unsigned long long)at);
        return -EPROTO;
    }
    if (sec->len > STATE_BUF_MAX) {
        state_stream_fail(s, -EPROTO, "section of %u bytes at byte %llu (limit %u)", sec->len,
                          (unsigned long long)at, STATE_BUF_MAX);
        return -EPROTO;
    }
    if (state_stream_read(s, sec->name, b[1]) < 0)
        return state_stream_error(s);
    sec->name[b[1]] = '\0';
    for (unsigned i = 0; i < b[1]; i++) {
        unsigned char c = (unsigned char)sec->name[i];
        if (c < 0x21 || c > 0x7e) {
            state_stream_fail(s, -EPROTO, "bad section name at byte %llu", (unsigned long long)at);
            return -EPROTO;
        }
    }
    if (sec->type == STATE_SEC_EOF && sec->len != 8) {
        state_stream_fail(s, -EPROTO, "EOF section of %u bytes", sec->len);
        return -EPROTO;
    }
    return 0;
}

int state_read_payload(struct state_stream *s, const struct state_section *sec, struct state_buf *b)
{
    state_buf_reset(b);
    if (sec->len) {
        /* grow the writer to len, then fill it straight from the stream */
        if (b->cap < sec->len) {
            size_t cap = b->cap ? b->cap : 256;
            uint8_t *p;

            while (cap < sec->len)
                cap *= 2;
            p = realloc(b->cap ? b->data : NULL, cap);
            if (!p) {
                state_stream_fail(s, -ENOMEM, "out of memory for a %u-byte section", sec->len);
                return -ENOMEM;
            }
            b->data = p;
            b->cap = cap;
        }
        if (state_stream_read(s, b->data, sec->len) < 0)
            return state_stream_error(s);
    }
    b->len = sec->len;
    b->pos = 0;
    return 0;
}

int state_write_eof(struct state_stream *s)
{
    uint8_t b[STATE_SEC_HDR_LEN] = {STATE_SEC_EOF, 0};
    uint8_t sum[8];

    gw_put_le(b + 8, 8, 4);
    state_stream_write(s, b, sizeof(b));
    gw_put_le(sum, state_stream_digest(s), 8);
    state_stream_write(s, sum, sizeof(sum));
    return state_stream_flush(s);
}

int state_read_eof(struct state_stream *s, const struct state_section *sec)
{
    uint64_t want = state_stream_digest(s), got;
    uint8_t sum[8];

    (void)sec;
    if (state_stream_read(s, sum, sizeof(sum)) < 0)
        return state_stream_error(s);
    got = gw_get_le(sum, 8);
    if (got != want) {
        state_stream_fail(s, -EBADMSG,
                          "checksum mismatch: stream says %016llx, content hashes to %016llx "
                          "(corrupted)",
                          (unsigned long long)got, (unsigned long long)want);
        return -EBADMSG;
    }
    return 0;
}

int state_write_round(struct state_stream *s, uint32_t round)
{
    uint8_t b[4];

    gw_put_le(b, round, 4);
    return state_write_section(s, STATE_SEC_ROUND, NULL, 0, 1, b, sizeof(b));
}

int state_round_decode(struct state_buf *b, uint32_t *round)
{
    *round = state_get_u32(b);
    if (state_buf_expect_end(b, "ROUND marker") < 0)
        return b->err;
    if (*round == 0)
        state_buf_fail(b, -EPROTO, "ROUND marker 0 (rounds count from 1)");
    return b->err;
}

int state_write_session(struct state_stream *s, uint64_t session, uint64_t attempt)
{
    uint8_t b[16];

    gw_put_le(b, session, 8);
    gw_put_le(b + 8, attempt, 8);
    return state_write_section(s, STATE_SEC_SESSION, NULL, 0, 1, b, sizeof(b));
}

int state_session_decode(struct state_buf *b, uint64_t *session, uint64_t *attempt)
{
    *session = state_get_u64(b);
    *attempt = state_get_u64(b);
    if (state_buf_expect_end(b, "SESSION") < 0)
        return b->err;
    if (*session == 0)
        state_buf_fail(b, -EPROTO, "SESSION 0 (a session id is never 0)");
    return b->err;
}

int state_write_checkpoint(struct state_stream *s, uint64_t seq)
{
    uint8_t b[16];

    gw_put_le(b, seq, 8);
    gw_put_le(b + 8, state_stream_digest(s), 8);
    return state_write_section(s, STATE_SEC_CHECKPOINT, NULL, 0, 1, b, sizeof(b));
}

int state_checkpoint_decode(struct state_buf *b, uint64_t *seq, uint64_t *digest)
{
    *seq = state_get_u64(b);
    *digest = state_get_u64(b);
    if (state_buf_expect_end(b, "CHECKPOINT") < 0)
        return b->err;
    if (*seq == 0)
        state_buf_fail(b, -EPROTO, "CHECKPOINT 0 (checkpoints count from 1)");
    return b->err;
}

int state_write_pause(struct state_stream *s)
{
    return state_write_section(s, STATE_SEC_PAUSE, NULL, 0, 1, NULL, 0);
}
