//! `arn:aws:states:::aws-sdk:sfn:*`: a workflow calling Step Functions itself (workers written
//! as state machines, orchestration of other executions). Served by this engine directly.
//!
//! A workflow's calls to this server (these and `states:startExecution`) act as its
//! execution's account: where accounts are kept apart (`--auth sigv4`), one naming another
//! account's resource is refused before it runs, as the API refuses such a request.

use asl::error::names;
use asl::interpreter::{Dispatch, TaskOutcome};
use serde_json::{json, Map, Value};

use crate::tasks::{failed, TaskReply};
use crate::{Engine, Error};

impl Engine {
    pub(crate) async fn sfn_sdk(
        &self,
        execution_arn: &str,
        action: &str,
        d: &Dispatch,
    ) -> TaskReply {
        const ACTIONS: &[&str] = &[
            "getActivityTask",
            "sendTaskSuccess",
            "sendTaskFailure",
            "sendTaskHeartbeat",
            "startExecution",
            "describeExecution",
            "stopExecution",
        ];
        if !ACTIONS.contains(&action) {
            let resource = format!("arn:aws:states:::aws-sdk:sfn:{action}");
            return failed(
                names::RUNTIME,
                format!("The resource '{resource}' is not supported by stepwise yet."),
            );
        }
        let p = &d.input;
        let text = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_owned);
        let required = |key: &str| {
            text(key).ok_or_else(|| Error::Validation(format!("The field '{key}' is required")))
        };
        let result: Result<Value, Error> = async {
            self.check_workflow_access(execution_arn, action, p)?;
            Ok(match action {
                "getActivityTask" => {
                    let task = self
                        .get_activity_task(&required("ActivityArn")?, text("WorkerName"))
                        .await?;
                    match task {
                        Some(t) => json!({ "Input": t.input, "TaskToken": t.token }),
                        None => json!({}),
                    }
                }
                "sendTaskSuccess" => {
                    let output = match p.get("Output") {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => {
                            return Err(Error::Validation("The field 'Output' is required".into()))
                        }
                    };
                    self.send_task_success(&required("TaskToken")?, &output)
                        .await?;
                    json!({})
                }
                "sendTaskFailure" => {
                    self.send_task_failure(&required("TaskToken")?, text("Error"), text("Cause"))
                        .await?;
                    json!({})
                }
                "sendTaskHeartbeat" => {
                    self.send_task_heartbeat(&required("TaskToken")?).await?;
                    json!({})
                }
                "startExecution" => {
                    let input = p.get("Input").map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                    let started = self
                        .start_execution(
                            &required("StateMachineArn")?,
                            text("Name"),
                            input,
                            text("TraceHeader"),
                        )
                        .await?;
                    json!({ "ExecutionArn": started.arn, "StartDate": date(started.start_date) })
                }
                "describeExecution" => {
                    let e = self.describe_execution(&required("ExecutionArn")?).await?;
                    let mut o = Map::new();
                    o.insert("ExecutionArn".into(), json!(e.arn));
                    o.insert("StateMachineArn".into(), json!(e.state_machine_arn));
                    o.insert("Name".into(), json!(e.name));
                    o.insert("Status".into(), json!(e.status));
                    o.insert("StartDate".into(), date(e.start_date));
                    o.insert("Input".into(), json!(e.input));
                    o.insert("InputDetails".into(), json!({ "Included": true }));
                    if e.output.is_some() {
                        o.insert("OutputDetails".into(), json!({ "Included": true }));
                    }
                    for (key, value) in [
                        ("StopDate", e.stop_date.map(date)),
                        ("Output", e.output.map(|o| json!(o))),
                        ("Error", e.error.map(|v| json!(v))),
                        ("Cause", e.cause.map(|v| json!(v))),
                    ] {
                        if let Some(v) = value {
                            o.insert(key.into(), v);
                        }
                    }
                    Value::Object(o)
                }
                _ => {
                    let e = self
                        .stop_execution(&required("ExecutionArn")?, text("Error"), text("Cause"))
                        .await?;
                    json!({ "StopDate": date(e) })
                }
            })
        }
        .await;
        match result {
            Ok(v) => TaskReply::Done(TaskOutcome::Succeeded(v)),
            Err(e) => sdk_error(&e),
        }
    }
}

impl Engine {
    /// Refuses a workflow's call (`action`, its `parameters`) that names a Step Functions
    /// resource of another account than its execution's, when accounts are kept apart.
    pub(crate) fn check_workflow_access(
        &self,
        execution_arn: &str,
        action: &str,
        parameters: &Value,
    ) -> Result<(), Error> {
        if !self.config().isolate_accounts {
            return Ok(());
        }
        let Some(account) = crate::arn::Arn::parse(execution_arn).map(|a| a.account) else {
            return Ok(());
        };
        let named = |key: &str| parameters.get(key).and_then(Value::as_str);
        let mut resources: Vec<String> = ["StateMachineArn", "ExecutionArn", "ActivityArn"]
            .into_iter()
            .filter_map(|key| named(key).map(str::to_owned))
            .collect();
        if let Some(token) = named("TaskToken") {
            resources.extend(asl::task_token::parse_task_token(token).map(|t| t.execution_arn));
        }
        let foreign = resources
            .into_iter()
            .find(|arn| crate::arn::Arn::parse(arn).is_some_and(|a| a.account != account));
        match foreign {
            None => Ok(()),
            Some(resource) => {
                let mut operation = action.to_owned();
                if let Some(first) = operation.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                Err(Error::access_denied(&account, &operation, &resource))
            }
        }
    }
}

/// A date in an SDK integration's result: an ISO-8601 string, as AWS renders the SDK's
/// timestamps (`2024-02-07T13:52:02.123Z`), not the API's epoch seconds.
fn date(millis: i64) -> Value {
    Value::String(asl::timestamp::format_millis(millis))
}

/// A failed call as the `aws-sdk:sfn:*` integrations name and describe it: the AWS Java SDK
/// v2's exception (`Sfn.InvalidTokenException`; `Sfn.SfnException` for a failure the model
/// does not list) and its message form, as for the other `aws-sdk:*` integrations.
fn sdk_error(e: &Error) -> TaskReply {
    let name = match e {
        Error::Store(_) => "SfnException".to_owned(),
        e if e.code().ends_with("Exception") => e.code().to_owned(),
        e => format!("{}Exception", e.code()),
    };
    let request_id = uuid::Uuid::new_v4();
    failed(
        &format!("Sfn.{name}"),
        format!(
            "{} (Service: Sfn, Status Code: {}, Request ID: {request_id})",
            e.message(),
            e.http_status()
        ),
    )
}
