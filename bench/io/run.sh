#!/usr/bin/env bash
# bench/io/run.sh: guest I/O throughput, godwit-vm against QEMU TCG.
#
# Runs each part in turn; a part is bench/io/PART.sh and prints its own
# table (godwit, qemu, ratio).  Parts: disk (virtio-blk, bench/io/disk.sh),
# net (virtio-net, bench/io/net.sh); a new part is a script plus a word in
# PARTS below.  Every part takes the same environment: BUILD, GODWIT, QEMU,
# BENCH_RUNS, BENCH_TIMEOUT, BENCH_LOGS, GODWIT_GUEST_IMAGE /
# GODWIT_GUEST_INITRD, and its own (see each part's header).
#
# usage: bench/io/run.sh [PART...]     (default: every part)
# Exit status: the worst of the parts' (0 ok, 1 a run failed, 2 setup).
set -u
cd "$(dirname "$0")/../.." || exit 2

PARTS=(disk net)
[ $# -gt 0 ] && PARTS=("$@")
status=0
for part in "${PARTS[@]}"; do
    script=bench/io/$part.sh
    if [ ! -x "$script" ]; then
        echo "bench-io: no part '$part' ($script)" >&2
        status=2
        continue
    fi
    echo "== bench/io: $part"
    "$script"
    rc=$?
    [ "$rc" -gt "$status" ] && status=$rc
done
exit "$status"
