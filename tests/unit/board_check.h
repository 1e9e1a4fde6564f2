/*
 * Minimal check helpers for the board/device unit tests: each CHECK prints
 * one "ok"/"FAIL" line; board_check_done() prints "N passed, N failed" and
 * returns the exit status.  Header-only so every test binary stays one file.
 */
#ifndef GODWIT_TESTS_BOARD_CHECK_H
#define GODWIT_TESTS_BOARD_CHECK_H

#include <inttypes.h>
#include <stdio.h>

struct board_check {
    unsigned passed, failed;
};

static struct board_check board_check_counts;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            board_check_counts.passed++;                                                           \
            printf("ok   ");                                                                       \
        } else {                                                                                   \
            board_check_counts.failed++;                                                           \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
    } while (0)

#define CHECK_EQ(got, want, ...)                                                                   \
    do {                                                                                           \
        uint64_t got_ = (uint64_t)(got), want_ = (uint64_t)(want);                                 \
        CHECK(got_ == want_, __VA_ARGS__);                                                         \
        if (got_ != want_)                                                                         \
            printf("     got 0x%" PRIx64 ", want 0x%" PRIx64 "\n", got_, want_);                   \
    } while (0)

static inline int board_check_done(void)
{
    printf("%u passed, %u failed\n", board_check_counts.passed, board_check_counts.failed);
    return board_check_counts.failed ? 1 : 0;
}

#endif
