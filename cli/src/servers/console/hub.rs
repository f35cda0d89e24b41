//! What the console shows, kept in bounded memory: the last alerts (as
//! the frames the live stream sends), counts by priority, rule, source,
//! tag and container image, a per-minute timeline of the last hour, and
//! the loaded rules. Fed by the console output channel, on that
//! channel's thread; read by the webserver.
//!
//! Publishing never waits for a browser, and never wakes one: the
//! frames stay in the ring, each live client reads on from where it is,
//! and a pulse thread wakes the clients waiting for more at most every
//! [`PULSE`] (so a storm costs one wake per client per pulse, not one per
//! alert). A client that falls a whole ring behind is told so and
//! dropped (see `stream.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::Waker;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::body::Bytes;
use serde_json::{json, Map, Value as Json};

use crate::alert::{Priority, RenderedAlert};
use crate::ruleset::Ruleset;

/// Alerts sent to a browser that connects (the list it shows).
pub const BACKLOG_ALERTS: usize = 1000;
/// Alerts kept: how far a live client may fall behind before it is
/// dropped. Frames are shared, so this bounds the console's memory.
pub const RING_ALERTS: usize = 4096;
/// How often waiting clients are woken when alerts came.
pub const PULSE: Duration = Duration::from_millis(20);
/// Bytes of frames a client is handed at once.
const BATCH_BYTES: usize = 64 * 1024;
/// Distinct values counted per dimension; the rest count as "(other)".
pub const MAX_DISTINCT: usize = 1000;
/// Minutes of timeline kept.
pub const TIMELINE_MINUTES: usize = 60;

const PRIORITIES: [Priority; 8] = [
    Priority::Emergency,
    Priority::Alert,
    Priority::Critical,
    Priority::Error,
    Priority::Warning,
    Priority::Notice,
    Priority::Informational,
    Priority::Debug,
];

/// The output fields that name a container image, most precise first.
const IMAGE_FIELDS: [&str; 2] = ["container.image.repository", "container.image"];

/// Counts by value, bounded in the number of values kept.
#[derive(Debug, Default)]
struct Counts(BTreeMap<String, u64>);

impl Counts {
    fn add(&mut self, key: &str) {
        if let Some(count) = self.0.get_mut(key) {
            *count += 1;
        } else if self.0.len() < MAX_DISTINCT {
            self.0.insert(key.to_string(), 1);
        } else {
            *self.0.entry("(other)".to_string()).or_default() += 1;
        }
    }

    fn to_json(&self) -> Json {
        Json::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), Json::from(*v)))
                .collect(),
        )
    }
}

/// One minute of the timeline: alerts by priority.
#[derive(Debug, Clone, Copy, Default)]
struct Minute {
    /// Minutes since the epoch.
    at: u64,
    by_priority: [u64; 8],
}

#[derive(Debug, Default)]
struct State {
    /// The id the next alert gets; ids start at 1.
    next_id: u64,
    /// Frames of the alerts `first_id..next_id`.
    ring: VecDeque<Bytes>,
    first_id: u64,
    /// Clients waiting for alerts past the end of the ring, by client.
    waiting: BTreeMap<u64, Waker>,
    /// `next_id` when the pulse last woke the waiting clients.
    pulsed: u64,
    next_client: u64,
    pulse_started: bool,
    total: u64,
    by_priority: Counts,
    by_rule: Counts,
    by_source: Counts,
    by_tag: Counts,
    by_image: Counts,
    timeline: VecDeque<Minute>,
    rules: Arc<Json>,
    reloads: u64,
}

/// The console's shared state. One per process ([`Hub::global`]): the
/// output channel and the webserver both outlive config reloads.
pub struct Hub {
    state: Mutex<State>,
    /// Live clients connected now.
    pub(super) clients: Arc<AtomicUsize>,
}

/// What a live client finds when it reads on.
pub enum Read {
    /// Frames, and the id to read from next.
    Frames(Bytes, u64),
    /// It fell this many alerts behind the ring.
    Behind(u64),
    /// Nothing new: it is woken when there is.
    Waiting,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn priority_index(priority: Priority) -> usize {
    PRIORITIES.iter().position(|p| *p == priority).unwrap_or(7)
}

/// The console's view of one alert, as the browser receives it, but for
/// `raw` (see [`frame`]).
fn alert_json(id: u64, rendered: &RenderedAlert) -> Json {
    let alert = &rendered.alert;
    let fields: Map<String, Json> = alert
        .output_fields
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().map_or(Json::Null, Json::String)))
        .collect();
    let field = |name: &str| {
        alert
            .output_fields
            .iter()
            .find(|(k, v)| k == name && v.as_deref().is_some_and(|v| !v.is_empty()))
            .and_then(|(_, v)| v.clone())
    };
    let image = IMAGE_FIELDS.iter().find_map(|f| field(f));
    let container = field("container.name").or_else(|| field("container.id"));
    json!({
        "id": id,
        "time": crate::alert::event_time(alert.time_ns).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "rule": alert.rule,
        "priority": alert.priority.as_str(),
        "source": alert.source,
        "tags": alert.tags,
        "hostname": alert.hostname,
        "output": alert.output,
        "container": container,
        "image": image,
        "pod": field("k8s.pod.name"),
        "fields": fields,
    })
}

/// The server-sent event of one alert: its view with `raw`, the JSON
/// the other outputs send, spliced in as it is rather than parsed again.
fn frame(id: u64, view: &Json, rendered: &RenderedAlert) -> Bytes {
    let view = view.to_string();
    let raw = rendered.json.trim();
    // One line: serde escapes newlines inside values.
    let data = match (
        view.strip_suffix('}'),
        raw.starts_with('{') && !raw.contains('\n'),
    ) {
        (Some(open), true) => format!("{open},\"raw\":{raw}}}"),
        _ => view,
    };
    Bytes::from(format!("id: {id}\nevent: alert\ndata: {data}\n\n"))
}

impl Hub {
    pub fn new() -> Hub {
        Hub {
            state: Mutex::new(State {
                next_id: 1,
                first_id: 1,
                pulsed: 1,
                ..State::default()
            }),
            clients: Arc::default(),
        }
    }

    /// The process's console.
    pub fn global() -> &'static Arc<Hub> {
        static HUB: OnceLock<Arc<Hub>> = OnceLock::new();
        HUB.get_or_init(|| Arc::new(Hub::new()))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one alert in: counted, kept, and sent to every live client.
    pub fn publish(&self, rendered: &RenderedAlert) {
        let now = now_secs();
        let mut state = self.state();
        let id = state.next_id;
        state.next_id += 1;
        let data = alert_json(id, rendered);
        let frame = frame(id, &data, rendered);
        let alert = &rendered.alert;
        state.total += 1;
        state.by_priority.add(alert.priority.as_str());
        state.by_rule.add(&alert.rule);
        state.by_source.add(&alert.source);
        for tag in &alert.tags {
            state.by_tag.add(tag);
        }
        if let Some(image) = data["image"].as_str() {
            state.by_image.add(image);
        }
        let minute = now / 60;
        if state.timeline.back().map(|m| m.at) != Some(minute) {
            state.timeline.push_back(Minute {
                at: minute,
                ..Minute::default()
            });
        }
        while state
            .timeline
            .front()
            .is_some_and(|m| m.at + (TIMELINE_MINUTES as u64) <= minute)
        {
            state.timeline.pop_front();
        }
        if let Some(last) = state.timeline.back_mut() {
            last.by_priority[priority_index(alert.priority)] += 1;
        }
        if state.ring.len() == RING_ALERTS {
            state.ring.pop_front();
            state.first_id += 1;
        }
        state.ring.push_back(frame);
    }

    /// A new live client: its id, and the id of the first alert it is
    /// sent (the last [`BACKLOG_ALERTS`] kept come first).
    pub fn subscribe(self: &Arc<Self>) -> (u64, u64) {
        let mut state = self.state();
        if !state.pulse_started {
            state.pulse_started = start_pulse(Arc::downgrade(self));
        }
        state.next_client += 1;
        let start = state
            .first_id
            .max(state.next_id.saturating_sub(BACKLOG_ALERTS as u64));
        (state.next_client, start)
    }

    /// Frames from alert `from` on, for client `client`; when there are
    /// none yet, `waker` is woken once there are.
    pub fn read(&self, client: u64, from: u64, waker: &Waker) -> Read {
        let mut state = self.state();
        if from < state.first_id {
            state.waiting.remove(&client);
            return Read::Behind(state.first_id - from);
        }
        let start = (from - state.first_id) as usize;
        if start >= state.ring.len() {
            match state.waiting.get_mut(&client) {
                Some(w) => w.clone_from(waker),
                None => {
                    state.waiting.insert(client, waker.clone());
                }
            }
            return Read::Waiting;
        }
        state.waiting.remove(&client);
        let mut batch = Vec::new();
        let mut next = from;
        for frame in state.ring.range(start..) {
            if !batch.is_empty() && batch.len() + frame.len() > BATCH_BYTES {
                break;
            }
            batch.extend_from_slice(frame);
            next += 1;
        }
        Read::Frames(Bytes::from(batch), next)
    }

    /// A client that went away.
    pub fn leave(&self, client: u64) {
        self.state().waiting.remove(&client);
    }

    /// Wakes the clients waiting, if alerts came since the last time.
    fn pulse(&self) {
        let wake = {
            let mut state = self.state();
            if state.pulsed == state.next_id || state.waiting.is_empty() {
                return;
            }
            state.pulsed = state.next_id;
            std::mem::take(&mut state.waiting)
        };
        for (_, waker) in wake {
            waker.wake();
        }
    }

    /// Counts and the timeline, for the filters and the chart.
    pub fn summary(&self) -> Json {
        let state = self.state();
        let now_minute = now_secs() / 60;
        // Every minute of the last hour, empty ones too, oldest first.
        let timeline: Vec<Json> = (0..TIMELINE_MINUTES as u64)
            .rev()
            .map(|ago| {
                let at = now_minute.saturating_sub(ago);
                let counts = state
                    .timeline
                    .iter()
                    .find(|m| m.at == at)
                    .map(|m| m.by_priority)
                    .unwrap_or_default();
                let by: Map<String, Json> = PRIORITIES
                    .iter()
                    .zip(counts)
                    .filter(|(_, n)| *n > 0)
                    .map(|(p, n)| (p.as_str().to_string(), Json::from(n)))
                    .collect();
                json!({"minute": at * 60, "by_priority": by})
            })
            .collect();
        json!({
            "total": state.total,
            "kept": state.ring.len().min(BACKLOG_ALERTS),
            "by_priority": state.by_priority.to_json(),
            "by_rule": state.by_rule.to_json(),
            "by_source": state.by_source.to_json(),
            "by_tag": state.by_tag.to_json(),
            "by_image": state.by_image.to_json(),
            "priorities": PRIORITIES.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            "timeline": timeline,
        })
    }

    /// Records the rules loaded now (at startup and at each reload).
    pub fn set_rules(&self, ruleset: &Ruleset) {
        super::tryout::set_rules(ruleset);
        let rules = rules_json(ruleset);
        let mut state = self.state();
        if !state.rules.is_null() {
            state.reloads += 1;
        }
        state.rules = Arc::new(rules);
    }

    /// The loaded rules with their fire counts, and the reloads so far.
    pub fn rules(&self) -> Json {
        let state = self.state();
        let mut rules = (*state.rules).clone();
        if let Some(list) = rules.get_mut("rules").and_then(Json::as_array_mut) {
            for rule in list {
                let fired = rule["name"]
                    .as_str()
                    .and_then(|name| state.by_rule.0.get(name))
                    .copied()
                    .unwrap_or(0);
                rule["fired"] = Json::from(fired);
            }
        }
        if let Json::Object(map) = &mut rules {
            map.insert("reloads".into(), Json::from(state.reloads));
        }
        rules
    }

    /// Alerts taken in since the start.
    pub fn total(&self) -> u64 {
        self.state().total
    }

    /// Live clients connected now.
    pub fn live_clients(&self) -> usize {
        self.clients.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// The thread that wakes waiting clients; it ends with the hub. Returns
/// whether it started (if not, the next client tries again).
fn start_pulse(hub: Weak<Hub>) -> bool {
    let started = std::thread::Builder::new()
        .name("console-pulse".into())
        .spawn(move || loop {
            std::thread::sleep(PULSE);
            match hub.upgrade() {
                Some(hub) => hub.pulse(),
                None => return,
            }
        });
    match started {
        Ok(_) => true,
        Err(e) => {
            crate::log::message(&format!(
                "console: cannot start its pulse thread ({e}); live alerts arrive with the \
                 15 s heartbeat"
            ));
            false
        }
    }
}

/// The rules as the console lists them: each with its condition as
/// written and with its macros expanded, and the load warnings.
fn rules_json(ruleset: &Ruleset) -> Json {
    let macros: BTreeMap<&str, &str> = ruleset
        .definitions
        .macros
        .iter()
        .map(|m| (m.name.as_str(), m.condition.as_str()))
        .collect();
    let rules: Vec<Json> = ruleset
        .rules()
        .map(|rule| {
            let condition = ruleset
                .definitions
                .rules
                .get(&rule.name)
                .map(|item| item.condition.as_str())
                .unwrap_or_default();
            json!({
                "name": rule.name,
                "description": rule.desc.trim(),
                "priority": rule.priority.as_str(),
                "source": rule.source,
                "tags": rule.tags,
                "enabled": rule.enabled,
                "condition": condition.trim(),
                "expanded": super::expand::expand_macros(condition, &macros),
            })
        })
        .collect();
    let warnings: Vec<String> = ruleset.warnings().map(|w| w.to_string()).collect();
    json!({"rules": rules, "warnings": warnings})
}
