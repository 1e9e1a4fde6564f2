#!/usr/bin/env python3
"""Holding a live migration (issue 13's benchmark) behind bench/hold/run.sh.

The busy page oracle (tests/guest/mig_busy.c: ~500 MiB filled once, 64 MiB
of it rewritten every 250 ms, the rest checked) runs on a source VM with
-m 512M; a destination waits with `-incoming tcp:127.0.0.1:PORT`.  Both get
the same downtime-limit and max-bandwidth, the source
x-godwit-precopy-recover (godwit-vm only).  Three scenarios:

  unheld           migrate, poll query-migrate (20 ms) until completed;
  held             migrate; once ram.transferred reaches BENCH_HOLD_AT (50 %)
                   of the first pass (ram.total: the guest fills nearly all
                   of its RAM), migrate-pause; wait for x-godwit-precopy-paused
                   on both sides; hold BENCH_HOLD_S (10 s) while the guest runs
                   on the source; migrate-recover tcp:127.0.0.1:0 on the
                   destination (its query-migrate says the port), migrate
                   resume:true on the source, poll until completed;
  cancel-restart   what QEMU, Nova and KubeVirt users must do: migrate; at the
                   same point migrate_cancel; wait BENCH_HOLD_S; kill the
                   destination, start a fresh one, migrate again until
                   completed.

Measured per run: the bytes on the wire (the source's ram.transferred at the
end; cancel-restart: the first attempt's last value plus the second's), the
time from the first migrate to completed (wall, holds included), the
downtime from query-migrate, and the pause the guest saw (the largest
wall-clock gap between two tick lines, the source's from the first migrate
on, then the destination's; bench/migrate/migrate.py's pause_metrics).
Every run then checks the guest on the destination: it runs on for
BENCH_HOLD_SWEEPS (2) `cold N` lines, so the last is a sweep of every cold
page done there (the hot pages are checked every 250 ms), and no FAIL line
appears on either side; a run with FAIL is a failed benchmark, not a number.

QEMU 7.2 (TCG) runs unheld and cancel-restart in the same run (it cannot
pause pre-copy).  Medians of BENCH_RUNS; prints a line per run on stderr,
then the table and the issue's goals on stdout.
"""

import os
import re
import statistics
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench", "migrate"))

import migrate as mb  # noqa: E402  (VM, start_pair, pause_metrics, ...)
from harness import check, free_port  # noqa: E402
from migration import Emu, baremetal_args  # noqa: E402
from qmp import QMPError  # noqa: E402

PROG = "mig_busy"
FILLED = r"^mig_busy: filled"
COLD_RE = re.compile(r"^cold (\d+) t=\d+$")
FAIL_RE = re.compile(r"^FAIL")
PAUSED = "x-godwit-precopy-paused"
RECOVER_CAP = "x-godwit-precopy-recover"
SCENARIOS = {"godwit": ["unheld", "held", "cancel-restart"],
             "qemu": ["unheld", "cancel-restart"]}


class Unsupported(Exception):
    """This build of the emulator cannot run the scenario."""


def fail_lines(vm):
    with vm._lock:
        return [t for _, t in vm.lines if FAIL_RE.match(t)]


def check_no_fail(*vms):
    for vm in vms:
        bad = fail_lines(vm)
        if bad:
            check(False, f"{vm.name}: the guest found a bad page: {bad[0]}")


def transferred(info):
    return (info.get("ram") or {}).get("transferred")


def set_up(vm, cfg, source, scenario=None):
    """The same parameters on both sides; on a godwit-vm source the
    recoverable stream (every scenario, so they differ in the hold alone).
    A build without it runs the other scenarios without it."""
    mb.set_params(vm, cfg["downtime"], cfg["bw"])
    if source and vm.emu.kind == "godwit" and cfg["recover"]:
        try:
            vm.cmd("migrate-set-capabilities",
                   capabilities=[{"capability": RECOVER_CAP, "state": True}])
        except QMPError as e:
            if scenario == "held":
                raise Unsupported(f"{RECOVER_CAP}: {e}")
            print(f"bench-hold: {vm.name}: without {RECOVER_CAP}: {e}", file=sys.stderr)


def start_dest(emu, tag, args, tmp, logdir, cfg):
    uri = f"tcp:127.0.0.1:{free_port()}"
    dst = mb.VM(emu, tag, args, tmp, logdir, incoming=uri)
    set_up(dst, cfg, False)
    return dst, uri


def poll_until(src, done, timeout, interval=0.02):
    """Poll the source's query-migrate until done(info) or a final status;
    returns the last answer (None after timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        info = src.cmd("query-migrate")
        if done(info) or info.get("status") in mb.FINAL:
            return info
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def to_the_point(src, cfg, tag):
    """Poll until ram.transferred reaches cfg["at"] of the first pass (the
    RAM's size); returns the answer that did."""
    info = poll_until(src, lambda i: i.get("status") == "active" and (i.get("ram") or {}).get(
        "total") and transferred(i) >= cfg["at"] * i["ram"]["total"], cfg["timeout"])
    check(info is not None, f"{tag}: {cfg['at']:.0%} of the first pass not reached in "
                            f"{cfg['timeout']:.0f} s")
    check(info.get("status") == "active",
          f"{tag}: the migration ended before {cfg['at']:.0%} of the first pass: {info}")
    return info


def wait_status(vm, want, timeout):
    """Poll query-migrate on vm until its status is want; returns the answer."""
    deadline = time.monotonic() + timeout
    while True:
        info = vm.cmd("query-migrate")
        if info.get("status") == want:
            return info
        check(info.get("status") not in mb.FINAL,
              f"{vm.name}: migration {info.get('status')} while waiting for {want}: {info}")
        check(time.monotonic() < deadline,
              f"{vm.name}: migration status {info.get('status')} after {timeout:.0f} s, "
              f"want {want}")
        time.sleep(0.02)


def finish(src, cfg, tag):
    """Poll until completed; returns (the last answer, the largest
    ram.transferred seen on the way), or (None, ...) when it did not
    converge (cancelled)."""
    seen = [0]

    def track(info):
        seen[0] = max(seen[0], transferred(info) or 0)
        return False

    info = poll_until(src, track, cfg["timeout"])
    if info is None:
        mb.cancel(src)
        return None, seen[0]
    check(info.get("status") == "completed", f"{tag}: migration {info}")
    return info, seen[0]


def verify_dest(dst, src, cfg, tag):
    """The guest runs on at the destination for cfg["sweeps"] `cold` lines
    (the last one a sweep of every cold page done there), printing no FAIL."""
    dst.wait_status(("running",), 20)
    t_done = time.monotonic()
    deadline = t_done + cfg["verify_timeout"]
    while True:
        check_no_fail(src, dst)
        check(dst.proc.poll() is None, f"{tag}: the destination exited ({dst.proc.returncode})")
        with dst._lock:
            sweeps = sum(1 for w, t in dst.lines if w >= t_done and COLD_RE.match(t))
        if sweeps >= cfg["sweeps"]:
            break
        check(time.monotonic() < deadline,
              f"{tag}: {sweeps} cold sweeps on the destination after {cfg['verify_timeout']:.0f} s,"
              f" want {cfg['sweeps']}")
        time.sleep(0.05)
    dst.wait_ticks(20, 20, since=t_done)
    check_no_fail(src, dst)


def one_run(emu, scenario, tag, elf, cfg, tmp, logdir):
    """One migration of the busy oracle under `scenario`; a dict of figures,
    or {"dnc": seconds}."""
    args = baremetal_args(elf, cfg["mem"])
    src = mb.VM(emu, f"{tag}.src", args, tmp, logdir)
    dst, uri = start_dest(emu, f"{tag}.dst", args, tmp, logdir, cfg)
    old = []  # destinations given up on (cancel-restart)
    try:
        set_up(src, cfg, True, scenario)
        check(src.wait_line(FILLED, 60) is not None, f"{tag}: the guest did not fill its RAM")
        src.wait_ticks(int(cfg["warmup"] * 100), 30)
        t0 = time.monotonic()
        src.cmd("migrate", uri=uri)
        out = {}
        if scenario == "held":
            info = to_the_point(src, cfg, tag)
            src.cmd("migrate-pause")
            info = wait_status(src, PAUSED, 30)
            wait_status(dst, PAUSED, 30)
            out["at_pause"] = transferred(info)
            t_held = time.monotonic()
            time.sleep(cfg["hold"])
            check_no_fail(src)
            ticks = [t for t in src.ticks(t_held) if t[0] <= time.monotonic()]
            check(len(ticks) >= cfg["hold"] * 50,
                  f"{tag}: {len(ticks)} ticks on the source while held {cfg['hold']:.0f} s")
            check(not dst.ticks(), f"{tag}: the guest ran on the destination while held")
            info = src.cmd("query-migrate")
            check(info.get("status") == PAUSED, f"{tag}: held source went {info}")
            dst.cmd("migrate-recover", uri="tcp:127.0.0.1:0")
            port = dst.cmd("query-migrate")["socket-address"][0]["port"]
            src.cmd("migrate", uri=f"tcp:127.0.0.1:{port}", resume=True)
            out["stopped"] = time.monotonic() - t_held
        elif scenario == "cancel-restart":
            info = to_the_point(src, cfg, tag)
            mb.cancel(src)
            after = src.cmd("query-migrate")  # QEMU has no figures once cancelled
            first = max(transferred(info) or 0, transferred(after) or 0)
            out["first"] = first
            t_held = time.monotonic()
            time.sleep(cfg["hold"])
            check_no_fail(src)
            dst.kill()
            old.append(dst)
            dst, uri = start_dest(emu, f"{tag}.dst2", args, tmp, logdir, cfg)
            src.cmd("migrate", uri=uri)
            out["stopped"] = time.monotonic() - t_held
        info, seen = finish(src, cfg, tag)
        t_end = time.monotonic()
        if info is None:
            return {"dnc": cfg["timeout"]}
        verify_dest(dst, src, cfg, tag)
        pw, ps, _ = mb.pause_metrics(src.ticks(t0 - 0.05), dst.ticks())
        wire = (transferred(info) or 0) + out.get("first", 0)
        fixed = False
        if "at_pause" in out and wire < seen:
            # The figure went down at the switchover: it counts the resumed
            # connection alone (godwit-vm before 1cd9d06); the first
            # connection's bytes are what it said while paused.
            wire += out["at_pause"]
            fixed = True
        r = {"wire": wire, "total": t_end - t0, "moving": t_end - t0 - out.get("stopped", 0),
             "downtime": info.get("downtime"), "pause": pw, "switch": ps,
             "first": out.get("first"), "resent": info.get("x-godwit-resent"),
             "recoveries": info.get("x-godwit-recoveries"), "fixed": fixed}
        if "at_pause" in out:
            r["after_release"] = wire - out["at_pause"]
        return r
    finally:
        src.kill()
        dst.kill()
        for d in old:
            d.kill()


# (label, key, format, scale): the table's rows
ROWS = [("MiB on the wire", "wire", "%.1f", 1 / 2**20),
        ("  MiB after the release", "after_release", "%.1f", 1 / 2**20),
        ("  MiB in the cancelled attempt", "first", "%.1f", 1 / 2**20),
        ("  MiB re-sent (unverified)", "resent", "%.1f", 1 / 2**20),
        ("total time s (hold included)", "total", "%.1f", 1),
        ("  of it moving s (no hold)", "moving", "%.1f", 1),
        ("downtime ms (query-migrate)", "downtime", "%.0f", 1),
        ("pause ms (wall tick gap)", "pause", "%.0f", 1),
        ("  pause ms, min..max of the runs", "pause_range", None, 1),
        ("  switchover gap ms (wall)", "switch", "%.0f", 1)]
COLUMNS = [("godwit", "unheld"), ("godwit", "held"), ("godwit", "cancel-restart"),
           ("qemu", "unheld"), ("qemu", "cancel-restart")]
COL_NAMES = {"unheld": "unheld", "held": "held", "cancel-restart": "cancel+re"}


def median(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def print_table(cfg, res):
    cols = [c for c in COLUMNS if c in res]
    print(f"holding a live migration: {PROG} (-m {cfg['mem']}, 64 MiB rewritten every 250 ms), "
          f"max-bandwidth {cfg['bw'] >> 20} MiB/s, downtime-limit {cfg['downtime']} ms, "
          f"hold {cfg['hold']:.0f} s at {cfg['at']:.0%} of the first pass, median of "
          f"{cfg['runs']}")
    print(f"{'':<32}" + "".join(f"{k[:6] + ' ' + COL_NAMES[s]:>17}" for k, s in cols))
    med = {}
    for c in cols:
        ok = [r for r in res[c] if "error" not in r and "dnc" not in r]
        med[c] = {key: median(ok, key) for _, key, fmt, _ in ROWS if fmt}
        pauses = [r["pause"] for r in ok if r.get("pause") is not None]
        med[c]["pause_range"] = f"{min(pauses):.0f}..{max(pauses):.0f}" if pauses else None
    for label, key, fmt, scale in ROWS:
        vals = [med[c][key] for c in cols]
        if all(v is None for v in vals):
            continue
        cells = []
        for c, v in zip(cols, vals):
            rs = res[c]
            if v is not None:
                cells.append(fmt % (v * scale) if fmt else v)
            elif rs and all("error" in r for r in rs):
                cells.append("error")
            elif rs and all("dnc" in r or "error" in r for r in rs):
                cells.append("dnc")
            else:
                cells.append("-")
        print(f"  {label:<30}" + "".join(f"{x:>17}" for x in cells))
    notes = []
    for c in cols:
        bad = [r for r in res[c] if "error" in r or "dnc" in r]
        if bad:
            what = bad[0].get("error") or f"did not converge in {cfg['timeout']:.0f} s"
            notes.append(f"{c[0]} {c[1]}: {len(bad)} of {len(res[c])} runs failed or did not "
                         f"converge (medians over the others): {what}")
    if any(r.get("fixed") for rs in res.values() for r in rs):
        notes.append("godwit-vm's ram.transferred at completed counted the resumed connection "
                     "alone (lower than while active); the held figures add the bytes of the "
                     "first connection (ram.transferred while paused)")
    for n in notes:
        print(f"note: {n}")
    return med


def ratio(a, b):
    return a / b if a is not None and b else None


def print_goals(med):
    """The issue's goals, met or not, and the comparison with QEMU."""
    g = lambda s, k: med.get(("godwit", s), {}).get(k)  # noqa: E731
    q = lambda s, k: med.get(("qemu", s), {}).get(k)  # noqa: E731
    ok = True
    lines = []

    def goal(name, value, limit, fmt="%.2f"):
        nonlocal ok
        if value is None:
            lines.append(f"{name:<52}{'-':>8}   goal <= {limit}: not measured")
            ok = False
            return
        met = value <= limit
        ok = ok and met
        lines.append(f"{name:<52}{fmt % value:>8}   goal <= {limit}: "
                     f"{'met' if met else 'NOT met'}")

    goal("held bytes / unheld bytes", ratio(g("held", "wire"), g("unheld", "wire")), 1.2)
    goal("held bytes / cancel-restart bytes", ratio(g("held", "wire"),
                                                    g("cancel-restart", "wire")), 0.6)
    u, first = g("unheld", "wire"), g("cancel-restart", "first")
    if u and first:
        # cancel-restart = the cancelled attempt + a whole migration; a hold
        # that cost nothing would send one whole migration
        lines.append(f"{'  floor: unheld / (unheld + cancelled attempt)':<52}"
                     f"{u / (u + first):>8.2f}")
    hp, up = g("held", "pause"), g("unheld", "pause")
    # "the same": within 20 % or 10 ms (a tick), whichever is larger
    slack = None if up is None else max(up * 0.2, 10.0)
    if hp is None or up is None:
        lines.append(f"{'held pause - unheld pause ms':<52}{'-':>8}   goal: the same: not measured")
        ok = False
    else:
        met = hp <= up + slack
        ok = ok and met
        lines.append(f"{'held pause - unheld pause ms':<52}{hp - up:>8.0f}   goal: the same "
                     f"(<= +{slack:.0f} ms): {'met' if met else 'NOT met'}")
    for name, a, b in [
            ("godwit held bytes / qemu cancel-restart bytes", g("held", "wire"),
             q("cancel-restart", "wire")),
            ("godwit held pause / qemu cancel-restart pause", g("held", "pause"),
             q("cancel-restart", "pause")),
            ("godwit unheld bytes / qemu unheld bytes", g("unheld", "wire"), q("unheld", "wire")),
            ("godwit unheld pause / qemu unheld pause", g("unheld", "pause"),
             q("unheld", "pause"))]:
        v = ratio(a, b)
        lines.append(f"{name:<52}{'-' if v is None else '%.2f' % v:>8}")
    for line in lines:
        print(line)
    print(f"issue 13's goals: {'all met' if ok else 'NOT all met'}")


def config():
    build = os.environ.get("BUILD", "build/release")
    return {
        "runs": int(os.environ.get("BENCH_RUNS", "3")),
        "mem": os.environ.get("BENCH_HOLD_MEM", "512M"),
        "bw": int(float(os.environ.get("BENCH_HOLD_BW", "512")) * 2**20),
        "downtime": int(os.environ.get("BENCH_HOLD_DOWNTIME", "300")),
        "hold": float(os.environ.get("BENCH_HOLD_S", "10")),
        "at": float(os.environ.get("BENCH_HOLD_AT", "0.5")),
        "timeout": float(os.environ.get("BENCH_HOLD_TIMEOUT", "60")),
        "warmup": float(os.environ.get("BENCH_HOLD_WARMUP", "1")),
        "sweeps": int(os.environ.get("BENCH_HOLD_SWEEPS", "2")),
        "verify_timeout": float(os.environ.get("BENCH_HOLD_VERIFY_TIMEOUT", "60")),
        "recover": os.environ.get("BENCH_HOLD_RECOVER", "1") == "1",
        "scenarios": os.environ.get("BENCH_HOLD_SCENARIOS", "unheld,held,cancel-restart"),
        "godwit": os.environ.get("GODWIT", os.path.join(ROOT, build, "godwit-vm")),
        "qemu": os.environ.get("QEMU", "qemu-system-riscv64"),
        "logs": os.environ.get("BENCH_LOGS", os.path.join(ROOT, build, "bench", "hold")),
    }


def describe(r):
    if "dnc" in r:
        return f"did not converge in {r['dnc']:.0f} s (cancelled)"
    s = (f"{r['wire'] / 2**20:.1f} MiB, {r['total']:.1f} s, downtime {r['downtime']} ms, "
         f"pause {r['pause']:.0f} ms (switchover {r['switch']:.0f})")
    if r.get("after_release") is not None:
        s += f", {r['after_release'] / 2**20:.1f} MiB after the release"
        if r.get("resent") is not None:
            s += f" ({r['resent'] / 2**20:.1f} re-sent, {r['recoveries']} recoveries)"
    if r.get("first") is not None:
        s += f", {r['first'] / 2**20:.1f} MiB in the cancelled attempt"
    return s


def main():
    cfg = config()
    kinds = mb.emulators(cfg, "bench-hold")
    if kinds == 2:
        return 2
    elfs = mb.build_guests([PROG], "bench-hold")
    if elfs is None:
        return 2
    wanted = cfg["scenarios"].split(",")
    os.makedirs(cfg["logs"], exist_ok=True)
    emus = {k: Emu(k, cfg[k]) for k in kinds}
    res = {}
    failed = False
    unsupported = set()
    with tempfile.TemporaryDirectory(prefix="godwit-bench-hold-") as tmp:
        for i in range(1, cfg["runs"] + 1):
            order = kinds if i % 2 else kinds[::-1]
            for k in order:
                for sc in SCENARIOS[k]:
                    if sc not in wanted or (k, sc) in unsupported:
                        continue
                    rs = res.setdefault((k, sc), [])
                    if any("dnc" in r for r in rs):
                        continue  # it did not converge once: do not wait again
                    tag = f"{PROG}.{k}.{sc}.{i}"
                    try:
                        r = one_run(emus[k], sc, tag, elfs[0], cfg, tmp, cfg["logs"])
                    except Unsupported as e:
                        print(f"bench-hold: {k} {sc}: this build cannot: {e}", file=sys.stderr)
                        unsupported.add((k, sc))
                        failed = True
                        rs.append({"error": f"unsupported: {e}"[:200]})
                        continue
                    except Exception as e:
                        failed = True
                        r = {"error": str(e)[:300]}
                        print(f"bench-hold: {tag} failed: {e} (logs {cfg['logs']}/{tag}.*)",
                              file=sys.stderr)
                        if os.environ.get("BENCH_HOLD_DEBUG") == "1":
                            traceback.print_exc()
                    rs.append(r)
                    if "error" not in r:
                        print(f"run {i} {k} {sc}: {describe(r)}", file=sys.stderr)
    med = print_table(cfg, res)
    print_goals(med)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
