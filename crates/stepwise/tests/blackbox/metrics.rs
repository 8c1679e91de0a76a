//! `GET /metrics` after a known workload: CloudWatch's Step Functions metric names with their
//! exact counts, the task time summaries, and the engine's health gauges.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{create_machine, start, wait_done, Options, Server, StoreKind};
use serde_json::json;

const DONE_WITHIN: Duration = Duration::from_secs(20);

/// The Prometheus text as `series → value` (`name{label="…"}` as written).
async fn scrape(server: &Server) -> BTreeMap<String, f64> {
    scrape_with(server, None).await
}

/// `GET /metrics`, with `Authorization: Bearer <token>` when a token is given.
async fn get_metrics(server: &Server, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", server.endpoint()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET /metrics")
}

async fn scrape_with(server: &Server, token: Option<&str>) -> BTreeMap<String, f64> {
    let response = get_metrics(server, token).await;
    assert_eq!(response.status().as_u16(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    let text = response.text().await.expect("the metrics text");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_workload_under_cloudwatch_names() {
    let server = Server::start(Options {
        store: StoreKind::Sqlite,
        ..Options::default()
    });
    let sfn = server.client();

    // Three executions that succeed.
    let ok = create_machine(
        &sfn,
        "metrics-ok",
        &json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}),
    )
    .await;
    for i in 0..3 {
        let arn = start(&sfn, &ok, Some(&format!("ok-{i}")), &json!({})).await;
        wait_done(&sfn, &arn, DONE_WITHIN).await;
    }

    // Two that fail (a path that exists only after a redrive); one of them is redriven.
    let flaky = create_machine(
        &sfn,
        "metrics-flaky",
        &json!({"StartAt": "P", "States": {"P": {
            "Type": "Pass", "Parameters": {"t.$": "$$.Execution.RedriveTime"}, "End": true}}}),
    )
    .await;
    let mut failed = Vec::new();
    for i in 0..2 {
        let arn = start(&sfn, &flaky, Some(&format!("flaky-{i}")), &json!({})).await;
        assert_eq!(
            wait_done(&sfn, &arn, DONE_WITHIN).await.status().as_str(),
            "FAILED"
        );
        failed.push(arn);
    }
    sfn.redrive_execution()
        .execution_arn(&failed[0])
        .send()
        .await
        .expect("RedriveExecution");
    assert_eq!(
        wait_done(&sfn, &failed[0], DONE_WITHIN)
            .await
            .status()
            .as_str(),
        "SUCCEEDED"
    );

    // Two activity tasks: one succeeds, one fails.
    let activity = sfn
        .create_activity()
        .name("metrics-work")
        .send()
        .await
        .expect("CreateActivity")
        .activity_arn()
        .to_owned();
    let worker = create_machine(
        &sfn,
        "metrics-worker",
        &json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity, "End": true}}}),
    )
    .await;
    let mut runs = Vec::new();
    for i in 0..2 {
        runs.push(start(&sfn, &worker, Some(&format!("w-{i}")), &json!({"i": i})).await);
    }
    for i in 0..2 {
        let task = sfn
            .get_activity_task()
            .activity_arn(&activity)
            .worker_name("w")
            .send()
            .await
            .expect("GetActivityTask");
        let token = task.task_token().expect("a task").to_owned();
        if i == 0 {
            sfn.send_task_success()
                .task_token(token)
                .output("{}")
                .send()
                .await
                .expect("SendTaskSuccess");
        } else {
            sfn.send_task_failure()
                .task_token(token)
                .error("Work.Broken")
                .send()
                .await
                .expect("SendTaskFailure");
        }
    }
    for arn in &runs {
        wait_done(&sfn, arn, DONE_WITHIN).await;
    }

    // One waits, and is seen parked before it is stopped.
    let waits = create_machine(
        &sfn,
        "metrics-wait",
        &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": true}}}),
    )
    .await;
    let parked = start(&sfn, &waits, Some("parked"), &json!({})).await;
    let before = scrape(&server).await;
    assert_eq!(
        before.get("stepwise_parked_executions"),
        Some(&1.0),
        "{before:#?}"
    );
    assert_eq!(before.get("OpenExecutionCount"), Some(&1.0), "{before:#?}");
    sfn.stop_execution()
        .execution_arn(&parked)
        .send()
        .await
        .expect("StopExecution");

    let m = scrape(&server).await;
    let sm = |name: &str, arn: &str| format!("{name}{{StateMachineArn=\"{arn}\"}}");
    let act = |name: &str| format!("{name}{{ActivityArn=\"{activity}\"}}");
    let expected = [
        (sm("ExecutionsStarted", &ok), 3.0),
        (sm("ExecutionsSucceeded", &ok), 3.0),
        (sm("ExecutionTime_count", &ok), 3.0),
        (sm("ExecutionsStarted", &flaky), 2.0),
        (sm("ExecutionsFailed", &flaky), 2.0),
        (sm("ExecutionsRedriven", &flaky), 1.0),
        (sm("ExecutionsSucceeded", &flaky), 1.0),
        (sm("RedrivenExecutionsSucceeded", &flaky), 1.0),
        (sm("ExecutionTime_count", &flaky), 3.0),
        (sm("ExecutionsStarted", &worker), 2.0),
        (sm("ExecutionsSucceeded", &worker), 1.0),
        (sm("ExecutionsFailed", &worker), 1.0),
        (act("ActivitiesScheduled"), 2.0),
        (act("ActivitiesStarted"), 2.0),
        (act("ActivitiesSucceeded"), 1.0),
        (act("ActivitiesFailed"), 1.0),
        (act("ActivityScheduleTime_count"), 2.0),
        (act("ActivityRunTime_count"), 2.0),
        (act("ActivityTime_count"), 2.0),
        (sm("ExecutionsStarted", &waits), 1.0),
        (sm("ExecutionsAborted", &waits), 1.0),
        ("stepwise_parked_executions".to_owned(), 0.0),
        ("OpenExecutionCount".to_owned(), 0.0),
        ("stepwise_ready_queue_depth".to_owned(), 0.0),
    ];
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(series, value)| m.get(series) != Some(value))
        .map(|(series, value)| format!("{series}: want {value}, got {:?}", m.get(series)))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}\n{m:#?}");
    // What never happened is not counted.
    for absent in [
        sm("ExecutionsFailed", &ok),
        sm("ExecutionsTimedOut", &ok),
        act("ActivitiesTimedOut"),
    ] {
        assert!(!m.contains_key(&absent), "{absent} was counted");
    }
    // Health: commits happened, and the store has a size.
    assert!(
        m.get("stepwise_commit_batch_size_count")
            .is_some_and(|n| *n >= 1.0),
        "{m:#?}"
    );
    assert!(
        m.get("stepwise_commit_seconds_count")
            .is_some_and(|n| *n >= 1.0),
        "{m:#?}"
    );
    assert!(
        m.get("stepwise_store_bytes").is_some_and(|n| *n > 0.0),
        "{m:#?}"
    );
}

/// An execution started once the open-executions limit let it, and how often it was refused
/// first (an execution that just ended may hold its slot for a moment).
struct Started {
    arn: String,
    refused: u32,
}

async fn start_when_admitted(raw: &common::Raw, sm: &str, name: &str) -> Started {
    let deadline = std::time::Instant::now() + DONE_WITHIN;
    let mut refused = 0;
    loop {
        let r = raw
            .call(
                "StartExecution",
                &json!({"stateMachineArn": sm, "name": name, "input": "{}"}),
            )
            .await;
        if r.status == 200 {
            let arn = r.json()["executionArn"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            return Started { arn, refused };
        }
        assert_eq!(
            r.error_code().as_deref(),
            Some("ExecutionLimitExceeded"),
            "{}",
            r.text
        );
        assert!(std::time::Instant::now() < deadline, "never admitted");
        refused += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Takes `n` tasks of `activity` and ends them, in the order they were taken, with success.
async fn work_all(sfn: &aws_sdk_sfn::Client, activity: &str, n: usize) {
    let mut tokens = Vec::new();
    let deadline = std::time::Instant::now() + DONE_WITHIN;
    while tokens.len() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} tasks were not scheduled"
        );
        let task = sfn
            .get_activity_task()
            .activity_arn(activity)
            .send()
            .await
            .expect("GetActivityTask");
        if let Some(token) = task.task_token().filter(|t| !t.is_empty()) {
            tokens.push(token.to_owned());
        }
    }
    for token in tokens {
        sfn.send_task_success()
            .task_token(token)
            .output("{}")
            .send()
            .await
            .expect("SendTaskSuccess");
    }
}

/// `ExecutionThrottled` counts the StartExecution and RedriveExecution calls refused beyond
/// `--max-open-executions`; the task times of Map iterations that wait on activities at once
/// are each counted; and `--metrics-token` guards the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_throttled_executions_and_concurrent_tasks_behind_a_token() {
    const TOKEN: &str = "scrape-secret";
    let server = Server::start_with_args(
        Options {
            store: StoreKind::Sqlite,
            ..Options::default()
        },
        &["--max-open-executions", "1", "--metrics-token", TOKEN],
    );
    let sfn = server.client();

    // The page wants the token.
    for token in [None, Some("wrong")] {
        let response = get_metrics(&server, token).await;
        assert_eq!(response.status().as_u16(), 401, "token {token:?}");
    }

    // Three Map iterations wait on their activity tasks at once.
    let activity = common::create_activity(&sfn, "metrics-fan").await;
    let fan = create_machine(
        &sfn,
        "metrics-fan",
        &json!({"StartAt": "Fan", "States": {"Fan": {
            "Type": "Map",
            "ItemProcessor": {"StartAt": "Work", "States": {
                "Work": {"Type": "Task", "Resource": activity, "End": true}}},
            "End": true}}}),
    )
    .await;
    let fanned = start(&sfn, &fan, Some("fan"), &json!([1, 2, 3])).await;
    work_all(&sfn, &activity, 3).await;
    assert_eq!(
        wait_done(&sfn, &fanned, DONE_WITHIN)
            .await
            .status()
            .as_str(),
        "SUCCEEDED"
    );

    // A failed execution, then one that waits and holds the only open slot.
    let fails = create_machine(
        &sfn,
        "metrics-fails",
        &json!({"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}),
    )
    .await;
    let raw = server.raw();
    let failed = start_when_admitted(&raw, &fails, "failed").await;
    wait_done(&sfn, &failed.arn, DONE_WITHIN).await;
    let waits = create_machine(
        &sfn,
        "metrics-waits",
        &json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": true}}}),
    )
    .await;
    let holder = start_when_admitted(&raw, &waits, "holder").await;
    // Two starts and a redrive are refused.
    for name in ["over-1", "over-2"] {
        let refused = raw
            .call(
                "StartExecution",
                &json!({"stateMachineArn": waits, "name": name, "input": "{}"}),
            )
            .await;
        assert_eq!(
            refused.error_code().as_deref(),
            Some("ExecutionLimitExceeded"),
            "{}",
            refused.text
        );
    }
    let refused = raw
        .call("RedriveExecution", &json!({"executionArn": failed.arn}))
        .await;
    assert_eq!(
        refused.error_code().as_deref(),
        Some("ExecutionLimitExceeded"),
        "{}",
        refused.text
    );
    sfn.stop_execution()
        .execution_arn(&holder.arn)
        .send()
        .await
        .expect("StopExecution");
    wait_done(&sfn, &holder.arn, DONE_WITHIN).await;

    let m = scrape_with(&server, Some(TOKEN)).await;
    let sm = |name: &str, arn: &str| format!("{name}{{StateMachineArn=\"{arn}\"}}");
    let act = |name: &str| format!("{name}{{ActivityArn=\"{activity}\"}}");
    let expected = [
        (
            sm("ExecutionThrottled", &waits),
            2.0 + holder.refused as f64,
        ),
        (
            sm("ExecutionThrottled", &fails),
            1.0 + failed.refused as f64,
        ),
        (sm("ExecutionsStarted", &waits), 1.0),
        (sm("ExecutionsAborted", &waits), 1.0),
        (sm("ExecutionsStarted", &fan), 1.0),
        (sm("ExecutionsSucceeded", &fan), 1.0),
        (act("ActivitiesScheduled"), 3.0),
        (act("ActivitiesStarted"), 3.0),
        (act("ActivitiesSucceeded"), 3.0),
        // Each end is paired with its own start, though the three ran at once.
        (act("ActivityScheduleTime_count"), 3.0),
        (act("ActivityRunTime_count"), 3.0),
        (act("ActivityTime_count"), 3.0),
    ];
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(series, value)| m.get(series) != Some(value))
        .map(|(series, value)| format!("{series}: want {value}, got {:?}", m.get(series)))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}\n{m:#?}");
    assert!(!m.contains_key(&sm("ExecutionThrottled", &fan)), "{m:#?}");
}

/// Under `--auth sigv4` without `--metrics-token`, the page is refused: a scraper cannot sign.
#[tokio::test]
async fn metrics_are_refused_under_sigv4_without_a_token() {
    let file = tempfile::NamedTempFile::new().expect("a credentials file");
    std::fs::write(
        file.path(),
        "[a]\naws_access_key_id = AKIDA\naws_secret_access_key = secret\n",
    )
    .expect("writing the credentials file");
    let path = file.path().to_string_lossy().into_owned();
    let server = Server::start_with_args(
        Options::default(),
        &["--auth", "sigv4", "--credentials-file", &path],
    );
    let response = get_metrics(&server, None).await;
    assert_eq!(response.status().as_u16(), 403);
}
