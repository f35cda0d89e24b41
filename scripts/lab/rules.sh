# Sourced by scripts/lab/guest.sh: what the guest's live rule checks
# (tests/guest/rules/run-rules.sh) need besides the module: a static
# `peregrine`, the trigger helper, the default rules and a do-nothing module
# for "Kernel Module Loaded". Expects REPO, CACHE, WORK and GUEST_EXTRA_BINARIES.

# Builds the static peregrine (cargo caches it) and pgtrigger on the host.
# PEREGRINE_GUEST_BIN, when set, is a static peregrine already built (e.g.
# by another checkout) that the guest gets instead of a build here.
lab_rules_prepare() {
    local target=${CARGO_TARGET_DIR:-$REPO/target} out=$WORK/bin bin
    mkdir -p "$out"
    if [ -n "${PEREGRINE_GUEST_BIN:-}" ]; then
        bin=$PEREGRINE_GUEST_BIN
        file -L "$bin" 2>/dev/null | grep -q 'static' ||
            { echo "kernel-lab: PEREGRINE_GUEST_BIN=$bin is not a statically linked program" >&2; return 1; }
        echo "kernel-lab: the guest gets $bin"
    else
        echo "kernel-lab: building a static peregrine for the guest"
        (cd "$REPO" && RUSTFLAGS="-C target-feature=+crt-static" \
            cargo build -q --release -p peregrine --target x86_64-unknown-linux-gnu) || return 1
        bin=$target/x86_64-unknown-linux-gnu/release/peregrine
    fi
    # Debug info would triple the initramfs for nothing the guest uses; a
    # profiled bench (LAB_KEEP_SYMBOLS) keeps the symbol table.
    strip ${LAB_KEEP_SYMBOLS:+--strip-debug} -o "$out/peregrine" "$bin" || return 1
    gcc -O2 -static -Wall -o "$out/pgtrigger" "$REPO/tests/guest/rules/pgtrigger.c" || return 1
    GUEST_EXTRA_BINARIES+=("$out/peregrine" "$out/pgtrigger")
}

# Real Debian packages for the guest's busy phase (installed with busybox
# dpkg while the default rules watch): fetched once into the cache. None
# when apt cannot download them; the guest then says it skipped the phase.
LAB_BUSY_DEBS=(hello tree pv lsof jq libjq1 libonig5 bc dc ed)
lab_rules_busy_debs() {
    local dir=$CACHE/debs p
    mkdir -p "$dir"
    for p in "${LAB_BUSY_DEBS[@]}"; do
        compgen -G "$dir/${p}_*.deb" > /dev/null && continue
        (cd "$dir" && apt-get download -q "$p" > /dev/null 2>&1) || return 1
    done
    mkdir -p "$WORK/guest-root/debs"
    for p in "${LAB_BUSY_DEBS[@]}"; do
        cp "$dir/${p}"_*.deb "$WORK/guest-root/debs/"
    done
}

# The rules and scripts, once the common part of the initramfs exists.
lab_rules_guest_files() {
    local dir=$WORK/guest-root/tests/rules
    lab_rules_busy_debs || echo "kernel-lab: apt-get download failed: the guest skips its package installs"
    mkdir -p "$dir"
    install -m 644 "$REPO/rules/peregrine_rules.yaml" "$REPO/tests/guest/rules/live-rules.yaml" "$dir/"
    install -m 644 "$REPO/tests/guest/rules/run-rules.sh" "$REPO/tests/guest/capture.sh" "$dir/"
}

# pgdummy.ko for series $1, next to peregrine.ko in the initramfs root.
lab_rules_module() {
    local s=$1 kver bdir=$WORK/$1/build/pgdummy
    kver=$(lab_kver "$s")
    rm -rf "$bdir"; mkdir -p "$bdir"
    cp "$REPO"/tests/guest/rules/pgdummy/* "$bdir/"
    make -s -C "$CACHE/$s/root/usr/src/linux-headers-$kver" M="$bdir" CC="$(lab_cc "$s")" modules >/dev/null &&
        cp "$bdir/pgdummy.ko" "$WORK/guest-root/pgdummy.ko"
}
