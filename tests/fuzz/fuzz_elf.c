/*
 * libFuzzer target for the ELF loader (hostile -kernel files).  Not built
 * by the Makefile yet; run by hand with clang:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *     -o build/fuzz_elf tests/fuzz/fuzz_elf.c src/machine/elf.c \
 *     src/mem/gmem.c src/common/util.c
 *   build/fuzz_elf -max_total_time=60 tests/fuzz/out/elf
 * Invariants checked beyond "no crash": a refusal says why, and a success
 * reports a non-empty loaded range inside RAM with the entry in RAM.
 */
#include <stdint.h>
#include <stdlib.h>

#include "machine/elf.h"

#define RAM_BASE 0x80000000ull
#define RAM_SIZE (1ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gmem *mem;
    struct elf_info info;
    char err[256] = "";

    if (!mem)
        mem = gmem_new(RAM_BASE, RAM_SIZE);
    if (!mem)
        abort();
    if (elf_load(mem, data, size, &info, err, sizeof(err)) == 0) {
        if (info.low < RAM_BASE || info.high > RAM_BASE + RAM_SIZE || info.low >= info.high ||
            info.entry < RAM_BASE || info.entry >= RAM_BASE + RAM_SIZE)
            abort();
    } else if (err[0] == 0) {
        abort();
    }
    return 0;
}
