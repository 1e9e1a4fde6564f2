#!/usr/bin/env python3
"""virtio-net on godwit-vm with a Debian riscv64 guest: user and TAP networking.

Each group boots the guest image (guest/build.sh) on a pty (guest/console.py)
and types commands into its shell:

  user group (-netdev user with a hostfwd, two NICs):
    mac             the guest sees the configured MAC on one NIC and QEMU's
                    default 52:54:00:12:34:56 on the NIC without mac=
    dhcp            busybox udhcpc leases 10.0.2.15 from 10.0.2.2, default
                    route via 10.0.2.2, DNS 10.0.2.3
    hostfwd-http    the guest runs busybox httpd; the host fetches a file of
                    known content through hostfwd (urllib) and compares
    guest-to-host   the guest downloads 256 KiB from an HTTP server on the
                    host's 127.0.0.1 (as 10.0.2.2) and uploads 256 KiB to a
                    TCP listener there; sha256 compared both ways
  tap group (in a private network namespace: a bridge 192.168.77.1/24 and
  a TAP device, godwit-vm run inside it with `ip netns exec`):
    tap-ping        guest pings the bridge, the namespace pings the guest
    tap-tcp         1 MiB of random data each way over TCP, sha256 compared
  The namespace is always deleted afterwards; no packet leaves it.  Needs
  root and iproute2 (skipped otherwise).

Prints `PASS name` / `FAIL name` / `SKIP name: reason` and a last line
`N passed, N failed, N skipped`; exits 1 if anything failed.
Environment:
  BUILD               build directory holding godwit-vm (build/release)
  NET_TEST_VMM        qemu: run the same cases on qemu-system-riscv64 (to
                      check the test itself against the reference)
  NET_TEST_CASES      comma-separated subset of the names above
  NET_TEST_TIMEOUT    seconds allowed to reach the shell (default 240)
  GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD   the guest to boot
"""

import hashlib
import http.server
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
from harness import Console, Skip, check, free_port, run, sh  # noqa: E402

MAC_SET = "52:54:00:ab:cd:ef"
MAC_DEFAULT = "52:54:00:12:34:56"
NS_NET = "192.168.77"


def net_ctx():
    """A harness.Ctx for godwit-vm, or QEMU with NET_TEST_VMM=qemu (.qemu)."""
    qemu = os.environ.get("NET_TEST_VMM") == "qemu"
    ctx = h.Ctx("net", vm="qemu-system-riscv64" if qemu else None,
                timeout_env="NET_TEST_TIMEOUT")
    ctx.qemu = qemu
    return ctx


def vm_argv(ctx, net_args, smp=2):
    """The guest with these network options (QEMU boots through OpenSBI)."""
    a = ctx.linux_argv(net_args, smp=smp)
    if ctx.qemu:
        a[1:1] = ["-bios", "default"]
    return a


# ---- host-side helpers for the user group -------------------------------------

class BlobHandler(http.server.BaseHTTPRequestHandler):
    blob = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.blob)))
        self.end_headers()
        self.wfile.write(self.blob)

    def log_message(self, *args):
        pass


def sink_server(port, size, result):
    """Accept one connection on 127.0.0.1:port, read size bytes, hash them."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    ls.settimeout(180)

    def serve():
        try:
            c, _ = ls.accept()
            c.settimeout(180)
            h, n = hashlib.sha256(), 0
            while n < size:
                d = c.recv(65536)
                if not d:
                    break
                h.update(d)
                n += len(d)
            result["n"], result["sha"] = n, h.hexdigest()
            c.close()
        except OSError as e:
            result["error"] = str(e)
        finally:
            ls.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def group_user(ctx, want, report):
    hp = free_port()
    net = ["-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{hp}-:80",
           "-device", f"virtio-net-device,netdev=n0,mac={MAC_SET}",
           "-netdev", "user,id=n1,restrict=on",
           "-device", "virtio-net-device,netdev=n1"]
    with Console(vm_argv(ctx, net), log=ctx.log("user"), timeout=120) as con:
        h.wait_shell(con, ctx.boot_timeout)

        def case_mac():
            out = run(con, "for i in /sys/class/net/eth*; do echo ${i##*/} $(cat $i/address); done")
            macs = dict(line.split() for line in out.strip().splitlines() if len(line.split()) == 2)
            check(MAC_SET in macs.values(), f"configured MAC not seen: {macs}", con)
            check(MAC_DEFAULT in macs.values(), f"default MAC not seen: {macs}", con)
            ctx.user_if = [k for k, v in macs.items() if v == MAC_SET][0]
            out = run(con, f"ip link show {ctx.user_if}")
            check(MAC_SET in out, f"ip link: {out!r}", con)

        def case_dhcp():
            ifc = getattr(ctx, "user_if", "eth0")
            out = run(con, f"udhcpc -i {ifc} -n -q -t 5 -T 3 2>&1", timeout=90)
            check("lease of 10.0.2.15 obtained from 10.0.2.2" in out, f"udhcpc: {out!r}", con)
            out = run(con, f"ip -4 addr show {ifc}; ip route; cat /etc/resolv.conf")
            check("inet 10.0.2.15/24" in out, f"address: {out!r}", con)
            check(re.search(r"default via 10\.0\.2\.2", out), f"route: {out!r}", con)
            check("nameserver 10.0.2.3" in out, f"DNS: {out!r}", con)

        def case_hostfwd():
            run(con, "mkdir -p /www && seq 1 30000 > /www/data.txt && httpd -p 80 -h /www")
            expect = "".join(f"{i}\n" for i in range(1, 30001)).encode()
            data = None
            for _ in range(30):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{hp}/data.txt",
                                                timeout=60) as r:
                        data = r.read()
                    break
                except OSError:
                    time.sleep(1)
            check(data is not None, "no answer through hostfwd", con)
            check(data == expect, f"content differs: {len(data)} bytes, want {len(expect)}", con)

        def case_guest_to_host():
            blob = random.Random(42).randbytes(256 * 1024)
            BlobHandler.blob = blob
            srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BlobHandler)
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            try:
                port = srv.server_address[1]
                out = run(con, f"wget -q -O /tmp/blob http://10.0.2.2:{port}/blob && "
                               "sha256sum /tmp/blob", timeout=180)
                check(hashlib.sha256(blob).hexdigest() in out, f"download: {out!r}", con)
            finally:
                srv.shutdown()
                srv.server_close()
            size, result = 256 * 1024, {}
            port = free_port()
            t = sink_server(port, size, result)
            out = run(con, f"head -c {size} /dev/urandom > /tmp/up && sha256sum /tmp/up && "
                           f"nc 10.0.2.2 {port} < /tmp/up", timeout=180)
            t.join(60)
            check(result.get("n") == size, f"upload: host got {result}", con)
            check(result["sha"] in out, f"upload hash: host {result['sha']}, guest {out!r}",
                  con)

        for name, fn in (("mac", case_mac), ("dhcp", case_dhcp),
                         ("hostfwd-http", case_hostfwd), ("guest-to-host", case_guest_to_host)):
            if name in want:
                report(name, fn)
        h.poweroff(con, force=True)


# ---- the TAP group --------------------------------------------------------------

NS_HELPER = r"""
import hashlib, socket, sys
mode, host, port, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode == "ping":  # size echo requests (no ping(8) needed on the host)
    import os, select, struct, time
    def csum(b):
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s & 0xffff) + (s >> 16); s = (s & 0xffff) + (s >> 16)
        return ~s & 0xffff
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident, got = os.getpid() & 0xffff, 0
    for seq in range(size):
        body = b"godwit-ping-%04d" % seq
        hdr = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        s.sendto(struct.pack("!BBHHH", 8, 0, csum(hdr + body), ident, seq) + body, (host, 0))
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if not select.select([s], [], [], end - time.monotonic())[0]:
                break
            pkt = s.recv(2048)
            ihl = (pkt[0] & 15) * 4
            t, _, _, i, q = struct.unpack("!BBHHH", pkt[ihl:ihl + 8])
            if t == 0 and i == ident and q == seq and pkt[ihl + 8:] == body:
                got += 1
                break
    print("replies", got, flush=True)
elif mode == "recv":
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port)); ls.listen(1); ls.settimeout(300)
    print("listening", flush=True)
    c, _ = ls.accept(); c.settimeout(300)
    h, n = hashlib.sha256(), 0
    while n < size:
        d = c.recv(65536)
        if not d: break
        h.update(d); n += len(d)
    print(n, h.hexdigest(), flush=True)
else:
    import random
    data = random.Random(7).randbytes(size)
    for i in range(100):
        try:
            c = socket.create_connection((host, port), timeout=10); break
        except OSError:
            import time; time.sleep(0.5)
    c.settimeout(300); c.sendall(data); c.close()
    print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
"""


def group_tap(ctx, want, report):
    h.require_tap()
    with h.NetNS("gwnet", NS_NET) as ns:
        net = ["-netdev", f"tap,id=n0,ifname={ns.TAP},script=no,downscript=no",
               "-device", f"virtio-net-device,netdev=n0,mac={MAC_SET}"]
        with Console(ns.exec(vm_argv(ctx, net)), log=ctx.log("tap"), timeout=120) as con:
            h.wait_shell(con, ctx.boot_timeout)
            run(con, f"ip link set eth0 up && ip addr add {NS_NET}.2/24 dev eth0")

            def case_ping():
                out = run(con, f"ping -c 3 -W 5 {NS_NET}.1", timeout=60)
                check(" 0% packet loss" in out, f"guest -> namespace: {out!r}", con)
                out = sh(*ns.exec([sys.executable, "-c", NS_HELPER, "ping", f"{NS_NET}.2", "0",
                                   "3"]))
                check("replies 3" in out, f"namespace -> guest: {out!r}", con)

            def case_tcp():
                size = 1 << 20
                # guest -> namespace
                rx = subprocess.Popen(ns.exec([sys.executable, "-c", NS_HELPER, "recv",
                                               f"{NS_NET}.1", "5001", str(size)]),
                                      stdout=subprocess.PIPE, text=True)
                check(rx.stdout.readline().strip() == "listening", "namespace listener")
                out = run(con, f"head -c {size} /dev/urandom > /tmp/r && sha256sum /tmp/r && "
                               f"nc {NS_NET}.1 5001 < /tmp/r", timeout=300)
                got = rx.communicate(timeout=120)[0].split()
                check(len(got) == 2 and got[0] == str(size), f"namespace received {got}", con)
                check(got[1] in out, f"guest -> namespace hash: {got[1]} vs {out!r}", con)
                # namespace -> guest
                con.sendline("nc -l -p 5002 > /tmp/in; echo NC-DONE-$?")
                time.sleep(1)
                tx = subprocess.run(ns.exec([sys.executable, "-c", NS_HELPER, "send",
                                             f"{NS_NET}.2", "5002", str(size)]),
                                    stdout=subprocess.PIPE, text=True, timeout=300)
                sent = tx.stdout.split()
                check(len(sent) == 2, f"namespace sender: {tx.stdout!r}", con)
                con.expect(r"NC-DONE-\d+", 120)
                con.expect(Console.PROMPT, 30)
                out = run(con, "wc -c < /tmp/in; sha256sum /tmp/in")
                check(str(size) in out and sent[1] in out, f"namespace -> guest: {out!r}", con)

            for name, fn in (("tap-ping", case_ping), ("tap-tcp", case_tcp)):
                if name in want:
                    report(name, fn)
            h.poweroff(con, force=True)


GROUPS = [("user", group_user, ["mac", "dhcp", "hostfwd-http", "guest-to-host"]),
          ("tap", group_tap, ["tap-ping", "tap-tcp"])]


def main():
    ctx = net_ctx()
    only = os.environ.get("NET_TEST_CASES")
    want_all = [c for _, _, cs in GROUPS for c in cs]
    want = set(only.split(",")) if only else set(want_all)
    rep = h.Report()

    def skip_all(cases, why):
        for c in cases:
            if c in want:
                rep.skip(c, why)

    if not ctx.qemu and not os.access(ctx.vm, os.X_OK):
        skip_all(want_all, f"{ctx.vm} is not built (make)")
        return rep.summary()
    try:
        ctx.image, ctx.initrd = h.guest_image()
    except Skip as e:
        skip_all(want_all, str(e))
        return rep.summary()
    for gname, fn, cases in GROUPS:
        if not want & set(cases):
            continue
        done_before = rep.passed + rep.failed + rep.skipped
        try:
            fn(ctx, want, rep.case)
        except Skip as e:
            skip_all(cases, str(e))
        except Exception as e:  # the group's boot or setup failed
            ran = rep.passed + rep.failed + rep.skipped - done_before
            pending = [c for c in cases if c in want][ran:]
            for c in pending:
                rep.fail(c, f"{gname} group: {e}")
            if not pending:
                rep.fail(gname, str(e))
            print(f"     log: {ctx.log(gname)}", flush=True)
    return rep.summary()


if __name__ == "__main__":
    h.main(main)
