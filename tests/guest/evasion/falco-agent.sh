# Sourced by run-evasion.sh: after Peregrine's evasion run, the very same
# variant commands under Falco's own agent (its userspace on its falco.ko,
# built outside the repository and put in /falco by the host's
# scripts/lab/falco-agent.sh), with Falco's stable rules only: the file
# Peregrine loaded. Then, per variant, every Falco rule Falco's agent raised
# on it must have been raised by Peregrine on it too (a PGTEST check); what
# only Peregrine raised is a PGTEST-GAP line, and the alert counts of both,
# rule by rule, are printed as PGFALCO-SIDE lines. Uses run-evasion.sh's
# variables, ev_setup and its counters.

EVF_ALERTS=/tmp/evasion-falco-alerts.json
EVF_OUT=/tmp/evasion-falco.out

# The variants' own leftovers (links, renamed and created files), removed
# so that ev_setup stages everything as it was before Peregrine's run; it
# mirrors ev_variants, and a variant that stops behaving as in Peregrine's
# run fails evf_main's rc check.
evf_restage() {
    rm -f /tmp/pgV-symlink /etc/pgV-hardlink /etc/pgV-cd-hardlink /etc/pgV-write-etc \
        /etc/pgV-rename-etc /etc/cron-job /etc/cron-job2 /usr/local/bin/pgV-rename /usr/local/bin/tool2
    ev_setup
}

# evf_wait TOKEN SECONDS: reads /etc/shadow with TOKEN in the command line
# until Falco's "Read sensitive file untrusted" for it is in the alerts (its
# rules then see the module's events, and everything read before), at most
# SECONDS; fails if it never is or Falco exited.
evf_wait() {
    n=0
    until grep -q "$1" $EVF_ALERTS 2>/dev/null || [ $n -ge $2 ]; do
        /bin/pgtrigger read /etc/shadow "$1"
        kill -0 $evf_pid 2>/dev/null || break
        sleep 1; n=$((n + 1))
    done
    grep -q "$1" $EVF_ALERTS 2>/dev/null
}

# Falco's rules in its file's order, as JSON keys ("rule":"NAME") to count by.
evf_rule_keys() {
    sed -n 's/^- rule: *//p' /tests/evasion/falco_rules.yaml > $EVD.falco-rule-order
    sed 's/.*/"rule":"&"/' $EVD.falco-rule-order > $EVD.falco-rule-keys
}

# evf_rules FILE REGEX: the Falco rules of FILE's alerts that REGEX attributes.
evf_rules() {
    grep -E "$2" "$1" | grep -F -f $EVD.falco-rule-keys | sed -n 's/.*"rule":"\([^"]*\)".*/\1/p' | sort -u
}

# The parity checks: per variant, Falco's agent's rules against Peregrine's.
evf_parity() {
    for id in $(ls $EVD); do
        re=$(cat $EVD/$id/match)
        evf_rules $EVF_ALERTS "$re" > $EVD/$id/falco-agent-rules
        evf_rules $EV_ALERTS "$re" > $EVD/$id/peregrine-falco-rules
        while IFS= read -r rule; do
            name="falco agent parity $id: $rule"
            if grep -qxF "$rule" $EVD/$id/peregrine-falco-rules; then
                ev_ok "$name"
            else
                ev_fail "$name" "Falco's agent raised it, Peregrine did not, on: $(cat $EVD/$id/cmd)" \
                    "Peregrine's Falco rules on it: $(tr '\n' ';' < $EVD/$id/peregrine-falco-rules | grep . || echo none)" \
                    "Falco's alert: $(grep -F "\"rule\":\"$rule\"" $EVF_ALERTS | grep -E "$re" | head -n 1 | cut -c1-600)"
            fi
        done < $EVD/$id/falco-agent-rules
        # Falco's agent silent where Peregrine fires (e.g. on a path Falco's
        # rule reads raw): more detection, not a failure; said once each.
        while IFS= read -r rule; do
            grep -qxF "$rule" $EVD/$id/falco-agent-rules ||
                echo "PGTEST-GAP falco agent parity $id: Falco's agent silent on '$rule', which Peregrine raised"
        done < $EVD/$id/peregrine-falco-rules
    done
}

# The table: per Falco rule, its alerts on the variants' commands from Falco's
# agent and from Peregrine's run, then the totals with what no variant
# explains (the ready/end markers, the rest of the guest).
evf_table() {
    all_re=$(cat $EVD/*/match | tr '\n' '|' | sed 's/|$//')
    f_sum=0; p_sum=0
    printf 'PGFALCO-SIDE %-56s %11s %9s\n' "Falco rule (alerts on the variants' commands)" falco-agent peregrine
    while IFS= read -r rule; do
        f=$(grep -F "\"rule\":\"$rule\"" $EVF_ALERTS | grep -cE "$all_re")
        p=$(grep -F "\"rule\":\"$rule\"" $EV_ALERTS | grep -cE "$all_re")
        f_sum=$((f_sum + f)); p_sum=$((p_sum + p))
        printf 'PGFALCO-SIDE %-56s %11s %9s\n' "$rule" $f $p
    done < $EVD.falco-rule-order
    printf 'PGFALCO-SIDE %-56s %11s %9s\n' "total on the variants ($(ls $EVD | wc -l) commands)" $f_sum $p_sum
    printf 'PGFALCO-SIDE %-56s %11s %9s\n' "total, unattributed included" \
        $(grep -cF -f $EVD.falco-rule-keys $EVF_ALERTS) $(grep -cF -f $EVD.falco-rule-keys $EV_ALERTS)
    # Drops would make Falco's agent silent for want of events, not rules.
    echo "PGFALCO-SIDE Falco's kmod: $(grep -E '^Driver (Events|Drops):' $EVF_OUT | tr '\n' ' ' | sed 's/ $//')"
}

evf_main() {
    if [ ! -x /falco/bin/falco ] || [ ! -f /falco/falco.ko ]; then
        echo "PGTEST-SKIP evasion under Falco's agent: $(cat /falco-agent-unavailable 2>/dev/null || echo 'no Falco agent in this guest')"
        return
    fi
    if [ -z "$falco_rules" ]; then
        echo "PGTEST-SKIP evasion under Falco's agent: no Falco rules file in this guest"
        return
    fi
    evf_restage
    if ! insmod /falco/falco.ko > $EVF_OUT 2>&1; then
        ev_fail "falco agent: insmod falco.ko" "$(cat $EVF_OUT)"
        return
    fi
    ev_ok "falco agent: insmod falco.ko"
    /bin/pgtrigger serve $TRIG_PORT & evf_server=$!
    /bin/pgtrigger serve-at $EV_PUBLIC_IP 443 & evf_public_server=$!
    rm -f $EVF_ALERTS
    # Falco's stable rules only; every matching rule raised, as Peregrine's
    # run does (rule_matching=all); -v prints its kmod's totals at exit.
    /falco/bin/falco -v -U -c /etc/falco/falco.yaml -r /tests/evasion/falco_rules.yaml \
        -o rule_matching=all -o metrics.enabled=false -o log_stderr=true \
        -o file_output.filename=$EVF_ALERTS > $EVF_OUT 2>&1 &
    evf_pid=$!
    # Under TCG its start (rules, plugin, /proc scan) takes a while.
    if evf_wait pgR-falco-ready 240; then
        ev_ok "falco agent: start with Falco's stable rules"
        for id in $(ls $EVD); do
            sh -c "$(cat $EVD/$id/cmd)" > $EVD/$id/falco-out 2>&1; echo $? > $EVD/$id/falco-rc
        done
        evf_wait pgR-falco-end 120 ||
            ev_fail "falco agent: alerts up to the end marker" "$(tail -n 15 $EVF_OUT)"
    else
        ev_fail "falco agent: start with Falco's stable rules" "$(tail -n 15 $EVF_OUT)"
    fi
    kill -TERM $evf_pid 2>/dev/null
    n=0
    while kill -0 $evf_pid 2>/dev/null && [ $n -lt 60 ]; do sleep 1; n=$((n + 1)); done
    kill -9 $evf_pid 2>/dev/null
    wait $evf_pid
    kill $evf_server $evf_public_server 2>/dev/null
    check "falco agent: rmmod falco" rmmod falco
    [ -s $EVD/read/falco-rc ] || return
    # The same action must have done the same under both agents, or the
    # comparison would be of different things (a stage not restored).
    bad=
    for id in $(ls $EVD); do
        [ "$(cat $EVD/$id/falco-rc)" = "$(cat $EVD/$id/rc)" ] ||
            bad="$bad $id (exit $(cat $EVD/$id/falco-rc), was $(cat $EVD/$id/rc): $(head -n 1 $EVD/$id/falco-out))"
    done
    if [ -z "$bad" ]; then
        ev_ok "falco agent: every variant exits as in Peregrine's run"
    else
        ev_fail "falco agent: every variant exits as in Peregrine's run" "$bad"
    fi
    # Its errors, if any (not its exit summary's rule counts by severity).
    grep -E 'Error|error:' $EVF_OUT | head -n 5 | sed 's/^/    falco: /'
    evf_rule_keys
    evf_parity
    evf_table
}
