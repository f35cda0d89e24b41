//! SIGHUP: read the config file again, load the rules its `rules_file`
//! names (or `-r`'s, which win as at startup) and apply both to the
//! running Peregrine, without stopping event intake.
//!
//! A reload is all or nothing where it can be: the config is read and
//! checked, the rules loaded and compiled, and the new output channels
//! built before anything changes; if any of that fails, the error is
//! logged with the file or key at fault and everything keeps running as it
//! was. Only then are the outputs swapped (the gRPC output is told its
//! new settings instead, see [`crate::outputs::reload::KEPT_ACROSS_RELOADS`]),
//! the rules (with `priority` and the -D/-T/-t selection),
//! `syscall_event_drops`, `metrics` and `base_syscalls` handed to the event
//! loops, and the webserver and webhook restarted if their settings
//! changed. A listener or gRPC server whose new settings cannot be bound
//! keeps the old one running and says so (see [`crate::servers`]); the
//! next reload tries again. What needs a restart is named: see
//! [`crate::outputs::reload::changes_needing_restart`].
//!
//! The work happens on the signal's thread. The loops only pick up what
//! was published, between two events: a loop never compiles rules, and
//! what it picks up is always the newest reload that succeeded (a failed
//! reload publishes nothing, so an event that waited in a queue across two
//! reloads, a good one then a bad one, still meets the good one's rules).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;

use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::rules::CompiledRules;
use peregrine_engine::syscall_fields::SyscallFields;

use crate::config::{BaseSyscalls, Config, Metrics as MetricsSettings, SyscallEventDrops};
use crate::outputs::reload::{
    changes_needing_restart, commit, outputs_changed, prepare, reconfigure_kept, BuildChannels,
};
use crate::outputs::Dispatcher;
use crate::ruleset::{self, RulesInput, Selection};
use crate::servers::Servers;

/// What the syscall loop takes from a reload.
pub struct SyscallUpdate {
    pub rules: CompiledRules<SyscallFields>,
    pub drops: SyscallEventDrops,
    pub metrics: MetricsSettings,
    pub base_syscalls: BaseSyscalls,
    /// Capture on alert: a change closes the running capture and starts
    /// over with the new settings.
    pub capture: crate::config::capture::Capture,
}

/// Where the reload leaves what each loop takes, and a counter a loop
/// compares with the last one it saw (one atomic load between events).
#[derive(Default)]
pub struct Mailbox {
    generation: AtomicU64,
    syscall: Mutex<Option<SyscallUpdate>>,
    audit: Mutex<Option<CompiledRules<K8sAuditSource>>>,
}

fn lock<T>(slot: &Mutex<T>) -> MutexGuard<'_, T> {
    // What is in a slot is whole even if a holder panicked.
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mailbox {
    /// Leaves a reload's results for the loops. Written before the
    /// counter moves, so a loop that sees the new count finds them.
    pub fn publish(&self, syscall: SyscallUpdate, audit: CompiledRules<K8sAuditSource>) {
        *lock(&self.syscall) = Some(syscall);
        *lock(&self.audit) = Some(audit);
        self.generation.fetch_add(1, Ordering::Release);
        crate::wakeup::ring();
    }

    pub fn syscall_inbox(self: &Arc<Self>) -> Inbox<SyscallUpdate> {
        self.inbox(|mailbox| &mailbox.syscall)
    }

    pub fn audit_inbox(self: &Arc<Self>) -> Inbox<CompiledRules<K8sAuditSource>> {
        self.inbox(|mailbox| &mailbox.audit)
    }

    /// A new inbox has seen nothing: a reload that happened before a loop
    /// took its inbox (a SIGHUP as early as startup) is still picked up.
    fn inbox<T>(self: &Arc<Self>, slot: fn(&Mailbox) -> &Mutex<Option<T>>) -> Inbox<T> {
        Inbox {
            seen: 0,
            mailbox: Arc::clone(self),
            slot,
        }
    }
}

/// One loop's side of the mailbox.
pub struct Inbox<T> {
    mailbox: Arc<Mailbox>,
    seen: u64,
    slot: fn(&Mailbox) -> &Mutex<Option<T>>,
}

impl<T> Inbox<T> {
    /// What the newest reload published, if one did since the last call.
    pub fn poll(&mut self) -> Option<T> {
        let now = self.mailbox.generation.load(Ordering::Acquire);
        if now == self.seen {
            return None;
        }
        self.seen = now;
        lock((self.slot)(&self.mailbox)).take()
    }
}

/// Everything a reload reads again and applies.
pub struct Reloader {
    /// `-c`: without it there is no file to read again, and only the rules
    /// are reloaded (the config is the defaults and `-o`).
    pub config_path: Option<PathBuf>,
    /// `-o` (and what other flags turn into overrides): applied on top of
    /// the file at every reload, as at startup.
    pub overrides: Vec<String>,
    /// `-r`: when given, these and not `rules_file` are the rules.
    pub command_line_rules: Vec<PathBuf>,
    /// -D/-T/-t; its priority is taken from each new config.
    pub selection: Selection,
    /// `-p`.
    pub output_extra: Option<String>,
    /// The settings in effect.
    pub running: Config,
    /// `--enable-source k8s_audit` started the webhook whatever
    /// `k8s_audit.enabled` says; it does so at every reload too.
    pub force_webhook: bool,
    /// Weak: a reload must not keep the outputs alive at shutdown.
    pub dispatcher: Weak<Dispatcher>,
    pub build_channels: Box<BuildChannels>,
    pub mailbox: Arc<Mailbox>,
    pub servers: Arc<Servers>,
    /// Told the files each reload read, for Falco's checksum metrics.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Reloader {
    /// One reload; returns the lines to log, in order.
    pub fn reload(&mut self) -> Vec<String> {
        let mut log = Vec::new();
        let keep = "nothing was changed: the configuration and rules loaded before keep running";
        let mut config_files: Vec<PathBuf> = self.config_path.iter().cloned().collect();
        let mut new = match Config::load(self.config_path.as_deref(), &self.overrides) {
            Ok(loaded) => {
                log.extend(loaded.warnings.iter().map(|w| format!("Warning: {w}")));
                config_files.extend(loaded.config_files);
                loaded.config
            }
            Err(e) => {
                log.push(format!("Error: configuration reload: {e}; {keep}"));
                return log;
            }
        };
        new.k8s_audit.enabled |= self.force_webhook;
        let inputs = match ruleset::chosen_inputs(&self.command_line_rules, &new.rules_file) {
            Ok(inputs) => inputs,
            Err(e) => {
                log.push(format!(
                    "Error: configuration reload: rules_file: {e}; {keep}"
                ));
                return log;
            }
        };
        let names: Vec<String> = inputs.iter().map(RulesInput::name).collect();
        let shaping = ruleset::Shaping::new(self.output_extra.clone(), &new);
        let mut rules = ruleset::load_shaped(&inputs, &shaping);
        log.extend(rules.warnings().map(|w| format!("Warning: {w}")));
        if rules.has_errors() || rules.fatal.is_some() {
            log.extend(rules.errors().map(|e| format!("Error: {e}")));
            log.extend(rules.fatal.iter().map(|e| format!("Error: {e}")));
            log.push(format!(
                "Error: the new rules did not load ({}); the rules loaded before keep running, \
                 and so does the configuration",
                names.join(", ")
            ));
            return log;
        }
        let Some(dispatcher) = self.dispatcher.upgrade() else {
            // Shutting down.
            return log;
        };
        let outputs = if outputs_changed(&self.running, &new) {
            match prepare(&self.running, &new, &*self.build_channels) {
                Ok(prepared) => Some(prepared),
                Err(e) => {
                    log.push(format!("Error: configuration reload: {e}; {keep}"));
                    return log;
                }
            }
        } else {
            None
        };

        // Nothing failed: apply. Outputs first, so that the new rules'
        // first alerts already go where the new config says.
        match outputs {
            Some(prepared) => log.push(commit(&dispatcher, prepared)),
            None => log.push(format!(
                "configuration reloaded: outputs unchanged ({})",
                dispatcher.channel_names().join(", ")
            )),
        }
        let (line, grpc_applied) = reconfigure_kept(&dispatcher, &self.running, &new);
        log.extend(line);
        drop(dispatcher);
        let selection = self.selection.with_config(&new);
        selection.apply(&mut rules.syscall);
        selection.apply(&mut rules.k8s_audit);
        let enabled = rules.rules().filter(|r| r.enabled).count();
        crate::servers::console::Hub::global().set_rules(&rules);
        self.mailbox.publish(
            SyscallUpdate {
                rules: rules.syscall,
                drops: new.syscall_event_drops.clone(),
                metrics: new.metrics.clone(),
                base_syscalls: new.base_syscalls.clone(),
                capture: new.capture.clone(),
            },
            rules.k8s_audit,
        );
        if let Some(metrics) = &self.metrics {
            metrics.set_loaded_files(&ruleset::input_files(&inputs), &config_files);
        }
        log.push(format!(
            "rules reloaded from {} ({enabled} enabled, priority {} and above)",
            names.join(", "),
            new.priority
        ));
        let (lines, web, k8s) = self.servers.reconfigure(
            (&self.running.webserver, &self.running.k8s_audit),
            (&new.webserver, &new.k8s_audit),
        );
        log.extend(lines);
        let restart = changes_needing_restart(&self.running, &new);
        if !restart.is_empty() {
            log.push(format!(
                "configuration reload: changes to {} take effect at the next restart",
                restart.join(", ")
            ));
        }
        // What needs a restart stays as it runs, so that it is named
        // again until then; listeners that kept their old settings are
        // retried at the next reload.
        let mut running = new;
        if !grpc_applied {
            running.grpc = self.running.grpc.clone();
        }
        running.driver = self.running.driver.clone();
        running.log_stderr = self.running.log_stderr;
        running.log_syslog = self.running.log_syslog;
        running.log_level = self.running.log_level.clone();
        running.plugins = self.running.plugins.clone();
        running.load_plugins = self.running.load_plugins.clone();
        running.webserver = web;
        running.k8s_audit = k8s;
        self.running = running;
        log
    }
}

/// The thread that reloads on SIGHUP; [`ReloadThread::stop`] ends it.
pub struct ReloadThread {
    handle: signal_hook::iterator::Handle,
    thread: JoinHandle<()>,
}

/// SIGHUP caught, before the thread that acts on it exists.
pub struct Hangups(signal_hook::iterator::Signals);

impl Hangups {
    /// Catches SIGHUP from now on, so that one sent as soon as a listener
    /// answers cannot kill the process (SIGHUP's default action) before
    /// the reload thread is up; signals caught meanwhile wait for it.
    /// None (said on stderr) when it cannot.
    pub fn catch() -> Option<Hangups> {
        match signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]) {
            Ok(signals) => Some(Hangups(signals)),
            Err(e) => {
                crate::log::message(&format!(
                    "cannot catch SIGHUP ({e}): rules and config will not reload on it"
                ));
                None
            }
        }
    }
}

impl ReloadThread {
    /// Reloads on each SIGHUP; None (said on stderr) when the thread
    /// cannot start.
    pub fn start(hangups: Hangups, mut reloader: Reloader) -> Option<ReloadThread> {
        let Hangups(mut signals) = hangups;
        let handle = signals.handle();
        // A reload also hands the new rules to the console, which checks
        // and expands their macros recursively: this thread gets the
        // loader's stack, as a start-up load does on the main thread.
        let spawned = std::thread::Builder::new()
            .name("sighup".into())
            .stack_size(crate::ruleset::LOADER_STACK_BYTES)
            .spawn(move || {
                for _ in signals.forever() {
                    crate::log::message("SIGHUP received: reloading configuration and rules");
                    for line in reloader.reload() {
                        crate::log::message(&line);
                    }
                }
            });
        match spawned {
            Ok(thread) => Some(ReloadThread { handle, thread }),
            Err(e) => {
                crate::log::message(&format!(
                    "cannot start the reload thread ({e}): rules and config will not reload on SIGHUP"
                ));
                None
            }
        }
    }

    /// Lets a reload in progress finish, then ends the thread: at shutdown
    /// no reload may hold the outputs or restart a listener.
    pub fn stop(self) {
        self.handle.close();
        if self.thread.join().is_err() {
            crate::log::message("the reload thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::alert::RenderOptions;
    use crate::metrics::Metrics;

    struct Fixture {
        dir: tempfile::TempDir,
        reloader: Reloader,
        _dispatcher: Arc<Dispatcher>,
    }

    fn audit_rule(name: &str, priority: &str) -> String {
        format!(
            "- rule: {name}\n  desc: d\n  condition: ka.verb = create\n  output: o\n  priority: {priority}\n  source: k8s_audit\n"
        )
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let dispatcher =
            Arc::new(Dispatcher::new(Vec::new(), RenderOptions::default(), 16).unwrap());
        let metrics = Arc::new(Metrics::new(Box::new(Vec::new), None));
        let servers = Arc::new(Servers::start(None, None, None, metrics).unwrap());
        let config = dir.path().join("peregrine.yaml");
        std::fs::write(&config, "stdout_output:\n  enabled: false\n").unwrap();
        let reloader = Reloader {
            config_path: Some(config),
            overrides: Vec::new(),
            command_line_rules: Vec::new(),
            selection: Selection::default(),
            output_extra: None,
            running: Config {
                stdout_output: crate::config::Enabled { enabled: false },
                ..Config::default()
            },
            force_webhook: false,
            dispatcher: Arc::downgrade(&dispatcher),
            build_channels: Box::new(|_: &Config| Ok(Vec::new())),
            mailbox: Arc::new(Mailbox::default()),
            servers,
            metrics: None,
        };
        Fixture {
            dir,
            reloader,
            _dispatcher: dispatcher,
        }
    }

    fn write_config(dir: &Path, rules: &Path, priority: &str) {
        std::fs::write(
            dir.join("peregrine.yaml"),
            format!(
                "stdout_output:\n  enabled: false\nrules_file:\n  - {}\npriority: {priority}\n",
                rules.display()
            ),
        )
        .unwrap();
    }

    fn enabled(rules: &CompiledRules<K8sAuditSource>) -> Vec<String> {
        rules
            .rules()
            .iter()
            .filter(|r| r.enabled)
            .map(|r| r.name.clone())
            .collect()
    }

    #[test]
    fn a_reload_loads_the_new_rules_file_with_the_new_priority() {
        // The dispatcher is bound to a name: a reload finding it gone
        // would take the process for shutting down.
        let Fixture {
            dir,
            mut reloader,
            _dispatcher,
        } = fixture();
        let rules = dir.path().join("rules.yaml");
        std::fs::write(
            &rules,
            audit_rule("Loud", "ERROR") + &audit_rule("Quiet", "NOTICE"),
        )
        .unwrap();
        write_config(dir.path(), &rules, "warning");
        let mut audit = reloader.mailbox.audit_inbox();
        assert!(audit.poll().is_none(), "nothing before a reload");
        let log = reloader.reload();
        // Taken after the reload: still gets it.
        let mut syscall = reloader.mailbox.syscall_inbox();
        assert!(
            log.iter().any(|l| l.starts_with("rules reloaded from")),
            "{log:?}"
        );
        assert_eq!(enabled(&audit.poll().unwrap()), ["Loud"]);
        assert!(audit.poll().is_none(), "taken once");
        assert!(syscall.poll().is_some(), "the syscall loop gets its part");
        assert_eq!(reloader.running.priority, crate::alert::Priority::Warning);
        assert_eq!(reloader.running.rules_file, [rules]);
    }

    #[test]
    fn a_bad_config_or_bad_rules_change_nothing() {
        // The dispatcher is bound to a name: a reload finding it gone
        // would take the process for shutting down.
        let Fixture {
            dir,
            mut reloader,
            _dispatcher,
        } = fixture();
        let before = reloader.running.clone();
        let mut audit = reloader.mailbox.audit_inbox();
        let config = dir.path().join("peregrine.yaml");

        std::fs::write(&config, "priority: [\n").unwrap();
        let log = reloader.reload();
        assert!(
            log.iter()
                .any(|l| l.contains(&config.display().to_string())
                    && l.contains("nothing was changed")),
            "{log:?}"
        );

        std::fs::write(&config, "priority: loud\n").unwrap();
        let log = reloader.reload();
        assert!(
            log.iter()
                .any(|l| l.contains("'priority'") && l.contains("nothing was changed")),
            "{log:?}"
        );

        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, "- rule: Broken\n  condition: (((\n").unwrap();
        write_config(dir.path(), &broken, "error");
        let log = reloader.reload();
        assert!(
            log.iter()
                .any(|l| l.contains("did not load") && l.contains(&broken.display().to_string())),
            "{log:?}"
        );
        assert!(audit.poll().is_none(), "nothing was published");
        assert_eq!(reloader.running, before);

        // A condition Falco stops on at start (its event code search
        // refuses it) is no reload either.
        let refused = dir.path().join("refused.yaml");
        std::fs::write(
            &refused,
            "- rule: Refused\n  desc: d\n  condition: tolower(evt.type) = open\n  output: o\n  priority: WARNING\n",
        )
        .unwrap();
        write_config(dir.path(), &refused, "error");
        let log = reloader.reload();
        assert!(
            log.iter().any(|l| l.contains("event code search")),
            "{log:?}"
        );
        assert!(log.iter().any(|l| l.contains("did not load")), "{log:?}");
        assert!(audit.poll().is_none(), "nothing was published");
        assert_eq!(reloader.running, before);
    }

    /// The old flake: an event queued before a good reload and evaluated
    /// after a bad one must meet the good one's rules, not the rules from
    /// before both.
    #[test]
    fn a_loop_that_polls_late_gets_the_last_good_reload() {
        // The dispatcher is bound to a name: a reload finding it gone
        // would take the process for shutting down.
        let Fixture {
            dir,
            mut reloader,
            _dispatcher,
        } = fixture();
        let mut audit = reloader.mailbox.audit_inbox();
        let good = dir.path().join("good.yaml");
        std::fs::write(&good, audit_rule("Good", "WARNING")).unwrap();
        write_config(dir.path(), &good, "debug");
        reloader.reload();
        let broken = dir.path().join("broken.yaml");
        std::fs::write(&broken, "- rule: Broken\n  condition: (((\n").unwrap();
        write_config(dir.path(), &broken, "debug");
        reloader.reload();
        assert_eq!(enabled(&audit.poll().unwrap()), ["Good"]);
    }
}
