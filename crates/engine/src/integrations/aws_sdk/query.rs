//! awsQuery and ec2Query requests: `Action`, `Version` and the parameters flattened into
//! form fields (percent-encoded, `%20` for spaces) (`Attributes.entry.1.key`, `Filter.1.Value.1`). Answers are XML
//! ([`super::xml`]): awsQuery wraps the output in `<ActionResult>`, ec2Query does not.

use serde_json::Value;

use super::model::{Kind, Member, Operation, Protocol, Service};
use super::value::{blob_base64, iso8601, text};
use crate::integrations::percent_encode as encode;

/// The form body of a call.
pub fn body(service: &Service, op_name: &str, op: &Operation, input: &Value) -> String {
    let mut fields = vec![
        ("Action".to_owned(), op_name.to_owned()),
        ("Version".to_owned(), service.api_version.clone()),
    ];
    if let Some(shape) = &op.input {
        serialize(service, shape, "", false, input, &mut fields);
    }
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k, false), encode(v, false)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A member's field name: EC2 uses `queryName` or the capitalized `locationName`.
fn field_name(service: &Service, name: &str, member: &Member) -> String {
    if service.protocol == Protocol::Ec2 {
        if let Some(q) = &member.query_name {
            return q.clone();
        }
        return super::value::output_name(member.location_name.as_deref().unwrap_or(name));
    }
    member
        .location_name
        .clone()
        .unwrap_or_else(|| name.to_owned())
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn serialize(
    service: &Service,
    shape: &str,
    prefix: &str,
    flattened: bool,
    value: &Value,
    out: &mut Vec<(String, String)>,
) {
    let Some(s) = service.shape(shape) else {
        out.push((prefix.to_owned(), text(value)));
        return;
    };
    match (s.kind, value) {
        (Kind::Structure, Value::Object(fields)) => {
            for (name, v) in fields {
                if let Some(member) = s.members.get(name) {
                    let key = join(prefix, &field_name(service, name, member));
                    serialize(service, &member.shape, &key, member.flattened, v, out);
                }
            }
        }
        (Kind::List, Value::Array(items)) => {
            let Some(m) = &s.member else { return };
            if service.protocol == Protocol::Ec2 {
                for (i, item) in items.iter().enumerate() {
                    serialize(
                        service,
                        &m.shape,
                        &format!("{prefix}.{}", i + 1),
                        false,
                        item,
                        out,
                    );
                }
                return;
            }
            if items.is_empty() {
                out.push((prefix.to_owned(), String::new()));
                return;
            }
            let base = if flattened || s.flattened {
                prefix.to_owned()
            } else {
                join(prefix, m.location_name.as_deref().unwrap_or("member"))
            };
            for (i, item) in items.iter().enumerate() {
                serialize(
                    service,
                    &m.shape,
                    &format!("{base}.{}", i + 1),
                    false,
                    item,
                    out,
                );
            }
        }
        (Kind::Map, Value::Object(entries)) => {
            let (Some(k), Some(v)) = (&s.key, &s.value) else {
                return;
            };
            let base = if flattened || s.flattened {
                prefix.to_owned()
            } else {
                join(prefix, "entry")
            };
            let key_name = k.location_name.as_deref().unwrap_or("key");
            let value_name = v.location_name.as_deref().unwrap_or("value");
            for (i, (key, item)) in entries.iter().enumerate() {
                let entry = format!("{base}.{}", i + 1);
                out.push((join(&entry, key_name), key.clone()));
                serialize(
                    service,
                    &v.shape,
                    &join(&entry, value_name),
                    false,
                    item,
                    out,
                );
            }
        }
        (Kind::Timestamp, v) => out.push((prefix.to_owned(), iso8601(v))),
        (Kind::Blob, v) => out.push((prefix.to_owned(), blob_base64(v))),
        (_, v) => out.push((prefix.to_owned(), text(v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::aws_sdk::model;
    use serde_json::json;

    fn call(service: &str, action: &str, input: Value) -> String {
        let s = model::service(service).expect("model");
        let (name, op) = s.operation(action).expect("operation");
        body(&s, name, op, &input)
    }

    #[test]
    fn query_lists_and_maps() {
        assert_eq!(
            call(
                "sns",
                "createTopic",
                json!({"Name": "t", "Attributes": {"A": "1"}, "Tags": [{"Key": "k", "Value": "v"}]})
            ),
            "Action=CreateTopic&Version=2010-03-31&Name=t&Attributes.entry.1.key=A&\
             Attributes.entry.1.value=1&Tags.member.1.Key=k&Tags.member.1.Value=v"
        );
    }

    #[test]
    fn ec2_lists_are_numbered_directly() {
        assert_eq!(
            call(
                "ec2",
                "describeVpcs",
                json!({"VpcIds": ["vpc-1"], "Filters": [{"Name": "n", "Values": ["a b"]}]})
            ),
            "Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-1&Filter.1.Name=n&Filter.1.Value.1=a%20b"
        );
    }
}
