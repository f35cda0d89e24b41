#!/bin/sh
# The guest tests of peregrine.ko: the one list of checks, run by /init
# inside a QEMU guest booted by scripts/kernel-lab test. Each check prints
# "PGTEST ok NAME" or "PGTEST FAIL NAME" (plus what went wrong); the last
# line is "PGTEST-RESULT N passed, M failed", which the host reads.
MOD=/peregrine.ko
W=/tmp/w
PORT=7777
EV=/tmp/events.bin
pass=0
fail=0

check() {
    name=$1; shift
    if "$@" > /tmp/check.out 2>&1; then
        pass=$((pass + 1)); echo "PGTEST ok $name"
    else
        fail=$((fail + 1)); echo "PGTEST FAIL $name"
        sed 's/^/    /' /tmp/check.out | head -n 20
    fi
}
# An event must be in the capture: pgcheck find with its predicates.
event() { name=$1; shift; check "event $name" pgcheck find $EV "$@"; }

echo "PGTEST-KERNEL $(uname -r)"
ncpu=$(grep -c ^processor /proc/cpuinfo)

check "insmod" insmod $MOD
check "one device per cpu ($ncpu)" test -c /dev/peregrine$((ncpu - 1))
check "api version" pgcheck version
check "exclusive open" pgcheck busy
# Since ABI 2.1: a reader blocked in poll() wakes once the bytes it asked
# for (wake_bytes) wait in a ring, and never while it asks for none.
check "poll wakes at wake_bytes, not before, never with 0" sh -c "pgcheck wake > /tmp/wake.out"
sed 's/^/    /' /tmp/wake.out

mkdir -p $W
check "capture workload" sh -c "pgcheck capture $EV -- /bin/pgwork $W $PORT > /tmp/capture.out"
cat /tmp/capture.out
check "no buffer drops in workload capture" grep -q "drops_buffer=0 .*preemptions=0 .*too_large=0" /tmp/capture.out
# pgwork passes paths the probes cannot read (a never-touched page, a
# kernel address): those parameters are empty, the events are written and
# each unreadable parameter is counted.
check "parameter faults counted" grep -q "drops_pf=0 .*faults=[1-9]" /tmp/capture.out
read PARENT CHILD < $W/pids
INO=$(stat -c %i $W/file)
echo "workload parent=$PARENT child=$CHILD file_ino=$INO"

# Files. Flags are scap's: O_WRONLY=2 O_CREAT=4 O_EXCL=32 F_CREATED=16384.
event "mkdir_x"     type=277 nparams=3 tid=$PARENT p0:s64=0 p1:str=$W/sub p2:u32=488
event "rmdir_x"     type=279 nparams=2 tid=$PARENT p0:s64=0 p1:str=$W/sub
event "openat_e"    type=306 nparams=4 tid=$PARENT p0:s64=-100 p1:str=$W/file p2:u32=38 p3:u32=416
event "openat_x"    type=307 nparams=7 tid=$PARENT p0:s64ge=3 p1:s64=-100 p2:str=$W/file p3:u32=16422 p4:u32=416 p6:u64=$INO
event "write_x"     type=9 nparams=4 tid=$PARENT p0:s64=5 p1:bytes=hello p3:u32=5
event "close_x"     type=5 nparams=2 tid=$PARENT p0:s64=0 p1:s64ge=3
event "open_e"      type=2 nparams=3 tid=$PARENT p0:str=$W/file p1:u32=1 p2:u32=0
event "open_x"      type=3 nparams=6 tid=$PARENT p0:s64ge=3 p1:str=$W/file p2:u32=1 p5:u64=$INO
event "read_x"      type=7 nparams=4 tid=$PARENT p0:s64=5 p1:bytes=hello p3:u32=64
event "chmod_x"     type=315 nparams=3 tid=$PARENT p0:s64=0 p1:str=$W/file p2:u32=384
event "symlink_x"   type=179 nparams=3 tid=$PARENT p0:s64=0 p1:str=$W/file p2:str=$W/link
event "rename_x"    type=175 nparams=3 tid=$PARENT p0:s64=0 p1:str=$W/link p2:str=$W/link2
event "unlink_x"    type=301 nparams=2 tid=$PARENT p0:s64=0 p1:str=$W/link2
event "openat_x untouched page" type=307 nparams=7 tid=$PARENT p0:s64=-2 p2:str=
event "openat_e untouched page, name empty" type=306 nparams=4 tid=$PARENT p0:s64=-100 p1:len=0
event "chown_x"     type=379 nparams=4 tid=$PARENT p0:s64=0 p1:str=$W/file p2:u32=0 p3:u32=0
# fchownat's flags as Falco's driver writes them: AT_SYMLINK_NOFOLLOW dropped.
event "fchownat_x"  type=385 nparams=6 tid=$PARENT p0:s64=0 p1:s64=-100 p2:str=$W/file p5:u32=0
# Identity, namespaces (CLONE_NEWUTS -> scap 1<<7 = 128), mounts, modules, signals.
event "setuid_x"    type=199 nparams=2 tid=$PARENT p0:s64=0 p1:u32=0
event "setgid_x"    type=201 nparams=2 tid=$PARENT p0:s64=0 p1:u32=0
event "setresuid_x" type=193 nparams=4 tid=$PARENT p0:s64=0 p1:u32=0 p2:u32=0 p3:u32=0
event "unshare_x"   type=285 nparams=2 tid=$PARENT p0:s64=0 p1:u32=128
event "setns_x"     type=241 nparams=3 tid=$PARENT p0:s64=0 p1:s64ge=3 p2:u32=128
event "mount_x"     type=257 nparams=5 tid=$PARENT p0:s64=0 p1:str=pgtmp p2:str=$W/sub p3:str=tmpfs p4:u32=6
event "umount2_x"   type=391 nparams=3 tid=$PARENT p0:s64=0 p1:str=$W/sub p2:u32=2
event "finit_module_x" type=413 nparams=4 tid=$PARENT p0:s64=-9 p1:s64=-1 p2:str=pg.arg=1 p3:u32=0
event "kill_x"      type=129 nparams=3 tid=$PARENT p0:s64=0 p1:s64=$PARENT p2:u8=0
# Network: AF_INET=2, SOCK_STREAM=1, SOCK_CLOEXEC -> scap O_CLOEXEC=4096.
event "socket_x"    type=19 nparams=5 tid=$PARENT p0:s64ge=3 p1:u32=2 p2:u32=1 p3:u32=0 p4:u32=0
event "socket_x cloexec" type=19 nparams=5 tid=$PARENT p1:u32=2 p2:u32=524289 p4:u32=4096
event "bind_x"      type=21 nparams=3 tid=$PARENT p0:s64=0 p1:inet=127.0.0.1:$PORT
event "listen_x"    type=25 nparams=3 tid=$PARENT p0:s64=0 p2:u32=4
event "connect_e"   type=22 nparams=2 tid=$PARENT p1:inet=127.0.0.1:$PORT
event "connect_x"   type=23 nparams=4 tid=$PARENT p0:s64=0 p1:tupledst=127.0.0.1:$PORT p3:inet=127.0.0.1:$PORT
event "accept4_x"   type=389 nparams=6 tid=$PARENT p0:s64ge=3 p1:tupledst=127.0.0.1:$PORT p5:u32=0
# A unix socket: AF_UNIX=1; the sockaddr is the family then the path.
event "socket_x unix" type=19 nparams=5 tid=$PARENT p0:s64ge=3 p1:u32=1 p2:u32=1
event "connect_x unix" type=23 nparams=4 tid=$PARENT p0:s64=0 p1:unixpath=$W/sock p3:len=$((1 + ${#W} + 5 + 1))
# Processes.
event "execve_x failed" type=293 nparams=31 tid=$PARENT p0:s64=-2 p1:str=echo p2:str=pg-exec-marker p15:str=PG_MARK=1 p30:str=/nonexistent/pg-missing
event "clone_x parent" type=223 nparams=21 tid=$PARENT p0:s64=$CHILD p3:s64=$PARENT
event "clone_x child"  type=223 nparams=21 tid=$CHILD p0:s64=0 p3:s64=$CHILD p5:s64=$PARENT
event "clone_x cgroups" type=223 nparams=21 tid=$CHILD p14:contains=memory=/ p14:contains=pids=/ p14:contains=unified=/
event "dup2_x"      type=363 nparams=3 tid=$CHILD p0:s64=1 p2:s64=1
event "execve_x"    type=293 nparams=31 tid=$CHILD p0:s64=0 p1:str=echo p2:str=pg-exec-marker p3:s64=$CHILD p4:s64=$CHILD p5:s64=$PARENT p13:str=echo p14:contains=cpu=/ p15:str=PG_MARK=1 p27:str=/bin/busybox p30:str=/bin/echo
# Exe flags: root runs root's 0755 busybox (writable by its owner), then a
# program from a memfd (writable, and from memfd).
event "execve_x flags writable" type=293 tid=$CHILD p0:s64=0 p19:u32=1
if [ -x /bin/pgtrigger ]; then
    check "capture a program run from a memfd" sh -c "pgcheck capture $EV.memfd -- /bin/pgtrigger memfd-exec > /tmp/capture-memfd.out"
    # A successful execveat reads as execve (see pg_fill_sched_exec); its file is the fd.
    check "execve_x flags writable and from memfd" pgcheck find $EV.memfd type=293 p0:s64=0 p19:u32=5 p30:str=/dev/fd/4
else
    echo "PGTEST-SKIP execve_x from memfd: no pgtrigger in this guest"
fi
event "procexit"    type=186 nparams=5 tid=$CHILD p0:s64=0 p1:s64=0 p2:u8=0
# ptrace: requests are scap's codes (ATTACH=11, PEEKDATA=3, DETACH=12), addr
# and data are PT_DYN (index 0 + u64, index 1 + signal); a refused call has
# zeros there. The peeked word is pgwork's marker, read back from *data.
read TRACEE MARKADDR MARKER < $W/ptrace
echo "workload tracee=$TRACEE marker_addr=$MARKADDR marker=$MARKER"
event "ptrace_x attach refused" type=169 nparams=5 tid=$PARENT p0:s64=-1 p1:dynu64=0 p2:dynu64=0 p3:u16=11 p4:s64=$PARENT
event "ptrace_x attach" type=169 nparams=5 tid=$PARENT p0:s64=0 p1:dynu64=0 p2:dynu64=0 p3:u16=11 p4:s64=$TRACEE
event "ptrace_x peekdata" type=169 nparams=5 tid=$PARENT p0:s64=0 p1:dynu64=$MARKADDR p2:dynu64=$MARKER p3:u16=3 p4:s64=$TRACEE
event "ptrace_x detach" type=169 nparams=5 tid=$PARENT p0:s64=0 p1:dynu64=0 p2:dynsig=18 p3:u16=12 p4:s64=$TRACEE
check "ptrace not generic" sh -c "! pgcheck find $EV type=1 p1:u16=101"
# Since ABI 2.0. Working directory: chdir, fchdir, getcwd; clone and execve carry cwd.
event "chdir_x"     type=95 nparams=2 tid=$PARENT p0:s64=0 p1:str=/
event "fchdir_x"    type=97 nparams=2 tid=$PARENT p0:s64=0 p1:s64ge=3
event "getcwd_x"    type=93 nparams=2 tid=$PARENT p0:s64ge=1 p1:str=$W
event "clone_x child cwd"  type=223 tid=$CHILD p0:s64=0 p6:str=$W
event "execve_x child cwd" type=293 tid=$CHILD p0:s64=0 p6:str=$W
# Descriptors, memory, processes (MFD_CLOEXEC=1, O_CLOEXEC -> scap 4096,
# F_DUPFD_CLOEXEC -> scap 26, PROT_READ|WRITE -> 3, MAP_PRIVATE|ANONYMOUS -> 10).
event "memfd_create_x" type=405 nparams=3 tid=$PARENT p0:s64ge=3 p1:str=pgmemfd p2:u32=1
event "bpf_x"       type=369 nparams=2 tid=$PARENT p1:u32=0
event "userfaultfd_x" type=321 nparams=2 tid=$PARENT p1:u32=524288
event "prctl_x"     type=401 nparams=4 tid=$PARENT p0:s64=0 p1:u32=15 p2:str=pgname p3:s64=0
event "fcntl_x"     type=151 nparams=4 tid=$PARENT p0:s64ge=20 p2:u8=26 p3:u64=20
event "pipe2_x"     type=393 nparams=5 tid=$PARENT p0:s64=0 p1:s64ge=3 p2:s64ge=3 p4:u32=4096
event "socketpair_x" type=43 nparams=8 tid=$PARENT p0:s64=0 p1:s64ge=3 p5:u32=1 p6:u32=1
event "mmap_x"      type=161 nparams=10 tid=$PARENT p5:u64=8192 p6:u32=3 p7:u32=10 p8:s64=-1
event "mprotect_x"  type=329 nparams=4 tid=$PARENT p0:s64=0 p2:u64=4096 p3:u32=1
event "munmap_x"    type=165 nparams=6 tid=$PARENT p0:s64=0 p5:u64=8192
event "io_uring_setup_x" type=339 nparams=8 tid=$PARENT p1:u32=4
event "process_vm_readv_x" type=421 nparams=3 tid=$PARENT p0:s64=4 p1:s64=$PARENT p2:bytes=pgvm
event "pidfd_open_x" type=409 nparams=3 tid=$PARENT p0:s64ge=3 p1:s64=$PARENT p2:u32=0
event "pidfd_getfd_x" type=407 nparams=4 tid=$PARENT p0:s64ge=3 p3:u32=0
# RLIMIT_NOFILE = 7; EFD_CLOEXEC -> scap 4096; AT_SYMLINK_NOFOLLOW = 256 in both.
event "prlimit_x"   type=145 nparams=7 tid=$PARENT p0:s64=0 p3:s64ge=1 p5:s64=0 p6:u8=7
event "getresuid_x" type=211 nparams=4 tid=$PARENT p0:s64=0 p1:u32=0 p2:u32=0 p3:u32=0
event "eventfd2_x"  type=397 nparams=3 tid=$PARENT p0:s64ge=3 p1:u16=4096 p2:u64=7
event "newfstatat_x" type=419 nparams=4 tid=$PARENT p0:s64=0 p1:s64=-100 p2:str=$W p3:u32=256
# UDP: every send and receive carries the datagram's tuple (the receiver's
# address is the destination either way).
UDP=127.0.0.1:$((PORT + 10))
event "sendto_x udp"   type=31 nparams=5 tid=$PARENT p0:s64=10 p1:bytes=udp-sendto p3:u32=10 p4:tupledst=$UDP
event "recvfrom_x udp" type=35 nparams=5 tid=$PARENT p0:s64=10 p1:bytes=udp-sendto p2:tupledst=$UDP
event "sendmsg_x udp"  type=49 nparams=5 tid=$PARENT p0:s64=11 p1:bytes=udp-sendmsg p3:u32=11 p4:tupledst=$UDP
event "recvmsg_x udp"  type=53 nparams=6 tid=$PARENT p0:s64=11 p1:u32=11 p2:bytes=udp-sendmsg p3:tupledst=$UDP
event "sendmmsg_x udp 1" type=51 nparams=5 tid=$PARENT p0:s64=10 p3:bytes=udp-mmsg-1 p4:tupledst=$UDP
event "sendmmsg_x udp 2" type=51 nparams=5 tid=$PARENT p0:s64=10 p3:bytes=udp-mmsg-2 p4:tupledst=$UDP
# Without msg_name a recvmmsg has no tuple (Falco's driver leaves it empty).
event "recvmmsg_x udp 2" type=55 nparams=6 tid=$PARENT p0:s64=10 p3:bytes=udp-mmsg-2 p4:len=0
# Unreadable arguments: the event is there, the parameter empty (EFAULT = -14).
event "openat_x kernel address" type=307 nparams=7 tid=$PARENT p0:s64=-14 p2:len=0
event "openat_e kernel address" type=306 nparams=4 tid=$PARENT p1:len=0
event "sendto_x bad buffer"     type=31 nparams=5 tid=$PARENT p1:len=0 p3:u32=100000
event "connect_x bad sockaddr"  type=23 nparams=4 tid=$PARENT p0:s64=-14 p3:len=0
event "chdir_x bad path"        type=95 nparams=2 tid=$PARENT p0:s64=-14 p1:len=0
# A syscall without a filler: generic event with Falco's code (wait4: ppm_sc 69, nr 61).
event "generic_x wait4" type=1 nparams=2 tid=$PARENT p0:u16=69 p1:u16=61

# A 32-bit (i386) program: its calls are the x86-64 events of the same name
# (socketcall's connect and send too), its failed execve's argv is read as
# 32-bit pointers.
if [ -x /bin/pg32 ]; then
    mkdir -p $W-32
    check "capture a 32-bit program" sh -c "pgcheck capture $EV.32 -- /bin/pg32 $W-32 $((PORT + 3)) > /tmp/capture-32.out"
    read P32 C32 < $W-32/pids
    echo "32-bit workload parent=$P32 child=$C32"
    A32=127.0.0.1:$((PORT + 3))
    check "ia32 open_x"    pgcheck find $EV.32 type=3 nparams=6 tid=$P32 p0:s64ge=3 p1:str=$W-32/file32
    check "ia32 openat_x"  pgcheck find $EV.32 type=307 nparams=7 tid=$P32 p0:s64ge=3 p1:s64=-100 p2:str=$W-32/file32
    check "ia32 write_x"   pgcheck find $EV.32 type=9 nparams=4 tid=$P32 p0:s64=4 p1:bytes=pg32
    check "ia32 socketcall socket_x"  pgcheck find $EV.32 type=19 nparams=5 tid=$P32 p0:s64ge=3 p1:u32=2 p2:u32=1
    check "ia32 socketcall connect_e" pgcheck find $EV.32 type=22 nparams=2 tid=$P32 p1:inet=$A32
    check "ia32 connect_x (socketcall and direct)" sh -c "[ \$(pgcheck count $EV.32 type=23 tid=$P32 p0:s64=0 p3:inet=$A32) -eq 2 ]"
    check "ia32 socketcall send as sendto_x" pgcheck find $EV.32 type=31 nparams=5 tid=$P32 p0:s64=9 p1:bytes=pg32-send p4:tupledst=$A32
    check "ia32 execve_x failed, 32-bit argv" pgcheck find $EV.32 type=293 nparams=31 tid=$P32 p0:s64=-2 p1:str=pg32-arg0 p2:str=pg32-arg1 p30:str=/nonexistent/pg32-missing
    check "ia32 clone_x child" pgcheck find $EV.32 type=223 tid=$C32 p0:s64=0
    check "ia32 execve_x child" pgcheck find $EV.32 type=293 tid=$C32 p0:s64=0 p2:str=pg32-exec p30:str=/bin/echo
else
    echo "PGTEST-SKIP ia32 events: no 32-bit pg32 in this guest (gcc-multilib missing on the host)"
fi

# A usermode helper: opening a char device nobody drives makes the kernel
# run /proc/sys/kernel/modprobe itself, forked by a kernel thread and exec'd
# outside any syscall. Both steps must still be reported.
printf '#!/bin/sh\necho $$ > /tmp/pgumh.pid\n' > /tmp/pgumh.sh && chmod +x /tmp/pgumh.sh
mknod /tmp/pgnodev c 240 0
MODPROBE=$(cat /proc/sys/kernel/modprobe)
echo /tmp/pgumh.sh > /proc/sys/kernel/modprobe
check "capture a usermode helper" sh -c "pgcheck capture $EV.umh -- /bin/sh -c 'cat /tmp/pgnodev 2>/dev/null; test -s /tmp/pgumh.pid' > /tmp/capture-umh.out"
echo "$MODPROBE" > /proc/sys/kernel/modprobe
UMH=$(cat /tmp/pgumh.pid 2>/dev/null)
echo "usermode helper pid=$UMH"
check "clone_x of a kernel thread's fork" pgcheck find $EV.umh type=223 p0:s64=${UMH:-0}
# A script: exe is its interpreter, the script is in the arguments.
check "execve_x of the kernel's exec" pgcheck find $EV.umh type=293 tid=${UMH:-0} p0:s64=0 p2:contains=/tmp/pgumh.sh

# Snaplen: read/write data cut at what PG_IOCTL_SET_SNAPLEN says.
mkdir -p $W-snap
check "capture with snaplen 2" sh -c "pgcheck capture $EV.snap --snaplen 2 -- /bin/pgwork $W-snap $((PORT + 1)) > /tmp/capture-snap.out"
read SNAPPARENT SNAPCHILD < $W-snap/pids
check "event write_x snaplen 2" pgcheck find $EV.snap type=9 tid=$SNAPPARENT p0:s64=5 p1:bytes=he p3:u32=5
# Dropping mode: one getppid in 4 kept, the others counted.
check "sampling ratio 3 refused" pgcheck badsampling
check "sampling drop accounting" sh -c "pgcheck storm 4000 4 > /tmp/sample.out"
cat /tmp/sample.out
# Snaplen, interest and sampling go back to those of a fresh load once the
# last consumer closes: the whole workload again, full data, nothing sampled.
mkdir -p $W-after
check "capture after settings reset" sh -c "pgcheck capture $EV.after -- /bin/pgwork $W-after $((PORT + 2)) > /tmp/capture-after.out"
read AFTERPARENT AFTERCHILD < $W-after/pids
check "settings reset: snaplen and interest" pgcheck find $EV.after type=9 tid=$AFTERPARENT p1:bytes=hello
check "settings reset: sampling off" grep -q "drops_sampling=0" /tmp/capture-after.out

check "rmmod" rmmod peregrine
check "buffer_size validated" sh -c "! insmod $MOD buffer_size=12345"

# Storm: a tiny ring and a tight loop; every attempt is written or counted.
check "insmod tiny ring" insmod $MOD buffer_size=8192
check "storm drop accounting" sh -c "pgcheck storm 20000 > /tmp/storm.out"
cat /tmp/storm.out
check "rmmod after storm" rmmod peregrine

# The differential oracle: the same workload, in a fresh folder of the same
# name, recorded from Falco's own kernel module. Both records go to the host
# (scripts/lab/guest.sh: lab_diff_check), which compares them event by event.
if [ -f /scap.ko ]; then
    rm -rf $W && mkdir -p $W
    check "insmod Falco's scap.ko" insmod /scap.ko
    check "capture the workload from Falco's kmod" sh -c "pgscap /tmp/falco.bin -- /bin/pgwork $W $PORT > /tmp/pgscap.out"
    cat /tmp/pgscap.out
    check "no drops from Falco's kmod" grep -q "drops_buffer=0 drops_pf=0" /tmp/pgscap.out
    # scap (Debian's package) or falco (Falco's own build of the same source).
    FMOD=scap; [ -d /sys/module/falco ] && FMOD=falco
    check "rmmod $FMOD" rmmod $FMOD
    read FPARENT FCHILD < $W/pids
    echo "PGDIFF-PIDS $PARENT $FPARENT"
    echo "PGDIFF-OURS-BEGIN"; gzip -c $EV | base64; echo "PGDIFF-OURS-END"
    echo "PGDIFF-FALCO-BEGIN"; gzip -c /tmp/falco.bin | base64; echo "PGDIFF-FALCO-END"
else
    echo "PGTEST-SKIP differential against Falco's kmod: $(cat /falco-unavailable 2>/dev/null || echo 'no scap.ko in this guest')"
fi

. /tests/live-replay.sh                                            # live_replay_check, for the two below
[ -f /tests/rules/run-rules.sh ] && . /tests/rules/run-rules.sh   # peregrine live + default rules
[ -f /tests/rules/capture.sh ] && . /tests/rules/capture.sh       # peregrine capture, read by sysdig on the host
[ -f /tests/evasion/run-evasion.sh ] && . /tests/evasion/run-evasion.sh # evasion variants, live, both rule sets
. /tests/containers.sh                                             # containerd in the guest: container.* fields

check "dmesg clean" sh -c "! dmesg | grep -E 'WARNING|BUG|Oops|Call Trace'"
dmesg | grep -E 'WARNING|BUG|Oops|Call Trace' -A 20 | head -n 60

echo "PGTEST-RESULT $pass passed, $fail failed"
