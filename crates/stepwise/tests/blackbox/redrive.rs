//! `RedriveExecution` end to end: aws-sdk-sfn against a `stepwise serve` child process, and
//! boto3 + the AWS CLI through `tests/python/test_redrive_cli.py`.
//!
//! The specification is `docs/redrive.md`. Assertions that rest on one of its
//! **[GUESS]** answers are marked ★ so they can be revised with the guess.

use crate::common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sfn::error::DisplayErrorContext;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::operation::redrive_execution::RedriveExecutionError;
use aws_sdk_sfn::primitives::{DateTime, DateTimeFormat};
use aws_sdk_sfn::types::{
    ExecutionListItem, ExecutionRedriveFilter, ExecutionRedriveStatus, ExecutionStatus,
    HistoryEvent, StateMachineType,
};
use common::{
    create_machine, create_machine_of_type, event_types, history, parse_json, start, wait_done,
    Options, Server, StoreKind,
};
use serde_json::{json, Value};

const DONE_WITHIN: Duration = Duration::from_secs(20);
const RUNNING_REASON: &str = "Execution is RUNNING and cannot be redriven";
const SUCCEEDED_REASON: &str = "Execution is SUCCEEDED and cannot be redriven";
const WINDOW_REASON: &str = "Execution redrivable period exceeded";
const HISTORY_REASON: &str = "Execution history event limit exceeded";
const MAX_TIME_REASON: &str = "Execution has exceeded the max execution time";
const DELETING_REASON: &str = "State machine is in DELETING status";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A SQLite server with `wait_time_scale` and further `serve` flags.
fn server(wait_time_scale: f64, args: &[&str]) -> Server {
    Server::start_with_args(
        Options {
            store: StoreKind::Sqlite,
            wait_time_scale,
            ..Options::default()
        },
        args,
    )
}

fn ms(t: &DateTime) -> i64 {
    t.to_millis().expect("timestamp in millisecond range")
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// An ISO 8601 timestamp in whole seconds, at least `ahead` from now.
fn timestamp_in(ahead: Duration) -> (String, i64) {
    let secs = (now_ms() + ahead.as_millis() as i64) / 1000 + 1;
    let text = DateTime::from_secs(secs)
        .fmt(DateTimeFormat::DateTime)
        .expect("formatting a timestamp");
    (text, secs * 1000)
}

/// The modeled error a RedriveExecution answered, by name.
fn variant(e: &RedriveExecutionError) -> &'static str {
    match e {
        RedriveExecutionError::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
        RedriveExecutionError::ExecutionLimitExceeded(_) => "ExecutionLimitExceeded",
        RedriveExecutionError::ExecutionNotRedrivable(_) => "ExecutionNotRedrivable",
        RedriveExecutionError::InvalidArn(_) => "InvalidArn",
        RedriveExecutionError::ValidationException(_) => "ValidationException",
        _ => "unmodeled",
    }
}

/// RedriveExecution: `Ok(redriveDate)` or `Err((modeled error name, message, display))`.
async fn try_redrive(
    client: &aws_sdk_sfn::Client,
    arn: &str,
    token: Option<&str>,
) -> Result<DateTime, (&'static str, String, String)> {
    match client
        .redrive_execution()
        .execution_arn(arn)
        .set_client_token(token.map(str::to_owned))
        .send()
        .await
    {
        Ok(out) => Ok(*out.redrive_date()),
        Err(e) => {
            let shown = format!("{}", DisplayErrorContext(&e));
            let service = e.into_service_error();
            let message = service.meta().message().unwrap_or_default().to_owned();
            Err((variant(&service), message, shown))
        }
    }
}

async fn redrive(client: &aws_sdk_sfn::Client, arn: &str, token: Option<&str>) -> DateTime {
    try_redrive(client, arn, token)
        .await
        .unwrap_or_else(|(_, _, shown)| panic!("RedriveExecution {arn} (token {token:?}): {shown}"))
}

/// Expects RedriveExecution to fail with `code` (and `message`, when given).
async fn expect_redrive_error(
    client: &aws_sdk_sfn::Client,
    arn: &str,
    token: Option<&str>,
    code: &str,
    message: Option<&str>,
) {
    match try_redrive(client, arn, token).await {
        Ok(date) => panic!("RedriveExecution {arn}: expected {code}, got redriveDate {date:?}"),
        Err((got, got_message, shown)) => {
            assert_eq!(got, code, "RedriveExecution {arn}: {shown}");
            if let Some(m) = message {
                assert_eq!(got_message, m, "RedriveExecution {arn} message");
            }
        }
    }
}

async fn describe(client: &aws_sdk_sfn::Client, arn: &str) -> DescribeExecutionOutput {
    client
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeExecution {arn}: {}", DisplayErrorContext(&e)))
}

/// Waits until the execution is closed with `status`.
async fn closed(
    client: &aws_sdk_sfn::Client,
    arn: &str,
    status: ExecutionStatus,
) -> DescribeExecutionOutput {
    let d = wait_done(client, arn, DONE_WITHIN).await;
    assert_eq!(
        *d.status(),
        status,
        "{arn}: error {:?} cause {:?}; history {:?}",
        d.error(),
        d.cause(),
        event_types(&history(client, arn).await)
    );
    d
}

/// Asserts `redriveStatus` / `redriveStatusReason`.
fn assert_redrive_status(d: &DescribeExecutionOutput, reason: Option<&str>) {
    let want = if reason.is_some() {
        ExecutionRedriveStatus::NotRedrivable
    } else {
        ExecutionRedriveStatus::Redrivable
    };
    assert_eq!(
        (d.redrive_status(), d.redrive_status_reason()),
        (Some(&want), reason),
        "{} ({:?})",
        d.execution_arn(),
        d.status()
    );
}

/// Polls the history until an event of `event_type` appears.
async fn wait_for_event(client: &aws_sdk_sfn::Client, arn: &str, event_type: &str) {
    let until = Instant::now() + DONE_WITHIN;
    loop {
        let events = history(client, arn).await;
        if events.iter().any(|e| e.r#type().as_str() == event_type) {
            return;
        }
        assert!(
            Instant::now() < until,
            "no {event_type} in {arn} after {DONE_WITHIN:?}: {:?}",
            event_types(&events)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count(events: &[HistoryEvent], event_type: &str) -> usize {
    events
        .iter()
        .filter(|e| e.r#type().as_str() == event_type)
        .count()
}

/// The events after the `n`-th `ExecutionRedriven` (1-based); panics if there is none.
fn after_redrive(events: &[HistoryEvent], n: usize) -> &[HistoryEvent] {
    let at = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.r#type().as_str() == "ExecutionRedriven")
        .nth(n - 1)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no ExecutionRedriven #{n} in {:?}", event_types(events)));
    &events[at + 1..]
}

/// `(name, input)` of a `*StateEntered` event.
fn entered(e: &HistoryEvent) -> (String, Value) {
    let d = e.state_entered_event_details().unwrap_or_else(|| {
        panic!(
            "event {} ({}) has no stateEnteredEventDetails",
            e.id(),
            e.r#type().as_str()
        )
    });
    (
        d.name().to_owned(),
        parse_json("stateEnteredEventDetails.input", d.input()),
    )
}

/// The first `*StateEntered` event of `events`.
fn first_entered(events: &[HistoryEvent]) -> &HistoryEvent {
    events
        .iter()
        .find(|e| e.r#type().as_str().ends_with("StateEntered"))
        .unwrap_or_else(|| panic!("no StateEntered in {:?}", event_types(events)))
}

/// The first event of `event_type` in `events`.
fn find<'a>(events: &'a [HistoryEvent], event_type: &str) -> &'a HistoryEvent {
    events
        .iter()
        .find(|e| e.r#type().as_str() == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {:?}", event_types(events)))
}

/// Events the event after names the event before (AWS's quirk).
const SKIPPED_BY_NEXT: [&str; 5] = [
    "MapIterationSucceeded",
    "MapIterationFailed",
    "MapIterationAborted",
    "MapStateSucceeded",
    "ParallelStateSucceeded",
];

const TERMINAL: [&str; 4] = [
    "ExecutionSucceeded",
    "ExecutionFailed",
    "ExecutionAborted",
    "ExecutionTimedOut",
];

/// History numbering across redrives: ids 1..=n without gaps; one `ExecutionStarted`, first;
/// every terminal event but the last is followed by an `ExecutionRedriven` and every
/// `ExecutionRedriven` follows a terminal event; the redrive counts are 1, 2, ...;
/// `previousEventId` is the id before, except 0 for the first `*StateEntered` and for
/// `ExecutionAborted` (AWS), any earlier id for `ExecutionRedriven` (★ §4.4 leaves it open),
/// and also the id before that after a Map iteration ends or a Map/Parallel succeeds (AWS: the
/// next event may name the event before that one, [`SKIPPED_BY_NEXT`]; the conformance corpus
/// checks exactly when).
pub(crate) fn redriven_history_problems(events: &[HistoryEvent]) -> Vec<String> {
    let mut problems = Vec::new();
    let types = event_types(events);
    let mut seen_entered = false;
    let mut redrives = 0;
    for (i, e) in events.iter().enumerate() {
        let t = types[i].as_str();
        let want_id = i as i64 + 1;
        if e.id() != want_id {
            problems.push(format!(
                "event #{i} ({t}) has id {}, expected {want_id}",
                e.id()
            ));
        }
        let is_entered = t.ends_with("StateEntered");
        let want_prev = if (is_entered && !seen_entered)
            || t == "ExecutionAborted"
            || t == "ExecutionStarted"
        {
            Some(0)
        } else if t == "ExecutionRedriven"
            || (i > 0
                && SKIPPED_BY_NEXT.contains(&types[i - 1].as_str())
                && e.previous_event_id() == e.id() - 2)
        {
            None
        } else {
            Some(e.id() - 1)
        };
        seen_entered |= is_entered;
        match want_prev {
            Some(p) if e.previous_event_id() != p => problems.push(format!(
                "event {} ({t}) has previousEventId {}, expected {p}",
                e.id(),
                e.previous_event_id()
            )),
            None if e.previous_event_id() >= e.id() => problems.push(format!(
                "event {} ({t}) has previousEventId {} (not an earlier event)",
                e.id(),
                e.previous_event_id()
            )),
            _ => {}
        }
        if t == "ExecutionStarted" && i != 0 {
            problems.push(format!("ExecutionStarted at position {i}"));
        }
        if TERMINAL.contains(&t) && i + 1 < events.len() && types[i + 1] != "ExecutionRedriven" {
            problems.push(format!(
                "terminal event {} ({t}) is followed by {}, not ExecutionRedriven",
                e.id(),
                types[i + 1]
            ));
        }
        if t == "ExecutionRedriven" {
            redrives += 1;
            if i == 0 || !TERMINAL.contains(&types[i - 1].as_str()) {
                problems.push(format!(
                    "ExecutionRedriven {} does not follow a terminal event",
                    e.id()
                ));
            }
            let n = e
                .execution_redriven_event_details()
                .and_then(|d| d.redrive_count());
            if n != Some(redrives) {
                problems.push(format!(
                    "ExecutionRedriven {} has redriveCount {n:?}, expected {redrives}",
                    e.id()
                ));
            }
        }
    }
    if types.first().map(String::as_str) != Some("ExecutionStarted") {
        problems.push("the history does not start with ExecutionStarted".into());
    }
    problems
}

pub(crate) fn assert_redriven_history(context: &str, events: &[HistoryEvent]) {
    let problems = redriven_history_problems(events);
    assert!(
        problems.is_empty(),
        "{context}: malformed history:\n  {}\nevents: {:?}",
        problems.join("\n  "),
        event_types(events)
    );
}

/// The redrive counts of the `ExecutionRedriven` events.
fn redriven_counts(events: &[HistoryEvent]) -> Vec<Option<i32>> {
    events
        .iter()
        .filter(|e| e.r#type().as_str() == "ExecutionRedriven")
        .map(|e| {
            e.execution_redriven_event_details()
                .and_then(|d| d.redrive_count())
        })
        .collect()
}

/// Asserts that redrive `n` re-entered `state` with the input recorded on its last entry
/// before that redrive (★ §4.5: a fresh `*StateEntered`, right after `ExecutionRedriven`).
fn assert_reentered(events: &[HistoryEvent], n: usize, state: &str) {
    let redriven_at = events.len() - after_redrive(events, n).len() - 1;
    let recorded = events[..redriven_at]
        .iter()
        .rev()
        .find(|e| e.r#type().as_str().ends_with("StateEntered") && entered(e).0 == state)
        .unwrap_or_else(|| {
            panic!(
                "{state} was never entered before redrive {n}: {:?}",
                event_types(events)
            )
        });
    let after = after_redrive(events, n);
    let first = after.first().unwrap_or_else(|| {
        panic!(
            "nothing after ExecutionRedriven #{n}: {:?}",
            event_types(events)
        )
    });
    assert!(
        first.r#type().as_str().ends_with("StateEntered"),
        "after ExecutionRedriven #{n} comes {} (expected a StateEntered): {:?}",
        first.r#type().as_str(),
        event_types(events)
    );
    assert_eq!(
        first.r#type(),
        recorded.r#type(),
        "re-entry event type after redrive {n}"
    );
    assert_eq!(
        entered(first),
        entered(recorded),
        "state and input re-entered by redrive {n}"
    );
}

/// Waits for an activity task (GetActivityTask long-polls); returns (token, input).
async fn next_task(client: &aws_sdk_sfn::Client, activity: &str) -> (String, Value) {
    let until = Instant::now() + DONE_WITHIN;
    loop {
        let poll = client
            .get_activity_task()
            .activity_arn(activity)
            .worker_name("redrive-test-worker");
        let Ok(answer) = tokio::time::timeout(Duration::from_secs(30), poll.send()).await else {
            panic!("GetActivityTask {activity} did not answer within 30 s");
        };
        let out = answer
            .unwrap_or_else(|e| panic!("GetActivityTask {activity}: {}", DisplayErrorContext(&e)));
        if let Some(token) = out.task_token() {
            return (
                token.to_owned(),
                parse_json("activity task input", out.input()),
            );
        }
        assert!(
            Instant::now() < until,
            "no activity task on {activity} within {DONE_WITHIN:?}"
        );
    }
}

/// A worker: takes `failures` tasks and fails them with `Boom`, then (if `output` is given)
/// takes one more and succeeds it. Returns the inputs of the tasks it took.
async fn work(
    client: &aws_sdk_sfn::Client,
    activity: &str,
    failures: usize,
    output: Option<&Value>,
) -> Vec<Value> {
    let mut inputs = Vec::new();
    for _ in 0..failures {
        let (token, input) = next_task(client, activity).await;
        inputs.push(input);
        client
            .send_task_failure()
            .task_token(token)
            .error("Boom")
            .cause("the worker failed")
            .send()
            .await
            .unwrap_or_else(|e| panic!("SendTaskFailure: {}", DisplayErrorContext(&e)));
    }
    if let Some(output) = output {
        let (token, input) = next_task(client, activity).await;
        inputs.push(input);
        client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("SendTaskSuccess: {}", DisplayErrorContext(&e)));
    }
    inputs
}

/// A Pass state whose Parameters read `$$.Execution.RedriveTime`, which exists only after a
/// redrive ([DOC] §4.8): the state fails with `States.Runtime` on the first attempt and
/// succeeds on every redrive.
fn fails_until_redriven(next: &str) -> Value {
    json!({
        "Type": "Pass",
        "Parameters": {
            "count.$": "$$.Execution.RedriveCount",
            "time.$": "$$.Execution.RedriveTime",
            "start.$": "$$.Execution.StartTime"
        },
        "ResultPath": "$.ctx",
        "Next": next
    })
}

/// Ctx (fails until redriven) → Hold (Wait `hold_seconds`) → Done.
fn fails_then_waits(hold_seconds: u64) -> Value {
    json!({
        "StartAt": "Ctx",
        "States": {
            "Ctx": fails_until_redriven("Hold"),
            "Hold": {"Type": "Wait", "Seconds": hold_seconds, "Next": "Done"},
            "Done": {"Type": "Succeed"}
        }
    })
}

/// Pass → Fail.
fn pass_then_fail() -> Value {
    json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": {"prepared": true}, "ResultPath": "$.prep", "Next": "Broken"},
            "Broken": {"Type": "Fail", "Error": "Nope", "Cause": "always fails"}
        }
    })
}

// ---------------------------------------------------------------------------
// §4, §5: what a redrive re-runs
// ---------------------------------------------------------------------------

/// Pass → Task(activity) with Retry: the Task fails after exhausting its retries. Each redrive
/// re-enters the Task (not the Pass) with the recorded input and a full retry budget.
#[tokio::test]
async fn task_is_rerun_with_its_input_and_a_fresh_retry_budget() {
    const MAX_ATTEMPTS: usize = 2;
    let server = server(0.01, &[]);
    let client = server.client();
    let activity = client
        .create_activity()
        .name("redrive-worker")
        .send()
        .await
        .expect("CreateActivity")
        .activity_arn()
        .to_owned();
    let definition = json!({
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": {"step": 1}, "ResultPath": "$.prep", "Next": "Work"},
            "Work": {
                "Type": "Task",
                "Resource": activity,
                "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": MAX_ATTEMPTS, "IntervalSeconds": 1, "BackoffRate": 1.0}],
                "End": true
            }
        }
    });
    let sm = create_machine(&client, "task-retry", &definition).await;
    let input = json!({"order": 7});
    let exec = start(&client, &sm, Some("run"), &input).await;
    let state_input = json!({"order": 7, "prep": {"step": 1}});

    // First attempt: 1 + MaxAttempts failures.
    let inputs = work(&client, &activity, 1 + MAX_ATTEMPTS, None).await;
    assert!(inputs.iter().all(|i| *i == state_input), "{inputs:?}");
    let before = closed(&client, &exec, ExecutionStatus::Failed).await;
    assert_eq!(before.error(), Some("Boom"));
    assert_eq!(before.redrive_count(), Some(0));
    assert_eq!(before.redrive_date(), None);
    assert_redrive_status(&before, None);
    let events = history(&client, &exec).await;
    assert_eq!(count(&events, "ActivityScheduled"), 1 + MAX_ATTEMPTS);
    let recorded = events
        .iter()
        .find(|e| e.r#type().as_str() == "TaskStateEntered")
        .map(entered)
        .expect("TaskStateEntered");
    assert_eq!(recorded, ("Work".to_owned(), state_input.clone()));

    // Redrive 1: RUNNING again, the failure cleared, the same ARN, input and start date.
    let date1 = redrive(&client, &exec, None).await;
    let d = describe(&client, &exec).await;
    assert_eq!(*d.status(), ExecutionStatus::Running);
    assert_eq!(d.redrive_count(), Some(1));
    assert_eq!(d.redrive_date().map(ms), Some(ms(&date1)));
    assert_redrive_status(&d, Some(RUNNING_REASON));
    assert_eq!((d.error(), d.cause(), d.stop_date()), (None, None, None));
    assert_eq!(d.input().map(|i| parse_json("input", Some(i))), Some(input));
    assert_eq!(ms(d.start_date()), ms(before.start_date()));
    assert!(ms(&date1) >= ms(before.stop_date().expect("stopDate")));

    // The worker keeps failing: the Task is attempted 1 + MaxAttempts times again.
    let inputs = work(&client, &activity, 1 + MAX_ATTEMPTS, None).await;
    assert!(inputs.iter().all(|i| *i == state_input), "{inputs:?}");
    let again = closed(&client, &exec, ExecutionStatus::Failed).await;
    assert_eq!(again.redrive_count(), Some(1));
    let events = history(&client, &exec).await;
    assert_eq!(
        count(after_redrive(&events, 1), "ActivityScheduled"),
        1 + MAX_ATTEMPTS,
        "attempts after redrive 1: {:?}",
        event_types(&events)
    );
    assert_reentered(&events, 1, "Work");

    // Redrive 2: one more failure (retried), then success.
    let date2 = redrive(&client, &exec, None).await;
    assert!(ms(&date2) >= ms(&date1));
    let output = json!({"shipped": true});
    let inputs = work(&client, &activity, 1, Some(&output)).await;
    assert!(inputs.iter().all(|i| *i == state_input), "{inputs:?}");
    let done = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    assert_eq!(
        done.output().map(|o| parse_json("output", Some(o))),
        Some(output)
    );
    assert_eq!(done.redrive_count(), Some(2));
    assert_eq!(done.redrive_date().map(ms), Some(ms(&date2)));
    assert_redrive_status(&done, Some(SUCCEEDED_REASON));

    let events = history(&client, &exec).await;
    assert_redriven_history("task redriven twice", &events);
    assert_eq!(
        count(&events, "PassStateEntered"),
        1,
        "the Pass state must not run again"
    );
    assert_eq!(count(&events, "ExecutionStarted"), 1);
    assert_eq!(redriven_counts(&events), vec![Some(1), Some(2)]);
    assert_eq!(count(after_redrive(&events, 2), "ActivityScheduled"), 2);
    assert_reentered(&events, 2, "Work");
    // ★ §4.4 guesses ExecutionRedriven is stamped with the redrive date. The engine reads
    // the clock twice (redriveDate, then the event), so only closeness is asserted here.
    let redriven = find(&events, "ExecutionRedriven");
    let skew = ms(redriven.timestamp()) - ms(&date1);
    assert!(
        (-1..=50).contains(&skew),
        "ExecutionRedriven is {skew} ms after redriveDate"
    );
    // ★ §4.5: the re-entry points at ExecutionRedriven.
    let reentry = first_entered(after_redrive(&events, 1));
    assert_eq!(reentry.previous_event_id(), redriven.id());
}

/// A Fail state fails again on every redrive; the redrive count keeps growing.
#[tokio::test]
async fn fail_state_fails_again_on_each_redrive() {
    let server = server(0.1, &[]);
    let client = server.client();
    let sm = create_machine(&client, "fail-again", &pass_then_fail()).await;
    let exec = start(&client, &sm, None, &json!({"k": "v"})).await;
    closed(&client, &exec, ExecutionStatus::Failed).await;
    for n in 1..=2usize {
        let date = redrive(&client, &exec, None).await;
        let d = closed(&client, &exec, ExecutionStatus::Failed).await;
        assert_eq!((d.error(), d.cause()), (Some("Nope"), Some("always fails")));
        assert_eq!(d.redrive_count(), Some(n as i32));
        assert_eq!(d.redrive_date().map(ms), Some(ms(&date)));
        assert_redrive_status(&d, None);
        let events = history(&client, &exec).await;
        assert_redriven_history(&format!("Fail state after redrive {n}"), &events);
        assert_eq!(count(&events, "PassStateEntered"), 1);
        assert_eq!(count(&events, "FailStateEntered"), n + 1);
        assert_eq!(count(&events, "ExecutionFailed"), n + 1);
        assert_eq!(
            event_types(after_redrive(&events, n)),
            ["FailStateEntered", "ExecutionFailed"],
            "★ events after ExecutionRedriven #{n}"
        );
        assert_reentered(&events, n, "Broken");
        let failed = events.last().expect("events");
        let details = failed
            .execution_failed_event_details()
            .expect("executionFailedEventDetails");
        assert_eq!(
            (details.error(), details.cause()),
            (Some("Nope"), Some("always fails"))
        );
    }
    let events = history(&client, &exec).await;
    assert_eq!(redriven_counts(&events), vec![Some(1), Some(2)]);
}

/// How a time case's first attempt ends.
#[derive(Debug, Clone, Copy)]
enum Close {
    /// StopExecution once the Wait state was entered.
    Stop,
    /// The execution's own TimeoutSeconds.
    Timeout,
    /// A state's own failure (here a Task's TimeoutSeconds).
    Fails,
}

struct TimeCase {
    name: &'static str,
    definition: Value,
    input: Value,
    close: Close,
    /// Wall-clock time (epoch ms) to let pass before redriving.
    redrive_after: Option<i64>,
    /// Status after the redriven attempt.
    then: ExecutionStatus,
    /// Bounds on the time from ExecutionRedriven to the closing event (ms).
    min_ms: i64,
    max_ms: i64,
}

/// Scale of the time cases: `Seconds: 4` waits 1 s.
const TIME_SCALE: f64 = 0.25;

/// `activity` has no worker: a Task on it only ever times out.
fn time_cases(activity: &str) -> Vec<TimeCase> {
    let wait_then_succeed = |wait: Value, timeout: Option<u64>| {
        let mut wait = wait;
        wait["Next"] = json!("Done");
        wait["Type"] = json!("Wait");
        let mut d = json!({"StartAt": "W", "States": {"W": wait, "Done": {"Type": "Succeed"}}});
        if let Some(t) = timeout {
            d["TimeoutSeconds"] = json!(t);
        }
        d
    };
    let (soon, soon_ms) = timestamp_in(Duration::from_secs(3));
    let (later, later_ms) = timestamp_in(Duration::from_secs(4));
    vec![
        TimeCase {
            name: "ABORTED in a Wait with Seconds: the wait starts over",
            definition: wait_then_succeed(json!({"Seconds": 4}), None),
            input: json!({}),
            close: Close::Stop,
            redrive_after: None,
            then: ExecutionStatus::Succeeded,
            // 4 s scaled = 1 s.
            min_ms: 950,
            max_ms: 5000,
        },
        TimeCase {
            name: "ABORTED in a Wait whose Timestamp has passed: moves on at once",
            definition: wait_then_succeed(json!({"TimestampPath": "$.at"}), None),
            input: json!({"at": soon}),
            close: Close::Stop,
            redrive_after: Some(soon_ms + 300),
            then: ExecutionStatus::Succeeded,
            min_ms: 0,
            max_ms: 400,
        },
        TimeCase {
            name: "TIMED_OUT: the execution timeout restarts at the redrive",
            definition: wait_then_succeed(json!({"Seconds": 3600}), Some(2)),
            input: json!({}),
            close: Close::Timeout,
            // 6 s unscaled after the timeout: an un-restarted deadline would be long past.
            redrive_after: Some(now_ms() + 2000),
            then: ExecutionStatus::TimedOut,
            // TimeoutSeconds 2 scaled = 500 ms.
            min_ms: 450,
            max_ms: 3000,
        },
        TimeCase {
            name: "FAILED on a Task timeout: the Task's TimeoutSeconds restarts at the redrive",
            definition: json!({
                "StartAt": "T",
                "States": {"T": {"Type": "Task", "Resource": activity, "TimeoutSeconds": 2, "End": true}}
            }),
            input: json!({}),
            close: Close::Fails,
            redrive_after: Some(now_ms() + 1500),
            then: ExecutionStatus::Failed,
            // TimeoutSeconds 2 scaled = 500 ms.
            min_ms: 450,
            max_ms: 3000,
        },
        TimeCase {
            name: "TIMED_OUT in a Wait whose Timestamp has passed: moves on at once",
            definition: wait_then_succeed(json!({"TimestampPath": "$.at"}), Some(2)),
            input: json!({"at": later}),
            close: Close::Timeout,
            redrive_after: Some(later_ms + 300),
            then: ExecutionStatus::Succeeded,
            min_ms: 0,
            max_ms: 400,
        },
    ]
}

async fn run_time_case(client: aws_sdk_sfn::Client, index: usize, case: TimeCase) {
    let name = case.name;
    let sm = create_machine(&client, &format!("time-{index}"), &case.definition).await;
    let exec = start(&client, &sm, None, &case.input).await;
    let first_status = match case.close {
        Close::Stop => {
            wait_for_event(&client, &exec, "WaitStateEntered").await;
            client
                .stop_execution()
                .execution_arn(&exec)
                .error("Manual")
                .cause("stopped by the test")
                .send()
                .await
                .unwrap_or_else(|e| panic!("{name}: StopExecution: {}", DisplayErrorContext(&e)));
            ExecutionStatus::Aborted
        }
        Close::Timeout => ExecutionStatus::TimedOut,
        Close::Fails => ExecutionStatus::Failed,
    };
    let d = closed(&client, &exec, first_status).await;
    assert_redrive_status(&d, None);
    if let Some(at) = case.redrive_after {
        let left = at - now_ms();
        if left > 0 {
            tokio::time::sleep(Duration::from_millis(left as u64)).await;
        }
    }
    let date = redrive(&client, &exec, None).await;
    let d = closed(&client, &exec, case.then.clone()).await;
    assert_eq!(d.redrive_count(), Some(1), "{name}");
    let events = history(&client, &exec).await;
    assert_redriven_history(name, &events);
    let first_state = if matches!(case.close, Close::Fails) {
        "T"
    } else {
        "W"
    };
    assert_reentered(&events, 1, first_state);
    let redriven = find(&events, "ExecutionRedriven");
    let last = events.last().expect("events");
    let took = ms(last.timestamp()) - ms(redriven.timestamp());
    assert!(
        (case.min_ms..=case.max_ms).contains(&took),
        "{name}: {} came {took} ms after ExecutionRedriven, expected {}..={} ms; {:?}",
        last.r#type().as_str(),
        case.min_ms,
        case.max_ms,
        event_types(&events)
    );
    assert!(ms(redriven.timestamp()) >= ms(&date) - 5, "{name}");
    if case.then == ExecutionStatus::Failed {
        assert_eq!(d.error(), Some("States.Timeout"), "{name}");
        assert_eq!(
            count(after_redrive(&events, 1), "ActivityScheduled"),
            1,
            "{name}"
        );
    }
    if case.then == ExecutionStatus::TimedOut {
        let details = last
            .execution_timed_out_event_details()
            .expect("executionTimedOutEventDetails");
        assert_eq!(details.error(), Some("States.Timeout"), "{name}");
    }
}

/// ABORTED and TIMED_OUT executions: a Wait with Seconds re-waits in full, a Wait whose
/// Timestamp has passed moves on, and the execution timeout restarts at the redrive.
#[tokio::test]
async fn aborted_and_timed_out_executions_resume() {
    let server = server(TIME_SCALE, &[]);
    let client = server.client();
    let activity = client
        .create_activity()
        .name("nobody-works-here")
        .send()
        .await
        .expect("CreateActivity")
        .activity_arn()
        .to_owned();
    let tasks: Vec<_> = time_cases(&activity)
        .into_iter()
        .enumerate()
        .map(|(i, case)| {
            let name = case.name;
            (name, tokio::spawn(run_time_case(client.clone(), i, case)))
        })
        .collect();
    let mut failures = Vec::new();
    for (name, task) in tasks {
        if let Err(e) = task.await {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        server.logs()
    );
}

// ---------------------------------------------------------------------------
// §3: client tokens and errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn client_token_makes_redrive_idempotent() {
    let server = server(0.1, &[]);
    let client = server.client();
    let sm = create_machine(&client, "token", &fails_then_waits(3600)).await;
    let exec = start(&client, &sm, Some("x"), &json!({})).await;
    let other = start(&client, &sm, Some("y"), &json!({})).await;
    closed(&client, &exec, ExecutionStatus::Failed).await;
    closed(&client, &other, ExecutionStatus::Failed).await;

    let first = redrive(&client, &exec, Some("token-a")).await;
    let second = redrive(&client, &exec, Some("token-a")).await;
    assert_eq!(
        ms(&second),
        ms(&first),
        "the same token answers the same redriveDate"
    );
    let d = describe(&client, &exec).await;
    assert_eq!(*d.status(), ExecutionStatus::Running);
    assert_eq!(d.redrive_count(), Some(1));
    assert_eq!(d.redrive_date().map(ms), Some(ms(&first)));
    wait_for_event(&client, &exec, "WaitStateEntered").await;
    let events = history(&client, &exec).await;
    assert_eq!(
        count(&events, "ExecutionRedriven"),
        1,
        "{:?}",
        event_types(&events)
    );

    // Another token while it runs: not redrivable.
    expect_redrive_error(
        &client,
        &exec,
        Some("token-b"),
        "ExecutionNotRedrivable",
        Some(RUNNING_REASON),
    )
    .await;

    // ★ §3.3 point 5: a remembered token answers the original response whatever the status.
    client
        .stop_execution()
        .execution_arn(&exec)
        .send()
        .await
        .expect("StopExecution");
    closed(&client, &exec, ExecutionStatus::Aborted).await;
    let third = redrive(&client, &exec, Some("token-a")).await;
    assert_eq!(ms(&third), ms(&first));
    let d = describe(&client, &exec).await;
    assert_eq!(*d.status(), ExecutionStatus::Aborted);
    assert_eq!(d.redrive_count(), Some(1));

    // A new token redrives again.
    let fourth = redrive(&client, &exec, Some("token-c")).await;
    assert!(ms(&fourth) > ms(&first));
    let d = describe(&client, &exec).await;
    assert_eq!(d.redrive_count(), Some(2));
    assert_eq!(d.redrive_date().map(ms), Some(ms(&fourth)));
    assert_eq!(
        redriven_counts(&history(&client, &exec).await),
        vec![Some(1), Some(2)]
    );

    // ★ §3.3 point 1: tokens are per execution.
    let elsewhere = redrive(&client, &other, Some("token-a")).await;
    assert_ne!(ms(&elsewhere), ms(&first));
    assert_eq!(describe(&client, &other).await.redrive_count(), Some(1));
}

#[tokio::test]
async fn redrive_errors() {
    let server = server(0.1, &[]);
    let client = server.client();
    let account = server.account_id().to_owned();

    let ok_sm = create_machine(
        &client,
        "succeeds",
        &json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}),
    )
    .await;
    let succeeded = start(&client, &ok_sm, Some("ok"), &json!({})).await;
    closed(&client, &succeeded, ExecutionStatus::Succeeded).await;

    let slow_sm = create_machine(
        &client,
        "slow",
        &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}),
    )
    .await;
    let running = start(&client, &slow_sm, Some("slow"), &json!({})).await;

    let fail_sm = create_machine(&client, "fails", &pass_then_fail()).await;
    let failed = start(&client, &fail_sm, Some("bad"), &json!({})).await;
    closed(&client, &failed, ExecutionStatus::Failed).await;

    let express_sm = create_machine_of_type(
        &client,
        "express",
        &json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}),
        StateMachineType::Express,
    )
    .await;
    let express = client
        .start_sync_execution()
        .state_machine_arn(&express_sm)
        .input("{}")
        .send()
        .await
        .expect("StartSyncExecution")
        .execution_arn()
        .to_owned();

    let missing = format!("arn:aws:states:us-east-1:{account}:execution:fails:never-started");
    let too_long = format!(
        "arn:aws:states:us-east-1:{account}:execution:fails:{}",
        "x".repeat(256)
    );
    let token_65 = "t".repeat(65);
    let token_64 = "t".repeat(64);
    // (what, execution ARN, client token, error, exact message)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "SUCCEEDED execution",
            &succeeded,
            None,
            "ExecutionNotRedrivable",
            Some(SUCCEEDED_REASON),
        ),
        (
            "RUNNING execution",
            &running,
            None,
            "ExecutionNotRedrivable",
            Some(RUNNING_REASON),
        ),
        (
            "unknown execution",
            &missing,
            None,
            "ExecutionDoesNotExist",
            None,
        ),
        ("not an ARN", "abc", None, "InvalidArn", None),
        ("a state machine ARN", &fail_sm, None, "InvalidArn", None),
        (
            "★ an Express execution ARN",
            &express,
            None,
            "InvalidArn",
            None,
        ),
        (
            "an ARN of 257+ characters",
            &too_long,
            None,
            "ValidationException",
            None,
        ),
        (
            "clientToken of 65 characters",
            &failed,
            Some(&token_65),
            "ValidationException",
            None,
        ),
        (
            "clientToken with a space",
            &failed,
            Some("a b"),
            "ValidationException",
            None,
        ),
        (
            "empty clientToken",
            &failed,
            Some(""),
            "ValidationException",
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (what, arn, token, code, message) in cases {
        match try_redrive(&client, arn, token).await {
            Ok(date) => failures.push(format!("{what}: expected {code}, got redriveDate {date:?}")),
            Err((got, got_message, shown)) => {
                if got != code {
                    failures.push(format!("{what}: expected {code}, got {shown}"));
                } else if message.is_some_and(|m| m != got_message) {
                    failures.push(format!(
                        "{what}: message {got_message:?}, expected {message:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The ExecutionDoesNotExist message names the ARN ([REAL] §3.2).
    let (_, message, _) = try_redrive(&client, &missing, None).await.unwrap_err();
    assert!(message.contains(&missing), "{message:?}");

    // Refused requests changed nothing; a valid 64-character token works.
    let d = describe(&client, &failed).await;
    assert_eq!(
        (d.status(), d.redrive_count()),
        (&ExecutionStatus::Failed, Some(0))
    );
    assert_redrive_status(&d, None);
    assert_redrive_status(&describe(&client, &succeeded).await, Some(SUCCEEDED_REASON));
    assert_redrive_status(&describe(&client, &running).await, Some(RUNNING_REASON));
    redrive(&client, &failed, Some(&token_64)).await;
    closed(&client, &failed, ExecutionStatus::Failed).await;
    assert_eq!(describe(&client, &failed).await.redrive_count(), Some(1));

    // A deleted state machine's executions are not redrivable (R1).
    client
        .delete_state_machine()
        .state_machine_arn(&fail_sm)
        .send()
        .await
        .expect("DeleteStateMachine");
    match client
        .describe_execution()
        .execution_arn(&failed)
        .send()
        .await
    {
        Ok(d) => {
            assert_redrive_status(&d, Some(DELETING_REASON));
            expect_redrive_error(
                &client,
                &failed,
                None,
                "ExecutionNotRedrivable",
                Some(DELETING_REASON),
            )
            .await;
        }
        // ★ §9 Q17: once the executions are gone, ExecutionDoesNotExist.
        Err(_) => expect_redrive_error(&client, &failed, None, "ExecutionDoesNotExist", None).await,
    }
}

/// ★ §9 Q26: re-opening an execution counts against the open-executions limit.
#[tokio::test]
async fn open_execution_limit_applies_to_redrive() {
    let server = server(0.1, &["--max-open-executions", "1"]);
    let client = server.client();
    let fail_sm = create_machine(&client, "fails", &pass_then_fail()).await;
    let failed = start(&client, &fail_sm, None, &json!({})).await;
    closed(&client, &failed, ExecutionStatus::Failed).await;
    let slow_sm = create_machine(
        &client,
        "slow",
        &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}),
    )
    .await;
    let running = start(&client, &slow_sm, None, &json!({})).await;
    expect_redrive_error(&client, &failed, None, "ExecutionLimitExceeded", None).await;
    assert_eq!(describe(&client, &failed).await.redrive_count(), Some(0));
    client
        .stop_execution()
        .execution_arn(&running)
        .send()
        .await
        .expect("StopExecution");
    closed(&client, &running, ExecutionStatus::Aborted).await;
    redrive(&client, &failed, None).await;
    closed(&client, &failed, ExecutionStatus::Failed).await;
    assert_eq!(describe(&client, &failed).await.redrive_count(), Some(1));
}

// ---------------------------------------------------------------------------
// §2: eligibility windows
// ---------------------------------------------------------------------------

#[tokio::test]
async fn redrive_window_expires() {
    let server = server(0.1, &["--redrive-window", "2s"]);
    let client = server.client();
    let sm = create_machine(&client, "window", &pass_then_fail()).await;
    let redriven = start(&client, &sm, Some("redriven"), &json!({})).await;
    let idle = start(&client, &sm, Some("idle"), &json!({})).await;
    closed(&client, &redriven, ExecutionStatus::Failed).await;
    closed(&client, &idle, ExecutionStatus::Failed).await;
    assert_redrive_status(&describe(&client, &idle).await, None);

    // Within the window: redrivable, and (★ §9 Q6) the window restarts at the new close.
    redrive(&client, &redriven, None).await;
    let d = closed(&client, &redriven, ExecutionStatus::Failed).await;
    assert_redrive_status(&d, None);

    tokio::time::sleep(Duration::from_millis(3000)).await;
    for exec in [&idle, &redriven] {
        let d = describe(&client, exec).await;
        assert_redrive_status(&d, Some(WINDOW_REASON));
        expect_redrive_error(
            &client,
            exec,
            None,
            "ExecutionNotRedrivable",
            Some(WINDOW_REASON),
        )
        .await;
        let after = describe(&client, exec).await;
        assert_eq!(after.redrive_count(), d.redrive_count());
        assert_eq!(*after.status(), ExecutionStatus::Failed);
    }
}

/// `--max-execution-time 3s`: an execution started more than 3 s ago is not redrivable (R6),
/// and (★ §9 Q7) a redriven attempt is still cut at startDate + 3 s.
#[tokio::test]
async fn max_execution_time_limits_redrive() {
    let server = server(1.0, &["--max-execution-time", "3s"]);
    let client = server.client();
    let fail_sm = create_machine(&client, "fails", &pass_then_fail()).await;
    let old = start(&client, &fail_sm, None, &json!({})).await;
    closed(&client, &old, ExecutionStatus::Failed).await;
    assert_redrive_status(&describe(&client, &old).await, None);

    let slow_sm = create_machine(
        &client,
        "slow",
        &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": true}}}),
    )
    .await;
    let stopped = start(&client, &slow_sm, None, &json!({})).await;
    wait_for_event(&client, &stopped, "WaitStateEntered").await;
    client
        .stop_execution()
        .execution_arn(&stopped)
        .send()
        .await
        .expect("StopExecution");
    let d = closed(&client, &stopped, ExecutionStatus::Aborted).await;
    redrive(&client, &stopped, None).await;
    let d2 = closed(&client, &stopped, ExecutionStatus::TimedOut).await;
    let lived = ms(d2.stop_date().expect("stopDate")) - ms(d.start_date());
    assert!(
        (2900..=4500).contains(&lived),
        "the redriven attempt closed {lived} ms after the original start"
    );

    let left = ms(describe(&client, &old).await.start_date()) + 3500 - now_ms();
    if left > 0 {
        tokio::time::sleep(Duration::from_millis(left as u64)).await;
    }
    for exec in [&old, &stopped] {
        assert_redrive_status(&describe(&client, exec).await, Some(MAX_TIME_REASON));
        expect_redrive_error(
            &client,
            exec,
            None,
            "ExecutionNotRedrivable",
            Some(MAX_TIME_REASON),
        )
        .await;
    }
}

#[tokio::test]
async fn history_event_cap() {
    const CAP: usize = 8;
    let cap = CAP.to_string();
    let server = server(0.01, &["--max-history-events", &cap]);
    let client = server.client();
    let activity = client
        .create_activity()
        .name("cap-worker")
        .send()
        .await
        .expect("CreateActivity")
        .activity_arn()
        .to_owned();
    let two_passes = json!({
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Pass", "Next": "F"},
            "F": {"Type": "Fail", "Error": "Nope"}
        }
    });
    let task = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity, "End": true}}});
    // (name, definition, history length, redrivable): redrivable while the history has room
    // for ExecutionRedriven plus one event, i.e. length <= CAP - 2 ([DOC] §2.1 point 6).
    let cases = [
        ("pass-fail", pass_then_fail(), 5, true),
        ("task", task, 6, true),
        ("pass-pass-fail", two_passes, 7, false),
    ];
    let mut execs = Vec::new();
    for (name, definition, len, redrivable) in cases {
        let sm = create_machine(&client, name, &definition).await;
        let exec = start(&client, &sm, None, &json!({})).await;
        if name == "task" {
            work(&client, &activity, 1, None).await;
        }
        closed(&client, &exec, ExecutionStatus::Failed).await;
        let events = history(&client, &exec).await;
        assert_eq!(events.len(), len, "{name}: {:?}", event_types(&events));
        let reason = (!redrivable).then_some(HISTORY_REASON);
        assert_redrive_status(&describe(&client, &exec).await, reason);
        if !redrivable {
            expect_redrive_error(&client, &exec, None, "ExecutionNotRedrivable", reason).await;
        }
        execs.push((name, exec));
    }

    // An execution that reaches the cap fails there: its failure is the last event.
    let spin = json!({"StartAt": "L", "States": {"L": {"Type": "Pass", "Next": "L"}}});
    let sm = create_machine(&client, "spin", &spin).await;
    let exec = start(&client, &sm, None, &json!({})).await;
    let d = closed(&client, &exec, ExecutionStatus::Failed).await;
    let cause = format!("The execution reached the maximum number of history events ({CAP}).");
    assert_eq!(
        (d.error(), d.cause()),
        (Some("States.Runtime"), Some(cause.as_str()))
    );
    let events = history(&client, &exec).await;
    let types = event_types(&events);
    assert_eq!(events.len(), CAP, "{types:?}");
    let last = &events[CAP - 1];
    assert_eq!(
        (
            types[CAP - 2].as_str(),
            last.r#type().as_str(),
            last.id(),
            last.previous_event_id()
        ),
        (
            "PassStateExited",
            "ExecutionFailed",
            CAP as i64,
            CAP as i64 - 1
        ),
        "{types:?}"
    );
    assert_redrive_status(&describe(&client, &exec).await, Some(HISTORY_REASON));

    // Redriving the 5-event execution fills the history to the cap: not redrivable again.
    let (_, exec) = &execs[0];
    redrive(&client, exec, None).await;
    closed(&client, exec, ExecutionStatus::Failed).await;
    let events = history(&client, exec).await;
    assert_eq!(events.len(), CAP, "{:?}", event_types(&events));
    assert_redrive_status(&describe(&client, exec).await, Some(HISTORY_REASON));
    expect_redrive_error(
        &client,
        exec,
        None,
        "ExecutionNotRedrivable",
        Some(HISTORY_REASON),
    )
    .await;
}

// ---------------------------------------------------------------------------
// Durability
// ---------------------------------------------------------------------------

#[tokio::test]
async fn redrive_after_a_server_restart() {
    let mut server = server(0.1, &[]);
    let client = server.client();
    let sm = create_machine(&client, "restart", &fails_then_waits(1)).await;
    let exec = start(&client, &sm, None, &json!({"keep": 1})).await;
    closed(&client, &exec, ExecutionStatus::Failed).await;

    server.kill9();
    server.restart();
    let client = server.client();
    let d = describe(&client, &exec).await;
    assert_eq!(*d.status(), ExecutionStatus::Failed);
    assert_redrive_status(&d, None);
    assert_eq!(d.redrive_count(), Some(0));

    redrive(&client, &exec, None).await;
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    assert_eq!(d.redrive_count(), Some(1));
    let events = history(&client, &exec).await;
    assert_redriven_history("redrive after restart", &events);
    assert_reentered(&events, 1, "Ctx");
    assert_eq!(count(&events, "ExecutionRedriven"), 1);
}

#[tokio::test]
async fn crash_right_after_redrive_returned() {
    let mut server = server(0.1, &[]);
    let client = server.client();
    // Hold waits 1 s (scaled): the kill lands during the redriven attempt.
    let sm = create_machine(&client, "crash", &fails_then_waits(10)).await;
    let exec = start(&client, &sm, None, &json!({"keep": 2})).await;
    closed(&client, &exec, ExecutionStatus::Failed).await;

    let date = redrive(&client, &exec, Some("before-crash")).await;
    server.kill9();
    server.restart();
    let client = server.client();
    let d = describe(&client, &exec).await;
    assert_eq!(
        d.redrive_count(),
        Some(1),
        "the redrive was answered, so it is durable"
    );
    assert_eq!(d.redrive_date().map(ms), Some(ms(&date)));

    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    assert_eq!(d.redrive_count(), Some(1));
    let events = history(&client, &exec).await;
    assert_redriven_history("crash after redrive", &events);
    assert_eq!(count(&events, "ExecutionRedriven"), 1);
    assert_reentered(&events, 1, "Ctx");
    assert_eq!(
        event_types(after_redrive(&events, 1)),
        [
            "PassStateEntered",
            "PassStateExited",
            "WaitStateEntered",
            "WaitStateExited",
            "SucceedStateEntered",
            "SucceedStateExited",
            "ExecutionSucceeded"
        ]
    );

    // ★ §3.3: the token survives the restart; a new token meets SUCCEEDED.
    let again = redrive(&client, &exec, Some("before-crash")).await;
    assert_eq!(ms(&again), ms(&date));
    expect_redrive_error(
        &client,
        &exec,
        Some("after-crash"),
        "ExecutionNotRedrivable",
        Some(SUCCEEDED_REASON),
    )
    .await;
    assert_eq!(
        count(&history(&client, &exec).await, "ExecutionRedriven"),
        1
    );
}

// ---------------------------------------------------------------------------
// §8 definition snapshot, §4.8 context object, §4.7 ListExecutions
// ---------------------------------------------------------------------------

#[tokio::test]
async fn redrive_runs_the_original_definition() {
    let server = server(0.1, &[]);
    let client = server.client();
    let version = |v: u32, start_at: &str| {
        json!({
            "StartAt": start_at,
            "States": {
                "Ctx": fails_until_redriven("Done"),
                "Done": {"Type": "Pass", "Result": {"version": v}, "End": true}
            }
        })
    };
    let v1 = version(1, "Ctx");
    let v2 = version(2, "Done");
    let sm = create_machine(&client, "snapshot", &v1).await;
    let exec = start(&client, &sm, None, &json!({})).await;
    closed(&client, &exec, ExecutionStatus::Failed).await;

    client
        .update_state_machine()
        .state_machine_arn(&sm)
        .definition(v2.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateStateMachine: {}", DisplayErrorContext(&e)));
    let fresh = start(&client, &sm, None, &json!({})).await;
    let d = closed(&client, &fresh, ExecutionStatus::Succeeded).await;
    assert_eq!(
        d.output().map(|o| parse_json("output", Some(o))),
        Some(json!({"version": 2}))
    );

    redrive(&client, &exec, None).await;
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    assert_eq!(
        d.output().map(|o| parse_json("output", Some(o))),
        Some(json!({"version": 1})),
        "the redrive must run the definition the execution started on"
    );
    let sme = client
        .describe_state_machine_for_execution()
        .execution_arn(&exec)
        .send()
        .await
        .expect("DescribeStateMachineForExecution");
    assert_eq!(parse_json("definition", Some(sme.definition())), v1);
}

#[tokio::test]
async fn context_object_redrive_count_and_time() {
    let server = server(0.1, &[]);
    let client = server.client();
    let definition = json!({
        "StartAt": "Before",
        "States": {
            "Before": {
                "Type": "Pass",
                "Parameters": {"count.$": "$$.Execution.RedriveCount"},
                "ResultPath": "$.before",
                "Next": "Ctx"
            },
            "Ctx": fails_until_redriven("Check"),
            "Check": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.ctx.count", "NumericGreaterThanEquals": 1, "Next": "Done"}],
                "Default": "Zero"
            },
            "Zero": {"Type": "Fail", "Error": "NotRedriven"},
            "Done": {"Type": "Succeed"}
        }
    });
    let sm = create_machine(&client, "context", &definition).await;
    let exec = start(&client, &sm, None, &json!({"id": 1})).await;
    let d = closed(&client, &exec, ExecutionStatus::Failed).await;
    // RedriveTime exists only after a redrive ([DOC] §4.8).
    assert_eq!(d.error(), Some("States.Runtime"));
    assert!(
        d.cause().is_some_and(|c| c.contains("RedriveTime")),
        "{:?}",
        d.cause()
    );
    let start_date = ms(d.start_date());

    let date = redrive(&client, &exec, None).await;
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let output = parse_json("output", d.output());
    // ★ §9 Q15: RedriveCount is 0 before any redrive.
    assert_eq!(output["before"], json!({"count": 0}), "{output}");
    assert_eq!(output["ctx"]["count"], json!(1), "{output}");
    let parse_time = |v: &Value| {
        let text = v
            .as_str()
            .unwrap_or_else(|| panic!("not a timestamp string: {v}"));
        ms(&DateTime::from_str(text, DateTimeFormat::DateTime)
            .unwrap_or_else(|e| panic!("{text:?} is not ISO 8601: {e}")))
    };
    // Wire timestamps are epoch seconds as JSON numbers, which the SDK reads through an f64:
    // allow 1 ms of rounding against the context object's ISO 8601 strings.
    let redrive_time = parse_time(&output["ctx"]["time"]);
    assert!(
        (redrive_time - ms(&date)).abs() <= 1,
        "RedriveTime {redrive_time} = redriveDate {}: {output}",
        ms(&date)
    );
    let start_time = parse_time(&output["ctx"]["start"]);
    assert!(
        (start_time - start_date).abs() <= 1,
        "StartTime {start_time} unchanged ({start_date}): {output}"
    );
    let events = history(&client, &exec).await;
    assert_redriven_history("context", &events);
    assert_reentered(&events, 1, "Ctx");
    assert_eq!(count(&events, "FailStateEntered"), 0);
}

#[tokio::test]
async fn list_executions_redrive_filter() {
    let server = server(0.1, &[]);
    let client = server.client();
    let definition = json!({
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.mode", "StringEquals": "ok", "Next": "Done"}],
                "Default": "Ctx"
            },
            "Ctx": fails_until_redriven("Done"),
            "Done": {"Type": "Succeed"}
        }
    });
    let sm = create_machine(&client, "listing", &definition).await;
    let redriven = start(&client, &sm, Some("redriven"), &json!({"mode": "fail"})).await;
    closed(&client, &redriven, ExecutionStatus::Failed).await;
    let failed = start(&client, &sm, Some("failed"), &json!({"mode": "fail"})).await;
    let ok = start(&client, &sm, Some("ok"), &json!({"mode": "ok"})).await;
    closed(&client, &failed, ExecutionStatus::Failed).await;
    closed(&client, &ok, ExecutionStatus::Succeeded).await;
    let date = redrive(&client, &redriven, None).await;
    closed(&client, &redriven, ExecutionStatus::Succeeded).await;

    let list = |filter: Option<ExecutionRedriveFilter>, status: Option<ExecutionStatus>| {
        let client = client.clone();
        let sm = sm.clone();
        async move {
            let mut items: Vec<ExecutionListItem> = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = client
                    .list_executions()
                    .state_machine_arn(&sm)
                    .set_redrive_filter(filter.clone())
                    .set_status_filter(status.clone())
                    .max_results(1)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("ListExecutions: {}", DisplayErrorContext(&e)));
                items.extend(page.executions().iter().cloned());
                match page.next_token() {
                    Some(t) => token = Some(t.to_owned()),
                    None => break,
                }
            }
            items
        }
    };
    let names = |items: &[ExecutionListItem]| {
        let mut n: Vec<String> = items.iter().map(|i| i.name().to_owned()).collect();
        n.sort();
        n
    };
    use ExecutionRedriveFilter::{NotRedriven, Redriven};
    let cases: Vec<(
        Option<ExecutionRedriveFilter>,
        Option<ExecutionStatus>,
        Vec<&str>,
    )> = vec![
        (Some(Redriven), None, vec!["redriven"]),
        (Some(NotRedriven), None, vec!["failed", "ok"]),
        (None, None, vec!["failed", "ok", "redriven"]),
        (
            Some(NotRedriven),
            Some(ExecutionStatus::Failed),
            vec!["failed"],
        ),
        (
            Some(Redriven),
            Some(ExecutionStatus::Succeeded),
            vec!["redriven"],
        ),
        (Some(Redriven), Some(ExecutionStatus::Failed), vec![]),
    ];
    let mut failures = Vec::new();
    for (filter, status, want) in cases {
        let got = names(&list(filter.clone(), status.clone()).await);
        if got != want {
            failures.push(format!(
                "redriveFilter {filter:?} statusFilter {status:?}: {got:?}, expected {want:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    for item in list(None, None).await {
        let (count, date_ms) = (item.redrive_count(), item.redrive_date().map(ms));
        if item.name() == "redriven" {
            assert_eq!((count, date_ms), (Some(1), Some(ms(&date))), "{item:?}");
        } else {
            assert_eq!(
                (count.unwrap_or(0), date_ms),
                (0, None),
                "{}: {item:?}",
                item.name()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// boto3 and the AWS CLI
// ---------------------------------------------------------------------------

/// Runs `tests/python/test_redrive_cli.py` (boto3 and `aws stepfunctions redrive-execution`).
/// python3, boto3 and the AWS CLI are required; a missing one fails the test saying which.
#[test]
fn boto3_and_aws_cli_redrive() {
    let server = server(0.1, &[]);
    common::run_python_client_script(&server, "test_redrive_cli.py");
}
