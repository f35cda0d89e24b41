//! A source plugin: `rsource` events numbered from 1 to the init config's
//! `count`, each carrying a word, then the end of the stream. Its fields
//! read the event back; `rsource.char[i]` takes an index argument. Its
//! metrics count what it sent, as a counter, a signed gauge and a double.

use std::ffi::{CStr, CString};

use falco_plugin::anyhow::{self, Error};
use falco_plugin::base::{Json, Metric, MetricLabel, MetricType, MetricValue, Plugin};
use falco_plugin::event::events::Event;
use falco_plugin::event::PluginEvent;
use falco_plugin::extract::{field, ExtractFieldInfo, ExtractPlugin, ExtractRequest};
use falco_plugin::source::{EventBatch, EventInput, SourcePlugin, SourcePluginInstance};
use falco_plugin::tables::TablesInput;
use falco_plugin::{extract_plugin, plugin, source_plugin, FailureReason};
use peregrine_test_plugins::{Line, RSOURCE_ID, WORDS};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Config {
    /// How many events the stream has.
    count: u64,
    /// A pause before each batch, in milliseconds, so that a stream lasts
    /// long enough for async events to join it.
    #[serde(default)]
    pause_ms: u64,
}

struct RSource {
    count: u64,
    pause: std::time::Duration,
    sent: u64,
}

impl Plugin for RSource {
    const NAME: &'static CStr = c"rsource";
    const PLUGIN_VERSION: &'static CStr = c"0.2.0";
    const DESCRIPTION: &'static CStr = c"Rust SDK source plugin for Peregrine's tests";
    const CONTACT: &'static CStr = c"peregrine tests";
    type ConfigType = Json<Config>;

    fn new(_input: Option<&TablesInput>, Json(config): Self::ConfigType) -> Result<Self, Error> {
        Ok(RSource {
            count: config.count,
            pause: std::time::Duration::from_millis(config.pause_ms),
            sent: 0,
        })
    }

    fn get_metrics(&mut self) -> impl IntoIterator<Item = Metric> {
        let left = self.count.saturating_sub(self.sent);
        [
            Metric::new(
                MetricLabel::new(c"events_sent", MetricType::Monotonic),
                MetricValue::U64(self.sent),
            ),
            Metric::new(
                MetricLabel::new(c"lag", MetricType::NonMonotonic),
                MetricValue::I64(-(left as i64)),
            ),
            Metric::new(
                MetricLabel::new(c"share_sent", MetricType::NonMonotonic),
                MetricValue::Double(self.sent as f64 / self.count.max(1) as f64),
            ),
        ]
    }
}

struct Instance {
    next: u64,
}

impl SourcePluginInstance for Instance {
    type Plugin = RSource;

    fn next_batch(&mut self, plugin: &mut RSource, batch: &mut EventBatch) -> Result<(), Error> {
        if self.next > plugin.count {
            return Err(
                anyhow::anyhow!("all {} events sent", plugin.count).context(FailureReason::Eof)
            );
        }
        std::thread::sleep(plugin.pause);
        // A few events per batch, so a stream spans several batches.
        for _ in 0..3 {
            if self.next > plugin.count {
                break;
            }
            let word = WORDS[((self.next - 1) % WORDS.len() as u64) as usize];
            let text = format!("{} {word}", self.next);
            batch.add(Event {
                metadata: Default::default(),
                params: PluginEvent {
                    plugin_id: RSOURCE_ID,
                    event_data: Line(text.as_bytes()),
                },
            })?;
            self.next += 1;
            plugin.sent += 1;
        }
        Ok(())
    }
}

impl SourcePlugin for RSource {
    type Instance = Instance;
    const EVENT_SOURCE: &'static CStr = c"rsource";
    const PLUGIN_ID: u32 = RSOURCE_ID;
    type Event<'a> = Event<PluginEvent<Line<'a>>>;

    fn open(&mut self, _params: Option<&str>) -> Result<Instance, Error> {
        Ok(Instance { next: 1 })
    }

    fn event_to_string(&mut self, event: &EventInput<Self::Event<'_>>) -> Result<CString, Error> {
        let event = event.event()?;
        let (n, word) = event.params.event_data.parts().unwrap_or_default();
        Ok(CString::new(format!("rsource #{n} says {word}"))?)
    }
}

impl RSource {
    fn line<'a>(req: &ExtractRequest<'_, '_, 'a, '_, Self>) -> Result<(u64, String), Error> {
        let event = req.event.event()?;
        let (n, word) = event
            .params
            .event_data
            .parts()
            .ok_or_else(|| anyhow::anyhow!("not an rsource payload"))?;
        Ok((n, word.to_string()))
    }

    fn extract_n(&mut self, req: ExtractRequest<Self>) -> Result<u64, Error> {
        Ok(Self::line(&req)?.0)
    }

    fn extract_word(&mut self, req: ExtractRequest<Self>) -> Result<CString, Error> {
        Ok(CString::new(Self::line(&req)?.1)?)
    }

    fn extract_odd(&mut self, req: ExtractRequest<Self>) -> Result<bool, Error> {
        Ok(Self::line(&req)?.0 % 2 == 1)
    }

    fn extract_char(&mut self, req: ExtractRequest<Self>, index: u64) -> Result<CString, Error> {
        let word = Self::line(&req)?.1;
        let c = word
            .chars()
            .nth(index as usize)
            .ok_or_else(|| anyhow::anyhow!("index {index} beyond '{word}'"))?;
        Ok(CString::new(c.to_string())?)
    }
}

impl ExtractPlugin for RSource {
    type Event<'a> = Event<PluginEvent<Line<'a>>>;
    type ExtractContext = ();
    const EXTRACT_FIELDS: &'static [ExtractFieldInfo<Self>] = &[
        field("rsource.n", &Self::extract_n).with_description("the event's number"),
        field("rsource.word", &Self::extract_word).with_description("the event's word"),
        field("rsource.odd", &Self::extract_odd).with_description("whether the number is odd"),
        field("rsource.char", &Self::extract_char).with_description("the word's i-th letter"),
    ];
}

plugin!(RSource);
source_plugin!(RSource);
extract_plugin!(RSource);
