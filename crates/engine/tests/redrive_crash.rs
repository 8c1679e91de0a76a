//! A crash between RedriveExecution's commit and the re-opening that follows its answer:
//! the next start re-opens the execution. The engine runs on a current-thread runtime, so
//! the re-opening (a spawned task) cannot run before the runtime is dropped, which is the
//! crash; the store is a real SQLite file.

mod common;

use common::{create_machine, engine, history, runtime};
use engine::{Engine, ExecutionStatus};

/// Fails on its first run (no choice matches), succeeds once redriven: the Choice runs again
/// and reads `$$.Execution.RedriveCount`.
const DEFINITION: &str = r#"{
  "StartAt": "Check",
  "States": {
    "Check": {"Type": "Choice", "Choices": [
      {"Variable": "$$.Execution.RedriveCount", "NumericEquals": 1, "Next": "Done"}
    ]},
    "Done": {"Type": "Succeed"}
  }
}"#;

/// Waits for the execution to end, and checks how.
async fn ended(engine: &Engine, arn: &str, wanted: ExecutionStatus) -> store::ExecutionRecord {
    let record = engine.wait_for_end(arn).await.expect("describe");
    if record.status != wanted {
        let types = event_types(engine, arn).await;
        panic!(
            "{arn} ended {} instead of {wanted}: {types:?}",
            record.status
        );
    }
    record
}

async fn event_types(engine: &Engine, arn: &str) -> Vec<String> {
    let events = history(engine, arn).await;
    events.iter().map(|e| e.details.event_type()).collect()
}

#[test]
fn a_redrive_committed_before_a_crash_is_applied_on_restart() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let arn = runtime().block_on(async {
        let (engine, _clock) = engine(dir.path()).await;
        let machine = create_machine(&engine, "redrive-crash", DEFINITION.into()).await;
        let started = engine
            .start_execution(&machine, None, None, None)
            .await
            .expect("start");
        ended(&engine, &started.arn, ExecutionStatus::Failed).await;
        engine
            .redrive_execution(&started.arn, None)
            .await
            .expect("redrive");
        started.arn
    });
    // The runtime is gone: the spawned re-opening never ran. What was committed:
    runtime().block_on(async {
        let store = store::Sqlite::open(dir.path()).expect("reopen the file");
        let record = store::Store::get_execution(&store, &arn)
            .await
            .expect("read")
            .expect("the execution");
        assert_eq!(
            (record.status, record.redrive_count),
            (ExecutionStatus::Running, 1),
            "the redrive was committed before RedriveExecution answered"
        );
        let events = store::Store::history(&store, &arn, 1, u64::MAX, 100)
            .await
            .expect("history");
        let last = events.last().expect("events");
        assert_eq!(last.id, record.history_length);
        assert!(last.body.contains("ExecutionRedriven"), "{}", last.body);
    });
    runtime().block_on(async {
        let (engine, _clock) = engine(dir.path()).await;
        let record = ended(&engine, &arn, ExecutionStatus::Succeeded).await;
        assert_eq!(record.redrive_count, 1);
        let types = event_types(&engine, &arn).await;
        let redriven = types.iter().position(|t| t == "ExecutionRedriven");
        assert_eq!(
            types[redriven.expect("an ExecutionRedriven event")..],
            [
                "ExecutionRedriven",
                "ChoiceStateEntered",
                "ChoiceStateExited",
                "SucceedStateEntered",
                "SucceedStateExited",
                "ExecutionSucceeded"
            ],
            "{types:?}"
        );
    });
}
