# Sourced by /tests/run-tests.sh, before its verdict line: the live checks
# of the Rust side (driver-sys + engine + cli) against the real module, and
# one trigger plus one benign neighbour for every default rule, in the
# spirit of an event generator. Adds to run-tests.sh's pass/fail counters
# and prints the same "PGTEST ok|FAIL NAME" lines.
#
# Attribution: every trigger puts a token in its command line or its file
# names, pgF-ID when it must raise rule ID, pgB-ID for its benign
# neighbour. An alert counts as expected only when it carries the token of
# a firing trigger of that very rule (or of a rule the trigger is declared
# to raise as well); any other alert is a false positive (PGTEST-FP).

RT=/tmp/rt                      # one folder per trigger: rule, fire, benign, extra
RULES=/etc/peregrine/peregrine_rules.yaml
ALERTS=/tmp/alerts.json
LIVE_SCAP=/tmp/rules-live.scap  # every event the live run evaluated (--syscall-capture)
PGOUT=/tmp/peregrine.out
METRICS=/tmp/peregrine-metrics.json
WEB_PORT=7785                   # peregrine's webserver, for /metrics
METRICS_RUNS=40                 # processes the metrics check pins to each vCPU
LIVE_PORT=7781                  # the live check's loopback server
TRIG_PORT=7782                  # the connect triggers' server
RT_FORK_CPUS=$(grep -c ^processor /proc/cpuinfo)

rt_ok() { pass=$((pass + 1)); echo "PGTEST ok $1"; }
rt_fail() {
    fail=$((fail + 1)); echo "PGTEST FAIL $1"
    shift
    for line in "$@"; do echo "    $line"; done
}

# trigger ID "RULE" "FIRE COMMAND" "BENIGN COMMAND" ["OTHER RULES THE FIRE RAISES" (| separated)]
trigger() {
    mkdir -p $RT/$1
    echo "$2" > $RT/$1/rule
    echo "$3" > $RT/$1/fire
    echo "$4" > $RT/$1/benign
    echo "${5:-}" | tr '|' '\n' | grep . > $RT/$1/extra
}

# --- The triggers ----------------------------------------------------------
B=/tmp/pgbin                    # pgtrigger under chosen process names
T=/bin/pgtrigger
trigger wbbd "Write Below Binary Directory" \
    "$T write /usr/local/bin/pgF-wbbd" "$T write /usr/local/share/pgB-wbbd"
trigger wbe "Write Below Etc" \
    "$T write /etc/pgF-wbe" "$B/sed write /etc/pgB-wbe"
trigger wbrh "Write Below Root Home" \
    "$T write /root/pgF-wbrh" "$T write /root/.ash_history pgB-wbrh"
trigger rsf "Read Sensitive File" \
    "$T read /etc/shadow pgF-rsf" "$B/unix_chkpwd read /etc/shadow pgB-rsf"
trigger bdrr "Binary Directory Entry Renamed Or Removed" \
    "$T unlink /usr/local/bin/pgF-bdrr" "$T unlink /usr/local/share/pgB-bdrr"
trigger gsbm "Guarded System Binary Modified" \
    "$T write /usr/local/bin/passwd pgF-gsbm" "$B/dpkg write /usr/local/bin/passwd pgB-gsbm"
trigger scosf "Symlink Created Over Sensitive File" \
    "$T symlink /etc/shadow /tmp/pgF-scosf" "$T symlink /etc/hostname /tmp/pgB-scosf"
trigger hlcosf "Hard Link Created Over Sensitive File" \
    "$T link /etc/shadow /etc/pgF-hlcosf" "$T link /etc/hostname /etc/pgB-hlcosf"
trigger sosbs "Setuid Or Setgid Bit Set" \
    "$T chmod /tmp/pgF-sosbs 4755" "$T chmod /tmp/pgB-sosbs 0755"
trigger sfmoc "Sensitive File Mode Or Owner Changed" \
    "$T chmod /etc/shadow 0640 pgF-sfmoc" "$T chmod /etc/hostname 0644 pgB-sfmoc"
trigger nsews "Namespace Entered With Setns" \
    "$T setns pgF-nsews" "$B/nsenter setns pgB-nsews"
trigger ncwu "New Namespaces Created With Unshare" \
    "$T unshare pgF-ncwu" "$B/unshare unshare pgB-ncwu"
trigger ssbup "Shell Spawned By Unexpected Program" \
    "$B/pgtmp spawn /bin/sh -c ': pgF-ssbup'" "$B/make spawn /bin/sh -c ': pgB-ssbup'"
trigger ssbns "Shell Spawned By Network Service" \
    "$B/nginx spawn /bin/sh -c ': pgF-ssbns'" "$B/nginx spawn /bin/true pgB-ssbns"
trigger sric "Shell Run In Container" \
    "touch /tmp/go-pgF-sric && until [ -e /tmp/go-pgF-sric.done ]; do usleep 50000; done" \
    "touch /tmp/go-pgB-sric && until [ -e /tmp/go-pgB-sric.done ]; do usleep 50000; done"
trigger sbrup "SSH Binary Run From Unexpected Place" \
    "$B/nginx spawn $B/ssh noop pgF-sbrup" "$B/ssh noop pgB-sbrup"
trigger ocfs "Outbound Connection From Shell Or Temporary Binary" \
    "$B/pgtmp connect $TRIG_PORT pgF-ocfs" "$T connect $TRIG_PORT pgB-ocfs"
trigger lsobup "Listening Socket Opened By Unexpected Program" \
    "$B/pgtmp listen 7783 pgF-lsobup" "$T listen 7784 pgB-lsobup"
trigger rso "Raw Socket Opened" \
    "$T raw pgF-rso" "$B/ping raw pgB-rso"
# A load that fails (a junk image) is the attempt the rule ignores.
trigger kml "Kernel Module Loaded" \
    "insmod /tmp/pgF-kml.ko" "! insmod /tmp/pgB-kml.ko"
trigger pawp "Process Attached With Ptrace" \
    "$T ptrace pgF-pawp" "$B/gdb ptrace pgB-pawp"
trigger lfc "Log File Cleared" \
    "$T trunc /var/log/pgF-lfc.log" "$T append /var/log/pgB-lfc.log"
trigger fcbd "File Created Below Dev" \
    "$T create /dev/pgF-fcbd" "$T create /dev/shm/pgB-fcbd"

# Variants: the same rules through their other syscalls and arguments
# (rename's oldpath/newpath, unlinkat's name, chown). Their check lines say
# "fires via ID" so the table of one trigger per rule stays as it is.
trigger bdrr-mv "Binary Directory Entry Renamed Or Removed" \
    "$T rename /usr/local/share/pgF-bdrr-mv /usr/local/bin/pgF-bdrr-mv" \
    "$T rename /usr/local/share/pgB-bdrr-mv /usr/local/share/pgB-bdrr-mv2"
trigger lfc-rm "Log File Cleared" \
    "rm /var/log/pgF-lfc-rm.log" "rm /var/tmp/pgB-lfc-rm.log"
trigger sfmoc-own "Sensitive File Mode Or Owner Changed" \
    "$T chown /etc/shadow pgF-sfmoc-own" "$T chown /etc/hostname pgB-sfmoc-own"
trigger fcbd-creat "File Created Below Dev" \
    "$T creat /dev/pgF-fcbd-creat" "$T creat /dev/shm/pgB-fcbd-creat"
# The path rewritten by another thread while the open waits in the kernel:
# the exit reads the decoy, the enter read what was opened. (The writer
# that lets the open return is a sed, which Write Below Etc allows.)
trigger rsf-toctou "Read Sensitive File" \
    "$T toctou-read /etc/sudoers.d/pgF-rsf-toctou /tmp/pgF-rsf-toctou-decoy $B/sed" \
    "$B/unix_chkpwd toctou-read /etc/sudoers.d/pgB-rsf-toctou /tmp/pgB-rsf-toctou-decoy $B/sed"

# Rules whose trigger cannot work on every build, and why (printed instead
# of a pass when the rule stays silent; anything else must fire).
# None today: every trigger must raise its rule.
known_gap() {
    case $1 in
        *) ;;
    esac
}

# --- The stage the triggers act on, set up before peregrine starts ----------
rt_setup() {
    mkdir -p /usr/local/bin /usr/local/share /root /var/log /dev/shm /etc/peregrine /etc/sudoers.d $B /tmp/pglive
    for n in sed unix_chkpwd dpkg nsenter unshare pgtmp make nginx ssh ping gdb; do cp $T $B/$n; done
    for c in 0 1; do cp $T /tmp/pglive-c$c; done
    echo 'root:*:19000:0:99999:7:::' > /etc/shadow
    echo guest > /etc/hostname
    echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
    : > /usr/local/bin/pgF-bdrr; : > /usr/local/share/pgB-bdrr
    : > /tmp/pgF-sosbs; : > /tmp/pgB-sosbs
    echo old > /var/log/pgF-lfc.log; echo old > /var/log/pgB-lfc.log
    mkdir -p /var/tmp; echo old > /var/log/pgF-lfc-rm.log; echo old > /var/tmp/pgB-lfc-rm.log
    : > /usr/local/share/pgF-bdrr-mv; : > /usr/local/share/pgB-bdrr-mv
    : > /tmp/pglive/ready
    cp /pgdummy.ko /tmp/pgF-kml.ko
    echo 'not a module' > /tmp/pgB-kml.ko
    # A "container": a docker-looking cgroup holding two waiting processes
    # (named make, an allowed shell spawner, so only the container rule
    # applies). peregrine learns their cgroup from /proc when it starts.
    id=$(printf 'c0ffee%058d' 0)
    mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null
    mkdir -p /sys/fs/cgroup/docker/$id
    sh -c "echo \$\$ > /sys/fs/cgroup/docker/$id/cgroup.procs && exec $B/make spawn-when /tmp/go-pgF-sric /bin/sh -c ': pgF-sric'" &
    SRIC_FIRE=$!
    sh -c "echo \$\$ > /sys/fs/cgroup/docker/$id/cgroup.procs && exec $B/make spawn-when /tmp/go-pgB-sric /bin/true pgB-sric" &
    SRIC_BENIGN=$!
    $T serve $LIVE_PORT & LIVE_SERVER=$!
    $T serve $TRIG_PORT & TRIG_SERVER=$!
    sleep 1
}

# --- Running peregrine --------------------------------------------------------
peregrine_start() {
    rm -f $ALERTS $LIVE_SCAP
    peregrine -r $RULES -r /tests/rules/live-rules.yaml --syscall-capture $LIVE_SCAP -U -o json_output=true \
        -o stdout_output.enabled=false -o file_output.enabled=true -o file_output.filename=$ALERTS \
        -o metrics.enabled=true -o metrics.interval=2s -o metrics.output_rule=false \
        -o metrics.output_file=$METRICS -o metrics.kernel_event_counters_per_cpu_enabled=true \
        -o webserver.enabled=true -o webserver.listen_address=127.0.0.1 -o webserver.listen_port=$WEB_PORT \
        > $PGOUT 2>&1 &
    PEREGRINE=$!
    # Settled once an open of the ready file comes back as an alert.
    n=0
    while [ $n -lt 120 ]; do
        $T read /tmp/pglive/ready
        grep -q '/tmp/pglive/ready' $ALERTS 2>/dev/null && return 0
        kill -0 $PEREGRINE 2>/dev/null || return 1
        sleep 1; n=$((n + 1))
    done
    return 1
}

peregrine_stop() {
    kill -TERM $PEREGRINE
    n=0
    while kill -0 $PEREGRINE 2>/dev/null && [ $n -lt 120 ]; do sleep 1; n=$((n + 1)); done
    kill -0 $PEREGRINE 2>/dev/null && return 1
    wait $PEREGRINE
}

rule_of() { sed -n 's/.*"rule":"\([^"]*\)".*/\1/p'; }

# --- Rust reader: exact alerts for exact events on both vCPUs -----------------
live_workload() {
    for c in 0 1; do
        i=1
        while [ $i -le 10 ]; do
            taskset -c $c /tmp/pglive-c$c write /tmp/pglive/f-$c-$i
            taskset -c $c $T connect $LIVE_PORT live-c$c-$i
            i=$((i + 1))
        done
    done
}

live_check() {
    grep '"rule":"Live Check Open"' $ALERTS | grep -v -e pglive/ready -e pglive/end -e pglive/busy-start |
        sed -n 's/.*file=\(\/tmp\/pglive\/[^ ]*\) cpu=\([0-9]*\).*/\1 \2/p' | sort > /tmp/live.open
    grep '"rule":"Live Check Exec"' $ALERTS |
        sed -n 's/.*process=\([^ ]*\) cmdline=[^ ]* write \([^ ]*\) cpu=.*/\1 \2/p' | sort > /tmp/live.exec
    grep '"rule":"Live Check Connect"' $ALERTS |
        sed -n 's/.*cmdline=pgtrigger connect [0-9]* \([^ "]*\) cpu=.*/\1/p' | sort > /tmp/live.connect
    : > /tmp/live.want.open; : > /tmp/live.want.exec; : > /tmp/live.want.connect
    for c in 0 1; do
        i=1
        while [ $i -le 10 ]; do
            echo "/tmp/pglive/f-$c-$i $c" >> /tmp/live.want.open
            echo "pglive-c$c /tmp/pglive/f-$c-$i" >> /tmp/live.want.exec
            echo "live-c$c-$i" >> /tmp/live.want.connect
            i=$((i + 1))
        done
    done
    for k in open exec connect; do
        sort /tmp/live.want.$k > /tmp/live.want.$k.s
        if cmp -s /tmp/live.want.$k.s /tmp/live.$k; then
            rt_ok "rust live reader: exactly the 20 expected $k alerts, 10 per vCPU"
        else
            rt_fail "rust live reader: exactly the 20 expected $k alerts, 10 per vCPU" \
                "got $(wc -l < /tmp/live.$k) lines; diff want/got:" \
                "$(diff /tmp/live.want.$k.s /tmp/live.$k | head -n 12 | tr '\n' ';')"
        fi
    done
}

summary_check() {
    detected=$(sed -n 's/^Events detected: \([0-9]*\)$/\1/p' $PGOUT)
    lines=$(grep -c '"rule":' $ALERTS)
    if [ -n "$detected" ] && [ "$detected" = "$lines" ]; then
        rt_ok "peregrine summary counts every alert written ($lines)"
    else
        rt_fail "peregrine summary counts every alert written ($lines)" "summary says '$detected'"
    fi
    if grep -q 'Kernel events: .* 0 undecodable' $PGOUT && ! grep -q 'could not be decoded' $PGOUT; then
        rt_ok "peregrine decoded every kernel event"
    else
        rt_fail "peregrine decoded every kernel event" "$(grep -E 'Kernel events|decoded' $PGOUT | head -n 3)"
    fi
    # The rules here all name their evt.type: the module must have been
    # told to write only their syscalls and the state's.
    if grep -q 'capturing [0-9]* syscalls (' $PGOUT && ! grep -q 'capturing every syscall' $PGOUT; then
        rt_ok "peregrine narrowed the module to the rules' and the state's syscalls"
    else
        rt_fail "peregrine narrowed the module to the rules' and the state's syscalls" \
            "$(grep capturing $PGOUT | head -n 2)"
    fi
}

# --- Falco's per-CPU kernel counters ------------------------------------------
# metrics.kernel_event_counters_per_cpu_enabled: falcosecurity_scap_n_evts_cpu_total
# and falcosecurity_scap_n_drops_cpu_total on /metrics, one series per vCPU,
# must be the module's rings CPU by CPU. Three views of the rings are held
# against them: a workload pinned to one vCPU (its records land in that
# vCPU's ring only), Falco's totals on the same page, and Peregrine's own
# per-ring series further down that page.

# metrics_scrape FILE: the /metrics page, as Prometheus reads it (not with
# busybox wget, which segfaults here).
metrics_scrape() { timeout 30 $T http-get $WEB_PORT /metrics > "$1"; }

# metrics_value FILE SERIES: one series' value (name and labels as written).
metrics_value() { awk -v s="$2" '$1 == s { print $2; exit }' "$1"; }

# metrics_cpus FILE FAMILY: "CPU VALUE" for each series of a per-CPU family.
metrics_cpus() { sed -n "s/^$2{cpu=\"\([0-9]*\)\"} \([0-9]*\)\$/\1 \2/p" "$1"; }

# metrics_deltas BEFORE AFTER: "CPU GROWTH" of each vCPU's event counter.
metrics_deltas() {
    metrics_cpus "$1" falcosecurity_scap_n_evts_cpu_total > /tmp/metrics.b
    metrics_cpus "$2" falcosecurity_scap_n_evts_cpu_total > /tmp/metrics.a
    awk 'NR == FNR { b[$1] = $2; next } { print $1, $2 - b[$1] }' /tmp/metrics.b /tmp/metrics.a
}

# While peregrine runs: each vCPU in turn runs $METRICS_RUNS processes
# pinned to it. Every process writes at least its execve record there, so
# that vCPU's counter must grow by at least as many, and by more than any
# other vCPU's, which sees only the scrapes and the guest's background (in
# a 6.1 guest about 8 records per process against a sixth of that). CPUs
# swapped or mixed up, or counters split from a total, do not follow the
# pinning.
metrics_live_check() {
    name="metrics: /metrics counts each vCPU's ring in Falco's per-CPU counters"
    grew=1; seen=
    c=0
    while [ $c -lt $RT_FORK_CPUS ]; do
        if ! metrics_scrape /tmp/metrics.before; then
            rt_fail "$name" "no /metrics page on port $WEB_PORT"
            return
        fi
        taskset -c $c sh -c "i=0; while [ \$i -lt $METRICS_RUNS ]; do $T read /etc/hostname; i=\$((i + 1)); done" > /dev/null
        # The reader republishes the rings' counters with each batch, and
        # every 100 ms when idle: the growth shows within a few seconds.
        n=0
        while :; do
            metrics_scrape /tmp/metrics.after
            deltas=$(metrics_deltas /tmp/metrics.before /tmp/metrics.after)
            mine=$(echo "$deltas" | awk -v c=$c '$1 == c { print $2 }')
            most_else=$(echo "$deltas" | awk -v c=$c '$1 != c && $2 > m { m = $2 } END { print m + 0 }')
            [ -n "$mine" ] && [ "$mine" -ge $METRICS_RUNS ] && [ "$mine" -gt "$most_else" ] && break
            n=$((n + 1))
            [ $n -ge 30 ] && { grew=0; break; }
            sleep 1
        done
        seen="$seen pinned to $c:$(echo "$deltas" | awk '{ printf " cpu%s +%s", $1, $2 }');"
        c=$((c + 1))
    done
    echo "metrics: per-CPU growth with $METRICS_RUNS processes per vCPU:$seen"
    if [ $grew = 1 ]; then
        rt_ok "$name"
    else
        rt_fail "$name" "want at least +$METRICS_RUNS on the pinned vCPU, and more than on any other;$seen" \
            "$(grep '^falcosecurity_scap_n_[a-z]*_cpu_total' /tmp/metrics.after | tr '\n' ';')"
    fi
    metrics_page_check /tmp/metrics.after
}

# metrics_page_check FILE: one page's per-CPU series against the rest of it.
metrics_page_check() {
    grep -E '^falcosecurity_(scap_n_(evts|drops)(_cpu)?_total|peregrine_kernel_cpu_(events|drops)_total)' "$1" |
        sed 's/^/metrics: /'
    want=$(seq 0 $((RT_FORK_CPUS - 1)) | tr '\n' ' ')
    evts=$(metrics_cpus "$1" falcosecurity_scap_n_evts_cpu_total | awk '{ printf "%s ", $1 }')
    drops=$(metrics_cpus "$1" falcosecurity_scap_n_drops_cpu_total | awk '{ printf "%s ", $1 }')
    if [ "$evts" = "$want" ] && [ "$drops" = "$want" ]; then
        rt_ok "metrics: one per-CPU events and drops series for each vCPU (${want% })"
    else
        rt_fail "metrics: one per-CPU events and drops series for each vCPU (${want% })" \
            "events for: '$evts'; drops for: '$drops'"
    fi
    # One read of the rings makes Falco's families of a page: the CPUs add
    # up to the totals exactly.
    sum_evts=$(metrics_cpus "$1" falcosecurity_scap_n_evts_cpu_total | awk '{ s += $2 } END { print s + 0 }')
    sum_drops=$(metrics_cpus "$1" falcosecurity_scap_n_drops_cpu_total | awk '{ s += $2 } END { print s + 0 }')
    total_evts=$(metrics_value "$1" falcosecurity_scap_n_evts_total)
    total_drops=$(metrics_value "$1" falcosecurity_scap_n_drops_total)
    if [ "$sum_evts" -gt 0 ] && [ "$sum_evts" = "$total_evts" ] && [ "$sum_drops" = "$total_drops" ]; then
        rt_ok "metrics: per-CPU events and drops add up to the kernel totals ($sum_evts, $sum_drops)"
    else
        rt_fail "metrics: per-CPU events and drops add up to the kernel totals" \
            "events: CPUs $sum_evts, total '$total_evts'; drops: CPUs $sum_drops, total '$total_drops'"
    fi
    # Peregrine's per-ring series are rendered after Falco's, from a read
    # as new or newer: never below, CPU by CPU.
    bad=
    for c in $want; do
        f_evts=$(metrics_value "$1" "falcosecurity_scap_n_evts_cpu_total{cpu=\"$c\"}")
        f_drops=$(metrics_value "$1" "falcosecurity_scap_n_drops_cpu_total{cpu=\"$c\"}")
        p_evts=$(metrics_value "$1" "falcosecurity_peregrine_kernel_cpu_events_total{cpu=\"$c\"}")
        p_drops=0
        for cause in buffer page_fault too_large; do
            v=$(metrics_value "$1" "falcosecurity_peregrine_kernel_cpu_drops_total{cpu=\"$c\",cause=\"$cause\"}")
            p_drops=$((p_drops + ${v:-0}))
        done
        { [ -n "$f_evts" ] && [ -n "$p_evts" ] && [ "$f_evts" -le "$p_evts" ] &&
            [ -n "$f_drops" ] && [ "$f_drops" -le "$p_drops" ]; } ||
            bad="$bad cpu$c: Falco's $f_evts events, $f_drops drops; the ring's ${p_evts:-none}, $p_drops;"
    done
    if [ -z "$bad" ]; then
        rt_ok "metrics: per-CPU counters within the ring stats Peregrine reports for each ring"
    else
        rt_fail "metrics: per-CPU counters within the ring stats Peregrine reports for each ring" "$bad"
    fi
}

# After peregrine stopped: the snapshots of metrics.output_file carry the
# same family (scap.n_evts_cpu_N), and the module's final count, printed at
# exit from the rings' info pages, is at least what any snapshot counted.
metrics_exit_check() {
    last=$(tail -n 1 $METRICS 2>/dev/null)
    written=$(sed -n 's/^Kernel events: \([0-9]*\) written.*/\1/p' $PGOUT)
    file_total=$(echo "$last" | sed -n 's/.*"scap\.n_evts":\([0-9]*\).*/\1/p')
    sum=0; ok=1
    for c in $(seq 0 $((RT_FORK_CPUS - 1))); do
        v=$(echo "$last" | sed -n "s/.*\"scap\.n_evts_cpu_$c\":\([0-9]*\).*/\1/p")
        { [ -n "$v" ] && [ "$v" -gt 0 ]; } || ok=0
        sum=$((sum + ${v:-0}))
    done
    [ "$sum" = "$file_total" ] || ok=0
    last_page=$(metrics_cpus /tmp/metrics.after falcosecurity_scap_n_evts_cpu_total 2>/dev/null |
        awk '{ s += $2 } END { print s + 0 }')
    { [ -n "$written" ] && [ "$written" -ge "$sum" ] && [ "$written" -ge "$last_page" ]; } || ok=0
    if [ $ok = 1 ]; then
        rt_ok "metrics: output_file counts events on every vCPU, within the module's final $written"
    else
        rt_fail "metrics: output_file counts events on every vCPU, within the module's final count" \
            "per-CPU sum $sum, scap.n_evts '$file_total', last page $last_page, exit '$written'" \
            "last snapshot: $(echo "$last" | head -c 600)"
    fi
}

# --- Default rules: fires / quiet / false positives ---------------------------
rules_run_triggers() {
    for id in $(ls $RT); do
        sh -c "$(cat $RT/$id/fire)" > $RT/$id/fire.out 2>&1; echo $? > $RT/$id/fire.rc
        sh -c "$(cat $RT/$id/benign)" > $RT/$id/benign.out 2>&1; echo $? > $RT/$id/benign.rc
    done
}

# Everyday work of an administrator and a service: none of it may raise a
# default rule (an alert here has no trigger token, so it counts as a false
# positive).
everyday_noise() {
    ls -l /bin /etc > /dev/null
    cat /etc/passwd /etc/hostname > /dev/null
    grep -q root /etc/passwd
    ps > /dev/null; df > /dev/null; mount > /dev/null; uname -a > /dev/null; id > /dev/null
    find /etc -name passwd > /dev/null
    mkdir -p /var/log/app /tmp/work && echo started >> /var/log/app/app.log
    cp /etc/hostname /tmp/work/hn && mv /tmp/work/hn /tmp/work/hn2 && chmod 600 /tmp/work/hn2
    ln -s /etc/hostname /tmp/work/hn-link && rm /tmp/work/hn2 /tmp/work/hn-link
    tar cf /tmp/work/etc.tar /etc/hostname 2>/dev/null && gzip -f /tmp/work/etc.tar
    sh -c 'echo hi > /tmp/work/out; cat /tmp/work/out > /dev/null'
    # By path: this busybox runs applets named bare through /proc/self/exe,
    # which makes their proc.name "exe" (so would Falco's).
    /bin/ping -c 1 -W 1 127.0.0.1 > /dev/null 2>&1
    # An HTTP client fetching a page (busybox's wget segfaults before its
    # socket here, so pgtrigger makes the request).
    timeout 5 $T http-get $TRIG_PORT / > /dev/null 2>&1
    xargs echo < /etc/hostname > /dev/null
}

# wait_marker NAME: opens /tmp/pglive/NAME (a Live Check alert) and waits
# until the reader has written that alert: everything before is drained.
wait_marker() {
    : > /tmp/pglive/$1
    n=0
    until grep -q "/tmp/pglive/$1\"" $ALERTS || [ $n -ge 60 ]; do $T read /tmp/pglive/$1; sleep 1; n=$((n + 1)); done
}

# A busy machine: real Debian packages installed, upgraded and removed with
# busybox's dpkg (maintainer scripts included), then a build-like storm of
# short-lived processes over the unpacked files. Nothing here is an attack:
# every default-rule alert it raises is a false positive.
busy_work() {
    mkdir -p /var/lib/dpkg/info /var/lib/dpkg/updates && touch /var/lib/dpkg/status
    for deb in /debs/*.deb; do
        /bin/dpkg -F depends -i $deb > /dev/null 2>&1 || echo "busy: dpkg -i $deb failed"
    done
    # An upgrade: the same versions again, then removals.
    /bin/dpkg -F depends -i /debs/hello_*.deb /debs/tree_*.deb > /dev/null 2>&1
    /bin/dpkg -F depends -r hello > /dev/null 2>&1 && /bin/dpkg -F depends -r pv > /dev/null 2>&1 ||
        echo "busy: dpkg -r failed"
    mkdir -p /tmp/pgbusy/src /tmp/pgbusy/out
    for deb in /debs/*.deb; do /bin/dpkg-deb -x $deb /tmp/pgbusy/src; done
    find /tmp/pgbusy/src -type f | head -n 300 > /tmp/pgbusy/files
    # Eight jobs at a time; a bare `wait` would also wait for peregrine.
    i=0; jobs=
    while read -r f; do
        i=$((i + 1))
        ( gzip -c "$f" > /tmp/pgbusy/out/$i.gz && gunzip -c /tmp/pgbusy/out/$i.gz | md5sum > /tmp/pgbusy/out/$i.sum ) &
        jobs="$jobs $!"
        if [ $((i % 8)) -eq 0 ]; then wait $jobs; jobs=; fi
    done < /tmp/pgbusy/files
    [ -n "$jobs" ] && wait $jobs
    (cd /tmp/pgbusy && tar cf out.tar out && sort out/*.sum > sums && rm -rf out src)
    /usr/bin/tree --version > /dev/null 2>&1
    echo '2^64' | /usr/bin/bc > /dev/null 2>&1
}

# busy_check FIRST_LINE: every alert from that line of $ALERTS on (Live
# Check markers aside) is a false positive of the busy phase.
busy_check() {
    # The phase must have done its work, or a zero below would mean nothing.
    installed=$(/bin/dpkg -l 2>/dev/null | grep -c '^ii')
    if [ "$installed" -ge 8 ] && [ -x /usr/bin/tree ] && [ ! -e /usr/bin/hello ] && [ -s /tmp/pgbusy/sums ]; then
        rt_ok "busy phase: $installed packages installed, hello removed, the build ran"
    else
        rt_fail "busy phase: packages installed, hello removed, the build ran" \
            "$installed installed; tree $(ls -l /usr/bin/tree 2>&1); hello $(ls /usr/bin/hello 2>&1); sums $(wc -l < /tmp/pgbusy/sums 2>&1)"
    fi
    seen=$(tail -n +$1 $ALERTS | grep -c '"rule":"Live Check Package Write"')
    if [ "$seen" -ge 1 ]; then
        rt_ok "busy phase: the rules saw dpkg write below /usr/bin ($seen files)"
    else
        rt_fail "busy phase: the rules saw dpkg write below /usr/bin" "no Live Check Package Write alert"
    fi
    tail -n +$1 $ALERTS | grep -v '"rule":"Live Check' > /tmp/rt.busy-fp
    busy_fp=$(wc -l < /tmp/rt.busy-fp)
    echo "PGTEST-FP-BUSY $busy_fp"
    if [ "$busy_fp" -eq 0 ]; then
        rt_ok "no alerts during package installs and a build"
    else
        rt_fail "no alerts during package installs and a build" "$busy_fp false positives:"
        sed 's/^/    FP-BUSY /' /tmp/rt.busy-fp | head -n 20
    fi
}

# rules_check [BUSY_FIRST_LINE]: the alerts before the busy phase.
rules_check() {
    fp=0
    : > /tmp/rt.fp
    if [ -n "$1" ]; then head -n $(($1 - 1)) $ALERTS; else cat $ALERTS; fi > /tmp/rt.quiet-alerts
    while read -r line; do
        rule=$(echo "$line" | rule_of)
        case $rule in Live\ Check\ *) continue ;; esac
        tok=$(echo "$line" | grep -o 'pgF-[a-z-]*[a-z]' | head -n 1)
        id=${tok#pgF-}
        if [ -n "$tok" ] && [ -d $RT/$id ] &&
            { [ "$rule" = "$(cat $RT/$id/rule)" ] || grep -qxF "$rule" $RT/$id/extra; }; then
            continue
        fi
        fp=$((fp + 1))
        echo "$line" >> /tmp/rt.fp
    done < /tmp/rt.quiet-alerts
    for id in $(ls $RT); do
        rule=$(cat $RT/$id/rule)
        case $id in *-*) via=" via ${id#*-}" ;; *) via= ;; esac
        if [ "$(cat $RT/$id/fire.rc)" != 0 ]; then
            rt_fail "rule $rule fires$via" "the trigger itself failed: $(cat $RT/$id/fire)" "$(head -n 3 $RT/$id/fire.out)"
        elif grep -F "\"rule\":\"$rule\"" $ALERTS | grep -qE "pgF-$id([^a-z-]|\$)"; then
            rt_ok "rule $rule fires$via"
        elif [ -n "$(known_gap $id)" ]; then
            echo "PGTEST-SKIP rule $rule fires$via: $(known_gap $id)"
        else
            rt_fail "rule $rule fires$via" "no alert for: $(cat $RT/$id/fire)"
        fi
        if [ "$(cat $RT/$id/benign.rc)" != 0 ]; then
            rt_fail "rule $rule quiet on benign$via" "the benign action failed: $(cat $RT/$id/benign)" "$(head -n 3 $RT/$id/benign.out)"
        elif grep -F "\"rule\":\"$rule\"" $ALERTS | grep -qE "pgB-$id([^a-z-]|\$)"; then
            rt_fail "rule $rule quiet on benign$via" "alert for: $(cat $RT/$id/benign)"
        else
            rt_ok "rule $rule quiet on benign$via"
        fi
    done
    # A rule added to the defaults without a trigger here must not pass unseen.
    sed -n 's/^- rule: *//p' $RULES | sort > /tmp/rt.rules
    cat $RT/*/rule | sort -u > /tmp/rt.triggered
    if cmp -s /tmp/rt.rules /tmp/rt.triggered; then
        rt_ok "every default rule has a trigger ($(wc -l < /tmp/rt.rules))"
    else
        rt_fail "every default rule has a trigger ($(wc -l < /tmp/rt.rules))" \
            "$(diff /tmp/rt.rules /tmp/rt.triggered | grep '^[-+][^-+]' | tr '\n' ';')"
    fi
    echo "PGTEST-FP $fp"
    if [ "$fp" -eq 0 ]; then
        rt_ok "no unattributed alerts"
    else
        rt_fail "no unattributed alerts" "$fp false positives:"
        sed 's/^/    FP /' /tmp/rt.fp | head -n 40
    fi
}

rt_main() {
    mkdir -p /etc/peregrine && cp /tests/rules/peregrine_rules.yaml $RULES
    if ! insmod /peregrine.ko; then
        rt_fail "rules: insmod for the live run"
        return
    fi
    rt_setup
    if peregrine_start; then
        rt_ok "peregrine live start"
    else
        rt_fail "peregrine live start" "$(tail -n 15 $PGOUT)"
        kill $PEREGRINE $LIVE_SERVER $TRIG_SERVER $SRIC_FIRE $SRIC_BENIGN 2>/dev/null
        rmmod peregrine
        return
    fi
    live_workload
    metrics_live_check
    rules_run_triggers
    everyday_noise
    busy_first=
    if ls /debs/*.deb > /dev/null 2>&1; then
        wait_marker busy-start
        busy_first=$(( $(wc -l < $ALERTS) + 1 ))
        busy_work
    else
        echo "PGTEST-SKIP busy phase: no .deb packages in the guest (apt-get download failed on the host)"
    fi
    # The end marker's alert means the reader got this far; a second more
    # lets the other vCPU's ring drain too.
    : > /tmp/pglive/end
    n=0
    until grep -q '/tmp/pglive/end' $ALERTS || [ $n -ge 60 ]; do $T read /tmp/pglive/end; sleep 1; n=$((n + 1)); done
    sleep 1
    # For the report: how busy the reader was (clock ticks of CPU since start).
    echo "peregrine-cpu: $(awk '{print "utime=" $14 " stime=" $15 " ticks, started at tick " $22}' /proc/$PEREGRINE/stat) now=$(awk '{print int($1 * 100)}' /proc/uptime)"
    if peregrine_stop; then rt_ok "peregrine stops on SIGTERM"; else rt_fail "peregrine stops on SIGTERM"; kill -9 $PEREGRINE; fi
    kill $LIVE_SERVER $TRIG_SERVER 2>/dev/null
    echo "peregrine closing output:"
    sed 's/^/    /' $PGOUT | tail -n 45
    echo "alerts by rule and trigger token:"
    while read -r line; do
        echo "$(echo "$line" | rule_of) $(echo "$line" | grep -o 'pg[FB]-[a-z-]*[a-z]' | head -n 1)"
    done < $ALERTS | sort | uniq -c | sed 's/^/    /'
    live_check
    summary_check
    metrics_exit_check
    [ -n "$busy_first" ] && busy_check $busy_first
    rules_check $busy_first
    live_replay_check "default rules" $ALERTS $LIVE_SCAP -r $RULES -r /tests/rules/live-rules.yaml
    rm -f $LIVE_SCAP
    rmmod pgdummy 2>/dev/null
    check "rmmod after live run" rmmod peregrine
}

rt_main
