//! The doorbell of the live syscall loop (see [`Doorbell`]): threads that
//! leave it something (a stop request, container metadata, a plugin's
//! async event, reloaded rules) ring it, so an idle loop blocked on the
//! module's rings looks at once instead of at its next timeout.

use peregrine_driver_sys::Doorbell;
use std::sync::{Arc, OnceLock};

/// The process's doorbell; None where no eventfd could be made (logged
/// once), in which case the loop's timeout bounds every delay.
pub fn doorbell() -> Option<&'static Arc<Doorbell>> {
    static BELL: OnceLock<Option<Arc<Doorbell>>> = OnceLock::new();
    BELL.get_or_init(|| match Doorbell::new() {
        Ok(bell) => Some(Arc::new(bell)),
        Err(e) => {
            crate::log::message(&format!(
                "cannot make the live loop's doorbell (eventfd: {e}); it looks for news on its timer"
            ));
            None
        }
    })
    .as_ref()
}

/// Rings the doorbell: the live loop looks at what was left for it.
pub fn ring() {
    if let Some(bell) = doorbell() {
        bell.ring();
    }
}
