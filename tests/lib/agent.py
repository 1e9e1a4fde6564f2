"""Driving godwitd and the godwit CLI from tests (tests/hosts/).

UnixHTTP/request: the daemon's API over its unix socket (what
`curl --unix-socket` does).  Daemon: a godwitd on a state directory (with
optional extra arguments, and optionally inside a network namespace via a
command prefix such as ["ip", "netns", "exec", NS]).  cli(): run the godwit
CLI against a daemon's socket and return (exit code, stdout, stderr).
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time

import harness as h
from harness import check


class UnixHTTP(http.client.HTTPConnection):
    """HTTP over the daemon's unix socket."""

    def __init__(self, path, timeout=5):
        super().__init__("godwit", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def request(sock, method, path, body=None, timeout=5):
    """(status, parsed JSON or None).  body: bytes/str as is, else JSON-encoded."""
    c = UnixHTTP(sock, timeout=timeout)
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    try:
        c.request(method, path, body=body,
                  headers={"Content-Type": "application/json"} if body is not None else {})
        r = c.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None
    finally:
        c.close()


def godwitd():
    return os.path.join(h.ROOT, h.build_dir(), "godwitd")


def godwit():
    return os.path.join(h.ROOT, h.build_dir(), "godwit")


class Daemon:
    def __init__(self, state, *args, prefix=(), log_name=None):
        self.state = state
        self.sock = os.path.join(state, "godwitd.sock")
        name = log_name or os.path.basename(state)
        self.log_path = os.path.join(h.log_dir("hosts"), f"godwitd-{name}.log")
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([*prefix, godwitd(), "--state-dir", state, *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_socket(self, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if os.path.exists(self.sock) and self.proc.poll() is None:
                try:
                    request(self.sock, "GET", "/1.0")
                    return self
                except OSError:
                    pass
            check(self.proc.poll() is None, f"godwitd exited {self.proc.returncode}")
            time.sleep(0.05)
        raise AssertionError("godwitd's socket never answered")

    def api(self, method, path, body=None, timeout=30):
        return request(self.sock, method, path, body, timeout=timeout)

    def cli(self, *args, timeout=120, env=None):
        return cli(self.sock, *args, timeout=timeout, env=env)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode


def cli(sock, *args, timeout=120, env=None, stdin=subprocess.DEVNULL):
    """Run `godwit -H unix:SOCK ARGS...`: (exit code, stdout, stderr)."""
    e = dict(os.environ)
    e.pop("GODWIT_HOST", None)
    if env:
        e.update(env)
    p = subprocess.run([godwit(), "-H", "unix:" + sock, *args], capture_output=True, text=True,
                       timeout=timeout, env=e, stdin=stdin)
    return p.returncode, p.stdout, p.stderr


def cli_json(sock, *args, timeout=120):
    """Run the CLI with --json and parse stdout; fails the check on exit != 0."""
    rc, out, err = cli(sock, "--json", *args, timeout=timeout)
    check(rc == 0, f"godwit {' '.join(args)}: exit {rc}: {err.strip()}")
    return json.loads(out) if out.strip() else None
