//! Distributed Map end to end: aws-sdk-sfn (and raw JSON for exact Map Run counters) against
//! a `stepwise serve` child process; moto's S3 server for `ItemReader`/`ResultWriter`.
//!
//! What is checked: the parent's Map Run events, the Map Run ARN and its child state machine,
//! children listed by `mapRunArn` with their own histories, ListMapRuns/DescribeMapRun/
//! UpdateMapRun, tolerated failure thresholds, `MaxConcurrency`, redrive of a failed Map Run
//! through its parent (`docs/redrive.md` §6), a kill -9 restart, StopExecution and the
//! parent's timeout, label validation, and S3 items, results and batches (moto must be
//! installed: `scripts/setup-test-deps`). Assertions that rest on one of the spec's
//! **[GUESS]** answers are marked ★.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sfn::error::DisplayErrorContext;
use aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput;
use aws_sdk_sfn::types::{
    ExecutionListItem, ExecutionRedriveFilter, ExecutionRedriveStatus, ExecutionStatus,
    HistoryEvent, MapRunStatus,
};
use common::{
    create_activity, create_machine, event_types, history, parse_json, start, succeed, try_fail,
    try_succeed, wait_done, Moto, Raw, Server,
};
use serde_json::{json, Value};

/// Generous: the machine's two cores are shared with other builds.
const DONE_WITHIN: Duration = Duration::from_secs(60);

/// Wait and retry intervals run 100 times faster than written.
const SCALE: f64 = 0.01;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = common::DEFAULT_ACCOUNT;

const THRESHOLD_ERROR: &str = "States.ExceedToleratedFailureThreshold";
const THRESHOLD_CAUSE: &str = "The specified tolerated failure threshold was exceeded";
const SUCCEEDED_REASON: &str = "Execution is SUCCEEDED and cannot be redriven";

// ---------------------------------------------------------------------------
// Helpers: definitions
// ---------------------------------------------------------------------------

/// A Distributed Map state whose children (`execution_type`) run `processor` (`StartAt` and
/// `States`), with further `fields`; `End: true` unless `fields` has a `Next`.
fn distributed_map(execution_type: &str, processor: Value, fields: Value) -> Value {
    let mut item_processor = processor;
    item_processor["ProcessorConfig"] =
        json!({"Mode": "DISTRIBUTED", "ExecutionType": execution_type});
    let mut state = json!({"Type": "Map", "ItemProcessor": item_processor});
    let fields = fields.as_object().cloned().unwrap_or_default();
    if !fields.contains_key("Next") {
        state["End"] = json!(true);
    }
    for (k, v) in fields {
        state[k] = v;
    }
    state
}

/// A machine whose only state (`Fan`) is `map`, plus `more` states.
fn machine(map: Value, more: Value) -> Value {
    let mut states = json!({"Fan": map});
    for (k, v) in more.as_object().cloned().unwrap_or_default() {
        states[k] = v;
    }
    json!({"StartAt": "Fan", "States": states})
}

/// An item processor of one Pass state (its output is its input).
fn pass_processor() -> Value {
    json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}})
}

/// An `ItemReader` of the JSON array in `ITEMS_BUCKET` at `key`.
fn json_items_reader(key: &str) -> Value {
    json!({
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": ITEMS_BUCKET, "Key": key}
    })
}

/// An item processor of one Task state on `activity`, sent `{"index": $.index}`.
fn activity_processor(activity: &str) -> Value {
    json!({"StartAt": "Work", "States": {"Work": {
        "Type": "Task",
        "Resource": activity,
        "Parameters": {"index.$": "$.index"},
        "End": true
    }}})
}

/// Children fail (`ItemFailed`, "this item fails") when their input has `"fail": true`, and
/// answer `{"ok": id}` otherwise.
fn failing_processor() -> Value {
    json!({"StartAt": "Check", "States": {
        "Check": {
            "Type": "Choice",
            "Choices": [{
                "And": [
                    {"Variable": "$.fail", "IsPresent": true},
                    {"Variable": "$.fail", "BooleanEquals": true}
                ],
                "Next": "Broke"
            }],
            "Default": "Fine"
        },
        "Broke": {"Type": "Fail", "Error": "ItemFailed", "Cause": "this item fails"},
        "Fine": {"Type": "Pass", "Parameters": {"ok.$": "$.id"}, "End": true}
    }})
}

/// Children see `{"index": i, "value": item}`.
fn index_selector() -> Value {
    json!({"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value"})
}

// ---------------------------------------------------------------------------
// Helpers: executions and histories
// ---------------------------------------------------------------------------

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

async fn describe(client: &aws_sdk_sfn::Client, arn: &str) -> DescribeExecutionOutput {
    client
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeExecution {arn}: {}", DisplayErrorContext(&e)))
}

fn output(d: &DescribeExecutionOutput) -> Value {
    parse_json("execution output", d.output())
}

fn count(events: &[HistoryEvent], event_type: &str) -> usize {
    events
        .iter()
        .filter(|e| e.r#type().as_str() == event_type)
        .count()
}

/// `(type, id, previousEventId)` of every event.
fn numbered(events: &[HistoryEvent]) -> Vec<(String, i64, i64)> {
    events
        .iter()
        .map(|e| {
            (
                e.r#type().as_str().to_owned(),
                e.id(),
                e.previous_event_id(),
            )
        })
        .collect()
}

/// `want` as `(type, id, previousEventId)` with ids numbered from `first_id`.
fn expect_numbered(first_id: i64, want: &[(&str, i64)]) -> Vec<(String, i64, i64)> {
    want.iter()
        .enumerate()
        .map(|(i, (t, prev))| ((*t).to_owned(), first_id + i as i64, *prev))
        .collect()
}

/// The parent's events of a Map Run that succeeded, the Map state being the first state
/// and followed by `tail` (types, each the successor of the one before).
fn succeeded_parent(tail: &[&'static str]) -> Vec<(String, i64, i64)> {
    let mut want = vec![
        ("ExecutionStarted", 0),
        ("MapStateEntered", 0),
        ("MapStateStarted", 2),
        ("MapRunStarted", 3),
        ("MapRunSucceeded", 4),
        // MapStateSucceeded follows MapRunSucceeded, MapStateExited MapRunStarted, as AWS
        // records them since November 2024.
        ("MapStateSucceeded", 5),
        ("MapStateExited", 4),
    ];
    for (i, t) in tail.iter().enumerate() {
        want.push((t, 7 + i as i64));
    }
    expect_numbered(1, &want)
}

/// The `mapRunArn` of the parent's (only) `MapRunStarted` event.
fn map_run_arn_of(events: &[HistoryEvent]) -> String {
    let arns: Vec<String> = events
        .iter()
        .filter_map(|e| e.map_run_started_event_details())
        .filter_map(|d| d.map_run_arn().map(str::to_owned))
        .collect();
    assert_eq!(
        arns.len(),
        1,
        "one MapRunStarted with a mapRunArn: {:?}",
        event_types(events)
    );
    arns[0].clone()
}

/// `MapStateStarted.length` of every MapStateStarted event.
fn map_lengths(events: &[HistoryEvent]) -> Vec<i32> {
    events
        .iter()
        .filter_map(|e| e.map_state_started_event_details())
        .map(|d| d.length())
        .collect()
}

/// `(error, cause)` of the last `ExecutionFailed` event.
fn failure(events: &[HistoryEvent]) -> (String, String) {
    let d = events
        .iter()
        .rev()
        .find_map(|e| e.execution_failed_event_details())
        .unwrap_or_else(|| panic!("no ExecutionFailed in {:?}", event_types(events)));
    (
        d.error().unwrap_or_default().to_owned(),
        d.cause().unwrap_or_default().to_owned(),
    )
}

/// `(error, cause)` of every `MapRunFailed` event.
fn map_run_failures(events: &[HistoryEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| e.map_run_failed_event_details())
        .map(|d| {
            (
                d.error().unwrap_or_default().to_owned(),
                d.cause().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The events after the `n`-th `ExecutionRedriven` (1-based), and that event's id.
fn after_redrive(events: &[HistoryEvent], n: usize) -> (i64, &[HistoryEvent]) {
    let at = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.r#type().as_str() == "ExecutionRedriven")
        .nth(n - 1)
        .map(|(i, _)| i)
        .unwrap_or_else(|| panic!("no ExecutionRedriven #{n} in {:?}", event_types(events)));
    (events[at].id(), &events[at + 1..])
}

/// Polls `probe` until it gives a value (at most `DONE_WITHIN`).
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + DONE_WITHIN;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < until, "{what}: not within {DONE_WITHIN:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The children of a Map Run (all pages), optionally filtered by redrive.
async fn children(
    client: &aws_sdk_sfn::Client,
    map_run_arn: &str,
    redrive_filter: Option<ExecutionRedriveFilter>,
) -> Vec<ExecutionListItem> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_executions()
            .map_run_arn(map_run_arn)
            .set_redrive_filter(redrive_filter.clone())
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "ListExecutions mapRunArn={map_run_arn}: {}",
                    DisplayErrorContext(&e)
                )
            });
        out.extend(page.executions().iter().cloned());
        match page.next_token() {
            Some(t) => token = Some(t.to_owned()),
            None => return out,
        }
    }
}

/// Each child's ARN by the `index` of its input (`{"index": i, …}`).
async fn children_by_index(
    client: &aws_sdk_sfn::Client,
    map_run_arn: &str,
) -> BTreeMap<i64, String> {
    let mut by_index = BTreeMap::new();
    for child in children(client, map_run_arn, None).await {
        let d = describe(client, child.execution_arn()).await;
        let input = parse_json("child input", d.input());
        let index = input["index"]
            .as_i64()
            .unwrap_or_else(|| panic!("child input without an index: {input}"));
        let previous = by_index.insert(index, child.execution_arn().to_owned());
        assert!(previous.is_none(), "two children for item {index}");
    }
    by_index
}

// ---------------------------------------------------------------------------
// Helpers: Map Runs
// ---------------------------------------------------------------------------

/// DescribeMapRun as the wire has it (for exact counters).
async fn map_run(raw: &Raw, map_run_arn: &str) -> Value {
    raw.ok("DescribeMapRun", &json!({"mapRunArn": map_run_arn}))
        .await
}

/// `MapRunItemCounts` / `MapRunExecutionCounts`; `total` is the sum of the statuses.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    pending: u64,
    running: u64,
    succeeded: u64,
    failed: u64,
    timed_out: u64,
    aborted: u64,
    results_written: u64,
    pending_redrive: u64,
}

impl Counts {
    fn json(self) -> Value {
        json!({
            "pending": self.pending,
            "running": self.running,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "timedOut": self.timed_out,
            "aborted": self.aborted,
            "total": self.pending + self.running + self.succeeded + self.failed
                + self.timed_out + self.aborted,
            "resultsWritten": self.results_written,
            "failuresNotRedrivable": 0,
            "pendingRedrive": self.pending_redrive,
        })
    }
}

fn succeeded(n: u64) -> Counts {
    Counts {
        succeeded: n,
        ..Counts::default()
    }
}

/// `arn:aws:states:REGION:ACCOUNT:mapRun:SM/LABEL:UUID` → `(SM/LABEL, UUID)`.
fn split_map_run_arn(arn: &str) -> (String, String) {
    let prefix = format!("arn:aws:states:{REGION}:{ACCOUNT}:mapRun:");
    let rest = arn
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{arn} does not start with {prefix}"));
    let (name, id) = rest
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{arn} has no id"));
    assert!(is_uuid(id), "{arn}: the id {id:?} is not a UUID");
    (name.to_owned(), id.to_owned())
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

// ---------------------------------------------------------------------------
// Helpers: activities
// ---------------------------------------------------------------------------

/// An activity task a worker took.
#[derive(Debug, Clone)]
struct Task {
    token: String,
    input: Value,
}

impl Task {
    fn index(&self) -> i64 {
        self.input["index"]
            .as_i64()
            .unwrap_or_else(|| panic!("task input without an index: {}", self.input))
    }
}

/// Long-polls GetActivityTask until a task arrives (at most `DONE_WITHIN`).
async fn take(client: &aws_sdk_sfn::Client, activity: &str) -> Task {
    let poll = async {
        loop {
            let out = client
                .get_activity_task()
                .activity_arn(activity)
                .worker_name("distributed-worker")
                .send()
                .await
                .unwrap_or_else(|e| panic!("GetActivityTask: {}", DisplayErrorContext(&e)));
            if let Some(token) = out.task_token().filter(|t| !t.is_empty()) {
                return Task {
                    token: token.to_owned(),
                    input: parse_json("activity task input", out.input()),
                };
            }
        }
    };
    tokio::time::timeout(DONE_WITHIN, poll)
        .await
        .unwrap_or_else(|_| panic!("no task on {activity} within {DONE_WITHIN:?}"))
}

/// Takes `n` tasks, sorted by item index.
async fn take_n(client: &aws_sdk_sfn::Client, activity: &str, n: usize) -> Vec<Task> {
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        tasks.push(take(client, activity).await);
    }
    tasks.sort_by_key(Task::index);
    tasks
}

fn indexes(tasks: &[Task]) -> Vec<i64> {
    tasks.iter().map(Task::index).collect()
}

/// A worker that takes every task of an activity and succeeds it with
/// `{"index": i, "attempt": attempt}`, recording the item indexes it saw.
struct Worker {
    seen: Arc<Mutex<Vec<i64>>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn spawn(client: &aws_sdk_sfn::Client, activity: &str, attempt: u64) -> Worker {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (client, activity, log) = (client.clone(), activity.to_owned(), seen.clone());
        let handle = tokio::spawn(async move {
            loop {
                let t = take(&client, &activity).await;
                log.lock().expect("worker log").push(t.index());
                let out = json!({"index": t.index(), "attempt": attempt});
                let _ = try_succeed(&client, &t.token, &out).await;
            }
        });
        Worker { seen, handle }
    }

    /// Stops the worker; the indexes of the tasks it took, sorted.
    fn stop(self) -> Vec<i64> {
        self.handle.abort();
        let mut seen = self.seen.lock().expect("worker log").clone();
        seen.sort();
        seen
    }
}

// ---------------------------------------------------------------------------
// Map Runs, children and histories
// ---------------------------------------------------------------------------

struct RunCase {
    name: &'static str,
    execution_type: &'static str,
    label: Option<&'static str>,
}

/// A Distributed Map over `ItemsPath` with an `ItemSelector` on `$$.Map.Item.*`: the parent's
/// Map Run events, the output in item order, the Map Run ARN (labelled or generated), the
/// children (Standard: listed by `mapRunArn`, each with its history and redrive status),
/// ListMapRuns and DescribeMapRun.
#[tokio::test]
async fn map_run_children_and_history() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let raw = server.raw();
    let cases = [
        RunCase {
            name: "standard-labelled",
            execution_type: "STANDARD",
            label: Some("items-Label_1"),
        },
        RunCase {
            name: "standard-unlabelled",
            execution_type: "STANDARD",
            label: None,
        },
        RunCase {
            name: "express",
            execution_type: "EXPRESS",
            label: Some("fast"),
        },
    ];
    let things = json!([{"n": 10}, {"n": 20}, {"n": 30}, {"n": 40}]);
    let input = json!({"tag": "t", "things": things});
    let child_inputs: Vec<Value> = (0..4)
        .map(|i| json!({"value": things[i], "index": i, "tag": "t"}))
        .collect();
    let child_outputs: Vec<Value> = (0..4)
        .map(|i| json!({"n": (i + 1) * 10, "index": i, "tag": "t"}))
        .collect();
    for case in cases {
        let mut fields = json!({
            "ItemsPath": "$.things",
            "ItemSelector": {
                "value.$": "$$.Map.Item.Value",
                "index.$": "$$.Map.Item.Index",
                "tag.$": "$.tag"
            },
            "ResultPath": "$.results",
            "Next": "Done"
        });
        if let Some(label) = case.label {
            fields["Label"] = json!(label);
        }
        let processor = json!({"StartAt": "Shape", "States": {"Shape": {
            "Type": "Pass",
            "Parameters": {"n.$": "$.value.n", "index.$": "$.index", "tag.$": "$.tag"},
            "End": true
        }}});
        let def = machine(
            distributed_map(case.execution_type, processor, fields),
            json!({"Done": {"Type": "Succeed"}}),
        );
        let sm_name = format!("dmap-{}", case.name);
        let sm = create_machine(&client, &sm_name, &def).await;
        let exec = start(&client, &sm, None, &input).await;
        let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
        let mut want_output = input.clone();
        want_output["results"] = json!(child_outputs);
        assert_eq!(output(&d), want_output, "{}: output", case.name);

        // The parent's history.
        let events = history(&client, &exec).await;
        assert_eq!(
            numbered(&events),
            succeeded_parent(&[
                "SucceedStateEntered",
                "SucceedStateExited",
                "ExecutionSucceeded"
            ]),
            "{}: parent history",
            case.name
        );
        assert_eq!(map_lengths(&events), [4], "{}", case.name);
        let entered = events[1]
            .state_entered_event_details()
            .expect("MapStateEntered details");
        assert_eq!(entered.name(), "Fan");
        assert_eq!(parse_json("MapStateEntered input", entered.input()), input);

        // The Map Run ARN: SM/LABEL, a generated label when there is none.
        let mr = map_run_arn_of(&events);
        let (run_name, _) = split_map_run_arn(&mr);
        let label = run_name
            .strip_prefix(&format!("{sm_name}/"))
            .unwrap_or_else(|| panic!("{}: {mr} is not under {sm_name}/", case.name));
        match case.label {
            Some(l) => assert_eq!(label, l, "{}: label", case.name),
            None => assert!(
                !label.is_empty()
                    && label.len() <= 40
                    && !label.contains([':', '/', ' '])
                    && label != "Fan",
                "{}: generated label {label:?}",
                case.name
            ),
        }
        let child_sm = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{sm_name}/{label}");

        // ListMapRuns.
        let runs = client
            .list_map_runs()
            .execution_arn(&exec)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListMapRuns: {}", DisplayErrorContext(&e)));
        assert_eq!(runs.map_runs().len(), 1, "{}: map runs", case.name);
        let listed = &runs.map_runs()[0];
        assert_eq!(listed.execution_arn(), exec);
        assert_eq!(listed.map_run_arn(), mr);
        assert_eq!(listed.state_machine_arn(), child_sm, "{}", case.name);
        let stop = listed.stop_date().expect("ListMapRuns stopDate");
        assert!(listed.start_date() <= stop, "{}", case.name);

        // DescribeMapRun through the SDK (the shapes parse) and on the wire (exact counters).
        let dm = client
            .describe_map_run()
            .map_run_arn(&mr)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeMapRun: {}", DisplayErrorContext(&e)));
        assert_eq!(*dm.status(), MapRunStatus::Succeeded, "{}", case.name);
        assert_eq!(dm.execution_arn(), exec);
        assert_eq!(dm.max_concurrency(), 0);
        assert_eq!(dm.tolerated_failure_count(), 0);
        assert_eq!(dm.tolerated_failure_percentage(), 0.0);
        assert_eq!(dm.item_counts().map(|c| c.succeeded()), Some(4));
        assert_eq!(dm.execution_counts().map(|c| c.total()), Some(4));
        assert_eq!(dm.redrive_count(), Some(0));
        assert!(dm.redrive_date().is_none(), "{}: redriveDate", case.name);
        assert!(dm.stop_date().is_some(), "{}: stopDate", case.name);
        let wire = map_run(&raw, &mr).await;
        assert_eq!(wire["itemCounts"], succeeded(4).json(), "{}", case.name);
        assert_eq!(
            wire["executionCounts"],
            succeeded(4).json(),
            "{}",
            case.name
        );

        // The parent is the only execution of its state machine.
        let parents = client
            .list_executions()
            .state_machine_arn(&sm)
            .send()
            .await
            .expect("ListExecutions of the parent's state machine");
        let listed: Vec<&str> = parents
            .executions()
            .iter()
            .map(|e| e.execution_arn())
            .collect();
        assert_eq!(listed, [exec.as_str()], "{}: parent listing", case.name);

        if case.execution_type == "EXPRESS" {
            continue;
        }
        // Standard children: listed by mapRunArn, each with its own history.
        let kids = children(&client, &mr, None).await;
        assert_eq!(kids.len(), 4, "{}: children", case.name);
        let mut seen_inputs = Vec::new();
        for child in &kids {
            let arn = child.execution_arn();
            assert_eq!(child.map_run_arn(), Some(mr.as_str()), "{arn}");
            assert_eq!(child.state_machine_arn(), child_sm, "{arn}");
            assert_eq!(*child.status(), ExecutionStatus::Succeeded, "{arn}");
            let arn_prefix =
                format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{sm_name}/{label}:");
            assert!(arn.starts_with(&arn_prefix), "{arn} under {arn_prefix}");
            let cd = describe(&client, arn).await;
            assert_eq!(cd.map_run_arn(), Some(mr.as_str()), "{arn}");
            assert_eq!(cd.state_machine_arn(), child_sm, "{arn}");
            assert_eq!(
                cd.redrive_status(),
                Some(&ExecutionRedriveStatus::NotRedrivable)
            );
            assert_eq!(cd.redrive_status_reason(), Some(SUCCEEDED_REASON));
            let child_input = parse_json("child input", cd.input());
            let i = child_input["index"].as_u64().expect("index") as usize;
            assert_eq!(child_input, child_inputs[i], "{arn}: input");
            assert_eq!(output(&cd), child_outputs[i], "{arn}: output");
            seen_inputs.push(i);
            let child_events = history(&client, arn).await;
            assert_eq!(
                numbered(&child_events),
                expect_numbered(
                    1,
                    &[
                        ("ExecutionStarted", 0),
                        ("PassStateEntered", 0),
                        ("PassStateExited", 2),
                        ("ExecutionSucceeded", 3),
                    ]
                ),
                "{arn}: child history"
            );
        }
        seen_inputs.sort();
        assert_eq!(
            seen_inputs,
            [0, 1, 2, 3],
            "{}: one child per item",
            case.name
        );
    }
}

// ---------------------------------------------------------------------------
// Tolerated failures
// ---------------------------------------------------------------------------

struct ThresholdCase {
    name: &'static str,
    fields: Value,
    limits: Value,
    status: ExecutionStatus,
    /// The parent's events: type and previousEventId.
    events: Vec<(&'static str, i64)>,
    /// `(error, cause)` of the execution when it failed.
    failure: Option<(&'static str, &'static str)>,
    /// The Map Run's item counters, when one ran.
    items: Option<Counts>,
    /// DescribeMapRun `toleratedFailureCount`, `toleratedFailurePercentage`.
    tolerated: (u64, f64),
}

fn threshold_cases() -> Vec<ThresholdCase> {
    let started = [
        ("ExecutionStarted", 0),
        ("MapStateEntered", 0),
        ("MapStateStarted", 2),
        ("MapRunStarted", 3),
    ];
    // The tail, each event following the one before.
    let with = |tail: &[&'static str]| {
        let mut v = started.to_vec();
        for (i, t) in tail.iter().enumerate() {
            v.push((*t, 4 + i as i64));
        }
        v
    };
    let run_failed = with(&["MapRunFailed", "MapStateFailed", "ExecutionFailed"]);
    let mut run_succeeded = with(&["MapRunSucceeded", "MapStateSucceeded"]);
    run_succeeded.extend([("MapStateExited", 4), ("ExecutionSucceeded", 7)]);
    let threshold = Some((THRESHOLD_ERROR, THRESHOLD_CAUSE));
    // Items 1 and 3 fail; one child at a time, so the counters are exact.
    let failed_at_1 = Counts {
        succeeded: 1,
        failed: 1,
        pending: 2,
        ..Counts::default()
    };
    let failed_at_3 = Counts {
        succeeded: 2,
        failed: 2,
        ..Counts::default()
    };
    vec![
        ThresholdCase {
            name: "none",
            fields: json!({}),
            limits: json!({}),
            status: ExecutionStatus::Failed,
            events: run_failed.clone(),
            failure: threshold,
            items: Some(failed_at_1),
            tolerated: (0, 0.0),
        },
        ThresholdCase {
            name: "count-zero",
            fields: json!({"ToleratedFailureCount": 0}),
            limits: json!({}),
            status: ExecutionStatus::Failed,
            events: run_failed.clone(),
            failure: threshold,
            items: Some(failed_at_1),
            tolerated: (0, 0.0),
        },
        ThresholdCase {
            name: "count-reached",
            fields: json!({"ToleratedFailureCount": 2}),
            limits: json!({}),
            status: ExecutionStatus::Succeeded,
            events: run_succeeded.clone(),
            failure: None,
            items: Some(failed_at_3),
            tolerated: (2, 0.0),
        },
        ThresholdCase {
            name: "count-exceeded",
            fields: json!({"ToleratedFailureCount": 1}),
            limits: json!({}),
            status: ExecutionStatus::Failed,
            events: run_failed.clone(),
            failure: threshold,
            items: Some(failed_at_3),
            tolerated: (1, 0.0),
        },
        ThresholdCase {
            name: "percentage-reached",
            fields: json!({"ToleratedFailurePercentage": 50}),
            limits: json!({}),
            status: ExecutionStatus::Succeeded,
            events: run_succeeded.clone(),
            failure: None,
            items: Some(failed_at_3),
            tolerated: (0, 50.0),
        },
        ThresholdCase {
            // 1 of 4 (25 %) is tolerated, 2 of 4 (50 %) is not.
            name: "percentage-exceeded",
            fields: json!({"ToleratedFailurePercentage": 40}),
            limits: json!({}),
            status: ExecutionStatus::Failed,
            events: run_failed.clone(),
            failure: threshold,
            items: Some(failed_at_3),
            tolerated: (0, 40.0),
        },
        ThresholdCase {
            name: "count-path",
            fields: json!({"ToleratedFailureCountPath": "$.limits.count"}),
            limits: json!({"count": 2}),
            status: ExecutionStatus::Succeeded,
            events: run_succeeded.clone(),
            failure: None,
            items: Some(failed_at_3),
            tolerated: (2, 0.0),
        },
        ThresholdCase {
            // A number written as a string is accepted, as AWS does.
            name: "count-path-string",
            fields: json!({"ToleratedFailureCountPath": "$.limits.count"}),
            limits: json!({"count": "2"}),
            status: ExecutionStatus::Succeeded,
            events: run_succeeded.clone(),
            failure: None,
            items: Some(failed_at_3),
            tolerated: (2, 0.0),
        },
        ThresholdCase {
            name: "percentage-path",
            fields: json!({"ToleratedFailurePercentagePath": "$.limits.percentage"}),
            limits: json!({"percentage": 20}),
            status: ExecutionStatus::Failed,
            events: run_failed.clone(),
            failure: threshold,
            items: Some(failed_at_1),
            tolerated: (0, 20.0),
        },
        ThresholdCase {
            // The state fails before any Map Run starts; no MapStateFailed.
            name: "negative-count-path",
            fields: json!({"ToleratedFailureCountPath": "$.limits.count"}),
            limits: json!({"count": -1}),
            status: ExecutionStatus::Failed,
            // ★ MapStateStarted (the items are in the input) comes before the thresholds are
            // read.
            events: vec![
                ("ExecutionStarted", 0),
                ("MapStateEntered", 0),
                ("MapStateStarted", 2),
                ("ExecutionFailed", 3),
            ],
            failure: Some((
                "States.Runtime",
                "ToleratedFailureCount cannot be negative.",
            )),
            items: None,
            tolerated: (0, 0.0),
        },
        ThresholdCase {
            name: "catch",
            fields: json!({
                "Catch": [
                    // The children's own error does not reach the Map state.
                    {"ErrorEquals": ["ItemFailed"], "Next": "Wrong"},
                    {"ErrorEquals": [THRESHOLD_ERROR], "ResultPath": "$.caught", "Next": "Handled"}
                ],
                "Next": "Wrong"
            }),
            limits: json!({}),
            status: ExecutionStatus::Succeeded,
            events: with(&[
                "MapRunFailed",
                "MapStateFailed",
                "MapStateExited",
                "PassStateEntered",
                "PassStateExited",
                "ExecutionSucceeded",
            ]),
            failure: None,
            items: Some(failed_at_1),
            tolerated: (0, 0.0),
        },
    ]
}

/// No threshold fails the Map Run on the first failed child; `ToleratedFailureCount`,
/// `ToleratedFailurePercentage` and their `…Path` forms tolerate up to their limit; a
/// negative count from the input is a `States.Runtime` failure; Catch catches the Map Run's
/// `States.ExceedToleratedFailureThreshold`. A failed Standard child is `REDRIVABLE_BY_MAP_RUN`
/// and cannot be redriven on its own.
#[tokio::test]
async fn tolerated_failure_thresholds() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let raw = server.raw();
    let processor = failing_processor();
    let items = json!([
        {"id": 0, "fail": false},
        {"id": 1, "fail": true},
        {"id": 2, "fail": false},
        {"id": 3, "fail": true}
    ]);
    for case in threshold_cases() {
        let mut fields = json!({"ItemsPath": "$.items", "MaxConcurrency": 1});
        for (k, v) in case.fields.as_object().cloned().unwrap_or_default() {
            fields[k] = v;
        }
        let def = machine(
            distributed_map("STANDARD", processor.clone(), fields),
            json!({
                "Handled": {"Type": "Pass", "End": true},
                "Wrong": {"Type": "Fail", "Error": "WrongRoute"}
            }),
        );
        let sm = create_machine(&client, &format!("tolerate-{}", case.name), &def).await;
        let input = json!({"items": items, "limits": case.limits});
        let exec = start(&client, &sm, None, &input).await;
        let d = closed(&client, &exec, case.status.clone()).await;
        let events = history(&client, &exec).await;
        assert_eq!(
            numbered(&events),
            expect_numbered(1, &case.events),
            "{}: events",
            case.name
        );
        let map_run_failed = case.events.iter().any(|(t, _)| *t == "MapRunFailed");
        match case.failure {
            Some((error, cause)) => {
                assert_eq!(d.error(), Some(error), "{}", case.name);
                let (e, c) = failure(&events);
                assert_eq!(e, error, "{}", case.name);
                assert!(c.contains(cause), "{}: cause {c:?}", case.name);
            }
            None => assert!(d.error().is_none(), "{}", case.name),
        }
        let runs = map_run_failures(&events);
        if map_run_failed {
            assert_eq!(
                runs,
                [(THRESHOLD_ERROR.to_owned(), THRESHOLD_CAUSE.to_owned())],
                "{}: MapRunFailed details",
                case.name
            );
        }
        if case.name == "catch" {
            let mut want = input.clone();
            want["caught"] = json!({"Error": THRESHOLD_ERROR, "Cause": THRESHOLD_CAUSE});
            assert_eq!(output(&d), want, "catch: output");
        } else if case.status == ExecutionStatus::Succeeded {
            let out = output(&d);
            let out = out.as_array().expect("the Map output is an array");
            assert_eq!(out.len(), 4, "{}: {out:?}", case.name);
            assert_eq!(
                (&out[0], &out[2]),
                (&json!({"ok": 0}), &json!({"ok": 2})),
                "{}: outputs of the succeeded items",
                case.name
            );
        }

        let listed = raw.ok("ListMapRuns", &json!({"executionArn": exec})).await;
        let Some(items) = case.items else {
            assert_eq!(listed["mapRuns"], json!([]), "{}: no Map Run", case.name);
            continue;
        };
        let mr = map_run_arn_of(&events);
        let dm = map_run(&raw, &mr).await;
        let status = if map_run_failed {
            "FAILED"
        } else {
            "SUCCEEDED"
        };
        assert_eq!(dm["status"], json!(status), "{}: {dm}", case.name);
        assert_eq!(dm["itemCounts"], items.json(), "{}: items", case.name);
        assert_eq!(
            dm["executionCounts"],
            items.json(),
            "{}: executions",
            case.name
        );
        assert_eq!(dm["maxConcurrency"], json!(1), "{}", case.name);
        assert_eq!(
            (
                dm["toleratedFailureCount"].as_u64(),
                dm["toleratedFailurePercentage"].as_f64()
            ),
            (Some(case.tolerated.0), Some(case.tolerated.1)),
            "{}: thresholds",
            case.name
        );

        if case.name == "none" {
            // The failed child waits for its Map Run; the successful one is done.
            let by_index = children_by_id(&client, &mr).await;
            assert_eq!(by_index.keys().copied().collect::<Vec<_>>(), [0, 1]);
            let failed_child = describe(&client, &by_index[&1]).await;
            assert_eq!(*failed_child.status(), ExecutionStatus::Failed);
            assert_eq!(failed_child.error(), Some("ItemFailed"));
            assert_eq!(
                failed_child.redrive_status(),
                Some(&ExecutionRedriveStatus::RedrivableByMapRun)
            );
            assert_eq!(failed_child.redrive_status_reason(), None);
            let err = client
                .redrive_execution()
                .execution_arn(&by_index[&1])
                .send()
                .await
                .expect_err("a Map Run child cannot be redriven on its own");
            let err = err.into_service_error();
            assert!(err.is_execution_not_redrivable(), "★ {err:?}");
            let ok_child = describe(&client, &by_index[&0]).await;
            assert_eq!(
                (ok_child.redrive_status(), ok_child.redrive_status_reason()),
                (
                    Some(&ExecutionRedriveStatus::NotRedrivable),
                    Some(SUCCEEDED_REASON)
                )
            );
            // The parent itself is redrivable.
            let parent = describe(&client, &exec).await;
            assert_eq!(
                parent.redrive_status(),
                Some(&ExecutionRedriveStatus::Redrivable)
            );
        }
    }
}

/// Each child's ARN by the `id` of its input.
async fn children_by_id(client: &aws_sdk_sfn::Client, map_run_arn: &str) -> BTreeMap<i64, String> {
    let mut by_id = BTreeMap::new();
    for child in children(client, map_run_arn, None).await {
        let d = describe(client, child.execution_arn()).await;
        let input = parse_json("child input", d.input());
        let id = input["id"].as_i64().expect("id");
        by_id.insert(id, child.execution_arn().to_owned());
    }
    by_id
}

// ---------------------------------------------------------------------------
// MaxConcurrency and UpdateMapRun
// ---------------------------------------------------------------------------

/// `MaxConcurrency: 2` keeps two children running (the third task never comes while two are
/// held); UpdateMapRun to 5 starts the waiting children at once.
#[tokio::test]
async fn max_concurrency_and_update_map_run() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let raw = server.raw();
    let activity = create_activity(&client, "dmap-limit").await;
    let def = machine(
        distributed_map(
            "STANDARD",
            activity_processor(&activity),
            json!({"MaxConcurrency": 2, "ItemSelector": index_selector()}),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-limit", &def).await;
    let exec = start(&client, &sm, None, &json!([0, 1, 2, 3, 4, 5])).await;
    let mut held = take_n(&client, &activity, 2).await;

    let mr = eventually("the Map Run started", || async {
        let events = history(&client, &exec).await;
        (count(&events, "MapRunStarted") == 1).then(|| map_run_arn_of(&events))
    })
    .await;
    // Give the Map Run time to start more children if it wrongly would.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dm = map_run(&raw, &mr).await;
    let two_running = Counts {
        running: 2,
        pending: 4,
        ..Counts::default()
    };
    assert_eq!(dm["executionCounts"], two_running.json(), "{dm}");
    assert_eq!(dm["maxConcurrency"], json!(2));
    assert_eq!(children(&client, &mr, None).await.len(), 2);

    // One ends: exactly one more starts.
    let first = held.remove(0);
    succeed(&client, &first.token, &json!({"done": first.index()})).await;
    held.push(take(&client, &activity).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dm = map_run(&raw, &mr).await;
    let after_one = Counts {
        running: 2,
        succeeded: 1,
        pending: 3,
        ..Counts::default()
    };
    assert_eq!(dm["executionCounts"], after_one.json(), "{dm}");
    assert_eq!(children(&client, &mr, None).await.len(), 3);

    // Raised to 5: the three waiting children start while the two tasks are still held.
    client
        .update_map_run()
        .map_run_arn(&mr)
        .max_concurrency(5)
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateMapRun: {}", DisplayErrorContext(&e)));
    held.extend(take_n(&client, &activity, 3).await);
    let dm = map_run(&raw, &mr).await;
    let all_started = Counts {
        running: 5,
        succeeded: 1,
        ..Counts::default()
    };
    assert_eq!(dm["executionCounts"], all_started.json(), "{dm}");
    assert_eq!(dm["maxConcurrency"], json!(5));
    let mut all: Vec<i64> = indexes(&held);
    all.push(first.index());
    all.sort();
    assert_eq!(all, [0, 1, 2, 3, 4, 5], "one task per item");

    for t in &held {
        succeed(&client, &t.token, &json!({"done": t.index()})).await;
    }
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let want: Vec<Value> = (0..6).map(|i| json!({"done": i})).collect();
    assert_eq!(output(&d), json!(want));
    assert_eq!(
        map_run(&raw, &mr).await["executionCounts"],
        succeeded(6).json()
    );
    // Each child scheduled its task once.
    for (i, arn) in children_by_index(&client, &mr).await {
        let events = history(&client, &arn).await;
        assert_eq!(count(&events, "ActivityScheduled"), 1, "child {i}");
    }
}

// ---------------------------------------------------------------------------
// Redrive
// ---------------------------------------------------------------------------

/// A parent whose Map Run failed (items 3 and 4 unsuccessful) is redriven: the same Map Run
/// is redriven (`MapRunRedriven`), only the unsuccessful items run again, Standard children
/// in place (same ARNs, their own `ExecutionRedriven`), Express ones as new executions; the
/// output has every item's result in order.
#[tokio::test]
async fn redrive_standard_children_in_place() {
    redrive_failed_map_run("STANDARD").await;
}

/// The same with Express children: the failed items run again as new executions.
#[tokio::test]
async fn redrive_express_children_reruns_failed_items() {
    redrive_failed_map_run("EXPRESS").await;
}

async fn redrive_failed_map_run(execution_type: &str) {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let raw = server.raw();
    let name = format!("dmap-redrive-{}", execution_type.to_lowercase());
    let activity = create_activity(&client, &name).await;
    let def = machine(
        distributed_map(
            execution_type,
            activity_processor(&activity),
            json!({"ItemSelector": index_selector(), "Label": "redo"}),
        ),
        json!({}),
    );
    let sm = create_machine(&client, &name, &def).await;
    let exec = start(&client, &sm, None, &json!(["a", "b", "c", "d", "e"])).await;

    // First attempt: 0, 1, 2 succeed; 3 fails, which fails the Map Run; 4 fails or is
    // aborted with it.
    let tasks = take_n(&client, &activity, 5).await;
    assert_eq!(indexes(&tasks), [0, 1, 2, 3, 4], "{execution_type}");
    for t in &tasks[..3] {
        succeed(
            &client,
            &t.token,
            &json!({"index": t.index(), "attempt": 1}),
        )
        .await;
    }
    let mr = map_run_arn_of(&history(&client, &exec).await);
    eventually("three children succeeded", || async {
        let dm = map_run(&raw, &mr).await;
        (dm["itemCounts"]["succeeded"] == json!(3)).then_some(())
    })
    .await;
    try_fail(&client, &tasks[3].token, "ItemBroke")
        .await
        .unwrap_or_else(|code| panic!("SendTaskFailure: {code}"));
    // Refused when the Map Run has already stopped the child.
    let _ = try_fail(&client, &tasks[4].token, "ItemBroke").await;
    let d = closed(&client, &exec, ExecutionStatus::Failed).await;
    assert_eq!(d.error(), Some(THRESHOLD_ERROR), "{execution_type}");
    let first_events = history(&client, &exec).await;
    assert_eq!(
        event_types(&first_events),
        [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapRunStarted",
            "MapRunFailed",
            "MapStateFailed",
            "ExecutionFailed"
        ],
        "{execution_type}: first attempt"
    );
    let dm = map_run(&raw, &mr).await;
    assert_eq!(dm["status"], json!("FAILED"), "{dm}");
    let ic = &dm["itemCounts"];
    assert_eq!(
        (ic["succeeded"].as_u64(), ic["total"].as_u64()),
        (Some(3), Some(5)),
        "{dm}"
    );
    assert_eq!(
        ic["failed"].as_u64().unwrap_or(0) + ic["aborted"].as_u64().unwrap_or(0),
        2,
        "{execution_type}: two unsuccessful items: {dm}"
    );
    assert_eq!(dm["redriveCount"], json!(0));
    let standard_children = if execution_type == "STANDARD" {
        let by_index = children_by_index(&client, &mr).await;
        assert_eq!(by_index.len(), 5);
        for i in [3, 4] {
            let c = describe(&client, &by_index[&i]).await;
            assert_eq!(
                c.redrive_status(),
                Some(&ExecutionRedriveStatus::RedrivableByMapRun),
                "child {i} ({:?})",
                c.status()
            );
        }
        by_index
    } else {
        BTreeMap::new()
    };

    // Redrive the parent: only items 3 and 4 come back.
    let redriven = client
        .redrive_execution()
        .execution_arn(&exec)
        .send()
        .await
        .unwrap_or_else(|e| panic!("RedriveExecution: {}", DisplayErrorContext(&e)));
    let worker = Worker::spawn(&client, &activity, 2);
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    assert_eq!(
        worker.stop(),
        [3, 4],
        "{execution_type}: the items run again"
    );
    let want: Vec<Value> = (0..5)
        .map(|i| json!({"index": i, "attempt": if i < 3 { 1 } else { 2 }}))
        .collect();
    assert_eq!(output(&d), json!(want), "{execution_type}: output");
    assert_eq!(d.redrive_count(), Some(1));

    let events = history(&client, &exec).await;
    let (redriven_id, tail) = after_redrive(&events, 1);
    assert_eq!(redriven_id, 8, "{execution_type}");
    assert_eq!(
        numbered(tail),
        expect_numbered(
            9,
            &[
                ("MapStateEntered", 8),
                ("MapStateStarted", 9),
                ("MapRunRedriven", 10),
                ("MapRunSucceeded", 11),
                ("MapStateSucceeded", 12),
                ("MapStateExited", 11),
                ("ExecutionSucceeded", 14),
            ]
        ),
        "{execution_type}: after ExecutionRedriven"
    );
    assert_eq!(map_lengths(&events), [5, 5], "{execution_type}");
    let rd = tail[2]
        .map_run_redriven_event_details()
        .expect("mapRunRedrivenEventDetails");
    assert_eq!(rd.map_run_arn(), Some(mr.as_str()), "★ the same Map Run");
    assert_eq!(rd.redrive_count(), Some(1));
    assert_eq!(count(&events, "MapRunStarted"), 1, "no new Map Run");

    let dm = map_run(&raw, &mr).await;
    assert_eq!(dm["status"], json!("SUCCEEDED"), "{dm}");
    assert_eq!(dm["redriveCount"], json!(1), "{dm}");
    assert!(dm["redriveDate"].is_number(), "redriveDate: {dm}");
    let redrive_secs = redriven.redrive_date().secs();
    let map_run_redrive_secs = dm["redriveDate"].as_f64().unwrap_or(0.0) as i64;
    assert!(
        (map_run_redrive_secs - redrive_secs).abs() <= 2,
        "{execution_type}: Map Run redriveDate {map_run_redrive_secs} vs {redrive_secs}"
    );
    assert_eq!(dm["itemCounts"], succeeded(5).json(), "{dm}");
    let runs = raw.ok("ListMapRuns", &json!({"executionArn": exec})).await;
    assert_eq!(runs["mapRuns"].as_array().map(Vec::len), Some(1));

    if execution_type == "EXPRESS" {
        assert_eq!(dm["executionCounts"]["succeeded"], json!(5), "{dm}");
        return;
    }
    assert_eq!(dm["executionCounts"], succeeded(5).json(), "{dm}");
    // Standard children: the same five executions; 3 and 4 redriven in place.
    let after = children_by_index(&client, &mr).await;
    assert_eq!(after, standard_children, "the same child ARNs");
    let listed = |items: Vec<ExecutionListItem>| -> BTreeSet<String> {
        items.iter().map(|e| e.execution_arn().to_owned()).collect()
    };
    let redriven_children =
        listed(children(&client, &mr, Some(ExecutionRedriveFilter::Redriven)).await);
    let not_redriven =
        listed(children(&client, &mr, Some(ExecutionRedriveFilter::NotRedriven)).await);
    let arns = |ids: &[i64]| -> BTreeSet<String> {
        ids.iter().map(|i| standard_children[i].clone()).collect()
    };
    assert_eq!(redriven_children, arns(&[3, 4]), "REDRIVEN children");
    assert_eq!(not_redriven, arns(&[0, 1, 2]), "NOT_REDRIVEN children");
    for (i, arn) in &standard_children {
        let c = describe(&client, arn).await;
        let child_events = history(&client, arn).await;
        let rerun = *i >= 3;
        assert_eq!(*c.status(), ExecutionStatus::Succeeded, "child {i}");
        assert_eq!(c.redrive_count(), Some(i32::from(rerun)), "child {i}");
        assert_eq!(
            count(&child_events, "ExecutionRedriven"),
            usize::from(rerun),
            "child {i}: {:?}",
            event_types(&child_events)
        );
        assert_eq!(
            count(&child_events, "ActivityScheduled"),
            1 + usize::from(rerun),
            "child {i}"
        );
        assert_eq!(count(&child_events, "ExecutionSucceeded"), 1, "child {i}");
        if rerun {
            let (_, child_tail) = after_redrive(&child_events, 1);
            assert_eq!(
                event_types(child_tail),
                [
                    "TaskStateEntered",
                    "ActivityScheduled",
                    "ActivityStarted",
                    "ActivitySucceeded",
                    "TaskStateExited",
                    "ExecutionSucceeded"
                ],
                "child {i} after its redrive"
            );
            let redriven_event = child_events
                .iter()
                .find_map(|e| e.execution_redriven_event_details())
                .expect("ExecutionRedriven details");
            assert_eq!(redriven_event.redrive_count(), Some(1), "child {i}");
        }
    }
}

// ---------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------

/// kill -9 while a Map Run's Standard children wait on an activity: after the restart the
/// Map Run resumes; the task a worker held can still be completed, the ones nobody took are
/// delivered again, and no child runs twice.
#[tokio::test]
async fn map_run_survives_kill9() {
    let mut server = Server::sqlite(SCALE);
    let client = server.client();
    let raw = server.raw();
    let activity = create_activity(&client, "dmap-restart").await;
    let def = machine(
        distributed_map(
            "STANDARD",
            activity_processor(&activity),
            json!({"ItemSelector": index_selector(), "MaxConcurrency": 2}),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-restart", &def).await;
    let exec = start(&client, &sm, None, &json!([10, 11, 12, 13])).await;

    // Item 0 succeeds before the kill; item 1's task is held across it.
    let first = take_n(&client, &activity, 2).await;
    assert_eq!(indexes(&first), [0, 1]);
    succeed(&client, &first[0].token, &json!({"done": 0})).await;
    let held = first[1].clone();
    let mr = map_run_arn_of(&history(&client, &exec).await);
    // The next child (item 2) started and scheduled its task; nobody took it.
    eventually("item 2's task scheduled", || async {
        let by_index = children_by_index(&client, &mr).await;
        let arn = by_index.get(&2)?;
        let events = history(&client, arn).await;
        (count(&events, "ActivityScheduled") == 1).then_some(())
    })
    .await;
    let dm = map_run(&raw, &mr).await;
    assert_eq!(
        dm["executionCounts"],
        Counts {
            succeeded: 1,
            running: 2,
            pending: 1,
            ..Counts::default()
        }
        .json(),
        "{dm}"
    );

    server.kill9();
    server.restart();
    let client = server.client();
    let raw = server.raw();

    // The held task is still the worker's.
    succeed(&client, &held.token, &json!({"done": 1})).await;
    // Item 2's task comes again, and item 3's (the concurrency limit still holds).
    let mut rest = Vec::new();
    for _ in 0..2 {
        let t = take(&client, &activity).await;
        let dm = map_run(&raw, &mr).await;
        assert!(
            dm["executionCounts"]["running"].as_u64() <= Some(2),
            "after the restart: {dm}"
        );
        succeed(&client, &t.token, &json!({"done": t.index()})).await;
        rest.push(t.index());
    }
    rest.sort();
    assert_eq!(rest, [2, 3], "the tasks after the restart");
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let want: Vec<Value> = (0..4).map(|i| json!({"done": i})).collect();
    assert_eq!(output(&d), json!(want), "{}", server.logs());

    let events = history(&client, &exec).await;
    assert_eq!(
        numbered(&events),
        succeeded_parent(&["ExecutionSucceeded"]),
        "parent history"
    );
    let dm = map_run(&raw, &mr).await;
    assert_eq!(dm["status"], json!("SUCCEEDED"));
    assert_eq!(dm["executionCounts"], succeeded(4).json(), "{dm}");
    let by_index = children_by_index(&client, &mr).await;
    assert_eq!(by_index.len(), 4, "one child per item");
    for (i, arn) in by_index {
        let child_events = history(&client, &arn).await;
        common::assert_history_well_formed(&format!("child {i}"), &child_events);
        assert_eq!(
            (
                count(&child_events, "ActivitySucceeded"),
                count(&child_events, "ExecutionSucceeded")
            ),
            (1, 1),
            "child {i}: {:?}",
            event_types(&child_events)
        );
    }
}

/// kill -9 while a Map Run's Express children run: Express executions are not durable, so
/// the one running at the kill runs again, but the ones that ended before it do not.
#[tokio::test]
async fn express_children_that_ended_survive_kill9() {
    let mut server = Server::sqlite(SCALE);
    let client = server.client();
    let activity = create_activity(&client, "dmap-restart-express").await;
    let def = machine(
        distributed_map(
            "EXPRESS",
            activity_processor(&activity),
            json!({"ItemSelector": index_selector(), "MaxConcurrency": 1}),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-restart-express", &def).await;
    let exec = start(&client, &sm, None, &json!([10, 11, 12])).await;
    let t0 = take(&client, &activity).await;
    assert_eq!(t0.index(), 0);
    succeed(&client, &t0.token, &json!({"done": 0})).await;
    let held = take(&client, &activity).await;
    assert_eq!(held.index(), 1);

    server.kill9();
    server.restart();
    let client = server.client();
    let raw = server.raw();

    let mut after = Vec::new();
    for _ in 0..2 {
        let t = take(&client, &activity).await;
        succeed(&client, &t.token, &json!({"done": t.index()})).await;
        after.push(t.index());
    }
    assert_eq!(
        after,
        [1, 2],
        "only the child that was running, then the rest"
    );
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let want: Vec<Value> = (0..3).map(|i| json!({"done": i})).collect();
    assert_eq!(output(&d), json!(want), "{}", server.logs());
    let mr = map_run_arn_of(&history(&client, &exec).await);
    let dm = map_run(&raw, &mr).await;
    assert_eq!(dm["executionCounts"], succeeded(3).json(), "{dm}");
}

// ---------------------------------------------------------------------------
// StopExecution
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum ParentEnd {
    Stop,
    Timeout,
}

/// Stopping the parent, or its timing out, aborts its Map Run and stops the running
/// children (Standard and Express); the waiting child never starts and the held tasks are
/// refused.
#[tokio::test]
async fn parent_end_aborts_the_map_run() {
    let server = Server::sqlite(SCALE);
    let client = server.client();
    let raw = server.raw();
    let cases = [
        ("stop-standard", "STANDARD", ParentEnd::Stop),
        ("stop-express", "EXPRESS", ParentEnd::Stop),
        ("timeout-standard", "STANDARD", ParentEnd::Timeout),
    ];
    for (name, execution_type, end) in cases {
        let activity = create_activity(&client, &format!("dmap-{name}")).await;
        let mut def = machine(
            distributed_map(
                execution_type,
                activity_processor(&activity),
                json!({"ItemSelector": index_selector(), "MaxConcurrency": 2}),
            ),
            json!({}),
        );
        if end == ParentEnd::Timeout {
            // 300 s scaled: 3 s.
            def["TimeoutSeconds"] = json!(300);
        }
        let sm = create_machine(&client, &format!("dmap-{name}"), &def).await;
        let exec = start(&client, &sm, None, &json!(["x", "y", "z"])).await;
        let held = take_n(&client, &activity, 2).await;
        let mr = map_run_arn_of(&history(&client, &exec).await);

        let (status, last) = match end {
            ParentEnd::Stop => {
                client
                    .stop_execution()
                    .execution_arn(&exec)
                    .error("Enough")
                    .cause("stopped by the test")
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("StopExecution: {}", DisplayErrorContext(&e)));
                (ExecutionStatus::Aborted, "ExecutionAborted")
            }
            ParentEnd::Timeout => (ExecutionStatus::TimedOut, "ExecutionTimedOut"),
        };
        closed(&client, &exec, status).await;
        let events = history(&client, &exec).await;
        assert_eq!(
            event_types(&events).last().map(String::as_str),
            Some(last),
            "{name}"
        );
        assert_eq!(
            count(&events, "MapRunSucceeded") + count(&events, "MapRunFailed"),
            0,
            "{name}"
        );

        let dm = eventually("the Map Run aborted", || async {
            let dm = map_run(&raw, &mr).await;
            (dm["status"] == json!("ABORTED")).then_some(dm)
        })
        .await;
        assert!(dm["stopDate"].is_number(), "{name}: stopDate: {dm}");
        if execution_type == "STANDARD" {
            let kids = eventually("both children aborted", || async {
                let kids = children(&client, &mr, None).await;
                kids.iter()
                    .all(|k| *k.status() == ExecutionStatus::Aborted)
                    .then_some(kids)
            })
            .await;
            assert_eq!(kids.len(), 2, "{name}: the third child never started");
            for k in &kids {
                let child_events = history(&client, k.execution_arn()).await;
                assert_eq!(
                    event_types(&child_events).last().map(String::as_str),
                    Some("ExecutionAborted"),
                    "{name}"
                );
            }
        }
        for t in &held {
            assert!(
                try_succeed(&client, &t.token, &json!({})).await.is_err(),
                "{name}: the task of a stopped child is refused"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        if execution_type == "STANDARD" {
            assert_eq!(children(&client, &mr, None).await.len(), 2, "{name}");
        }
        let dm = map_run(&raw, &mr).await;
        assert_eq!(dm["status"], json!("ABORTED"), "{name}");
        assert_eq!(
            dm["executionCounts"],
            Counts {
                aborted: 2,
                pending: 1,
                ..Counts::default()
            }
            .json(),
            "{name}: ★ the child that never started stays pending: {dm}"
        );
    }
}

// ---------------------------------------------------------------------------
// More Map Run behaviour
// ---------------------------------------------------------------------------

/// An empty item list still runs a Map Run: `length: 0`, output `[]`, all counters 0.
#[tokio::test]
async fn empty_item_list() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let raw = server.raw();
    let def = machine(
        distributed_map("STANDARD", pass_processor(), json!({})),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-empty", &def).await;
    let exec = start(&client, &sm, None, &json!([])).await;
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    assert_eq!(output(&d), json!([]));
    let events = history(&client, &exec).await;
    assert_eq!(numbered(&events), succeeded_parent(&["ExecutionSucceeded"]));
    assert_eq!(map_lengths(&events), [0]);
    let mr = map_run_arn_of(&events);
    let dm = map_run(&raw, &mr).await;
    assert_eq!(dm["status"], json!("SUCCEEDED"));
    assert_eq!(dm["itemCounts"], Counts::default().json(), "{dm}");
    assert_eq!(dm["executionCounts"], Counts::default().json(), "{dm}");
    assert!(children(&client, &mr, None).await.is_empty());
}

/// A Retry on the Distributed Map runs a new Map Run (new ARN) for each attempt.
#[tokio::test]
async fn retry_starts_a_new_map_run() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let raw = server.raw();
    let def = machine(
        distributed_map(
            "STANDARD",
            json!({"StartAt": "Broke", "States": {"Broke": {"Type": "Fail", "Error": "ItemFailed"}}}),
            json!({"Retry": [{
                "ErrorEquals": [THRESHOLD_ERROR],
                "MaxAttempts": 1,
                "IntervalSeconds": 1
            }]}),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-retry", &def).await;
    let exec = start(&client, &sm, None, &json!([1, 2])).await;
    let d = closed(&client, &exec, ExecutionStatus::Failed).await;
    assert_eq!(d.error(), Some(THRESHOLD_ERROR));
    let events = history(&client, &exec).await;
    assert_eq!(
        numbered(&events),
        expect_numbered(
            1,
            &[
                ("ExecutionStarted", 0),
                ("MapStateEntered", 0),
                ("MapStateStarted", 2),
                ("MapRunStarted", 3),
                ("MapRunFailed", 4),
                ("MapStateStarted", 5),
                ("MapRunStarted", 6),
                ("MapRunFailed", 7),
                ("MapStateFailed", 8),
                ("ExecutionFailed", 9),
            ]
        )
    );
    let started: Vec<String> = events
        .iter()
        .filter_map(|e| e.map_run_started_event_details())
        .filter_map(|d| d.map_run_arn().map(str::to_owned))
        .collect();
    assert_eq!(started.len(), 2);
    assert_ne!(started[0], started[1], "each attempt is a new Map Run");
    let listed = raw.ok("ListMapRuns", &json!({"executionArn": exec})).await;
    let mut listed: Vec<String> = listed["mapRuns"]
        .as_array()
        .expect("mapRuns")
        .iter()
        .map(|r| r["mapRunArn"].as_str().unwrap_or_default().to_owned())
        .collect();
    listed.sort();
    let mut want = started.clone();
    want.sort();
    assert_eq!(listed, want, "ListMapRuns lists both attempts");
    // One page at a time.
    let first = raw
        .ok(
            "ListMapRuns",
            &json!({"executionArn": exec, "maxResults": 1}),
        )
        .await;
    let token = first["nextToken"]
        .as_str()
        .expect("a nextToken after page 1");
    let second = raw
        .ok(
            "ListMapRuns",
            &json!({"executionArn": exec, "maxResults": 1, "nextToken": token}),
        )
        .await;
    assert!(second.get("nextToken").is_none(), "{second}");
    let mut paged: Vec<&Value> = [&first, &second]
        .iter()
        .flat_map(|p| p["mapRuns"].as_array().into_iter().flatten())
        .map(|r| &r["mapRunArn"])
        .collect();
    paged.sort_by_key(|v| v.to_string());
    assert_eq!(
        paged,
        want.iter()
            .map(|w| json!(w))
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>()
    );
    for mr in &started {
        assert_eq!(map_run(&raw, mr).await["status"], json!("FAILED"), "{mr}");
    }
}

/// UpdateMapRun's `toleratedFailureCount` applies to the running Map Run: after raising it
/// to 1, one failed child no longer fails the Map Run.
#[tokio::test]
async fn update_map_run_tolerates_more_failures() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let raw = server.raw();
    let activity = create_activity(&client, "dmap-update-tolerance").await;
    let def = machine(
        distributed_map(
            "STANDARD",
            activity_processor(&activity),
            json!({"ItemSelector": index_selector()}),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-update-tolerance", &def).await;
    let exec = start(&client, &sm, None, &json!(["a", "b", "c"])).await;
    let tasks = take_n(&client, &activity, 3).await;
    let mr = map_run_arn_of(&history(&client, &exec).await);
    client
        .update_map_run()
        .map_run_arn(&mr)
        .tolerated_failure_count(1)
        .tolerated_failure_percentage(50.0)
        .send()
        .await
        .unwrap_or_else(|e| panic!("UpdateMapRun: {}", DisplayErrorContext(&e)));
    let dm = map_run(&raw, &mr).await;
    assert_eq!(
        (
            dm["toleratedFailureCount"].as_u64(),
            dm["toleratedFailurePercentage"].as_f64()
        ),
        (Some(1), Some(50.0)),
        "{dm}"
    );
    try_fail(&client, &tasks[1].token, "ItemBroke")
        .await
        .unwrap_or_else(|code| panic!("SendTaskFailure: {code}"));
    for t in [&tasks[0], &tasks[2]] {
        succeed(&client, &t.token, &json!({"done": t.index()})).await;
    }
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let out = output(&d);
    assert_eq!(
        (&out[0], &out[2]),
        (&json!({"done": 0}), &json!({"done": 2}))
    );
    let dm = map_run(&raw, &mr).await;
    assert_eq!(dm["status"], json!("SUCCEEDED"));
    let counts = Counts {
        succeeded: 2,
        failed: 1,
        ..Counts::default()
    };
    assert_eq!(dm["itemCounts"], counts.json(), "{dm}");
}

/// DescribeMapRun, ListMapRuns and UpdateMapRun refuse what AWS refuses.
#[tokio::test]
async fn map_run_api_errors() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let raw = server.raw();
    let def = machine(
        distributed_map("STANDARD", pass_processor(), json!({})),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-errors", &def).await;
    let exec = start(&client, &sm, None, &json!([1])).await;
    closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let mr = map_run_arn_of(&history(&client, &exec).await);
    let unknown_run = format!(
        "arn:aws:states:{REGION}:{ACCOUNT}:mapRun:dmap-errors/nolabel:0b1c2d3e-aaaa-bbbb-cccc-1234567890ab"
    );
    let unknown_exec = format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:dmap-errors:nobody");
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "describe-missing-arn",
            "DescribeMapRun",
            json!({}),
            "ValidationException",
        ),
        (
            "describe-not-an-arn",
            "DescribeMapRun",
            json!({"mapRunArn": "not-an-arn"}),
            "InvalidArn",
        ),
        (
            "describe-execution-arn",
            "DescribeMapRun",
            json!({"mapRunArn": exec}),
            "InvalidArn",
        ),
        (
            "describe-unknown",
            "DescribeMapRun",
            json!({"mapRunArn": unknown_run}),
            "ResourceNotFound",
        ),
        (
            "list-unknown-execution",
            "ListMapRuns",
            json!({"executionArn": unknown_exec}),
            "ExecutionDoesNotExist",
        ),
        (
            "update-unknown",
            "UpdateMapRun",
            json!({"mapRunArn": unknown_run, "maxConcurrency": 2}),
            "ResourceNotFound",
        ),
        (
            "update-percentage-over-100",
            "UpdateMapRun",
            json!({"mapRunArn": mr, "toleratedFailurePercentage": 101}),
            "ValidationException",
        ),
        (
            "update-negative-concurrency",
            "UpdateMapRun",
            json!({"mapRunArn": mr, "maxConcurrency": -1}),
            "ValidationException",
        ),
        (
            "update-negative-count",
            "UpdateMapRun",
            json!({"mapRunArn": mr, "toleratedFailureCount": -1}),
            "ValidationException",
        ),
    ];
    for (name, op, body, code) in cases {
        let r = raw.call(op, &body).await;
        // ResourceNotFound has the model's `httpError` 404 (ARCHITECTURE.md).
        let status = if code == "ResourceNotFound" { 404 } else { 400 };
        assert_eq!(r.status, status, "{name}: {}", r.text);
        assert_eq!(r.error_code().as_deref(), Some(code), "{name}: {}", r.text);
    }
}

/// ★ UpdateMapRun on a Map Run that has ended is a ValidationException with reason
/// `CANNOT_UPDATE_COMPLETED_MAP_RUN` (the model's `ValidationExceptionReason`).
#[tokio::test]
async fn update_of_a_completed_map_run_is_refused() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let raw = server.raw();
    let def = machine(
        distributed_map("STANDARD", pass_processor(), json!({"MaxConcurrency": 3})),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-update-done", &def).await;
    let exec = start(&client, &sm, None, &json!([1])).await;
    closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let mr = map_run_arn_of(&history(&client, &exec).await);
    let r = raw
        .call(
            "UpdateMapRun",
            &json!({"mapRunArn": mr, "maxConcurrency": 7}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code().as_deref(), Some("ValidationException"));
    assert_eq!(r.json()["reason"], json!("CANNOT_UPDATE_COMPLETED_MAP_RUN"));
    assert_eq!(map_run(&raw, &mr).await["maxConcurrency"], json!(3));
}

/// `ListExecutions` by `mapRunArn` gives each child's `itemCount` (1 per item, the batch
/// size with an `ItemBatcher`); by `stateMachineArn` it does not.
#[tokio::test]
async fn children_listed_by_map_run_have_an_item_count() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let def = machine(
        distributed_map(
            "STANDARD",
            pass_processor(),
            json!({"ItemBatcher": {"MaxItemsPerBatch": 2}}),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-item-count", &def).await;
    let exec = start(&client, &sm, None, &json!([1, 2, 3])).await;
    closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let mr = map_run_arn_of(&history(&client, &exec).await);
    let mut counts: Vec<Option<i32>> = children(&client, &mr, None)
        .await
        .iter()
        .map(|c| c.item_count())
        .collect();
    counts.sort();
    assert_eq!(counts, [Some(1), Some(2)]);
    let parents = client
        .list_executions()
        .state_machine_arn(&sm)
        .send()
        .await
        .expect("ListExecutions");
    assert_eq!(parents.executions()[0].item_count(), None);
}

/// A redriven Map Run keeps its `MaxConcurrency`: the failed children wait to be redriven
/// (`pendingRedrive`) while one runs, and the children that never started start after them.
#[tokio::test]
async fn redrive_respects_max_concurrency() {
    redrive_one_at_a_time(false).await;
}

/// ★ Children waiting to be redriven are `PENDING_REDRIVE` (redrive.md §6.6).
#[tokio::test]
async fn children_waiting_for_a_redrive_are_pending_redrive() {
    redrive_one_at_a_time(true).await;
}

async fn redrive_one_at_a_time(check_child_status: bool) {
    let server = Server::memory(SCALE);
    let client = server.client();
    let raw = server.raw();
    let activity = create_activity(&client, "dmap-redrive-limit").await;
    let def = machine(
        distributed_map(
            "STANDARD",
            activity_processor(&activity),
            json!({
                "ItemSelector": index_selector(),
                "MaxConcurrency": 1,
                "ToleratedFailureCount": 1
            }),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-redrive-limit", &def).await;
    let exec = start(&client, &sm, None, &json!(["a", "b", "c"])).await;
    // Items 0 and 1 fail (the second failure is one too many); item 2 never starts.
    for want in [0, 1] {
        let t = take(&client, &activity).await;
        assert_eq!(t.index(), want);
        try_fail(&client, &t.token, "ItemBroke")
            .await
            .unwrap_or_else(|code| panic!("SendTaskFailure: {code}"));
    }
    closed(&client, &exec, ExecutionStatus::Failed).await;
    let mr = map_run_arn_of(&history(&client, &exec).await);
    let dm = map_run(&raw, &mr).await;
    let first = Counts {
        failed: 2,
        pending: 1,
        ..Counts::default()
    };
    assert_eq!(dm["executionCounts"], first.json(), "{dm}");
    let before = children_by_index(&client, &mr).await;
    assert_eq!(before.keys().copied().collect::<Vec<_>>(), [0, 1]);

    client
        .redrive_execution()
        .execution_arn(&exec)
        .send()
        .await
        .unwrap_or_else(|e| panic!("RedriveExecution: {}", DisplayErrorContext(&e)));
    let t0 = take(&client, &activity).await;
    assert_eq!(t0.index(), 0, "the first failed child is redriven first");
    let dm = map_run(&raw, &mr).await;
    let waiting = Counts {
        running: 1,
        pending: 2,
        pending_redrive: 1,
        ..Counts::default()
    };
    assert_eq!(
        dm["executionCounts"],
        waiting.json(),
        "★ failed reset to 0: {dm}"
    );
    assert_eq!(dm["status"], json!("RUNNING"));
    assert!(dm.get("stopDate").is_none(), "★ stopDate cleared: {dm}");
    if check_child_status {
        let waiting_child = describe(&client, &before[&1]).await;
        assert_eq!(*waiting_child.status(), ExecutionStatus::PendingRedrive);
    }
    succeed(&client, &t0.token, &json!({"done": 0})).await;
    let t1 = take(&client, &activity).await;
    assert_eq!(t1.index(), 1);
    succeed(&client, &t1.token, &json!({"done": 1})).await;
    let t2 = take(&client, &activity).await;
    assert_eq!(t2.index(), 2);
    succeed(&client, &t2.token, &json!({"done": 2})).await;
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let want: Vec<Value> = (0..3).map(|i| json!({"done": i})).collect();
    assert_eq!(output(&d), json!(want));
    let after = children_by_index(&client, &mr).await;
    assert_eq!(after.len(), 3);
    for i in 0..3 {
        let c = describe(&client, &after[&i]).await;
        assert_eq!(
            c.redrive_count(),
            Some(i32::from(i < 2)),
            "child {i}: redriven in place, or started by the redrive"
        );
    }
    assert_eq!(
        map_run(&raw, &mr).await["executionCounts"],
        succeeded(3).json()
    );
}

/// DescribeStateMachineForExecution on a Map Run child names its Map Run and label (the
/// model: "returned only if the executionArn is a child workflow execution that was started
/// by a Distributed Map state").
#[tokio::test]
async fn state_machine_for_a_child_names_its_map_run() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let raw = server.raw();
    let def = machine(
        distributed_map("STANDARD", pass_processor(), json!({"Label": "items"})),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-for-execution", &def).await;
    let exec = start(&client, &sm, None, &json!([1])).await;
    closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let mr = map_run_arn_of(&history(&client, &exec).await);
    let kids = children(&client, &mr, None).await;
    assert_eq!(kids.len(), 1);
    let d = raw
        .ok(
            "DescribeStateMachineForExecution",
            &json!({"executionArn": kids[0].execution_arn()}),
        )
        .await;
    assert_eq!(d["mapRunArn"], json!(mr), "{d}");
    assert_eq!(d["label"], json!("items"), "{d}");
    // The parent's own answer has neither.
    let p = raw
        .ok(
            "DescribeStateMachineForExecution",
            &json!({"executionArn": exec}),
        )
        .await;
    assert!(
        p.get("mapRunArn").is_none() && p.get("label").is_none(),
        "{p}"
    );
}

// ---------------------------------------------------------------------------
// Label validation
// ---------------------------------------------------------------------------

/// `Label`: at most 40 characters, none of the characters names may not have.
#[tokio::test]
async fn map_run_label_validation() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let forty = "a".repeat(40);
    let forty_one = "a".repeat(41);
    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        ("forty", &forty, None),
        ("dashes", "items-2024_batch.v1", None),
        (
            "forty-one",
            &forty_one,
            Some("Label cannot exceed 40 characters"),
        ),
        (
            "space",
            "has space",
            Some("Label contains invalid character: ' '"),
        ),
        (
            "slash",
            "a/b",
            Some("Label contains invalid character: '/'"),
        ),
        (
            "colon",
            "a:b",
            Some("Label contains invalid character: ':'"),
        ),
        ("star", "a*b", Some("Label contains invalid character: '*'")),
        (
            "newline",
            "a\nb",
            Some("Label contains invalid character: '\\n'"),
        ),
        (
            "quote",
            "a\"b",
            Some("Label contains invalid character: '\"'"),
        ),
    ];
    for (i, (name, label, error)) in cases.into_iter().enumerate() {
        let def = machine(
            distributed_map("STANDARD", pass_processor(), json!({"Label": label})),
            json!({}),
        );
        let result = client
            .create_state_machine()
            .name(format!("label-{i}"))
            .definition(def.to_string())
            .role_arn(common::ROLE_ARN)
            .send()
            .await;
        match (error, result) {
            (None, Ok(_)) => {}
            (None, Err(e)) => panic!("{name}: rejected: {}", DisplayErrorContext(&e)),
            (Some(want), Ok(_)) => panic!("{name}: accepted, expected {want:?}"),
            (Some(want), Err(e)) => {
                let e = e.into_service_error();
                assert!(e.is_invalid_definition(), "{name}: {e:?}");
                let message = e.meta().message().unwrap_or_default();
                // AWS's wording: `Error=ValueError Args=['…'] in definition '…'.`
                // AWS's wording: a Python ValueError, its args list as Python prints it.
                let args = format!("Error=ValueError Args=[{}] in definition '", py_repr(want));
                assert!(
                    message.starts_with(&args),
                    "{name}: message {message:?} should start with {args:?}"
                );
            }
        }
    }
}

/// A string as Python's `repr` prints it (backslashes and quotes only: enough here).
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let escaped = s
        .replace('\\', "\\\\")
        .replace(quote, &format!("\\{quote}"));
    format!("{quote}{escaped}{quote}")
}

// ---------------------------------------------------------------------------
// S3: ItemReader, ResultWriter, ItemBatcher
// ---------------------------------------------------------------------------

const ITEMS_BUCKET: &str = "dmap-items";
const RESULTS_BUCKET: &str = "dmap-results";

/// A SQLite server whose `ItemReader`/`ResultWriter` go to `moto`.
fn s3_server(moto: &Moto) -> Server {
    Server::start_with_args(
        common::Options {
            wait_time_scale: SCALE,
            ..common::Options::default()
        },
        &["--aws-endpoint", moto.endpoint()],
    )
}

/// In a JSONata Map, `ReaderConfig` and `ItemBatcher` fields are `{% %}` expressions too:
/// `MaxItems` keeps three of the four items, `MaxItemsPerBatch` groups them in twos and
/// `BatchInput` is evaluated.
#[tokio::test]
async fn jsonata_reader_config_and_item_batcher() {
    let moto = Moto::start().await;
    moto.create_bucket(ITEMS_BUCKET).await;
    moto.put_object(ITEMS_BUCKET, "jsonata/items.json", "[1, 2, 3, 4]")
        .await;
    let server = s3_server(&moto);
    let client = server.client();
    let mut map = distributed_map(
        "STANDARD",
        pass_processor(),
        json!({
            "ItemReader": {
                "Resource": "arn:aws:states:::s3:getObject",
                "ReaderConfig": {"InputType": "JSON", "MaxItems": "{% $states.input.max %}"},
                "Arguments": {"Bucket": ITEMS_BUCKET, "Key": "jsonata/items.json"}
            },
            "ItemBatcher": {
                "MaxItemsPerBatch": "{% $states.input.per %}",
                "BatchInput": {"tag": "{% $states.input.tag %}"}
            }
        }),
    );
    map["QueryLanguage"] = json!("JSONata");
    let def = machine(map, json!({}));
    let sm = create_machine(&client, "jsonata-reader-batcher", &def).await;
    let input = json!({"max": 3, "per": 2, "tag": "t"});
    let exec = start(&client, &sm, None, &input).await;
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    assert_eq!(
        output(&d),
        json!([
            {"BatchInput": {"tag": "t"}, "Items": [1, 2]},
            {"BatchInput": {"tag": "t"}, "Items": [3]}
        ])
    );
}

/// `MaxItemsPath` and `MaxItemsPerBatchPath` take a string of digits (`"2"`), as AWS does;
/// anything else fails the state.
#[tokio::test]
async fn max_items_paths_take_digit_strings() {
    let moto = Moto::start().await;
    moto.create_bucket(ITEMS_BUCKET).await;
    moto.put_object(ITEMS_BUCKET, "paths/items.json", "[1, 2, 3, 4]")
        .await;
    let server = s3_server(&moto);
    let client = server.client();
    let def = machine(
        distributed_map(
            "STANDARD",
            pass_processor(),
            json!({
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON", "MaxItemsPath": "$.max"},
                    "Parameters": {"Bucket": ITEMS_BUCKET, "Key": "paths/items.json"}
                },
                "ItemBatcher": {"MaxItemsPerBatchPath": "$.per"}
            }),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "max-items-strings", &def).await;
    let cases = [
        (
            json!({"max": "3", "per": "2"}),
            Some(json!([{"Items": [1, 2]}, {"Items": [3]}])),
        ),
        (
            json!({"max": 3, "per": 2}),
            Some(json!([{"Items": [1, 2]}, {"Items": [3]}])),
        ),
        (json!({"max": "three", "per": 2}), None),
        (json!({"max": 3, "per": "2.5"}), None),
    ];
    for (input, want) in cases {
        let exec = start(&client, &sm, None, &input).await;
        match want {
            Some(want) => {
                let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
                assert_eq!(output(&d), want, "{input}");
            }
            None => {
                let d = closed(&client, &exec, ExecutionStatus::Failed).await;
                assert_eq!(d.error(), Some("States.Runtime"), "{input}");
            }
        }
    }
}

struct ReaderCase {
    name: &'static str,
    key: &'static str,
    reader_config: Value,
    /// What each child receives, in item order.
    items: Vec<Value>,
}

/// `ItemReader` (`s3:getObject`, CSV with a header row, JSON) feeds the children; the
/// `ResultWriter` writes `PREFIX/<map run id>/manifest.json` and `SUCCEEDED_0.json`, which
/// read back from S3 with every child's input and output; the Map output says where.
#[tokio::test]
async fn s3_item_reader_and_result_writer() {
    let moto = Moto::start().await;
    moto.create_bucket(ITEMS_BUCKET).await;
    moto.create_bucket(RESULTS_BUCKET).await;
    moto.put_object(
        ITEMS_BUCKET,
        "in/items.csv",
        "id,name\n1,alpha\n2,beta\n3,gamma\n",
    )
    .await;
    moto.put_object(
        ITEMS_BUCKET,
        "in/items.json",
        r#"[{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}, {"id": 3, "name": "gamma"}]"#,
    )
    .await;
    let server = s3_server(&moto);
    let client = server.client();
    let raw = server.raw();
    let cases = [
        ReaderCase {
            name: "csv",
            key: "in/items.csv",
            reader_config: json!({"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}),
            items: vec![
                json!({"id": "1", "name": "alpha"}),
                json!({"id": "2", "name": "beta"}),
                json!({"id": "3", "name": "gamma"}),
            ],
        },
        ReaderCase {
            name: "json",
            key: "in/items.json",
            reader_config: json!({"InputType": "JSON"}),
            items: vec![
                json!({"id": 1, "name": "alpha"}),
                json!({"id": 2, "name": "beta"}),
                json!({"id": 3, "name": "gamma"}),
            ],
        },
    ];
    for case in cases {
        let prefix = format!("out/{}", case.name);
        let def = machine(
            distributed_map(
                "STANDARD",
                json!({"StartAt": "Echo", "States": {"Echo": {
                    "Type": "Pass",
                    "Parameters": {"got.$": "$"},
                    "End": true
                }}}),
                json!({
                    "ItemReader": {
                        "Resource": "arn:aws:states:::s3:getObject",
                        "ReaderConfig": case.reader_config,
                        "Parameters": {"Bucket": ITEMS_BUCKET, "Key.$": "$.key"}
                    },
                    "ResultWriter": {
                        "Resource": "arn:aws:states:::s3:putObject",
                        "Parameters": {"Bucket": RESULTS_BUCKET, "Prefix": prefix}
                    }
                }),
            ),
            json!({}),
        );
        let sm = create_machine(&client, &format!("s3-{}", case.name), &def).await;
        let exec = start(&client, &sm, None, &json!({"key": case.key})).await;
        let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
        let events = history(&client, &exec).await;
        assert_eq!(
            numbered(&events),
            succeeded_parent(&["ExecutionSucceeded"]),
            "{}: parent history",
            case.name
        );
        // AWS records length 0 when an ItemReader supplies the items.
        assert_eq!(map_lengths(&events), [0], "{}", case.name);
        let mr = map_run_arn_of(&events);
        let (_, run_id) = split_map_run_arn(&mr);
        let manifest_key = format!("{prefix}/{run_id}/manifest.json");
        assert_eq!(
            output(&d),
            json!({
                "MapRunArn": mr,
                "ResultWriterDetails": {"Bucket": RESULTS_BUCKET, "Key": manifest_key}
            }),
            "{}: output",
            case.name
        );

        let manifest = moto.get_json(RESULTS_BUCKET, &manifest_key).await;
        let succeeded_key = format!("{prefix}/{run_id}/SUCCEEDED_0.json");
        let body = moto
            .get_object(RESULTS_BUCKET, &succeeded_key)
            .await
            .unwrap_or_else(|| panic!("{}: no {succeeded_key}", case.name));
        assert_eq!(
            manifest,
            json!({
                "DestinationBucket": RESULTS_BUCKET,
                "MapRunArn": mr,
                "ResultFiles": {
                    "FAILED": [],
                    "PENDING": [],
                    "SUCCEEDED": [{"Key": succeeded_key, "Size": body.len()}]
                }
            }),
            "{}: manifest",
            case.name
        );
        let results: Value = serde_json::from_str(&body).expect("SUCCEEDED_0.json is JSON");
        let results = results.as_array().expect("an array of results");
        assert_eq!(results.len(), 3, "{}: {results:?}", case.name);
        let kids: BTreeSet<String> = children(&client, &mr, None)
            .await
            .iter()
            .map(|c| c.execution_arn().to_owned())
            .collect();
        let mut inputs = Vec::new();
        for r in results {
            assert_eq!(r["Status"], json!("SUCCEEDED"), "{}: {r}", case.name);
            let arn = r["ExecutionArn"].as_str().unwrap_or_default();
            assert!(kids.contains(arn), "{}: {arn} is a child", case.name);
            let input: Value =
                serde_json::from_str(r["Input"].as_str().expect("Input is JSON text"))
                    .expect("Input parses");
            let out: Value =
                serde_json::from_str(r["Output"].as_str().expect("Output is JSON text"))
                    .expect("Output parses");
            assert_eq!(out, json!({"got": input}), "{}: {r}", case.name);
            inputs.push(input);
        }
        assert_eq!(inputs, case.items, "{}: the items, in order", case.name);
        let dm = map_run(&raw, &mr).await;
        let written = Counts {
            succeeded: 3,
            results_written: 3,
            ..Counts::default()
        };
        assert_eq!(dm["itemCounts"], written.json(), "{}: {dm}", case.name);
    }

    // A missing object fails the state with States.ItemReaderFailed.
    items_missing(&client, "s3-missing", "in/missing.json").await;
}

/// Starts a Distributed Map reading the JSON items at `key`, which is not there: the
/// execution fails with States.ItemReaderFailed. Its ARN.
async fn items_missing(client: &aws_sdk_sfn::Client, name: &str, key: &str) -> String {
    let def = machine(
        distributed_map(
            "STANDARD",
            pass_processor(),
            json!({"ItemReader": json_items_reader(key)}),
        ),
        json!({}),
    );
    let sm = create_machine(client, name, &def).await;
    let exec = start(client, &sm, None, &json!({})).await;
    let d = closed(client, &exec, ExecutionStatus::Failed).await;
    assert_eq!(
        d.error(),
        Some("States.ItemReaderFailed"),
        "{:?}",
        d.cause()
    );
    exec
}

/// `ItemBatcher {MaxItemsPerBatch: 2, BatchInput}` over S3 items: each child gets
/// `{"BatchInput": …, "Items": [...]}`; 5 items make 3 children; item and execution counts
/// differ.
#[tokio::test]
async fn s3_items_in_batches() {
    let moto = Moto::start().await;
    moto.create_bucket(ITEMS_BUCKET).await;
    moto.put_object(ITEMS_BUCKET, "in/five.json", "[1, 2, 3, 4, 5]")
        .await;
    let server = s3_server(&moto);
    let client = server.client();
    let raw = server.raw();
    let def = machine(
        distributed_map(
            "STANDARD",
            json!({"StartAt": "Sum", "States": {"Sum": {
                "Type": "Pass",
                "Parameters": {
                    "n.$": "States.ArrayLength($.Items)",
                    "items.$": "$.Items",
                    "batch.$": "$.BatchInput.tag"
                },
                "End": true
            }}}),
            json!({
                "ItemReader": json_items_reader("in/five.json"),
                "ItemBatcher": {"MaxItemsPerBatch": 2, "BatchInput": {"tag.$": "$.tag"}}
            }),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "s3-batches", &def).await;
    let exec = start(&client, &sm, None, &json!({"tag": "b"})).await;
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    assert_eq!(
        output(&d),
        json!([
            {"n": 2, "items": [1, 2], "batch": "b"},
            {"n": 2, "items": [3, 4], "batch": "b"},
            {"n": 1, "items": [5], "batch": "b"}
        ])
    );
    let events = history(&client, &exec).await;
    assert_eq!(
        numbered(&events),
        succeeded_parent(&["ExecutionSucceeded"]),
        "parent history"
    );
    let mr = map_run_arn_of(&events);
    let dm = map_run(&raw, &mr).await;
    assert_eq!(dm["itemCounts"], succeeded(5).json(), "{dm}");
    assert_eq!(dm["executionCounts"], succeeded(3).json(), "{dm}");
    let mut inputs: Vec<Value> = Vec::new();
    for c in children(&client, &mr, None).await {
        inputs.push(parse_json(
            "child input",
            describe(&client, c.execution_arn()).await.input(),
        ));
    }
    inputs.sort_by_key(|v| v["Items"][0].as_i64());
    assert_eq!(
        inputs,
        [
            json!({"BatchInput": {"tag": "b"}, "Items": [1, 2]}),
            json!({"BatchInput": {"tag": "b"}, "Items": [3, 4]}),
            json!({"BatchInput": {"tag": "b"}, "Items": [5]}),
        ]
    );
}

/// With failures tolerated, the `ResultWriter` writes `FAILED_0.json` next to
/// `SUCCEEDED_0.json`, with each failed child's error and cause.
#[tokio::test]
async fn s3_result_writer_with_tolerated_failures() {
    let moto = Moto::start().await;
    moto.create_bucket(RESULTS_BUCKET).await;
    let server = s3_server(&moto);
    let client = server.client();
    let def = machine(
        distributed_map(
            "STANDARD",
            failing_processor(),
            json!({
                "ToleratedFailureCount": 1,
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": RESULTS_BUCKET, "Prefix": "tolerated"}
                }
            }),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "s3-tolerated", &def).await;
    let items = json!([{"id": 0}, {"id": 1, "fail": true}, {"id": 2}]);
    let exec = start(&client, &sm, None, &items).await;
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let mr = map_run_arn_of(&history(&client, &exec).await);
    let (_, run_id) = split_map_run_arn(&mr);
    let dir = format!("tolerated/{run_id}");
    assert_eq!(
        output(&d)["ResultWriterDetails"],
        json!({"Bucket": RESULTS_BUCKET, "Key": format!("{dir}/manifest.json")})
    );
    let manifest = moto
        .get_json(RESULTS_BUCKET, &format!("{dir}/manifest.json"))
        .await;
    let files = &manifest["ResultFiles"];
    assert_eq!(files["PENDING"], json!([]), "{manifest}");
    assert_eq!(
        files["FAILED"][0]["Key"],
        json!(format!("{dir}/FAILED_0.json")),
        "{manifest}"
    );
    assert_eq!(
        files["SUCCEEDED"][0]["Key"],
        json!(format!("{dir}/SUCCEEDED_0.json")),
        "{manifest}"
    );
    let failed = moto
        .get_json(RESULTS_BUCKET, &format!("{dir}/FAILED_0.json"))
        .await;
    let failed = failed.as_array().expect("an array");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["Status"], json!("FAILED"));
    assert_eq!(failed[0]["Error"], json!("ItemFailed"));
    assert_eq!(failed[0]["Cause"], json!("this item fails"));
    assert_eq!(
        serde_json::from_str::<Value>(failed[0]["Input"].as_str().unwrap_or_default())
            .expect("Input is JSON text"),
        items[1]
    );
    let succeeded_file = moto
        .get_json(RESULTS_BUCKET, &format!("{dir}/SUCCEEDED_0.json"))
        .await;
    assert_eq!(succeeded_file.as_array().map(Vec::len), Some(2));
}

/// ★ A Map Run that fails still exports its results: `FAILED_0.json` for the failed child,
/// `PENDING_0.json` for those that never started (redrive.md §6.11; the ResultWriter page
/// describes PENDING files as "not started because the Map Run failed or was aborted").
#[tokio::test]
async fn s3_result_writer_exports_a_failed_map_run() {
    let moto = Moto::start().await;
    moto.create_bucket(RESULTS_BUCKET).await;
    let server = s3_server(&moto);
    let client = server.client();
    let def = machine(
        distributed_map(
            "STANDARD",
            failing_processor(),
            json!({
                "MaxConcurrency": 1,
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": RESULTS_BUCKET, "Prefix": "failed"}
                }
            }),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "s3-failed-run", &def).await;
    let items = json!([{"id": 0}, {"id": 1, "fail": true}, {"id": 2}]);
    let exec = start(&client, &sm, None, &items).await;
    closed(&client, &exec, ExecutionStatus::Failed).await;
    let mr = map_run_arn_of(&history(&client, &exec).await);
    let (_, run_id) = split_map_run_arn(&mr);
    let dir = format!("failed/{run_id}");
    let manifest = moto
        .get_object(RESULTS_BUCKET, &format!("{dir}/manifest.json"))
        .await
        .expect("a manifest for the failed Map Run");
    let manifest: Value = serde_json::from_str(&manifest).expect("manifest JSON");
    let files = &manifest["ResultFiles"];
    for (group, n) in [("SUCCEEDED", 1), ("FAILED", 1), ("PENDING", 1)] {
        let key = format!("{dir}/{group}_0.json");
        assert_eq!(files[group][0]["Key"], json!(key), "{manifest}");
        let entries = moto.get_json(RESULTS_BUCKET, &key).await;
        assert_eq!(
            entries.as_array().map(Vec::len),
            Some(n),
            "{group}: {entries}"
        );
    }
}

/// The smallest part of a multipart upload (all but the last).
const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// A `ResultWriter` file larger than one 5 MiB part is a multipart upload, written while
/// the results are read: 3,000 Express children answering ~4 KiB each make a ~14 MB
/// `SUCCEEDED_0.json`. Read back whole, it is a JSON array of every child in item order,
/// its size is the manifest's, and its ETag is a multipart object's (`"…-N"`, N parts).
#[tokio::test]
async fn s3_result_writer_uploads_large_files_in_parts() {
    let moto = Moto::start().await;
    moto.create_bucket(RESULTS_BUCKET).await;
    let server = s3_server(&moto);
    let client = server.client();
    let def = machine(
        distributed_map(
            "EXPRESS",
            json!({"StartAt": "Pad", "States": {"Pad": {
                "Type": "Pass",
                "Parameters": {"n.$": "$", "pad": "x".repeat(4096)},
                "End": true
            }}}),
            json!({
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": RESULTS_BUCKET, "Prefix": "large"}
                }
            }),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "s3-large-export", &def).await;
    let n = 3000;
    let items: Vec<usize> = (0..n).collect();
    let exec = start(&client, &sm, None, &json!(items)).await;
    closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let mr = map_run_arn_of(&history(&client, &exec).await);
    let (_, run_id) = split_map_run_arn(&mr);
    let dir = format!("large/{run_id}");
    let manifest = moto
        .get_json(RESULTS_BUCKET, &format!("{dir}/manifest.json"))
        .await;
    let key = format!("{dir}/SUCCEEDED_0.json");
    let listed = &manifest["ResultFiles"]["SUCCEEDED"];
    assert_eq!(listed[0]["Key"], json!(key), "{manifest}");
    let body = moto
        .get_object(RESULTS_BUCKET, &key)
        .await
        .expect("SUCCEEDED_0.json");
    assert!(
        body.len() > 2 * MIN_PART_BYTES,
        "{} bytes: more than two parts",
        body.len()
    );
    assert_eq!(listed[0]["Size"], json!(body.len()), "the file's real size");
    let (etag, size) = moto.head_object(RESULTS_BUCKET, &key).await;
    assert_eq!(size, body.len() as u64);
    let parts: usize = etag
        .trim_matches('"')
        .rsplit_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or_else(|| panic!("ETag {etag}: not a multipart upload"));
    // Every part but the last has at least 5 MiB.
    assert!(
        (3..=body.len() / MIN_PART_BYTES + 1).contains(&parts),
        "{parts} parts of at least 5 MiB for {} bytes",
        body.len()
    );
    let results: Vec<Value> =
        serde_json::from_str(&body).expect("SUCCEEDED_0.json is a JSON array");
    assert_eq!(results.len(), n);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["Status"], json!("SUCCEEDED"), "{i}");
        let out: Value = serde_json::from_str(r["Output"].as_str().unwrap_or_default())
            .expect("Output is JSON text");
        assert_eq!(out["n"], json!(i), "item order");
    }
}

struct DataLimitCase {
    name: &'static str,
    fields: Value,
    status: ExecutionStatus,
}

/// Without an S3 `ResultWriter` the results are the Map state's output, which may not
/// exceed 256 KiB: 100 children answering ~4 KiB each fail the Map Run (`MapRunFailed`, the
/// Map Run FAILED) with `States.DataLimitExceeded`, then the state; `States.ALL` does not
/// catch it, naming it does. The same with only a `WriterConfig`.
#[tokio::test]
async fn map_output_over_256_kib_is_data_limit_exceeded() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let raw = server.raw();
    let cause = "The state/task 'Fan' returned a result with a size exceeding the maximum \
                 number of bytes service limit.";
    let catch = |error: &str| json!({"Catch": [{"ErrorEquals": [error], "Next": "Caught"}]});
    let cases = [
        DataLimitCase {
            name: "outputs",
            fields: json!({}),
            status: ExecutionStatus::Failed,
        },
        DataLimitCase {
            name: "writer-config",
            fields: json!({"ResultWriter": {"WriterConfig": {"Transformation": "COMPACT"}}}),
            status: ExecutionStatus::Failed,
        },
        DataLimitCase {
            name: "catch-all",
            fields: catch("States.ALL"),
            status: ExecutionStatus::Failed,
        },
        DataLimitCase {
            name: "caught",
            fields: catch("States.DataLimitExceeded"),
            status: ExecutionStatus::Succeeded,
        },
    ];
    let items: Vec<usize> = (0..100).collect();
    for case in cases {
        let def = machine(
            distributed_map(
                "EXPRESS",
                json!({"StartAt": "Pad", "States": {"Pad": {
                    "Type": "Pass",
                    "Parameters": {"n.$": "$", "pad": "x".repeat(4096)},
                    "End": true
                }}}),
                case.fields,
            ),
            json!({"Caught": {"Type": "Pass", "End": true}}),
        );
        let sm = create_machine(&client, &format!("dmap-limit-{}", case.name), &def).await;
        let exec = start(&client, &sm, None, &json!(items)).await;
        let d = closed(&client, &exec, case.status.clone()).await;
        let events = history(&client, &exec).await;
        let limit = ("States.DataLimitExceeded".to_owned(), cause.to_owned());
        assert_eq!(
            map_run_failures(&events),
            std::slice::from_ref(&limit),
            "{}: {:?}",
            case.name,
            event_types(&events)
        );
        assert_eq!(count(&events, "MapStateFailed"), 1, "{}", case.name);
        let dm = map_run(&raw, &map_run_arn_of(&events)).await;
        assert_eq!(dm["status"], json!("FAILED"), "{}: {dm}", case.name);
        assert_eq!(
            dm["itemCounts"],
            succeeded(100).json(),
            "{}: {dm}",
            case.name
        );
        match case.status {
            ExecutionStatus::Failed => assert_eq!(failure(&events), limit, "{}", case.name),
            _ => assert_eq!(
                output(&d),
                json!({"Error": limit.0, "Cause": limit.1}),
                "{}",
                case.name
            ),
        }
    }
}

/// More Standard children than one page of records (1,024): the Map state's output has every
/// child's output in item order, read from the children's records page by page.
#[tokio::test]
async fn standard_results_of_more_than_a_page() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let def = machine(
        distributed_map(
            "STANDARD",
            json!({"StartAt": "Echo", "States": {"Echo": {
                "Type": "Pass",
                "Parameters": {"n.$": "$"},
                "End": true
            }}}),
            json!({}),
        ),
        json!({}),
    );
    let sm = create_machine(&client, "dmap-standard-pages", &def).await;
    let n = 1100;
    let items: Vec<usize> = (0..n).collect();
    let exec = start(&client, &sm, None, &json!(items)).await;
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    let out = output(&d);
    let outputs = out.as_array().expect("an array of outputs");
    assert_eq!(outputs.len(), n);
    let wrong: Vec<usize> = (0..n).filter(|&i| outputs[i] != json!({"n": i})).collect();
    assert!(
        wrong.is_empty(),
        "{} of {n} outputs wrong, the first at item {:?}",
        wrong.len(),
        wrong.first().map(|&i| (i, &outputs[i]))
    );
}

/// A JSONata Distributed Map: `Items`, `ItemSelector` with `$states.context.Map.Item`,
/// `MaxConcurrency` and `ToleratedFailureCount` as expressions, `Output` and `Assign` over
/// the Map Run's result; the processor inherits the machine's query language.
#[tokio::test]
async fn jsonata_distributed_map() {
    let server = Server::memory(SCALE);
    let client = server.client();
    let raw = server.raw();
    let processor = json!({"StartAt": "Check", "States": {
        "Check": {"Type": "Choice", "Choices": [
            {"Condition": "{% $states.input.value < 0 %}", "Next": "Broke"}
        ], "Default": "Double"},
        "Broke": {"Type": "Fail", "Error": "Negative", "Cause": "{% $string($states.input.value) %}"},
        "Double": {"Type": "Pass", "Output": "{% $states.input.value * 2 %}", "End": true}
    }});
    let map = distributed_map(
        "STANDARD",
        processor,
        json!({
            "Items": "{% $states.input.orders %}",
            "ItemSelector": {
                "index": "{% $states.context.Map.Item.Index %}",
                "value": "{% $states.context.Map.Item.Value %}"
            },
            "MaxConcurrency": "{% $states.input.limit %}",
            "ToleratedFailureCount": "{% $states.input.tolerate %}",
            "Assign": {"doubled": "{% $states.result %}"},
            "Output": "{% {'n': $count($states.result), 'last': $states.result[-1]} %}",
            "Next": "Done"
        }),
    );
    let mut def = machine(
        map,
        json!({"Done": {"Type": "Pass", "Output": "{% $doubled %}", "End": true}}),
    );
    def["QueryLanguage"] = json!("JSONata");
    let sm = create_machine(&client, "dmap-jsonata", &def).await;
    let input = json!({"orders": [1, 2, 3], "limit": 2, "tolerate": 0});
    let exec = start(&client, &sm, None, &input).await;
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    assert_eq!(output(&d), json!([2, 4, 6]), "Assign took the Map's result");
    let events = history(&client, &exec).await;
    let exited = events
        .iter()
        .find(|e| e.r#type().as_str() == "MapStateExited")
        .and_then(|e| e.state_exited_event_details())
        .and_then(|d| d.output())
        .map(|o| parse_json("MapStateExited output", Some(o)));
    assert_eq!(exited, Some(json!({"n": 3, "last": 6})));
    let mr = map_run_arn_of(&events);
    let dm = map_run(&raw, &mr).await;
    assert_eq!(dm["maxConcurrency"], json!(2), "{dm}");
    assert_eq!(dm["toleratedFailureCount"], json!(0), "{dm}");

    // One negative item is one failure too many.
    let input = json!({"orders": [1, -1, 3], "limit": 0, "tolerate": 0});
    let exec = start(&client, &sm, None, &input).await;
    let d = closed(&client, &exec, ExecutionStatus::Failed).await;
    assert_eq!(d.error(), Some(THRESHOLD_ERROR));
    // Tolerated when the expression allows it.
    let input = json!({"orders": [1, -1, 3], "limit": 0, "tolerate": 1});
    let exec = start(&client, &sm, None, &input).await;
    closed(&client, &exec, ExecutionStatus::Succeeded).await;
}

/// A Map Run whose `ItemReader` failed (the object was missing) starts and fails at once, as
/// on AWS (`MapStateStarted` length 0, `MapRunStarted`, `MapRunFailed`); having read no items
/// it has none to redrive: a redrive of the parent starts a new Map Run, which reads the
/// object, there by then (docs/redrive.md §6.7).
#[tokio::test]
async fn redrive_starts_a_map_run_that_never_started() {
    let moto = Moto::start().await;
    moto.create_bucket(ITEMS_BUCKET).await;
    let server = s3_server(&moto);
    let client = server.client();
    let raw = server.raw();
    let exec = items_missing(&client, "dmap-never-started", "late/items.json").await;
    let events = history(&client, &exec).await;
    let types = event_types(&events);
    let tail: Vec<&str> = types.iter().skip(2).map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "MapStateStarted",
            "MapRunStarted",
            "MapRunFailed",
            "MapStateFailed",
            "ExecutionFailed"
        ]
    );
    assert_eq!(map_lengths(&events), [0]);
    let failed_run = map_run_arn_of(&events);
    let runs = raw.ok("ListMapRuns", &json!({"executionArn": exec})).await;
    assert_eq!(runs["mapRuns"].as_array().map(Vec::len), Some(1), "{runs}");
    let described = map_run(&raw, &failed_run).await;
    assert_eq!(described["status"], json!("FAILED"), "{described}");

    moto.put_object(ITEMS_BUCKET, "late/items.json", "[1, 2]")
        .await;
    client
        .redrive_execution()
        .execution_arn(&exec)
        .send()
        .await
        .unwrap_or_else(|e| panic!("RedriveExecution: {}", DisplayErrorContext(&e)));
    let d = closed(&client, &exec, ExecutionStatus::Succeeded).await;
    assert_eq!(output(&d), json!([1, 2]));
    let events = history(&client, &exec).await;
    assert_eq!(
        count(&events, "MapRunRedriven"),
        0,
        "a new Map Run, not a redriven one"
    );
    let started: Vec<String> = events
        .iter()
        .filter_map(|e| e.map_run_started_event_details())
        .filter_map(|d| d.map_run_arn().map(str::to_owned))
        .collect();
    assert_eq!(started.len(), 2, "{:?}", event_types(&events));
    assert_eq!(started[0], failed_run);
    assert_ne!(started[1], failed_run, "a new Map Run");
    assert_eq!(
        map_run(&raw, &started[1]).await["executionCounts"],
        succeeded(2).json()
    );
}
