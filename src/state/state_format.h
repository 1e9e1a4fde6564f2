/*
 * The godwit state stream (docs/state.md): one format for a saved VM, a
 * live migration and a cold state transfer.
 *
 *   header   magic[8] "\x89GWST\r\n\x1a", u32 format version, u32 endian check
 *            0x0a0b0c0d, u32 page size, u32 flags, u64 configuration hash,
 *            the VM's identity: uuid[16], u8 name length, name[63] (zero
 *            padded); 112 bytes in all (format 2)
 *   section  u8 type, u8 name length, u16 version, u32 instance, u32 payload
 *            length, name, payload                      ... repeated
 *   EOF      a section of type STATE_SEC_EOF whose payload is the XXH3-64 of
 *            every byte before the payload
 *
 * Every integer is little-endian.  The first section is always
 * STATE_SEC_CONFIG (the text whose hash is in the header, so a mismatch can
 * be explained line by line).  RAM travels in STATE_SEC_RAM batches of up to
 * STATE_RAM_BATCH pages, each a run list plus the pages' bytes, raw or LZ4;
 * zero pages are never sent as data (a destination's RAM starts zeroed;
 * STATE_SEC_ZERO runs clear pages that became zero after being sent).
 * Components travel in STATE_SEC_DEVICE sections named after the component
 * ("hart", "clint", ...) with an instance number and their own version.
 *
 * Readers validate every length before allocating or using it: a section
 * payload is at most STATE_BUF_MAX bytes; names at most STATE_NAME_MAX.
 */
#ifndef GODWIT_STATE_STATE_FORMAT_H
#define GODWIT_STATE_STATE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "state/state_buf.h"
#include "state/state_stream.h"

#define STATE_MAGIC          "\x89GWST\r\n\x1a"
#define STATE_MAGIC_LEN      8
#define STATE_FORMAT_VERSION 2 /* format 1 (no identity, 12-byte ROUND) is refused */
#define STATE_ENDIAN_CHECK   0x0a0b0c0du
#define STATE_PAGE_SIZE      4096u
#define STATE_HEADER_LEN     112
#define STATE_NAME_MAX       63 /* section names */
#define STATE_VM_NAME_MAX    63 /* the VM's name in the header */
#define STATE_UUID_LEN       16
#define STATE_UUID_TEXT_LEN  36   /* RFC 4122 text form, without the NUL */
#define STATE_RAM_BATCH      256u /* pages per RAM section */

/* Header flags. */
enum {
    STATE_F_LIVE = 1u << 0,     /* a live-migration stream (rounds of RAM) */
    STATE_F_RECOVER = 1u << 1,  /* live: a SESSION follows CONFIG; the stream may pause */
    STATE_F_RESUME = 1u << 2,   /* live, recoverable: resumes a paused migration */
    STATE_F_NETFWD = 1u << 3,   /* live: frames follow COMMIT (mig_proto.h, docs/net.md) */
    STATE_F_POSTCOPY = 1u << 4, /* live: may switch to post-copy (mig_proto.h, docs/state.md) */
    STATE_F_KNOWN =
        STATE_F_LIVE | STATE_F_RECOVER | STATE_F_RESUME | STATE_F_NETFWD | STATE_F_POSTCOPY,
};

enum mig_section_type {
    STATE_SEC_CONFIG = 1,     /* machine configuration text (hash in the header) */
    STATE_SEC_RAM = 2,        /* a batch of RAM pages */
    STATE_SEC_DEVICE = 3,     /* one component's state */
    STATE_SEC_ROUND = 4,      /* end of a pre-copy round (live) */
    STATE_SEC_ZERO = 5,       /* runs of pages to clear (live) */
    STATE_SEC_SESSION = 6,    /* which migration a recoverable stream belongs to */
    STATE_SEC_CHECKPOINT = 7, /* recoverable: every byte before it arrived intact */
    STATE_SEC_PAUSE = 8,      /* recoverable: the source paused here; nothing follows */
    STATE_SEC_DISKS = 9,      /* live with disks: the disks that travel (state_block.h) */
    STATE_SEC_BLOCK = 10,     /* live with disks: a run of a disk's blocks */
    STATE_SEC_DISKSUM = 11,   /* live with disks: every disk's digest, before EOF */
    STATE_SEC_EOF = 0x7f,     /* checksum; nothing may follow */
};

/* RAM batch encodings. */
enum { STATE_RAM_RAW = 0, STATE_RAM_LZ4 = 1 };

/*
 * The header.  The identity says whose state this is, so a host agent can
 * tell without the machine; a zero UUID and an empty name are an anonymous
 * VM (valid: designated initializers that leave them out write one).
 */
struct state_header {
    uint32_t version;                 /* STATE_FORMAT_VERSION when writing */
    uint32_t page_size;               /* STATE_PAGE_SIZE */
    uint32_t flags;                   /* STATE_F_* */
    uint64_t config_hash;             /* XXH3-64 of the CONFIG section's text */
    uint8_t uuid[STATE_UUID_LEN];     /* the VM's UUID (-uuid); all zero: none */
    char name[STATE_VM_NAME_MAX + 1]; /* the VM's name (-name), NUL-terminated; "": none */
};

struct state_section {
    uint8_t type;
    uint16_t version;
    uint32_t instance;
    uint32_t len; /* payload bytes */
    char name[STATE_NAME_MAX + 1];
};

/* Write the header: h->version as given (callers pass STATE_FORMAT_VERSION;
 * tests may pass others), always in format 2's layout.  -EINVAL (in s) for a
 * name state_vm_name_valid() refuses. */
int state_write_header(struct state_stream *s, const struct state_header *h);
/* Read and check the header: magic, endianness, version (exactly
 * STATE_FORMAT_VERSION: older and newer formats are refused with a message
 * that says which), page size, flags, the name (printable, zero padding).
 * 0 or -EPROTO with the reason in s. */
int state_read_header(struct state_stream *s, struct state_header *h) gw_must_check;

/* A VM name the header can carry: 1..STATE_VM_NAME_MAX printable ASCII
 * bytes (space to '~'). */
bool state_vm_name_valid(const char *name);
/* Parse a UUID in RFC 4122 text form ("6ba7b810-9dad-11d1-80b4-00c04fd430c8",
 * hex digits in either case, as QEMU's -uuid takes it).  0 or -EINVAL. */
int state_uuid_parse(const char *text, uint8_t uuid[STATE_UUID_LEN]);
/* Format uuid in lower-case RFC 4122 text form into out (37 bytes). */
void state_uuid_format(const uint8_t uuid[STATE_UUID_LEN], char out[STATE_UUID_TEXT_LEN + 1]);
/* True for the nil UUID (all zero: no UUID given). */
bool state_uuid_is_nil(const uint8_t uuid[STATE_UUID_LEN]);

/* Write a section: header then len bytes of payload. */
int state_write_section(struct state_stream *s, uint8_t type, const char *name, uint32_t instance,
                        uint16_t version, const void *payload, size_t len);
/* Read a section header (validates type, name and length bounds). */
int state_read_section(struct state_stream *s, struct state_section *sec) gw_must_check;
/* Read the payload of sec into b (a writer buffer, reset first), then make
 * b a reader over it. */
int state_read_payload(struct state_stream *s, const struct state_section *sec,
                       struct state_buf *b) gw_must_check;

/* Write the EOF section (checksum of everything before its payload). */
int state_write_eof(struct state_stream *s);
/* After state_read_section() returned an EOF section: read the checksum and
 * compare.  0, or -EBADMSG / -EPROTO.  The caller checks that the stream
 * ends there (state_stream_at_eof): a live stream's socket stays open. */
int state_read_eof(struct state_stream *s, const struct state_section *sec) gw_must_check;

/* ---- ROUND markers (live streams) ----------------------------------------- */

/* Write a ROUND marker: the end of pre-copy round `round` (>= 1; each
 * marker's number is above the one before).  Payload: u32 round (format 1
 * had 8 more bytes, never read). */
int state_write_round(struct state_stream *s, uint32_t round);
/* Decode a ROUND payload: exactly a u32, not 0.  0 or -EPROTO with the
 * reason in b. */
int state_round_decode(struct state_buf *b, uint32_t *round) gw_must_check;

/* ---- recoverable live streams (docs/state.md, "pausing and resuming") -- */

/* SESSION: u64 session (the migration's random id, not 0), u64 attempt
 * (0: the first connection; n: the n-th resume).  The first section after
 * CONFIG in a stream with STATE_F_RECOVER, and only there. */
int state_write_session(struct state_stream *s, uint64_t session, uint64_t attempt);
int state_session_decode(struct state_buf *b, uint64_t *session, uint64_t *attempt) gw_must_check;
/* CHECKPOINT: u64 seq (increasing across every connection of a migration,
 * from 1), u64 XXH3-64 of every byte of this connection's stream before the
 * section.  A destination that verified checkpoint n holds everything sent
 * before it: a resumed migration re-sends only what came after. */
int state_write_checkpoint(struct state_stream *s, uint64_t seq);
int state_checkpoint_decode(struct state_buf *b, uint64_t *seq, uint64_t *digest) gw_must_check;
/* PAUSE: no payload; the source stopped sending on purpose and closes. */
int state_write_pause(struct state_stream *s);

/* ---- RAM ---------------------------------------------------------------- */

/*
 * Encode up to STATE_RAM_BATCH pages into one RAM section payload.  pages[]
 * are page indices (ascending) into host RAM at ram (npages_ram pages).
 * Uses LZ4 when compress is set and it helps.  Returns 0 or -errno in b.
 */
struct state_ram_encoder {
    uint8_t *raw;  /* STATE_RAM_BATCH pages */
    uint8_t *comp; /* LZ4_compressBound(raw) */
    size_t comp_cap;
};
int state_ram_encoder_init(struct state_ram_encoder *e);
void state_ram_encoder_fini(struct state_ram_encoder *e);
void state_ram_encode(struct state_ram_encoder *e, const uint8_t *ram, const uint32_t *pages,
                      unsigned n, bool compress, struct state_buf *b);

/*
 * Decode a RAM section payload: validate the run list against npages_ram
 * and the data length, and copy the pages into ram (NULL: validate only,
 * e.g. the checker).  scratch is STATE_RAM_BATCH pages.  Returns the number
 * of pages (>= 0) or -errno with the reason in b.
 */
int state_ram_decode(struct state_buf *b, uint8_t *ram, uint64_t npages_ram, uint8_t *scratch);

/* ---- zero runs (live streams) -------------------------------------------- */

/*
 * STATE_SEC_ZERO: pages the destination holds that became zero.  Payload: a
 * u32 run count, then (u32 first page, u32 count) per run; at most
 * STATE_ZERO_RUNS runs per section.
 *
 * The encoder collects pages in ascending order (a page right after the
 * open run extends it) and writes a section whenever STATE_ZERO_RUNS runs
 * are complete, and at state_zero_flush(), so a sender just adds pages as
 * it finds them and flushes at the end of its pass.
 */
#define STATE_ZERO_RUNS 1024u

struct state_zero_encoder {
    struct state_buf runs; /* u32 count (set when written), then complete runs */
    uint32_t nruns;        /* complete runs in runs */
    uint32_t first, count; /* the open run; count 0: none */
};
void state_zero_encoder_init(struct state_zero_encoder *z);
void state_zero_encoder_fini(struct state_zero_encoder *z);
/* Add one page; may write a ZERO section to s.  Returns state_stream_error(s). */
int state_zero_add(struct state_zero_encoder *z, struct state_stream *s, uint32_t page);
/* Close the open run and write what is pending as one ZERO section (none if
 * nothing is).  Returns state_stream_error(s). */
int state_zero_flush(struct state_zero_encoder *z, struct state_stream *s);

/* Validate a ZERO payload (every run inside npages_ram pages) before
 * anything is applied, then call fn for each run (NULL: validate only).
 * Returns the pages covered (capped at INT32_MAX) or -errno with the reason
 * in b. */
int state_zero_decode(struct state_buf *b, uint64_t npages_ram,
                      void (*fn)(void *opaque, uint64_t first, uint64_t count), void *opaque);

#endif
