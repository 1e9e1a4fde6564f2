#!/usr/bin/env python3
"""Write the seed corpus of tests/fuzz/fuzz_virtq.c (tests/fuzz/corpus/virtq).

Each seed is a well-formed (or deliberately broken) queue for one of the
target's devices, so the fuzzer starts from inputs that reach deep into the
walker and the request handlers.  The layout is the one fuzz_virtq.c
documents: a 24-byte header, register ops, then a RAM image.  Seeds are
named seed-*; files the fuzzer found and we kept have other names.

    tests/fuzz/gen_virtq_corpus.py [OUTDIR]
"""

import os
import struct
import sys

BASE = 0x80000000
DESC, AVAIL, USED, IND, DATA = 0x0000, 0x0400, 0x0800, 0x0C00, 0x1000
NEXT, WRITE, INDIRECT = 1, 2, 4
SINK, BLK, RNG = 0, 1, 2
F_EVT, F_IND, F_RO, F_NO_OK, F_DEV, F_SIGNALLED = 1, 2, 4, 8, 16, 32
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WZ = 0, 1, 4, 8, 11, 13


class Ram:
    def __init__(self, size=0x3000):
        self.b = bytearray(size)

    def put(self, off, data):
        if off + len(data) > len(self.b):
            self.b.extend(bytes(off + len(data) - len(self.b)))
        self.b[off:off + len(data)] = data

    def desc(self, table, i, off, length, flags=0, nxt=0):
        self.put(table + 16 * i, struct.pack("<QIHH", BASE + off, length, flags, nxt))

    def avail(self, slot, head, num=16):
        self.put(AVAIL + 4 + 2 * (slot % num), struct.pack("<H", head))


def seed(device, flags, ram, avail_idx, num=16, start=0, desc=DESC, avail=AVAIL, used=USED,
         notifies=1, ops=()):
    hdr = struct.pack("<BBHHHIIIBBH", device, flags, num, avail_idx, start, desc, avail, used,
                      notifies - 1, len(ops), 0)
    body = b"".join(struct.pack("<HBBI", off, size_log2, w, val) for off, size_log2, w, val in ops)
    return hdr + body + bytes(ram.b).rstrip(b"\0")  # the target zero-fills the rest


def blk_req(ram, head, hdr_off, typ, sector, data_len, data_write, status_off, payload=b""):
    """A three-descriptor virtio-blk request at descriptors head..head+2."""
    ram.put(hdr_off, struct.pack("<IIQ", typ, 0, sector))
    if payload:
        ram.put(hdr_off + 0x10, payload)
    ram.desc(DESC, head, hdr_off, 16, NEXT, head + 1)
    if data_len:
        ram.desc(DESC, head + 1, hdr_off + 0x10, data_len, NEXT | (WRITE if data_write else 0),
                 head + 2)
        ram.desc(DESC, head + 2, status_off, 1, WRITE)
    else:
        ram.desc(DESC, head + 1, status_off, 1, WRITE)


def seeds():
    out = {}

    r = Ram()
    r.desc(DESC, 0, DATA, 16, NEXT, 1)
    r.desc(DESC, 1, DATA + 0x10, 32, NEXT, 2)
    r.desc(DESC, 2, DATA + 0x100, 64, WRITE | NEXT, 3)
    r.desc(DESC, 3, DATA + 0x200, 8, WRITE)
    r.avail(0, 0)
    out["seed-sink-direct"] = seed(SINK, 0, r, 1)

    r = Ram()
    for i in range(3):
        r.desc(IND, i, DATA + 0x100 * i, 48, (WRITE if i else 0) | (NEXT if i < 2 else 0), i + 1)
    r.desc(DESC, 0, IND, 48, INDIRECT)
    r.avail(0, 0)
    out["seed-sink-indirect"] = seed(SINK, F_IND, r, 1)

    r = Ram()
    for i in range(4):
        r.desc(DESC, i, DATA + 0x40 * i, 16, WRITE)
        r.avail(i, i)
    r.put(AVAIL + 4 + 2 * 16, struct.pack("<H", 2))  # used_event
    out["seed-sink-event-idx"] = seed(SINK, F_EVT, r, 4, notifies=2)
    out["seed-sink-event-idx-quiet"] = seed(SINK, F_EVT | F_SIGNALLED, r, 4)
    r.put(AVAIL, struct.pack("<H", 1))  # VIRTQ_AVAIL_F_NO_INTERRUPT
    out["seed-sink-no-interrupt"] = seed(SINK, F_SIGNALLED, r, 4)

    r = Ram()
    for i in range(3):
        r.desc(DESC, i, DATA + 0x40 * i, 16, WRITE)
    for s in range(3):
        r.avail(65534 + s, s)
    out["seed-sink-wrap"] = seed(SINK, F_EVT, r, (65534 + 3) & 0xFFFF, start=65534)

    r = Ram()
    r.desc(DESC, 0, DATA, 16, NEXT, 1)
    r.desc(DESC, 1, DATA, 16, NEXT, 0)
    r.avail(0, 0)
    out["seed-sink-loop"] = seed(SINK, 0, r, 1)

    r = Ram()
    r.desc(IND, 0, DATA, 16, NEXT, 1)
    r.desc(IND, 1, IND, 32, INDIRECT)
    r.desc(DESC, 0, IND, 32, INDIRECT)
    r.avail(0, 0)
    out["seed-sink-nested-indirect"] = seed(SINK, F_IND, r, 1)

    r = Ram()
    r.desc(DESC, 0, DATA, 16)
    r.avail(0, 0)
    out["seed-sink-avail-jump"] = seed(SINK, 0, r, 40)
    out["seed-sink-rings-outside"] = seed(SINK, 0, r, 1, desc=0x100000, used=0xFFFFFFF0)
    out["seed-sink-odd-size"] = seed(SINK, 0, r, 1, num=12)

    r = Ram()
    r.desc(DESC, 0, DATA, 16, WRITE)
    r.avail(0, 0)
    ops = [(0x070, 2, 1, 0),  # reset
           (0x070, 2, 1, 3), (0x034, 2, 0, 0), (0x100, 0, 0, 0), (0x060, 2, 0, 0),
           (0x064, 2, 1, 3), (0x030, 2, 1, 1), (0x044, 2, 0, 0)]
    out["seed-sink-register-ops"] = seed(SINK, 0, r, 1, ops=ops)

    # virtio-blk: write, read back, flush, get-id in one go
    r = Ram(0x4000)
    blk_req(r, 0, DATA, T_OUT, 8, 1024, False, DATA + 0xF00, payload=bytes(range(256)) * 4)
    blk_req(r, 3, DATA + 0x800, T_IN, 8, 1024, True, DATA + 0xF01)
    blk_req(r, 6, DATA + 0x1800, T_FLUSH, 0, 0, False, DATA + 0xF02)
    blk_req(r, 8, DATA + 0x1900, T_GET_ID, 0, 20, True, DATA + 0xF03)
    for s, h in enumerate((0, 3, 6, 8)):
        r.avail(s, h)
    out["seed-blk-rw"] = seed(BLK, F_DEV | F_EVT | F_IND, r, 4)
    out["seed-blk-ro"] = seed(BLK, F_DEV | F_RO, r, 4)

    r = Ram(0x4000)
    ranges = struct.pack("<QII", 0, 8, 0) + struct.pack("<QII", 64, 16, 0)
    blk_req(r, 0, DATA, T_DISCARD, 0, 32, False, DATA + 0xF00, payload=ranges)
    wz = struct.pack("<QII", 128, 8, 1)
    blk_req(r, 3, DATA + 0x800, T_WZ, 0, 16, False, DATA + 0xF01, payload=wz)
    blk_req(r, 6, DATA + 0x1000, T_OUT, 2040, 4096, False, DATA + 0xF02, payload=bytes(4096))
    r.avail(0, 0)
    r.avail(1, 3)
    r.avail(2, 6)
    out["seed-blk-discard-zeroes"] = seed(BLK, F_DEV, r, 3)

    r = Ram(0x4000)
    for i in range(4):  # a read split over an indirect table of 4 pieces
        r.desc(IND, i, DATA + 0x1000 + 0x80 * i if i else DATA, 16 if i == 0 else 128,
               (WRITE if i else 0) | NEXT, i + 1)
    r.desc(IND, 4, DATA + 0xF00, 1, WRITE)
    r.put(DATA, struct.pack("<IIQ", T_IN, 0, 3))
    r.desc(DESC, 0, IND, 80, INDIRECT)
    r.avail(0, 0)
    out["seed-blk-indirect-read"] = seed(BLK, F_IND | F_DEV, r, 1)

    r = Ram(0x3000)
    r.desc(DESC, 0, DATA, 4, NEXT, 1)  # header split in two
    r.desc(DESC, 1, DATA + 4, 12, NEXT, 2)
    r.desc(DESC, 2, DATA + 0x100, 1, WRITE)
    r.put(DATA, struct.pack("<IIQ", T_IN, 0, 0))
    r.avail(0, 0)
    out["seed-blk-split-header"] = seed(BLK, 0, r, 1)

    r = Ram()
    r.desc(DESC, 0, DATA, 64, WRITE | NEXT, 1)
    r.desc(DESC, 1, DATA + 0x100, 4096 - 0x100, WRITE)
    r.avail(0, 0)
    out["seed-rng"] = seed(RNG, F_EVT, r, 1)
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "virtq")
    os.makedirs(outdir, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds()), outdir))


if __name__ == "__main__":
    main()
