#!/usr/bin/env bash
# bench/hold/run.sh: holding a live migration (issue 13's benchmark), on
# this host over TCP, godwit-vm against qemu-system-riscv64 (TCG) in the
# same run.
#
# The busy page oracle (tests/guest/mig_busy: -m 512M, ~500 MiB filled, a
# 64 MiB hot part rewritten every 250 ms, the rest checked) is migrated
# live with max-bandwidth BENCH_HOLD_BW and downtime-limit 300 ms on both
# sides, in three scenarios: unheld (migrate until completed); held
# (migrate-pause at 50 % of the first pass, hold 10 s while the guest runs
# on the source, migrate-recover on the destination and migrate resume:true
# on the source; godwit-vm only, with x-godwit-precopy-recover); and
# cancel-restart (migrate_cancel at 50 %, wait 10 s, a fresh destination,
# migrate again: what QEMU, Nova and KubeVirt users must do).  Per scenario:
# bytes on the wire, total time, downtime, the pause the guest saw (largest
# gap between tick lines); every run checks that the guest runs on at the
# destination through a sweep of every cold page without a FAIL line.
# Prints the table (medians of BENCH_RUNS) and the issue's goals: held /
# unheld bytes <= 1.2, held / cancel-restart bytes <= 0.6, the same pause.
# The work is done by bench/hold/hold.py (see its header).
#
# env: BUILD (build/release), GODWIT ($BUILD/godwit-vm), QEMU
#      (qemu-system-riscv64), BENCH_RUNS (3), BENCH_HOLD_MEM (512M),
#      BENCH_HOLD_BW (512 MiB/s), BENCH_HOLD_DOWNTIME (300 ms), BENCH_HOLD_S
#      (10 s), BENCH_HOLD_AT (0.5), BENCH_HOLD_TIMEOUT (60 s per migration),
#      BENCH_HOLD_WARMUP (1 s), BENCH_HOLD_SWEEPS (2), BENCH_HOLD_SCENARIOS
#      (unheld,held,cancel-restart), BENCH_LOGS ($BUILD/bench/hold),
#      BENCH_QEMU_ONLY / BENCH_GODWIT_ONLY (1: that emulator alone)
# Exit status: 0 ok, 1 a run failed, 2 setup error.
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/hold/hold.py "$@"
