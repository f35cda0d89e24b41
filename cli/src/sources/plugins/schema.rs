//! The part of JSON Schema that plugins' init schemas use, to check an
//! init config before `plugin_init` as Falco does: `type`, `properties`,
//! `required`, `additionalProperties`, `items`, `enum`, `minimum`,
//! `maximum`, `minLength`, `maxLength`. Other keywords are not checked;
//! the plugin still sees the config and may refuse it itself.

use serde_json::Value;

/// Checks `value` against `schema`; the error names the path to the first
/// value that does not fit (`/sslCertificate`).
pub fn validate(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Ok(()); // `true`/`{}`-like schemas accept everything
    };
    let at = if path.is_empty() { "/" } else { path };
    if let Some(wanted) = schema.get("type") {
        let names: Vec<&str> = match wanted {
            Value::String(name) => vec![name.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.is_empty() && !names.iter().any(|name| has_type(value, name)) {
            return Err(format!(
                "{at}: expected {}, found {}",
                names.join(" or "),
                type_of(value)
            ));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of the allowed values"));
        }
    }
    if let Some(number) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if number < min {
                return Err(format!("{at}: {number} is below the minimum {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if number > max {
                return Err(format!("{at}: {number} is above the maximum {max}"));
            }
        }
    }
    if let Some(text) = value.as_str() {
        let length = text.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if length < min {
                return Err(format!("{at}: string shorter than {min}"));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if length > max {
                return Err(format!("{at}: string longer than {max}"));
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    return Err(format!("{at}: required property '{name}' is missing"));
                }
            }
        }
        for (name, member) in object {
            let child = format!("{path}/{name}");
            match properties.and_then(|p| p.get(name)) {
                Some(member_schema) => validate(member_schema, member, &child)?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        return Err(format!("{at}: property '{name}' is not allowed"))
                    }
                    Some(extra @ Value::Object(_)) => validate(extra, member, &child)?,
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (index, item) in array.iter().enumerate() {
            validate(items, item, &format!("{path}/{index}"))?;
        }
    }
    Ok(())
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_types_required_and_extra_properties() {
        let schema = json!({
            "type": "object",
            "properties": {
                "maxEvents": {"type": "integer", "minimum": 1},
                "mode": {"type": "string", "enum": ["a", "b"]}
            },
            "required": ["mode"],
            "additionalProperties": false
        });
        assert!(validate(&schema, &json!({"mode": "a", "maxEvents": 3}), "").is_ok());
        let missing = validate(&schema, &json!({"maxEvents": 3}), "").unwrap_err();
        assert!(missing.contains("'mode'"), "{missing}");
        let wrong = validate(&schema, &json!({"mode": "a", "maxEvents": "3"}), "").unwrap_err();
        assert!(wrong.starts_with("/maxEvents"), "{wrong}");
        assert!(validate(&schema, &json!({"mode": "c"}), "").is_err());
        assert!(validate(&schema, &json!({"mode": "a", "maxEvents": 0}), "").is_err());
        assert!(validate(&schema, &json!({"mode": "a", "x": 1}), "").is_err());
        assert!(validate(&schema, &json!([1]), "").is_err());
    }
}
