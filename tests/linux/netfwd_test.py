#!/usr/bin/env python3
"""Frames across a live migration's switchover (docs/net.md, "The switchover").

The Debian guest on a TAP device in a private network namespace (a bridge
10.0.9.1/24 with two TAP devices, one per emulator: the source's and the
destination's, as two hosts' ports on one switch), 10.0.9.2 with a TCP
echo service; a client in the namespace keeps one echo session busy (a
line every 5 ms) and pings the guest every 2 ms while the VM migrates live
between two godwit-vm processes over QMP (tcp: inside the namespace).
Without forwarding, the frames that reach the source from the moment it
pauses are lost, and the peer waits for TCP's retransmission (200 ms and
more); with it they reach the guest on the destination, once.

  hops          four migrations back and forth: every ping answered once
                (no loss, no duplicate), the echo session intact with no
                TCP retransmission and no line waiting 200 ms
  announce      the destination's first RARP for the NIC reaches the bridge
                within 1 ms of its RESUME event (it goes as the harts start:
                the kernel's timestamp of the frame vs the event's, both
                wall clock; earlier is fine)
  burst         the destination holds READY back 300 ms (first without
                forwarding: pings are lost, so the test can tell; then with)
                (GODWIT_TEST_READY_DELAY_MS), so dozens of pings reach
                the paused source: they are kept, forwarded after COMMIT
                (source x-godwit-net-forward.forwarded equals what it kept
                for the guest, the destination delivered them all) and
                answered: no loss, no duplicate
  flood         READY held back 1.5 s while the namespace floods the guest
                with UDP: the source keeps at most 4096 frames, the rest is
                counted as overflow (not silent), the migration completes
                and the guest answers on the destination
  fail-requeue  the destination is killed while READY is held back: the
                migration fails, the source runs on, and the frames kept
                meanwhile reach its guest (no ping lost)
  dest-dies     the destination ends itself right after COMMIT and the
                kept frames (GODWIT_TEST_DIE_AFTER_COMMIT): the source
                reports completed as any committed migration, stays
                stopped (cont refused: never two copies), and its
                forwarding stops at once instead of running out its grace

Needs root, iproute2, ping and /dev/net/tun (skipped otherwise).  Prints
`PASS name` / `FAIL name` / `SKIP name: reason` and a last line
`N passed, N failed, N skipped`; exits 1 if anything failed.
Environment: BUILD (build/release), NETFWD_TEST_CASES (a subset),
NET_TEST_TIMEOUT (seconds to the echo service, 240), GODWIT_GUEST_IMAGE /
GODWIT_GUEST_INITRD.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
from harness import Skip, check  # noqa: E402
from qmp import QMPError  # noqa: E402

CASES = ["hops", "announce", "burst", "flood", "fail-requeue", "dest-dies"]
NET = "10.0.9"
IP = f"{NET}.2"
MAC = "52:54:00:ab:cd:01"
APPEND = ('console=ttyS0 ENV=/proc/cmdline GODWIT_RUN="[ -d /run/gw ] || { mkdir /run/gw; '
          f'ip link set eth0 up; ip addr add {IP}/24 dev eth0; '
          '(while :; do nc -l -p 7 -e /bin/cat || sleep 1; done) & }" eval "$GODWIT_RUN"')

# The echo session, in the namespace: argv ip, status file.  One line every
# 5 ms, each checked; writes n, the longest wait for one echo, the socket's
# TCP retransmissions (tcp_info.tcpi_total_retrans) and whether it broke.
CLIENT = r"""
import json, os, socket, struct, sys, time
ip, status = sys.argv[1], sys.argv[2]
s = socket.create_connection((ip, 7), timeout=5)
s.settimeout(30)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
f = s.makefile("rb")
st = {"n": 0, "worst": 0.0, "retrans": 0, "broken": None}
stop = False
def save():
    with open(status + ".t", "w") as o:
        json.dump(st, o)
    os.replace(status + ".t", status)
def retrans():
    return struct.unpack_from("I", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 100)[0]
while not os.path.exists(status + ".stop"):
    line = b"line %d\n" % (st["n"] + 1)
    t0 = time.monotonic()
    try:
        s.sendall(line)
        got = f.readline()
    except OSError as e:
        st["broken"] = "%s: %s" % (type(e).__name__, e)
        break
    if got != line:
        st["broken"] = "sent %r, got %r" % (line, got)
        break
    st["n"] += 1
    st["worst"] = max(st["worst"], time.monotonic() - t0)
    st["retrans"] = retrans()
    if st["n"] % 20 == 0:
        save()
    time.sleep(0.005)
save()
"""

# A UDP flood at the guest (discard port), in the namespace: argv ip, seconds.
FLOOD = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + float(sys.argv[2]); n = 0
while time.monotonic() < end:
    try:
        s.sendto(b"x" * 64, (sys.argv[1], 9)); n += 1
    except OSError:
        pass
print(n)
"""

def wait_for(fn, timeout, what, step=0.02):
    """fn() until it returns something true: that value; AssertionError
    naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


# Frames on the bridge, in the namespace: argv seconds, MAC.  Prints the
# kernel's arrival time (SO_TIMESTAMPNS, wall clock) of every RARP
# (ethertype 0x8035) whose source is MAC, after "ready".
RARPS = r"""
import select, socket, struct, sys, time
secs, mac = float(sys.argv[1]), bytes.fromhex(sys.argv[2].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8035))
s.bind(("br0", 0))
s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
print("ready", flush=True)
end = time.monotonic() + secs
while time.monotonic() < end:
    if not select.select([s], [], [], max(0.0, end - time.monotonic()))[0]:
        break
    data, anc, _, _ = s.recvmsg(2048, 64)
    for level, kind, v in anc:
        if level == socket.SOL_SOCKET and kind == 35 and data[6:12] == mac:
            sec, nsec = struct.unpack("qq", v[:16])
            print("%.6f" % (sec + nsec / 1e9), flush=True)
"""

PING_RE = re.compile(r"(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?")


class Net:
    """The namespace: br0 with NET.1/24, TAP devices tapA and tapB on it."""

    def __init__(self):
        self.name = f"gwnf{os.getpid()}"

    def __enter__(self):
        h.sh("ip", "netns", "add", self.name)
        try:
            for cmd in (["link", "set", "lo", "up"], ["link", "add", "br0", "type", "bridge"],
                        ["addr", "add", f"{NET}.1/24", "dev", "br0"], ["link", "set", "br0", "up"]):
                h.sh("ip", "-n", self.name, *cmd)
            for tap in ("tapA", "tapB"):
                h.sh("ip", "-n", self.name, "tuntap", "add", "dev", tap, "mode", "tap")
                h.sh("ip", "-n", self.name, "link", "set", tap, "master", "br0")
                h.sh("ip", "-n", self.name, "link", "set", tap, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        h.sh("ip", "netns", "del", self.name, check_rc=False)

    def exec(self, argv):
        return ["ip", "netns", "exec", self.name, *argv]


class World:
    """The namespace, the VM where it runs now (vm, on tap), and the client."""

    def __init__(self, ctx, net, tmp):
        self.ctx, self.net, self.tmp = ctx, net, tmp
        self.vm = self.tap = self.client = None
        self.seq = 0

    def start(self, tap, incoming=None, env=None):
        self.seq += 1
        name = f"vm{self.seq}"
        sock = os.path.join(self.tmp, name + ".sock")
        argv = self.ctx.linux_argv(["-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
                                    "-device", f"virtio-net-device,netdev=n0,mac={MAC}"])
        argv[argv.index("-append") + 1] = APPEND
        if incoming:
            argv += ["-incoming", incoming]
        if env:
            argv = ["env", *[f"{k}={v}" for k, v in env.items()], *argv]
        vm = h.VM(name, self.net.exec(argv), out=self.ctx.log(name), qmp=sock)
        vm.connect(30)
        return vm

    def boot(self):
        self.vm, self.tap = self.start("tapA"), "tapA"
        deadline = time.monotonic() + self.ctx.boot_timeout
        while time.monotonic() < deadline:
            r = subprocess.run(self.net.exec([sys.executable, "-c", (
                "import socket; s = socket.create_connection(('%s', 7), timeout=2); "
                "s.sendall(b'probe\\n'); print(s.recv(16).decode())") % IP]),
                capture_output=True, text=True)
            if "probe" in r.stdout:
                return
            time.sleep(1)
        raise AssertionError("the guest's echo service never answered")

    def start_client(self):
        self.status = os.path.join(self.tmp, f"client{self.seq}.json")
        self.client = subprocess.Popen(self.net.exec([sys.executable, "-c", CLIENT, IP,
                                                      self.status]))
        wait_for(lambda: os.path.exists(self.status), 20, "the echo session's first lines")

    def stop_client(self):
        open(self.status + ".stop", "w").close()
        self.client.wait(60)
        self.client = None
        with open(self.status) as f:
            return json.load(f)

    def ping(self, count, interval="0.002"):
        return subprocess.Popen(self.net.exec(["ping", "-n", "-q", "-i", interval, "-W", "2",
                                               "-c", str(count), IP]),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def destination(self, env=None):
        """A destination on the other TAP, waiting (-incoming tcp:)."""
        other = "tapB" if self.tap == "tapA" else "tapA"
        self.port = h.free_port()
        return self.start(other, incoming=f"tcp:127.0.0.1:{self.port}", env=env)

    def migrate(self, dst, wait=True):
        """Migrate to dst; the source's last query-migrate once completed
        or failed (wait), else None at once."""
        self.vm.cmd("migrate", uri=f"tcp:127.0.0.1:{self.port}")
        return self.wait_done() if wait else None

    def wait_done(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = self.vm.cmd("query-migrate")
            if m.get("status") in ("completed", "failed", "cancelled"):
                return m
            time.sleep(0.02)
        raise AssertionError("the migration did not end")

    def switch(self, dst, forward_over=True):
        """The destination is the VM now; the source quits (after its
        forwarding: quit waits for it)."""
        src = self.vm
        if forward_over:
            wait_for(lambda: not src.cmd("query-migrate").get(
                "x-godwit-net-forward", {}).get("active"), 5, "the end of the grace period")
        info = src.cmd("query-migrate")
        try:
            src.cmd("quit")
        except (QMPError, OSError):
            pass
        src.exit_status(10)
        src.kill()
        self.vm, self.tap = dst, ("tapB" if self.tap == "tapA" else "tapA")
        return info


def ping_result(p):
    out = p.communicate(timeout=60)[0]
    m = PING_RE.search(out)
    check(m, f"ping's summary: {out!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def fwd_of(info):
    f = info.get("x-godwit-net-forward")
    check(isinstance(f, dict), f"query-migrate has x-godwit-net-forward: {info}")
    return f


def case_hops(w):
    w.start_client()
    notes = []
    forwarded = 0
    for hop in range(4):
        dst = w.destination()
        p = w.ping(500)
        time.sleep(0.3)
        m = w.migrate(dst)
        check(m["status"] == "completed", f"hop {hop}: {m}")
        tx, rx, dup = ping_result(p)
        src_info = w.switch(dst)
        f = fwd_of(src_info)
        forwarded += f["forwarded"]
        dinfo = fwd_of(w.vm.cmd("query-migrate"))
        check(dinfo["delivered"] == f["forwarded"] and not dinfo["dropped"],
              f"hop {hop}: the destination delivered what came: {dinfo} vs {f}")
        check(rx == tx and not dup, f"hop {hop}: pings {tx} sent, {rx} answered, {dup} twice")
        notes.append(f"{m.get('downtime')}ms/{f['forwarded']}")
    st = w.stop_client()
    check(not st["broken"], f"the echo session broke: {st['broken']}")
    check(st["retrans"] == 0, f"TCP retransmitted {st['retrans']} segments: a frame was lost")
    check(st["worst"] < 0.2, f"an echo waited {st['worst'] * 1000:.0f} ms (a retransmission)")
    return (f"4 hops (downtime ms/frames forwarded: {' '.join(notes)}), {forwarded} forwarded, "
            f"{st['n']} echoes, longest {st['worst'] * 1000:.1f} ms, 0 retransmissions")


def case_announce(w):
    dst = w.destination()
    cap = subprocess.Popen(w.net.exec([sys.executable, "-c", RARPS, "8", MAC]),
                           stdout=subprocess.PIPE, text=True)
    check(cap.stdout.readline().strip() == "ready", "the capture runs")
    m = w.migrate(dst)
    check(m["status"] == "completed", f"migration: {m}")
    ev = w.vm.qmp.wait_event("STOP", timeout=10)
    stopped = ev["timestamp"]["seconds"] + ev["timestamp"]["microseconds"] / 1e6
    ev = dst.qmp.wait_event("RESUME", timeout=10)
    resumed = ev["timestamp"]["seconds"] + ev["timestamp"]["microseconds"] / 1e6
    w.switch(dst)
    cap.wait(20)
    rarps = [float(x) for x in cap.stdout.read().split()]
    after = [t for t in rarps if t >= stopped]
    check(after, f"no RARP for {MAC} after the source stopped ({rarps})")
    delta = (after[0] - resumed) * 1000
    check(delta < 1.0, f"the first RARP left {delta:.3f} ms after RESUME (1 ms at most)")
    return f"first RARP {delta:+.3f} ms from RESUME; {len(after)} RARPs in 8 s"


def case_burst(w):
    # first without forwarding: the frames that reach the paused source are
    # lost (so the checks below can tell)
    w.vm.cmd("migrate-set-capabilities",
             capabilities=[{"capability": "x-godwit-net-forward", "state": False}])
    dst = w.destination(env={"GODWIT_TEST_READY_DELAY_MS": "300"})
    p = w.ping(500)
    time.sleep(0.2)
    m = w.migrate(dst)
    check(m["status"] == "completed" and "x-godwit-net-forward" not in m,
          f"migration without forwarding: {m}")
    tx0, rx0, _ = ping_result(p)
    w.switch(dst, forward_over=False)
    check(rx0 < tx0, f"without forwarding, pings are lost at the pause ({tx0} sent, {rx0} "
          "answered)")
    w.start_client()
    dst = w.destination(env={"GODWIT_TEST_READY_DELAY_MS": "300"})
    p = w.ping(500)
    time.sleep(0.2)
    m = w.migrate(dst)
    check(m["status"] == "completed", f"migration: {m}")
    tx, rx, dup = ping_result(p)
    src_info = w.switch(dst)
    f = fwd_of(src_info)
    d = fwd_of(w.vm.cmd("query-migrate"))
    st = w.stop_client()
    # ping sends every 2 ms while answered, every 10 ms or so while not
    check(f["captured"] >= 10, f"the paused source kept {f['captured']} frames (pings for 300 ms)")
    check(f["forwarded"] >= f["captured"] - f["other"] and not f["overflow"],
          f"it forwarded every frame it kept for the guest: {f}")
    check(d["received"] == f["forwarded"] and d["delivered"] == d["received"],
          f"the destination delivered them all: {d}")
    check(rx == tx and not dup, f"pings: {tx} sent, {rx} answered, {dup} twice")
    # a pause longer than TCP's 200 ms timeout makes the client retransmit
    # (the original is not lost): the session must survive it intact
    check(not st["broken"], f"echo session broke: {st['broken']}")
    return (f"without forwarding {tx0 - rx0} of {tx0} pings lost; with it: downtime "
            f"{m.get('downtime')} ms, kept {f['captured']} ({f['other']} not for the guest), "
            f"forwarded {f['forwarded']}, delivered {d['delivered']}; {tx} pings answered")


def case_flood(w):
    dst = w.destination(env={"GODWIT_TEST_READY_DELAY_MS": "1500"})
    w.migrate(dst, wait=False)
    wait_for(lambda: w.vm.cmd("query-migrate").get("status") == "device", 30,
               "the source parked")
    fl = subprocess.run(w.net.exec([sys.executable, "-c", FLOOD, IP, "1.2"]),
                        capture_output=True, text=True, timeout=30)
    sent = int(fl.stdout.strip() or 0)
    m = w.wait_done()
    check(m["status"] == "completed", f"migration: {m}")
    src_info = w.switch(dst)
    f = fwd_of(src_info)
    check(sent > 4096, f"the flood sent {sent} datagrams (more than the 4096 frames kept)")
    check(f["captured"] <= 4096 and f["overflow"] > 0,
          f"at most 4096 frames kept, the rest counted: {f}")
    p = w.ping(20, "0.05")
    tx, rx, dup = ping_result(p)
    check(rx == tx, f"the guest answers on the destination: {tx} pings, {rx} answers")
    return f"{sent} datagrams in 1.2 s; kept {f['captured']}, overflow {f['overflow']}"


def case_fail_requeue(w):
    w.start_client()
    dst = w.destination(env={"GODWIT_TEST_READY_DELAY_MS": "1000"})
    p = w.ping(500)
    time.sleep(0.2)
    w.migrate(dst, wait=False)
    wait_for(lambda: w.vm.cmd("query-migrate").get("status") == "device", 30,
               "the source parked")
    time.sleep(0.3)
    dst.kill()  # before READY: the source still owns the VM
    m = w.wait_done()
    check(m["status"] == "failed", f"the migration failed: {m}")
    check(w.vm.cmd("query-status")["status"] == "running", "the source runs on")
    f = fwd_of(m)
    tx, rx, dup = ping_result(p)
    st = w.stop_client()
    check(f["captured"] >= 10, f"the paused source kept frames: {f}")
    check(rx == tx and not dup, f"pings: {tx} sent, {rx} answered, {dup} twice (the kept "
          "frames went back to the guest)")
    # a pause longer than TCP's 200 ms timeout makes the client retransmit
    # (the original is not lost): the session must survive it intact
    check(not st["broken"], f"echo session broke: {st['broken']}")
    return f"kept {f['captured']} while paused, all back to the guest; {tx} pings answered"


def case_dest_dies(w):
    dst = w.destination(env={"GODWIT_TEST_DIE_AFTER_COMMIT": "1",
                             "GODWIT_TEST_READY_DELAY_MS": "100"})
    p = w.ping(300)
    time.sleep(0.2)
    m = w.migrate(dst)
    check(m["status"] == "completed", f"a committed migration reports completed: {m}")
    wait_for(lambda: not w.vm.cmd("query-migrate").get("x-godwit-net-forward", {}).get(
        "active"), 5, "the end of the source's forwarding")
    f = fwd_of(w.vm.cmd("query-migrate"))
    check(f["grace-ms"] < 900, f"forwarding stopped when the destination went: {f}")
    check(w.vm.cmd("query-status")["status"] == "postmigrate", "the source stays stopped")
    try:
        w.vm.cmd("cont")
        check(False, "cont on the source was accepted")
    except QMPError as e:
        check("destination" in e.desc, f"cont refused: {e.desc}")
    check(dst.exit_status(10) is not None, "the destination ended")
    p.kill()
    return f"kept {f['captured']}, forwarded {f['forwarded']}, grace {f['grace-ms']} ms"


def main():
    only = os.environ.get("NETFWD_TEST_CASES")
    want = [c for c in CASES if not only or c in only.split(",")]
    rep = h.Report()
    ctx = h.Ctx("netfwd", timeout_env="NET_TEST_TIMEOUT")
    try:
        if not os.access(ctx.vm, os.X_OK):
            raise Skip(f"{ctx.vm} is not built (make)")
        h.require_tap()
        if not shutil.which("ping"):
            raise Skip("needs ping (iputils-ping)")
        ctx.image, ctx.initrd = h.guest_image()
    except Skip as e:
        for c in want:
            rep.skip(c, str(e))
        return rep.summary()
    fns = {"hops": case_hops, "announce": case_announce, "burst": case_burst, "flood": case_flood,
           "fail-requeue": case_fail_requeue, "dest-dies": case_dest_dies}
    with tempfile.TemporaryDirectory(prefix="gwnf") as tmp, Net() as net:
        w = World(ctx, net, tmp)
        try:
            w.boot()
        except Exception as e:
            for c in want:
                rep.fail(c, f"not run: {e}")
            return rep.summary()
        for c in want:
            if w.client:
                w.client.send_signal(signal.SIGKILL)
                w.client = None
            rep.case(c, fns[c], w, hint=f"logs: {ctx.log('vm*')}")
        if w.client:
            w.client.kill()
        w.vm.kill()
    return rep.summary()


if __name__ == "__main__":
    h.main(main)
