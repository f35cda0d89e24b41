#!/bin/sh
# Overhead per syscall in the guest (scripts/kernel-lab bench), every driver
# in ONE boot so that the emulator's speed is the same for all of them:
#   none            no driver loaded
#   peregrine       peregrine.ko capturing everything, pgcheck draining every CPU
#   falco           Falco's scap.ko (Debian's falcosecurity-scap-dkms), every
#                   syscall and tracepoint enabled, scap-drain keeping rings empty
#   peregrine-live  peregrine.ko + the real `peregrine` with the default rules,
#                   the module writing only the syscalls they and the state need
#   peregrine-live-all  the same with -A: every syscall written and evaluated
#   none-after      no driver, at the very end: shows the drift of the boot
# The phases are interleaved: every round runs each of them once, loading
# and unloading its module, so the emulator's drift over the boot (large:
# later runs are often faster) and the other load of the host spread over
# all phases alike. Each run prints
# "PGBENCH PHASE getppid_ns=.. open_read_close_ns=..", each driver run
# "PGBENCH-DRAIN PHASE events=.. drops=.. seconds=..". A missing piece
# prints "PGBENCH-SKIP PHASE reason" once. Never a test verdict.
echo "PGTEST-KERNEL $(uname -r)"
N=${pgbench_n:-1000000}         # getppid iterations per run
ORC=${pgbench_orc:-100000}      # open+read+close iterations per run
ROUNDS=${pgbench_rounds:-7}
echo hostname > /bench-file
mkdir -p /etc/peregrine

skipped() { grep -q "^$1 " /tmp/skips 2>/dev/null && return 0; return 1; }
skip() {
    skipped $1 && return
    echo "$1 $2" >> /tmp/skips
    echo "PGBENCH-SKIP $1 $2"
}

# Centiseconds since boot: busybox date has no sub-second format.
now_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }

# drained PHASE EVENTS DROPS START_CS: one line for the host's table.
drained() {
    echo "PGBENCH-DRAIN $1 events=${2:-?} drops=${3:-?} seconds=$(awk -v a=$4 -v b=$(now_cs) 'BEGIN { printf "%.2f", (b - a) / 100 }')"
}

run_none() { pgbench $N $1 $ORC; }

run_peregrine() {
    insmod /peregrine.ko || { skip peregrine "insmod peregrine.ko failed"; return; }
    pgcheck drain > /tmp/drain.out 2>&1 &
    drain=$!
    sleep 1
    start=$(now_cs)
    pgbench $N peregrine $ORC
    kill -TERM $drain
    wait $drain
    # drain: records_read=.. n_evts=.. drops_buffer=.. drops_pf=.. ... too_large=..
    ev=$(sed -n 's/^drain: .* n_evts=\([0-9]*\).*/\1/p' /tmp/drain.out)
    dr=$(sed -n 's/^drain: .* drops_buffer=\([0-9]*\) drops_pf=\([0-9]*\).* too_large=\([0-9]*\).*/\1 \2 \3/p' /tmp/drain.out |
         awk '{ print $1 + $2 + $3 }')
    drained peregrine "$ev" "$dr" $start
    [ -n "$ev" ] || sed 's/^/PGBENCH-LOG peregrine /' /tmp/drain.out
    rmmod peregrine || skip peregrine "rmmod peregrine failed"
}

run_falco() {
    if [ -f /falco-unavailable ]; then skip falco "$(cat /falco-unavailable)"; return; fi
    insmod /scap.ko || { skip falco "insmod scap.ko failed"; return; }
    scap-drain > /tmp/scap.out 2>&1 &
    drain=$!
    n=0
    until grep -q DRAIN_READY /tmp/scap.out || [ $n -ge 30 ]; do sleep 1; n=$((n + 1)); done
    sleep 1
    start=$(now_cs)
    pgbench $N falco $ORC
    kill -TERM $drain
    wait $drain
    ev=$(sed -n 's/^DRAIN_STATS events=\([0-9]*\) drops_buffer=\([0-9]*\).*/\1/p' /tmp/scap.out)
    dr=$(sed -n 's/^DRAIN_STATS events=\([0-9]*\) drops_buffer=\([0-9]*\).*/\2/p' /tmp/scap.out)
    drained falco "$ev" "$dr" $start
    [ -n "$ev" ] || sed 's/^/PGBENCH-LOG falco /' /tmp/scap.out
    rmmod scap || skip falco "rmmod scap failed"
}

# run_live PHASE [PEREGRINE-ARGS...]
run_live() {
    phase=$1; shift
    if [ ! -x /bin/peregrine ] || [ ! -f /etc/peregrine/peregrine_rules.yaml ]; then
        skip $phase "no static peregrine in the guest (its build failed on the host)"
        return
    fi
    skipped $phase && return
    insmod /peregrine.ko || { skip $phase "insmod peregrine.ko failed"; return; }
    t0=$(now_cs)
    peregrine "$@" -r /etc/peregrine/peregrine_rules.yaml -o stdout_output.enabled=false \
        -o file_output.enabled=true -o file_output.filename=/tmp/bench-alerts.json \
        > /tmp/live.out 2>&1 &
    live=$!
    # Ready once it holds the devices (capture starts right after the open).
    n=0
    until ls -l /proc/$live/fd 2>/dev/null | grep -q /dev/peregrine0 || [ $n -ge 120 ]; do
        kill -0 $live 2>/dev/null || break
        sleep 1; n=$((n + 1))
    done
    if ls -l /proc/$live/fd 2>/dev/null | grep -q /dev/peregrine0; then
        sleep 2
        echo "PGBENCH-LOG $phase started in $(( $(now_cs) - t0 )) cs"
        start=$(now_cs)
        pgbench $N $phase $ORC
        kill -TERM $live
        n=0
        while kill -0 $live 2>/dev/null && [ $n -lt 120 ]; do sleep 1; n=$((n + 1)); done
        wait $live
        # Kernel events: W written, D dropped (...)
        ev=$(sed -n 's/^Kernel events: \([0-9]*\) written, \([0-9]*\) dropped.*/\1/p' /tmp/live.out)
        dr=$(sed -n 's/^Kernel events: \([0-9]*\) written, \([0-9]*\) dropped.*/\2/p' /tmp/live.out)
        drained $phase "$ev" "$dr" $start
        grep '^Kernel events' /tmp/live.out | sed 's/^/PGBENCH-LOG $phase /'
    else
        skip $phase "the peregrine binary did not open /dev/peregrine0: $(tail -n 3 /tmp/live.out | tr '\n' ' ')"
        kill -9 $live 2>/dev/null
    fi
    rmmod peregrine || skip $phase "rmmod peregrine failed"
}

r=1
while [ $r -le $ROUNDS ]; do
    echo "PGBENCH-LOG round $r"
    run_none none
    run_peregrine
    run_falco
    run_live peregrine-live
    run_live peregrine-live-all -A
    r=$((r + 1))
done
run_none none-after
run_none none-after
echo "PGTEST-RESULT 0 passed, 0 failed"
