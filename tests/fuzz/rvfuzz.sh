#!/usr/bin/env bash
# Random-program differential fuzzing of godwit-vm against qemu-system-riscv64.
#
#   tests/fuzz/rvfuzz.sh [COUNT [FIRST_SEED]]
#
# Generates COUNT programs (seeds FIRST_SEED, FIRST_SEED+1, ...) with
# $BUILD/tests/tools/rvfuzz, runs each on QEMU (the oracle; command line in
# tests/qemu-cmdline, results cached by ELF hash in build/qemu-cache/fuzz)
# and on godwit-vm, and compares the register/memory dumps.  Prints one line
# per batch of $BATCH cases:
#     PASS fuzz seeds A-B
#     FAIL fuzz seeds A-B: N of M differ      (+ one indented line per case)
# and a summary line; exits non-zero if any case differs.  A differing case
# is kept in build/fuzz-failures/seed-N/ (case.elf, case.S listing, qemu.out,
# godwit.out, godwit.err, diff.txt naming the first differing register).
#
# Defaults: COUNT=200, FIRST_SEED=1 (deterministic, as in `make test`).
# A long run is one command:
#     tests/fuzz/rvfuzz.sh 100000 $RANDOM
# Environment: BUILD (build/release), JOBS (nproc), BATCH (50), TIMEOUT (30 s
# per emulator run), RVFUZZ_INSNS (150 per segment), RVFUZZ_SEGMENTS (4).
set -u
cd "$(dirname "$0")/../.."

COUNT=${1:-200}
SEED=${2:-1}
BUILD=${BUILD:-build/release}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
BATCH=${BATCH:-50}
TIMEOUT=${TIMEOUT:-30}
INSNS=${RVFUZZ_INSNS:-150}
SEGMENTS=${RVFUZZ_SEGMENTS:-4}
VM=$BUILD/godwit-vm
RVFUZZ=$BUILD/tests/tools/rvfuzz
QEMU_CMD=$(grep -v '^#' tests/qemu-cmdline | head -1)
CACHE=build/qemu-cache/fuzz
FAILDIR=build/fuzz-failures

for f in "$VM" "$RVFUZZ"; do
    if [ ! -x "$f" ]; then
        echo "FAIL fuzz: $f not built"
        echo "rvfuzz: 0 cases, 1 failed"
        exit 1
    fi
done
mkdir -p "$CACHE" "$FAILDIR"
WORK=$(mktemp -d build/fuzz-work.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# Run a private copy, so a rebuild during a long run cannot break it.
mkdir -p "$WORK/bin"
cp "$VM" "$WORK/bin/godwit-vm" && cp "$RVFUZZ" "$WORK/bin/rvfuzz" || exit 1
VM=$WORK/bin/godwit-vm
RVFUZZ=$WORK/bin/rvfuzz
SALT=$(printf '%s|%s' "$QEMU_CMD" "$(${QEMU_CMD%% *} --version 2>/dev/null | head -1)" |
       sha256sum | cut -c1-16)

# One case: prints nothing on success, one line on failure.
run_case() {
    local seed=$1 elf=$WORK/case-$1.elf key qout gout gerr rc qrc
    key=$CACHE/$(cat "$elf" | sha256sum | cut -c1-32)-$SALT
    if [ -f "$key.rc" ]; then
        qrc=$(cat "$key.rc")
    else
        timeout "$TIMEOUT" $QEMU_CMD "$elf" </dev/null >"$WORK/q$seed.out" 2>/dev/null
        qrc=$?
        if [ "$qrc" = 0 ] || [ "$qrc" = 3 ]; then
            cp "$WORK/q$seed.out" "$key.out.tmp$$" && mv "$key.out.tmp$$" "$key.out"
            echo "$qrc" >"$key.rc.tmp$$" && mv "$key.rc.tmp$$" "$key.rc"
        fi
    fi
    [ -f "$key.out" ] && cp "$key.out" "$WORK/q$seed.out"
    qout=$WORK/q$seed.out
    gout=$WORK/g$seed.out
    gerr=$WORK/g$seed.err
    timeout "$TIMEOUT" "$VM" -M virt -m 128M -bios none -nographic -kernel "$elf" \
        </dev/null >"$gout" 2>"$gerr"
    rc=$?
    local why=""
    if [ "$qrc" != 0 ]; then
        why="oracle: QEMU exit $qrc (generator produced a trapping program?)"
    elif [ "$(wc -l <"$qout")" != $((SEGMENTS * 68)) ]; then
        why="oracle: QEMU printed $(wc -l <"$qout") lines, expected $((SEGMENTS * 68))"
    elif ! "$RVFUZZ" cmp "$qout" "$gout" >"$WORK/d$seed.txt"; then
        why=$(head -1 "$WORK/d$seed.txt")
    elif [ "$rc" != 0 ]; then
        why="godwit-vm exit $rc, QEMU 0"
    fi
    if [ -n "$why" ]; then
        local dir=$FAILDIR/seed-$seed
        mkdir -p "$dir"
        cp "$elf" "$dir/case.elf"
        "$RVFUZZ" gen "$seed" "$dir/regen.elf" -n "$INSNS" -s "$SEGMENTS" -a "$dir/case.S" \
            >/dev/null 2>&1
        rm -f "$dir/regen.elf"
        cp "$qout" "$dir/qemu.out"
        cp "$gout" "$dir/godwit.out"
        cp "$gerr" "$dir/godwit.err"
        echo "$why (godwit exit $rc)" >"$dir/diff.txt"
        echo "seed $seed: $why [godwit exit $rc] -> $dir"
    fi
}
export -f run_case
export WORK CACHE SALT QEMU_CMD TIMEOUT VM RVFUZZ FAILDIR INSNS SEGMENTS

total=0
bad_cases=0
pass_batches=0
fail_batches=0
start=$(date +%s)
s=$SEED
end=$((SEED + COUNT))
while [ "$s" -lt "$end" ]; do
    n=$BATCH
    [ $((s + n)) -gt "$end" ] && n=$((end - s))
    if ! "$RVFUZZ" batch "$WORK" "$s" "$n" -n "$INSNS" -s "$SEGMENTS"; then
        echo "FAIL fuzz seeds $s-$((s + n - 1)): generator failed"
        fail_batches=$((fail_batches + 1))
        s=$((s + n))
        continue
    fi
    out=$(seq "$s" $((s + n - 1)) | xargs -P "$JOBS" -I{} bash -c 'run_case {}')
    nbad=$(printf '%s' "$out" | grep -c '^seed ' || true)
    if [ "$nbad" = 0 ]; then
        echo "PASS fuzz seeds $s-$((s + n - 1))"
        pass_batches=$((pass_batches + 1))
    else
        echo "FAIL fuzz seeds $s-$((s + n - 1)): $nbad of $n differ"
        printf '%s\n' "$out" | grep '^seed ' | sort -t' ' -k2 -n | sed 's/^/    /'
        fail_batches=$((fail_batches + 1))
    fi
    rm -f "$WORK"/*.elf "$WORK"/*.out "$WORK"/*.err "$WORK"/*.txt
    total=$((total + n))
    bad_cases=$((bad_cases + nbad))
    s=$((s + n))
done
secs=$(($(date +%s) - start))
echo "rvfuzz: $total cases (seeds $SEED-$((end - 1)), $INSNS x $SEGMENTS insns) in ${secs}s," \
    "$bad_cases differ; $pass_batches passed, $fail_batches failed"
[ "$fail_batches" = 0 ]
