#!/usr/bin/env bash
# guest/build.sh: build godwit's Linux guest (kernel Image + initramfs) from
# Debian's riscv64 packages, without touching the host's apt setup.
#
# A private apt configuration (own sources list, lists, cache and status
# file; APT::Architecture=riscv64; the archive keyring for signatures)
# fetches linux-image-riscv64's kernel and busybox-static from Debian trixie.
# The kernel's flat Image is copied out as is; guest/mkinitramfs.py builds the
# initramfs (busybox, virtio modules, guest/rootfs/ with /init).
#
# Everything lives under ${GODWIT_CACHE:-~/.cache/godwit}; a stamp of the
# inputs (this script, mkinitramfs.py, guest/rootfs/, the package versions)
# makes a second run cost nothing. Package lists are only re-downloaded with
# --refresh (or when a cached list no longer matches the archive).
#
# --variant redis builds the default image, then guest-redis/initrd.img: the
# default initrd with a second archive appended (guest/mkvariant.py: Debian's
# redis-server, the libraries it needs, guest/rootfs-redis/), its own stamp.
# See docs/guest.md.
set -euo pipefail

usage() {
    cat <<EOF
usage: guest/build.sh [--variant NAME] [--print-paths] [--refresh] [--force] [--quiet]

Builds \$GODWIT_CACHE/guest/{Image,initrd.img} (default ~/.cache/godwit).

  --variant redis  also build \$GODWIT_CACHE/guest-redis/initrd.img: the default
                 initrd plus Debian's redis-server (trixie riscv64) and the
                 libraries it needs; the same kernel Image.  The kernel
                 command line godwit.redis=1 starts it (port 6379, no
                 persistence, protected mode off), godwit.ip=ADDR/PREFIX
                 gives eth0 an address first; the console then prints
                 "godwit-guest: redis ready" once it answers PING

  --print-paths  after building (if needed), print shell assignments
                 GODWIT_GUEST_IMAGE=, GODWIT_GUEST_INITRD=, GODWIT_GUEST_APPEND=
                 on stdout (progress goes to stderr)
  --refresh      re-download the package lists; rebuild if versions changed
  --force        rebuild even if the stamp says the image is up to date
  --quiet        no progress messages

environment:
  GODWIT_CACHE           cache directory (default \$HOME/.cache/godwit)
  GODWIT_DEBIAN_MIRROR   Debian mirror URL (default: the host's apt mirror)
  GODWIT_GUEST_SUITE     Debian suite with riscv64 packages (default trixie)
  GODWIT_GUEST_COMPRESS  initramfs compression: gzip (default), zstd, none
  GODWIT_GUEST_VARIANT   the same as --variant (the option wins)
EOF
}

print_paths=0 refresh=0 force=0 quiet=0 variant=${GODWIT_GUEST_VARIANT:-}
while [ $# -gt 0 ]; do
    arg=$1
    shift
    case $arg in
    --variant)
        [ $# -gt 0 ] || { echo "guest/build.sh: --variant needs a name" >&2; exit 2; }
        variant=$1
        shift
        ;;
    --variant=*) variant=${arg#--variant=} ;;
    --print-paths) print_paths=1 ;;
    --refresh) refresh=1 ;;
    --force) force=1 ;;
    -q | --quiet) quiet=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "guest/build.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done
# A variant: the packages to unpack, the programs to install (with the
# libraries their ELF files need) and what the kernel command line adds.
case $variant in
'') ;;
redis)
    variant_pkgs="redis-server redis-tools"
    variant_bins="/usr/bin/redis-server"
    variant_append="godwit.redis=1"
    ;;
*) echo "guest/build.sh: unknown variant '$variant' (known: redis)" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${GODWIT_CACHE:-$HOME/.cache/godwit}
suite=${GODWIT_GUEST_SUITE:-trixie}
compress=${GODWIT_GUEST_COMPRESS:-gzip}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
# Modules for the virtio-mmio devices of the virt board; their dependencies
# come along, built-in ones (virtio_console in Debian's kernel) are skipped.
# /init always loads the transport, the rest only for devices present.
# ext4 (which also mounts ext2/ext3) and crc32c (metadata checksums) are
# not loaded at boot: `modprobe ext4 crc32c_generic` before mounting a disk.
boot_modules="virtio_mmio"
modules="virtio_blk virtio_net virtio_rng virtio_console ext4 crc32c_generic"
append="console=ttyS0"

out=$cache/guest
aptdir=$cache/apt-$suite-riscv64
debdir=$cache/debs
started=$SECONDS

say() { [ "$quiet" = 1 ] || echo "guest: $*" >&2; }
die() { echo "guest/build.sh: $*" >&2; exit 1; }
step() { say "[$((SECONDS - started))s] $*"; }

print_result() {
    if [ "$print_paths" = 1 ]; then
        printf 'GODWIT_GUEST_IMAGE=%q\n' "$out/Image"
        if [ -n "$variant" ]; then
            printf 'GODWIT_GUEST_INITRD=%q\n' "$cache/guest-$variant/initrd.img"
            printf 'GODWIT_GUEST_APPEND=%q\n' "$append $variant_append"
        else
            printf 'GODWIT_GUEST_INITRD=%q\n' "$out/initrd.img"
            printf 'GODWIT_GUEST_APPEND=%q\n' "$append"
        fi
    fi
}

# The default image is ready: build the variant if one was asked for, print
# the paths, leave.
finish() {
    [ -z "$variant" ] || build_variant
    print_result
    exit 0
}

case $compress in gzip | zstd | none) ;; *) die "GODWIT_GUEST_COMPRESS must be gzip, zstd or none" ;; esac
for tool in apt-get apt-cache dpkg-deb python3 sha256sum tar flock; do
    command -v "$tool" >/dev/null || die "'$tool' not found; run scripts/install-deps.sh"
done
[ "$compress" != zstd ] || command -v zstd >/dev/null || die "'zstd' not found (GODWIT_GUEST_COMPRESS=zstd)"

mkdir -p "$cache"
exec 9>"$cache/guest.lock"
if ! flock -n 9; then
    say "waiting for another guest/build.sh to finish"
    flock 9
fi

# ---- private apt configuration ---------------------------------------------
# Called once the image (or a variant) needs the archive: an up-to-date
# image needs neither network nor apt.
apt_ready=0
apt_setup() {
    [ "$apt_ready" = 0 ] || return 0
    apt_ready=1
    [ -r "$keyring" ] || die "$keyring is missing: apt-get install debian-archive-keyring"
    kr_version=$(dpkg-query -W -f '${Version}' debian-archive-keyring 2>/dev/null || true)
    if [ -n "$kr_version" ] && [ "$suite" = trixie ] &&
        dpkg --compare-versions "$kr_version" lt 2023.3+deb12u2; then
        die "debian-archive-keyring $kr_version lacks the trixie signing keys;" \
            "upgrade it (>= 2023.3+deb12u2): apt-get update && apt-get install debian-archive-keyring"
    fi

    # The host's own Debian mirror (the one machine we know reaches the archive).
    host_mirror() {
        local f
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
            [ -r "$f" ] || continue
            case $f in
            *.sources) sed -nE 's/^[[:space:]]*URIs:[[:space:]]*//Ip' "$f" | tr ' \t' '\n\n' ;;
            *) sed -nE 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f" ;;
            esac
        done | grep -E '^https?://[^[:space:]]+/debian/?$' | head -n1 || true
    }
    mirror=${GODWIT_DEBIAN_MIRROR:-$(host_mirror)}
    mirror=${mirror:-http://deb.debian.org/debian}
    mirror=${mirror%/}

    mkdir -p "$aptdir"/{lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d} \
        "$aptdir"/etc/{apt.conf.d,trusted.gpg.d} "$debdir/partial"
    [ -e "$aptdir/status" ] || : >"$aptdir/status"
    echo "deb [arch=riscv64 signed-by=$keyring] $mirror $suite main" >"$aptdir/etc/sources.list.new"
    if ! cmp -s "$aptdir/etc/sources.list.new" "$aptdir/etc/sources.list"; then
        mv "$aptdir/etc/sources.list.new" "$aptdir/etc/sources.list"
        rm -f "$aptdir"/lists/*_Packages* "$aptdir"/lists/*Release* # other mirror or suite
    else
        rm -f "$aptdir/etc/sources.list.new"
    fi
    # Everything apt reads or writes is ours: the host's sources, pins, keys,
    # hooks, dpkg status and architectures stay out. Only the host's network
    # settings (proxies, timeouts, date checks) come along, as they may be what
    # lets this machine reach the archive at all.
    env -u APT_CONFIG apt-config dump 2>/dev/null |
        grep -E '^Acquire::((https?|ftp)::|Check-Valid-Until |Check-Date |Retries |ForceIPv[46] )' \
            >"$aptdir/etc/apt.conf.d/10host-network" || true
    sandbox_user=
    [ "$(id -u)" -ne 0 ] || sandbox_user='APT::Sandbox::User "root";' # no _apt-readable dirs needed
    cat >"$aptdir/apt.conf" <<EOF
APT::Architecture "riscv64";
APT::Architectures { "riscv64"; };
APT::Get::AllowUnauthenticated "false";
Acquire::AllowInsecureRepositories "false";
Acquire::Languages "none";
Dir::State "$aptdir";
Dir::State::Lists "$aptdir/lists";
Dir::State::status "$aptdir/status";
Dir::Cache "$aptdir/cache";
Dir::Cache::pkgcache "pkgcache.bin";
Dir::Cache::srcpkgcache "";
Acquire::GzipIndexes "true";
Dir::Etc "$aptdir/etc";
Dir::Etc::main "/dev/null";
Dir::Etc::Parts "$aptdir/etc/apt.conf.d";
Dir::Etc::SourceList "$aptdir/etc/sources.list";
Dir::Etc::SourceParts "$aptdir/etc/sources.list.d";
Dir::Etc::Preferences "$aptdir/etc/preferences";
Dir::Etc::PreferencesParts "$aptdir/etc/preferences.d";
Dir::Etc::Trusted "$aptdir/etc/trusted.gpg";
Dir::Etc::TrustedParts "$aptdir/etc/trusted.gpg.d";
$sandbox_user
EOF
    export APT_CONFIG=$aptdir/apt.conf
    apt_q=()
    [ "$quiet" = 0 ] || apt_q=(-qq)
}

apt_update() {
    step "fetching the $suite riscv64 package list from $mirror"
    apt-get "${apt_q[@]}" update >&2 ||
        die "apt-get update failed (mirror $mirror; set GODWIT_DEBIAN_MIRROR to another one)"
}

field() { # $1 package, $2 field: from the candidate version's record
    apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n "s/^$2: //p" | head -n1
}
# ---- download (cached by name and version) ---------------------------------
# Prints the cached .deb of $1 at version $2, downloading it if needed;
# apt checks it against the signed index while downloading.
deb_file() { # $1 package, $2 version, [$3 folder, default $debdir]
    local pkg=$1 ver=$2 dir=${3:-$debdir} f
    for f in "$dir/${pkg}_"*.deb; do
        [ -f "$f" ] && [ "$(dpkg-deb -f "$f" Version 2>/dev/null)" = "$ver" ] && { echo "$f"; return 0; }
    done
    step "downloading $pkg $ver" >&2
    (mkdir -p "$dir/partial" && cd "$dir/partial" && rm -f "${pkg}_"*.deb && apt-get "${apt_q[@]}" download "$pkg=$ver" >&2) ||
        return 1
    for f in "$dir/partial/${pkg}_"*.deb; do
        [ -f "$f" ] || continue
        mv "$f" "$dir/"
        echo "$dir/${f##*/}"
        return 0
    done
    return 1
}
# ---- variants ----------------------------------------------------------------
# A variant is the default image with one more archive appended to its
# initrd (the kernel unpacks concatenated archives into one rootfs, later
# files over earlier ones): guest/mkvariant.py puts in the variant's
# programs, the shared libraries their ELF files need (DT_NEEDED, closed
# over) with the dynamic loader, guest/rootfs-$variant/ and the packages'
# copyright files. It lives in guest-$variant/ (the default build swaps
# guest/ whole, which would drop anything else kept there), with its own
# stamp and download folder; the kernel Image is the default one.

# The first alternative of each Depends and Pre-Depends of a .deb, names only.
deb_depends() {
    { dpkg-deb -f "$1" Depends; dpkg-deb -f "$1" Pre-Depends; } 2>/dev/null |
        tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/[[:space:]]//g' | grep -v '^$' || true
}

build_variant() {
    local vout=$cache/guest-$variant vdebs=$cache/debs-$variant
    local vwork=$cache/guest-$variant-work vnew=$cache/guest-$variant.new
    local vinputs names vpackages p v f missing next round pad have=" " bins=()
    vinputs=$({
        (cd "$here" && tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
            --mode=go-w -cf - build.sh mkinitramfs.py mkvariant.py "rootfs-$variant")
        printf '%s\n' "$variant" "$compress" "$variant_pkgs" "$variant_bins" "$variant_append"
        sha256sum <"$out/initrd.img" # the archive it extends
    } | sha256sum | cut -d' ' -f1)
    vstamp_get() { sed -n "s/^$1=//p" "$vout/stamp" 2>/dev/null || true; }
    vup_to_date() { # $1: package versions, or empty to accept the stamp's
        [ -f "$vout/initrd.img" ] && [ "$(vstamp_get inputs)" = "$vinputs" ] &&
            { [ -z "$1" ] || [ "$(vstamp_get packages)" = "$1" ]; }
    }
    if [ "$force$refresh" = 00 ] && vup_to_date ""; then
        say "variant $variant up to date: $(vstamp_get packages) ($vout)"
        return 0
    fi
    apt_setup
    ls "$aptdir"/lists/*_Packages* >/dev/null 2>&1 || apt_update
    # The versions of what the last build took (the libraries included),
    # as the archive has them now.
    names=$(vstamp_get packages | tr ' ' '\n' | sed 's/=.*//')
    vpackages=
    for p in ${names:-$variant_pkgs}; do
        vpackages+="$p=$(field "$p" Version) "
    done
    vpackages=${vpackages% }
    if [ "$force" = 0 ] && [ -n "$names" ] && vup_to_date "$vpackages"; then
        say "variant $variant up to date: $vpackages ($vout)"
        return 0
    fi

    step "building the $variant variant"
    rm -rf "$vwork" "$vnew"
    mkdir -p "$vwork/pkgs" "$vnew" "$vdebs"
    trap 'rm -rf "$vwork" "$vnew"' EXIT
    vpackages=
    unpack() { # $1 package: download (once) and unpack into $vwork/pkgs/$1
        v=$(field "$1" Version)
        [ -n "$v" ] || die "no riscv64 package $1 in $mirror $suite"
        if ! f=$(deb_file "$1" "$v" "$vdebs"); then
            # a stale list: fetch it afresh, once
            rm -f "$aptdir"/lists/*_InRelease "$aptdir"/lists/*_Release* "$aptdir"/lists/*_Packages*
            apt_update
            v=$(field "$1" Version)
            f=$(deb_file "$1" "$v" "$vdebs") || die "downloading $1 $v failed"
        fi
        dpkg-deb -x "$f" "$vwork/pkgs/$1"
        cp "$f" "$vwork/"
        have+="$1 "
        vpackages+="$1=$v "
    }
    for p in $variant_pkgs; do unpack "$p"; done
    for b in $variant_bins; do bins+=(--binary "$b"); done
    # The libraries: what the programs' ELF files need that the packages so
    # far lack comes from the packages they depend on in section libs
    # (libc6, zlib1g, ...; adduser and the like serve the maintainer scripts
    # we do not run). A few rounds reach libc.
    for round in 1 2 3 4 5 6 7 8; do
        missing=$(python3 "$here/mkvariant.py" --packages "$vwork/pkgs" "${bins[@]}" --missing) &&
            break
        [ $? = 3 ] || die "mkvariant.py failed"
        next=
        for f in "$vwork"/*.deb; do
            for p in $(deb_depends "$f"); do
                case "$have $next " in *" $p "*) continue ;; esac
                [ "$(field "$p" Section)" = libs ] || continue
                next+="$p "
            done
        done
        [ -n "$next" ] || die "variant $variant: no package provides ${missing//$'\n'/ }"
        step "round $round: ${missing//$'\n'/ } -> $next"
        for p in $next; do unpack "$p"; done
        [ "$round" != 8 ] || die "variant $variant: still missing ${missing//$'\n'/ }"
    done
    vpackages=${vpackages% }

    step "building the $variant archive ($compress)"
    mk_q=()
    [ "$quiet" = 0 ] || mk_q=(--quiet)
    python3 "$here/mkvariant.py" "${mk_q[@]}" --packages "$vwork/pkgs" "${bins[@]}" \
        --overlay "$here/rootfs-$variant" --compress "$compress" --licenses "$vnew/licenses" \
        --manifest "$vnew/initrd.manifest" -o "$vwork/extra.img"
    # The default initrd, zero-padded to 4 bytes (the kernel skips zeros
    # between archives), then the variant's.
    pad=$(((4 - $(stat -c %s "$out/initrd.img") % 4) % 4))
    { cat "$out/initrd.img"; head -c "$pad" /dev/zero; cat "$vwork/extra.img"; } >"$vnew/initrd.img"
    {
        echo "packages=$vpackages"
        echo "base=$(stamp_get packages)"
        echo "mirror=$mirror $suite"
        echo "append=$append $variant_append"
        echo "inputs=$vinputs"
    } >"$vnew/stamp"
    rm -rf "$vout.old"
    [ ! -d "$vout" ] || mv "$vout" "$vout.old"
    mv "$vnew" "$vout"
    rm -rf "$vout.old" "$vwork"
    trap - EXIT
    # keep only the versions just used
    for f in "$vdebs"/*.deb; do
        v=$(dpkg-deb -f "$f" Version 2>/dev/null)
        p=$(dpkg-deb -f "$f" Package 2>/dev/null)
        case " $vpackages " in *" $p=$v "*) ;; *) rm -f "$f" ;; esac
    done
    step "variant $variant done: $vpackages"
    say "  $vout/initrd.img ($(du -h "$vout/initrd.img" | cut -f1); the default's is $(du -h "$out/initrd.img" | cut -f1))"
}

# ---- is the image up to date? ----------------------------------------------
# The inputs: what this script and the image's own files are, plus settings.
inputs_hash() {
    {
        (cd "$here" && tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
            --mode=go-w -cf - build.sh mkinitramfs.py rootfs)
        printf '%s\n' "$suite" "$compress" "$boot_modules" "$modules" "$append"
    } | sha256sum | cut -d' ' -f1
}
inputs=$(inputs_hash)

stamp_get() { sed -n "s/^$1=//p" "$out/stamp" 2>/dev/null; }
up_to_date() { # $1: package versions, or empty to accept the stamp's
    [ -f "$out/Image" ] && [ -f "$out/initrd.img" ] &&
        [ "$(stamp_get inputs)" = "$inputs" ] &&
        { [ -z "$1" ] || [ "$(stamp_get packages)" = "$1" ]; }
}
if [ "$force$refresh" = 00 ] && up_to_date ""; then
    say "up to date: $(stamp_get packages) ($out)"
    finish
fi

apt_setup

resolve() {
    kpkg=$(field linux-image-riscv64 Depends | grep -oE 'linux-image-[0-9][^ ,]*-riscv64' | head -n1 || true)
    [ -n "$kpkg" ] || return 1
    kver=$(field "$kpkg" Version)
    bbver=$(field busybox-static Version)
    [ -n "$kver" ] && [ -n "$bbver" ]
}
if [ "$refresh" = 1 ] || ! ls "$aptdir"/lists/*_Packages* >/dev/null 2>&1; then
    apt_update
fi
step "resolving package versions"
resolve || die "no riscv64 linux-image-riscv64/busybox-static in $mirror $suite" \
    "(does the mirror carry riscv64? set GODWIT_DEBIAN_MIRROR)"
packages="$kpkg=$kver busybox-static=$bbver"

if [ "$force" = 0 ] && up_to_date "$packages"; then
    say "up to date: $packages ($out)"
    finish
fi

fetch_all() {
    kdeb=$(deb_file "$kpkg" "$kver") && bbdeb=$(deb_file busybox-static "$bbver")
}
if ! fetch_all; then
    # A stale (or damaged) list names versions the archive no longer has:
    # fetch the lists afresh, once.
    rm -f "$aptdir"/lists/*_InRelease "$aptdir"/lists/*_Release* "$aptdir"/lists/*_Packages*
    apt_update
    resolve || die "cannot resolve the packages after refreshing the lists"
    packages="$kpkg=$kver busybox-static=$bbver"
    fetch_all || die "downloading the packages failed"
fi

# ---- assemble ----------------------------------------------------------------
work=$cache/guest-work
new=$cache/guest.new
rm -rf "$work" "$new"
mkdir -p "$work/kernel" "$work/busybox" "$new"
trap 'rm -rf "$work" "$new"' EXIT

step "unpacking $kpkg (about 10 s)"
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bbdeb" "$work/busybox"

images=("$work"/kernel/boot/vmlinux-*)
[ ${#images[@]} = 1 ] && [ -f "${images[0]}" ] || die "expected one /boot/vmlinux-* in $kpkg"
image=${images[0]}
uname_r=${image##*/vmlinux-}
# A RISC-V Linux Image header: "RISCV\0\0\0" at 0x30, "RSC\x05" at 0x38.
magic=$(od -An -tx1 -j48 -N12 "$image" | tr -d ' \n')
[ "$magic" = 524953435600000052534305 ] || die "$image is not a RISC-V Image (header $magic)"
config=$work/kernel/boot/config-$uname_r
[ -f "$config" ] || die "no config-$uname_r in $kpkg"
case $compress in
gzip) need=CONFIG_RD_GZIP ;;
zstd) need=CONFIG_RD_ZSTD ;;
none) need=CONFIG_BLK_DEV_INITRD ;;
esac
grep -q "^$need=y" "$config" || die "kernel $uname_r lacks $need=y (needed for a $compress initramfs)"

bb=$work/busybox/usr/bin/busybox
[ -x "$bb" ] || bb=$work/busybox/bin/busybox
[ -x "$bb" ] || die "no busybox binary in busybox-static $bbver"

# The packages' copyright files travel with the binaries: in the image and
# beside it.
docs=$work/docs
mkdir -p "$docs/usr/share/doc" "$new/licenses"
for pkgdoc in "$work"/kernel/usr/share/doc/* "$work"/busybox/usr/share/doc/*; do
    [ -f "$pkgdoc/copyright" ] || continue
    mkdir -p "$docs/usr/share/doc/${pkgdoc##*/}"
    cp "$pkgdoc/copyright" "$docs/usr/share/doc/${pkgdoc##*/}/"
    cp "$pkgdoc/copyright" "$new/licenses/${pkgdoc##*/}.copyright"
done

step "building the initramfs ($compress)"
cp "$image" "$new/Image"
cp "$config" "$new/config-$uname_r"
mk_q=()
[ "$quiet" = 0 ] || mk_q=(--quiet)
python3 "$here/mkinitramfs.py" "${mk_q[@]}" --kernel-root "$work/kernel" --busybox "$bb" \
    --overlay "$here/rootfs" --overlay "$docs" --boot-modules "$boot_modules" \
    --modules "$modules" --compress "$compress" --manifest "$new/initrd.manifest" -o "$new/initrd.img"
{
    echo "packages=$packages"
    echo "mirror=$mirror $suite"
    echo "kernel=$uname_r"
    echo "append=$append"
    echo "inputs=$inputs"
} >"$new/stamp"

# Swap the new image in whole; the stamp came last, so a half-built image is
# never mistaken for a good one.
rm -rf "$out.old"
[ ! -d "$out" ] || mv "$out" "$out.old"
mv "$new" "$out"
rm -rf "$out.old" "$work"
trap - EXIT

# Keep one version of each package in the download cache.
for f in "$debdir"/*.deb; do
    [ "$f" = "$kdeb" ] || [ "$f" = "$bbdeb" ] || rm -f "$f"
done

step "done: $packages"
say "  $out/Image ($(du -h "$out/Image" | cut -f1)), $out/initrd.img ($(du -h "$out/initrd.img" | cut -f1))"
say "  boot: qemu-system-riscv64 -M virt -m 512M -nographic -bios default -kernel $out/Image -initrd $out/initrd.img -append '$append'"
finish

