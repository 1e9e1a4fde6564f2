#!/usr/bin/env python3
"""Dirty-logging overhead behind bench/migrate/overhead.sh (see its header).

One run of one emulator: a source VM runs tests/guest/mig_dirty_mix (hash +
streaming store + random load over 32 MiB; a `tick N t=MTIME w=ITERATIONS`
line every 10 ms of mtime) and a destination waits with -incoming tcp:.
The guest's speed (iterations per second of mtime) is measured over three
windows:

  before     BENCH_OVERHEAD_WINDOW (3 s) alone
  migrating  BENCH_OVERHEAD_MIGRATE (5 s) while a live migration with
             max-bandwidth BENCH_OVERHEAD_BW (16 MiB/s) runs its pre-copy
             rounds (the guest rewrites its 32 MiB faster than that, so it
             never converges: dirty logging is on and the dirty bitmap is
             synced every round); then migrate_cancel
  after      BENCH_OVERHEAD_WINDOW alone again

slowdown = 1 - migrating / mean(before, after).  The windows skip their
first 0.3 s (the migration's setup, the cancel).  Emulators alternate,
never in parallel.
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
    src, dst, uri = mb.start_pair(emu, tag, mb.guest_args(elf, cfg["mem"]), tmp, logdir)
    try:
        mb.set_params(dst, cfg["downtime"], cfg["bw"])
        mb.set_params(src, cfg["downtime"], cfg["bw"])
        src.wait_ticks(1, 30)
        time.sleep(1.0)
        w = cfg["window"]
        a0 = time.monotonic()
        time.sleep(w)
        a1 = time.monotonic()
        src.cmd("migrate", uri=uri)
        b0 = time.monotonic()
        time.sleep(cfg["migrate"])
        b1 = time.monotonic()
        info = src.cmd("query-migrate")
        mb.st.check(info.get("status") in ("active", "device", "pre-switchover"),
                    f"{tag}: the migration is {info.get('status')} after {cfg['migrate']} s "
                    "(it should still be in pre-copy: lower BENCH_OVERHEAD_BW)")
        state = mb.cancel(src)
        c0 = time.monotonic()
        time.sleep(w + SETTLE)
        c1 = time.monotonic()
        st = src.cmd("query-status")["status"]
        mb.st.check(st == "running", f"{tag}: the source is {st} after migrate_cancel ({state})")
        ra, la = rate(src, a0 + SETTLE, a1)
        rb, lb = rate(src, b0 + SETTLE, b1)
        rc, lc = rate(src, c0 + SETTLE, c1)
        ram = info.get("ram", {})
        return {"before": ra, "during": rb, "after": rc, "low_during": lb,
                "low_alone": min(la, lc), "syncs": ram.get("dirty-sync-count"),
                "sent": (ram.get("transferred") or 0) / 2**20,
                "slowdown": (1 - rb / ((ra + rc) / 2)) * 100}
    finally:
        src.kill()
        dst.kill()


def main():
    cfg = mb.config()
    cfg["runs"] = int(os.environ.get("BENCH_OVERHEAD_RUNS", "1"))
    cfg["bw"] = int(os.environ.get("BENCH_OVERHEAD_BW", str(16 << 20)))
    cfg["window"] = float(os.environ.get("BENCH_OVERHEAD_WINDOW", "3"))
    cfg["migrate"] = float(os.environ.get("BENCH_OVERHEAD_MIGRATE", "5"))
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
                print(f"run {i} {k}: {r['before'] / 1e6:.2f} -> {r['during'] / 1e6:.2f} -> "
                      f"{r['after'] / 1e6:.2f} M it/s, slowdown {r['slowdown']:.1f}%, "
                      f"{r['syncs']} dirty syncs, {r['sent']:.0f} MiB sent", file=sys.stderr)
    print(f"dirty-logging overhead: mig_dirty_mix, -m {cfg['mem']}, pre-copy at "
          f"{cfg['bw'] / 2**20:.0f} MiB/s for {cfg['migrate']:.0f} s, median of {cfg['runs']}")
    print(f"{'emulator':<10}{'alone M it/s':>14}{'migrating':>11}{'after':>8}"
          f"{'slowdown %':>12}{'worst 100ms %':>15}{'syncs':>7}{'MiB sent':>10}")
    for k in kinds:
        if not res[k]:
            print(f"{k:<10}{'failed':>14}")
            continue

        def med(key, rs=res[k]):
            return statistics.median(r[key] for r in rs)
        worst = (1 - med("low_during") / med("before")) * 100
        print(f"{k:<10}{med('before') / 1e6:>14.2f}{med('during') / 1e6:>11.2f}"
              f"{med('after') / 1e6:>8.2f}{med('slowdown'):>12.1f}{worst:>15.1f}"
              f"{med('syncs'):>7.0f}{med('sent'):>10.0f}")
    print("slowdown = 1 - migrating / mean(alone before, alone after); worst 100ms: the "
          "slowest 100 ms of mtime while migrating against the rate before")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
