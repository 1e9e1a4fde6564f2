/*
 * libFuzzer target for the ELF loader (hostile -kernel files), on 1 MiB of
 * RAM at 0x80000000.
 *
 *   make fuzz-elf                        # clang, -fsanitize=fuzzer,address,undefined
 *   build/fuzz/fuzz_elf -max_total_time=600 build/fuzz/elf tests/fuzz/corpus/elf
 *   $(BUILD)/tests/fuzz/replay_elf tests/fuzz/corpus/elf   # gcc, run by tests/run.sh
 *
 * Seeds: tests/fuzz/gen_elf_corpus.py (good files and one of each refusal).
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
