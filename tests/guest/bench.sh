#!/bin/sh
# The phases of the benchmark suite. One script for the QEMU guest
# (scripts/kernel-lab bench boots it with pgscript=bench.sh) and for bare
# metal (scripts/bench runs it as root with the paths below set); busybox sh
# is enough. Every driver runs in ONE boot so the machine's speed is the
# same for all of them:
#   none                no driver loaded
#   peregrine           peregrine.ko writing every syscall, pgcheck draining
#   falco               Falco's scap.ko (Debian's falcosecurity-scap-dkms), every
#                       syscall and tracepoint, scap-drain keeping rings empty
#   peregrine-live      peregrine.ko + `peregrine` with the default rules, alerts
#                       to a file; the module writes what the rules and state need
#   peregrine-live-all  the same with -A: every syscall written and evaluated
#   falco-agent         Falco's whole agent: its userspace (built elsewhere, see
#                       scripts/lab/falco-agent.sh) on its own falco.ko, with
#                       Falco's rules file; events and drops from its metrics
#   peregrine-agent     peregrine.ko + `peregrine` with that same rules file
#   none-after          no driver, at the very end: shows the drift of the boot
# Each phase runs every workload of pgbench. The phases are interleaved
# round by round, loading and unloading their module, so the drift of the
# machine (large under TCG) spreads over all of them alike.
#
# Output, read by scripts/lab/bench-table (never a test verdict):
#   PGBENCH PHASE WORKLOAD ns=.. ops=.. syscalls=.. cpu_us=.. wall_us=..
#   PGBENCH-CONSUMER PHASE WORKLOAD cpu_us=.. sys_us=.. rss_kb=.. anon_kb=.. file_kb=.. shmem_kb=.. thp_kb=.. [events=.. drops_buffer=.. drops_pf=.. drops_too_large=..]
#   PGBENCH-DRAIN PHASE events=.. drops=.. seconds=..      (a drainer's session)
#   PGBENCH-IDLE PHASE cpu_us=.. seconds=..                 (an agent doing nothing)
#   PGBENCH-SKIP PHASE reason                               (once per phase)
#   PGPERF PHASE WORKLOAD ...      (perf's samples of the consumer, when profiled)
PGBENCH=${PGBENCH:-pgbench}
PGCHECK=${PGCHECK:-pgcheck}
PEREGRINE=${PEREGRINE:-peregrine}
PEREGRINE_KO=${PEREGRINE_KO:-/peregrine.ko}
RULES=${RULES:-/etc/peregrine/peregrine_rules.yaml}
SCAP_KO=${SCAP_KO:-/scap.ko}
SCAP_DRAIN=${SCAP_DRAIN:-scap-drain}
# Why Falco's phase cannot run, when the caller knows.
FALCO_UNAVAILABLE=${FALCO_UNAVAILABLE:-$(cat /falco-unavailable 2>/dev/null)}
BENCH_TMP=${BENCH_TMP:-/tmp/peregrine-bench}
ROUNDS=${pgbench_rounds:-5}
# Operations per workload run, separated by spaces or commas (a boot
# parameter cannot hold spaces).
WORKLOADS=$(echo "${pgbench_workloads:-getppid=500000,open_read_close=50000,fork_exec=300,net=3000,mixed=10000}" | tr , ' ')
METRICS_PORT=${METRICS_PORT:-8765}
# Seconds an agent is watched doing nothing, once per round.
IDLE_SECONDS=${pgbench_idle:-5}
# The phases to run, by name (see above), separated by commas; all by default.
# "none" is always run: every other phase is measured against it.
PHASES=",none,${pgbench_phases:-peregrine,falco,peregrine-live,peregrine-live-all,falco-agent,peregrine-agent},"

# A profile of the consumer over each workload, when perf is in the guest
# (scripts/kernel-lab bench with PEREGRINE_BENCH_PERF): perf's software clock
# samples PERF_HZ times a second of the guest's clock, which under -icount
# is instructions, so a symbol's share is its share of the consumer's
# instructions, kernel and user alike. perf itself runs beside the consumer:
# a profiled run's other figures carry its cost.
PERF=$(command -v perf 2>/dev/null)
PERF_HZ=${pgbench_perf_hz:-2000}

echo "PGTEST-KERNEL $(uname -r)"
mkdir -p "$BENCH_TMP"
BENCH_FILE=$BENCH_TMP/bench-file
echo hostname > "$BENCH_FILE"
rm -f "$BENCH_TMP/skips"
TICK_HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)

skipped() { grep -q "^$1 " "$BENCH_TMP/skips" 2>/dev/null; }
skip() {
    skipped $1 && return
    echo "$1 $2" >> "$BENCH_TMP/skips"
    echo "PGBENCH-SKIP $1 $2"
}

# Centiseconds since boot: busybox date has no sub-second format.
now_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }

# drained PHASE EVENTS DROPS START_CS: one line for the table.
drained() {
    echo "PGBENCH-DRAIN $1 events=${2:-?} drops=${3:-?} seconds=$(awk -v a=$4 -v b=$(now_cs) 'BEGIN { printf "%.2f", (b - a) / 100 }')"
}

# cpu_us PID: user + system time of a process so far.
cpu_us() { awk -v hz=$TICK_HZ '{ sub(/.*\) /, ""); printf "%d\n", ($12 + $13) * 1000000 / hz }' /proc/$1/stat; }
# sys_us PID: the system part alone (what the process costs in the kernel:
# its syscalls, faults and the interrupts charged to it).
sys_us() { awk -v hz=$TICK_HZ '{ sub(/.*\) /, ""); printf "%d\n", $13 * 1000000 / hz }' /proc/$1/stat; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' /proc/$1/status; }
# The parts of the RSS: anonymous (heap, stacks), files (the program), shared
# memory (the rings), and the anonymous memory in transparent huge pages, which
# moves the RSS by 2 MiB at a time.
rss_parts() {
    awk '/^(RssAnon|RssFile|RssShmem):/ { printf "%s_kb=%s ", tolower(substr($1, 4, length($1) - 4)), $2 }' /proc/$1/status
    awk '/^AnonHugePages:/ { printf "thp_kb=%s", $2 }' /proc/$1/smaps_rollup 2>/dev/null
}

# kernel_counters: the module's counters as peregrine's /metrics shows them,
# "events drops_buffer drops_pf drops_too_large", or nothing.
# (Through pgtrigger: busybox-static's wget segfaults at start in the guest.)
kernel_counters() {
    timeout 10 /bin/pgtrigger http-get $METRICS_PORT /metrics 2>/dev/null | awk '
        $1 == "falcosecurity_peregrine_kernel_events_total" { e = $2 }
        $1 == "falcosecurity_peregrine_kernel_drops_buffer_total" { b = $2 }
        $1 == "falcosecurity_peregrine_kernel_drops_page_fault_total" { p = $2 }
        $1 == "falcosecurity_peregrine_kernel_drops_too_large_total" { t = $2 }
        END { if (e != "") print e, b, p, t }'
}

# falco_counters: the same four figures from the last line Falco's metrics
# wrote (every second): n_evts and n_drops of its kmod, all drops counted
# as buffer drops. A Falco built with MINIMAL_BUILD writes none of libs'
# metrics (no scap.*): then the events are those its userspace took in
# (falco.num_evts) and the drops are unknown ("?"; the session's total is
# what falco -v prints at exit).
falco_counters() {
    tail -n 1 "$BENCH_TMP/falco-metrics.json" 2>/dev/null | awk '{
        e = ""; d = 0
        if (match($0, /"scap.n_evts":[0-9]+/)) e = substr($0, RSTART + 14, RLENGTH - 14)
        if (match($0, /"scap.n_drops":[0-9]+/)) d = substr($0, RSTART + 15, RLENGTH - 15)
        if (e == "" && match($0, /"falco.num_evts":[0-9]+/)) { e = substr($0, RSTART + 17, RLENGTH - 17); d = "?" }
        if (e != "") print e, d, 0, 0 }'
}

# Seconds the consumer is given after a workload to catch up with the rings
# (and, for Falco, to write its next metrics line).
settle=1

# profile_report PHASE WORKLOAD PERF_PID: stops perf and prints the
# consumer's samples by binary and symbol, one PGPERF line each.
profile_report() {
    kill -INT $3; wait $3
    "$PERF" report -i "$BENCH_TMP/perf.data" --stdio --no-children --sort dso,sym \
        --percent-limit 0.4 2>/dev/null | awk -v p="$1 $2" '
        /^# Samples:/ { print "PGPERF " p " samples " $3 }
        /^ *[0-9.]+%/ { print "PGPERF " p " " $0 }'
}

# workloads PHASE [CONSUMER_PID [COUNTERS]]: every workload once; with a
# consumer, its CPU and memory per workload, and with COUNTERS (a function:
# kernel_counters or falco_counters) the kernel's counters over the workload.
workloads() {
    for w in $WORKLOADS; do
        name=${w%%=*}; ops=${w#*=}
        if [ -n "$2" ]; then
            c0=$(cpu_us $2); s0=$(sys_us $2)
            [ -n "$3" ] && k0=$($3)
            thread_cpu $2 > "$BENCH_TMP/threads.before"
        fi
        profile=
        if [ -n "$2" ] && [ -n "$PERF" ]; then
            rm -f "$BENCH_TMP/perf.data"
            "$PERF" record -q -e cpu-clock -F $PERF_HZ -p $2 -o "$BENCH_TMP/perf.data" > /dev/null 2>&1 &
            profile=$!
        fi
        "$PGBENCH" $1 $name $ops "$BENCH_FILE" || echo "PGBENCH-LOG $1 $name failed"
        if [ -n "$2" ]; then
            sleep $settle
            [ -n "$profile" ] && profile_report $1 $name $profile
            line="PGBENCH-CONSUMER $1 $name cpu_us=$(( $(cpu_us $2) - c0 )) sys_us=$(( $(sys_us $2) - s0 )) rss_kb=$(rss_kb $2) $(rss_parts $2)"
            if [ -n "$3" ] && [ -n "$k0" ]; then
                k1=$($3)
                line="$line $(echo $k0 $k1 | awk '{ printf "events=%d drops_buffer=%s drops_pf=%d drops_too_large=%d", $5 - $1, ($2 == "?" || $6 == "?") ? "?" : $6 - $2, $7 - $3, $8 - $4 }')"
            fi
            echo "$line"
            threads_used $2 "PGBENCH-THREADS $1 $name"
        fi
    done
}

run_none() { workloads $1; }

# thread_cpu PID: "TID NAME CPU_US", a line per thread.
thread_cpu() {
    for t in /proc/$1/task/*; do
        awk -v hz=$TICK_HZ -v tid=${t##*/} '{
            name = $0; sub(/^[^(]*\(/, "", name); sub(/\).*/, "", name); gsub(/ /, "_", name)
            sub(/.*\) /, ""); printf "%s %s %d\n", tid, name, ($12 + $13) * 1000000 / hz }' $t/stat 2>/dev/null
    done
}

# idle PHASE PID: the agent's CPU over IDLE_SECONDS with no workload, in
# all and by thread (those that used any).
idle() {
    thread_cpu $2 > "$BENCH_TMP/threads.before"
    c0=$(cpu_us $2); t0=$(now_cs)
    sleep $IDLE_SECONDS
    echo "PGBENCH-IDLE $1 cpu_us=$(( $(cpu_us $2) - c0 )) seconds=$(awk -v a=$t0 -v b=$(now_cs) 'BEGIN { printf "%.2f", (b - a) / 100 }')"
    threads_used $2 "PGBENCH-IDLE-THREADS $1"
}

# threads_used PID PREFIX: the CPU each thread used since threads.before,
# on one line after PREFIX (threads that used none left out).
threads_used() {
    thread_cpu $1 | awk -v prefix="$2" 'NR == FNR { before[$1] = $3; next }
        { used = $3 - before[$1]; if (used > 0) line = line " " $2 "/" $1 "=" used }
        END { print prefix line }' "$BENCH_TMP/threads.before" -
}

run_peregrine() {
    skipped peregrine && return
    insmod "$PEREGRINE_KO" || { skip peregrine "insmod $PEREGRINE_KO failed"; return; }
    "$PGCHECK" drain > "$BENCH_TMP/drain.out" 2>&1 &
    drain=$!
    sleep 1
    start=$(now_cs)
    workloads peregrine $drain
    kill -TERM $drain
    wait $drain
    # drain: records_read=.. n_evts=.. drops_buffer=.. drops_pf=.. ... too_large=..
    ev=$(sed -n 's/^drain: .* n_evts=\([0-9]*\).*/\1/p' "$BENCH_TMP/drain.out")
    dr=$(sed -n 's/^drain: .* drops_buffer=\([0-9]*\) drops_pf=\([0-9]*\).* too_large=\([0-9]*\).*/\1 \2 \3/p' "$BENCH_TMP/drain.out" |
         awk '{ print $1 + $2 + $3 }')
    drained peregrine "$ev" "$dr" $start
    [ -n "$ev" ] || sed 's/^/PGBENCH-LOG peregrine /' "$BENCH_TMP/drain.out"
    rmmod peregrine || skip peregrine "rmmod peregrine failed"
}

run_falco() {
    if [ -n "$FALCO_UNAVAILABLE" ]; then skip falco "$FALCO_UNAVAILABLE"; return; fi
    skipped falco && return
    insmod "$SCAP_KO" || { skip falco "insmod $SCAP_KO failed"; return; }
    "$SCAP_DRAIN" > "$BENCH_TMP/scap.out" 2>&1 &
    drain=$!
    n=0
    until grep -q DRAIN_READY "$BENCH_TMP/scap.out" || [ $n -ge 30 ]; do sleep 1; n=$((n + 1)); done
    sleep 1
    start=$(now_cs)
    workloads falco $drain
    kill -TERM $drain
    wait $drain
    ev=$(sed -n 's/^DRAIN_STATS events=\([0-9]*\) drops_buffer=\([0-9]*\).*/\1/p' "$BENCH_TMP/scap.out")
    dr=$(sed -n 's/^DRAIN_STATS events=\([0-9]*\) drops_buffer=\([0-9]*\).*/\2/p' "$BENCH_TMP/scap.out")
    drained falco "$ev" "$dr" $start
    [ -n "$ev" ] || sed 's/^/PGBENCH-LOG falco /' "$BENCH_TMP/scap.out"
    rmmod scap || skip falco "rmmod scap failed"
}

# run_live PHASE [PEREGRINE-ARGS...]; live_rules: the rules file.
live_rules=$RULES
run_live() {
    phase=$1; shift
    if ! command -v "$PEREGRINE" > /dev/null || [ ! -f "$live_rules" ]; then
        skip $phase "no peregrine binary or no rules file ($PEREGRINE, $live_rules)"
        return
    fi
    skipped $phase && return
    insmod "$PEREGRINE_KO" || { skip $phase "insmod $PEREGRINE_KO failed"; return; }
    t0=$(now_cs)
    "$PEREGRINE" "$@" -r "$live_rules" -o stdout_output.enabled=false \
        -o file_output.enabled=true -o file_output.filename="$BENCH_TMP/alerts.json" -o json_output=true \
        -o webserver.enabled=true -o webserver.listen_address=127.0.0.1 \
        -o webserver.listen_port=$METRICS_PORT > "$BENCH_TMP/live.out" 2>&1 &
    live=$!
    # Ready once /metrics shows the module's counters (capture has started).
    n=0
    until [ -n "$(kernel_counters)" ] || [ $n -ge 120 ]; do
        kill -0 $live 2>/dev/null || break
        sleep 1; n=$((n + 1))
    done
    if [ -n "$(kernel_counters)" ]; then
        echo "PGBENCH-LOG $phase started in $(( $(now_cs) - t0 )) cs"
        idle $phase $live
        start=$(now_cs)
        workloads $phase $live kernel_counters
        kill -TERM $live
        n=0
        while kill -0 $live 2>/dev/null && [ $n -lt 120 ]; do sleep 1; n=$((n + 1)); done
        wait $live
        # Kernel events: W written, D dropped (...)
        ev=$(sed -n 's/^Kernel events: \([0-9]*\) written, \([0-9]*\) dropped.*/\1/p' "$BENCH_TMP/live.out")
        dr=$(sed -n 's/^Kernel events: \([0-9]*\) written, \([0-9]*\) dropped.*/\2/p' "$BENCH_TMP/live.out")
        drained $phase "$ev" "$dr" $start
        grep -E '^Kernel events|capturing' "$BENCH_TMP/live.out" | sed "s/^/PGBENCH-LOG $phase /"
    else
        skip $phase "peregrine did not start capturing: $(tail -n 3 "$BENCH_TMP/live.out" | tr '\n' ' ')"
        kill -9 $live 2>/dev/null
    fi
    rmmod peregrine || skip $phase "rmmod peregrine failed"
}

# Falco's userspace on its own kmod, with Falco's rules (/falco, made by
# scripts/lab/falco-agent.sh).
run_falco_agent() {
    phase=falco-agent
    if [ ! -x /falco/bin/falco ] || [ ! -f /falco/falco.ko ]; then
        skip $phase "$(cat /falco-agent-unavailable 2>/dev/null || echo 'no Falco agent in this guest')"
        return
    fi
    skipped $phase && return
    insmod /falco/falco.ko || { skip $phase "insmod /falco/falco.ko failed"; return; }
    rm -f "$BENCH_TMP/falco-metrics.json" "$BENCH_TMP/falco-alerts.json"
    t0=$(now_cs)
    # -v: at exit it prints its kmod's totals (Driver Events, Driver Drops).
    /falco/bin/falco -v -c /etc/falco/falco.yaml > "$BENCH_TMP/falco.out" 2>&1 &
    agent=$!
    # Ready once its metrics show the kmod's counters (capture has started).
    n=0
    until [ -n "$(falco_counters)" ] || [ $n -ge 180 ]; do
        kill -0 $agent 2>/dev/null || break
        sleep 1; n=$((n + 1))
    done
    if [ -n "$(falco_counters)" ]; then
        echo "PGBENCH-LOG $phase started in $(( $(now_cs) - t0 )) cs"
        idle $phase $agent
        start=$(now_cs)
        settle=2
        workloads $phase $agent falco_counters
        settle=1
        set -- $(falco_counters)
        kill -TERM $agent
        n=0
        while kill -0 $agent 2>/dev/null && [ $n -lt 120 ]; do sleep 1; n=$((n + 1)); done
        wait $agent
        # The kmod's own totals for the session, when Falco printed them.
        if grep -q '^Driver Drops:' "$BENCH_TMP/falco.out"; then
            set -- $(sed -n 's/^Driver Events:\([0-9]*\).*/\1/p' "$BENCH_TMP/falco.out") \
                   $(sed -n 's/^Driver Drops:\([0-9]*\).*/\1/p' "$BENCH_TMP/falco.out")
        fi
        drained $phase "$1" "$2" $start
    else
        skip $phase "falco did not start capturing: $(tail -n 3 "$BENCH_TMP/falco.out" | tr '\n' ' ')"
        kill -9 $agent 2>/dev/null
    fi
    rmmod falco || skip $phase "rmmod falco failed"
}

# peregrine with the rules file Falco's agent runs.
run_peregrine_agent() {
    if [ ! -f /falco/falco_rules.yaml ]; then
        skip peregrine-agent "$(cat /falco-agent-unavailable 2>/dev/null || echo 'no Falco rules file in this guest')"
        return
    fi
    live_rules=/falco/falco_rules.yaml
    run_live peregrine-agent
    live_rules=$RULES
}

# wanted PHASE: whether pgbench_phases names it.
wanted() { case $PHASES in *,$1,*) return 0 ;; esac; return 1; }

r=1
while [ $r -le $ROUNDS ]; do
    echo "PGBENCH-LOG round $r"
    run_none none
    wanted peregrine && run_peregrine
    wanted falco && run_falco
    wanted peregrine-live && run_live peregrine-live
    wanted peregrine-live-all && run_live peregrine-live-all -A
    wanted falco-agent && run_falco_agent
    wanted peregrine-agent && run_peregrine_agent
    r=$((r + 1))
done
run_none none-after
echo "PGTEST-RESULT 0 passed, 0 failed"
