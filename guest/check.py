#!/usr/bin/env python3
"""Boot the guest image under a VMM and check its console basics.

Boots ${GODWIT_CACHE}/guest/{Image,initrd.img} (guest/build.sh builds them)
under qemu-system-riscv64 by default, or under any VMM taking QEMU's command
line (--vmm build/release/godwit-vm), and checks over the serial console:
the /init marker, a shell prompt, nproc, uname -a, the controlling tty,
optionally reboot, and that poweroff ends the VMM with status 0. Prints the
time from start to the marker and to the prompt, and ends with the summary
line "N passed, N failed".
"""

import argparse
import os
import re
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from console import Console, ConsoleError  # noqa: E402

MARKER = r"godwit-guest: init started"


def guest_paths():
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([os.path.join(here, "build.sh"), "--print-paths"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    paths = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        paths[key] = shlex.split(value)[0] if value else ""
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vmm", default="qemu-system-riscv64", help="VMM binary (QEMU command line)")
    ap.add_argument("--bios", default="default",
                    help="-bios argument (default: default; empty: no -bios option)")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("-m", "--memory", default="512M")
    ap.add_argument("--kernel", help="kernel Image (default: from guest/build.sh)")
    ap.add_argument("--initrd", help="initramfs (default: from guest/build.sh)")
    ap.add_argument("--append", help="kernel command line (default: from guest/build.sh)")
    ap.add_argument("--extra", default="", help="more VMM arguments (shell words)")
    ap.add_argument("--reboot", action="store_true", help="also check that reboot boots again")
    ap.add_argument("-t", "--timeout", type=float, default=120.0,
                    help="seconds for boot to the prompt (default 120)")
    ap.add_argument("-l", "--log", help="console log file")
    ap.add_argument("-v", "--verbose", action="store_true", help="copy the console to stdout")
    args = ap.parse_args()

    if not (args.kernel and args.initrd and args.append is not None):
        paths = guest_paths()
        args.kernel = args.kernel or paths["GODWIT_GUEST_IMAGE"]
        args.initrd = args.initrd or paths["GODWIT_GUEST_INITRD"]
        if args.append is None:
            args.append = paths["GODWIT_GUEST_APPEND"]
    cmd = [args.vmm, "-M", "virt", "-m", args.memory, "-smp", str(args.smp), "-nographic"]
    cmd += ["-bios", args.bios] if args.bios else []
    cmd += ["-kernel", args.kernel, "-initrd", args.initrd, "-append", args.append]
    cmd += shlex.split(args.extra)
    print("# " + " ".join(shlex.quote(a) for a in cmd), flush=True)

    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print("%s - %s" % ("ok" if ok else "FAIL", what), flush=True)
        if ok:
            passed += 1
        else:
            failed += 1
        return ok

    con = Console(cmd, log=args.log, echo=args.verbose, timeout=30)
    try:
        def boot(label, t0):
            con.expect(MARKER, timeout=args.timeout)
            t_marker = con.elapsed() - t0
            con.expect(Console.PROMPT, timeout=args.timeout)
            check(True, "%s: marker after %.2fs, shell prompt after %.2fs" % (
                label, t_marker, con.elapsed() - t0))

        boot("boot", 0.0)
        nproc = con.run("nproc").strip()
        check(nproc == str(args.smp), "nproc = %r (expected %d)" % (nproc, args.smp))
        uname = con.run("uname -a").strip()
        check(re.search(r"^Linux godwit-guest \S+ .* riscv64 GNU/Linux$", uname, re.M) is not None,
              "uname -a = %r" % uname)
        tty = con.run("tty").strip()
        check(tty in ("/dev/ttyS0", "/dev/hvc0"), "console shell has a controlling tty (%s)" % tty)
        mods = con.run("cut -d' ' -f1 /proc/modules | sort | tr '\\n' ' '").strip()
        check("virtio_mmio" in mods.split(), "modules loaded: %s" % mods)
        if args.reboot:
            t0 = con.elapsed()
            con.sendline("reboot")
            boot("reboot", t0)
        con.sendline("poweroff")
        t0 = con.elapsed()
        status = con.wait(timeout=60)
        check(status == 0, "poweroff: VMM exited with status %d after %.2fs" % (
            status, con.elapsed() - t0))
    except ConsoleError as e:
        check(False, str(e))
    finally:
        con.close()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
