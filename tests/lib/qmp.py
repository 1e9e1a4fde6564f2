#!/usr/bin/env python3
"""A small QMP client for tests (stdlib only: socket + json).

    from qmp import connect, QMPError
    q = connect("/tmp/vm/qmp.sock", timeout=10)   # greeting read, capabilities negotiated
    q.cmd("query-version")                          # -> the "return" value
    q.cmd("migrate", uri="unix:/tmp/m.sock")
    q.cmd("set-thing", {"dashed-name": 1})          # arguments QMP spells with '-'
    ev = q.wait_event("STOP", timeout=5)            # -> {"event", "data", "timestamp"}
    q.close()

Errors come back as QMPError(cls, desc).  Events that arrive while a
command waits for its reply are kept (q.events) until wait_event() or
clear_events() takes them.  Works with godwit-vm and QEMU alike.

Self-test against a running server:  python3 tests/lib/qmp.py SOCKET
"""
import json
import socket
import sys
import time


class QMPError(Exception):
    """An {"error": {"class", "desc"}} reply (or a broken connection: class "Disconnected")."""

    def __init__(self, cls, desc):
        super().__init__(f"{cls}: {desc}")
        self.cls = cls
        self.desc = desc


class QMPClient:
    def __init__(self, path, timeout=10.0):
        self.path = path
        self.timeout = timeout
        self.events = []
        self.greeting = None
        self._buf = b""
        self._next_id = 0
        self.sock = None
        deadline = time.monotonic() + timeout
        while True:  # the VM may not be listening yet
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                self.sock = s
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        self.greeting = self._recv(deadline)
        if "QMP" not in self.greeting:
            raise QMPError("Protocol", f"no greeting: {self.greeting!r}")

    def _recv(self, deadline):
        """The next message from the server, as a dict."""
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"QMP: no message from {self.path} in time")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                raise QMPError("Disconnected", f"QMP server at {self.path} closed the connection")
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def send_raw(self, data):
        """Send bytes as they are (for tests of malformed input)."""
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def recv(self, timeout=None):
        """The next message, event or reply, without any filtering."""
        return self._recv(time.monotonic() + (self.timeout if timeout is None else timeout))

    def request(self, name, args=None, timeout=None):
        """Send a command; returns the whole reply dict (events are buffered)."""
        self._next_id += 1
        rid = f"t{self._next_id}"
        msg = {"execute": name, "id": rid}
        if args:
            msg["arguments"] = args
        self.send_raw(json.dumps(msg).encode() + b"\n")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            m = self._recv(deadline)
            if "event" in m:
                self.events.append(m)
            elif m.get("id") == rid:
                return m
            # Replies to other ids (raw sends) are dropped.

    def cmd(self, name, _args=None, /, timeout=None, **kwargs):
        """Run a command: its "return" value, or QMPError.  Arguments as a
        dict and/or keywords."""
        args = dict(_args or {}, **kwargs)
        r = self.request(name, args, timeout)
        if "error" in r:
            raise QMPError(r["error"].get("class"), r["error"].get("desc"))
        return r["return"]

    def handshake(self):
        return self.cmd("qmp_capabilities")

    def wait_event(self, name, timeout=None):
        """The first event called name (buffered or new); TimeoutError if none."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            m = self._recv(deadline)
            if "event" in m:
                self.events.append(m)

    def clear_events(self):
        evs, self.events = self.events, []
        return evs

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(path, timeout=10.0, negotiate=True):
    """Connect (retrying until the socket appears), read the greeting and,
    unless told not to, negotiate capabilities."""
    q = QMPClient(path, timeout)
    if negotiate:
        q.handshake()
    return q


def _self_test(path):
    ok = True

    def check(cond, what):
        nonlocal ok
        ok &= bool(cond)
        print(("PASS " if cond else "FAIL ") + what)

    q = connect(path, 5, negotiate=False)
    check("version" in q.greeting["QMP"], "greeting")
    try:
        q.cmd("query-version")
        check(False, "command before negotiation refused")
    except QMPError as e:
        check(e.cls == "CommandNotFound", "command before negotiation refused")
    check(q.handshake() == {}, "qmp_capabilities")
    v = q.cmd("query-version")
    check("qemu" in v and "major" in v["qemu"], "query-version")
    names = [c["name"] for c in q.cmd("query-commands")]
    check("query-version" in names, "query-commands")
    try:
        q.cmd("no-such-command")
        check(False, "unknown command")
    except QMPError as e:
        check(e.cls == "CommandNotFound" and "no-such-command" in e.desc, "unknown command")
    q.send_raw(b'{"execute": tru}\n')
    check(q.recv()["error"]["class"] == "GenericError", "malformed JSON")
    check(q.cmd("query-version") == v, "recovered")
    q.close()
    return ok


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(0 if _self_test(sys.argv[1]) else 1)
