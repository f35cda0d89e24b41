//! Signals, caught from the first instruction of `main`.
//!
//! Loading a large rule set takes seconds; a SIGHUP or SIGUSR1 sent then
//! (logrotate, a config-management run) used to meet the default action
//! and kill the process. They are caught at once and wait until the reload
//! thread and the outputs are up, which then act on them once.
//!
//! SIGTERM and SIGINT ask for a stop: the event loops finish, the outputs
//! deliver what is queued within their deadline. A second one forces the
//! stop: what was not delivered is logged, program outputs are killed, and
//! the process exits with [`FORCED_STOP_EXIT_CODE`] at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};

use crate::reload::Hangups;

/// The exit status of a stop forced by a second SIGTERM or SIGINT.
pub const FORCED_STOP_EXIT_CODE: i32 = 1;

/// Signals caught before anything acts on them.
pub struct Early {
    /// SIGHUP, for the reload thread.
    pub hangups: Option<Hangups>,
    /// SIGUSR1, for the outputs' reopen thread.
    pub reopen: Option<signal_hook::iterator::Signals>,
}

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Set once a forced stop has begun.
static FORCING: AtomicBool = AtomicBool::new(false);

/// What to do when a stop is forced, each hook called once: log what was
/// not delivered, kill children. Hooks must not block.
type Hook = Box<dyn Fn() + Send>;
static FORCED_STOP_HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Catches every signal Peregrine acts on. Called first thing in `main`.
pub fn catch_early() -> Early {
    stop_flag();
    let reopen = match signal_hook::iterator::Signals::new([SIGUSR1]) {
        Ok(signals) => Some(signals),
        Err(e) => {
            crate::log::message(&format!(
                "cannot catch SIGUSR1 ({e}): outputs will not reopen on it"
            ));
            None
        }
    };
    Early {
        hangups: Hangups::catch(),
        reopen,
    }
}

/// The flag SIGTERM and SIGINT set; the first call starts the thread that
/// watches them (and forces the stop at the second).
pub fn stop_flag() -> Arc<AtomicBool> {
    Arc::clone(STOP.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        watch_stop_signals(Arc::clone(&flag));
        flag
    }))
}

/// Adds something to do when a stop is forced.
pub fn on_forced_stop(hook: impl Fn() + Send + 'static) {
    lock_hooks().push(Box::new(hook));
}

fn lock_hooks() -> std::sync::MutexGuard<'static, Vec<Hook>> {
    FORCED_STOP_HOOKS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn watch_stop_signals(flag: Arc<AtomicBool>) {
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            crate::log::message(&format!("cannot catch SIGINT and SIGTERM: {e}"));
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("stop-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let name = if signal == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                if !flag.swap(true, Ordering::SeqCst) {
                    crate::wakeup::ring();
                    crate::log::message(&format!(
                        "{name} received: stopping (send it again to stop at once)"
                    ));
                    continue;
                }
                crate::log::message(&format!("{name} received again: forcing the stop"));
                force_stop();
            }
        });
    if let Err(e) = spawned {
        crate::log::message(&format!(
            "cannot watch SIGINT and SIGTERM ({e}): the default action applies"
        ));
    }
}

fn force_stop() -> ! {
    FORCING.store(true, Ordering::SeqCst);
    let hooks = lock_hooks();
    for hook in hooks.iter() {
        hook();
    }
    std::process::exit(FORCED_STOP_EXIT_CODE)
}

/// Called by `main` before it returns: if a forced stop has begun (its
/// kills may have let the normal shutdown finish early), the forced stop
/// finishes its work and sets the exit status.
pub fn settle() {
    if FORCING.load(Ordering::SeqCst) {
        // Held by the forced stop until it exits the process.
        let _hooks = lock_hooks();
        std::process::exit(FORCED_STOP_EXIT_CODE);
    }
}

// What the signals do is tested through the real binary
// (tests/tests/hostile_signals.rs); here only the bookkeeping.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_flag_is_one_flag() {
        let a = stop_flag();
        let b = stop_flag();
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn hooks_are_kept_in_order() {
        let before = lock_hooks().len();
        on_forced_stop(|| {});
        on_forced_stop(|| {});
        assert_eq!(lock_hooks().len(), before + 2);
    }
}
