#!/usr/bin/env python3
"""Save/restore benchmark behind bench/save/run.sh (see its header).

One run of one emulator: boot the 512 MiB Linux guest to the shell, fill
BENCH_SAVE_FILL_MB of /dev/shm with random bytes, `stop`, then time QMP
`migrate` to a file until query-migrate says completed; kill; start a new
process with -incoming and time it until it runs (query-status running, after
`cont`); on godwit-vm the console must then answer an echo.
Prints a line per run on stderr and the table of medians on stdout.
"""

import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import harness as h  # noqa: E402
import migration as mig  # noqa: E402  (MigVM, Emu, save_ok)


def one_run(ctx, image, initrd, fill_mb, boot_timeout):
    args = h.linux_argv(ctx.emu.bin, image, initrd, mem="512M", extra=ctx.emu.linux_extra())[1:]
    path = os.path.join(ctx.tmp, f"{ctx.emu.kind}.state")
    vm = mig.MigVM(ctx, f"bench-{ctx.emu.kind}", args, console=True)
    try:
        con = vm.con
        h.wait_shell(con, boot_timeout)
        if fill_mb:
            h.run(con, f"dd if=/dev/urandom of=/dev/shm/fill bs=1M count={fill_mb} 2>/dev/null")
        vm.cmd("stop")
        info = mig.save_ok(vm, path)
    finally:
        vm.kill()
    size = os.path.getsize(path)
    t0 = time.monotonic()
    vm = mig.MigVM(ctx, f"bench-{ctx.emu.kind}-restored", args,
                   incoming=ctx.emu.incoming_uri(path), console=True)
    try:
        if vm.wait_loaded(120) == "paused":
            vm.cmd("cont")
        h.check(vm.status() == "running", "the restored VM is not running")
        restore = time.monotonic() - t0
        if ctx.emu.kind == "godwit":
            # QEMU 7.2's restored Linux guest never answers (its timer is not
            # re-armed), so the console round trip is checked, not timed.
            out = h.run(vm.con, "echo restored-$((40+2))", timeout=120)
            h.check("restored-42" in out, f"restored console answered {out!r}")
    finally:
        vm.kill()
    os.unlink(path)
    return info["_wall"], info.get("total-time"), size, restore


def main():
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    fill = int(os.environ.get("BENCH_SAVE_FILL_MB", "64"))
    timeout = float(os.environ.get("BENCH_TIMEOUT", "300"))
    build = os.environ.get("BUILD", "build/release")
    godwit = os.environ.get("GODWIT", os.path.join(ROOT, build, "godwit-vm"))
    logs = os.environ.get("BENCH_LOGS", os.path.join(ROOT, build, "bench", "save"))
    kinds = ["godwit", "qemu"]
    if os.environ.get("BENCH_QEMU_ONLY") == "1":
        kinds = ["qemu"]
    elif not os.access(godwit, os.X_OK):
        print(f"bench-save: {godwit} is not built (make)", file=sys.stderr)
        return 2
    try:
        image, initrd = h.guest_image()
    except h.Skip as e:
        print(f"bench-save: skipped: {e}")
        return 0
    os.makedirs(logs, exist_ok=True)
    res = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="godwit-bench-save-") as tmp:
        for i in range(1, runs + 1):
            order = kinds if i % 2 else kinds[::-1]
            for k in order:
                binary = godwit if k == "godwit" else "qemu-system-riscv64"
                ctx = mig.Ctx("state", mig.Emu(k, binary), logs, tmp, 0, timeout)
                ctx.seq = i * 10
                try:
                    r = one_run(ctx, image, initrd, fill, timeout)
                except Exception as e:
                    print(f"bench-save: {k} run {i} failed: {e}", file=sys.stderr)
                    print(f"bench-save: logs in {logs}", file=sys.stderr)
                    return 1
                res[k].append(r)
                print(f"run {i} {k}: save {r[0]:.3f} s (total-time {r[1]} ms), "
                      f"{r[2] / 2**20:.1f} MiB, restore {r[3]:.3f} s", file=sys.stderr)

    def med(k, j):
        return statistics.median(r[j] for r in res[k]) if k in res else None

    rows = [("save (migrate -> completed) s", 0, "%.3f"),
            ("state file MiB", 2, "%.1f"),
            ("restore (start -> running) s", 3, "%.3f")]
    print(f"{'512M guest, ' + str(fill) + ' MiB filled, median of ' + str(runs):<34}"
          f"{'godwit':>10}{'qemu':>10}{'ratio':>8}")
    for label, j, fmt in rows:
        vals = [med(k, j) for k in ("godwit", "qemu")]
        if j == 2:
            vals = [v / 2**20 if v is not None else None for v in vals]
        cells = [(fmt % v) if v is not None else "-" for v in vals]
        ratio = "%.2f" % (vals[0] / vals[1]) if None not in vals and vals[1] else "-"
        print(f"{label:<34}{cells[0]:>10}{cells[1]:>10}{ratio:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
