//! The store's contract: one suite that every backend runs on stores of its own.
//!
//! `run_all(make)` runs each case on a fresh, empty store from `make`, and panics (it is a
//! test) on the first broken promise of the [`Store`] trait.

use std::future::Future;

use crate::*;

/// Runs every case of the contract, each on a fresh store.
pub async fn run_all<S: Store, F: Future<Output = S>>(make: impl Fn() -> F) {
    executions(&make().await).await;
    versions_and_aliases(&make().await).await;
    map_run_items(&make().await).await;
    lanes(&make().await).await;
    redrive_batches(&make().await).await;
    redrive_batch_claims(&make().await).await;
    redefine(&make().await).await;
    task_token_key(&make().await, &make().await).await;
}

/// Every store has a random task token key of its own, and reads the same one back.
async fn task_token_key(a: &impl Store, b: &impl Store) {
    let key = a.task_token_key().await.expect("a key");
    assert_ne!(key, [0; 32]);
    assert_eq!(a.task_token_key().await.expect("a key"), key);
    assert_ne!(b.task_token_key().await.expect("a key"), key);
}

/// An execution record for tests: `sm`'s, version 1, one event.
pub fn execution(arn: &str, start: i64, status: ExecutionStatus) -> ExecutionRecord {
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
        shard: None,
    }
}

/// A history event for tests.
pub fn event(id: u64) -> StoredEvent {
    StoredEvent {
        id,
        body: format!("{{\"id\":{id}}}"),
    }
}

/// Creation, fencing, record-only writes, listing and its filters.
async fn executions(store: &impl Store) {
    let create = |arn: &str, start| Write::CreateExecution {
        execution: execution(arn, start, ExecutionStatus::Running),
        events: vec![event(1)],
        lanes: vec![],
        offers: vec![],
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
        offers: vec![],
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
            offers: vec![],
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
            offers: vec![],
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
            offers: vec![],
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
        offers: vec![],
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
        offers: vec![],
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

/// A Map Run record for tests (parent `parent`, three items, Express).
pub fn map_run(arn: &str) -> MapRunRecord {
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
    let counts = MapRunCounts {
        succeeded: 2,
        failed: 1,
        total: 3,
        ..MapRunCounts::default()
    };
    let mut ended = map_run("mr");
    ended.status = MapRunStatus::Failed;
    ended.item_counts = Some(counts.clone());
    ended.execution_counts = Some(counts);
    store.update_map_run(ended.clone()).await.unwrap();
    assert_eq!(store.get_map_run("mr").await.unwrap(), Some(ended));
}

/// A state machine record for tests (Standard, definition `{}`).
pub fn state_machine(arn: &str) -> StateMachineRecord {
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

/// A version of `sm` for tests, of revision `revision` (its number and ARN are the store's).
pub fn version(sm: &str, revision: &str) -> VersionRecord {
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

/// One owner at a time drives a bulk redrive: it claims and renews it; another takes it
/// only once the claim expired; nobody claims a finished or unknown one.
async fn redrive_batch_claims(store: &impl Store) {
    let batch = RedriveBatchRecord {
        token: "t1".into(),
        state_machine_arn: "sm".into(),
        selection: "{}".into(),
        creation_date: 5,
        total: 1,
        finish_date: None,
    };
    store
        .create_redrive_batch(batch.clone(), vec!["x".into()])
        .await
        .unwrap();
    let long = std::time::Duration::from_secs(3600);
    let claim = |owner: &'static str, ttl| store.claim_redrive_batch("t1", owner, ttl);
    assert!(claim("a", long).await.unwrap(), "a first claim");
    assert!(!claim("b", long).await.unwrap(), "held by a");
    assert!(claim("a", long).await.unwrap(), "renewed by its owner");
    // Renewed to expire at once: another owner takes it over.
    assert!(claim("a", std::time::Duration::ZERO).await.unwrap());
    assert!(claim("b", long).await.unwrap(), "expired, taken over");
    assert!(!claim("a", long).await.unwrap(), "held by b");
    assert!(!store.claim_redrive_batch("t2", "a", long).await.unwrap());
    let finished = RedriveBatchRecord {
        finish_date: Some(9),
        ..batch
    };
    store.update_redrive_batch(finished).await.unwrap();
    assert!(!claim("b", long).await.unwrap(), "finished");
}

/// A redrive onto another definition replaces the stored one, fenced like a transition; later
/// transitions keep it.
async fn redefine(store: &impl Store) {
    let created = execution("x", 1, ExecutionStatus::Failed);
    let create = Write::CreateExecution {
        execution: created.clone(),
        events: vec![event(1)],
        lanes: vec![],
        offers: vec![],
    };
    assert!(store.commit(vec![create]).await.unwrap()[0].is_ok());
    let mut moved = created.clone();
    (moved.version, moved.status) = (2, ExecutionStatus::Running);
    moved.definition = "{\"fixed\":true}".into();
    moved.runtime = "{\"moved\":true}".into();
    let redefine = |e: &ExecutionRecord| Write::Redefine {
        execution: e.clone(),
        events: vec![event(2)],
        lanes: vec![lane("0", "lane")],
    };
    let r = store.commit(vec![redefine(&moved)]).await.unwrap();
    assert!(r[0].is_ok());
    let r = store.commit(vec![redefine(&moved)]).await.unwrap();
    assert!(matches!(r[0], Err(Error::Conflict)), "fenced");
    let got = store.get_execution("x").await.unwrap().unwrap();
    assert_eq!(
        (got.definition.as_str(), got.runtime.as_str(), got.version),
        ("{\"fixed\":true}", "{\"moved\":true}", 2),
        "the definition and the checkpoint were replaced"
    );
    assert_eq!(
        store.execution_lanes("x").await.unwrap(),
        vec![lane("0", "lane")],
        "its lanes too"
    );

    // A transition and a record-only write in one batch after it keep the new definition,
    // even when they carry another (as a stale copy would).
    let mut step = got.clone();
    step.version = 3;
    step.definition = "{\"stale\":true}".into();
    let mut closed = step.clone();
    (closed.version, closed.status) = (4, ExecutionStatus::Succeeded);
    let r = store
        .commit(vec![
            Write::Transition {
                execution: step,
                events: vec![event(3)],
                lanes: vec![],
                offers: vec![],
            },
            Write::Record {
                execution: closed,
                events: vec![event(4)],
            },
        ])
        .await
        .unwrap();
    assert!(r.iter().all(Result::is_ok));
    let got = store.get_execution("x").await.unwrap().unwrap();
    assert_eq!(
        (got.definition.as_str(), got.version),
        ("{\"fixed\":true}", 4)
    );
}
