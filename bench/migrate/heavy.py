#!/usr/bin/env python3
"""Write-heavy live-migration benchmark behind bench/migrate/heavy.sh (see
its header for the scenarios and the environment).

One run of one emulator, scenario and mode: a source VM running the guest
and a destination VM with `-incoming tcp:127.0.0.1:PORT` (same command
line), both in a private network namespace when we are root (bench/storage's
NetNS), downtime-limit 300 ms and the scenario's max-bandwidth on both, the
mode's capabilities:

  precopy     none
  autoconv    auto-converge on the source (QEMU's default throttle: 20 %
              at first, +10 % per pass that does not converge)
  dirtylimit  dirty-limit on the source and vcpu-dirty-limit
              BENCH_HEAVY_DIRTY_LIMIT MB/s (QEMU 8.1's names; QEMU 7.2 does
              not have them)
  postcopy    postcopy-ram on both, postcopy-blocktime on the destination
              where it is taken, max-postcopy-bandwidth = max-bandwidth
              where it is taken; `migrate-start-postcopy` on the slow link
              (h2) once the source's dirty-sync-count says the first pass is
              over, on loopback (h1) at once after `migrate`: there the
              first pass is over in a fraction of a second and pre-copy
              converges right after it, so waiting for it would measure
              pre-copy again

then the guest runs BENCH_MIGRATE_WARMUP seconds, the source gets `migrate`
and query-migrate is polled (20 ms) until a final status or
BENCH_HEAVY_TIMEOUT (then `migrate_cancel`, or in post-copy, which cannot be
cancelled, the run is an error).  Measured:

  total-time, downtime the source's query-migrate (godwit-vm switches over
                       after 30 rounds whatever is left, so its pre-copy
                       "completes" on a link that cannot carry the guest,
                       with a downtime over the limit: the pause row says
                       what that cost)
  pause (wall)         the largest gap between two consecutive tick lines,
                       the source's then the destination's, from `migrate`
                       on, until the destination has printed 20 more
                       (bench/migrate's figure; post-copy's stalls on
                       missing pages after the switch are in it)
  bytes                IpExt InOctets of the namespace over the migration
                       (every packet on lo, both directions: the return
                       path too); query-migrate ram.transferred besides
  converged            completed before the timeout
  throttle %           the largest cpu-throttle-percentage query-migrate
                       showed (auto-converge)
  fault latency        post-copy: whatever the emulators report.  QEMU 7.2
                       has postcopy-blocktime (the destination's total ms
                       that vCPUs waited for pages, no per-fault figures);
                       for godwit any number under a key with "fault" or
                       "blocktime" in the destination's or source's
                       query-migrate is logged, and keys with "latency"
                       and "p50"/"p99" in them are the percentiles (unit
                       from "-us"/"-ms"/"-ns" in the key, else us)

A guest that prints FAIL (mig_busy checks every page it reads) fails the
run; the destination is watched for 20 ticks after `completed`: a spot
check, not a check of all RAM.  Medians over BENCH_RUNS runs; after a "dnc" or a refused mode the
remaining runs of that row are skipped.  Lines per run on stderr, the table
and the goal lines on stdout.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
sys.path.insert(0, os.path.join(ROOT, "bench", "migrate"))
sys.path.insert(0, os.path.join(ROOT, "bench", "storage"))

import harness as h  # noqa: E402
from harness import check  # noqa: E402
import migrate as mg  # noqa: E402  (bench/migrate/migrate.py)
import storage as st  # noqa: E402  (bench/storage/storage.py: NetNS, in_octets)
from migration import FINAL, Emu, baremetal_args  # noqa: E402

MiB = 1 << 20
MODES = ["precopy", "autoconv", "dirtylimit", "postcopy"]
MODE_LABEL = {"precopy": "pre-copy", "autoconv": "pre-copy + auto-converge",
              "dirtylimit": "pre-copy + dirty-limit", "postcopy": "post-copy"}


def scenarios(cfg):
    return {
        "h1": {"label": "(h1) max dirty: -m 512M, 100 MiB rewritten as fast as it can, loopback, "
                        "max-bandwidth unlimited",
               "guest": "mig_dirty_max100", "mem": "512M", "bw": mg.UNLIMITED_BW,
               "modes": ["precopy", "postcopy"], "postcopy_at": "start"},
        "h2": {"label": f"(h2) busy guest (mig_busy): -m {cfg['slow_mem']}, 64 MiB rewritten "
                        f"every 250 ms, max-bandwidth {cfg['slow_bw'] / 1e6:.0f} MB/s",
               "guest": "mig_busy", "mem": cfg["slow_mem"], "bw": cfg["slow_bw"],
               "modes": ["precopy", "autoconv", "dirtylimit", "postcopy"], "postcopy_at": "pass"},
    }


class NetNS(st.NetNS):
    """bench/storage's private network namespace (lo up), named gwheavyPID
    so that it says whose it is; None of it without root."""

    def __init__(self):
        self.name = None
        if os.geteuid() != 0 or not shutil.which("ip"):
            log("bench-migrate-heavy: not root or no ip(8): bytes from query-migrate only")
            return
        name = f"gwheavy{os.getpid()}"
        r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
        if r.returncode != 0:
            log(f"bench-migrate-heavy: no network namespace ({r.stderr.strip()}): "
                "bytes from query-migrate only")
            return
        self.name = name
        r = subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], capture_output=True,
                           text=True)
        if r.returncode != 0:
            self.close()
            raise RuntimeError(f"ip -n {name} link set lo up: {r.stderr.strip()}")


class NotAvailable(Exception):
    """The emulator refused what the mode needs."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def set_caps(vm, names):
    """Switch capabilities on; NotAvailable when the emulator refuses."""
    if not names:
        return
    try:
        vm.cmd("migrate-set-capabilities",
               capabilities=[{"capability": n, "state": True} for n in names])
    except h.QMPError as e:
        raise NotAvailable(f"{', '.join(names)}: {e}") from None


def try_param(vm, name, value):
    """Set one migration parameter; False when the emulator refuses it."""
    try:
        vm.cmd("migrate-set-parameters", **{name: value})
        return True
    except h.QMPError:
        return False


def numbers(d, path=()):
    """[(key path joined by '/', number)] of every number in a nested dict."""
    out = []
    for k, v in (d or {}).items():
        p = (*path, str(k))
        if isinstance(v, dict):
            out += numbers(v, p)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(("/".join(p), v))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                if isinstance(x, dict):
                    out += numbers(x, (*p, str(i)))
                elif isinstance(x, (int, float)) and not isinstance(x, bool):
                    out.append(("/".join((*p, str(i))), x))
    return out


def fault_figures(infos):
    """From query-migrate answers ({"dst": ..., "src": ...}): every number
    whose key speaks of faults or blocktime, the QEMU blocktime (ms) and the
    p50 / p99 fault latency in us where a key names them."""
    raw, fig = {}, {}
    for side, info in infos.items():
        for key, v in numbers(info):
            k = key.lower()
            if "fault" in k or "blocktime" in k:
                raw[f"{side}:{key}"] = v
            if k == "postcopy-blocktime" and side == "dst":
                fig["blocktime"] = v
            if side == "dst" and k.endswith("/faults") and "postcopy" in k:
                fig["faults"] = v
            if "latency" in k and ("fault" in k or "postcopy" in k):
                scale = 1000.0 if "ms" in k.split("latency")[-1] or k.endswith("-ms") else (
                    0.001 if "ns" in k.split("latency")[-1] else 1.0)
                for p in ("p50", "p99"):
                    if p in k and p not in fig:
                        fig[p] = v * scale
    return raw, fig


def one_run(emu, tag, elf, sc, mode, cfg, tmp, logdir, ns):
    """One live migration; a dict of figures, {"dnc": s, ...} or
    {"na": why}."""
    args = baremetal_args(elf, sc["mem"])
    uri = f"tcp:127.0.0.1:{h.free_port()}"
    src = st.VM(emu, f"{tag}.src", args, tmp, logdir, ns)
    dst = st.VM(emu, f"{tag}.dst", args, tmp, logdir, ns, incoming=uri)
    try:
        for vm in (src, dst):
            mg.set_params(vm, cfg["downtime"], sc["bw"])
        notes = []
        try:
            if mode == "autoconv":
                set_caps(src, ["auto-converge"])
            elif mode == "dirtylimit":
                set_caps(src, ["dirty-limit"])
                if not try_param(src, "vcpu-dirty-limit", cfg["dirty_limit"]):
                    raise NotAvailable("vcpu-dirty-limit refused")
            elif mode == "postcopy":
                set_caps(src, ["postcopy-ram"])
                set_caps(dst, ["postcopy-ram"])
                try:
                    set_caps(dst, ["postcopy-blocktime"])
                except NotAvailable:
                    notes.append("no postcopy-blocktime")
                if sc["bw"] != mg.UNLIMITED_BW:
                    for vm in (src, dst):
                        if not try_param(vm, "max-postcopy-bandwidth", sc["bw"]):
                            notes.append(f"{vm.name}: no max-postcopy-bandwidth")
        except NotAvailable as e:
            return {"na": str(e)}
        src.wait_ticks(1, 60)
        time.sleep(cfg["warmup"])
        oct0 = st.in_octets(src.proc.pid) if ns.name else None
        t0 = time.monotonic()
        src.cmd("migrate", uri=uri)
        throttle, started_pc, info = 0, None, {}
        while True:
            info = src.cmd("query-migrate")
            throttle = max(throttle, info.get("cpu-throttle-percentage") or 0)
            status = info.get("status")
            if status in FINAL:
                break
            if time.monotonic() - t0 > cfg["timeout"]:
                if status and status.startswith("postcopy"):
                    raise RuntimeError(f"post-copy still {status} after {cfg['timeout']:.0f} s")
                ram = info.get("ram", {})
                t_end = time.monotonic()
                state = mg.cancel(src)
                oct1 = st.in_octets(src.proc.pid) if ns.name else None
                return {"dnc": cfg["timeout"], "transferred": ram.get("transferred"),
                        "wire": oct1 - oct0 if None not in (oct0, oct1) else None,
                        "syncs": ram.get("dirty-sync-count"), "throttle": throttle,
                        "cancel": state, "speed": speed(src, t0, t_end)}
            if (mode == "postcopy" and started_pc is None and status in ("setup", "active")
                    and (sc["postcopy_at"] == "start"
                         or (info.get("ram", {}).get("dirty-sync-count") or 0) >= 2)):
                try:
                    src.cmd("migrate-start-postcopy")
                except h.QMPError as e:
                    mg.cancel(src)
                    return {"na": f"migrate-start-postcopy: {e}"}
                started_pc = time.monotonic() - t0
            time.sleep(0.02)
        t_end = time.monotonic()
        check(info.get("status") == "completed", f"{tag}: migration {info}")
        try:
            dst.wait_status(("running",), 30)
            t_done = time.monotonic()
            dst.wait_ticks(20, 30, since=t_done)
        finally:
            # a guest that found a bad page exits: say that rather than "exited"
            for vm in (src, dst):
                with vm._lock:
                    bad = [t for _, t in vm.lines if t.startswith("FAIL")]
                check(not bad, f"{vm.name}: the guest found a bad page: {bad[:1]}")
        oct1 = st.in_octets(src.proc.pid) if ns.name else None
        ram = info.get("ram", {})
        downtime = info.get("downtime")
        if downtime is not None and info.get("total-time") is not None \
                and downtime > info["total-time"]:
            # QEMU 7.2 after a post-copy: the pause row is the figure
            notes.append(f"query-migrate downtime {downtime} ms > total-time: left out")
            downtime = None
        pw, ps, _ = mg.pause_metrics(src.ticks(t0 - 0.05), dst.ticks())
        check(pw is not None, f"{tag}: no ticks on one side")
        r = {"total": info.get("total-time"), "downtime": downtime,
             "transferred": ram.get("transferred"), "syncs": ram.get("dirty-sync-count"),
             "wire": oct1 - oct0 if None not in (oct0, oct1) else None,
             "pause": pw, "switch": ps, "throttle": throttle, "speed": speed(src, t0, t_end),
             "notes": notes}
        if mode == "postcopy":
            if started_pc is None:
                r["notes"].append("completed before migrate-start-postcopy was sent")
            r["pc_start"] = started_pc * 1000 if started_pc is not None else None
            raw, fig = fault_figures({"dst": dst.cmd("query-migrate"), "src": info})
            r.update(fig)
            r["fault_raw"] = raw
        return r
    finally:
        src.kill()
        dst.kill()


def speed(src, t0, t_end):
    """The guest's work rate (w=, mtime) while migrating against before, %."""
    before = mg.work_rate([t for t in src.ticks() if t[0] < t0])
    during = mg.work_rate([t for t in src.ticks(t0) if t[0] <= t_end])
    return during / before * 100 if before and during else None


ROWS = [("total-time ms", "total", "%.0f"),
        ("downtime ms (query-migrate)", "downtime", "%.0f"),
        ("pause ms (wall tick gap)", "pause", "%.0f"),
        ("  switchover gap ms", "switch", "%.0f"),
        ("MiB on the wire (netns IP)", "wire", "%.1f"),
        ("MiB ram.transferred", "transferred", "%.1f"),
        ("dirty syncs", "syncs", "%.0f"),
        ("throttle % reached", "throttle", "%.0f"),
        ("guest speed while migrating %", "speed", "%.0f"),
        ("post-copy switch at ms", "pc_start", "%.0f"),
        ("postcopy-blocktime ms (dst)", "blocktime", "%.0f"),
        ("remote faults (dst)", "faults", "%.0f"),
        ("fault latency p50 us", "p50", "%.0f"),
        ("fault latency p99 us", "p99", "%.0f")]
MIB_KEYS = ("wire", "transferred")


def summarize(rs):
    ok = [r for r in rs if not ({"dnc", "error", "na"} & r.keys())]
    out = {"n": len(rs), "n_ok": len(ok), "dnc": [r for r in rs if "dnc" in r],
           "na": next((r["na"] for r in rs if "na" in r), None),
           "error": next((r["error"] for r in rs if "error" in r), None)}
    for _, key, _ in ROWS:
        vals = [r[key] for r in ok if r.get(key) is not None]
        if vals:
            v = statistics.median(vals)
            out[key] = v / MiB if key in MIB_KEYS else v
    return out


def cell(s):
    """The text of a row with no figure: "-" (not available / not run),
    "dnc", "error"."""
    if s is None or s["na"]:
        return "-"
    if s["n_ok"]:
        return None
    return "dnc" if s["dnc"] else "error"


def print_table(cfg, scs, kinds, summ):
    print(f"write-heavy live migration, downtime-limit {cfg['downtime']} ms, "
          f"median of {cfg['runs']}, timeout {cfg['timeout']:.0f} s")
    print(f"{'scenario / mode / metric':<40}{'godwit':>10}{'qemu':>10}")
    notes = []
    for key, sc in scs:
        print(sc["label"])
        for mode in sc["modes"]:
            print(f"  {MODE_LABEL[mode]}")
            ss = {k: summ.get((key, mode, k)) for k in ("godwit", "qemu")}
            conv = []
            for k in ("godwit", "qemu"):
                s = ss[k]
                c = cell(s)
                conv.append(c if c else ("yes" if s["n_ok"] == s["n"] else
                                         f"{s['n_ok']}/{s['n']}"))
                if s and s["na"]:
                    notes.append(f"{key} {mode} {k}: not available ({s['na'][:160]})")
                elif s and s["error"]:
                    notes.append(f"{key} {mode} {k}: {s['error'][:200]}")
                if s and s["dnc"]:
                    d = s["dnc"][0]
                    wire = d.get("wire") if d.get("wire") is not None else d.get("transferred")
                    notes.append(f"{key} {mode} {k}: did not converge in {cfg['timeout']:.0f} s "
                                 f"({(wire or 0) / MiB:.0f} MiB sent, {d['syncs']} dirty syncs, "
                                 f"throttle {d['throttle']}%, guest speed "
                                 f"{d['speed'] or 0:.0f}%; {d['cancel']})")
            print(f"    {'converged':<36}{conv[0]:>10}{conv[1]:>10}")
            if not any(ss[k] and ss[k]["n_ok"] for k in ss):
                continue  # no figures on either side: the notes say why
            for name, rkey, fmt in ROWS:
                vals = [ss[k].get(rkey) if ss[k] and ss[k]["n_ok"] else None
                        for k in ("godwit", "qemu")]
                if all(v is None for v in vals) and rkey in ("throttle", "pc_start", "blocktime",
                                                             "faults", "p50", "p99", "switch",
                                                             "speed"):
                    continue
                if rkey == "throttle" and mode != "autoconv":
                    continue
                cells = [fmt % v if v is not None else (cell(ss[k]) or "-")
                         for k, v in zip(("godwit", "qemu"), vals)]
                print(f"    {name:<36}{cells[0]:>10}{cells[1]:>10}")
    for n in notes:
        print(f"note: {n}")
    print("- = not available (the emulator refused the mode) or not run; "
          "dnc = did not converge (cancelled)")


def goals(summ):
    """The issue's goal lines: [(text, verdict)]."""
    def g(sc, mode, k):
        return summ.get((sc, mode, k))

    out = []
    a, b = g("h1", "precopy", "godwit"), g("h1", "precopy", "qemu")
    text = "h1 max dirty: godwit's pre-copy sends <= QEMU's bytes in <= QEMU's time"
    if not (a and b and a["n_ok"] and b["n_ok"]):
        out.append((text, "n/a (not measured / did not converge)"))
    else:
        bk = "wire" if a.get("wire") is not None and b.get("wire") is not None else "transferred"
        ok = a[bk] <= b[bk] and a["total"] <= b["total"]
        out.append((text, f"{'met' if ok else 'NOT met'} ({bk} {a[bk]:.1f} vs {b[bk]:.1f} MiB, "
                          f"total {a['total']:.0f} vs {b['total']:.0f} ms)"))
    a = g("h1", "postcopy", "godwit")
    text = "h1 loopback: godwit's post-copy pause <= 20 ms"
    if not a or a["na"] or not a["n_ok"]:
        out.append((text, "n/a (not available)" if not a or a["na"] else "NOT met (failed)"))
    else:
        out.append((text, f"{'met' if a['pause'] <= 20 else 'NOT met'} ({a['pause']:.0f} ms)"))
    text = "h1 loopback: godwit's post-copy remote-fault latency p99 <= 1 ms"
    if not a or a["na"] or not a["n_ok"]:
        out.append((text, "n/a (not available)" if not a or a["na"] else "NOT met (failed)"))
    elif a.get("p99") is None:
        out.append((text, "n/a (godwit-vm reports no fault latency)"))
    else:
        out.append((text, f"{'met' if a['p99'] <= 1000 else 'NOT met'} ({a['p99']:.0f} us)"))
    text = "h2 slow link: every godwit mode completes while QEMU's plain pre-copy does not"
    q = g("h2", "precopy", "qemu")
    modes = {m: g("h2", m, "godwit") for m in ("precopy", "autoconv", "dirtylimit", "postcopy")}
    state = ", ".join(f"{m} " + ("-" if not s or s["na"] else "completes" if s["n_ok"] == s["n"]
                                 else "dnc" if s["dnc"] else "fails")
                      for m, s in modes.items())
    q_dnc = bool(q and q["dnc"])
    missing = [m for m in ("dirtylimit", "postcopy") if not modes[m] or modes[m]["na"]]
    done = all(s and not s["na"] and s["n_ok"] == s["n"] for s in modes.values() if s)
    detail = f"godwit: {state}; QEMU pre-copy: {'dnc' if q_dnc else 'completes' if q else '-'}"
    if not q or not q["n"] or q["na"] or not modes["precopy"]:
        out.append((text, f"n/a (not measured in this run; {detail})"))
    elif missing:
        out.append((text, f"n/a (not available: godwit {', '.join(missing)}; {detail})"))
    else:
        out.append((text, f"{'met' if done and q_dnc else 'NOT met'} ({detail})"))
    return out


def config():
    build = os.environ.get("BUILD", "build/release")
    godwit = os.environ.get("GODWIT", os.path.join(ROOT, build, "godwit-vm"))
    return {
        "runs": int(os.environ.get("BENCH_RUNS", "3")),
        "downtime": int(os.environ.get("BENCH_MIGRATE_DOWNTIME", "300")),
        "timeout": float(os.environ.get("BENCH_HEAVY_TIMEOUT", "60")),
        "warmup": float(os.environ.get("BENCH_MIGRATE_WARMUP", "2")),
        "slow_bw": int(os.environ.get("BENCH_HEAVY_SLOW_BW", "50000000")),
        "slow_mem": os.environ.get("BENCH_HEAVY_SLOW_MEM", "256M"),
        "dirty_limit": int(os.environ.get("BENCH_HEAVY_DIRTY_LIMIT", "10")),
        "godwit": godwit,
        "godwit_autoconv": os.environ.get("GODWIT_AUTOCONV") or godwit,
        "godwit_dirtylimit": os.environ.get("GODWIT_DIRTYLIMIT") or godwit,
        "godwit_postcopy": os.environ.get("GODWIT_POSTCOPY") or godwit,
        "qemu": os.environ.get("QEMU", "qemu-system-riscv64"),
        "logs": os.environ.get("BENCH_LOGS", os.path.join(ROOT, build, "bench", "heavy")),
    }


def main():
    cfg = config()
    kinds = mg.emulators(cfg, "bench-migrate-heavy")
    if kinds == 2:
        return 2
    for k in ("godwit_autoconv", "godwit_dirtylimit", "godwit_postcopy"):
        if "godwit" in kinds and not os.access(cfg[k], os.X_OK):
            log(f"bench-migrate-heavy: {cfg[k]} is not built")
            return 2
    all_sc = scenarios(cfg)
    want = os.environ.get("BENCH_HEAVY_SCENARIOS", "h1,h2").split(",")
    modes = os.environ.get("BENCH_HEAVY_MODES", ",".join(MODES)).split(",")
    scs = [(k, dict(v, modes=[m for m in v["modes"] if m in modes]))
           for k, v in all_sc.items() if k in want]
    elfs = mg.build_guests(sorted({sc["guest"] for _, sc in scs}), "bench-migrate-heavy")
    if elfs is None:
        return 2
    elf_of = dict(zip(sorted({sc["guest"] for _, sc in scs}), elfs))
    os.makedirs(cfg["logs"], exist_ok=True)
    log(f"bench-migrate-heavy: godwit-vm {cfg['godwit']} (auto-converge: "
        f"{cfg['godwit_autoconv']}, dirty-limit: "
        f"{cfg['godwit_dirtylimit']}, post-copy: {cfg['godwit_postcopy']}), QEMU {cfg['qemu']}, "
        f"logs {cfg['logs']}")
    res = {}
    failed = False
    ns = NetNS()
    try:
        with tempfile.TemporaryDirectory(prefix="godwit-bench-heavy-") as tmp:
            for key, sc in scs:
                for mode in sc["modes"]:
                    for i in range(1, cfg["runs"] + 1):
                        order = kinds if i % 2 else kinds[::-1]
                        for k in order:
                            rs = res.setdefault((key, mode, k), [])
                            if any("dnc" in r or "na" in r for r in rs):
                                continue  # do not wait again for what cannot happen
                            binary = cfg[{"autoconv": "godwit_autoconv",
                                          "dirtylimit": "godwit_dirtylimit",
                                          "postcopy": "godwit_postcopy"}.get(mode, "godwit")
                                         if k == "godwit" else k]
                            tag = f"{key}.{mode}.{k}.{i}"
                            try:
                                r = one_run(Emu(k, binary), tag, elf_of[sc["guest"]], sc, mode,
                                            cfg, tmp, cfg["logs"], ns)
                            except Exception as e:
                                failed = True
                                r = {"error": str(e)[:300]}
                                log(f"run {tag}: failed: {e} (logs {cfg['logs']}/{tag}.*)")
                            rs.append(r)
                            report(tag, r)
    finally:
        ns.close()
    summ = {key: summarize(rs) for key, rs in res.items()}
    print_table(cfg, scs, kinds, summ)
    print("goals (issue 16):")
    for text, verdict in goals(summ):
        print(f"  {text}: {verdict}")
    return 1 if failed else 0


def report(tag, r):
    def mib(v):
        return f"{v / MiB:.1f}" if v is not None else "?"

    if "na" in r:
        log(f"run {tag}: not available: {r['na']}")
    elif "dnc" in r:
        log(f"run {tag}: did not converge in {r['dnc']:.0f} s ({mib(r['wire'])} MiB on the wire, "
            f"{mib(r['transferred'])} MiB transferred, {r['syncs']} syncs, throttle "
            f"{r['throttle']}%, guest speed {r['speed'] or 0:.0f}%), {r['cancel']}")
    elif "error" not in r:
        extra = ""
        if "fault_raw" in r:
            pc = f"{r['pc_start']:.0f}" if r["pc_start"] is not None else "-"
            extra = (f", post-copy at {pc} ms, fault figures "
                     f"{r['fault_raw'] or 'none reported'}")
        log(f"run {tag}: total {r['total']} ms, pause {r['pause']:.0f} ms (switchover "
            f"{r['switch']:.0f}), {mib(r['wire'])} MiB on the wire, {mib(r['transferred'])} MiB "
            f"transferred, syncs {r['syncs']}, throttle {r['throttle']}%, guest speed "
            f"{r['speed'] or 0:.0f}%{extra}{'; ' + '; '.join(r['notes']) if r['notes'] else ''}")


if __name__ == "__main__":
    sys.exit(main())
