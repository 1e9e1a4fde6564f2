#!/usr/bin/env python3
"""Live migrations held mid pre-copy (issue 13, docs/holds.md "A live
migration on hold"): two hosts in network namespaces (tests/lib/hosts.py),
ha -> hb, the page oracle guest (mig_pagepass.elf, 64M: it rewrites every
page of its RAM pass after pass and checks what the previous pass wrote),
moved with `godwit migrate --live --detach` as an operator would.

Cases:
  hold       `godwit job hold` once 8 MiB went: the stream pauses
             (x-godwit-precopy-paused in the figures, `job show` says
             "pre-copy paused"), the VM runs on ha, nothing more is sent for
             ~10 s; `job release`: the job completes, the guest goes on on hb
             (new pass lines, no FAIL), x-godwit-recoveries >= 1.  The bound,
             against the same migration unheld (run first, same options):
             bytes sent after the release <= 1.05 x (what the unheld one
             sent after the point where the held one paused + the pages the
             guest dirtied during the hold x 4 KiB), and x-godwit-resent <=
             4 MiB (at most what followed the last checkpoint).  The pages
             dirtied during the hold: the guest's page rate (its pass lines)
             times the hold, at most its area; the oracle rewrites its whole
             area every ~50 ms, so that is all of it, and pre-copy sends that
             whole area again each round anyway.  A cancel and restart would
             send everything sent before the pause once more.
  link       ha's link to the rack down mid pre-copy: a technical hold in
             `job show --json` holds[] ("link to hb lost"), the VM runs on
             ha; the link back: the job continues and completes, the hold
             lifted by the job, x-godwit-recoveries >= 1, the guest intact.
  window     --window FROM/TO opening ~12 s ahead: the job transfers at once,
             converges and waits held-converged (status held, a window hold
             "held-converged: destination kept in sync"), the VM on ha; it
             switches over only once the window opened, with a downtime
             within --downtime-limit.
  restart    ha's godwitd SIGKILLed while its job is held and paused, started
             again: the job is still held (the stream still paused, the VM on
             ha); released, it completes.
  cancel     `job cancel` while held: cancelled, the VM runs on ha, hb forgets
             its half-received copy.

Needs root and iproute2 (SKIP otherwise), godwit-vm with pre-copy holds (the
capability x-godwit-precopy-recover; SKIP without), the bare-metal guests.
Environment: LIVE_HOLD_CASES (a comma-separated subset).  Prints
PASS/FAIL/SKIP lines and `N passed, N failed, N skipped`.  About 2-3 min.
"""
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
from harness import Skip, check  # noqa: E402

import agent  # noqa: E402
import hosts  # noqa: E402
import migrate_test as mt  # noqa: E402  (the live tests' helpers)
from hosts import Rack  # noqa: E402

PREFIX = "gwlh"
MiB = 1 << 20
PAGE = 4096
PAUSED = "x-godwit-precopy-paused"
CONVERGED = "x-godwit-held-converged"
AREA_RE = re.compile(r"mig_pagepass: area \S+ \((\d+) pages")
PASS_T_RE = re.compile(r"^pass (\d+) t=(\d+)\r?$", re.M)
MTIME_HZ = 10_000_000


# ---- helpers -----------------------------------------------------------------------------


def figures(host, jid):
    return mt.job(host, jid).get("figures") or {}


def ram(f):
    return f.get("ram") or {}


def stream(host, jid):
    return figures(host, jid).get("status")


def active_holds(j, type_=None):
    return [x for x in j.get("holds") or [] if x.get("lifted") is None and
            (type_ is None or x.get("type") == type_)]


def start_vm(a, name):
    mt.bare(a, name, memory="64M")
    mt.wait_for(lambda: len(mt.passes(mt.console(a, name))) >= 2, 60, f"{a.name}: pass lines")


def page_rate(host, name):
    """The guest's pages rewritten per second and its area in pages, from
    its console (the area line, the mtime of its pass lines)."""
    text = mt.console(host, name)
    m = AREA_RE.search(text)
    check(m, f"{name}: no area line on {host.name}'s console")
    npages = int(m.group(1))
    ts = [(int(a), int(b)) for a, b in PASS_T_RE.findall(text)]
    check(len(ts) >= 2, f"{name}: fewer than two pass lines")
    (p0, t0), (p1, t1) = ts[-2], ts[-1]
    secs = (t1 - t0) / MTIME_HZ / max(1, p1 - p0)
    return (npages / secs if secs > 0 else float("inf")), npages


def hold(host, jid, reason="live hold test"):
    rc, out, err = host.cli("job", "hold", str(jid), "--reason", reason)
    check(rc == 0, f"{host.name}: job hold {jid}: exit {rc}: {err.strip()}")


def release(host, jid):
    rc, out, err = host.cli("job", "release", str(jid))
    check(rc == 0, f"{host.name}: job release {jid}: exit {rc}: {err.strip()}")


def wait_paused(host, jid, timeout=30):
    return mt.wait_for(lambda: (lambda f: f if f.get("status") == PAUSED else None)(
        figures(host, jid)), timeout, f"{host.name}: job {jid}'s stream paused", step=0.1)


def check_guest_on(dst, name, what):
    """The guest runs on dst and its oracle still passes."""
    mt.only_on(dst.rack, name, dst)
    before = max(mt.passes(mt.console(dst, name)) or [0])
    text = mt.wait_for(lambda: (lambda t: t if max(mt.passes(t) or [0]) >= before + 2 else None)(
        mt.console(dst, name)), 60, f"{what}: new pass lines on {dst.name}")
    mt.check_no_fail(dst, name, text)


def check_done(a, b, jid, what):
    j = mt.wait_final(a, jid, 120)
    check(j["status"] == "done", f"{what}: job {jid}: {j['status']} {j.get('error')}")
    mt.check_jobs_done(a, b, jid)
    return j


def cleanup(rack, name):
    for x in rack.hosts:
        if not x.daemon or x.daemon.proc.poll() is not None:
            continue
        rc, out, _ = x.cli("--json", "job", "list")
        if rc == 0:
            for j in json.loads(out):
                if j.get("vm") == name and j.get("status") in ("running", "held"):
                    x.cli("job", "cancel", str(j["id"]), timeout=30)
                    try:
                        mt.wait_final(x, j["id"], 60)
                    except AssertionError:
                        pass
    mt.remove_everywhere(rack, name)


# ---- cases --------------------------------------------------------------------------------


def case_hold(rack):
    a, b = rack.hosts
    name = "lhh"
    opts = ("--bandwidth", "200", "--downtime-limit", "60000")
    try:
        # the baseline: the same migration without a hold
        start_vm(a, name)
        jid = mt.detach_migrate(a, name, b, *opts)
        j = check_done(a, b, jid, "unheld")
        unheld = ram(j.get("figures") or {}).get("transferred", 0)
        cleanup(rack, name)
        start_vm(a, name)
        jid = mt.detach_migrate(a, name, b, *opts)
        mt.wait_transfer(a, jid, 8 * MiB)
        hold(a, jid)
        f = f_pause = wait_paused(a, jid)
        t_pause = time.monotonic()
        sent_pause, left_pause = ram(f).get("transferred", 0), ram(f).get("remaining", 0)
        j = mt.job_show(a, jid)
        check(j["status"] == "held" and active_holds(j, "manual"), f"job {jid}: {j['status']}")
        rc, out, err = a.cli("job", "show", str(jid))
        check(rc == 0 and "pre-copy paused" in out, f"job show says {out!r}")
        rc, out, err = a.cli("job", "list")
        check(rc == 0 and "held (pre-copy paused)" in out, f"job list says {out!r}")
        mt.check_runs_here(a, name, "held")
        check(mt.vm_states(b).get(name) == "incoming", f"{b.name}: {mt.vm_states(b)}")
        time.sleep(max(0.0, 10 - (time.monotonic() - t_pause)))
        f = figures(a, jid)
        sent_release = ram(f).get("transferred", 0)
        check(f.get("status") == PAUSED and sent_release - sent_pause <= 2 * MiB,
              f"while held: {f.get('status')}, {sent_release - sent_pause} bytes more")
        held_s = time.monotonic() - t_pause
        release(a, jid)
        t_release = time.monotonic()
        j = check_done(a, b, jid, "after the release")
        t_end = time.monotonic()
        f = j.get("figures") or {}
        total = ram(f).get("transferred", 0)
        after = total - sent_release
        rate, npages = page_rate(b, name)
        dirtied = min(npages, rate * held_s)
        bound = 1.05 * (max(0, unheld - sent_pause) + dirtied * PAGE)
        resent = f.get("x-godwit-resent", 0)
        check(f.get("x-godwit-recoveries", 0) >= 1, f"recoveries {f.get('x-godwit-recoveries')}")
        check(after <= bound, f"{after >> 20} MiB sent after the release, bound {bound / MiB:.0f} "
                              f"MiB (unheld {unheld >> 20} MiB in all, {dirtied:.0f} pages "
                              f"dirtied; at the pause {json.dumps(f_pause)}; at the end "
                              f"{json.dumps(f)})")
        check(resent <= 4 * MiB, f"x-godwit-resent {resent}")
        check_guest_on(b, name, "hold")
        return (f"{sent_pause >> 20} MiB before the hold, {after >> 20} MiB after the release "
                f"(bound {bound / MiB:.0f} MiB); {total >> 20} MiB in all, unheld "
                f"{unheld >> 20} MiB; resent {resent} B; done {t_end - t_release:.1f}s after "
                f"the release ({left_pause >> 20} MiB left at the pause)")
    finally:
        cleanup(rack, name)


def case_link(rack):
    a, b = rack.hosts
    name = "lhl"
    port = f"h{a.index}"
    down = False
    try:
        start_vm(a, name)
        jid = mt.detach_migrate(a, name, b, "--bandwidth", "80", "--downtime-limit", "60000")
        mt.wait_transfer(a, jid, 8 * MiB)
        hosts.sh("ip", "-n", rack.rack_ns, "link", "set", port, "down")
        down = True
        t0 = time.monotonic()
        j = mt.wait_for(lambda: (lambda j: j if active_holds(j, "technical") else None)(
            mt.job_show(a, jid)), 40, f"{a.name}: job {jid}: a technical hold", step=0.25)
        took = time.monotonic() - t0
        reason = active_holds(j, "technical")[0]["reason"]
        check("link to hb lost" in reason, f"technical hold: {reason!r}")
        check(j["status"] == "held", f"job {jid}: {j['status']}")
        check(mt.vm_states(a).get(name) == "running", f"{a.name}: {mt.vm_states(a)}")
        time.sleep(3)
        hosts.sh("ip", "-n", rack.rack_ns, "link", "set", port, "up")
        down = False
        j = check_done(a, b, jid, "after the link came back")
        f = j.get("figures") or {}
        check(f.get("x-godwit-recoveries", 0) >= 1, f"recoveries {f.get('x-godwit-recoveries')}")
        t = [x for x in mt.job_show(a, jid)["holds"] if x["type"] == "technical"]
        check(t and all(x.get("lifted") for x in t), f"technical holds {t}")
        check_guest_on(b, name, "link")
        return (f"held {took:.1f}s after the cut: {reason[:80]}...; "
                f"{f.get('x-godwit-recoveries')} recoveries")
    finally:
        if down:
            hosts.sh("ip", "-n", rack.rack_ns, "link", "set", port, "up", check_rc=False)
        cleanup(rack, name)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def case_window(rack):
    a, b = rack.hosts
    name = "lhw"
    limit = 5000
    try:
        start_vm(a, name)
        opens = time.time() + 12
        jid = mt.detach_migrate(a, name, b, "--bandwidth", "200", "--downtime-limit", str(limit),
                                "--window", f"{iso(opens)}/{iso(opens + 600)}")

        def converged():
            j = mt.job_show(a, jid)
            w = active_holds(j, "window")
            return j if (j.get("figures") or {}).get("status") == CONVERGED and w else None
        j = mt.wait_for(converged, 30, f"{a.name}: job {jid} held-converged", step=0.2)
        check(time.time() < opens, "it converged only after the window opened: no wait seen")
        check(j["status"] == "held", f"job {jid}: {j['status']}")
        r = active_holds(j, "window")[0]["reason"]
        check("held-converged: destination kept in sync" in r and "opens" in r, f"reason {r!r}")
        rc, out, err = a.cli("job", "list")
        check(rc == 0 and "held-converged" in out, f"job list says {out!r}")
        mt.check_runs_here(a, name, "held-converged")
        sent0 = ram(figures(a, jid)).get("transferred", 0)
        time.sleep(2)
        sent1 = ram(figures(a, jid)).get("transferred", 0)
        check(time.time() < opens, "too slow: the window opened meanwhile")
        check(sent1 > sent0, "held-converged sends nothing: the destination is not kept in sync")
        j = check_done(a, b, jid, "window")
        f = j.get("figures") or {}
        down = f.get("downtime")
        check(j.get("ended", 0) / 1000 >= opens - 1, "it switched over before the window opened")
        check(isinstance(down, int) and down <= limit, f"downtime {down} ms, limit {limit} ms")
        w = [x for x in j["holds"] if x["type"] == "window"]
        check(w and w[0]["lifted"] and "window opened" in w[0]["lifted"]["by"], f"{w}")
        check_guest_on(b, name, "window")
        return (f"kept in sync at {(sent1 - sent0) / 2 / MiB:.1f} MiB/s; downtime {down} ms "
                f"(limit {limit})")
    finally:
        cleanup(rack, name)


def case_restart(rack):
    a, b = rack.hosts
    name = "lhr"
    try:
        start_vm(a, name)
        jid = mt.detach_migrate(a, name, b, "--bandwidth", "80", "--downtime-limit", "60000")
        mt.wait_transfer(a, jid, 8 * MiB)
        hold(a, jid)
        wait_paused(a, jid)
        a.daemon.proc.kill()
        a.daemon.proc.wait(30)
        time.sleep(1)
        a.start_daemon()
        time.sleep(2)  # the restarted daemon follows the stream again
        j = mt.job_show(a, jid)
        check(j["status"] == "held" and active_holds(j, "manual"),
              f"after the restart: job {jid}: {j['status']} {j.get('error')}")
        check(stream(a, jid) == PAUSED, f"after the restart: stream {stream(a, jid)}")
        mt.check_runs_here(a, name, "held, after the restart")
        release(a, jid)
        j = check_done(a, b, jid, "released after the restart")
        check_guest_on(b, name, "restart")
        return f"{(j.get('figures') or {}).get('x-godwit-recoveries')} recoveries"
    finally:
        if a.daemon.proc.poll() is not None:
            a.start_daemon()
        cleanup(rack, name)


def case_cancel(rack):
    a, b = rack.hosts
    name = "lhc"
    try:
        start_vm(a, name)
        jid = mt.detach_migrate(a, name, b, "--bandwidth", "80", "--downtime-limit", "60000")
        _, did = mt.wait_transfer(a, jid, 8 * MiB)
        hold(a, jid)
        wait_paused(a, jid)
        rc, out, err = a.cli("job", "cancel", str(jid))
        check(rc == 0, f"job cancel {jid}: exit {rc}: {err.strip()}")
        j = mt.wait_final(a, jid, 30)
        check(j["status"] == "cancelled", f"job {jid}: {j['status']} {j.get('error')}")
        mt.check_runs_here(a, name, "cancelled while held")
        mt.check_forgotten(b, name, 30)
        dj = mt.wait_final(b, did, 15)
        check(dj["status"] in ("failed", "cancelled"), f"{b.name}: job {did}: {dj['status']}")
        mt.only_on(rack, name, a)
        text = mt.console(a, name)
        mt.check_no_fail(a, name, text)
        return f"{j.get('error')}; {b.name}: {dj.get('error')}"
    finally:
        cleanup(rack, name)


CASES = [
    ("hold", case_hold),
    ("link", case_link),
    ("window", case_window),
    ("restart", case_restart),
    ("cancel", case_cancel),
]


def vm_can_hold():
    """godwit-vm knows the capability x-godwit-precopy-recover."""
    try:
        r = subprocess.run(["grep", "-c", "x-godwit-precopy-recover", h.godwit_vm()],
                           capture_output=True, text=True, timeout=10)
        return r.returncode == 0
    except OSError:
        return False


def run():
    rep = h.Report()
    only = os.environ.get("LIVE_HOLD_CASES", "")
    want = [c for c in CASES if not only or c[0] in only.split(",")]
    why = None
    if not os.access(agent.godwitd(), os.X_OK) or not os.access(h.godwit_vm(), os.X_OK):
        why = f"{agent.godwitd()} or {h.godwit_vm()} is not built (make)"
    elif not os.path.exists(mt.PAGEPASS):
        why = f"the bare-metal guests are not built ({mt.GUEST})"
    elif not vm_can_hold():
        why = "this godwit-vm cannot pause pre-copy (no x-godwit-precopy-recover)"
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
            a, b = rack.hosts
            rc, out, err = b.cli("peer", "token", "--address", b.listen)
            check(rc == 0 and out.strip(), f"{b.name}: peer token: exit {rc}: {err.strip()}")
            rc, out, err = a.cli("peer", "add", b.name, out.split()[-1], timeout=60)
            check(rc == 0, f"{a.name}: peer add {b.name}: exit {rc}: {(out + err).strip()}")
            for name, fn in want:
                done.add(name)
                rep.case(name, fn, rack, hint=f"logs: {h.log_dir('hosts')} "
                                              f"(godwitd-{PREFIX}-h*.log)")
    except Exception as e:  # the rack or the pairing failed
        for name, _ in want:
            if name not in done:
                rep.fail(name, f"rack: {e}")
    return rep.summary()


if __name__ == "__main__":
    h.main(run)
