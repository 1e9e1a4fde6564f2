/*
 * libFuzzer target for the destination side of the transfer engine
 * (godwitd/xfer.c): a chunk's header parsed from a peer's query string
 * (xfer_chunk_parse) and its body decoded, checked and written into a part
 * file (xfer_dst_chunk), then the whole file checked (xfer_dst_finish).
 *
 *   make fuzz-xfer                       # clang, -fsanitize=fuzzer,address,undefined
 *   build/fuzz/fuzz_xfer -max_total_time=600 build/fuzz/xfer tests/fuzz/corpus/xfer
 *   $(BUILD)/tests/fuzz/replay_xfer tests/fuzz/corpus/xfer   # gcc, run by tests/run.sh
 *
 * Input: up to FUZZ_RECORDS records, each "key=value" lines up to an empty
 * line, then the body.  The keys are the query's (offset, len, hash, map,
 * enc, zmap) plus the target's own: size=N opens (or reopens) the
 * destination with that file size (default FUZZ_SIZE, three chunks and a
 * partial one), blen=N cuts the body at N bytes (default: the rest of the
 * input), finish=HEX calls xfer_dst_finish with that digest after the
 * chunk (a record without offset only finishes).  The part file lives in a
 * per-process directory under /dev/shm (or $TMPDIR), emptied after each
 * input.  Seeds: tests/fuzz/gen_xfer_corpus.c (real xfer_src chunks of a
 * file with data, holes, allocated zeros and a partial last chunk, and
 * hostile variants of them).
 *
 * Invariants beyond "no crash": a refused header says why; an accepted
 * chunk advances the verified offset to its end and reads back from the
 * part file with the hash it claimed; a refused chunk leaves the verified
 * offset and its range of the part file (all zeros before) untouched; a
 * finish that succeeds leaves NAME and no part file or record; nothing but
 * those three names ever appears in the directory.  FUZZ_XFER_VERBOSE=1
 * in the environment prints what each call returned.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "godwitd/xfer.h"

#define FUZZ_RECORDS 16
#define FUZZ_KEYS    16
#define FUZZ_SIZE    (3ull * XFER_CHUNK + 5000)
#define FUZZ_NAME    "disk.img"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_kv {
    unsigned n;
    char key[FUZZ_KEYS][16];
    char val[FUZZ_KEYS][128];
};

static char fuzz_dir[256];
static uint8_t fuzz_buf[XFER_CHUNK];

static void fuzz_empty_dir(bool check)
{
    DIR *d = opendir(fuzz_dir);
    struct dirent *e;

    if (!d)
        abort();
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (check && strcmp(e->d_name, FUZZ_NAME) && strcmp(e->d_name, "." FUZZ_NAME ".part") &&
            strcmp(e->d_name, "." FUZZ_NAME ".xfer"))
            abort(); /* something written under another name */
        unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

static void fuzz_cleanup(void)
{
    if (fuzz_dir[0]) {
        fuzz_empty_dir(false);
        rmdir(fuzz_dir);
    }
}

static void fuzz_setup(void)
{
    const char *base = getenv("TMPDIR");
    struct stat sb;

    if (fuzz_dir[0])
        return;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
        base = "/dev/shm";
    snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fuzz_xfer.XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(fuzz_dir))
        abort();
    atexit(fuzz_cleanup);
}

static const char *fuzz_get(void *ctx, const char *key)
{
    const struct fuzz_kv *kv = ctx;

    for (unsigned i = 0; i < kv->n; i++)
        if (!strcmp(kv->key[i], key))
            return kv->val[i];
    return NULL;
}

/* One record's header from *p: "key=value" lines up to an empty line. */
static void fuzz_header(const uint8_t **p, const uint8_t *end, struct fuzz_kv *kv)
{
    kv->n = 0;
    while (*p < end) {
        const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
        const uint8_t *e = nl ? nl : end;
        size_t n = (size_t)(e - *p);
        *p = nl ? nl + 1 : end;
        if (n == 0)
            return;
        const uint8_t *eq = memchr(e - n, '=', n);
        if (!eq || kv->n == FUZZ_KEYS)
            continue;
        size_t kl = (size_t)(eq - (e - n)), vl = (size_t)(e - eq - 1);
        if (kl >= sizeof(kv->key[0]) || vl >= sizeof(kv->val[0]))
            continue;
        memcpy(kv->key[kv->n], e - n, kl);
        kv->key[kv->n][kl] = '\0';
        memcpy(kv->val[kv->n], eq + 1, vl);
        kv->val[kv->n][vl] = '\0';
        kv->n++;
    }
}

static bool fuzz_read(int fd, uint64_t off, uint32_t len)
{
    ssize_t n = pread(fd, fuzz_buf, len, (off_t)off);
    return n == (ssize_t)len;
}

static bool fuzz_zero(uint32_t len)
{
    static const uint8_t zeros[XFER_CHUNK];
    return !memcmp(fuzz_buf, zeros, len);
}

static void fuzz_chunk(struct xfer_dst *x, int fd, const struct fuzz_kv *kv, const uint8_t *body,
                       size_t blen)
{
    struct xfer_chunk c;
    char err[256] = "";

    if (xfer_chunk_parse(fuzz_get, (void *)kv, &c, err, sizeof(err)) < 0) {
        if (!err[0])
            abort();
        return;
    }
    if (!x)
        return;
    c.body = body;
    c.body_len = blen;
    uint64_t before = xfer_dst_verified(x), end = c.offset + c.len;
    /* Fresh part file: past the verified offset every byte reads zero. */
    bool fresh = c.offset >= before;
    int ret = xfer_dst_chunk(x, &c, err, sizeof(err));
    if (getenv("FUZZ_XFER_VERBOSE"))
        fprintf(stderr, "chunk %llu+%u: %d %s\n", (unsigned long long)c.offset, c.len, ret, err);
    uint64_t after = xfer_dst_verified(x);
    if (ret == 0) {
        if (end <= before) {
            if (after != before)
                abort();
        } else if (after != end || !fuzz_read(fd, c.offset, c.len) ||
                   XXH3_64bits(fuzz_buf, c.len) != c.hash) {
            abort();
        }
    } else {
        if (!err[0])
            abort();
        if (ret == -EBADMSG || ret == -ERANGE) {
            if (after != before)
                abort();
            if (fresh && fuzz_read(fd, c.offset, c.len) && !fuzz_zero(c.len))
                abort();
        }
    }
}

static void fuzz_finish(struct xfer_dst *x, const char *digest)
{
    char err[512] = "";
    struct stat sb;
    uint64_t alloc;
    int dfd = open(fuzz_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd < 0)
        abort();
    int ret = xfer_dst_finish(x, digest, &alloc, err, sizeof(err));
    if (getenv("FUZZ_XFER_VERBOSE"))
        fprintf(stderr, "finish: %d %s\n", ret, err);
    if (ret == 0 &&
        (fstatat(dfd, FUZZ_NAME, &sb, 0) < 0 || fstatat(dfd, "." FUZZ_NAME ".part", &sb, 0) == 0 ||
         fstatat(dfd, "." FUZZ_NAME ".xfer", &sb, 0) == 0))
        abort();
    if (ret < 0 && !err[0])
        abort();
    close(dfd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data, *end = data + size;
    struct xfer_dst *x = NULL;
    struct fuzz_kv kv;
    uint64_t fsize = FUZZ_SIZE;
    char err[256];
    int fd = -1;

    fuzz_setup();
    for (unsigned r = 0; r < FUZZ_RECORDS && p < end; r++) {
        fuzz_header(&p, end, &kv);
        const char *v = fuzz_get(&kv, "size");
        if (v || !x) {
            if (v) {
                char *e;
                errno = 0;
                fsize = strtoull(v, &e, 10);
                if (errno || *e || fsize > 64ull * XFER_CHUNK)
                    fsize = FUZZ_SIZE;
            }
            xfer_dst_free(x);
            if (fd >= 0)
                close(fd);
            fd = -1;
            fuzz_empty_dir(true);
            x = NULL;
            if (xfer_dst_open(fuzz_dir, FUZZ_NAME, fsize, "fuzz", &x, err, sizeof(err)) == 0) {
                char path[400];
                snprintf(path, sizeof(path), "%s/." FUZZ_NAME ".part", fuzz_dir);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                    abort();
            }
        }
        size_t blen = (size_t)(end - p);
        v = fuzz_get(&kv, "blen");
        if (v) {
            unsigned long n = strtoul(v, NULL, 10);
            if (n < blen)
                blen = n;
        }
        const uint8_t *body = p;
        p += blen;
        if (fuzz_get(&kv, "offset"))
            fuzz_chunk(x, fd, &kv, body, blen);
        v = fuzz_get(&kv, "finish");
        if (v && x) {
            fuzz_finish(x, v);
            /* finished (or refused and removed): a new transfer */
            xfer_dst_free(x);
            x = NULL;
            close(fd);
            fd = -1;
        }
    }
    xfer_dst_free(x);
    if (fd >= 0)
        close(fd);
    fuzz_empty_dir(true);
    return 0;
}
