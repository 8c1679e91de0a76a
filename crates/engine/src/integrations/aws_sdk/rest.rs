//! restJson1 and restXml: the operation's HTTP binding. Members go to the URI (`{Bucket}`,
//! greedy `{Key+}`), the query string, headers (`x-amz-meta-*` maps) or the body, which is
//! the `payload` member (raw bytes, or a JSON/XML document) or the remaining members.
//! Answers are read back the same way, the status code included.

use reqwest::header::HeaderMap;
use serde_json::{Map, Value};

use super::model::{Kind, Location, Operation, Protocol, Service};
use super::value::{iso8601, output_name, scalar, text, InvalidParameter};
use super::{json, xml, HttpRequest};
use crate::integrations::percent_encode as encode;

/// The request for `input` (keyed by member names).
pub fn request(
    service: &Service,
    op: &Operation,
    input: &Value,
) -> Result<HttpRequest, InvalidParameter> {
    let (method, uri) = &op.http;
    let (path_template, fixed_query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut query: Vec<String> = fixed_query
        .split('&')
        .filter(|q| !q.is_empty())
        .map(str::to_owned)
        .collect();
    let mut headers = Vec::new();
    let mut path = path_template.to_owned();
    let empty = Map::new();
    let fields = input.as_object().unwrap_or(&empty);
    let shape = op.input.as_deref().and_then(|s| service.shape(s));
    let mut body = Vec::new();
    let mut content_type = None;
    if let Some(s) = shape {
        for (name, member) in &s.members {
            let wire = member.location_name.as_deref().unwrap_or(name);
            match member.location {
                Some(Location::Uri) => {
                    let greedy = format!("{{{wire}+}}");
                    let plain = format!("{{{wire}}}");
                    let value = fields.get(name).map(text);
                    if path.contains(&greedy) || path.contains(&plain) {
                        let Some(v) = value else {
                            return Err(InvalidParameter(format!(
                                "The field '{}' is required",
                                output_name(name)
                            )));
                        };
                        path = path
                            .replace(&greedy, &encode(&v, true))
                            .replace(&plain, &encode(&v, false));
                    }
                }
                Some(Location::Querystring) => match fields.get(name) {
                    Some(Value::Array(items)) => {
                        for i in items {
                            query.push(format!(
                                "{}={}",
                                encode(wire, false),
                                encode(&text(i), false)
                            ));
                        }
                    }
                    Some(Value::Object(entries)) => {
                        for (k, v) in entries {
                            query.push(format!("{}={}", encode(k, false), encode(&text(v), false)));
                        }
                    }
                    Some(v) => {
                        let v = wire_text(service, &member.shape, v);
                        query.push(format!("{}={}", encode(wire, false), encode(&v, false)));
                    }
                    None => {}
                },
                Some(Location::Header) => {
                    if let Some(v) = fields.get(name) {
                        let v = match v {
                            Value::Array(items) => {
                                items.iter().map(text).collect::<Vec<_>>().join(",")
                            }
                            v => wire_text(service, &member.shape, v),
                        };
                        headers.push((wire.to_lowercase(), v));
                    }
                }
                Some(Location::Headers) => {
                    if let Some(Value::Object(entries)) = fields.get(name) {
                        for (k, v) in entries {
                            headers.push((format!("{wire}{k}").to_lowercase(), text(v)));
                        }
                    }
                }
                Some(Location::StatusCode) | None => {}
            }
        }
        match s.payload.as_deref() {
            Some(p) => {
                if let (Some(member), Some(v)) = (s.members.get(p), fields.get(p)) {
                    let kind = service.shape(&member.shape).map(|s| s.kind);
                    match (kind, service.protocol) {
                        (Some(Kind::Structure), Protocol::RestXml) => {
                            let root = member
                                .location_name
                                .as_deref()
                                .or_else(|| {
                                    service
                                        .shape(&member.shape)
                                        .and_then(|s| s.location_name.as_deref())
                                })
                                .unwrap_or(p);
                            let namespace =
                                member.xml_namespace.as_ref().and_then(|n| n.uri.as_deref());
                            let mut doc = String::new();
                            xml::encode(service, &member.shape, root, namespace, v, &mut doc);
                            body = doc.into_bytes();
                            content_type = Some("application/xml");
                            // S3 wants a checksum on some of these (DeleteObjects).
                            headers.extend(checksum(&body));
                        }
                        (Some(Kind::Structure), _) => {
                            body = json::encode(service, &member.shape, v)
                                .to_string()
                                .into_bytes();
                            content_type = Some("application/json");
                        }
                        _ => {
                            body = text(v).into_bytes();
                            if service.protocol == Protocol::RestXml {
                                // What the AWS Java SDK sends for a string body (S3 objects):
                                // its type, and a CRC32 checksum S3 keeps with the object.
                                content_type = Some("text/plain; charset=UTF-8");
                                headers.extend(checksum(&body));
                            }
                        }
                    }
                }
            }
            None if service.protocol == Protocol::RestJson => {
                let has_body = s.members.values().any(|m| m.location.is_none());
                if has_body {
                    let shape_name = op.input.as_deref().unwrap_or_default();
                    body = json::encode(service, shape_name, input)
                        .to_string()
                        .into_bytes();
                    content_type = Some("application/json");
                }
            }
            None => {}
        }
    }
    if let Some(ct) = content_type {
        if !headers.iter().any(|(n, _)| n == "content-type") {
            headers.push(("content-type".into(), ct.into()));
        }
    }
    // `//` from an empty label would change the path; S3 keys keep theirs.
    let mut path_and_query = path;
    if !query.is_empty() {
        path_and_query.push(if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        });
        path_and_query.push_str(&query.join("&"));
    }
    Ok(HttpRequest {
        method: method.clone(),
        path_and_query,
        headers,
        body,
    })
}

/// The CRC32 checksum headers the AWS SDKs send with an S3 body.
fn checksum(body: &[u8]) -> [(String, String); 2] {
    use base64::Engine as _;
    let crc = crc32fast::hash(body).to_be_bytes();
    [
        (
            "x-amz-checksum-crc32".into(),
            base64::engine::general_purpose::STANDARD.encode(crc),
        ),
        ("x-amz-sdk-checksum-algorithm".into(), "CRC32".into()),
    ]
}

/// A header or query value: timestamps in ISO 8601, the rest as text.
fn wire_text(service: &Service, shape: &str, value: &Value) -> String {
    match service.shape(shape).map(|s| s.kind) {
        Some(Kind::Timestamp) => iso8601(value),
        _ => text(value),
    }
}

/// The output (of shape `shape_name`) a successful answer carries.
pub fn response(
    service: &Service,
    shape_name: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, String> {
    let Some(s) = service.shape(shape_name) else {
        return Ok(Value::Object(Map::new()));
    };
    let mut out = Map::new();
    for (name, member) in &s.members {
        let wire = member
            .location_name
            .as_deref()
            .unwrap_or(name)
            .to_lowercase();
        let kind = service
            .shape(&member.shape)
            .map(|s| s.kind)
            .unwrap_or(Kind::String);
        match member.location {
            Some(Location::Header) => {
                if let Some(v) = headers.get(&wire).and_then(|v| v.to_str().ok()) {
                    out.insert(
                        output_name(name),
                        scalar(kind, &Value::String(v.to_owned())),
                    );
                }
            }
            Some(Location::Headers) => {
                let mut map = Map::new();
                for (k, v) in headers {
                    if let (Some(key), Ok(v)) = (k.as_str().strip_prefix(&wire), v.to_str()) {
                        map.insert(key.to_owned(), Value::String(v.to_owned()));
                    }
                }
                out.insert(output_name(name), Value::Object(map));
            }
            Some(Location::StatusCode) => {
                out.insert(output_name(name), Value::from(status));
            }
            _ => {}
        }
    }
    match s.payload.as_deref() {
        Some(p) => {
            if let Some(member) = s.members.get(p) {
                let kind = service.shape(&member.shape).map(|s| s.kind);
                let value = match kind {
                    Some(Kind::Structure) if body.is_empty() => None,
                    Some(Kind::Structure) => Some(document(service, &member.shape, body)?),
                    _ => Some(Value::String(String::from_utf8_lossy(body).into_owned())),
                };
                if let Some(v) = value {
                    out.insert(output_name(p), v);
                }
            }
        }
        None if !body.is_empty() => {
            if let Value::Object(fields) = document(service, shape_name, body)? {
                out.extend(fields);
            }
        }
        None => {}
    }
    Ok(Value::Object(out))
}

/// A JSON or XML body decoded as `shape`.
fn document(service: &Service, shape: &str, body: &[u8]) -> Result<Value, String> {
    if service.protocol == Protocol::RestXml {
        let root = xml::parse(body)?;
        return Ok(xml::decode(service, shape, &root));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    Ok(json::decode(service, shape, &v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrations::aws_sdk::model;
    use serde_json::json;

    #[test]
    fn s3_put_object_binds_uri_headers_and_payload() {
        let s3 = model::service("s3").expect("model");
        let (_, op) = s3.operation("putObject").expect("op");
        let req = request(
            &s3,
            op,
            &json!({"Bucket": "b", "Key": "a dir/x.json", "Body": {"a": 1}, "ContentType": "application/json", "Metadata": {"k": "v"}}),
        )
        .expect("request");
        assert_eq!(req.method, "PUT");
        assert_eq!(req.path_and_query, "/b/a%20dir/x.json");
        assert_eq!(req.body, br#"{"a":1}"#);
        assert!(req
            .headers
            .contains(&("x-amz-checksum-crc32".into(), "Vhusrw==".into())));
        assert!(req
            .headers
            .contains(&("content-type".into(), "application/json".into())));
        assert!(req.headers.contains(&("x-amz-meta-k".into(), "v".into())));
        assert!(request(&s3, op, &json!({"Bucket": "b"})).is_err());
    }

    #[test]
    fn s3_get_object_reads_headers_and_body() {
        let s3 = model::service("s3").expect("model");
        let mut headers = HeaderMap::new();
        headers.insert("content-length", "9".parse().expect("header"));
        headers.insert("etag", "\"e\"".parse().expect("header"));
        headers.insert("x-amz-meta-color", "red".parse().expect("header"));
        let out = response(&s3, "GetObjectOutput", 200, &headers, b"text data").expect("output");
        assert_eq!(out["Body"], json!("text data"));
        assert_eq!(out["ContentLength"], json!(9));
        assert_eq!(out["ETag"], json!("\"e\""));
        assert_eq!(out["Metadata"], json!({"color": "red"}));
    }

    #[test]
    fn rest_json_query_and_body() {
        let lambda = model::service("lambda").expect("model");
        let (_, op) = lambda.operation("listFunctions").expect("op");
        let req = request(&lambda, op, &json!({"MaxItems": 5})).expect("request");
        assert_eq!(req.path_and_query, "/2015-03-31/functions?MaxItems=5");
        assert!(req.body.is_empty());
        let shape = "ListFunctionsResponse";
        let out = response(
            &lambda,
            shape,
            200,
            &HeaderMap::new(),
            br#"{"Functions":[{"FunctionName":"f"}]}"#,
        )
        .expect("output");
        assert_eq!(out, json!({"Functions": [{"FunctionName": "f"}]}));
        assert!(response(&lambda, shape, 200, &HeaderMap::new(), b"<html>").is_err());
    }
}
