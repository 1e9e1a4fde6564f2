#!/usr/bin/env python3
"""The TCP fault proxy of the multi-host tests (tests/lib/proxy.py) between
two godwitd hosts in network namespaces (tests/lib/hosts.py): the pairing
goes through it, and it cuts, refuses and lets through as told.

Two hosts ha, hb.  The proxy runs in hb's namespace (a child process under
`ip netns exec`, driven over its stdin/stdout) on hb's address, port
PROXY_PORT, forwarding to hb's --listen; hb's join token names the proxy
(`godwit peer token --address IP:PROXY_PORT`), so ha stores the proxy as
hb's address and every call ha makes to hb crosses it.

Cases:
  pair        ha adds hb's token: the pairing's bytes went through the proxy;
              ha lists hb at the proxy's address, hb lists ha at its own;
              `peer show hb --check` on ha answers and adds bytes both ways
              in a new connection
  cut         an upload in flight from ha to hb through the proxy (curl with
              ha's certificate, 700 KB at 100 KB/s) is reset by cut_now: curl
              fails, no HTTP status; without the cut the same upload gets
              hb's answer; cut_after(N) stops a second upload after exactly
              N more client->server bytes; disarm() forgets a pending one; a call
              after a cut works
  refuse      refuse(True): `peer show hb --check` on ha fails and the proxy
              counts the refused connections; refuse(False): it works again
  stop        the proxy stopped (hb now unreachable at that address): the call
              fails; the proxy process is gone

Needs root and iproute2 (SKIP otherwise), godwitd with --listen, curl.
Environment: BUILD (build/release), PROXY_TEST_CASES (a subset).
Prints PASS/FAIL/SKIP lines and `N passed, N failed, N skipped`.
"""
import os
import shutil
import subprocess
import sys
import threading
import time

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib")
sys.path.insert(0, LIB)
import harness as h  # noqa: E402
from harness import Skip, check  # noqa: E402

import agent  # noqa: E402
import hosts  # noqa: E402
from hosts import Rack  # noqa: E402
from proxy import ProxyProcess  # noqa: E402

PREFIX = "gwpx"
PROXY_PORT = 9443
BODY = 700 * 1000  # the upload's bytes (below the API's 1 MiB body limit)


class Env:
    def __init__(self, rack):
        self.rack = rack
        self.a, self.b = rack.hosts[0], rack.hosts[1]
        self.log = open(os.path.join(h.log_dir("hosts"), f"proxy-{PREFIX}.log"), "w")
        self.proxy = ProxyProcess(self.b.exec([]), (self.b.ip, PROXY_PORT),
                                  (self.b.ip, hosts.PORT), log=self.log)
        self.body = os.path.join(rack.state, "body.json")
        with open(self.body, "wb") as f:
            f.write(b'{"pad":"' + b"x" * (BODY - 10) + b'"}')

    def close(self):
        self.proxy.stop()
        self.log.close()


def peer_check(env):
    """`godwit peer show hb --check` on ha: (exit code, output)."""
    rc, out, err = env.a.cli("peer", "show", env.b.name, "--check", timeout=60)
    return rc, (out + err).strip()


def upload(env, rate="100k", timeout=60):
    """POST BODY bytes from ha's namespace to hb through the proxy with ha's
    certificate (mutual TLS, as ha's godwitd would): (curl's exit code, HTTP
    status or 0, seconds)."""
    tls = os.path.join(env.a.state, "tls")
    argv = env.a.exec(["curl", "-sk", "--max-time", str(timeout), "-o", "/dev/null", "-w",
                       "%{http_code}", "--cert", os.path.join(tls, "host.crt"), "--key",
                       os.path.join(tls, "host.key"), "--limit-rate", rate, "-H", "Expect:",
                       "-H", "Content-Type: application/json", "--data-binary",
                       "@" + env.body, f"https://{env.proxy.address}/1.0/peers/join"])
    t0 = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10)
    return p.returncode, int(p.stdout.strip() or 0), time.monotonic() - t0


def wait_for(fn, timeout, what, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out ({timeout}s) waiting for {what}")


# ---- cases --------------------------------------------------------------------------------


def case_pair(env):
    a, b, p = env.a, env.b, env.proxy
    before = p.stats()
    rc, out, err = b.cli("peer", "token", "--address", p.address)
    check(rc == 0 and out.strip(), f"{b.name}: peer token: exit {rc}: {err.strip()}")
    rc, out, err = a.cli("peer", "add", b.name, out.split()[-1], timeout=60)
    check(rc == 0, f"{a.name}: peer add {b.name}: exit {rc}: {(out + err).strip()}")
    st = p.stats()
    check(st["c2s"] > before["c2s"] and st["s2c"] > before["s2c"] and st["connections"] >= 1,
          f"the pairing did not cross the proxy: {st}")
    pa = {x["name"]: x for x in a.cli_json("peer", "list")}
    pb = {x["name"]: x for x in b.cli_json("peer", "list")}
    check(pa.get(b.name, {}).get("address") == p.address,
          f"{a.name} lists {b.name} at {pa.get(b.name)}, want the proxy {p.address}")
    check(pb.get(a.name, {}).get("address") == a.listen,
          f"{b.name} lists {a.name} at {pb.get(a.name)}, want {a.listen}")
    n0 = st["connections"]
    rc, out = peer_check(env)
    check(rc == 0 and f"answers as {b.name}" in out, f"peer show --check: exit {rc}: {out}")
    st2 = p.stats()
    check(st2["connections"] > n0 and st2["c2s"] > st["c2s"] and st2["s2c"] > st["s2c"],
          f"the check did not cross the proxy: {st2}")
    last = st2["conns"][-1]
    check(last["peer"].startswith(a.ip + ":") and last["c2s"] > 0 and last["s2c"] > 0,
          f"the last connection: {last}")
    return (f"pairing {st['c2s']}/{st['s2c']} B up/down; check "
            f"{st2['c2s'] - st['c2s']}/{st2['s2c'] - st['s2c']} B")


def case_cut(env):
    p = env.proxy
    if not shutil.which("curl"):
        raise Skip("curl missing")
    # without a cut: hb answers (the body is not a join, a 4xx)
    rc, code, secs = upload(env, rate="10M")
    check(rc == 0 and 400 <= code < 500, f"upload without a cut: curl exit {rc}, HTTP {code}")
    # cut_now in flight
    res = {}
    before = p.stats()
    t = threading.Thread(target=lambda: res.update(r=upload(env)))
    t.start()
    try:
        wait_for(lambda: p.stats()["c2s"] - before["c2s"] > 100_000, 20, "the upload moving")
        n = p.cut_now()
    finally:
        t.join(70)
    rc, code, secs = res["r"]
    sent = p.stats()["c2s"] - before["c2s"]
    check(n >= 1, f"cut_now reset {n} connections")
    check(rc != 0 and code == 0, f"upload after cut_now: curl exit {rc}, HTTP {code}")
    check(sent < BODY, f"{sent} bytes went up, the whole body is {BODY}")
    check(secs < 6, f"the cut upload took {secs:.1f}s (not cut at once?)")
    # cut_after: exactly N more bytes go up
    want = 300_000
    before = p.stats()
    check(p.cut_after(want) == want, "cut_after's answer")
    rc2, code2, _ = upload(env, rate="1M")
    st = p.stats()
    check(rc2 != 0 and code2 == 0, f"upload with cut_after: curl exit {rc2}, HTTP {code2}")
    check(st["c2s"] - before["c2s"] == want and st["armed"] is None and
          st["cuts"] == before["cuts"] + 1,
          f"cut_after({want}): {st['c2s'] - before['c2s']} bytes up, armed {st['armed']}, "
          f"cuts {before['cuts']} -> {st['cuts']}")
    check(st["conns"][-1]["end"] == "cut", f"the last connection: {st['conns'][-1]}")
    # a cut_after that is disarmed never fires
    p.cut_after(10_000)
    check(p.disarm() == 10_000 and p.stats()["armed"] is None, "disarm")
    # the link works again for the next call
    rc3, out = peer_check(env)
    check(rc3 == 0, f"peer show --check after the cuts: exit {rc3}: {out}")
    return f"cut_now after {sent} B (curl exit {rc}); cut_after({want}) exact (curl exit {rc2})"


def case_refuse(env):
    p = env.proxy
    before = p.stats()
    check(p.refuse(True) is True, "refuse(True)'s answer")
    try:
        t0 = time.monotonic()
        rc, out = peer_check(env)
        secs = time.monotonic() - t0
        st = p.stats()
        check(rc != 0, f"peer show --check while refusing: exit {rc}: {out}")
        check(st["refused"] > before["refused"], f"no connection refused: {st}")
        check(st["c2s"] == before["c2s"], "bytes went through while refusing")
    finally:
        p.refuse(False)
    rc, out2 = peer_check(env)
    check(rc == 0, f"peer show --check after refuse(False): exit {rc}: {out2}")
    return f"refused in {secs:.1f}s ({out.splitlines()[-1] if out else ''})"


def case_stop(env):
    p = env.proxy
    p.stop()
    check(p.proc.poll() is not None, "the proxy process is still running")
    rc, out = peer_check(env)
    check(rc != 0, f"peer show --check with the proxy stopped: exit {rc}: {out}")
    return out.splitlines()[-1] if out else None


CASES = [("pair", case_pair), ("cut", case_cut), ("refuse", case_refuse), ("stop", case_stop)]


def run():
    rep = h.Report()
    only = os.environ.get("PROXY_TEST_CASES", "")
    want = [c for c in CASES if not only or c[0] in only.split(",")]
    if only and "pair" not in only.split(","):
        want.insert(0, CASES[0])  # the others need the pairing
    why = None
    if not os.access(agent.godwitd(), os.X_OK):
        why = f"{agent.godwitd()} is not built (make)"
    else:
        try:
            hosts.require_netns()
        except Skip as e:
            why = str(e)
        if not why and "--listen" not in hosts.godwitd_options():
            why = "this godwitd has no --listen"
    if why:
        for c, _ in want:
            rep.skip(c, why)
        return rep.summary()
    done = set()
    try:
        with Rack(PREFIX, 2) as rack:
            env = Env(rack)
            try:
                for name, fn in want:
                    done.add(name)
                    ok = rep.case(name, fn, env, hint=f"logs: {h.log_dir('hosts')} "
                                                      f"(godwitd-{PREFIX}-h*.log)")
                    if name == "pair" and not ok:
                        for n2, _ in want[1:]:
                            done.add(n2)
                            rep.skip(n2, "the pairing through the proxy failed")
                        break
            finally:
                env.close()
    except Exception as e:  # the rack or the proxy failed
        for name, _ in want:
            if name not in done:
                rep.fail(name, f"rack: {e}")
    return rep.summary()


if __name__ == "__main__":
    h.main(run)
