//! JSON bodies (awsJson1_0/1_1, and restJson1's bodies): parameters written along the input
//! shape (wire names, epoch-second timestamps, base64 blobs), answers decoded along the
//! output shape into Step Functions' form.

use serde_json::{Map, Value};

use super::model::{Kind, Service};
use super::value::{blob_base64, epoch_seconds, output_name, scalar};

/// The JSON body for `value` (keyed by member names) of `shape`. Members bound to the URI,
/// headers or query string are left out (restJson1).
pub fn encode(service: &Service, shape: &str, value: &Value) -> Value {
    let Some(s) = service.shape(shape) else {
        return value.clone();
    };
    match (s.kind, value) {
        (Kind::Structure, Value::Object(fields)) => {
            let mut out = Map::new();
            for (name, v) in fields {
                if let Some(member) = s.members.get(name) {
                    if member.location.is_none() {
                        let wire = member.location_name.clone().unwrap_or_else(|| name.clone());
                        out.insert(wire, encode(service, &member.shape, v));
                    }
                }
            }
            Value::Object(out)
        }
        (Kind::List, Value::Array(items)) => match &s.member {
            Some(m) => Value::Array(items.iter().map(|i| encode(service, &m.shape, i)).collect()),
            None => value.clone(),
        },
        (Kind::Map, Value::Object(entries)) => match &s.value {
            Some(v) => Value::Object(
                entries
                    .iter()
                    .map(|(k, i)| (k.clone(), encode(service, &v.shape, i)))
                    .collect(),
            ),
            None => value.clone(),
        },
        (Kind::Timestamp, v) => epoch_seconds(v),
        (Kind::Blob, v) => Value::String(blob_base64(v)),
        _ => value.clone(),
    }
}

/// Decodes a JSON answer as `shape` into Step Functions' form (PascalCase member names).
pub fn decode(service: &Service, shape: &str, value: &Value) -> Value {
    let Some(s) = service.shape(shape) else {
        return value.clone();
    };
    match (s.kind, value) {
        (Kind::Structure, Value::Object(fields)) => {
            let mut out = Map::new();
            for (name, member) in &s.members {
                if member.location.is_some() {
                    continue;
                }
                let wire = member.location_name.as_deref().unwrap_or(name);
                if let Some(v) = fields.get(wire) {
                    out.insert(output_name(name), decode(service, &member.shape, v));
                }
            }
            Value::Object(out)
        }
        (Kind::List, Value::Array(items)) => match &s.member {
            Some(m) => Value::Array(items.iter().map(|i| decode(service, &m.shape, i)).collect()),
            None => value.clone(),
        },
        (Kind::Map, Value::Object(entries)) => match &s.value {
            Some(v) => Value::Object(
                entries
                    .iter()
                    .map(|(k, i)| (k.clone(), decode(service, &v.shape, i)))
                    .collect(),
            ),
            None => value.clone(),
        },
        (kind, v) => scalar(kind, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::aws_sdk::model;
    use serde_json::json;

    #[test]
    fn answers_take_pascal_case_names_and_maps_keep_keys() {
        let apigw = model::service("apigateway").expect("model");
        let got = decode(
            &apigw,
            "RestApis",
            &json!({"item": [{"id": "a1", "name": "n", "createdDate": 1700000000, "tags": {"k": "v"}}]}),
        );
        assert_eq!(
            got,
            json!({"Items": [{"CreatedDate": "2023-11-14T22:13:20.000Z", "Id": "a1", "Name": "n", "Tags": {"k": "v"}}]})
        );
    }

    #[test]
    fn parameters_take_wire_forms() {
        let kinesis = model::service("kinesis").expect("model");
        assert_eq!(
            encode(
                &kinesis,
                "PutRecordInput",
                &json!({"StreamName": "s", "Data": "hi", "PartitionKey": "p"})
            ),
            json!({"StreamName": "s", "Data": "aGk=", "PartitionKey": "p"})
        );
    }
}
