#!/usr/bin/env python3
"""Live migration (issue 6): two godwit-vm processes on this host, QMP
`migrate` over unix sockets and 127.0.0.1 TCP, with a fault-injecting proxy
in the middle.

Cases (the guest is the migration oracle tests/guest/mig_pagepass at -m 64M
unless named otherwise; "rolled back" means: query-migrate ends failed or
cancelled with a MIGRATION event saying so, the source is `running` again,
its passes go on with no FAIL and mtime never goes back, and a later
migration of the same source to a good destination completes and continues;
"never ran" means: the destination printed nothing, and exited with a status
in 1..127 and a message on stderr unless the test killed it):

  pingpong-pagepass   A -> B -> A ... MIGRATE_LOOPS hops (20); each hop starts
                      a fresh destination (-incoming unix:, tcp: or defer +
                      migrate-incoming, in turn), migrates, checks
                      query-migrate completed with sane statistics, MIGRATION
                      and MIGRATION_PASS events, source postmigrate and
                      destination running, kills the source; the passes go on
                      by one across every hop, never FAIL, mtime never goes
                      back.  The oracle rewrites all of its 58 MiB without
                      pause: the write-heavy case.
  tls                 TLS-PSK (-object tls-creds-psk, QEMU's keys.psk): a plain
                      hop, then tls-creds on both sides (the destination with
                      -incoming defer + migrate-set-parameters before
                      migrate-incoming) and a hop over TLS; credentials of the
                      wrong endpoint refused; a destination with another key
                      refuses the stream: rolled back, never ran, the source's
                      error-desc names the TLS handshake and the key.
  pingpong-downtime   the same with downtime-limit 50 ms (query-migrate-parameters
                      must say so).
  pingpong-linux      Debian guest (kernel + busybox initramfs, 256M) with a
                      counter writing to an ext2 file on a virtio-blk disk and
                      to the console, otherwise idle: MIGRATE_LOOPS hops, the
                      counter continues after each hop (no line lost or
                      repeated), then the console answers, the counter file
                      holds lines 1..N in order, a file written before has its
                      sha256.
  pingpong-linux-busy the same while the guest also rewrites 32 MiB of tmpfs
                      with dd from /dev/urandom in a loop.
  hash                the destination is started with -S: after completion the
                      source (postmigrate) and the destination (paused, silent)
                      have equal x-godwit-state-hash; after `cont` the passes
                      go on.  Two hops.
  fault-kill-dst      the destination is killed during `active` (slow
                      max-bandwidth) and during `device` (the proxy holds the
                      stream at the first device section): rolled back.
  fault-cut           the proxy closes both connections (TCP RST) after 3 MiB:
                      rolled back, never ran.
  fault-corrupt       the proxy flips one byte in the 10th RAM batch, and (a
                      second migration) one in the `clint` device section:
                      rolled back, never ran, the destination did not answer
                      READY; its ERROR carried its reason and the source's
                      error-desc is "destination refused the migration:
                      <that reason>" (for the RAM batch: the checksum).
  fault-truncate      the proxy forwards N bytes and closes both ways, N inside
                      the header, inside a RAM batch, at the start of a ROUND
                      section and inside the EOF section: rolled back, never ran.
  fault-error         the destination has another -m: it answers ERROR (seen by
                      the proxy), rolled back, never ran; the source's
                      error-desc is the destination's reason (a differently
                      configured machine, both ram sizes).
  fault-cancel        migrate_cancel right after migrate (setup, if it is still
                      there), during `active` (slow max-bandwidth) and during
                      `device` (proxy holds the stream): cancelled (or failed
                      where the cancel came too early to see), rolled back, never ran.
  fault-kill-src      the proxy holds the destination's READY; the test kills
                      the source; the proxy closes: the destination never ran.
  hostile             a Python client sends to -incoming tcp: random bytes; a
                      valid header and garbage; a state file saved with
                      `migrate file:` with its checksum flipped; the same file
                      intact but never a COMMIT: the destination never answers
                      READY to a bad stream, and never runs; to the bad
                      checksum it answers ERROR with a reason naming it.


The proxy (class Proxy in tests/lib/migstream.py) forwards each direction
on its own thread and parses the godwit stream (docs/state.md) as it
passes, so faults can be placed by section; it also decodes the
destination's replies (READY/ERROR/RUNNING; ERROR with its reason) and can
hold them back.
Prints `PASS name` / `FAIL name: why` / `SKIP name: reason` and the last line
`N passed, N failed, N skipped`; exits 1 if anything failed.

usage: tests/linux/migrate_test.py [--only NAME[,NAME]] [--loops N] [--vm godwit|qemu]

Environment: BUILD (build/release), GODWIT_VM, MIGRATE_LOOPS (hops of the
pingpong cases, 20), MIGRATE_TEST_CASES (comma-separated subset),
MIGRATE_VM (godwit or qemu), GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD,
STATE_TEST_TIMEOUT (Linux boot, seconds, 240).

--vm qemu runs the cases that do not need godwit's commit protocol or
x-godwit-state-hash on QEMU 7.2, to check the harness itself; QEMU 7.2 TCG's
live migration is known to lose pages the guest dirties (the oracle catches
it), so a FAIL there is not a test bug.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
import migration as mig  # noqa: E402
from harness import Skip, check  # noqa: E402
from migration import (MigVM, counter_values, median, pagepass_args, passes, ticks,  # noqa: E402
                       wait_passes, wait_ticks)
from migstream import (SEC_DEVICE, SEC_EOF, SEC_RAM, SEC_ROUND, STATE_HEADER_LEN,  # noqa: E402
                       Proxy, at_section, connect_uri, nth_section, parse_replies,
                       wait_listening)

FAST = 1 << 30  # max-bandwidth for "as fast as it goes", bytes/s
SLOW = 8 << 20  # max-bandwidth that keeps `active` going for seconds


# ---- migration steps ---------------------------------------------------------------


def set_params(vm, **params):
    if vm.ctx.emu.kind == "qemu":  # QEMU sends MIGRATION events only when asked
        vm.cmd("migrate-set-capabilities",
               capabilities=[{"capability": "events", "state": True}])
    vm.cmd("migrate-set-parameters", **{k.replace("_", "-"): v for k, v in params.items()})


def start_dest(ctx, vms, name, args, kind, defer=False, paused=False, console=False):
    """A destination listening on a fresh unix socket or TCP port (with
    -incoming URI, or -incoming defer + migrate-incoming), added to the list
    vms (killed by the case at its end); returns (vm, uri)."""
    uri = ctx.endpoint(kind)
    vm = MigVM(ctx, name, args, incoming="defer" if defer else uri, paused=paused,
               console=console)
    vms.append(vm)
    vm.needs_cont = False
    vm.uri = uri
    if defer:
        vm.cmd("migrate-incoming", uri=uri)
    wait_listening(vm, uri)
    return vm, uri


def migration_events(vm):
    """Take the MIGRATION/MIGRATION_PASS events the client has buffered."""
    q = vm.connect()
    try:
        vm.cmd("query-status")  # reads what the VM sent before the reply
    except Exception:
        pass
    evs = [e for e in q.events if e["event"] in ("MIGRATION", "MIGRATION_PASS")]
    q.events[:] = [e for e in q.events if e not in evs]
    return evs


def migrate(vm, uri, timeout=90.0, cancel_when=None, **margs):
    """QMP migrate (margs: more arguments, e.g. blk=True); polls query-migrate until completed/failed/cancelled and
    returns its last answer with '_seen' (the statuses in order), '_wall'
    (seconds) and '_events' (the MIGRATION events' statuses).  cancel_when:
    a function of query-migrate's answer; when it is true, migrate_cancel."""
    migration_events(vm)  # forget older ones
    t0 = time.monotonic()
    vm.cmd("migrate", uri=uri, **margs)
    seen, cancelled = [], False
    if cancel_when == "at-once":
        vm.cmd("migrate_cancel")  # before anything polls: in setup if it still is
        cancelled = True
    while True:
        info = vm.cmd("query-migrate")
        s = info.get("status")
        if not seen or seen[-1] != s:
            seen.append(s)
        if s in mig.FINAL:
            break
        if cancel_when and not cancelled and cancel_when(info):
            vm.cmd("migrate_cancel")
            cancelled = True
        check(time.monotonic() - t0 < timeout,
              f"{vm.name}: migration still {s} after {timeout}s: {info}")
        time.sleep(0.005)
    info["_wall"] = time.monotonic() - t0
    info["_seen"] = seen
    # The final event follows the settled state (it may still be on its way).
    evs = migration_events(vm)
    deadline = time.monotonic() + 5
    while s not in [e["data"].get("status") for e in evs if e["event"] == "MIGRATION"]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
        evs += migration_events(vm)
    info["_events"] = [e["data"].get("status") for e in evs if e["event"] == "MIGRATION"]
    info["_passes"] = [e["data"].get("pass") for e in evs if e["event"] == "MIGRATION_PASS"]
    return info


def migrate_ok(ctx, src, dst, uri, dst_state=("running",)):
    """Migrate src to dst and check the outcome on both sides."""
    info = migrate(src, uri)
    check(info.get("status") == "completed",
          f"{src.name} -> {dst.name}: migration {info.get('status')}: "
          f"{info.get('error-desc', info)}; destination stderr: {dst.stderr()[-300:]}")
    src.wait_status(("postmigrate",), 3)
    dst.wait_status(dst_state)
    check("completed" in info["_events"],
          f"{src.name}: no MIGRATION completed event (got {info['_events']})")
    if ctx.emu.kind == "godwit":
        ram = info.get("ram", {})
        for k in ("transferred", "total", "remaining", "duplicate", "normal",
                  "dirty-sync-count", "mbps"):
            check(k in ram, f"query-migrate has no ram.{k}: {info}")
        for k in ("total-time", "downtime", "setup-time"):
            check(k in info, f"query-migrate has no {k}: {info}")
        check(ram["transferred"] > 0 and ram["total"] > 0 and ram["remaining"] == 0,
              f"query-migrate ram after completion: {ram}")
        check(ram["dirty-sync-count"] >= 1, f"dirty-sync-count {ram['dirty-sync-count']}")
        check(0 <= info["downtime"] <= info["total-time"],
              f"downtime {info['downtime']} ms, total-time {info['total-time']} ms")
        check(info["_passes"], "no MIGRATION_PASS event")
        check("active" in info["_events"],
              f"{src.name}: MIGRATION events {info['_events']}: no active")
    return info


def kinds_for(hop):
    """Which endpoint a hop uses: unix, tcp, unix via defer, tcp, ..."""
    return ("unix", "tcp")[hop % 2], hop % 3 == 2


# ---- ping-pong ------------------------------------------------------------------------


def pingpong_bare(ctx, guest="pagepass", downtime=None, hops=None):
    """A bare-metal guest hops ctx.loops times; pagepass (writes all the
    time) or the ticker (idle: prints a tick every 10 ms of mtime)."""
    if guest == "pagepass":
        args, parse, wait = pagepass_args(), passes, wait_passes
    else:
        if not os.path.exists(mig.TICKER):
            raise Skip(f"{mig.TICKER} is not built (make guests)")
        args = pagepass_args(elf=mig.TICKER)
        parse, wait = ticks, wait_ticks
    src = MigVM(ctx, guest, args)
    history = ""
    stats, gaps = [], []
    vms = [src]
    try:
        wait(src, history, 2)
        hops = ctx.loops if hops is None else hops
        for hop in range(hops):
            kind, defer = kinds_for(hop)
            dst, uri = start_dest(ctx, vms, guest, args, kind, defer)
            set_params(src, max_bandwidth=FAST)
            if downtime is not None:
                set_params(src, downtime_limit=downtime)
                p = src.cmd("query-migrate-parameters")
                check(p.get("downtime-limit") == downtime,
                      f"query-migrate-parameters after setting downtime-limit: {p}")
            info = migrate_ok(ctx, src, dst, uri)
            stats.append(info)
            src.kill()
            history += src.output()
            n = len(parse(history))
            # parse() checks that the destination goes on by one, with an
            # mtime that never goes back
            seq = wait(dst, history, n + 2)
            gaps.append(seq[n][1] - seq[n - 1][1] if n else 0)
            src = dst
        seq = parse(history + src.output())
    finally:
        for v in vms:
            v.kill()
    dts = [i.get("downtime", 0) for i in stats]
    note = (f"{hops} hops, {'passes' if guest == 'pagepass' else 'ticks'} "
            f"{seq[0][0]}..{seq[-1][0]}; median total-time "
            f"{median([i.get('total-time', 0) for i in stats])} ms, downtime median "
            f"{median(dts)} ms max {max(dts) if dts else 0} ms, transferred median "
            f"{median([i.get('ram', {}).get('transferred', 0) for i in stats]) >> 10} KiB, "
            f"rounds median {median([i.get('ram', {}).get('dirty-sync-count', 0) for i in stats])}"
            f", wall median {median([i['_wall'] for i in stats]):.2f}s")
    if downtime is not None and dts:
        # A target, not a promise (QEMU's is the same), but the switchover
        # must follow it on the whole.
        check(median(dts) <= 2 * downtime + 20,
              f"downtime-limit {downtime} ms, downtimes {sorted(dts)}")
    if guest == "ticker":
        # mtime runs on through the switchover: the guest sees the pause as a
        # late tick (10 ms + the pause), never as a jump back or forward.
        worst = max(gaps) / 1e4 if gaps else 0
        check(worst < 5000, f"the guest saw a {worst:.0f} ms pause across one hop")
        note += (f", guest-seen pause median {median(gaps) / 1e4 - 10:.0f} ms "
                 f"max {worst - 10:.0f} ms")
    return note


def case_pingpong_pagepass(ctx):
    return pingpong_bare(ctx, "pagepass")


def case_pingpong_downtime(ctx):
    return pingpong_bare(ctx, "pagepass", downtime=50, hops=max(1, ctx.loops // 4))


def case_pingpong_idle(ctx):
    return pingpong_bare(ctx, "ticker")


DD_LOOP = ("(while :; do dd if=/dev/urandom of=/tmp/x bs=1M count=32 2>/dev/null; done) "
           ">/dev/null 2>&1 & echo $! > /tmp/dd.pid")


def pingpong_linux(ctx, busy):
    if ctx.emu.kind != "godwit":
        raise Skip("QEMU 7.2 does not re-arm the guest timer after an incoming migration "
                   "(see docs/testing.md): the Linux guest stalls there")
    args = mig.linux_args(ctx, f"linux-{int(busy)}.img")
    name = "linux-busy" if busy else "linux"
    src = MigVM(ctx, name, args, console=True)
    vms = [src]
    stats, hops = [], []
    try:
        con = src.con
        want = mig.linux_prepare(con, ctx.boot_timeout)
        if busy:
            h.run(con, DD_LOOP)
        con.sendline(mig.COUNTER + " echo $! > /tmp/cnt.pid")
        con.expect(r"^cnt 3\n", 60)
        for hop in range(ctx.loops):
            kind, defer = kinds_for(hop)
            dst, uri = start_dest(ctx, vms, name, args, kind, defer, console=True)
            set_params(src, max_bandwidth=FAST)
            info = migrate_ok(ctx, src, dst, uri)
            stats.append(info)
            h.drain(src.con, 0.2)
            src.kill()
            seen = counter_values(h.console_text(src.con))
            check(seen, f"hop {hop}: no counter line on {src.name}")
            last = seen[-1]
            t0 = time.monotonic()
            dst.con.expect(r"^cnt (\d+)\n", 60)
            first = int(dst.con.match.group(1))
            hops.append(time.monotonic() - t0)
            check(last < first <= last + 2,
                  f"hop {hop}: the counter printed {first} first after the migration; "
                  f"it stopped at {last}")
            dst.con.expect(rf"^cnt {first + 1}\n", 60)
            src = dst
        con = src.con
        lines = mig.linux_verify(con, want, "kill $(cat /tmp/cnt.pid) $(cat /tmp/dd.pid "
                                            "2>/dev/null) 2>/dev/null; sleep 1; true")
        h.drain(con, 0.3)
        last = counter_values(h.console_text(con))[-1]
        check(lines >= last, f"the counter file has {lines} lines; the console showed up to {last}")
    finally:
        for v in vms:
            v.kill()
    return (f"{ctx.loops} hops, counter file {lines} lines in order; median total-time "
            f"{median([i.get('total-time', 0) for i in stats])} ms, downtime median "
            f"{median([i.get('downtime', 0) for i in stats])} ms, transferred median "
            f"{median([i.get('ram', {}).get('transferred', 0) for i in stats]) >> 20} MiB, "
            f"wall median {median([i['_wall'] for i in stats]):.2f}s")


def case_pingpong_linux(ctx):
    return pingpong_linux(ctx, busy=False)


def case_pingpong_linux_busy(ctx):
    return pingpong_linux(ctx, busy=True)


# ---- hash -----------------------------------------------------------------------------


def case_hash(ctx):
    if ctx.emu.kind != "godwit":
        raise Skip("x-godwit-state-hash is godwit's")
    args = pagepass_args()
    src = MigVM(ctx, "hash", args)
    vms = [src]
    history = ""
    hashes = []
    try:
        wait_passes(src, history, 2)
        for hop in range(2):
            dst, uri = start_dest(ctx, vms, "hash", args, ("unix", "tcp")[hop], paused=True)
            set_params(src, max_bandwidth=FAST)
            migrate_ok(ctx, src, dst, uri, dst_state=("paused", "prelaunch"))
            time.sleep(0.3)
            check(dst.output() == "", f"{dst.name} printed {dst.output()[:200]!r} while paused")
            check(dst.status() in ("paused", "prelaunch"), f"{dst.name}: no longer paused")
            hs = src.cmd("x-godwit-state-hash")["hash"]
            hd = dst.cmd("x-godwit-state-hash")["hash"]
            check(hs == hd, f"hop {hop}: source hash {hs}, destination hash {hd}")
            hashes.append(hs)
            src.kill()
            history += src.output()
            n = len(passes(history))
            dst.cmd("cont")
            wait_passes(dst, history, n + 2)
            src = dst
        check(hashes[0] != hashes[1], "the same hash after passes ran: the hash sees nothing")
    finally:
        for v in vms:
            v.kill()
    return f"equal hashes after 2 hops ({', '.join(x[:16] for x in hashes)})"


# ---- faults ---------------------------------------------------------------------------


def dest_never_ran(dst, killed=False, timeout=30.0):
    """The destination printed nothing and (unless killed) exited 1..127 with
    a message on stderr.  Returns its last stderr line."""
    if not killed:
        rc = dst.exit_status(timeout)
        if rc is None:  # (asks for the status only then: an exited VM's QMP is gone)
            check(False, f"{dst.name}: still running {timeout}s after the failed "
                         f"migration (status {dst.status() if dst.qmp else '?'})")
        check(1 <= rc <= 127, f"{dst.name}: exit status {rc}")
    time.sleep(0.05)
    out = dst.output()
    check(out == "", f"{dst.name}: the guest ran on the destination: {out[:200]!r}")
    err = dst.stderr().strip()
    if not killed:
        check(err, f"{dst.name}: no message on stderr")
    return err.splitlines()[-1][:200] if err else ""


def rolled_back(src, info, want=("failed",)):
    """The source is running again, intact: its passes go on."""
    check(info.get("status") in want,
          f"{src.name}: migration ended {info.get('status')}, want {'/'.join(want)}: {info}")
    check(info["status"] in info["_events"],
          f"{src.name}: no MIGRATION {info['status']} event (got {info['_events']})")
    src.wait_status(("running",), 10)
    n = len(passes(src.output()))
    wait_passes(src, "", n + 2)


def fault_case(ctx, name, body):
    """Runs body(src, dests) against a pagepass source, then a migration to a
    good destination, whose passes continue the source's."""
    args = pagepass_args()
    src = MigVM(ctx, name, args)
    vms = [src]
    try:
        wait_passes(src, "", 2)
        note = body(src, vms)
        set_params(src, max_bandwidth=FAST)
        dst, uri = start_dest(ctx, vms, name + "-good", args, "unix")
        migrate_ok(ctx, src, dst, uri)
        src.kill()
        history = src.output()
        wait_passes(dst, history, len(passes(history)) + 2)
    finally:
        for v in vms:
            v.kill()
    return note + "; then a good migration completed and continued"


def error_desc(info):
    return (info.get("error-desc") or "")[:80]


REFUSED = "destination refused the migration: "


def reason_travelled(ctx, info, dst_why, proxy=None, want=()):
    """godwit: the source's error-desc is the destination's own reason (the
    one its stderr gives after "state refused: "), which its ERROR carried,
    and names each of want.  Returns the reason."""
    desc = info.get("error-desc") or ""
    if ctx.emu.kind != "godwit":
        return desc
    check(desc.startswith(REFUSED), f"source error-desc {desc!r}, want {REFUSED!r}...")
    reason = desc[len(REFUSED):]
    mark = "state refused: "
    theirs = dst_why[dst_why.find(mark) + len(mark):] if mark in dst_why else dst_why
    check(reason and theirs and (reason.startswith(theirs) or theirs.startswith(reason)),
          f"source error-desc {desc!r} is not the destination's reason {dst_why!r}")
    for w in want:
        check(w in reason, f"source error-desc {desc!r} does not name {w!r}")
    if proxy is not None:
        errors = [r for r in proxy.replies if r[0] == "ERROR"]
        check(errors and errors[0][2] == reason,
              f"the ERROR on the wire {errors[:1]} does not carry the reason {reason!r}")
    return reason


def via_proxy(ctx, src, vms, name, proxy_kw, args=None, params=None, kind="unix"):
    """Start a destination and a Proxy to it; migrate src through the proxy.
    Returns (dst, proxy, info)."""
    dst, uri = start_dest(ctx, vms, name, args or pagepass_args(), kind)
    proxy = Proxy(ctx, uri, kind=kind, **proxy_kw)
    set_params(src, max_bandwidth=FAST, **(params or {}))
    return dst, proxy, proxy.uri


def case_fault_kill_dst(ctx):
    def body(src, vms):
        notes = []
        # during active: a slow stream keeps it there
        dst, uri = start_dest(ctx, vms, "kill-dst-active", pagepass_args(), "tcp")
        set_params(src, max_bandwidth=SLOW)
        state = {}

        def kill_when(info):
            sent = info.get("ram", {}).get("transferred", 0)
            if info.get("status") == "active" and sent > 1 << 20:
                state["at"] = info["ram"]["transferred"]
                dst.proc.kill()
            return False
        info = migrate(src, uri, cancel_when=kill_when)
        check("at" in state, f"never saw `active` with 1 MiB sent: {info['_seen']}")
        rolled_back(src, info)
        dest_never_ran(dst, killed=True)
        notes.append(f"active ({state['at'] >> 10} KiB sent): {error_desc(info)}")
        if ctx.emu.kind != "godwit":
            return notes[0] + "; device: godwit stream only"
        # during device: the proxy holds the stream at the first device section
        dst, proxy, puri = via_proxy(ctx, src, vms, "kill-dst-device",
                                     dict(stall=nth_section(SEC_DEVICE)))
        box = {}

        def kill_in_device(info):
            if proxy.stalled.is_set() and "at" not in box:
                box["at"] = info.get("status")
                if box["at"] == "device":
                    dst.proc.kill()
                else:
                    proxy.close()
            return False
        info = migrate(src, puri, cancel_when=kill_in_device)
        check(box.get("at") == "device",
              f"the source was {box.get('at')} when its stream reached the device sections "
              f"(want device); statuses {info['_seen']}; {proxy.describe()}")
        rolled_back(src, info)
        dest_never_ran(dst, killed=True)
        notes.append(f"device: {error_desc(info)}")
        return "; ".join(notes)
    return fault_case(ctx, "fault-kill-dst", body)


def case_fault_cut(ctx):
    def body(src, vms):
        dst, proxy, puri = via_proxy(ctx, src, vms, "cut", dict(cut_after=3 << 20), kind="tcp")
        info = migrate(src, puri)
        rolled_back(src, info)
        why = dest_never_ran(dst)
        return f"cut after 3 MiB: {error_desc(info)}; destination: {why}"
    return fault_case(ctx, "fault-cut", body)


def case_fault_corrupt(ctx):
    if ctx.emu.kind != "godwit":
        raise Skip("QEMU's stream has no checksum")

    def body(src, vms):
        notes = []
        for what, where, byte in (("RAM batch 10", nth_section(SEC_RAM, 10), 2000),
                                  ("clint section", nth_section(SEC_DEVICE, 1, "clint"), 4)):
            dst, proxy, puri = via_proxy(ctx, src, vms, "corrupt", dict(flip=(where, byte)))
            info = migrate(src, puri)
            check(proxy.flipped_at is not None, f"{what}: nothing flipped: {proxy.describe()}")
            rolled_back(src, info)
            why = dest_never_ran(dst)
            names = [r[0] for r in proxy.replies]
            check("READY" not in names, f"{what}: the destination answered {names}")
            # page data has no check of its own: the EOF checksum catches it
            reason = reason_travelled(ctx, info, why, proxy,
                                      ("checksum",) if what.startswith("RAM") else ())
            notes.append(f"{what} (byte {proxy.flipped_at}): replies {names}, "
                         f"source: {reason[:90]}")
        return "; ".join(notes)
    return fault_case(ctx, "fault-corrupt", body)


def case_fault_truncate(ctx):
    def body(src, vms):
        notes = []
        if ctx.emu.kind == "godwit":
            points = [("header", 16), ("RAM batch", at_section(SEC_RAM, 20, 12 + 300)),
                      # a migration that fits the downtime limit at once
                      # has no ROUND: then the first device section
                      ("ROUND/DEVICE boundary", at_section((SEC_ROUND, SEC_DEVICE), 1)),
                      ("EOF section", at_section(SEC_EOF, 1, 14))]
        else:
            points = [("header", 16), ("2 MiB", 2 << 20)]
        for what, where in points:
            dst, proxy, puri = via_proxy(ctx, src, vms, "truncate", dict(truncate=where))
            info = migrate(src, puri)
            check(proxy.truncated_at is not None, f"{what}: not truncated: {proxy.describe()}")
            rolled_back(src, info)
            why = dest_never_ran(dst)
            notes.append(f"{what} (at {proxy.truncated_at}): {why}")
        return "; ".join(notes)
    return fault_case(ctx, "fault-truncate", body)


def case_fault_error(ctx):
    def body(src, vms):
        dst, proxy, puri = via_proxy(ctx, src, vms, "error", {}, args=pagepass_args("128M"))
        info = migrate(src, puri)
        rolled_back(src, info)
        why = dest_never_ran(dst)
        names = [r[0] for r in proxy.replies]
        if ctx.emu.kind == "godwit":
            check(names[:1] == ["ERROR"], f"the destination answered {names}, want ERROR")
        # the source says what the destination said: another machine, both sizes
        reason = reason_travelled(ctx, info, why, proxy,
                                  ("differently configured machine", "ram=67108864",
                                   "ram=134217728"))
        return f"replies {names}; source: {reason}"
    return fault_case(ctx, "fault-error", body)


def case_fault_cancel(ctx):
    def body(src, vms):
        notes = []
        # setup: cancel in the same breath as migrate
        dst, uri = start_dest(ctx, vms, "cancel-setup", pagepass_args(), "unix")
        set_params(src, max_bandwidth=SLOW)
        info = migrate(src, uri, cancel_when="at-once")
        rolled_back(src, info, ("cancelled", "failed"))
        dest_never_ran(dst)
        notes.append(f"at once: {info['status']}, MIGRATION events {info['_events']}")
        # active
        dst, uri = start_dest(ctx, vms, "cancel-active", pagepass_args(), "tcp")
        set_params(src, max_bandwidth=SLOW)
        box = {}

        def in_active(i):
            if i.get("status") == "active" and i.get("ram", {}).get("transferred", 0) > 1 << 20:
                box["at"] = "active"
                return True
            return False
        info = migrate(src, uri, cancel_when=in_active)
        check(box.get("at") == "active", f"never saw active with 1 MiB sent: {info['_seen']}")
        rolled_back(src, info, ("cancelled",))
        dest_never_ran(dst)
        notes.append("active: cancelled")
        if ctx.emu.kind != "godwit":
            return "; ".join(notes) + "; device: godwit stream only"
        # device: the proxy holds the stream at the first device section
        dst, proxy, puri = via_proxy(ctx, src, vms, "cancel-device",
                                     dict(stall=nth_section(SEC_DEVICE)))

        def in_device(i):
            if proxy.stalled.is_set() and "dev" not in box:
                box["dev"] = i.get("status")
                return i.get("status") == "device"
            return False
        info = migrate(src, puri, cancel_when=in_device)
        check(box.get("dev") == "device",
              f"the source was {box.get('dev')} when its stream reached the device sections")
        rolled_back(src, info, ("cancelled",))
        why = dest_never_ran(dst)
        notes.append(f"device: cancelled, destination: {why}")
        return "; ".join(notes)
    return fault_case(ctx, "fault-cancel", body)


def case_fault_kill_src(ctx):
    if ctx.emu.kind != "godwit":
        raise Skip("godwit's commit protocol (READY/COMMIT)")
    args = pagepass_args()
    src = MigVM(ctx, "kill-src", args)
    vms = [src]
    try:
        wait_passes(src, "", 2)
        dst, uri = start_dest(ctx, vms, "kill-src-dst", args, "unix")
        proxy = Proxy(ctx, uri, hold_replies=True)
        set_params(src, max_bandwidth=FAST)
        src.cmd("migrate", uri=proxy.uri)
        check(proxy.ready.wait(60), f"no READY from the destination: {proxy.describe()}")
        s = src.cmd("query-migrate").get("status")
        check(s not in ("completed",), f"the source completed without READY: {s}")
        src.proc.kill()
        src.proc.wait()
        proxy.done.wait(10)
        proxy.close()
        why = dest_never_ran(dst)
        history = src.output()
    finally:
        for v in vms:
            v.kill()
    return (f"READY held ({proxy.describe()}), source killed while {s}: destination: {why}; "
            f"the source had printed {len(passes(history))} passes")


# ---- hostile peers ---------------------------------------------------------------------


def case_hostile(ctx):
    args = pagepass_args()
    path = os.path.join(ctx.tmp, "hostile.state")
    mig.saved_pagepass(ctx, "hostile-src", path)
    with open(path, "rb") as f:
        data = f.read()
    head = bytearray(data[:STATE_HEADER_LEN])
    variants = [("random", os.urandom(1 << 20), False)]
    if ctx.emu.kind == "godwit":
        head[20] |= 1  # the live flag
        bad = bytearray(data)
        bad[-1] ^= 0x01  # the EOF checksum's last byte
        variants += [("header-garbage", bytes(head) + os.urandom(256 << 10), False),
                     ("bad-checksum", bytes(bad), False),
                     ("no-commit", data, True)]
    else:  # QEMU: its stream has no checksum and no commit
        variants += [("header-garbage", bytes(head) + os.urandom(256 << 10), False)]
    results, failures = [], []
    for name, blob, may_ready in variants:
        dst, uri = start_dest(ctx, [], "hostile-" + name, args, "tcp")
        replies = b""
        try:
            s = connect_uri(uri)
            try:
                s.sendall(blob)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # refused half-way: fine
            s.settimeout(15)
            try:
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    replies += d
            except OSError:
                pass
            s.close()
            got = parse_replies(replies)
            names = [r[0] for r in got]
            why = []
            if "READY" in names and not may_ready:
                why.append(f"answered {names}")
            if name == "bad-checksum" and not any(r[0] == "ERROR" and "checksum" in (r[2] or "")
                                                  for r in got):
                why.append(f"no ERROR naming the checksum: {got}")
            names += [f"({r[2][:60]})" for r in got if r[2]]
            try:
                err = dest_never_ran(dst)
            except AssertionError as e:
                why.append(str(e))
                err = ""
            if why:
                failures.append(f"{name}: " + ", ".join(why))
            else:
                results.append(f"{name}: {names or 'no reply'}, {err[:70]}")
        finally:
            dst.kill()
    check(not failures, "; ".join(failures))
    return "; ".join(results)


# ---- TLS ----------------------------------------------------------------------------------


def tls_keys(ctx, name, key):
    """A folder with QEMU's keys.psk (mode 0600) for identity qemu."""
    d = os.path.join(ctx.tmp, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "keys.psk")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, f"qemu:{key}\n".encode())
    os.close(fd)
    return d


def tls_args(keys):
    """pagepass with a client and a server tls-creds-psk object on keys."""
    return pagepass_args() + [
        "-object", f"tls-creds-psk,id=tls-out,endpoint=client,dir={keys}",
        "-object", f"tls-creds-psk,id=tls-in,endpoint=server,dir={keys}"]


def tls_dest(ctx, vms, name, keys):
    """A destination with -incoming defer, tls-creds set before migrate-incoming."""
    uri = ctx.endpoint("tcp")
    vm = MigVM(ctx, name, tls_args(keys), incoming="defer")
    vms.append(vm)
    vm.needs_cont = False
    vm.uri = uri
    vm.cmd("migrate-set-parameters", **{"tls-creds": "tls-in"})
    vm.cmd("migrate-incoming", uri=uri)
    wait_listening(vm, uri)
    return vm, uri


def case_tls(ctx):
    key_a, key_b = os.urandom(32).hex(), os.urandom(32).hex()
    ka, kb = tls_keys(ctx, "keys-a", key_a), tls_keys(ctx, "keys-b", key_b)
    src = MigVM(ctx, "tls", tls_args(ka))
    vms = [src]
    try:
        wait_passes(src, "", 2)
        # a plain hop first, for the MB/s comparison
        set_params(src, max_bandwidth=FAST)
        dst, uri = start_dest(ctx, vms, "tls-plain", tls_args(ka), "tcp")
        plain = migrate_ok(ctx, src, dst, uri)
        src.kill()
        history = src.output()
        src = dst
        wait_passes(src, history, len(passes(history)) + 2)
        # the endpoint must match the side
        set_params(src, max_bandwidth=FAST, tls_creds="tls-in")
        try:
            src.cmd("migrate", uri=ctx.endpoint("tcp"))
            check(False, "migrate with endpoint=server credentials was accepted")
        except Exception as e:  # noqa: BLE001 (QMP error)
            check("endpoint" in str(e), f"endpoint mismatch: {e}")
        check(src.cmd("query-migrate-parameters").get("tls-creds") == "tls-in",
              "query-migrate-parameters has no tls-creds")
        set_params(src, tls_creds=None)  # QEMU's StrOrNull: null switches TLS off
        check(src.cmd("query-migrate-parameters").get("tls-creds") == "",
              "tls-creds null does not switch TLS off")
        # over TLS
        set_params(src, tls_creds="tls-out")
        dst, uri = tls_dest(ctx, vms, "tls-dst", ka)
        tls = migrate_ok(ctx, src, dst, uri)
        src.kill()
        history += src.output()
        src = dst
        wait_passes(src, history, len(passes(history)) + 2)
        # a destination with another key: refused before the loader, rolled back
        set_params(src, tls_creds="tls-out")
        bad, uri = tls_dest(ctx, vms, "tls-wrongkey", kb)
        info = migrate(src, uri)
        rolled_back(src, info)
        # no reason can travel over a session that never was: the source's
        # own handshake error, saying what to check
        desc = info.get("error-desc") or ""
        check("TLS handshake failed" in desc and "key" in desc, f"error-desc: {desc}")
        why = dest_never_ran(bad)
    finally:
        for v in vms:
            v.kill()
    return (f"plain {plain['ram']['mbps']:.0f} Mbit/s, TLS {tls['ram']['mbps']:.0f} Mbit/s "
            f"(query-migrate); wrong key rolled back: {error_desc(info)}; destination: {why[:70]}")


# ---- main -------------------------------------------------------------------------------


CASES = [("pingpong-pagepass", case_pingpong_pagepass),
         ("pingpong-downtime", case_pingpong_downtime),
         ("pingpong-idle", case_pingpong_idle),
         ("pingpong-linux", case_pingpong_linux),
         ("pingpong-linux-busy", case_pingpong_linux_busy),
         ("hash", case_hash),
         ("fault-kill-dst", case_fault_kill_dst),
         ("fault-cut", case_fault_cut),
         ("fault-corrupt", case_fault_corrupt),
         ("fault-truncate", case_fault_truncate),
         ("fault-error", case_fault_error),
         ("fault-cancel", case_fault_cancel),
         ("fault-kill-src", case_fault_kill_src),
         ("hostile", case_hostile),
         ("tls", case_tls)]


def main():
    return mig.main(__doc__, CASES, "migrate",
                    {"cases": "MIGRATE_TEST_CASES", "loops": "MIGRATE_LOOPS", "vm": "MIGRATE_VM"},
                    "20", "hops of the pingpong cases (MIGRATE_LOOPS, 20)",
                    lambda loops: f"{loops} hops", logs_by_case=False)


if __name__ == "__main__":
    h.main(main)
