//! Every key Falco's falco.yaml defines, from Falco 0.36 to the current
//! one (its config schema and each release's falco.yaml), and what
//! Peregrine does with it. A Falco user's falco.yaml loads as it is:
//! keys Peregrine implements are decoded, keys that cannot apply (a
//! driver or a library Peregrine does not have) are dropped with one
//! warning naming them. docs/falco-yaml.md is this table, rendered.

/// What Peregrine does with a Falco key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Read and acted on as Falco does; the text says how, where it helps.
    Implemented(&'static str),
    /// Read and checked, but with no effect yet; the text says why.
    Accepted(&'static str),
    /// Cannot apply to Peregrine: dropped with one warning; the text says why.
    Ignored(&'static str),
}

/// One key, as a dotted path; `[]` stands for the items of a list.
#[derive(Debug, Clone, Copy)]
pub struct FalcoKey {
    pub path: &'static str,
    pub support: Support,
}

use Support::{Accepted, Ignored, Implemented};

const fn key(path: &'static str, support: Support) -> FalcoKey {
    FalcoKey { path, support }
}

const NO_PLUGIN_HOSTINFO: &str =
    "plugin sources get no host threads (Falco reads /proc for them when true); plugins on syscall events read the thread table either way";
const NO_BPF: &str = "Peregrine has no eBPF driver; events come from its kernel module";
const NO_GVISOR: &str = "Peregrine has no gVisor engine";
const NO_SOCKET_ENGINE: &str =
    "an engine without a socket API: its containers are known by their cgroup id alone";
const NO_LIBS: &str = "Peregrine does not use libsinsp/libscap; its own state has no such knob";

/// The table, in falco.yaml's order of sections.
pub const FALCO_KEYS: &[FalcoKey] = &[
    key("config_files", Implemented("files and folders (their files in name order) merged in order by strategy append, override or add-only, before -o")),
    key("config_files[].path", Implemented("")),
    key("config_files[].strategy", Implemented("append (default), override or add-only")),
    key("watch_config_files", Implemented("inotify on the folders of the config, its drop-ins and the rules files at start; a change reloads as SIGHUP")),
    key("rules_files", Implemented("files or folders, in order; -r replaces them")),
    key("rules_file", Implemented("older name of rules_files")),
    key("rule_files", Implemented("alias of rules_files in Falco's schema")),
    key("rules", Implemented("enable/disable by rule name wildcard or tag, in order; also -o rules[].disable.rule=...")),
    key("rules[].enable", Implemented("")),
    key("rules[].enable.rule", Implemented("Falco's wildcard: * matches any text")),
    key("rules[].enable.tag", Implemented("")),
    key("rules[].disable", Implemented("")),
    key("rules[].disable.rule", Implemented("Falco's wildcard: * matches any text")),
    key("rules[].disable.tag", Implemented("")),
    key("engine", Implemented("")),
    key("engine.kind", Implemented("kmod and replay; modern_ebpf/ebpf/gvisor run the kernel module with a warning; nodriver runs no syscall source")),
    key("engine.kmod", Implemented("")),
    key("engine.kmod.buf_size_preset", Accepted("ring size is set when the module loads (peregrine driver load --buffer-size)")),
    key("engine.kmod.drop_failed_exit", Accepted("the module keeps failed syscalls; rules filter on evt.res")),
    key("engine.modern_ebpf", Ignored(NO_BPF)),
    key("engine.modern_ebpf.cpus_for_each_buffer", Ignored(NO_BPF)),
    key("engine.modern_ebpf.buf_size_preset", Ignored(NO_BPF)),
    key("engine.modern_ebpf.drop_failed_exit", Ignored(NO_BPF)),
    key("engine.modern_ebpf.disable_iterators", Ignored(NO_BPF)),
    key("engine.ebpf", Ignored(NO_BPF)),
    key("engine.ebpf.probe", Ignored(NO_BPF)),
    key("engine.ebpf.buf_size_preset", Ignored(NO_BPF)),
    key("engine.ebpf.drop_failed_exit", Ignored(NO_BPF)),
    key("engine.gvisor", Ignored(NO_GVISOR)),
    key("engine.gvisor.config", Ignored(NO_GVISOR)),
    key("engine.gvisor.root", Ignored(NO_GVISOR)),
    key("engine.replay", Implemented("")),
    key("engine.replay.capture_file", Implemented("with engine.kind=replay, as -e")),
    key("capture", Implemented("")),
    key("capture.enabled", Implemented("")),
    key("capture.path_prefix", Implemented("files PREFIX_<time>_<event number>.scap, as Falco names them")),
    key("capture.mode", Implemented("rules (rules with capture: true) or all_rules")),
    key("capture.default_duration", Implemented("milliseconds; later alerts extend a running capture")),
    key("capture.max_file_size_mb", Implemented("exact (files are not compressed); an internal alert says when a capture stops for it")),
    key("load_plugins", Implemented("the plugins to load, in order; absent, every entry of plugins")),
    key("plugins", Implemented("loaded through the plugin C API (sourcing, extraction on plugin and syscall events, parsing, async events into plugin sources and the live syscall source, capture listening with routines); a field overlapping one its source has stops the start as in Falco (the k8saudit, json and container libraries excepted: the built-in fields win); tables plugins add are shared with the others; Peregrine's thread table as libsinsp's 'threads' (static fields, args/env/cgroups/file_descriptors, fields plugins add) to extractors and parsers of syscall events; a k8saudit entry whose open_params is a file is also read as --k8s-audit-file")),
    key("plugins[].name", Implemented("")),
    key("plugins[].library_path", Implemented("")),
    key("plugins[].init_config", Implemented("")),
    key("plugins[].open_params", Implemented("")),
    key("plugins_hostinfo", Ignored(NO_PLUGIN_HOSTINFO)),
    key("time_format_iso_8601", Implemented("")),
    key("buffer_format_base64", Implemented("")),
    key("priority", Implemented("")),
    key("json_output", Implemented("also -L/-l, -V")),
    key("json_include_output_property", Implemented("")),
    key("json_include_message_property", Implemented("")),
    key("json_include_output_fields_property", Implemented("")),
    key("json_include_tags_property", Implemented("")),
    key("buffered_outputs", Implemented("")),
    key("rule_matching", Implemented("first or all; all: every matching rule fires, in load order")),
    key("outputs_queue", Implemented("")),
    key("outputs_queue.capacity", Implemented("0: unbounded")),
    key("append_output", Implemented("")),
    key("append_output[].match", Implemented("")),
    key("append_output[].match.rule", Implemented("")),
    key("append_output[].match.source", Implemented("")),
    key("append_output[].match.tags", Implemented("the rule must have all of them")),
    key("append_output[].extra_output", Implemented("")),
    key("append_output[].extra_fields", Implemented("a field name, or {name: format}")),
    key("append_output[].suggested_output", Implemented("adds the container plugin's suggested fields to syscall rules (container_id=%container.id ... k8s_ns_name=%k8s.ns.name), then static_NAME=VALUE for each static field")),
    key("static_fields", Implemented("in conditions and outputs (static.NAME, suggested_output); any scalar value reads as text, as in Falco")),
    key("stdout_output", Implemented("")),
    key("stdout_output.enabled", Implemented("")),
    key("syslog_output", Implemented("")),
    key("syslog_output.enabled", Implemented("")),
    key("file_output", Implemented("")),
    key("file_output.enabled", Implemented("")),
    key("file_output.keep_alive", Implemented("")),
    key("file_output.filename", Implemented("")),
    key("http_output", Implemented("")),
    key("http_output.enabled", Implemented("")),
    key("http_output.url", Implemented("")),
    key("http_output.user_agent", Implemented("")),
    key("http_output.insecure", Implemented("")),
    key("http_output.ca_cert", Implemented("")),
    key("http_output.ca_bundle", Implemented("")),
    key("http_output.ca_path", Implemented("")),
    key("http_output.mtls", Implemented("")),
    key("http_output.client_cert", Implemented("")),
    key("http_output.client_key", Implemented("")),
    key("http_output.echo", Implemented("the server's answer is written to stdout, as curl writes it")),
    key("http_output.compress_uploads", Accepted("in Falco it asks the server to compress its answers (curl's TE: gzip), not the uploads; Peregrine always asks for gzip answers (Accept-Encoding) and reads them")),
    key("http_output.keep_alive", Implemented("connections are always reused")),
    key("http_output.max_consecutive_timeouts", Implemented("an alert is tried up to this many times more, within output_timeout; Peregrine also retries refused connections and error answers, which Falco drops")),
    key("program_output", Implemented("")),
    key("program_output.enabled", Implemented("")),
    key("program_output.keep_alive", Implemented("")),
    key("program_output.program", Implemented("")),
    key("grpc", Implemented("removed from Falco 0.44; kept by Peregrine")),
    key("grpc.enabled", Implemented("")),
    key("grpc.bind_address", Implemented("")),
    key("grpc.threadiness", Implemented("")),
    key("grpc.private_key", Implemented("")),
    key("grpc.cert_chain", Implemented("")),
    key("grpc.root_certs", Implemented("")),
    key("grpc_output", Implemented("")),
    key("grpc_output.enabled", Implemented("")),
    key("webserver", Implemented("")),
    key("webserver.enabled", Implemented("")),
    key("webserver.threadiness", Implemented("")),
    key("webserver.listen_port", Implemented("")),
    key("webserver.listen_address", Implemented("")),
    key("webserver.k8s_healthz_endpoint", Implemented("")),
    key("webserver.prometheus_metrics_enabled", Implemented("")),
    key("webserver.ssl_enabled", Implemented("")),
    key("webserver.ssl_certificate", Implemented("")),
    key("log_stderr", Implemented("")),
    key("log_syslog", Implemented("")),
    key("log_level", Implemented("")),
    key("libs_logger", Ignored(NO_LIBS)),
    key("libs_logger.enabled", Ignored(NO_LIBS)),
    key("libs_logger.severity", Ignored(NO_LIBS)),
    key("output_timeout", Implemented("per output and alert: a slower delivery is reported, and a program or HTTP receiver given up on for that alert")),
    key("outputs", Ignored("removed in Falco 0.37: outputs are no longer rate limited")),
    key("outputs.rate", Ignored("removed in Falco 0.37: outputs are no longer rate limited")),
    key("outputs.max_burst", Ignored("removed in Falco 0.37: outputs are no longer rate limited")),
    key("syscall_event_timeouts", Accepted("the live loop waits on the rings without a count of timeouts")),
    key("syscall_event_timeouts.max_consecutives", Accepted("the live loop waits on the rings without a count of timeouts")),
    key("syscall_event_drops", Implemented("")),
    key("syscall_event_drops.threshold", Implemented("")),
    key("syscall_event_drops.actions", Implemented("")),
    key("syscall_event_drops.rate", Implemented("")),
    key("syscall_event_drops.max_burst", Implemented("")),
    key("syscall_event_drops.simulate_drops", Implemented("")),
    key("metrics", Implemented("")),
    key("metrics.enabled", Implemented("")),
    key("metrics.interval", Implemented("")),
    key("metrics.output_rule", Implemented("the alert Falco internal: metrics snapshot with Falco's falco.*/scap.* fields")),
    key("metrics.output_file", Implemented("each snapshot appended as a JSON line {sample, output_fields}")),
    key("metrics.rules_counters_enabled", Implemented("falcosecurity_falco_rules_matches_total and falco.rules.*")),
    key("metrics.resource_utilization_enabled", Implemented("CPU, memory, host figures as libsinsp reads them")),
    key("metrics.state_counters_enabled", Implemented("threads in the state (n_threads); libsinsp's lookup counters have no counterpart")),
    key("metrics.kernel_event_counters_enabled", Implemented("n_evts, n_drops*, n_preemptions; buffer drops as one series, drop=all")),
    key("metrics.kernel_event_counters_per_cpu_enabled", Implemented("n_evts_cpu_total and n_drops_cpu_total with a cpu label, from the module's rings")),
    key("metrics.kernel_iter_event_counters_enabled", Ignored(NO_BPF)),
    key("metrics.libbpf_stats_enabled", Ignored(NO_BPF)),
    key("metrics.plugins_metrics_enabled", Implemented("falcosecurity_plugins_* and plugins.<plugin>.<metric>, from each plugin's get_metrics")),
    key("metrics.jemalloc_stats_enabled", Ignored("Peregrine does not use jemalloc")),
    key("metrics.convert_memory_to_mb", Implemented("in the snapshot alert and file; /metrics has bytes, as Falco")),
    key("metrics.include_empty_values", Implemented("in the snapshot alert and file")),
    key("base_syscalls", Implemented("")),
    key("base_syscalls.custom_set", Implemented("")),
    key("base_syscalls.repair", Implemented("")),
    key("base_syscalls.all", Implemented("")),
    key("falco_libs", Implemented("")),
    key("falco_libs.thread_table_size", Implemented("bounds the thread table; when full the least recently seen threads go, counted in /metrics")),
    key("falco_libs.thread_table_auto_purging_interval_s", Implemented("live: how often idle threads are checked against /proc")),
    key("falco_libs.thread_table_auto_purging_thread_timeout_s", Implemented("live: idle this long, a thread gone from /proc is purged")),
    key("falco_libs.snaplen", Implemented("as driver.snaplen")),
    key("container_engines", Implemented("Falco 0.40's engines: used when no container plugin entry is in plugins, or when load_plugins leaves it out (with one loaded, it is ignored and warned about, as Falco 0.41 and later ignore it)")),
    key("container_engines.docker", Implemented("")),
    key("container_engines.docker.enabled", Implemented("the docker engine at /var/run/docker.sock (under HOST_ROOT)")),
    key("container_engines.cri", Implemented("")),
    key("container_engines.cri.enabled", Implemented("the CRI at cri.sockets, and containerd's own API at /run/host-containerd/containerd.sock, as Falco 0.40")),
    key("container_engines.cri.sockets", Implemented("the CRI sockets; none given, the container plugin's defaults (containerd, CRI-O, k3s, bottlerocket)")),
    key("container_engines.cri.disable_async", Accepted("lookups are always asynchronous: Peregrine never waits on a runtime on the event path")),
    key("container_engines.podman", Implemented("")),
    key("container_engines.podman.enabled", Implemented("podman at root's socket and each user's")),
    key("container_engines.lxc", Accepted(NO_SOCKET_ENGINE)),
    key("container_engines.lxc.enabled", Accepted(NO_SOCKET_ENGINE)),
    key("container_engines.libvirt_lxc", Accepted(NO_SOCKET_ENGINE)),
    key("container_engines.libvirt_lxc.enabled", Accepted(NO_SOCKET_ENGINE)),
    key("container_engines.bpm", Accepted(NO_SOCKET_ENGINE)),
    key("container_engines.bpm.enabled", Accepted(NO_SOCKET_ENGINE)),
    key("metadata_download", Ignored("Kubernetes metadata is not downloaded")),
    key("metadata_download.max_mb", Ignored("Kubernetes metadata is not downloaded")),
    key("metadata_download.chunk_wait_us", Ignored("Kubernetes metadata is not downloaded")),
    key("metadata_download.watch_freq_sec", Ignored("Kubernetes metadata is not downloaded")),
    key("modern_bpf", Ignored(NO_BPF)),
    key("modern_bpf.cpus_for_each_syscall_buffer", Ignored(NO_BPF)),
    key("syscall_buf_size_preset", Accepted("ring size is set when the module loads (peregrine driver load --buffer-size)")),
    key("syscall_drop_failed_exit", Accepted("the module keeps failed syscalls; rules filter on evt.res")),
];

/// The entry for `path` (`[]` for list items), if Falco defines it.
pub fn find(path: &str) -> Option<&'static FalcoKey> {
    FALCO_KEYS.iter().find(|k| k.path == path)
}

/// docs/falco-yaml.md's table: every key, what Peregrine does, and why.
pub fn markdown_table() -> String {
    let mut text = String::from("| Falco key | Peregrine | Notes |\n|---|---|---|\n");
    for key in FALCO_KEYS {
        let (what, note) = match key.support {
            Implemented(note) => ("implemented", note),
            Accepted(note) => ("accepted, no effect", note),
            Ignored(note) => ("ignored, warns", note),
        };
        text.push_str(&format!("| `{}` | {what} | {note} |\n", key.path));
    }
    text
}
