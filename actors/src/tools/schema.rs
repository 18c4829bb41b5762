//! Tool arguments: declared once, shown to the model and enforced from the same declaration.
//!
//! An argument struct derives `Deserialize` and `JsonSchema`. Its limits are attributes on its
//! fields — `#[schemars(length(min = 1, max = 300))]`, `#[schemars(range(min = 1, max = 5))]` —
//! what may be left out is `Option`, and the doc comment of a field is what the model reads
//! about it. [`schema_of`] derives the JSON schema the model is shown; [`parse_args`] checks
//! the model's arguments against that very schema ([`check`]) before serde reads them. So the
//! schema and the checks cannot drift apart: there is nothing to keep in step.
//!
//! Three rules of reading, because tools use what they get trimmed and serde reads `null` as
//! `None`:
//! * lengths count characters after trimming surrounding whitespace (`"  "` is empty);
//! * `null` for an argument that may be left out counts as leaving it out;
//! * `format` (`email`) is a hint to the model, not checked here: the tool checks the value
//!   with its own rules and says what is wrong.
//!
//! The checker knows exactly the keywords the derived schemas use ([`KEYWORDS`]); the tools'
//! tests refuse a schema with any other, so a new kind of limit cannot go unenforced.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::ToolError;

/// The keywords a tool's argument schema may use, all of them understood by [`check`].
pub const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "description",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "enum",
    "format",
];

/// The JSON schema of `T` as tools show it to a model: an object schema with its properties
/// inline, `additionalProperties: false` when `T` denies unknown fields, no `$schema`, title or
/// definitions, and optional properties typed as their value (not `[type, "null"]`).
pub fn schema_of<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.meta_schema = None;
            s.inline_subschemas = true;
        })
        .into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Some(root) = schema.as_object_mut() {
        for noise in ["$schema", "title", "description"] {
            root.remove(noise);
        }
        // A tool without arguments still says it takes an (empty) object.
        let properties = root
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(properties) = properties.as_object_mut() {
            properties.values_mut().for_each(tidy_property);
        }
    }
    schema
}

/// One property as the model reads it: `Option`'s `null` and serde defaults left out (leaving
/// the argument out says the same), and no Rust-specific formats (`uint32`).
fn tidy_property(property: &mut Value) {
    let Some(p) = property.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = p.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            p.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(options)) = p.get_mut("enum") {
        options.retain(|o| !o.is_null());
    }
    if p.get("default").is_some_and(Value::is_null) {
        p.remove("default");
    }
    if p.get("format").is_some_and(|f| f != "email") {
        p.remove("format");
    }
}

/// Parses a tool's arguments into its typed struct: first checked against the struct's own
/// schema (see the module doc), then read by serde (which denies unknown fields as well).
pub fn parse_args<T: DeserializeOwned + JsonSchema>(args: Value) -> Result<T, ToolError> {
    check(&schema_of::<T>(), &args).map_err(ToolError::InvalidArguments)?;
    serde_json::from_value(args).map_err(|e| ToolError::InvalidArguments(e.to_string()))
}

/// Holds `args` against an object `schema` (the subset of JSON Schema in [`KEYWORDS`]). The
/// error is a sentence the model can act on.
pub fn check(schema: &Value, args: &Value) -> Result<(), String> {
    let Some(args) = args.as_object() else {
        return Err("the arguments must be a JSON object".into());
    };
    let empty = Map::new();
    let properties = schema["properties"].as_object().unwrap_or(&empty);
    for (name, value) in args {
        match properties.get(name) {
            Some(property) if !value.is_null() => check_value(name, property, value)?,
            Some(_) => {}
            None if schema["additionalProperties"] == false => {
                return Err(unknown(name, properties));
            }
            None => {}
        }
    }
    let required = schema["required"].as_array().map(Vec::as_slice);
    for name in required
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
    {
        if args.get(name).is_none_or(Value::is_null) {
            return Err(format!("missing field `{name}`"));
        }
    }
    Ok(())
}

fn unknown(name: &str, properties: &Map<String, Value>) -> String {
    let name: String = name.chars().take(64).collect();
    if properties.is_empty() {
        return format!("unknown field `{name}`: this tool takes no arguments");
    }
    let known: Vec<String> = properties.keys().map(|k| format!("`{k}`")).collect();
    format!(
        "unknown field `{name}`; the arguments are {}",
        known.join(", ")
    )
}

/// One present, non-null argument against its property schema.
fn check_value(name: &str, property: &Value, value: &Value) -> Result<(), String> {
    match property["type"].as_str() {
        Some("string") => {
            let Some(text) = value.as_str() else {
                return Err(format!("`{name}` must be a string"));
            };
            let chars = text.trim().chars().count() as u64;
            let (min, max) = (
                property["minLength"].as_u64(),
                property["maxLength"].as_u64(),
            );
            if min.is_some_and(|m| chars < m) || max.is_some_and(|m| chars > m) {
                return Err(match (min, max) {
                    (Some(min), Some(max)) => format!("`{name}` must be {min} to {max} characters"),
                    (Some(1), None) => format!("`{name}` must not be empty"),
                    (Some(min), None) => format!("`{name}` must be at least {min} characters"),
                    (None, _) => {
                        format!("`{name}` must be at most {} characters", max.unwrap_or(0))
                    }
                });
            }
        }
        Some(kind @ ("integer" | "number")) => {
            let number = match kind {
                "integer" => value
                    .as_i64()
                    .map(|i| i as f64)
                    .or(value.as_u64().map(|u| u as f64)),
                _ => value.as_f64(),
            };
            let Some(number) = number else {
                let kind = if kind == "integer" {
                    "an integer"
                } else {
                    "a number"
                };
                return Err(format!("`{name}` must be {kind}"));
            };
            let (min, max) = (property["minimum"].as_f64(), property["maximum"].as_f64());
            if min.is_some_and(|m| number < m) || max.is_some_and(|m| number > m) {
                return Err(match (min, max) {
                    (Some(min), Some(max)) => format!("`{name}` must be between {min} and {max}"),
                    (Some(min), None) => format!("`{name}` must be at least {min}"),
                    (None, _) => format!("`{name}` must be at most {}", max.unwrap_or(0.0)),
                });
            }
        }
        Some("boolean") if !value.is_boolean() => {
            return Err(format!("`{name}` must be true or false"))
        }
        _ => {}
    }
    if let Some(options) = property["enum"].as_array() {
        if !options.contains(value) {
            let options: Vec<String> = options.iter().map(Value::to_string).collect();
            return Err(format!("`{name}` must be one of {}", options.join(", ")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    /// Every kind of limit the checker knows, on one struct.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        /// What to look for.
        #[schemars(length(min = 1, max = 5))]
        text: String,
        #[schemars(range(min = 1, max = 3))]
        count: Option<u32>,
        #[schemars(length(max = 4))]
        note: Option<String>,
        #[schemars(email)]
        email: Option<String>,
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        Fast,
        Slow,
    }

    #[test]
    fn the_schema_is_clean_for_function_calling() {
        let s = schema_of::<Sample>();
        assert_eq!(
            s,
            json!({
                "type": "object",
                "properties": {
                    "text": {"type": "string", "minLength": 1, "maxLength": 5, "description": "What to look for."},
                    "count": {"type": "integer", "minimum": 1, "maximum": 3},
                    "note": {"type": "string", "maxLength": 4},
                    "email": {"type": "string", "format": "email"},
                    "mode": {"type": "string", "enum": ["fast", "slow"]},
                },
                "required": ["text"],
                "additionalProperties": false,
            })
        );
        #[derive(Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        struct Nothing {}
        assert_eq!(
            schema_of::<Nothing>(),
            json!({"type": "object", "properties": {}, "additionalProperties": false})
        );
    }

    #[test]
    fn arguments_are_held_to_the_schema() {
        let ok = |v: Value| {
            parse_args::<Sample>(v)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(ok(json!({"text": "abcde"})), Ok(()));
        assert_eq!(
            ok(json!({"text": " abcde  ", "count": 3, "note": null})),
            Ok(())
        );
        assert_eq!(
            ok(json!({"text": "x", "mode": "slow", "email": "a@b.co"})),
            Ok(())
        );
        for (bad, says) in [
            (
                json!({"text": "abcdef"}),
                "`text` must be 1 to 5 characters",
            ),
            (json!({"text": "   "}), "`text` must be 1 to 5 characters"),
            (json!({"text": 5}), "`text` must be a string"),
            (json!({}), "missing field `text`"),
            (json!({"text": null}), "missing field `text`"),
            (
                json!({"text": "x", "count": 0}),
                "`count` must be between 1 and 3",
            ),
            (
                json!({"text": "x", "count": 4}),
                "`count` must be between 1 and 3",
            ),
            (
                json!({"text": "x", "count": 1.5}),
                "`count` must be an integer",
            ),
            (
                json!({"text": "x", "note": "12345"}),
                "`note` must be at most 4 characters",
            ),
            (
                json!({"text": "x", "mode": "odd"}),
                "`mode` must be one of \"fast\", \"slow\"",
            ),
            (
                json!({"text": "x", "tenant_id": "t"}),
                "unknown field `tenant_id`",
            ),
            (json!([1]), "the arguments must be a JSON object"),
        ] {
            let e = ok(bad.clone()).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
