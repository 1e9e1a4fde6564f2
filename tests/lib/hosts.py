"""Hosts on one machine (DESIGN.md §8): a rack of godwitd hosts in network
namespaces, for the multi-host tests in tests/hosts/.

    from hosts import Rack

    with Rack("gwnt", 3) as rack:             # namespaces gwnt<pid>-rack, -ha, -hb, -hc, -cl
        a, b = rack.hosts[0], rack.hosts[1]   # Host: .name "ha", .ns, .ip 10.77.0.10, .daemon
        a.cli("vm", "list")                   # godwit -H unix:<a's socket> vm list
        a.run("ip", "-br", "addr")            # a command inside a's namespace (output, checked)
        rack.ping(rack.client_ns, b.ip)       # ICMP echo until it answers (seconds), or AssertionError

Topology (nothing is created in the root namespace; the interface names
inside the namespaces are short and fixed, only the namespaces carry the
run's pid):

    <p>-rack   bridge rack0 (no address); ports h0..hN-1 and cl, the rack
               ends of veth pairs
    <p>-hX     bridge br0 = 10.77.0.(10+i)/24, the host's own address, with
               a fixed MAC 02:77:00:00:00:(10+i) (hex); its
               port up0 is the host end of the veth to rack0 (so br0 and
               the rack are one L2 segment); the VMs' TAP devices join br0
    <p>-cl     eth0 = 10.77.0.2/24, the test client

A guest on host A's br0 and the same guest (same MAC and IP, e.g.
10.77.0.100+) on host B's br0 after a migration are on the same segment as
the client: once the guest announces itself (RARP/gratuitous ARP) the
bridges learn its new port and the client's ARP entry stays right.

Each host runs a godwitd (tests/lib/agent.py's Daemon, started with
`ip netns exec NS`) on its own state directory under
/tmp/<p>-state/<host>, `--name <host>`, `--listen <ip>:PORT` when this
godwitd knows --listen (checked with `godwitd --help`; daemons=False
starts none) and `--shared-storage DIR` with shared_storage=True (one
folder every host is given).

Cleanup always runs: on leaving the with block (exceptions included), at
exit, and on SIGTERM/SIGINT (the Rack turns an unhandled SIGTERM into
SystemExit): the daemons get SIGTERM, then every process left in the
namespaces (`ip netns pids`: the godwit-vm processes the daemons started,
in their own sessions, included) or naming the state folder on its command
line gets SIGKILL; the namespaces (and with them every interface) and the
state folder are deleted.  A leftover of a run that died (namespaces or
state folders named <prefix><pid>- whose pid is gone) is cleaned the same
way when a Rack with that prefix starts.
"""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import agent
import harness as h
from harness import Skip, check

NET = "10.77.0"
CLIENT_IP = f"{NET}.2"
PORT = 8443  # the peers' HTTPS port (--listen), the same in every namespace


def host_ip(i):
    return f"{NET}.{10 + i}"


def guest_ip(i):
    """The address the tests give the i-th guest (10.77.0.100+)."""
    return f"{NET}.{100 + i}"


def host_name(i):
    """ha, hb, hc, ..."""
    return "h" + chr(ord("a") + i)


# ---- small tools run inside a namespace ------------------------------------------------

# ICMP echo to argv[1] until an answer or argv[2] seconds: prints the
# seconds it took; exit 1 with no answer.  (This machine has no ping(8).)
PING = r"""
import os, select, socket, struct, sys, time
dst, limit = sys.argv[1], float(sys.argv[2])
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident, seq, t0 = os.getpid() & 0xffff, 0, time.monotonic()
while time.monotonic() - t0 < limit:
    seq += 1
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"godwit-ping"
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    try:
        s.sendto(body, (dst, 0))
    except OSError:
        time.sleep(0.2); continue
    end = min(time.monotonic() + 0.25, t0 + limit)
    while time.monotonic() < end:
        if not select.select([s], [], [], max(0, end - time.monotonic()))[0]: break
        pkt, addr = s.recvfrom(2048)
        ihl = (pkt[0] & 15) * 4
        t, _, _, i, q = struct.unpack("!BBHHH", pkt[ihl:ihl + 8])
        if addr[0] == dst and t == 0 and i == ident:
            print("%.3f" % (time.monotonic() - t0)); sys.exit(0)
print("no answer from %s in %.1fs" % (dst, limit)); sys.exit(1)
"""

# Broadcast from interface argv[1] the frame announce-self sends for MAC
# argv[2] (RARP request, ethertype 0x8035), argv[3] times: the bridges learn
# where the MAC now is, as they do when a migrated VM announces itself.
ANNOUNCE = r"""
import socket, sys, time
ifname, mac, n = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), int(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
frame = (b"\xff" * 6 + mac + b"\x80\x35" + bytes([0, 1, 8, 0, 6, 4, 0, 3]) + mac + bytes(4)
         + mac + bytes(4)).ljust(60, b"\0")
for i in range(n):
    s.send(frame); time.sleep(0.05)
"""


def sh(*argv, check_rc=True, timeout=60):
    """Run a command; its output (stdout and stderr).  AssertionError when
    it fails, unless check_rc is False."""
    r = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))}: exit {r.returncode}: "
                             f"{r.stdout.strip()[-400:]}")
    return r.stdout


def netns_list():
    """The names of the network namespaces (`ip netns list`)."""
    out = sh("ip", "netns", "list", check_rc=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(ns):
    out = sh("ip", "netns", "pids", ns, check_rc=False)
    return [int(p) for p in out.split() if p.isdigit()]


def pids_naming(text):
    """Pids of the processes whose command line contains text."""
    res = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd:
            res.append(int(d))
    return res


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def kill_wait(pids, sig=signal.SIGKILL, timeout=5.0):
    """Send sig to pids and wait (up to timeout) until they are gone."""
    for p in pids:
        try:
            os.kill(p, sig)
        except OSError:
            pass
    end = time.monotonic() + timeout
    while time.monotonic() < end and any(pid_alive(p) and not _zombie(p) for p in pids):
        time.sleep(0.02)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def state_root(run):
    return f"/tmp/{run}-state"


def destroy(run, namespaces=None):
    """Remove everything of run (<prefix><pid>): its processes, namespaces
    and state folder.  Returns what it removed (for a log line)."""
    if namespaces is None:
        namespaces = [n for n in netns_list() if n.startswith(run + "-")]
    state = state_root(run)
    pids = set(pids_naming(state + "/"))
    for ns in namespaces:
        pids.update(netns_pids(ns))
    pids.discard(os.getpid())
    kill_wait(sorted(pids))
    for ns in namespaces:
        # a process that escaped the kill would keep the namespace (and its
        # interfaces) alive after the name is gone: try once more
        rest = [p for p in netns_pids(ns) if p != os.getpid()]
        if rest:
            kill_wait(rest)
        sh("ip", "netns", "del", ns, check_rc=False)
    shutil.rmtree(state, ignore_errors=True)
    return {"pids": sorted(pids), "namespaces": namespaces}


def clean_leftovers(prefix):
    """Destroy every run of prefix whose pid is dead: namespaces
    <prefix><pid>-* and state folders /tmp/<prefix><pid>-state.  Returns the
    runs cleaned."""
    rx = re.compile(rf"^({re.escape(prefix)}(\d+))-")
    runs = {}
    for ns in netns_list():
        m = rx.match(ns)
        if m:
            runs.setdefault(m.group(1), (int(m.group(2)), []))[1].append(ns)
    for d in os.listdir("/tmp"):
        m = rx.match(d)
        if m and d == m.group(1) + "-state":
            runs.setdefault(m.group(1), (int(m.group(2)), []))
    cleaned = []
    for run, (pid, nss) in sorted(runs.items()):
        if pid != os.getpid() and not pid_alive(pid):
            destroy(run, nss)
            cleaned.append(run)
    return cleaned


def require_netns():
    """Skip unless this machine can make network namespaces, veth pairs and
    bridges (root, iproute2)."""
    if os.geteuid() != 0:
        raise Skip("needs root (network namespaces)")
    if not shutil.which("ip"):
        raise Skip("needs iproute2 (ip)")


def godwitd_options():
    """The long options `godwitd --help` lists (empty if it does not run)."""
    try:
        r = subprocess.run([agent.godwitd(), "--help"], capture_output=True, text=True,
                           timeout=10)
    except OSError:
        return set()
    return set(re.findall(r"(--[a-z][a-z-]*)", r.stdout + r.stderr))


# ---- the rack ----------------------------------------------------------------------------


class Host:
    """One host of a Rack: namespace ns, name (ha...), address ip, state
    folder state, and its godwitd (daemon; None with daemons=False)."""

    def __init__(self, rack, i):
        self.rack = rack
        self.index = i
        self.name = host_name(i)
        self.ns = f"{rack.run}-{self.name}"
        self.ip = host_ip(i)
        self.mac = "02:77:00:00:00:%02x" % (10 + i)  # br0's, fixed
        self.state = os.path.join(rack.state, self.name)
        self.sock = os.path.join(self.state, "godwitd.sock")
        self.listen = None
        self.daemon = None

    def exec(self, argv):
        """argv prefixed to run inside the host's namespace."""
        return ["ip", "netns", "exec", self.ns, *map(str, argv)]

    def run(self, *argv, check_rc=True, timeout=60):
        """Run a command in the host's namespace: its output."""
        return sh(*self.exec(argv), check_rc=check_rc, timeout=timeout)

    def ip_cmd(self, *args, check_rc=True):
        """`ip -n NS ARGS`."""
        return sh("ip", "-n", self.ns, *args, check_rc=check_rc)

    def start_daemon(self, *extra):
        """Start this host's godwitd and wait until its socket answers."""
        args = ["--name", self.name]
        if self.rack.listen_ok:
            self.listen = f"{self.ip}:{self.rack.port}"
            args += ["--listen", self.listen]
        if self.rack.shared:
            args += ["--shared-storage", self.rack.shared]
        log = os.path.join(h.log_dir("hosts"), f"godwitd-{self.rack.prefix}-{self.name}.log")
        open(log, "w").close()  # this run's log only
        self.daemon = agent.Daemon(self.state, *args, *extra, prefix=self.exec([]),
                                   log_name=f"{self.rack.prefix}-{self.name}")
        self.daemon.wait_socket(timeout=20)
        return self.daemon

    def api(self, method, path, body=None, timeout=30):
        return agent.request(self.sock, method, path, body, timeout=timeout)

    def cli(self, *args, timeout=120, env=None):
        """`godwit -H unix:SOCK ARGS`: (exit code, stdout, stderr).  The CLI
        talks to the socket file, so it needs no namespace."""
        return agent.cli(self.sock, *args, timeout=timeout, env=env)

    def cli_json(self, *args, timeout=120):
        return agent.cli_json(self.sock, *args, timeout=timeout)

    def add_tap(self, name, bridge="br0"):
        """A TAP device (persistent, up) on the host's bridge."""
        self.ip_cmd("tuntap", "add", "dev", name, "mode", "tap")
        self.ip_cmd("link", "set", name, "master", bridge)
        self.ip_cmd("link", "set", name, "up")
        return name


class Rack:
    """DESIGN.md §8's hosts on one machine; see the module's docstring.

    prefix: a short word (1-6 lowercase letters, e.g. "gwnt"): every name
    of the run starts with prefix + our pid, so one Rack per prefix at a
    time in a process.  n_hosts: 1..26.  daemons: start a
    godwitd per host.  listen: pass --listen when godwitd supports it.
    shared_storage: give every daemon one --shared-storage folder
    (self.shared).  port: the --listen port."""

    def __init__(self, prefix, n_hosts, daemons=True, listen=True, shared_storage=False,
                 port=PORT, daemon_args=()):
        # letters only: the pid that follows must be told apart from it
        check(re.fullmatch(r"[a-z]{1,6}", prefix) is not None,
              f"Rack prefix {prefix!r}: 1-6 lowercase letters")
        check(1 <= n_hosts <= 26, "1 to 26 hosts")
        self.prefix = prefix
        self.run = f"{prefix}{os.getpid()}"
        self.n = n_hosts
        self.rack_ns = f"{self.run}-rack"
        self.client_ns = f"{self.run}-cl"
        self.state = state_root(self.run)
        self.port = port
        self.want_daemons = daemons
        self.listen_ok = listen and "--listen" in godwitd_options() if daemons else False
        self.shared = os.path.join(self.state, "shared") if shared_storage else None
        self.daemon_args = list(daemon_args)
        self.hosts = [Host(self, i) for i in range(n_hosts)]
        self.cleaned = []  # leftover runs removed at start
        self._closed = True
        self._old_term = None

    # ---- life cycle

    def __enter__(self):
        require_netns()
        check(not any(r.run == self.run for r in _open), f"a Rack {self.run} is already open")
        self.cleaned = clean_leftovers(self.prefix)
        self._closed = False
        _open.add(self)
        if threading_main():
            self._old_term = signal.getsignal(signal.SIGTERM)
            if self._old_term in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _sigterm)
        try:
            os.makedirs(self.state, mode=0o700)
            if self.shared:
                os.makedirs(self.shared, mode=0o700)
            self._build()
            if self.want_daemons:
                for host in self.hosts:
                    host.start_daemon(*self.daemon_args)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Stop the daemons, kill what is left, delete namespaces and
        state.  Idempotent; SIGTERM/SIGINT are ignored while it runs."""
        if self._closed:
            return
        main = threading_main()
        if main:
            old = (signal.signal(signal.SIGTERM, signal.SIG_IGN),
                   signal.signal(signal.SIGINT, signal.SIG_IGN))
        try:
            daemons = [x.daemon for x in self.hosts if x.daemon]
            for d in daemons:  # all at once, then wait for each
                if d.proc.poll() is None:
                    d.proc.send_signal(signal.SIGTERM)
            for d in daemons:
                try:
                    d.stop()
                except Exception:
                    pass
            destroy(self.run, [n for n in netns_list() if n.startswith(self.run + "-")])
        finally:
            self._closed = True
            _open.discard(self)
            if main:
                signal.signal(signal.SIGINT, old[1])
                term = old[0]
                if term is _sigterm and not _open and self._old_term is not None:
                    term = self._old_term  # the last rack gives SIGTERM back
                signal.signal(signal.SIGTERM, term)

    # ---- building

    def _build(self):
        sh("ip", "netns", "add", self.rack_ns)
        self._ns_common(self.rack_ns)
        sh("ip", "-n", self.rack_ns, "link", "add", "rack0", "address", "02:77:00:00:00:01",
           "type", "bridge")
        sh("ip", "-n", self.rack_ns, "link", "set", "rack0", "up")
        for host in self.hosts:
            sh("ip", "netns", "add", host.ns)
            self._ns_common(host.ns)
            port = f"h{host.index}"
            sh("ip", "-n", self.rack_ns, "link", "add", port, "type", "veth", "peer", "name",
               "up0", "netns", host.ns)
            sh("ip", "-n", self.rack_ns, "link", "set", port, "master", "rack0", "up")
            # a fixed MAC: a bridge otherwise takes the lowest of its ports'
            # and changes it when a VM's TAP comes or goes, leaving the
            # peers' ARP entries for the host pointing nowhere
            host.ip_cmd("link", "add", "br0", "address", host.mac, "type", "bridge")
            host.ip_cmd("link", "set", "up0", "master", "br0", "up")
            host.ip_cmd("addr", "add", f"{host.ip}/24", "dev", "br0")
            host.ip_cmd("link", "set", "br0", "up")
        sh("ip", "netns", "add", self.client_ns)
        self._ns_common(self.client_ns)
        sh("ip", "-n", self.rack_ns, "link", "add", "cl", "type", "veth", "peer", "name", "eth0",
           "netns", self.client_ns)
        sh("ip", "-n", self.rack_ns, "link", "set", "cl", "master", "rack0", "up")
        sh("ip", "-n", self.client_ns, "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        sh("ip", "-n", self.client_ns, "link", "set", "eth0", "up")

    @staticmethod
    def _ns_common(ns):
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        # no IPv6 chatter (router solicitations, DAD): the bridges learn a
        # MAC's port only from what the tests send
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1", check_rc=False)

    # ---- helpers

    def namespaces(self):
        return [self.rack_ns, *(x.ns for x in self.hosts), self.client_ns]

    def host(self, name):
        return next(x for x in self.hosts if x.name == name)

    def client(self, *argv, check_rc=True, timeout=60):
        """Run a command in the client namespace: its output."""
        return sh("ip", "netns", "exec", self.client_ns, *argv, check_rc=check_rc,
                  timeout=timeout)

    def client_exec(self, argv):
        return ["ip", "netns", "exec", self.client_ns, *map(str, argv)]

    @staticmethod
    def ping(ns, ip, timeout=10.0):
        """ICMP echo from namespace ns to ip, repeated until it answers:
        the seconds that took.  AssertionError after timeout seconds."""
        r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", PING, ip,
                            str(timeout)], capture_output=True, text=True, timeout=timeout + 30)
        check(r.returncode == 0, f"ping {ip} from {ns}: {(r.stdout + r.stderr).strip()}")
        return float(r.stdout.strip())

    def wait_guest(self, ip, timeout=120.0):
        """Wait until ip answers ICMP from the client namespace."""
        return self.ping(self.client_ns, ip, timeout)

    @staticmethod
    def announce(ns, ifname, mac, count=3):
        """Broadcast announce-self's RARP for mac from ifname in ns."""
        sh("ip", "netns", "exec", ns, sys.executable, "-c", ANNOUNCE, ifname, mac, str(count))


class PseudoGuest:
    """A stand-in for a VM, no emulator needed: a namespace <run>-NAME whose
    eth0 (MAC, IP/24) is the far end of a veth pair whose near end (port,
    in the host's namespace) is a port of a host's br0, where a VM's TAP
    would be.  plug(host) puts it on that host (unplugging it from the
    last one: the pair is deleted and made again, the MAC and IP kept),
    announce() broadcasts the RARP a migrated VM sends."""

    def __init__(self, rack, name, mac, ip, port="pg0"):
        self.rack, self.mac, self.ip, self.port = rack, mac, ip, port
        self.ns = f"{rack.run}-{name}"
        self.host = None
        sh("ip", "netns", "add", self.ns)
        Rack._ns_common(self.ns)

    def unplug(self):
        if self.host:
            self.host.ip_cmd("link", "del", self.port, check_rc=False)
            self.host = None

    def plug(self, host, announce=True):
        self.unplug()
        host.ip_cmd("link", "add", self.port, "type", "veth", "peer", "name", "eth0", "netns",
                    self.ns)
        host.ip_cmd("link", "set", self.port, "master", "br0", "up")
        sh("ip", "-n", self.ns, "link", "set", "eth0", "address", self.mac)
        sh("ip", "-n", self.ns, "addr", "add", f"{self.ip}/24", "dev", "eth0")
        sh("ip", "-n", self.ns, "link", "set", "eth0", "up")
        self.host = host
        if announce:
            self.announce()

    def announce(self, count=3):
        Rack.announce(self.ns, "eth0", self.mac, count)


# ---- cleanup at exit and on SIGTERM ------------------------------------------------------

_open = set()


def threading_main():
    import threading
    return threading.current_thread() is threading.main_thread()


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)


@atexit.register
def _close_all():
    for rack in list(_open):
        rack.close()
