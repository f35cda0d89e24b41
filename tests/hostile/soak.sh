#!/usr/bin/env bash
# Soak: one peregrine under a bounded mix of what tests/tests/hostile_*.rs
# does one at a time: audit events posted in batches, SIGHUP alternating
# good rules and a nesting bomb, SIGUSR1, a program output that never
# reads, and capture replays beside it. Loopback only; stops by itself.
#
#   tests/hostile/soak.sh [SECONDS] [PEREGRINE]
#
# Prints alerts expected/received, the RSS high-water mark, threads and
# fds at the end.
set -euo pipefail

seconds=${1:-60}
bin=${2:-target/debug/peregrine}
command -v curl >/dev/null || { echo "SKIP: soak needs curl"; exit 0; }
[ -x "$bin" ] || { echo "no peregrine binary at $bin (cargo build -p peregrine)"; exit 1; }

work=$(mktemp -d /tmp/peregrine-soak.XXXXXX)
trap 'kill -KILL "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

good_rules() {
  cat > "$work/rules.yaml" <<'YAML'
- rule: Soak Create
  desc: soak
  condition: ka.verb = create
  output: soak created (pod=%ka.target.name)
  priority: WARNING
  source: k8s_audit
YAML
}
bomb_rules() {
  local open close
  open=$(printf '(%.0s' $(seq 500)); close=$(printf ')%.0s' $(seq 500))
  printf -- '- rule: Soak Create\n  desc: bomb\n  condition: %ska.verb = create%s\n  output: bomb\n  priority: WARNING\n  source: k8s_audit\n' \
    "$open" "$close" > "$work/rules.yaml"
}
good_rules

"$bin" -r "$work/rules.yaml" --disable-source syscall \
  -o k8s_audit.enabled=true -o k8s_audit.listen_address=127.0.0.1 -o k8s_audit.listen_port=0 \
  -o webserver.enabled=true -o webserver.listen_address=127.0.0.1 -o webserver.listen_port=0 \
  -o stdout_output.enabled=false \
  -o file_output.enabled=true -o file_output.keep_alive=true -o "file_output.filename=$work/alerts.txt" \
  -o program_output.enabled=true -o program_output.keep_alive=true \
  -o "program_output.program=sleep 100000" -o output_timeout=200 \
  2> "$work/stderr.log" &
pid=$!

for _ in $(seq 600); do
  grep -q "webhook listening on" "$work/stderr.log" 2>/dev/null && break
  sleep 0.1
done
webhook=$(sed -n 's/.*webhook listening on \([^ ]*\).*/\1/p' "$work/stderr.log" | head -1)
[ -n "$webhook" ] || { echo "peregrine did not start"; cat "$work/stderr.log"; exit 1; }

event() {
  printf '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"soak-%s","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods","verb":"create","user":{"username":"soak"},"objectRef":{"resource":"pods","namespace":"default","name":"pod-%s","apiVersion":"v1"},"responseStatus":{"code":201},"requestReceivedTimestamp":"2026-11-25T10:00:00.000000Z","stageTimestamp":"2026-11-25T10:00:00.100000Z"}' "$1" "$1"
}

capture=""
for c in ../shared/conformance/captures/*.scap; do [ -f "$c" ] && capture=$c && break; done

expected=0
round=0
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
  round=$((round + 1))
  batch=""
  for i in $(seq 50); do
    n=$((round * 1000 + i))
    batch+="${batch:+,}$(event $n)"
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --max-time 10 -d "{\"kind\":\"EventList\",\"apiVersion\":\"audit.k8s.io/v1\",\"items\":[$batch]}" "http://$webhook")
  [ "$code" = 200 ] && expected=$((expected + 50))
  case $((round % 10)) in
    3) bomb_rules; kill -HUP "$pid" ;;
    6) good_rules; kill -HUP "$pid" ;;
    8) kill -USR1 "$pid" ;;
  esac
  if [ -n "$capture" ] && [ $((round % 20)) = 0 ]; then
    timeout 60 "$bin" -e "$capture" -o stdout_output.enabled=false >/dev/null 2>&1 || true
  fi
  sleep 0.2
done

sleep 2
hwm=$(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")
threads=$(awk '/Threads/ {print $2}' "/proc/$pid/status")
fds=$(ls "/proc/$pid/fd" | wc -l)
stop_start=$(date +%s%N)
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
stopped_ms=$(( ($(date +%s%N) - stop_start) / 1000000 ))
received=$(grep -c "soak created" "$work/alerts.txt" || true)
echo "rounds:            $round (${seconds}s)"
echo "alerts expected:   $expected"
echo "alerts received:   $received (file output)"
echo "RSS high-water:    $hwm"
echo "threads at end:    $threads"
echo "fds at end:        $fds"
echo "stop took:         ${stopped_ms} ms (exit status $status)"
echo "reloads refused:   $(grep -c 'did not load' "$work/stderr.log" || true)"
[ "$status" = 0 ] && [ "$received" = "$expected" ]
