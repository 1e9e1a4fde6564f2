#!/usr/bin/env python3
"""User networking (-netdev user, libslirp) across a same-host live migration.

One Debian riscv64 guest on godwit-vm with
  -netdev user,id=n0,hostfwd=tcp:127.0.0.1:HTTP-10.0.2.16:80,
          hostfwd=tcp:127.0.0.1:IDLE-10.0.2.16:81
migrates once, over QMP, to a second godwit-vm on this host started with the
same options and -incoming.  Before the migration the guest
  - takes a DHCP lease with a borrowed MAC (10.0.2.15) and then one with its
    own (10.0.2.16), so that only a destination that knows the source's
    leases offers it .16 again (a fresh stack's first free address is .15);
  - serves a file with busybox httpd on port 80 (fetched through HTTP);
  - keeps two idle TCP connections through slirp: one out to a listener on
    the host (nc 10.0.2.2 PORT), one in through the IDLE forward
    (nc -l -p 81), each only reading.
Cases:
  refused-keeps    first, a destination whose user netdev has another id
                   (n9) refuses the stream, naming both; the migration
                   fails, the source runs on with its forwards (a new
                   connection through HTTP works) and both idle connections
  dest-starts      the destination starts and waits for the stream while
                   the source still holds both hostfwd ports (before
                   issue 15 it refused to start, as QEMU 7.2 does)
  reset-outgoing   the guest's outgoing connection ends with a reset within
                   5 s of the destination running (libslirp 4.7 carries no
                   connection), and the host peer sees a reset, not EOF
  reset-hostfwd    the same for the connection accepted through hostfwd
  hostfwd-after    a new connection through the HTTP forward reaches the
                   guest's httpd on the destination: the ports were handed
                   over at the switchover
  dhcp-lease       udhcpc on the destination gets 10.0.2.16 again
  qemu-oracle      QEMU 7.2 in the same place: its destination, started with
                   the same hostfwd while its source runs, refuses to start
                   (reported; skipped without qemu-system-riscv64)

Prints `PASS name` / `FAIL name` / `SKIP name: reason` and a last line
`N passed, N failed, N skipped`; exits 1 if anything failed.  The host side
uses 127.0.0.1 only.  Environment: BUILD (build/release),
SLIRP_MIG_TEST_CASES (a subset), NET_TEST_TIMEOUT (seconds to the shell,
240), GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
from harness import Skip, check, free_port, run  # noqa: E402

CASES = ["refused-keeps", "dest-starts", "reset-outgoing", "reset-hostfwd", "hostfwd-after", "dhcp-lease",
         "qemu-oracle"]
MAC = "52:54:00:12:34:56"
MAC_BORROWED = "52:54:00:00:99:01"
RESET_S = 5.0  # a reset the guest or a host peer waits longer for than this is not prompt
TICKER = os.path.join(h.ROOT, "build", "guest", "mig_ticker.elf")


class Peer:
    """A host TCP socket in a thread: how and when it ended (recv)."""

    def __init__(self, sock):
        self.sock = sock
        self.end = None  # "reset", "eof" or "error: ..."
        self.t_end = None
        self.data = b""
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        try:
            while True:
                d = self.sock.recv(4096)
                if not d:
                    self.end = "eof"
                    break
                self.data += d
        except ConnectionResetError:
            self.end = "reset"
        except OSError as e:
            self.end = f"error: {e}"
        self.t_end = time.monotonic()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_text(con, rx, timeout):
    """The monotonic time at which the console's whole output first holds a
    match of rx (checked every 20 ms), or None after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(rx, h.console_text(con), re.M)
        if m:
            return time.monotonic(), m
        if time.monotonic() >= deadline:
            return None, None
        h.drain(con, 0.02)


def fetch(port, timeout=30):
    """GET /data.txt through 127.0.0.1:port, retried for timeout seconds."""
    deadline = time.monotonic() + timeout
    err = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/data.txt", timeout=20) as r:
                return r.read()
        except OSError as e:
            err = e
            time.sleep(0.2)
    raise AssertionError(f"no answer through 127.0.0.1:{port}: {err}")


def dhcp(con, mac):
    """udhcpc with the NIC's MAC set to mac; the leased address."""
    run(con, f"ip link set eth0 down && ip link set eth0 address {mac} && ip link set eth0 up")
    out = run(con, "udhcpc -i eth0 -n -q -t 5 -T 3 2>&1", timeout=90)
    m = re.search(r"lease of (\S+) obtained", out)
    check(m, f"udhcpc with {mac}: {out!r}", con)
    return m.group(1)


def estab_resets(con):
    """The guest's TCP EstabResets counter (RFC 1213 tcpEstabResets: connections
    reset from ESTABLISHED or CLOSE-WAIT): busybox nc exits 0 on a reset as
    on EOF, so this is how the guest tells them apart."""
    out = run(con, "grep '^Tcp:' /proc/net/snmp")
    lines = [ln.split() for ln in out.splitlines() if ln.startswith("Tcp:")]
    check(len(lines) == 2 and "EstabResets" in lines[0], f"/proc/net/snmp: {out!r}", con)
    return int(lines[1][lines[0].index("EstabResets")])


def migrate(src, uri, timeout=120):
    src.cmd("migrate-set-parameters", {"max-bandwidth": 1 << 30})
    src.cmd("migrate", uri=uri)
    deadline = time.monotonic() + timeout
    while True:
        info = src.cmd("query-migrate")
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info
        check(time.monotonic() < deadline, f"migration still {info.get('status')}")
        time.sleep(0.01)


def qemu_oracle(ctx):
    """QEMU 7.2's destination with a hostfwd port its running source holds."""
    if not shutil.which("qemu-system-riscv64"):
        raise Skip("no qemu-system-riscv64")
    if not os.path.exists(TICKER):
        raise Skip(f"{TICKER} is not built (make guests)")
    port = free_port()
    args = ["qemu-system-riscv64", "-M", "virt", "-m", "64M", "-bios", "none", "-display",
            "none", "-monitor", "none", "-serial", "null", "-kernel", TICKER,
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device", "virtio-net-device,netdev=n0"]
    with h.VM("qemu-src", args, out=ctx.log("qemu-src")) as src:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the source listens once it runs
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        with h.VM("qemu-dst", args + ["-incoming", f"tcp:127.0.0.1:{free_port()}"],
                  out=ctx.log("qemu-dst")) as dst:
            rc = dst.exit_status(15)
            text = dst.stderr() or dst.output()
        check(src.proc.poll() is None, "the QEMU source still runs")
    check(rc is not None and rc != 0 and "host forwarding rule" in text,
          f"QEMU's destination: exit {rc}, {text.strip()[-200:]!r}")
    return f"QEMU 7.2's destination exits {rc}: {text.strip().splitlines()[-1]}"


def run_cases(ctx, tmp, report):
    http, idle, out_port, mig_port = free_port(), free_port(), free_port(), free_port()
    net = ["-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{http}-10.0.2.16:80,"
                      f"hostfwd=tcp:127.0.0.1:{idle}-10.0.2.16:81",
           "-device", f"virtio-net-device,netdev=n0,mac={MAC}"]
    argv = ctx.linux_argv(net)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", out_port))
    listener.listen(1)
    listener.settimeout(120)
    peers = []
    expect = "".join(f"{i}\n" for i in range(1, 20001)).encode()
    src = dst = None
    try:
        src = h.VM("src", argv, out=ctx.log("src"), qmp=os.path.join(tmp, "src.sock"),
                   console=True)
        con = src.con
        h.wait_shell(con, ctx.boot_timeout)
        # leases: .15 for a borrowed MAC first, then .16 for the NIC's own
        lease0 = dhcp(con, MAC_BORROWED)
        lease1 = dhcp(con, MAC)
        check(lease0 == "10.0.2.15" and lease1 == "10.0.2.16",
              f"leases before the migration: {lease0}, {lease1}", con)
        run(con, "mkdir -p /www && seq 1 20000 > /www/data.txt && httpd -p 80 -h /www")
        check(fetch(http) == expect, "the file through hostfwd before the migration")
        # the idle connections: out to the host, in through hostfwd
        # each nc reads a FIFO a sleeping writer holds open: idle input that
        # never ends (a `sleep | nc` pipeline would outlive nc)
        run(con, "mkfifo /tmp/fo /tmp/fi && (sleep 100000 >/tmp/fo &) && (sleep 100000 >/tmp/fi &)")
        con.sendline(f"(nc 10.0.2.2 {out_port} </tmp/fo >/dev/null; echo NC-OUT-END $?) &")
        c, _ = listener.accept()
        peers.append(Peer(c))
        out_peer = peers[-1]
        con.sendline("(nc -l -p 81 </tmp/fi >/tmp/in81; echo NC-IN-END $?) &")
        time.sleep(1)
        c = socket.create_connection(("127.0.0.1", idle), timeout=30)
        c.sendall(b"hello-81\n")
        peers.append(Peer(c))
        in_peer = peers[-1]
        out = ""
        for _ in range(50):  # the guest's nc got the line: the connection is up
            out = run(con, "cat /tmp/in81")
            if "hello-81" in out:
                break
            time.sleep(0.2)
        check("hello-81" in out, f"the hostfwd connection reached the guest: {out!r}", con)
        check(out_peer.end is None and in_peer.end is None, "both connections open")
        resets0 = estab_resets(con)

        def case_refused_keeps():
            bad_argv = [a.replace("id=n0", "id=n9").replace("netdev=n0", "netdev=n9")
                        for a in argv]
            uri = f"tcp:127.0.0.1:{free_port()}"
            with h.VM("bad", bad_argv + ["-incoming", uri], out=ctx.log("bad"),
                      qmp=os.path.join(tmp, "bad.sock"), console=True) as bad:
                bad.connect(30)
                info = migrate(src, uri)
                desc = info.get("error-desc", "")
                check(info.get("status") == "failed" and "'n0'" in desc and "'n9'" in desc,
                      f"migration to a destination with netdev n9: {info}")
                check(bad.exit_status(15) not in (None, 0), "the refusing destination exited")
            src.wait_status(("running",), 15)
            check(fetch(http) == expect, "the file through the source's forward afterwards")
            time.sleep(0.5)
            check(out_peer.end is None and in_peer.end is None,
                  f"the idle connections ended: {out_peer.end}, {in_peer.end}")
            return f"refused: {desc}"

        report("refused-keeps", case_refused_keeps)

        uri = f"tcp:127.0.0.1:{mig_port}"
        dst = h.VM("dst", argv + ["-incoming", uri], out=ctx.log("dst"),
                   qmp=os.path.join(tmp, "dst.sock"), console=True)
        dst.connect(30)  # an -incoming godwit-vm listens before its QMP socket appears

        def case_dest_starts():
            time.sleep(1.0)
            check(dst.proc.poll() is None,
                  f"the destination exited ({dst.proc.returncode}): {h.console_text(dst.con)}")
            st = dst.status()
            check(st == "inmigrate", f"destination status {st}")
            with socket.socket() as s:  # the source still serves the forward
                check(s.connect_ex(("127.0.0.1", http)) == 0, "the source's forward is gone")

        report("dest-starts", case_dest_starts)
        info = migrate(src, uri)
        check(info.get("status") == "completed", f"migration: {info}")
        dst.wait_status(("running",), 30)
        t_run = time.monotonic()
        src.wait_status(("postmigrate",), 10)
        ended = set()  # the connections whose end the cases saw

        def case_reset(name, marker, peer):
            t, m = wait_text(dst.con, rf"^{marker} (\d+)(.*)$", RESET_S + 25)
            check(t is not None, f"the guest's nc did not end within {RESET_S + 25:.0f} s",
                  dst.con)
            guest_s = t - t_run
            deadline = time.monotonic() + 5
            while peer.end is None and time.monotonic() < deadline:
                time.sleep(0.02)
            check(peer.end == "reset", f"the host peer's connection ended with {peer.end}")
            check(guest_s < RESET_S, f"the guest's connection ended {guest_s:.2f} s after "
                                     f"the destination ran ({m.group(0).strip()!r})")
            ended.add(name)
            note = (f"the guest's nc ended {guest_s:.2f} s after the destination ran; host "
                    f"peer: {peer.end} {peer.t_end - t_run:+.2f} s")
            # once both ended: by a reset each, not a FIN (busybox nc exits 0
            # on either; the guest's counter tells)
            if ended == {"out", "in"}:
                n = estab_resets(dst.con) - resets0
                check(n == 2, f"the guest counted {n} connection resets, want 2")
                note += f"; guest EstabResets +{n}"
            return note

        report("reset-outgoing", case_reset, "out", "NC-OUT-END", out_peer)
        report("reset-hostfwd", case_reset, "in", "NC-IN-END", in_peer)

        def case_hostfwd_after():
            t0 = time.monotonic()
            data = fetch(http)
            check(data == expect, f"content differs: {len(data)} bytes, want {len(expect)}")
            return f"first answer {time.monotonic() - t0:.2f} s after asking"

        def case_dhcp_lease():
            out = run(dst.con, "udhcpc -i eth0 -n -q -t 5 -T 3 2>&1", timeout=90)
            check("lease of 10.0.2.16 obtained" in out, f"udhcpc on the destination: {out!r}",
                  dst.con)
            return "10.0.2.16 again (a fresh stack would offer 10.0.2.15)"

        report("hostfwd-after", case_hostfwd_after)
        report("dhcp-lease", case_dhcp_lease)
        h.poweroff(dst.con, force=True)
    finally:
        for p in peers:
            p.close()
        listener.close()
        for v in (src, dst):
            if v:
                v.kill()


def main():
    ctx = h.Ctx("slirp-mig", timeout_env="NET_TEST_TIMEOUT")
    only = os.environ.get("SLIRP_MIG_TEST_CASES")
    want = [c for c in CASES if not only or c in only.split(",")]
    rep = h.Report()
    done = set()

    def report(name, fn, *args):
        if name in want:
            done.add(name)
            rep.case(name, fn, *args)

    try:
        if not os.access(ctx.vm, os.X_OK):
            raise Skip(f"{ctx.vm} is not built (make)")
        if "qemu-oracle" in want:
            report("qemu-oracle", qemu_oracle, ctx)
        if set(want) - {"qemu-oracle"}:
            ctx.image, ctx.initrd = h.guest_image()
            with tempfile.TemporaryDirectory(prefix="godwit-slirp-mig-") as tmp:
                run_cases(ctx, tmp, report)
    except Skip as e:
        for c in want:
            if c not in done:
                rep.skip(c, str(e))
    except Exception as e:  # boot, setup or the migration failed: the cases not run fail
        for c in want:
            if c not in done:
                rep.fail(c, f"not run: {e}")
        print(f"     logs: {ctx.log('src')}, {ctx.log('dst')}", flush=True)
    return rep.summary()


if __name__ == "__main__":
    h.main(main)
