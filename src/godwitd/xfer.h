/*
 * The file transfer engine of cold and suspended migration (xfer.c;
 * docs/godwitd.md "The transfer protocol").  Sparse-aware, chunked,
 * checksummed, compressed where it pays, rate-limited and resumable; it
 * knows nothing of HTTP: the source side turns a file into chunks that the
 * caller sends, the destination side takes a chunk and writes it.
 *
 * Chunks.  A file is cut at XFER_CHUNK boundaries: chunk k covers
 * [k * XFER_CHUNK, min(size, (k + 1) * XFER_CHUNK)).  Only allocated
 * extents are read (SEEK_DATA / SEEK_HOLE); inside them every XFER_BLOCK
 * block that holds only zeros is left out.  A chunk with no non-zero block
 * is not sent at all, unless it has allocated zero blocks (see zmap).  A
 * sent chunk carries its offset, its logical length,
 * a map of its non-zero blocks (bit b of byte b / 8, LSB first: block b),
 * the non-zero blocks concatenated (raw, or zstd-compressed when that saves
 * at least an eighth), and the XXH3-64 hash of its logical content (the
 * len bytes at offset, zero blocks included).  The destination writes only
 * the non-zero blocks into a sparse part file, so it ends exactly as sparse
 * as the source.
 *
 * Digest.  A file's digest is XXH3-128 over one record per sent chunk, in
 * offset order: le64 offset, le32 len, le64 chunk hash.  The source
 * computes it while it reads (after a resume it re-reads the part the
 * destination already has, locally, without sending it); the destination
 * computes it by reading back its part file after fsync.  Equal digests:
 * the destination's file is the source's, holes included.
 *
 * Resume.  The destination accepts chunks in increasing offset order and
 * records the end of the last chunk it wrote (its "verified" offset) in a
 * small record file beside the part file, after every chunk.  A restarted
 * transfer (cut link, restarted daemon on either side) asks for it and
 * continues from the first chunk at or after it: at most the chunk that
 * was in flight is sent twice.  The record also notes the host's boot id
 * and the offset up to which the part file was fsynced: after a reboot
 * (page cache lost) only that durable offset counts.
 */
#ifndef GODWIT_GODWITD_XFER_H
#define GODWIT_GODWITD_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XFER_CHUNK      (1u << 20)                    /* logical bytes per chunk */
#define XFER_BLOCK      4096u                         /* zero-detection granularity */
#define XFER_MAP_BYTES  (XFER_CHUNK / XFER_BLOCK / 8) /* 32: one bit per block */
#define XFER_BODY_MAX   (XFER_CHUNK + 4096u)          /* an encoded chunk never exceeds this */
#define XFER_FILE_MAX   (1ull << 42)                  /* 4 TiB: larger sizes are refused */
#define XFER_DIGEST_HEX 32                            /* XXH3-128 as hex, without the NUL */
#define XFER_SYNC_EVERY (64ull << 20)                 /* bytes between fsyncs of the part file */

enum xfer_enc { XFER_RAW = 0, XFER_ZSTD = 1 };

enum xfer_compress {
    XFER_COMPRESS_AUTO = 0, /* try zstd; stop trying for a while when it does not pay */
    XFER_COMPRESS_NEVER,
    XFER_COMPRESS_ALWAYS, /* still sends raw when zstd makes it larger */
};

/* One chunk as it travels.  body points into the source's buffer (valid
 * until the next xfer_src_next) or into the received request. */
struct xfer_chunk {
    uint64_t offset; /* multiple of XFER_CHUNK */
    uint32_t len;    /* logical bytes: XFER_CHUNK, less only for the last */
    uint64_t hash;   /* XXH3-64 of the logical content */
    uint8_t map[XFER_MAP_BYTES];
    /* zero blocks the source has allocated (inside its data extents): the
     * destination allocates them too (fallocate, nothing is sent), so its
     * allocation equals the source's; disjoint from map */
    uint8_t zmap[XFER_MAP_BYTES];
    enum xfer_enc enc;
    const void *body;
    size_t body_len;   /* bytes on the wire */
    uint32_t data_len; /* non-zero block bytes (the decoded body's length) */
};

/* The chunk's header as a query string,
 * "offset=O&len=L&hash=H16&map=HEX64&enc=raw|zstd[&zmap=HEX64]" (no leading
 * '?'; zmap only when a bit is set).  0 or -ENAMETOOLONG. */
int xfer_chunk_query(const struct xfer_chunk *c, char *out, size_t len);

/* Parse that header back; get(ctx, key) returns a query value or NULL.
 * Everything is bounds-checked (offset aligned and below XFER_FILE_MAX, len
 * 1..XFER_CHUNK, map bits only for blocks inside len).  0 or -EINVAL with
 * the reason.  body / body_len are left for the caller to set. */
int xfer_chunk_parse(const char *(*get)(void *ctx, const char *key), void *ctx,
                     struct xfer_chunk *c, char *err, size_t errlen);

/* ---- the source ---- */

struct xfer_src;

/* Open a regular file for sending.  0, or -errno with err. */
int xfer_src_open(const char *path, enum xfer_compress mode, struct xfer_src **out, char *err,
                  size_t errlen);
void xfer_src_free(struct xfer_src *s); /* NULL: no-op */

uint64_t xfer_src_size(const struct xfer_src *s);      /* apparent size */
uint64_t xfer_src_allocated(const struct xfer_src *s); /* st_blocks * 512 */
/* Bytes in data extents (SEEK_DATA/SEEK_HOLE), an upper bound of what is
 * sent before compression. */
uint64_t xfer_src_data(const struct xfer_src *s);

/* Start (again) at offset from (rounded down to a chunk): the chunks
 * before it are read and hashed into the digest here, not returned.  May
 * be called once, before the first xfer_src_next.  0 or -errno. */
int xfer_src_skip_to(struct xfer_src *s, uint64_t from, char *err, size_t errlen);

/* The next chunk to send: 1 and *c filled, 0 at the end (the digest is
 * ready), -errno with err on a read error. */
int xfer_src_next(struct xfer_src *s, struct xfer_chunk *c, char *err, size_t errlen);

/* The file's digest as hex (out: XFER_DIGEST_HEX + 1), after xfer_src_next
 * returned 0.  -EAGAIN before. */
int xfer_src_digest(const struct xfer_src *s, char *out);

/* Figures so far: chunks returned, their logical bytes, wire bytes, and
 * how many went compressed. */
struct xfer_stats {
    uint64_t chunks, logical, wire, compressed;
};
void xfer_src_stats(const struct xfer_src *s, struct xfer_stats *st);

/* ---- the destination ---- */

struct xfer_dst;

/*
 * Receive file name into directory dir: the part file dir/.NAME.part
 * (sparse, size bytes) and its record dir/.NAME.xfer.  An existing pair for
 * the same size and transfer id (any string the caller chooses, e.g. the
 * source job's id; at most 64 characters) is continued: xfer_dst_verified
 * says from where.  Otherwise both are made anew.  name: a plain file name.
 * 0, or -errno with err (-ENOSPC: the file system cannot take size...
 * sparse files make that rare; -EINVAL bad name or size).
 */
int xfer_dst_open(const char *dir, const char *name, uint64_t size, const char *id,
                  struct xfer_dst **out, char *err, size_t errlen);
/* Close without finishing: part file and record stay for a resume. */
void xfer_dst_free(struct xfer_dst *x); /* NULL: no-op */

/* The resume point: every chunk below it is in the part file. */
uint64_t xfer_dst_verified(const struct xfer_dst *x);

/*
 * One chunk (c->body / c->body_len the received bytes): decode, check the
 * hash, write the non-zero blocks, advance and record the verified offset.
 * A chunk that ends at or below the verified offset is accepted without
 * being written (it was already).  0, or:
 *   -EBADMSG   the content does not match its hash, or does not decode:
 *              nothing written; the sender sends it again
 *   -ERANGE    it starts before the verified offset but ends after it, or
 *              lies beyond the file's size
 *   -ENOSPC, -EIO, ...   writing failed
 * with err.
 */
int xfer_dst_chunk(struct xfer_dst *x, const struct xfer_chunk *c, char *err, size_t errlen);

/*
 * Every chunk arrived: fsync the part file, compute its digest by reading
 * it back, compare with the source's (hex).  Equal: rename the part file to
 * dir/NAME (replacing what is there), fsync dir, remove the record, 0.
 * Different: -EBADMSG with both digests in err; the part file and the
 * record are removed (the transfer must start over).  x stays to be freed.
 * Also reports the part file's allocated bytes (st_blocks * 512) in
 * *allocated (may be NULL).
 */
int xfer_dst_finish(struct xfer_dst *x, const char *digest, uint64_t *allocated, char *err,
                    size_t errlen);

/* Remove dir/.NAME.part and dir/.NAME.xfer if present (cleanup after a
 * failed job). */
void xfer_dst_discard(const char *dir, const char *name);

/* ---- rate limit ---- */

/* A token bucket: at most bytes_per_s on average (0: unlimited), bursts of
 * at most a quarter second's worth.  xfer_rate_wait sleeps before n bytes
 * go out as long as needed. */
struct xfer_rate {
    uint64_t bytes_per_s;
    int64_t next_ns; /* CLOCK_MONOTONIC time the next byte may leave */
};
void xfer_rate_init(struct xfer_rate *r, uint64_t bytes_per_s);
void xfer_rate_wait(struct xfer_rate *r, uint64_t n);

#endif
