#!/usr/bin/env bash
# Hostile-input checks for godwit-vm: malformed ELF files, hostile command
# lines (RAM below the minimum, named pipes as -kernel/-initrd/-bios/-drive,
# a ninth virtio device) and guests that
# jump into nowhere must make it exit non-zero with a message on stderr,
# without dying of a signal (status < 128) and within a timeout.  Also: a
# guest sleeping in WFI must not burn host CPU.  A good
# program and a guest failure code are checked too, so the checks cannot
# pass just because godwit-vm fails on everything.
#
#   BUILD=build/release tests/robust.sh
#
# Prints "PASS name" / "FAIL name: why" per case and "robust: N passed, N
# failed" at the end; exits non-zero if anything failed.  The crafted
# inputs are written to build/robust/.
set -u
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build/release}
VM=$BUILD/godwit-vm
OUT=build/robust
TIMEOUT=${TIMEOUT:-20}
RV_CC=${RV_CC:-riscv64-unknown-elf-gcc}
GOOD=build/guest/hello.elf
mkdir -p "$OUT"
passed=0
failed=0

pass() {
    echo "PASS $1"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL $1: $2"
    failed=$((failed + 1))
}

# run_vm NAME EXPECT WANT ARGS...: godwit-vm -M virt -nographic ARGS.
# EXPECT is "ok" (status 0), "error" (1..127 with a message on stderr) or a
# number; WANT, if not empty, must appear in that message.
run_vm() {
    local name=$1 expect=$2 want=$3 rc err
    shift 3
    timeout -k 5 "$TIMEOUT" "$VM" -M virt -nographic "$@" \
        </dev/null >"$OUT/$name.out" 2>"$OUT/$name.err"
    rc=$?
    err=$(head -c 300 "$OUT/$name.err" | tr '\n' ' ')
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        fail "$name" "no exit within ${TIMEOUT}s"
    elif [ "$rc" -ge 128 ]; then
        fail "$name" "killed by signal $((rc - 128)); stderr: $err"
    elif [ "$expect" = ok ]; then
        if [ "$rc" = 0 ]; then pass "$name"; else fail "$name" "exit $rc; stderr: $err"; fi
    elif [ "$expect" = error ]; then
        if [ "$rc" = 0 ]; then
            fail "$name" "exit 0 for a bad guest"
        elif [ ! -s "$OUT/$name.err" ]; then
            fail "$name" "exit $rc but nothing on stderr"
        elif [ -n "$want" ] && ! grep -qF -- "$want" "$OUT/$name.err"; then
            fail "$name" "exit $rc, but stderr does not say '$want': $err"
        else
            pass "$name"
            echo "    exit $rc: $err"
        fi
    elif [ "$rc" = "$expect" ]; then
        pass "$name"
    else
        fail "$name" "exit $rc, expected $expect; stderr: $err"
    fi
}

# run NAME EXPECT FILE: the bare-metal program FILE on 128 MiB.
run() {
    run_vm "$1" "$2" "" -m 128M -bios none -kernel "$3"
}

if [ ! -x "$VM" ]; then
    fail "robust" "$VM not built"
    echo "robust: $passed passed, $failed failed"
    exit 1
fi
if [ ! -f "$GOOD" ]; then
    fail "robust" "$GOOD missing (make guests)"
    echo "robust: $passed passed, $failed failed"
    exit 1
fi

# patch FILE OFFSET HEXBYTES: overwrite bytes in place.
patch() {
    printf "$(echo "$3" | sed 's/../\\x&/g')" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# --- sanity: the checks below mean something only if this works ---------
run good-program ok "$GOOD"

# --- malformed ELF files -----------------------------------------------
: >"$OUT/empty.elf"
run elf-empty error "$OUT/empty.elf"
head -c 40 "$GOOD" >"$OUT/trunc-header.elf"
run elf-truncated-header error "$OUT/trunc-header.elf"
size=$(stat -c %s "$GOOD")
head -c $((size / 3)) "$GOOD" >"$OUT/trunc-body.elf"
run elf-truncated-body error "$OUT/trunc-body.elf"
head -c 5000 /dev/urandom >"$OUT/garbage.elf"
run elf-garbage error "$OUT/garbage.elf"
{ printf '\177ELF'; head -c 4000 /dev/urandom; } >"$OUT/garbage-magic.elf"
run elf-garbage-after-magic error "$OUT/garbage-magic.elf"
cp "$GOOD" "$OUT/x86.elf" && patch "$OUT/x86.elf" 18 3e00 # EM_X86_64
run elf-wrong-machine error "$OUT/x86.elf"
cp "$GOOD" "$OUT/class32.elf" && patch "$OUT/class32.elf" 4 01
run elf-class32 error "$OUT/class32.elf"
cp "$GOOD" "$OUT/bigendian.elf" && patch "$OUT/bigendian.elf" 5 02
run elf-big-endian error "$OUT/bigendian.elf"
cp "$GOOD" "$OUT/phoff.elf" && patch "$OUT/phoff.elf" 32 f0ffffffffffff7f # e_phoff
run elf-phoff-out-of-file error "$OUT/phoff.elf"
cp "$GOOD" "$OUT/phnum.elf" && patch "$OUT/phnum.elf" 56 ffff # e_phnum
run elf-phnum-huge error "$OUT/phnum.elf"
# The first PT_LOAD header with file data: p_offset (at +8), p_paddr (+24),
# p_filesz (+32) made impossible.
phoff=$(od -An -t u8 -j 32 -N 8 "$GOOD" | tr -d ' ')
phnum=$(od -An -t u2 -j 56 -N 2 "$GOOD" | tr -d ' ')
for i in $(seq 0 $((phnum - 1))); do
    type=$(od -An -t u4 -j $((phoff + i * 56)) -N 4 "$GOOD" | tr -d ' ')
    filesz=$(od -An -t u8 -j $((phoff + i * 56 + 32)) -N 8 "$GOOD" | tr -d ' ')
    if [ "$type" = 1 ] && [ "$filesz" != 0 ]; then
        phoff=$((phoff + i * 56))
        break
    fi
done
cp "$GOOD" "$OUT/poffset.elf" && patch "$OUT/poffset.elf" $((phoff + 8)) 00000000ffff0000
run elf-segment-offset-out-of-file error "$OUT/poffset.elf"
cp "$GOOD" "$OUT/pfilesz.elf" && patch "$OUT/pfilesz.elf" $((phoff + 32)) 0000001000000000
run elf-segment-size-huge error "$OUT/pfilesz.elf"
# Load address outside RAM (p_paddr and p_vaddr = 0x20000000000).
cp "$GOOD" "$OUT/paddr.elf" && patch "$OUT/paddr.elf" $((phoff + 16)) 0000000000020000 &&
    patch "$OUT/paddr.elf" $((phoff + 24)) 0000000000020000
run elf-segment-outside-ram error "$OUT/paddr.elf"
run elf-missing-file error "$OUT/does-not-exist.elf"

# --- hostile command lines ----------------------------------------------
# RAM below the board's minimum (QEMU boots -m 0 with its default size).
run_vm ram-zero error "too small" -m 0 -bios none -kernel "$GOOD"
run_vm ram-1m error "too small" -m 1M -bios none -kernel "$GOOD"
# Named pipes without a writer: refused at once, not a blocking open().
rm -f "$OUT/fifo" && mkfifo "$OUT/fifo"
run_vm fifo-kernel error "not a regular file" -m 128M -bios none -kernel "$OUT/fifo"
run_vm fifo-initrd error "not a regular file" -m 128M -bios none -kernel "$GOOD" \
    -initrd "$OUT/fifo"
run_vm fifo-bios error "not a regular file" -m 128M -bios "$OUT/fifo" -kernel "$GOOD"
run_vm fifo-drive error "not a regular file" -m 128M -bios none -kernel "$GOOD" \
    -drive "file=$OUT/fifo,format=raw,if=none,id=d0,readonly=on" \
    -device virtio-blk-device,drive=d0
run_vm dir-kernel error "not a regular file" -m 128M -bios none -kernel "$OUT"
run_vm fifo-rng error "not a regular file" -m 128M -bios none -kernel "$GOOD" \
    -object "rng-random,id=r0,filename=$OUT/fifo" -device virtio-rng-device,rng=r0
run_vm fifo-serial error "no reader" -m 128M -bios none -kernel "$GOOD" -serial "file:$OUT/fifo"
run_vm fifo-incoming error "not a regular file" -m 128M -bios none -kernel "$GOOD" \
    -incoming "file:$OUT/fifo"
# The board has eight virtio-mmio slots: eight devices run, a ninth is refused.
rng=()
for i in 1 2 3 4 5 6 7 8; do rng+=(-device virtio-rng-device); done
run_vm virtio-eight-devices ok "" -m 128M -bios none -kernel "$GOOD" "${rng[@]}"
run_vm virtio-nine-devices error "no free virtio-mmio slot" -m 128M -bios none -kernel "$GOOD" \
    "${rng[@]}" -device virtio-rng-device

# --- guests that jump into nowhere ------------------------------------
build_asm() { # name, body
    printf '.globl _start\n_start:\n%s\n' "$2" >"$OUT/$1.S"
    "$RV_CC" -march=rv64gc -mabi=lp64d -nostdlib -nostartfiles -T tests/guest/lib/link.ld \
        -Wl,--no-warn-rwx-segments -o "$OUT/$1.elf" "$OUT/$1.S"
}
if build_asm jump-zero '    csrw mtvec, zero
    jr zero' &&
    build_asm jump-high '    li t0, 0x4000000000
    csrw mtvec, t0
    jr t0' &&
    build_asm jump-ram-end '    li t0, 0x88000000
    csrw mtvec, t0
    jr t0' &&
    build_asm exit-code-5 '    li t0, 0x100000
    li t1, 0x53333
    sw t1, 0(t0)
1:  j 1b'; then
    run guest-jump-to-0-mtvec-0 error "$OUT/jump-zero.elf"
    run guest-jump-to-unmapped-high error "$OUT/jump-high.elf"
    run guest-jump-past-ram-end error "$OUT/jump-ram-end.elf"
    run guest-fail-code-5 5 "$OUT/exit-code-5.elf"
else
    fail guest-asm "cannot build the crafted guests with $RV_CC"
fi

# --- WFI must sleep, not spin: 0.5 s of guest time waiting for the timer
# should cost far less than 0.5 s of host CPU.
if build_asm wfi-sleep '    li t0, 0x200bff8
    ld t1, 0(t0)
    li t2, 5000000
    add t1, t1, t2
    li t0, 0x2004000
    sd t1, 0(t0)
    li t0, 0x80
    csrs mie, t0
1:  wfi
    csrr t0, mip
    andi t0, t0, 0x80
    beqz t0, 1b
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
2:  j 2b'; then
    # rc, wall seconds and the child's CPU seconds (no dependency on /usr/bin/time)
    read -r rc wall cpu < <(python3 -c '
import os, subprocess, sys, time
t = time.time()
with open(sys.argv[1], "wb") as out, open(sys.argv[2], "wb") as err:
    p = subprocess.Popen(sys.argv[3:], stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    _, status, ru = os.wait4(p.pid, 0)
print(os.waitstatus_to_exitcode(status), "%.2f" % (time.time() - t),
      "%.2f" % (ru.ru_utime + ru.ru_stime))
 ' "$OUT/wfi-sleep.out" "$OUT/wfi-sleep.err" timeout -k 5 "$TIMEOUT" "$VM" -M virt -m 128M \
        -bios none -nographic -kernel "$OUT/wfi-sleep.elf")
    if [ "$rc" != 0 ]; then
        fail wfi-sleeps "exit $rc"
    elif awk -v w="$wall" 'BEGIN { exit !(w < 0.45) }'; then
        fail wfi-sleeps "woke too early: ${wall}s wall for 0.5 s of mtime"
    elif awk -v c="$cpu" 'BEGIN { exit !(c > 0.25) }'; then
        fail wfi-sleeps "${cpu}s of CPU during a 0.5 s WFI (spinning?)"
    else
        pass wfi-sleeps
        echo "    ${wall}s wall, ${cpu}s CPU"
    fi
else
    fail wfi-sleeps "cannot build the guest"
fi

echo "robust: $passed passed, $failed failed"
[ "$failed" = 0 ]
