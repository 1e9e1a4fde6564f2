/*
 * Seeds for the state-loader fuzz corpus: runs the fuzz target's machine
 * (tests/fuzz/state_machine.h) for a while and saves its state, so the
 * seeds carry the right configuration hash and real component sections.
 *
 *   state_seed OUT.state [INSNS]   (default 2,000,000 instructions per hart)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../fuzz/state_machine.h"

int main(int argc, char **argv)
{
    struct virt *vm;
    struct mig_stream *s;
    struct virt_save_stats st;
    unsigned long long insns = argc > 2 ? strtoull(argv[2], NULL, 0) : 2000000ull;
    int fd;

    if (argc < 2) {
        fprintf(stderr, "usage: state_seed OUT.state [INSNS]\n");
        return 2;
    }
    vm = state_machine_new();
    if (!vm)
        return 1;
    for (unsigned long long done = 0; done < insns; done += 10000)
        for (unsigned i = 0; i < vm->nharts; i++) {
            clint_update(vm->clint);
            if (rv_hart_run(vm->harts[i], 10000) == RV_EXIT_FATAL)
                break;
        }
    fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    s = fd >= 0 ? mig_stream_new(fd, false) : NULL;
    if (!s || virt_state_save(vm, s, &st, NULL) < 0) {
        fprintf(stderr, "state_seed: %s: %s\n", argv[1], s ? mig_stream_msg(s) : "cannot open");
        return 1;
    }
    mig_stream_free(s);
    close(fd);
    printf("state_seed: %s: %llu pages, %llu zero\n", argv[1], (unsigned long long)st.pages_normal,
           (unsigned long long)st.pages_zero);
    virt_free(vm);
    return 0;
}
