#!/usr/bin/env bash
# bench/migrate/run.sh: live migration over TCP on this host, godwit-vm
# against qemu-system-riscv64 (TCG) in the same run.
#
# For each bare-metal guest (tests/guest/mig_ticker: idle, a tick every
# 10 ms; mig_dirty: 4096 pages/s = 16 MiB/s over 64 MiB; mig_dirty_max: one
# word per page over ~250 MiB as fast as it can; and the Linux guest of
# bench/save idle at its shell, which has no ticks: instead, how long after
# `completed` the destination's shell answers an echo) and each emulator, with
# -m 256M, downtime-limit 300 ms (QEMU's default) and max-bandwidth
# unlimited on both sides: start a source and a destination
# (-incoming tcp:127.0.0.1:PORT), let the guest run 2 s, `migrate`, and
# measure the source's query-migrate total-time, downtime and
# ram.transferred, and the pause the guest saw (the largest gap between two
# tick lines of its serial output, source then destination, in wall-clock
# time; the mtime gap is printed too).  A migration still running after
# BENCH_MIGRATE_TIMEOUT (60 s) is cancelled and reported "dnc" (did not
# converge); the remaining runs of that guest on that emulator are skipped.
# BENCH_RUNS times (median), alternating the emulators (never in parallel).
# The work is done by bench/migrate/migrate.py; the dirty-logging overhead
# is bench/migrate/overhead.sh; the same guests moved through two godwitd
# (TLS, orchestration) against direct QMP is bench/migrate/daemons.sh.
#
# env: BUILD (build/release), GODWIT ($BUILD/godwit-vm), QEMU
#      (qemu-system-riscv64), BENCH_RUNS (3), BENCH_MIGRATE_MEM (256M),
#      BENCH_MIGRATE_DOWNTIME (300 ms), BENCH_MIGRATE_TIMEOUT (60 s),
#      BENCH_MIGRATE_WARMUP (2 s), BENCH_MIGRATE_GUESTS (comma-separated
#      program names or "linux", default all), BENCH_TIMEOUT (Linux boot,
#      300 s), BENCH_LOGS ($BUILD/bench/migrate),
#      BENCH_QEMU_ONLY / BENCH_GODWIT_ONLY (1: that emulator alone)
# Exit status: 0 ok, 1 a run failed, 2 setup error.
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/migrate/migrate.py "$@"
