#!/usr/bin/env python3
"""Trust between hosts: godwitd's HTTPS listener for peers, pairing with
join tokens, the pinned peer client and `godwit peer ...`
(docs/godwitd.md "Trust between hosts", "Peers API").

Real daemons on 127.0.0.1 (each its own state directory and ports), real
TLS, the real CLI, curl and openssl from the shell, no mocks.

Cases:
  pair          B makes a token, A adds B: both list each other under their own
                names with the fingerprint of the other's tls/host.crt and its
                certificate in tls/peers/NAME.pem (0600); each reaches the other
                (`peer show --check`, the peer client over mutual TLS)
  wrong-name    A adds C's token under another name: refused with C's real
                name, nothing stored on either side, the token still works
  reuse         a token used once is refused the second time (by another host),
                which stores nothing; two hosts racing for one token: one gets in
  expired       a token made with --ttl 1 is refused after it expired
  wrong-cert    the token's address answered by a host with another certificate
                (a second godwitd, then a bare TLS server that counts what it
                receives): refused before the secret or any request byte is sent;
                the same for calls to a paired peer whose certificate changed
  listener      curl at B's --listen port: no client certificate is refused, a
                self-made one gets 403 everywhere, A's (trusted) reaches GET /1.0
                but not local-only routes (403); TLS 1.2 is refused
  remove        `peer remove` forgets the peer here only (and its certificate
                file); the other side still lists this host; calls are refused
  bad-input     names with '/', '..', spaces, upper case, 200 characters; bad
                tokens, malformed JSON, wrong types, unknown fields, > 1 MiB;
                a token without --listen or on a wildcard address: 4xx with a clear
                message, nothing changed; a --listen port in use: exit 1; CLI usage
                errors exit 2

Environment: BUILD (build/release), PEERS_TEST_CASES (a subset).
Prints PASS/FAIL lines and `N passed, N failed, N skipped`.
"""
import hashlib
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

from agent import Daemon, godwit, godwitd  # noqa: E402

LOCAL = "127.0.0.1"
CASE = "none"  # the running case, for log names


def fingerprint(state):
    with open(os.path.join(state, "tls", "host.crt")) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def start(tmp, case, name, *extra, listen=True, state=None, port=None):
    """A daemon named name with its own state directory and (listen) an
    HTTPS port; returns it with .port set.  Its log is
    build/test-logs/hosts/godwitd-peers-CASE-NAME.log."""
    state = state or os.path.join(tmp, name)
    if listen and port is None:
        port = h.free_port()
    args = ["--name", name, *extra]
    if listen:
        args += ["--listen", f"{LOCAL}:{port}"]
    log_name = f"peers-{case}-{os.path.basename(state)}"
    if os.path.exists(os.path.join(h.log_dir("hosts"), f"godwitd-{log_name}.log")):
        os.unlink(os.path.join(h.log_dir("hosts"), f"godwitd-{log_name}.log"))
    d = Daemon(state, *args, log_name=log_name)
    d.port = port
    d.name = name
    try:
        d.wait_socket()
    except BaseException:
        d.stop()
        raise
    return d


class Hosts:
    """Daemons started by a case, all stopped at the end."""

    def __init__(self, tmp, case):
        self.tmp = tmp
        self.case = case
        self.all = []

    def __enter__(self):
        return self

    def add(self, name, *extra, listen=True, state=None, port=None):
        """A new daemon (state: another directory than TMP/NAME; port: a
        given --listen port on 127.0.0.1)."""
        d = start(self.tmp, self.case, name, *extra, listen=listen, state=state, port=port)
        self.all.append(d)
        return d

    def __exit__(self, *exc):
        for d in self.all:
            d.stop()
        # a sanitizer build (BUILD=build/san-...) reports into the logs
        if exc[0] is None:
            for d in self.all:
                text = log_text(d)
                check("Sanitizer" not in text and "runtime error" not in text,
                      f"sanitizer report in {d.log_path}")


def token(d, *args):
    rc, out, err = d.cli("--json", "peer", "token", *args)
    check(rc == 0, f"peer token on {d.name}: exit {rc}: {err.strip()}")
    return json.loads(out)["token"]


def peers(d):
    rc, out, err = d.cli("--json", "peer", "list")
    check(rc == 0, f"peer list on {d.name}: exit {rc}: {err.strip()}")
    return {p["name"]: p for p in json.loads(out)}


def pair(a, b):
    tok = token(b)
    rc, out, err = a.cli("peer", "add", b.name, tok)
    check(rc == 0, f"peer add {b.name} on {a.name}: exit {rc}: {err.strip()}")
    return tok


def log_text(d):
    if not d.log.closed:
        d.log.flush()
    with open(d.log_path) as f:
        return f.read()


def case_pair(tmp):
    with Hosts(tmp, CASE) as hs:
        a, b = hs.add("hosta"), hs.add("hostb")
        tok = token(b)
        rc, out, err = a.cli("peer", "add", "hostb", tok)
        check(rc == 0 and "added peer hostb" in out, f"peer add: exit {rc}: {out} {err}")
        pa, pb = peers(a), peers(b)
        check(list(pa) == ["hostb"] and list(pb) == ["hosta"], f"lists: {pa} {pb}")
        check(pa["hostb"]["fingerprint"] == fingerprint(b.state), "A's record of B's fingerprint")
        check(pb["hosta"]["fingerprint"] == fingerprint(a.state), "B's record of A's fingerprint")
        check(pa["hostb"]["address"] == f"{LOCAL}:{b.port}", f"B's address: {pa['hostb']}")
        check(pb["hosta"]["address"] == f"{LOCAL}:{a.port}", f"A's address: {pb['hosta']}")
        for d, other in ((a, b), (b, a)):
            pem = os.path.join(d.state, "tls", "peers", other.name + ".pem")
            check(stat.S_IMODE(os.stat(pem).st_mode) == 0o600, f"{pem} not 0600")
            with open(pem) as f, open(os.path.join(other.state, "tls", "host.crt")) as g:
                check(ssl.PEM_cert_to_DER_cert(f.read()) == ssl.PEM_cert_to_DER_cert(g.read()),
                      f"{pem} is not {other.name}'s certificate")
            rc, out, err = d.cli("peer", "show", other.name, "--check")
            check(rc == 0 and f"answers as {other.name}" in out,
                  f"{d.name} -> {other.name}: exit {rc}: {out} {err}")
        # the human table
        rc, out, _ = a.cli("peer", "list")
        lines = out.splitlines()
        check(rc == 0 and lines[0].split() == ["NAME", "ADDRESS", "FINGERPRINT", "ADDED"] and
              lines[1].startswith("hostb ") and fingerprint(b.state) in lines[1],
              f"table: {out!r}")
        check(lines[0].index("ADDRESS") == lines[1].index(f"{LOCAL}:"), "columns not aligned")
        # pairing again: already a peer, on both sides
        rc, _, err = a.cli("peer", "add", "hostb", token(b))
        check(rc == 1 and "already" in err, f"second add: exit {rc}: {err}")


def case_wrong_name(tmp):
    with Hosts(tmp, CASE) as hs:
        a, c = hs.add("hosta"), hs.add("hostc")
        tok = token(c)
        rc, _, err = a.cli("peer", "add", "hostb", tok)
        check(rc == 1 and "'hostc'" in err and "not 'hostb'" in err,
              f"wrong name: exit {rc}: {err}")
        check(peers(a) == {} and peers(c) == {}, "something was stored")
        check(os.listdir(os.path.join(a.state, "tls", "peers")) == [], "a certificate file stayed")
        rc, _, err = a.cli("peer", "add", "hostc", tok)
        check(rc == 0, f"the token no longer works: exit {rc}: {err}")
        check(list(peers(a)) == ["hostc"] and list(peers(c)) == ["hosta"], "after the retry")


def case_reuse(tmp):
    with Hosts(tmp, CASE) as hs:
        a, b, c = hs.add("hosta"), hs.add("hostb"), hs.add("hostc")
        tok = pair(a, b)
        rc, _, err = c.cli("peer", "add", "hostb", tok)
        check(rc == 1 and "already used" in err, f"reused token: exit {rc}: {err}")
        check(peers(c) == {} and list(peers(b)) == ["hosta"], "the reuse changed something")
        # two hosts racing for one token: exactly one gets in
        d, e = hs.add("hostd"), hs.add("hoste")
        tok2 = token(b)
        results = {}

        def add(host):
            results[host.name] = host.cli("peer", "add", "hostb", tok2)

        threads = [threading.Thread(target=add, args=(x,)) for x in (d, e)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        winners = [n for n, (rc, _, _) in results.items() if rc == 0]
        losers = [err for rc, _, err in results.values() if rc != 0]
        check(len(winners) == 1 and len(losers) == 1 and "already used" in losers[0],
              f"race: {results}")
        check(sorted(peers(b)) == sorted(["hosta", winners[0]]), f"B after the race: {peers(b)}")
        # the same token once more from A (after forgetting B): still refused
        rc, _, _ = a.cli("peer", "remove", "hostb")
        check(rc == 0, "remove")
        rc, _, err = a.cli("peer", "add", "hostb", tok)
        # (B deletes used tokens when it makes the next one: then it is unknown)
        check(rc == 1 and ("already used" in err or "unknown token" in err),
              f"reused by A: exit {rc}: {err}")


def case_expired(tmp):
    with Hosts(tmp, CASE) as hs:
        a, b = hs.add("hosta"), hs.add("hostb")
        tok = token(b, "--ttl", "1")
        time.sleep(2.1)
        rc, _, err = a.cli("peer", "add", "hostb", tok)
        check(rc == 1 and "expired" in err, f"expired token: exit {rc}: {err}")
        check(peers(a) == {} and peers(b) == {}, "something was stored")


def make_cert(tmp, name):
    key, crt = os.path.join(tmp, name + ".key"), os.path.join(tmp, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-subj",
                    "/CN=" + name, "-days", "2"], check=True, capture_output=True)
    return crt, key


class CountingTLSServer:
    """A bare TLS 1.3 server on port: completes handshakes and counts the
    application bytes each connection sends."""

    def __init__(self, port, crt, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(crt, key)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((LOCAL, port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.handshakes = 0
        self.received = 0
        self.finished = 0  # connections over (the client may finish first)
        self.stop_flag = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(3)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as s:
                    self.handshakes += 1
                    while True:
                        data = s.recv(4096)
                        if not data:
                            break
                        self.received += len(data)
            except (OSError, ssl.SSLError):
                pass
            finally:
                conn.close()
                self.finished += 1

    def wait(self, n=1, timeout=10):
        """Until n connections are over (their bytes counted)."""
        end = time.monotonic() + timeout
        while self.finished < n and time.monotonic() < end:
            time.sleep(0.05)

    def close(self):
        self.stop_flag = True
        self.thread.join(5)
        self.sock.close()


def case_wrong_cert(tmp):
    with Hosts(tmp, CASE) as hs:
        a, b = hs.add("hosta"), hs.add("hostb")
        # B's token, but another godwitd (same name, its own key) at B's address
        tok = token(b)
        b.stop()
        c = hs.add("hostb", state=os.path.join(tmp, "impostor"), port=b.port)
        rc, _, err = a.cli("peer", "add", "hostb", tok)
        check(rc == 1 and "not the token's" in err and "refusing to send it the secret" in err,
              f"wrong certificate: exit {rc}: {err}")
        check(peers(a) == {} and peers(c) == {}, "something was stored")
        check("refused" not in log_text(c) and "joined" not in log_text(c),
              "the impostor saw a request")
        c.stop()

        # A bare TLS server counts what reaches it: the probe sends nothing.
        crt, key = make_cert(tmp, "evil")
        srv = CountingTLSServer(b.port, crt, key)
        try:
            rc, _, err = a.cli("peer", "add", "hostb", tok)
            check(rc == 1 and "not the token's" in err, f"bare server: exit {rc}: {err}")
            srv.wait()
            check(srv.finished >= 1 and srv.received == 0,
                  f"handshakes {srv.handshakes}, bytes received {srv.received}")
        finally:
            srv.close()

        # A paired peer whose certificate changed: the peer client refuses
        # after the handshake, before a byte of the request.
        b2 = hs.add("hostb", state=os.path.join(tmp, "hostb"), port=b.port)
        pair(a, b2)
        b2.stop()
        srv = CountingTLSServer(b.port, crt, key)
        try:
            rc, out, err = a.cli("peer", "show", "hostb", "--check")
            check(rc == 1 and "reachable:    no" in out and "pinned" in out,
                  f"changed certificate: exit {rc}: {out} {err}")
            srv.wait()
            check(srv.finished >= 1 and srv.received == 0,
                  f"handshakes {srv.handshakes}, bytes received {srv.received}")
        finally:
            srv.close()


def curl(port, path, *args, method="GET", data=None):
    """(curl's exit code, HTTP status or 0, body) for https://127.0.0.1:port/path."""
    argv = ["curl", "-sk", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", "-X", method,
            *args, f"https://{LOCAL}:{port}{path}"]
    if data is not None:
        argv[1:1] = ["--data-binary", data, "-H", "Content-Type: application/json"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    body, _, code = p.stdout.rpartition("\n")
    return p.returncode, int(code or 0), body


def case_listener(tmp):
    if not shutil.which("curl") or not shutil.which("openssl"):
        raise h.Skip("curl or openssl missing")
    with Hosts(tmp, CASE) as hs:
        a, b = hs.add("hosta"), hs.add("hostb")
        pair(a, b)
        a_cert = ["--cert", os.path.join(a.state, "tls", "host.crt"), "--key",
                  os.path.join(a.state, "tls", "host.key")]
        # no client certificate: the handshake fails, no HTTP answer
        rc, code, body = curl(b.port, "/1.0")
        check(code in (0, 403) and "hostb" not in body, f"no certificate: rc {rc} {code} {body}")
        # a self-made certificate: 403 everywhere but the join's route
        crt, key = make_cert(tmp, "selfmade")
        mine = ["--cert", crt, "--key", key]
        for method, path in (("GET", "/1.0"), ("GET", "/1.0/peers"), ("GET", "/1.0/nothing"),
                             ("POST", "/1.0/peers/tokens"), ("DELETE", "/1.0/peers/hosta")):
            rc, code, body = curl(b.port, path, *mine, method=method, data="{}")
            check(code == 403 and "does not trust" in body,
                  f"self-made {method} {path}: {code} {body}")
        rc, code, body = curl(b.port, "/1.0/peers/join", *mine, method="POST",
                              data='{"secret":"AAAA","name":"evil","host":"hostb"}')
        check(code == 400 and "secret" in body, f"join with a bad secret: {code} {body}")
        check(list(peers(b)) == ["hosta"], "the self-made certificate changed something")
        check("untrusted certificate" in log_text(b), "refusals are not logged")
        # A's certificate: trusted
        rc, code, body = curl(b.port, "/1.0", *a_cert)
        check(code == 200 and json.loads(body)["host"] == "hostb", f"GET /1.0: {code} {body}")
        for method, path in (("POST", "/1.0/peers/tokens"), ("GET", "/1.0/peers"),
                             ("DELETE", "/1.0/peers/hosta")):
            rc, code, body = curl(b.port, path, *a_cert, method=method, data="{}")
            check(code == 403 and "local operator only" in body,
                  f"trusted {method} {path}: {code} {body}")
        rc, code, body = curl(b.port, "/1.0/nothing", *a_cert)
        check(code == 404, f"trusted, unknown path: {code} {body}")
        check(list(peers(b)) == ["hosta"], "a local-only route ran for a peer")
        # TLS 1.2 is refused
        rc, code, body = curl(b.port, "/1.0", "--tls-max", "1.2", *a_cert)
        check(code == 0 and rc != 0, f"TLS 1.2: rc {rc} {code}")
        # the unix socket still serves everything
        st, _ = b.api("GET", "/1.0/peers")
        check(st == 200, f"unix socket: {st}")


def case_remove(tmp):
    with Hosts(tmp, CASE) as hs:
        a, b = hs.add("hosta"), hs.add("hostb")
        pair(a, b)
        rc, out, err = a.cli("peer", "remove", "hostb")
        check(rc == 0 and "this host only" in out, f"remove: exit {rc}: {out} {err}")
        check(peers(a) == {} and list(peers(b)) == ["hosta"], "lists after remove")
        check(not os.path.exists(os.path.join(a.state, "tls", "peers", "hostb.pem")),
              "the certificate file stayed")
        rc, _, err = a.cli("peer", "remove", "hostb")
        check(rc == 1 and "no peer named 'hostb'" in err, f"second remove: exit {rc}: {err}")
        rc, _, err = a.cli("peer", "show", "hostb", "--check")
        check(rc == 1 and "no peer" in err, f"show after remove: exit {rc}: {err}")
        # B calling A is now refused by A (B still trusts A)
        rc, out, _ = b.cli("peer", "show", "hosta", "--check")
        check(rc == 1 and "does not trust" in out, f"B -> A after remove: exit {rc}: {out}")


def raw_post(sock_path, path, body):
    """POST a body the server may refuse before reading it all: (status, text)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    try:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: godwit\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n".encode())
        try:
            s.sendall(body)
        except OSError:
            pass  # refused early: the answer is already there
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, text = data.decode(errors="replace").partition("\r\n\r\n")
    parts = head.split()
    return (int(parts[1]) if len(parts) > 1 else 0), text


def case_bad_input(tmp):
    with Hosts(tmp, CASE) as hs:
        a, b = hs.add("hosta"), hs.add("hostb")
        n = hs.add("hostn", listen=False)
        pair(a, b)
        before = peers(a)
        good = token(b)
        for name in ("a/b", "..", "a b", "Upper", "x" * 200, "", "-x", "1abc"):
            st, body = a.api("POST", "/1.0/peers", {"name": name, "token": good})
            check(st == 400 and "invalid peer name" in body["error"]["message"],
                  f"name {name!r}: {st} {body}")
        for tok, want in (("abc", "token"), ("", "empty"), ("A" * 5000, "too long"),
                          (good[:-3], "join token"), ("!" + good, "unexpected character")):
            st, body = a.api("POST", "/1.0/peers", {"name": "hostc", "token": tok})
            check(st == 400 and want in body["error"]["message"], f"token {tok[:20]!r}: {st} {body}")
        for raw, want in (('{"name": "x"', "malformed JSON"), ("[1]", "object"),
                          ('{"name": 1, "token": "x"}', "expected a string"),
                          ('{"name": "x", "token": "y", "extra": 1}', "unknown field"),
                          ('{"name": "x"}', "missing field"), ("", "required"),
                          ('{"name":"x","name":"y","token":"z"}', "malformed")):
            st, body = a.api("POST", "/1.0/peers", raw)
            check(st == 400 and want in body["error"]["message"], f"body {raw!r}: {st} {body}")
        big = ('{"name": "x", "token": "' + "A" * (1 << 20) + '"}').encode()
        st, body = raw_post(a.sock, "/1.0/peers", big)
        check(st == 413 and "larger than" in body, f"> 1 MiB: {st} {body}")
        for path in ("/1.0/peers/Bad", "/1.0/peers/a%20b", "/1.0/peers/" + "x" * 200):
            st, body = a.api("DELETE", path)
            check(st == 400 and "invalid peer name" in body["error"]["message"],
                  f"DELETE {path}: {st} {body}")
        st, body = a.api("DELETE", "/1.0/peers/..")
        check(st in (400, 404, 405), f"DELETE ..: {st} {body}")
        for req, want in (({"ttl": "x"}, "expected an integer"), ({"ttl": 0}, "ttl"),
                          ({"ttl": 10 ** 9}, "ttl"), ({"address": "no port"}, "address"),
                          ({"address": "0.0.0.0:1"}, "cannot be reached"),
                          ({"bogus": 1}, "unknown field")):
            st, body = b.api("POST", "/1.0/peers/tokens", req)
            check(st == 400 and want in body["error"]["message"], f"token {req}: {st} {body}")
        # a join over the unix socket makes no sense
        st, body = b.api("POST", "/1.0/peers/join", {"secret": "x", "name": "x", "host": "hostb"})
        check(st == 400 and "HTTPS" in body["error"]["message"], f"unix join: {st} {body}")
        check(peers(a) == before and list(peers(b)) == ["hosta"], "bad input changed something")
        # no --listen: no token
        rc, _, err = n.cli("peer", "token")
        check(rc == 1 and "--listen" in err, f"token without --listen: exit {rc}: {err}")
        # a wildcard listener needs --address
        port = h.free_port()
        w = hs.add("hostw", "--listen", f"0.0.0.0:{port}", listen=False)
        rc, _, err = w.cli("peer", "token")
        check(rc == 1 and "--address" in err, f"wildcard without --address: exit {rc}: {err}")
        tok = token(w, "--address", f"{LOCAL}:{port}")
        rc, _, err = a.cli("peer", "add", "hostw", tok)
        check(rc == 0, f"pairing through --address: exit {rc}: {err}")
        # a --listen port already taken: the daemon refuses to start
        with socket.socket() as taken:
            taken.bind((LOCAL, 0))
            taken.listen()
            r = subprocess.run([godwitd(), "--state-dir", os.path.join(tmp, "busy"), "--name",
                                "busy", "--listen", f"{LOCAL}:{taken.getsockname()[1]}"],
                               capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and "Address already in use" in r.stderr,
              f"busy port: exit {r.returncode} {r.stderr!r}")
        check(not os.path.exists(os.path.join(tmp, "busy", "godwitd.sock")), "socket left")
        # CLI usage errors
        for args in (("peer",), ("peer", "frob"), ("peer", "add", "x"),
                     ("peer", "add", "Bad/Name", good), ("peer", "token", "--ttl", "soon"),
                     ("peer", "remove"), ("peer", "list", "extra")):
            rc, _, err = a.cli(*args)
            check(rc == 2 and err.startswith("godwit: "), f"{args}: exit {rc}: {err}")


CASES = [("pair", case_pair), ("wrong-name", case_wrong_name), ("reuse", case_reuse),
         ("expired", case_expired), ("wrong-cert", case_wrong_cert),
         ("listener", case_listener), ("remove", case_remove), ("bad-input", case_bad_input)]


def run():
    rep = h.Report()
    cases = h.selected(CASES, os.environ.get("PEERS_TEST_CASES", ""))
    if not os.access(godwitd(), os.X_OK) or not os.access(godwit(), os.X_OK):
        for name, _ in cases:
            rep.skip(name, f"{godwitd()} or {godwit()} is not built (make)")
        return rep.summary()
    global CASE
    for name, fn in cases:
        CASE = name
        with tempfile.TemporaryDirectory(prefix="godwit-peers-") as tmp:
            rep.case(name, fn, tmp, hint=f"logs: {h.log_dir('hosts')}")
    return rep.summary()


if __name__ == "__main__":
    h.main(run)
