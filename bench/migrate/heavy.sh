#!/usr/bin/env bash
# bench/migrate/heavy.sh: live migration of write-heavy guests (issue 16's
# benchmark), godwit-vm against qemu-system-riscv64 (TCG) in the same run,
# alternating, never in parallel.
#
#  (h1) max dirty on loopback: tests/guest/mig_dirty_max100 (-m 512M, one
#       word per page over 100 MiB as fast as it can), downtime-limit 300 ms,
#       max-bandwidth unlimited; modes pre-copy and post-copy (started right
#       after `migrate`: on loopback pre-copy converges after one pass).
#  (h2) a slow link: tests/guest/mig_busy (the busy page oracle, -m 256M:
#       64 MiB rewritten every 250 ms, the rest checked), max-bandwidth
#       50 MB/s (and max-postcopy-bandwidth, where taken); modes pre-copy,
#       pre-copy + auto-converge, pre-copy + dirty-limit, post-copy (started
#       after the first pass).
#
# A mode the emulator refuses (migrate-set-capabilities or
# migrate-start-postcopy answer an error) is "-"; a migration still running
# after BENCH_HEAVY_TIMEOUT is cancelled and "dnc".  Bytes are the IP
# counters of a private network namespace (both directions, headers
# included) when we are root, else query-migrate's.  Then the issue's goal
# lines, each met / NOT met / n/a.  The work is in bench/migrate/heavy.py
# (its docstring says what is measured).
#
# env: BUILD (build/release), GODWIT ($BUILD/godwit-vm), QEMU
#      (qemu-system-riscv64), GODWIT_AUTOCONV / GODWIT_DIRTYLIMIT /
#      GODWIT_POSTCOPY (another godwit-vm for godwit's auto-converge /
#      dirty-limit / post-copy rows, e.g. a branch's build; default GODWIT), BENCH_RUNS (3), BENCH_HEAVY_SCENARIOS (h1,h2),
#      BENCH_HEAVY_MODES (precopy,autoconv,dirtylimit,postcopy),
#      BENCH_HEAVY_TIMEOUT (60 s), BENCH_HEAVY_SLOW_BW (50000000 bytes/s),
#      BENCH_HEAVY_SLOW_MEM (256M), BENCH_HEAVY_DIRTY_LIMIT (10 MB/s per
#      vCPU), BENCH_MIGRATE_WARMUP (2 s), BENCH_LOGS ($BUILD/bench/heavy),
#      BENCH_QEMU_ONLY / BENCH_GODWIT_ONLY (1: that emulator alone)
# Exit status: 0 ok, 1 a run failed, 2 setup error.
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/migrate/heavy.py "$@"
