#!/usr/bin/env python3
"""Live migration with local disks, godwit-vm against QEMU 7.2's block
migration (bench/storage/run.sh; issue 14's benchmark).

One run = one emulator, one scenario: a source VM with one virtio-blk disk
(`-drive if=none,id=d0,file=SRC,format=raw -device virtio-blk-device,drive=d0`)
and a destination with the same command line on an empty sparse image of the
same size (`truncate`) and `-incoming tcp:127.0.0.1:PORT`, both inside a
private network namespace (so the loopback's IP counters hold this migration
alone).  Both get downtime-limit and max-bandwidth; the source gets the
capability `block` (QEMU also `zero-blocks`: without it QEMU 7.2 sends every
zero 1 MiB chunk in full), then `migrate` and query-migrate is polled until
`completed`, or BENCH_STORAGE_TIMEOUT: then `migrate_cancel` and the run is
"dnc" (did not converge).  Then the destination runs a moment, both stop,
and the images are compared.

The disks are made on the host before the runs (seed BENCH_STORAGE_SEED):
extents of 64 KiB..8 MiB (4 KiB-aligned) scattered over the disk, the first
at 0 and the last ending at the end, random bytes (incompressible) with
written zero runs of 4..64 KiB in ~8 % of the data (allocated blocks that
read as zeros: a copy that punches them loses allocation, one that writes
them spends bytes).  Every run gets its own extent-by-extent copy of the
disk (same allocation), deleted after it.

Scenarios (BENCH_STORAGE_SCENARIOS):
  a   1 GiB disk, 128 MiB of data, tests/guest/mig_ticker (bare metal,
      idle, `tick N t=MTIME` every 10 ms), max-bandwidth unlimited
  b   4 GiB disk, 512 MiB of data, the same
  c0  the Linux guest (bench/migrate's: kernel + busybox initramfs, -smp 1)
      idle at its shell, a's disk plus the writer's window (256 MiB at
      512 MiB) written with random data on the host, max-bandwidth
      BENCH_STORAGE_BW MiB/s: the idle time (c) is held to
  c   the same guest and disk, writing: 16 MiB of /dev/urandom in /dev/shm,
      then a shell loop `dd ... of=/dev/vda bs=1M count=4 oflag=direct`
      round the window (so it overwrites, never allocates: c0 and c move
      the same disk), paced by /proc/uptime (a busy wait: QEMU 7.2 does not
      re-arm the guest's timer on the destination) to BENCH_STORAGE_WRITE
      MiB/s, printing `wr N` after chunk N.  The migration starts after 24
      chunks.

Measured per run:
  total-time, downtime     the source's query-migrate
  pause                    bare metal: the largest gap between two tick
                           lines (host monotonic time when each line comes
                           out of the emulator), source's then destination's,
                           from `migrate` on (bench/migrate's way; 10 ms of
                           it is the tick period).  (c): the same over the
                           writer's `wr N` lines (62 ms apart at 64 MiB/s)
  shell answers            Linux: from `completed` to the destination's
                           shell answering an echo (bench/migrate's figure)
  wire                     IpExt InOctets of the namespace (every packet on
                           lo, both directions, headers included)
  reported                 query-migrate: godwit's ram.transferred is the
                           whole stream (disk included); QEMU's is RAM only,
                           so ram + disk.transferred (QEMU's disk figure is
                           the bulk's progress, zero chunks included)
  allocation               st_blocks * 512 of the destination's image and
                           of the source's, after the run, and their
                           allocation maps (FIEMAP: SEEK_DATA misses
                           unwritten extents, st_blocks counts extent-tree
                           blocks too)
  content                  sha256 of both images after the run (holes read
                           as zeros); a mismatch fails the run.  (c): the
                           destination keeps writing after the switchover,
                           so the chunks it may have written (the source's
                           last `wr` + 1 to the destination's last + 1) are
                           left out of both digests
  write rate               (c): chunks per second of host time before the
                           migration, during it (source) and after it
                           (destination)

BENCH_RUNS runs per scenario and emulator, the emulators alternating (the
order flips every run), never in parallel; medians of the converged runs.
A scenario that did not converge once on an emulator is not run again there.
"""

import fcntl
import hashlib
import os
import random
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench", "migrate"))

import harness as h  # noqa: E402
from harness import check  # noqa: E402
import migrate as mg  # noqa: E402  (bench/migrate/migrate.py: VM, Emu, ticks, pauses)
from migration import Emu, baremetal_args  # noqa: E402

MiB = 1 << 20
BLOCK = 4096
UNLIMITED_BW = mg.UNLIMITED_BW
WR_RE = re.compile(r"(?:^|\s)wr (\d+)$")
CHUNK_MB = 4       # the writer's dd: bs=1M count=4
WINDOW_CHUNKS = 64  # 256 MiB
WINDOW_BASE_MB = 512
SCENARIOS = {
    "a": {"label": "(a) 1 GiB disk, 128 MiB data, idle", "size": 1 << 30, "data": 128 * MiB,
          "guest": "ticker"},
    "b": {"label": "(b) 4 GiB disk, 512 MiB data, idle", "size": 4 << 30, "data": 512 * MiB,
          "guest": "ticker"},
    "c0": {"label": "(c0) Linux idle, (a)'s disk + window, BW-limited", "size": 1 << 30,
           "data": 128 * MiB, "window": True, "guest": "linux"},
    "c": {"label": "(c) Linux writing, (a)'s disk + window, BW-limited", "size": 1 << 30,
          "data": 128 * MiB, "window": True, "guest": "linux", "write": True},
}


class RunFailed(Exception):
    """A run that produced no number (content mismatch, a crash, ...)."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- the disks --------------------------------------------------------------------------


def layout(rng, size, data):
    """[(offset, length)]: extents of `data` bytes in all, 4 KiB-aligned,
    scattered over [0, size): the first at 0, the last ending at size."""
    sizes, left = [], data
    while left > 0:
        s = int(2 ** rng.uniform(16, 23)) // BLOCK * BLOCK  # 64 KiB .. 8 MiB
        s = max(BLOCK, min(left, s))
        sizes.append(s)
        left -= s
    rng.shuffle(sizes)
    holes = (size - data) // BLOCK
    weights = [rng.expovariate(1.0) ** 2 for _ in range(len(sizes) - 1)]
    wsum = sum(weights) or 1.0
    gaps = [0] + [int(w / wsum * holes) * BLOCK for w in weights]
    gaps[-1] += size - data - sum(gaps)
    out, pos = [], 0
    for g, s in zip(gaps, sizes):
        pos += g
        out.append((pos, s))
        pos += s
    assert pos == size, (pos, size)
    return out


def make_disk(path, size, data, seed, window=False):
    """Write the master disk; returns (extents, zero bytes written).
    window: the writer's window (c) written with random data too, so that
    (c0) and (c) move the same data and the guest overwrites, never
    allocates."""
    rng = random.Random(seed)
    ext = layout(rng, size, data)
    zeros = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        for off, n in ext:
            buf = bytearray(rng.randbytes(n))
            pos = 0
            while pos < n:  # zero runs in ~8 % of the data
                run = rng.randrange(1, 17) * BLOCK
                if rng.random() < 0.08 and pos + run <= n:
                    buf[pos:pos + run] = bytes(run)
                    zeros += run
                pos += run
            os.pwrite(fd, buf, off)
        if window:
            for i in range(WINDOW_CHUNKS):
                os.pwrite(fd, rng.randbytes(CHUNK_MB * MiB), (WINDOW_BASE_MB + i * CHUNK_MB) * MiB)
        os.fsync(fd)
    finally:
        os.close(fd)
    return ext, zeros


def extents(fd, size):
    out, pos = [], 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after pos
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end - start))
        pos = end
    return out


def clone(src, dst):
    """Copy src to dst extent by extent: same size, data and allocation."""
    fi = os.open(src, os.O_RDONLY)
    fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = os.fstat(fi).st_size
        os.ftruncate(fo, size)
        for off, n in extents(fi, size):
            pos = off
            while pos < off + n:
                b = os.pread(fi, min(8 * MiB, off + n - pos), pos)
                os.pwrite(fo, b, pos)
                pos += len(b)
    finally:
        os.close(fi)
        os.close(fo)


def sparse_file(path, size):
    with open(path, "wb") as f:
        f.truncate(size)


def digest(path, skip=()):
    """sha256 of the file's content (holes read as zeros), the byte ranges
    in `skip` [(offset, length)] left out."""
    zero = bytes(8 * MiB)
    sha = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = extents(fd, size)
        cuts = sorted(skip)
        pos = 0
        # walk [0, size) in pieces that do not straddle a skipped range
        bounds = sorted({0, size, *[o for o, _ in cuts], *[o + n for o, n in cuts]})
        for lo, hi in zip(bounds, bounds[1:]):
            if any(o <= lo and hi <= o + n for o, n in cuts):
                continue
            pos = lo
            while pos < hi:
                # inside a data extent: read; in a hole: zeros
                ext = next(((o, n) for o, n in data if o <= pos < o + n), None)
                if ext:
                    end = min(hi, ext[0] + ext[1], pos + 8 * MiB)
                    sha.update(os.pread(fd, end - pos, pos))
                else:
                    nxt = min([o for o, _ in data if o > pos] + [hi])
                    end = min(hi, nxt, pos + 8 * MiB)
                    sha.update(zero[:end - pos])
                pos = end
    finally:
        os.close(fd)
    return sha.hexdigest()


def allocated(path):
    return os.stat(path).st_blocks * 512


FS_IOC_FIEMAP = 0xC020660B
FIEMAP_EXTENT_LAST = 0x1
FIEMAP_EXTENT_UNWRITTEN = 0x800


def extent_map(path):
    """The file's allocation from FIEMAP: ([(offset, length)] merged,
    bytes in unwritten extents).  Not SEEK_DATA: ext4 reports unwritten
    (fallocated) extents as holes there although they are allocated; not
    st_blocks alone: it counts the extent tree's own blocks too."""
    out, unwritten, start = [], 0, 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            n = 512
            req = bytearray(struct.pack("=QQLLLL", start, (1 << 64) - 1 - start, 1, 0, n, 0))
            req += bytes(56 * n)
            fcntl.ioctl(fd, FS_IOC_FIEMAP, req)  # FIEMAP_FLAG_SYNC
            mapped = struct.unpack_from("=L", req, 20)[0]
            last = False
            for i in range(mapped):
                lo, _, ln, _, _, fl = struct.unpack_from("=QQQQQL", req, 32 + 56 * i)
                if fl & FIEMAP_EXTENT_UNWRITTEN:
                    unwritten += ln
                if out and out[-1][0] + out[-1][1] == lo:
                    out[-1] = (out[-1][0], out[-1][1] + ln)
                else:
                    out.append((lo, ln))
                start = lo + ln
                last = bool(fl & FIEMAP_EXTENT_LAST)
            if last or mapped == 0:
                return out, unwritten
    finally:
        os.close(fd)


# ---- the network namespace (byte counts) ---------------------------------------------------


class NetNS:
    """A private network namespace with lo up: the emulators run in it, its
    IP counters count their migration alone.  None of it without root."""

    def __init__(self):
        self.name = None
        if os.geteuid() != 0 or not shutil.which("ip"):
            log("bench-storage: not root or no ip(8): bytes from query-migrate only")
            return
        name = f"gwstorage{os.getpid()}"
        r1 = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
        if r1.returncode != 0:
            log(f"bench-storage: no network namespace ({r1.stderr.strip()}): "
                "bytes from query-migrate only")
            return
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        self.name = name

    def prefix(self):
        return ["ip", "netns", "exec", self.name] if self.name else []

    def close(self):
        if self.name:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self.name = None


def in_octets(pid):
    """IpExt InOctets of the network namespace process pid is in, or None."""
    try:
        with open(f"/proc/{pid}/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for head, vals in zip(lines, lines[1:]):
        if head.startswith("IpExt:") and vals.startswith("IpExt:"):
            d = dict(zip(head.split()[1:], vals.split()[1:]))
            return int(d["InOctets"])
    return None


# ---- the emulators ----------------------------------------------------------------------


class VM(mg.VM):
    """bench/migrate's VM (lines stamped on arrival, ticks()), started in
    the network namespace."""

    def __init__(self, emu, name, args, tmp, logdir, ns, incoming=None, stdin=False):
        argv = [*ns.prefix(), emu.bin, *args]
        if incoming:
            argv += ["-incoming", incoming]
        h.VM.__init__(self, name, argv, out=os.path.join(logdir, f"{name}.out"),
                      err=os.path.join(logdir, f"{name}.err"),
                      qmp=os.path.join(tmp, f"{name}.qmp"), lines=True, stdin=stdin)
        self.emu = emu

    def send(self, text):
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def writes(self, since=0.0):
        """[(wall, N)] of the writer's `wr N` lines."""
        with self._lock:
            lines = list(self.lines)
        out = []
        for wall, text in lines:
            m = WR_RE.search(text)
            if m and wall >= since:
                out.append((wall, int(m.group(1))))
        return out

    def failed_writes(self):
        """The writer's `wrfail N` lines (its dd failed)."""
        return re.findall(r"(?:^|\s)wrfail \d+$", self.output(), re.M)

    def wait_for(self, pattern, timeout, since=0.0, what=None):
        hit = self.wait_line(pattern, timeout, since)
        check(hit is not None, f"{self.name}: no {what or pattern!r} after {timeout:.0f} s "
                               f"(exit {self.proc.poll()}; stderr {self.stderr()[-300:]!r})")
        return hit


def disk_args(img, extra=""):
    return ["-drive", f"if=none,id=d0,file={img},format=raw" + (f",{extra}" if extra else ""),
            "-device", "virtio-blk-device,drive=d0"]


def caps(vm, cfg):
    c = [{"capability": "block", "state": True}]
    if vm.emu.kind == "qemu" and cfg["qemu_zero_blocks"]:
        c.append({"capability": "zero-blocks", "state": True})
    vm.cmd("migrate-set-capabilities", capabilities=c)


def linux_shell(vm, cfg):
    """Wait for the guest image's shell on a lines-mode VM."""
    vm.wait_for(mg.LINUX_MARKER, cfg["boot_timeout"], what="Linux init")
    deadline = time.monotonic() + 120
    n = 0
    while True:
        n += 1
        t = time.monotonic()
        vm.send(f"echo ready-$(({n}*1000+42))")
        if vm.wait_line(rf"^ready-{n * 1000 + 42}$", 3, since=t) is not None:
            return
        check(time.monotonic() < deadline, f"{vm.name}: the shell does not answer")


def writer_cmd(cfg):
    """The writer loop: chunk N (4 MiB, O_DIRECT) at WINDOW_BASE + (N %
    WINDOW) * 4 MiB, then `wr N`, paced to cfg["write"] MiB/s by a busy
    wait on /proc/uptime (units of 0.1 ms), no catch-up after a stall."""
    period = int(CHUNK_MB / cfg["write"] * 10000)  # 0.1 ms units
    return ("(i=0; read u x < /proc/uptime; n=$(( ${u%.*}${u#*.} * 100 )); while :; do "
            f"dd if=/dev/shm/r of=/dev/vda bs=1M count={CHUNK_MB} skip=$(( i % 4 * {CHUNK_MB} )) "
            f"seek=$(( {WINDOW_BASE_MB} + i % {WINDOW_CHUNKS} * {CHUNK_MB} )) oflag=direct "
            "2>/dev/null || echo \"wrfail $i\"; i=$((i+1)); echo \"wr $i\"; "
            f"n=$((n+{period})); read u x < /proc/uptime; t=$(( ${{u%.*}}${{u#*.}} * 100 )); "
            "[ $t -gt $n ] && n=$t; while [ $t -lt $n ]; do read u x < /proc/uptime; "
            "t=$(( ${u%.*}${u#*.} * 100 )); done; done) &")


def rate(ws):
    """MiB/s of host time over [(wall, N)] lines, or None."""
    if len(ws) < 3 or ws[-1][0] <= ws[0][0]:
        return None
    return (ws[-1][1] - ws[0][1]) * CHUNK_MB / (ws[-1][0] - ws[0][0])


def line_gaps(src_lines, dst_lines):
    """(largest gap ms, switchover gap ms, wall time the largest gap began)
    over the source's (wall, N) lines then the destination's numbered after
    the source's last."""
    if not src_lines or not dst_lines:
        return None, None, None
    last = src_lines[-1][1]
    seq = src_lines + [x for x in dst_lines if x[1] > last]
    if len(seq) < 2:
        return None, None, None
    a, b = max(zip(seq, seq[1:]), key=lambda p: p[1][0] - p[0][0])
    return (b[0] - a[0]) * 1000, (dst_lines[0][0] - src_lines[-1][0]) * 1000, a[0]


def poll_migration(src, timeout, interval=0.02):
    """bench/migrate's poll_migration, keeping the last `disk` figures seen:
    QEMU 7.2 drops them from query-migrate once the migration is over.
    Returns (last answer, wall seconds, timed_out)."""
    t0 = time.monotonic()
    disk = None
    mirror = False
    while True:
        info = src.cmd("query-migrate")
        disk = info.get("disk") or disk
        mirror = mirror or bool(info.get("x-godwit-mirror"))
        if info.get("status") in mg.FINAL or time.monotonic() - t0 > timeout:
            if disk and "disk" not in info:
                info["disk"] = disk
            info["_mirror_seen"] = mirror  # godwit-vm turns it off as it parks
            return info, time.monotonic() - t0, info.get("status") not in mg.FINAL
        time.sleep(interval)


def one_run(emu, tag, sc, cfg, master, tmp, ns):
    """One live migration with its disk; a dict of figures, or {"dnc": s}."""
    size = sc["size"]
    linux = sc["guest"] == "linux"
    src_img = os.path.join(cfg["dir"], f"{tag}.src.raw")
    dst_img = os.path.join(cfg["dir"], f"{tag}.dst.raw")
    clone(master, src_img)
    sparse_file(dst_img, size)
    bw = cfg["bw"] if linux else UNLIMITED_BW
    if linux:
        args = mg.linux_args(emu, cfg["mem"])
    else:
        args = baremetal_args(cfg["ticker"], cfg["mem"])
    uri = f"tcp:127.0.0.1:{h.free_port()}"
    opts = cfg["qemu_drive_opts"] if emu.kind == "qemu" else ""
    src = VM(emu, f"{tag}.src", args + disk_args(src_img, opts), tmp, cfg["logs"], ns,
             stdin=linux)
    dst = VM(emu, f"{tag}.dst", args + disk_args(dst_img, opts), tmp, cfg["logs"], ns,
             incoming=uri, stdin=linux)
    res, skip = {}, []
    try:
        for vm in (src, dst):
            mg.set_params(vm, cfg["downtime"], bw)
        caps(src, cfg)
        if linux:
            linux_shell(src, cfg)
            if sc.get("write"):
                t = time.monotonic()
                src.send("dd if=/dev/urandom of=/dev/shm/r bs=1M count=16 2>/dev/null; "
                         "echo made-$((6*7))")
                src.wait_for(r"^made-42$", 120, since=t, what="16 MiB of /dev/urandom")
                src.send(writer_cmd(cfg))
                deadline = time.monotonic() + 120
                while max([n for _, n in src.writes()] or [0]) < 24:
                    check(time.monotonic() < deadline, f"{tag}: the writer wrote "
                          f"{len(src.writes())} chunks in 120 s")
                    check(src.proc.poll() is None, f"{tag}: the source exited")
                    time.sleep(0.05)
                check(not src.failed_writes(), f"{tag}: the writer's dd failed")
            else:
                time.sleep(cfg["warmup"])
        else:
            src.wait_ticks(1, 30)
            time.sleep(cfg["warmup"])
        oct0 = in_octets(src.proc.pid)
        t0 = time.monotonic()
        src.cmd("migrate", uri=uri)
        info, wall, timed_out = poll_migration(src, cfg["timeout"])
        t_end = time.monotonic()
        oct1 = in_octets(src.proc.pid)
        ram = info.get("ram", {})
        disk = info.get("disk", {})
        res.update({"transferred": ram.get("transferred"), "disk_reported": disk.get("transferred"),
                    "syncs": ram.get("dirty-sync-count"),
                    "mirror": info.get("_mirror_seen") if emu.kind == "godwit" else None})
        if sc.get("write"):
            before = [w for w in src.writes() if w[0] < t0 and w[1] >= 8]
            res["rate_before"] = rate(before)
            res["rate_during"] = rate([w for w in src.writes() if t0 <= w[0] <= t_end])
        if timed_out:
            res["dnc"] = cfg["timeout"]
            res["wire"] = (oct1 - oct0) if oct0 is not None and oct1 is not None else None
            res["cancel"] = mg.cancel(src)
            return res
        if info.get("status") != "completed":
            raise RunFailed(f"migration {info.get('status')}: {info.get('error-desc', info)}")
        dst.wait_status(("running",), 30)
        t_done = time.monotonic()
        oct2 = in_octets(dst.proc.pid)
        res["wire"] = (oct2 - oct0) if oct0 is not None and oct2 is not None else None
        res.update({"total": info.get("total-time"), "downtime": info.get("downtime"),
                    "wall": wall * 1000})
        if linux:
            t = time.monotonic()
            dst.send("echo alive-$((6*7))")
        if linux and not sc.get("write"):
            hit = dst.wait_line(r"^alive-42$", 30, since=t)
            check(hit is not None, f"{tag}: the destination's shell does not answer")
            res["answer"] = (hit - t_done) * 1000
        if sc.get("write"):
            s_lines = [w for w in src.writes() if w[0] >= t0 - 0.5]
            k_s = max(n for _, n in src.writes())
            deadline = time.monotonic() + 30
            while max([n for _, n in dst.writes()] or [0]) < k_s + 8:
                check(time.monotonic() < deadline, f"{tag}: the destination's writer wrote "
                      f"{len(dst.writes())} chunks in 30 s after the switchover")
                time.sleep(0.05)
            # The shell may not get the CPU: on QEMU 7.2's destination the
            # guest's timer is dead, nothing preempts the writer's busy wait.
            hit = dst.wait_line(r"^alive-42$", 1.5, since=t)
            res["answer"] = (hit - t_done) * 1000 if hit else None
            res["no_answer"] = hit is None
            res["rate_after"] = rate(dst.writes())
            dst.cmd("stop")
            time.sleep(0.3)  # the last lines
            d_lines = dst.writes()
            k_d = max(n for _, n in d_lines)
            res["pause"], res["switch"], at = line_gaps(s_lines, d_lines)
            if at is not None:  # where the largest gap began, from `migrate` on (s)
                res["gap_at"] = at - t0
                res["gap_of"] = t_end - t0
            # chunks the destination may have written after the switchover:
            # 0-based k_s .. k_d (the one in flight at `stop` included)
            slots = {i % WINDOW_CHUNKS for i in range(k_s, k_d + 1)}
            check(len(slots) < WINDOW_CHUNKS, f"{tag}: the destination rewrote the whole window")
            skip = [((WINDOW_BASE_MB + s * CHUNK_MB) * MiB, CHUNK_MB * MiB) for s in sorted(slots)]
            res["skipped"] = len(skip) * CHUNK_MB
            check(not dst.failed_writes(), f"{tag}: the writer's dd failed on the destination")
        elif not linux:
            dst.wait_ticks(20, 20, since=t_done)
            pw, ps, _ = mg.pause_metrics(src.ticks(t0 - 0.05), dst.ticks())
            res["pause"], res["switch"] = pw, ps
        else:
            dst.cmd("stop")
    finally:
        src.kill()
        dst.kill()
        try:
            if "dnc" not in res and "total" in res:
                res["alloc_src"] = allocated(src_img)
                res["alloc_dst"] = allocated(dst_img)
                (ms, res["unwritten_src"]), (md, res["unwritten_dst"]) = (extent_map(src_img),
                                                                          extent_map(dst_img))
                res["map_equal"] = ms == md
                a, b = digest(src_img, skip), digest(dst_img, skip)
                res["equal"] = a == b
                res["sha"] = (a, b)
        finally:
            for p in (src_img, dst_img):
                if os.path.exists(p) and not cfg["keep"]:
                    os.unlink(p)
    if not res["equal"]:
        raise RunFailed(f"content differs: source sha256 {res['sha'][0]}, destination "
                        f"{res['sha'][1]}")
    return res


# ---- the table --------------------------------------------------------------------------

ROWS = [("total-time ms", "total", "%.0f"),
        ("downtime ms (query-migrate)", "downtime", "%.0f"),
        ("pause ms (wall line gap)", "pause", "%.0f"),
        ("  switchover gap ms", "switch", "%.0f"),
        ("shell answers ms after done", "answer", "%.0f"),
        ("wire MiB (IP octets, netns)", "wire", "%.1f"),
        ("reported MiB (query-migrate)", "reported", "%.1f"),
        ("  disk.transferred MiB", "disk_reported", "%.1f"),
        ("dest allocated MiB", "alloc_dst", "%.1f"),
        ("source allocated MiB", "alloc_src", "%.1f"),
        ("guest writes MiB/s before", "rate_before", "%.1f"),
        ("  during migration", "rate_during", "%.1f"),
        ("  after (destination)", "rate_after", "%.1f"),
        ("dirty syncs", "syncs", "%.0f")]
MIB_KEYS = ("wire", "reported", "disk_reported", "alloc_dst", "alloc_src")


def reported(kind, r):
    """Bytes query-migrate says went: godwit's ram.transferred is the whole
    stream; QEMU's ram + disk."""
    t = r.get("transferred")
    if t is None:
        return None
    return t if kind == "godwit" else t + (r.get("disk_reported") or 0)


def summarize(kind, rs):
    ok = [r for r in rs if "dnc" not in r and "error" not in r]
    out = {"n": len(rs), "n_ok": len(ok), "dnc": [r for r in rs if "dnc" in r],
           "errors": [r["error"] for r in rs if "error" in r],
           "alloc_exact": all(r["alloc_dst"] == r["alloc_src"] for r in ok),
           "map_equal": all(r["map_equal"] for r in ok),
           "alloc_close": all(abs(r["alloc_dst"] - r["alloc_src"]) <= 0.01 * r["alloc_src"]
                              for r in ok),
           "alloc_diff": [r["alloc_dst"] - r["alloc_src"] for r in ok],
           "skipped": [r.get("skipped") for r in ok if r.get("skipped")],
           "unwritten": [r["unwritten_dst"] - r["unwritten_src"] for r in ok],
           "no_answer": sum(1 for r in ok if r.get("no_answer")),
           "mirrored": sum(1 for r in rs if r.get("mirror"))}
    for r in ok:
        r["reported"] = reported(kind, r)
    for _, key, _ in ROWS:
        vals = [r[key] for r in ok if r.get(key) is not None]
        if vals:
            v = statistics.median(vals)
            out[key] = v / MiB if key in MIB_KEYS else v
    return out


def fmt_ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b else "-"


def verdict(ok):
    return "met" if ok else "NOT met"


def print_table(cfg, scen, kinds, summ):
    print(f"live migration with local disks: -m {cfg['mem']}, downtime-limit {cfg['downtime']} ms, "
          f"max-bandwidth unlimited on (a)/(b), {cfg['bw'] // MiB} MiB/s on (c0)/(c); "
          f"writer target {cfg['write']} MiB/s; QEMU zero-blocks "
          f"{'on' if cfg['qemu_zero_blocks'] else 'off'}"
          + (f", QEMU -drive +{cfg['qemu_drive_opts']}" if cfg["qemu_drive_opts"] else "")
          + f"; median of {cfg['runs']} run(s); "
          f"load {os.getloadavg()[0]:.2f} at the end")
    print(f"{'scenario / metric':<34}{'godwit':>10}{'qemu':>10}{'ratio':>8}")
    notes = []
    for key in scen:
        sc = SCENARIOS[key]
        print(sc["label"])
        na = {}
        for k in kinds:
            s = summ.get((key, k))
            if s is None:
                na[k] = "-"
                continue
            if s["errors"]:
                notes.append(f"{key}, {k}: {len(s['errors'])} failed run(s): {s['errors'][0]}")
            if s["dnc"]:
                d = s["dnc"][0]
                notes.append(
                    f"{key}, {k}: did not converge in {cfg['timeout']:.0f} s ({len(s['dnc'])} "
                    f"run(s), cancelled: {d.get('cancel')}; "
                    f"{(d.get('wire') or 0) / MiB:.0f} MiB on the wire, "
                    "query-migrate disk.transferred "
                    f"{(d.get('disk_reported') or 0) / MiB:.0f} MiB, "
                    f"{d.get('syncs')} dirty syncs; guest writes "
                    f"{d.get('rate_before') or 0:.1f} MiB/s before, "
                    f"{d.get('rate_during') or 0:.1f} during)")
            if not s["n_ok"]:
                na[k] = "dnc" if s["dnc"] else "error"
            if s["no_answer"]:
                notes.append(f"{key}, {k}: in {s['no_answer']} run(s) the destination's shell did "
                             "not answer while the writer ran (counted from `completed` until "
                             "eight more chunks, +1.5 s)")
        have_ok = any(summ.get((key, k), {}).get("n_ok") for k in kinds)
        for name, mkey, f in ROWS:
            vals = [summ.get((key, k), {}).get(mkey) if summ.get((key, k), {}).get("n_ok") else None
                    for k in ("godwit", "qemu")]
            if all(v is None for v in vals) and (have_ok or mkey != "total"):
                continue  # a figure this scenario does not have
            cells = [f % v if v is not None else (na.get(k, "-") if mkey == "total" else "-")
                     for k, v in
                     zip(("godwit", "qemu"), vals)]
            print(f"  {name:<32}{cells[0]:>10}{cells[1]:>10}{fmt_ratio(*vals):>8}")
        for k in kinds:
            s = summ.get((key, k))
            if s and s["n_ok"]:
                diffs = ", ".join(f"{d / MiB:+.2f}" for d in s["alloc_diff"])
                print(f"  {k}: content equal in {s['n_ok']} of {s['n']} run(s); allocation "
                      f"dest - source MiB: {diffs}; allocation map (FIEMAP) "
                      f"{'identical' if s['map_equal'] else 'DIFFERS'}; unwritten extents dest - "
                      "source MiB: " + ", ".join(f"{u / MiB:+.2f}" for u in s["unwritten"])
                      + (f"; left out of the digests: {', '.join(map(str, s['skipped']))} MiB "
                         "(chunks written after the switchover)" if s["skipped"] else "")
                      + (f"; active mirroring switched on in {s['mirrored']} of {s['n']} run(s)"
                         if k == "godwit" and SCENARIOS[key].get("write") else ""))
    for n in notes:
        print(f"note: {n}")
    print("ratio = godwit / qemu (lower is better)")
    print("goals (issue 14):")
    goals_met = True

    def g(key, kind, mkey):
        s = summ.get((key, kind))
        return s.get(mkey) if s and s["n_ok"] else None

    for key in [k for k in ("a", "b") if k in scen]:
        for what, mkey, lim in (("total time <= 1/2 QEMU's", "total", 0.5),
                                ("bytes on the wire <= QEMU's", "wire", 1.0),
                                ("pause <= QEMU's", "pause", 1.0)):
            a, b = g(key, "godwit", mkey), g(key, "qemu", mkey)
            if mkey == "wire" and a is None:
                what, mkey = "bytes (query-migrate) <= QEMU's", "reported"
                a, b = g(key, "godwit", mkey), g(key, "qemu", mkey)
            if a is None or b is None:
                print(f"  ({key}) {what}: no figure ({a}, {b})")
                goals_met = False
                continue
            ok = a / b <= lim
            goals_met &= ok
            print(f"  ({key}) {what}: {a:.1f} vs {b:.1f}, ratio {a / b:.2f}: {verdict(ok)}")
    for key in scen:
        s = summ.get((key, "godwit"))
        if not s or not s["n_ok"]:
            continue
        ok = s["map_equal"] and s["alloc_close"]
        goals_met &= ok
        how = ("st_blocks equal" if s["alloc_exact"] else
               "st_blocks differ by " + ", ".join(f"{d >> 10:+d} KiB" for d in s["alloc_diff"]))
        print(f"  ({key}) godwit's destination allocation equal to the source's: {verdict(ok)} "
              f"({how}; allocation map (FIEMAP) {'identical' if s['map_equal'] else 'DIFFERS'})")
    if "c" in scen:
        s = summ.get(("c", "godwit"))
        base = g("c0", "godwit", "total")
        if s and s["n_ok"] and base:
            t = s["total"]
            ok = t <= 2 * base
            goals_met &= ok
            print(f"  (c) godwit converges within 2x its idle time (c0): {t:.0f} ms vs "
                  f"2 x {base:.0f} ms: {verdict(ok)}")
        else:
            goals_met = False
            print("  (c) godwit converges within 2x its idle time (c0): "
                  f"{'did not converge' if s and s['dnc'] else 'no figure'}: NOT met")
        q = summ.get(("c", "qemu"))
        if q:
            print(f"  (c) QEMU: {'converged' if q['n_ok'] else 'did not converge'} "
                  f"({q['n_ok']} of {q['n']} run(s))"
                  + (f", {q['total']:.0f} ms vs its idle {g('c0', 'qemu', 'total') or 0:.0f} ms"
                     if q['n_ok'] else ""))
        a, b = g("c", "godwit", "pause"), g("c", "qemu", "pause")
        if a is not None and b is not None:
            goals_met &= a <= b
            print(f"  (c) pause (writer's line gap) <= QEMU's: {a:.0f} vs {b:.0f} ms, ratio "
                  f"{a / b:.2f}: {verdict(a <= b)}")
    for key in [k for k in ("c0", "c") if k in scen]:
        a, b = g(key, "godwit", "wire"), g(key, "qemu", "wire")
        if a is not None and b is not None:
            goals_met &= a <= b
            print(f"  ({key}) bytes on the wire <= QEMU's: {a:.1f} vs {b:.1f} MiB, ratio "
                  f"{a / b:.2f}: {verdict(a <= b)}")
    print(f"all goals: {verdict(goals_met)}")


# ---- main -------------------------------------------------------------------------------


def config():
    build = os.environ.get("BUILD", "build/release")
    return {
        "runs": int(os.environ.get("BENCH_RUNS", "3")),
        "scenarios": os.environ.get("BENCH_STORAGE_SCENARIOS", "a,b,c0,c").split(","),
        "dir": os.environ.get("BENCH_STORAGE_DIR", "/tmp"),
        "mem": os.environ.get("BENCH_STORAGE_MEM", "256M"),
        "downtime": int(os.environ.get("BENCH_STORAGE_DOWNTIME", "300")),
        "bw": int(os.environ.get("BENCH_STORAGE_BW", "128")) * MiB,
        "write": float(os.environ.get("BENCH_STORAGE_WRITE", "64")),
        "timeout": float(os.environ.get("BENCH_STORAGE_TIMEOUT", "60")),
        "warmup": float(os.environ.get("BENCH_STORAGE_WARMUP", "1")),
        "qemu_zero_blocks": os.environ.get("BENCH_STORAGE_QEMU_ZERO_BLOCKS", "1") == "1",
        "qemu_drive_opts": os.environ.get("BENCH_STORAGE_QEMU_DRIVE_OPTS", ""),
        "keep": os.environ.get("BENCH_STORAGE_KEEP") == "1",  # debugging: keep the images
        "seed": int(os.environ.get("BENCH_STORAGE_SEED", "1")),
        "boot_timeout": float(os.environ.get("BENCH_TIMEOUT", "300")),
        "godwit": os.environ.get("GODWIT", os.path.join(ROOT, build, "godwit-vm")),
        "qemu": os.environ.get("QEMU", "qemu-system-riscv64"),
        "logs": os.environ.get("BENCH_LOGS", os.path.join(ROOT, build, "bench", "storage")),
    }


def main():
    cfg = config()
    bad = [s for s in cfg["scenarios"] if s not in SCENARIOS]
    if bad:
        log(f"bench-storage: unknown scenario(s) {bad}: a, b, c0, c")
        return 2
    scen = [s for s in SCENARIOS if s in cfg["scenarios"]]
    kinds = mg.emulators(cfg, "bench-storage")
    if kinds == 2:
        return 2
    elfs = mg.build_guests(["mig_ticker"], "bench-storage")
    if elfs is None:
        return 2
    cfg["ticker"] = elfs[0]
    if any(SCENARIOS[s]["guest"] == "linux" for s in scen):
        try:
            h.guest_image()
        except h.Skip as e:
            log(f"bench-storage: (c0) and (c) are skipped: {e}")
            scen = [s for s in scen if SCENARIOS[s]["guest"] != "linux"]
    os.makedirs(cfg["logs"], exist_ok=True)
    emus = {k: Emu(k, cfg[k]) for k in kinds}
    ns = NetNS()
    res = {}
    failed = False
    masters = {}
    try:
        with tempfile.TemporaryDirectory(prefix="godwit-bench-storage-") as tmp:
            for key in scen:
                sc = SCENARIOS[key]
                mk = (sc["size"], sc["data"], bool(sc.get("window")))
                if mk not in masters:
                    for p in masters.values():
                        os.unlink(p)  # one master on disk at a time
                    masters.clear()
                    path = os.path.join(cfg["dir"], f"godwit-bench-storage-{os.getpid()}-"
                                                    f"{sc['size'] >> 20}M.raw")
                    t = time.monotonic()
                    ext, zeros = make_disk(path, sc["size"], sc["data"], cfg["seed"],
                                           bool(sc.get("window")))
                    masters[mk] = path
                    log(f"disk {sc['size'] >> 20} MiB: {len(ext)} extents of "
                        f"{sc['data'] >> 20} MiB "
                        f"({zeros / MiB:.1f} MiB of it written zeros)"
                        + (f" + the writer's window, {WINDOW_CHUNKS * CHUNK_MB} MiB at "
                           f"{WINDOW_BASE_MB} MiB" if sc.get("window") else "")
                        + f": {allocated(path) / MiB:.1f} MiB allocated, made in "
                        f"{time.monotonic() - t:.1f} s")
                for i in range(1, cfg["runs"] + 1):
                    order = kinds if i % 2 else kinds[::-1]
                    for k in order:
                        rs = res.setdefault((key, k), [])
                        if any("dnc" in r for r in rs):
                            continue  # it did not converge once: do not wait again
                        tag = f"{key}.{k}.{i}"
                        t = time.monotonic()
                        try:
                            r = one_run(emus[k], tag, sc, cfg, masters[mk], tmp, ns)
                        except Exception as e:  # a failed check, QMP, RunFailed
                            failed = True
                            r = {"error": str(e)[:300]}
                            log(f"bench-storage: {tag} failed: {e} (logs {cfg['logs']}/{tag}.*)")
                        rs.append(r)
                        if "error" in r:
                            continue
                        wire = f"{r['wire'] / MiB:.1f}" if r.get("wire") is not None else "?"
                        if "dnc" in r:
                            log(f"run {i} {key} {k}: did not converge in {r['dnc']:.0f} s "
                                f"({wire} MiB on the wire, {r['cancel']}), writes "
                                f"{r.get('rate_before') or 0:.1f} MiB/s before, "
                                f"{r.get('rate_during') or 0:.1f} during")
                            continue
                        extra = ""
                        if r.get("pause") is not None:
                            extra += f", pause {r['pause']:.0f} ms"
                        if r.get("answer") is not None:
                            extra += f", shell answered {r['answer']:.0f} ms after"
                        if r.get("rate_before") is not None:
                            extra += (f", writes {r['rate_before']:.1f} / "
                                      f"{r.get('rate_during') or 0:.1f} / "
                                      f"{r.get('rate_after') or 0:.1f} MiB/s (before/during/after)"
                                      f", largest gap from {r.get('gap_at', 0):.1f} s of "
                                      f"{r.get('gap_of', 0):.1f} s"
                                      + (f", active mirroring {'on' if r['mirror'] else 'off'}"
                                         if r.get("mirror") is not None else ""))
                        log(f"run {i} {key} {k}: total {r['total']} ms, downtime "
                            f"{r['downtime']} ms, wire {wire} MiB, alloc dst "
                            f"{r['alloc_dst'] / MiB:.1f} / src {r['alloc_src'] / MiB:.1f} MiB (map "
                            f"{'identical' if r['map_equal'] else 'DIFFERS'}, unwritten dst "
                            f"{r['unwritten_dst'] / MiB:.1f} MiB), "
                            f"content equal{extra} ({time.monotonic() - t:.0f} s)")
    finally:
        for p in masters.values():
            if os.path.exists(p):
                os.unlink(p)
        ns.close()
    summ = {key: summarize(key[1], rs) for key, rs in res.items()}
    print_table(cfg, scen, kinds, summ)
    return 1 if failed else 0


if __name__ == "__main__":
    h.main(main)
