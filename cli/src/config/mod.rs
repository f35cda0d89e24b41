//! The configuration file, in the shape of falco.yaml, with `-o key=value`
//! overrides. Unknown keys are warned about with their full path; a value
//! of the wrong form is an error naming the key and the form expected.

pub mod capture;
pub mod duration;

use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_yaml::{Mapping, Value as Yaml};

use peregrine_engine::bounded_read::{read_text, BoundedReadError};

use crate::alert::{parse_priority, Priority};

/// The largest config file read (Falco's falco.yaml is about 60 KB).
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 << 20;

pub mod falco_keys;
mod includes;
mod overrides;
pub mod schema;
mod selection;
pub mod watch;

use falco_keys::Support;
use overrides::{apply_override, untag};
pub use selection::{
    AppendMatch, AppendOutput, Engine, EngineKind, ExtraField, FalcoLibs, Replay, RuleMatching,
    RuleSelection,
};

/// Queue bound per output channel when the config does not set one.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: BoundedReadError,
    },
    #[error("config file {path} is not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{origin}: key '{key}': {message}")]
    Value {
        origin: String,
        key: String,
        message: String,
    },
    #[error("-o {text}: {message}")]
    Override { text: String, message: String },
}

/// Everything Peregrine reads from its config. Defaults are Falco's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    #[serde(
        alias = "rules_files",
        alias = "rule_files",
        deserialize_with = "one_or_many"
    )]
    pub rules_file: Vec<PathBuf>,
    #[serde(deserialize_with = "priority")]
    pub priority: Priority,
    pub json_output: bool,
    pub json_include_output_property: bool,
    pub json_include_tags_property: bool,
    pub json_include_message_property: bool,
    pub json_include_output_fields_property: bool,
    pub time_format_iso_8601: bool,
    pub buffer_format_base64: bool,
    pub buffered_outputs: bool,
    /// Falco's `output_timeout`, in milliseconds: how long one output may
    /// take over one alert before it is reported (and a program or HTTP
    /// receiver that takes longer is given up on for that alert).
    #[serde(deserialize_with = "output_timeout_ms")]
    pub output_timeout: u64,
    pub outputs_queue: OutputsQueue,
    /// Whether an event stops at the first rule it matches.
    pub rule_matching: RuleMatching,
    /// Falco's `rules:` list: rules enabled and disabled in order.
    pub rules: Vec<RuleSelection>,
    pub append_output: Vec<AppendOutput>,
    /// Name to value; Falco keeps them sorted by name.
    pub static_fields: std::collections::BTreeMap<String, String>,
    pub engine: Engine,
    /// Capture on alert.
    pub capture: capture::Capture,
    /// Reload when the config, a drop-in or a rules file changes.
    pub watch_config_files: bool,
    pub falco_libs: FalcoLibs,
    pub stdout_output: Enabled,
    pub file_output: FileOutput,
    pub syslog_output: Enabled,
    pub program_output: ProgramOutput,
    pub http_output: HttpOutput,
    pub nats_output: NatsOutput,
    pub kafka_output: KafkaOutput,
    pub grpc: Grpc,
    pub grpc_output: Enabled,
    pub syscall_event_drops: SyscallEventDrops,
    pub metrics: Metrics,
    pub webserver: Webserver,
    pub k8s_audit: K8sAudit,
    pub driver: DriverSettings,
    pub base_syscalls: BaseSyscalls,
    pub log_stderr: bool,
    pub log_syslog: bool,
    pub log_level: String,
    /// Falco's plugin list, read by `sources::plugins` (name, library_path,
    /// init_config, open_params).
    pub plugins: Vec<Yaml>,
    /// Which of `plugins` load; absent, all of them (Falco's rule).
    pub load_plugins: Option<Vec<String>>,
    /// Falco 0.40's container engines, used without a container plugin entry.
    pub container_engines: Option<crate::containers::LegacyEngines>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rules_file: vec![PathBuf::from("/etc/peregrine/rules.d")],
            priority: Priority::Debug,
            json_output: false,
            json_include_output_property: true,
            json_include_tags_property: true,
            json_include_message_property: false,
            json_include_output_fields_property: true,
            time_format_iso_8601: false,
            buffer_format_base64: false,
            buffered_outputs: false,
            output_timeout: 2_000,
            outputs_queue: OutputsQueue::default(),
            rule_matching: RuleMatching::First,
            rules: Vec::new(),
            append_output: Vec::new(),
            static_fields: Default::default(),
            engine: Engine::default(),
            capture: capture::Capture::default(),
            watch_config_files: true,
            falco_libs: FalcoLibs::default(),
            stdout_output: Enabled { enabled: true },
            file_output: FileOutput::default(),
            syslog_output: Enabled { enabled: false },
            program_output: ProgramOutput::default(),
            http_output: HttpOutput::default(),
            nats_output: NatsOutput::default(),
            kafka_output: KafkaOutput::default(),
            grpc: Grpc::default(),
            grpc_output: Enabled { enabled: false },
            syscall_event_drops: SyscallEventDrops::default(),
            metrics: Metrics::default(),
            webserver: Webserver::default(),
            k8s_audit: K8sAudit::default(),
            driver: DriverSettings::default(),
            base_syscalls: BaseSyscalls::default(),
            log_stderr: true,
            log_syslog: false,
            log_level: "info".into(),
            plugins: Vec::new(),
            load_plugins: None,
            container_engines: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Enabled {
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputsQueue {
    /// Alerts a channel may have queued; 0 means unbounded.
    pub capacity: usize,
}

impl Default for OutputsQueue {
    fn default() -> Self {
        OutputsQueue {
            capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileOutput {
    pub enabled: bool,
    pub keep_alive: bool,
    pub filename: PathBuf,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProgramOutput {
    pub enabled: bool,
    pub keep_alive: bool,
    pub program: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpOutput {
    pub enabled: bool,
    pub url: String,
    pub user_agent: String,
    pub insecure: bool,
    pub ca_cert: String,
    pub ca_bundle: String,
    pub ca_path: String,
    pub mtls: bool,
    pub client_cert: String,
    pub client_key: String,
    pub keep_alive: bool,
    /// Write the receiver's answers to stdout (curl's default, which Falco
    /// turns off unless asked).
    pub echo: bool,
    /// Attempts after the first that one alert may take (Falco's default
    /// 5; Falco keeps the low 8 bits, so does Peregrine).
    pub max_consecutive_timeouts: u64,
}

impl Default for HttpOutput {
    fn default() -> Self {
        HttpOutput {
            enabled: false,
            url: String::new(),
            user_agent: String::new(),
            insecure: false,
            ca_cert: String::new(),
            ca_bundle: String::new(),
            ca_path: String::new(),
            mtls: false,
            client_cert: String::new(),
            client_key: String::new(),
            keep_alive: false,
            echo: false,
            max_consecutive_timeouts: 5,
        }
    }
}

/// Peregrine's own output (Falco has none like it): alerts onto a NATS
/// JetStream stream through an on-disk spool, so that none is lost to a
/// cluster outage or a restart. See `outputs::nats`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsOutput {
    pub enabled: bool,
    pub servers: Vec<String>,
    /// `{hostname}`, `{priority}`, `{rule}` and `{source}` are filled in.
    pub subject: String,
    pub stream: String,
    pub create_stream: bool,
    pub stream_replicas: usize,
    pub duplicate_window_s: u64,
    pub spool_dir: PathBuf,
    pub spool_max_mb: u64,
    pub ack_timeout_ms: u64,
    pub shutdown_timeout_ms: u64,
    /// A `.creds` file (JWT and NKey seed), as `nats` tools read it.
    pub credentials: String,
    pub token: String,
    pub user: String,
    pub password: String,
    pub tls_ca: String,
    pub tls_cert: String,
    pub tls_key: String,
}

impl Default for NatsOutput {
    fn default() -> Self {
        NatsOutput {
            enabled: false,
            servers: vec!["nats://127.0.0.1:4222".into()],
            subject: "peregrine.alerts.{hostname}.{priority}".into(),
            stream: "PEREGRINE_ALERTS".into(),
            create_stream: true,
            stream_replicas: 1,
            // Long enough to cover a restart that resends its spool.
            duplicate_window_s: 600,
            spool_dir: PathBuf::from("/var/lib/peregrine/nats-spool"),
            spool_max_mb: 256,
            ack_timeout_ms: 5000,
            shutdown_timeout_ms: 5000,
            credentials: String::new(),
            token: String::new(),
            user: String::new(),
            password: String::new(),
            tls_ca: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

/// Peregrine's own output: alerts onto a Kafka topic through an on-disk
/// spool, each stored once. See `outputs::kafka`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaOutput {
    pub enabled: bool,
    /// `host:port` of the bootstrap brokers.
    pub brokers: Vec<String>,
    pub topic: String,
    pub create_topic: bool,
    pub topic_partitions: u32,
    pub topic_replicas: u16,
    pub spool_dir: PathBuf,
    pub spool_max_mb: u64,
    /// Connecting and each metadata request; a produce gets the broker's
    /// own time (see `outputs::kafka`).
    pub ack_timeout_ms: u64,
    pub shutdown_timeout_ms: u64,
    /// Empty (none), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
    pub sasl_mechanism: String,
    pub user: String,
    pub password: String,
    pub tls_ca: String,
    pub tls_cert: String,
    pub tls_key: String,
}

impl Default for KafkaOutput {
    fn default() -> Self {
        KafkaOutput {
            enabled: false,
            brokers: vec!["127.0.0.1:9092".into()],
            topic: "peregrine-alerts".into(),
            create_topic: true,
            topic_partitions: 1,
            topic_replicas: 1,
            spool_dir: PathBuf::from("/var/lib/peregrine/kafka-spool"),
            spool_max_mb: 256,
            ack_timeout_ms: 5000,
            shutdown_timeout_ms: 5000,
            sasl_mechanism: String::new(),
            user: String::new(),
            password: String::new(),
            tls_ca: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

impl KafkaOutput {
    /// The first key whose value cannot work, with why.
    fn problem(&self) -> Option<(&'static str, &'static str)> {
        let is_topic_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if self.brokers.is_empty() {
            Some((
                "kafka_output.brokers",
                "kafka_output is enabled but names no broker",
            ))
        } else if !self.brokers.iter().all(|b| {
            b.rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        }) {
            Some(("kafka_output.brokers", "each broker is host:port"))
        } else if self.topic.is_empty()
            || self.topic.len() > 249
            || !self.topic.chars().all(is_topic_char)
            || self.topic == "."
            || self.topic == ".."
        {
            Some((
                "kafka_output.topic",
                "a Kafka topic name: 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'",
            ))
        } else if self.spool_dir.as_os_str().is_empty() {
            Some((
                "kafka_output.spool_dir",
                "kafka_output is enabled but names no spool folder",
            ))
        } else if self.spool_max_mb == 0 || self.spool_max_mb > 1 << 20 {
            Some((
                "kafka_output.spool_max_mb",
                "must be from 1 to 1048576 (MiB)",
            ))
        } else if self.topic_partitions == 0 || self.topic_replicas == 0 {
            Some((
                "kafka_output.topic_partitions",
                "the topic's partitions and replicas are at least 1",
            ))
        } else if !["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
            .contains(&self.sasl_mechanism.to_ascii_uppercase().as_str())
        {
            Some((
                "kafka_output.sasl_mechanism",
                "one of PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, or empty",
            ))
        } else if !self.sasl_mechanism.is_empty() && self.user.is_empty() {
            Some(("kafka_output.user", "a SASL mechanism needs a user"))
        } else if self.tls_cert.is_empty() != self.tls_key.is_empty() {
            Some((
                "kafka_output.tls_cert",
                "a client certificate and its key go together",
            ))
        } else if !self.tls_cert.is_empty() && self.tls_ca.is_empty() {
            Some((
                "kafka_output.tls_ca",
                "TLS needs the CA that signs the brokers",
            ))
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grpc {
    pub enabled: bool,
    pub bind_address: String,
    pub threadiness: u32,
    pub private_key: String,
    pub cert_chain: String,
    pub root_certs: String,
}

impl Default for Grpc {
    fn default() -> Self {
        Grpc {
            enabled: false,
            bind_address: "unix:///run/peregrine/peregrine.sock".into(),
            threadiness: 0,
            private_key: String::new(),
            cert_chain: String::new(),
            root_certs: String::new(),
        }
    }
}

/// What to do when the kernel reports dropped events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropAction {
    Ignore,
    Log,
    Alert,
    Exit,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyscallEventDrops {
    /// Fraction (0..=1) of events dropped in a period that triggers the
    /// actions.
    #[serde(deserialize_with = "fraction")]
    pub threshold: f64,
    pub actions: Vec<DropAction>,
    /// Token bucket of the actions: tokens per second and bucket size.
    pub rate: f64,
    pub max_burst: u32,
    /// Pretend the driver dropped events: for testing the actions.
    pub simulate_drops: bool,
}

impl Default for SyscallEventDrops {
    fn default() -> Self {
        SyscallEventDrops {
            threshold: 0.1,
            actions: vec![DropAction::Log, DropAction::Alert],
            rate: 0.03333,
            max_burst: 1,
            simulate_drops: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    pub enabled: bool,
    /// Seconds between two stats reports (Falco's `interval`, e.g. "15m",
    /// is accepted as a duration string).
    #[serde(deserialize_with = "duration_secs")]
    pub interval: u64,
    /// Whether the stats go out as an alert (Falco's metrics snapshot rule).
    pub output_rule: bool,
    /// Each snapshot is also appended to this file as a JSON line.
    pub output_file: String,
    pub rules_counters_enabled: bool,
    pub resource_utilization_enabled: bool,
    pub state_counters_enabled: bool,
    pub kernel_event_counters_enabled: bool,
    pub kernel_event_counters_per_cpu_enabled: bool,
    /// The metrics loaded plugins report (`get_metrics`).
    pub plugins_metrics_enabled: bool,
    pub convert_memory_to_mb: bool,
    pub include_empty_values: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            enabled: false,
            interval: 900,
            output_rule: true,
            output_file: String::new(),
            rules_counters_enabled: true,
            resource_utilization_enabled: true,
            state_counters_enabled: true,
            kernel_event_counters_enabled: true,
            kernel_event_counters_per_cpu_enabled: false,
            plugins_metrics_enabled: true,
            convert_memory_to_mb: true,
            include_empty_values: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webserver {
    pub enabled: bool,
    pub listen_address: String,
    pub listen_port: u16,
    pub k8s_healthz_endpoint: String,
    pub prometheus_metrics_enabled: bool,
    pub ssl_enabled: bool,
    /// With `ssl_enabled`: one PEM file holding the private key and the
    /// certificate chain, as Falco reads it.
    pub ssl_certificate: String,
    pub threadiness: u32,
    /// Peregrine's own: the web console at `/` (docs/console.md).
    pub console: bool,
    /// Peregrine's own: the token the console asks for. Without one it
    /// answers loopback clients only. `PEREGRINE_CONSOLE_TOKEN` in the
    /// environment takes precedence.
    pub console_token: String,
    /// Peregrine's own: with `ssl_enabled`, a PEM file of CA certificates;
    /// a client showing a certificate they signed may use the console.
    pub console_client_ca: String,
}

impl Default for Webserver {
    fn default() -> Self {
        Webserver {
            enabled: false,
            listen_address: "0.0.0.0".into(),
            listen_port: 8765,
            k8s_healthz_endpoint: "/healthz".into(),
            prometheus_metrics_enabled: true,
            ssl_enabled: false,
            ssl_certificate: "/etc/peregrine/peregrine.pem".into(),
            threadiness: 0,
            console: false,
            console_token: String::new(),
            console_client_ca: String::new(),
        }
    }
}

/// The largest `k8s_audit.max_body_bytes`: a body is held whole in memory
/// and parsed, so a larger value is a mistake (2^64-1 once meant 0, taking
/// every request and evaluating nothing); it is refused, not saturated,
/// so that the operator learns of it.
pub const K8S_AUDIT_MAX_BODY_CEILING: usize = 1 << 30;

/// The Kubernetes audit webhook (Falco's k8saudit plugin listens on 9765).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct K8sAudit {
    pub enabled: bool,
    pub listen_address: String,
    pub listen_port: u16,
    pub path: String,
    /// When set, the webhook serves HTTPS with this PEM file (private key
    /// and certificate chain), as the k8saudit plugin's `sslCertificate`.
    pub ssl_certificate: String,
    pub max_body_bytes: usize,
}

impl Default for K8sAudit {
    fn default() -> Self {
        K8sAudit {
            enabled: false,
            listen_address: "0.0.0.0".into(),
            listen_port: 9765,
            path: "/k8s-audit".into(),
            ssl_certificate: String::new(),
            max_body_bytes: 10 * 1024 * 1024,
        }
    }
}

/// How Peregrine drives the kernel module.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriverSettings {
    /// Bytes of I/O buffers kept in read/write events.
    pub snaplen: u32,
    /// Keep one syscall in N when overloaded (1: keep all).
    pub sampling_ratio: u32,
    /// Threads evaluating rules beside the reading thread; 0 evaluates on
    /// the reading thread. For floods one core cannot take: each worker
    /// keeps a replica of the state (see `peregrine::run::parallel`).
    pub evaluation_workers: u32,
}

/// Falco's `base_syscalls`: which syscalls the module writes besides the
/// ones the rules can match. By default, those the state is built from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaseSyscalls {
    /// Replaces the state's syscalls when it names any; `!name` removes a
    /// syscall from the final set, rules' ones included.
    pub custom_set: Vec<String>,
    /// With a custom set: add the state's syscalls back to it.
    pub repair: bool,
    /// Write every syscall (as `-A`).
    pub all: bool,
}

impl Default for DriverSettings {
    fn default() -> Self {
        DriverSettings {
            snaplen: 80,
            sampling_ratio: 1,
            evaluation_workers: 0,
        }
    }
}

/// A loaded config and what loading it had to say.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
    /// The drop-in files `config_files` merged, in order.
    pub config_files: Vec<PathBuf>,
    /// The config as merged from the file, its drop-ins and `-o`, before
    /// decoding (what `--support` shows).
    pub merged: Yaml,
}

impl Config {
    /// Reads `path` (when given), applies `-o` overrides in order, and
    /// decodes the result.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Loaded, ConfigError> {
        match path {
            Some(path) => {
                let text =
                    read_text(path, MAX_CONFIG_FILE_BYTES).map_err(|source| ConfigError::Read {
                        path: path.to_owned(),
                        source,
                    })?;
                Config::from_text(&text, path, overrides)
            }
            None => Config::finish("defaults", None, Yaml::Mapping(Mapping::new()), overrides),
        }
    }

    /// Loads a config from its text, named in messages as the file `path`.
    pub fn from_text(text: &str, path: &Path, overrides: &[String]) -> Result<Loaded, ConfigError> {
        let document: Yaml = if text.trim().is_empty() {
            Yaml::Mapping(Mapping::new())
        } else {
            serde_yaml::from_str(text).map_err(|source| ConfigError::Yaml {
                path: path.to_owned(),
                source,
            })?
        };
        Config::finish(&path.display().to_string(), Some(path), document, overrides)
    }

    /// As Falco: `-o config_files...` first, then the drop-in files, then
    /// the other overrides, then decoding.
    fn finish(
        origin: &str,
        main: Option<&Path>,
        mut document: Yaml,
        overrides: &[String],
    ) -> Result<Loaded, ConfigError> {
        untag(&mut document);
        if document.is_null() {
            document = Yaml::Mapping(Mapping::new());
        }
        let (includes, others): (Vec<&String>, Vec<&String>) = overrides
            .iter()
            .partition(|text| text.trim_start().starts_with(includes::KEY));
        for text in includes {
            apply_override(&mut document, text)?;
        }
        let config_files = match &mut document {
            Yaml::Mapping(map) => includes::merge(map, main, origin)?,
            _ => Vec::new(),
        };
        for text in others {
            apply_override(&mut document, text)?;
        }
        let merged = document.clone();
        let mut loaded = decode(document, origin)?;
        loaded.config_files = config_files;
        loaded.merged = merged;
        Ok(loaded)
    }
}

fn decode(document: Yaml, origin: &str) -> Result<Loaded, ConfigError> {
    let Yaml::Mapping(mut top) = document else {
        return Err(ConfigError::Value {
            origin: origin.to_string(),
            key: "(top level)".into(),
            message: "expected a mapping of keys to values".into(),
        });
    };
    let mut warnings = Vec::new();
    let mut set_aside = SetAside::default();
    sift_falco_keys(&mut top, "", origin, &mut set_aside, &mut warnings);
    set_aside.warn(origin, &mut warnings);
    schema::text_scalars_as_text(&mut top);
    let result: Result<Config, _> = serde_path_to_error::deserialize(Yaml::Mapping(top));
    match result {
        Ok(mut config) => {
            config.validate(origin)?;
            if matches!(
                config.engine.kind,
                EngineKind::ModernEbpf | EngineKind::Ebpf | EngineKind::Gvisor
            ) {
                warnings.push(format!(
                    "{origin}: key 'engine.kind': Peregrine has no {} engine; its kernel module (kmod) runs instead",
                    config.engine.kind.as_str()
                ));
            }
            if config.falco_libs.snaplen > 0 {
                config.driver.snaplen = config.falco_libs.snaplen;
            }
            let loads_container =
                crate::containers::selects_container(config.load_plugins.as_deref());
            if let Some((index, _)) = crate::containers::plugin_entry(&config.plugins) {
                if !loads_container {
                    // Falco would run without container fields; Peregrine's
                    // built-in metadata runs, but not with this entry.
                    warnings.push(format!(
                        "{origin}: plugins[{index}] (container) is not in 'load_plugins': its init_config is not used; the built-in container metadata runs with {}",
                        if config.container_engines.is_some() {
                            "'container_engines'"
                        } else {
                            "every engine at its default sockets"
                        }
                    ));
                }
            }
            if config.container_engines.is_some() && loads_container {
                if let Some((index, _)) = crate::containers::plugin_entry(&config.plugins) {
                    // Falco 0.41 and later read only the plugin's engines.
                    warnings.push(format!(
                        "{origin}: key 'container_engines' ignored: the container plugin's entry (plugins[{index}]) sets the engines, as in Falco 0.41 and later"
                    ));
                }
            }
            Ok(Loaded {
                config,
                warnings,
                config_files: Vec::new(),
                merged: Yaml::Null,
            })
        }
        Err(error) => {
            let key = error.path().to_string();
            Err(ConfigError::Value {
                origin: origin.to_string(),
                key,
                message: error.into_inner().to_string(),
            })
        }
    }
}

impl Config {
    /// Checks that hold between keys, which decoding alone cannot see.
    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let actions = &self.syscall_event_drops.actions;
        if actions.contains(&DropAction::Ignore) {
            if let Some(other) = actions.iter().find(|a| **a != DropAction::Ignore) {
                return Err(ConfigError::Value {
                    origin: origin.to_string(),
                    key: "syscall_event_drops.actions".into(),
                    message: format!(
                        "syscall event drop action \"{}\" does not make sense with the \"ignore\" action",
                        other.as_str()
                    ),
                });
            }
        }
        if self.file_output.enabled && self.file_output.filename.as_os_str().is_empty() {
            return Err(ConfigError::Value {
                origin: origin.to_string(),
                key: "file_output.filename".into(),
                message: "file_output is enabled but names no file".into(),
            });
        }
        if self.program_output.enabled && self.program_output.program.trim().is_empty() {
            return Err(ConfigError::Value {
                origin: origin.to_string(),
                key: "program_output.program".into(),
                message: "program_output is enabled but names no program".into(),
            });
        }
        if self.grpc_output.enabled && !self.grpc.enabled {
            return Err(ConfigError::Value {
                origin: origin.to_string(),
                key: "grpc.enabled".into(),
                message: "grpc_output is enabled but the gRPC server is not".into(),
            });
        }
        if self.nats_output.enabled {
            let nats = &self.nats_output;
            let problem = if nats.servers.is_empty() {
                Some((
                    "nats_output.servers",
                    "nats_output is enabled but names no server",
                ))
            } else if nats.stream.is_empty() {
                Some((
                    "nats_output.stream",
                    "nats_output is enabled but names no stream",
                ))
            } else if nats.spool_dir.as_os_str().is_empty() {
                Some((
                    "nats_output.spool_dir",
                    "nats_output is enabled but names no spool folder",
                ))
            } else if nats.spool_max_mb == 0 || nats.spool_max_mb > 1 << 20 {
                Some((
                    "nats_output.spool_max_mb",
                    "must be from 1 to 1048576 (MiB)",
                ))
            } else {
                None
            };
            if let Some((key, message)) = problem {
                return Err(ConfigError::Value {
                    origin: origin.to_string(),
                    key: key.into(),
                    message: message.into(),
                });
            }
        }
        if let Some((key, message)) = self
            .kafka_output
            .enabled
            .then(|| self.kafka_output.problem())
            .flatten()
        {
            return Err(ConfigError::Value {
                origin: origin.to_string(),
                key: key.into(),
                message: message.into(),
            });
        }
        if self.k8s_audit.max_body_bytes > K8S_AUDIT_MAX_BODY_CEILING {
            return Err(ConfigError::Value {
                origin: origin.to_string(),
                key: "k8s_audit.max_body_bytes".into(),
                message: format!(
                    "{} is more than the {K8S_AUDIT_MAX_BODY_CEILING} bytes (1 GiB) a body \
                     held in memory may take",
                    self.k8s_audit.max_body_bytes
                ),
            });
        }
        if self.engine.kind == EngineKind::Replay && self.engine.replay.capture_file.is_empty() {
            return Err(ConfigError::Value {
                origin: origin.to_string(),
                key: "engine.replay.capture_file".into(),
                message: "engine.kind is replay but no capture file is named".into(),
            });
        }
        if self.capture.enabled && self.capture.path_prefix.is_empty() {
            return Err(ConfigError::Value {
                origin: origin.to_string(),
                key: "capture.path_prefix".into(),
                message: "capture is enabled but names no path prefix".into(),
            });
        }
        if self.http_output.enabled && self.http_output.url.is_empty() {
            return Err(ConfigError::Value {
                origin: origin.to_string(),
                key: "http_output.url".into(),
                message: "http_output is enabled but names no url".into(),
            });
        }
        Ok(())
    }
}

impl DropAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DropAction::Ignore => "ignore",
            DropAction::Log => "log",
            DropAction::Alert => "alert",
            DropAction::Exit => "exit",
        }
    }
}

/// Peregrine's own top-level keys, which Falco does not have
/// (`nats_output` and `kafka_output` are main's outputs, merged alongside).
const PEREGRINE_KEYS: &[&str] = &["k8s_audit", "driver", "nats_output", "kafka_output"];

/// The Falco keys a config sets that Peregrine takes out before decoding.
#[derive(Debug, Default)]
struct SetAside {
    /// Cannot apply to Peregrine.
    ignored: Vec<String>,
    /// Read without effect.
    accepted: Vec<String>,
}

impl SetAside {
    /// One warning for each kind, naming every key: a stock falco.yaml
    /// sets some thirty of them, and docs/falco-yaml.md says why for each.
    fn warn(&self, origin: &str, warnings: &mut Vec<String>) {
        let quoted = |keys: &[String]| {
            keys.iter()
                .map(|k| format!("'{k}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.ignored.is_empty() {
            warnings.push(format!(
                "{origin}: Falco keys ignored, as they cannot apply to Peregrine (docs/falco-yaml.md says why): {}",
                quoted(&self.ignored)
            ));
        }
        if !self.accepted.is_empty() {
            warnings.push(format!(
                "{origin}: Falco keys accepted without effect in Peregrine (docs/falco-yaml.md says why): {}",
                quoted(&self.accepted)
            ));
        }
    }
}

/// Walks a mapping against Falco's key table: a key that cannot apply,
/// or that Peregrine accepts without acting on it, is taken out and
/// noted in `set_aside` (its sub-keys are not named again); an unknown
/// top-level key warns with its path and is taken out. Unknown keys inside
/// a known section stay, for decoding to refuse with their path (a typo
/// such as `file_output.filname`).
fn sift_falco_keys(
    map: &mut Mapping,
    prefix: &str,
    origin: &str,
    set_aside: &mut SetAside,
    warnings: &mut Vec<String>,
) {
    let keys: Vec<Yaml> = map.keys().cloned().collect();
    for key in keys {
        let Some(name) = key.as_str() else { continue };
        let path = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        match falco_keys::find(&path).map(|k| k.support) {
            Some(Support::Ignored(_)) => {
                if !set_aside.ignored.contains(&path) {
                    set_aside.ignored.push(path);
                }
                map.remove(&key);
            }
            Some(Support::Accepted(_)) => {
                if !set_aside.accepted.contains(&path) {
                    set_aside.accepted.push(path);
                }
                map.remove(&key);
            }
            Some(Support::Implemented(_)) => match map.get_mut(&key) {
                Some(Yaml::Mapping(inner)) => {
                    sift_falco_keys(inner, &path, origin, set_aside, warnings)
                }
                Some(Yaml::Sequence(items)) => {
                    let item_path = format!("{path}[]");
                    for item in items.iter_mut() {
                        if let Yaml::Mapping(inner) = item {
                            sift_falco_keys(inner, &item_path, origin, set_aside, warnings);
                        }
                    }
                }
                _ => {}
            },
            None if prefix.is_empty() && !PEREGRINE_KEYS.contains(&name) => {
                warnings.push(format!("{origin}: unknown key '{path}' ignored"));
                map.remove(&key);
            }
            None => {}
        }
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    match OneOrMany::deserialize(deserializer) {
        Ok(OneOrMany::One(path)) => Ok(vec![path]),
        Ok(OneOrMany::Many(paths)) => Ok(paths),
        Err(_) => Err(de::Error::custom("expected a path or a list of paths")),
    }
}

fn priority<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Priority, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_priority(&text).ok_or_else(|| {
        de::Error::custom(format!(
            "'{text}' is no priority; expected one of emergency, alert, critical, error, warning, notice, informational, debug"
        ))
    })
}

fn fraction<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(de::Error::custom(format!(
            "syscall event drops threshold must be a double in the range [0, 1]; got {value}"
        )))
    }
}

/// `output_timeout`: milliseconds, at least one, bounded as durations are.
fn output_timeout_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let ms = u64::deserialize(deserializer)?;
    let max = duration::MAX_DURATION_SECS * 1_000;
    if ms == 0 || ms > max {
        return Err(de::Error::custom(format!(
            "output_timeout is in milliseconds, from 1 to {max}; got {ms}"
        )));
    }
    Ok(ms)
}

/// Seconds, or a duration string as Falco writes them (`15m`, `1h30m`),
/// bounded (see [`duration`]); a period under a second counts as one.
fn duration_secs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Secs(u64),
        Text(String),
    }
    let period = match Written::deserialize(deserializer)? {
        Written::Secs(secs) => duration::from_secs(secs),
        Written::Text(text) => duration::parse(&text),
    }
    .map_err(de::Error::custom)?;
    Ok(period.as_secs().max(u64::from(period.subsec_nanos() > 0)))
}

/// For the schema's tests: the decoder's error on a config text, with
/// neither the Falco key table's sifting nor the checks across keys.
#[cfg(test)]
pub(crate) mod tests_support {
    pub fn decode_error(text: &str) -> Option<String> {
        let document: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
        serde_yaml::from_value::<super::Config>(document)
            .err()
            .map(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, overrides: &[&str]) -> Result<Loaded, ConfigError> {
        let dir = std::env::temp_dir().join(format!("peregrine-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Tests run in parallel threads: every call gets a file of its own.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let path = dir.join(format!(
            "c{}.yaml",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&path, text).unwrap();
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let loaded = Config::load(Some(&path), &overrides);
        let _ = std::fs::remove_file(&path);
        loaded
    }

    /// Falco 0.40's falco.yaml section, as it shipped (with docker off).
    const FALCO_040_ENGINES: &str = "container_engines:\n  docker:\n    enabled: false\n  cri:\n    enabled: true\n    sockets: [\"/run/containerd/containerd.sock\", \"/run/crio/crio.sock\"]\n    disable_async: false\n  podman:\n    enabled: true\n  lxc:\n    enabled: true\n  libvirt_lxc:\n    enabled: true\n  bpm:\n    enabled: true\n";

    #[test]
    fn a_container_entry_load_plugins_leaves_out_is_named() {
        let entry = "plugins:\n  - name: container\n    library_path: libcontainer.so\n";
        let unused = |w: &String| w.contains("(container) is not in 'load_plugins'");
        // Falco's own falco.yaml: the entry is there, `load_plugins` empty.
        let loaded = load_text(&format!("load_plugins: []\n{entry}"), &[]).unwrap();
        assert!(loaded.warnings.iter().any(unused), "{:?}", loaded.warnings);
        for selected in ["load_plugins: [container]\n", ""] {
            let loaded = load_text(&format!("{selected}{entry}"), &[]).unwrap();
            assert!(!loaded.warnings.iter().any(unused), "{:?}", loaded.warnings);
        }
        // Unused, the entry no longer overrides Falco 0.40's engines.
        let text = format!("load_plugins: []\n{entry}{FALCO_040_ENGINES}");
        let loaded = load_text(&text, &[]).unwrap();
        assert!(
            !loaded
                .warnings
                .iter()
                .any(|w| w.contains("key 'container_engines' ignored")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn falco_040_container_engines_are_read() {
        let loaded = load_text(FALCO_040_ENGINES, &[]).unwrap();
        let engines = loaded.config.container_engines.expect("read");
        assert!(!engines.docker.enabled);
        assert!(engines.podman.enabled && engines.cri.enabled);
        assert_eq!(
            engines.cri.sockets,
            ["/run/containerd/containerd.sock", "/run/crio/crio.sock"]
        );
        let accepted = loaded
            .warnings
            .iter()
            .find(|w| w.contains("accepted without effect"))
            .expect("a warning for the keys without effect");
        assert!(
            accepted.contains("'container_engines.cri.disable_async'"),
            "{accepted}"
        );
        assert!(accepted.contains("'container_engines.lxc'"), "{accepted}");
        assert!(
            !loaded
                .warnings
                .iter()
                .any(|w| w.contains("key 'container_engines' ignored")),
            "{:?}",
            loaded.warnings
        );
        let e = load_text("container_engines:\n  docker:\n    enabeld: true\n", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("container_engines.docker"), "{e}");
    }

    #[test]
    fn container_engines_beside_the_plugin_entry_are_ignored_with_a_warning() {
        let text = format!(
            "{FALCO_040_ENGINES}plugins:\n  - name: container\n    library_path: libcontainer.so\n"
        );
        let loaded = load_text(&text, &[]).unwrap();
        assert!(
            loaded.warnings.iter().any(|w| w.contains(
                "key 'container_engines' ignored: the container plugin's entry (plugins[0])"
            )),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn reads_falco_shaped_config() {
        let loaded = load_text(
            "rules_file:\n  - /a.yaml\n  - /b.yaml\npriority: WARNING\njson_output: true\n\
             file_output:\n  enabled: true\n  keep_alive: true\n  filename: /tmp/x\n\
             syscall_event_drops:\n  actions: [log, alert]\n  rate: .03333\n  max_burst: 10\n  simulate_drops: true\n",
            &[],
        )
        .unwrap();
        let c = loaded.config;
        assert_eq!(
            c.rules_file,
            vec![PathBuf::from("/a.yaml"), PathBuf::from("/b.yaml")]
        );
        assert_eq!(c.priority, Priority::Warning);
        assert!(c.json_output);
        assert!(c.file_output.enabled && c.file_output.keep_alive);
        assert_eq!(c.file_output.filename, PathBuf::from("/tmp/x"));
        assert_eq!(
            c.syscall_event_drops.actions,
            vec![DropAction::Log, DropAction::Alert]
        );
        assert_eq!(c.syscall_event_drops.max_burst, 10);
        assert!(c.syscall_event_drops.simulate_drops);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn overrides_set_nested_keys_with_yaml_types() {
        let loaded = load_text(
            "stdout_output:\n  enabled: true\n",
            &[
                "stdout_output.enabled=false",
                "json_output=true",
                "rules_file=/r.yaml",
                "plugins[0].open_params=/f.json",
            ],
        )
        .unwrap();
        assert!(!loaded.config.stdout_output.enabled);
        assert!(loaded.config.json_output);
        assert_eq!(loaded.config.rules_file, vec![PathBuf::from("/r.yaml")]);
        assert_eq!(
            loaded.config.plugins[0]["open_params"],
            Yaml::String("/f.json".into())
        );
    }

    #[test]
    fn unknown_keys_warn_with_their_path() {
        let loaded = load_text(
            "no_such_key: 1\nsyscall_event_timeouts:\n  max_consecutives: 10\n",
            &[],
        )
        .unwrap();
        assert!(loaded
            .warnings
            .iter()
            .any(|w| w.contains("unknown key 'no_such_key'")));
        assert!(loaded
            .warnings
            .iter()
            .any(|w| w.contains("'syscall_event_timeouts'")));
    }

    #[test]
    fn bad_values_name_the_key_and_the_form() {
        let error = load_text("file_output:\n  filname: /tmp/x\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("file_output"), "{error}");
        assert!(error.contains("filname"), "{error}");

        let error = load_text("priority: loud\n", &[]).unwrap_err().to_string();
        assert!(
            error.contains("key 'priority'") && error.contains("expected one of"),
            "{error}"
        );

        let error = load_text("syscall_event_drops:\n  threshold: 2\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("syscall_event_drops.threshold") && error.contains("range [0, 1]"),
            "{error}"
        );

        let error = load_text("syscall_event_drops:\n  actions: [ignore, log]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("action \"log\" does not make sense with the \"ignore\" action"),
            "{error}"
        );

        let error = load_text("file_output:\n  enabled: true\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("file_output.filename"), "{error}");

        let error = load_text("syscall_event_drops:\n  actions: [shout]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("syscall_event_drops.actions"), "{error}");

        let error = load_text("json_output: [1\n", &[]).unwrap_err().to_string();
        assert!(error.contains("not valid YAML"), "{error}");

        let error = load_text("", &["json_output"]).unwrap_err().to_string();
        assert!(error.contains("expected key=value"), "{error}");
    }

    #[test]
    fn k8s_audit_max_body_bytes_out_of_range_is_refused_with_its_key() {
        for value in [
            "18446744073709551615",
            "1073741825",
            "18446744073709551616",
            "-1",
        ] {
            let error = load_text(&format!("k8s_audit:\n  max_body_bytes: {value}\n"), &[])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("k8s_audit.max_body_bytes"),
                "{value}: {error}"
            );
        }
        let loaded = load_text("k8s_audit:\n  max_body_bytes: 1073741824\n", &[]).unwrap();
        assert_eq!(loaded.config.k8s_audit.max_body_bytes, 1 << 30);
    }

    #[test]
    fn grpc_output_needs_the_grpc_server() {
        let error = load_text("grpc_output:\n  enabled: true\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("key 'grpc.enabled'"), "{error}");
        let loaded = load_text(
            "grpc:\n  enabled: true\n  bind_address: unix:///tmp/x.sock\n  threadiness: 8\ngrpc_output:\n  enabled: true\n",
            &[],
        )
        .unwrap();
        assert_eq!(loaded.config.grpc.bind_address, "unix:///tmp/x.sock");
        assert_eq!(loaded.config.grpc.threadiness, 8);
    }

    #[test]
    fn metrics_interval_accepts_falco_durations() {
        let loaded = load_text("metrics:\n  enabled: true\n  interval: 15m\n", &[]).unwrap();
        assert_eq!(loaded.config.metrics.interval, 900);
        assert!(load_text("metrics:\n  interval: soon\n", &[]).is_err());
    }

    #[test]
    fn kit_configs_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/conformance/falco-regression/confs");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("skipped: {} is absent (no ../shared)", dir.display());
            return;
        };
        let mut loaded = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let result = Config::load(Some(&path), &[]);
                // These are invalid on purpose; the conformance cases
                // expect them refused.
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                if name.contains("threshold_oor")
                    || name.contains("threshold_neg")
                    || name.contains("ignore_log")
                {
                    assert!(result.is_err(), "{name} should be refused");
                } else {
                    result.unwrap_or_else(|e| panic!("{name}: {e}"));
                }
                loaded += 1;
            }
        }
        assert!(loaded >= 10, "only {loaded} configs found");
    }

    /// Damaged configs give errors or warnings, never panics: each kit
    /// config (and a full one of our own) is cut short at every few bytes,
    /// has punctuation swapped in and lines dropped; `-o` overrides get
    /// odd paths too.
    #[test]
    fn damaged_configs_never_panic() {
        let mut texts = vec![
            "rules_file: [/a.yaml]\npriority: warning\njson_output: true\nfile_output:\n  enabled: true\n  filename: /tmp/x\n\
             http_output:\n  enabled: true\n  url: http://127.0.0.1/\nsyscall_event_drops:\n  actions: [log, alert]\n  rate: .1\n\
             metrics:\n  enabled: true\n  interval: 15m\nwebserver:\n  listen_port: 8765\n"
                .to_string(),
        ];
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/conformance/falco-regression/confs");
        // Our config alone gives some 600 variants; the kit's, thousands.
        let mut floor = 500;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            texts.extend(
                entries
                    .flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok()),
            );
            floor = 1000;
        } else {
            eprintln!("skipped (partly): no ../shared; only our own config is damaged");
        }
        const SWAPS: &[char] = &[
            ':', '-', '[', ']', '{', '"', '\'', '\n', ' ', '\t', '&', '*', '!', '%',
        ];
        let mut tried = 0;
        for text in &texts {
            let chars: Vec<char> = text.chars().collect();
            for at in 0..chars.len() {
                let mut swapped = chars.clone();
                swapped[at] = SWAPS[at % SWAPS.len()];
                for variant in [
                    chars[..at].iter().collect::<String>(),
                    swapped.into_iter().collect(),
                ] {
                    let _ = load_text(&variant, &[]);
                    tried += 1;
                }
            }
        }
        for bad in [
            "=",
            "a.=1",
            "[0]=1",
            "a[x]=1",
            "a[99]=1",
            "a.b[0].c[1]=x",
            "json_output=[",
            "priority=\u{0}",
        ] {
            let _ = load_text("", &[bad]);
            tried += 1;
        }
        assert!(tried > floor, "{tried}");
    }

    /// The settings of Falco's falco.yaml of each release since 0.36 (kept,
    /// without Falco's comments, in tests/falco-configs) load as they are:
    /// no error, and every warning names a key Falco defines and says why
    /// it is set aside.
    #[test]
    fn falco_release_settings_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/falco-configs");
        let mut loaded = 0;
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let result = Config::load(Some(&path), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut named = Vec::new();
            for warning in &result.warnings {
                assert!(!warning.contains("unknown key"), "{name}: {warning}");
                // The quoted words are keys of Falco's table.
                for key in warning.split('\'').skip(1).step_by(2) {
                    assert!(
                        falco_keys::find(key).is_some(),
                        "{name}: warning about a key not in Falco's table: {warning}"
                    );
                    named.push(key.to_string());
                }
            }
            // Each key is named once at most.
            let count = named.len();
            named.sort();
            named.dedup();
            assert_eq!(named.len(), count, "{name}");
            loaded += 1;
        }
        assert!(
            loaded >= 9,
            "only {loaded} Falco configs in {}",
            dir.display()
        );
    }

    /// Every key in the kept releases' settings is in Falco's key table,
    /// and docs/falco-yaml.md shows the table as it is now.
    #[test]
    fn falco_key_table_covers_every_release_and_the_docs() {
        fn walk(node: &Yaml, prefix: &str, out: &mut Vec<String>) {
            match node {
                Yaml::Mapping(map) => {
                    for (key, value) in map {
                        let name = key.as_str().unwrap_or_default();
                        let path = if prefix.is_empty() {
                            name.to_string()
                        } else {
                            format!("{prefix}.{name}")
                        };
                        // Free-form values: plugin and static settings.
                        if !path.starts_with("plugins[].init_config.")
                            && !path.starts_with("static_fields.")
                        {
                            out.push(path.clone());
                            walk(value, &path, out);
                        }
                    }
                }
                Yaml::Sequence(items) => {
                    for item in items {
                        walk(item, &format!("{prefix}[]"), out);
                    }
                }
                _ => {}
            }
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/falco-configs");
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let document: Yaml = serde_yaml::from_str(&text).unwrap();
            let mut paths = Vec::new();
            walk(&document, "", &mut paths);
            for path in paths {
                assert!(
                    falco_keys::find(&path).is_some(),
                    "{}: {path} is not in the Falco key table",
                    entry.path().display()
                );
            }
        }
        let docs = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/falco-yaml.md"),
        )
        .unwrap();
        assert!(
            docs.contains(&falco_keys::markdown_table()),
            "docs/falco-yaml.md is out of date: paste falco_keys::markdown_table() into it"
        );
    }

    #[test]
    fn keys_of_absent_drivers_warn_once_and_go() {
        let loaded = load_text(
            "engine:\n  kind: modern_ebpf\n  modern_ebpf:\n    cpus_for_each_buffer: 2\n    buf_size_preset: 4\n\
             metrics:\n  enabled: true\n  libbpf_stats_enabled: true\n  kernel_event_counters_per_cpu_enabled: true\n\
             syscall_event_timeouts:\n  max_consecutives: 10\n\
             falco_libs:\n  snaplen: 512\n  thread_table_size: 1000\n",
            &[],
        )
        .unwrap();
        let warnings = loaded.warnings.join("\n");
        assert_eq!(
            warnings.matches("'engine.modern_ebpf'").count(),
            1,
            "{warnings}"
        );
        assert!(!warnings.contains("cpus_for_each_buffer"), "{warnings}");
        assert!(warnings.contains("'engine.kind': Peregrine has no modern_ebpf engine"));
        let ignored = loaded
            .warnings
            .iter()
            .find(|w| w.contains("keys ignored"))
            .unwrap();
        assert!(
            ignored.contains("'metrics.libbpf_stats_enabled'"),
            "{ignored}"
        );
        let accepted = loaded
            .warnings
            .iter()
            .find(|w| w.contains("accepted without effect"))
            .unwrap();
        assert!(
            accepted.contains("'syscall_event_timeouts'") && !accepted.contains("per_cpu"),
            "{accepted}"
        );
        assert_eq!(loaded.warnings.len(), 3, "{warnings}");
        assert_eq!(loaded.config.engine.kind, EngineKind::ModernEbpf);
        assert_eq!(loaded.config.driver.snaplen, 512);
        assert_eq!(loaded.config.falco_libs.thread_table_size, 1000);
        assert!(loaded.config.metrics.enabled);
        assert!(loaded.config.metrics.kernel_event_counters_per_cpu_enabled);
    }

    #[test]
    fn rule_selection_and_matching_read_as_falco_writes_them() {
        let loaded = load_text(
            concat!(
                "rule_matching: all\nrules:\n  - disable:\n      rule: \"*\"\n",
                "  - enable:\n      tag: network\n",
                "  - enable:\n      rule: Read sensitive file*\n      tag: T1555\n",
            ),
            &["rules[].disable.rule=Netcat*", "rules[].disable.tag=mitre"],
        )
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.rule_matching, RuleMatching::All);
        let summary: Vec<(bool, Option<&str>, Option<&str>)> = c
            .rules
            .iter()
            .map(|r| (r.enable, r.rule.as_deref(), r.tag.as_deref()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (false, Some("*"), None),
                (true, None, Some("network")),
                (true, Some("Read sensitive file*"), Some("T1555")),
                (false, Some("Netcat*"), None),
                (false, None, Some("mitre")),
            ]
        );
        let error = load_text("rule_matching: some\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("key 'rule_matching'"), "{error}");
        let error = load_text("rules:\n  - enable: {}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("rules[0]"), "{error}");
        let error = load_text("rules:\n  - switch: {rule: x}\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("rules[0]"), "{error}");
    }

    #[test]
    fn numbers_and_booleans_are_text_where_text_is_wanted_as_in_falco() {
        // yaml-cpp reads any scalar as a string: an account number in
        // static_fields, a program named by a number, tags that are years.
        let loaded = load_text(
            concat!(
                "static_fields:\n  account: 123456789012\n  canary: true\n  ratio: 0.5\n",
                "  quoted: \"0123\"\n",
                "program_output:\n  program: 42\n",
                "append_output:\n  - match:\n      tags: [2024, x]\n",
                "rules:\n  - disable:\n      tag: 1999\n",
            ),
            &["static_fields.n=7", "log_level=info"],
        )
        .unwrap();
        let c = loaded.config;
        let fields: Vec<(&str, &str)> = c
            .static_fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("account", "123456789012"),
                ("canary", "true"),
                ("n", "7"),
                ("quoted", "0123"),
                ("ratio", "0.5"),
            ]
        );
        assert_eq!(c.program_output.program, "42");
        assert_eq!(c.append_output[0].matching.tags, vec!["2024", "x"]);
        // Numbers stay numbers where numbers are wanted, and a text key
        // still refuses what is no scalar.
        let error = load_text("webserver:\n  listen_port: high\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("webserver.listen_port"), "{error}");
        let error = load_text("program_output:\n  program: [a]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("program_output.program"), "{error}");
    }

    #[test]
    fn append_output_and_static_fields_read_as_falco_writes_them() {
        let loaded = load_text(
            concat!(
                "append_output:\n  - match:\n      source: syscall\n      tags: [a, b]\n",
                "    extra_output: \"on CPU %evt.cpu\"\n",
                "    extra_fields:\n      - home: \"%proc.cwd\"\n      - evt.hostname\n",
                "  - suggested_output: true\n",
                "static_fields:\n  zone: eu-1\n  app: web\n",
            ),
            &[],
        )
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.append_output.len(), 2);
        let first = &c.append_output[0];
        assert_eq!(first.matching.source.as_deref(), Some("syscall"));
        assert_eq!(first.matching.tags, vec!["a", "b"]);
        assert_eq!(first.extra_output, "on CPU %evt.cpu");
        assert_eq!(
            first.extra_fields,
            vec![
                ExtraField {
                    name: "home".into(),
                    format: "%proc.cwd".into(),
                    raw: false
                },
                ExtraField {
                    name: "evt.hostname".into(),
                    format: "%evt.hostname".into(),
                    raw: true
                },
            ]
        );
        assert!(c.append_output[1].suggested_output);
        assert_eq!(
            c.static_fields.iter().collect::<Vec<_>>(),
            vec![
                (&"app".to_string(), &"web".to_string()),
                (&"zone".to_string(), &"eu-1".to_string())
            ]
        );
        let error = load_text("append_output:\n  - extra_fields: [a, a]\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("append_output[0].extra_fields"), "{error}");
    }

    #[test]
    fn replay_engine_needs_its_capture_file() {
        let loaded = load_text(
            "",
            &[
                "engine.kind=replay",
                "engine.replay.capture_file=/tmp/x.scap",
            ],
        )
        .unwrap();
        assert_eq!(loaded.config.engine.kind, EngineKind::Replay);
        assert_eq!(loaded.config.engine.replay.capture_file, "/tmp/x.scap");
        let error = load_text("engine:\n  kind: replay\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("engine.replay.capture_file"), "{error}");
    }

    #[test]
    fn drop_in_files_merge_in_order_before_overrides() {
        let dir = std::env::temp_dir().join(format!("peregrine-dropins-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let folder = dir.join("config.d");
        std::fs::create_dir_all(&folder).unwrap();
        // Name order: 10 before 20; a later file wins for a scalar.
        std::fs::write(
            folder.join("20-late.yaml"),
            "priority: error\nrules_file: [/c.yaml]\n",
        )
        .unwrap();
        std::fs::write(
            folder.join("10-early.yaml"),
            "priority: warning\nrules_file: [/b.yaml]\njson_output: true\n",
        )
        .unwrap();
        let add_only = dir.join("add-only.yaml");
        std::fs::write(
            &add_only,
            "json_output: false\ntime_format_iso_8601: true\n",
        )
        .unwrap();
        let replace = dir.join("override.yaml");
        std::fs::write(&replace, "stdout_output:\n  enabled: false\n").unwrap();
        let main = dir.join("falco.yaml");
        std::fs::write(
            &main,
            format!(
                "rules_file: [/a.yaml]\nstdout_output:\n  enabled: true\nconfig_files:\n  - {}\n  - /no/such/dir\n  \
                 - path: {}\n    strategy: add-only\n  - path: {}\n    strategy: override\n",
                folder.display(),
                add_only.display(),
                replace.display()
            ),
        )
        .unwrap();
        let loaded = Config::load(Some(&main), &["priority=critical".into()]).unwrap();
        let c = &loaded.config;
        // Lists append in order; -o comes after the drop-ins.
        assert_eq!(
            c.rules_file,
            ["/a.yaml", "/b.yaml", "/c.yaml"]
                .map(PathBuf::from)
                .to_vec()
        );
        assert_eq!(c.priority, Priority::Critical);
        assert!(c.json_output, "add-only does not replace a key");
        assert!(c.time_format_iso_8601);
        assert!(!c.stdout_output.enabled);
        assert_eq!(loaded.config_files.len(), 4);
        assert!(loaded.config_files[0].ends_with("10-early.yaml"));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

        // -o config_files works as in the file.
        let plain = dir.join("plain.yaml");
        std::fs::write(&plain, "json_output: false\n").unwrap();
        let loaded = Config::load(
            Some(&plain),
            &[format!("config_files={}", replace.display())],
        )
        .unwrap();
        assert!(!loaded.config.stdout_output.enabled);

        // A broken drop-in names itself; so does one that includes more.
        std::fs::write(folder.join("30-broken.yaml"), "priority: [\n").unwrap();
        let error = Config::load(Some(&main), &[]).unwrap_err().to_string();
        assert!(error.contains("30-broken.yaml"), "{error}");
        std::fs::write(folder.join("30-broken.yaml"), "config_files: [/x]\n").unwrap();
        let error = Config::load(Some(&main), &[]).unwrap_err().to_string();
        assert!(
            error.contains("30-broken.yaml") && error.contains("cannot include"),
            "{error}"
        );
        std::fs::remove_file(folder.join("30-broken.yaml")).unwrap();
        // The main file cannot include itself.
        std::fs::write(&plain, format!("config_files: [{}]\n", plain.display())).unwrap();
        let error = Config::load(Some(&plain), &[]).unwrap_err().to_string();
        assert!(error.contains("config_files[0]"), "{error}");
        let error = load_text("config_files:\n  - path: /x\n    strategy: merge\n", &[])
            .unwrap_err()
            .to_string();
        assert!(error.contains("strategy"), "{error}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn base_syscalls_is_falcos_section() {
        let loaded = load_text(
            "base_syscalls:\n  custom_set: [openat, '!close']\n  repair: true\n",
            &["base_syscalls.all=true"],
        )
        .unwrap();
        assert_eq!(
            loaded.config.base_syscalls,
            BaseSyscalls {
                custom_set: vec!["openat".into(), "!close".into()],
                repair: true,
                all: true,
            }
        );
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let err = load_text("base_syscalls:\n  custom_sets: [openat]\n", &[]).unwrap_err();
        assert!(err.to_string().contains("custom_sets"), "{err}");
    }

    #[test]
    fn overrides_look_through_yaml_tags() {
        // Found by the load_config fuzz target: a tagged document made the
        // override path panic.
        let loaded = load_text(
            "!custom\nfile_output:\n  enabled: true\n",
            &["file_output.filename=/tmp/x"],
        );
        let config = loaded.unwrap().config;
        assert!(config.file_output.enabled);
        assert_eq!(
            config.file_output.filename,
            std::path::PathBuf::from("/tmp/x")
        );
        assert!(
            load_text("!custom\njson_output: true\n", &[])
                .unwrap()
                .config
                .json_output
        );
        let nested = load_text(
            "stdout_output: !tag\n  enabled: false\n",
            &["stdout_output.enabled=true"],
        );
        assert!(nested.unwrap().config.stdout_output.enabled);
        let listed = load_text(
            "rules_file: !seq\n  - /a.yaml\n",
            &["rules_file[1]=/b.yaml"],
        );
        assert_eq!(listed.unwrap().config.rules_file.len(), 2);
    }
}
