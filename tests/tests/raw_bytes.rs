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
