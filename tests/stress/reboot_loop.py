#!/usr/bin/env python3
"""Stress the `reboot` case of tests/linux/boot_test.py: run it N times.

Not run by CI (200 runs take about an hour).  Each run starts godwit-vm
with -smp 2 on a pty and a QMP socket, waits for the shell, types
`reboot`, waits for the shell to come back, checks `nproc` and powers off;
every step has a timeout.  A run that misses a step counts as hung.  The
last line says `hung K of N` (exit status 1 if K > 0).

For each hang, OUT/run-NNN/ keeps:
  console.log   every byte the guest printed
  step          the step that timed out and the last console line
  gdb.txt       the host threads' backtraces; each hart's pc, privilege,
                WFI flag, M and S trap CSRs, satp, x1-x31; the CLINT's
                msip and mtimecmp (needs gdb and ptrace rights)
  qmp.txt       query-status and query-cpus-fast
  state.gwst    the machine state (QMP `migrate file:`), which
                `godwit-vm ... -incoming file:state.gwst` can resume
Passing runs keep only their console log when --keep-logs is given.

    tests/stress/reboot_loop.py [-n 200] [--minutes M] [--timeout 120]
                                [--out DIR] [--vm build/release/godwit-vm] [--qemu]

--qemu runs the same loop on qemu-system-riscv64 (no diagnostics but the
console log) to tell guest behaviour from ours.  The guest image is the one
boot_test.py uses (guest/build.sh --print-paths).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

from harness import MARKER, PROMPT, guest_image  # noqa: E402
from console import Console, ConsoleError  # noqa: E402
import qmp  # noqa: E402

GDB_SCRIPT = r"""
set pagination off
thread apply all bt 8
frame function virt_run
printf "runstate %d requests %d\n", vm->runstate, vm->requests
set $i = 0
while $i < vm->nharts
  set $h = vm->harts[$i]
  printf "hart %d: pc 0x%lx priv %d wfi %d instret %lu\n", $i, $h->pc, $h->priv, \
    vm->hart_wfi[$i], $h->instret
  printf "  mstatus 0x%lx mie 0x%lx mip_hw 0x%lx mip_sw 0x%lx mideleg 0x%lx\n", \
    $h->mstatus, $h->mie, $h->mip_hw, $h->mip_sw, $h->mideleg
  printf "  mtvec 0x%lx mepc 0x%lx mcause 0x%lx mtval 0x%lx\n", \
    $h->mtvec, $h->mepc, $h->mcause, $h->mtval
  printf "  stvec 0x%lx sepc 0x%lx scause 0x%lx stval 0x%lx satp 0x%lx\n", \
    $h->stvec, $h->sepc, $h->scause, $h->stval, $h->satp
  set $r = 1
  while $r < 32
    printf "  x%d 0x%lx", $r, $h->x[$r]
    if $r % 4 == 3
      printf "\n"
    end
    set $r = $r + 1
  end
  printf "\n  clint msip %d mtimecmp 0x%lx mtip %d\n", vm->clint->st.harts[$i].msip, \
    vm->clint->st.harts[$i].mtimecmp, vm->clint->mtip[$i]
  set $i = $i + 1
end
printf "clint delta 0x%lx base_ns %lu frozen %d\n", vm->clint->st.delta, vm->clint->base_ns, \
  vm->clint->frozen
detach
quit
"""


def vm_argv(args, image, initrd, qmp_path):
    prog = "qemu-system-riscv64" if args.qemu else args.vm
    argv = [prog, "-M", "virt", "-m", "256M", "-smp", "2", "-nographic", "-kernel", image,
            "-initrd", initrd, "-append", "console=ttyS0"]
    if not args.qemu:
        argv += ["-qmp", f"unix:{qmp_path},server=on,wait=off"]
    return argv


def reach_shell(con, timeout):
    con.expect(r"OpenSBI v\d", timeout)
    con.expect(r"Linux version", timeout)
    con.expect(MARKER, timeout)
    con.expect(PROMPT, timeout)


def diagnose(con, qmp_path, rundir):
    """Collect what a hung VM can tell: gdb, QMP, a state file."""
    if shutil.which("gdb"):
        script = os.path.join(rundir, "gdb.cmds")
        with open(script, "w") as f:
            f.write(GDB_SCRIPT)
        r = subprocess.run(["gdb", "-q", "-batch", "-nx", "-p", str(con.proc.pid), "-x", script],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=120)
        with open(os.path.join(rundir, "gdb.txt"), "w") as f:
            f.write(r.stdout)
    try:
        with qmp.connect(qmp_path, timeout=10) as q, \
                open(os.path.join(rundir, "qmp.txt"), "w") as f:
            f.write(f"query-status {q.cmd('query-status')}\n")
            f.write(f"query-cpus-fast {q.cmd('query-cpus-fast')}\n")
            q.cmd("migrate", uri="file:" + os.path.join(rundir, "state.gwst"))
            for _ in range(300):
                st = q.cmd("query-migrate").get("status")
                if st in ("completed", "failed"):
                    break
                time.sleep(0.1)
            f.write(f"migrate to state.gwst: {st}\n")
    except (OSError, qmp.QMPError) as e:
        with open(os.path.join(rundir, "qmp.txt"), "a") as f:
            f.write(f"QMP failed: {e}\n")


def one_run(args, image, initrd, rundir, tmp):
    """Returns None if the run passed, else the step that failed."""
    qmp_path = os.path.join(tmp, "qmp.sock")
    log = os.path.join(rundir, "console.log")
    step = "boot"
    with Console(vm_argv(args, image, initrd, qmp_path), log=log, timeout=args.timeout) as con:
        try:
            reach_shell(con, args.timeout)
            step = "shell before reboot"
            con.run("echo before-reboot", timeout=60)
            step = "reboot"
            con.sendline("reboot")
            con.expect(r"reboot: Restarting system", 60)
            step = "boot after reboot"
            reach_shell(con, args.timeout)
            step = "nproc after reboot"
            out = con.run("nproc", timeout=60)
            if out.strip() != "2":
                return f"{step}: nproc said {out.strip()!r}"
            step = "poweroff"
            con.sendline("poweroff")
            status = con.wait(60)
            if status != 0:
                return f"{step}: status {status}"
            return None
        except ConsoleError as e:
            last = [ln for ln in con.tail(4000).splitlines() if ln.strip()][-1:] or [""]
            with open(os.path.join(rundir, "step"), "w") as f:
                f.write(f"{step}\nlast line: {last[0]}\n{e}\n")
            if con.proc.poll() is None and not args.qemu:
                diagnose(con, qmp_path, rundir)
            return f"{step} (last line: {last[0].strip()[:100]!r})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=200, help="runs (default 200)")
    ap.add_argument("--timeout", type=float, default=120,
                    help="seconds allowed per boot step (default 120)")
    ap.add_argument("--vm", default=os.path.join(
        ROOT, os.environ.get("BUILD", "build/release"), "godwit-vm"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "stress-reboot"),
                    help="where logs of hung runs go (default build/stress-reboot)")
    ap.add_argument("--qemu", action="store_true", help="run on qemu-system-riscv64 instead")
    ap.add_argument("--keep-logs", action="store_true", help="keep passing runs' logs too")
    ap.add_argument("--minutes", type=float, default=0,
                    help="start no run after this many minutes (0: no limit)")
    args = ap.parse_args()

    image, initrd = guest_image()
    os.makedirs(args.out, exist_ok=True)
    hung = 0
    started = time.monotonic()
    runs = 0
    for i in range(1, args.n + 1):
        if args.minutes and time.monotonic() - started > args.minutes * 60:
            print(f"stopping after {args.minutes:g} minutes")
            break
        runs = i
        rundir = os.path.join(args.out, f"run-{i:03d}")
        shutil.rmtree(rundir, ignore_errors=True)
        os.makedirs(rundir)
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            failed = one_run(args, image, initrd, rundir, tmp)
        took = time.monotonic() - t0
        if failed:
            hung += 1
            print(f"run {i}: HUNG at {failed} ({took:.0f}s), see {rundir}", flush=True)
        else:
            print(f"run {i}: ok ({took:.0f}s)", flush=True)
            if not args.keep_logs:
                shutil.rmtree(rundir)
    print(f"hung {hung} of {runs} ({time.monotonic() - started:.0f}s)")
    return 1 if hung else 0


if __name__ == "__main__":
    sys.exit(main())
