#!/usr/bin/env python3
"""Throttling a guest that pre-copy cannot keep up with (issue 16):
godwit-vm's capabilities auto-converge and dirty-limit, their parameters
(QEMU's names and checks) and query-migrate's figures, between two
godwit-vm processes on this host (unix sockets).  docs/state.md,
"Throttling".

Guests (-smp 2, -m 64M): tests/guest/mig_throttle (hart 0 writes one word
in each page of a 24 MiB area, round robin, as fast as it can; hart 1
counts in a loop that writes no memory) and mig_throttle_spin (the same,
hart 0 spinning 4000 iterations after each page, so its dirty rate is
bound by the CPU time it gets).  Every 100 ms of mtime hart 0 prints
`thr t=MTIME w=PAGES h1t=MTIME1 h1=COUNT`; rates below are per second of
mtime, taken from those lines over a window, hart 1's by its own clock.
"Baseline" rates are measured over BASE_SECONDS before any migration.
x-godwit-hold-switchover keeps a migration in rounds so a throttle can be
watched for as long as a case needs; lifting it lets it complete.

  dirty-limit     capability dirty-limit, vcpu-dirty-limit LIMIT (4) MB/s,
                  max-bandwidth 32 MiB/s, held: query-migrate shows the
                  dirty-limit figures within 20 s (the rule fired), and the
                  migration converges (x-godwit-held-converged) within 30 s
                  more; over WINDOW seconds then hart 0 dirties between 0.5
                  and 1.5 x LIMIT (its writes, counted by the guest, and the
                  engine's per-hart dirty-rate alike: hart 1's below a
                  tenth of it), and at most a fifth of its baseline,
                  while hart
                  1's count rate is at least 0.85 x its baseline (it may
                  be higher: hart 0 no longer takes its turn on the loop's
                  thread); x-godwit-dirty-limit's per-hart figures say hart
                  0 is held back and hart 1 is not.  Then vcpu-dirty-limit
                  2 x LIMIT while it runs: hart 0's rate follows (between
                  0.5 and 1.5 x the new limit).  Then the hold is lifted:
                  completed; the destination runs at full speed (both
                  harts at least half their baseline: the machine is
                  shared).
  auto-converge   mig_throttle_spin, max-bandwidth 16 MiB/s, held.
                  First without the capability: for NOCONV_SECONDS (6) the
                  migration never converges (status stays active, never
                  x-godwit-held-converged) and query-migrate has no
                  cpu-throttle-percentage.  Cancelled; then with
                  auto-converge, cpu-throttle-initial 60, increment 20:
                  cpu-throttle-percentage is seen at 60, then 80, then 99
                  (max-cpu-throttle's 99 caps 100); the migration converges
                  (x-godwit-held-converged) within 40 s; at 99 % both harts
                  run at most a tenth of their baseline.  Then the hold is
                  lifted: completed.
  lifted          mig_throttle with dirty-limit and with auto-converge
                  (initial 99), held: once the throttle shows (and held
                  hart 0 back / slowed both harts to a tenth or less),
                  migrate_cancel; over the next WINDOW seconds both harts
                  run at least 0.5 x baseline (the machine is shared) and,
                  auto-converge, 5 x what they ran throttled, and
                  query-migrate shows no throttle.  The same with dirty-limit and
                  x-godwit-precopy-recover, migrate-pause instead (status
                  x-godwit-precopy-paused; then cancelled).  Completion lifts it on the destination by
                  construction (the throttle is the source's; checked in the
                  cases above).
  refusals        auto-converge and dirty-limit together (in one call, or
                  one after the other) refused with QEMU 8.1's message;
                  cpu-throttle-initial 0 and 100, cpu-throttle-increment 0,
                  max-cpu-throttle 100, x-vcpu-dirty-limit-period 0 and
                  1001, vcpu-dirty-limit 0, cpu-throttle-tailslow "yes"
                  refused with QEMU's message, and nothing changed (query-
                  migrate-parameters); good values are taken and shown;
                  capabilities cannot change while a migration runs.

Prints `PASS name` / `FAIL name: why` and `N passed, N failed, N skipped`.
Environment: BUILD, THROTTLE_TEST_CASES.
"""

import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import harness as h  # noqa: E402
import migration as mig  # noqa: E402
from harness import ROOT, check  # noqa: E402
from migration import MigVM  # noqa: E402
from migstream import wait_listening  # noqa: E402

GUEST = os.path.join(ROOT, "build", "guest", "mig_throttle.elf")
GUEST_SPIN = os.path.join(ROOT, "build", "guest", "mig_throttle_spin.elf")
THR_RE = re.compile(r"^thr t=(\d+) w=(\d+) h1t=(\d+) h1=(\d+)\n", re.M)
MTIME_HZ = 10_000_000
LIMIT = 4  # MB/s (QEMU's MB: MiB)
BASE_SECONDS = 1.5
WINDOW = 2.0
NOCONV_SECONDS = 6.0
HOLD = "x-godwit-hold-switchover"
PAGE = 4096


def args(elf):
    return [*mig.baremetal_args(elf, "64M"), "-smp", "2"]


def lines(vm):
    return [tuple(int(x) for x in m) for m in THR_RE.findall(vm.output())]


def last_t(vm):
    xs = lines(vm)
    return xs[-1][0] if xs else 0


def rates(vm, since):
    """(hart 0 pages/s, hart 1 counts/s) over the lines from mtime since on."""
    xs = [x for x in lines(vm) if x[0] >= since and x[2] > 0]
    check(len(xs) >= 3, f"{vm.name}: {len(xs)} progress lines since t={since}: "
                        f"{vm.output()[-300:]!r}")
    a, b = xs[0], xs[-1]
    check(b[0] > a[0] and b[2] > a[2], f"{vm.name}: clocks did not move: {a} {b}")
    return ((b[1] - a[1]) * MTIME_HZ / (b[0] - a[0]), (b[3] - a[3]) * MTIME_HZ / (b[2] - a[2]))


def wait_progress(vm, seconds, timeout=30.0):
    """Wait until the guest printed `seconds` of mtime with hart 1 running."""
    deadline = time.monotonic() + timeout
    while True:
        xs = [x for x in lines(vm) if x[2] > 0]
        if len(xs) >= 2 and xs[-1][0] - xs[0][0] >= seconds * MTIME_HZ:
            return
        check(vm.proc.poll() is None, f"{vm.name}: exited: {vm.stderr()[-300:]}")
        check(time.monotonic() < deadline, f"{vm.name}: no progress: {vm.output()[-300:]!r}")
        time.sleep(0.1)


def measure(vm, seconds):
    """Rates over the next `seconds` of mtime."""
    t0 = last_t(vm)
    deadline = time.monotonic() + seconds * 5 + 10
    while last_t(vm) < t0 + seconds * MTIME_HZ:
        check(vm.proc.poll() is None, f"{vm.name}: exited: {vm.stderr()[-300:]}")
        check(time.monotonic() < deadline, f"{vm.name}: guest too slow to measure: "
                                           f"{vm.output()[-200:]!r}")
        time.sleep(0.1)
    return rates(vm, t0)


def query(vm):
    return vm.cmd("query-migrate")


def wait_for(vm, pred, what, timeout):
    t0 = time.monotonic()
    while True:
        i = query(vm)
        if pred(i):
            return i
        check(i.get("status") not in mig.FINAL, f"{vm.name}: migration {i.get('status')} "
                                                f"while waiting for {what}: {i}")
        check(time.monotonic() - t0 < timeout, f"{vm.name}: no {what} after {timeout}s: {i}")
        time.sleep(0.05)


def caps(vm, **c):
    vm.cmd("migrate-set-capabilities",
           capabilities=[{"capability": k.replace("_", "-"), "state": v} for k, v in c.items()])


def params(vm, **p):
    vm.cmd("migrate-set-parameters", **{k.replace("_", "-"): v for k, v in p.items()})


def refused(vm, cmd, want, **a):
    try:
        vm.cmd(cmd, **a)
    except h.QMPError as e:
        check(want in str(e), f"{cmd} {a}: refused with {e!r}, want {want!r}")
        return
    check(False, f"{cmd} {a} was accepted")


def dest(ctx, vms, name, elf):
    uri = ctx.endpoint("unix")
    d = MigVM(ctx, name, args(elf), incoming=uri)
    vms.append(d)
    wait_listening(d, uri)
    return d, uri


def finish(ctx, src, dst, base):
    """Lift the hold: completed; the destination runs at full speed."""
    params(src, **{HOLD.replace("-", "_"): False})
    t0 = time.monotonic()
    while True:
        i = query(src)
        if i.get("status") in mig.FINAL:
            break
        check(time.monotonic() - t0 < 60, f"{src.name}: still {i.get('status')} 60 s after "
                                          f"the hold was lifted")
        time.sleep(0.05)
    check(i["status"] == "completed", f"{src.name}: migration {i['status']}: {i}")
    check("cpu-throttle-percentage" not in i and "dirty-limit-throttle-time-per-round" not in i,
          f"throttle figures after completion: {i}")
    dst.wait_status(("running",), 10)
    wait_progress(dst, 0.3)
    w, c = measure(dst, 1.0)
    check(w >= 0.5 * base[0] and c >= 0.5 * base[1],
          f"{dst.name}: after completion hart 0 {w:.0f} pages/s, hart 1 {c:.0f}/s; "
          f"baseline {base[0]:.0f}, {base[1]:.0f}")
    return w, c


def with_vms(body):
    vms = []
    try:
        return body(vms)
    finally:
        for v in vms:
            v.kill()


def case_dirty_limit(ctx):
    def body(vms):
        src = MigVM(ctx, "dl", args(GUEST))
        vms.append(src)
        wait_progress(src, 0.3)
        base = measure(src, BASE_SECONDS)
        dst, uri = dest(ctx, vms, "dl-dst", GUEST)
        caps(src, dirty_limit=True)
        params(src, vcpu_dirty_limit=LIMIT, max_bandwidth=32 << 20,
               **{HOLD.replace("-", "_"): True})
        src.cmd("migrate", uri=uri)
        i = wait_for(src, lambda i: "dirty-limit-throttle-time-per-round" in i,
                     "dirty-limit figures", 20)
        for k in ("dirty-limit-ring-full-time", "x-godwit-dirty-limit"):
            check(k in i, f"query-migrate has {k!r} missing: {i}")
        check(i["x-godwit-dirty-limit"]["vcpu-dirty-limit"] == LIMIT, f"{i}")
        # Only pages that were clean count (docs/state.md, "Throttling"): until
        # the next sync, hart 0 may rewrite what it already dirtied for free.
        # Once the limit made pre-copy converge, syncs come every 100 ms and
        # hart 0 never catches up with its own dirty pages: its whole write
        # rate is what the limit lets through.
        wait_for(src, lambda i: i.get("status") == "x-godwit-held-converged", "convergence", 30)
        time.sleep(0.5)
        w, c = measure(src, WINDOW)
        lim_pages = LIMIT * (1 << 20) / PAGE
        print(f"  dirty-limit {LIMIT} MB/s: hart 0 {w * PAGE / (1 << 20):.2f} MiB/s "
              f"(baseline {base[0] * PAGE / (1 << 20):.0f}), hart 1 {c / 1e6:.1f} M/s "
              f"(baseline {base[1] / 1e6:.1f}, x{c / base[1]:.2f})", flush=True)
        check(0.5 * lim_pages <= w <= 1.5 * lim_pages,
              f"hart 0 dirtied {w:.0f} pages/s under a {lim_pages:.0f} pages/s limit")
        check(w <= base[0] / 5, f"hart 0 {w:.0f} pages/s, baseline {base[0]:.0f}")
        check(c >= 0.85 * base[1], f"hart 1 slowed: {c:.0f}/s, baseline {base[1]:.0f}/s")
        i = query(src)
        harts = i["x-godwit-dirty-limit"]["harts"]
        check(len(harts) == 2, f"x-godwit-dirty-limit harts: {harts}")
        check(harts[0]["throttle-time-total-ms"] > 0 and harts[1]["throttle-time-total-ms"] == 0,
              f"per-hart throttle times: {harts}")
        check(i["dirty-limit-throttle-time-per-round"] > 0, f"{i}")
        # the engine's own count agrees with the guest
        check(0.5 * LIMIT <= harts[0]["dirty-rate"] <= 1.5 * LIMIT and
              harts[1]["dirty-rate"] < 0.1 * LIMIT, f"per-hart dirty rates (MiB/s): {harts}")
        # a new limit while it runs takes effect
        params(src, vcpu_dirty_limit=2 * LIMIT)
        time.sleep(0.3)
        w2, _ = measure(src, WINDOW)
        print(f"  dirty-limit {2 * LIMIT} MB/s: hart 0 {w2 * PAGE / (1 << 20):.2f} MiB/s",
              flush=True)
        check(query(src)["x-godwit-dirty-limit"]["vcpu-dirty-limit"] == 2 * LIMIT, "limit shown")
        check(0.5 * 2 * lim_pages <= w2 <= 1.5 * 2 * lim_pages,
              f"hart 0 dirtied {w2:.0f} pages/s under a {2 * lim_pages:.0f} pages/s limit")
        finish(ctx, src, dst, base)
    with_vms(body)


def case_auto_converge(ctx):
    def body(vms):
        src = MigVM(ctx, "ac", args(GUEST_SPIN))
        vms.append(src)
        wait_progress(src, 0.3)
        base = measure(src, BASE_SECONDS)
        print(f"  baseline: hart 0 {base[0] * PAGE / (1 << 20):.0f} MiB/s, "
              f"hart 1 {base[1] / 1e6:.1f} M/s", flush=True)
        params(src, max_bandwidth=16 << 20, **{HOLD.replace("-", "_"): True})
        # without auto-converge: never converges
        dst, uri = dest(ctx, vms, "ac-dst0", GUEST_SPIN)
        src.cmd("migrate", uri=uri)
        t0 = time.monotonic()
        while time.monotonic() - t0 < NOCONV_SECONDS:
            i = query(src)
            check(i.get("status") in ("setup", "active"),
                  f"without auto-converge: {i.get('status')} after "
                  f"{time.monotonic() - t0:.1f}s: {i}")
            check("cpu-throttle-percentage" not in i, f"throttled without auto-converge: {i}")
            time.sleep(0.1)
        rounds0 = i["ram"]["dirty-sync-count"]
        src.cmd("migrate_cancel")
        t0 = time.monotonic()
        while query(src).get("status") != "cancelled":
            check(time.monotonic() - t0 < 30, "cancel did not end the migration")
            time.sleep(0.05)
        dst.kill()
        # with it
        caps(src, auto_converge=True)
        params(src, cpu_throttle_initial=60, cpu_throttle_increment=20)
        dst, uri = dest(ctx, vms, "ac-dst", GUEST_SPIN)
        t0 = time.monotonic()
        src.cmd("migrate", uri=uri)
        seen = []
        while True:
            i = query(src)
            p = i.get("cpu-throttle-percentage")
            if p is not None and (not seen or seen[-1] != p):
                seen.append(p)
            if i.get("status") == "x-godwit-held-converged":
                break
            check(i.get("status") not in mig.FINAL, f"migration {i.get('status')}: {i}")
            check(time.monotonic() - t0 < 40, f"not converged after 40 s; throttle {seen}: {i}")
            time.sleep(0.05)
        t_conv = time.monotonic() - t0
        print(f"  without: still active after {NOCONV_SECONDS:.0f}s ({rounds0} rounds); with: "
              f"throttle {seen}, converged in {t_conv:.1f}s", flush=True)
        # 60, then +20 each time the rule fires again, capped at 99: where it
        # stops depends on when the guest's rate fell below the link's
        check(seen and seen == [60, 80, 99][:len(seen)],
              f"cpu-throttle-percentage went {seen}, want a start of [60, 80, 99]")
        pct = seen[-1]
        w, c = measure(src, WINDOW)
        print(f"  at {pct} %: hart 0 {w / base[0]:.3f} x baseline, hart 1 {c / base[1]:.3f} x "
              f"(running share {(100 - pct) / 100:.2f})", flush=True)
        share = (100 - pct) / 100
        check(w <= base[0] * (1.5 * share + 0.02) and c <= base[1] * (1.5 * share + 0.02),
              f"at {pct} %: hart 0 {w:.0f} pages/s (baseline {base[0]:.0f}), hart 1 {c:.0f}/s "
              f"(baseline {base[1]:.0f}): not both slowed to about {share:.2f}")
        check(c >= base[1] * share * 0.5,
              f"at {pct} %: hart 1 {c:.0f}/s is far below {share:.2f} x {base[1]:.0f}")
        check(query(src).get("cpu-throttle-percentage") == pct, "throttle holds while held")
        finish(ctx, src, dst, base)
    with_vms(body)


def lifted_one(ctx, vms, name, setup, key, during, pause=False):
    src = MigVM(ctx, name, args(GUEST))
    vms.append(src)
    wait_progress(src, 0.3)
    base = measure(src, BASE_SECONDS)
    dst, uri = dest(ctx, vms, name + "-dst", GUEST)
    setup(src)
    params(src, max_bandwidth=32 << 20, **{HOLD.replace("-", "_"): True})
    src.cmd("migrate", uri=uri)
    wait_for(src, lambda i: key in i, key, 20)
    time.sleep(0.5)
    slowed = during(src, base)  # it did hold the guest back
    end, want = ("migrate-pause", "x-godwit-precopy-paused") if pause else \
        ("migrate_cancel", "cancelled")
    src.cmd(end)
    t0 = time.monotonic()
    while query(src).get("status") != want:
        check(time.monotonic() - t0 < 30, f"{end} did not end in {want}: {query(src)}")
        time.sleep(0.05)
    i = query(src)
    check(key not in i, f"{key} after {end}: {i}")
    check(src.status() == "running", f"{src.name}: {src.status()} after {end}")
    time.sleep(0.2)
    w, c = measure(src, WINDOW)
    print(f"  {name}: after {end} hart 0 {w / base[0]:.2f} x baseline, "
          f"hart 1 {c / base[1]:.2f} x", flush=True)
    # half the baseline: the machine is shared (the baseline itself moves
    # by a third between runs); a throttle still on would be 99 % or hold
    # hart 0 to MB/s, far below
    check(w >= 0.5 * base[0] and c >= 0.5 * base[1],
          f"{name}: after {end} hart 0 {w:.0f} pages/s (baseline {base[0]:.0f}), "
          f"hart 1 {c:.0f}/s (baseline {base[1]:.0f})")
    if slowed:
        check(w >= 5 * slowed[0] and c >= 5 * slowed[1],
              f"{name}: after {end} hart 0 {w:.0f} pages/s, hart 1 {c:.0f}/s; while throttled "
              f"{slowed[0]:.0f}, {slowed[1]:.0f}")
    if pause:
        src.cmd("migrate_cancel")


def case_lifted(ctx):
    def dl(vm):
        caps(vm, dirty_limit=True)
        params(vm, vcpu_dirty_limit=1)

    def ac(vm):
        caps(vm, auto_converge=True)
        params(vm, cpu_throttle_initial=99)

    def dl_held(vm, base):
        # from the first sync after the rule fired (before it, hart 0 only
        # rewrites pages it already dirtied, which cost nothing)
        wait_for(vm, lambda i: i["x-godwit-dirty-limit"]["harts"][0]["throttle-time-total-ms"] > 0,
                 "hart 0 held back", 10)

    def ac_slowed(vm, base):
        w, c = measure(vm, 1.0)
        check(w <= 0.1 * base[0] and c <= 0.1 * base[1],
              f"at 99 %: hart 0 {w:.0f} pages/s (baseline {base[0]:.0f}), hart 1 {c:.0f}/s "
              f"(baseline {base[1]:.0f})")
        return w, c

    with_vms(lambda vms: lifted_one(ctx, vms, "lift-dl", dl, "dirty-limit-throttle-time-per-round",
                                    dl_held))
    with_vms(lambda vms: lifted_one(ctx, vms, "lift-ac", ac, "cpu-throttle-percentage", ac_slowed))

    def dl_recover(vm):
        dl(vm)
        caps(vm, x_godwit_precopy_recover=True)

    with_vms(lambda vms: lifted_one(ctx, vms, "lift-pause", dl_recover,
                                    "dirty-limit-throttle-time-per-round", dl_held, pause=True))


def case_refusals(ctx):
    def body(vms):
        src = MigVM(ctx, "ref", args(GUEST))
        vms.append(src)
        wait_progress(src, 0.2)
        conflict = "dirty-limit conflicts with auto-converge"
        refused(src, "migrate-set-capabilities", conflict,
                capabilities=[{"capability": "auto-converge", "state": True},
                              {"capability": "dirty-limit", "state": True}])
        caps(src, auto_converge=True)
        refused(src, "migrate-set-capabilities", conflict,
                capabilities=[{"capability": "dirty-limit", "state": True}])
        caps(src, auto_converge=False, dirty_limit=True)
        refused(src, "migrate-set-capabilities", conflict,
                capabilities=[{"capability": "auto-converge", "state": True}])
        got = {c["capability"]: c["state"] for c in src.cmd("query-migrate-capabilities")}
        check(got["dirty-limit"] is True and got["auto-converge"] is False, f"capabilities {got}")
        before = src.cmd("query-migrate-parameters")
        for k, want in (("cpu-throttle-initial", 20), ("cpu-throttle-increment", 10),
                        ("cpu-throttle-tailslow", False), ("max-cpu-throttle", 99),
                        ("vcpu-dirty-limit", 1), ("x-vcpu-dirty-limit-period", 1000)):
            check(before.get(k) == want, f"default {k} is {before.get(k)}, QEMU's is {want}")
        bad = [("cpu-throttle-initial", 0, "Parameter 'cpu_throttle_initial' expects an integer "
                "in the range of 1 to 99"),
               ("cpu-throttle-initial", 100, "Parameter 'cpu_throttle_initial' expects"),
               ("cpu-throttle-increment", 0, "Parameter 'cpu_throttle_increment' expects"),
               ("max-cpu-throttle", 100, "Parameter 'max_cpu_throttle' expects"),
               ("x-vcpu-dirty-limit-period", 0, "Parameter 'x-vcpu-dirty-limit-period' expects "
                "a value between 1 and 1000"),
               ("x-vcpu-dirty-limit-period", 1001, "Parameter 'x-vcpu-dirty-limit-period'"),
               ("vcpu-dirty-limit", 0, "Parameter 'vcpu_dirty_limit'"),
               ("cpu-throttle-tailslow", "yes", "cpu-throttle-tailslow")]
        for k, v, want in bad:
            refused(src, "migrate-set-parameters", want, **{k: v})
        check(src.cmd("query-migrate-parameters") == before, "a refused value changed something")
        params(src, cpu_throttle_initial=35, cpu_throttle_increment=5, cpu_throttle_tailslow=True,
               max_cpu_throttle=90, vcpu_dirty_limit=7, x_vcpu_dirty_limit_period=500)
        got = src.cmd("query-migrate-parameters")
        for k, want in (("cpu-throttle-initial", 35), ("cpu-throttle-increment", 5),
                        ("cpu-throttle-tailslow", True), ("max-cpu-throttle", 90),
                        ("vcpu-dirty-limit", 7), ("x-vcpu-dirty-limit-period", 500)):
            check(got.get(k) == want, f"{k} is {got.get(k)} after setting {want}")
        # capabilities are fixed while a migration runs
        dst, uri = dest(ctx, vms, "ref-dst", GUEST)
        params(src, max_bandwidth=8 << 20)
        src.cmd("migrate", uri=uri)
        refused(src, "migrate-set-capabilities", "There's a migration process in progress",
                capabilities=[{"capability": "dirty-limit", "state": False}])
        src.cmd("migrate_cancel")
    with_vms(body)


CASES = [("dirty-limit", case_dirty_limit),
         ("auto-converge", case_auto_converge),
         ("lifted", case_lifted),
         ("refusals", case_refusals)]


def main():
    rep = h.Report()
    try:
        cases = h.selected(CASES, os.environ.get("THROTTLE_TEST_CASES", ""))
    except ValueError as e:
        print(e)
        return 2
    godwit = h.godwit_vm()
    why = None
    if not os.access(godwit, os.X_OK):
        why = f"{godwit} is not built (make)"
    else:
        for elf in (GUEST, GUEST_SPIN):
            if not os.path.exists(elf):
                r = subprocess.run(["make", "-C", ROOT, os.path.relpath(elf, ROOT)],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True)
                if r.returncode != 0:
                    why = f"cannot build {elf}: {r.stdout.strip()[-200:]}"
    if why:
        for name, _ in cases:
            rep.skip(name, why)
        return rep.summary()
    with tempfile.TemporaryDirectory(prefix="godwit-throttle-") as tmp:
        ctx = mig.Ctx("throttle", mig.Emu("godwit", godwit), h.log_dir(), tmp)
        for name, fn in cases:
            rep.case(name, fn, ctx, hint=f"logs: {ctx.log(name)}*")
    return rep.summary()


if __name__ == "__main__":
    h.main(main)
