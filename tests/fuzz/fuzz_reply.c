/*
 * libFuzzer target for the destination's replies as the source reads them
 * (migration/mig_proto.c): a 24-byte control message, and for ERROR the
 * reason and its check that follow.  The destination may be anything that
 * listens on the port.
 *
 *   make fuzz-reply                      # clang, -fsanitize=fuzzer,address,undefined
 *   build/fuzz/fuzz_reply -max_total_time=600 build/fuzz/reply tests/fuzz/corpus/reply
 *   $(BUILD)/tests/fuzz/replay_reply tests/fuzz/corpus/reply   # gcc, run by tests/run.sh
 *
 * The first byte picks the mode: even, the next 8 bytes are an ERROR's
 * value and the rest is the tail that followed it on the wire; odd, the rest is a reason that is
 * encoded as an honest ERROR and decoded again (so the check passes and the sanitiser is reached
 * without forging XXH3).  Invariants beyond "no crash": a decoded reason is at most MIG_REASON_MAX
 * bytes, NUL-terminated, well-formed UTF-8 with no control character; an honest reason made of
 * printable ASCII comes back unchanged (cut at MIG_REASON_MAX).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migration/mig_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether s is well-formed UTF-8 without C0/C1 controls or DEL. */
static int reply_clean(const char *s)
{
    const uint8_t *p = (const uint8_t *)s;

    while (*p) {
        size_t len = *p < 0x80 ? 1 : *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc2 ? 2 : 0;

        if (!len || *p > 0xf4 || (len == 1 && (*p < 0x20 || *p == 0x7f)) ||
            (len == 2 && p[0] == 0xc2 && p[1] < 0xa0))
            return 0;
        for (size_t i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        p += len;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char reason[MIG_REASON_MAX + 1], in[MIG_REASON_MAX + 64];
    uint8_t m[MIG_ERROR_MAX];
    uint32_t type;
    uint64_t value;
    size_t n, len, printable = 1;

    if (size < 1)
        return 0;
    if (data[0] & 1) { /* an honest ERROR around these bytes */
        size = size - 1 < sizeof(in) - 1 ? size - 1 : sizeof(in) - 1;
        memcpy(in, data + 1, size);
        in[size] = '\0';
        for (size_t i = 0; i < strlen(in); i++)
            printable &= in[i] >= 0x20 && in[i] < 0x7f;
        n = mig_msg_error_encode(m, 22, in);
        if (n > sizeof(m) || mig_msg_decode(m, MIG_MAGIC_REPLY, &type, &value) < 0 ||
            type != MIG_MSG_ERROR || mig_msg_reason_len(value, &len) < 0 ||
            n != MIG_MSG_LEN + len + (len ? MIG_REASON_CHECK : 0) ||
            mig_msg_reason_decode(value, m + MIG_MSG_LEN, n - MIG_MSG_LEN, reason, sizeof(reason)) <
                0)
            abort(); /* what we send, we read */
        if (strlen(reason) > MIG_REASON_MAX || !reply_clean(reason))
            abort();
        if (printable && strncmp(reason, in, MIG_REASON_MAX) != 0)
            abort();
        return 0;
    }
    /* any value (its message encoded honestly: the 24 bytes have their
     * own check), then any tail */
    if (size < 9)
        return 0;
    value = gw_get_le(data + 1, 8);
    data += 9;
    size -= 9;
    mig_msg_encode(m, MIG_MAGIC_REPLY, MIG_MSG_ERROR, value);
    if (mig_msg_decode(m, MIG_MAGIC_REPLY, &type, &value) < 0 || type != MIG_MSG_ERROR)
        abort();
    if (mig_msg_reason_len(value, &len) < 0)
        return 0; /* over the bound: refused before a byte is read */
    memset(reason, 'x', sizeof(reason));
    if (mig_msg_reason_decode(value, data, size, reason, sizeof(reason)) == 0 &&
        (size != (len ? len + MIG_REASON_CHECK : 0) || strlen(reason) > MIG_REASON_MAX ||
         !reply_clean(reason)))
        abort();
    return 0;
}
