/*
 * The godwit state stream (docs/state.md): one format for a saved VM, a
 * live migration and a cold state transfer.
 *
 *   header   magic[8] "\x89GWST\r\n\x1a", u32 format version, u32 endian check
 *            0x0a0b0c0d, u32 page size, u32 flags, u64 configuration hash
 *   section  u8 type, u8 name length, u16 version, u32 instance, u32 payload
 *            length, name, payload                      ... repeated
 *   EOF      a section of type MIG_SEC_EOF whose payload is the XXH3-64 of
 *            every byte before the payload
 *
 * Every integer is little-endian.  The first section is always
 * MIG_SEC_CONFIG (the text whose hash is in the header, so a mismatch can
 * be explained line by line).  RAM travels in MIG_SEC_RAM batches of up to
 * MIG_RAM_BATCH pages, each a run list plus the pages' bytes, raw or LZ4;
 * zero pages are never sent as data (a destination's RAM starts zeroed;
 * MIG_SEC_ZERO runs clear pages that became zero after being sent).
 * Components travel in MIG_SEC_DEVICE sections named after the component
 * ("hart", "clint", ...) with an instance number and their own version.
 *
 * Readers validate every length before allocating or using it: a section
 * payload is at most MIG_BUF_MAX bytes; names at most MIG_NAME_MAX.
 */
#ifndef GODWIT_MIGRATION_MIG_FORMAT_H
#define GODWIT_MIGRATION_MIG_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "migration/mig_buf.h"
#include "migration/mig_stream.h"

#define MIG_MAGIC          "\x89GWST\r\n\x1a"
#define MIG_MAGIC_LEN      8
#define MIG_FORMAT_VERSION 1
#define MIG_ENDIAN_CHECK   0x0a0b0c0du
#define MIG_PAGE_SIZE      4096u
#define MIG_HEADER_LEN     32
#define MIG_NAME_MAX       63
#define MIG_RAM_BATCH      256u /* pages per RAM section */

/* Header flags. */
enum {
    MIG_F_LIVE = 1u << 0, /* a live-migration stream (rounds of RAM) */
    MIG_F_KNOWN = MIG_F_LIVE,
};

enum mig_section_type {
    MIG_SEC_CONFIG = 1, /* machine configuration text (hash in the header) */
    MIG_SEC_RAM = 2,    /* a batch of RAM pages */
    MIG_SEC_DEVICE = 3, /* one component's state */
    MIG_SEC_ROUND = 4,  /* end of a pre-copy round (live) */
    MIG_SEC_ZERO = 5,   /* runs of pages to clear (live) */
    MIG_SEC_EOF = 0x7f, /* checksum; nothing may follow */
};

/* RAM batch encodings. */
enum { MIG_RAM_RAW = 0, MIG_RAM_LZ4 = 1 };

struct mig_header {
    uint32_t version;
    uint32_t page_size;
    uint32_t flags;
    uint64_t config_hash;
};

struct mig_section {
    uint8_t type;
    uint16_t version;
    uint32_t instance;
    uint32_t len; /* payload bytes */
    char name[MIG_NAME_MAX + 1];
};

/* Write the header. */
int mig_write_header(struct mig_stream *s, const struct mig_header *h);
/* Read and check the header (magic, version <= ours, endianness, page
 * size, flags); 0 or -EPROTO with the reason in s. */
int mig_read_header(struct mig_stream *s, struct mig_header *h) gw_must_check;

/* Write a section: header then len bytes of payload. */
int mig_write_section(struct mig_stream *s, uint8_t type, const char *name, uint32_t instance,
                      uint16_t version, const void *payload, size_t len);
/* Read a section header (validates type, name and length bounds). */
int mig_read_section(struct mig_stream *s, struct mig_section *sec) gw_must_check;
/* Read the payload of sec into b (a writer buffer, reset first), then make
 * b a reader over it. */
int mig_read_payload(struct mig_stream *s, const struct mig_section *sec,
                     struct mig_buf *b) gw_must_check;

/* Write the EOF section (checksum of everything before its payload). */
int mig_write_eof(struct mig_stream *s);
/* After mig_read_section() returned an EOF section: read the checksum and
 * compare.  0, or -EBADMSG / -EPROTO.  The caller checks that the stream
 * ends there (mig_stream_at_eof): a live stream's socket stays open. */
int mig_read_eof(struct mig_stream *s, const struct mig_section *sec) gw_must_check;

/* ---- RAM ---------------------------------------------------------------- */

/* True if the page (MIG_PAGE_SIZE bytes, 8-aligned) is all zeroes. */
bool mig_page_is_zero(const void *page);

/*
 * Encode up to MIG_RAM_BATCH pages into one RAM section payload.  pages[]
 * are page indices (ascending) into host RAM at ram (npages_ram pages).
 * Uses LZ4 when compress is set and it helps.  Returns 0 or -errno in b.
 */
struct mig_ram_encoder {
    uint8_t *raw;  /* MIG_RAM_BATCH pages */
    uint8_t *comp; /* LZ4_compressBound(raw) */
    size_t comp_cap;
};
int mig_ram_encoder_init(struct mig_ram_encoder *e);
void mig_ram_encoder_fini(struct mig_ram_encoder *e);
void mig_ram_encode(struct mig_ram_encoder *e, const uint8_t *ram, const uint32_t *pages,
                    unsigned n, bool compress, struct mig_buf *b);

/*
 * Decode a RAM section payload: validate the run list against npages_ram
 * and the data length, and copy the pages into ram (NULL: validate only,
 * e.g. the checker).  scratch is MIG_RAM_BATCH pages.  Returns the number
 * of pages (>= 0) or -errno with the reason in b.
 */
int mig_ram_decode(struct mig_buf *b, uint8_t *ram, uint64_t npages_ram, uint8_t *scratch);

/* Runs of page indices for MIG_SEC_ZERO: a u32 count, then (first, count)
 * pairs.  decode validates and calls fn for each run; returns pages or
 * -errno. */
int mig_zero_decode(struct mig_buf *b, uint64_t npages_ram,
                    void (*fn)(void *opaque, uint64_t first, uint64_t count), void *opaque);

#endif
