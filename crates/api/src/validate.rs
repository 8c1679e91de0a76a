//! Request validation driven by the AWS Step Functions Smithy model.
//!
//! The constraints live in `model.json` next to this file: for every one of
//! the 37 operations its input structure, and every structure, list, enum
//! and scalar shape reachable from it (member names, required members,
//! types, length/range bounds, patterns, enum values).
//!
//! `model.json` is derived from the AWS Step Functions Smithy model
//! (`com.amazonaws.sfn`, API version 2016-11-23), Copyright Amazon.com, Inc.
//! or its affiliates, licensed under the Apache License, Version 2.0
//! (<http://www.apache.org/licenses/LICENSE-2.0>). It was reduced to the
//! request-validation constraints; `scripts/gen-sfn-model.py` regenerates it
//! from a Smithy JSON model file.
//!
//! Behaviour follows AWS's (Coral) request handling:
//! * a member whose JSON type does not fit its shape is a
//!   `SerializationException` (the first one found wins, whatever else is
//!   wrong with the request);
//! * otherwise all constraint violations are collected, in model member
//!   order, depth first, into one `ValidationException` message:
//!   `N validation error(s) detected: Value '…' at '…' failed to satisfy
//!   constraint: …; Value …`;
//! * `null` counts as absent; unknown members are ignored;
//! * nested paths use AWS's style: `tags.1.member.key` (1-based list index).
//!
//! Names are not checked against a character set here: the model gives
//! `Name` only a length, and AWS answers bad characters with `InvalidName`
//! from the service itself.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Why a request body was refused before reaching an operation handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// A member has the wrong JSON type (AWS answers `SerializationException`).
    Serialization(String),
    /// Model constraint violations (AWS answers `ValidationException`); the
    /// message is already formatted.
    Validation(String),
}

/// Which API a request addresses: its `X-Amz-Target` prefix and the model it is validated
/// against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// AWS Step Functions (`AWSStepFunctions.<Op>`, `model.json`).
    StepFunctions,
    /// stepwise's own operations (`Stepwise.<Op>`, `stepwise-model.json`).
    Stepwise,
}

impl Service {
    fn model(self) -> &'static Model {
        match self {
            Service::StepFunctions => &MODEL,
            Service::Stepwise => &STEPWISE_MODEL,
        }
    }
}

/// The operation names of `service`'s model, sorted (37 for Step Functions).
pub fn operations(service: Service) -> &'static [&'static str] {
    &service.model().operation_names
}

/// Validates a request body (already parsed as a JSON object) against
/// operation `op`'s input shape. An operation the model does not know is not
/// validated (`Ok`); routing decides what to answer for it.
pub fn validate(service: Service, op: &str, body: &Map<String, Value>) -> Result<(), Rejection> {
    let Some(Shape::Structure(input)) = service.model().operations.get(op).map(|s| &**s) else {
        return Ok(());
    };
    let mut errors = Vec::new();
    check_structure(input, body, "", &mut errors).map_err(Rejection::Serialization)?;
    match errors.len() {
        0 => Ok(()),
        1 => Err(Rejection::Validation(format!(
            "1 validation error detected: {}",
            errors[0]
        ))),
        n => Err(Rejection::Validation(format!(
            "{n} validation errors detected: {}",
            errors.join("; ")
        ))),
    }
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct RawModel {
    operations: std::collections::BTreeMap<String, String>,
    shapes: HashMap<String, RawShape>,
}

#[derive(Deserialize)]
struct RawShape {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    members: Map<String, Value>,
    #[serde(default)]
    required: Vec<String>,
    member: Option<String>,
    min: Option<f64>,
    max: Option<f64>,
    pattern: Option<String>,
    #[serde(default)]
    values: Vec<String>,
    #[serde(rename = "messageOrder")]
    message_order: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Number {
    Integer,
    Long,
    Float,
}

enum Shape {
    Structure(Vec<Member>),
    List {
        member: Arc<Shape>,
        min: Option<f64>,
        max: Option<f64>,
    },
    String {
        min: Option<f64>,
        max: Option<f64>,
        pattern: Option<Pattern>,
        /// Whether the length counts UTF-8 bytes rather than characters.
        bytes: bool,
    },
    Enum {
        values: Vec<String>,
        /// `[A, B, …]` as AWS prints it.
        listing: String,
    },
    Number {
        kind: Number,
        min: Option<f64>,
        max: Option<f64>,
    },
    Boolean,
    Timestamp,
    Blob,
}

struct Member {
    name: String,
    required: bool,
    shape: Arc<Shape>,
}

/// A model pattern: the Java text (for messages) and what the `regex` crate
/// can check of it.
struct Pattern {
    java: String,
    /// All must match. Empty when the pattern could not be translated, in
    /// which case it is not enforced.
    checks: Vec<Regex>,
}

struct Model {
    operations: HashMap<String, Arc<Shape>>,
    operation_names: Vec<&'static str>,
}

static MODEL_JSON: &str = include_str!("model.json");

static MODEL: LazyLock<Model> = LazyLock::new(|| load(MODEL_JSON));

/// stepwise's extension operations, in the same format (written by hand).
static STEPWISE_MODEL_JSON: &str = include_str!("stepwise-model.json");

static STEPWISE_MODEL: LazyLock<Model> = LazyLock::new(|| load(STEPWISE_MODEL_JSON));

fn load(text: &str) -> Model {
    // The data is compiled in and covered by tests; should it ever fail to
    // load, validation is skipped rather than taking the server down.
    build_model(text).unwrap_or_else(|_| Model {
        operations: HashMap::new(),
        operation_names: Vec::new(),
    })
}

/// The model's shape of execution and task payloads.
const PAYLOAD_SHAPE: &str = "SensitiveData";

fn build_model(text: &str) -> Result<Model, String> {
    let raw: RawModel = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut built: HashMap<String, Arc<Shape>> = HashMap::new();
    let mut operations = HashMap::new();
    let mut operation_names = Vec::new();
    for (op, input) in &raw.operations {
        let shape = resolve(&raw, input, &mut built, 0)?;
        if !matches!(&*shape, Shape::Structure(_)) {
            return Err(format!("{op}: input {input} is not a structure"));
        }
        operations.insert(op.clone(), shape);
        operation_names.push(&*Box::leak(op.clone().into_boxed_str()));
    }
    operation_names.sort_unstable();
    Ok(Model {
        operations,
        operation_names,
    })
}

fn resolve(
    raw: &RawModel,
    name: &str,
    built: &mut HashMap<String, Arc<Shape>>,
    depth: usize,
) -> Result<Arc<Shape>, String> {
    if depth > 32 {
        return Err(format!("shape nesting too deep at {name}"));
    }
    if let Some(s) = built.get(name) {
        return Ok(s.clone());
    }
    let rs = raw
        .shapes
        .get(name)
        .ok_or_else(|| format!("unknown shape {name}"))?;
    let shape = match rs.kind.as_str() {
        "structure" => {
            let mut members = Vec::new();
            for (member, target) in &rs.members {
                let target = target
                    .as_str()
                    .ok_or_else(|| format!("{name}.{member}: target is not a string"))?;
                members.push(Member {
                    name: member.clone(),
                    required: rs.required.iter().any(|r| r == member),
                    shape: resolve(raw, target, built, depth + 1)?,
                });
            }
            Shape::Structure(members)
        }
        "list" => {
            let member = rs
                .member
                .as_deref()
                .ok_or_else(|| format!("{name}: list without member"))?;
            Shape::List {
                member: resolve(raw, member, built, depth + 1)?,
                min: rs.min,
                max: rs.max,
            }
        }
        "string" => Shape::String {
            min: rs.min,
            max: rs.max,
            pattern: rs.pattern.as_deref().map(compile_pattern),
            // Payloads (inputs, outputs, results): the API reference says their "length
            // constraints apply to the payload size, and are expressed as bytes in UTF-8
            // encoding", as the 256 KiB limit of executions counts them.
            bytes: name == PAYLOAD_SHAPE,
        },
        "enum" => {
            let order = rs.message_order.as_ref().unwrap_or(&rs.values);
            Shape::Enum {
                values: rs.values.clone(),
                listing: format!("[{}]", order.join(", ")),
            }
        }
        "integer" | "long" | "float" | "double" => Shape::Number {
            kind: match rs.kind.as_str() {
                "integer" => Number::Integer,
                "long" => Number::Long,
                _ => Number::Float,
            },
            min: rs.min,
            max: rs.max,
        },
        "boolean" => Shape::Boolean,
        "timestamp" => Shape::Timestamp,
        "blob" => Shape::Blob,
        other => return Err(format!("{name}: unsupported shape type {other}")),
    };
    let shape = Arc::new(shape);
    built.insert(name.to_string(), shape.clone());
    Ok(shape)
}

/// Translates a Java (Smithy) pattern for the `regex` crate.
///
/// The `regex` crate has no look-around. The model's only look-ahead is a
/// leading `^(?=X)Y`, which is checked as two expressions that must both
/// match: `^(?:X)` and `^Y`. A pattern that still does not compile is not
/// enforced (its `checks` are empty).
fn compile_pattern(java: &str) -> Pattern {
    let mut sources = Vec::new();
    match split_leading_lookahead(java) {
        Some((ahead, rest)) => {
            sources.push(format!("^(?:{ahead})"));
            sources.push(format!("^{rest}"));
        }
        None => sources.push(java.to_string()),
    }
    let checks: Option<Vec<Regex>> = sources.iter().map(|s| Regex::new(s).ok()).collect();
    Pattern {
        java: java.to_string(),
        checks: checks.unwrap_or_default(),
    }
}

/// `^(?=X)rest` → `(X, rest)`; `None` for any other form.
fn split_leading_lookahead(p: &str) -> Option<(&str, &str)> {
    let body = p.strip_prefix("^(?=")?;
    let mut depth = 1usize;
    let mut escaped = false;
    let mut in_class = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    return Some((&body[..i], &body[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------

/// Structure members: missing required ones and every present one.
fn check_structure(
    members: &[Member],
    obj: &Map<String, Value>,
    prefix: &str,
    errors: &mut Vec<String>,
) -> Result<(), String> {
    for m in members {
        let path = if prefix.is_empty() {
            m.name.clone()
        } else {
            format!("{prefix}.{}", m.name)
        };
        match obj.get(&m.name) {
            None | Some(Value::Null) => {
                if m.required {
                    errors.push(format!(
                        "Value null at '{path}' failed to satisfy constraint: Member must not be null"
                    ));
                }
            }
            Some(v) => check_value(&m.shape, v, &path, errors)?,
        }
    }
    Ok(())
}

fn check_value(
    shape: &Shape,
    v: &Value,
    path: &str,
    errors: &mut Vec<String>,
) -> Result<(), String> {
    match shape {
        Shape::Structure(members) => match v {
            Value::Object(obj) => check_structure(members, obj, path, errors),
            other => Err(type_mismatch(other, "a Structure")),
        },
        Shape::List { member, min, max } => {
            let Value::Array(items) = v else {
                return Err(type_mismatch(v, "a List"));
            };
            let len = items.len() as f64;
            push_bounds(errors, v, path, len, *min, *max, "length");
            for (i, item) in items.iter().enumerate() {
                if item.is_null() {
                    continue;
                }
                let p = format!("{path}.{}.member", i + 1);
                check_value(member, item, &p, errors)?;
            }
            Ok(())
        }
        Shape::String {
            min,
            max,
            pattern,
            bytes,
        } => {
            let s = expect_string(v)?;
            let len = if *bytes { s.len() } else { s.chars().count() } as f64;
            push_bounds(errors, v, path, len, *min, *max, "length");
            if let Some(p) = pattern {
                if !p.checks.is_empty() && !p.checks.iter().all(|r| r.is_match(s)) {
                    errors.push(format!(
                        "Value '{s}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {}",
                        p.java
                    ));
                }
            }
            Ok(())
        }
        Shape::Enum { values, listing } => {
            let s = expect_string(v)?;
            if !values.iter().any(|e| e == s) {
                errors.push(format!(
                    "Value '{s}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: {listing}"
                ));
            }
            Ok(())
        }
        Shape::Number { kind, min, max } => {
            let Value::Number(n) = v else {
                let target = match kind {
                    Number::Integer => "an Integer",
                    Number::Long => "a Long",
                    Number::Float => "a Float",
                };
                return Err(type_mismatch(v, target));
            };
            let x = n.as_f64().unwrap_or(0.0);
            // AWS truncates fractional numbers given for integral members.
            let x = if *kind == Number::Float { x } else { x.trunc() };
            if let Some(lo) = min {
                if x < *lo {
                    errors.push(number_error(
                        path,
                        x,
                        *kind,
                        "greater than or equal to",
                        *lo,
                    ));
                }
            }
            if let Some(hi) = max {
                if x > *hi {
                    errors.push(number_error(path, x, *kind, "less than or equal to", *hi));
                }
            }
            Ok(())
        }
        Shape::Boolean => match v {
            Value::Bool(_) => Ok(()),
            other => Err(type_mismatch(other, "a Boolean")),
        },
        Shape::Timestamp => match v {
            Value::Number(_) => Ok(()),
            other => Err(type_mismatch(other, "a Timestamp")),
        },
        Shape::Blob => match v {
            Value::String(_) => Ok(()),
            other => Err(type_mismatch(other, "a Blob")),
        },
    }
}

fn expect_string(v: &Value) -> Result<&str, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(type_mismatch(other, "a String")),
    }
}

/// Coral-style deserialisation failure text.
fn type_mismatch(v: &Value, target: &str) -> String {
    let token = match v {
        Value::Object(_) => return "Start of structure or map found where not expected.".into(),
        Value::Array(_) => return "Start of list found where not expected.".into(),
        Value::String(_) => "STRING_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::Bool(true) => "TRUE_VALUE",
        Value::Bool(false) => "FALSE_VALUE",
        Value::Null => "NULL_VALUE",
    };
    format!("{token} can not be converted to {target}")
}

/// Members of the model's sensitive shapes (`SensitiveData`, `Definition`, `SensitiveError`,
/// `SensitiveCause`): AWS leaves their value out of validation messages.
const SENSITIVE: &[&str] = &["input", "output", "definition", "error", "cause"];

/// `Value 'x'` — or just `Value` for a sensitive member, whose content is never echoed.
fn value_phrase(v: &Value, path: &str) -> String {
    if SENSITIVE.contains(&path) {
        "Value".to_owned()
    } else {
        format!("Value {}", render(v))
    }
}

fn push_bounds(
    errors: &mut Vec<String>,
    v: &Value,
    path: &str,
    len: f64,
    min: Option<f64>,
    max: Option<f64>,
    what: &str,
) {
    if let Some(lo) = min {
        if len < lo {
            errors.push(format!(
                "{} at '{path}' failed to satisfy constraint: Member must have {what} greater than or equal to {}",
                value_phrase(v, path),
                lo as i64
            ));
        }
    }
    if let Some(hi) = max {
        if len > hi {
            errors.push(format!(
                "{} at '{path}' failed to satisfy constraint: Member must have {what} less than or equal to {}",
                value_phrase(v, path),
                hi as i64
            ));
        }
    }
}

fn number_error(path: &str, x: f64, kind: Number, relation: &str, bound: f64) -> String {
    let (value, bound) = match kind {
        Number::Float => (java_float(x), java_float(bound)),
        _ => (format!("{}", x as i64), format!("{}", bound as i64)),
    };
    format!(
        "Value '{value}' at '{path}' failed to satisfy constraint: Member must have value {relation} {bound}"
    )
}

/// Java's `Float.toString` for ordinary magnitudes: always a fraction part.
fn java_float(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e7 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// How a value appears between the quotes of a message (`'abc'`, `'[a, b]'`).
fn render(v: &Value) -> String {
    let mut out = String::from("'");
    render_inner(v, &mut out);
    out.push('\'');
    out
}

fn render_inner(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::String(s) => out.push_str(s),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render_inner(item, out);
            }
            out.push(']');
        }
        Value::Object(obj) => {
            out.push('{');
            for (i, (k, item)) in obj.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{k}=");
                render_inner(item, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(op: &str, body: Value) -> Result<(), Rejection> {
        let Value::Object(map) = body else {
            panic!("test body must be an object");
        };
        validate(Service::StepFunctions, op, &map)
    }

    fn validation(msg: &str) -> Result<(), Rejection> {
        Err(Rejection::Validation(msg.to_string()))
    }

    fn serialization(msg: &str) -> Result<(), Rejection> {
        Err(Rejection::Serialization(msg.to_string()))
    }

    const SM: &str = "arn:aws:states:us-east-1:111111111111:stateMachine:sm";
    const ROLE: &str = "arn:aws:iam::111111111111:role/r";
    const ALIAS_PATTERN: &str = r"^(?=.*[a-zA-Z_\-\.])[a-zA-Z0-9_\-\.]+$";

    #[test]
    fn model_loads_with_all_operations() {
        let ops = operations(Service::StepFunctions);
        assert_eq!(ops.len(), 37);
        assert!(ops.windows(2).all(|w| w[0] < w[1]), "sorted");
        for op in [
            "CreateStateMachine",
            "TestState",
            "RedriveExecution",
            "ValidateStateMachineDefinition",
        ] {
            assert!(ops.contains(&op), "{op}");
        }
        // Every operation accepts an empty body except for required members.
        assert!(build_model(MODEL_JSON).is_ok());
    }

    #[test]
    fn stepwise_model_loads() {
        assert!(build_model(STEPWISE_MODEL_JSON).is_ok());
        let ops = operations(Service::Stepwise);
        for op in [
            "BulkRedrive",
            "DescribeBulkRedrive",
            "DescribeExecutionRedrives",
        ] {
            assert!(ops.contains(&op), "{op}");
        }
        let body = json!({"stateMachineArn": SM, "statusFilter": ["DONE"], "minRedriveCount": -1});
        let refused = validate(
            Service::Stepwise,
            "BulkRedrive",
            body.as_object().expect("an object"),
        );
        assert!(
            matches!(&refused, Err(Rejection::Validation(m)) if m.starts_with("2 validation errors detected")),
            "{refused:?}"
        );
    }

    #[test]
    fn payloads_are_measured_in_utf8_bytes() {
        let start = |input: String| {
            let body = json!({"stateMachineArn": SM, "input": input});
            validate(
                Service::StepFunctions,
                "StartExecution",
                body.as_object().expect("an object"),
            )
        };
        assert!(start("x".repeat(262_144)).is_ok());
        // 100,000 characters, 300,000 bytes.
        let wide = start("€".repeat(100_000));
        assert!(
            matches!(&wide, Err(Rejection::Validation(m)) if m.contains("at 'input'")),
            "{wide:?}"
        );
        // Names still count characters: 80 three-byte characters are a valid length.
        let named = json!({"stateMachineArn": SM, "name": "é".repeat(80)});
        let named = validate(
            Service::StepFunctions,
            "StartExecution",
            named.as_object().expect("an object"),
        );
        assert!(!matches!(&named, Err(Rejection::Validation(m)) if m.contains("length")));
    }

    #[test]
    fn every_pattern_compiles() {
        let raw: RawModel = serde_json::from_str(MODEL_JSON).unwrap();
        for (name, s) in &raw.shapes {
            if let Some(p) = &s.pattern {
                assert!(!compile_pattern(p).checks.is_empty(), "{name}: {p}");
            }
        }
    }

    #[test]
    fn table() {
        let long_token = "x".repeat(3097);
        let long_page_token = "x".repeat(1025);
        let name81 = "A".repeat(81);
        let cases: Vec<(&str, &str, Value, Result<(), Rejection>)> = vec![
            // Recorded by AWS (conformance corpus).
            (
                "maxResults over range (ListExecutions)",
                "ListExecutions",
                json!({"stateMachineArn": SM, "maxResults": 1001}),
                validation("1 validation error detected: Value '1001' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000"),
            ),
            (
                "maxResults over range (ListStateMachineAliases)",
                "ListStateMachineAliases",
                json!({"stateMachineArn": SM, "maxResults": 1001}),
                validation("1 validation error detected: Value '1001' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000"),
            ),
            (
                "maxResults 0 is fine",
                "ListStateMachineAliases",
                json!({"stateMachineArn": SM, "maxResults": 0}),
                Ok(()),
            ),
            (
                "ListExecutions nextToken too long",
                "ListExecutions",
                json!({"stateMachineArn": SM, "nextToken": long_token}),
                validation(&format!("1 validation error detected: Value '{long_token}' at 'nextToken' failed to satisfy constraint: Member must have length less than or equal to 3096")),
            ),
            (
                "ListStateMachineVersions nextToken too long",
                "ListStateMachineVersions",
                json!({"stateMachineArn": SM, "nextToken": long_page_token}),
                validation(&format!("1 validation error detected: Value '{long_page_token}' at 'nextToken' failed to satisfy constraint: Member must have length less than or equal to 1024")),
            ),
            (
                "statusFilter not in enum, AWS's listing order",
                "ListExecutions",
                json!({"stateMachineArn": SM, "statusFilter": "succeeded"}),
                validation("1 validation error detected: Value 'succeeded' at 'statusFilter' failed to satisfy constraint: Member must satisfy enum value set: [SUCCEEDED, TIMED_OUT, PENDING_REDRIVE, ABORTED, FAILED, RUNNING]"),
            ),
            (
                "alias name all digits",
                "CreateStateMachineAlias",
                json!({"name": "123", "routingConfiguration": [{"stateMachineVersionArn": SM, "weight": 100}]}),
                validation(&format!("1 validation error detected: Value '123' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: {ALIAS_PATTERN}")),
            ),
            (
                "alias name with a space",
                "CreateStateMachineAlias",
                json!({"name": "INVALID ALIAS", "routingConfiguration": [{"stateMachineVersionArn": SM, "weight": 100}]}),
                validation(&format!("1 validation error detected: Value 'INVALID ALIAS' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: {ALIAS_PATTERN}")),
            ),
            (
                "alias name with !",
                "CreateStateMachineAlias",
                json!({"name": "!INVALID", "routingConfiguration": [{"stateMachineVersionArn": SM, "weight": 100}]}),
                validation(&format!("1 validation error detected: Value '!INVALID' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: {ALIAS_PATTERN}")),
            ),
            (
                "alias name with @",
                "CreateStateMachineAlias",
                json!({"name": "ALIAS@", "routingConfiguration": [{"stateMachineVersionArn": SM, "weight": 100}]}),
                validation(&format!("1 validation error detected: Value 'ALIAS@' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: {ALIAS_PATTERN}")),
            ),
            (
                "alias name too long",
                "CreateStateMachineAlias",
                json!({"name": name81, "routingConfiguration": [{"stateMachineVersionArn": SM, "weight": 100}]}),
                validation(&format!("1 validation error detected: Value '{name81}' at 'name' failed to satisfy constraint: Member must have length less than or equal to 80")),
            ),
            (
                "alias name valid",
                "CreateStateMachineAlias",
                json!({"name": "AliasName-1", "description": "d", "routingConfiguration": [{"stateMachineVersionArn": SM, "weight": 100}]}),
                Ok(()),
            ),
            (
                "activity names with odd characters are the service's business (InvalidName)",
                "CreateActivity",
                json!({"name": "activity;name"}),
                Ok(()),
            ),
            (
                "activity name with NUL",
                "CreateActivity",
                json!({"name": "\u{0}activity"}),
                Ok(()),
            ),
            (
                "ARNs have no pattern (InvalidArn comes from the service)",
                "DescribeStateMachine",
                json!({"stateMachineArn": "not_a_valid_arn"}),
                Ok(()),
            ),
            // Model-derived.
            (
                "missing required name",
                "CreateStateMachine",
                json!({"definition": "{}", "roleArn": ROLE}),
                validation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"),
            ),
            (
                "null counts as missing",
                "DescribeStateMachine",
                json!({"stateMachineArn": null}),
                validation("1 validation error detected: Value null at 'stateMachineArn' failed to satisfy constraint: Member must not be null"),
            ),
            (
                "all required members missing, in model order",
                "CreateStateMachine",
                json!({}),
                validation("3 validation errors detected: Value null at 'name' failed to satisfy constraint: Member must not be null; Value null at 'definition' failed to satisfy constraint: Member must not be null; Value null at 'roleArn' failed to satisfy constraint: Member must not be null"),
            ),
            (
                "state machine name too long",
                "CreateStateMachine",
                json!({"name": name81, "definition": "{}", "roleArn": ROLE}),
                validation(&format!("1 validation error detected: Value '{name81}' at 'name' failed to satisfy constraint: Member must have length less than or equal to 80")),
            ),
            (
                "empty name",
                "StartExecution",
                json!({"stateMachineArn": SM, "name": ""}),
                validation("1 validation error detected: Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1"),
            ),
            (
                "wrong enum for type",
                "CreateStateMachine",
                json!({"name": "n", "definition": "{}", "roleArn": ROLE, "type": "FAST"}),
                validation("1 validation error detected: Value 'FAST' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]"),
            ),
            (
                "ValidateStateMachineDefinition: severity, type and maxResults from the model",
                "ValidateStateMachineDefinition",
                json!({"definition": "{}", "severity": "INFO", "type": "FAST", "maxResults": 101}),
                validation("3 validation errors detected: Value 'FAST' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, EXPRESS]; Value 'INFO' at 'severity' failed to satisfy constraint: Member must satisfy enum value set: [ERROR, WARNING]; Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100"),
            ),
            (
                "negative maxResults",
                "ListStateMachines",
                json!({"maxResults": -1}),
                validation("1 validation error detected: Value '-1' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 0"),
            ),
            (
                "tag key too long in a list",
                "TagResource",
                json!({"resourceArn": SM, "tags": [{"key": "ok", "value": "v"}, {"key": "k".repeat(129), "value": "v"}]}),
                validation(&format!("1 validation error detected: Value '{}' at 'tags.2.member.key' failed to satisfy constraint: Member must have length less than or equal to 128", "k".repeat(129))),
            ),
            (
                "empty tag key on create",
                "CreateActivity",
                json!({"name": "a", "tags": [{"key": "", "value": "v"}]}),
                validation("1 validation error detected: Value '' at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1"),
            ),
            (
                "untag key list members",
                "UntagResource",
                json!({"resourceArn": SM, "tagKeys": ["a", ""]}),
                validation("1 validation error detected: Value '' at 'tagKeys.2.member' failed to satisfy constraint: Member must have length greater than or equal to 1"),
            ),
            (
                "routing configuration: too many entries and a bad weight",
                "UpdateStateMachineAlias",
                json!({"stateMachineAliasArn": SM, "routingConfiguration": [
                    {"stateMachineVersionArn": "a", "weight": 50},
                    {"stateMachineVersionArn": "b", "weight": 101},
                    {"stateMachineVersionArn": "c", "weight": 0}
                ]}),
                validation("2 validation errors detected: Value '[{stateMachineVersionArn=a, weight=50}, {stateMachineVersionArn=b, weight=101}, {stateMachineVersionArn=c, weight=0}]' at 'routingConfiguration' failed to satisfy constraint: Member must have length less than or equal to 2; Value '101' at 'routingConfiguration.2.member.weight' failed to satisfy constraint: Member must have value less than or equal to 100"),
            ),
            (
                "required member of a nested structure",
                "CreateStateMachineAlias",
                json!({"name": "a", "routingConfiguration": [{"weight": 100}]}),
                validation("1 validation error detected: Value null at 'routingConfiguration.1.member.stateMachineVersionArn' failed to satisfy constraint: Member must not be null"),
            ),
            (
                "nested structure in structure",
                "CreateActivity",
                json!({"name": "a", "encryptionConfiguration": {"type": "CUSTOMER_MANAGED_KMS_KEY", "kmsDataKeyReusePeriodSeconds": 30}}),
                validation("1 validation error detected: Value '30' at 'encryptionConfiguration.kmsDataKeyReusePeriodSeconds' failed to satisfy constraint: Member must have value greater than or equal to 60"),
            ),
            (
                "deeply nested logging destination",
                "UpdateStateMachine",
                json!({"stateMachineArn": SM, "loggingConfiguration": {"level": "ALL", "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": ""}}]}}),
                validation("1 validation error detected: Value '' at 'loggingConfiguration.destinations.1.member.cloudWatchLogsLogGroup.logGroupArn' failed to satisfy constraint: Member must have length greater than or equal to 1"),
            ),
            (
                "float range",
                "UpdateMapRun",
                json!({"mapRunArn": SM, "toleratedFailurePercentage": 101}),
                validation("1 validation error detected: Value '101.0' at 'toleratedFailurePercentage' failed to satisfy constraint: Member must have value less than or equal to 100.0"),
            ),
            (
                "client token pattern",
                "RedriveExecution",
                json!({"executionArn": SM, "clientToken": "has space"}),
                validation("1 validation error detected: Value 'has space' at 'clientToken' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[!-~]+$"),
            ),
            (
                "trace header must be ASCII",
                "StartExecution",
                json!({"stateMachineArn": SM, "traceHeader": "Root=é"}),
                validation("1 validation error detected: Value 'Root=é' at 'traceHeader' failed to satisfy constraint: Member must satisfy regular expression pattern: ^\\p{ASCII}*$"),
            ),
            (
                "unknown members are ignored",
                "DescribeExecution",
                json!({"executionArn": SM, "whatever": {"x": [1, 2]}}),
                Ok(()),
            ),
            (
                "unknown operation is not validated",
                "NoSuchOperation",
                json!({"a": 1}),
                Ok(()),
            ),
            (
                "a full valid CreateStateMachine",
                "CreateStateMachine",
                json!({
                    "name": "sm", "definition": "{}", "roleArn": ROLE, "type": "EXPRESS",
                    "loggingConfiguration": {"level": "OFF", "includeExecutionData": false, "destinations": []},
                    "tags": [{"key": "k", "value": ""}], "tracingConfiguration": {"enabled": true},
                    "publish": true, "versionDescription": "v1",
                    "encryptionConfiguration": {"type": "AWS_OWNED_KEY"}
                }),
                Ok(()),
            ),
            // Wrong JSON types.
            (
                "maxResults as a string",
                "ListExecutions",
                json!({"stateMachineArn": SM, "maxResults": "10"}),
                serialization("STRING_VALUE can not be converted to an Integer"),
            ),
            (
                "name as a number",
                "CreateActivity",
                json!({"name": 5}),
                serialization("NUMBER_VALUE can not be converted to a String"),
            ),
            (
                "boolean as a string",
                "CreateStateMachine",
                json!({"name": "n", "definition": "{}", "roleArn": ROLE, "publish": "true"}),
                serialization("STRING_VALUE can not be converted to a Boolean"),
            ),
            (
                "tags as an object",
                "TagResource",
                json!({"resourceArn": SM, "tags": {"k": "v"}}),
                serialization("Start of structure or map found where not expected."),
            ),
            (
                "structure as a list",
                "CreateStateMachine",
                json!({"name": "n", "definition": "{}", "roleArn": ROLE, "tracingConfiguration": [true]}),
                serialization("Start of list found where not expected."),
            ),
            (
                "serialization wins over validation errors",
                "ListExecutions",
                json!({"stateMachineArn": "", "statusFilter": "x", "reverseOrder": 1, "maxResults": true}),
                serialization("TRUE_VALUE can not be converted to an Integer"),
            ),
            (
                "long as a string",
                "UpdateMapRun",
                json!({"mapRunArn": SM, "toleratedFailureCount": "3"}),
                serialization("STRING_VALUE can not be converted to a Long"),
            ),
        ];
        for (what, op, body, want) in cases {
            assert_eq!(run(op, body), want, "{what}");
        }
    }

    #[test]
    fn lookahead_translation() {
        assert_eq!(
            split_leading_lookahead(ALIAS_PATTERN),
            Some((r".*[a-zA-Z_\-\.]", r"[a-zA-Z0-9_\-\.]+$"))
        );
        assert_eq!(split_leading_lookahead("^[a-z]+$"), None);
        let p = compile_pattern(ALIAS_PATTERN);
        let ok = |s: &str| p.checks.iter().all(|r| r.is_match(s));
        assert!(ok("PROD"));
        assert!(ok("v-1"));
        assert!(ok("1.2"));
        assert!(!ok("123"));
        assert!(!ok("a b"));
        assert!(!ok(""));
    }
}
