#!/usr/bin/env bash
# bench/io/disk.sh: virtio-blk throughput in the Linux guest, godwit-vm
# against qemu-system-riscv64 (TCG) on the same kernel, initramfs and
# command line, BENCH_RUNS boots of each, alternating (never in parallel).
# The work is done by bench/io/disk.py (see its header for the phases).
#
# env: BUILD (build/release), GODWIT ($BUILD/godwit-vm), QEMU
#      (qemu-system-riscv64), BENCH_RUNS (3), BENCH_DISK_MB (64),
#      BENCH_TIMEOUT (seconds per boot, 600), BENCH_LOGS ($BUILD/bench/io),
#      GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/io/disk.py "$@"
