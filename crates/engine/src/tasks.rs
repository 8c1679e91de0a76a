//! Performing tasks: the outbox consumer routes each dispatched task to its integration and
//! feeds the outcome back to the execution as a signal.

use asl::error::names;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use asl::history::ErrorCause;
use asl::interpreter::{Dispatch, Signal, TaskOutcome};
use asl::task::{Pattern, Resource};
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::runner::{Outbox, ParentLink, Signalled};
use crate::{integrations, Engine, ExecutionRecord};

/// What an integration answered.
pub enum TaskReply {
    /// The task finished.
    Done(TaskOutcome),
    /// A `.sync` job was submitted; its end arrives later as a signal.
    Submitted(Value),
    /// The task waits for `SendTask*` with its token (`.waitForTaskToken`), or for a worker.
    Pending,
}

/// The `.sync` child executions whose parent has not yet recorded `TaskSubmitted`, by
/// (parent ARN, task id). A child can end before its parent records that it started it (it
/// ends in its first step); its end waits here, so the parent's history reads
/// `TaskSubmitted` before `TaskSucceeded`, as on AWS.
pub(crate) type Submissions = Mutex<HashMap<(String, u64), watch::Sender<bool>>>;

/// How long a child's end waits for its parent to record the submission.
const SUBMISSION_WAIT: Duration = Duration::from_secs(10);

/// A failed task with AWS's error name and our cause.
pub fn failed(error: &str, cause: impl Into<String>) -> TaskReply {
    TaskReply::Done(TaskOutcome::Failed(ErrorCause::new(error, cause)))
}

impl Engine {
    /// Consumes the runner's outbox until [`Engine::shutdown`] (this task holds the engine).
    /// Each item runs on a task of its own, so the loop drains the bounded channel at once.
    pub(crate) async fn run_outbox(self, mut rx: tokio::sync::mpsc::Receiver<Outbox>) {
        while let Some(item) = rx.recv().await {
            let engine = self.clone();
            tokio::spawn(async move {
                match item {
                    Outbox::Dispatch {
                        execution_arn,
                        dispatch,
                        offered,
                    } => engine.perform(&execution_arn, dispatch, offered).await,
                    Outbox::Finished { record, parent } => {
                        engine.child_finished(&record, &parent).await
                    }
                    Outbox::Cancel {
                        execution_arn,
                        dispatch,
                    } => engine.cancel(&execution_arn, &dispatch).await,
                }
            });
        }
    }

    /// Performs a task; `offered`: an activity task whose offer its scheduling committed.
    async fn perform(&self, execution_arn: &str, d: Dispatch, offered: bool) {
        let d = self.with_role(execution_arn, d).await;
        let task_id = d.task_id;
        // The task's scheduling is committed; it has not left yet.
        fail::fail_point!("task-before-dispatch", |_| std::process::abort());
        let reply = self.invoke(execution_arn, &d, offered).await;
        // The task was performed; its outcome is not recorded yet.
        fail::fail_point!("task-before-outcome", |_| std::process::abort());
        let (signal, submitted) = match reply {
            TaskReply::Done(outcome) => (Signal::TaskFinished { task_id, outcome }, None),
            TaskReply::Submitted(output) => (
                Signal::TaskSubmitted {
                    task_id,
                    output: output.clone(),
                },
                Some(output),
            ),
            TaskReply::Pending => return,
        };
        let recorded = match self
            .inner
            .runner
            .signal_until_recorded(execution_arn, signal)
            .await
        {
            Ok(signalled) => matches!(signalled, Signalled::Applied(_)),
            Err(e) => {
                tracing::warn!(%execution_arn, error = %e, "task outcome not recorded");
                false
            }
        };
        let Some(output) = submitted else { return };
        self.submission_recorded(execution_arn, task_id);
        // A `.sync` job: followed here to its end.
        let followed =
            integrations::jobs::after_submission(self, execution_arn, &d, &output, recorded);
        if let Some(outcome) = followed.await {
            let signal = Signal::TaskFinished { task_id, outcome };
            let recorded = self
                .inner
                .runner
                .signal_until_recorded(execution_arn, signal);
            if let Err(e) = recorded.await {
                tracing::warn!(%execution_arn, error = %e, "task outcome not recorded");
            }
        }
    }

    /// A `.sync` child is about to start for the parent's task: its end waits for
    /// [`Engine::submission_recorded`].
    fn submission_expected(&self, parent_arn: &str, task_id: u64) {
        crate::lock::lock(&self.inner.submissions)
            .insert((parent_arn.to_owned(), task_id), watch::channel(false).0);
    }

    fn submission_recorded(&self, parent_arn: &str, task_id: u64) {
        let gate =
            crate::lock::lock(&self.inner.submissions).remove(&(parent_arn.to_owned(), task_id));
        if let Some(gate) = gate {
            gate.send_replace(true);
        }
    }

    /// Waits (a bounded time) until the parent has recorded the child's submission.
    async fn submission_waited(&self, parent_arn: &str, task_id: u64) {
        let gate = crate::lock::lock(&self.inner.submissions)
            .get(&(parent_arn.to_owned(), task_id))
            .map(watch::Sender::subscribe);
        if let Some(mut gate) = gate {
            let _ = tokio::time::timeout(SUBMISSION_WAIT, gate.wait_for(|done| *done)).await;
        }
    }

    async fn invoke(&self, execution_arn: &str, d: &Dispatch, offered: bool) -> TaskReply {
        if let Some(reply) = integrations::mock::answer(self, execution_arn, d).await {
            return reply;
        }
        if let Some(reply) = integrations::jobs::resume(self, execution_arn, d).await {
            return reply;
        }
        match &d.resource {
            Resource::MapRun(spec) => self.perform_map_run(execution_arn, d, spec).await,
            Resource::Activity { arn } => {
                let token = d.token.clone();
                self.enqueue_activity(arn, execution_arn, d.task_id, token, &d.input, offered)
                    .await;
                TaskReply::Pending
            }
            Resource::Service {
                service,
                action,
                pattern,
                ..
            } if service == "states" => self.start_child(execution_arn, d, action, *pattern).await,
            // Served in-process unless an endpoint for Step Functions is configured.
            Resource::Service {
                service, action, ..
            } if service == "aws-sdk:sfn" && !self.config().endpoints.contains_key("sfn") => {
                self.sfn_sdk(execution_arn, action, d).await
            }
            other => {
                let region = execution_arn.split(':').nth(3).unwrap_or("us-east-1");
                integrations::invoke(self, region, other, d).await
            }
        }
    }

    /// `states:startExecution` (all patterns): starts a child execution.
    async fn start_child(
        &self,
        execution_arn: &str,
        d: &Dispatch,
        action: &str,
        pattern: Pattern,
    ) -> TaskReply {
        if !action.starts_with("startExecution") {
            return failed(names::RUNTIME, format!("The resource 'arn:aws:states:::states:{action}' is not supported by stepwise yet."));
        }
        let Some(sm) = d.input.get("StateMachineArn").and_then(Value::as_str) else {
            return failed(names::RUNTIME, "The field 'StateMachineArn' is required.");
        };
        // Named here when the input gives no name, so that a start tried again after a
        // failed commit finds the child that commit may have stored after all.
        let given = d.input.get("Name").and_then(Value::as_str);
        let name = given.map_or_else(|| self.new_uuid(), str::to_owned);
        let input = match d.input.get("Input") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => Some(v.to_string()),
        };
        let parent = matches!(pattern, Pattern::Sync | Pattern::Sync2).then(|| ParentLink {
            execution_arn: execution_arn.to_owned(),
            task_id: d.task_id,
            json_payloads: pattern == Pattern::Sync2,
        });
        let started = match self.check_workflow_access(execution_arn, "startExecution", &d.input) {
            Err(denied) => Err(denied),
            Ok(()) => {
                if parent.is_some() {
                    self.submission_expected(execution_arn, d.task_id);
                }
                // A child that could not be stored (the database away) is started again.
                let own_name = given.is_none();
                let start =
                    || self.start_linked(sm, name.clone(), own_name, input.clone(), parent.clone());
                let what = "child execution not started";
                let started = self.inner.runner.while_store_fails(what, start).await;
                if started.is_err() {
                    self.submission_recorded(execution_arn, d.task_id);
                }
                started
            }
        };
        match started {
            Ok(child) => {
                let started = with_sdk_metadata(json!({
                    "ExecutionArn": child.arn,
                    "StartDate": child.start_date,
                }));
                match pattern {
                    Pattern::RequestResponse => TaskReply::Done(TaskOutcome::Succeeded(started)),
                    Pattern::WaitForTaskToken => TaskReply::Pending,
                    // The child's end arrives as a finish notice, even if it already ended.
                    Pattern::Sync | Pattern::Sync2 => TaskReply::Submitted(started),
                }
            }
            // The optimized integrations use the AWS Java SDK v1: its names and message form.
            Err(e) => {
                let code = e.code().trim_end_matches("Exception");
                let request_id = uuid::Uuid::new_v4();
                failed(
                    &format!("StepFunctions.{code}Exception"),
                    format!(
                        "{} (Service: AWSStepFunctions; Status Code: {}; Error Code: {}; Request ID: {request_id}; Proxy: null)",
                        e.message(),
                        e.http_status(),
                        e.code()
                    ),
                )
            }
        }
    }

    /// A child started with `.sync` ended: finish the parent's task with its description.
    async fn child_finished(&self, child: &ExecutionRecord, parent: &ParentLink) {
        if child.map_run.is_some() {
            return self.map_run_child_finished(child, parent).await;
        }
        self.submission_waited(&parent.execution_arn, parent.task_id)
            .await;
        let payload = |text: &Option<String>| -> Value {
            match (text, parent.json_payloads) {
                (Some(t), true) => serde_json::from_str(t).unwrap_or(Value::Null),
                (Some(t), false) => Value::String(t.clone()),
                (None, _) => Value::Null,
            }
        };
        let mut described = json!({
            "ExecutionArn": child.arn,
            "Input": payload(&Some(child.input.clone())),
            "InputDetails": { "Included": true },
            "Name": child.name,
            "StartDate": child.start_date,
            "StateMachineArn": child.state_machine_arn,
            "Status": child.status,
            "StopDate": child.stop_date,
        });
        if child.output.is_some() {
            described["Output"] = payload(&child.output);
            described["OutputDetails"] = json!({ "Included": true });
        }
        // DescribeExecution's redrive fields, which AWS returns since redrive (November 2023).
        described["RedriveCount"] = json!(child.redrive_count);
        if let Some(date) = child.redrive_date {
            described["RedriveDate"] = json!(date);
        }
        match self.redrive_status(child).await {
            Ok(redrive) => {
                let (status, reason) = redrive.status();
                described["RedriveStatus"] = json!(status);
                if let Some(reason) = reason {
                    described["RedriveStatusReason"] = json!(reason);
                }
            }
            Err(e) => {
                tracing::warn!(child = %child.arn, error = %e, "child's redrive status unknown")
            }
        }
        let outcome = if child.status == store::ExecutionStatus::Succeeded {
            TaskOutcome::Succeeded(described)
        } else {
            if let Some(e) = &child.error {
                described["Error"] = json!(e);
            }
            if let Some(c) = &child.cause {
                described["Cause"] = json!(c);
            }
            TaskOutcome::Failed(ErrorCause::new(names::TASK_FAILED, described.to_string()))
        };
        let signal = Signal::TaskFinished {
            task_id: parent.task_id,
            outcome,
        };
        if let Err(e) = self
            .inner
            .runner
            .signal_until_recorded(&parent.execution_arn, signal)
            .await
        {
            tracing::warn!(parent = %parent.execution_arn, error = %e, "child outcome not recorded");
        }
    }

    /// The execution ended while a task was in progress: stop a `.sync` child.
    /// `d` with the role its calls assume: the Task's `Credentials`, else, under
    /// `--assume-execution-role`, the role of the execution's state machine.
    async fn with_role(&self, execution_arn: &str, mut d: Dispatch) -> Dispatch {
        if d.role_arn.is_none() && self.config().assume_execution_role {
            d.role_arn = self.execution_role(execution_arn).await;
        }
        d
    }

    /// The role of an execution's state machine.
    pub(crate) async fn execution_role(&self, execution_arn: &str) -> Option<String> {
        match self.inner.runner.role_arn(execution_arn).await {
            Some(role) => Some(role),
            None => self
                .describe_execution(execution_arn)
                .await
                .ok()
                .map(|r| r.role_arn),
        }
    }

    async fn cancel(&self, execution_arn: &str, d: &Dispatch) {
        if let Resource::MapRun(_) = &d.resource {
            return self.abort_map_run(execution_arn, d.task_id).await;
        }
        let Resource::Service {
            service,
            pattern: Pattern::Sync | Pattern::Sync2,
            ..
        } = &d.resource
        else {
            return;
        };
        if service != "states" {
            let d = self.with_role(execution_arn, d.clone()).await;
            return integrations::jobs::stop(self, execution_arn, &d).await;
        }
        for child in self
            .inner
            .runner
            .children_of(execution_arn, d.task_id)
            .await
        {
            let stop = Signal::Stop {
                error: None,
                cause: Some("The parent execution was stopped.".into()),
            };
            if let Err(e) = self.inner.runner.signal(&child, stop).await {
                tracing::warn!(%child, error = %e, "child not stopped");
            }
        }
    }
}

/// The length of the JSON response AWS would have sent for `body`: camelCase members and
/// timestamps as the Java SDK writes doubles (`1.707233558577E9`).
fn response_length(body: &Value) -> usize {
    let Some(obj) = body.as_object() else {
        return 0;
    };
    let members: Vec<String> = obj
        .iter()
        .map(|(k, v)| {
            let mut key = k.clone();
            if let Some(first) = key.get(0..1) {
                key.replace_range(0..1, &first.to_lowercase());
            }
            let value = match (k.ends_with("Date"), v.as_i64()) {
                (true, Some(ms)) => format!("{:e}", ms as f64 / 1000.0).replace('e', "E"),
                _ => v.to_string(),
            };
            format!("\"{key}\":{value}")
        })
        .collect();
    members.join(",").len() + 2
}

/// Adds the `SdkHttpMetadata`/`SdkResponseMetadata` the AWS Java SDK puts on the results of
/// optimized integrations, as if `body` had been the service's HTTP response.
fn with_sdk_metadata(mut body: Value) -> Value {
    let request_id = asl::Entropy::new(rand::random()).uuid_v4();
    let length = response_length(&body).to_string();
    // An HTTP date (`Thu, 03 Dec 2026 15:05:18 GMT`), as the service's `Date` header is.
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    body["SdkHttpMetadata"] = json!({
        "AllHttpHeaders": {
            "x-amzn-RequestId": [request_id],
            "connection": ["keep-alive"],
            "Content-Length": [length],
            "Date": [date],
            "Content-Type": ["application/x-amz-json-1.0"],
        },
        "HttpHeaders": {
            "connection": "keep-alive",
            "Content-Length": length,
            "Content-Type": "application/x-amz-json-1.0",
            "Date": date,
            "x-amzn-RequestId": request_id,
        },
        "HttpStatusCode": 200,
    });
    body["SdkResponseMetadata"] = json!({ "RequestId": request_id });
    body
}
