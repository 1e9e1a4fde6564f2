#!/usr/bin/env python3
"""Write the seed corpus of tests/fuzz/fuzz_elf.c (tests/fuzz/corpus/elf).

Each seed is a small ELF64 RISC-V executable for the target's 1 MiB of RAM
at 0x80000000: good ones (one segment, code plus .bss, two segments with a
non-loadable header between them, an empty PT_LOAD) and broken ones the
loader must refuse with a reason (wrong class, machine and type, truncated
header and table, segment data past the end of the file, p_filesz above
p_memsz, a segment outside RAM or wrapping around, overlapping segments,
the entry outside RAM, no program headers, PN_XNUM).  Seeds are named seed-*.

    tests/fuzz/gen_elf_corpus.py [OUTDIR]
"""

import os
import struct
import sys

RAM = 0x80000000
PT_LOAD, PT_NOTE = 1, 4
CODE = bytes.fromhex("9302500073000000")  # li t0,5; ecall


def phdr(ptype, offset, paddr, filesz, memsz):
    return struct.pack("<IIQQQQQQ", ptype, 5, offset, paddr, paddr, filesz, memsz, 8)


def elf(segs, entry=RAM, cls=2, machine=243, etype=2, phnum=None, phentsize=56):
    """segs: (type, paddr, data, memsz); the data follow the header table."""
    phoff = 64
    off = phoff + 56 * len(segs)
    table, body = b"", b""
    for ptype, paddr, data, memsz in segs:
        table += phdr(ptype, off + len(body), paddr, len(data), memsz)
        body += data
    ident = b"\x7fELF" + bytes([cls, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", etype, machine, 1, entry, phoff, 0, 0, 64,
                               phentsize, len(segs) if phnum is None else phnum, 64, 0, 0)
    return ehdr + table + body


def seeds():
    one = [(PT_LOAD, RAM, CODE, len(CODE))]
    yield "one-segment", elf(one)
    yield "code-and-bss", elf([(PT_LOAD, RAM, CODE, 0x2000)])
    yield "two-segments", elf([(PT_LOAD, RAM, CODE, 8), (PT_NOTE, 0, b"note", 4),
                               (PT_LOAD, RAM + 0x1000, b"data" * 4, 0x100)])
    yield "empty-load", elf([(PT_LOAD, 0, b"", 0)] + one)
    yield "last-page", elf([(PT_LOAD, RAM + 0xff000, CODE, 0x1000)], entry=RAM + 0xff000)
    yield "class32", elf(one, cls=1)
    yield "x86", elf(one, machine=62)
    yield "dyn", elf(one, etype=3)
    yield "trunc-header", elf(one)[:40]
    yield "trunc-table", elf(one)[:80]
    good = elf(one)
    yield "data-past-end", good[:-4]
    yield "filesz-above-memsz", elf([(PT_LOAD, RAM, CODE, 4)])
    yield "outside-ram", elf([(PT_LOAD, RAM + 0x100000, CODE, 8)])
    yield "wraps", elf([(PT_LOAD, 0xfffffffffffff000, CODE, 0x2000)])
    yield "overlap", elf([(PT_LOAD, RAM, CODE, 0x100), (PT_LOAD, RAM + 0x80, CODE, 8)])
    yield "entry-outside", elf(one, entry=0x1000)
    yield "no-phdrs", elf([], phnum=0)
    yield "pn-xnum", elf(one, phnum=0xffff)
    yield "phentsize", elf(one, phentsize=32)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "elf")
    os.makedirs(out, exist_ok=True)
    n = 0
    for name, data in seeds():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)
        n += 1
    print("%d seeds in %s" % (n, out))


if __name__ == "__main__":
    main()
