#!/usr/bin/env python3
"""Live migration with local disks (issue 14): godwit-vm carries its
virtio-blk images in the live stream when the source sets QEMU 7.2's
capability `block` or passes `migrate {"uri": ..., "blk": true}`; the
destination is started with the same options, each -drive pointing at an
empty sparse file of the same size (docs/state.md, "Disks in the stream";
src/state/state_block.h, src/migration/mig_block.h).

Two godwit-vm processes on this host, QMP `migrate` over unix sockets and
127.0.0.1 TCP.  Both spellings are used, in turn.  "Same image" below means:
the same content (a digest over the bytes, holes read as zeros, so it does
not depend on the layout), the same allocated bytes (st_blocks; exactly for
the bare-metal disks, within 1 % for the Linux guest's) and, reported in
the note, the allocated ranges (FIEMAP: written and unwritten extents alike)
and how many of them are unwritten (fallocated) extents.  "Rolled back"
means: query-migrate ended failed (cancelled for a cancel) with a MIGRATION
event saying so, the source is `running` again and its guest goes on; "never
ran": the destination printed nothing and (unless killed) exited 1..127
with a message on stderr.

Bare metal (tests/guest/mig_ticker, -m 64M: it never touches its disks, so
its images must come out of every migration bit for bit as they went in):

  baremetal     two disks: 256 MiB sparse holding 40 scattered runs of
                random data (4 KiB to 1 MiB, some not page-sized), a
                written-zero (allocated) MiB, a zero page between two data
                pages of one block; and 3 MiB + 20 KiB (the last block is
                cut by the end of the disk) with data in its first and last
                pages.  A -> B (blk: true): completed with query-migrate disk
                {transferred, remaining 0, total = both sizes},
                x-godwit-mirror and x-godwit-dirty-blocks-rate present; B's
                images the same as A's with exactly the same allocated
                ranges, A's unchanged (content, st_blocks, ranges),
                disk.transferred at most the allocated bytes + 1 MiB (the
                bulk follows the data, not the size), ticks go on by one on
                the destination.
  chain         the same, then B -> C (capability block): C's images the
                same as A's (a destination's images migrate again as they
                came: its allocated zeros stay allocated).
  fallocated    a 64 MiB disk with 1 MiB of data and 8 MiB made with
                fallocate(2) (allocated, unwritten: what mkfs.ext4 on a host,
                `fallocate -l`, qemu-img preallocation=falloc and the guest's
                WRITE_ZEROES through godwit's virtio-blk leave): the
                destination's allocation must equal the source's (within
                1 %), as the spec says of allocated zeros.
  hostile       a 16 MiB disk; the proxy of tests/lib/migstream.py changes
                one bit of a real stream: the first BLOCK's offset (now past
                the disk's end), its disk index (a disk that does not exist),
                its page map (kind 3), the DISKSUM digest; then a destination
                whose image is 64 KiB larger, and one without a disk: each
                refused by the destination (an ERROR whose reason the
                source's error-desc carries, naming the fault), rolled back,
                never ran; the source's image unchanged after all of them;
                then a good migration completes (same image).

Linux (the Debian guest image, 256M, one shared boot: the first Linux case
starts it, each case hands the VM it migrated to on to the next; a case
that fails ends it and the next boots again).  Its 1 GiB disk is an ext4
image made on the host (mkfs.ext4 -d, lazy init off) holding static.bin
(STORAGE_STATIC_MIB, 192 MiB of random data) and read.bin (2 MiB), then
copied with `cp --sparse=always` so that it starts without unwritten
extents (those are the `fallocated` case's).  While every migration runs,
the guest runs two loops: a writer (dd 256 KiB from /dev/urandom into a new
file, sync, its sha256 appended to /tmp/sums, the file 16 back deleted) and
a reader (sha256sum of read.bin, then drop_caches so the next read comes
from the disk).  "The guest is intact" means: both loops stopped at a
boundary (a stop file), drop_caches, and then every file the writer left
has the sha256 it recorded, every read saw read.bin's sha256, four 1 MiB
slices of static.bin have the host's sha256; the loops then start again.
After each completed migration (destination started with -S, so that
nothing writes on either side): the destination's image is the same image
as the source's (the source is postmigrate: its image holds exactly what
its guest wrote up to the switchover), then `cont`, the writer goes on.

  cancel-bulk   max-bandwidth 16 MiB/s; migrate_cancel once 8 MiB of disk
                went (the bulk is far from done): cancelled, rolled back,
                never ran, the guest's loops go on and it is intact; then a
                migration to a fresh destination (blk: true) completes.
  kill-dst-bulk the same with the destination SIGKILLed: failed, rolled back.
  mirror        the reader stops (its re-reads dirty RAM faster than the
                link: RAM would not converge); a third loop rewrites a
                STORAGE_REGION_MIB (4 MiB) region of m.bin in place (dd
                from static.bin at a moving offset, conv=notrunc,fsync) as
                fast as it can, which must be faster than 1.5 x
                STORAGE_MIRROR_MIBS (8 MiB/s); each migration goes at full
                speed until the bulk is done, then max-bandwidth drops to
                STORAGE_MIRROR_MIBS, with x-godwit-hold-switchover set so
                that it cannot complete while the test measures: dirty
                blocks stop shrinking and query-migrate's x-godwit-mirror
                turns true (status active or held-converged).  Three
                migrations: cancelled while mirroring (the region loop's
                rate measured before the cancel must be below its rate
                before the migration, and after the cancel above it again:
                the writes are no longer held back), the destination
                killed while mirroring (each rolled back, the guest intact),
                then one released (hold off) while mirroring: it completes;
                after completion m.bin holds exactly what its last round
                wrote.
  linux-dd      a migration (capability block) at full speed under the loops:
                the same image on both sides, disk.transferred at most the
                allocated bytes + 16 MiB; on the destination the guest is
                intact; then the loops stop, /mnt is unmounted, the guest
                powers off (status 0), `e2fsck -fn` on the destination's
                image is clean and static.bin and read.bin read out of it with
                debugfs have the host's sha256.

Prints `PASS name` / `FAIL name: why` / `SKIP name: reason` and the last line
`N passed, N failed, N skipped`; exits 1 if anything failed.

usage: tests/linux/storage_test.py [--only NAME[,NAME]]

Environment: BUILD (build/release), GODWIT_VM, STORAGE_TEST_CASES
(comma-separated subset), STORAGE_STATIC_MIB (192), STORAGE_MIRROR_MIBS (8),
STORAGE_REGION_MIB (4),
GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD, STATE_TEST_TIMEOUT (Linux boot,
seconds, 240).  Needs e2fsprogs (mkfs.ext4, e2fsck, debugfs) on the host for
the Linux cases (SKIP without).
"""

import fcntl
import hashlib
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
import migrate_test as mt  # noqa: E402  (tests/linux/migrate_test.py: its migration steps)
import migration as mig  # noqa: E402
from harness import ROOT, Skip, check  # noqa: E402
from migration import MigVM, baremetal_args, ticks, wait_ticks  # noqa: E402
from migstream import SEC_BLOCK, SEC_DISKSUM, Proxy, nth_section  # noqa: E402

MiB = 1 << 20
FAST = mt.FAST
BULK_SLOW = 16 * MiB  # max-bandwidth that keeps the bulk going for seconds
MIRROR_BW = int(os.environ.get("STORAGE_MIRROR_MIBS", "8")) * MiB
STATIC_MIB = int(os.environ.get("STORAGE_STATIC_MIB", "192"))
READ_MIB = 2
LINUX_DISK = 1 << 30
REGION_MIB = int(os.environ.get("STORAGE_REGION_MIB", "4"))  # the mirror case's region

# ---- images on the host ------------------------------------------------------------------


def sparse(path, size):
    """A new empty sparse file of size bytes."""
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def allocated(path):
    return os.stat(path).st_blocks * 512


FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 1
FIEMAP_EXTENT_LAST = 1
FIEMAP_EXTENT_UNWRITTEN = 0x800


def fiemap(path):
    """The file's extents [(start, end, unwritten)] (FS_IOC_FIEMAP), in
    order, adjacent ones of the same kind merged; None where the file system
    has no FIEMAP."""
    out = []
    with open(path, "rb") as f:
        start, n = 0, 256
        while True:
            req = struct.pack("=QQIIII", start, (1 << 64) - 1 - start, FIEMAP_FLAG_SYNC, 0, n, 0)
            buf = bytearray(req + bytes(56 * n))
            try:
                fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, buf)
            except OSError:
                return None
            mapped = struct.unpack_from("=I", buf, 20)[0]
            last = False
            for i in range(mapped):
                lo, _phys, ln, _r0, _r1, flags = struct.unpack_from("=QQQQQI", buf, 32 + 56 * i)
                unw = bool(flags & FIEMAP_EXTENT_UNWRITTEN)
                if out and out[-1][1] == lo and out[-1][2] == unw:
                    out[-1] = (out[-1][0], lo + ln, unw)
                else:
                    out.append((lo, lo + ln, unw))
                start = lo + ln
                last = bool(flags & FIEMAP_EXTENT_LAST)
            if last or mapped == 0:
                return out


def alloc_ranges(extents):
    """The allocated ranges of fiemap()'s extents, written or not, merged."""
    out = []
    for lo, hi, _ in extents or ():
        if out and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


ZERO_MIB = bytes(MiB)


def content_digest(path):
    """sha256 over the content, 1 MiB at a time, reading only what SEEK_DATA
    says may hold data (an all-zero MiB counts as zeros either way): the
    same for two files with equal bytes whatever their layout."""
    size = os.path.getsize(path)
    d = hashlib.sha256()
    zero = hashlib.sha256(b"zero MiB").digest()
    with open(path, "rb") as f:
        fd = f.fileno()
        off = 0
        while off < size:
            n = min(MiB, size - off)
            try:
                nxt = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:  # ENXIO: holes to the end
                nxt = size
            if nxt >= off + n:
                d.update(zero if n == MiB else bytes(n))
            else:
                chunk = os.pread(fd, n, off)
                d.update(zero if chunk == ZERO_MIB else chunk)
            off += n
    return d.hexdigest()


def sha256_file(path):
    d = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            d.update(chunk)
    return d.hexdigest()


class Facts:
    """What "the same image" compares."""

    def __init__(self, path):
        self.path = path
        self.size = os.path.getsize(path)
        self.digest = content_digest(path)
        self.alloc = allocated(path)
        ext = fiemap(path)
        self.ranges = alloc_ranges(ext) if ext is not None else None
        self.unwritten = sum(hi - lo for lo, hi, u in ext or () if u)

    def describe(self):
        return (f"{os.path.basename(self.path)}: {self.alloc >> 10} KiB allocated "
                f"({self.unwritten >> 10} KiB unwritten), "
                f"{len(self.ranges) if self.ranges is not None else '?'} ranges")


def same_image(a, b, what, tolerance=0.01, exact=False, problems=None):
    """b (a destination's image) is the same image as a: content, size,
    allocated bytes (st_blocks, within tolerance, a fraction: it counts the
    file system's extent blocks too) and, with exact, the same allocated
    ranges (FIEMAP, written or not), else they are only reported.  Appends
    what differs to problems (or fails at once without it); returns a
    note."""
    bad = []
    if a.size != b.size:
        bad.append(f"size {b.size} vs {a.size}")
    if a.digest != b.digest:
        bad.append(f"content differs (digest {b.digest[:16]} vs {a.digest[:16]})")
    if abs(b.alloc - a.alloc) > tolerance * a.alloc:
        bad.append(f"allocated {b.alloc} bytes vs {a.alloc} (unwritten {b.unwritten} vs "
                   f"{a.unwritten})")
    ranges = "same ranges" if a.ranges == b.ranges else "other ranges"
    if exact and a.ranges is not None and b.ranges is not None and a.ranges != b.ranges:
        bad.append("other allocated ranges")
    if bad:
        msg = f"{what}: " + ", ".join(bad) + f" [{a.describe()}; {b.describe()}"
        if a.ranges is not None and b.ranges is not None and a.ranges != b.ranges:
            only_a = [r for r in a.ranges if r not in b.ranges][:3]
            only_b = [r for r in b.ranges if r not in a.ranges][:3]
            msg += f"; allocated ranges only in the first {only_a}, only in the second {only_b}"
        msg += "]"
        if problems is None:
            check(False, msg)
        problems.append(msg)
    return f"{b.alloc >> 10} KiB, {ranges}"


def drive_args(paths):
    """-drive/-device pairs, one virtio-blk disk per image, d0 first."""
    out = []
    for i, p in enumerate(paths):
        out += ["-drive", f"if=none,id=d{i},file={p},format=raw",
                "-device", f"virtio-blk-device,drive=d{i}"]
    return out


# ---- migration steps -------------------------------------------------------------------


def set_block(vm, on):
    vm.cmd("migrate-set-capabilities", capabilities=[{"capability": "block", "state": on}])


def blk_migrate(src, uri, spelling, **kw):
    """migrate with the disks: spelling "cap" sets the capability block,
    "blk" clears it and passes blk: true.  As migrate_test.migrate."""
    if spelling == "cap":
        set_block(src, True)
        return mt.migrate(src, uri, **kw)
    set_block(src, False)
    return mt.migrate(src, uri, blk=True, **kw)


def blk_ok(ctx, src, dst, uri, sizes, spelling, dst_state=("running",), timeout=120.0):
    """A migration with the disks that completes: migrate_test's checks on
    both sides, plus query-migrate's disk figures.  Returns its answer."""
    info = blk_migrate(src, uri, spelling, timeout=timeout)
    check(info.get("status") == "completed",
          f"{src.name} -> {dst.name}: migration {info.get('status')}: "
          f"{info.get('error-desc', info)}; destination stderr: {dst.stderr()[-300:]}")
    src.wait_status(("postmigrate",), 3)
    dst.wait_status(dst_state, 15)
    check("completed" in info["_events"],
          f"{src.name}: no MIGRATION completed event (got {info['_events']})")
    d = info.get("disk")
    check(isinstance(d, dict) and d.get("total") == sum(sizes) and d.get("remaining") == 0 and
          d.get("transferred", 0) > 0,
          f"query-migrate's disk after completion {d}, want total {sum(sizes)}, remaining 0")
    for k in ("x-godwit-mirror", "x-godwit-dirty-blocks-rate"):
        check(k in info, f"query-migrate has no {k}: {info}")
    return info


def rolled_back(src, info, want, goes_on):
    """The migration ended `want` (MIGRATION event too), the source runs
    again and goes_on() sees its guest go on."""
    check(info.get("status") == want,
          f"{src.name}: migration ended {info.get('status')}, want {want}: {info}")
    check(want in info["_events"],
          f"{src.name}: no MIGRATION {want} event (got {info['_events']})")
    src.wait_status(("running",), 10)
    goes_on()


def godwit_only(ctx):
    if ctx.emu.kind != "godwit":
        raise Skip("godwit-vm's stream (DISKS/BLOCK/DISKSUM) and figures")


def need_ticker():
    if not os.path.exists(mig.TICKER):
        r = subprocess.run(["make", "-C", ROOT, "build/guest/mig_ticker.elf"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise Skip("cannot build mig_ticker.elf: " + r.stdout.strip()[-200:])


def ticker_args(disks):
    return baremetal_args(mig.TICKER, "64M") + drive_args(disks)


def ticks_go_on(vm, history=""):
    wait_ticks(vm, history, len(ticks(history + vm.output())) + 3)


def with_vms(fn):
    vms = []
    try:
        return fn(vms)
    finally:
        for v in vms:
            v.kill()


# ---- bare metal ----------------------------------------------------------------------


def scatter(path, seed, runs=40):
    """Random data at random places (4 KiB .. 1 MiB, some not page-sized),
    a written-zero MiB at 100 MiB, a zero page between two data pages of
    one block at 200 MiB.  Returns the data bytes written."""
    r = random.Random(seed)
    size = os.path.getsize(path)
    n = 0
    with open(path, "r+b") as f:
        for _ in range(runs):
            ln = r.choice([4096, 65536, 300000, MiB])
            f.seek(r.randrange(0, size - ln, 4096))
            f.write(r.randbytes(ln))
            n += ln
        f.seek(100 * MiB)
        f.write(bytes(MiB))
        f.seek(200 * MiB)
        f.write(r.randbytes(8192) + bytes(4096) + r.randbytes(8192))
    return n


def baremetal(ctx, name, hops):
    """mig_ticker with the two disks of the docstring, `hops` migrations
    A -> B (blk: true) -> C (capability block)."""
    godwit_only(ctx)
    need_ticker()
    sizes = [256 * MiB, 3 * MiB + 20 * 1024]
    a = [sparse(os.path.join(ctx.tmp, f"{name}-a{i}.raw"), s) for i, s in enumerate(sizes)]
    scatter(a[0], 14)
    with open(a[1], "r+b") as f:
        f.write(os.urandom(4096))
        f.seek(sizes[1] - 8192)
        f.write(os.urandom(8192))
    orig = [Facts(p) for p in a]

    def body(vms):
        src = MigVM(ctx, name, ticker_args(a))
        vms.append(src)
        wait_ticks(src, "", 2)
        history, notes, problems, disks = "", [], [], a
        for hop, (spelling, kind) in enumerate((("blk", "unix"), ("cap", "tcp"))[:hops]):
            before = [Facts(p) for p in disks]
            nxt = [sparse(os.path.join(ctx.tmp, f"{name}-{hop}-{i}.raw"), s)
                   for i, s in enumerate(sizes)]
            dst, uri = mt.start_dest(ctx, vms, name, ticker_args(nxt), kind)
            mt.set_params(src, max_bandwidth=FAST)
            info = blk_ok(ctx, src, dst, uri, sizes, spelling)
            for b, p in zip(before, disks):
                same_image(b, Facts(p), f"hop {hop}: the source's {os.path.basename(p)} after "
                                        f"the migration", tolerance=0, exact=True,
                           problems=problems)
            got = [Facts(p) for p in nxt]
            for i, (o, g) in enumerate(zip(orig, got)):
                same_image(o, g, f"hop {hop}: disk {i} on the destination", exact=True,
                           problems=problems)
            sent = info["disk"]["transferred"]
            data = sum(f.alloc for f in before)
            if sent > data + MiB:
                problems.append(f"hop {hop}: disk.transferred {sent} bytes for {data} allocated")
            src.kill()
            history += src.output()
            ticks_go_on(dst, history)
            notes.append(f"hop {hop} ({spelling}): disk {sent >> 10} KiB sent for "
                         f"{data >> 10} KiB allocated, {info['total-time']} ms, downtime "
                         f"{info['downtime']} ms; images {', '.join(g.describe() for g in got)}")
            src, disks = dst, nxt
        check(not problems, "; ".join(problems))
        return "; ".join(notes)
    return with_vms(body)


def case_baremetal(ctx):
    return baremetal(ctx, "bm", 1)


def case_chain(ctx):
    return baremetal(ctx, "chain", 2)


def case_fallocated(ctx):
    godwit_only(ctx)
    need_ticker()
    size = 64 * MiB
    a = sparse(os.path.join(ctx.tmp, "fa-a.raw"), size)
    with open(a, "r+b") as f:
        f.write(os.urandom(MiB))
        os.posix_fallocate(f.fileno(), 16 * MiB, 8 * MiB)
    src_facts = Facts(a)

    def body(vms):
        src = MigVM(ctx, "fa", ticker_args([a]))
        vms.append(src)
        wait_ticks(src, "", 2)
        b = sparse(os.path.join(ctx.tmp, "fa-b.raw"), size)
        dst, uri = mt.start_dest(ctx, vms, "fa", ticker_args([b]), "unix")
        mt.set_params(src, max_bandwidth=FAST)
        blk_ok(ctx, src, dst, uri, [size], "blk")
        return "same image: " + same_image(src_facts, Facts(b), "the destination's image",
                                           exact=True)
    return with_vms(body)


HOSTILE = [
    # (name, where in the stream, payload byte, bits, what the reason names)
    # BLOCK: u32 disk, u32 flags, u64 offset, u32 blocks, the page map
    ("block-past-end", SEC_BLOCK, 12, 0x10, ("past the end",)),  # offset + 64 GiB
    ("block-no-disk", SEC_BLOCK, 0, 0x10, ("disk 16",)),  # disk index 16
    ("block-bad-map", SEC_BLOCK, 20, 0x01, ("kind 3",)),  # page 0: data -> kind 3
    ("wrong-digest", SEC_DISKSUM, 4, 0x10, ("digest",)),  # DISKSUM's first digest
]


def case_hostile(ctx):
    godwit_only(ctx)
    need_ticker()
    size = 16 * MiB
    a = sparse(os.path.join(ctx.tmp, "ho-a.raw"), size)
    with open(a, "r+b") as f:
        f.write(os.urandom(64 * 1024))  # the first BLOCK's page 0 is data
        f.seek(5 * MiB)
        f.write(os.urandom(MiB))
        f.seek(8 * MiB)
        f.write(bytes(256 * 1024))
    orig = Facts(a)
    orig_sha = sha256_file(a)

    def body(vms):
        src = MigVM(ctx, "ho", ticker_args([a]))
        vms.append(src)
        wait_ticks(src, "", 2)
        notes, failures = [], []

        def attempt(name, dst_disks, proxy_kw, want):
            dst, uri = mt.start_dest(ctx, vms, f"ho-{name}", ticker_args(dst_disks), "unix")
            proxy = Proxy(ctx, uri, **proxy_kw) if proxy_kw else None
            mt.set_params(src, max_bandwidth=FAST)
            info = blk_migrate(src, proxy.uri if proxy else uri, "blk")
            try:
                if proxy:
                    check(proxy.flipped_at is not None, f"nothing changed: {proxy.describe()}")
                    names = [r[0] for r in proxy.replies]
                    check("READY" not in names, f"the destination answered {names}")
                rolled_back(src, info, "failed", lambda: ticks_go_on(src))
                why = mt.dest_never_ran(dst)
                check(dst.proc.returncode == 1, f"the destination exited {dst.proc.returncode}")
                reason = mt.reason_travelled(ctx, info, why, proxy, want)
                notes.append(f"{name}: {reason[:100]}")
            except AssertionError as e:
                failures.append(f"{name}: {e}")
                src.wait_status(("running",), 10)
            dst.kill()

        for name, typ, byte, bits, want in HOSTILE:
            b = sparse(os.path.join(ctx.tmp, f"ho-{name}.raw"), size)
            attempt(name, [b], dict(flip=(nth_section(typ), byte, bits)), want)
        attempt("size-mismatch", [sparse(os.path.join(ctx.tmp, "ho-big.raw"), size + 65536)],
                None, ("same size", str(size)))
        # the configuration (CONFIG) already differs: a machine without the disk
        attempt("no-disk", [], None, ("differently configured machine", "virtio-blk"))
        now = Facts(a)
        if (now.digest, now.alloc) != (orig.digest, orig.alloc) or sha256_file(a) != orig_sha:
            failures.append(f"the source's image changed: {orig.describe()} -> {now.describe()}")
        check(not failures, "; ".join(failures))
        b = sparse(os.path.join(ctx.tmp, "ho-good.raw"), size)
        dst, uri = mt.start_dest(ctx, vms, "ho-good", ticker_args([b]), "tcp")
        blk_ok(ctx, src, dst, uri, [size], "cap")
        same_image(orig, Facts(b), "the good destination's image")
        src.kill()
        ticks_go_on(dst, src.output())
        return "; ".join(notes) + "; source image unchanged; then a good migration completed"
    return with_vms(body)


# ---- the Linux guest ---------------------------------------------------------------------

# The guest's loops (scripts written to /tmp; one line each, no single quote).
# writer: a new 256 KiB file of random data, sync, its sha256 kept in RAM
# (/tmp/sums), the file 16 back deleted; /tmp/wi the last one finished.
WRITER = ("i=$(cat /tmp/wi 2>/dev/null || echo 0); mkdir -p /mnt/w; "
          "while [ ! -e /tmp/wstop ]; do i=$((i+1)); "
          "dd if=/dev/urandom of=/mnt/w/f$i bs=64k count=4 2>/dev/null; sync; "
          "sha256sum /mnt/w/f$i >> /tmp/sums; rm -f /mnt/w/f$((i-16)); echo $i > /tmp/wi; "
          "done; rm -f /tmp/wstop; echo $i > /tmp/wdone")
# reader: read.bin's sha256, then the page cache dropped: the next read
# comes from the disk
READER = ("while [ ! -e /tmp/rstop ]; do sha256sum /mnt/read.bin >> /tmp/reads; "
          "echo 1 > /proc/sys/vm/drop_caches; done; rm -f /tmp/rstop; echo x > /tmp/rdone")
# the mirror case's region: 16 MiB of m.bin rewritten in place from
# static.bin at offset (i % 64) MiB, fsync'ed; /tmp/mi the last one finished
REGION = ("i=$(cat /tmp/mi 2>/dev/null || echo 0); "
          "while [ ! -e /tmp/mstop ]; do i=$((i+1)); "
          f"dd if=/mnt/static.bin of=/mnt/m.bin bs=1M skip=$((i % 64)) count={REGION_MIB} "
          "conv=notrunc,fsync 2>/dev/null; echo $i > /tmp/mi; "
          "done; rm -f /tmp/mstop; echo $i > /tmp/mdone")
SLICES = (0, 37, 101, 190)  # static.bin's MiB checked in the guest


def need_e2fsprogs():
    missing = [t for t in ("mkfs.ext4", "e2fsck", "debugfs") if not shutil.which(t)]
    if missing:
        raise Skip(f"needs e2fsprogs ({', '.join(missing)} missing: scripts/install-deps.sh)")


class Linux:
    """The Debian guest the Linux cases share: its VM (the current source),
    its image, and the host's sha256 of its files."""

    def __init__(self, ctx):
        need_e2fsprogs()
        self.ctx = ctx
        self.image, self.initrd = h.guest_image()
        self.dir = os.path.join(ctx.tmp, "linux")
        os.makedirs(self.dir, exist_ok=True)
        self.n = 0
        tree = os.path.join(self.dir, "tree")
        os.makedirs(tree, exist_ok=True)
        r = random.Random(1414)
        self.slices = {}
        with open(os.path.join(tree, "static.bin"), "wb") as f:
            d = hashlib.sha256()
            for k in range(max(STATIC_MIB, max(SLICES) + 1, 64 + REGION_MIB)):
                chunk = r.randbytes(MiB)
                d.update(chunk)
                f.write(chunk)
                self.slices[k] = hashlib.sha256(chunk).hexdigest()
            self.static_sha = d.hexdigest()
        self.static_mib = k + 1
        read = r.randbytes(READ_MIB * MiB)
        self.read_sha = hashlib.sha256(read).hexdigest()
        with open(os.path.join(tree, "read.bin"), "wb") as f:
            f.write(read)
        made = os.path.join(self.dir, "made.raw")
        sparse(made, LINUX_DISK)
        h.sh("mkfs.ext4", "-F", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", "-d", tree,
             made)
        shutil.rmtree(tree)
        # mke2fs zeroes its tables with fallocate: unwritten extents, which
        # the `fallocated` case is about; start from a plain sparse copy
        self.img = self.new_image()
        os.unlink(self.img)
        h.sh("cp", "--sparse=always", made, self.img)
        os.unlink(made)
        self.vm = MigVM(ctx, "linux", self.args(self.img), console=True)
        self.vm.img = self.img
        try:
            con = self.vm.con
            h.wait_shell(con, ctx.boot_timeout)
            h.run(con, h.MODULES)
            h.run(con, "mkdir -p /mnt /tmp && mount -t ext4 /dev/vda /mnt")
            h.run(con, f"echo '{WRITER}' > /tmp/w.sh && echo '{READER}' > /tmp/r.sh && "
                       f"echo '{REGION}' > /tmp/m.sh")
            self.start_loops()
        except BaseException:
            self.vm.kill()
            raise

    def new_image(self):
        self.n += 1
        return sparse(os.path.join(self.dir, f"disk{self.n}.raw"), LINUX_DISK)

    def args(self, img):
        return h.linux_argv(self.ctx.emu.bin, self.image, self.initrd, mem="256M",
                            extra=drive_args([img]))[1:]

    def alive(self):
        try:
            return self.vm.proc.poll() is None and self.vm.status() == "running"
        except Exception:  # noqa: BLE001 (a dead QMP socket)
            return False

    def close(self):
        self.vm.kill()

    # -- the guest's loops

    def run(self, cmd, timeout=120):
        return h.run(self.vm.con, cmd, timeout=timeout)

    def start_loops(self, region=False, reader=True):
        self.run("rm -f /tmp/wdone /tmp/wstop; (sh /tmp/w.sh >/dev/null 2>&1 &)")
        if reader:
            self.run("rm -f /tmp/rdone /tmp/rstop; (sh /tmp/r.sh >/dev/null 2>&1 &)")
        if region:
            self.run("rm -f /tmp/mdone /tmp/mstop; (sh /tmp/m.sh >/dev/null 2>&1 &)")

    def stop_loops(self, region=False, reader=True):
        """Stop the loops at a boundary (stop files; each says when it is done)."""
        flags = "/tmp/wdone" + (" /tmp/rdone" if reader else "") + (" /tmp/mdone" if region else "")
        stops = "/tmp/wstop" + (" /tmp/rstop" if reader else "") + (" /tmp/mstop" if region else "")
        out = self.run(f"touch {stops}; n=0; while [ $n -lt 90 ]; do ok=1; for f in {flags}; do "
                       "[ -e $f ] || ok=0; done; [ $ok = 1 ] && break; sleep 1; n=$((n+1)); "
                       f"done; ls {flags} | wc -l", timeout=150)
        want = len(flags.split())
        check(out.strip().endswith(str(want)),
              f"the guest's loops did not stop within 90 s ({out.strip()!r})", self.vm.con)

    def progress(self, name="wi"):
        out = self.run(f"cat /tmp/{name} 2>/dev/null || echo 0")
        m = re.search(r"(\d+)\s*$", out)
        return int(m.group(1)) if m else 0

    def goes_on(self, name="wi", more=2, timeout=60.0):
        """The loop advances `more` rounds; returns them per second."""
        t0, n0 = time.monotonic(), self.progress(name)
        while True:
            n = self.progress(name)
            if n >= n0 + more:
                return (n - n0) / (time.monotonic() - t0)
            check(time.monotonic() - t0 < timeout,
                  f"the guest's loop {name} stands at {n} after {timeout}s (was {n0})",
                  self.vm.con)
            time.sleep(0.5)

    def rate(self, name, seconds):
        """Rounds of a loop per second over about `seconds`."""
        t0, n0 = time.monotonic(), self.progress(name)
        time.sleep(seconds)
        t1, n1 = time.monotonic(), self.progress(name)
        return (n1 - n0) / (t1 - t0)

    def intact(self, region=False, reader=True):
        """Stop the loops, check what they wrote and read from the disk
        itself (drop_caches) and four slices of static.bin; start them
        again (the reader only if it ran).  Returns a note."""
        self.stop_loops(region, reader)
        self.run("sync; echo 3 > /proc/sys/vm/drop_caches")
        out = self.run('cd /mnt/w && for f in f*; do grep " /mnt/w/$f\\$" /tmp/sums | tail -1; '
                       'done > /tmp/chk; cd /; echo files $(ls /mnt/w | wc -l) '
                       'sums $(wc -l < /tmp/chk); sha256sum -c /tmp/chk > /tmp/chk.out 2>&1; '
                       'echo check $?; grep -v OK /tmp/chk.out | head -3', timeout=300)
        m = re.search(r"files (\d+) sums (\d+)", out)
        check(m and m.group(1) == m.group(2) and int(m.group(1)) > 0 and "check 0" in out,
              f"the writer's files: {out.strip()[-400:]!r}", self.vm.con)
        files = int(m.group(1))
        out = self.run("sort /tmp/reads | uniq -c")
        seen = re.findall(r"(\d+)\s+([0-9a-f]{64})\s+/mnt/read.bin", out)
        # (a reader stopped before its first round read nothing)
        check((len(seen) == 1 and seen[0][1] == self.read_sha) or (not seen and not reader),
              f"read.bin read as {seen} (want only {self.read_sha[:16]})", self.vm.con)
        reads = int(seen[0][0]) if seen else 0
        for k in SLICES:
            out = self.run(f"dd if=/mnt/static.bin bs=1M skip={k} count=1 2>/dev/null | sha256sum")
            check(self.slices[k] in out, f"static.bin MiB {k}: {out.strip()!r}", self.vm.con)
        if region:
            self.region_ok()
        self.start_loops(region, reader)
        return f"{files} files with their sums, {reads} reads of read.bin right"

    def stop_region(self):
        out = self.run("touch /tmp/mstop; n=0; while [ ! -e /tmp/mdone ] && [ $n -lt 90 ]; do "
                       "sleep 1; n=$((n+1)); done; ls /tmp/mdone", timeout=150)
        check("/tmp/mdone" in out, "the region loop did not stop", self.vm.con)

    def region_ok(self):
        """m.bin holds what the region loop's last round wrote."""
        i = self.progress("mi")
        k = i % 64
        out = self.run(f"dd if=/mnt/static.bin bs=1M skip={k} count={REGION_MIB} 2>/dev/null "
                       f"| sha256sum; dd if=/mnt/m.bin bs=1M count={REGION_MIB} 2>/dev/null "
                       "| sha256sum", timeout=300)
        sums = re.findall(r"^([0-9a-f]{64})", out, re.M)
        check(len(sums) == 2 and sums[0] == sums[1],
              f"m.bin after round {i} (static.bin from MiB {k}): {sums}", self.vm.con)

    # -- migrations

    def dest(self, vms, name, console=True, paused=True, kind="unix"):
        """A destination with a fresh empty image (dst.img)."""
        img = self.new_image()
        dst, uri = mt.start_dest(self.ctx, vms, name, self.args(img), kind, paused=paused,
                                 console=console)
        dst.img = img
        return dst, uri

    def compare(self, dst):
        """After a completed migration to a paused destination: the same
        image on both sides (the source is postmigrate)."""
        a, b = Facts(self.vm.img), Facts(dst.img)
        return a, b, same_image(a, b, "the destination's image vs the source's at the "
                                      "switchover", tolerance=0.01)

    def handover(self, dst):
        """The completed migration's destination becomes the source."""
        old = self.vm
        old.kill()
        os.unlink(old.img)
        dst.cmd("cont")
        dst.wait_status(("running",), 10)
        self.vm = dst

    def hop(self, vms, name, spelling, region=False):
        """A migration at full speed to a fresh paused destination that
        completes; the same image on both sides; cont; the loops go on."""
        dst, uri = self.dest(vms, name)
        mt.set_params(self.vm, max_bandwidth=FAST)
        info = blk_ok(self.ctx, self.vm, dst, uri, [LINUX_DISK], spelling,
                      dst_state=("paused", "prelaunch"))
        a, b, note = self.compare(dst)
        vms.remove(dst)
        self.handover(dst)
        self.goes_on()
        if region:
            self.goes_on("mi")
        return info, a, b, note

    def discard(self, dst, vms):
        dst.kill()
        if dst in vms:
            vms.remove(dst)
        if os.path.exists(dst.img):
            os.unlink(dst.img)


def linux_case(fn):
    """Run fn(linux, vms) on the shared Linux guest (booted when there is
    none or it is not running); a failure ends it; every destination the
    case left is killed."""
    def case(ctx):
        godwit_only(ctx)
        lx = getattr(ctx, "linux", None)
        if lx is None or not lx.alive():
            if lx is not None:
                lx.close()
            ctx.linux = None
            ctx.linux = Linux(ctx)
            lx = ctx.linux
        vms = []
        try:
            return fn(lx, vms)
        except BaseException:
            lx.close()
            ctx.linux = None
            raise
        finally:
            for v in vms:
                lx.discard(v, [])
    return case


def fault_in_bulk(lx, vms, name, act, want):
    """A migration at BULK_SLOW; act(dst) once 8 MiB of disk went; rolled
    back, never ran, the guest intact; then one that completes."""
    src = lx.vm
    dst, uri = lx.dest(vms, name, console=False, paused=False)
    mt.set_params(src, max_bandwidth=BULK_SLOW)
    box = {}

    def when(info):
        d = info.get("disk") or {}
        if info.get("status") == "active" and d.get("transferred", 0) >= 8 * MiB and not box:
            box.update(d)
            return act(dst)
        return False
    info = blk_migrate(src, uri, "cap", cancel_when=when)
    check(box, f"never saw `active` with 8 MiB of disk sent: {info['_seen']}")
    check(box["remaining"] > STATIC_MIB // 2 * MiB,
          f"the bulk was nearly done when it was cut: {box}")
    rolled_back(src, info, want, lx.goes_on)
    why = mt.dest_never_ran(dst, killed=want == "failed")
    desc = (info.get("error-desc") or why or "")[:70]
    lx.discard(dst, vms)
    note = lx.intact()
    info, _, _, same = lx.hop(vms, name + "-good", "blk")
    return (f"{want} at disk {box['transferred'] >> 20} MiB sent, {box['remaining'] >> 20} MiB "
            f"to go ({desc}); source intact: {note}; then completed in {info['total-time']} ms "
            f"({same})")


@linux_case
def case_cancel_bulk(lx, vms):
    return fault_in_bulk(lx, vms, "cancel-bulk", lambda dst: True, "cancelled")


@linux_case
def case_kill_dst_bulk(lx, vms):
    def kill(dst):
        dst.proc.kill()
        return False
    return fault_in_bulk(lx, vms, "kill-dst-bulk", kill, "failed")


@linux_case
def case_mirror(lx, vms):
    # without the reader: its drop_caches and re-reads dirty RAM faster than
    # MIRROR_BW, and the RAM would not converge (the disk is what this is about)
    lx.stop_loops()
    lx.start_loops(region=False, reader=False)
    lx.run("rm -f /tmp/mi /tmp/mdone /tmp/mstop; (sh /tmp/m.sh >/dev/null 2>&1 &)")
    lx.goes_on("mi")
    before = lx.rate("mi", 4) * REGION_MIB
    check(before * MiB > 1.5 * MIRROR_BW,
          f"the region loop writes {before:.1f} MiB/s: not faster than max-bandwidth "
          f"{MIRROR_BW >> 20} MiB/s (STORAGE_MIRROR_MIBS)")
    notes = [f"region loop {before:.1f} MiB/s before"]
    for what in ("cancel", "kill-dst", "complete"):
        src = lx.vm
        dst, uri = lx.dest(vms, "mirror-" + what, console=what == "complete",
                           paused=what == "complete")
        # held (x-godwit-hold-switchover) until the loop's rate was measured
        mt.set_params(src, max_bandwidth=FAST, x_godwit_hold_switchover=True)
        box = {}

        def when(info):
            d = info.get("disk") or {}
            if "slow" not in box and d.get("remaining", LINUX_DISK) < 64 * MiB:
                box["slow"] = time.monotonic()  # the bulk is over
                mt.set_params(src, max_bandwidth=MIRROR_BW)
            if "slow" in box and "mirror" not in box and info.get("x-godwit-mirror"):
                box["mirror"] = time.monotonic() - box["slow"]
                if what == "cancel":  # once is enough: held, it stays mirroring
                    box["rate"] = lx.rate("mi", 6) * REGION_MIB
                box["still"] = src.cmd("query-migrate").get("status")
                box["t"] = time.monotonic()
                if what == "cancel":
                    return True
                if what == "kill-dst":
                    dst.proc.kill()
                else:
                    mt.set_params(src, x_godwit_hold_switchover=False)
            return False
        info = blk_migrate(src, uri, "blk" if what == "cancel" else "cap", cancel_when=when,
                           timeout=180)
        mt.set_params(src, x_godwit_hold_switchover=False)
        check("mirror" in box, f"{what}: x-godwit-mirror never turned true (statuses "
                               f"{info['_seen']}, {info.get('status')}: "
                               f"{info.get('error-desc', '')}; disk {info.get('disk')})")
        check(box["still"] in ("active", "x-godwit-held-converged"),
              f"{what}: {box['still']} while mirroring and held")
        if what == "cancel":
            rate = box["rate"]
            check(rate < before,
                  f"{what}: the region loop wrote {rate:.1f} MiB/s while mirroring at "
                  f"{MIRROR_BW >> 20} MiB/s, {before:.1f} MiB/s before")
            notes.append(f"while mirroring (held) {rate:.1f} MiB/s at max-bandwidth "
                         f"{MIRROR_BW >> 20} MiB/s")
        if what != "complete":
            rolled_back(src, info, "cancelled" if what == "cancel" else "failed",
                        lambda: lx.goes_on("mi"))
            mt.dest_never_ran(dst, killed=what == "kill-dst")
            lx.discard(dst, vms)
            after = lx.rate("mi", 4) * REGION_MIB
            check(what != "cancel" or after > box["rate"],
                  f"after the cancel the region loop writes {after:.1f} MiB/s, as slow as while "
                  f"mirroring ({box.get('rate', 0):.1f} MiB/s): the writes are still held back")
            lx.intact(region=True, reader=False)
            notes.append(f"{what}: mirroring {box['mirror']:.1f}s after the bulk, rolled back, "
                         f"loop {after:.1f} MiB/s after, intact")
            continue
        check(info.get("status") == "completed",
              f"mirroring, the migration ended {info.get('status')}: "
              f"{info.get('error-desc', info)}")
        converged = time.monotonic() - box["t"]
        src.wait_status(("postmigrate",), 3)
        dst.wait_status(("paused", "prelaunch"), 15)
        _, _, same = lx.compare(dst)
        vms.remove(dst)
        lx.handover(dst)
        lx.goes_on("mi")
        note = lx.intact(region=True, reader=False)
        lx.stop_region()
        lx.stop_loops(reader=False)
        lx.start_loops()
        notes.append(f"complete: mirroring {box['mirror']:.1f}s after the bulk, "
                     f"released: completed {converged:.1f}s later "
                     f"(total {info['total-time']} ms, downtime {info['downtime']} ms), "
                     f"{same}; {note}")
    return "; ".join(notes)


@linux_case
def case_linux_dd(lx, vms):
    info, a, b, same = lx.hop(vms, "dd", "cap")
    sent = info["disk"]["transferred"]
    check(sent <= a.alloc + 16 * MiB,
          f"disk.transferred {sent} bytes for {a.alloc} allocated at the switchover")
    note = lx.intact()
    lx.stop_loops()
    lx.run("umount /mnt && sync")
    h.poweroff(lx.vm.con)
    img = lx.vm.img
    lx.close()
    r = subprocess.run(["e2fsck", "-fn", img], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    check(r.returncode == 0, f"e2fsck -fn on the destination's image: status {r.returncode}: "
                             f"{r.stdout[-600:]}")
    for name, want in (("static.bin", lx.static_sha), ("read.bin", lx.read_sha)):
        out = os.path.join(lx.dir, "dump-" + name)
        h.sh("debugfs", "-R", f"dump /{name} {out}", img)
        got = sha256_file(out)
        os.unlink(out)
        check(got == want, f"{name} in the destination's image: sha256 {got[:16]}, want "
                           f"{want[:16]}")
    return (f"{info['total-time']} ms, downtime {info['downtime']} ms, disk {sent >> 20} MiB "
            f"sent for {a.alloc >> 20} MiB allocated; images: {same}; {note}; e2fsck clean, "
            f"static.bin ({lx.static_mib} MiB) and read.bin intact")


# ---- main -------------------------------------------------------------------------------


CASES = [("baremetal", case_baremetal),
         ("chain", case_chain),
         ("fallocated", case_fallocated),
         ("hostile", case_hostile),
         ("cancel-bulk", case_cancel_bulk),
         ("kill-dst-bulk", case_kill_dst_bulk),
         ("mirror", case_mirror),
         ("linux-dd", case_linux_dd)]


def main():
    return mig.main(__doc__, CASES, "storage",
                    {"cases": "STORAGE_TEST_CASES", "loops": "STORAGE_LOOPS", "vm": "STORAGE_VM"},
                    "1", "unused", lambda loops: f"static.bin {STATIC_MIB} MiB, mirror at "
                                                 f"{MIRROR_BW >> 20} MiB/s")


if __name__ == "__main__":
    h.main(main)
