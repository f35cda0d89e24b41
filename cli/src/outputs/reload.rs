//! SIGHUP re-reads the config file and rebuilds the outputs from it,
//! beside the rules reload (crate::ruleset) that the same signal starts.
//!
//! What a reload applies: the alert channels and how alerts are rendered
//! (`stdout_output`, `file_output`, `syslog_output`, `program_output`,
//! `http_output`, `buffered_outputs`, `outputs_queue`, `json_output`,
//! `json_include_*`, `time_format_iso_8601`). Everything else (the gRPC
//! server and output, the webserver and webhook listeners, rules_file and
//! priority, drops, metrics, the driver, logging) is set up once: a
//! change there is reported as needing a restart and otherwise ignored.

use std::sync::Arc;

use super::{Channel, Dispatcher};
use crate::alert::RenderOptions;
use crate::config::{Config, Loaded};

/// Channels a reload leaves running as they are: their settings need a
/// restart (the gRPC server owns a socket clients are connected to).
pub const KEPT_ACROSS_RELOADS: &[&str] = &["grpc"];

/// Makes the channels a config asks for (main's `build_channels`).
pub type BuildChannels = dyn Fn(&Config) -> Result<Vec<Box<dyn Channel>>, String>;

/// How the config asks alerts to be rendered.
pub fn render_options(config: &Config) -> RenderOptions {
    RenderOptions {
        json_output: config.json_output,
        json_include_output_property: config.json_include_output_property,
        json_include_tags_property: config.json_include_tags_property,
        time_format_iso_8601: config.time_format_iso_8601,
    }
}

/// The config keys whose change a reload does not apply, changed between
/// `running` and `new`.
pub fn changes_needing_restart(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name: &'static str, same: bool| {
        if !same {
            changed.push(name);
        }
    };
    check("rules_file", running.rules_file == new.rules_file);
    check("priority", running.priority == new.priority);
    check("grpc", running.grpc == new.grpc);
    check("grpc_output", running.grpc_output == new.grpc_output);
    check(
        "syscall_event_drops",
        running.syscall_event_drops == new.syscall_event_drops,
    );
    check("metrics", running.metrics == new.metrics);
    check("webserver", running.webserver == new.webserver);
    check("k8s_audit", running.k8s_audit == new.k8s_audit);
    check("driver", running.driver == new.driver);
    check(
        "log_stderr/log_syslog/log_level",
        running.log_stderr == new.log_stderr
            && running.log_syslog == new.log_syslog
            && running.log_level == new.log_level,
    );
    check(
        "plugins",
        running.plugins == new.plugins && running.load_plugins == new.load_plugins,
    );
    changed
}

/// Applies a freshly loaded config to the outputs; returns what to log.
pub fn apply(
    dispatcher: &Dispatcher,
    running: &Config,
    loaded: Loaded,
    build: &BuildChannels,
) -> Vec<String> {
    let mut log: Vec<String> = loaded
        .warnings
        .iter()
        .map(|w| format!("Warning: {w}"))
        .collect();
    let new = loaded.config;
    // The kept channels are not built again.
    let mut to_build = new.clone();
    to_build.grpc_output.enabled = false;
    let capacity = new.outputs_queue.capacity;
    match build(&to_build) {
        Ok(channels) => match dispatcher.replace(
            channels,
            render_options(&new),
            capacity,
            KEPT_ACROSS_RELOADS,
        ) {
            Ok(()) => {
                crate::log::use_iso_8601(new.time_format_iso_8601);
                log.push(format!(
                    "configuration reloaded: outputs now {}",
                    dispatcher.channel_names().join(", ")
                ));
            }
            Err(e) => log.push(format!(
                "configuration reload: cannot start the outputs ({e}); the previous ones keep running"
            )),
        },
        Err(e) => log.push(format!(
            "configuration reload: {e}; the outputs keep their previous settings"
        )),
    }
    let restart = changes_needing_restart(running, &new);
    if !restart.is_empty() {
        log.push(format!(
            "configuration reload: changes to {} take effect at the next restart",
            restart.join(", ")
        ));
    }
    log
}

/// Re-reads the config on every SIGHUP, from a thread of its own.
pub fn reload_on_sighup(
    dispatcher: &Arc<Dispatcher>,
    running: Config,
    load: impl Fn() -> Result<Loaded, String> + Send + 'static,
    build: impl Fn(&Config) -> Result<Vec<Box<dyn Channel>>, String> + Send + 'static,
) {
    let mut signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(signals) => signals,
        Err(e) => {
            crate::log::message(&format!(
                "cannot watch SIGHUP for config reloads ({e}); a restart applies config changes"
            ));
            return;
        }
    };
    // A weak reference: the thread must not keep the dispatcher (and the
    // output threads) alive at shutdown.
    let dispatcher = Arc::downgrade(dispatcher);
    let spawned = std::thread::Builder::new()
        .name("config-reload".into())
        .spawn(move || {
            for _ in signals.forever() {
                let Some(dispatcher) = dispatcher.upgrade() else {
                    break;
                };
                let lines = match load() {
                    Ok(loaded) => apply(&dispatcher, &running, loaded, &build),
                    Err(e) => vec![format!(
                        "configuration reload: {e}; the outputs keep their previous settings"
                    )],
                };
                for line in lines {
                    crate::log::message(&line);
                }
            }
        });
    if let Err(e) = spawned {
        crate::log::message(&format!("cannot start the config reload thread: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::alert::{Alert, Priority, SharedAlert};
    use crate::outputs::{FileChannel, OutputError};

    /// A channel that writes down what it was given, under its name.
    struct Recorder {
        name: &'static str,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Channel for Recorder {
        fn name(&self) -> &'static str {
            self.name
        }
        fn emit(&mut self, alert: &SharedAlert) -> Result<(), OutputError> {
            let mut seen = self.seen.lock().unwrap();
            seen.push(format!("{}: {}", self.name, alert.line));
            Ok(())
        }
        fn close(&mut self) -> Result<(), OutputError> {
            self.seen
                .lock()
                .unwrap()
                .push(format!("{} closed", self.name));
            Ok(())
        }
    }

    fn alert(n: u64) -> Alert {
        Alert {
            time_ns: 1_700_000_000_000_000_000,
            rule: "r".into(),
            priority: Priority::Notice,
            source: "syscall".into(),
            tags: Vec::new(),
            hostname: "h".into(),
            output: format!("number {n}"),
            output_fields: Vec::new(),
        }
    }

    #[test]
    fn replace_swaps_channels_and_rendering_without_losing_alerts() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = |name| {
            Box::new(Recorder {
                name,
                seen: Arc::clone(&seen),
            }) as Box<dyn Channel>
        };
        let text = RenderOptions {
            time_format_iso_8601: true,
            ..RenderOptions::default()
        };
        let dispatcher =
            Dispatcher::new(vec![recorder("old"), recorder("grpc")], text, 16).unwrap();
        dispatcher.send(alert(1));
        let json = RenderOptions {
            json_output: true,
            ..RenderOptions::default()
        };
        dispatcher
            .replace(vec![recorder("new")], json, 16, KEPT_ACROSS_RELOADS)
            .unwrap();
        assert_eq!(dispatcher.channel_names(), ["new", "grpc"]);
        dispatcher.send(alert(2));
        let reports = dispatcher.shutdown();
        let seen = seen.lock().unwrap().clone();
        let position = |line: &str| {
            seen.iter()
                .position(|s| s.starts_with(line))
                .unwrap_or_else(|| panic!("{line} not in {seen:?}"))
        };
        // The old channel got alert 1 as text, then was closed by the swap.
        assert!(position("old: 2023-11-14T22:13:20") < position("old closed"));
        assert!(seen.iter().all(|s| !s.starts_with("old: {")));
        // The new one renders JSON and got only alert 2.
        let new: Vec<&String> = seen.iter().filter(|s| s.starts_with("new: ")).collect();
        assert_eq!(new.len(), 1);
        assert!(new[0].starts_with("new: {") && new[0].contains("number 2"));
        // The kept one got both, in its own thread all along.
        let kept: Vec<&String> = seen.iter().filter(|s| s.starts_with("grpc: ")).collect();
        assert_eq!(kept.len(), 2);
        let grpc = reports.iter().find(|r| r.name == "grpc").unwrap();
        assert_eq!(grpc.sent, 2);
    }

    #[test]
    fn counters_of_a_channel_carry_over_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            Box::new(FileChannel::open(dir.path().join(name), true, false).unwrap())
                as Box<dyn Channel>
        };
        let dispatcher = Dispatcher::new(vec![file("a")], RenderOptions::default(), 16).unwrap();
        let handles = dispatcher.stats_handles();
        dispatcher.send(alert(1));
        dispatcher
            .replace(vec![file("b")], RenderOptions::default(), 16, &[])
            .unwrap();
        dispatcher.send(alert(2));
        let reports = dispatcher.shutdown();
        assert_eq!(reports[0].sent, 2, "one count across the reload");
        assert_eq!(
            handles[0].1.sent.load(std::sync::atomic::Ordering::Relaxed),
            2,
            "what metrics holds stays live"
        );
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        assert!(read("a").contains("number 1") && !read("a").contains("number 2"));
        assert!(read("b").contains("number 2") && !read("b").contains("number 1"));
    }

    fn loaded(config: Config) -> Loaded {
        Loaded {
            config,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn apply_rebuilds_outputs_and_names_what_needs_a_restart() {
        let running = Config::default();
        let dispatcher = Dispatcher::new(Vec::new(), RenderOptions::default(), 16).unwrap();
        let mut new = Config {
            json_output: true,
            priority: Priority::Error,
            ..Config::default()
        };
        new.webserver.listen_port = 1;
        let build: &BuildChannels = &|config: &Config| {
            assert!(!config.grpc_output.enabled, "gRPC is never rebuilt");
            Ok(vec![Box::new(Recorder {
                name: "stdout",
                seen: Arc::default(),
            })])
        };
        let log = apply(&dispatcher, &running, loaded(new.clone()), build);
        assert!(
            log.iter()
                .any(|l| l == "configuration reloaded: outputs now stdout"),
            "{log:?}"
        );
        assert!(
            log.iter()
                .any(|l| l
                    .contains("changes to priority, webserver take effect at the next restart")),
            "{log:?}"
        );
        assert_eq!(dispatcher.channel_names(), ["stdout"]);

        let failing: &BuildChannels =
            &|_: &Config| Err("file_output: cannot open /nowhere/x".into());
        let log = apply(&dispatcher, &running, loaded(Config::default()), failing);
        assert!(
            log.iter()
                .any(|l| l
                    .contains("cannot open /nowhere/x; the outputs keep their previous settings")),
            "{log:?}"
        );
        assert_eq!(dispatcher.channel_names(), ["stdout"], "left as it was");
        dispatcher.shutdown();
    }
}
