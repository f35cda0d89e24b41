//! Routines: work a capture listening plugin asks the host to run in the
//! background (`subscribe` in the routine vtable of `capture_open` and
//! `capture_close`). As libsinsp's thread pool does, the host calls a
//! routine again and again while it returns true and stays subscribed, on
//! a thread of its own, without the lock that serialises the plugin's
//! other calls: the plugin API leaves a routine's safety to its plugin.
//!
//! Two things libsinsp leaves loose are kept tight here. `unsubscribe`
//! waits for the routine's current call to end (unless the routine calls
//! it itself), so a plugin that frees the routine's state after it, as
//! the Rust SDK's handle does, frees nothing still in use. And every
//! routine of a plugin has ended before its `destroy` (see [`purge`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use falco_plugin_api as api;

use super::owner::Owner;

const SUCCESS: api::ss_plugin_rc = api::ss_plugin_rc_SS_PLUGIN_SUCCESS;
const FAILURE: api::ss_plugin_rc = api::ss_plugin_rc_SS_PLUGIN_FAILURE;

/// One subscribed routine; its address is the handle the plugin holds.
struct Routine {
    stop: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The routines of one plugin, kept in its owner.
#[derive(Default)]
pub struct Routines {
    running: Mutex<Vec<Arc<Routine>>>,
}

/// The plugin state and routine state a routine thread passes back: raw
/// pointers the plugin gave for this purpose.
struct Call {
    routine: unsafe extern "C-unwind" fn(
        *mut api::ss_plugin_t,
        *mut api::ss_plugin_routine_state_t,
    ) -> api::ss_plugin_bool,
    plugin: *mut api::ss_plugin_t,
    state: *mut api::ss_plugin_routine_state_t,
}

// SAFETY: the plugin hands these pointers over to be called from the
// host's threads; the routine API makes their use from there its concern.
unsafe impl Send for Call {}

impl Call {
    fn once(&self) -> bool {
        // SAFETY: the plugin's routine with the states it subscribed; its
        // plugin outlives the routine (purged before destroy).
        unsafe { (self.routine)(self.plugin, self.state) != 0 }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The routine vtable handed to `capture_open` and `capture_close`.
pub(super) fn vtable() -> api::ss_plugin_routine_vtable {
    api::ss_plugin_routine_vtable {
        subscribe: Some(subscribe),
        unsubscribe: Some(unsubscribe),
    }
}

unsafe extern "C-unwind" fn subscribe(
    o: *mut api::ss_plugin_owner_t,
    f: api::ss_plugin_routine_fn_t,
    i: *mut api::ss_plugin_routine_state_t,
) -> *mut api::ss_plugin_routine_t {
    // SAFETY: the owner pointer the host passed with the routine vtable;
    // the Owner is boxed and outlives the plugin's calls.
    let (Some(owner), Some(routine_fn)) = (unsafe { o.cast::<Owner>().as_ref() }, f) else {
        return std::ptr::null_mut();
    };
    let plugin = owner.plugin_state();
    if plugin.is_null() {
        return std::ptr::null_mut();
    }
    let routine = Arc::new(Routine {
        stop: AtomicBool::new(false),
        thread: Mutex::new(None),
    });
    let call = Call {
        routine: routine_fn,
        plugin,
        state: i,
    };
    let running = Arc::clone(&routine);
    let spawned = std::thread::Builder::new()
        .name(format!("routine:{}", owner.plugin))
        .spawn(move || {
            while !running.stop.load(Ordering::Acquire) && call.once() {
                // libsinsp queues the next call at once; yielding keeps a
                // routine that has nothing to do from starving the host.
                std::thread::yield_now();
            }
        });
    let Ok(handle) = spawned else {
        return std::ptr::null_mut();
    };
    *lock(&routine.thread) = Some(handle);
    let address = Arc::as_ptr(&routine).cast_mut().cast();
    lock(&owner.routines.running).push(routine);
    address
}

unsafe extern "C-unwind" fn unsubscribe(
    o: *mut api::ss_plugin_owner_t,
    r: *mut api::ss_plugin_routine_t,
) -> api::ss_plugin_rc {
    // SAFETY: as in `subscribe`.
    let Some(owner) = (unsafe { o.cast::<Owner>().as_ref() }) else {
        return FAILURE;
    };
    let routine = {
        let mut running = lock(&owner.routines.running);
        let Some(at) = running
            .iter()
            .position(|routine| Arc::as_ptr(routine).cast::<()>() == r.cast::<()>())
        else {
            return FAILURE;
        };
        running.remove(at)
    };
    stop(&routine);
    SUCCESS
}

/// Stops `routine` and waits for its call in progress, unless this is the
/// routine's own thread (it ends when it returns).
fn stop(routine: &Routine) {
    routine.stop.store(true, Ordering::Release);
    let handle = {
        let mut thread = lock(&routine.thread);
        let own = thread
            .as_ref()
            .is_some_and(|h| h.thread().id() == std::thread::current().id());
        if own {
            return;
        }
        thread.take()
    };
    if let Some(handle) = handle {
        let _ = handle.join();
    }
}

/// Stops every routine of `owner`'s plugin and waits for them, as
/// libsinsp purges its pool when the capture closes.
pub(super) fn purge(owner: &Owner) {
    let routines: Vec<Arc<Routine>> = std::mem::take(&mut *lock(&owner.routines.running));
    for routine in &routines {
        stop(routine);
    }
}

/// How many routines of `owner`'s plugin are subscribed.
#[cfg(test)]
pub(super) fn subscribed(owner: &Owner) -> usize {
    lock(&owner.routines.running).len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    static CALLS: AtomicU64 = AtomicU64::new(0);

    unsafe extern "C-unwind" fn count_to_five(
        _plugin: *mut api::ss_plugin_t,
        _state: *mut api::ss_plugin_routine_state_t,
    ) -> api::ss_plugin_bool {
        u32::from(CALLS.fetch_add(1, Ordering::SeqCst) + 1 < 5)
    }

    unsafe extern "C-unwind" fn forever(
        _plugin: *mut api::ss_plugin_t,
        state: *mut api::ss_plugin_routine_state_t,
    ) -> api::ss_plugin_bool {
        // SAFETY: the test passes an AtomicU64 as the routine state.
        unsafe { &*state.cast::<AtomicU64>() }.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(1));
        1
    }

    fn owner() -> Box<Owner> {
        let owner = Box::new(Owner::new("test"));
        // Any non-null state: the test routines do not read it.
        owner.set_plugin_state(std::ptr::NonNull::<u8>::dangling().as_ptr().cast());
        owner
    }

    #[test]
    fn a_routine_runs_until_it_returns_false() {
        let owner = owner();
        let o = (&*owner as *const Owner).cast_mut().cast();
        // SAFETY: a live owner and a routine that ignores its states.
        let r = unsafe { subscribe(o, Some(count_to_five), std::ptr::null_mut()) };
        assert!(!r.is_null());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while CALLS.load(Ordering::SeqCst) < 5 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(CALLS.load(Ordering::SeqCst), 5);
        purge(&owner);
        assert_eq!(subscribed(&owner), 0);
    }

    #[test]
    fn unsubscribe_waits_and_no_call_follows() {
        let owner = owner();
        let o = (&*owner as *const Owner).cast_mut().cast();
        let calls = Box::new(AtomicU64::new(0));
        let state = (&*calls as *const AtomicU64).cast_mut().cast();
        // SAFETY: a live owner; the state outlives the routine (joined).
        let r = unsafe { subscribe(o, Some(forever), state) };
        while calls.load(Ordering::SeqCst) < 3 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // SAFETY: the handle subscribe returned.
        assert_eq!(unsafe { unsubscribe(o, r) }, SUCCESS);
        let after = calls.load(Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(calls.load(Ordering::SeqCst), after);
        // SAFETY: as above; a second unsubscribe finds nothing.
        assert_eq!(unsafe { unsubscribe(o, r) }, FAILURE);
        assert_eq!(subscribed(&owner), 0);
    }
}
