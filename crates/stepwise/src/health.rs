//! `GET /health`, for load balancers and supervisors: this node serves, who it is, and the
//! lease it holds on a PostgreSQL store. A standby does not listen until it holds the lease
//! (see docs/deployment.md), so a probe finds only nodes that can serve.

use axum::http::header::CONTENT_TYPE;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

/// What the node reports about itself.
#[derive(Clone)]
pub struct Node {
    pub id: String,
    /// `sqlite`, `memory` or `postgres`.
    pub store: &'static str,
    /// The lease a PostgreSQL node holds (one lease for the whole store: a single active
    /// node); `None` on the embedded stores.
    pub lease: Option<store::postgres::Held>,
    /// The shards a node holds among several active nodes (`--active-nodes`).
    pub shards: Option<tokio::sync::watch::Receiver<store::HeldShards>>,
}

pub fn router(engine: engine::Engine, node: Node) -> Router {
    let page = move || {
        let (engine, node) = (engine.clone(), node.clone());
        async move {
            let body = report(&engine, &node).to_string();
            ([(CONTENT_TYPE, "application/json")], body)
        }
    };
    Router::new().route("/health", get(page))
}

fn report(engine: &engine::Engine, node: &Node) -> Value {
    let health = engine.health();
    json!({
        "status": "ready",
        "nodeId": node.id,
        "store": node.store,
        "lease": node.lease.as_ref().map(|held| json!({"epoch": held.epoch})),
        "shards": node.shards.as_ref().map(|held| {
            let held = held.borrow();
            held.iter().map(|(shard, epoch)| json!({"shard": shard, "epoch": epoch})).collect::<Vec<_>>()
        }),
        "openExecutions": health.open_executions,
    })
}
