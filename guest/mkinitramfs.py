#!/usr/bin/env python3
"""Build godwit's guest initramfs: busybox, a few kernel modules, /init.

Called by guest/build.sh after it has unpacked Debian's riscv64 kernel and
busybox-static packages. Python (stdlib only) instead of cpio(1) because it
lets an unprivileged user write root-owned files and the /dev/console device
node the kernel opens before /init runs, and because the archive comes out
byte-for-byte reproducible (sorted entries, fixed mtime, fixed inode numbers).

Module handling: Debian ships modules as .ko.xz without modules.dep (depmod
runs at install time), so the dependency closure is computed here from each
module's .modinfo "depends=" field. Modules are decompressed (busybox insmod
does not need xz support then; the appended signature survives, it covers
the uncompressed file). The image gets a modules.dep for interactive
`modprobe`, and two lists for /init: /etc/godwit/modules.boot (modules loaded
at every boot, dependencies first) and /etc/godwit/modules.alias ("<modalias
glob> <module> <module>...": what to load for a device whose modalias
matches, dependencies first), so a boot loads drivers only for the devices
the machine has.
"""

import argparse
import gzip
import lzma
import os
import stat
import struct
import subprocess
import sys

MTIME = 0  # every entry; the archive depends only on its inputs


# ---- kernel modules -------------------------------------------------------


def modinfo(elf):
    """Return the key=value pairs of an ELF64 little-endian module's .modinfo."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError("not an ELF64 little-endian object")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(i):
        name, _type, _flags, _addr, off, size = struct.unpack_from(
            "<IIQQQQ", elf, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    info = {}
    for i in range(shnum):
        name, off, size = section(i)
        end = elf.index(b"\0", stroff + name)
        if elf[stroff + name:end] != b".modinfo":
            continue
        for item in elf[off:off + size].split(b"\0"):
            if b"=" in item:
                key, value = item.decode("utf-8", "replace").split("=", 1)
                info.setdefault(key, []).append(value)
    return info


def norm(name):
    return name.replace("-", "_")


def module_closure(moddir, wanted):
    """Resolve `wanted` module names in moddir (a /lib/modules/<ver> tree).

    Returns (order, deps, blobs, infos, names): relative .ko paths in load
    order (dependencies first), each one's direct dependencies, decompressed
    bytes and modinfo, and the path of each wanted name (None if built in). Built-in modules are skipped; a name that is
    neither built in nor present is an error.
    """
    index = {}
    for root, _dirs, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
                if f.endswith(ext):
                    rel = os.path.relpath(os.path.join(root, f), moddir)
                    index[norm(f[: -len(ext)])] = rel
    builtin = set()
    path = os.path.join(moddir, "modules.builtin")
    if os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                builtin.add(norm(os.path.basename(line.strip())[: -len(".ko")]))

    order, deps, blobs, infos, state = [], {}, {}, {}, {}

    def load(rel):
        with open(os.path.join(moddir, rel), "rb") as fh:
            data = fh.read()
        if rel.endswith(".xz"):
            data = lzma.decompress(data)
        elif rel.endswith(".gz"):
            data = gzip.decompress(data)
        elif rel.endswith(".zst"):
            data = subprocess.run(["zstd", "-dc"], input=data, check=True,
                                  stdout=subprocess.PIPE).stdout
        return data

    def visit(name, chain):
        name = norm(name)
        if name in builtin and name not in index:
            return None
        if name not in index:
            raise SystemExit("mkinitramfs: module %s (needed by %s) is neither "
                             "built in nor in the package" % (name, " <- ".join(chain) or "request"))
        if state.get(name) == "done":
            return ko_name(index[name])
        if state.get(name) == "busy":
            raise SystemExit("mkinitramfs: module dependency cycle at " + name)
        state[name] = "busy"
        data = load(index[name])
        info = modinfo(data)
        mine = []
        for dep_list in info.get("depends", []):
            for dep in filter(None, dep_list.split(",")):
                rel = visit(dep, chain + [name])
                if rel:
                    mine.append(rel)
        # softdep "pre:" modules are loaded first by modprobe; honour them
        # when the package has them (optional, never an error).
        for sd in info.get("softdep", []):
            words = sd.split()
            pre = words[words.index("pre:") + 1:] if "pre:" in words else []
            for dep in pre:
                if dep.endswith(":"):
                    break
                if norm(dep) in index:
                    rel = visit(dep, chain + [name])
                    if rel:
                        mine.append(rel)
        rel = ko_name(index[name])
        blobs[rel], deps[rel], infos[rel] = data, mine, info
        order.append(rel)
        state[name] = "done"
        return rel

    names = {name: visit(name, []) for name in wanted}
    return order, deps, blobs, infos, names


def load_order(rel, deps, out=None):
    """rel and everything it needs, dependencies first."""
    out = [] if out is None else out
    for dep in deps[rel]:
        load_order(dep, deps, out)
    if rel not in out:
        out.append(rel)
    return out


def ko_name(rel):
    for ext in (".xz", ".zst", ".gz"):
        if rel.endswith(ext):
            return rel[: -len(ext)]
    return rel


# ---- newc cpio ------------------------------------------------------------


class Cpio:
    """An in-memory newc ("070701") archive, as the kernel's initramfs unpacker reads it."""

    def __init__(self):
        self.entries = {}  # path -> (mode, data, rdev major, rdev minor)

    def add(self, path, mode, data=b"", rdev=(0, 0)):
        path = path.strip("/")
        parent = os.path.dirname(path)
        if parent and parent not in self.entries:
            self.add(parent, stat.S_IFDIR | 0o755)
        self.entries[path] = (mode, data, rdev)

    def add_tree(self, src, dest=""):
        """Copy a host directory tree, owned by root; modes are normalised as
        git stores them (0755 if executable, else 0644) so the image does not
        depend on the checkout's umask."""
        for root, dirs, files in os.walk(src):
            dirs.sort()
            rel_root = os.path.relpath(root, src)
            base = dest if rel_root == "." else os.path.join(dest, rel_root)
            for name in dirs + sorted(files):
                host = os.path.join(root, name)
                st = os.lstat(host)
                path = os.path.join(base, name)
                if stat.S_ISLNK(st.st_mode):
                    self.add(path, stat.S_IFLNK | 0o777, os.readlink(host).encode())
                elif stat.S_ISDIR(st.st_mode):
                    self.add(path, stat.S_IFDIR | 0o755)
                elif stat.S_ISREG(st.st_mode):
                    perm = 0o755 if st.st_mode & 0o111 else 0o644
                    with open(host, "rb") as fh:
                        self.add(path, stat.S_IFREG | perm, fh.read())

    def bytes(self):
        out = bytearray()

        def entry(ino, name, mode, data, rdev, nlink):
            name_b = name.encode() + b"\0"
            out.extend(b"070701" + b"".join(b"%08x" % v for v in (
                ino, mode, 0, 0, nlink, MTIME, len(data), 0, 0,
                rdev[0], rdev[1], len(name_b), 0)))
            out.extend(name_b)
            out.extend(b"\0" * (-len(out) % 4))
            out.extend(data)
            out.extend(b"\0" * (-len(out) % 4))

        for ino, path in enumerate(sorted(self.entries), start=1):
            mode, data, rdev = self.entries[path]
            entry(ino, path, mode, data, rdev, 2 if stat.S_ISDIR(mode) else 1)
        entry(0, "TRAILER!!!", 0, b"", (0, 0), 1)
        return bytes(out)


def compress(data, how):
    if how == "none":
        return data
    if how == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if how == "zstd":
        # --content-size lets the kernel's decompressor size its output once.
        return subprocess.run(["zstd", "-q", "-15", "-c", "--content-size"], input=data,
                              check=True, stdout=subprocess.PIPE).stdout
    raise SystemExit("mkinitramfs: unknown compression " + how)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kernel-root", required=True,
                    help="unpacked linux-image package (has usr/lib/modules/<ver>)")
    ap.add_argument("--busybox", required=True, help="riscv64 busybox (static)")
    ap.add_argument("--overlay", action="append", default=[],
                    help="directory copied over the image root (repeatable, in order)")
    ap.add_argument("--boot-modules", default="",
                    help="modules /init always loads (space-separated names)")
    ap.add_argument("--modules", default="",
                    help="modules /init loads when a device's modalias matches one of theirs")
    ap.add_argument("--compress", default="gzip", choices=("gzip", "zstd", "none"))
    ap.add_argument("--manifest", help="write a listing of the image here")
    ap.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    moddirs = [d for d in ("usr/lib/modules", "lib/modules")
               if os.path.isdir(os.path.join(args.kernel_root, d))]
    if not moddirs:
        raise SystemExit("mkinitramfs: no lib/modules in " + args.kernel_root)
    versions = os.listdir(os.path.join(args.kernel_root, moddirs[0]))
    if len(versions) != 1:
        raise SystemExit("mkinitramfs: expected one kernel version, found %s" % versions)
    kver = versions[0]
    moddir = os.path.join(args.kernel_root, moddirs[0], kver)

    img = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "run",
              "tmp", "root", "etc/godwit/init.d", "mnt", "var"):
        img.add(d, stat.S_IFDIR | (0o1777 if d == "tmp" else 0o755))
    # The kernel opens /dev/console for /init's stdio before devtmpfs exists.
    img.add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    img.add("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3))
    with open(args.busybox, "rb") as fh:
        img.add("bin/busybox", stat.S_IFREG | 0o755, fh.read())
    img.add("bin/sh", stat.S_IFLNK | 0o777, b"busybox")
    img.add("var/run", stat.S_IFLNK | 0o777, b"../run")

    boot_names, dev_names = args.boot_modules.split(), args.modules.split()
    order, deps, blobs, infos, names = module_closure(moddir, boot_names + dev_names)
    mroot = "lib/modules/" + kver
    for rel in order:
        img.add(mroot + "/" + rel, stat.S_IFREG | 0o644, blobs[rel])
    img.add(mroot + "/modules.dep", stat.S_IFREG | 0o644, "".join(
        "%s: %s\n" % (rel, " ".join(deps[rel])) for rel in order).encode())
    for extra in ("modules.builtin",):  # lets modprobe accept built-in names
        path = os.path.join(moddir, extra)
        if os.path.exists(path):
            with open(path, "rb") as fh:
                img.add(mroot + "/" + extra, stat.S_IFREG | 0o644, fh.read())
    boot = []
    for name in boot_names:
        if names[name]:
            load_order(names[name], deps, boot)
    img.add("etc/godwit/modules.boot", stat.S_IFREG | 0o644,
            "".join(rel + "\n" for rel in boot).encode())
    aliases = []
    for name in dev_names:
        rel = names[name]
        if rel:
            for alias in infos[rel].get("alias", []):
                aliases.append("%s %s\n" % (alias, " ".join(load_order(rel, deps))))
    img.add("etc/godwit/modules.alias", stat.S_IFREG | 0o644, "".join(aliases).encode())

    for overlay in args.overlay:
        img.add_tree(overlay)

    raw = img.bytes()
    packed = compress(raw, args.compress)
    tmp = args.output + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(packed)
    os.replace(tmp, args.output)
    if args.manifest:
        with open(args.manifest, "w") as fh:
            fh.write("# kernel %s, %d entries, %d bytes raw, %d bytes %s\n" % (
                kver, len(img.entries), len(raw), len(packed), args.compress))
            for path in sorted(img.entries):
                mode, data, rdev = img.entries[path]
                fh.write("%s %7d /%s\n" % (stat.filemode(mode), len(data), path))
    if args.quiet:
        return
    print("mkinitramfs: %d modules (%s), %d entries, %.1f MiB raw -> %.1f MiB %s" % (
        len(order), " ".join(os.path.basename(r)[:-3] for r in order), len(img.entries),
        len(raw) / 2**20, len(packed) / 2**20, args.compress), file=sys.stderr)


if __name__ == "__main__":
    main()
