#!/usr/bin/env python3
"""Build the extra initramfs archive of a guest image variant (e.g. redis).

Called by guest/build.sh --variant NAME after it has unpacked the variant's
Debian riscv64 packages, one folder per package under --packages DIR. The
variant's initrd is the default initrd.img with this archive appended: the
kernel unpacks concatenated archives in order into the same rootfs, so the
default image is reused byte for byte and never rebuilt for a variant.

What goes in: each --binary (a path in the packages, symlinks followed,
installed under its own name: Debian's /usr/bin/redis-server is a link to
redis-check-rdb, and redis picks its mode from argv[0]), the shared
libraries it needs (the closure of the ELF's DT_NEEDED entries, looked up in
the multiarch and plain library folders of the unpacked packages, installed
under their sonames), the dynamic loader named by PT_INTERP, the --overlay
trees and the Debian copyright file of every package something was taken
from.

With --missing it only prints the sonames the packages do not provide yet
(one a line; exit status 3 if any): build.sh then fetches the library
packages the unpacked ones depend on and asks again.
"""

import argparse
import os
import stat
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkinitramfs import Cpio, compress  # noqa: E402

# Where ld.so looks without an ld.so.cache: Debian's glibc has the
# multiarch folders built in (--libdir/--slibdir), the plain ones too.
LIB_DIRS = ("lib/riscv64-linux-gnu", "usr/lib/riscv64-linux-gnu", "lib", "usr/lib")
# Where the libraries go in the image (one of LIB_DIRS, so no
# LD_LIBRARY_PATH or ld.so.cache is needed).
LIB_DEST = "usr/lib/riscv64-linux-gnu"
PT_INTERP, PT_DYNAMIC, DT_NEEDED, DT_STRTAB = 3, 2, 1, 5
EM_RISCV = 243


def elf_deps(data):
    """(interpreter or None, [DT_NEEDED sonames]) of an ELF64 LE riscv64
    executable or shared object."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not an ELF64 little-endian file")
    machine, = struct.unpack_from("<H", data, 0x12)
    if machine != EM_RISCV:
        raise ValueError(f"ELF machine {machine}, not RISC-V")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, interp, dyn = [], None, None
    for i in range(phnum):
        p_type, _flags, off, vaddr, _paddr, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:  # PT_LOAD: for turning DT_STRTAB's address into an offset
            loads.append((vaddr, off, filesz))
        elif p_type == PT_INTERP:
            interp = data[off:off + filesz].rstrip(b"\0").decode()
        elif p_type == PT_DYNAMIC:
            dyn = (off, filesz)
    if dyn is None:
        return interp, []
    needed, strtab = [], None
    for off in range(dyn[0], dyn[0] + dyn[1], 16):
        tag, val = struct.unpack_from("<qQ", data, off)
        if tag == 0:
            break
        if tag == DT_NEEDED:
            needed.append(val)
        elif tag == DT_STRTAB:
            strtab = next((o + val - v for v, o, n in loads if v <= val < v + n), None)
    if strtab is None:
        raise ValueError("DT_NEEDED without a DT_STRTAB in a loaded segment")
    return interp, [data[strtab + n:data.index(b"\0", strtab + n)].decode() for n in needed]


class Packages:
    """The unpacked packages: DIR/<package>/ each a package's root."""

    def __init__(self, top):
        self.top = top
        self.names = sorted(d for d in os.listdir(top) if os.path.isdir(os.path.join(top, d)))

    def resolve(self, pkg, rel, depth=0):
        """(package, real path relative to its root) of rel in pkg, symlinks
        followed (absolute ones inside the package roots, in any package:
        Debian's /lib is /usr/lib after the usr merge); None if absent."""
        if depth > 16:
            return None
        root = os.path.join(self.top, pkg)
        parts = rel.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            head = os.path.join(root, *parts[:i])
            if os.path.islink(head):
                target = os.readlink(head)
                rest = parts[i:]
                if target.startswith("/"):
                    new = os.path.normpath(os.path.join(target, *rest)).lstrip("/")
                else:
                    new = os.path.normpath(os.path.join(*parts[:i - 1], target, *rest))
                return self.find(new, depth + 1, first=pkg)
            if not os.path.lexists(head):
                return None
        return (pkg, "/".join(parts)) if os.path.isfile(os.path.join(root, *parts)) else None

    def find(self, rel, depth=0, first=None):
        """rel in any package (first one first)."""
        for pkg in ([first] if first else []) + [p for p in self.names if p != first]:
            hit = self.resolve(pkg, rel, depth)
            if hit:
                return hit
        # the usr merge: /lib/x may only exist as /usr/lib/x, and back
        rel = rel.strip("/")
        alt = rel[4:] if rel.startswith("usr/") else "usr/" + rel
        if depth < 16 and alt != rel:
            for pkg in self.names:
                hit = self.resolve(pkg, alt, 16 if alt.startswith("usr/usr/") else depth + 1)
                if hit:
                    return hit
        return None

    def read(self, hit):
        with open(os.path.join(self.top, hit[0], hit[1]), "rb") as fh:
            return fh.read()


def closure(pkgs, binaries):
    """Everything the binaries need: ({image path: (package, path)},
    [missing sonames])."""
    files, missing, queue = {}, [], []
    for b in binaries:
        hit = pkgs.find(b)
        if not hit:
            raise SystemExit(f"mkvariant: {b} is in none of the packages {pkgs.names}")
        files[b.strip("/")] = hit
        queue.append(hit)
    seen = set()
    while queue:
        hit = queue.pop()
        interp, needed = elf_deps(pkgs.read(hit))
        if interp and interp.strip("/") not in files:
            ih = pkgs.find(interp)
            if ih:
                files[interp.strip("/")] = ih
                queue.append(ih)
            elif interp not in missing:
                missing.append(interp)
        for so in needed:
            if so in seen:
                continue
            seen.add(so)
            lh = next(filter(None, (pkgs.find(f"{d}/{so}") for d in LIB_DIRS)), None)
            if not lh:
                missing.append(so)
                continue
            files[f"{LIB_DEST}/{so}"] = lh
            queue.append(lh)
    return files, missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packages", required=True, help="folder of unpacked packages")
    ap.add_argument("--binary", action="append", required=True,
                    help="a program to install with its libraries (repeatable)")
    ap.add_argument("--overlay", action="append", default=[],
                    help="directory copied over the archive root (repeatable)")
    ap.add_argument("--missing", action="store_true",
                    help="only print the sonames not found (exit 3 if any)")
    ap.add_argument("--compress", default="gzip", choices=("gzip", "zstd", "none"))
    ap.add_argument("--licenses", help="copy the packages' copyright files here too")
    ap.add_argument("--manifest", help="write a listing of the archive here")
    ap.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    ap.add_argument("-o", "--output")
    args = ap.parse_args()

    pkgs = Packages(args.packages)
    files, missing = closure(pkgs, args.binary)
    if args.missing or missing:
        for so in missing:
            print(so)
        if missing and not args.missing:
            print("mkvariant: not found in the packages: " + " ".join(missing), file=sys.stderr)
        sys.exit(3 if missing else 0)
    if not args.output:
        ap.error("-o is required")

    img = Cpio()
    used = sorted({pkg for pkg, _ in files.values()})
    first = {}  # a file needed under two names (ld.so: PT_INTERP and libc's DT_NEEDED) once
    for path, hit in sorted(files.items(), key=lambda kv: (len(kv[0]), kv[0])):
        if hit in first:
            img.add(path, stat.S_IFLNK | 0o777, ("/" + first[hit]).encode())
        else:
            first[hit] = path
            img.add(path, stat.S_IFREG | 0o755, pkgs.read(hit))
    for pkg in used:
        # gcc's library packages link their doc folder to gcc-NN-base's
        src = pkgs.find(f"usr/share/doc/{pkg}/copyright", first=pkg)
        if not src:
            print(f"mkvariant: warning: {pkg} has no copyright file", file=sys.stderr)
            continue
        text = pkgs.read(src)
        img.add(f"usr/share/doc/{pkg}/copyright", stat.S_IFREG | 0o644, text)
        if args.licenses:
            os.makedirs(args.licenses, exist_ok=True)
            with open(os.path.join(args.licenses, pkg + ".copyright"), "wb") as fh:
                fh.write(text)
    for overlay in args.overlay:
        img.add_tree(overlay)
    # Cpio.add made the parent folders with mode 0755; /tmp and the like come
    # from the default archive, unpacked first, and are left alone.
    raw = img.bytes()
    packed = compress(raw, args.compress)
    tmp = args.output + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(packed)
    os.replace(tmp, args.output)
    if args.manifest:
        with open(args.manifest, "w") as fh:
            fh.write("# %d entries, %d bytes raw, %d bytes %s; from %s\n" % (
                len(img.entries), len(raw), len(packed), args.compress, " ".join(used)))
            for path in sorted(img.entries):
                mode, data, _ = img.entries[path]
                src = files.get(path)
                fh.write("%s %8d /%s%s\n" % (stat.filemode(mode), len(data), path,
                                             f"  ({src[0]}: /{src[1]})" if src else ""))
    if args.quiet:
        return
    print("mkvariant: %d files from %s, %.1f MiB raw -> %.1f MiB %s" % (
        len(files), " ".join(used), len(raw) / 2**20, len(packed) / 2**20, args.compress),
        file=sys.stderr)


if __name__ == "__main__":
    main()
