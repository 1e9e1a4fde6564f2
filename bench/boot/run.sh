#!/usr/bin/env bash
# bench/boot/run.sh: Linux boot time, godwit-vm against QEMU TCG, same run.
#
# Boots the same Debian kernel + godwit initramfs (OpenSBI fw_dynamic, the
# same -m/-smp/-append) on godwit-vm and on qemu-system-riscv64, BENCH_RUNS
# times each, alternating the two (never in parallel: two noisy cores), and
# measures the wall time from process start to the init's first line
# ("godwit-guest: init started", printed by guest/rootfs/init).  Prints the
# median of each, and the ratio godwit/qemu (lower is better).  Every VM is
# killed once the marker is seen.  Exits 1 if a boot fails, 2 on a setup
# error; if the guest image is missing and cannot be built it says so and
# exits 0 with "skipped".
#
# usage: bench/boot/run.sh
# env: BUILD (build/release), BENCH_RUNS (3), BENCH_SMP (1), BENCH_TIMEOUT
#      (seconds per boot, 300), GODWIT ($BUILD/godwit-vm), QEMU
#      (qemu-system-riscv64), GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD
#      (default ~/.cache/godwit/guest/{Image,initrd.img}, built by
#      `make guest-image` when missing), BENCH_LOGS ($BUILD/bench/boot)

set -u
cd "$(dirname "$0")/../.." || exit 2

BUILD=${BUILD:-build/release}
GODWIT=${GODWIT:-$BUILD/godwit-vm}
QEMU=${QEMU:-qemu-system-riscv64}
RUNS=${BENCH_RUNS:-3}
SMP=${BENCH_SMP:-1}
TIMEOUT=${BENCH_TIMEOUT:-300}
LOGS=${BENCH_LOGS:-$BUILD/bench/boot}
IMAGE=${GODWIT_GUEST_IMAGE:-$HOME/.cache/godwit/guest/Image}
INITRD=${GODWIT_GUEST_INITRD:-$HOME/.cache/godwit/guest/initrd.img}

if [[ ! -x $GODWIT ]]; then
    echo "bench-boot: $GODWIT is not built (make)" >&2
    exit 2
fi
command -v "$QEMU" >/dev/null || {
    echo "bench-boot: $QEMU not found (scripts/install-deps.sh)" >&2
    exit 2
}
if [[ ! -f $IMAGE || ! -f $INITRD ]]; then
    if [[ -z ${GODWIT_GUEST_IMAGE:-} && -f guest/build.sh ]] && make -s guest-image >&2 &&
        [[ -f $IMAGE && -f $INITRD ]]; then
        :
    else
        echo "bench-boot: skipped: no guest image ($IMAGE, $INITRD) and it cannot be built"
        exit 0
    fi
fi
mkdir -p "$LOGS"

# One boot: prints the seconds until the marker, or fails.
boot_once() { # name log argv...
    local name=$1 log=$2
    shift 2
    python3 - "$TIMEOUT" "$log" "$@" <<'EOF'
import os, re, subprocess, sys, time, select
timeout, log, argv = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
marker = re.compile(rb"godwit-guest: init started")
t0 = time.monotonic()
p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT)
buf = b""
ok = False
with open(log, "wb") as f:
    while time.monotonic() - t0 < timeout:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if not r:
            if p.poll() is not None:
                break
            continue
        data = os.read(p.stdout.fileno(), 65536)
        if not data:
            break
        f.write(data)
        buf = buf[-64:] + data
        if marker.search(buf):
            ok = True
            break
    dt = time.monotonic() - t0
p.kill()
p.wait()
if not ok:
    sys.exit(1)
print("%.3f" % dt)
EOF
}

common=(-M virt -m 256M -smp "$SMP" -nographic -kernel "$IMAGE" -initrd "$INITRD"
    -append "console=ttyS0")
g_times=()
q_times=()
for ((i = 1; i <= RUNS; i++)); do
    if ! t=$(boot_once godwit "$LOGS/godwit-$i.log" "$GODWIT" "${common[@]}"); then
        echo "bench-boot: godwit-vm run $i did not reach init (log $LOGS/godwit-$i.log)" >&2
        exit 1
    fi
    g_times+=("$t")
    if ! t=$(boot_once qemu "$LOGS/qemu-$i.log" "$QEMU" "${common[@]}"); then
        echo "bench-boot: qemu run $i did not reach init (log $LOGS/qemu-$i.log)" >&2
        exit 1
    fi
    q_times+=("$t")
    echo "run $i: godwit ${g_times[-1]} s, qemu ${q_times[-1]} s" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
g=$(median "${g_times[@]}")
q=$(median "${q_times[@]}")
printf '%-28s %10s %10s %8s\n' "boot to init (smp $SMP)" "godwit s" "qemu s" "ratio"
printf '%-28s %10.3f %10.3f %8.3f\n' "median of $RUNS" "$g" "$q" "$(awk -v g="$g" -v q="$q" 'BEGIN{print g/q}')"
