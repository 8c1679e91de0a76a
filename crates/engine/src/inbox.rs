//! Signals that cross nodes: on a store split in shards among several active nodes, a signal
//! for an execution that another node runs (`SendTask*`, `StopExecution`, a child's end to
//! its parent, a worker on another node taking an activity task) is written to its shard's inbox ([`store::Store::send_signal`]); the node that
//! runs the execution reads it ([`store::Store::inbox`]), applies it as a local signal and
//! only then deletes it, so a node that dies meanwhile leaves it to the next owner. A signal
//! applied twice that way finds its task ended or its execution stopped: it changes nothing.

use asl::error::ErrorCause;
use asl::interpreter::{Signal, TaskOutcome};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The signals that may be sent to another node, as stored in an inbox row (the engine's
/// own form, apart from the interpreter's types).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub(crate) enum Forwarded {
    Stop {
        error: Option<String>,
        cause: Option<String>,
    },
    TaskHeartbeat {
        task_id: u64,
    },
    /// A worker on another node took the activity task.
    TaskStarted {
        task_id: u64,
        worker_name: Option<String>,
    },
    TaskFinished {
        task_id: u64,
        outcome: Outcome,
    },
    /// A node that does not hold the execution's shard committed its redrive, or created it
    /// (a Map Run's child placed there): the owner re-opens or starts it (see
    /// [`crate::runner::Runner::redriven_elsewhere`]).
    Reopen,
    /// A Map Run's child ended on a node that does not run its parent: the parent's owner,
    /// which runs the Map Run, reads how it ended (see
    /// [`crate::runner::Runner::child_ended_elsewhere`]).
    ChildEnded {
        child_arn: String,
        task_id: u64,
    },
}

/// How a forwarded task ended.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "status")]
pub(crate) enum Outcome {
    Succeeded {
        output: Value,
    },
    Failed {
        error: Option<String>,
        cause: Option<String>,
    },
    TimedOut {
        error: Option<String>,
        cause: Option<String>,
    },
}

impl Outcome {
    fn of(outcome: &TaskOutcome) -> Outcome {
        match outcome.clone() {
            TaskOutcome::Succeeded(output) => Outcome::Succeeded { output },
            TaskOutcome::Failed(e) => Outcome::Failed {
                error: e.error,
                cause: e.cause,
            },
            TaskOutcome::TimedOut(e) => Outcome::TimedOut {
                error: e.error,
                cause: e.cause,
            },
        }
    }

    fn into_outcome(self) -> TaskOutcome {
        let failure = |error, cause| ErrorCause {
            error,
            cause,
            location: None,
        };
        match self {
            Outcome::Succeeded { output } => TaskOutcome::Succeeded(output),
            Outcome::Failed { error, cause } => TaskOutcome::Failed(failure(error, cause)),
            Outcome::TimedOut { error, cause } => TaskOutcome::TimedOut(failure(error, cause)),
        }
    }
}

impl Forwarded {
    /// The stored form of `signal`, if it may cross nodes (the others come from the node that
    /// runs the execution).
    pub fn of(signal: &Signal) -> Option<Forwarded> {
        Some(match signal {
            Signal::Stop { error, cause } => Forwarded::Stop {
                error: error.clone(),
                cause: cause.clone(),
            },
            Signal::TaskHeartbeat { task_id } => Forwarded::TaskHeartbeat { task_id: *task_id },
            Signal::TaskStarted {
                task_id,
                worker_name,
            } => Forwarded::TaskStarted {
                task_id: *task_id,
                worker_name: worker_name.clone(),
            },
            Signal::TaskFinished { task_id, outcome } => Forwarded::TaskFinished {
                task_id: *task_id,
                outcome: Outcome::of(outcome),
            },
            _ => return None,
        })
    }

    /// The signal to apply; `None` for [`Forwarded::Reopen`] and [`Forwarded::ChildEnded`],
    /// which are not signals.
    pub fn into_signal(self) -> Option<Signal> {
        Some(match self {
            Forwarded::Stop { error, cause } => Signal::Stop { error, cause },
            Forwarded::TaskHeartbeat { task_id } => Signal::TaskHeartbeat { task_id },
            Forwarded::TaskStarted {
                task_id,
                worker_name,
            } => Signal::TaskStarted {
                task_id,
                worker_name,
            },
            Forwarded::TaskFinished { task_id, outcome } => Signal::TaskFinished {
                task_id,
                outcome: outcome.into_outcome(),
            },
            Forwarded::Reopen | Forwarded::ChildEnded { .. } => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Forwarded;
    use asl::error::ErrorCause;
    use asl::interpreter::{Signal, TaskOutcome};

    #[test]
    fn forwarded_signals_read_back_as_they_were_sent() {
        let signals = [
            Signal::Stop {
                error: Some("E".into()),
                cause: None,
            },
            Signal::TaskHeartbeat { task_id: 7 },
            Signal::TaskStarted {
                task_id: 2,
                worker_name: Some("w".into()),
            },
            Signal::TaskFinished {
                task_id: 3,
                outcome: TaskOutcome::Failed(ErrorCause::new("E", "why")),
            },
            Signal::TaskFinished {
                task_id: 4,
                outcome: TaskOutcome::Succeeded(serde_json::json!({"a": [1]})),
            },
            Signal::TaskFinished {
                task_id: 5,
                outcome: TaskOutcome::TimedOut(ErrorCause::new("States.Timeout", "")),
            },
        ];
        for signal in signals {
            let stored = serde_json::to_string(&Forwarded::of(&signal).expect("forwardable"))
                .expect("serializable");
            let back: Forwarded = serde_json::from_str(&stored).expect("readable");
            let back = back.into_signal().expect("a signal");
            assert_eq!(format!("{back:?}"), format!("{signal:?}"));
        }
        assert!(Forwarded::of(&Signal::Wake).is_none());
    }
}
