//! An async plugin: once the host hands it a handler, a thread of its own
//! pushes `count` async events named `rasync_tick` into the `rsource`
//! stream, their data an `rsource` payload (`"<n> tick"`). Its field
//! `rasync.n` reads the number back from such an event.

use std::ffi::{CStr, CString};
use std::time::Duration;

use falco_plugin::anyhow::{self, Error};
use falco_plugin::async_event::{AsyncEventPlugin, AsyncHandler};
use falco_plugin::base::{Json, Plugin};
use falco_plugin::event::events::Event;
use falco_plugin::event::AsyncEvent;
use falco_plugin::extract::{field, ExtractFieldInfo, ExtractPlugin, ExtractRequest};
use falco_plugin::tables::TablesInput;
use falco_plugin::{async_event_plugin, extract_plugin, plugin};
use peregrine_test_plugins::{Line, Ticker, RSOURCE};

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Config {
    /// How many events to push.
    count: u64,
    /// The pause before each, in milliseconds.
    #[serde(default)]
    interval_ms: u64,
}

struct RAsync {
    count: u64,
    interval: Duration,
    ticker: Ticker,
}

impl Plugin for RAsync {
    const NAME: &'static CStr = c"rasync";
    const PLUGIN_VERSION: &'static CStr = c"0.2.0";
    const DESCRIPTION: &'static CStr = c"Rust SDK async event plugin for Peregrine's tests";
    const CONTACT: &'static CStr = c"peregrine tests";
    type ConfigType = Json<Config>;

    fn new(_input: Option<&TablesInput>, Json(config): Self::ConfigType) -> Result<Self, Error> {
        Ok(RAsync {
            count: config.count,
            interval: Duration::from_millis(config.interval_ms),
            ticker: Ticker::default(),
        })
    }
}

impl AsyncEventPlugin for RAsync {
    const ASYNC_EVENTS: &'static [&'static str] = &["rasync_tick"];
    const EVENT_SOURCES: &'static [&'static str] = &[RSOURCE];

    fn start_async(&mut self, handler: AsyncHandler) -> Result<(), Error> {
        self.ticker
            .start(handler, self.count, self.interval, |handler, n| {
                let text = format!("{n} tick");
                let event = Event {
                    metadata: Default::default(),
                    params: AsyncEvent {
                        plugin_id: 0,
                        name: c"rasync_tick",
                        data: Line(text.as_bytes()),
                    },
                };
                handler.emit(event)
            })
    }

    fn stop_async(&mut self) -> Result<(), Error> {
        self.ticker.stop()
    }
}

impl RAsync {
    fn extract_n(&mut self, req: ExtractRequest<Self>) -> Result<u64, Error> {
        let event = req.event.event()?;
        let (n, _) = event
            .params
            .data
            .parts()
            .ok_or_else(|| anyhow::anyhow!("not an rasync payload"))?;
        Ok(n)
    }

    fn extract_name(&mut self, req: ExtractRequest<Self>) -> Result<CString, Error> {
        Ok(req.event.event()?.params.name.to_owned())
    }
}

impl ExtractPlugin for RAsync {
    type Event<'a> = Event<AsyncEvent<'a, Line<'a>>>;
    type ExtractContext = ();
    const EXTRACT_FIELDS: &'static [ExtractFieldInfo<Self>] = &[
        field("rasync.n", &Self::extract_n).with_description("the async event's number"),
        field("rasync.name", &Self::extract_name).with_description("the async event's name"),
    ];
}

plugin!(RAsync);
async_event_plugin!(RAsync);
extract_plugin!(RAsync);
