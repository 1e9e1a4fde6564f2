/*
 * The file transfer engine (xfer.h): a file cut into chunks on the source,
 * written back sparse on the destination, with a digest over both.
 *
 * Source: each chunk that holds data is read with one pread per data
 * extent into an aligned buffer (holes are memset), hashed, its zero
 * blocks found and squeezed out in place (memmove only after the first
 * zero block), then compressed into a second buffer when that pays.  No
 * other copy is made: the body points into one of the two buffers.
 *
 * The last block of the last chunk may be partial: a chunk of len bytes
 * has ceil(len / XFER_BLOCK) blocks, block b covers
 * [b * XFER_BLOCK, min(len, (b + 1) * XFER_BLOCK)), and the decoded body is
 * the concatenation of the set blocks at their real length, so
 * data_len = popcount(map) * XFER_BLOCK, minus XFER_BLOCK - len % XFER_BLOCK
 * when len is not a multiple of XFER_BLOCK and the last block's bit is set.
 *
 * Destination: the record file .NAME.xfer is one fixed-size struct written
 * whole with pwrite at offset 0 and closed by an XXH3-64 of its bytes; a
 * short, torn or foreign record fails the check and the transfer starts
 * over, it is never trusted partially.  The record holds host-endian
 * integers: it never leaves the host.  On resume everything past the
 * resume point is cut off the part file (truncate, then extend again) so
 * a chunk half-written before a crash leaves nothing behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "common/util.h"
#include "godwitd/xfer.h"

#define XFER_BLOCKS         (XFER_CHUNK / XFER_BLOCK) /* 256 per chunk */
#define XFER_ZSTD_LEVEL     1   /* measured on text: -3 is ~20% faster, sends ~9% more */
#define XFER_AUTO_FAILS     4   /* failed tries in a row before AUTO pauses */
#define XFER_AUTO_PAUSE     8   /* chunks sent raw untried in a first pause... */
#define XFER_AUTO_PAUSE_MAX 64  /* ...doubling while the tries after it fail */
#define XFER_NAME_MAX       200 /* room for ".NAME.part" in NAME_MAX */

/* ---- shared pieces ---- */

static const uint8_t xfer_zeros[64 << 10];

static bool xfer_block_zero(const uint8_t *p, size_t n)
{
    uint64_t w;

    if (n < sizeof(w))
        return !memcmp(p, xfer_zeros, n);
    memcpy(&w, p, sizeof(w));
    /* p[0..8) is zero and every byte equals the one 8 further: all zero. */
    return w == 0 && !memcmp(p, p + sizeof(w), n - sizeof(w));
}

static uint32_t xfer_blocks_of(uint32_t len)
{
    return (len + XFER_BLOCK - 1) / XFER_BLOCK;
}

static uint32_t xfer_block_len(uint32_t len, uint32_t b)
{
    uint32_t start = b * XFER_BLOCK;
    return len - start < XFER_BLOCK ? len - start : XFER_BLOCK;
}

static bool xfer_map_bit(const uint8_t *map, uint32_t b)
{
    return map[b / 8] >> (b % 8) & 1;
}

/* The decoded body's length the map asks for (rule atop the file). */
static uint32_t xfer_map_data_len(const uint8_t *map, uint32_t len)
{
    uint32_t n = 0, nb = xfer_blocks_of(len);

    for (uint32_t i = 0; i < XFER_MAP_BYTES; i++)
        n += (uint32_t)__builtin_popcount(map[i]);
    n *= XFER_BLOCK;
    if (len % XFER_BLOCK && xfer_map_bit(map, nb - 1))
        n -= XFER_BLOCK - len % XFER_BLOCK;
    return n;
}

/* No bit for a block at or past len. */
static bool xfer_map_fits(const uint8_t *map, uint32_t len)
{
    for (uint32_t b = xfer_blocks_of(len); b < XFER_BLOCKS; b++)
        if (xfer_map_bit(map, b))
            return false;
    return true;
}

static void xfer_digest_add(XXH3_state_t *st, uint64_t offset, uint32_t len, uint64_t hash)
{
    uint8_t rec[20];

    gw_put_le(rec, offset, 8);
    gw_put_le(rec + 8, len, 4);
    gw_put_le(rec + 12, hash, 8);
    XXH3_128bits_update(st, rec, sizeof(rec));
}

static void xfer_digest_hex(XXH3_state_t *st, char *out)
{
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st));
    for (size_t i = 0; i < sizeof(c.digest); i++)
        sprintf(out + 2 * i, "%02x", c.digest[i]);
}

/* ---- the chunk header ---- */

int xfer_chunk_query(const struct xfer_chunk *c, char *out, size_t len)
{
    char map[2 * XFER_MAP_BYTES + 1], zmap[2 * XFER_MAP_BYTES + 8] = "";
    bool z = false;

    for (size_t i = 0; i < XFER_MAP_BYTES; i++) {
        sprintf(map + 2 * i, "%02x", c->map[i]);
        z |= c->zmap[i] != 0;
    }
    if (z) {
        strcpy(zmap, "&zmap=");
        for (size_t i = 0; i < XFER_MAP_BYTES; i++)
            sprintf(zmap + 6 + 2 * i, "%02x", c->zmap[i]);
    }
    int n = snprintf(out, len, "offset=%llu&len=%u&hash=%016llx&map=%s&enc=%s%s",
                     (unsigned long long)c->offset, c->len, (unsigned long long)c->hash, map,
                     c->enc == XFER_ZSTD ? "zstd" : "raw", zmap);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Exactly n hex digits into out (n / 2 bytes, in order). */
static bool xfer_parse_hex(const char *s, size_t n, uint8_t *out)
{
    if (!s || strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i += 2) {
        int hi = gw_hex_digit(s[i]), lo = gw_hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* Plain decimal, at most max. */
static bool xfer_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (!s || !*s || strlen(s) > 20)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        if (v > (max - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

int xfer_chunk_parse(const char *(*get)(void *ctx, const char *key), void *ctx,
                     struct xfer_chunk *c, char *err, size_t errlen)
{
    const char *enc = get(ctx, "enc");
    uint64_t off, len;
    uint8_t h[8];

    memset(c, 0, sizeof(*c));
    if (!xfer_parse_u64(get(ctx, "offset"), XFER_FILE_MAX - 1, &off) || off % XFER_CHUNK)
        return gw_fail(err, errlen, -EINVAL, "chunk offset missing, unaligned or too large");
    if (!xfer_parse_u64(get(ctx, "len"), XFER_CHUNK, &len) || len == 0)
        return gw_fail(err, errlen, -EINVAL, "chunk len not in 1..%u", XFER_CHUNK);
    if (off + len > XFER_FILE_MAX)
        return gw_fail(err, errlen, -EINVAL, "chunk ends past %llu bytes",
                       (unsigned long long)XFER_FILE_MAX);
    if (!xfer_parse_hex(get(ctx, "hash"), 16, h))
        return gw_fail(err, errlen, -EINVAL, "chunk hash is not 16 hex digits");
    if (!xfer_parse_hex(get(ctx, "map"), 2 * XFER_MAP_BYTES, c->map))
        return gw_fail(err, errlen, -EINVAL, "chunk map is not %u hex digits", 2 * XFER_MAP_BYTES);
    if (!xfer_map_fits(c->map, (uint32_t)len))
        return gw_fail(err, errlen, -EINVAL, "chunk map names blocks past its length");
    if (get(ctx, "zmap")) {
        if (!xfer_parse_hex(get(ctx, "zmap"), 2 * XFER_MAP_BYTES, c->zmap))
            return gw_fail(err, errlen, -EINVAL, "chunk zmap is not %u hex digits",
                           2 * XFER_MAP_BYTES);
        if (!xfer_map_fits(c->zmap, (uint32_t)len))
            return gw_fail(err, errlen, -EINVAL, "chunk zmap names blocks past its length");
        for (size_t i = 0; i < XFER_MAP_BYTES; i++)
            if (c->map[i] & c->zmap[i])
                return gw_fail(err, errlen, -EINVAL, "chunk map and zmap overlap");
    }
    if (enc && !strcmp(enc, "raw"))
        c->enc = XFER_RAW;
    else if (enc && !strcmp(enc, "zstd"))
        c->enc = XFER_ZSTD;
    else
        return gw_fail(err, errlen, -EINVAL, "chunk enc is neither raw nor zstd");
    c->offset = off;
    c->len = (uint32_t)len;
    for (int i = 0; i < 8; i++)
        c->hash = c->hash << 8 | h[i];
    c->data_len = xfer_map_data_len(c->map, c->len);
    return 0;
}

/* ---- the source ---- */

struct xfer_src {
    int fd;
    enum xfer_compress mode;
    uint64_t size, allocated, data; /* bytes */
    uint64_t pos;                   /* next chunk's offset, or size at the end */
    bool started, done;
    uint8_t *buf;  /* XFER_CHUNK, the chunk read, then its non-zero blocks */
    uint8_t *zbuf; /* compressed body */
    size_t zcap;
    ZSTD_CCtx *cctx;
    XXH3_state_t *digest;
    char hex[XFER_DIGEST_HEX + 1];
    unsigned fails, pause, pause_len; /* AUTO: failed tries in a row, chunks left untried */
    struct xfer_stats st;
};

int xfer_src_open(const char *path, enum xfer_compress mode, struct xfer_src **out, char *err,
                  size_t errlen)
{
    struct xfer_src *s;
    struct stat sb;
    int ret;

    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    s->mode = mode;
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot open '%s': %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(s->fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        ret = gw_fail(err, errlen, -EINVAL, "'%s' is not a regular file", path);
        goto fail;
    }
    if ((uint64_t)sb.st_size > XFER_FILE_MAX) {
        ret = gw_fail(err, errlen, -EFBIG, "'%s' is larger than %llu bytes", path,
                      (unsigned long long)XFER_FILE_MAX);
        goto fail;
    }
    s->size = (uint64_t)sb.st_size;
    s->allocated = (uint64_t)sb.st_blocks * 512;
    for (off_t o = 0; (uint64_t)o < s->size;) {
        off_t d = lseek(s->fd, o, SEEK_DATA), h;
        if (d < 0)
            break; /* ENXIO: only a hole is left */
        h = lseek(s->fd, d, SEEK_HOLE);
        if (h < 0)
            h = (off_t)s->size;
        s->data += (uint64_t)(h - d);
        o = h;
    }
    s->zcap = ZSTD_compressBound(XFER_CHUNK);
    s->buf = aligned_alloc(XFER_BLOCK, XFER_CHUNK);
    s->zbuf = malloc(s->zcap);
    s->digest = XXH3_createState();
    if (mode != XFER_COMPRESS_NEVER)
        s->cctx = ZSTD_createCCtx();
    if (!s->buf || !s->zbuf || !s->digest || (mode != XFER_COMPRESS_NEVER && !s->cctx)) {
        ret = gw_fail(err, errlen, -ENOMEM, "out of memory");
        goto fail;
    }
    if (s->cctx)
        ZSTD_CCtx_setParameter(s->cctx, ZSTD_c_compressionLevel, XFER_ZSTD_LEVEL);
    XXH3_128bits_reset(s->digest);
    *out = s;
    return 0;
fail:
    xfer_src_free(s);
    return ret;
}

void xfer_src_free(struct xfer_src *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->buf);
    free(s->zbuf);
    ZSTD_freeCCtx(s->cctx);
    XXH3_freeState(s->digest);
    free(s);
}

uint64_t xfer_src_size(const struct xfer_src *s)
{
    return s->size;
}

uint64_t xfer_src_allocated(const struct xfer_src *s)
{
    return s->allocated;
}

uint64_t xfer_src_data(const struct xfer_src *s)
{
    return s->data;
}

/* Move pos to the next chunk holding a data extent; at the end the digest
 * is made.  0 or -errno. */
static int xfer_src_find(struct xfer_src *s, char *err, size_t errlen)
{
    off_t d;

    if (s->pos >= s->size) {
        d = -1;
        errno = ENXIO;
    } else {
        d = lseek(s->fd, (off_t)s->pos, SEEK_DATA);
    }
    if (d < 0 || (uint64_t)d >= s->size) {
        if (d < 0 && errno != ENXIO)
            return gw_fail(err, errlen, -errno, "SEEK_DATA: %s", strerror(errno));
        s->pos = s->size;
        if (!s->done) {
            s->done = true;
            xfer_digest_hex(s->digest, s->hex);
        }
        return 0;
    }
    s->pos = (uint64_t)d / XFER_CHUNK * XFER_CHUNK;
    return 0;
}

/* Read the chunk at pos into buf (holes as zeros), hash it, map it, add it
 * to the digest when it has a non-zero block, advance pos.  1: a chunk to
 * send, 2: one to send that holds only allocated zero blocks (not part of
 * the digest), 0: nothing allocated and non-zero, -errno. */
static int xfer_src_read(struct xfer_src *s, struct xfer_chunk *c, char *err, size_t errlen)
{
    uint64_t start = s->pos, end = s->size - start < XFER_CHUNK ? s->size : start + XFER_CHUNK;
    uint32_t len = (uint32_t)(end - start), nb = xfer_blocks_of(len);
    uint64_t o = start;
    bool any = false, zeros = false;
    uint8_t alloc[XFER_MAP_BYTES] = {0}; /* blocks inside data extents */

    while (o < end) {
        off_t d = lseek(s->fd, (off_t)o, SEEK_DATA), h;
        if (d < 0 && errno != ENXIO)
            return gw_fail(err, errlen, -errno, "SEEK_DATA: %s", strerror(errno));
        if (d < 0 || (uint64_t)d > end)
            d = (off_t)end;
        memset(s->buf + (o - start), 0, (size_t)((uint64_t)d - o));
        if ((uint64_t)d >= end)
            break;
        h = lseek(s->fd, d, SEEK_HOLE);
        if (h < 0 || (uint64_t)h > end)
            h = (off_t)end;
        for (uint64_t b = ((uint64_t)d - start) / XFER_BLOCK;
             b < nb && start + b * XFER_BLOCK < (uint64_t)h; b++)
            alloc[b / 8] |= (uint8_t)(1u << (b % 8));
        for (uint64_t p = (uint64_t)d; p < (uint64_t)h;) {
            ssize_t n = pread(s->fd, s->buf + (p - start), (size_t)((uint64_t)h - p), (off_t)p);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return gw_fail(err, errlen, -errno, "read at %llu: %s", (unsigned long long)p,
                               strerror(errno));
            if (n == 0)
                return gw_fail(err, errlen, -EIO, "the file shrank while being sent");
            p += (uint64_t)n;
        }
        o = (uint64_t)h;
    }
    memset(c, 0, sizeof(*c));
    c->offset = start;
    c->len = len;
    for (uint32_t b = 0; b < nb; b++) {
        if (!xfer_block_zero(s->buf + (size_t)b * XFER_BLOCK, xfer_block_len(len, b))) {
            c->map[b / 8] |= (uint8_t)(1u << (b % 8));
            any = true;
        } else if (xfer_map_bit(alloc, b)) {
            c->zmap[b / 8] |= (uint8_t)(1u << (b % 8));
            zeros = true;
        }
    }
    s->pos = end;
    if (!any && !zeros)
        return 0;
    c->hash = XXH3_64bits(s->buf, len);
    if (!any)
        return 2; /* only allocated zeros: sent for the allocation, not in the digest */
    xfer_digest_add(s->digest, c->offset, c->len, c->hash);
    return 1;
}

/* Squeeze the zero blocks out of buf (in place) and pick the encoding. */
static void xfer_src_encode(struct xfer_src *s, struct xfer_chunk *c)
{
    uint32_t nb = xfer_blocks_of(c->len), w = 0;

    for (uint32_t b = 0; b < nb; b++) {
        if (!xfer_map_bit(c->map, b))
            continue;
        uint32_t bl = xfer_block_len(c->len, b);
        if (w != b * XFER_BLOCK)
            memmove(s->buf + w, s->buf + (size_t)b * XFER_BLOCK, bl);
        w += bl;
    }
    c->data_len = w;
    c->enc = XFER_RAW;
    c->body = s->buf;
    c->body_len = w;
    if (w == 0) /* only allocated zeros: nothing to send but the header */
        return;
    bool try = s->mode == XFER_COMPRESS_ALWAYS || (s->mode == XFER_COMPRESS_AUTO && !s->pause);
    if (s->mode == XFER_COMPRESS_AUTO && s->pause)
        s->pause--;
    if (!try)
        return;
    size_t z = ZSTD_compress2(s->cctx, s->zbuf, s->zcap, s->buf, w);
    bool pays =
        !ZSTD_isError(z) && (s->mode == XFER_COMPRESS_ALWAYS ? z < w : z <= (size_t)w - w / 8);
    if (pays) {
        c->enc = XFER_ZSTD;
        c->body = s->zbuf;
        c->body_len = z;
        s->fails = 0;
        s->pause_len = 0;
    } else if (++s->fails >= XFER_AUTO_FAILS) {
        s->pause_len = s->pause_len ? s->pause_len * 2 : XFER_AUTO_PAUSE;
        if (s->pause_len > XFER_AUTO_PAUSE_MAX)
            s->pause_len = XFER_AUTO_PAUSE_MAX;
        s->pause = s->pause_len;
        s->fails = XFER_AUTO_FAILS - 1; /* one more failure after the pause: pause again */
    }
}

int xfer_src_skip_to(struct xfer_src *s, uint64_t from, char *err, size_t errlen)
{
    struct xfer_chunk c;
    int ret;

    if (s->started)
        return gw_fail(err, errlen, -EINVAL, "xfer_src_skip_to after the first chunk");
    s->started = true;
    from = from / XFER_CHUNK * XFER_CHUNK;
    for (;;) {
        ret = xfer_src_find(s, err, errlen);
        if (ret < 0)
            return ret;
        if (s->done || s->pos >= from)
            return 0;
        ret = xfer_src_read(s, &c, err, errlen);
        if (ret < 0)
            return ret;
    }
}

int xfer_src_next(struct xfer_src *s, struct xfer_chunk *c, char *err, size_t errlen)
{
    int ret;

    s->started = true;
    for (;;) {
        ret = xfer_src_find(s, err, errlen);
        if (ret < 0)
            return ret;
        if (s->done)
            return 0;
        ret = xfer_src_read(s, c, err, errlen);
        if (ret < 0)
            return ret;
        if (ret == 0)
            continue;
        xfer_src_encode(s, c);
        s->st.chunks++;
        s->st.logical += c->len;
        s->st.wire += c->body_len;
        if (c->enc == XFER_ZSTD)
            s->st.compressed++;
        return 1;
    }
}

int xfer_src_digest(const struct xfer_src *s, char *out)
{
    if (!s->done)
        return -EAGAIN;
    memcpy(out, s->hex, sizeof(s->hex));
    return 0;
}

void xfer_src_stats(const struct xfer_src *s, struct xfer_stats *st)
{
    *st = s->st;
}

/* ---- the destination ---- */

#define XFER_REC_MAGIC 0x3152454678574721ull /* "!GWxFER1" */
#define XFER_ID_MAX    64

/* The record file's one record; sum: XXH3-64 of the bytes before it. */
struct xfer_record {
    uint64_t magic;
    uint64_t size;
    uint64_t verified; /* end of the last chunk written */
    uint64_t durable;  /* the part file was fsynced up to here */
    char id[XFER_ID_MAX + 8];
    char boot_id[40]; /* /proc/sys/kernel/random/boot_id when written */
    uint64_t sum;
};

struct xfer_dst {
    int dirfd, fd, rfd;
    char part[XFER_NAME_MAX + 8], rec[XFER_NAME_MAX + 8], name[XFER_NAME_MAX + 1];
    struct xfer_record r;
    uint64_t unsynced; /* bytes written since the last fsync */
    ZSTD_DCtx *dctx;
    XXH3_state_t *hash;
    uint8_t *buf; /* XFER_CHUNK: a decompressed body */
};

static void xfer_boot_id(char *out, size_t len)
{
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

    out[0] = '\0';
    if (f) {
        if (fgets(out, (int)len, f))
            out[strcspn(out, "\n")] = '\0';
        fclose(f);
    }
}

static int xfer_record_write(struct xfer_dst *x, bool sync, char *err, size_t errlen)
{
    x->r.sum = XXH3_64bits(&x->r, offsetof(struct xfer_record, sum));
    ssize_t n = pwrite(x->rfd, &x->r, sizeof(x->r), 0);
    if (n != (ssize_t)sizeof(x->r))
        return gw_fail(err, errlen, n < 0 ? -errno : -EIO, "cannot write the record of '%s': %s",
                       x->name, n < 0 ? strerror(errno) : "short write");
    if (sync && fdatasync(x->rfd) < 0)
        return gw_fail(err, errlen, -errno, "fsync of the record of '%s': %s", x->name,
                       strerror(errno));
    return 0;
}

void xfer_dst_discard(const char *dir, const char *name)
{
    char p[4096];

    if (!name || strlen(name) > XFER_NAME_MAX || strchr(name, '/'))
        return;
    snprintf(p, sizeof(p), "%s/.%s.part", dir, name);
    unlink(p);
    snprintf(p, sizeof(p), "%s/.%s.xfer", dir, name);
    unlink(p);
}

/* A record on disk that continues this transfer: the resume point, else 0. */
static uint64_t xfer_dst_resume_point(struct xfer_dst *x, uint64_t size, const char *id,
                                      const char *boot)
{
    struct xfer_record r;
    struct stat sb;

    if (pread(x->rfd, &r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return 0;
    if (r.magic != XFER_REC_MAGIC || r.sum != XXH3_64bits(&r, offsetof(struct xfer_record, sum)))
        return 0;
    if (r.size != size || memchr(r.id, 0, sizeof(r.id)) == NULL || strcmp(r.id, id) ||
        r.verified > size || r.durable > r.verified)
        return 0;
    if (fstat(x->fd, &sb) < 0 || (uint64_t)sb.st_size != size)
        return 0;
    if (memchr(r.boot_id, 0, sizeof(r.boot_id)) == NULL || strcmp(r.boot_id, boot) || !boot[0])
        return r.durable; /* rebooted: what was not fsynced may be lost */
    return r.verified;
}

int xfer_dst_open(const char *dir, const char *name, uint64_t size, const char *id,
                  struct xfer_dst **out, char *err, size_t errlen)
{
    struct xfer_dst *x;
    char boot[40];
    uint64_t from;
    int ret;

    *out = NULL;
    if (!name || !name[0] || strlen(name) > XFER_NAME_MAX || strchr(name, '/') ||
        !strcmp(name, ".") || !strcmp(name, ".."))
        return gw_fail(err, errlen, -EINVAL, "bad file name '%.64s'", name ? name : "");
    if (size > XFER_FILE_MAX)
        return gw_fail(err, errlen, -EINVAL, "size %llu beyond %llu bytes",
                       (unsigned long long)size, (unsigned long long)XFER_FILE_MAX);
    if (!id || strlen(id) > XFER_ID_MAX)
        return gw_fail(err, errlen, -EINVAL, "transfer id longer than %d characters", XFER_ID_MAX);
    x = calloc(1, sizeof(*x));
    if (!x)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    x->fd = x->rfd = x->dirfd = -1;
    snprintf(x->name, sizeof(x->name), "%s", name);
    snprintf(x->part, sizeof(x->part), ".%s.part", name);
    snprintf(x->rec, sizeof(x->rec), ".%s.xfer", name);
    x->buf = malloc(XFER_CHUNK);
    x->dctx = ZSTD_createDCtx();
    x->hash = XXH3_createState();
    if (!x->buf || !x->dctx || !x->hash) {
        ret = gw_fail(err, errlen, -ENOMEM, "out of memory");
        goto fail;
    }
    x->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (x->dirfd < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot open '%s': %s", dir, strerror(errno));
        goto fail;
    }
    x->fd = openat(x->dirfd, x->part, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    x->rfd = x->fd < 0 ? -1 : openat(x->dirfd, x->rec, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (x->fd < 0 || x->rfd < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot create '%s/%s': %s", dir,
                      x->fd < 0 ? x->part : x->rec, strerror(errno));
        goto fail;
    }
    xfer_boot_id(boot, sizeof(boot));
    from = xfer_dst_resume_point(x, size, id, boot);
    /* Nothing past the resume point survives, even a half-written chunk. */
    if (ftruncate(x->fd, (off_t)from) < 0 || ftruncate(x->fd, (off_t)size) < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot size '%s/%s' to %llu bytes: %s", dir, x->part,
                      (unsigned long long)size, strerror(errno));
        goto fail;
    }
    x->r.magic = XFER_REC_MAGIC;
    x->r.size = size;
    x->r.verified = from;
    x->r.durable = from;
    snprintf(x->r.id, sizeof(x->r.id), "%s", id);
    snprintf(x->r.boot_id, sizeof(x->r.boot_id), "%s", boot);
    if (from == 0 && ftruncate(x->rfd, 0) < 0) {
        ret = gw_fail(err, errlen, -errno, "cannot reset '%s': %s", x->rec, strerror(errno));
        goto fail;
    }
    /* The resumed data is fsynced before the record claims it is durable. */
    if (from && fdatasync(x->fd) < 0) {
        ret = gw_fail(err, errlen, -errno, "fsync of '%s': %s", x->part, strerror(errno));
        goto fail;
    }
    ret = xfer_record_write(x, true, err, errlen);
    if (ret < 0)
        goto fail;
    *out = x;
    return 0;
fail:
    xfer_dst_free(x);
    return ret;
}

void xfer_dst_free(struct xfer_dst *x)
{
    if (!x)
        return;
    if (x->fd >= 0)
        close(x->fd);
    if (x->rfd >= 0)
        close(x->rfd);
    if (x->dirfd >= 0)
        close(x->dirfd);
    ZSTD_freeDCtx(x->dctx);
    XXH3_freeState(x->hash);
    free(x->buf);
    free(x);
}

uint64_t xfer_dst_verified(const struct xfer_dst *x)
{
    return x->r.verified;
}

/* XXH3-64 of the logical content: the decoded blocks with zeros between. */
static uint64_t xfer_logical_hash(XXH3_state_t *st, const struct xfer_chunk *c, const uint8_t *data)
{
    uint32_t nb = xfer_blocks_of(c->len);

    XXH3_64bits_reset(st);
    for (uint32_t b = 0; b < nb;) {
        bool set = xfer_map_bit(c->map, b);
        uint32_t e = b, n = 0;
        while (e < nb && xfer_map_bit(c->map, e) == set)
            n += xfer_block_len(c->len, e++);
        if (set) {
            XXH3_64bits_update(st, data, n);
            data += n;
        } else {
            for (uint32_t k = 0; k < n; k += sizeof(xfer_zeros))
                XXH3_64bits_update(st, xfer_zeros,
                                   n - k < sizeof(xfer_zeros) ? n - k : sizeof(xfer_zeros));
        }
        b = e;
    }
    return XXH3_64bits_digest(st);
}

int xfer_dst_chunk(struct xfer_dst *x, const struct xfer_chunk *c, char *err, size_t errlen)
{
    uint64_t end = c->offset + c->len;
    const uint8_t *data;
    uint32_t want, nb;

    if (c->len == 0 || c->len > XFER_CHUNK || c->offset % XFER_CHUNK || end > x->r.size)
        return gw_fail(err, errlen, -ERANGE, "chunk %llu+%u lies outside the file (%llu bytes)",
                       (unsigned long long)c->offset, c->len, (unsigned long long)x->r.size);
    if (c->len != XFER_CHUNK && end != x->r.size)
        return gw_fail(err, errlen, -ERANGE, "short chunk at %llu is not the last",
                       (unsigned long long)c->offset);
    if (end <= x->r.verified)
        return 0;
    if (c->offset < x->r.verified)
        return gw_fail(err, errlen, -ERANGE, "chunk at %llu overlaps the verified offset %llu",
                       (unsigned long long)c->offset, (unsigned long long)x->r.verified);
    if (!xfer_map_fits(c->map, c->len))
        return gw_fail(err, errlen, -EBADMSG, "chunk map names blocks past its length");
    want = xfer_map_data_len(c->map, c->len);
    if (c->body_len > XFER_BODY_MAX || (c->body_len && !c->body))
        return gw_fail(err, errlen, -EBADMSG, "chunk body larger than %u bytes", XFER_BODY_MAX);
    if (c->enc == XFER_RAW) {
        if (c->body_len != want)
            return gw_fail(err, errlen, -EBADMSG, "chunk body has %zu bytes, its map %u",
                           c->body_len, want);
        data = c->body;
    } else if (c->enc == XFER_ZSTD) {
        unsigned long long fc = ZSTD_getFrameContentSize(c->body, c->body_len);
        if (fc != want)
            return gw_fail(err, errlen, -EBADMSG, "compressed chunk does not declare its %u bytes",
                           want);
        size_t n = ZSTD_decompressDCtx(x->dctx, x->buf, want, c->body, c->body_len);
        if (ZSTD_isError(n) || n != want)
            return gw_fail(err, errlen, -EBADMSG, "compressed chunk does not decode: %s",
                           ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short");
        data = x->buf;
    } else {
        return gw_fail(err, errlen, -EBADMSG, "unknown chunk encoding");
    }
    if (xfer_logical_hash(x->hash, c, data) != c->hash)
        return gw_fail(err, errlen, -EBADMSG, "chunk at %llu does not match its hash",
                       (unsigned long long)c->offset);
    /* One pwrite per run of non-zero blocks. */
    nb = xfer_blocks_of(c->len);
    for (uint32_t b = 0; b < nb;) {
        if (!xfer_map_bit(c->map, b)) {
            b++;
            continue;
        }
        uint32_t e = b, n = 0;
        while (e < nb && xfer_map_bit(c->map, e))
            n += xfer_block_len(c->len, e++);
        uint64_t at = c->offset + (uint64_t)b * XFER_BLOCK;
        for (uint32_t k = 0; k < n;) {
            ssize_t w = pwrite(x->fd, data + k, n - k, (off_t)(at + k));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return gw_fail(err, errlen, w < 0 ? -errno : -EIO, "cannot write '%s': %s", x->part,
                               w < 0 ? strerror(errno) : "short write");
            k += (uint32_t)w;
        }
        data += n;
        x->unsynced += n;
        b = e;
    }
    /* the source's allocated zero blocks: allocated here too */
    for (uint32_t b = 0; b < nb;) {
        if (!xfer_map_bit(c->zmap, b)) {
            b++;
            continue;
        }
        uint32_t e = b, n = 0;
        while (e < nb && xfer_map_bit(c->zmap, e))
            n += xfer_block_len(c->len, e++);
        if (fallocate(x->fd, 0, (off_t)(c->offset + (uint64_t)b * XFER_BLOCK), n) < 0 &&
            errno != EOPNOTSUPP)
            return gw_fail(err, errlen, errno == ENOSPC ? -ENOSPC : -EIO,
                           "cannot allocate in '%s': %s", x->part, strerror(errno));
        b = e;
    }
    x->r.verified = end;
    bool sync = x->unsynced >= XFER_SYNC_EVERY;
    if (sync) {
        if (fdatasync(x->fd) < 0)
            return gw_fail(err, errlen, errno == ENOSPC ? -ENOSPC : -EIO, "fsync of '%s': %s",
                           x->part, strerror(errno));
        x->r.durable = end;
        x->unsynced = 0;
    }
    return xfer_record_write(x, sync, err, errlen);
}

/* Digest of a file read back, as the source computes it. */
static int xfer_file_digest(int dirfd, const char *path, char *hex, char *err, size_t errlen)
{
    struct xfer_src *s;
    char p[64];
    int fd, ret;

    fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gw_fail(err, errlen, -errno, "cannot reopen '%s': %s", path, strerror(errno));
    snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
    ret = xfer_src_open(p, XFER_COMPRESS_NEVER, &s, err, errlen);
    close(fd);
    if (ret < 0)
        return ret;
    ret = xfer_src_skip_to(s, UINT64_MAX, err, errlen);
    if (ret == 0)
        ret = xfer_src_digest(s, hex);
    xfer_src_free(s);
    return ret;
}

int xfer_dst_finish(struct xfer_dst *x, const char *digest, uint64_t *allocated, char *err,
                    size_t errlen)
{
    char got[XFER_DIGEST_HEX + 1];
    struct stat sb;
    int ret;

    if (allocated)
        *allocated = 0;
    if (fsync(x->fd) < 0)
        return gw_fail(err, errlen, errno == ENOSPC ? -ENOSPC : -EIO, "fsync of '%s': %s", x->part,
                       strerror(errno));
    if (fstat(x->fd, &sb) == 0 && allocated)
        *allocated = (uint64_t)sb.st_blocks * 512;
    ret = xfer_file_digest(x->dirfd, x->part, got, err, errlen);
    if (ret < 0)
        return ret;
    if (!digest || strcasecmp(digest, got)) {
        unlinkat(x->dirfd, x->part, 0);
        unlinkat(x->dirfd, x->rec, 0);
        return gw_fail(err, errlen, -EBADMSG,
                       "'%s' arrived with digest %s, the source's is %.40s: starting over", x->name,
                       got, digest ? digest : "(none)");
    }
    if (renameat(x->dirfd, x->part, x->dirfd, x->name) < 0)
        return gw_fail(err, errlen, -errno, "cannot rename '%s' to '%s': %s", x->part, x->name,
                       strerror(errno));
    unlinkat(x->dirfd, x->rec, 0);
    if (fsync(x->dirfd) < 0)
        return gw_fail(err, errlen, -errno, "fsync of the directory of '%s': %s", x->name,
                       strerror(errno));
    return 0;
}

/* ---- rate limit ---- */

static int64_t xfer_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void xfer_rate_init(struct xfer_rate *r, uint64_t bytes_per_s)
{
    r->bytes_per_s = bytes_per_s;
    r->next_ns = xfer_now_ns();
}

void xfer_rate_wait(struct xfer_rate *r, uint64_t n)
{
    int64_t now, burst_ns = 250000000, start;

    if (!r->bytes_per_s)
        return;
    now = xfer_now_ns();
    /* Idle time earns at most a quarter second of credit. */
    start = r->next_ns > now - burst_ns ? r->next_ns : now - burst_ns;
    if (start > now) {
        struct timespec ts = {(time_t)(start / 1000000000), (long)(start % 1000000000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
            ;
    }
    r->next_ns = start + (int64_t)((unsigned __int128)n * 1000000000u / r->bytes_per_s);
}
