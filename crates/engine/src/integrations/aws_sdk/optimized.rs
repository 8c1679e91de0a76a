//! The optimized integrations that are thin over an API action: SNS `publish`, SQS
//! `sendMessage`, EventBridge `putEvents` and DynamoDB `getItem`/`putItem`/`updateItem`/
//! `deleteItem` (each also `.waitForTaskToken`).
//!
//! Their parameters are the API's, except that a message (`Message`, `MessageBody`, an
//! event's `Detail`) may be JSON, sent as its text. Their results are the API's output with
//! the `SdkHttpMetadata`/`SdkResponseMetadata` AWS's Java SDK adds (not for `putEvents`), and
//! their errors the v1 SDK's names (`DynamoDB.ConditionalCheckFailedException`,
//! `SQS.AmazonSQSException`). A `putEvents` with failed entries fails with
//! `EventBridge.FailedEntry`, its output as the cause, as AWS does.

use asl::interpreter::{Dispatch, TaskOutcome};
use asl::task::Pattern;
use serde_json::Value;

use super::{call, model, Naming, Target};
use crate::integrations::{sdk_metadata, unsupported_action};
use crate::tasks::{failed, TaskReply};
use crate::Engine;

/// One optimized integration: the model it calls and how AWS names its errors.
struct Integration {
    /// `aws-sdk:NAME` of the model.
    model: &'static str,
    /// The v1 SDK's prefix of error names and its service name in causes.
    prefix: &'static str,
    cause_service: &'static str,
    /// The v1 SDK's exception for errors the model does not list.
    generic: &'static str,
    /// Whether the result carries the SDK's HTTP metadata.
    metadata: bool,
}

fn integration(service: &str, action: &str) -> Option<Integration> {
    let (model, prefix, cause_service, generic, metadata) = match (service, action) {
        ("sns", "publish") => ("sns", "SNS", "AmazonSNS", "AmazonSNSException", true),
        ("sqs", "sendMessage") => ("sqs", "SQS", "AmazonSQS", "AmazonSQSException", true),
        ("events", "putEvents") => (
            "eventbridge",
            "EventBridge",
            "AmazonEventBridge",
            "AmazonEventBridgeException",
            false,
        ),
        ("dynamodb", "getItem" | "putItem" | "updateItem" | "deleteItem") => (
            "dynamodb",
            "DynamoDB",
            "AmazonDynamoDBv2",
            "AmazonDynamoDBException",
            true,
        ),
        _ => return None,
    };
    Some(Integration {
        model,
        prefix,
        cause_service,
        generic,
        metadata,
    })
}

/// The model (`aws-sdk:NAME`) the integration `service:action` (no pattern suffix) calls.
pub(super) fn model_of(service: &str, action: &str) -> Option<&'static str> {
    integration(service, action).map(|it| it.model)
}

/// Whether `service:action` is one of these integrations.
pub fn handles(service: &str, action: &str) -> bool {
    let action = action.strip_suffix(".waitForTaskToken").unwrap_or(action);
    integration(service, action).is_some()
}

/// Performs `arn:aws:states:::SERVICE:ACTION[.waitForTaskToken]`.
pub async fn invoke(
    engine: &Engine,
    d: &Dispatch,
    service: &str,
    action: &str,
    pattern: Pattern,
    region: &str,
) -> TaskReply {
    let base = action.strip_suffix(".waitForTaskToken").unwrap_or(action);
    let Some(it) = integration(service, base) else {
        return unsupported_action(service, action);
    };
    let Some(model) = model::service(it.model) else {
        return unsupported_action(service, action);
    };
    if matches!(pattern, Pattern::Sync | Pattern::Sync2) {
        return unsupported_action(service, action);
    }
    let Some((op_name, op)) = model.operation(base) else {
        return unsupported_action(service, action);
    };
    let params = texts(base, &d.input);
    let naming = Naming {
        prefix: it.prefix.into(),
        generic: format!("{}.{}", it.prefix, it.generic),
        cause_service: it.cause_service.into(),
        v1: true,
    };
    let target = Target {
        service: &model,
        name: it.model,
        op_name,
        op,
        region,
    };
    let answer = match call(engine, d, &target, &params).await {
        Ok(a) => a,
        Err(e) => return e.reply(&model, &naming),
    };
    let mut output = answer.output;
    if base == "putEvents" && output["FailedEntryCount"].as_u64().unwrap_or(0) > 0 {
        return failed("EventBridge.FailedEntry", output.to_string());
    }
    if it.metadata {
        let (http, request_id) = sdk_metadata(answer.status, &answer.headers);
        if let Value::Object(fields) = &mut output {
            fields.insert("SdkHttpMetadata".into(), http);
            fields.insert(
                "SdkResponseMetadata".into(),
                serde_json::json!({ "RequestId": request_id }),
            );
        }
    }
    match pattern {
        // AWS records what the call answered (`TaskSubmitted`), then waits for the token.
        Pattern::WaitForTaskToken => TaskReply::Submitted(output),
        _ => TaskReply::Done(TaskOutcome::Succeeded(output)),
    }
}

/// The parameters with JSON messages as text (`Message`, `MessageBody`, each `Detail`).
fn texts(action: &str, params: &Value) -> Value {
    let mut params = params.clone();
    let as_text = |v: &mut Value| {
        if !v.is_string() && !v.is_null() {
            *v = Value::String(v.to_string());
        }
    };
    match action {
        "publish" => {
            if let Some(m) = params.get_mut("Message") {
                as_text(m);
            }
        }
        "sendMessage" => {
            if let Some(m) = params.get_mut("MessageBody") {
                as_text(m);
            }
        }
        "putEvents" => {
            if let Some(Value::Array(entries)) = params.get_mut("Entries") {
                for e in entries {
                    if let Some(detail) = e.get_mut("Detail") {
                        as_text(detail);
                    }
                }
            }
        }
        _ => {}
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_messages_are_sent_as_text() {
        assert_eq!(
            texts(
                "sendMessage",
                &json!({"MessageBody": {"a": 1}, "QueueUrl": "q"})
            ),
            json!({"MessageBody": "{\"a\":1}", "QueueUrl": "q"})
        );
        assert_eq!(
            texts(
                "putEvents",
                &json!({"Entries": [{"Detail": {"x": true}}, {"Detail": "s"}]})
            ),
            json!({"Entries": [{"Detail": "{\"x\":true}"}, {"Detail": "s"}]})
        );
        assert!(handles("dynamodb", "putItem"));
        assert!(handles("sqs", "sendMessage.waitForTaskToken"));
        assert!(!handles("dynamodb", "query"));
    }
}
