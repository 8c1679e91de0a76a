//! Task states: what a `Resource` is, and the `Retry` and `Catch` rules.

use serde_json::{Map, Value};

use crate::definition::Payload;
use crate::error::names;
use crate::io::ResultPathField;
use crate::jsonata;
use crate::jsonpath::{JsonPath, ReferencePath};

/// How a Task's resource is reached; it decides the history event family.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    /// `arn:aws:states:REGION:ACCOUNT:activity:NAME`: `Activity*` events.
    Activity { arn: String },
    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`: `LambdaFunction*` events.
    Lambda { arn: String },
    /// `arn:aws:states:::SERVICE:ACTION[.sync|.sync:2|.waitForTaskToken]`: `Task*` events.
    Service {
        arn: String,
        /// `resourceType` in the history: `lambda`, `states`, `aws-sdk:s3`, ...
        service: String,
        /// `resource` in the history: the action with its pattern suffix.
        action: String,
        pattern: Pattern,
    },
    /// A Distributed Map's Map Run: never written in a definition, dispatched by the Map
    /// state for the engine to run.
    MapRun(Box<crate::interpreter::MapRunSpec>),
}

/// The service integration pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    RequestResponse,
    /// `.sync`: run a job and wait for it.
    Sync,
    /// `.sync:2`: like `.sync`, with JSON (not string) payloads in the output.
    Sync2,
    /// `.waitForTaskToken`: wait for `SendTask*` with `$$.Task.Token`.
    WaitForTaskToken,
}

impl Resource {
    /// Parses a `Resource` field; the error is AWS's schema message.
    pub fn parse(arn: &str) -> Result<Resource, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let invalid = || format!("Invalid resource: {arn}");
        if parts.len() < 6 || parts[0] != "arn" {
            return Err(invalid());
        }
        match (parts[2], parts[5]) {
            ("states", rest) if rest.starts_with("activity:") && !parts[3].is_empty() => {
                Ok(Resource::Activity {
                    arn: arn.to_owned(),
                })
            }
            ("lambda", rest) if rest.starts_with("function:") => Ok(Resource::Lambda {
                arn: arn.to_owned(),
            }),
            ("states", rest)
                if (parts[3].is_empty() && parts[4].is_empty()) || names_integration(rest) =>
            {
                let (service, action) = match rest.strip_prefix("aws-sdk:") {
                    Some(sdk) => {
                        let (svc, action) = sdk.split_once(':').ok_or_else(invalid)?;
                        (format!("aws-sdk:{svc}"), action)
                    }
                    None => {
                        let (svc, action) = rest.split_once(':').ok_or_else(invalid)?;
                        (svc.to_owned(), action)
                    }
                };
                let pattern = if action.ends_with(".waitForTaskToken") {
                    Pattern::WaitForTaskToken
                } else if action.ends_with(".sync:2") {
                    Pattern::Sync2
                } else if action.ends_with(".sync") {
                    Pattern::Sync
                } else {
                    Pattern::RequestResponse
                };
                if service.is_empty() || action.is_empty() {
                    return Err(invalid());
                }
                Ok(Resource::Service {
                    arn: arn.to_owned(),
                    service,
                    action: action.to_owned(),
                    pattern,
                })
            }
            _ => Err(invalid()),
        }
    }

    pub fn arn(&self) -> &str {
        match self {
            Resource::Activity { arn }
            | Resource::Lambda { arn }
            | Resource::Service { arn, .. } => arn,
            Resource::MapRun(_) => "",
        }
    }

    /// True when the task waits for `SendTaskSuccess`/`Failure` with the task token.
    pub fn is_callback(&self) -> bool {
        matches!(
            self,
            Resource::Service {
                pattern: Pattern::WaitForTaskToken,
                ..
            }
        )
    }
}

/// Whether the part after `arn:aws:states:REGION:ACCOUNT:` names a service integration
/// (`aws-sdk:s3:getObject`, `lambda:invoke`), which AWS accepts with a region and account,
/// rather than a resource of Step Functions (`stateMachine:…`, `execution:…`).
fn names_integration(rest: &str) -> bool {
    let service = rest.split(':').next().unwrap_or_default();
    rest.contains(':')
        && !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !matches!(service, "execution" | "express" | "activity")
}

/// A `Retry` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: f64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<f64>,
    pub full_jitter: bool,
}

impl Retrier {
    /// The wait before retry number `attempt` (0-based), in seconds, before jitter.
    pub fn delay_seconds(&self, attempt: u32) -> f64 {
        let d = self.interval_seconds * self.backoff_rate.powi(attempt as i32);
        match self.max_delay_seconds {
            Some(max) => d.min(max),
            None => d,
        }
    }
}

/// A `Catch` entry.
#[derive(Debug, Clone)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    pub result_path: ResultPathField,
    /// Variables assigned when this entry catches an error.
    pub assign: Option<Payload>,
    /// JSONata `Output` (default: `$states.errorOutput`).
    pub output: Option<jsonata::Template>,
}

/// Whether an `ErrorEquals` list matches `error`. `States.ALL` matches every error but the
/// terminal `States.Runtime` and `States.DataLimitExceeded`; `States.TaskFailed` matches task
/// failures, not timeouts.
pub fn error_matches(error_equals: &[String], error: &str) -> bool {
    let terminal = matches!(error, names::RUNTIME | names::DATA_LIMIT_EXCEEDED);
    error_equals.iter().any(|e| {
        e == error
            || (e == names::ALL && !terminal)
            || (e == names::TASK_FAILED
                && !terminal
                && !matches!(error, names::TIMEOUT | names::HEARTBEAT_TIMEOUT))
    })
}

fn strings(v: Option<&Value>) -> Result<Vec<String>, String> {
    match v {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "Value must be a string".to_owned())
            })
            .collect(),
        Some(Value::Array(_)) => Err("Value cannot be empty".into()),
        _ => Err("The field 'ErrorEquals' is required but was missing".into()),
    }
}

fn number(obj: &Map<String, Value>, field: &str) -> Result<Option<f64>, String> {
    match obj.get(field) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("The field '{field}' must be a number")),
    }
}

/// Parses one `Retry` entry.
pub fn parse_retrier(v: &Value) -> Result<Retrier, String> {
    let obj = v.as_object().ok_or("Value must be an object")?;
    let error_equals = strings(obj.get("ErrorEquals"))?;
    let interval_seconds = number(obj, "IntervalSeconds")?.unwrap_or(1.0);
    let max_attempts = number(obj, "MaxAttempts")?.unwrap_or(3.0);
    let backoff_rate = number(obj, "BackoffRate")?.unwrap_or(2.0);
    if interval_seconds < 1.0 || interval_seconds.fract() != 0.0 {
        return Err("The field 'IntervalSeconds' must be a positive integer".into());
    }
    if max_attempts < 0.0 || max_attempts.fract() != 0.0 {
        return Err("The field 'MaxAttempts' must be a non-negative integer".into());
    }
    if backoff_rate < 1.0 {
        return Err("The field 'BackoffRate' must be greater than or equal to 1.0".into());
    }
    let full_jitter = match obj.get("JitterStrategy").and_then(Value::as_str) {
        None | Some("NONE") => false,
        Some("FULL") => true,
        Some(_) => {
            return Err(
                "The field 'JitterStrategy' should have one of these values: [FULL, NONE]".into(),
            )
        }
    };
    Ok(Retrier {
        error_equals,
        interval_seconds,
        max_attempts: max_attempts as u32,
        backoff_rate,
        max_delay_seconds: number(obj, "MaxDelaySeconds")?,
        full_jitter,
    })
}

/// Parses one `Catch` entry.
pub fn parse_catcher(v: &Value) -> Result<Catcher, String> {
    let obj = v.as_object().ok_or("Value must be an object")?;
    let error_equals = strings(obj.get("ErrorEquals"))?;
    let next = obj
        .get("Next")
        .and_then(Value::as_str)
        .ok_or("The field 'Next' is required but was missing")?
        .to_owned();
    let result_path = match obj.get("ResultPath") {
        None => ResultPathField::Default,
        Some(Value::Null) => ResultPathField::Null,
        Some(Value::String(s)) => ResultPathField::Path(
            ReferencePath::parse(s)
                .map_err(|_| "The value for the field 'ResultPath' must be a valid JSONPath")?,
        ),
        Some(_) => return Err("The field 'ResultPath' must be a string".into()),
    };
    Ok(Catcher {
        error_equals,
        next,
        result_path,
        assign: None,
        output: None,
    })
}

/// A duration that is fixed, read from the input (`TimeoutSecondsPath`) or computed (a JSONata
/// `TimeoutSeconds`).
#[derive(Debug, Clone)]
pub enum Seconds {
    Fixed(u64),
    Path(JsonPath),
    Jsonata(jsonata::Template),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources() {
        type Case<'a> = (&'a str, Option<(&'a str, &'a str, Pattern)>);
        let cases: &[Case] = &[
            (
                "arn:aws:states:::lambda:invoke",
                Some(("lambda", "invoke", Pattern::RequestResponse)),
            ),
            (
                "arn:aws:states:::states:startExecution.sync:2",
                Some(("states", "startExecution.sync:2", Pattern::Sync2)),
            ),
            (
                "arn:aws:states:::sns:publish.waitForTaskToken",
                Some(("sns", "publish.waitForTaskToken", Pattern::WaitForTaskToken)),
            ),
            (
                "arn:aws:states:::aws-sdk:s3:getObject",
                Some(("aws-sdk:s3", "getObject", Pattern::RequestResponse)),
            ),
            (
                "arn:aws:states:::http:invoke",
                Some(("http", "invoke", Pattern::RequestResponse)),
            ),
            (
                "arn:aws:states:us-east-1:123456789012:aws-sdk:s3:getObject",
                Some(("aws-sdk:s3", "getObject", Pattern::RequestResponse)),
            ),
            (
                "arn:aws:states:eu-west-1:123456789012:states:startExecution.sync",
                Some(("states", "startExecution.sync", Pattern::Sync)),
            ),
        ];
        for (arn, want) in cases {
            match (Resource::parse(arn), want) {
                (
                    Ok(Resource::Service {
                        service,
                        action,
                        pattern,
                        ..
                    }),
                    Some((s, a, p)),
                ) => {
                    assert_eq!(
                        (service.as_str(), action.as_str(), pattern),
                        (*s, *a, *p),
                        "{arn}"
                    )
                }
                (got, _) => panic!("{arn}: {got:?}"),
            }
        }
        assert!(matches!(
            Resource::parse("arn:aws:states:us-east-1:1:activity:a"),
            Ok(Resource::Activity { .. })
        ));
        assert!(matches!(
            Resource::parse("arn:aws:lambda:us-east-1:1:function:f"),
            Ok(Resource::Lambda { .. })
        ));
        assert!(Resource::parse("nope").is_err());
        assert!(Resource::parse("arn:aws:states:us-east-1:1:stateMachine:m").is_err());
        assert!(Resource::parse("arn:aws:states:us-east-1:1:execution:m:e").is_err());
    }

    #[test]
    fn error_matching() {
        let all = vec![names::ALL.to_owned()];
        let task_failed = vec![names::TASK_FAILED.to_owned()];
        let cases = [
            (&all, "Custom", true),
            (&all, names::TIMEOUT, true),
            (&all, names::RUNTIME, false),
            (&task_failed, "Custom", true),
            (&task_failed, names::TIMEOUT, false),
            (&task_failed, names::HEARTBEAT_TIMEOUT, false),
        ];
        for (list, error, want) in cases {
            assert_eq!(error_matches(list, error), want, "{list:?} {error}");
        }
    }

    #[test]
    fn backoff() {
        let r = parse_retrier(&serde_json::json!({"ErrorEquals":["X"],"IntervalSeconds":2,"BackoffRate":3,"MaxDelaySeconds":10})).unwrap();
        assert_eq!(
            (r.delay_seconds(0), r.delay_seconds(1), r.delay_seconds(2)),
            (2.0, 6.0, 10.0)
        );
        assert_eq!(r.max_attempts, 3);
    }
}
