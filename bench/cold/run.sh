#!/usr/bin/env bash
# bench/cold/run.sh: cold migration (`godwit migrate --cold` between two
# godwitd hosts in network namespaces on this machine) against `rsync
# --sparse` of the same disk to an rsync daemon on loopback, in the same
# run: a 4 GiB sparse disk holding 512 MiB of mixed data (random, text,
# zero runs); wall time, bytes on the wire, destination blocks allocated;
# and a resume after a cut at 50 % (tests/lib/proxy.py resets the link):
# bytes re-sent.  Prints the table and the ratios the issue's goals name.
# The work is done by bench/cold/cold.py (see its header for what is
# measured).  Needs root (namespaces), rsync and cmp.
#
# env: BUILD (build/release), BENCH_RUNS (3), BENCH_COLD_WARMUP (1),
#      BENCH_COLD_SIZE (4G), BENCH_COLD_DATA (512M), BENCH_COLD_SEED (1),
#      BENCH_COLD_PARTS
#      (rsync,rsync-variants,rsync-resume,godwit,godwit-resume),
#      BENCH_COLD_DIR (/tmp), BENCH_COLD_TIMEOUT (600 s per transfer)
# Exit status: 0 ok, 1 a run failed (or this build has no cold migration),
# 2 setup error.
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/cold/cold.py "$@"
