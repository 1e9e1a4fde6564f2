/*
 * Disks in a live migration: see mig_block.h.
 */
#include "migration/mig_block.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "migration/mig_int.h" /* ST_SET/ST_GET */

#define RUN_BYTES ((size_t)STATE_BLK_RUN * STATE_BLK_SIZE)

static int blk_alloc(struct mig_blk *k)
{
    if (!k->buf && posix_memalign((void **)&k->buf, 4096, RUN_BYTES) != 0) {
        k->buf = NULL;
        return -ENOMEM;
    }
    state_buf_init(&k->b);
    return 0;
}

static int blk_disk_alloc(struct mig_blk_disk *d, bool source, bool recover)
{
    uint64_t words = (d->nblocks + 63) / 64, zero = state_blk_zero_hash();

    d->hash = malloc(d->nblocks * sizeof(*d->hash));
    if (!d->hash)
        return -ENOMEM;
    for (uint64_t b = 0; b < d->nblocks; b++)
        d->hash[b] = zero;
    if (source) {
        d->track.bits = calloc(words, sizeof(uint64_t));
        d->track.nblocks = d->nblocks;
        d->dirty = calloc(words, sizeof(uint64_t));
        if (recover)
            d->tag = calloc(d->nblocks, sizeof(*d->tag));
        if (!d->track.bits || !d->dirty || (recover && !d->tag))
            return -ENOMEM;
    } else {
        d->written = calloc(words * 8, 1);
        if (!d->written)
            return -ENOMEM;
    }
    return 0;
}

void mig_blk_close(struct mig_blk *k)
{
    for (unsigned i = 0; i < k->n; i++) {
        struct mig_blk_disk *d = &k->d[i];

        if (d->fd >= 0)
            close(d->fd);
        free(d->hash);
        free((void *)d->track.bits);
        free(d->dirty);
        free(d->tag);
        free(d->written);
    }
    free(k->buf);
    state_buf_fini(&k->b);
    memset(k, 0, sizeof(*k));
}

int mig_blk_src_open(struct mig_blk *k, const struct mig_machine *mm, bool recover, char *err,
                     size_t errlen)
{
    struct mig_disk disks[STATE_DISKS_MAX];
    unsigned n = mm->ops->disks ? mm->ops->disks(mm->opaque, disks, STATE_DISKS_MAX) : 0;

    memset(k, 0, sizeof(*k));
    if (blk_alloc(k) < 0)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    for (unsigned i = 0; i < n; i++) {
        struct mig_blk_disk *d = &k->d[i];

        d->info = disks[i];
        d->nblocks = state_blk_count(d->info.size);
        d->fd = open(d->info.path, O_RDONLY | O_CLOEXEC);
        k->n = i + 1;
        if (d->fd < 0)
            return gw_fail(err, errlen, -errno, "block migration: cannot read %s: %s", d->info.path,
                           strerror(errno));
        if (blk_disk_alloc(d, true, recover) < 0)
            return gw_fail(err, errlen, -ENOMEM, "out of memory");
        k->total += d->info.size;
        (void)posix_fadvise(d->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    }
    ST_SET(k->total, k->total);
    ST_SET(k->remaining, k->total);
    return 0;
}

void mig_blk_attach(struct mig_blk *k, const struct mig_machine *mm, bool on)
{
    if (on == k->attached || !mm->ops->disk_track)
        return;
    for (unsigned i = 0; i < k->n; i++)
        mm->ops->disk_track(mm->opaque, k->d[i].info.slot, on ? &k->d[i].track : NULL);
    k->attached = on;
}

int mig_blk_write_disks(struct mig_blk *k, struct state_stream *s)
{
    struct state_disk d[STATE_DISKS_MAX];

    for (unsigned i = 0; i < k->n; i++)
        d[i] = (struct state_disk){.slot = k->d[i].info.slot, .size = k->d[i].info.size};
    state_buf_reset(&k->b);
    state_disks_encode(&k->b, d, k->n);
    return state_write_section(s, STATE_SEC_DISKS, NULL, 0, 1, k->b.data, k->b.len);
}

/*
 * The first allocated extent of fd that ends after from (below size):
 * true with [*start, *end) (start may be before from), false when none
 * is left.  Allocated means what the file system reserved, written or not:
 * FIEMAP, whose unwritten (fallocated) extents SEEK_DATA reports as holes
 * on ext4 and XFS, so an image's fallocated ranges would arrive as holes.
 * Without FIEMAP (tmpfs), SEEK_DATA/SEEK_HOLE.
 */
static bool blk_extent(int fd, uint64_t from, uint64_t size, uint64_t *start, uint64_t *end)
{
    /* a fiemap with room for one extent (its array is a flexible member) */
    uint64_t buf[(sizeof(struct fiemap) + sizeof(struct fiemap_extent) + 7) / 8];
    struct fiemap *fm = (struct fiemap *)buf;
    off_t data, hole;

    if (from >= size)
        return false;
    memset(buf, 0, sizeof(buf));
    fm->fm_start = from;
    fm->fm_length = size - from;
    fm->fm_extent_count = 1;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) == 0) {
        if (fm->fm_mapped_extents == 0)
            return false;
        *start = fm->fm_extents[0].fe_logical;
        *end = *start + fm->fm_extents[0].fe_length;
        if (*end > size)
            *end = size;
        return *end > from && *start < size;
    }
    data = lseek(fd, (off_t)from, SEEK_DATA);
    if (data < 0 || (uint64_t)data >= size)
        return false;
    hole = lseek(fd, data, SEEK_HOLE);
    *start = (uint64_t)data;
    *end = hole < 0 || (uint64_t)hole > size ? size : (uint64_t)hole;
    return true;
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;

    for (unsigned i = 0; i < STATE_BLK_PAGE / 8; i++)
        if (w[i])
            return false;
    return true;
}

/* Send blocks [first, first + count) of disk i: read them, map each page
 * (hole / allocated zero / data, from SEEK_DATA and the content), hash
 * each block, one BLOCK section.  Errors go into s. */
static void blk_send_run(struct mig_blk *k, struct state_stream *s, unsigned i, uint64_t first,
                         uint32_t count, uint32_t tag)
{
    struct mig_blk_disk *d = &k->d[i];
    uint64_t start = first * STATE_BLK_SIZE, len = (uint64_t)count * STATE_BLK_SIZE;
    uint64_t avail = d->info.size - start < len ? d->info.size - start : len;
    uint8_t map[STATE_BLK_RUN * STATE_BLK_PAGES / 4] = {0};
    uint32_t pages = count * STATE_BLK_PAGES, ndata = 0;
    uint64_t pos = start;
    size_t got = 0;

    /* the content (holes read as zeros) */
    while (got < avail) {
        ssize_t r = pread(d->fd, k->buf + got, avail - got, (off_t)(start + got));

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            state_stream_fail(s, r < 0 ? -errno : -EIO, "block migration: reading %s at %llu: %s",
                              d->info.path, (unsigned long long)(start + got),
                              r < 0 ? strerror(errno) : "end of file");
            return;
        }
        got += (size_t)r;
    }
    memset(k->buf + avail, 0, len - avail);
    /* what is allocated: data and allocated zeros; the rest holes */
    for (uint64_t a, e; pos < start + avail && blk_extent(d->fd, pos, start + avail, &a, &e);
         pos = e) {
        if (a < start)
            a = start;
        for (uint64_t p = (a - start) / STATE_BLK_PAGE; p < pages && start + p * STATE_BLK_PAGE < e;
             p++)
            state_blk_set_kind(map, (unsigned)p, STATE_BLK_ZERO);
    }
    /* data pages move to the front of buf's copy in k->b below */
    state_buf_reset(&k->b);
    state_put_u32(&k->b, i);
    state_put_u32(&k->b, 0);
    state_put_u64(&k->b, start);
    state_put_u32(&k->b, count);
    for (uint32_t p = 0; p < pages; p++)
        if (state_blk_kind(map, p) == STATE_BLK_ZERO && !page_is_zero(k->buf + p * STATE_BLK_PAGE))
            state_blk_set_kind(map, p, STATE_BLK_DATA), ndata++;
    state_put_bytes(&k->b, map, pages / 4);
    for (uint32_t p = 0; p < pages; p++)
        if (state_blk_kind(map, p) == STATE_BLK_DATA)
            state_put_bytes(&k->b, k->buf + p * STATE_BLK_PAGE, STATE_BLK_PAGE);
    for (uint32_t b = 0; b < count; b++) {
        d->hash[first + b] = state_blk_hash(k->buf + (size_t)b * STATE_BLK_SIZE);
        if (d->tag)
            d->tag[first + b] = tag;
    }
    state_write_section(s, STATE_SEC_BLOCK, NULL, 0, 1, k->b.data, k->b.len);
    ST_SET(k->transferred, ST_GET(k->transferred) + k->b.len);
}

bool mig_blk_bulk(struct mig_blk *k, struct state_stream *s, uint32_t tag,
                  bool (*stop)(void *opaque), void *opaque)
{
    while (!k->bulk_done && !stop(opaque)) {
        struct mig_blk_disk *d;
        uint64_t data, hole, first, end;

        if (k->bulk_disk >= k->n) {
            k->bulk_done = true;
            break;
        }
        d = &k->d[k->bulk_disk];
        if (!blk_extent(d->fd, k->bulk_off, d->info.size, &data, &hole)) {
            k->bulk_disk++;
            k->bulk_off = 0;
            continue;
        }
        if (data < k->bulk_off)
            data = k->bulk_off;
        first = data / STATE_BLK_SIZE;
        end = (hole + STATE_BLK_SIZE - 1) / STATE_BLK_SIZE;
        if (end - first > STATE_BLK_RUN)
            end = first + STATE_BLK_RUN;
        /* what goes now is newer than any mark made for it so far, collected
         * or not: a write ahead of the bulk costs nothing */
        blk_dirty_forget(&d->track, first, end);
        for (uint64_t b = first; b < end; b++)
            if (d->dirty[b / 64] >> (b % 64) & 1) {
                d->dirty[b / 64] &= ~(1ull << (b % 64));
                atomic_fetch_sub(&d->track.unsent, 1);
            }
        blk_send_run(k, s, k->bulk_disk, first, (uint32_t)(end - first), tag);
        if (state_stream_error(s))
            return false;
        k->bulk_off = end * STATE_BLK_SIZE;
    }
    return k->bulk_done;
}

uint64_t mig_blk_collect(struct mig_blk *k)
{
    uint64_t n = 0;

    k->last_new = 0;
    for (unsigned i = 0; i < k->n; i++) {
        struct mig_blk_disk *d = &k->d[i];
        uint64_t pending = 0;

        k->last_new += blk_dirty_collect(&d->track, d->dirty);
        for (uint64_t w = 0; w < (d->nblocks + 63) / 64; w++)
            pending += (uint64_t)__builtin_popcountll(d->dirty[w]);
        atomic_store(&d->track.unsent, pending);
        n += pending;
    }
    ST_SET(k->dirty_blocks, n);
    return n;
}

uint64_t mig_blk_pending(const struct mig_blk *k)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < k->n; i++)
        n += atomic_load(&((struct mig_blk *)k)->d[i].track.unsent);
    return n;
}

void mig_blk_send_dirty(struct mig_blk *k, struct state_stream *s, uint32_t tag,
                        bool (*stop)(void *opaque), void *opaque)
{
    for (unsigned i = 0; i < k->n; i++) {
        struct mig_blk_disk *d = &k->d[i];

        for (uint64_t b = 0; b < d->nblocks && !state_stream_error(s); b++) {
            uint64_t first = b;

            if (!(d->dirty[b / 64] >> (b % 64) & 1)) {
                if (!(b % 64) && !d->dirty[b / 64])
                    b += 63;
                continue;
            }
            if (stop(opaque))
                return;
            while (b < d->nblocks && b - first < STATE_BLK_RUN &&
                   (d->dirty[b / 64] >> (b % 64) & 1)) {
                d->dirty[b / 64] &= ~(1ull << (b % 64));
                b++;
            }
            atomic_fetch_sub(&d->track.unsent, b - first);
            if (k->mirror) { /* the backlog's allowance shrinks by half of what went */
                uint64_t lim = atomic_load(&d->track.limit), dec = (b - first + 1) / 2;
                atomic_store(&d->track.limit,
                             lim > k->mirror_floor + dec ? lim - dec : k->mirror_floor);
            }
            blk_send_run(k, s, i, first, (uint32_t)(b - first), tag);
            b--; /* the loop's b++ */
        }
    }
}

void mig_blk_mirror(struct mig_blk *k, uint64_t limit)
{
    for (unsigned i = 0; i < k->n; i++)
        atomic_store(&k->d[i].track.limit, limit ? atomic_load(&k->d[i].track.unsent) + limit : 0);
    k->mirror_floor = limit;
    k->mirror = limit != 0;
}

uint64_t mig_blk_redirty(struct mig_blk *k, uint64_t ckpt)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < k->n; i++) {
        struct mig_blk_disk *d = &k->d[i];

        for (uint64_t b = 0; d->tag && b < d->nblocks; b++)
            if (d->tag[b] > ckpt && !(d->dirty[b / 64] >> (b % 64) & 1)) {
                d->dirty[b / 64] |= 1ull << (b % 64);
                atomic_fetch_add(&d->track.unsent, 1);
                n++;
            }
    }
    return n;
}

int mig_blk_write_sums(struct mig_blk *k, struct state_stream *s)
{
    uint64_t sums[STATE_DISKS_MAX][2];

    for (unsigned i = 0; i < k->n; i++)
        state_blk_digest(k->d[i].hash, k->d[i].nblocks, sums[i]);
    state_buf_reset(&k->b);
    state_disksum_encode(&k->b, (const uint64_t(*)[2])sums, k->n);
    return state_write_section(s, STATE_SEC_DISKSUM, NULL, 0, 1, k->b.data, k->b.len);
}

/* ---- destination ---- */

int mig_blk_dst_disks(struct mig_blk *k, const struct mig_machine *mm,
                      const struct state_disk *disks, unsigned n, char *err, size_t errlen)
{
    struct mig_disk ours[STATE_DISKS_MAX];
    unsigned have = mm->ops->disks ? mm->ops->disks(mm->opaque, ours, STATE_DISKS_MAX) : 0;

    if (k->n) { /* a resumed stream: the same disks again */
        for (unsigned i = 0; i < n && i < k->n; i++)
            if (disks[i].slot != k->d[i].info.slot || disks[i].size != k->d[i].info.size)
                n = 0;
        if (n != k->n)
            return gw_fail(err, errlen, -EPROTO, "the resumed stream names other disks");
        return 0;
    }
    if (blk_alloc(k) < 0)
        return gw_fail(err, errlen, -ENOMEM, "out of memory");
    for (unsigned i = 0; i < n; i++) {
        const struct mig_disk *o = NULL;

        for (unsigned j = 0; j < have; j++)
            if (ours[j].slot == disks[i].slot)
                o = &ours[j];
        if (!o)
            return gw_fail(err, errlen, -ENODEV,
                           "the source's disk in slot %u (%llu bytes) has no writable disk in that "
                           "slot here (give this side a -drive of the same size)",
                           disks[i].slot, (unsigned long long)disks[i].size);
        if (o->size != disks[i].size)
            return gw_fail(err, errlen, -EINVAL,
                           "the disk in slot %u: %s here is %llu bytes, the source's %llu: "
                           "give this side an image of the same size",
                           disks[i].slot, o->path, (unsigned long long)o->size,
                           (unsigned long long)disks[i].size);
    }
    if (n != have)
        return gw_fail(err, errlen, -EINVAL,
                       "the source moves %u disks, this side has %u writable ones", n, have);
    for (unsigned i = 0; i < n; i++) {
        struct mig_blk_disk *d = &k->d[i];

        for (unsigned j = 0; j < have; j++)
            if (ours[j].slot == disks[i].slot)
                d->info = ours[j];
        d->nblocks = state_blk_count(d->info.size);
        d->fd = open(d->info.path, O_WRONLY | O_CLOEXEC);
        k->n = i + 1;
        if (d->fd < 0)
            return gw_fail(err, errlen, -errno, "cannot write %s: %s", d->info.path,
                           strerror(errno));
        if (blk_disk_alloc(d, false, false) < 0)
            return gw_fail(err, errlen, -ENOMEM, "out of memory");
    }
    return 0;
}

/* Write len bytes at off (all of them). */
static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
    while (len) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Pages [p0, p1) of kind k at off: zeros allocated, or a hole. */
static int blk_zero_pages(int fd, unsigned kind, uint64_t off, uint64_t len)
{
    static const uint8_t zeros[STATE_BLK_PAGE];
    int mode =
        kind == STATE_BLK_ZERO ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;

    if (fallocate(fd, mode, (off_t)off, (off_t)len) == 0)
        return 0;
    for (uint64_t at = off; at < off + len; at += STATE_BLK_PAGE) { /* no fallocate here */
        int ret = pwrite_all(fd, zeros, STATE_BLK_PAGE, at);
        if (ret < 0)
            return ret;
    }
    return 0;
}

int mig_blk_dst_block(struct mig_blk *k, const struct state_blk_view *v, char *err, size_t errlen)
{
    struct mig_blk_disk *d;
    const uint8_t *data = v->data;
    uint32_t pages = v->blocks * STATE_BLK_PAGES;
    int ret = 0;

    if (v->disk >= k->n)
        return gw_fail(err, errlen, -EPROTO, "a BLOCK for disk %u before its DISKS", v->disk);
    d = &k->d[v->disk];
    memset(k->buf, 0, RUN_BYTES);
    for (uint32_t p = 0; p < pages && ret == 0;) {
        unsigned kind = state_blk_kind(v->map, p);
        uint64_t blk = (v->offset / STATE_BLK_SIZE) + p / STATE_BLK_PAGES;
        uint32_t q = p;

        while (q < pages && state_blk_kind(v->map, q) == kind)
            q++;
        if (kind == STATE_BLK_DATA) {
            memcpy(k->buf + (size_t)p * STATE_BLK_PAGE, data, (size_t)(q - p) * STATE_BLK_PAGE);
            ret = pwrite_all(d->fd, data, (size_t)(q - p) * STATE_BLK_PAGE,
                             v->offset + (uint64_t)p * STATE_BLK_PAGE);
            data += (size_t)(q - p) * STATE_BLK_PAGE;
        } else if (kind == STATE_BLK_ZERO ||
                   (d->written[blk / 8] >> (blk % 8) & 1) /* a hole where data was */) {
            uint64_t off = v->offset + (uint64_t)p * STATE_BLK_PAGE;
            uint64_t len = (uint64_t)(q - p) * STATE_BLK_PAGE;

            if (off + len > d->info.size)
                len = off < d->info.size ? d->info.size - off : 0;
            if (len)
                ret = blk_zero_pages(d->fd, kind, off, len);
        }
        p = q;
    }
    if (ret < 0)
        return gw_fail(err, errlen, ret, "writing %s at %llu: %s", d->info.path,
                       (unsigned long long)v->offset, strerror(-ret));
    for (uint32_t b = 0; b < v->blocks; b++) {
        uint64_t blk = v->offset / STATE_BLK_SIZE + b;

        d->hash[blk] = state_blk_hash(k->buf + (size_t)b * STATE_BLK_SIZE);
        d->written[blk / 8] |= (uint8_t)(1u << (blk % 8));
    }
    return 0;
}

int mig_blk_dst_sums(struct mig_blk *k, const uint64_t (*sums)[2], unsigned n, char *err,
                     size_t errlen)
{
    if (n != k->n)
        return gw_fail(err, errlen, -EPROTO, "DISKSUM for %u disks, DISKS named %u", n, k->n);
    for (unsigned i = 0; i < n; i++) {
        uint64_t ours[2];

        state_blk_digest(k->d[i].hash, k->d[i].nblocks, ours);
        if (ours[0] != sums[i][0] || ours[1] != sums[i][1])
            return gw_fail(err, errlen, -EBADMSG,
                           "the disk in slot %u (%s) does not match the source's digest "
                           "(%016llx%016llx here, %016llx%016llx there): not running it",
                           k->d[i].info.slot, k->d[i].info.path, (unsigned long long)ours[1],
                           (unsigned long long)ours[0], (unsigned long long)sums[i][1],
                           (unsigned long long)sums[i][0]);
        if (fdatasync(k->d[i].fd) < 0)
            return gw_fail(err, errlen, -errno, "fdatasync %s: %s", k->d[i].info.path,
                           strerror(errno));
    }
    return 0;
}
