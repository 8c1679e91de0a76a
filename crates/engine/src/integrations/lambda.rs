//! AWS Lambda over the Lambda Invoke REST API: AWS itself, or at `--lambda-endpoint` /
//! `LAMBDA_ENDPOINT` AWS SAM local, LocalStack, moto, or any server speaking
//! `POST /2015-03-31/functions/{FunctionName}/invocations`.
//!
//! Two resources:
//! - `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`: the payload is the task's
//!   effective input and the result is the function's response payload (`LambdaFunction*`
//!   history events, decided by the interpreter).
//! - `arn:aws:states:::lambda:invoke` (+ `.waitForTaskToken`): the Invoke API's parameters
//!   (`FunctionName`, `Payload`, `Qualifier`, `InvocationType`, `ClientContext`) and AWS's
//!   result shape (`ExecutedVersion`, `Payload`, `SdkHttpMetadata`, `SdkResponseMetadata`,
//!   `StatusCode`). With `.waitForTaskToken` the function is invoked asynchronously (`Event`,
//!   unless `InvocationType` says otherwise) and the task waits for `SendTask*`.
//!
//! Requests go to `--lambda-endpoint` (or `--endpoint lambda=…`, else `--aws-endpoint`), else
//! to AWS Lambda in the function's (or the execution's) region, and are SigV4-signed
//! ([`super::sigv4`]: the environment's credentials for a configured endpoint, the standard
//! chain's for AWS).
//! `FunctionName` may be a name, a full or partial ARN, with or without a qualifier; the
//! request names the function by its bare name (what every emulator accepts) and passes the
//! qualifier as `?Qualifier=`.
//!
//! Errors, as Step Functions reports them:
//! - a function error (`X-Amz-Function-Error` on the response): the payload's `errorType`,
//!   with the payload JSON text as the cause; `Lambda.Unknown` when the payload names no
//!   error type;
//! - an error answer of the Lambda API: `Lambda.<ExceptionName>` from `x-amzn-ErrorType` (or the
//!   body's `__type`), else by status (`404` → `ResourceNotFoundException`, `429` →
//!   `TooManyRequestsException`, others `ServiceException`), the cause in the AWS Java SDK's
//!   `… (Service: AWSLambda; Status Code: …; Error Code: …; Request ID: …; Proxy: null)` form;
//! - no answer at all (connection refused, reset, timed out without a `TimeoutSeconds`):
//!   `Lambda.SdkClientException`, what the Java SDK Step Functions uses raises when it cannot
//!   reach the service (one of the errors AWS's docs advise retrying);
//! - no credentials for AWS Lambda: `Lambda.SdkClientException` too;
//! - the task's `TimeoutSeconds` passing while the request is in flight: `States.Timeout`.

use asl::error::names;
use std::time::Duration;

use asl::interpreter::{Dispatch, TaskOutcome};
use asl::task::Pattern;
use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};

use super::{
    client, configured_endpoint, error_chain, identity, percent_encode, sdk_metadata, sigv4,
    task_timeout, timed_out,
};
use crate::tasks::{failed, TaskReply};
use crate::Engine;

/// Without a `TimeoutSeconds`: Lambda's longest run (15 minutes) and a minute more.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(16 * 60);

/// A function as the Invoke API names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Function {
    name: String,
    qualifier: Option<String>,
}

impl Function {
    /// `NAME`, `NAME:QUALIFIER`, `ACCOUNT:function:NAME[:QUALIFIER]` or
    /// `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
    fn parse(text: &str) -> Function {
        let parts: Vec<&str> = text.split(':').collect();
        let (name, qualifier) = match parts.iter().position(|p| *p == "function") {
            Some(i) if i + 1 < parts.len() => (parts[i + 1], parts.get(i + 2).copied()),
            _ => match parts.as_slice() {
                [name, qualifier] => (*name, Some(*qualifier)),
                _ => (text, None),
            },
        };
        Function {
            name: name.to_owned(),
            qualifier: qualifier.filter(|q| !q.is_empty()).map(str::to_owned),
        }
    }

    /// `NAME` or `NAME:QUALIFIER`, for messages.
    fn display(&self) -> String {
        match &self.qualifier {
            Some(q) => format!("{}:{q}", self.name),
            None => self.name.clone(),
        }
    }
}

/// One Invoke call.
struct Call {
    function: Function,
    payload: String,
    invocation_type: String,
    client_context: Option<String>,
    /// `LogType` (`Tail`: the answer carries the log's tail, `LogResult`).
    log_type: Option<String>,
    /// Whether a function error's cause is its payload re-serialised as compact JSON
    /// (`lambda:invoke`, as AWS does) rather than as the function sent it (Lambda ARNs).
    compact_cause: bool,
}

/// What the Invoke API answered.
enum Answer {
    /// 2xx without a function error.
    Ok {
        status: u16,
        headers: HeaderMap,
        body: String,
    },
    /// The task's outcome is decided already (function error, API error, no answer).
    Done(TaskReply),
}

/// `arn:aws:lambda:…:function:NAME[:QUALIFIER]`: the result is the response payload.
pub async fn invoke_arn(engine: &Engine, region: &str, arn: &str, d: &Dispatch) -> TaskReply {
    let call = Call {
        function: Function::parse(arn),
        payload: d.input.to_string(),
        invocation_type: "RequestResponse".into(),
        client_context: None,
        log_type: None,
        compact_cause: false,
    };
    match send(engine, region, d, &call).await {
        Answer::Ok { body, .. } => TaskReply::Done(TaskOutcome::Succeeded(parse_payload(&body))),
        Answer::Done(reply) => reply,
    }
}

/// `arn:aws:states:::lambda:invoke` and `lambda:invoke.waitForTaskToken`.
pub async fn invoke_service(
    engine: &Engine,
    region: &str,
    d: &Dispatch,
    pattern: Pattern,
) -> TaskReply {
    let params = &d.input;
    let Some(name) = params.get("FunctionName").and_then(Value::as_str) else {
        return failed(
            names::RUNTIME,
            "The field 'FunctionName' is required by arn:aws:states:::lambda:invoke.",
        );
    };
    let mut function = Function::parse(name);
    if let Some(q) = params.get("Qualifier").and_then(Value::as_str) {
        function.qualifier = Some(q.to_owned());
    }
    let callback = pattern == Pattern::WaitForTaskToken;
    let invocation_type = match params.get("InvocationType").and_then(Value::as_str) {
        Some(t) => t.to_owned(),
        None if callback => "Event".into(),
        None => "RequestResponse".into(),
    };
    // A string payload is sent as the text itself (AWS does), anything else as JSON.
    let payload = match params.get("Payload") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(v) => v.to_string(),
    };
    let client_context = params
        .get("ClientContext")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let call = Call {
        function,
        payload,
        invocation_type,
        client_context,
        log_type: params
            .get("LogType")
            .and_then(Value::as_str)
            .map(str::to_owned),
        compact_cause: true,
    };
    match send(engine, region, d, &call).await {
        Answer::Ok { .. } if callback => TaskReply::Pending,
        Answer::Ok {
            status,
            headers,
            body,
        } => TaskReply::Done(TaskOutcome::Succeeded(invoke_result(
            status, &headers, &body,
        ))),
        Answer::Done(reply) => reply,
    }
}

/// The function's response payload as JSON (a string if it is not JSON, null if empty).
fn parse_payload(body: &str) -> Value {
    if body.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
}

/// `lambda:invoke`'s result: the Invoke response as the AWS Java SDK describes it.
fn invoke_result(status: u16, headers: &HeaderMap, body: &str) -> Value {
    let (http_metadata, request_id) = sdk_metadata(status, headers);
    let mut result = Map::new();
    if status != 202 {
        let version = header(headers, "x-amz-executed-version").unwrap_or_else(|| "$LATEST".into());
        result.insert("ExecutedVersion".into(), json!(version));
    }
    let payload = if status == 202 {
        json!("")
    } else {
        parse_payload(body)
    };
    if let Some(log) = header(headers, "x-amz-log-result") {
        result.insert("LogResult".into(), json!(log));
    }
    result.insert("Payload".into(), payload);
    result.insert("SdkHttpMetadata".into(), http_metadata);
    result.insert(
        "SdkResponseMetadata".into(),
        json!({ "RequestId": request_id }),
    );
    result.insert("StatusCode".into(), json!(status));
    Value::Object(result)
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Calls the Invoke API and sorts its answer.
async fn send(engine: &Engine, region: &str, d: &Dispatch, call: &Call) -> Answer {
    let endpoint = match configured_endpoint(engine.config(), &["lambda"]) {
        Some(url) => url.clone(),
        None => format!("https://lambda.{region}.amazonaws.com"),
    };
    let credentials = match identity::task_credentials(engine, &["lambda"], d, region).await {
        Ok(c) => c,
        Err(e) => return Answer::Done(e.reply("Lambda")),
    };
    let mut url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        endpoint.trim_end_matches('/'),
        percent_encode(&call.function.name, false)
    );
    if let Some(q) = &call.function.qualifier {
        url.push_str(&format!("?Qualifier={}", percent_encode(q, false)));
    }
    let http = match client(engine) {
        Ok(c) => c,
        Err(e) => return Answer::Done(failed("Lambda.SdkClientException", e)),
    };
    let timeout = task_timeout(engine, d);
    let mut headers = vec![
        ("content-type", "application/json"),
        ("x-amz-invocation-type", call.invocation_type.as_str()),
    ];
    if let Some(cc) = &call.client_context {
        headers.push(("x-amz-client-context", cc));
    }
    if let Some(log_type) = &call.log_type {
        headers.push(("x-amz-log-type", log_type));
    }
    let scope = sigv4::Scope {
        region,
        service: "lambda",
    };
    let body = call.payload.as_bytes();
    let signed = match sigv4::headers(&credentials, &scope, "POST", &url, &headers, body) {
        Ok(s) => s,
        Err(e) => return Answer::Done(failed("Lambda.SdkClientException", e)),
    };
    let mut request = http
        .post(&url)
        .timeout(timeout.unwrap_or(DEFAULT_TIMEOUT))
        .body(call.payload.clone());
    for (name, value) in headers
        .iter()
        .copied()
        .chain(signed.iter().map(|(n, v)| (*n, v.as_str())))
    {
        request = request.header(name, value);
    }
    let failure = |e: reqwest::Error| -> Answer {
        if e.is_timeout() && timeout.is_some() {
            return Answer::Done(timed_out(format!(
                "Lambda function '{}' did not answer within the task's TimeoutSeconds.",
                call.function.display()
            )));
        }
        Answer::Done(failed(
            "Lambda.SdkClientException",
            format!(
                "Unable to execute HTTP request: {} ({url})",
                error_chain(&e)
            ),
        ))
    };
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.text().await {
        Ok(b) => b,
        Err(e) => return failure(e),
    };
    if (200..300).contains(&status) {
        if headers.contains_key("x-amz-function-error") {
            return Answer::Done(function_error(&body, call.compact_cause));
        }
        return Answer::Ok {
            status,
            headers,
            body,
        };
    }
    Answer::Done(api_error(status, &headers, &body, &call.function))
}

/// A function error: the payload's `errorType`, the payload as the cause (`compact`: as
/// compact JSON).
fn function_error(body: &str, compact: bool) -> TaskReply {
    let payload: Option<Value> = serde_json::from_str(body).ok();
    match payload
        .as_ref()
        .and_then(|p| p.get("errorType"))
        .and_then(Value::as_str)
    {
        Some(error_type) => match (compact, &payload) {
            (true, Some(p)) => failed(error_type, p.to_string()),
            _ => failed(error_type, body),
        },
        None => failed(
            "Lambda.Unknown",
            format!(
                "The cause could not be determined because Lambda did not return an error type. Returned payload: {body}"
            ),
        ),
    }
}

/// An error answer of the Lambda API: `Lambda.<ExceptionName>`.
fn api_error(status: u16, headers: &HeaderMap, body: &str, function: &Function) -> TaskReply {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let from_header = header(headers, "x-amzn-errortype")
        .map(|t| t.split(':').next().unwrap_or_default().to_owned());
    let from_body = ["__type", "Type", "code", "Code"].iter().find_map(|k| {
        let t = parsed.get(*k)?.as_str()?;
        let t = t.rsplit('#').next().unwrap_or(t);
        // Lambda's own `Type` is the fault side (`User`, `Service`), not an exception name.
        (t.ends_with("Exception") || t.ends_with("Error")).then(|| t.to_owned())
    });
    let name = from_header
        .filter(|n| !n.is_empty())
        .or(from_body)
        .unwrap_or_else(|| {
            match status {
                404 => "ResourceNotFoundException",
                429 => "TooManyRequestsException",
                _ => "ServiceException",
            }
            .to_owned()
        });
    let message = ["message", "Message", "errorMessage"]
        .iter()
        .find_map(|k| parsed.get(*k).and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| match (status, body.trim()) {
            (404, "") => format!("Function not found: {}", function.display()),
            (_, "") => format!("The Lambda endpoint answered HTTP {status}"),
            (_, text) => text.chars().take(1024).collect(),
        });
    let request_id = header(headers, "x-amzn-requestid").unwrap_or_else(|| "null".into());
    failed(
        &format!("Lambda.{name}"),
        format!(
            "{message} (Service: AWSLambda; Status Code: {status}; Error Code: {name}; Request ID: {request_id}; Proxy: null)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names() {
        let cases = [
            ("echo", "echo", None),
            ("echo:prod", "echo", Some("prod")),
            ("123456789012:function:echo", "echo", None),
            ("123456789012:function:echo:7", "echo", Some("7")),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:echo",
                "echo",
                None,
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST",
                "echo",
                Some("$LATEST"),
            ),
        ];
        for (text, name, qualifier) in cases {
            let f = Function::parse(text);
            assert_eq!(f.name, name, "{text}");
            assert_eq!(f.qualifier.as_deref(), qualifier, "{text}");
        }
    }

    #[test]
    fn function_errors() {
        let body = r#"{"errorType": "ValueError", "errorMessage": "bad"}"#;
        let TaskReply::Done(TaskOutcome::Failed(ec)) = function_error(body, true) else {
            panic!("not a failure");
        };
        assert_eq!(ec.error.as_deref(), Some("ValueError"));
        assert_eq!(
            ec.cause.as_deref(),
            Some(r#"{"errorType":"ValueError","errorMessage":"bad"}"#)
        );
        let TaskReply::Done(TaskOutcome::Failed(ec)) = function_error(body, false) else {
            panic!("not a failure");
        };
        assert_eq!(ec.cause.as_deref(), Some(body));
        let TaskReply::Done(TaskOutcome::Failed(ec)) = function_error("\"boom\"", true) else {
            panic!("not a failure");
        };
        assert_eq!(ec.error.as_deref(), Some("Lambda.Unknown"));
    }

    #[test]
    fn api_errors_take_the_exception_name() {
        let f = Function::parse("echo");
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-amzn-errortype",
            reqwest::header::HeaderValue::from_static("TooManyRequestsException:http://x"),
        );
        let TaskReply::Done(TaskOutcome::Failed(ec)) = api_error(
            429,
            &headers,
            r#"{"Type":"User","message":"slow down"}"#,
            &f,
        ) else {
            panic!("not a failure");
        };
        assert_eq!(ec.error.as_deref(), Some("Lambda.TooManyRequestsException"));
        assert!(ec
            .cause
            .unwrap_or_default()
            .starts_with("slow down (Service: AWSLambda; Status Code: 429;"));
        let TaskReply::Done(TaskOutcome::Failed(ec)) =
            api_error(404, &HeaderMap::new(), r#"{"Type":"User"}"#, &f)
        else {
            panic!("not a failure");
        };
        assert_eq!(
            ec.error.as_deref(),
            Some("Lambda.ResourceNotFoundException")
        );
        let TaskReply::Done(TaskOutcome::Failed(ec)) = api_error(502, &HeaderMap::new(), "", &f)
        else {
            panic!("not a failure");
        };
        assert_eq!(ec.error.as_deref(), Some("Lambda.ServiceException"));
    }

    #[test]
    fn encodes_path_segments() {
        assert_eq!(percent_encode("$LATEST", false), "%24LATEST");
        assert_eq!(percent_encode("my-fn_1.x", false), "my-fn_1.x");
    }
}
