# Sourced by scripts/lab/guest.sh for `scripts/kernel-lab bench`: Falco's own
# kernel module as the yardstick. Nothing of Falco enters the repository:
# the module's source comes from Debian's falcosecurity-scap-dkms package
# (trixie) at bench time, is unpacked and built in the cache, and its
# consumer is the shared measurement tool ../shared/bench-anchor/scap-drain.c,
# compiled from where it lies. Expects REPO, CACHE, WORK and lab_cc.
#
# Every function returns non-zero with the reason in $FALCO_WHY, so that the
# bench prints "not measured: REASON" instead of failing.

FALCO_SUITE="deb http://deb.debian.org/debian trixie main"
FALCO_PACKAGE=falcosecurity-scap-dkms
FALCO_DIR=$CACHE/falco-scap
FALCO_DRAIN_SRC=$REPO/../shared/bench-anchor/scap-drain.c
FALCO_WHY=

falco_apt() {
    local st=$FALCO_DIR/apt
    "$@" -o Dir::Etc::SourceList="$st/sources.list" -o Dir::Etc::SourceParts=/dev/null \
         -o Dir::State::Lists="$st/lists" -o Dir::Cache="$st/cache" \
         -o Dir::State::Status="$st/status" -o APT::Architecture=amd64 \
         -o APT::Sandbox::User=root
}

# Downloads and unpacks the package once; sets FALCO_SRC (the dkms source tree)
# and FALCO_VERSION.
lab_falco_fetch() {
    local deb
    if ! ls "$FALCO_DIR"/debs/${FALCO_PACKAGE}_*.deb >/dev/null 2>&1; then
        echo "kernel-lab: fetching $FALCO_PACKAGE from Debian trixie"
        mkdir -p "$FALCO_DIR"/apt/{lists/partial,cache/archives/partial} "$FALCO_DIR/debs"
        echo "$FALCO_SUITE" > "$FALCO_DIR/apt/sources.list"
        : > "$FALCO_DIR/apt/status"
        falco_apt apt-get -qq update >/dev/null 2>&1 &&
            (cd "$FALCO_DIR/debs" && falco_apt apt-get -qq download "$FALCO_PACKAGE" >/dev/null 2>&1) ||
            { FALCO_WHY="cannot download $FALCO_PACKAGE from Debian trixie"; return 1; }
    fi
    deb=$(ls "$FALCO_DIR"/debs/${FALCO_PACKAGE}_*.deb | sort -V | tail -n1)
    FALCO_VERSION=$(dpkg-deb -f "$deb" Version)
    if [ ! -f "$FALCO_DIR/root/.complete-$FALCO_VERSION" ]; then
        rm -rf "$FALCO_DIR/root"; mkdir -p "$FALCO_DIR/root"
        dpkg -x "$deb" "$FALCO_DIR/root" || { FALCO_WHY="cannot unpack $deb"; return 1; }
        touch "$FALCO_DIR/root/.complete-$FALCO_VERSION"
    fi
    FALCO_SRC=$(ls -d "$FALCO_DIR"/root/usr/src/scap-* 2>/dev/null | sort -V | tail -n1)
    [ -f "$FALCO_SRC/Makefile" ] || { FALCO_WHY="no usr/src/scap-* in $deb"; return 1; }
}

# Builds scap.ko for series $1 in this checkout's work folder (kbuild writes
# next to the sources, so each series gets its own copy); sets FALCO_SCAP_KO.
lab_falco_build() {
    local s=$1 kver bdir=$WORK/$1/falco
    kver=$(lab_kver "$s") || { FALCO_WHY="no $s kernel"; return 1; }
    if [ -f "$bdir/scap.ko" ] && [ "$(cat "$bdir/BUILT-FOR" 2>/dev/null)" = "$kver $FALCO_VERSION" ]; then
        FALCO_SCAP_KO=$bdir/scap.ko; return 0
    fi
    rm -rf "$bdir"; mkdir -p "$bdir"
    cp -r "$FALCO_SRC"/. "$bdir/"
    # Its configure step probes kernel features by compiling small modules;
    # the failures it prints are that detection, not errors.
    if ! make -C "$bdir" KERNELDIR="$CACHE/$s/root/usr/src/linux-headers-$kver" CC="$(lab_cc "$s")" \
         > "$bdir/build.log" 2>&1 || [ ! -f "$bdir/scap.ko" ]; then
        FALCO_WHY="scap.ko $FALCO_VERSION does not build against $kver: $(grep -m1 -E 'error' "$bdir/build.log" | cut -c1-160) (log: $bdir/build.log)"
        return 1
    fi
    echo "$kver $FALCO_VERSION" > "$bdir/BUILT-FOR"
    FALCO_SCAP_KO=$bdir/scap.ko
}

# Compiles the shared consumer into $WORK/bin/scap-drain; sets FALCO_DRAIN_BIN.
lab_falco_drain() {
    local out=$WORK/bin/scap-drain
    [ -f "$FALCO_DRAIN_SRC" ] ||
        { FALCO_WHY="../shared/bench-anchor/scap-drain.c is absent (the consumer for Falco's kmod is shared data, not in the repository)"; return 1; }
    mkdir -p "$WORK/bin"
    gcc -O2 -static -o "$out" "$FALCO_DRAIN_SRC" 2> "$WORK/bin/scap-drain.log" ||
        { FALCO_WHY="scap-drain.c does not compile: $(head -n 1 "$WORK/bin/scap-drain.log")"; return 1; }
    FALCO_DRAIN_BIN=$out
}
