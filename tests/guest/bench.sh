#!/bin/sh
# Overhead of peregrine.ko in the guest (scripts/kernel-lab bench): the
# same loops without the module, while capturing everything with a
# consumer draining every CPU, and after unloading.
echo "PGTEST-KERNEL $(uname -r)"
N=${pgbench_n:-200000}
echo hostname > /bench-file
for i in 1 2 3; do pgbench $N none; done
insmod /peregrine.ko
pgcheck drain > /tmp/drain.out &
DRAIN=$!
sleep 1
for i in 1 2 3; do pgbench $N capturing; done
kill -TERM $DRAIN
wait $DRAIN
sed 's/^/PGBENCH-DRAIN /' /tmp/drain.out
rmmod peregrine
for i in 1 2 3; do pgbench $N unloaded; done
echo "PGTEST-RESULT 0 passed, 0 failed"
