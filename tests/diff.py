#!/usr/bin/env python3
"""Differential guest tests: run bare-metal ELFs on godwit-vm and on QEMU.

For every ELF (default: build/guest/*.elf except bench-* and mig_*, which run
forever for the save/restore tests in tests/linux/state_test.py), run it on
qemu-system-riscv64 (the oracle, command line in tests/qemu-cmdline) and on
godwit-vm, each under a timeout, and compare the serial output byte for byte
and the exit status.  Prints one line per program:

    PASS name
    FAIL name: <reason>   (followed by an indented diff excerpt)

and ends with "diff: N passed, N failed".  QEMU's results are cached in
build/qemu-cache/ keyed by the SHA-256 of the ELF, the QEMU command line and
the QEMU version, so only godwit runs on a repeat run.

The oracle is checked too: a program must exit 0 on QEMU unless its source
(tests/guest/NAME.c or .S) contains "expect-exit: N".  On a failure, both
outputs are saved under build/diff-failures/.

Usage: tests/diff.py [--vm build/release/godwit-vm] [--timeout S] [-j N]
                     [--qemu-only] [ELF...]
"""

import argparse
import concurrent.futures
import difflib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def qemu_cmdline():
    with open(os.path.join(ROOT, "tests", "qemu-cmdline")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                return line.split()
    raise SystemExit("tests/qemu-cmdline: no command line")


def qemu_version(cmd):
    try:
        out = subprocess.run([cmd[0], "--version"], capture_output=True, timeout=20).stdout
        return out.decode(errors="replace").splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def run(cmd, timeout):
    """Run cmd; returns (stdout bytes, stderr bytes, status). status is the
    exit code, 'timeout', or 'signal N'."""
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return (e.stdout or b""), (e.stderr or b""), "timeout"
    except OSError as e:
        return b"", str(e).encode(), "cannot run"
    rc = p.returncode
    if rc < 0:
        rc = "signal %d" % -rc
    return p.stdout, p.stderr, rc


def expected_exit(name):
    for ext in (".c", ".S"):
        src = os.path.join(ROOT, "tests", "guest", name + ext)
        if os.path.exists(src):
            with open(src, errors="replace") as f:
                m = re.search(r"expect-exit:\s*(\d+)", f.read())
                return int(m.group(1)) if m else 0
    return 0


class Oracle:
    def __init__(self, cache_dir, timeout):
        self.cmd = qemu_cmdline()
        self.cache_dir = cache_dir
        self.timeout = timeout
        self.salt = (" ".join(self.cmd) + "\n" + qemu_version(self.cmd)).encode()
        os.makedirs(cache_dir, exist_ok=True)

    def result(self, elf):
        h = hashlib.sha256(self.salt)
        with open(elf, "rb") as f:
            h.update(f.read())
        key = os.path.join(self.cache_dir, h.hexdigest()[:32])
        if os.path.exists(key + ".rc"):
            with open(key + ".out", "rb") as f:
                out = f.read()
            with open(key + ".rc") as f:
                rc = f.read().strip()
            return out, (int(rc) if rc.lstrip("-").isdigit() else rc)
        # QEMU 7.2 TCG now and then misses a CLINT timer wake-up from WFI and
        # hangs (seen once in CI on interrupts.elf under load): an oracle that
        # timed out gets two more tries before its result counts.
        for attempt in range(3):
            out, err, rc = run(self.cmd + [elf], self.timeout)
            if rc != "timeout":
                break
            sys.stderr.write("note: QEMU oracle timed out on %s (try %d of 3)\n"
                             % (os.path.basename(elf), attempt + 1))
        if rc in ("timeout", "cannot run"):
            return out, rc  # never cache a broken oracle run
        tmp = key + ".tmp%d" % os.getpid()
        with open(tmp + ".out", "wb") as f:
            f.write(out)
        os.replace(tmp + ".out", key + ".out")
        with open(tmp + ".rc", "w") as f:
            f.write(str(rc))
        os.replace(tmp + ".rc", key + ".rc")
        return out, rc


def excerpt(a, b, limit=12):
    al = a.decode(errors="replace").splitlines()
    bl = b.decode(errors="replace").splitlines()
    lines = list(difflib.unified_diff(al, bl, "qemu", "godwit", n=1, lineterm=""))
    if len(lines) > limit:
        lines = lines[:limit] + ["... (%d more diff lines)" % (len(lines) - limit)]
    return "\n".join("    " + l for l in lines)


def check(elf, oracle, vm, timeout, qemu_only, fail_dir):
    name = os.path.basename(elf)[: -len(".elf")]
    qout, qrc = oracle.result(elf)
    want = expected_exit(name)
    if qrc != want:
        return False, name, "oracle: QEMU exit %s, expected %s\n%s" % (
            qrc, want, "\n".join("    " + l for l in qout.decode(errors="replace").splitlines()[-8:]))
    if qemu_only:
        return True, name, ""
    gout, gerr, grc = run([vm, "-M", "virt", "-m", "128M", "-bios", "none", "-nographic",
                           "-kernel", elf], timeout)
    if gout == qout and grc == qrc:
        return True, name, ""
    os.makedirs(fail_dir, exist_ok=True)
    for suffix, data in (("qemu.out", qout), ("godwit.out", gout), ("godwit.err", gerr)):
        with open(os.path.join(fail_dir, "%s.%s" % (name, suffix)), "wb") as f:
            f.write(data)
    why = []
    if grc != qrc:
        why.append("exit %s, QEMU %s" % (grc, qrc))
    if gout != qout:
        why.append("output differs")
    msg = ", ".join(why)
    if gout != qout:
        msg += "\n" + excerpt(qout, gout)
    if gerr.strip():
        msg += "\n    stderr: " + gerr.decode(errors="replace").strip().splitlines()[-1][:200]
    return False, name, msg


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vm", default=os.path.join(os.environ.get("BUILD", "build/release"),
                                                 "godwit-vm"))
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--qemu-only", action="store_true", help="only check the oracle runs")
    ap.add_argument("--cache", default=os.path.join(ROOT, "build", "qemu-cache"))
    ap.add_argument("elfs", nargs="*")
    a = ap.parse_args()
    elfs = a.elfs
    if not elfs:
        gdir = os.path.join(ROOT, "build", "guest")
        elfs = sorted(os.path.join(gdir, f) for f in os.listdir(gdir)
                      if f.endswith(".elf") and not f.startswith(("bench-", "mig_"))
                      and f != "demo.elf") \
            if os.path.isdir(gdir) else []
    if not elfs:
        print("FAIL guests: no ELF found (run make guests)")
        print("diff: 0 passed, 1 failed")
        return 1
    oracle = Oracle(a.cache, a.timeout)
    fail_dir = os.path.join(ROOT, "build", "diff-failures")
    # Run a private copy of godwit-vm, so a concurrent rebuild cannot break the run.
    tmpdir = tempfile.mkdtemp(prefix="godwit-diff-")
    if not a.qemu_only and os.path.exists(a.vm):
        copy = os.path.join(tmpdir, "godwit-vm")
        shutil.copy2(a.vm, copy)
        a.vm = copy
    passed = failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        futs = [ex.submit(check, e, oracle, a.vm, a.timeout, a.qemu_only, fail_dir) for e in elfs]
        for fut in futs:
            ok, name, msg = fut.result()
            if ok:
                passed += 1
                print("PASS %s" % name, flush=True)
            else:
                failed += 1
                print("FAIL %s: %s" % (name, msg), flush=True)
    shutil.rmtree(tmpdir, ignore_errors=True)
    print("diff: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
