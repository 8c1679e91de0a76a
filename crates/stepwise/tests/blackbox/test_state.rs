//! TestState, black-box: one table of requests and the answers AWS gives them (inspection
//! levels, a state inside a full definition, variables, mocked errors retried and caught, Map
//! thresholds, mock field validation, request validation), and a Task really performed
//! through the Lambda integration.

use crate::common;

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::http::Request;
use common::{Options, Raw, Server, StoreKind};
use serde_json::{json, Value};

/// What a row expects.
enum Expect {
    /// The answer, with its JSON-text members (`output`, `inspectionData.*`) parsed.
    Answer(Value),
    /// An error answer: code and message.
    Error(&'static str, &'static str),
}

struct Row {
    name: &'static str,
    request: Value,
    expect: Expect,
}

const TASK: &str = "arn:aws:states:::lambda:invoke";

fn rows() -> Vec<Row> {
    let io_pass = json!({
        "Type": "Pass",
        "InputPath": "$.data",
        "Parameters": {"fixed": 1, "value.$": "$.value"},
        "ResultPath": "$.out",
        "End": true
    });
    let io_input = json!({"data": {"value": "v"}, "other": 2});
    let io_output = json!({"data": {"value": "v"}, "other": 2, "out": {"fixed": 1, "value": "v"}});
    let machine = json!({
        "StartAt": "First",
        "States": {
            "First": {"Type": "Pass", "Next": "Second"},
            "Second": {"Type": "Choice", "Choices": [
                {"Variable": "$.n", "NumericGreaterThan": 10, "Next": "Big"}
            ], "Default": "Small"},
            "Big": {"Type": "Succeed"},
            "Small": {"Type": "Succeed"}
        }
    });
    let retried = json!({
        "Type": "Task",
        "Resource": TASK,
        "Parameters": {"FunctionName": "f"},
        "Retry": [
            {"ErrorEquals": ["Other"]},
            {"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "BackoffRate": 2, "MaxAttempts": 3}
        ],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handler"}],
        "End": true
    });
    let boom = json!({"errorOutput": {"error": "Boom", "cause": "it broke"}});
    let map = json!({
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": true}}
        },
        "ToleratedFailureCount": 1,
        "Catch": [{"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "Next": "TooMany"}],
        "End": true
    });
    vec![
        Row {
            name: "INFO: output only",
            request: json!({"definition": io_pass.to_string(), "input": io_input.to_string()}),
            expect: Expect::Answer(json!({"status": "SUCCEEDED", "output": io_output})),
        },
        Row {
            name: "DEBUG: every step of a Pass state",
            request: json!({
                "definition": io_pass.to_string(), "input": io_input.to_string(),
                "inspectionLevel": "DEBUG"
            }),
            expect: Expect::Answer(json!({
                "status": "SUCCEEDED",
                "output": io_output,
                "inspectionData": {
                    "input": io_input,
                    "afterInputPath": {"value": "v"},
                    "afterParameters": {"fixed": 1, "value": "v"},
                    "afterResultSelector": {"fixed": 1, "value": "v"},
                    "afterResultPath": io_output
                }
            })),
        },
        Row {
            name: "TRACE: a mocked Task with ResultSelector, ResultPath, OutputPath",
            request: json!({
                "definition": json!({
                    "Type": "Task", "Resource": TASK,
                    "Parameters": {"FunctionName": "f", "Payload.$": "$.p"},
                    "ResultSelector": {"got.$": "$.Payload"},
                    "ResultPath": "$.r", "OutputPath": "$.r", "Next": "After"
                }).to_string(),
                "input": json!({"p": [1, 2]}).to_string(),
                "inspectionLevel": "TRACE",
                "mock": {"result": json!({"Payload": "hi", "StatusCode": 200}).to_string()}
            }),
            expect: Expect::Answer(json!({
                "status": "SUCCEEDED",
                "output": {"got": "hi"},
                "nextState": "After",
                "inspectionData": {
                    "input": {"p": [1, 2]},
                    "afterInputPath": {"p": [1, 2]},
                    "afterParameters": {"FunctionName": "f", "Payload": [1, 2]},
                    "result": {"Payload": "hi", "StatusCode": 200},
                    "afterResultSelector": {"got": "hi"},
                    "afterResultPath": {"p": [1, 2], "r": {"got": "hi"}}
                }
            })),
        },
        Row {
            name: "a state of a full definition, by stateName",
            request: json!({
                "definition": machine.to_string(), "stateName": "Second",
                "input": json!({"n": 11}).to_string(), "inspectionLevel": "DEBUG"
            }),
            expect: Expect::Answer(json!({
                "status": "SUCCEEDED",
                "output": {"n": 11},
                "nextState": "Big",
                "inspectionData": {"input": {"n": 11}, "afterInputPath": {"n": 11}}
            })),
        },
        Row {
            name: "variables read and assigned (JSONata)",
            request: json!({
                "definition": json!({
                    "Type": "Pass", "QueryLanguage": "JSONata",
                    "Assign": {"total": "{% $base + $states.input.add %}"},
                    "Output": {"seen": "{% $base %}"}, "End": true
                }).to_string(),
                "input": json!({"add": 2}).to_string(),
                "variables": json!({"base": 40}).to_string(),
                "inspectionLevel": "DEBUG"
            }),
            expect: Expect::Answer(json!({
                "status": "SUCCEEDED",
                "output": {"seen": 40},
                "inspectionData": {"input": {"add": 2}, "variables": {"base": 40, "total": 42}}
            })),
        },
        Row {
            name: "a mocked error a retrier still retries: RETRIABLE",
            request: json!({
                "definition": retried.to_string(), "input": "{}", "inspectionLevel": "DEBUG",
                "mock": boom, "stateConfiguration": {"retrierRetryCount": 2}
            }),
            expect: Expect::Answer(json!({
                "status": "RETRIABLE", "error": "Boom", "cause": "it broke",
                "inspectionData": {
                    "input": {}, "afterInputPath": {}, "afterParameters": {"FunctionName": "f"},
                    "errorDetails": {"retryIndex": 1, "retryBackoffIntervalSeconds": 8}
                }
            })),
        },
        Row {
            name: "retries used up, then caught: CAUGHT_ERROR",
            request: json!({
                "definition": retried.to_string(), "input": json!({"k": 1}).to_string(),
                "inspectionLevel": "INFO",
                "mock": boom, "stateConfiguration": {"retrierRetryCount": 3}
            }),
            expect: Expect::Answer(json!({
                "status": "CAUGHT_ERROR", "error": "Boom", "cause": "it broke",
                "nextState": "Handler",
                "output": {"k": 1, "error": {"Error": "Boom", "Cause": "it broke"}}
            })),
        },
        Row {
            name: "a Map's failed iterations beyond its threshold, caught",
            request: json!({
                "definition": map.to_string(), "input": json!({"items": [1, 2, 3]}).to_string(),
                "inspectionLevel": "DEBUG", "mock": {"result": "[1, 2, 3]"},
                "stateConfiguration": {"mapIterationFailureCount": 2}
            }),
            expect: Expect::Answer(json!({
                "status": "CAUGHT_ERROR",
                "error": "States.ExceedToleratedFailureThreshold",
                "cause": "The specified tolerated failure threshold was exceeded",
                "nextState": "TooMany",
                "output": {
                    "Error": "States.ExceedToleratedFailureThreshold",
                    "Cause": "The specified tolerated failure threshold was exceeded"
                },
                "inspectionData": {
                    "input": {"items": [1, 2, 3]},
                    "afterInputPath": {"items": [1, 2, 3]},
                    "afterItemsPath": [1, 2, 3],
                    "maxConcurrency": 0,
                    "toleratedFailureCount": 1,
                    "errorDetails": {"catchIndex": 0}
                }
            })),
        },
        Row {
            name: "a Fail state",
            request: json!({
                "definition": json!({"Type": "Fail", "Error": "E", "Cause": "C"}).to_string()
            }),
            expect: Expect::Answer(json!({"status": "FAILED", "error": "E", "cause": "C"})),
        },
        Row {
            name: "a mock with both result and errorOutput",
            request: json!({
                "definition": retried.to_string(),
                "mock": {"result": "{}", "errorOutput": {"error": "E"}}
            }),
            expect: Expect::Error(
                "ValidationException",
                "A test mock should have only one of the following fields: [result, errorOutput].",
            ),
        },
        Row {
            name: "a mock on a Pass state",
            request: json!({
                "definition": io_pass.to_string(), "mock": {"result": "{}"}
            }),
            expect: Expect::Error(
                "ValidationException",
                "State type 'Pass' is not supported when a mock is specified",
            ),
        },
        Row {
            name: "a mocked result that breaks the API's output shape",
            request: json!({
                "definition": json!({
                    "Type": "Task", "Resource": "arn:aws:states:::events:putEvents",
                    "Parameters": {"Entries": []}, "End": true
                }).to_string(),
                "mock": {"result": json!({"Entries": "not a list"}).to_string()}
            }),
            expect: Expect::Error(
                "ValidationException",
                "Mock result schema validation error: Field 'Entries' must be an array",
            ),
        },
        Row {
            name: "a Parallel state without a mock",
            request: json!({
                "definition": json!({"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
                ]}).to_string()
            }),
            expect: Expect::Error(
                "InvalidDefinition",
                "TestState API does not support Map or Parallel states. Supported state types include: [Task, Wait, Pass, Succeed, Fail, Choice]",
            ),
        },
        Row {
            name: "a Parallel mock with a result per branch but one",
            request: json!({
                "definition": json!({"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
                    {"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": true}}}
                ]}).to_string(),
                "mock": {"result": "[1]"}
            }),
            expect: Expect::Error(
                "ValidationException",
                "Mocked result must contain the same number of items as number of Parallel branches.",
            ),
        },
        Row {
            name: "a Parallel mock with one result too many",
            request: json!({
                "definition": json!({"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
                ]}).to_string(),
                "mock": {"result": "[1, 2]"}
            }),
            expect: Expect::Error(
                "ValidationException",
                "Mocked result must contain the same number of items as number of Parallel branches.",
            ),
        },
        Row {
            name: "a Parallel mock that is no array",
            request: json!({
                "definition": json!({"Type": "Parallel", "End": true, "Branches": [
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
                ]}).to_string(),
                "mock": {"result": "{\"a\": 1}"}
            }),
            expect: Expect::Error("ValidationException", "Mocked result must be an array."),
        },
        Row {
            name: "more failed Map iterations than mocked items",
            request: json!({
                "definition": map.to_string(), "input": json!({"items": [1, 2, 3]}).to_string(),
                "mock": {"result": "[1, 2, 3]"},
                "stateConfiguration": {"mapIterationFailureCount": 4}
            }),
            expect: Expect::Error(
                "ValidationException",
                "The mapIterationFailureCount must not exceed the number of items in the mocked result.",
            ),
        },
        Row {
            name: "a Parallel mock at TRACE: the result and its paths",
            request: json!({
                "definition": json!({"Type": "Parallel", "ResultPath": "$.r", "End": true,
                    "ResultSelector": {"first.$": "$[0]"},
                    "Branches": [
                        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
                        {"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": true}}}
                    ]}).to_string(),
                "input": json!({"k": 1}).to_string(),
                "inspectionLevel": "TRACE",
                "mock": {"result": "[\"a\", \"b\"]"}
            }),
            expect: Expect::Answer(json!({
                "status": "SUCCEEDED",
                "output": {"k": 1, "r": {"first": "a"}},
                "inspectionData": {
                    "input": {"k": 1},
                    "afterResultSelector": {"first": "a"},
                    "afterResultPath": {"k": 1, "r": {"first": "a"}}
                }
            })),
        },
        Row {
            name: "a Map's thresholds at DEBUG: a percentage, and no count",
            request: json!({
                "definition": json!({
                    "Type": "Map", "QueryLanguage": "JSONata", "Items": "{% $states.input.v %}",
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                        "StartAt": "I", "States": {"I": {"Type": "Pass", "End": true}}
                    },
                    "MaxConcurrency": "{% 2 + 1 %}",
                    "ToleratedFailurePercentage": 50,
                    "End": true
                }).to_string(),
                "input": json!({"v": [1, 2]}).to_string(),
                "inspectionLevel": "DEBUG",
                "mock": {"result": "[1, 2]"},
                "stateConfiguration": {"mapIterationFailureCount": 1}
            }),
            expect: Expect::Answer(json!({
                "status": "SUCCEEDED",
                "output": [1, 2],
                "inspectionData": {
                    "input": {"v": [1, 2]},
                    "maxConcurrency": 3,
                    "toleratedFailurePercentage": 50.0
                }
            })),
        },
        Row {
            name: "a Map's thresholds at INFO: no inspection data",
            request: json!({
                "definition": map.to_string(), "input": json!({"items": [1, 2, 3]}).to_string(),
                "inspectionLevel": "INFO", "mock": {"result": "[1, 2, 3]"},
                "stateConfiguration": {"mapIterationFailureCount": 1}
            }),
            expect: Expect::Answer(json!({"status": "SUCCEEDED", "output": [1, 2, 3]})),
        },
        Row {
            name: "mapIterationFailureCount without a mock",
            request: json!({
                "definition": json!({"Type": "Map", "End": true, "ItemProcessor":
                    {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}
                }).to_string(),
                "stateConfiguration": {"mapIterationFailureCount": 0}
            }),
            expect: Expect::Error(
                "ValidationException",
                "TestState does not support MapIterationFailureCount when a mock is not specified.",
            ),
        },
        Row {
            name: "an unmocked Task without a role",
            request: json!({"definition": retried.to_string()}),
            expect: Expect::Error(
                "ValidationException",
                "RoleArn must be specified when testing a Task state",
            ),
        },
        Row {
            name: "a stateName the definition does not have",
            request: json!({"definition": machine.to_string(), "stateName": "Nope"}),
            expect: Expect::Error("ValidationException", "State not found in definition"),
        },
        Row {
            name: "an invalid state",
            request: json!({"definition": json!({"Type": "Nope"}).to_string()}),
            expect: Expect::Error(
                "InvalidDefinition",
                "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The field 'Type' should have one of these values: [Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map] at /States/StateName/Type'",
            ),
        },
    ]
}

/// The answer with its JSON-text members parsed, for comparison.
fn parsed(mut answer: Value) -> Value {
    let parse = |v: &mut Value| {
        if let Some(text) = v.as_str() {
            if let Ok(parsed) = serde_json::from_str::<Value>(text) {
                *v = parsed;
            }
        }
    };
    if let Some(output) = answer.get_mut("output") {
        parse(output);
    }
    if let Some(Value::Object(data)) = answer.get_mut("inspectionData") {
        for (key, v) in data.iter_mut() {
            if !matches!(key.as_str(), "errorDetails" | "request" | "response") {
                parse(v);
            }
        }
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_state_answers_as_aws() {
    let server = Server::start(Options {
        store: StoreKind::Memory,
        ..Options::default()
    });
    let raw = server.raw();
    let mut failures = Vec::new();
    for row in rows() {
        let r = raw.call("TestState", &row.request).await;
        match &row.expect {
            Expect::Answer(expected) => {
                let got = if r.status == 200 {
                    parsed(r.json())
                } else {
                    json!(r.text)
                };
                if &got != expected {
                    failures.push(format!(
                        "{}:\n  expected {expected}\n  got      {got}",
                        row.name
                    ));
                }
            }
            Expect::Error(code, message) => {
                let got = (r.status, r.error_code(), r.message());
                let want = (400, Some((*code).to_owned()), Some((*message).to_owned()));
                if got != want {
                    failures.push(format!(
                        "{}:\n  expected {want:?}\n  got      {got:?}",
                        row.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Payloads are JSON text as AWS writes it (`", "`, `": "`), so a mocked result that goes
/// through unchanged reads as it was sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_state_payload_text() {
    let server = Server::start(Options {
        store: StoreKind::Memory,
        ..Options::default()
    });
    let parallel = json!({"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        {"StartAt": "Q", "States": {"Q": {"Type": "Pass", "End": true}}}
    ]});
    let answer = server
        .raw()
        .ok(
            "TestState",
            &json!({
                "definition": parallel.to_string(),
                "mock": {"result": "[{\"a\": 1}, [true, null]]"}
            }),
        )
        .await;
    assert_eq!(answer["output"], json!("[{\"a\": 1}, [true, null]]"));
}

/// Without a mock, a Task is performed: here through the Lambda integration, against a
/// function in this process that echoes its payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_state_performs_a_real_task() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the Lambda fixture");
    let url = format!("http://{}", listener.local_addr().expect("fixture address"));
    let app = axum::Router::new().fallback(|req: Request<Body>| async move {
        let body = to_bytes(req.into_body(), 1 << 20).await.unwrap_or_default();
        ([("content-type", "application/json")], body)
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let server = Server::start_with_args(
        Options {
            store: StoreKind::Memory,
            ..Options::default()
        },
        &["--lambda-endpoint", &url],
    );
    let raw: Raw = server.raw();
    let definition = json!({
        "Type": "Task", "Resource": TASK,
        "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
        "ResultSelector": {"echoed.$": "$.Payload"},
        "TimeoutSeconds": 10,
        "End": true
    });
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        raw.ok(
            "TestState",
            &json!({
                "definition": definition.to_string(),
                "input": json!({"hello": "world"}).to_string(),
                "roleArn": "arn:aws:iam::123456789012:role/test",
                "inspectionLevel": "DEBUG"
            }),
        ),
    )
    .await
    .expect("TestState answered in time");
    let answer = parsed(answer);
    assert_eq!(answer["status"], "SUCCEEDED", "{answer}");
    assert_eq!(
        answer["output"],
        json!({"echoed": {"hello": "world"}}),
        "{answer}"
    );
    assert_eq!(
        answer["inspectionData"]["afterParameters"],
        json!({"FunctionName": "echo", "Payload": {"hello": "world"}})
    );
    assert_eq!(
        answer["inspectionData"]["result"]["StatusCode"], 200,
        "{answer}"
    );
}
