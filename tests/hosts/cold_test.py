#!/usr/bin/env python3
"""Cold and suspended migration between godwitd hosts (docs/godwitd.md "Cold
and suspended migration", src/godwitd/migrate_cold.h): three hosts in network
namespaces (tests/lib/hosts.py), paired, moving VMs with `godwit migrate
--cold` / `--suspend` as an operator would.

Cases:
  stopped        a stopped VM whose 1 GiB sparse disk holds 40 MiB (random,
                 text, allocated zero runs, holes) moves ha -> hb with
                 --confirm manual: the CLI returns at the confirm phase; the
                 source keeps its copy (state migrated, files read-only), the
                 destination's disk is byte-identical with the same
                 allocation (+-1 %), the wire bytes stay within the data, it
                 stays stopped there; `job confirm` removes the source's copy.
  revert         a running VM (bare-metal ticker, no agent: --force) moves
                 ha -> hb (started there, verified by its running state);
                 `job revert --yes`: the copy on hb goes, the VM runs on ha
                 again with its disk unchanged, job status reverted.
  link-cut       the link ha -> hc (through tests/lib/proxy.py) cut at ~30 %
                 and ~70 % of the transfer: it resumes each time; the bytes
                 on the wire stay within the data plus two chunks; the disk
                 arrives identical.
  bit-flip       ha's daemon flips one bit in a chunk it sends (test hook
                 GODWITD_FAULT_FLIP_CHUNK): hb detects it, the chunk is sent
                 again (bad_chunks 1), the disk arrives identical.
  kill-src       the source's godwitd SIGKILLed mid-transfer (--bandwidth
                 keeps it slow): the restarted daemon resumes the job, which
                 finishes; little is sent twice.
  kill-dst       the same with the destination's godwitd.
  disk-full      the destination's VM folders on a small tmpfs: a VM larger
                 than its room is refused in precheck naming the disk space;
                 a tmpfs that fills up during the transfer fails the job: the
                 VM (it was running) runs on the source again with its disk
                 identical, nothing of it is left on the destination.
  hold           a manual hold (`godwit job hold --reason`) mid-transfer: the job
                 parks (status held, nothing moves), stays held across a
                 daemon restart, and `job release` continues it from the
                 destination's verified offset (resent <= 1 chunk); refusals
                 (no reason, past the transfer, no hold to release, the
                 destination's job, a finished job); a held job cancelled:
                 the VM is back as it was, the destination clean.
  after          `--after JOB`: a cold migration held (dependency) from its
                 first moment until job A is confirmed (finished), then runs;
                 a live one held behind it the same way; an unknown job refused.
  after-vm       `--after-vm NAME@PEER`: a cold migration held (dependency) until
                 a VM it names runs on hb (moved there live meanwhile), another
                 until a VM on ha itself starts; malformed specs, unknown peers
                 and a VM waiting for itself refused.
  technical      hc unreachable mid-transfer (the proxy refusing): a technical
                 hold while the job retries, lifted when hc answers again, the
                 disk arrives; with --give-up-after 3 the job fails and the VM
                 is back as it was; hc, which the source could not tell,
                 asks the source about its job once it has been silent
                 (GODWITD_COLD_ASK_IDLE_MS=2000 here, 5 min by default) and
                 drops its partial copy.
  resources      ha with --max-migrations 1: a second migration starts held
                 (resources) and runs once the first waits for its confirm; hb
                 with --max-migrations 2,1: the second source waits (a resources
                 hold while it asks again) until hb has a slot.
  window         --window FROM/TO a few seconds ahead: the cold transfer runs at
                 once, the job is held (window) until it opens, then switches
                 over; a live migration transfers at once and waits
                 held-converged for its window (live_hold_test.py checks
                 more); nonsense windows refused.
  compliance     ha's policy.json: a VM labelled data=eu-only is refused to hc
                 (region=us) and goes to hb (region=eu); one labelled tier=prod
                 is held for an approval: its starter cannot approve it
                 (four-eyes), uid 65534 can (setpriv), and the approver is
                 recorded.
  budget         policy.json "budget" for hb of what it received today plus 25 MiB:
                 an 8 MiB move runs, a 16 MiB one then waits on a budget hold
                 (cancelled: VM intact); with a 4 MiB budget it is refused.
  shutdown-timeout  a guest that ignores the power-down request
                 (--shutdown-timeout 2, no --force): the job fails, the VM
                 still runs on the source, nothing on the destination.
  linux          the Debian guest with its agent writes 8 MiB to its disk and
                 prints the data's sha256; `migrate --cold --confirm-window 3`
                 to hb: it boots there, its agent answers the ping (the job
                 says so), the guest reads the same sha256 from its disk, the
                 console history travelled; the window passes: job done,
                 the source's copy gone.
  suspended      the same guest (a counter ticking on its console) moves
                 hb -> ha with --suspend --resume: it continues counting
                 where it stopped (no reboot), the guest clock is set (the job
                 says so); then suspended on ha and moved to hb without
                 --resume (it stays suspended there); its state file
                 corrupted there: `vm resume` is refused with the checker's
                 reason and the VM stays suspended.

Needs root and iproute2 (SKIP otherwise), godwit-vm, the bare-metal guests
(build/guest) and, for the Linux cases, the guest image.  Environment:
COLD_HOSTS_CASES (a comma-separated subset), MIGRATE_HOSTS_BOOT (seconds for
the Linux guest, 240).  Prints PASS/FAIL/SKIP lines and `N passed, N
failed, N skipped`.
"""
import hashlib
import json
import os
import random
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
import hosts  # noqa: E402
import migrate_test as mt  # noqa: E402  (the live tests' helpers)
from hosts import Rack  # noqa: E402
from proxy import ProxyProcess  # noqa: E402

PREFIX = "gwcd"
CHUNK = 1 << 20
TICKER = mt.TICKER
MiB = 1 << 20

LINUX_APPEND = ('console=ttyS0 ENV=/proc/cmdline GODWIT_RUN="[ -e /tmp/ran ] || { touch /tmp/ran; '
                'dd if=/dev/vda bs=16 count=1 2>/dev/null | grep -q GODWITMARK || { echo '
                'GODWITMARK | dd of=/dev/vda conv=fsync 2>/dev/null; dd if=/dev/urandom of=/dev/vda '
                'bs=1M seek=64 count=8 conv=fsync 2>/dev/null; }; echo disk-sha $(dd if=/dev/vda '
                'bs=1M skip=64 count=8 2>/dev/null | sha256sum); (i=0; while :; do i=$((i+1)); '
                'echo tick-$i; sleep 1; done) & }" eval "$GODWIT_RUN"')


# ---- helpers -----------------------------------------------------------------------------


def sha(path):
    d = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                return d.hexdigest()
            d.update(b)


def allocated(path):
    return os.stat(path).st_blocks * 512


def disk_path(host, name, i=0):
    return os.path.join(mt.vm_dir(host, name), f"disk{i}.raw")


def fill_disk(path, seed, data_mib=40, random_only=False):
    """Write data_mib MiB into the (sparse) disk at scattered offsets:
    random and text extents, allocated zero runs inside them, holes
    between.  Returns the bytes written (allocated)."""
    rnd = random.Random(seed)
    size = os.path.getsize(path)
    total = 0
    with open(path, "r+b") as f:
        for k in range(data_mib // 4):
            off = (rnd.randrange(size // (8 * MiB)) * (8 * MiB)) + rnd.randrange(4) * 4096
            if random_only or k % 3 == 0:
                buf = rnd.randbytes(4 * MiB)
            elif k % 3 == 1:
                line = b"godwit cold migration line %d with some text to compress\n" % k
                buf = (line * (4 * MiB // len(line) + 1))[:4 * MiB]
            else:  # an extent whose middle is written zeros (allocated)
                buf = rnd.randbytes(MiB) + bytes(2 * MiB) + rnd.randbytes(MiB)
            f.seek(off)
            f.write(buf)
            total += len(buf)
        f.flush()
        os.fsync(f.fileno())
    return total


def stopped_vm(host, name, seed, **kw):
    """A defined (never started) bare-metal VM with a 1 GiB disk holding data."""
    mt.create(host, name, "--memory", "64M", "--cpus", "1", "--firmware", "none", "--kernel",
              TICKER, "--no-agent", "--disk", "1G")
    return fill_disk(disk_path(host, name), seed, **kw)


def running_vm(host, name, seed, agent_port=False):
    """A running bare-metal ticker with a 1 GiB disk holding data."""
    extra = [] if agent_port else ["--no-agent"]
    mt.create(host, name, "--memory", "64M", "--cpus", "1", "--firmware", "none", "--kernel",
              TICKER, "--disk", "1G", *extra)
    fill_disk(disk_path(host, name), seed, data_mib=16)
    mt.start(host, name)


def cold(src, name, dst, *opts, timeout=300):
    """`godwit --json migrate NAME DST --cold OPTS`: (exit code, result, stderr)."""
    return mt.migrate(src, name, dst, "--cold", *opts, timeout=timeout)


def detach(src, name, dst, *opts):
    rc, out, err = src.cli("--json", "migrate", name, dst.name, "--detach", *opts)
    check(rc == 0, f"{src.name}: migrate {name} --detach: exit {rc}: {err.strip()}")
    return json.loads(out)["job"]


def xfer(host, jid):
    return ((mt.job(host, jid).get("figures") or {}).get("transfer")) or {}


def wait_phase(host, jid, phase, timeout=120):
    def at():
        j = mt.job(host, jid)
        check(j["status"] in ("running", "held") or j["phase"] == phase,
              f"{host.name}: job {jid} ended: {j['status']} {j.get('error')}")
        return j if j["phase"] == phase else None
    return mt.wait_for(at, timeout, f"{host.name}: job {jid} in phase {phase}", step=0.2)


def wait_done_share(host, jid, share, timeout=120):
    """Until the job's transfer has share (0..1) of its data done."""
    def far():
        j = mt.job(host, jid)
        check(j["status"] == "running", f"{host.name}: job {jid} ended early: {j['status']} "
                                        f"{j.get('error')}")
        x = (j.get("figures") or {}).get("transfer") or {}
        return j if x.get("total") and x.get("done", 0) >= share * x["total"] else None
    return mt.wait_for(far, timeout, f"{host.name}: job {jid} at {share:.0%}", step=0.05)


def wait_status(host, jid, statuses=("done", "failed", "cancelled", "reverted"), timeout=180):
    return mt.wait_for(lambda: (lambda j: j if j["status"] in statuses else None)(
        mt.job(host, jid)), timeout, f"{host.name}: job {jid} to end", step=0.2)


def check_arrived_copy(src, dst, name, src_sha, src_alloc, what):
    """dst's disk is src's, bytes and allocation."""
    p = disk_path(dst, name)
    check(os.path.exists(p), f"{what}: no disk on {dst.name}")
    check(sha(p) == src_sha, f"{what}: {dst.name}'s disk differs from the source's")
    a = allocated(p)
    check(abs(a - src_alloc) <= src_alloc / 100,
          f"{what}: {dst.name} allocates {a} bytes, the source {src_alloc} (+-1 %)")
    left = [f for f in os.listdir(mt.vm_dir(dst, name)) if f.endswith((".part", ".xfer"))]
    check(not left, f"{what}: {dst.name} kept transfer files {left}")


def cleanup(rack, *names):
    for name in names:
        for x in rack.hosts:
            if not x.daemon or x.daemon.proc.poll() is not None:
                continue
            # a VM kept for a confirm: its job must end first
            rc, out, _ = x.cli("--json", "job", "list")
            if rc == 0:
                for j in json.loads(out):
                    if j.get("vm") == name and j.get("status") == "running":
                        x.cli("job", "confirm", str(j["id"]), timeout=30)
                        x.cli("job", "cancel", str(j["id"]), timeout=30)
        mt.remove_everywhere(rack, name)


# ---- cases -------------------------------------------------------------------------------


def case_stopped(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "cs1"
    try:
        written = stopped_vm(a, name, 1)
        p = disk_path(a, name)
        src_sha, src_alloc = sha(p), allocated(p)
        rc, res, err = cold(a, name, b, "--confirm", "manual")
        check(rc == 0, f"migrate --cold: exit {rc}: {err.strip()}")
        jid = res["job"]
        j = mt.job_show(a, jid)
        check(j["status"] == "running" and j["phase"] == "confirm",
              f"job {jid}: {j['status']} {j['phase']}, want running in confirm")
        check(mt.vm_states(a).get(name) == "migrated", f"{a.name}: {mt.vm_states(a).get(name)}")
        check(not os.access(p, os.W_OK) or os.stat(p).st_mode & 0o222 == 0,
              f"{a.name}: the kept disk is writable ({oct(os.stat(p).st_mode)})")
        check(mt.vm_states(b).get(name) == "stopped",
              f"{b.name}: {mt.vm_states(b).get(name)}, want stopped (it was not running)")
        check_arrived_copy(a, b, name, src_sha, src_alloc, "stopped VM")
        for verb in ("start", "delete"):  # the kept copy stays as it is
            rc, out, err = a.cli("vm", verb, name, timeout=30)
            check(rc == 1 and mt.vm_states(a).get(name) == "migrated",
                  f"vm {verb} of the kept copy: exit {rc}: {err.strip()}")
        rc, out, err = a.cli("job", "cancel", str(jid), timeout=30)
        check(rc == 1 and "confirm" in err, f"job cancel in the confirm phase: exit {rc}: "
                                            f"{err.strip()}")
        x = j["figures"]["transfer"]
        check(x["done"] == x["total"] and x["wire"] <= written and x["resent"] == 0,
              f"transfer figures {x}, {written} bytes of data")
        ph = mt.phases(mt.job(a, jid))
        check([p_ for p_ in ph if p_ in ("precheck", "transfer", "start", "confirm")] ==
              ["precheck", "transfer", "start", "confirm"], f"phases {ph}")
        check("shutdown" not in ph, f"a stopped VM went through shutdown: {ph}")
        rc, out, err = a.cli("job", "confirm", str(jid), timeout=60)
        check(rc == 0, f"job confirm: exit {rc}: {(out + err).strip()}")
        mt.check_forgotten(a, name)
        check(mt.job_show(a, jid)["status"] == "done", "confirmed job not done")
        did = j["figures"]["destination-job"]
        check(mt.job_show(b, did)["status"] == "done", f"{b.name}: job {did} not done")
        return [f"wire {x['wire'] / MiB:.1f} MiB for {written / MiB:.0f} MiB written, "
                f"{x['compressed']} chunks compressed"]
    finally:
        cleanup(rack, name)


def case_revert(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "cr1"
    try:
        running_vm(a, name, 2)
        rc, res, err = cold(a, name, b, "--force", "--shutdown-timeout", "1", "--confirm",
                            "manual")
        check(rc == 0, f"migrate --cold --force: exit {rc}: {err.strip()}")
        jid = res["job"]
        p = disk_path(a, name)
        src_sha = sha(p)
        check(mt.vm_states(b).get(name) == "running", f"{b.name}: {mt.vm_states(b).get(name)}")
        verify = ((res.get("figures") or {}).get("result") or {}).get("verify", "")
        check("running state alone" in verify, f"verify note {verify!r}")
        rc, out, err = a.cli("job", "revert", str(jid), "--yes", timeout=90)
        check(rc == 0, f"job revert: exit {rc}: {(out + err).strip()}")
        check("lost" in err, f"revert did not warn: {err!r}")
        check(mt.job_show(a, jid)["status"] == "reverted", "job not reverted")
        mt.check_forgotten(b, name)
        mt.wait_for(lambda: mt.vm_states(a).get(name) == "running", 30,
                    f"{name} running again on {a.name}")
        check(sha(p) == src_sha and os.stat(p).st_mode & 0o200,
              "the source disk changed or stayed read-only")
        return []
    finally:
        cleanup(rack, name)


def case_link_cut(rack):
    a, c = rack.hosts[0], rack.hosts[2]
    name = "cl1"
    try:
        written = stopped_vm(a, name, 3, data_mib=48, random_only=True)
        p = disk_path(a, name)
        src_sha, src_alloc = sha(p), allocated(p)
        # the cuts land inside a chunk's request (cut_after counts the bytes
        # that reach hc): at ~30 % and ~70 % of the data
        before = rack.proxy.stats()["cuts"]
        rack.proxy.cut_after(int(written * 0.3))
        jid = detach(a, name, c, "--cold", "--confirm", "manual", "--bandwidth", "160")
        mt.wait_for(lambda: rack.proxy.stats()["cuts"] > before, 60, "the first cut")
        rack.proxy.cut_after(int(written * 0.4))
        mt.wait_for(lambda: rack.proxy.stats()["cuts"] > before + 1, 60, "the second cut")
        cuts = 2
        wait_phase(a, jid, "confirm", timeout=180)
        x = xfer(a, jid)
        check(x["resumes"] >= cuts, f"resumes {x['resumes']}, {cuts} cuts")
        check(x["wire"] <= x["total"] + 2 * CHUNK and x["resent"] <= 2 * CHUNK,
              f"wire {x['wire']} resent {x['resent']} for {x['total']} of data (2 chunks: "
              f"{2 * CHUNK})")
        check_arrived_copy(a, c, name, src_sha, src_alloc, "after two cuts")
        return [f"{cuts} cuts, {x['resumes']} resumes, resent {x['resent']} bytes, "
                f"wire {x['wire']} for {written} written"]
    finally:
        cleanup(rack, name)


def restart(host, env=None):
    host.daemon.stop()
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        host.start_daemon()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def case_bit_flip(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "cb1"
    try:
        restart(a, {"GODWITD_FAULT_FLIP_CHUNK": "5"})
        stopped_vm(a, name, 4, data_mib=16)
        p = disk_path(a, name)
        src_sha, src_alloc = sha(p), allocated(p)
        rc, res, err = cold(a, name, b, "--confirm", "manual")
        check(rc == 0, f"migrate --cold: exit {rc}: {err.strip()}")
        x = res["figures"]["transfer"]
        check(x["bad_chunks"] == 1, f"bad_chunks {x['bad_chunks']}, want 1")
        check_arrived_copy(a, b, name, src_sha, src_alloc, "a flipped bit")
        with open(os.path.join(h.log_dir("hosts"), f"godwitd-{PREFIX}-{a.name}.log")) as f:
            log = f.read()
        check("damaged: sending it again" in log, "the source did not log the resend")
        return []
    finally:
        restart(a)
        cleanup(rack, name)


def kill_case(rack, victim_index):
    a, b = rack.hosts[0], rack.hosts[1]
    victim = rack.hosts[victim_index]
    name = f"ck{victim_index}"
    try:
        stopped_vm(a, name, 5 + victim_index, data_mib=40, random_only=True)
        p = disk_path(a, name)
        src_sha, src_alloc = sha(p), allocated(p)
        jid = detach(a, name, b, "--cold", "--confirm", "manual", "--bandwidth", "120")
        wait_done_share(a, jid, 0.4)
        victim.daemon.proc.send_signal(signal.SIGKILL)
        victim.daemon.proc.wait(timeout=10)
        time.sleep(1)
        victim.start_daemon()
        j = wait_phase(a, jid, "confirm", timeout=240)
        x = j["figures"]["transfer"]
        check(x["resumes"] >= 1, f"resumes {x['resumes']}")
        check(x["resent"] <= 4 * CHUNK, f"resent {x['resent']} bytes after a restart")
        check_arrived_copy(a, b, name, src_sha, src_alloc, f"{victim.name} killed")
        return [f"resent {x['resent']} bytes, wire {x['wire']} for {x['total']}"]
    finally:
        cleanup(rack, name)


def case_kill_src(rack):
    return kill_case(rack, 0)


def case_kill_dst(rack):
    return kill_case(rack, 1)


def case_disk_full(rack):
    a, c = rack.hosts[0], rack.hosts[2]
    vms = os.path.join(c.state, "vms")
    names = ["cf1", "cf2"]
    mounted = False
    try:
        os.makedirs(vms, exist_ok=True)
        check(not os.listdir(vms), f"{vms} is not empty: {os.listdir(vms)}")
        # mounted before hc's daemon starts: `ip netns exec` gives it a
        # copy of this mount namespace
        c.daemon.stop()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100m", "gwcold", vms],
                           capture_output=True, text=True)
        mounted = r.returncode == 0
        c.start_daemon()
        if not mounted:
            raise Skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
        # more than the room: refused in precheck
        stopped_vm(a, names[0], 8, data_mib=48)
        rc, res, err = cold(a, names[0], c)
        check(rc != 0 and "disk space" in err, f"precheck: exit {rc}: {err.strip()}")
        check(not os.listdir(vms), f"{c.name} kept {os.listdir(vms)}")
        # room at the precheck, filled during the transfer
        running_vm(a, names[1], 9)
        p = disk_path(a, names[1])
        rc, out, err = a.cli("vm", "kill", names[1])  # a consistent disk to compare
        check(rc == 0, f"kill: {err}")
        mt.start(a, names[1])
        src_sha = sha(p)
        jid = detach(a, names[1], c, "--cold", "--force", "--shutdown-timeout", "1",
                     "--bandwidth", "40")
        wait_done_share(a, jid, 0.1, timeout=60)
        fd = os.open(os.path.join(vms, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, bytes(MiB)) > 0:
                pass
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        j = wait_status(a, jid)
        check(j["status"] == "failed" and "space" in (j.get("error") or ""),
              f"job {jid}: {j['status']}: {j.get('error')}")
        mt.wait_for(lambda: mt.vm_states(a).get(names[1]) == "running", 30,
                    f"{names[1]} running again on {a.name}")
        check(sha(p) == src_sha, "the source disk changed")
        os.unlink(os.path.join(vms, "filler"))
        mt.wait_for(lambda: not os.listdir(vms), 15, f"{c.name} forgetting {names[1]}")
        return [f"error: {j.get('error')}"]
    finally:
        if mounted:
            for f in os.listdir(vms):
                if f == "filler":
                    os.unlink(os.path.join(vms, f))
        cleanup(rack, *names)
        if mounted:
            c.daemon.stop()
            subprocess.run(["umount", "-l", vms])
            c.start_daemon()


def case_shutdown_timeout(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = "ct1"
    try:
        running_vm(a, name, 10, agent_port=True)  # nothing in it answers the agent
        t0 = time.monotonic()
        rc, res, err = cold(a, name, b, "--shutdown-timeout", "2")
        check(rc == 1 and "keeps running" in err, f"exit {rc}: {err.strip()}")
        check(time.monotonic() - t0 < 60, "the timeout took too long")
        check(mt.vm_states(a).get(name) == "running", f"{a.name}: {mt.vm_states(a).get(name)}")
        check(name not in mt.vm_states(b), f"{b.name} has {name}")
        return []
    finally:
        cleanup(rack, name)


class Linux:
    name = "lx1"
    tick_before = 0


def console_ticks(text):
    return [int(ln.strip()[5:]) for ln in text.splitlines()
            if ln.strip().startswith("tick-") and ln.strip()[5:].isdigit()]


def disk_shas(text):
    return [ln.split()[1] for ln in text.splitlines() if ln.startswith("disk-sha ")
            and len(ln.split()) >= 2]


def case_linux(rack):
    image, initrd = h.guest_image()
    a, b = rack.hosts[0], rack.hosts[1]
    name = Linux.name
    boot = float(os.environ.get("MIGRATE_HOSTS_BOOT", "240"))
    mt.create(a, name, "--memory", "256M", "--cpus", "1", "--kernel", image, "--initrd", initrd,
              "--append", LINUX_APPEND, "--disk", "256M")
    mt.start(a, name)
    mt.wait_for(lambda: len(console_ticks(mt.console(a, name))) >= 3, boot,
                f"the guest's ticks on {a.name}", step=1)
    shas = disk_shas(mt.console(a, name))
    check(len(shas) == 1, f"disk-sha lines {shas}")
    rc, res, err = cold(a, name, b, "--confirm-window", "3", timeout=boot + 120)
    check(rc == 0, f"migrate --cold: exit {rc}: {err.strip()}")
    jid = res["job"]
    verify = ((res.get("figures") or {}).get("result") or {}).get("verify", "")
    check("agent answered" in verify, f"verify note {verify!r}")
    check(mt.vm_states(b).get(name) == "running", f"{b.name}: {mt.vm_states(b).get(name)}")
    mt.wait_for(lambda: len(disk_shas(mt.console(b, name))) >= 2, 120,
                f"the guest's disk-sha on {b.name}", step=1)
    log = mt.console(b, name)
    check(disk_shas(log) == [shas[0], shas[0]], f"disk-sha {disk_shas(log)}, want {shas[0]} twice"
                                                f" (the history travelled)")
    j = wait_status(a, jid, timeout=60)
    check(j["status"] == "done", f"job {jid}: {j['status']} {j.get('error')}")
    mt.check_forgotten(a, name)
    return [verify]


def case_suspended(rack):
    a, b = rack.hosts[0], rack.hosts[1]
    name = Linux.name
    if name not in mt.vm_states(b):
        raise Skip("needs the linux case's VM on hb")
    try:
        mt.wait_for(lambda: console_ticks(mt.console(b, name)), 60, "ticks on hb", step=1)
        rc, res, err = mt.migrate(b, name, a, "--suspend", "--resume", "--confirm", "manual")
        check(rc == 0, f"migrate --suspend --resume: exit {rc}: {err.strip()}")
        jid = res["job"]
        ticks = console_ticks(mt.console(a, name))
        last = max(ticks)
        restarts = ticks.count(1)
        mt.wait_for(lambda: max(console_ticks(mt.console(a, name))) >= last + 2, 30,
                    "the counter going on", step=0.5)
        after = console_ticks(mt.console(a, name))
        check(after.count(1) == restarts, f"the guest restarted its counter: {after[-10:]}")
        clock = ((res.get("figures") or {}).get("result") or {}).get("clock", "")
        check("clock set" in clock, f"clock note {clock!r}")
        rc, out, err = b.cli("job", "confirm", str(jid), timeout=60)
        check(rc == 0, f"job confirm: {err.strip()}")
        # suspended here, moved without --resume: it stays suspended there
        rc, out, err = a.cli("vm", "suspend", name, timeout=120)
        check(rc == 0, f"vm suspend: exit {rc}: {(out + err).strip()}")
        rc, res, err = mt.migrate(a, name, b, "--confirm", "manual")
        check(rc == 0, f"migrate (suspended): exit {rc}: {err.strip()}")
        check(mt.vm_states(b).get(name) == "suspended", f"{b.name}: {mt.vm_states(b)}")
        st = os.path.join(mt.vm_dir(b, name), "suspended.state")
        with open(st, "r+b") as f:
            f.seek(os.path.getsize(st) // 2)
            blk = bytearray(f.read(64))
            for i in range(len(blk)):
                blk[i] ^= 0x5a
            f.seek(os.path.getsize(st) // 2)
            f.write(blk)
        rc, out, err = b.cli("vm", "resume", name, timeout=120)
        check(rc != 0 and "saved state is not valid" in err,
              f"resume of a corrupted state: exit {rc}: {err.strip()}")
        check(mt.vm_states(b).get(name) == "suspended", f"{b.name}: {mt.vm_states(b)}")
        return [f"counter {last} -> {max(after)}", clock, f"refused: {err.strip()[:120]}"]
    finally:
        cleanup(rack, name)


def case_hold(rack):
    """A manual hold mid-transfer: the job parks keeping its chunks, stays
    held across a daemon restart, and goes on from there when released."""
    a, b = rack.hosts[0], rack.hosts[1]
    names = ["ch1", "ch2"]
    try:
        stopped_vm(a, names[0], 11, data_mib=40, random_only=True)
        p = disk_path(a, names[0])
        src_sha, src_alloc = sha(p), allocated(p)
        jid = detach(a, names[0], b, "--cold", "--confirm", "manual", "--bandwidth", "120")
        wait_done_share(a, jid, 0.4)
        rc, out, err = a.cli("job", "hold", str(jid), "--reason", "change freeze")
        check(rc == 0, f"job hold: exit {rc}: {(out + err).strip()}")
        j = mt.wait_for(lambda: (lambda x: x if x["status"] == "held" else None)(
            mt.job_show(a, jid)), 10, "the job held")
        h0 = j["holds"][0]
        check(h0["type"] == "manual" and h0["reason"] == "change freeze" and
              "uid 0" in h0["set_by"] and h0["lifted"] is None, f"hold {h0}")
        time.sleep(1.0)  # parked: nothing moves
        d0 = xfer(a, jid)["done"]
        time.sleep(1.5)
        d1 = xfer(a, jid)["done"]
        check(d0 == d1 and 0 < d1 < xfer(a, jid)["total"], f"held, yet done went {d0} -> {d1}")
        rc, out, err = a.cli("job", "list")
        check("held: manual: change freeze" in out, f"job list: {out!r}")
        a.daemon.stop()
        a.start_daemon()
        time.sleep(1.0)
        j = mt.job_show(a, jid)
        check(j["status"] == "held" and xfer(a, jid)["done"] == d1,
              f"after a restart: {j['status']}, done {xfer(a, jid)['done']} (was {d1})")
        rc, out, err = a.cli("job", "release", str(jid))
        check(rc == 0, f"job release: exit {rc}: {(out + err).strip()}")
        j = wait_phase(a, jid, "confirm", timeout=120)
        x = j["figures"]["transfer"]
        check(x["resent"] <= CHUNK, f"resent {x['resent']} after the hold (1 chunk: {CHUNK})")
        check(j["holds"][0]["lifted"] and "uid 0" in j["holds"][0]["lifted"]["by"],
              f"lifted {j['holds'][0]}")
        check_arrived_copy(a, b, names[0], src_sha, src_alloc, "after a hold")
        # refusals
        rc, out, err = a.cli("job", "hold", str(jid))
        check(rc == 2 and "reason" in err, f"hold without a reason: exit {rc}: {err.strip()}")
        rc, out, err = a.cli("job", "hold", str(jid), "--reason", "late")
        check(rc == 1 and "nothing to hold" in err, f"hold in confirm: exit {rc}: {err.strip()}")
        rc, out, err = a.cli("job", "release", str(jid))
        check(rc == 1 and "no active" in err, f"release without a hold: exit {rc}: {err.strip()}")
        did = j["figures"]["destination-job"]
        rc, out, err = b.cli("job", "hold", str(did), "--reason", "x")
        check(rc == 1, f"hold of the destination's job: exit {rc}: {err.strip()}")
        rc, out, err = a.cli("job", "confirm", str(jid), timeout=60)
        check(rc == 0, f"confirm: {err.strip()}")
        rc, out, err = a.cli("job", "hold", str(jid), "--reason", "x")
        check(rc == 1 and "done" in err, f"hold of a finished job: exit {rc}: {err.strip()}")
        # cancelled while held: everything goes back
        stopped_vm(a, names[1], 12, data_mib=24, random_only=True)
        p2 = disk_path(a, names[1])
        sha2 = sha(p2)
        jid2 = detach(a, names[1], b, "--cold", "--confirm", "manual", "--bandwidth", "80")
        wait_done_share(a, jid2, 0.3)
        rc, out, err = a.cli("job", "hold", str(jid2), "--reason", "wait")
        check(rc == 0, f"hold: {err.strip()}")
        mt.wait_for(lambda: mt.job_show(a, jid2)["status"] == "held", 10, "held")
        rc, out, err = a.cli("job", "cancel", str(jid2))
        check(rc == 0, f"cancel of a held job: exit {rc}: {err.strip()}")
        j2 = wait_status(a, jid2, timeout=60)
        check(j2["status"] == "cancelled", f"job {jid2}: {j2['status']} {j2.get('error')}")
        check(mt.vm_states(a).get(names[1]) == "defined" and sha(p2) == sha2,
              f"{a.name}: {mt.vm_states(a).get(names[1])}")
        mt.check_forgotten(b, names[1])
        return [f"held at {d1 >> 20} MiB of {x['total'] >> 20}, resent {x['resent']} bytes"]
    finally:
        cleanup(rack, *names)


def case_after(rack):
    """--after JOB: a dependency hold from the job's first moment, lifted
    when that job finishes (cold and live)."""
    a, b = rack.hosts[0], rack.hosts[1]
    names = ["cd1", "cd2", "cd3"]
    try:
        stopped_vm(a, names[0], 13, data_mib=24, random_only=True)
        stopped_vm(a, names[1], 14, data_mib=8)
        p2 = disk_path(a, names[1])
        sha2, alloc2 = sha(p2), allocated(p2)
        ja = detach(a, names[0], b, "--cold", "--confirm", "manual", "--bandwidth", "120")
        jb = detach(a, names[1], b, "--cold", "--confirm", "manual", "--after", str(ja))
        j = mt.job_show(a, jb)
        check(j["status"] == "held" and j["holds"] and j["holds"][0]["type"] == "dependency" and
              f"job {ja}" in j["holds"][0]["reason"], f"job {jb}: {j['status']} {j['holds']}")
        wait_phase(a, ja, "confirm", timeout=120)
        time.sleep(0.5)
        check(mt.job_show(a, jb)["status"] == "held", "B ran before A finished")
        check(names[1] not in mt.vm_states(b), f"{b.name} already has {names[1]}")
        # a live migration waiting for B (in its confirm phase: not finished)
        mt.create(a, names[2], "--memory", "64M", "--cpus", "1", "--firmware", "none",
                  "--kernel", TICKER, "--no-agent")
        mt.start(a, names[2])
        jl = detach(a, names[2], b, "--live", "--after", str(jb))
        check(mt.job_show(a, jl)["status"] == "held", "the live job is not held")
        rc, out, err = a.cli("job", "confirm", str(ja), timeout=60)
        check(rc == 0, f"confirm A: {err.strip()}")
        j = wait_phase(a, jb, "confirm", timeout=120)
        lifted = j["holds"][0]["lifted"]
        check(lifted and f"job {ja} finished (done)" in lifted["by"], f"lifted {lifted}")
        check_arrived_copy(a, b, names[1], sha2, alloc2, "after its dependency")
        check(mt.job_show(a, jl)["status"] == "held", "the live job ran before B finished")
        mt.check_runs_here(a, names[2], "held live job")
        rc, out, err = a.cli("job", "confirm", str(jb), timeout=60)
        check(rc == 0, f"confirm B: {err.strip()}")
        jlive = wait_status(a, jl, timeout=120)
        check(jlive["status"] == "done", f"live job {jl}: {jlive['status']} {jlive.get('error')}")
        mt.only_on(rack, names[2], b)
        rc, out, err = a.cli("migrate", "nosuch", b.name, "--after", "999999")
        check(rc == 1 and "no job 999999" in err, f"--after an unknown job: exit {rc}: {err}")
        return [f"B waited for {ja}, the live job for {jb}"]
    finally:
        cleanup(rack, *names)


def case_after_vm(rack):
    """--after-vm NAME@PEER: a dependency hold until that VM runs there;
    on a peer (asked over the peers' API) and on this host; refusals."""
    a, b = rack.hosts[0], rack.hosts[1]
    names = ["av1", "av2", "av3", "av4"]
    try:
        stopped_vm(a, names[0], 15, data_mib=4)
        p1 = disk_path(a, names[0])
        sha1, alloc1 = sha(p1), allocated(p1)
        for n in (names[1], names[2]):
            mt.create(a, n, "--memory", "64M", "--cpus", "1", "--firmware", "none",
                      "--kernel", TICKER, "--no-agent")
        mt.start(a, names[1])
        j1 = detach(a, names[0], b, "--cold", "--confirm", "manual", "--after-vm",
                    f"{names[1]}@{b.name}")
        time.sleep(0.5)
        j = mt.job_show(a, j1)
        check(j["status"] in ("held", "running") and j["holds"] and
              j["holds"][0]["type"] == "dependency" and
              f"VM {names[1]} to run on host {b.name}" in j["holds"][0]["reason"],
              f"job {j1}: {j['status']} {j['holds']}")
        time.sleep(3)
        check(mt.job_show(a, j1)["phase"] == "precheck", "the job moved before its dependency")
        check(names[0] not in mt.vm_states(b), f"{b.name} already has {names[0]}")
        # the VM it waits for moves there (live): then it goes
        jl = detach(a, names[1], b, "--live")
        jlive = wait_status(a, jl, timeout=120)
        check(jlive["status"] == "done", f"live job {jl}: {jlive['status']} {jlive.get('error')}")
        j = wait_phase(a, j1, "confirm", timeout=120)
        lifted = j["holds"][0]["lifted"]
        check(lifted and f"VM {names[1]} runs on host {b.name}" in lifted["by"], f"lifted {lifted}")
        check_arrived_copy(a, b, names[0], sha1, alloc1, "after its dependency on a VM")
        rc, out, err = a.cli("job", "confirm", str(j1), timeout=60)
        check(rc == 0, f"confirm: {err.strip()}")
        # on this host: held until the local VM av3 is started
        stopped_vm(a, names[3], 16, data_mib=2)
        j2 = detach(a, names[3], b, "--cold", "--confirm", "manual", "--after-vm",
                    f"{names[2]}@{a.name}")
        time.sleep(2.5)
        j = mt.job_show(a, j2)
        check(j["phase"] == "precheck" and j["holds"] and j["holds"][0]["lifted"] is None,
              f"job {j2} did not wait for {names[2]}: {j['phase']} {j['holds']}")
        mt.start(a, names[2])
        j = wait_phase(a, j2, "confirm", timeout=120)
        check(j["holds"][0]["lifted"], f"the local dependency did not lift: {j['holds']}")
        rc, out, err = a.cli("job", "confirm", str(j2), timeout=60)
        check(rc == 0, f"confirm: {err.strip()}")
        # refusals: a malformed spec, an unknown peer, waiting for itself
        for spec, word in (("nonsense", "NAME@PEER"), (f"x@nosuchhost", "no peer named"),
                           (f"{names[2]}@{b.name}", "wait for itself")):
            rc, out, err = a.cli("migrate", names[2], b.name, "--after-vm", spec)
            check(rc != 0 and word in err, f"--after-vm {spec}: exit {rc}: {err.strip()}")
        return [f"job {j1} waited for {names[1]} to run on {b.name}, job {j2} for {names[2]} "
                f"on {a.name}"]
    finally:
        cleanup(rack, *names)


def case_technical(rack):
    """hc unreachable mid-transfer (the proxy refuses and resets): the job
    sets a technical hold while it retries, lifts it when hc answers again
    and continues; with --give-up-after it fails and puts the VM back."""
    a, c = rack.hosts[0], rack.hosts[2]
    names = ["cq1", "cq2"]
    try:
        stopped_vm(a, names[0], 15, data_mib=24, random_only=True)
        p = disk_path(a, names[0])
        src_sha, src_alloc = sha(p), allocated(p)
        jid = detach(a, names[0], c, "--cold", "--confirm", "manual", "--bandwidth", "80")
        wait_done_share(a, jid, 0.3)
        rack.proxy.refuse(True)
        rack.proxy.cut_now()

        def technical():
            j = mt.job_show(a, jid)
            act = [x for x in j["holds"] if x["type"] == "technical" and x["lifted"] is None]
            return j if j["status"] == "held" and act else None
        j = mt.wait_for(technical, 20, "a technical hold while hc is unreachable", step=0.2)
        reason = [x for x in j["holds"] if x["type"] == "technical"][0]["reason"]
        check("unreachable" in reason and "gives up after 3600 s" in reason, f"reason {reason!r}")
        time.sleep(1.5)
        rack.proxy.refuse(False)
        j = wait_phase(a, jid, "confirm", timeout=120)
        t = [x for x in j["holds"] if x["type"] == "technical"][0]
        check(t["lifted"] and "reachable again" in t["lifted"]["by"], f"technical hold {t}")
        check_arrived_copy(a, c, names[0], src_sha, src_alloc, "after hc came back")
        rc, out, err = a.cli("job", "confirm", str(jid), timeout=60)
        check(rc == 0, f"confirm: {err.strip()}")
        # gives up; hc asks after 2 s of silence whether the source's job still runs
        restart(c, {"GODWITD_COLD_ASK_IDLE_MS": "2000"})
        stopped_vm(a, names[1], 16, data_mib=16, random_only=True)
        jid2 = detach(a, names[1], c, "--cold", "--bandwidth", "80", "--give-up-after", "3")
        wait_done_share(a, jid2, 0.2)
        rack.proxy.refuse(True)
        rack.proxy.cut_now()
        j2 = wait_status(a, jid2, timeout=60)
        check(j2["status"] == "failed" and "gave up after 3 s" in (j2.get("error") or ""),
              f"job {jid2}: {j2['status']}: {j2.get('error')}")
        check(mt.vm_states(a).get(names[1]) == "defined", f"{a.name}: {mt.vm_states(a)}")
        # ha could not tell hc; once it can be asked again hc learns it and
        # throws its partial copy away
        check(names[1] in mt.vm_states(c), f"{c.name} had no partial copy of {names[1]}")
        rack.proxy.refuse(False)
        mt.wait_for(lambda: names[1] not in mt.vm_states(c), 30,
                    f"{c.name} to drop {names[1]} once it learns the source gave up", step=0.5)
        check(not os.path.exists(mt.vm_dir(c, names[1])), f"{c.name} kept {names[1]}'s folder")
        return [reason[:80], f"{c.name} dropped the copy the source gave up on"]
    finally:
        rack.proxy.refuse(False)
        cleanup(rack, *names)
        if c.daemon and os.environ.get("GODWITD_COLD_ASK_IDLE_MS") is None:
            restart(c)


def restart_with(host, *args):
    host.daemon.stop()
    host.start_daemon(*args)


def case_resources(rack):
    """--max-migrations: a second outgoing migration waits on a resources
    hold until the first waits for its confirm; a destination that
    receives its maximum makes the source wait (and ask again)."""
    a, b = rack.hosts[0], rack.hosts[1]
    names = ["cr1", "cr2", "cr3", "cr4"]
    try:
        restart_with(a, "--max-migrations", "1,2")
        for i, n in enumerate(names[:2]):
            stopped_vm(a, n, 17 + i, data_mib=16, random_only=True)
        j1 = detach(a, names[0], b, "--cold", "--confirm", "manual", "--bandwidth", "120")
        j2 = detach(a, names[1], b, "--cold", "--confirm", "manual")
        j = mt.job_show(a, j2)
        check(j["status"] == "held" and j["holds"][0]["type"] == "resources" and
              "--max-migrations 1" in j["holds"][0]["reason"], f"job {j2}: {j['holds']}")
        wait_phase(a, j1, "confirm", timeout=120)
        j = wait_phase(a, j2, "confirm", timeout=120)
        check(j["holds"][0]["lifted"] and "slot is free" in j["holds"][0]["lifted"]["by"],
              f"lifted {j['holds'][0]}")
        for jid in (j1, j2):
            a.cli("job", "confirm", str(jid), timeout=60)
        # the destination's limit: hb receives one at a time
        restart_with(a)
        restart_with(b, "--max-migrations", "2,1")
        for i, n in enumerate(names[2:]):
            stopped_vm(a, n, 19 + i, data_mib=16, random_only=True)
        j3 = detach(a, names[2], b, "--cold", "--confirm", "manual", "--bandwidth", "120")
        wait_done_share(a, j3, 0.1)
        j4 = detach(a, names[3], b, "--cold", "--confirm", "manual")

        def busy():
            x = mt.job_show(a, j4)
            return x if [h_ for h_ in x["holds"] if h_["type"] == "resources"] else None
        j = mt.wait_for(busy, 20, "a resources hold while hb is busy", step=0.2)
        r = [h_ for h_ in j["holds"] if h_["type"] == "resources"][0]
        check("receives 1 migrations at once" in r["reason"], f"reason {r['reason']!r}")
        j = wait_phase(a, j4, "confirm", timeout=120)
        r = [h_ for h_ in j["holds"] if h_["type"] == "resources"][0]
        check(r["lifted"] and "has a slot" in r["lifted"]["by"], f"lifted {r}")
        return []
    finally:
        restart_with(a)
        restart_with(b)
        cleanup(rack, *names)


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def case_window(rack):
    """--window FROM/TO: a cold transfer runs at once but switches over only
    once the window opens (held: window meanwhile); a live migration
    converges and waits held-converged, switching over inside it; windows
    that make no sense are refused."""
    a, b = rack.hosts[0], rack.hosts[1]
    names = ["cw1", "cw2"]
    try:
        stopped_vm(a, names[0], 21, data_mib=8)
        opens = time.time() + 8
        spec = f"{iso(opens)}/{iso(opens + 600)}"
        jid = detach(a, names[0], b, "--cold", "--confirm", "manual", "--window", spec)

        def waiting():
            j = mt.job_show(a, jid)
            w = [h_ for h_ in j["holds"] if h_["type"] == "window" and h_["lifted"] is None]
            return j if w and j["status"] == "held" else None
        j = mt.wait_for(waiting, 30, "the job held for its window", step=0.2)
        check(xfer(a, jid)["done"] == xfer(a, jid)["total"] and time.time() < opens,
              "the transfer did not finish before the window")
        check(mt.vm_states(b).get(names[0]) == "incoming", f"{b.name}: {mt.vm_states(b)}")
        j = wait_phase(a, jid, "confirm", timeout=60)
        check(time.time() >= opens - 1, "it switched over before the window opened")
        w = [h_ for h_ in j["holds"] if h_["type"] == "window"][0]
        check(w["lifted"] and "opened" in w["lifted"]["by"] and "opens" in w["reason"], f"{w}")
        # a live migration waits held-converged for its window, the VM running here meanwhile
        mt.create(a, names[1], "--memory", "64M", "--cpus", "1", "--firmware", "none",
                  "--kernel", TICKER, "--no-agent")
        mt.start(a, names[1])
        opens = time.time() + 5
        jl = detach(a, names[1], b, "--live", "--window", f"{iso(opens)}/{iso(opens + 600)}")
        mt.wait_for(lambda: mt.job_show(a, jl)["status"] == "held", 10, "the live job held")
        mt.check_runs_here(a, names[1], "live job waiting for its window")
        jlive = wait_status(a, jl, timeout=120)
        check(jlive["status"] == "done" and time.time() >= opens - 1,
              f"live job {jl}: {jlive['status']} {jlive.get('error')}")
        for bad, why in (("25:00-01:00", "HH:MM"), ("10:00-10:00", "empty"),
                         (f"{iso(time.time() - 100)}/{iso(time.time() - 50)}", "over already"),
                         (f"{iso(time.time() + 100)}/{iso(time.time() + 50)}", "ends before")):
            rc, out, err = a.cli("migrate", "nosuch", b.name, "--cold", "--window", bad)
            check(rc == 1 and why in err, f"--window {bad}: exit {rc}: {err.strip()}")
        a.cli("job", "confirm", str(jid), timeout=60)
        return []
    finally:
        cleanup(rack, *names)


def as_other_user(host, *args, timeout=60):
    """`godwit ARGS` as uid/gid 65534 (nobody) through setpriv: the socket
    and the folders to it opened for the call (the test's doing: a real
    host would give operators a group)."""
    paths = [host.sock]
    d = os.path.dirname(host.sock)
    while d not in ("/", ""):
        paths.append(d)
        d = os.path.dirname(d)
    modes = {p: os.stat(p).st_mode & 0o7777 for p in paths}
    try:
        for p in paths:
            os.chmod(p, modes[p] | (0o666 if p == host.sock else 0o711))
        r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                            agent.godwit(), "-H", f"unix:{host.sock}", *args],
                           capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr
    finally:
        for p, m in modes.items():
            os.chmod(p, m)


def case_compliance(rack):
    """A host policy: VMs labelled data=eu-only go only to region=eu hosts
    (else refused), VMs labelled tier=prod need an approval, four-eyes."""
    a, b, c = rack.hosts
    names = ["cp1", "cp2"]
    policy = os.path.join(a.state, "policy.json")
    try:
        if subprocess.run(["which", "setpriv"], capture_output=True).returncode:
            raise Skip("no setpriv (util-linux) for the second user")
        restart_with(b, "--label", "region=eu")
        restart_with(c, "--label", "region=us")
        with open(policy, "w") as f:
            json.dump({"four_eyes": True, "rules": [
                {"vm_label": "data=eu-only", "require_host_label": "region=eu"},
                {"vm_label": "tier=prod", "approval": True}]}, f)
        mt.create(a, names[0], "--memory", "64M", "--firmware", "none", "--kernel", TICKER,
                  "--no-agent", "--label", "data=eu-only")
        rc, res, err = cold(a, names[0], c)
        check(rc == 1 and "refused by policy" in err and "region=eu" in err,
              f"to a region=us host: exit {rc}: {err.strip()}")
        check(mt.vm_states(a).get(names[0]) == "defined", f"{a.name}: {mt.vm_states(a)}")
        rc, res, err = cold(a, names[0], b, "--confirm", "manual")
        check(rc == 0, f"to a region=eu host: exit {rc}: {err.strip()}")
        mt.create(a, names[1], "--memory", "64M", "--firmware", "none", "--kernel", TICKER,
                  "--no-agent", "--label", "tier=prod")
        jid = detach(a, names[1], b, "--cold", "--confirm", "manual")
        j = mt.wait_for(lambda: (lambda x: x if x["status"] == "held" else None)(
            mt.job_show(a, jid)), 20, "held for an approval")
        h0 = [x for x in j["holds"] if x["type"] == "compliance"][0]
        check("approval" in h0["reason"] and "four-eyes" in h0["reason"], f"{h0}")
        rc, out, err = a.cli("job", "approve", str(jid))
        check(rc == 1 and "four-eyes" in err, f"approved by its starter: exit {rc}: {err}")
        rc, out, err = as_other_user(a, "job", "approve", str(jid), "--note", "change 42")
        check(rc == 0, f"approved by uid 65534: exit {rc}: {(out + err).strip()}")
        j = wait_phase(a, jid, "confirm", timeout=60)
        h0 = [x for x in j["holds"] if x["type"] == "compliance"][0]
        check(h0["lifted"] and "approved by uid 65534" in h0["lifted"]["by"] and
              "change 42" in h0["lifted"]["by"], f"lifted {h0}")
        rc, out, err = a.cli("job", "approve", str(jid))
        check(rc == 1 and "no approval" in err, f"approve again: exit {rc}: {err.strip()}")
        return [h0["lifted"]["by"]]
    finally:
        if os.path.exists(policy):
            os.unlink(policy)
        restart_with(b)
        restart_with(c)
        cleanup(rack, *names)


def case_budget(rack):
    """policy.json "budget": {"hb": "24M"}: a job that fits runs, one that
    would go over today's budget waits (budget hold), one larger than the
    whole budget is refused."""
    a, b = rack.hosts[0], rack.hosts[1]
    names = ["cb1", "cb2"]
    policy = os.path.join(a.state, "policy.json")
    try:
        # what earlier cases sent to hb today counts against the budget too
        rc, out, err = a.cli("--json", "job", "list", "--all")
        before = 0
        for x in json.loads(out):
            f_ = x.get("figures") or {}
            if x.get("direction") == "out" and x.get("peer") == b.name:
                before += ((f_.get("transfer") or {}).get("wire") or
                           (f_.get("ram") or {}).get("transferred") or 0)
        budget_mib = (before >> 20) + 1 + 24
        with open(policy, "w") as f:
            json.dump({"budget": {b.name: f"{budget_mib}M"}}, f)
        stopped_vm(a, names[0], 22, data_mib=8, random_only=True)
        stopped_vm(a, names[1], 23, data_mib=16, random_only=True)
        rc, res, err = cold(a, names[0], b, "--confirm", "manual")
        check(rc == 0, f"within the budget: exit {rc}: {err.strip()}")
        used = res["figures"]["transfer"]["wire"]
        jid = detach(a, names[1], b, "--cold", "--confirm", "manual")

        def waiting():
            j = mt.job_show(a, jid)
            w = [x for x in j["holds"] if x["type"] == "budget" and x["lifted"] is None]
            return j if w else None
        j = mt.wait_for(waiting, 20, "a budget hold", step=0.2)
        r = [x for x in j["holds"] if x["type"] == "budget"][0]["reason"]
        check(f"daily budget to host hb is {budget_mib} MiB" in r and "next day" in r,
              f"reason {r!r}")
        check(mt.vm_states(a).get(names[1]) == "defined", f"{a.name}: {mt.vm_states(a)}")
        rc, out, err = a.cli("job", "cancel", str(jid))
        check(rc == 0, f"cancel: {err.strip()}")
        check(wait_status(a, jid, timeout=30)["status"] == "cancelled", "not cancelled")
        with open(policy, "w") as f:  # smaller than the VM's data, whatever was sent today
            json.dump({"budget": {b.name: "4M"}}, f)
        rc, res, err = cold(a, names[1], b, timeout=60)
        check(rc == 1 and "more than the daily budget" in err, f"too big: exit {rc}: {err}")
        return [f"{used >> 20} MiB used, the second waits"]
    finally:
        if os.path.exists(policy):
            os.unlink(policy)
        cleanup(rack, *names)


CASES = [
    ("stopped", case_stopped),
    ("revert", case_revert),
    ("link-cut", case_link_cut),
    ("bit-flip", case_bit_flip),
    ("kill-src", case_kill_src),
    ("kill-dst", case_kill_dst),
    ("disk-full", case_disk_full),
    ("shutdown-timeout", case_shutdown_timeout),
    ("hold", case_hold),
    ("after", case_after),
    ("after-vm", case_after_vm),
    ("technical", case_technical),
    ("resources", case_resources),
    ("window", case_window),
    ("compliance", case_compliance),
    ("budget", case_budget),
    ("linux", case_linux),
    ("suspended", case_suspended),
]


def pair_with_proxy(rack):
    """ha-hb and hb-hc directly; ha -> hc through a proxy in hc's
    namespace (ha stores the proxy as hc's address), hc -> ha direct."""
    a, b, c = rack.hosts
    for x, y in ((a, b), (b, c)):
        rc, out, err = y.cli("peer", "token", "--address", y.listen)
        check(rc == 0, f"{y.name}: peer token: {err}")
        rc, out, err = x.cli("peer", "add", y.name, out.split()[-1], timeout=60)
        check(rc == 0, f"{x.name}: peer add {y.name}: {(out + err).strip()}")
    port = int(c.listen.rsplit(":", 1)[1])
    rack.proxy = ProxyProcess(c.exec([]), (c.ip, port + 1000), (c.ip, port))
    rc, out, err = c.cli("peer", "token", "--address", f"{c.ip}:{port + 1000}")
    check(rc == 0, f"{c.name}: peer token: {err}")
    rc, out, err = a.cli("peer", "add", c.name, out.split()[-1], timeout=60)
    check(rc == 0, f"{a.name}: peer add {c.name}: {(out + err).strip()}")


def run():
    rep = h.Report()
    only = os.environ.get("COLD_HOSTS_CASES", "")
    want = [c for c in CASES if not only or c[0] in only.split(",")]
    why = None
    if not os.access(agent.godwitd(), os.X_OK) or not os.access(h.godwit_vm(), os.X_OK):
        why = f"{agent.godwitd()} or {h.godwit_vm()} is not built (make)"
    elif not os.path.exists(TICKER):
        why = f"the bare-metal guests are not built ({mt.GUEST})"
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
        with Rack(PREFIX, 3) as rack:
            rack.proxy = None
            try:
                pair_with_proxy(rack)
                for name, fn in want:
                    done.add(name)
                    rep.case(name, fn, rack, hint=f"logs: {h.log_dir('hosts')} "
                                                  f"(godwitd-{PREFIX}-h*.log)")
            finally:
                if rack.proxy:
                    rack.proxy.stop()
    except Exception as e:
        for name, _ in want:
            if name not in done:
                rep.fail(name, f"rack: {e}")
    return rep.summary()


if __name__ == "__main__":
    h.main(run)
