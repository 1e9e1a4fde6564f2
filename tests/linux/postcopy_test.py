#!/usr/bin/env python3
"""Post-copy live migration (capability postcopy-ram; docs/state.md, "Post-copy").

Two godwit-vm processes on this host, the migration over tcp:127.0.0.1:

  oracle        the page oracle (tests/guest/mig_pagepass: every page
                rewritten pass after pass, as fast as it can, each checked
                before) switched to post-copy 50 ms into pre-copy: the
                destination runs at once, fetches what it lacks (faults > 0),
                and the oracle goes on there with no page lost or stale;
                the source ends postmigrate
  auto          x-godwit-postcopy-auto with max-bandwidth 24 MiB/s, where
                the oracle cannot converge: the migration switches to
                post-copy by itself and completes, intact
  refusals      migrate-start-postcopy without the capability, or with no
                migration, is refused; postcopy-ram with capability block is
                refused; a destination without postcopy-ram refuses the
                stream before anything runs and the source runs on
  dest-dies     the destination killed during post-copy (a slow link keeps
                it going): the source reports failed ("post-copy broke
                off"), stays stopped and refuses cont: the VM ran there,
                never two copies
  hostile       a man in the middle adds requests for pages past the end
                of RAM and 2000 requests for one page to the return path
                during post-copy: ignored and counted, the migration
                completes, the oracle is intact
  linux         the Debian guest writing a tmpfs file in a loop while it
                migrates with post-copy: the file's checksum, taken before
                on the source and after on the destination of a copy that
                stopped changing, holds; the guest keeps running

Prints `PASS name` / `FAIL name` / `SKIP name: reason` and a last line
`N passed, N failed, N skipped`; exits 1 if anything failed.
Environment: BUILD (build/release), POSTCOPY_TEST_CASES (a subset),
POSTCOPY_TEST_TIMEOUT (Linux boot, 240 s).
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
from harness import Skip, check  # noqa: E402
from qmp import QMPError  # noqa: E402

CASES = ["oracle", "auto", "refusals", "dest-dies", "hostile", "linux"]
GUEST = os.path.join(h.ROOT, "build", "guest")
PAGEPASS = os.path.join(GUEST, "mig_pagepass.elf")
PASS_RE = re.compile(r"^pass (\d+) t=(\d+)\r?$", re.M)
PC = [{"capability": "postcopy-ram", "state": True}]


def wait_for(fn, timeout, what, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


class World:
    def __init__(self, ctx, tmp):
        self.ctx, self.tmp, self.seq = ctx, tmp, 0

    def vm(self, argv, incoming=None):
        self.seq += 1
        name = f"pc{self.seq}"
        sock = os.path.join(self.tmp, name + ".sock")
        a = [self.ctx.vm, *argv] + (["-incoming", incoming] if incoming else [])
        v = h.VM(name, a, out=self.ctx.log(name), qmp=sock)
        v.connect(30)
        return v

    def pair(self, argv, dst_caps=True):
        src = self.vm(argv)
        port = h.free_port()
        dst = self.vm(argv, incoming=f"tcp:127.0.0.1:{port}")
        src.cmd("migrate-set-capabilities", capabilities=PC)
        if dst_caps:
            dst.cmd("migrate-set-capabilities", capabilities=PC)
        return src, dst, f"tcp:127.0.0.1:{port}"


def oracle_argv(mem="128M"):
    return ["-M", "virt", "-m", mem, "-bios", "none", "-nographic", "-kernel", PAGEPASS]


def passes(vm):
    text = vm.output()
    check("FAIL" not in text, "the oracle failed: " +
          "".join(line for line in text.splitlines(True) if "FAIL" in line)[:400])
    return [int(n) for n, _ in PASS_RE.findall(text)]


def wait_final(vm, timeout=60):
    return wait_for(lambda: (lambda m: m if m.get("status") in ("completed", "failed",
                                                                 "cancelled") else None)(
        vm.cmd("query-migrate")), timeout, f"{vm.name}'s migration to end")


def check_oracle_after(src, dst, before):
    """The oracle runs on at the destination, every page as it should be."""
    got = wait_for(lambda: (lambda p: p if p and p[-1] >= before + 2 else None)(passes(dst)), 60,
                   "two more passes on the destination")
    check(passes(src)[-1:] and passes(src)[-1] <= got[0] + 1,
          f"the source stopped ({passes(src)[-1:]}), the destination went on ({got[:3]})")
    return got


def case_oracle(w):
    src, dst, uri = w.pair(oracle_argv())
    wait_for(lambda: len(passes(src)) >= 2, 30, "the oracle's first passes")
    before = passes(src)[-1]
    src.cmd("migrate", uri=uri)
    time.sleep(0.05)
    src.cmd("migrate-start-postcopy")
    m = wait_final(src)
    check(m["status"] == "completed", f"source: {m}")
    d = dst.cmd("query-migrate")
    pc = d.get("x-godwit-postcopy") or {}
    check(d["status"] == "completed" and pc.get("faults", 0) > 0 and pc.get("pages", 0) > 0,
          f"destination: {d}")
    check(src.cmd("query-status")["status"] == "postmigrate", "the source ends postmigrate")
    got = check_oracle_after(src, dst, before)
    lat = pc["fault-latency-us"]
    return (f"downtime {m.get('downtime')} ms; {pc['pages']} pages after the switchover, "
            f"{pc['faults']} faults (p50 {lat['p50']} us, p99 {lat['p99']} us); passes "
            f"{before} on the source, up to {got[-1]} on the destination")


def case_auto(w):
    src, dst, uri = w.pair(oracle_argv("64M"))
    src.cmd("migrate-set-parameters", {"max-bandwidth": 24 << 20, "x-godwit-postcopy-auto": True})
    wait_for(lambda: len(passes(src)) >= 2, 30, "the oracle's first passes")
    before = passes(src)[-1]
    src.cmd("migrate", uri=uri)
    m = wait_final(src, 120)
    check(m["status"] == "completed", f"source: {m}")
    pc = (dst.cmd("query-migrate").get("x-godwit-postcopy") or {})
    check(pc.get("pages", 0) > 0, f"it switched to post-copy by itself: {pc}")
    check_oracle_after(src, dst, before)
    return (f"switched by itself after {m.get('ram', {}).get('dirty-sync-count')} rounds; "
            f"total {m.get('total-time')} ms, {pc['pages']} pages after the switchover")


def case_refusals(w):
    src = w.vm(oracle_argv("64M"))
    try:
        src.cmd("migrate-start-postcopy")
        check(False, "migrate-start-postcopy with no migration was accepted")
    except QMPError as e:
        check("pre-copy" in e.desc, f"no migration: {e.desc}")
    src.cmd("migrate-set-capabilities", capabilities=PC + [{"capability": "block",
                                                            "state": True}])
    try:
        src.cmd("migrate", uri="tcp:127.0.0.1:1")
        check(False, "postcopy-ram with block was accepted")
    except QMPError as e:
        check("block" in e.desc, f"postcopy + block: {e.desc}")
    src.cmd("migrate-set-capabilities", capabilities=[{"capability": "block", "state": False},
                                                      {"capability": "postcopy-ram",
                                                       "state": False}])
    port = h.free_port()
    dst = w.vm(oracle_argv("64M"), incoming=f"tcp:127.0.0.1:{port}")
    src.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
    time.sleep(0.02)
    try:
        src.cmd("migrate-start-postcopy")
        check(False, "migrate-start-postcopy without the capability was accepted")
    except QMPError as e:
        check("postcopy-ram" in e.desc, f"without the capability: {e.desc}")
    src.cmd("migrate_cancel")
    check(wait_final(src)["status"] == "cancelled", "the plain migration cancelled")
    dst.kill()
    # the source wants post-copy, the destination did not say yes
    src.cmd("migrate-set-capabilities", capabilities=PC)
    port = h.free_port()
    dst = w.vm(oracle_argv("64M"), incoming=f"tcp:127.0.0.1:{port}")
    before = wait_for(lambda: passes(src), 60, "the oracle's first pass")[-1]
    src.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
    m = wait_final(src)
    check(m["status"] == "failed" and "postcopy-ram" in m.get("error-desc", ""),
          f"a destination without postcopy-ram refuses: {m}")
    check(src.cmd("query-status")["status"] == "running", "the source runs on")
    wait_for(lambda: passes(src)[-1] > before, 30, "the oracle going on at the source")
    return f"refused: {m['error-desc'][:90]}"


def case_dest_dies(w):
    src, dst, uri = w.pair(oracle_argv())
    src.cmd("migrate-set-parameters", {"max-bandwidth": 8 << 20})
    wait_for(lambda: len(passes(src)) >= 2, 30, "the oracle's first passes")
    src.cmd("migrate", uri=uri)
    time.sleep(0.05)
    src.cmd("migrate-start-postcopy")
    wait_for(lambda: src.cmd("query-migrate").get("status") == "postcopy-active", 30,
             "postcopy-active on the source")
    time.sleep(0.3)
    dst.kill()
    m = wait_final(src, 90)
    check(m["status"] == "failed" and "post-copy" in m.get("error-desc", ""),
          f"the source says post-copy broke off: {m}")
    st = src.cmd("query-status")["status"]
    check(st in ("postmigrate", "finish-migrate", "paused"), f"the source stays stopped ({st})")
    try:
        src.cmd("cont")
        check(False, "cont on the source was accepted")
    except QMPError as e:
        check("destination" in e.desc, f"cont refused: {e.desc}")
    return f"source: {m['error-desc'][:80]}; stays {st}"


def migmsg(magic, typ, value):
    """A control message with its check (tests/tools/migmsg)."""
    tool = os.path.join(h.build_dir(), "tests", "tools", "migmsg")
    if not os.access(tool, os.X_OK):
        raise Skip(f"{tool} is not built (make test-build)")
    return bytes.fromhex(subprocess.run([tool, str(magic), str(typ), str(value)], check=True,
                                        capture_output=True, text=True).stdout.strip())


class Mitm:
    """Forwards a migration between source and destination; once the
    destination's RUNNING has passed back, adds `inject` to what goes to
    the source (at a message boundary: that direction carries 24-byte
    messages only, after READY)."""

    def __init__(self, target_port, inject):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(1)
        self.port = self.ls.getsockname()[1]
        self.target, self.inject, self.injected = target_port, inject, False
        import threading
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        import threading
        a, _ = self.ls.accept()
        b = socket.create_connection(("127.0.0.1", self.target))

        def down():  # source -> destination
            while True:
                d = a.recv(1 << 16)
                if not d:
                    break
                b.sendall(d)
            b.shutdown(socket.SHUT_WR)
        threading.Thread(target=down, daemon=True).start()
        buf = b""
        while True:  # destination -> source, 24 bytes at a time
            d = b.recv(1 << 16)
            if not d:
                break
            buf += d
            while len(buf) >= 24:
                m, buf = buf[:24], buf[24:]
                a.sendall(m)
                if int.from_bytes(m[4:8], "little") == 3 and not self.injected:  # RUNNING
                    a.sendall(self.inject)
                    self.injected = True
        a.shutdown(socket.SHUT_WR)


def case_hostile(w):
    """Requests for pages past the end of RAM, and a flood of requests for
    one page, reach the source on the return path during post-copy: they
    are ignored (counted), the migration completes and the guest is intact."""
    reply, req = 0x50525747, 6
    inject = (migmsg(reply, req, 1 << 40) + migmsg(reply, req, (1 << 64) - 1) +
              migmsg(reply, req, 0) * 2000)
    src, dst, uri = w.pair(oracle_argv())
    wait_for(lambda: len(passes(src)) >= 2, 30, "the oracle's first passes")
    before = passes(src)[-1]
    mitm = Mitm(int(uri.rsplit(":", 1)[1]), inject)
    src.cmd("migrate", uri=f"tcp:127.0.0.1:{mitm.port}")
    time.sleep(0.05)
    src.cmd("migrate-start-postcopy")
    m = wait_final(src)
    check(mitm.injected, "the hostile requests went in after RUNNING")
    check(m["status"] == "completed", f"source: {m}")
    pc = m.get("x-godwit-postcopy") or {}
    check(pc.get("bad-requests") == 2, f"the two requests past RAM were counted: {pc}")
    check_oracle_after(src, dst, before)
    return f"2 requests past RAM ignored, 2000 for page 0 served once; {pc}"


def case_linux(w):
    if not w.ctx.image:
        raise Skip("no guest image")
    argv = w.ctx.linux_argv(smp=1)[1:]
    src = h.VM("pclx-src", [w.ctx.vm, *argv], out=w.ctx.log("linux-src"), console=True,
               qmp=os.path.join(w.tmp, "lx-src.sock"))
    h.wait_shell(src.con, w.ctx.boot_timeout)
    src.connect(30)
    h.run(src.con, "dd if=/dev/urandom of=/tmp/a bs=1M count=24 2>/dev/null; sha256sum /tmp/a")
    before = h.run(src.con, "sha256sum /tmp/a").split()[0]
    # a writer that keeps rewriting a second file, so memory is busy
    src.con.sendline("(while :; do dd if=/dev/urandom of=/tmp/b bs=1M count=16 2>/dev/null; "
                     "done) &")
    time.sleep(1)
    port = h.free_port()
    dst = h.VM("pclx-dst", [w.ctx.vm, *argv, "-incoming", f"tcp:127.0.0.1:{port}"],
               out=w.ctx.log("linux-dst"), console=True, qmp=os.path.join(w.tmp, "lx-dst.sock"))
    dst.connect(30)
    src.cmd("migrate-set-capabilities", capabilities=PC)
    dst.cmd("migrate-set-capabilities", capabilities=PC)
    src.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
    time.sleep(0.1)
    src.cmd("migrate-start-postcopy")
    m = wait_final(src, 120)
    check(m["status"] == "completed", f"source: {m}")
    pc = dst.cmd("query-migrate").get("x-godwit-postcopy") or {}
    h.run(dst.con, "kill %1 2>/dev/null; true")
    after = h.run(dst.con, "sha256sum /tmp/a", timeout=60).split()[0]
    check(after == before, f"/tmp/a {before} on the source, {after} on the destination")
    out = h.run(dst.con, "dd if=/dev/urandom of=/tmp/c bs=1M count=4 2>/dev/null && echo ok")
    check("ok" in out, f"the guest writes on: {out!r}")
    src.kill()
    dst.kill()
    return f"sha256 held; {pc.get('pages')} pages after the switchover, {pc.get('faults')} faults"


def main():
    only = os.environ.get("POSTCOPY_TEST_CASES")
    want = [c for c in CASES if not only or c in only.split(",")]
    rep = h.Report()
    ctx = h.Ctx("postcopy", timeout_env="POSTCOPY_TEST_TIMEOUT")
    if not os.access(ctx.vm, os.X_OK):
        for c in want:
            rep.skip(c, f"{ctx.vm} is not built (make)")
        return rep.summary()
    if not os.path.exists(PAGEPASS):
        subprocess.run(["make", "-C", h.ROOT, "build/guest/mig_pagepass.elf"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ctx.image, ctx.initrd = h.guest_image()
    except Skip:
        ctx.image = None
    fns = {"oracle": case_oracle, "auto": case_auto, "refusals": case_refusals,
           "dest-dies": case_dest_dies, "hostile": case_hostile, "linux": case_linux}
    with tempfile.TemporaryDirectory(prefix="gwpc") as tmp:
        w = World(ctx, tmp)
        for c in want:
            rep.case(c, fns[c], w, hint=f"logs: {ctx.log('pc*')}")
            h._kill_all()
    return rep.summary()


if __name__ == "__main__":
    h.main(main)
