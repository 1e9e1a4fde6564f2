#!/usr/bin/env python3
"""The guest agent channel: virtio-serial + the image's godwit-agent.

Each case boots Debian's kernel + the godwit initramfs on godwit-vm on a
pty (guest/console.py):

  agent-port       -device virtio-serial-device with the agent port and a
                   second port: /sys/class/virtio-ports names both, the
                   device nodes exist, the agent runs and said "ready"
                   (godwit-vm logs the guest's lines), the unserved port
                   reads end-of-file at once; then poweroff, status 0
  no-port          without the device the agent exits silently and the
                   boot is unchanged
  powerdown-qmp    -qmp unix:SOCK,server=on,wait=off; QMP system_powerdown
                   -> the agent runs poweroff: the guest prints its shutdown
                   messages, godwit-vm exits 0 and QMP sends SHUTDOWN.
                   SKIP while godwit-vm has no -qmp / system_powerdown or
                   tests/lib/qmp.py does not exist.

Prints `PASS name` / `FAIL name` / `SKIP name: reason` and a last line
`N passed, N failed, N skipped`; exits 1 if anything failed.  Environment
as tests/linux/boot_test.py (BUILD, GODWIT_GUEST_IMAGE/INITRD,
BOOT_TEST_TIMEOUT) plus AGENT_TEST_CASES (comma-separated subset).
"""

import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "guest"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from boot_test import PROMPT, Skip, check, guest_image, reach_shell, vm_argv  # noqa: E402

AGENT = "org.godwit.agent.0"
SERIAL = ["-device", "virtio-serial-device,id=vser0",
          "-device", f"virtserialport,name={AGENT},id=agent0",
          "-device", "virtserialport,name=org.example.other"]


def text(con):
    """Everything the VMM printed so far (guest console and its stderr)."""
    return "".join(con.output)


def case_agent_port(ctx):
    from console import Console
    with Console(vm_argv(ctx.vm, ctx.image, ctx.initrd, 1, SERIAL), log=ctx.log("agent-port"),
                 timeout=60) as con:
        reach_shell(con, ctx.boot_timeout)
        names = con.run("grep . /sys/class/virtio-ports/*/name")
        check(f"/sys/class/virtio-ports/vport0p1/name:{AGENT}" in names,
              f"agent port name in sysfs: {names!r}", con)
        check("/sys/class/virtio-ports/vport0p2/name:org.example.other" in names,
              f"second port name: {names!r}", con)
        out = con.run("ls /dev/vport0p1 /dev/vport0p2")
        check(con.status == 0, f"device nodes: {out!r}", con)
        # The agent opened its port and said so: godwit-vm logged the line
        # (stderr shares the pty), unless it came before the prompt.
        deadline = time.monotonic() + 30
        while "agent: ready" not in text(con) and time.monotonic() < deadline:
            out = con.run("ps | grep -c '[g]odwit-agent'")
            time.sleep(1)
        check("agent: ready" in text(con), "godwit-vm logged the agent's 'ready'", con)
        out = con.run("ps | grep -c '[g]odwit-agent'")
        check(out.strip() == "1", f"one agent runs: {out!r}", con)
        # Nothing on the host serves port 2: reads end at once (EOF).
        out = con.run("timeout 5 cat /dev/vport0p2; echo rc=$?")
        check("rc=0" in out, f"unserved port reads EOF: {out!r}", con)
        con.sendline("poweroff")
        status = con.wait(60)
        check(status == 0, f"poweroff: status {status}", con)


def case_no_port(ctx):
    from console import Console
    with Console(vm_argv(ctx.vm, ctx.image, ctx.initrd, 1), log=ctx.log("no-port"),
                 timeout=60) as con:
        reach_shell(con, ctx.boot_timeout)
        out = con.run("sleep 1; ps | grep -c '[g]odwit-agent'")
        check(out.split()[0] == "0", f"no agent without the port: {out!r}", con)
        check("agent:" not in text(con), "no agent messages", con)
        con.sendline("poweroff")
        status = con.wait(60)
        check(status == 0, f"poweroff: status {status}", con)


def qmp_client():
    """tests/lib/qmp.py, or Skip."""
    try:
        import qmp  # noqa: F401
    except ImportError as e:
        raise Skip(f"tests/lib/qmp.py is not there yet ({e})")
    return qmp


def case_powerdown_qmp(ctx):
    from console import Console
    qmp = qmp_client()
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "qmp.sock")
        argv = vm_argv(ctx.vm, ctx.image, ctx.initrd, 1,
                       SERIAL + ["-qmp", f"unix:{sock},server=on,wait=off"])
        probe = subprocess.run(argv[:1] + ["-qmp", f"unix:{sock}x,server=on,wait=off",
                                           "-M", "virt,dumpdtb=" + os.path.join(tmp, "x.dtb")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if "qmp" in probe.stdout.lower() and probe.returncode != 0:
            raise Skip("godwit-vm has no -qmp yet: " + probe.stdout.strip()[-200:])
        with Console(argv, log=ctx.log("powerdown-qmp"), timeout=60) as con:
            reach_shell(con, ctx.boot_timeout)
            deadline = time.monotonic() + 30
            while "agent: ready" not in text(con) and time.monotonic() < deadline:
                con.run("true")
                time.sleep(0.5)
            check("agent: ready" in text(con), "the agent is ready", con)
            client = qmp.connect(sock)
            try:
                cmds = client.cmd("query-commands")
                names = {c.get("name") for c in cmds} if isinstance(cmds, list) else set()
                if "system_powerdown" not in names:
                    raise Skip("godwit-vm's QMP has no system_powerdown yet")
                client.cmd("system_powerdown")
                con.expect(r"agent: powerdown requested", 60)
                con.expect(r"The system is going down NOW", 60)
                con.expect(r"reboot: Power down", 60)
                status = con.wait(60)
                check(status == 0, f"godwit-vm ended with status {status}", con)
                ev = client.wait_event("SHUTDOWN", timeout=10)
                check(ev is not None, "SHUTDOWN event", con)
            finally:
                close = getattr(client, "close", None)
                if close:
                    close()


class Ctx:
    def __init__(self, vm, image, initrd, logdir, boot_timeout):
        self.vm, self.image, self.initrd = vm, image, initrd
        self.logdir, self.boot_timeout = logdir, boot_timeout

    def log(self, name):
        return os.path.join(self.logdir, f"agent-{name}.log")


def main():
    build = os.environ.get("BUILD", "build/release")
    vm = os.path.join(ROOT, build, "godwit-vm")
    cases = [("agent-port", case_agent_port),
             ("no-port", case_no_port),
             ("powerdown-qmp", case_powerdown_qmp)]
    only = os.environ.get("AGENT_TEST_CASES")
    if only:
        cases = [c for c in cases if c[0] in only.split(",")]
    passed = failed = skipped = 0
    if not os.access(vm, os.X_OK):
        for name, _ in cases:
            print(f"SKIP {name}: {vm} is not built (make)")
        print(f"0 passed, 0 failed, {len(cases)} skipped")
        return 0
    try:
        image, initrd = guest_image()
        no_image = None
    except Skip as e:
        image = initrd = None
        no_image = str(e)
    logdir = os.path.join(ROOT, build, "tests", "linux")
    os.makedirs(logdir, exist_ok=True)
    ctx = Ctx(vm, image, initrd, logdir, float(os.environ.get("BOOT_TEST_TIMEOUT", "240")))
    for name, fn in cases:
        if no_image:
            skipped += 1
            print(f"SKIP {name}: {no_image}", flush=True)
            continue
        t0 = time.monotonic()
        try:
            fn(ctx)
            passed += 1
            print(f"PASS {name} ({time.monotonic() - t0:.1f}s)", flush=True)
        except Skip as e:
            skipped += 1
            print(f"SKIP {name}: {e}", flush=True)
        except Exception as e:  # a failed check, a console timeout, ...
            failed += 1
            print(f"FAIL {name} ({time.monotonic() - t0:.1f}s): {e}", flush=True)
            print(f"     log: {ctx.log(name)}", flush=True)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
