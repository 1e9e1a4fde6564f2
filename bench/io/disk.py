#!/usr/bin/env python3
"""Guest disk throughput: godwit-vm against QEMU TCG (bench/io/disk.sh).

Each run boots the Debian guest (guest/console.py) with two virtio-blk
disks on raw files in a temporary directory: vda, a fresh sparse 256 MiB
target, and vdb, BENCH_DISK_MB of random data made on the host (so the
guest spends no CPU making data, and zero detection cannot flatter
anyone).  The guest copies vdb into tmpfs (/dev/shm), then times, with
busybox dd's own clock (the guest clock follows host time on both):

  write 1M fsync    dd /dev/shm -> vda, bs=1M, conv=fsync (page cache + flush)
  write 1M direct   the same with oflag=direct (one request per MiB)
  read 1M direct    vda -> /dev/null, bs=1M, iflag=direct
  read 1M cold      drop_caches, then a buffered read (readahead requests)
  read 4k direct    vda -> /dev/null, bs=4k, iflag=direct, a quarter of the
                    data (per-request cost: one notify + interrupt per 4 KiB)

BENCH_RUNS boots per emulator, alternating godwit-vm and QEMU (the order
flips every run), never in parallel.  Prints the median MB/s per phase and
the ratio godwit/qemu (higher is better for throughput).  Both machines get
the same command line; QEMU also gets -global virtio-mmio.force-legacy=false
so both guests drive a virtio 1.x (modern) virtio-mmio device.
Exit 0, 1 if a run failed, 2 on a setup error; "skipped" (0) without a
guest image.
"""

import os
import re
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import harness as h  # noqa: E402
from harness import Console, ConsoleError  # noqa: E402

BUILD = os.environ.get("BUILD", "build/release")
GODWIT = os.environ.get("GODWIT", os.path.join(BUILD, "godwit-vm"))
QEMU = os.environ.get("QEMU", "qemu-system-riscv64")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MB = int(os.environ.get("BENCH_DISK_MB", "64"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "600"))
LOGS = os.environ.get("BENCH_LOGS", os.path.join(BUILD, "bench", "io"))

PHASES = [
    ("write 1M fsync", f"dd if=/dev/shm/src of=/dev/vda bs=1M conv=fsync", MB),
    ("write 1M direct", f"dd if=/dev/shm/src of=/dev/vda bs=1M oflag=direct", MB),
    ("read 1M direct", f"dd if=/dev/vda of=/dev/null bs=1M count={MB} iflag=direct", MB),
    ("read 1M cold", f"echo 3 > /proc/sys/vm/drop_caches; "
                     f"dd if=/dev/vda of=/dev/null bs=1M count={MB}", MB),
    ("read 4k direct", f"dd if=/dev/vda of=/dev/null bs=4k count={MB * 64} iflag=direct",
     MB // 4),
]


def argv(emu, guest, target, source):
    a = h.linux_argv(emu, *guest, mem="512M", extra=[
        "-drive", f"file={target},format=raw,if=none,id=t",
        "-drive", f"file={source},format=raw,if=none,id=s",
        "-device", "virtio-blk-device,drive=t", "-device", "virtio-blk-device,drive=s"])
    if emu == QEMU:
        a[1:1] = ["-global", "virtio-mmio.force-legacy=false"]
    return a


def dd_seconds(out):
    """busybox dd's status line: '... copied, 1.234 seconds, 51.9MB/s'."""
    m = re.search(r"copied,\s*([0-9.]+)\s*seconds", out)
    return float(m.group(1)) if m else None


def one_run(name, emu, guest, tmp, source, i):
    target = os.path.join(tmp, "target.img")
    if os.path.exists(target):
        os.unlink(target)
    with open(target, "wb") as f:
        f.truncate(256 << 20)
    log = os.path.join(LOGS, f"disk-{name}-{i}.log")
    res = {}
    with Console(argv(emu, guest, target, source), log=log, timeout=TIMEOUT) as con:
        h.wait_shell(con, TIMEOUT)
        con.run(f"dd if=/dev/vdb of=/dev/shm/src bs=1M 2>&1", timeout=TIMEOUT)
        if con.status != 0:
            raise ConsoleError("staging the data into /dev/shm failed")
        for phase, cmd, mb in PHASES:
            t0 = time.monotonic()
            out = con.run(cmd + " 2>&1", timeout=TIMEOUT)
            wall = time.monotonic() - t0
            if con.status != 0:
                raise ConsoleError(f"{phase}: `{cmd}` failed: {out.strip()[-200:]}")
            secs = dd_seconds(out) or wall
            res[phase] = mb / secs
        con.sendline("poweroff")
        con.wait(120)
    return res


def main():
    if not os.path.exists(GODWIT):
        print(f"bench-io disk: skipped: no godwit-vm (make) ({GODWIT})")
        return 2
    try:
        guest = h.guest_image()
    except h.Skip as e:
        print(f"bench-io disk: skipped: {e}")
        return 0
    if not shutil.which(QEMU):
        print(f"bench-io disk: {QEMU} not found (scripts/install-deps.sh)", file=sys.stderr)
        return 2
    os.makedirs(LOGS, exist_ok=True)
    results = {"godwit": [], "qemu": []}
    with tempfile.TemporaryDirectory(prefix="godwit-bench-io-") as tmp:
        source = os.path.join(tmp, "source.img")
        with open(source, "wb") as f:
            f.write(os.urandom(MB << 20))
        for i in range(1, RUNS + 1):
            order = [("godwit", GODWIT), ("qemu", QEMU)]
            if i % 2 == 0:
                order.reverse()
            for name, emu in order:
                try:
                    r = one_run(name, emu, guest, tmp, source, i)
                except (ConsoleError, OSError) as e:
                    print(f"bench-io disk: {name} run {i} failed: {e}\n"
                          f"  log: {LOGS}/disk-{name}-{i}.log", file=sys.stderr)
                    return 1
                results[name].append(r)
                print(f"run {i} {name}: " + ", ".join(f"{p} {v:.1f}" for p, v in r.items()) +
                      " MB/s", file=sys.stderr, flush=True)
    print(f"{'virtio-blk, ' + str(MB) + ' MiB':<22} {'godwit MB/s':>12} {'qemu MB/s':>12} "
          f"{'ratio':>7}")
    ratios = []
    for phase, _, _ in PHASES:
        g = statistics.median(r[phase] for r in results["godwit"])
        q = statistics.median(r[phase] for r in results["qemu"])
        ratios.append(g / q)
        print(f"{phase:<22} {g:12.1f} {q:12.1f} {g / q:7.2f}")
    geo = 1.0
    for r in ratios:
        geo *= r
    geo **= 1.0 / len(ratios)
    print(f"geomean ratio godwit/qemu: {geo:.2f} over {len(ratios)} phases, median of {RUNS} "
          f"runs (higher is better)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
