//! Redrive beyond AWS (issue #20, docs/redrive-extensions.md): the `Stepwise.*` extension
//! operations over raw JSON 1.0, the `stepwise redrive` subcommands, and the histories they
//! leave read back through aws-sdk-sfn, boto3 and the AWS CLI
//! (`tests/python/test_redrive_extensions.py`).

use crate::common;
use crate::redrive::assert_redriven_history;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use common::{create_machine, history, start, wait_done, Options, RawResponse, Server, StoreKind};
use serde_json::{json, Value};

const DONE_WITHIN: Duration = Duration::from_secs(30);
const SUCCEEDED_REASON: &str = "Execution is SUCCEEDED and cannot be redriven";
const HISTORY_REASON: &str = "Execution history event limit exceeded";

fn server(args: &[&str]) -> Server {
    Server::start_with_args(
        Options {
            store: StoreKind::Sqlite,
            wait_time_scale: 0.1,
            ..Options::default()
        },
        args,
    )
}

/// Calls `Stepwise.<op>`.
async fn ext(server: &Server, op: &str, body: &Value) -> RawResponse {
    server
        .raw()
        .send(Some(&format!("Stepwise.{op}")), body.to_string(), &[])
        .await
}

/// Calls `Stepwise.<op>` and expects HTTP 200.
async fn ext_ok(server: &Server, op: &str, body: &Value) -> Value {
    let r = ext(server, op, body).await;
    assert_eq!(
        r.status, 200,
        "{op} {body} answered {} {}",
        r.status, r.text
    );
    r.json()
}

/// The execution name at the end of an ARN.
fn name(arn: &str) -> String {
    arn.rsplit(':').next().unwrap_or_default().to_owned()
}

/// Fails with the input's `error` and `cause`, succeeds on `succeed`, waits on `wait`.
fn fails_by_input() -> Value {
    json!({
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.succeed", "IsPresent": true, "Next": "Done"},
                    {"Variable": "$.wait", "IsPresent": true, "Next": "Hold"}
                ],
                "Default": "Broken"
            },
            "Done": {"Type": "Succeed"},
            "Hold": {"Type": "Wait", "Seconds": 3600, "Next": "Broken"},
            "Broken": {"Type": "Fail", "ErrorPath": "$.error", "CausePath": "$.cause"}
        }
    })
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// The dry run's executions by name: (redrivable, reason, reruns).
fn by_name(dry: &Value) -> BTreeMap<String, (bool, Option<String>, Vec<String>)> {
    let items = dry["executions"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .map(|e| {
            let reruns = e["reruns"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|p| p.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            (
                name(e["executionArn"].as_str().unwrap_or_default()),
                (
                    e["redrivable"] == json!(true),
                    e["notRedrivableReason"].as_str().map(String::from),
                    reruns,
                ),
            )
        })
        .collect()
}

/// Every selection criterion, alone and combined, over executions that differ in each; the
/// dry run lists exactly the matching ones, and for each what would run again or why not.
#[tokio::test(flavor = "multi_thread")]
async fn dry_run_selects_by_each_criterion() {
    let server = server(&[]);
    let client = server.client();
    let sm = create_machine(&client, "bulk-select", &fails_by_input()).await;
    let nope = json!({"error": "Nope", "cause": "disk full on host-1"});
    let other = json!({"error": "Other", "cause": "timeout talking to db"});
    for n in ["a1", "a2", "a3"] {
        let arn = start(&client, &sm, Some(n), &nope).await;
        wait_done(&client, &arn, DONE_WITHIN).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let middle = now_secs();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for n in ["b1", "b2"] {
        let arn = start(&client, &sm, Some(n), &other).await;
        wait_done(&client, &arn, DONE_WITHIN).await;
    }
    let again = start(&client, &sm, Some("again"), &nope).await;
    wait_done(&client, &again, DONE_WITHIN).await;
    client
        .redrive_execution()
        .execution_arn(&again)
        .send()
        .await
        .expect("redriving `again`");
    let d = wait_done(&client, &again, DONE_WITHIN).await;
    assert_eq!(d.redrive_count(), Some(1));
    let ok = start(&client, &sm, Some("ok1"), &json!({"succeed": true})).await;
    wait_done(&client, &ok, DONE_WITHIN).await;
    let held = start(&client, &sm, Some("stopped"), &json!({"wait": 1})).await;
    client
        .stop_execution()
        .execution_arn(&held)
        .send()
        .await
        .expect("stopping `stopped`");
    wait_done(&client, &held, DONE_WITHIN).await;

    let cases: Vec<(Value, &[&str])> = vec![
        (
            json!({}),
            &["a1", "a2", "a3", "b1", "b2", "again", "stopped"],
        ),
        (
            json!({"statusFilter": ["FAILED"]}),
            &["a1", "a2", "a3", "b1", "b2", "again"],
        ),
        (json!({"statusFilter": ["ABORTED"]}), &["stopped"]),
        (json!({"statusFilter": ["SUCCEEDED"]}), &["ok1"]),
        (
            json!({"statusFilter": ["ABORTED", "SUCCEEDED"]}),
            &["ok1", "stopped"],
        ),
        (json!({"errorName": "Nope"}), &["a1", "a2", "a3", "again"]),
        (json!({"causeContains": "db"}), &["b1", "b2"]),
        (json!({"causeContains": "host-2"}), &[]),
        (json!({"stoppedBefore": middle}), &["a1", "a2", "a3"]),
        (
            json!({"stoppedAfter": middle, "errorName": "Nope"}),
            &["again"],
        ),
        (json!({"minRedriveCount": 1}), &["again"]),
        (
            json!({"maxRedriveCount": 0, "errorName": "Nope"}),
            &["a1", "a2", "a3"],
        ),
    ];
    for (criteria, want) in cases {
        let mut body = criteria.clone();
        body["stateMachineArn"] = json!(sm);
        body["dryRun"] = json!(true);
        let dry = ext_ok(&server, "BulkRedrive", &body).await;
        let got = by_name(&dry);
        let names: BTreeSet<&str> = got.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = want.iter().copied().collect();
        assert_eq!(names, want, "selection {criteria}");
        assert_eq!(dry["selected"], json!(want.len()), "{criteria}");
        for (n, (redrivable, reason, reruns)) in &got {
            if n == "ok1" {
                assert!(!redrivable, "{n}");
                assert_eq!(reason.as_deref(), Some(SUCCEEDED_REASON));
            } else {
                assert!(redrivable, "{n}: {reason:?}");
                // Failed at the Fail state, stopped in the Wait: that state runs again,
                // the Choice before it does not.
                let at = if n == "stopped" { "Hold" } else { "Broken" };
                assert_eq!(reruns, &[at.to_owned()], "{n}");
            }
        }
    }

    let described = ext_ok(
        &server,
        "DescribeExecutionRedrives",
        &json!({"executionArn": again}),
    )
    .await;
    assert_eq!(described["redriveCount"], json!(1));
    assert_eq!(described["redrivable"], json!(true));
    assert_eq!(described["reruns"], json!(["Broken"]));
    assert!(described["redriveDate"].is_number(), "{described}");

    // The CLI says the same as the API.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["redrive", "--endpoint-url", &server.endpoint()])
        .args(["bulk", "--state-machine-arn", &sm, "--error-name", "Nope"])
        .arg("--dry-run")
        .output()
        .expect("running `stepwise redrive bulk`");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).expect("the CLI prints JSON");
    let names: BTreeSet<String> = by_name(&printed).into_keys().collect();
    assert_eq!(names, ["a1", "a2", "a3", "again"].map(String::from).into());
}

/// A Map run one iteration at a time, whose second iteration fails until it is redriven (it
/// reads `$$.Execution.RedriveTime`): the dry run names that iteration's failed state and the
/// third iteration (never started), not the first, which succeeded; the bulk redrive then
/// runs exactly those two iterations again.
#[tokio::test(flavor = "multi_thread")]
async fn dry_run_names_the_failed_lanes() {
    let server = server(&[]);
    let client = server.client();
    let definition = json!({
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "Iterator": {
                    "StartAt": "Check",
                    "States": {
                        "Check": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$", "NumericEquals": 1, "Next": "Ctx"}],
                            "Default": "Good"
                        },
                        "Good": {"Type": "Pass", "End": true},
                        "Ctx": {
                            "Type": "Pass",
                            "Parameters": {"time.$": "$$.Execution.RedriveTime"},
                            "End": true
                        }
                    }
                },
                "End": true
            }
        }
    });
    let sm = create_machine(&client, "bulk-map", &definition).await;
    let arn = start(&client, &sm, Some("m"), &json!({"items": [0, 1, 2]})).await;
    wait_done(&client, &arn, DONE_WITHIN).await;
    let dry = ext_ok(
        &server,
        "BulkRedrive",
        &json!({"stateMachineArn": sm, "dryRun": true}),
    )
    .await;
    let reruns = &dry["executions"][0]["reruns"];
    assert_eq!(reruns, &json!(["Fan/1/Ctx", "Fan/2"]), "{dry}");
    let described = ext_ok(
        &server,
        "DescribeExecutionRedrives",
        &json!({"executionArn": arn}),
    )
    .await;
    assert_eq!(&described["reruns"], reruns);

    let run = json!({"stateMachineArn": sm, "batchToken": "map-1"});
    ext_ok(&server, "BulkRedrive", &run).await;
    let until = Instant::now() + DONE_WITHIN;
    while ext_ok(
        &server,
        "DescribeBulkRedrive",
        &json!({"batchToken": "map-1"}),
    )
    .await["status"]
        != json!("COMPLETED")
    {
        assert!(Instant::now() < until, "the batch did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(d.status(), &ExecutionStatus::Succeeded);
    let events = history(&client, &arn).await;
    let redriven = events
        .iter()
        .position(|e| e.r#type().as_str() == "ExecutionRedriven")
        .expect("an ExecutionRedriven event");
    let ran: BTreeSet<i32> = events[redriven..]
        .iter()
        .filter_map(|e| {
            e.map_iteration_started_event_details()
                .or(e.map_iteration_succeeded_event_details())
                .map(|d| d.index())
        })
        .collect();
    assert_eq!(ran, [1, 2].into(), "the iterations that run again");
}

/// The extension API's refusals: AWS's error shapes, precise messages.
#[tokio::test(flavor = "multi_thread")]
async fn extension_errors_have_aws_shapes() {
    let server = server(&[]);
    let client = server.client();
    let sm = create_machine(&client, "bulk-errors", &fails_by_input()).await;
    let missing_sm = sm.replace("bulk-errors", "nobody");
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "BulkRedrive",
            json!({"stateMachineArn": sm}),
            400,
            "ValidationException",
            "'batchToken'",
        ),
        (
            "BulkRedrive",
            json!({"stateMachineArn": sm, "statusFilter": ["DONE"], "dryRun": true}),
            400,
            "ValidationException",
            "statusFilter",
        ),
        (
            "BulkRedrive",
            json!({"dryRun": true}),
            400,
            "ValidationException",
            "stateMachineArn",
        ),
        (
            "BulkRedrive",
            json!({"stateMachineArn": missing_sm, "dryRun": true}),
            400,
            "StateMachineDoesNotExist",
            "nobody",
        ),
        (
            "BulkRedrive",
            json!({"stateMachineArn": sm, "dryRun": "yes"}),
            400,
            "SerializationException",
            "",
        ),
        (
            "DescribeBulkRedrive",
            json!({"batchToken": "never-used"}),
            404,
            "ResourceNotFound",
            "never-used",
        ),
        (
            "DescribeExecutionRedrives",
            json!({"executionArn": format!("{}:nobody", sm.replace(":stateMachine:", ":execution:"))}),
            400,
            "ExecutionDoesNotExist",
            "nobody",
        ),
        (
            "RedriveEverything",
            json!({}),
            400,
            "UnknownOperationException",
            "Stepwise.RedriveEverything",
        ),
    ];
    for (op, body, status, code, fragment) in cases {
        let r = ext(&server, op, &body).await;
        assert_eq!(r.status, status, "{op} {body}: {}", r.text);
        assert_eq!(
            r.error_code().as_deref(),
            Some(code),
            "{op} {body}: {}",
            r.text
        );
        let message = r.message().unwrap_or_default();
        assert!(message.contains(fragment), "{op} {body}: {message}");
    }
}

/// The batch report, all pages.
async fn report(server: &Server, token: &str) -> (Value, Vec<Value>) {
    let mut executions = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut body = json!({"batchToken": token, "maxResults": 1000});
        if let Some(t) = &next {
            body["nextToken"] = json!(t);
        }
        let page = ext_ok(server, "DescribeBulkRedrive", &body).await;
        executions.extend(page["executions"].as_array().cloned().unwrap_or_default());
        match page["nextToken"].as_str() {
            Some(t) => next = Some(t.to_owned()),
            None => return (page, executions),
        }
    }
}

/// 1,000 failed executions (and 5 that cannot be redriven again) in one bulk redrive: the
/// dry run says what the real run then does, execution by execution; the server is killed
/// (-9) halfway and the batch resumes at the next start without redriving any execution
/// twice; repeating the request answers the same batch; the histories are valid AWS
/// histories for the SDK, boto3 and the AWS CLI.
#[tokio::test(flavor = "multi_thread")]
async fn bulk_redrive_of_1000_survives_kill9() {
    // A history cap of 8 leaves room for exactly one redrive of Prepare → Broken (5 events,
    // then 3 per redrive); a slow rate leaves time to kill the server halfway.
    let mut server = server(&["--max-history-events", "8", "--bulk-redrive-rate", "250"]);
    let client = server.client();
    let definition = json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Next": "Broken"},
            "Broken": {"Type": "Fail", "Error": "Nope", "Cause": "always fails"}
        }
    });
    let sm = create_machine(&client, "bulk-thousand", &definition).await;
    let mut starting = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, sm) = (client.clone(), sm.clone());
        starting.spawn(async move {
            let mut arns = Vec::new();
            for i in (worker..1005).step_by(8) {
                arns.push(start(&client, &sm, Some(&format!("e{i:04}")), &json!({})).await);
            }
            arns
        });
    }
    let mut arns = Vec::new();
    while let Some(done) = starting.join_next().await {
        arns.extend(done.expect("a starting task"));
    }
    arns.sort();
    for arn in &arns {
        wait_done(&client, arn, DONE_WITHIN).await;
    }
    // Five are redriven once already: no room left for another.
    for arn in &arns[..5] {
        client
            .redrive_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("redriving one of the first five");
        wait_done(&client, arn, DONE_WITHIN).await;
    }

    let selection = json!({"stateMachineArn": sm, "errorName": "Nope", "statusFilter": ["FAILED"]});
    let mut dry_body = selection.clone();
    dry_body["dryRun"] = json!(true);
    let dry = ext_ok(&server, "BulkRedrive", &dry_body).await;
    assert_eq!(dry["selected"], json!(1005));
    assert_eq!(dry["redrivable"], json!(1000));
    let planned = by_name(&dry);
    for arn in &arns[..5] {
        let (redrivable, reason, _) = &planned[&name(arn)];
        assert!(!redrivable);
        assert_eq!(reason.as_deref(), Some(HISTORY_REASON));
    }

    let mut run_body = selection.clone();
    run_body["batchToken"] = json!("incident-42");
    let began = ext_ok(&server, "BulkRedrive", &run_body).await;
    assert_eq!(began["total"], json!(1005));
    assert_eq!(began["status"], json!("RUNNING"));

    // Kill it halfway.
    let until = Instant::now() + DONE_WITHIN;
    let before_kill = loop {
        let (page, _) = report(&server, "incident-42").await;
        if page["redriven"].as_u64().unwrap_or(0) >= 200 {
            break page;
        }
        assert!(Instant::now() < until, "the batch did not progress: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server.kill9();
    assert!(
        before_kill["pending"].as_u64().unwrap_or(0) > 0,
        "the rate limit should leave work for after the kill: {before_kill}"
    );
    server.restart();
    let client = server.client();

    let until = Instant::now() + DONE_WITHIN;
    loop {
        let page = ext_ok(
            &server,
            "DescribeBulkRedrive",
            &json!({"batchToken": "incident-42", "maxResults": 1}),
        )
        .await;
        if page["status"] == json!("COMPLETED") {
            break;
        }
        assert!(Instant::now() < until, "the batch did not finish: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Read once it is complete: pages read while it ran would mix two moments.
    let (done, outcomes) = report(&server, "incident-42").await;
    assert_eq!(done["redriven"], json!(1000), "{done}");
    assert_eq!(done["refused"], json!(5));
    assert_eq!(done["pending"], json!(0));
    assert_eq!(outcomes.len(), 1005);
    // What the dry run said is what the run did.
    for o in &outcomes {
        let n = name(o["executionArn"].as_str().unwrap_or_default());
        let (redrivable, reason, _) = &planned[&n];
        match o["outcome"].as_str() {
            Some("REDRIVEN") => assert!(redrivable, "{n} redriven, the dry run said not"),
            Some("REFUSED") => {
                assert!(!redrivable, "{n} refused: {o}");
                assert_eq!(o["error"], json!("ExecutionNotRedrivable"));
                assert_eq!(o["cause"].as_str(), reason.as_deref());
            }
            other => panic!("{n}: outcome {other:?}"),
        }
    }

    // Nobody was redriven twice: every execution ran out of room after exactly one redrive.
    for arn in &arns {
        let d = wait_done(&client, arn, DONE_WITHIN).await;
        assert_eq!(d.status(), &ExecutionStatus::Failed, "{arn}");
        assert_eq!(d.redrive_count(), Some(1), "{arn}");
    }

    // The same request again: the same batch, nothing more done.
    let repeated = ext_ok(&server, "BulkRedrive", &run_body).await;
    assert_eq!(repeated["status"], json!("COMPLETED"));
    assert_eq!(repeated["creationDate"], began["creationDate"]);
    let mut other = run_body.clone();
    other["causeContains"] = json!("always");
    let conflict = ext(&server, "BulkRedrive", &other).await;
    assert_eq!(conflict.error_code().as_deref(), Some("ConflictException"));

    for arn in &arns[5..8] {
        let events = history(&client, arn).await;
        assert_redriven_history(arn, &events);
        let types: Vec<&str> = events.iter().map(|e| e.r#type().as_str()).collect();
        assert_eq!(
            types[5..],
            ["ExecutionRedriven", "FailStateEntered", "ExecutionFailed"],
            "only the failed state runs again"
        );
    }
    let checked: Vec<&std::ffi::OsStr> = arns[5..8].iter().map(|a| a.as_ref()).collect();
    common::run_python_client_script_with(&server, "test_redrive_extensions.py", &checked);
}

/// The `…StateEntered` events after the last `ExecutionRedriven`: (state, input).
fn entered_after_redrive(events: &[aws_sdk_sfn::types::HistoryEvent]) -> Vec<(String, Value)> {
    let last = events
        .iter()
        .rposition(|e| e.r#type().as_str() == "ExecutionRedriven")
        .expect("an ExecutionRedriven event");
    events[last..]
        .iter()
        .filter_map(|e| e.state_entered_event_details())
        .map(|d| {
            let input = serde_json::from_str(d.input().unwrap_or("null")).expect("JSON input");
            (d.name().to_owned(), input)
        })
        .collect()
}

/// Redrive from a chosen top-level state: it gets the input of its last entry, the states
/// after it run again and the one before does not; then from the same state with a new input,
/// which its `…StateEntered` shows and DescribeExecutionRedrives keeps beside the old one; an
/// unknown state, a state never entered and a bad lane path are refused precisely.
#[tokio::test(flavor = "multi_thread")]
async fn redrive_from_a_chosen_state_with_new_input() {
    let server = server(&[]);
    let client = server.client();
    let definition = json!({
        "StartAt": "Begin",
        "States": {
            "Begin": {"Type": "Pass", "Result": 1, "ResultPath": "$.begun", "Next": "Work"},
            "Work": {"Type": "Pass", "Parameters": {"ok.$": "$.ok", "value.$": "$.value"}, "Next": "Check"},
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}],
                "Default": "Broken"
            },
            "Done": {"Type": "Succeed"},
            "Broken": {"Type": "Fail", "Error": "NotOk"}
        }
    });
    let sm = create_machine(&client, "from-state", &definition).await;
    let arn = start(&client, &sm, Some("x"), &json!({"ok": false, "value": 1})).await;
    wait_done(&client, &arn, DONE_WITHIN).await;
    let first = history(&client, &arn).await;
    let work_input = first
        .iter()
        .filter_map(|e| e.state_entered_event_details())
        .find(|d| d.name() == "Work")
        .and_then(|d| d.input())
        .map(|i| serde_json::from_str::<Value>(i).expect("JSON"))
        .expect("Work was entered");

    let refusals = [
        ("Nope", "State 'Nope' does not exist in the definition"),
        ("Done", "State 'Done' was never entered"),
        ("Work/0/Inner", "Invalid state path 'Work/0/Inner'"),
    ];
    for (path, message) in refusals {
        let body = json!({"executionArn": arn, "statePath": path});
        let r = ext(&server, "RedriveExecutionFromState", &body).await;
        assert_eq!(
            r.error_code().as_deref(),
            Some("ValidationException"),
            "{path}: {}",
            r.text
        );
        let got = r.message().unwrap_or_default();
        assert!(got.starts_with(message), "{path}: {got}");
    }
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(
        d.redrive_count(),
        Some(0),
        "a refused redrive changes nothing"
    );

    ext_ok(
        &server,
        "RedriveExecutionFromState",
        &json!({"executionArn": arn, "statePath": "Work"}),
    )
    .await;
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(d.status(), &ExecutionStatus::Failed);
    let events = history(&client, &arn).await;
    assert_redriven_history(&arn, &events);
    let reran = entered_after_redrive(&events);
    let names: Vec<&str> = reran.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Work", "Check", "Broken"], "Begin is not run again");
    assert_eq!(
        reran[0].1, work_input,
        "Work gets the input of its last entry"
    );

    let fixed = json!({"begun": 1, "ok": true, "value": 2});
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["redrive", "--endpoint-url", &server.endpoint(), "from"])
        .args(["--execution-arn", &arn, "--state-path", "Work"])
        .args(["--input", &fixed.to_string()])
        .output()
        .expect("running `stepwise redrive from`");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(d.status(), &ExecutionStatus::Succeeded);
    assert_eq!(d.redrive_count(), Some(2));
    let events = history(&client, &arn).await;
    assert_redriven_history(&arn, &events);
    let reran = entered_after_redrive(&events);
    assert_eq!(
        reran[0],
        ("Work".to_owned(), fixed.clone()),
        "the new input reaches Work"
    );
    let output: Value = serde_json::from_str(d.output().unwrap_or("null")).expect("JSON");
    assert_eq!(output, json!({"ok": true, "value": 2}));

    let described = ext_ok(
        &server,
        "DescribeExecutionRedrives",
        &json!({"executionArn": arn}),
    )
    .await;
    let last = &described["lastChangedRedrive"];
    assert_eq!(last["redriveCount"], json!(2));
    assert_eq!(last["statePath"], json!("Work"));
    let text = |v: &Value| serde_json::from_str::<Value>(v.as_str().unwrap_or("null")).ok();
    assert_eq!(text(&last["previousInput"]), Some(work_input));
    assert_eq!(text(&last["input"]), Some(fixed));
    common::run_python_client_script_with(&server, "test_redrive_extensions.py", &[arn.as_ref()]);
}

/// Redrive from a state inside a Map iteration, one the iteration had left: it gets the input
/// of its last entry in that iteration (read from the history, as at the top level), that
/// iteration runs again from there, the iteration that succeeded does not, the one never
/// started runs. A state the iteration never entered needs an input.
#[tokio::test(flavor = "multi_thread")]
async fn redrive_from_a_state_inside_a_map_iteration() {
    let server = server(&[]);
    let client = server.client();
    let definition = json!({
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "Iterator": {
                    "StartAt": "Wrap",
                    "States": {
                        "Wrap": {"Type": "Pass", "Parameters": {"v.$": "$"}, "Next": "Check"},
                        "Check": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$.v", "NumericEquals": 1, "Next": "Ctx"}],
                            "Default": "Good"
                        },
                        "Good": {"Type": "Pass", "End": true},
                        "Ctx": {
                            "Type": "Pass",
                            "Parameters": {"time.$": "$$.Execution.RedriveTime"},
                            "End": true
                        }
                    }
                },
                "End": true
            }
        }
    });
    let sm = create_machine(&client, "from-lane", &definition).await;
    let arn = start(&client, &sm, Some("m"), &json!({"items": [0, 1, 2]})).await;
    wait_done(&client, &arn, DONE_WITHIN).await;
    let refused = ext(
        &server,
        "RedriveExecutionFromState",
        &json!({"executionArn": arn, "statePath": "Fan/7/Wrap"}),
    )
    .await;
    assert_eq!(refused.error_code().as_deref(), Some("ValidationException"));
    let message = refused.message().unwrap_or_default();
    assert!(message.contains("'Fan' has no lane 7"), "{message}");
    let refused = ext(
        &server,
        "RedriveExecutionFromState",
        &json!({"executionArn": arn, "statePath": "Fan/1/Good"}),
    )
    .await;
    let message = refused.message().unwrap_or_default();
    assert!(
        message.starts_with("State 'Good' was never entered in this lane: give the input"),
        "{message}"
    );

    ext_ok(
        &server,
        "RedriveExecutionFromState",
        &json!({"executionArn": arn, "statePath": "Fan/1/Check"}),
    )
    .await;
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(d.status(), &ExecutionStatus::Succeeded);
    let events = history(&client, &arn).await;
    assert_redriven_history(&arn, &events);
    let reran = entered_after_redrive(&events);
    let names: Vec<&str> = reran.iter().map(|(n, _)| n.as_str()).collect();
    // Iteration 1 from Check, then iteration 2 whole; iteration 0 not again.
    assert_eq!(names, ["Fan", "Check", "Ctx", "Wrap", "Check", "Good"]);
    assert_eq!(
        reran[1].1,
        json!({"v": 1}),
        "Check gets the input of its last entry in iteration 1"
    );
    let output: Value = serde_json::from_str(d.output().unwrap_or("null")).expect("JSON");
    assert_eq!(output.as_array().map(Vec::len), Some(3), "{output}");
    let described = ext_ok(
        &server,
        "DescribeExecutionRedrives",
        &json!({"executionArn": arn}),
    )
    .await;
    let last = &described["lastChangedRedrive"];
    assert_eq!(last["statePath"], json!("Fan/1/Check"));
    assert_eq!(last["previousInput"], json!("{\"v\":1}"));
    common::run_python_client_script_with(&server, "test_redrive_extensions.py", &[arn.as_ref()]);
}

/// A Parallel whose branch 0 runs `work` (a Pass state named `work_name`) and branch 1 a
/// Pass, then `after`; with `extra_branch`, a third branch.
fn fan(work_name: &str, work: Value, after: Value, extra_branch: bool) -> Value {
    let mut branches = vec![
        json!({"StartAt": work_name, "States": {work_name: work}}),
        json!({"StartAt": "Side", "States": {"Side": {"Type": "Pass", "End": true}}}),
    ];
    if extra_branch {
        branches
            .push(json!({"StartAt": "More", "States": {"More": {"Type": "Pass", "End": true}}}));
    }
    json!({
        "StartAt": "Begin",
        "States": {
            "Begin": {"Type": "Pass", "Next": "Fan"},
            "Fan": {"Type": "Parallel", "Branches": branches, "Next": "After"},
            "After": after
        }
    })
}

/// `Work` as shipped (its input's `text` is not JSON: `States.IntrinsicFailure`) and fixed.
fn work(fixed: bool) -> Value {
    let v = if fixed {
        "$.text"
    } else {
        "States.StringToJson($.text)"
    };
    json!({"Type": "Pass", "Parameters": {"v.$": v}, "End": true})
}

async fn update(
    client: &aws_sdk_sfn::Client,
    sm: &str,
    definition: &Value,
    publish: bool,
) -> Option<String> {
    let out = client
        .update_state_machine()
        .state_machine_arn(sm)
        .definition(definition.to_string())
        .publish(publish)
        .send()
        .await
        .expect("UpdateStateMachine");
    out.state_machine_version_arn().map(String::from)
}

/// The definition and revision DescribeStateMachineForExecution answers.
async fn runs_on(client: &aws_sdk_sfn::Client, arn: &str) -> (Value, Option<String>) {
    let d = client
        .describe_state_machine_for_execution()
        .execution_arn(arn)
        .send()
        .await
        .expect("DescribeStateMachineForExecution");
    let definition = serde_json::from_str(d.definition()).expect("JSON definition");
    (definition, d.revision_id().map(String::from))
}

/// Redrive onto another definition: after an UpdateStateMachine fixes the failed state, an
/// execution redriven onto `current` (CLI) continues there and succeeds, and
/// DescribeStateMachineForExecution shows the fixed definition; one redriven onto a named
/// version runs that version, and a plain RedriveExecution after it runs it again; onto a
/// definition that does not fit (a Parallel with another branch count whose failed lane's
/// state was removed) the redrive is refused with both conflicts and changes nothing. Every
/// history is read back through the SDK, boto3 and the AWS CLI.
#[tokio::test(flavor = "multi_thread")]
async fn redrive_onto_another_definition() {
    let server = server(&[]);
    let client = server.client();
    let pass_end = json!({"Type": "Pass", "End": true});
    let shipped = fan("Work", work(false), pass_end.clone(), false);
    let sm = create_machine(&client, "onto", &shipped).await;
    let input = json!({"text": "not json"});
    let mut failed = Vec::new();
    for n in ["a", "b", "c"] {
        let arn = start(&client, &sm, Some(n), &input).await;
        let d = wait_done(&client, &arn, DONE_WITHIN).await;
        assert_eq!(d.error(), Some("States.IntrinsicFailure"));
        failed.push(arn);
    }
    let [a, b, c] = [&failed[0], &failed[1], &failed[2]];
    let (_, shipped_revision) = runs_on(&client, a).await;

    // Version 1: Work fixed, but After now fails. Then the current revision: all fixed.
    let still_broken = json!({"Type": "Fail", "Error": "StillBroken"});
    let half_fixed = fan("Work", work(true), still_broken, false);
    let version = update(&client, &sm, &half_fixed, true)
        .await
        .expect("a version ARN");
    let fixed = fan("Work", work(true), pass_end.clone(), false);
    update(&client, &sm, &fixed, false).await;
    let current_revision = client
        .describe_state_machine()
        .state_machine_arn(&sm)
        .send()
        .await
        .expect("DescribeStateMachine")
        .revision_id()
        .map(String::from);

    // a: onto the current revision, through the CLI.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["redrive", "--endpoint-url", &server.endpoint(), "from"])
        .args(["--execution-arn", a, "--definition", "current"])
        .output()
        .expect("running `stepwise redrive from`");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = wait_done(&client, a, DONE_WITHIN).await;
    assert_eq!(d.status(), &ExecutionStatus::Succeeded, "{:?}", d.cause());
    let output: Value = serde_json::from_str(d.output().unwrap_or("null")).expect("JSON");
    assert_eq!(
        output,
        json!([{"v": "not json"}, input]),
        "the fixed Work ran, Side kept"
    );
    assert_eq!(
        runs_on(&client, a).await,
        (fixed.clone(), current_revision.clone())
    );
    let events = history(&client, a).await;
    assert_redriven_history(a, &events);
    let reran = entered_after_redrive(&events);
    let names: Vec<&str> = reran.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Fan", "Work", "Side", "After"],
        "Begin is not run again"
    );
    let described = ext_ok(
        &server,
        "DescribeExecutionRedrives",
        &json!({"executionArn": a}),
    )
    .await;
    let last = &described["lastChangedRedrive"];
    assert_eq!(last["definition"], json!("CURRENT"));
    assert_eq!(
        last["previousRevisionId"].as_str().map(String::from),
        shipped_revision
    );

    // b: onto version 1, where After fails; a plain redrive then runs version 1 again.
    ext_ok(
        &server,
        "RedriveExecutionFromState",
        &json!({"executionArn": b, "definition": version}),
    )
    .await;
    let d = wait_done(&client, b, DONE_WITHIN).await;
    assert_eq!(d.error(), Some("StillBroken"), "version 1's After ran");
    assert_eq!(runs_on(&client, b).await.0, half_fixed);
    client
        .redrive_execution()
        .execution_arn(b)
        .send()
        .await
        .expect("RedriveExecution");
    let d = wait_done(&client, b, DONE_WITHIN).await;
    assert_eq!(
        (d.redrive_count(), d.error()),
        (Some(2), Some("StillBroken")),
        "the plain redrive runs version 1, not the definition b started on"
    );
    let events = history(&client, b).await;
    assert_redriven_history(b, &events);

    // c: onto a definition that does not fit: refused with every conflict, nothing changes.
    let misfit = fan("Job", work(true), pass_end, true);
    update(&client, &sm, &misfit, false).await;
    let refused = ext(
        &server,
        "RedriveExecutionFromState",
        &json!({"executionArn": c, "definition": "CURRENT"}),
    )
    .await;
    assert_eq!(
        refused.error_code().as_deref(),
        Some("ValidationException"),
        "{}",
        refused.text
    );
    assert_eq!(
        refused.message().as_deref(),
        Some(
            "Cannot redrive onto definition 'CURRENT': Parallel state 'Fan' has 2 branches, \
             the new one 3; state 'Fan/0/Work' does not exist"
        )
    );
    let other_sm = create_machine(&client, "onto-other", &fixed).await;
    let foreign = update(&client, &other_sm, &fixed, true)
        .await
        .expect("a version ARN");
    for (definition, code) in [
        (foreign.as_str(), "ValidationException"),
        (&format!("{sm}:9"), "ResourceNotFound"),
    ] {
        let body = json!({"executionArn": c, "definition": definition});
        let r = ext(&server, "RedriveExecutionFromState", &body).await;
        assert_eq!(
            r.error_code().as_deref(),
            Some(code),
            "{definition}: {}",
            r.text
        );
    }
    let d = wait_done(&client, c, DONE_WITHIN).await;
    assert_eq!(
        d.redrive_count(),
        Some(0),
        "a refused redrive changes nothing"
    );
    assert_eq!(runs_on(&client, c).await.0, shipped);

    let checked: Vec<&std::ffi::OsStr> = [a, b].into_iter().map(|s| s.as_ref()).collect();
    common::run_python_client_script_with(&server, "test_redrive_extensions.py", &checked);
}
