#!/usr/bin/env python3
"""Network continuity across live migration, godwit-vm against QEMU 7.2
(bench/netcont/run.sh; issue 15's benchmark).

One session = one emulator, one workload: a private network namespace
(gwnc<pid>) with a bridge br0 (10.0.9.1/24) and two TAP devices on it,
gwncA and gwncB.  The Linux guest (256M, -smp 1, MAC 52:54:00:9c:00:02,
10.0.9.2) boots on gwncA; the client runs in the namespace (its socket
bound to the bridge's address, so its traffic crosses the bridge and the
TAP devices exactly as a peer's would).  Then the VM moves back and forth
BENCH_NETCONT_HOPS times between two emulator processes, one on each TAP:
a destination with the same command line on the other TAP and `-incoming
tcp:127.0.0.1:PORT`, downtime-limit and max-bandwidth set on both,
`migrate`, query-migrate polled every 10 ms until `completed`, then the
source is left alive BENCH_NETCONT_SETTLE seconds (the grace period during
which a source may forward frames the bridge still sends to its port),
asked query-migrate once more and killed, and the destination becomes the
next hop's source.

Workloads (BENCH_NETCONT_WORKLOADS):
  echo  busybox `nc -l -p 7 -e /bin/cat` in the guest (restarted in a loop,
        so a broken session can reconnect); the client (CLIENT below) sends
        a line every 5 ms over one TCP connection and waits for its echo
        before the next (a request that is late is followed by the next at
        once, never by a burst); it records for every request its send and
        reply time (CLOCK_MONOTONIC, the same clock as ours) and the
        socket's TCP_INFO tcpi_total_retrans after the reply.  A reply that
        does not come in 10 s, a wrong echo or a reset breaks the session:
        it is recorded and the client reconnects, so later hops still count.
  cart  the redis guest variant and tests/lib/cart.py (RPUSH every 5 ms,
        the cart read back, checked at the end): see cart_session().

Figures per hop (window: from `migrate` to the source's kill):
  reply gap   the largest gap between two consecutive replies the client
              saw (5 ms of it is the client's own pacing)
  wait        the longest a single request waited for its reply
  retrans     tcpi_total_retrans growth on the client's socket
  kept        no broken session in the window, and a reply after it
  downtime    the source's query-migrate (what the emulator says)
and over the session: p50/p99 latency of the requests sent within +-1 s of
each switchover (the moment query-migrate said `completed`), the longest
gap outside the hops' windows (the machine's own noise), and godwit-vm's
`x-godwit-net-forward` counters when its query-migrate has them (summed).
When godwit-vm offers the capability `x-godwit-net-forward`, a third row,
"godwit-nofwd", runs with it set false on the source (and the destination
when it takes it).  A session whose guest died (no answer from some hop on:
QEMU 7.2's guest does that now and then) runs once more
(BENCH_NETCONT_RETRIES); the death is noted and fails the "intact" goal.
"""

import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench", "migrate"))

import harness as h  # noqa: E402
from harness import check  # noqa: E402
import migrate as mg  # noqa: E402  (bench/migrate/migrate.py: VM, set_params, emulators)
from migration import FINAL, Emu  # noqa: E402

NET = "10.0.9"
GUEST_IP = f"{NET}.2"
MAC = "52:54:00:9c:00:02"
TAPS = ("gwncA", "gwncB")
FWD_CAP = "x-godwit-net-forward"
KERNEL_TROUBLE = re.compile(r"BUG:|Oops|Kernel panic|WARNING:|rcu_sched self-detected|"
                            r"rcu: INFO|soft lockup|hard LOCKUP")

# The echo client, run inside the namespace: argv ip port outfile period_ms.
# Status (JSON) every 0.25 s to outfile.status; stops when outfile.stop
# exists, then writes everything to outfile.
CLIENT = r"""
import json, os, socket, struct, sys, time
ip, port, out, period = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4]) / 1000
src = sys.argv[5]
recs, breaks = [], []   # recs: [t_send, t_reply, total_retrans, session]
st = {"ok": 0, "sessions": 0, "breaks": 0}
def retrans(s):
    # struct tcp_info: 8 bytes of u8 fields, then u32s; tcpi_total_retrans at 100
    return struct.unpack_from("I", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 100)[0]
def connect():
    while True:
        try:
            s = socket.create_connection((ip, port), timeout=5, source_address=(src, 0))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.settimeout(10)
            st["sessions"] += 1
            return s
        except OSError:
            if os.path.exists(out + ".stop"):
                return None
            time.sleep(0.2)
def save_status():
    with open(out + ".status.tmp", "w") as f:
        json.dump(st, f)
    os.replace(out + ".status.tmp", out + ".status")
s, buf, i, last_save = connect(), b"", 0, 0.0
nxt = time.monotonic()
while s is not None and not os.path.exists(out + ".stop"):
    now = time.monotonic()
    if now < nxt:
        time.sleep(nxt - now)
    i += 1
    line = b"godwit netcont %d\n" % i
    t = time.monotonic()
    nxt = t + period
    try:
        s.sendall(line)
        while b"\n" not in buf:
            d = s.recv(4096)
            if not d:
                raise ConnectionError("closed by the peer")
            buf += d
        got, buf = buf.split(b"\n", 1)
        if got + b"\n" != line:
            raise ValueError("sent %r, got %r" % (line, got))
        recs.append([t, time.monotonic(), retrans(s), st["sessions"]])
        st["ok"] += 1
    except (OSError, ValueError) as e:
        try:
            r = retrans(s)
        except OSError:
            r = None
        breaks.append({"t": time.monotonic(), "sent": t, "session": st["sessions"],
                       "retrans": r, "error": "%s: %s" % (type(e).__name__, e)})
        st["breaks"] += 1
        s.close()
        s, buf = connect(), b""
        nxt = time.monotonic()
    if time.monotonic() - last_save > 0.25:
        save_status(); last_save = time.monotonic()
end_retrans = None
if s is not None:
    end_retrans = retrans(s)
    s.close()
with open(out + ".tmp", "w") as f:
    json.dump({"recs": recs, "breaks": breaks, "end_retrans": end_retrans,
               "sessions": st["sessions"]}, f)
os.replace(out + ".tmp", out)
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- the network ------------------------------------------------------------------------


class NetNS:
    """The namespace: br0 with NET.1/24, TAP devices TAPS on it, lo up.
    Deleted on exit (with everything in it)."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        h.sh("ip", "netns", "add", self.name)
        try:
            cmds = [["link", "set", "lo", "up"],
                    ["link", "add", "br0", "type", "bridge"],
                    ["addr", "add", f"{NET}.1/24", "dev", "br0"],
                    ["link", "set", "br0", "up"]]
            for tap in TAPS:
                cmds += [["tuntap", "add", "dev", tap, "mode", "tap"],
                         ["link", "set", tap, "master", "br0"],
                         ["link", "set", tap, "up"]]
            for c in cmds:
                h.sh("ip", "-n", self.name, *c)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        h.sh("ip", "netns", "del", self.name, check_rc=False)

    def exec(self, argv):
        return ["ip", "netns", "exec", self.name, *argv]


class VM(mg.VM):
    """bench/migrate's VM (lines stamped on arrival, a stdin pipe to the
    guest's console) started inside the namespace on one TAP device."""

    def __init__(self, emu, name, args, tap, tmp, logdir, ns, incoming=None):
        net = ["-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
               "-device", f"virtio-net-device,netdev=n0,id=nic0,mac={MAC}"]
        argv = ns.exec([emu.bin, *args, *net])
        if incoming:
            argv += ["-incoming", incoming]
        h.VM.__init__(self, name, argv, out=os.path.join(logdir, f"{name}.out"),
                      err=os.path.join(logdir, f"{name}.err"),
                      qmp=os.path.join(tmp, f"{name}.qmp"), lines=True, stdin=True)
        self.emu = emu
        self.tap = tap

    def send(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def shell(self, cmd, timeout=30):
        """Run cmd at the guest's shell; the lines it printed."""
        n = int(time.monotonic() * 1000) % 1000000
        t = time.monotonic()
        self.send(f"{cmd}; echo done-$(({n}+1))")
        hit = self.wait_line(rf"^done-{n + 1}$", timeout, since=t)
        check(hit is not None, f"{self.name}: `{cmd}` did not finish in {timeout} s")
        with self._lock:
            return [x for w, x in self.lines if t <= w <= hit]


def wait_shell(vm, timeout):
    """Wait for the guest image's shell (it answers an echo)."""
    check(vm.wait_line(mg.LINUX_MARKER, timeout) is not None,
          f"{vm.name}: Linux did not reach its init in {timeout:.0f} s: {vm.stderr()[-300:]}")
    deadline = time.monotonic() + 120
    n = 0
    while True:
        n += 1
        t = time.monotonic()
        vm.send(f"echo ready-$(({n}*1000+42))")
        if vm.wait_line(rf"^ready-{n * 1000 + 42}$", 3, since=t) is not None:
            return
        check(time.monotonic() < deadline, f"{vm.name}: the shell does not answer")


def guest_retrans(vm):
    """The guest's TCP RetransSegs (/proc/net/snmp), or None."""
    try:
        # shell builtins only: on QEMU 7.2's destination the guest's timer
        # interrupt is dead, and a fork may wait for a grace period forever
        lines = vm.shell("while read -r l; do case $l in Tcp:*) echo \"$l\";; esac; done "
                         "< /proc/net/snmp", 5)
    except AssertionError:
        return None
    tcp = [x.split() for x in lines if x.startswith("Tcp:")]
    if len(tcp) < 2:
        return None
    d = dict(zip(tcp[0][1:], tcp[1][1:]))
    return int(d["RetransSegs"]) if "RetransSegs" in d else None


# ---- the workloads ----------------------------------------------------------------------


class EchoWorkload:
    name = "echo"

    def __init__(self, cfg):
        self.cfg = cfg

    def guest_args(self, emu):
        return mg.linux_args(emu, self.cfg["mem"])

    def start_service(self, vm):
        vm.shell(f"ip link set eth0 up && ip addr add {GUEST_IP}/24 dev eth0")
        vm.send("(while :; do nc -l -p 7 -e /bin/cat; done) >/dev/null 2>&1 &")

    def start_client(self, ns, path):
        return subprocess.Popen(ns.exec([sys.executable, "-c", CLIENT, GUEST_IP, "7", path,
                                         str(self.cfg["period"]), f"{NET}.1"]),
                                stdout=subprocess.DEVNULL, stderr=open(path + ".err", "w"))

    def status(self, path):
        try:
            with open(path + ".status") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def stop_client(self, proc, path):
        """Stop the client; its records (see CLIENT)."""
        open(path + ".stop", "w").close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        check(os.path.exists(path), f"the client wrote no results: {open(path + '.err').read()}")
        with open(path) as f:
            return json.load(f)


# ---- one session ------------------------------------------------------------------------


def forward_caps(vm):
    """Whether the emulator offers the capability x-godwit-net-forward."""
    try:
        caps = vm.cmd("query-migrate-capabilities")
    except h.QMPError:
        return False
    return any(c.get("capability") == FWD_CAP for c in caps)


def session(emu, label, forward, wl, cfg, tmp, attempt=1):
    """One workload on one emulator across cfg["hops"] hops; a dict of raw
    results (hops, client records)."""
    tag = f"{wl.name}.{label}" + (f".try{attempt}" if attempt > 1 else "")
    ns_name = f"gwnc{os.getpid()}"
    res = {"hops": [], "label": label}
    with NetNS(ns_name) as ns:
        uri = None
        cur = VM(emu, f"{tag}.0", wl.guest_args(emu), TAPS[0], tmp, cfg["logs"], ns)
        vms = [cur]
        client = None
        cpath = os.path.join(tmp, f"{tag}.client")
        try:
            t = time.monotonic()
            wait_shell(cur, cfg["boot_timeout"])
            res["boot"] = time.monotonic() - t
            res["has_forward"] = forward_caps(cur)
            wl.start_service(cur)
            res["guest_retrans0"] = guest_retrans(cur)
            client = wl.start_client(ns, cpath)
            deadline = time.monotonic() + 60
            while wl.status(cpath).get("ok", 0) < 200:
                check(client.poll() is None, f"{tag}: the client exited: "
                      f"{open(cpath + '.err').read()[-400:]}")
                check(time.monotonic() < deadline, f"{tag}: the client got "
                      f"{wl.status(cpath).get('ok', 0)} replies in 60 s")
                time.sleep(0.1)
            for i in range(1, cfg["hops"] + 1):
                tap = TAPS[i % 2]
                uri = f"tcp:127.0.0.1:{h.free_port()}"
                dst = VM(emu, f"{tag}.{i}", wl.guest_args(emu), tap, tmp, cfg["logs"], ns,
                         incoming=uri)
                vms.append(dst)
                for vm in (cur, dst):
                    mg.set_params(vm, cfg["downtime"], mg.UNLIMITED_BW)
                if res["has_forward"]:
                    # the source decides; the destination is told too when
                    # it takes the capability (it has no say in it today)
                    cur.cmd("migrate-set-capabilities",
                            capabilities=[{"capability": FWD_CAP, "state": forward}])
                    try:
                        dst.cmd("migrate-set-capabilities",
                                capabilities=[{"capability": FWD_CAP, "state": forward}])
                    except h.QMPError:
                        pass
                hop = {"n": i, "to": tap}
                hop["t_migrate"] = time.monotonic()
                cur.cmd("migrate", uri=uri)
                while True:
                    info = cur.cmd("query-migrate")
                    if info.get("status") in FINAL:
                        break
                    check(time.monotonic() - hop["t_migrate"] < cfg["timeout"],
                          f"{tag}: hop {i} still {info.get('status')} after {cfg['timeout']} s")
                    time.sleep(0.01)
                hop["t_done"] = time.monotonic()
                check(info.get("status") == "completed", f"{tag}: hop {i}: {info}")
                hop.update({"downtime": info.get("downtime"), "total": info.get("total-time")})
                st = dst.wait_status(("running",), 30)
                hop["t_running"] = time.monotonic()
                time.sleep(cfg["settle"])
                # a source still forwarding (its grace period: at most 1 s
                # after the switchover, docs/net.md) is not killed yet
                deadline = time.monotonic() + 3
                while True:
                    hop["src_fwd"] = cur.cmd("query-migrate").get(FWD_CAP)
                    if not (hop["src_fwd"] or {}).get("active") or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
                hop["dst_fwd"] = dst.cmd("query-migrate").get(FWD_CAP)
                cur.kill()
                hop["t_end"] = time.monotonic()
                res["hops"].append(hop)
                log(f"  {tag} hop {i}: -> {tap}, downtime {hop['downtime']} ms, total "
                    f"{hop['total']} ms, status {st}, client ok "
                    f"{wl.status(cpath).get('ok')}, breaks {wl.status(cpath).get('breaks')}")
                cur = dst
                check(client.poll() is None, f"{tag}: the client exited")
            time.sleep(1.0)
            # while the client still talks: QEMU 7.2's guest may need its
            # interrupts to get the CPU after an incoming migration
            res["guest_retrans"] = guest_retrans(cur)
            res["client"] = wl.stop_client(client, cpath)
            client = None
        finally:
            if client is not None and client.poll() is None:
                client.kill()
                client.wait()
            for vm in vms:
                vm.kill()
            # a guest kernel that complained (seen on QEMU 7.2's destination:
            # "BUG: scheduling while atomic" after an incoming migration)
            res["kernel"] = [f"{vm.name}: {x}" for vm in vms for _, x in vm.lines
                             if KERNEL_TROUBLE.search(x)]
    return res


# ---- the figures ------------------------------------------------------------------------


def pct(xs, p):
    """The p-th percentile (nearest rank) of xs, or None."""
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


def analyse(res):
    """Per-hop and session figures from session()'s raw results."""
    c = res["client"]
    recs = c["recs"]
    breaks = c["breaks"]
    replies = sorted(r[1] for r in recs)
    gaps = list(zip(replies, replies[1:]))
    out = {"hops": [], "label": res["label"], "boot": res.get("boot")}
    near = []
    hops = res["hops"]
    for k, hp in enumerate(hops):
        w0, w1 = hp["t_migrate"], hp["t_end"]
        inw = [(b - a, a) for a, b in gaps if b > w0 and a < w1]
        g, g_at = max(inw) if inw else (None, None)
        wait = max([r[1] - r[0] for r in recs if r[1] > w0 and r[0] < w1] or [None],
                   key=lambda x: x or 0)
        inside = [r for r in recs if w0 <= r[1] <= w1]
        before = [r for r in recs if r[1] < w0]
        rt = None
        if inside and before and inside[-1][3] == before[-1][3]:
            rt = inside[-1][2] - before[-1][2]
        nxt = hops[k + 1]["t_migrate"] if k + 1 < len(hops) else float("inf")
        # a break belongs to the hop its last request was sent in (it is
        # seen up to 10 s later, maybe in a later hop)
        broke = [b for b in breaks if w0 <= b["sent"] < nxt]
        kept = not broke and any(r[1] > hp["t_done"] and r[1] > w0 for r in recs)
        fwd_s, fwd_d = hp.get("src_fwd") or {}, hp.get("dst_fwd") or {}
        out["hops"].append({"n": hp["n"], "t_migrate": w0,
                            "gap": g * 1000 if g is not None else None,
                            # where it began, from `completed` (ms; the
                            # switchover is shortly before)
                            "gap_at": (g_at - hp["t_done"]) * 1000 if g is not None else None,
                            "wait": wait * 1000 if wait is not None else None,
                            "retrans": rt, "kept": kept, "breaks": broke,
                            "downtime": hp.get("downtime"), "total": hp.get("total"),
                            "src_fwd": fwd_s, "dst_fwd": fwd_d})
        near += [(r[1] - r[0]) * 1000 for r in recs if abs(r[0] - hp["t_done"]) <= 1.0]
    # the machine's noise: the longest gap outside every hop's window
    quiet = [b - a for a, b in gaps
             if not any(b > hp["t_migrate"] and a < hp["t_end"] for hp in hops)]
    out["quiet_gap"] = max(quiet) * 1000 if quiet else None
    out["p50"], out["p99"] = pct(near, 50), pct(near, 99)
    out["near_n"] = len(near)
    out["requests"] = len(recs)
    # retransmissions over the run: per session, the last figure seen
    by_session = {}
    for r in recs:
        by_session[r[3]] = r[2]
    for b in breaks:
        if b.get("retrans") is not None:
            by_session[b["session"]] = max(by_session.get(b["session"], 0), b["retrans"])
    if c.get("end_retrans") is not None:
        by_session[c["sessions"]] = c["end_retrans"]
    out["retrans"] = sum(by_session.values())
    out["breaks"] = breaks
    out["kernel"] = res.get("kernel", [])
    g0, g1 = res.get("guest_retrans0"), res.get("guest_retrans")
    out["guest_retrans"] = g1 - g0 if g0 is not None and g1 is not None else None
    fw = {}  # counters summed over the hops; grace-ms: the longest
    for hp in hops:
        for side in ("src_fwd", "dst_fwd"):
            for k2, v in (hp.get(side) or {}).items():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    continue  # "active"
                if k2 == "grace-ms":
                    fw[(side, k2)] = max(fw.get((side, k2), 0), v)
                else:
                    fw[(side, k2)] = fw.get((side, k2), 0) + v
    out["fwd"] = fw
    out["fwd_seen"] = any(hp.get("src_fwd") or hp.get("dst_fwd") for hp in hops)
    return out


def dead_hop(a):
    """The hop from which the session never answered again (its guest died
    or hung), or None."""
    hs = a["hops"]
    if not hs or hs[-1]["kept"]:
        return None
    n = len(hs)
    while n > 0 and not hs[n - 1]["kept"]:
        n -= 1
    return hs[n]["n"]


# ---- the table --------------------------------------------------------------------------


def f0(x):
    return "-" if x is None else "%.0f" % x


def f1(x):
    return "-" if x is None else "%.1f" % x


def verdict(ok):
    return "met" if ok else "NOT met"


def rows(a, hops_n):
    """[(name, value text, number or None)] of one session's analysis."""
    if a is None:
        return None
    hs = a["hops"]
    gaps = [x["gap"] for x in hs if x["gap"] is not None]
    waits = [x["wait"] for x in hs if x["wait"] is not None]
    rts = [x["retrans"] for x in hs if x["retrans"] is not None]
    dts = [x["downtime"] for x in hs if x["downtime"] is not None]
    under = sum(1 for x in hs if x["gap"] is not None and x["gap"] < 20)
    kept = sum(1 for x in hs if x["kept"])
    r = [(f"hops with a reply gap (of {len(hs)})", len(gaps), f0),
         ("longest reply gap ms (all hops)", max(gaps) if gaps else None, f0),
         ("  median over the hops ms", statistics.median(gaps) if gaps else None, f0),
         ("  shortest hop ms", min(gaps) if gaps else None, f0),
         (f"  hops with gap < 20 ms (of {len(hs)})", under, f0),
         ("longest single request wait ms", max(waits) if waits else None, f0),
         ("p50 latency +-1 s of switchover ms", a["p50"], f1),
         ("p99 latency +-1 s of switchover ms", a["p99"], f1),
         ("longest gap outside the hops ms", a["quiet_gap"], f0),
         (f"sessions kept (hops of {len(hs)})", kept, f0),
         ("TCP retransmits, client (run)", a["retrans"], f0),
         ("  hops with a client retransmit", sum(1 for x in rts if x > 0), f0),
         ("TCP RetransSegs, guest (run)", a["guest_retrans"], f0),
         ("downtime ms (query-migrate, median)", statistics.median(dts) if dts else None, f0),
         ("  max ms", max(dts) if dts else None, f0)]
    for (side, k), v in sorted(a["fwd"].items()):
        r.append((f"{'source' if side == 'src_fwd' else 'dest'} net-forward {k} "
                  + ("(max)" if k == "grace-ms" else "(sum)"), v, f0))
    return r


def print_tables(cfg, results):
    """results: {(workload, label): analysis or {"error": text}}."""
    labels = []
    for (_, lb) in results:
        if lb not in labels:
            labels.append(lb)
    order = [x for x in ("godwit", "godwit-nofwd", "qemu") if x in labels]
    print(f"network continuity across live migration: {cfg['hops']} hops per session, -m "
          f"{cfg['mem']} -smp 1, TAP on a bridge (two TAP devices, one netns), a request every "
          f"{cfg['period']:g} ms, downtime-limit {cfg['downtime']} ms, source kept "
          f"{cfg['settle']:g} s after completed; load {os.getloadavg()[0]:.2f} at the end")
    head = f"{'workload / metric':<40}" + "".join(f"{x:>14}" for x in order)
    if "godwit" in order and "qemu" in order:
        head += f"{'ratio':>8}"
    goals = []
    notes = []
    for wl in cfg["workloads"]:
        print(f"{wl}")
        print(head)
        per = {}
        for lb in order:
            a = results.get((wl, lb))
            if a is None:
                continue
            if "error" in a:
                notes.append(f"{wl}, {lb}: the run failed: {a['error']}")
                continue
            per[lb] = dict((n, (v, f)) for n, v, f in rows(a, cfg["hops"]))
            by_hop = {}
            for b in a["breaks"]:
                hop = max([x["n"] for x in a["hops"] if x["t_migrate"] <= b["sent"]] or [0])
                by_hop.setdefault(hop, []).append(b)
            for hop, bs in sorted(by_hop.items()):
                b = bs[0]
                late = b["t"] - b["sent"]
                notes.append(f"{wl}, {lb}: "
                             + (f"hop {hop}" if hop else "before the first hop")
                             + f": {len(bs)} client error(s), the first: {b['error']}"
                             + (f" ({late:.1f} s after the request)" if late > 0.05 else ""))
            for x in a["kernel"][:3]:
                notes.append(f"{wl}, {lb}: the guest kernel said: {x.strip()}")
            for d in a.get("died_before", []):
                notes.append(f"{wl}, {lb}: attempt {d['attempt']}: the guest died in hop "
                             f"{d['hop']} ({d['kernel'].strip()}); the figures are of attempt "
                             f"{d['attempt'] + 1}")
        # no ratio between a session that lived through every hop and one
        # that died on the way
        whole = all(len(a.get("hops", [])) == cfg["hops"]
                    and all(x["gap"] is not None for x in a["hops"])
                    for a in (results.get((wl, "godwit")), results.get((wl, "qemu")))
                    if a is not None)
        names = []
        for lb in order:
            for n in per.get(lb, {}):
                if n not in names:
                    names.append(n)
        for n in names:
            cells = []
            for lb in order:
                v = per.get(lb, {}).get(n)
                cells.append(v[1](v[0]) if v else "-")
            line = f"  {n:<38}" + "".join(f"{c:>14}" for c in cells)
            if "godwit" in order and "qemu" in order:
                g, q = per.get("godwit", {}).get(n), per.get("qemu", {}).get(n)
                ratio = "-"
                timed = " ms" in n and "hops with" not in n  # a time, not a count
                if g and q and g[0] is not None and q[0] and whole and timed:
                    ratio = "%.2f" % (g[0] / q[0])
                line += f"{ratio:>8}"
            print(line)
        for lb in order:
            a = results.get((wl, lb))
            if a and "error" not in a:
                print(f"  {lb} per hop, reply gap ms: "
                      + " ".join(f0(x["gap"]) for x in a["hops"]) + "; began at ms from "
                      "`completed`: " + " ".join(f0(x["gap_at"]) for x in a["hops"])
                      + "; retransmits: "
                      + " ".join("-" if x["retrans"] is None else str(x["retrans"])
                                 for x in a["hops"]))
                if a.get("cart"):
                    print(f"  {lb} cart: {a['cart']}")
        # the goals, for godwit (and shown for the others)
        for lb in order:
            a = results.get((wl, lb))
            if a is None:
                continue
            if "error" in a:
                goals.append((wl, lb, "the run", False, a["error"][:80]))
                continue
            hs = a["hops"]
            under = sum(1 for x in hs if x["gap"] is not None and x["gap"] < 20)
            goals.append((wl, lb, f"longest peer-observed pause < 20 ms in {cfg['hops']} of "
                          f"{cfg['hops']} runs", under == cfg["hops"] and len(hs) == cfg["hops"],
                          f"{under} of {len(hs)}"))
            # frames the forwarding itself dropped: the source's overflow,
            # the destination's dropped (docs/net.md)
            overflow = int(a["fwd"].get(("src_fwd", "overflow"), 0)
                           + a["fwd"].get(("dst_fwd", "dropped"), 0))
            lost = a["retrans"] + (a["guest_retrans"] or 0) + overflow
            goals.append((wl, lb, "0 frames lost", lost == 0,
                          f"{a['retrans']} client retransmit(s), guest "
                          + ("unknown (no shell)" if a["guest_retrans"] is None else
                             f"{a['guest_retrans']}")
                          + (f", {overflow} dropped by the forwarding" if a["fwd_seen"] else "")))
            kept = sum(1 for x in hs if x["kept"])
            intact = kept
            extra = ""
            if wl == "cart":
                c = a.get("cart_ok")
                intact = kept if c else 0
                extra = "; cart " + ("intact" if c else "NOT intact")
            died = a.get("died_before", [])
            if died:
                extra += "; " + ", ".join(f"attempt {d['attempt']}'s guest died in hop "
                                          f"{d['hop']}" for d in died)
            goals.append((wl, lb, f"{cfg['hops']} of {cfg['hops']} sessions"
                          + (" and carts" if wl == "cart" else "") + " intact",
                          intact == cfg["hops"] and len(hs) == cfg["hops"] and not died,
                          f"{kept} of {len(hs)} sessions kept{extra}"))
    for n in notes:
        print(f"note: {n}")
    print("ratio = godwit / qemu of the times (only when both sessions have a reply gap in "
          "every hop); "
          "reply gap = the largest gap between two consecutive replies "
          "the client saw in a hop's window (includes the client's 5 ms pacing)")
    print("goals (issue 15):")
    for wl, lb, what, ok, how in goals:
        print(f"  {wl}, {lb}: {what}: {verdict(ok)} ({how})")


# ---- main -------------------------------------------------------------------------------


def config():
    build = os.environ.get("BUILD", "build/release")
    return {
        "hops": int(os.environ.get("BENCH_NETCONT_HOPS", "10")),
        "workloads": os.environ.get("BENCH_NETCONT_WORKLOADS", "echo,cart").split(","),
        "mem": os.environ.get("BENCH_NETCONT_MEM", "256M"),
        "downtime": int(os.environ.get("BENCH_NETCONT_DOWNTIME", "300")),
        "period": float(os.environ.get("BENCH_NETCONT_PERIOD", "5")),
        "settle": float(os.environ.get("BENCH_NETCONT_SETTLE", "2")),
        "timeout": float(os.environ.get("BENCH_NETCONT_TIMEOUT", "60")),
        "retries": int(os.environ.get("BENCH_NETCONT_RETRIES", "1")),
        "boot_timeout": float(os.environ.get("BENCH_TIMEOUT", "300")),
        "godwit": os.environ.get("GODWIT", os.path.join(ROOT, build, "godwit-vm")),
        "qemu": os.environ.get("QEMU", "qemu-system-riscv64"),
        "logs": os.environ.get("BENCH_LOGS", os.path.join(ROOT, build, "bench", "netcont")),
    }


def main():
    cfg = config()
    import cartload  # bench/netcont/cartload.py: the cart workload (needs net-cart's parts)
    wls = {"echo": EchoWorkload, "cart": cartload.CartWorkload}
    bad = [w for w in cfg["workloads"] if w not in wls]
    if bad:
        log(f"bench-netcont: unknown workload(s) {bad}: echo, cart")
        return 2
    kinds = mg.emulators(cfg, "bench-netcont")
    if kinds == 2:
        return 2
    if os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/dev/net/tun"):
        log("bench-netcont: needs root, ip(8) and /dev/net/tun")
        return 2
    try:
        h.guest_image()
    except h.Skip as e:
        log(f"bench-netcont: no guest image: {e}")
        return 2
    workloads = []
    for w in cfg["workloads"]:
        try:
            workloads.append(wls[w](cfg))
        except h.Skip as e:
            log(f"bench-netcont: the {w} workload cannot run here: {e}")
            if len(cfg["workloads"]) == 1:
                return 2
    cfg["workloads"] = [w.name for w in workloads]
    os.makedirs(cfg["logs"], exist_ok=True)
    emus = {k: Emu(k, cfg[k]) for k in kinds}
    results = {}
    failed = False
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="godwit-bench-netcont-") as tmp:
        for wl in workloads:
            plan = [(k, k, True) for k in kinds]
            for k, label, fwd in plan:
                log(f"bench-netcont: {wl.name} on {label}, {cfg['hops']} hops")
                t = time.monotonic()
                try:
                    died = []
                    for attempt in range(1, cfg["retries"] + 2):
                        raw = session(emus[k], label, fwd, wl, cfg, tmp, attempt)
                        a = analyse(raw)
                        if hasattr(wl, "finish"):
                            wl.finish(raw, a)
                        hop = dead_hop(a)
                        if hop is None or attempt > cfg["retries"]:
                            break
                        # the guest died (QEMU 7.2's does, see docs/bench.md):
                        # the session once more, so the hops have figures; the
                        # death stays in the goals and the notes
                        died.append({"attempt": attempt, "hop": hop,
                                     "kernel": (a["kernel"] or ["no kernel message"])[0]})
                        log(f"bench-netcont: {wl.name} on {label}: the guest died in hop {hop}: "
                            f"once more")
                    a["died_before"] = died
                    results[(wl.name, label)] = a
                    if k == "godwit" and raw.get("has_forward") and label == "godwit":
                        plan.append((k, "godwit-nofwd", False))
                except Exception as e:  # a failed check, QMP, a crash
                    failed = True
                    results[(wl.name, label)] = {"error": str(e)[:300]}
                    log(f"bench-netcont: {wl.name} on {label} failed: {e} "
                        f"(logs {cfg['logs']}/{wl.name}.{label}.*)")
                log(f"bench-netcont: {wl.name} on {label}: {time.monotonic() - t:.0f} s")
    print_tables(cfg, results)
    print(f"whole run: {time.monotonic() - t_all:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    h.main(main)
