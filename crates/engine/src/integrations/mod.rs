//! Service integrations: how a Task's resource is invoked.
//!
//! Each integration turns a [`Dispatch`] into a [`Reply`]. Activities and nested executions
//! live in the engine itself (`activities.rs`, `tasks.rs`); everything reached over the
//! network lives here:
//! - [`lambda`]: `arn:aws:lambda:…:function:NAME` and `arn:aws:states:::lambda:invoke`
//!   (+ `.waitForTaskToken`) over the Lambda Invoke REST API at `--lambda-endpoint`;
//! - [`http`]: the HTTP Task, `arn:aws:states:::http:invoke`.
//!
//! Every request has a connect timeout and an overall timeout (the task's `TimeoutSeconds`,
//! scaled like the interpreter's timer, plus a grace period), so no task hangs on the network.

pub mod http;
pub mod lambda;
pub mod mock;
pub mod outbound;

use std::time::Duration;

use asl::history::ErrorCause;
use asl::interpreter::{Dispatch, TaskOutcome};
use asl::task::{Pattern, Resource};

use crate::tasks::{failed, Reply};
use crate::Engine;

/// How long a TCP connection may take to open.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Added to a task's (scaled) `TimeoutSeconds`: the interpreter's durable timer normally ends
/// the task first; the client timeout only guarantees the request does not outlive it.
const TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// Invokes a resource that is neither an activity nor a nested execution.
pub async fn invoke(engine: &Engine, resource: &Resource, d: &Dispatch) -> Reply {
    match resource {
        Resource::Lambda { arn } => lambda::invoke_arn(engine, arn, d).await,
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
            lambda::invoke_service(engine, d, *pattern).await
        }
        Resource::Service {
            service,
            action,
            pattern: Pattern::RequestResponse,
            ..
        } if service == "http" && action == "invoke" => http::invoke(engine, d).await,
        other => unsupported(other),
    }
}

/// The task fails with `States.Runtime` naming the resource: never a hang.
pub fn unsupported(resource: &Resource) -> Reply {
    failed(
        "States.Runtime",
        format!(
            "The resource '{}' is not supported by stepwise yet; mock it with a MockConfigFile (--mock-config).",
            resource.arn()
        ),
    )
}

/// An HTTP client for one invocation: connect timeout, no proxy from the environment.
///
/// A client per invocation (not one shared client) keeps no pooled connection bound to a
/// Tokio runtime that may be gone by the next call (tests start many runtimes).
pub(crate) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_max_idle_per_host(0)
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
pub(crate) fn timed_out(cause: impl Into<String>) -> Reply {
    Reply::Done(TaskOutcome::TimedOut(ErrorCause {
        error: Some("States.Timeout".into()),
        cause: Some(cause.into()),
    }))
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
