//! `peregrine --list [SOURCE] [--format text|markdown|json]`: every field
//! rules can use, grouped by field class as Falco groups them, each with
//! its type, argument and what it holds. The loaded plugins' fields follow,
//! one class per plugin named as libsinsp names it (`NAME (plugin)`), with
//! the event sources its fields apply to.

use peregrine_engine::field::{FieldInfo, FieldSource, FieldType};
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::syscall_fields::SyscallFields;
use serde_json::{json, Value};

/// How `--list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    Text,
    Markdown,
    Json,
}

impl ListFormat {
    /// Falco's `--format` values.
    pub fn parse(text: &str) -> Result<ListFormat, String> {
        match text {
            "text" => Ok(ListFormat::Text),
            "markdown" => Ok(ListFormat::Markdown),
            "json" => Ok(ListFormat::Json),
            other => Err(format!(
                "invalid --format '{other}': valid values are text, markdown and json"
            )),
        }
    }
}

/// One loaded plugin's fields, for the listing.
#[derive(Debug, Clone)]
pub struct PluginClass {
    pub plugin: String,
    /// The event sources its fields apply to.
    pub sources: Vec<String>,
    pub fields: Vec<PluginField>,
}

/// A plugin field as `plugin_get_fields` declares it.
#[derive(Debug, Clone)]
pub struct PluginField {
    pub name: String,
    /// The plugin's type name (`string`, `uint64`, ...).
    pub type_name: String,
    pub is_list: bool,
    pub arg_required: bool,
    pub arg_index: bool,
    pub arg_key: bool,
    pub desc: String,
}

impl PluginField {
    /// libsinsp's name for the plugin field's type.
    fn sinsp_type(&self) -> String {
        let base = match self.type_name.as_str() {
            "string" => "CHARBUF",
            "uint64" => "UINT64",
            "bool" => "BOOL",
            "reltime" => "RELTIME",
            "abstime" => "ABSTIME",
            "ipaddr" => "IPADDR",
            "ipnet" => "IPNET",
            other => other,
        };
        base.to_string()
    }

    fn arg_text(&self) -> &'static str {
        match (self.arg_index, self.arg_key) {
            (true, true) => "[index|key]",
            (true, false) => "[index]",
            (false, true) => "[key]",
            _ => "",
        }
    }

    fn argument_json(&self) -> Value {
        if !self.arg_index && !self.arg_key {
            return Value::Null;
        }
        let mut kinds = Vec::new();
        if self.arg_index {
            kinds.push("INDEX");
        }
        if self.arg_key {
            kinds.push("KEY");
        }
        json!({ "required": self.arg_required, "type": kinds })
    }
}

/// libsinsp's name for a field's value type.
fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::String => "CHARBUF",
        FieldType::Int => "INT64",
        FieldType::Uint => "UINT64",
        FieldType::Bool => "BOOL",
        FieldType::Ip => "IPADDR",
        FieldType::IpNet => "IPNET",
        FieldType::Double => "DOUBLE",
        FieldType::Bytes => "BYTEBUF",
    }
}

/// The field class a field belongs to, as Falco names them: `proc.*` and
/// `thread.*` are the process class, `syscall.type` belongs to evt.
fn class_of(name: &str) -> &str {
    let prefix = name.split('.').next().unwrap_or(name);
    match prefix {
        "proc" | "thread" => "process",
        "syscall" => "evt",
        p => p,
    }
}

/// A field's classes in the order their first fields are listed.
fn classes(fields: &[FieldInfo]) -> Vec<(&str, Vec<&FieldInfo>)> {
    let mut out: Vec<(&str, Vec<&FieldInfo>)> = Vec::new();
    for f in fields {
        let class = class_of(f.name);
        match out.iter_mut().find(|(c, _)| *c == class) {
            Some((_, list)) => list.push(f),
            None => out.push((class, vec![f])),
        }
    }
    out
}

fn argument_json(f: &FieldInfo) -> Value {
    match f.arg {
        None => Value::Null,
        Some(arg) => {
            let kind = if matches!(arg, "index" | "level" | "fd" | "timestamp") {
                "INDEX"
            } else {
                "KEY"
            };
            // Fields whose argument may be left out (ancestors, env, fd types).
            let optional = matches!(
                f.name,
                "proc.aname"
                    | "proc.apid"
                    | "proc.aexepath"
                    | "proc.aexe"
                    | "proc.aargs"
                    | "proc.acmdline"
                    | "proc.aenv"
                    | "proc.env"
                    | "fd.types"
            );
            json!({ "required": !optional, "type": [kind] })
        }
    }
}

/// The listing of the sources named `wanted` (all when empty), or an
/// error naming the sources when none is called that.
pub fn render(wanted: &str, format: ListFormat) -> Result<String, String> {
    render_with_plugins(wanted, format, &[])
}

/// [`render`] with the loaded plugins' field classes after the built-in
/// ones; a plugin's event source is a source `--list` takes.
pub fn render_with_plugins(
    wanted: &str,
    format: ListFormat,
    plugins: &[PluginClass],
) -> Result<String, String> {
    let syscall = SyscallFields::new();
    let k8s = K8sAuditSource::new();
    let mut sources: Vec<(&str, &[FieldInfo])> = Vec::new();
    if wanted.is_empty() || wanted == syscall.name() {
        sources.push((syscall.name(), syscall.fields()));
    }
    if wanted.is_empty() || wanted == k8s.name() {
        sources.push((k8s.name(), k8s.fields()));
    }
    let plugin_classes: Vec<&PluginClass> = plugins
        .iter()
        .filter(|p| wanted.is_empty() || p.sources.iter().any(|s| s == wanted))
        .collect();
    if sources.is_empty() && plugin_classes.is_empty() {
        let mut known: Vec<&str> = vec![syscall.name(), k8s.name()];
        for source in plugins.iter().flat_map(|p| &p.sources) {
            if !known.contains(&source.as_str()) {
                known.push(source);
            }
        }
        return Err(format!(
            "Value for --list must be a valid source type ({}), not '{wanted}'",
            known.join(", ")
        ));
    }
    let mut text = String::new();
    let mut json_classes = Vec::new();
    for (source, fields) in sources {
        for (class, list) in classes(fields) {
            match format {
                ListFormat::Text => {
                    text.push_str(&format!(
                        "Field Class:                  {class} ({source})\n\n"
                    ));
                    for f in &list {
                        let arg = f.arg.map(|a| format!("[{a}]")).unwrap_or_default();
                        text.push_str(&format!(
                            "{}{arg}  ({})\n    {}\n",
                            f.name,
                            type_name(f.ty),
                            f.description
                        ));
                    }
                    text.push('\n');
                }
                ListFormat::Markdown => {
                    text.push_str(&format!("## Field Class: {class}\n\n"));
                    text.push_str("Name | Type | Description\n:----|:-----|:-----------\n");
                    for f in &list {
                        let arg = f.arg.map(|a| format!("[{a}]")).unwrap_or_default();
                        text.push_str(&format!(
                            "`{}{arg}` | {} | {}\n",
                            f.name,
                            type_name(f.ty),
                            f.description
                        ));
                    }
                    text.push('\n');
                }
                ListFormat::Json => {
                    let fields: Vec<Value> = list
                        .iter()
                        .map(|f| {
                            json!({
                                "name": f.name,
                                "type": type_name(f.ty),
                                "desc": f.description,
                                "is_list": f.name == "fd.types",
                                "argument": argument_json(f),
                            })
                        })
                        .collect();
                    json_classes.push(json!({
                        "name": class,
                        "event_sources": [source],
                        "fields": fields,
                    }));
                }
            }
        }
    }
    for class in plugin_classes {
        let name = format!("{} (plugin)", class.plugin);
        match format {
            ListFormat::Text => {
                text.push_str(&format!("Field Class:                  {name}\n"));
                text.push_str(&format!(
                    "Event Sources:                {}\n\n",
                    class.sources.join(" ")
                ));
                for f in &class.fields {
                    let ty = if f.is_list {
                        format!("LIST({})", f.sinsp_type())
                    } else {
                        f.sinsp_type()
                    };
                    text.push_str(&format!(
                        "{}{}  ({ty})\n    {}\n",
                        f.name,
                        f.arg_text(),
                        f.desc
                    ));
                }
                text.push('\n');
            }
            ListFormat::Markdown => {
                text.push_str(&format!("## Field Class: {name}\n\n"));
                text.push_str(&format!("Event Sources: {} \n\n", class.sources.join(" ")));
                text.push_str("Name | Type | Description\n:----|:-----|:-----------\n");
                for f in &class.fields {
                    let ty = if f.is_list {
                        format!("LIST({})", f.sinsp_type())
                    } else {
                        f.sinsp_type()
                    };
                    text.push_str(&format!("`{}` | {ty} | {}\n", f.name, f.desc));
                }
                text.push('\n');
            }
            ListFormat::Json => {
                let fields: Vec<Value> = class
                    .fields
                    .iter()
                    .map(|f| {
                        json!({
                            "name": f.name,
                            "type": f.sinsp_type(),
                            "desc": f.desc,
                            "is_list": f.is_list,
                            "argument": f.argument_json(),
                        })
                    })
                    .collect();
                json_classes.push(json!({
                    "name": name,
                    "event_sources": class.sources,
                    "fields": fields,
                }));
            }
        }
    }
    if format == ListFormat::Json {
        let root = json!({ "fieldclasses": json_classes });
        text = serde_json::to_string_pretty(&root).map_err(|e| e.to_string())?;
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lists_every_field_with_what_it_holds() {
        let text = render("syscall", ListFormat::Json).unwrap();
        let root: Value = serde_json::from_str(&text).unwrap();
        let classes = root["fieldclasses"].as_array().unwrap();
        let names: Vec<&str> = classes
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for class in ["evt", "process", "user", "group", "fd", "fdlist"] {
            assert!(names.contains(&class), "{class} missing from {names:?}");
        }
        let fields: Vec<&Value> = classes
            .iter()
            .flat_map(|c| c["fields"].as_array().unwrap())
            .collect();
        assert_eq!(fields.len(), SyscallFields::new().fields().len());
        for f in &fields {
            let desc = f["desc"].as_str().unwrap();
            assert!(!desc.is_empty() && !desc.contains("not available"), "{f}");
        }
        let aexe = fields.iter().find(|f| f["name"] == "proc.aexe").unwrap();
        assert_eq!(aexe["type"], "CHARBUF");
        assert_eq!(aexe["argument"]["type"][0], "INDEX");
        let sip_name = fields.iter().find(|f| f["name"] == "fd.sip.name").unwrap();
        assert!(sip_name["desc"].as_str().unwrap().contains("rules"));
    }

    #[test]
    fn text_and_markdown_name_each_class_and_unknown_sources_are_errors() {
        let text = render("", ListFormat::Text).unwrap();
        assert!(text.contains("Field Class:                  process (syscall)"));
        assert!(text.contains("ka.verb"));
        let md = render("syscall", ListFormat::Markdown).unwrap();
        assert!(md.contains("## Field Class: fd\n"));
        assert!(md.contains("`proc.aexe[level]` | CHARBUF |"));
        assert!(render("nosuch", ListFormat::Text).is_err());
        assert!(ListFormat::parse("yaml").is_err());
    }

    fn rsource() -> PluginClass {
        PluginClass {
            plugin: "rsource".into(),
            sources: vec!["rsource".into()],
            fields: vec![
                PluginField {
                    name: "rsource.n".into(),
                    type_name: "uint64".into(),
                    is_list: false,
                    arg_required: false,
                    arg_index: false,
                    arg_key: false,
                    desc: "the number".into(),
                },
                PluginField {
                    name: "rsource.char".into(),
                    type_name: "string".into(),
                    is_list: true,
                    arg_required: true,
                    arg_index: true,
                    arg_key: false,
                    desc: "a letter".into(),
                },
            ],
        }
    }

    #[test]
    fn plugin_classes_follow_and_their_sources_are_listable() {
        let plugins = [rsource()];
        let text = render_with_plugins("", ListFormat::Text, &plugins).unwrap();
        let at = text.find("Field Class:                  rsource (plugin)\nEvent Sources:                rsource\n").unwrap();
        assert!(at > text.find("ka.verb").unwrap());
        assert!(text.contains("rsource.char[index]  (LIST(CHARBUF))\n    a letter\n"));
        let only = render_with_plugins("rsource", ListFormat::Text, &plugins).unwrap();
        assert!(only.starts_with("Field Class:                  rsource (plugin)"));
        assert!(!only.contains("proc.name"));
        let json: Value = serde_json::from_str(
            &render_with_plugins("rsource", ListFormat::Json, &plugins).unwrap(),
        )
        .unwrap();
        let class = &json["fieldclasses"][0];
        assert_eq!(class["name"], "rsource (plugin)");
        assert_eq!(class["event_sources"][0], "rsource");
        assert_eq!(class["fields"][1]["argument"]["type"][0], "INDEX");
        assert_eq!(class["fields"][0]["argument"], Value::Null);
        let err = render_with_plugins("x", ListFormat::Text, &plugins).unwrap_err();
        assert!(err.contains("(syscall, k8s_audit, rsource)"), "{err}");
    }
}
