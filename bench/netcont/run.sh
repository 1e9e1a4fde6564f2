#!/usr/bin/env bash
# bench/netcont/run.sh: network continuity across live migration (issue 15),
# godwit-vm against qemu-system-riscv64 7.2 (TCG) in the same run, the same
# guest and the same topology: one private network namespace with a bridge
# and two TAP devices on it; the Linux guest (256M, -smp 1, one MAC) moves
# back and forth BENCH_NETCONT_HOPS times between two emulator processes,
# one per TAP device, over QMP (`-incoming tcp:`, `migrate`, query-migrate
# polled), while a client in the namespace keeps one TCP session busy:
#
#   echo  a line every 5 ms to busybox nc's echo service, checked
#   cart  Debian redis-server (the guest image's redis variant) and
#         tests/lib/cart.py: RPUSH every 5 ms, the cart read back and checked
#
# Per emulator and workload: the longest peer-observed pause (largest gap
# between two replies, longest single request wait) per hop, p50/p99
# latency of the requests within +-1 s of each switchover, sessions kept,
# frames lost (the client socket's tcpi_total_retrans; the guest's
# RetransSegs; godwit-vm's x-godwit-net-forward counters when its
# query-migrate has them), the cart's check; a table godwit / QEMU / ratio
# and the issue's goals, each "met" or "NOT met".  When godwit-vm offers the
# migration capability x-godwit-net-forward, a row "godwit-nofwd" runs
# with it off.  The work is done by bench/netcont/netcont.py (see its
# header); docs/bench.md has the figures and how to read them.
#
# env: BUILD (build/release), GODWIT ($BUILD/godwit-vm), QEMU
#      (qemu-system-riscv64), BENCH_NETCONT_HOPS (10),
#      BENCH_NETCONT_WORKLOADS (echo,cart), BENCH_NETCONT_PERIOD (5 ms),
#      BENCH_NETCONT_SETTLE (2 s: the source lives on after `completed`),
#      BENCH_NETCONT_DOWNTIME (300 ms), BENCH_NETCONT_MEM (256M),
#      BENCH_NETCONT_TIMEOUT (60 s per migration), BENCH_NETCONT_RETRIES
#      (1: a session whose guest died is run once more; the death stays in
#      the notes and fails the "intact" goal), BENCH_TIMEOUT (Linux
#      boot, 300 s), BENCH_LOGS ($BUILD/bench/netcont),
#      BENCH_QEMU_ONLY / BENCH_GODWIT_ONLY (1: that emulator alone)
# Needs root, ip(8) and /dev/net/tun.  Not part of make test.
# Exit status: 0 ok (broken sessions and lost cart items are results, in
# the table), 1 a run failed, 2 setup error.
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/netcont/netcont.py "$@"
