//! `GET /health`: the node serves, under the id it was given, on its store, and counts what
//! it runs. On the embedded store it holds no lease; on PostgreSQL (`STEPWISE_TEST_STORE`)
//! it reports the lease it holds, or with `--active-nodes` its shards (`postgres.rs` checks
//! how they move between nodes).

use crate::common;

use common::{Options, Server, StoreKind};
use serde_json::{json, Value};

#[tokio::test]
async fn health_reports_the_node_and_its_open_executions() {
    let server = Server::start_with_args(Options::default(), &["--node-id", "n1"]);
    let client = server.client();
    let machine = common::create_machine(
        &client,
        "health",
        &json!({"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 600, "End": true}}}),
    )
    .await;
    client
        .start_execution()
        .state_machine_arn(&machine)
        .send()
        .await
        .expect("StartExecution");
    let mut health = common::health(&server).await;
    let held = |v: &Value| match v {
        Value::Null => "none",
        Value::Object(lease) if lease["epoch"].as_i64() > Some(0) => "lease",
        Value::Array(shards) if !shards.is_empty() => "shards",
        _ => "malformed",
    };
    let (lease, shards) = (health["lease"].take(), health["shards"].take());
    let (store, holds) = match server.store() {
        StoreKind::Postgres => (
            "postgres",
            [("lease", "none"), ("none", "shards")].as_slice(),
        ),
        StoreKind::Sqlite => ("sqlite", [("none", "none")].as_slice()),
        StoreKind::Memory => ("memory", [("none", "none")].as_slice()),
    };
    assert_eq!(
        health,
        json!({"status": "ready", "nodeId": "n1", "store": store, "lease": null, "shards": null, "openExecutions": 1})
    );
    assert!(
        holds.contains(&(held(&lease), held(&shards))),
        "on {store} the node holds {holds:?}: lease {lease}, shards {shards}"
    );
}
