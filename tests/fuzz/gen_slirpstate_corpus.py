#!/usr/bin/env python3
"""Write the seed corpus of tests/fuzz/fuzz_slirpstate.c (tests/fuzz/corpus/slirpstate).

Each seed is a "netdev-user" section payload (docs/net.md, "Live migration
and user networking"; src/net/net_slirp.c): the netdev id "n0", libslirp's
state version, libslirp 4.7's saved state (no guestfwd socket, the IP id,
16 DHCP leases) and the guest's TCP connections.  Valid ones (no lease, two
leases, three connections) and broken ones (truncated, another id, a newer
libslirp, a guestfwd socket, too many connections).  Seeds are named seed-*.

    tests/fuzz/gen_slirpstate_corpus.py [OUTDIR]
"""

import os
import struct
import sys

GUEST_MAC = bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56])
PEER_MAC = bytes([0x52, 0x55, 10, 0, 2, 2])


def slirp_state(leases=(), ip_id=0x1234, guestfwd=False):
    """libslirp 4.7's slirp_state_save(): a u8 per guestfwd socket (0 ends
    the list), then the "slirp" vmstate: u16 ip_id, 16 x (u16 allocated,
    6-byte MAC), big-endian."""
    out = bytes([42 if guestfwd else 0]) + struct.pack(">H", ip_id)
    for i in range(16):
        mac = leases[i] if i < len(leases) else bytes(6)
        out += struct.pack(">H", 1 if i < len(leases) else 0) + mac
    return out


def conn(guest_ip, guest_port, peer_ip, peer_port):
    return (GUEST_MAC + PEER_MAC + bytes(guest_ip) + bytes(peer_ip) +
            struct.pack(">H", guest_port) + struct.pack(">H", peer_port))


def payload(netdev_id="n0", version=4, state=None, conns=(), nconn=None):
    state = slirp_state() if state is None else state
    out = struct.pack("<H", len(netdev_id)) + netdev_id.encode()
    out += struct.pack("<II", version, len(state)) + state
    out += struct.pack("<I", len(conns) if nconn is None else nconn) + b"".join(conns)
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "slirpstate")
    os.makedirs(outdir, exist_ok=True)
    two = slirp_state([GUEST_MAC, bytes([0x52, 0x54, 0, 0, 0x99, 1])])
    conns = [conn([10, 0, 2, 15], 40000 + i, [10, 0, 2, 2], 80 + i) for i in range(3)]
    seeds = {
        "empty": payload(),
        "two-leases": payload(state=two),
        "connections": payload(state=two, conns=conns),
        "old-version": payload(version=3, state=two),
        "truncated": payload(state=two, conns=conns)[:-5],
        "short-state": payload(state=two[:-1]),
        "other-id": payload(netdev_id="net1"),
        "newer": payload(version=5),
        "guestfwd": payload(state=slirp_state(guestfwd=True)),
        "too-many": payload(conns=conns, nconn=300),
        "off-network": payload(conns=[conn([192, 168, 1, 5], 1, [10, 0, 2, 2], 2)]),
    }
    for name, data in seeds.items():
        with open(os.path.join(outdir, f"seed-{name}"), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
