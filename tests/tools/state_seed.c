/*
 * Seeds for the state-loader fuzz corpus: runs the fuzz target's machine
 * (tests/fuzz/state_machine.h) for a while and saves its state, so the
 * seeds carry the right configuration hash and real component sections.
 *
 *   state_seed OUT.state [INSNS] [--live|--recover]   (default 2,000,000 instructions per hart)
 *
 * --live writes what a live migration sends instead (header flag
 * STATE_F_LIVE, with a name and a UUID): a first pass of RAM, a ROUND
 * marker, a second pass of some pages, a ZERO run for a page that "became
 * zero", the components, EOF.  --recover the same as a recoverable stream
 * (flag STATE_F_RECOVER): a SESSION after the configuration and a
 * CHECKPOINT after the first pass and before the ROUND marker.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mem/gmem.h"
#include "../fuzz/state_machine.h"
#include "state/state_format.h"

/* The sections of a live stream, as src/migration/mig_live.c sends them. */
static int write_live(struct virt *vm, struct state_stream *s, bool recover)
{
    struct state_header h = {.version = STATE_FORMAT_VERSION,
                             .page_size = STATE_PAGE_SIZE,
                             .flags = STATE_F_LIVE | (recover ? STATE_F_RECOVER : 0),
                             .name = "seed-live"};
    struct state_ram_encoder enc;
    struct state_zero_encoder zero;
    struct state_buf b;
    char *cfg = virt_state_config_text(vm);
    uint32_t pages[STATE_RAM_BATCH], n = 0, first_nonzero = UINT32_MAX;

    if (!cfg || state_ram_encoder_init(&enc) < 0 ||
        state_uuid_parse("5eed0000-0000-4000-8000-00000000011e", h.uuid) < 0)
        return -1;
    h.config_hash = virt_state_config_hash(vm);
    state_write_header(s, &h);
    state_write_section(s, STATE_SEC_CONFIG, "config", 0, 1, cfg, strlen(cfg));
    free(cfg);
    if (recover)
        state_write_session(s, 0x5eed5e55, 0);
    state_buf_init(&b);
    for (uint64_t p = 0; p < vm->mem->npages; p++) {
        if (gmem_page_is_zero(vm->mem->host + p * GMEM_PAGE_SIZE))
            continue;
        if (first_nonzero == UINT32_MAX)
            first_nonzero = (uint32_t)p;
        pages[n++] = (uint32_t)p;
        if (n == STATE_RAM_BATCH || p + 1 == vm->mem->npages) {
            state_buf_reset(&b);
            state_ram_encode(&enc, vm->mem->host, pages, n, n % 2, &b);
            state_write_section(s, STATE_SEC_RAM, NULL, 0, 1, b.data, b.len);
            n = 0;
        }
    }
    if (n) {
        state_buf_reset(&b);
        state_ram_encode(&enc, vm->mem->host, pages, n, false, &b);
        state_write_section(s, STATE_SEC_RAM, NULL, 0, 1, b.data, b.len);
    }
    if (recover)
        state_write_checkpoint(s, 1);
    state_write_round(s, 1);
    if (first_nonzero != UINT32_MAX) {
        /* round 2: resend the first page, then say a far page became zero */
        pages[0] = first_nonzero;
        state_buf_reset(&b);
        state_ram_encode(&enc, vm->mem->host, pages, 1, true, &b);
        state_write_section(s, STATE_SEC_RAM, NULL, 0, 1, b.data, b.len);
    }
    state_zero_encoder_init(&zero);
    state_zero_add(&zero, s, (uint32_t)(vm->mem->npages - 1));
    state_zero_flush(&zero, s);
    state_zero_encoder_fini(&zero);
    if (recover)
        state_write_checkpoint(s, 2);
    state_buf_fini(&b);
    state_ram_encoder_fini(&enc);
    virt_state_save_components(vm, s);
    return state_write_eof(s);
}

int main(int argc, char **argv)
{
    struct virt *vm;
    struct state_stream *s;
    uint64_t normal = 0, zero = 0;
    unsigned long long insns = argc > 2 ? strtoull(argv[2], NULL, 0) : 2000000ull;
    bool recover = argc > 3 && !strcmp(argv[3], "--recover");
    bool live = recover || (argc > 3 && !strcmp(argv[3], "--live"));
    int fd;

    if (argc < 2) {
        fprintf(stderr, "usage: state_seed OUT.state [INSNS] [--live|--recover]\n");
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
    s = fd >= 0 ? state_stream_new(fd, false) : NULL;
    if (!s ||
        (live ? write_live(vm, s, recover) : mig_save(&vm->mm, s, 0, &normal, &zero, NULL)) < 0) {
        fprintf(stderr, "state_seed: %s: %s\n", argv[1], s ? state_stream_msg(s) : "cannot open");
        return 1;
    }
    state_stream_free(s);
    close(fd);
    printf("state_seed: %s: %llu pages, %llu zero\n", argv[1], (unsigned long long)normal,
           (unsigned long long)zero);
    virt_free(vm);
    return 0;
}
