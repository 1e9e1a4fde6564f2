/*
 * Helpers shared by the state stream unit tests (test_state_stream.c: buffers,
 * streams, framing; test_state_ram.c: RAM batches and zero runs): a
 * deterministic random source, real files (memfd) with given contents,
 * readers over memory, and a message check.  Header-only, like
 * board_check.h, so each test stays one binary.
 */
#ifndef GODWIT_TESTS_UNIT_MIG_TEST_H
#define GODWIT_TESTS_UNIT_MIG_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board_check.h"
#include "state/state_buf.h"
#include "state/state_format.h"
#include "state/state_stream.h"

#define MIB (1u << 20)

/* ---- helpers ----------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t rng(void)
{
    uint64_t x = rng_state; /* xorshift64: reproducible, incompressible */

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static inline void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rng() >> 32);
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);

    if (!p) {
        perror("malloc");
        exit(2);
    }
    return p;
}

static inline int mem_fd(void)
{
    int fd = memfd_create("test_mig", 0);

    if (fd < 0) {
        perror("memfd_create");
        exit(2);
    }
    return fd;
}

static inline off_t fd_size(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 ? st.st_size : -1;
}

/* A memfd holding n bytes at p, positioned at its start. */
static inline int fd_with(const void *p, size_t n)
{
    int fd = mem_fd();

    if (n && pwrite(fd, p, n, 0) != (ssize_t)n) {
        perror("pwrite");
        exit(2);
    }
    return fd;
}

/* The whole content of a memfd (malloc'd, *len bytes). */
static inline uint8_t *fd_contents(int fd, size_t *len)
{
    off_t n = fd_size(fd);
    uint8_t *p = xmalloc(n > 0 ? (size_t)n : 1);

    if (n > 0 && pread(fd, p, (size_t)n, 0) != n) {
        perror("pread");
        exit(2);
    }
    *len = (size_t)n;
    return p;
}

/* A reader stream over a copy of p. */
struct rd {
    int fd;
    struct state_stream *s;
};

static inline struct rd rd_open(const void *p, size_t n)
{
    struct rd r = {fd_with(p, n), NULL};

    r.s = state_stream_new(r.fd, true);
    if (!r.s)
        exit(2);
    return r;
}

static inline void rd_close(struct rd *r)
{
    state_stream_free(r->s);
    close(r->fd);
}

static inline bool has(const char *msg, const char *word)
{
    return strstr(msg, word) != NULL;
}

#endif
