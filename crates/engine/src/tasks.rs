//! Performing tasks: the outbox consumer routes each dispatched task to its integration and
//! feeds the outcome back to the execution as a signal.

use asl::history::ErrorCause;
use asl::interpreter::{Dispatch, Signal, TaskOutcome};
use asl::task::{Pattern, Resource};
use serde_json::{json, Value};

use crate::runner::{Outbox, ParentLink};
use crate::{integrations, Engine, ExecutionRecord};

/// What an integration answered.
pub enum Reply {
    /// The task finished.
    Done(TaskOutcome),
    /// A `.sync` job was submitted; its end arrives later as a signal.
    Submitted(Value),
    /// The task waits for `SendTask*` with its token (`.waitForTaskToken`), or for a worker.
    Pending,
}

/// A failed task with AWS's error name and our cause.
pub fn failed(error: &str, cause: impl Into<String>) -> Reply {
    Reply::Done(TaskOutcome::Failed(ErrorCause {
        error: Some(error.into()),
        cause: Some(cause.into()),
    }))
}

impl Engine {
    /// Consumes the runner's outbox until the engine is dropped.
    pub(crate) async fn run_outbox(self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Outbox>) {
        while let Some(item) = rx.recv().await {
            let engine = self.clone();
            tokio::spawn(async move {
                match item {
                    Outbox::Dispatch {
                        execution_arn,
                        dispatch,
                    } => engine.perform(&execution_arn, dispatch).await,
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

    async fn perform(&self, execution_arn: &str, d: Dispatch) {
        let task_id = d.task_id;
        let reply = self.invoke(execution_arn, &d).await;
        let signal = match reply {
            Reply::Done(outcome) => Signal::TaskFinished { task_id, outcome },
            Reply::Submitted(output) => Signal::TaskSubmitted { task_id, output },
            Reply::Pending => return,
        };
        if let Err(e) = self.inner.runner.signal(execution_arn, signal).await {
            tracing::warn!(%execution_arn, error = %e, "task outcome not recorded");
        }
    }

    async fn invoke(&self, execution_arn: &str, d: &Dispatch) -> Reply {
        if let Some(reply) = integrations::mock::answer(self, execution_arn, d).await {
            return reply;
        }
        match &d.resource {
            Resource::Activity { arn } => {
                self.enqueue_activity(arn, execution_arn, d.task_id, d.token.clone(), &d.input);
                Reply::Pending
            }
            Resource::Service {
                service,
                action,
                pattern,
                ..
            } if service == "states" => self.start_child(execution_arn, d, action, *pattern).await,
            other => integrations::invoke(self, other, d).await,
        }
    }

    /// `states:startExecution` (all patterns): starts a child execution.
    async fn start_child(
        &self,
        execution_arn: &str,
        d: &Dispatch,
        action: &str,
        pattern: Pattern,
    ) -> Reply {
        if !action.starts_with("startExecution") {
            return failed("States.Runtime", format!("The resource 'arn:aws:states:::states:{action}' is not supported by stepwise yet."));
        }
        let Some(sm) = d.input.get("StateMachineArn").and_then(Value::as_str) else {
            return failed("States.Runtime", "The field 'StateMachineArn' is required.");
        };
        let name = d
            .input
            .get("Name")
            .and_then(Value::as_str)
            .map(str::to_owned);
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
        match self.start_linked(sm, name, input, parent).await {
            Ok(child) => {
                let started = json!({ "ExecutionArn": child.arn, "StartDate": child.start_date as f64 / 1000.0 });
                match pattern {
                    Pattern::RequestResponse => Reply::Done(TaskOutcome::Succeeded(started)),
                    Pattern::WaitForTaskToken => Reply::Pending,
                    // The child's end arrives as a finish notice, even if it already ended.
                    Pattern::Sync | Pattern::Sync2 => Reply::Submitted(started),
                }
            }
            Err(e) => failed(&format!("StepFunctions.{}Exception", e.code()), e.message()),
        }
    }

    /// A child started with `.sync` ended: finish the parent's task with its description.
    async fn child_finished(&self, child: &ExecutionRecord, parent: &ParentLink) {
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
        let outcome = if child.status == "SUCCEEDED" {
            TaskOutcome::Succeeded(described)
        } else {
            if let Some(e) = &child.error {
                described["Error"] = json!(e);
            }
            if let Some(c) = &child.cause {
                described["Cause"] = json!(c);
            }
            TaskOutcome::Failed(ErrorCause {
                error: Some("States.TaskFailed".into()),
                cause: Some(described.to_string()),
            })
        };
        let signal = Signal::TaskFinished {
            task_id: parent.task_id,
            outcome,
        };
        if let Err(e) = self
            .inner
            .runner
            .signal(&parent.execution_arn, signal)
            .await
        {
            tracing::warn!(parent = %parent.execution_arn, error = %e, "child outcome not recorded");
        }
    }

    /// The execution ended while a task was in progress: stop a `.sync` child.
    async fn cancel(&self, execution_arn: &str, d: &Dispatch) {
        let Resource::Service {
            service,
            pattern: Pattern::Sync | Pattern::Sync2,
            ..
        } = &d.resource
        else {
            return;
        };
        if service != "states" {
            return;
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
