#!/usr/bin/env python3
"""Live migration between godwitd hosts (docs/godwitd.md "Jobs",
src/godwitd/migrate.h): three hosts in network namespaces (tests/lib/hosts.py),
paired with each other, move VMs with `godwit migrate` as an operator would.

Cases:
  three-hosts-linux  the Debian guest (256M, --nic bridge=br0, busybox httpd and
                     a TCP echo service started from the kernel command line)
                     goes ha -> hb -> hc -> ha with `godwit --json migrate`; a
                     client in its own namespace keeps one TCP session (a line
                     every 50 ms, echoed; HTTP every 50 ms when the guest's nc
                     cannot echo) the whole time; after each hop: the JSON
                     result, the VM on its new host only (running), the console
                     log still holding the first boot's lines, both jobs done
                     with their phases, the session alive.  Notes per-hop
                     downtime and the client's longest gap.
  three-hosts-pagepass  the bare-metal page oracle (mig_pagepass.elf, 128M)
                     ha -> hb -> hc -> ha: new `pass` lines on each new host,
                     never `FAIL`.
  dirty-limit        `godwit migrate --live --dirty-limit 4 --bandwidth 256` of
                     mig_throttle.elf (2 vCPUs, vCPU 0 dirtying 24 MiB as fast
                     as it can): the job's figures show x-godwit-dirty-limit
                     (4 MB/s, vCPU 0 held back, vCPU 1 never) while it holds;
                     done, the VM runs on the destination only.
  fault-dst-vm       the destination's godwit-vm SIGKILLed mid-transfer: the
                     source job fails with a reason, the VM runs on the source,
                     the destination forgets it.
  fault-src-vm       the source's godwit-vm SIGKILLed mid-transfer: the job fails
                     with a reason, the VM is recorded crashed, the destination
                     cleans up (no copy is made up).
  fault-dst-daemon   the destination's godwitd SIGKILLed mid-transfer: the
                     source job pauses pre-copy on a technical hold, the VM
                     runs on; the restarted daemon watches its incoming VM
                     again (paused, it keeps what it received), the source
                     resumes the stream and the VM arrives: both jobs done.
  fault-dst-term     the same with SIGTERM: it stops within 3 s.
  fault-dst-late     the destination's godwitd SIGKILLed during the switchover
                     (--downtime-limit 60000), restarted once the source's
                     godwit-vm completed: the VM runs on exactly one host
                     (the restarted daemon adopts a VM whose switchover ended
                     meanwhile), and both jobs agree.
  fault-src-daemon   the source's godwitd SIGKILLed mid-transfer: the migration
                     goes on; the restarted daemon finishes the job (done), the
                     VM runs on the destination only.
  fault-src-term     the same with SIGTERM (a daemon upgrade): it stops within
                     3 s and never cancels the migration.
  fault-src-prepare  the source's godwitd SIGKILLed while it sends the boot files
                     (prepare): the restarted daemon fails the job with a reason
                     and tells the destination, which cleans up; the VM runs on.
  fault-link         the source's link to the rack down for ~15 s mid-transfer
                     with --give-up-after 3: a technical hold, then the job
                     gives up (failed with a reason), the VM runs on the
                     source, the destination cleans up once it hears of it.
                     (A link that comes back in time: live_hold_test.py.)
  fault-cancel       a second migrate of a VM on the move refused; `godwit job
                     cancel` mid-transfer: cancelled, the VM runs on
                     the source, the destination cleans up; then it moves.
  fault-budget       a destination with --memory-budget 64M: the migration
                     fails in precheck naming the memory; nothing there.
  refused            a name taken on the destination: refused with the
                     destination's reason; bad usage exits 2.  (A disk not on
                     shared storage moves in the stream: live_disk_test.py.)

Needs root and iproute2 (SKIP otherwise), godwit-vm, the bare-metal guests
(build/guest) and, for the Linux case, the guest image.  Environment: BUILD
(build/release), MIGRATE_HOSTS_CASES (a comma-separated subset),
MIGRATE_HOSTS_BOOT (seconds for the Linux guest to answer, 240).  Prints
PASS/FAIL/SKIP lines and `N passed, N failed, N skipped`.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib")
sys.path.insert(0, LIB)
import harness as h  # noqa: E402
from harness import Skip, check  # noqa: E402

import agent  # noqa: E402
import hosts  # noqa: E402
from hosts import Rack  # noqa: E402

PREFIX = "gwmg"
GUEST = os.path.join(h.ROOT, "build", "guest")
PAGEPASS = os.path.join(GUEST, "mig_pagepass.elf")
TICKER = os.path.join(GUEST, "mig_ticker.elf")
THROTTLE = os.path.join(GUEST, "mig_throttle.elf")
PASS_RE = re.compile(r"^pass (\d+) t=(\d+)\r?$", re.M)
SRC_PHASES = ["precheck", "prepare", "transfer", "switchover", "done"]
DST_PHASES = ["prepare", "transfer", "done"]

GUEST_APPEND = ('console=ttyS0 ENV=/proc/cmdline GODWIT_RUN="[ -d /www ] || { mkdir /www; '
                'ip link set eth0 up; ip addr add {ip}/24 dev eth0; echo guest-{ip} '
                '>/www/index.html; httpd -h /www; (while :; do nc -l -p 7 -e /bin/cat || '
                'sleep 1; done) & }" eval "$GODWIT_RUN"')

# The client session, in the client namespace: argv mode (echo|http), ip,
# status file.  It keeps one TCP connection (echo) sending a line every
# 50 ms and checking the echo, or GETs / every 50 ms (http), and writes
# its figures to the status file (JSON) every 0.25 s.
CLIENT = r"""
import json, os, socket, sys, time, urllib.request
mode, ip, status = sys.argv[1], sys.argv[2], sys.argv[3]
st = {"mode": mode, "ok": 0, "errors": 0, "max_gap": 0.0, "broken": None, "last_err": "",
      "last_ok": time.time()}
last_ok = time.monotonic(); last_save = 0.0
def save():
    with open(status + ".tmp", "w") as f:
        json.dump(st, f)
    os.replace(status + ".tmp", status)
def good():
    global last_ok
    now = time.monotonic()
    st["max_gap"] = max(st["max_gap"], now - last_ok)
    last_ok = now
    st["ok"] += 1
    st["last_ok"] = time.time()
if mode == "echo":
    s = socket.create_connection((ip, 7), timeout=5)
    s.settimeout(90)
    f = s.makefile("rb")
    i = 0
    while True:
        i += 1
        line = b"godwit line %d\n" % i
        try:
            s.sendall(line)
            got = f.readline()
        except OSError as e:
            st["broken"] = "%s: %s" % (type(e).__name__, e)
            save()
            break
        if got != line:
            st["broken"] = "sent %r, got %r" % (line, got)
            save()
            break
        good()
        if time.monotonic() - last_save > 0.25:
            save(); last_save = time.monotonic()
        time.sleep(0.05)
    time.sleep(3600)
else:
    while True:
        try:
            body = urllib.request.urlopen("http://%s/" % ip, timeout=2).read()
            ok = body.strip() == ("guest-" + ip).encode()
        except Exception as e:
            ok = False
            st["last_err"] = str(e)
        if ok:
            good()
        else:
            st["errors"] += 1
        if time.monotonic() - last_save > 0.25:
            save(); last_save = time.monotonic()
        time.sleep(0.05)
"""

ECHO_PROBE = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 7), timeout=3)
s.settimeout(3)
s.sendall(b"probe\n")
print(s.makefile("rb").readline().decode().strip())
"""

HTTP_GET = r"""
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode().strip())
"""


# ---- helpers -----------------------------------------------------------------------------


def wait_for(fn, timeout, what, step=0.1):
    """fn() until it returns something true: that value; AssertionError
    naming what (and fn's last value) after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"{what} (after {timeout:.0f}s; last: {v!r})")
        time.sleep(step)


def vm_states(host):
    """{name: state} of host's VMs (`vm list --json`)."""
    rc, out, err = host.cli("--json", "vm", "list")
    check(rc == 0, f"{host.name}: vm list: exit {rc}: {err.strip()}")
    return {v["name"]: v.get("state") for v in json.loads(out)}


def where(rack, name):
    """{host name: state} of every host that lists VM name."""
    res = {}
    for x in rack.hosts:
        s = vm_states(x).get(name)
        if s is not None:
            res[x.name] = s
    return res


def only_on(rack, name, host, state="running"):
    w = where(rack, name)
    check(w == {host.name: state}, f"VM {name} is on {w}, want only {host.name} ({state})")


def vm_dir(host, name):
    return os.path.join(host.state, "vms", name)


def console(host, name):
    rc, out, err = host.cli("vm", "console", name, "--show-log")
    check(rc == 0, f"{host.name}: vm console {name} --show-log: exit {rc}: {err.strip()}")
    return out


def job(host, jid):
    st, body = host.api("GET", f"/1.0/jobs/{jid}")
    check(st == 200, f"{host.name}: GET /1.0/jobs/{jid}: {st} {body}")
    return body


def phases(j):
    """The phases a job went through, from its history."""
    res = []
    for ev in j.get("history") or []:
        p = (ev.get("data") or {}).get("phase")
        if p and (not res or res[-1] != p):
            res.append(p)
    if j.get("phase") and (not res or res[-1] != j["phase"]):
        res.append(j["phase"])
    return res


def job_show(host, jid):
    """`godwit job show ID --json` (the CLI an operator would use)."""
    rc, out, err = host.cli("--json", "job", "show", str(jid))
    check(rc == 0, f"{host.name}: job show {jid}: exit {rc}: {err.strip()}")
    return json.loads(out)


def check_jobs_done(src, dst, jid):
    """Both sides' jobs of a finished migration: done, with their phases.
    Returns the destination's job id."""
    sj = job_show(src, jid)
    check(sj["status"] == "done", f"{src.name}: job {jid}: {sj['status']} {sj.get('error')}")
    p = phases(job(src, jid))
    check([x for x in p if x in SRC_PHASES] == SRC_PHASES,
          f"{src.name}: job {jid} phases {p}, want {SRC_PHASES}")
    did = (sj.get("figures") or {}).get("destination-job")
    check(isinstance(did, int) and did > 0, f"{src.name}: job {jid}: no destination-job")
    dj = job_show(dst, did)
    check(dj["status"] == "done" and dj.get("direction") == "in" and dj["vm"] == sj["vm"],
          f"{dst.name}: job {did}: {dj['status']} {dj.get('direction')} {dj.get('error')}")
    p = phases(job(dst, did))
    check([x for x in p if x in DST_PHASES] == DST_PHASES,
          f"{dst.name}: job {did} phases {p}, want {DST_PHASES}")
    return did


def migrate(src, name, dst, *opts, timeout=300):
    """`godwit --json migrate NAME PEER OPTS`: (exit code, result or None, stderr)."""
    rc, out, err = src.cli("--json", "migrate", name, dst.name, *opts, timeout=timeout)
    try:
        res = json.loads(out) if out.strip() else None
    except ValueError:
        res = None
    return rc, res, err


def migrate_result_of(host, jid):
    """The --json result fields of a finished job, from the job itself."""
    j = job(host, jid)
    f = j.get("figures") or {}
    return {"job": j["id"], "vm": j["vm"], "source": host.name, "destination": j["peer"],
            "status": j["status"], "total_time_ms": f.get("total-time"),
            "downtime_ms": f.get("downtime"), "bytes": (f.get("ram") or {}).get("transferred"),
            "rounds": (f.get("ram") or {}).get("dirty-sync-count")}


def check_result(res, name, src, dst):
    check(isinstance(res, dict), f"migrate {name} {src.name}->{dst.name}: no JSON result")
    want = {"vm": name, "source": src.name, "destination": dst.name, "status": "done"}
    for k, v in want.items():
        check(res.get(k) == v, f"result {k} = {res.get(k)!r}, want {v!r}: {res}")
    for k in ("job", "total_time_ms", "downtime_ms", "bytes", "rounds"):
        check(isinstance(res.get(k), int) and res[k] >= 0, f"result {k} = {res.get(k)!r}")
    check(res["job"] > 0 and res["bytes"] > 0 and res["rounds"] >= 1,
          f"result job/bytes/rounds: {res}")


def create(host, name, *args):
    rc, out, err = host.cli("vm", "create", name, *args)
    check(rc == 0, f"{host.name}: vm create {name}: exit {rc}: {(out + err).strip()}")


def start(host, name):
    rc, out, err = host.cli("vm", "start", name, timeout=60)
    check(rc == 0, f"{host.name}: vm start {name}: exit {rc}: {(out + err).strip()}")


def bare(host, name, elf=PAGEPASS, memory="128M"):
    create(host, name, "--memory", memory, "--cpus", "1", "--firmware", "none", "--kernel", elf,
           "--no-agent")
    start(host, name)


def remove_everywhere(rack, name):
    """The VM gone from every host (killed and deleted), whatever its state."""
    for x in rack.hosts:
        if not x.daemon or x.daemon.proc.poll() is not None:
            continue
        if name in vm_states(x):
            x.cli("vm", "kill", name, timeout=30)
            x.cli("vm", "delete", name, timeout=30)


def passes(text):
    return [int(m.group(1)) for m in PASS_RE.finditer(text)]


def check_no_fail(host, name, text):
    bad = [ln for ln in text.splitlines() if "FAIL" in ln]
    check(not bad, f"{host.name}: {name}'s console says {bad[:3]}")


def log_size(host, name):
    try:
        return os.path.getsize(os.path.join(vm_dir(host, name), "console.log"))
    except OSError:
        return -1


def detach_migrate(src, name, dst, *opts):
    rc, out, err = src.cli("--json", "migrate", name, dst.name, "--detach", *opts)
    check(rc == 0, f"{src.name}: migrate {name} {dst.name} --detach: exit {rc}: {err.strip()}")
    jid = json.loads(out)["job"]
    check(isinstance(jid, int) and jid > 0, f"--detach printed {out!r}")
    return jid


def wait_transfer(src, jid, min_bytes=4 << 20, timeout=60):
    """Until the source job is in phase transfer with min_bytes sent: the
    job (and the destination's job id)."""
    def moving():
        j = job(src, jid)
        check(j["status"] == "running", f"{src.name}: job {jid} ended early: {j['status']} "
                                        f"{j.get('error')}")
        sent = ((j.get("figures") or {}).get("ram") or {}).get("transferred") or 0
        return j if j["phase"] == "transfer" and sent >= min_bytes else None
    j = wait_for(moving, timeout, f"{src.name}: job {jid} moving bytes")
    return j, j["figures"]["destination-job"]


def wait_final(host, jid, timeout=60):
    return wait_for(lambda: (lambda j: j if j["status"] in ("done", "failed", "cancelled")
                             else None)(job(host, jid)), timeout,
                    f"{host.name}: job {jid} to end", step=0.2)


def check_runs_here(host, name, what):
    """The VM runs on host: listed running and its console log grows."""
    check(vm_states(host).get(name) == "running",
          f"{what}: {host.name} lists {name} as {vm_states(host).get(name)}")
    n0 = log_size(host, name)
    wait_for(lambda: log_size(host, name) > n0, 10, f"{what}: {name}'s console log on "
                                                    f"{host.name} growing")


def check_forgotten(host, name, timeout=15):
    """host has no trace of the VM: not listed, no folder, no process."""
    wait_for(lambda: name not in vm_states(host) and not os.path.exists(vm_dir(host, name)),
             timeout, f"{host.name} forgetting {name} (list {vm_states(host).get(name)}, "
                      f"folder {os.path.exists(vm_dir(host, name))})", step=0.25)
    wait_for(lambda: not [p for p in hosts.pids_naming(vm_dir(host, name) + "/")
                          if not hosts._zombie(p)], 10, f"{host.name}: {name}'s process gone")


def events(host, subject):
    """The event types recorded for subject (GET /1.0/events, one JSON
    object a line)."""
    c = agent.UnixHTTP(host.sock, timeout=10)
    try:
        c.request("GET", f"/1.0/events?since=0&subject={subject}&follow=0")
        r = c.getresponse()
        data = r.read().decode()
        check(r.status == 200, f"{host.name}: GET /1.0/events: {r.status} {data[:200]}")
    finally:
        c.close()
    res = []
    for ln in data.splitlines():
        ln = ln.strip()
        if ln.startswith("data:"):
            ln = ln[5:].strip()
        if ln.startswith("{"):
            try:
                res.append(json.loads(ln).get("type"))
            except ValueError:
                pass
    return res


def taps(host):
    """The gw* TAP devices on host's br0."""
    out = host.ip_cmd("-o", "link", "show", "master", "br0")
    return [ln.split(":")[1].strip().split("@")[0] for ln in out.splitlines()
            if ":" in ln and ln.split(":")[1].strip().startswith("gw")]


def check_hop_leftovers(rack, name, src, dst, hop):
    """After a hop: the VM's events on both sides, no key file left, no
    TAP left behind on the source."""
    check("vm-departed" in events(src, f"vm/{name}"),
          f"{hop}: {src.name} recorded no vm-departed: {events(src, f'vm/{name}')}")
    check("vm-arrived" in events(dst, f"vm/{name}"),
          f"{hop}: {dst.name} recorded no vm-arrived: {events(dst, f'vm/{name}')}")
    for x in rack.hosts:
        key = os.path.join(vm_dir(x, name), "tls", "keys.psk")
        check(not os.path.exists(key), f"{hop}: {x.name} kept {key}")
        check(not zombies(x), f"{hop}: {x.name}'s godwitd left zombies {zombies(x)}")


def zombies(host):
    """The daemon's children that ended and were never reaped."""
    res = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == host.daemon.proc.pid:
            res.append(int(d))
    return res


def vm_pid(host, name):
    st, body = host.api("GET", f"/1.0/vms/{name}")
    pid = (body or {}).get("pid") if st == 200 else None
    if pid:
        return pid
    pids = [p for p in hosts.pids_naming(vm_dir(host, name) + "/") if not hosts._zombie(p)]
    return pids[0] if pids else None


# ---- pairing ------------------------------------------------------------------------------


def pair_all(rack):
    """Every host trusts every other: a token on one side, `peer add` on
    the other, once per pair of the triangle (ha-hb, hb-hc, hc-ha)."""
    n = len(rack.hosts)
    for i in range(n):
        a, b = rack.hosts[i], rack.hosts[(i + 1) % n]
        rc, out, err = b.cli("peer", "token", "--address", b.listen)
        check(rc == 0 and out.strip(), f"{b.name}: peer token: exit {rc}: {err.strip()}")
        rc, out, err = a.cli("peer", "add", b.name, out.split()[-1], timeout=60)
        check(rc == 0, f"{a.name}: peer add {b.name}: exit {rc}: {(out + err).strip()}")
    for x in rack.hosts:
        rc, out, err = x.cli("--json", "peer", "list")
        check(rc == 0, f"{x.name}: peer list: exit {rc}: {err.strip()}")
        names = {p.get("name") for p in json.loads(out)}
        others = {y.name for y in rack.hosts if y is not x}
        check(others <= names, f"{x.name} trusts {sorted(names)}, want {sorted(others)}")


# ---- cases --------------------------------------------------------------------------------


class Session:
    """The client's TCP session (or HTTP polling) in the client namespace."""

    def __init__(self, rack, ip, mode):
        self.status = os.path.join(rack.state, "client.json")
        self.mode = mode
        self.log = open(os.path.join(h.log_dir("hosts"), "migrate-client.log"), "w")
        self.proc = subprocess.Popen(rack.client_exec([sys.executable, "-c", CLIENT, mode, ip,
                                                       self.status]),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.read().get("ok", 0) >= 5, 20, "the client session's first echoes")

    def read(self):
        try:
            with open(self.status) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def check_alive(self, what):
        """The session answered after the hop (within 10 s)."""
        t = time.time()
        s = wait_for(lambda: (lambda s: s if s.get("broken") or s.get("last_ok", 0) > t + 0.2
                              else None)(self.read()), 10, f"{what}: the client's session answering")
        check(not s.get("broken"), f"{what}: the client's session broke: {s['broken']}")
        check(self.proc.poll() is None, f"{what}: the client exited {self.proc.returncode}")
        return s

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def case_linux(rack):
    image, initrd = h.guest_image()
    ip = hosts.guest_ip(1)
    a = rack.hosts[0]
    name = "web"
    session = None
    try:
        create(a, name, "--memory", "256M", "--cpus", "1", "--kernel", image, "--initrd", initrd,
               "--append", GUEST_APPEND.replace("{ip}", ip), "--nic", "bridge=br0")
        start(a, name)
        t0 = time.monotonic()
        boot = float(os.environ.get("MIGRATE_HOSTS_BOOT", "240"))

        def http_ok():
            r = subprocess.run(rack.client_exec([sys.executable, "-c", HTTP_GET,
                                                 f"http://{ip}/", "2"]),
                               capture_output=True, text=True, timeout=30)
            return r.stdout.strip() == f"guest-{ip}"
        try:
            rack.wait_guest(ip, boot)
            wait_for(http_ok, 60, f"HTTP from the guest at {ip}", step=0.5)
        except AssertionError as e:
            raise AssertionError(f"{e} (console: {vm_dir(a, name)}/console.log)") from None
        notes = [f"booted in {time.monotonic() - t0:.0f}s"]
        boot_log = console(a, name)
        marks = [ln.strip() for ln in boot_log.splitlines()
                 if "godwit-guest: init started" in ln or ln.startswith("Linux version")]
        check(marks, f"{a.name}: no boot line in the console log: {boot_log[-300:]!r}")
        r = subprocess.run(rack.client_exec([sys.executable, "-c", ECHO_PROBE, ip]),
                           capture_output=True, text=True, timeout=30)
        mode = "echo" if r.returncode == 0 and r.stdout.strip() == "probe" else "http"
        session = Session(rack, ip, mode)
        notes.append(f"client session: {mode}")
        route = [rack.hosts[0], rack.hosts[1], rack.hosts[2], rack.hosts[0]]
        for src, dst in zip(route, route[1:]):
            hop = f"{src.name}->{dst.name}"
            rc, res, err = migrate(src, name, dst)
            check(rc == 0, f"{hop}: migrate exit {rc}: {err.strip()} {res}")
            check_result(res, name, src, dst)
            only_on(rack, name, dst)
            text = console(dst, name)
            check(all(m in text for m in marks),
                  f"{hop}: {dst.name}'s console log lacks the first boot's lines {marks}")
            check_jobs_done(src, dst, res["job"])
            check(not os.path.exists(vm_dir(src, name)), f"{hop}: {src.name} kept the folder")
            check_hop_leftovers(rack, name, src, dst, hop)
            check(not taps(src) and len(taps(dst)) == 1,
                  f"{hop}: TAPs on br0: {src.name} {taps(src)}, {dst.name} {taps(dst)}")
            s = session.check_alive(hop)
            notes.append(f"{hop} downtime {res['downtime_ms']} ms, total "
                         f"{res['total_time_ms']} ms, {res['bytes'] >> 20} MiB, "
                         f"{res['rounds']} rounds")
        s = session.read()
        check(not s.get("broken"), f"the client's session broke: {s.get('broken')}")
        notes.append(f"client: {s['ok']} answers, {s.get('errors', 0)} errors, longest gap "
                     f"{s['max_gap'] * 1000:.0f} ms")
        return "; ".join(notes)
    finally:
        if session:
            session.stop()
        remove_everywhere(rack, name)


def case_pagepass(rack):
    name = "pp"
    a = rack.hosts[0]
    try:
        bare(a, name)
        wait_for(lambda: len(passes(console(a, name))) >= 2, 60, f"{a.name}: pass lines")
        notes = []
        route = [rack.hosts[0], rack.hosts[1], rack.hosts[2], rack.hosts[0]]
        for n, (src, dst) in enumerate(zip(route, route[1:])):
            hop = f"{src.name}->{dst.name}"
            before = max(passes(console(src, name)))
            if n == 1:
                # as a person types it: one summary line at the end
                rc, out, err = src.cli("migrate", name, dst.name, "--live", timeout=300)
                check(rc == 0, f"{hop}: migrate exit {rc}: {err.strip()}")
                m = re.search(r"^job (\d+) done after .*downtime (\d+) ms$", out, re.M)
                check(m, f"{hop}: no summary line in {out!r}")
                res = migrate_result_of(src, int(m.group(1)))
            else:
                rc, res, err = migrate(src, name, dst)
                check(rc == 0, f"{hop}: migrate exit {rc}: {err.strip()} {res}")
            check_result(res, name, src, dst)
            only_on(rack, name, dst)
            check_jobs_done(src, dst, res["job"])
            check_hop_leftovers(rack, name, src, dst, hop)
            text = wait_for(lambda: (lambda t: t if passes(t) and max(passes(t)) >= before + 2
                                     else None)(console(dst, name)), 60,
                            f"{hop}: new pass lines on {dst.name}")
            check_no_fail(dst, name, text)
            notes.append(f"{hop} {res['downtime_ms']} ms down, {res['rounds']} rounds")
        return "; ".join(notes)
    finally:
        remove_everywhere(rack, name)


def case_dirty_limit(rack):
    """`godwit migrate --live --dirty-limit 4` of a guest whose hart 0
    dirties 24 MiB as fast as it can (mig_throttle.elf, 2 vCPUs) under
    --bandwidth 256 (32 MiB/s): the job's figures show the limit while it
    holds (x-godwit-dirty-limit, 4 MB/s, vCPU 0 held back, vCPU 1 not),
    the job ends done and the VM runs on the destination only."""
    name = "dl"
    a, b = rack.hosts[0], rack.hosts[1]
    try:
        create(a, name, "--memory", "64M", "--cpus", "2", "--firmware", "none", "--kernel",
               THROTTLE, "--no-agent")
        start(a, name)
        wait_for(lambda: "thr t=" in console(a, name), 30, f"{a.name}: progress lines")
        jid = detach_migrate(a, name, b, "--live", "--dirty-limit", "4", "--bandwidth", "256")
        seen = {}

        def limited():
            j = job(a, jid)
            f = j.get("figures") or {}
            dl = f.get("x-godwit-dirty-limit")
            if dl and dl["harts"][0]["throttle-time-total-ms"] > 0:
                seen.update(dl)
                return j
            check(j["status"] == "running", f"job {jid} ended ({j['status']} {j.get('error')}) "
                                            f"with no dirty-limit in its figures")
            return None
        wait_for(limited, 60, f"{a.name}: job {jid}'s figures showing the dirty-limit", step=0.05)
        check(seen["vcpu-dirty-limit"] == 4 and seen["harts"][1]["throttle-time-total-ms"] == 0,
              f"x-godwit-dirty-limit in the figures: {seen}")
        j = wait_final(a, jid, 120)
        check(j["status"] == "done", f"job {jid}: {j['status']} {j.get('error')}")
        only_on(rack, name, b)
        wait_for(lambda: "thr t=" in console(b, name), 30, f"{b.name}: progress lines")
        return f"held vCPU 0 {seen['harts'][0]['throttle-time-total-ms']} ms, vCPU 1 0 ms"
    finally:
        remove_everywhere(rack, name)


def case_fault_dst_vm(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "fdv"
    try:
        bare(a, name)
        jid = detach_migrate(a, name, b, "--bandwidth", "40")
        _, did = wait_transfer(a, jid)
        pid = vm_pid(b, name)
        check(pid, f"{b.name}: no process for the incoming {name}")
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        j = wait_final(a, jid, 30)
        took = time.monotonic() - t0
        check(j["status"] == "failed" and j.get("error"), f"{a.name}: job {jid}: {j['status']} "
                                                          f"{j.get('error')!r}")
        check_runs_here(a, name, "after the destination's VM died")
        check_forgotten(b, name)
        dj = wait_final(b, did, 15)
        check(dj["status"] == "failed", f"{b.name}: incoming job {did}: {dj['status']}")
        return f"failed after {took:.1f}s: {j['error']}"
    finally:
        remove_everywhere(rack, name)


def case_fault_src_vm(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "fsv"
    try:
        bare(a, name)
        jid = detach_migrate(a, name, b, "--bandwidth", "40")
        _, did = wait_transfer(a, jid)
        pid = vm_pid(a, name)
        check(pid, f"{a.name}: no process for {name}")
        os.kill(pid, signal.SIGKILL)
        j = wait_final(a, jid, 30)
        check(j["status"] == "failed" and "godwit-vm" in (j.get("error") or ""),
              f"{a.name}: job {jid}: {j['status']} {j.get('error')!r}")
        st = wait_for(lambda: (lambda s: s if s in ("crashed", "stopped") else None)(
            vm_states(a).get(name)), 10, f"{a.name}: {name} recorded crashed")
        check_forgotten(b, name)
        dj = wait_final(b, did, 15)
        check(dj["status"] == "failed", f"{b.name}: incoming job {did}: {dj['status']}")
        return f"{a.name}: {st}; {j['error']}; {b.name}: {dj.get('error')}"
    finally:
        remove_everywhere(rack, name)


def case_fault_dst_daemon(rack, sig=signal.SIGKILL):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "fdd"
    try:
        bare(a, name)
        # slow enough to be mid pre-copy when the daemon dies; the long
        # limit lets the oracle (it rewrites all its pages every ~50 ms)
        # switch over once its first pass is through after the restart
        jid = detach_migrate(a, name, b, "--bandwidth", "80", "--downtime-limit", "60000")
        _, did = wait_transfer(a, jid)
        t0 = time.monotonic()
        b.daemon.proc.send_signal(sig)
        b.daemon.proc.wait(30)
        stop_s = time.monotonic() - t0
        check(stop_s < 3, f"{b.name}'s godwitd took {stop_s:.1f}s to stop")
        t0 = time.monotonic()
        # no answer: a technical hold while the source retries (pre-copy paused)
        held = wait_for(lambda: (lambda j: j if [x for x in j.get("holds") or []
                                                  if x["type"] == "technical" and
                                                  x.get("lifted") is None] else None)(
            job_show(a, jid)), 30, f"{a.name}: job {jid} on a technical hold", step=0.25)
        check(held["status"] == "held", f"{a.name}: job {jid}: {held['status']}")
        check_runs_here(a, name, "after the destination's daemon died")
        b.start_daemon()
        # the restarted destination watches its paused incoming VM again:
        # the source resumes the stream and the VM arrives
        j = wait_final(a, jid, 90)
        took = time.monotonic() - t0
        check(j["status"] == "done", f"{a.name}: job {jid}: {j['status']} {j.get('error')!r}")
        dj = wait_final(b, did, 30)
        check(dj["status"] == "done", f"{b.name}: incoming job {did}: {dj['status']} "
                                      f"{dj.get('error')}")
        only_on(rack, name, b)
        before = max(passes(console(b, name)) or [0])
        text = wait_for(lambda: (lambda t: t if max(passes(t) or [0]) >= before + 2 else None)(
            console(b, name)), 60, f"new pass lines on {b.name}")
        check_no_fail(b, name, text)
        f = j.get("figures") or {}
        return (f"stopped in {stop_s:.1f}s; done {took:.1f}s later, "
                f"{f.get('x-godwit-recoveries')} recoveries")
    finally:
        if b.daemon.proc.poll() is not None:
            b.start_daemon()
        remove_everywhere(rack, name)


def case_fault_dst_term(rack):
    return case_fault_dst_daemon(rack, signal.SIGTERM)


def case_fault_dst_late(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "fdl"
    try:
        bare(a, name)
        first = wait_for(lambda: (lambda t: t.splitlines()[0] if passes(t) else None)(
            console(a, name)), 30, f"{a.name}: a first line")
        jid = detach_migrate(a, name, b, "--bandwidth", "200", "--downtime-limit", "60000")

        def near_end():
            j = job(a, jid)
            check(j["status"] == "running", f"{a.name}: job {jid} ended early: {j['status']} "
                                            f"{j.get('error')}")
            # the long limit makes the last pass (the whole oracle area,
            # dirtied again meanwhile) a paused one of a second or more
            return j if j["phase"] == "switchover" else None
        j = wait_for(near_end, 60, f"{a.name}: job {jid} in its switchover", step=0.05)
        did = j["figures"]["destination-job"]
        b.daemon.proc.kill()
        b.daemon.proc.wait()
        # until the source's godwit-vm says completed (COMMIT sent): the
        # copy on hb, not yet adopted by a daemon, is then the only one
        wait_for(lambda: (lambda j: j if j["status"] != "running" or
                          (j.get("figures") or {}).get("status") in ("completed", "failed",
                                                                     "cancelled")
                          else None)(job(a, jid)), 60, f"{a.name}: job {jid}'s transfer ending",
                 step=0.2)
        b.start_daemon()
        j = wait_final(a, jid, 60)
        dj = wait_final(b, did, 30)
        w = where(rack, name)
        on = [k for k, v in w.items() if v == "running"]
        check(len(on) == 1, f"{name} runs on {on} ({w}); source job {j['status']} "
                            f"{j.get('error')}, destination job {dj['status']} {dj.get('error')}")
        if j["status"] == "done":
            check(on == [b.name] and dj["status"] == "done", f"done, but {w} / {dj['status']}")
            check_forgotten(a, name)
            check(first in console(b, name), f"{b.name}'s console log lacks {first!r}")
            host = b
        else:
            check(on == [a.name] and dj["status"] == "failed",
                  f"{j['status']}, but {w} / {dj['status']}")
            check_forgotten(b, name)
            host = a
        before = max(passes(console(host, name)) or [0])
        text = wait_for(lambda: (lambda t: t if max(passes(t) or [0]) >= before + 2 else None)(
            console(host, name)), 60, f"new pass lines on {host.name}")
        check_no_fail(host, name, text)
        return (f"the switchover completed without {b.name}'s daemon: adopted at its restart"
                if host is b else f"the source gave up first: {j.get('error')}")
    finally:
        if b.daemon.proc.poll() is not None:
            b.start_daemon()
        remove_everywhere(rack, name)


def case_fault_src_daemon(rack, sig=signal.SIGKILL):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "fsd"
    try:
        bare(a, name)
        first = wait_for(lambda: (lambda t: t.splitlines()[0] if passes(t) else None)(
            console(a, name)), 30, f"{a.name}: a first line")
        # about 5 s of transfer, then one short pause: it converges on its own
        jid = detach_migrate(a, name, b, "--bandwidth", "200", "--downtime-limit", "60000")
        _, did = wait_transfer(a, jid, 8 << 20)
        t0 = time.monotonic()
        a.daemon.proc.send_signal(sig)
        a.daemon.proc.wait(30)
        stop_s = time.monotonic() - t0
        check(stop_s < 3, f"{a.name}'s godwitd took {stop_s:.1f}s to stop")
        # the migration goes on without the source's daemon: the VM runs
        # there (its job then waits for the source's console log)
        wait_for(lambda: vm_states(b).get(name) == "running", 90,
                 f"{name} running on {b.name} while {a.name}'s daemon is down", step=0.25)
        t0 = time.monotonic()
        a.start_daemon()
        j = wait_final(a, jid, 60)
        check(j["status"] == "done", f"{a.name}: job {jid} after the restart: {j['status']} "
                                     f"{j.get('error')}")
        took = time.monotonic() - t0
        dj = wait_final(b, did, 40)
        check(dj["status"] == "done", f"{b.name}: incoming job {did}: {dj['status']} "
                                      f"{dj.get('error')}")
        check(phases(job(a, jid))[-1] == "done", f"{a.name}: job {jid}: {phases(job(a, jid))}")
        check_forgotten(a, name)
        only_on(rack, name, b)
        check(first in console(b, name), f"{b.name}'s console log lacks {first!r}")
        before = max(passes(console(b, name)) or [0])
        text = wait_for(lambda: (lambda t: t if max(passes(t) or [0]) >= before + 2 else None)(
            console(b, name)), 60, f"new pass lines on {b.name}")
        check_no_fail(b, name, text)
        return f"stopped in {stop_s:.1f}s; job {jid} done {took:.1f}s after the restart"
    finally:
        if a.daemon.proc.poll() is not None:
            a.start_daemon()
        remove_everywhere(rack, name)


def case_fault_src_term(rack):
    return case_fault_src_daemon(rack, signal.SIGTERM)


def case_fault_src_prepare(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "fsp"
    big = os.path.join(rack.state, "big-initrd")
    try:
        with open(big, "wb") as f:  # boot files travel in prepare: a slow one
            f.write(os.urandom(48 << 20))
        create(a, name, "--memory", "256M", "--cpus", "1", "--firmware", "none", "--kernel",
               TICKER, "--initrd", big, "--no-agent")
        start(a, name)
        jid = detach_migrate(a, name, b)
        j = wait_for(lambda: (lambda j: j if j["phase"] == "prepare" and
                              (j.get("figures") or {}).get("destination-job") else None)(
            job(a, jid)), 30, f"{a.name}: job {jid} in prepare", step=0.02)
        did = j["figures"]["destination-job"]
        a.daemon.proc.kill()
        a.daemon.proc.wait()
        a.start_daemon()
        j = wait_final(a, jid, 30)
        check(j["status"] in ("failed", "done"), f"{a.name}: job {jid}: {j['status']}")
        if j["status"] == "done":
            only_on(rack, name, b)  # the daemon died after the transfer began
            return "the transfer had started: done"
        check(j.get("error"), f"{a.name}: job {jid} failed without a reason")
        check_runs_here(a, name, "after a restart in prepare")
        check_forgotten(b, name, 30)
        dj = wait_final(b, did, 15)
        check(dj["status"] == "failed" and "source gave up" in (dj.get("error") or ""),
              f"{b.name}: incoming job {did}: {dj['status']} {dj.get('error')!r}")
        return f"{j['error']}; {b.name}: {dj.get('error')}"
    finally:
        if a.daemon.proc.poll() is not None:
            a.start_daemon()
        remove_everywhere(rack, name)


def case_fault_link(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "flk"
    port = f"h{a.index}"
    down = False
    try:
        bare(a, name)
        jid = detach_migrate(a, name, b, "--bandwidth", "40", "--give-up-after", "3")
        _, did = wait_transfer(a, jid)
        hosts.sh("ip", "-n", rack.rack_ns, "link", "set", port, "down")
        down = True
        t0 = time.monotonic()
        copies = []
        while time.monotonic() - t0 < 15:  # the hold (<= 8 s), then 3 s: it gives up
            w = where(rack, name)
            copies.append(sum(1 for s in w.values() if s == "running"))
            check(w.get(a.name) == "running", f"link down: {name} is on {w}")
            time.sleep(0.5)
        hosts.sh("ip", "-n", rack.rack_ns, "link", "set", port, "up")
        down = False
        j = wait_final(a, jid, 45)
        check(j["status"] == "failed" and "gave up" in (j.get("error") or ""),
              f"{a.name}: job {jid}: {j['status']} {j.get('error')!r}")
        t = [x for x in job_show(a, jid)["holds"] if x["type"] == "technical"]
        check(t, f"{a.name}: job {jid} had no technical hold")
        check_runs_here(a, name, "after the link came back")
        check_forgotten(b, name, 45)
        dj = wait_final(b, did, 15)
        check(dj["status"] == "failed", f"{b.name}: incoming job {did}: {dj['status']}")
        only_on(rack, name, a)
        return f"{j['error']}; {b.name}: {dj.get('error')}"
    finally:
        if down:
            hosts.sh("ip", "-n", rack.rack_ns, "link", "set", port, "up", check_rc=False)
        remove_everywhere(rack, name)


def case_fault_cancel(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "fca"
    try:
        bare(a, name)
        jid = detach_migrate(a, name, b, "--bandwidth", "40")
        _, did = wait_transfer(a, jid)
        # one job per VM: a second migration is refused at once
        rc, out, err = a.cli("migrate", name, rack.hosts[2].name)
        check(rc == 1 and "already has a job" in err, f"a second migrate: exit {rc}: "
                                                      f"{err.strip()}")
        rc, out, err = a.cli("job", "cancel", str(jid))
        check(rc == 0, f"job cancel {jid}: exit {rc}: {err.strip()}")
        j = wait_final(a, jid, 30)
        check(j["status"] == "cancelled", f"{a.name}: job {jid}: {j['status']} {j.get('error')}")
        check_runs_here(a, name, "after the cancel")
        check_forgotten(b, name)
        dj = wait_final(b, did, 15)
        check(dj["status"] in ("failed", "cancelled"), f"{b.name}: incoming job {did}: "
                                                       f"{dj['status']}")
        only_on(rack, name, a)
        # and it can go again afterwards, all the way
        rc, res, err = migrate(a, name, b)
        check(rc == 0, f"migrate after the cancel: exit {rc}: {err.strip()}")
        only_on(rack, name, b)
        return f"{j.get('error')}; {b.name}: {dj.get('error')}"
    finally:
        remove_everywhere(rack, name)


def case_fault_budget(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "fbu"
    try:
        b.daemon.stop()
        b.start_daemon("--memory-budget", "64M")
        bare(a, name)
        rc, res, err = migrate(a, name, b)
        check(rc == 1, f"migrate with a 64M budget there: exit {rc}, {res}")
        check(res and res["status"] == "failed" and res.get("phase") == "precheck",
              f"result {res}")
        check("memory" in (res.get("error") or "") and "memory" in err,
              f"the error does not name the memory: {res.get('error')!r} / {err.strip()!r}")
        check(name not in vm_states(b) and not os.path.exists(vm_dir(b, name)),
              f"{b.name} kept something of {name}")
        check_runs_here(a, name, "after the refusal")
        return res["error"]
    finally:
        b.daemon.stop()
        b.start_daemon()
        remove_everywhere(rack, name)


def case_refused(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    notes = []
    try:
        # a name taken on the destination (defined there, not even running)
        create(b, "dup", "--memory", "64M", "--firmware", "none", "--kernel", TICKER,
               "--no-agent")
        bare(a, "dup", TICKER, "64M")
        rc, res, err = migrate(a, "dup", b)
        check(rc == 1 and res and res["status"] == "failed", f"taken name: exit {rc}, {res}")
        check("dup" in (res.get("error") or "") and b.name in res["error"],
              f"taken name: the error does not name it: {res.get('error')!r}")
        check(res.get("phase") == "precheck", f"taken name: failed in {res.get('phase')}")
        check(vm_states(b).get("dup") == "defined", f"{b.name}'s own dup: {vm_states(b)}")
        check_runs_here(a, "dup", "after the taken name")
        notes.append(res["error"])
        # (a disk in the VM's folder now moves in the stream: live_disk_test.py)
        # usage
        for args in (("migrate", "dup"), ("migrate", "dup", b.name, "--bandwidth", "fast"),
                     ("migrate", "dup", b.name, "--bogus"),
                     ("migrate", "dup", b.name, "--downtime-limit", "-1")):
            rc, out, err = a.cli(*args)
            check(rc == 2, f"godwit {' '.join(args)}: exit {rc}, want 2: {err.strip()}")
        # an unknown peer and an unknown VM: one line, exit 1
        rc, out, err = a.cli("migrate", "dup", "nosuchpeer")
        check(rc == 1 and "nosuchpeer" in err, f"unknown peer: exit {rc}: {err.strip()}")
        rc, out, err = a.cli("migrate", "nosuchvm", b.name)
        check(rc == 1 and "nosuchvm" in err, f"unknown VM: exit {rc}: {err.strip()}")
        return " | ".join(notes)
    finally:
        remove_everywhere(rack, "dup")


CASES = [
    ("three-hosts-linux", case_linux),
    ("three-hosts-pagepass", case_pagepass),
    ("dirty-limit", case_dirty_limit),
    ("fault-dst-vm", case_fault_dst_vm),
    ("fault-src-vm", case_fault_src_vm),
    ("fault-dst-daemon", case_fault_dst_daemon),
    ("fault-dst-term", case_fault_dst_term),
    ("fault-dst-late", case_fault_dst_late),
    ("fault-src-daemon", case_fault_src_daemon),
    ("fault-src-term", case_fault_src_term),
    ("fault-src-prepare", case_fault_src_prepare),
    ("fault-link", case_fault_link),
    ("fault-cancel", case_fault_cancel),
    ("fault-budget", case_fault_budget),
    ("refused", case_refused),
]


def run():
    rep = h.Report()
    only = os.environ.get("MIGRATE_HOSTS_CASES", "")
    want = [c for c in CASES if not only or c[0] in only.split(",")]
    why = None
    if not os.access(agent.godwitd(), os.X_OK) or not os.access(h.godwit_vm(), os.X_OK):
        why = f"{agent.godwitd()} or {h.godwit_vm()} is not built (make)"
    elif not os.path.exists(PAGEPASS) or not os.path.exists(TICKER):
        why = f"the bare-metal guests are not built ({GUEST})"
    else:
        try:
            hosts.require_netns()
        except Skip as e:
            why = str(e)
        if not why and "--listen" not in hosts.godwitd_options():
            why = "this godwitd has no --listen"
    if why:
        for c, _ in want:
            rep.skip(c, why)
        return rep.summary()
    done = set()
    try:
        with Rack(PREFIX, 3) as rack:
            pair_all(rack)
            for name, fn in want:
                done.add(name)
                rep.case(name, fn, rack, hint=f"logs: {h.log_dir('hosts')} "
                                              f"(godwitd-{PREFIX}-h*.log)")
    except Exception as e:  # the rack or the pairing failed
        for name, _ in want:
            if name not in done:
                rep.fail(name, f"rack: {e}")
    return rep.summary()


if __name__ == "__main__":
    h.main(run)
