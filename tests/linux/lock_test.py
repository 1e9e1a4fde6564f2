#!/usr/bin/env python3
"""Disk image locking (docs/virtio.md "Image locking"): godwit-vm locks its
images as QEMU 7.2 does, so a second VM cannot open a running VM's disk,
and live migration on a shared disk file still works.

Cases ("refused" means: the process exits 1 before the guest ran, and its
stderr says why, naming the holder as `process PID (NAME)`):

  running-vm     a Linux guest runs on a writable disk: a second godwit-vm
                 on it is refused ('Failed to get "write" lock'), one with
                 readonly=on too ('Failed to get shared "write" lock'), one
                 with file.locking=off starts and holds nothing, QEMU 7.2 is
                 refused in its own words; the guest makes and uses a file
                 system on the disk; after its poweroff a new VM takes it.
  readers        two godwit-vm with readonly=on (and QEMU readonly=on as a
                 third) share an image, holding QEMU's reader bytes (100,
                 201); a writer, godwit-vm or QEMU, is refused.
  qemu           QEMU 7.2 holds an image with the bytes godwit-vm holds
                 (100, 101, 201): godwit-vm is refused naming
                 qemu-system-riscv64; the other way round QEMU is refused.
  file-incoming  a VM saved with `migrate file:` (postmigrate) keeps its
                 locks: a restore of that file on the same disk is refused
                 while the saved VM lives, and runs once it is gone.
  rollback       live migrations (OpenSBI running, no kernel) through a proxy
                 that keeps the destination's READY: in that window the
                 destination holds the locks and the source none.  The
                 source is cancelled; the destination, which keeps waiting
                 for a COMMIT, is killed a second later: the source retried
                 and runs with its locks.  Again, with the destination left
                 alive: the source stays paused instead of running without
                 its locks, `cont` is refused naming the destination, and
                 once it is gone `cont` runs the source with its locks.
  migrate        a Linux guest with an ext2 file system on its disk: an
                 -incoming destination on another disk that a third process
                 holds answers ERROR (refused, naming that process), the
                 source resumes holding its locks; then two live migrations
                 over unix: on the same disk file: a waiting destination
                 holds no lock, after the switchover the old source
                 (postmigrate) holds none and the new one QEMU's bytes, a
                 third VM is refused naming it, and the guest writes the
                 disk; files keep their checksums and e2fsck on the host
                 finds the file system clean.

Prints `PASS name` / `FAIL name: why` / `SKIP name: reason` and the last line
`N passed, N failed, N skipped`; exits 1 if anything failed.
Environment: BUILD (build/release), GODWIT_VM, LOCK_TEST_CASES
(comma-separated subset), LOCK_TEST_TIMEOUT (Linux boot, seconds, 240),
GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD.
"""

import os
import re
import shutil
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
from harness import Skip, check  # noqa: E402
from migstream import MSG_LEN, connect_uri, listen_uri, wait_listening  # noqa: E402

QEMU = "qemu-system-riscv64"
WRITER = [100, 101, 201]  # QEMU 7.2's bytes: consistent read + write used, write denied
READER = [100, 201]  # consistent read used, write denied
BLK = ["-device", "virtio-blk-device,drive=d0"]
FINAL = ("completed", "failed", "cancelled")


def make_disk(ctx, name, size=64 << 20):
    path = os.path.join(ctx.tmp, name)
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def drive(path, *opts):
    return ["-drive", ",".join([f"file={path}", "format=raw", "if=none", "id=d0", *opts])]


def bare(ctx, disk, *opts):
    """godwit-vm with the disk, stopped (-S): nothing runs, the locks are held."""
    return [ctx.vm, "-M", "virt", "-m", "64M", "-nographic", "-S", *drive(disk, *opts), *BLK]


def qemu_bare(disk, *opts):
    if not shutil.which(QEMU):
        raise Skip(f"{QEMU} is not installed")
    return [QEMU, "-M", "virt", "-m", "64M", "-display", "none", "-S", "-monitor", "none",
            "-serial", "none", *drive(disk, *opts), *BLK]


def held(pid, path):
    """The bytes process pid holds fcntl locks on in path, read from its
    /proc/PID/fdinfo as image_lock_holder() reads them."""
    ino = os.stat(path).st_ino
    rx = re.compile(r"^lock:\s+\d+:\s+(?:OFDLCK|POSIX)\s+\S+\s+\S+\s+-?\d+\s+[0-9a-f]+:[0-9a-f]+:"
                    r"(\d+)\s+(\d+)\s+(\d+)$", re.M)
    out = set()
    d = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                text = f.read()
        except OSError:
            continue
        for m in rx.finditer(text):
            if int(m.group(1)) == ino:
                out.update(range(int(m.group(2)), int(m.group(3)) + 1))
    return sorted(out)


def seq(ctx):
    ctx.n = getattr(ctx, "n", 0) + 1
    return ctx.n


def started(ctx, name, argv, console=False):
    """A VM that must start: its QMP answers (so it is past opening and
    locking its disks)."""
    n = seq(ctx)
    vm = h.VM(name, argv, out=ctx.log(f"{name}.{n}"),
              err=None if console else ctx.log(f"{name}.{n}.err"),
              qmp=os.path.join(ctx.tmp, f"qmp{n}.sock"), console=console)
    vm.connect(30)
    return vm


def refused(ctx, name, argv, want):
    """A VM that must be refused: exit status 1, nothing printed, stderr
    matching the regular expression want; returns the match."""
    n = seq(ctx)
    with h.VM(name, argv, out=ctx.log(f"{name}.{n}"), err=ctx.log(f"{name}.{n}.err")) as vm:
        status = vm.exit_status(30)
        err = vm.stderr()
        check(status == 1, f"{name}: exit status {status} (want 1); stderr: {err[-300:]!r}")
        check(vm.output() == "", f"{name}: printed {vm.output()[:200]!r}")
    m = re.search(want, err)
    check(m, f"{name}: stderr {err.strip()!r} does not match {want!r}")
    return m


def holder(pid, name="godwit-vm"):
    return rf"process {pid} \({re.escape(name)}\) is using the image"


def write_file(con, name, kib):
    """Write KiB random bytes to /mnt/NAME in the guest, synced; its sha256."""
    h.run(con, f"dd if=/dev/urandom of=/mnt/{name} bs=1k count={kib} 2>/dev/null && sync")
    return re.search(r"^([0-9a-f]{64})\s", h.run(con, f"sha256sum /mnt/{name}"), re.M).group(1)


def migrate(vm, uri, timeout=120.0):
    """QMP migrate; query-migrate's last answer."""
    vm.cmd("migrate-set-parameters", {"max-bandwidth": 1 << 30})
    vm.cmd("migrate", uri=uri)
    deadline = time.monotonic() + timeout
    while True:
        info = vm.cmd("query-migrate")
        if info.get("status") in FINAL:
            return info
        check(time.monotonic() < deadline, f"{vm.name}: migration still {info} after {timeout}s")
        time.sleep(0.01)


class HoldReady:
    """Between a migration source and its destination: forwards the stream
    and the ROUND acknowledgements, keeps the destination's READY (.ready
    is set when it came), and leaves the destination's connection open when
    the source goes, so the destination keeps waiting for a COMMIT."""

    def __init__(self, uri, target):
        self.uri, self.target = uri, target
        self.lsock = listen_uri(uri)
        self.ready = threading.Event()
        self.socks = [self.lsock]
        threading.Thread(target=self._down, daemon=True).start()

    def _down(self):
        src, _ = self.lsock.accept()
        dst = connect_uri(self.target)
        self.socks += [src, dst]
        threading.Thread(target=self._up, args=(src, dst), daemon=True).start()
        buf = b""
        while True:
            try:
                data = dst.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while len(buf) >= MSG_LEN:
                _, typ, _ = struct.unpack_from("<IIQ", buf)
                if typ == 1:  # READY: kept
                    self.ready.set()
                else:
                    try:
                        src.sendall(buf[:MSG_LEN])
                    except OSError:
                        pass
                buf = buf[MSG_LEN:]

    @staticmethod
    def _up(src, dst):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                return  # the source is gone: the destination is not told
            dst.sendall(data)

    def close(self):
        for s in self.socks:
            s.close()


# ---- cases ------------------------------------------------------------------------


def case_running_vm(ctx):
    disk = make_disk(ctx, "running.img")
    with started(ctx, "running-a", ctx.linux_argv(drive(disk) + BLK), console=True) as a:
        h.wait_shell(a.con, ctx.boot_timeout)
        pid = a.proc.pid
        check(held(pid, disk) == WRITER, f"the running VM holds {held(pid, disk)}, want {WRITER}")
        m = refused(ctx, "running-b", bare(ctx, disk),
                    r'godwit-vm: -drive id=d0: Failed to get "write" lock: ' + holder(pid) +
                    rf" \[{re.escape(disk)}\]")
        refused(ctx, "running-ro", bare(ctx, disk, "readonly=on"),
                r'Failed to get shared "write" lock: ' + holder(pid))
        with started(ctx, "running-off", bare(ctx, disk, "file.locking=off")) as off:
            check(held(off.proc.pid, disk) == [], "file.locking=off: holds no lock")
        try:
            refused(ctx, "running-qemu", qemu_bare(disk),
                    r'Failed to get "write" lock\nIs another process using the image')
            qemu = "QEMU refused too"
        except Skip as e:
            qemu = str(e)
        h.run(a.con, h.MODULES)
        h.run(a.con, "mke2fs -q /dev/vda && mkdir -p /mnt && mount -t ext2 /dev/vda /mnt")
        h.run(a.con, "echo locked > /mnt/f && sync && cat /mnt/f && umount /mnt")
        h.poweroff(a.con)
    with started(ctx, "running-after", bare(ctx, disk)) as c:
        check(held(c.proc.pid, disk) == WRITER, "the disk is free once the VM exited")
    return f"{m.group(0)!r}; {qemu}"


def case_readers(ctx):
    disk = make_disk(ctx, "readers.img")
    with started(ctx, "readers-a", bare(ctx, disk, "readonly=on")) as a, \
            started(ctx, "readers-b", bare(ctx, disk, "readonly=on")) as b:
        for vm in (a, b):
            check(held(vm.proc.pid, disk) == READER, f"{vm.name} holds {held(vm.proc.pid, disk)}")
        m = refused(ctx, "readers-w", bare(ctx, disk),
                    r'Failed to get "write" lock: process (\d+) \(godwit-vm\)')
        check(int(m.group(1)) in (a.proc.pid, b.proc.pid), f"names {m.group(1)}, not a reader")
        try:
            argv = qemu_bare(disk, "readonly=on")
        except Skip:
            return "no QEMU: godwit-vm only"
        with started(ctx, "readers-qemu", argv) as q:
            check(held(q.proc.pid, disk) == READER, f"QEMU reader holds {held(q.proc.pid, disk)}")
        refused(ctx, "readers-qemu-w", qemu_bare(disk), r'Failed to get "write" lock')
    return "two godwit readers and a QEMU reader share; writers refused"


def case_qemu(ctx):
    disk = make_disk(ctx, "qemu.img")
    with started(ctx, "qemu-holder", qemu_bare(disk)) as q:
        check(held(q.proc.pid, disk) == WRITER, f"QEMU holds {held(q.proc.pid, disk)}")
        refused(ctx, "qemu-godwit", bare(ctx, disk),
                r'Failed to get "write" lock: ' + holder(q.proc.pid, QEMU))
        refused(ctx, "qemu-godwit-ro", bare(ctx, disk, "readonly=on"),
                r'Failed to get shared "write" lock: ' + holder(q.proc.pid, QEMU))
    with started(ctx, "qemu-g", bare(ctx, disk)):
        m = refused(ctx, "qemu-refused", qemu_bare(disk),
                    r'Failed to get "write" lock\nIs another process using the image \[' +
                    re.escape(disk) + r"\]\?")
        refused(ctx, "qemu-refused-ro", qemu_bare(disk, "readonly=on"),
                r'Failed to get shared "write" lock')
    return f"QEMU says {m.group(0)!r}"


def case_file_incoming(ctx):
    disk = make_disk(ctx, "file.img")
    state = os.path.join(ctx.tmp, "file.state")
    with started(ctx, "file-a", bare(ctx, disk)) as a:
        info = migrate(a, "file:" + state)
        check(info.get("status") == "completed", f"save: {info}")
        check(a.status() == "postmigrate" and held(a.proc.pid, disk) == WRITER,
              "after a save to a file the VM keeps its locks")
        refused(ctx, "file-b", bare(ctx, disk) + ["-incoming", "file:" + state],
                r'Failed to get "write" lock: ' + holder(a.proc.pid))
    with started(ctx, "file-c", bare(ctx, disk) + ["-incoming", "file:" + state]) as c:
        check(c.wait_loaded() == "paused", "the restore is paused (-S)")
        check(held(c.proc.pid, disk) == WRITER, "the restored VM holds the disk")
    return "refused while the saved VM lived, restored after"


def held_ready_cancel(ctx, src, argv, disk, hop, kill_dst_after=None):
    """Migrate src through HoldReady to a fresh destination, check the
    handover window, cancel; with kill_dst_after, the destination is killed
    that many seconds after the cancel.  Returns (the destination, seconds
    from the cancel to the final status)."""
    target = f"unix:{os.path.join(ctx.tmp, f'rb-dst{hop}.sock')}"
    dst = started(ctx, f"rb-dst{hop}", argv + ["-incoming", target])
    wait_listening(dst, target)
    proxy = HoldReady(f"unix:{os.path.join(ctx.tmp, f'rb-proxy{hop}.sock')}", target)
    try:
        src.cmd("migrate-set-parameters", {"max-bandwidth": 1 << 30})
        src.cmd("migrate", uri=proxy.uri)
        check(proxy.ready.wait(60), "no READY from the destination")
        check(held(dst.proc.pid, disk) == WRITER and held(src.proc.pid, disk) == [],
              f"before READY the destination holds {held(dst.proc.pid, disk)}, "
              f"the source {held(src.proc.pid, disk)}")
        src.cmd("migrate_cancel")
        t0 = time.monotonic()
        if kill_dst_after is not None:
            threading.Timer(kill_dst_after, dst.kill).start()
        while (info := src.cmd("query-migrate")).get("status") not in FINAL:
            check(time.monotonic() < t0 + 60, f"still {info}")
            time.sleep(0.01)
        check(info["status"] == "cancelled", f"query-migrate: {info}")
        return dst, time.monotonic() - t0
    finally:
        proxy.close()


def case_rollback(ctx):
    disk = make_disk(ctx, "rollback.img")
    argv = [ctx.vm, "-M", "virt", "-m", "64M", "-nographic", *drive(disk), *BLK]
    with started(ctx, "rb-src", argv) as src:
        src.wait_status(("running",))
        spid = src.proc.pid
        # the destination goes within the source's retry time: it runs again
        dst, quick = held_ready_cancel(ctx, src, argv, disk, 1, kill_dst_after=1.0)
        dst.kill()
        check(src.status() == "running" and held(spid, disk) == WRITER,
              f"the source is {src.status()} holding {held(spid, disk)}")
        # the destination stays: paused, and cont refused until it is gone
        with held_ready_cancel(ctx, src, argv, disk, 2)[0] as dst:
            check(src.status() == "paused", f"the source is {src.status()}, want paused: "
                                            "it cannot take its locks back")
            try:
                src.cmd("cont")
                check(False, "cont ran the source without its locks")
            except h.QMPError as e:
                check(re.search(holder(dst.proc.pid), str(e)), f"cont: {e}")
            check(src.status() == "paused" and held(spid, disk) == [], "still paused")
        src.cmd("cont")
        check(src.status() == "running" and held(spid, disk) == WRITER,
              "cont once the destination is gone: running with the locks")
    check("cannot be taken back" in src.stderr(), f"source stderr: {src.stderr()[-300:]!r}")
    return f"locks back {quick:.1f}s after the cancel (destination killed after 1s)"


def case_migrate(ctx):
    disk = make_disk(ctx, "mig.img")
    other = make_disk(ctx, "other.img")
    args = ctx.linux_argv(drive(disk) + BLK)
    src = started(ctx, "mig-a", args, console=True)
    vms = [src]
    try:
        con = src.con
        h.wait_shell(con, ctx.boot_timeout)
        h.run(con, h.MODULES)
        h.run(con, "mke2fs -q /dev/vda && mkdir -p /mnt && mount -t ext2 /dev/vda /mnt")
        want = {"hop0.bin": write_file(con, "hop0.bin", 512)}

        # a destination that cannot lock its disk: ERROR, the source resumes with its locks
        with started(ctx, "mig-holder", bare(ctx, other, "readonly=on")) as r:
            uri = f"unix:{os.path.join(ctx.tmp, 'mig-bad.sock')}"
            with started(ctx, "mig-bad", ctx.linux_argv(drive(other) + BLK) +
                         ["-incoming", uri]) as bad:
                wait_listening(bad, uri)
                check(held(bad.proc.pid, other) == [], "a waiting destination holds no lock")
                info = migrate(src, uri)
                check(info.get("status") == "failed", f"migration to a refusing destination: "
                                                      f"{info}")
                status = bad.exit_status(30)
                check(status == 1, f"the refusing destination: exit status {status}")
                check(re.search(r'Failed to get "write" lock: ' + holder(r.proc.pid),
                                bad.stderr()), f"its stderr: {bad.stderr()[-300:]!r}")
        src.wait_status(("running",))
        check(held(src.proc.pid, disk) == WRITER, "the source took its locks back")
        want["back.bin"] = write_file(con, "back.bin", 256)

        # two hops on the shared disk file
        for hop in (1, 2):
            uri = f"unix:{os.path.join(ctx.tmp, f'mig{hop}.sock')}"
            dst = started(ctx, f"mig-{hop}", args + ["-incoming", uri], console=True)
            vms.append(dst)
            wait_listening(dst, uri)
            check(held(dst.proc.pid, disk) == [], f"hop {hop}: the destination locks early")
            info = migrate(src, uri)
            check(info.get("status") == "completed", f"hop {hop}: {info}")
            dst.wait_status(("running",))
            src.wait_status(("postmigrate",))
            check(held(src.proc.pid, disk) == [], f"hop {hop}: the old source holds "
                                                  f"{held(src.proc.pid, disk)}")
            check(held(dst.proc.pid, disk) == WRITER, f"hop {hop}: the destination holds "
                                                      f"{held(dst.proc.pid, disk)}")
            refused(ctx, f"mig-third-{hop}", bare(ctx, disk),
                    r'Failed to get "write" lock: ' + holder(dst.proc.pid))
            src.kill()
            src, con = dst, dst.con
            want[f"hop{hop}.bin"] = write_file(con, f"hop{hop}.bin", 512)
        sums = h.run(con, "sha256sum /mnt/*.bin")
        h.run(con, "umount /mnt")
        h.poweroff(con)
    finally:
        for vm in vms:
            vm.kill()
    got = {n: s for s, n in re.findall(r"^([0-9a-f]{64})\s+/mnt/(\S+)$", sums, re.M)}
    check(got == want, f"the files' checksums now: {got}, when written: {want}")
    fsck = subprocess.run(["e2fsck", "-fn", disk], capture_output=True, text=True)
    check(fsck.returncode == 0, f"e2fsck: {fsck.returncode}: {fsck.stdout[-300:]}")
    return "failed handover rolled back; 2 hops, each destination took the locks"


CASES = [("running-vm", case_running_vm), ("readers", case_readers), ("qemu", case_qemu),
         ("file-incoming", case_file_incoming), ("rollback", case_rollback),
         ("migrate", case_migrate)]

if __name__ == "__main__":
    h.main(lambda: h.linux_main("lock", CASES, "LOCK_TEST_CASES", "LOCK_TEST_TIMEOUT",
                                no_image_ok=("readers", "qemu", "file-incoming", "rollback")))
