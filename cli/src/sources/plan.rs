//! Which event sources a run feeds, decided once from the command line and
//! the config: the syscall source (kernel module, capture, ptrace tracer
//! or Falco's `nodriver`), the Kubernetes audit source (webhook or file)
//! and each plugin's own source. Everything else in a run (metrics'
//! engine names, container metadata, async event lanes, the feeds that
//! `main` starts and the one that drives the main thread) asks this plan
//! rather than re-deriving it.

use std::path::{Path, PathBuf};

use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::rules::CompiledRules;

use crate::args::RunArgs;
use crate::config::{Config, EngineKind};
use crate::sources::feed::{Feed, Idle};
use crate::sources::plugins::feed::PluginSources;
use crate::sources::plugins::fields::{PluginFields, SharedPlugin};
use crate::sources::plugins::host::Hosted;
use crate::sources::{audit, syscall, traced};

/// Where syscall events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyscallFeed {
    /// The kernel module's rings.
    Kernel,
    /// Falco's `engine.kind: nodriver`: the source exists and reads nothing.
    NoDriver,
    /// A `.scap` capture (`-e`, or `engine.kind: replay`).
    Capture(PathBuf),
    /// `peregrine run`: the ptrace tracer of one command or process.
    Traced,
}

/// Where Kubernetes audit events come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFeed {
    /// The webhook, served when `listening` (a reload may turn it on later:
    /// the audit loop runs either way).
    Webhook { listening: bool },
    /// An audit log file (`--k8s-audit-file`, or the k8saudit plugin's
    /// file `open_params`), read to its end.
    File(PathBuf),
}

/// A plugin's event source, in the order the plugin host lists them (the
/// order of their compiled rules).
pub struct PluginFeed {
    pub source: String,
    pub plugin: SharedPlugin,
    pub open_params: String,
    /// Off with `--disable-source`: its rules stay compiled, nothing runs.
    pub enabled: bool,
}

/// What the feeds are made of besides the plan: settings, the traced
/// target and the compiled rules each feed takes.
pub struct FeedParts<'a> {
    pub config: &'a Config,
    /// `-A`.
    pub all_events: bool,
    /// `peregrine run`'s command or process.
    pub traced: Option<traced::Workload>,
    pub audit_rules: CompiledRules<K8sAuditSource>,
    /// In the plan's order of plugin sources.
    pub plugin_rules: Vec<CompiledRules<PluginFields>>,
    pub hosted: &'a Hosted,
    /// `--plugin-capture`.
    pub plugin_capture: Option<PathBuf>,
    /// `--syscall-capture`.
    pub syscall_capture: Option<PathBuf>,
}

/// The sources of one run.
pub struct SourcePlan {
    pub syscall: Option<SyscallFeed>,
    pub audit: Option<AuditFeed>,
    pub plugins: Vec<PluginFeed>,
}

impl SourcePlan {
    /// Decides the sources: a capture, an audit file or a traced command
    /// runs alone (with the plugin sources replaying the same capture);
    /// otherwise the live sources that `--enable-source` /
    /// `--disable-source` and the config leave on.
    pub fn decide(
        args: &RunArgs,
        config: &Config,
        traced: bool,
        plugins: Vec<(String, SharedPlugin, String)>,
    ) -> SourcePlan {
        let source_on = |name: &str, default: bool| {
            if args.disable_sources.iter().any(|s| s == name) {
                false
            } else {
                default || args.enable_sources.iter().any(|s| s == name)
            }
        };
        let capture = args.capture.clone().or_else(|| {
            (config.engine.kind == EngineKind::Replay)
                .then(|| PathBuf::from(&config.engine.replay.capture_file))
        });
        let audit_file = args
            .k8s_audit_file
            .clone()
            .or_else(|| k8s_audit_file_from_plugins(config));
        let live = capture.is_none() && audit_file.is_none() && !traced;
        let syscall = if traced {
            Some(SyscallFeed::Traced)
        } else if let Some(path) = &capture {
            Some(SyscallFeed::Capture(path.clone()))
        } else if live && source_on("syscall", true) {
            Some(if config.engine.kind == EngineKind::Nodriver {
                SyscallFeed::NoDriver
            } else {
                SyscallFeed::Kernel
            })
        } else {
            None
        };
        let audit = if live {
            // The audit loop runs whenever the webhook may: a reload that
            // enables `k8s_audit` then only has to start the listener.
            let allowed = !args.disable_sources.iter().any(|s| s == "k8s_audit");
            allowed.then(|| AuditFeed::Webhook {
                listening: source_on("k8s_audit", config.k8s_audit.enabled),
            })
        } else if capture.is_none() && !traced {
            audit_file.map(AuditFeed::File)
        } else {
            None
        };
        let plugins = plugins
            .into_iter()
            .map(|(source, plugin, open_params)| PluginFeed {
                // Replaying a capture, each plugin source reads its events
                // from it; live, from the plugin.
                enabled: (live || capture.is_some()) && source_on(&source, true),
                source,
                plugin,
                open_params,
            })
            .collect();
        SourcePlan {
            syscall,
            audit,
            plugins,
        }
    }

    /// The capture every source replays, if this run replays one.
    pub fn capture(&self) -> Option<&Path> {
        match &self.syscall {
            Some(SyscallFeed::Capture(path)) => Some(path),
            _ => None,
        }
    }

    /// Whether the sources watch running processes (and so want container
    /// metadata and the syscall lane of async events).
    pub fn watches_processes(&self) -> bool {
        matches!(
            self.syscall,
            Some(SyscallFeed::Kernel | SyscallFeed::Traced)
        )
    }

    /// Whether the webhook listens from the start.
    pub fn webhook_listening(&self) -> bool {
        matches!(self.audit, Some(AuditFeed::Webhook { listening: true }))
    }

    /// The audit file read on the main thread, if any.
    pub fn audit_file(&self) -> Option<&Path> {
        match &self.audit {
            Some(AuditFeed::File(path)) => Some(path),
            _ => None,
        }
    }

    /// The plugin sources that run.
    pub fn enabled_plugins(&self) -> impl Iterator<Item = &PluginFeed> {
        self.plugins.iter().filter(|p| p.enabled)
    }

    /// Each running source with Falco's name for its engine, as its
    /// metrics report them: kmod for the module, nodriver without it,
    /// nothing for a capture; the audit source is Falco's k8saudit plugin.
    pub fn engines(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(feed) = &self.syscall {
            let engine = match feed {
                SyscallFeed::Kernel => "kmod",
                SyscallFeed::NoDriver => "nodriver",
                SyscallFeed::Capture(_) | SyscallFeed::Traced => "",
            };
            out.push(("syscall".to_string(), engine.to_string()));
        }
        if self.webhook_listening() || self.audit_file().is_some() {
            out.push(("k8s_audit".to_string(), "source_plugin".to_string()));
        }
        let engine = if self.capture().is_some() {
            ""
        } else {
            "source_plugin"
        };
        for plugin in self.enabled_plugins() {
            out.push((plugin.source.clone(), engine.to_string()));
        }
        out
    }

    /// The run's feeds, in the order `main` starts and joins them: the
    /// webhook's loop, which ends with its queue (closed by the servers'
    /// shutdown); the main thread's, whose end stops the live plugin
    /// sources; then those. Exactly one feed drives the main thread: the
    /// syscall reader, the audit file, or [`Idle`].
    pub fn feeds(&self, parts: FeedParts<'_>) -> Vec<Box<dyn Feed>> {
        let mut feeds: Vec<Box<dyn Feed>> = Vec::new();
        let mut audit_file = None;
        match &self.audit {
            Some(AuditFeed::Webhook { .. }) => {
                feeds.push(Box::new(audit::Webhook::new(parts.audit_rules)));
            }
            Some(AuditFeed::File(path)) => {
                audit_file = Some(audit::File::new(path.clone(), parts.audit_rules));
            }
            None => {}
        }
        let syscall = self.syscall.as_ref().and_then(|feed| {
            syscall::Syscall::from_plan(
                feed,
                parts.config,
                parts.all_events,
                parts.traced,
                parts.syscall_capture,
            )
        });
        feeds.push(match (syscall, audit_file) {
            (Some(syscall), _) => Box::new(syscall),
            (None, Some(file)) => Box::new(file),
            // nodriver is a source that reads nothing: Falco runs with it
            // until stopped (libscap's nodriver engine times out forever).
            (None, None) => Box::new(Idle {
                others_run: self.webhook_listening()
                    || self.enabled_plugins().next().is_some()
                    || matches!(self.syscall, Some(SyscallFeed::NoDriver)),
            }),
        });
        if let Some(plugins) =
            PluginSources::from_plan(self, parts.plugin_rules, parts.hosted, parts.plugin_capture)
        {
            feeds.push(Box::new(plugins));
        }
        feeds
    }

    /// The sources async plugins may push events into: the live ones (a
    /// capture carries the async events it recorded instead).
    pub fn async_targets(&self) -> Vec<String> {
        if self.capture().is_some() {
            return Vec::new();
        }
        let mut out: Vec<String> = self
            .enabled_plugins()
            .map(|plugin| plugin.source.clone())
            .collect();
        if self.watches_processes() {
            out.push("syscall".to_string());
        }
        out
    }
}

/// The file a configured k8saudit plugin would read (its `open_params`
/// when they name no URL): Peregrine's built-in audit source reads it.
fn k8s_audit_file_from_plugins(config: &Config) -> Option<PathBuf> {
    config.plugins.iter().find_map(|plugin| {
        let name = plugin.get("name")?.as_str()?;
        let params = plugin.get("open_params")?.as_str()?.trim();
        let is_file =
            !params.is_empty() && !params.starts_with("http://") && !params.starts_with("https://");
        (name == "k8saudit" && is_file).then(|| PathBuf::from(params))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args_and_config(argv: &[&str], overrides: &[&str]) -> (RunArgs, Config) {
        let mut full = vec!["peregrine"];
        full.extend_from_slice(argv);
        let args = crate::args::Cli::try_parse_from(full).unwrap().run;
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let config = crate::config::Config::load(None, &overrides)
            .unwrap()
            .config;
        (args, config)
    }

    fn plan(argv: &[&str], overrides: &[&str], traced: bool) -> SourcePlan {
        let (args, config) = args_and_config(argv, overrides);
        SourcePlan::decide(&args, &config, traced, Vec::new())
    }

    /// The feeds a run starts, by name, in start and join order.
    fn feeds(argv: &[&str], overrides: &[&str], traced: bool) -> Vec<String> {
        let (args, config) = args_and_config(argv, overrides);
        let plan = SourcePlan::decide(&args, &config, traced, Vec::new());
        // Never dropped: dropping a `Hosted` uninstalls the process-wide
        // plugin state other tests may be using.
        let hosted: &Hosted = Box::leak(Box::default());
        let parts = FeedParts {
            config: &config,
            all_events: false,
            traced: traced.then(|| traced::Workload {
                attach: Some(1),
                command: Vec::new(),
            }),
            audit_rules: crate::ruleset::load(&[], None).k8s_audit,
            plugin_rules: Vec::new(),
            hosted,
            plugin_capture: None,
            syscall_capture: None,
        };
        plan.feeds(parts).iter().map(|feed| feed.name()).collect()
    }

    #[test]
    fn one_feed_per_family_and_one_for_the_main_thread() {
        // The webhook's loop first: it is joined before the main thread's
        // feed stops the live sources.
        assert_eq!(
            feeds(&[], &[], false),
            ["k8s_audit: webhook", "syscall: kernel module"]
        );
        assert_eq!(
            feeds(&["-e", "x.scap"], &[], false),
            ["syscall: capture x.scap"]
        );
        assert_eq!(
            feeds(&["--k8s-audit-file", "a.json"], &[], false),
            ["k8s_audit: file a.json"]
        );
        assert_eq!(feeds(&[], &[], true), ["syscall: traced"]);
    }

    #[test]
    fn without_a_reader_the_main_thread_waits_if_anything_else_runs() {
        // nodriver reads nothing, and runs until stopped as Falco's; the
        // audit loop runs for a later reload.
        assert_eq!(
            feeds(&[], &["engine.kind=nodriver"], false),
            ["k8s_audit: webhook", "main thread: waits for a stop"]
        );
        assert_eq!(
            feeds(
                &["--disable-source", "syscall"],
                &["k8s_audit.enabled=true"],
                false
            ),
            ["k8s_audit: webhook", "main thread: waits for a stop"]
        );
        let neither = [
            "--disable-source",
            "syscall",
            "--disable-source",
            "k8s_audit",
        ];
        assert_eq!(feeds(&neither, &[], false), ["main thread: nothing to do"]);
    }

    #[test]
    fn live_by_default_with_the_webhook_as_configured() {
        let p = plan(&[], &[], false);
        assert_eq!(p.syscall, Some(SyscallFeed::Kernel));
        assert_eq!(p.audit, Some(AuditFeed::Webhook { listening: false }));
        assert!(p.watches_processes() && !p.webhook_listening());
        assert_eq!(p.engines(), [("syscall".to_string(), "kmod".to_string())]);
        assert_eq!(p.async_targets(), ["syscall"]);

        let p = plan(&["--enable-source", "k8s_audit"], &[], false);
        assert!(p.webhook_listening());
        let p = plan(
            &["--disable-source", "k8s_audit"],
            &["k8s_audit.enabled=true"],
            false,
        );
        assert_eq!(p.audit, None);
        let p = plan(&["--disable-source", "syscall"], &[], false);
        assert_eq!(p.syscall, None);
        assert!(!p.watches_processes());
    }

    #[test]
    fn nodriver_keeps_the_source_without_events() {
        let p = plan(&[], &["engine.kind=nodriver"], false);
        assert_eq!(p.syscall, Some(SyscallFeed::NoDriver));
        assert!(!p.watches_processes());
        assert_eq!(p.engines()[0].1, "nodriver");
        assert!(p.async_targets().is_empty());
    }

    #[test]
    fn a_capture_a_file_or_a_traced_command_runs_alone() {
        let p = plan(&["-e", "x.scap"], &["k8s_audit.enabled=true"], false);
        assert_eq!(p.syscall, Some(SyscallFeed::Capture("x.scap".into())));
        assert_eq!(p.audit, None);
        assert_eq!(p.capture(), Some(Path::new("x.scap")));
        assert_eq!(p.engines(), [("syscall".to_string(), String::new())]);
        assert!(p.async_targets().is_empty());

        let p = plan(
            &[],
            &["engine.kind=replay", "engine.replay.capture_file=y.scap"],
            false,
        );
        assert_eq!(p.capture(), Some(Path::new("y.scap")));

        let p = plan(&["--k8s-audit-file", "a.json"], &[], false);
        assert_eq!(p.syscall, None);
        assert_eq!(p.audit_file(), Some(Path::new("a.json")));
        assert_eq!(
            p.engines(),
            [("k8s_audit".to_string(), "source_plugin".to_string())]
        );

        let p = plan(&[], &[], true);
        assert_eq!(p.syscall, Some(SyscallFeed::Traced));
        assert_eq!(p.audit, None);
        assert!(p.watches_processes());
        assert_eq!(p.async_targets(), ["syscall"]);
    }
}
