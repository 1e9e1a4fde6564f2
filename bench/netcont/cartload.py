"""The cart workload of bench/netcont: Debian's redis-server in the guest
(the guest image's redis variant, guest/build.sh --variant redis) and the
cart client tests/lib/cart.py in the namespace (RPUSH every 5 ms, the cart
read back, checked at the end).  The same interface as netcont.py's
EchoWorkload: guest_args, start_service, start_client, status,
stop_client (returning the echo client's record format), plus finish()
(the cart's own check)."""

import os
import shlex
import subprocess

import harness as h
from harness import check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CART = os.path.join(ROOT, "tests", "lib", "cart.py")
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
            raise h.Skip("tests/lib/cart.py (branch net-cart) is not on this branch yet")
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
