//! What a SIGHUP reload (crate::reload) does to the outputs: the alert
//! channels are built again from the new config and swapped in, with how
//! alerts are rendered (`stdout_output`, `file_output`, `syslog_output`,
//! `program_output`, `http_output`, `buffered_outputs`, `output_timeout`,
//! `outputs_queue`,
//! `json_output`, `json_include_*`, `time_format_iso_8601`).
//!
//! The gRPC output is the exception, see [`KEPT_ACROSS_RELOADS`].

use std::sync::Arc;

use super::grpc::GrpcOptions;
use super::{Channel, Dispatcher};
use crate::alert::RenderOptions;
use crate::config::Config;

/// Channels a reload keeps running and reconfigures instead of building
/// them again. The gRPC channel holds the backlog that `get` clients have
/// not collected yet: building a new channel would lose it. It is told
/// the new settings instead ([`super::grpc::GrpcChannel::reconfigure`]),
/// and restarts its server only when the server's settings changed.
/// Turning `grpc_output` on or off starts or retires it like any channel.
pub const KEPT_ACROSS_RELOADS: &[&str] = &["grpc"];

/// The NATS channel is kept too while the reload leaves it on (see
/// `changes_needing_restart`): its spool folder is its own.
const KEPT_WITH_NATS: &[&str] = &["grpc", "nats"];
const KEPT_NATS_ONLY: &[&str] = &["nats"];

/// Makes the channels a config asks for (main's `build_channels`).
pub type BuildChannels = dyn Fn(&Config) -> Result<Vec<Box<dyn Channel>>, String> + Send;

/// How the config asks alerts to be rendered.
pub fn render_options(config: &Config) -> RenderOptions {
    RenderOptions {
        json_output: config.json_output,
        json_include_output_property: config.json_include_output_property,
        json_include_tags_property: config.json_include_tags_property,
        json_include_message_property: config.json_include_message_property,
        json_include_output_fields_property: config.json_include_output_fields_property,
        time_format_iso_8601: config.time_format_iso_8601,
    }
}

/// The config keys whose change a reload does not apply, changed between
/// `running` and `new`, each with why.
pub fn changes_needing_restart(running: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |name: &'static str, same: bool| {
        if !same {
            changed.push(name);
        }
    };
    // The module's ring buffers and its snapshot length are set when the
    // device is opened; reopening it would lose the events in the rings.
    check("driver", running.driver == new.driver);
    // Logging is set up before anything else and used by every thread.
    check(
        "log_stderr/log_syslog/log_level",
        running.log_stderr == new.log_stderr
            && running.log_syslog == new.log_syslog
            && running.log_level == new.log_level,
    );
    // The NATS channel owns its spool folder while it runs: a second
    // channel on the same folder would interleave its records, so a running
    // one is kept and its settings wait for a restart.
    check(
        "nats_output",
        !(running.nats_output.enabled && new.nats_output.enabled)
            || running.nats_output == new.nats_output,
    );
    // Read once to choose the event sources of the run.
    check(
        "plugins",
        running.plugins == new.plugins && running.load_plugins == new.load_plugins,
    );
    changed
}

/// Whether the settings the channels are built from differ (a reload
/// that changes none leaves the channels running untouched: a program
/// output is not restarted, a file not reopened).
pub fn outputs_changed(running: &Config, new: &Config) -> bool {
    let settings = |c: &Config| {
        (
            (
                c.stdout_output.clone(),
                c.file_output.clone(),
                c.syslog_output.clone(),
                c.program_output.clone(),
                c.http_output.clone(),
                c.nats_output.enabled,
            ),
            (
                c.buffered_outputs,
                c.output_timeout,
                c.outputs_queue.clone(),
                render_options(c),
                // Turned on or off, the gRPC channel starts or retires.
                c.grpc_output.enabled,
                // So does the console's.
                c.webserver.enabled && c.webserver.console,
            ),
        )
    };
    settings(running) != settings(new)
}

/// New channels, built but not yet running alerts: the fallible half of a
/// reload, done before anything is changed.
pub struct Prepared {
    channels: Vec<Box<dyn Channel>>,
    render: RenderOptions,
    capacity: usize,
    keep: &'static [&'static str],
    output_timeout: std::time::Duration,
}

/// Whether a running gRPC output is kept (and reconfigured) by a reload
/// from `running` to `new`.
fn keeps_grpc(running: &Config, new: &Config) -> bool {
    running.grpc_output.enabled && new.grpc_output.enabled
}

/// Builds the channels `new` asks for, but for the kept ones.
pub fn prepare(running: &Config, new: &Config, build: &BuildChannels) -> Result<Prepared, String> {
    let keeps_nats = running.nats_output.enabled && new.nats_output.enabled;
    let keep = match (keeps_grpc(running, new), keeps_nats) {
        (true, true) => KEPT_WITH_NATS,
        (true, false) => KEPT_ACROSS_RELOADS,
        (false, true) => KEPT_NATS_ONLY,
        (false, false) => &[],
    };
    let mut to_build = new.clone();
    if keep.contains(&"grpc") {
        to_build.grpc_output.enabled = false;
    }
    if keeps_nats {
        to_build.nats_output.enabled = false;
    }
    Ok(Prepared {
        channels: build(&to_build)?,
        render: render_options(new),
        capacity: new.outputs_queue.capacity,
        keep,
        output_timeout: std::time::Duration::from_millis(new.output_timeout),
    })
}

/// Swaps prepared channels in; returns what to log.
pub fn commit(dispatcher: &Dispatcher, prepared: Prepared) -> String {
    let iso_8601 = prepared.render.time_format_iso_8601;
    match dispatcher.replace(
        prepared.channels,
        prepared.render,
        prepared.capacity,
        prepared.keep,
    ) {
        Ok(()) => {
            crate::log::use_iso_8601(iso_8601);
            dispatcher.set_output_timeout(prepared.output_timeout);
            format!(
                "configuration reloaded: outputs now {}",
                dispatcher.channel_names().join(", ")
            )
        }
        Err(e) => format!(
            "configuration reload: cannot start the outputs ({e}); the previous ones keep running"
        ),
    }
}

/// Tells a kept gRPC output the new settings, when they differ. Returns
/// what to log and whether the new settings are the ones in effect.
pub fn reconfigure_kept(
    dispatcher: &Dispatcher,
    running: &Config,
    new: &Config,
) -> (Option<String>, bool) {
    if !keeps_grpc(running, new)
        || GrpcOptions::from_config(running) == GrpcOptions::from_config(new)
    {
        return (None, true);
    }
    match dispatcher.reconfigure("grpc", Arc::new(new.clone())) {
        None | Some(Ok(None)) => (None, true),
        Some(Ok(Some(line))) => (Some(format!("configuration reload: {line}")), true),
        Some(Err(e)) => (Some(format!("configuration reload: grpc: {e}")), false),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

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

    #[test]
    fn prepare_builds_all_but_grpc_and_commit_swaps_them_in() {
        let dispatcher = Dispatcher::new(Vec::new(), RenderOptions::default(), 16).unwrap();
        let new = Config {
            json_output: true,
            ..Config::default()
        };
        let build: &BuildChannels = &|config: &Config| {
            assert!(!config.grpc_output.enabled, "gRPC is never rebuilt");
            Ok(vec![Box::new(Recorder {
                name: "stdout",
                seen: Arc::default(),
            })])
        };
        let prepared = prepare(&Config::default(), &new, build).unwrap();
        assert!(dispatcher.channel_names().is_empty(), "nothing runs yet");
        let line = commit(&dispatcher, prepared);
        assert_eq!(line, "configuration reloaded: outputs now stdout");
        assert_eq!(dispatcher.channel_names(), ["stdout"]);

        let failing: &BuildChannels =
            &|_: &Config| Err("file_output: cannot open /nowhere/x".into());
        let error = prepare(&Config::default(), &Config::default(), failing)
            .err()
            .unwrap();
        assert!(error.contains("/nowhere/x"), "{error}");
        dispatcher.shutdown();
    }

    #[test]
    fn names_what_needs_a_restart() {
        let running = Config::default();
        let mut new = Config {
            priority: Priority::Error,
            ..Config::default()
        };
        new.webserver.listen_port = 1;
        new.driver.snaplen = 4096;
        new.grpc.threadiness = 3;
        assert_eq!(changes_needing_restart(&running, &new), ["driver"]);
    }
}
