//! XML for the query, EC2 and restXml protocols: a small element tree read with quick-xml,
//! decoded member by member along the output shape, and the restXml request body written
//! along the input shape.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde_json::{Map, Value};

use super::model::{Kind, Member, Protocol, Service};
use super::value::{blob_base64, iso8601, output_name, scalar, text};

/// An element: its local name (no namespace prefix), child elements and text.
#[derive(Debug, Default)]
pub struct Element {
    pub name: String,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first element named `name` at any depth (this one included).
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// The text of the first descendant named `name`.
    pub fn find_text(&self, name: &str) -> Option<String> {
        self.find(name).map(|e| e.text.clone())
    }
}

/// Parses a document into its root element.
pub fn parse(body: &[u8]) -> Result<Element, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_owned())?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("invalid XML: {e}"))?;
        match event {
            Event::Start(e) => stack.push(Element {
                name: local(e.local_name().as_ref()),
                ..Element::default()
            }),
            Event::Empty(e) => {
                let el = Element {
                    name: local(e.local_name().as_ref()),
                    ..Element::default()
                };
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(el);
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err("invalid XML: unbalanced end tag".into());
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Err("invalid XML: unbalanced end tag".into()),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| format!("invalid XML text: {e}"))?;
                push_text(&mut stack, &s);
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|e| format!("invalid XML text: {e}"))?;
                push_text(&mut stack, &s);
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = r.decode().map_err(|e| format!("invalid XML: {e}"))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .map(str::to_owned)
                            .unwrap_or_else(|| format!("&{name};"))
                    }
                };
                push_text(&mut stack, &resolved);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut document = stack
        .pop()
        .filter(|_| stack.is_empty())
        .ok_or_else(|| "invalid XML: unclosed element".to_owned())?;
    if document.children.is_empty() {
        return Err("the answer has no XML element".into());
    }
    Ok(document.children.swap_remove(0))
}

fn local(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

fn push_text(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut() {
        top.text.push_str(text);
    }
}

/// The wire name of a member in XML.
fn xml_name<'a>(name: &'a str, member: &'a Member) -> &'a str {
    member.location_name.as_deref().unwrap_or(name)
}

/// Decodes `element` as `shape` into Step Functions' form (PascalCase member names).
pub fn decode(service: &Service, shape: &str, element: &Element) -> Value {
    let Some(s) = service.shape(shape) else {
        return Value::String(element.text.clone());
    };
    match s.kind {
        Kind::Structure => {
            let mut out = Map::new();
            for (name, member) in &s.members {
                if member.location.is_some() || member.xml_attribute {
                    continue;
                }
                let wire = xml_name(name, member);
                let flattened =
                    member.flattened || service.shape(&member.shape).is_some_and(|m| m.flattened);
                let value = if flattened {
                    let items: Vec<&Element> =
                        element.children.iter().filter(|c| c.name == wire).collect();
                    if items.is_empty() {
                        continue;
                    }
                    flattened_value(service, &member.shape, &items)
                } else {
                    match element.child(wire) {
                        Some(child) => decode(service, &member.shape, child),
                        None => continue,
                    }
                };
                out.insert(output_name(name), value);
            }
            Value::Object(out)
        }
        Kind::List => {
            let Some(m) = &s.member else {
                return Value::Array(vec![]);
            };
            let item = m
                .location_name
                .as_deref()
                .unwrap_or(if service.protocol == Protocol::Ec2 {
                    "item"
                } else {
                    "member"
                });
            Value::Array(
                element
                    .children
                    .iter()
                    .filter(|c| c.name == item)
                    .map(|c| decode(service, &m.shape, c))
                    .collect(),
            )
        }
        Kind::Map => {
            let entries: Vec<&Element> = element
                .children
                .iter()
                .filter(|c| c.name == "entry")
                .collect();
            map_entries(service, shape, &entries)
        }
        kind => scalar(kind, &Value::String(element.text.clone())),
    }
}

/// A flattened list (the items are the repeated elements) or map (the entries are).
fn flattened_value(service: &Service, shape: &str, items: &[&Element]) -> Value {
    match service.shape(shape) {
        Some(s) if s.kind == Kind::Map => map_entries(service, shape, items),
        Some(s) if s.kind == Kind::List => match &s.member {
            Some(m) => Value::Array(items.iter().map(|c| decode(service, &m.shape, c)).collect()),
            None => Value::Array(vec![]),
        },
        _ => items
            .first()
            .map(|c| decode(service, shape, c))
            .unwrap_or(Value::Null),
    }
}

fn map_entries(service: &Service, shape: &str, entries: &[&Element]) -> Value {
    let Some(s) = service.shape(shape) else {
        return Value::Object(Map::new());
    };
    let (Some(k), Some(v)) = (&s.key, &s.value) else {
        return Value::Object(Map::new());
    };
    let key_name = k.location_name.as_deref().unwrap_or("key");
    let value_name = v.location_name.as_deref().unwrap_or("value");
    let mut out = Map::new();
    for entry in entries {
        let key = entry
            .child(key_name)
            .map(|e| e.text.clone())
            .unwrap_or_default();
        let value = entry
            .child(value_name)
            .map(|e| decode(service, &v.shape, e))
            .unwrap_or(Value::Null);
        out.insert(key, value);
    }
    Value::Object(out)
}

/// Writes `value` (keyed by member names) as the element `name` of `shape` (restXml bodies),
/// in the namespace `namespace` or the shape's own.
pub fn encode(
    service: &Service,
    shape: &str,
    name: &str,
    namespace: Option<&str>,
    value: &Value,
    out: &mut String,
) {
    let s = service.shape(shape);
    let namespace = namespace
        .or_else(|| {
            s.and_then(|s| s.xml_namespace.as_ref())
                .and_then(|n| n.uri.as_deref())
        })
        .map(|uri| format!(" xmlns=\"{}\"", quick_xml::escape::escape(uri)))
        .unwrap_or_default();
    match (s.map(|s| s.kind), value) {
        (Some(Kind::Structure), Value::Object(fields)) => {
            let Some(s) = s else { return };
            out.push_str(&format!("<{name}{namespace}>"));
            for (member_name, v) in fields {
                if let Some(member) = s.members.get(member_name) {
                    if member.location.is_none() && !member.xml_attribute {
                        let flat = member.flattened
                            || service.shape(&member.shape).is_some_and(|m| m.flattened);
                        let wire = xml_name(member_name, member);
                        match (flat, v) {
                            (true, Value::Array(items)) => {
                                let item_shape = service
                                    .shape(&member.shape)
                                    .and_then(|l| l.member.as_ref())
                                    .map(|m| m.shape.as_str())
                                    .unwrap_or_default();
                                for item in items {
                                    encode(service, item_shape, wire, None, item, out);
                                }
                            }
                            _ => encode(service, &member.shape, wire, None, v, out),
                        }
                    }
                }
            }
            out.push_str(&format!("</{name}>"));
        }
        (Some(Kind::List), Value::Array(items)) => {
            let Some(m) = s.and_then(|s| s.member.as_ref()) else {
                return;
            };
            let item = m.location_name.as_deref().unwrap_or("member");
            out.push_str(&format!("<{name}{namespace}>"));
            for i in items {
                encode(service, &m.shape, item, None, i, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        (kind, v) => {
            let text = match kind {
                Some(Kind::Timestamp) => iso8601(v),
                Some(Kind::Blob) => blob_base64(v),
                _ => text(v),
            };
            out.push_str(&format!(
                "<{name}>{}</{name}>",
                quick_xml::escape::escape(text.as_str())
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::aws_sdk::model;
    use serde_json::json;

    #[test]
    fn query_answers_decode_along_the_shape() {
        let sns = model::service("sns").expect("model");
        let doc = parse(
            br#"<ListTopicsResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <ListTopicsResult><Topics><member><TopicArn>arn:a&amp;b</TopicArn></member>
  <member><TopicArn>arn:c</TopicArn></member></Topics></ListTopicsResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></ListTopicsResponse>"#,
        )
        .expect("xml");
        let result = doc.child("ListTopicsResult").expect("result");
        assert_eq!(
            decode(&sns, "ListTopicsResponse", result),
            json!({"Topics": [{"TopicArn": "arn:a&b"}, {"TopicArn": "arn:c"}]})
        );
        assert_eq!(doc.find_text("RequestId").as_deref(), Some("r1"));
    }

    #[test]
    fn ec2_lists_are_items() {
        let ec2 = model::service("ec2").expect("model");
        let doc = parse(
            br#"<DescribeVpcsResponse><requestId>x</requestId><vpcSet><item><vpcId>vpc-1</vpcId>
            <isDefault>true</isDefault><cidrBlock>10.0.0.0/16</cidrBlock></item></vpcSet></DescribeVpcsResponse>"#,
        )
        .expect("xml");
        let got = decode(&ec2, "DescribeVpcsResult", &doc);
        assert_eq!(got["Vpcs"][0]["VpcId"], json!("vpc-1"));
        assert_eq!(got["Vpcs"][0]["IsDefault"], json!(true));
    }

    #[test]
    fn broken_xml_is_an_error() {
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"not xml").is_err());
        assert!(parse(b"\xff").is_err());
    }
}
