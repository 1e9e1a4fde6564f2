#!/usr/bin/env bash
# The test runner behind `make test-quick` (quick), `make test` (full san)
# and `make test-san` (san).
#
#   BUILD=build/release [SAN_BUILD=build/san-address-undefined] tests/run.sh PART...
#
# PART is quick, full or san; parts run in the order given and share one
# count.  quick and full run, counting each as one test:
#   - every unit test binary in $BUILD/tests/unit/ (one test each);
#   - every fuzz corpus tests/fuzz/corpus/NAME replayed by
#     $BUILD/tests/fuzz/replay_NAME (one test per corpus);
#   - the layering check: $BUILD/godwit links no emulator symbol (one test);
#   - tests/hosts/*_test.py: godwitd on this host (one test per case);
#   - tests/robust.sh: malformed ELF files and wild guests (one test per case);
#   - tests/diff.py: every guest program on godwit-vm vs QEMU (one per program);
#   - tests/fuzz/rvfuzz.sh: random programs, fixed seeds (one test per batch of
#     50; quick runs 50 cases, full 200);
#   - full only (or LINUX=1): tests/linux/*_test.py, one test per case;
#   - full only: clang-format --dry-run --Werror on the tracked *.c/*.h.
# san runs the ASan + UBSan build in $SAN_BUILD (make SAN=address,undefined):
# its unit tests, its corpus replays and tests/linux/state_test.py and
# migrate_test.py with shorter chains (SAN_STATE_LOOPS, 10; SAN_MIGRATE_LOOPS,
# 4), hold_test.py (about 50 s), storage_test.py's bare-metal cases
# (SAN_STORAGE_CASES), netfwd_test.py and postcopy_test.py's bare-metal cases
# (SAN_POSTCOPY_CASES); its results are named san:NAME.
# The last line is the counted summary "N passed, N failed"; the exit status
# is non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."

[ $# -gt 0 ] || set -- quick
MODE=
RUN_SAN=0
for part in "$@"; do
    case "$part" in
    quick | full) MODE=$part ;;
    san) RUN_SAN=1 ;;
    *)
        echo "usage: tests/run.sh quick|full|san..." >&2
        exit 2
        ;;
    esac
done
export BUILD=${BUILD:-build/release}
SAN_BUILD=${SAN_BUILD:-build/san-address-undefined}
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
unit_tests() { # build dir, name prefix
    local out=$LOG/${2}unit.txt t name rc units
    section "${2}unit tests ($1/tests/unit)"
    : >"$out"
    shopt -s nullglob
    units=("$1"/tests/unit/test_*)
    for t in "${units[@]}"; do
        [ -x "$t" ] && [ -f "$t" ] || continue
        case "$t" in *.d | *.o) continue ;; esac
        name=$2$(basename "$t")
        timeout -k 10 "$UNIT_TIMEOUT" "$t" >"$LOG/$name.log" 2>&1
        rc=$?
        if [ "$rc" = 0 ]; then
            echo "PASS $name" | tee -a "$out"
        else
            echo "FAIL $name: exit $rc (log: $LOG/$name.log)" | tee -a "$out"
            tail -5 "$LOG/$name.log" | sed 's/^/    /'
        fi
    done
    [ ${#units[@]} -gt 0 ] || echo "FAIL ${2}unit: no unit test binaries in $1" | tee -a "$out"
    count "$out"
}

# ---- fuzz corpora -----------------------------------------------------------
fuzz_replays() { # build dir, name prefix
    local out=$LOG/${2}replay.txt r name rc
    section "${2}fuzz corpora replayed ($1/tests/fuzz/replay_*)"
    : >"$out"
    for r in "$1"/tests/fuzz/replay_*; do
        [ -x "$r" ] && [ -f "$r" ] || continue
        case "$r" in *.d | *.o) continue ;; esac
        name=${r##*/replay_}
        timeout -k 10 "$UNIT_TIMEOUT" "$r" "tests/fuzz/corpus/$name" \
            >"$LOG/${2}replay_$name.log" 2>&1
        rc=$?
        if [ "$rc" = 0 ]; then
            echo "PASS ${2}replay_$name: $(tail -1 "$LOG/${2}replay_$name.log")" | tee -a "$out"
        else
            echo "FAIL ${2}replay_$name: exit $rc (log: $LOG/${2}replay_$name.log)" | tee -a "$out"
            tail -5 "$LOG/${2}replay_$name.log" | sed 's/^/    /'
        fi
    done
    grep -q '^PASS \|^FAIL ' "$out" ||
        echo "FAIL ${2}replay: no replay binaries in $1" | tee -a "$out"
    count "$out"
}

# ---- Linux guests ---------------------------------------------------------------
# Debian's riscv64 kernel + busybox initramfs (make guest-image, cached): boot,
# SMP, console, reboot/poweroff, disks, networks. A case that cannot run
# prints SKIP and is counted as skipped, never as passed.
linux_test() { # script, name prefix (environment: BUILD and the script's knobs)
    local t=$1 name out rc
    name=$2$(basename "$t" .py)
    section "Linux guest: $name"
    out=$LOG/linux-$name.txt
    timeout "${LINUX_TIMEOUT:-1200}" python3 "$t" 2>&1 |
        sed -E "s/^(PASS|FAIL|SKIP) /\1 $2/" >"$out"
    rc=${PIPESTATUS[0]}
    expect_lines "$out" "$name" "$rc"
    grep -E '^(PASS|FAIL|SKIP) ' "$out"
    grep -A5 '^FAIL ' "$out" | grep -v '^FAIL ' | head -20 || true
    count "$out"
    skipped=$((skipped + $(grep -c '^SKIP ' "$out" || true)))
}

# quick or full: the release build ($BUILD)
if [ -n "$MODE" ]; then
    unit_tests "$BUILD" ""
    fuzz_replays "$BUILD" ""

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

    # ---- hosts: godwitd (tests/hosts) ---------------------------------------------
    for t in tests/hosts/*_test.py; do
        name=$(basename "$t" .py)
        section "hosts: $name"
        out=$LOG/hosts-$name.txt
        timeout "${HOSTS_TIMEOUT:-1200}" python3 "$t" >"$out" 2>&1
        rc=$?
        expect_lines "$out" "$name" "$rc"
        grep -E '^(PASS|FAIL|SKIP) ' "$out"
        grep -A5 '^FAIL ' "$out" | grep -v '^FAIL ' | head -20 || true
        count "$out"
        skipped=$((skipped + $(grep -c '^SKIP ' "$out" || true)))
    done

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

    # Linux guests: full runs only (minutes); LINUX=1 adds them to a quick run.
    if [ "$MODE" = full ] || [ "${LINUX:-0}" = 1 ]; then
        for t in tests/linux/*_test.py; do
            linux_test "$t" ""
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
fi

# ---- sanitizers ------------------------------------------------------------------
# The ASan + UBSan build (make SAN=address,undefined).  A report aborts the
# program that made it (UBSan is built with -fno-sanitize-recover): a signal,
# never an exit status a test could take for a clean refusal.  The Linux
# tests keep every godwit-vm's stderr in $SAN_BUILD/tests/linux, which is
# searched for reports afterwards, so one from a process the test killed or
# expected to fail is not missed either.
if [ "$RUN_SAN" = 1 ]; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:abort_on_error=1}
    unit_tests "$SAN_BUILD" san:
    fuzz_replays "$SAN_BUILD" san:
    rm -rf "$SAN_BUILD/tests/linux"
    for t in tests/linux/state_test.py tests/linux/migrate_test.py tests/linux/hold_test.py \
        tests/linux/storage_test.py tests/linux/netfwd_test.py tests/linux/postcopy_test.py; do
        BUILD=$SAN_BUILD GODWIT_VM=$SAN_BUILD/godwit-vm \
            STATE_LOOPS=${SAN_STATE_LOOPS:-10} MIGRATE_LOOPS=${SAN_MIGRATE_LOOPS:-4} \
            STORAGE_TEST_CASES=${SAN_STORAGE_CASES:-baremetal,chain,fallocated,hostile} \
            POSTCOPY_TEST_CASES=${SAN_POSTCOPY_CASES:-oracle,refusals,hostile} \
            linux_test "$t" san:
    done
    section "san: sanitizer reports in the Linux tests' logs ($SAN_BUILD/tests/linux)"
    nlogs=$(find "$SAN_BUILD/tests/linux" -type f 2>/dev/null | wc -l)
    reports=$(grep -rlE 'ERROR: (Address|Leak)Sanitizer|runtime error:' \
        "$SAN_BUILD/tests/linux" 2>/dev/null | head -5 | tr '\n' ' ')
    if [ "$nlogs" = 0 ]; then
        echo "FAIL san:reports: no logs in $SAN_BUILD/tests/linux to search"
        failed=$((failed + 1))
    elif [ -n "$reports" ]; then
        echo "FAIL san:reports: $reports"
        failed=$((failed + 1))
    else
        echo "PASS san:reports: none in $nlogs logs"
        passed=$((passed + 1))
    fi
fi

echo
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
