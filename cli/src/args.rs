//! Command-line flags. The top level takes Falco's flags, so that a Falco
//! user's habits (`-c`, `-r`, `-o`, `-e`, `-M`, `-L`, `-l`, `-V`...) carry
//! over; Peregrine's own tasks are subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "peregrine",
    version,
    about = "Runtime security for Linux: kernel events and Kubernetes audit events checked against Falco-syntax rules",
    args_conflicts_with_subcommands = true,
    disable_version_flag = true
)]
pub struct Cli {
    #[command(flatten)]
    pub run: RunArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Configuration file, in the shape of falco.yaml.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Rules file or folder of rules files; repeat to load several, in order.
    /// Replaces the config's rules_file.
    #[arg(short = 'r', long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,

    /// Sets a config key, e.g. `-o json_output=true`, `-o file_output.enabled=true`.
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,

    /// Reads events from a .scap capture instead of the kernel module.
    #[arg(short = 'e', long = "capture", value_name = "FILE")]
    pub capture: Option<PathBuf>,

    /// Reads Kubernetes audit events (JSON: one Event, an EventList, or one
    /// object per line) from a file instead of the kernel module.
    #[arg(long = "k8s-audit-file", value_name = "FILE")]
    pub k8s_audit_file: Option<PathBuf>,

    /// Stops after this many seconds.
    #[arg(short = 'M', value_name = "SECONDS", value_parser = crate::config::duration::seconds_arg)]
    pub duration: Option<u64>,

    /// Turns an event source on (`k8s_audit` starts the audit webhook).
    #[arg(long = "enable-source", value_name = "SOURCE")]
    pub enable_sources: Vec<String>,

    /// Turns an event source off (`syscall` runs without the kernel module).
    #[arg(long = "disable-source", value_name = "SOURCE")]
    pub disable_sources: Vec<String>,

    /// Writes every kernel event the agent reads to this .scap capture while
    /// it evaluates them, to replay later with -e and the same rules.
    #[arg(long = "syscall-capture", value_name = "FILE")]
    pub syscall_capture: Option<PathBuf>,

    /// Writes every event the plugin sources read to this .scap capture,
    /// to replay later with -e and the same plugins.
    #[arg(long = "plugin-capture", value_name = "FILE")]
    pub plugin_capture: Option<PathBuf>,

    /// Lists the plugins the config loads, with their capabilities, and exits.
    #[arg(long = "list-plugins")]
    pub list_plugins: bool,

    /// Describes the plugin of this name (or library path) in the config's
    /// plugins list: its init schema, open parameters and fields; and exits.
    #[arg(long = "plugin-info", value_name = "NAME")]
    pub plugin_info: Option<String>,

    /// Lists the loaded rules with their descriptions, and exits.
    #[arg(short = 'L', long = "list-rules")]
    pub list_rules: bool,

    /// Prints, as Falco's --support, one JSON document for a bug report
    /// (system, versions, command line, merged config, rules files), and
    /// exits.
    #[arg(long = "support")]
    pub support: bool,

    /// Prints the JSON Schema (draft-07) of the config file Peregrine
    /// reads, as Falco's --config-schema, and exits.
    #[arg(long = "config-schema")]
    pub config_schema: bool,

    /// Prints the JSON Schema (draft-07) of a rules file as Peregrine
    /// reads it, as Falco's --rule-schema, and exits.
    #[arg(long = "rule-schema")]
    pub rule_schema: bool,

    /// Lists the events of the schema by category, as Falco's
    /// --list-events, and exits.
    #[arg(long = "list-events")]
    pub list_events: bool,

    /// Prints the syscalls ignored for performance's sake whatever the
    /// rules name, as Falco's -i, and exits. Peregrine ignores none: it
    /// captures every syscall an enabled rule names (-A adds the rest).
    #[arg(short = 'i')]
    pub print_ignored_events: bool,

    /// Describes one rule, and exits.
    #[arg(short = 'l', value_name = "RULE")]
    pub describe_rule: Option<String>,

    /// Lists every field rules can use (optionally of one source), and exits.
    #[arg(long = "list", value_name = "SOURCE", num_args = 0..=1, default_missing_value = "")]
    pub list_fields: Option<String>,

    /// How --list and --list-events print: text (the default), markdown or
    /// json.
    #[arg(long = "format", value_name = "FORMAT")]
    pub list_format: Option<String>,

    /// Deprecated in Falco for --format markdown, and taken as that.
    #[arg(long = "markdown")]
    pub markdown: bool,

    /// With --list: only the fields' names, one per line.
    #[arg(short = 'N')]
    pub names_only: bool,

    /// Prints the system's page size (ring buffer sizes are multiples of
    /// it), as Falco's --page-size, and exits.
    #[arg(long = "page-size")]
    pub page_size: bool,

    /// Validates rules files and exits: 0 if they load, 1 with the errors if not.
    #[arg(short = 'V', long = "validate", value_name = "FILE")]
    pub validate: Vec<PathBuf>,

    /// Loads config and rules and stops before reading any event.
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// Writes Peregrine's process id to this file once the rules are
    /// loaded, as Falco's -P (not with --dry-run).
    #[arg(short = 'P', long = "pidfile", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Writes every alert out at once (buffered_outputs: false).
    #[arg(short = 'U', long = "unbuffered")]
    pub unbuffered: bool,

    /// Deprecated, as in Falco (use -o append_output): appends this to
    /// every rule's output (`-p "%proc.pid"`); `c`/`k` add nothing.
    #[arg(short = 'p', long = "print", value_name = "FORMAT")]
    pub print: Option<String>,

    /// Disables the rules with this tag; repeatable.
    #[arg(short = 'T', value_name = "TAG")]
    pub disable_tags: Vec<String>,

    /// Runs only the rules with this tag; repeatable.
    #[arg(short = 't', value_name = "TAG")]
    pub run_tags: Vec<String>,

    /// Disables the rules whose names match this pattern; repeatable.
    #[arg(short = 'D', value_name = "PATTERN")]
    pub disable_rules: Vec<String>,

    /// Captures every syscall, not only those the rules and the state
    /// need (as base_syscalls.all).
    #[arg(short = 'A')]
    pub all_events: bool,

    /// Verbose: accepted for Falco compatibility; Peregrine always reports
    /// load warnings and the run summary.
    #[arg(short = 'v')]
    pub verbose: bool,

    /// Prints the version and exits.
    #[arg(long = "version")]
    pub version: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Records kernel events (or filters a capture) into a .scap file.
    Capture(CaptureArgs),
    /// Loads, unloads or inspects the kernel module.
    Driver {
        #[command(subcommand)]
        action: DriverAction,
    },
    /// Runs a command (or attaches to a process) under a ptrace tracer and
    /// checks its events against the rules: no kernel module needed.
    #[command(long_about = RUN_ABOUT)]
    Run(Box<TraceArgs>),
    /// Reads the alerts every node sent to a NATS JetStream stream
    /// (`nats_output`) and shows, per node, alerts, drops and last contact,
    /// in the terminal and (with --listen) in the browser.
    Fleet(Box<FleetArgs>),
    /// The tracer process `peregrine run` starts (internal).
    #[command(name = "ptrace-tracer", hide = true)]
    PtraceTracer(TracerArgs),
}

const RUN_ABOUT: &str = "\
Runs CMD under a ptrace tracer and checks its events, and those of every process it starts, \
against the rules, with the same outputs as a live run. No kernel module is needed.

With `-- CMD`, a seccomp filter stops the workload only at the syscalls rules look at; \
peregrine exits with CMD's exit status once CMD and all its descendants are done. \
If peregrine is stopped (SIGINT, SIGTERM, -M) or dies first, the tracer process stops \
reporting and lets the workload run to its end: the filter cannot be taken out of a running \
process, and with no tracer at all its syscalls would fail with ENOSYS. Stopped before CMD \
finished, peregrine says so and exits with status 125.

With `--attach PID`, no filter can be installed into the running process: every thread \
stops at every syscall (PTRACE_SYSCALL), which costs more. When peregrine stops, every \
thread is detached and its pending signal passed on.";

#[derive(Debug, Args)]
pub struct TraceArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// Traces this running process (all its threads) instead of starting a command.
    #[arg(long = "attach", value_name = "PID", conflicts_with = "command")]
    pub attach: Option<i32>,

    /// The command to run, after `--`.
    #[arg(last = true, value_name = "CMD", required_unless_present = "attach")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct TracerArgs {
    /// Writes the records to this inherited file descriptor (a pipe).
    #[arg(
        long = "records-fd",
        value_name = "FD",
        conflicts_with = "records_file"
    )]
    pub records_fd: Option<i32>,

    /// Writes the records to this file.
    #[arg(long = "records-file", value_name = "FILE")]
    pub records_file: Option<PathBuf>,

    #[arg(long = "attach", value_name = "PID", conflicts_with = "command")]
    pub attach: Option<i32>,

    #[arg(last = true, value_name = "CMD", required_unless_present = "attach")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The capture to write.
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: PathBuf,

    /// Reads from this capture instead of the kernel module.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Option<PathBuf>,

    /// Keeps only the events matching this filter (Falco filter syntax).
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,

    /// Stops after this many seconds.
    #[arg(short = 'M', value_name = "SECONDS", value_parser = crate::config::duration::seconds_arg)]
    pub duration: Option<u64>,

    /// Stops after this many events.
    #[arg(short = 'n', long = "count", value_name = "N")]
    pub count: Option<u64>,

    /// Bytes of read/write buffers kept per event.
    #[arg(
        short = 's',
        long = "snaplen",
        value_name = "BYTES",
        default_value_t = 80
    )]
    pub snaplen: u32,
}

#[derive(Debug, Subcommand)]
pub enum DriverAction {
    /// Says whether the module is loaded, its API version and buffer sizes.
    Status,
    /// Loads the module built for the running kernel.
    Load {
        /// Ring buffer bytes per CPU (a power of two).
        #[arg(long, value_name = "BYTES")]
        buffer_size: Option<u64>,
        /// Path of peregrine.ko, if not the one installed for this kernel.
        #[arg(long, value_name = "FILE")]
        module: Option<PathBuf>,
    },
    /// Unloads the module.
    Unload,
}

#[derive(Debug, Args)]
pub struct FleetArgs {
    /// A NATS server of the cluster; repeat for several.
    #[arg(
        long = "server",
        value_name = "URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub servers: Vec<String>,
    /// The stream the nodes publish to (their nats_output.stream).
    #[arg(long, default_value = "PEREGRINE_ALERTS")]
    pub stream: String,
    /// The durable consumer's name: a restarted `fleet` resumes from it.
    #[arg(long, default_value = "peregrine-fleet")]
    pub durable: String,
    /// Only the subjects matching this filter (e.g. `peregrine.alerts.*.critical`).
    #[arg(long)]
    pub subject: Option<String>,
    /// Print every alert (its JSON) as it arrives.
    #[arg(long)]
    pub alerts: bool,
    /// Print the summary as one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Seconds between node tables.
    #[arg(long, default_value_t = 10)]
    pub every: u64,
    /// A node silent for longer than this many seconds is marked QUIET.
    #[arg(long, default_value_t = 60)]
    pub quiet_after: u64,
    /// Stop once nothing has come for this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub idle_exit: Option<u64>,
    /// Also serve the fleet view in the browser on this address (e.g.
    /// 127.0.0.1:8766): the node table and the latest alerts, live, and
    /// their JSON at /console/api/fleet. Loopback clients only, unless
    /// PEREGRINE_CONSOLE_TOKEN is set (then every client must show it).
    #[arg(long, value_name = "ADDRESS:PORT")]
    pub listen: Option<String>,
    /// A PEM file with the private key and certificate chain: serve the
    /// view over HTTPS.
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub listen_cert: Option<PathBuf>,
    /// How many of the newest alerts, of all nodes, the served view keeps
    /// (at most 10000).
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub latest: usize,
    /// A NATS credentials file (.creds).
    #[arg(long)]
    pub creds: Option<PathBuf>,
    #[arg(long)]
    pub token: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub password: Option<String>,
    /// CA certificate(s) to verify the servers with (requires TLS).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Read a Kafka topic (the nodes' kafka_output.topic) instead of NATS:
    /// a bootstrap broker, host:port; repeat for several.
    #[arg(long = "kafka", value_name = "HOST:PORT")]
    pub kafka_brokers: Vec<String>,
    /// The Kafka topic the nodes publish to.
    #[arg(long, default_value = "peregrine-alerts", requires = "kafka_brokers")]
    pub topic: String,
    /// Where the Kafka reader keeps how far it read each partition, so
    /// that a restarted `fleet` resumes there; without it, the topic is
    /// read from its start.
    #[arg(long, value_name = "FILE", requires = "kafka_brokers")]
    pub kafka_offsets: Option<PathBuf>,
    /// SASL for Kafka (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), with --user
    /// and --password.
    #[arg(long, value_name = "MECHANISM", requires = "kafka_brokers")]
    pub sasl_mechanism: Option<String>,
}
