//! Task states end to end through aws-sdk-sfn against a `stepwise serve` child process:
//! heartbeats and timeouts on activities and callbacks, retry exhaustion into Catch with
//! `$$.State.RetryCount`, many concurrent activity workers, nested executions (all four
//! patterns, failing and stopped children), a `kill -9` while tasks and retries are pending,
//! and resources the engine cannot run.
//!
//! Every wait is a poll with a deadline; every table collects its problems and fails with
//! all of them and the server's log.

use crate::common;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sfn::error::DisplayErrorContext;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use common::{
    assert_history_well_formed, create_activity, create_machine, event_types, history,
    history_problems, parse_json, start, wait_done, Server,
};
use serde_json::{json, Value};

/// How long anything may take before a test gives up.
const DONE_WITHIN: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Polls GetActivityTask until a task arrives (at most `DONE_WITHIN`, even though one poll
/// may park for 60 s); returns (token, input).
async fn take_task(client: &aws_sdk_sfn::Client, activity: &str, worker: &str) -> (String, Value) {
    let poll = async {
        loop {
            let task = client
                .get_activity_task()
                .activity_arn(activity)
                .worker_name(worker)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetActivityTask: {}", DisplayErrorContext(&e)));
            if let Some(token) = task.task_token().filter(|t| !t.is_empty()) {
                return (token.to_owned(), parse_json("activity input", task.input()));
            }
        }
    };
    tokio::time::timeout(DONE_WITHIN, poll)
        .await
        .unwrap_or_else(|_| panic!("no task on {activity} within {DONE_WITHIN:?}"))
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

async fn send_failure(client: &aws_sdk_sfn::Client, token: &str, error: &str, cause: &str) {
    client
        .send_task_failure()
        .task_token(token)
        .error(error)
        .cause(cause)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SendTaskFailure: {}", DisplayErrorContext(&e)));
}

fn count(events: &[HistoryEvent], event_type: &str) -> usize {
    events
        .iter()
        .filter(|e| e.r#type().as_str() == event_type)
        .count()
}

fn of_type<'a>(events: &'a [HistoryEvent], event_type: &str) -> Vec<&'a HistoryEvent> {
    events
        .iter()
        .filter(|e| e.r#type().as_str() == event_type)
        .collect()
}

/// Polls the history until it has at least `n` events of `event_type`.
async fn wait_for_events(
    client: &aws_sdk_sfn::Client,
    arn: &str,
    event_type: &str,
    n: usize,
) -> Vec<HistoryEvent> {
    let until = Instant::now() + DONE_WITHIN;
    loop {
        let events = history(client, arn).await;
        if count(&events, event_type) >= n {
            return events;
        }
        assert!(
            Instant::now() < until,
            "{arn}: fewer than {n} {event_type} within {DONE_WITHIN:?}; events {:?}",
            event_types(&events)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn output(d: &DescribeExecutionOutput) -> Value {
    parse_json("execution output", d.output())
}

fn status_line(d: &DescribeExecutionOutput) -> String {
    format!(
        "{:?} error={:?} cause={:?} output={:?}",
        d.status(),
        d.error(),
        d.cause(),
        d.output()
    )
}

/// Waits for `exec` to end and checks that it succeeded (else shows how it ended and the
/// server's log).
async fn wait_succeeded(
    server: &Server,
    client: &aws_sdk_sfn::Client,
    exec: &str,
) -> DescribeExecutionOutput {
    let d = wait_done(client, exec, DONE_WITHIN).await;
    assert_eq!(
        *d.status(),
        ExecutionStatus::Succeeded,
        "{}\n{}",
        status_line(&d),
        server.logs()
    );
    d
}

/// The (error, cause) of a Task/Activity failure or time-out event.
fn failure_of(e: &HistoryEvent) -> (Option<String>, Option<String>) {
    let pair = |error: Option<&str>, cause: Option<&str>| {
        (error.map(str::to_owned), cause.map(str::to_owned))
    };
    if let Some(d) = e.activity_timed_out_event_details() {
        return pair(d.error(), d.cause());
    }
    if let Some(d) = e.activity_failed_event_details() {
        return pair(d.error(), d.cause());
    }
    if let Some(d) = e.task_timed_out_event_details() {
        return pair(d.error(), d.cause());
    }
    if let Some(d) = e.task_failed_event_details() {
        return pair(d.error(), d.cause());
    }
    (None, None)
}

/// Fails with every problem and the server's log.
fn report(server: &Server, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}\n{}",
        problems.len(),
        problems.join("\n  "),
        server.logs()
    );
}

/// Waits for every spawned case; a panicking case becomes a problem.
async fn join_cases(mut set: tokio::task::JoinSet<Vec<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(p) => problems.extend(p),
            Err(e) => match e.try_into_panic() {
                Ok(panic) => problems.push(format!(
                    "case panicked: {}",
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default()
                )),
                Err(e) => problems.push(format!("case did not finish: {e}")),
            },
        }
    }
    problems
}

/// A machine of one Task state `Work` (plus `extra` members), ending there.
fn one_task(resource: &str, extra: Value) -> Value {
    let mut task = json!({ "Type": "Task", "Resource": resource, "End": true });
    if let (Some(t), Some(x)) = (task.as_object_mut(), extra.as_object()) {
        for (k, v) in x {
            t.insert(k.clone(), v.clone());
        }
    }
    json!({ "StartAt": "Work", "States": { "Work": task } })
}

/// The parameters of the (first) TaskScheduled event.
fn scheduled_parameters(events: &[HistoryEvent]) -> Value {
    let scheduled = of_type(events, "TaskScheduled");
    let details = scheduled
        .first()
        .and_then(|e| e.task_scheduled_event_details())
        .unwrap_or_else(|| panic!("no TaskScheduled details in {:?}", event_types(events)));
    parse_json("TaskScheduled parameters", Some(details.parameters()))
}

// ---------------------------------------------------------------------------
// 1. Heartbeats
// ---------------------------------------------------------------------------

/// A pass-through child for `.waitForTaskToken` parents: the test answers the token itself.
fn noop_child() -> Value {
    json!({ "StartAt": "Nothing", "States": { "Nothing": { "Type": "Pass", "End": true } } })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Waiting {
    /// An activity task the test takes with GetActivityTask.
    Activity,
    /// `states:startExecution.waitForTaskToken`: the token comes from TaskScheduled.
    Callback,
}

struct HeartbeatCase {
    name: &'static str,
    waiting: Waiting,
    /// `HeartbeatSeconds` as a literal, or via `HeartbeatSecondsPath` from the input.
    by_path: bool,
    /// Whether the worker heartbeats (then succeeds) or goes silent.
    heartbeats: bool,
}

const HEARTBEAT_SCALE: f64 = 0.5;
/// `HeartbeatSeconds` in the definitions: 2 s scaled by 0.5 = 1 s of real time.
const HEARTBEAT_SECONDS: u64 = 2;
const HEARTBEAT_REAL: Duration = Duration::from_secs(1);

async fn heartbeat_case(
    client: aws_sdk_sfn::Client,
    case: HeartbeatCase,
    activity: String,
    child: String,
) -> Vec<String> {
    let mut problems = Vec::new();
    let name = case.name;
    let resource = match case.waiting {
        Waiting::Activity => activity.clone(),
        Waiting::Callback => "arn:aws:states:::states:startExecution.waitForTaskToken".into(),
    };
    let mut extra = json!({ "TimeoutSeconds": 120 });
    if case.by_path {
        extra["HeartbeatSecondsPath"] = json!("$.hb");
    } else {
        extra["HeartbeatSeconds"] = json!(HEARTBEAT_SECONDS);
    }
    if case.waiting == Waiting::Callback {
        extra["Parameters"] = json!({
            "StateMachineArn": child,
            "Input": { "token.$": "$$.Task.Token" },
        });
    }
    let sm = create_machine(&client, &format!("hb-{name}"), &one_task(&resource, extra)).await;
    let exec = start(&client, &sm, None, &json!({ "hb": HEARTBEAT_SECONDS })).await;

    let token = match case.waiting {
        Waiting::Activity => take_task(&client, &activity, name).await.0,
        Waiting::Callback => {
            let events = wait_for_events(&client, &exec, "TaskStarted", 1).await;
            let params = scheduled_parameters(&events);
            match params["Input"]["token"].as_str() {
                Some(t) => t.to_owned(),
                None => {
                    return vec![format!(
                        "{name}: no token in the TaskScheduled parameters {params}"
                    )]
                }
            }
        }
    };
    let got_token = Instant::now();

    let prefix = match case.waiting {
        Waiting::Activity => "Activity",
        Waiting::Callback => "Task",
    };
    // A silent activity times out with States.HeartbeatTimeout; a service integration's
    // `.waitForTaskToken` with States.Timeout, as AWS records it (the services corpus).
    let heartbeat_error = match case.waiting {
        Waiting::Activity => "States.HeartbeatTimeout",
        Waiting::Callback => "States.Timeout",
    };
    if case.heartbeats {
        // Four heartbeat periods with a heartbeat every quarter period.
        let until = got_token + HEARTBEAT_REAL * 4;
        let mut sent = 0;
        while Instant::now() < until {
            tokio::time::sleep(HEARTBEAT_REAL / 4).await;
            if let Err(e) = client.send_task_heartbeat().task_token(&token).send().await {
                problems.push(format!(
                    "{name}: heartbeat #{sent} after {:?} refused: {}",
                    got_token.elapsed(),
                    DisplayErrorContext(&e)
                ));
                return problems;
            }
            sent += 1;
        }
        send_success(&client, &token, &json!({ "case": name })).await;
        let d = wait_done(&client, &exec, DONE_WITHIN).await;
        if *d.status() != ExecutionStatus::Succeeded || output(&d) != json!({ "case": name }) {
            problems.push(format!(
                "{name}: expected SUCCEEDED with the worker's output after {sent} heartbeats, got {}",
                status_line(&d)
            ));
        }
        let events = history(&client, &exec).await;
        let timed_out = format!("{prefix}TimedOut");
        if count(&events, &timed_out) != 0 {
            problems.push(format!("{name}: {timed_out} despite heartbeats"));
        }
        problems.extend(
            history_problems(&events)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
    } else {
        let d = wait_done(&client, &exec, DONE_WITHIN).await;
        let elapsed = got_token.elapsed();
        if *d.status() != ExecutionStatus::Failed || d.error() != Some(heartbeat_error) {
            problems.push(format!(
                "{name}: expected FAILED {heartbeat_error}, got {}",
                status_line(&d)
            ));
        }
        // The heartbeat clock starts when the task starts, at most a little before the
        // token reached the test.
        if elapsed + Duration::from_millis(300) < HEARTBEAT_REAL {
            problems.push(format!(
                "{name}: timed out after {elapsed:?}, before the heartbeat period {HEARTBEAT_REAL:?}"
            ));
        }
        let events = history(&client, &exec).await;
        let timed_out = of_type(&events, &format!("{prefix}TimedOut"));
        match timed_out.as_slice() {
            [e] => {
                let (error, _) = failure_of(e);
                if error.as_deref() != Some(heartbeat_error) {
                    problems.push(format!(
                        "{name}: {prefix}TimedOut has error {error:?}, expected {heartbeat_error}"
                    ));
                }
            }
            _ => problems.push(format!(
                "{name}: expected one {prefix}TimedOut, events {:?}",
                event_types(&events)
            )),
        }
        problems.extend(
            history_problems(&events)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
        // The token is dead now: AWS answers TaskTimedOut to both calls.
        match client.send_task_heartbeat().task_token(&token).send().await {
            Err(e) if e.as_service_error().is_some_and(|s| s.is_task_timed_out()) => {}
            other => problems.push(format!(
                "{name}: heartbeat after the time-out answered {other:?}, expected TaskTimedOut"
            )),
        }
        match client
            .send_task_success()
            .task_token(&token)
            .output("{}")
            .send()
            .await
        {
            Err(e) if e.as_service_error().is_some_and(|s| s.is_task_timed_out()) => {}
            other => problems.push(format!(
                "{name}: success after the time-out answered {other:?}, expected TaskTimedOut"
            )),
        }
    }
    problems
}

/// Activity and `.waitForTaskToken` tasks with HeartbeatSeconds(Path): a silent worker times
/// out (States.HeartbeatTimeout for an activity, States.Timeout for a `.waitForTaskToken`
/// integration, as AWS records them); a worker that heartbeats keeps its task alive for
/// several periods and then succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heartbeat_timeout_and_heartbeats_keep_tasks_alive() {
    let server = Server::memory(HEARTBEAT_SCALE);
    let client = server.client();
    let child = create_machine(&client, "hb-child", &noop_child()).await;
    let cases = [
        HeartbeatCase {
            name: "activity-silent",
            waiting: Waiting::Activity,
            by_path: false,
            heartbeats: false,
        },
        HeartbeatCase {
            name: "activity-heartbeating",
            waiting: Waiting::Activity,
            by_path: true,
            heartbeats: true,
        },
        HeartbeatCase {
            name: "callback-silent",
            waiting: Waiting::Callback,
            by_path: true,
            heartbeats: false,
        },
        HeartbeatCase {
            name: "callback-heartbeating",
            waiting: Waiting::Callback,
            by_path: false,
            heartbeats: true,
        },
    ];
    let mut set = tokio::task::JoinSet::new();
    for case in cases {
        // One activity per case, so that each case's worker takes its own task.
        let activity = create_activity(&client, &format!("hb-{}", case.name)).await;
        set.spawn(heartbeat_case(
            client.clone(),
            case,
            activity,
            child.clone(),
        ));
    }
    let problems = join_cases(set).await;
    report(&server, &problems);
}

// ---------------------------------------------------------------------------
// 2. Task timeout, retries and Catch
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Worker {
    /// Takes every attempt and answers SendTaskFailure(`Worker.Boom`, `attempt N`).
    Fails,
    /// Takes every attempt and never answers.
    Silent,
}

struct RetryCase {
    name: &'static str,
    /// Task members besides Resource/Parameters/End.
    extra: Value,
    worker: Worker,
    /// Attempts the worker takes (ActivityScheduled events).
    attempts: usize,
    /// The failure/time-out event each attempt ends with.
    attempt_event: &'static str,
    attempt_error: &'static str,
    /// Expected end: `Ok(output)` or `Err(error)` for a failed execution.
    expect: Result<Value, &'static str>,
}

const RETRY_SCALE: f64 = 0.25;

fn retry_cases() -> Vec<RetryCase> {
    let catch_all =
        json!([{ "ErrorEquals": ["States.ALL"], "ResultPath": "$.caught", "Next": "Caught" }]);
    vec![
        RetryCase {
            name: "timeout-uncaught",
            extra: json!({ "TimeoutSeconds": 2 }),
            worker: Worker::Silent,
            attempts: 1,
            attempt_event: "ActivityTimedOut",
            attempt_error: "States.Timeout",
            expect: Err("States.Timeout"),
        },
        RetryCase {
            name: "failures-exhaust-retries-into-catch",
            extra: json!({
                "Retry": [{ "ErrorEquals": ["Worker.Boom"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 1.0 }],
                "Catch": catch_all,
            }),
            worker: Worker::Fails,
            attempts: 3,
            attempt_event: "ActivityFailed",
            attempt_error: "Worker.Boom",
            expect: Ok(json!({
                "n": 7,
                "caught": { "Error": "Worker.Boom", "Cause": "attempt 2" },
                "after": "caught",
            })),
        },
        RetryCase {
            name: "timeouts-exhaust-retries-into-catch",
            extra: json!({
                "TimeoutSeconds": 2,
                "Retry": [{ "ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 2 }],
                "Catch": catch_all,
            }),
            worker: Worker::Silent,
            attempts: 3,
            attempt_event: "ActivityTimedOut",
            attempt_error: "States.Timeout",
            expect: Ok(json!({
                "n": 7,
                "caught": { "Error": "States.Timeout" },
                "after": "caught",
            })),
        },
        RetryCase {
            name: "retrier-for-another-error-does-not-retry",
            extra: json!({
                "Retry": [{ "ErrorEquals": ["Other.Error"], "IntervalSeconds": 1, "MaxAttempts": 5 }],
            }),
            worker: Worker::Fails,
            attempts: 1,
            attempt_event: "ActivityFailed",
            attempt_error: "Worker.Boom",
            expect: Err("Worker.Boom"),
        },
    ]
}

async fn retry_case(client: aws_sdk_sfn::Client, case: RetryCase, activity: String) -> Vec<String> {
    let name = case.name;
    let mut problems = Vec::new();
    let mut task = json!({
        "Type": "Task",
        "Resource": activity,
        "Parameters": { "retry.$": "$$.State.RetryCount", "n.$": "$.n" },
        "ResultPath": "$.result",
        "End": true,
    });
    if let (Some(t), Some(x)) = (task.as_object_mut(), case.extra.as_object()) {
        for (k, v) in x {
            t.insert(k.clone(), v.clone());
        }
    }
    let has_catch = task.get("Catch").is_some();
    let mut definition = json!({ "StartAt": "Work", "States": { "Work": task } });
    if has_catch {
        definition["States"]["Caught"] =
            json!({ "Type": "Pass", "Result": "caught", "ResultPath": "$.after", "End": true });
    }
    let sm = create_machine(&client, &format!("retry-{name}"), &definition).await;
    let exec = start(&client, &sm, None, &json!({ "n": 7 })).await;

    let mut retry_counts = Vec::new();
    for attempt in 0..case.attempts {
        let (token, input) = take_task(&client, &activity, name).await;
        if input["n"] != json!(7) {
            problems.push(format!("{name}: attempt {attempt} got input {input}"));
        }
        retry_counts.push(input["retry"].clone());
        if let Worker::Fails = case.worker {
            send_failure(
                &client,
                &token,
                "Worker.Boom",
                &format!("attempt {attempt}"),
            )
            .await;
        }
    }
    let want_counts: Vec<Value> = (0..case.attempts).map(|i| json!(i)).collect();
    if retry_counts != want_counts {
        problems.push(format!(
            "{name}: $$.State.RetryCount per attempt was {retry_counts:?}, expected {want_counts:?}"
        ));
    }

    let d = wait_done(&client, &exec, DONE_WITHIN).await;
    match &case.expect {
        Ok(want) => {
            // A time-out has no cause: the engine writes "Cause": "" into the error output
            // (AWS's exact choice, "" or absent, is unverified), so both are accepted here.
            let mut got = d.output().map(|o| parse_json("output", Some(o)));
            if let Some(caught) = got
                .as_mut()
                .and_then(|g| g.get_mut("caught"))
                .and_then(Value::as_object_mut)
            {
                if caught.get("Cause") == Some(&json!("")) {
                    caught.remove("Cause");
                }
            }
            if *d.status() != ExecutionStatus::Succeeded || got.as_ref() != Some(want) {
                problems.push(format!(
                    "{name}: expected SUCCEEDED with {want}, got {}",
                    status_line(&d)
                ));
            }
        }
        Err(error) => {
            if *d.status() != ExecutionStatus::Failed || d.error() != Some(error) {
                problems.push(format!(
                    "{name}: expected FAILED {error}, got {}",
                    status_line(&d)
                ));
            }
        }
    }
    let events = history(&client, &exec).await;
    let scheduled = count(&events, "ActivityScheduled");
    if scheduled != case.attempts {
        problems.push(format!(
            "{name}: {scheduled} ActivityScheduled, expected {}; events {:?}",
            case.attempts,
            event_types(&events)
        ));
    }
    let ends = of_type(&events, case.attempt_event);
    if ends.len() != case.attempts {
        problems.push(format!(
            "{name}: {} {}, expected {}",
            ends.len(),
            case.attempt_event,
            case.attempts
        ));
    }
    for e in ends {
        let (error, _) = failure_of(e);
        if error.as_deref() != Some(case.attempt_error) {
            problems.push(format!(
                "{name}: {} has error {error:?}, expected {}",
                case.attempt_event, case.attempt_error
            ));
        }
    }
    problems.extend(
        history_problems(&events)
            .into_iter()
            .map(|p| format!("{name}: {p}")),
    );
    problems
}

/// TimeoutSeconds on an activity fails it with States.Timeout; retries run with
/// $$.State.RetryCount 0, 1, 2 and, once exhausted, Catch gets AWS's {"Error","Cause"}.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn task_timeout_and_retry_exhaustion_into_catch() {
    let server = Server::memory(RETRY_SCALE);
    let client = server.client();
    let mut set = tokio::task::JoinSet::new();
    for case in retry_cases() {
        let activity = create_activity(&client, &format!("retry-{}", case.name)).await;
        set.spawn(retry_case(client.clone(), case, activity));
    }
    let problems = join_cases(set).await;
    report(&server, &problems);
}

/// A worker that answers a timed-out activity task is told TaskTimedOut; so is one that
/// answers twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_and_repeated_answers_are_task_timed_out() {
    let server = Server::memory(RETRY_SCALE);
    let client = server.client();
    let activity = create_activity(&client, "late").await;
    let sm = create_machine(
        &client,
        "late",
        &one_task(&activity, json!({ "TimeoutSeconds": 1 })),
    )
    .await;

    // Late: the task timed out before the answer.
    let exec = start(&client, &sm, None, &json!({})).await;
    let (token, _) = take_task(&client, &activity, "late").await;
    let d = wait_done(&client, &exec, DONE_WITHIN).await;
    assert_eq!(d.error(), Some("States.Timeout"), "{}", status_line(&d));
    let late = client
        .send_task_failure()
        .task_token(&token)
        .error("Too.Late")
        .send()
        .await;
    assert!(
        matches!(&late, Err(e) if e.as_service_error().is_some_and(|s| s.is_task_timed_out())),
        "late SendTaskFailure answered {late:?}"
    );

    // Repeated: the second answer finds the task done.
    let exec = start(&client, &sm, None, &json!({})).await;
    let (token, _) = take_task(&client, &activity, "late").await;
    send_success(&client, &token, &json!({ "first": true })).await;
    let again = client
        .send_task_success()
        .task_token(&token)
        .output(r#"{"second":true}"#)
        .send()
        .await;
    assert!(
        matches!(&again, Err(e) if e.as_service_error().is_some_and(|s| s.is_task_timed_out())),
        "second SendTaskSuccess answered {again:?}"
    );
    let d = wait_done(&client, &exec, DONE_WITHIN).await;
    assert_eq!(output(&d), json!({ "first": true }), "{}", status_line(&d));
}

/// A task token cannot be made up: one built as older builds built them (base64 of the task's
/// scheduled-event id and the execution ARN, both readable in the history) or a real one
/// altered is `InvalidToken` and changes nothing. The real one still ends the task after a
/// restart: its seal's key is the store's (SQLite file, or PostgreSQL in that suite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_refused_and_real_ones_survive_a_restart() {
    use base64::Engine as _;
    let mut server = Server::sqlite(1.0);
    let client = server.client();
    let activity = create_activity(&client, "sealed").await;
    let sm = create_machine(&client, "sealed", &one_task(&activity, json!({}))).await;
    let exec = start(&client, &sm, None, &json!({})).await;
    let (token, _) = take_task(&client, &activity, "sealed").await;
    let events = history(&client, &exec).await;
    let scheduled = of_type(&events, "ActivityScheduled");
    let id = scheduled
        .first()
        .map(|e| e.id())
        .expect("ActivityScheduled");
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{id}#{exec}"));
    let mut altered = token.clone().into_bytes();
    let at = altered.len() - 10;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ASCII");
    let refused = |server: &Server| {
        let client = server.client();
        let (forged, altered) = (forged.clone(), altered.clone());
        async move {
            for (what, bad) in [("forged", forged), ("altered", altered)] {
                let answer = common::try_succeed(&client, &bad, &json!({ "by": what })).await;
                assert_eq!(answer, Err("InvalidToken".into()), "{what} token {bad}");
                let heartbeat = client.send_task_heartbeat().task_token(&bad).send().await;
                assert!(
                    matches!(&heartbeat, Err(e) if e.as_service_error().is_some_and(|s| s.is_invalid_token())),
                    "{what} token's heartbeat answered {heartbeat:?}"
                );
            }
        }
    };
    refused(&server).await;
    server.restart();
    refused(&server).await;
    let client = server.client();
    send_success(&client, &token, &json!({ "by": "worker" })).await;
    let d = wait_done(&client, &exec, DONE_WITHIN).await;
    assert_eq!(output(&d), json!({ "by": "worker" }), "{}", status_line(&d));
}

// ---------------------------------------------------------------------------
// 3. Many workers
// ---------------------------------------------------------------------------

/// 8 concurrent pollers and 50 executions of one activity task each: every task is delivered
/// exactly once and every execution succeeds with its own worker's answer.
///
/// (GetActivityTask with nothing queued answering no token is not checked here: the long
/// poll is a fixed 60 s and the engine has no flag to shorten it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn many_workers_each_task_delivered_exactly_once() {
    const WORKERS: usize = 8;
    const EXECUTIONS: usize = 50;
    let server = Server::memory(0.1);
    let client = server.client();
    let activity = create_activity(&client, "crowd").await;
    let sm = create_machine(
        &client,
        "crowd",
        &one_task(&activity, json!({ "Parameters": { "i.$": "$.i" } })),
    )
    .await;

    // (token, input, worker) of every delivery.
    let delivered: Arc<Mutex<Vec<(String, Value, usize)>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let client = server.client();
        let activity = activity.clone();
        let delivered = delivered.clone();
        workers.push(tokio::spawn(async move {
            loop {
                let task = client
                    .get_activity_task()
                    .activity_arn(&activity)
                    .worker_name(format!("worker-{w}"))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("GetActivityTask: {}", DisplayErrorContext(&e)));
                let Some(token) = task.task_token().filter(|t| !t.is_empty()) else {
                    continue;
                };
                let input = parse_json("activity input", task.input());
                delivered.lock().expect("deliveries lock").push((
                    token.to_owned(),
                    input.clone(),
                    w,
                ));
                send_success(&client, token, &json!({ "i": input["i"], "worker": w })).await;
            }
        }));
    }

    let mut executions = Vec::new();
    for i in 0..EXECUTIONS {
        executions.push((i, start(&client, &sm, None, &json!({ "i": i })).await));
    }
    let mut problems = Vec::new();
    for (i, exec) in &executions {
        let d = wait_done(&client, exec, DONE_WITHIN).await;
        let out = d.output().map(|o| parse_json("output", Some(o)));
        if *d.status() != ExecutionStatus::Succeeded
            || out.as_ref().map(|o| o["i"].clone()) != Some(json!(i))
        {
            problems.push(format!("execution {i}: {}", status_line(&d)));
        }
    }
    // Let any duplicate delivery that is still in flight arrive before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for w in &workers {
        w.abort();
    }
    for w in workers {
        if let Err(e) = w.await {
            if !e.is_cancelled() {
                problems.push(format!("a worker failed: {e}"));
            }
        }
    }

    let delivered = delivered.lock().expect("deliveries lock").clone();
    let tokens: HashSet<&str> = delivered.iter().map(|(t, _, _)| t.as_str()).collect();
    if delivered.len() != EXECUTIONS || tokens.len() != EXECUTIONS {
        problems.push(format!(
            "{} deliveries with {} distinct tokens, expected {EXECUTIONS} of each",
            delivered.len(),
            tokens.len()
        ));
    }
    let mut per_input: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, input, _) in &delivered {
        *per_input
            .entry(input["i"].as_i64().unwrap_or(-1))
            .or_default() += 1;
    }
    let want: BTreeMap<i64, usize> = (0..EXECUTIONS as i64).map(|i| (i, 1)).collect();
    if per_input != want {
        problems.push(format!("deliveries per input: {per_input:?}"));
    }
    let busy: HashSet<usize> = delivered.iter().map(|(_, _, w)| *w).collect();
    if busy.len() < 2 {
        problems.push(format!("only workers {busy:?} got tasks"));
    }

    // The worker that took a task is the one the history names.
    for (i, exec) in executions.iter().take(5) {
        let events = history(&client, exec).await;
        assert_history_well_formed(&format!("execution {i}"), &events);
        let worker = delivered
            .iter()
            .find(|(_, input, _)| input["i"] == json!(i))
            .map(|(_, _, w)| format!("worker-{w}"));
        let started: Vec<Option<String>> = of_type(&events, "ActivityStarted")
            .iter()
            .map(|e| {
                e.activity_started_event_details()
                    .and_then(|d| d.worker_name())
                    .map(str::to_owned)
            })
            .collect();
        if started != vec![worker.clone()] {
            problems.push(format!(
                "execution {i}: ActivityStarted workerName {started:?}, expected {worker:?}"
            ));
        }
    }
    report(&server, &problems);
}

// ---------------------------------------------------------------------------
// 4. Nested executions
// ---------------------------------------------------------------------------

fn echo_child() -> Value {
    json!({
        "StartAt": "Echo",
        "States": { "Echo": { "Type": "Pass", "Parameters": { "echo.$": "$" }, "End": true } },
    })
}

fn failing_child() -> Value {
    json!({
        "StartAt": "Break",
        "States": { "Break": { "Type": "Fail", "Error": "Child.Broke", "Cause": "on purpose" } },
    })
}

fn waiting_child() -> Value {
    json!({
        "StartAt": "Hold",
        "States": { "Hold": { "Type": "Wait", "Seconds": 600, "End": true } },
    })
}

fn parent(resource: &str, child: &str) -> Value {
    one_task(
        resource,
        json!({ "Parameters": { "StateMachineArn": child, "Input": { "x": 1 } } }),
    )
}

#[derive(Debug, Clone, Copy)]
enum Nested {
    /// Succeeds at once with ExecutionArn and StartDate; the child runs on its own.
    Started,
    /// Waits for the child; Output as a JSON string.
    SyncText,
    /// Waits for the child; Output as JSON.
    SyncJson,
    /// The child fails: the parent's task fails with States.TaskFailed.
    ChildFailed,
}

/// startExecution, `.sync`, `.sync:2` and a failing `.sync` child: AWS's output shapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nested_execution_patterns() {
    let server = Server::memory(0.1);
    let client = server.client();
    let echo = create_machine(&client, "echo-child", &echo_child()).await;
    let broken = create_machine(&client, "broken-child", &failing_child()).await;
    let cases = [
        (
            "request-response",
            "arn:aws:states:::states:startExecution",
            &echo,
            Nested::Started,
        ),
        (
            "sync",
            "arn:aws:states:::states:startExecution.sync",
            &echo,
            Nested::SyncText,
        ),
        (
            "sync2",
            "arn:aws:states:::states:startExecution.sync:2",
            &echo,
            Nested::SyncJson,
        ),
        (
            "sync-failing",
            "arn:aws:states:::states:startExecution.sync",
            &broken,
            Nested::ChildFailed,
        ),
        (
            "sync2-failing",
            "arn:aws:states:::states:startExecution.sync:2",
            &broken,
            Nested::ChildFailed,
        ),
    ];
    let child_prefix = |child: &str| child.replace(":stateMachine:", ":execution:") + ":";
    let mut problems = Vec::new();
    for (name, resource, child, expect) in cases {
        let sm = create_machine(&client, &format!("parent-{name}"), &parent(resource, child)).await;
        let exec = start(&client, &sm, None, &json!({})).await;
        let d = wait_done(&client, &exec, DONE_WITHIN).await;
        let events = history(&client, &exec).await;
        problems.extend(
            history_problems(&events)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
        let submitted = count(&events, "TaskSubmitted");
        let want_submitted = usize::from(!matches!(expect, Nested::Started));
        if submitted != want_submitted {
            problems.push(format!(
                "{name}: {submitted} TaskSubmitted, expected {want_submitted}; events {:?}",
                event_types(&events)
            ));
        }
        if matches!(expect, Nested::ChildFailed) {
            if *d.status() != ExecutionStatus::Failed || d.error() != Some("States.TaskFailed") {
                problems.push(format!(
                    "{name}: expected FAILED States.TaskFailed, got {}",
                    status_line(&d)
                ));
                continue;
            }
            let cause: Value = serde_json::from_str(d.cause().unwrap_or_default())
                .unwrap_or_else(|_| json!({ "unparsed": d.cause() }));
            for (key, want) in [
                ("Status", json!("FAILED")),
                ("Error", json!("Child.Broke")),
                ("Cause", json!("on purpose")),
            ] {
                if cause[key] != want {
                    problems.push(format!(
                        "{name}: cause {key} = {}, expected {want}",
                        cause[key]
                    ));
                }
            }
            let arn = cause["ExecutionArn"].as_str().unwrap_or_default();
            if !arn.starts_with(&child_prefix(child)) {
                problems.push(format!("{name}: cause ExecutionArn {arn:?}"));
            }
            // DescribeExecution's redrive fields (AWS since November 2023): a failed child
            // can be redriven.
            let redrive = (&cause["RedriveCount"], &cause["RedriveStatus"]);
            if redrive != (&json!(0), &json!("REDRIVABLE"))
                || cause.get("RedriveStatusReason").is_some()
            {
                problems.push(format!("{name}: redrive fields of the cause {cause}"));
            }
            continue;
        }
        if *d.status() != ExecutionStatus::Succeeded {
            problems.push(format!(
                "{name}: expected SUCCEEDED, got {}",
                status_line(&d)
            ));
            continue;
        }
        let out = output(&d);
        let child_arn = out["ExecutionArn"].as_str().unwrap_or_default().to_owned();
        if !child_arn.starts_with(&child_prefix(child)) {
            problems.push(format!(
                "{name}: ExecutionArn {:?} in {out}",
                out["ExecutionArn"]
            ));
            continue;
        }
        if out.get("StartDate").is_none_or(Value::is_null) {
            problems.push(format!("{name}: no StartDate in {out}"));
        }
        let child_done = wait_done(&client, &child_arn, DONE_WITHIN).await;
        if *child_done.status() != ExecutionStatus::Succeeded {
            problems.push(format!("{name}: child {}", status_line(&child_done)));
        }
        let want_output = json!({ "echo": { "x": 1 } });
        match expect {
            Nested::Started => {
                if out.get("Output").is_some() || out.get("Status").is_some() {
                    problems.push(format!(
                        "{name}: request-response output describes the end: {out}"
                    ));
                }
            }
            Nested::SyncText => {
                let text = out["Output"].as_str().map(serde_json::from_str::<Value>);
                if !matches!(&text, Some(Ok(v)) if *v == want_output) {
                    problems.push(format!(
                        "{name}: Output should be the text of {want_output}: {out}"
                    ));
                }
                if out["Input"]
                    .as_str()
                    .map(serde_json::from_str::<Value>)
                    .and_then(Result::ok)
                    != Some(json!({ "x": 1 }))
                {
                    problems.push(format!("{name}: Input should be text: {out}"));
                }
            }
            Nested::SyncJson => {
                if out["Output"] != want_output || out["Input"] != json!({ "x": 1 }) {
                    problems.push(format!("{name}: Output/Input should be JSON: {out}"));
                }
            }
            Nested::ChildFailed => {}
        }
        if !matches!(expect, Nested::Started) && out["Status"] != json!("SUCCEEDED") {
            problems.push(format!("{name}: Status {} in {out}", out["Status"]));
        }
        // DescribeExecution's redrive fields, as AWS returns them since November 2023.
        let redrive = [
            ("RedriveCount", json!(0)),
            ("RedriveStatus", json!("NOT_REDRIVABLE")),
            (
                "RedriveStatusReason",
                json!("Execution is SUCCEEDED and cannot be redriven"),
            ),
        ];
        for (key, want) in redrive {
            let got = out.get(key);
            let ok = match expect {
                Nested::Started => got.is_none(),
                _ => got == Some(&want),
            };
            if !ok {
                problems.push(format!("{name}: {key} {got:?} in {out}"));
            }
        }
    }
    report(&server, &problems);
}

/// StopExecution on a parent stops its running `.sync` / `.sync:2` child.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_the_parent_aborts_a_sync_child() {
    let server = Server::memory(0.1);
    let client = server.client();
    let child = create_machine(&client, "slow-child", &waiting_child()).await;
    let mut problems = Vec::new();
    for (name, resource) in [
        ("sync", "arn:aws:states:::states:startExecution.sync"),
        ("sync2", "arn:aws:states:::states:startExecution.sync:2"),
    ] {
        let sm = create_machine(
            &client,
            &format!("stopper-{name}"),
            &parent(resource, &child),
        )
        .await;
        let exec = start(&client, &sm, None, &json!({})).await;
        let events = wait_for_events(&client, &exec, "TaskSubmitted", 1).await;
        let submitted = of_type(&events, "TaskSubmitted")[0]
            .task_submitted_event_details()
            .and_then(|d| d.output())
            .map(|o| parse_json("TaskSubmitted output", Some(o)))
            .unwrap_or(Value::Null);
        let Some(child_arn) = submitted["ExecutionArn"].as_str().map(str::to_owned) else {
            problems.push(format!(
                "{name}: no ExecutionArn in TaskSubmitted output {submitted}"
            ));
            continue;
        };
        let running = client
            .describe_execution()
            .execution_arn(&child_arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeExecution child: {}", DisplayErrorContext(&e)));
        if *running.status() != ExecutionStatus::Running {
            problems.push(format!(
                "{name}: child not running before the stop: {}",
                status_line(&running)
            ));
        }
        client
            .stop_execution()
            .execution_arn(&exec)
            .send()
            .await
            .unwrap_or_else(|e| panic!("StopExecution: {}", DisplayErrorContext(&e)));
        let d = wait_done(&client, &exec, DONE_WITHIN).await;
        if *d.status() != ExecutionStatus::Aborted {
            problems.push(format!("{name}: parent {}", status_line(&d)));
        }
        // The child has 60 s (scaled) left to wait: it must be stopped, not finish.
        let c = wait_done(&client, &child_arn, Duration::from_secs(10)).await;
        if *c.status() != ExecutionStatus::Aborted {
            problems.push(format!("{name}: child {}", status_line(&c)));
        }
        let child_events = history(&client, &child_arn).await;
        problems.extend(
            history_problems(&child_events)
                .into_iter()
                .map(|p| format!("{name} child: {p}")),
        );
    }
    report(&server, &problems);
}

/// A `.waitForTaskToken` child that answers its parent through
/// `arn:aws:states:::aws-sdk:sfn:sendTaskSuccess` with the token it was given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_task_token_child_answers_through_aws_sdk_sfn() {
    let server = Server::memory(0.1);
    let client = server.client();
    let child = create_machine(
        &client,
        "answering-child",
        &one_task(
            "arn:aws:states:::aws-sdk:sfn:sendTaskSuccess",
            json!({
                "Parameters": {
                    "TaskToken.$": "$.token",
                    "Output.$": "States.JsonToString($.payload)",
                },
            }),
        ),
    )
    .await;
    let sm = create_machine(
        &client,
        "callback-parent",
        &one_task(
            "arn:aws:states:::states:startExecution.waitForTaskToken",
            json!({
                "Parameters": {
                    "StateMachineArn": child,
                    "Input": {
                        "token.$": "$$.Task.Token",
                        "payload": { "from": "child", "value.$": "$.value" },
                    },
                },
                "TimeoutSeconds": 100,
            }),
        ),
    )
    .await;
    let exec = start(&client, &sm, None, &json!({ "value": 42 })).await;
    let d = wait_succeeded(&server, &client, &exec).await;
    assert_eq!(output(&d), json!({ "from": "child", "value": 42 }));
    let events = history(&client, &exec).await;
    assert_history_well_formed("callback parent", &events);
    assert_eq!(
        count(&events, "TaskSucceeded"),
        1,
        "{:?}",
        event_types(&events)
    );

    let children = client
        .list_executions()
        .state_machine_arn(&child)
        .send()
        .await
        .unwrap_or_else(|e| panic!("ListExecutions: {}", DisplayErrorContext(&e)));
    let statuses: Vec<_> = children
        .executions()
        .iter()
        .map(|e| e.status().clone())
        .collect();
    assert_eq!(
        statuses,
        vec![ExecutionStatus::Succeeded],
        "the child's executions"
    );
}

/// `aws-sdk:sfn:startExecution` and `describeExecution` render dates as the SDK integrations
/// do on AWS: ISO-8601 strings, not the API's epoch seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_sdk_sfn_results_carry_iso_dates() {
    let server = Server::memory(0.1);
    let client = server.client();
    let target = create_machine(
        &client,
        "sdk-target",
        &json!({ "StartAt": "P", "States": { "P": { "Type": "Pass", "End": true } } }),
    )
    .await;
    let definition = json!({
        "StartAt": "Start",
        "States": {
            "Start": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sfn:startExecution",
                "Parameters": { "StateMachineArn": target, "Input": { "k": "v" } },
                "ResultPath": "$.started",
                "Next": "Describe",
            },
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sfn:describeExecution",
                "Parameters": { "ExecutionArn.$": "$.started.ExecutionArn" },
                "ResultSelector": { "StartDate.$": "$.StartDate" },
                "ResultPath": "$.described",
                "End": true,
            },
        },
    });
    let sm = create_machine(&client, "sdk-dates", &definition).await;
    let exec = start(&client, &sm, None, &json!({})).await;
    let d = wait_succeeded(&server, &client, &exec).await;
    let out = output(&d);
    let iso = |v: &Value| {
        v.as_str().is_some_and(|s| {
            s.len() == 24 && s.ends_with('Z') && asl::timestamp::parse(s).is_some()
        })
    };
    for date in [&out["started"]["StartDate"], &out["described"]["StartDate"]] {
        assert!(iso(date), "not an ISO-8601 date: {date} in {out}");
    }
}

/// Step Functions called from a workflow fails as AWS names it: `Sfn.<Exception>` with the
/// Java SDK v2's message form for `aws-sdk:sfn:*`, `StepFunctions.<Exception>` with the v1
/// form for the optimized `states:startExecution`; each is caught like any task error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfn_integration_errors_carry_aws_names() {
    let server = Server::memory(0.1);
    let client = server.client();
    let missing_execution = "arn:aws:states:us-east-1:123456789012:execution:nope:nope";
    let missing_machine = "arn:aws:states:us-east-1:123456789012:stateMachine:nope";
    let calls = [
        (
            "arn:aws:states:::aws-sdk:sfn:sendTaskSuccess",
            json!({ "TaskToken": "not-a-token", "Output": "{}" }),
            "Sfn.InvalidTokenException",
            ", Status Code: 400, Request ID: ",
        ),
        (
            "arn:aws:states:::aws-sdk:sfn:describeExecution",
            json!({ "ExecutionArn": missing_execution }),
            "Sfn.ExecutionDoesNotExistException",
            "(Service: Sfn, Status Code: 400, Request ID: ",
        ),
        (
            "arn:aws:states:::states:startExecution",
            json!({ "StateMachineArn": missing_machine }),
            "StepFunctions.StateMachineDoesNotExistException",
            "(Service: AWSStepFunctions; Status Code: 400; Error Code: StateMachineDoesNotExist; Request ID: ",
        ),
    ];
    let mut states = serde_json::Map::new();
    for (i, (resource, parameters, _, _)) in calls.iter().enumerate() {
        let next = if i + 1 == calls.len() {
            "Done".to_owned()
        } else {
            format!("Call{}", i + 1)
        };
        states.insert(
            format!("Call{i}"),
            json!({
                "Type": "Task", "Resource": resource, "Parameters": parameters,
                "Catch": [{ "ErrorEquals": ["States.ALL"], "ResultPath": format!("$.e{i}"), "Next": next }],
                "ResultPath": format!("$.e{i}"),
                "Next": next,
            }),
        );
    }
    states.insert("Done".into(), json!({ "Type": "Succeed" }));
    let definition = json!({ "StartAt": "Call0", "States": states });
    let sm = create_machine(&client, "sfn-errors", &definition).await;
    let exec = start(&client, &sm, None, &json!({})).await;
    let d = wait_succeeded(&server, &client, &exec).await;
    let out = output(&d);
    for (i, (resource, _, error, cause_part)) in calls.iter().enumerate() {
        let caught = &out[format!("e{i}")];
        assert_eq!(caught["Error"], json!(error), "{resource}: {caught}");
        let cause = caught["Cause"].as_str().unwrap_or_default();
        assert!(
            cause.contains(cause_part) && cause.ends_with(')'),
            "{resource}: {cause}"
        );
    }
}

// ---------------------------------------------------------------------------
// 5. Restart with tasks and retries pending
// ---------------------------------------------------------------------------

/// kill -9 with an activity task not yet taken, one taken by a worker, and a Retry interval
/// running; after the restart the untaken task reaches a new poll, the retry fires on time
/// and reschedules, and the taken task's token still completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_while_tasks_and_retries_are_pending() {
    const SCALE: f64 = 0.1;
    /// Retry IntervalSeconds: 50 s scaled = 5 s of real time.
    const INTERVAL: u64 = 50;
    let mut server = Server::sqlite(SCALE);
    let client = server.client();
    let untaken = create_activity(&client, "rs-untaken").await;
    let retried = create_activity(&client, "rs-retried").await;
    let taken = create_activity(&client, "rs-taken").await;
    let params = json!({ "Parameters": { "retry.$": "$$.State.RetryCount", "who.$": "$.who" } });
    let mut retry_extra = params.clone();
    retry_extra["Retry"] =
        json!([{ "ErrorEquals": ["Worker.Again"], "IntervalSeconds": INTERVAL, "MaxAttempts": 1 }]);
    let sm_untaken =
        create_machine(&client, "rs-untaken", &one_task(&untaken, params.clone())).await;
    let sm_retried = create_machine(&client, "rs-retried", &one_task(&retried, retry_extra)).await;
    let sm_taken = create_machine(&client, "rs-taken", &one_task(&taken, params)).await;

    let exec_untaken = start(&client, &sm_untaken, None, &json!({ "who": "untaken" })).await;
    let exec_retried = start(&client, &sm_retried, None, &json!({ "who": "retried" })).await;
    let exec_taken = start(&client, &sm_taken, None, &json!({ "who": "taken" })).await;

    let (taken_token, _) = take_task(&client, &taken, "before-crash").await;
    wait_for_events(&client, &exec_taken, "ActivityStarted", 1).await;
    let (first_attempt, input) = take_task(&client, &retried, "before-crash").await;
    assert_eq!(input["retry"], json!(0), "first attempt input {input}");
    send_failure(&client, &first_attempt, "Worker.Again", "first attempt").await;
    wait_for_events(&client, &exec_retried, "ActivityFailed", 1).await;
    let failed_at = Instant::now();
    wait_for_events(&client, &exec_untaken, "ActivityScheduled", 1).await;

    server.kill9();
    server.restart();
    let client = server.client();

    let (token, input) = take_task(&client, &untaken, "after-crash").await;
    assert_eq!(
        input,
        json!({ "retry": 0, "who": "untaken" }),
        "untaken task input"
    );
    send_success(&client, &token, &json!({ "done": "untaken" })).await;

    let (token, input) = take_task(&client, &retried, "after-crash").await;
    let waited = failed_at.elapsed();
    assert_eq!(
        input,
        json!({ "retry": 1, "who": "retried" }),
        "retried task input"
    );
    let interval = Duration::from_secs_f64(INTERVAL as f64 * SCALE);
    assert!(
        waited + Duration::from_millis(500) >= interval,
        "the retry came {waited:?} after the failure, before its interval {interval:?}"
    );
    send_success(&client, &token, &json!({ "done": "retried" })).await;

    send_success(&client, &taken_token, &json!({ "done": "taken" })).await;

    let mut problems = Vec::new();
    for (name, exec, scheduled, started) in [
        ("untaken", &exec_untaken, 1, 1),
        ("retried", &exec_retried, 2, 2),
        ("taken", &exec_taken, 1, 1),
    ] {
        let d = wait_done(&client, exec, DONE_WITHIN).await;
        if *d.status() != ExecutionStatus::Succeeded || output(&d) != json!({ "done": name }) {
            problems.push(format!("{name}: {}", status_line(&d)));
        }
        let events = history(&client, exec).await;
        problems.extend(
            history_problems(&events)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
        for (event_type, want) in [
            ("ActivityScheduled", scheduled),
            ("ActivityStarted", started),
            ("ActivitySucceeded", 1),
        ] {
            let n = count(&events, event_type);
            if n != want {
                problems.push(format!(
                    "{name}: {n} {event_type}, expected {want}; events {:?}",
                    event_types(&events)
                ));
            }
        }
    }
    report(&server, &problems);
}

// ---------------------------------------------------------------------------
// 6. Resources the engine cannot run
// ---------------------------------------------------------------------------

/// An unsupported, unmocked service integration fails the task at once with States.Runtime
/// naming the resource; like on AWS, States.ALL neither retries nor catches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_resources_fail_fast_with_states_runtime() {
    let server = Server::memory(0.1);
    let client = server.client();
    let mut problems = Vec::new();
    // Parameters the action has where a shipped model says which (an unknown one is refused
    // at creation), anything where none does.
    let anything = json!({ "QueueUrl": "http://nowhere", "MessageBody": "hi" });
    for (name, resource, parameters) in [
        (
            "emr-sync",
            "arn:aws:states:::elasticmapreduce:createCluster.sync",
            anything.clone(),
        ),
        (
            "sagemaker-callback",
            "arn:aws:states:::sagemaker:createTrainingJob.waitForTaskToken",
            anything.clone(),
        ),
        (
            "sdk-no-model",
            "arn:aws:states:::aws-sdk:nosuchservice:listThings",
            anything,
        ),
        (
            "sdk-sfn-unknown",
            "arn:aws:states:::aws-sdk:sfn:listStateMachines",
            json!({ "MaxResults": 10 }),
        ),
    ] {
        let named = resource.trim_end_matches(".waitForTaskToken");
        let extra = json!({
            "Parameters": parameters,
            "TimeoutSeconds": 600,
            "Retry": [{ "ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3 }],
            "Catch": [{ "ErrorEquals": ["States.ALL"], "Next": "Caught" }],
        });
        let mut definition = one_task(resource, extra);
        definition["States"]["Caught"] = json!({ "Type": "Succeed" });
        let sm = create_machine(&client, &format!("unsupported-{name}"), &definition).await;
        let began = Instant::now();
        let exec = start(&client, &sm, None, &json!({})).await;
        let d = wait_done(&client, &exec, Duration::from_secs(10)).await;
        let took = began.elapsed();
        if *d.status() != ExecutionStatus::Failed || d.error() != Some("States.Runtime") {
            problems.push(format!(
                "{name}: expected FAILED States.Runtime, got {}",
                status_line(&d)
            ));
        }
        if !d.cause().unwrap_or_default().contains(named) {
            problems.push(format!(
                "{name}: the cause does not name {named}: {:?}",
                d.cause()
            ));
        }
        if took > Duration::from_secs(5) {
            problems.push(format!("{name}: took {took:?} to fail"));
        }
        let events = history(&client, &exec).await;
        problems.extend(
            history_problems(&events)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
        if count(&events, "TaskScheduled") != 1 {
            problems.push(format!(
                "{name}: States.Runtime was retried: {:?}",
                event_types(&events)
            ));
        }
    }
    report(&server, &problems);
}

/// A Task whose activity ARN names no activity. Recorded behaviour (AWS's is unverified):
/// CreateStateMachine accepts it; the execution waits on an ActivityScheduled nobody can take
/// (GetActivityTask answers ActivityDoesNotExist) until its TimeoutSeconds; once the activity
/// is created, a worker takes the task that was scheduled before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_that_does_not_exist() {
    let server = Server::memory(0.1);
    let client = server.client();
    let ghost = format!(
        "arn:aws:states:us-east-1:{}:activity:never-created",
        server.account_id()
    );
    let created = client
        .create_state_machine()
        .name("ghost-activity")
        .definition(one_task(&ghost, json!({ "TimeoutSeconds": 20 })).to_string())
        .role_arn(common::ROLE_ARN)
        .send()
        .await;
    let sm = match created {
        Ok(o) => o.state_machine_arn().to_owned(),
        Err(e) => panic!(
            "CreateStateMachine refused an unknown activity: {}",
            DisplayErrorContext(&e)
        ),
    };
    let exec = start(&client, &sm, None, &json!({})).await;
    let events = wait_for_events(&client, &exec, "ActivityScheduled", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = client
        .describe_execution()
        .execution_arn(&exec)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeExecution: {}", DisplayErrorContext(&e)));
    assert_eq!(
        *d.status(),
        ExecutionStatus::Running,
        "{} events {:?}",
        status_line(&d),
        event_types(&events)
    );
    // GetActivityTask on it is ActivityDoesNotExist.
    let polled = client.get_activity_task().activity_arn(&ghost).send().await;
    assert!(
        matches!(&polled, Err(e) if e.as_service_error().is_some_and(|s| s.is_activity_does_not_exist())),
        "GetActivityTask on a missing activity answered {polled:?}"
    );
    // The TimeoutSeconds (2 s real) still ends it.
    let d = wait_done(&client, &exec, DONE_WITHIN).await;
    assert_eq!(d.error(), Some("States.Timeout"), "{}", status_line(&d));

    // Scheduled before the activity exists, taken after it was created.
    let exec = start(&client, &sm, None, &json!({ "late": true })).await;
    wait_for_events(&client, &exec, "ActivityScheduled", 1).await;
    let created = create_activity(&client, "never-created").await;
    assert_eq!(created, ghost);
    let (token, input) = take_task(&client, &ghost, "late-worker").await;
    assert_eq!(input, json!({ "late": true }));
    send_success(&client, &token, &json!({ "ok": true })).await;
    wait_succeeded(&server, &client, &exec).await;

    // Deleted after workers polled it: polling is refused again.
    client
        .delete_activity()
        .activity_arn(&ghost)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteActivity: {}", DisplayErrorContext(&e)));
    let polled = client.get_activity_task().activity_arn(&ghost).send().await;
    assert!(
        matches!(&polled, Err(e) if e.as_service_error().is_some_and(|s| s.is_activity_does_not_exist())),
        "GetActivityTask on a deleted activity answered {polled:?}"
    );
}
