//! The engine's errors. Each knows its AWS error code; the API crate turns them into wire
//! responses in one place.

/// What can go wrong in an operation, in the engine's terms. The payload is the message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidDefinition(String),
    #[error("{0}")]
    InvalidExecutionInput(String),
    #[error("{0}")]
    InvalidOutput(String),
    #[error("{0}")]
    StateMachineDoesNotExist(String),
    #[error("{0}")]
    StateMachineAlreadyExists(String),
    #[error("{0}")]
    ExecutionDoesNotExist(String),
    #[error("{0}")]
    ExecutionAlreadyExists(String),
    #[error("{0}")]
    ActivityDoesNotExist(String),
    /// A resource that does not exist; `resource_name` is its ARN (AWS's `resourceName`).
    #[error("{message}")]
    ResourceNotFound {
        message: String,
        resource_name: String,
    },
    /// More than [`MAX_TAGS`](crate::MAX_TAGS) tags on one resource (AWS's `TooManyTags`).
    #[error("{message}")]
    TooManyTags {
        message: String,
        resource_name: String,
    },
    #[error("{0}")]
    InvalidLoggingConfiguration(String),
    #[error("{0}")]
    StateMachineTypeNotSupported(String),
    #[error("{0}")]
    MissingRequiredParameter(String),
    /// A request that breaks a rule of the operation (AWS's `ValidationException`).
    #[error("{0}")]
    Validation(String),
    /// `UpdateMapRun` on a Map Run that ended (a `ValidationException` with its own reason).
    #[error("{0}")]
    CannotUpdateCompletedMapRun(String),
    /// An alias routing configuration AWS refuses (a `ValidationException` with its own
    /// reason).
    #[error("{0}")]
    InvalidRoutingConfiguration(String),
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    TaskDoesNotExist(String),
    #[error("{0}")]
    TaskTimedOut(String),
    #[error("{0}")]
    ExecutionNotRedrivable(String),
    #[error("{0}")]
    ExecutionLimitExceeded(String),
    /// A workflow naming another account's resource (AWS's `AccessDeniedException`).
    #[error("{0}")]
    AccessDenied(String),
    /// A change that conflicts with the resource's current state (AWS's `ConflictException`).
    #[error("{0}")]
    Conflict(String),
    #[error("storage failure: {0}")]
    Store(#[from] store::Error),
}

impl Error {
    /// The store failed as it does while the database is away for a moment (a storage
    /// failure, a conflicting write): the same work may succeed when tried again.
    pub fn is_momentary(&self) -> bool {
        matches!(
            self,
            Error::Store(store::Error::Backend(_) | store::Error::Conflict)
        )
    }

    /// AWS's error code (the part of `__type` after `#`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidArn(_) => "InvalidArn",
            Error::InvalidName(_) => "InvalidName",
            Error::InvalidDefinition(_) => "InvalidDefinition",
            Error::InvalidExecutionInput(_) => "InvalidExecutionInput",
            Error::InvalidOutput(_) => "InvalidOutput",
            Error::StateMachineDoesNotExist(_) => "StateMachineDoesNotExist",
            Error::StateMachineAlreadyExists(_) => "StateMachineAlreadyExists",
            Error::ExecutionDoesNotExist(_) => "ExecutionDoesNotExist",
            Error::ExecutionAlreadyExists(_) => "ExecutionAlreadyExists",
            Error::ActivityDoesNotExist(_) => "ActivityDoesNotExist",
            Error::ResourceNotFound { .. } => "ResourceNotFound",
            Error::TooManyTags { .. } => "TooManyTags",
            Error::InvalidLoggingConfiguration(_) => "InvalidLoggingConfiguration",
            Error::StateMachineTypeNotSupported(_) => "StateMachineTypeNotSupported",
            Error::MissingRequiredParameter(_) => "MissingRequiredParameter",
            Error::Validation(_)
            | Error::CannotUpdateCompletedMapRun(_)
            | Error::InvalidRoutingConfiguration(_) => "ValidationException",
            Error::InvalidToken(_) => "InvalidToken",
            Error::TaskDoesNotExist(_) => "TaskDoesNotExist",
            Error::TaskTimedOut(_) => "TaskTimedOut",
            Error::ExecutionNotRedrivable(_) => "ExecutionNotRedrivable",
            Error::ExecutionLimitExceeded(_) => "ExecutionLimitExceeded",
            Error::AccessDenied(_) => "AccessDeniedException",
            Error::Conflict(_) => "ConflictException",
            Error::Store(_) => "InternalFailure",
        }
    }

    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The HTTP status AWS answers with: the Smithy model's `httpError` traits (404 for
    /// `ResourceNotFound`, 409 for `ConflictException`), 500 for a storage failure, else 400.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::ResourceNotFound { .. } => 404,
            Error::Conflict(_) => 409,
            Error::Store(_) => 500,
            _ => 400,
        }
    }

    /// `AccessDeniedException` for `account` acting on another account's `resource`, with
    /// AWS's message (`operation`: `StartExecution`, ...).
    pub fn access_denied(account: &str, operation: &str, resource: &str) -> Error {
        Error::AccessDenied(format!(
            "User: arn:aws:iam::{account}:root is not authorized to perform: states:{operation} on resource: {resource} because no resource-based policy allows the states:{operation} action"
        ))
    }

    /// `ResourceNotFound` for `arn`, with AWS's message.
    pub(crate) fn resource_not_found(arn: &str) -> Error {
        Error::ResourceNotFound {
            message: format!("Resource not found: '{arn}'"),
            resource_name: arn.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    /// A store failure is called a storage failure once, whatever the store said (the API
    /// answers with this text).
    #[test]
    fn storage_failure_is_said_once() {
        let failures = [
            store::Error::backend("database or disk is full"),
            store::Error::Corrupt("lane 3 is missing".into()),
            store::Error::NotFound,
            store::Error::AlreadyExists,
            store::Error::Conflict,
        ];
        for failure in failures {
            let inner = failure.to_string();
            let message = Error::from(failure).to_string();
            assert_eq!(message, format!("storage failure: {inner}"));
            assert_eq!(message.matches("storage failure").count(), 1, "{message}");
        }
    }
}
