#!/usr/bin/env python3
"""The test harness every Python test and benchmark shares (stdlib only).

    import harness as h
    from harness import Skip, check

    rep = h.Report()                                 # PASS/FAIL/SKIP lines
    ctx = h.Ctx("disk", timeout_env="DISK_TEST_TIMEOUT")
    ctx.image, ctx.initrd = h.guest_image()          # or Skip
    with h.VM("boot", ctx.linux_argv(["-smp", "2"]), out=ctx.log("boot"),
              console=True, qmp=sock) as vm:         # a pty console, QMP
        h.wait_shell(vm.con, ctx.boot_timeout)
        out = h.run(vm.con, "nproc")                 # checked exit status
        vm.cmd("query-status")                       # QMP, connected on first use
        h.poweroff(vm.con)
    rep.case("name", fn, ctx)                        # PASS name (1.2s)[: note]
    return rep.summary()                             # N passed, N failed, N skipped

What lives here:

- paths: ROOT, the build directory ($BUILD), godwit-vm, the log directory;
- Skip and check(): a case raises Skip (reported SKIP, never counted as
  passed) or fails a check (AssertionError, with the console's last output
  when a console is given);
- Report: runs cases and prints `PASS name (T s)[: note]`, `FAIL name (T s):
  why`, `SKIP name: why` and the last line `N passed, N failed, N skipped`,
  the lines tests/run.sh counts;
- guest_image(): the Debian kernel + initramfs (GODWIT_GUEST_IMAGE /
  GODWIT_GUEST_INITRD, else ~/.cache/godwit/guest, built by
  guest/build.sh --print-paths when missing), or Skip;
- VM: one emulator process (godwit-vm or QEMU, any argv) with its output in
  a file, on a pty Console (guest/console.py) or read line by line with
  arrival times; its QMP socket (tests/lib/qmp.py, THE client), status
  waits, exit status; killed on kill(), at the end of a with block, and at
  exit (SIGTERM included, see main()) whatever happened;
- console helpers: wait_shell(), run() (a shell command, its output, its
  exit status checked), poweroff(), drain();
- host helpers: free_port(), sh(), NetNS (a network namespace with a
  bridge and a TAP device) and require_tap().
"""

import atexit
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _p in (os.path.join(ROOT, "guest"), os.path.dirname(os.path.abspath(__file__))):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import qmp  # noqa: E402  (tests/lib/qmp.py)
from console import Console, ConsoleError  # noqa: E402  (guest/console.py)

PROMPT = Console.PROMPT  # the guest image's shell prompt
MARKER = r"godwit-guest: init started"  # the guest image's /init, first line
MODULES = "modprobe ext4; modprobe crc32c_generic"  # the guest image's ext2/ext4 modules
QMPError = qmp.QMPError


class Skip(Exception):
    """A case (or a whole test) that cannot run here: reported SKIP."""


def check(cond, what, con=None):
    """Fail the case (AssertionError) with `what` unless cond; with a
    Console, the message ends with its last output."""
    if not cond:
        raise AssertionError(what + ("\nlast output:\n" + con.tail() if con else ""))


# ---- paths ------------------------------------------------------------------------


def build_dir():
    """$BUILD (build/release), relative to the repository."""
    return os.environ.get("BUILD", "build/release")


def godwit_vm():
    """The godwit-vm binary under test: $GODWIT_VM, else $BUILD/godwit-vm."""
    return os.environ.get("GODWIT_VM", os.path.join(ROOT, build_dir(), "godwit-vm"))


def log_dir(*sub):
    """$BUILD/tests/linux (or another folder below $BUILD), created."""
    d = os.path.join(ROOT, build_dir(), *(sub or ("tests", "linux")))
    os.makedirs(d, exist_ok=True)
    return d


def guest_image():
    """(kernel Image, initrd) of the guest image, building them with
    guest/build.sh --print-paths when they are missing; Skip if that is
    impossible.  GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD name other files
    (never built)."""
    cache = os.path.join(os.environ.get("GODWIT_CACHE", os.path.expanduser("~/.cache/godwit")),
                         "guest")
    image = os.environ.get("GODWIT_GUEST_IMAGE", os.path.join(cache, "Image"))
    initrd = os.environ.get("GODWIT_GUEST_INITRD", os.path.join(cache, "initrd.img"))
    if os.path.exists(image) and os.path.exists(initrd):
        return image, initrd
    if "GODWIT_GUEST_IMAGE" in os.environ or "GODWIT_GUEST_INITRD" in os.environ:
        raise Skip("GODWIT_GUEST_IMAGE/GODWIT_GUEST_INITRD name missing files")
    import check as guest_check  # guest/check.py: runs guest/build.sh --print-paths
    print("building the guest image (guest/build.sh)...", file=sys.stderr, flush=True)
    try:
        paths = guest_check.guest_paths()
        image, initrd = paths["GODWIT_GUEST_IMAGE"], paths["GODWIT_GUEST_INITRD"]
    except (OSError, subprocess.CalledProcessError, KeyError) as e:
        raise Skip(f"no guest image, and guest/build.sh cannot build it: {e}") from None
    if not (os.path.exists(image) and os.path.exists(initrd)):
        raise Skip(f"guest/build.sh named missing files {image}, {initrd}")
    return image, initrd


def linux_argv(vm, image, initrd, smp=1, mem="256M", extra=()):
    """The usual command line of the guest image on the virt board."""
    return [vm, "-M", "virt", "-m", mem, "-smp", str(smp), "-nographic", "-kernel", image,
            "-initrd", initrd, "-append", "console=ttyS0", *extra]


class Ctx:
    """What the cases of a Linux-guest test share: the emulator, the guest
    image, the boot timeout (seconds, from timeout_env, 240) and the log
    files ($BUILD/tests/linux/PREFIX-NAME.log)."""

    def __init__(self, prefix, vm=None, timeout_env=None, tmp=None):
        self.prefix = prefix
        self.vm = vm or godwit_vm()
        self.logdir = log_dir()
        self.tmp = tmp
        self.boot_timeout = float(os.environ.get(timeout_env, "240") if timeout_env else 240)
        self.image = self.initrd = None

    def log(self, name):
        return os.path.join(self.logdir, f"{self.prefix}-{name}.log")

    def linux_argv(self, extra=(), smp=1, vm=None):
        return linux_argv(vm or self.vm, self.image, self.initrd, smp=smp, extra=extra)


# ---- reporting --------------------------------------------------------------------


def selected(cases, only):
    """The (name, ...) tuples of cases named in `only` (comma-separated; all
    when empty); ValueError for an unknown name."""
    if not only:
        return list(cases)
    want = only.split(",")
    unknown = set(want) - {c[0] for c in cases}
    if unknown:
        raise ValueError(f"unknown case(s) {sorted(unknown)}")
    return [c for c in cases if c[0] in want]


class Report:
    """Runs cases and prints the lines tests/run.sh counts."""

    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def skip(self, name, why):
        self.skipped += 1
        print(f"SKIP {name}: {why}", flush=True)

    def fail(self, name, why):
        self.failed += 1
        print(f"FAIL {name}: {why}", flush=True)

    def case(self, name, fn, *args, hint=None):
        """Run fn(*args): PASS (with its return value as a note), SKIP on
        Skip, FAIL on anything else, with `hint` (where the logs are) on
        the next line.  Returns True if it passed."""
        t0 = time.monotonic()
        try:
            note = fn(*args)
        except Skip as e:
            self.skip(name, e)
            return False
        except Exception as e:  # a failed check, a console or QMP timeout, ...
            self.failed += 1
            print(f"FAIL {name} ({time.monotonic() - t0:.1f}s): {str(e) or type(e).__name__}",
                  flush=True)
            if hint:
                print(f"     {hint}", flush=True)
            return False
        self.passed += 1
        print(f"PASS {name} ({time.monotonic() - t0:.1f}s)" + (f": {note}" if note else ""),
              flush=True)
        return True

    def summary(self):
        """The last line; returns the exit status (1 if anything failed)."""
        print(f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped", flush=True)
        return 1 if self.failed else 0


def linux_main(prefix, cases, cases_env, timeout_env, no_image_ok=(), log_name=None):
    """The case loop of a Linux-guest test: the cases [(name, fn(ctx))]
    named in $CASES_ENV (all when unset) run on a Ctx(prefix) with a
    temporary folder (ctx.tmp); every case is SKIP when godwit-vm is not
    built, and those not in no_image_ok when there is no guest image.  A
    FAIL names the case's log, ctx.log(log_name(name) or name).  Returns the
    exit status."""
    only = os.environ.get(cases_env)
    if only:
        cases = [c for c in cases if c[0] in only.split(",")]
    rep = Report()
    ctx = Ctx(prefix, timeout_env=timeout_env)
    if not os.access(ctx.vm, os.X_OK):
        for name, _ in cases:
            rep.skip(name, f"{ctx.vm} is not built (make)")
        return rep.summary()
    try:
        ctx.image, ctx.initrd = guest_image()
        no_image = None
    except Skip as e:
        no_image = str(e)
    with tempfile.TemporaryDirectory(prefix=f"godwit-{prefix}-") as ctx.tmp:
        for name, fn in cases:
            if no_image and name not in no_image_ok:
                rep.skip(name, no_image)
                continue
            rep.case(name, fn, ctx, hint=f"log: {ctx.log(log_name(name) if log_name else name)}")
    return rep.summary()


def main(fn):
    """sys.exit(fn()), with SIGTERM (tests/run.sh's timeout) turned into a
    normal exit so that with blocks and VM cleanup run."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(fn())


# ---- emulator processes --------------------------------------------------------------

_live = set()  # VMs not yet killed: killed at exit


@atexit.register
def _kill_all():
    for vm in list(_live):
        vm.kill()


class VM:
    """One emulator process started from argv.

    Its output goes to the file `out` (stderr to `err`, or to `out` too when
    err is None), or with console=True to a pty Console (self.con, logging
    to `out`; stderr shares the pty), or with lines=True to a pipe a thread
    reads: self.lines holds (time.monotonic() on arrival, text) per line,
    copied to `out`.  With qmp=PATH, `-qmp unix:PATH,server=on,wait=off` is
    appended and cmd() talks to it.  stdin=True gives a pipe (lines mode).
    """

    def __init__(self, name, argv, out, err=None, qmp=None, console=False, lines=False,
                 stdin=False, timeout=120.0):
        self.name = name
        self.sock = qmp
        if qmp:
            argv = [*argv, "-qmp", f"unix:{qmp},server=on,wait=off"]
        self.argv = argv
        self.out_path, self.err_path = out, err
        self.qmp = None
        self.con = None
        self.lines = []
        self._lock = threading.Lock()
        self._reader = None
        self.t_start = time.monotonic()
        if console:
            self.con = Console(argv, log=out, timeout=timeout)
            self.proc = self.con.proc
        elif lines:
            self._out = open(out, "wb")
            with open(err or os.devnull, "wb") as e:
                self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                             stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                             stderr=e, start_new_session=True)
            self._reader = threading.Thread(target=self._read, daemon=True)
            self._reader.start()
        else:
            with open(out, "wb") as o, open(err, "wb") if err else contextlib.nullcontext(o) as e:
                self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                             start_new_session=True)
        _live.add(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            now = time.monotonic()
            self._out.write(raw)
            text = raw.decode("utf-8", "replace").replace("\r", "").rstrip("\n")
            with self._lock:
                self.lines.append((now, text))

    # ---- output

    def output(self):
        """Everything the guest printed so far (carriage returns dropped)."""
        if self._reader:
            with self._lock:
                return "".join(t + "\n" for _, t in self.lines)
        with open(self.out_path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r", "")

    def stderr(self):
        """What the emulator wrote on stderr ("" when it shares the console)."""
        if self.con or not self.err_path:
            return ""
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_line(self, pattern, timeout, since=0.0):
        """lines mode: the arrival time of the first line (from `since` on)
        matching the regular expression, or None after timeout seconds or
        once the process ended."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                hit = next((w for w, t in self.lines if w >= since and rx.search(t)), None)
            if hit is not None:
                return hit
            if self.proc.poll() is not None:
                return None
            time.sleep(0.02)
        return None

    # ---- QMP

    def connect(self, timeout=15.0):
        """The QMP client, connected on first use (waiting for the socket
        while the process runs)."""
        if self.qmp is None:
            deadline = time.monotonic() + timeout
            while not os.path.exists(self.sock):
                check(self.proc.poll() is None,
                      f"{self.name}: exited ({self.proc.returncode}) before its QMP socket "
                      f"appeared: {self.stderr()[-400:]}")
                check(time.monotonic() < deadline, f"{self.name}: no QMP socket {self.sock}")
                time.sleep(0.01)
            self.qmp = qmp.connect(self.sock, timeout)
        return self.qmp

    def cmd(self, name, _args=None, /, **args):
        return self.connect().cmd(name, _args, **args)

    def status(self):
        return self.cmd("query-status")["status"]

    def wait_status(self, want, timeout=15.0, leave=False):
        """Poll query-status until it is one of `want` (or, leave=True, none
        of them); returns it."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.status()
            if (s in want) != leave:
                return s
            check(time.monotonic() < deadline,
                  f"{self.name}: status {s} after {timeout}s, want "
                  f"{'not ' if leave else ''}{'/'.join(want)}")
            time.sleep(0.01)

    def wait_loaded(self, timeout=60.0):
        """Wait until an -incoming load is over: the status leaves inmigrate."""
        return self.wait_status(("inmigrate", "prelaunch"), timeout, leave=True)

    # ---- the end

    def exit_status(self, timeout):
        """The exit status once the process ended, None if it still runs
        after timeout seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """SIGKILL (if it still runs), reap, close QMP, console and logs."""
        _live.discard(self)
        if self.qmp:
            try:
                self.qmp.close()
            except OSError:
                pass
            self.qmp = None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.con:
            self.con.close()
        if self._reader:
            self._reader.join(5)
            self._out.close()


# ---- the guest's console --------------------------------------------------------------


def wait_shell(con, boot_timeout, firmware=False, prompt_timeout=120):
    """Wait for the guest image's shell: /init's marker, then the prompt;
    firmware=True first waits for OpenSBI's banner and the kernel's."""
    if firmware:
        con.expect(r"OpenSBI v\d", 30)
        con.expect(r"Linux version", boot_timeout)
    con.expect(MARKER, boot_timeout)
    con.expect(PROMPT, prompt_timeout)


def run(con, cmd, timeout=120, ok=True):
    """Run a shell command in the guest; its output.  ok: fail the case
    unless it exits 0 (con.status holds the status either way)."""
    out = con.run(cmd, timeout=timeout)
    if ok:
        check(con.status == 0, f"`{cmd}` failed ({con.status}): {out.strip()[-300:]}", con)
    return out


def poweroff(con, force=False):
    """`poweroff`: the emulator must end with status 0.  force: `poweroff
    -f`, and how it ends does not matter (the case is over)."""
    if force:
        con.sendline("poweroff -f")
        try:
            con.wait(60)
        except ConsoleError:
            pass
        return
    con.sendline("poweroff")
    status = con.wait(60)
    check(status == 0, f"poweroff: status {status}", con)


def drain(con, quiet=0.5):
    """Read what the console still has (the VM is stopped) into con.output."""
    try:
        con.expect(r"(?!x)x", quiet)
    except ConsoleError:
        pass


def console_text(con):
    """Everything the console showed so far."""
    return "".join(con.output)


# ---- the host ---------------------------------------------------------------------


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh(*argv, check_rc=True):
    """Run a host command; its output (stdout and stderr).  AssertionError
    if it fails, unless check_rc is False."""
    r = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check_rc and r.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {r.stdout.strip()}")
    return r.stdout


def require_tap():
    """Skip unless this host can make network namespaces and TAP devices."""
    import shutil
    if os.geteuid() != 0:
        raise Skip("needs root (network namespace, TAP device)")
    if not shutil.which("ip"):
        raise Skip("needs iproute2 (ip)")
    if not os.path.exists("/dev/net/tun"):
        raise Skip("no /dev/net/tun")


class NetNS:
    """A private network namespace (name PREFIX + our pid) holding a bridge
    br0 with NET.1/24 and a TAP device gwtap0 on it, for a VM started with
    exec(argv) and `-netdev tap,ifname=gwtap0`.  Deleted on exit; no packet
    leaves it.  Skip if it cannot be created."""

    TAP = "gwtap0"

    def __init__(self, prefix, net):
        self.name = f"{prefix}{os.getpid()}"
        self.net = net

    def __enter__(self):
        try:
            sh("ip", "netns", "add", self.name)
        except AssertionError as e:
            raise Skip(f"cannot create a network namespace: {e}") from None
        try:
            for cmd in (["link", "set", "lo", "up"],
                        ["link", "add", "br0", "type", "bridge"],
                        ["addr", "add", f"{self.net}.1/24", "dev", "br0"],
                        ["link", "set", "br0", "up"],
                        ["tuntap", "add", "dev", self.TAP, "mode", "tap"],
                        ["link", "set", self.TAP, "master", "br0"],
                        ["link", "set", self.TAP, "up"]):
                sh("ip", "-n", self.name, *cmd)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        sh("ip", "netns", "del", self.name, check_rc=False)

    def exec(self, argv):
        """argv run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]
