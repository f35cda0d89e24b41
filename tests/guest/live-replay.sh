# Sourced by /tests/run-tests.sh: live equals replay. A live run started
# with --syscall-capture has recorded every kernel event it evaluated; its
# capture, replayed with the same rules and options, must raise the very
# same alerts: rule by rule, count by count, each alert's time, output and
# output fields alike. Any field computed one way live and another on
# replay (evt.num, a path, a user name) shows up here as a differing line.

# live_replay_check NAME LIVE_ALERTS CAPTURE PEREGRINE-ARGS...
live_replay_check() {
    lr_name="live = replay: $1"; lr_live=$2; lr_scap=$3; shift 3
    lr_replay=$lr_live.replay
    if [ ! -s "$lr_scap" ] || [ ! -s "$lr_live" ]; then
        fail=$((fail + 1)); echo "PGTEST FAIL $lr_name"
        echo "    no capture or no live alerts: $(ls -l "$lr_scap" "$lr_live" 2>&1 | tr '\n' ';')"
        return
    fi
    rm -f "$lr_replay"
    peregrine -e "$lr_scap" "$@" -o json_output=true -o stdout_output.enabled=false \
        -o file_output.enabled=true -o file_output.filename="$lr_replay" > "$lr_replay.out" 2>&1
    sort "$lr_live" > "$lr_live.sorted"
    sort "$lr_replay" 2>/dev/null > "$lr_replay.sorted"
    lr_rules=$(sed -n 's/.*"rule":"\([^"]*\)".*/\1/p' "$lr_live.sorted" | sort -u | wc -l)
    if cmp -s "$lr_live.sorted" "$lr_replay.sorted"; then
        pass=$((pass + 1))
        echo "PGTEST ok $lr_name ($(wc -l < "$lr_live.sorted") alerts of $lr_rules rules)"
        return
    fi
    fail=$((fail + 1)); echo "PGTEST FAIL $lr_name"
    echo "    alerts: $(wc -l < "$lr_live.sorted") live, $(wc -l < "$lr_replay.sorted") replayed"
    for side in live replay; do
        [ $side = live ] && f=$lr_live.sorted || f=$lr_replay.sorted
        sed -n 's/.*"rule":"\([^"]*\)".*/\1/p' "$f" | sort | uniq -c > /tmp/lr.$side.counts
    done
    diff /tmp/lr.live.counts /tmp/lr.replay.counts | sed -n 's/^\([<>]\)/    count \1/p' | head -n 20
    # The differing alerts themselves: < live only, > replay only.
    diff "$lr_live.sorted" "$lr_replay.sorted" | grep '^[<>]' | cut -c1-400 | head -n 16 | sed 's/^/    /'
    grep -iE 'error|warn' "$lr_replay.out" | head -n 5 | sed 's/^/    replay: /'
}
