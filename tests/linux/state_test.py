#!/usr/bin/env python3
"""Save and restore of a whole VM (issue 5): QMP `migrate` to a file, a new
process with `-incoming`, on godwit-vm (or, to check the test itself, on
QEMU 7.2).

Cases:

  pagepass   the migration oracle tests/guest/mig_pagepass (bare metal, -m 64M)
             runs a few passes; QMP migrate writes the state (MIGRATION
             completed, query-status postmigrate), the process is killed and
             a new one restores it with -incoming; the pass numbers continue
             with no FAIL and the mtime it prints never goes back.  Chained
             STATE_LOOPS times (default 100): each restored VM is saved again.
  linux      Debian's kernel + busybox initramfs with a virtio-blk disk (ext2
             made in the guest): a background counter writes to the console
             and to a file on the disk; after save, kill and restore the
             counter goes on from where it stopped, a file written before the
             save has its checksum, the counter file is complete, the console
             answers commands.
  twice      one state file restored by two processes with -S: both are
             paused and silent until `cont`, then print the same pass
             sequence; if the QMP command x-godwit-state-hash exists, both
             hashes right after the load are equal.
  save-fail  saving into a read-only file system and into a full one (small
             tmpfs mounts: needs root) fails cleanly: migrate errors or
             query-migrate says failed, the VM keeps running and passing, an
             earlier file at that path keeps its bytes, no temporary file is
             left; then a save to a good path works and restores.
  hostile    -incoming with a truncated state, a byte flipped in the RAM data
             (middle of the file) and in the device state (near its end), an
             empty file, random bytes, and a state saved with another -m:
             each refused with a message on stderr and an exit status in
             1..127, and the guest never runs (no UART output).

Prints `PASS name` / `FAIL name: why` / `SKIP name: reason` and the last line
`N passed, N failed, N skipped`; exits 1 if anything failed.

usage: tests/linux/state_test.py [--only NAME[,NAME]] [--loops N] [--vm godwit|qemu]

Environment: BUILD (build/release), GODWIT_VM (godwit-vm binary, default
$BUILD/godwit-vm), STATE_VM (godwit or qemu: which emulator is under test;
qemu checks the test against QEMU 7.2, which saves through `exec:` URIs
instead of `file:`), STATE_LOOPS (pagepass chain length, 100),
STATE_TEST_CASES (comma-separated subset), GODWIT_GUEST_IMAGE /
GODWIT_GUEST_INITRD, STATE_TEST_TIMEOUT (Linux boot, seconds, 240).

On QEMU (STATE_VM=qemu) the VM is stopped before each save and continued
after each restore: QEMU 7.2 TCG's live save loses pages the guest dirties
during the transfer (this test caught it), and it does not re-arm the guest
timer after a restore, so the linux case ends at the counter there (SKIP).
The byte-flip and empty-file hostile variants are godwit-only (QEMU's stream
has no checksum; it waits forever on an empty one).
"""

import hashlib
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
import migration as mig  # noqa: E402
from harness import Skip, check  # noqa: E402
from migration import MigVM, pagepass_args, passes, save_ok, wait_passes  # noqa: E402


def case_pagepass(ctx):
    loops = ctx.loops
    files = [os.path.join(ctx.tmp, "pp-a.state"), os.path.join(ctx.tmp, "pp-b.state")]
    history = ""
    vm = MigVM(ctx, "pagepass", pagepass_args())
    sizes, saves, loads = [], [], []
    try:
        ps = wait_passes(vm, history, 2)
        for i in range(loops):
            path = files[i % 2]
            info = save_ok(vm, path)
            saves.append(info.get("_wall", 0))
            sizes.append(os.path.getsize(path))
            vm.kill()
            history += vm.output()
            before = passes(history)
            check(vm.stderr().strip() == "" or ctx.emu.kind == "qemu",
                  f"iteration {i}: stderr of the saved VM: {vm.stderr()[-300:]}")
            t0 = time.monotonic()
            vm = MigVM(ctx, "pagepass", pagepass_args(), incoming=ctx.emu.incoming_uri(path))
            ps = wait_passes(vm, history, len(before) + 2)
            loads.append(time.monotonic() - t0)
            # The first pass after the restore is the one after the last
            # printed before the save (passes() checked the sequence).
            check(ps[len(before)][0] == before[-1][0] + 1 if before else True,
                  f"iteration {i}: pass {ps[len(before)][0]} after {before[-1][0]}")
        ps = passes(history + vm.output())
    finally:
        vm.kill()
    mid = sorted(sizes)[len(sizes) // 2] if sizes else 0
    return (f"{loops} save/restore cycles, passes 1..{ps[-1][0]}, state ~{mid >> 20} MiB, "
            f"save median {sorted(saves)[len(saves) // 2] if saves else 0:.2f}s, "
            f"restore-to-2-passes median {sorted(loads)[len(loads) // 2] if loads else 0:.2f}s")


def case_twice(ctx):
    path = os.path.join(ctx.tmp, "twice.state")
    history = mig.saved_pagepass(ctx, "twice-src", path, 3)
    last = passes(history)[-1][0]
    a = MigVM(ctx, "twice-a", pagepass_args(), incoming=ctx.emu.incoming_uri(path), paused=True)
    b = MigVM(ctx, "twice-b", pagepass_args(), incoming=ctx.emu.incoming_uri(path), paused=True)
    note = ""
    try:
        for v in (a, b):
            st = v.wait_loaded()
            check(st == "paused", f"{v.name}: status after the load with -S is {st}, want paused")
        time.sleep(0.5)
        for v in (a, b):
            check(v.output() == "", f"{v.name}: printed {v.output()[:200]!r} while paused")
            check(v.status() == "paused", f"{v.name}: no longer paused")
        try:
            ha = a.cmd("x-godwit-state-hash")["hash"]
            hb = b.cmd("x-godwit-state-hash")["hash"]
            check(ha == hb, f"state hashes after the load differ: {ha} vs {hb}")
            note = f", state hashes equal ({ha[:16]})"
        except AssertionError:
            raise
        except Exception as e:  # a QMPError, or a timeout
            if getattr(e, "cls", None) != "CommandNotFound":
                raise AssertionError(f"x-godwit-state-hash: {e}")
            note = ", hash sub-check skipped: no x-godwit-state-hash command"
        for v in (a, b):
            v.cmd("cont")
        seqs = []
        for v in (a, b):
            ps = wait_passes(v, history, len(passes(history)) + 5)
            seqs.append([n for n, _ in ps[len(passes(history)):]][:5])
        check(seqs[0] == seqs[1], f"the two restored VMs printed {seqs[0]} and {seqs[1]}")
        check(seqs[0] == list(range(last + 1, last + 6)),
              f"after pass {last} the restored VMs printed {seqs[0]}")
    finally:
        a.kill()
        b.kill()
    return f"both continued with passes {seqs[0]}{note}"


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def case_save_fail(ctx):
    if os.geteuid() != 0:
        raise Skip("mounting small tmpfs file systems needs root")
    mounts = []
    vm = None
    try:
        dirs = {}
        for kind, size in (("readonly", "16M"), ("full", "8M")):
            d = os.path.join(ctx.tmp, "mnt-" + kind)
            os.makedirs(d)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", d],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise Skip(f"cannot mount a tmpfs: {r.stdout.strip()}")
            mounts.append(d)
            with open(os.path.join(d, "vm.state"), "wb") as f:
                f.write(os.urandom(4 << 20))  # "an earlier state file"
            if kind == "full":
                # leave 64 KiB: less than any state (a compressed one too)
                vfs = os.statvfs(d)
                free = vfs.f_bavail * vfs.f_frsize - (64 << 10)
                with open(os.path.join(d, "filler"), "wb") as f:
                    f.write(b"\xa5" * max(free, 0))
            dirs[kind] = d
        r = subprocess.run(["mount", "-o", "remount,ro", dirs["readonly"]],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        check(r.returncode == 0, f"remount ro: {r.stdout}")
        vm = MigVM(ctx, "save-fail", pagepass_args())
        history = ""
        wait_passes(vm, history, 2)
        notes = []
        for kind, d in dirs.items():
            path = os.path.join(d, "vm.state")
            digest = sha256(path)
            info, err = vm.save(path)
            check(err is not None or info.get("status") == "failed",
                  f"{kind}: the save did not fail: {info}")
            q = vm.cmd("query-migrate")
            check(q.get("status") == "failed" or (err is not None and q.get("status") is None),
                  f"{kind}: query-migrate after the failed save: {q}")
            st = vm.status()
            check(st == "running", f"{kind}: status after the failed save is {st}, want running")
            n = len(passes(history + vm.output()))
            wait_passes(vm, history, n + 2)
            check(sha256(path) == digest, f"{kind}: the earlier file at {path} changed")
            left = sorted(set(os.listdir(d)) - {"vm.state", "filler"})
            check(not left, f"{kind}: files left behind: {left}")
            notes.append(f"{kind}: " + (err or q.get("error-desc", "failed"))[:80])
        # The source survived intact: a save to a good place restores and runs.
        good = os.path.join(ctx.tmp, "after-fail.state")
        save_ok(vm, good)
        vm.kill()
        history = vm.output()
        n = len(passes(history))
        vm = MigVM(ctx, "save-fail-restored", pagepass_args(), incoming=ctx.emu.incoming_uri(good))
        wait_passes(vm, history, n + 2)
    finally:
        if vm:
            vm.kill()
        for d in mounts:
            subprocess.run(["umount", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return "; ".join(notes)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def case_hostile(ctx):
    good = os.path.join(ctx.tmp, "hostile-good.state")
    mig.saved_pagepass(ctx, "hostile-src", good)
    with open(good, "rb") as f:
        data = f.read()
    size = len(data)

    def flipped(off):
        b = bytearray(data)
        b[off] ^= 0x10
        return bytes(b)

    variants = [("truncated", data[:size // 3], "64M"),
                ("flip-ram", flipped(size // 2), "64M"),
                ("flip-device", flipped(size - 256), "64M"),
                ("empty", b"", "64M"),
                ("random", os.urandom(1 << 20), "64M"),
                ("other-m", data, "128M")]
    results, failures = [], []
    for name, blob, mem in variants:
        if ctx.emu.kind == "qemu" and name.startswith("flip"):
            results.append(f"{name}: not checked on QEMU (its stream has no checksum)")
            continue
        if ctx.emu.kind == "qemu" and name == "empty":
            results.append(f"{name}: not checked on QEMU (7.2 waits forever on an empty stream)")
            continue
        path = os.path.join(ctx.tmp, f"hostile-{name}.state")
        write(path, blob)
        v = MigVM(ctx, "hostile-" + name, pagepass_args(mem), incoming=ctx.emu.incoming_uri(path))
        rc = v.exit_status(30)
        if rc is None:
            rc = "still running after 30 s"
        out, err = v.output(), v.stderr()
        v.kill()
        why = []
        if not (isinstance(rc, int) and 1 <= rc <= 127):
            why.append(f"exit status {rc}")
        if out.strip():
            why.append(f"the guest ran: {out[:120]!r}")
        if not re.search(r"incoming|state|migrat|load|restor|checksum|truncat|size|memory|ram",
                         err, re.I):
            why.append(f"no clear message on stderr: {err.strip()[:200]!r}")
        if why:
            failures.append(f"{name}: " + ", ".join(why))
        else:
            results.append(f"{name}: {err.strip().splitlines()[-1][:100]}")
    check(not failures, "; ".join(failures))
    return "; ".join(results)


# ---- the Linux workload ---------------------------------------------------------

def case_linux(ctx):
    args = mig.linux_args(ctx, "linux.img")
    path = os.path.join(ctx.tmp, "linux.state")
    with MigVM(ctx, "linux", args, console=True) as vm:
        con = vm.con
        want = mig.linux_prepare(con, ctx.boot_timeout)
        con.sendline(mig.COUNTER)
        con.expect(r"^cnt 5$", 30)
        info = save_ok(vm, path)
        h.drain(con)
    seen = mig.counter_values(h.console_text(vm.con))
    check(seen, "no counter line before the save")
    last = seen[-1]
    t0 = time.monotonic()
    with MigVM(ctx, "linux-restored", args, incoming=ctx.emu.incoming_uri(path),
               console=True) as vm:
        con = vm.con
        if vm.needs_cont and vm.wait_loaded() == "paused":
            vm.cmd("cont")  # QEMU saved it stopped: it restores paused
        con.expect(r"^cnt (\d+)\n", 60)
        first = int(con.match.group(1))
        t_first = time.monotonic() - t0
        check(last < first <= last + 2,
              f"the counter printed {first} first after the restore; it stopped at {last}")
        con.expect(rf"^cnt {first + 3}$", 30)
        if ctx.emu.kind == "qemu":
            raise Skip(f"on QEMU only up to the counter ({last} -> {first}): QEMU 7.2 does not "
                       "re-arm the guest timer after a restore, so the shell never gets the CPU "
                       "back from the counter")
        lines = mig.linux_verify(con, want, "kill $!; wait $! 2>/dev/null; true")
        check(lines >= first + 3, f"the counter file has {lines} lines, want {first + 3} or more")
    return (f"state {os.path.getsize(path) >> 20} MiB saved in {info.get('_wall', 0):.2f}s; "
            f"counter {last} -> {first} (first line {t_first:.2f}s after the restore "
            f"started), {lines} lines on disk")


# ---- main -------------------------------------------------------------------------


CASES = [("pagepass", case_pagepass), ("linux", case_linux), ("twice", case_twice),
         ("save-fail", case_save_fail), ("hostile", case_hostile)]


def main():
    return mig.main(__doc__, CASES, "state",
                    {"cases": "STATE_TEST_CASES", "loops": "STATE_LOOPS", "vm": "STATE_VM"},
                    "100", "pagepass save/restore cycles (STATE_LOOPS, 100)",
                    lambda loops: f"{loops} pagepass cycles")


if __name__ == "__main__":
    h.main(main)
