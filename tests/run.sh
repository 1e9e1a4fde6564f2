#!/usr/bin/env bash
# The test runner behind `make test-quick` (quick) and `make test` (full).
#
#   BUILD=build/release tests/run.sh quick|full
#
# Runs, counting each as one test:
#   - every unit test binary in $BUILD/tests/unit/ (one test each);
#   - every fuzz corpus tests/fuzz/corpus/NAME replayed by
#     $BUILD/tests/fuzz/replay_NAME (one test per corpus);
#   - tests/robust.sh: malformed ELF files and wild guests (one test per case);
#   - tests/diff.py: every guest program on godwit-vm vs QEMU (one per program);
#   - tests/fuzz/rvfuzz.sh: random programs, fixed seeds (one test per batch of
#     50; quick runs 50 cases, full 200);
#   - full only: clang-format --dry-run --Werror on the tracked *.c/*.h.
# The last line is the counted summary "N passed, N failed"; the exit status
# is non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."

MODE=${1:-quick}
case "$MODE" in
quick | full) ;;
*)
    echo "usage: tests/run.sh quick|full" >&2
    exit 2
    ;;
esac
export BUILD=${BUILD:-build/release}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-600}
passed=0
failed=0
skipped=0
LOG=build/test-logs
mkdir -p "$LOG"

count() { # count the PASS/FAIL lines of a tool's output (file $1)
    local p f
    p=$(grep -c '^PASS ' "$1" || true)
    f=$(grep -c '^FAIL ' "$1" || true)
    passed=$((passed + p))
    failed=$((failed + f))
}

section() {
    echo
    echo "== $1"
}

# A tool that reports nothing at all is a failure, never a silent pass.
expect_lines() { # file, tool name, tool exit status
    if ! grep -qE '^(PASS|FAIL) ' "$1"; then
        echo "FAIL $2: produced no results (exit $3)" | tee -a "$1"
    elif [ "$3" != 0 ] && ! grep -q '^FAIL ' "$1"; then
        echo "FAIL $2: exit $3 without a FAIL line" | tee -a "$1"
    fi
}

# ---- unit tests -----------------------------------------------------------
section "unit tests ($BUILD/tests/unit)"
out=$LOG/unit.txt
: >"$out"
shopt -s nullglob
units=("$BUILD"/tests/unit/test_*)
for t in "${units[@]}"; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    case "$t" in *.d | *.o) continue ;; esac
    name=$(basename "$t")
    timeout -k 10 "$UNIT_TIMEOUT" "$t" >"$LOG/$name.log" 2>&1
    rc=$?
    if [ "$rc" = 0 ]; then
        echo "PASS $name" | tee -a "$out"
    else
        echo "FAIL $name: exit $rc (log: $LOG/$name.log)" | tee -a "$out"
        tail -5 "$LOG/$name.log" | sed 's/^/    /'
    fi
done
[ ${#units[@]} -gt 0 ] || echo "(no unit test binaries)"
count "$out"

# ---- fuzz corpora -----------------------------------------------------------
section "fuzz corpora replayed ($BUILD/tests/fuzz/replay_*)"
out=$LOG/replay.txt
: >"$out"
for r in "$BUILD"/tests/fuzz/replay_*; do
    [ -x "$r" ] && [ -f "$r" ] || continue
    case "$r" in *.d | *.o) continue ;; esac
    name=${r##*/replay_}
    timeout -k 10 "$UNIT_TIMEOUT" "$r" "tests/fuzz/corpus/$name" >"$LOG/replay_$name.log" 2>&1
    rc=$?
    if [ "$rc" = 0 ]; then
        echo "PASS replay_$name: $(tail -1 "$LOG/replay_$name.log")" | tee -a "$out"
    else
        echo "FAIL replay_$name: exit $rc (log: $LOG/replay_$name.log)" | tee -a "$out"
        tail -5 "$LOG/replay_$name.log" | sed 's/^/    /'
    fi
done
count "$out"

# ---- layering -----------------------------------------------------------------
# The godwit CLI links common, state and qmp only (DESIGN.md §7): none of the
# emulator's symbols, no libfdt or libslirp.  A binary without symbols would
# pass vacuously, so its own cli_ symbols must be there.
section "layering: the godwit CLI links no emulator ($BUILD/godwit)"
cli=$BUILD/godwit
if [ ! -x "$cli" ]; then
    echo "FAIL cli-layering: $cli not built"
    failed=$((failed + 1))
else
    syms=$(nm "$cli" 2>/dev/null | awk '{ print $NF }')
    emu=$(grep -E '^(rv_|virt_|hart|board)' <<<"$syms" | head -5 | tr '\n' ' ')
    libs=$(readelf -d "$cli" 2>/dev/null | grep -oE 'lib(fdt|slirp)[^]]*' | tr '\n' ' ')
    if ! grep -q '^cli_' <<<"$syms"; then
        echo "FAIL cli-layering: nm finds no cli_ symbol in $cli (stripped?)"
        failed=$((failed + 1))
    elif [ -n "$emu$libs" ]; then
        echo "FAIL cli-layering: $cli links the emulator: ${emu}${libs}"
        failed=$((failed + 1))
    else
        echo "PASS cli-layering: no rv_/virt_/hart/board symbol, no libfdt/libslirp"
        passed=$((passed + 1))
    fi
fi

# ---- hostile inputs ---------------------------------------------------------
section "robustness: malformed ELF files, wild guests"
out=$LOG/robust.txt
tests/robust.sh >"$out" 2>&1
rc=$?
expect_lines "$out" robust "$rc"
grep -E '^(PASS|FAIL) ' "$out"
grep -A3 '^FAIL ' "$out" | grep '^    ' || true
count "$out"

# ---- guest programs: godwit-vm vs QEMU -------------------------------------
section "guest programs vs QEMU (tests/diff.py)"
out=$LOG/diff.txt
tests/diff.py --vm "$BUILD/godwit-vm" >"$out" 2>&1
rc=$?
expect_lines "$out" diff "$rc"
grep -vE '^diff: ' "$out"
count "$out"

# ---- random programs ----------------------------------------------------------
section "random programs vs QEMU (tests/fuzz/rvfuzz.sh)"
out=$LOG/fuzz.txt
if [ "$MODE" = quick ]; then n=${FUZZ_QUICK:-50}; else n=${FUZZ_FULL:-200}; fi
tests/fuzz/rvfuzz.sh "$n" 1 >"$out" 2>&1
rc=$?
expect_lines "$out" fuzz "$rc"
cat "$out"
count "$out"

# ---- Linux guests ---------------------------------------------------------------
# Debian's riscv64 kernel + busybox initramfs (make guest-image, cached): boot,
# SMP, console, reboot/poweroff, disks, networks. Full runs only (minutes);
# LINUX=1 adds them to a quick run. A case that cannot run prints SKIP and is
# counted as skipped, never as passed.
if [ "$MODE" = full ] || [ "${LINUX:-0}" = 1 ]; then
    for t in tests/linux/*_test.py; do
        name=$(basename "$t" .py)
        section "Linux guest: $name"
        out=$LOG/linux-$name.txt
        timeout "${LINUX_TIMEOUT:-1200}" python3 "$t" >"$out" 2>&1
        rc=$?
        expect_lines "$out" "$name" "$rc"
        grep -E '^(PASS|FAIL|SKIP) ' "$out"
        grep -A5 '^FAIL ' "$out" | grep -v '^FAIL ' | head -20 || true
        count "$out"
        skipped=$((skipped + $(grep -c '^SKIP ' "$out" || true)))
    done
fi

# ---- format ---------------------------------------------------------------------
if [ "$MODE" = full ]; then
    section "clang-format"
    mapfile -t files < <(git ls-files '*.c' '*.h')
    if [ ${#files[@]} -eq 0 ]; then
        echo "FAIL clang-format: no tracked C files found"
        failed=$((failed + 1))
    elif clang-format --dry-run --Werror "${files[@]}" >"$LOG/format.txt" 2>&1; then
        echo "PASS clang-format (${#files[@]} files)"
        passed=$((passed + 1))
    else
        echo "FAIL clang-format: $(grep -c 'error:' "$LOG/format.txt") violations in" \
            "$(grep 'error:' "$LOG/format.txt" | cut -d: -f1 | sort -u | tr '\n' ' ')"
        failed=$((failed + 1))
    fi
fi

echo
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
