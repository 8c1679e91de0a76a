//! The HTTP Task, `arn:aws:states:::http:invoke`: a real HTTP request.
//!
//! Parameters: `ApiEndpoint` (the URL), `Method` (`GET`, `POST`, `PUT`, `DELETE`, `PATCH`,
//! `OPTIONS`, `HEAD`), `Headers`, `QueryParameters`, `RequestBody`, and `Transform`
//! (`RequestBodyEncoding`: `NONE` or `URL_ENCODED`; `RequestEncodingOptions.ArrayFormat`:
//! `INDICES` (the default), `REPEAT`, `COMMAS` or `BRACKETS`).
//!
//! `Authentication` (`ConnectionArn`) and `InvocationConfig` are accepted and **ignored**:
//! there is no EventBridge connection to take credentials or network settings from, so put
//! any credentials the API needs in `Headers`. Only plain `http://` endpoints are reached:
//! this build has no TLS (AWS takes only `https://`), so an `https://` endpoint fails the task
//! with a `States.Runtime` error saying so.
//!
//! The result, as AWS documents it: `{"Headers": {name: [values]}, "ResponseBody": …,
//! "StatusCode": 200, "StatusText": "OK"}`, the body parsed when the response's
//! `Content-Type` is JSON, else a string. A non-2xx answer fails the task with
//! `States.Http.StatusCode.NNN`, its cause that same result object as JSON text. No answer
//! (refused, reset, the request limit passing) fails it with `States.Http.Socket`; the task's
//! `TimeoutSeconds` passing first ends it with `States.Timeout`. A request takes at most
//! 60 seconds, AWS's limit for an HTTP Task.

use asl::error::names;
use std::time::Duration;

use asl::interpreter::{Dispatch, TaskOutcome};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::{client, error_chain, outbound, task_timeout, timed_out};
use crate::tasks::{failed, TaskReply};
use crate::Engine;

/// AWS's limit on one HTTP Task request.
const REQUEST_LIMIT: Duration = Duration::from_secs(60);

/// How `URL_ENCODED` writes arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayFormat {
    /// `a[0]=x&a[1]=y`
    Indices,
    /// `a=x&a=y`
    Repeat,
    /// `a=x,y`
    Commas,
    /// `a[]=x&a[]=y`
    Brackets,
}

/// `arn:aws:states:::http:invoke`.
pub async fn invoke(engine: &Engine, d: &Dispatch) -> TaskReply {
    let p = &d.input;
    let Some(endpoint) = p.get("ApiEndpoint").and_then(Value::as_str) else {
        return failed(
            names::RUNTIME,
            "The field 'ApiEndpoint' is required by arn:aws:states:::http:invoke.",
        );
    };
    let method = match p
        .get("Method")
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
    {
        Some(m)
            if ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
                .contains(&m.as_str()) =>
        {
            match Method::from_bytes(m.as_bytes()) {
                Ok(m) => m,
                Err(_) => return bad_method(p),
            }
        }
        _ => return bad_method(p),
    };
    let mut url = match reqwest::Url::parse(endpoint) {
        Ok(u) if u.scheme() == "http" => u,
        Ok(u) if u.scheme() == "https" => {
            return failed(
                names::RUNTIME,
                format!(
                    "The ApiEndpoint '{u}' uses https, which this build of stepwise does not speak (no TLS): use an http:// endpoint, or mock the state with --mock-config."
                ),
            )
        }
        _ => {
            return failed(
                names::RUNTIME,
                format!("The ApiEndpoint '{endpoint}' is not a valid http URL."),
            )
        }
    };
    if !engine.config().allow_link_local {
        if let Err(e) = outbound::check_url(&url) {
            return failed("States.Http.Socket", format!("{method} {url}: {e}"));
        }
    }
    if let Some(Value::Object(query)) = p.get("QueryParameters") {
        let mut pairs = Vec::new();
        for (k, v) in query {
            flatten(k, v, ArrayFormat::Repeat, &mut pairs);
        }
        if !pairs.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &pairs {
                q.append_pair(k, v);
            }
        }
    }
    let headers = match request_headers(p.get("Headers")) {
        Ok(h) => h,
        Err(reply) => return reply,
    };
    let (body, content_type) = match request_body(p) {
        Ok(b) => b,
        Err(reply) => return reply,
    };

    let http = match client(engine) {
        Ok(c) => c,
        Err(e) => return failed("States.Http.Socket", e),
    };
    let task_limit = task_timeout(engine, d);
    let timeout = task_limit.map_or(REQUEST_LIMIT, |t| t.min(REQUEST_LIMIT));
    let by_task = task_limit.is_some_and(|t| t <= REQUEST_LIMIT);
    let mut request = http
        .request(method.clone(), url.clone())
        .timeout(timeout)
        .header(
            reqwest::header::USER_AGENT,
            "Amazon|StepFunctions|HttpInvoke|stepwise",
        );
    if let Some((text, ct)) = body.zip(content_type) {
        if !headers.contains_key(CONTENT_TYPE) {
            request = request.header(CONTENT_TYPE, ct);
        }
        request = request.body(text);
    }
    request = request.headers(headers);

    let failure = |e: reqwest::Error| -> TaskReply {
        if e.is_timeout() && by_task {
            return timed_out(format!(
                "{method} {url} did not answer within the task's TimeoutSeconds."
            ));
        }
        let what = if e.is_timeout() {
            format!("no answer within {} seconds", timeout.as_secs())
        } else {
            error_chain(&e)
        };
        failed("States.Http.Socket", format!("{method} {url}: {what}"))
    };
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let status = response.status();
    let response_headers = response.headers().clone();
    let text = match response.text().await {
        Ok(t) => t,
        Err(e) => return failure(e),
    };
    let result = json!({
        "Headers": header_object(&response_headers),
        "ResponseBody": response_body(&response_headers, &text),
        "StatusCode": status.as_u16(),
        "StatusText": status.canonical_reason().unwrap_or(""),
    });
    if status.is_success() {
        TaskReply::Done(TaskOutcome::Succeeded(result))
    } else {
        failed(
            &format!("States.Http.StatusCode.{}", status.as_u16()),
            result.to_string(),
        )
    }
}

fn bad_method(p: &Value) -> TaskReply {
    failed(
        names::RUNTIME,
        format!(
            "The Method {} is not supported by arn:aws:states:::http:invoke: use GET, POST, PUT, DELETE, PATCH, OPTIONS or HEAD.",
            p.get("Method").map(Value::to_string).unwrap_or_else(|| "(missing)".into())
        ),
    )
}

/// `Headers`: an object of names to values (non-string values as their JSON text).
fn request_headers(headers: Option<&Value>) -> Result<HeaderMap, TaskReply> {
    let mut map = HeaderMap::new();
    let Some(Value::Object(headers)) = headers else {
        return Ok(map);
    };
    for (k, v) in headers {
        let text = scalar_text(v);
        let name = HeaderName::from_bytes(k.as_bytes());
        let value = HeaderValue::from_str(&text);
        match (name, value) {
            (Ok(n), Ok(v)) => {
                map.append(n, v);
            }
            _ => {
                return Err(failed(
                    names::RUNTIME,
                    format!("The header '{k}' in Headers is not a valid HTTP header."),
                ))
            }
        }
    }
    Ok(map)
}

/// `RequestBody` (+ `Transform`): the body text and its default `Content-Type`.
fn request_body(p: &Value) -> Result<(Option<String>, Option<&'static str>), TaskReply> {
    let body = match p.get("RequestBody") {
        None | Some(Value::Null) => return Ok((None, None)),
        Some(b) => b,
    };
    let transform = p.get("Transform");
    let encoding = transform
        .and_then(|t| t.get("RequestBodyEncoding"))
        .and_then(Value::as_str)
        .unwrap_or("NONE");
    let format = match transform
        .and_then(|t| t.get("RequestEncodingOptions"))
        .and_then(|o| o.get("ArrayFormat"))
        .and_then(Value::as_str)
        .unwrap_or("INDICES")
    {
        "INDICES" => ArrayFormat::Indices,
        "REPEAT" => ArrayFormat::Repeat,
        "COMMAS" => ArrayFormat::Commas,
        "BRACKETS" => ArrayFormat::Brackets,
        other => {
            return Err(failed(
                names::RUNTIME,
                format!(
                    "The ArrayFormat '{other}' is not one of BRACKETS, COMMAS, REPEAT, INDICES."
                ),
            ))
        }
    };
    match (encoding, body) {
        ("URL_ENCODED", Value::Object(fields)) => {
            let mut pairs = Vec::new();
            for (k, v) in fields {
                flatten(k, v, format, &mut pairs);
            }
            let text = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                .collect::<Vec<String>>()
                .join("&");
            Ok((Some(text), Some("application/x-www-form-urlencoded")))
        }
        ("URL_ENCODED", Value::String(s)) => {
            Ok((Some(s.clone()), Some("application/x-www-form-urlencoded")))
        }
        ("NONE", Value::String(s)) => Ok((Some(s.clone()), Some("text/plain; charset=UTF-8"))),
        ("NONE" | "URL_ENCODED", other) => Ok((
            Some(other.to_string()),
            Some("application/json; charset=UTF-8"),
        )),
        (other, _) => Err(failed(
            names::RUNTIME,
            format!("The RequestBodyEncoding '{other}' is not one of NONE, URL_ENCODED."),
        )),
    }
}

/// Flattens `key: value` into form pairs: objects as `key[field]`, arrays by `format`.
fn flatten(key: &str, value: &Value, format: ArrayFormat, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                flatten(&format!("{key}[{k}]"), v, format, out);
            }
        }
        Value::Array(items) => {
            let all_scalar = items.iter().all(|v| !v.is_object() && !v.is_array());
            match format {
                ArrayFormat::Commas if all_scalar => {
                    let joined = items
                        .iter()
                        .map(scalar_text)
                        .collect::<Vec<String>>()
                        .join(",");
                    out.push((key.to_owned(), joined));
                }
                ArrayFormat::Repeat => {
                    for v in items {
                        flatten(key, v, format, out);
                    }
                }
                ArrayFormat::Brackets => {
                    for v in items {
                        flatten(&format!("{key}[]"), v, format, out);
                    }
                }
                ArrayFormat::Indices | ArrayFormat::Commas => {
                    for (i, v) in items.iter().enumerate() {
                        flatten(&format!("{key}[{i}]"), v, format, out);
                    }
                }
            }
        }
        scalar => out.push((key.to_owned(), scalar_text(scalar))),
    }
}

/// A string as itself, `null` as empty, anything else as its JSON text.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b' ' => out.push('+'),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*') => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Response headers as `{name: [values]}` (names in lower case, as the wire has them).
pub(super) fn header_object(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for name in headers.keys() {
        let values: Vec<Value> = headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        out.insert(name.as_str().to_owned(), Value::Array(values));
    }
    Value::Object(out)
}

/// The body parsed when it is JSON (by `Content-Type`), else the text.
pub(super) fn response_body(headers: &HeaderMap, text: &str) -> Value {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false);
    if is_json {
        if let Ok(v) = serde_json::from_str(text) {
            return v;
        }
    }
    Value::String(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(body: Value, format: &str) -> String {
        let p = json!({
            "RequestBody": body,
            "Transform": {
                "RequestBodyEncoding": "URL_ENCODED",
                "RequestEncodingOptions": { "ArrayFormat": format },
            },
        });
        match request_body(&p) {
            Ok((Some(text), Some("application/x-www-form-urlencoded"))) => text,
            _ => panic!("not URL-encoded"),
        }
    }

    #[test]
    fn url_encoded_array_formats() {
        let body = json!({"a": ["x", "y z"], "n": 1, "o": {"k": "v"}});
        let cases = [
            ("INDICES", "a%5B0%5D=x&a%5B1%5D=y+z&n=1&o%5Bk%5D=v"),
            ("REPEAT", "a=x&a=y+z&n=1&o%5Bk%5D=v"),
            ("COMMAS", "a=x%2Cy+z&n=1&o%5Bk%5D=v"),
            ("BRACKETS", "a%5B%5D=x&a%5B%5D=y+z&n=1&o%5Bk%5D=v"),
        ];
        for (format, want) in cases {
            assert_eq!(encoded(body.clone(), format), want, "{format}");
        }
    }

    #[test]
    fn json_body_by_default() {
        let p = json!({"RequestBody": {"a": 1}});
        let Ok((Some(text), Some(ct))) = request_body(&p) else {
            panic!("no body");
        };
        assert_eq!(text, r#"{"a":1}"#);
        assert!(ct.starts_with("application/json"));
    }

    #[test]
    fn response_bodies() {
        let mut h = HeaderMap::new();
        assert_eq!(response_body(&h, "{\"a\":1}"), json!("{\"a\":1}"));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(response_body(&h, "{\"a\":1}"), json!({"a": 1}));
        assert_eq!(response_body(&h, "not json"), json!("not json"));
    }
}
