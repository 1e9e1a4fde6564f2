#!/usr/bin/env bash
# `make demo`: live migration between two hosts on this machine.
#
# Two godwitd hosts, ha and hb, in network namespaces on one rack
# (scripts/hosts.sh, DESIGN.md §8).  A Debian riscv64 VM with a small web
# service (busybox httpd at 10.77.0.100 answering "godwit-guest up N s")
# is created and started on ha; a client in its own namespace asks it twice
# a second and prints every answer with a timestamp while the VM migrates
# live ha -> hb -> ha.  The guest keeps its MAC and IP wherever it runs:
# the client talks to the same address throughout.
#
# godwitd's VMs, peers and migrations are being built: each step first
# checks that its CLI command exists (`godwit COMMAND --help`) and says
# "not available yet" when it does not.  Without `godwit vm create` the
# demo tells the same story with godwit-vm directly (its -incoming and QMP
# `migrate`, no godwitd: scripts/demo_raw.py); DEMO_FALLBACK=1 or
# `scripts/demo.sh --raw` chooses that path anyway.
#
# Needs root (network namespaces).  Environment: BUILD (build/release;
# DEMO_SKIP_BUILD=1 runs the binaries there without make),
# GODWIT_HOSTS_PREFIX (gwdemo), DEMO_PAUSE (seconds between steps, 4),
# GODWIT_GUEST_IMAGE / GODWIT_GUEST_INITRD.  Everything it made is removed
# on exit (Ctrl-C included).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build/release}
export BUILD
export GODWIT_HOSTS_PREFIX=${GODWIT_HOSTS_PREFIX:-gwdemo}
PAUSE=${DEMO_PAUSE:-4}
GODWIT=$BUILD/godwit
VM=demo
GUEST_IP=10.77.0.100
RAW=${DEMO_FALLBACK:-0}
[ "${1:-}" = --raw ] && RAW=1

# The guest image has no network or service hook of its own (docs/testing.md,
# "Hosts on one machine"): the kernel hands the unknown parameters
# ENV=/proc/cmdline and GODWIT_RUN=... to /init as environment variables
# (quotes stripped), busybox init passes them on, and the console's
# interactive shell (ash) sources $ENV, i.e. this very command line, whose
# last words `eval "$GODWIT_RUN"` (the value from the environment: words
# expand before the assignments in front of them) configure eth0 and start
# the service once (/www is the guard).  No quote characters inside
# GODWIT_RUN: the kernel splits the line on them.
# shellcheck disable=SC2016 # expanded by the guest's shell
APPEND='console=ttyS0 ENV=/proc/cmdline GODWIT_RUN="[ -d /www ] || { mkdir /www; ip link set eth0 up; ip addr add 10.77.0.100/24 dev eth0; (while :; do read u x </proc/uptime; echo $(hostname) up ${u}s >/www/index.html; sleep 1; done) & httpd -h /www; }" eval "$GODWIT_RUN"'

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { echo "demo: $*"; }
die() {
    echo "demo: $*" >&2
    exit 1
}
cli() { # host, args...
    local h=$1
    shift
    "$GODWIT" -H "unix:$(scripts/hosts.sh sock "$h")" "$@"
}
have() { # a CLI command exists: `godwit WORDS... --help` exits 0, or
    # `godwit GROUP --help` does and names the subcommand (a group not built
    # yet exits 1 saying so; a built one may refuse --help after a subcommand)
    "$GODWIT" "$@" --help >/dev/null 2>&1 && return 0
    [ $# -gt 1 ] || return 1
    local help
    help=$("$GODWIT" "$1" --help 2>&1) || return 1
    grep -qw -- "$2" <<<"$help"
}
need() { # have, else say so
    if have "$@"; then
        return 0
    fi
    note "'godwit $*' is not available yet (being built): skipping this step"
    return 1
}

[ "$(id -u)" = 0 ] || die "needs root (network namespaces): sudo make demo"

if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
    step "building godwit-vm, godwitd and godwit"
    mkdir -p "$BUILD"
    if ! make -j"$(nproc)" >"$BUILD/demo-make.log" 2>&1; then
        tail -20 "$BUILD/demo-make.log" >&2
        die "make failed (log: $BUILD/demo-make.log)"
    fi
fi
if [ -n "${GODWIT_GUEST_IMAGE:-}" ] && [ -n "${GODWIT_GUEST_INITRD:-}" ]; then
    IMAGE=$GODWIT_GUEST_IMAGE INITRD=$GODWIT_GUEST_INITRD
else
    cache=${GODWIT_CACHE:-$HOME/.cache/godwit}/guest
    if [ ! -f "$cache/Image" ] || [ ! -f "$cache/initrd.img" ]; then
        make guest-image
    fi
    eval "$(guest/build.sh --print-paths --quiet)"
    IMAGE=$GODWIT_GUEST_IMAGE INITRD=$GODWIT_GUEST_INITRD
fi
note "guest: $IMAGE, $INITRD"

CLIENT_PID=
RAW_PID=
cleanup() {
    trap - EXIT INT TERM
    set +e
    if [ -n "$RAW_PID" ]; then # demo_raw.py kills its godwit-vm processes on SIGTERM
        kill "$RAW_PID" 2>/dev/null
        wait "$RAW_PID" 2>/dev/null
    fi
    if [ -n "$CLIENT_PID" ]; then
        kill "$CLIENT_PID" 2>/dev/null
        wait "$CLIENT_PID" 2>/dev/null
    fi
    step "cleaning up"
    scripts/hosts.sh down || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "two hosts on this machine (scripts/hosts.sh)"
scripts/hosts.sh down >/dev/null 2>&1 || true # a leftover of an earlier demo
scripts/hosts.sh up 2 --daemons

# The client: twice a second, one HTTP request to the guest's service.
client_loop() {
    # shellcheck disable=SC2016 # expanded by the client's bash
    scripts/hosts.sh exec cl bash -c '
        while :; do
            a=$(curl -s --max-time 1 http://'"$GUEST_IP"'/) || a="(no answer)"
            echo "client $(date +%T.%3N)  $a"
            sleep 0.5
        done' &
    CLIENT_PID=$!
}

wait_service() { # seconds
    local t
    note "waiting for the guest's service at http://$GUEST_IP/ (the guest boots in 20-60 s)"
    for ((t = 0; t < $1; t++)); do
        scripts/hosts.sh exec cl curl -s --max-time 1 "http://$GUEST_IP/" >/dev/null && return 0
        sleep 1
    done
    return 1
}

raw_demo() {
    # ---- without godwitd: godwit-vm in ha's and hb's namespaces, QMP by hand
    step "fallback: godwit-vm directly (no godwitd), TAP devices on each host's br0"
    python3 scripts/demo_raw.py "$IMAGE" "$INITRD" "$APPEND" "$GUEST_IP" "$PAUSE" &
    RAW_PID=$!
    wait_service 240 || die "the guest never answered"
    client_loop
    wait "$RAW_PID" || die "the fallback migration failed"
    RAW_PID=
    sleep 1
    step "done: the client talked to the same guest throughout"
    exit 0
}
[ "$RAW" = 1 ] && raw_demo

step "trust between the hosts (godwit peer)"
if need peer token && need peer add; then
    token=$(cli hb peer token --address 10.77.0.11:8443)
    note "hb's join token: ${token:0:24}..."
    cli ha peer add hb "$token"
    if have peer list && ! cli hb peer list 2>/dev/null | grep -qw ha; then
        token=$(cli ha peer token --address 10.77.0.10:8443)
        cli hb peer add ha "$token"
    fi
    have peer list && cli ha peer list
fi

step "a VM on ha: Debian riscv64 with a web service at $GUEST_IP"
if ! need vm create || ! need vm start; then
    note "showing the same story with godwit-vm alone instead (scripts/demo.sh --raw)"
    raw_demo
fi
cli ha vm create "$VM" --memory 256M --cpus 1 --kernel "$IMAGE" --initrd "$INITRD" \
    --append "$APPEND" --nic bridge=br0
cli ha vm start "$VM"
have vm list && cli ha vm list
wait_service 240 || die "the guest never answered (its console: godwit -H unix:$(scripts/hosts.sh sock ha) vm console $VM)"

step "a client in its own namespace (10.77.0.2) keeps asking the guest"
client_loop
sleep "$PAUSE"

migrated=0
for hop in "ha hb" "hb ha"; do
    read -r from to <<<"$hop"
    step "live migration $from -> $to (godwit migrate $VM $to --live)"
    if ! need migrate; then
        sleep "$PAUSE"
        break
    fi
    cli "$from" migrate "$VM" "$to" --live
    migrated=$((migrated + 1))
    if have vm list; then
        echo "-- $from:"
        cli "$from" vm list
        echo "-- $to:"
        cli "$to" vm list
    fi
    sleep "$PAUSE"
done
if [ "$migrated" = 2 ]; then
    step "done: the client talked to the same guest throughout"
else
    step "done (without migrations: 'godwit migrate' is not available yet)"
fi
