#!/usr/bin/env bash
# bench/migrate/overhead.sh: how much speed a guest loses while it is being
# live-migrated (dirty logging on, pre-copy rounds going), godwit-vm and
# qemu-system-riscv64 in the same run.
#
# The guest (tests/guest/mig_dirty_mix: hash + a store per 64-byte line +
# random load over 32 MiB) prints its iteration count every 10 ms of mtime;
# the runner measures iterations per second in alternating 2 s windows:
# alone, and while a migration to a local -incoming tcp: destination runs at
# max-bandwidth 32 MiB/s and downtime-limit 1 ms (it never converges: the
# guest rewrites its 32 MiB all the time), cancelled at the end of the
# window; 5 cycles and a last alone window.  slowdown = 1 - migrating /
# mean(alone windows either side), median over the cycles, per second of
# mtime (what the guest sees) and per CPU-second of the hart's thread (what
# dirty logging adds to the hart).  About 25 s per emulator.
# BENCH_OVERHEAD_HELD=1: the same for a migration held converged
# (x-godwit-hold-switchover, 10 MB/s, tests/guest/mig_dirty_mix_small;
# godwit only), issue 13's goal of at most 5 % (make bench-hold-overhead).
# The work is done by bench/migrate/overhead.py.
#
# env: BUILD, GODWIT, QEMU, BENCH_LOGS, BENCH_QEMU_ONLY / BENCH_GODWIT_ONLY
#      (as bench/migrate/run.sh), BENCH_MIGRATE_MEM (256M),
#      BENCH_OVERHEAD_BW (bytes/s, 33554432), BENCH_OVERHEAD_DOWNTIME (1 ms),
#      BENCH_OVERHEAD_WINDOW (2 s),
#      BENCH_OVERHEAD_CYCLES (5), BENCH_OVERHEAD_RUNS (1)
# Exit status: 0 ok, 1 a run failed, 2 setup error.
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/migrate/overhead.py "$@"
