//! Runtime errors raised while a state executes.

use std::fmt;

/// An error as ASL sees it: an error name (`States.Runtime`, a user's `Error`, ...) and a cause.
///
/// For errors raised by the runtime itself the `cause` is the text *after* AWS's prefix
/// "An error occurred while executing the state 'S' (entered at the event id #N). ";
/// the interpreter adds that prefix because only it knows the state and the event id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatesError {
    pub error: String,
    pub cause: String,
    /// For `States.QueryEvaluationError`: the field whose expression failed (`Output/a`),
    /// recorded in the `EvaluationFailed` event.
    pub location: Option<String>,
}

impl StatesError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> StatesError {
        StatesError {
            error: error.into(),
            cause: cause.into(),
            location: None,
        }
    }

    /// `States.QueryEvaluationError`: a JSONata expression failed or returned a value the
    /// field cannot take; `location` is the field (`None` when no expression is to blame).
    pub fn query(cause: impl Into<String>, location: Option<String>) -> StatesError {
        StatesError {
            location,
            ..StatesError::new(names::QUERY_EVALUATION_ERROR, cause)
        }
    }

    /// `States.Runtime`: a path that does not resolve, a value of the wrong type, ...
    pub fn runtime(cause: impl Into<String>) -> StatesError {
        StatesError::new(names::RUNTIME, cause)
    }

    /// `States.IntrinsicFailure`: an intrinsic function failed at run time.
    pub fn intrinsic(cause: impl Into<String>) -> StatesError {
        StatesError::new(names::INTRINSIC_FAILURE, cause)
    }
}

impl fmt::Display for StatesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.cause)
    }
}

impl std::error::Error for StatesError {}

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
