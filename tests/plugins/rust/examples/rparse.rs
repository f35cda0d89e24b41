//! A parser of `rsource` events that keeps state in a table: a count per
//! word (an SDK table keyed by the word), updated as each event is parsed
//! and read back by its field `rparse.count`, so a rule sees how many times
//! the event's word has come so far, this event included.
//!
//! With init config `{"export": true}` the table is also registered with
//! the host (`add_table`), so other plugins could read it.

use std::ffi::{CStr, CString};

use falco_plugin::anyhow::{self, Error};
use falco_plugin::base::{Json, Plugin};
use falco_plugin::event::events::Event;
use falco_plugin::event::PluginEvent;
use falco_plugin::extract::{field, ExtractFieldInfo, ExtractPlugin, ExtractRequest};
use falco_plugin::parse::{EventInput, ParseInput, ParsePlugin};
use falco_plugin::tables::export;
use falco_plugin::tables::TablesInput;
use falco_plugin::{extract_plugin, parse_plugin, plugin};
use peregrine_test_plugins::Line;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Config {
    /// Register the table with the host.
    #[serde(default)]
    export: bool,
}

#[derive(export::Entry)]
struct WordCount {
    count: export::Public<u64>,
}

type Counts = export::Table<CString, WordCount>;

struct RParse {
    counts: Box<Counts>,
}

impl Plugin for RParse {
    const NAME: &'static CStr = c"rparse";
    const PLUGIN_VERSION: &'static CStr = c"0.2.0";
    const DESCRIPTION: &'static CStr = c"Rust SDK parser keeping a table, for Peregrine's tests";
    const CONTACT: &'static CStr = c"peregrine tests";
    type ConfigType = Json<Config>;

    fn new(input: Option<&TablesInput>, Json(config): Self::ConfigType) -> Result<Self, Error> {
        let table = Counts::new(c"rparse_word_counts")?;
        let counts = if config.export {
            let input = input.ok_or_else(|| anyhow::anyhow!("the host gave no tables input"))?;
            input.add_table(table)?
        } else {
            Box::new(table)
        };
        Ok(RParse { counts })
    }
}

fn word_of(line: &Line) -> Result<CString, Error> {
    let (_, word) = line
        .parts()
        .ok_or_else(|| anyhow::anyhow!("not an rsource payload"))?;
    Ok(CString::new(word)?)
}

impl ParsePlugin for RParse {
    type Event<'a> = Event<PluginEvent<Line<'a>>>;

    fn parse_event(
        &mut self,
        event: &EventInput<Self::Event<'_>>,
        _parse_input: &ParseInput,
    ) -> anyhow::Result<()> {
        let event = event.event()?;
        let word = word_of(&event.params.event_data)?;
        let mut entry = match self.counts.lookup(word.as_c_str()) {
            Some(entry) => entry,
            None => {
                let entry = self.counts.create_entry()?;
                self.counts
                    .insert(word.as_c_str(), entry)
                    .ok_or_else(|| anyhow::anyhow!("cannot insert '{word:?}'"))?
            }
        };
        *entry.count += 1;
        Ok(())
    }
}

impl RParse {
    fn extract_count(&mut self, req: ExtractRequest<Self>) -> Result<u64, Error> {
        let event = req.event.event()?;
        let word = word_of(&event.params.event_data)?;
        Ok(self
            .counts
            .lookup(word.as_c_str())
            .map_or(0, |entry| *entry.count))
    }

    fn extract_words(&mut self, _req: ExtractRequest<Self>) -> Result<u64, Error> {
        Ok(self.counts.size() as u64)
    }
}

impl ExtractPlugin for RParse {
    type Event<'a> = Event<PluginEvent<Line<'a>>>;
    type ExtractContext = ();
    const EXTRACT_FIELDS: &'static [ExtractFieldInfo<Self>] = &[
        field("rparse.count", &Self::extract_count)
            .with_description("how many events had this event's word, this one included"),
        field("rparse.words", &Self::extract_words).with_description("distinct words seen"),
    ];
}

plugin!(RParse);
parse_plugin!(RParse);
extract_plugin!(RParse);
