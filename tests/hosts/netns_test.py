#!/usr/bin/env python3
"""Hosts on one machine (DESIGN.md §8, tests/lib/hosts.py): the rack of
network namespaces every multi-host test runs on.

Cases:
  three-hosts   a Rack of three hosts: each godwitd answers GET /1.0 on its
                socket with its name (ha, hb, hc); the namespaces are
                <prefix><pid>-rack/-ha/-hb/-hc/-cl, and the root namespace
                got no interface
  rack-ping     every host pings every other host and the client over the
                rack (10.77.0.10+i, 10.77.0.2), and the client every host
  listen        each daemon listens on its rack address (10.77.0.10+i:8443,
                `ss` in its namespace); SKIP while godwitd has no --listen,
                or accepts it before peers are built and serves nothing
  peer-join     hb makes a join token for its rack address, ha adds hb with
                it over the rack (mutual TLS): ha lists hb (and says whether
                hb lists ha); SKIP while `godwit peer` is not built
  guest-moves   the L2 design migrations rely on: a pseudo-guest (a
                namespace with MAC 52:54:00:77:00:64 and 10.77.0.100 on a
                veth whose other end is a port of host A's br0, where a VM's
                TAP goes; a TAP is put on A's and B's br0 too) answers the
                client; it moves to host B's br0 (deleted, made again with
                the same MAC and IP, RARP announced as announce-self does):
                the client reaches it again at once with its ARP entry
                unchanged, and the rack's bridge has learnt the MAC on B's
                port; then back to A.  Each br0 keeps its fixed MAC while
                ports come and go (else the hosts' ARP entries go stale)
  vm-moves      a real guest (the Debian image, godwit-vm with a TAP on ha's
                br0, 10.77.0.101 and busybox httpd set up from its kernel
                command line) migrates live ha -> hb -> ha with godwit-vm's
                own -incoming tcp: and QMP migrate over the rack (no godwitd
                yet): after each hop the client's ICMP and HTTP reach it
                within 3 s and rack0 has learnt its new port; SKIP without
                godwit-vm or the guest image
  cleanup       after the Rack's with block (a setsid "VM" process started
                in host A's namespace outside the daemon included): no
                namespace, root-namespace interface, process or state folder
                of the run remains
  sigterm       a child python holding a Rack gets SIGTERM: it exits and
                leaves nothing behind
  crash         a child python holding a Rack (daemons, a setsid "VM") is
                SIGKILLed: its namespaces, daemons and state stay; a new
                Rack with the same prefix removes all of them at start

Needs root and iproute2 (SKIP otherwise).  Environment: BUILD
(build/release), NETNS_TEST_CASES (a subset), NETNS_TEST_BOOT (seconds for
vm-moves' guest to answer, 240), GODWIT_VM, GODWIT_GUEST_IMAGE/_INITRD.  Prints PASS/FAIL/SKIP lines
and `N passed, N failed, N skipped`.
"""
import os
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
from hosts import PseudoGuest, Rack  # noqa: E402

PREFIX = "gwnt"
MAC = "52:54:00:77:00:64"


def root_links():
    return {line.split(":")[1].strip().split("@")[0]
            for line in hosts.sh("ip", "-o", "link").splitlines() if ":" in line}


def leftovers(run):
    """What of run still exists: namespaces, processes naming its state
    folder, the state folder."""
    left = [f"netns {n}" for n in hosts.netns_list() if n.startswith(run + "-")]
    left += [f"pid {p}" for p in hosts.pids_naming(hosts.state_root(run) + "/")
             if not hosts._zombie(p)]
    if os.path.exists(hosts.state_root(run)):
        left.append(f"dir {hosts.state_root(run)}")
    return left


def running(pids, grace=3.0):
    """Those of pids still running (zombies waiting for a reaper do not
    count) after up to grace seconds."""
    end = time.monotonic() + grace
    while True:
        left = [p for p in pids if hosts.pid_alive(p) and not hosts._zombie(p)]
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.05)


def setsid_vm(rack, host):
    """A stand-in godwit-vm: a process in host's namespace in its own
    session, not our child, naming the host's state folder (as a VM the
    daemon started would).  Its pid."""
    marker = os.path.join(host.state, "vms", "fake")
    subprocess.run(host.exec(["setsid", "-f", sys.executable, "-c",
                              "import time; time.sleep(3600)", marker]),
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=10)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        pids = hosts.pids_naming(marker)
        if pids:
            return pids[0]
        time.sleep(0.05)
    raise AssertionError("the setsid stand-in VM did not start")


def case_three_hosts(rack, before):
    check([x.name for x in rack.hosts] == ["ha", "hb", "hc"], "host names")
    for x in rack.hosts:
        st, body = x.api("GET", "/1.0")
        check(st == 200 and body.get("host") == x.name, f"{x.name}: GET /1.0: {st} {body}")
        check(x.daemon.proc.poll() is None, f"{x.name}: godwitd exited")
        check(hosts.pid_alive(x.daemon.proc.pid) and x.daemon.proc.pid in hosts.netns_pids(x.ns),
              f"{x.name}: godwitd not in namespace {x.ns}")
        addr = x.run("ip", "-4", "-o", "addr", "show", "br0")
        check(f"{x.ip}/24" in addr, f"{x.name}: br0 has {addr.strip()}")
        master = x.ip_cmd("-o", "link", "show", "up0")
        check("master br0" in master, f"{x.name}: up0 not on br0: {master.strip()}")
    names = set(hosts.netns_list())
    want = {f"{rack.run}-{s}" for s in ("rack", "ha", "hb", "hc", "cl")}
    check(want <= names, f"namespaces {sorted(names)}, want {sorted(want)}")
    new = root_links() - before
    check(not new, f"interfaces made in the root namespace: {sorted(new)}")
    return f"{rack.run}-*: listen {'on' if rack.listen_ok else 'not supported'}"


def case_rack_ping(rack):
    worst = 0.0
    for a in rack.hosts:
        for b in [*rack.hosts, None]:
            if b is a:
                continue
            worst = max(worst, rack.ping(a.ns, b.ip if b else hosts.CLIENT_IP, 5))
        worst = max(worst, rack.ping(rack.client_ns, a.ip, 5))
    return f"slowest first answer {worst * 1000:.0f} ms"


def case_listen(rack):
    if "--listen" not in hosts.godwitd_options():
        raise Skip("this godwitd has no --listen")
    peer_cli = subprocess.run([agent.godwit(), "peer", "--help"], capture_output=True).returncode
    for x in rack.hosts:
        check(x.listen == f"{x.ip}:{hosts.PORT}", f"{x.name}: started with --listen {x.listen}")
        out = x.run("ss", "-Hltn")
        if f"{x.ip}:{hosts.PORT}" not in out:
            if peer_cli != 0:
                raise Skip(f"godwitd accepts --listen but serves nothing on {x.listen} yet "
                           "(the peer API is not built)")
            raise AssertionError(f"{x.name}: nothing listens on {x.listen}: {out.strip()}")
        check(f"0.0.0.0:{hosts.PORT}" not in out, f"{x.name}: listens on every address")


def case_peer_join(rack):
    if subprocess.run([agent.godwit(), "peer", "--help"], capture_output=True).returncode:
        raise Skip("`godwit peer` is not built yet")
    if not rack.listen_ok:
        raise Skip("this godwitd has no --listen")
    a, b = rack.hosts[0], rack.hosts[1]
    rc, out, err = b.cli("peer", "token", "--address", b.listen)
    check(rc == 0 and out.strip(), f"hb: peer token: exit {rc}: {err.strip()}")
    token = out.split()[-1]
    rc, out, err = a.cli("peer", "add", "hb", token, timeout=60)
    check(rc == 0, f"ha: peer add hb: exit {rc}: {(out + err).strip()}")
    rc, out, err = a.cli("peer", "list")
    check(rc == 0 and "hb" in out.split(), f"ha: peer list: exit {rc}: {out.strip()} {err}")
    rc, out, _ = b.cli("peer", "list")
    return "hb lists ha too" if rc == 0 and "ha" in out.split() else "hb does not list ha"


def fdb_port(rack, mac):
    """The rack0 port where the rack's bridge has learnt mac (or None)."""
    out = hosts.sh("bridge", "-n", rack.rack_ns, "fdb", "show", "br", "rack0")
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == mac and "dev" in f:
            return f[f.index("dev") + 1]
    return None


def br0_mac(host):
    return host.ip_cmd("-o", "link", "show", "br0").split("link/ether")[1].split()[0]


def neigh(rack, ip):
    return hosts.sh("ip", "-n", rack.client_ns, "neigh", "show", ip).strip()


def case_guest_moves(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    check(all(br0_mac(x) == x.mac for x in (a, b)), "br0's MAC is not the fixed one")
    for x in (a, b):  # where godwit-vm's TAP devices go
        x.add_tap("gwtap0")
        check("master br0" in x.ip_cmd("-o", "link", "show", "gwtap0"), f"{x.name}: TAP")
    g = PseudoGuest(rack, "pg", MAC, hosts.guest_ip(0))
    notes = []
    g.plug(a)
    t = rack.wait_guest(g.ip, 10)
    check(MAC in neigh(rack, g.ip), f"client's neighbour entry: {neigh(rack, g.ip)}")
    check(fdb_port(rack, MAC) == "h0", f"rack0 learnt {MAC} on {fdb_port(rack, MAC)}, want h0")
    notes.append(f"on ha {t * 1000:.0f} ms")
    for dst, port in ((b, "h1"), (a, "h0")):
        before = neigh(rack, g.ip)
        g.plug(dst)
        check(fdb_port(rack, MAC) == port,
              f"after the move to {dst.name}, rack0 has {MAC} on {fdb_port(rack, MAC)}")
        t = rack.ping(rack.client_ns, g.ip, 3)
        check(t < 1.0, f"{dst.name}: the first answer took {t:.2f}s")
        after = neigh(rack, g.ip)
        check(MAC in after and before.split("lladdr")[1].split()[0] ==
              after.split("lladdr")[1].split()[0], f"client's ARP entry changed: {before} -> {after}")
        rack.ping(dst.ns, g.ip, 3)
        notes.append(f"on {dst.name} {t * 1000:.0f} ms")
    g.unplug()
    for x in (a, b):
        x.ip_cmd("link", "del", "gwtap0")
        check(br0_mac(x) == x.mac, f"{x.name}: br0's MAC changed to {br0_mac(x)} as ports came "
                                   "and went (peers' ARP entries would go stale)")
    return ", ".join(notes)


# The guest image has no network hook: the kernel gives ENV=... and
# GODWIT_RUN=... to /init as environment, and the console's interactive ash
# sources $ENV, this command line, whose last words run GODWIT_RUN
# (scripts/demo.sh explains it).
GUEST_APPEND = ('console=ttyS0 ENV=/proc/cmdline GODWIT_RUN="[ -d /www ] || { mkdir /www; '
                'ip link set eth0 up; ip addr add {ip}/24 dev eth0; echo guest-{ip} '
                '>/www/index.html; httpd -h /www; }" eval "$GODWIT_RUN"')
VM_MAC = "52:54:00:77:00:65"

HTTP_GET = r"""
import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode().strip())
"""


def case_vm_moves(rack):
    vm_bin = h.godwit_vm()
    if not os.access(vm_bin, os.X_OK):
        raise Skip(f"{vm_bin} is not built")
    image, initrd = h.guest_image()
    ip = hosts.guest_ip(1)
    logs = h.log_dir("hosts")
    tmp = os.path.join(rack.state, "vm")
    os.makedirs(tmp)
    vms = []

    def start(host, n, incoming=None):
        tap = f"gwtv{n}"
        host.add_tap(tap)
        argv = host.exec([vm_bin, "-M", "virt", "-m", "256M", "-smp", "1", "-nographic",
                          "-kernel", image, "-initrd", initrd,
                          "-append", GUEST_APPEND.replace("{ip}", ip),
                          "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
                          "-device", f"virtio-net-device,netdev=n0,mac={VM_MAC}"]
                         + (["-incoming", incoming] if incoming else []))
        vm = h.VM(f"vm{n}", argv, out=os.path.join(logs, f"netns-vm{n}-{host.name}.log"),
                  qmp=os.path.join(tmp, f"{n}.qmp"))
        vms.append(vm)
        vm.connect(30)
        return vm

    def reach(within):
        t = rack.ping(rack.client_ns, ip, within)
        r = subprocess.run(rack.client_exec([sys.executable, "-c", HTTP_GET, f"http://{ip}/",
                                             within]), capture_output=True, text=True,
                           timeout=within + 30)
        check(r.stdout.strip() == f"guest-{ip}", f"HTTP from the client: {r.stdout!r} "
                                                 f"{r.stderr.strip()[-300:]}")
        return t

    try:
        a, b = rack.hosts[0], rack.hosts[1]
        vm = start(a, 0)
        t0 = time.monotonic()
        try:
            reach(float(os.environ.get("NETNS_TEST_BOOT", "240")))
        except AssertionError as e:
            raise AssertionError(f"{e} (console: {vm.out_path})") from None
        notes = [f"booted in {time.monotonic() - t0:.0f}s"]
        for n, (src_host, dst) in enumerate(((a, b), (b, a)), 1):
            uri = f"tcp:{dst.ip}:4444"
            nvm = start(dst, n, incoming=uri)
            vm.cmd("migrate", uri=uri)
            end = time.monotonic() + 120
            while True:
                info = vm.cmd("query-migrate")
                if info.get("status") in ("completed", "failed", "cancelled"):
                    break
                check(time.monotonic() < end, f"migration {src_host.name} -> {dst.name}: {info}")
                time.sleep(0.1)
            check(info["status"] == "completed", f"{src_host.name} -> {dst.name}: {info}")
            nvm.wait_status(("running",), 30)
            vm.kill()
            vm = nvm
            t = reach(3)
            port = f"h{dst.index}"
            check(fdb_port(rack, VM_MAC) == port,
                  f"rack0 has the guest on {fdb_port(rack, VM_MAC)}, want {port}")
            notes.append(f"{src_host.name}->{dst.name} downtime {info.get('downtime')} ms, "
                         f"answer after {t * 1000:.0f} ms")
        return "; ".join(notes)
    finally:
        for vm in vms:
            vm.kill()


def case_cleanup(before):
    with Rack(PREFIX, 2) as rack:
        run = rack.run
        vm = setsid_vm(rack, rack.hosts[0])
        daemons = [x.daemon.proc.pid for x in rack.hosts]
        check(vm in hosts.netns_pids(rack.hosts[0].ns), "the stand-in VM is in host A's namespace")
        PseudoGuest(rack, "pg", MAC, hosts.guest_ip(0)).plug(rack.hosts[1])
    left = leftovers(run)
    check(not left, f"left behind: {left}")
    check(not running([vm, *daemons]), f"still running: {running([vm, *daemons])}")
    new = root_links() - before
    check(not new, f"interfaces left in the root namespace: {sorted(new)}")


CHILD = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
import hosts
sys.path.insert(0, os.path.dirname(sys.argv[2]))
from netns_test import setsid_vm
with hosts.Rack(sys.argv[3], 2, shared_storage=True) as rack:
    vm = setsid_vm(rack, rack.hosts[1])
    print("ready", rack.run, vm, *[x.daemon.proc.pid for x in rack.hosts], flush=True)
    time.sleep(600)
"""


def start_child(prefix):
    p = subprocess.Popen([sys.executable, "-c", CHILD, LIB, os.path.abspath(__file__), prefix],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    if not line or line[0] != "ready":
        p.kill()
        raise AssertionError(f"child Rack: {line} {p.stderr.read()[-600:]}")
    return p, line[1], [int(x) for x in line[2:]]


def case_sigterm():
    p, run, pids = start_child(PREFIX)
    check(len(leftovers(run)) >= 5, f"the child's rack is not there: {leftovers(run)}")
    p.send_signal(signal.SIGTERM)
    rc = p.wait(30)
    check(rc == 143, f"child exit {rc}: {p.stderr.read()[-400:]}")
    left = leftovers(run) + [f"pid {x}" for x in running(pids)]
    check(not left, f"left behind after SIGTERM: {left}")


def case_crash():
    p, run, pids = start_child(PREFIX)
    p.kill()
    p.wait()
    left = leftovers(run)
    check(any(x.startswith("netns") for x in left) and any(x.startswith("dir") for x in left)
          and all(hosts.pid_alive(x) for x in pids),
          f"after SIGKILL the child's rack should still be there: {left}")
    with Rack(PREFIX, 1, daemons=False) as rack:
        check(run in rack.cleaned, f"the new Rack cleaned {rack.cleaned}, not {run}")
        left = leftovers(run) + [f"pid {x}" for x in running(pids)]
        check(not left, f"left behind by the crash after a new Rack: {left}")
        rack.ping(rack.client_ns, rack.hosts[0].ip, 5)
    return f"removed {run}: {len(pids)} processes"


def run():
    cases = ["three-hosts", "rack-ping", "listen", "peer-join", "guest-moves", "vm-moves",
             "cleanup", "sigterm", "crash"]
    rep = h.Report()
    want = h.selected([(c,) for c in cases], os.environ.get("NETNS_TEST_CASES", ""))
    want = [c[0] for c in want]
    why = None
    if not os.access(agent.godwitd(), os.X_OK):
        why = f"{agent.godwitd()} is not built (make)"
    else:
        try:
            hosts.require_netns()
        except Skip as e:
            why = str(e)
    if why:
        for c in want:
            rep.skip(c, why)
        return rep.summary()
    before = root_links()
    shared = [c for c in want
              if c in ("three-hosts", "rack-ping", "listen", "peer-join", "guest-moves",
                       "vm-moves")]
    done = {}
    if shared:
        try:
            with Rack(PREFIX, 3) as rack:
                for name, fn, args in (("three-hosts", case_three_hosts, (rack, before)),
                                       ("rack-ping", case_rack_ping, (rack,)),
                                       ("listen", case_listen, (rack,)),
                                       ("peer-join", case_peer_join, (rack,)),
                                       ("guest-moves", case_guest_moves, (rack,)),
                                       ("vm-moves", case_vm_moves, (rack,))):
                    if name in want:
                        done[name] = True
                        rep.case(name, fn, *args, hint=f"logs: {h.log_dir('hosts')}")
        except Exception as e:  # the rack itself failed (setup or cleanup)
            for c in shared:
                if not done.get(c):
                    rep.fail(c, f"rack: {e}")
    for name, fn, args in (("cleanup", case_cleanup, (before,)), ("sigterm", case_sigterm, ()),
                           ("crash", case_crash, ())):
        if name in want:
            rep.case(name, fn, *args)
    return rep.summary()


if __name__ == "__main__":
    h.main(run)
