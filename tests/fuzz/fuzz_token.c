/*
 * libFuzzer target for the join token parser (godwitd/trust.c): a token
 * is pasted by an operator and may be anything.
 *
 *   make fuzz-token                      # clang, -fsanitize=fuzzer,address,undefined
 *   build/fuzz/fuzz_token -max_total_time=600 build/fuzz/token tests/fuzz/corpus/token
 *   $(BUILD)/tests/fuzz/replay_token tests/fuzz/corpus/token   # gcc, run by tests/run.sh
 *
 * Seeds: tests/fuzz/gen_token_corpus.py (a good token and one of each
 * refusal).  Invariants checked beyond "no crash": a refusal says why and
 * leaves the output zeroed; a success holds version 1, a valid address, a
 * valid fingerprint and a positive expiry.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "godwitd/trust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct trust_token zero;
    struct trust_token tok;
    char text[1024], err[256] = "";

    if (size >= sizeof(text))
        size = sizeof(text) - 1;
    memcpy(text, data, size);
    text[size] = '\0';
    if (trust_token_parse(text, &tok, err, sizeof(err)) == 0) {
        if (tok.version != TRUST_TOKEN_VERSION || tok.expiry <= 0 ||
            !trust_fingerprint_valid(tok.fingerprint) ||
            trust_address_check(tok.address, NULL, 0) < 0)
            abort();
    } else if (err[0] == 0 || memcmp(&tok, &zero, sizeof(tok)) != 0) {
        abort();
    }
    return 0;
}
