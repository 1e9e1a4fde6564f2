/*
 * Unit tests for the state reader (src/state/state_reader.h) and the
 * configuration text parser (state_config.h): every item type from real
 * streams (a file and a live stream, RAM applied or validated only, zero
 * runs cleared or called back, rounds, components, EOF), and each refusal
 * with its one-line reason: bad magic, format 1, every truncation,
 * oversize lengths, a wrong checksum, data after EOF (a file at once; a
 * live stream through expect_end, buffered, already there or arriving
 * within the timeout), and the order rules (CONFIG first and once, ROUND
 * and ZERO only live, rounds increasing).
 */
#include <signal.h>
#include <sys/wait.h>
#include <xxhash.h>

#include "mem/gmem.h"
#include "state/state_config.h"
#include "state/state_reader.h"
#include "state_stream_test.h"

#define NPAGES 16u
#define UUID   "6ba7b810-9dad-11d1-80b4-00c04fd430c8"

static const char test_cfg[] = "machine=virt\nram=65536\nharts=1\n";

/* ---- building streams ---------------------------------------------------------- */

/* A stream being written to a memfd. */
struct sb {
    int fd;
    struct state_stream *w;
    struct state_ram_encoder enc;
    struct state_buf b;
};

/* A writer with the header (identity set) and the CONFIG section for cfg. */
static struct sb sb_new(uint32_t flags, const char *cfg)
{
    struct sb s = {.fd = mem_fd()};
    struct state_header h = {.version = STATE_FORMAT_VERSION,
                             .page_size = STATE_PAGE_SIZE,
                             .flags = flags,
                             .config_hash = XXH3_64bits(cfg, strlen(cfg))};

    snprintf(h.name, sizeof(h.name), "vm-%u", flags);
    if (state_uuid_parse(UUID, h.uuid) < 0)
        exit(2);
    s.w = state_stream_new(s.fd, false);
    if (!s.w || state_ram_encoder_init(&s.enc) < 0)
        exit(2);
    state_buf_init(&s.b);
    state_write_header(s.w, &h);
    state_write_section(s.w, STATE_SEC_CONFIG, "config", 0, 1, cfg, strlen(cfg));
    return s;
}

static void sb_ram(struct sb *s, const uint8_t *ram, const uint32_t *pages, unsigned n, bool lz4)
{
    state_buf_reset(&s->b);
    state_ram_encode(&s->enc, ram, pages, n, lz4, &s->b);
    state_write_section(s->w, STATE_SEC_RAM, NULL, 0, 1, s->b.data, s->b.len);
}

static void sb_dev(struct sb *s, const char *name, uint32_t inst, uint16_t ver, const char *data)
{
    state_write_section(s->w, STATE_SEC_DEVICE, name, inst, ver, data, strlen(data));
}

/* Flush and return the bytes (malloc'd); without EOF unless eof. */
static uint8_t *sb_done(struct sb *s, bool eof, size_t *len)
{
    uint8_t *p;

    if (eof)
        state_write_eof(s->w);
    if (state_stream_flush(s->w) < 0)
        exit(2);
    state_stream_free(s->w);
    state_ram_encoder_fini(&s->enc);
    state_buf_fini(&s->b);
    p = fd_contents(s->fd, len);
    close(s->fd);
    return p;
}

/* RAM with a recognisable non-zero pattern in every page. */
static void fill_pages(uint8_t *ram)
{
    for (unsigned p = 0; p < NPAGES; p++)
        for (unsigned i = 0; i < STATE_PAGE_SIZE; i++)
            ram[(size_t)p * STATE_PAGE_SIZE + i] = (uint8_t)(p * 31 + i / 64 + 1);
}

/* ---- reading: a whole stream, the first refusal -------------------------------- */

/* Read p to the end (RAM validated only, expect_end after EOF); 0 or the
 * first error, its reason in msg. */
static int read_all(const void *p, size_t len, uint64_t npages, char *msg, size_t msglen)
{
    struct rd f = rd_open(p, len);
    struct state_reader *r = state_reader_new(f.s);
    struct state_item it;
    int ret;

    ret = state_reader_start(r);
    state_reader_set_ram(r, NULL, npages);
    while (ret == 0 && (ret = state_reader_next(r, &it)) == 0 && it.sec.type != STATE_SEC_EOF)
        ;
    if (ret == 0)
        ret = state_reader_expect_end(r, 0);
    snprintf(msg, msglen, "%s", state_reader_msg(r));
    if (ret < 0 && (!msg[0] || state_reader_error(r) != ret))
        snprintf(msg, msglen, "(no reason or a different error)");
    state_reader_free(r);
    rd_close(&f);
    return ret;
}

static void refused(const char *what, const void *p, size_t len, int err, const char *word)
{
    char msg[512];
    int ret = read_all(p, len, NPAGES, msg, sizeof(msg));

    CHECK(ret == err && has(msg, word), "refused: %s (%d) \"%s\"", what, ret, msg);
}

/* ---- the items ----------------------------------------------------------------- */

static void test_file_stream(uint8_t *src, uint8_t *dst)
{
    static const uint32_t pages[] = {1, 2, 5, NPAGES - 1};
    struct sb s = sb_new(0, test_cfg);
    struct state_reader *r;
    const struct state_header *h;
    struct state_item it;
    char uuid[STATE_UUID_TEXT_LEN + 1], msg[256];
    uint8_t *file;
    size_t len;
    struct rd f;
    int ret;

    fill_pages(src);
    sb_ram(&s, src, pages, 2, true);
    sb_ram(&s, src, pages + 2, 2, false);
    sb_dev(&s, "clint", 0, 2, "clint-state");
    sb_dev(&s, "hart", 3, 1, "");
    file = sb_done(&s, true, &len);

    f = rd_open(file, len);
    r = state_reader_new(f.s);
    CHECK(r && state_reader_header(r) == NULL && state_reader_config(r) == NULL,
          "file: nothing before start");
    ret = state_reader_start(r);
    h = state_reader_header(r);
    CHECK(ret == 0 && h && h->version == STATE_FORMAT_VERSION && h->flags == 0 &&
              !state_reader_live(r),
          "file: start reads the header (format 2, not live)");
    if (h)
        state_uuid_format(h->uuid, uuid);
    CHECK(h && !strcmp(h->name, "vm-0") && !strcmp(uuid, UUID), "file: identity %s %s",
          h ? h->name : "?", uuid);
    CHECK(state_reader_config(r) && !strcmp(state_reader_config(r), test_cfg),
          "file: the configuration text");
    memset(dst, 0xee, (size_t)NPAGES * STATE_PAGE_SIZE);
    state_reader_set_ram(r, dst, NPAGES);

    ret = state_reader_next(r, &it);
    CHECK(ret == 0 && it.sec.type == STATE_SEC_RAM && it.pages == 2 &&
              it.encoding == STATE_RAM_LZ4 && it.payload == NULL && it.offset > STATE_HEADER_LEN,
          "file: RAM batch of 2 pages, LZ4");
    ret = state_reader_next(r, &it);
    CHECK(ret == 0 && it.sec.type == STATE_SEC_RAM && it.pages == 2 && it.encoding == STATE_RAM_RAW,
          "file: RAM batch of 2 pages, raw");
    CHECK(!memcmp(dst + STATE_PAGE_SIZE, src + STATE_PAGE_SIZE, 2 * STATE_PAGE_SIZE) &&
              !memcmp(dst + 5 * STATE_PAGE_SIZE, src + 5 * STATE_PAGE_SIZE, STATE_PAGE_SIZE) &&
              !memcmp(dst + (NPAGES - 1) * STATE_PAGE_SIZE, src + (NPAGES - 1) * STATE_PAGE_SIZE,
                      STATE_PAGE_SIZE) &&
              dst[0] == 0xee && dst[3 * STATE_PAGE_SIZE] == 0xee,
          "file: the pages went into RAM, the others untouched");
    ret = state_reader_next(r, &it);
    CHECK(ret == 0 && it.sec.type == STATE_SEC_DEVICE && !strcmp(it.sec.name, "clint") &&
              it.sec.instance == 0 && it.sec.version == 2 && it.payload &&
              state_buf_left(it.payload) == 11 && !memcmp(it.payload->data, "clint-state", 11),
          "file: component clint 0 version 2 with its payload");
    ret = state_reader_next(r, &it);
    CHECK(ret == 0 && it.sec.type == STATE_SEC_DEVICE && !strcmp(it.sec.name, "hart") &&
              it.sec.instance == 3 && it.payload && state_buf_left(it.payload) == 0,
          "file: component hart 3, empty payload");
    CHECK(!state_reader_checksum_ok(r), "file: checksum not yet verified");
    ret = state_reader_next(r, &it);
    CHECK(ret == 0 && it.sec.type == STATE_SEC_EOF && state_reader_checksum_ok(r) &&
              it.offset == len - 20,
          "file: EOF, checksum verified");
    ret = state_reader_expect_end(r, 0);
    CHECK(ret == 0, "file: expect_end after EOF");
    ret = state_reader_next(r, &it);
    CHECK(ret == -EPROTO && has(state_reader_msg(r), "past the end"),
          "file: next after EOF refused \"%s\"", state_reader_msg(r));
    CHECK(state_reader_next(r, &it) == -EPROTO && state_reader_expect_end(r, 0) == -EPROTO,
          "file: the error is sticky");
    state_reader_free(r);
    rd_close(&f);

    ret = read_all(file, len, NPAGES, msg, sizeof(msg));
    CHECK(ret == 0, "file: validate only (RAM NULL) \"%s\"", msg);
    ret = read_all(file, len, NPAGES - 1, msg, sizeof(msg));
    CHECK(ret == -EPROTO && has(msg, "RAM at byte") && has(msg, "outside RAM"),
          "file: a batch past a smaller RAM \"%s\"", msg);
    ret = read_all(file, len, 0, msg, sizeof(msg));
    CHECK(ret == -EPROTO && has(msg, "outside RAM"), "file: RAM without set_ram \"%s\"", msg);

    /* every proper prefix is refused as truncated */
    {
        unsigned bad = 0, first = 0;

        for (size_t n = 0; n < len; n++) {
            ret = read_all(file, n, NPAGES, msg, sizeof(msg));
            if (ret != -EPROTO || !has(msg, "truncated")) {
                if (!bad++)
                    first = (unsigned)n;
            }
        }
        CHECK(bad == 0, "file: all %zu prefixes refused as truncated (first miss: %u bytes)", len,
              first);
    }

    /* every flipped bit is refused with a reason (most by the checksum) */
    {
        uint8_t *copy = xmalloc(len);
        unsigned bad = 0, first = 0, nflips = 0;

        for (size_t i = 0; i < len; i++) {
            for (unsigned bit = 0; bit < 8; bit += 7) {
                memcpy(copy, file, len);
                copy[i] ^= (uint8_t)(1u << bit);
                ret = read_all(copy, len, NPAGES, msg, sizeof(msg));
                nflips++;
                if (ret == 0 || has(msg, "no reason")) {
                    if (!bad++)
                        first = (unsigned)i;
                }
            }
        }
        CHECK(bad == 0, "file: all %u single-bit flips refused with a reason (first miss at %u)",
              nflips, first);
        free(copy);
    }

    /* a byte after EOF */
    {
        uint8_t *more = xmalloc(len + 1);

        memcpy(more, file, len);
        more[len] = 0;
        refused("a byte after EOF (file)", more, len + 1, -EPROTO, "data after the end");
        f = rd_open(more, len + 1);
        r = state_reader_new(f.s);
        ret = state_reader_start(r);
        state_reader_set_ram(r, NULL, NPAGES);
        while (ret == 0 && (ret = state_reader_next(r, &it)) == 0)
            ;
        CHECK(ret == -EPROTO && state_reader_checksum_ok(r),
              "file: data after EOF is refused after the checksum matched");
        state_reader_free(r);
        rd_close(&f);
        free(more);
    }
    free(file);
}

struct zero_seen {
    unsigned calls;
    uint64_t pages;
};

static void zero_count(void *opaque, uint64_t first, uint64_t count)
{
    struct zero_seen *z = opaque;

    (void)first;
    z->calls++;
    z->pages += count;
}

/* A live stream: rounds of RAM, zero runs, components, EOF. */
static uint8_t *live_stream(const uint8_t *src, size_t *len)
{
    static const uint32_t all[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    struct sb s = sb_new(STATE_F_LIVE, test_cfg);
    struct state_zero_encoder z;

    sb_ram(&s, src, all, NPAGES, true);
    state_write_round(s.w, 2);
    state_zero_encoder_init(&z);
    state_zero_add(&z, s.w, 3);
    state_zero_add(&z, s.w, 4);
    state_zero_add(&z, s.w, 9);
    state_zero_flush(&z, s.w);
    state_zero_encoder_fini(&z);
    sb_ram(&s, src, all + 7, 1, false);
    state_write_round(s.w, 3);
    sb_dev(&s, "virt", 0, 1, "v");
    return sb_done(&s, true, len);
}

static void test_live_stream(uint8_t *src, uint8_t *dst)
{
    struct state_reader *r;
    struct state_item it;
    struct zero_seen zs = {0};
    uint8_t *file;
    size_t len;
    struct rd f;
    int ret, types[16] = {0}, n = 0;
    uint32_t rounds[2] = {0};
    unsigned nr = 0;
    char msg[256];

    fill_pages(src);
    file = live_stream(src, &len);
    f = rd_open(file, len);
    r = state_reader_new(f.s);
    ret = state_reader_start(r);
    CHECK(ret == 0 && state_reader_live(r) && !strcmp(state_reader_header(r)->name, "vm-1"),
          "live: header flag and identity");
    memset(dst, 0, (size_t)NPAGES * STATE_PAGE_SIZE);
    state_reader_set_ram(r, dst, NPAGES);
    do {
        ret = state_reader_next(r, &it);
        if (ret == 0 && n < 16)
            types[n++] = it.sec.type;
        if (ret == 0 && it.sec.type == STATE_SEC_ROUND && nr < 2)
            rounds[nr++] = it.round;
        if (ret == 0 && it.sec.type == STATE_SEC_ZERO)
            CHECK(it.pages == 3, "live: zero item of 3 pages");
    } while (ret == 0 && it.sec.type != STATE_SEC_EOF);
    CHECK(ret == 0 && n == 7 && types[0] == STATE_SEC_RAM && types[1] == STATE_SEC_ROUND &&
              types[2] == STATE_SEC_ZERO && types[3] == STATE_SEC_RAM &&
              types[4] == STATE_SEC_ROUND && types[5] == STATE_SEC_DEVICE &&
              types[6] == STATE_SEC_EOF,
          "live: RAM, ROUND, ZERO, RAM, ROUND, component, EOF \"%s\"", state_reader_msg(r));
    CHECK(rounds[0] == 2 && rounds[1] == 3, "live: round numbers 2, 3");
    {
        bool ok = true;

        for (unsigned p = 0; p < NPAGES; p++) {
            bool zero = p == 3 || p == 4 || p == 9;
            const uint8_t *d = dst + (size_t)p * STATE_PAGE_SIZE;

            ok &= zero ? gmem_page_is_zero(d)
                       : !memcmp(d, src + (size_t)p * STATE_PAGE_SIZE, STATE_PAGE_SIZE);
        }
        CHECK(ok, "live: RAM as sent, pages 3, 4, 9 cleared by the zero runs");
    }
    ret = state_reader_expect_end(r, 0);
    CHECK(ret == 0, "live: nothing after EOF \"%s\"", state_reader_msg(r));
    state_reader_free(r);
    rd_close(&f);

    /* a zero callback instead of clearing RAM */
    f = rd_open(file, len);
    r = state_reader_new(f.s);
    ret = state_reader_start(r);
    memset(dst, 0x55, (size_t)NPAGES * STATE_PAGE_SIZE);
    state_reader_set_ram(r, dst, NPAGES);
    state_reader_on_zero(r, zero_count, &zs);
    while (ret == 0 && (ret = state_reader_next(r, &it)) == 0 && it.sec.type != STATE_SEC_EOF)
        ;
    CHECK(ret == 0 && zs.calls == 2 && zs.pages == 3 && dst[3 * STATE_PAGE_SIZE] == src[3 * 4096],
          "live: zero runs go to the callback (2 runs, 3 pages), RAM not cleared by the reader");
    state_reader_free(r);
    rd_close(&f);

    ret = read_all(file, len, NPAGES, msg, sizeof(msg));
    CHECK(ret == 0, "live: validate only \"%s\"", msg);
    {
        uint8_t *more = xmalloc(len + 3);

        memcpy(more, file, len);
        memcpy(more + len, "abc", 3);
        refused("live, bytes after EOF in a file", more, len + 3, -EPROTO, "data after the end");
        free(more);
    }
    free(file);
}

/* A live stream through a pipe: bytes after EOF already there, arriving
 * within the timeout, or none with the writer closed or still open. */
static void test_live_pipe(uint8_t *src)
{
    size_t len;
    uint8_t *file;
    int p[2], ret, status;
    pid_t pid;

    fill_pages(src);
    file = live_stream(src, &len);
    for (int mode = 0; mode < 4; mode++) {
        static const char *const what[] = {"nothing more, writer open", "writer closed",
                                           "a byte already there", "a byte 100 ms later"};
        struct state_stream *s;
        struct state_reader *r;
        struct state_item it;

        if (pipe(p) < 0)
            exit(2);
        pid = fork();
        if (pid < 0)
            exit(2);
        if (pid == 0) {
            close(p[0]);
            if (write(p[1], file, len) != (ssize_t)len)
                _exit(1);
            if (mode == 2 && write(p[1], "x", 1) != 1)
                _exit(1);
            if (mode == 3) {
                usleep(100000);
                if (write(p[1], "x", 1) != 1)
                    _exit(1);
            }
            if (mode != 1)
                usleep(mode == 0 ? 200000 : 300000); /* keep the pipe open */
            _exit(0);
        }
        close(p[1]);
        s = state_stream_new(p[0], true);
        r = state_reader_new(s);
        ret = state_reader_start(r);
        state_reader_set_ram(r, NULL, NPAGES);
        while (ret == 0 && (ret = state_reader_next(r, &it)) == 0 && it.sec.type != STATE_SEC_EOF)
            ;
        CHECK(ret == 0, "live pipe (%s): read to EOF", what[mode]);
        if (mode == 2)
            usleep(50000); /* the byte is in the pipe */
        ret = state_reader_expect_end(r, mode == 3 ? 5000 : 0);
        if (mode < 2)
            CHECK(ret == 0, "live pipe (%s): expect_end accepts \"%s\"", what[mode],
                  state_reader_msg(r));
        else
            CHECK(ret == -EPROTO && has(state_reader_msg(r), "data after the end"),
                  "live pipe (%s): refused \"%s\"", what[mode], state_reader_msg(r));
        state_reader_free(r);
        state_stream_free(s);
        close(p[0]);
        waitpid(pid, &status, 0);
    }
    free(file);
}

/* ---- refusals ------------------------------------------------------------------ */

/* Write a crafted section (any type, version, name, payload). */
static void sb_raw(struct sb *s, uint8_t type, const char *name, uint16_t ver, const void *p,
                   size_t n)
{
    state_write_section(s->w, type, name, 0, ver, p, n);
}

static void test_refusals(const uint8_t *src)
{
    static const uint32_t one[] = {1};
    struct sb s;
    uint8_t *file, *copy;
    size_t len;
    char msg[256];
    int ret;

    /* a good stream to corrupt */
    s = sb_new(0, test_cfg);
    sb_ram(&s, src, one, 1, false);
    sb_dev(&s, "uart", 0, 1, "u");
    file = sb_done(&s, true, &len);
    copy = xmalloc(len);

    memcpy(copy, file, len);
    copy[1] = 'X';
    refused("bad magic", copy, len, -EPROTO, "magic");
    {
        /* a format 1 file: the 32-byte header of old */
        uint8_t v1[64] = {0};

        memcpy(v1, STATE_MAGIC, 8);
        v1[8] = 1;
        v1[12] = 0x0d, v1[13] = 0x0c, v1[14] = 0x0b, v1[15] = 0x0a;
        v1[17] = 0x10;
        refused("format 1", v1, sizeof(v1), -EPROTO, "older godwit (format 1)");
    }
    memcpy(copy, file, len);
    copy[len - 1] ^= 1;
    refused("a wrong EOF checksum", copy, len, -EBADMSG, "checksum mismatch");
    memcpy(copy, file, len);
    copy[STATE_HEADER_LEN + 12 + 8] ^= 0x20; /* in the config text: "machine" */
    refused("a changed configuration text", copy, len, -EPROTO, "header's hash");
    memcpy(copy, file, len);
    copy[24] ^= 1; /* the header's hash */
    refused("a changed configuration hash", copy, len, -EPROTO, "header's hash");
    {
        /* the text stays readable when only its hash is wrong */
        struct rd f = rd_open(copy, len);
        struct state_reader *r = state_reader_new(f.s);

        ret = state_reader_start(r);
        CHECK(ret == -EPROTO && state_reader_config(r) &&
                  !strcmp(state_reader_config(r), test_cfg) && state_reader_header(r),
              "refused: the header and text stay available after a hash mismatch");
        state_reader_free(r);
        rd_close(&f);
    }
    memcpy(copy, file, len);
    /* the first section's payload length: past STATE_BUF_MAX */
    copy[STATE_HEADER_LEN + 11] = 0x7f;
    refused("a 2 GiB CONFIG section", copy, len, -EPROTO, "limit");
    memcpy(copy, file, len);
    copy[STATE_HEADER_LEN + 1] = STATE_NAME_MAX + 1;
    refused("a 64-byte section name", copy, len, -EPROTO, "name of 64 bytes");
    free(copy);
    free(file);

    /* the RAM section's length past the limit, after the CONFIG */
    s = sb_new(0, test_cfg);
    {
        uint8_t hdr[12] = {STATE_SEC_RAM, 0, 1, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x04};

        state_stream_write(s.w, hdr, sizeof(hdr)); /* 64 MiB + 1 */
    }
    file = sb_done(&s, false, &len);
    refused("a RAM section of 64 MiB + 1", file, len, -EPROTO, "limit");
    free(file);

    /* order and type rules */
    s = sb_new(0, test_cfg);
    sb_dev(&s, "uart", 0, 1, "u");
    file = sb_done(&s, true, &len);
    ret = read_all(file, len, NPAGES, msg, sizeof(msg));
    CHECK(ret == 0, "refused: (a stream of one component is fine) \"%s\"", msg);
    free(file);

    s = sb_new(0, test_cfg);
    sb_raw(&s, STATE_SEC_CONFIG, "config", 1, test_cfg, strlen(test_cfg));
    file = sb_done(&s, true, &len);
    refused("a second CONFIG", file, len, -EPROTO, "second configuration");
    free(file);

    {
        struct state_header h = {.version = STATE_FORMAT_VERSION, .page_size = STATE_PAGE_SIZE};
        int fd = mem_fd();
        struct state_stream *w = state_stream_new(fd, false);

        h.config_hash = XXH3_64bits("a\0b", 3);
        state_write_header(w, &h);
        state_write_section(w, STATE_SEC_DEVICE, "uart", 0, 1, "u", 1);
        state_write_eof(w);
        state_stream_free(w);
        file = fd_contents(fd, &len);
        refused("a component first", file, len, -EPROTO, "does not start with its configuration");
        free(file);
        close(fd);

        fd = mem_fd();
        w = state_stream_new(fd, false);
        h.config_hash = XXH3_64bits("ram=1\x1b[2J\n", 10);
        state_write_header(w, &h);
        state_write_section(w, STATE_SEC_CONFIG, "config", 0, 1, "ram=1\x1b[2J\n", 10);
        state_write_eof(w);
        state_stream_free(w);
        file = fd_contents(fd, &len);
        refused("an escape sequence in the configuration", file, len, -EPROTO,
                "not printable (0x1b at offset 5)");
        free(file);
        close(fd);

        h.config_hash = XXH3_64bits("a\0b", 3);
        fd = mem_fd();
        w = state_stream_new(fd, false);
        state_write_header(w, &h);
        state_write_section(w, STATE_SEC_CONFIG, "config", 0, 1, "a\0b", 3);
        state_write_eof(w);
        state_stream_free(w);
        file = fd_contents(fd, &len);
        refused("a NUL in the configuration", file, len, -EPROTO,
                "not printable (0x00 at offset 1)");
        free(file);
        close(fd);
    }

    s = sb_new(0, test_cfg);
    state_write_round(s.w, 1);
    file = sb_done(&s, true, &len);
    refused("a ROUND in a file", file, len, -EPROTO, "not marked live");
    free(file);

    s = sb_new(0, test_cfg);
    {
        struct state_zero_encoder z;

        state_zero_encoder_init(&z);
        state_zero_add(&z, s.w, 1);
        state_zero_flush(&z, s.w);
        state_zero_encoder_fini(&z);
    }
    file = sb_done(&s, true, &len);
    refused("zero runs in a file", file, len, -EPROTO, "not marked live");
    free(file);

    s = sb_new(STATE_F_LIVE, test_cfg);
    state_write_round(s.w, 2);
    state_write_round(s.w, 2);
    file = sb_done(&s, true, &len);
    refused("a round repeated", file, len, -EPROTO, "rounds must increase");
    free(file);

    s = sb_new(STATE_F_LIVE, test_cfg);
    {
        static const uint8_t v1round[12] = {1};

        sb_raw(&s, STATE_SEC_ROUND, NULL, 1, v1round, sizeof(v1round));
    }
    file = sb_done(&s, true, &len);
    refused("format 1's 12-byte ROUND", file, len, -EPROTO, "ROUND marker: 8 unexpected bytes");
    free(file);

    s = sb_new(STATE_F_LIVE, test_cfg);
    {
        static const uint8_t r0[4] = {0};

        sb_raw(&s, STATE_SEC_ROUND, NULL, 1, r0, sizeof(r0));
    }
    file = sb_done(&s, true, &len);
    refused("ROUND 0", file, len, -EPROTO, "ROUND marker 0");
    free(file);

    s = sb_new(STATE_F_LIVE, test_cfg);
    {
        uint8_t zr[12] = {1, 0, 0, 0, NPAGES - 1, 0, 0, 0, 2, 0, 0, 0};

        sb_raw(&s, STATE_SEC_ZERO, NULL, 1, zr, sizeof(zr));
    }
    file = sb_done(&s, true, &len);
    refused("a zero run past RAM", file, len, -EPROTO, "zero pages at byte");
    free(file);

    s = sb_new(0, test_cfg);
    state_buf_reset(&s.b);
    state_ram_encode(&s.enc, src, one, 1, false, &s.b);
    sb_raw(&s, STATE_SEC_RAM, NULL, 2, s.b.data, s.b.len);
    file = sb_done(&s, true, &len);
    refused("a RAM section version 2", file, len, -EPROTO, "RAM section version 2");
    free(file);

    s = sb_new(0, test_cfg);
    sb_dev(&s, "", 0, 1, "x");
    file = sb_done(&s, true, &len);
    refused("a component without a name", file, len, -EPROTO, "without a name");
    free(file);

    s = sb_new(0, test_cfg);
    sb_raw(&s, STATE_SEC_RAM, NULL, 1, "\x02\0\0\0\1\0\0\0\1\0\0\0", 12);
    file = sb_done(&s, true, &len);
    refused("a RAM batch in an unknown encoding", file, len, -EPROTO, "unknown encoding 2");
    free(file);

    /* calls out of order */
    {
        struct rd f = rd_open(test_cfg, 4);
        struct state_reader *r = state_reader_new(f.s);
        struct state_item it;

        ret = state_reader_next(r, &it);
        CHECK(ret == -EPROTO && has(state_reader_msg(r), "header was not read"),
              "refused: next before start \"%s\"", state_reader_msg(r));
        state_reader_free(r);
        rd_close(&f);
        state_reader_free(NULL);

        s = sb_new(0, test_cfg);
        file = sb_done(&s, true, &len);
        f = rd_open(file, len);
        r = state_reader_new(f.s);
        ret = state_reader_start(r);
        ret |= state_reader_expect_end(r, 0);
        CHECK(ret == -EPROTO && has(state_reader_msg(r), "not ended"),
              "refused: expect_end before EOF \"%s\"", state_reader_msg(r));
        state_reader_free(r);
        rd_close(&f);
        free(file);
    }
}

/* ---- the configuration text ---------------------------------------------------- */

/* ---- recoverable live streams: SESSION, CHECKPOINT, PAUSE ---------------------- */

static void test_recoverable(const uint8_t *src)
{
    static const uint32_t all[] = {0, 1, 2, 3};
    struct state_reader *r;
    struct state_item it;
    struct sb s;
    uint8_t *p, raw[16];
    size_t len;
    struct rd f;
    int ret, n = 0;
    uint64_t seen[4] = {0};

    /* a good one: SESSION, RAM, CHECKPOINT 1, RAM, CHECKPOINT 2, PAUSE */
    s = sb_new(STATE_F_LIVE | STATE_F_RECOVER, test_cfg);
    state_write_session(s.w, 0x1234, 0);
    sb_ram(&s, src, all, 4, false);
    state_write_checkpoint(s.w, 1);
    sb_ram(&s, src, all, 2, true);
    state_write_checkpoint(s.w, 2);
    state_write_pause(s.w);
    p = sb_done(&s, false, &len);
    f = rd_open(p, len);
    r = state_reader_new(f.s);
    ret = state_reader_start(r);
    state_reader_set_ram(r, NULL, NPAGES);
    while (ret == 0 && !state_reader_paused(r) && (ret = state_reader_next(r, &it)) == 0) {
        if (it.sec.type == STATE_SEC_SESSION)
            seen[0] = it.session;
        if (it.sec.type == STATE_SEC_CHECKPOINT)
            seen[1 + (n++ & 1)] = it.checkpoint;
    }
    CHECK(ret == 0 && state_reader_paused(r) && seen[0] == 0x1234 && seen[1] == 1 && seen[2] == 2 &&
              state_reader_checkpoint(r) == 2,
          "recoverable: SESSION, two verified CHECKPOINTs, then PAUSE (%d %s)", ret,
          state_reader_msg(r));
    CHECK(state_reader_next(r, &it) == -EPROTO && has(state_reader_msg(r), "past a PAUSE"),
          "recoverable: nothing is read after PAUSE");
    state_reader_free(r);
    rd_close(&f);
    free(p);

    /* a CHECKPOINT whose checksum does not cover what came before it */
    s = sb_new(STATE_F_LIVE | STATE_F_RECOVER, test_cfg);
    state_write_session(s.w, 7, 0);
    sb_ram(&s, src, all, 4, false);
    gw_put_le(raw, 1, 8);
    gw_put_le(raw + 8, 0xdeadbeef, 8);
    state_write_section(s.w, STATE_SEC_CHECKPOINT, NULL, 0, 1, raw, sizeof(raw));
    p = sb_done(&s, true, &len);
    refused("a CHECKPOINT with a wrong checksum", p, len, -EBADMSG, "corrupted");
    free(p);
    /* a byte of a RAM batch flipped before a good checkpoint */
    s = sb_new(STATE_F_LIVE | STATE_F_RECOVER, test_cfg);
    state_write_session(s.w, 7, 0);
    sb_ram(&s, src, all, 4, false);
    state_write_checkpoint(s.w, 1);
    p = sb_done(&s, true, &len);
    p[len - 8 - 12 - 16 - 12 - 100] ^= 0x10; /* inside the RAM batch's pages */
    refused("a RAM byte flipped before a CHECKPOINT", p, len, -EBADMSG, "CHECKPOINT 1");
    free(p);
    /* checkpoints must increase */
    s = sb_new(STATE_F_LIVE | STATE_F_RECOVER, test_cfg);
    state_write_session(s.w, 7, 0);
    state_write_checkpoint(s.w, 3);
    state_write_checkpoint(s.w, 3);
    p = sb_done(&s, true, &len);
    refused("a CHECKPOINT that does not increase", p, len, -EPROTO, "must increase");
    free(p);
    /* a recoverable stream must name its SESSION first */
    s = sb_new(STATE_F_LIVE | STATE_F_RECOVER, test_cfg);
    sb_ram(&s, src, all, 1, false);
    p = sb_done(&s, true, &len);
    refused("a recoverable stream without its SESSION", p, len, -EPROTO, "SESSION");
    free(p);
    /* ... and only once; not in a stream not marked recoverable */
    s = sb_new(STATE_F_LIVE | STATE_F_RECOVER, test_cfg);
    state_write_session(s.w, 7, 0);
    state_write_session(s.w, 7, 0);
    p = sb_done(&s, true, &len);
    refused("a second SESSION", p, len, -EPROTO, "second SESSION");
    free(p);
    s = sb_new(STATE_F_LIVE, test_cfg);
    state_write_session(s.w, 7, 0);
    p = sb_done(&s, true, &len);
    refused("a SESSION in a plain live stream", p, len, -EPROTO, "not marked recoverable");
    free(p);
    s = sb_new(STATE_F_LIVE, test_cfg);
    state_write_checkpoint(s.w, 1);
    p = sb_done(&s, true, &len);
    refused("a CHECKPOINT in a plain live stream", p, len, -EPROTO, "not marked recoverable");
    free(p);
    s = sb_new(STATE_F_LIVE, test_cfg);
    state_write_pause(s.w);
    p = sb_done(&s, true, &len);
    refused("a PAUSE in a plain live stream", p, len, -EPROTO, "not marked recoverable");
    free(p);
    /* the attempt must match the header: a resumed stream says which */
    s = sb_new(STATE_F_LIVE | STATE_F_RECOVER | STATE_F_RESUME, test_cfg);
    state_write_session(s.w, 7, 0);
    p = sb_done(&s, true, &len);
    refused("a resumed stream with attempt 0", p, len, -EPROTO, "attempt");
    free(p);
    s = sb_new(STATE_F_LIVE | STATE_F_RECOVER, test_cfg);
    state_write_session(s.w, 7, 2);
    p = sb_done(&s, true, &len);
    refused("a first stream that says it resumes", p, len, -EPROTO, "attempt 2");
    free(p);
    s = sb_new(STATE_F_LIVE | STATE_F_RECOVER, test_cfg);
    state_write_session(s.w, 0, 0);
    p = sb_done(&s, true, &len);
    refused("SESSION 0", p, len, -EPROTO, "SESSION 0");
    free(p);
    /* header flags: RECOVER without LIVE, RESUME without RECOVER */
    s = sb_new(STATE_F_RECOVER, test_cfg);
    p = sb_done(&s, true, &len);
    refused("RECOVER without LIVE", p, len, -EPROTO, "must be a live one");
    free(p);
    s = sb_new(STATE_F_LIVE | STATE_F_RESUME, test_cfg);
    p = sb_done(&s, true, &len);
    refused("RESUME without RECOVER", p, len, -EPROTO, "must be a live one");
    free(p);
}

static void test_config(void)
{
    static const char cfg[] = "machine=virt\nram=536870912\nharts=2\nramx=1\nxram=2\n"
                              "empty=\nvirtio5=virtio-rng features=0x1 queues=1:1024\n"
                              "big=18446744073709551615\nhuge=18446744073709551616\n"
                              "bad=12a\nlast=7";
    size_t len;
    const char *v;
    uint64_t x = 42;

    v = state_config_get(cfg, "machine", &len);
    CHECK(v && len == 4 && !memcmp(v, "virt", 4), "config: the first line");
    v = state_config_get(cfg, "virtio5", &len);
    CHECK(v && len == strlen("virtio-rng features=0x1 queues=1:1024") &&
              !memcmp(v, "virtio-rng features=0x1 queues=1:1024", len),
          "config: a value with spaces and '=' (%zu bytes)", len);
    v = state_config_get(cfg, "last", &len);
    CHECK(v && len == 1 && *v == '7', "config: the last line without a newline");
    v = state_config_get(cfg, "empty", &len);
    CHECK(v && len == 0, "config: an empty value");
    CHECK(!state_config_get(cfg, "ra", &len) && !state_config_get(cfg, "virt", &len) &&
              !state_config_get(cfg, "nothing", &len) && !state_config_get("", "ram", &len),
          "config: no line for a prefix, a value, a missing key, empty text");
    CHECK(state_config_get_u64(cfg, "ram", &x) == 0 && x == 536870912,
          "config: ram (not ramx, not xram)");
    CHECK(state_config_get_u64(cfg, "ramx", &x) == 0 && x == 1 &&
              state_config_get_u64(cfg, "xram", &x) == 0 && x == 2,
          "config: ramx and xram are their own keys");
    CHECK(state_config_get_u64(cfg, "big", &x) == 0 && x == UINT64_MAX, "config: UINT64_MAX");
    x = 42;
    CHECK(state_config_get_u64(cfg, "huge", &x) == -EINVAL && x == 42,
          "config: UINT64_MAX + 1 is -EINVAL, out untouched");
    CHECK(state_config_get_u64(cfg, "bad", &x) == -EINVAL &&
              state_config_get_u64(cfg, "empty", &x) == -EINVAL &&
              state_config_get_u64(cfg, "machine", &x) == -EINVAL,
          "config: '12a', '' and 'virt' are not numbers");
    CHECK(state_config_get_u64(cfg, "nothing", &x) == -ENOENT, "config: a missing key -ENOENT");
    CHECK(state_config_get_u64("ram=4096", "ram", &x) == 0 && x == 4096, "config: a one-line text");
}

int main(void)
{
    uint8_t *src = aligned_alloc(STATE_PAGE_SIZE, (size_t)NPAGES * STATE_PAGE_SIZE);
    uint8_t *dst = aligned_alloc(STATE_PAGE_SIZE, (size_t)NPAGES * STATE_PAGE_SIZE);

    if (!src || !dst)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    test_file_stream(src, dst);
    test_live_stream(src, dst);
    test_live_pipe(src);
    test_refusals(src);
    test_recoverable(src);
    test_config();
    free(src);
    free(dst);
    return board_check_done();
}
