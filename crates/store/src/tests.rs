//! SQLite's own cases: the contract on both kinds of SQLite store, and what only SQLite has
//! (old layouts, numbered migrations, a full disk, file modes).

use crate::contract::{event, execution, map_run, run_all};
use crate::*;

#[tokio::test]
async fn sqlite_temporary_meets_the_contract() {
    run_all(|| async { Sqlite::temporary().unwrap() }).await;
}

#[tokio::test]
async fn sqlite_file_meets_the_contract_and_persists() {
    let dirs = std::sync::Mutex::new(Vec::new());
    run_all(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        dirs.lock().unwrap().push(dir);
        store
    })
    .await;
    let dirs = dirs.into_inner().unwrap();
    let reopened = Sqlite::open(dirs[0].path()).unwrap();
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
        offers: vec![],
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
        offers: vec![],
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
            offers: vec![],
        }])
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for file in ["stepwise.db", "stepwise.db-wal"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
}
