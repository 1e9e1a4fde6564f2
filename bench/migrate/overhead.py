#!/usr/bin/env python3
"""Dirty-logging overhead behind bench/migrate/overhead.sh (see its header).

One run of one emulator: a source VM runs tests/guest/mig_dirty_mix (hash +
streaming store + random load over 32 MiB; a `tick N t=MTIME w=ITERATIONS`
line every 10 ms of mtime).  The guest's speed (iterations per second of
mtime) is measured over alternating windows of BENCH_OVERHEAD_WINDOW (2 s):

  alone      no migration;
  migrating  a live migration to a fresh -incoming tcp: destination with
             max-bandwidth BENCH_OVERHEAD_BW (16 MiB/s) runs its pre-copy
             rounds (the guest rewrites its 32 MiB faster than that, so it
             never converges: dirty logging stays on and the dirty bitmap is
             synced every round); then migrate_cancel;

BENCH_OVERHEAD_CYCLES (3) times, and a last alone window.  Each migrating
window's slowdown is 1 - its rate / the mean of the alone windows either side
(a drift of the host load cancels out); the median over the cycles is
printed.  Windows skip their first 0.3 s (setup, cancel).  Emulators
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


def rate(vm, t_from, t_to):
    """Iterations per mtime second over the tick lines that arrived in
    [t_from, t_to] (host monotonic), and the lowest 100 ms rate."""
    ts = [t for t in vm.ticks(t_from) if t[0] <= t_to]
    mb.st.check(len(ts) >= 10, f"{vm.name}: {len(ts)} ticks in a window")
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
    windows either side of it, so a drift in host load cancels out."""
    args = mb.guest_args(elf, cfg["mem"])
    src = mb.VM(emu, f"{tag}.src", args, tmp, logdir)
    dst = None
    w = cfg["window"]
    alone, during, lows, syncs, sent = [], [], [], [], []
    try:
        mb.set_params(src, cfg["downtime"], cfg["bw"])
        src.wait_ticks(1, 30)
        time.sleep(1.0)
        for c in range(cfg["cycles"] + 1):
            a0 = time.monotonic()
            if c < cfg["cycles"]:
                port = mb.free_port()
                uri = f"tcp:127.0.0.1:{port}"
                dst = mb.VM(emu, f"{tag}.dst{c}", args, tmp, logdir, incoming=uri)
                mb.set_params(dst, cfg["downtime"], cfg["bw"])
            time.sleep(max(0.0, w + SETTLE - (time.monotonic() - a0)))
            alone.append(rate(src, a0 + SETTLE, time.monotonic())[0])
            if c == cfg["cycles"]:
                break
            src.cmd("migrate", uri=uri)
            b0 = time.monotonic()
            time.sleep(w + SETTLE)
            b1 = time.monotonic()
            info = src.cmd("query-migrate")
            mb.st.check(info.get("status") in ("active", "device", "pre-switchover"),
                        f"{tag}: the migration is {info.get('status')} after {w} s (it should "
                        "still be in pre-copy: lower BENCH_OVERHEAD_BW)")
            state = mb.cancel(src)
            r, low = rate(src, b0 + SETTLE, b1)
            during.append(r)
            lows.append(low)
            ram = info.get("ram", {})
            syncs.append(ram.get("dirty-sync-count") or 0)
            sent.append((ram.get("transferred") or 0) / 2**20)
            dst.kill()
            dst = None
            st = src.cmd("query-status")["status"]
            mb.st.check(st == "running", f"{tag}: the source is {st} after migrate_cancel "
                                         f"({state})")
        ref = [(alone[i] + alone[i + 1]) / 2 for i in range(len(during))]
        slow = [(1 - d / a) * 100 for d, a in zip(during, ref)]
        return {"before": statistics.mean(alone), "during": statistics.mean(during),
                "slowdown": statistics.median(slow), "slowdowns": slow,
                "worst": (1 - min(lows) / statistics.mean(alone)) * 100,
                "syncs": statistics.mean(syncs), "sent": statistics.mean(sent)}
    finally:
        src.kill()
        if dst:
            dst.kill()


def main():
    cfg = mb.config()
    cfg["runs"] = int(os.environ.get("BENCH_OVERHEAD_RUNS", "1"))
    cfg["bw"] = int(os.environ.get("BENCH_OVERHEAD_BW", str(16 << 20)))
    cfg["window"] = float(os.environ.get("BENCH_OVERHEAD_WINDOW", "2"))
    cfg["cycles"] = int(os.environ.get("BENCH_OVERHEAD_CYCLES", "3"))
    kinds = mb.emulators(cfg, "bench-migrate-overhead")
    if kinds == 2:
        return 2
    elfs = mb.build_guests(["mig_dirty_mix"], "bench-migrate-overhead")
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
                print(f"run {i} {k}: alone {r['before'] / 1e6:.2f}, migrating "
                      f"{r['during'] / 1e6:.2f} M it/s, slowdown per cycle "
                      + " ".join(f"{x:.1f}%" for x in r["slowdowns"])
                      + f", {r['syncs']:.1f} dirty syncs, {r['sent']:.0f} MiB sent per window",
                      file=sys.stderr)
    print(f"dirty-logging overhead: mig_dirty_mix, -m {cfg['mem']}, {cfg['cycles']} cycles of "
          f"{cfg['window']:.0f} s alone / {cfg['window']:.0f} s pre-copy at "
          f"{cfg['bw'] / 2**20:.0f} MiB/s, median of {cfg['runs']} run(s)")
    print(f"{'emulator':<10}{'alone M it/s':>14}{'migrating':>11}"
          f"{'slowdown %':>12}{'worst 100ms %':>15}{'syncs':>7}{'MiB sent':>10}")
    for k in kinds:
        if not res[k]:
            print(f"{k:<10}{'failed':>14}")
            continue

        def med(key, rs=res[k]):
            return statistics.median(r[key] for r in rs)
        print(f"{k:<10}{med('before') / 1e6:>14.2f}{med('during') / 1e6:>11.2f}"
              f"{med('slowdown'):>12.1f}{med('worst'):>15.1f}"
              f"{med('syncs'):>7.1f}{med('sent'):>10.0f}")
    print("slowdown: 1 - migrating / mean(the alone windows either side), median over the "
          "cycles;\nworst 100ms: the slowest 100 ms of mtime while migrating against the mean "
          "alone rate; syncs, MiB sent: per migrating window")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
