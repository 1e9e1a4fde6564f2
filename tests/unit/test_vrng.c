/*
 * Unit tests for virtio-rng: buffers come back full of random bytes (not
 * zero, different each time), the used length says how many, a request
 * is capped at VRNG_MAX_REQUEST, written pages are dirty, and a file
 * source (-object rng-random,filename=) is read.
 */
#include <stdlib.h>

#include "board_check.h"
#include "virtio/virtio_rng.h"
#include "virtq_driver.h"

#define F_BASE (VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX))

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int main(void)
{
    struct gmem *mem = gmem_new(TD_RAM_BASE, TD_RAM_SIZE);
    struct vrng_config cfg = {.id = "rng0"};
    static uint8_t a[4096], b[4096];
    struct td_buf buf[2];
    struct virtio_dev *d;
    struct td t;
    char err[200];
    uint32_t id, len;

    if (!mem)
        return 1;
    d = vrng_new(mem, &cfg, err, sizeof(err));
    if (!d)
        return 1;
    td_attach(&t, mem, d);
    CHECK_EQ(td_rd(&t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG, "device ID 4");
    td_setup(&t, F_BASE, 64);

    buf[0] = (struct td_buf){TD_DATA, 4096, true};
    td_clear_dirty(mem);
    td_add(&t, buf, 1, false);
    td_kick(&t, 0);
    CHECK(td_used(&t, &id, &len) && len == 4096, "4 KiB request answered in full");
    CHECK(gmem_read(mem, TD_DATA, a, 4096) == 0 && !all_zero(a, 4096), "not all zero");
    CHECK(td_dirty(mem, TD_DATA) && td_dirty(mem, TD_USED), "buffer and used ring dirty");
    CHECK(t.irq, "interrupt");
    td_ack(&t);
    td_add(&t, buf, 1, false);
    td_kick(&t, 0);
    CHECK(td_used(&t, &id, &len) && gmem_read(mem, TD_DATA, b, 4096) == 0 && memcmp(a, b, 4096),
          "a second read differs");

    buf[0] = (struct td_buf){TD_DATA, 16, true};
    buf[1] = (struct td_buf){TD_DATA + 0x2000, 16, true};
    td_add(&t, buf, 2, false);
    td_kick(&t, 0);
    CHECK(td_used(&t, &id, &len) && len == 32, "two buffers: 32 bytes");

    buf[0] = (struct td_buf){TD_DATA, 0x30000, true};
    buf[1] = (struct td_buf){TD_DATA + 0x30000, 0x30000, true};
    td_add(&t, buf, 2, false);
    td_kick(&t, 0);
    CHECK(td_used(&t, &id, &len) && len == VRNG_MAX_REQUEST, "capped at %u bytes",
          VRNG_MAX_REQUEST);
    CHECK(vrng_stats(d)->requests == 4 && vrng_stats(d)->errors == 0, "statistics");
    virtio_dev_free(d);

    cfg.filename = "/dev/zero"; /* a file source is read as it is */
    d = vrng_new(mem, &cfg, err, sizeof(err));
    CHECK(d != NULL, "rng from a file");
    if (d) {
        td_attach(&t, mem, d);
        td_setup(&t, F_BASE, 64);
        memset(mem->host + (TD_DATA - TD_RAM_BASE), 0xff, 64);
        buf[0] = (struct td_buf){TD_DATA, 64, true};
        td_add(&t, buf, 1, false);
        td_kick(&t, 0);
        CHECK(td_used(&t, &id, &len) && len == 64 && gmem_read(mem, TD_DATA, a, 64) == 0 &&
                  all_zero(a, 64),
              "bytes come from the file");
        virtio_dev_free(d);
    }
    cfg.filename = "/nonexistent/rng";
    CHECK(vrng_new(mem, &cfg, err, sizeof(err)) == NULL && strstr(err, "/nonexistent/rng"),
          "a missing file is refused with its name");
    gmem_free(mem);
    return board_check_done();
}
