//! Hostile inputs to the loaders, against the real binary: rules files
//! that nest, double or run long, files that never end (/dev/zero, a
//! FIFO), a capture with a forged block length, and durations that
//! overflow. Each ends in a clear error (or a normal load), never in a
//! crash, gigabytes or minutes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use peregrine_tests::peregrine_binary;
use peregrine_tests::webhook::{audit_event, post, start_args, start_with, stop, Running};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peregrine-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs peregrine to its end, killing it past `limit` (a hang is a
/// failure, not a stuck test run).
fn run(args: &[&str], limit: Duration) -> (Output, Duration) {
    // The binary first: finding it may build it, which is not the run's time.
    let binary = peregrine_binary().unwrap();
    let started = Instant::now();
    let child = Command::new(binary)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let output = child.wait_with_output().unwrap();
    let elapsed = started.elapsed();
    let _ = watchdog.join();
    assert!(
        elapsed < limit,
        "peregrine {args:?} ran past {limit:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output, elapsed)
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// An error exit: status 1, not a signal (stack overflow, abort) or a
/// panic (101).
fn assert_clean_error(output: &Output) {
    assert_eq!(output.status.code(), Some(1), "{}", text(output));
}

fn rule(name: &str, condition: &str) -> String {
    format!(
        "- rule: {name}\n  desc: d\n  condition: {condition}\n  output: {name} fired (pod=%ka.target.name)\n  priority: WARNING\n  source: k8s_audit\n"
    )
}

fn nested(depth: usize) -> String {
    format!("{}ka.verb=create{}", "(".repeat(depth), ")".repeat(depth))
}

#[test]
fn nesting_bombs_are_load_errors_naming_file_and_line() {
    let dir = scratch("nesting");
    for (name, condition) in [
        ("parens", nested(1_500)),
        // `not(` nests; `not not ...` does not (libsinsp's parser reads
        // that chain in a loop, and Falco accepts it).
        (
            "nots",
            format!(
                "{}ka.verb=create{}",
                "not(".repeat(8_000),
                ")".repeat(8_000)
            ),
        ),
        ("deep", nested(100_000)),
    ] {
        let file = dir.join(format!("{name}.yaml"));
        let body = format!("# a comment line\n{}", rule("Deep", &condition));
        std::fs::write(&file, body).unwrap();
        let (output, _) = run(&["-V", file.to_str().unwrap()], Duration::from_secs(60));
        assert_clean_error(&output);
        let said = text(&output);
        assert!(said.contains("exceeded max depth limit"), "{said}");
        // Falco's context chain places the rule at yaml-cpp's 0-based mark:
        // line 1, column 2 is the `rule:` key on the file's second line.
        assert!(
            said.contains(&format!("rule 'Deep': ({}:1:2)", file.display())),
            "the file and the rule's line: {said}"
        );
    }
}

/// A daemon on loopback with `rules`, whose rules file the test rewrites.
fn daemon(rules: &Path) -> Running {
    start_with(rules, &[])
}

/// SIGHUP, then the stderr lines until the reload's outcome.
fn hangup(running: &Running) -> String {
    Command::new("kill")
        .args(["-HUP", &running.child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let line = running
            .stderr_lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no reload outcome: {seen:#?}"));
        let done = line.contains("rules reloaded from")
            || line.contains("did not load")
            || line.contains("configuration reload:");
        seen.push(line);
        if done {
            return seen.join("\n");
        }
    }
}

#[test]
fn nesting_bombs_on_sighup_leave_the_daemon_running() {
    let dir = scratch("nesting-sighup");
    let rules = dir.join("rules.yaml");
    // Under the limit loads, at start and on reload alike (libsinsp's
    // parser, with Falco's depth of 1000, takes 198 parentheses).
    std::fs::write(&rules, rule("Near Limit", &nested(95))).unwrap();
    let running = daemon(&rules);
    assert_eq!(post(&running.url, &audit_event(1, "create")), 200);

    // 500 levels: the 4 KB file that used to abort a running daemon.
    for depth in [500, 100_000] {
        std::fs::write(&rules, rule("Too Deep", &nested(depth))).unwrap();
        let said = hangup(&running);
        assert!(said.contains("exceeded max depth limit"), "{said}");
        assert!(said.contains("did not load"), "{said}");
        assert_eq!(post(&running.url, &audit_event(2, "create")), 200);
    }
    std::fs::write(&rules, rule("Near Limit Again", &nested(198))).unwrap();
    let said = hangup(&running);
    assert!(said.contains("rules reloaded from"), "{said}");
    assert_eq!(post(&running.url, &audit_event(3, "create")), 200);

    let (stdout, stderr) = stop(running);
    let fired: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(" fired (pod="))
        .collect();
    assert_eq!(fired.len(), 4, "{stdout}\n{stderr}");
    assert!(
        fired[2].contains("Near Limit fired (pod=pod-2)"),
        "{fired:?}"
    );
    assert!(
        fired[3].contains("Near Limit Again fired (pod=pod-3)"),
        "{fired:?}"
    );
}

#[test]
fn a_macro_doubled_24_times_is_refused_in_bounded_time() {
    let dir = scratch("doubling");
    let file = dir.join("double.yaml");
    let mut body = String::from("- {macro: m0, condition: ka.verb=create}\n");
    for i in 1..=24 {
        body.push_str(&format!(
            "- {{macro: m{i}, condition: m{} or m{}}}\n",
            i - 1,
            i - 1
        ));
    }
    body.push_str(
        "- {rule: D, desc: d, condition: m24, output: o, priority: INFO, source: k8s_audit}\n",
    );
    assert!(body.len() < 1_024, "a file under 1 KB: {}", body.len());
    std::fs::write(&file, &body).unwrap();
    let (output, elapsed) = run(&["-V", file.to_str().unwrap()], Duration::from_secs(60));
    assert_clean_error(&output);
    let said = text(&output);
    assert!(said.contains("nodes once its macros"), "{said}");
    println!("24 doublings refused in {elapsed:?}");
}

#[test]
fn sixty_thousand_audit_events_in_one_file_parse_in_linear_time() {
    // Counting each event's line from the start of the text made this
    // quadratic: 60k events took 25 s in a release build, hours in debug.
    let dir = scratch("many-audit-events");
    let events = dir.join("audit.json");
    let body: Vec<String> = (0..60_000)
        .map(|i| audit_event(i, "get").replace('\n', ""))
        .collect();
    std::fs::write(&events, body.join("\n")).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, rule("Creates", "ka.verb=create")).unwrap();
    let (output, elapsed) = run(
        &[
            "-r",
            rules.to_str().unwrap(),
            "--k8s-audit-file",
            events.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let said = text(&output);
    assert!(said.contains("Events detected: 0"), "{said}");
    println!("60,000 audit events read in {elapsed:?} (debug build, whole process)");
}

#[test]
fn eight_thousand_or_terms_load() {
    let dir = scratch("or");
    let file = dir.join("or.yaml");
    let terms: Vec<String> = (0..8_000).map(|i| format!("ka.target.name=p{i}")).collect();
    std::fs::write(&file, rule("Many Ors", &terms.join(" or "))).unwrap();
    let (output, elapsed) = run(&["-V", file.to_str().unwrap()], Duration::from_secs(120));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    println!("8,000 or terms validated in {elapsed:?} (debug build, whole process)");
}

/// Writes bytes into a FIFO until the reader goes away (EPIPE) or
/// `limit` bytes went in.
fn feed_fifo(path: &Path, limit: usize) -> std::thread::JoinHandle<usize> {
    let path = path.to_owned();
    std::thread::spawn(move || {
        let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(&path) else {
            return 0;
        };
        let chunk = vec![b'#'; 64 * 1024];
        let mut written = 0;
        while written < limit {
            match fifo.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        written
    })
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn endless_inputs_stop_at_their_caps() {
    let dir = scratch("endless");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, rule("R", "ka.verb=create")).unwrap();
    let rules = rules.to_str().unwrap();
    let limit = Duration::from_secs(60);

    let (output, _) = run(&["-V", "/dev/zero"], limit);
    assert_clean_error(&output);
    assert!(
        text(&output).contains("larger than the 16 MiB allowed"),
        "{}",
        text(&output)
    );

    let (output, _) = run(&["-c", "/dev/zero", "--dry-run", "-r", rules], limit);
    assert_clean_error(&output);
    assert!(
        text(&output).contains("larger than the 4 MiB allowed"),
        "{}",
        text(&output)
    );

    let (output, _) = run(&["-r", rules, "--k8s-audit-file", "/dev/zero"], limit);
    assert_clean_error(&output);
    assert!(
        text(&output).contains("larger than the 256 MiB allowed"),
        "{}",
        text(&output)
    );

    // FIFOs fed without end (up to far past each cap).
    for (args, said) in [
        (vec!["-V"], "larger than the 16 MiB allowed"),
        (
            vec!["-r", rules, "--dry-run", "-c"],
            "larger than the 4 MiB allowed",
        ),
    ] {
        let fifo = dir.join(format!("fifo-{}", args.len()));
        mkfifo(&fifo);
        let feeder = feed_fifo(&fifo, 256 << 20);
        let mut all = args.clone();
        all.push(fifo.to_str().unwrap());
        let (output, _) = run(&all, limit);
        assert_clean_error(&output);
        assert!(text(&output).contains(said), "{}", text(&output));
        let fed = feeder.join().unwrap();
        assert!(fed < 256 << 20, "the reader stopped early: {fed} bytes fed");
    }
}

/// The smallest capture peregrine opens: a section header and a machine
/// block, as the engine's writer makes them.
fn minimal_capture() -> Vec<u8> {
    let machine = peregrine_engine::scap::MachineInfo::default();
    let writer = peregrine_engine::scap::Writer::new(Vec::new(), &machine).unwrap();
    writer.finish().unwrap()
}

#[test]
fn a_forged_block_length_in_a_gzipped_capture_is_refused_before_reading() {
    let dir = scratch("forged");
    let raw = dir.join("forged.scap");
    let mut bytes = minimal_capture();
    // An event block claiming 4 GiB, followed by 100 MiB of zeros that
    // gzip shrinks to ~100 KB: reading the block would grow the buffer.
    bytes.extend_from_slice(&0x0205u32.to_le_bytes());
    bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    bytes.resize(bytes.len() + (100 << 20), 0);
    std::fs::write(&raw, &bytes).unwrap();
    drop(bytes);
    let status = Command::new("gzip").arg("-f").arg(&raw).status();
    let Ok(status) = status else {
        println!("SKIP: no gzip command to compress the forged capture");
        return;
    };
    assert!(status.success());
    let gz = dir.join("forged.scap.gz");
    assert!(std::fs::metadata(&gz).unwrap().len() < 2 << 20);
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, "- list: l\n  items: [a]\n").unwrap();
    let (output, _) = run(
        &["-r", rules.to_str().unwrap(), "-e", gz.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_clean_error(&output);
    let said = text(&output);
    assert!(
        said.contains("larger than the 64 MiB a block may have"),
        "{said}"
    );
}

#[test]
fn huge_durations_are_config_errors_not_panics() {
    let dir = scratch("durations");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, rule("R", "ka.verb=create")).unwrap();
    let rules = rules.to_str().unwrap();
    for value in [
        "18446744073709551615",
        "18446744073709551615s",
        "5124095576030431h",
        "99999999999999999999999m",
    ] {
        let option = format!("metrics.interval={value}");
        let (output, _) = run(
            &[
                "-r",
                rules,
                "--dry-run",
                "-o",
                "metrics.enabled=true",
                "-o",
                &option,
            ],
            Duration::from_secs(30),
        );
        assert_clean_error(&output);
        assert!(
            text(&output).contains("metrics.interval"),
            "{}",
            text(&output)
        );
    }
    let (output, _) = run(
        &["-r", rules, "--dry-run", "-M", "18446744073709551615"],
        Duration::from_secs(30),
    );
    // clap's usage error.
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("100 years"), "{}", text(&output));
}

#[test]
fn a_huge_interval_on_sighup_is_refused_and_the_daemon_runs_on() {
    let dir = scratch("duration-sighup");
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, rule("R", "ka.verb=create")).unwrap();
    let config = dir.join("peregrine.yaml");
    let good = format!(
        "rules_file: [{}]\nmetrics:\n  enabled: true\n  interval: 15m\n",
        rules.display()
    );
    std::fs::write(&config, &good).unwrap();
    // Reloaded by SIGHUP alone, not also by the watch of the file.
    let running = start_args(&[
        "-c",
        config.to_str().unwrap(),
        "-o",
        "watch_config_files=false",
    ]);
    std::fs::write(&config, good.replace("15m", "18446744073709551615")).unwrap();
    let said = hangup(&running);
    assert!(said.contains("metrics.interval"), "{said}");
    assert_eq!(post(&running.url, &audit_event(1, "create")), 200);
    let (stdout, _) = stop(running);
    assert!(stdout.contains("R fired (pod=pod-1)"), "{stdout}");
}
