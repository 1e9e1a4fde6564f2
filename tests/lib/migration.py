#!/usr/bin/env python3
"""Save/restore and live-migration helpers on top of harness.py, shared by
tests/linux/state_test.py, tests/linux/migrate_test.py and bench/save.

- Emu: how to run and save one emulator, godwit-vm (`file:` URIs) or QEMU
  7.2 (`exec:` URIs);
- Ctx: what the cases share (the emulator, a temporary folder, log names,
  a sequence number for sockets and logs, fresh migration endpoints);
- MigVM: a harness.VM with a QMP socket, -S / -incoming, and save();
- the bare-metal guests' lines: the migration oracle tests/guest/mig_pagepass
  (`pass N t=MTIME`) and tests/guest/mig_ticker (`tick N t=MTIME`): parsed,
  checked (counting by one, mtime never going back) and waited for;
- the Linux workload: COUNTER;
- main(): the command line and case loop of state_test and migrate_test.
"""

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time

import harness as h
from harness import ROOT, check

PAGEPASS = os.path.join(ROOT, "build", "guest", "mig_pagepass.elf")
TICKER = os.path.join(ROOT, "build", "guest", "mig_ticker.elf")
# Complete lines only: "pass 9 t=12" could be the start of "pass 9 t=1234567".
PASS_RE = re.compile(r"^pass (\d+) t=(\d+)\n", re.M)
TICK_RE = re.compile(r"^tick (\d+) t=(\d+)\n", re.M)
FINAL = ("completed", "failed", "cancelled")

# The counter paces itself with sync (it waits for the disk's interrupt, so
# the shell gets the CPU) and a short busy loop, not sleep: QEMU 7.2 does not
# re-arm the CLINT timer after an incoming migration (Linux timers stop
# there), and the case should run on the oracle too.
COUNTER = ("(i=0; while :; do i=$((i+1)); echo \"cnt $i\" >> /mnt/counter; echo \"cnt $i\"; "
           "sync; j=0; while [ $j -lt 1000 ]; do j=$((j+1)); done; done) &")


class Emu:
    """How to run and save one emulator: godwit-vm (file: URIs) or QEMU 7.2
    (exec: URIs; a save goes to PATH.tmp and is renamed, as godwit does, so
    "an earlier file is untouched" means the same on both)."""

    def __init__(self, kind, binary):
        self.kind = kind
        self.bin = binary

    def save_uri(self, path):
        if self.kind == "godwit":
            return "file:" + path
        return f"exec:cat > {path}.tmp && mv {path}.tmp {path} || {{ rm -f {path}.tmp; false; }}"

    def incoming_uri(self, path):
        return ("file:" if self.kind == "godwit" else "exec:cat ") + path

    def linux_extra(self):
        # sstc=false as in tests/qemu-cmdline: godwit's hart has no Sstc, and
        # QEMU 7.2 loses the stimecmp timer across a migration.
        return ["-bios", "default", "-cpu", "rv64,sstc=false"] if self.kind == "qemu" else []


class Ctx:
    """What the cases share; logs are LOGDIR/PREFIX-NAME.SEQ.out/.err."""

    def __init__(self, prefix, emu, logdir, tmp, loops=0, boot_timeout=240.0):
        self.prefix, self.emu, self.logdir, self.tmp = prefix, emu, logdir, tmp
        self.loops, self.boot_timeout = loops, boot_timeout
        self.seq = 0

    def log(self, name):
        return os.path.join(self.logdir, f"{self.prefix}-{name}")

    def endpoint(self, kind):
        """A fresh migration address: unix:PATH in the temporary folder, or
        tcp:127.0.0.1:PORT."""
        self.seq += 1
        if kind == "unix":
            return f"unix:{os.path.join(self.tmp, f'mig{self.seq}.sock')}"
        return f"tcp:127.0.0.1:{h.free_port()}"


class MigVM(h.VM):
    """One emulator process with a QMP socket; its serial output goes to a
    file (bare metal) or a pty Console (Linux).  incoming: the -incoming URI."""

    def __init__(self, ctx, name, args, incoming=None, paused=False, console=False):
        self.ctx = ctx
        ctx.seq += 1
        argv = [ctx.emu.bin, *args]
        if paused:
            argv.append("-S")
        if incoming:
            argv += ["-incoming", incoming]
        super().__init__(name, argv, out=ctx.log(f"{name}.{ctx.seq}.out"),
                         err=ctx.log(f"{name}.{ctx.seq}.err"),
                         qmp=os.path.join(ctx.tmp, f"qmp{ctx.seq}.sock"), console=console)
        # QEMU saves a stopped VM (see save()), so its restore ends paused.
        self.needs_cont = bool(incoming) and not paused and ctx.emu.kind == "qemu"

    def save(self, path, timeout=120.0):
        """QMP migrate to path; returns (query-migrate's last answer, error
        text or None).  Polls query-migrate until completed/failed/cancelled."""
        stopped = False
        if self.ctx.emu.kind == "qemu":
            # QEMU throttles migration to 32 MiB/s by default.
            self.cmd("migrate-set-parameters", {"max-bandwidth": 100 << 30})
            # QEMU 7.2 TCG's live save loses pages the guest dirties while
            # it runs (mig_pagepass finds a stale page within ~50 cycles, a
            # Linux guest crashes): save it stopped, as a plain snapshot.
            if self.status() == "running":
                self.cmd("stop")
                stopped = True
        t0 = time.monotonic()
        try:
            self.cmd("migrate", uri=self.ctx.emu.save_uri(path))
        except Exception as e:  # a refused migrate is a clean failure too
            info = {}
            try:
                info = self.cmd("query-migrate")
            except Exception:
                pass
            if stopped:
                self.cmd("cont")
            return info, str(e)
        while True:
            info = self.cmd("query-migrate")
            if info.get("status") in FINAL:
                info["_wall"] = time.monotonic() - t0
                if stopped and info["status"] != "completed":
                    self.cmd("cont")  # as godwit's failed save leaves it running
                return info, None
            check(time.monotonic() - t0 < timeout, f"{self.name}: migrate still {info} after "
                                                   f"{timeout}s")
            time.sleep(0.005)


def save_ok(vm, path):
    """Save, check completed + postmigrate; returns query-migrate's answer."""
    info, err = vm.save(path)
    check(err is None and info.get("status") == "completed",
          f"{vm.name}: migrate to {path}: {err or info}")
    st = vm.status()
    check(st == "postmigrate", f"{vm.name}: status after the save is {st}, want postmigrate")
    check(os.path.getsize(path) > 0, f"{path} is empty")
    return info


# ---- the bare-metal guests' output --------------------------------------------------------


def baremetal_args(elf, mem):
    """The arguments (no binary) of a bare-metal guest program."""
    return ["-M", "virt", "-m", mem, "-bios", "none", "-nographic", "-monitor", "none",
            "-kernel", elf]


def pagepass_args(mem="64M", elf=PAGEPASS):
    return baremetal_args(elf, mem)


def counted(text, rx, word):
    """[(N, mtime)] of the complete `WORD N t=T` lines rx finds, after
    checking that N counts up by one and mtime never goes back."""
    xs = [(int(n), int(t)) for n, t in rx.findall(text)]
    for (n0, t0), (n1, t1) in zip(xs, xs[1:]):
        check(n1 == n0 + 1, f"{word} {n1} follows {word} {n0}: one was lost or repeated")
        check(t1 >= t0, f"mtime went back from {t0} ({word} {n0}) to {t1} ({word} {n1})")
    return xs


def passes(text):
    """The oracle's passes [(pass, mtime)], after checking the output holds
    no FAIL and the passes count up by one with an mtime that never goes back."""
    check("FAIL" not in text, "the guest failed: " +
          "".join(line for line in text.splitlines(True) if "FAIL" in line)[:500])
    return counted(text, PASS_RE, "pass")


def ticks(text):
    """mig_ticker's ticks [(tick, mtime)], checked as passes() does."""
    return counted(text, TICK_RE, "tick")


def wait_counted(vm, history, count, parse=passes, timeout=60.0):
    """Wait until history + vm's output holds `count` lines parse() accepts
    (continuing a QEMU restore first: it ends paused); returns them."""
    deadline = time.monotonic() + timeout
    if vm.needs_cont:
        if vm.wait_loaded() == "paused":
            vm.cmd("cont")
        vm.needs_cont = False
    while True:
        xs = parse(history + vm.output())
        if len(xs) >= count:
            return xs
        check(vm.proc.poll() is None, f"{vm.name}: exited with status {vm.proc.returncode}; "
                                      f"stderr: {vm.stderr()[-400:]}")
        check(time.monotonic() < deadline,
              f"{vm.name}: {len(xs)} lines after {timeout}s, waiting for {count}; "
              f"output tail: {vm.output()[-300:]!r}; stderr: {vm.stderr()[-300:]}")
        time.sleep(0.01)


def wait_passes(vm, history, count, timeout=60.0):
    return wait_counted(vm, history, count, passes, timeout)


def wait_ticks(vm, history, count, timeout=30.0):
    return wait_counted(vm, history, count, ticks, timeout)


# ---- the Linux workload -----------------------------------------------------------------


def linux_args(ctx, disk_name, mem="256M"):
    """The arguments (no binary) of the guest image with a fresh, empty
    64 MiB virtio-blk disk ctx.tmp/disk_name; Skip without a guest image."""
    image, initrd = h.guest_image()
    disk = os.path.join(ctx.tmp, disk_name)
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    argv = h.linux_argv(ctx.emu.bin, image, initrd, mem=mem, extra=[
        *ctx.emu.linux_extra(), "-drive", f"file={disk},format=raw,if=none,id=d0",
        "-device", "virtio-blk-device,drive=d0"])
    return argv[1:]  # MigVM puts the binary first


def linux_prepare(con, boot_timeout):
    """At the guest's shell: an ext2 file system on the disk, mounted on
    /mnt, holding a 1 MiB random before.bin; returns its sha256."""
    h.wait_shell(con, boot_timeout)
    h.run(con, h.MODULES)
    h.run(con, "mke2fs -q /dev/vda && mkdir -p /mnt /tmp && mount -t ext2 /dev/vda /mnt")
    h.run(con, "dd if=/dev/urandom of=/mnt/before.bin bs=64k count=16 2>/dev/null && sync")
    return h.run(con, "sha256sum /mnt/before.bin").split()[0]


def counter_values(text):
    """The values of the COUNTER's complete console lines."""
    return [int(n) for n in re.findall(r"^cnt (\d+)\n", text, re.M)]


def linux_verify(con, want, stop):
    """After the counter ran across saves or hops: the console answers,
    /mnt/before.bin still has sha256 `want`; `stop` (a shell command) ends
    the counter; /mnt/counter holds lines 1..N in order; /mnt is unmounted.
    Returns N."""
    out = h.run(con, "echo alive-$((6*7))")
    check("alive-42" in out, f"the console answered {out!r}")
    got = re.search(r"([0-9a-f]{64})\s+/mnt/before.bin", h.run(con, "sha256sum /mnt/before.bin"))
    check(got and got.group(1) == want, f"/mnt/before.bin changed: {got and got.group(1)} "
                                         f"vs {want}")
    h.run(con, stop)
    out = h.run(con, "awk '$2 != NR {print \"BAD\", NR, $0; exit 1} "
                     "END {print \"lines\", NR}' /mnt/counter")
    m = re.search(r"lines (\d+)", out)
    check(m, f"the counter file: {out.strip()!r}")
    h.run(con, "umount /mnt")
    return int(m.group(1))


def saved_pagepass(ctx, name, path, count=2):
    """A pagepass VM that ran `count` passes, saved to path and killed;
    returns what it printed."""
    with MigVM(ctx, name, pagepass_args()) as vm:
        wait_passes(vm, "", count)
        save_ok(vm, path)
    return vm.output()


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else 0


# ---- main -------------------------------------------------------------------------------


def main(doc, cases, prefix, env, loops_default, loops_help, banner, logs_by_case=True):
    """The command line and case loop of state_test and migrate_test:
    --only (env[cases]), --loops (env[loops]), --vm godwit|qemu (env[vm]);
    SKIP every case when the emulator or the oracle guest is missing.
    banner(loops) follows the emulator on the first line; a FAIL names the
    logs PREFIX-CASE* (or, logs_by_case False, PREFIX-*)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--only", default=os.environ.get(env["cases"], ""),
                    help="comma-separated case names: " + ",".join(n for n, _ in cases))
    ap.add_argument("--loops", type=int, default=int(os.environ.get(env["loops"], loops_default)),
                    help=loops_help)
    ap.add_argument("--vm", choices=("godwit", "qemu"), default=os.environ.get(env["vm"], "godwit"))
    a = ap.parse_args()
    try:
        cases = h.selected(cases, a.only)
    except ValueError as e:
        ap.error(str(e))
    godwit = h.godwit_vm()
    binary = godwit if a.vm == "godwit" else "qemu-system-riscv64"
    rep = h.Report()
    why = None
    if a.vm == "godwit" and not os.access(godwit, os.X_OK):
        why = f"{godwit} is not built (make)"
    elif a.vm == "qemu" and not shutil.which(binary):
        why = "qemu-system-riscv64 is not installed"
    elif not os.path.exists(PAGEPASS):
        r = subprocess.run(["make", "-C", ROOT, "build/guest/mig_pagepass.elf"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            why = "cannot build mig_pagepass.elf: " + r.stdout.strip()[-200:]
    if why:
        for name, _ in cases:
            rep.skip(name, why)
        return rep.summary()
    print(f"{prefix}_test: {a.vm} ({binary}), {banner(a.loops)}", flush=True)
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"godwit-{prefix}-") as tmp:
        ctx = Ctx(prefix, Emu(a.vm, binary), h.log_dir(), tmp, a.loops,
                  float(os.environ.get("STATE_TEST_TIMEOUT", "240")))
        for name, fn in cases:
            rep.case(name, fn, ctx, hint=f"logs: {ctx.log(name if logs_by_case else '')}*")
    print(f"{prefix}_test: {time.monotonic() - t_all:.0f}s")
    return rep.summary()
