/*
 * Seed corpus for tests/fuzz/fuzz_xfer.c, made from real xfer_src runs
 * (the chunk hashes and the digest are XXH3, which Python lacks here).
 *
 *   $(BUILD)/tests/fuzz/gen_xfer_corpus tests/fuzz/corpus/xfer
 *
 * The source file (FUZZ_SIZE of fuzz_xfer.c: three chunks and 5000 bytes)
 * has incompressible data with a hole block, compressible text, allocated
 * zero blocks (zmap) and a partial last chunk.  Valid seeds: the whole
 * file raw and zstd with the right digest, each chunk alone, a resent
 * chunk.  Hostile ones: a flipped map or hash bit, map and zmap
 * overlapping, a body one byte short or long, garbage hex, an unaligned
 * offset, len 0 and too large, a zstd frame that lies about its size or
 * inflates past it, chunks out of order, a wrong digest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "godwitd/xfer.h"

#define GEN_SIZE   (3ull * XFER_CHUNK + 5000)
#define GEN_CHUNKS 4

struct gen_chunk {
    char query[512];
    uint8_t *body;
    size_t body_len;
};

struct gen_run {
    struct gen_chunk c[GEN_CHUNKS];
    int n;
    char digest[XFER_DIGEST_HEX + 1];
};

static const char *gen_out;

static int gen_source(const char *path)
{
    uint8_t *buf = calloc(1, GEN_SIZE);
    uint32_t seed = 12345;
    int fd;

    if (!buf)
        return -1;
    /* chunk 0: noise in eight blocks (the seeds stay small), one zero
     * block among them left as a hole, the rest zeros */
    for (size_t i = 0; i < 8 * XFER_BLOCK; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (uint8_t)(seed >> 16);
    }
    memset(buf + 5 * XFER_BLOCK, 0, XFER_BLOCK);
    /* chunk 1: text in sixteen blocks (zstd pays), then zeros */
    for (size_t i = 0; i < 16 * XFER_BLOCK; i++)
        buf[XFER_CHUNK + i] = (uint8_t) "the quick brown fox jumps over the lazy dog\n"[i % 44];
    /* chunk 2: zeros, written (allocated: zmap), with a little data */
    memcpy(buf + 2 * XFER_CHUNK + 7 * XFER_BLOCK, "data", 4);
    /* chunk 3: 5000 bytes, the partial last block set */
    memset(buf + 3 * XFER_CHUNK + 4096, 0x5a, 5000 - 4096);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) {
        free(buf);
        return -1;
    }
    /* chunk 0 and 3 data, the whole of chunk 2 (zeros allocated), the text */
    if (pwrite(fd, buf, XFER_CHUNK, 0) != XFER_CHUNK ||
        pwrite(fd, buf + XFER_CHUNK, XFER_CHUNK / 2, XFER_CHUNK) != XFER_CHUNK / 2 ||
        pwrite(fd, buf + 2 * XFER_CHUNK, XFER_CHUNK, 2 * XFER_CHUNK) != XFER_CHUNK ||
        pwrite(fd, buf + 3 * XFER_CHUNK, 5000, 3 * XFER_CHUNK) != 5000) {
        close(fd);
        free(buf);
        return -1;
    }
    /* punch the hole back into chunk 0 */
    fallocate(fd, 0x02 | 0x01, 5 * XFER_BLOCK, XFER_BLOCK); /* PUNCH_HOLE | KEEP_SIZE */
    close(fd);
    free(buf);
    return 0;
}

static int gen_run(const char *path, enum xfer_compress mode, struct gen_run *r)
{
    struct xfer_src *s;
    struct xfer_chunk c;
    char err[256];
    int ret;

    memset(r, 0, sizeof(*r));
    if (xfer_src_open(path, mode, &s, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    while ((ret = xfer_src_next(s, &c, err, sizeof(err))) == 1 && r->n < GEN_CHUNKS) {
        struct gen_chunk *g = &r->c[r->n++];
        xfer_chunk_query(&c, g->query, sizeof(g->query));
        g->body = malloc(c.body_len + 1);
        if (!g->body)
            abort();
        memcpy(g->body, c.body, c.body_len);
        g->body_len = c.body_len;
    }
    if (ret == 0)
        xfer_src_digest(s, r->digest);
    xfer_src_free(s);
    return ret;
}

/* One record: the query's pairs as lines, extra lines, blen, the body. */
static void gen_record(FILE *f, const char *query, const char *extra, const uint8_t *body,
                       size_t blen)
{
    char q[1024];

    snprintf(q, sizeof(q), "%s", query);
    for (char *t = strtok(q, "&"); t; t = strtok(NULL, "&"))
        fprintf(f, "%s\n", t);
    if (extra)
        fputs(extra, f);
    fprintf(f, "blen=%zu\n\n", blen);
    if (blen)
        fwrite(body, 1, blen, f);
}

static void gen_run_free(struct gen_run *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->c[i].body);
}

static FILE *gen_open(const char *name)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", gen_out, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        exit(1);
    }
    return f;
}

static void gen_chunk(const char *name, const char *size, const struct gen_chunk *g,
                      const char *query, const uint8_t *body, size_t blen)
{
    FILE *f = gen_open(name);
    if (size)
        fprintf(f, "size=%s\n", size);
    gen_record(f, query ? query : g->query, NULL, body ? body : g->body, body ? blen : g->body_len);
    fclose(f);
}

/* query with key's value replaced by val */
static void gen_replace(char *out, size_t len, const char *query, const char *key, const char *val)
{
    char q[1024], *o = out;
    size_t kl = strlen(key);

    snprintf(q, sizeof(q), "%s", query);
    out[0] = '\0';
    for (char *t = strtok(q, "&"); t; t = strtok(NULL, "&")) {
        bool hit = !strncmp(t, key, kl) && t[kl] == '=';
        int n = snprintf(o, len - (size_t)(o - out), "%s%s%s%s", o == out ? "" : "&", hit ? key : t,
                         hit ? "=" : "", hit ? val : "");
        o += n;
    }
}

static void gen_full(const char *name, const struct gen_run *r, const char *digest, int order[])
{
    FILE *f = gen_open(name);
    for (int i = 0; i < r->n; i++) {
        const struct gen_chunk *g = &r->c[order ? order[i] : i];
        char fin[80] = "";
        if (i == r->n - 1)
            snprintf(fin, sizeof(fin), "finish=%s\n", digest);
        gen_record(f, g->query, fin, g->body, g->body_len);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/gen_xfer.XXXXXX", path[256], q[1024];
    struct gen_run raw, z;

    if (argc != 2 || !mkdtemp(dir)) {
        fprintf(stderr, "usage: gen_xfer_corpus DIR\n");
        return 2;
    }
    gen_out = argv[1];
    mkdir(gen_out, 0755);
    snprintf(path, sizeof(path), "%s/src", dir);
    if (gen_source(path) < 0 || gen_run(path, XFER_COMPRESS_NEVER, &raw) < 0 ||
        gen_run(path, XFER_COMPRESS_ALWAYS, &z) < 0 || raw.n != GEN_CHUNKS) {
        fprintf(stderr, "gen_xfer_corpus: source run failed (%d chunks)\n", raw.n);
        return 1;
    }
    unlink(path);
    rmdir(dir);

    /* valid */
    gen_full("full-raw", &raw, raw.digest, NULL);
    gen_full("full-zstd", &z, z.digest, NULL);
    gen_full("full-wrong-digest", &raw, "00000000000000000000000000000000", NULL);
    gen_full("full-bad-digest-hex", &raw, "zz", NULL);
    for (int i = 0; i < GEN_CHUNKS; i++) {
        char name[64];
        snprintf(name, sizeof(name), "chunk%d-raw", i);
        gen_chunk(name, NULL, &raw.c[i], NULL, NULL, 0);
        snprintf(name, sizeof(name), "chunk%d-zstd", i);
        gen_chunk(name, NULL, &z.c[i], NULL, NULL, 0);
    }
    {
        FILE *f = gen_open("resend");
        gen_record(f, raw.c[0].query, NULL, raw.c[0].body, raw.c[0].body_len);
        gen_record(f, raw.c[0].query, NULL, raw.c[0].body, raw.c[0].body_len);
        gen_record(f, z.c[1].query, NULL, z.c[1].body, z.c[1].body_len);
        gen_record(f, raw.c[0].query, NULL, raw.c[0].body, raw.c[0].body_len);
        fclose(f);
    }
    int rev[GEN_CHUNKS] = {1, 0, 3, 2};
    gen_full("out-of-order", &raw, raw.digest, rev);
    /* the last chunk in a file of another size: not the last there */
    gen_chunk("short-not-last", "8388608", &raw.c[3], NULL, NULL, 0);
    gen_chunk("beyond-size", "1048576", &raw.c[2], NULL, NULL, 0);

    /* hostile headers */
    gen_replace(q, sizeof(q), raw.c[0].query, "map",
                "0100000000000000000000000000000000000000000000000000000000000000");
    gen_chunk("bad-map", NULL, &raw.c[0], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[3].query, "map",
                "0700000000000000000000000000000000000000000000000000000000000000");
    gen_chunk("map-past-len", NULL, &raw.c[3], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[0].query, "zmap",
                "ff00000000000000000000000000000000000000000000000000000000000000");
    gen_chunk("zmap-overlap", NULL, &raw.c[0], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[0].query, "map", "0g");
    gen_chunk("map-garbage-hex", NULL, &raw.c[0], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[0].query, "hash", "0123456789abcdeX");
    gen_chunk("hash-garbage-hex", NULL, &raw.c[0], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[0].query, "hash", "0123456789abcdef");
    gen_chunk("hash-wrong", NULL, &raw.c[0], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[0].query, "offset", "4096");
    gen_chunk("offset-unaligned", NULL, &raw.c[0], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[0].query, "offset", "99999999999999999999999");
    gen_chunk("offset-huge", NULL, &raw.c[0], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[0].query, "len", "0");
    gen_chunk("len-zero", NULL, &raw.c[0], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[0].query, "len", "1048577");
    gen_chunk("len-large", NULL, &raw.c[0], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[0].query, "enc", "lz4");
    gen_chunk("enc-unknown", NULL, &raw.c[0], q, NULL, 0);
    gen_replace(q, sizeof(q), raw.c[1].query, "enc", "zstd");
    gen_chunk("raw-as-zstd", NULL, &raw.c[1], q, NULL, 0);
    gen_replace(q, sizeof(q), z.c[1].query, "enc", "raw");
    gen_chunk("zstd-as-raw", NULL, &z.c[1], q, NULL, 0);

    /* hostile bodies */
    gen_chunk("body-short", NULL, &raw.c[0], NULL, raw.c[0].body, raw.c[0].body_len - 1);
    {
        uint8_t *b = malloc(raw.c[0].body_len + 1);
        memcpy(b, raw.c[0].body, raw.c[0].body_len);
        b[raw.c[0].body_len] = 0;
        gen_chunk("body-long", NULL, &raw.c[0], NULL, b, raw.c[0].body_len + 1);
        b[100] ^= 1;
        gen_chunk("body-flipped", NULL, &raw.c[0], NULL, b, raw.c[0].body_len);
        free(b);
    }
    gen_chunk("zstd-truncated", NULL, &z.c[1], NULL, z.c[1].body, z.c[1].body_len / 2);
    {
        /* a bomb: 64 MiB of zeros in a frame without its size, and one
         * that says it holds what the map asks but inflates past it */
        size_t big = 64u << 20, cap = ZSTD_compressBound(big);
        uint8_t *src = calloc(1, big), *dst = malloc(cap);
        ZSTD_CCtx *cc = ZSTD_createCCtx();
        ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
        size_t n = ZSTD_compress2(cc, dst, cap, src, big);
        if (!ZSTD_isError(n))
            gen_chunk("zstd-bomb-nosize", NULL, &z.c[1], NULL, dst, n);
        ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setPledgedSrcSize(cc, big);
        n = ZSTD_compress2(cc, dst, cap, src, big);
        if (!ZSTD_isError(n)) {
            /* patch nothing: a frame declaring 64 MiB under a full map */
            gen_replace(q, sizeof(q), z.c[0].query, "enc", "zstd");
            gen_chunk("zstd-bomb-sized", NULL, &z.c[0], q, dst, n);
        }
        ZSTD_freeCCtx(cc);
        free(src);
        free(dst);
    }
    {
        FILE *f = gen_open("garbage");
        fputs("offset=abc\nlen=-1\nhash=\nmap=\nenc=\n\n\x01\x02", f);
        fclose(f);
    }
    {
        FILE *f = gen_open("finish-only-empty");
        fputs("size=0\nfinish=99aabbccddeeff00112233445566778899\n\n", f);
        fclose(f);
    }
    gen_run_free(&raw);
    gen_run_free(&z);
    return 0;
}
