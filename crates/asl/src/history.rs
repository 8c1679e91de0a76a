//! History events as the interpreter records them.
//!
//! These are the engine's own types: payloads are kept as serialized JSON text (never
//! re-parsed), and the API crate renders them in AWS's wire shape.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    /// Epoch milliseconds.
    pub timestamp: i64,
    pub details: EventDetails,
}

/// What happened. State events carry the state type's prefix (`Pass`, `Wait`, ...), which
/// together with the variant gives AWS's event type (`PassStateEntered`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum EventDetails {
    ExecutionStarted {
        input: String,
        role_arn: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state_machine_alias_arn: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state_machine_version_arn: Option<String>,
    },
    ExecutionSucceeded {
        output: String,
    },
    ExecutionFailed(ErrorCause),
    ExecutionAborted(ErrorCause),
    ExecutionTimedOut(ErrorCause),
    ExecutionRedriven {
        redrive_count: u32,
    },
    StateEntered {
        state_type: String,
        name: String,
        input: String,
    },
    StateExited {
        state_type: String,
        name: String,
        output: String,
    },
}

/// The optional `error` and `cause` of a failure event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorCause {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl EventDetails {
    /// AWS's event type name, e.g. `PassStateEntered` or `ExecutionFailed`.
    pub fn event_type(&self) -> String {
        match self {
            EventDetails::ExecutionStarted { .. } => "ExecutionStarted".into(),
            EventDetails::ExecutionSucceeded { .. } => "ExecutionSucceeded".into(),
            EventDetails::ExecutionFailed(_) => "ExecutionFailed".into(),
            EventDetails::ExecutionAborted(_) => "ExecutionAborted".into(),
            EventDetails::ExecutionTimedOut(_) => "ExecutionTimedOut".into(),
            EventDetails::ExecutionRedriven { .. } => "ExecutionRedriven".into(),
            EventDetails::StateEntered { state_type, .. } => format!("{state_type}StateEntered"),
            EventDetails::StateExited { state_type, .. } => format!("{state_type}StateExited"),
        }
    }
}
