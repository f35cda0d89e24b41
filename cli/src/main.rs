//! `peregrine`: runtime security for Linux.
#![deny(unsafe_op_in_unsafe_fn)]

use peregrine::{
    capture, driver_cmd, log, outputs, reload, ruleset, run, servers, traced, webserver,
};

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use peregrine_driver_sys::DriverConfig;
use peregrine_engine::field::FieldSource;
use peregrine_engine::syscall_fields::SyscallFields;

use peregrine::args::{Cli, Command, DriverAction, RunArgs};
use peregrine::config::Config;
use peregrine::drops::{DropCounters, DropMonitor};
use peregrine::metrics::Metrics;
use peregrine::outputs::{
    Channel, Dispatcher, FileChannel, GrpcChannel, HttpChannel, HttpOptions, ProgramChannel,
    StdoutChannel, SyslogChannel,
};
use peregrine::ruleset::{RulesInput, Selection};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Driver { action }) => driver(action),
        Some(Command::Capture(args)) => {
            let stop = run::stop_flag();
            capture::run(&args, &stop, &hostname()).map(|report| {
                log::message(&format!(
                    "{} of {} events written to {}",
                    report.written,
                    report.seen,
                    args.write.display()
                ));
                ExitCode::SUCCESS
            })
        }
        Some(Command::Run(args)) => {
            let traced = Traced {
                attach: args.attach,
                command: args.command,
            };
            run_main(args.run, Some(traced))
        }
        Some(Command::PtraceTracer(args)) => traced::tracer_main(args),
        None => run_main(cli.run, None),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::from(1)
        }
    }
}

fn driver(action: DriverAction) -> Result<ExitCode, String> {
    let report = match action {
        DriverAction::Status => driver_cmd::status(),
        DriverAction::Load {
            buffer_size,
            module,
        } => driver_cmd::load(module.as_deref(), buffer_size),
        DriverAction::Unload => driver_cmd::unload(),
    }
    .map_err(|e| e.to_string())?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn hostname() -> String {
    if let Ok(name) = std::env::var("FALCO_HOSTNAME") {
        return name;
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn build_channels(config: &Config) -> Result<Vec<Box<dyn Channel>>, String> {
    let buffered = config.buffered_outputs;
    let mut channels: Vec<Box<dyn Channel>> = Vec::new();
    if config.stdout_output.enabled {
        channels.push(Box::new(StdoutChannel::new(buffered)));
    }
    if config.file_output.enabled {
        let file = &config.file_output;
        channels.push(Box::new(
            FileChannel::open(file.filename.clone(), file.keep_alive, buffered)
                .map_err(|e| e.to_string())?,
        ));
    }
    if config.syslog_output.enabled {
        channels.push(Box::new(
            SyslogChannel::connect().map_err(|e| e.to_string())?,
        ));
    }
    if config.program_output.enabled {
        let program = &config.program_output;
        channels.push(Box::new(ProgramChannel::new(
            program.program.clone(),
            program.keep_alive,
        )));
    }
    if config.http_output.enabled {
        let http = &config.http_output;
        let path = |s: &str| (!s.is_empty()).then(|| std::path::PathBuf::from(s));
        let mut options = HttpOptions {
            url: http.url.clone(),
            insecure: http.insecure,
            ca_cert: path(&http.ca_cert),
            ca_bundle: path(&http.ca_bundle),
            ca_path: path(&http.ca_path),
            json: config.json_output,
            ..HttpOptions::default()
        };
        if !http.user_agent.is_empty() {
            options.user_agent = http.user_agent.clone();
        }
        if http.mtls {
            options.client_cert = path(&http.client_cert);
            options.client_key = path(&http.client_key);
        }
        channels.push(Box::new(
            HttpChannel::new(options).map_err(|e| e.to_string())?,
        ));
    }
    if config.grpc_output.enabled {
        channels.push(Box::new(GrpcChannel::from_config(config)?));
    }
    Ok(channels)
}

/// `peregrine run`'s source: a command to start, or a process to attach to.
struct Traced {
    attach: Option<i32>,
    command: Vec<std::ffi::OsString>,
}

fn run_main(args: RunArgs, traced: Option<Traced>) -> Result<ExitCode, String> {
    if args.version {
        println!("peregrine {}", env!("CARGO_PKG_VERSION"));
        println!(
            "driver API {}.{}.{}",
            peregrine_driver_sys::abi::PG_API_VERSION_MAJOR,
            peregrine_driver_sys::abi::PG_API_VERSION_MINOR,
            peregrine_driver_sys::abi::PG_API_VERSION_PATCH
        );
        let (major, minor, patch) = peregrine_engine::rules::ENGINE_VERSION;
        println!("rules engine {major}.{minor}.{patch}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut overrides = args.options.clone();
    if args.unbuffered {
        overrides.push("buffered_outputs=false".into());
    }
    let loaded = Config::load(args.config.as_deref(), &overrides).map_err(|e| e.to_string())?;
    for warning in &loaded.warnings {
        peregrine::log::message(&format!("Warning: {warning}"));
    }
    if !args.run_tags.is_empty()
        && (!args.disable_tags.is_empty() || !args.disable_rules.is_empty())
    {
        return Err("You can not specify both disabled (-D/-T) and enabled (-t) rules".into());
    }
    let config = loaded.config;
    log::use_iso_8601(config.time_format_iso_8601);
    log::message(&format!(
        "Peregrine version: {} (driver API {}.{}.{})",
        env!("CARGO_PKG_VERSION"),
        peregrine_driver_sys::abi::PG_API_VERSION_MAJOR,
        peregrine_driver_sys::abi::PG_API_VERSION_MINOR,
        peregrine_driver_sys::abi::PG_API_VERSION_PATCH
    ));
    if let Some(path) = &args.config {
        log::message(&format!("Loaded configuration file {}", path.display()));
    }

    if let Some(source) = &args.list_fields {
        print!("{}", list_fields(source));
        return Ok(ExitCode::SUCCESS);
    }

    if !args.validate.is_empty() {
        let inputs = ruleset::expand(&args.validate).map_err(|e| e.to_string())?;
        let ruleset = ruleset::load(&inputs, ruleset::output_extra(args.print.as_deref()));
        if config.json_output {
            println!("{}", ruleset::validation_json(&ruleset.results));
        } else {
            for result in &ruleset.results {
                print!("{}", ruleset::validation_text(result));
            }
        }
        return Ok(if ruleset.has_errors() {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }

    // Rules: -r replaces the config's list; with neither, the built-in ones.
    let inputs =
        ruleset::chosen_inputs(&args.rules, &config.rules_file).map_err(|e| e.to_string())?;
    if matches!(args.print.as_deref(), Some("k" | "kubernetes")) {
        log::message(
            "-pk: Kubernetes pod metadata is not collected; printing container id and name",
        );
    }
    let mut ruleset = ruleset::load(&inputs, ruleset::output_extra(args.print.as_deref()));
    for warning in ruleset.warnings() {
        peregrine::log::message(&format!("Warning: {warning}"));
    }
    if ruleset.has_errors() {
        for error in ruleset.errors() {
            eprintln!("Error: {error}");
        }
        let names: Vec<String> = inputs.iter().map(RulesInput::name).collect();
        return Err(format!("could not load rules: {}", names.join(", ")));
    }
    let selection = Selection {
        min_priority: Some(config.priority),
        disabled_names: args.disable_rules.clone(),
        disabled_tags: args.disable_tags.clone(),
        run_tags: args.run_tags.clone(),
    };
    selection.apply(&mut ruleset.syscall);
    selection.apply(&mut ruleset.k8s_audit);

    if args.list_rules {
        print!("{}", ruleset::list_rules(&ruleset));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(name) = &args.describe_rule {
        return match ruleset::describe_rule(&ruleset, name) {
            Some(text) => {
                print!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            None => Err(format!("no rule named '{name}' is loaded")),
        };
    }
    if args.dry_run {
        let enabled = ruleset.rules().filter(|r| r.enabled).count();
        peregrine::log::message(&format!(
            "dry run: config and {enabled} enabled rules loaded"
        ));
        return Ok(ExitCode::SUCCESS);
    }

    let hangups = reload::Hangups::catch();
    let render = outputs::reload::render_options(&config);
    let channels = build_channels(&config)?;
    let dispatcher = Arc::new(
        Dispatcher::new(channels, render, config.outputs_queue.capacity)
            .map_err(|e| format!("cannot start outputs: {e}"))?,
    );
    let stop = run::stop_flag();
    reopen_outputs_on_sigusr1(&dispatcher);
    let host = hostname();

    // Which sources run: a capture or an audit file alone, or live sources.
    let audit_file = args
        .k8s_audit_file
        .clone()
        .or_else(|| k8s_audit_file_from_plugins(&config));
    let source_on = |name: &str, default: bool| {
        if args.disable_sources.iter().any(|s| s == name) {
            false
        } else {
            default || args.enable_sources.iter().any(|s| s == name)
        }
    };
    let live = args.capture.is_none() && audit_file.is_none() && traced.is_none();
    let run_syscalls = live && source_on("syscall", true);
    let run_webhook = live && source_on("k8s_audit", config.k8s_audit.enabled);
    // The audit thread runs whenever the webhook may: a reload that
    // enables `k8s_audit` then only has to start the listener.
    let audit_source = live && !args.disable_sources.iter().any(|s| s == "k8s_audit");

    let weak_dispatcher = Arc::downgrade(&dispatcher);
    let metrics = Arc::new(Metrics::new(
        Box::new(move || {
            weak_dispatcher
                .upgrade()
                .map(|d| d.stats_handles())
                .unwrap_or_default()
        }),
        None,
    ));
    let (audit_tx, audit_rx) = crossbeam_channel::bounded::<serde_json::Value>(AUDIT_QUEUE);
    let audit_queue = audit_source.then(|| servers::AuditQueue {
        queue: audit_tx,
        stats: Arc::new(webserver::AuditIntakeStats::default()),
    });
    let servers = Arc::new(
        servers::Servers::start(
            config.webserver.enabled.then_some(&config.webserver),
            run_webhook.then_some(&config.k8s_audit),
            audit_queue.clone(),
            Arc::clone(&metrics),
        )
        .map_err(|e| e.to_string())?,
    );
    // Only `servers` holds the queue's sender now: its shutdown ends the
    // audit thread.
    drop(audit_queue);

    let mailbox = Arc::new(reload::Mailbox::default());
    let mut audit_thread = None;
    if audit_source {
        // The audit rules move to their own thread: audit events never wait
        // behind kernel events.
        // (Loading no files compiles an empty set to leave in its place.)
        let mut rules =
            std::mem::replace(&mut ruleset.k8s_audit, ruleset::load(&[], None).k8s_audit);
        let (dispatcher, metrics, host, rx) = (
            Arc::clone(&dispatcher),
            Arc::clone(&metrics),
            host.clone(),
            audit_rx.clone(),
        );
        let mut inbox = mailbox.audit_inbox();
        audit_thread = Some(
            std::thread::Builder::new()
                .name("k8s-audit".into())
                .spawn(move || {
                    let mut detections = run::Detections::default();
                    for event in rx {
                        if let Some(reloaded) = inbox.poll() {
                            rules = reloaded;
                            log::message("audit rules reloaded");
                        }
                        run::evaluate_audit_event(
                            &mut rules,
                            &event,
                            &dispatcher,
                            &host,
                            &mut detections,
                            &metrics,
                        );
                    }
                    detections
                })
                .map_err(|e| format!("cannot start the audit thread: {e}"))?,
        );
    }
    drop(audit_rx);

    let reload_thread = hangups.and_then(|hangups| {
        reload::ReloadThread::start(
            hangups,
            reload::Reloader {
                config_path: args.config.clone(),
                overrides: overrides.clone(),
                command_line_rules: args.rules.clone(),
                selection: selection.clone(),
                output_extra: ruleset::output_extra(args.print.as_deref()),
                running: {
                    let mut running = config.clone();
                    running.k8s_audit.enabled = run_webhook;
                    running
                },
                force_webhook: run_webhook && !config.k8s_audit.enabled,
                dispatcher: Arc::downgrade(&dispatcher),
                build_channels: Box::new(build_channels),
                mailbox: Arc::clone(&mailbox),
                servers: Arc::clone(&servers),
            },
        )
    });

    // Always measured, so that a reload adding drop actions acts at once.
    let mut drop_monitor = DropMonitor::new(&config.syscall_event_drops, DropCounters::default());
    let mut pipeline = run::Pipeline {
        rules: &mut ruleset.syscall,
        dispatcher: &dispatcher,
        metrics: &metrics,
        stats_every: config
            .metrics
            .enabled
            .then(|| Duration::from_secs(config.metrics.interval.max(1))),
        next_stats: config
            .metrics
            .enabled
            .then(|| Instant::now() + Duration::from_secs(config.metrics.interval.max(1))),
        hostname: &host,
        drops: Some(&mut drop_monitor),
        stop: &stop,
        reload: Some(mailbox.syscall_inbox()),
        deadline: args
            .duration
            .map(|s| Instant::now() + Duration::from_secs(s)),
        detections: run::Detections::default(),
        exit_requested: false,
        reloaded: None,
    };
    let mut traced_exit = None;
    let outcome = if let Some(traced) = &traced {
        traced::run(traced.attach, &traced.command, &mut pipeline).map(|ending| {
            if let traced::Ending::Finished(code) = ending {
                traced_exit = Some(code);
            }
        })
    } else if let Some(path) = &args.capture {
        run::replay(path, &mut pipeline)
    } else if let Some(path) = &audit_file {
        let mut detections = run::Detections::default();
        let result = run::k8s_audit_file(
            path,
            &mut ruleset.k8s_audit,
            &dispatcher,
            &host,
            &mut detections,
            &metrics,
        );
        pipeline.detections = detections;
        result
    } else if run_syscalls {
        let driver_config = DriverConfig {
            snaplen: Some(config.driver.snaplen),
            sampling_ratio: Some(config.driver.sampling_ratio),
            ..DriverConfig::default()
        };
        run::live(
            driver_config,
            &config.base_syscalls,
            args.all_events,
            &mut pipeline,
        )
    } else if run_webhook {
        run::wait_until_stopped(&mut pipeline);
        Ok(())
    } else {
        Err(run::RunError::Audit(
            "every event source is disabled: nothing to do".into(),
        ))
    };
    let exit_requested = pipeline.exit_requested;
    let mut detections = std::mem::take(&mut pipeline.detections);
    drop(pipeline);
    if let Some(thread) = reload_thread {
        thread.stop();
    }
    servers.shutdown();
    if let Some(thread) = audit_thread {
        match thread.join() {
            Ok(audit) => detections.merge(audit),
            Err(_) => log::message("the audit thread panicked"),
        }
    }
    let reports = match Arc::try_unwrap(dispatcher) {
        Ok(dispatcher) => dispatcher.shutdown(),
        Err(_) => Vec::new(),
    };
    outcome.map_err(|e| e.to_string())?;

    if drop_monitor.acting() {
        eprintln!("{}", drop_monitor.summary());
    }
    for report in &reports {
        if report.overflowed > 0 || report.failed > 0 {
            log::message(&format!(
                "output '{}': {} alerts sent, {} did not fit its queue, {} failed",
                report.name, report.sent, report.overflowed, report.failed
            ));
        }
    }
    print!("{}", detections.summary());
    Ok(if exit_requested {
        ExitCode::from(1)
    } else if let Some(code) = traced_exit {
        ExitCode::from(code)
    } else {
        ExitCode::SUCCESS
    })
}

/// logrotate's signal: the file output reopens its file, the program
/// output restarts its program.
fn reopen_outputs_on_sigusr1(dispatcher: &Arc<Dispatcher>) {
    let mut signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGUSR1]) {
        Ok(signals) => signals,
        Err(e) => {
            log::message(&format!(
                "cannot catch SIGUSR1, outputs will not reopen on it: {e}"
            ));
            return;
        }
    };
    // The thread holds only a weak reference: it must not keep the
    // dispatcher (and its output threads) alive at shutdown.
    let dispatcher = Arc::downgrade(dispatcher);
    let spawned = std::thread::Builder::new()
        .name("sigusr1".into())
        .spawn(move || {
            for _ in signals.forever() {
                match dispatcher.upgrade() {
                    Some(dispatcher) => dispatcher.reopen(),
                    None => break,
                }
            }
        });
    if let Err(e) = spawned {
        log::message(&format!(
            "cannot watch SIGUSR1, outputs will not reopen on it: {e}"
        ));
    }
}

/// Audit events waiting for evaluation; past this the webhook answers 503.
const AUDIT_QUEUE: usize = 65_536;

/// Falco configs name the audit input as the k8saudit plugin's
/// `open_params`; a path there (not a URL) is read as an audit file.
fn k8s_audit_file_from_plugins(config: &Config) -> Option<std::path::PathBuf> {
    config.plugins.iter().find_map(|plugin| {
        let name = plugin.get("name")?.as_str()?;
        let params = plugin.get("open_params")?.as_str()?.trim();
        let is_file =
            !params.is_empty() && !params.starts_with("http://") && !params.starts_with("https://");
        (name == "k8saudit" && is_file).then(|| std::path::PathBuf::from(params))
    })
}

fn list_fields(wanted: &str) -> String {
    fn section<S: FieldSource>(source: &S, text: &mut String) {
        text.push_str(&format!("Event source: {}\n\n", source.name()));
        for field in source.fields() {
            let arg = field.arg.map(|a| format!("[{a}]")).unwrap_or_default();
            text.push_str(&format!(
                "{}{arg}  ({:?})\n    {}\n",
                field.name, field.ty, field.description
            ));
        }
        text.push('\n');
    }
    let mut text = String::new();
    let syscall = SyscallFields::new();
    let k8s = peregrine_engine::k8s_audit::K8sAuditSource::new();
    if wanted.is_empty() || wanted == syscall.name() {
        section(&syscall, &mut text);
    }
    if wanted.is_empty() || wanted == k8s.name() {
        section(&k8s, &mut text);
    }
    if text.is_empty() {
        text = format!("no event source named '{wanted}'; the sources are syscall and k8s_audit\n");
    }
    text
}
