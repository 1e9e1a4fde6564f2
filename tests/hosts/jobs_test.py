#!/usr/bin/env python3
"""godwitd's jobs: /1.0/jobs, `godwit job ...` and the event stream
(docs/godwitd.md, "Jobs").  No job kind exists in the daemon yet (the
migration module brings them), so jobs come from the store as a previous
daemon would have left them: the restart pick-up is the one engine path a
daemon runs here; the runner itself is tests/unit/test_jobs.c's.

Cases:
  api       an empty daemon: GET /1.0/jobs is {"jobs":[]} (and ?all=1), a bad
            all= is 400; unknown ids are 404, ids that are not positive
            integers 400 (show and cancel); a wrong method 405
  cli       `godwit job list` (text and --json), show/cancel/watch of an
            unknown job (exit 1, one line), bad ids and command lines (exit 2)
  events    GET /1.0/events?since=0&follow=0 ends with the stored events as
            JSON lines; a live tail (no since) answers and waits
  restart   jobs left in the store by a stopped daemon: a running one whose
            kind cannot resume it is failed "interrupted..." with
            a job-finished event; list (recent and --all), show with history,
            --json objects, cancel of a finished job (409, exit 1), watch of a
            done job (exit 0, summary; on a terminal too) and of a failed one
            (exit 1)

Environment: BUILD (build/release), JOBS_TEST_CASES (a subset).
Prints PASS/FAIL lines and `N passed, N failed, N skipped`.
"""
import json
import os
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness as h  # noqa: E402
from harness import check  # noqa: E402

from agent import Daemon, UnixHTTP, cli, godwit, godwitd, request  # noqa: E402


def stream(sock, path, timeout=5):
    """GET a streamed reply to its end: (status, [parsed JSON lines])."""
    c = UnixHTTP(sock, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        data = r.read().decode()
        return r.status, [json.loads(line) for line in data.splitlines() if line.strip()]
    finally:
        c.close()


def case_api(tmp):
    d = Daemon(os.path.join(tmp, "api"), "--name", "hosta")
    try:
        d.wait_socket()
        for path in ("/1.0/jobs", "/1.0/jobs?all=1", "/1.0/jobs?all=0"):
            st, body = d.api("GET", path)
            check(st == 200 and body == {"jobs": []}, f"GET {path}: {st} {body}")
        st, body = d.api("GET", "/1.0/jobs?all=yes")
        check(st == 400 and "all" in body["error"]["message"], f"all=yes: {st} {body}")
        st, body = d.api("GET", "/1.0/jobs/7")
        check(st == 404 and body["error"] == {"code": 404, "message": "no job 7"},
              f"GET job 7: {st} {body}")
        st, body = d.api("POST", "/1.0/jobs/7/cancel")
        check(st == 404 and "no job 7" in body["error"]["message"], f"cancel 7: {st} {body}")
        for bad in ("0", "-1", "abc", "1x", "+3", "01", "99999999999999999999", "1.5"):
            st, body = d.api("GET", f"/1.0/jobs/{bad}")
            check(st == 400 and "positive integer" in body["error"]["message"],
                  f"GET job {bad!r}: {st} {body}")
            st, body = d.api("POST", f"/1.0/jobs/{bad}/cancel")
            check(st == 400, f"cancel job {bad!r}: {st} {body}")
        st, body = d.api("DELETE", "/1.0/jobs/7")
        check(st == 405, f"DELETE job 7: {st} {body}")
        st, body = d.api("GET", "/1.0/jobs/7?progress=2")
        check(st == 400, f"progress=2: {st} {body}")
    finally:
        d.stop()


def case_cli(tmp):
    d = Daemon(os.path.join(tmp, "cli"), "--name", "hosta")
    try:
        d.wait_socket()
        rc, out, err = d.cli("job", "list")
        check(rc == 0 and out.startswith("no jobs") and not err, f"job list: {rc} {out!r} {err!r}")
        for args in (("--json", "job", "list"), ("job", "list", "--all", "--json")):
            rc, out, err = d.cli(*args)
            check(rc == 0 and json.loads(out) == [], f"{args}: {rc} {out!r} {err!r}")
        for sub in ("show", "cancel", "watch"):
            rc, out, err = d.cli("job", sub, "42")
            check(rc == 1 and err.strip() == "godwit: no job 42" and not out,
                  f"job {sub} 42: {rc} {out!r} {err!r}")
            rc, out, err = d.cli("job", sub, "4x")
            check(rc == 2 and "not a job ID" in err and "usage:" in err,
                  f"job {sub} 4x: {rc} {err!r}")
            rc, out, err = d.cli("job", sub)
            check(rc == 2 and "give its ID" in err, f"job {sub}: {rc} {err!r}")
        for args, want in ((("job",), "needs a subcommand"), (("job", "frob"), "unknown job"),
                           (("job", "list", "extra"), "unexpected argument"),
                           (("job", "list", "--bogus"), "unknown option"),
                           (("job", "show", "1", "2"), "one job ID")):
            rc, out, err = d.cli(*args)
            check(rc == 2 and want in err and len(err.strip().splitlines()) == 2,
                  f"{args}: {rc} {err!r}")
        rc, out, err = d.cli("job", "--help")
        check(rc == 0 and out.startswith("usage: godwit job"), f"job --help: {rc} {out!r}")
    finally:
        d.stop()
    rc, out, err = cli(d.sock, "job", "list")
    check(rc == 1 and err.startswith("godwit: ") and len(err.strip().splitlines()) == 1,
          f"job list with no daemon: {rc} {err!r}")


def case_events(tmp):
    d = Daemon(os.path.join(tmp, "ev"), "--name", "hosta")
    try:
        d.wait_socket()
        t0 = time.monotonic()
        st, lines = stream(d.sock, "/1.0/events?since=0&follow=0")
        check(st == 200 and isinstance(lines, list), f"events since=0 follow=0: {st} {lines}")
        check(time.monotonic() - t0 < 3, "follow=0 did not end at once")
        for ev in lines:
            check(set(ev) == {"id", "time", "type", "subject", "data"}, f"event fields: {ev}")
        st, lines = stream(d.sock, "/1.0/events?since=0&follow=0&subject=job/1")
        check(st == 200 and lines == [], f"no job events yet: {st} {lines}")
        st, body = request(d.sock, "GET", "/1.0/events?follow=2")
        check(st == 400, f"follow=2: {st} {body}")
        # a live tail answers with its headers and then waits for events
        c = UnixHTTP(d.sock, timeout=5)
        try:
            c.request("GET", "/1.0/events")
            r = c.getresponse()
            check(r.status == 200, f"live tail: {r.status}")
        finally:
            c.close()
    finally:
        d.stop()


def watch_tty(sock, job):
    """`godwit job watch JOB` with its stdout on a pseudo-terminal: (rc, output)."""
    import pty
    import subprocess
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([godwit(), "-H", "unix:" + sock, "job", "watch", job],
                             stdout=slave, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: the other side closed
                break
            if not data:
                break
            chunks.append(data)
        return p.wait(10), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)


def seed(db, now):
    """Jobs as a stopped daemon leaves them: 1 running, 2 done, 3 failed
    two days ago.  Events for job 2's history."""
    day = 24 * 3600 * 1000
    figures = {"status": "completed", "total-time": 4200, "downtime": 38,
               "ram": {"transferred": 536870912, "total": 536870912, "remaining": 0,
                       "mbps": 940.5, "dirty-pages-rate": 0, "dirty-sync-count": 3}}
    with sqlite3.connect(db) as c:
        cols = ("kind, direction, vm, peer, phase, status, started_by, created_ms, started_ms, "
                "ended_ms, options, figures, error")
        rows = [
            # a kind no module resumes (yet): live jobs are the migration module's
            ("cold", "out", "web1", "hostb", "transfer", "running", "uid 0 (root)", now - 9000,
             now - 8000, 0, '{"bandwidth":100}', None, None),
            ("live", "out", "web2", "hostb", "complete", "done", "uid 0 (root)", now - 7000,
             now - 6000, now - 1800, None, json.dumps(figures), None),
            ("cold", "in", "web3", "hostc", "precheck", "failed", "peer", now - 2 * day,
             now - 2 * day, now - 2 * day + 500, None, None, "disk full"),
        ]
        c.executemany(f"INSERT INTO jobs ({cols}) VALUES ({','.join('?' * 13)})", rows)
        evs = [(now - 7000, "job-created", "job/2", '{"kind":"live"}'),
               (now - 6000, "job-phase", "job/2", '{"phase":"transfer"}'),
               (now - 3000, "migration-progress", "job/2", json.dumps(figures)),
               (now - 1800, "job-finished", "job/2", '{"status":"done"}')]
        c.executemany("INSERT INTO events (time_ms, type, subject, data) VALUES (?,?,?,?)", evs)


def case_restart(tmp):
    state = os.path.join(tmp, "rs")
    d = Daemon(state, "--name", "hosta")
    d.wait_socket()
    d.stop()
    seed(os.path.join(state, "godwit.db"), int(time.time() * 1000))
    d = Daemon(state, "--name", "hosta")
    try:
        d.wait_socket()
        st, body = d.api("GET", "/1.0/jobs")
        check(st == 200, f"GET /1.0/jobs: {st} {body}")
        jobs = {j["id"]: j for j in body["jobs"]}
        check(sorted(jobs) == [1, 2], f"recent jobs: {sorted(jobs)}")
        j1 = jobs[1]
        # live/out is migrate.c's kind now: its resume words it its own way
        check(j1["status"] == "failed" and j1["error"].startswith("interrupted")
              and j1["ended"], f"job 1 after the restart: {j1}")
        check(j1["options"] == {"bandwidth": 100} and j1["figures"] == {}
              and j1["started_by"] == "uid 0 (root)" and j1["kind"] == "cold"
              and j1["direction"] == "out" and j1["vm"] == "web1" and j1["peer"] == "hostb",
              f"job 1 fields: {j1}")
        st, body = d.api("GET", "/1.0/jobs?all=1")
        check(st == 200 and [j["id"] for j in body["jobs"]] == [3, 2, 1],
              f"all=1, newest first: {st} {body}")
        st, j = d.api("GET", "/1.0/jobs/1")
        check(st == 200 and [e["type"] for e in j["history"]] == ["job-finished"],
              f"job 1 history: {j.get('history')}")
        st, j = d.api("GET", "/1.0/jobs/2")
        check(st == 200 and [e["type"] for e in j["history"]] ==
              ["job-created", "job-phase", "job-finished"], f"job 2 history: {j['history']}")
        st, j = d.api("GET", "/1.0/jobs/2?progress=1")
        check(st == 200 and len(j["history"]) == 4
              and j["history"][2]["data"]["ram"]["mbps"] == 940.5,
              f"job 2 history with progress: {j['history']}")
        st, lines = stream(d.sock, "/1.0/events?since=0&follow=0&subject=job/1")
        check(st == 200 and [e["type"] for e in lines] == ["job-finished"]
              and lines[0]["data"].get("status") == "failed", f"job/1 events: {lines}")
        st, body = d.api("POST", "/1.0/jobs/2/cancel")
        check(st == 409 and "done already" in body["error"]["message"], f"cancel 2: {st} {body}")

        rc, out, err = d.cli("job", "list")
        lines = out.splitlines()
        check(rc == 0 and lines[0].split() == ["ID", "KIND", "VM", "PEER", "PHASE", "STATUS",
                                               "STARTED"] and len(lines) == 3,
              f"job list: {rc} {out!r} {err!r}")
        check(lines[1].split()[:7] == ["2", "live", "out", "web2", "hostb", "complete", "done"],
              f"job list row: {lines[1]!r}")
        rc, out, err = d.cli("job", "list", "--all")
        check(rc == 0 and len(out.splitlines()) == 4 and "disk" not in out,
              f"job list --all: {rc} {out!r}")
        rc, out, err = d.cli("--json", "job", "list", "--all")
        check(rc == 0 and [j["id"] for j in json.loads(out)] == [3, 2, 1], f"--json list: {out}")
        rc, out, err = d.cli("job", "show", "3")
        check(rc == 0 and "error:       disk full" in out and "status:      failed" in out
              and "started by:  peer" in out, f"job show 3: {rc} {out!r} {err!r}")
        rc, out, err = d.cli("job", "show", "2")
        check(rc == 0 and "ram:         512 MiB of 512 MiB sent" in out and "history:" in out
              and "job-finished" in out and "downtime:    38 ms" in out,
              f"job show 2: {rc} {out!r} {err!r}")
        rc, out, err = d.cli("job", "show", "2", "--json")
        o = json.loads(out) if rc == 0 else {}
        check(rc == 0 and {"id", "kind", "direction", "vm", "peer", "phase", "status",
                           "started_by", "created", "started", "ended", "options", "figures",
                           "error", "history"} <= set(o) and o["figures"]["downtime"] == 38,
              f"job show --json: {rc} {out!r}")
        rc, out, err = d.cli("job", "cancel", "2")
        check(rc == 1 and "done already" in err and len(err.strip().splitlines()) == 1,
              f"job cancel 2: {rc} {err!r}")
        rc, out, err = d.cli("job", "watch", "2")
        check(rc == 0 and out.startswith("job 2: complete, done") and "job 2 done after" in out
              and "512 MiB sent" in out and "downtime 38 ms" in out,
              f"job watch 2: {rc} {out!r} {err!r}")
        rc, out, err = d.cli("job", "watch", "1")
        check(rc == 1 and "job 1 failed after" in err and "interrupted" in err,
              f"job watch 1: {rc} {out!r} {err!r}")
        rc, out = watch_tty(d.sock, "2")
        check(rc == 0 and "\r\x1b[K" in out and "job 2 done after" in out
              and "complete" in out, f"job watch 2 on a terminal: {rc} {out!r}")
        rc, out, err = d.cli("--json", "job", "watch", "1")
        check(rc == 1 and json.loads(out)["status"] == "failed", f"watch --json: {rc} {out!r}")
    finally:
        d.stop()


CASES = [("api", case_api), ("cli", case_cli), ("events", case_events),
         ("restart", case_restart)]


def run():
    rep = h.Report()
    cases = h.selected(CASES, os.environ.get("JOBS_TEST_CASES", ""))
    if not os.access(godwitd(), os.X_OK) or not os.access(godwit(), os.X_OK):
        for name, _ in cases:
            rep.skip(name, "godwitd or godwit is not built (make)")
        return rep.summary()
    with tempfile.TemporaryDirectory(prefix="godwit-jobs-") as tmp:
        for name, fn in cases:
            rep.case(name, fn, tmp)
    return rep.summary()


if __name__ == "__main__":
    h.main(run)
