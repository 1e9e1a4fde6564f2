/*
 * SiFive test finisher ("sifive,test0") at 0x100000 on the virt board: the
 * guest powers the machine off, fails with an exit code, or resets it by
 * writing one 32-bit word at offset 0:
 *     0x5555              pass: power off, exit status 0
 *     (code << 16)|0x3333 fail: power off, exit status code
 *     0x7777              system reset
 * Other values and other offsets are ignored; reads return 0.  Guest access
 * sizes are 2 or 4 bytes (1 and 8 fault), as on QEMU.
 *
 * The device has no guest-visible state; it reports requests to the board
 * through host.request, which must not block (the board stops the harts and
 * acts after the current instruction).
 */
#ifndef GODWIT_DEVICES_SIFIVE_TEST_H
#define GODWIT_DEVICES_SIFIVE_TEST_H

#include <stdint.h>

#include "mem/bus.h"

#define SIFIVE_TEST_SIZE 0x1000

#define SIFIVE_TEST_FAIL  0x3333
#define SIFIVE_TEST_PASS  0x5555
#define SIFIVE_TEST_RESET 0x7777

enum sifive_test_request {
    SIFIVE_TEST_REQ_POWEROFF, /* code = exit status */
    SIFIVE_TEST_REQ_RESET,
};

struct sifive_test_host {
    void *opaque;
    void (*request)(void *opaque, enum sifive_test_request req, unsigned code);
};

struct sifive_test {
    struct sifive_test_host host;
};

struct sifive_test *sifive_test_new(const struct sifive_test_host *host);
void sifive_test_free(struct sifive_test *t);

/* Bus callbacks (opaque = struct sifive_test *); map with sizes 2..4. */
extern const struct bus_ops sifive_test_ops;

#endif
