//! An extractor on `rsource` events that reads another plugin's table:
//! at init it imports `rparse_word_counts` (which `rparse` registers with
//! `{"export": true}`) through the host, and its field `rcount.count` reads
//! the event's word's count from it, entry and field through the host's
//! table API, never from rparse's memory.

use std::ffi::{CStr, CString};
use std::sync::Arc;

use falco_plugin::anyhow::{self, Error};
use falco_plugin::base::Plugin;
use falco_plugin::event::events::Event;
use falco_plugin::event::PluginEvent;
use falco_plugin::extract::{field, ExtractFieldInfo, ExtractPlugin, ExtractRequest};
use falco_plugin::tables::import::{Entry, Field, Table, TableMetadata};
use falco_plugin::tables::TablesInput;
use falco_plugin::{extract_plugin, plugin};
use peregrine_test_plugins::Line;

type WordCount = Entry<Arc<WordCountMetadata>>;
type WordCounts = Table<CString, WordCount>;

#[derive(TableMetadata)]
#[entry_type(WordCount)]
struct WordCountMetadata {
    count: Field<u64, WordCount>,
}

struct RCount {
    counts: WordCounts,
}

impl Plugin for RCount {
    const NAME: &'static CStr = c"rcount";
    const PLUGIN_VERSION: &'static CStr = c"0.2.0";
    const DESCRIPTION: &'static CStr =
        c"Rust SDK reader of another plugin's table, for Peregrine's tests";
    const CONTACT: &'static CStr = c"peregrine tests";
    type ConfigType = ();

    fn new(input: Option<&TablesInput>, _config: ()) -> Result<Self, Error> {
        let input = input.ok_or_else(|| anyhow::anyhow!("the host gave no tables input"))?;
        let counts: WordCounts = input.get_table(c"rparse_word_counts")?;
        Ok(RCount { counts })
    }
}

impl RCount {
    fn extract_count(&mut self, req: ExtractRequest<Self>) -> Result<u64, Error> {
        let event = req.event.event()?;
        let (_, word) = event
            .params
            .event_data
            .parts()
            .ok_or_else(|| anyhow::anyhow!("not an rsource payload"))?;
        let entry = self
            .counts
            .get_entry(req.table_reader, &CString::new(word)?)?;
        entry.get_count(req.table_reader)
    }
}

impl ExtractPlugin for RCount {
    type Event<'a> = Event<PluginEvent<Line<'a>>>;
    type ExtractContext = ();
    const EXTRACT_FIELDS: &'static [ExtractFieldInfo<Self>] =
        &[field("rcount.count", &Self::extract_count)
            .with_description("the event's word's count, read from rparse's table")];
}

plugin!(RCount);
extract_plugin!(RCount);
