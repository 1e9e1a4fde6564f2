#!/usr/bin/env python3
"""scripts/demo.sh --raw: the demo's story without godwitd.

    scripts/demo_raw.py IMAGE INITRD APPEND GUEST_IP PAUSE

On the hosts scripts/hosts.sh made (GODWIT_HOSTS_PREFIX, ha and hb), the
guest boots with godwit-vm in ha's namespace on a TAP device of ha's br0,
then migrates live ha -> hb -> ha over the rack (10.77.0.10/11, tcp:),
each destination started with -incoming on its host's own TAP device
(same MAC).  QMP by hand, as godwitd will do it; the destination announces
the guest (RARP) when it takes over, so the client keeps reaching it.
Every godwit-vm it started is killed at exit.
"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
import harness as h  # noqa: E402

PREFIX = os.environ.get("GODWIT_HOSTS_PREFIX", "gwdemo")
STATE = os.environ.get("GODWIT_HOSTS_STATE", f"/tmp/{PREFIX}-state")
HOSTS = {"ha": "10.77.0.10", "hb": "10.77.0.11"}
MAC = "52:54:00:77:00:64"
TAP = "gwtapdemo"
PORT = 4444


def ipn(host, *args, check=True):
    r = subprocess.run(["ip", "-n", f"{PREFIX}-{host}", *args], capture_output=True, text=True)
    if check and r.returncode:
        raise SystemExit(f"demo: ip -n {PREFIX}-{host} {' '.join(args)}: {r.stderr.strip()}")


def fresh_tap(host):
    """A TAP device for the next VM on host's br0 (made again: a VM that
    exits takes its TAP's persistence with it)."""
    ipn(host, "link", "del", TAP, check=False)
    ipn(host, "tuntap", "add", "dev", TAP, "mode", "tap")
    ipn(host, "link", "set", TAP, "master", "br0", "up")


def start(host, image, initrd, append, incoming=None):
    fresh_tap(host)
    d = os.path.join(STATE, "raw")
    os.makedirs(d, exist_ok=True)
    n = len(os.listdir(d))
    argv = ["ip", "netns", "exec", f"{PREFIX}-{host}", h.godwit_vm(), "-M", "virt", "-m", "256M",
            "-smp", "1", "-nographic", "-kernel", image, "-initrd", initrd, "-append", append,
            "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no",
            "-device", f"virtio-net-device,netdev=n0,mac={MAC}"]
    if incoming:
        argv += ["-incoming", incoming]
    vm = h.VM(f"{host}", argv, out=os.path.join(d, f"{n}-{host}.log"),
              qmp=os.path.join(d, f"{n}-{host}.qmp"))
    vm.connect(30)
    return vm


def migrate(src, dst_host, image, initrd, append):
    uri = f"tcp:{HOSTS[dst_host]}:{PORT}"
    dst = start(dst_host, image, initrd, append, incoming=uri)
    t0 = time.monotonic()
    src.cmd("migrate", uri=uri)
    last = None
    while True:
        info = src.cmd("query-migrate")
        st = info.get("status")
        ram = info.get("ram", {})
        line = (f"  migrate: {st:<10} {ram.get('transferred', 0) >> 20:>5} MiB sent, "
                f"{ram.get('remaining', 0) >> 20:>4} MiB left, pass {info.get('dirty-sync-count', 0)}")
        if line != last:
            print(line, flush=True)
            last = line
        if st in ("completed", "failed", "cancelled"):
            break
        if time.monotonic() - t0 > 300:
            raise SystemExit("demo: the migration took more than 300 s")
        time.sleep(0.5)
    if st != "completed":
        raise SystemExit(f"demo: migration {st}: {info.get('error-desc', '')}")
    dst.wait_status(("running",), 60)
    print(f"  completed in {info.get('total-time', 0)} ms, downtime {info.get('downtime', 0)} ms;"
          f" the guest runs on {dst_host}", flush=True)
    src.kill()
    return dst


def main():
    image, initrd, append, _ip, pause = sys.argv[1:6]
    pause = float(pause)
    vm = start("ha", image, initrd, append)
    print(f"demo: godwit-vm booting on ha (pid {vm.proc.pid}, console log {vm.out_path})",
          flush=True)
    try:
        # demo.sh waits for the service, then starts the client
        while subprocess.run(["ip", "netns", "exec", f"{PREFIX}-cl", "curl", "-s", "--max-time",
                              "1", f"http://{_ip}/"], capture_output=True).returncode:
            if vm.proc.poll() is not None:
                raise SystemExit(f"demo: godwit-vm exited ({vm.proc.returncode})")
            time.sleep(1)
        time.sleep(pause)
        for src, dst in (("ha", "hb"), ("hb", "ha")):
            print(f"\n\033[1m== live migration {src} -> {dst} (godwit-vm QMP migrate "
                  f"tcp:{HOSTS[dst]}:{PORT})\033[0m", flush=True)
            vm = migrate(vm, dst, image, initrd, append)
            time.sleep(pause)
    finally:
        vm.kill()
        h._kill_all()


if __name__ == "__main__":
    h.main(main)
