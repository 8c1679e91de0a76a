//! `GET /health` on the embedded store: the node serves, under the id it was given, and
//! counts what it runs. (On PostgreSQL, `postgres.rs` checks the lease it reports.)

use crate::common;

use common::{Options, Server, StoreKind};
use serde_json::json;

#[tokio::test]
async fn health_reports_the_node_and_its_open_executions() {
    let options = Options {
        store: StoreKind::Sqlite,
        ..Options::default()
    };
    let server = Server::start_with_args(options, &["--node-id", "n1"]);
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
    assert_eq!(
        common::health(&server).await,
        json!({"status": "ready", "nodeId": "n1", "store": "sqlite", "lease": null, "shards": null, "openExecutions": 1})
    );
}
