#!/usr/bin/env bash
# bench/migrate/daemons.sh: live migration through two godwitd on this host
# (`godwit migrate --live`: TLS-PSK channel, orchestration) against the
# direct QMP migration between two godwit-vm processes (plain TCP, and the
# same with TLS-PSK), the same guests, in the same run, alternating; then
# the migration channel's rate, plain against TLS (a guest whose RAM is
# full of random words; godwit-vm and QEMU 7.2).  The work is done by
# bench/migrate/daemons.py (see its header for what is measured).
#
# env: BUILD (build/release), BENCH_RUNS (3), BENCH_MIGRATE_MEM (256M),
#      BENCH_MIGRATE_DOWNTIME (300 ms), BENCH_MIGRATE_WARMUP (2 s),
#      BENCH_MIGRATE_TIMEOUT (60 s), BENCH_DAEMONS_GUESTS
#      (mig_ticker,mig_dirty,mig_fill,linux), BENCH_DAEMONS_MODES
#      (direct,direct-tls,daemons), BENCH_TLS_MEM (1G; 0: no rate part),
#      BENCH_TLS_RUNS (BENCH_RUNS), BENCH_TLS_QEMU (1 when QEMU is
#      installed), BENCH_TIMEOUT (Linux boot, 300 s), BENCH_LOGS
#      ($BUILD/bench/migrate)
# Exit status: 0 ok, 1 a run failed, 2 setup error.
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/migrate/daemons.py "$@"
