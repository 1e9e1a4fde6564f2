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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
from harness import MODULES, Skip, check, poweroff, run  # noqa: E402


def boot(ctx, name, extra, vm=None):
    """The guest on a pty Console, at its shell."""
    con = h.Console(ctx.linux_argv(extra, vm=vm), log=ctx.log(name), timeout=120)
    try:
        h.wait_shell(con, ctx.boot_timeout)
    except BaseException:
        con.close()
        raise
    return con


def drive(path, ident, *opts):
    spec = ",".join([f"file={path}", "format=raw", "if=none", f"id={ident}", *opts])
    return ["-drive", spec]


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
    con = boot(ctx, "fs-persist", args)
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
        h.wait_shell(con, ctx.boot_timeout)
        run(con, MODULES)
        run(con, "mkdir -p /mnt && mount -t ext2 /dev/vda /mnt")
        check(sums(con, files) == want, "files after a guest reboot", con)
        poweroff(con)
    finally:
        con.close()
    res = subprocess.run(["e2fsck", "-fn", img], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    check(res.returncode == 0, "e2fsck on the host: " + res.stdout[-500:])
    con = boot(ctx, "fs-persist-2", args)
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
    con = boot(ctx, "host-image", drive(img, "d0") + ["-device", "virtio-blk-device,drive=d0"])
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
    con = boot(ctx, "readonly", drive(img, "d0", "readonly=on") +
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
    con = boot(ctx, "hwrng", ["-device", "virtio-rng-device"])
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
    con = boot(ctx, "disk-order-" + os.path.basename(vm), args, vm)
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


CASES = [("fs-persist", case_fs_persist), ("host-image", case_host_image),
         ("readonly", case_readonly), ("hwrng", case_hwrng), ("disk-order", case_disk_order)]


def main():
    return h.linux_main("disk", CASES, "DISK_TEST_CASES", "DISK_TEST_TIMEOUT")


if __name__ == "__main__":
    h.main(main)
