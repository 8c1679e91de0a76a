//! Mocked integrations (Step Functions Local MockConfigFile) through the real binary: a
//! `stepwise serve --mock-config FILE` child process driven with aws-sdk-sfn.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sfn::error::DisplayErrorContext;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use common::{
    assert_history_well_formed, create_activity, create_machine, event_types, history, parse_json,
    start, wait_done, Options, Server,
};
use serde_json::{json, Value};

const DONE_WITHIN: Duration = Duration::from_secs(15);
const LAMBDA_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:hello";

/// The mock configuration every test here runs with.
fn mock_config() -> Value {
    json!({
        "StateMachines": {
            "LambdaArn": {
                "TestCases": {
                    "Happy": { "Call": "Greeting" },
                    "Throttled": { "Call": "ThrottledTwice" },
                    "Custom": { "Call": "CustomError" },
                    "Uncovered": { "Call": "ThrottledOnce" }
                }
            },
            "Hybrid": {
                "TestCases": {
                    "Mixed": { "Invoke": "InvokeOk", "Callback": "CallbackOk" },
                    "CallbackFails": { "Invoke": "InvokeOk", "Callback": "CallbackRejected" }
                }
            },
            "ActivityOnly": {
                "TestCases": { "Mocked": { "Work": "Worked" } }
            },
            "Loop": {
                "TestCases": { "TwoRounds": { "Poll": "NotYetThenDone" } }
            },
            "Fanned": {
                "TestCases": { "Children": { "Work": "Worked" } }
            }
        },
        "MockedResponses": {
            "Greeting": { "0": { "Return": { "greeting": "hello from the mock" } } },
            "ThrottledTwice": {
                "0": { "Throw": { "Error": "Lambda.TooManyRequestsException", "Cause": "first" } },
                "1": { "Throw": { "Error": "Lambda.TooManyRequestsException", "Cause": "second" } },
                "2": { "Return": { "attempt": "third" } }
            },
            "ThrottledOnce": {
                "0": { "Throw": { "Error": "Lambda.TooManyRequestsException", "Cause": "only" } }
            },
            "CustomError": {
                "0-9": { "Throw": { "Error": "Custom.Error", "Cause": "mocked failure" } }
            },
            "InvokeOk": {
                "0": { "Return": { "StatusCode": 200, "Payload": { "n": 1 } } }
            },
            "CallbackOk": { "0": { "Return": { "callback": "done" } } },
            "CallbackRejected": {
                "0": { "Throw": { "Error": "Callback.Rejected", "Cause": "no" } }
            },
            "Worked": { "0": { "Return": { "mocked": true } } },
            "NotYetThenDone": {
                "0": { "Return": { "done": false } },
                "1": { "Return": { "done": true } }
            }
        }
    })
}

/// A legacy Lambda ARN task with a Retry on throttling and a Catch on `Custom.Error`.
fn lambda_arn_machine() -> Value {
    json!({
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": LAMBDA_ARN,
                "Retry": [{
                    "ErrorEquals": ["Lambda.TooManyRequestsException"],
                    "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 1.0
                }],
                "Catch": [{ "ErrorEquals": ["Custom.Error"], "ResultPath": "$.error", "Next": "Caught" }],
                "End": true
            },
            "Caught": { "Type": "Pass", "End": true }
        }
    })
}

/// `lambda:invoke` (mocked) → an activity (not mocked) → `lambda:invoke.waitForTaskToken`.
fn hybrid_machine(activity_arn: &str) -> Value {
    json!({
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": { "FunctionName": LAMBDA_ARN, "Payload.$": "$" },
                "OutputPath": "$.Payload",
                "Next": "Work"
            },
            "Work": { "Type": "Task", "Resource": activity_arn, "Next": "Callback" },
            "Callback": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": LAMBDA_ARN,
                    "Payload": { "token.$": "$$.Task.Token" }
                },
                "End": true
            }
        }
    })
}

fn activity_machine(activity_arn: &str) -> Value {
    json!({
        "StartAt": "Work",
        "States": { "Work": { "Type": "Task", "Resource": activity_arn, "End": true } }
    })
}

/// `Poll` until it answers `done`: the second entry into the state is invocation 1.
fn loop_machine() -> Value {
    json!({
        "StartAt": "Poll",
        "States": {
            "Poll": { "Type": "Task", "Resource": LAMBDA_ARN, "Next": "Done?" },
            "Done?": {
                "Type": "Choice",
                "Choices": [{ "Variable": "$.done", "BooleanEquals": true, "Next": "Finished" }],
                "Default": "Poll"
            },
            "Finished": { "Type": "Succeed" }
        }
    })
}

/// A Distributed Map whose children call the Lambda function in `Work`.
fn distributed_machine() -> Value {
    json!({
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemProcessor": {
                    "ProcessorConfig": { "Mode": "DISTRIBUTED", "ExecutionType": "STANDARD" },
                    "StartAt": "Work",
                    "States": { "Work": { "Type": "Task", "Resource": LAMBDA_ARN, "End": true } }
                },
                "End": true
            }
        }
    })
}

/// The mock configuration file, kept alive with its directory.
pub(crate) struct MockFile {
    _dir: tempfile::TempDir,
    pub(crate) path: String,
}

pub(crate) fn write_config(config: &Value) -> MockFile {
    let dir = tempfile::Builder::new()
        .prefix("stepwise-mock-")
        .tempdir()
        .expect("creating a temporary directory for the mock configuration");
    let path = dir.path().join("MockConfigFile.json");
    std::fs::write(&path, config.to_string()).expect("writing the mock configuration");
    MockFile {
        path: path.to_string_lossy().into_owned(),
        _dir: dir,
    }
}

fn mocked_server(file: &MockFile) -> Server {
    Server::start_with_args(
        Options {
            wait_time_scale: 0.1,
            ..Options::default()
        },
        &["--mock-config", &file.path],
    )
}

fn output_of(e: &HistoryEvent) -> Option<Value> {
    let text = e
        .task_succeeded_event_details()
        .and_then(|d| d.output())
        .or_else(|| {
            e.lambda_function_succeeded_event_details()
                .and_then(|d| d.output())
        })
        .or_else(|| {
            e.activity_succeeded_event_details()
                .and_then(|d| d.output())
        })
        .or_else(|| e.task_submitted_event_details().and_then(|d| d.output()))?;
    Some(parse_json("event output", Some(text)))
}

fn failure_of(e: &HistoryEvent) -> Option<(String, String)> {
    let pair = |error: Option<&str>, cause: Option<&str>| {
        (
            error.unwrap_or_default().to_owned(),
            cause.unwrap_or_default().to_owned(),
        )
    };
    if let Some(d) = e.task_failed_event_details() {
        return Some(pair(d.error(), d.cause()));
    }
    if let Some(d) = e.lambda_function_failed_event_details() {
        return Some(pair(d.error(), d.cause()));
    }
    e.execution_failed_event_details()
        .map(|d| pair(d.error(), d.cause()))
}

/// The events of the given types, in order.
fn of_types<'a>(events: &'a [HistoryEvent], types: &[&str]) -> Vec<&'a HistoryEvent> {
    events
        .iter()
        .filter(|e| types.contains(&e.r#type().as_str()))
        .collect()
}

/// How a Lambda ARN case must end.
enum Expect {
    Succeeded(Value),
    Failed {
        error: &'static str,
        cause: &'static [&'static str],
    },
}

struct LambdaCase {
    name: &'static str,
    /// The `#TestCase` suffix (`None`: no test case).
    test_case: &'static str,
    /// The `LambdaFunction*` events of the `Call` state, in order.
    lambda_events: &'static [&'static str],
    /// Error and cause of each `LambdaFunctionFailed`, in order.
    failures: &'static [(&'static str, &'static str)],
    expect: Expect,
}

fn lambda_cases() -> Vec<LambdaCase> {
    vec![
        LambdaCase {
            name: "a mocked Return is the task result",
            test_case: "Happy",
            lambda_events: &[
                "LambdaFunctionScheduled",
                "LambdaFunctionStarted",
                "LambdaFunctionSucceeded",
            ],
            failures: &[],
            expect: Expect::Succeeded(json!({ "greeting": "hello from the mock" })),
        },
        LambdaCase {
            name: "retries count as invocations: Throw, Throw, Return",
            test_case: "Throttled",
            lambda_events: &[
                "LambdaFunctionScheduled",
                "LambdaFunctionStarted",
                "LambdaFunctionFailed",
                "LambdaFunctionScheduled",
                "LambdaFunctionStarted",
                "LambdaFunctionFailed",
                "LambdaFunctionScheduled",
                "LambdaFunctionStarted",
                "LambdaFunctionSucceeded",
            ],
            failures: &[
                ("Lambda.TooManyRequestsException", "first"),
                ("Lambda.TooManyRequestsException", "second"),
            ],
            expect: Expect::Succeeded(json!({ "attempt": "third" })),
        },
        LambdaCase {
            name: "a mocked Throw is caught",
            test_case: "Custom",
            lambda_events: &[
                "LambdaFunctionScheduled",
                "LambdaFunctionStarted",
                "LambdaFunctionFailed",
            ],
            failures: &[("Custom.Error", "mocked failure")],
            expect: Expect::Succeeded(json!({
                "in": 1,
                "error": { "Error": "Custom.Error", "Cause": "mocked failure" }
            })),
        },
        LambdaCase {
            name: "an invocation the mocked response does not cover fails the execution",
            test_case: "Uncovered",
            lambda_events: &[
                "LambdaFunctionScheduled",
                "LambdaFunctionStarted",
                "LambdaFunctionFailed",
                "LambdaFunctionScheduled",
                "LambdaFunctionStarted",
                "LambdaFunctionFailed",
            ],
            failures: &[
                ("Lambda.TooManyRequestsException", "only"),
                ("States.Runtime", "invocation 1"),
            ],
            expect: Expect::Failed {
                error: "States.Runtime",
                cause: &["'ThrottledOnce'", "'Uncovered'", "invocation 1", "'Call'"],
            },
        },
        LambdaCase {
            name: "a test case the configuration lacks fails the execution",
            test_case: "NoSuchCase",
            lambda_events: &[
                "LambdaFunctionScheduled",
                "LambdaFunctionStarted",
                "LambdaFunctionFailed",
            ],
            failures: &[("States.Runtime", "no test case 'NoSuchCase'")],
            expect: Expect::Failed {
                error: "States.Runtime",
                cause: &["no test case 'NoSuchCase'", "'LambdaArn'"],
            },
        },
    ]
}

#[tokio::test]
async fn lambda_arn_cases() {
    let file = write_config(&mock_config());
    let server = mocked_server(&file);
    let client = server.client();
    let sm = create_machine(&client, "LambdaArn", &lambda_arn_machine()).await;
    let mut failures = Vec::new();
    for case in lambda_cases() {
        let arn = format!("{sm}#{}", case.test_case);
        let exec = start(&client, &arn, None, &json!({ "in": 1 })).await;
        let d = wait_done(&client, &exec, DONE_WITHIN).await;
        let events = history(&client, &exec).await;
        assert_history_well_formed(case.name, &events);
        let lambda: Vec<&HistoryEvent> = events
            .iter()
            .filter(|e| e.r#type().as_str().starts_with("LambdaFunction"))
            .collect();
        let types: Vec<&str> = lambda.iter().map(|e| e.r#type().as_str()).collect();
        if types != case.lambda_events {
            failures.push(format!(
                "{}: Lambda events {types:?}, expected {:?}",
                case.name, case.lambda_events
            ));
        }
        let failed: Vec<(String, String)> = lambda.iter().filter_map(|e| failure_of(e)).collect();
        let matches = failed.len() == case.failures.len()
            && failed
                .iter()
                .zip(case.failures)
                .all(|((e, c), (we, wc))| e == we && c.contains(wc));
        if !matches {
            failures.push(format!(
                "{}: failures {failed:?}, expected {:?}",
                case.name, case.failures
            ));
        }
        match &case.expect {
            Expect::Succeeded(want) => {
                let output = d.output().map(|o| parse_json("output", Some(o)));
                if *d.status() != ExecutionStatus::Succeeded || output.as_ref() != Some(want) {
                    failures.push(format!(
                        "{}: {:?} with output {output:?}, expected SUCCEEDED with {want} (error {:?}, cause {:?})",
                        case.name,
                        d.status(),
                        d.error(),
                        d.cause()
                    ));
                }
                // The mocked Return is the Lambda's result, recorded as is.
                if let Some(last) = lambda
                    .last()
                    .filter(|e| e.r#type().as_str() == "LambdaFunctionSucceeded")
                {
                    let recorded = output_of(last);
                    let mocked = match case.test_case {
                        "Happy" => json!({ "greeting": "hello from the mock" }),
                        _ => json!({ "attempt": "third" }),
                    };
                    if recorded.as_ref() != Some(&mocked) {
                        failures.push(format!(
                            "{}: LambdaFunctionSucceeded output {recorded:?}, expected {mocked}",
                            case.name
                        ));
                    }
                }
            }
            Expect::Failed { error, cause } => {
                let got_cause = d.cause().unwrap_or_default();
                if *d.status() != ExecutionStatus::Failed
                    || d.error() != Some(*error)
                    || !cause.iter().all(|c| got_cause.contains(c))
                {
                    failures.push(format!(
                        "{}: {:?} error {:?} cause {got_cause:?}; expected FAILED {error} with {cause:?}",
                        case.name,
                        d.status(),
                        d.error()
                    ));
                }
                let last = events.last().and_then(failure_of);
                if last.as_ref().map(|(e, _)| e.as_str()) != Some(*error) {
                    failures.push(format!(
                        "{}: last event {:?}, expected ExecutionFailed {error}",
                        case.name,
                        event_types(&events).last()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        server.logs()
    );
}

/// Polls GetActivityTask until a task arrives; returns (token, input).
async fn take_activity_task(client: &aws_sdk_sfn::Client, activity: &str) -> (String, Value) {
    let until = Instant::now() + DONE_WITHIN;
    loop {
        let task = client
            .get_activity_task()
            .activity_arn(activity)
            .worker_name("mock-test-worker")
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetActivityTask: {}", DisplayErrorContext(&e)));
        if let Some(token) = task.task_token().filter(|t| !t.is_empty()) {
            return (token.to_owned(), parse_json("activity input", task.input()));
        }
        assert!(
            Instant::now() < until,
            "no activity task on {activity} within {DONE_WITHIN:?}"
        );
    }
}

async fn send_success(client: &aws_sdk_sfn::Client, token: &str, output: &Value) {
    client
        .send_task_success()
        .task_token(token)
        .output(output.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("SendTaskSuccess: {}", DisplayErrorContext(&e)));
}

/// A mocked `lambda:invoke`, an unmocked activity the test works, and a mocked
/// `.waitForTaskToken` whose Return is the callback's result.
#[tokio::test]
async fn unmocked_states_fall_through_and_wait_for_task_token_is_mocked() {
    let file = write_config(&mock_config());
    let server = mocked_server(&file);
    let client = server.client();
    let activity = create_activity(&client, "hybrid-work").await;
    let sm = create_machine(&client, "Hybrid", &hybrid_machine(&activity)).await;

    let exec = start(&client, &format!("{sm}#Mixed"), None, &json!({ "x": 1 })).await;
    let (token, input) = take_activity_task(&client, &activity).await;
    // The mocked lambda:invoke Return went through OutputPath `$.Payload`.
    assert_eq!(input, json!({ "n": 1 }));
    send_success(&client, &token, &json!({ "worked": true })).await;
    let d = wait_done(&client, &exec, DONE_WITHIN).await;
    let events = history(&client, &exec).await;
    assert_history_well_formed("Mixed", &events);
    assert_eq!(
        *d.status(),
        ExecutionStatus::Succeeded,
        "{:?} {:?}\n{:?}\n{}",
        d.error(),
        d.cause(),
        event_types(&events),
        server.logs()
    );
    assert_eq!(
        parse_json("output", d.output()),
        json!({ "callback": "done" })
    );
    let types = event_types(&events);
    let task_events: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| t.starts_with("Task") && !t.starts_with("TaskState"))
        .collect();
    assert_eq!(
        task_events,
        [
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded",
        ],
        "{types:?}"
    );
    let activity_events: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| t.starts_with("Activity"))
        .collect();
    assert_eq!(
        activity_events,
        ["ActivityScheduled", "ActivityStarted", "ActivitySucceeded"]
    );
    let succeeded = of_types(&events, &["TaskSucceeded", "TaskSubmitted"]);
    assert_eq!(
        output_of(succeeded[0]),
        Some(json!({ "StatusCode": 200, "Payload": { "n": 1 } })),
        "the mocked lambda:invoke Return is the task result as is"
    );
    assert_eq!(output_of(succeeded[1]), Some(json!({ "callback": "done" })));
    assert_eq!(output_of(succeeded[2]), Some(json!({ "callback": "done" })));
    let activity_done = of_types(&events, &["ActivitySucceeded"]);
    assert_eq!(output_of(activity_done[0]), Some(json!({ "worked": true })));

    // A mocked Throw on a `.waitForTaskToken` task fails it without waiting.
    let exec = start(&client, &format!("{sm}#CallbackFails"), None, &json!({})).await;
    let (token, _) = take_activity_task(&client, &activity).await;
    send_success(&client, &token, &json!({})).await;
    let d = wait_done(&client, &exec, DONE_WITHIN).await;
    assert_eq!(*d.status(), ExecutionStatus::Failed);
    assert_eq!(d.error(), Some("Callback.Rejected"));
    assert_eq!(d.cause(), Some("no"));
    let events = history(&client, &exec).await;
    assert_history_well_formed("CallbackFails", &events);
    let types = event_types(&events);
    assert!(
        types.ends_with(&[
            "TaskScheduled".to_owned(),
            "TaskStarted".to_owned(),
            "TaskFailed".to_owned(),
            "ExecutionFailed".to_owned()
        ]),
        "{types:?}"
    );
}

/// The same machine runs mocked with `#Mocked` and for real without a test case.
#[tokio::test]
async fn without_a_test_case_the_machine_runs_unmocked() {
    let file = write_config(&mock_config());
    let server = mocked_server(&file);
    let client = server.client();
    let activity = create_activity(&client, "only-work").await;
    let sm = create_machine(&client, "ActivityOnly", &activity_machine(&activity)).await;

    let mocked = start(&client, &format!("{sm}#Mocked"), None, &json!({})).await;
    let d = wait_done(&client, &mocked, DONE_WITHIN).await;
    assert_eq!(*d.status(), ExecutionStatus::Succeeded, "{:?}", d.cause());
    assert_eq!(parse_json("output", d.output()), json!({ "mocked": true }));
    let events = history(&client, &mocked).await;
    assert_history_well_formed("mocked activity", &events);
    let types = event_types(&events);
    assert_eq!(
        types
            .iter()
            .filter(|t| t.starts_with("Activity"))
            .collect::<Vec<_>>(),
        ["ActivityScheduled", "ActivityStarted", "ActivitySucceeded"]
    );
    // The execution's ARN names the machine, not the test case.
    assert!(!mocked.contains('#'), "{mocked}");

    let real = start(&client, &sm, None, &json!({ "real": 1 })).await;
    let (token, input) = take_activity_task(&client, &activity).await;
    assert_eq!(input, json!({ "real": 1 }));
    send_success(&client, &token, &json!({ "from": "worker" })).await;
    let d = wait_done(&client, &real, DONE_WITHIN).await;
    assert_eq!(*d.status(), ExecutionStatus::Succeeded, "{:?}", d.cause());
    assert_eq!(
        parse_json("output", d.output()),
        json!({ "from": "worker" })
    );
}

/// Entering a mocked state again takes the next invocation number.
#[tokio::test]
async fn a_state_entered_again_takes_the_next_invocation() {
    let file = write_config(&mock_config());
    let server = mocked_server(&file);
    let client = server.client();
    let sm = create_machine(&client, "Loop", &loop_machine()).await;
    let exec = start(&client, &format!("{sm}#TwoRounds"), None, &json!({})).await;
    let d = wait_done(&client, &exec, DONE_WITHIN).await;
    assert_eq!(*d.status(), ExecutionStatus::Succeeded, "{:?}", d.cause());
    assert_eq!(parse_json("output", d.output()), json!({ "done": true }));
    let events = history(&client, &exec).await;
    let outputs: Vec<Option<Value>> = of_types(&events, &["LambdaFunctionSucceeded"])
        .into_iter()
        .map(output_of)
        .collect();
    assert_eq!(
        outputs,
        [
            Some(json!({ "done": false })),
            Some(json!({ "done": true }))
        ]
    );
}

/// Runs `stepwise serve` with a mock configuration that must be refused; returns its stderr.
fn refused_start(config_path: &Path) -> String {
    let port = common::free_port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--store",
            "memory",
        ])
        .arg("--mock-config")
        .arg(config_path)
        .env_remove("SFN_MOCK_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("running `stepwise serve`");
    assert!(
        !output.status.success(),
        "a server with the mock configuration {} started",
        config_path.display()
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_malformed_mock_configuration_stops_the_start() {
    for (config, needle) in [
        (
            json!({ "MockedResponses": { "R": { "one": { "Return": 1 } } } }),
            "MockedResponses.R.one",
        ),
        (
            json!({
                "StateMachines": { "M": { "TestCases": { "T": { "S": "Missing" } } } },
                "MockedResponses": {}
            }),
            "'Missing'",
        ),
        (
            json!({ "MockedResponses": { "R": { "0": { "Throw": { "Cause": "c" } } } } }),
            "Throw.Error",
        ),
    ] {
        let file = write_config(&config);
        let stderr = refused_start(Path::new(&file.path));
        assert!(
            stderr.contains("invalid mock configuration") && stderr.contains(needle),
            "{config}: stderr does not name {needle:?}:\n{stderr}"
        );
    }
}

#[tokio::test]
async fn distributed_map_children_run_the_parents_test_case() {
    let file = write_config(&mock_config());
    let server = mocked_server(&file);
    let client = server.client();
    let sm = create_machine(&client, "Fanned", &distributed_machine()).await;
    let exec = start(&client, &format!("{sm}#Children"), None, &json!([1, 2, 3])).await;
    let done = wait_done(&client, &exec, DONE_WITHIN).await;
    assert_eq!(
        done.status(),
        &ExecutionStatus::Succeeded,
        "{:?} {:?}\n{}",
        done.error(),
        done.cause(),
        server.logs()
    );
    assert_eq!(
        parse_json("output", done.output()),
        json!([{ "mocked": true }, { "mocked": true }, { "mocked": true }])
    );
}

/// `stepwise run FILE --mock-config CONFIG ARGS…`: whether it succeeded, and its stdout and
/// stderr.
fn local_run(definition: &Value, config: &MockFile, args: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("a temporary directory for the definition");
    let path = dir.path().join("definition.json");
    std::fs::write(&path, definition.to_string()).expect("writing the definition");
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .arg("run")
        .arg(&path)
        .args(["--mock-config", &config.path, "--wait-time-scale", "0.01"])
        .args(args)
        .env_remove("SFN_MOCK_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("running `stepwise run`");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn stepwise_run_takes_a_test_case() {
    let file = write_config(&mock_config());
    // (test case and flags, whether the run succeeds, a line its stdout or stderr must hold)
    let cases: [(&[&str], bool, &str); 5] = [
        (
            &["--test-case", "Happy"],
            true,
            r#"output: {"greeting":"hello from the mock"}"#,
        ),
        (
            &["--test-case", "Throttled"],
            true,
            r#"output: {"attempt":"third"}"#,
        ),
        (
            &["--test-case", "Custom"],
            true,
            r#""Error":"Custom.Error""#,
        ),
        (
            &["--test-case", "Custom", "--name", "Hybrid"],
            false,
            "The mock configuration has no test case 'Custom' for the state machine 'Hybrid'.",
        ),
        (
            &["--test-case", "Nowhere"],
            false,
            "the mock configuration has no state machine with the test case 'Nowhere'",
        ),
    ];
    for (args, succeeds, needle) in cases {
        let (ok, stdout, stderr) = local_run(&lambda_arn_machine(), &file, args);
        assert_eq!(ok, succeeds, "{args:?}\nstdout: {stdout}\nstderr: {stderr}");
        assert!(
            stdout.contains(needle) || stderr.contains(needle),
            "{args:?}: {needle:?} not found\nstdout: {stdout}\nstderr: {stderr}"
        );
    }
}
