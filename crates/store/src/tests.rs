//! The store's contract, run against every implementation.

use crate::*;

fn execution(arn: &str, start: i64, status: &str) -> ExecutionRecord {
    ExecutionRecord {
        arn: arn.into(),
        state_machine_arn: "sm".into(),
        name: arn.into(),
        status: status.into(),
        start_date: start,
        stop_date: None,
        input: "{}".into(),
        output: None,
        error: None,
        cause: None,
        role_arn: "role".into(),
        definition: "{\"big\":true}".into(),
        revision_id: None,
        runtime: "{}".into(),
        wake_at: None,
        redrive_count: 0,
        redrive_date: None,
        version: 1,
        history_length: 1,
        redrive_tokens: Vec::new(),
    }
}

fn event(id: u64) -> StoredEvent {
    StoredEvent {
        id,
        body: format!("{{\"id\":{id}}}"),
    }
}

async fn contract(store: impl Store) {
    let create = |arn: &str, start| Write::CreateExecution {
        execution: execution(arn, start, "RUNNING"),
        events: vec![event(1)],
    };
    let r = store
        .commit(vec![create("a", 1), create("b", 2), create("a", 3)])
        .await
        .unwrap();
    assert!(r[0].is_ok() && r[1].is_ok());
    assert!(
        matches!(r[2], Err(Error::AlreadyExists)),
        "duplicate create is refused alone"
    );

    let mut a = execution("a", 1, "SUCCEEDED");
    a.version = 2;
    let stale = Write::Transition {
        execution: a.clone(),
        events: vec![event(2)],
    };
    let r = store.commit(vec![stale.clone()]).await.unwrap();
    assert!(r[0].is_ok());
    let r = store.commit(vec![stale]).await.unwrap();
    assert!(
        matches!(r[0], Err(Error::Conflict)),
        "a stale version is fenced off"
    );

    let got = store.get_execution("a").await.unwrap().unwrap();
    assert_eq!(got, a, "the record round-trips, definition included");
    let ids: Vec<u64> = store
        .history("a", 1, u64::MAX, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        ids,
        vec![1, 2],
        "the failed duplicate transition appended nothing"
    );

    let open: Vec<String> = store
        .open_executions()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.arn)
        .collect();
    assert_eq!(open, vec!["b".to_string()]);

    let page = |after| ExecutionFilter {
        state_machine_arn: "sm".into(),
        status: None,
        redriven: None,
        after,
        limit: 1,
    };
    let first = store.list_executions(page(None)).await.unwrap();
    assert_eq!(first[0].arn, "b", "newest first");
    let cursor = Cursor {
        start_date: first[0].start_date,
        arn: first[0].arn.clone(),
    };
    let second = store.list_executions(page(Some(cursor))).await.unwrap();
    assert_eq!(second[0].arn, "a");
    let running = ExecutionFilter {
        status: Some("RUNNING".into()),
        limit: 10,
        ..page(None)
    };
    assert_eq!(store.list_executions(running).await.unwrap().len(), 1);

    let mut b = execution("b", 2, "FAILED");
    (b.version, b.redrive_count) = (2, 1);
    let r = store
        .commit(vec![Write::Transition {
            execution: b,
            events: vec![],
        }])
        .await
        .unwrap();
    assert!(r[0].is_ok());
    for (redriven, want) in [
        (Some(true), vec!["b"]),
        (Some(false), vec!["a"]),
        (None, vec!["b", "a"]),
    ] {
        let filter = ExecutionFilter {
            redriven,
            limit: 10,
            ..page(None)
        };
        let got: Vec<String> = store
            .list_executions(filter)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.arn)
            .collect();
        assert_eq!(got, want, "redriven filter {redriven:?}");
    }
}

#[tokio::test]
async fn sqlite_temporary_meets_the_contract() {
    contract(Sqlite::temporary().unwrap()).await;
}

#[tokio::test]
async fn sqlite_file_meets_the_contract_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    contract(Sqlite::open(dir.path()).unwrap()).await;
    let reopened = Sqlite::open(dir.path()).unwrap();
    assert!(reopened.get_execution("b").await.unwrap().is_some());
}
