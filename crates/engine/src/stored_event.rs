//! A history event as stored (the body of a `store::StoredEvent` row): the engine's own twin
//! of [`asl::history::HistoryEvent`], declared with its field lists
//! ([`crate::stored_twin`]) so that the interpreter's types carry no serde and renaming one of
//! their fields changes nothing on disk. Event rows carry no format number: a change to these
//! types must keep reading every body stored before (see the golden test, whose fixtures are
//! bodies written by earlier builds).
//!
//! Writing borrows from the event ([`Cow`] fields); reading produces owned values that move
//! into the interpreter's types.

use std::borrow::Cow;

use asl::history::{EventDetails, HistoryEvent, TaskFamily, TaskRef};
use serde::de::Error as _;
use serde_json::{Map, Value};

use crate::checkpoint::StoredFailure;
use crate::stored_twin::{stored_enum, stored_struct, Twin};

/// The text of `events`, as rows.
pub fn rows(events: &[HistoryEvent]) -> Vec<store::StoredEvent> {
    let row = |e: &HistoryEvent| store::StoredEvent {
        id: e.id,
        // An event holds no containers: `usize::MAX` (lanes inline) is never looked at.
        body: serde_json::to_string(&StoredHistoryEvent::view(e, usize::MAX)).unwrap_or_default(),
    };
    events.iter().map(row).collect()
}

/// Reads a stored event's body.
pub fn parse(body: &str) -> serde_json::Result<HistoryEvent> {
    let stored: StoredHistoryEvent<'static> = serde_json::from_str(body)?;
    // Unreachable: an event holds no containers whose lanes could be missing.
    stored
        .load()
        .map_err(|_| serde_json::Error::custom("an event with lanes missing"))
}

stored_struct! {
    /// [`HistoryEvent`] as stored.
    HistoryEvent => struct StoredHistoryEvent<'a> {
        id: u64,
        previous_event_id: u64,
        timestamp: i64,
        details: StoredDetails<'a>,
    }
}

stored_enum! {
    /// [`EventDetails`] as stored.
    #[serde(tag = "t")]
    EventDetails => enum StoredDetails<'a> {
        ExecutionStarted {
            input: Cow<'a, str>,
            role_arn: Cow<'a, str>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            state_machine_alias_arn: Option<Cow<'a, str>>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            state_machine_version_arn: Option<Cow<'a, str>>,
        },
        ExecutionSucceeded {
            output: Cow<'a, str>,
        },
        ExecutionFailed(error: StoredFailure<'a>),
        ExecutionAborted(error: StoredFailure<'a>),
        ExecutionTimedOut(error: StoredFailure<'a>),
        ExecutionRedriven {
            redrive_count: u32,
        },
        StateEntered {
            state_type: Cow<'a, str>,
            name: Cow<'a, str>,
            input: Cow<'a, str>,
        },
        StateExited {
            state_type: Cow<'a, str>,
            name: Cow<'a, str>,
            output: Cow<'a, str>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            assigned_variables: Option<Cow<'a, Map<String, Value>>>,
        },
        ContainerStarted {
            state_type: Cow<'a, str>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            length: Option<u64>,
        },
        ContainerSucceeded {
            state_type: Cow<'a, str>,
        },
        ContainerFailed {
            state_type: Cow<'a, str>,
        },
        StateAborted {
            state_type: Cow<'a, str>,
        },
        MapIteration {
            phase: Cow<'a, str>,
            name: Cow<'a, str>,
            index: u64,
        },
        MapRunStarted {
            map_run_arn: Cow<'a, str>,
        },
        MapRunSucceeded,
        MapRunFailed(error: StoredFailure<'a>),
        MapRunAborted,
        MapRunRedriven {
            map_run_arn: Cow<'a, str>,
            redrive_count: u32,
        },
        TaskScheduled {
            task: StoredTaskRef<'a>,
            region: Cow<'a, str>,
            input: Cow<'a, str>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            timeout: Option<u64>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            heartbeat: Option<u64>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            credentials: Option<Cow<'a, str>>,
        },
        TaskStarted {
            task: StoredTaskRef<'a>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            worker_name: Option<Cow<'a, str>>,
        },
        TaskSubmitted {
            task: StoredTaskRef<'a>,
            output: Cow<'a, str>,
        },
        TaskSucceeded {
            task: StoredTaskRef<'a>,
            output: Cow<'a, str>,
        },
        TaskFailed {
            task: StoredTaskRef<'a>,
            #[serde(flatten)]
            error: StoredFailure<'a>,
        },
        TaskTimedOut {
            task: StoredTaskRef<'a>,
            #[serde(flatten)]
            error: StoredFailure<'a>,
        },
        EvaluationFailed {
            state: Cow<'a, str>,
            error: Cow<'a, str>,
            cause: Cow<'a, str>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            location: Option<Cow<'a, str>>,
        },
    }
}

stored_struct! {
    /// [`TaskRef`] as stored.
    TaskRef => struct StoredTaskRef<'a> {
        family: StoredTaskFamily,
        resource: Cow<'a, str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resource_type: Option<Cow<'a, str>>,
    }
}

stored_enum! {
    /// [`TaskFamily`] as stored.
    TaskFamily => enum StoredTaskFamily { Activity, LambdaFunction, Task }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every event body kept in `tests/events/` (one a line; written by the builds their file
    /// names say) is read and stored again byte for byte.
    #[test]
    fn stored_events_are_stored_again_byte_for_byte() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/events");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        files.sort();
        let mut types = std::collections::BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("the fixture reads");
            for body in text.lines() {
                let event = super::parse(body).unwrap_or_else(|e| panic!("{body}: {e}"));
                types.insert(event.details.event_type());
                let again = super::rows(std::slice::from_ref(&event));
                assert_eq!(again[0].body, body, "{}", file.display());
            }
        }
        assert!(
            types.len() >= 20,
            "the fixtures cover many event types: {types:?}"
        );
    }
}
