//! A history event as stored (the body of a `store::StoredEvent` row): the engine's own twin
//! of [`asl::history::HistoryEvent`], converted by hand so that the interpreter's types carry
//! no serde and renaming one of their fields changes nothing on disk. Event rows carry no
//! format number: a change to these types must keep reading every body stored before (see
//! the golden test, whose fixtures are bodies written by earlier builds).
//!
//! Writing borrows from the event ([`Cow`] fields); reading produces owned values that move
//! into the interpreter's types.

use std::borrow::Cow;

use asl::history::{EventDetails, HistoryEvent, TaskFamily, TaskRef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::checkpoint::{
    opt_owned as oo, opt_text as ob, owned as o, text as b, twin_enum, StoredFailure,
};

/// The text of `events`, as rows.
pub fn rows(events: &[HistoryEvent]) -> Vec<store::StoredEvent> {
    let row = |e: &HistoryEvent| store::StoredEvent {
        id: e.id,
        body: serde_json::to_string(&StoredHistoryEvent::from(e)).unwrap_or_default(),
    };
    events.iter().map(row).collect()
}

/// Reads a stored event's body.
pub fn parse(body: &str) -> serde_json::Result<HistoryEvent> {
    serde_json::from_str::<StoredHistoryEvent<'static>>(body).map(HistoryEvent::from)
}

/// [`HistoryEvent`] as stored.
#[derive(Serialize, Deserialize)]
struct StoredHistoryEvent<'a> {
    id: u64,
    previous_event_id: u64,
    timestamp: i64,
    details: StoredDetails<'a>,
}

/// [`EventDetails`] as stored.
#[derive(Serialize, Deserialize)]
#[serde(tag = "t")]
enum StoredDetails<'a> {
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
    ExecutionFailed(StoredFailure<'a>),
    ExecutionAborted(StoredFailure<'a>),
    ExecutionTimedOut(StoredFailure<'a>),
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
    MapRunFailed(StoredFailure<'a>),
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

/// [`TaskRef`] as stored.
#[derive(Serialize, Deserialize)]
struct StoredTaskRef<'a> {
    family: StoredTaskFamily,
    resource: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_type: Option<Cow<'a, str>>,
}

/// [`TaskFamily`] as stored.
#[derive(Clone, Copy, Serialize, Deserialize)]
enum StoredTaskFamily {
    Activity,
    LambdaFunction,
    Task,
}

twin_enum!(TaskFamily, StoredTaskFamily, Activity, LambdaFunction, Task);

impl<'a> From<&'a HistoryEvent> for StoredHistoryEvent<'a> {
    fn from(event: &'a HistoryEvent) -> StoredHistoryEvent<'a> {
        let HistoryEvent {
            id,
            previous_event_id,
            timestamp,
            details,
        } = event;
        StoredHistoryEvent {
            id: *id,
            previous_event_id: *previous_event_id,
            timestamp: *timestamp,
            details: details.into(),
        }
    }
}

impl From<StoredHistoryEvent<'_>> for HistoryEvent {
    fn from(stored: StoredHistoryEvent<'_>) -> HistoryEvent {
        let StoredHistoryEvent {
            id,
            previous_event_id,
            timestamp,
            details,
        } = stored;
        HistoryEvent {
            id,
            previous_event_id,
            timestamp,
            details: details.into(),
        }
    }
}

impl<'a> From<&'a EventDetails> for StoredDetails<'a> {
    fn from(details: &'a EventDetails) -> StoredDetails<'a> {
        use EventDetails as E;
        use StoredDetails as S;
        match details {
            E::ExecutionStarted {
                input,
                role_arn,
                state_machine_alias_arn,
                state_machine_version_arn,
            } => S::ExecutionStarted {
                input: b(input),
                role_arn: b(role_arn),
                state_machine_alias_arn: ob(state_machine_alias_arn),
                state_machine_version_arn: ob(state_machine_version_arn),
            },
            E::ExecutionSucceeded { output } => S::ExecutionSucceeded { output: b(output) },
            E::ExecutionFailed(e) => S::ExecutionFailed(e.into()),
            E::ExecutionAborted(e) => S::ExecutionAborted(e.into()),
            E::ExecutionTimedOut(e) => S::ExecutionTimedOut(e.into()),
            E::ExecutionRedriven { redrive_count } => S::ExecutionRedriven {
                redrive_count: *redrive_count,
            },
            E::StateEntered {
                state_type,
                name,
                input,
            } => S::StateEntered {
                state_type: b(state_type),
                name: b(name),
                input: b(input),
            },
            E::StateExited {
                state_type,
                name,
                output,
                assigned_variables,
            } => S::StateExited {
                state_type: b(state_type),
                name: b(name),
                output: b(output),
                assigned_variables: assigned_variables.as_ref().map(Cow::Borrowed),
            },
            E::ContainerStarted { state_type, length } => S::ContainerStarted {
                state_type: b(state_type),
                length: *length,
            },
            E::ContainerSucceeded { state_type } => S::ContainerSucceeded {
                state_type: b(state_type),
            },
            E::ContainerFailed { state_type } => S::ContainerFailed {
                state_type: b(state_type),
            },
            E::StateAborted { state_type } => S::StateAborted {
                state_type: b(state_type),
            },
            E::MapIteration { phase, name, index } => S::MapIteration {
                phase: b(phase),
                name: b(name),
                index: *index,
            },
            E::MapRunStarted { map_run_arn } => S::MapRunStarted {
                map_run_arn: b(map_run_arn),
            },
            E::MapRunSucceeded => S::MapRunSucceeded,
            E::MapRunFailed(e) => S::MapRunFailed(e.into()),
            E::MapRunAborted => S::MapRunAborted,
            E::MapRunRedriven {
                map_run_arn,
                redrive_count,
            } => S::MapRunRedriven {
                map_run_arn: b(map_run_arn),
                redrive_count: *redrive_count,
            },
            E::TaskScheduled {
                task,
                region,
                input,
                timeout,
                heartbeat,
                credentials,
            } => S::TaskScheduled {
                task: task.into(),
                region: b(region),
                input: b(input),
                timeout: *timeout,
                heartbeat: *heartbeat,
                credentials: ob(credentials),
            },
            E::TaskStarted { task, worker_name } => S::TaskStarted {
                task: task.into(),
                worker_name: ob(worker_name),
            },
            E::TaskSubmitted { task, output } => S::TaskSubmitted {
                task: task.into(),
                output: b(output),
            },
            E::TaskSucceeded { task, output } => S::TaskSucceeded {
                task: task.into(),
                output: b(output),
            },
            E::TaskFailed { task, error } => S::TaskFailed {
                task: task.into(),
                error: error.into(),
            },
            E::TaskTimedOut { task, error } => S::TaskTimedOut {
                task: task.into(),
                error: error.into(),
            },
            E::EvaluationFailed {
                state,
                error,
                cause,
                location,
            } => S::EvaluationFailed {
                state: b(state),
                error: b(error),
                cause: b(cause),
                location: ob(location),
            },
        }
    }
}

impl From<StoredDetails<'_>> for EventDetails {
    fn from(stored: StoredDetails<'_>) -> EventDetails {
        use EventDetails as E;
        use StoredDetails as S;
        match stored {
            S::ExecutionStarted {
                input,
                role_arn,
                state_machine_alias_arn,
                state_machine_version_arn,
            } => E::ExecutionStarted {
                input: o(input),
                role_arn: o(role_arn),
                state_machine_alias_arn: oo(state_machine_alias_arn),
                state_machine_version_arn: oo(state_machine_version_arn),
            },
            S::ExecutionSucceeded { output } => E::ExecutionSucceeded { output: o(output) },
            S::ExecutionFailed(e) => E::ExecutionFailed(e.into()),
            S::ExecutionAborted(e) => E::ExecutionAborted(e.into()),
            S::ExecutionTimedOut(e) => E::ExecutionTimedOut(e.into()),
            S::ExecutionRedriven { redrive_count } => E::ExecutionRedriven { redrive_count },
            S::StateEntered {
                state_type,
                name,
                input,
            } => E::StateEntered {
                state_type: o(state_type),
                name: o(name),
                input: o(input),
            },
            S::StateExited {
                state_type,
                name,
                output,
                assigned_variables,
            } => E::StateExited {
                state_type: o(state_type),
                name: o(name),
                output: o(output),
                assigned_variables: assigned_variables.map(Cow::into_owned),
            },
            S::ContainerStarted { state_type, length } => E::ContainerStarted {
                state_type: o(state_type),
                length,
            },
            S::ContainerSucceeded { state_type } => E::ContainerSucceeded {
                state_type: o(state_type),
            },
            S::ContainerFailed { state_type } => E::ContainerFailed {
                state_type: o(state_type),
            },
            S::StateAborted { state_type } => E::StateAborted {
                state_type: o(state_type),
            },
            S::MapIteration { phase, name, index } => E::MapIteration {
                phase: o(phase),
                name: o(name),
                index,
            },
            S::MapRunStarted { map_run_arn } => E::MapRunStarted {
                map_run_arn: o(map_run_arn),
            },
            S::MapRunSucceeded => E::MapRunSucceeded,
            S::MapRunFailed(e) => E::MapRunFailed(e.into()),
            S::MapRunAborted => E::MapRunAborted,
            S::MapRunRedriven {
                map_run_arn,
                redrive_count,
            } => E::MapRunRedriven {
                map_run_arn: o(map_run_arn),
                redrive_count,
            },
            S::TaskScheduled {
                task,
                region,
                input,
                timeout,
                heartbeat,
                credentials,
            } => E::TaskScheduled {
                task: task.into(),
                region: o(region),
                input: o(input),
                timeout,
                heartbeat,
                credentials: oo(credentials),
            },
            S::TaskStarted { task, worker_name } => E::TaskStarted {
                task: task.into(),
                worker_name: oo(worker_name),
            },
            S::TaskSubmitted { task, output } => E::TaskSubmitted {
                task: task.into(),
                output: o(output),
            },
            S::TaskSucceeded { task, output } => E::TaskSucceeded {
                task: task.into(),
                output: o(output),
            },
            S::TaskFailed { task, error } => E::TaskFailed {
                task: task.into(),
                error: error.into(),
            },
            S::TaskTimedOut { task, error } => E::TaskTimedOut {
                task: task.into(),
                error: error.into(),
            },
            S::EvaluationFailed {
                state,
                error,
                cause,
                location,
            } => E::EvaluationFailed {
                state: o(state),
                error: o(error),
                cause: o(cause),
                location: oo(location),
            },
        }
    }
}

impl<'a> From<&'a TaskRef> for StoredTaskRef<'a> {
    fn from(task: &'a TaskRef) -> StoredTaskRef<'a> {
        let TaskRef {
            family,
            resource,
            resource_type,
        } = task;
        StoredTaskRef {
            family: (*family).into(),
            resource: b(resource),
            resource_type: ob(resource_type),
        }
    }
}

impl From<StoredTaskRef<'_>> for TaskRef {
    fn from(stored: StoredTaskRef<'_>) -> TaskRef {
        let StoredTaskRef {
            family,
            resource,
            resource_type,
        } = stored;
        TaskRef {
            family: family.into(),
            resource: o(resource),
            resource_type: oo(resource_type),
        }
    }
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
