# Sourced by /tests/run-tests.sh: the insmod workflow through
# `peregrine driver load|status|unload`, then `peregrine capture` records
# from the module into a .scap file, which goes to the host on the console
# (base64 between PGCAPTURE markers) so that the host can have sysdig read
# it. Adds to run-tests.sh's pass/fail counters.
capture_main() {
    [ -x /bin/peregrine ] || { echo "PGTEST-SKIP peregrine capture: no static peregrine in this guest"; return; }
    check "driver load refuses a buffer size that is no power of two" \
        sh -c "! peregrine driver load --module /peregrine.ko --buffer-size 3000000 2>&1 | grep -q loaded"
    check "driver load" sh -c "peregrine driver load --module /peregrine.ko --buffer-size 4194304 > /tmp/driver.out 2>&1"
    sed 's/^/    /' /tmp/driver.out
    peregrine driver status > /tmp/status.out 2>&1
    sed 's/^/    /' /tmp/status.out
    check "driver status: loaded, API 2.1, 4 MiB rings on every CPU" sh -c \
        "grep -q 'module: loaded' /tmp/status.out && grep -q 'module API version: 2.1' /tmp/status.out &&
         grep -q 'rings: $(grep -c ^processor /proc/cpuinfo) (bytes per CPU: 4194304)' /tmp/status.out"
    # Its own events are left out by the filter, so the file holds what the
    # marker workload did plus the state-building events around it.
    # Stopped with SIGINT once the workload is done (-M only caps it): a
    # fixed duration could end before the workload under a loaded host.
    peregrine capture -w /tmp/live.scap -M 60 'not proc.name=peregrine' > /tmp/capture.log 2>&1 &
    cap=$!
    # Under TCG its start can take more than a second: wait until it holds
    # the devices (it reads /proc, then starts), or the marker's exec may
    # fall before the capture and its open be shown under the parent's name.
    n=0
    until ls -l /proc/$cap/fd 2>/dev/null | grep -q /dev/peregrine0 || [ $n -ge 60 ]; do sleep 1; n=$((n + 1)); done
    sleep 1
    /bin/mkdir -p /tmp/pgcap && echo marker > /tmp/pgcap/marker-file
    /bin/cat /tmp/pgcap/marker-file > /dev/null
    sleep 1
    kill -INT $cap
    wait $cap
    check "peregrine capture wrote its file" grep -q "events written to /tmp/live.scap" /tmp/capture.log
    sed 's/^/    /' /tmp/capture.log
    echo "PGCAPTURE-WRITTEN $(sed -n 's/.*: \([0-9]*\) of [0-9]* events written to.*/\1/p' /tmp/capture.log)"
    echo "PGCAPTURE-BEGIN"
    base64 /tmp/live.scap
    echo "PGCAPTURE-END"
    check "driver unload" peregrine driver unload
    check "driver status after unload" sh -c "peregrine driver status | grep -q 'module: not loaded'"
}
capture_main
