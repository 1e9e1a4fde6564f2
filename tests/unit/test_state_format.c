/*
 * Unit tests for the state format's framing (src/state/state_format.c):
 * the header (magic, version, endianness, page size, flags, the VM's
 * identity) and UUIDs, sections, the EOF checksum and ROUND markers, with
 * hostile input: every refusal must say why.  Buffers and streams:
 * test_state_stream.c; RAM batches and zero runs: test_state_ram.c; the
 * section reader: test_state_reader.c.
 */
#include <signal.h>
#include <xxhash.h>

#include "state_stream_test.h"

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
    n = sec_bytes(b, STATE_SEC_DISKSUM + 1, 0, 1, 0, 0, NULL);
    section_refused("type 12", b, n, "unknown section type 12", 12);
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
    signal(SIGPIPE, SIG_IGN);
    test_header();
    test_uuid();
    test_sections();
    test_eof();
    test_round();
    return board_check_done();
}
