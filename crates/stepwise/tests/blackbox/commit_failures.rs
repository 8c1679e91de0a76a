//! Commits that fail now and then, as when the database goes away for a moment: the
//! `commit-fails` failpoint (this suite needs the `failpoints` feature, which `scripts/test`
//! turns on) fails one commit of an execution in four (its start, or a transition) with a
//! storage error. A client whose call failed calls again, as the SDKs do; what the engine
//! does of its own accord (a child's start and end, a Map Run's start and end, a step after
//! a yield) it must do again too. Every execution ends, with each event once.
#![cfg(feature = "failpoints")]

use crate::common;

use std::time::Duration;

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use common::{create_activity, create_machine, event_types, history, wait_done, Options, Server};
use serde_json::{json, Value};

const FAILING: &str = "commit-fails=25%return";
const ALL_DONE_WITHIN: Duration = Duration::from_secs(60);

/// A Wait, then a Pass: the child of the `.sync` parents.
fn child() -> Value {
    json!({"StartAt": "Hold", "States": {
        "Hold": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
        "Done": {"Type": "Pass", "Result": "child done", "End": true}}})
}

/// Starts `child` and waits for its end (its end reaches the parent as a task outcome).
fn parent(child: &str) -> Value {
    json!({"StartAt": "Run", "States": {"Run": {"Type": "Task",
        "Resource": "arn:aws:states:::states:startExecution.sync:2",
        "Parameters": {"StateMachineArn": child, "Input": {}},
        "OutputPath": "$.Output", "End": true}}})
}

/// An inline Map of 300 Pass iterations: more states than one call runs (it yields).
fn wide_map() -> Value {
    json!({"StartAt": "Each", "States": {"Each": {"Type": "Map",
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true}}})
}

/// A Distributed Map of child executions (its Map Run's start and end reach the parent).
fn distributed() -> Value {
    json!({"StartAt": "Each", "States": {"Each": {"Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}},
        "End": true}}})
}

fn activity_task(activity: &str) -> Value {
    json!({"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": activity,
        "End": true}}})
}

/// Starts an execution (named `name`, if given), calling again while the call fails (its
/// commit may have failed).
async fn start(
    client: &aws_sdk_sfn::Client,
    sm: &str,
    name: Option<&str>,
    input: &Value,
) -> String {
    for _ in 0..20 {
        let started = client
            .start_execution()
            .state_machine_arn(sm)
            .set_name(name.map(str::to_owned))
            .input(input.to_string())
            .send()
            .await;
        if let Ok(out) = started {
            return out.execution_arn().to_owned();
        }
    }
    panic!("StartExecution on {sm} failed 20 times");
}

/// Takes tasks of `activity` and answers each with its input, calling again on errors (a
/// failed commit fails the call), until aborted.
fn worker(client: aws_sdk_sfn::Client, activity: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok(task) = client
                .get_activity_task()
                .activity_arn(&activity)
                .send()
                .await
            else {
                continue;
            };
            let Some(token) = task.task_token().filter(|t| !t.is_empty()) else {
                continue;
            };
            let output = task.input().unwrap_or("{}").to_owned();
            for _ in 0..20 {
                let sent = client
                    .send_task_success()
                    .task_token(token)
                    .output(&output)
                    .send()
                    .await;
                if sent.is_ok() {
                    break;
                }
            }
        }
    })
}

#[derive(Clone, Copy)]
enum Kind {
    /// One Task state (an activity's, or a `.sync` child's).
    OneTask,
    /// [`wide_map`].
    WideMap,
    /// [`distributed`].
    Distributed,
}

/// What is wrong with the history of a succeeded execution: ids not 1..=n, a start or end
/// not once, at its place, or events of a kind lost or recorded twice. (Map iterations are
/// not checked for `previousEventId`: AWS's chain after an iteration's end is not linear.)
fn whole(events: &[HistoryEvent], kind: Kind) -> Vec<String> {
    let types = event_types(events);
    let count = |t: &str| types.iter().filter(|x| *x == t).count();
    let mut problems = Vec::new();
    if events.iter().zip(1..).any(|(e, id)| e.id() != id) {
        problems.push(format!("ids not 1..={}", events.len()));
    }
    let ends = (types.first(), types.last());
    let (first, last) = (ends.0.map(String::as_str), ends.1.map(String::as_str));
    if first != Some("ExecutionStarted") || last != Some("ExecutionSucceeded") {
        problems.push(format!("starts with {first:?}, ends with {last:?}"));
    }
    let want: &[(&str, usize)] = match kind {
        Kind::OneTask => &[("ExecutionStarted", 1), ("TaskStateEntered", 1)],
        Kind::WideMap => &[
            ("MapIterationStarted", 300),
            ("PassStateEntered", 300),
            ("MapIterationSucceeded", 300),
        ],
        Kind::Distributed => &[("MapRunStarted", 1), ("MapRunSucceeded", 1)],
    };
    for (t, n) in want {
        if count(t) != *n {
            problems.push(format!("{} {t}, expected {n}", count(t)));
        }
    }
    // Everything of a one-task execution happens once.
    if matches!(kind, Kind::OneTask) {
        for t in &types {
            if count(t) > 1 {
                problems.push(format!("{t} recorded {} times", count(t)));
            }
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_execution_ends_while_commits_fail_now_and_then() {
    let options = Options {
        wait_time_scale: 0.1,
        ..Options::default()
    };
    let server = Server::start_with_failpoints(options, &[], Some(FAILING));
    let client = server.client();
    let child_sm = create_machine(&client, "cf-child", &child()).await;
    let parent_sm = create_machine(&client, "cf-parent", &parent(&child_sm)).await;
    let map_sm = create_machine(&client, "cf-map", &wide_map()).await;
    let dmap_sm = create_machine(&client, "cf-dmap", &distributed()).await;
    let activity = create_activity(&client, "cf-work").await;
    let task_sm = create_machine(&client, "cf-task", &activity_task(&activity)).await;
    let workers: Vec<_> = (0..2)
        .map(|_| worker(client.clone(), activity.clone()))
        .collect();

    let items: Vec<Value> = (0..300).map(|i| json!(i)).collect();
    let few: Vec<Value> = (0..10).map(|i| json!({"n": i})).collect();
    let mut started = Vec::new();
    for i in 0..10 {
        // Three `.sync` parents each round: 30 child starts, so that one fails is all but
        // certain (all 30 pass one time in 5,600; with 10, one in 18, as CI once found).
        for _ in 0..3 {
            let parent = start(&client, &parent_sm, None, &json!({})).await;
            started.push((parent, Kind::OneTask));
        }
        let task = start(&client, &task_sm, None, &json!({"i": i})).await;
        started.push((task, Kind::OneTask));
        if i % 2 == 0 {
            let map = start(&client, &map_sm, None, &json!(items)).await;
            started.push((map, Kind::WideMap));
            let dmap = start(&client, &dmap_sm, None, &json!(few)).await;
            started.push((dmap, Kind::Distributed));
        }
    }
    let mut problems = Vec::new();
    for (arn, kind) in &started {
        let d = wait_done(&client, arn, ALL_DONE_WITHIN).await;
        if *d.status() != ExecutionStatus::Succeeded {
            problems.push(format!("{arn}: {:?}", d.status()));
            continue;
        }
        let events = history(&client, arn).await;
        problems.extend(
            whole(&events, *kind)
                .into_iter()
                .map(|p| format!("{arn}: {p}")),
        );
    }
    for w in workers {
        w.abort();
    }
    let logs = server.logs();
    assert!(problems.is_empty(), "not succeeded: {problems:#?}\n{logs}");
    // The failpoint failed commits; signals the engine sent itself were sent again, and
    // children started again.
    assert!(logs.contains("commit-fails failpoint"), "{logs}");
    for again in [
        "signal not recorded; trying again",
        "child execution not started; trying again",
        "Map Run child not started; trying again",
    ] {
        assert!(logs.contains(again), "{again}:\n{logs}");
    }
}

/// The other side of a failed commit: one that went through but whose answer was lost (a
/// connection cut during `COMMIT`). The `start-answer-lost` failpoint answers one start in
/// four with an error after its commit. A client that starts again under the same name, a
/// `.sync` parent and a Map Run that start their child again, each finds the execution
/// stored and runs it: every execution ends, and no child is started twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_answer_was_lost_runs_once() {
    let options = Options {
        wait_time_scale: 0.1,
        ..Options::default()
    };
    let server = Server::start_with_failpoints(options, &[], Some("start-answer-lost=25%return"));
    let client = server.client();
    let child_sm = create_machine(&client, "lost-child", &child()).await;
    let parent_sm = create_machine(&client, "lost-parent", &parent(&child_sm)).await;
    let dmap_sm = create_machine(&client, "lost-dmap", &distributed()).await;
    let few: Vec<Value> = (0..10).map(|i| json!({"n": i})).collect();

    let mut parents = Vec::new();
    let mut dmaps = Vec::new();
    for i in 0..20 {
        parents.push(
            start(
                &client,
                &parent_sm,
                Some(&format!("parent-{i}")),
                &json!({}),
            )
            .await,
        );
        if i % 4 == 0 {
            dmaps.push(start(&client, &dmap_sm, Some(&format!("dmap-{i}")), &json!(few)).await);
        }
    }
    let mut problems = Vec::new();
    for arn in parents.iter().chain(&dmaps) {
        let d = wait_done(&client, arn, ALL_DONE_WITHIN).await;
        if *d.status() != ExecutionStatus::Succeeded {
            problems.push(format!("{arn}: {:?}", d.status()));
        }
    }
    // One child per parent, each ended.
    let children = list_all(&client, |l| l.state_machine_arn(&child_sm)).await;
    if children.len() != parents.len() {
        problems.push(format!(
            "{} children for {} parents",
            children.len(),
            parents.len()
        ));
    }
    for dmap in &dmaps {
        let runs = client.list_map_runs().execution_arn(dmap).send().await;
        let runs = runs.expect("ListMapRuns");
        let [run] = runs.map_runs() else {
            problems.push(format!("{dmap}: {} Map Runs", runs.map_runs().len()));
            continue;
        };
        let items = list_all(&client, |l| l.map_run_arn(run.map_run_arn())).await;
        if items.len() != few.len() {
            problems.push(format!(
                "{dmap}: {} children for {} items",
                items.len(),
                few.len()
            ));
        }
    }
    for (arn, status) in children.iter() {
        if status != "SUCCEEDED" {
            problems.push(format!("child {arn}: {status}"));
        }
    }
    let logs = server.logs();
    assert!(problems.is_empty(), "{problems:#?}\n{logs}");
    assert!(logs.contains("start-answer-lost failpoint"), "{logs}");
    for taken_up in [
        "execution started before without an answer; running it",
        "child ended before its start was answered; telling its parent",
    ] {
        assert!(logs.contains(taken_up), "{taken_up}:\n{logs}");
    }
}

/// Every execution `filter` lists (all pages): ARN and status.
async fn list_all(
    client: &aws_sdk_sfn::Client,
    filter: impl Fn(
        aws_sdk_sfn::operation::list_executions::builders::ListExecutionsFluentBuilder,
    )
        -> aws_sdk_sfn::operation::list_executions::builders::ListExecutionsFluentBuilder,
) -> Vec<(String, String)> {
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = filter(client.list_executions())
            .set_next_token(token)
            .send()
            .await
            .expect("ListExecutions");
        for e in page.executions() {
            all.push((e.execution_arn().to_owned(), e.status().as_str().to_owned()));
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return all;
        }
    }
}
