//! API Gateway, `arn:aws:states:::apigateway:invoke` (request-response): a call of a
//! deployed REST or HTTP API.
//!
//! Parameters, as AWS's: `ApiEndpoint` (`ID.execute-api.REGION.amazonaws.com`), `Method`
//! (`GET`, `POST`, `PUT`, `DELETE`, `PATCH`, `HEAD`, `OPTIONS`), `Headers` and
//! `QueryParameters` (names to lists of values), `Stage`, `Path`, `RequestBody` (JSON, sent
//! as its text, or a string), `AllowNullValues`, and `AuthType`: `NO_AUTH` (the default),
//! `IAM_ROLE` (SigV4-signed for `execute-api` in the endpoint's region) or `RESOURCE_POLICY`
//! (signed the same way). The request goes to `https://ApiEndpoint/Stage/Path`, or with
//! `--endpoint execute-api=URL` to `URL/Stage/Path` (a local stand-in for the API).
//!
//! The result: `{"Headers": {name: [values]}, "ResponseBody": …, "StatusCode": 200,
//! "StatusText": "OK"}`, the body parsed when it is JSON. A non-2xx answer fails the task with
//! `ApiGateway.STATUS` (`ApiGateway.403`), its cause that same object as JSON text; no answer
//! fails it with `ApiGateway.SdkClientException`; `TimeoutSeconds` passing, `States.Timeout`.

use std::time::Duration;

use asl::error::names;
use asl::interpreter::{Dispatch, TaskOutcome};
use serde_json::{json, Value};

use super::http::{header_object, response_body};
use super::{client, error_chain, identity, percent_encode, sigv4, task_timeout, timed_out};
use crate::tasks::{failed, TaskReply};
use crate::Engine;

/// Without a `TimeoutSeconds`, how long one call may take (API Gateway's own limit is 29 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// `arn:aws:states:::apigateway:invoke` for an execution in `region`.
pub async fn invoke(engine: &Engine, d: &Dispatch, region: &str) -> TaskReply {
    let request = match Request::parse(&d.input, region) {
        Ok(r) => r,
        Err(e) => return failed(names::RUNTIME, e),
    };
    let base = match engine.config().endpoints.get("execute-api") {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("https://{}", request.host),
    };
    let url = format!("{base}{}", request.path_and_query);
    let mut headers: Vec<(String, String)> = request.headers.clone();
    if request.body.is_some() && !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let body = request.body.clone().unwrap_or_default();
    if request.signed {
        let names = ["execute-api"];
        let credentials = match identity::task_credentials(engine, &names, d, &request.region).await
        {
            Ok(c) => c,
            Err(e) => return e.reply("ApiGateway"),
        };
        let scope = sigv4::Scope {
            region: &request.region,
            service: "execute-api",
        };
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        match sigv4::headers(
            &credentials,
            &scope,
            &request.method,
            &url,
            &refs,
            body.as_bytes(),
        ) {
            Ok(signed) => headers.extend(signed.into_iter().map(|(n, v)| (n.to_owned(), v))),
            Err(e) => return failed("ApiGateway.SdkClientException", e),
        }
    }
    let http = match client(engine) {
        Ok(c) => c,
        Err(e) => return failed("ApiGateway.SdkClientException", e),
    };
    let Ok(method) = reqwest::Method::from_bytes(request.method.as_bytes()) else {
        return failed(names::RUNTIME, "The Method is not a valid HTTP method.");
    };
    let mut req = http
        .request(method, &url)
        .timeout(task_timeout(engine, d).unwrap_or(DEFAULT_TIMEOUT));
    for (n, v) in &headers {
        req = req.header(n.as_str(), v.as_str());
    }
    if request.body.is_some() {
        req = req.body(body);
    }
    let response = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return timed_out("The task timed out while waiting for the API to answer.")
        }
        Err(e) => {
            let cause = format!("Unable to execute HTTP request: {}", error_chain(&e));
            return failed("ApiGateway.SdkClientException", cause);
        }
    };
    let status = response.status();
    let response_headers = response.headers().clone();
    let text = match response.text().await {
        Ok(t) => t,
        Err(e) => return failed("ApiGateway.SdkClientException", error_chain(&e)),
    };
    let result = json!({
        "Headers": header_object(&response_headers),
        "ResponseBody": response_body(&response_headers, &text),
        "StatusCode": status.as_u16(),
        "StatusText": status.canonical_reason().unwrap_or(""),
    });
    match status.is_success() {
        true => TaskReply::Done(TaskOutcome::Succeeded(result)),
        false => failed(
            &format!("ApiGateway.{}", status.as_u16()),
            result.to_string(),
        ),
    }
}

/// A call, read from the Task's parameters.
#[derive(Debug, PartialEq)]
struct Request {
    host: String,
    /// The region signed for: the endpoint's, else the execution's.
    region: String,
    method: String,
    /// `/Stage/Path?query`, percent-encoded.
    path_and_query: String,
    /// Lower-case names, one entry per value.
    headers: Vec<(String, String)>,
    body: Option<String>,
    signed: bool,
}

impl Request {
    fn parse(p: &Value, region: &str) -> Result<Request, String> {
        let field = |name: &str| p.get(name).filter(|v| !v.is_null());
        let host = field("ApiEndpoint")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty() && !h.contains(['/', '?', '#', ' ']))
            .ok_or("The field 'ApiEndpoint' must be the API's host name (ID.execute-api.REGION.amazonaws.com).")?;
        let method = field("Method")
            .and_then(Value::as_str)
            .filter(|m| METHODS.contains(m))
            .ok_or(
                "The field 'Method' must be one of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS.",
            )?;
        let signed = match field("AuthType").and_then(Value::as_str) {
            None | Some("NO_AUTH") => false,
            Some("IAM_ROLE" | "RESOURCE_POLICY") => true,
            Some(other) => {
                return Err(format!(
                    "The AuthType '{other}' is not one of NO_AUTH, IAM_ROLE, RESOURCE_POLICY."
                ))
            }
        };
        let endpoint_region = host
            .split_once(".execute-api.")
            .and_then(|(_, rest)| rest.split('.').next())
            .filter(|r| !r.is_empty());
        let mut path = String::new();
        for part in [field("Stage"), field("Path")].into_iter().flatten() {
            let part = part
                .as_str()
                .ok_or("The fields 'Stage' and 'Path' are strings.")?;
            let part = part.trim_matches('/');
            if !part.is_empty() {
                path.push('/');
                path.push_str(&percent_encode(part, true));
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        let query = pairs(field("QueryParameters"), "QueryParameters")?;
        if !query.is_empty() {
            let encoded: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{}={}", percent_encode(k, false), percent_encode(v, false)))
                .collect();
            path.push('?');
            path.push_str(&encoded.join("&"));
        }
        let headers = pairs(field("Headers"), "Headers")?
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let body = field("RequestBody").map(|b| match b {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        Ok(Request {
            host: host.to_owned(),
            region: endpoint_region.unwrap_or(region).to_owned(),
            method: method.to_owned(),
            path_and_query: path,
            headers,
            body,
            signed,
        })
    }
}

/// `{name: [values]}` (a lone value taken as a list of one) as (name, value) pairs.
fn pairs(v: Option<&Value>, field: &str) -> Result<Vec<(String, String)>, String> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let Value::Object(map) = v else {
        return Err(format!(
            "The field '{field}' must map names to lists of values."
        ));
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = Vec::new();
    for (k, v) in map {
        match v {
            Value::Array(values) => out.extend(values.iter().map(|x| (k.clone(), text(x)))),
            other => out.push((k.clone(), text(other))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_from_parameters() {
        let r = Request::parse(
            &json!({
                "ApiEndpoint": "abc123.execute-api.eu-west-1.amazonaws.com",
                "Method": "POST", "Stage": "prod", "Path": "/pets/a b",
                "QueryParameters": {"q": ["x", "y&z"]},
                "Headers": {"X-Trace": ["t1"]},
                "RequestBody": {"name": "rex"},
                "AuthType": "IAM_ROLE"
            }),
            "us-east-1",
        )
        .expect("a request");
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(r.path_and_query, "/prod/pets/a%20b?q=x&q=y%26z");
        assert_eq!(r.headers, vec![("x-trace".to_owned(), "t1".to_owned())]);
        assert_eq!(r.body.as_deref(), Some(r#"{"name":"rex"}"#));
        assert!(r.signed);
        let plain = Request::parse(
            &json!({"ApiEndpoint": "api.example.com", "Method": "GET"}),
            "us-east-1",
        )
        .expect("a request");
        assert_eq!(
            (plain.region.as_str(), plain.path_and_query.as_str()),
            ("us-east-1", "/")
        );
        assert!(!plain.signed);
        for bad in [
            json!({"Method": "GET"}),
            json!({"ApiEndpoint": "https://x/", "Method": "GET"}),
            json!({"ApiEndpoint": "x", "Method": "TRACE"}),
            json!({"ApiEndpoint": "x", "Method": "GET", "AuthType": "COGNITO"}),
            json!({"ApiEndpoint": "x", "Method": "GET", "Headers": ["a"]}),
        ] {
            assert!(Request::parse(&bad, "us-east-1").is_err(), "{bad}");
        }
    }
}
