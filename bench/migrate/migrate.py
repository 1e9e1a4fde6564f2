#!/usr/bin/env python3
"""Live-migration benchmark behind bench/migrate/run.sh (see its header).

One run of one emulator and one guest: start a source VM running the guest
and a destination VM with `-incoming tcp:127.0.0.1:PORT` (same command line),
let the guest run BENCH_MIGRATE_WARMUP seconds, set the same downtime-limit
and an unlimited max-bandwidth on both, QMP `migrate` the source and poll
query-migrate until completed (or BENCH_MIGRATE_TIMEOUT passes: then
`migrate_cancel`, and the run is "did not converge"), then let the
destination run a moment and measure:

  total-time, downtime, ram.transferred    the source's query-migrate
  pause (wall)   the largest gap between two consecutive tick lines of the
                 guest's serial output (source's lines, then the
                 destination's) from the migrate command on, in host
                 monotonic time taken when each line arrives on the pipe
  switchover     the gap between the source's last tick line and the
                 destination's first one (usually the same gap)
  pause (mtime)  the largest gap between the mtime values of two consecutive
                 ticks (the guest's own clock)

The Linux guest (bench/save's kernel + initramfs, -smp 1) is booted to its
shell and left idle; it prints no ticks, so instead of the pause it measures
how long after `completed` the destination's shell answers an echo.

Prints a line per run on stderr and the table of medians on stdout.
The helpers (VM, start_pair, set_params, ...) are shared with overhead.py;
processes, QMP and the guest image come from tests/lib/harness.py.
"""

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

import harness as h  # noqa: E402
from harness import check  # noqa: E402
from migration import FINAL, Emu, baremetal_args  # noqa: E402

TICK_RE = re.compile(r"^tick (\d+) t=(\d+)(?: w=(\d+))?$")
TICK_MS = 10.0  # the guests' tick period (mtime)
MTIME_HZ = 10_000_000
GUESTS = [("idle", "mig_ticker"), ("dirty 16MiB/s", "mig_dirty"), ("dirty max", "mig_dirty_max"),
          ("linux idle at its shell", "linux")]
LINUX_MARKER = "godwit-guest: init started"
UNLIMITED_BW = 100 << 30  # bytes/s: "unlimited" (QEMU's default throttles)


class VM(h.VM):
    """One emulator process: QMP on a unix socket, serial output read by a
    thread that stamps every line with time.monotonic() as it arrives (and
    copies it to a log file)."""

    def __init__(self, emu, name, args, tmp, logdir, incoming=None, stdin=False):
        argv = [emu.bin, *args]
        if incoming:
            argv += ["-incoming", incoming]
        super().__init__(name, argv, out=os.path.join(logdir, f"{name}.out"),
                         err=os.path.join(logdir, f"{name}.err"),
                         qmp=os.path.join(tmp, f"{name}.qmp"), lines=True, stdin=stdin)
        self.emu = emu

    def ticks(self, since=0.0):
        """[(wall, n, mtime, work)] of the complete tick lines that arrived
        at or after `since`."""
        out = []
        with self._lock:
            lines = list(self.lines)
        for wall, text in lines:
            m = TICK_RE.match(text)
            if m and wall >= since:
                out.append((wall, int(m.group(1)), int(m.group(2)),
                            int(m.group(3)) if m.group(3) else 0))
        return out

    def wait_ticks(self, count, timeout, since=0.0):
        deadline = time.monotonic() + timeout
        while len(self.ticks(since)) < count:
            check(self.proc.poll() is None,
                  f"{self.name}: exited ({self.proc.returncode}): {self.stderr()[-400:]}")
            check(time.monotonic() < deadline,
                  f"{self.name}: {len(self.ticks(since))} ticks after {timeout}s, want {count}")
            time.sleep(0.02)


def set_params(vm, downtime_ms, bandwidth):
    vm.cmd("migrate-set-parameters", **{"downtime-limit": downtime_ms, "max-bandwidth": bandwidth})


def linux_args(emu, mem):
    image, initrd = h.guest_image()
    # on QEMU: OpenSBI, and no Sstc (godwit's hart has none, and QEMU 7.2
    # loses the stimecmp timer across a migration)
    argv = h.linux_argv(emu.bin, image, initrd, mem=mem,
                        extra=["-monitor", "none", *emu.linux_extra()])
    return argv[1:]  # VM() puts the binary first


def start_pair(emu, tag, args, tmp, logdir, stdin=False):
    """Source and destination (-incoming tcp:127.0.0.1:PORT); returns
    (src, dst, uri)."""
    uri = f"tcp:127.0.0.1:{h.free_port()}"
    src = VM(emu, f"{tag}.src", args, tmp, logdir, stdin=stdin)
    dst = VM(emu, f"{tag}.dst", args, tmp, logdir, incoming=uri, stdin=stdin)
    return src, dst, uri


def poll_migration(src, timeout, interval=0.02):
    """Poll the source's query-migrate until a final status or `timeout`
    seconds; returns (last answer, wall seconds, timed_out)."""
    t0 = time.monotonic()
    while True:
        info = src.cmd("query-migrate")
        if info.get("status") in FINAL:
            return info, time.monotonic() - t0, False
        if time.monotonic() - t0 > timeout:
            return info, time.monotonic() - t0, True
        time.sleep(interval)


def cancel(src, timeout=30.0):
    """migrate_cancel and wait until the source says cancelled (or failed)."""
    try:
        src.cmd("migrate_cancel")
    except Exception as e:
        print(f"bench-migrate: migrate_cancel: {e}", file=sys.stderr)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = src.cmd("query-migrate").get("status")
        if s in ("cancelled", "failed", "completed"):
            return s
        time.sleep(0.05)
    return "still cancelling"


def pause_metrics(src_ticks, dst_ticks):
    """(wall max gap ms, switchover gap ms, mtime max gap ms) over the source's
    ticks followed by the destination's (those numbered after the source's
    last)."""
    if not src_ticks or not dst_ticks:
        return None, None, None
    last_n = src_ticks[-1][1]
    seq = src_ticks + [t for t in dst_ticks if t[1] > last_n]
    wall = max(b[0] - a[0] for a, b in zip(seq, seq[1:])) * 1000
    switch = (dst_ticks[0][0] - src_ticks[-1][0]) * 1000
    mt = max(b[2] - a[2] for a, b in zip(seq, seq[1:])) * 1000 / MTIME_HZ
    return wall, switch, mt


def work_rate(ticks):
    """The guest's work (w=) per mtime second over a list of ticks, or None."""
    if len(ticks) < 2 or ticks[-1][2] <= ticks[0][2] or not ticks[-1][3]:
        return None
    return (ticks[-1][3] - ticks[0][3]) * MTIME_HZ / (ticks[-1][2] - ticks[0][2])


def one_run(emu, tag, elf, cfg, tmp, logdir):
    """One live migration; returns a dict of metrics, or {"dnc": seconds}.
    elf None: the Linux guest, booted to its shell and left idle."""
    linux = elf is None
    args = linux_args(emu, cfg["mem"]) if linux else baremetal_args(elf, cfg["mem"])
    src, dst, uri = start_pair(emu, tag, args, tmp, logdir, stdin=linux)
    try:
        for vm in (src, dst):
            set_params(vm, cfg["downtime"], UNLIMITED_BW)
        if linux:
            check(src.wait_line(LINUX_MARKER, cfg["boot_timeout"]) is not None,
                     f"{tag}: Linux did not reach its init in {cfg['boot_timeout']} s")
            time.sleep(cfg["warmup"] + 3)  # the shell prompt, then idle
        else:
            src.wait_ticks(1, 30)
            time.sleep(cfg["warmup"])
        t0 = time.monotonic()
        src.cmd("migrate", uri=uri)
        info, wall, timed_out = poll_migration(src, cfg["timeout"])
        t_end = time.monotonic()
        # The guest's speed while migrating (source side, mtime) against before.
        before = work_rate([t for t in src.ticks() if t[0] < t0])
        during = work_rate([t for t in src.ticks(t0) if t[0] <= t_end])
        speed = during / before * 100 if before and during else None
        if timed_out:
            state = cancel(src)
            ram = info.get("ram", {})
            return {"dnc": cfg["timeout"], "transferred": ram.get("transferred"), "speed": speed,
                    "syncs": ram.get("dirty-sync-count"), "cancel": state}
        check(info.get("status") == "completed", f"{tag}: migration {info}")
        dst.wait_status(("running",), 20)
        t_done = time.monotonic()
        ram = info.get("ram", {})
        if linux:
            # Not a pause: how long after `completed` the shell answers.
            dst.proc.stdin.write(b"echo alive-$((6*7))\n")
            dst.proc.stdin.flush()
            hit = dst.wait_line(r"^alive-42", 20, since=t_done)
            return {"total": info.get("total-time"), "downtime": info.get("downtime"),
                    "setup": info.get("setup-time"), "transferred": ram.get("transferred"),
                    "syncs": ram.get("dirty-sync-count"), "wall": wall * 1000,
                    "answer": (hit - t_done) * 1000 if hit else None}
        dst.wait_ticks(20, 20, since=t_done)
        pw, ps, pm = pause_metrics(src.ticks(t0 - 0.05), dst.ticks())
        return {"total": info.get("total-time"), "downtime": info.get("downtime"),
                "setup": info.get("setup-time"), "transferred": ram.get("transferred"),
                "syncs": ram.get("dirty-sync-count"), "wall": wall * 1000,
                "pause": pw, "switch": ps, "pause_mtime": pm, "speed": speed}
    finally:
        src.kill()
        dst.kill()


ROWS = [("total-time ms", "total", "%.0f"),
        ("  setup-time ms", "setup", "%.0f"),
        ("downtime ms (query-migrate)", "downtime", "%.0f"),
        ("MiB transferred", "transferred", "%.2f"),
        ("pause ms (wall tick gap)", "pause", "%.0f"),
        ("  switchover gap ms (wall)", "switch", "%.0f"),
        ("  pause ms (mtime tick gap)", "pause_mtime", "%.0f"),
        ("dirty syncs", "syncs", "%.0f"),
        ("guest speed while migrating %", "speed", "%.0f"),
        ("shell answers ms after completed", "answer", "%.0f")]


def summarize(rs):
    """Medians of the converged runs of one (guest, emulator): {key: value},
    plus "n_ok" / "n" / "dnc"."""
    ok = [r for r in rs if "dnc" not in r and "error" not in r]
    out = {"n": len(rs), "n_ok": len(ok), "dnc": any("dnc" in r for r in rs),
           "error": next((r["error"] for r in rs if "error" in r), None), "dnc_info": ""}
    dnc = [r for r in rs if "dnc" in r]
    if dnc:
        r = dnc[0]
        out["dnc_info"] = (f"{(r['transferred'] or 0) / 2**20:.0f} MiB sent, {r['syncs']} dirty "
                           f"syncs, guest speed {r['speed'] or 0:.0f}% while migrating")
    for _, key, _ in ROWS:
        vals = [r[key] for r in ok if r.get(key) is not None]
        if vals:
            v = statistics.median(vals)
            out[key] = v / 2**20 if key == "transferred" else v
    return out


def print_table(cfg, guests, kinds, summ):
    print(f"live migration, -m {cfg['mem']}, downtime-limit {cfg['downtime']} ms, "
          f"max-bandwidth unlimited, median of {cfg['runs']}")
    print(f"{'guest / metric':<34}{'godwit':>10}{'qemu':>10}{'ratio':>8}")
    notes = []
    for label, _ in guests:
        print(f"{label}")
        cells_na = {}
        for k in ("godwit", "qemu"):
            s = summ.get((label, k))
            if s is None:
                cells_na[k] = "-"
            elif s["error"] and not s["n_ok"]:
                cells_na[k] = "error"
                notes.append(f"{label}, {k}: {s['error']}")
            elif not s["n_ok"]:
                cells_na[k] = "dnc"
                notes.append(f"{label}, {k}: did not converge in {cfg['timeout']:.0f} s "
                             f"({s['n']} run(s), cancelled; {s['dnc_info']})")
            elif s["n_ok"] < s["n"]:
                notes.append(f"{label}, {k}: {s['n'] - s['n_ok']} of {s['n']} runs did not "
                             f"converge; medians over the others")
        have = [summ.get((label, k)) for k in ("godwit", "qemu")]
        for name, key, fmt in ROWS:
            if any(h and h["n_ok"] for h in have) and not any(h and key in h for h in have):
                continue  # a metric this guest does not have
            vals = []
            for k in ("godwit", "qemu"):
                s = summ.get((label, k))
                vals.append(s.get(key) if s and s["n_ok"] else None)
            cells = []
            for k, v in zip(("godwit", "qemu"), vals):
                cells.append(fmt % v if v is not None else cells_na.get(k, "-"))
            ratio = ("%.2f" % (vals[0] / vals[1])
                     if None not in vals and vals[1] else "-")
            print(f"  {name:<32}{cells[0]:>10}{cells[1]:>10}{ratio:>8}")
    for n in notes:
        print(f"note: {n}")
    print("ratio = godwit / qemu (lower is better); dnc = did not converge (cancelled)")


def config():
    build = os.environ.get("BUILD", "build/release")
    return {
        "runs": int(os.environ.get("BENCH_RUNS", "3")),
        "mem": os.environ.get("BENCH_MIGRATE_MEM", "256M"),
        "downtime": int(os.environ.get("BENCH_MIGRATE_DOWNTIME", "300")),
        "timeout": float(os.environ.get("BENCH_MIGRATE_TIMEOUT", "60")),
        "warmup": float(os.environ.get("BENCH_MIGRATE_WARMUP", "2")),
        "boot_timeout": float(os.environ.get("BENCH_TIMEOUT", "300")),
        "godwit": os.environ.get("GODWIT", os.path.join(ROOT, build, "godwit-vm")),
        "qemu": os.environ.get("QEMU", "qemu-system-riscv64"),
        "logs": os.environ.get("BENCH_LOGS", os.path.join(ROOT, build, "bench", "migrate")),
        "build": build,
    }


def emulators(cfg, what):
    """The emulators to run, or an exit status (2) after a message."""
    kinds = ["godwit", "qemu"]
    if os.environ.get("BENCH_QEMU_ONLY") == "1":
        kinds = ["qemu"]
    elif os.environ.get("BENCH_GODWIT_ONLY") == "1":
        kinds = ["godwit"]
    if "godwit" in kinds and not os.access(cfg["godwit"], os.X_OK):
        print(f"{what}: {cfg['godwit']} is not built (make)", file=sys.stderr)
        return 2
    if "qemu" in kinds and not shutil.which(cfg["qemu"]):
        print(f"{what}: {cfg['qemu']} is not installed", file=sys.stderr)
        return 2
    return kinds


def build_guests(names, what):
    elfs = [f"build/guest/{n}.elf" for n in names]
    r = subprocess.run(["make", "-C", ROOT, "-s", *elfs], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print(f"{what}: cannot build the guests: {r.stdout[-400:]}", file=sys.stderr)
        return None
    return [os.path.join(ROOT, e) for e in elfs]


def main():
    cfg = config()
    kinds = emulators(cfg, "bench-migrate")
    if kinds == 2:
        return 2
    guests = GUESTS
    only = os.environ.get("BENCH_MIGRATE_GUESTS")
    if only:
        guests = [g for g in GUESTS if g[1] in only.split(",")]
    elfs = build_guests([g[1] for g in guests if g[1] != "linux"], "bench-migrate")
    if elfs is None:
        return 2
    if any(g[1] == "linux" for g in guests):
        try:
            h.guest_image()
            elfs.insert([g[1] for g in guests].index("linux"), None)
        except h.Skip as e:
            print(f"bench-migrate: the Linux row is skipped: {e}", file=sys.stderr)
            guests = [g for g in guests if g[1] != "linux"]
    os.makedirs(cfg["logs"], exist_ok=True)
    emus = {k: Emu(k, cfg[k]) for k in kinds}
    res = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="godwit-bench-migrate-") as tmp:
        for (label, prog), elf in zip(guests, elfs):
            for i in range(1, cfg["runs"] + 1):
                order = kinds if i % 2 else kinds[::-1]
                for k in order:
                    rs = res.setdefault((label, k), [])
                    if any("dnc" in r for r in rs):
                        continue  # it did not converge once: do not wait again
                    tag = f"{prog}.{k}.{i}"
                    try:
                        r = one_run(emus[k], tag, elf, cfg, tmp, cfg["logs"])
                    except Exception as e:
                        failed = True
                        r = {"error": str(e)[:300]}
                        print(f"bench-migrate: {tag} failed: {e} (logs {cfg['logs']}/{tag}.*)",
                              file=sys.stderr)
                    rs.append(r)
                    if "dnc" in r:
                        print(f"run {i} {prog} {k}: did not converge in {r['dnc']:.0f} s "
                              f"({(r['transferred'] or 0) / 2**20:.0f} MiB sent, "
                              f"{r['syncs']} dirty syncs, guest speed {r['speed'] or 0:.0f}%), "
                              f"{r['cancel']}", file=sys.stderr)
                    elif "answer" in r or ("error" not in r and prog == "linux"):
                        print(f"run {i} {prog} {k}: total {r['total']} ms, downtime "
                              f"{r['downtime']} ms, {(r['transferred'] or 0) / 2**20:.1f} MiB, "
                              f"syncs {r['syncs']}, shell answered "
                              f"{r['answer'] if r['answer'] is None else round(r['answer'])} ms "
                              "after completed", file=sys.stderr)
                    elif "error" not in r:
                        print(f"run {i} {prog} {k}: total {r['total']} ms, downtime "
                              f"{r['downtime']} ms, {(r['transferred'] or 0) / 2**20:.1f} MiB, "
                              f"pause {r['pause']:.0f} ms (switchover {r['switch']:.0f}, "
                              f"mtime {r['pause_mtime']:.0f}), syncs {r['syncs']}, "
                              f"guest speed {r['speed'] or 0:.0f}%",
                              file=sys.stderr)
    summ = {key: summarize(rs) for key, rs in res.items()}
    print_table(cfg, guests, kinds, summ)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
