#!/usr/bin/env python3
"""Cold migration against rsync (bench/cold/run.sh, `make bench-cold`).

The disk: a sparse file of BENCH_COLD_SIZE (4 GiB) holding BENCH_COLD_DATA
(512 MiB) of data in extents scattered over it (seed BENCH_COLD_SEED, the
same file every run): extents of 64 KiB to 16 MiB (log-uniform sizes,
4 KiB-aligned, holes of every size between them, the first at offset 0,
the last ending at the file's end), each a sequence of segments of
pseudo-random bytes (incompressible), text-like lines (words from a fixed
vocabulary, ~3x with zstd) and zero runs (512 B to 64 KiB, unaligned:
written, so allocated on the source; whole zero 4 KiB blocks among them
are what a sparse copier leaves out).  Written once into the bench folder
(the master, what rsync sends), copied extent by extent (same allocation,
zero blocks included) into the VM's folder for each godwit run.

rsync (what admins use today): an rsync daemon on 127.0.0.1 (a module
pointing at a folder, no chroot, uid 0), `rsync --sparse --stats MASTER
rsync://127.0.0.1:PORT/cold/disk0.raw` into an empty module, BENCH_RUNS
times after BENCH_COLD_WARMUP unreported runs; reported separately, the
same with `--fsync` (godwit's destination fsyncs what it writes) and with
`--compress --compress-choice=zstd`, alternating run by run.  Then
the resume: through tests/lib/proxy.py on loopback, a clean run (the
proxy's client->server bytes), a run with `--partial` cut by the proxy
(RST) at 50 % of the clean run's bytes, and the rerun:
re-sent = cut run + rerun - clean run (below 0 here: the rerun's delta
algorithm matches the source's zero blocks, and text repeated from the
generator's 4 MiB pool, against the partial file).

godwit: three hosts in network namespaces (tests/lib/hosts.py's Rack:
ha, hb, hc with --listen), ha paired with hb directly and with hc through
tests/lib/proxy.py (a child process in hc's namespace on hc's address,
port 9443, forwarding to hc's --listen; hc's join token names it).  For
each run a VM `coldN` (--memory 64M, default firmware, no kernel,
--disk SIZE) is created on ha, stopped, its disk0.raw replaced by the
master's copy, then `godwit --json migrate coldN hb --cold --no-start
--confirm manual` (the VM never boots).  Measured: the CLI's wall time
(exec to exit: it follows the job until the VM arrived and the job waits
in its confirm phase) and the job's span to that phase (its history), the
job's figures.transfer (wire, total, chunks, resent), the destination's
disk0.raw allocation (st_blocks * 512) and `cmp` with the master; then
`godwit job confirm ID` (timed apart) drops the source's copy.  The
resume: `migrate coldR hc ... --detach` through the proxy with
cut_after(50 % of the clean runs' wire bytes); the job resumes on its own
(figures.transfer resumes / resent); if it fails instead, the migrate is
run once more and the two jobs' wire bytes are added.

The goals (the issue): godwit time <= rsync --sparse's; wire <= the
source's allocated bytes; destination allocation = source allocation
(+-1 %); re-sent after a cut <= 2 chunks (2 MiB).  The last table prints
the ratios.  Allocation is also compared with the source's non-zero
blocks (what a sparse copy can reach: the source's allocated zero blocks
are left out by both tools).

Without cold migration in this build (`godwit migrate --help` has no
--cold), the godwit half sets everything up (hosts, pairing through the
proxy, the VM and its disk), then stops with a clear message: exit 1,
the rsync numbers printed.

env: BUILD (build/release), BENCH_RUNS (3), BENCH_COLD_WARMUP (1: unreported
runs of rsync --sparse and of godwit first), BENCH_COLD_SIZE (4G),
BENCH_COLD_DATA (512M), BENCH_COLD_SEED (1), BENCH_COLD_PARTS
(rsync,rsync-variants,rsync-resume,godwit,godwit-resume), BENCH_COLD_DIR
(/tmp: where the files go), BENCH_COLD_TIMEOUT (600 s per transfer).
Exit status: 0 ok, 1 a run failed (or no cold migration), 2 setup error.
"""
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import agent  # noqa: E402
import harness as h  # noqa: E402
import hosts  # noqa: E402
from proxy import Proxy, ProxyProcess  # noqa: E402

BLOCK = 4096
CHUNK = 1 << 20  # godwitd/xfer.h XFER_CHUNK
PREFIX = "gwcold"
PROXY_PORT = 9443
PARTS = ["rsync", "rsync-variants", "rsync-resume", "godwit", "godwit-resume"]
MiB = 1 << 20


class SetupError(Exception):
    """Exit 2."""


class NotReady(Exception):
    """The godwit half cannot run with this build (exit 1)."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def size_arg(text):
    m = re.fullmatch(r"(\d+)([KMGT]?)", text.strip().upper())
    if not m:
        raise SetupError(f"bad size {text!r}")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]


# ---- the disk ---------------------------------------------------------------------------


def text_pool(rng, n):
    """n bytes of text-like lines from a fixed vocabulary."""
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    weights = [12, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    vocab = ["".join(rng.choices(letters, weights, k=rng.randint(2, 10))) for _ in range(3000)]
    vocab += ["the", "of", "and", "to", "in", "is", "that", "for", "it", "on"] * 20
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choices(vocab, k=rng.randint(4, 16)))
        if rng.random() < 0.2:
            line = f"{rng.randint(0, 99999):05d} " + line
        line = line.capitalize() + (".\n" if rng.random() < 0.7 else ",\n")
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def layout(rng, size, data):
    """[(offset, length)]: extents of `data` bytes in all, block-aligned,
    scattered over [0, size): the first at 0, the last ending at size."""
    sizes, left = [], data
    while left > 0:
        s = int(math.exp(rng.uniform(math.log(64 << 10), math.log(16 << 20))))
        s = max(BLOCK, min(left, s // BLOCK * BLOCK))
        sizes.append(s)
        left -= s
    rng.shuffle(sizes)
    gap_total = (size - data) // BLOCK
    n = len(sizes)
    weights = [rng.expovariate(1.0) ** 2 for _ in range(n - 1)]  # small and large holes
    wsum = sum(weights) or 1.0
    gaps = [0] + [int(w / wsum * gap_total) * BLOCK for w in weights]
    gaps[-1] += size - data - sum(gaps)  # the last extent ends at the file's end
    out, pos = [], 0
    for g, s in zip(gaps, sizes):
        pos += g
        out.append((pos, s))
        pos += s
    assert pos == size, (pos, size)
    return out


def extent_bytes(rng, pool, n):
    """n bytes: segments of random bytes, text and zero runs."""
    buf = bytearray()
    while len(buf) < n:
        r = rng.random()
        if r < 0.15:
            k = min(n - len(buf), rng.randint(512, 64 << 10))
            buf += bytes(k)
            continue
        k = min(n - len(buf), rng.randint(4 << 10, 256 << 10))
        if r < 0.60:
            buf += rng.randbytes(k)
        else:
            off = rng.randrange(0, len(pool) - k)
            buf += pool[off:off + k]
    return bytes(buf)


def generate(path, size, data, seed):
    """Write the disk; returns its layout."""
    rng = random.Random(seed)
    pool = text_pool(rng, 4 << 20)
    ext = layout(rng, size, data)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        for off, n in ext:
            b = extent_bytes(rng, pool, n)
            done = 0
            while done < n:
                done += os.pwrite(fd, b[done:], off + done)
        os.fsync(fd)
    finally:
        os.close(fd)
    return ext


def extents(fd, size):
    """[(offset, length)] of the data extents (SEEK_DATA / SEEK_HOLE)."""
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
    """Copy src to dst extent by extent: the same size, data and
    allocation (zero blocks inside extents stay allocated)."""
    fi = os.open(src, os.O_RDONLY)
    fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = os.fstat(fi).st_size
        os.ftruncate(fo, size)
        for off, n in extents(fi, size):
            pos = off
            while pos < off + n:
                b = os.pread(fi, min(8 << 20, off + n - pos), pos)
                os.pwrite(fo, b, pos)
                pos += len(b)
        os.fsync(fo)
    finally:
        os.close(fi)
        os.close(fo)


def scan(path):
    """size, allocated (st_blocks * 512), data (bytes in data extents),
    nonzero (bytes of 4 KiB blocks inside extents holding a non-zero byte:
    the allocation of a perfect sparse copy)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        ext = extents(fd, st.st_size)
        zero = bytes(BLOCK)
        nonzero = 0
        for off, n in ext:
            pos = off
            while pos < off + n:
                b = os.pread(fd, min(8 << 20, off + n - pos), pos)
                for i in range(0, len(b), BLOCK):
                    blk = b[i:i + BLOCK]
                    if blk != zero[:len(blk)]:
                        nonzero += len(blk)
                pos += len(b)
    finally:
        os.close(fd)
    return {"size": st.st_size, "allocated": st.st_blocks * 512,
            "data": sum(n for _, n in ext), "nonzero": nonzero, "extents": len(ext)}


def same(a, b):
    """cmp(1): True when the two files' contents are equal (holes read as
    zeros)."""
    return subprocess.run(["cmp", "--silent", a, b]).returncode == 0


def allocated(path):
    return os.stat(path).st_blocks * 512


# ---- rsync ------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RsyncDaemon:
    """`rsync --daemon --no-detach` on 127.0.0.1:port, module "cold" = dst."""

    def __init__(self, tmp):
        self.dst = os.path.join(tmp, "rsync-dst")
        os.makedirs(self.dst, exist_ok=True)
        self.port = free_port()
        conf = os.path.join(tmp, "rsyncd.conf")
        with open(conf, "w") as f:
            f.write(f"pid file = {tmp}/rsyncd.pid\nlog file = {tmp}/rsyncd.log\n"
                    f"address = 127.0.0.1\nport = {self.port}\nuse chroot = false\n"
                    f"[cold]\n  path = {self.dst}\n  read only = false\n  uid = 0\n"
                    f"  gid = 0\n")
        self.proc = subprocess.Popen(["rsync", "--daemon", "--no-detach", f"--config={conf}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise SetupError(f"the rsync daemon did not start (see {tmp}/rsyncd.log)")
                time.sleep(0.05)

    def url(self, port=None):
        return f"rsync://127.0.0.1:{port or self.port}/cold/disk0.raw"

    def target(self):
        return os.path.join(self.dst, "disk0.raw")

    def clear(self):
        for n in os.listdir(self.dst):
            p = os.path.join(self.dst, n)
            if os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # the daemon and its per-client children
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def stat_bytes(out, what):
    m = re.search(rf"^{what}: ([\d,]+)", out, re.M)
    return int(m.group(1).replace(",", "")) if m else None


def rsync(src, url, opts, timeout):
    """(exit code, wall s, Total bytes sent or None, output)."""
    argv = ["rsync", "--sparse", "--stats", *opts, src, url]
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - t0
    out = p.stdout + p.stderr
    return p.returncode, wall, stat_bytes(out, "Total bytes sent"), out


RSYNC_VARIANTS = [("rsync --sparse", []), ("rsync --sparse --fsync", ["--fsync"]),
                  ("rsync --sparse -z zstd", ["--compress", "--compress-choice=zstd"])]


def rsync_runs(cfg, d, master, variants):
    """{variant: [run dicts]}, alternating the variants run by run."""
    res = {name: [] for name, _ in variants}
    for i in range(-cfg["warmup"], cfg["runs"]):
        for name, opts in variants if i >= 0 else variants[:1]:
            d.clear()
            rc, wall, sent, out = rsync(master, d.url(), opts, cfg["timeout"])
            if rc != 0:
                raise AssertionError(f"{name}: exit {rc}: {out.strip()[-400:]}")
            dst = d.target()
            r = {"wall": wall, "wire": sent, "dst_alloc": allocated(dst), "same": same(master, dst)}
            if not r["same"]:
                raise AssertionError(f"{name}: the destination differs from the source")
            if i >= 0:
                res[name].append(r)
            tag = f"run {i + 1}" if i >= 0 else "warm-up"
            log(f"  {name} {tag}: {wall:.2f}s, {sent} B sent, "
                f"dst {r['dst_alloc'] / MiB:.1f} MiB allocated")
    return res


def wait_quiet(path, quiet=1.0, timeout=30):
    """Until path's size and allocation stop changing for quiet seconds."""
    last, since, end = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            st = os.stat(path)
            cur = (st.st_size, st.st_blocks, st.st_mtime_ns)
        except OSError:
            cur = None
        if cur != last:
            last, since = cur, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return cur
        time.sleep(0.1)
    return last


def rsync_resume(cfg, d, master):
    """Clean, cut-at-50 % and rerun, all through the proxy on loopback."""
    with Proxy(("127.0.0.1", 0), ("127.0.0.1", d.port)) as p:
        url = d.url(p.port)
        d.clear()
        c0 = p.stats()["c2s"]
        rc, wall_clean, sent_clean, out = rsync(master, url, ["--partial"], cfg["timeout"])
        if rc != 0:
            raise AssertionError(f"rsync resume, clean run: exit {rc}: {out.strip()[-400:]}")
        clean = p.stats()["c2s"] - c0
        d.clear()
        c1 = p.stats()["c2s"]
        p.cut_after(clean // 2)
        rc1, wall1, _, out1 = rsync(master, url, ["--partial"], cfg["timeout"])
        cut = p.stats()["c2s"] - c1
        if rc1 == 0:
            raise AssertionError("rsync resume: the cut run did not fail (was it cut?)")
        wait_quiet(d.target())  # the daemon's receiver keeps the partial file
        part = allocated(d.target()) if os.path.exists(d.target()) else 0
        partial_size = os.path.getsize(d.target()) if os.path.exists(d.target()) else 0
        c2 = p.stats()["c2s"]
        rc2, wall2, sent2, out2 = rsync(master, url, ["--partial"], cfg["timeout"])
        rerun = p.stats()["c2s"] - c2
        if rc2 != 0:
            raise AssertionError(f"rsync resume, rerun: exit {rc2}: {out2.strip()[-400:]}")
        ok = same(master, d.target())
        if not ok:
            raise AssertionError("rsync resume: the destination differs from the source")
    r = {"clean": clean, "clean_stats": sent_clean, "clean_wall": wall_clean, "cut_at": cut,
         "cut_rc": rc1, "partial_size": partial_size, "partial_alloc": part, "rerun": rerun,
         "rerun_stats": sent2, "rerun_wall": wall2, "resent": cut + rerun - clean,
         "dst_alloc": allocated(d.target())}
    log(f"  rsync resume: clean {clean} B, cut at {cut} B (exit {rc1}), partial "
        f"{partial_size} B / {part} B allocated, rerun {rerun} B in {wall2:.2f}s, "
        f"re-sent {r['resent']} B")
    return r


# ---- godwit -----------------------------------------------------------------------------


def cold_supported():
    p = subprocess.run([agent.godwit(), "migrate", "--help"], capture_output=True, text=True,
                       timeout=10)
    return "--cold" in p.stdout + p.stderr


def cli_ok(host, *args, timeout=120):
    rc, out, err = host.cli(*args, timeout=timeout)
    if rc != 0:
        raise AssertionError(f"{host.name}: godwit {' '.join(args)}: exit {rc}: "
                             f"{(out + err).strip()[-400:]}")
    return out


def pair(a, b, address):
    tok = cli_ok(b, "peer", "token", "--address", address).split()[-1]
    cli_ok(a, "peer", "add", b.name, tok, timeout=60)


def make_vm(host, name, master, size):
    """VM name on host with disk0.raw = a copy of master."""
    cli_ok(host, "vm", "create", name, "--memory", "64M", "--disk", str(size))
    vm = host.cli_json("vm", "show", name)
    disks = vm.get("disks") or []
    if len(disks) != 1 or disks[0].get("size") != size:
        raise AssertionError(f"{host.name}: {name}'s disks: {disks}")
    if vm.get("state") not in ("defined", "stopped"):
        raise AssertionError(f"{host.name}: {name} is {vm.get('state')}")
    path = disks[0]["path"]
    clone(master, path)
    return path


def job_of(host, res, err):
    if isinstance(res, dict) and isinstance(res.get("job"), int):
        return res["job"]
    if isinstance(res, int) and not isinstance(res, bool):
        return res
    m = re.search(r"job (\d+)", err or "")
    if m:
        return int(m.group(1))
    jobs = host.cli_json("job", "list", "--all") or []
    return max((j["id"] for j in jobs if j.get("direction") != "in"), default=None)


def migrate_cold(src, name, dst, timeout, detach=False):
    """`godwit --json migrate NAME DST --cold --no-start --confirm manual`:
    the CLI returns once the VM arrived (the job waits in its confirm
    phase) or the job failed.  (exit code, wall s, job id or None,
    stderr)."""
    args = ["--json", "migrate", name, dst.name, "--cold", "--no-start", "--confirm", "manual"]
    if detach:
        args.append("--detach")
    t0 = time.monotonic()
    rc, out, err = src.cli(*args, timeout=timeout)
    wall = time.monotonic() - t0
    try:
        res = json.loads(out) if out.strip() else None
    except ValueError:
        res = None
    return rc, wall, job_of(src, res, err), err.strip()


def job_show(host, jid):
    return host.cli_json("job", "show", str(jid))


FINAL = ("done", "failed", "cancelled", "canceled", "reverted")


def wait_job(host, jid, timeout):
    """Until the job waits for confirm (the VM arrived) or ended."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        j = job_show(host, jid)
        if j.get("status") in FINAL or j.get("phase") == "confirm":
            return j
        time.sleep(0.2)
    raise AssertionError(f"{host.name}: job {jid} did not arrive or end in {timeout}s")


def arrived(job):
    return job.get("phase") == "confirm" or job.get("status") == "done"


def to_confirm_s(host, jid):
    """The job's span from its creation to its confirm phase (the
    daemon's clock, from GET /1.0/jobs/ID's history), or None."""
    st, j = host.api("GET", f"/1.0/jobs/{jid}")
    if st != 200 or not isinstance(j, dict):
        return None
    created = confirm = None
    for ev in j.get("history") or []:
        t, data = ev.get("time"), ev.get("data") or {}
        if ev.get("type") == "job-created":
            created = t
        elif ev.get("type") == "job-phase" and data.get("phase") == "confirm" and confirm is None:
            confirm = t
    created = created or j.get("created")
    return (confirm - created) / 1000 if created and confirm else None


def confirm(host, jid):
    """`godwit job confirm ID`: the source's copy goes.  Seconds it took."""
    t0 = time.monotonic()
    cli_ok(host, "job", "confirm", str(jid), timeout=120)
    return time.monotonic() - t0


def transfer_of(job):
    t = (job.get("figures") or {}).get("transfer")
    if not isinstance(t, dict) or not isinstance(t.get("wire"), int):
        raise AssertionError(f"job {job.get('id')}: no figures.transfer with wire bytes: "
                             f"{json.dumps(job.get('figures'))[:400]}")
    return t


def dst_disk(host, name):
    return os.path.join(host.state, "vms", name, "disk0.raw")


def godwit_half(cfg, master, src_scan, parts, results):
    """Fills results["godwit"] (runs) and results["godwit_resume"]."""
    ready = cold_supported()
    with hosts.Rack(PREFIX, 3) as rack:
        a, b, c = rack.hosts
        if not rack.listen_ok:
            raise SetupError("this godwitd has no --listen")
        pair(a, b, b.listen)
        plog = open(os.path.join(cfg["logs"], "proxy.log"), "w")
        px = ProxyProcess(c.exec([]), (c.ip, PROXY_PORT), (c.ip, hosts.PORT), log=plog)
        try:
            pair(a, c, px.address)
            peers = {p["name"]: p["address"] for p in a.cli_json("peer", "list")}
            log(f"  godwit: {a.name} pairs {b.name} at {peers.get(b.name)}, {c.name} at "
                f"{peers.get(c.name)} (the proxy: {px.stats()['c2s']} B so far)")
            if "godwit" in parts:
                runs = results.setdefault("godwit", [])
                for i in range(-cfg["warmup"], cfg["runs"]):
                    name = f"cold{i}" if i >= 0 else f"coldw{-i}"
                    path = make_vm(a, name, master, src_scan["size"])
                    if allocated(path) != src_scan["allocated"]:
                        raise AssertionError(f"{path}: allocation {allocated(path)}, the master's "
                                             f"{src_scan['allocated']}")
                    if not ready:
                        raise NotReady(
                            f"cold migration is not in this build: `{agent.godwit()} migrate "
                            f"--help` has no --cold.  Set up and ready: VM {name} on {a.name} "
                            f"with the disk in place ({path}), {b.name} paired directly, "
                            f"{c.name} through the proxy at {px.address}.  Run again once it "
                            f"lands.")
                    rc, wall, jid, err = migrate_cold(a, name, b, cfg["timeout"])
                    j = job_show(a, jid) if jid else {}
                    if rc != 0 or not arrived(j):
                        raise AssertionError(f"migrate {name} {b.name} --cold: exit {rc}: {err} "
                                             f"(job {jid}: {j.get('status')} {j.get('phase')} "
                                             f"{j.get('error')})")
                    t = transfer_of(j)
                    dpath = dst_disk(b, name)
                    r = {"wall": wall, "job": to_confirm_s(a, jid), "wire": t["wire"],
                         "total": t.get("total"), "chunks": t.get("chunks"),
                         "resent": t.get("resent"), "dst_alloc": allocated(dpath),
                         "same": same(master, dpath)}
                    r["confirm"] = confirm(a, jid)
                    if not r["same"]:
                        raise AssertionError(f"{dpath} differs from the source")
                    if i >= 0:
                        runs.append(r)
                    tag = f"run {i + 1}" if i >= 0 else "warm-up"
                    log(f"  godwit {tag}: {wall:.2f}s, {r['wire']} B on the wire, dst "
                        f"{r['dst_alloc'] / MiB:.1f} MiB allocated")
                    cli_ok(b, "vm", "delete", name)
            if "godwit-resume" in parts:
                if not ready:
                    raise NotReady("cold migration is not in this build (no --cold)")
                results["godwit_resume"] = godwit_resume(cfg, a, c, px, master, src_scan,
                                                         results.get("godwit"))
        finally:
            px.stop()
            plog.close()


def godwit_resume(cfg, a, c, px, master, src_scan, runs):
    name = "coldr"
    make_vm(a, name, master, src_scan["size"])
    expect = statistics.median(r["wire"] for r in runs) if runs else src_scan["nonzero"]
    before = px.stats()
    px.cut_after(int(expect // 2))
    rc, _, jid, err = migrate_cold(a, name, c, cfg["timeout"], detach=True)
    if rc != 0 or not jid:
        raise AssertionError(f"migrate {name} {c.name} --cold --detach: exit {rc}: {err}")
    j = wait_job(a, jid, cfg["timeout"])
    after = px.stats()
    left = px.disarm()
    if after["cuts"] == before["cuts"]:
        raise AssertionError(f"the proxy never cut: {after['c2s'] - before['c2s']} B went through "
                             f"it, the cut was set at {int(expect // 2)} B ({left} B left)")
    jobs = [j]
    if not arrived(j):  # no resume inside the job: the operator runs it again
        log(f"  godwit resume: job {jid} {j['status']} after the cut ({j.get('error')}); "
            f"running migrate again")
        rc, _, jid2, err = migrate_cold(a, name, c, cfg["timeout"])
        j2 = job_show(a, jid2) if jid2 else {}
        if rc != 0 or not arrived(j2):
            raise AssertionError(f"migrate {name} {c.name} again after the cut: exit {rc}: {err}")
        jobs.append(j2)
    ts = [transfer_of(x) for x in jobs]
    dpath = dst_disk(c, name)
    ok = same(master, dpath)
    if not ok:
        raise AssertionError(f"{dpath} differs from the source after the resume")
    wire = sum(t["wire"] for t in ts)
    r = {"jobs": len(jobs), "cut_at": after["c2s"] - before["c2s"], "cuts": after["cuts"] -
         before["cuts"], "wire": wire, "resent": sum(t.get("resent") or 0 for t in ts),
         "resumes": sum(t.get("resumes") or 0 for t in ts), "clean_wire": expect,
         "extra": wire - expect, "dst_alloc": allocated(dpath)}
    confirm(a, jobs[-1]["id"])
    log(f"  godwit resume: {r}")
    return r


# ---- the report ---------------------------------------------------------------------------


def med(runs, key):
    v = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(v) if v else None


def fmt(v, f="%.2f"):
    return "-" if v is None else f % v


def ratio(a, b):
    return None if a is None or not b else a / b


def report(cfg, src, res):
    mib = lambda v: None if v is None else v / MiB  # noqa: E731
    size = (f"{src['size'] / (1 << 30):g} GiB" if src["size"] >= 1 << 30
            else f"{src['size'] / MiB:g} MiB")
    print(f"\ncold migration vs rsync: a {size} sparse disk, "
          f"{src['data'] / MiB:.0f} MiB of data in {src['extents']} data extents "
          f"(seed {cfg['seed']}); median of {cfg['runs']}")
    print(f"source: {mib(src['allocated']):.1f} MiB allocated, {mib(src['nonzero']):.1f} MiB "
          f"in non-zero 4 KiB blocks (the rest of the extents: zero runs)")
    print(f"\n{'tool':<30}{'wall s':>10}{'wire MiB':>12}{'dst alloc MiB':>15}{'= source':>10}")
    rows = []
    for name, _ in RSYNC_VARIANTS:
        if res.get("rsync", {}).get(name):
            rows.append((name, res["rsync"][name]))
    if res.get("godwit"):
        rows.append(("godwit migrate --cold", res["godwit"]))
    for name, runs in rows:
        print(f"{name:<30}{fmt(med(runs, 'wall')):>10}{fmt(mib(med(runs, 'wire'))):>12}"
              f"{fmt(mib(med(runs, 'dst_alloc')), '%.1f'):>15}"
              f"{'yes' if all(r['same'] for r in runs) else 'NO':>10}")
    if res.get("godwit"):
        g = res["godwit"]
        print(f"  godwit: the job from created to its confirm phase {fmt(med(g, 'job'))} s; "
              f"`job confirm` {fmt(med(g, 'confirm'))} s; chunks {fmt(med(g, 'chunks'), '%d')}; "
              f"figures total {fmt(mib(med(g, 'total')))} MiB")
    rr = res.get("rsync_resume")
    gr = res.get("godwit_resume")
    if rr or gr:
        print("\nresume after a cut at 50 % (RST by tests/lib/proxy.py)")
        if rr:
            print(f"  rsync --sparse --partial: clean {mib(rr['clean']):.1f} MiB in "
                  f"{rr['clean_wall']:.2f} s (through the proxy); cut after "
                  f"{mib(rr['cut_at']):.1f} MiB (partial file {mib(rr['partial_size']):.1f} MiB, "
                  f"{mib(rr['partial_alloc']):.1f} MiB allocated); rerun {mib(rr['rerun']):.1f} "
                  f"MiB in {rr['rerun_wall']:.2f} s; re-sent (cut + rerun - clean) "
                  f"{mib(rr['resent']):.2f} MiB")
        if gr:
            print(f"  godwit: cut after {mib(gr['cut_at']):.1f} MiB; {gr['jobs']} job(s), "
                  f"{gr['resumes']} resume(s); wire {mib(gr['wire']):.1f} MiB (clean "
                  f"{mib(gr['clean_wire']):.1f}); figures resent {mib(gr['resent']):.2f} MiB")
    base = res.get("rsync", {}).get(RSYNC_VARIANTS[0][0])
    g = res.get("godwit")
    print("\nratios (goal)")
    lines = [
        ("godwit / rsync --sparse wall time (<= 1)",
         ratio(med(g, "wall"), med(base, "wall")) if g and base else None),
        ("godwit wire / source allocated (<= 1)",
         ratio(med(g, "wire"), src["allocated"]) if g else None),
        ("godwit dst / source allocated (1 +- 0.01)",
         ratio(med(g, "dst_alloc"), src["allocated"]) if g else None),
        ("godwit dst / source non-zero blocks",
         ratio(med(g, "dst_alloc"), src["nonzero"]) if g else None),
        ("godwit resent / chunk (<= 2)",
         ratio(gr["resent"], CHUNK) if gr else None),
        ("rsync --sparse wire / source allocated",
         ratio(med(base, "wire"), src["allocated"]) if base else None),
        ("rsync --sparse dst / source allocated",
         ratio(med(base, "dst_alloc"), src["allocated"]) if base else None),
        ("rsync --sparse dst / source non-zero blocks",
         ratio(med(base, "dst_alloc"), src["nonzero"]) if base else None),
        ("rsync re-sent / chunk",
         ratio(rr["resent"], CHUNK) if rr else None),
    ]
    for k, v in lines:
        print(f"  {k:<46}{fmt(v, '%.4f'):>10}")
    goals = None
    if g and base and gr:
        goals = [ratio(med(g, "wall"), med(base, "wall")) <= 1,
                 med(g, "wire") <= src["allocated"],
                 abs(med(g, "dst_alloc") / src["allocated"] - 1) <= 0.01,
                 gr["resent"] <= 2 * CHUNK]
        print(f"goals met: {sum(goals)} of 4")
    return goals


# ---- main ---------------------------------------------------------------------------------


def main():
    cfg = {"runs": int(os.environ.get("BENCH_RUNS", "3")),
           "size": size_arg(os.environ.get("BENCH_COLD_SIZE", "4G")),
           "data": size_arg(os.environ.get("BENCH_COLD_DATA", "512M")),
           "seed": int(os.environ.get("BENCH_COLD_SEED", "1")),
           "warmup": int(os.environ.get("BENCH_COLD_WARMUP", "1")),
           "timeout": float(os.environ.get("BENCH_COLD_TIMEOUT", "600")),
           "logs": h.log_dir("bench", "cold")}
    parts = [p for p in os.environ.get("BENCH_COLD_PARTS", ",".join(PARTS)).split(",") if p]
    bad = set(parts) - set(PARTS)
    if bad or cfg["data"] > cfg["size"] or cfg["data"] < BLOCK or cfg["runs"] < 1:
        raise SetupError(f"bad BENCH_COLD_PARTS {sorted(bad)}, or data > size, or runs < 1")
    need = ["cmp"] + (["rsync"] if any(p.startswith("rsync") for p in parts) else [])
    for tool in need:
        if not shutil.which(tool):
            raise SetupError(f"{tool} is not installed (scripts/install-deps.sh)")
    if any(p.startswith("godwit") for p in parts):
        for b in (agent.godwitd(), agent.godwit()):
            if not os.access(b, os.X_OK):
                raise SetupError(f"{b} is not built (make)")
    base = os.environ.get("BENCH_COLD_DIR", "/tmp")
    tmp = tempfile.mkdtemp(prefix="godwit-bench-cold-", dir=base)
    res, failed = {}, []
    d = None
    old = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        master = os.path.join(tmp, "disk0.raw")
        t0 = time.monotonic()
        ext = generate(master, cfg["size"], cfg["data"], cfg["seed"])
        src = scan(master)
        log(f"disk: {master}: {len(ext)} extents, {src['allocated'] / MiB:.1f} MiB allocated, "
            f"{src['nonzero'] / MiB:.1f} MiB non-zero blocks, sha256 of the layout "
            f"{hashlib.sha256(repr(ext).encode()).hexdigest()[:16]} "
            f"({time.monotonic() - t0:.1f}s)")
        if any(p.startswith("rsync") for p in parts):
            d = RsyncDaemon(tmp)
            try:
                variants = RSYNC_VARIANTS if "rsync-variants" in parts else RSYNC_VARIANTS[:1]
                if "rsync" in parts or "rsync-variants" in parts:
                    res["rsync"] = rsync_runs(cfg, d, master, variants)
                if "rsync-resume" in parts:
                    res["rsync_resume"] = rsync_resume(cfg, d, master)
            except AssertionError as e:
                failed.append(f"rsync: {e}")
            finally:
                d.clear()
        if any(p.startswith("godwit") for p in parts):
            try:
                godwit_half(cfg, master, src, parts, res)
            except NotReady as e:
                failed.append(f"godwit: NOT RUN: {e}")
            except (AssertionError, h.Skip) as e:
                failed.append(f"godwit: {e}")
        report(cfg, src, res)
    finally:
        if d:
            d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        signal.signal(signal.SIGTERM, old)
    for f in failed:
        print(f"FAILED {f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SetupError as e:
        print(f"bench/cold: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
