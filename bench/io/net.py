#!/usr/bin/env python3
"""Guest-to-host TCP throughput, godwit-vm against QEMU TCG, same run.

The same Debian guest (guest/build.sh) boots on each VMM with a virtio-net
NIC; the guest streams BENCH_NET_MIB MiB of zeros with busybox `nc` into a
TCP listener on the host, which times from accept to the last byte and then
closes.  BENCH_RUNS transfers per boot; the median is reported, with the
VMM process's host CPU seconds per MiB (user + system, from /proc), which is
what the transfer costs whatever else runs on the machine.

Modes (BENCH_NET_MODES, default "tap user"):
  tap   a private network namespace with a bridge (192.168.77.1/24) and a
        TAP device; the VMM runs inside it (ip netns exec) with -netdev tap;
        the listener runs in the namespace.  This measures the device and
        the guest, not a user-space TCP stack.  Needs root and iproute2
        (skipped otherwise).  QEMU uses its default TAP setup (vnet_hdr
        with offloads) unless BENCH_NET_QEMU_VNET_HDR=off.
  user  -netdev user on both (libslirp, the same library): the guest gets
        10.0.2.15 by DHCP and sends to 10.0.2.2, i.e. the host's 127.0.0.1.

Prints one line per mode with both medians and the ratio godwit/qemu
(higher is better), and a last line "bench-io-net: done" (or "skipped").
Exit status 1 if a run failed, 2 on a setup error.
"""

import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))

import harness as h  # noqa: E402
from harness import Console  # noqa: E402

BUILD = os.environ.get("BUILD", "build/release")
GODWIT = os.environ.get("GODWIT", os.path.join(ROOT, BUILD, "godwit-vm"))
QEMU = os.environ.get("QEMU", "qemu-system-riscv64")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MIB = int(os.environ.get("BENCH_NET_MIB", "64"))
SMP = os.environ.get("BENCH_SMP", "1")
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "600"))
MODES = os.environ.get("BENCH_NET_MODES", "tap user").split()
QEMU_VNET_HDR = os.environ.get("BENCH_NET_QEMU_VNET_HDR", "")
LOGS = os.environ.get("BENCH_LOGS", os.path.join(ROOT, BUILD, "bench", "io"))
GUEST = []  # the guest image: [kernel, initrd], from main()
NS_NET = "192.168.77"

# The listener: one connection, `size` bytes, then close; prints bytes and seconds.
SINK = r"""
import socket, sys, time
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((host, port)); ls.listen(1); ls.settimeout(float(sys.argv[4]))
print("listening", ls.getsockname()[1], flush=True)
c, _ = ls.accept(); c.settimeout(120)
t0, n = time.monotonic(), 0
while n < size:
    d = c.recv(1 << 20)
    if not d:
        break
    n += len(d)
print(n, time.monotonic() - t0, flush=True)
c.close()
"""


class Fail(Exception):
    pass


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_argv(vmm, net):
    argv = h.linux_argv(vmm, *GUEST, smp=SMP, extra=net)
    if vmm == QEMU:
        argv[1:1] = ["-bios", "default"]
    return argv


def transfers(con, prefix, target_host, listen_host):
    """BENCH_RUNS transfers; returns [(MB/s, cpu s/MiB)]."""
    results = []
    size = MIB << 20
    for _ in range(RUNS):
        sink = subprocess.Popen(prefix + [sys.executable, "-c", SINK, listen_host, "0", str(size),
                                          str(TIMEOUT)], stdout=subprocess.PIPE, text=True)
        try:
            line = sink.stdout.readline().split()
            if len(line) != 2 or line[0] != "listening":
                raise Fail(f"listener did not start: {line}")
            port = line[1]
            c0 = cpu_seconds(con.proc.pid)
            con.run(f"nc {target_host} {port} < /dev/zero", timeout=TIMEOUT)
            c1 = cpu_seconds(con.proc.pid)
            out = sink.communicate(timeout=60)[0].split()
        finally:
            if sink.poll() is None:
                sink.kill()
                sink.wait()
        if len(out) != 2 or int(out[0]) < size:
            raise Fail(f"the host received {out} instead of {size} bytes")
        secs = float(out[1])
        results.append((int(out[0]) / secs / 1e6, (c1 - c0) / MIB))
    return results


def measure(name, argv, setup, prefix, target_host, listen_host, log):
    with Console(argv, log=log, timeout=120) as con:
        h.wait_shell(con, TIMEOUT)
        out = con.run(setup, timeout=120)
        if con.status != 0:
            raise Fail(f"{name}: network setup failed: {out!r}")
        res = transfers(con, prefix, target_host, listen_host)
        h.poweroff(con, force=True)
    return res


def mode_user(vmm, tag):
    net = ["-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"]
    setup = "udhcpc -i eth0 -n -q -t 5 -T 3 >/dev/null 2>&1"
    return measure(tag, vm_argv(vmm, net), setup, [], "10.0.2.2", "127.0.0.1",
                   os.path.join(LOGS, f"net-user-{tag}.log"))


def mode_tap(vmm, tag):
    with h.NetNS("gwbench", NS_NET) as ns:
        spec = f"tap,id=n0,ifname={ns.TAP},script=no,downscript=no"
        if vmm == QEMU and QEMU_VNET_HDR:
            spec += f",vnet_hdr={QEMU_VNET_HDR}"
        net = ["-netdev", spec, "-device", "virtio-net-device,netdev=n0"]
        setup = f"ip link set eth0 up && ip addr add {NS_NET}.2/24 dev eth0 && sleep 1"
        return measure(tag, ns.exec(vm_argv(vmm, net)), setup, ns.exec([]), f"{NS_NET}.1",
                       f"{NS_NET}.1", os.path.join(LOGS, f"net-tap-{tag}.log"))


def main():
    if not os.access(GODWIT, os.X_OK):
        print(f"bench-io-net: {GODWIT} is not built (make)", file=sys.stderr)
        return 2
    if subprocess.run(["sh", "-c", f"command -v {QEMU}"], stdout=subprocess.DEVNULL).returncode:
        print(f"bench-io-net: {QEMU} not found (scripts/install-deps.sh)", file=sys.stderr)
        return 2
    try:
        GUEST[:] = h.guest_image()
    except h.Skip as e:
        print(f"bench-io-net: skipped: {e}")
        return 0
    os.makedirs(LOGS, exist_ok=True)
    print(f"bench-io-net: guest -> host TCP, {MIB} MiB per run, median of {RUNS}, -smp {SMP}")
    print(f"{'mode':6} {'godwit MB/s':>12} {'qemu MB/s':>10} {'ratio':>6}   "
          f"{'godwit cpu-s/MiB':>16} {'qemu cpu-s/MiB':>14}")
    status = 0
    for mode in MODES:
        fn = {"tap": mode_tap, "user": mode_user}.get(mode)
        if not fn:
            print(f"bench-io-net: unknown mode {mode!r} (tap, user)", file=sys.stderr)
            return 2
        try:
            if mode == "tap":
                h.require_tap()
        except h.Skip as e:
            print(f"{mode:6} skipped: {e}")
            continue
        try:
            g = fn(GODWIT, "godwit")
            q = fn(QEMU, "qemu")
        except Exception as e:  # a failed boot, transfer or setup
            print(f"{mode:6} FAILED: {e}")
            status = 1
            continue
        gm = statistics.median(r[0] for r in g)
        qm = statistics.median(r[0] for r in q)
        gc = statistics.median(r[1] for r in g)
        qc = statistics.median(r[1] for r in q)
        note = " (qemu: vnet_hdr offloads)" if mode == "tap" and not QEMU_VNET_HDR else ""
        print(f"{mode:6} {gm:12.2f} {qm:10.2f} {gm / qm:6.2f}   {gc:16.3f} {qc:14.3f}{note}",
              flush=True)
        print(f"       runs godwit {['%.2f' % r[0] for r in g]} qemu {['%.2f' % r[0] for r in q]}",
              flush=True)
    print("bench-io-net: done")
    return status


if __name__ == "__main__":
    sys.exit(main())
