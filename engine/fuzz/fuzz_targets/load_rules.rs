//! Any text given to the rules loader, as one file or as an override of a
//! valid one, must load and compile to rules or to diagnostics, never a
//! panic. Run: `cargo +nightly fuzz run load_rules` from engine/ (seeds: the
//! default rules and the kit's rule files).
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::rules::RulesLoader;
use peregrine_engine::syscall_fields::SyscallFields;

/// A small valid file the fuzzed one can append to and override.
const BASE: &str = "\
- list: shells
  items: [sh, bash]
- macro: spawned
  condition: evt.type = execve and evt.dir = <
- rule: Shell
  desc: a shell
  condition: spawned and proc.name in (shells)
  output: shell %proc.name (%proc.cmdline)
  priority: WARNING
";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut alone = RulesLoader::new();
    alone.load_str("fuzzed.yaml", text);
    alone.compile(SyscallFields::new());
    alone.compile(K8sAuditSource::new());

    let mut layered = RulesLoader::new();
    layered.load_str("base.yaml", BASE);
    layered.load_str("fuzzed.yaml", text);
    layered.compile(SyscallFields::new());
});
