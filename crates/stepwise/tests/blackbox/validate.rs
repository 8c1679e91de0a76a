//! ValidateStateMachineDefinition, black-box through aws-sdk-sfn: one table of requests
//! (severity, type, maxResults) and the result, diagnostics and truncation they get.

use crate::common;

use aws_sdk_sfn::error::ProvideErrorMetadata;
use aws_sdk_sfn::types::{StateMachineType, ValidateStateMachineDefinitionSeverity as Severity};
use common::Server;
use serde_json::{json, Value};

struct Row {
    name: &'static str,
    definition: Value,
    kind: Option<StateMachineType>,
    severity: Option<Severity>,
    max_results: Option<i32>,
    result: &'static str,
    /// (severity, code, location), in the order returned.
    diagnostics: Vec<(&'static str, &'static str, &'static str)>,
    truncated: bool,
}

/// Valid, with one warning of each kind.
fn with_warnings() -> Value {
    json!({"StartAt": "P", "States": {
        "P": {"Type": "Pass", "Parameters": {"a": "$.x"}, "Next": "R"},
        "R": {"Type": "Pass", "Result": {"r.$": "$.y"}, "Next": "F"},
        "F": {"Type": "Fail", "Error": "$.e"}
    }})
}

/// Valid for a STANDARD state machine only: an activity, `.waitForTaskToken` and `.sync:2`.
fn standard_only() -> Value {
    json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "arn:aws:states:us-east-1:123456789012:activity:a", "Next": "T"},
        "T": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
              "Parameters": {"QueueUrl": "q", "MessageBody": {"Token.$": "$$.Task.Token"}}, "Next": "U"},
        "U": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
              "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:c"}, "End": true}
    }})
}

/// Model-driven Tasks naming an action and parameters their services do not have.
fn unknown_to_the_models() -> Value {
    json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:dynamodb:putItems",
              "Parameters": {"TableName": "t"}, "Next": "B"},
        "B": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sqs:sendMessage",
              "Parameters": {"QueueUrl": "q", "MessageBody": "m", "Bogus.$": "$.x"}, "Next": "C"},
        "C": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
              "Parameters": {"TableName": "t", "Key": {}, "Item": {}}, "End": true}
    }})
}

const WARNINGS: [(&str, &str, &str); 3] = [
    ("WARNING", "NO_DOLLAR", "/States/P/Parameters/a"),
    ("WARNING", "PASS_RESULT_IS_STATIC", "/States/R/Result/r.$"),
    ("WARNING", "NO_PATH", "/States/F/Error"),
];

fn rows() -> Vec<Row> {
    let row = |name,
               definition,
               result,
               diagnostics: &[(&'static str, &'static str, &'static str)]| Row {
        name,
        definition,
        kind: None,
        severity: None,
        max_results: None,
        result,
        diagnostics: diagnostics.to_vec(),
        truncated: false,
    };
    let mut broken = with_warnings();
    broken["StartAt"] = json!("Missing");
    vec![
        row("warnings are hidden by default", with_warnings(), "OK", &[]),
        Row {
            severity: Some(Severity::Error),
            ..row("severity ERROR hides warnings", with_warnings(), "OK", &[])
        },
        Row {
            severity: Some(Severity::Warning),
            ..row(
                "severity WARNING shows them; result stays OK",
                with_warnings(),
                "OK",
                &WARNINGS,
            )
        },
        Row {
            severity: Some(Severity::Warning),
            ..row(
                "an error and warnings: FAIL, errors first",
                broken,
                "FAIL",
                &[
                    ("ERROR", "MISSING_TRANSITION_TARGET", "/StartAt"),
                    WARNINGS[0],
                    WARNINGS[1],
                    WARNINGS[2],
                ],
            )
        },
        Row {
            kind: Some(StateMachineType::Express),
            ..row(
                "EXPRESS refuses activities, .waitForTaskToken and .sync",
                standard_only(),
                "FAIL",
                &[
                    ("ERROR", "SCHEMA_VALIDATION_FAILED", "/States/A/Resource"),
                    ("ERROR", "SCHEMA_VALIDATION_FAILED", "/States/T/Resource"),
                    ("ERROR", "SCHEMA_VALIDATION_FAILED", "/States/U/Resource"),
                ],
            )
        },
        Row {
            kind: Some(StateMachineType::Standard),
            ..row("STANDARD accepts them", standard_only(), "OK", &[])
        },
        row(
            "unknown SDK actions and parameters",
            unknown_to_the_models(),
            "FAIL",
            &[
                ("ERROR", "SCHEMA_VALIDATION_FAILED", "/States/A/Resource"),
                ("ERROR", "SCHEMA_VALIDATION_FAILED", "/States/B/Parameters"),
                ("ERROR", "SCHEMA_VALIDATION_FAILED", "/States/C/Parameters"),
            ],
        ),
        Row {
            severity: Some(Severity::Warning),
            max_results: Some(1),
            truncated: true,
            ..row(
                "maxResults 1 truncates",
                with_warnings(),
                "OK",
                &WARNINGS[..1],
            )
        },
        Row {
            severity: Some(Severity::Warning),
            max_results: Some(0),
            ..row("maxResults 0 means 100", with_warnings(), "OK", &WARNINGS)
        },
    ]
}

#[tokio::test]
async fn severity_type_and_max_results() {
    let server = Server::memory(1.0);
    let client = server.client();
    let mut failures = Vec::new();
    for row in rows() {
        let answer = client
            .validate_state_machine_definition()
            .definition(row.definition.to_string())
            .set_type(row.kind.clone())
            .set_severity(row.severity.clone())
            .set_max_results(row.max_results)
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e) => {
                failures.push(format!("{}: {:?}", row.name, e.into_service_error()));
                continue;
            }
        };
        let got: Vec<(&str, &str, &str)> = out
            .diagnostics()
            .iter()
            .map(|d| (d.severity().as_str(), d.code(), d.location().unwrap_or("-")))
            .collect();
        let shape = (out.result().as_str(), got, out.truncated());
        let want = (row.result, row.diagnostics.clone(), Some(row.truncated));
        if shape != want {
            failures.push(format!("{}: got {shape:?}, want {want:?}", row.name));
        }
        if let Some(d) = out.diagnostics().iter().find(|d| d.message().is_empty()) {
            failures.push(format!("{}: no message in {d:?}", row.name));
        }
    }
    // Severity values outside the model's enum are refused before the definition is read.
    let refused = client
        .validate_state_machine_definition()
        .definition(with_warnings().to_string())
        .severity(Severity::from("INFO"))
        .send()
        .await;
    match refused {
        Err(e) if e.code() == Some("ValidationException") => {}
        other => failures.push(format!("severity INFO: {other:?}")),
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// CreateStateMachine and UpdateStateMachine refuse what ValidateStateMachineDefinition
/// reports, with AWS's message.
#[tokio::test]
async fn create_and_update_refuse_unknown_sdk_actions_and_parameters() {
    let server = Server::memory(1.0);
    let client = server.client();
    let role = "arn:aws:iam::123456789012:role/r";
    let created = client
        .create_state_machine()
        .name("unknown-to-the-models")
        .role_arn(role)
        .definition(unknown_to_the_models().to_string())
        .send()
        .await;
    let e = created.expect_err("an unknown action is refused");
    assert_eq!(e.code(), Some("InvalidDefinition"), "{e:?}");
    assert_eq!(
        e.message(),
        Some(
            "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The resource provided \
             arn:aws:states:::aws-sdk:dynamodb:putItems is not recognized. The value is not a \
             valid resource ARN, or the resource is not available in this region. at \
             /States/A/Resource, SCHEMA_VALIDATION_FAILED: The field 'Bogus' is not supported \
             by Step Functions at /States/B/Parameters, SCHEMA_VALIDATION_FAILED: The field \
             'Item' is not supported by Step Functions at /States/C/Parameters'"
        ),
    );
    let valid = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}});
    let sm = client
        .create_state_machine()
        .name("known-to-the-models")
        .role_arn(role)
        .definition(valid.to_string())
        .send()
        .await
        .expect("a valid definition is created");
    let updated = client
        .update_state_machine()
        .state_machine_arn(sm.state_machine_arn())
        .definition(unknown_to_the_models().to_string())
        .send()
        .await;
    let e = updated.expect_err("an unknown action is refused");
    assert_eq!(e.code(), Some("InvalidDefinition"), "{e:?}");
}

/// `stepwise validate FILE`: errors fail it, warnings are printed and do not.
#[test]
fn validate_command_prints_errors_and_warnings() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cases = [
        (
            with_warnings(),
            true,
            vec![
                "WARNING NO_DOLLAR /States/P/Parameters/a",
                "WARNING PASS_RESULT_IS_STATIC /States/R/Result/r.$",
                "WARNING NO_PATH /States/F/Error",
                "OK",
            ],
        ),
        (
            json!({"StartAt": "Nope", "States": {"P": {"Type": "Pass", "Parameters": {"a": "$.x"}, "End": true}}}),
            false,
            vec![
                "ERROR MISSING_TRANSITION_TARGET /StartAt",
                "WARNING NO_DOLLAR /States/P/Parameters/a",
            ],
        ),
    ];
    for (i, (definition, ok, starts)) in cases.into_iter().enumerate() {
        let file = dir.path().join(format!("{i}.json"));
        std::fs::write(&file, definition.to_string()).expect("write the definition");
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
            .arg("validate")
            .arg(&file)
            .output()
            .expect("running `stepwise validate`");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(output.status.success(), ok, "{definition}: {stdout}");
        assert_eq!(lines.len(), starts.len(), "{definition}: {stdout}");
        for (line, start) in lines.iter().zip(&starts) {
            assert!(
                line.starts_with(start),
                "{line:?} should start with {start:?}"
            );
        }
    }
}

/// The definitions AWS refuses among the real-world ones: the folder's README names them.
pub(crate) const REALWORLD_INVALID_ON_AWS: &[&str] = &[
    // `QueryLanguage` inside `States`.
    "sfn-workflows/shared-fallback-state-jsonata__statemachine__statemachine.asl.json",
];

/// Every definition of `realworld-cases` in the shared folder (deployed AWS samples) passes
/// `stepwise validate`, and the ones AWS refuses fail it. Skipped, with a message, when the
/// folder is absent.
#[test]
fn realworld_definitions_validate() {
    let Some(dir) = crate::shared_dir::shared_path("realworld-cases") else {
        return;
    };
    let index = std::fs::read_to_string(dir.join("index.json")).expect("reading index.json");
    let index: Value = serde_json::from_str(&index).expect("index.json is JSON");
    let files: Vec<&str> = index["cases"]
        .as_array()
        .expect("index.json lists its cases")
        .iter()
        .filter_map(|c| c["file"].as_str())
        .collect();
    assert!(!files.is_empty(), "index.json lists no files");
    let mut failures = Vec::new();
    for file in &files {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
            .arg("validate")
            .arg(dir.join(file))
            .output()
            .expect("running `stepwise validate`");
        let valid_on_aws = !REALWORLD_INVALID_ON_AWS.contains(file);
        if output.status.success() != valid_on_aws {
            let errors: Vec<String> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter(|l| l.starts_with("ERROR"))
                .map(str::to_owned)
                .collect();
            failures.push(format!(
                "{file}: AWS {}, stepwise {}: {errors:?}",
                if valid_on_aws {
                    "accepts it"
                } else {
                    "refuses it"
                },
                if valid_on_aws {
                    "refuses it"
                } else {
                    "accepts it"
                },
            ));
        }
    }
    println!("{} real-world definitions validated", files.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
