//! Failures as ASL knows them: raised while a state executes, reported by a task, recorded in
//! a history event. One type for all three.

use std::fmt;

/// A failure: an error name (`States.Runtime`, a user's `Error`, ...) and a cause, each
/// optional as in AWS's failure events (`ExecutionAborted` may have neither).
///
/// For errors raised by the runtime itself the `cause` is the text *after* AWS's prefix
/// "An error occurred while executing the state 'S' (entered at the event id #N). ";
/// the interpreter adds that prefix because only it knows the state and the event id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorCause {
    pub error: Option<String>,
    pub cause: Option<String>,
    /// For `States.QueryEvaluationError`: the field whose expression failed (`Output/a`),
    /// recorded in the `EvaluationFailed` event. Never set on a recorded failure.
    pub location: Option<String>,
}

impl ErrorCause {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> ErrorCause {
        ErrorCause {
            error: Some(error.into()),
            cause: Some(cause.into()),
            location: None,
        }
    }

    /// `States.QueryEvaluationError`: a JSONata expression failed or returned a value the
    /// field cannot take; `location` is the field (`None` when no expression is to blame).
    pub fn query(cause: impl Into<String>, location: Option<String>) -> ErrorCause {
        ErrorCause {
            location,
            ..ErrorCause::new(names::QUERY_EVALUATION_ERROR, cause)
        }
    }

    /// `States.Runtime`: a path that does not resolve, a value of the wrong type, ...
    pub fn runtime(cause: impl Into<String>) -> ErrorCause {
        ErrorCause::new(names::RUNTIME, cause)
    }

    /// `States.IntrinsicFailure`: an intrinsic function failed at run time.
    pub fn intrinsic(cause: impl Into<String>) -> ErrorCause {
        ErrorCause::new(names::INTRINSIC_FAILURE, cause)
    }

    /// Whether the error is `name`.
    pub fn is(&self, name: &str) -> bool {
        self.error.as_deref() == Some(name)
    }

    /// The error name, empty when there is none.
    pub fn error_name(&self) -> &str {
        self.error.as_deref().unwrap_or_default()
    }

    /// The cause, empty when there is none.
    pub fn cause_text(&self) -> &str {
        self.cause.as_deref().unwrap_or_default()
    }
}

impl fmt::Display for ErrorCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_name(), self.cause_text())
    }
}

impl std::error::Error for ErrorCause {}

/// The predefined error names of the States language: the one place they are written.
pub mod names {
    pub const ALL: &str = "States.ALL";
    pub const RUNTIME: &str = "States.Runtime";
    pub const TIMEOUT: &str = "States.Timeout";
    pub const HEARTBEAT_TIMEOUT: &str = "States.HeartbeatTimeout";
    pub const TASK_FAILED: &str = "States.TaskFailed";
    pub const DATA_LIMIT_EXCEEDED: &str = "States.DataLimitExceeded";
    pub const INTRINSIC_FAILURE: &str = "States.IntrinsicFailure";
    pub const QUERY_EVALUATION_ERROR: &str = "States.QueryEvaluationError";
    pub const NO_CHOICE_MATCHED: &str = "States.NoChoiceMatched";
    pub const REFERENCE_PATH_CONFLICT: &str = "States.ReferencePathConflict";
    /// A Distributed Map's failed children exceeded its tolerated failures.
    pub const EXCEED_TOLERATED_FAILURE_THRESHOLD: &str = "States.ExceedToleratedFailureThreshold";
    /// A Distributed Map could not read its items.
    pub const ITEM_READER_FAILED: &str = "States.ItemReaderFailed";
    /// A Distributed Map could not export its results.
    pub const RESULT_WRITER_FAILED: &str = "States.ResultWriterFailed";
}
