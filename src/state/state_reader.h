/*
 * state_reader: one walk over a state stream (docs/state.md) that yields
 * its sections as typed items, checking everything the format itself can
 * check, so the VM's loader, `godwit state check` and the host agent share
 * one reading of the format:
 *
 *   - the header (magic, format version, endianness, page size, flags, the
 *     VM's identity) and the CONFIG section first, its text hashing to the
 *     header's configuration hash and made of printable ASCII lines;
 *   - every length bounded before use (section header, name, payload, RAM
 *     run lists against the RAM size, LZ4 output);
 *   - RAM batches decoded into the caller's RAM (or validated only), ZERO
 *     runs applied (or validated only), ROUND numbers increasing, ZERO and
 *     ROUND only in a live stream, a component section named, one CONFIG;
 *   - a recoverable live stream (STATE_F_RECOVER): SESSION first after
 *     CONFIG and only there, CHECKPOINT numbers increasing and each one's
 *     checksum of the bytes before it matching, nothing after PAUSE;
 *   - the EOF checksum, and nothing after EOF: at once for a file; for a
 *     live stream, whose socket stays open for the commit protocol, when
 *     the caller asks state_reader_expect_end().
 *
 * What a component's payload means is judged by the component (it needs the
 * machine); the reader hands it over as a state_buf reader.
 *
 *     struct state_reader *r = state_reader_new(stream);
 *     if (!r || state_reader_start(r) < 0) ... state_reader_msg(r)
 *     ... compare state_reader_config(r) with the machine's ...
 *     state_reader_set_ram(r, ram, npages);
 *     do {
 *         ret = state_reader_next(r, &it);
 *         ... it.sec.type: STATE_SEC_RAM, _ZERO, _ROUND, _DEVICE, _EOF ...
 *     } while (ret == 0 && it.sec.type != STATE_SEC_EOF);
 *     live: ret = state_reader_expect_end(r, 0) before answering READY
 *
 * Every refusal returns -errno (-EPROTO for the format, -EBADMSG for a
 * checksum mismatch, -ENOMEM, or the stream's I/O error) and leaves a
 * one-line reason in state_reader_msg(); the error is sticky.  The reader
 * does not own the stream.  One thread at a time.
 */
#ifndef GODWIT_STATE_STATE_READER_H
#define GODWIT_STATE_STATE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "state/state_block.h"
#include "state/state_buf.h"
#include "state/state_format.h"
#include "state/state_stream.h"

struct state_reader;

/* One section, decoded as far as the format allows. */
struct state_item {
    struct state_section sec;       /* type, name, instance, version, payload bytes */
    uint64_t offset;                /* stream offset of the section's first byte */
    uint32_t pages;                 /* RAM: pages in the batch; ZERO: pages cleared */
    uint8_t encoding;               /* RAM: STATE_RAM_RAW or STATE_RAM_LZ4 */
    uint32_t round;                 /* ROUND: the round that ended */
    uint64_t session, attempt;      /* SESSION: the migration's id, 0 or the resume's number */
    uint64_t checkpoint;            /* CHECKPOINT: its number (verified before it is returned) */
    struct state_blk_view blk;      /* BLOCK: checked against DISKS; valid until the next call */
    const struct state_disk *disks; /* DISKS: the disks (ndisks); valid while the reader is */
    unsigned ndisks;
    const uint64_t (*sums)[2]; /* DISKSUM: one digest per disk */
    struct state_buf *payload; /* DEVICE: a reader over the payload, valid until the
                                  next call; NULL for the other types */
};

/* A reader over s (not owned).  NULL on allocation failure. */
struct state_reader *state_reader_new(struct state_stream *s);
/* NULL is a no-op. */
void state_reader_free(struct state_reader *r);

/* Read and check the header and the CONFIG section. */
int state_reader_start(struct state_reader *r) gw_must_check;

/* The header, or NULL until state_reader_start read a valid one (it stays
 * available when what follows it was refused). */
const struct state_header *state_reader_header(const struct state_reader *r);
/* The configuration text, NUL-terminated; NULL until it was read.  It stays
 * available when it was refused (then it may hold any byte but NUL: escape
 * it before showing it). */
const char *state_reader_config(const struct state_reader *r);
/* True for a live-migration stream (header flag STATE_F_LIVE). */
bool state_reader_live(const struct state_reader *r);

/*
 * Where RAM goes: npages pages of STATE_PAGE_SIZE at ram.  ram NULL: RAM
 * batches and zero runs are validated against npages only (the checker).
 * Until this is called every RAM batch is refused (no RAM).
 */
void state_reader_set_ram(struct state_reader *r, uint8_t *ram, uint64_t npages);
/* Zero runs call fn(opaque, first page, count) instead of clearing the
 * pages in the RAM given to state_reader_set_ram (fn NULL: back to that). */
void state_reader_on_zero(struct state_reader *r,
                          void (*fn)(void *opaque, uint64_t first, uint64_t count), void *opaque);

/*
 * The next section, checked and applied (RAM pages copied, zero runs
 * cleared) before it is returned in *it; 0 or -errno.  The EOF item comes
 * last, its checksum verified; for a stream not marked live the stream
 * must also end right after it.  Calling again after EOF is an error.
 * A RAM or ZERO section is validated completely before any page is
 * written: a refused one leaves RAM as it was.
 */
int state_reader_next(struct state_reader *r, struct state_item *it) gw_must_check;

/*
 * After the EOF item: refuse anything that follows it.  A file was checked
 * at EOF already (0).  A live stream's connection stays open for the commit
 * protocol, whose peer sends nothing until it has the destination's answer,
 * so bytes already buffered, or arriving on the fd within timeout_ms (0: only
 * those already there), are data after the end: -EPROTO.  A closed peer is
 * not (the commit protocol will notice).
 */
int state_reader_expect_end(struct state_reader *r, int timeout_ms) gw_must_check;

/* True once a PAUSE item was returned: the source stopped on purpose and
 * nothing follows (a recoverable live stream; the migration resumes on a
 * new connection). */
bool state_reader_paused(const struct state_reader *r);
/* Recoverable streams: the last CHECKPOINT verified (0: none yet). */
uint64_t state_reader_checkpoint(const struct state_reader *r);

/* True once the EOF checksum matched (even if data after it was refused). */
bool state_reader_checksum_ok(const struct state_reader *r);

/* 0 or the sticky -errno; the one-line reason ("" if nothing failed). */
int state_reader_error(const struct state_reader *r);
const char *state_reader_msg(const struct state_reader *r);

#endif
