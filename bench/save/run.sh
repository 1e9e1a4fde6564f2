#!/usr/bin/env bash
# bench/save/run.sh: save and restore of a whole VM, godwit-vm against
# qemu-system-riscv64 (TCG) in the same run.
#
# Boots the same Debian kernel + godwit initramfs (-m 512M) to the shell on
# each emulator, fills 64 MiB of guest memory (/dev/shm), then measures:
#   save      QMP `migrate` sent -> query-migrate says completed (wall time;
#             QEMU's own total-time is printed too)
#   size      bytes of the state file
#   restore   process start with -incoming -> query-status running (after
#             `cont`); godwit-vm's console must then answer an echo
# BENCH_RUNS times (median), alternating the emulators (never in parallel).
# godwit-vm saves with `file:PATH`, QEMU with `exec:cat > PATH` (7.2 has no
# file: URI), max-bandwidth unlimited, and is stopped first (its TCG live
# save loses pages of a running Linux guest; see docs/bench.md).  The work is
# done by bench/save/save.py.
#
# env: BUILD (build/release), GODWIT ($BUILD/godwit-vm), QEMU
#      (qemu-system-riscv64), BENCH_RUNS (3), BENCH_SAVE_FILL_MB (64),
#      BENCH_TIMEOUT (seconds per boot, 300), BENCH_LOGS ($BUILD/bench/save),
#      BENCH_QEMU_ONLY (1: QEMU alone), GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD
# Exit status: 0 ok, 1 a run failed, 2 setup error.
set -u
cd "$(dirname "$0")/../.." || exit 2
exec python3 bench/save/save.py "$@"
