#!/usr/bin/env python3
"""announce-self on godwit-vm with the Debian riscv64 guest on a TAP device.

One VM, started with -S in a private network namespace (a bridge
10.0.3.1/24 and a TAP device, as tests/linux/net_test.py builds it), with
  -netdev tap,id=n0,... -device virtio-net-device,netdev=n0,id=nic0,mac=52:54:00:aa:bb:cc
  -qmp unix:SOCK,server=on,wait=off
Frames leaving the VM are captured on the TAP device with an AF_PACKET
socket (a helper run inside the namespace), and checked:

  rarp-no-driver   announce-self (rounds 3, initial 200, step 200) while the
                   VM is still in prelaunch: nothing is sent until `cont`
                   (the loop runs rounds only while the harts do), then
                   three RARP broadcasts (ethertype 0x8035, opcode 3,
                   source and sender MAC the NIC's) about 200 and 400 ms
                   apart, sent by the host: the guest's driver is not up
  guest-announce   the guest's driver up (GUEST_ANNOUNCE negotiated) with
                   10.0.3.2/24: announce-self (rounds 3) gives three RARPs
                   and, from the guest itself, gratuitous ARPs for
                   10.0.3.2 from its MAC
  interfaces       interfaces=["nic0"] (the -device id) and ["n0"] (the
                   -netdev id) announce the NIC; ["nope"] is DeviceNotFound
  bad-arguments    unknown and missing members, wrong types, rounds 0,
                   step 0, initial above 100000: GenericError each; the VM
                   still runs and its shell answers

Needs root, iproute2 and /dev/net/tun (skipped otherwise).  Prints
`PASS name` / `FAIL name` / `SKIP name: reason` and a last line
`N passed, N failed, N skipped`; exits 1 if anything failed.
Environment: BUILD (build/release), ANNOUNCE_TEST_CASES (a subset),
NET_TEST_TIMEOUT (seconds to the shell, 240), GODWIT_GUEST_IMAGE /
GODWIT_GUEST_INITRD.
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
from harness import Skip, check, run  # noqa: E402
from net_test import net_ctx, vm_argv  # noqa: E402

MAC = "52:54:00:aa:bb:cc"
NS_NET = "10.0.3"
CASES = ["rarp-no-driver", "guest-announce", "interfaces", "bad-arguments"]

# Runs inside the namespace: capture frames arriving from the VM on the TAP
# device for a while, one line per RARP/ARP frame:
#   <seconds since start> <ethertype hex> <dst> <src> <payload hex (28 bytes)>
CAPTURE = r"""
import socket, sys, time, select
ifname, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
s.bind((ifname, 0))
print("ready", flush=True)
t0 = time.monotonic()
end = t0 + secs
def mac(b): return ":".join("%02x" % x for x in b)
while True:
    left = end - time.monotonic()
    if left <= 0 or not select.select([s], [], [], left)[0]:
        break
    f, addr = s.recvfrom(65536)
    if addr[2] == socket.PACKET_OUTGOING:  # sent to the VM, not by it
        continue
    et = int.from_bytes(f[12:14], "big")
    if et in (0x0806, 0x8035):
        print("%.4f %04x %s %s %s" % (time.monotonic() - t0, et, mac(f[0:6]), mac(f[6:12]),
                                      f[14:42].hex()), flush=True)
print("end", flush=True)
"""


class Capture:
    """A CAPTURE helper running for secs seconds on the TAP device of ns
    (a harness.NetNS)."""

    def __init__(self, ns, secs):
        self.p = subprocess.Popen(ns.exec([sys.executable, "-c", CAPTURE, ns.TAP, str(secs)]),
                                  stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline().strip()
        check(line == "ready", f"capture helper: {line!r}")
        self.t0 = time.monotonic()  # about the helper's own start

    def frames(self, timeout=60):
        """[(t, ethertype, dst, src, payload bytes)] once the capture ended."""
        out = self.p.communicate(timeout=timeout)[0]
        check(out.rstrip().endswith("end"), f"capture helper ended early: {out!r}")
        res = []
        for line in out.splitlines():
            p = line.split()
            if len(p) == 5:
                res.append((float(p[0]), int(p[1], 16), p[2], p[3], bytes.fromhex(p[4])))
        return res


def rarps(frames):
    return [f for f in frames if f[1] == 0x8035]


def check_rarp(f):
    t, et, dst, src, pl = f
    check(dst == "ff:ff:ff:ff:ff:ff", f"RARP not broadcast: {dst}")
    check(src == MAC, f"RARP source {src}, want {MAC}")
    check(pl[0:8] == bytes([0, 1, 8, 0, 6, 4, 0, 3]), f"RARP header {pl[0:8].hex()}")
    check(pl[8:14] == bytes.fromhex(MAC.replace(":", "")), f"RARP sender MAC {pl[8:14].hex()}")


def garps(frames):
    """Gratuitous ARPs from the guest: sender and target IP both 10.0.3.2."""
    ip = bytes(int(x) for x in f"{NS_NET}.2".split("."))
    return [f for f in frames
            if f[1] == 0x0806 and f[3] == MAC and f[4][14:18] == ip and f[4][24:28] == ip]


def main():
    ctx = net_ctx()
    only = os.environ.get("ANNOUNCE_TEST_CASES")
    want = [c for c in CASES if not only or c in only.split(",")]
    rep = h.Report()
    done = set()

    def report(name, fn):
        if name in want:
            done.add(name)
            rep.case(name, fn)

    try:
        if not os.access(ctx.vm, os.X_OK):
            raise Skip(f"{ctx.vm} is not built (make)")
        h.require_tap()
        ctx.image, ctx.initrd = h.guest_image()
        run_cases(ctx, report)
    except Skip as e:
        for c in want:
            if c not in done:
                rep.skip(c, str(e))
    except Exception as e:  # boot or setup failed: the cases not run fail
        for c in want:
            if c not in done:
                rep.fail(c, f"not run: {e}")
    return rep.summary()


def run_cases(ctx, report):
    with tempfile.TemporaryDirectory(prefix="gwann") as tmp, h.NetNS("gwann", NS_NET) as ns:
        sock = os.path.join(tmp, "qmp.sock")
        net = ["-S", "-netdev", f"tap,id=n0,ifname={ns.TAP},script=no,downscript=no",
               "-device", f"virtio-net-device,netdev=n0,id=nic0,mac={MAC}"]
        with h.VM("announce", ns.exec(vm_argv(ctx, net)), out=ctx.log("announce"), qmp=sock,
                  console=True) as vm:
            con, q = vm.con, vm.connect(30)

            def case_rarp_no_driver():
                check(q.cmd("query-status")["status"] == "prelaunch", "starts in prelaunch")
                cap = Capture(ns, 4.0)
                q.cmd("announce-self", initial=200, max=1000, rounds=3, step=200)
                time.sleep(1.0)  # prelaunch: the rounds wait for the harts
                t_cont = time.monotonic() - cap.t0
                q.cmd("cont")
                fr = cap.frames()
                rs = rarps(fr)
                check(len(rs) == 3, f"want 3 RARPs, got {len(rs)}: {fr}")
                for f in rs:
                    check_rarp(f)
                check(rs[0][0] >= t_cont - 0.05,
                      f"a RARP at {rs[0][0]:.3f}s, before cont at {t_cont:.3f}s")
                gaps = [rs[1][0] - rs[0][0], rs[2][0] - rs[1][0]]
                for got, want in zip(gaps, (0.2, 0.4)):
                    check(want - 0.01 <= got <= want + 0.25, f"gaps {gaps}, want 0.2, 0.4 s")
                check(not garps(fr), "no guest ARPs without its driver")

            report("rarp-no-driver", case_rarp_no_driver)
            if q.cmd("query-status")["status"] != "running":
                q.cmd("cont")
            h.wait_shell(con, ctx.boot_timeout)
            run(con, f"ip link set eth0 up && ip addr add {NS_NET}.2/24 dev eth0")
            run(con, f"ping -c 1 -W 5 {NS_NET}.1", timeout=60)  # the driver and link work

            def case_guest_announce():
                cap = Capture(ns, 3.0)
                q.cmd("announce-self", initial=100, max=1000, rounds=3, step=100, id="t2")
                fr = cap.frames()
                rs, gs = rarps(fr), garps(fr)
                check(len(rs) == 3, f"want 3 RARPs, got {len(rs)}: {fr}")
                for f in rs:
                    check_rarp(f)
                check(len(gs) >= 3, f"want a gratuitous ARP per round from the guest, got "
                                    f"{len(gs)}: {fr}")

            def case_interfaces():
                for names in (["nic0"], ["n0"]):
                    cap = Capture(ns, 1.0)
                    q.cmd("announce-self", initial=50, max=50, rounds=1, step=1,
                          interfaces=names)
                    rs = rarps(cap.frames())
                    check(len(rs) == 1, f"interfaces={names}: {len(rs)} RARPs")
                try:
                    q.cmd("announce-self", initial=50, max=50, rounds=1, step=1,
                          interfaces=["nope"])
                    check(False, "unknown interface accepted")
                except h.QMPError as e:
                    check(e.cls == "DeviceNotFound" and "'nope'" in e.desc, f"got {e}")

            def case_bad_arguments():
                base = {"initial": 50, "max": 550, "rounds": 5, "step": 100}
                bad = [
                    ({**base, "bogus": 1}, "Parameter 'bogus' is unexpected"),
                    ({k: v for k, v in base.items() if k != "max"}, "Parameter 'max' is missing"),
                    ({**base, "rounds": "5"}, "Invalid parameter type for 'rounds'"),
                    ({**base, "rounds": 0}, "Parameter 'rounds' expects a value between 1"),
                    ({**base, "step": 0}, "Parameter 'step' expects a value between 1"),
                    ({**base, "initial": 100001}, "Parameter 'initial' expects"),
                    ({**base, "interfaces": "nic0"}, "Invalid parameter type for 'interfaces'"),
                ]
                for args, msg in bad:
                    try:
                        q.cmd("announce-self", args)
                        check(False, f"{args} accepted")
                    except h.QMPError as e:
                        check(e.cls == "GenericError" and msg in e.desc, f"{args}: got {e}")
                check(q.cmd("query-status")["status"] == "running", "the VM still runs")
                out = run(con, "echo still-$((40+2))")
                check("still-42" in out, f"shell: {out!r}", con)

            report("guest-announce", case_guest_announce)
            report("interfaces", case_interfaces)
            report("bad-arguments", case_bad_arguments)
            h.poweroff(con, force=True)


if __name__ == "__main__":
    h.main(main)
