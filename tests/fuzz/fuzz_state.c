/*
 * libFuzzer target for the state loader (mig_load into the virt board): the input is a
 * whole state stream, loaded into a real machine (tests/fuzz/state_machine.h)
 * through a memfd, exactly as -incoming file: reads a file.
 *
 *   make fuzz-state
 *   build/fuzz/fuzz_state -max_total_time=600 build/fuzz/state tests/fuzz/corpus/state
 *   $(BUILD)/tests/fuzz/replay_state tests/fuzz/corpus/state   # run by tests/run.sh
 *
 * Seeds come from build/.../tests/tools/state_seed (real saves of that
 * machine).  Invariants beyond "no crash, no sanitizer report": a refused
 * load explains itself (non-empty message); an accepted one had a valid
 * checksum, so the machine it produced saves again into a stream that
 * loads again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "state_machine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct virt *fuzz_vm;
static int fuzz_fd = -1;

static int fuzz_load(const uint8_t *data, size_t size, char *err, size_t errlen)
{
    struct state_stream *s;
    int ret;

    if (ftruncate(fuzz_fd, 0) < 0 || pwrite(fuzz_fd, data, size, 0) != (ssize_t)size ||
        lseek(fuzz_fd, 0, SEEK_SET) < 0) {
        perror("fuzz_state: memfd");
        abort();
    }
    s = state_stream_new(fuzz_fd, true);
    if (!s)
        abort();
    ret = mig_load(&fuzz_vm->mm, s, NULL, NULL, err, errlen);
    state_stream_free(s);
    return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";

    if (!fuzz_vm) {
        fuzz_vm = state_machine_new();
        fuzz_fd = memfd_create("state", MFD_CLOEXEC);
        if (!fuzz_vm || fuzz_fd < 0)
            abort();
    }
    if (size > (64u << 20))
        return 0;
    if (fuzz_load(data, size, err, sizeof(err)) < 0) {
        if (!err[0]) {
            fprintf(stderr, "fuzz_state: refused without a reason\n");
            abort();
        }
        return 0;
    }
    /* accepted: the machine must save again into a loadable stream */
    {
        int fd = memfd_create("resave", MFD_CLOEXEC);
        struct state_stream *s = state_stream_new(fd, false);
        uint64_t normal = 0, zero = 0;
        char *buf;
        off_t len;

        if (fd < 0 || !s || mig_save(&fuzz_vm->mm, s, 0, &normal, &zero, NULL) < 0) {
            fprintf(stderr, "fuzz_state: an accepted state does not save again\n");
            abort();
        }
        state_stream_free(s);
        len = lseek(fd, 0, SEEK_END);
        buf = malloc((size_t)len);
        if (!buf || pread(fd, buf, (size_t)len, 0) != len)
            abort();
        close(fd);
        if (fuzz_load((const uint8_t *)buf, (size_t)len, err, sizeof(err)) < 0) {
            fprintf(stderr, "fuzz_state: re-saved state refused: %s\n", err);
            abort();
        }
        free(buf);
    }
    return 0;
}
