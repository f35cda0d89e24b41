//! File and program names that are not clean text, under `peregrine run`,
//! as Falco's engine 0.63 treats them: conditions match the raw bytes
//! (`\xHH` names any byte), `glob`'s `?` takes one byte, and a text alert
//! is escaped as a JSON string's body, so a newline or an escape sequence
//! in a name can neither forge a second alert line nor reach a terminal.
//! Each expectation below was checked against Falco master built here, on
//! a capture of the same commands. JSON's `output_fields` show bytes that
//! are not UTF-8 otherwise than the text does (libsinsp's JSON writer reads
//! them its own way); that too is checked here, byte for byte.

use std::path::PathBuf;
use std::process::Command;

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peregrine-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One rule per condition, each named for its index; the alerts of a run
/// of `script`, as the rule names that fired and the stdout lines.
fn run(dir: &PathBuf, conditions: &[&str], script: &str, json: bool) -> Option<Vec<String>> {
    let binary = peregrine_tests::peregrine_with_ptrace()?;
    let mut rules = String::new();
    for (i, condition) in conditions.iter().enumerate() {
        rules.push_str(&format!(
            "- rule: r{i}\n  desc: d\n  condition: >\n    evt.type in (open, openat) and fd.name startswith {}/z and ({condition})\n  output: 'opened \"%fd.name\" by %proc.name'\n  priority: WARNING\n",
            dir.display()
        ));
    }
    let rules_path = dir.join("rules.yaml");
    std::fs::write(&rules_path, rules).unwrap();
    let out = Command::new(binary)
        .args(["run", "-r"])
        .arg(&rules_path)
        .args(["-o", &format!("json_output={json}")])
        .args(["-o", "rule_matching=all"])
        .args(["--", "sh", "-c", script])
        .env("D", dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "peregrine run failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("alerts are UTF-8");
    Some(stdout.lines().map(str::to_string).collect())
}

/// Creates, under $D: `héllo` (a copy of touch), `t\xffx` (another), then
/// through them the files `z1`, `z€\xe2\x82` (a cut sequence) and `z€`.
const NAMES: &str = r#"cp "$(command -v touch)" "$D/héllo"
cp "$(command -v touch)" "$(printf "$D/t\377x")"
"$D/héllo" "$D/z1"
"$(printf "$D/t\377x")" "$(printf "$D/z\342\202\254\342\202")"
touch "$D/z€""#;

#[test]
fn conditions_match_raw_bytes_as_falco_does() {
    let dir = scratch("raw-conditions");
    // (condition, how many of the three opens it matches in Falco 0.63)
    let cases: &[(&str, usize)] = &[
        (r#"proc.name glob "h?llo""#, 0),
        (r#"proc.name glob "h??llo""#, 1),
        (r#"proc.name contains "\xff""#, 1),
        (r#"proc.name = "t\xffx""#, 1),
        (r#"proc.name = "t\xfex""#, 0),
        (r#"proc.name in ("t\xffx", a)"#, 1),
        (r#"proc.name icontains "T\xffX""#, 1),
        (r#"proc.exe endswith "\xffx""#, 1),
        (r#"fd.name contains "\xe2\x82""#, 2),
        (r#"fd.name endswith "\xe2\x82""#, 1),
        (r#"fd.name contains "\xac\xe2""#, 1),
        (r#"fd.name glob "*/z?""#, 1),
        (r#"fd.name regex ".*z€�""#, 1),
        (r#"fd.name regex ".*\xe2\x82\xac.""#, 1),
    ];
    let conditions: Vec<&str> = cases.iter().map(|(c, _)| *c).collect();
    let Some(lines) = run(&dir, &conditions, NAMES, true) else {
        return;
    };
    for (i, (condition, expected)) in cases.iter().enumerate() {
        let rule = format!("\"rule\":\"r{i}\"");
        let fired = lines.iter().filter(|l| l.contains(&rule)).count();
        assert_eq!(fired, *expected, "{condition}: {lines:#?}");
    }
    // JSON shows each invalid sequence as U+FFFD.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"proc.name\":\"t\u{fffd}x\"")),
        "{lines:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn text_alerts_cannot_forge_lines_or_escape_sequences() {
    let dir = scratch("raw-text");
    let script = r#"touch "$D/za
fake: Critical forged"
touch "$(printf "$D/zb\tx\033[31m\001")"
touch "$D/zq\"\\b""#;
    let Some(lines) = run(&dir, &["evt.type != close"], script, false) else {
        return;
    };
    let alerts: Vec<&String> = lines.iter().filter(|l| l.contains(": Warning ")).collect();
    assert_eq!(alerts.len(), 3, "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.starts_with("fake:")),
        "a newline in a name forged a line: {lines:#?}"
    );
    let d = dir.display();
    assert!(
        alerts[0].ends_with(&format!(
            "Warning opened \\\"{d}/za\\nfake: Critical forged\\\" by touch"
        )),
        "{}",
        alerts[0]
    );
    assert!(
        alerts[1].ends_with(&format!(
            "Warning opened \\\"{d}/zb\\tx\\u001b[31m\\u0001\\\" by touch"
        )),
        "{}",
        alerts[1]
    );
    assert!(
        alerts[2].ends_with(&format!("Warning opened \\\"{d}/zq\\\"\\\\b\\\" by touch")),
        "{}",
        alerts[2]
    );
    assert!(!lines.iter().any(|l| l.contains('\u{1b}')), "{lines:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// File names (after `z`) and how Falco master showed them, as
/// (bytes, JSON `output_fields` value, text line): cut 2-, 3- and 4-byte
/// sequences at the end and in the middle, stray continuation bytes, 0xff,
/// a lead past U+10FFFF, a cut sequence before a quote, and U+10FFFF
/// itself.
const SHOWN: &[(&[u8], &[u8], &[u8])] = &[
    (b"a\xe2\x82", b"a\xef\xbf\xbd\xef\xbf\xbd", b"a\xef\xbf\xbd"),
    (b"a\xc3", b"a\xef\xbf\xbd", b"a\xef\xbf\xbd"),
    (b"a\xf0\x9f\x98", b"a\xef\xbf\xbd\xdf\x98", b"a\xef\xbf\xbd"),
    (b"a\xe2\x82b", b"a\xe2\x82\xa2", b"a\xef\xbf\xbdb"),
    (b"a\xf0\x9f\x98b", b"a\xf0\x9f\x98\xa2", b"a\xef\xbf\xbdb"),
    (b"a\xc3b", b"a\xc3\xa2", b"a\xef\xbf\xbdb"),
    (b"a\x80b", b"a\xef\xbf\xbd", b"a\xef\xbf\xbdb"),
    (
        b"a\x80\x80b",
        b"a\xef\xbf\xbdb",
        b"a\xef\xbf\xbd\xef\xbf\xbdb",
    ),
    (b"a\xffb", b"a\xef\xbf\xbdb", b"a\xef\xbf\xbdb"),
    (
        b"a\xf4\x90\x80\x80b",
        b"a\xf0\x90\x80\x80b",
        b"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdb",
    ),
    (b"a\xe2\x82\"q", b"a\xe2\x82\xa2q", b"a\xef\xbf\xbd\\\"q"),
    (
        b"a\xf4\x8f\xbf\xbf",
        b"a\xf4\x8f\xbf\xbf",
        b"a\xf4\x8f\xbf\xbf",
    ),
];

/// A shell word that printf turns into `$D/z` then `name`.
fn printf_word(name: &[u8]) -> String {
    let mut word = String::from("\"$(printf \"$D/z");
    for &b in name {
        if b.is_ascii_alphanumeric() {
            word.push(char::from(b));
        } else {
            word.push_str(&format!("\\{b:03o}"));
        }
    }
    word.push_str("\")\"");
    word
}

#[test]
fn json_fields_and_text_show_bytes_as_falco_does() {
    let dir = scratch("raw-shown");
    let script: String = SHOWN
        .iter()
        .map(|(name, _, _)| format!("touch {}\n", printf_word(name)))
        .collect();
    let Some(json_lines) = run(&dir, &["evt.type != close"], &script, true) else {
        return;
    };
    let prefix = format!("{}/z", dir.display());
    let alerts: Vec<serde_json::Value> = json_lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v.get("rule").is_some())
        .collect();
    assert_eq!(alerts.len(), SHOWN.len(), "{json_lines:#?}");
    for ((name, json, text), alert) in SHOWN.iter().zip(&alerts) {
        let field = alert["output_fields"]["fd.name"].as_str().unwrap_or("");
        let field = field.strip_prefix(&prefix).unwrap_or(field);
        assert_eq!(field.as_bytes(), *json, "output_fields of {name:x?}");
        // JSON's `output` is the text line before it is escaped.
        let output = alert["output"].as_str().unwrap_or("");
        let shown = output.split(&prefix).nth(1).unwrap_or("");
        let shown = shown.strip_suffix("\" by touch").unwrap_or(shown);
        assert_eq!(
            peregrine_engine::text::escape_line(shown).as_bytes(),
            *text,
            "output of {name:x?}"
        );
    }
    let Some(text_lines) = run(&dir, &["evt.type != close"], &script, false) else {
        return;
    };
    let alerts: Vec<&String> = text_lines
        .iter()
        .filter(|l| l.contains(": Warning "))
        .collect();
    assert_eq!(alerts.len(), SHOWN.len(), "{text_lines:#?}");
    for ((name, _, text), line) in SHOWN.iter().zip(alerts) {
        let shown = line.split(&prefix).nth(1).unwrap_or("");
        let shown = shown.strip_suffix("\\\" by touch").unwrap_or(shown);
        assert_eq!(shown.as_bytes(), *text, "text of {name:x?}: {line}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A YAML error that quotes a byte of the file which is not text on its
/// own (yaml-cpp names the single byte after a backslash: the lead byte
/// of `é`) prints that byte as it is, on stdout and in the error, as
/// Falco master does (checked there): not a replacement, not a code of
/// this program's own.
#[test]
fn a_validation_error_quotes_the_files_byte_as_it_is() {
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let dir = scratch("raw-validate");
    let file = dir.join("r.yaml");
    std::fs::write(
        &file,
        "- rule: r\n  desc: d\n  condition: evt.type = open\n  output: \"a \\é b\"\n  priority: WARNING\n",
    )
    .unwrap();
    let out = Command::new(binary).arg("-V").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let expected: &[u8] = b"yaml-cpp: error at line 4, column 16: unknown escape character: \xc3\n";
    let holds = |bytes: &[u8]| bytes.windows(expected.len()).any(|w| w == expected);
    assert!(
        holds(&out.stdout),
        "{:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        holds(&out.stderr),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A rules file with bytes that are not UTF-8 (a Latin-1 comment and
/// description, a raw byte in a name): Falco master loads it, yaml-cpp
/// passing the bytes on. Its `-V` marks count the file's bytes; its text
/// reports print the bytes as they are, its JSON reports U+FFFD for each
/// invalid sequence; a bare raw byte is no condition value (libsinsp's
/// patterns match characters). Every expectation was printed by Falco
/// master on the same files.
#[test]
fn a_rules_file_that_is_not_utf8_loads_as_in_falco() {
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let dir = scratch("raw-rules");
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        b"# caf\xe9 comment\n- rule: bad\xff name\n  desc: d\xe2\x82\n  condition: evt.type=open and proc.name=\xff\xfe\n  output: \"o %proc.name \xc3\"\n  priority: INFO\n",
    )
    .unwrap();
    let config = dir.join("falco.yaml");
    std::fs::write(&config, "json_output: true\n").unwrap();
    let out = Command::new(&binary)
        .args(["-c"])
        .arg(&config)
        .arg("-V")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|&b| b == b'\n')
            .find(|l| l.starts_with(b"{"))
            .unwrap(),
    )
    .unwrap();
    let error = &report["falco_load_results"][0]["errors"][0];
    assert_eq!(error["code"], "LOAD_ERR_COMPILE_CONDITION");
    let positions: Vec<(String, u64, u64, u64)> = error["context"]["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let p = &l["position"];
            (
                l["item_name"].as_str().unwrap().to_string(),
                p["line"].as_u64().unwrap(),
                p["column"].as_u64().unwrap(),
                p["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        positions,
        [
            (String::new(), 0, 0, 0),
            ("bad\u{fffd} name".to_string(), 1, 2, 17),
            (String::new(), 3, 13, 58),
            (String::new(), 4, 42, 86),
        ]
    );
    assert_eq!(
        error["context"]["snippet"],
        "evt.type=open and proc.name=\u{fffd}\u{fffd}\n                             ^\n"
    );
    // The text report, on stderr as the run's error, quotes the bytes.
    let quoted: &[u8] = b"    rule 'bad\xff name': (";
    assert!(out.stderr.windows(quoted.len()).any(|w| w == quoted));

    // The same file without the bare byte loads, lists and alerts.
    let good = dir.join("good.yaml");
    std::fs::write(
        &good,
        b"# caf\xe9 comment\n- rule: ok\xff name\n  desc: d\xe9sc\n  condition: evt.type = open and proc.name != \"x\xff\"\n  output: \"o\xe9 %proc.name\"\n  priority: INFO\n  tags: [t\xff]\n",
    )
    .unwrap();
    let listed = Command::new(&binary)
        .arg("-L")
        .arg("-r")
        .arg(&good)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let mut row = b"ok\xff name".to_vec();
    row.extend(vec![b' '; 50 - 8]);
    row.extend_from_slice(b" d\xe9sc \n\n");
    assert!(listed.stdout.ends_with(&row), "{:?}", listed.stdout);
    let json = Command::new(&binary)
        .args(["-c"])
        .arg(&config)
        .arg("-L")
        .arg("-r")
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8(json.stdout).expect("JSON is UTF-8");
    assert!(text.contains(r#""name":"ok� name""#), "{text}");
    assert!(text.contains(r#""description":"d�sc""#), "{text}");
    // The quoted byte is one byte of the literal, as libsinsp prints it.
    assert!(
        text.contains(r#""condition_compiled":"(evt.type = open and proc.name != x�)""#),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-L` without `json_output` as Falco master prints it: a table of
/// names padded to 50 bytes and descriptions wrapped at 59 bytes with a
/// 51-space indent, a blank line after each rule, disabled rules too
/// (the expected text is Falco's on the same file); `-l` of an unknown
/// rule is Falco's runtime error.
#[test]
fn list_rules_prints_falcos_table() {
    let binary = peregrine_tests::peregrine_binary().unwrap();
    let dir = scratch("list-table");
    let file = dir.join("r.yaml");
    std::fs::write(
        &file,
        "- rule: Short\n  desc: >\n    one two three four five six seven eight nine ten eleven twelve\n    thirteen\n  condition: evt.type = open\n  output: o\n  priority: INFO\n  enabled: false\n",
    )
    .unwrap();
    let out = Command::new(&binary)
        .arg("-L")
        .arg("-r")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pad = |s: &str| format!("{s}{} ", " ".repeat(50 - s.len()));
    let expected = format!(
        "{}Description\n{}-----------\n{}one two three four five six seven eight nine ten eleven \n{}twelve thirteen \n\n",
        pad("Rule"),
        pad("----"),
        pad("Short"),
        " ".repeat(51)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let unknown = Command::new(&binary)
        .args(["-l", "Nope", "-r"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr)
            .lines()
            .last()
            .unwrap_or_default(),
        "Runtime error: Rule \"Nope\" is not loaded. Exiting."
    );
    let _ = std::fs::remove_dir_all(&dir);
}
