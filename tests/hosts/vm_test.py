#!/usr/bin/env python3
"""VMs on one godwitd: `godwit vm ...` and /1.0/vms with real godwit-vm
processes (docs/godwitd.md "VMs").

Cases:
  crud        create (table and --json), list, show, delete; the folder (vm.json
              0600, copied kernel, sparse disk, a disk referenced by path),
              MACs 52:54:00:..; bad names and bad bodies are 400 and create
              nothing; a taken name 409, an unknown VM 404
  bare-metal  bare-metal ELFs (-bios none): a ticker started, its console log
              from the first byte, start again 409 (also two at once: one
              wins), delete refused while running,
              stop without the agent refused without --force (VM keeps running),
              stop --force; an agent port nobody answers: stop times out (the
              VM keeps running), --force powers it off after the timeout;
              a guest exiting 0 is recorded stopped, one exiting 7 crashed
              with its status; the memory budget refuses a start (409)
  linux       the Debian guest image with --kernel/--initrd/--append and the
              agent: the boot in the console log, `vm console` interactive
              (a command echoed back, a second client refused, Ctrl-]
              detaches), the console log bounded (2.3 MB printed: the last
              1 MiB or so kept), `vm stop` powers it
              down through the agent (exit 0), vm-started/vm-stopped events
  restart     SIGTERM godwitd: the VM runs on; a new godwitd reattaches (same
              pid, the console log grows again, delete refused, a QMP quit is
              recorded stopped, kill works); a VM killed while the daemon is down is
              recorded crashed (exit status -1), and starts again
  bridge      --nic bridge=br0 in a network namespace: a gw* TAP on br0 while
              the VM runs, gone after it stops; a missing bridge fails the
              start with a clear message
  suspend     the Linux guest printing a counter: a failed save (the VM runs
              on, no file); suspend (state, the state
              file's size in vm show, no temporary left), stop/kill refused,
              a daemon restart keeps it suspended, resume (the clock note, and
              the guest's date right again after 5 s suspended; the counter
              continues, the file is gone); a corrupted state file is
              refused with the state checker's reason (suspended, file kept), also
              by start; stop --force discards it; suspend/resume of a VM in
              the wrong state or unknown: clear errors; a bare-metal VM without
              the agent: start resumes it, the clock is not tried

Environment: BUILD (build/release), VM_TEST_CASES (a subset).
Prints PASS/FAIL lines and `N passed, N failed, N skipped`.
"""
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness as h  # noqa: E402
from harness import Skip, check  # noqa: E402

from agent import Daemon, godwit, godwitd  # noqa: E402
from console import Console  # noqa: E402

GUEST = os.path.join(h.ROOT, "build", "guest")


def elf(name):
    p = os.path.join(GUEST, f"{name}.elf")
    if not os.path.exists(p):
        raise Skip(f"{p} is not built (make guests)")
    return p


def cli_ok(d, *args, timeout=120):
    rc, out, err = d.cli(*args, timeout=timeout)
    check(rc == 0, f"godwit {' '.join(args)}: exit {rc}: {err.strip()}")
    return out


def cli_json(d, *args, timeout=120):
    return json.loads(cli_ok(d, "--json", *args, timeout=timeout))


def show(d, name):
    st, body = d.api("GET", f"/1.0/vms/{name}")
    check(st == 200, f"GET vm {name}: {st} {body}")
    return body


def wait_state(d, name, want, timeout=20):
    end = time.monotonic() + timeout
    while True:
        vm = show(d, name)
        if vm["state"] in (want if isinstance(want, tuple) else (want,)):
            return vm
        if time.monotonic() > end:
            raise AssertionError(f"VM {name}: state {vm['state']}, wanted {want}")
        time.sleep(0.1)


def wait_log(d, name, text, timeout=60):
    end = time.monotonic() + timeout
    while True:
        st, body = d.api("GET", f"/1.0/vms/{name}/console-log")
        check(st == 200, f"console-log: {st} {body}")
        if text in body["log"]:
            return body["log"]
        if time.monotonic() > end:
            raise AssertionError(f"VM {name}: {text!r} not in the console log:\n"
                                 + body["log"][-1500:])
        time.sleep(0.2)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def kill_vms(d):
    """Kill every VM process the daemon knows (test cleanup)."""
    try:
        st, body = d.api("GET", "/1.0/vms", timeout=5)
        pids = [v["pid"] for v in body["vms"] if v.get("pid")] if st == 200 else []
    except OSError:
        pids = []
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Host:
    """A daemon for one case; kills its VMs and stops at the end."""

    def __init__(self, tmp, name, *args, prefix=()):
        self.state = os.path.join(tmp, name)
        self.args = args
        self.prefix = prefix
        self.d = Daemon(self.state, "--name", "hosta", *args, prefix=prefix,
                        log_name=f"vm-{name}").wait_socket()
        self.pids = set()

    def restart(self):
        self.d = Daemon(self.state, "--name", "hosta", *self.args, prefix=self.prefix,
                        log_name=f"vm-{os.path.basename(self.state)}-2").wait_socket()
        return self.d

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        kill_vms(self.d)
        for p in self.pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.d.stop()


def listing(d):
    return {v["name"]: v for v in cli_json(d, "vm", "list")}


def case_crud(tmp):
    kernel = elf("hello")
    with Host(tmp, "crud") as host:
        d = host.d
        ext = os.path.join(tmp, "ext.raw")
        with open(ext, "wb") as f:
            f.truncate(1 << 20)
        vm = cli_json(d, "vm", "create", "web1", "--memory", "64M", "--cpus", "2",
                      "--firmware", "none", "--kernel", kernel, "--disk", "8M", "--disk", ext,
                      "--nic", "user,hostfwd=tcp:127.0.0.1:20022-:22", "--nic", "user",
                      "--no-agent")
        check(vm["name"] == "web1" and vm["state"] == "defined" and vm["memory"] == 64 << 20
              and vm["cpus"] == 2 and vm["host"] == "hosta" and len(vm["uuid"]) == 36,
              f"created: {vm}")
        folder = os.path.join(host.state, "vms", "web1")
        check(stat.S_IMODE(os.stat(os.path.join(folder, "vm.json")).st_mode) == 0o600,
              "vm.json not 0600")
        with open(os.path.join(folder, "vm.json")) as f:
            definition = json.load(f)
        check(definition["uuid"] == vm["uuid"] and definition["kernel"] == "kernel",
              f"vm.json: {definition}")
        with open(os.path.join(folder, "kernel"), "rb") as a, open(kernel, "rb") as b:
            check(a.read() == b.read(), "the kernel was not copied")
        disks = vm["disks"]
        check(len(disks) == 2 and disks[0]["size"] == 8 << 20 and disks[0]["allocated"] == 0
              and disks[0]["path"] == os.path.join(folder, "disk0.raw"), f"disk0: {disks}")
        check(disks[1]["path"] == ext and disks[1]["size"] == 1 << 20, f"disk1: {disks}")
        macs = [n["mac"] for n in vm["nics"]]
        check(len(macs) == 2 and all(m.startswith("52:54:00:") for m in macs)
              and macs[0] != macs[1], f"macs: {macs}")
        check(vm["nics"][0]["hostfwd"] == ["tcp:127.0.0.1:20022-:22"], f"nics: {vm['nics']}")
        # firmware given by path: copied as firmware.bin
        fw = cli_json(d, "vm", "create", "fw1", "--memory", "32M", "--firmware", kernel)
        check(fw["firmware"] == "firmware.bin" and fw["agent"] is True and fw["kernel"] is None
              and os.path.exists(os.path.join(host.state, "vms", "fw1", "firmware.bin")),
              f"firmware by path: {fw}")
        cli_ok(d, "vm", "delete", "fw1")
        # a second VM with the defaults, by the table output
        out = cli_ok(d, "vm", "create", "db-2", "--memory", "32M", "--firmware", "none",
                     "--kernel", kernel)
        check("db-2" in out and "created" in out, f"create output: {out!r}")
        lst = listing(d)
        check(sorted(lst) == ["db-2", "web1"], f"list: {sorted(lst)}")
        check(lst["web1"]["nics"][0]["mac"] == macs[0], "MAC not stable")
        table = cli_ok(d, "vm", "list").splitlines()
        check(table[0].split()[:3] == ["NAME", "STATE", "MEMORY"] and len(table) == 3
              and table[1].startswith("db-2") and "defined" in table[2], f"table: {table}")
        # columns aligned: STATE starts at the same offset in every row
        off = table[0].index("STATE")
        check(all(r[off:].split()[0] in ("STATE", "defined") for r in table), f"{table}")
        out = cli_ok(d, "vm", "show", "web1")
        check("uuid" in out and vm["uuid"] in out and "64 MiB" in out, f"show: {out!r}")
        check(cli_json(d, "vm", "show", "web1")["uuid"] == vm["uuid"], "show --json")

        # bad input: 400 and nothing created
        before = sorted(os.listdir(os.path.join(host.state, "vms")))
        for bad in ("Web", "1abc", "a_b", "a" * 64, "a/b", "..", "x y"):
            rc, _, err = d.cli("vm", "create", bad, "--memory", "64M", "--firmware", "none",
                               "--kernel", kernel)
            check(rc == 1 and "name" in err, f"create {bad!r}: exit {rc} {err!r}")
        base = {"name": "ok1", "memory": 64 << 20, "firmware": "none", "kernel": kernel}
        bads = [
            {"name": "Bad"},
            {"memory": "64M"},
            {"memory": 1000},
            {"cpus": 0},
            {"bogus": 1},
            {"firmware": "none", "kernel": None},
            {"kernel": "/nonexistent/kernel"},
            {"kernel": "relative/kernel"},
            {"disks": [{"size": 0}]},
            {"disks": [{"size": 1 << 20, "path": ext}]},
            {"disks": [{"path": "/nonexistent.raw"}]},
            {"disks": [{"weird": 1}]},
            {"nics": [{"type": "tap"}]},
            {"nics": [{"type": "bridge"}]},
            {"nics": [{"type": "bridge", "bridge": "bad name"}]},
            {"nics": [{"type": "user", "hostfwd": ["nonsense"]}]},
            {"nics": [{"type": "user", "mac": "52:54:00:00:00:01"}]},
            {"uuid": "00000000-0000-0000-0000-000000000001"},
            {"append": "x" * 5000},
            {"disks": [{"size": 4096}] * 7},
        ]
        for b in bads:
            body = {**base, **b}
            body = {k: v for k, v in body.items() if v is not None}
            st, rep = d.api("POST", "/1.0/vms", body)
            check(st == 400 and rep["error"]["code"] == 400 and rep["error"]["message"],
                  f"{b}: {st} {rep}")
        for raw in ("not json", "[1]", '{"name": "x", "name": "y", "memory": 67108864}'):
            st, rep = d.api("POST", "/1.0/vms", raw)
            check(st == 400, f"{raw!r}: {st} {rep}")
        check(sorted(os.listdir(os.path.join(host.state, "vms"))) == before,
              f"bad requests left files: {os.listdir(os.path.join(host.state, 'vms'))}")
        check(sorted(listing(d)) == ["db-2", "web1"], "bad requests changed the list")
        st, rep = d.api("POST", "/1.0/vms", {**base, "name": "web1"})
        check(st == 409, f"taken name: {st} {rep}")
        for method, path in (("GET", "/1.0/vms/nope"), ("POST", "/1.0/vms/nope/start"),
                             ("DELETE", "/1.0/vms/nope"), ("GET", "/1.0/vms/nope/console-log")):
            st, rep = d.api(method, path)
            check(st == 404, f"{method} {path}: {st} {rep}")
        st, rep = d.api("GET", "/1.0/vms/Bad_Name")
        check(st == 400, f"bad name in the path: {st} {rep}")
        rc, _, err = d.cli("vm", "show", "nope")
        check(rc == 1 and "nope" in err and len(err.strip().splitlines()) == 1,
              f"show unknown: {rc} {err!r}")
        rc, _, err = d.cli("vm", "create", "x1")
        check(rc == 2 and "--memory" in err, f"create without --memory: {rc} {err!r}")
        rc, _, err = d.cli("vm", "frobnicate")
        check(rc == 2, f"unknown verb: {rc} {err!r}")

        # delete
        out = cli_ok(d, "vm", "delete", "web1")
        check("deleted" in out, f"delete: {out!r}")
        check(not os.path.exists(folder), "the folder stayed")
        check(os.path.exists(ext), "a referenced disk was removed")
        check(sorted(listing(d)) == ["db-2"], "list after delete")
        cli_ok(d, "vm", "delete", "db-2")
        check(listing(d) == {}, "list not empty")


def case_bare_metal(tmp):
    ticker, hello, fail7 = elf("mig_ticker"), elf("hello"), elf("exit_code")
    with Host(tmp, "bare", "--memory-budget", "160M") as host:
        d = host.d
        for name, k, mem in (("tick", ticker, "64M"), ("hello", hello, "32M"),
                             ("fail", fail7, "32M"), ("big", hello, "128M")):
            cli_ok(d, "vm", "create", name, "--memory", mem, "--firmware", "none", "--kernel", k,
                   "--no-agent")
        out = cli_ok(d, "vm", "start", "tick")
        check("started" in out, f"start: {out!r}")
        vm = show(d, "tick")
        check(vm["state"] == "running" and vm["pid"] > 0 and alive(vm["pid"]), f"{vm}")
        host.pids.add(vm["pid"])
        log = wait_log(d, "tick", "tick 3 ")
        check(log.startswith("mig_ticker"), f"the first output was lost: {log[:80]!r}")
        check(stat.S_IMODE(os.stat(vm["console_socket"]).st_mode) == 0o600, "relay not 0600")
        out = cli_ok(d, "vm", "console", "tick", "--show-log")
        check("tick 3 " in out, f"--show-log: {out[:200]!r}")
        rc, _, err = d.cli("vm", "start", "tick")
        check(rc == 1 and "running" in err, f"second start: {rc} {err!r}")
        st, rep = d.api("POST", "/1.0/vms/tick/start")
        check(st == 409, f"second start: {st}")
        # two starts at once: one wins, the other is 409
        import threading
        res = []
        ts = [threading.Thread(target=lambda: res.append(d.api("POST", "/1.0/vms/hello/start")[0]))
              for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(sorted(res) == [200, 409], f"concurrent starts: {res}")
        wait_state(d, "hello", "stopped")
        rc, _, err = d.cli("vm", "delete", "tick")
        check(rc == 1 and "running" in err, f"delete while running: {rc} {err!r}")
        st, _ = d.api("DELETE", "/1.0/vms/tick")
        check(st == 409, f"DELETE while running: {st}")
        # the budget: 64M running + 128M > 160M
        rc, _, err = d.cli("vm", "start", "big")
        check(rc == 1 and "memory" in err, f"over budget: {rc} {err!r}")
        check(show(d, "big")["state"] == "defined", "a refused start changed the state")
        # no agent: stop refused without --force, the VM keeps running
        rc, _, err = d.cli("vm", "stop", "tick")
        check(rc == 1 and "--force" in err, f"stop without agent: {rc} {err!r}")
        check(show(d, "tick")["state"] == "running" and alive(vm["pid"]), "the VM stopped")
        # an agent port nobody answers (a bare-metal guest): the timeout passes,
        # the VM keeps running without --force, is powered off with it
        cli_ok(d, "vm", "create", "deaf", "--memory", "16M", "--firmware", "none", "--kernel",
               ticker)
        cli_ok(d, "vm", "start", "deaf")
        deaf = show(d, "deaf")["pid"]
        host.pids.add(deaf)
        rc, _, err = d.cli("vm", "stop", "deaf", "--timeout", "1")
        check(rc == 1 and "did not power down within 1 s" in err and "--force" in err,
              f"stop timeout: {rc} {err!r}")
        check(show(d, "deaf")["state"] == "running" and alive(deaf), "deaf stopped")
        out = cli_ok(d, "vm", "stop", "deaf", "--timeout", "1", "--force")
        v = show(d, "deaf")
        check(v["state"] == "stopped" and not alive(deaf), f"stop --force after timeout: {v}")
        out = cli_ok(d, "vm", "stop", "tick", "--force", "--timeout", "1")
        check("stopped" in out, f"stop --force: {out!r}")
        vm2 = show(d, "tick")
        check(vm2["state"] == "stopped" and vm2["pid"] == 0 and not alive(vm["pid"]), f"{vm2}")
        st, rep = d.api("POST", "/1.0/vms/tick/stop")
        check(st == 409, f"stop a stopped VM: {st}")
        st, rep = d.api("POST", "/1.0/vms/tick/stop", {"timeout": "x"})
        check(st == 400, f"stop with a bad body: {st}")
        # guests that end by themselves
        cli_ok(d, "vm", "start", "hello")
        cli_ok(d, "vm", "start", "fail")
        v = wait_state(d, "hello", ("stopped", "crashed"))
        check(v["state"] == "stopped" and v["exit_code"] == 0, f"hello: {v}")
        v = wait_state(d, "fail", ("stopped", "crashed"))
        check(v["state"] == "crashed" and v["exit_code"] == 7, f"exit_code: {v}")
        out = cli_ok(d, "vm", "show", "fail")
        check("exit code 7" in out, f"show: {out!r}")
        wait_log(d, "hello", "hello from godwit-guest")
        # restart after a crash; kill
        cli_ok(d, "vm", "start", "tick")
        pid = show(d, "tick")["pid"]
        host.pids.add(pid)
        out = cli_ok(d, "vm", "kill", "tick")
        v = show(d, "tick")
        check(v["state"] == "stopped" and not alive(pid), f"kill: {v}")
        cli_ok(d, "vm", "delete", "tick")
        check(not os.path.exists(os.path.join(host.state, "vms", "tick")), "folder stayed")


def events(d, subject):
    import agent
    c = agent.UnixHTTP(d.sock, timeout=5)
    try:
        c.request("GET", f"/1.0/events?since=0&follow=0&subject={subject}")
        data = c.getresponse().read().decode()
    finally:
        c.close()
    return [json.loads(x)["type"] for x in data.splitlines() if x.strip()]


def case_linux(tmp):
    image, initrd = h.guest_image()
    with Host(tmp, "linux") as host:
        d = host.d
        cli_ok(d, "vm", "create", "lx", "--memory", "256M", "--kernel", image, "--initrd",
               initrd, "--append", "console=ttyS0")
        cli_ok(d, "vm", "start", "lx")
        vm = show(d, "lx")
        host.pids.add(vm["pid"])
        log = wait_log(d, "lx", "godwit-guest: init started", timeout=120)
        check("OpenSBI" in log, "the firmware banner is missing from the console log")
        wait_log(d, "lx", "godwit-guest:~# ", timeout=120)
        # interactive console through the relay
        argv = [godwit(), "-H", "unix:" + d.sock, "vm", "console", "lx"]
        with Console(argv, log=os.path.join(h.log_dir("hosts"), "vm-linux-console.log"),
                     timeout=30) as c:
            c.sendline("echo relay-$((6*7))")
            c.expect(r"relay-42")
            # a second client is told the console is busy
            import socket
            with socket.socket(socket.AF_UNIX) as s2:
                s2.settimeout(5)
                s2.connect(vm["console_socket"])
                busy = s2.recv(200)
            check(b"in use" in busy, f"second console client: {busy!r}")
            rc, _, err = d.cli("vm", "console", "lx", timeout=10)
            check(rc == 1 and "in use" in err, f"second console: {rc} {err!r}")
            c.send("\x1d")
            check(c.wait(10) == 0, "console did not detach on Ctrl-]")
        wait_log(d, "lx", "relay-42")
        out = cli_ok(d, "vm", "console", "lx", "--show-log")
        check("init started" in out, "--show-log without the boot")
        # the log is bounded: past 2 MiB it keeps its last 1 MiB
        import socket
        logf = os.path.join(host.state, "vms", "lx", "console.log")
        with socket.socket(socket.AF_UNIX) as s2:
            s2.connect(vm["console_socket"])
            s2.sendall(b"head -c 2300000 /dev/zero | tr '\\0' x; echo; echo END-$((1+1))\r")
            end = time.monotonic() + 120
            while True:
                size = os.path.getsize(logf)
                with open(logf, "rb") as f:
                    f.seek(max(0, size - 300))
                    if b"END-2" in f.read():
                        break
                check(time.monotonic() < end, f"the 2.3 MB output did not end (log {size} B)")
                time.sleep(0.3)
        check((1 << 20) - 4096 <= size <= (2 << 20), f"console.log not bounded: {size} B")
        log = wait_log(d, "lx", "END-2")
        check("OpenSBI" not in log and len(log) == size, f"the log was not cut: {len(log)}")
        t0 = time.monotonic()
        out = cli_ok(d, "vm", "stop", "lx", "--timeout", "60")
        check("stopped" in out, f"stop: {out!r}")
        v = show(d, "lx")
        check(v["state"] == "stopped" and v["exit_code"] == 0 and not alive(vm["pid"]),
              f"after stop: {v}")
        log = wait_log(d, "lx", "agent: powerdown requested")
        types = events(d, "vm/lx")
        check("vm-started" in types and "vm-stopped" in types, f"events: {types}")
        return f"graceful stop in {time.monotonic() - t0:.1f}s"


def case_restart(tmp):
    ticker = elf("mig_ticker")
    host = Host(tmp, "restart")
    try:
        d = host.d
        for n in ("keep", "lost", "other"):
            cli_ok(d, "vm", "create", n, "--memory", "32M", "--firmware", "none", "--kernel",
                   ticker, "--no-agent")
            cli_ok(d, "vm", "start", n)
            host.pids.add(show(d, n)["pid"])
        keep, lost = show(d, "keep")["pid"], show(d, "lost")["pid"]
        wait_log(d, "keep", "tick 2 ")
        check(d.stop() == 0, "godwitd did not stop cleanly")
        time.sleep(0.3)
        check(alive(keep) and alive(lost), "a VM died with the daemon")
        os.kill(lost, signal.SIGKILL)
        time.sleep(0.3)
        size = len(open(os.path.join(host.state, "vms", "keep", "console.log"), "rb").read())
        d = host.restart()
        v = show(d, "keep")
        check(v["state"] == "running" and v["pid"] == keep, f"keep after restart: {v}")
        v = show(d, "lost")
        check(v["state"] == "crashed" and v["exit_status"] == -1 and v["pid"] == 0,
              f"lost after restart: {v}")
        # the relay is back: the log grows
        end = time.monotonic() + 10
        while len(open(os.path.join(host.state, "vms", "keep", "console.log"), "rb").read()) \
                <= size + 50:
            check(time.monotonic() < end, "the console log stopped growing after reattach")
            time.sleep(0.2)
        rc, _, err = d.cli("vm", "delete", "keep")
        check(rc == 1, "delete of a reattached running VM")
        # an orderly end of a reattached VM (its SHUTDOWN event) is "stopped"
        import qmp
        with qmp.connect(show(d, "keep")["qmp_socket"]) as q:
            q.cmd("quit")
        v = wait_state(d, "keep", ("stopped", "crashed"))
        check(v["state"] == "stopped" and v["exit_status"] == -1 and not alive(keep),
              f"quit after reattach: {v}")
        # kill of a reattached VM
        other = show(d, "other")["pid"]
        check(show(d, "other")["state"] == "running", "other not reattached")
        cli_ok(d, "vm", "kill", "other")
        v = show(d, "other")
        check(v["state"] == "stopped" and not alive(other), f"kill after reattach: {v}")
        # the crashed VM starts again; kill
        cli_ok(d, "vm", "start", "lost")
        lost2 = show(d, "lost")["pid"]
        host.pids.add(lost2)
        wait_state(d, "lost", "running")
        cli_ok(d, "vm", "kill", "lost")
        check(show(d, "lost")["state"] == "stopped" and not alive(lost2), "kill")
    finally:
        host.__exit__(None, None, None)


def case_bridge(tmp):
    ticker = elf("mig_ticker")
    with h.NetNS("gwvm", "10.77.3") as ns:
        with Host(tmp, "bridge", prefix=["ip", "netns", "exec", ns.name]) as host:
            d = host.d
            cli_ok(d, "vm", "create", "br", "--memory", "32M", "--firmware", "none",
                   "--kernel", ticker, "--no-agent", "--nic", "bridge=br0")
            cli_ok(d, "vm", "create", "nobr", "--memory", "32M", "--firmware", "none",
                   "--kernel", ticker, "--no-agent", "--nic", "bridge=br9")
            rc, _, err = d.cli("vm", "start", "nobr")
            check(rc == 1 and "br9" in err and "does not exist" in err,
                  f"missing bridge: {rc} {err!r}")
            check(show(d, "nobr")["state"] == "defined", "failed start changed the state")
            cli_ok(d, "vm", "start", "br")
            vm = show(d, "br")
            host.pids.add(vm["pid"])
            tap = vm["nics"][0]["tap"]
            check(tap.startswith("gw") and len(tap) <= 15, f"tap {tap}")
            links = subprocess.run(["ip", "-n", ns.name, "-o", "link", "show", "master", "br0"],
                                   capture_output=True, text=True).stdout
            check(tap in links, f"{tap} not on br0: {links}")
            cli_ok(d, "vm", "stop", "br", "--force")
            links = subprocess.run(["ip", "-n", ns.name, "-o", "link", "show"],
                                   capture_output=True, text=True).stdout
            check(tap not in links, f"{tap} stayed after stop: {links}")


def console_send(vm, line):
    """Type a line on the VM's console (through godwitd's relay)."""
    import socket
    with socket.socket(socket.AF_UNIX) as s2:
        s2.settimeout(5)
        s2.connect(vm["console_socket"])
        s2.sendall(line.encode() + b"\r")
        time.sleep(0.3)


def counts(log):
    """The counter values the guest printed ("cnt N" lines), in order."""
    return [int(x) for x in re.findall(r"(?m)^cnt (\d+)\r?$", log)]


def case_suspend(tmp):
    image, initrd = h.guest_image()
    with Host(tmp, "suspend") as host:
        d = host.d
        cli_ok(d, "vm", "create", "sus", "--memory", "256M", "--kernel", image, "--initrd",
               initrd, "--append", "console=ttyS0")
        cli_ok(d, "vm", "create", "idle", "--memory", "32M", "--kernel", image, "--no-agent")
        # only a running VM can be suspended; only a suspended one resumed
        rc, _, err = d.cli("vm", "suspend", "idle")
        check(rc == 1 and "not running" in err, f"suspend of a defined VM: {rc} {err!r}")
        rc, _, err = d.cli("vm", "resume", "idle")
        check(rc == 1 and "not suspended" in err, f"resume of a defined VM: {rc} {err!r}")
        rc, _, err = d.cli("vm", "suspend", "nosuch")
        check(rc == 1 and "no VM" in err, f"suspend of an unknown VM: {rc} {err!r}")
        cli_ok(d, "vm", "start", "sus")
        vm = show(d, "sus")
        host.pids.add(vm["pid"])
        wait_log(d, "sus", "godwit-guest:~# ", timeout=120)
        console_send(vm, "i=0; while true; do i=$((i+1)); echo cnt $i; sleep 1; done &")
        wait_log(d, "sus", "cnt 3")
        # a save that fails (its target is a directory, so godwit-vm's rename
        # fails): the VM keeps running as before, no file stays
        blocker = os.path.join(host.state, "vms", "sus", "suspended.state.new")
        os.makedirs(os.path.join(blocker, "x"))
        rc, _, err = d.cli("vm", "suspend", "sus", timeout=300)
        check(rc == 1 and "the save failed" in err and "keeps running" in err,
              f"suspend that fails: {rc} {err!r}")
        v = show(d, "sus")
        check(v["state"] == "running" and v["pid"] == vm["pid"] and alive(vm["pid"]),
              f"after a failed suspend: {v}")
        os.rmdir(os.path.join(blocker, "x"))
        os.rmdir(blocker)
        left = [f for f in os.listdir(os.path.dirname(blocker)) if f.startswith("suspended")]
        check(not left, f"a failed save left {left}")
        n = counts(wait_log(d, "sus", "cnt 3"))[-1]
        wait_log(d, "sus", f"cnt {n + 1}")
        t0 = time.monotonic()
        out = cli_ok(d, "vm", "suspend", "sus", timeout=300)
        t_save = time.monotonic() - t0
        check("suspended" in out, f"suspend: {out!r}")
        state = os.path.join(host.state, "vms", "sus", "suspended.state")
        v = cli_json(d, "vm", "show", "sus")
        check(v["state"] == "suspended" and v["pid"] == 0 and not alive(vm["pid"]),
              f"after suspend: {v}")
        sec = v.get("suspended") or {}
        check(sec.get("file") == "suspended.state" and sec.get("size") == os.path.getsize(state)
              and sec["size"] > 1 << 20 and abs(sec["saved"] / 1000 - time.time()) < 120,
              f"vm show suspended: {sec}")
        check("saved state" in cli_ok(d, "vm", "show", "sus"), "vm show (human): no saved state")
        check(not [f for f in os.listdir(os.path.dirname(state)) if ".new" in f],
              "a temporary file stayed")
        before = counts(wait_log(d, "sus", "cnt 3"))
        # neither stop nor kill throws the saved state away by accident
        rc, _, err = d.cli("vm", "stop", "sus")
        check(rc == 1 and "--force" in err, f"stop of a suspended VM: {rc} {err!r}")
        rc, _, err = d.cli("vm", "kill", "sus")
        check(rc == 1 and "suspended" in err, f"kill of a suspended VM: {rc} {err!r}")
        # a suspended VM survives a daemon restart
        check(d.stop() == 0, "godwitd did not stop cleanly")
        d = host.restart()
        v = show(d, "sus")
        check(v["state"] == "suspended" and v["pid"] == 0 and v.get("suspended"),
              f"after the restart: {v}")
        time.sleep(5)  # the guest's clock, standing still, falls behind by this much
        t0 = time.monotonic()
        out = cli_ok(d, "vm", "resume", "sus", timeout=300)
        t_load = time.monotonic() - t0
        check("resumed" in out and "guest clock" in out
              and "cannot set the guest clock" not in out, f"resume: {out!r}")
        if "guest clock set" in out:  # (a guest image whose agent predates settime: not)
            v = show(d, "sus")
            console_send(v, "echo guest-now $(date +%s)")
            now = int(re.search(r"guest-now (\d+)", wait_log(d, "sus", "guest-now 1")).group(1))
            check(abs(now - time.time()) < 3, f"guest clock {now}, host {time.time():.0f}")
        v = show(d, "sus")
        host.pids.add(v["pid"])
        check(v["state"] == "running" and alive(v["pid"]) and "suspended" not in v
              and not os.path.exists(state), f"after resume: {v}")
        # the counter goes on from where it was, not from zero
        last = before[-1]
        log = wait_log(d, "sus", f"cnt {last + 2}")
        after = counts(log)[len(before):]
        check(after and last < after[0] <= last + 2 and 1 not in after,
              f"counter before {before[-3:]}, after {after[:3]}")
        types = events(d, "vm/sus")
        check("vm-suspended" in types and "vm-resumed" in types, f"events: {types}")
        # a corrupted state file: refused with the state checker's reason; the VM
        # stays suspended with its file
        cli_ok(d, "vm", "suspend", "sus", timeout=300)
        size = os.path.getsize(state)
        with open(state, "r+b") as f:
            f.seek(size // 2)
            b = f.read(64)
            f.seek(size // 2)
            f.write(bytes(x ^ 0xA5 for x in b))
        rc, _, err = d.cli("vm", "resume", "sus", timeout=300)
        check(rc == 1 and "saved state is not valid" in err and "stays suspended" in err,
              f"resume of a corrupted state: {rc} {err!r}")
        v = show(d, "sus")
        check(v["state"] == "suspended" and v["pid"] == 0 and os.path.getsize(state) == size,
              f"after a failed resume: {v}")
        # start of a suspended VM resumes it (and fails the same way)
        rc, _, err = d.cli("vm", "start", "sus", timeout=300)
        check(rc == 1 and "not valid" in err, f"start of a corrupted state: {rc} {err!r}")
        # stop --force discards the saved state
        out = cli_ok(d, "vm", "stop", "sus", "--force")
        check("discarded" in out, f"stop --force: {out!r}")
        v = show(d, "sus")
        check(v["state"] == "stopped" and not os.path.exists(state), f"discarded: {v}")
        # without a guest agent the clock is not tried; start resumes
        ticker = os.path.join(GUEST, "mig_ticker.elf")
        if os.path.exists(ticker):
            cli_ok(d, "vm", "create", "tick", "--memory", "32M", "--firmware", "none",
                   "--kernel", ticker, "--no-agent")
            cli_ok(d, "vm", "start", "tick")
            host.pids.add(show(d, "tick")["pid"])
            wait_log(d, "tick", "tick 2 ")
            cli_ok(d, "vm", "suspend", "tick")
            out = cli_ok(d, "vm", "start", "tick")
            check("resumed" in out and "guest clock not set: the VM has no guest agent" in out,
                  f"start of a suspended VM: {out!r}")
            v = show(d, "tick")
            host.pids.add(v["pid"])
            check(v["state"] == "running", f"tick after start: {v}")
            cli_ok(d, "vm", "kill", "tick")
        return f"save {t_save:.1f}s, load {t_load:.1f}s"


CASES = [("crud", case_crud), ("bare-metal", case_bare_metal), ("linux", case_linux),
         ("restart", case_restart), ("bridge", case_bridge), ("suspend", case_suspend)]


def run():
    rep = h.Report()
    cases = h.selected(CASES, os.environ.get("VM_TEST_CASES", ""))
    if not os.access(godwitd(), os.X_OK) or not os.access(h.godwit_vm(), os.X_OK):
        for name, _ in cases:
            rep.skip(name, "godwitd or godwit-vm is not built (make)")
        return rep.summary()
    with tempfile.TemporaryDirectory(prefix="godwit-vm-") as tmp:
        for name, fn in cases:
            rep.case(name, fn, tmp, hint=f"logs: {h.log_dir('hosts')}")
    return rep.summary()


if __name__ == "__main__":
    h.main(run)
