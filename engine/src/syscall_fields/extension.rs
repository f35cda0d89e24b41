//! Fields on syscall events that come from outside the engine. Falco lets
//! a plugin whose extraction covers the `syscall` source add fields that
//! syscall rules use beside libsinsp's (`evt.type=open and my.field=x`);
//! the host supplies them through this trait, the engine asks it for
//! names its own fields do not know.

use std::fmt;
use std::sync::Arc;

use super::SyscallEvent;
use crate::field::{FieldError, FieldInfo, FieldType, Value};

/// A field an extension resolved: its own id for it, and its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionField {
    pub id: u32,
    pub ty: FieldType,
    pub is_list: bool,
}

/// A provider of extra syscall fields. Called from every evaluation
/// worker, hence `Send + Sync`; `resolve` runs while rules compile.
pub trait SyscallExtension: Send + Sync {
    /// Resolves `name[arg]`: None when the extension has no such field.
    fn resolve(&self, name: &str, arg: Option<&str>) -> Option<Result<ExtensionField, FieldError>>;

    /// Appends the values of the field `id` (from `resolve`) on `event`;
    /// nothing when it has no value there.
    fn extract<'e>(&self, id: u32, event: &SyscallEvent<'e>, out: &mut Vec<Value<'e>>);

    /// The fields it adds, for listings.
    fn fields(&self) -> Vec<FieldInfo>;
}

/// The extension a [`super::SyscallFields`] holds, shared by its clones.
#[derive(Clone)]
pub(super) struct Shared(pub(super) Arc<dyn SyscallExtension>);

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyscallExtension")
    }
}
