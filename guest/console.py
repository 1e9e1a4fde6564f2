#!/usr/bin/env python3
"""Drive a VM's serial console the way expect(1) does (python3 stdlib only).

The command (qemu-system-riscv64, godwit-vm, ...) runs on a pseudo-terminal
so it behaves as it would for a person at a terminal (-nographic sets it to
raw mode, for instance). Output is matched with regular expressions against
a buffer from which carriage returns and terminal escape sequences (such as
the cursor position query busybox's line editor sends after each prompt)
are dropped, so patterns use plain \\n; the log keeps every byte.

As a library:

    from console import Console
    with Console(["qemu-system-riscv64", ...], log="boot.log") as c:
        c.expect(r"godwit-guest: init started", timeout=60)
        c.expect(Console.PROMPT)
        out = c.run("nproc")            # its output; c.status: exit status
        c.sendline("poweroff")
        assert c.wait(timeout=30) == 0

From the shell, steps run in the order given:

    guest/console.py -t 60 -e 'init started' -e 'godwit-guest:.*# ' \\
        -s 'uname -a' -e riscv64 -s poweroff -x 0 -- qemu-system-riscv64 ...

Errors (a timeout, the program ending before a pattern was seen) raise
ConsoleError with the tail of the output, or exit with status 1 from the CLI.
"""

import argparse
import codecs
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

# CSI and two-byte escape sequences; a sequence cut by a read is completed
# by the next one (see _clean).
_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|[^[])")
_ESCAPE_TAIL = re.compile(r"\x1b(\[[0-?]*[ -/]*)?$")


class ConsoleError(Exception):
    """A pattern was not seen in time, or the program ended first."""


class Console:
    # The guest image's shell prompt, "godwit-guest:/root# ".
    PROMPT = r"godwit-guest:\S*# "

    def __init__(self, argv, log=None, echo=False, env=None, cwd=None, timeout=30.0,
                 rows=24, cols=200):
        """Start argv on a new pty. log: path or file object that receives
        every byte of output; echo: copy output to our stdout as it comes;
        timeout: default for expect()/wait(), in seconds."""
        self.timeout = timeout
        self.echo = echo
        self.buffer = ""  # unmatched output, \r removed
        self.before = ""  # text before the last match
        self.match = None
        self.output = []  # all output (\r removed), for post-mortems
        self._closelog = False
        if isinstance(log, (str, os.PathLike)):
            log = open(log, "wb")
            self._closelog = True
        self._log = log
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""  # an escape sequence not yet complete
        self._runs = 0  # run() calls, for unique markers
        self.status = None  # exit status of the last run()
        master, slave = os.openpty()
        # A window size as a terminal would have (the VMM may pass it on).
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.started = time.monotonic()
        try:
            self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                         env=env, cwd=cwd, start_new_session=True,
                                         close_fds=True)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        os.close(slave)
        self.fd = master
        self.eof = False

    # ---- lifetime -------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def elapsed(self):
        """Seconds since the program was started."""
        return time.monotonic() - self.started

    def close(self, grace=3.0):
        """Stop the program if it still runs (SIGTERM, then SIGKILL) and free the pty."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self._log and self._closelog:
            self._log.close()
            self._log = None

    # ---- reading --------------------------------------------------------

    def _fill(self, deadline):
        """Read what is available until deadline; False once nothing more can come."""
        if self.eof:
            return False
        wait = max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: every slave descriptor is closed
            data = b""
        if not data:
            self.eof = True
            return False
        if self._log:
            self._log.write(data)
            self._log.flush()
        if self.echo:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        text = self._clean(self._decoder.decode(data))
        self.buffer += text
        self.output.append(text)
        return True

    def _clean(self, text):
        text = self._partial + text
        tail = _ESCAPE_TAIL.search(text)
        self._partial = text[tail.start():] if tail else ""
        if tail:
            text = text[:tail.start()]
        return _ESCAPE.sub("", text).replace("\r", "")

    def expect(self, patterns, timeout=None):
        """Wait for the first of patterns (a regex or a list of them).

        Returns the index of the pattern that matched (the earliest match in
        the output wins); self.match is the match object and self.before the
        text before it. Matched text and everything before it is consumed.
        """
        if isinstance(patterns, (str, re.Pattern)):
            patterns = [patterns]
        regs = [p if isinstance(p, re.Pattern) else re.compile(p, re.M) for p in patterns]
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            best = None
            for i, reg in enumerate(regs):
                m = reg.search(self.buffer)
                if m and (best is None or m.start() < best[1].start()):
                    best = (i, m)
            if best:
                i, m = best
                self.before, self.match = self.buffer[:m.start()], m
                self.buffer = self.buffer[m.end():]
                return i
            if time.monotonic() >= deadline:
                raise ConsoleError("timeout after %.1fs waiting for %s; last output:\n%s" % (
                    self.elapsed(), [r.pattern for r in regs], self.tail()))
            if not self._fill(deadline):
                raise ConsoleError("program ended (status %s) while waiting for %s; "
                                   "last output:\n%s" % (self.proc.wait(), [r.pattern for r in regs],
                                                         self.tail()))

    def tail(self, chars=2000):
        """The last output, for error messages."""
        return "".join(self.output)[-chars:]

    # ---- writing --------------------------------------------------------

    def send(self, text):
        data = text.encode() if isinstance(text, str) else text
        while data:
            n = os.write(self.fd, data)
            data = data[n:]

    def sendline(self, text=""):
        """Type a line; Enter is sent as a terminal sends it (CR)."""
        self.send(text + "\r")

    def run(self, command, prompt=None, timeout=None):
        """Type a shell command, wait for it and the next prompt; return what
        it printed (stdout and stderr) and leave its exit status in
        self.status. The output is framed by two marker lines the shell
        prints, so line wrapping of the echoed command, or console noise
        before it, cannot leak in. For one-line commands; a trailing & is
        fine."""
        self._runs += 1
        tag = "GW%d_%d" % (os.getpid(), self._runs)
        sep = " " if command.rstrip().endswith("&") else "; "
        # The quotes keep the echoed command line from matching the markers.
        self.sendline("echo %s''B; %s%secho %s''E:$?" % (tag, command, sep, tag))
        # godwit-vm's own log lines share the pty: one may land between a
        # marker and its newline (the UART's bytes go out in pieces)
        self.expect(tag + r"B(?:\r?\n|(?=godwit-vm: ))", timeout)
        self.expect(tag + r"E:(\d+)(?:\r?\n|(?=godwit-vm: ))", timeout)
        out, self.status = self.before, int(self.match.group(1))
        self.expect(prompt or self.PROMPT, timeout)
        return out

    # ---- the end --------------------------------------------------------

    def wait(self, timeout=None):
        """Wait for the program to end (draining its output); return its status."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while self._fill(deadline):
            if time.monotonic() >= deadline:
                break
        try:
            return self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise ConsoleError("program still running after %.1fs; last output:\n%s" % (
                self.elapsed(), self.tail())) from None


class _Step(argparse.Action):
    def __call__(self, parser, ns, value, option=None):
        ns.steps = (ns.steps or []) + [(self.dest, value)]


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Run a program on a pty, wait for patterns, type lines.",
        epilog="Steps (-e, -s, -x) run in the order given.")
    ap.add_argument("-t", "--timeout", type=float, default=30.0,
                    help="seconds each step may take (default 30)")
    ap.add_argument("-l", "--log", help="write all output to this file")
    ap.add_argument("-q", "--quiet", action="store_true", help="do not copy output to stdout")
    ap.add_argument("-e", "--expect", dest="expect", action=_Step, metavar="REGEX",
                    help="wait for REGEX")
    ap.add_argument("-s", "--send", dest="send", action=_Step, metavar="LINE",
                    help="type LINE and Enter")
    ap.add_argument("-x", "--exit", dest="exit", action=_Step, metavar="STATUS",
                    help="wait for the program to end with STATUS")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    ap.set_defaults(steps=[])
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command given")
    con = Console(cmd, log=args.log, echo=not args.quiet, timeout=args.timeout)
    try:
        for kind, value in args.steps:
            if kind == "expect":
                con.expect(value)
                print("\n[console: %.2fs: matched %r]" % (con.elapsed(), value),
                      file=sys.stderr)
            elif kind == "send":
                con.sendline(value)
            else:
                status = con.wait()
                if status != int(value):
                    raise ConsoleError("program ended with status %d, expected %s"
                                       % (status, value))
                print("\n[console: %.2fs: ended with status %d]" % (con.elapsed(), status),
                      file=sys.stderr)
    except ConsoleError as e:
        print("\nconsole: %s" % e, file=sys.stderr)
        return 1
    finally:
        con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
