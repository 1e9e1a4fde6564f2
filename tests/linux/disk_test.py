#!/usr/bin/env python3
"""virtio-blk and virtio-rng under Debian's riscv64 Linux on godwit-vm.

Each case boots the guest (guest/console.py on a pty) with disks made on
the host in a temporary directory:

  fs-persist   a sparse 64 MiB image: the guest makes an ext2 file system
               (busybox mke2fs), writes files, syncs; they read back with
               the same checksums after a guest reboot and after a fresh
               godwit-vm; e2fsck on the host finds the file system clean;
               rm + fstrim in the guest punches holes in the image (its
               allocated size drops) and the image stays sparse throughout
  host-image   an ext4 image built on the host with `mke2fs -d` (files,
               a directory tree, a symlink) mounts in the guest and every
               file has the host's sha256
  readonly     readonly=on: /sys/block/vda/ro is 1, raw writes and
               read-write mounts fail, a read-only mount works, the image
               is unchanged
  hwrng        -device virtio-rng-device: /dev/hwrng is virtio_rng, two
               4 KiB reads are not all zero and differ
  disk-order   two disks: the first -device is /dev/vda (serial checked),
               as on QEMU 7.2 (same command line, same answer), which puts
               it in the last virtio-mmio slot (0x10008000)

Prints `PASS name` / `FAIL name` / `SKIP name: reason` and a last line
`N passed, N failed, N skipped`; exits 1 if anything failed.
Environment: BUILD (build/release), GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD,
DISK_TEST_CASES (comma-separated subset), DISK_TEST_TIMEOUT (boot, seconds).
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "guest"))

from console import Console  # noqa: E402

CACHE = os.path.expanduser("~/.cache/godwit/guest")
MARKER = r"godwit-guest: init started"
MODULES = "modprobe ext4; modprobe crc32c_generic"


class Skip(Exception):
    pass


def check(cond, what, con=None):
    if not cond:
        raise AssertionError(what + ("\nlast output:\n" + con.tail() if con else ""))


class Ctx:
    def __init__(self, vm, image, initrd, logdir, tmp, boot_timeout):
        self.vm, self.image, self.initrd = vm, image, initrd
        self.logdir, self.tmp, self.boot_timeout = logdir, tmp, boot_timeout

    def log(self, name):
        return os.path.join(self.logdir, f"disk-{name}.log")

    def argv(self, extra, vm=None):
        return [vm or self.vm, "-M", "virt", "-m", "256M", "-smp", "1", "-nographic",
                "-kernel", self.image, "-initrd", self.initrd, "-append", "console=ttyS0",
                *extra]

    def boot(self, name, extra, vm=None):
        con = Console(self.argv(extra, vm), log=self.log(name), timeout=120)
        con.expect(MARKER, self.boot_timeout)
        con.expect(Console.PROMPT, 120)
        return con


def drive(path, ident, *opts):
    spec = ",".join([f"file={path}", "format=raw", "if=none", f"id={ident}", *opts])
    return ["-drive", spec]


def run(con, cmd, timeout=120, ok=True):
    out = con.run(cmd, timeout=timeout)
    if ok:
        check(con.status == 0, f"`{cmd}` failed ({con.status}): {out.strip()[-300:]}", con)
    return out


def poweroff(con):
    con.sendline("poweroff")
    status = con.wait(60)
    check(status == 0, f"poweroff: status {status}", con)


def allocated(path):
    return os.stat(path).st_blocks * 512


def sums(con, paths):
    out = run(con, "sha256sum " + " ".join(paths))
    return {p: h for h, p in re.findall(r"^([0-9a-f]{64})\s+(\S+)", out, re.M)}


def case_fs_persist(ctx):
    img = os.path.join(ctx.tmp, "persist.img")
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    args = drive(img, "d0") + ["-device", "virtio-blk-device,drive=d0,serial=persist"]
    files = ["/mnt/small.txt", "/mnt/dir/big.bin", "/mnt/dir/zeros.bin"]
    con = ctx.boot("fs-persist", args)
    try:
        check(run(con, "cat /sys/block/vda/serial").strip() == "persist", "serial", con)
        run(con, MODULES)
        run(con, "mke2fs -q /dev/vda")
        run(con, "mkdir -p /mnt && mount -t ext2 /dev/vda /mnt")
        run(con, "mkdir /mnt/dir && echo 'hello from the guest' > /mnt/small.txt")
        run(con, "dd if=/dev/urandom of=/mnt/dir/big.bin bs=64k count=32 2>/dev/null")
        run(con, "dd if=/dev/zero of=/mnt/dir/zeros.bin bs=64k count=64 2>/dev/null")
        want = sums(con, files)
        check(len(want) == 3, f"checksums in the guest: {want}", con)
        run(con, "sync")
        check(allocated(img) < 16 << 20, f"image allocated {allocated(img)} bytes: not sparse",
              con)
        con.sendline("reboot")
        con.expect(r"reboot: Restarting system", 60)
        con.expect(MARKER, ctx.boot_timeout)
        con.expect(Console.PROMPT, 120)
        run(con, MODULES)
        run(con, "mkdir -p /mnt && mount -t ext2 /dev/vda /mnt")
        check(sums(con, files) == want, "files after a guest reboot", con)
        poweroff(con)
    finally:
        con.close()
    res = subprocess.run(["e2fsck", "-fn", img], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    check(res.returncode == 0, "e2fsck on the host: " + res.stdout[-500:])
    con = ctx.boot("fs-persist-2", args)
    try:
        run(con, MODULES)
        run(con, "mkdir -p /mnt && mount -t ext2 /dev/vda /mnt")
        check(sums(con, files) == want, "files after a fresh godwit-vm", con)
        before = allocated(img)
        run(con, "rm -r /mnt/dir && sync && fstrim -v /mnt")
        run(con, "umount /mnt && sync")
        after = allocated(img)
        check(after < before - (1 << 20),
              f"fstrim punched holes: allocated {before} -> {after} bytes", con)
        poweroff(con)
    finally:
        con.close()


def host_tree(root):
    os.makedirs(os.path.join(root, "etc", "deep", "er"))
    with open(os.path.join(root, "hello.txt"), "w") as f:
        f.write("made on the host with mke2fs -d\n")
    with open(os.path.join(root, "etc", "deep", "er", "random.bin"), "wb") as f:
        f.write(os.urandom(300 * 1024 + 123))
    with open(os.path.join(root, "etc", "zeros.bin"), "wb") as f:
        f.write(bytes(128 * 1024))
    os.symlink("deep/er/random.bin", os.path.join(root, "etc", "link"))
    out = {}
    for rel in ("hello.txt", "etc/deep/er/random.bin", "etc/zeros.bin", "etc/link"):
        with open(os.path.join(root, rel), "rb") as f:
            out["/mnt/" + rel] = hashlib.sha256(f.read()).hexdigest()
    return out


def make_host_image(ctx, name):
    if not shutil.which("mke2fs") and not os.path.exists("/usr/sbin/mke2fs"):
        raise Skip("mke2fs not installed (scripts/install-deps.sh: e2fsprogs)")
    root = os.path.join(ctx.tmp, name + ".d")
    want = host_tree(root)
    img = os.path.join(ctx.tmp, name + ".img")
    mke2fs = shutil.which("mke2fs") or "/usr/sbin/mke2fs"
    res = subprocess.run([mke2fs, "-q", "-F", "-t", "ext4", "-d", root, img, "32M"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    check(res.returncode == 0, "mke2fs -d: " + res.stdout)
    return img, want


def case_host_image(ctx):
    img, want = make_host_image(ctx, "host")
    con = ctx.boot("host-image", drive(img, "d0") + ["-device", "virtio-blk-device,drive=d0"])
    try:
        run(con, MODULES)
        run(con, "mkdir -p /mnt && mount -t ext4 /dev/vda /mnt")
        got = sums(con, list(want))
        check(got == want, f"checksums differ: guest {got} host {want}", con)
        out = run(con, "readlink /mnt/etc/link")
        check(out.strip() == "deep/er/random.bin", f"symlink: {out!r}", con)
        run(con, "umount /mnt")
        poweroff(con)
    finally:
        con.close()


def case_readonly(ctx):
    img, want = make_host_image(ctx, "ro")
    with open(img, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    con = ctx.boot("readonly", drive(img, "d0", "readonly=on") +
                   ["-device", "virtio-blk-device,drive=d0"])
    try:
        check(run(con, "cat /sys/block/vda/ro").strip() == "1", "/sys/block/vda/ro", con)
        run(con, "dd if=/dev/zero of=/dev/vda bs=4k count=1 conv=fsync", ok=False)
        check(con.status != 0, "a raw write to a read-only disk succeeded", con)
        run(con, MODULES)
        run(con, "mkdir -p /mnt; mount -t ext4 -o rw /dev/vda /mnt", ok=False)
        mounts = run(con, "grep vda /proc/mounts || true")
        check(con.status != 0 or " ro," in mounts or " ro " in mounts,
              f"read-write mount of a read-only disk: {mounts!r}", con)
        run(con, "umount /mnt 2>/dev/null; mount -t ext4 -o ro /dev/vda /mnt")
        check(sums(con, list(want)) == want, "files on the read-only disk", con)
        run(con, "touch /mnt/new", ok=False)
        check(con.status != 0, "a file was created on a read-only mount", con)
        poweroff(con)
    finally:
        con.close()
    with open(img, "rb") as f:
        check(hashlib.sha256(f.read()).hexdigest() == digest, "the read-only image changed")


def case_hwrng(ctx):
    con = ctx.boot("hwrng", ["-device", "virtio-rng-device"])
    try:
        cur = run(con, "cat /sys/class/misc/hw_random/rng_current").strip()
        check(cur.startswith("virtio_rng"), f"rng_current is {cur!r}", con)
        out = run(con, "for i in 1 2; do dd if=/dev/hwrng bs=4096 count=1 2>/dev/null | "
                       "sha256sum; done; dd if=/dev/zero bs=4096 count=1 2>/dev/null | sha256sum")
        h = re.findall(r"^([0-9a-f]{64})", out, re.M)
        check(len(h) == 3, f"sha256 lines: {out!r}", con)
        check(h[0] != h[2] and h[1] != h[2], "a 4 KiB read from /dev/hwrng is all zeros", con)
        check(h[0] != h[1], "two reads from /dev/hwrng are equal", con)
        n = run(con, "dd if=/dev/hwrng bs=4096 count=1 2>/dev/null | wc -c").strip()
        check(n == "4096", f"read {n} bytes, want 4096", con)
        poweroff(con)
    finally:
        con.close()


def disk_order(ctx, vm):
    imgs = []
    for name in ("first", "second"):
        p = os.path.join(ctx.tmp, f"order-{name}.img")
        with open(p, "wb") as f:
            f.truncate((8 if name == "first" else 16) << 20)
        imgs.append(p)
    args = (drive(imgs[0], "a") + drive(imgs[1], "b") +
            ["-device", "virtio-blk-device,drive=a,serial=first",
             "-device", "virtio-blk-device,drive=b,serial=second"])
    if vm != ctx.vm:
        args = ["-bios", "default"] + args
    con = ctx.boot("disk-order-" + os.path.basename(vm), args, vm)
    try:
        out = run(con, "for d in vda vdb; do echo $d $(cat /sys/block/$d/serial) "
                       "$(cat /sys/block/$d/size) $(readlink /sys/block/$d | "
                       "grep -o '1000[0-9]000.virtio_mmio'); done")
        poweroff(con)
    finally:
        con.close()
    return [line.split() for line in out.strip().splitlines()]


def case_disk_order(ctx):
    ours = disk_order(ctx, ctx.vm)
    check(ours == [["vda", "first", "16384", "10008000.virtio_mmio"],
                   ["vdb", "second", "32768", "10007000.virtio_mmio"]], f"godwit-vm: {ours}")
    qemu = shutil.which("qemu-system-riscv64")
    if qemu:
        theirs = disk_order(ctx, qemu)
        check(theirs == ours, f"QEMU sees {theirs}, godwit-vm {ours}")


def guest_image():
    image = os.environ.get("GODWIT_GUEST_IMAGE", os.path.join(CACHE, "Image"))
    initrd = os.environ.get("GODWIT_GUEST_INITRD", os.path.join(CACHE, "initrd.img"))
    if os.path.exists(image) and os.path.exists(initrd):
        return image, initrd
    r = subprocess.run(["make", "-C", ROOT, "guest-image"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0 or not (os.path.exists(image) and os.path.exists(initrd)):
        raise Skip("no guest image (make guest-image): " + r.stdout.strip()[-300:])
    return image, initrd


def main():
    build = os.environ.get("BUILD", "build/release")
    vm = os.path.join(ROOT, build, "godwit-vm")
    cases = [("fs-persist", case_fs_persist), ("host-image", case_host_image),
             ("readonly", case_readonly), ("hwrng", case_hwrng),
             ("disk-order", case_disk_order)]
    only = os.environ.get("DISK_TEST_CASES")
    if only:
        cases = [c for c in cases if c[0] in only.split(",")]
    passed = failed = skipped = 0
    why = None
    if not os.access(vm, os.X_OK):
        why = f"{vm} is not built (make)"
    else:
        try:
            image, initrd = guest_image()
        except Skip as e:
            why = str(e)
    if why:
        for name, _ in cases:
            print(f"SKIP {name}: {why}")
        print(f"0 passed, 0 failed, {len(cases)} skipped")
        return 0
    logdir = os.path.join(ROOT, build, "tests", "linux")
    os.makedirs(logdir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="godwit-disk-") as tmp:
        ctx = Ctx(vm, image, initrd, logdir, tmp,
                  float(os.environ.get("DISK_TEST_TIMEOUT", "240")))
        for name, fn in cases:
            t0 = time.monotonic()
            try:
                fn(ctx)
                passed += 1
                print(f"PASS {name} ({time.monotonic() - t0:.1f}s)", flush=True)
            except Skip as e:
                skipped += 1
                print(f"SKIP {name}: {e}", flush=True)
            except Exception as e:  # a failed check, a console timeout, ...
                failed += 1
                print(f"FAIL {name} ({time.monotonic() - t0:.1f}s): {e}", flush=True)
                print(f"     log: {ctx.log(name)}", flush=True)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
