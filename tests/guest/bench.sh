#!/bin/sh
# Overhead per syscall in the guest (scripts/kernel-lab bench), every driver
# in ONE boot so that the emulator's speed is the same for all of them:
#   none            no driver loaded
#   peregrine       peregrine.ko capturing everything, pgcheck draining every CPU
#   peregrine-live  peregrine.ko + the real `peregrine` with the default rules
#   falco           Falco's scap.ko (Debian's falcosecurity-scap-dkms), every
#                   syscall and tracepoint enabled, scap-drain keeping rings empty
#   none-after      no driver again: shows the drift of the boot
# Each phase prints "PGBENCH PHASE getppid_ns=.. open_read_close_ns=.." per run
# and, for the drivers, "PGBENCH-DRAIN PHASE events=.. drops=.. seconds=..".
# Missing pieces print "PGBENCH-SKIP PHASE reason". Never a test verdict.
echo "PGTEST-KERNEL $(uname -r)"
N=${pgbench_n:-200000}
RUNS=${pgbench_runs:-5}
echo hostname > /bench-file

runs() {
    i=0
    while [ $i -lt $RUNS ]; do pgbench $N $1; i=$((i + 1)); done
}

# Centiseconds since boot: busybox date has no sub-second format.
now_cs() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }

# drained PHASE EVENTS DROPS START_CS: one line for the host's table.
drained() {
    end=$(now_cs)
    echo "PGBENCH-DRAIN $1 events=${2:-?} drops=${3:-?} seconds=$(awk -v a=$4 -v b=$end 'BEGIN { printf "%.2f", (b - a) / 100 }')"
}

runs none

# --- peregrine.ko, everything captured, a C consumer ------------------------
if insmod /peregrine.ko; then
    pgcheck drain > /tmp/drain.out 2>&1 &
    DRAIN=$!
    sleep 1
    start=$(now_cs)
    runs peregrine
    kill -TERM $DRAIN
    wait $DRAIN
    # drain: records_read=.. n_evts=.. drops_buffer=.. drops_pf=.. ... too_large=..
    ev=$(sed -n 's/^drain: .* n_evts=\([0-9]*\).*/\1/p' /tmp/drain.out)
    dr=$(sed -n 's/^drain: .* drops_buffer=\([0-9]*\) drops_pf=\([0-9]*\).* too_large=\([0-9]*\).*/\1 \2 \3/p' /tmp/drain.out |
         awk '{ print $1 + $2 + $3 }')
    drained peregrine "$ev" "$dr" $start
    sed 's/^/PGBENCH-LOG peregrine /' /tmp/drain.out

    # --- the same module read by the Rust peregrine with the default rules --
    if [ -x /bin/peregrine ] && [ -f /etc/peregrine/peregrine_rules.yaml ]; then
        peregrine -r /etc/peregrine/peregrine_rules.yaml -o stdout_output.enabled=false \
            -o file_output.enabled=true -o file_output.filename=/tmp/bench-alerts.json \
            > /tmp/live.out 2>&1 &
        LIVE=$!
        # Ready once it holds the devices (capture starts right after the
        # open); then a second for the rules' interest set to settle.
        n=0
        until ls -l /proc/$LIVE/fd 2>/dev/null | grep -q /dev/peregrine0 || [ $n -ge 120 ]; do
            kill -0 $LIVE 2>/dev/null || break
            sleep 1; n=$((n + 1))
        done
        if ls -l /proc/$LIVE/fd 2>/dev/null | grep -q /dev/peregrine0; then
            sleep 2
            start=$(now_cs)
            runs peregrine-live
            kill -TERM $LIVE
            n=0
            while kill -0 $LIVE 2>/dev/null && [ $n -lt 120 ]; do sleep 1; n=$((n + 1)); done
            wait $LIVE
            # Kernel events: W written, D dropped (...)
            ev=$(sed -n 's/^Kernel events: \([0-9]*\) written, \([0-9]*\) dropped.*/\1/p' /tmp/live.out)
            dr=$(sed -n 's/^Kernel events: \([0-9]*\) written, \([0-9]*\) dropped.*/\2/p' /tmp/live.out)
            drained peregrine-live "$ev" "$dr" $start
            grep '^Kernel events' /tmp/live.out | sed 's/^/PGBENCH-LOG peregrine-live /'
        else
            echo "PGBENCH-SKIP peregrine-live the peregrine binary did not open /dev/peregrine0: $(tail -n 3 /tmp/live.out | tr '\n' ' ')"
            kill -9 $LIVE 2>/dev/null
        fi
    else
        echo "PGBENCH-SKIP peregrine-live no static peregrine in the guest (its build failed on the host)"
    fi
    rmmod peregrine || echo "PGBENCH-SKIP none-after rmmod peregrine failed"
else
    echo "PGBENCH-SKIP peregrine insmod peregrine.ko failed"
fi

# --- Falco's own kernel module ------------------------------------------------
if [ -f /falco-unavailable ]; then
    echo "PGBENCH-SKIP falco $(cat /falco-unavailable)"
elif insmod /scap.ko; then
    scap-drain > /tmp/scap.out 2>&1 &
    DRAIN=$!
    n=0
    until grep -q DRAIN_READY /tmp/scap.out || [ $n -ge 30 ]; do sleep 1; n=$((n + 1)); done
    sleep 1
    start=$(now_cs)
    runs falco
    kill -TERM $DRAIN
    wait $DRAIN
    ev=$(sed -n 's/^DRAIN_STATS events=\([0-9]*\) drops_buffer=\([0-9]*\).*/\1/p' /tmp/scap.out)
    dr=$(sed -n 's/^DRAIN_STATS events=\([0-9]*\) drops_buffer=\([0-9]*\).*/\2/p' /tmp/scap.out)
    drained falco "$ev" "$dr" $start
    sed 's/^/PGBENCH-LOG falco /' /tmp/scap.out
    rmmod scap || echo "PGBENCH-SKIP none-after rmmod scap failed"
else
    echo "PGBENCH-SKIP falco insmod scap.ko failed"
fi

runs none-after
echo "PGTEST-RESULT 0 passed, 0 failed"
