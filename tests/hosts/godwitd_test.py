#!/usr/bin/env python3
"""godwitd on one host: the state directory, the local API socket, the
daemon's life cycle (docs/godwitd.md).  Multi-host scenarios (peers in
network namespaces, migrations through the daemons) join this folder as
they are built.

Cases:
  api-socket   a daemon on a fresh state directory: its folders made 0700,
               the socket and the host key 0600, the certificate names the host, GET /1.0 names the host, unknown
               paths are 404 with the JSON error, a wrong method 405; SIGTERM stops it and removes the socket
  bad-args     a bad --name, an unknown option, an extra argument: exit 2
               with a message, nothing created
  second       a second daemon on the same state directory is refused while
               the first runs (even on another socket), naming the first's pid;
               the registry (godwit.db) is 0600 and records the host's name

Environment: BUILD (build/release), GODWITD_TEST_CASES (a subset).
Prints PASS/FAIL lines and `N passed, N failed, N skipped`.
"""
import os
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness as h  # noqa: E402
from harness import check  # noqa: E402


from agent import Daemon, godwitd, request  # noqa: E402


def case_api_socket(tmp):
    state = os.path.join(tmp, "a")
    d = Daemon(state, "--name", "hosta")
    try:
        d.wait_socket()
        check(stat.S_IMODE(os.stat(state).st_mode) == 0o700, "state dir not 0700")
        check(stat.S_IMODE(os.stat(os.path.join(state, "vms")).st_mode) == 0o700, "vms/ not 0700")
        check(stat.S_IMODE(os.stat(d.sock).st_mode) == 0o600, "socket not 0600")
        key = os.path.join(state, "tls", "host.key")
        check(stat.S_IMODE(os.stat(key).st_mode) == 0o600, "tls/host.key not 0600")
        import ssl
        crt = ssl._ssl._test_decode_cert(os.path.join(state, "tls", "host.crt"))
        check(("commonName", "hosta") in [f for rdn in crt["subject"] for f in rdn],
              f"certificate subject: {crt['subject']}")
        st, body = request(d.sock, "GET", "/1.0")
        check(st == 200 and body == {"api_version": "1.0", "server": "godwitd", "host": "hosta"},
              f"GET /1.0: {st} {body}")
        st, body = request(d.sock, "GET", "/1.0/nothing")
        check(st == 404 and body["error"]["code"] == 404, f"unknown path: {st} {body}")
        st, body = request(d.sock, "DELETE", "/1.0")
        check(st == 405 and body["error"]["code"] == 405, f"wrong method: {st} {body}")
    finally:
        rc = d.stop()
    check(rc == 0, f"SIGTERM: exit {rc}")
    check(not os.path.exists(d.sock), "the socket file stayed after the daemon stopped")


def case_bad_args(tmp):
    for args, want in ((["--name", "Bad Name"], "--name"), (["--bogus"], "unrecognized"),
                       (["extra"], "unexpected argument")):
        state = os.path.join(tmp, "bad")
        r = subprocess.run([godwitd(), "--state-dir", state, *args], capture_output=True,
                           text=True, timeout=10)
        check(r.returncode == 2 and want in r.stderr, f"{args}: exit {r.returncode} {r.stderr!r}")
        check(not os.path.exists(state), f"{args}: the state dir was created")


def case_second(tmp):
    state = os.path.join(tmp, "s")
    d = Daemon(state, "--name", "hosts")
    try:
        d.wait_socket()
        r = subprocess.run([godwitd(), "--state-dir", state, "--name", "hosts", "--socket",
                            os.path.join(tmp, "other.sock")],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode == 1 and f"pid {d.proc.pid}" in r.stderr,
              f"second daemon: exit {r.returncode} {r.stderr!r}")
        db = os.path.join(state, "godwit.db")
        check(stat.S_IMODE(os.stat(db).st_mode) == 0o600, "godwit.db not 0600")
        import sqlite3
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            names = [r[0] for r in c.execute("SELECT name FROM host")]
        check(names == ["hosts"], f"host table: {names}")
        st, _ = request(d.sock, "GET", "/1.0")
        check(st == 200, "the first daemon stopped answering")
    finally:
        d.stop()


CASES = [("api-socket", case_api_socket), ("bad-args", case_bad_args), ("second", case_second)]


def run():
    rep = h.Report()
    cases = h.selected(CASES, os.environ.get("GODWITD_TEST_CASES", ""))
    if not os.access(godwitd(), os.X_OK):
        for name, _ in cases:
            rep.skip(name, f"{godwitd()} is not built (make)")
        return rep.summary()
    with tempfile.TemporaryDirectory(prefix="godwit-hosts-") as tmp:
        for name, fn in cases:
            rep.case(name, fn, tmp)
    return rep.summary()


if __name__ == "__main__":
    h.main(run)
