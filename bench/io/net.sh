#!/usr/bin/env bash
# bench/io/net.sh: guest-to-host TCP throughput through virtio-net,
# godwit-vm against QEMU TCG, in the same run (bench/io/net.py does the
# work; see its header for the method).
#
# usage: bench/io/net.sh
# env: BUILD (build/release), BENCH_RUNS (3), BENCH_NET_MIB (64 MiB per
#      transfer), BENCH_NET_MODES ("tap user"), BENCH_SMP (1),
#      BENCH_TIMEOUT (seconds per transfer, 600), BENCH_NET_QEMU_VNET_HDR
#      (off: QEMU's TAP without offloads, like godwit's), GODWIT, QEMU,
#      GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD, BENCH_LOGS
#      ($BUILD/bench/io)
# The tap mode needs root and iproute2 (it makes a private network
# namespace and deletes it afterwards); it is skipped otherwise.
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/io/net.py "$@"
