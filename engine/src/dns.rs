//! The domain names `fd.sip.name`, `fd.cip.name`, `fd.lip.name` and
//! `fd.rip.name` show, as Falco's DNS manager keeps them: only the names
//! the loaded rules compare these fields with are resolved, and an
//! address shows the first such name it belongs to.
//!
//! The engine never resolves a name itself (no sockets, no threads, never
//! on the event path): whoever runs it reads [`DomainNames::wanted`],
//! resolves those names in the background and hands the addresses back
//! with [`DomainNames::set_addresses`]. Events read the table under a
//! read lock, only when a rule or output uses one of these fields.

use crate::fast_hash::FastMap;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

/// A shared table of wanted names and the addresses they resolved to.
/// Clones share the table.
#[derive(Debug, Clone, Default)]
pub struct DomainNames {
    inner: Arc<RwLock<Table>>,
}

#[derive(Debug, Default)]
struct Table {
    /// Names in the order rules named them, with their latest addresses.
    names: Vec<(String, Vec<IpAddr>)>,
    /// Each address with the index of the first name that has it.
    by_addr: FastMap<IpAddr, usize>,
}

impl Table {
    fn reindex(&mut self) {
        self.by_addr.clear();
        for (i, (_, addrs)) in self.names.iter().enumerate() {
            for a in addrs {
                self.by_addr.entry(*a).or_insert(i);
            }
        }
    }
}

impl DomainNames {
    pub fn new() -> DomainNames {
        DomainNames::default()
    }

    /// Adds a name to resolve (once). The field shows it as the rule
    /// wrote it, so the rule's comparison matches it.
    pub fn want(&self, name: &str) {
        let name = name.trim().to_string();
        if name.is_empty() {
            return;
        }
        let mut t = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if !t.names.iter().any(|(n, _)| *n == name) {
            t.names.push((name, Vec::new()));
        }
    }

    /// The names to resolve, in the order they were first wanted.
    pub fn wanted(&self) -> Vec<String> {
        let t = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        t.names.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Records what `name` resolves to now (an empty list when it no
    /// longer resolves). Returns whether the addresses changed.
    pub fn set_addresses(&self, name: &str, addrs: &[IpAddr]) -> bool {
        let mut sorted = addrs.to_vec();
        sorted.sort();
        sorted.dedup();
        let mut t = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = t.names.iter_mut().find(|(n, _)| *n == name) else {
            return false;
        };
        if entry.1 == sorted {
            return false;
        }
        entry.1 = sorted;
        t.reindex();
        true
    }

    /// The wanted name `addr` belongs to, if any.
    pub fn name_of(&self, addr: IpAddr) -> Option<String> {
        let t = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let i = *t.by_addr.get(&addr)?;
        t.names.get(i).map(|(n, _)| n.clone())
    }

    /// Whether no name is wanted (no rule uses these fields).
    pub fn is_empty(&self) -> bool {
        let t = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        t.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_shows_the_first_wanted_name_it_belongs_to() {
        let names = DomainNames::new();
        names.want("api.example.com");
        names.want("db.example.com");
        names.want("api.example.com");
        assert_eq!(names.wanted(), ["api.example.com", "db.example.com"]);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(names.name_of(a), None);
        assert!(names.set_addresses("db.example.com", &[a]));
        assert_eq!(names.name_of(a).as_deref(), Some("db.example.com"));
        assert!(names.set_addresses("api.example.com", &[b, a]));
        assert_eq!(names.name_of(a).as_deref(), Some("api.example.com"));
        assert_eq!(names.name_of(b).as_deref(), Some("api.example.com"));
        assert!(!names.set_addresses("api.example.com", &[a, b]));
        // A refresh that drops an address drops its name.
        assert!(names.set_addresses("api.example.com", &[]));
        assert_eq!(names.name_of(b), None);
        assert_eq!(names.name_of(a).as_deref(), Some("db.example.com"));
        // Names no rule wanted are not recorded.
        assert!(!names.set_addresses("other.example.com", &[b]));
        assert_eq!(names.name_of(b), None);
    }
}
