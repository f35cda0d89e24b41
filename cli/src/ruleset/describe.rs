//! `-L` and `-l RULE` with `json_output`: Falco's JSON description of the
//! loaded rules, macros and lists. What each item's `details` hold is
//! found by the engine ([`peregrine_engine::rules::describe`]); this puts
//! it in Falco's shape, and says which loaded plugins each rule uses.

use std::collections::BTreeSet;

use peregrine_engine::rules::describe::{
    ConditionDetails, DescribeError, Describer, ListDetails, MacroDetails, RuleDetails,
};
use peregrine_engine::rules::{CompiledRule, RuleItem};
use serde_json::{json, Map, Value as Json};

use super::Ruleset;
use crate::sources::plugins::PluginInfo;

/// Why the description cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum DescribeJsonError {
    /// `-l` names no rule that was loaded and compiled (Falco's words).
    #[error("Rule \"{0}\" is not loaded")]
    NotLoaded(String),
    #[error("cannot describe the rules: {0}")]
    Describe(#[from] DescribeError),
}

/// `-L` (all rules, macros and lists, with the rules files' required
/// engine and plugin versions) or `-l RULE` (that rule), as Falco prints
/// them: each item's definition (`info`) and `details`. `plugins` are the
/// loaded plugins, in load order: a rule's `plugins` names those whose
/// source, fields or async events it uses.
pub fn describe_json(
    ruleset: &Ruleset,
    only: Option<&str>,
    plugins: &[PluginInfo],
) -> Result<Json, DescribeJsonError> {
    let defs = &ruleset.definitions;
    let describer = Describer::new(defs, &ruleset.macros, &ruleset.usage);
    let rule_json = |item: &RuleItem, compiled: &CompiledRule| -> Result<Json, DescribeError> {
        let details = describer.rule(item, &compiled.falco_output)?;
        Ok(json!({
            "info": {
                "name": item.name,
                "condition": item.condition,
                "priority": item.priority.as_str(),
                "output": item.output,
                "description": item.desc,
                // As the file says, whatever -D, -T, -t or `rules:` chose.
                "enabled": item.enabled,
                "source": item.source,
                "capture": compiled.capture,
                "capture_duration": compiled.capture_duration_ms,
                // Falco keeps a rule's tags as a set.
                "tags": item.tags.iter().collect::<BTreeSet<_>>(),
            },
            "details": rule_details(&details, &item.source, plugins),
        }))
    };
    // Rules in definition order, those that compiled (a rule of a source
    // nothing provides, or skipped for an unknown field, is not loaded).
    let compiled = |name: &str| ruleset.rules().find(|r| r.name == name);
    if let Some(name) = only {
        let (item, rule) = defs
            .rules
            .get(name)
            .zip(compiled(name))
            .ok_or_else(|| DescribeJsonError::NotLoaded(name.to_string()))?;
        return Ok(json!({ "rules": [rule_json(item, rule)?] }));
    }
    let mut rules = Vec::new();
    for item in defs.rules.iter() {
        if let Some(rule) = compiled(&item.name) {
            rules.push(rule_json(item, rule)?);
        }
    }
    let mut macros = Vec::new();
    for item in defs.macros.iter() {
        let details = describer.macro_item(item)?;
        macros.push(json!({
            "info": {"name": item.name, "condition": item.condition},
            "details": macro_details(&details),
        }));
    }
    let lists: Vec<Json> = defs
        .lists
        .iter()
        .map(|item| {
            let details = describer.list(item);
            json!({
                "info": {"name": item.name, "items": details.items},
                "details": list_details(&details),
            })
        })
        .collect();
    let (major, minor, patch) = defs.required_engine_version;
    let plugin_versions: Vec<Json> = defs
        .required_plugin_versions
        .iter()
        .filter_map(|alternatives| {
            let (first, others) = alternatives.split_first()?;
            let others: Vec<Json> = others
                .iter()
                .map(|p| json!({"name": p.name, "version": p.version}))
                .collect();
            Some(json!({"name": first.name, "version": first.version, "alternatives": others}))
        })
        .collect();
    Ok(json!({
        "required_engine_version": format!("{major}.{minor}.{patch}"),
        "required_plugin_versions": plugin_versions,
        "rules": rules,
        "macros": macros,
        "lists": lists,
    }))
}

/// The keys a rule's and a macro's details share.
fn condition_json(details: &ConditionDetails, out: &mut Map<String, Json>) {
    out.insert("macros".into(), json!(details.macros));
    out.insert("lists".into(), json!(details.lists));
    out.insert("condition_operators".into(), json!(details.operators));
    out.insert("condition_fields".into(), json!(details.fields));
    out.insert("events".into(), json!(details.events));
    out.insert("condition_compiled".into(), json!(details.compiled));
}

fn rule_details(details: &RuleDetails, source: &str, plugins: &[PluginInfo]) -> Json {
    let mut out = Map::new();
    condition_json(&details.condition, &mut out);
    out.insert("output_fields".into(), json!(details.output_fields));
    // Only when there are any, as in Falco.
    if !details.extra_formatted_fields.is_empty() {
        let fields: Map<String, Json> = details
            .extra_formatted_fields
            .iter()
            .map(|(name, format)| (name.clone(), json!(format)))
            .collect();
        out.insert("extra_output_formatted_fields".into(), Json::Object(fields));
    }
    out.insert("exception_fields".into(), json!(details.exception_fields));
    out.insert("exception_names".into(), json!(details.exception_names));
    out.insert(
        "exception_operators".into(),
        json!(details.exception_operators),
    );
    out.insert("output_compiled".into(), json!(details.output_compiled));
    out.insert(
        "plugins".into(),
        json!(used_plugins(details, source, plugins)),
    );
    Json::Object(out)
}

fn macro_details(details: &MacroDetails) -> Json {
    let mut out = Map::new();
    out.insert("used".into(), json!(details.used));
    condition_json(&details.condition, &mut out);
    // A macro has no source: which plugin its fields are from is only
    // known in a rule (Falco leaves it empty too).
    out.insert("plugins".into(), json!([]));
    Json::Object(out)
}

fn list_details(details: &ListDetails) -> Json {
    json!({
        "used": details.used,
        "lists": details.lists,
        "items_compiled": details.items_compiled,
        "plugins": [],
    })
}

/// The loaded plugins a rule of `source` uses, as Falco finds them: one
/// that provides the source; one whose fields, for that source, the rule
/// reads (in its condition, exceptions or output); one that sends async
/// events into that source under a name the rule compares `evt.type` with.
fn used_plugins(details: &RuleDetails, source: &str, plugins: &[PluginInfo]) -> BTreeSet<String> {
    let fields = details.field_names();
    let event_names = &details.condition.event_names;
    plugins
        .iter()
        .filter(|p| {
            (p.capabilities.sourcing && p.event_source == source)
                || (p.extracts_from(source) && p.fields.iter().any(|f| fields.contains(&f.name)))
                || (p.sends_async_to(source)
                    && p.async_events.iter().any(|n| event_names.contains(n)))
        })
        .map(|p| p.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{load, RulesInput};
    use super::*;

    fn loaded(text: &str) -> Ruleset {
        let ruleset = load(
            &[RulesInput::Text {
                name: "r.yaml".into(),
                text: text.into(),
            }],
            None,
        );
        assert!(!ruleset.has_errors(), "{:?}", ruleset.results);
        ruleset
    }

    /// A set of strings, as Falco's unordered arrays are compared.
    fn set(value: &Json) -> BTreeSet<String> {
        value
            .as_array()
            .unwrap_or_else(|| panic!("not an array: {value}"))
            .iter()
            .map(|v| v.as_str().expect("a string").to_string())
            .collect()
    }

    fn strings(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// The item of `kind` named `name` in a description.
    fn item<'a>(all: &'a Json, kind: &str, name: &str) -> &'a Json {
        all[kind]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["info"]["name"] == name))
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    /// Lists naming lists, nested macros, exceptions of three forms,
    /// negated event types and generic syscalls. The values asserted below
    /// are what Falco master printed for this file (`falco -c C -L -r F`
    /// with `json_output: true` and nothing else in C), checked against
    /// Falco's describe_rule and libsinsp's as_string and ppm_codes.
    const RULES: &str = r#"
- required_engine_version: 0.26.0
- required_engine_version: 9
- list: shell_binaries
  items: [bash, sh]
- list: all_shells
  items: [shell_binaries, zsh, "my shell"]
- list: orphan
  items: [x]
- macro: spawned_process
  condition: evt.type in (execve, execveat) and evt.dir=<
- macro: shell_spawned
  condition: spawned_process and proc.name in (all_shells)
- macro: never_used
  condition: not evt.type = open
- rule: Shell in etc
  desc: a shell with /etc open
  condition: shell_spawned and fd.name pmatch (/etc, /usr/etc) and not proc.pname in (shell_binaries)
  output: "shell %proc.name under %proc.pname (%proc.aname[2])"
  priority: WARNING
  tags: [shell, process]
  exceptions:
    - name: known
      fields: [proc.name, fd.name]
      comps: [=, startswith]
      values:
        - [bash, /etc/profile]
    - name: parents
      fields: proc.pname
      values: [sshd, "login shell"]
    - name: by_list
      fields: [proc.name]
      comps: [in]
      values:
        - [shell_binaries]
- rule: Not open
  desc: any event type but open and close
  condition: not evt.type in (open, close) and proc.name = cat
  output: "%proc.name"
  priority: INFO
  enabled: false
- rule: Getppid
  desc: a syscall of the generic events
  condition: evt.type = getppid or evt.type = procexit
  output: "%proc.name"
  priority: DEBUG
"#;

    #[test]
    fn rules_are_described_with_falcos_details() {
        let all = describe_json(&loaded(RULES), None, &[]).unwrap();
        // The highest version required, 9 being 0.9.0.
        assert_eq!(all["required_engine_version"], "0.26.0");
        assert_eq!(all["required_plugin_versions"], json!([]));

        let rule = item(&all, "rules", "Shell in etc");
        assert_eq!(rule["info"]["priority"], "Warning");
        assert_eq!(rule["info"]["tags"], json!(["process", "shell"]));
        let details = &rule["details"];
        // Macros inlined in parentheses, lists pasted (a spaced item
        // quoted), the condition in parentheses and each exception
        // appended with `and not`; a single-field exception and a
        // one-comparison tuple print without parentheses.
        assert_eq!(
            details["condition_compiled"],
            "((((evt.type in (execve, execveat) and evt.dir = <) and proc.name in (bash, sh, zsh, \"my shell\")) \
             and fd.name pmatch (/etc, /usr/etc) and not proc.pname in (bash, sh)) \
             and not (proc.name = bash and fd.name startswith /etc/profile) \
             and not proc.pname in (sshd, \"login shell\") and not proc.name in (bash, sh))"
        );
        // Named as written: the macro and list of the rule's own text only.
        assert_eq!(set(&details["macros"]), strings(&["shell_spawned"]));
        assert_eq!(set(&details["lists"]), strings(&["shell_binaries"]));
        // Of the compiled condition, exceptions included.
        assert_eq!(
            set(&details["condition_fields"]),
            strings(&["proc.pname", "fd.name", "proc.name", "evt.dir", "evt.type"])
        );
        assert_eq!(
            set(&details["condition_operators"]),
            strings(&["startswith", "pmatch", "=", "in"])
        );
        assert_eq!(
            set(&details["events"]),
            strings(&["asyncevent", "execve", "execveat"])
        );
        assert_eq!(
            set(&details["exception_fields"]),
            strings(&["fd.name", "proc.name", "proc.pname"])
        );
        assert_eq!(
            set(&details["exception_names"]),
            strings(&["by_list", "parents", "known"])
        );
        assert_eq!(
            set(&details["exception_operators"]),
            strings(&["in", "startswith", "="])
        );
        assert_eq!(
            details["output_compiled"],
            "shell %proc.name under %proc.pname (%proc.aname[2])"
        );
        assert_eq!(
            details["output_fields"],
            json!(["proc.name", "proc.pname", "proc.aname[2]"])
        );
        assert!(details.get("extra_output_formatted_fields").is_none());
        assert_eq!(details["plugins"], json!([]));

        // Negated event types: every event and syscall name but those.
        let not_open = item(&all, "rules", "Not open");
        assert_eq!(not_open["info"]["enabled"], false);
        let events = set(&not_open["details"]["events"]);
        assert_eq!(events.len(), 463);
        assert!(!events.contains("open") && !events.contains("close"));
        assert!(events.contains("getppid") && events.contains("asyncevent"));
        assert_eq!(
            not_open["details"]["condition_compiled"],
            "(not evt.type in (open, close) and proc.name = cat)"
        );
        // A syscall of the generic events is named as the syscall.
        assert_eq!(
            set(&item(&all, "rules", "Getppid")["details"]["events"]),
            strings(&["asyncevent", "getppid", "procexit"])
        );
    }

    #[test]
    fn macros_and_lists_are_described_with_falcos_details() {
        let all = describe_json(&loaded(RULES), None, &[]).unwrap();
        let shell = item(&all, "macros", "shell_spawned");
        assert_eq!(shell["details"]["used"], true);
        assert_eq!(
            shell["details"]["condition_compiled"],
            "((evt.type in (execve, execveat) and evt.dir = <) and proc.name in (bash, sh, zsh, \"my shell\"))"
        );
        assert_eq!(
            set(&shell["details"]["macros"]),
            strings(&["spawned_process"])
        );
        assert_eq!(set(&shell["details"]["lists"]), strings(&["all_shells"]));
        assert_eq!(shell["details"]["plugins"], json!([]));
        let unused = item(&all, "macros", "never_used");
        assert_eq!(unused["details"]["used"], false);
        assert_eq!(
            unused["details"]["condition_compiled"],
            "not evt.type = open"
        );
        assert_eq!(set(&unused["details"]["events"]).len(), 464);

        // A list's items as written lose the names of lists, which its
        // compiled items replace.
        let shells = item(&all, "lists", "all_shells");
        assert_eq!(shells["info"]["items"], json!(["zsh", "my shell"]));
        assert_eq!(
            shells["details"],
            json!({
                "used": true,
                "lists": ["shell_binaries"],
                "items_compiled": ["bash", "sh", "zsh", "my shell"],
                "plugins": [],
            })
        );
        assert_eq!(item(&all, "lists", "orphan")["details"]["used"], false);
    }

    #[test]
    fn one_rule_alone_or_falcos_error() {
        let ruleset = loaded(RULES);
        let one = describe_json(&ruleset, Some("Getppid"), &[]).unwrap();
        assert_eq!(one["rules"].as_array().map(Vec::len), Some(1));
        assert!(one.get("macros").is_none() && one.get("required_engine_version").is_none());
        let error = describe_json(&ruleset, Some("Nope"), &[]).unwrap_err();
        assert_eq!(error.to_string(), "Rule \"Nope\" is not loaded");
    }

    #[test]
    fn a_condition_nested_past_libsinsps_default_depth_fails_as_in_falco() {
        // Falco loads it (its loader allows 1000 levels) but -L parses the
        // condition again at libsinsp's default of 100 and fails.
        let rule = |n: usize| {
            format!(
                "- rule: D\n  desc: d\n  condition: evt.type = open and {}proc.name = x{}\n  \
                 output: o\n  priority: INFO\n",
                "(".repeat(n),
                ")".repeat(n)
            )
        };
        assert!(describe_json(&loaded(&rule(18)), None, &[]).is_ok());
        let error = describe_json(&loaded(&rule(19)), None, &[]).unwrap_err();
        assert!(
            error.to_string().contains(
                "rule 'D': its condition does not parse: exceeded max depth limit of 100"
            ),
            "{error}"
        );
    }

    fn plugin(name: &str, source: &str, fields: &[&str], async_events: &[&str]) -> PluginInfo {
        let mut info = PluginInfo::for_tests(name, source, fields);
        info.id = 999;
        info.capabilities.async_events = !async_events.is_empty();
        info.async_events = async_events.iter().map(|s| s.to_string()).collect();
        info
    }

    #[test]
    fn a_rule_uses_the_plugins_of_its_fields_and_async_event_names() {
        // As Falco found for tests/describe/plugins.yaml: a plugin is used
        // for its source, for a field read anywhere (here in the output),
        // or for an async event the condition names; not for fields the
        // rule does not read.
        let details = RuleDetails {
            output_fields: vec!["x.f[3]".into(), "proc.name".into()],
            condition: ConditionDetails {
                fields: strings(&["evt.type"]),
                event_names: strings(&["tick", "open"]),
                ..ConditionDetails::default()
            },
            ..RuleDetails::default()
        };
        let plugins = [
            plugin("extracts", "", &["x.f"], &[]),
            plugin("unrelated", "", &["y.g"], &[]),
            plugin("ticks", "", &[], &["tick"]),
            plugin("source", "other", &[], &[]),
        ];
        assert_eq!(
            used_plugins(&details, "syscall", &plugins),
            strings(&["extracts", "ticks"])
        );
        assert_eq!(
            used_plugins(&details, "other", &plugins),
            strings(&["extracts", "source", "ticks"])
        );
    }
}
