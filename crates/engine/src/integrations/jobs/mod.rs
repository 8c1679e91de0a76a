//! The optimized integrations that run a job: Athena `startQueryExecution`, ECS `runTask`,
//! Batch `submitJob`, Glue `startJobRun` and CodeBuild `startBuild`, each request-response,
//! `.sync` and `.waitForTaskToken`.
//!
//! Request-response answers what the start action answered (with the Java SDK's
//! `SdkHttpMetadata`, as the other optimized integrations). `.sync` records that answer as
//! `TaskSubmitted`, then follows the job with its describe action every [`POLL_INTERVAL`]
//! (scaled by `--wait-time-scale`) until it ends: the task succeeds with the job's final
//! description, shaped as AWS records it (each kind says which part), or fails with
//! `States.TaskFailed` and that description as the cause. The submission answer is kept in the
//! task's checkpointed dispatch, so after a restart the engine follows the same job again
//! instead of starting another ([`invoke`] with `Dispatch::submitted`). When the execution ends
//! while the job runs (stopped, timed out, failed elsewhere), the job is stopped with the
//! kind's stop action ([`stop`]).
//!
//! Each kind is one file ([`Kind`]); adding one is a table entry in [`kind`].

mod athena;
mod batch;
mod codebuild;
mod ecs;
mod glue;

use std::time::Duration;

use asl::error::names;
use asl::history::ErrorCause;
use asl::interpreter::{Dispatch, TaskOutcome};
use asl::task::{Pattern, Resource};
use serde_json::{json, Value};

use super::aws_sdk::{call, model, CallError, Naming, Target};
use super::{sdk_metadata, unsupported_action};
use crate::tasks::{failed, TaskReply};
use crate::Engine;

/// How often a `.sync` job is described, before `--wait-time-scale`.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// The shortest poll interval, whatever the scale: never a busy loop.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A describe call that fails with no answer (the network, a timeout) is tried again this
/// many times, one poll interval apart, before the task fails.
const DESCRIBE_ATTEMPTS: u32 = 3;

/// Why a job is stopped, where the stop action takes a reason.
const STOP_REASON: &str = "The Step Functions execution that started the job ended.";

/// Where a job is, from its description.
#[derive(Debug, PartialEq)]
pub(crate) enum Progress {
    Running,
    /// Ended well: the task's result.
    Succeeded(Value),
    /// Ended badly: the cause `States.TaskFailed` carries.
    Failed(Value),
}

/// One kind of job: its service, its actions, and how to read them.
pub(crate) struct Kind {
    /// `aws-sdk:NAME` of the model.
    model: &'static str,
    /// The v1 SDK's names: prefix of error names, service name in causes, generic exception.
    prefix: &'static str,
    cause_service: &'static str,
    generic: &'static str,
    describe: &'static str,
    stop: &'static str,
    /// The describe call's parameters, from the task's parameters and what the start
    /// answered; `None` when the answer does not name a job.
    describe_params: fn(&Value, &Value) -> Option<Value>,
    /// The stop calls' parameters, likewise (one per task for ECS).
    stop_params: fn(&Value, &Value) -> Vec<Value>,
    /// Where the job is, from the describe answer.
    progress: fn(Value) -> Progress,
    /// A start that answered HTTP 200 and still failed (`runTask` with `Failures`): the
    /// error and its cause, for `.sync` and `.waitForTaskToken`.
    start_failure: fn(&Value) -> Option<(&'static str, String)>,
}

/// The kind `service:action` starts.
fn kind(service: &str, action: &str) -> Option<&'static Kind> {
    Some(match (service, action) {
        ("athena", "startQueryExecution") => &athena::KIND,
        ("ecs", "runTask") => &ecs::KIND,
        ("batch", "submitJob") => &batch::KIND,
        ("glue", "startJobRun") => &glue::KIND,
        ("codebuild", "startBuild") => &codebuild::KIND,
        _ => return None,
    })
}

/// The action without its pattern suffix.
fn base(action: &str) -> &str {
    action
        .strip_suffix(".sync")
        .or_else(|| action.strip_suffix(".waitForTaskToken"))
        .unwrap_or(action)
}

/// Whether `service:action` starts a job.
pub fn handles(service: &str, action: &str) -> bool {
    kind(service, base(action)).is_some()
}

/// The kind of a dispatched `.sync` job task.
fn sync_kind(d: &Dispatch) -> Option<&'static Kind> {
    match &d.resource {
        Resource::Service {
            service,
            action,
            pattern: Pattern::Sync,
            ..
        } => kind(service, base(action)),
        _ => None,
    }
}

impl Kind {
    fn naming(&self) -> Naming {
        Naming {
            prefix: self.prefix.into(),
            generic: format!("{}.{}", self.prefix, self.generic),
            cause_service: self.cause_service.into(),
            v1: true,
        }
    }

    /// Calls `action` of the kind's service; a failure is the task's reply.
    async fn call(
        &self,
        engine: &Engine,
        d: &Dispatch,
        region: &str,
        action: &str,
        params: &Value,
    ) -> Result<super::aws_sdk::Answer, Failure> {
        let Some(service) = model::service(self.model) else {
            return Err(Failure::Final(unsupported_action(self.model, action)));
        };
        let Some((op_name, op)) = service.operation(action) else {
            return Err(Failure::Final(unsupported_action(self.model, action)));
        };
        let target = Target {
            service: &service,
            name: self.model,
            op_name,
            op,
            region,
        };
        call(engine, d, &target, params).await.map_err(|e| match e {
            e @ (CallError::Transport(_) | CallError::TimedOut) => {
                Failure::NoAnswer(e.reply(&service, &self.naming()))
            }
            e => Failure::Final(e.reply(&service, &self.naming())),
        })
    }
}

/// A call that failed: with no answer (worth another try while polling), or for good.
enum Failure {
    NoAnswer(TaskReply),
    Final(TaskReply),
}

impl Failure {
    fn reply(self) -> TaskReply {
        match self {
            Failure::NoAnswer(r) | Failure::Final(r) => r,
        }
    }
}

/// Performs `arn:aws:states:::SERVICE:ACTION[.sync|.waitForTaskToken]`: starts the job.
pub async fn invoke(
    engine: &Engine,
    d: &Dispatch,
    service: &str,
    action: &str,
    pattern: Pattern,
    region: &str,
) -> TaskReply {
    let Some(kind) = kind(service, base(action)) else {
        return unsupported_action(service, action);
    };
    if pattern == Pattern::Sync2 {
        return unsupported_action(service, action);
    }
    let answer = match kind.call(engine, d, region, base(action), &d.input).await {
        Ok(a) => a,
        Err(f) => return f.reply(),
    };
    let mut output = answer.output;
    if pattern != Pattern::RequestResponse {
        if let Some((error, cause)) = (kind.start_failure)(&output) {
            return failed(error, cause);
        }
    }
    let (http, request_id) = sdk_metadata(answer.status, &answer.headers);
    if let Value::Object(fields) = &mut output {
        fields.insert("SdkHttpMetadata".into(), http);
        fields.insert(
            "SdkResponseMetadata".into(),
            json!({ "RequestId": request_id }),
        );
    }
    match pattern {
        Pattern::RequestResponse => TaskReply::Done(TaskOutcome::Succeeded(output)),
        _ => TaskReply::Submitted(output),
    }
}

/// A `.sync` job task whose job was already submitted (the dispatch says so after a restart):
/// follows that job to its end rather than starting another.
pub async fn resume(engine: &Engine, execution_arn: &str, d: &Dispatch) -> Option<TaskReply> {
    let (kind, submitted) = (sync_kind(d)?, d.submitted.as_ref()?);
    let region = region(execution_arn, &d.resource);
    let outcome = follow(engine, execution_arn, d, kind, region, submitted).await;
    Some(outcome.map_or(TaskReply::Pending, TaskReply::Done))
}

/// After a `.sync` job's submission was recorded (`recorded`: the execution still waited for
/// the task): follows the job to its end. `None` for any other task, or when the execution no
/// longer waits (the job is then stopped).
pub async fn after_submission(
    engine: &Engine,
    execution_arn: &str,
    d: &Dispatch,
    submitted: &Value,
    recorded: bool,
) -> Option<TaskOutcome> {
    let kind = sync_kind(d)?;
    let region = region(execution_arn, &d.resource);
    if !recorded {
        stop_job(engine, d, kind, region, submitted).await;
        return None;
    }
    follow(engine, execution_arn, d, kind, region, submitted).await
}

/// The execution ended while the task ran: stops its `.sync` job, if it has one.
pub async fn stop(engine: &Engine, execution_arn: &str, d: &Dispatch) {
    let (Some(kind), Some(submitted)) = (sync_kind(d), &d.submitted) else {
        return;
    };
    stop_job(
        engine,
        d,
        kind,
        region(execution_arn, &d.resource),
        submitted,
    )
    .await;
}

async fn stop_job(engine: &Engine, d: &Dispatch, kind: &Kind, region: &str, submitted: &Value) {
    for params in (kind.stop_params)(&d.input, submitted) {
        if let Err(f) = kind.call(engine, d, region, kind.stop, &params).await {
            let reason = match f.reply() {
                TaskReply::Done(TaskOutcome::Failed(e) | TaskOutcome::TimedOut(e)) => e.cause,
                _ => None,
            };
            let reason = reason.unwrap_or_default();
            tracing::warn!(action = kind.stop, %reason, "job not stopped");
        }
    }
}

/// Describes the job every poll interval until it ends: its outcome. `None` when the
/// execution no longer waits for the task (an outcome would be stale).
async fn follow(
    engine: &Engine,
    execution_arn: &str,
    d: &Dispatch,
    kind: &Kind,
    region: &str,
    submitted: &Value,
) -> Option<TaskOutcome> {
    let Some(params) = (kind.describe_params)(&d.input, submitted) else {
        return Some(TaskOutcome::Failed(ErrorCause::new(
            names::RUNTIME,
            format!(
                "The answer to {} names no job to follow.",
                base(d.resource.arn())
            ),
        )));
    };
    let interval = poll_interval(engine.config().wait_time_scale);
    let runner = &engine.inner.runner;
    let mut no_answer = 0;
    while runner.awaits_task(execution_arn, d.task_id).await {
        match kind.call(engine, d, region, kind.describe, &params).await {
            Ok(answer) => {
                no_answer = 0;
                match (kind.progress)(answer.output) {
                    Progress::Running => {}
                    Progress::Succeeded(v) => return Some(TaskOutcome::Succeeded(v)),
                    Progress::Failed(v) => {
                        let cause = v.to_string();
                        return Some(TaskOutcome::Failed(ErrorCause::new(
                            names::TASK_FAILED,
                            cause,
                        )));
                    }
                }
            }
            Err(Failure::NoAnswer(_)) if no_answer + 1 < DESCRIBE_ATTEMPTS => no_answer += 1,
            Err(f) => {
                return match f.reply() {
                    TaskReply::Done(outcome) => Some(outcome),
                    TaskReply::Submitted(_) | TaskReply::Pending => None,
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
    None
}

/// [`POLL_INTERVAL`] scaled, never below [`MIN_POLL_INTERVAL`].
fn poll_interval(scale: f64) -> Duration {
    Duration::try_from_secs_f64(POLL_INTERVAL.as_secs_f64() * scale)
        .unwrap_or(POLL_INTERVAL)
        .max(MIN_POLL_INTERVAL)
}

/// The region of the resource ARN, else the execution's.
fn region<'a>(execution_arn: &'a str, resource: &'a Resource) -> &'a str {
    let of = |arn: &'a str| arn.split(':').nth(3).filter(|r| !r.is_empty());
    of(resource.arn())
        .or_else(|| of(execution_arn))
        .unwrap_or("us-east-1")
}

/// `v` at `pointer` as a string.
fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_patterns() {
        assert!(handles("athena", "startQueryExecution.sync"));
        assert!(handles("ecs", "runTask"));
        assert!(handles("batch", "submitJob.waitForTaskToken"));
        assert!(handles("glue", "startJobRun.sync"));
        assert!(handles("codebuild", "startBuild.sync"));
        assert!(!handles("athena", "getQueryResults"));
        assert_eq!(poll_interval(1.0), POLL_INTERVAL);
        assert_eq!(poll_interval(0.0), MIN_POLL_INTERVAL);
        assert_eq!(poll_interval(0.01), Duration::from_millis(50));
    }
}
