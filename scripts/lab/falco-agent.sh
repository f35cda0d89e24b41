# Sourced by scripts/lab/guest.sh: Falco's whole agent (its userspace with
# its own kmod) in the guest, beside Peregrine's. `scripts/kernel-lab bench`
# runs both with the same Falco rules file in the same guest boot;
# `scripts/kernel-lab test` reruns the evasion triggers under it
# (tests/guest/evasion/falco-agent.sh).
#
# Falco is never built here nor kept in the repository: the caller gives
# the paths of a Falco built elsewhere, from one libs commit:
#   FALCO_BIN               the falco binary (dynamically linked: its
#                           libraries are copied into the guest from ldd)
#   FALCO_KO                its kernel module (falco.ko) for the series;
#                           "%s" in the path is replaced by the series
#                           (5.10, 6.1, 6.12), e.g. /cache/kmod-%s/falco.ko
#   FALCO_CONTAINER_PLUGIN  libcontainer.so: Falco's rules require the
#                           container plugin (required_plugin_versions)
#   FALCO_RULES             the rules file both agents run (default: the
#                           kit's upstream-rules/falco_rules.yaml)
# Without Falco, the bench's phase prints one "not measured" line and
# peregrine still runs the rules file; the test prints one PGTEST-SKIP line.
# Expects REPO, WORK.

FALCO_AGENT_WHY=

# Copies the binary, its shared libraries, the plugin, the rules and
# Falco's configuration into the guest root $1 (under /falco, libraries at
# their own paths). Returns non-zero with the reason in FALCO_AGENT_WHY.
lab_falco_agent_files() {
    local root=$1 lib rules=${FALCO_RULES:-$REPO/../shared/conformance/upstream-rules/falco_rules.yaml}
    rm -rf "$root/falco"
    [ -f "$rules" ] || { FALCO_AGENT_WHY="no rules file $rules (FALCO_RULES)"; return 1; }
    # Peregrine runs these rules whether or not Falco is given.
    mkdir -p "$root/falco"
    cp "$rules" "$root/falco/falco_rules.yaml"
    if [ -z "${FALCO_BIN:-}" ]; then
        FALCO_AGENT_WHY="FALCO_BIN is not set (the path of a Falco binary built outside the repository)"
        return 1
    fi
    [ -x "$FALCO_BIN" ] || { FALCO_AGENT_WHY="FALCO_BIN=$FALCO_BIN is not an executable"; return 1; }
    if [ -z "${FALCO_CONTAINER_PLUGIN:-}" ] || [ ! -f "$FALCO_CONTAINER_PLUGIN" ]; then
        FALCO_AGENT_WHY="FALCO_CONTAINER_PLUGIN (libcontainer.so) is not given: Falco's rules require the container plugin"
        return 1
    fi
    mkdir -p "$root/falco/bin" "$root/etc/falco"
    # Symbols would only swell the initramfs.
    strip -o "$root/falco/bin/falco" "$FALCO_BIN" 2>/dev/null || cp "$FALCO_BIN" "$root/falco/bin/falco"
    cp "$FALCO_CONTAINER_PLUGIN" "$root/falco/libcontainer.so"
    # The loader and every library, at the paths the binary asks for: the
    # rest of the guest is static and needs none of them. (ldd heads each
    # file's list with its name and a colon: not a library to copy.)
    for lib in $(ldd "$FALCO_BIN" "$FALCO_CONTAINER_PLUGIN" 2>/dev/null | grep -v ':$' | grep -oE '/[^ :]+\.so[^ :]*' | sort -u); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    # Falco's settings for the bench's phase; the guest fills in nothing
    # else. The test overrides the alerts file, rules and metrics with -o.
    # 8 MiB per CPU (preset 4) as Peregrine's module; drops are counted,
    # not acted on; the kernel counters every second give events and drops.
    cat > "$root/etc/falco/falco.yaml" <<'EOF'
rules_files: [/falco/falco_rules.yaml]
load_plugins: [container]
plugins:
  - name: container
    library_path: /falco/libcontainer.so
    init_config:
      label_max_len: 100
      with_size: false
engine:
  kind: kmod
  kmod:
    buf_size_preset: 4
    drop_failed_exit: false
json_output: true
stdout_output:
  enabled: false
file_output:
  enabled: true
  keep_alive: true
  filename: /tmp/peregrine-bench/falco-alerts.json
syscall_event_drops:
  actions: [ignore]
metrics:
  enabled: true
  interval: 1s
  output_rule: false
  output_file: /tmp/peregrine-bench/falco-metrics.json
  kernel_event_counters_enabled: true
  resource_utilization_enabled: false
  state_counters_enabled: false
  rules_counters_enabled: false
  libbpf_stats_enabled: false
  include_empty_values: true
EOF
}

# The module for series $1 into the guest root $2 as /falco/falco.ko.
lab_falco_agent_ko() {
    local s=$1 root=$2 ko
    rm -f "$root/falco/falco.ko"
    [ -n "${FALCO_KO:-}" ] || { FALCO_AGENT_WHY="FALCO_KO is not set (Falco's falco.ko for each kernel; %s = series)"; return 1; }
    ko=${FALCO_KO//%s/$s}
    [ -f "$ko" ] || { FALCO_AGENT_WHY="no Falco module for $s: $ko"; return 1; }
    cp "$ko" "$root/falco/falco.ko"
}

# The module for series $1 into the guest root $2, or the reason why not
# (given as $3, from lab_falco_agent_files, or the module's own) in
# $2/falco-agent-unavailable, which the guest prints.
lab_falco_agent_series() {
    local s=$1 root=$2 why=${3:-}
    rm -f "$root/falco-agent-unavailable"
    [ -z "$why" ] && lab_falco_agent_ko "$s" "$root" && return 0
    echo "${why:-$FALCO_AGENT_WHY}" > "$root/falco-agent-unavailable"
    return 1
}
