#!/usr/bin/env python3
"""Boot Debian's riscv64 kernel + the godwit busybox initramfs on godwit-vm.

Each case starts godwit-vm on a pty (guest/console.py), waits for the
guest's shell and types commands the way a person would:

  boot-smp1/2/4  OpenSBI -> Linux -> /init -> shell with -smp N: `nproc`
                 says N, /proc/cpuinfo lists N harts with our ISA, an echo
                 round trip, the RTC gave the guest the host's wall clock,
                 the UART interrupt is on the PLIC, IPIs reached every hart,
                 cpu1 goes offline and online again (SBI HSM stop/start),
                 then `poweroff` ends godwit-vm with status 0
  reboot         `reboot` resets the whole machine (firmware, kernel, initrd
                 and DTB reloaded), the shell comes back, then poweroff
  escape-quit    Ctrl-A x on the -nographic console ends godwit-vm (status 0)
  tty-restore    the raw terminal is restored after SIGTERM, SIGSEGV, SIGQUIT
                 and Ctrl-A x
  dtb-vs-qemu    -machine dumpdtb= output equals QEMU 7.2's node by node and
                 property by property, except the documented gaps (no pmu,
                 fw-cfg, flash, platform-bus; our riscv,isa; random seeds)
  serial-unix    -serial unix:PATH,server=on,wait=off: the console on a
                 socket, one client, commands typed through it

Prints `PASS name` / `FAIL name` / `SKIP name: reason` and a last line
`N passed, N failed, N skipped`; exits 1 if anything failed.  The guest
image (~/.cache/godwit/guest/Image and initrd.img) is built with
guest/build.sh when missing (tests/lib/harness.py); if that is impossible every case
is skipped (counted, never passed) but dtb-vs-qemu, which needs no image.
Environment:
  BUILD                 build directory holding godwit-vm (build/release)
  GODWIT_GUEST_IMAGE    kernel Image to boot (default: the cache above)
  GODWIT_GUEST_INITRD   initramfs to boot
  BOOT_TEST_CASES       comma-separated subset of the names above
  BOOT_TEST_TIMEOUT     seconds allowed to reach the shell (default 240)
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
from harness import PROMPT, Console, check  # noqa: E402


def shell(con, cmd, timeout=60):
    """Type a command, return its output (echo and prompt removed)."""
    con.sendline(cmd)
    con.expect(PROMPT, timeout)
    out = con.before.replace("\x1b[6n", "")
    nl = out.find("\n")
    return out[nl + 1:] if nl >= 0 else ""


def case_boot(ctx, smp):
    with Console(ctx.linux_argv(smp=smp), log=ctx.log(f"smp{smp}"), timeout=60) as con:
        h.wait_shell(con, ctx.boot_timeout, firmware=True)
        out = shell(con, "nproc")
        check(out.strip() == str(smp), f"nproc said {out.strip()!r}, want {smp}", con)
        info = shell(con, "cat /proc/cpuinfo")
        harts = re.findall(r"^processor\s*:\s*(\d+)", info, re.M)
        check(len(harts) == smp, f"/proc/cpuinfo lists {len(harts)} harts", con)
        check("rv64imafdc" in info, "/proc/cpuinfo isa line", con)
        out = shell(con, "echo round-$((6*7))-trip")
        check("round-42-trip" in out, f"echo round trip gave {out!r}", con)
        out = shell(con, "date +%s")
        guest_now = int(re.search(r"\d+", out).group(0)) if re.search(r"\d+", out) else 0
        check(abs(guest_now - time.time()) < 300,
              f"guest clock {guest_now} vs host {int(time.time())}: RTC not read", con)
        out = shell(con, "grep -c . /proc/interrupts; grep ttyS0 /proc/interrupts")
        check("ttyS0" in out, "the UART interrupt is registered: " + out, con)
        if smp > 1:
            # IPIs (SBI IPI -> OpenSBI -> CLINT msip) reached every hart, and
            # a hart can be stopped and started again through SBI HSM.
            out = shell(con, "grep 'Function call' /proc/interrupts")
            counts = [int(x) for x in out.split()[1:1 + smp] if x.isdigit()]
            check(len(counts) == smp and all(counts), f"IPIs per hart: {out!r}", con)
            out = shell(con, "echo 0 > /sys/devices/system/cpu/cpu1/online; nproc")
            check(out.strip().splitlines()[-1] == str(smp - 1), f"cpu1 offline: {out!r}", con)
            out = shell(con, "echo 1 > /sys/devices/system/cpu/cpu1/online; nproc")
            check(out.strip().splitlines()[-1] == str(smp), f"cpu1 online again: {out!r}", con)
        h.poweroff(con)


def case_reboot(ctx):
    with Console(ctx.linux_argv(smp=2), log=ctx.log("reboot"), timeout=60) as con:
        h.wait_shell(con, ctx.boot_timeout, firmware=True)
        shell(con, "echo before-reboot > /dev/null")
        con.sendline("reboot")
        con.expect(r"reboot: Restarting system", 60)
        h.wait_shell(con, ctx.boot_timeout, firmware=True)
        out = shell(con, "nproc")
        check(out.strip() == "2", f"after reboot nproc said {out.strip()!r}", con)
        h.poweroff(con)


def case_escape(ctx):
    with Console(ctx.linux_argv(smp=1), log=ctx.log("escape"), timeout=30) as con:
        con.expect(r"OpenSBI v\d", 30)
        con.send(b"\x01h")
        con.expect(r"C-a x\s+exit emulator", 10)
        con.send(b"\x01x")
        con.expect(r"QEMU: Terminated", 10)
        status = con.wait(10)
        check(status == 0, f"Ctrl-A x: status {status}", con)


def case_tty_restore(ctx):
    """-nographic makes the terminal raw; every way out puts it back."""
    import signal
    import termios
    for how in ("SIGTERM", "SIGSEGV", "SIGQUIT", "ctrl-a-x"):
        with Console(ctx.linux_argv(smp=1), log=ctx.log("tty-restore"), timeout=30) as con:
            before = termios.tcgetattr(con.fd)
            con.expect(r"OpenSBI v\d", 30)
            raw = termios.tcgetattr(con.fd)
            check(not (raw[3] & (termios.ECHO | termios.ICANON | termios.ISIG)),
                  f"{how}: terminal not raw while running", con)
            if how == "ctrl-a-x":
                con.send(b"\x01x")
            else:
                con.proc.send_signal(getattr(signal, how))
            con.wait(20)
            after = termios.tcgetattr(con.fd)
            check(after[3] == before[3] and after[0] == before[0],
                  f"{how}: terminal not restored (lflag {after[3]:#x} vs {before[3]:#x})", con)


def case_serial_unix(ctx):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "console.sock")
        argv = ctx.linux_argv(smp=1)
        argv[argv.index("-nographic")] = "-display"
        argv.insert(argv.index("-display") + 1, "none")
        argv += ["-serial", f"unix:{path},server=on,wait=off"]
        # the VM's own output in one log, what the socket carried in another
        with h.VM("serial-unix", argv, out=ctx.log("serial-unix")) as vm, \
                open(ctx.log("serial-unix-socket"), "wb") as logf:
            proc = vm.proc
            for _ in range(100):
                if os.path.exists(path):
                    break
                time.sleep(0.05)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            buf = b""
            deadline = time.monotonic() + ctx.boot_timeout

            def wait_for(pattern):
                nonlocal buf
                while not re.search(pattern, buf.decode("utf-8", "replace")):
                    left = deadline - time.monotonic()
                    check(left > 0 and proc.poll() is None,
                          f"no {pattern!r} on the socket; got:\n" + buf[-1500:].decode(
                              "utf-8", "replace"))
                    s.settimeout(left)
                    data = s.recv(65536)
                    check(data != b"", "socket closed")
                    buf += data
                    logf.write(data)
                m = re.search(pattern, buf.decode("utf-8", "replace"))
                buf = buf.decode("utf-8", "replace")[m.end():].encode()

            wait_for(PROMPT)
            s.sendall(b"echo sock-$((40+2))\r")
            wait_for(r"sock-42")
            s.sendall(b"poweroff\r")
            check(vm.exit_status(60) == 0, "poweroff over the socket console")
            s.close()


def fdt_parse(blob):
    """Flattened device tree -> {node path: {property: bytes}} (DT spec v0.4 §5)."""
    import struct
    magic, _size, off_struct, off_strings = struct.unpack_from(">IIII", blob, 0)
    check(magic == 0xd00dfeed, "not a DTB")

    def cstr(off):
        return blob[off:blob.index(b"\0", off)].decode()

    nodes, path, pos = {}, [], off_struct
    while True:
        tok, = struct.unpack_from(">I", blob, pos)
        pos += 4
        if tok == 1:  # BEGIN_NODE
            name = cstr(pos)
            pos += (len(name) + 4) & ~3
            path.append(name)
            nodes["/".join(path) or "/"] = {}
        elif tok == 2:  # END_NODE
            path.pop()
        elif tok == 3:  # PROP
            length, nameoff = struct.unpack_from(">II", blob, pos)
            pos += 8
            nodes["/".join(path) or "/"][cstr(off_strings + nameoff)] = blob[pos:pos + length]
            pos += (length + 3) & ~3
        elif tok == 4:  # NOP
            continue
        elif tok == 9:  # END
            return nodes
        else:
            raise AssertionError(f"bad FDT token {tok}")


def case_dtb_vs_qemu(ctx):
    """-machine dumpdtb: ours equals QEMU 7.2's but for the documented gaps."""
    with tempfile.TemporaryDirectory() as tmp:
        kern, rd = os.path.join(tmp, "k.bin"), os.path.join(tmp, "rd.img")
        with open(kern, "wb") as f:
            f.write(b"\0" * 4096)
        with open(rd, "wb") as f:
            f.write(b"\x5a" * 100001)
        trees = []
        for prog in (ctx.vm, "qemu-system-riscv64"):
            out = os.path.join(tmp, os.path.basename(prog) + ".dtb")
            r = subprocess.run([prog, "-M", f"virt,dumpdtb={out}", "-m", "256M", "-smp", "3",
                                "-kernel", kern, "-initrd", rd, "-append", "console=ttyS0 x=1"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            check(r.returncode == 0, f"{prog} dumpdtb: {r.stdout}")
            trees.append(fdt_parse(open(out, "rb").read()))
        ours, qemu = trees
        for node in ("pmu", "fw-cfg@10100000", "flash@20000000", "platform-bus@4000000"):
            check(qemu.pop("/" + node, None) is not None, f"QEMU has /{node}")
        for t in trees:
            check(len(t["/chosen"].pop("rng-seed", b"")) == 32, "32-byte rng-seed")
            for i in range(3):
                isa = t[f"/cpus/cpu@{i}"].pop("riscv,isa")
            check(isa.startswith(b"rv64imafdc"), f"isa {isa}")
        for node in sorted(set(ours) | set(qemu)):
            check(node in ours, f"we lack {node}")
            check(node in qemu, f"QEMU lacks our {node}")
            check(ours[node] == qemu[node],
                  f"{node} differs:\n  ours {ours[node]}\n  qemu {qemu[node]}")


CASES = [("dtb-vs-qemu", case_dtb_vs_qemu),
         ("boot-smp1", lambda c: case_boot(c, 1)),
         ("boot-smp2", lambda c: case_boot(c, 2)),
         ("boot-smp4", lambda c: case_boot(c, 4)),
         ("reboot", case_reboot),
         ("escape-quit", case_escape),
         ("tty-restore", case_tty_restore),
         ("serial-unix", case_serial_unix)]


def main():
    return h.linux_main("boot", CASES, "BOOT_TEST_CASES", "BOOT_TEST_TIMEOUT",
                        no_image_ok=("dtb-vs-qemu",), log_name=lambda n: n.replace("boot-", ""))


if __name__ == "__main__":
    h.main(main)
