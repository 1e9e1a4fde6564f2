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
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
from harness import Console, Skip, check, console_text  # noqa: E402

AGENT = "org.godwit.agent.0"
SERIAL = ["-device", "virtio-serial-device,id=vser0",
          "-device", f"virtserialport,name={AGENT},id=agent0",
          "-device", "virtserialport,name=org.example.other"]


def case_agent_port(ctx):
    with Console(ctx.linux_argv(SERIAL), log=ctx.log("agent-port"), timeout=60) as con:
        h.wait_shell(con, ctx.boot_timeout, firmware=True)
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
        while "agent: ready" not in console_text(con) and time.monotonic() < deadline:
            out = con.run("ps | grep -c '[g]odwit-agent'")
            time.sleep(1)
        check("agent: ready" in console_text(con), "godwit-vm logged the agent's 'ready'", con)
        out = con.run("ps | grep -c '[g]odwit-agent'")
        check(out.strip() == "1", f"one agent runs: {out!r}", con)
        # Nothing on the host serves port 2: reads end at once (EOF).
        out = con.run("timeout 5 cat /dev/vport0p2; echo rc=$?")
        check("rc=0" in out, f"unserved port reads EOF: {out!r}", con)
        h.poweroff(con)


def case_no_port(ctx):
    with Console(ctx.linux_argv(), log=ctx.log("no-port"), timeout=60) as con:
        h.wait_shell(con, ctx.boot_timeout, firmware=True)
        out = con.run("sleep 1; ps | grep -c '[g]odwit-agent'")
        check(out.split()[0] == "0", f"no agent without the port: {out!r}", con)
        check("agent:" not in console_text(con), "no agent messages", con)
        h.poweroff(con)


def case_powerdown_qmp(ctx):
    sock = os.path.join(ctx.tmp, "qmp.sock")
    argv = ctx.linux_argv(SERIAL)
    probe = subprocess.run(argv[:1] + ["-qmp", f"unix:{sock}x,server=on,wait=off",
                                       "-M", "virt,dumpdtb=" + os.path.join(ctx.tmp, "x.dtb")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if "qmp" in probe.stdout.lower() and probe.returncode != 0:
        raise Skip("godwit-vm has no -qmp yet: " + probe.stdout.strip()[-200:])
    with h.VM("powerdown-qmp", argv, out=ctx.log("powerdown-qmp"), qmp=sock, console=True,
              timeout=60) as vm:
        con = vm.con
        h.wait_shell(con, ctx.boot_timeout, firmware=True)
        deadline = time.monotonic() + 30
        while "agent: ready" not in console_text(con) and time.monotonic() < deadline:
            con.run("true")
            time.sleep(0.5)
        check("agent: ready" in console_text(con), "the agent is ready", con)
        cmds = vm.cmd("query-commands")
        names = {c.get("name") for c in cmds} if isinstance(cmds, list) else set()
        if "system_powerdown" not in names:
            raise Skip("godwit-vm's QMP has no system_powerdown yet")
        vm.cmd("system_powerdown")
        con.expect(r"agent: powerdown requested", 60)
        con.expect(r"The system is going down NOW", 60)
        con.expect(r"reboot: Power down", 60)
        status = con.wait(60)
        check(status == 0, f"godwit-vm ended with status {status}", con)
        ev = vm.qmp.wait_event("SHUTDOWN", timeout=10)
        check(ev is not None, "SHUTDOWN event", con)


CASES = [("agent-port", case_agent_port),
         ("no-port", case_no_port),
         ("powerdown-qmp", case_powerdown_qmp)]


def main():
    return h.linux_main("agent", CASES, "AGENT_TEST_CASES", "BOOT_TEST_TIMEOUT")


if __name__ == "__main__":
    h.main(main)
