//! History events as the interpreter records them.
//!
//! Payloads are kept as serialized JSON text (never re-parsed); the API crate renders the
//! events in AWS's wire shape, and the engine stores them as its own twin types
//! (`engine::stored_event`), so these carry no serde.

pub use crate::error::ErrorCause;

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEvent {
    pub id: u64,
    pub previous_event_id: u64,
    /// Epoch milliseconds.
    pub timestamp: i64,
    pub details: EventDetails,
}

/// What happened. State events carry the state type's prefix (`Pass`, `Wait`, ...), which
/// together with the variant gives AWS's event type (`PassStateEntered`).
#[derive(Debug, Clone, PartialEq)]
pub enum EventDetails {
    ExecutionStarted {
        input: String,
        role_arn: String,
        state_machine_alias_arn: Option<String>,
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
        /// Variables the state assigned: name → value as JSON text.
        assigned_variables: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// `ParallelStateStarted` / `MapStateStarted` (with the number of items).
    ContainerStarted {
        state_type: String,
        length: Option<u64>,
    },
    /// `ParallelStateSucceeded` / `MapStateSucceeded`.
    ContainerSucceeded {
        state_type: String,
    },
    /// `ParallelStateFailed` / `MapStateFailed`.
    ContainerFailed {
        state_type: String,
    },
    /// `TaskStateAborted` and the like: a state that ended without an exit of its own.
    StateAborted {
        state_type: String,
    },
    /// `MapIterationStarted` / `Succeeded` / `Failed` / `Aborted`.
    MapIteration {
        phase: String,
        name: String,
        index: u64,
    },
    MapRunStarted {
        map_run_arn: String,
    },
    MapRunSucceeded,
    MapRunFailed(ErrorCause),
    MapRunAborted,
    MapRunRedriven {
        map_run_arn: String,
        redrive_count: u32,
    },
    TaskScheduled {
        task: TaskRef,
        region: String,
        input: String,
        timeout: Option<u64>,
        heartbeat: Option<u64>,
        credentials: Option<String>,
    },
    TaskStarted {
        task: TaskRef,
        worker_name: Option<String>,
    },
    TaskSubmitted {
        task: TaskRef,
        output: String,
    },
    TaskSucceeded {
        task: TaskRef,
        output: String,
    },
    TaskFailed {
        task: TaskRef,
        error: ErrorCause,
    },
    TaskTimedOut {
        task: TaskRef,
        error: ErrorCause,
    },
    /// A JSONata state failed to evaluate a field (`States.QueryEvaluationError`).
    EvaluationFailed {
        state: String,
        error: String,
        cause: String,
        /// The field, relative to the state (`Output/a`).
        location: Option<String>,
    },
}

/// Which task an event is about: its event family and how AWS names the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRef {
    pub family: TaskFamily,
    /// The resource ARN (activities, Lambda) or the action (`invoke`, `startExecution.sync`).
    pub resource: String,
    /// `resourceType` of service integrations (`lambda`, `states`, `aws-sdk:s3`).
    pub resource_type: Option<String>,
}

/// The event family: `Activity*`, `LambdaFunction*` or `Task*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskFamily {
    Activity,
    LambdaFunction,
    Task,
}

impl TaskFamily {
    pub fn prefix(self) -> &'static str {
        match self {
            TaskFamily::Activity => "Activity",
            TaskFamily::LambdaFunction => "LambdaFunction",
            TaskFamily::Task => "Task",
        }
    }
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
            EventDetails::ContainerStarted { state_type, .. } => {
                format!("{state_type}StateStarted")
            }
            EventDetails::ContainerSucceeded { state_type } => {
                format!("{state_type}StateSucceeded")
            }
            EventDetails::ContainerFailed { state_type } => format!("{state_type}StateFailed"),
            EventDetails::StateAborted { state_type } => format!("{state_type}StateAborted"),
            EventDetails::MapIteration { phase, .. } => format!("MapIteration{phase}"),
            EventDetails::MapRunStarted { .. } => "MapRunStarted".into(),
            EventDetails::MapRunSucceeded => "MapRunSucceeded".into(),
            EventDetails::MapRunFailed(_) => "MapRunFailed".into(),
            EventDetails::MapRunAborted => "MapRunAborted".into(),
            EventDetails::MapRunRedriven { .. } => "MapRunRedriven".into(),
            EventDetails::TaskScheduled { task, .. } => {
                format!("{}Scheduled", task.family.prefix())
            }
            EventDetails::TaskStarted { task, .. } => format!("{}Started", task.family.prefix()),
            EventDetails::TaskSubmitted { task, .. } => {
                format!("{}Submitted", task.family.prefix())
            }
            EventDetails::TaskSucceeded { task, .. } => {
                format!("{}Succeeded", task.family.prefix())
            }
            EventDetails::TaskFailed { task, .. } => format!("{}Failed", task.family.prefix()),
            EventDetails::TaskTimedOut { task, .. } => format!("{}TimedOut", task.family.prefix()),
            EventDetails::EvaluationFailed { .. } => "EvaluationFailed".into(),
        }
    }
}
