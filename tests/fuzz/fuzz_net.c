/*
 * Fuzz target for the host-side offloads (net/net_offload.c), which read
 * frames the guest wrote: TCP segmentation, checksum completion and
 * checksum verification on arbitrary bytes.
 *
 * Input: byte 0 selects what to run (bit 0: TSO, bit 1: checksum
 * completion, always: verification), bytes 1-2 the MSS, 3-4 csum_start,
 * 5-6 csum_offset (little-endian, as in a virtio_net_hdr), the rest is
 * the frame.  Invariants checked (abort on violation): every segment TSO
 * emits fits NET_TSO_SEG_MAX, is no longer than the headers plus the MSS,
 * and carries valid checksums; the count returned is the count emitted;
 * checksum completion never accepts offsets outside the frame.  Corpus:
 * tests/fuzz/corpus/net (gen_net_corpus.py).
 *
 *   make fuzz-net                        # clang, -fsanitize=fuzzer,address,undefined
 *   build/fuzz/fuzz_net -max_total_time=600 build/fuzz/net tests/fuzz/corpus/net
 *   $(BUILD)/tests/fuzz/replay_net tests/fuzz/corpus/net   # gcc, run by tests/run.sh
 */
#include <stdlib.h>
#include <string.h>

#include "net/net_offload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_net_out {
    size_t mss, frames, bytes, max_len;
};

static void fuzz_net_emit(void *opaque, const uint8_t *seg, size_t len)
{
    struct fuzz_net_out *o = opaque;

    if (len > NET_TSO_SEG_MAX || !net_csum_verify(seg, len) || o->mss == 0)
        abort();
    if (len > o->max_len)
        o->max_len = len;
    o->frames++;
    o->bytes += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t frame[70000], seg[NET_TSO_SEG_MAX];
    struct fuzz_net_out out = {0};
    size_t len;
    unsigned mss, start, off;
    int n;

    if (size < 7 || size - 7 > sizeof(frame))
        return 0;
    mss = (unsigned)(data[1] | data[2] << 8);
    start = (unsigned)(data[3] | data[4] << 8);
    off = (unsigned)(data[5] | data[6] << 8);
    len = size - 7;
    memcpy(frame, data + 7, len);

    (void)net_csum_verify(frame, len);
    if (data[0] & 1) {
        out.mss = mss;
        n = net_tso_segment(frame, len, mss, seg, fuzz_net_emit, &out);
        if (n >= 0 && (size_t)n != out.frames)
            abort();
        if (n > 0 && out.max_len > len && out.frames == 1)
            abort(); /* one segment is never longer than the frame */
    }
    if (data[0] & 2) {
        if (net_csum_complete(frame, len, start, off) == 0 &&
            (start > len || off + 2 > len - start))
            abort(); /* accepted offsets outside the frame */
    }
    return 0;
}
