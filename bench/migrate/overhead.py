#!/usr/bin/env python3
"""Dirty-logging overhead behind bench/migrate/overhead.sh (see its header).

One run of one emulator: a source VM runs tests/guest/mig_dirty_mix (hash +
a store per 64-byte line + random load over 32 MiB; a `tick N t=MTIME w=ITERATIONS`
line every 10 ms of mtime).  The guest's speed (iterations per second of
mtime) is measured over alternating windows of BENCH_OVERHEAD_WINDOW (2 s):

  alone      no migration;
  migrating  a live migration to a fresh -incoming tcp: destination with
             max-bandwidth BENCH_OVERHEAD_BW (32 MiB/s) and downtime-limit
             BENCH_OVERHEAD_DOWNTIME (1 ms) runs its pre-copy rounds (the
             guest rewrites its 32 MiB all the time, so it never converges:
             dirty logging stays on and the dirty bitmap is synced every
             round); then migrate_cancel;

BENCH_OVERHEAD_CYCLES (5) times, and a last alone window.

BENCH_OVERHEAD_HELD=1 measures a held live migration instead (issue 13:
"a live job held before switchover costs the guest nothing beyond dirty
tracking"): the guest is tests/guest/mig_dirty_mix_small (the same loop over
1 MiB, so it converges), max-bandwidth BENCH_OVERHEAD_BW (default then
10 MB/s), downtime-limit 300 ms, and on godwit x-godwit-hold-switchover: the
migrating window starts once the source says x-godwit-held-converged, and
rounds keep the destination in sync meanwhile.  QEMU has no such state (its
pause-before-switchover stops the guest; with a guest this quiet its
pre-copy completes at once), so this mode runs godwit only: its goal is an
absolute one, a slowdown of at most 5 %.  Each migrating
window's slowdown is 1 - its rate / the mean of the alone windows either side
(a drift of the host load cancels out); the median over the cycles is
printed, for two rates: iterations per second of mtime (what the guest
sees; on a busy 2-core host it includes the CPU the migration thread and the
destination take from the hart) and iterations per CPU-second of the hart's
thread (/proc/PID/task/TID/schedstat; the work dirty logging adds to the
hart itself).  Windows skip their first 0.3 s (setup, cancel).  Emulators
alternate, never in parallel.
"""

import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import migrate as mb  # noqa: E402  (VM, start_pair, helpers)

SETTLE = 0.3  # seconds skipped at the start of each window


def thread_cpu(pid):
    """{tid: (nanoseconds on a CPU, nanoseconds runnable but waiting for
    one)} of every thread of a process (/proc/PID/task/TID/schedstat)."""
    out = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/schedstat") as f:
                run, wait = f.read().split()[:2]
            out[int(tid)] = (int(run), int(wait))
        except (OSError, ValueError):
            pass
    return out


class Window:
    """A measuring window: host time and the source's thread CPU times at
    both ends; the guest's work comes from the ticks in between."""

    def __init__(self, vm):
        self.vm = vm
        self.t0 = time.monotonic()
        self.cpu0 = thread_cpu(vm.proc.pid)

    def close(self):
        self.t1 = time.monotonic()
        self.cpu1 = thread_cpu(self.vm.proc.pid)

    def cpu(self, tid):
        return (self.cpu1.get(tid, (0, 0))[0] - self.cpu0.get(tid, (0, 0))[0]) / 1e9

    def runnable(self, tid):
        """Share of the window the thread was running or ready to run (the
        rest it was blocked: waiting for I/O or another thread)."""
        a, b = self.cpu0.get(tid, (0, 0)), self.cpu1.get(tid, (0, 0))
        return (b[0] + b[1] - a[0] - a[1]) / 1e9 / (self.t1 - self.t0)

    def busiest(self):
        return max(self.cpu1, key=self.cpu)

    def work(self):
        """(iterations, mtime seconds) of the ticks that arrived in the window."""
        ts = [t for t in self.vm.ticks(self.t0) if t[0] <= self.t1]
        mb.check(len(ts) >= 10, f"{self.vm.name}: {len(ts)} ticks in a window")
        return ts[-1][3] - ts[0][3], (ts[-1][2] - ts[0][2]) / mb.MTIME_HZ


def rate(vm, t_from, t_to):
    """Iterations per mtime second over the tick lines that arrived in
    [t_from, t_to] (host monotonic), and the lowest 100 ms rate."""
    ts = [t for t in vm.ticks(t_from) if t[0] <= t_to]
    mb.check(len(ts) >= 10, f"{vm.name}: {len(ts)} ticks in a window")
    total = (ts[-1][3] - ts[0][3]) * mb.MTIME_HZ / (ts[-1][2] - ts[0][2])
    lows = []
    for a, b in zip(ts, ts[10:]):
        if b[2] > a[2]:
            lows.append((b[3] - a[3]) * mb.MTIME_HZ / (b[2] - a[2]))
    return total, min(lows) if lows else total


def one_run(emu, tag, elf, cfg, tmp, logdir):
    """cfg["cycles"] times: an alone window, then a migrating window (a fresh
    destination each time, migrate_cancel at its end); then a last alone
    window.  Each migrating window is compared with the mean of the alone
    windows either side of it, so a drift in host load cancels out.  Two
    speeds per window: iterations per second of mtime (what the guest sees,
    including the CPU the migration takes from it on a busy host), and
    iterations per second of CPU time of the source's busiest thread in the
    first window, the hart's (the work dirty logging adds to the hart)."""
    args = mb.baremetal_args(elf, cfg["mem"])
    src = mb.VM(emu, f"{tag}.src", args, tmp, logdir)
    dst = None
    w = cfg["window"]
    alone, during, syncs, sent = [], [], [], []
    hart = None
    try:
        held = cfg["held"] and emu.kind == "godwit"
        downtime = 300 if held else cfg["downtime"]
        mb.set_params(src, downtime, cfg["bw"])
        if held:
            src.cmd("migrate-set-parameters", **{"x-godwit-hold-switchover": True})
        src.wait_ticks(1, 30)
        time.sleep(1.0)
        for c in range(cfg["cycles"] + 1):
            a0 = time.monotonic()
            if c < cfg["cycles"]:
                uri = f"tcp:127.0.0.1:{mb.h.free_port()}"
                dst = mb.VM(emu, f"{tag}.dst{c}", args, tmp, logdir, incoming=uri)
                mb.set_params(dst, downtime, cfg["bw"])
            time.sleep(max(0.0, SETTLE - (time.monotonic() - a0)))
            win = Window(src)
            time.sleep(max(0.0, w - (time.monotonic() - a0 - SETTLE)))
            win.close()
            if hart is None:
                hart = win.busiest()
            alone.append(win)
            if c == cfg["cycles"]:
                break
            src.cmd("migrate", uri=uri)
            if held:  # the window measures the held-converged state
                t0 = time.monotonic()
                while src.cmd("query-migrate").get("status") != "x-godwit-held-converged":
                    mb.check(time.monotonic() - t0 < 30,
                             f"{tag}: not x-godwit-held-converged after 30 s")
                    time.sleep(0.02)
            time.sleep(SETTLE)
            win = Window(src)
            time.sleep(w)
            win.close()
            info = src.cmd("query-migrate")
            mb.check(info.get("status") in (("x-godwit-held-converged",) if held else
                                            ("active", "device", "pre-switchover")),
                        f"{tag}: the migration is {info.get('status')} after {w} s (it should "
                        "still be in pre-copy: lower BENCH_OVERHEAD_BW or _DOWNTIME)")
            state = mb.cancel(src)
            during.append(win)
            ram = info.get("ram", {})
            syncs.append(ram.get("dirty-sync-count") or 0)
            sent.append((ram.get("transferred") or 0) / 2**20)
            dst.kill()
            dst = None
            st = src.cmd("query-status")["status"]
            mb.check(st == "running", f"{tag}: the source is {st} after migrate_cancel "
                                         f"({state})")

        def speeds(win):
            it, secs = win.work()
            return it / secs, it / max(win.cpu(hart), 1e-9)
        sa = [speeds(x) for x in alone]
        sd = [speeds(x) for x in during]
        slow = [[(1 - sd[i][j] / ((sa[i][j] + sa[i + 1][j]) / 2)) * 100 for i in range(len(sd))]
                for j in (0, 1)]
        return {"alone": statistics.mean(x[0] for x in sa),
                "during": statistics.mean(x[0] for x in sd),
                "slowdown": statistics.median(slow[0]), "slowdowns": slow[0],
                "slowdown_cpu": statistics.median(slow[1]), "slowdowns_cpu": slow[1],
                "hart_cpu": statistics.mean(x.cpu(hart) / (x.t1 - x.t0) for x in alone) * 100,
                "hart_cpu_mig": statistics.mean(x.cpu(hart) / (x.t1 - x.t0) for x in during) * 100,
                "hart_run": statistics.mean(x.runnable(hart) for x in alone) * 100,
                "hart_run_mig": statistics.mean(x.runnable(hart) for x in during) * 100,
                "syncs": statistics.mean(syncs), "sent": statistics.mean(sent)}
    finally:
        src.kill()
        if dst:
            dst.kill()


def main():
    cfg = mb.config()
    cfg["runs"] = int(os.environ.get("BENCH_OVERHEAD_RUNS", "1"))
    cfg["held"] = os.environ.get("BENCH_OVERHEAD_HELD", "0") == "1"
    cfg["bw"] = int(os.environ.get("BENCH_OVERHEAD_BW",
                                   str(10_000_000 if cfg["held"] else 32 << 20)))
    cfg["window"] = float(os.environ.get("BENCH_OVERHEAD_WINDOW", "2"))
    cfg["cycles"] = int(os.environ.get("BENCH_OVERHEAD_CYCLES", "5"))
    # a tiny downtime limit keeps the migration in pre-copy whatever the host's speed
    cfg["downtime"] = int(os.environ.get("BENCH_OVERHEAD_DOWNTIME", "1"))
    kinds = mb.emulators(cfg, "bench-migrate-overhead")
    if kinds == 2:
        return 2
    if cfg["held"]:
        kinds = [k for k in kinds if k == "godwit"]
    elfs = mb.build_guests(["mig_dirty_mix_small" if cfg["held"] else "mig_dirty_mix"],
                           "bench-migrate-overhead")
    if elfs is None:
        return 2
    os.makedirs(cfg["logs"], exist_ok=True)
    res = {k: [] for k in kinds}
    failed = False
    with tempfile.TemporaryDirectory(prefix="godwit-bench-overhead-") as tmp:
        for i in range(1, cfg["runs"] + 1):
            for k in (kinds if i % 2 else kinds[::-1]):
                tag = f"overhead.{k}.{i}"
                try:
                    r = one_run(mb.Emu(k, cfg[k]), tag, elfs[0], cfg, tmp, cfg["logs"])
                except Exception as e:
                    failed = True
                    print(f"bench-migrate-overhead: {tag} failed: {e} "
                          f"(logs {cfg['logs']}/{tag}.*)", file=sys.stderr)
                    continue
                res[k].append(r)
                print(f"run {i} {k}: alone {r['alone'] / 1e6:.2f}, migrating "
                      f"{r['during'] / 1e6:.2f} M it/s; slowdown per cycle (mtime) "
                      + " ".join(f"{x:.1f}%" for x in r["slowdowns"])
                      + ", (hart CPU) " + " ".join(f"{x:.1f}%" for x in r["slowdowns_cpu"])
                      + f"; hart CPU {r['hart_cpu']:.0f}% -> {r['hart_cpu_mig']:.0f}%, "
                      f"runnable {r['hart_run']:.0f}% -> {r['hart_run_mig']:.0f}%; "
                      f"{r['syncs']:.1f} dirty syncs, {r['sent']:.0f} MiB sent per window",
                      file=sys.stderr)
    if cfg["held"]:
        print(f"held-converged overhead: mig_dirty_mix_small, -m {cfg['mem']}, {cfg['cycles']} "
              f"cycles of {cfg['window']:.0f} s alone / {cfg['window']:.0f} s held-converged at "
              f"{cfg['bw'] / 1e6:.0f} MB/s (godwit only: QEMU has no such state), "
              f"{cfg['runs']} run(s); goal (issue 13): slowdown <= 5 %")
    else:
        print(f"dirty-logging overhead: mig_dirty_mix, -m {cfg['mem']}, {cfg['cycles']} cycles "
              f"of {cfg['window']:.0f} s alone / {cfg['window']:.0f} s pre-copy at "
              f"{cfg['bw'] / 2**20:.0f} MiB/s (downtime-limit {cfg['downtime']} ms), "
              f"{cfg['runs']} run(s)")
    print(f"{'emulator':<10}{'alone M it/s':>13}{'migrating':>10}{'slowdown %':>22}"
          f"{'per hart-CPU-s %':>22}{'hart CPU %':>11}{'runnable %':>11}{'syncs':>6}"
          f"{'MiB':>5}")
    for k in kinds:
        if not res[k]:
            print(f"{k:<10}{'failed':>13}")
            continue

        def med(key, rs=res[k]):
            return statistics.median(r[key] for r in rs)
        cpu = f"{med('hart_cpu'):.0f}->{med('hart_cpu_mig'):.0f}"
        runnable = f"{med('hart_run'):.0f}->{med('hart_run_mig'):.0f}"

        def spread(key, rs=res[k]):
            xs = [x for r in rs for x in r[key]]
            q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
            return f"{statistics.median(xs):.1f} [{q[0]:.0f}..{q[2]:.0f}]"
        print(f"{k:<10}{med('alone') / 1e6:>13.2f}{med('during') / 1e6:>10.2f}"
              f"{spread('slowdowns'):>22}{spread('slowdowns_cpu'):>22}{cpu:>11}"
              f"{runnable:>11}"
              f"{med('syncs'):>6.1f}{med('sent'):>5.0f}")
    print("slowdown: 1 - speed migrating / mean(speed in the alone windows either side), "
          "median [quartiles]\nover all cycles; speed per second of mtime (what the guest "
          "sees) and per CPU-second of the hart's\nthread (the work dirty logging adds); "
          "hart CPU: its share of a core alone -> migrating; runnable:\nthe share of time "
          "it ran or waited for a core (the rest it was blocked); syncs, MiB: per window")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
