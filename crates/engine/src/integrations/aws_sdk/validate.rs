//! What a definition's model-driven Tasks may name, checked when it is created or validated,
//! as AWS checks it: an `aws-sdk:SERVICE:ACTION` whose service model ships with stepwise
//! must name one of its actions, and the top-level parameters of such a
//! Task, or of an optimized integration over a model ([`optimized`]), must be members of
//! the action's input. A service without a shipped model, and JSONata arguments given as one
//! expression, are left to run time.
//!
//! Stored definitions are not checked again: a definition created by an older build still
//! loads.

use asl::definition::{codes, Definition, Diagnostic, QueryLanguage, StateKind};
use asl::task::Resource;

use super::{model, optimized, value};

/// The diagnostics of every Task in `definition` that names what its service does not have.
pub fn diagnostics(definition: &Definition) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (state, at) in definition.all_states() {
        let StateKind::Task(task) = &state.kind else {
            continue;
        };
        let Resource::Service {
            arn,
            service,
            action,
            ..
        } = &task.resource
        else {
            continue;
        };
        let (model_name, base) = match service.strip_prefix("aws-sdk:") {
            Some(name) => (
                name,
                action.strip_suffix(".waitForTaskToken").unwrap_or(action),
            ),
            None => {
                let base = action.strip_suffix(".waitForTaskToken").unwrap_or(action);
                match optimized::model_of(service, base) {
                    Some(name) => (name, base),
                    None => continue,
                }
            }
        };
        let Some(model) = model::service(model_name) else {
            continue;
        };
        let Some((_, operation)) = model.operation(base) else {
            // AWS's wording for a resource it does not offer.
            out.push(schema_error(
                format!(
                    "The resource provided {arn} is not recognized. The value is not a valid resource ARN, or the resource is not available in this region."
                ),
                format!("{at}/Resource"),
            ));
            continue;
        };
        let (Some(params), Some(input)) = (&task.parameters, &operation.input) else {
            continue;
        };
        let (Some(keys), Some(shape)) = (params.keys(), model.shape(input)) else {
            continue;
        };
        let field = match state.query_language {
            QueryLanguage::JsonPath => "Parameters",
            QueryLanguage::Jsonata => "Arguments",
        };
        for key in keys {
            if value::find_member(shape, key).is_none() {
                // [GUESS: the wording of AWS's unknown state fields; no recorded answer for
                // an unknown parameter was found.]
                out.push(schema_error(
                    format!("The field '{key}' is not supported by Step Functions"),
                    format!("{at}/{field}"),
                ));
            }
        }
    }
    out
}

fn schema_error(message: String, location: String) -> Diagnostic {
    Diagnostic {
        code: codes::SCHEMA_VALIDATION_FAILED,
        message,
        location: Some(location),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(task, the diagnostics' messages and locations)`.
    #[test]
    fn unknown_actions_and_parameters_are_refused() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                r#"{"Resource": "arn:aws:states:::aws-sdk:dynamodb:putItem",
                    "Parameters": {"TableName": "t", "Item": {}, "ConditionExpression.$": "$.c"}}"#,
                &[],
            ),
            (
                r#"{"Resource": "arn:aws:states:::aws-sdk:dynamodb:putItems", "Parameters": {"Bogus": 1}}"#,
                &[("The resource provided arn:aws:states:::aws-sdk:dynamodb:putItems is not recognized. The value is not a valid resource ARN, or the resource is not available in this region.", "/States/T/Resource")],
            ),
            (
                r#"{"Resource": "arn:aws:states:::aws-sdk:dynamodb:putItem",
                    "Parameters": {"TableName": "t", "Items": {}, "Bogus.$": "$.x"}}"#,
                &[
                    ("The field 'Items' is not supported by Step Functions", "/States/T/Parameters"),
                    ("The field 'Bogus' is not supported by Step Functions", "/States/T/Parameters"),
                ],
            ),
            (
                r#"{"Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": "q", "MessageBody": {"t.$": "$$.Task.Token"}, "Delay": 1}}"#,
                &[("The field 'Delay' is not supported by Step Functions", "/States/T/Parameters")],
            ),
            (
                r#"{"QueryLanguage": "JSONata", "Resource": "arn:aws:states:::aws-sdk:sqs:sendMessage",
                    "Arguments": {"QueueUrl": "q", "MessageBody": "{% $states.input %}", "Body": 1}}"#,
                &[("The field 'Body' is not supported by Step Functions", "/States/T/Arguments")],
            ),
            // Left to run time: a whole-parameters expression, a service without a model,
            // an optimized integration not over a model.
            (
                r#"{"QueryLanguage": "JSONata", "Resource": "arn:aws:states:::aws-sdk:dynamodb:putItem",
                    "Arguments": "{% $states.input %}"}"#,
                &[],
            ),
            (
                r#"{"Resource": "arn:aws:states:::aws-sdk:nosuchservice:doIt", "Parameters": {"X": 1}}"#,
                &[],
            ),
            (
                r#"{"Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "f", "X": 1}}"#,
                &[],
            ),
            // AWS's PascalCase for members written otherwise in the model.
            (
                r#"{"Resource": "arn:aws:states:::aws-sdk:apigateway:getRestApis", "Parameters": {"Limit": 5}}"#,
                &[],
            ),
        ];
        for (task, expected) in cases {
            let mut state: serde_json::Value = serde_json::from_str(task).expect("task JSON");
            state["Type"] = "Task".into();
            state["End"] = true.into();
            let text = serde_json::json!({"StartAt": "T", "States": {"T": state}}).to_string();
            let definition = Definition::parse(&text).expect("parses");
            let got: Vec<(String, String)> = diagnostics(&definition)
                .into_iter()
                .map(|d| (d.message, d.location.unwrap_or_default()))
                .collect();
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(m, l)| (m.to_string(), l.to_string()))
                .collect();
            assert_eq!(got, expected, "{task}");
        }
    }
}
