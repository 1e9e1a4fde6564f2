#!/usr/bin/env bash
# bench/storage/run.sh: live migration with local disks (issue 14),
# godwit-vm (capability `block`) against QEMU 7.2's block migration (the
# same capability, plus `zero-blocks`) in the same run, over TCP on this
# host, the same guest, disk and parameters on both:
#
#   (a)  a 1 GiB raw disk holding 128 MiB of data (scattered extents of
#        random bytes, some allocated zero runs), the idle ticker guest
#        (tests/guest/mig_ticker), max-bandwidth unlimited
#   (b)  a 4 GiB disk holding 512 MiB, the same
#   (c0) the Linux guest idle at its shell, (a)'s disk plus a 256 MiB
#        window of random data, max-bandwidth BENCH_STORAGE_BW: the idle
#        baseline of (c)
#   (c)  the same with dd writing round that window continuously (paced to
#        BENCH_STORAGE_WRITE MiB/s, 4 MiB O_DIRECT chunks; the rate reached
#        is measured and printed)
#
# Per scenario and emulator: total-time, downtime, the pause the guest saw
# (tick-line gap; Linux: the writer's line gap and when the shell answers),
# bytes on the wire (IP octets in a private network namespace) and what
# query-migrate reports, the destination's allocation against the source's,
# convergence (a migration still running after BENCH_STORAGE_TIMEOUT is
# cancelled: "dnc") and content equality (sha256 of both images; a mismatch
# fails the run).  Then the ratios godwit/QEMU and the issue's goals.
# The work is done by bench/storage/storage.py (see its header).
#
# env: BUILD (build/release), GODWIT ($BUILD/godwit-vm), QEMU
#      (qemu-system-riscv64), BENCH_RUNS (3), BENCH_STORAGE_SCENARIOS
#      (a,b,c0,c), BENCH_STORAGE_DIR (/tmp: the images, deleted after),
#      BENCH_STORAGE_MEM (256M), BENCH_STORAGE_DOWNTIME (300 ms),
#      BENCH_STORAGE_BW (MiB/s for c0 and c, 128 = QEMU 7.2's default),
#      BENCH_STORAGE_WRITE (64 MiB/s), BENCH_STORAGE_TIMEOUT (60 s),
#      BENCH_STORAGE_QEMU_ZERO_BLOCKS (1), BENCH_STORAGE_QEMU_DRIVE_OPTS
#      (QEMU alone, e.g. discard=unmap), BENCH_STORAGE_SEED (1),
#      BENCH_TIMEOUT (Linux boot, 300 s), BENCH_LOGS ($BUILD/bench/storage),
#      BENCH_QEMU_ONLY / BENCH_GODWIT_ONLY (1: that emulator alone)
# Needs root and ip(8) for the byte counts (without: query-migrate's only).
# Exit status: 0 ok, 1 a run failed, 2 setup error.
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/storage/storage.py "$@"
