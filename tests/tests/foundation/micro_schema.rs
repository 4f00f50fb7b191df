//! A validator for the NATS micro v1 JSON schemas (`tests/schemas/micro-v1/`), implementing
//! just the draft-07 subset those schemas use: `type`, `const`, `required`, `properties`,
//! `additionalProperties`, `items`, `oneOf`, `minLength`, `minimum`, `maximum`,
//! `format: date-time`, and their two `pattern`s (names and SemVer), checked by hand since the
//! workspace has no regex or JSON Schema crate. Any other keyword or pattern is reported as a
//! violation, so a schema update cannot be half-checked silently. Included by `discovery.rs`.

use std::path::Path;

use serde_json::Value;

/// A schema from `tests/schemas/micro-v1/`.
pub fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas/micro-v1")
        .join(format!("{name}_response.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not JSON: {err}", path.display()))
}

/// Panics with every violation if `document` does not validate against the micro schema of
/// `verb` (`"ping"`, `"info"`, `"stats"`).
pub fn assert_valid(verb: &str, document: &Value) {
    let mut errors = Vec::new();
    validate(&schema(verb), document, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "{verb} reply violates the micro v1 schema:\n  {}\ndocument: {document:#}",
        errors.join("\n  ")
    );
}

/// The `^[a-zA-Z0-9_-]+$` pattern of names in the micro schemas.
const NAME_PATTERN: &str = "^[a-zA-Z0-9_-]+$";
/// How the SemVer 2.0 pattern of the micro schemas starts.
const SEMVER_PATTERN_PREFIX: &str = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)";

/// Validates `value` against `schema` (the subset in the module docs), appending one message per
/// violation to `errors`, each prefixed with the JSON path (`$.endpoints[0].name`).
pub fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        errors.push(format!("{path}: schema is not an object"));
        return;
    };
    for (keyword, arg) in schema {
        match keyword.as_str() {
            "$schema" | "$id" | "title" | "description" => {}
            "type" => {
                let types: Vec<&str> = match arg {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if !types.iter().any(|t| has_type(value, t)) {
                    errors.push(format!("{path}: expected type {arg}, got {value}"));
                }
            }
            "const" if value != arg => errors.push(format!("{path}: expected {arg}, got {value}")),
            "const" => {}
            "required" => {
                for name in arg
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if value.as_object().is_some_and(|o| !o.contains_key(name)) {
                        errors.push(format!("{path}: missing required property {name:?}"));
                    }
                }
            }
            "properties" => {
                if let (Some(props), Some(object)) = (arg.as_object(), value.as_object()) {
                    for (name, sub) in props {
                        if let Some(v) = object.get(name) {
                            validate(sub, v, &format!("{path}.{name}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                let known = schema.get("properties").and_then(Value::as_object);
                for (name, v) in value.as_object().into_iter().flatten() {
                    if known.is_some_and(|k| k.contains_key(name)) {
                        continue;
                    }
                    match arg {
                        Value::Bool(true) => {}
                        Value::Bool(false) => {
                            errors.push(format!("{path}: unexpected property {name:?}"));
                        }
                        sub => validate(sub, v, &format!("{path}.{name}"), errors),
                    }
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    validate(arg, item, &format!("{path}[{i}]"), errors);
                }
            }
            "oneOf" => {
                let matching = arg
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|sub| {
                        let mut sub_errors = Vec::new();
                        validate(sub, value, path, &mut sub_errors);
                        sub_errors.is_empty()
                    })
                    .count();
                if matching != 1 {
                    errors.push(format!(
                        "{path}: {value} matches {matching} of the oneOf schemas, not exactly 1"
                    ));
                }
            }
            "minLength" => {
                let min = arg.as_u64().unwrap_or(0);
                if let Some(s) = value.as_str()
                    && (s.chars().count() as u64) < min
                {
                    errors.push(format!("{path}: {s:?} is shorter than {min}"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(bound), Some(n)) = (arg.as_f64(), value.as_f64()) {
                    let ok = if keyword == "minimum" {
                        n >= bound
                    } else {
                        n <= bound
                    };
                    if !ok {
                        errors.push(format!("{path}: {n} violates {keyword} {bound}"));
                    }
                }
            }
            "pattern" => {
                let Some(s) = value.as_str() else { continue };
                let pattern = arg.as_str().unwrap_or_default();
                let ok = if pattern == NAME_PATTERN {
                    is_name(s)
                } else if pattern.starts_with(SEMVER_PATTERN_PREFIX) {
                    is_semver(s)
                } else {
                    errors.push(format!("{path}: unsupported pattern {pattern:?}"));
                    continue;
                };
                if !ok {
                    errors.push(format!("{path}: {s:?} does not match {pattern:?}"));
                }
            }
            "format" if arg == "date-time" => {
                if let Some(s) = value.as_str()
                    && !is_rfc3339(s)
                {
                    errors.push(format!("{path}: {s:?} is not an RFC 3339 date-time"));
                }
            }
            other => errors.push(format!(
                "{path}: schema keyword {other:?} ({arg}) is not supported by this validator"
            )),
        }
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// SemVer 2.0: `MAJOR.MINOR.PATCH[-pre.release][+build.meta]`, no leading zeros.
pub fn is_semver(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    let ident = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && (!p.bytes().all(|b| b.is_ascii_digit()) || numeric(p))
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|p| p.split('.').all(ident))
        && build.is_none_or(|b| {
            b.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
        })
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|d| d.len() == range.len() && d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: &[u8]| b.get(i).is_some_and(|x| c.contains(x));
    if !(digits(0..4)
        && at(4, b"-")
        && digits(5..7)
        && at(7, b"-")
        && digits(8..10)
        && at(10, b"Tt")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            i + 6 == b.len() && digits(i + 1..i + 3) && at(i + 3, b":") && digits(i + 4..i + 6)
        }
        _ => false,
    }
}

#[test]
fn the_validator_rejects_what_the_schemas_forbid() {
    let ping = serde_json::json!({
        "type": "io.nats.micro.v1.ping_response",
        "name": "echo", "id": "abc", "version": "0.1.0", "metadata": {"k": "v"}
    });
    assert_valid("ping", &ping);
    let mut errors = Vec::new();
    let bad = serde_json::json!({
        "type": "io.nats.micro.v1.info_response",
        "name": "orders.get", "version": "1.0", "metadata": {"k": 1}
    });
    validate(&schema("ping"), &bad, "$", &mut errors);
    let all = errors.join("\n");
    for expected in [
        "\"id\"",
        "io.nats.micro.v1.ping_response",
        "orders.get",
        "1.0",
        "oneOf",
    ] {
        assert!(all.contains(expected), "no error about {expected}:\n{all}");
    }
    let stats = serde_json::json!({
        "type": "io.nats.micro.v1.stats_response",
        "name": "echo", "id": "abc", "version": "0.1.0", "started": "yesterday",
        "endpoints": [{"name": "echo", "subject": "plantd.echo.echo", "num_requests": "1"}]
    });
    let mut errors = Vec::new();
    validate(&schema("stats"), &stats, "$", &mut errors);
    let all = errors.join("\n");
    for expected in [
        "yesterday",
        "num_requests",
        "\"num_errors\"",
        "\"last_error\"",
    ] {
        assert!(all.contains(expected), "no error about {expected}:\n{all}");
    }
    assert!(is_rfc3339("2026-11-25T11:53:19.174804816Z"));
    assert!(is_rfc3339("2026-11-25T11:53:19+01:00"));
    assert!(!is_rfc3339("2026-11-25 11:53:19"));
    assert!(is_semver("1.2.3-rc.1+build.5") && !is_semver("01.2.3") && !is_semver("1.2"));
}
