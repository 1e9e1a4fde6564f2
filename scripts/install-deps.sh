#!/usr/bin/env bash
# Installs every Debian package godwit's build, demo, tests and benchmarks need.
# Idempotent: packages already present cost one dpkg query.
set -euo pipefail

PKGS=(
    make gcc libc6-dev pkg-config git python3
    clang clang-format                    # format check, libFuzzer targets
    gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf   # bare-metal guests
    qemu-system-misc                      # the test oracle and benchmark opponent
    libfdt-dev                            # the virt board's device tree
    libslirp-dev libglib2.0-dev           # -netdev user (slirp.pc requires glib-2.0.pc)
    iproute2                              # tests/linux/net_test.py: netns, bridge, TAP
    iputils-ping                          # tests/linux/netfwd_test.py: pings across the switchover
    e2fsprogs                             # tests/linux/disk_test.py: mke2fs -d, e2fsck
    libjansson-dev                        # QMP (JSON)
    libxxhash-dev liblz4-dev libzstd-dev  # state stream: checksum, page compression
    libsqlite3-dev                        # godwitd: registry, jobs, events
    libmicrohttpd-dev                     # godwitd: the REST API server
    libcurl4-gnutls-dev                   # godwit CLI and godwitd peers: the REST client
    libgnutls28-dev                       # certificates, mutual TLS, the encrypted migration channel
    opensbi                               # default firmware (fw_dynamic.bin)
    debian-archive-keyring                # guest/build.sh: trixie keys (>= 2023.3+deb12u2)
    rsync                                 # bench/cold: the opponent
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#PKGS[@]} packages present"
    exit 0
fi
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
