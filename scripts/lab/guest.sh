# Sourced by scripts/kernel-lab: the guest tests (initramfs + QEMU boot).
# Expects REPO, CACHE, skip_if_unavailable and the functions of common.sh.

# Static programs built from tests/guest/NAME.c and put in the guest's /bin.
GUEST_PROGRAMS=(pgcheck pgwork pgbench pgscap evasion/pgevade)
# The same, built as static i386 programs (gcc -m32, Debian's gcc-multilib);
# one whose 64-bit build is there too gets the suffix 32 (pgevade32).
GUEST_PROGRAMS32=(pg32 evasion/pgevade)
# Prebuilt static binaries to add to the guest's /bin (e.g. a Rust capture tool).
GUEST_EXTRA_BINARIES=()
BOOT_TIMEOUT=${PEREGRINE_BOOT_TIMEOUT:-300}
# An uncompressed cpio archive lab_initrd appends, when set (the container
# runtime of scripts/lab/containers.sh, for the tests only).
LAB_EXTRA_CPIO=
. "$REPO/scripts/lab/rules.sh"
. "$REPO/scripts/lab/containers.sh"
. "$REPO/scripts/lab/falco-agent.sh"

# Says why the lab cannot run; exits 0 only when asked to skip.
lab_unavailable() {
    echo "kernel-lab: guest tests not run: $*"
    [ "$skip_if_unavailable" = 1 ] && exit 0
    exit 1
}

lab_check_tools() {
    local t
    for t in qemu-system-x86_64 cpio gzip gcc make timeout; do
        command -v "$t" >/dev/null || lab_unavailable "$t is not installed (scripts/install-deps)"
    done
    [ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' ||
        ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' ||
        lab_unavailable "/bin/busybox is not the static busybox (package busybox-static)"
    echo 'int main(void){return 0;}' | gcc -static -x c -o /dev/null - 2>/dev/null ||
        lab_unavailable "gcc cannot link static programs (libc6-dev)"
}

# The parts of the initramfs that do not depend on the kernel.
lab_guest_common() {
    local root=$WORK/guest-root p applet
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,tests}
    cp /bin/busybox "$root/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
    done
    for p in "${GUEST_PROGRAMS[@]}"; do
        gcc -O2 -static -Wall -I"$REPO/kmod/include" -o "$root/bin/${p##*/}" "$REPO/tests/guest/$p.c"
    done
    for p in "${GUEST_PROGRAMS32[@]}"; do
        n=${p##*/}
        [ -e "$root/bin/$n" ] && n=${n}32
        gcc -m32 -O2 -static -Wall -o "$root/bin/$n" "$REPO/tests/guest/$p.c" 2>/dev/null ||
            echo "kernel-lab: cannot build the 32-bit $n (gcc-multilib missing?): the guest skips its checks"
    done
    for p in "${GUEST_EXTRA_BINARIES[@]}"; do
        cp "$p" "$root/bin/"
    done
    install -m 755 "$REPO/tests/guest/init" "$root/init"
    install -m 755 "$REPO/tests/guest/run-tests.sh" "$REPO/tests/guest/bench.sh" "$REPO/tests/guest/demo.sh" "$root/tests/"
    install -m 644 "$REPO/tests/guest/live-replay.sh" "$REPO/tests/guest/containers.sh" "$root/tests/"
    mkdir -p "$root/tests/evasion"
    install -m 644 "$REPO/tests/guest/evasion/run-evasion.sh" "$REPO/tests/guest/evasion/falco-agent.sh" "$root/tests/evasion/"
    # Falco's stable rules, loaded unchanged next to Peregrine's (shared data,
    # not in the repository): the evasion suite runs without them if absent.
    if [ -f "$REPO/../shared/conformance/upstream-rules/falco_rules.yaml" ]; then
        install -m 644 "$REPO/../shared/conformance/upstream-rules/falco_rules.yaml" "$root/tests/evasion/"
    fi
}

lab_initrd() {
    local s=$1 out=$WORK/$1/guest/initrd.gz
    mkdir -p "$WORK/$s/guest"
    cp "$WORK/$s/build/kmod/peregrine.ko" "$WORK/guest-root/peregrine.ko"
    (cd "$WORK/guest-root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
    # The kernel unpacks one archive after another, compressed or not; an
    # uncompressed one must start on a 4-byte boundary (zeros are skipped).
    if [ -n "$LAB_EXTRA_CPIO" ] && [ -f "$LAB_EXTRA_CPIO" ]; then
        head -c $(( (4 - $(stat -c %s "$out") % 4) % 4 )) /dev/zero >> "$out"
        cat "$LAB_EXTRA_CPIO" >> "$out"
    fi
}

# Boots one kernel; prints its check lines; returns the number of failures.
lab_boot() {
    # PEREGRINE_BOOT_ARGS: more kernel parameters, e.g. loglevel=7 to see
    # the stack traces a quiet console hides.
    local s=$1 kver log start end passed failed attempt
    local append="console=ttyS0 panic=-1 quiet ${PEREGRINE_BOOT_ARGS:-} ${2:-}"
    kver=$(lab_kver "$s")
    log=$WORK/$s/guest/console.log
    for attempt in 1 2 3; do
        start=$(date +%s)
        # -cx16: QEMU 7.2's TCG mis-emulates cmpxchg16b now and then (garbage
        # EFLAGS, then oopses in SLUB's fast path, with or without our
        # module); without the feature the kernels take their locked path.
        timeout "$BOOT_TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max,-cx16 -m 1024 \
            ${LAB_QEMU_CLOCK:--smp 2} -kernel "$CACHE/$s/root/boot/vmlinuz-$kver" -initrd "$WORK/$s/guest/initrd.gz" \
            -append "$append" -nographic -no-reboot > "$log" 2>&1 || true
        end=$(date +%s)
        tr -d '\r' < "$log" > "$log.txt"
        # Should the emulator still kill a kernel in early boot, long before
        # /init, that boot alone is tried again. Once the guest script has
        # started, whatever happens counts.
        grep -q 'PGTEST-KERNEL ' "$log.txt" && break
        echo "[$s] note: the kernel died before /init ran (boot $attempt): $(grep -a -m1 -E 'BUG:|Kernel panic' "$log.txt")"
        cp "$log.txt" "$log.early-death-$attempt.txt"
    done
    sed -n "s/^.*PGTEST \(ok\|FAIL\) /[$s] \1 /p" "$log.txt"
    sed -n "s/^.*\(PGTEST-SKIP\|PGTEST-GAP\|PGTEST-FP\|PGTEST-FP-BUSY\) /[$s] \1 /p" "$log.txt"
    # Falco's agent and Peregrine side by side on the evasion triggers: a
    # table, not checks (its parity checks are PGTEST lines above).
    sed -n "s/^.*PGFALCO-SIDE /[$s] PGFALCO-SIDE /p" "$log.txt"
    if grep -qE 'Kernel panic|BUG:|Oops:' "$log.txt"; then
        echo "[$s] FAIL kernel console shows a panic/BUG/Oops (see $log.txt)"
        grep -E -A15 'Kernel panic|BUG:|Oops:' "$log.txt" | head -n 40
        LAB_FAILED=$((LAB_FAILED + 1))
    fi
    if ! grep -q '^PGTEST-RESULT ' "$log.txt"; then
        echo "[$s] FAIL no verdict from the guest after $((end - start)) s (timeout or crash); last lines:"
        tail -n 25 "$log.txt" | sed 's/^/    /'
        LAB_FAILED=$((LAB_FAILED + 1))
        return
    fi
    passed=$(sed -n 's/^PGTEST-RESULT \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log.txt")
    failed=$(sed -n 's/^PGTEST-RESULT \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log.txt")
    # The checks' own lines decide when the verdict cannot: a kernel
    # message written into the verdict line ("PGTEST-RESULT 29[ 69.8]
    # sysrq: Power Off") left both counts empty, and a failure behind such
    # a line would have passed unseen. A FAIL line always counts.
    ok_lines=$(grep -a -c 'PGTEST ok ' "$log.txt" || true)
    fail_lines=$(grep -a -c 'PGTEST FAIL ' "$log.txt" || true)
    if [ -z "$passed" ] || [ -z "$failed" ]; then
        echo "[$s] note: the verdict line is garbled ($(grep -a -m1 '^PGTEST-RESULT ' "$log.txt")); counting the checks' lines"
        passed=$ok_lines
        failed=$fail_lines
    elif [ "$fail_lines" -gt "$failed" ]; then
        failed=$fail_lines
    fi
    # Failure details the guest printed, indented under their check.
    awk '/^PGTEST FAIL/{show=1; next} /^PGTEST/{show=0} show && /^    /{print}' "$log.txt"
    grep -E '^(capture|storm):' "$log.txt" | sed "s/^/[$s] /" || true
    echo "[$s] $kver: $passed passed, $failed failed, boot+tests $((end - start)) s"
    LAB_PASSED=$((LAB_PASSED + passed))
    LAB_FAILED=$((LAB_FAILED + failed))
}

# The capture the guest's `peregrine capture` made from the module: it
# must read back whole with Peregrine's reader (as many events as were
# written), sysdig must read it, and sysdig must see the marker workload.
lab_capture_check() {
    local s=$1 log=$WORK/$1/guest/console.log.txt out=$WORK/$1/guest/live.scap written ours seen
    local peregrine=${CARGO_TARGET_DIR:-$REPO/target}/x86_64-unknown-linux-gnu/release/peregrine
    grep -q '^PGCAPTURE-BEGIN' "$log" || return 0
    sed -n '/^PGCAPTURE-BEGIN/,/^PGCAPTURE-END/{/^PGCAPTURE/d;p}' "$log" | base64 -d > "$out" 2>/dev/null || true
    written=$(sed -n 's/^PGCAPTURE-WRITTEN \([0-9]*\).*/\1/p' "$log")
    ours=$("$peregrine" capture -r "$out" -w /dev/null 2>&1 | sed -n 's/.*: [0-9]* of \([0-9]*\) events written.*/\1/p')
    if [ -n "$written" ] && [ "$ours" = "$written" ]; then
        echo "[$s] ok capture reads back whole: $ours events, as many as were written"
        LAB_PASSED=$((LAB_PASSED + 1))
    else
        echo "[$s] FAIL capture reads back whole: read ${ours:-nothing}, written ${written:-?} ($out)"
        LAB_FAILED=$((LAB_FAILED + 1))
    fi
    if ! command -v sysdig >/dev/null; then
        echo "[$s] skip capture read by sysdig: sysdig is not installed"
        return 0
    fi
    # sysdig 0.29 (2022) stops reading at the generic event of rseq, a
    # syscall its table does not know; current kernels make one per exec.
    # Those events are filtered out (by Peregrine) before sysdig reads.
    "$peregrine" capture -r "$out" -w "$out.for-sysdig" 'not evt.type=rseq' > /dev/null 2>&1
    seen=$(sysdig -r "$out.for-sysdig" -p '%evt.num' 'evt.num>0' 2>/dev/null | wc -l)
    # Not `sysdig | grep -q`: grep leaving at the first match gives sysdig a
    # SIGPIPE, which pipefail turns into a failure whenever more follows.
    marker=$(sysdig -r "$out.for-sysdig" -p '%proc.name %evt.type' 'fd.name=/tmp/pgcap/marker-file and evt.dir=<' 2>/dev/null || true)
    if grep -Eq '^cat open(at)?$' <<< "$marker"; then
        echo "[$s] ok capture read by sysdig ($seen events shown), with the marker workload (cat opening /tmp/pgcap/marker-file)"
        LAB_PASSED=$((LAB_PASSED + 1))
    else
        echo "[$s] FAIL capture read by sysdig: no cat opening the marker; it shows: $(sysdig -r "$out.for-sysdig" -p '%proc.name %evt.type %fd.name' 'fd.name contains pgcap' 2>&1 | head -n 3)"
        LAB_FAILED=$((LAB_FAILED + 1))
    fi
}

# What every guest run starts with: counters, tools, the kernels.
lab_start() {
    local s
    LAB_PASSED=0
    LAB_FAILED=0
    lab_check_tools
    for s in "$@"; do
        lab_fetch "$s" >/dev/null 2>&1 || lab_unavailable "cannot fetch the $s kernel packages from Debian"
    done
}

# The differential oracle: the guest recorded pgwork from peregrine.ko and
# from Falco's scap.ko and printed both records (gzip, base64) with the
# workload's pids; kmod_diff compares them event by event and parameter by
# parameter, prints its table and fails on any unexplained difference.
lab_diff_check() {
    local s=$1 log=$WORK/$1/guest/console.log.txt dir=$WORK/$1/guest/diff pids side
    local tool=${CARGO_TARGET_DIR:-$REPO/target}/debug/kmod_diff
    grep -q '^PGDIFF-PIDS ' "$log" || return 0
    mkdir -p "$dir"
    for side in OURS FALCO; do
        sed -n "/^PGDIFF-$side-BEGIN/,/^PGDIFF-$side-END/{/^PGDIFF/d;p}" "$log" | base64 -d 2>/dev/null |
            gunzip > "$dir/$side.bin" 2>/dev/null || true
    done
    read -r pids < <(sed -n 's/^PGDIFF-PIDS //p' "$log")
    set -- $pids
    if "$tool" "$dir/OURS.bin" "$1" "$dir/FALCO.bin" "$2" "$REPO/kmod/SYSCALLS.md" > "$dir/report.txt" 2>&1; then
        sed "s/^/[$s] /" "$dir/report.txt"
        echo "[$s] ok differential: every workload event equal to Falco's kmod $FALCO_VERSION's"
        LAB_PASSED=$((LAB_PASSED + 1))
    else
        sed "s/^/[$s] /" "$dir/report.txt"
        echo "[$s] FAIL differential: peregrine.ko differs from Falco's kmod (report: $dir/report.txt)"
        LAB_FAILED=$((LAB_FAILED + 1))
    fi
}

# Falco's scap.ko for series $1 into the guest's root, or the reason why not.
# FALCO_DIFF_KO ("%s" = series) names a Falco kmod built elsewhere (e.g.
# falco.ko of current libs) to compare with instead of Debian's scap.ko.
lab_diff_module() {
    local s=$1 root=$WORK/guest-root ko
    rm -f "$root/scap.ko" "$root/falco-unavailable"
    if [ -n "${FALCO_DIFF_KO:-}" ]; then
        ko=${FALCO_DIFF_KO//%s/$s}
        if [ -f "$ko" ]; then
            cp "$ko" "$root/scap.ko"
            FALCO_VERSION="$(basename "$ko") (driver API $(modinfo -F api_version "$ko" 2>/dev/null || echo '?'))"
        else
            echo "no Falco module for $s: $ko (FALCO_DIFF_KO)" > "$root/falco-unavailable"
        fi
    elif [ -n "$LAB_FALCO_WHY" ]; then
        echo "$LAB_FALCO_WHY" > "$root/falco-unavailable"
    elif lab_falco_build "$s"; then
        cp "$FALCO_SCAP_KO" "$root/scap.ko"
    else
        echo "$FALCO_WHY" > "$root/falco-unavailable"
    fi
}

lab_test() {
    local s agent_why=
    lab_start "$@"
    lab_rules_prepare || { echo "FAIL static peregrine build"; LAB_FAILED=$((LAB_FAILED + 1)); }
    (cd "$REPO" && cargo build -q -p peregrine-tests --bin kmod_diff) ||
        { echo "FAIL kmod_diff build"; LAB_FAILED=$((LAB_FAILED + 1)); }
    . "$REPO/scripts/lab/falco.sh"
    LAB_FALCO_WHY=
    lab_falco_fetch || LAB_FALCO_WHY=$FALCO_WHY
    lab_guest_common
    lab_rules_guest_files
    lab_containers_prepare && LAB_EXTRA_CPIO=$WORK/containers.cpio
    # Falco's own agent reruns the evasion triggers, only when given (CI
    # does not): otherwise the guest gets nothing of it but the reason.
    if ! lab_falco_agent_files "$WORK/guest-root"; then
        agent_why=$FALCO_AGENT_WHY
        rm -rf "$WORK/guest-root/falco" "$WORK/guest-root/etc/falco"
    fi
    for s in "$@"; do
        lab_build "$s" >/dev/null || { echo "[$s] FAIL module build"; LAB_FAILED=$((LAB_FAILED + 1)); continue; }
        lab_rules_module "$s" || { echo "[$s] FAIL pgdummy module build"; LAB_FAILED=$((LAB_FAILED + 1)); }
        lab_diff_module "$s"
        lab_falco_agent_series "$s" "$WORK/guest-root" "$agent_why" || true
        lab_initrd "$s"
        lab_boot "$s"
        lab_capture_check "$s"
        lab_diff_check "$s"
    done
    echo "$LAB_PASSED passed, $LAB_FAILED failed"
    [ "$LAB_FAILED" -eq 0 ]
}

# scripts/demo: one guest where peregrine watches a few attacks with the
# default rules; prints what the guest reports.
lab_demo() {
    local s=$1
    lab_start "$s"
    lab_rules_prepare || { echo "demo: building peregrine for the guest failed"; return 1; }
    lab_guest_common
    lab_rules_guest_files
    lab_build "$s" >/dev/null || { echo "demo: building peregrine.ko failed"; return 1; }
    lab_rules_module "$s" || { echo "demo: building the test module failed"; return 1; }
    lab_initrd "$s"
    echo "kernel-lab: booting the $s guest (software emulation: about a minute)"
    lab_boot "$s" pgscript=demo.sh >/dev/null
    sed -n 's/^PGDEMO //p' "$WORK/$s/guest/console.log.txt"
    grep -q '^PGDEMO ---- end ----' "$WORK/$s/guest/console.log.txt"
}

# scripts/kernel-lab bench: per kernel, ONE boot measuring no driver,
# peregrine.ko (C drain, then the Rust peregrine with the default rules),
# Falco's scap.ko (from Debian's package, built in the cache), the two
# whole agents (Falco's userspace on its kmod, and peregrine, both with
# Falco's rules: paths given as in scripts/lab/falco-agent.sh) and no driver
# again; prints the table of scripts/lab/bench-table and keeps JSON lines
# in $WORK/SERIES/bench.jsonl. PEREGRINE_BENCH_ARGS passes the guest's
# knobs, e.g. "pgbench_rounds=9 pgbench_phases=peregrine,falco
# pgbench_workloads=fork_exec=400" (see tests/guest/bench.sh).
# PEREGRINE_BENCH_CLOCK=icount boots QEMU with one CPU and -icount
# shift=0,sleep=off: the guest's clock then advances one nanosecond per
# guest instruction (and jumps over idle time), so ns/op counts the
# instructions the whole machine ran per op. Wall time under
# TCG moves by 20% from round to round on fork+exec, with the translation
# cache and the host's load; instruction counts do not, at the price of
# saying nothing of cache misses. PEREGRINE_BENCH_PERF=/usr/bin/perf (the
# host's perf, with its libraries) profiles each consumer over each workload
# in the guest; the samples by symbol go to $WORK/SERIES/profile.txt and
# the guest's peregrine keeps its symbol table. A benchmark: whatever is missing is printed
# as "not measured: REASON", and the exit status is 0 unless no kernel
# could be measured at all.
# lab_perf_cpio PERF: an uncompressed cpio ($WORK/perf.cpio) with the perf
# program at /bin/perf and every library the loader maps for it, at the
# paths it asks for them (the guest has no libraries of its own).
lab_perf_cpio() {
    local root=$WORK/perf-root lib
    "$1" --version > /dev/null 2>&1 || return 1
    rm -rf "$root" "$WORK/perf.cpio"
    install -D -m 755 "$1" "$root/bin/perf"
    for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
        [ -e "$root$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
    done
    (cd "$root" && find . | cpio -o -H newc --quiet) > "$WORK/perf.cpio"
}

lab_bench() {
    local s log falco_why="" measured=0 root=$WORK/guest-root
    LAB_PASSED=0
    LAB_FAILED=0
    BOOT_TIMEOUT=${PEREGRINE_BOOT_TIMEOUT:-900}
    local clock=${PEREGRINE_BENCH_CLOCK:-wall}
    case $clock in
        wall) LAB_QEMU_CLOCK= ;;
        # One CPU: QEMU 7.2 under -icount never brings a second one up (the
        # boot stops at "Booting SMP configuration"). The count is then the
        # whole machine's: workload, module and drainer alike.
        icount) LAB_QEMU_CLOCK="-smp 1 -icount shift=0,sleep=off" ;;
        *) echo "kernel-lab: PEREGRINE_BENCH_CLOCK is wall or icount, not '$clock'" >&2; return 2 ;;
    esac
    lab_check_tools
    for s in "$@"; do
        lab_fetch "$s" >/dev/null 2>&1 || lab_unavailable "cannot fetch the $s kernel packages from Debian"
    done
    . "$REPO/scripts/lab/falco.sh"
    if lab_falco_fetch && lab_falco_drain; then
        GUEST_EXTRA_BINARIES+=("$FALCO_DRAIN_BIN")
    else
        falco_why=$FALCO_WHY
    fi
    if [ -n "${PEREGRINE_BENCH_PERF:-}" ]; then
        if lab_perf_cpio "$PEREGRINE_BENCH_PERF"; then
            LAB_EXTRA_CPIO=$WORK/perf.cpio LAB_KEEP_SYMBOLS=1
        else
            echo "kernel-lab: PEREGRINE_BENCH_PERF=$PEREGRINE_BENCH_PERF is no perf program: not profiled"
        fi
    fi
    lab_rules_prepare >/dev/null 2>&1 ||
        echo "kernel-lab: the static peregrine does not build: the peregrine-live phase is skipped"
    lab_guest_common
    if [ -x "$root/bin/peregrine" ]; then
        mkdir -p "$root/etc/peregrine"
        install -m 644 "$REPO/rules/peregrine_rules.yaml" "$root/etc/peregrine/"
    fi
    # Agent against agent: Falco's userspace and kmod, given by path.
    local agent_why=""
    lab_falco_agent_files "$root" || agent_why=$FALCO_AGENT_WHY
    for s in "$@"; do
        lab_build "$s" >/dev/null || { echo "[$s] not measured: peregrine.ko does not build"; continue; }
        rm -f "$root/scap.ko" "$root/falco-unavailable"
        if [ -n "$falco_why" ]; then
            echo "$falco_why" > "$root/falco-unavailable"
        elif lab_falco_build "$s"; then
            cp "$FALCO_SCAP_KO" "$root/scap.ko"
        else
            echo "$FALCO_WHY" > "$root/falco-unavailable"
        fi
        lab_falco_agent_series "$s" "$root" "$agent_why" || true
        lab_initrd "$s"
        echo "kernel-lab: $s: one guest boot for every phase (software emulation: several minutes)"
        lab_boot "$s" "pgscript=bench.sh ${PEREGRINE_BENCH_ARGS:-}" >/dev/null
        log=$WORK/$s/guest/console.log.txt
        if ! grep -q '^PGBENCH none ' "$log"; then
            echo "[$s] not measured: the guest printed no runs (see $log)"
            continue
        fi
        rm -f "$WORK/$s/bench.jsonl"
        awk -v kernel="$s" -v clock="$clock" -v json="$WORK/$s/bench.jsonl" -f "$REPO/scripts/lab/bench-table" "$log"
        grep -qE 'Kernel panic|BUG:|Oops:' "$log" && echo "[$s] note: the console shows a kernel BUG/Oops/panic (see $log)"
        if grep -q '^PGPERF ' "$log"; then
            sed -n 's/^PGPERF //p' "$log" > "$WORK/$s/profile.txt"
            echo "[$s] profiles of the consumers: $WORK/$s/profile.txt"
        fi
        echo "[$s] JSON lines: $WORK/$s/bench.jsonl; console: $log"
        measured=$((measured + 1))
    done
    [ "$measured" -gt 0 ]
}
