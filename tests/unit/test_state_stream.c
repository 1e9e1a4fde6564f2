/*
 * Unit tests for the state stream library (src/state): state_buf field
 * encoding and its sticky error, and state_stream over real files (memfd)
 * and pipes (buffer boundaries, big writes, digest, truncation, the
 * fake-full limit, a vanished peer).  Framing (header, sections, EOF):
 * test_state_format.c; RAM batches and zero runs: test_state_ram.c.
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
    return board_check_done();
}
