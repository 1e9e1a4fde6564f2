/*
 * Unit tests for the state stream library (src/migration): state_buf field
 * encoding and its sticky error, state_stream over real files (memfd) and
 * pipes (buffer boundaries, big writes, digest, truncation, the fake-full
 * limit, a vanished peer), and mig_format's framing (header, sections, EOF
 * checksum) with hostile input: every refusal must say why.  RAM batches
 * and zero runs: test_state_ram.c.
 */
#include <signal.h>
#include <sys/wait.h>
#include <xxhash.h>

#include "state_stream_test.h"

/* ---- state_buf ----------------------------------------------------------------- */

static void test_buf_widths(void)
{
    static const uint8_t want[] = {
        0x12,                                           /* u8 */
        0x56, 0x34,                                     /* u16 */
        0xde, 0xbc, 0x9a, 0x78,                         /* u32 */
        0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01, /* u64 */
        0x01, 0x00,                                     /* bools */
        0xff,                                           /* u8 max */
        0xff, 0xff,                                     /* u16 max */
        0xff, 0xff, 0xff, 0xff,                         /* u32 max */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* u64 max */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* u64 0 */
        0x05, 0x00, 'h',  'e',  'l',  'l',  'o',        /* str */
        0x00, 0x00,                                     /* empty str */
        0xaa, 0xbb, 0xcc,                               /* bytes */
    };
    static const uint8_t raw[3] = {0xaa, 0xbb, 0xcc};
    struct state_buf w, r;
    uint8_t got3[3];
    char s[16];
    bool ok;

    state_buf_init(&w);
    CHECK(w.len == 0 && w.err == 0 && w.msg[0] == '\0', "buf: init is empty, no error");
    state_put_u8(&w, 0x12);
    state_put_u16(&w, 0x3456);
    state_put_u32(&w, 0x789abcde);
    state_put_u64(&w, 0x0123456789abcdefull);
    state_put_bool(&w, true);
    state_put_bool(&w, false);
    state_put_u8(&w, UINT8_MAX);
    state_put_u16(&w, UINT16_MAX);
    state_put_u32(&w, UINT32_MAX);
    state_put_u64(&w, UINT64_MAX);
    state_put_u64(&w, 0);
    state_put_str(&w, "hello");
    state_put_str(&w, "");
    state_put_bytes(&w, raw, sizeof(raw));
    state_put_bytes(&w, NULL, 0);
    CHECK(state_buf_error(&w) == 0, "buf: writes succeed");
    CHECK_EQ(w.len, sizeof(want), "buf: %zu bytes written", sizeof(want));
    CHECK(w.len == sizeof(want) && memcmp(w.data, want, sizeof(want)) == 0,
          "buf: little-endian byte layout of every width, bool, str, bytes");

    state_buf_reader(&r, w.data, w.len);
    CHECK(r.cap == 0 && r.pos == 0 && state_buf_left(&r) == sizeof(want), "buf: reader set up");
    CHECK_EQ(state_get_u8(&r), 0x12, "buf: get_u8");
    CHECK_EQ(state_get_u16(&r), 0x3456, "buf: get_u16");
    CHECK_EQ(state_get_u32(&r), 0x789abcde, "buf: get_u32");
    CHECK_EQ(state_get_u64(&r), 0x0123456789abcdefull, "buf: get_u64");
    ok = state_get_bool(&r);
    CHECK(ok, "buf: get_bool true");
    ok = state_get_bool(&r);
    CHECK(!ok, "buf: get_bool false");
    CHECK_EQ(state_get_u8(&r), UINT8_MAX, "buf: get_u8 max");
    CHECK_EQ(state_get_u16(&r), UINT16_MAX, "buf: get_u16 max");
    CHECK_EQ(state_get_u32(&r), UINT32_MAX, "buf: get_u32 max");
    CHECK_EQ(state_get_u64(&r), UINT64_MAX, "buf: get_u64 max");
    CHECK_EQ(state_get_u64(&r), 0, "buf: get_u64 zero");
    state_get_str(&r, s, sizeof(s));
    CHECK(strcmp(s, "hello") == 0, "buf: get_str \"%s\"", s);
    memset(s, 'x', sizeof(s));
    state_get_str(&r, s, sizeof(s));
    CHECK(s[0] == '\0', "buf: get_str empty");
    state_get_bytes(&r, got3, sizeof(got3));
    CHECK(memcmp(got3, raw, 3) == 0, "buf: get_bytes");
    CHECK(state_buf_left(&r) == 0 && state_buf_error(&r) == 0,
          "buf: everything consumed, no error");
    CHECK(state_buf_expect_end(&r, "widths") == 0, "buf: expect_end at the end is 0");

    /* reset keeps the allocation */
    {
        uint8_t *data = w.data;
        size_t cap = w.cap;

        state_buf_fail(&w, -EIO, "boom");
        state_buf_reset(&w);
        CHECK(w.len == 0 && w.err == 0 && w.msg[0] == '\0' && w.data == data && w.cap == cap,
              "buf: reset forgets contents and error, keeps the allocation");
        state_put_u16(&w, 0xbeef);
        CHECK(w.len == 2 && w.data[0] == 0xef && w.data[1] == 0xbe, "buf: write after reset");
    }
    state_buf_fini(&w);
    CHECK(w.data == NULL && w.len == 0 && w.cap == 0, "buf: fini clears");
    state_buf_fini(&w); /* twice is harmless */
}

static void test_buf_sticky(void)
{
    static const uint8_t three[3] = {0x11, 0x22, 0x33};
    static const uint8_t bools[4] = {0, 1, 2, 1};
    struct state_buf r, w;
    uint8_t fill[8];
    bool v;

    /* a read past the end zero-fills; later reads return 0 */
    state_buf_reader(&r, three, sizeof(three));
    CHECK_EQ(state_get_u16(&r), 0x2211, "sticky: first u16 read fine");
    CHECK_EQ(state_get_u32(&r), 0, "sticky: u32 past the end returns 0");
    CHECK(state_buf_error(&r) == -EPROTO && has(state_buf_msg(&r), "truncated"),
          "sticky: -EPROTO \"%s\"", state_buf_msg(&r));
    CHECK(r.pos == 2 && state_buf_left(&r) == 1, "sticky: the failed read consumed nothing");
    CHECK_EQ(state_get_u8(&r), 0, "sticky: a later u8 returns 0 though one byte is left");
    memset(fill, 0xaa, sizeof(fill));
    state_get_bytes(&r, fill, sizeof(fill));
    CHECK(!memcmp(fill, (uint8_t[8]){0}, 8), "sticky: get_bytes after the error zero-fills");
    CHECK(state_buf_expect_end(&r, "x") == -EPROTO && has(state_buf_msg(&r), "truncated"),
          "sticky: expect_end keeps the first error");
    CHECK(three[0] == 0x11 && three[2] == 0x33, "sticky: reader never writes foreign memory");

    /* zero-fill of a too-long get_bytes */
    state_buf_reader(&r, three, sizeof(three));
    memset(fill, 0xaa, sizeof(fill));
    state_get_bytes(&r, fill, 4);
    CHECK(state_buf_error(&r) == -EPROTO && !memcmp(fill, (uint8_t[4]){0}, 4) && fill[4] == 0xaa,
          "sticky: get_bytes past the end zero-fills exactly n bytes");

    /* first failure wins; err 0 becomes -EINVAL */
    state_buf_init(&w);
    state_buf_fail(&w, 0, "first %d", 1);
    state_buf_fail(&w, -EIO, "second");
    CHECK(state_buf_error(&w) == -EINVAL && strcmp(state_buf_msg(&w), "first 1") == 0,
          "sticky: first failure wins, err 0 means -EINVAL");
    state_put_u32(&w, 5);
    CHECK(w.len == 0, "sticky: writes after an error are dropped");
    state_buf_fini(&w);

    /* bool: 2 is refused */
    state_buf_reader(&r, bools, sizeof(bools));
    v = state_get_bool(&r);
    CHECK(!v && !state_buf_error(&r), "bool: 0 is false");
    v = state_get_bool(&r);
    CHECK(v && !state_buf_error(&r), "bool: 1 is true");
    v = state_get_bool(&r);
    CHECK(!v && state_buf_error(&r) == -EINVAL && has(state_buf_msg(&r), "boolean"),
          "bool: 2 refused with -EINVAL \"%s\"", state_buf_msg(&r));
    CHECK(has(state_buf_msg(&r), "offset 2"), "bool: message gives the offset");
    v = state_get_bool(&r);
    CHECK(!v, "bool: the next (valid 1) reads false after the error");

    /* expect_end with bytes left */
    state_buf_reader(&r, three, sizeof(three));
    (void)state_get_u8(&r);
    CHECK(state_buf_expect_end(&r, "clint") == -EPROTO && has(state_buf_msg(&r), "clint") &&
              has(state_buf_msg(&r), "2 unexpected bytes"),
          "expect_end: 2 bytes left refused \"%s\"", state_buf_msg(&r));

    /* an empty reader */
    state_buf_reader(&r, NULL, 0);
    CHECK(state_buf_expect_end(&r, "empty") == 0, "expect_end: an empty reader is at its end");
    CHECK_EQ(state_get_u8(&r), 0, "empty reader: get_u8 is 0");
    CHECK(state_buf_error(&r) == -EPROTO, "empty reader: get_u8 fails");
}

static void test_buf_str(void)
{
    static const uint8_t hello[] = {5, 0, 'h', 'e', 'l', 'l', 'o'};
    static const uint8_t short_str[] = {10, 0, 'a', 'b', 'c'};
    static const uint8_t half_len[] = {5};
    struct state_buf r, w;
    char out[8];
    char *big;

    state_buf_reader(&r, hello, sizeof(hello));
    state_get_str(&r, out, 6);
    CHECK(!state_buf_error(&r) && strcmp(out, "hello") == 0, "str: 5 bytes fit in 6");

    state_buf_reader(&r, hello, sizeof(hello));
    memset(out, 'x', sizeof(out));
    state_get_str(&r, out, 5);
    CHECK(state_buf_error(&r) == -EINVAL && out[0] == '\0' && has(state_buf_msg(&r), "at most 4"),
          "str: 5 bytes into 5 refused, out empty \"%s\"", state_buf_msg(&r));
    CHECK(out[5] == 'x', "str: refused read writes nothing past out[0]");

    state_buf_reader(&r, short_str, sizeof(short_str));
    memset(out, 'x', sizeof(out));
    state_get_str(&r, out, sizeof(out));
    CHECK(state_buf_error(&r) == -EINVAL && out[0] == '\0',
          "str: length 10 for an 8-byte out refused");

    {
        char big_out[32];

        state_buf_reader(&r, short_str, sizeof(short_str));
        memset(big_out, 'x', sizeof(big_out));
        state_get_str(&r, big_out, sizeof(big_out));
        CHECK(state_buf_error(&r) == -EPROTO && big_out[0] == '\0' &&
                  has(state_buf_msg(&r), "truncated"),
              "str: length 10 with 3 bytes left: truncated, out empty");
    }

    state_buf_reader(&r, half_len, sizeof(half_len));
    memset(out, 'x', sizeof(out));
    state_get_str(&r, out, sizeof(out));
    CHECK(state_buf_error(&r) == -EPROTO && out[0] == '\0', "str: half a length prefix");

    /* 65535 bytes is the most a string may hold */
    big = xmalloc(0x10001);
    memset(big, 'a', 0x10000);
    big[0x10000] = '\0';
    state_buf_init(&w);
    state_put_str(&w, big);
    CHECK(state_buf_error(&w) == -EINVAL && w.len == 0, "str: 65536 bytes refused on write");
    state_buf_fini(&w);
    big[0xffff] = '\0';
    state_buf_init(&w);
    state_put_str(&w, big);
    CHECK(!state_buf_error(&w) && w.len == 0x10001 && w.data[0] == 0xff && w.data[1] == 0xff,
          "str: 65535 bytes accepted");
    {
        char *back = xmalloc(0x10000);

        state_buf_reader(&r, w.data, w.len);
        state_get_str(&r, back, 0x10000);
        CHECK(!state_buf_error(&r) && strlen(back) == 0xffff, "str: 65535 bytes read back");
        free(back);
    }
    state_buf_fini(&w);
    free(big);
}

static void test_buf_cap(void)
{
    static const char foreign[] = "abc";
    uint8_t dummy = 0;
    struct state_buf w, r;
    uint8_t *src;

    /* one write over the cap: refused before any allocation */
    state_buf_init(&w);
    state_put_bytes(&w, &dummy, (size_t)STATE_BUF_MAX + 1);
    CHECK(state_buf_error(&w) == -EFBIG && w.len == 0 && w.data == NULL && w.cap == 0,
          "cap: STATE_BUF_MAX+1 in one write refused, nothing allocated \"%s\"", state_buf_msg(&w));
    state_put_bytes(&w, &dummy, SIZE_MAX);
    CHECK(state_buf_error(&w) == -EFBIG, "cap: SIZE_MAX refused (no overflow)");
    state_buf_fini(&w);

    state_buf_init(&w);
    state_put_bytes(&w, &dummy, SIZE_MAX);
    CHECK(state_buf_error(&w) == -EFBIG && w.data == NULL, "cap: SIZE_MAX on a fresh buffer");
    state_buf_fini(&w);

    /* exactly the cap fits; one more byte does not */
    src = calloc(1, STATE_BUF_MAX);
    if (!src)
        exit(2);
    src[STATE_BUF_MAX - 2] = 0x5a; /* the last byte written below */
    state_buf_init(&w);
    state_put_u8(&w, 1);
    state_put_bytes(&w, src, STATE_BUF_MAX - 1);
    CHECK(!state_buf_error(&w) && w.len == STATE_BUF_MAX && w.data[w.len - 1] == 0x5a,
          "cap: exactly STATE_BUF_MAX bytes accepted");
    state_put_u8(&w, 2);
    CHECK(state_buf_error(&w) == -EFBIG && w.len == STATE_BUF_MAX,
          "cap: one byte more refused, length unchanged");
    state_buf_fini(&w);
    free(src);

    /* a reader over foreign memory: never written, never freed; turned
     * writer, it copies first */
    state_buf_reader(&r, foreign, 3);
    CHECK(r.data == (const uint8_t *)foreign && r.cap == 0 && r.len == 3,
          "foreign: the reader points at the caller's bytes");
    CHECK_EQ(state_get_u8(&r), 'a', "foreign: read");
    state_put_u8(&r, 'd');
    CHECK(!state_buf_error(&r) && r.data != (const uint8_t *)foreign && r.cap >= 4 && r.len == 4 &&
              memcmp(r.data, "abcd", 4) == 0,
          "foreign: a write copies into its own allocation");
    CHECK(strcmp(foreign, "abc") == 0, "foreign: the caller's bytes are untouched");
    state_buf_fini(&r); /* frees the copy, not foreign */
    state_buf_reader(&r, foreign, 3);
    state_buf_fini(&r); /* cap 0: nothing freed (ASan would catch a bad free) */
    CHECK(r.data == NULL, "foreign: fini of a reader frees nothing");
}

/* ---- state_stream -------------------------------------------------------------- */

static void test_stream_roundtrip(void)
{
    size_t total = 4 * MIB + 12345, off = 0, len, chunk;
    uint8_t *data = xmalloc(total), *back = xmalloc(total), *file;
    struct state_stream *w, *r;
    uint64_t wdigest;
    int fd = mem_fd(), ret = 0;
    bool eof;
    unsigned k = 0;

    fill_random(data, total);
    w = state_stream_new(fd, false);
    CHECK(w != NULL, "stream: writer created");
    if (!w)
        exit(2);
    CHECK(state_stream_offset(w) == 0 && state_stream_digest(w) == XXH3_64bits(NULL, 0),
          "stream: fresh writer at offset 0, digest of nothing");
    /* small writes of odd sizes across the 1 MiB boundary */
    while (off < 2 * MIB + 77) {
        chunk = 1 + (k++ * 7919) % 65521;
        ret |= state_stream_write(w, data + off, chunk);
        off += chunk;
    }
    CHECK(ret == 0, "stream: %u small writes crossing the 1 MiB buffer", k);
    /* one big write (skips the buffer) after buffered bytes */
    chunk = 3 * MIB / 2 + 3;
    CHECK(state_stream_write(w, data + off, chunk) == 0, "stream: one write of %zu bytes", chunk);
    off += chunk;
    CHECK(state_stream_write(w, data + off, 0) == 0, "stream: a zero-length write");
    CHECK(state_stream_write(w, data + off, total - off) == 0, "stream: the tail");
    CHECK(state_stream_offset(w) == total, "stream: offset counts every byte");
    CHECK(state_stream_flush(w) == 0, "stream: flush");
    wdigest = state_stream_digest(w);
    CHECK(wdigest == XXH3_64bits(data, total), "stream: writer digest is XXH3-64 of the bytes");
    CHECK(state_stream_flush(w) == 0, "stream: a second flush is harmless");
    state_stream_free(w);
    state_stream_free(NULL);

    file = fd_contents(fd, &len);
    CHECK(len == total && memcmp(file, data, total) == 0,
          "stream: the file holds exactly the bytes, in order");
    free(file);

    lseek(fd, 0, SEEK_SET);
    r = state_stream_new(fd, true);
    if (!r)
        exit(2);
    eof = state_stream_at_eof(r);
    CHECK(!eof, "stream: at_eof false at the start");
    off = 0;
    k = 0;
    ret = 0;
    while (off < MIB + 5) {
        chunk = 1 + (k++ * 104729) % 30011;
        ret |= state_stream_read(r, back + off, chunk);
        off += chunk;
    }
    ret |= state_stream_read(r, back + off, 2 * MIB); /* spans two refills */
    off += 2 * MIB;
    ret |= state_stream_read(r, back + off, total - off);
    CHECK(ret == 0 && memcmp(back, data, total) == 0, "stream: read back equal, mixed sizes");
    CHECK(state_stream_offset(r) == total, "stream: reader offset");
    CHECK(state_stream_digest(r) == wdigest, "stream: digest equal on both sides");
    eof = state_stream_at_eof(r);
    CHECK(eof, "stream: at_eof true at the end");
    memset(back, 0xaa, 16);
    ret = state_stream_read(r, back, 16);
    CHECK(ret == -EPROTO && has(state_stream_msg(r), "truncated") &&
              !memcmp(back, (uint8_t[16]){0}, 16),
          "stream: read past the end: -EPROTO, zero-filled \"%s\"", state_stream_msg(r));
    CHECK(state_stream_error(r) == -EPROTO, "stream: the error is sticky");
    eof = state_stream_at_eof(r);
    CHECK(!eof, "stream: at_eof false once in error");
    state_stream_free(r);
    close(fd);
    free(data);
    free(back);
}

static void test_stream_truncated(void)
{
    uint8_t ten[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, got[20];
    struct rd r;
    bool eof;
    int ret;

    r = rd_open(ten, sizeof(ten));
    memset(got, 0xaa, sizeof(got));
    ret = state_stream_read(r.s, got, 4);
    CHECK(ret == 0 && got[3] == 4, "truncated: a first read is fine");
    eof = state_stream_at_eof(r.s);
    CHECK(!eof, "truncated: at_eof false with 6 bytes left");
    ret = state_stream_read(r.s, got, 2);
    CHECK(ret == 0 && got[0] == 5 && got[1] == 6, "truncated: at_eof consumed nothing");
    memset(got, 0xaa, sizeof(got));
    ret = state_stream_read(r.s, got, 20);
    CHECK(ret == -EPROTO && has(state_stream_msg(r.s), "truncated") &&
              !memcmp(got, (uint8_t[20]){0}, 20),
          "truncated: 20 wanted, 4 left: -EPROTO, all 20 zero-filled \"%s\"",
          state_stream_msg(r.s));
    ret = state_stream_read(r.s, got, 1);
    CHECK(ret == -EPROTO, "truncated: later reads keep failing");
    rd_close(&r);

    r = rd_open(NULL, 0);
    eof = state_stream_at_eof(r.s);
    CHECK(eof, "empty: at_eof true on an empty file");
    ret = state_stream_read(r.s, got, 1);
    CHECK(ret == -EPROTO && has(state_stream_msg(r.s), "truncated"), "empty: a read is truncated");
    rd_close(&r);

    /* an I/O error: reading a write-only fd */
    {
        int fd = open("/dev/null", O_WRONLY);
        struct state_stream *s = state_stream_new(fd, true);

        ret = state_stream_read(s, got, 1);
        CHECK(ret == -EBADF && has(state_stream_msg(s), "read"),
              "I/O error: read from a write-only fd gives -EBADF \"%s\"", state_stream_msg(s));
        state_stream_free(s);
        close(fd);
    }
    /* the first failure wins */
    {
        int fd = mem_fd();
        struct state_stream *s = state_stream_new(fd, false);

        state_stream_fail(s, 0, "first");
        state_stream_fail(s, -ENOSPC, "second");
        CHECK(state_stream_error(s) == -EIO && strcmp(state_stream_msg(s), "first") == 0,
              "stream_fail: first wins, err 0 means -EIO");
        CHECK(state_stream_write(s, ten, 1) == -EIO && state_stream_offset(s) == 0,
              "stream_fail: writes after it are refused");
        CHECK(state_stream_flush(s) == -EIO && fd_size(fd) == 0, "stream_fail: nothing written");
        state_stream_free(s);
        close(fd);
    }
}

static void test_stream_limit(void)
{
    uint8_t *data = xmalloc(2 * MIB);
    struct state_stream *w;
    int fd = mem_fd(), ret;
    uint8_t *file;
    size_t len;

    fill_random(data, 2 * MIB);
    w = state_stream_new(fd, false);
    state_stream_set_limit(w, 1000);
    ret = state_stream_write(w, data, 600);
    ret |= state_stream_write(w, data + 600, 600);
    CHECK(ret == 0, "limit: buffered writes do not yet hit the limit");
    ret = state_stream_flush(w);
    CHECK(ret == -ENOSPC && has(state_stream_msg(w), "limit"),
          "limit: flush past the limit: -ENOSPC \"%s\"", state_stream_msg(w));
    CHECK(fd_size(fd) == 1000, "limit: exactly 1000 bytes reached the file");
    file = fd_contents(fd, &len);
    CHECK(len == 1000 && memcmp(file, data, 1000) == 0, "limit: and they are the first 1000");
    free(file);
    CHECK(state_stream_write(w, data, 10) == -ENOSPC, "limit: sticky, a write is refused");
    CHECK(state_stream_flush(w) == -ENOSPC && fd_size(fd) == 1000,
          "limit: sticky, nothing more written");
    state_stream_free(w);
    close(fd);

    /* a big (unbuffered) write hits it too */
    fd = mem_fd();
    w = state_stream_new(fd, false);
    state_stream_set_limit(w, 4096);
    ret = state_stream_write(w, data, 2 * MIB);
    CHECK(ret == -ENOSPC && fd_size(fd) == 4096,
          "limit: a 2 MiB write stops at 4096 bytes with -ENOSPC");
    state_stream_free(w);
    close(fd);

    /* exactly at the limit is fine */
    fd = mem_fd();
    w = state_stream_new(fd, false);
    state_stream_set_limit(w, 100);
    ret = state_stream_write(w, data, 100);
    CHECK(ret == 0 && state_stream_flush(w) == 0 && fd_size(fd) == 100,
          "limit: writing exactly the limit succeeds");
    state_stream_set_limit(w, 0);
    ret = state_stream_write(w, data, 100);
    CHECK(ret == 0 && state_stream_flush(w) == 0 && fd_size(fd) == 200,
          "limit: 0 turns it off again");
    state_stream_free(w);
    close(fd);
    free(data);
}

static void test_stream_pipes(void)
{
    size_t total = 3 * MIB + 999, off = 0, chunk;
    uint8_t *data = xmalloc(total), *back = xmalloc(total);
    struct state_stream *s;
    int p[2], ret, status;
    uint8_t b[8];
    bool eof;
    pid_t pid;

    /* a peer that went away: EPIPE, not a signal */
    signal(SIGPIPE, SIG_IGN);
    if (pipe(p) < 0)
        exit(2);
    close(p[0]);
    s = state_stream_new(p[1], false);
    ret = state_stream_write(s, "hello", 5);
    CHECK(ret == 0, "pipe: a buffered write succeeds before the flush");
    ret = state_stream_flush(s);
    CHECK(ret == -EPIPE && has(state_stream_msg(s), "write"),
          "pipe: flush to a closed reader: -EPIPE \"%s\"", state_stream_msg(s));
    CHECK(state_stream_write(s, "x", 1) == -EPIPE, "pipe: sticky");
    state_stream_free(s);
    close(p[1]);

    /* a writer that closed: read what there was, then end of stream */
    if (pipe(p) < 0)
        exit(2);
    if (write(p[1], "abcde", 5) != 5)
        exit(2);
    close(p[1]);
    s = state_stream_new(p[0], true);
    ret = state_stream_read(s, b, 5);
    CHECK(ret == 0 && memcmp(b, "abcde", 5) == 0, "pipe: read what the writer sent");
    eof = state_stream_at_eof(s);
    CHECK(eof, "pipe: at_eof after the writer closed");
    ret = state_stream_read(s, b, 1);
    CHECK(ret == -EPROTO && has(state_stream_msg(s), "truncated"),
          "pipe: read past a closed writer: -EPROTO truncated");
    state_stream_free(s);
    close(p[0]);

    /* a child streams 3 MiB through a pipe: many short reads and writes */
    fill_random(data, total);
    if (pipe(p) < 0)
        exit(2);
    pid = fork();
    if (pid < 0)
        exit(2);
    if (pid == 0) {
        close(p[0]);
        s = state_stream_new(p[1], false);
        ret = state_stream_write(s, data, 100);
        ret |= state_stream_write(s, data + 100, 2 * MIB);
        ret |= state_stream_write(s, data + 100 + 2 * MIB, total - 100 - 2 * MIB);
        ret |= state_stream_flush(s);
        _exit(ret ? 1 : 0);
    }
    close(p[1]);
    s = state_stream_new(p[0], true);
    ret = 0;
    for (unsigned k = 0; off < total; k++) {
        chunk = 1 + (k * 7919) % 300000;
        if (chunk > total - off)
            chunk = total - off;
        ret |= state_stream_read(s, back + off, chunk);
        off += chunk;
    }
    CHECK(ret == 0 && memcmp(back, data, total) == 0, "pipe: 3 MiB through a pipe, equal");
    CHECK(state_stream_digest(s) == XXH3_64bits(data, total), "pipe: reader digest matches");
    eof = state_stream_at_eof(s);
    CHECK(eof, "pipe: at_eof when the child is done");
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pipe: the child's writer saw no error");
    state_stream_free(s);
    close(p[0]);
    free(data);
    free(back);
}

/* ---- state_format: header ---------------------------------------------------- */

/* A format 2 header with the given fields, hash 0x42..., an anonymous VM. */
static void hdr_bytes(uint8_t b[STATE_HEADER_LEN], uint32_t version, uint32_t endian,
                      uint32_t page_size, uint32_t flags)
{
    memset(b, 0, STATE_HEADER_LEN);
    memcpy(b, STATE_MAGIC, STATE_MAGIC_LEN);
    for (unsigned i = 0; i < 4; i++) {
        b[8 + i] = (uint8_t)(version >> (8 * i));
        b[12 + i] = (uint8_t)(endian >> (8 * i));
        b[16 + i] = (uint8_t)(page_size >> (8 * i));
        b[20 + i] = (uint8_t)(flags >> (8 * i));
    }
    memset(b + 24, 0x42, 8);
}

/* The header in b must be refused with -EPROTO and a message holding word. */
static void header_refused(const char *what, const uint8_t *b, size_t len, const char *word)
{
    struct state_header h;
    struct rd r = rd_open(b, len);
    int ret = state_read_header(r.s, &h);

    CHECK(ret == -EPROTO && state_stream_error(r.s) == ret && has(state_stream_msg(r.s), word),
          "header: %s refused \"%s\"", what, state_stream_msg(r.s));
    rd_close(&r);
}

static void test_header(void)
{
    static const uint8_t want[48] = {
        0x89, 'G',  'W',  'S',  'T',  '\r', '\n', 0x1a, /* magic */
        0x02, 0x00, 0x00, 0x00, 0x0d, 0x0c, 0x0b, 0x0a, /* version 2, endian check */
        0x00, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* page size, flags */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* config hash */
        0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, /* uuid */
        0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
    };
    struct state_header h = {.version = STATE_FORMAT_VERSION,
                             .page_size = STATE_PAGE_SIZE,
                             .flags = STATE_F_LIVE,
                             .config_hash = 0x1122334455667788ull};
    struct state_header back;
    uint8_t b[STATE_HEADER_LEN], *file;
    struct state_stream *w;
    int fd = mem_fd(), ret;
    bool pad_zero = true;
    size_t len;
    struct rd r;

    CHECK(state_uuid_parse("6BA7B810-9dad-11d1-80b4-00c04fd430c8", h.uuid) == 0,
          "header: a UUID parses (either case)");
    snprintf(h.name, sizeof(h.name), "web-1 (test)");
    w = state_stream_new(fd, false);
    ret = state_write_header(w, &h);
    CHECK(ret == 0 && state_stream_flush(w) == 0, "header: written");
    state_stream_free(w);
    file = fd_contents(fd, &len);
    for (size_t i = 49 + strlen(h.name); i < len; i++)
        pad_zero &= file[i] == 0;
    CHECK(len == STATE_HEADER_LEN && len == 112 && memcmp(file, want, sizeof(want)) == 0 &&
              file[48] == strlen(h.name) && memcmp(file + 49, h.name, strlen(h.name)) == 0 &&
              pad_zero,
          "header: exact byte layout (magic, LE version/endian/page/flags/hash, uuid, "
          "name length, name, zero padding)");

    r = rd_open(file, len);
    ret = state_read_header(r.s, &back);
    CHECK(ret == 0 && back.version == h.version && back.page_size == h.page_size &&
              back.flags == h.flags && back.config_hash == h.config_hash &&
              memcmp(back.uuid, h.uuid, STATE_UUID_LEN) == 0 && !strcmp(back.name, h.name),
          "header: round trip with identity");
    CHECK(state_stream_offset(r.s) == STATE_HEADER_LEN, "header: 112 bytes consumed");
    rd_close(&r);
    free(file);
    close(fd);

    /* an anonymous VM: what an initializer without the identity writes */
    {
        struct state_header anon = {.version = STATE_FORMAT_VERSION, .page_size = STATE_PAGE_SIZE};

        fd = mem_fd();
        w = state_stream_new(fd, false);
        ret = state_write_header(w, &anon);
        state_stream_flush(w);
        state_stream_free(w);
        file = fd_contents(fd, &len);
        r = rd_open(file, len);
        ret |= state_read_header(r.s, &back);
        CHECK(ret == 0 && state_uuid_is_nil(back.uuid) && back.name[0] == '\0',
              "header: an anonymous VM (nil UUID, no name) round trips");
        rd_close(&r);
        free(file);
        close(fd);
    }

    /* a name the header cannot carry is refused by the writer */
    {
        struct state_header bad = h;

        fd = mem_fd();
        snprintf(bad.name, sizeof(bad.name), "tab\there");
        w = state_stream_new(fd, false);
        ret = state_write_header(w, &bad);
        CHECK(ret == -EINVAL && has(state_stream_msg(w), "name"),
              "header: writer refuses an unprintable name \"%s\"", state_stream_msg(w));
        state_stream_free(w);
        memset(bad.name, 'x', sizeof(bad.name)); /* no NUL at all */
        w = state_stream_new(fd, false);
        ret = state_write_header(w, &bad);
        CHECK(ret == -EINVAL, "header: writer refuses an unterminated 64-byte name");
        state_stream_free(w);
        close(fd);
    }

    hdr_bytes(b, STATE_FORMAT_VERSION, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    r = rd_open(b, sizeof(b));
    ret = state_read_header(r.s, &back);
    CHECK(ret == 0 && back.flags == 0 && back.config_hash == 0x4242424242424242ull,
          "header: crafted good header accepted (no flags)");
    rd_close(&r);
    b[48] = STATE_VM_NAME_MAX;
    memset(b + 49, '~', STATE_VM_NAME_MAX);
    r = rd_open(b, sizeof(b));
    ret = state_read_header(r.s, &back);
    CHECK(ret == 0 && strlen(back.name) == STATE_VM_NAME_MAX, "header: a %u-byte name is accepted",
          STATE_VM_NAME_MAX);
    rd_close(&r);

    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    b[0] = 0x88;
    header_refused("bad magic (first byte)", b, sizeof(b), "magic");
    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    b[7] = 0x1b;
    header_refused("bad magic (last byte)", b, sizeof(b), "magic");
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    header_refused("a PNG", b, sizeof(b), "magic");
    hdr_bytes(b, 0, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    header_refused("version 0", b, sizeof(b), "version 0");
    hdr_bytes(b, 1, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    header_refused("format 1", b, sizeof(b), "older godwit (format 1)");
    /* a format 1 file is named as such from its first 16 bytes: its
     * 32-byte header is never read as a 112-byte one */
    header_refused("format 1, 16 bytes", b, 16, "older godwit (format 1)");
    hdr_bytes(b, 3, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    header_refused("format 3", b, sizeof(b), "newer godwit (format 3)");
    hdr_bytes(b, 0xffffffff, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    header_refused("version 0xffffffff", b, sizeof(b), "format 4294967295");
    hdr_bytes(b, 2, 0x0d0c0b0a, STATE_PAGE_SIZE, 0);
    header_refused("byte-swapped endian check", b, sizeof(b), "endian");
    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, 8192, 0);
    header_refused("page size 8192", b, sizeof(b), "page size 8192");
    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, 0, 0);
    header_refused("page size 0", b, sizeof(b), "page size");
    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 2);
    header_refused("unknown flag bit 1", b, sizeof(b), "flags");
    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0x80000001u);
    header_refused("unknown flag bit 31", b, sizeof(b), "flags");
    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    b[48] = STATE_VM_NAME_MAX + 1;
    memset(b + 49, 'a', STATE_VM_NAME_MAX);
    header_refused("a 64-byte name length", b, sizeof(b), "64 bytes");
    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    b[48] = 3;
    memcpy(b + 49, "a\nb", 3);
    header_refused("a name with a newline", b, sizeof(b), "printable");
    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    b[48] = 2;
    memcpy(b + 49, "a\0", 2);
    header_refused("a name with a NUL", b, sizeof(b), "printable");
    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    b[48] = 1;
    memcpy(b + 49, "ab", 2);
    header_refused("a byte after the name", b, sizeof(b), "not zero");
    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    b[STATE_HEADER_LEN - 1] = 1;
    header_refused("the last padding byte", b, sizeof(b), "not zero");

    hdr_bytes(b, 2, STATE_ENDIAN_CHECK, STATE_PAGE_SIZE, 0);
    r = rd_open(b, 20);
    ret = state_read_header(r.s, &back);
    CHECK(ret == -EPROTO && has(state_stream_msg(r.s), "truncated"), "header: 20 bytes truncated");
    rd_close(&r);
    r = rd_open(b, STATE_HEADER_LEN - 1);
    ret = state_read_header(r.s, &back);
    CHECK(ret == -EPROTO && has(state_stream_msg(r.s), "truncated"),
          "header: one byte short is truncated");
    rd_close(&r);
    r = rd_open(NULL, 0);
    ret = state_read_header(r.s, &back);
    CHECK(ret == -EPROTO && has(state_stream_msg(r.s), "truncated"), "header: empty file");
    rd_close(&r);

    /* a version the writer was told to write is still checked by the reader */
    fd = mem_fd();
    w = state_stream_new(fd, false);
    h.version = 3;
    ret = state_write_header(w, &h);
    state_stream_flush(w);
    state_stream_free(w);
    file = fd_contents(fd, &len);
    header_refused("written version 3", file, len, "format 3");
    free(file);
    close(fd);
}

static void test_uuid(void)
{
    uint8_t u[STATE_UUID_LEN], zero[STATE_UUID_LEN] = {0};
    char text[STATE_UUID_TEXT_LEN + 1];
    static const char *const bad[] = {"",
                                      "6ba7b810-9dad-11d1-80b4-00c04fd430c",   /* short */
                                      "6ba7b810-9dad-11d1-80b4-00c04fd430c88", /* long */
                                      "6ba7b8109dad-11d1-80b4-00c04fd430c8-",  /* dash misplaced */
                                      "6ba7b810-9dad-11d1-80b4_00c04fd430c8",  /* not a dash */
                                      "6ba7b810-9dad-11d1-80b4-00c04fd430cg",  /* not hex */
                                      "{ba7b810-9dad-11d1-80b4-00c04fd430c}",  /* braces */
                                      " 6ba7b810-9dad-11d1-80b4-00c04fd430c",  /* space */
                                      "6ba7b810-9dad-11d1-80b4-00c04fd430c8x"};

    CHECK(state_uuid_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8", u) == 0 && u[0] == 0x6b &&
              u[15] == 0xc8,
          "uuid: parses");
    state_uuid_format(u, text);
    CHECK(!strcmp(text, "6ba7b810-9dad-11d1-80b4-00c04fd430c8"), "uuid: formats back \"%s\"", text);
    CHECK(state_uuid_parse("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", u) == 0 && u[7] == 0xff,
          "uuid: upper case");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(u, zero, sizeof(u));
        CHECK(state_uuid_parse(bad[i], u) == -EINVAL && state_uuid_is_nil(u),
              "uuid: '%s' refused, output untouched", bad[i]);
    }
    state_uuid_format(zero, text);
    CHECK(!strcmp(text, "00000000-0000-0000-0000-000000000000") && state_uuid_is_nil(zero),
          "uuid: nil");
    CHECK(
        state_vm_name_valid("a") && state_vm_name_valid("web 1 ~!") && !state_vm_name_valid("") &&
            !state_vm_name_valid("\x7f") && !state_vm_name_valid("caf\xc3\xa9") &&
            !state_vm_name_valid(
                "0123456789012345678901234567890123456789012345678901234567890123") &&
            state_vm_name_valid("012345678901234567890123456789012345678901234567890123456789012"),
        "name: 1..63 printable ASCII bytes");
}

/* ---- mig_format: sections ---------------------------------------------------- */

/* 12-byte section header: type, name length, version, instance, length. */
static size_t sec_bytes(uint8_t *b, uint8_t type, uint8_t nlen, uint16_t version, uint32_t instance,
                        uint32_t len, const char *name)
{
    b[0] = type;
    b[1] = nlen;
    b[2] = (uint8_t)version;
    b[3] = (uint8_t)(version >> 8);
    for (unsigned i = 0; i < 4; i++) {
        b[4 + i] = (uint8_t)(instance >> (8 * i));
        b[8 + i] = (uint8_t)(len >> (8 * i));
    }
    if (name)
        memcpy(b + 12, name, nlen);
    return 12 + (name ? nlen : 0);
}

/* A section at b must be refused with -EPROTO, a message holding word, and
 * no more than want_off bytes read (0: do not check). */
static void section_refused(const char *what, const uint8_t *b, size_t len, const char *word,
                            uint64_t want_off)
{
    struct state_section sec;
    struct rd r = rd_open(b, len);
    int ret = state_read_section(r.s, &sec);

    CHECK(ret == -EPROTO && state_stream_error(r.s) == ret && has(state_stream_msg(r.s), word) &&
              (!want_off || state_stream_offset(r.s) == want_off),
          "section: %s refused \"%s\"", what, state_stream_msg(r.s));
    rd_close(&r);
}

static void test_sections(void)
{
    static const uint8_t want[] = {
        STATE_SEC_DEVICE, 5, 7, 0, 3, 0, 0, 0, 5, 0, 0, 0, 'c', 'l', 'i', 'n', 't', 1, 2, 3, 4, 5,
    };
    char name63[64], name64[65];
    uint8_t b[256], *file;
    struct state_section sec;
    struct state_stream *w;
    struct state_buf pb;
    int fd = mem_fd(), ret;
    size_t len, n;
    struct rd r;

    memset(name63, 'n', 63);
    name63[63] = '\0';
    memset(name64, 'n', 64);
    name64[64] = '\0';

    w = state_stream_new(fd, false);
    ret = state_write_section(w, STATE_SEC_DEVICE, "clint", 3, 7, (const uint8_t[]){1, 2, 3, 4, 5},
                              5);
    CHECK(ret == 0, "section: written");
    ret = state_write_section(w, STATE_SEC_DEVICE, name64, 0, 1, NULL, 0);
    CHECK(ret == -EINVAL && state_stream_offset(w) == sizeof(want),
          "section: a 64-byte name refused on write, nothing written");
    state_stream_free(w);
    close(fd);

    fd = mem_fd();
    w = state_stream_new(fd, false);
    ret = state_write_section(w, STATE_SEC_DEVICE, "clint", 3, 7, (const uint8_t[]){1, 2, 3, 4, 5},
                              5);
    ret |= state_write_section(w, STATE_SEC_ROUND, NULL, 0, 0, NULL, 0);
    ret |= state_write_section(w, STATE_SEC_DEVICE, name63, 0xffffffffu, 0xffff, "xyz", 3);
    ret |= state_write_section(w, STATE_SEC_CONFIG, "", 0, 1, "a long configuration text", 25);
    CHECK(ret == 0 && state_stream_flush(w) == 0, "section: four sections written");
    state_stream_free(w);
    file = fd_contents(fd, &len);
    close(fd);
    CHECK(len >= sizeof(want) && memcmp(file, want, sizeof(want)) == 0,
          "section: exact byte layout (type, nlen, LE version/instance/len, name, payload)");

    r = rd_open(file, len);
    state_buf_init(&pb);
    ret = state_read_section(r.s, &sec);
    CHECK(ret == 0 && sec.type == STATE_SEC_DEVICE && strcmp(sec.name, "clint") == 0 &&
              sec.instance == 3 && sec.version == 7 && sec.len == 5,
          "section: header read back");
    ret = state_read_payload(r.s, &sec, &pb);
    CHECK(ret == 0 && pb.len == 5 && pb.pos == 0 && memcmp(pb.data, "\1\2\3\4\5", 5) == 0,
          "section: payload read into a buffer");
    CHECK_EQ(state_get_u8(&pb), 1, "section: the payload buffer is a reader");
    ret = state_read_section(r.s, &sec);
    CHECK(ret == 0 && sec.type == STATE_SEC_ROUND && sec.name[0] == '\0' && sec.len == 0,
          "section: empty name, empty payload");
    ret = state_read_payload(r.s, &sec, &pb);
    CHECK(ret == 0 && pb.len == 0 && state_buf_expect_end(&pb, "round") == 0,
          "section: empty payload reads as an empty buffer");
    ret = state_read_section(r.s, &sec);
    CHECK(ret == 0 && strcmp(sec.name, name63) == 0 && sec.instance == 0xffffffffu &&
              sec.version == 0xffff && sec.len == 3,
          "section: a 63-byte name, max instance and version");
    ret = state_read_payload(r.s, &sec, &pb);
    CHECK(ret == 0 && pb.len == 3 && !memcmp(pb.data, "xyz", 3), "section: its payload");
    ret = state_read_section(r.s, &sec);
    ret |= state_read_payload(r.s, &sec, &pb);
    CHECK(ret == 0 && sec.type == STATE_SEC_CONFIG && pb.len == 25 &&
              !memcmp(pb.data, "a long configuration text", 25),
          "section: buffer reused for a longer payload");
    CHECK(state_stream_at_eof(r.s), "section: nothing left");
    ret = state_read_section(r.s, &sec);
    CHECK(ret == -EPROTO && has(state_stream_msg(r.s), "truncated"),
          "section: reading past the last one is truncated");
    state_buf_fini(&pb);
    rd_close(&r);
    free(file);

    /* hostile section headers */
    n = sec_bytes(b, STATE_SEC_DEVICE, 64, 1, 0, 0, NULL);
    memset(b + n, 'n', 64);
    section_refused("a name of 64 bytes", b, n + 64, "name of 64", 12);
    n = sec_bytes(b, STATE_SEC_DEVICE, 255, 1, 0, 0, NULL);
    memset(b + n, 'n', 255 > sizeof(b) - n ? sizeof(b) - n : 255);
    section_refused("a name of 255 bytes", b, sizeof(b), "name of 255", 12);
    n = sec_bytes(b, STATE_SEC_DEVICE, 3, 1, 0, 0, "a b");
    section_refused("a name with a space", b, n, "bad section name", 0);
    n = sec_bytes(b, STATE_SEC_DEVICE, 3, 1, 0, 0, "a\001b");
    section_refused("a name with a control byte", b, n, "bad section name", 0);
    n = sec_bytes(b, STATE_SEC_DEVICE, 3, 1, 0, 0, "ab\177");
    section_refused("a name with DEL", b, n, "bad section name", 0);
    n = sec_bytes(b, STATE_SEC_DEVICE, 3, 1, 0, 0, "a\0b");
    section_refused("a name with a NUL", b, n, "bad section name", 0);
    n = sec_bytes(b, STATE_SEC_DEVICE, 3, 1, 0, 0, "\xc3\xa9z");
    section_refused("a name with a high byte", b, n, "bad section name", 0);
    n = sec_bytes(b, 0, 0, 1, 0, 0, NULL);
    section_refused("type 0", b, n, "unknown section type 0", 12);
    n = sec_bytes(b, 6, 0, 1, 0, 0, NULL);
    section_refused("type 6", b, n, "unknown section type 6", 12);
    n = sec_bytes(b, 0x80, 0, 1, 0, 0, NULL);
    section_refused("type 0x80", b, n, "unknown section type 128", 12);
    n = sec_bytes(b, 0xff, 0, 1, 0, 0, NULL);
    section_refused("type 0xff", b, n, "unknown section type", 12);
    n = sec_bytes(b, STATE_SEC_RAM, 0, 1, 0, STATE_BUF_MAX + 1, NULL);
    section_refused("length STATE_BUF_MAX+1 (header only read)", b, n, "limit", 12);
    n = sec_bytes(b, STATE_SEC_RAM, 0, 1, 0, 0xffffffffu, NULL);
    section_refused("length 0xffffffff", b, n, "limit", 12);
    n = sec_bytes(b, STATE_SEC_EOF, 0, 0, 0, 0, NULL);
    section_refused("EOF of length 0", b, n, "EOF section of 0", 0);
    n = sec_bytes(b, STATE_SEC_EOF, 0, 0, 0, 7, NULL);
    section_refused("EOF of length 7", b, n, "EOF section of 7", 0);
    n = sec_bytes(b, STATE_SEC_EOF, 0, 0, 0, 9, NULL);
    section_refused("EOF of length 9", b, n, "EOF section of 9", 0);
    n = sec_bytes(b, STATE_SEC_DEVICE, 5, 1, 0, 0, NULL);
    memcpy(b + n, "cl", 2);
    section_refused("a truncated name", b, n + 2, "truncated", 0);
    section_refused("a truncated header", b, 7, "truncated", 0);

    /* STATE_BUF_MAX exactly is a legal header; a missing payload is truncated */
    n = sec_bytes(b, STATE_SEC_RAM, 0, 1, 0, STATE_BUF_MAX, NULL);
    r = rd_open(b, n + 10);
    ret = state_read_section(r.s, &sec);
    CHECK(ret == 0 && sec.len == STATE_BUF_MAX, "section: length STATE_BUF_MAX accepted");
    state_buf_init(&pb);
    ret = state_read_payload(r.s, &sec, &pb);
    CHECK(ret == -EPROTO && has(state_stream_msg(r.s), "truncated") && pb.len == 0,
          "section: its missing payload is truncated, buffer empty");
    state_buf_fini(&pb);
    rd_close(&r);

    /* a payload into a buffer that was a reader over foreign memory */
    n = sec_bytes(b, STATE_SEC_DEVICE, 1, 1, 0, 4, "x");
    memcpy(b + n, "data", 4);
    r = rd_open(b, n + 4);
    {
        static const char foreign[] = "foreign";

        state_buf_reader(&pb, foreign, 7);
        ret = state_read_section(r.s, &sec);
        ret |= state_read_payload(r.s, &sec, &pb);
        CHECK(ret == 0 && pb.len == 4 && !memcmp(pb.data, "data", 4) && !strcmp(foreign, "foreign"),
              "section: payload into an ex-reader allocates its own memory");
        state_buf_fini(&pb);
    }
    rd_close(&r);
}

/* ---- mig_format: EOF checksum ------------------------------------------------ */

struct range {
    size_t from, to;
};

/* A small but complete stream; payload byte ranges go to pay[] (*npay). */
static uint8_t *build_stream(size_t *len, struct range *pay, unsigned *npay)
{
    struct state_header h = {.version = STATE_FORMAT_VERSION,
                             .page_size = STATE_PAGE_SIZE,
                             .config_hash = 0xfeedfacecafebeefull};
    static const char cfg[] = "machine virt\nharts 2\n";
    uint8_t dev[100], ram[3 * STATE_PAGE_SIZE] = {0};
    uint32_t pages[2] = {0, 2};
    struct state_ram_encoder e;
    struct state_stream *w;
    struct state_buf rb;
    int fd = mem_fd(), ret;
    uint8_t *file;

    for (unsigned i = 0; i < sizeof(dev); i++)
        dev[i] = (uint8_t)(i * 3);
    for (unsigned i = 0; i < sizeof(ram); i++)
        ram[i] = (uint8_t)(i / 1000); /* compresses well: a short stream */
    *npay = 0;
    w = state_stream_new(fd, false);
    ret = state_write_header(w, &h);
    ret |= state_write_section(w, STATE_SEC_CONFIG, "", 0, 1, cfg, sizeof(cfg) - 1);
    pay[(*npay)++] =
        (struct range){state_stream_offset(w) - (sizeof(cfg) - 1), state_stream_offset(w)};
    ret |= state_write_section(w, STATE_SEC_DEVICE, "clint", 1, 2, dev, sizeof(dev));
    pay[(*npay)++] = (struct range){state_stream_offset(w) - sizeof(dev), state_stream_offset(w)};
    if (state_ram_encoder_init(&e) < 0)
        exit(2);
    state_buf_init(&rb);
    state_ram_encode(&e, ram, pages, 2, true, &rb);
    ret |= state_write_section(w, STATE_SEC_RAM, "", 0, 1, rb.data, rb.len);
    pay[(*npay)++] = (struct range){state_stream_offset(w) - rb.len, state_stream_offset(w)};
    state_buf_fini(&rb);
    state_ram_encoder_fini(&e);
    ret |= state_write_section(w, STATE_SEC_ROUND, NULL, 0, 0, NULL, 0);
    ret |= state_write_eof(w);
    state_stream_free(w);
    if (ret)
        exit(2);
    file = fd_contents(fd, len);
    close(fd);
    return file;
}

/* Read a whole stream the way a loader does; 0 or the first error. */
static int parse_all(const uint8_t *p, size_t len, char *msg, size_t msglen)
{
    struct state_header h;
    struct state_section sec;
    struct state_buf b;
    struct rd r = rd_open(p, len);
    int ret;

    state_buf_init(&b);
    ret = state_read_header(r.s, &h);
    while (ret == 0) {
        ret = state_read_section(r.s, &sec);
        if (ret)
            break;
        if (sec.type == STATE_SEC_EOF) {
            ret = state_read_eof(r.s, &sec);
            if (ret == 0 && !state_stream_at_eof(r.s)) {
                state_stream_fail(r.s, -EPROTO, "data after the end");
                ret = -EPROTO;
            }
            break;
        }
        /* payloads are not decoded: what the framing cannot see, the
         * checksum must */
        ret = state_read_payload(r.s, &sec, &b);
    }
    snprintf(msg, msglen, "%s", state_stream_msg(r.s));
    state_buf_fini(&b);
    rd_close(&r);
    return ret;
}

static void test_eof(void)
{
    struct range pay[8];
    unsigned npay, bad_ok = 0, bad_code = 0, nflips = 0, npayflips = 0, first_ok = 0,
                   first_code = 0;
    size_t len;
    uint8_t *s = build_stream(&len, pay, &npay), *copy = xmalloc(len + 1);
    char msg[256];
    int ret;

    ret = parse_all(s, len, msg, sizeof(msg));
    CHECK(ret == 0, "eof: a correct stream of %zu bytes passes \"%s\"", len, msg);
    CHECK(s[len - 20] == STATE_SEC_EOF && s[len - 12] == 8, "eof: the stream ends with EOF(8)");

    /* every single flipped bit before the checksum is caught */
    for (size_t i = 0; i < len - 8; i++) {
        for (unsigned bit = 0; bit < 8; bit += 7) {
            bool in_payload = false;

            memcpy(copy, s, len);
            copy[i] ^= (uint8_t)(1u << bit);
            ret = parse_all(copy, len, msg, sizeof(msg));
            nflips++;
            if (ret == 0) {
                if (!bad_ok++)
                    first_ok = (unsigned)i;
                continue;
            }
            for (unsigned k = 0; k < npay; k++)
                if (i >= pay[k].from && i < pay[k].to)
                    in_payload = true;
            /* payload bytes, the header's hash and UUID parse fine: only
             * the checksum can see them */
            in_payload |= i >= 24 && i < 48;
            npayflips += in_payload;
            if (in_payload && (ret != -EBADMSG || !has(msg, "checksum mismatch"))) {
                if (!bad_code++)
                    first_code = (unsigned)i;
            }
        }
    }
    CHECK(bad_ok == 0, "eof: all %u flips (one bit, every byte) refused (first miss at %u)", nflips,
          first_ok);
    CHECK(bad_code == 0 && npayflips > 200,
          "eof: all %u payload/hash flips are -EBADMSG checksum mismatch (first miss at %u)",
          npayflips, first_code);

    memcpy(copy, s, len);
    copy[len - 1] ^= 0x80;
    ret = parse_all(copy, len, msg, sizeof(msg));
    CHECK(ret == -EBADMSG && has(msg, "checksum"), "eof: a flipped checksum byte \"%s\"", msg);
    memcpy(copy, s, len);
    copy[len - 8] ^= 0x01;
    ret = parse_all(copy, len, msg, sizeof(msg));
    CHECK(ret == -EBADMSG, "eof: the checksum's first byte flipped");
    ret = parse_all(s, len - 3, msg, sizeof(msg));
    CHECK(ret == -EPROTO && has(msg, "truncated"), "eof: a cut checksum is truncated");
    ret = parse_all(s, len - 20, msg, sizeof(msg));
    CHECK(ret == -EPROTO && has(msg, "truncated"), "eof: a stream without EOF is truncated");
    memcpy(copy, s, len);
    copy[len] = 0;
    ret = parse_all(copy, len + 1, msg, sizeof(msg));
    CHECK(ret == -EPROTO && has(msg, "after the end"), "eof: a byte after EOF is caught by at_eof");
    {
        /* state_read_eof alone accepts a matching checksum with bytes after */
        struct rd r = rd_open(copy, len + 1);
        struct state_header h;
        struct state_section sec;
        struct state_buf b;

        state_buf_init(&b);
        ret = state_read_header(r.s, &h);
        while (ret == 0 && (ret = state_read_section(r.s, &sec)) == 0 && sec.type != STATE_SEC_EOF)
            ret = state_read_payload(r.s, &sec, &b);
        ret = ret ? ret : state_read_eof(r.s, &sec);
        CHECK(ret == 0 && !state_stream_at_eof(r.s),
              "eof: read_eof checks the sum; the caller checks at_eof");
        state_buf_fini(&b);
        rd_close(&r);
    }
    free(copy);
    free(s);
}

static void test_round(void)
{
    static const uint8_t want[16] = {
        STATE_SEC_ROUND, 0, 1, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0x07, 0x01, 0x00, 0x80};
    static const uint8_t v1[12] = {3}; /* format 1: u32 round, u64 "pages left" */
    struct state_stream *w;
    struct state_buf b;
    size_t len;
    uint8_t *file;
    uint32_t round = 99;
    int fd = mem_fd(), ret;

    w = state_stream_new(fd, false);
    ret = state_write_round(w, 0x80000107u);
    ret |= state_stream_flush(w);
    state_stream_free(w);
    file = fd_contents(fd, &len);
    CHECK(ret == 0 && len == sizeof(want) && memcmp(file, want, len) == 0,
          "round: ROUND section, version 1, 4-byte payload: the round number");
    state_buf_reader(&b, file + 12, 4);
    ret = state_round_decode(&b, &round);
    CHECK(ret == 0 && round == 0x80000107u, "round: decodes");
    free(file);
    close(fd);

    state_buf_reader(&b, v1, sizeof(v1));
    ret = state_round_decode(&b, &round);
    CHECK(ret == -EPROTO && has(state_buf_msg(&b), "8 unexpected bytes"),
          "round: format 1's 12-byte marker refused \"%s\"", state_buf_msg(&b));
    state_buf_reader(&b, v1, 3);
    ret = state_round_decode(&b, &round);
    CHECK(ret == -EPROTO && has(state_buf_msg(&b), "truncated"), "round: 3 bytes refused \"%s\"",
          state_buf_msg(&b));
    state_buf_reader(&b, v1 + 4, 4);
    ret = state_round_decode(&b, &round);
    CHECK(ret == -EPROTO && has(state_buf_msg(&b), "ROUND marker 0"),
          "round: round 0 refused \"%s\"", state_buf_msg(&b));
}

int main(void)
{
    test_buf_widths();
    test_buf_sticky();
    test_buf_str();
    test_buf_cap();
    test_stream_roundtrip();
    test_stream_truncated();
    test_stream_limit();
    test_stream_pipes();
    test_header();
    test_uuid();
    test_sections();
    test_eof();
    test_round();
    return board_check_done();
}
