//! The syscall source as a feed: the kernel module's rings, a capture or
//! `peregrine run`'s tracer, read on the main thread through the syscall
//! pipeline (`engine.kind: nodriver` reads nothing: the plan leaves the
//! main thread to [`super::feed::Idle`]).

use std::path::PathBuf;
use std::sync::mpsc::Receiver;

use peregrine_driver_sys::DriverConfig;

use crate::config::{BaseSyscalls, Config};
use crate::run::{self, LiveTuning, Pipeline, RunError};
use crate::sources::feed::{AsyncLanes, Ended, Feed, Running, Shared};
use crate::sources::plan::SyscallFeed;
use crate::sources::plugins::PluginEvent;
use crate::sources::traced;

/// The exit status of `peregrine run -- CMD` stopped (SIGTERM, SIGINT,
/// -M) before CMD finished; CMD's own status otherwise.
pub const RUN_STOPPED_EXIT_CODE: u8 = 125;

/// Where the main thread reads syscall events.
enum Reader {
    Kernel {
        driver: DriverConfig,
        base: BaseSyscalls,
        /// `-A`: every syscall, not only those the rules need.
        all_events: bool,
        tuning: LiveTuning,
        /// `--syscall-capture`: where every record read is written too.
        record: Option<PathBuf>,
    },
    Capture(PathBuf),
    Traced(traced::Workload),
}

/// The syscall source of a run.
pub struct Syscall {
    reader: Reader,
    /// Async events plugins send into the syscall source, live.
    async_events: Option<Receiver<PluginEvent>>,
    /// `peregrine run`'s exit status, once the traced command is done.
    exit_code: Option<u8>,
}

impl Syscall {
    /// The feed for what the plan chose, if it reads events (nodriver does
    /// not; a traced run needs its target).
    pub fn from_plan(
        feed: &SyscallFeed,
        config: &Config,
        all_events: bool,
        traced: Option<traced::Workload>,
        record: Option<PathBuf>,
    ) -> Option<Syscall> {
        let reader = match (feed, traced) {
            (SyscallFeed::Kernel, _) => Reader::Kernel {
                driver: DriverConfig {
                    snaplen: Some(config.driver.snaplen),
                    sampling_ratio: Some(config.driver.sampling_ratio),
                    ..DriverConfig::default()
                },
                base: config.base_syscalls.clone(),
                all_events,
                tuning: LiveTuning {
                    evaluation_workers: config.driver.evaluation_workers as usize,
                    thread_table_size: usize::try_from(config.falco_libs.thread_table_size)
                        .unwrap_or(usize::MAX),
                    purge: run::Purge::from_config(&config.falco_libs),
                },
                record,
            },
            (SyscallFeed::Capture(path), _) => Reader::Capture(path.clone()),
            (SyscallFeed::Traced, Some(workload)) => Reader::Traced(workload),
            (SyscallFeed::Traced, None) | (SyscallFeed::NoDriver, _) => return None,
        };
        Some(Syscall {
            reader,
            async_events: None,
            exit_code: None,
        })
    }
}

impl Feed for Syscall {
    fn name(&self) -> String {
        match &self.reader {
            Reader::Kernel { .. } => "syscall: kernel module".into(),
            Reader::Capture(path) => format!("syscall: capture {}", path.display()),
            Reader::Traced(_) => "syscall: traced".into(),
        }
    }

    fn start(
        mut self: Box<Self>,
        _shared: &Shared,
        lanes: &mut AsyncLanes,
    ) -> Result<Box<dyn Running>, String> {
        self.async_events = lanes.remove("syscall");
        Ok(self)
    }
}

impl Running for Syscall {
    fn drive(&mut self, pipeline: &mut Pipeline<'_>) -> Option<Result<(), RunError>> {
        pipeline.async_events = self.async_events.take();
        Some(match &self.reader {
            Reader::Kernel {
                driver,
                base,
                all_events,
                tuning,
                record,
            } => run::live(
                driver.clone(),
                base,
                *all_events,
                *tuning,
                record.as_deref(),
                pipeline,
            ),
            Reader::Capture(path) => run::replay(path, pipeline),
            Reader::Traced(workload) => traced::run(workload.attach, &workload.command, pipeline)
                .map(|ending| self.exit_code = Some(exit_code(workload, ending))),
        })
    }

    fn join(&mut self, shared: &Shared) -> Ended {
        shared.main_source_done(matches!(self.reader, Reader::Capture(_)));
        Ended {
            exit_code: self.exit_code,
            ..Ended::default()
        }
    }
}

/// `peregrine run`'s exit status: the command's, or what says it was left
/// running.
fn exit_code(workload: &traced::Workload, ending: traced::Ending) -> u8 {
    match ending {
        traced::Ending::Finished(code) => code,
        // Attached, a stop is how the session ends.
        traced::Ending::Stopped if workload.attach.is_some() => 0,
        traced::Ending::Stopped => {
            crate::log::message(&format!(
                "peregrine run: stopped before the traced command finished; it goes \
                 on unmonitored (exit status {RUN_STOPPED_EXIT_CODE})"
            ));
            RUN_STOPPED_EXIT_CODE
        }
    }
}
