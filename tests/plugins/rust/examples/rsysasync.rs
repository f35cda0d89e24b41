//! An async plugin for the syscall source, as Falco's container plugin
//! sends its `container` events: a thread of its own pushes `count` async
//! events named `rsysasync_tick` into the `syscall` stream, without a time
//! (the host stamps them) and without a thread. Its field `rsysasync.n`
//! reads each event's number back.

use std::ffi::CStr;
use std::time::Duration;

use falco_plugin::anyhow::{self, Error};
use falco_plugin::async_event::{AsyncEventPlugin, AsyncHandler};
use falco_plugin::base::{Json, Plugin};
use falco_plugin::event::events::Event;
use falco_plugin::event::AsyncEvent;
use falco_plugin::extract::{field, ExtractFieldInfo, ExtractPlugin, ExtractRequest};
use falco_plugin::tables::TablesInput;
use falco_plugin::{async_event_plugin, extract_plugin, plugin};
use peregrine_test_plugins::Ticker;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Config {
    /// How many events to push.
    count: u64,
    /// The pause before each, in milliseconds.
    #[serde(default)]
    interval_ms: u64,
}

struct RSysAsync {
    count: u64,
    interval: Duration,
    ticker: Ticker,
}

impl Plugin for RSysAsync {
    const NAME: &'static CStr = c"rsysasync";
    const PLUGIN_VERSION: &'static CStr = c"0.1.0";
    const DESCRIPTION: &'static CStr =
        c"Rust SDK async events into the syscall source, for Peregrine's tests";
    const CONTACT: &'static CStr = c"peregrine tests";
    type ConfigType = Json<Config>;

    fn new(_input: Option<&TablesInput>, Json(config): Self::ConfigType) -> Result<Self, Error> {
        Ok(RSysAsync {
            count: config.count,
            interval: Duration::from_millis(config.interval_ms),
            ticker: Ticker::default(),
        })
    }
}

impl AsyncEventPlugin for RSysAsync {
    const ASYNC_EVENTS: &'static [&'static str] = &["rsysasync_tick"];
    const EVENT_SOURCES: &'static [&'static str] = &["syscall"];

    fn start_async(&mut self, handler: AsyncHandler) -> Result<(), Error> {
        self.ticker
            .start(handler, self.count, self.interval, |handler, n| {
                let data = n.to_le_bytes();
                // No time and no thread: the host stamps it.
                let event = Event {
                    metadata: Default::default(),
                    params: AsyncEvent {
                        plugin_id: 0,
                        name: c"rsysasync_tick",
                        data: &data[..],
                    },
                };
                handler.emit(event)
            })
    }

    fn stop_async(&mut self) -> Result<(), Error> {
        self.ticker.stop()
    }
}

impl RSysAsync {
    fn extract_n(&mut self, req: ExtractRequest<Self>) -> Result<u64, Error> {
        let event = req.event.event()?;
        let bytes: [u8; 8] = event
            .params
            .data
            .try_into()
            .map_err(|_| anyhow::anyhow!("not an rsysasync payload"))?;
        Ok(u64::from_le_bytes(bytes))
    }
}

impl ExtractPlugin for RSysAsync {
    type Event<'a> = Event<AsyncEvent<'a, &'a [u8]>>;
    type ExtractContext = ();
    const EXTRACT_FIELDS: &'static [ExtractFieldInfo<Self>] =
        &[field("rsysasync.n", &Self::extract_n).with_description("the async event's number")];
}

plugin!(RSysAsync);
async_event_plugin!(RSysAsync);
extract_plugin!(RSysAsync);
