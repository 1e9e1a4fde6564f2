/*
 * The transfer engine (src/godwitd/xfer.c) on real files in a temporary
 * directory: a sparse file with holes, data extents holding zero blocks,
 * random and text data, a partial last block, sent chunk by chunk into a
 * destination and compared (cmp, allocated blocks, digests); resume after
 * a stop (same id, other id, other size, corrupt record); a flipped body
 * bit; hostile chunk headers; a zstd bomb; a tampered part file at finish;
 * ENOSPC on a tiny tmpfs (skipped with a notice when mount fails); the
 * rate limit.  "test_xfer bench [dir]": throughput on a 4 GiB sparse file
 * holding 512 MiB of data, in-process source + destination.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "board_check.h"
#include "godwitd/xfer.h"

static char dir[64];
static char err[512];

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v = rnd();
        memcpy(p + i, &v, 8);
    }
    for (size_t i = n / 8 * 8; i < n; i++)
        p[i] = (uint8_t)rnd();
}

static void fill_text(uint8_t *p, size_t n)
{
    size_t o = 0;
    while (o < n) {
        char line[128];
        int k = snprintf(line, sizeof(line), "%08" PRIu64 " godwit: vm web%u state running %s\n",
                         rnd() % 100000000, (unsigned)(rnd() % 16), rnd() & 1 ? "ok" : "warn");
        size_t m = (size_t)k < n - o ? (size_t)k : n - o;
        memcpy(p + o, line, m);
        o += m;
    }
}

static void put(int fd, const void *p, size_t n, uint64_t at)
{
    if (pwrite(fd, p, n, (off_t)at) != (ssize_t)n)
        perror("pwrite");
}

/* The test file: 37 MiB + 1000 bytes, holes, zero blocks inside data,
 * random and text data, a data tail that ends in a partial block. */
static uint64_t make_source(const char *path)
{
    uint64_t size = (37ull << 20) + 1000;
    uint8_t *b = malloc(4u << 20);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);

    ftruncate(fd, (off_t)size);
    fill_random(b, 3u << 20); /* random, crosses chunks, unaligned start */
    put(fd, b, 3u << 20, (1ull << 20) + 8192);
    fill_text(b, 4u << 20); /* text with zero blocks inside the extent */
    memset(b + 4096, 0, 3 * 4096);
    memset(b + (1u << 20), 0, 1u << 20); /* a whole zero chunk in an extent */
    memset(b + (3u << 20) + 4096 * 7, 0, 4096);
    put(fd, b, 4u << 20, 8ull << 20);
    fill_random(b, 4096);
    put(fd, b, 4096, 20ull << 20); /* one block alone */
    fill_text(b, 2u << 20);
    put(fd, b, 2u << 20, 30ull << 20);
    fill_random(b, 5000);
    put(fd, b, 5000, size - 5000); /* the tail, a partial last block */
    fsync(fd);
    close(fd);
    free(b);
    return size;
}

static uint64_t allocated(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (uint64_t)sb.st_blocks * 512 : 0;
}

/* Bytes in non-zero 4 KiB blocks of a file. */
static uint64_t nonzero_bytes(const char *path)
{
    static uint8_t b[4096], z[4096];
    uint64_t n = 0;
    ssize_t k;
    int fd = open(path, O_RDONLY);

    while ((k = read(fd, b, sizeof(b))) > 0)
        if (memcmp(b, z, (size_t)k))
            n += 4096;
    close(fd);
    return n;
}

static bool same_files(const char *a, const char *b)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

/*
 * Send path to dir/name under id: skip to the destination's verified
 * offset, then at most max chunks (-1: all), then finish when all went.
 * *sent: chunks delivered; *dup: delivered ones below the resume point.
 * Returns the first error, 1 if stopped early, 0 when finished.
 */
static int send_file(const char *path, const char *ddir, const char *name, const char *id,
                     enum xfer_compress mode, int max, int *sent, int *dup)
{
    struct xfer_src *s = NULL;
    struct xfer_dst *x = NULL;
    struct xfer_chunk c;
    char digest[XFER_DIGEST_HEX + 1];
    uint64_t from;
    int ret;

    *sent = 0;
    if (dup)
        *dup = 0;
    ret = xfer_src_open(path, mode, &s, err, sizeof(err));
    if (ret < 0)
        return ret;
    ret = xfer_dst_open(ddir, name, xfer_src_size(s), id, &x, err, sizeof(err));
    if (ret < 0)
        goto out;
    from = xfer_dst_verified(x);
    ret = xfer_src_skip_to(s, from, err, sizeof(err));
    while (ret == 0) {
        if (max >= 0 && *sent >= max) {
            ret = 1;
            goto out;
        }
        ret = xfer_src_next(s, &c, err, sizeof(err));
        if (ret <= 0)
            break;
        if (dup && c.offset < from)
            (*dup)++;
        ret = xfer_dst_chunk(x, &c, err, sizeof(err));
        (*sent)++;
    }
    if (ret == 0) {
        xfer_src_digest(s, digest);
        ret = xfer_dst_finish(x, digest, NULL, err, sizeof(err));
    }
out:
    xfer_dst_free(x);
    xfer_src_free(s);
    return ret;
}

static void test_whole(const char *src, uint64_t size)
{
    char dst[128], part[128];
    int sent, ret;

    for (int mode = XFER_COMPRESS_AUTO; mode <= XFER_COMPRESS_ALWAYS; mode++) {
        snprintf(dst, sizeof(dst), "%s/disk.img", dir);
        unlink(dst);
        ret = send_file(src, dir, "disk.img", "job-1", (enum xfer_compress)mode, -1, &sent, NULL);
        CHECK(ret == 0, "mode %d: every chunk sent and finished (%d chunks): %s", mode, sent,
              ret ? err : "");
        CHECK(same_files(src, dst), "mode %d: the destination is byte-identical", mode);
        struct stat sb;
        CHECK(stat(dst, &sb) == 0 && (uint64_t)sb.st_size == size, "mode %d: its size", mode);
        /* the source's allocated zero blocks are allocated here too (zmap) */
        uint64_t want = allocated(src), got = allocated(dst);
        CHECK(got >= want - want / 100 && got <= want + want / 100 && got > nonzero_bytes(src),
              "mode %d: allocated %" PRIu64 " = the source's %" PRIu64
              " within 1%% (its non-zero blocks: %" PRIu64 ")",
              mode, got, want, nonzero_bytes(src));
        snprintf(part, sizeof(part), "%s/.disk.img.xfer", dir);
        CHECK(access(part, F_OK) != 0, "mode %d: the record is gone", mode);
    }
    CHECK(sent == 13, "12 chunks with a non-zero block, 1 of allocated zeros: %d", sent);

    /* A source with no zero block inside its extents: same allocation. */
    char plain[128];
    snprintf(plain, sizeof(plain), "%s/plain.img", dir);
    int fd = open(plain, O_RDWR | O_CREAT | O_TRUNC, 0600);
    uint8_t *b = malloc(3u << 20);
    fill_random(b, 3u << 20);
    ftruncate(fd, 64 << 20);
    put(fd, b, 3u << 20, 10u << 20);
    put(fd, b, 1u << 20, 40u << 20);
    fsync(fd);
    close(fd);
    free(b);
    ret = send_file(plain, dir, "plain.out", "p", XFER_COMPRESS_AUTO, -1, &sent, NULL);
    snprintf(dst, sizeof(dst), "%s/plain.out", dir);
    uint64_t sa = allocated(plain), da = allocated(dst);
    CHECK(ret == 0 && same_files(plain, dst) && da >= sa - sa / 100 && da <= sa + sa / 100,
          "no zero blocks: identical, allocated %" PRIu64 " = the source's %" PRIu64, da, sa);
}

static void test_digest_and_stats(const char *src)
{
    struct xfer_src *a, *b;
    struct xfer_chunk c;
    struct xfer_stats st;
    char da[XFER_DIGEST_HEX + 1], db[XFER_DIGEST_HEX + 1];
    uint32_t last_len = 0, last_data = 0, last_map_bits = 0;

    xfer_src_open(src, XFER_COMPRESS_ALWAYS, &a, err, sizeof(err));
    CHECK(xfer_src_digest(a, da) == -EAGAIN, "no digest before the end");
    while (xfer_src_next(a, &c, err, sizeof(err)) == 1) {
        last_len = c.len;
        last_data = c.data_len;
        last_map_bits = 0;
        for (unsigned i = 0; i < XFER_MAP_BYTES; i++)
            last_map_bits += (uint32_t)__builtin_popcount(c.map[i]);
    }
    CHECK(xfer_src_digest(a, da) == 0 && strlen(da) == XFER_DIGEST_HEX, "digest %s", da);
    CHECK(last_len == 1000, "the last chunk is short: %u bytes", last_len);
    CHECK(last_data == (last_map_bits - 1) * XFER_BLOCK + last_len % XFER_BLOCK,
          "its decoded length counts the partial last block at its length: %u", last_data);
    xfer_src_stats(a, &st);
    CHECK(st.chunks == 13 && st.compressed >= 2 && st.wire < st.logical,
          "stats: %" PRIu64 " chunks, %" PRIu64 " compressed, %" PRIu64 " wire of %" PRIu64,
          st.chunks, st.compressed, st.wire, st.logical);
    CHECK(xfer_src_data(a) >= 9u << 20 && xfer_src_data(a) < xfer_src_size(a),
          "data extents: %" PRIu64 " bytes", xfer_src_data(a));
    xfer_src_open(src, XFER_COMPRESS_NEVER, &b, err, sizeof(err));
    xfer_src_skip_to(b, UINT64_MAX, err, sizeof(err));
    CHECK(xfer_src_digest(b, db) == 0 && !strcmp(da, db), "skip_to the end: the same digest");
    CHECK(xfer_src_skip_to(b, 0, err, sizeof(err)) == -EINVAL, "skip_to only once");
    xfer_src_free(a);
    xfer_src_free(b);
}

static void test_resume(const char *src)
{
    char dst[128], rec[128];
    int sent, dup, ret;
    struct xfer_dst *x;

    snprintf(dst, sizeof(dst), "%s/r.img", dir);
    snprintf(rec, sizeof(rec), "%s/.r.img.xfer", dir);
    unlink(dst);
    ret = send_file(src, dir, "r.img", "job-7", XFER_COMPRESS_AUTO, 3, &sent, NULL);
    CHECK(ret == 1 && sent == 3, "stopped after 3 chunks");
    xfer_dst_open(dir, "r.img", (37ull << 20) + 1000, "job-7", &x, err, sizeof(err));
    uint64_t v = xfer_dst_verified(x);
    CHECK(v > 0 && v % XFER_CHUNK == 0, "reopened with the same id: verified %" PRIu64, v);
    xfer_dst_free(x);
    ret = send_file(src, dir, "r.img", "job-7", XFER_COMPRESS_AUTO, -1, &sent, &dup);
    CHECK(ret == 0 && dup <= 1 && sent == 10, "resumed: %d more chunks, %d sent twice (%s)", sent,
          dup, ret ? err : "");
    CHECK(same_files(src, dst), "resumed: byte-identical, digests equal");

    /* In flight when the link broke: taken by the source, never delivered. */
    unlink(dst);
    send_file(src, dir, "r.img", "job-8", XFER_COMPRESS_AUTO, 4, &sent, NULL);
    ret = send_file(src, dir, "r.img", "job-8", XFER_COMPRESS_AUTO, -1, &sent, &dup);
    CHECK(ret == 0 && sent == 9 && same_files(src, dst), "resumed after 4: %d more", sent);

    send_file(src, dir, "r.img", "job-9", XFER_COMPRESS_AUTO, 3, &sent, NULL);
    xfer_dst_open(dir, "r.img", (37ull << 20) + 1000, "job-10", &x, err, sizeof(err));
    CHECK(x && xfer_dst_verified(x) == 0, "another id: starts over");
    xfer_dst_free(x);
    send_file(src, dir, "r.img", "job-9", XFER_COMPRESS_AUTO, 3, &sent, NULL);
    xfer_dst_open(dir, "r.img", 38ull << 20, "job-9", &x, err, sizeof(err));
    CHECK(x && xfer_dst_verified(x) == 0, "another size: starts over");
    xfer_dst_free(x);
    send_file(src, dir, "r.img", "job-9", XFER_COMPRESS_AUTO, 3, &sent, NULL);
    int fd = open(rec, O_RDWR);
    uint8_t byte;
    pread(fd, &byte, 1, 20);
    byte ^= 4;
    pwrite(fd, &byte, 1, 20);
    close(fd);
    xfer_dst_open(dir, "r.img", (37ull << 20) + 1000, "job-9", &x, err, sizeof(err));
    CHECK(x && xfer_dst_verified(x) == 0, "corrupt record: starts over");
    xfer_dst_free(x);
    fd = open(rec, O_RDWR);
    ftruncate(fd, 10);
    close(fd);
    xfer_dst_open(dir, "r.img", (37ull << 20) + 1000, "job-9", &x, err, sizeof(err));
    CHECK(x && xfer_dst_verified(x) == 0, "torn record: starts over");
    xfer_dst_free(x);
    ret = send_file(src, dir, "r.img", "job-9", XFER_COMPRESS_AUTO, -1, &sent, NULL);
    CHECK(ret == 0 && same_files(src, dst), "and then finishes identical");
}

static void test_bad_body(const char *src)
{
    struct xfer_src *s;
    struct xfer_dst *x;
    struct xfer_chunk c, bad;
    char part[128];
    static uint8_t body[XFER_BODY_MAX], back[XFER_CHUNK];

    snprintf(part, sizeof(part), "%s/.b.img.part", dir);
    xfer_src_open(src, XFER_COMPRESS_NEVER, &s, err, sizeof(err));
    xfer_dst_open(dir, "b.img", xfer_src_size(s), "b", &x, err, sizeof(err));
    xfer_src_next(s, &c, err, sizeof(err));
    bad = c;
    memcpy(body, c.body, c.body_len);
    body[c.body_len / 2] ^= 0x10;
    bad.body = body;
    CHECK(xfer_dst_chunk(x, &bad, err, sizeof(err)) == -EBADMSG, "a flipped bit: -EBADMSG (%s)",
          err);
    int fd = open(part, O_RDONLY);
    memset(back, 1, sizeof(back));
    pread(fd, back, XFER_CHUNK, (off_t)c.offset);
    bool zero = true;
    for (size_t i = 0; i < XFER_CHUNK; i++)
        zero &= back[i] == 0;
    CHECK(zero && xfer_dst_verified(x) == 0 && allocated(part) == 0, "nothing written");
    close(fd);
    bad.body_len--;
    CHECK(xfer_dst_chunk(x, &bad, err, sizeof(err)) == -EBADMSG, "a short body: -EBADMSG (%s)",
          err);
    CHECK(xfer_dst_chunk(x, &c, err, sizeof(err)) == 0 && xfer_dst_verified(x) == c.offset + c.len,
          "sent again: accepted");
    CHECK(xfer_dst_chunk(x, &c, err, sizeof(err)) == 0, "a chunk already written: accepted");
    bad = c;
    bad.offset = 64ull << 20;
    CHECK(xfer_dst_chunk(x, &bad, err, sizeof(err)) == -ERANGE, "beyond the size: -ERANGE");

    /* zstd bombs: a frame claiming more than the map, one without a size. */
    size_t big = 8u << 20, zl;
    uint8_t *zeros = calloc(1, big);
    zl = ZSTD_compress(body, sizeof(body), zeros, big, 1);
    xfer_src_next(s, &c, err, sizeof(err));
    bad = c;
    bad.enc = XFER_ZSTD;
    bad.body = body;
    bad.body_len = zl;
    CHECK(xfer_dst_chunk(x, &bad, err, sizeof(err)) == -EBADMSG,
          "a %zu-byte frame of 8 MiB: -EBADMSG (%s)", zl, err);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    ZSTD_inBuffer in = {zeros, big, 0};
    ZSTD_outBuffer out = {body, sizeof(body), 0};
    ZSTD_compressStream2(cc, &out, &in, ZSTD_e_end);
    ZSTD_freeCCtx(cc);
    bad.body_len = out.pos;
    CHECK(xfer_dst_chunk(x, &bad, err, sizeof(err)) == -EBADMSG,
          "a frame without a content size: -EBADMSG (%s)", err);
    bad.body_len = XFER_BODY_MAX + 1;
    CHECK(xfer_dst_chunk(x, &bad, err, sizeof(err)) == -EBADMSG, "a body over the bound");
    free(zeros);
    CHECK(xfer_dst_chunk(x, &c, err, sizeof(err)) == 0, "the real chunk after them: accepted");
    xfer_dst_free(x);
    xfer_src_free(s);
    xfer_dst_discard(dir, "b.img");
    CHECK(access(part, F_OK) != 0, "discard removes the part file");
}

struct kv {
    const char *k[8], *v[8];
};

static const char *kv_get(void *ctx, const char *key)
{
    struct kv *q = ctx;
    for (int i = 0; i < 8 && q->k[i]; i++)
        if (!strcmp(q->k[i], key))
            return q->v[i];
    return NULL;
}

static int parse_with(const char *off, const char *len, const char *hash, const char *map,
                      const char *enc, struct xfer_chunk *c)
{
    struct kv q = {{"offset", "len", "hash", "map", "enc"}, {off, len, hash, map, enc}};
    return xfer_chunk_parse(kv_get, &q, c, err, sizeof(err));
}

/* Split "a=b&c=d" into q (in place). */
static void split_query(char *s, struct kv *q)
{
    int n = 0;
    memset(q, 0, sizeof(*q));
    for (char *t = strtok(s, "&"); t && n < 8; t = strtok(NULL, "&")) {
        char *eq = strchr(t, '=');
        if (!eq)
            continue;
        *eq = '\0';
        q->k[n] = t;
        q->v[n++] = eq + 1;
    }
}

static void test_headers(void)
{
    struct xfer_chunk c = {0}, p;
    char q[256];
    struct kv kv;
    const char *full = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    const char *two = "0300000000000000000000000000000000000000000000000000000000000000";
    const char *h = "0123456789abcdef";
    const char *one = "0100000000000000000000000000000000000000000000000000000000000000";

    c.offset = 5ull << 20;
    c.len = 5000;
    c.hash = 0xfedcba9876543210ull;
    c.map[0] = 3;
    c.enc = XFER_ZSTD;
    CHECK(xfer_chunk_query(&c, q, sizeof(q)) == 0, "query: %s", q);
    CHECK(xfer_chunk_query(&c, q, 20) == -ENAMETOOLONG, "query too long: -ENAMETOOLONG");
    xfer_chunk_query(&c, q, sizeof(q));
    split_query(q, &kv);
    CHECK(xfer_chunk_parse(kv_get, &kv, &p, err, sizeof(err)) == 0 && p.offset == c.offset &&
              p.len == c.len && p.hash == c.hash && !memcmp(p.map, c.map, XFER_MAP_BYTES) &&
              p.enc == XFER_ZSTD && p.data_len == 4096 + 904,
          "parse(query) gives the chunk back, data_len %u", p.data_len);
    CHECK(parse_with("0", "1048576", h, full, "raw", &p) == 0 && p.data_len == XFER_CHUNK,
          "a full chunk");
    CHECK(parse_with("0", "8192", h, full, "raw", &p) == -EINVAL, "map bits past len: %s", err);
    CHECK(parse_with("0", "4097", h, two, "raw", &p) == 0 && p.data_len == 4097,
          "4097 bytes, two blocks: data_len 4097");
    CHECK(parse_with("0", "0", h, two, "raw", &p) == -EINVAL, "len 0: %s", err);
    CHECK(parse_with("0", "1048577", h, two, "raw", &p) == -EINVAL, "len > chunk: %s", err);
    CHECK(parse_with("1048576", "4096", h, one, "raw", &p) == 0 && p.data_len == 4096,
          "one block at 1 MiB");
    CHECK(parse_with("4096", "4096", h, one, "raw", &p) == -EINVAL && strstr(err, "unaligned"),
          "unaligned offset: %s", err);
    CHECK(parse_with("4398046511104", "4096", h, one, "raw", &p) == -EINVAL,
          "offset at XFER_FILE_MAX: %s", err);
    CHECK(parse_with("99999999999999999999999", "4096", h, one, "raw", &p) == -EINVAL,
          "offset overflow: %s", err);
    CHECK(parse_with("-1048576", "4096", h, one, "raw", &p) == -EINVAL, "negative offset");
    CHECK(parse_with(" 0", "4096", h, one, "raw", &p) == -EINVAL, "space in a number");
    CHECK(parse_with("0", "4096", "0123456789abcdeg", one, "raw", &p) == -EINVAL,
          "garbage hex in the hash: %s", err);
    CHECK(parse_with("0", "4096", "0123", one, "raw", &p) == -EINVAL, "short hash");
    CHECK(parse_with("0", "4096", h, "zz", "raw", &p) == -EINVAL, "garbage map: %s", err);
    CHECK(parse_with("0", "4096", h, one, "lz4", &p) == -EINVAL && strstr(err, "enc"),
          "unknown enc: %s", err);
    CHECK(parse_with("0", "4096", h, NULL, "raw", &p) == -EINVAL, "no map");
    CHECK(parse_with(NULL, "4096", h, one, "raw", &p) == -EINVAL, "no offset");
}

static void test_tamper(const char *src)
{
    struct xfer_src *s;
    struct xfer_dst *x;
    struct xfer_chunk c;
    char part[128], rec[128], digest[XFER_DIGEST_HEX + 1];

    snprintf(part, sizeof(part), "%s/.t.img.part", dir);
    snprintf(rec, sizeof(rec), "%s/.t.img.xfer", dir);
    xfer_src_open(src, XFER_COMPRESS_AUTO, &s, err, sizeof(err));
    xfer_dst_open(dir, "t.img", xfer_src_size(s), "t", &x, err, sizeof(err));
    while (xfer_src_next(s, &c, err, sizeof(err)) == 1)
        xfer_dst_chunk(x, &c, err, sizeof(err));
    xfer_src_digest(s, digest);
    int fd = open(part, O_RDWR);
    put(fd, "X", 1, (9ull << 20) + 17);
    close(fd);
    CHECK(xfer_dst_finish(x, digest, NULL, err, sizeof(err)) == -EBADMSG,
          "a tampered part file: -EBADMSG (%s)", err);
    char name[128];
    snprintf(name, sizeof(name), "%s/t.img", dir);
    CHECK(access(part, F_OK) && access(rec, F_OK) && access(name, F_OK),
          "part file and record removed, nothing renamed");
    xfer_dst_free(x);
    xfer_src_free(s);
}

static void test_enospc(void)
{
    char small[128], path[160];
    struct xfer_dst *x;
    struct xfer_chunk c = {0};
    static uint8_t b[XFER_CHUNK];
    int ret = 0, i;

    snprintf(small, sizeof(small), "%s/small", dir);
    mkdir(small, 0700);
    if (mount("tmpfs", small, "tmpfs", 0, "size=2m") < 0) {
        printf("notice: cannot mount a tmpfs (%s): ENOSPC case skipped\n", strerror(errno));
        return;
    }
    snprintf(path, sizeof(path), "%s/src", dir);
    ret = xfer_dst_open(small, "big.img", 16u << 20, "e", &x, err, sizeof(err));
    CHECK(ret == 0, "a 16 MiB sparse part file on a 2 MiB tmpfs opens");
    fill_random(b, sizeof(b));
    memset(c.map, 0xff, sizeof(c.map));
    c.len = XFER_CHUNK;
    c.body = b;
    c.body_len = c.data_len = XFER_CHUNK;
    c.hash = XXH3_64bits(b, XFER_CHUNK);
    for (i = 0; i < 16 && ret == 0; i++) {
        c.offset = (uint64_t)i * XFER_CHUNK;
        ret = xfer_dst_chunk(x, &c, err, sizeof(err));
    }
    CHECK(ret == -ENOSPC, "chunk %d: -ENOSPC (%s) [real tmpfs of 2 MiB]", i, err);
    xfer_dst_free(x);
    xfer_dst_discard(small, "big.img");
    umount(small);
    rmdir(small);
}

static void test_rate(void)
{
    struct xfer_rate r;
    double t0 = now_s();

    xfer_rate_init(&r, 100000000);
    for (int i = 0; i < 20; i++)
        xfer_rate_wait(&r, 1u << 20);
    double t = now_s() - t0;
    CHECK(t >= 0.15 && t < 2.0, "20 MiB at 100 MB/s: %.3f s", t);
    xfer_rate_init(&r, 0);
    t0 = now_s();
    for (int i = 0; i < 1000; i++)
        xfer_rate_wait(&r, 1u << 30);
    CHECK(now_s() - t0 < 0.1, "unlimited: no wait");
}

/* 4 GiB sparse, 512 MiB of data in 2 MiB extents: half random, half text. */
static int bench(const char *where)
{
    char src[256], cmd[768];
    uint8_t *b = malloc(2u << 20);
    int fd, sent;
    struct xfer_src *s;
    struct xfer_dst *x;
    struct xfer_chunk c;
    struct xfer_stats st;
    char digest[XFER_DIGEST_HEX + 1];

    snprintf(src, sizeof(src), "%s/bench.img", where);
    fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ftruncate(fd, 4ll << 30);
    for (int i = 0; i < 256; i++) {
        if (i % 2)
            fill_text(b, 2u << 20);
        else
            fill_random(b, 2u << 20);
        put(fd, b, 2u << 20, (uint64_t)i * (16u << 20));
    }
    fsync(fd);
    close(fd);
    free(b);
    for (int mode = XFER_COMPRESS_AUTO; mode <= XFER_COMPRESS_NEVER; mode++) {
        snprintf(cmd, sizeof(cmd), "%s/bench.out", where);
        unlink(cmd);
        double t0 = now_s();
        xfer_src_open(src, (enum xfer_compress)mode, &s, err, sizeof(err));
        xfer_dst_open(where, "bench.out", xfer_src_size(s), "bench", &x, err, sizeof(err));
        sent = 0;
        while (xfer_src_next(s, &c, err, sizeof(err)) == 1) {
            xfer_dst_chunk(x, &c, err, sizeof(err));
            sent++;
        }
        xfer_src_digest(s, digest);
        int ret = xfer_dst_finish(x, digest, NULL, err, sizeof(err));
        double t = now_s() - t0;
        xfer_src_stats(s, &st);
        printf("bench %s: %d chunks, %.2f s, %.0f MB/s of data, %" PRIu64
               " of them compressed, wire %.1f%% of logical (%d %s)\n",
               mode == XFER_COMPRESS_AUTO ? "auto" : "never", sent, t, 512.0 * 1.048576 / t,
               st.compressed, 100.0 * (double)st.wire / (double)st.logical, ret, err);
        xfer_dst_free(x);
        xfer_src_free(s);
    }
    snprintf(cmd, sizeof(cmd), "%s/bench.out", where);
    unlink(cmd);
    snprintf(cmd, sizeof(cmd),
             "t0=$(date +%%s.%%N); rsync --sparse '%s' '%s/bench.rsync'; t1=$(date +%%s.%%N); "
             "echo \"bench rsync --sparse: $(echo \"$t1 - $t0\" | bc) s\"; rm -f '%s/bench.rsync'",
             src, where, where);
    if (system(cmd) != 0)
        printf("rsync failed\n");
    unlink(src);
    return 0;
}

int main(int argc, char **argv)
{
    char src[128], cmd[128];
    uint64_t size;

    snprintf(dir, sizeof(dir), "/tmp/godwit-xfer-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    if (argc > 1 && !strcmp(argv[1], "bench")) {
        int r = bench(argc > 2 ? argv[2] : dir);
        rmdir(dir);
        return r;
    }
    snprintf(src, sizeof(src), "%s/src.img", dir);
    size = make_source(src);
    test_headers();
    test_whole(src, size);
    test_digest_and_stats(src);
    test_resume(src);
    test_bad_body(src);
    test_tamper(src);
    test_enospc();
    test_rate();
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("cannot remove %s\n", dir);
    return board_check_done();
}
