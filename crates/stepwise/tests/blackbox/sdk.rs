//! End-to-end tests through aws-sdk-sfn against a `stepwise serve` child process.

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sfn::operation::create_state_machine::CreateStateMachineError;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;
use aws_sdk_sfn::operation::describe_state_machine::DescribeStateMachineError;
use aws_sdk_sfn::operation::list_executions::ListExecutionsError;
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::operation::start_sync_execution::StartSyncExecutionError;
use aws_sdk_sfn::operation::tag_resource::TagResourceError;
use aws_sdk_sfn::types::{
    ExecutionRedriveStatus, ExecutionStatus, HistoryEvent, StateMachineStatus, StateMachineType,
    SyncExecutionStatus, Tag,
};
use common::{
    assert_history_well_formed, create_machine, create_machine_of_type, event_types, history,
    parse_json, start, wait_done, Server, ROLE_ARN,
};
use serde_json::{json, Value};

/// Scale for Wait states: `Seconds: 1` waits 100 ms.
const SCALE: f64 = 0.1;
const DONE_WITHIN: Duration = Duration::from_secs(15);

/// Expects `$result` to be an `Err` whose service error matches `$pattern`; returns the error.
macro_rules! expect_service_error {
    ($what:expr, $result:expr, $pattern:pat) => {{
        match $result {
            Ok(v) => panic!("{}: expected an error, got {:?}", $what, v),
            Err(e) => {
                let shown = format!("{}", DisplayErrorContext(&e));
                let service = e.into_service_error();
                assert!(
                    matches!(service, $pattern),
                    "{}: expected {}, got {:?} ({shown})",
                    $what,
                    stringify!($pattern),
                    service
                );
                service
            }
        }
    }};
}

/// Like `expect_service_error!`, but records a mismatch in `$failures` instead of panicking.
macro_rules! check_service_error {
    ($failures:expr, $what:expr, $result:expr, $pattern:pat) => {{
        match $result {
            Ok(v) => {
                $failures.push(format!(
                    "{}: expected {}, got Ok({:?})",
                    $what,
                    stringify!($pattern),
                    v
                ));
                None
            }
            Err(e) => {
                let shown = format!("{}", DisplayErrorContext(&e));
                let service = e.into_service_error();
                if matches!(service, $pattern) {
                    Some(service)
                } else {
                    $failures.push(format!(
                        "{}: expected {}, got {:?} ({shown})",
                        $what,
                        stringify!($pattern),
                        service
                    ));
                    None
                }
            }
        }
    }};
}

fn pass_choice_wait_succeed() -> Value {
    json!({
        "Comment": "Pass -> Choice -> Wait -> Succeed",
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Result": {"n": 3}, "ResultPath": "$.init", "Next": "Route"},
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.init.n", "NumericGreaterThan": 2, "Next": "Pause"}],
                "Default": "Nope"
            },
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
            "Nope": {"Type": "Fail", "Error": "Wrong", "Cause": "took the default branch"},
            "Done": {"Type": "Succeed"}
        }
    })
}

/// A machine that waits an hour (six minutes scaled) when `$.slow` is true.
fn maybe_slow() -> Value {
    json!({
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.slow", "BooleanEquals": true, "Next": "Long"}],
                "Default": "Done"
            },
            "Long": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }
    })
}

fn long_wait() -> Value {
    json!({
        "StartAt": "Long",
        "States": {"Long": {"Type": "Wait", "Seconds": 3600, "End": true}}
    })
}

fn sdk_err<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: aws_sdk_sfn::error::SdkError<E, R>,
) -> String {
    format!("{}", DisplayErrorContext(&e))
}

fn ms(t: &aws_sdk_sfn::primitives::DateTime) -> i64 {
    t.to_millis().expect("timestamp in millisecond range")
}

fn find<'a>(events: &'a [HistoryEvent], event_type: &str) -> &'a HistoryEvent {
    events
        .iter()
        .find(|e| e.r#type().as_str() == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {:?}", event_types(events)))
}

#[tokio::test]
async fn state_machine_crud() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let def = pass_choice_wait_succeed();

    let created = client
        .create_state_machine()
        .name("crud")
        .definition(def.to_string())
        .role_arn(ROLE_ARN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStateMachine: {}", sdk_err(e)));
    let arn = created.state_machine_arn().to_owned();
    assert_eq!(
        arn,
        format!(
            "arn:aws:states:us-east-1:{}:stateMachine:crud",
            server.account_id()
        )
    );

    // Same name, same definition: idempotent, same ARN.
    let again = client
        .create_state_machine()
        .name("crud")
        .definition(def.to_string())
        .role_arn(ROLE_ARN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("idempotent CreateStateMachine: {}", sdk_err(e)));
    assert_eq!(again.state_machine_arn(), arn);

    // Same name, different definition: StateMachineAlreadyExists.
    let other = json!({"StartAt": "X", "States": {"X": {"Type": "Succeed"}}});
    expect_service_error!(
        "CreateStateMachine with a taken name",
        client
            .create_state_machine()
            .name("crud")
            .definition(other.to_string())
            .role_arn(ROLE_ARN)
            .send()
            .await,
        CreateStateMachineError::StateMachineAlreadyExists(_)
    );

    let d = client
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStateMachine: {}", sdk_err(e)));
    assert_eq!(d.name(), "crud");
    assert_eq!(d.state_machine_arn(), arn);
    assert_eq!(d.role_arn(), ROLE_ARN);
    assert_eq!(d.r#type(), &StateMachineType::Standard);
    assert_eq!(d.status(), Some(&StateMachineStatus::Active));
    assert_eq!(parse_json("definition", Some(d.definition())), def);
    assert_eq!(d.creation_date(), created.creation_date());

    // Update the definition and the role.
    let new_role = "arn:aws:iam::123456789012:role/other";
    client
        .update_state_machine()
        .state_machine_arn(&arn)
        .definition(other.to_string())
        .role_arn(new_role)
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateStateMachine: {}", sdk_err(e)));
    let d = client
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStateMachine after update: {}", sdk_err(e)));
    assert_eq!(
        parse_json("updated definition", Some(d.definition())),
        other
    );
    assert_eq!(d.role_arn(), new_role);

    // An execution started now runs the new definition.
    let exec = start(&client, &arn, None, &json!({"k": "v"})).await;
    let done = wait_done(&client, &exec, DONE_WITHIN).await;
    assert_eq!(done.status(), &ExecutionStatus::Succeeded);
    let events = history(&client, &exec).await;
    assert_eq!(
        event_types(&events),
        [
            "ExecutionStarted",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ]
    );

    // List (paginated) sees it with a second and third machine.
    for name in ["crud-b", "crud-c"] {
        create_machine(&client, name, &other).await;
    }
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = client
            .list_state_machines()
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListStateMachines: {}", sdk_err(e)));
        pages += 1;
        assert!(
            page.state_machines().len() <= 2,
            "page larger than maxResults: {page:?}"
        );
        for sm in page.state_machines() {
            assert_eq!(sm.r#type(), &StateMachineType::Standard);
            names.push(sm.name().to_owned());
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
        assert!(pages < 10, "ListStateMachines pagination does not end");
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["crud", "crud-b", "crud-c"],
        "listed (in order): {names:?}"
    );
    assert_eq!(pages, 2);

    // Delete: gone from describe and list.
    client
        .delete_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteStateMachine: {}", sdk_err(e)));
    expect_service_error!(
        "DescribeStateMachine after delete",
        client
            .describe_state_machine()
            .state_machine_arn(&arn)
            .send()
            .await,
        DescribeStateMachineError::StateMachineDoesNotExist(_)
    );
    let listed = client
        .list_state_machines()
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListStateMachines after delete: {}", sdk_err(e)));
    let names: Vec<&str> = listed.state_machines().iter().map(|s| s.name()).collect();
    assert_eq!(names.len(), 2, "after delete: {names:?}");
    assert!(
        !names.contains(&"crud"),
        "deleted machine still listed: {names:?}"
    );
}

/// A run-to-completion case: definition + input → status, output or error, event types.
struct Case {
    name: &'static str,
    definition: Value,
    input: Value,
    status: ExecutionStatus,
    output: Option<Value>,
    error: Option<(&'static str, &'static str)>,
    events: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "pass-choice-wait-succeed",
            definition: pass_choice_wait_succeed(),
            input: json!({"x": 1}),
            status: ExecutionStatus::Succeeded,
            output: Some(json!({"x": 1, "init": {"n": 3}})),
            error: None,
            events: &[
                "ExecutionStarted",
                "PassStateEntered",
                "PassStateExited",
                "ChoiceStateEntered",
                "ChoiceStateExited",
                "WaitStateEntered",
                "WaitStateExited",
                "SucceedStateEntered",
                "SucceedStateExited",
                "ExecutionSucceeded",
            ],
        },
        Case {
            name: "choice-default-to-fail",
            definition: json!({
                "StartAt": "Init",
                "States": {
                    "Init": {"Type": "Pass", "Result": {"n": 1}, "ResultPath": "$.init", "Next": "Route"},
                    "Route": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.init.n", "NumericGreaterThan": 2, "Next": "Done"}],
                        "Default": "Nope"
                    },
                    "Nope": {"Type": "Fail", "Error": "Wrong", "Cause": "took the default branch"},
                    "Done": {"Type": "Succeed"}
                }
            }),
            input: json!({}),
            status: ExecutionStatus::Failed,
            output: None,
            error: Some(("Wrong", "took the default branch")),
            events: &[
                "ExecutionStarted",
                "PassStateEntered",
                "PassStateExited",
                "ChoiceStateEntered",
                "ChoiceStateExited",
                "FailStateEntered",
                "ExecutionFailed",
            ],
        },
        Case {
            name: "input-path-to-missing-field",
            definition: json!({
                "StartAt": "Lookup",
                "States": {"Lookup": {"Type": "Pass", "InputPath": "$.missing", "End": true}}
            }),
            input: json!({"present": true}),
            status: ExecutionStatus::Failed,
            output: None,
            error: Some((
                "States.Runtime",
                "An error occurred while executing the state 'Lookup' (entered at the event id #2). \
                 Invalid path '$.missing' : No results for path: $['missing']",
            )),
            events: &["ExecutionStarted", "PassStateEntered", "ExecutionFailed"],
        },
        Case {
            name: "parameters-intrinsics-output-path",
            definition: json!({
                "StartAt": "Math",
                "States": {
                    "Math": {
                        "Type": "Pass",
                        "Parameters": {"sum.$": "States.MathAdd($.a, $.b)", "label.$": "States.Format('{} and {}', $.a, $.b)"},
                        "ResultPath": "$.r",
                        "OutputPath": "$.r",
                        "Next": "Done"
                    },
                    "Done": {"Type": "Succeed"}
                }
            }),
            input: json!({"a": 2, "b": 3}),
            status: ExecutionStatus::Succeeded,
            output: Some(json!({"sum": 5, "label": "2 and 3"})),
            error: None,
            events: &[
                "ExecutionStarted",
                "PassStateEntered",
                "PassStateExited",
                "SucceedStateEntered",
                "SucceedStateExited",
                "ExecutionSucceeded",
            ],
        },
        Case {
            name: "wait-seconds-path-then-end",
            definition: json!({
                "StartAt": "W",
                "States": {"W": {"Type": "Wait", "SecondsPath": "$.delay", "End": true}}
            }),
            input: json!({"delay": 1}),
            status: ExecutionStatus::Succeeded,
            output: Some(json!({"delay": 1})),
            error: None,
            events: &["ExecutionStarted", "WaitStateEntered", "WaitStateExited", "ExecutionSucceeded"],
        },
        Case {
            name: "fail-state-only",
            definition: json!({
                "StartAt": "F",
                "States": {"F": {"Type": "Fail", "Error": "Custom.Error", "Cause": "bad things"}}
            }),
            input: json!({}),
            status: ExecutionStatus::Failed,
            output: None,
            error: Some(("Custom.Error", "bad things")),
            events: &["ExecutionStarted", "FailStateEntered", "ExecutionFailed"],
        },
    ]
}

#[tokio::test]
async fn executions_run_to_completion() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let mut failures = Vec::new();
    for case in cases() {
        let sm = create_machine(&client, case.name, &case.definition).await;
        let exec = start(&client, &sm, Some("run-1"), &case.input).await;
        assert_eq!(
            exec,
            format!(
                "arn:aws:states:us-east-1:{}:execution:{}:run-1",
                server.account_id(),
                case.name
            )
        );
        let d = wait_done(&client, &exec, DONE_WITHIN).await;
        let events = history(&client, &exec).await;
        let types = event_types(&events);
        let mut problems = Vec::new();
        if d.status() != &case.status {
            problems.push(format!(
                "status {:?}, expected {:?}",
                d.status(),
                case.status
            ));
        }
        let output = d.output().map(|o| parse_json("output", Some(o)));
        if output != case.output {
            problems.push(format!("output {output:?}, expected {:?}", case.output));
        }
        let error = d.error().zip(d.cause());
        if error != case.error {
            problems.push(format!("error/cause {error:?}, expected {:?}", case.error));
        }
        if types != case.events {
            problems.push(format!("events {types:?}, expected {:?}", case.events));
        }
        if d.name() != Some("run-1") || d.state_machine_arn() != sm {
            problems.push(format!(
                "name/stateMachineArn {:?} {}",
                d.name(),
                d.state_machine_arn()
            ));
        }
        if parse_json("input", d.input()) != case.input {
            problems.push(format!("input {:?}", d.input()));
        }
        match d.stop_date() {
            Some(stop) if ms(stop) >= ms(d.start_date()) => {}
            other => problems.push(format!(
                "stopDate {other:?} vs startDate {:?}",
                d.start_date()
            )),
        }
        let want_redrive = if case.status == ExecutionStatus::Failed {
            ExecutionRedriveStatus::Redrivable
        } else {
            ExecutionRedriveStatus::NotRedrivable
        };
        if d.redrive_status() != Some(&want_redrive) {
            problems.push(format!(
                "redriveStatus {:?}, expected {want_redrive:?}",
                d.redrive_status()
            ));
        }
        let numbering = common::history_problems(&events);
        problems.extend(numbering);
        // Event details.
        if let Some(started) = events
            .first()
            .and_then(|e| e.execution_started_event_details())
        {
            if started
                .input()
                .map(|i| parse_json("started input", Some(i)))
                != Some(case.input.clone())
            {
                problems.push(format!("ExecutionStarted input {:?}", started.input()));
            }
            if started.role_arn() != Some(ROLE_ARN) {
                problems.push(format!("ExecutionStarted roleArn {:?}", started.role_arn()));
            }
        } else {
            problems.push("no executionStartedEventDetails on the first event".into());
        }
        if let Some(last) = events.last() {
            match case.status {
                ExecutionStatus::Succeeded => {
                    let out = last
                        .execution_succeeded_event_details()
                        .and_then(|x| x.output())
                        .map(|o| parse_json("succeeded output", Some(o)));
                    if out != case.output {
                        problems.push(format!("ExecutionSucceeded output {out:?}"));
                    }
                }
                _ => {
                    let ec = last
                        .execution_failed_event_details()
                        .map(|x| (x.error(), x.cause()));
                    let want = case.error.map(|(e, c)| (Some(e), Some(c)));
                    if ec != want {
                        problems.push(format!("ExecutionFailed details {ec:?}, expected {want:?}"));
                    }
                }
            }
        }
        for e in &events {
            if let Some(entered) = e.state_entered_event_details() {
                if case.definition["States"].get(entered.name()).is_none() {
                    problems.push(format!(
                        "StateEntered names unknown state {:?}",
                        entered.name()
                    ));
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "case {}:\n    {}",
                case.name,
                problems.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn happy_path_details_and_wait_duration() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let sm = create_machine(&client, "details", &pass_choice_wait_succeed()).await;
    let exec = start(&client, &sm, None, &json!({"x": 1})).await;
    // Unnamed executions get a UUID name.
    let name = exec.rsplit(':').next().expect("execution name").to_owned();
    assert_eq!(
        name.len(),
        36,
        "generated execution name {name:?} is not a UUID"
    );
    let d = wait_done(&client, &exec, DONE_WITHIN).await;
    assert_eq!(d.status(), &ExecutionStatus::Succeeded, "{d:?}");
    assert_eq!(d.name(), Some(name.as_str()));
    let events = history(&client, &exec).await;
    assert_history_well_formed("happy path", &events);
    let ids: Vec<(i64, i64)> = events
        .iter()
        .map(|e| (e.id(), e.previous_event_id()))
        .collect();
    assert_eq!(
        ids,
        [
            (1, 0),
            (2, 0),
            (3, 2),
            (4, 3),
            (5, 4),
            (6, 5),
            (7, 6),
            (8, 7),
            (9, 8),
            (10, 9)
        ]
    );
    let entered: Vec<&str> = events
        .iter()
        .filter_map(|e| e.state_entered_event_details())
        .map(|s| s.name())
        .collect();
    assert_eq!(entered, ["Init", "Route", "Pause", "Done"]);
    let exited: Vec<&str> = events
        .iter()
        .filter_map(|e| e.state_exited_event_details())
        .map(|s| s.name())
        .collect();
    assert_eq!(exited, ["Init", "Route", "Pause", "Done"]);
    let init_out = events[2]
        .state_exited_event_details()
        .and_then(|s| s.output())
        .map(|o| parse_json("Init output", Some(o)));
    assert_eq!(init_out, Some(json!({"x": 1, "init": {"n": 3}})));
    // Wait 1 s at scale 0.1 is 100 ms of real time.
    let waited = ms(find(&events, "WaitStateExited").timestamp())
        - ms(find(&events, "WaitStateEntered").timestamp());
    assert!(
        (90..5000).contains(&waited),
        "Wait 1s at scale {SCALE} took {waited} ms"
    );
    // Timestamps never go backwards.
    for pair in events.windows(2) {
        assert!(
            ms(pair[0].timestamp()) <= ms(pair[1].timestamp()),
            "timestamps go backwards: {pair:?}"
        );
    }

    let for_exec = client
        .describe_state_machine_for_execution()
        .execution_arn(&exec)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStateMachineForExecution: {}", sdk_err(e)));
    assert_eq!(for_exec.state_machine_arn(), sm);
    assert_eq!(for_exec.name(), "details");
    assert_eq!(
        parse_json("definition", Some(for_exec.definition())),
        pass_choice_wait_succeed()
    );
    assert_eq!(for_exec.role_arn(), ROLE_ARN);
}

#[tokio::test]
async fn list_executions_status_filter_and_pagination() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let sm = create_machine(&client, "lister", &maybe_slow()).await;
    let mut arns = Vec::new();
    for i in 0..5 {
        let slow = i % 2 == 1; // e-1 and e-3 wait
        arns.push(
            start(
                &client,
                &sm,
                Some(&format!("e-{i}")),
                &json!({"slow": slow}),
            )
            .await,
        );
    }
    for i in [0, 2, 4] {
        let d = wait_done(&client, &arns[i], DONE_WITHIN).await;
        assert_eq!(d.status(), &ExecutionStatus::Succeeded, "e-{i}: {d:?}");
    }

    let names_with = |status: Option<ExecutionStatus>| {
        let client = client.clone();
        let sm = sm.clone();
        async move {
            let out = client
                .list_executions()
                .state_machine_arn(&sm)
                .set_status_filter(status.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("ListExecutions {status:?}: {}", sdk_err(e)));
            for e in out.executions() {
                if let Some(s) = &status {
                    assert_eq!(e.status(), s, "filtered list has {e:?}");
                }
                assert_eq!(e.state_machine_arn(), sm);
            }
            let mut names: Vec<String> = out
                .executions()
                .iter()
                .map(|e| e.name().to_owned())
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(
        names_with(Some(ExecutionStatus::Running)).await,
        ["e-1", "e-3"]
    );
    assert_eq!(
        names_with(Some(ExecutionStatus::Succeeded)).await,
        ["e-0", "e-2", "e-4"]
    );
    assert!(names_with(Some(ExecutionStatus::Failed)).await.is_empty());
    assert_eq!(names_with(None).await, ["e-0", "e-1", "e-2", "e-3", "e-4"]);

    // Pages of 2 over 5 executions: 2 + 2 + 1, newest first, no duplicates.
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut starts = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_executions()
            .state_machine_arn(&sm)
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListExecutions page: {}", sdk_err(e)));
        sizes.push(page.executions().len());
        for e in page.executions() {
            seen.push(e.name().to_owned());
            starts.push(ms(e.start_date()));
        }
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "pagination does not end: {sizes:?}");
    }
    assert_eq!(sizes, [2, 2, 1], "page sizes; names {seen:?}");
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 5, "duplicates across pages: {seen:?}");
    assert!(
        starts.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {seen:?} {starts:?}"
    );

    // A status filter and pagination together.
    let first = client
        .list_executions()
        .state_machine_arn(&sm)
        .status_filter(ExecutionStatus::Succeeded)
        .max_results(2)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListExecutions filtered page 1: {}", sdk_err(e)));
    assert_eq!(first.executions().len(), 2);
    let token = first
        .next_token()
        .expect("nextToken on the first filtered page")
        .to_owned();
    let second = client
        .list_executions()
        .state_machine_arn(&sm)
        .status_filter(ExecutionStatus::Succeeded)
        .max_results(2)
        .next_token(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListExecutions filtered page 2: {}", sdk_err(e)));
    assert_eq!(second.executions().len(), 1, "{second:?}");
    assert!(second.next_token().is_none());
    assert_eq!(second.executions()[0].status(), &ExecutionStatus::Succeeded);

    // A garbage token is an InvalidToken error.
    let bad = client
        .list_executions()
        .state_machine_arn(&sm)
        .next_token("garbage")
        .send()
        .await;
    expect_service_error!(
        "ListExecutions with a bad token",
        bad,
        ListExecutionsError::InvalidToken(_)
    );
}

#[tokio::test]
async fn history_reverse_pagination_and_no_data() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let sm = create_machine(&client, "hist", &pass_choice_wait_succeed()).await;
    let exec = start(&client, &sm, None, &json!({"x": 1})).await;
    wait_done(&client, &exec, DONE_WITHIN).await;
    let all = history(&client, &exec).await;
    assert_eq!(all.len(), 10);
    let forward: Vec<i64> = all.iter().map(|e| e.id()).collect();

    let collect = |reverse: bool, page_size: Option<i32>, include: Option<bool>| {
        let client = client.clone();
        let exec = exec.clone();
        async move {
            let mut events = Vec::new();
            let mut sizes = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = client
                    .get_execution_history()
                    .execution_arn(&exec)
                    .reverse_order(reverse)
                    .set_max_results(page_size)
                    .set_include_execution_data(include)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("GetExecutionHistory: {}", sdk_err(e)));
                sizes.push(page.events().len());
                events.extend(page.events().iter().cloned());
                match page.next_token() {
                    Some(t) => token = Some(t.to_owned()),
                    None => break,
                }
                assert!(
                    sizes.len() < 20,
                    "history pagination does not end: {sizes:?}"
                );
            }
            (events, sizes)
        }
    };

    let (rev, sizes) = collect(true, None, None).await;
    let ids: Vec<i64> = rev.iter().map(|e| e.id()).collect();
    assert_eq!(ids, (1..=10).rev().collect::<Vec<_>>(), "reverseOrder");
    assert_eq!(sizes, [10]);
    assert_eq!(
        rev.first().map(|e| e.r#type().as_str()),
        Some("ExecutionSucceeded")
    );

    let (paged, sizes) = collect(false, Some(3), None).await;
    assert_eq!(sizes, [3, 3, 3, 1]);
    assert_eq!(paged.iter().map(|e| e.id()).collect::<Vec<_>>(), forward);
    assert_eq!(paged, all, "paged history differs from the single page");

    let (rev_paged, sizes) = collect(true, Some(4), None).await;
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(
        rev_paged.iter().map(|e| e.id()).collect::<Vec<_>>(),
        (1..=10).rev().collect::<Vec<_>>()
    );

    let (bare, _) = collect(false, None, Some(false)).await;
    assert_eq!(event_types(&bare), event_types(&all));
    let started = bare[0]
        .execution_started_event_details()
        .expect("executionStartedEventDetails");
    assert_eq!(
        started.input(),
        None,
        "input included with includeExecutionData=false"
    );
    assert_eq!(started.role_arn(), Some(ROLE_ARN));
    for e in &bare {
        if let Some(s) = e.state_entered_event_details() {
            assert!(!s.name().is_empty());
            assert_eq!(
                s.input(),
                None,
                "state input included with includeExecutionData=false: {e:?}"
            );
        }
        if let Some(s) = e.state_exited_event_details() {
            assert_eq!(
                s.output(),
                None,
                "state output included with includeExecutionData=false: {e:?}"
            );
        }
    }
    let succeeded = bare[9]
        .execution_succeeded_event_details()
        .expect("executionSucceededEventDetails");
    assert_eq!(succeeded.output(), None);

    let (full, _) = collect(false, None, Some(true)).await;
    assert!(full[0]
        .execution_started_event_details()
        .and_then(|s| s.input())
        .is_some());
}

#[tokio::test]
async fn stop_execution_aborts_a_wait() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let sm = create_machine(&client, "stopper", &long_wait()).await;
    let exec = start(&client, &sm, Some("to-stop"), &json!({})).await;

    // Poll until the execution sits in the Wait state.
    let deadline = std::time::Instant::now() + DONE_WITHIN;
    loop {
        let events = history(&client, &exec).await;
        if event_types(&events).iter().any(|t| t == "WaitStateEntered") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never entered the Wait: {:?}",
            event_types(&events)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let running = client
        .describe_execution()
        .execution_arn(&exec)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeExecution: {}", sdk_err(e)));
    assert_eq!(running.status(), &ExecutionStatus::Running);
    assert!(running.stop_date().is_none());
    assert_eq!(
        running.redrive_status(),
        Some(&ExecutionRedriveStatus::NotRedrivable)
    );

    let stopped = client
        .stop_execution()
        .execution_arn(&exec)
        .error("Operator.Stop")
        .cause("no longer needed")
        .send()
        .await
        .unwrap_or_else(|e| panic!("StopExecution: {}", sdk_err(e)));
    let d = client
        .describe_execution()
        .execution_arn(&exec)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeExecution after stop: {}", sdk_err(e)));
    assert_eq!(d.status(), &ExecutionStatus::Aborted, "{d:?}");
    assert_eq!(d.stop_date(), Some(stopped.stop_date()));
    assert_eq!(
        d.redrive_status(),
        Some(&ExecutionRedriveStatus::Redrivable)
    );
    assert!(d.output().is_none());

    let events = history(&client, &exec).await;
    assert_history_well_formed("stopped", &events);
    assert_eq!(
        event_types(&events),
        ["ExecutionStarted", "WaitStateEntered", "ExecutionAborted"]
    );
    let aborted = events[2]
        .execution_aborted_event_details()
        .expect("executionAbortedEventDetails");
    assert_eq!(aborted.error(), Some("Operator.Stop"));
    assert_eq!(aborted.cause(), Some("no longer needed"));

    // The listing agrees, and nothing more happens to it later.
    let listed = client
        .list_executions()
        .state_machine_arn(&sm)
        .status_filter(ExecutionStatus::Aborted)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListExecutions ABORTED: {}", sdk_err(e)));
    assert_eq!(listed.executions().len(), 1);
    assert_eq!(listed.executions()[0].execution_arn(), exec);

    // AWS reports the stop's error and cause on the execution too (not only on the event).
    assert_eq!(
        (d.error(), d.cause()),
        (Some("Operator.Stop"), Some("no longer needed")),
        "DescribeExecution error/cause of an execution stopped with them"
    );
}

#[tokio::test]
async fn start_execution_idempotency() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let sm = create_machine(&client, "idem", &long_wait()).await;
    let input = json!({"a": 1});
    let first = client
        .start_execution()
        .state_machine_arn(&sm)
        .name("same")
        .input(input.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("StartExecution: {}", sdk_err(e)));
    let second = client
        .start_execution()
        .state_machine_arn(&sm)
        .name("same")
        .input(input.to_string())
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "repeated StartExecution (same name and input, still running): {}",
                sdk_err(e)
            )
        });
    assert_eq!(second.execution_arn(), first.execution_arn());
    assert_eq!(second.start_date(), first.start_date());

    let different = client
        .start_execution()
        .state_machine_arn(&sm)
        .name("same")
        .input(json!({"a": 2}).to_string())
        .send()
        .await;
    expect_service_error!(
        "same name, different input",
        different,
        StartExecutionError::ExecutionAlreadyExists(_)
    );

    let listed = client
        .list_executions()
        .state_machine_arn(&sm)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListExecutions: {}", sdk_err(e)));
    assert_eq!(
        listed.executions().len(),
        1,
        "idempotent start created a second execution"
    );

    // Once it is no longer running, the name stays taken even with the same input.
    client
        .stop_execution()
        .execution_arn(first.execution_arn())
        .send()
        .await
        .unwrap_or_else(|e| panic!("StopExecution: {}", sdk_err(e)));
    let after_stop = client
        .start_execution()
        .state_machine_arn(&sm)
        .name("same")
        .input(input.to_string())
        .send()
        .await;
    expect_service_error!(
        "same name and input after the execution ended",
        after_stop,
        StartExecutionError::ExecutionAlreadyExists(_)
    );
}

#[tokio::test]
async fn express_start_sync_execution() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let def = json!({
        "StartAt": "Add",
        "States": {
            "Add": {"Type": "Pass", "Parameters": {"total.$": "States.MathAdd($.a, 10)"}, "Next": "Pause"},
            "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Check"},
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.total", "NumericLessThan": 0, "Next": "Negative"}],
                "Default": "Done"
            },
            "Negative": {"Type": "Fail", "Error": "Negative", "Cause": "total below zero"},
            "Done": {"Type": "Succeed"}
        }
    });
    let sm = create_machine_of_type(&client, "fast", &def, StateMachineType::Express).await;
    let d = client
        .describe_state_machine()
        .state_machine_arn(&sm)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeStateMachine: {}", sdk_err(e)));
    assert_eq!(d.r#type(), &StateMachineType::Express);

    let ok = client
        .start_sync_execution()
        .state_machine_arn(&sm)
        .name("sync-ok")
        .input(json!({"a": 5}).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("StartSyncExecution: {}", sdk_err(e)));
    assert_eq!(ok.status(), &SyncExecutionStatus::Succeeded, "{ok:?}");
    assert_eq!(parse_json("sync output", ok.output()), json!({"total": 15}));
    assert_eq!(parse_json("sync input", ok.input()), json!({"a": 5}));
    assert!(
        ok.execution_arn().contains(":express:"),
        "express ARN: {}",
        ok.execution_arn()
    );
    assert_eq!(ok.state_machine_arn(), Some(sm.as_str()));
    assert_eq!(ok.name(), Some("sync-ok"));
    assert!(
        ms(ok.stop_date()) >= ms(ok.start_date()) + 90,
        "Wait 1s scaled did not wait: {ok:?}"
    );
    assert!(ok.billing_details().is_some());

    let failed = client
        .start_sync_execution()
        .state_machine_arn(&sm)
        .input(json!({"a": -50}).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("StartSyncExecution (failing): {}", sdk_err(e)));
    assert_eq!(failed.status(), &SyncExecutionStatus::Failed, "{failed:?}");
    assert_eq!(failed.error(), Some("Negative"));
    assert_eq!(failed.cause(), Some("total below zero"));
    assert!(failed.output().is_none());
    // AWS reports outputDetails on a failed synchronous execution too.
    assert_eq!(
        failed.output_details().map(|d| d.included()),
        Some(true),
        "{failed:?}"
    );

    // An Express execution's context object has no RedriveCount (it cannot be redriven).
    let context = json!({"StartAt": "C", "States": {"C": {
        "Type": "Pass", "Parameters": {"execution.$": "$$.Execution"}, "End": true
    }}});
    let sm_context =
        create_machine_of_type(&client, "context", &context, StateMachineType::Express).await;
    let seen = client
        .start_sync_execution()
        .state_machine_arn(&sm_context)
        .send()
        .await
        .unwrap_or_else(|e| panic!("StartSyncExecution (context): {}", sdk_err(e)));
    let execution = parse_json("context output", seen.output())["execution"].clone();
    assert_eq!(execution["Id"], json!(seen.execution_arn()), "{execution}");
    assert!(execution.get("RedriveCount").is_none(), "{execution}");

    // A Standard machine cannot run synchronously.
    let standard = create_machine(&client, "slowpoke", &long_wait()).await;
    let refused = client
        .start_sync_execution()
        .state_machine_arn(&standard)
        .send()
        .await;
    expect_service_error!(
        "StartSyncExecution on a STANDARD machine",
        refused,
        StartSyncExecutionError::StateMachineTypeNotSupported(_)
    );
}

#[tokio::test]
async fn tags_round_trip() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
    let sm = client
        .create_state_machine()
        .name("tagged")
        .definition(long_wait().to_string())
        .role_arn(ROLE_ARN)
        .tags(tag("team", "core"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStateMachine with tags: {}", sdk_err(e)))
        .state_machine_arn()
        .to_owned();
    let list = |arn: String| {
        let client = client.clone();
        async move {
            let out = client
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await
                .unwrap_or_else(|e| panic!("ListTagsForResource: {}", sdk_err(e)));
            let mut tags: Vec<(String, String)> = out
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().unwrap_or_default().to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            tags.sort();
            tags
        }
    };
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(list(sm.clone()).await, pairs(&[("team", "core")]));

    client
        .tag_resource()
        .resource_arn(&sm)
        .tags(tag("env", "test"))
        .tags(tag("team", "platform"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("TagResource: {}", sdk_err(e)));
    assert_eq!(
        list(sm.clone()).await,
        pairs(&[("env", "test"), ("team", "platform")])
    );

    client
        .untag_resource()
        .resource_arn(&sm)
        .tag_keys("team")
        .tag_keys("absent")
        .send()
        .await
        .unwrap_or_else(|e| panic!("UntagResource: {}", sdk_err(e)));
    assert_eq!(list(sm.clone()).await, pairs(&[("env", "test")]));

    let missing = format!(
        "arn:aws:states:us-east-1:{}:stateMachine:nope",
        server.account_id()
    );
    let r = client
        .tag_resource()
        .resource_arn(&missing)
        .tags(tag("a", "b"))
        .send()
        .await;
    expect_service_error!(
        "TagResource on a missing machine",
        r,
        TagResourceError::ResourceNotFound(_)
    );
}

#[tokio::test]
async fn typed_errors() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let account = server.account_id().to_owned();
    let mut failures: Vec<String> = Vec::new();
    let missing_sm = format!("arn:aws:states:us-east-1:{account}:stateMachine:missing");

    let e = check_service_error!(
        failures,
        "DescribeStateMachine of a missing machine",
        client
            .describe_state_machine()
            .state_machine_arn(&missing_sm)
            .send()
            .await,
        DescribeStateMachineError::StateMachineDoesNotExist(_)
    );
    if let Some(e) = e {
        if !e.message().is_some_and(|m| m.contains(&missing_sm)) {
            failures.push(format!(
                "StateMachineDoesNotExist message {:?} does not name the ARN",
                e.message()
            ));
        }
    }

    check_service_error!(
        failures,
        "DescribeStateMachine with a malformed ARN",
        client
            .describe_state_machine()
            .state_machine_arn("not-an-arn")
            .send()
            .await,
        DescribeStateMachineError::InvalidArn(_)
    );

    let e = check_service_error!(
        failures,
        "CreateStateMachine with an invalid definition",
        client
            .create_state_machine()
            .name("bad-def")
            .definition(
                json!({"StartAt": "Nowhere", "States": {"A": {"Type": "Succeed"}}}).to_string()
            )
            .role_arn(ROLE_ARN)
            .send()
            .await,
        CreateStateMachineError::InvalidDefinition(_)
    );
    if let Some(e) = e {
        if e.message().is_none_or(str::is_empty) {
            failures.push("InvalidDefinition without a message".into());
        }
    }

    check_service_error!(
        failures,
        "CreateStateMachine with a definition that is not JSON",
        client
            .create_state_machine()
            .name("not-json")
            .definition("{")
            .role_arn(ROLE_ARN)
            .send()
            .await,
        CreateStateMachineError::InvalidDefinition(_)
    );

    check_service_error!(
        failures,
        "CreateStateMachine with a bad name",
        client
            .create_state_machine()
            .name("bad name!")
            .definition(long_wait().to_string())
            .role_arn(ROLE_ARN)
            .send()
            .await,
        CreateStateMachineError::InvalidName(_)
    );

    check_service_error!(
        failures,
        "CreateStateMachine with a malformed role ARN",
        client
            .create_state_machine()
            .name("bad-role")
            .definition(long_wait().to_string())
            .role_arn("not-a-role")
            .send()
            .await,
        CreateStateMachineError::InvalidArn(_)
    );

    check_service_error!(
        failures,
        "StartExecution of a missing machine",
        client
            .start_execution()
            .state_machine_arn(&missing_sm)
            .send()
            .await,
        StartExecutionError::StateMachineDoesNotExist(_)
    );

    let sm = create_machine(&client, "errs", &long_wait()).await;
    check_service_error!(
        failures,
        "StartExecution with input that is not JSON",
        client
            .start_execution()
            .state_machine_arn(&sm)
            .input("{not json")
            .send()
            .await,
        StartExecutionError::InvalidExecutionInput(_)
    );
    check_service_error!(
        failures,
        "StartExecution with a bad name",
        client
            .start_execution()
            .state_machine_arn(&sm)
            .name("no spaces allowed")
            .send()
            .await,
        StartExecutionError::InvalidName(_)
    );

    let missing_exec = format!("arn:aws:states:us-east-1:{account}:execution:errs:nope");
    check_service_error!(
        failures,
        "DescribeExecution of a missing execution",
        client
            .describe_execution()
            .execution_arn(&missing_exec)
            .send()
            .await,
        DescribeExecutionError::ExecutionDoesNotExist(_)
    );
    check_service_error!(
        failures,
        "DescribeExecution with a state machine ARN",
        client.describe_execution().execution_arn(&sm).send().await,
        DescribeExecutionError::InvalidArn(_)
    );

    let express = create_machine_of_type(
        &client,
        "express-list",
        &json!({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}),
        StateMachineType::Express,
    )
    .await;
    check_service_error!(
        failures,
        "ListExecutions of an EXPRESS machine",
        client
            .list_executions()
            .state_machine_arn(&express)
            .send()
            .await,
        ListExecutionsError::StateMachineTypeNotSupported(_)
    );
    assert!(
        failures.is_empty(),
        "typed errors:\n  {}",
        failures.join("\n  ")
    );
}

#[tokio::test]
async fn region_comes_from_the_client() {
    let server = Server::memory(SCALE);
    let eu = server.client_in("eu-west-1");
    let us = server.client();
    let def = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}});
    let arn = create_machine(&eu, "regional", &def).await;
    assert_eq!(
        arn,
        format!(
            "arn:aws:states:eu-west-1:{}:stateMachine:regional",
            server.account_id()
        )
    );
    let exec = start(&eu, &arn, Some("r1"), &json!({"v": true})).await;
    assert_eq!(
        exec,
        format!(
            "arn:aws:states:eu-west-1:{}:execution:regional:r1",
            server.account_id()
        )
    );
    let d = wait_done(&eu, &exec, DONE_WITHIN).await;
    assert_eq!(d.status(), &ExecutionStatus::Succeeded);
    assert_eq!(parse_json("output", d.output()), json!({"v": true}));

    let in_us = us
        .list_state_machines()
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListStateMachines: {}", sdk_err(e)));
    assert!(
        in_us.state_machines().is_empty(),
        "us-east-1 lists eu-west-1 machines: {in_us:?}"
    );
    let in_eu = eu
        .list_state_machines()
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListStateMachines: {}", sdk_err(e)));
    assert_eq!(in_eu.state_machines().len(), 1);
}
