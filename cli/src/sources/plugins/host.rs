//! What a run does with plugins: load the ones the config selects, answer
//! `--list-plugins` and `--plugin-info`, check the rules' plugin
//! requirements, and run one event loop per plugin event source, as Falco
//! runs each source on its own.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use peregrine_engine::output::Alert;
use peregrine_engine::rules::CompiledRules;

use super::fields::{lock, PluginFields, SharedPlugin};
use super::owner::AsyncSink;
use super::{requirements, Batch, PluginConfig, PluginEvent};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::outputs::Dispatcher;
use crate::ruleset::RulesInput;
use crate::run::Detections;

/// Plugins of Falco's that Peregrine has built in, and what stands in.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "k8saudit",
        "Peregrine's built-in k8s_audit source is used (k8s_audit.enabled, --k8s-audit-file)",
    ),
    (
        "json",
        "Peregrine's k8s_audit source has its JSON fields (jevt.*) built in",
    ),
    (
        "container",
        "Peregrine's built-in container metadata is used",
    ),
];

/// Whether Peregrine has `name`'s job built in.
pub fn is_built_in(name: &str) -> bool {
    BUILT_IN.iter().any(|(built_in, _)| *built_in == name)
}

/// The plugins of a run, loaded and initialised, in config order.
#[derive(Default)]
pub struct Hosted {
    pub plugins: Vec<SharedPlugin>,
    pub configs: Vec<PluginConfig>,
}

impl Hosted {
    /// Loads what the config's `plugins`/`load_plugins` select.
    pub fn from_config(config: &Config) -> Result<Hosted, String> {
        let mut configs = super::selected(&config.plugins, config.load_plugins.as_deref())
            .map_err(|e| e.to_string())?;
        // Falco configs load plugins whose job Peregrine does itself; when
        // their library is absent, the built-in source stands in.
        configs.retain(|c| {
            let stand_in = BUILT_IN.iter().find(|(name, _)| *name == c.name);
            match stand_in {
                Some((name, instead)) if c.library_path.as_os_str().is_empty() => {
                    crate::log::message(&format!("plugin '{name}' has no library_path: {instead}"));
                    false
                }
                Some((name, instead)) if !c.resolved_path().exists() => {
                    crate::log::message(&format!(
                        "Warning: plugin '{name}': library {} not found; {instead}",
                        c.resolved_path().display()
                    ));
                    false
                }
                _ => true,
            }
        });
        let plugins = super::load_all(&configs).map_err(|e| e.to_string())?;
        let infos: Vec<&super::PluginInfo> = plugins.iter().map(|p| p.info()).collect();
        for warning in super::overlap::check(&infos, is_built_in)? {
            crate::log::message(&warning);
        }
        super::fields::install_output_types(&infos);
        crate::commands::version::record_plugins(
            infos.iter().map(|i| (i.name.clone(), i.version.clone())),
        );
        for plugin in &plugins {
            let info = plugin.info();
            crate::log::message(&format!(
                "Loaded plugin '{}' version {} from {}",
                info.name,
                info.version,
                info.library_path.display()
            ));
        }
        Ok(Hosted {
            plugins: plugins
                .into_iter()
                .map(|p| Arc::new(Mutex::new(p)))
                .collect(),
            configs,
        })
    }

    /// The event sources the plugins add, with the plugin and its
    /// `open_params`.
    pub fn sources(&self) -> Vec<(String, SharedPlugin, String)> {
        self.plugins
            .iter()
            .zip(&self.configs)
            .filter_map(|(plugin, config)| {
                let guard = lock(plugin);
                let info = guard.info();
                info.capabilities.sourcing.then(|| {
                    (
                        info.event_source.clone(),
                        Arc::clone(plugin),
                        config.open_params.clone(),
                    )
                })
            })
            .collect()
    }

    /// The async event names the plugins may send into `source`.
    pub fn async_names_for(&self, source: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for plugin in &self.plugins {
            let guard = lock(plugin);
            let info = guard.info();
            if info.sends_async_to(source) {
                for name in &info.async_events {
                    if !names.contains(name) {
                        names.push(name.clone());
                    }
                }
            }
        }
        names
    }

    /// The parsers that see events of `source` ([`super::library::PluginInfo::parses_from`]).
    pub fn parsers_for(&self, source: &str) -> Vec<SharedPlugin> {
        self.plugins
            .iter()
            .filter(|p| lock(p).info().parses_from(source))
            .cloned()
            .collect()
    }

    /// Starts the async plugins, live: each gets a handler delivering its
    /// events into the loops of the running sources it sends to
    /// ([`super::library::PluginInfo::sends_async_to`]); `running` names
    /// them, "syscall" included when the syscall source runs live. Returns
    /// each source's receiving end.
    pub fn start_async(
        &self,
        running: &[String],
    ) -> Result<std::collections::HashMap<String, Receiver<PluginEvent>>, String> {
        let mut lanes: Vec<(String, Sender<PluginEvent>, Receiver<PluginEvent>)> = Vec::new();
        for plugin in &self.plugins {
            let guard = lock(plugin);
            let info = guard.info();
            if !info.capabilities.async_events {
                continue;
            }
            let targets: Vec<&String> = running.iter().filter(|s| info.sends_async_to(s)).collect();
            if targets.is_empty() {
                continue;
            }
            let mut loops = Vec::new();
            for source in &targets {
                if !lanes.iter().any(|(s, _, _)| s == *source) {
                    let (tx, rx) = mpsc::channel();
                    lanes.push(((*source).clone(), tx, rx));
                }
                if let Some((_, tx, _)) = lanes.iter().find(|(s, _, _)| s == *source) {
                    loops.push(tx.clone());
                }
            }
            let sink = AsyncSink {
                names: info.async_events.clone(),
                plugin_id: if info.capabilities.sourcing {
                    info.id
                } else {
                    0
                },
                loops,
            };
            guard
                .set_async_sink(Some(sink))
                .map_err(|e| e.to_string())?;
            let names: Vec<&str> = targets.iter().map(|s| s.as_str()).collect();
            crate::log::message(&format!(
                "Plugin '{}' sends async events to: {}",
                info.name,
                names.join(", ")
            ));
        }
        Ok(lanes
            .into_iter()
            .map(|(source, _, rx)| (source, rx))
            .collect())
    }

    /// Tells the capture listening plugins the capture opens, in load
    /// order, as libsinsp does when its inspector opens (live or a file).
    /// A plugin's failure stops the start, as in Falco.
    pub fn capture_open(&self) -> Result<(), String> {
        for plugin in &self.plugins {
            let guard = lock(plugin);
            if guard.info().capabilities.capture_listening {
                guard.capture_open().map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Tells them the capture closes; each plugin's routines are stopped
    /// after its call. Every plugin is told; the first failure is returned.
    pub fn capture_close(&self) -> Result<(), String> {
        let mut first = Ok(());
        for plugin in &self.plugins {
            let guard = lock(plugin);
            if guard.info().capabilities.capture_listening {
                if let Err(e) = guard.capture_close() {
                    crate::log::message(&format!("Error: {e}"));
                    if first.is_ok() {
                        first = Err(e.to_string());
                    }
                }
            }
        }
        first
    }

    /// Stops the async plugins started by [`Hosted::start_async`].
    pub fn stop_async(&self) {
        for plugin in &self.plugins {
            let guard = lock(plugin);
            if guard.info().capabilities.async_events && guard.async_started() {
                if let Err(e) = guard.set_async_sink(None) {
                    crate::log::message(&format!("Warning: {e}"));
                }
            }
        }
    }

    /// What reads the plugins' own metrics for `/metrics` and snapshots.
    pub fn metrics_reader(&self) -> super::metrics::PluginMetricsReader {
        super::metrics::PluginMetricsReader::new(&self.plugins)
    }

    /// The field source of one plugin event source.
    pub fn fields_for(&self, source: &str, source_plugin: &SharedPlugin) -> PluginFields {
        PluginFields::new(source, Some(Arc::clone(source_plugin)), &self.plugins)
    }

    /// `--list-plugins`: every loaded plugin with its capabilities.
    pub fn list(&self) -> String {
        let mut out = format!("{} Plugins:\n", self.plugins.len());
        for plugin in &self.plugins {
            out.push_str(&describe(&lock(plugin)));
            out.push('\n');
        }
        out
    }

    /// The loaded plugins' fields for `--list`: one class per extracting
    /// plugin with the sources, among this run's, its fields apply to.
    pub fn field_classes(&self) -> Vec<crate::commands::list_fields::PluginClass> {
        use crate::commands::list_fields::{PluginClass, PluginField};
        let mut known: Vec<String> = vec!["syscall".into(), "k8s_audit".into()];
        for (source, _, _) in self.sources() {
            if !known.contains(&source) {
                known.push(source);
            }
        }
        self.plugins
            .iter()
            .filter_map(|plugin| {
                let guard = lock(plugin);
                let info = guard.info();
                if !info.capabilities.extraction {
                    return None;
                }
                Some(PluginClass {
                    plugin: info.name.clone(),
                    sources: known
                        .iter()
                        .filter(|s| info.extracts_from(s))
                        .cloned()
                        .collect(),
                    fields: info
                        .fields
                        .iter()
                        .map(|f| PluginField {
                            name: f.name.clone(),
                            type_name: f.type_name.clone(),
                            is_list: f.is_list,
                            arg_required: f.arg.is_required,
                            arg_index: f.arg.is_index,
                            arg_key: f.arg.is_key,
                            desc: f.desc.clone(),
                        })
                        .collect(),
                })
            })
            .collect()
    }

    /// What each loaded plugin says about itself, in load order.
    pub fn infos(&self) -> Vec<super::PluginInfo> {
        self.plugins
            .iter()
            .map(|p| lock(p).info().clone())
            .collect()
    }

    /// The names and versions of the loaded plugins, for the requirements.
    pub fn versions(&self) -> Vec<(String, String)> {
        self.plugins
            .iter()
            .map(|p| {
                let guard = lock(p);
                (guard.info().name.clone(), guard.info().version.clone())
            })
            .collect()
    }
}

fn describe(plugin: &super::Plugin) -> String {
    let info = plugin.info();
    let mut out = format!(
        "Name: {}\nDescription: {}\nContact: {}\nVersion: {}\nCapabilities:\n",
        info.name, info.description, info.contact, info.version
    );
    if info.capabilities.sourcing {
        out.push_str(&format!(
            "  - Event Sourcing (ID={}, source='{}')\n",
            info.id, info.event_source
        ));
    }
    if info.capabilities.extraction {
        out.push_str("  - Field Extraction\n");
    }
    if info.capabilities.parsing {
        out.push_str("  - Event Parsing\n");
    }
    if info.capabilities.async_events {
        out.push_str("  - Async Events\n");
    }
    if info.capabilities.capture_listening {
        out.push_str("  - Capture Listening\n");
    }
    out
}

impl Drop for Hosted {
    /// The run is over: the syscall extension and parsers let go of the
    /// plugins, which are destroyed with the last handle (this one, once
    /// the loops and rules that borrowed them are gone).
    fn drop(&mut self) {
        super::syscall::uninstall();
    }
}

/// `--plugin-info NAME`: the plugin's description, its init schema, its
/// open parameters and its fields. The plugin is loaded from the config
/// entry of that name, with its init_config.
pub fn plugin_info(config: &Config, name: &str) -> Result<String, String> {
    let configs = super::selected(&config.plugins, None).map_err(|e| e.to_string())?;
    let entry = configs
        .iter()
        .find(|c| c.name == name || c.library_path.to_string_lossy() == name)
        .ok_or_else(|| format!("plugin '{name}' is not in the config's plugins list"))?;
    let plugin = super::Plugin::load(&entry.resolved_path(), &entry.init_config)
        .map_err(|e| e.to_string())?;
    let info = plugin.info();
    let mut out = describe(&plugin);
    out.push('\n');
    match &info.init_schema {
        Some(schema) => out.push_str(&format!("Init config schema type: JSON\n{schema}\n")),
        None => out.push_str("No init config schema\n"),
    }
    if info.capabilities.sourcing {
        let params = plugin.list_open_params().map_err(|e| e.to_string())?;
        if params.is_empty() {
            out.push_str("No suggested open params available\n");
        } else {
            out.push_str("Suggested open params:\n");
            for param in params {
                out.push_str(&format!("{}: {}\n", param.value, param.desc));
            }
        }
    }
    if !info.fields.is_empty() {
        out.push_str("Fields:\n");
        for field in &info.fields {
            out.push_str(&format!(
                "  {} ({}): {}\n",
                field.name, field.type_name, field.desc
            ));
        }
    }
    Ok(out)
}

/// Checks the `required_plugin_versions` of every rules input against
/// the loaded plugins.
pub fn check_requirements(inputs: &[RulesInput], hosted: &Hosted) -> Result<(), String> {
    let mut all = Vec::new();
    for input in inputs {
        let (name, text) = match input {
            RulesInput::File(path) => {
                // A directory was expanded before; an unreadable file fails
                // the rules load with its own error.
                match std::fs::read_to_string(path) {
                    Ok(text) => (path.display().to_string(), text),
                    Err(_) => continue,
                }
            }
            RulesInput::BuiltIn { name, text } => (name.to_string(), text.to_string()),
            RulesInput::Text { name, text } => (name.clone(), text.clone()),
        };
        all.extend(requirements::from_rules_text(&text, &name)?);
    }
    // A plugin whose job Peregrine does itself meets the rules' need for
    // it unless the real plugin is loaded (then its version counts).
    let mut loaded = hosted.versions();
    for (name, _) in BUILT_IN {
        if !loaded.iter().any(|(n, _)| n == name) {
            for requirement in all.iter().filter(|r| r.wanted.name == *name) {
                let v = requirement.wanted.version;
                loaded.push((name.to_string(), v.to_string()));
            }
        }
    }
    requirements::check(&all, &loaded)
}

/// How a plugin source loop ended.
pub struct LoopEnd {
    pub source: String,
    pub detections: Detections,
    pub error: Option<String>,
}

/// What every plugin source loop shares with the run.
pub struct LoopShared {
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: Arc<Metrics>,
    pub hostname: String,
    /// Set by signals and `-M`; set by a live loop that ends, which ends
    /// the run's other sources as in Falco.
    pub stop: Arc<AtomicBool>,
    /// Where the loops also write the events they read (`--plugin-capture`).
    pub capture: Option<super::capture::EventWriter>,
}

/// Where a plugin source's events come from.
#[derive(Debug, Clone)]
pub enum Feed {
    /// The plugin itself, opened with these `open_params`.
    Live(String),
    /// The plugin's events in a capture (`-e`).
    Capture(std::path::PathBuf),
}

/// Starts the event loop of one plugin source on its own thread.
pub fn spawn_loop(
    source: String,
    plugin: SharedPlugin,
    feed: Feed,
    parsers: Vec<SharedPlugin>,
    async_events: Option<Receiver<PluginEvent>>,
    mut rules: CompiledRules<PluginFields>,
    shared: Arc<LoopShared>,
) -> std::io::Result<JoinHandle<LoopEnd>> {
    std::thread::Builder::new()
        .name(format!("source-{source}"))
        .spawn(move || {
            let mut detections = Detections::default();
            let parse_types = parsers
                .iter()
                .map(|p| {
                    lock(p)
                        .parse_event_types()
                        .map(|codes| codes.into_iter().collect())
                })
                .collect();
            let looped = Looped {
                source: &source,
                plugin: &plugin,
                parsers: &parsers,
                parse_types,
                async_events: async_events.as_ref(),
                numbered: std::cell::Cell::new(0),
                shared: &shared,
            };
            let error = match &feed {
                Feed::Live(open_params) => {
                    let result = looped.live(open_params, &mut rules, &mut detections);
                    lock(&plugin).close();
                    // A live source that ends ends the run, as in Falco.
                    shared.stop.store(true, Ordering::SeqCst);
                    crate::wakeup::ring();
                    result
                }
                Feed::Capture(path) => looped.replay(path, &mut rules, &mut detections),
            }
            .err();
            LoopEnd {
                source,
                detections,
                error,
            }
        })
}

/// One plugin source's loop, whatever feeds it.
struct Looped<'a> {
    source: &'a str,
    plugin: &'a SharedPlugin,
    parsers: &'a [SharedPlugin],
    /// Per parser, the event types it parses (None: all).
    parse_types: Vec<Option<HashSet<u16>>>,
    /// The async events plugins push into this source, live.
    async_events: Option<&'a Receiver<PluginEvent>>,
    /// The last `evt.num` given: the source's events and the async ones
    /// share one count, as in a Falco stream.
    numbered: std::cell::Cell<u64>,
    shared: &'a LoopShared,
}

impl Looped<'_> {
    /// Parsers first, then the capture, then the rules.
    fn handle(
        &self,
        c_source: &std::ffi::CStr,
        event: &PluginEvent,
        rules: &mut CompiledRules<PluginFields>,
        detections: &mut Detections,
    ) -> Result<(), String> {
        for (parser, types) in self.parsers.iter().zip(&self.parse_types) {
            if types
                .as_ref()
                .is_some_and(|t| !t.contains(&event.event_type()))
            {
                continue;
            }
            lock(parser)
                .parse(event, c_source)
                .map_err(|e| e.to_string())?;
        }
        if let Some(capture) = &self.shared.capture {
            capture.write(event)?;
        }
        evaluate(rules, event, self.shared, detections);
        Ok(())
    }

    fn number(&self, event: &mut PluginEvent) {
        let next = self.numbered.get() + 1;
        self.numbered.set(next);
        event.number = next;
    }

    fn live(
        &self,
        open_params: &str,
        rules: &mut CompiledRules<PluginFields>,
        detections: &mut Detections,
    ) -> Result<(), String> {
        let source = self.source;
        lock(self.plugin)
            .open(open_params)
            .map_err(|e| e.to_string())?;
        crate::log::message(&format!("Opened event source '{source}'"));
        let c_source = std::ffi::CString::new(source).unwrap_or_default();
        let mut batch: Vec<PluginEvent> = Vec::new();
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let status = {
                let mut plugin = lock(self.plugin);
                let status = plugin.next_batch(&mut batch);
                plugin.serve_metrics();
                status.map_err(|e| e.to_string())?
            };
            for mut event in batch.drain(..) {
                self.number(&mut event);
                self.handle(&c_source, &event, rules, detections)?;
            }
            // Async events pushed meanwhile go after the batch.
            if let Some(pushed) = self.async_events {
                while let Ok(mut event) = pushed.try_recv() {
                    self.number(&mut event);
                    self.handle(&c_source, &event, rules, detections)?;
                }
            }
            match status {
                Batch::Eof => {
                    crate::log::message(&format!("Event source '{source}' reached its end"));
                    return Ok(());
                }
                Batch::Timeout => std::thread::sleep(Duration::from_millis(10)),
                Batch::Events => {}
            }
        }
    }

    /// The plugin's events in a capture, as Falco replays each source of
    /// a capture on its own.
    fn replay(
        &self,
        path: &std::path::Path,
        rules: &mut CompiledRules<PluginFields>,
        detections: &mut Detections,
    ) -> Result<(), String> {
        let c_source = std::ffi::CString::new(self.source).unwrap_or_default();
        let id = lock(self.plugin).info().id;
        let mut failure = None;
        super::capture::read_events(path, id, |event| {
            if self.shared.stop.load(Ordering::Relaxed) {
                return false;
            }
            match self.handle(&c_source, &event, rules, detections) {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        failure.map_or(Ok(()), Err)
    }
}

/// One plugin event through its source's rules.
pub fn evaluate(
    rules: &mut CompiledRules<PluginFields>,
    event: &PluginEvent,
    shared: &LoopShared,
    detections: &mut Detections,
) {
    detections.events += 1;
    shared.metrics.events.fetch_add(1, Ordering::Relaxed);
    rules.source().note_event(event.ts());
    rules.evaluate(event, |rule, fields| {
        detections.count(&rule.name, rule.priority);
        shared.metrics.count_alert(&rule.name, rule.priority);
        shared.dispatcher.send(Alert::new(
            rule,
            fields,
            event,
            event.ts(),
            &shared.hostname,
        ));
    });
}
