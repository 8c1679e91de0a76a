//! Signals, redrives and activity tasks across several active nodes (`--active-nodes`) on one
//! real PostgreSQL, each reaching the node that runs the execution whatever node receives it
//! (docs/deployment.md, "Several active nodes"). Every test starts its own database and
//! nodes; they run with `STEPWISE_TEST_STORE=postgres` (scripts/test) and return at once
//! otherwise.

use crate::common;
use crate::postgres::{
    answer_while_failing, args, machines, node, spread, take_task, LEASE_TTL_SECONDS,
};
use crate::redrive::assert_redriven_history;

use std::time::{Duration, Instant};

use common::{
    create_activity, create_machine, event_types, history, start, succeed, wait_done, Server,
};
use serde_json::{json, Value};
use store::postgres::local::LocalPostgres;

const DONE_WITHIN: Duration = Duration::from_secs(30);
const TAKE_WITHIN: Duration = Duration::from_secs(10);

/// Active nodes on a database of their own, their shards spread. The nodes are dropped
/// (killed) before the database.
struct Cluster {
    nodes: Vec<Server>,
    pg: LocalPostgres,
}

impl Cluster {
    /// `n` active nodes (`a`, `b`, `c`), or `None` (with a note) when the suites do not run
    /// on PostgreSQL.
    async fn start(n: usize) -> Option<Cluster> {
        Cluster::start_with(&vec![(&[][..], None); n]).await
    }

    /// A node per entry, with its further `serve` flags and the failpoints armed from its
    /// first start.
    async fn start_with(nodes: &[(&[&str], Option<&str>)]) -> Option<Cluster> {
        if !std::env::var("STEPWISE_TEST_STORE").is_ok_and(|s| s == "postgres") {
            eprintln!("skipped: set STEPWISE_TEST_STORE=postgres to run the active-node tests");
            return None;
        }
        let pg = LocalPostgres::start_or_panic();
        let url = pg.url("postgres");
        let ids = ["a", "b", "c"];
        let nodes: Vec<Server> = ids
            .iter()
            .zip(nodes)
            .map(|(id, (extra, failpoints))| active_node(&url, id, extra, *failpoints))
            .collect();
        let refs: Vec<&Server> = nodes.iter().collect();
        spread(&refs, Duration::from_secs(20)).await;
        Some(Cluster { nodes, pg })
    }

    /// What `sql` prints on the nodes' database (one row a line).
    fn sql(&self, sql: &str) -> String {
        self.pg
            .psql("postgres", sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Waits until `n` tasks of `activity` are offered.
    async fn offered(&self, activity: &str, n: usize) {
        let count =
            format!("SELECT count(*) FROM activity_tasks WHERE activity_arn = '{activity}'");
        let until = std::time::Instant::now() + TAKE_WITHIN;
        while self.sql(&count) != n.to_string() {
            assert!(std::time::Instant::now() < until, "{}", self.sql(&count));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every node's logs, for failure messages.
    fn logs(&self) -> String {
        self.nodes.iter().map(Server::logs).collect()
    }
}

/// A node of several active ones with further `serve` flags and `failpoints` armed.
fn active_node(url: &str, id: &str, extra: &[&str], failpoints: Option<&str>) -> Server {
    let (options, mut node_args) = node(url, id);
    node_args.push("--active-nodes".into());
    node_args.extend(extra.iter().map(|a| (*a).to_owned()));
    Server::start_with_failpoints(options, &args(&node_args), failpoints)
}

/// Calls `Stepwise.<op>` on `server` and expects HTTP 200.
async fn ext_ok(server: &Server, op: &str, body: &Value) -> Value {
    let r = server
        .raw()
        .send(Some(&format!("Stepwise.{op}")), body.to_string(), &[])
        .await;
    assert_eq!(r.status, 200, "{op} {body}: {} {}", r.status, r.text);
    r.json()
}

/// The AWS error code a call answered (`"ok"` when it succeeded).
fn code<T, E: aws_sdk_sfn::error::ProvideErrorMetadata>(
    r: Result<T, aws_sdk_sfn::error::SdkError<E>>,
) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => aws_sdk_sfn::error::ProvideErrorMetadata::code(&e)
            .unwrap_or("?")
            .to_owned(),
    }
}

/// The event types of `arn`'s history, checked for AWS's numbering.
async fn types(client: &aws_sdk_sfn::Client, arn: &str) -> Vec<String> {
    let events = history(client, arn).await;
    let problems = common::history_problems(&events);
    assert!(problems.is_empty(), "{arn}: {problems:?}");
    event_types(&events)
}

/// A token of an attempt that timed out and was retried is refused with `TaskTimedOut` by
/// every node, the owner's and the others (which look at the stored checkpoint), for an
/// answer and a heartbeat alike; the current attempt's token completes the task through
/// another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_token_is_refused_by_every_node() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let client = a.client();
    let activity = create_activity(&client, "stale").await;
    let definition = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": activity, "TimeoutSeconds": 1, "End": true,
        "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 1}]}}});
    let sm = create_machine(&client, "stale", &definition).await;
    // Started through `a`, it runs there.
    let arn = start(&client, &sm, None, &json!({"n": 1})).await;
    let (first, _) = take_task(&b.client(), &activity, TAKE_WITHIN)
        .await
        .expect("the first attempt through b");
    // Left unanswered, it times out and the retry is offered.
    let (second, input) = take_task(&c.client(), &activity, TAKE_WITHIN)
        .await
        .expect("the second attempt through c");
    assert_eq!(input, json!({"n": 1}));
    for node in [b, c, a] {
        let client = node.client();
        let success = client
            .send_task_success()
            .task_token(&first)
            .output("{}")
            .send()
            .await;
        let heartbeat = client.send_task_heartbeat().task_token(&first).send().await;
        let failure = client.send_task_failure().task_token(&first).send().await;
        assert_eq!(
            [code(success), code(heartbeat), code(failure)],
            ["TaskTimedOut"; 3],
            "the stale token through {}\n{}",
            node.endpoint(),
            cluster.logs()
        );
    }
    assert_eq!(
        code(
            b.client()
                .send_task_heartbeat()
                .task_token(&second)
                .send()
                .await
        ),
        "ok"
    );
    succeed(&b.client(), &second, &json!({"done": 2})).await;
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(d.status().as_str(), "SUCCEEDED", "{}", cluster.logs());
    assert_eq!(d.output(), Some(r#"{"done":2}"#));
    assert_eq!(
        types(&client, &arn).await,
        [
            "ExecutionStarted",
            "TaskStateEntered",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivityTimedOut",
            "ActivityScheduled",
            "ActivityStarted",
            "ActivitySucceeded",
            "TaskStateExited",
            "ExecutionSucceeded",
        ]
    );
}

/// Redrives through stepwise's extensions (from a chosen state with a new input, onto the
/// state machine's current definition) sent to nodes that do not run the execution are
/// committed there and re-open it on the node that does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn extension_redrives_work_through_any_node() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let client = a.client();
    let definition = |default: &str| {
        json!({"StartAt": "Begin", "States": {
            "Begin": {"Type": "Pass", "Next": "Check"},
            "Check": {"Type": "Choice", "Default": default,
                "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}]},
            "Done": {"Type": "Succeed"},
            "Broken": {"Type": "Fail", "Error": "Nope", "Cause": "not ok"}}})
    };
    let sm = create_machine(&client, "extensions", &definition("Broken")).await;
    // Started through `a`, it runs there.
    let arn = start(&client, &sm, None, &json!({"ok": false})).await;
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(d.status().as_str(), "FAILED");

    // From Check with another input, through b: it fails again there.
    let input = json!({"ok": false, "n": 2});
    let body = json!({"executionArn": arn, "statePath": "Check", "input": input.to_string()});
    ext_ok(b, "RedriveExecutionFromState", &body).await;
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(
        (d.status().as_str(), d.redrive_count()),
        ("FAILED", Some(1)),
        "{}",
        cluster.logs()
    );
    let events = history(&client, &arn).await;
    let entered: Vec<Value> = events
        .iter()
        .filter_map(|e| e.state_entered_event_details())
        .filter(|d| d.name() == "Check")
        .filter_map(|d| d.input().and_then(|i| serde_json::from_str(i).ok()))
        .collect();
    assert_eq!(entered, [json!({"ok": false}), input]);

    // Onto the current definition (Check now goes on to Done), through c.
    client
        .update_state_machine()
        .state_machine_arn(&sm)
        .definition(definition("Done").to_string())
        .send()
        .await
        .expect("UpdateStateMachine");
    let body = json!({"executionArn": arn, "statePath": "Check", "definition": "CURRENT"});
    ext_ok(c, "RedriveExecutionFromState", &body).await;
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(
        (d.status().as_str(), d.redrive_count()),
        ("SUCCEEDED", Some(2)),
        "{}",
        cluster.logs()
    );
    assert_eq!(d.output(), Some(r#"{"ok":false,"n":2}"#));
    let events = history(&client, &arn).await;
    assert_redriven_history(&arn, &events);
    let failed_run = [
        "ChoiceStateEntered",
        "ChoiceStateExited",
        "FailStateEntered",
    ];
    let mut expected = vec!["ExecutionStarted", "PassStateEntered", "PassStateExited"];
    expected.extend(failed_run);
    expected.extend(["ExecutionFailed", "ExecutionRedriven"]);
    expected.extend(failed_run);
    expected.extend(["ExecutionFailed", "ExecutionRedriven"]);
    expected.extend(["ChoiceStateEntered", "ChoiceStateExited"]);
    expected.extend([
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]);
    assert_eq!(event_types(&events), expected);
}

/// Activity tasks offered for executions that end before a worker takes them (stopped
/// through another node, failed, timed out) are withdrawn by the commit that ends them: no
/// row stays, and the next worker gets the task of a running execution.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offered_tasks_are_withdrawn_when_their_execution_ends() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let client = a.client();
    let offered = create_activity(&client, "offered").await;
    let trigger = create_activity(&client, "trigger").await;
    let task = |resource: &str| json!({"Type": "Task", "Resource": resource, "End": true});
    let one = json!({"StartAt": "T", "States": {"T": task(&offered)}});
    let mut timed = one.clone();
    timed["TimeoutSeconds"] = json!(3);
    let branch = |resource: &str| json!({"StartAt": "T", "States": {"T": task(resource)}});
    let parallel = json!({"StartAt": "P", "States": {"P": {"Type": "Parallel", "End": true,
        "Branches": [branch(&offered), branch(&trigger)]}}});
    let one = create_machine(&client, "one-task", &one).await;
    let timed = create_machine(&client, "timed-task", &timed).await;
    let parallel = create_machine(&client, "parallel-tasks", &parallel).await;
    // Started through `a`, they run there.
    let stopped = start(&client, &one, None, &json!({"e": "stopped"})).await;
    let timed_out = start(&client, &timed, None, &json!({"e": "timed out"})).await;
    let failed = start(&client, &parallel, None, &json!({"e": "failed"})).await;
    cluster.offered(&offered, 3).await;

    b.client()
        .stop_execution()
        .execution_arn(&stopped)
        .send()
        .await
        .expect("StopExecution through b");
    let (token, _) = take_task(&c.client(), &trigger, TAKE_WITHIN)
        .await
        .expect("the trigger task through c");
    c.client()
        .send_task_failure()
        .task_token(token)
        .error("Broken")
        .send()
        .await
        .expect("SendTaskFailure through c");
    for (arn, status) in [
        (&stopped, "ABORTED"),
        (&failed, "FAILED"),
        (&timed_out, "TIMED_OUT"),
    ] {
        let d = wait_done(&client, arn, DONE_WITHIN).await;
        assert_eq!(d.status().as_str(), status, "{arn}\n{}", cluster.logs());
    }
    assert_eq!(cluster.sql("SELECT count(*) FROM activity_tasks"), "0");

    let kept = start(&client, &one, None, &json!({"e": "kept"})).await;
    let (token, input) = take_task(&c.client(), &offered, TAKE_WITHIN)
        .await
        .expect("the task of the running execution through c");
    assert_eq!(input, json!({"e": "kept"}));
    succeed(&b.client(), &token, &json!({"ok": true})).await;
    let d = wait_done(&client, &kept, DONE_WITHIN).await;
    assert_eq!(d.status().as_str(), "SUCCEEDED", "{}", cluster.logs());
    assert_eq!(types(&client, &kept).await, ONE_TASK);
}

/// A poll takes the tasks its own node offered first, by their key, but every fourth claim
/// takes the oldest of any node's if it waited a second longer than the node's own oldest: a
/// node whose own tasks keep coming still serves another's that no worker polls, and one
/// whose workers keep up does not. Each task is handed out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poll_takes_its_own_nodes_tasks_first_but_not_only() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    let client = a.client();
    let activity = create_activity(&client, "own-first").await;
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity,
        "End": true}}});
    let sm = create_machine(&client, "own-first", &def).await;
    // One task of b's (started through b, it runs there) and four of a's, at once; then,
    // more than a second later, four more of a's.
    let a_task = |i: i64| json!({"node": "a", "i": i});
    let (b_client, b_task) = (b.client(), json!({"node": "b", "i": 0}));
    let inputs = [1, 2, 3, 4].map(a_task);
    tokio::join!(
        start(&b_client, &sm, None, &b_task),
        start(&client, &sm, None, &inputs[0]),
        start(&client, &sm, None, &inputs[1]),
        start(&client, &sm, None, &inputs[2]),
        start(&client, &sm, None, &inputs[3]),
    );
    cluster.offered(&activity, 5).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    for i in 5..=8 {
        start(&client, &sm, None, &a_task(i)).await;
    }
    cluster.offered(&activity, 9).await;
    let mut taken = Vec::new();
    for _ in 0..9 {
        let (token, input) = take_task(&client, &activity, TAKE_WITHIN)
            .await
            .expect("a task through a");
        taken.push((token, input));
    }
    let order: Vec<(&str, i64)> = taken
        .iter()
        .map(|(_, input)| {
            (
                input["node"].as_str().unwrap_or("?"),
                input["i"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    // The fourth claim finds b's task no older than a's oldest, so it takes a's own.
    assert!(
        order[..7].iter().all(|(node, _)| *node == "a"),
        "a's own first: {order:?}"
    );
    assert!(order[..4].iter().all(|(_, i)| *i <= 4), "{order:?}");
    // The eighth finds it more than a second older than a's oldest.
    assert_eq!(order[7], ("b", 0), "then b's: {order:?}");
    assert_eq!(cluster.sql("SELECT count(*) FROM activity_tasks"), "0");
    for (token, input) in &taken {
        succeed(&b.client(), token, input).await;
    }
    let executions = client
        .list_executions()
        .state_machine_arn(&sm)
        .send()
        .await
        .expect("ListExecutions");
    for e in executions.executions() {
        let d = wait_done(&client, e.execution_arn(), DONE_WITHIN).await;
        assert_eq!(d.status().as_str(), "SUCCEEDED", "{}", cluster.logs());
        assert_eq!(types(&client, e.execution_arn()).await, ONE_TASK);
    }
}

/// A task offered on one node wakes a poll parked on another at once, by the offer's
/// notification, not at the poll's next look (every second).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_offer_wakes_a_poll_parked_on_another_node() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    let client = a.client();
    let activity = create_activity(&client, "woken").await;
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity,
        "End": true}}});
    let sm = create_machine(&client, "woken", &def).await;
    let (b_client, polled) = (b.client(), activity.clone());
    let parked = tokio::spawn(async move { take_task(&b_client, &polled, TAKE_WITHIN).await });
    // Its next look comes a second after it parked; the offer comes 0.3 s after.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let arn = start(&client, &sm, None, &json!({"woken": true})).await;
    let offered = std::time::Instant::now();
    let (token, input) = parked.await.expect("the poll").expect("a task through b");
    let waited = offered.elapsed();
    assert!(
        waited < Duration::from_millis(500),
        "the poll on b woke {waited:?} after the offer"
    );
    succeed(&b.client(), &token, &input).await;
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(d.status().as_str(), "SUCCEEDED", "{}", cluster.logs());
}

/// A task is offered in the commit that schedules it, not by a write of its own after it:
/// with every such write failing on `a` (the failpoint `announce-fails`), the tasks of
/// executions that run on `a` are still taken through `b`, whose poll the offer's
/// notification wakes, and through `a`.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_is_offered_in_the_commit_that_schedules_it() {
    let failing = Some("announce-fails=return");
    let Some(cluster) = Cluster::start_with(&[(&[][..], failing), (&[][..], None)]).await else {
        return;
    };
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    let client = a.client();
    let activity = create_activity(&client, "in-commit").await;
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity,
        "End": true}}});
    let sm = create_machine(&client, "in-commit", &def).await;
    let mut started = Vec::new();
    for (i, node) in [b, a, b, a].into_iter().enumerate() {
        let (polled, polling) = (activity.clone(), node.client());
        let parked = tokio::spawn(async move { take_task(&polling, &polled, TAKE_WITHIN).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        started.push(start(&client, &sm, None, &json!({"i": i})).await);
        let (token, input) = parked
            .await
            .expect("the poll")
            .unwrap_or_else(|| panic!("task {i} not taken\n{}", cluster.logs()));
        assert_eq!(input, json!({"i": i}));
        succeed(&node.client(), &token, &input).await;
    }
    for arn in &started {
        let d = wait_done(&client, arn, DONE_WITHIN).await;
        assert_eq!(d.status().as_str(), "SUCCEEDED", "{}", cluster.logs());
        assert_eq!(types(&client, arn).await, ONE_TASK);
    }
    assert_eq!(cluster.sql("SELECT count(*) FROM activity_tasks"), "0");
}

/// A task offered apart from its scheduling's commit (an execution's tasks offered again as
/// it resumes, or, here, those of an execution that runs a MockConfigFile test case) is
/// offered again while the database refuses the offer: the failpoint `announce-fails` fails
/// the first offer on `a`, and the task is still taken through `b`.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_offer_made_apart_is_made_again_while_it_fails() {
    let config = json!({"StateMachines": {"apart": {"TestCases": {"Unmocked": {}}}}});
    let file = crate::mocks::write_config(&config);
    let mocked: &[&str] = &["--mock-config", &file.path];
    let failing = Some("announce-fails=1*return");
    let Some(cluster) = Cluster::start_with(&[(mocked, failing), (mocked, None)]).await else {
        return;
    };
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    let client = a.client();
    let activity = create_activity(&client, "apart").await;
    let def = json!({"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity,
        "End": true}}});
    let sm = create_machine(&client, "apart", &def).await;
    let arn = start(
        &client,
        &format!("{sm}#Unmocked"),
        None,
        &json!({"apart": true}),
    )
    .await;
    let (token, input) = take_task(&b.client(), &activity, TAKE_WITHIN)
        .await
        .unwrap_or_else(|| panic!("the task not taken\n{}", cluster.logs()));
    assert_eq!(input, json!({"apart": true}));
    succeed(&b.client(), &token, &input).await;
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(d.status().as_str(), "SUCCEEDED", "{}", cluster.logs());
    assert!(
        cluster
            .logs()
            .contains("activity task not offered; trying again"),
        "{}",
        cluster.logs()
    );
}

/// The history of a one-task execution whose task succeeded.
pub(crate) const ONE_TASK: [&str; 7] = [
    "ExecutionStarted",
    "TaskStateEntered",
    "ActivityScheduled",
    "ActivityStarted",
    "ActivitySucceeded",
    "TaskStateExited",
    "ExecutionSucceeded",
];

/// One node drives a bulk redrive: the node that took the request claims it and renews the
/// claim, and a node that starts meanwhile leaves it alone; killed (-9) halfway, it is taken
/// over by one other node once its claim expired, which finishes it: every execution is
/// redriven once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_node_drives_a_bulk_redrive() {
    const DRIVING: &str = "driving bulk redrive";
    const COUNT: usize = 80;
    let slow: &[&str] = &["--bulk-redrive-rate", "10"];
    let Some(mut cluster) = Cluster::start_with(&[(slow, None); 3]).await else {
        return;
    };
    let client = cluster.nodes[1].client();
    let definition = json!({"StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Pass", "Next": "Broken"},
        "Broken": {"Type": "Fail", "Error": "Nope", "Cause": "always fails"}}});
    let sm = create_machine(&client, "bulk", &definition).await;
    let mut arns = Vec::new();
    for i in 0..COUNT {
        let node = &cluster.nodes[i % 3];
        arns.push(start(&node.client(), &sm, None, &json!({"i": i})).await);
    }
    for arn in &arns {
        let d = wait_done(&client, arn, DONE_WITHIN).await;
        assert_eq!(d.status().as_str(), "FAILED");
    }
    let body = json!({"stateMachineArn": sm, "batchToken": "one-driver"});
    ext_ok(&cluster.nodes[0], "BulkRedrive", &body).await;
    // b starts again meanwhile: it finds the batch claimed by a.
    cluster.nodes[1].restart();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = json!({"batchToken": "one-driver", "maxResults": 1});
    let before_kill = ext_ok(&cluster.nodes[2], "DescribeBulkRedrive", &report).await;
    assert_eq!(before_kill["status"], json!("RUNNING"), "{before_kill}");
    let drivers: Vec<usize> = (0..3)
        .map(|i| cluster.nodes[i].logs().matches(DRIVING).count())
        .collect();
    assert_eq!(drivers, [1, 0, 0], "{}", cluster.logs());

    cluster.nodes[0].kill9();
    let until = std::time::Instant::now() + DONE_WITHIN;
    loop {
        let page = ext_ok(&cluster.nodes[1], "DescribeBulkRedrive", &report).await;
        if page["status"] == json!("COMPLETED") {
            assert_eq!(page["redriven"], json!(COUNT), "{page}");
            break;
        }
        assert!(std::time::Instant::now() < until, "not finished: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let takers = cluster.nodes[1..]
        .iter()
        .map(|n| n.logs().matches(DRIVING).count())
        .sum::<usize>();
    assert_eq!(takers, 1, "one node takes over\n{}", cluster.logs());
    for arn in &arns {
        let d = wait_done(&client, arn, DONE_WITHIN).await;
        assert_eq!(
            (d.status().as_str(), d.redrive_count()),
            ("FAILED", Some(1))
        );
        let events = history(&client, arn).await;
        assert_redriven_history(arn, &events);
        assert_eq!(
            event_types(&events),
            [
                "ExecutionStarted",
                "PassStateEntered",
                "PassStateExited",
                "FailStateEntered",
                "ExecutionFailed",
                "ExecutionRedriven",
                "FailStateEntered",
                "ExecutionFailed",
            ],
            "{arn}"
        );
    }
}

/// A worker takes an activity task through b and answers it through a, which runs the
/// execution, before a applied the `TaskStarted` b left in its inbox (a's inbox held back by
/// a failpoint): a applies the waiting signals of the execution first, so the history has
/// the task's start, with its worker, before its end.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_through_the_owner_follows_a_start_elsewhere() {
    let Some(cluster) = with_held_inbox("inbox-drain=return").await else {
        return;
    };
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    let client = a.client();
    let (activity, sm) = one_task_machine(&client, "answered-at-owner").await;
    // Started through `a`, it runs there.
    let arn = start(&client, &sm, None, &json!({"n": 5})).await;
    let token = take_as_worker_b(b, &activity).await;
    assert_eq!(cluster.sql("SELECT count(*) FROM inbox"), "1");
    succeed(&client, &token, &json!({"ok": 5})).await;
    succeeded_with_worker_b(&cluster, &client, &arn).await;
    assert_eq!(cluster.sql("SELECT count(*) FROM inbox"), "0");
}

/// Workers answer, through the two nodes that do not run it, the tasks of a Map too large to
/// keep its lanes in the execution's row (300 iterations): that row alone cannot say whether a
/// task still waits, so the answers go to the owner, which applies each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_maps_tasks_are_answered_through_any_node() {
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let client = a.client();
    let activity = create_activity(&client, "large-map").await;
    let definition = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "End": true,
        "ItemProcessor": {"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": activity, "End": true}}}}}});
    let sm = create_machine(&client, "large-map", &definition).await;
    let items: Vec<u64> = (0..300).collect();
    // Started through `a`, it runs there.
    let arn = start(&client, &sm, None, &json!({ "items": items })).await;
    for i in 0..items.len() {
        let node = [b, c][i % 2].client();
        let (token, input) = take_task(&node, &activity, TAKE_WITHIN)
            .await
            .unwrap_or_else(|| panic!("task {i} not taken\n{}", cluster.logs()));
        succeed(&node, &token, &input).await;
    }
    let d = wait_done(&client, &arn, Duration::from_secs(120)).await;
    assert_eq!(d.status().as_str(), "SUCCEEDED", "{}", cluster.logs());
    let output = common::parse_json("the output", d.output());
    assert_eq!(output, json!(items));
}

/// Signals for several executions wait together in their owner's inbox (a reads it 2 s late,
/// by a failpoint): for each, the `TaskStarted` of a worker that took the task through b and
/// the answer sent through c. a applies each execution's in their order, so every history has
/// the start, with its worker, before the end; and it deletes every signal it applied.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signals_waiting_together_are_applied_in_their_order() {
    let Some(cluster) = with_held_inbox("inbox-drain=return(2000)").await else {
        return;
    };
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let client = a.client();
    let (activity, sm) = one_task_machine(&client, "waiting-together").await;
    // Started through `a`, they run there.
    let mut arns = Vec::new();
    for n in 0..4 {
        arns.push(start(&client, &sm, None, &json!({"n": n})).await);
    }
    cluster.offered(&activity, arns.len()).await;
    for _ in &arns {
        let token = take_as_worker_b(b, &activity).await;
        succeed(&c.client(), &token, &json!({"ok": true})).await;
    }
    for arn in &arns {
        succeeded_with_worker_b(&cluster, &client, arn).await;
    }
    assert_eq!(cluster.sql("SELECT count(*) FROM inbox"), "0");
}

/// A task its node offered but a poll on another node took is not handed out again: the
/// node's own poll, which has it first by its key, finds it taken in the commit that would
/// record its start, and takes its next task. The node's inbox is held, so the start the
/// other node sent is still waiting there.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_taken_elsewhere_is_not_handed_out_again() {
    let Some(cluster) = with_held_inbox("inbox-drain=return(2000)").await else {
        return;
    };
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    let client = a.client();
    let (activity, sm) = one_task_machine(&client, "taken-elsewhere").await;
    // Started through `a`, they run there; b has no task of its own and takes a's first.
    let first = start(&client, &sm, None, &json!({"n": 1})).await;
    cluster.offered(&activity, 1).await;
    let token = take_as_worker_b(b, &activity).await;
    let second = start(&client, &sm, None, &json!({"n": 2})).await;
    cluster.offered(&activity, 1).await;
    let (own, input) = take_task(&client, &activity, TAKE_WITHIN)
        .await
        .expect("a's next task");
    assert_eq!(input, json!({"n": 2}), "the first is b's worker's");
    succeed(&b.client(), &token, &json!({"ok": true})).await;
    succeed(&client, &own, &json!({"ok": true})).await;
    succeeded_with_worker_b(&cluster, &client, &first).await;
    let d = wait_done(&client, &second, DONE_WITHIN).await;
    assert_eq!(d.status().as_str(), "SUCCEEDED", "{}", cluster.logs());
    assert_eq!(types(&client, &second).await, ONE_TASK);
}

/// A node that crashes while it hands an activity task out (the task taken, its
/// `TaskStarted` for the owner written, neither committed) loses neither: the task is
/// offered again at once and a worker on another node gets it; the history has its one
/// start, by that worker.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hand_out_cut_short_by_a_crash_is_offered_again() {
    let none: &[&str] = &[];
    let nodes = [
        (none, None),
        (none, Some("activity-hand-out=return")),
        (none, None),
    ];
    let Some(cluster) = Cluster::start_with(&nodes).await else {
        return;
    };
    let [a, b, c] = [&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]];
    let client = a.client();
    let activity = create_activity(&client, "handed-out").await;
    let definition = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": activity, "End": true}}});
    let sm = create_machine(&client, "handed-out", &definition).await;
    // Started through `a`, it runs there.
    let arn = start(&client, &sm, None, &json!({"n": 6})).await;
    let crashed = b
        .client()
        .get_activity_task()
        .activity_arn(&activity)
        .worker_name("worker-b")
        .send()
        .await;
    assert!(crashed.is_err(), "b answered {crashed:?}");
    let task = c
        .client()
        .get_activity_task()
        .activity_arn(&activity)
        .worker_name("worker-c")
        .send()
        .await
        .expect("GetActivityTask through c");
    let token = task.task_token().expect("the task again, through c");
    assert_eq!(
        common::parse_json("the task's input", task.input()),
        json!({"n": 6})
    );
    succeed(&c.client(), token, &json!({"ok": 6})).await;
    let d = wait_done(&client, &arn, DONE_WITHIN).await;
    assert_eq!(d.status().as_str(), "SUCCEEDED", "{}", cluster.logs());
    let events = history(&client, &arn).await;
    assert_eq!(event_types(&events), ONE_TASK);
    let worker = events
        .iter()
        .find_map(|e| e.activity_started_event_details())
        .and_then(|d| d.worker_name());
    assert_eq!(worker, Some("worker-c"));
}

/// Three nodes whose first, `a`, has its inbox held back by the failpoint `inbox-drain`
/// (`return`: never read; `return(MS)`: read MS late); `None` off PostgreSQL.
#[cfg(feature = "failpoints")]
async fn with_held_inbox(failpoint: &str) -> Option<Cluster> {
    let held: &[&str] = &[];
    Cluster::start_with(&[(held, Some(failpoint)), (held, None), (held, None)]).await
}

/// An activity and a machine of one Task of it, both named `name`.
#[cfg(feature = "failpoints")]
async fn one_task_machine(client: &aws_sdk_sfn::Client, name: &str) -> (String, String) {
    let activity = create_activity(client, name).await;
    let definition = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": activity, "End": true}}});
    let sm = create_machine(client, name, &definition).await;
    (activity, sm)
}

/// Takes a task of `activity` through `node` as the worker `worker-b`: its token.
#[cfg(feature = "failpoints")]
async fn take_as_worker_b(node: &Server, activity: &str) -> String {
    let task = node
        .client()
        .get_activity_task()
        .activity_arn(activity)
        .worker_name("worker-b")
        .send()
        .await
        .expect("GetActivityTask");
    task.task_token().expect("a task").to_owned()
}

/// `arn` succeeded with one task, started by `worker-b`.
#[cfg(feature = "failpoints")]
async fn succeeded_with_worker_b(cluster: &Cluster, client: &aws_sdk_sfn::Client, arn: &str) {
    let d = wait_done(client, arn, DONE_WITHIN).await;
    assert_eq!(d.status().as_str(), "SUCCEEDED", "{}", cluster.logs());
    let events = history(client, arn).await;
    assert_eq!(event_types(&events), ONE_TASK, "{arn}");
    let worker = events
        .iter()
        .find_map(|e| e.activity_started_event_details())
        .and_then(|d| d.worker_name());
    assert_eq!(worker, Some("worker-b"), "{arn}");
}

/// The database goes away for longer than the lease TTL and comes back: the nodes lose their
/// shards meanwhile and take them again. Every execution ends, once: Waits that fell due
/// meanwhile, tasks taken through one node before (answered through the other) and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_going_away_past_the_ttl_loses_nothing() {
    let Some(cluster) = Cluster::start(2).await else {
        return;
    };
    let [a, b] = [&cluster.nodes[0], &cluster.nodes[1]];
    let (client, b_client) = (a.client(), b.client());
    let (wait, _, task, activity) = machines(&client).await;
    let (mut waits, mut tasks) = (Vec::new(), Vec::new());
    for i in 0..10 {
        let via = if i % 2 == 0 { &client } else { &b_client };
        waits.push(start(via, &wait, None, &json!({"i": i})).await);
        tasks.push(start(via, &task, None, &json!({"i": i})).await);
    }
    let mut early = Vec::new();
    for _ in 0..3 {
        let taken = take_task(&b_client, &activity, TAKE_WITHIN).await;
        early.push(taken.expect("a task before the database goes away").0);
    }

    cluster.pg.stop().expect("stopping PostgreSQL");
    tokio::time::sleep(Duration::from_secs(LEASE_TTL_SECONDS + 2)).await;
    cluster.pg.start_again().expect("starting PostgreSQL again");

    let deadline = Instant::now() + DONE_WITHIN;
    let logs = || format!("{}\n{}", a.logs(), b.logs());
    answer_while_failing(&client, &early, deadline, logs).await;
    // Until every task's execution has ended. A task whose start had not reached its
    // execution's node when the shards moved is offered again (tasks are at-least-once
    // after a takeover), so the answers are not counted: a task is taken while one waits.
    loop {
        let (open, offered) = task_states(&client, &tasks).await;
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} still running\n{}",
            logs()
        );
        if offered == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        if let Some((token, _)) = take_task(&b_client, &activity, TAKE_WITHIN).await {
            let _ = common::try_succeed(&client, &token, &json!({"by": "later"})).await;
        }
    }
    let mut problems = Vec::new();
    for arn in tasks.iter().chain(&waits) {
        let d = wait_done(&client, arn, DONE_WITHIN).await;
        if d.status().as_str() != "SUCCEEDED" {
            problems.push(format!("{arn}: {:?}", d.status()));
        }
        for p in common::history_problems(&history(&client, arn).await) {
            problems.push(format!("{arn}: {p}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}\n{}", logs());
}

/// How many of `arns` (each one activity Task) are still running, and how many of those
/// wait for a worker to take their task.
async fn task_states(client: &aws_sdk_sfn::Client, arns: &[String]) -> (usize, usize) {
    let (mut open, mut offered) = (0, 0);
    for arn in arns {
        let events = types(client, arn).await;
        let last = events.last().map(String::as_str);
        if !matches!(last, Some("ExecutionSucceeded" | "ExecutionFailed")) {
            open += 1;
            offered += usize::from(last == Some("ActivityScheduled"));
        }
    }
    (open, offered)
}
