//! Lanes (Map iterations, Parallel branches) are stored one row each and written only when a
//! transition touched them. These tests take the execution's rows away from what memory
//! expects, on a real SQLite file, and check that the execution still ends as it should: a
//! commit refused because another writer moved the row on (memory is read back from the
//! store), and a restart in the middle of a Map, from the rows or from a checkpoint that
//! an older store wrote with its lanes inline. Debug builds also read every committed
//! checkpoint back and compare it with memory (`checkpoint::verify`).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{create_machine, engine, history, runtime};
use engine::{Engine, ManualClock};
use serde_json::{json, Value};
use store::{LaneRow, Sqlite, Store, Write};

/// A one-branch Parallel around a Map over `$.items` whose iterations wait their item's
/// `wait` seconds, then run a Parallel of two branches: small containers (kept inline) above
/// and below a large one (its lanes in rows).
fn definition() -> String {
    let map = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items",
        "ItemProcessor": {"StartAt": "Hold", "States": {
            "Hold": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Both"},
            "Both": {"Type": "Parallel", "End": true, "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$.n", "End": true}}},
                {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": "b", "End": true}}}
            ]}
        }},
        "End": true}}});
    json!({"StartAt": "Outer", "States": {"Outer": {
        "Type": "Parallel", "Branches": [map], "End": true}}})
    .to_string()
}

/// More than a container keeps inline.
const ITEMS: u64 = 300;

fn expected_output() -> Value {
    json!([(0..ITEMS).map(|n| json!([n, "b"])).collect::<Vec<_>>()])
}

/// Starts the Map: odd iterations wait a second, even ones end in the first transitions.
/// Returns once the even ones have ended and the engine only waits on the odd ones' timers,
/// so that a test that stops the engine then stops it at the same point every time.
async fn start(engine: &Engine) -> String {
    let machine = create_machine(engine, "lanes", definition()).await;
    let items: Vec<Value> = (0..ITEMS).map(|n| json!({"n": n, "wait": n % 2})).collect();
    let input = json!({ "items": items }).to_string();
    let arn = engine
        .start_execution(&machine, None, Some(input), None)
        .await
        .expect("start")
        .arn;
    for _ in 0..500 {
        let events = history(engine, &arn).await;
        let ended = events
            .iter()
            .filter(|e| e.details.event_type() == "MapIterationSucceeded")
            .count() as u64;
        if ended >= ITEMS / 2 {
            return arn;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the even iterations of {arn} did not end");
}

/// Runs the clock a second ahead every 10 ms of real time until the execution ends, so that
/// the odd iterations' Waits and the engine's retry after a refused commit fall due. Then
/// checks the end of the execution and that its history is whole: ids 1..=n, every
/// iteration and branch started and succeeded once.
async fn assert_succeeded(engine: &Engine, clock: &ManualClock, arn: &str) {
    let ticking = async {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            clock.advance(Duration::from_secs(1));
        }
    };
    let record = tokio::select! {
        record = engine.wait_for_end(arn) => record.expect("describe"),
        () = ticking => unreachable!("the clock ticks for ever"),
    };
    assert_eq!(
        record.status,
        engine::ExecutionStatus::Succeeded,
        "{record:?}"
    );
    let output: Value = serde_json::from_str(record.output.as_deref().unwrap_or("null"))
        .expect("the output is JSON");
    assert_eq!(output, expected_output());
    let events = history(engine, arn).await;
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    let count = |t: &str| {
        let types = events.iter().map(|e| e.details.event_type());
        types.filter(|e| e == t).count() as u64
    };
    assert_eq!(count("MapIterationStarted"), ITEMS);
    assert_eq!(count("MapIterationSucceeded"), ITEMS);
    assert_eq!(count("ParallelStateSucceeded"), ITEMS + 1);
    assert_eq!(count("PassStateExited"), 2 * ITEMS);
}

/// Commits a version bump of the stored row behind the engine's back, as another node
/// would: the engine's next commit for it is refused. Read again if the engine commits first.
async fn move_on(store: &Sqlite, arn: &str, lanes: Vec<LaneRow>, inline: Option<String>) {
    for _ in 0..100 {
        let mut record = store.get_execution(arn).await.expect("read").expect("row");
        record.version += 1;
        if let Some(runtime) = &inline {
            record.runtime = runtime.clone();
        }
        let write = Write::Transition {
            execution: record,
            events: Vec::new(),
            lanes: lanes.clone(),
            offers: vec![],
        };
        match store.commit(vec![write]).await.expect("commit").pop() {
            Some(Ok(())) => return,
            Some(Err(store::Error::Conflict)) => continue,
            other => panic!("{other:?}"),
        }
    }
    panic!("the row never stood still");
}

#[test]
fn a_refused_commit_is_read_back_from_the_store() {
    let dir = tempfile::tempdir().expect("a temp dir");
    runtime().block_on(async {
        let (engine, clock) = engine(dir.path()).await;
        let arn = start(&engine).await;
        // Every odd iteration waits; meanwhile another writer moves the row on.
        let other = Sqlite::open(dir.path()).expect("a second handle");
        move_on(&other, &arn, Vec::new(), None).await;
        assert_succeeded(&engine, &clock, &arn).await;
    });
}

#[test]
fn a_map_resumes_after_a_restart_from_its_lane_rows() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let arn = runtime().block_on(async {
        let (engine, _clock) = engine(dir.path()).await;
        start(&engine).await
    });
    let store = Sqlite::open(dir.path()).expect("reopen");
    let rows = runtime()
        .block_on(store.execution_lanes(&arn))
        .expect("rows");
    assert_eq!(
        rows.len() as u64,
        ITEMS,
        "one row per iteration (the Parallels' two branches stay inline)"
    );
    drop(store);
    runtime().block_on(async {
        let (engine, clock) = engine(dir.path()).await;
        assert_succeeded(&engine, &clock, &arn).await;
    });
}

/// A checkpoint written before lanes had rows keeps them inline: it is read as it is, and the
/// first commit writes every lane. The rows left in the store are garbage here, and the even
/// iterations ended before the restart, so nothing else would write theirs.
#[test]
fn a_checkpoint_with_inline_lanes_is_resumed_and_stored_whole() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let arn = runtime().block_on(async {
        let (engine, _clock) = engine(dir.path()).await;
        start(&engine).await
    });
    runtime().block_on(async {
        let store = Sqlite::open(dir.path()).expect("reopen");
        let record = store.get_execution(&arn).await.expect("read").expect("row");
        let mut checkpoint: Value = serde_json::from_str(&record.runtime).expect("JSON");
        let outer = &checkpoint["runtime"]["current"]["container"];
        let container = &outer["lanes"][0]["current"]["container"];
        assert_eq!(container["detached"], json!(ITEMS), "{container}");
        let rows = store.execution_lanes(&arn).await.expect("rows");
        let bodies = rows
            .iter()
            .map(|r| (r.path.clone(), r.body.clone()))
            .collect();
        inline(&mut checkpoint["runtime"]["current"], "", &bodies);
        let garbage = rows
            .iter()
            .map(|r| LaneRow {
                path: r.path.clone(),
                body: "{}".into(),
            })
            .collect();
        move_on(&store, &arn, garbage, Some(checkpoint.to_string())).await;
    });
    runtime().block_on(async {
        let (engine, clock) = engine(dir.path()).await;
        assert_succeeded(&engine, &clock, &arn).await;
    });
}

/// Puts the lanes of every container below `current` back inline, from their rows (`prefix`:
/// the path of `current`'s lane followed by `/`, empty at the top).
fn inline(current: &mut Value, prefix: &str, rows: &HashMap<String, String>) {
    let Some(container) = current.get_mut("container").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(count) = container.remove("detached").and_then(|n| n.as_u64()) {
        let lanes = (0..count).map(|i| serde_json::from_str(&rows[&format!("{prefix}{i}")]));
        let lanes = lanes.collect::<Result<Vec<Value>, _>>().expect("lanes");
        container.insert("lanes".into(), Value::Array(lanes));
    }
    let lanes = container.get_mut("lanes").and_then(Value::as_array_mut);
    for (i, lane) in lanes.into_iter().flatten().enumerate() {
        inline(&mut lane["current"], &format!("{prefix}{i}/"), rows);
    }
}
