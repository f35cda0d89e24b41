//! `peregrine --list [SOURCE] [--format text|markdown|json]`: every field
//! rules can use, grouped by field class as Falco groups them, each with
//! its type, argument and what it holds. The loaded plugins' fields follow,
//! one class per plugin named as libsinsp names it (`NAME (plugin)`), with
//! the event sources its fields apply to.

use peregrine_engine::field::{FieldInfo, FieldSource, FieldType};
use peregrine_engine::k8s_audit::K8sAuditSource;
use peregrine_engine::syscall_fields::{SyscallFields, DEPRECATED};
use serde_json::{json, Value};

pub use super::list_format::ListFormat;

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

    fn argument(&self) -> Option<Argument> {
        (self.arg_index || self.arg_key).then_some(Argument {
            required: self.arg_required,
            index: self.arg_index,
            key: self.arg_key,
        })
    }
}

/// The argument a field takes in brackets, as libsinsp describes it.
#[derive(Debug, Clone, Copy)]
struct Argument {
    required: bool,
    /// A position (`proc.aname[2]`).
    index: bool,
    /// A name (`evt.arg[fd]`).
    key: bool,
}

impl Argument {
    fn json(self) -> Value {
        let mut kinds = Vec::new();
        if self.index {
            kinds.push("INDEX");
        }
        if self.key {
            kinds.push("KEY");
        }
        json!({ "required": self.required, "type": kinds })
    }

    /// libsinsp's tags for it.
    fn tags(self) -> impl Iterator<Item = &'static str> {
        let required = if self.required {
            "ARG_REQUIRED"
        } else {
            "ARG_ALLOWED"
        };
        [
            Some(required),
            self.index.then_some("ARG_INDEX"),
            self.key.then_some("ARG_KEY"),
        ]
        .into_iter()
        .flatten()
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
fn classes<'f>(
    fields: impl IntoIterator<Item = &'f FieldInfo>,
) -> Vec<(&'f str, Vec<&'f FieldInfo>)> {
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

fn argument_of(f: &FieldInfo) -> Option<Argument> {
    f.arg.map(|arg| {
        let index = matches!(arg, "index" | "level" | "fd" | "timestamp");
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
        Argument {
            required: !optional,
            index,
            key: !index,
        }
    })
}

/// What `--list` prints besides its format: Falco's `-N` (names only, one
/// per line) and `-v` (each field's type before its description).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOptions {
    pub format: ListFormat,
    pub names_only: bool,
    pub verbose: bool,
}

impl From<ListFormat> for ListOptions {
    fn from(format: ListFormat) -> Self {
        ListOptions {
            format,
            names_only: false,
            verbose: false,
        }
    }
}

/// One field class as every format prints it.
struct Class {
    name: String,
    /// A few words after the name in the text header, as libsinsp's
    /// short description.
    about: Option<&'static str>,
    sources: Vec<String>,
    fields: Vec<Listed>,
}

/// One field as every format prints it.
struct Listed {
    name: String,
    /// libsinsp's type name (of each value, for a list).
    type_name: String,
    desc: String,
    is_list: bool,
    argument: Option<Argument>,
}

impl Listed {
    /// The type as the text and markdown listings show it.
    fn shown_type(&self) -> String {
        if self.is_list {
            format!("LIST({})", self.type_name)
        } else {
            self.type_name.clone()
        }
    }

    /// libsinsp's field tags, sorted as its tag set sorts them; the text
    /// listing puts them before the description.
    fn tags(&self) -> Vec<&'static str> {
        let mut tags: Vec<&'static str> =
            self.argument.into_iter().flat_map(Argument::tags).collect();
        if self.is_list {
            tags.push("EPF_IS_LIST");
        }
        tags.sort_unstable();
        tags
    }
}

/// Our own few words on each built-in class, for the text header.
fn class_about(class: &str) -> Option<&'static str> {
    Some(match class {
        "evt" => "every event",
        "process" => "the process and thread of the event",
        "user" => "the user the process runs as",
        "group" => "the group the process runs as",
        "fd" => "the file or socket the event acts on",
        "fdlist" => "the fds of poll and select",
        "fs" => "paths of file system calls",
        "container" => "the container of the process",
        "k8s" => "the Kubernetes pod of the container",
        "ka" => "Kubernetes audit events",
        "jevt" => "the audit event as JSON",
        _ => return None,
    })
}

/// The built-in and plugin classes of the sources named `wanted` (all
/// when empty), or an error naming the sources when none is called that.
fn listed_classes(wanted: &str, plugins: &[PluginClass]) -> Result<Vec<Class>, String> {
    let syscall = SyscallFields::new();
    let k8s = K8sAuditSource::new();
    let mut sources: Vec<(&str, &[FieldInfo], &[&str])> = Vec::new();
    if wanted.is_empty() || wanted == syscall.name() {
        sources.push((syscall.name(), syscall.fields(), DEPRECATED));
    }
    if wanted.is_empty() || wanted == k8s.name() {
        sources.push((k8s.name(), k8s.fields(), &[]));
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
    let mut out = Vec::new();
    for (source, fields, deprecated) in sources {
        let listed = fields.iter().filter(|f| !deprecated.contains(&f.name));
        for (class, list) in classes(listed) {
            out.push(Class {
                name: class.to_string(),
                about: class_about(class),
                sources: vec![source.to_string()],
                fields: list
                    .iter()
                    .map(|f| Listed {
                        name: f.name.to_string(),
                        type_name: type_name(f.ty).to_string(),
                        desc: f.description.to_string(),
                        is_list: f.name == "fd.types",
                        argument: argument_of(f),
                    })
                    .collect(),
            });
        }
    }
    for class in plugin_classes {
        out.push(Class {
            name: format!("{} (plugin)", class.plugin),
            about: None,
            sources: class.sources.clone(),
            fields: class
                .fields
                .iter()
                .map(|f| Listed {
                    name: f.name.clone(),
                    type_name: f.sinsp_type(),
                    desc: f.desc.clone(),
                    is_list: f.is_list,
                    argument: f.argument(),
                })
                .collect(),
        });
    }
    Ok(out)
}

/// Where libsinsp's text listing starts the right column, and how wide
/// its lines get.
const RIGHT_COLUMN: usize = 30;
const LINE_WIDTH: usize = 120;

/// `text` word by word, a new line (indented to the right column) before
/// a word that would pass the line's width; each word followed by a space,
/// as libsinsp wraps.
fn wrap_into(out: &mut String, text: &str) {
    let mut len = 0;
    for word in text.split_whitespace() {
        let width = word.chars().count() + 1;
        if len + width <= LINE_WIDTH - RIGHT_COLUMN {
            len += width;
        } else {
            out.push('\n');
            out.push_str(&" ".repeat(RIGHT_COLUMN));
            len = width;
        }
        out.push_str(word);
        out.push(' ');
    }
}

/// `label` padded to the right column.
fn left_column(out: &mut String, label: &str) {
    out.push_str(&format!("{label:<RIGHT_COLUMN$}"));
}

fn text_class(out: &mut String, class: &Class, verbose: bool) {
    out.push_str("-------------------------------\n");
    left_column(out, "Field Class:");
    out.push_str(&class.name);
    if let Some(about) = class.about {
        out.push_str(&format!(" ({about})"));
    }
    out.push('\n');
    left_column(out, "Event Sources:");
    for source in &class.sources {
        out.push_str(source);
        out.push(' ');
    }
    out.push_str("\n\n");
    for f in &class.fields {
        if f.name.chars().count() > RIGHT_COLUMN {
            out.push_str(&f.name);
            out.push('\n');
            left_column(out, " ");
        } else {
            left_column(out, &f.name);
        }
        let mut desc = f.desc.clone();
        let tags = f.tags();
        if !tags.is_empty() {
            desc = format!("({}) {desc}", tags.join(","));
        }
        if verbose {
            desc = format!("(Type: {}) {desc}", f.shown_type());
        }
        wrap_into(out, &desc);
        out.push('\n');
    }
    // Falco prints each class with a line of its own after it.
    out.push('\n');
}

fn markdown_class(out: &mut String, class: &Class) {
    out.push_str(&format!("## Field Class: {}\n\n", class.name));
    out.push_str("Event Sources: ");
    for source in &class.sources {
        out.push_str(source);
        out.push(' ');
    }
    out.push_str("\n\n");
    out.push_str("Name | Type | Description\n:----|:-----|:-----------\n");
    for f in &class.fields {
        out.push_str(&format!("`{}` | {} | {}\n", f.name, f.shown_type(), f.desc));
    }
    out.push('\n');
}

fn json_class(class: &Class) -> Value {
    let fields: Vec<Value> = class
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "type": f.type_name,
                "desc": f.desc,
                "is_list": f.is_list,
                "argument": f.argument.map_or(Value::Null, Argument::json),
            })
        })
        .collect();
    json!({
        "name": class.name,
        "event_sources": class.sources,
        "fields": fields,
    })
}

/// The listing of the sources named `wanted` (all when empty), or an
/// error naming the sources when none is called that.
pub fn render(wanted: &str, format: ListFormat) -> Result<String, String> {
    render_with_plugins(wanted, format.into(), &[])
}

/// [`render`] with the loaded plugins' field classes after the built-in
/// ones; a plugin's event source is a source `--list` takes.
pub fn render_with_plugins(
    wanted: &str,
    options: ListOptions,
    plugins: &[PluginClass],
) -> Result<String, String> {
    let classes = listed_classes(wanted, plugins)?;
    let mut text = String::new();
    if options.names_only {
        // A field with an argument is listed once by its name alone
        // (`evt.arg`, whether it takes a name or a position).
        let mut seen = std::collections::HashSet::new();
        let names: Vec<&str> = classes
            .iter()
            .flat_map(|c| &c.fields)
            .map(|f| f.name.split('[').next().unwrap_or(&f.name))
            .filter(|name| seen.insert(*name))
            .collect();
        if options.format == ListFormat::Json {
            text = serde_json::to_string_pretty(&json!({ "fieldnames": names }))
                .map_err(|e| e.to_string())?;
            text.push('\n');
        } else {
            for name in names {
                text.push_str(name);
                text.push('\n');
            }
        }
        return Ok(text);
    }
    match options.format {
        ListFormat::Text => {
            for class in &classes {
                text_class(&mut text, class, options.verbose);
            }
        }
        ListFormat::Markdown => {
            for class in &classes {
                markdown_class(&mut text, class);
            }
        }
        ListFormat::Json => {
            let classes: Vec<Value> = classes.iter().map(json_class).collect();
            let root = json!({ "fieldclasses": classes });
            text = serde_json::to_string_pretty(&root).map_err(|e| e.to_string())?;
            text.push('\n');
        }
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
        assert_eq!(
            fields.len(),
            SyscallFields::new().fields().len() - DEPRECATED.len()
        );
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
        assert!(text.contains(
            "-------------------------------\nField Class:                  process (the process and thread of the event)\nEvent Sources:                syscall \n\n"
        ));
        assert!(text.contains("\nka.verb                       "));
        // A blank line after each class, before the next one's rule.
        assert!(text
            .contains(" \n\n-------------------------------\nField Class:                  user "));
        let md = render("syscall", ListFormat::Markdown).unwrap();
        assert!(md.contains("## Field Class: fd\n\nEvent Sources: syscall \n\nName | Type"));
        assert!(md.contains("\n`proc.aexe` | CHARBUF |"));
        assert!(md.contains("\n`fd.types` | LIST(CHARBUF) |"));
        assert!(render("nosuch", ListFormat::Text).is_err());
        assert!(ListFormat::parse("yaml").is_err());
    }

    #[test]
    fn text_lines_are_libsinsps_columns_wrapped_at_120() {
        let text = render("syscall", ListFormat::Text).unwrap();
        for line in text.lines().filter(|l| !l.starts_with("Field Class:")) {
            // A word longer than the column would pass it, as in libsinsp.
            let words_fit = line.split_whitespace().all(|w| w.len() < 90);
            assert!(!words_fit || line.chars().count() <= 120, "{line:?}");
        }
        // A description too long for one line goes on under column 30.
        let long = text
            .lines()
            .zip(text.lines().skip(1))
            .find(|(_, next)| next.starts_with(&" ".repeat(30)))
            .expect("some description wraps");
        assert!(long.0.len() > 100, "{long:?}");
        // Arguments as tags, sorted as libsinsp's tag set sorts them.
        assert!(
            text.contains("\nproc.aname                    (ARG_ALLOWED,ARG_INDEX) "),
            "{text}"
        );
        assert!(
            text.contains("\nfd.types                      (ARG_ALLOWED,ARG_INDEX,EPF_IS_LIST) ")
        );
    }

    #[test]
    fn names_only_and_verbose_are_falcos_n_and_v() {
        let options = |names_only, verbose| ListOptions {
            format: ListFormat::Text,
            names_only,
            verbose,
        };
        let names = render_with_plugins("syscall", options(true, false), &[]).unwrap();
        let names: Vec<&str> = names.lines().collect();
        assert!(names.contains(&"proc.name") && names.contains(&"evt.arg"));
        assert!(names.iter().all(|n| !n.contains(['[', ' '])), "{names:?}");
        let unique: std::collections::HashSet<&&str> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        let json: Value = serde_json::from_str(
            &render_with_plugins(
                "syscall",
                ListOptions {
                    format: ListFormat::Json,
                    names_only: true,
                    verbose: false,
                },
                &[],
            )
            .unwrap(),
        )
        .unwrap();
        let listed = json["fieldnames"].as_array().unwrap();
        assert_eq!(listed.len(), names.len());
        assert_eq!(listed[0], names[0]);
        let verbose = render_with_plugins("syscall", options(false, true), &[]).unwrap();
        assert!(
            verbose.contains("\nproc.pid                      (Type: INT64) "),
            "{verbose}"
        );
        assert!(verbose.contains("(Type: LIST(CHARBUF)) (ARG_ALLOWED,ARG_INDEX,EPF_IS_LIST) "));
    }

    #[test]
    fn deprecated_fields_are_left_out_of_every_listing_as_libsinsp_does() {
        for format in [ListFormat::Text, ListFormat::Markdown, ListFormat::Json] {
            for names_only in [false, true] {
                let options = ListOptions {
                    format,
                    names_only,
                    verbose: false,
                };
                let listed = render_with_plugins("", options, &[]).unwrap();
                assert!(listed.contains("evt.type"), "{listed}");
                for name in ["evt.dir", "evt.latency", "evt.wait_latency"] {
                    let quoted = format!("\"{name}\"");
                    let as_line = |l: &str| {
                        l == name || l.starts_with(&format!("{name} ")) || l.contains(&quoted)
                    };
                    assert!(
                        !listed
                            .lines()
                            .any(|l| as_line(l) || l.starts_with(&format!("`{name}`"))),
                        "{name} listed in {format:?} (names only: {names_only})"
                    );
                }
            }
        }
        // Conditions still take them.
        let fields = SyscallFields::new();
        assert!(fields
            .fields()
            .iter()
            .any(|f| f.name == "evt.latency.quantized"));
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
        let text = render_with_plugins("", ListFormat::Text.into(), &plugins).unwrap();
        let at = text.find("Field Class:                  rsource (plugin)\nEvent Sources:                rsource \n").unwrap();
        assert!(at > text.find("ka.verb").unwrap());
        assert!(text.contains(
            "\nrsource.char                  (ARG_INDEX,ARG_REQUIRED,EPF_IS_LIST) a letter \n"
        ));
        let only = render_with_plugins("rsource", ListFormat::Text.into(), &plugins).unwrap();
        assert!(only.starts_with(
            "-------------------------------\nField Class:                  rsource (plugin)"
        ));
        assert!(!only.contains("proc.name"));
        let md = render_with_plugins("rsource", ListFormat::Markdown.into(), &plugins).unwrap();
        assert!(
            md.contains("\n`rsource.char` | LIST(CHARBUF) | a letter\n"),
            "{md}"
        );
        let json: Value = serde_json::from_str(
            &render_with_plugins("rsource", ListFormat::Json.into(), &plugins).unwrap(),
        )
        .unwrap();
        let class = &json["fieldclasses"][0];
        assert_eq!(class["name"], "rsource (plugin)");
        assert_eq!(class["event_sources"][0], "rsource");
        assert_eq!(class["fields"][1]["argument"]["type"][0], "INDEX");
        assert_eq!(class["fields"][0]["argument"], Value::Null);
        assert_eq!(class["fields"][1]["type"], "CHARBUF");
        assert_eq!(class["fields"][1]["is_list"], true);
        let err = render_with_plugins("x", ListFormat::Text.into(), &plugins).unwrap_err();
        assert!(err.contains("(syscall, k8s_audit, rsource)"), "{err}");
    }
}
