//! The plugin event sources of a run as one feed: one loop per source,
//! live or from the capture, as Falco runs each source on its own; what
//! they read also goes to `--plugin-capture`, shared by them all.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use peregrine_engine::rules::CompiledRules;

use super::fields::{PluginFields, SharedPlugin};
use super::host::{self, Hosted, LoopEnd, LoopShared};
use crate::sources::feed::{AsyncLanes, Ended, Feed, Running, Shared};
use crate::sources::plan::SourcePlan;

/// One plugin source, before its loop starts.
struct Source {
    name: String,
    plugin: SharedPlugin,
    events: host::Feed,
    parsers: Vec<SharedPlugin>,
    rules: CompiledRules<PluginFields>,
}

/// The plugin sources that run.
pub struct PluginSources {
    sources: Vec<Source>,
    capture_to: Option<PathBuf>,
}

impl PluginSources {
    /// The enabled sources of the plan with their rules (compiled in the
    /// plan's order); None when none runs.
    pub fn from_plan(
        plan: &SourcePlan,
        rules: Vec<CompiledRules<PluginFields>>,
        hosted: &Hosted,
        capture_to: Option<PathBuf>,
    ) -> Option<PluginSources> {
        let sources: Vec<Source> = plan
            .plugins
            .iter()
            .zip(rules)
            .filter(|(feed, _)| feed.enabled)
            .map(|(feed, rules)| Source {
                name: feed.source.clone(),
                plugin: Arc::clone(&feed.plugin),
                events: match plan.capture() {
                    Some(path) => host::Feed::Capture(path.to_path_buf()),
                    None => host::Feed::Live(feed.open_params.clone()),
                },
                parsers: hosted.parsers_for(&feed.source),
                rules,
            })
            .collect();
        (!sources.is_empty()).then_some(PluginSources {
            sources,
            capture_to,
        })
    }
}

impl Feed for PluginSources {
    fn name(&self) -> String {
        let names: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
        format!("plugins: {}", names.join(", "))
    }

    fn start(
        self: Box<Self>,
        shared: &Shared,
        lanes: &mut AsyncLanes,
    ) -> Result<Box<dyn Running>, String> {
        let writer = match &self.capture_to {
            Some(path) => Some(super::capture::EventWriter::create(path, &shared.hostname)?),
            None => None,
        };
        let looped = Arc::new(LoopShared {
            dispatcher: Arc::clone(&shared.dispatcher),
            metrics: Arc::clone(&shared.metrics),
            hostname: shared.hostname.clone(),
            stop: Arc::clone(&shared.stop),
            capture: writer,
        });
        let mut threads = Vec::new();
        for source in self.sources {
            let name = source.name;
            let lane = lanes.remove(&name);
            let thread = host::spawn_loop(
                name.clone(),
                source.plugin,
                source.events,
                source.parsers,
                lane,
                source.rules,
                Arc::clone(&looped),
            )
            .map_err(|e| format!("cannot start the '{name}' source thread: {e}"))?;
            threads.push(thread);
        }
        Ok(Box::new(PluginLoops { threads, looped }))
    }
}

/// The plugin sources' loops, each on its thread.
struct PluginLoops {
    threads: Vec<JoinHandle<LoopEnd>>,
    looped: Arc<LoopShared>,
}

impl Running for PluginLoops {
    fn join(&mut self, _shared: &Shared) -> Ended {
        let mut ended = Ended::default();
        for thread in self.threads.drain(..) {
            match thread.join() {
                Ok(end) => {
                    ended.detections.merge(end.detections);
                    if let Some(error) = end.error {
                        crate::log::message(&format!(
                            "Error: event source '{}': {error}",
                            end.source
                        ));
                        ended.error.get_or_insert(error);
                    }
                }
                Err(_) => crate::log::message("a plugin source thread panicked"),
            }
        }
        ended
    }

    fn close(self: Box<Self>) -> Result<(), String> {
        let Some(writer) = &self.looped.capture else {
            return Ok(());
        };
        let written = writer.finish()?;
        crate::log::message(&format!("{written} plugin events written to the capture"));
        Ok(())
    }
}
