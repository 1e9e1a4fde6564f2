/*
 * Fuzz target for a -netdev user backend's section in a state stream (the
 * "netdev-user" component, net_backend_load in net/net_slirp.c): the input
 * is the section's payload, loaded into a fresh user backend "n0" with no
 * host forwards (nothing is bound on the host).  Part of it is handed to
 * libslirp's own state loader, which checks little: this target is what
 * keeps godwit's checks in front of it honest.
 *
 * Invariants beyond "no crash, no sanitizer report": a refused payload
 * explains itself (non-empty message); an accepted one was consumed to its
 * last byte, runs (net_backend_loaded: the guest's connections poked), and
 * saves again into a payload that loads again.  Corpus:
 * tests/fuzz/corpus/slirpstate (gen_slirpstate_corpus.py).
 *
 *   make fuzz-slirpstate                 # clang, -fsanitize=fuzzer,address,undefined
 *   build/fuzz/fuzz_slirpstate -max_total_time=600 build/fuzz/slirpstate \
 *       tests/fuzz/corpus/slirpstate
 *   $(BUILD)/tests/fuzz/replay_slirpstate tests/fuzz/corpus/slirpstate   # run by tests/run.sh
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "net/net.h"
#include "state/state_buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct net_backend *fuzz_open(void)
{
    struct net_opts o;
    char err[300];
    struct net_backend *nb;

    if (net_parse("user,id=n0,ipv6=off", &o, err, sizeof(err)) < 0)
        abort();
    o.hostfwd_later = true;
    nb = net_backend_open(&o, err, sizeof(err));
    if (!nb) {
        fprintf(stderr, "fuzz_slirpstate: %s\n", err);
        abort();
    }
    return nb;
}

/* Load a payload into a fresh backend: 0 or the error, its reason in msg.
 * resave: an accepted payload then runs, saves, and that save must load. */
static int fuzz_load(const uint8_t *data, size_t size, char *msg, size_t msglen, bool resave)
{
    struct net_backend *nb = fuzz_open();
    struct state_buf r, b;
    char again[200];
    int ret;

    state_buf_reader(&r, data, size);
    ret = net_backend_load(nb, &r, NET_STATE_VERSION);
    if (ret == 0)
        ret = state_buf_expect_end(&r, "netdev-user");
    snprintf(msg, msglen, "%s", state_buf_msg(&r));
    if (ret == 0 && resave) {
        net_backend_loaded(nb); /* no peer: the pokes are dropped, counted */
        state_buf_init(&b);
        net_backend_save(nb, &b);
        if (state_buf_error(&b) || fuzz_load(b.data, b.len, again, sizeof(again), false) < 0) {
            fprintf(stderr, "fuzz_slirpstate: an accepted state does not load again: %s%s\n",
                    state_buf_msg(&b), again);
            abort();
        }
        state_buf_fini(&b);
    }
    net_backend_free(nb);
    return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char msg[200] = "";

    if (size > 65536)
        return 0;
    if (fuzz_load(data, size, msg, sizeof(msg), true) < 0 && !msg[0]) {
        fprintf(stderr, "fuzz_slirpstate: refused without a reason\n");
        abort();
    }
    return 0;
}
