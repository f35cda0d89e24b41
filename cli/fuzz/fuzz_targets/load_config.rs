//! Any falco.yaml-shaped text, with any `-o key=value` overrides, must load
//! to a config or to an error naming the key, never a panic. The input is
//! the config text, then optional override lines after a line "---o".
//! Run: `cargo +nightly fuzz run load_config` from cli/ (seeds: the kit's
//! config files).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use peregrine::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    let (text, overrides) = input.split_once("\n---o\n").unwrap_or((input, ""));
    let overrides: Vec<String> = overrides.lines().map(str::to_owned).collect();
    let _ = Config::from_text(text, Path::new("fuzzed.yaml"), &overrides);
});
