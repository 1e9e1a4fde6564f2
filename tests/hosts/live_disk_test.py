#!/usr/bin/env python3
"""Live migration with local disks (issue 14, docs/godwitd.md "Disks"): two
hosts in network namespaces (tests/lib/hosts.py), ha -> hb, a running
bare-metal ticker (64M, no agent) whose 256 MiB sparse disk in its VM folder
holds 24 MiB written on the host before it starts (random and text extents,
allocated zero runs, holes: cold_test.py's fill_disk), moved with `godwit
migrate --live` as an operator would.  The disk streams inside godwit-vm's
live stream (capability `block`) into an empty sparse file of the same size
the destination makes.

Cases:
  moves      `godwit --json migrate --live`: done; the result's plan says one
             local disk moves in the stream with its allocated bytes; the
             figures carry the disk object (total 256 MiB, nothing left, no
             more than the allocated bytes sent); the VM runs on hb only; hb's
             disk has the source's sha256 and allocation (+-1 %); ha's VM
             folder is gone; both jobs done with their phases.
  dst-fail   --bandwidth 40 keeps it slow; hb's godwit-vm SIGKILLed once 2 MiB
             of the disk went: the job fails with a reason, the VM runs on ha
             with its disk unchanged (sha256, allocation), hb has nothing of
             it (no row, no folder, no process), its job failed.
  hold       `godwit migrate --live --detach` prints the plan ("disks: 1 local
             disk, ... moves with the live stream"); `job hold` once 2 MiB of
             the disk went: pre-copy pauses (nothing more sent for 3 s, the VM
             runs on ha); `job release`: it completes, the disk arrives
             identical, x-godwit-recoveries >= 1.
  mixed      a VM with one disk on shared storage and one in its folder is
             refused in precheck (all of a VM's disks stream or none), with a
             hint to --cold; nothing on hb, the VM runs on.
  linux      the Debian guest (256M, a 64 MiB disk) writes its disk all the
             time: 1 MiB of random data into region i % 16 (O_DIRECT), fsync'ed, then
             prints "w i region sha256"; it moves live and goes on writing on
             hb (the count goes on, never restarts); once hb's copy is killed
             every region holds what the guest last said it wrote there (but
             the one being written then), on hb's own disk file.
  linux-mirror  the same over --bandwidth 24, slower than the guest writes:
             godwit-vm switches on active mirroring (x-godwit-mirror seen in
             the figures); `job hold` then: the stream pauses and the guest
             goes on writing on ha (>= 3 writes in 4 s: mirroring does not
             make it wait for a paused stream); released, the migration
             converges and the disk is the guest's.
  space      hb's VM folders on a 100 MiB tmpfs: a VM whose disk holds 48 MiB
             (more than the room with the headroom) is refused in precheck
             naming the disk space; nothing on hb.

Needs root and iproute2 (SKIP otherwise), godwit-vm with disks in the stream
(the capability `block`; SKIP without), the bare-metal guests; the guest image for the linux case.  Environment:
LIVE_DISK_CASES (a comma-separated subset).  Prints PASS/FAIL/SKIP lines and
`N passed, N failed, N skipped`.  About 1-2 min.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
from harness import Skip, check  # noqa: E402

import agent  # noqa: E402
import cold_test as ct  # noqa: E402  (disk helpers: fill_disk, sha, allocated)
import hosts  # noqa: E402
import live_hold_test as lh  # noqa: E402  (hold, release, wait_paused)
import migrate_test as mt  # noqa: E402  (the live tests' helpers)
from hosts import Rack  # noqa: E402

PREFIX = "gwld"
MiB = 1 << 20
DISK = 256 * MiB
REGIONS = 16
# the guest writes region i % 16 of its disk over and over, past its page
# cache (O_DIRECT: the disk's writes dirty little RAM), each write fsync'ed
# before it says so
WRITER_APPEND = ('console=ttyS0 ENV=/proc/cmdline GODWIT_RUN="[ -e /tmp/ran ] || { touch /tmp/ran; '
                 '(i=0; while :; do i=$((i+1)); k=$((i%16)); dd if=/dev/urandom of=/tmp/c bs=64k '
                 'count=16 2>/dev/null; dd if=/tmp/c of=/dev/vda bs=1M seek=$k oflag=direct '
                 'conv=fsync 2>/dev/null; echo w $i $k $(sha256sum </tmp/c); done) & }" '
                 'eval "$GODWIT_RUN"')
WRITE_RE = re.compile(r"^w (\d+) (\d+) ([0-9a-f]{64})", re.M)


# ---- helpers -----------------------------------------------------------------------------


def running_vm(host, name, seed, data_mib=24, *disks):
    """A running ticker with a 256 MiB disk holding data_mib MiB (written
    before it starts), plus any further --disk arguments.  Returns the
    disk's path, sha256 and allocated bytes."""
    extra = []
    for d in disks:
        extra += ["--disk", d]
    mt.create(host, name, "--memory", "64M", "--cpus", "1", "--firmware", "none", "--kernel",
              mt.TICKER, "--no-agent", "--disk", "256M", *extra)
    p = ct.disk_path(host, name)
    ct.fill_disk(p, seed, data_mib=data_mib)
    mt.start(host, name)
    return p, ct.sha(p), ct.allocated(p)


def disk_fig(host, jid):
    j = mt.job(host, jid)
    check(j["status"] in ("running", "held"),
          f"{host.name}: job {jid} ended early: {j['status']} {j.get('error')}")
    return (j.get("figures") or {}).get("disk") or {}


def wait_disk(host, jid, min_bytes, timeout=60):
    """Until the job's disk figures say min_bytes went."""
    return mt.wait_for(lambda: (lambda d: d if d.get("transferred", 0) >= min_bytes else None)(
        disk_fig(host, jid)), timeout, f"{host.name}: job {jid}: {min_bytes} disk bytes sent")


def check_intact(host, name, p, want_sha, want_alloc, what):
    check(ct.sha(p) == want_sha, f"{what}: {host.name}'s disk changed")
    check(ct.allocated(p) == want_alloc,
          f"{what}: {host.name}'s disk allocates {ct.allocated(p)}, was {want_alloc}")


# ---- cases -------------------------------------------------------------------------------


def case_moves(rack):
    a, b = rack.hosts
    name = "ldm"
    try:
        p, src_sha, src_alloc = running_vm(a, name, 1)
        src_dir = mt.vm_dir(a, name)
        rc, res, err = mt.migrate(a, name, b, "--live")
        check(rc == 0, f"migrate --live: exit {rc}: {err.strip()} {res}")
        mt.check_result(res, name, a, b)
        plan = res.get("plan") or {}
        check(plan.get("storage") == "stream" and plan.get("local") == 1 and
              plan.get("shared") == 0 and plan.get("disk_size") == DISK and
              abs(plan.get("disk_bytes", 0) - src_alloc) <= src_alloc / 100 and
              "moves with the live stream" in plan.get("text", ""), f"plan {plan}")
        f = res.get("figures") or {}
        d = f.get("disk") or {}
        check(d.get("total") == DISK and d.get("remaining") == 0 and
              0 < d.get("transferred", 0) <= src_alloc + MiB,
              f"disk figures {d} ({src_alloc} bytes allocated)")
        mt.only_on(rack, name, b)
        mt.check_runs_here(b, name, "arrived")
        ct.check_arrived_copy(a, b, name, src_sha, src_alloc, "live")
        check(not os.path.exists(src_dir), f"{a.name} kept {src_dir}")
        mt.check_jobs_done(a, b, res["job"])
        return (f"{plan['text']}; {d['transferred'] >> 10} KiB of disk sent, downtime "
                f"{res['downtime_ms']} ms, {res['total_time_ms']} ms in all")
    finally:
        mt.remove_everywhere(rack, name)


def case_dst_fail(rack):
    a, b = rack.hosts
    name = "ldf"
    try:
        p, src_sha, src_alloc = running_vm(a, name, 2)
        jid = mt.detach_migrate(a, name, b, "--live", "--bandwidth", "40")
        d = wait_disk(a, jid, 2 * MiB)
        did = mt.job(a, jid)["figures"]["destination-job"]
        pid = mt.vm_pid(b, name)
        check(pid, f"{b.name}: no process for the incoming {name}")
        check(os.path.exists(ct.disk_path(b, name)), f"{b.name}: no disk file for {name}")
        os.kill(pid, signal.SIGKILL)
        j = mt.wait_final(a, jid, 30)
        check(j["status"] == "failed" and j.get("error"),
              f"{a.name}: job {jid}: {j['status']} {j.get('error')!r}")
        mt.check_runs_here(a, name, "after the destination's VM died")
        check_intact(a, name, p, src_sha, src_alloc, "after the destination's VM died")
        mt.check_forgotten(b, name)
        dj = mt.wait_final(b, did, 15)
        check(dj["status"] == "failed", f"{b.name}: incoming job {did}: {dj['status']}")
        return f"killed at {d['transferred'] >> 10} KiB of disk; {j['error']}"
    finally:
        mt.remove_everywhere(rack, name)


def case_hold(rack):
    a, b = rack.hosts
    name = "ldh"
    try:
        p, src_sha, src_alloc = running_vm(a, name, 3)
        rc, out, err = a.cli("migrate", name, b.name, "--live", "--detach", "--bandwidth", "40")
        check(rc == 0, f"migrate --detach: exit {rc}: {err.strip()}")
        m = re.search(r"^disks: (1 local disk, .* allocated of 256 MiB, moves with the live "
                      r"stream)$", out, re.M)
        check(m, f"no plan line in {out!r}")
        jid = int(re.search(r"^job (\d+):", out, re.M).group(1))
        wait_disk(a, jid, 2 * MiB)
        lh.hold(a, jid)
        f = lh.wait_paused(a, jid)
        sent = (f.get("disk") or {}).get("transferred", 0)
        time.sleep(3)
        f = lh.figures(a, jid)
        later = (f.get("disk") or {}).get("transferred", 0)
        check(f.get("status") == lh.PAUSED and later - sent <= MiB,
              f"while held: {f.get('status')}, {later - sent} disk bytes more")
        check(mt.job_show(a, jid)["status"] == "held", "the job is not held")
        mt.check_runs_here(a, name, "held")
        check(mt.vm_states(b).get(name) == "incoming", f"{b.name}: {mt.vm_states(b)}")
        lh.release(a, jid)
        j = lh.check_done(a, b, jid, "after the release")
        f = j.get("figures") or {}
        check(f.get("x-godwit-recoveries", 0) >= 1, f"recoveries {f.get('x-godwit-recoveries')}")
        mt.only_on(rack, name, b)
        ct.check_arrived_copy(a, b, name, src_sha, src_alloc, "held and released")
        return (f"{m.group(1)}; held at {sent >> 10} KiB of disk, "
                f"{(f.get('disk') or {}).get('transferred', 0) >> 10} KiB in all, "
                f"resent {f.get('x-godwit-resent', 0)} B")
    finally:
        lh.cleanup(rack, name)


def case_mixed(rack):
    a, b = rack.hosts
    name = "ldx"
    shared = os.path.join(rack.shared, "ldx-data.raw")
    try:
        with open(shared, "wb") as f:
            f.truncate(8 * MiB)
        running_vm(a, name, 4, 4, shared)
        rc, res, err = mt.migrate(a, name, b, "--live")
        check(rc == 1 and res and res["status"] == "failed", f"exit {rc}, {res}, {err.strip()}")
        e = res.get("error") or ""
        check("shared storage" in e and "--cold" in e, f"the error: {e!r}")
        check(res.get("phase") == "precheck", f"failed in {res.get('phase')}")
        check(name not in mt.vm_states(b), f"{b.name} has {name}")
        mt.check_runs_here(a, name, "after the refusal")
        return e
    finally:
        mt.remove_everywhere(rack, name)
        if os.path.exists(shared):
            os.unlink(shared)


def writes(text):
    return [(int(i), int(k), sha) for i, k, sha in WRITE_RE.findall(text)]


def region_sha(path, k):
    import hashlib
    with open(path, "rb") as f:
        f.seek(k * MiB)
        return hashlib.sha256(f.read(MiB)).hexdigest()


def linux_writer(rack, name, *opts, want_mirror=False):
    """The writing guest moves ha -> hb with opts; its disk on hb holds
    what it last said it wrote.  want_mirror: godwit-vm must have switched
    on active mirroring on the way (x-godwit-mirror in the figures); then
    the job is held once it mirrors: the stream pauses and the guest goes on
    writing on ha (its writes do not wait for a paused stream), and the
    release completes it."""
    image, initrd = h.guest_image()
    a, b = rack.hosts
    try:
        mt.create(a, name, "--memory", "256M", "--cpus", "1", "--kernel", image, "--initrd",
                  initrd, "--append", WRITER_APPEND, "--disk", "64M", "--no-agent")
        mt.start(a, name)
        mt.wait_for(lambda: len(writes(mt.console(a, name))) >= 5, 120,
                    f"the guest's writes on {a.name}", step=0.5)
        jid = mt.detach_migrate(a, name, b, "--live", *opts)
        mirrored = False
        held = ""
        t0 = time.monotonic()
        end = t0 + 180
        while time.monotonic() < end:
            j = mt.job(a, jid)
            f = j.get("figures") or {}
            if f.get("x-godwit-mirror") is True and mirrored is False:
                mirrored = time.monotonic() - t0  # when it first showed
                if want_mirror:
                    held = hold_writing(a, b, name, jid)
            if j["status"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.1)
        check(j["status"] == "done", f"job {jid}: {j['status']} {j.get('error')}")
        mt.check_jobs_done(a, b, jid)
        d = f.get("disk") or {}
        check((f.get("plan") or {}).get("storage") == "stream" and d.get("transferred", 0) > 0,
              f"plan {f.get('plan')}, disk {d}")
        check(mirrored is not False or not want_mirror,
              f"no active mirroring seen: {json.dumps(f)}")
        mt.only_on(rack, name, b)
        i0 = max(i for i, _, _ in writes(mt.console(b, name)))
        mt.wait_for(lambda: max(i for i, _, _ in writes(mt.console(b, name))) >= i0 + 5, 60,
                    f"the guest's writes going on on {b.name}", step=0.5)
        rc, out, err = b.cli("vm", "kill", name, timeout=30)
        check(rc == 0, f"{b.name}: vm kill: {err.strip()}")
        w = writes(mt.console(b, name))
        seq = [i for i, _, _ in w]
        check(seq == list(range(seq[0], seq[0] + len(seq))),
              f"the guest's count restarted or skipped: {seq[:5]}...{seq[-5:]}")
        last = {k: sha for _, k, sha in w}
        busy = {(seq[-1] + 1) % REGIONS, (seq[-1] + 2) % REGIONS}  # maybe written, not logged
        p = ct.disk_path(b, name)
        bad = [k for k, sha in last.items() if k not in busy and region_sha(p, k) != sha]
        check(not bad, f"{b.name}'s disk: regions {bad} differ from the guest's last writes")
        return (f"{len(seq)} writes ({seq[-1] - i0} after the switchover), downtime "
                f"{f.get('downtime')} ms, {f.get('total-time')} ms in all, disk "
                f"{d.get('transferred', 0) >> 10} KiB sent, RAM "
                f"{(f.get('ram') or {}).get('transferred', 0) >> 10} KiB sent in "
                f"{(f.get('ram') or {}).get('dirty-sync-count')} rounds, mirroring "
                f"{'from %.1fs' % mirrored if mirrored is not False else 'never'}{held}")
    finally:
        mt.remove_everywhere(rack, name)


def hold_writing(a, b, name, jid):
    """Hold a mirroring job: paused, the guest writes on meanwhile on a;
    released.  A note."""
    lh.hold(a, jid)
    lh.wait_paused(a, jid)
    i0 = max(i for i, _, _ in writes(mt.console(a, name)))
    time.sleep(4)
    i1 = max(i for i, _, _ in writes(mt.console(a, name)))
    check(i1 >= i0 + 3, f"held: the guest's writes on {a.name} stalled ({i0} -> {i1} in 4 s)")
    check(mt.vm_states(b).get(name) == "incoming", f"held: {b.name}: {mt.vm_states(b)}")
    lh.release(a, jid)
    return f"; held while mirroring: {i1 - i0} writes in 4 s, released"


def case_linux(rack):
    return linux_writer(rack, "ldl")


def case_linux_mirror(rack):
    # the link (16 Mbit/s) slower than the guest writes (~3 MiB/s)
    return linux_writer(rack, "ldr", "--bandwidth", os.environ.get("LIVE_DISK_MIRROR_MBPS", "24"),
                        "--downtime-limit", "2000",
                        want_mirror=True)


def case_space(rack):
    a, b = rack.hosts
    name = "lds"
    vms = os.path.join(b.state, "vms")
    mounted = False
    try:
        os.makedirs(vms, exist_ok=True)
        check(not os.listdir(vms), f"{vms} is not empty: {os.listdir(vms)}")
        # mounted before hb's daemon starts: `ip netns exec` gives it a copy
        # of this mount namespace
        b.daemon.stop()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100m", "gwlivedisk", vms],
                           capture_output=True, text=True)
        mounted = r.returncode == 0
        b.start_daemon()
        if not mounted:
            raise Skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
        running_vm(a, name, 5, 48)
        rc, res, err = mt.migrate(a, name, b, "--live")
        check(rc == 1 and res and res["status"] == "failed", f"exit {rc}, {res}, {err.strip()}")
        e = res.get("error") or ""
        check("disk space" in e and res.get("phase") == "precheck",
              f"{res.get('phase')}: {e!r}")
        check(not os.listdir(vms), f"{b.name} kept {os.listdir(vms)}")
        mt.check_runs_here(a, name, "after the refusal")
        return e
    finally:
        mt.remove_everywhere(rack, name)
        if mounted:
            b.daemon.stop()
            subprocess.run(["umount", "-l", vms])
            b.start_daemon()


CASES = [
    ("moves", case_moves),
    ("dst-fail", case_dst_fail),
    ("hold", case_hold),
    ("mixed", case_mixed),
    ("linux", case_linux),
    ("linux-mirror", case_linux_mirror),
    ("space", case_space),
]


def vm_streams_disks():
    """godwit-vm reports a disk object (its block migration)."""
    try:
        r = subprocess.run(["grep", "-c", "x-godwit-mirror", h.godwit_vm()],
                           capture_output=True, text=True, timeout=10)
        return r.returncode == 0
    except OSError:
        return False


def run():
    rep = h.Report()
    only = os.environ.get("LIVE_DISK_CASES", "")
    want = [c for c in CASES if not only or c[0] in only.split(",")]
    why = None
    if not os.access(agent.godwitd(), os.X_OK) or not os.access(h.godwit_vm(), os.X_OK):
        why = f"{agent.godwitd()} or {h.godwit_vm()} is not built (make)"
    elif not os.path.exists(mt.TICKER):
        why = f"the bare-metal guests are not built ({mt.GUEST})"
    elif not vm_streams_disks():
        why = "this godwit-vm cannot move disks in the stream (no capability block)"
    else:
        try:
            hosts.require_netns()
        except Skip as e:
            why = str(e)
    if why:
        for c, _ in want:
            rep.skip(c, why)
        return rep.summary()
    done = set()
    try:
        with Rack(PREFIX, 2, shared_storage=True) as rack:
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
