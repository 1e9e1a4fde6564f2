#!/usr/bin/env bash
# `make demo`: what godwit is for, in about a minute: a running VM moves
# live between two hosts while a client keeps talking to it.
#
# Two hosts on this machine, ha and hb: each a godwitd in its own network
# namespace with its own state folder, joined by a bridge (the "rack";
# scripts/hosts.sh, docs/testing.md "Hosts on one machine").  The hosts pair
# over mutual TLS (godwit peer token / add); a Debian riscv64 VM with a
# small web service (busybox httpd at 10.77.0.100 answering "godwit-guest
# up N s") is created and started on ha (godwit vm create / start); a
# client in a third namespace (scripts/demo_client.py) asks it twice a
# second and prints every answer with a timestamp while the VM migrates
# live ha -> hb -> ha (godwit migrate NAME PEER --live, with its progress
# bar on a terminal, one line per phase otherwise); `godwit vm list` on
# both hosts after each hop.  At the end the client says the longest time
# it waited between two answers.  The guest keeps its MAC and IP wherever
# it runs, so the client talks to one address throughout.  Then the VM
# moves suspended (godwit migrate --suspend --resume --confirm manual, then
# godwit job confirm): saved on ha, its state and files sent in
# checksummed chunks, resumed on hb; its uptime goes on from where it
# stopped.
#
# Needs root and network namespaces (checked first).  Builds what it needs:
# godwit-vm, godwitd and godwit (make), the guest image (make guest-image:
# downloads Debian packages the first time, cached in ~/.cache/godwit/guest).
# Everything it made (namespaces, processes, the state folder) is removed on
# exit, Ctrl-C included.
#
# Environment: BUILD (build/release), DEMO_SKIP_BUILD=1 (use what is
# built), DEMO_PAUSE (seconds to watch the client between steps, 4),
# DEMO_BANDWIDTH (the migration stream's cap in Mbit/s, 200; 0: none),
# DEMO_KEEP=1 (leave everything up at the end; `scripts/hosts.sh down`
# removes it), GODWIT_HOSTS_PREFIX (gwdemo), GODWIT_GUEST_IMAGE and
# GODWIT_GUEST_INITRD (another guest).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build/release}
export BUILD
export GODWIT_HOSTS_PREFIX=${GODWIT_HOSTS_PREFIX:-gwdemo}
PREFIX=$GODWIT_HOSTS_PREFIX
STATE=${GODWIT_HOSTS_STATE:-/tmp/$PREFIX-state}
export GODWIT_HOSTS_STATE=$STATE
PAUSE=${DEMO_PAUSE:-4}
MBPS=${DEMO_BANDWIDTH:-200}
GODWIT=$BUILD/godwit
VM=demo
GUEST_IP=10.77.0.100

if [ -t 1 ]; then
    B=$'\033[1m' D=$'\033[2m' C=$'\033[36m' N=$'\033[0m' CLR=$'\r\033[K'
else
    B='' D='' C='' N='' CLR=''
fi
# Every line starts by erasing the current one: the client prints from the
# background, and on a terminal `godwit migrate` redraws its bar in place.
step() { printf '%s\n%s== %s%s\n' "$CLR" "$B" "$*" "$N"; }
say() { printf '%s%s   %s%s\n' "$CLR" "$C" "$*" "$N"; }
note() { printf '%sdemo: %s\n' "$CLR" "$*"; }
die() {
    printf '%sdemo: %s\n' "$CLR" "$*" >&2
    exit 1
}

# ---- can this machine run it? (before building anything)
[ "$(id -u)" = 0 ] || die "needs root (it makes network namespaces, bridges and TAP devices): sudo make demo"
command -v ip >/dev/null || die "needs iproute2 ('ip'): ./scripts/install-deps.sh"
command -v python3 >/dev/null || die "needs python3: ./scripts/install-deps.sh"
probe=$PREFIX-probe$$
if ! err=$(ip netns add "$probe" 2>&1); then
    die "this machine cannot make network namespaces ('ip netns add' said: $err); the demo needs them (a container needs CAP_SYS_ADMIN and CAP_NET_ADMIN)"
fi
if ! err=$( { ip -n "$probe" link add gwprobe0 type bridge &&
    ip -n "$probe" link add gwprobe1 type veth peer name gwprobe2; } 2>&1); then
    ip netns del "$probe" 2>/dev/null || true
    die "network namespaces work but bridges or veth pairs do not ($err); the demo needs both"
fi
ip netns del "$probe"
[ -c /dev/net/tun ] || die "no /dev/net/tun: the VMs' TAP devices need it (modprobe tun)"

# shellcheck disable=SC2016 # expanded by the guest's shell
APPEND='console=ttyS0 ENV=/proc/cmdline GODWIT_RUN="[ -d /www ] || { mkdir /www; ip link set eth0 up; ip addr add 10.77.0.100/24 dev eth0; (while :; do read u x </proc/uptime; echo $(hostname) up ${u}s >/www/new; mv /www/new /www/index.html; sleep 0.25; done) & httpd -h /www; }" eval "$GODWIT_RUN"'
# The guest image has no network or service hook of its own (docs/testing.md,
# "Hosts on one machine"): the kernel hands the unknown parameters
# ENV=/proc/cmdline and GODWIT_RUN=... to /init as environment variables
# (quotes stripped), busybox init passes them on, and the console's
# interactive shell (ash) sources $ENV, i.e. this very command line, whose
# last words `eval "$GODWIT_RUN"` configure eth0 and start the service once
# (/www is the guard): a page with the guest's uptime, replaced four times a
# second (written aside and renamed: httpd must never send a page being
# rewritten).  No quote characters inside GODWIT_RUN: the kernel splits on
# them, and the kernel panics beyond 32 init arguments and variables.

cli() { # host, args...: godwit -H unix:<host's socket> args
    local h=$1
    shift
    "$GODWIT" -H "unix:$STATE/$h/godwitd.sock" "$@"
}
show() { # host, words...: print the command as a user would type it on that host
    local h=$1
    shift
    printf '%s%s[%s]$ godwit %s%s\n' "$CLR" "$D" "$h" "$*" "$N"
}
run_cli() { # host, args...: show, then run (fail: die naming the command)
    show "$@"
    local h=$1
    shift
    cli "$h" "$@" || die "'godwit $*' on $h failed (exit $?)"
}
list_vms() { # host: its `godwit vm list`, indented
    local out
    show "$1" vm list
    out=$(cli "$1" vm list) || die "'godwit vm list' on $1 failed"
    if [ "$(wc -l <<<"$out")" -le 1 ]; then
        printf '%s    (no VMs)\n' "$CLR"
    else
        while IFS= read -r l; do printf '%s    %s\n' "$CLR" "$l"; done <<<"$out"
    fi
}

CLIENT_PID=
UP=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$CLIENT_PID" ]; then # it prints its summary on SIGTERM
        kill -TERM "$CLIENT_PID" 2>/dev/null
        wait "$CLIENT_PID" 2>/dev/null
        CLIENT_PID=
    fi
    [ -n "$UP" ] || exit "$rc"
    if [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; then
        local f
        for f in "$STATE"/h?.log "$STATE"/h?/vms/*/vm.log "$STATE"/h?/vms/*/console.log; do
            [ -s "$f" ] || continue
            printf '%s--- the last lines of %s:\n' "$CLR" "$f"
            tail -n 8 "$f" | sed 's/^/    /'
        done
    fi
    if [ "${DEMO_KEEP:-0}" = 1 ]; then
        step "leaving everything up (DEMO_KEEP=1): scripts/hosts.sh status | cli HOST ... | down"
        exit "$rc"
    fi
    step "cleaning up: the VM, both godwitd, the namespaces and $STATE"
    scripts/hosts.sh down 2>&1 | sed "s/^/$CLR/"
    local left
    left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PREFIX-" | tr '\n' ' ')
    local f p
    for f in /proc/[0-9]*/cmdline; do # the list is made before any check runs
        p=${f#/proc/}
        p=${p%/cmdline}
        [ "$p" != $$ ] && tr '\0' ' ' 2>/dev/null <"$f" | grep -qF "$STATE/" && left+="pid $p "
    done
    [ -e "$STATE" ] && left+="$STATE"
    if [ -n "${left// /}" ]; then
        note "left behind: $left (scripts/hosts.sh down removes it)"
    else
        note "nothing left behind"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "godwit live migration demo"
say "Two hosts, ha and hb, each a godwitd (the host agent) in its own network namespace,"
say "on one bridge. A Debian riscv64 VM with a tiny web service starts on ha, then moves"
say "live ha -> hb -> ha while a client keeps asking the service for a page."

if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
    step "building godwit-vm, godwitd and godwit"
    mkdir -p "$BUILD"
    if ! make -j"$(nproc)" >"$BUILD/demo-make.log" 2>&1; then
        tail -20 "$BUILD/demo-make.log" >&2
        die "make failed (log: $BUILD/demo-make.log)"
    fi
    say "built (log: $BUILD/demo-make.log)"
fi
if [ -n "${GODWIT_GUEST_IMAGE:-}" ] && [ -n "${GODWIT_GUEST_INITRD:-}" ]; then
    IMAGE=$GODWIT_GUEST_IMAGE INITRD=$GODWIT_GUEST_INITRD
else
    step "the guest: Debian's riscv64 kernel and a busybox initramfs (make guest-image)"
    say "the first time this downloads a few Debian packages (about a minute); then it is cached"
    make -s --no-print-directory guest-image ||
        die "building the guest image failed (the first time it downloads Debian packages: it needs the network)"
    eval "$(guest/build.sh --print-paths --quiet)"
    IMAGE=$GODWIT_GUEST_IMAGE INITRD=$GODWIT_GUEST_INITRD
fi
{ [ -f "$IMAGE" ] && [ -f "$INITRD" ]; } || die "no guest image at $IMAGE, $INITRD"

step "two hosts on this machine (scripts/hosts.sh up 2 --daemons)"
say "namespaces $PREFIX-ha (10.77.0.10) and $PREFIX-hb (10.77.0.11), each with a bridge br0 for its"
say "VMs, both wired to the rack bridge; a client namespace $PREFIX-cl (10.77.0.2); one godwitd per"
say "host with its own state folder, listening for its peers on port 8443 (HTTPS, mutual TLS)"
scripts/hosts.sh down >/dev/null 2>&1 || true # a leftover of an earlier demo
UP=1
scripts/hosts.sh up 2 --daemons

step "the hosts learn to trust each other (godwit peer)"
say "hb makes a single-use join token (its address and certificate fingerprint); ha joins"
say "with it; from then on each host pins the other's certificate"
show hb peer token --address 10.77.0.11:8443
token=$(cli hb peer token --address 10.77.0.11:8443 2>/dev/null) || die "'godwit peer token' on hb failed"
say "token: ${token:0:32}..."
show ha peer add hb "${token:0:32}..."
cli ha peer add hb "$token" || die "'godwit peer add' on ha failed"
if ! cli hb peer list 2>/dev/null | awk 'NR > 1 {print $1}' | grep -qx ha; then
    show ha peer token --address 10.77.0.10:8443
    token=$(cli ha peer token --address 10.77.0.10:8443 2>/dev/null) || die "'godwit peer token' on ha failed"
    show hb peer add ha "${token:0:32}..."
    cli hb peer add ha "$token" || die "'godwit peer add' on hb failed"
fi
run_cli ha peer list
run_cli hb peer list

step "a VM on ha: Debian riscv64 Linux with a web service at $GUEST_IP"
say "256 MiB, one vCPU, one NIC on ha's br0; its kernel command line gives it the address"
say "and starts busybox httpd, serving its own uptime"
show ha vm create "$VM" --memory 256M --cpus 1 --kernel "$IMAGE" --initrd "$INITRD" \
    "--append '...'" --nic bridge=br0
cli ha vm create "$VM" --memory 256M --cpus 1 --kernel "$IMAGE" --initrd "$INITRD" \
    --append "$APPEND" --nic bridge=br0 || die "'godwit vm create' on ha failed"
run_cli ha vm start "$VM"
list_vms ha
say "waiting for the guest to boot and its service to answer (usually 5-30 s)"
t=$(
    python3 - "$PREFIX-cl" "http://$GUEST_IP/" 180 <<'EOF'
import subprocess, sys, time
ns, url, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
get = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1).read()"
t0 = time.monotonic()
while time.monotonic() - t0 < limit:
    if subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", get, url],
                      stderr=subprocess.DEVNULL).returncode == 0:
        print(f"{time.monotonic() - t0:.0f}")
        sys.exit(0)
    time.sleep(1)
sys.exit(1)
EOF
) || die "the guest's service did not answer in 180 s"
say "the service answered after $t s"

step "a client in its own namespace (10.77.0.2) asks the service twice a second"
say "each line: the time the answer came, and the page: the guest's uptime, which only"
say "ever grows if the guest keeps running (a reboot would start it again from 0)"
scripts/hosts.sh exec cl python3 -u scripts/demo_client.py "http://$GUEST_IP/" 0.5 "$STATE/client.summary" &
CLIENT_PID=$!
sleep "$PAUSE"

for hop in "ha hb" "hb ha"; do
    read -r from to <<<"$hop"
    step "live migration $from -> $to"
    say "$from's godwitd copies the VM's files to $to and starts an empty VM there; then memory"
    say "streams over TLS while the guest runs, rounds of dirty pages follow, and the guest"
    say "pauses for milliseconds at the switchover; only then does $from stop its copy"
    bw=()
    if [ "$MBPS" != 0 ]; then
        say "(the stream is capped at $MBPS Mbit/s, a modest link, so that the bar can be watched)"
        bw=(--bandwidth "$MBPS")
    fi
    show "$from" migrate "$VM" "$to" --live "${bw[@]}"
    timeout --foreground 180 "$GODWIT" -H "unix:$STATE/$from/godwitd.sock" migrate "$VM" "$to" \
        --live "${bw[@]}" ||
        die "the migration $from -> $to failed or took over 180 s (exit $?)"
    list_vms "$from"
    list_vms "$to"
    sleep "$PAUSE"
done

step "what ha remembers: the two jobs, and the guest's console"
say "each migration is a job, seen from both sides (out on the source, in on the destination);"
say "and the console log moved with the VM: what the guest printed booting on ha is still there"
run_cli ha job list
show ha vm console "$VM" --show-log "| tail -n 4"
# without the terminal queries the guest's shell sent (a real terminal would answer them)
cli ha vm console "$VM" --show-log | tr -d '\r' | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' | grep -v '^$' |
    tail -n 4 | sed "s/^/$CLR    /" || die "'godwit vm console --show-log' on ha failed"
sleep 1

step "the VM went ha -> hb -> ha, live"
kill -TERM "$CLIENT_PID" 2>/dev/null || true
wait "$CLIENT_PID" 2>/dev/null || true
CLIENT_PID=
read -r answers failures gap backwards <"$STATE/client.summary" || die "the client wrote no summary"
if [ "$backwards" != 0 ]; then
    die "the guest's uptime went back $backwards times: it rebooted or another copy answered"
elif [ "$failures" != 0 ]; then
    say "$failures of $((answers + failures)) requests went unanswered; the longest wait between two answers was $gap s"
    die "the service did not answer throughout the migrations"
elif awk -v g="$gap" 'BEGIN { exit !(g < 0.9) }'; then
    say "all $answers requests got their answer, and the longest wait between two answers ($gap s)"
    say "is the client's own interval (0.5 s) plus a round trip: the service never stopped while"
    say "the VM moved, and its uptime never went back: the same guest, never rebooted"
elif awk -v g="$gap" 'BEGIN { exit !(g < 3) }'; then
    say "all $answers requests got their answer and the guest's uptime never went back: the same"
    say "guest, never rebooted.  The longest wait between two answers, $gap s, is a lost packet"
    say "(most likely at a switchover) that TCP sent again after its usual 1 s timeout: see the"
    say "answer marked 'took'"
else
    say "all $answers requests got their answer, but the longest wait between two was $gap s"
    die "the service paused for $gap s"
fi

page() { # the guest's page ("<hostname> up <seconds>s"), asked from the client namespace
    scripts/hosts.sh exec cl python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())' "http://$GUEST_IP/"
}

step "suspended migration ha -> hb: save the VM, move the saved state with its files, resume it there"
say "the guest stops for a moment (its state is saved into its folder on ha), the state and"
say "the VM's files travel in checksummed chunks, hb checks the state file end to end and"
say "resumes it where it stopped, then sets the guest's clock (it was behind by the pause);"
say "ha keeps its copy, read-only, until the move is confirmed (or reverted)"
before=$(page) || die "the guest's page did not answer before the move"
say "before: $before"
show ha migrate "$VM" hb --suspend --resume --confirm manual
timeout --foreground 180 "$GODWIT" -H "unix:$STATE/ha/godwitd.sock" migrate "$VM" hb \
    --suspend --resume --confirm manual || die "the suspended migration ha -> hb failed (exit $?)"
job=$(cli ha --json job list | python3 -c 'import json, sys
print(max(j["id"] for j in json.load(sys.stdin) if j["kind"] == "suspended"))') ||
    die "no suspended job on ha"
run_cli ha job confirm "$job"
list_vms ha
list_vms hb
after=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
    after=$(page 2>/dev/null) && break
    sleep 0.5
done
[ -n "$after" ] || die "the guest's page did not answer after the move"
say "after:  $after"
up0=$(sed -n 's/.* up \([0-9.]*\)s$/\1/p' <<<"$before")
up1=$(sed -n 's/.* up \([0-9.]*\)s$/\1/p' <<<"$after")
if awk -v a="$up0" -v b="$up1" 'BEGIN { exit !(b >= a) }'; then
    say "the guest's uptime went on from $up0 s to $up1 s: it woke up where it stopped, not rebooted"
    say "(its uptime does not count the time it spent saved; its wall clock was set on resume)"
else
    die "the guest's uptime went back ($up0 s -> $up1 s): it rebooted"
fi
