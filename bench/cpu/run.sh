#!/usr/bin/env bash
# bench/cpu/run.sh: guest CPU speed, godwit-vm against QEMU TCG, same run.
#
# Runs each bench/cpu workload (a bare-metal ELF) BENCH_RUNS times on
# godwit-vm and on qemu-system-riscv64, alternating the two (never in
# parallel: the machine has two noisy cores), takes the median wall time of
# each, and prints workload, godwit s, qemu s, ratio godwit/qemu (lower is
# better) and whether the guest checksums match, then the geometric mean of
# the ratios. Exits 1 if any run fails or any checksum differs, 2 on a usage
# or setup error. See docs/bench.md.
#
# usage: bench/cpu/run.sh [--quick] [--qemu-only] [--phases] [workload...]
#   --quick      reduced iterations (the *-quick.elf builds), 1 run by default
#   --qemu-only  only QEMU (validates the guests before godwit-vm builds)
#   --phases     also print per-phase guest-timed medians and ratios
#   workload     int, mem, fp, mmu (default: every bench/cpu/*.c)
# env: BUILD (build/release), BENCH_QUICK=1 (same as --quick),
#      BENCH_RUNS (3, or 1 with --quick),
#      BENCH_TIMEOUT (seconds per run: 900, or 300 with --quick),
#      GODWIT ($BUILD/godwit-vm), QEMU (qemu-system-riscv64),
#      BENCH_LOGS ($BUILD/bench/cpu: every run's guest output)

set -u

cd "$(dirname "$0")/../.." || exit 2

quick=0
[[ ${BENCH_QUICK:-0} == 1 ]] && quick=1 # make bench-cpu BENCH_QUICK=1
qemu_only=0
phases=0
workloads=()
for arg in "$@"; do
    case "$arg" in
    --quick) quick=1 ;;
    --qemu-only) qemu_only=1 ;;
    --phases) phases=1 ;;
    -h | --help)
        sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    -*)
        echo "run.sh: unknown option $arg" >&2
        exit 2
        ;;
    *) workloads+=("$arg") ;;
    esac
done

BUILD=${BUILD:-build/release}
GODWIT=${GODWIT:-$BUILD/godwit-vm}
QEMU=${QEMU:-qemu-system-riscv64}
if ((quick)); then
    runs=${BENCH_RUNS:-1}
    timeout_s=${BENCH_TIMEOUT:-300}
    suffix=-quick
else
    runs=${BENCH_RUNS:-3}
    timeout_s=${BENCH_TIMEOUT:-900}
    suffix=
fi
logs=${BENCH_LOGS:-$BUILD/bench/cpu}

if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "run.sh: BENCH_RUNS must be a positive integer" >&2
    exit 2
fi
if ((${#workloads[@]} == 0)); then
    # The documented order first, then any workload added since.
    for w in int mem fp mmu; do
        [[ -f bench/cpu/$w.c ]] && workloads+=("$w")
    done
    for src in bench/cpu/*.c; do
        w=${src##*/}
        w=${w%.c}
        [[ " ${workloads[*]} " == *" $w "* ]] || workloads+=("$w")
    done
fi
elfs=()
for w in "${workloads[@]}"; do
    if [[ ! -f bench/cpu/$w.c ]]; then
        echo "run.sh: no workload '$w' (bench/cpu/$w.c)" >&2
        exit 2
    fi
    elfs+=("build/guest/bench-$w$suffix.elf")
done

# The guests: the bench part of `make guests`, nothing else.
if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s "${elfs[@]}" >&2; then
    echo "run.sh: building the bench guests failed" >&2
    exit 2
fi
if ! command -v "$QEMU" >/dev/null; then
    echo "run.sh: $QEMU not found" >&2
    exit 2
fi
if ((!qemu_only)) && [[ ! -x "$GODWIT" ]]; then
    echo "run.sh: $GODWIT not built (make, or run.sh --qemu-only)" >&2
    exit 2
fi
mkdir -p "$logs" || exit 2

emus=(qemu)
((qemu_only)) || emus=(godwit qemu)

# run_one EMU ELF LOG: runs one guest, prints its wall time in seconds.
# Returns non-zero if the emulator failed, timed out or the guest said FAIL.
run_one() {
    local emu=$1 elf=$2 log=$3 cmd t0 t1 rc
    if [[ $emu == godwit ]]; then
        cmd=("$GODWIT" -M virt -m 128M -bios none -kernel "$elf" -nographic)
    else
        cmd=("$QEMU" -M virt -m 256M -bios none -nographic -kernel "$elf")
    fi
    t0=$EPOCHREALTIME
    timeout "$timeout_s" "${cmd[@]}" </dev/null >"$log" 2>&1
    rc=$?
    t1=$EPOCHREALTIME
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
    if ((rc == 124)); then
        echo "TIMEOUT after ${timeout_s}s" >>"$log"
    elif ((rc != 0)); then
        echo "EXIT status $rc" >>"$log"
    fi
    ((rc == 0)) && grep -q '^DONE' "$log" && ! grep -q '^FAIL' "$log"
}

median() {
    tr ' ' '\n' | grep . | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) exit;
             if (NR % 2) print v[(NR + 1) / 2];
             else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Checksum lines, tr'ed to one line, so runs compare as strings.
checksums() {
    grep -a '^CHK ' "$1" | tr -d '\r' | tr '\n' ' '
}

status=0
ratios=()
declare -A wall phase_us
printf '%-10s %10s %10s %8s  %s\n' workload "godwit s" "qemu s" ratio checksum
for w in "${workloads[@]}"; do
    elf=build/guest/bench-$w$suffix.elf
    failed=0
    good=()
    for emu in "${emus[@]}"; do wall[$emu]=; done
    for ((r = 1; r <= runs; r++)); do
        # Alternate who goes first, so drift in host load hits both alike.
        order=("${emus[@]}")
        if ((r % 2 == 0 && ${#emus[@]} == 2)); then order=(qemu godwit); fi
        for emu in "${order[@]}"; do
            log=$logs/$w$suffix.$emu.$r.log
            if ! t=$(run_one "$emu" "$elf" "$log"); then
                echo "run.sh: $w: $emu run $r failed (log: $log):" >&2
                grep -a -E '^(FAIL|TIMEOUT|EXIT)' "$log" | sed 's/^/    /' >&2
                failed=1
                continue
            fi
            wall[$emu]+="$t "
            good+=("$log")
            while read -r _ name us; do
                phase_us[$w/$name/$emu]+="$us "
            done < <(grep -a '^TIME ' "$log" | tr -d '\r')
        done
    done
    # QEMU is the oracle: every good run must print its first run's checksums.
    mismatch=0
    ref=
    for log in "${good[@]}"; do
        [[ $log == *.qemu.* ]] && { ref=$log; break; }
    done
    for log in "${good[@]}"; do
        [[ -n $ref ]] || break
        if [[ $(checksums "$log") != "$(checksums "$ref")" ]]; then
            echo "run.sh: $w: checksums of $log differ from $ref:" >&2
            diff <(grep -a '^CHK ' "$ref") <(grep -a '^CHK ' "$log") |
                grep '^[<>]' | sed 's/^</    qemu  /; s/^>/    this  /' >&2
            mismatch=1
        fi
    done
    g=$(median <<<"${wall[godwit]:-}")
    q=$(median <<<"${wall[qemu]:-}")
    ratio=-
    if [[ -n $g && -n $q ]]; then
        ratio=$(awk -v g="$g" -v q="$q" 'BEGIN { printf "%.2f", g / q }')
        ratios+=("$ratio")
    fi
    verdict=ok
    ((mismatch)) && verdict=MISMATCH
    ((failed)) && verdict=FAIL
    ((mismatch || failed)) && status=1
    ((qemu_only)) && verdict="$verdict (qemu only)"
    printf '%-10s %10s %10s %8s  %s\n' "$w" "${g:--}" "${q:--}" "$ratio" "$verdict"
done

if ((${#ratios[@]} > 0)); then
    printf '%s\n' "${ratios[@]}" | awk '{ s += log($1); n++ }
        END { printf "geomean ratio godwit/qemu: %.2f over %d workloads (lower is better)\n", exp(s / n), n }'
fi

if ((phases)); then
    printf '\n%-10s %-10s %10s %10s %8s\n' workload phase "godwit ms" "qemu ms" ratio
    for w in "${workloads[@]}"; do
        log=$logs/$w$suffix.qemu.1.log
        [[ -f $log ]] || continue
        while read -r _ name _; do
            g=$(median <<<"${phase_us[$w/$name/godwit]:-}")
            q=$(median <<<"${phase_us[$w/$name/qemu]:-}")
            awk -v w="$w" -v n="$name" -v g="$g" -v q="$q" 'BEGIN {
                gs = g == "" ? "-" : sprintf("%.1f", g / 1000);
                qs = q == "" ? "-" : sprintf("%.1f", q / 1000);
                rs = (g == "" || q == "" || q == 0) ? "-" : sprintf("%.2f", g / q);
                printf "%-10s %-10s %10s %10s %8s\n", w, n, gs, qs, rs }'
        done < <(grep -a '^TIME ' "$log" | tr -d '\r')
    done
fi

exit $status
