/*
 * Unit tests for the ELF loader: a valid image loads exactly, and a set of
 * malformed images (generated here) is refused with a clear reason while
 * RAM stays untouched; then a fuzz-style loop of random mutations of a
 * valid image, meant to run under ASan/UBSan (make SAN=address,undefined).
 */
#include <stdlib.h>
#include <string.h>

#include "board_check.h"
#include "machine/elf.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1ull << 20)

struct seg {
    uint32_t type;
    uint64_t offset, paddr, filesz, memsz;
};

static void put(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Build an ELF64 LE RISC-V ET_EXEC image: header, program headers at 64,
 * then payload bytes (value = offset & 0xff ^ 0x5a) up to total length len. */
static size_t build(uint8_t *buf, size_t len, uint64_t entry, const struct seg *segs, unsigned n)
{
    memset(buf, 0, len);
    for (size_t i = 64 + 56 * n; i < len; i++)
        buf[i] = (uint8_t)((i & 0xff) ^ 0x5a);
    memcpy(buf, "\177ELF", 4);
    buf[4] = 2;            /* ELFCLASS64 */
    buf[5] = 1;            /* little-endian */
    buf[6] = 1;            /* EV_CURRENT */
    put(buf + 16, 2, 2);   /* ET_EXEC */
    put(buf + 18, 243, 2); /* EM_RISCV */
    put(buf + 20, 1, 4);
    put(buf + 24, entry, 8);
    put(buf + 32, 64, 8); /* e_phoff */
    put(buf + 52, 64, 2); /* e_ehsize */
    put(buf + 54, 56, 2);
    put(buf + 56, n, 2);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *ph = buf + 64 + 56 * i;
        put(ph, segs[i].type, 4);
        put(ph + 4, 7, 4);
        put(ph + 8, segs[i].offset, 8);
        put(ph + 16, segs[i].paddr, 8);
        put(ph + 24, segs[i].paddr, 8);
        put(ph + 32, segs[i].filesz, 8);
        put(ph + 40, segs[i].memsz, 8);
        put(ph + 48, 0x1000, 8);
    }
    return len;
}

static uint8_t img[4096];
static size_t img_len;

/* The reference image: text at RAM base, data+bss at +0x1000, a note. */
static void build_valid(void)
{
    struct seg s[3] = {
        {1, 0x100, RAM_BASE, 0x40, 0x40},
        {4, 0x200, 0, 0x10, 0}, /* PT_NOTE: ignored */
        {1, 0x180, RAM_BASE + 0x1000, 0x20, 0x2000},
    };
    img_len = build(img, 0x1a0, RAM_BASE, s, 3); /* ends with the data */
}

static struct gmem *mem;
static uint8_t *snapshot;

static void ram_fill(void)
{
    memset(mem->host, 0xee, RAM_SIZE);
    memcpy(snapshot, mem->host, RAM_SIZE);
}

/* Expect a refusal whose message contains want; RAM must be unchanged. */
static void expect_reject(const uint8_t *buf, size_t len, const char *want, const char *what)
{
    char err[256] = "";
    struct elf_info info;
    int ret;

    ram_fill();
    ret = elf_load(mem, buf, len, &info, err, sizeof(err));
    CHECK(ret < 0 && strstr(err, want) && memcmp(mem->host, snapshot, RAM_SIZE) == 0,
          "%s: refused (\"%s\")", what, err);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_valid(void)
{
    char err[256] = "";
    struct elf_info info;
    int ret;

    build_valid();
    ram_fill();
    ret = elf_load(mem, img, img_len, &info, err, sizeof(err));
    CHECK(ret == 0, "valid image loads (%s)", err);
    CHECK(memcmp(mem->host, img + 0x100, 0x40) == 0, "text copied to 0x80000000");
    CHECK(mem->host[0x40] == 0xee, "byte after text untouched");
    CHECK(memcmp(mem->host + 0x1000, img + 0x180, 0x20) == 0, "data copied to 0x80001000");
    {
        int zero = 1;
        for (unsigned i = 0x1020; i < 0x3000; i++)
            zero &= mem->host[i] == 0;
        CHECK(zero, "memsz beyond filesz zero-filled (bss)");
    }
    CHECK(mem->host[0x3000] == 0xee, "byte after bss untouched");
    CHECK(info.entry == RAM_BASE && info.low == RAM_BASE && info.high == RAM_BASE + 0x3000 &&
              info.nload == 2,
          "elf_info: entry, low, high, nload");
    CHECK((atomic_load(&mem->dirty[0]) & 0xf) == 0x7, "loaded pages marked dirty");
}

static void test_malformed(void)
{
    uint8_t b[4096];
    size_t n;

    build_valid();
#define MUT(stmt, want, what)                                                                      \
    do {                                                                                           \
        memcpy(b, img, img_len);                                                                   \
        n = img_len;                                                                               \
        stmt;                                                                                      \
        expect_reject(b, n, want, what);                                                           \
    } while (0)

    MUT(n = 0, "too short", "empty file");
    MUT(n = 63, "too short", "truncated ELF header");
    MUT(b[0] = 0x7e, "bad magic", "bad magic");
    MUT(b[4] = 1, "64-bit", "ELFCLASS32");
    MUT(b[5] = 2, "little-endian", "big-endian");
    MUT(b[6] = 0, "identification version", "bad EI_VERSION");
    MUT(put(b + 18, 62, 2), "RISC-V", "x86-64 machine");
    MUT(put(b + 16, 3, 2), "ET_EXEC", "ET_DYN");
    MUT(put(b + 16, 1, 2), "ET_EXEC", "ET_REL");
    MUT(put(b + 20, 0, 4), "ELF version", "e_version 0");
    MUT(put(b + 56, 0, 2), "no program headers", "phnum 0");
    MUT(put(b + 56, 0xffff, 2), "extended", "phnum PN_XNUM");
    MUT(put(b + 54, 32, 2), "entry size", "phentsize 32");
    MUT(put(b + 56, 60, 2), "past the end", "phnum too large for the file");
    MUT(put(b + 32, 0x190, 8), "past the end", "phoff near the end");
    MUT(put(b + 32, UINT64_MAX - 8, 8), "past the end", "phoff overflowing");
    MUT(n = 64 + 56 * 2, "past the end", "truncated program headers");
    MUT(n = 0x19f, "past the end", "truncated segment data");
    MUT(put(b + 64 + 8, 0x1000, 8), "past the end", "segment offset beyond file");
    MUT(put(b + 64 + 8, UINT64_MAX - 4, 8), "past the end", "segment offset+filesz overflows");
    MUT(put(b + 64 + 32, UINT64_MAX, 8), "past the end", "huge filesz");
    MUT(put(b + 64 + 40, 0x10, 8), "exceeds memory size", "filesz > memsz");
    MUT(put(b + 64 + 24, 0x1000, 8), "outside RAM", "segment below RAM (MROM)");
    MUT(put(b + 64 + 24, 0x0, 8), "outside RAM", "segment at address 0");
    MUT(put(b + 64 + 24, RAM_BASE + RAM_SIZE, 8), "outside RAM", "segment just above RAM");
    MUT(put(b + 64 + 24, RAM_BASE + RAM_SIZE - 0x20, 8), "outside RAM",
        "segment straddling RAM end");
    MUT(put(b + 64 + 24, RAM_BASE - 0x20, 8), "outside RAM", "segment straddling RAM start");
    MUT(put(b + 64 + 56 * 2 + 40, 1ull << 63, 8), "outside RAM", "huge memsz");
    MUT(put(b + 64 + 56 * 2 + 40, UINT64_MAX, 8), "wraps", "memsz wrapping the address space");
    MUT(put(b + 64 + 24, UINT64_MAX - 0x10, 8), "wraps", "paddr near the top wraps");
    MUT(put(b + 64 + 56 * 2 + 24, RAM_BASE + 0x20, 8), "overlap", "overlapping segments");
    MUT(put(b + 64 + 56 * 2 + 24, RAM_BASE, 8), "overlap", "identical start addresses");
    MUT(put(b + 64, 4, 4); put(b + 64 + 56 * 2, 6, 4), "no loadable", "no PT_LOAD segment");
    MUT(put(b + 24, 0x1000, 8), "entry point", "entry outside RAM");
#undef MUT
    /* Every proper truncation of the valid image cuts something needed. */
    {
        char err[256];
        unsigned bad = 0;
        for (size_t len = 0; len < img_len; len++) {
            ram_fill();
            if (elf_load(mem, img, len, NULL, err, sizeof(err)) == 0 ||
                memcmp(mem->host, snapshot, RAM_SIZE) != 0)
                bad++;
        }
        CHECK(bad == 0, "every truncation (%zu lengths) refused, RAM untouched", img_len);
    }
    /* Zero-size and non-load segments with garbage fields are ignored. */
    {
        char err[256] = "";
        memcpy(b, img, img_len);
        put(b + 64 + 56 + 8, UINT64_MAX, 8); /* PT_NOTE with absurd offset */
        put(b + 64 + 56 + 24, UINT64_MAX, 8);
        CHECK(elf_load(mem, b, img_len, NULL, err, sizeof(err)) == 0,
              "non-load segment fields are not interpreted (%s)", err);
        memcpy(b, img, img_len);
        put(b + 64 + 56 * 2 + 8, UINT64_MAX, 8); /* PT_LOAD, nothing to load */
        put(b + 64 + 56 * 2 + 24, 0, 8);
        put(b + 64 + 56 * 2 + 32, 0, 8);
        put(b + 64 + 56 * 2 + 40, 0, 8);
        CHECK(elf_load(mem, b, img_len, NULL, err, sizeof(err)) == 0,
              "empty PT_LOAD segment is skipped (%s)", err);
    }
}

/* Random mutations of the valid image: never a crash, and any success keeps
 * the documented invariants. */
static void test_fuzz(unsigned iterations)
{
    static const uint64_t interesting[] = {0,
                                           1,
                                           0x7f,
                                           0x80,
                                           0xff,
                                           0xffff,
                                           0x10000,
                                           0x7fffffff,
                                           0x80000000,
                                           0xffffffff,
                                           RAM_BASE + RAM_SIZE - 1,
                                           RAM_BASE + RAM_SIZE,
                                           0x7fffffffffffffffull,
                                           0x8000000000000000ull,
                                           UINT64_MAX - 0x3f,
                                           UINT64_MAX};
    uint8_t b[4096];
    unsigned accepted = 0, broken = 0;
    char err[256];

    build_valid();
    for (unsigned it = 0; it < iterations; it++) {
        struct elf_info info;
        size_t n = img_len;
        unsigned muts = 1 + rng() % 6;

        memcpy(b, img, img_len);
        for (unsigned m = 0; m < muts; m++) {
            uint64_t r = rng();
            size_t pos = n ? (size_t)((r >> 8) % n) : 0;
            if (n == 0)
                break;
            switch (r % 5) {
            case 0: b[pos] ^= (uint8_t)(1u << ((r >> 40) % 8)); break;
            case 1: b[pos] = (uint8_t)(r >> 48); break;
            case 2: /* an interesting 8-byte value at a header field position */
                pos = (size_t)((r >> 8) % (64 + 56 * 3 - 8));
                put(b + pos, interesting[(r >> 32) % GW_ARRAY_SIZE(interesting)], 8);
                break;
            case 3: /* an interesting 2-byte value */
                pos = (size_t)((r >> 8) % (64 + 56 * 3 - 2));
                put(b + pos, interesting[(r >> 32) % GW_ARRAY_SIZE(interesting)], 2);
                break;
            default: n = (size_t)((r >> 8) % (img_len + 1)); break;
            }
        }
        err[0] = 0;
        if (elf_load(mem, b, n, &info, err, sizeof(err)) == 0) {
            accepted++;
            if (info.low < RAM_BASE || info.high > RAM_BASE + RAM_SIZE || info.low >= info.high ||
                info.nload == 0 || info.entry < RAM_BASE || info.entry >= RAM_BASE + RAM_SIZE)
                broken++;
        } else if (err[0] == 0) {
            broken++; /* a refusal must say why */
        }
    }
    CHECK(broken == 0, "fuzz: %u mutated images, %u accepted, all invariants hold", iterations,
          accepted);
}

int main(int argc, char **argv)
{
    unsigned iterations = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 30000;

    mem = gmem_new(RAM_BASE, RAM_SIZE);
    snapshot = malloc(RAM_SIZE);
    CHECK(mem && snapshot, "1 MiB of guest RAM");
    if (!mem || !snapshot)
        return board_check_done();
    test_valid();
    test_malformed();
    test_fuzz(iterations);
    free(snapshot);
    gmem_free(mem);
    return board_check_done();
}
