#!/usr/bin/env bash
# bench/cpu/profile.sh: where godwit-vm spends its time on a bench workload.
#
# Runs one bench/cpu guest on godwit-vm under `perf record` and prints the
# hottest symbols, then the hottest source lines with their text. In the
# interpreter's rv_exec every guest opcode is one macro line (LOAD_OP(LD, ..),
# ALU_OP(ADD, ..)), so the source-line table reads as a per-opcode profile.
# Needs a build with -g (the default CFLAGS). See docs/bench.md.
#
# usage: bench/cpu/profile.sh [--quick] [--top N] workload...
# env: BUILD (build/release), GODWIT ($BUILD/godwit-vm), PERF_FREQ (1999),
#      PERF_DATA ($BUILD/bench/cpu/perf-WORKLOAD.data, kept for perf report)

set -u

cd "$(dirname "$0")/../.." || exit 2

quick=0
top=10
workloads=()
while (($#)); do
    case "$1" in
    --quick) quick=1 ;;
    --top)
        top=${2:-}
        shift
        ;;
    -h | --help)
        sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    -*)
        echo "profile.sh: unknown option $1" >&2
        exit 2
        ;;
    *) workloads+=("$1") ;;
    esac
    shift
done
if ((${#workloads[@]} == 0)) || ! [[ "$top" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bench/cpu/profile.sh [--quick] [--top N] workload..." >&2
    exit 2
fi

BUILD=${BUILD:-build/release}
GODWIT=${GODWIT:-$BUILD/godwit-vm}
freq=${PERF_FREQ:-1999}
suffix=
((quick)) && suffix=-quick
command -v perf >/dev/null || {
    echo "profile.sh: perf not found" >&2
    exit 2
}
[[ -x $GODWIT ]] || {
    echo "profile.sh: $GODWIT not built" >&2
    exit 2
}

status=0
for w in "${workloads[@]}"; do
    elf=build/guest/bench-$w$suffix.elf
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s "$elf" >&2 || exit 2
    data=${PERF_DATA:-$BUILD/bench/cpu/perf-$w$suffix.data}
    mkdir -p "$(dirname "$data")"
    out=${data%.data}.out
    if ! perf record -q -F "$freq" -o "$data" -- \
        "$GODWIT" -M virt -m 128M -bios none -kernel "$elf" -nographic \
        </dev/null >"$out" 2>&1 || ! grep -q '^DONE' "$out"; then
        echo "profile.sh: $w: the guest run failed, see $out" >&2
        status=1
        continue
    fi
    echo "== $w$suffix: top $top symbols ($data)"
    perf report -i "$data" --stdio --no-children --sort symbol 2>/dev/null |
        grep -v -e '^#' -e '^$' | head -n "$top" |
        awk '{ printf "  %8s  %s\n", $1, $3 }'
    echo "== $w$suffix: top $top source lines"
    perf report -i "$data" --stdio --no-children --sort srcline --full-source-path \
        2>/dev/null | grep -v -e '^#' -e '^$' | head -n "$top" |
        while read -r pct where; do
            file=${where%:*}
            line=${where##*:}
            text=
            if [[ -f $file && $line =~ ^[0-9]+$ ]]; then
                text=$(sed -n "${line}p" "$file" | sed 's/^ *//' | cut -c1-70)
            fi
            printf '  %8s  %-28s %s\n' "$pct" "${where##*/}" "$text"
        done
done
exit $status
