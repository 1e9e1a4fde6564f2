#!/usr/bin/env python3
"""Pausing, recovering and holding pre-copy (issue 13): godwit-vm's QMP
migrate-pause, migrate-recover, migrate resume:true, the capability
x-godwit-precopy-recover and the parameter x-godwit-hold-switchover, between
two godwit-vm processes on this host (127.0.0.1 TCP), with the TCP fault
proxy of tests/lib/proxy.py cutting the link.

Guests: the migration oracle tests/guest/mig_pagepass at -m 64M (it rewrites
all of its 58 MiB without pause and checks every page: `pass N t=MTIME`),
and where a known dirty rate is needed tests/guest/mig_dirty_fill at -m 128M
(a 64 MiB area, every page written once at start, then 256 pages/s of mtime,
1 MiB/s: `tick N t=MTIME w=PAGES`, w the pages written since the start).  It
does not check its pages itself, so its destination starts with -S and,
once the migration completed, source and destination must have equal
x-godwit-state-hash before `cont`.

In every case the source guest keeps running throughout (query-status
running, its passes or ticks advancing while the migration is paused or
held), and after completion its passes (ticks) go on by one on the
destination, no FAIL, mtime never going back; the destination printed
nothing before.  "paused" below means: query-migrate status
x-godwit-precopy-paused and a MIGRATION event saying so.

  pause-resume    mig_dirty_fill, max-bandwidth 16 MiB/s (the first pass of
                  64 MiB takes 4 s); migrate-pause once half of the area was
                  sent: both sides paused, the source's ram.transferred
                  stands still for the HOLD_SECONDS (3) hold while its guest
                  runs; migrate-recover tcp:127.0.0.1:0 on the destination
                  (status x-godwit-precopy-recover, the port from
                  query-migrate's socket-address), migrate resume:true on the
                  source (MIGRATION x-godwit-precopy-recover then active):
                  completed, x-godwit-recoveries 1, equal state hashes.
                  The bound on what the release sent: ram.transferred after
                  completion minus at the pause (x-godwit-resent included) is
                  at most 1.05 x 4 KiB x (D + R) + 256 KiB, where
                  D = pages the guest wrote from the last tick before
                  `migrate` to the source's last tick (+ 3 pages, the 10 ms
                  after it), at most the area's 16384 pages: a superset of
                  the pages dirtied during the first pass, the hold and
                  after the release; R = the rest of the first pass,
                  16384 area pages + 256 (program, stacks, device tree) -
                  ram.normal at the pause; 256 KiB: the header, the config
                  and device sections, framing.  A source that started over
                  would send the whole 64 MiB again: the pause comes at
                  about 32 MiB, so the bound is about 38 MiB.
  link-cut        pagepass through a proxy that resets both connections after
                  3 MiB (max-bandwidth 8 MiB/s): the source paused with an
                  error-desc naming the lost connection, the destination
                  paused; recovered through a new proxy (a new port):
                  completed, x-godwit-recoveries 1.
  cut-twice       the same, then the recovered stream is cut again after
                  3 MiB (paused again on both sides), then migrate
                  resume:true to a port nobody listens on (refused, or back
                  to paused with an error-desc saying why), then a good
                  resume: completed, x-godwit-recoveries 2.
  cancel-paused   migrate-pause; while paused migrate-pause again and migrate
                  without resume are refused (as `refusals` checks them); a
                  second migrate-recover (another port) on the destination
                  listening for the resume is refused or, accepted, changes
                  nothing (the first port listens, the other does not);
                  then migrate_cancel while paused: cancelled (MIGRATION
                  cancelled), the source runs on; a fresh migration to a new
                  destination completes.
  held-converged  mig_dirty_fill, x-godwit-hold-switchover true before
                  migrate, downtime-limit 200 ms, max-bandwidth 32 MiB/s:
                  status x-godwit-held-converged, kept for HOLD_SECONDS while
                  the guest runs and ram.transferred and dirty-sync-count
                  grow (rounds at least 100 ms apart: at most
                  HOLD_SECONDS / 0.1 + 3 syncs; bytes at most max-bandwidth x
                  time); then the parameter false: completed with downtime
                  <= downtime-limit + 100 ms (slack for two VMs and this
                  test sharing 2 cores), equal state hashes.
  refusals        GenericError with a reason, and no change to query-status
                  or query-migrate's status, for: migrate-pause without a
                  migration (capability off and on); migrate resume:true
                  without a migration; migrate-pause while active without
                  the capability; migrate resume:true while active;
                  migrate-recover on a destination that is receiving, on one
                  that still waits for its stream, and on a VM that is no
                  destination.  The active migration then completes.
  hostile-resume  a paused destination listening after migrate-recover gets:
                  random bytes; streams crafted from the real stream's head
                  (header, CONFIG, SESSION, kept by a migstream.Proxy on the
                  first connection): that head replayed as it was, with the
                  RESUME flag (attempt 0, seen), and with the flag, another
                  session id and attempt 1, each answered ERROR with a
                  reason (never RESUME_AT); a fresh (not resumed) migration
                  from a second source of the same configuration; that second
                  source's own paused migration resumed into it (migrate
                  resume:true, a different session): each refused (the
                  second source's migration fails, or goes back to paused,
                  with an error-desc), the destination stays paused (or
                  recovering), still listening, silent; then the real
                  source resumes into it and completes.
  tls-resume      pagepass over TLS-PSK (tls-creds, the destination with
                  -incoming defer); paused; the source's key file removed
                  (the job keeps its keys); random plaintext bytes to the
                  recover port: still paused and listening; the resume over
                  TLS completes, x-godwit-recoveries 1.

Prints `PASS name` / `FAIL name: why` / `SKIP name: reason` and the last line
`N passed, N failed, N skipped`; exits 1 if anything failed.

usage: tests/linux/hold_test.py [--only NAME[,NAME]]

Environment: BUILD (build/release), GODWIT_VM, HOLD_TEST_CASES
(comma-separated subset), HOLD_SECONDS (3).
"""

import os
import re
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
import migrate_test as mt  # noqa: E402  (tests/linux/migrate_test.py: its migration steps)
import migration as mig  # noqa: E402
import proxy as tcpproxy  # noqa: E402
from harness import QMPError, ROOT, Skip, check  # noqa: E402
from migration import MigVM, baremetal_args, pagepass_args, passes, wait_passes  # noqa: E402
from migstream import (Proxy, StreamParser, connect_uri, listening, parse_replies,  # noqa: E402
                       wait_listening)

RECOVER = "x-godwit-precopy-recover"  # the capability, and the status while resuming
PAUSED = "x-godwit-precopy-paused"
HELD = "x-godwit-held-converged"
HOLD = "x-godwit-hold-switchover"
FAST, SLOW = mt.FAST, mt.SLOW
HOLD_SECONDS = float(os.environ.get("HOLD_SECONDS", "3"))

FILL = os.path.join(ROOT, "build", "guest", "mig_dirty_fill.elf")
FILL_MEM = "128M"
FILL_PAGES = 16384  # its 64 MiB area
FILL_RATE = 256  # pages per second of mtime
FILL_EXTRA = 256  # non-zero pages besides the area: program, stacks, device tree
DIRTY_RE = re.compile(r"^tick (\d+) t=(\d+) w=(\d+)\n", re.M)

# docs/state.md: a recoverable stream's SESSION section (u64 id, u64 attempt)
# and the header flag of a resumed stream (flags: u32 at offset 20)
SEC_SESSION = 6
FLAG_RESUME = 4


# ---- the guests ------------------------------------------------------------------------


def dirty_ticks(text):
    """mig_dirty's ticks [(tick, mtime, pages written)], after checking that
    they count up by one and neither mtime nor the pages written go back."""
    xs = [(int(n), int(t), int(w)) for n, t, w in DIRTY_RE.findall(text)]
    for (n0, t0, w0), (n1, t1, w1) in zip(xs, xs[1:]):
        check(n1 == n0 + 1, f"tick {n1} follows tick {n0}: one was lost or repeated")
        check(t1 >= t0 and w1 >= w0, f"tick {n0} t={t0} w={w0} then tick {n1} t={t1} w={w1}")
    return xs


class Guest:
    """A guest program: its arguments and how to read its progress."""

    def __init__(self, name, args, parse):
        self.name, self.args, self.parse = name, args, parse

    def wait(self, vm, history, count, timeout=60.0):
        return mig.wait_counted(vm, history, count, self.parse, timeout)

    def count(self, vm, history=""):
        return len(self.parse(history + vm.output()))


def pagepass():
    return Guest("pagepass", pagepass_args(), passes)


def dirty_fill():
    """mig_dirty_fill (built if missing), or Skip."""
    if not os.path.exists(FILL):
        r = subprocess.run(["make", "-C", ROOT, "build/guest/mig_dirty_fill.elf"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise Skip("cannot build mig_dirty_fill.elf: " + r.stdout.strip()[-200:])
    return Guest("dirty", baremetal_args(FILL, FILL_MEM), dirty_ticks)


# ---- migration steps -------------------------------------------------------------------


def godwit_only(ctx):
    if ctx.emu.kind != "godwit":
        raise Skip("pausing and recovering pre-copy are godwit's")


def set_recover(vm, on=True):
    vm.cmd("migrate-set-capabilities", capabilities=[{"capability": RECOVER, "state": on}])


def start_dest(ctx, vms, name, guest, paused=False):
    """A destination on a fresh 127.0.0.1 port, its QMP connected at once
    (events are kept from then on); returns (vm, port)."""
    dst, uri = mt.start_dest(ctx, vms, name, guest.args, "tcp", paused=paused)
    dst.connect()
    return dst, int(uri.rsplit(":", 1)[1])


def statuses(vm):
    """Every MIGRATION status vm sent since its QMP connected, in order."""
    acc = vm.__dict__.setdefault("_statuses", [])
    acc += [e["data"].get("status") for e in mt.migration_events(vm) if e["event"] == "MIGRATION"]
    return acc


def wait_event(vm, status, after=0, timeout=10.0):
    """Wait for a MIGRATION event `status` past the first `after` events;
    returns the index after it."""
    deadline = time.monotonic() + timeout
    while True:
        evs = statuses(vm)
        if status in evs[after:]:
            return evs.index(status, after) + 1
        check(time.monotonic() < deadline,
              f"{vm.name}: no MIGRATION {status} event in {timeout}s (got {evs[after:]})")
        time.sleep(0.02)


def query(vm):
    check(vm.proc.poll() is None, f"{vm.name}: exited with status {vm.proc.returncode}; "
                                  f"stderr: {vm.stderr()[-400:]}")
    return vm.cmd("query-migrate")


def wait_mig(vm, want, timeout=30.0, bad=mig.FINAL):
    """Poll query-migrate until its status is one of want; fail early on one
    of bad (those not wanted).  Returns its answer with '_seen', the
    statuses polled in order, and '_most', the largest ram.transferred
    polled before it."""
    want = (want,) if isinstance(want, str) else tuple(want)
    deadline = time.monotonic() + timeout
    seen, most = [], 0
    while True:
        info = query(vm)
        s = info.get("status")
        if not seen or seen[-1] != s:
            seen.append(s)
        if s in want:
            info["_seen"], info["_most"] = seen, most
            return info
        most = max(most, info.get("ram", {}).get("transferred", 0))
        check(s not in bad, f"{vm.name}: migration {s} (polled {seen}), want {'/'.join(want)}: "
                            f"{info.get('error-desc', '')}; stderr: {vm.stderr()[-300:]}")
        check(time.monotonic() < deadline,
              f"{vm.name}: migration {s} after {timeout}s (polled {seen}), want "
              f"{'/'.join(want)}: {info}")
        time.sleep(0.01)


def wait_sent(vm, nbytes, timeout=30.0):
    """Poll until an active migration sent nbytes; returns query-migrate."""
    deadline = time.monotonic() + timeout
    while True:
        info = query(vm)
        s = info.get("status")
        check(s in ("setup", "active"), f"{vm.name}: migration {s} before {nbytes >> 20} MiB went: "
                                        f"{info}")
        if info.get("ram", {}).get("transferred", 0) >= nbytes:
            return info
        check(time.monotonic() < deadline, f"{vm.name}: {info} after {timeout}s, waiting for "
                                           f"{nbytes >> 20} MiB")
        time.sleep(0.01)


def pause(src, dst):
    """migrate-pause on the source; both sides paused (status and event).
    Returns the source's query-migrate."""
    n = len(statuses(src))
    src.cmd("migrate-pause")
    info = wait_mig(src, PAUSED, 15)
    wait_event(src, PAUSED, n)
    wait_paused_dst(dst)
    return info


def wait_paused_dst(dst, after=0, timeout=30.0):
    wait_mig(dst, PAUSED, timeout)
    wait_event(dst, PAUSED, after)
    check(dst.output() == "", f"{dst.name}: the guest ran on the paused destination: "
                              f"{dst.output()[:200]!r}")


def runs_on(src, guest, what, more=3):
    """The source's guest runs: query-status running and `more` passes
    (ticks) beyond what it printed so far."""
    st = src.status()
    check(st == "running", f"{src.name}: status {st} {what}, want running")
    guest.wait(src, "", guest.count(src) + more, timeout=30)


def recover(dst):
    """migrate-recover tcp:127.0.0.1:0 on a paused destination: it listens
    (status x-godwit-precopy-recover); returns the port it took."""
    n = len(statuses(dst))
    dst.cmd("migrate-recover", uri="tcp:127.0.0.1:0")
    deadline = time.monotonic() + 10
    while True:
        info = query(dst)
        addr = (info.get("socket-address") or [{}])[0]
        port = int(addr.get("port") or 0)
        if port:
            break
        check(time.monotonic() < deadline, f"{dst.name}: no port in query-migrate's "
                                           f"socket-address after migrate-recover: {info}")
        time.sleep(0.01)
    check(info.get("status") == RECOVER,
          f"{dst.name}: status {info.get('status')} after migrate-recover, want {RECOVER}")
    wait_event(dst, RECOVER, n)
    wait_listening(dst, f"tcp:127.0.0.1:{port}")
    return port


def resume_ok(src, port):
    """migrate resume:true to 127.0.0.1:port: MIGRATION x-godwit-precopy-recover
    then active; returns the index of the events after them."""
    n = len(statuses(src))
    src.cmd("migrate", uri=f"tcp:127.0.0.1:{port}", resume=True)
    i = wait_event(src, RECOVER, n)
    return wait_event(src, "active", i)


def finish(src, dst, after, timeout=60.0):
    """Wait for completed on the source (MIGRATION completed), postmigrate,
    and the destination out of its incoming state.  Returns query-migrate,
    with '_dst' the destination's ram.transferred."""
    info = wait_mig(src, "completed", timeout)
    wait_event(src, "completed", after)
    src.wait_status(("postmigrate",), 5)
    dst.wait_status(("inmigrate",), 30, leave=True)
    info["_dst"] = query(dst).get("ram", {}).get("transferred", 0)
    return info


def counted_all(src, info, since=0, vs_dst=True):
    """The source's ram.transferred at completion (info) counts every
    connection: it never went back (since: a value read earlier), covers
    the pages sent (normal-bytes) and (vs_dst) what the destination
    received; not after hostile peers, whose refused bytes the destination
    may count too.  Checked last in a case, so that the rest is checked
    whatever it says."""
    ram, got = info["ram"], info["_dst"]
    check(ram["transferred"] >= max(since, info["_most"]),
          f"{src.name}: ram.transferred went back from {max(since, info['_most'])} to "
          f"{ram['transferred']} at completion: {info}")
    check(ram["transferred"] >= ram["normal-bytes"],
          f"{src.name}: ram.transferred {ram['transferred']} < normal-bytes "
          f"{ram['normal-bytes']} at completion: {info}")
    check(ram["transferred"] >= got or not vs_dst,
          f"{src.name}: ram.transferred {ram['transferred']} at completion, the destination "
          f"received {got}: {info}")


def recoveries(info, want):
    got = info.get("x-godwit-recoveries")
    check(got == want, f"x-godwit-recoveries {got}, want {want}: {info}")
    check(isinstance(info.get("x-godwit-resent"), int),
          f"query-migrate has no x-godwit-resent: {info}")
    return f"resent {info['x-godwit-resent'] >> 10} KiB"


def goes_on(src, dst, guest, hashed=False):
    """After completion: with hashed (destination -S) equal state hashes,
    then cont; the guest's passes (ticks) go on by one on the destination."""
    if hashed:
        st = dst.status()
        check(st in ("paused", "prelaunch"), f"{dst.name}: status {st} after completion with -S")
        check(dst.output() == "", f"{dst.name} printed {dst.output()[:200]!r} while paused")
        hs = src.cmd("x-godwit-state-hash")["hash"]
        hd = dst.cmd("x-godwit-state-hash")["hash"]
        check(hs == hd, f"source state hash {hs}, destination {hd}")
        dst.cmd("cont")
    dst.wait_status(("running",), 10)
    src.kill()
    history = src.output()
    n = guest.count(src)
    guest.wait(dst, history, n + 3)
    return n


def refused(vm, name, what, **args):
    """The command fails with a GenericError and changes neither
    query-status nor query-migrate's status; returns its reason."""
    before = (vm.status(), query(vm).get("status"))
    try:
        vm.cmd(name, **args)
    except QMPError as e:
        check(e.cls == "GenericError" and e.desc, f"{what}: {name} failed with {e.cls}: {e.desc}")
        after = (vm.status(), query(vm).get("status"))
        check(after == before, f"{what}: (status, migration) {before} before {name}, {after} after")
        return e.desc
    check(False, f"{what}: {name} {args} was accepted")


def still_paused(dst, rport, what):
    """After a refused peer: the destination is still paused (or listening
    for the resume), on rport, and silent."""
    time.sleep(0.3)
    s = query(dst).get("status")
    check(s in (PAUSED, RECOVER), f"{dst.name}: {s} after {what}, want {PAUSED}/{RECOVER}")
    check(dst.status() != "running", f"{dst.name}: {dst.status()} after {what}")
    check(dst.output() == "", f"{dst.name}: the guest ran after {what}")
    check(listening(f"tcp:127.0.0.1:{rport}"),
          f"{dst.name}: no longer listening on {rport} after {what}")


def recover_again(dst, rport):
    """A second migrate-recover (another port) while the destination listens
    for the resume: refused (the spec: only while paused), or accepted as a
    no-op that leaves the listener where it was (godwit-vm's choice; said in
    the returned note).  Either way nothing changes."""
    other = h.free_port()
    try:
        dst.cmd("migrate-recover", uri=f"tcp:127.0.0.1:{other}")
    except QMPError as e:
        check(e.cls == "GenericError" and e.desc, f"second migrate-recover: {e.cls}: {e.desc}")
        note = e.desc
    else:
        note = "second migrate-recover accepted as a no-op"
    info = query(dst)
    port = int(((info.get("socket-address") or [{}])[0]).get("port") or 0)
    check(info.get("status") == RECOVER and port == rport and
          listening(f"tcp:127.0.0.1:{rport}") and not listening(f"tcp:127.0.0.1:{other}"),
          f"{dst.name}: after a second migrate-recover to port {other}: {info}, listening on "
          f"{rport}: {listening(f'tcp:127.0.0.1:{rport}')}")
    return note


def with_vms(fn):
    """Run fn(vms) and kill every VM (stop every proxy) it started, whatever
    happened."""
    vms = []
    try:
        return fn(vms)
    finally:
        for v in vms:
            v.stop() if isinstance(v, tcpproxy.Proxy) else v.kill()


# ---- the cases ---------------------------------------------------------------------------


def case_pause_resume(ctx):
    godwit_only(ctx)
    g = dirty_fill()

    def body(vms):
        src = MigVM(ctx, "pause", g.args)
        vms.append(src)
        g.wait(src, "", 10)
        dst, port = start_dest(ctx, vms, "pause-dst", g, paused=True)
        set_recover(src)
        mt.set_params(src, max_bandwidth=16 << 20)
        w_start = dirty_ticks(src.output())[-1][2]
        n0 = len(statuses(src))
        src.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        wait_sent(src, FILL_PAGES * 4096 // 2)
        at = pause(src, dst)
        sent, normal = at["ram"]["transferred"], at["ram"]["normal"]
        check(normal < FILL_PAGES * 0.8,
              f"the first pass was nearly over at the pause ({normal} pages sent): too fast")
        t_hold = time.monotonic()
        ticks0 = g.count(src)
        time.sleep(HOLD_SECONDS)
        runs_on(src, g, "while paused")
        check(g.count(src) - ticks0 >= HOLD_SECONDS * 50,
              f"{g.count(src) - ticks0} ticks in a {HOLD_SECONDS}s hold")
        held = query(src)
        check(held.get("status") == PAUSED, f"the source left {PAUSED} by itself: {held}")
        check(held["ram"]["transferred"] == sent,
              f"ram.transferred went from {sent} to {held['ram']['transferred']} while paused")
        dst_st = dst.status()
        check(dst_st != "running" and query(dst).get("status") == PAUSED and dst.output() == "",
              f"{dst.name}: {dst_st} / {query(dst).get('status')} during the hold, output "
              f"{dst.output()[:100]!r}")
        mt.set_params(src, max_bandwidth=FAST)
        rport = recover(dst)
        i = resume_ok(src, rport)
        info = finish(src, dst, i)
        hold = time.monotonic() - t_hold
        w_end = dirty_ticks(src.output())[-1][2]
        dirtied = min(FILL_PAGES, w_end - w_start + 3)
        rest = FILL_PAGES + FILL_EXTRA - normal
        bound = int(1.05 * 4096 * (dirtied + rest)) + (256 << 10)
        why = (f"bound {bound >> 10} KiB ({dirtied} pages dirtied since migrate, {rest} left of "
               f"the first pass, x-godwit-resent {info.get('x-godwit-resent')})")
        # the pages first (ram.normal), then the bytes (ram.transferred, last)
        pages = info["ram"]["normal"] - normal
        check(pages * 4096 <= bound, f"the release sent {pages} pages, {why}")
        evs = statuses(src)[n0:]
        check(evs.index(PAUSED) < evs.index(RECOVER) < evs.index("completed"),
              f"{src.name}: MIGRATION events {evs}")
        resent = recoveries(info, 1)
        n = goes_on(src, dst, g, hashed=True)
        counted_all(src, info, since=sent)
        after = info["ram"]["transferred"] - sent
        check(after <= bound, f"the release sent {after >> 10} KiB, {why}")
        return (f"paused at {sent >> 20} MiB ({normal} pages) for {hold:.1f}s; the release sent "
                f"{after >> 10} KiB <= {bound >> 10} KiB ({dirtied} dirtied + {rest} left), "
                f"{resent}; downtime {info.get('downtime')} ms; equal hashes, ticks past {n}; "
                f"destination: {dst_st} while paused, events {statuses(dst)}")
    return with_vms(body)


def cut_migration(ctx, vms, name, cut=3 << 20):
    """A pagepass source migrating (recoverable, max-bandwidth SLOW) to a
    destination through a proxy that resets the link after `cut` bytes:
    both sides paused, the source's error-desc names the lost connection.
    Returns (src, dst, proxy, error-desc)."""
    g = pagepass()
    src = MigVM(ctx, name, g.args)
    vms.append(src)
    wait_passes(src, "", 2)
    dst, port = start_dest(ctx, vms, name + "-dst", g)
    p = proxied(vms, port, cut)
    set_recover(src)
    mt.set_params(src, max_bandwidth=SLOW)
    src.cmd("migrate", uri=f"tcp:127.0.0.1:{p.port}")
    info = wait_mig(src, PAUSED, 30)
    check(p.stats()["cuts"] == 1, f"the proxy did not cut: {p.stats()}")
    wait_event(src, PAUSED)
    desc = info.get("error-desc") or ""
    check("connection lost" in desc,
          f"{src.name}: error-desc {desc!r}, want 'connection lost: ...'")
    wait_paused_dst(dst)
    runs_on(src, g, "while paused")
    return src, dst, g, desc


def proxied(vms, port, cut=None):
    """A tcpproxy.Proxy to 127.0.0.1:port (stopped by with_vms), armed to
    reset the link after `cut` bytes from the source."""
    p = tcpproxy.Proxy(("127.0.0.1", 0), ("127.0.0.1", port))
    vms.append(p)
    if cut:
        p.cut_after(cut)
    return p


def case_link_cut(ctx):
    godwit_only(ctx)

    def body(vms):
        src, dst, g, desc = cut_migration(ctx, vms, "cut")
        rport = recover(dst)
        p2 = proxied(vms, rport)
        mt.set_params(src, max_bandwidth=FAST)
        i = resume_ok(src, p2.port)
        info = finish(src, dst, i)
        resent = recoveries(info, 1)
        n = goes_on(src, dst, g)
        counted_all(src, info)
        return (f"cut after 3 MiB: {desc[:80]}; recovered through a new port: completed, "
                f"{resent}, passes past {n}")
    return with_vms(body)


def case_cut_twice(ctx):
    godwit_only(ctx)

    def body(vms):
        src, dst, g, desc = cut_migration(ctx, vms, "cut2")
        # the recovered stream is cut again
        rport = recover(dst)
        p2 = proxied(vms, rport, cut=3 << 20)
        n = len(statuses(dst))
        i = resume_ok(src, p2.port)
        info = wait_mig(src, PAUSED, 30)
        wait_event(src, PAUSED, i)
        check(p2.stats()["cuts"] == 1, f"the second proxy did not cut: {p2.stats()}")
        desc2 = info.get("error-desc") or ""
        check("connection lost" in desc2, f"error-desc after the second cut: {desc2!r}")
        wait_paused_dst(dst, n)
        runs_on(src, g, "paused again")
        # a resume to a port nobody listens on
        dead = h.free_port()
        n = len(statuses(src))
        try:
            src.cmd("migrate", uri=f"tcp:127.0.0.1:{dead}", resume=True)
            wait_event(src, PAUSED, n, 30)
            info = wait_mig(src, PAUSED, 10)
            why = info.get("error-desc") or ""
            check(why and why != desc2, f"error-desc after the failed resume: {why!r}")
            failed = f"back to paused: {why[:70]}"
        except QMPError as e:
            check(e.cls == "GenericError" and e.desc, f"the failed resume: {e.cls}: {e.desc}")
            check(query(src).get("status") == PAUSED, f"after the refused resume: {query(src)}")
            failed = f"refused: {e.desc[:70]}"
        runs_on(src, g, "after the failed resume")
        # then a good one
        rport = recover(dst)
        mt.set_params(src, max_bandwidth=FAST)
        i = resume_ok(src, rport)
        info = finish(src, dst, i)
        resent = recoveries(info, 2)
        n = goes_on(src, dst, g)
        counted_all(src, info)
        return (f"cut, recovered, cut again ({desc2[:50]}), resume to a dead port {failed}, "
                f"good resume completed, {resent}, passes past {n}")
    return with_vms(body)


def case_cancel_paused(ctx):
    godwit_only(ctx)

    def body(vms):
        g = pagepass()
        src = MigVM(ctx, "cancel", g.args)
        vms.append(src)
        wait_passes(src, "", 2)
        dst, port = start_dest(ctx, vms, "cancel-dst", g)
        set_recover(src)
        mt.set_params(src, max_bandwidth=SLOW)
        src.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        wait_sent(src, 2 << 20)
        pause(src, dst)
        # while paused: no second pause, no fresh migrate; the destination
        # listening for the resume takes no second migrate-recover
        why = [refused(src, "migrate-pause", "paused"),
               refused(src, "migrate", "paused, without resume", uri=f"tcp:127.0.0.1:{port}")]
        rport = recover(dst)
        why.append(recover_again(dst, rport))
        n = len(statuses(src))
        src.cmd("migrate_cancel")
        info = wait_mig(src, "cancelled", 15, bad=("completed", "failed"))
        wait_event(src, "cancelled", n)
        runs_on(src, g, "after the cancel")
        time.sleep(0.5)
        check(dst.output() == "", f"{dst.name}: the guest ran: {dst.output()[:200]!r}")
        rc = dst.proc.poll()
        dst_then = f"exited {rc}" if rc is not None else f"{query(dst).get('status')}"
        dst.kill()
        # a fresh migration to a new destination
        dst2, uri = mt.start_dest(ctx, vms, "cancel-dst2", g.args, "unix")
        mt.set_params(src, max_bandwidth=FAST)
        mt.migrate_ok(ctx, src, dst2, uri)
        n = goes_on(src, dst2, g)
        return (f"refused while paused: {' | '.join(w[:50] for w in why)}; cancelled while "
                f"paused ({info.get('error-desc', '')[:60]}), source ran on, the paused "
                f"destination: {dst_then}; a fresh migration completed, passes past {n}")
    return with_vms(body)


def case_held_converged(ctx):
    godwit_only(ctx)
    g = dirty_fill()
    limit, slack, bw = 200, 100, 32 << 20

    def body(vms):
        src = MigVM(ctx, "held", g.args)
        vms.append(src)
        g.wait(src, "", 10)
        dst, port = start_dest(ctx, vms, "held-dst", g, paused=True)
        set_recover(src)
        mt.set_params(src, max_bandwidth=bw, downtime_limit=limit, **{HOLD.replace("-", "_"): True})
        got = src.cmd("query-migrate-parameters")
        check(got.get(HOLD) is True, f"query-migrate-parameters after setting {HOLD}: {got}")
        src.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        i0 = wait_mig(src, HELD, 30)
        wait_event(src, HELD)
        t0, ticks0, w0 = time.monotonic(), g.count(src), dirty_ticks(src.output())[-1][2]
        while time.monotonic() - t0 < HOLD_SECONDS:
            s = query(src).get("status")
            check(s == HELD, f"{src.name}: {s} while held ({time.monotonic() - t0:.1f}s in)")
            time.sleep(0.1)
        i1 = query(src)
        dt = time.monotonic() - t0
        written = dirty_ticks(src.output())[-1][2] - w0
        runs_on(src, g, "while held")
        check(g.count(src) - ticks0 >= HOLD_SECONDS * 50,
              f"{g.count(src) - ticks0} ticks in {dt:.1f}s held")
        r0, r1 = i0["ram"], i1["ram"]
        sent = r1["transferred"] - r0["transferred"]
        syncs = r1["dirty-sync-count"] - r0["dirty-sync-count"]
        check(0 < sent <= bw * (dt + 0.5), f"{sent} bytes went in {dt:.1f}s held")
        check(2 <= syncs <= dt / 0.1 + 3, f"{syncs} dirty syncs (rounds) in {dt:.1f}s held")
        check(dst.output() == "" and dst.status() != "running",
              f"{dst.name}: {dst.status()} while held, output {dst.output()[:100]!r}")
        # migrate-pause works while held; the resumed migration is held again
        pause(src, dst)
        runs_on(src, g, "paused while held")
        rport = recover(dst)
        i = resume_ok(src, rport)
        wait_mig(src, HELD, 30)
        wait_event(src, HELD, i)
        time.sleep(0.5)
        check(query(src).get("status") == HELD, f"{src.name}: {query(src)} after the resume")
        n = len(statuses(src))
        mt.set_params(src, **{HOLD.replace("-", "_"): False})
        info = finish(src, dst, n)
        dt_ms = info.get("downtime")
        check(dt_ms is not None and dt_ms <= limit + slack,
              f"downtime {dt_ms} ms, downtime-limit {limit} ms (+{slack} ms slack)")
        resent = recoveries(info, 1)
        n = goes_on(src, dst, g, hashed=True)
        counted_all(src, info)
        return (f"held {dt:.1f}s: {sent >> 10} KiB in {syncs} rounds while the guest ran "
                f"({written} pages written); paused while held, resumed: held again ({resent}); "
                f"released: downtime {dt_ms} ms (limit {limit}), equal hashes, ticks past {n}")
    return with_vms(body)


def case_refusals(ctx):
    godwit_only(ctx)

    def body(vms):
        g = pagepass()
        src = MigVM(ctx, "refuse", g.args)
        vms.append(src)
        wait_passes(src, "", 2)
        why = []
        why.append(refused(src, "migrate-pause", "no migration, capability off"))
        set_recover(src)
        why.append(refused(src, "migrate-pause", "no migration"))
        dst, port = start_dest(ctx, vms, "refuse-dst", g)
        uri = f"tcp:127.0.0.1:{port}"
        why.append(refused(src, "migrate", "no migration", uri=uri, resume=True))
        why.append(refused(src, "migrate-recover", "not a destination",
                           uri="tcp:127.0.0.1:0"))
        why.append(refused(dst, "migrate-recover", "a destination waiting for its stream",
                           uri="tcp:127.0.0.1:0"))
        set_recover(src, False)
        mt.set_params(src, max_bandwidth=SLOW)
        src.cmd("migrate", uri=uri)
        wait_sent(src, 1 << 20)
        why.append(refused(src, "migrate-pause", "active, capability off"))
        why.append(refused(src, "migrate", "active", uri=uri, resume=True))
        wait_mig(dst, "active", 10)
        why.append(refused(dst, "migrate-recover", "a destination receiving",
                           uri="tcp:127.0.0.1:0"))
        runs_on(src, g, "after the refusals")
        mt.set_params(src, max_bandwidth=FAST)
        info = finish(src, dst, 0)
        check(info.get("x-godwit-recoveries", 0) == 0, f"after no resume: {info}")
        n = goes_on(src, dst, g)
        counted_all(src, info)
        return f"{len(why)} refusals, then completed, passes past {n}: " + " | ".join(
            w[:60] for w in why)
    return with_vms(body)


def case_hostile_resume(ctx):
    godwit_only(ctx)

    def body(vms):
        g = pagepass()
        src = MigVM(ctx, "hostile", g.args)
        other = MigVM(ctx, "hostile-other", g.args)
        vms += [src, other]
        wait_passes(src, "", 2)
        dst, port = start_dest(ctx, vms, "hostile-dst", g)
        # through a proxy that keeps the stream's head (header, CONFIG, SESSION)
        tap = Proxy(ctx, f"tcp:127.0.0.1:{port}", kind="tcp")
        tap.parser = HeadTap()
        set_recover(src)
        mt.set_params(src, max_bandwidth=SLOW)
        src.cmd("migrate", uri=tap.uri)
        wait_sent(src, 2 << 20)
        pause(src, dst)
        tap.close()
        head, off, sid, attempt = session_of(tap.parser)
        rport = recover(dst)
        ruri = f"tcp:127.0.0.1:{rport}"
        notes = []
        replies = send_blob(ruri, os.urandom(64 << 10))
        still_paused(dst, rport, "random bytes")
        notes.append(f"random bytes: {[r[0] for r in replies] or 'no reply'}")
        # crafted from the real stream's head
        for what, blob in (("the first connection replayed", head),
                           ("a resume of attempt 0 (seen)", forged(head, off, sid, attempt)),
                           ("a resume of another session",
                            forged(head, off, sid ^ 0x5A5A5A5A5A5A5A5A, attempt + 1))):
            replies = send_blob(ruri, blob)
            errors = [r for r in replies if r[0] == "ERROR" and r[2]]
            check(errors and "RESUME_AT" not in [r[0] for r in replies],
                  f"{what}: the destination answered {replies}, want ERROR with a reason")
            still_paused(dst, rport, what)
            notes.append(f"{what}: ERROR {errors[0][2][:60]!r}")
        # a fresh migration (not recoverable: a refusal must fail it) from
        # another source of the same configuration
        wait_passes(other, "", 2)
        mt.set_params(other, max_bandwidth=FAST)
        info = mt.migrate(other, ruri, timeout=30)
        check(info.get("status") == "failed" and info.get("error-desc"),
              f"a fresh migration into the paused destination: {info.get('status')}: {info}")
        other.wait_status(("running",), 10)
        still_paused(dst, rport, "a fresh migration")
        notes.append(f"fresh migration: {info['error-desc'][:70]}")
        # the other source's own paused migration, resumed into it
        odst, oport = start_dest(ctx, vms, "hostile-other-dst", g)
        set_recover(other)
        mt.set_params(other, max_bandwidth=SLOW)
        other.cmd("migrate", uri=f"tcp:127.0.0.1:{oport}")
        wait_sent(other, 1 << 20)
        pause(other, odst)
        n = len(statuses(other))
        try:
            other.cmd("migrate", uri=ruri, resume=True)
            wait_event(other, PAUSED, n, 30)
            info = wait_mig(other, PAUSED, 10)
            evs = statuses(other)[n:]
            why = info.get("error-desc") or ""
            check(why, f"{other.name}: no error-desc after a refused resume: {info}")
            check("active" not in evs, f"{other.name}: events {evs} on a refused resume")
        except QMPError as e:
            why = f"refused at once: {e.desc}"
        runs_on(other, g, "after its refused resume")
        still_paused(dst, rport, "another migration's resume")
        notes.append(f"another session's resume: {why[:90]}")
        # the real source still resumes, on the same port
        mt.set_params(src, max_bandwidth=FAST)
        i = resume_ok(src, rport)
        info = finish(src, dst, i)
        resent = recoveries(info, 1)
        n = goes_on(src, dst, g)
        counted_all(src, info, vs_dst=False)
        resent += (f" (transferred: source {info['ram']['transferred']}, destination "
                   f"{info['_dst']})")
        return "; ".join(notes) + f"; the real source resumed: completed, {resent}, passes past {n}"
    return with_vms(body)


def case_tls_resume(ctx):
    godwit_only(ctx)

    def body(vms):
        g = pagepass()
        key = os.urandom(32).hex()
        ks, kd = mt.tls_keys(ctx, "hold-keys-src", key), mt.tls_keys(ctx, "hold-keys-dst", key)
        src = MigVM(ctx, "tls", mt.tls_args(ks))
        vms.append(src)
        wait_passes(src, "", 2)
        dst, uri = mt.tls_dest(ctx, vms, "tls-dst", kd)
        set_recover(src)
        mt.set_params(src, max_bandwidth=SLOW, tls_creds="tls-out")
        src.cmd("migrate", uri=uri)
        wait_sent(src, 2 << 20)
        pause(src, dst)
        # the job keeps its keys: the source's key file may go
        os.unlink(os.path.join(ks, "keys.psk"))
        rport = recover(dst)
        replies = send_blob(f"tcp:127.0.0.1:{rport}", os.urandom(4096))
        still_paused(dst, rport, "a plaintext peer")
        mt.set_params(src, max_bandwidth=FAST)
        i = resume_ok(src, rport)
        info = finish(src, dst, i)
        resent = recoveries(info, 1)
        n = goes_on(src, dst, g)
        counted_all(src, info)
        return (f"paused over TLS, the source's key file removed; a plaintext peer refused "
                f"({[r[0] for r in replies] or 'no reply'}); resumed over TLS: completed, "
                f"{resent}, passes past {n}")
    return with_vms(body)


# ---- crafted resumes -----------------------------------------------------------------------


class HeadTap(StreamParser):
    """migstream.Proxy's stream parser, keeping the stream's first bytes too."""

    def __init__(self, keep=1 << 16):
        super().__init__()
        self.head, self.keep = bytearray(), keep

    def feed(self, data):
        if len(self.head) < self.keep:
            self.head += data[:self.keep - len(self.head)]
        super().feed(data)


def session_of(tap):
    """The stream up to the end of its SESSION section, the offset of that
    section's payload, the session id and the attempt."""
    sec = tap.find(lambda t, n, i: t == SEC_SESSION)
    check(sec is not None and sec[5] == 16 and len(tap.head) >= sec[4] + 16,
          f"no SESSION section at the start of the recoverable stream: {tap.sections[:4]}")
    sid, attempt = struct.unpack_from("<QQ", tap.head, sec[4])
    return bytes(tap.head[:sec[4] + 16]), sec[4], sid, attempt


def forged(head, off, sid, attempt, resume=True):
    """head (header, CONFIG, SESSION) with another session id and attempt,
    and the RESUME flag set (or cleared)."""
    b = bytearray(head)
    flags = struct.unpack_from("<I", b, 20)[0]
    struct.pack_into("<I", b, 20, (flags | FLAG_RESUME) if resume else (flags & ~FLAG_RESUME))
    struct.pack_into("<QQ", b, off, sid, attempt)
    return bytes(b)


def send_blob(uri, blob, linger=5.0):
    """Send blob to uri, shut the writing side, read until the peer closes
    (or linger seconds): the replies (migstream.parse_replies)."""
    s = connect_uri(uri)
    data = b""
    try:
        try:
            s.sendall(blob)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # refused half-way: fine
        s.settimeout(linger)
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                data += d
        except OSError:
            pass
    finally:
        s.close()
    return parse_replies(data)


# ---- main -------------------------------------------------------------------------------


CASES = [("pause-resume", case_pause_resume),
         ("link-cut", case_link_cut),
         ("cut-twice", case_cut_twice),
         ("cancel-paused", case_cancel_paused),
         ("held-converged", case_held_converged),
         ("refusals", case_refusals),
         ("hostile-resume", case_hostile_resume),
         ("tls-resume", case_tls_resume)]


def main():
    return mig.main(__doc__, CASES, "hold",
                    {"cases": "HOLD_TEST_CASES", "loops": "HOLD_LOOPS", "vm": "HOLD_VM"},
                    "1", "unused", lambda loops: f"hold {HOLD_SECONDS:.0f}s")


if __name__ == "__main__":
    h.main(main)
