//! The contract on a real PostgreSQL, and what only the shared store has: migrations that run
//! once, and fencing between two stores on one database.

use std::sync::atomic::{AtomicU32, Ordering};

use super::local::LocalPostgres;
use super::Postgres;
use crate::contract::{event, execution, run_all};
use crate::{Error, Store, Write};

#[tokio::test]
async fn postgres_meets_the_contract() {
    let server = LocalPostgres::start_or_panic();
    let n = AtomicU32::new(0);
    run_all(|| async {
        let name = format!("contract{}", n.fetch_add(1, Ordering::Relaxed));
        let url = server.create_database(&name).unwrap();
        Postgres::connect(&url).await.unwrap()
    })
    .await;
}

/// Two stores (two nodes) on one database: the schema is migrated once, and a transition
/// computed from a version another node already moved past is refused, in a batch whose other
/// writes still commit.
#[tokio::test]
async fn postgres_fences_a_second_node() {
    let server = LocalPostgres::start_or_panic();
    let url = server.create_database("nodes").unwrap();
    let (a, b) = tokio::join!(Postgres::connect(&url), Postgres::connect(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    let client = a.pool.get().await.unwrap();
    let rows = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, vec![1], "each migration ran once");

    let create = |arn: &str| Write::CreateExecution {
        execution: execution(arn, 1, "RUNNING"),
        events: vec![event(1)],
        lanes: vec![],
    };
    let r = a.commit(vec![create("x"), create("y")]).await.unwrap();
    assert!(r.iter().all(Result::is_ok));
    let r = b.commit(vec![create("x")]).await.unwrap();
    assert!(matches!(r[0], Err(Error::AlreadyExists)), "{r:?}");
    let step = |arn: &str, version: u64, id: u64| Write::Transition {
        execution: crate::ExecutionRecord {
            version,
            ..execution(arn, 1, "RUNNING")
        },
        events: vec![event(id)],
        lanes: vec![],
    };
    assert!(a.commit(vec![step("x", 2, 2)]).await.unwrap()[0].is_ok());
    let r = b
        .commit(vec![step("x", 2, 2), step("y", 2, 2)])
        .await
        .unwrap();
    assert!(matches!(r[0], Err(Error::Conflict)), "{r:?}");
    assert!(r[1].is_ok(), "the batch's other write commits: {r:?}");
    let ids: Vec<u64> = b
        .history("x", 1, u64::MAX, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, vec![1, 2]);
}
