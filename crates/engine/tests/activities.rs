//! `GetActivityTask` polls that end while a task is handed to them: the task goes to the next
//! poll, not with the one that went away.

mod common;

use std::time::Duration;

use common::{create_machine, engine, history, runtime};
use serde_json::json;

/// A poll parks; a task is scheduled and handed to it; the poll is dropped before it runs
/// again (its client hung up, or its long poll ended just then). The next poll gets the task
/// at once, and it is that execution's.
#[test]
fn a_task_handed_to_a_poll_that_went_away_goes_to_the_next_poll() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (engine, _clock) = engine(dir.path()).await;
        let activity = engine
            .create_activity("us-east-1", "123456789012", "work", Vec::new())
            .await
            .expect("create activity")
            .arn;
        let definition = json!({"StartAt": "Work", "States": {
            "Work": {"Type": "Task", "Resource": activity, "End": true}}});
        let machine = create_machine(&engine, "handed", definition.to_string()).await;

        let mut first = Box::pin(engine.get_activity_task(&activity, None));
        let parked = tokio::time::timeout(Duration::from_millis(50), &mut first).await;
        assert!(parked.is_err(), "no task yet: the poll parks");

        let arn = engine
            .start_execution(&machine, None, Some("{\"n\":1}".into()), None)
            .await
            .expect("start")
            .arn;
        // Until the task is scheduled and handed to the parked poll (not queued).
        for _ in 0..200 {
            let scheduled = history(&engine, &arn)
                .await
                .iter()
                .any(|e| e.details.event_type() == "ActivityScheduled");
            if scheduled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let queued = engine
            .pending_activity_tasks(&activity)
            .await
            .expect("pending");
        assert!(queued.is_empty(), "the task went to the parked poll");
        drop(first);

        let next = tokio::time::timeout(
            Duration::from_secs(5),
            engine.get_activity_task(&activity, None),
        )
        .await
        .expect("the next poll gets the task without waiting out its long poll")
        .expect("GetActivityTask")
        .expect("a task");
        assert_eq!(next.execution_arn, arn);
        assert_eq!(next.input, "{\"n\":1}");
    });
}
