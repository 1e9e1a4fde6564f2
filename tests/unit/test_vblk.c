/*
 * Unit tests for virtio-blk on real temporary files: config space, read
 * and write through multi-segment (direct and indirect) chains, sparse
 * files staying sparse (st_blocks) under zero writes, DISCARD and
 * WRITE_ZEROES, readonly=on, GET_ID, FLUSH, bad requests, malformed chains
 * (NEEDS_RESET), host I/O errors reaching the guest as IOERR (an fd opened
 * write-only or read-only, RLIMIT_FSIZE -> EFBIG), reads past a file the
 * host shrank, O_DIRECT with misaligned guest buffers, dirty marking.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board_check.h"
#include "virtio/virtio_blk.h"
#include "virtq_driver.h"

#define HDR    (TD_DATA)           /* request header */
#define STATUS (TD_DATA + 0x100)   /* status byte */
#define DATA   (TD_DATA + 0x20000) /* data, up to 256 KiB */
#define MAXD   (256u * 1024)
#define MIB    (1024 * 1024)
#define F_BASE (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))

static struct gmem *mem;
static struct td t;
static char dir[] = "/tmp/godwit-vblk-XXXXXX";
static uint32_t used_len;

/* One request: header, optional out data (n segments), optional in data
 * (n segments), status.  Returns the status byte, or 0xee if no used
 * entry came back. */
static uint8_t req(uint32_t type, uint64_t sector, const void *out, size_t outlen, void *in,
                   size_t inlen, unsigned nseg, bool indirect)
{
    struct td_buf b[64];
    unsigned n = 0;
    uint8_t hdr[16] = {0}, status = 0xee;
    uint32_t id;

    memcpy(hdr, &type, 4);
    memcpy(hdr + 8, &sector, 8);
    if (gmem_write(mem, HDR, hdr, 16) < 0 || gmem_write(mem, STATUS, &status, 1) < 0)
        abort();
    b[n++] = (struct td_buf){HDR, 16, false};
    if (outlen) {
        if (gmem_write(mem, DATA, out, outlen) < 0)
            abort();
    }
    if (inlen)
        memset(mem->host + (DATA - TD_RAM_BASE), 0x5a, inlen);
    for (size_t len = outlen ? outlen : inlen, off = 0, i = 0; len && i < nseg; i++) {
        size_t seg = i + 1 == nseg ? len - off : len / nseg;
        b[n++] = (struct td_buf){DATA + off, (uint32_t)seg, inlen != 0};
        off += seg;
    }
    b[n++] = (struct td_buf){STATUS, 1, true};
    td_add(&t, b, n, indirect);
    td_kick(&t, 0);
    if (!td_used(&t, &id, &used_len))
        return 0xee;
    if (inlen && gmem_read(mem, DATA, in, inlen) < 0)
        abort();
    if (gmem_read(mem, STATUS, &status, 1) < 0)
        abort();
    td_ack(&t);
    return status;
}

/* A read of 600 overlapping 512 KiB buffers through one indirect table:
 * 300 MiB, more than a request may move. */
static uint8_t big_read(void)
{
    uint8_t hdr[16] = {0}, status = 0xee;
    uint64_t table = TD_INDIRECT;
    uint32_t id, len;
    unsigned n = 0;

    if (gmem_write(mem, HDR, hdr, 16) < 0)
        abort();
    td_put_desc(&t, table, n, HDR, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(n + 1));
    for (n = 1; n <= 600; n++)
        td_put_desc(&t, table, n, TD_RAM_BASE, 512 * 1024, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
                    (uint16_t)(n + 1));
    td_put_desc(&t, table, n, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
    td_put_desc(&t, TD_DESC, t.next_desc, table, 16 * (n + 1), VIRTQ_DESC_F_INDIRECT, 0);
    td_publish(&t, t.next_desc);
    t.next_desc = (uint16_t)((t.next_desc + 1) % t.num);
    td_kick(&t, 0);
    if (!td_used(&t, &id, &len) || gmem_read(mem, STATUS, &status, 1) < 0)
        return 0xee;
    td_ack(&t);
    return status;
}

static uint8_t rd(uint64_t sector, void *buf, size_t len)
{
    return req(VIRTIO_BLK_T_IN, sector, NULL, 0, buf, len, 2, false);
}

static uint8_t wr(uint64_t sector, const void *buf, size_t len)
{
    return req(VIRTIO_BLK_T_OUT, sector, buf, len, NULL, 0, 3, true);
}

/* DISCARD / WRITE_ZEROES of one range. */
static uint8_t ranges(uint32_t type, uint64_t sector, uint32_t n, uint32_t flags, unsigned count)
{
    uint8_t r[16 * 40];

    for (unsigned i = 0; i < count; i++) {
        uint64_t s = sector + (uint64_t)i * n;
        memcpy(r + 16 * i, &s, 8);
        memcpy(r + 16 * i + 8, &n, 4);
        memcpy(r + 16 * i + 12, &flags, 4);
    }
    return req(type, 0, r, 16 * count, NULL, 0, 1, false);
}

static char *path_of(const char *name)
{
    static char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    return p;
}

static void make_file(const char *name, off_t size)
{
    int fd = open(path_of(name), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, size) < 0)
        abort();
    close(fd);
}

static long long blocks(const char *name)
{
    struct stat st;
    if (stat(path_of(name), &st) < 0)
        return -1;
    return (long long)st.st_blocks;
}

static struct virtio_dev *open_blk(const char *name, struct vblk_config cfg)
{
    char err[300];
    struct virtio_dev *d;

    cfg.path = path_of(name);
    d = vblk_new(mem, &cfg, err, sizeof(err));
    if (!d) {
        printf("vblk_new: %s\n", err);
        return NULL;
    }
    td_attach(&t, mem, d);
    td_setup(&t,
             F_BASE | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
                 VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) | VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE) |
                 (cfg.readonly ? VIRTIO_BIT(VIRTIO_BLK_F_RO) : 0),
             64);
    return d;
}

static struct virtio_dev *open_fd(int fd, bool readonly)
{
    struct vblk_config cfg = {.path = "fd", .readonly = readonly};
    char err[300];
    struct virtio_dev *d = vblk_new_fd(mem, fd, &cfg, err, sizeof(err));

    if (!d)
        return NULL;
    td_attach(&t, mem, d);
    td_setup(&t, F_BASE, 64);
    return d;
}

static uint32_t cfg32(unsigned off)
{
    uint64_t v = 0;
    (void)virtio_mmio_ops.read(&t.mmio, VIRTIO_MMIO_CONFIG + off, 4, &v);
    return (uint32_t)v;
}

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16) | 1; /* never zero */
    }
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static uint8_t wbuf[MAXD], rbuf[MAXD];

static void test_config_and_rw(void)
{
    struct virtio_dev *d;
    uint64_t f;
    int fd;

    make_file("a.img", 16 * MIB + 100); /* a partial sector at the end is not capacity */
    d = open_blk("a.img", (struct vblk_config){.discard = true});
    if (!d) {
        CHECK(0, "open a.img");
        return;
    }
    td_wr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    f = td_rd(&t, VIRTIO_MMIO_DEVICE_FEATURES);
    CHECK((f & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH)) && (f & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD)) &&
              (f & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES)) &&
              (f & VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX)) && (f & VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX)) &&
              (f & VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE)) && !(f & VIRTIO_BIT(VIRTIO_BLK_F_RO)),
          "features: flush, discard, write-zeroes, seg/size max, wce, not RO");
    CHECK(cfg32(0) == 16 * 2048 && cfg32(4) == 0, "capacity 32768 sectors");
    CHECK_EQ(cfg32(8), VBLK_SIZE_MAX, "size_max");
    CHECK_EQ(cfg32(12), 254, "seg_max = queue size - 2, as QEMU");
    CHECK_EQ(cfg32(20), 512, "blk_size");
    CHECK_EQ(cfg32(32) & 0xff, 1, "writeback cache");
    CHECK(cfg32(36) == VBLK_DISCARD_SECTORS && cfg32(40) == VBLK_DISCARD_SEGS &&
              cfg32(44) == VBLK_DISCARD_ALIGN,
          "discard limits");
    CHECK(cfg32(48) == VBLK_DISCARD_SECTORS && cfg32(52) == VBLK_DISCARD_SEGS &&
              (cfg32(56) & 0xff) == 1,
          "write-zeroes limits, may unmap");
    (void)virtio_mmio_ops.write(&t.mmio, VIRTIO_MMIO_CONFIG + 32, 1, 0);
    CHECK_EQ(cfg32(32) & 0xff, 0, "writeback is writable (CONFIG_WCE)");
    (void)virtio_mmio_ops.write(&t.mmio, VIRTIO_MMIO_CONFIG + 0, 4, 7);
    CHECK_EQ(cfg32(0), 16 * 2048, "capacity is read-only");

    fill_random(wbuf, 3 * 4096, 1);
    CHECK_EQ(wr(8, wbuf, 3 * 4096), VIRTIO_BLK_S_OK, "write 12 KiB at sector 8 (indirect, 3 segs)");
    CHECK_EQ(used_len, 1, "write: used length = status byte");
    CHECK_EQ(rd(8, rbuf, 3 * 4096), VIRTIO_BLK_S_OK, "read it back (2 segs)");
    CHECK(!memcmp(wbuf, rbuf, 3 * 4096), "same data");
    CHECK_EQ(used_len, 3 * 4096 + 1, "read: used length = data + status");
    fd = open(path_of("a.img"), O_RDONLY);
    CHECK(fd >= 0 && pread(fd, rbuf, 4096, 8 * 512) == 4096 && !memcmp(rbuf, wbuf, 4096),
          "data in the file at 4096");
    if (fd >= 0)
        close(fd);
    CHECK_EQ(req(VIRTIO_BLK_T_IN, 8, NULL, 0, rbuf, 512, 1, true), VIRTIO_BLK_S_OK,
             "read through an indirect table");
    CHECK(!memcmp(wbuf, rbuf, 512), "same data");

    CHECK_EQ(rd(32767, rbuf, 512), VIRTIO_BLK_S_OK, "last sector readable");
    CHECK_EQ(rd(32768, rbuf, 512), VIRTIO_BLK_S_IOERR, "sector == capacity: IOERR");
    CHECK_EQ(rd(32767, rbuf, 1024), VIRTIO_BLK_S_IOERR, "read across the end: IOERR");
    CHECK_EQ(rd(~0ull - 1, rbuf, 1024), VIRTIO_BLK_S_IOERR, "huge sector: IOERR (no overflow)");
    CHECK_EQ(rd(0, rbuf, 100), VIRTIO_BLK_S_IOERR, "length not a sector multiple: IOERR");
    CHECK_EQ(wr(0, wbuf, 700), VIRTIO_BLK_S_IOERR, "write of 700 bytes: IOERR");
    CHECK_EQ(req(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, 0, false), VIRTIO_BLK_S_OK, "flush");
    CHECK_EQ(req(99, 0, NULL, 0, NULL, 0, 0, false), VIRTIO_BLK_S_UNSUPP, "unknown type: UNSUPP");
    CHECK(vblk_stats(d)->reads >= 2 && vblk_stats(d)->writes >= 1 && vblk_stats(d)->flushes == 1 &&
              vblk_stats(d)->unsupported == 1,
          "statistics");

    /* Dirty marking of a read. */
    td_clear_dirty(mem);
    CHECK_EQ(rd(8, rbuf, 8192), VIRTIO_BLK_S_OK, "read 8 KiB");
    CHECK(td_dirty(mem, DATA) && td_dirty(mem, DATA + 4096) && td_dirty(mem, STATUS) &&
              td_dirty(mem, TD_USED) && !td_dirty(mem, DATA + 8192),
          "read data, status and used ring dirty, nothing beyond");

    /* The host shrinks the file: reads past its end give zeros. */
    if (truncate(path_of("a.img"), 8 * 512 + 4096) == 0) {
        CHECK_EQ(rd(8, rbuf, 8192), VIRTIO_BLK_S_OK, "read across the shrunk file's end");
        CHECK(!memcmp(rbuf, wbuf, 4096) && all_zero(rbuf + 4096, 4096),
              "data, then zeros past the end (as QEMU)");
    }
    virtio_dev_free(d);
}

static void test_request_limit(void)
{
    struct virtio_dev *d;

    make_file("big.img", 512 * MIB); /* sparse: big enough for a 300 MiB read */
    d = open_blk("big.img", (struct vblk_config){0});
    CHECK(d && big_read() == VIRTIO_BLK_S_IOERR,
          "a read larger than seg_max x size_max (600 x 512 KiB, overlapping): IOERR");
    CHECK(d && rd(0, rbuf, 4096) == VIRTIO_BLK_S_OK, "the next request works");
    virtio_dev_free(d);
    unlink(path_of("big.img"));
}

static void test_sparse(void)
{
    struct virtio_dev *d;
    long long b0;

    make_file("s.img", 16 * MIB);
    d = open_blk("s.img", (struct vblk_config){.discard = true});
    if (!d) {
        CHECK(0, "open s.img");
        return;
    }
    b0 = blocks("s.img");
    CHECK_EQ(b0, 0, "fresh image has no blocks");
    memset(wbuf, 0, 65536);
    CHECK_EQ(wr(0, wbuf, 65536), VIRTIO_BLK_S_OK, "write 64 KiB of zeros");
    CHECK_EQ(blocks("s.img"), 0, "zeros are not written: still sparse");
    fill_random(wbuf, 65536, 2);
    CHECK_EQ(wr(2048, wbuf, 65536), VIRTIO_BLK_S_OK, "write 64 KiB of data at 1 MiB");
    CHECK(blocks("s.img") >= 128, "data allocated (%lld blocks)", blocks("s.img"));
    memset(wbuf, 0, 65536);
    CHECK_EQ(wr(2048, wbuf, 65536), VIRTIO_BLK_S_OK, "overwrite it with zeros");
    CHECK_EQ(blocks("s.img"), 0, "the zeros punched the data out");
    CHECK_EQ(rd(2048, rbuf, 65536), VIRTIO_BLK_S_OK, "read");
    CHECK(all_zero(rbuf, 65536), "reads zeros");

    /* data | zeros | data in one write: only the zero block is skipped */
    fill_random(wbuf, 3 * 4096, 3);
    memset(wbuf + 4096, 0, 4096);
    CHECK_EQ(wr(4096, wbuf, 3 * 4096), VIRTIO_BLK_S_OK, "write data|zeros|data");
    CHECK_EQ(blocks("s.img"), 16, "two 4 KiB blocks allocated, not three");
    CHECK_EQ(rd(4096, rbuf, 3 * 4096), VIRTIO_BLK_S_OK, "read back");
    CHECK(!memcmp(rbuf, wbuf, 3 * 4096), "data|zeros|data intact");
    /* a zero block that is not 4 KiB-aligned in the file is written */
    memset(wbuf, 0, 4096);
    CHECK_EQ(wr(8193, wbuf, 4096), VIRTIO_BLK_S_OK, "misaligned zero block");

    fill_random(wbuf, 65536, 4);
    CHECK_EQ(wr(6144, wbuf, 65536), VIRTIO_BLK_S_OK, "write 64 KiB at 3 MiB");
    b0 = blocks("s.img");
    CHECK_EQ(ranges(VIRTIO_BLK_T_DISCARD, 6144, 128, 0, 1), VIRTIO_BLK_S_OK, "discard 64 KiB");
    CHECK_EQ(blocks("s.img"), b0 - 128, "discard punched a hole");
    CHECK_EQ(rd(6144, rbuf, 65536), VIRTIO_BLK_S_OK, "read the discarded range");
    CHECK(all_zero(rbuf, 65536), "reads zeros");

    CHECK_EQ(wr(6144, wbuf, 65536), VIRTIO_BLK_S_OK, "write it again");
    CHECK_EQ(ranges(VIRTIO_BLK_T_WRITE_ZEROES, 6144, 8, VIRTIO_BLK_WZ_F_UNMAP, 16), VIRTIO_BLK_S_OK,
             "write-zeroes with unmap, 16 ranges");
    CHECK_EQ(blocks("s.img"), b0 - 128, "write-zeroes+unmap punched holes");
    CHECK_EQ(rd(6144, rbuf, 65536), VIRTIO_BLK_S_OK, "read");
    CHECK(all_zero(rbuf, 65536), "reads zeros");
    CHECK_EQ(wr(6144, wbuf, 65536), VIRTIO_BLK_S_OK, "write it again");
    CHECK_EQ(ranges(VIRTIO_BLK_T_WRITE_ZEROES, 6144, 128, 0, 1), VIRTIO_BLK_S_OK,
             "write-zeroes without unmap");
    CHECK_EQ(rd(6144, rbuf, 65536), VIRTIO_BLK_S_OK, "read");
    CHECK(all_zero(rbuf, 65536), "reads zeros");
    CHECK(vblk_stats(d)->punched_bytes >= 3 * 65536, "punched bytes counted");

    CHECK_EQ(ranges(VIRTIO_BLK_T_DISCARD, 0, 8, VIRTIO_BLK_WZ_F_UNMAP, 1), VIRTIO_BLK_S_UNSUPP,
             "discard with the unmap flag: UNSUPP");
    CHECK_EQ(ranges(VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 2, 1), VIRTIO_BLK_S_UNSUPP,
             "write-zeroes with an unknown flag: UNSUPP");
    CHECK_EQ(ranges(VIRTIO_BLK_T_DISCARD, 0, 8, 0, VBLK_DISCARD_SEGS + 1), VIRTIO_BLK_S_IOERR,
             "too many ranges: IOERR");
    CHECK_EQ(ranges(VIRTIO_BLK_T_DISCARD, 32760, 16, 0, 1), VIRTIO_BLK_S_IOERR,
             "range past the end: IOERR");
    CHECK_EQ(ranges(VIRTIO_BLK_T_DISCARD, 0, VBLK_DISCARD_SECTORS + 1, 0, 1), VIRTIO_BLK_S_IOERR,
             "range above max_discard_sectors: IOERR");
    CHECK_EQ(req(VIRTIO_BLK_T_DISCARD, 0, wbuf, 8, NULL, 0, 1, false), VIRTIO_BLK_S_IOERR,
             "half a range: IOERR");
    virtio_dev_free(d);

    /* detect-zeroes=off writes what it is given, as QEMU's default. */
    make_file("z.img", MIB);
    d = open_blk("z.img", (struct vblk_config){.detect_zeroes = VBLK_ZEROES_OFF});
    memset(wbuf, 0, 65536);
    CHECK(d && wr(0, wbuf, 65536) == VIRTIO_BLK_S_OK && blocks("z.img") >= 128,
          "detect-zeroes=off: zeros allocate");
    virtio_dev_free(d);
}

static void test_readonly(void)
{
    struct virtio_dev *d;
    uint64_t f;
    int fd;

    make_file("r.img", MIB);
    fd = open(path_of("r.img"), O_WRONLY);
    if (fd < 0 || pwrite(fd, "ABCD", 4, 0) != 4)
        abort();
    close(fd);
    d = open_blk("r.img", (struct vblk_config){.readonly = true, .serial = "godwit-serial"});
    if (!d) {
        CHECK(0, "open r.img readonly");
        return;
    }
    td_wr(&t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    f = td_rd(&t, VIRTIO_MMIO_DEVICE_FEATURES);
    CHECK(f & VIRTIO_BIT(VIRTIO_BLK_F_RO), "readonly=on: VIRTIO_BLK_F_RO offered");
    fill_random(wbuf, 4096, 5);
    CHECK_EQ(wr(0, wbuf, 4096), VIRTIO_BLK_S_IOERR, "write: IOERR");
    CHECK_EQ(ranges(VIRTIO_BLK_T_DISCARD, 0, 8, 0, 1), VIRTIO_BLK_S_IOERR, "discard: IOERR");
    CHECK_EQ(ranges(VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0, 1), VIRTIO_BLK_S_IOERR,
             "write-zeroes: IOERR");
    CHECK_EQ(rd(0, rbuf, 512), VIRTIO_BLK_S_OK, "read works");
    CHECK(!memcmp(rbuf, "ABCD", 4), "file unchanged");
    CHECK_EQ(req(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, 0, false), VIRTIO_BLK_S_OK, "flush: OK");
    CHECK_EQ(req(VIRTIO_BLK_T_GET_ID, 0, NULL, 0, rbuf, 20, 1, false), VIRTIO_BLK_S_OK, "GET_ID");
    CHECK(!memcmp(rbuf, "godwit-serial\0\0\0\0\0\0\0", 20), "serial, NUL-padded");
    CHECK_EQ(used_len, 21, "GET_ID used length");
    virtio_dev_free(d);

    d = open_blk("r.img", (struct vblk_config){.serial = "12345678901234567890"});
    CHECK(d && req(VIRTIO_BLK_T_GET_ID, 0, NULL, 0, rbuf, 20, 1, false) == VIRTIO_BLK_S_OK &&
              !memcmp(rbuf, "12345678901234567890", 20),
          "20-byte serial, unterminated");
    virtio_dev_free(d);
}

static void test_host_errors(void)
{
    struct virtio_dev *d;
    struct rlimit old, lim;
    int fd;

    make_file("e.img", MIB);
    fd = open(path_of("e.img"), O_WRONLY);
    d = fd >= 0 ? open_fd(fd, false) : NULL;
    CHECK(d && rd(0, rbuf, 512) == VIRTIO_BLK_S_IOERR, "read on a write-only fd (EBADF): IOERR");
    CHECK(d && vblk_stats(d)->errors == 1, "counted as an error");
    virtio_dev_free(d);

    fd = open(path_of("e.img"), O_RDONLY);
    d = fd >= 0 ? open_fd(fd, false) : NULL;
    fill_random(wbuf, 4096, 6);
    CHECK(d && wr(0, wbuf, 4096) == VIRTIO_BLK_S_IOERR, "write on a read-only fd (EBADF): IOERR");
    CHECK(d && rd(0, rbuf, 512) == VIRTIO_BLK_S_OK, "reads still work");
    virtio_dev_free(d);

    /* The process may not write beyond 512 KiB: EFBIG from the kernel. */
    d = open_blk("e.img", (struct vblk_config){0});
    signal(SIGXFSZ, SIG_IGN);
    if (d && getrlimit(RLIMIT_FSIZE, &old) == 0) {
        lim = old;
        lim.rlim_cur = 512 * 1024;
        if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
            CHECK_EQ(wr(1536, wbuf, 4096), VIRTIO_BLK_S_IOERR, "write past RLIMIT_FSIZE: IOERR");
            CHECK_EQ(wr(1020, wbuf, 4096), VIRTIO_BLK_S_IOERR,
                     "write across RLIMIT_FSIZE (short, then EFBIG): IOERR");
            CHECK_EQ(wr(0, wbuf, 4096), VIRTIO_BLK_S_OK, "write below it: OK");
            (void)setrlimit(RLIMIT_FSIZE, &old);
        }
    }
    CHECK(d && !(td_rd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET),
          "I/O errors do not break the device");
    virtio_dev_free(d);
}

static void test_malformed(void)
{
    struct td_buf b[2];
    struct virtio_dev *d;
    uint32_t id, len;

    make_file("m.img", MIB);
    d = open_blk("m.img", (struct vblk_config){0});
    if (!d) {
        CHECK(0, "open m.img");
        return;
    }
    b[0] = (struct td_buf){STATUS, 1, true};
    td_add(&t, b, 1, false);
    td_kick(&t, 0);
    CHECK((td_rd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET) && !td_used(&t, &id, &len),
          "request without a header: NEEDS_RESET, not completed");
    td_setup(&t, F_BASE, 64);
    b[0] = (struct td_buf){HDR, 16, false};
    td_add(&t, b, 1, false);
    td_kick(&t, 0);
    CHECK(td_rd(&t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET,
          "request without a status byte: NEEDS_RESET");
    td_setup(&t, F_BASE, 64);
    b[0] = (struct td_buf){HDR, 8, false};
    b[1] = (struct td_buf){HDR + 8, 8, false};
    td_add(&t, b, 2, false);
    CHECK_EQ(req(VIRTIO_BLK_T_IN, 0, NULL, 0, rbuf, 512, 1, false), 0xee,
             "header split over two buffers with no status: NEEDS_RESET");
    td_setup(&t, F_BASE, 64);
    CHECK_EQ(req(VIRTIO_BLK_T_IN, 0, NULL, 0, rbuf, 512, 1, false), VIRTIO_BLK_S_OK,
             "after a reset the device works");
    virtio_dev_free(d);
}

static void test_direct_io(void)
{
    struct virtio_dev *d;
    struct vblk_config cfg = {.cache = VBLK_CACHE_NONE};
    char err[300];
    struct td_buf b[3];
    uint32_t id, len;
    uint8_t status = 0xee;

    make_file("o.img", MIB);
    cfg.path = path_of("o.img");
    d = vblk_new(mem, &cfg, err, sizeof(err));
    if (!d) {
        printf("ok   cache=none skipped: %s\n", err);
        return;
    }
    td_attach(&t, mem, d);
    td_setup(&t, F_BASE, 64);
    fill_random(wbuf, 8192, 7);
    CHECK_EQ(wr(16, wbuf, 8192), VIRTIO_BLK_S_OK, "O_DIRECT write (aligned buffers)");
    CHECK_EQ(rd(16, rbuf, 8192), VIRTIO_BLK_S_OK, "O_DIRECT read");
    CHECK(!memcmp(rbuf, wbuf, 8192), "same data");
    /* A guest buffer at an odd address: O_DIRECT refuses it, the bounce
     * buffer takes over. */
    {
        uint8_t hdr[16] = {0};
        uint64_t sector = 16;
        memcpy(hdr + 8, &sector, 8);
        if (gmem_write(mem, HDR, hdr, 16) < 0)
            abort();
    }
    b[0] = (struct td_buf){HDR, 16, false};
    b[1] = (struct td_buf){DATA + 3, 1024, true};
    b[2] = (struct td_buf){STATUS, 1, true};
    td_add(&t, b, 3, false);
    td_kick(&t, 0);
    CHECK(td_used(&t, &id, &len) && gmem_read(mem, STATUS, &status, 1) == 0 &&
              status == VIRTIO_BLK_S_OK &&
              !memcmp(mem->host + (DATA + 3 - TD_RAM_BASE), wbuf, 1024),
          "O_DIRECT read into a misaligned buffer (bounce)");
    virtio_dev_free(d);
}

int main(void)
{
    mem = gmem_new(TD_RAM_BASE, TD_RAM_SIZE);
    if (!mem || !mkdtemp(dir))
        return 1;
    test_config_and_rw();
    test_sparse();
    test_request_limit();
    test_readonly();
    test_host_errors();
    test_malformed();
    test_direct_io();
    for (const char *const *n = (const char *const[]){"a.img", "s.img", "z.img", "r.img", "e.img",
                                                      "m.img", "o.img", NULL};
         *n; n++)
        unlink(path_of(*n));
    rmdir(dir);
    gmem_free(mem);
    return board_check_done();
}
