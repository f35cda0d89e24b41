# Sourced by scripts/kernel-lab: fetching and building against lab kernels.
# Expects REPO and CACHE.

# Downloads are shared by every checkout; what is built from a checkout
# (module, initramfs, console logs) lives under a directory of its own, so
# that several worktrees can run the lab at the same time.
WORK=$CACHE/work/$(printf '%s' "$REPO" | md5sum | cut -c1-12)

# The apt sources that carry each series, from Debian's registry only.
lab_sources() {
    case $1 in
        5.10) printf '%s\n' \
            "deb http://deb.debian.org/debian bullseye main" \
            "deb http://deb.debian.org/debian-security bullseye-security main" ;;
        6.1)  printf '%s\n' \
            "deb http://deb.debian.org/debian bookworm main" \
            "deb http://deb.debian.org/debian-security bookworm-security main" ;;
        6.12) printf '%s\n' "deb http://deb.debian.org/debian bookworm-backports main" ;;
        *) echo "kernel-lab: unknown series $1" >&2; return 1 ;;
    esac
}

# Compiler the series' headers can be built with on this machine: the 5.10
# headers ask for gcc-10, which bookworm lacks; gcc-12 builds a module that
# loads.
lab_cc() { echo gcc-12; }

# A private apt state per series, so the machine's own sources are untouched.
lab_apt() {
    local s=$1; shift
    local st=$CACHE/$s/apt
    "$@" -o Dir::Etc::SourceList="$st/sources.list" -o Dir::Etc::SourceParts=/dev/null \
         -o Dir::State::Lists="$st/lists" -o Dir::Cache="$st/cache" \
         -o Dir::State::Status="$st/status" -o APT::Architecture=amd64 \
         -o APT::Sandbox::User=root
}

# Prints the ABI name (e.g. 6.1.0-56-cloud-amd64) of the newest cloud image.
lab_resolve_kver() {
    local s=$1 dep
    dep=$(lab_apt "$s" apt-cache depends linux-image-cloud-amd64 2>/dev/null |
          sed -n 's/^ *Depends: linux-image-\([0-9].*-cloud-amd64\)\( .*\)\{0,1\}$/\1/p' |
          grep "^$s[.-]" | sort -V | tail -n1)
    [ -n "$dep" ] || { echo "kernel-lab: cannot resolve the $s cloud kernel from the package lists" >&2; return 1; }
    echo "$dep"
}

# Downloads and extracts one series unless it is already in the cache.
# Leaves $CACHE/$s/KVER (the ABI name) and $CACHE/$s/root (dpkg -x tree).
lab_fetch() {
    # Every step checks its status itself: callers use `lab_fetch || ...`,
    # where bash ignores set -e inside the function.
    local s=$1 dir=$CACHE/$1 kver p
    local -a pkgs
    if [ -s "$dir/KVER" ] && [ -f "$dir/root/.complete" ]; then
        return 0
    fi
    echo "kernel-lab: fetching $s"
    mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs" || return 1
    lab_sources "$s" > "$dir/apt/sources.list" || return 1
    : > "$dir/apt/status"
    lab_apt "$s" apt-get -qq update >/dev/null || return 1
    kver=$(lab_resolve_kver "$s") || return 1
    # The common headers and kbuild packages the flavour headers depend on.
    pkgs=("linux-image-$kver" "linux-headers-$kver")
    pkgs+=($(lab_apt "$s" apt-cache depends "linux-headers-$kver" |
             sed -n 's/^ *Depends: \(linux-\(headers\|kbuild\)-[^ ]*\).*/\1/p' | sort -u))
    [ ${#pkgs[@]} -ge 4 ] || { echo "kernel-lab: cannot list the packages of linux-headers-$kver" >&2; return 1; }
    for p in "${pkgs[@]}"; do
        ls "$dir/debs/${p}"_*.deb >/dev/null 2>&1 ||
            (cd "$dir/debs" && lab_apt "$s" apt-get -qq download "$p") || return 1
    done
    rm -rf "$dir/root"; mkdir -p "$dir/root" || return 1
    for p in "$dir"/debs/*.deb; do dpkg -x "$p" "$dir/root" || return 1; done
    # The flavour headers' Makefile includes the common headers by their
    # installed absolute path; point it at the extracted tree instead.
    sed -i "s|/usr/src/|$dir/root/usr/src/|g" "$dir/root/usr/src/linux-headers-$kver/Makefile" || return 1
    [ -f "$dir/root/boot/vmlinuz-$kver" ] || { echo "kernel-lab: no vmlinuz-$kver in the image package" >&2; return 1; }
    echo "$kver" > "$dir/KVER"
    touch "$dir/root/.complete"
    echo "kernel-lab: $s is $kver"
}

lab_kver() { cat "$CACHE/$1/KVER"; }

# Builds kmod/ out of tree against series $1; the build tree (a copy of
# kmod/, since kbuild writes next to the sources) stays in the cache.
lab_build() {
    local s=$1 kver bdir
    kver=$(lab_kver "$s") || return 1
    bdir=$WORK/$s/build
    mkdir -p "$bdir" || return 1
    rsync -a --delete --exclude '*.o' --exclude '*.ko' --exclude '.*.cmd' "$REPO/kmod/" "$bdir/kmod/" 2>/dev/null ||
        { rm -rf "$bdir/kmod"; cp -r "$REPO/kmod" "$bdir/kmod"; }
    echo "kernel-lab: building peregrine.ko for $kver"
    rm -f "$bdir/kmod/peregrine.ko"
    make -s -C "$CACHE/$s/root/usr/src/linux-headers-$kver" M="$bdir/kmod" \
         CC="$(lab_cc "$s")" modules || return 1
    test -f "$bdir/kmod/peregrine.ko"
}
