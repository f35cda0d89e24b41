# Sourced by /tests/run-tests.sh: the evasion suite, live through the module.
# peregrine runs with Peregrine's default rules and Falco's stable rules
# (falco_rules.yaml, unchanged) loaded together; every variant is an
# indirect way to do what a rule looks for, and must raise the same rule as
# the direct form: in Peregrine's rules, and in Falco's where Falco's rule
# covers the action at all. Adds to run-tests.sh's pass/fail counters.
#
# Each command carries the token pgV-ID (last argument, which pgevade
# ignores), so that an alert is attributed by its command line. Where the
# guest has Falco's agent, the same commands then run under it
# (falco-agent.sh).

EVD=/tmp/evasion
EV_ALERTS=/tmp/evasion-alerts.json
EV_OUT=/tmp/evasion-peregrine.out
EV_SCAP=/tmp/evasion-live.scap
EV_UDP_PORT=7791
EV_PUBLIC_IP=198.51.100.7       # TEST-NET-2: neither loopback nor RFC 1918

ev_ok() { pass=$((pass + 1)); echo "PGTEST ok $1"; }
ev_fail() {
    fail=$((fail + 1)); echo "PGTEST FAIL $1"
    shift
    for line in "$@"; do echo "    $line"; done
}

# variant ID "PEREGRINE RULE" "FALCO RULE" COMMAND [ATTRIBUTION]
# A "-" rule: that rule set has no rule for the direct form either.
# ATTRIBUTION (a regular expression) replaces the token for a program whose
# command line cannot carry it (a program exec'd from a memfd).
variant() {
    mkdir -p $EVD/$1
    echo "$2" > $EVD/$1/peregrine
    echo "$3" > $EVD/$1/falco
    echo "$4 pgV-$1" > $EVD/$1/cmd
    echo "${5:-pgV-$1([^a-z0-9-]|\$)}" > $EVD/$1/match
}

ev_variants() {
    E=/bin/pgevade
    E32=/bin/pgevade32
    T=/tmp/pgevade-tmp          # the same program run from /tmp
    RSF="Read Sensitive File"
    RSFU="Read sensitive file untrusted"
    variant read       "$RSF" "$RSFU" "$E read /etc/shadow"
    variant cd         "$RSF" "$RSFU" "$E cd-read /etc shadow"
    variant cd-up      "$RSF" "$RSFU" "$E cd-read /usr ../etc/shadow"
    variant fchdir     "$RSF" "$RSFU" "$E fchdir-read /etc shadow"
    variant openat     "$RSF" "$RSFU" "$E openat-read /etc shadow"
    variant proc-cwd   "$RSF" "$RSFU" "$E proc-cwd-read /etc shadow"
    variant proc-fd    "$RSF" "$RSFU" "$E proc-fd-read /etc shadow"
    variant dev-fd     "$RSF" "$RSFU" "$E devfd-read /etc shadow"
    variant proc-root  "$RSF" "$RSFU" "$E read /proc/self/root/etc/shadow"
    variant thread     "$RSF" "$RSFU" "$E thread-read /etc/shadow"
    variant vfork      "$RSF" "$RSFU" "$E vfork-read /etc/shadow"
    variant clone3     "$RSF" "$RSFU" "$E clone3-read /etc/shadow"
    if [ -x $E32 ]; then
        variant ia32       "$RSF" "$RSFU" "$E32 read /etc/shadow"
        variant ia32-cd    "$RSF" "$RSFU" "$E32 cd-read /etc shadow"
        variant ia32-fchdir "$RSF" "$RSFU" "$E32 fchdir-read /etc shadow"
        variant ia32-udp   "Outbound Connection From Shell Or Temporary Binary" - "$T-32 udp-connect $EV_UDP_PORT"
    else
        echo "PGTEST-SKIP evasion: 32-bit variants: no pgevade32 in this guest (gcc-multilib missing on the host)"
    fi
    variant symlink    "Symlink Created Over Sensitive File" "Create Symlink Over Sensitive Files" \
        "$E symlink-read /etc/shadow /tmp/pgV-symlink"
    variant hardlink   "Hard Link Created Over Sensitive File" "Create Hardlink Over Sensitive Files" \
        "$E link-read /etc/shadow /etc/pgV-hardlink"
    # Falco's rule tests evt.arg.oldpath, which libsinsp resolves against
    # the working directory ("shadow" after cd /etc is /etc/shadow): Falco's
    # agent raises it, and so must Peregrine.
    variant cd-hardlink "Hard Link Created Over Sensitive File" "Create Hardlink Over Sensitive Files" \
        "$E cd-link /etc shadow pgV-cd-hardlink"
    variant write-etc  "Write Below Etc" - "$E write /etc/pgV-write-etc"
    variant rename-etc "Write Below Etc" - "$E rename /etc/pgstage1 /etc/pgV-rename-etc"
    variant cd-rename-etc "Write Below Etc" - "$E cd-rename /etc pgstage2 cron-job"
    variant renameat-etc "Write Below Etc" - "$E renameat-into /etc /etc/pgstage3 cron-job2"
    variant rename     "Binary Directory Entry Renamed Or Removed" - "$E rename /usr/local/share/new1 /usr/local/bin/pgV-rename"
    variant cd-rename  "Binary Directory Entry Renamed Or Removed" - "$E cd-rename /usr/local/bin ../share/new2 tool"
    variant renameat   "Binary Directory Entry Renamed Or Removed" - "$E renameat-into /usr/local/bin /usr/local/share/new3 tool2"
    variant cd-unlink  "Binary Directory Entry Renamed Or Removed" - "$E cd-unlink /usr/local/bin tool"
    variant udp        "Outbound Connection From Shell Or Temporary Binary" - "$T udp-connect $EV_UDP_PORT"
    variant tcp        "Outbound Connection From Shell Or Temporary Binary" - "/tmp/pgtrigger-tmp connect $TRIG_PORT"
    variant memfd-exec - "Fileless execution via memfd_create" "/bin/pgtrigger memfd-exec" 'memfd:pgmemfd'
    # A trigger for each other rule of Falco's stable set that can fire
    # without a container runtime: so that live = replay (below) covers
    # every such rule. $F holds pgtrigger under the names Falco's lists give
    # meaning to.
    F=/tmp/pgfalco
    P=/bin/pgtrigger
    variant f-traversal - "Directory traversal monitored file read" "$P spawn $E read /etc/../etc/../etc/hostname"
    variant f-trusted - "Read sensitive file trusted after startup" "$F/nginx after 6 read /etc/shadow"
    variant f-shell - "Run shell untrusted" "$F/nginx spawn /bin/sh -c :"
    variant f-sysuser - "System user interactive" "$P as-uid 65534 spawn $F/login noop"
    variant f-search - "Search Private Keys or Passwords" "/bin/grep -r 'BEGIN PRIVATE' /etc/hostname /tmp/pgV-f-search; :"
    variant f-aws - "Find AWS Credentials" "/bin/find /tmp/pgV-f-aws -path /root/.aws/credentials; :"
    variant f-clearlog - "Clear Log Activities" "$P trunc /var/log/pgV-f-clearlog"
    variant f-bulk - "Remove Bulk Data from Disk" "$F/shred noop"
    variant f-ptrace - "PTRACE attached to process" "$P ptrace"
    variant f-traceme - "PTRACE anti-debug attempt" "$P traceme"
    variant f-shm - "Execution from /dev/shm" "/dev/shm/pgtrigger noop"
    variant f-ssh - "Disallowed SSH Connection Non Standard Port" "$F/ssh connect-to $EV_PUBLIC_IP 443"
}

# Falco's stable rules that need a container runtime to fire (container.id
# of a real container, its image or privileges): issue 16's ground.
EV_FALCO_CONTAINER_RULES="Terminal shell in container
Contact K8S API Server From Container
Netcat Remote Code Execution in Container
Packet socket created in container
Redirect STDOUT/STDIN to Network Connection in Container
Linux Kernel Module Injection Detected
Debugfs Launched in Privileged Container
Detect release_agent File Container Escapes
Drop and execute new binary in container"

# Every rule of Falco's stable file has a variant here or needs a container.
ev_falco_coverage() {
    sed -n 's/^- rule: *//p' /tests/evasion/falco_rules.yaml | sort > $EVD.falco-rules
    { echo "$EV_FALCO_CONTAINER_RULES"; cat $EVD/*/falco | grep -vx -- -; } | sort -u > $EVD.falco-covered
    missing=$(grep -vxF -f $EVD.falco-covered $EVD.falco-rules | tr '\n' ';')
    if [ -z "$missing" ]; then
        ev_ok "evasion: every rule of Falco's stable file has a trigger or needs a container ($(wc -l < $EVD.falco-rules))"
    else
        ev_fail "evasion: every rule of Falco's stable file has a trigger or needs a container" "without: $missing"
    fi
}

ev_setup() {
    mkdir -p /usr/local/bin /usr/local/share /tmp/pglive
    : > /usr/local/share/new1; : > /usr/local/share/new2; : > /usr/local/share/new3
    : > /usr/local/bin/tool
    # Staged where they are renamed (rename cannot cross filesystems).
    : > /etc/pgstage1; : > /etc/pgstage2; : > /etc/pgstage3
    # devtmpfs has no /dev/fd; a system's /dev has it.
    [ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
    echo 'root:*:19000:0:99999:7:::' > /etc/shadow
    cp /bin/pgevade /tmp/pgevade-tmp
    [ -x /bin/pgevade32 ] && cp /bin/pgevade32 /tmp/pgevade-tmp-32
    cp /bin/pgtrigger /tmp/pgtrigger-tmp
    # For Falco's own triggers: programs under meaningful names, a log to
    # clear, a system user, a tmpfs /dev/shm, and a public address (on lo)
    # for an outbound connection.
    mkdir -p /tmp/pgfalco /dev/shm /var/log
    for n in nginx login shred ssh; do cp /bin/pgtrigger /tmp/pgfalco/$n; done
    grep -q ' /dev/shm ' /proc/mounts || mount -t tmpfs shm /dev/shm
    cp /bin/pgtrigger /dev/shm/pgtrigger
    /bin/pgtrigger create /var/log/pgV-f-clearlog
    grep -q '^nobody:' /etc/passwd || echo 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >> /etc/passwd
    grep -q '^nogroup:' /etc/group 2>/dev/null || echo 'nogroup:x:65534:' >> /etc/group
    ip addr add $EV_PUBLIC_IP/32 dev lo 2>/dev/null
    : > /tmp/pglive/evasion-ready
}

ev_main() {
    [ -x /bin/peregrine ] && [ -x /bin/pgevade ] ||
        { echo "PGTEST-SKIP evasion suite: no peregrine or pgevade in this guest"; return; }
    falco_rules=
    if [ -f /tests/evasion/falco_rules.yaml ]; then
        falco_rules="-r /tests/evasion/falco_rules.yaml"
    else
        echo "PGTEST-SKIP evasion: Falco's rules: falco_rules.yaml was not in ../shared on the host"
    fi
    rm -rf $EVD; mkdir -p $EVD
    ev_setup
    ev_variants
    check "evasion: insmod" insmod /peregrine.ko
    /bin/pgtrigger serve ${TRIG_PORT:=7782} & ev_server=$!
    /bin/pgtrigger serve-at $EV_PUBLIC_IP 443 & ev_public_server=$!
    rm -f $EV_ALERTS $EV_SCAP
    # rule_matching=all: by default (first) an event raises only the first
    # rule it matches in load order, so Peregrine's rule would hide Falco's.
    ev_rules="-r /etc/peregrine/peregrine_rules.yaml $falco_rules -r /tests/rules/live-rules.yaml -o rule_matching=all"
    peregrine $ev_rules --syscall-capture $EV_SCAP -U -o json_output=true -o stdout_output.enabled=false -o file_output.enabled=true \
        -o file_output.filename=$EV_ALERTS > $EV_OUT 2>&1 &
    ev_pid=$!
    n=0
    until grep -q /tmp/pglive/evasion-ready $EV_ALERTS 2>/dev/null || [ $n -ge 120 ]; do
        /bin/pgtrigger read /tmp/pglive/evasion-ready
        kill -0 $ev_pid 2>/dev/null || break
        sleep 1; n=$((n + 1))
    done
    if ! grep -q /tmp/pglive/evasion-ready $EV_ALERTS 2>/dev/null; then
        ev_fail "evasion: peregrine live start with both rule files" "$(tail -n 15 $EV_OUT)"
        kill $ev_pid $ev_server $ev_public_server 2>/dev/null; rmmod peregrine
        return
    fi
    ev_ok "evasion: peregrine live start with both rule files"
    for id in $(ls $EVD); do
        sh -c "$(cat $EVD/$id/cmd)" > $EVD/$id/out 2>&1; echo $? > $EVD/$id/rc
    done
    : > /tmp/pglive/evasion-end
    n=0
    until grep -q /tmp/pglive/evasion-end $EV_ALERTS || [ $n -ge 60 ]; do
        /bin/pgtrigger read /tmp/pglive/evasion-end; sleep 1; n=$((n + 1))
    done
    sleep 1
    kill -TERM $ev_pid; wait $ev_pid
    kill $ev_server $ev_public_server 2>/dev/null
    check "evasion: rmmod" rmmod peregrine
    grep -i -E 'error|warning' $EV_OUT | head -n 5 | sed 's/^/    peregrine: /'
    # A Falco rule silent on the direct form itself (read, symlink,
    # hardlink) says nothing about evasion: its variants are reported as
    # gaps (PGTEST-GAP, neither pass nor fail) and the silence as one.
    : > $EVD.silent
    for direct in read symlink hardlink; do
        rule=$(cat $EVD/$direct/falco)
        [ -n "$falco_rules" ] && [ "$(cat $EVD/$direct/rc)" = 0 ] || continue
        if ! grep -F "\"rule\":\"$rule\"" $EV_ALERTS | grep -qE "$(cat $EVD/$direct/match)"; then
            echo "$rule" >> $EVD.silent
            echo "PGTEST-GAP evasion: Falco's rule '$rule' does not fire live on its direct form ($(cat $EVD/$direct/cmd))"
        fi
    done
    for id in $(ls $EVD); do
        cmd=$(cat $EVD/$id/cmd)
        for side in peregrine falco; do
            rule=$(cat $EVD/$id/$side)
            [ "$rule" = - ] && continue
            [ $side = falco ] && [ -z "$falco_rules" ] && continue
            name="evasion $id: $side rule '$rule'"
            if [ $side = falco ] && grep -qxF "$rule" $EVD.silent; then
                echo "PGTEST-GAP $name: silent on the direct form too"
                continue
            fi
            if [ "$(cat $EVD/$id/rc)" != 0 ]; then
                ev_fail "$name" "the action failed: $cmd" "$(head -n 3 $EVD/$id/out)"
            elif grep -F "\"rule\":\"$rule\"" $EV_ALERTS | grep -qE "$(cat $EVD/$id/match)"; then
                ev_ok "$name"
            else
                ev_fail "$name" "no alert for: $cmd" \
                    "rules that fired for it: $(grep -E "pgV-$id([^a-z0-9-]|\$)" $EV_ALERTS | sed -n 's/.*"rule":"\([^"]*\)".*/\1/p' | sort -u | tr '\n' ';')"
            fi
        done
    done
    [ -n "$falco_rules" ] && ev_falco_coverage
    live_replay_check "Peregrine's and Falco's rules" $EV_ALERTS $EV_SCAP $ev_rules
    rm -f $EV_SCAP
    evf_main
}

. /tests/evasion/falco-agent.sh                 # evf_main: the variants under Falco's agent

ev_main
