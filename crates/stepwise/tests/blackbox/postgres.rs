//! Several nodes on one PostgreSQL database: a standby takes over from a node killed with
//! `kill -9` within the lease TTL (+ 2 s) and finishes its executions, and a node paused past
//! its lease (SIGSTOP) is fenced off when it resumes. And TLS to the database (`sslmode`).
//!
//! By default one node at a time holds the lease and serves; the others stand by. With
//! `--active-nodes` (experimental) every node serves and runs the executions of the shards it
//! holds (see docs/deployment.md): the takeover, with the mixed load in flight, and
//! the fencing are tested in that mode too. The rest of the PostgreSQL coverage is the other
//! suites run with `STEPWISE_TEST_STORE=postgres` (scripts/test).

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    create_activity, create_machine, history, history_problems, start, succeed, wait_done, Options,
    Server, StoreKind,
};
use serde_json::{json, Value};
use store::postgres::local::LocalPostgres;

pub(crate) const LEASE_TTL_SECONDS: u64 = 2;
const EACH: usize = 10;

pub(crate) fn node(url: &str, id: &str) -> (Options, Vec<String>) {
    node_with_ttl(url, id, LEASE_TTL_SECONDS)
}

fn node_with_ttl(url: &str, id: &str, ttl_seconds: u64) -> (Options, Vec<String>) {
    let options = Options {
        store: StoreKind::Postgres,
        wait_time_scale: 1.0,
        postgres_url: Some(url.to_owned()),
        ..Options::default()
    };
    let ttl = format!("{ttl_seconds}s");
    let args = ["--node-id", id, "--lease-ttl", &ttl];
    (options, args.iter().map(|a| (*a).to_owned()).collect())
}

pub(crate) fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Pass → Wait(3 s) → Pass; a 20-state Pass chain; one activity Task.
pub(crate) async fn machines(client: &aws_sdk_sfn::Client) -> (String, String, String, String) {
    let wait = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 3, "Next": "B"},
        "B": {"Type": "Pass", "End": true}}});
    let mut states = serde_json::Map::new();
    for i in 0..20 {
        let mut s = json!({"Type": "Pass", "Result": i, "ResultPath": "$.step"});
        match i {
            19 => s["End"] = json!(true),
            _ => s["Next"] = json!(format!("S{}", i + 1)),
        }
        states.insert(format!("S{i}"), s);
    }
    let chain = json!({"StartAt": "S0", "States": states});
    let activity = create_activity(client, "work").await;
    let task = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": activity, "End": true}}});
    (
        create_machine(client, "wait", &wait).await,
        create_machine(client, "chain", &chain).await,
        create_machine(client, "task", &task).await,
        activity,
    )
}

async fn start_each(client: &aws_sdk_sfn::Client, machines: &[&str]) -> Vec<String> {
    let mut arns = Vec::new();
    for sm in machines {
        for i in 0..EACH {
            arns.push(start(client, sm, None, &json!({"i": i})).await);
        }
    }
    arns
}

/// Takes one activity task (long poll), if one comes within `within`.
async fn take(client: &aws_sdk_sfn::Client, activity: &str, within: Duration) -> Option<String> {
    take_task(client, activity, within)
        .await
        .map(|(token, _)| token)
}

/// Takes one activity task (long poll), if one comes within `within`: its token and input.
pub(crate) async fn take_task(
    client: &aws_sdk_sfn::Client,
    activity: &str,
    within: Duration,
) -> Option<(String, Value)> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        let task = client
            .get_activity_task()
            .activity_arn(activity)
            .send()
            .await
            .ok()?;
        if let Some(token) = task.task_token().filter(|t| !t.is_empty()) {
            let input = common::parse_json("the task's input", task.input());
            return Some((token.to_owned(), input));
        }
    }
    None
}

/// Every execution succeeded, with a contiguous history (no lost or duplicated event).
async fn check_all(client: &aws_sdk_sfn::Client, arns: &[String], server: &Server) {
    let mut problems = Vec::new();
    for arn in arns {
        let d = wait_done(client, arn, Duration::from_secs(30)).await;
        if d.status().as_str() != "SUCCEEDED" {
            problems.push(format!("{arn}: {:?} {:?}", d.status(), d.cause()));
        }
        for p in history_problems(&history(client, arn).await) {
            problems.push(format!("{arn}: {p}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}\n{}", server.logs());
}

fn signal(server: &Server, sig: &str) {
    let pid = server.pid().expect("a running server").to_string();
    let ok = Command::new("kill")
        .args([sig, &pid])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standby_takes_over_a_killed_node() {
    let pg = LocalPostgres::start_or_panic();
    let url = pg.url("postgres");
    let (options, a_args) = node(&url, "a");
    let mut a = Server::start_with_args(options, &args(&a_args));
    let client_a = a.client();
    let a_health = common::health(&a).await;
    assert_eq!(
        (&a_health["status"], &a_health["nodeId"], &a_health["store"]),
        (&json!("ready"), &json!("a"), &json!("postgres")),
        "{a_health}"
    );
    let (wait, chain, task, activity) = machines(&client_a).await;
    let arns = start_each(&client_a, &[&wait, &chain, &task]).await;
    // Workers took some tasks from the node that is about to die.
    let mut early = Vec::new();
    for _ in 0..3 {
        early.push(
            take(&client_a, &activity, Duration::from_secs(10))
                .await
                .expect("a task from node a"),
        );
    }

    let (options, b_args) = node(&url, "b");
    let mut b = Server::start_standby(options, &args(&b_args));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        b.logs().contains("standing by"),
        "b waits for the lease:\n{}",
        b.logs()
    );
    a.kill9();
    let killed = Instant::now();
    b.wait_until_ready(Duration::from_secs(LEASE_TTL_SECONDS + 10));
    let takeover = killed.elapsed();
    eprintln!("takeover after kill -9: {takeover:?}");
    assert!(
        takeover <= Duration::from_secs(LEASE_TTL_SECONDS + 2),
        "takeover took {takeover:?}\n{}",
        b.logs()
    );

    let b_health = common::health(&b).await;
    assert_eq!(b_health["nodeId"], "b", "{b_health}");
    let epochs = [&a_health, &b_health].map(|h| h["lease"]["epoch"].as_i64());
    assert!(
        matches!(epochs, [Some(a), Some(b)] if b > a),
        "the new owner's lease has a later epoch: {epochs:?}"
    );

    let client_b = b.client();
    for token in &early {
        succeed(&client_b, token, &json!({"by": "an early worker"})).await;
    }
    // The rest of the tasks, from the new node; the early ones may be offered again (the
    // new owner performs again what was in flight): answering them twice is refused, not lost.
    let answer = |token: String| {
        let client = client_b.clone();
        async move {
            let _ = common::try_succeed(&client, &token, &json!({"by": "b"})).await;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut open = 0;
        for arn in &arns {
            let d = client_b
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .expect("DescribeExecution on b");
            open += usize::from(d.status().as_str() == "RUNNING");
        }
        if open == 0 {
            break;
        }
        if let Some(token) = take(&client_b, &activity, Duration::from_secs(1)).await {
            answer(token).await;
        }
    }
    check_all(&client_b, &arns, &b).await;
    let outputs: Vec<Value> = {
        let mut v = Vec::new();
        for arn in &arns[2 * EACH..] {
            let d = wait_done(&client_b, arn, Duration::from_secs(1)).await;
            v.push(common::parse_json("output", d.output()));
        }
        v
    };
    let early_done = outputs
        .iter()
        .filter(|o| o["by"] == "an early worker")
        .count();
    assert_eq!(
        early_done,
        early.len(),
        "tokens of the dead node complete their tasks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_paused_past_its_lease_is_fenced() {
    let pg = LocalPostgres::start_or_panic();
    let url = pg.url("postgres");
    let (options, a_args) = node(&url, "a");
    let mut a = Server::start_with_args(options, &args(&a_args));
    let client_a = a.client();
    let (wait, _, _, _) = machines(&client_a).await;
    let arns = start_each(&client_a, &[&wait]).await;

    signal(&a, "-STOP");
    tokio::time::sleep(Duration::from_secs(LEASE_TTL_SECONDS + 1)).await;
    let (options, b_args) = node(&url, "b");
    let mut b = Server::start_standby(options, &args(&b_args));
    b.wait_until_ready(Duration::from_secs(LEASE_TTL_SECONDS + 10));
    // a wakes up with its Wait timers due: whatever it tries to commit is refused, and it
    // stops once it learns it lost the lease.
    signal(&a, "-CONT");
    assert!(
        a.wait_exit(Duration::from_secs(LEASE_TTL_SECONDS + 5)),
        "the paused node stops after resuming:\n{}",
        a.logs()
    );
    assert!(
        a.logs().contains("lost its lease"),
        "the paused node says why it stopped:\n{}",
        a.logs()
    );
    check_all(&b.client(), &arns, &b).await;
}

/// The TTL of the takeover tests that measure from the lease's expiry: long enough that a
/// look every quarter (or third) of it could come seconds late.
const LONG_TTL: u64 = 8;

/// Seconds until the latest of these leases and heartbeats runs out (`sql` selects their
/// `expires_at`), on the database's clock.
fn expires_in(pg: &LocalPostgres, sql: &str) -> f64 {
    let query = format!("SELECT extract(epoch FROM max(expires_at) - now()) FROM ({sql}) e");
    let out = pg.psql("postgres", &query).expect("psql");
    out.parse()
        .unwrap_or_else(|e| panic!("{query}: {out:?}: {e}"))
}

/// A standby takes over as the lease of a node killed with `kill -9` runs out, not a round of
/// its looks later: within 1.2 s of the expiry, with an 8 s TTL. It starts after the kill,
/// when the lease has 2k + 0.6 s left: a standby that looked every quarter of the TTL (2 s)
/// from its first look, 0.05–0.5 s after its start, would come 1.45–1.9 s late.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_takes_over_as_the_lease_runs_out() {
    let pg = LocalPostgres::start_or_panic();
    let url = pg.url("postgres");
    let (options, a_args) = node_with_ttl(&url, "a", LONG_TTL);
    let mut a = Server::start_with_args(options, &args(&a_args));
    let left = expires_in(&pg, "SELECT expires_at FROM leases WHERE owner = 'a'");
    a.kill9();
    let killed = Instant::now();
    let start_at = if left >= 6.6 { 6.6 } else { 4.6 };
    tokio::time::sleep(Duration::from_secs_f64((left - start_at).max(0.0))).await;
    let (options, b_args) = node_with_ttl(&url, "b", LONG_TTL);
    let mut b = Server::start_standby(options, &args(&b_args));
    b.wait_until_ready(Duration::from_secs(LONG_TTL + 10));
    let late = killed.elapsed().as_secs_f64() - left;
    eprintln!("standby ready {late:.3} s after the lease expired ({left:.3} s after the kill)");
    assert!(b.logs().contains("standing by"), "{}", b.logs());
    assert!(late < 1.2, "{late:.3} s late\n{}", b.logs());
}

/// Two active nodes take the shards of a third killed with `kill -9` as its heartbeat and
/// leases run out, not a round (up to 2.7 s) later: within 1.5 s of the expiry, with an 8 s
/// TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn active_nodes_take_a_dead_nodes_shards_as_its_leases_run_out() {
    let pg = LocalPostgres::start_or_panic();
    let url = pg.url("postgres");
    let [a, b, mut c] = ["a", "b", "c"].map(|id| {
        let (options, mut node_args) = node_with_ttl(&url, id, LONG_TTL);
        node_args.push("--active-nodes".into());
        Server::start_with_args(options, &args(&node_args))
    });
    spread(&[&a, &b, &c], Duration::from_secs(4 * LONG_TTL)).await;
    let left = expires_in(
        &pg,
        "SELECT expires_at FROM leases WHERE owner = 'c'
         UNION ALL SELECT expires_at FROM nodes WHERE node_id = 'c'",
    );
    c.kill9();
    let killed = Instant::now();
    spread(&[&a, &b], Duration::from_secs(LONG_TTL + 10)).await;
    let late = killed.elapsed().as_secs_f64() - left;
    eprintln!("shards held by a and b {late:.3} s after c's expired ({left:.3} s after the kill)");
    assert!(late < 1.5, "{late:.3} s late\n{}\n{}", a.logs(), b.logs());
}

/// SIGTERM stops a node cleanly and hands its lease on: the standby takes over at once, not
/// after the TTL, and finishes what the stopped node was running.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_node_hands_its_lease_on_at_once() {
    const TTL: u64 = 60;
    let pg = LocalPostgres::start_or_panic();
    let url = pg.url("postgres");
    let (options, a_args) = node_with_ttl(&url, "a", TTL);
    let mut a = Server::start_with_args(options, &args(&a_args));
    let client_a = a.client();
    let (wait, chain, _, _) = machines(&client_a).await;
    let arns = start_each(&client_a, &[&wait, &chain]).await;
    let (options, b_args) = node_with_ttl(&url, "b", TTL);
    let mut b = Server::start_standby(options, &args(&b_args));

    let stopped = Instant::now();
    assert!(
        a.terminate(Duration::from_secs(20)),
        "a did not exit successfully after SIGTERM\n{}",
        a.logs()
    );
    b.wait_until_ready(Duration::from_secs(TTL));
    let takeover = stopped.elapsed();
    eprintln!("takeover after SIGTERM: {takeover:?}");
    assert!(
        takeover < Duration::from_secs(TTL / 4),
        "takeover took {takeover:?} with a {TTL} s TTL\n{}\n{}",
        a.logs(),
        b.logs()
    );
    assert!(a.logs().contains("lease released"), "{}", a.logs());
    check_all(&b.client(), &arns, &b).await;
}

/// The database goes away for a few seconds (stopped, its connections closed) and comes back:
/// the node keeps its lease (shorter than the TTL), answers meanwhile with errors and never
/// crashes, and then finishes every execution: Waits that fell due meanwhile, tasks taken
/// before (their tokens still complete them) and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_going_away_for_a_while_loses_nothing() {
    let pg = LocalPostgres::start_or_panic();
    let url = pg.url("postgres");
    let (options, a_args) = node_with_ttl(&url, "a", 10);
    let mut a = Server::start_with_args(options, &args(&a_args));
    let client = a.client();
    let (wait, chain, task, activity) = machines(&client).await;
    let arns = start_each(&client, &[&wait, &chain, &task]).await;
    let mut early = Vec::new();
    for _ in 0..3 {
        let token = take(&client, &activity, Duration::from_secs(10)).await;
        early.push(token.expect("a task before the database goes away"));
    }

    pg.stop().expect("stopping PostgreSQL");
    let failed = client
        .start_execution()
        .state_machine_arn(&chain)
        .input("{}")
        .send()
        .await;
    assert!(failed.is_err(), "no database, no start: {failed:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.start_again().expect("starting PostgreSQL again");
    assert!(a.is_running(), "the node survived the outage\n{}", a.logs());

    let deadline = Instant::now() + Duration::from_secs(30);
    answer_while_failing(&client, &early, deadline, || a.logs()).await;
    let mut answered = early.len();
    while answered < EACH {
        assert!(
            Instant::now() < deadline,
            "{answered} tasks answered\n{}",
            a.logs()
        );
        if let Some(token) = take(&client, &activity, Duration::from_secs(1)).await {
            succeed(&client, &token, &json!({"by": "later"})).await;
            answered += 1;
        }
    }
    check_all(&client, &arns, &a).await;
    let after = start(&client, &chain, None, &json!({})).await;
    check_all(&client, &[after], &a).await;
    let health = common::health(&a).await;
    assert_eq!(health["status"], "ready", "{health}");
}

/// Answers each of `tokens`, calling again while the call fails (until the node has connected
/// to the database again), as a worker would, up to `deadline`.
pub(crate) async fn answer_while_failing(
    client: &aws_sdk_sfn::Client,
    tokens: &[String],
    deadline: Instant,
    logs: impl Fn() -> String,
) {
    for token in tokens {
        while common::try_succeed(client, token, &json!({"by": "early"}))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "SendTaskSuccess\n{}", logs());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A CA, and a server certificate it signed for `host`: `(ca, cert, key)` in PEM.
fn certificates(host: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "stepwise test CA");
    let ca_key = KeyPair::generate().expect("a CA key");
    let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().expect("a server key");
    let cert = CertificateParams::new(vec![host.to_owned()])
        .expect("server certificate parameters")
        .signed_by(&key, &issuer)
        .expect("the server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// TLS to the database, as libpq's `sslmode` and `sslrootcert` ask: on a PostgreSQL that
/// takes TLS connections only, nodes connecting with `require` (no check of the certificate),
/// `verify-ca` (the CA, any host name) and `verify-full` (the CA and the host name) run
/// executions; `disable` is refused by the server, and `verify-full` with a host name the
/// certificate does not name, or without the CA among the trusted roots, stops the node at
/// startup with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_database_over_tls() {
    const HOST: &str = "db.test";
    let (ca, cert, key) = certificates(HOST);
    let pg = LocalPostgres::start_tls(&cert, &key)
        .unwrap_or_else(|e| panic!("cannot start PostgreSQL with TLS: {e}"));
    let dir = tempfile::tempdir().expect("a directory");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).expect("writing the CA");
    let ca_file = ca_file.to_str().expect("a UTF-8 path").to_owned();
    let port = pg.port();
    // The certificate names `db.test`, which resolves nowhere: `hostaddr` says where it is.
    let url = |host: &str, database: &str, tls: &str| {
        pg.create_database(database)
            .unwrap_or_else(|e| panic!("createdb {database}: {e}"));
        format!("postgres://stepwise@{host}:{port}/{database}?hostaddr=127.0.0.1&{tls}")
    };
    let with_ca = |mode: &str| format!("sslmode={mode}&sslrootcert={ca_file}");

    let serving = [
        ("require", url("127.0.0.1", "require", "sslmode=require")),
        (
            "verify_ca",
            url("other.test", "verify_ca", &with_ca("verify-ca")),
        ),
        (
            "verify_full",
            url(HOST, "verify_full", &with_ca("verify-full")),
        ),
    ];
    let pass = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    for (name, url) in &serving {
        let (options, node_args) = node(url, name);
        let mut server = Server::start_with_args(options, &args(&node_args));
        let client = server.client();
        let sm = create_machine(&client, name, &pass).await;
        let arn = start(&client, &sm, None, &json!({"over": name})).await;
        let done = wait_done(&client, &arn, Duration::from_secs(30)).await;
        assert_eq!(
            done.status().as_str(),
            "SUCCEEDED",
            "{name}\n{}",
            server.logs()
        );
        assert!(
            server.terminate(Duration::from_secs(20)),
            "{name}\n{}",
            server.logs()
        );
    }

    let refused = [
        (
            "disable",
            url("127.0.0.1", "disable", "sslmode=disable"),
            "no encryption",
        ),
        (
            "wrong_host",
            url("wrong.test", "wrong_host", &with_ca("verify-full")),
            "not valid for name",
        ),
        (
            "system_roots",
            url(HOST, "system_roots", "sslmode=verify-full"),
            "UnknownIssuer",
        ),
    ];
    for (name, url, reason) in &refused {
        let (options, node_args) = node(url, name);
        let mut server = Server::start_standby(options, &args(&node_args));
        assert!(
            server.wait_exit(Duration::from_secs(20)),
            "{name}: the node stops at startup\n{}",
            server.logs()
        );
        let logs = server.logs();
        assert!(
            logs.contains("connecting to PostgreSQL") && logs.contains(reason),
            "{name}: the node says why it stopped ({reason}):\n{logs}"
        );
        assert!(!logs.contains("panicked"), "{name}: {logs}");
    }
}

/// A node of several active ones (`--active-nodes`), serving.
pub(crate) fn active_node(url: &str, id: &str) -> Server {
    let (options, mut node_args) = node(url, id);
    node_args.push("--active-nodes".into());
    Server::start_with_args(options, &args(&node_args))
}

/// The shards each node reports in `/health` (`--active-nodes`).
pub(crate) async fn held_shards(server: &Server) -> Vec<u64> {
    let health = common::health(server).await;
    health["shards"]
        .as_array()
        .map(|held| held.iter().filter_map(|s| s["shard"].as_u64()).collect())
        .unwrap_or_default()
}

/// Waits until `nodes` hold every shard between them, each its fair share (rounded down),
/// none twice; returns what each holds.
pub(crate) async fn spread(nodes: &[&Server], within: Duration) -> Vec<Vec<u64>> {
    let deadline = Instant::now() + within;
    loop {
        let mut held = Vec::new();
        for node in nodes {
            held.push(held_shards(node).await);
        }
        let mut all: Vec<u64> = held.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        let count: usize = held.iter().map(Vec::len).sum();
        let fair = SHARDS / nodes.len();
        if all.len() == SHARDS && count == SHARDS && held.iter().all(|h| h.len() >= fair) {
            return held;
        }
        assert!(Instant::now() < deadline, "shards not spread: {held:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shards of a database (fixed by its migrations).
const SHARDS: usize = 16;

/// Three active nodes on one database share the shards; executions started through each run
/// there; activity tasks taken through another node, answered through a third, and executions
/// stopped or redriven through a node that does not run them reach the one that does (the
/// inbox); one node killed with `kill -9` mid-run (the mixed load in flight, see
/// `kill_mid_run`) has its shards taken by the two others within the TTL (+ 2 s), which
/// finish its executions exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn active_nodes_share_shards_and_take_over_a_killed_one() {
    let pg = LocalPostgres::start_or_panic();
    let url = pg.url("postgres");
    let active = |id: &str| active_node(&url, id);
    let (a, b, mut c) = (active("a"), active("b"), active("c"));
    let held = spread(&[&a, &b, &c], Duration::from_secs(20)).await;
    eprintln!("shards of a, b, c: {held:?}");

    let client_a = a.client();
    let (wait, chain, task, activity) = machines(&client_a).await;

    // Tasks of executions that run on a, taken by workers polling b, answered through c.
    let tasks = start_each(&client_a, &[&task]).await;
    for n in 0..EACH {
        let token = take(&b.client(), &activity, Duration::from_secs(10))
            .await
            .expect("a task through node b");
        succeed(&c.client(), &token, &json!({"answered": n})).await;
    }
    check_all(&client_a, &tasks, &a).await;
    let mut answered = Vec::new();
    for arn in &tasks {
        let d = wait_done(&c.client(), arn, Duration::from_secs(1)).await;
        answered.push(common::parse_json("output", d.output())["answered"].as_u64());
    }
    answered.sort_unstable();
    let wanted: Vec<Option<u64>> = (0..EACH as u64).map(Some).collect();
    assert_eq!(answered, wanted, "every answer reached its execution once");

    // Executions that run on b, stopped through c.
    let long =
        json!({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": true}}});
    let long = create_machine(&client_a, "long", &long).await;
    let client_b = b.client();
    let mut waiting = Vec::new();
    for i in 0..3 {
        waiting.push(start(&client_b, &long, None, &json!({"i": i})).await);
    }
    for arn in &waiting {
        c.client()
            .stop_execution()
            .execution_arn(arn)
            .cause("stopped through another node")
            .send()
            .await
            .expect("StopExecution through c");
    }
    for arn in &waiting {
        let d = wait_done(&client_a, arn, Duration::from_secs(10)).await;
        assert_eq!(d.status().as_str(), "ABORTED", "{arn}\n{}", b.logs());
        assert_eq!(d.cause(), Some("stopped through another node"));
    }

    // A task failed through c, its execution (on b) redriven through a and c with one client
    // token, its new attempt taken through c and answered through a.
    let failing = start(&client_b, &task, None, &json!({"redrive": true})).await;
    fail_task([&a, &c], &activity, &failing, &b).await;
    let mut dates = Vec::new();
    for node in [&a, &c] {
        let redriven = node
            .client()
            .redrive_execution()
            .execution_arn(&failing)
            .client_token("once")
            .send()
            .await
            .expect("RedriveExecution through a node that does not run it");
        dates.push(redriven.redrive_date().secs());
    }
    assert_eq!(dates[0], dates[1], "the client token's first answer");
    let token = take(&c.client(), &activity, Duration::from_secs(10))
        .await
        .expect("the redriven task through node c");
    succeed(&client_a, &token, &json!({"redriven": true})).await;
    let done = wait_done(&client_a, &failing, Duration::from_secs(10)).await;
    assert_eq!(done.status().as_str(), "SUCCEEDED", "{}", b.logs());
    let events = common::event_types(&history(&client_a, &failing).await);
    let wanted = [STARTED, FAILED_ONCE, ACTIVITY, SUCCEEDED].concat();
    assert_eq!(events, wanted, "one redrive, each task event once");
    assert_eq!(done.redrive_count(), Some(1), "redriven once");
    assert_eq!(
        common::parse_json("output", done.output()),
        json!({"redriven": true})
    );

    kill_mid_run(&a, &b, &mut c, &client_a, [&wait, &chain, &task, &activity]).await;
}

/// Iterations of the Pass loop (`Inc` and `Check`, two states each).
const LOOPS: u64 = 400;
/// `.waitForTaskToken` executions and inline Maps in flight on the node killed.
const CALLBACKS: usize = 3;
const MAPS: usize = 2;
/// The items of each Map: Waits of 2 s, two at a time.
const ITEMS: u64 = 4;
/// Activity tasks of the node killed that workers on the other nodes take before the kill.
const EARLY: usize = 4;

/// The rest of the mixed load, beside `machines`: a Pass loop (a long chain, in
/// flight when its node dies), a callback (`states:startExecution.waitForTaskToken` of a
/// child whose input is the token), an inline Map of Waits and an activity task that fails
/// once (then redriven).
struct MoreMachines {
    looping: String,
    callback: String,
    child: String,
    map: String,
    flaky: String,
    flaky_activity: String,
}

impl MoreMachines {
    async fn create(client: &aws_sdk_sfn::Client) -> MoreMachines {
        let looping = json!({"StartAt": "Init", "States": {
            "Init": {"Type": "Pass", "Result": 0, "ResultPath": "$.n", "Next": "Inc"},
            "Inc": {"Type": "Pass",
                    "Parameters": {"i.$": "$.i", "n.$": "States.MathAdd($.n, 1)"}, "Next": "Check"},
            "Check": {"Type": "Choice",
                      "Choices": [{"Variable": "$.n", "NumericLessThan": LOOPS, "Next": "Inc"}],
                      "Default": "Done"},
            "Done": {"Type": "Succeed"}}});
        let child =
            json!({"StartAt": "Nothing", "States": {"Nothing": {"Type": "Pass", "End": true}}});
        let child = create_machine(client, "child", &child).await;
        let callback = json!({"StartAt": "Call", "States": {"Call": {"Type": "Task",
            "Resource": "arn:aws:states:::states:startExecution.waitForTaskToken",
            "Parameters": {"StateMachineArn": child, "Input": {"token.$": "$$.Task.Token"}},
            "End": true}}});
        let map = json!({"StartAt": "M", "States": {"M": {"Type": "Map", "ItemsPath": "$.items",
            "MaxConcurrency": 2,
            "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "W", "States": {
                "W": {"Type": "Wait", "Seconds": 2, "Next": "P"},
                "P": {"Type": "Pass", "Parameters": {"item.$": "$"}, "End": true}}},
            "End": true}}});
        let flaky_activity = create_activity(client, "flaky").await;
        let flaky = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": flaky_activity, "End": true}}});
        MoreMachines {
            looping: create_machine(client, "loop", &looping).await,
            callback: create_machine(client, "callback", &callback).await,
            child,
            map: create_machine(client, "map", &map).await,
            flaky: create_machine(client, "flaky", &flaky).await,
            flaky_activity,
        }
    }
}

/// What an execution must end with: its output and its history's event types, in order, or
/// in any order where lanes interleave (a Map's iterations).
struct Expected {
    arn: String,
    output: Value,
    events: Vec<String>,
    ordered: bool,
}

impl Expected {
    fn new(arn: &str, output: Value, events: &[&[&str]]) -> Expected {
        Expected {
            arn: arn.to_owned(),
            output,
            events: events.concat().iter().map(|t| (*t).to_owned()).collect(),
            ordered: true,
        }
    }

    fn interleaved(arn: &str, output: Value, events: &[&[&str]]) -> Expected {
        Expected {
            ordered: false,
            ..Expected::new(arn, output, events)
        }
    }
}

const STARTED: &[&str] = &["ExecutionStarted"];
const SUCCEEDED: &[&str] = &["ExecutionSucceeded"];
const PASS: &[&str] = &["PassStateEntered", "PassStateExited"];
const WAIT: &[&str] = &["WaitStateEntered", "WaitStateExited"];
const ACTIVITY: &[&str] = &[
    "TaskStateEntered",
    "ActivityScheduled",
    "ActivityStarted",
    "ActivitySucceeded",
    "TaskStateExited",
];

/// An activity task that failed, and its execution redriven.
const FAILED_ONCE: &[&str] = &[
    "TaskStateEntered",
    "ActivityScheduled",
    "ActivityStarted",
    "ActivityFailed",
    "ExecutionFailed",
    "ExecutionRedriven",
];

/// Takes the task of `arn` (the only one of `activity`) through `take_via`, fails it through
/// `fail_via`, and waits until `arn`, run by `owner`, failed.
async fn fail_task([take_via, fail_via]: [&Server; 2], activity: &str, arn: &str, owner: &Server) {
    let token = take(&take_via.client(), activity, Duration::from_secs(10))
        .await
        .expect("a task through another node than its execution's");
    fail_via
        .client()
        .send_task_failure()
        .task_token(token)
        .error("Flaky")
        .send()
        .await
        .expect("SendTaskFailure through a third node");
    let failed = wait_done(&fail_via.client(), arn, Duration::from_secs(10)).await;
    assert_eq!(failed.status().as_str(), "FAILED", "{}", owner.logs());
}

/// `machines`' Pass → Wait → Pass.
fn waited(arn: &str, i: usize) -> Expected {
    Expected::new(
        arn,
        json!({"i": i}),
        &[STARTED, PASS, WAIT, PASS, SUCCEEDED],
    )
}

/// `machines`' 20 Pass states.
fn chained(arn: &str, i: usize) -> Expected {
    let mut events = vec![STARTED];
    events.extend([PASS; 20]);
    events.push(SUCCEEDED);
    Expected::new(arn, json!({"i": i, "step": 19}), &events)
}

/// `MoreMachines::looping`.
fn looped(arn: &str, i: usize) -> Expected {
    const ROUND: &[&str] = &[
        "PassStateEntered",
        "PassStateExited",
        "ChoiceStateEntered",
        "ChoiceStateExited",
    ];
    let mut events = vec![STARTED, PASS];
    events.extend(std::iter::repeat_n(
        ROUND,
        usize::try_from(LOOPS).unwrap_or(0),
    ));
    events.extend([&["SucceedStateEntered", "SucceedStateExited"], SUCCEEDED]);
    Expected::new(arn, json!({"i": i, "n": LOOPS}), &events)
}

/// Waits up to 10 s for the task token that the `.waitForTaskToken` execution `arn` passed
/// to its child, once the child started (`TaskStarted`).
async fn callback_token(client: &aws_sdk_sfn::Client, arn: &str) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let events = history(client, arn).await;
        let started = events.iter().any(|e| e.r#type().as_str() == "TaskStarted");
        let token = events
            .iter()
            .find_map(|e| e.task_scheduled_event_details())
            .map(|d| common::parse_json("TaskScheduled parameters", Some(d.parameters())))
            .and_then(|p| p["Input"]["token"].as_str().map(str::to_owned));
        if let (true, Some(token)) = (started, token) {
            return token;
        }
        assert!(
            Instant::now() < until,
            "{arn}: no child started with the token: {:?}",
            common::event_types(&events)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Starts Pass loops through `client`, one after the other, until the node stops answering
/// (it is killed meanwhile); returns the executions it acknowledged. Once `armed`, it tells
/// `running` when the loop it just started is still running (a moment to kill the node).
fn keep_starting(
    client: aws_sdk_sfn::Client,
    looping: String,
    armed: tokio::sync::watch::Receiver<bool>,
    running: tokio::sync::oneshot::Sender<()>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut started = Vec::new();
        let mut running = Some(running);
        loop {
            let input = json!({"i": started.len()});
            let sent = client
                .start_execution()
                .state_machine_arn(&looping)
                .input(input.to_string())
                .send()
                .await;
            let arn = match sent {
                Ok(out) => out.execution_arn().to_owned(),
                Err(_) => return started,
            };
            started.push(arn.clone());
            if !*armed.borrow() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let d = client.describe_execution().execution_arn(&arn).send().await;
            if d.is_ok_and(|d| d.status().as_str() == "RUNNING") {
                running.take().map(|r| r.send(()));
            }
        }
    })
}

/// A worker polling `activity` through `client` that answers each task with
/// `{"by": "worker", "i": its input's i}`, until aborted.
fn worker(client: aws_sdk_sfn::Client, activity: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match take_task(&client, &activity, Duration::from_secs(1)).await {
                Some((token, input)) => {
                    let output = json!({"by": "worker", "i": input["i"]});
                    let _ = common::try_succeed(&client, &token, &output).await;
                }
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// Every execution ended as expected: succeeded with its output, with a contiguous history
/// (no lost or duplicated event) of the expected events.
async fn check_each(client: &aws_sdk_sfn::Client, expected: &[Expected], servers: &[&Server]) {
    let mut problems = Vec::new();
    for want in expected {
        let arn = &want.arn;
        let d = wait_done(client, arn, Duration::from_secs(30)).await;
        if d.status().as_str() != "SUCCEEDED" {
            problems.push(format!("{arn}: {:?} {:?}", d.status(), d.cause()));
            continue;
        }
        let output = common::parse_json("output", d.output());
        if output != want.output {
            problems.push(format!("{arn}: output {output}, wanted {}", want.output));
        }
        let events = history(client, arn).await;
        if want.ordered {
            problems.extend(
                crate::redrive::redriven_history_problems(&events)
                    .iter()
                    .map(|p| format!("{arn}: {p}")),
            );
        } else {
            // Events of interleaved lanes name the previous event of their lane.
            for (i, e) in events.iter().enumerate() {
                if e.id() != i as i64 + 1 || !(0..e.id()).contains(&e.previous_event_id()) {
                    let (id, previous) = (e.id(), e.previous_event_id());
                    problems.push(format!(
                        "{arn}: event #{i} has id {id}, previous {previous}"
                    ));
                }
            }
        }
        let (mut types, mut wanted) = (common::event_types(&events), want.events.clone());
        if !want.ordered {
            types.sort_unstable();
            wanted.sort_unstable();
        }
        if types != wanted {
            problems.push(format!("{arn}: events {types:?}, wanted {wanted:?}"));
        }
    }
    let logs: Vec<String> = servers.iter().map(|s| s.logs()).collect();
    assert!(problems.is_empty(), "{problems:#?}\n{}", logs.join("\n"));
}

/// The end of `active_nodes_share_shards_and_take_over_a_killed_one`: `c` is killed with
/// `kill -9` while it runs the mixed load, executions started through it: Waits, Pass
/// chains and loops (still being started when it dies), activity tasks (some taken by
/// workers on `a` and `b`, some not), callbacks, inline Maps of Waits and an execution that
/// failed, to be redriven. `a` and `b` take its shards within the TTL (+ 2 s) and finish it
/// all exactly once: the tokens `c` issued complete their tasks through them.
async fn kill_mid_run(
    a: &Server,
    b: &Server,
    c: &mut Server,
    client_a: &aws_sdk_sfn::Client,
    [wait, chain, task, activity]: [&str; 4],
) {
    let (client_b, client_c) = (b.client(), c.client());
    let more = MoreMachines::create(client_a).await;
    let mut expected = Vec::new();
    for client in [client_a, &client_b] {
        for i in 0..EACH {
            let input = json!({"i": i});
            expected.push(waited(&start(client, wait, None, &input).await, i));
            expected.push(chained(&start(client, chain, None, &input).await, i));
        }
    }
    let (arm, armed) = tokio::sync::watch::channel(false);
    let (running, loop_running) = tokio::sync::oneshot::channel();
    let starter = keep_starting(client_c.clone(), more.looping.clone(), armed, running);

    // An execution on c failed before the kill: its task taken through a, failed through b.
    let flaky = start(&client_c, &more.flaky, None, &json!({"flaky": true})).await;
    fail_task([a, b], &more.flaky_activity, &flaky, c).await;

    let (mut tasks, mut callbacks) = (Vec::new(), Vec::new());
    for i in 0..EACH {
        let input = json!({"i": i});
        expected.push(waited(&start(&client_c, wait, None, &input).await, i));
        expected.push(chained(&start(&client_c, chain, None, &input).await, i));
        tasks.push(start(&client_c, task, None, &input).await);
    }
    for i in 0..CALLBACKS {
        callbacks.push(start(&client_c, &more.callback, None, &json!({"i": i})).await);
    }
    for m in 0..MAPS {
        let items: Vec<u64> = (0..ITEMS).map(|n| n * 10 + m as u64).collect();
        let arn = start(&client_c, &more.map, None, &json!({"items": items})).await;
        let output: Vec<Value> = items.iter().map(|n| json!({"item": n})).collect();
        let mut events = vec![STARTED, &["MapStateEntered", "MapStateStarted"]];
        let iteration: &[&str] = &[
            "MapIterationStarted",
            "WaitStateEntered",
            "WaitStateExited",
            "PassStateEntered",
            "PassStateExited",
            "MapIterationSucceeded",
        ];
        events.extend(std::iter::repeat_n(iteration, items.len()));
        events.extend([&["MapStateSucceeded", "MapStateExited"], SUCCEEDED]);
        expected.push(Expected::interleaved(&arn, json!(output), &events));
    }
    // Workers on a and b hold tasks of c, and the callbacks' children hold their tokens.
    let mut early = Vec::new();
    for n in 0..EARLY {
        let client = [client_a, &client_b][n % 2];
        let held = take_task(client, activity, Duration::from_secs(10))
            .await
            .expect("a task of node c through another node");
        early.push(held);
    }
    let mut tokens = Vec::new();
    for arn in &callbacks {
        tokens.push(callback_token(client_a, arn).await);
    }

    let c_health = common::health(c).await;
    assert!(
        c_health["openExecutions"].as_u64() > Some(0),
        "c runs the executions started through it: {c_health}"
    );
    assert!(!starter.is_finished(), "c still starts executions");
    // Killed while a Pass loop it started runs.
    arm.send_replace(true);
    tokio::time::timeout(Duration::from_secs(10), loop_running)
        .await
        .expect("a Pass loop seen running on c")
        .expect("the loops' starter");
    c.kill9();
    let (killed, killed_at) = (Instant::now(), std::time::SystemTime::now());
    let after = spread(&[a, b], Duration::from_secs(LEASE_TTL_SECONDS + 10)).await;
    let takeover = killed.elapsed();
    eprintln!("shards of a, b after kill -9 of c: {after:?}, in {takeover:?}");
    assert!(
        takeover <= Duration::from_secs(LEASE_TTL_SECONDS + 2),
        "takeover took {takeover:?}\n{}\n{}",
        a.logs(),
        b.logs()
    );
    let loops = starter.await.expect("the loops' starter");
    eprintln!("loops acknowledged by c before it died: {}", loops.len());
    expected.extend(loops.iter().enumerate().map(|(i, arn)| looped(arn, i)));

    // The tokens c issued, answered through the other nodes.
    let mut by_early = std::collections::BTreeSet::new();
    for (n, (token, input)) in early.iter().enumerate() {
        let client = [&client_b, client_a][n % 2];
        succeed(client, token, &json!({"by": "early", "i": input["i"]})).await;
        by_early.insert(input["i"].as_u64());
    }
    for (i, (arn, token)) in callbacks.iter().zip(&tokens).enumerate() {
        let client = [client_a, &client_b][i % 2];
        succeed(client, token, &json!({"called back": i})).await;
        let events = [
            STARTED,
            &[
                "TaskStateEntered",
                "TaskScheduled",
                "TaskStarted",
                "TaskSucceeded",
                "TaskStateExited",
            ],
            SUCCEEDED,
        ];
        expected.push(Expected::new(arn, json!({"called back": i}), &events));
    }
    for (i, arn) in tasks.iter().enumerate() {
        let by = match by_early.contains(&Some(i as u64)) {
            true => "early",
            false => "worker",
        };
        let output = json!({"by": by, "i": i});
        expected.push(Expected::new(arn, output, &[STARTED, ACTIVITY, SUCCEEDED]));
    }
    // The execution that failed on c, redriven through a: its new attempt taken and answered
    // through b.
    client_a
        .redrive_execution()
        .execution_arn(&flaky)
        .send()
        .await
        .expect("RedriveExecution through a after c died");
    let token = take(&client_b, &more.flaky_activity, Duration::from_secs(10))
        .await
        .expect("the redriven task through node b");
    succeed(&client_b, &token, &json!({"redriven": true})).await;
    let events = [STARTED, FAILED_ONCE, ACTIVITY, SUCCEEDED];
    expected.push(Expected::new(&flaky, json!({"redriven": true}), &events));

    // Workers on a and b take the tasks c offered that no one took before it died.
    let workers = [client_a, &client_b].map(|c| worker(c.clone(), activity.to_owned()));
    check_each(client_a, &expected, &[a, b]).await;
    workers.iter().for_each(tokio::task::JoinHandle::abort);
    // Pass loops that ran across the kill (started before it, ended after it).
    let killed_at = aws_sdk_sfn::primitives::DateTime::from(killed_at).as_secs_f64();
    let mut cut = 0;
    for arn in &loops {
        let d = wait_done(client_a, arn, Duration::from_secs(1)).await;
        let (from, to) = (
            d.start_date().as_secs_f64(),
            d.stop_date().map(|t| t.as_secs_f64()),
        );
        cut += usize::from(from < killed_at && to > Some(killed_at));
    }
    eprintln!("Pass loops cut by the kill: {cut} of {}", loops.len());
    assert!(cut > 0, "a Pass loop ran when c was killed");

    let children = client_b
        .list_executions()
        .state_machine_arn(&more.child)
        .send()
        .await
        .expect("ListExecutions of the callbacks' children");
    let ended: Vec<&str> = children
        .executions()
        .iter()
        .map(|e| e.status().as_str())
        .collect();
    // Tasks are at-least-once: the new owner performs again the calls in flight (their
    // `TaskStarted` is recorded before the call), so a callback may have a second child.
    eprintln!("children of {CALLBACKS} callbacks: {}", ended.len());
    assert!(
        ended.len() >= CALLBACKS && ended.iter().all(|s| *s == "SUCCEEDED"),
        "a child per callback at least, each ended: {ended:?}"
    );
    let gained =
        a.logs().matches("shard gained").count() + b.logs().matches("shard gained").count();
    assert!(gained >= SHARDS, "the gains are logged:\n{}", a.logs());
}

/// Two active nodes; `a` is stopped (SIGSTOP) past the TTL while the Waits of its executions
/// come due. `b` takes every shard and finishes them. `a`, resumed (SIGCONT) with those
/// timers due, has its stale commits refused (fenced): every history is exact, each event
/// once, each execution ends once. `a` keeps serving (it does not exit, unlike a single
/// leased node), gets its share of the shards back on its next rounds and runs executions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_active_node_paused_past_its_ttl_is_fenced() {
    /// Whether a resumed node's timers fire before its next renewal finds its shards lost is
    /// a race: in a round where the renewal comes first, it drops the executions before it
    /// tries a stale commit (which is right, but fences nothing), so the pause is repeated.
    const ROUNDS: usize = 3;
    let pg = LocalPostgres::start_or_panic();
    let url = pg.url("postgres");
    let active = |id: &str| active_node(&url, id);
    let (mut a, b) = (active("a"), active("b"));
    let client_a = a.client();
    let wait = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "W"},
        "W": {"Type": "Wait", "Seconds": 1, "Next": "B"},
        "B": {"Type": "Pass", "End": true}}});
    let wait = create_machine(&client_a, "wait", &wait).await;
    let fenced = store::Error::Fenced.to_string();
    let mut refused = 0;
    for round in 1..=ROUNDS {
        // a holds its share of the shards (again) and runs what is started through it.
        spread(&[&a, &b], Duration::from_secs(4 * LEASE_TTL_SECONDS)).await;
        let mut expected = Vec::new();
        for i in 0..EACH {
            let arn = start(&client_a, &wait, None, &json!({"i": i})).await;
            expected.push(waited(&arn, i));
        }
        let a_health = common::health(&a).await;
        assert!(
            a_health["openExecutions"].as_u64() > Some(0),
            "a runs the executions started through it: {a_health}"
        );

        signal(&a, "-STOP");
        let paused = Instant::now();
        spread(&[&b], Duration::from_secs(LEASE_TTL_SECONDS + 10)).await;
        eprintln!("b holds every shard {:?} after a stopped", paused.elapsed());
        signal(&a, "-CONT");
        check_each(&b.client(), &expected, &[&a, &b]).await;
        assert!(a.is_running(), "a serves on:\n{}", a.logs());
        refused = a.logs().matches(&fenced).count();
        eprintln!("round {round}: commits of a refused after it resumed: {refused}");
        if refused > 0 {
            break;
        }
    }
    assert!(refused > 0, "a's stale commits are refused:\n{}", a.logs());
    spread(&[&a, &b], Duration::from_secs(4 * LEASE_TTL_SECONDS)).await;
    let again = start(&client_a, &wait, None, &json!({"i": 0})).await;
    check_each(&client_a, &[waited(&again, 0)], &[&a, &b]).await;
}
