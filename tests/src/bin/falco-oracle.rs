//! `falco-oracle`: Falco and Peregrine on the same inputs, diffed.
//!
//!     FALCO_BIN=/path/to/falco \
//!     FALCO_CONTAINER_PLUGIN=/path/to/libcontainer.so \
//!     cargo run -p peregrine-tests --bin falco-oracle -- [--mask FIELD]... [CASE...]
//!
//! (PEREGRINE_BIN=PATH compares that peregrine binary instead of this build's.)
//!
//! Runs, with both binaries, on the conformance kit (../shared/conformance):
//!   suite      every case of falco-regression/falco_tests.yaml, with the
//!              command line Falco's harness used (see conformance.rs);
//!   upstream   `-V` of each upstream rules file, and of the stable,
//!              incubating and sandbox files together;
//!   captures   those three files together on every capture of the kit;
//!   describe   `-L` and `-l RULE` in JSON: the upstream files, the rules
//!              files of tests/describe/ (exceptions, lists, macros and
//!              event types, transformers, append_output and static
//!              fields, plugins' sources, fields and async events with
//!              the Rust SDK test plugins), and the errors: `-l` of an
//!              unknown rule, a condition too deep to describe.
//! Each case prints `same` or `DIFF` with what differs (exit status, load
//! results by code/item/line/message, load codes, alerts by rule, priority,
//! source, tags, output fields and text, and the description with Falco's
//! unordered arrays compared as sets); a table of agreement ends it.
//! `--mask FIELD` leaves an output field (and the output text) out of the
//! comparison, for values known to differ for a stated reason.
//!
//! Falco is not part of this repository: build it elsewhere and give its
//! path. Without FALCO_BIN the tool says so in one line and exits 0.
//! Falco needs a configuration: the kit's upstream-config/falco.yaml (or
//! the case's own), with the container plugin added when given, since
//! current Falco's rules require it; Peregrine reads the same one. The
//! suite's flags that current Falco removed (`-e`, `-D`, `-T`, `-t`, `-A`)
//! reach Falco in their current spelling (see `current_falco_args`), and
//! Peregrine in that same spelling, the run compared with Falco. Peregrine
//! keeps the old flags with their 2023 meaning, so it runs the case's own
//! command line too: the case line says whether that run is the same, or
//! keeps the 2023 error for -D/-T with -t (not counted as a difference);
//! any other difference between its two runs is one. Exit status: 0 when
//! every compared case agrees, 1 otherwise.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use peregrine_tests::conformance::{
    case_args, load_spec, output_files, prepare_output_files, Case, Layout,
};
use peregrine_tests::oracle::{
    current_falco_args, differences, legacy_verdict, observe, removed_flags, FalcoSetup, Legacy,
    MIXED_SELECTION_ERROR,
};

struct Run {
    group: &'static str,
    name: String,
    args: Vec<String>,
    /// The configuration the case gives (`-c`), used as Falco's base.
    conf: Option<PathBuf>,
    /// Files the case's file or program output writes (their folder must exist).
    outputs: Vec<PathBuf>,
    /// Why the case is not compared, when it cannot be.
    not_compared: Option<String>,
    /// Text both runs' last lines of stderr must hold (an error's words).
    stderr_has: Option<String>,
}

impl Run {
    fn new(group: &'static str, name: impl Into<String>, args: Vec<String>) -> Run {
        Run {
            group,
            name: name.into(),
            args,
            conf: None,
            outputs: Vec::new(),
            not_compared: None,
            stderr_has: None,
        }
    }
}

fn main() -> ExitCode {
    let mut masked = Vec::new();
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mask" => match args.next() {
                Some(field) => masked.push(field),
                None => return usage("--mask needs a field name"),
            },
            "-h" | "--help" => return usage(""),
            _ => only.push(arg),
        }
    }
    let Some(falco) = std::env::var_os("FALCO_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
    else {
        println!("falco-oracle: skipped: FALCO_BIN is not set (the path of a Falco binary built outside the repository)");
        return ExitCode::SUCCESS;
    };
    if !falco.is_file() {
        eprintln!("falco-oracle: FALCO_BIN={} is not a file", falco.display());
        return ExitCode::from(2);
    }
    let container_plugin = std::env::var_os("FALCO_CONTAINER_PLUGIN").map(PathBuf::from);
    if container_plugin.is_none() {
        println!("falco-oracle: note: FALCO_CONTAINER_PLUGIN is not set: current Falco's rules, which require the container plugin, will not load in Falco");
    }
    let Some(kit) = peregrine_tests::conformance_kit() else {
        println!("falco-oracle: skipped: ../shared/conformance is absent");
        return ExitCode::SUCCESS;
    };
    // PEREGRINE_BIN compares another build (e.g. a release one) than this one.
    let peregrine = match std::env::var_os("PEREGRINE_BIN").map(PathBuf::from) {
        Some(binary) => binary,
        None => match peregrine_tests::peregrine_binary() {
            Ok(binary) => binary,
            Err(e) => {
                eprintln!("falco-oracle: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let setup = FalcoSetup {
        binary: falco,
        container_plugin,
        base_config: kit.join("upstream-config/falco.yaml"),
    };
    let scratch = std::env::temp_dir().join(format!("falco-oracle-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        eprintln!("falco-oracle: cannot create {}: {e}", scratch.display());
        return ExitCode::from(2);
    }
    let runs = match plan(&kit, &scratch) {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("falco-oracle: {e}");
            return ExitCode::from(2);
        }
    };

    // group -> (cases, same, differ, not compared)
    let mut table: Vec<(&str, [usize; 4])> = Vec::new();
    for run in runs
        .iter()
        .filter(|r| only.is_empty() || only.contains(&r.name))
    {
        let row = match table.iter_mut().find(|(g, _)| *g == run.group) {
            Some(row) => &mut row.1,
            None => {
                table.push((run.group, [0; 4]));
                &mut table.last_mut().expect("just pushed").1
            }
        };
        row[0] += 1;
        if let Some(why) = &run.not_compared {
            row[3] += 1;
            println!("skip  {}/{}: {why}", run.group, run.name);
            continue;
        }
        let conf = match setup.config_for(run.conf.as_deref(), &scratch) {
            Ok(conf) => conf,
            Err(e) => {
                row[3] += 1;
                println!("skip  {}/{}: {e}", run.group, run.name);
                continue;
            }
        };
        // Falco's configuration replaces the case's own, which it includes.
        // Peregrine reads it too: with another configuration the two would
        // differ by it (upstream falco.yaml's `append_output` adds the
        // container plugin's suggested fields to every alert).
        let mut args = run.args.clone();
        match args.iter().position(|a| a == "-c") {
            Some(i) if i + 1 < args.len() => args[i + 1] = conf.display().to_string(),
            _ => args
                .splice(0..0, ["-c".to_string(), conf.display().to_string()])
                .for_each(drop),
        }
        // Falco gets the current spelling of the flags it removed, and so
        // does the Peregrine run compared with it: both then read the same
        // `-o` items (rules[] selection, replay). Peregrine keeps the old
        // flags with their 2023 meaning, so it also runs the suite's own
        // command line, judged against its own current-spelling run.
        let current_args = current_falco_args(&args);
        let legacy_args = (current_args != args).then_some(&args);
        prepare_output_files(&run.outputs);
        // Falco beside Peregrine: each is single-threaded on a replay. The
        // two Peregrine runs take turns, since Peregrine's webserver (which
        // Falco does not start on a replay) listens on one port.
        let (theirs, ours, ours_legacy) = std::thread::scope(|scope| {
            let falco = scope.spawn(|| observe(&setup.binary, &current_args, &scratch, &masked));
            let ours = observe(&peregrine, &current_args, &scratch, &masked);
            let legacy = legacy_args.map(|legacy| observe(&peregrine, legacy, &scratch, &masked));
            (falco.join().unwrap_or_default(), ours, legacy)
        });
        let mut diff = differences(&theirs, &ours);
        if let Some(words) = &run.stderr_has {
            for (who, seen) in [("falco", &theirs), ("peregrine", &ours)] {
                if !seen.stderr_tail.contains(words.as_str()) {
                    diff.push(format!(
                        "{who}'s stderr lacks {words:?}: {}",
                        seen.stderr_tail
                    ));
                }
            }
        }
        let legacy_note = match &ours_legacy {
            None => String::new(),
            Some(legacy) => {
                let flags = removed_flags(&args).join(" ");
                match legacy_verdict(&args, &ours, legacy) {
                    Legacy::Same => format!("; 2023 flags {flags}: the same"),
                    Legacy::Kept2023Error => format!(
                        "; 2023 flags {flags}: exit 1, \"{MIXED_SELECTION_ERROR}\", \
                         as the 2023 suite expects (not counted)"
                    ),
                    Legacy::Differs(lines) => {
                        diff.push(format!(
                            "peregrine with the 2023 flags {flags} differs from its run \
                             with their current spelling:"
                        ));
                        diff.extend(lines.into_iter().map(|l| format!("  {l}")));
                        String::new()
                    }
                }
            }
        };
        if diff.is_empty() {
            row[1] += 1;
            let described = ours
                .description
                .as_ref()
                .map(|d| {
                    let count = |key: &str| d[key].as_array().map_or(0, Vec::len);
                    format!(
                        ", described {} rules, {} macros, {} lists",
                        count("rules"),
                        count("macros"),
                        count("lists")
                    )
                })
                .unwrap_or_default();
            println!(
                "same  {}/{} (exit {}, {} alerts, {} load result lines{described}{legacy_note})",
                run.group,
                run.name,
                ours.exit_status,
                ours.alerts.len(),
                ours.load_results.len()
            );
        } else {
            row[2] += 1;
            println!("DIFF  {}/{}", run.group, run.name);
            for line in diff {
                println!("      {line}");
            }
            if !legacy_note.is_empty() {
                println!("      {}", legacy_note.trim_start_matches("; "));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);

    println!();
    println!("| group | cases | same | differ | not compared |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut total = [0; 4];
    for (group, row) in &table {
        println!(
            "| {group} | {} | {} | {} | {} |",
            row[0], row[1], row[2], row[3]
        );
        for (t, r) in total.iter_mut().zip(row) {
            *t += r;
        }
    }
    println!(
        "| all | {} | {} | {} | {} |",
        total[0], total[1], total[2], total[3]
    );
    if !masked.is_empty() {
        println!("masked output fields: {}", masked.join(", "));
    }
    if total[2] == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage(error: &str) -> ExitCode {
    if !error.is_empty() {
        eprintln!("falco-oracle: {error}");
    }
    eprintln!("usage: FALCO_BIN=PATH [FALCO_CONTAINER_PLUGIN=PATH] falco-oracle [--mask FIELD]... [CASE...]");
    ExitCode::from(2)
}

/// Every run, in the order printed; `scratch` takes the files made for
/// them.
fn plan(kit: &Path, scratch: &Path) -> Result<Vec<Run>, String> {
    let mut runs = Vec::new();
    let spec = kit.join("falco-regression/falco_tests.yaml");
    let layout = Layout::kit(&spec);
    let cases = load_spec(&spec).map_err(|e| e.to_string())?;
    for case in &cases {
        runs.push(suite_run(&layout, case));
    }

    let upstream = kit.join("upstream-rules");
    let syscall_files = [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ]
    .map(|f| upstream.join(f).display().to_string());
    let validate = |files: &[String]| {
        let mut args: Vec<String> = files
            .iter()
            .flat_map(|f| ["-V".to_string(), f.clone()])
            .collect();
        args.extend(["-o".into(), "json_output=true".into()]);
        args
    };
    for file in &syscall_files {
        runs.push(Run {
            group: "upstream",
            name: format!("-V {}", file_name(file)),
            args: validate(std::slice::from_ref(file)),
            conf: None,
            outputs: Vec::new(),
            not_compared: None,
            stderr_has: None,
        });
    }
    runs.push(Run {
        group: "upstream",
        name: "-V stable+incubating+sandbox".into(),
        args: validate(&syscall_files),
        conf: None,
        outputs: Vec::new(),
        not_compared: None,
        stderr_has: None,
    });
    runs.push(Run {
        group: "upstream",
        name: "-V k8s_audit_rules.yaml".into(),
        args: validate(&[upstream.join("k8s_audit_rules.yaml").display().to_string()]),
        conf: None,
        outputs: Vec::new(),
        not_compared: Some(
            "Falco reads k8s_audit through the k8saudit plugin, which is not built here".into(),
        ),
        stderr_has: None,
    });

    runs.extend(describe_runs(&syscall_files, scratch));

    let mut captures: Vec<PathBuf> = Vec::new();
    for dir in ["captures", "falco-regression/trace_files"] {
        if let Ok(entries) = std::fs::read_dir(kit.join(dir)) {
            captures.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "scap")),
            );
        }
    }
    captures.sort();
    for capture in captures {
        let mut args: Vec<String> = syscall_files
            .iter()
            .flat_map(|f| ["-r".to_string(), f.clone()])
            .collect();
        args.extend(
            [
                "-e",
                &capture.display().to_string(),
                "-o",
                "json_output=true",
                "-o",
                "priority=debug",
            ]
            .map(String::from),
        );
        runs.push(Run {
            group: "captures",
            name: file_name(&capture.display().to_string()),
            args,
            conf: None,
            outputs: Vec::new(),
            not_compared: None,
            stderr_has: None,
        });
    }
    Ok(runs)
}

/// The `describe` group: `-L` and `-l` in JSON.
fn describe_runs(upstream: &[String], scratch: &Path) -> Vec<Run> {
    let rules = |files: &[String]| -> Vec<String> {
        files
            .iter()
            .flat_map(|f| ["-r".to_string(), f.clone()])
            .chain(["-o".to_string(), "json_output=true".to_string()])
            .collect()
    };
    let with = |flags: &[&str], files: &[String]| -> Vec<String> {
        flags
            .iter()
            .map(|f| f.to_string())
            .chain(rules(files))
            .collect()
    };
    let stable = std::slice::from_ref(&upstream[0]);
    let mut runs = vec![
        Run::new("describe", "-L falco_rules.yaml", with(&["-L"], stable)),
        Run::new(
            "describe",
            "-L stable+incubating+sandbox",
            with(&["-L"], upstream),
        ),
        // Rule selection leaves `enabled` as the file says.
        Run::new(
            "describe",
            "-L falco_rules.yaml, every rule disabled by rules[]",
            with(&["-L", "-o", "rules[].disable.rule=*"], stable),
        ),
        Run::new(
            "describe",
            "-l 'Terminal shell in container'",
            with(&["-l", "Terminal shell in container"], stable),
        ),
        Run {
            stderr_has: Some("Rule \"No such rule\" is not loaded".into()),
            ..Run::new(
                "describe",
                "-l 'No such rule' (an error)",
                with(&["-l", "No such rule"], stable),
            )
        },
    ];
    let dir = peregrine_tests::repo_root().join("tests/describe");
    let fixture = |name: &str| vec![dir.join(name).display().to_string()];
    for name in ["lists_macros.yaml", "exceptions.yaml", "transformers.yaml"] {
        runs.push(Run::new(
            "describe",
            format!("-L {name}"),
            with(&["-L"], &fixture(name)),
        ));
    }
    runs.push(Run::new(
        "describe",
        "-l Exceptions (exceptions.yaml)",
        with(&["-l", "Exceptions"], &fixture("exceptions.yaml")),
    ));
    runs.push(Run {
        stderr_has: Some("exceeded max depth limit of 100".into()),
        ..Run::new(
            "describe",
            "-L too_deep.yaml (an error)",
            with(&["-L"], &fixture("too_deep.yaml")),
        )
    });
    runs.push(Run {
        conf: Some(dir.join("append_output.falco.yaml")),
        ..Run::new(
            "describe",
            "-L outputs.yaml (append_output, static fields)",
            with(&["-L"], &fixture("outputs.yaml")),
        )
    });
    let mut plugins = Run::new(
        "describe",
        "-L plugins.yaml (Rust SDK plugins)",
        with(&["-L"], &fixture("plugins.yaml")),
    );
    match plugins_config(scratch) {
        Ok(conf) => plugins.conf = Some(conf),
        Err(e) => plugins.not_compared = Some(e),
    }
    runs.push(plugins);
    runs
}

/// A configuration loading the Rust SDK test plugins (built here), for
/// Falco and Peregrine alike: a source, an extractor on syscalls, and two
/// async plugins (into that source and into syscall).
fn plugins_config(scratch: &Path) -> Result<PathBuf, String> {
    let names = ["rsource", "rsyscall", "rasync", "rsysasync"];
    let libraries = peregrine_tests::rust_sdk_plugins(&names)
        .map_err(|e| format!("the Rust SDK test plugins cannot be built: {e}"))?;
    // Falco logs its load warnings as with its own falco.yaml.
    let mut text = String::from("json_output: true\nlog_stderr: true\nlog_level: info\nplugins:\n");
    for (name, library) in names.iter().zip(&libraries) {
        let init = if *name == "rsyscall" {
            "''"
        } else {
            "{count: 3}"
        };
        text.push_str(&format!(
            "  - name: {name}\n    library_path: {}\n    init_config: {init}\n",
            library.display()
        ));
    }
    text.push_str(&format!("load_plugins: [{}]\n", names.join(", ")));
    let path = scratch.join("describe-plugins.yaml");
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn suite_run(layout: &Layout, case: &Case) -> Run {
    let mut args = case_args(layout, case);
    // Alerts are compared as JSON whatever the case prints; the last -o wins.
    if !args.iter().any(|a| a == "-V") {
        args.extend(["-o".into(), "json_output=true".into()]);
    }
    let conf = args
        .iter()
        .position(|a| a == "-c")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let missing = args
        .iter()
        .position(|a| a == "-e")
        .and_then(|i| args.get(i + 1))
        .filter(|trace| !Path::new(trace).exists())
        .map(|trace| format!("its capture {trace} is not in the kit"));
    let not_compared = missing.or_else(|| {
        case.params.contains_key("grpc").then(|| {
            "current Falco has no gRPC output (removed upstream); Peregrine keeps it".to_string()
        })
    });
    Run {
        group: "suite",
        name: case.name.clone(),
        args,
        conf,
        outputs: output_files(case),
        not_compared,
        stderr_has: None,
    }
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string())
}
