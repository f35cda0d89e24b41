//! The format of the listings (`--list`, `--list-events`): Falco's
//! `--format`, and its deprecated `--markdown`.

/// How `--list` and `--list-events` print.
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

/// The listing format the command line asks for: `--format`, or Falco's
/// deprecated `--markdown` (with a warning to print); both at once are
/// refused, as Falco refuses them.
pub fn format_from_args(
    format: Option<&str>,
    markdown: bool,
) -> Result<(ListFormat, Option<&'static str>), String> {
    match (format, markdown) {
        (Some(_), true) => {
            Err("Cannot specify both --markdown and --format options together".into())
        }
        (Some(text), false) => Ok((ListFormat::parse(text)?, None)),
        (None, true) => Ok((
            ListFormat::Markdown,
            Some("--markdown is deprecated, as in Falco: use --format markdown instead"),
        )),
        (None, false) => Ok((ListFormat::Text, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_is_deprecated_and_not_with_format() {
        assert_eq!(
            format_from_args(None, false).unwrap(),
            (ListFormat::Text, None)
        );
        let (format, warning) = format_from_args(None, true).unwrap();
        assert_eq!(format, ListFormat::Markdown);
        assert!(warning.unwrap().contains("deprecated"));
        assert_eq!(
            format_from_args(Some("json"), false).unwrap().0,
            ListFormat::Json
        );
        assert!(format_from_args(Some("json"), true)
            .unwrap_err()
            .contains("both --markdown and --format"));
        assert!(format_from_args(Some("yaml"), false).is_err());
    }
}
