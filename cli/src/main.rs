//! `peregrine`: runtime security for Linux.
#![deny(unsafe_op_in_unsafe_fn)]

use peregrine::servers;
use peregrine::sources::{plugins, traced};
use peregrine::{capture, commands, log, outputs, reload, ruleset, run, signals};

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use peregrine::args::{Cli, Command, DriverAction, RunArgs};
use peregrine::config::Config;
use peregrine::metrics::Metrics;
use peregrine::outputs::{
    Channel, Dispatcher, FileChannel, GrpcChannel, HttpChannel, HttpOptions, KafkaOptions,
    NatsOptions, ProgramChannel, StdoutChannel, SyslogChannel,
};
use peregrine::ruleset::Selection;
use peregrine::sources::drops::{DropCounters, DropMonitor};
use peregrine::sources::feed::{Ended, Shared};
use peregrine::sources::plan::{FeedParts, SourcePlan};

fn main() -> ExitCode {
    // Before anything else: a SIGHUP or SIGUSR1 sent while rules load must
    // wait for its handler, not kill the process. The tracer handles its
    // own signals (it must outlive a Peregrine that is stopped).
    let is_tracer = std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "ptrace-tracer");
    let early = (!is_tracer).then(signals::catch_early);
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
            let traced = traced::Workload {
                attach: args.attach,
                command: args.command,
            };
            run_main(args.run, Some(traced), early)
        }
        Some(Command::PtraceTracer(args)) => traced::tracer_main(args),
        Some(Command::Fleet(args)) => {
            let stop = run::stop_flag();
            peregrine::fleet::run(&args, &stop)
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| e.to_string())
        }
        None => run_main(cli.run, None, early),
    };
    signals::settle();
    match result {
        Ok(code) => code,
        Err(message) => {
            // A message may quote bytes of the user's file that are not
            // text (a YAML error naming the byte after a backslash): they
            // are written back as they were, as Falco writes them.
            let mut line = b"Error: ".to_vec();
            line.extend_from_slice(&peregrine_engine::text::raw_bytes(&message));
            line.push(b'\n');
            let _ = std::io::stderr().write_all(&line);
            ExitCode::from(1)
        }
    }
}

/// Falco's words for an exception that ends it (`Runtime error: ...
/// Exiting.`), where its actions' failures say `Error: ...`.
fn runtime_error(message: &str) -> ExitCode {
    let line = format!("Runtime error: {message}. Exiting.\n");
    let _ = std::io::stderr().write_all(&peregrine_engine::text::raw_bytes(&line));
    ExitCode::from(1)
}

fn driver(action: DriverAction) -> Result<ExitCode, String> {
    let report = match action {
        DriverAction::Status => commands::driver::status(),
        DriverAction::Load {
            buffer_size,
            module,
        } => commands::driver::load(module.as_deref(), buffer_size),
        DriverAction::Unload => commands::driver::unload(),
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
        channels.push(Box::new(SyslogChannel::connect()));
    }
    if config.program_output.enabled {
        let program = &config.program_output;
        channels.push(Box::new(ProgramChannel::new(
            program.program.clone(),
            program.keep_alive,
            Duration::from_millis(config.output_timeout),
        )));
    }
    if config.http_output.enabled {
        channels.push(Box::new(
            HttpChannel::new(HttpOptions::from_config(config)).map_err(|e| e.to_string())?,
        ));
    }
    if config.nats_output.enabled {
        let options = NatsOptions::from_config(&config.nats_output, &hostname());
        channels.push(Box::new(
            outputs::nats::channel(options).map_err(|e| e.to_string())?,
        ));
    }
    if config.kafka_output.enabled {
        let options = KafkaOptions::from_config(&config.kafka_output, &hostname());
        channels.push(Box::new(
            outputs::kafka::channel(options).map_err(|e| e.to_string())?,
        ));
    }
    if config.grpc_output.enabled {
        channels.push(Box::new(GrpcChannel::from_config(config)?));
    }
    if config.webserver.enabled && config.webserver.console {
        channels.push(Box::new(outputs::ConsoleChannel::new(Arc::clone(
            peregrine::servers::console::Hub::global(),
        ))));
    }
    Ok(channels)
}

fn run_main(
    args: RunArgs,
    traced: Option<traced::Workload>,
    early: Option<signals::Early>,
) -> Result<ExitCode, String> {
    let (hangups, reopen) = match early {
        Some(early) => (early.hangups, early.reopen),
        None => (None, None),
    };
    if args.version {
        // As Falco: JSON when the configuration (or -o) asks for JSON
        // output; a configuration that does not load leaves the text.
        let json = Config::load(args.config.as_deref(), &args.options)
            .map(|loaded| loaded.config.json_output)
            .unwrap_or(false);
        if json {
            println!("{}", commands::version::as_json());
        } else {
            print!("{}", commands::version::as_text());
        }
        return Ok(ExitCode::SUCCESS);
    }
    // As Falco: before the config is read, so a broken one does not
    // keep the schema that would show what is wrong with it.
    if args.config_schema {
        println!("{:#}", peregrine::config::schema::config_schema());
        return Ok(ExitCode::SUCCESS);
    }
    if args.rule_schema {
        println!("{:#}", peregrine_engine::rules::schema::rule_schema());
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
    let config_files = loaded.config_files;
    let merged_config = loaded.merged;
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

    // Checked before any listing, as Falco checks its options first.
    let (list_format, format_warning) =
        commands::list_format::format_from_args(args.list_format.as_deref(), args.markdown)?;
    if let Some(warning) = format_warning {
        log::message(warning);
    }
    if args.page_size {
        // SAFETY: sysconf reads a constant of the system and touches no memory of ours.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size <= 0 {
            return Err("Unable to get the system page size through sysconf(_SC_PAGESIZE)".into());
        }
        log::message(&format!("Your system page size is: {size} bytes"));
        return Ok(ExitCode::SUCCESS);
    }

    if args.print_ignored_events {
        // Falco drops the busiest I/O syscalls (read, write, sendto...)
        // even when a rule names them, unless -A; its rule then never
        // fires. Peregrine captures what the enabled rules name, so its
        // list is empty, in Falco's layout for the scripts that read it.
        print!("Ignored syscall(s):\n\n");
        log::message(
            "Peregrine ignores no syscall an enabled rule names; \
             -A or base_syscalls.all adds those no rule or state needs",
        );
        return Ok(ExitCode::SUCCESS);
    }

    if args.list_events {
        let schema = format!(
            "{}.{}.{}",
            peregrine_driver_sys::abi::PG_API_VERSION_MAJOR,
            peregrine_driver_sys::abi::PG_API_VERSION_MINOR,
            peregrine_driver_sys::abi::PG_API_VERSION_PATCH
        );
        print!("{}", commands::list_events::render(&schema, list_format)?);
        return Ok(ExitCode::SUCCESS);
    }

    // Plugins load before rules, whose fields they may provide.
    if let Some(name) = &args.plugin_info {
        print!("{}", plugins::host::plugin_info(&config, name)?);
        return Ok(ExitCode::SUCCESS);
    }
    let hosted = plugins::host::Hosted::from_config(&config)?;
    plugins::syscall::install(&hosted.plugins);
    plugins::syscall::install_parsers(hosted.parsers_for("syscall"));
    plugins::syscall::install_async_names(hosted.async_names_for("syscall"));
    if args.list_plugins {
        print!("{}", hosted.list());
        return Ok(ExitCode::SUCCESS);
    }

    if let Some(source) = &args.list_fields {
        let options = commands::list_fields::ListOptions {
            format: list_format,
            names_only: args.names_only,
            verbose: args.verbose,
        };
        let plugin_classes = hosted.field_classes();
        print!(
            "{}",
            commands::list_fields::render_with_plugins(source, options, &plugin_classes)?
        );
        return Ok(ExitCode::SUCCESS);
    }

    if !args.validate.is_empty() {
        let inputs = ruleset::expand(&args.validate).map_err(|e| e.to_string())?;
        let shaping = ruleset::Shaping::new(ruleset::output_extra(args.print.as_deref()), &config);
        let ruleset = ruleset::load_shaped(&inputs, &shaping);
        // Falco's load stops at its first error, before indexing rules.
        if let (false, Some(refusal)) = (ruleset.has_errors(), &ruleset.fatal) {
            return Ok(runtime_error(refusal));
        }
        // The text report is made in both forms, as Falco makes it: its
        // warnings go to stderr, and an invalid file ends the run with the
        // whole report as the error.
        let summary: String = ruleset
            .results
            .iter()
            .map(ruleset::validation_text)
            .collect();
        if config.json_output {
            println!("{}", ruleset::validation_json(&ruleset.results));
        } else {
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(&peregrine_engine::text::raw_bytes(&summary));
            let _ = stdout.flush();
        }
        return if ruleset.has_errors() {
            // Falco's report ends where its stdout adds the last newline.
            Err(summary.strip_suffix('\n').unwrap_or(&summary).to_string())
        } else {
            Ok(ExitCode::SUCCESS)
        };
    }

    // Rules: -r replaces the config's list; with neither, the built-in ones.
    let inputs =
        ruleset::chosen_inputs(&args.rules, &config.rules_file).map_err(|e| e.to_string())?;
    if args.print.is_some() {
        log::message(
            "The -p/--print option is deprecated, as in Falco: use -o append_output=... instead \
             (-pc and -pk add nothing: append_output's suggested_output names the container and the pod)",
        );
    }
    let shaping = ruleset::Shaping::new(ruleset::output_extra(args.print.as_deref()), &config);
    let plugin_sources = hosted.sources();
    let plugin_fields = plugin_sources
        .iter()
        .map(|(source, plugin, _)| hosted.fields_for(source, plugin))
        .collect();
    let mut ruleset = ruleset::load_with_plugins(&inputs, &shaping, plugin_fields);
    for warning in ruleset.warnings() {
        peregrine::log::message(&format!("Warning: {warning}"));
    }
    for warning in &ruleset.unknown_sources {
        peregrine::log::message(&format!("Warning: {warning}"));
    }
    // Falco stops at the first file that fails and ends with its report,
    // as -V prints it.
    if let Some(failed) = ruleset.results.iter().find(|r| !r.successful()) {
        let report = ruleset::validation_text(failed);
        return Err(report.strip_suffix('\n').unwrap_or(&report).to_string());
    }
    if let Some(refusal) = &ruleset.fatal {
        return Ok(runtime_error(refusal));
    }
    let selection = Selection {
        disabled_names: args.disable_rules.clone(),
        disabled_tags: args.disable_tags.clone(),
        run_tags: args.run_tags.clone(),
        ..Selection::default()
    }
    .with_config(&config);
    selection.apply(&mut ruleset.syscall);
    selection.apply(&mut ruleset.k8s_audit);
    for rules in &mut ruleset.plugin_sources {
        selection.apply(rules);
    }
    plugins::host::check_requirements(&inputs, &hosted)?;
    peregrine::servers::console::Hub::global().set_rules(&ruleset);

    if args.support {
        let cmdline = std::env::args().collect::<Vec<_>>().join(" ");
        println!(
            "{}",
            commands::support::document(&cmdline, &merged_config, &inputs)
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.list_rules || args.describe_rule.is_some() {
        let name = args.describe_rule.as_deref();
        let mut stdout = std::io::stdout();
        let listed = if config.json_output {
            match ruleset::describe_json(&ruleset, name, &hosted.infos()) {
                Ok(mut json) => {
                    ruleset::sanitize_strings(&mut json);
                    Some(format!("{json}\n"))
                }
                Err(ruleset::DescribeJsonError::NotLoaded(_)) => None,
                // Falco's describe throws: its runtime error, too.
                Err(e) => return Ok(runtime_error(&e.to_string())),
            }
        } else {
            ruleset::list_rules(&ruleset, name)
        };
        let Some(listed) = listed else {
            // Falco's words for a rule it does not know (an exception in
            // Falco, hence not its "Error:" line).
            return Ok(runtime_error(&format!(
                "Rule \"{}\" is not loaded",
                name.unwrap_or("")
            )));
        };
        // Names and descriptions as the file's bytes, as Falco's text (the
        // JSON has none left: see sanitize_strings).
        let _ = stdout.write_all(&peregrine_engine::text::raw_bytes(&listed));
        let _ = stdout.flush();
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        let enabled = ruleset.rules().filter(|r| r.enabled).count();
        peregrine::log::message(&format!(
            "dry run: config and {enabled} enabled rules loaded"
        ));
        return Ok(ExitCode::SUCCESS);
    }

    // Falco's watch_config_files: a changed file reloads as SIGHUP does,
    // through the reload thread (so only when SIGHUP is caught). Started
    // before any listener so that no save after startup is missed: a
    // SIGHUP raised before the reload thread runs waits for it.
    let config_watch = match (&hangups, &args.config) {
        (Some(_), Some(path)) if config.watch_config_files => {
            let mut config_paths = vec![path.clone()];
            config_paths.extend(config_files.iter().cloned());
            let rules_paths = if args.rules.is_empty() {
                config.rules_file.clone()
            } else {
                args.rules.clone()
            };
            peregrine::config::watch::ConfigWatch::start(peregrine::config::watch::Watched::of(
                &config_paths,
                &rules_paths,
            ))
        }
        _ => None,
    };

    // fd.*ip.name: the names rules use are resolved in the background for
    // as long as the engine runs.
    let _dns_names = match peregrine::dns::Resolver::start(
        peregrine::dns::shared_names().clone(),
        peregrine::dns::Lookup::System,
    ) {
        Ok(resolver) => Some(resolver),
        Err(e) => {
            log::message(&format!(
                "Warning: cannot start the DNS resolver thread ({e}); fd.*ip.name fields stay empty"
            ));
            None
        }
    };

    // Before the channels register theirs: what was not delivered is said
    // before programs are killed.
    report_undelivered_on_forced_stop();

    if let Some(path) = &args.pidfile {
        std::fs::write(path, std::process::id().to_string())
            .map_err(|e| format!("could not write pid to pidfile {}: {e}", path.display()))?;
    }

    let render = outputs::reload::render_options(&config);
    let channels = build_channels(&config)?;
    let dispatcher = Arc::new(
        Dispatcher::new(channels, render, config.outputs_queue.capacity)
            .map_err(|e| format!("cannot start outputs: {e}"))?,
    );
    let stop = run::stop_flag();
    dispatcher.set_output_timeout(Duration::from_millis(config.output_timeout));
    if let Some(reopen) = reopen {
        reopen_outputs_on_sigusr1(reopen, &dispatcher);
    }
    let host = hostname();

    // Which sources run: a capture, an audit file or a traced command
    // alone, or the live sources.
    let plan = SourcePlan::decide(&args, &config, traced.is_some(), plugin_sources);
    let run_webhook = plan.webhook_listening();
    if let Some(path) = &args.syscall_capture {
        if !matches!(
            plan.syscall,
            Some(peregrine::sources::plan::SyscallFeed::Kernel)
        ) {
            return Err(format!(
                "--syscall-capture {}: only the kernel module's events are recorded, and this run does not read them",
                path.display()
            ));
        }
    }

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
    metrics.set_falco_context(peregrine::metrics::falco::Context {
        families: (&config.metrics).into(),
        sources: plan.engines(),
        hostname: host.clone(),
        start_ts: 0,
        reload_ts: 0,
        ..Default::default()
    });
    if !hosted.plugins.is_empty() {
        let reader = hosted.metrics_reader();
        metrics.set_plugins(Some(Arc::new(move || reader.read())));
    }
    metrics.set_loaded_files(&ruleset::input_files(&inputs), &{
        let mut files: Vec<std::path::PathBuf> = args.config.iter().cloned().collect();
        files.extend(config_files.iter().cloned());
        files
    });
    // Container metadata for the sources that watch running processes.
    let containers = if plan.watches_processes() {
        let config = peregrine::containers::ContainerConfig::from_falco(
            &config.plugins,
            config.load_plugins.as_deref(),
            config.container_engines.as_ref(),
        )
        .map_err(|e| e.to_string())?;
        peregrine::containers::start(&config)
    } else {
        None
    };
    if let Some(link) = &containers {
        metrics.set_containers(Some(Arc::clone(link.stats())));
    }
    // Each source's loop takes its own rules; the syscall ones stay with
    // the main thread's pipeline.
    let ruleset::Ruleset {
        syscall: mut syscall_rules,
        k8s_audit: audit_rules,
        plugin_sources: plugin_rules,
        ..
    } = ruleset;
    let mut feeds = plan.feeds(FeedParts {
        config: &config,
        all_events: args.all_events,
        traced,
        audit_rules,
        plugin_rules,
        hosted: &hosted,
        plugin_capture: args.plugin_capture.clone(),
        syscall_capture: args.syscall_capture.clone(),
    });
    // Only `servers` holds the webhook queue's sender: its shutdown ends
    // the audit loop.
    let audit_queue = feeds.iter_mut().find_map(|feed| feed.intake());
    // As Falco: no webserver while a capture is replayed (there is no
    // agent to watch, and a replay beside a running agent must not fight
    // it for its port).
    let webserver =
        (config.webserver.enabled && plan.capture().is_none()).then_some(&config.webserver);
    let servers = Arc::new(
        servers::Servers::start(
            webserver,
            run_webhook.then_some(&config.k8s_audit),
            audit_queue,
            Arc::clone(&metrics),
        )
        .map_err(|e| e.to_string())?,
    );

    let mailbox = Arc::new(reload::Mailbox::default());
    let shared = Shared {
        dispatcher: Arc::clone(&dispatcher),
        metrics: Arc::clone(&metrics),
        hostname: host.clone(),
        stop: Arc::clone(&stop),
        mailbox: Arc::clone(&mailbox),
    };
    hosted.capture_open()?;
    // Async plugins push into the live sources; a capture carries the
    // async events it recorded instead.
    let mut lanes = hosted.start_async(&plan.async_targets())?;
    let mut running = Vec::with_capacity(feeds.len());
    for feed in feeds {
        running.push(feed.start(&shared, &mut lanes)?);
    }

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
                metrics: Some(Arc::clone(&metrics)),
            },
        )
    });

    // Always measured, so that a reload adding drop actions acts at once.
    let mut drop_monitor = DropMonitor::new(&config.syscall_event_drops, DropCounters::default());
    let mut pipeline = run::Pipeline {
        rules: &mut syscall_rules,
        dispatcher: &dispatcher,
        metrics: &metrics,
        stats_every: peregrine::metrics::file::stats_period(&config.metrics),
        next_stats: peregrine::metrics::file::stats_period(&config.metrics)
            .map(|every| Instant::now() + every),
        stats_rule: config.metrics.output_rule,
        stats_file: peregrine::metrics::file::MetricsFile::open(&config.metrics.output_file),
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
        capture: peregrine::capture::on_alert::AlertCapture::new(&config.capture, &host),
        containers,
        // The syscall feed brings its lane when it drives.
        async_events: None,
        async_num: 0,
    };
    let any_rule_captures = pipeline.any_rule_captures();
    if let Some(capture) = pipeline.capture.as_mut() {
        capture.set_rules_capture(any_rule_captures);
    }
    // The plan gives exactly one feed to the main thread.
    let outcome = running
        .iter_mut()
        .find_map(|feed| feed.drive(&mut pipeline))
        .unwrap_or(Ok(()));
    let exit_requested = pipeline.exit_requested;
    let mut ended = Ended {
        detections: std::mem::take(&mut pipeline.detections),
        ..Ended::default()
    };
    drop(pipeline);
    if let Some(watch) = config_watch {
        watch.stop();
    }
    if let Some(thread) = reload_thread {
        thread.stop();
    }
    servers.shutdown();
    for feed in &mut running {
        ended.merge(feed.join(&shared));
    }
    let mut feed_error = ended.error.take();
    hosted.stop_async();
    if let Err(e) = hosted.capture_close() {
        feed_error.get_or_insert(e);
    }
    // The plugins are destroyed when `hosted` goes, as Falco destroys
    // them: nothing that outlives the run (the metrics, the console's
    // rules for tries) may keep them.
    metrics.set_plugins(None);
    peregrine::servers::console::tryout::forget_rules();
    for feed in running {
        if let Err(e) = feed.close() {
            feed_error.get_or_insert(e);
        }
    }
    // The last holders of the dispatcher besides this function.
    drop(shared);
    let reports = match Arc::try_unwrap(dispatcher) {
        Ok(dispatcher) => dispatcher.shutdown(),
        Err(_) => Vec::new(),
    };
    outcome.map_err(|e| e.to_string())?;

    if drop_monitor.acting() {
        log::write_whole(&drop_monitor.summary());
    }
    for report in &reports {
        if report.overflowed > 0 || report.failed > 0 {
            log::message(&format!(
                "output '{}': {} alerts sent, {} did not fit its queue, {} failed",
                report.name, report.sent, report.overflowed, report.failed
            ));
        }
    }
    // Rule names as the file's bytes, as Falco prints them.
    let mut stdout = std::io::stdout();
    let _ = stdout.write_all(&peregrine_engine::text::raw_bytes(
        &ended.detections.summary(),
    ));
    let _ = stdout.flush();
    if let Some(error) = feed_error {
        return Err(error);
    }
    Ok(if exit_requested {
        ExitCode::from(1)
    } else if let Some(code) = ended.exit_code {
        ExitCode::from(code)
    } else {
        ExitCode::SUCCESS
    })
}

/// logrotate's signal: the file output reopens its file, the program
/// output restarts its program.
/// SIGUSR1s caught since start-up are acted on once the outputs run.
fn reopen_outputs_on_sigusr1(
    mut signals: signal_hook::iterator::Signals,
    dispatcher: &Arc<Dispatcher>,
) {
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

/// At a forced stop (a second SIGTERM), says per output how many alerts
/// were still queued and will not be delivered.
fn report_undelivered_on_forced_stop() {
    signals::on_forced_stop(|| {
        for (name, queued) in outputs::undelivered() {
            if queued > 0 {
                log::message(&format!(
                    "output '{name}': {queued} queued alerts were not delivered"
                ));
            }
        }
    });
}
