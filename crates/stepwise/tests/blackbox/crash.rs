//! Durability: `kill -9` the server with executions in flight, restart it on the same SQLite
//! data directory, and check that every acknowledged execution finishes with a clean history.

use crate::common;

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent};
use common::{event_types, history, history_problems, parse_json, Server};
use serde_json::{json, Value};

/// Wait durations are real: `Seconds: 2` waits two seconds.
const SCALE: f64 = 1.0;
const WAIT_SECONDS: i64 = 2;
const PER_KIND: usize = 50;
const CHAIN_LENGTH: usize = 30;
const ALL_DONE_WITHIN: Duration = Duration::from_secs(30);

/// Pass → Wait(2s) → Pass.
fn wait_machine() -> Value {
    json!({
        "StartAt": "Before",
        "States": {
            "Before": {"Type": "Pass", "Result": "a", "ResultPath": "$.before", "Next": "Sleep"},
            "Sleep": {"Type": "Wait", "Seconds": WAIT_SECONDS, "Next": "After"},
            "After": {"Type": "Pass", "Result": "b", "ResultPath": "$.after", "End": true}
        }
    })
}

fn wait_events() -> Vec<&'static str> {
    vec![
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "WaitStateEntered",
        "WaitStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
}

/// Thirty Pass states in a row, each recording its number in `$.step`.
fn chain_machine() -> Value {
    let mut states = serde_json::Map::new();
    for i in 1..=CHAIN_LENGTH {
        let mut s = json!({"Type": "Pass", "Result": i, "ResultPath": "$.step"});
        if i == CHAIN_LENGTH {
            s["End"] = json!(true);
        } else {
            s["Next"] = json!(format!("S{}", i + 1));
        }
        states.insert(format!("S{i}"), s);
    }
    json!({"StartAt": "S1", "States": states})
}

fn chain_events() -> Vec<&'static str> {
    let mut v = vec!["ExecutionStarted"];
    for _ in 0..CHAIN_LENGTH {
        v.push("PassStateEntered");
        v.push("PassStateExited");
    }
    v.push("ExecutionSucceeded");
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Wait,
    Chain,
}

#[derive(Debug, Clone)]
struct Started {
    arn: String,
    kind: Kind,
    id: usize,
}

/// Starts `PER_KIND` executions of each machine, all in flight at once, and returns them once
/// every StartExecution has been acknowledged.
async fn start_all(
    client: &aws_sdk_sfn::Client,
    wait_sm: &str,
    chain_sm: &str,
    kinds: &[Kind],
) -> Vec<Started> {
    let mut tasks = Vec::new();
    for id in 0..PER_KIND {
        for &kind in kinds {
            let client = client.clone();
            let sm = match kind {
                Kind::Wait => wait_sm.to_owned(),
                Kind::Chain => chain_sm.to_owned(),
            };
            tasks.push(tokio::spawn(async move {
                let out = client
                    .start_execution()
                    .state_machine_arn(&sm)
                    .name(format!("{kind:?}-{id}").to_lowercase())
                    .input(json!({"id": id}).to_string())
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "StartExecution {kind:?} {id}: {}",
                            aws_sdk_sfn::error::DisplayErrorContext(&e)
                        )
                    });
                Started {
                    arn: out.execution_arn().to_owned(),
                    kind,
                    id,
                }
            }));
        }
    }
    let mut started = Vec::new();
    for t in tasks {
        started.push(t.await.expect("StartExecution task panicked"));
    }
    started
}

/// Polls until every execution has left RUNNING; returns the ones that did not SUCCEED or are
/// still running at the deadline, described.
async fn wait_all_done(
    client: &aws_sdk_sfn::Client,
    started: &[Started],
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut pending: Vec<&Started> = started.iter().collect();
    let mut problems = Vec::new();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for s in pending {
            let d = client
                .describe_execution()
                .execution_arn(&s.arn)
                .send()
                .await;
            match d {
                Err(e) => problems.push(format!(
                    "{}: DescribeExecution failed after the restart: {}",
                    s.arn,
                    aws_sdk_sfn::error::DisplayErrorContext(&e)
                )),
                Ok(d) if *d.status() == ExecutionStatus::Running => still.push(s),
                Ok(d) if *d.status() == ExecutionStatus::Succeeded => {
                    let output = parse_json("output", d.output());
                    let want = match s.kind {
                        Kind::Wait => json!({"id": s.id, "before": "a", "after": "b"}),
                        Kind::Chain => json!({"id": s.id, "step": CHAIN_LENGTH}),
                    };
                    if output != want {
                        problems.push(format!("{}: output {output}, expected {want}", s.arn));
                    }
                }
                Ok(d) => problems.push(format!(
                    "{}: ended {:?} error {:?} cause {:?}",
                    s.arn,
                    d.status(),
                    d.error(),
                    d.cause()
                )),
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            for s in &pending {
                let events = history(client, &s.arn).await;
                problems.push(format!(
                    "{}: still RUNNING after {within:?}; history {:?}",
                    s.arn,
                    event_types(&events)
                ));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    problems
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

fn ms(t: &aws_sdk_sfn::primitives::DateTime) -> i64 {
    t.to_millis().expect("timestamp in millisecond range")
}

/// Everything wrong with one finished execution's history.
fn check_history(s: &Started, events: &[HistoryEvent]) -> Vec<String> {
    let mut problems = history_problems(events);
    let types = event_types(events);
    let want = match s.kind {
        Kind::Wait => wait_events(),
        Kind::Chain => chain_events(),
    };
    if types != want {
        problems.push(format!(
            "{} events {types:?}, expected {} events {want:?}",
            types.len(),
            want.len()
        ));
    }
    let count = |t: &str| types.iter().filter(|x| x.as_str() == t).count();
    if count("ExecutionStarted") != 1 || count("ExecutionSucceeded") != 1 {
        problems.push(format!(
            "{} ExecutionStarted and {} ExecutionSucceeded",
            count("ExecutionStarted"),
            count("ExecutionSucceeded")
        ));
    }
    if s.kind == Kind::Wait {
        // The Wait must not be cut short by the crash.
        let at = |t: &str| {
            events
                .iter()
                .find(|e| e.r#type().as_str() == t)
                .map(|e| ms(e.timestamp()))
        };
        if let (Some(entered), Some(exited)) = (at("WaitStateEntered"), at("WaitStateExited")) {
            if exited - entered < WAIT_SECONDS * 1000 - 50 {
                problems.push(format!(
                    "Wait {WAIT_SECONDS}s lasted only {} ms",
                    exited - entered
                ));
            }
        }
    }
    if s.kind == Kind::Chain {
        let entered: Vec<String> = events
            .iter()
            .filter_map(|e| e.state_entered_event_details())
            .map(|d| d.name().to_owned())
            .collect();
        let want: Vec<String> = (1..=CHAIN_LENGTH).map(|i| format!("S{i}")).collect();
        if entered != want {
            problems.push(format!("states entered {entered:?}"));
        }
    }
    problems
}

async fn check_all_histories(client: &aws_sdk_sfn::Client, started: &[Started]) -> Vec<String> {
    let mut problems = Vec::new();
    for s in started {
        let events = history(client, &s.arn).await;
        let p = check_history(s, &events);
        if !p.is_empty() {
            problems.push(format!("{}:\n      {}", s.arn, p.join("\n      ")));
        }
    }
    problems
}

fn report(server: &Server, what: &str, problems: &[String]) {
    if !problems.is_empty() {
        let shown: Vec<&String> = problems.iter().take(15).collect();
        let logs = server.logs();
        let tail: String = logs
            .chars()
            .rev()
            .take(6000)
            .collect::<String>()
            .chars()
            .rev()
            .collect();
        panic!(
            "{what}: {} problem(s) (first {}):\n  {}\n{tail}",
            problems.len(),
            shown.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}

/// How many of the Waits ended at or after `at` (epoch ms).
async fn ended_after(client: &aws_sdk_sfn::Client, started: &[Started], at: i64) -> usize {
    let mut count = 0;
    for s in started.iter().filter(|s| s.kind == Kind::Wait) {
        let events = history(client, &s.arn).await;
        let exited = events
            .iter()
            .find(|e| e.r#type().as_str() == "WaitStateExited")
            .map(|e| ms(e.timestamp()));
        if exited.is_some_and(|t| t >= at) {
            count += 1;
        }
    }
    count
}

async fn machines(client: &aws_sdk_sfn::Client) -> (String, String) {
    let wait_sm = common::create_machine(client, "crash-wait", &wait_machine()).await;
    let chain_sm = common::create_machine(client, "crash-chain", &chain_machine()).await;
    (wait_sm, chain_sm)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_right_after_starts_then_everything_completes() {
    let mut server = Server::sqlite(SCALE);
    let client = server.client();
    let (wait_sm, chain_sm) = machines(&client).await;
    let started = start_all(&client, &wait_sm, &chain_sm, &[Kind::Wait, Kind::Chain]).await;
    assert_eq!(started.len(), 2 * PER_KIND);
    // Every StartExecution above was acknowledged; crash now.
    server.kill9();
    drop(client);

    let restarted_at = now_ms();
    server.restart();
    let client = server.client();
    let problems = wait_all_done(&client, &started, ALL_DONE_WITHIN).await;
    report(&server, "after one crash", &problems);
    let problems = check_all_histories(&client, &started).await;
    report(&server, "histories after one crash", &problems);

    // The crash really interrupted work: Waits (2 s) that began before it ended after it.
    assert!(
        ended_after(&client, &started, restarted_at).await > 0,
        "no Wait was still pending at the crash; the test proved nothing"
    );

    // The listing agrees with the executions.
    for sm in [&wait_sm, &chain_sm] {
        let mut count = 0;
        let mut token = None;
        loop {
            let page = client
                .list_executions()
                .state_machine_arn(sm)
                .set_next_token(token)
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "ListExecutions: {}",
                        aws_sdk_sfn::error::DisplayErrorContext(&e)
                    )
                });
            for e in page.executions() {
                assert_eq!(e.status(), &ExecutionStatus::Succeeded, "{e:?}");
                count += 1;
            }
            match page.next_token() {
                Some(t) => token = Some(t.to_owned()),
                None => break,
            }
        }
        assert_eq!(count, PER_KIND, "ListExecutions of {sm}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_stops_the_engine_and_a_restart_finishes_everything() {
    let mut server = Server::sqlite(SCALE);
    let client = server.client();
    let (wait_sm, chain_sm) = machines(&client).await;
    let started = start_all(&client, &wait_sm, &chain_sm, &[Kind::Wait, Kind::Chain]).await;
    drop(client);
    assert!(
        server.terminate(Duration::from_secs(15)),
        "the server did not exit successfully within 15 s of SIGTERM\n{}",
        server.logs()
    );
    assert!(
        server.logs().contains("stepwise stopped"),
        "{}",
        server.logs()
    );

    let restarted_at = now_ms();
    server.restart();
    let client = server.client();
    let problems = wait_all_done(&client, &started, ALL_DONE_WITHIN).await;
    report(&server, "after SIGTERM and a restart", &problems);
    let problems = check_all_histories(&client, &started).await;
    report(&server, "histories after SIGTERM and a restart", &problems);
    assert!(
        ended_after(&client, &started, restarted_at).await > 0,
        "no Wait was still pending at SIGTERM; the test proved nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn second_crash_while_waits_are_pending() {
    let mut server = Server::sqlite(SCALE);
    let client = server.client();
    let (wait_sm, chain_sm) = machines(&client).await;
    let started = start_all(&client, &wait_sm, &chain_sm, &[Kind::Wait, Kind::Chain]).await;
    server.kill9();
    drop(client);

    // First restart: let the executions reach their Wait, then crash again before it ends.
    server.restart();
    let client = server.client();
    let waits: Vec<&Started> = started.iter().filter(|s| s.kind == Kind::Wait).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut in_wait = 0;
    for s in &waits {
        loop {
            let types = event_types(&history(&client, &s.arn).await);
            if types.iter().any(|t| t == "WaitStateEntered") {
                in_wait += 1;
                break;
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        in_wait > 0,
        "no execution reached its Wait after the first restart\n{}",
        server.logs()
    );
    // Some Waits are still pending (2 s each); the check below proves it.
    let pending_waits = {
        let mut n = 0;
        for s in &waits {
            let types = event_types(&history(&client, &s.arn).await);
            if types.iter().any(|t| t == "WaitStateEntered")
                && !types.iter().any(|t| t == "WaitStateExited")
            {
                n += 1;
            }
        }
        n
    };
    server.kill9();
    drop(client);
    assert!(
        pending_waits > 0,
        "every Wait had already ended before the second crash"
    );

    server.restart();
    let client = server.client();
    let problems = wait_all_done(&client, &started, ALL_DONE_WITHIN).await;
    report(
        &server,
        &format!("after two crashes ({pending_waits} Waits pending at the second)"),
        &problems,
    );
    let problems = check_all_histories(&client, &started).await;
    report(&server, "histories after two crashes", &problems);
}

/// A crash in the middle of a burst of short executions: whatever was acknowledged before
/// the crash finishes; nothing half-written breaks the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_mid_run_of_chains() {
    let mut server = Server::sqlite(SCALE);
    let client = server.client();
    let (wait_sm, chain_sm) = machines(&client).await;
    let started = start_all(&client, &wait_sm, &chain_sm, &[Kind::Chain]).await;
    // Let some (not necessarily all) of them run a little, then crash.
    tokio::time::sleep(Duration::from_millis(30)).await;
    server.kill9();
    drop(client);
    server.restart();
    let client = server.client();
    let problems = wait_all_done(&client, &started, ALL_DONE_WITHIN).await;
    report(&server, "chains after a crash mid-run", &problems);
    let problems = check_all_histories(&client, &started).await;
    report(&server, "chain histories after a crash mid-run", &problems);
}
