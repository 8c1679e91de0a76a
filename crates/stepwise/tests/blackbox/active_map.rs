//! Distributed Maps on several active nodes (`--active-nodes`, PostgreSQL): a Map Run spreads
//! its Standard children over every shard, so they run on every node; their ends reach the
//! node that runs the parent; stopping the parent, or a Map Run that fails past its tolerated
//! failures, stops children on every node; a redrive of the parent re-opens the failed
//! children on the nodes that hold them; and a node killed with `kill -9` while it runs
//! children leaves them to the others, the Map Run still ending with the exact output.
//!
//! These run only with `STEPWISE_TEST_STORE=postgres` (scripts/test's active-nodes pass).

use crate::common;
use crate::postgres::{active_node, held_shards, spread, take_task, LEASE_TTL_SECONDS};

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{create_activity, create_machine, history, start, succeed, wait_done, Server};
use serde_json::{json, Value};
use store::postgres::local::LocalPostgres;

/// Children per Map Run: one per shard.
const CHILDREN: u64 = 16;

fn on_postgres() -> bool {
    let on = std::env::var("STEPWISE_TEST_STORE").is_ok_and(|s| s == "postgres");
    if !on {
        eprintln!("skipped: needs STEPWISE_TEST_STORE=postgres");
    }
    on
}

/// Three active nodes on one new database, with the shards spread among them.
async fn three_nodes(pg: &LocalPostgres) -> [Server; 3] {
    let url = pg.url("postgres");
    let nodes = ["a", "b", "c"].map(|id| active_node(&url, id));
    spread(&nodes.iter().collect::<Vec<_>>(), Duration::from_secs(20)).await;
    nodes
}

/// A parent whose Distributed Map (Standard children, `fields` added) gives each item
/// `{"i": …}` to a Task on `activity`.
async fn parent_machine(client: &aws_sdk_sfn::Client, activity: &str, fields: Value) -> String {
    let mut map = json!({
        "Type": "Map",
        "ItemsPath": "$.items",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": "Work",
            "States": {"Work": {"Type": "Task", "Resource": activity,
                                "Parameters": {"i.$": "$.i"}, "End": true}}
        },
        "End": true
    });
    for (k, v) in fields.as_object().cloned().unwrap_or_default() {
        map[k] = v;
    }
    let definition = json!({"StartAt": "Fan", "States": {"Fan": map}});
    create_machine(client, "fan", &definition).await
}

fn items() -> Value {
    let items: Vec<Value> = (0..CHILDREN).map(|i| json!({"i": i})).collect();
    json!({ "items": items })
}

/// What a worker answers for item `i`.
fn answer(i: u64) -> Value {
    json!({"i": i, "double": i * 2})
}

/// The Map Run `parent` started, once it exists.
async fn map_run_of(client: &aws_sdk_sfn::Client, parent: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let runs = client
            .list_map_runs()
            .execution_arn(parent)
            .send()
            .await
            .expect("ListMapRuns");
        if let Some(run) = runs.map_runs().first() {
            return run.map_run_arn().to_owned();
        }
        assert!(Instant::now() < deadline, "no Map Run for {parent}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The children of a Map Run, by item index (their input's `i`), with their status.
async fn children(client: &aws_sdk_sfn::Client, map_run: &str) -> BTreeMap<u64, (String, String)> {
    let listed = client
        .list_executions()
        .map_run_arn(map_run)
        .max_results(1000)
        .send()
        .await
        .expect("ListExecutions of the Map Run");
    let mut by_item = BTreeMap::new();
    for child in listed.executions() {
        let arn = child.execution_arn().to_owned();
        let d = client
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .expect("DescribeExecution of a child");
        let i = common::parse_json("child input", d.input())["i"]
            .as_u64()
            .expect("the child's item");
        by_item.insert(i, (arn, child.status().as_str().to_owned()));
    }
    by_item
}

/// Which of `nodes` runs each of `arns`: the node holding the shard the database keeps it in.
async fn owners(pg: &LocalPostgres, nodes: &[&Server], arns: &[String]) -> Vec<usize> {
    let mut held = Vec::new();
    for node in nodes {
        held.push(held_shards(node).await);
    }
    let mut owners = Vec::new();
    for arn in arns {
        let sql = format!("SELECT shard FROM executions WHERE arn = '{arn}'");
        let shard = pg.psql("postgres", &sql).expect("the child's shard");
        let shard: u64 = shard.trim().parse().expect("a shard number");
        let owner = held.iter().position(|h| h.contains(&shard));
        owners.push(owner.unwrap_or_else(|| panic!("no node holds shard {shard}: {held:?}")));
    }
    owners
}

/// Takes `n` activity tasks through `client`: item index → token.
async fn take_all(client: &aws_sdk_sfn::Client, activity: &str, n: u64) -> BTreeMap<u64, String> {
    let mut tokens = BTreeMap::new();
    while (tokens.len() as u64) < n {
        let (token, input) = take_task(client, activity, Duration::from_secs(20))
            .await
            .expect("a child's activity task");
        tokens.insert(input["i"].as_u64().expect("the item"), token);
    }
    tokens
}

/// Waits until every child of `map_run` is listed with a history of at least `events`.
async fn children_at(
    client: &aws_sdk_sfn::Client,
    map_run: &str,
    events: usize,
) -> BTreeMap<u64, (String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let kids = children(client, map_run).await;
        let mut ready = kids.len() as u64 == CHILDREN;
        for (arn, _) in kids.values() {
            ready = ready && history(client, arn).await.len() >= events;
        }
        if ready {
            return kids;
        }
        assert!(Instant::now() < deadline, "children not started: {kids:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn arns(kids: &BTreeMap<u64, (String, String)>) -> Vec<String> {
    kids.values().map(|(arn, _)| arn.clone()).collect()
}

/// DescribeMapRun on the wire: status and execution counts.
async fn map_run_counts(server: &Server, map_run: &str) -> (String, Value, Value) {
    let d = server
        .raw()
        .ok("DescribeMapRun", &json!({"mapRunArn": map_run}))
        .await;
    let status = d["status"].as_str().unwrap_or_default().to_owned();
    (
        status,
        d["executionCounts"].clone(),
        d["itemCounts"].clone(),
    )
}

/// Waits until the Map Run's status is no longer RUNNING; its status and counts.
async fn map_run_done(server: &Server, map_run: &str) -> (String, Value, Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let described = map_run_counts(server, map_run).await;
        if described.0 != "RUNNING" {
            return described;
        }
        assert!(Instant::now() < deadline, "Map Run still running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Counts as DescribeMapRun shows them (every field).
fn counts(succeeded: u64, failed: u64, aborted: u64, results_written: u64) -> Value {
    json!({"pending": 0, "running": 0, "succeeded": succeeded, "failed": failed,
           "timedOut": 0, "aborted": aborted, "total": succeeded + failed + aborted,
           "resultsWritten": results_written, "failuresNotRedrivable": 0, "pendingRedrive": 0})
}

/// Waits for the parent to succeed with every child's answer, in order, and for its Map Run
/// (asked of `server`) to succeed with every child counted; returns the Map Run's item counts.
async fn map_succeeded(
    client: &aws_sdk_sfn::Client,
    parent: &str,
    server: &Server,
    map_run: &str,
    logs: impl Fn() -> String,
) -> Value {
    let done = wait_done(client, parent, Duration::from_secs(30)).await;
    assert_eq!(done.status().as_str(), "SUCCEEDED", "{}", logs());
    let wanted: Vec<Value> = (0..CHILDREN).map(answer).collect();
    assert_eq!(common::parse_json("output", done.output()), json!(wanted));
    let (status, executions, item_counts) = map_run_done(server, map_run).await;
    assert_eq!(status, "SUCCEEDED");
    assert_eq!(executions, counts(CHILDREN, 0, 0, 0));
    item_counts
}

/// Every child answered its item, with the history of one task worked once.
async fn children_worked(
    client: &aws_sdk_sfn::Client,
    kids: &BTreeMap<u64, (String, String)>,
    logs: impl Fn() -> String,
) {
    for (i, (arn, _)) in kids {
        let d = wait_done(client, arn, Duration::from_secs(5)).await;
        assert_eq!(
            common::parse_json("output", d.output()),
            answer(*i),
            "{arn}"
        );
        let events = common::event_types(&history(client, arn).await);
        assert_eq!(events, crate::active_nodes::ONE_TASK, "{arn}\n{}", logs());
    }
}

/// A Map Run's 16 children, one per shard, run on all three nodes; each task answered through
/// another node; the Map Run's counts and the parent's output are exact, and each child's
/// history. Then a parent stopped through a node that does not run it has its children on
/// every node aborted, and its Map Run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn map_run_children_run_on_every_node() {
    if !on_postgres() {
        return;
    }
    let pg = LocalPostgres::start_or_panic();
    let [a, b, c] = three_nodes(&pg).await;
    let client_a = a.client();
    let activity = create_activity(&client_a, "item").await;
    let sm = parent_machine(&client_a, &activity, json!({})).await;
    let parent = start(&client_a, &sm, None, &items()).await;
    let map_run = map_run_of(&client_a, &parent).await;

    let tokens = take_all(&b.client(), &activity, CHILDREN).await;
    let kids = children_at(&client_a, &map_run, 4).await;
    let owners = owners(&pg, &[&a, &b, &c], &arns(&kids)).await;
    let on: BTreeSet<usize> = owners.iter().copied().collect();
    assert_eq!(
        on,
        BTreeSet::from([0, 1, 2]),
        "children on every node: {owners:?}"
    );
    for (n, node) in [&a, &b, &c].iter().enumerate() {
        let here = owners.iter().filter(|o| **o == n).count() as u64;
        let open = common::health(node).await["openExecutions"].as_u64();
        assert!(
            open >= Some(here),
            "node {n} runs its {here} children: {open:?}"
        );
    }
    for (i, token) in &tokens {
        succeed(&c.client(), token, &answer(*i)).await;
    }
    let logs = || [&a, &b, &c].map(|s| s.logs()).join("\n");
    let item_counts = map_succeeded(&client_a, &parent, &a, &map_run, logs).await;
    assert_eq!(item_counts, counts(CHILDREN, 0, 0, 0));
    children_worked(&client_a, &kids, logs).await;

    // Stopped through a node that does not run the parent (a does).
    let stopped = start(&client_a, &sm, None, &items()).await;
    let map_run = map_run_of(&client_a, &stopped).await;
    let kids = children_at(&client_a, &map_run, 3).await;
    let owners = self::owners(&pg, &[&a, &b, &c], &arns(&kids)).await;
    assert_eq!(owners.iter().copied().collect::<BTreeSet<_>>().len(), 3);
    b.client()
        .stop_execution()
        .execution_arn(&stopped)
        .send()
        .await
        .expect("StopExecution through b");
    let done = wait_done(&client_a, &stopped, Duration::from_secs(10)).await;
    assert_eq!(done.status().as_str(), "ABORTED");
    let (status, executions, _) = map_run_done(&a, &map_run).await;
    assert_eq!(status, "ABORTED");
    assert_eq!(executions, counts(0, 0, CHILDREN, 0));
    for (arn, _) in kids.values() {
        let d = wait_done(&client_a, arn, Duration::from_secs(10)).await;
        assert_eq!(d.status().as_str(), "ABORTED", "{arn}\n{}", logs());
        let events = common::event_types(&history(&client_a, arn).await);
        let wanted = [
            "ExecutionStarted",
            "TaskStateEntered",
            "ActivityScheduled",
            "ExecutionAborted",
        ];
        assert_eq!(events, wanted, "{arn}");
    }
}

/// A Map Run fails at its first failed child (no failure tolerated): the children still
/// running, on every node, are aborted. Redriving the parent through another node re-opens
/// the failed and aborted children where they are, on other nodes too; they finish and the
/// parent's output is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_map_run_redrive_reopens_children_on_their_nodes() {
    if !on_postgres() {
        return;
    }
    let pg = LocalPostgres::start_or_panic();
    let [a, b, c] = three_nodes(&pg).await;
    let logs = || [&a, &b, &c].map(|s| s.logs()).join("\n");
    let client_a = a.client();
    let activity = create_activity(&client_a, "item").await;
    let sm = parent_machine(&client_a, &activity, json!({})).await;
    let parent = start(&client_a, &sm, None, &items()).await;
    let map_run = map_run_of(&client_a, &parent).await;
    let tokens = take_all(&c.client(), &activity, CHILDREN).await;
    // The even items succeed; then item 1 fails, which fails the Map Run.
    for (i, token) in tokens.iter().filter(|(i, _)| *i % 2 == 0) {
        succeed(&b.client(), token, &answer(*i)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while map_run_counts(&a, &map_run).await.1["succeeded"] != json!(CHILDREN / 2) {
        assert!(
            Instant::now() < deadline,
            "even children not done\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    common::try_fail(&b.client(), &tokens[&1], "ItemFailed")
        .await
        .expect("SendTaskFailure");
    let failed = wait_done(&client_a, &parent, Duration::from_secs(20)).await;
    assert_eq!(failed.status().as_str(), "FAILED", "{}", logs());
    assert_eq!(
        failed.error(),
        Some("States.ExceedToleratedFailureThreshold")
    );
    let (status, executions, _) = map_run_done(&a, &map_run).await;
    assert_eq!(status, "FAILED");
    let aborted = CHILDREN / 2 - 1;
    assert_eq!(executions, counts(CHILDREN / 2, 1, aborted, 0));
    let kids = children(&client_a, &map_run).await;
    let mut unsuccessful = Vec::new();
    for (i, (arn, _)) in &kids {
        let d = wait_done(&client_a, arn, Duration::from_secs(10)).await;
        let wanted = match i {
            1 => "FAILED",
            i if i % 2 == 1 => "ABORTED",
            _ => "SUCCEEDED",
        };
        assert_eq!(d.status().as_str(), wanted, "item {i}: {arn}\n{}", logs());
        if i % 2 == 1 {
            unsuccessful.push(arn.clone());
        }
    }
    let owners = owners(&pg, &[&a, &b, &c], &unsuccessful).await;
    assert!(
        owners.iter().any(|o| *o != 0),
        "failed children on other nodes than the parent's: {owners:?}"
    );

    // Redriven through c; the failed and aborted children run again where they are.
    c.client()
        .redrive_execution()
        .execution_arn(&parent)
        .send()
        .await
        .expect("RedriveExecution through c");
    let again = take_all(&b.client(), &activity, CHILDREN / 2).await;
    let redriven: BTreeSet<u64> = again.keys().copied().collect();
    let odd: BTreeSet<u64> = (0..CHILDREN).filter(|i| i % 2 == 1).collect();
    assert_eq!(
        redriven, odd,
        "the unsuccessful children run again, once each"
    );
    for (i, token) in &again {
        succeed(&a.client(), token, &answer(*i)).await;
    }
    map_succeeded(&client_a, &parent, &a, &map_run, logs).await;
    for (i, (arn, _)) in &kids {
        let d = wait_done(&client_a, arn, Duration::from_secs(5)).await;
        assert_eq!(d.status().as_str(), "SUCCEEDED", "{arn}");
        assert_eq!(d.redrive_count(), Some(i32::from(i % 2 == 1)), "{arn}");
        let events = history(&client_a, arn).await;
        let problems = crate::redrive::redriven_history_problems(&events);
        assert!(problems.is_empty(), "{arn}: {problems:?}");
    }
}

/// A node running children of a Map Run (whose parent runs on another node) is killed with
/// `kill -9` mid-run: half of their tasks were answered before, the other half are answered
/// after through the survivors, which took its shards. The Map Run ends with the exact
/// output and counts, each child once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_run_leaves_its_children_to_the_others() {
    killed_mid_run(false).await;
}

/// The same, the node killed running the parent (and so the Map Run) too: the node that
/// takes the parent's shard resumes the Map Run from the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_parents_node_killed_mid_run_leaves_the_map_run_to_the_others() {
    killed_mid_run(true).await;
}

/// A node (`c`) running children of a Map Run killed mid-run; the parent started through
/// `c` when `parent_on_c`, else through `a`.
async fn killed_mid_run(parent_on_c: bool) {
    if !on_postgres() {
        return;
    }
    let pg = LocalPostgres::start_or_panic();
    let [a, b, mut c] = three_nodes(&pg).await;
    let client_a = a.client();
    let activity = create_activity(&client_a, "item").await;
    let sm = parent_machine(&client_a, &activity, json!({"MaxConcurrency": 0})).await;
    let through = if parent_on_c { c.client() } else { a.client() };
    let parent = start(&through, &sm, None, &items()).await;
    let parent_on = owners(&pg, &[&a, &b, &c], std::slice::from_ref(&parent)).await;
    assert_eq!(
        parent_on,
        [if parent_on_c { 2 } else { 0 }],
        "the parent's node"
    );
    let map_run = map_run_of(&client_a, &parent).await;
    let tokens = take_all(&b.client(), &activity, CHILDREN).await;
    let kids = children_at(&client_a, &map_run, 4).await;
    let owners = owners(&pg, &[&a, &b, &c], &arns(&kids)).await;
    assert!(owners.contains(&2), "c runs children: {owners:?}");
    // Let the workers' `TaskStarted` reach the owners before the kill.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (i, token) in tokens.iter().filter(|(i, _)| *i % 2 == 0) {
        succeed(&b.client(), token, &answer(*i)).await;
    }
    c.kill9();
    spread(&[&a, &b], Duration::from_secs(LEASE_TTL_SECONDS + 10)).await;
    for (i, token) in tokens.iter().filter(|(i, _)| *i % 2 == 1) {
        let through = [&a, &b][(*i as usize / 2) % 2];
        succeed(&through.client(), token, &answer(*i)).await;
    }
    let logs = || [&a, &b].map(|s| s.logs()).join("\n");
    let item_counts = map_succeeded(&client_a, &parent, &a, &map_run, logs).await;
    assert_eq!(item_counts, counts(CHILDREN, 0, 0, 0));
    children_worked(&client_a, &kids, logs).await;
}

/// A node dies (`child-end-before-notice`) right after committing the end of a Map Run's
/// child, before telling the node that runs the Map Run: that node's sweep finds the end in
/// the database, and the Map Run ends with the exact output and counts.
#[cfg(feature = "failpoints")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_child_end_is_found_by_the_sweep() {
    if !on_postgres() {
        return;
    }
    let pg = LocalPostgres::start_or_panic();
    let [a, b, mut c] = three_nodes(&pg).await;
    c.restart_with_failpoints(Some("child-end-before-notice=return"));
    spread(&[&a, &b, &c], Duration::from_secs(20)).await;
    let client_a = a.client();
    let activity = create_activity(&client_a, "item").await;
    let sm = parent_machine(&client_a, &activity, json!({})).await;
    let parent = start(&client_a, &sm, None, &items()).await;
    let map_run = map_run_of(&client_a, &parent).await;
    let mut tokens = take_all(&b.client(), &activity, CHILDREN).await;
    let kids = children_at(&client_a, &map_run, 4).await;
    let owners = owners(&pg, &[&a, &b, &c], &arns(&kids)).await;
    let on_c = owners.iter().position(|o| *o == 2).expect("a child on c") as u64;
    let token = tokens.remove(&on_c).expect("its token");
    succeed(&b.client(), &token, &answer(on_c)).await;
    assert!(
        c.wait_exit(Duration::from_secs(10)),
        "c dies at the failpoint"
    );
    let ended = wait_done(&client_a, &kids[&on_c].0, Duration::from_secs(10)).await;
    assert_eq!(
        ended.status().as_str(),
        "SUCCEEDED",
        "its end was committed"
    );
    spread(&[&a, &b], Duration::from_secs(LEASE_TTL_SECONDS + 10)).await;
    for (i, token) in &tokens {
        succeed(&a.client(), token, &answer(*i)).await;
    }
    let logs = || [&a, &b].map(|s| s.logs()).join("\n");
    map_succeeded(&client_a, &parent, &a, &map_run, logs).await;
}

/// A node joins two while a Map Run runs: it takes shards from both, among them the parent's
/// (so the Map Run moves with it) and some children's. Every child ends once, and the Map Run
/// with the exact output and counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_joining_mid_run_takes_the_map_run_over() {
    if !on_postgres() {
        return;
    }
    let pg = LocalPostgres::start_or_panic();
    let url = pg.url("postgres");
    let (a, b) = (active_node(&url, "a"), active_node(&url, "b"));
    let held = spread(&[&a, &b], Duration::from_secs(20)).await;
    let client_a = a.client();
    let activity = create_activity(&client_a, "item").await;
    let sm = parent_machine(&client_a, &activity, json!({})).await;
    // a places its executions on its shards in turn: the parent goes on the highest, one
    // that a gives up when a third node joins.
    let pass = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let pass = create_machine(&client_a, "pass", &pass).await;
    for i in 1..held[0].len() {
        start(&client_a, &pass, None, &json!({"i": i})).await;
    }
    let parent = start(&client_a, &sm, None, &items()).await;
    let map_run = map_run_of(&client_a, &parent).await;
    let tokens = take_all(&b.client(), &activity, CHILDREN).await;
    let kids = children_at(&client_a, &map_run, 4).await;

    let c = active_node(&url, "c");
    spread(&[&a, &b, &c], Duration::from_secs(20)).await;
    let parent_on = owners(&pg, &[&a, &b, &c], std::slice::from_ref(&parent)).await;
    assert_eq!(parent_on, [2], "the parent moved to c");
    let on = owners(&pg, &[&a, &b, &c], &arns(&kids)).await;
    assert!(on.contains(&2), "children moved to c: {on:?}");
    for (i, token) in &tokens {
        succeed(&[&a, &b, &c][*i as usize % 3].client(), token, &answer(*i)).await;
    }
    let logs = || [&a, &b, &c].map(|s| s.logs()).join("\n");
    map_succeeded(&client_a, &parent, &c, &map_run, logs).await;
    children_worked(&client_a, &kids, logs).await;
}
