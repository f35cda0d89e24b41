//! `cargo run -p peregrine-tests --bin conformance -- SPEC.yaml [CASE...]`
//!
//! Runs every case of a Falco regression spec file (or the named ones)
//! against the `peregrine` binary and prints one line per case.

use std::path::PathBuf;
use std::process::ExitCode;

use peregrine_tests::conformance::{load_spec, run_case, Layout};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(spec) = args.next().map(PathBuf::from) else {
        eprintln!("usage: conformance SPEC.yaml [CASE...]");
        return ExitCode::from(2);
    };
    let only: Vec<String> = args.collect();
    let cases = match load_spec(&spec) {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let binary = match peregrine_tests::peregrine_binary() {
        Ok(binary) => binary,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::from(2);
        }
    };
    let layout = Layout::kit(&spec);
    let scratch = std::env::temp_dir();
    let (mut passed, mut failed) = (0, 0);
    for case in cases
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.name))
    {
        let outcome = run_case(&binary, &layout, case, &scratch);
        if outcome.passed() {
            passed += 1;
            println!("PASS {}", outcome.name);
        } else {
            failed += 1;
            println!("FAIL {}: {}", outcome.name, outcome.failures.join("; "));
            if !only.is_empty() {
                println!("     {}", outcome.command);
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
