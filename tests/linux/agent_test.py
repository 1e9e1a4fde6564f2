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
  agent-qmp        one boot: x-godwit-agent-ping answers with a small "ms";
                   x-godwit-agent-set-time to 1 h in the past puts the
                   guest's `date +%s` ~1 h behind the host, then without
                   "time" back within 2 s; bad arguments, a time the guest
                   refuses (the guest's reason in the error), the agent's
                   own malformed-time check (its settime function run in
                   the guest shell); a stopped agent: the ping times out,
                   its late pong does not answer the next ping; the agent
                   killed: "not connected"
  agent-qmp-nodev  no boot (-S): ping without the agent port -> "no guest
                   agent port"; with the port but not running -> refused

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


def agent_pid(con):
    out = h.run(con, "ps | grep '[g]odwit-agent' | awk '{print $1}'")
    pids = out.split()
    check(len(pids) == 1 and pids[0].isdigit(), f"one agent process: {out!r}", con)
    return pids[0]


def qmp_error(vm, name, args=None):
    """The desc of the QMP error name(args) must give."""
    try:
        r = vm.cmd(name, args or {})
    except h.qmp.QMPError as e:
        return e.desc
    raise AssertionError(f"{name} {args}: expected an error, got {r!r}")


def case_agent_qmp(ctx):
    sock = os.path.join(ctx.tmp, "qmp-agent.sock")
    with h.VM("agent-qmp", ctx.linux_argv(SERIAL), out=ctx.log("agent-qmp"), qmp=sock,
              console=True, timeout=60) as vm:
        con = vm.con
        h.wait_shell(con, ctx.boot_timeout, firmware=True)
        deadline = time.monotonic() + 30
        while "agent: ready" not in console_text(con) and time.monotonic() < deadline:
            con.run("true")
            time.sleep(0.5)
        check("agent: ready" in console_text(con), "the agent is ready", con)

        r = vm.cmd("x-godwit-agent-ping")
        check(isinstance(r.get("ms"), int) and 0 <= r["ms"] < 500, f"ping: {r!r}", con)
        r = vm.cmd("x-godwit-agent-ping", {"timeout": 5000})
        check(isinstance(r.get("ms"), int) and r["ms"] < 500, f"ping timeout=5000: {r!r}", con)

        out = con.run("grep -c settime /usr/sbin/godwit-agent")
        if out.strip().splitlines()[-1:] == ["0"]:
            raise Skip("the guest image's agent predates settime: rebuild it (guest/build.sh)")

        # 1 h in the past, then the host's time
        past = time.time_ns() - 3600 * 10**9
        r = vm.cmd("x-godwit-agent-set-time", {"time": past, "timeout": 5000})
        check(isinstance(r.get("ms"), int), f"set-time: {r!r}", con)
        guest = int(h.run(con, "date +%s").strip().splitlines()[-1])
        lag = time.time() - guest
        check(3595 <= lag <= 3605, f"guest clock {lag:.1f} s behind the host (want ~3600)", con)
        r = vm.cmd("x-godwit-agent-set-time")
        guest = int(h.run(con, "date +%s").strip().splitlines()[-1])
        lag = time.time() - guest
        check(abs(lag) <= 2, f"after set-time without time: {lag:.1f} s off the host", con)

        # arguments QMP refuses
        for args, want in (({"timeout": 0}, "'timeout'"), ({"timeout": 10001}, "'timeout'"),
                           ({"timeout": "1"}, "'timeout'"), ({"time": -1}, "'time'"),
                           ({"time": 1.5}, "'time'"), ({"bogus": 1}, "'bogus'")):
            desc = qmp_error(vm, "x-godwit-agent-set-time", args)
            check(want in desc, f"set-time {args}: {desc!r}", con)
        desc = qmp_error(vm, "x-godwit-agent-ping", {"time": 1})
        check("'time'" in desc, f"ping with time: {desc!r}", con)
        # a time the guest's kernel refuses (after 2232): the guest's reason
        desc = qmp_error(vm, "x-godwit-agent-set-time", {"time": 9 * 10**18, "timeout": 5000})
        check(desc.startswith("the guest agent could not set the time: "), f"refused: {desc!r}",
              con)
        guest = int(h.run(con, "date +%s").strip().splitlines()[-1])
        check(abs(time.time() - guest) <= 3, "the clock is unchanged after a refusal", con)
        # the agent's own check of malformed times, in the real guest shell
        h.run(con, "sed -n '/^settime()/,/^}/p' /usr/sbin/godwit-agent > /tmp/st.sh")
        for bad in ("abc", "1.2.3", ".5", "5.", "-5", "1e9", "1234567890123", "1.1234567890",
                    "12 34"):
            out = h.run(con, f". /tmp/st.sh; settime '{bad}'")
            check(out.strip().endswith("error settime bad time"), f"settime {bad!r}: {out!r}",
                  con)

        # a stopped agent: timeout; its late pong must not answer the next ping
        pid = agent_pid(con)
        h.run(con, f"kill -STOP {pid}")
        t0 = time.monotonic()
        desc = qmp_error(vm, "x-godwit-agent-ping", {"timeout": 300})
        took = time.monotonic() - t0
        check(desc == "the guest agent did not answer within 300 ms", f"stopped: {desc!r}", con)
        check(took < 2, f"the timeout took {took:.2f} s", con)
        check(vm.cmd("query-status")["status"] == "running", "QMP still serves", con)
        h.run(con, f"kill -CONT {pid}")
        for _ in range(3):
            r = vm.cmd("x-godwit-agent-ping")
            check(isinstance(r.get("ms"), int), f"ping after the stale pong: {r!r}", con)
        # a QMP client waiting on the agent does not block another client
        h.run(con, f"kill -STOP {pid}")
        other = h.qmp.connect(sock, 10)
        try:
            other.send_raw(b'{"execute": "x-godwit-agent-ping", "arguments": {"timeout": 2000},'
                           b' "id": "w"}{"execute": "query-status", "id": "after"}\n')
            t0 = time.monotonic()
            st = vm.cmd("query-status")["status"]
            check(st == "running" and time.monotonic() - t0 < 1,
                  "another client is served while one waits for the agent", con)
            m = other.recv(10)
            took = time.monotonic() - t0
            check(m.get("id") == "w" and "did not answer within 2000 ms" in
                  m.get("error", {}).get("desc", ""), f"the waiting client's reply: {m!r}", con)
            check(1.5 < took < 4, f"its timeout after {took:.2f} s", con)
            m = other.recv(10)
            check(m.get("id") == "after" and m["return"]["status"] == "running",
                  f"its next request is answered after it, in order: {m!r}", con)
        finally:
            other.close()
        h.run(con, f"kill -CONT {pid}")
        r = vm.cmd("x-godwit-agent-ping")
        check(isinstance(r.get("ms"), int), f"ping after the second stale pong: {r!r}", con)

        # the agent killed: the port is closed
        h.run(con, f"kill {pid}")
        time.sleep(0.5)
        desc = qmp_error(vm, "x-godwit-agent-ping")
        check(desc == "the guest agent is not connected", f"agent killed: {desc!r}", con)
        h.poweroff(con)


def case_agent_qmp_nodev(ctx):
    for name, extra, want in (
            ("nodev", ["-device", "virtio-serial-device"], "the machine has no guest agent port"),
            ("norun", SERIAL, "the VM is not running (status: prelaunch)")):
        sock = os.path.join(ctx.tmp, f"qmp-{name}.sock")
        with h.VM(f"agent-{name}", ctx.linux_argv(extra + ["-S"]), out=ctx.log(f"agent-{name}"),
                  qmp=sock, console=True, timeout=30) as vm:
            desc = qmp_error(vm, "x-godwit-agent-ping")
            check(desc.startswith(want), f"{name}: {desc!r}")
            desc = qmp_error(vm, "x-godwit-agent-set-time")
            check(desc.startswith(want), f"{name} set-time: {desc!r}")
            vm.cmd("quit")


CASES = [("agent-port", case_agent_port),
         ("no-port", case_no_port),
         ("powerdown-qmp", case_powerdown_qmp),
         ("agent-qmp", case_agent_qmp),
         ("agent-qmp-nodev", case_agent_qmp_nodev)]


def main():
    return h.linux_main("agent", CASES, "AGENT_TEST_CASES", "BOOT_TEST_TIMEOUT")


if __name__ == "__main__":
    h.main(main)
