"""The cart workload of bench/netcont: Debian's redis-server in the guest
(the guest image's redis variant, guest/build.sh --variant redis) and the
cart client tests/lib/cart.py in the namespace (RPUSH every 5 ms, the cart
read back, checked at the end).  The same interface as netcont.py's
EchoWorkload: guest_args, start_service, start_client, status,
stop_client (returning the echo client's record format), plus finish()
(the cart's own check)."""

import json
import os
import shlex
import signal
import subprocess
import sys

import harness as h
from harness import check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CART = os.environ.get("BENCH_NETCONT_CART", os.path.join(ROOT, "tests", "lib", "cart.py"))
NET = "10.0.9"
GUEST_IP = f"{NET}.2"
READY = r"godwit-guest: redis ready"


def redis_initrd():
    """$GODWIT_CACHE/guest-redis/initrd.img, built by guest/build.sh
    --variant redis when missing (an Skip if it cannot be)."""
    env = os.environ.get("GODWIT_GUEST_INITRD_REDIS")
    if env:
        if not os.path.exists(env):
            raise h.Skip(f"GODWIT_GUEST_INITRD_REDIS names a missing file {env}")
        return env
    r = subprocess.run([os.path.join(ROOT, "guest", "build.sh"), "--variant", "redis",
                        "--print-paths", "--quiet"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise h.Skip(f"guest/build.sh --variant redis failed: {r.stderr.strip()[-300:]}")
    paths = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition("=")
        paths[key] = shlex.split(value)[0] if value else ""
    initrd = paths.get("GODWIT_GUEST_INITRD")
    if not initrd or not os.path.exists(initrd):
        raise h.Skip(f"guest/build.sh --variant redis named no initrd: {r.stdout!r}")
    return initrd


class CartWorkload:
    name = "cart"

    def __init__(self, cfg):
        if not os.path.exists(CART):
            raise h.Skip(f"no cart client {CART} (branch net-cart)")
        self.cfg = cfg
        self.image, _ = h.guest_image()
        self.initrd = redis_initrd()

    def guest_args(self, emu):
        argv = h.linux_argv(emu.bin, self.image, self.initrd, mem=self.cfg["mem"],
                            extra=["-monitor", "none", *emu.linux_extra()])[1:]
        i = argv.index("-append")
        argv[i + 1] = f"console=ttyS0 godwit.redis=1 godwit.ip={GUEST_IP}/24"
        return argv

    def start_service(self, vm):
        # the init hook starts redis-server and says when it answers PING
        check(vm.wait_line(READY, 120) is not None,
              f"{vm.name}: no {READY!r} in 120 s after the shell")

    def start_client(self, ns, path):
        # cart.py: RPUSH every 5 ms and LRANGE every 200 ms on one connection
        # (a new one after an error), its status JSON every 0.25 s
        return subprocess.Popen(ns.exec([sys.executable, CART, GUEST_IP, "6379",
                                         path + ".status"]),
                                stdout=subprocess.DEVNULL, stderr=open(path + ".err", "w"))

    def status(self, path):
        try:
            with open(path + ".status") as f:
                st = json.load(f)
        except (OSError, ValueError):
            return {}
        return {"ok": st.get("answered", 0), "breaks": st.get("errors", 0)}

    def stop_client(self, proc, path):
        """SIGTERM: cart.py stops, reads the whole cart, checks it and
        writes its records.  Returns them in the echo client's form
        (netcont.CLIENT), and keeps the check for finish()."""
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with open(path + ".status") as f:
            st = json.load(f)
        err = open(path + ".err").read()
        check("final" in st and "records" in st,
              f"the cart client wrote no final status (exit {proc.returncode}): {err[-400:]}")
        self.final = st["final"]
        # records: [kind, n, sent, acked, total retrans over every
        # connection so far, error]; that count only grows, so one "session"
        recs = [[r[2], r[3], r[4], 1] for r in st["records"] if r[3] is not None]
        breaks = [{"t": r[2], "sent": r[2], "session": 1, "retrans": None,
                   "error": f"{r[0]} {r[1]}: {r[5]}"} for r in st["records"] if r[5]]
        return {"recs": recs, "breaks": breaks, "end_retrans": self.final.get("total_retrans"),
                "sessions": 1}

    def finish(self, raw, a):
        """The cart's own check into the analysis: cart_ok, and a line."""
        f = self.final
        a["cart_ok"] = bool(f.get("ok"))
        a["cart"] = (f"{f.get('acked')} pushes acknowledged of {f.get('pushed')}, the cart holds "
                     f"{f.get('cart_len')} items, "
                     + (f"{len(f.get('unknown') or [])} push(es) unanswered (in the cart or not), "
                        if f.get("unknown") else "")
                     + ("every acknowledged push there, in order, none twice" if f.get("ok")
                        else "PROBLEMS: " + "; ".join(f.get("problems") or [])))
