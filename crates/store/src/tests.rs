//! The store's contract, run against every implementation.

use crate::*;

fn execution(arn: &str, start: i64, status: ExecutionStatus) -> ExecutionRecord {
    ExecutionRecord {
        arn: arn.into(),
        state_machine_arn: "sm".into(),
        name: arn.into(),
        status,
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
        map_run: None,
        state_machine_version_arn: None,
        state_machine_alias_arn: None,
        trace_header: None,
        redrive_batch: None,
        redrive_change: None,
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
        execution: execution(arn, start, ExecutionStatus::Running),
        events: vec![event(1)],
        lanes: vec![],
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

    let mut a = execution("a", 1, ExecutionStatus::Succeeded);
    a.version = 2;
    let stale = Write::Transition {
        execution: a.clone(),
        events: vec![event(2)],
        lanes: vec![],
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

    // A record-only write keeps the stored checkpoint and is fenced too.
    let mut reopened = a.clone();
    (reopened.version, reopened.status) = (3, ExecutionStatus::Running);
    reopened.runtime = "not written".into();
    let record_only = Write::Record {
        execution: reopened.clone(),
        events: vec![event(3)],
    };
    let r = store.commit(vec![record_only.clone()]).await.unwrap();
    assert!(r[0].is_ok());
    let r = store.commit(vec![record_only]).await.unwrap();
    assert!(matches!(r[0], Err(Error::Conflict)), "fenced");
    let got = store.get_execution("a").await.unwrap().unwrap();
    assert_eq!(
        (got.status.as_str(), got.version, got.runtime.as_str()),
        ("RUNNING", 3, a.runtime.as_str()),
        "the record changed, the checkpoint did not"
    );
    let ids = store.history("a", 1, u64::MAX, 100).await.unwrap();
    assert_eq!(ids.len(), 3, "its events were appended once");
    let mut closed = a.clone();
    closed.version = 4;
    let r = store
        .commit(vec![Write::Transition {
            execution: closed,
            events: vec![],
            lanes: vec![],
        }])
        .await
        .unwrap();
    assert!(r[0].is_ok());

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
        qualifier: None,
        map_run_arn: None,
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
        status: Some(ExecutionStatus::Running),
        limit: 10,
        ..page(None)
    };
    assert_eq!(store.list_executions(running).await.unwrap().len(), 1);

    let mut b = execution("b", 2, ExecutionStatus::Failed);
    (b.version, b.redrive_count) = (2, 1);
    let r = store
        .commit(vec![Write::Transition {
            execution: b,
            events: vec![],
            lanes: vec![],
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

    let mut c = execution("c", 5, ExecutionStatus::Succeeded);
    c.state_machine_version_arn = Some("sm:1".into());
    c.state_machine_alias_arn = Some("sm:live".into());
    let r = store
        .commit(vec![Write::CreateExecution {
            execution: c,
            events: vec![event(1)],
            lanes: vec![],
        }])
        .await
        .unwrap();
    assert!(r[0].is_ok());
    for (qualifier, want) in [
        ("sm:1", vec!["c"]),
        ("sm:live", vec!["c"]),
        ("sm:2", vec![]),
    ] {
        let filter = ExecutionFilter {
            qualifier: Some(qualifier.into()),
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
        assert_eq!(got, want, "qualifier {qualifier}");
    }
    let got = store.get_execution("c").await.unwrap().unwrap();
    assert_eq!(got.state_machine_version_arn.as_deref(), Some("sm:1"));

    versions_and_aliases(&store).await;
    map_run_items(&store).await;
    lanes(&store).await;
    redrive_batches(&store).await;
}

/// A bulk redrive: its executions written once in order, outcomes set one by one, listed as
/// unfinished until its record says it finished.
async fn redrive_batches(store: &impl Store) {
    let batch = RedriveBatchRecord {
        token: "t1".into(),
        state_machine_arn: "sm".into(),
        selection: "{}".into(),
        creation_date: 5,
        total: 3,
        finish_date: None,
    };
    let arns: Vec<String> = ["x", "y", "z"].map(String::from).to_vec();
    store
        .create_redrive_batch(batch.clone(), arns.clone())
        .await
        .unwrap();
    assert!(matches!(
        store.create_redrive_batch(batch.clone(), arns).await,
        Err(Error::AlreadyExists)
    ));
    assert_eq!(
        store.get_redrive_batch("t1").await.unwrap(),
        Some(batch.clone())
    );
    assert_eq!(store.get_redrive_batch("t2").await.unwrap(), None);
    let outcome = Write::RedriveBatchItem {
        token: "t1".into(),
        index: 1,
        outcome: "done".into(),
    };
    store.commit(vec![outcome]).await.unwrap();
    let page = store.redrive_batch_items("t1", 1, 5).await.unwrap();
    let got: Vec<(u64, &str, Option<&str>)> = page
        .iter()
        .map(|i| (i.index, i.execution_arn.as_str(), i.outcome.as_deref()))
        .collect();
    assert_eq!(got, [(1, "y", Some("done")), (2, "z", None)]);
    assert_eq!(
        store.unfinished_redrive_batches().await.unwrap(),
        std::slice::from_ref(&batch)
    );
    let finished = RedriveBatchRecord {
        finish_date: Some(9),
        ..batch
    };
    store.update_redrive_batch(finished.clone()).await.unwrap();
    assert!(store.unfinished_redrive_batches().await.unwrap().is_empty());
    assert_eq!(store.get_redrive_batch("t1").await.unwrap(), Some(finished));
}

fn lane(path: &str, body: &str) -> LaneRow {
    LaneRow {
        path: path.into(),
        body: body.into(),
    }
}

/// Lane rows come with the transition that wrote them (a fenced-off one writes none), replace
/// the row with their path, and go with the execution.
async fn lanes(store: &impl Store) {
    let sorted = |mut rows: Vec<LaneRow>| {
        rows.sort_by(|a, b| a.path.cmp(&b.path));
        rows
    };
    let mut l = execution("l", 9, ExecutionStatus::Running);
    let create = Write::CreateExecution {
        execution: l.clone(),
        events: vec![event(1)],
        lanes: vec![lane("0", "a"), lane("1", "b")],
    };
    assert!(store.commit(vec![create]).await.unwrap()[0].is_ok());
    l.version = 2;
    let step = |version: u64, lanes: Vec<LaneRow>| Write::Transition {
        execution: ExecutionRecord {
            version,
            ..l.clone()
        },
        events: vec![],
        lanes,
    };
    let r = store
        .commit(vec![step(2, vec![lane("1", "b2"), lane("1/0", "c")])])
        .await
        .unwrap();
    assert!(r[0].is_ok());
    let r = store.commit(vec![step(2, vec![lane("0", "stale")])]).await;
    assert!(matches!(r.unwrap()[0], Err(Error::Conflict)));
    let got = sorted(store.execution_lanes("l").await.unwrap());
    assert_eq!(got, vec![lane("0", "a"), lane("1", "b2"), lane("1/0", "c")]);
    assert!(store.execution_lanes("a").await.unwrap().is_empty());
    store.delete_execution("l").await.unwrap();
    assert!(store.execution_lanes("l").await.unwrap().is_empty());
}

fn map_run(arn: &str) -> MapRunRecord {
    MapRunRecord {
        arn: arn.into(),
        execution_arn: "parent".into(),
        task_id: 7,
        state_machine_arn: "sm/label".into(),
        status: MapRunStatus::Running,
        start_date: 1,
        stop_date: None,
        max_concurrency: 0,
        tolerated_failure_count: None,
        tolerated_failure_percentage: None,
        express: true,
        item_total: 3,
        error: None,
        cause: None,
        redrive_count: 0,
        redrive_date: None,
        item_counts: None,
        execution_counts: None,
        spec: "{}".into(),
    }
}

/// A Map Run's items: written once, read by pages, results set and cleared.
async fn map_run_items(store: &impl Store) {
    let inputs: Vec<String> = (0..3).map(|i| format!("{{\"i\":{i}}}")).collect();
    store
        .create_map_run(map_run("mr"), inputs.clone())
        .await
        .unwrap();
    assert!(matches!(
        store.create_map_run(map_run("mr"), inputs.clone()).await,
        Err(Error::AlreadyExists)
    ));
    let page = store.map_run_items("mr", 1, 5).await.unwrap();
    let got: Vec<(u64, &str)> = page.iter().map(|i| (i.index, i.input.as_str())).collect();
    assert_eq!(got, [(1, inputs[1].as_str()), (2, inputs[2].as_str())]);
    assert_eq!(store.map_run_items("mr", 0, 1).await.unwrap().len(), 1);
    let set = |result: Option<&str>| Write::MapRunItem {
        map_run_arn: "mr".into(),
        index: 2,
        result: result.map(str::to_owned),
    };
    store.commit(vec![set(Some("done"))]).await.unwrap();
    let items = store.map_run_items("mr", 0, 10).await.unwrap();
    let results: Vec<Option<&str>> = items.iter().map(|i| i.result.as_deref()).collect();
    assert_eq!(results, [None, None, Some("done")]);
    store.commit(vec![set(None)]).await.unwrap();
    assert_eq!(
        store.map_run_items("mr", 2, 1).await.unwrap()[0].result,
        None
    );
    assert_eq!(store.list_map_runs("parent").await.unwrap().len(), 1);
}

fn state_machine(arn: &str) -> StateMachineRecord {
    StateMachineRecord {
        arn: arn.into(),
        name: arn.into(),
        kind: StateMachineType::Standard,
        definition: "{}".into(),
        role_arn: "role".into(),
        creation_date: 1,
        update_date: None,
        revision_id: None,
        description: None,
        logging_configuration: None,
        tracing_configuration: None,
        tags: Vec::new(),
    }
}

fn version(sm: &str, revision: &str) -> VersionRecord {
    VersionRecord {
        arn: String::new(),
        state_machine_arn: sm.into(),
        version: 0,
        kind: StateMachineType::Standard,
        definition: "{}".into(),
        role_arn: "role".into(),
        revision_id: Some(revision.into()),
        description: None,
        creation_date: 1,
        logging_configuration: None,
        tracing_configuration: None,
    }
}

async fn versions_and_aliases(store: &impl Store) {
    store
        .create_state_machine(state_machine("m"))
        .await
        .unwrap();
    let v1 = store.create_version(version("m", "r1")).await.unwrap();
    let v2 = store.create_version(version("m", "r2")).await.unwrap();
    assert_eq!((v1.version, v1.arn.as_str()), (1, "m:1"));
    assert_eq!((v2.version, v2.arn.as_str()), (2, "m:2"));
    assert_eq!(store.get_version("m:1").await.unwrap(), Some(v1.clone()));
    let numbers = |vs: Vec<VersionRecord>| vs.iter().map(|v| v.version).collect::<Vec<_>>();
    assert_eq!(
        numbers(store.list_versions("m").await.unwrap()),
        vec![2, 1],
        "newest first"
    );
    store.delete_version("m:2").await.unwrap();
    let v3 = store.create_version(version("m", "r3")).await.unwrap();
    assert_eq!(v3.version, 3, "numbers of deleted versions are not reused");
    assert_eq!(numbers(store.list_versions("m").await.unwrap()), vec![3, 1]);

    let alias = AliasRecord {
        arn: "m:live".into(),
        state_machine_arn: "m".into(),
        name: "live".into(),
        description: Some("d".into()),
        routing: vec![
            Route {
                version_arn: "m:1".into(),
                weight: 70,
            },
            Route {
                version_arn: "m:3".into(),
                weight: 30,
            },
        ],
        creation_date: 1,
        update_date: 1,
    };
    store.create_alias(alias.clone()).await.unwrap();
    assert!(matches!(
        store.create_alias(alias.clone()).await,
        Err(Error::AlreadyExists)
    ));
    let mut updated = alias.clone();
    updated.routing.truncate(1);
    updated.routing[0].weight = 100;
    store.update_alias(updated.clone()).await.unwrap();
    assert_eq!(store.get_alias("m:live").await.unwrap(), Some(updated));
    let mut missing = alias.clone();
    missing.arn = "m:nope".into();
    assert!(matches!(
        store.update_alias(missing).await,
        Err(Error::NotFound)
    ));
    let mut beta = alias.clone();
    (beta.arn, beta.name) = ("m:beta".into(), "beta".into());
    store.create_alias(beta).await.unwrap();
    let arns: Vec<String> = store
        .list_aliases("m")
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.arn)
        .collect();
    assert_eq!(arns, vec!["m:beta", "m:live"]);
    store.delete_alias("m:beta").await.unwrap();
    assert_eq!(store.get_alias("m:beta").await.unwrap(), None);

    store.delete_state_machine("m").await.unwrap();
    assert!(store.list_versions("m").await.unwrap().is_empty());
    assert!(store.list_aliases("m").await.unwrap().is_empty());
    store
        .create_state_machine(state_machine("m"))
        .await
        .unwrap();
    let again = store.create_version(version("m", "r1")).await.unwrap();
    assert_eq!(
        again.version, 1,
        "a new state machine of the same name starts over"
    );
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

/// A store written when a Map Run's inputs were one JSON array in `map_runs.inputs` opens with
/// those inputs as items.
#[tokio::test]
async fn sqlite_moves_old_map_run_inputs_into_items() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("stepwise.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE map_runs(arn TEXT PRIMARY KEY, execution_arn TEXT NOT NULL,
                               inputs TEXT NOT NULL, doc TEXT NOT NULL);",
    )
    .unwrap();
    let doc = serde_json::to_string(&map_run("old")).unwrap();
    let inputs = serde_json::to_string(&["{\"a\":1}", "[2]"]).unwrap();
    conn.execute(
        "INSERT INTO map_runs VALUES ('old', 'parent', ?1, ?2)",
        rusqlite::params![inputs, doc],
    )
    .unwrap();
    drop(conn);
    let store = Sqlite::open(dir.path()).unwrap();
    let items = store.map_run_items("old", 0, 10).await.unwrap();
    let got: Vec<(u64, &str)> = items.iter().map(|i| (i.index, i.input.as_str())).collect();
    assert_eq!(got, [(0, "{\"a\":1}"), (1, "[2]")]);
    assert!(store.get_map_run("old").await.unwrap().is_some());
    store
        .create_map_run(map_run("new"), vec!["1".into()])
        .await
        .unwrap();
}

/// A store written when the execution input was part of the record's JSON (`doc`) opens with
/// an `input` column; its rows still read their input from `doc`, new rows from the column.
#[tokio::test]
async fn sqlite_reads_the_input_of_executions_stored_in_their_doc() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("stepwise.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE executions(arn TEXT PRIMARY KEY, sm_arn TEXT NOT NULL,
             status TEXT NOT NULL, start_date INTEGER NOT NULL, version INTEGER NOT NULL,
             definition TEXT NOT NULL, runtime TEXT NOT NULL, doc TEXT NOT NULL);",
    )
    .unwrap();
    let old = ExecutionRecord {
        input: "{\"old\":1}".into(),
        ..execution("old", 1, ExecutionStatus::Running)
    };
    let mut doc = serde_json::to_value(&old).unwrap();
    doc["input"] = old.input.clone().into();
    conn.execute(
        "INSERT INTO executions VALUES ('old', 'sm', 'RUNNING', 1, 1, 'def', '{}', ?1)",
        [doc.to_string()],
    )
    .unwrap();
    drop(conn);
    let store = Sqlite::open(dir.path()).unwrap();
    let got = store.get_execution("old").await.unwrap().unwrap();
    assert_eq!(got.input, "{\"old\":1}");
    let new = ExecutionRecord {
        input: "{\"new\":2}".into(),
        ..execution("new", 2, ExecutionStatus::Running)
    };
    let create = Write::CreateExecution {
        execution: new,
        events: vec![],
        lanes: vec![],
    };
    assert!(store.commit(vec![create]).await.unwrap()[0].is_ok());
    let got = store.get_execution("new").await.unwrap().unwrap();
    assert_eq!(got.input, "{\"new\":2}");
    let conn = rusqlite::Connection::open(dir.path().join("stepwise.db")).unwrap();
    let doc: String = conn
        .query_row("SELECT doc FROM executions WHERE arn = 'new'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        !doc.contains("new\\\":2"),
        "written once, not in doc: {doc}"
    );
    let open = store.open_executions().await.unwrap();
    let mut inputs: Vec<&str> = open.iter().map(|e| e.input.as_str()).collect();
    inputs.sort_unstable();
    assert_eq!(inputs, ["{\"new\":2}", "{\"old\":1}"]);
}

/// The schema is numbered (`PRAGMA user_version`): a new store and an unnumbered old one both
/// end at this build's number, and a store a newer build migrated is refused, not misread.
#[tokio::test]
async fn sqlite_schema_is_numbered_and_newer_ones_are_refused() {
    let user_version = |dir: &std::path::Path| -> i64 {
        rusqlite::Connection::open(dir.join("stepwise.db"))
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    drop(Sqlite::open(dir.path()).unwrap());
    let current = user_version(dir.path());
    assert!(current >= 1, "a new store is numbered: {current}");
    drop(Sqlite::open(dir.path()).unwrap());
    assert_eq!(
        user_version(dir.path()),
        current,
        "reopening changes nothing"
    );

    let newer = tempfile::tempdir().unwrap();
    rusqlite::Connection::open(newer.path().join("stepwise.db"))
        .unwrap()
        .pragma_update(None, "user_version", current + 1)
        .unwrap();
    let refused = Sqlite::open(newer.path()).err().expect("refused");
    assert!(
        refused.to_string().contains("newer than this build"),
        "{refused}"
    );
}

/// A full disk fails the writes with SQLite's own error, said once (not "no such
/// savepoint", not "storage failure: storage failure: …"), and loses nothing committed.
#[tokio::test]
async fn sqlite_full_disk_reports_the_real_error() {
    let store = Sqlite::temporary().unwrap();
    let first = execution("kept", 1, ExecutionStatus::Running);
    let create = |e: ExecutionRecord| Write::CreateExecution {
        execution: e,
        events: vec![event(1)],
        lanes: Vec::new(),
    };
    store.commit(vec![create(first)]).await.unwrap();
    // No room for a single page more: what SQLite reports when the disk is full.
    store
        .write(|conn| {
            let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            conn.pragma_update(None, "max_page_count", pages)?;
            Ok(())
        })
        .await
        .unwrap();
    let big = ExecutionRecord {
        runtime: "x".repeat(1 << 20),
        ..execution("big", 2, ExecutionStatus::Running)
    };
    let answer = store.commit(vec![create(big)]).await;
    let message = match answer {
        Err(e) => e.to_string(),
        Ok(mut results) => results.pop().unwrap().unwrap_err().to_string(),
    };
    assert!(message.contains("full"), "{message}");
    assert!(!message.contains("savepoint") && !message.contains("storage failure"));
    assert!(store.get_execution("kept").await.unwrap().is_some());
    assert!(store.get_execution("big").await.unwrap().is_none());
}

/// A new data directory and its database files are readable by their owner only.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let store = Sqlite::open(&dir).unwrap();
    store
        .commit(vec![Write::CreateExecution {
            execution: execution("a", 1, ExecutionStatus::Running),
            events: vec![event(1)],
            lanes: Vec::new(),
        }])
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for file in ["stepwise.db", "stepwise.db-wal"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
}
