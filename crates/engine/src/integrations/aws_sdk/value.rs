//! Step Functions' names and values for an API's shapes, shared by every protocol.
//!
//! In: a Task's parameters name members in PascalCase (`TableName`, `Items` for API Gateway's
//! `items`, `EqualsValue` for `Equals`); [`input`] maps them onto the model's member names and
//! drops `null`s, as Step Functions does. Out: the protocols decode an answer member by member
//! and name each with [`output_name`]; [`scalar`] gives its value the form AWS records.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::model::{Kind, Member, Service, Shape};

/// A parameter the model does not have, or a value of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidParameter(pub String);

/// The Task's parameters, keyed by the model's member names (maps keep their keys).
pub fn input(service: &Service, shape: &str, value: &Value) -> Result<Value, InvalidParameter> {
    let Some(s) = service.shape(shape) else {
        return Ok(value.clone());
    };
    match (s.kind, value) {
        (Kind::Structure, Value::Object(fields)) => {
            let mut out = Map::new();
            for (name, v) in fields {
                if v.is_null() {
                    continue;
                }
                let (member_name, member) = find_member(s, name).ok_or_else(|| {
                    InvalidParameter(format!(
                        "The field '{name}' is not supported by Step Functions"
                    ))
                })?;
                out.insert(member_name.to_owned(), input(service, &member.shape, v)?);
            }
            Ok(Value::Object(out))
        }
        (Kind::List, Value::Array(items)) => {
            let Some(member) = &s.member else {
                return Ok(value.clone());
            };
            items
                .iter()
                .map(|i| input(service, &member.shape, i))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        (Kind::Map, Value::Object(entries)) => {
            let Some(v) = &s.value else {
                return Ok(value.clone());
            };
            let mut out = Map::new();
            for (k, item) in entries {
                out.insert(k.clone(), input(service, &v.shape, item)?);
            }
            Ok(Value::Object(out))
        }
        (Kind::Structure | Kind::List | Kind::Map, other) => Err(InvalidParameter(format!(
            "The value {other} of a {} parameter is not a {}",
            shape,
            match s.kind {
                Kind::List => "list",
                _ => "JSON object",
            }
        ))),
        _ => Ok(value.clone()),
    }
}

/// The member a PascalCase parameter names: the member itself, the member with a lower-case
/// first letter, or `Equals` for `EqualsValue`.
pub(super) fn find_member<'a>(shape: &'a Shape, name: &str) -> Option<(&'a str, &'a Member)> {
    let by = |n: &str| shape.members.get_key_value(n).map(|(k, m)| (k.as_str(), m));
    by(name)
        .or_else(|| {
            shape
                .members
                .iter()
                .find(|(k, _)| output_name(k) == name)
                .map(|(k, m)| (k.as_str(), m))
        })
        .or_else(|| name.strip_suffix("Value").and_then(by))
}

/// A member's name in a result: PascalCase (`items` → `Items`).
pub fn output_name(member: &str) -> String {
    let mut name = member.to_owned();
    if let Some(first) = name.get(0..1) {
        name.replace_range(0..1, &first.to_uppercase());
    }
    name
}

/// A scalar read off the wire (text for XML and headers, JSON for JSON bodies) in the form
/// Step Functions records: numbers and booleans as JSON, timestamps in ISO 8601, blobs as
/// their UTF-8 text (base64 when they are not text).
pub fn scalar(kind: Kind, wire: &Value) -> Value {
    match (kind, wire) {
        (Kind::Integer | Kind::Long, Value::String(t)) => t
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| wire.clone()),
        (Kind::Float | Kind::Double, Value::String(t)) => t
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| wire.clone()),
        (Kind::Boolean, Value::String(t)) => Value::Bool(t.trim() == "true"),
        (Kind::Timestamp, Value::Number(n)) => match n.as_f64() {
            Some(seconds) => Value::String(asl::timestamp::format_millis(
                (seconds * 1000.0).round() as i64,
            )),
            None => wire.clone(),
        },
        (Kind::Timestamp, Value::String(t)) => match t.trim().parse::<f64>() {
            Ok(seconds) => scalar(kind, &Value::from(seconds)),
            Err(_) => http_date(t)
                .map(|ms| Value::String(asl::timestamp::format_millis(ms)))
                .unwrap_or_else(|| wire.clone()),
        },
        (Kind::Blob, Value::String(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(Value::String)
            .unwrap_or_else(|| wire.clone()),
        _ => wire.clone(),
    }
}

/// An HTTP date (`Thu, 03 Dec 2026 09:18:32 GMT`, how rest protocols send timestamps in
/// headers) as epoch milliseconds.
fn http_date(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let day: u32 = day.parse().ok()?;
    asl::timestamp::parse(&format!("{year}-{month:02}-{day:02}T{time}Z"))
}

/// A blob parameter's bytes in base64, as JSON and query bodies carry them: a string is sent
/// as its UTF-8 text, anything else as its JSON text.
pub fn blob_base64(value: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(text(value))
}

/// A parameter as text: a string as it is, anything else as its JSON text.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A timestamp parameter as epoch seconds (JSON protocols), from a number or an ISO 8601
/// string.
pub fn epoch_seconds(value: &Value) -> Value {
    match value {
        Value::String(s) => match asl::timestamp::parse(s) {
            Some(ms) => serde_json::Number::from_f64(ms as f64 / 1000.0)
                .map(Value::Number)
                .unwrap_or_else(|| value.clone()),
            None => value.clone(),
        },
        other => other.clone(),
    }
}

/// A timestamp parameter in ISO 8601 (query and XML protocols).
pub fn iso8601(value: &Value) -> String {
    match value {
        Value::Number(n) => {
            asl::timestamp::format_millis((n.as_f64().unwrap_or(0.0) * 1000.0).round() as i64)
        }
        other => text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::aws_sdk::model;
    use serde_json::json;

    #[test]
    fn parameters_map_onto_member_names() {
        let ddb = model::service("dynamodb").expect("model");
        let got = input(
            &ddb,
            "GetItemInput",
            &json!({"TableName": "t", "Key": {"id": {"S": "1"}}, "ConsistentRead": null}),
        );
        assert_eq!(
            got,
            Ok(json!({"TableName": "t", "Key": {"id": {"S": "1"}}}))
        );
        assert!(input(&ddb, "GetItemInput", &json!({"Nope": 1})).is_err());
        assert!(input(&ddb, "GetItemInput", &json!({"Key": [1]})).is_err());
        let apigw = model::service("apigateway").expect("model");
        assert_eq!(
            input(&apigw, "GetRestApisRequest", &json!({"Limit": 5})),
            Ok(json!({"limit": 5}))
        );
    }

    #[test]
    fn scalars_take_aws_forms() {
        assert_eq!(scalar(Kind::Integer, &json!("12")), json!(12));
        assert_eq!(scalar(Kind::Boolean, &json!("true")), json!(true));
        assert_eq!(scalar(Kind::Blob, &json!("aGk=")), json!("hi"));
        assert_eq!(
            scalar(Kind::Timestamp, &json!(1700000000.5)),
            json!("2023-11-14T22:13:20.500Z")
        );
        assert_eq!(
            scalar(Kind::Timestamp, &json!("Thu, 03 Dec 2026 09:18:32 GMT")),
            json!("2026-12-03T09:18:32.000Z")
        );
        assert_eq!(
            scalar(Kind::Timestamp, &json!("2026-12-03T09:18:32Z")),
            json!("2026-12-03T09:18:32Z")
        );
        assert_eq!(blob_base64(&json!("hi")), "aGk=");
        assert_eq!(
            epoch_seconds(&json!("2023-11-14T22:13:20.500Z")),
            json!(1700000000.5)
        );
    }
}
