//! Bedrock, `arn:aws:states:::bedrock:invokeModel` (request-response): one inference call,
//! Bedrock Runtime's `InvokeModel` (restJson1, signed for `bedrock`, sent to
//! `bedrock-runtime.REGION.amazonaws.com` or `--endpoint bedrock=URL`).
//!
//! Parameters, as AWS's: `ModelId`, `Body` (JSON, sent as its text, or a string),
//! `ContentType` and `Accept` (both `application/json` by default), `Trace`,
//! `GuardrailIdentifier`, `GuardrailVersion`, `PerformanceConfigLatency`. `Input` and `Output`
//! (the body read from and written to S3) are refused with `States.Runtime`: not supported
//! yet. The result: `{"Body": …, "ContentType": "…"}`, the body parsed when it is JSON. Errors
//! are `Bedrock.NAME` (`Bedrock.ValidationException`), like the `aws-sdk:*` integrations.

use asl::error::names;
use asl::interpreter::{Dispatch, TaskOutcome};
use serde_json::{Map, Value};

use super::aws_sdk::{call, model, Naming, Target};
use super::unsupported_action;
use crate::tasks::{failed, TaskReply};
use crate::Engine;

/// The parameters passed on to `InvokeModel`.
const PASSED: [&str; 8] = [
    "ModelId",
    "Body",
    "ContentType",
    "Accept",
    "Trace",
    "GuardrailIdentifier",
    "GuardrailVersion",
    "PerformanceConfigLatency",
];

/// `arn:aws:states:::bedrock:invokeModel` in `region`.
pub async fn invoke(engine: &Engine, d: &Dispatch, region: &str) -> TaskReply {
    let Some(service) = model::service("bedrockruntime") else {
        return unsupported_action("bedrock", "invokeModel");
    };
    let Some((op_name, op)) = service.operation("invokeModel") else {
        return unsupported_action("bedrock", "invokeModel");
    };
    let params = match parameters(&d.input) {
        Ok(p) => p,
        Err(e) => return failed(names::RUNTIME, e),
    };
    let target = Target {
        service: &service,
        name: "bedrock",
        op_name,
        op,
        region,
    };
    let naming = Naming {
        prefix: "Bedrock".into(),
        generic: "Bedrock.BedrockRuntimeException".into(),
        cause_service: "BedrockRuntime".into(),
        v1: false,
    };
    match call(engine, d, &target, &params).await {
        Ok(answer) => TaskReply::Done(TaskOutcome::Succeeded(result(answer.output))),
        Err(e) => e.reply(&service, &naming),
    }
}

/// The `InvokeModel` parameters: those AWS documents, JSON by default.
fn parameters(input: &Value) -> Result<Value, String> {
    let Value::Object(fields) = input else {
        return Err("The parameters of bedrock:invokeModel must be an object.".into());
    };
    for s3 in ["Input", "Output"] {
        if fields.contains_key(s3) {
            return Err(format!(
                "The field '{s3}' of bedrock:invokeModel (a body in S3) is not supported by stepwise yet; pass the Body itself."
            ));
        }
    }
    if !fields.get("ModelId").is_some_and(Value::is_string) {
        return Err("The field 'ModelId' is required by bedrock:invokeModel.".into());
    }
    let mut out: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| PASSED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for header in ["ContentType", "Accept"] {
        out.entry(header)
            .or_insert_with(|| Value::String("application/json".into()));
    }
    Ok(Value::Object(out))
}

/// `InvokeModel`'s answer as Step Functions records it: the body parsed when it is JSON.
fn result(mut output: Value) -> Value {
    let json = output
        .get("ContentType")
        .and_then(Value::as_str)
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .ends_with("json")
        });
    if let Some(body) = output.get_mut("Body") {
        if let (true, Some(text)) = (json, body.as_str()) {
            if let Ok(parsed) = serde_json::from_str::<Value>(text) {
                *body = parsed;
            }
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_and_result() {
        assert_eq!(
            parameters(&json!({"ModelId": "m", "Body": {"prompt": "hi"}, "Other": 1})),
            Ok(json!({"ModelId": "m", "Body": {"prompt": "hi"},
                "ContentType": "application/json", "Accept": "application/json"}))
        );
        assert!(parameters(&json!({"Body": {}})).is_err());
        assert!(parameters(&json!({"ModelId": "m", "Input": {"S3Uri": "s3://b/k"}})).is_err());
        assert_eq!(
            result(json!({"Body": "{\"a\":1}", "ContentType": "application/json"})),
            json!({"Body": {"a": 1}, "ContentType": "application/json"})
        );
        assert_eq!(
            result(json!({"Body": "plain", "ContentType": "text/plain"})),
            json!({"Body": "plain", "ContentType": "text/plain"})
        );
    }
}
