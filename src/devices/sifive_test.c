/* SiFive test finisher; see sifive_test.h. */
#include "devices/sifive_test.h"

#include <stdlib.h>

struct sifive_test *sifive_test_new(const struct sifive_test_host *host)
{
    struct sifive_test *t = calloc(1, sizeof(*t));

    if (t && host)
        t->host = *host;
    return t;
}

void sifive_test_free(struct sifive_test *t)
{
    free(t);
}

static int sifive_test_read(void *opaque, uint64_t off, unsigned size, uint64_t *val)
{
    (void)opaque;
    (void)off;
    (void)size;
    *val = 0;
    return 0;
}

static int sifive_test_write(void *opaque, uint64_t off, unsigned size, uint64_t val)
{
    struct sifive_test *t = opaque;

    (void)size;
    if (off != 0 || !t->host.request)
        return 0;
    switch (val & 0xffff) {
    case SIFIVE_TEST_FAIL:
        t->host.request(t->host.opaque, SIFIVE_TEST_REQ_POWEROFF, (unsigned)((val >> 16) & 0xffff));
        break;
    case SIFIVE_TEST_PASS: t->host.request(t->host.opaque, SIFIVE_TEST_REQ_POWEROFF, 0); break;
    case SIFIVE_TEST_RESET: t->host.request(t->host.opaque, SIFIVE_TEST_REQ_RESET, 0); break;
    default: /* ignored, as on QEMU */ break;
    }
    return 0;
}

const struct bus_ops sifive_test_ops = {sifive_test_read, sifive_test_write};
