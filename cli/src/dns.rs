//! The background resolver behind `fd.sip.name` and its kin. The engine
//! holds the table ([`DomainNames`]): the names rules compare these fields
//! with, and the addresses each resolved to. This thread resolves every
//! wanted name when first seen, then again on a schedule like Falco's DNS
//! manager: every 10 seconds while the answer changes, the wait doubling
//! up to 320 seconds while it does not. Events never wait for it.

use peregrine_engine::dns::DomainNames;
use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The wait before a name is resolved again, at first and at most.
pub const BASE_REFRESH: Duration = Duration::from_secs(10);
pub const MAX_REFRESH: Duration = Duration::from_secs(320);
/// How often the thread looks for names added by a reload.
const TICK: Duration = Duration::from_secs(1);

/// The table every compiled rule set of this process shares, so names
/// added by a reload reach the one resolver thread.
pub fn shared_names() -> &'static DomainNames {
    static NAMES: OnceLock<DomainNames> = OnceLock::new();
    NAMES.get_or_init(DomainNames::new)
}

/// Where names are looked up.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The system resolver (getaddrinfo: /etc/hosts, then DNS).
    System,
    /// Only a hosts file in /etc/hosts format (for tests and closed
    /// networks); read again at every lookup.
    HostsFile(PathBuf),
}

impl Lookup {
    fn resolve(&self, name: &str) -> Vec<IpAddr> {
        match self {
            Lookup::System => match (name, 0u16).to_socket_addrs() {
                Ok(addrs) => addrs.map(|a| a.ip()).collect(),
                Err(_) => Vec::new(),
            },
            Lookup::HostsFile(path) => std::fs::read_to_string(path)
                .map(|text| hosts_lookup(&text, name))
                .unwrap_or_default(),
        }
    }
}

/// The addresses a hosts file gives `name` (case-insensitive).
fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if words.any(|w| w.eq_ignore_ascii_case(name)) {
            out.push(ip);
        }
    }
    out
}

/// The running resolver thread; told to stop when dropped. It is not
/// waited for: a lookup under way may take the system resolver's time
/// out, and exiting must not.
pub struct Resolver {
    stop: Arc<(Mutex<bool>, Condvar)>,
    _handle: JoinHandle<()>,
}

/// When each name is due again, and the wait it is on.
struct Schedule {
    due: Instant,
    wait: Duration,
}

impl Resolver {
    /// Starts resolving the names `names` wants, now and on schedule.
    pub fn start(names: DomainNames, lookup: Lookup) -> std::io::Result<Resolver> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop_thread = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("dns-names".into())
            .spawn(move || run(&names, &lookup, &stop_thread))?;
        Ok(Resolver {
            stop,
            _handle: handle,
        })
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
    }
}

fn run(names: &DomainNames, lookup: &Lookup, stop: &(Mutex<bool>, Condvar)) {
    let mut schedule: HashMap<String, Schedule> = HashMap::new();
    loop {
        let now = Instant::now();
        for name in names.wanted() {
            let entry = schedule.entry(name.clone()).or_insert(Schedule {
                due: now,
                wait: BASE_REFRESH,
            });
            if entry.due > now {
                continue;
            }
            let changed = names.set_addresses(&name, &lookup.resolve(&name));
            entry.wait = if changed {
                BASE_REFRESH
            } else {
                (entry.wait * 2).min(MAX_REFRESH)
            };
            entry.due = Instant::now() + entry.wait;
        }
        let (flag, wake) = stop;
        let guard = flag.lock().unwrap_or_else(PoisonError::into_inner);
        if *guard {
            return;
        }
        let (guard, _) = wake
            .wait_timeout(guard, TICK)
            .unwrap_or_else(PoisonError::into_inner);
        if *guard {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_files_are_read_as_etc_hosts() {
        let text = "127.0.0.1 localhost\n# 10.9.9.9 api.example.com\n\
                    10.0.0.1  API.example.com api # the server\n\
                    2001:db8::1 api.example.com\nnot-an-ip api.example.com\n";
        let ips = hosts_lookup(text, "api.example.com");
        assert_eq!(
            ips,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "2001:db8::1".parse().unwrap()
            ]
        );
        assert!(hosts_lookup(text, "db.example.com").is_empty());
    }

    /// Rule sets the cli loads (at start and at every reload) add their
    /// names to the one table the resolver thread reads.
    #[test]
    fn loaded_rules_add_their_names_to_the_shared_table() {
        let rules = "- list: miner_domains\n  items: [pool.example.org]\n\
                     - rule: to_miner\n  desc: d\n  condition: evt.type = connect and \
                     (fd.sip.name in (miner_domains) or fd.rip.name = api.example.net)\n  \
                     output: o\n  priority: WARNING\n";
        let ruleset = crate::ruleset::load(
            &[crate::ruleset::RulesInput::Text {
                name: "dns.yaml".into(),
                text: rules.into(),
            }],
            None,
        );
        assert!(!ruleset.has_errors());
        let wanted = shared_names().wanted();
        for name in ["pool.example.org", "api.example.net"] {
            assert!(wanted.iter().any(|w| w == name), "{name} not in {wanted:?}");
        }
    }

    /// The names rules want are resolved in the background, and a change
    /// of the hosts file shows at the next refresh (not waited for here:
    /// the first resolution of a name added later is).
    #[test]
    fn wanted_names_are_resolved_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = dir.path().join("hosts");
        std::fs::write(
            &hosts,
            "10.0.0.1 api.example.com\n10.0.0.2 db.example.com\n",
        )
        .unwrap();
        let names = DomainNames::new();
        names.want("api.example.com");
        let resolver = Resolver::start(names.clone(), Lookup::HostsFile(hosts.clone())).unwrap();
        let wait_for = |ip: &str, want: Option<&str>| {
            let ip: IpAddr = ip.parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while names.name_of(ip).as_deref() != want {
                assert!(Instant::now() < deadline, "{ip}: {:?}", names.name_of(ip));
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        wait_for("10.0.0.1", Some("api.example.com"));
        // Not wanted by any rule: never shown.
        assert_eq!(names.name_of("10.0.0.2".parse().unwrap()), None);
        // A name wanted later (a reloaded rule) is picked up.
        names.want("db.example.com");
        wait_for("10.0.0.2", Some("db.example.com"));
        drop(resolver);
    }
}
