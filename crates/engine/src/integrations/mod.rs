//! Service integrations: how a Task's resource is invoked.
//!
//! Each integration turns a [`Dispatch`] into a [`TaskReply`]. Activities and nested executions
//! live in the engine itself (`activities.rs`, `tasks.rs`); everything reached over the
//! network lives here:
//! - [`lambda`]: `arn:aws:lambda:…:function:NAME` and `arn:aws:states:::lambda:invoke`
//!   (+ `.waitForTaskToken`) over the Lambda Invoke REST API at `--lambda-endpoint`;
//! - [`http`]: the HTTP Task, `arn:aws:states:::http:invoke`;
//! - [`aws_sdk`]: `arn:aws:states:::aws-sdk:SERVICE:ACTION`, driven by the AWS service models,
//!   and the optimized SNS, SQS, EventBridge and DynamoDB integrations
//!   ([`aws_sdk::optimized`]), signed by [`sigv4`];
//! - [`apigateway`]: `apigateway:invoke`, a call of a deployed API (SigV4 for `IAM_ROLE`);
//! - [`bedrock`]: `bedrock:invokeModel`, over the Bedrock Runtime model;
//! - [`jobs`]: the optimized integrations that run a job (Athena, ECS, Batch, Glue, CodeBuild),
//!   `.sync` included, on the same calls.
//!
//! Every request has a connect timeout and an overall timeout (the task's `TimeoutSeconds`,
//! scaled like the interpreter's timer, plus a grace period), so no task hangs on the network.

pub mod apigateway;
pub mod aws_sdk;
pub mod bedrock;
pub mod http;
pub mod identity;
pub mod jobs;
pub mod lambda;
pub mod mock;
pub mod outbound;
pub mod sigv4;

use asl::error::names;
use std::time::Duration;

use asl::history::ErrorCause;
use asl::interpreter::{Dispatch, TaskOutcome};
use asl::task::{Pattern, Resource};
use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};

use crate::tasks::{failed, TaskReply};
use crate::{Config, Engine};

/// How long a TCP connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Added to a task's (scaled) `TimeoutSeconds`: the interpreter's durable timer normally ends
/// the task first; the client timeout only guarantees the request does not outlive it.
const TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// Invokes a resource that is neither an activity nor a nested execution, for an execution
/// in `region`.
pub async fn invoke(engine: &Engine, region: &str, resource: &Resource, d: &Dispatch) -> TaskReply {
    match resource {
        Resource::Lambda { arn } => {
            let region = arn
                .split(':')
                .nth(3)
                .filter(|r| !r.is_empty())
                .unwrap_or(region);
            lambda::invoke_arn(engine, region, arn, d).await
        }
        Resource::Service {
            service,
            action,
            pattern,
            ..
        } if service == "lambda"
            && matches!(
                (action.as_str(), pattern),
                ("invoke", Pattern::RequestResponse)
                    | ("invoke.waitForTaskToken", Pattern::WaitForTaskToken)
            ) =>
        {
            lambda::invoke_service(engine, region, d, *pattern).await
        }
        Resource::Service {
            service,
            action,
            pattern: Pattern::RequestResponse,
            ..
        } if service == "http" && action == "invoke" => http::invoke(engine, d).await,
        Resource::Service {
            arn,
            service,
            action,
            pattern,
        } => {
            let region = resource_region(arn).unwrap_or(region);
            match service.strip_prefix("aws-sdk:") {
                Some(name) => aws_sdk::invoke(engine, d, name, action, *pattern, region).await,
                None if aws_sdk::optimized::handles(service, action) => {
                    aws_sdk::optimized::invoke(engine, d, service, action, *pattern, region).await
                }
                None if service == "apigateway" => match (action.as_str(), pattern) {
                    ("invoke", Pattern::RequestResponse) => {
                        apigateway::invoke(engine, d, region).await
                    }
                    // AWS records what the API answered, then waits for the token.
                    ("invoke.waitForTaskToken", Pattern::WaitForTaskToken) => {
                        match apigateway::invoke(engine, d, region).await {
                            TaskReply::Done(TaskOutcome::Succeeded(v)) => TaskReply::Submitted(v),
                            other => other,
                        }
                    }
                    _ => unsupported(resource),
                },
                None if service == "bedrock" => match (action.as_str(), pattern) {
                    ("invokeModel", Pattern::RequestResponse) => {
                        bedrock::invoke(engine, d, region).await
                    }
                    _ => unsupported(resource),
                },
                None if jobs::handles(service, action) => {
                    jobs::invoke(engine, d, service, action, *pattern, region).await
                }
                None => unsupported(resource),
            }
        }
        other => unsupported(other),
    }
}

/// The endpoint configured for a service, by any of its `names` (`aws-sdk:NAME`, the endpoint
/// prefix): its `--endpoint`/`*_ENDPOINT` override (`LAMBDA_ENDPOINT` for Lambda), else
/// `--aws-endpoint`. `None`: the service's AWS endpoint.
pub(crate) fn configured_endpoint<'a>(config: &'a Config, names: &[&str]) -> Option<&'a String> {
    let lambda = names
        .contains(&"lambda")
        .then_some(config.lambda_endpoint.as_ref())
        .flatten();
    names
        .iter()
        .find_map(|n| config.endpoints.get(*n))
        .or(lambda)
        .or(config.aws_endpoint.as_ref())
}

/// The region a service-integration ARN names (`arn:aws:states:eu-west-1:…`), if any.
fn resource_region(arn: &str) -> Option<&str> {
    arn.split(':').nth(3).filter(|r| !r.is_empty())
}

/// The task fails with `States.Runtime` naming an action stepwise does not perform.
pub fn unsupported_action(service: &str, action: &str) -> TaskReply {
    failed(
        names::RUNTIME,
        format!("The resource 'arn:aws:states:::{service}:{action}' is not supported by stepwise yet; mock it with a MockConfigFile (--mock-config)."),
    )
}

/// The `SdkHttpMetadata` the AWS Java SDK reports for an answer (headers in its casing), and
/// the request id (the answer's, else a new one).
pub(crate) fn sdk_metadata(status: u16, headers: &HeaderMap) -> (Value, String) {
    let request_id = headers
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut all = Map::new();
    let mut single = Map::new();
    for name in headers.keys() {
        let values: Vec<Value> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| Value::String(v.to_owned()))
            .collect();
        let key = header_case(name.as_str());
        if let Some(Value::String(first)) = values.first() {
            single.insert(key.clone(), Value::String(first.clone()));
        }
        all.insert(key, Value::Array(values));
    }
    if !all.contains_key("x-amzn-RequestId") {
        all.insert("x-amzn-RequestId".into(), json!([request_id]));
        single.insert("x-amzn-RequestId".into(), json!(request_id));
    }
    let metadata = json!({
        "AllHttpHeaders": all,
        "HttpHeaders": single,
        "HttpStatusCode": status,
    });
    (metadata, request_id)
}

/// The task fails with `States.Runtime` naming the resource: never a hang.
pub fn unsupported(resource: &Resource) -> TaskReply {
    failed(
        names::RUNTIME,
        format!(
            "The resource '{}' is not supported by stepwise yet; mock it with a MockConfigFile (--mock-config).",
            resource.arn()
        ),
    )
}

/// The engine's HTTP client (built on first use, then shared: building one loads the TLS
/// roots, tens of milliseconds). It belongs to the engine, so its pooled connections live on
/// the engine's Tokio runtime.
pub(crate) fn client(engine: &Engine) -> Result<reqwest::Client, String> {
    let cell = &engine.inner.http;
    if let Some(c) = cell.get() {
        return Ok(c.clone());
    }
    let built = build_client(true, engine.config().allow_link_local)?;
    Ok(cell.get_or_init(|| built).clone())
}

/// A new HTTP client with a connect timeout; `pooled`: keeping idle connections;
/// `allow_link_local`: see [`outbound`].
pub(crate) fn build_client(
    pooled: bool,
    allow_link_local: bool,
) -> Result<reqwest::Client, String> {
    let builder = reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT);
    let mut builder = outbound::guard(builder, allow_link_local);
    if !pooled {
        builder = builder.pool_max_idle_per_host(0);
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// The client-side timeout a task's `TimeoutSeconds` asks for: the value as the interpreter's
/// timer counts it (scaled by `--wait-time-scale`) plus a grace period. `None` without one.
pub(crate) fn task_timeout(engine: &Engine, d: &Dispatch) -> Option<Duration> {
    let seconds = d.timeout_seconds?;
    let scaled = Duration::try_from_secs_f64(seconds as f64 * engine.config().wait_time_scale)
        .unwrap_or(Duration::from_secs(seconds));
    Some(scaled.saturating_add(TIMEOUT_GRACE))
}

/// The task timed out on the client side before the interpreter's timer ended it.
pub(crate) fn timed_out(cause: impl Into<String>) -> TaskReply {
    TaskReply::Done(TaskOutcome::TimedOut(ErrorCause::new(
        names::TIMEOUT,
        cause,
    )))
}

/// `Content-Type` → `Content-Type`, `x-amzn-requestid` → `x-amzn-RequestId`: header names
/// as AWS's Java SDK reports them (the HTTP stack hands them over in lower case).
pub(crate) fn header_case(name: &str) -> String {
    match name {
        "x-amzn-requestid" => "x-amzn-RequestId".into(),
        "x-amzn-remapped-content-length" => "x-amzn-Remapped-Content-Length".into(),
        "x-amzn-errortype" => "x-amzn-ErrorType".into(),
        _ => name
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                match chars.next() {
                    Some(first) => first.to_uppercase().chain(chars).collect(),
                    None => String::new(),
                }
            })
            .collect::<Vec<String>>()
            .join("-"),
    }
}

/// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - . _ ~` (and `/` when
/// `keep_slash`, for S3 keys and greedy URI labels).
pub(crate) fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An error with its sources (`error sending request: … connection refused`).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_in_aws_case() {
        assert_eq!(header_case("content-type"), "Content-Type");
        assert_eq!(
            header_case("x-amz-executed-version"),
            "X-Amz-Executed-Version"
        );
        assert_eq!(header_case("x-amzn-requestid"), "x-amzn-RequestId");
        assert_eq!(header_case("date"), "Date");
    }
}
