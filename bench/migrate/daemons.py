#!/usr/bin/env python3
"""Live migration through the daemons against the direct QMP migration
(bench/migrate/daemons.sh, `make bench-migrate-daemons`).

Two godwitd on this host (ha, hb: --listen 127.0.0.1:PORT, paired with a
join token), and for each guest, BENCH_RUNS times, alternating (never in
parallel), three ways of moving the same guest (-m BENCH_MIGRATE_MEM, 1
hart, downtime-limit BENCH_MIGRATE_DOWNTIME, bandwidth unlimited):

  direct      two godwit-vm processes started by this script, destination
              `-incoming tcp:127.0.0.1:PORT`, QMP `migrate` on the source
              (plain TCP, what bench/migrate/run.sh measures);
  direct-tls  the same with `-object tls-creds-psk` on both sides (a fresh
              key file), the destination `-incoming defer`,
              `migrate-set-parameters tls-creds` then `migrate-incoming`:
              the channel the daemons use, without the daemons;
  daemons     `godwit vm create/start` on ha, then
              `godwit --json migrate NAME hb --live --downtime-limit MS`
              (godwitd's job: precheck, prepare with the boot-file upload and
              the destination's spawn, a fresh TLS-PSK key, transfer,
              switchover, ownership, console log).

Measured:
  wall          direct: from `migrate` to query-migrate saying completed
                (polled every 20 ms); daemons: the CLI call, from exec to its
                exit (it polls the job every 200 ms), and the job's own span
                (ended - created, the daemon's clock)
  total-time    godwit-vm's own (query-migrate, the job's figures)
  downtime      query-migrate's
  pause         the largest mtime gap between consecutive `tick N t=MTIME`
                lines from the last tick before `migrate` on (direct: the
                serial output; daemons: the destination's console log, which
                starts with the source's); godwit-vm's mtime keeps counting
                across a migration, so the gap is the stall the guest saw
  MiB           ram.transferred
  phases        daemons: the source job's history (precheck, prepare,
                transfer, switchover, done) and, inside prepare, the boot-file
                upload (the destination job's creation to the last received
                file's mtime) and the destination's spawn (to its qmp.sock)

Then the channel's rate: mig_fill (RAM filled once with pseudo-random words,
then idle) with -m BENCH_TLS_MEM migrated direct, plain and TLS, on godwit-vm
and (BENCH_TLS_QEMU=1, the default when installed) QEMU 7.2:
MB/s = ram.transferred / total-time.

Prints a line per run on stderr, the tables on stdout.
env: BUILD, BENCH_RUNS (3), BENCH_MIGRATE_MEM (256M), BENCH_MIGRATE_DOWNTIME
(300), BENCH_MIGRATE_WARMUP (2 s), BENCH_MIGRATE_TIMEOUT (60 s),
BENCH_DAEMONS_GUESTS (mig_ticker,mig_dirty,mig_fill,linux), BENCH_DAEMONS_MODES
(direct,direct-tls,daemons), BENCH_TLS_MEM (1G; 0 skips the rate part),
BENCH_TLS_RUNS (BENCH_RUNS), BENCH_TLS_QEMU (1 when qemu-system-riscv64 is
installed), BENCH_TIMEOUT (Linux boot, 300 s), BENCH_LOGS.
Exit status: 0 ok, 1 a run failed, 2 setup error.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import migrate as mb  # noqa: E402  (VM, poll_migration, pause_metrics, ...)
import harness as h  # noqa: E402  (tests/lib, put on the path by migrate)
from harness import check  # noqa: E402
from migration import Emu, baremetal_args  # noqa: E402
import agent  # noqa: E402

ROOT = mb.ROOT
TICK_RE = re.compile(r"^tick (\d+) t=(\d+)")
GUESTS = {"mig_ticker": "idle", "mig_dirty": "dirty 16MiB/s",
          "mig_fill": "filled (all RAM random, then idle)", "linux": "linux idle at its shell"}
MODES = ["direct", "direct-tls", "daemons"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def write_psk(d):
    os.makedirs(d, mode=0o700, exist_ok=True)
    path = os.path.join(d, "keys.psk")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, f"qemu:{os.urandom(32).hex()}\n".encode())
    os.close(fd)
    return d


# ---- direct: two processes and QMP --------------------------------------------------


def guest_args(emu, prog, elf, mem):
    if prog == "linux":
        return mb.linux_args(emu, mem)
    return baremetal_args(elf, mem)


def direct_run(emu, tag, prog, elf, mem, tls, cfg, tmp, rate=False):
    """One direct migration (plain or TLS); a dict of metrics.  rate: the
    channel-rate runs (no warm-up, no pause)."""
    linux = prog == "linux"
    args = guest_args(emu, prog, elf, mem)
    port = h.free_port()
    uri = f"tcp:127.0.0.1:{port}"
    sargs, dargs, incoming = list(args), list(args), uri
    if tls:
        kd = write_psk(os.path.join(tmp, f"{tag}.psk"))
        sargs += ["-object", f"tls-creds-psk,id=t0,endpoint=client,dir={kd}"]
        dargs += ["-object", f"tls-creds-psk,id=t0,endpoint=server,dir={kd}"]
        incoming = "defer"
    src = mb.VM(emu, f"{tag}.src", sargs, tmp, cfg["logs"], stdin=linux)
    dst = mb.VM(emu, f"{tag}.dst", dargs, tmp, cfg["logs"], incoming=incoming, stdin=linux)
    try:
        # 0 is "unlimited" on godwit-vm; QEMU 7.2 takes it literally
        bw = 0 if emu.kind == "godwit" else mb.UNLIMITED_BW
        for vm in (src, dst):
            vm.cmd("migrate-set-parameters",
                   **{"downtime-limit": cfg["downtime"], "max-bandwidth": bw})
            if tls:
                vm.cmd("migrate-set-parameters", **{"tls-creds": "t0"})
        if tls:
            dst.cmd("migrate-incoming", uri=uri)
        if linux:
            check(src.wait_line(mb.LINUX_MARKER, cfg["boot_timeout"]) is not None,
                  f"{tag}: Linux did not reach its init")
            time.sleep(cfg["warmup"] + 3)
        else:
            # mig_fill ticks once its RAM is filled
            src.wait_ticks(1, cfg["fill_timeout"] if prog == "mig_fill" else 30)
            time.sleep(0.5 if rate else cfg["warmup"])
        t0 = time.monotonic()
        src.cmd("migrate", uri=uri)
        info, wall, timed_out = mb.poll_migration(src, cfg["timeout"])
        if timed_out:
            mb.cancel(src)
            raise AssertionError(f"did not converge in {cfg['timeout']:.0f} s")
        check(info.get("status") == "completed", f"{tag}: migration {info}")
        dst.wait_status(("running",), 20)
        ram = info.get("ram", {})
        r = {"wall": wall * 1000, "total": info.get("total-time"),
             "downtime": info.get("downtime"), "transferred": ram.get("transferred"),
             "syncs": ram.get("dirty-sync-count")}
        if not linux and not rate:
            t_done = time.monotonic()
            dst.wait_ticks(20, 20, since=t_done)
            st, dt = src.ticks(t0 - 0.05), dst.ticks()
            _, _, pm = mb.pause_metrics(st, dt)
            r["pause"] = pm
            after = [t for t in dt if t[1] > st[-1][1]]
            if st and after:
                r["switch"] = (after[0][2] - st[-1][2]) / 1e4
                r["gap_src"] = max((b[2] - a[2] for a, b in zip(st, st[1:])), default=0) / 1e4
                r["gap_dst"] = max((b[2] - a[2] for a, b in zip(after, after[1:])), default=0) / 1e4
        return r
    finally:
        src.kill()
        dst.kill()


# ---- through the daemons ------------------------------------------------------------


class Hosts:
    """ha and hb on 127.0.0.1, paired (ha trusts hb, and hb ha)."""

    def __init__(self, tmp, cfg):
        self.daemons = []
        for name in ("ha", "hb"):
            port = h.free_port()
            d = agent.Daemon(os.path.join(tmp, name), "--name", name, "--listen",
                             f"127.0.0.1:{port}", log_name=f"bench-{name}")
            self.daemons.append(d)
            d.name = name
            d.wait_socket()
        self.ha, self.hb = self.daemons
        tok = agent.cli_json(self.hb.sock, "peer", "token")["token"]
        rc, out, err = self.ha.cli("peer", "add", "hb", tok)
        check(rc == 0, f"peer add hb: exit {rc}: {err.strip()}")

    def stop(self):
        for d in self.daemons:
            d.stop()


def console_path(d, vm):
    return os.path.join(d.state, "vms", vm, "console.log")


def read_ticks(path):
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return [], ""
    out = []
    for line in text.splitlines():
        m = TICK_RE.match(line.strip())
        if m:
            out.append((int(m.group(1)), int(m.group(2))))
    return out, text


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what}: not after {timeout:.0f} s")


def job_get(d, jid):
    st, j = d.api("GET", f"/1.0/jobs/{jid}")
    check(st == 200, f"GET /1.0/jobs/{jid} on {d.name}: {st} {j}")
    return j


def phase_times(job):
    """[(phase, unix ms)] from a job's history: its creation (the first
    phase), each phase change, and its end ("end")."""
    out = []
    for ev in job.get("history") or []:
        t, data = ev.get("time"), ev.get("data") or {}
        if ev.get("type") == "job-created":
            out.append((data.get("phase", "created"), t))
        elif ev.get("type") == "job-phase":
            out.append((data.get("phase"), t))
        elif ev.get("type") == "job-finished":
            out.append(("end", t))
    return out


def mtime_ms(path):
    try:
        return os.stat(path).st_mtime_ns / 1e6
    except OSError:
        return None


def daemons_run(hosts, seq, prog, elf, image, cfg):
    """One `godwit migrate` ha -> hb; a dict of metrics."""
    ha, hb = hosts.ha, hosts.hb
    name = f"b{seq}"
    linux = prog == "linux"
    create = ["vm", "create", name, "--memory", cfg["mem"], "--cpus", "1", "--no-agent"]
    if linux:
        create += ["--firmware", "default", "--kernel", image[0], "--initrd", image[1],
                   "--append", "console=ttyS0"]
    else:
        create += ["--firmware", "none", "--kernel", elf]
    src_log = None
    try:
        for args in (create, ["vm", "start", name]):
            rc, out, err = ha.cli(*args)
            check(rc == 0, f"godwit {' '.join(args[:2])}: exit {rc}: {err.strip()}")
        clog = console_path(ha, name)
        if linux:
            wait_for(lambda: mb.LINUX_MARKER in read_ticks(clog)[1], cfg["boot_timeout"],
                     "Linux init on ha")
            time.sleep(cfg["warmup"] + 3)
        else:
            wait_for(lambda: read_ticks(clog)[0], cfg["fill_timeout"] if prog == "mig_fill" else 30,
                     "a tick on ha")
            time.sleep(cfg["warmup"])
        ticks, _ = read_ticks(clog)
        n0 = ticks[-1][0] if ticks else 0
        # kept open: the source's log stays readable after the VM leaves ha
        src_log = open(clog, "rb")
        argv = [agent.godwit(), "-H", "unix:" + ha.sock, "--json", "migrate", name, "hb",
                "--live", "--downtime-limit", str(cfg["downtime"])]
        t0 = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True, timeout=cfg["timeout"] + 60)
        wall = (time.monotonic() - t0) * 1000
        check(p.returncode == 0, f"godwit migrate: exit {p.returncode}: {p.stderr.strip()[-300:]}")
        res = json.loads(p.stdout)
        sjob = job_get(ha, res["job"])
        djid = (res.get("figures") or {}).get("destination-job")
        djob = wait_for(lambda: (lambda j: j if j.get("status") in ("done", "failed") else None)(
            job_get(hb, djid)), 40, "the destination's job to end")
        check(djob["status"] == "done", f"destination job {djid}: {djob.get('error')}")
        r = {"wall": wall, "total": res.get("total_time_ms"), "downtime": res.get("downtime_ms"),
             "transferred": res.get("bytes"), "syncs": res.get("rounds"),
             "job": (sjob["ended"] - sjob["created"]) if sjob.get("ended") else None}
        # phases of the source's job, in ms
        ph = phase_times(sjob)
        for (a, ta), (_, tb) in zip(ph, ph[1:]):
            r[f"ph_{a}"] = r.get(f"ph_{a}", 0) + (tb - ta)
        # inside prepare: upload of the boot files, spawn of the destination
        vdir = os.path.join(hb.state, "vms", name)
        dcreated = djob.get("created")
        files = [mtime_ms(os.path.join(vdir, f)) for f in ("kernel", "initrd")]
        files = [f for f in files if f]
        sock = mtime_ms(os.path.join(vdir, "qmp.sock"))
        tprep = dict(ph).get("prepare")
        ttransfer = dict(ph).get("transfer")
        if tprep and dcreated and files:
            r["pre_create"] = dcreated - tprep
            r["pre_upload"] = max(files) - dcreated
            if sock:
                r["pre_spawn"] = sock - max(files)
                if ttransfer:
                    r["pre_start"] = ttransfer - sock
        r["cli_extra"] = wall - r["job"] if r["job"] else None
        # the transfer phase ends at the first 200 ms poll that sees the end
        if r.get("ph_transfer") is not None and r["total"] is not None:
            r["poll_lag"] = r["ph_transfer"] - r["total"]
        if not linux:
            dlog = console_path(hb, name)
            last = wait_for(lambda: (lambda t: t if t and t[-1][0] > n0 + 40 else None)(
                read_ticks(dlog)[0]), 20, "ticks on hb")
            seq_t = [t for t in last if t[0] >= n0]
            check(all(b[0] == a[0] + 1 for a, b in zip(seq_t, seq_t[1:])),
                  "the console log's ticks do not count up by one across the migration")
            r["pause"] = max(b[1] - a[1] for a, b in zip(seq_t, seq_t[1:])) / 1e4
            # the switchover: the source's last tick to the next one
            src_ticks = [int(m.group(1)) for m in (TICK_RE.match(x.strip()) for x in
                         src_log.read().decode(errors="replace").splitlines()) if m]
            by_n = dict(last)
            if src_ticks and src_ticks[-1] + 1 in by_n:
                ns = src_ticks[-1]
                r["switch"] = (by_n[ns + 1] - by_n[ns]) / 1e4
                gaps = [(a[0], b[1] - a[1]) for a, b in zip(seq_t, seq_t[1:])]
                r["gap_src"] = max((g for n, g in gaps if n < ns), default=0) / 1e4
                r["gap_dst"] = max((g for n, g in gaps if n > ns), default=0) / 1e4
        return r
    finally:
        if src_log:
            src_log.close()
        for d in (hb, ha):
            if os.path.isdir(os.path.join(d.state, "vms", name)):
                d.cli("vm", "kill", name, timeout=30)
                d.cli("vm", "delete", name, timeout=30)


# ---- reporting ------------------------------------------------------------------------


def med(rs, key):
    vals = [r[key] for r in rs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, f="%.0f"):
    return "-" if v is None else f % v


ROWS = [("wall ms (migrate cmd -> done)", "wall", "%.0f"),
        ("  job span ms (created -> ended)", "job", "%.0f"),
        ("total-time ms (godwit-vm's)", "total", "%.0f"),
        ("orchestration ms (wall - total)", "orch", "%.0f"),
        ("downtime ms (query-migrate)", "downtime", "%.0f"),
        ("pause ms (largest mtime tick gap)", "pause", "%.1f"),
        ("  before: on the source", "gap_src", "%.1f"),
        ("  the switchover gap", "switch", "%.1f"),
        ("  after: on the destination", "gap_dst", "%.1f"),
        ("MiB transferred", "mib", "%.2f"),
        ("dirty syncs", "syncs", "%.0f")]
PHASES = [("  precheck", "ph_precheck"), ("  prepare", "ph_prepare"),
          ("    POST /incoming", "pre_create"), ("    boot-file upload", "pre_upload"),
          ("    destination spawn", "pre_spawn"), ("    key, QMP, migrate", "pre_start"),
          ("  transfer", "ph_transfer"), ("    of which after completed", "poll_lag"),
          ("  switchover..done", "ph_switchover"),
          ("  resolve", "ph_resolve"), ("  CLI poll and exec", "cli_extra")]


def summarize(rs):
    for r in rs:
        if r.get("transferred") is not None:
            r["mib"] = r["transferred"] / 2**20
        if r.get("wall") is not None and r.get("total") is not None:
            r["orch"] = r["wall"] - r["total"]
    keys = {k for r in rs for k in r}
    return {k: med(rs, k) for k in keys}


def print_guests(cfg, guests, modes, res):
    print(f"live migration through the daemons vs direct QMP, godwit-vm, -m {cfg['mem']}, "
          f"downtime-limit {cfg['downtime']} ms, bandwidth unlimited, median of {cfg['runs']}")
    print(f"{'guest / metric':<36}" + "".join(f"{m:>12}" for m in modes) +
          ("   daemons/direct" if "daemons" in modes and "direct" in modes else ""))
    verdicts = []
    for prog in guests:
        print(GUESTS[prog])
        s = {m: summarize([r for r in res.get((prog, m), []) if "error" not in r]) for m in modes}
        for label, key, f in ROWS:
            vals = [s[m].get(key) for m in modes]
            if all(v is None for v in vals):
                continue
            line = f"  {label:<34}" + "".join(f"{fmt(v, f):>12}" for v in vals)
            if "daemons" in modes and "direct" in modes:
                a, b = s["daemons"].get(key), s["direct"].get(key)
                if key in ("pause", "switch", "gap_src", "gap_dst") and a is not None and b is not None:
                    line += f"   {a - b:+.1f} ms"
                elif a is not None and b:
                    line += f"   {a / b:.2f}x"
            print(line)
        if "daemons" in modes:
            print("  daemons' job phases, ms")
            for label, key in PHASES:
                v = s["daemons"].get(key)
                if v is not None:
                    print(f"  {label:<34}{fmt(v):>12}")
        for m in modes:
            errs = [r["error"] for r in res.get((prog, m), []) if "error" in r]
            if errs:
                print(f"  note: {m}: {len(errs)} run(s) failed: {errs[0][:200]}")
        if "daemons" in modes and "direct" in modes:
            d, p = s["daemons"], s["direct"]
            if d.get("wall") and p.get("total"):
                ratio = d["wall"] / p["total"]
                ok = ratio <= 1.10
                verdicts.append(f"{GUESTS[prog]}: total time {d['wall']:.0f} ms through the "
                                f"daemons vs {p['total']:.0f} ms direct = {ratio:.2f}x "
                                f"({'meets' if ok else 'misses'} <= 1.10x)")
                if d.get("total"):
                    verdicts.append(f"  engine alone (TLS): {d['total']:.0f} vs "
                                    f"{p['total']:.0f} ms = {d['total'] / p['total']:.2f}x")
            for key, what in (("pause", "pause (largest gap)"), ("switch", "switchover gap")):
                if d.get(key) is not None and p.get(key) is not None:
                    delta = d[key] - p[key]
                    verdicts.append(f"  {what} {d[key]:.1f} vs {p[key]:.1f} ms = {delta:+.1f} ms "
                                    f"({'meets' if delta <= 2 else 'misses'} <= +2 ms)")
    print("wall: direct = `migrate` to completed (20 ms polls); daemons = the CLI call "
          "(it polls the job every 200 ms)")
    if verdicts:
        print("goal (TLS + orchestration <= +10 % total time, <= +2 ms pause):")
        for v in verdicts:
            print("  " + v)


def print_rate(cfg, rate):
    print(f"\nchannel rate: mig_fill (RAM filled with pseudo-random words once, then idle), "
          f"-m {cfg['tls_mem']}, direct, bandwidth unlimited, median of {cfg['tls_runs']}")
    print(f"{'emulator / channel':<24}{'total ms':>10}{'MiB':>10}{'MB/s':>10}{'vs plain':>10}")
    for emu in ("godwit", "qemu"):
        base = None
        for tls in (False, True):
            rs = [r for r in rate.get((emu, tls), []) if "error" not in r]
            if not rate.get((emu, tls)):
                continue
            for r in rs:
                r["mbs"] = r["transferred"] / 1e6 / (r["total"] / 1000) if r["total"] else None
            mbs = med(rs, "mbs")
            if not tls:
                base = mbs
            rel = f"{mbs / base:.2f}x" if tls and mbs and base else ""
            print(f"{emu + (' TLS-PSK' if tls else ' plain TCP'):<24}{fmt(med(rs, 'total')):>10}"
                  f"{fmt(med(rs, 'transferred') and med(rs, 'transferred') / 2**20):>10}"
                  f"{fmt(mbs):>10}{rel:>10}")
            errs = [r["error"] for r in rate.get((emu, tls), []) if "error" in r]
            if errs:
                print(f"  note: {len(errs)} run(s) failed: {errs[0][:200]}")
    print("MB/s = ram.transferred / total-time (10^6 bytes per second)")


# ---- main -----------------------------------------------------------------------------


def config():
    build = os.environ.get("BUILD", "build/release")
    runs = int(os.environ.get("BENCH_RUNS", "3"))
    qemu = os.environ.get("QEMU", "qemu-system-riscv64")
    return {
        "runs": runs,
        "mem": os.environ.get("BENCH_MIGRATE_MEM", "256M"),
        "downtime": int(os.environ.get("BENCH_MIGRATE_DOWNTIME", "300")),
        "timeout": float(os.environ.get("BENCH_MIGRATE_TIMEOUT", "60")),
        "warmup": float(os.environ.get("BENCH_MIGRATE_WARMUP", "2")),
        "boot_timeout": float(os.environ.get("BENCH_TIMEOUT", "300")),
        "fill_timeout": 180.0,
        "guests": os.environ.get("BENCH_DAEMONS_GUESTS", "mig_ticker,mig_dirty,mig_fill,linux").split(","),
        "modes": os.environ.get("BENCH_DAEMONS_MODES", ",".join(MODES)).split(","),
        "tls_mem": os.environ.get("BENCH_TLS_MEM", "1G"),
        "tls_runs": int(os.environ.get("BENCH_TLS_RUNS", str(runs))),
        "tls_qemu": os.environ.get("BENCH_TLS_QEMU", "1" if shutil.which(qemu) else "0") == "1",
        "godwit": os.environ.get("GODWIT", os.path.join(ROOT, build, "godwit-vm")),
        "qemu": qemu,
        "logs": os.environ.get("BENCH_LOGS", os.path.join(ROOT, build, "bench", "migrate")),
    }


def main():
    cfg = config()
    for g in cfg["guests"]:
        if g not in GUESTS:
            log(f"bench-migrate-daemons: unknown guest {g} (known: {', '.join(GUESTS)})")
            return 2
    for m in cfg["modes"]:
        if m not in MODES:
            log(f"bench-migrate-daemons: unknown mode {m} (known: {', '.join(MODES)})")
            return 2
    for b in (cfg["godwit"], agent.godwitd(), agent.godwit()):
        if not os.access(b, os.X_OK):
            log(f"bench-migrate-daemons: {b} is not built (make)")
            return 2
    progs = [g for g in cfg["guests"] if g != "linux"]
    progs += [] if "mig_fill" in progs else ["mig_fill"]
    elfs = mb.build_guests(progs, "bench-migrate-daemons")
    if elfs is None:
        return 2
    elf = dict(zip(progs, elfs))
    image = None
    if "linux" in cfg["guests"]:
        try:
            image = h.guest_image()
        except h.Skip as e:
            log(f"bench-migrate-daemons: the Linux row is skipped: {e}")
            cfg["guests"].remove("linux")
    os.makedirs(cfg["logs"], exist_ok=True)
    godwit = Emu("godwit", cfg["godwit"])
    failed = False
    res, rate = {}, {}
    seq = 0
    with tempfile.TemporaryDirectory(prefix="godwit-bench-daemons-") as tmp:
        hosts = Hosts(tmp, cfg) if "daemons" in cfg["modes"] else None
        try:
            for prog in cfg["guests"]:
                for i in range(1, cfg["runs"] + 1):
                    k = (i - 1) % len(cfg["modes"])
                    order = cfg["modes"][k:] + cfg["modes"][:k]
                    for mode in order:
                        seq += 1
                        tag = f"daemons.{prog}.{mode}.{i}"
                        try:
                            if mode == "daemons":
                                r = daemons_run(hosts, seq, prog, elf.get(prog), image, cfg)
                            else:
                                r = direct_run(godwit, tag, prog, elf.get(prog), cfg["mem"],
                                               mode == "direct-tls", cfg, tmp)
                        except Exception as e:
                            failed = True
                            r = {"error": str(e)[:300]}
                            log(f"run {i} {prog} {mode}: failed: {e}")
                        else:
                            log(f"run {i} {prog} {mode}: wall {r['wall']:.0f} ms, total "
                                f"{r['total']} ms, downtime {r['downtime']} ms, "
                                f"{(r['transferred'] or 0) / 2**20:.1f} MiB, pause "
                                f"{fmt(r.get('pause'), '%.1f')} ms (source {fmt(r.get('gap_src'), '%.1f')}, switchover "
                                f"{fmt(r.get('switch'), '%.1f')}, destination {fmt(r.get('gap_dst'), '%.1f')})" +
                                (f", job {r['job']} ms, phases " + " ".join(
                                    f"{k[3:]}={v:.0f}" for k, v in r.items()
                                    if k.startswith("ph_")) + ", prepare: " + " ".join(
                                    f"{k[4:]}={v:.0f}" for k, v in r.items()
                                    if k.startswith("pre_")) if mode == "daemons" else ""))
                        res.setdefault((prog, mode), []).append(r)
        finally:
            if hosts:
                hosts.stop()
        if cfg["tls_mem"] not in ("0", ""):
            emus = [godwit] + ([Emu("qemu", cfg["qemu"])] if cfg["tls_qemu"] else [])
            for i in range(1, cfg["tls_runs"] + 1):
                for emu in emus:
                    for tls in ((False, True) if i % 2 else (True, False)):
                        tag = f"rate.{emu.kind}.{'tls' if tls else 'plain'}.{i}"
                        try:
                            r = direct_run(emu, tag, "mig_fill", elf["mig_fill"], cfg["tls_mem"],
                                           tls, cfg, tmp, rate=True)
                            log(f"rate run {i} {emu.kind} {'tls' if tls else 'plain'}: total "
                                f"{r['total']} ms, {r['transferred'] / 2**20:.0f} MiB, "
                                f"{r['transferred'] / 1e3 / max(r['total'], 1):.0f} MB/s")
                        except Exception as e:
                            failed = True
                            r = {"error": str(e)[:300]}
                            log(f"rate run {i} {emu.kind} tls={tls}: failed: {e}")
                        rate.setdefault((emu.kind, tls), []).append(r)
    print_guests(cfg, cfg["guests"], cfg["modes"], res)
    if rate:
        print_rate(cfg, rate)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
