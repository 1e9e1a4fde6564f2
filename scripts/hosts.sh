#!/usr/bin/env bash
# Hosts on one machine (DESIGN.md §8) for people and the demo: the same
# topology as tests/lib/hosts.py's Rack, in network namespaces.
#
#   scripts/hosts.sh up N [--daemons]   N hosts (1..26) ha, hb, ...: namespaces, bridges,
#                                       addresses; --daemons also starts their godwitd
#   scripts/hosts.sh daemons            start the godwitd of every host not running one
#   scripts/hosts.sh status             what exists, which daemons run
#   scripts/hosts.sh exec HOST CMD...   run CMD in HOST's namespace (ha, hb, ..., cl, rack)
#   scripts/hosts.sh cli HOST ARGS...   godwit -H unix:<HOST's socket> ARGS
#   scripts/hosts.sh sock HOST          print HOST's godwitd socket path
#   scripts/hosts.sh down               kill the daemons and everything in the
#                                       namespaces (VMs too), delete them and the state
#
#   PREFIX-rack  bridge rack0 (no address), the rack switch
#   PREFIX-hX    br0 = 10.77.0.(10+i)/24 (MAC 02:77:00:00:00:(10+i), fixed) with up0 (veth to rack0) as a port: the
#                VMs' TAP devices join br0, so a guest is on the rack's segment
#                wherever it runs; godwitd --name hX --listen 10.77.0.(10+i):8443
#                (when godwitd has --listen) --state-dir STATE/hX
#   PREFIX-cl    eth0 = 10.77.0.2/24, the client
#
# Nothing is made in the root namespace. `up` and `down` are idempotent: up
# makes only what is missing, down removes whatever is there.
# Environment: GODWIT_HOSTS_PREFIX (gwdemo), GODWIT_HOSTS_STATE
# (/tmp/PREFIX-state), BUILD (build/release), GODWIT_HOSTS_PORT (8443),
# GODWIT_SHARED_STORAGE (a folder: godwitd --shared-storage).
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${GODWIT_HOSTS_PREFIX:-gwdemo}
STATE=${GODWIT_HOSTS_STATE:-/tmp/$PREFIX-state}
BUILD=${BUILD:-build/release}
PORT=${GODWIT_HOSTS_PORT:-8443}
NET=10.77.0
RACK=$PREFIX-rack
CLIENT=$PREFIX-cl

say() { echo "hosts: $*"; }
die() {
    echo "hosts: $*" >&2
    exit 1
}

hname() { # index -> ha, hb, ...
    local letters=abcdefghijklmnopqrstuvwxyz
    echo "h${letters:$1:1}"
}
hindex() { # ha -> 0
    local c=${1#h}
    echo $(($(printf %d "'$c") - 97))
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }
link_exists() { ip -n "$1" link show "$2" >/dev/null 2>&1; }
our_namespaces() { ip netns list | awk '{print $1}' | grep -E "^$PREFIX-(rack|cl|h[a-z])$" | sort || true; }
host_namespaces() { ip netns list | awk '{print $1}' | grep -E "^$PREFIX-h[a-z]$" | sort || true; }

new_ns() {
    if ! ns_exists "$1"; then
        ip netns add "$1"
        say "namespace $1"
    fi
    ip -n "$1" link set lo up
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
        net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
}

veth_to_rack() { # rack port, namespace, its end's name
    if ! link_exists "$RACK" "$1"; then
        ip -n "$RACK" link add "$1" type veth peer name "$3" netns "$2"
        say "  veth $RACK:$1 <-> $2:$3"
    fi
    ip -n "$RACK" link set "$1" master rack0 up
}

addr() { # namespace, address/len, device
    ip -n "$1" -4 addr show dev "$3" | grep -q "inet $2 " || ip -n "$1" addr add "$2" dev "$3"
}

up() {
    local n=${1:-}
    if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 26 ]; then
        die "usage: up N (1..26) [--daemons]"
    fi
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
    new_ns "$RACK"
    link_exists "$RACK" rack0 || ip -n "$RACK" link add rack0 address 02:77:00:00:00:01 type bridge
    ip -n "$RACK" link set rack0 up
    local i h ns
    for ((i = 0; i < n; i++)); do
        h=$(hname $i)
        ns=$PREFIX-$h
        new_ns "$ns"
        veth_to_rack "h$i" "$ns" up0
        # a fixed MAC: a bridge otherwise takes the lowest of its ports' and
        # changes it when a VM's TAP comes or goes, leaving the peers' ARP
        # entries for the host pointing nowhere
        link_exists "$ns" br0 ||
            ip -n "$ns" link add br0 address "$(printf 02:77:00:00:00:%02x $((10 + i)))" type bridge
        ip -n "$ns" link set up0 master br0 up
        addr "$ns" "$NET.$((10 + i))/24" br0
        ip -n "$ns" link set br0 up
        say "  $h: br0 $NET.$((10 + i))/24 (bridged to rack0), state $STATE/$h"
    done
    new_ns "$CLIENT"
    veth_to_rack cl "$CLIENT" eth0
    addr "$CLIENT" "$NET.2/24" eth0
    ip -n "$CLIENT" link set eth0 up
    say "  client: $CLIENT eth0 $NET.2/24; guests use $NET.100 and up"
    mkdir -p "$STATE"
    chmod 700 "$STATE"
}

daemon_pid() { # host -> pid of its running godwitd, or nothing
    local f=$STATE/$1.pid p
    [ -f "$f" ] || return 0
    p=$(cat "$f")
    if [ -d "/proc/$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q godwitd; then
        echo "$p"
    fi
}

daemons() {
    local godwitd=$BUILD/godwitd ns h i listen=() shared=()
    [ -x "$godwitd" ] || die "$godwitd is not built (make)"
    [ -n "$(host_namespaces)" ] || die "no hosts: scripts/hosts.sh up N first"
    "$godwitd" --help 2>&1 | grep -q -- --listen && listen=(yes)
    [ -n "${GODWIT_SHARED_STORAGE:-}" ] && shared=(--shared-storage "$GODWIT_SHARED_STORAGE")
    for ns in $(host_namespaces); do
        h=${ns#"$PREFIX"-}
        i=$(hindex "$h")
        if [ -n "$(daemon_pid "$h")" ]; then
            say "godwitd $h runs (pid $(daemon_pid "$h"))"
            continue
        fi
        local args=(--state-dir "$STATE/$h" --name "$h")
        [ ${#listen[@]} -gt 0 ] && args+=(--listen "$NET.$((10 + i)):$PORT")
        args+=("${shared[@]}")
        ip netns exec "$ns" setsid "$(realpath "$godwitd")" "${args[@]}" \
            </dev/null >>"$STATE/$h.log" 2>&1 &
        echo $! >"$STATE/$h.pid"
        local t
        for ((t = 0; t < 200; t++)); do
            # the CLI answers once the socket does (curl is not always installed)
            "$BUILD/godwit" -H "unix:$STATE/$h/godwitd.sock" peer list >/dev/null 2>&1 && break
            [ -d "/proc/$(cat "$STATE/$h.pid")" ] || die "godwitd $h exited: $(tail -3 "$STATE/$h.log")"
            sleep 0.05
        done
        local l=
        [ ${#listen[@]} -gt 0 ] && l=", listen $NET.$((10 + i)):$PORT"
        say "godwitd $h: pid $(cat "$STATE/$h.pid"), socket $STATE/$h/godwitd.sock$l, log $STATE/$h.log"
    done
}

down() {
    local ns pids p
    # every process in our namespaces (daemons and the VMs they started, in
    # their own sessions) and any naming the state folder: TERM, then KILL
    pids=$(for ns in $(our_namespaces); do ip netns pids "$ns"; done
        grep -lsF "$STATE/" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 || true)
    pids=$(for p in $(echo "$pids" | grep -vx "$$" | sort -u); do [ ! -d "/proc/$p" ] || echo "$p"; done | tr '\n' ' ')
    if [ -n "${pids// /}" ]; then
        # shellcheck disable=SC2086 # a list of pids
        kill -TERM $pids 2>/dev/null || true
        for ((p = 0; p < 50; p++)); do
            local alive=
            for q in $pids; do [ -d "/proc/$q" ] && ! grep -q '^State:.*Z' "/proc/$q/status" 2>/dev/null && alive=1; done
            [ -z "$alive" ] && break
            sleep 0.1
        done
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        say "stopped pids $pids"
    fi
    for ns in $(our_namespaces); do
        ip netns del "$ns" && say "deleted namespace $ns"
    done
    if [ -d "$STATE" ]; then
        rm -rf "$STATE"
        say "removed $STATE"
    fi
}

status() {
    local ns h
    [ -n "$(our_namespaces)" ] || {
        say "nothing up (prefix $PREFIX)"
        return 0
    }
    for ns in $(our_namespaces); do
        case $ns in
        "$PREFIX"-h?)
            h=${ns#"$PREFIX"-}
            echo "$ns: $(ip -n "$ns" -4 -o addr show br0 | awk '{print $4}')" \
                "godwitd: $( [ -n "$(daemon_pid "$h")" ] && echo "pid $(daemon_pid "$h")" || echo none)" \
                "ports of br0: $(ip -n "$ns" -o link show master br0 | awk -F': ' '{print $2}' | cut -d@ -f1 | tr '\n' ' ')"
            ;;
        *) echo "$ns" ;;
        esac
    done
}

host_ns() {
    case ${1:-} in
    cl | client) echo "$CLIENT" ;;
    rack) echo "$RACK" ;;
    h[a-z]) echo "$PREFIX-$1" ;;
    *) die "unknown host '${1:-}' (ha, hb, ..., cl, rack)" ;;
    esac
}

cmd=${1:-}
shift || true
case $cmd in
up)
    up "${1:-}"
    [ "${2:-}" = --daemons ] && daemons
    ;;
daemons) daemons ;;
down) down ;;
status) status ;;
exec)
    ns=$(host_ns "${1:-}")
    shift
    [ $# -gt 0 ] || die "usage: exec HOST CMD..."
    ns_exists "$ns" || die "$ns does not exist (scripts/hosts.sh up N)"
    exec ip netns exec "$ns" "$@"
    ;;
cli)
    [[ "${1:-}" =~ ^h[a-z]$ ]] || die "usage: cli HOST ARGS..."
    h=$1
    shift
    exec "$BUILD/godwit" -H "unix:$STATE/$h/godwitd.sock" "$@"
    ;;
sock)
    [[ "${1:-}" =~ ^h[a-z]$ ]] || die "usage: sock HOST"
    echo "$STATE/$1/godwitd.sock"
    ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || [ "$cmd" = -h ] || [ "$cmd" = --help ] || exit 2
    ;;
esac
