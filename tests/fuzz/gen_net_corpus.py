#!/usr/bin/env python3
"""Write the seed corpus of tests/fuzz/fuzz_net.c (tests/fuzz/corpus/net).

Each seed is the 7-byte control header the target documents (mode, MSS,
csum_start, csum_offset, little-endian) followed by an Ethernet frame: TCP
super-frames over IPv4 (with options), IPv6 and a VLAN tag, UDP with a
partial checksum, and broken ones (truncated headers, a fragment, a bogus
data offset).  Seeds are named seed-*.

    tests/fuzz/gen_net_corpus.py [OUTDIR]
"""

import os
import struct
import sys

MAC_DST = bytes([2, 0, 0, 0, 0, 1])
MAC_SRC = bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56])


def csum(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def ipv4(proto, payload_len, options=b"", frag=0):
    ihl = (20 + len(options)) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + payload_len, 0x1234, frag, 64,
                    proto, 0, bytes([10, 0, 2, 15]), bytes([10, 0, 2, 2])) + options
    return h[:10] + struct.pack("!H", ~csum(h) & 0xFFFF) + h[12:]


def ipv6(nh, payload_len):
    return struct.pack("!IHBB16s16s", 0x60000000, payload_len, nh, 64,
                       bytes.fromhex("fec0" + "00" * 13 + "0f"),
                       bytes.fromhex("fec0" + "00" * 13 + "02"))


def tcp(payload, flags=0x18, doff=8):
    opts = b"\x01\x01\x08\x0a" + b"\0" * 8
    h = struct.pack("!HHIIBBHHH", 40000, 5001, 0xFFFFF000, 1, doff << 4, flags, 501, 0, 0)
    return h + opts[:doff * 4 - 20] + payload


def seed(mode, mss, start, off, frame):
    return struct.pack("<BHHH", mode, mss, start, off) + frame


def seeds():
    pay = bytes((i * 7 + 3) & 0xFF for i in range(5000))
    t = tcp(pay, 0x80 | 0x10 | 0x08 | 0x01)
    eth4 = MAC_DST + MAC_SRC + b"\x08\x00"
    eth6 = MAC_DST + MAC_SRC + b"\x86\xdd"
    vlan = MAC_DST + MAC_SRC + b"\x81\x00\x00\x05\x08\x00"
    yield "tso-ipv4", seed(1, 1448, 34, 16, eth4 + ipv4(6, len(t)) + t)
    yield "tso-ipv6", seed(1, 1428, 54, 16, eth6 + ipv6(6, len(t)) + t)
    yield "tso-vlan", seed(3, 1448, 38, 16, vlan + ipv4(6, len(t)) + t)
    yield "tso-ipopts", seed(1, 536, 38, 16, eth4 + ipv4(6, len(t), b"\x01\x01\x01\x00") + t)
    small = tcp(b"hello", 0x18, 5)
    yield "tso-small", seed(3, 1448, 34, 16, eth4 + ipv4(6, len(small)) + small)
    u = struct.pack("!HHHH", 1234, 53, 8 + 33, 0) + bytes(range(1, 34))
    yield "csum-udp", seed(2, 0, 34, 6, eth4 + ipv4(17, len(u)) + u)
    yield "csum-udp6", seed(2, 0, 54, 6, eth6 + ipv6(17, len(u)) + u)
    yield "tso-fragment", seed(1, 1448, 34, 16, eth4 + ipv4(6, len(t), frag=0x2000) + t)
    yield "tso-bad-doff", seed(1, 1448, 34, 16, eth4 + ipv4(6, 40) + tcp(b"", 0x10, 15))
    yield "tso-truncated", seed(1, 1448, 34, 16, eth4 + ipv4(6, 40)[:12])
    yield "csum-offsets-out", seed(2, 0, 0xFFFF, 0xFFFF, eth4 + ipv4(17, len(u)) + u)
    yield "arp", seed(3, 1448, 14, 6, MAC_DST + MAC_SRC + b"\x08\x06" + b"\0" * 28)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "net")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
