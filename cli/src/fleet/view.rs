//! What `peregrine fleet` knows of each node: its counts, when it was last
//! heard of and how late its alerts arrive.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use serde_json::{json, Value as Json};

use super::seen::Seen;
use crate::sources::drops::DROP_RULE;

/// What one node sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NodeView {
    pub alerts: u64,
    /// Drop reports (Falco's "syscall event drop" alerts) and the events
    /// they say were dropped.
    pub drop_reports: u64,
    pub dropped_events: u64,
    /// The newest alert's own time, as the node wrote it.
    pub last_alert_time: String,
    /// When this `fleet` last received anything from the node.
    pub last_heard: Option<SystemTime>,
    /// How long the node's latest alerts took from their event to here.
    pub latency: LatencyWindow,
}

/// The delivery latencies of a node's most recent alerts (event time to
/// arrival here), a fixed number of them so that memory does not grow with
/// the stream. They compare two clocks: meaningful when the nodes keep
/// time (NTP), as the alerts' own times already assume.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LatencyWindow {
    micros: Vec<u64>,
    next: usize,
}

impl LatencyWindow {
    const SIZE: usize = 4096;

    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        if self.micros.len() < Self::SIZE {
            self.micros.push(micros);
        } else {
            self.micros[self.next] = micros;
        }
        self.next = (self.next + 1) % Self::SIZE;
    }

    /// The `q` quantile (0.0 to 1.0) of the window, nearest rank.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.micros.is_empty() {
            return None;
        }
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        Some(Duration::from_micros(sorted[rank - 1]))
    }
}

fn millis(latency: Option<Duration>) -> Json {
    latency.map_or(Json::Null, |d| json!(d.as_secs_f64() * 1e3))
}

fn millis_text(latency: Option<Duration>) -> String {
    latency.map_or_else(
        || "-".to_string(),
        |d| format!("{:.1}", d.as_secs_f64() * 1e3),
    )
}

/// Every node's view, and the ids seen (in bounded memory, see
/// [`Seen`]), to count what came twice.
#[derive(Debug, Default)]
pub struct FleetView {
    pub nodes: BTreeMap<String, NodeView>,
    pub messages: u64,
    pub duplicates: u64,
    ids: Seen,
    /// Messages with an id seen for the first time.
    unique: u64,
    /// The newest alerts of every node, newest first, at most
    /// `latest_cap` of them (none unless asked for: only the served view
    /// shows them).
    latest: VecDeque<LatestAlert>,
    latest_cap: usize,
}

/// Most alerts the served view may keep, whatever `--latest` asks.
pub const LATEST_MAX: usize = 10_000;

/// Bytes of an alert's text kept for the latest alerts: with the count
/// capped too, what they hold is bounded however large the alerts are.
const TEXT_KEPT: usize = 2048;
const NAME_KEPT: usize = 256;

/// One of the latest alerts, as the fleet page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestAlert {
    pub node: String,
    pub time: String,
    pub priority: String,
    pub rule: String,
    pub source: String,
    pub output: String,
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn clipped(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

impl FleetView {
    /// A view that also keeps the `latest` newest alerts (at most
    /// [`LATEST_MAX`]).
    pub fn keeping_latest(latest: usize) -> FleetView {
        FleetView {
            latest_cap: latest.min(LATEST_MAX),
            ..FleetView::default()
        }
    }

    /// Takes one message of the stream: its `Nats-Msg-Id` and its payload
    /// (an alert in Falco's JSON).
    pub fn take(&mut self, id: Option<&str>, payload: &[u8], now: SystemTime) {
        self.messages += 1;
        if let Some(id) = id {
            if !self.ids.insert(id) {
                self.duplicates += 1;
                return;
            }
            self.unique += 1;
        }
        let alert: Json = serde_json::from_slice(payload).unwrap_or(Json::Null);
        let node = alert["hostname"]
            .as_str()
            .unwrap_or("<unknown>")
            .to_string();
        if self.latest_cap > 0 {
            if self.latest.len() >= self.latest_cap {
                self.latest.pop_back();
            }
            let text = |key: &str, max: usize| clipped(alert[key].as_str().unwrap_or(""), max);
            self.latest.push_front(LatestAlert {
                node: clipped(&node, NAME_KEPT),
                time: text("time", NAME_KEPT),
                priority: text("priority", NAME_KEPT),
                rule: text("rule", NAME_KEPT),
                source: text("source", NAME_KEPT),
                output: text("output", TEXT_KEPT),
            });
        }
        let view = self.nodes.entry(node).or_default();
        view.alerts += 1;
        view.last_heard = Some(now);
        if let Some(time) = alert["time"].as_str() {
            view.last_alert_time = time.to_string();
            // An alert stamped later than its arrival (a node's clock
            // ahead) counts as no latency rather than none at all.
            if let Ok(at) = chrono::DateTime::parse_from_rfc3339(time) {
                let at = SystemTime::from(at);
                view.latency
                    .record(now.duration_since(at).unwrap_or_default());
            }
        }
        if alert["rule"].as_str() == Some(DROP_RULE) {
            view.drop_reports += 1;
            let dropped = &alert["output_fields"]["n_drops"];
            view.dropped_events += dropped
                .as_u64()
                .or_else(|| dropped.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(0);
        }
    }

    /// The latest alerts kept, newest first.
    pub fn latest(&self) -> impl Iterator<Item = &LatestAlert> {
        self.latest.iter()
    }

    pub fn latest_json(&self) -> Json {
        self.latest
            .iter()
            .map(|a| {
                json!({
                    "node": a.node,
                    "time": a.time,
                    "priority": a.priority,
                    "rule": a.rule,
                    "source": a.source,
                    "output": a.output,
                })
            })
            .collect()
    }

    pub fn unique(&self) -> u64 {
        self.unique
    }

    /// The node table, one line a node; `quiet` marks nodes not heard of
    /// for longer than `quiet_after`.
    pub fn table(&self, now: SystemTime, quiet_after: Duration) -> String {
        let mut out = format!(
            "{:<24} {:>8} {:>6} {:>10} {:>9} {:>9} {:<32} {:>8}\n",
            "node", "alerts", "drops", "dropped", "p50 ms", "p99 ms", "last alert", "silent"
        );
        for (node, view) in &self.nodes {
            let silent = view
                .last_heard
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            let flag = if silent > quiet_after { "  QUIET" } else { "" };
            out.push_str(&format!(
                "{:<24} {:>8} {:>6} {:>10} {:>9} {:>9} {:<32} {:>7}s{flag}\n",
                node,
                view.alerts,
                view.drop_reports,
                view.dropped_events,
                millis_text(view.latency.quantile(0.5)),
                millis_text(view.latency.quantile(0.99)),
                view.last_alert_time,
                silent.as_secs()
            ));
        }
        out
    }

    pub fn summary(&self, now: SystemTime, quiet_after: Duration) -> Json {
        let nodes: serde_json::Map<String, Json> = self
            .nodes
            .iter()
            .map(|(node, view)| {
                let silent = view
                    .last_heard
                    .and_then(|t| now.duration_since(t).ok())
                    .unwrap_or_default();
                (
                    node.clone(),
                    json!({
                        "alerts": view.alerts,
                        "drop_reports": view.drop_reports,
                        "dropped_events": view.dropped_events,
                        "last_alert_time": view.last_alert_time,
                        "latency_p50_ms": millis(view.latency.quantile(0.5)),
                        "latency_p99_ms": millis(view.latency.quantile(0.99)),
                        "last_heard": view.last_heard.map(|t| {
                            chrono::DateTime::<chrono::Utc>::from(t)
                                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                        }),
                        "silent_s": silent.as_secs(),
                        "quiet": silent > quiet_after,
                    }),
                )
            })
            .collect();
        json!({
            "messages": self.messages,
            "unique": self.unique(),
            "duplicates": self.duplicates,
            "nodes": nodes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles_come_from_the_latest_alerts_only() {
        let mut view = FleetView::default();
        let sent = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_756_000);
        let alert = format!(
            r#"{{"hostname":"a","rule":"r","time":"{}"}}"#,
            chrono::DateTime::<chrono::Utc>::from(sent).to_rfc3339()
        );
        for i in 1..=100u64 {
            let id = format!("a:1:{i}");
            view.take(Some(&id), alert.as_bytes(), sent + Duration::from_millis(i));
        }
        let window = &view.nodes["a"].latency;
        assert_eq!(window.quantile(0.5), Some(Duration::from_millis(50)));
        assert_eq!(window.quantile(0.99), Some(Duration::from_millis(99)));
        // Older samples leave the window as new ones come.
        let mut window = LatencyWindow::default();
        for _ in 0..LatencyWindow::SIZE {
            window.record(Duration::from_secs(9));
        }
        for _ in 0..LatencyWindow::SIZE {
            window.record(Duration::from_millis(1));
        }
        assert_eq!(window.quantile(0.99), Some(Duration::from_millis(1)));
    }

    #[test]
    fn nodes_are_counted_once_per_id_with_their_drop_reports() {
        let mut view = FleetView::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let alert = |host: &str, rule: &str| {
            format!(
                r#"{{"hostname":"{host}","rule":"{rule}","time":"2026-12-03T10:00:00.000000000Z","output_fields":{{"n_drops":"7"}}}}"#
            )
        };
        view.take(Some("a:1:1"), alert("a", "Write below etc").as_bytes(), t0);
        view.take(Some("a:1:1"), alert("a", "Write below etc").as_bytes(), t0);
        view.take(Some("a:1:2"), alert("a", DROP_RULE).as_bytes(), t0);
        view.take(
            Some("b:9:1"),
            alert("b", "x").as_bytes(),
            t0 + Duration::from_secs(100),
        );
        assert_eq!(view.messages, 4);
        assert_eq!(view.duplicates, 1);
        assert_eq!(view.unique(), 3);
        assert_eq!(view.nodes["a"].alerts, 2);
        assert_eq!(view.nodes["a"].drop_reports, 1);
        assert_eq!(view.nodes["a"].dropped_events, 7);
        let summary = view.summary(t0 + Duration::from_secs(120), Duration::from_secs(60));
        assert_eq!(summary["nodes"]["a"]["quiet"], true);
        assert_eq!(summary["nodes"]["b"]["quiet"], false);
        // Alerts stamped 2026-12-03T10:00:00Z arriving at t0 (1970) are
        // from the future: no latency, not a negative one.
        assert_eq!(summary["nodes"]["a"]["latency_p50_ms"], 0.0);
        assert!(view
            .table(t0 + Duration::from_secs(120), Duration::from_secs(60))
            .lines()
            .any(|l| l.starts_with("a ") && l.ends_with("QUIET")));
    }

    #[test]
    fn the_latest_alerts_are_bounded_in_number_and_size() {
        let mut view = FleetView::keeping_latest(3);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let long = "é".repeat(5000);
        for i in 0..5 {
            let alert = json!({
                "hostname": format!("n{}", i % 2),
                "rule": format!("r{i}"),
                "priority": "Warning",
                "output": if i == 4 { long.clone() } else { format!("o{i}") },
            });
            view.take(Some(&format!("x:1:{i}")), alert.to_string().as_bytes(), t0);
        }
        // A duplicate is not listed again.
        view.take(Some("x:1:4"), b"{}", t0);
        let rules: Vec<&str> = view.latest().map(|a| a.rule.as_str()).collect();
        assert_eq!(rules, ["r4", "r3", "r2"]);
        let newest = view.latest().next().unwrap();
        assert_eq!(newest.node, "n0");
        assert!(newest.output.len() <= TEXT_KEPT + '…'.len_utf8());
        assert!(newest.output.ends_with('…'));
        assert_eq!(view.latest_json()[1]["output"], "o3");
        // Without asking, nothing is kept.
        let mut plain = FleetView::default();
        plain.take(None, b"{\"hostname\":\"a\"}", t0);
        assert_eq!(plain.latest().count(), 0);
        assert_eq!(FleetView::keeping_latest(usize::MAX).latest_cap, LATEST_MAX);
    }
}
