//! The engine's errors. The API crate maps each to its AWS error code and message.

/// What can go wrong in an operation, in the engine's terms.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid ARN: {0}")]
    InvalidArn(String),
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("invalid definition: {0}")]
    InvalidDefinition(String),
    #[error("invalid execution input: {0}")]
    InvalidExecutionInput(String),
    #[error("state machine does not exist: {0}")]
    StateMachineDoesNotExist(String),
    #[error("state machine already exists: {0}")]
    StateMachineAlreadyExists(String),
    #[error("execution does not exist: {0}")]
    ExecutionDoesNotExist(String),
    #[error("execution already exists: {0}")]
    ExecutionAlreadyExists(String),
    #[error("resource not found: {0}")]
    ResourceNotFound(String),
    #[error("state machine type not supported: {0}")]
    StateMachineTypeNotSupported(String),
    /// A request that breaks a rule of the operation (AWS's `ValidationException`).
    #[error("validation: {0}")]
    Validation(String),
    #[error("missing required parameter: {0}")]
    MissingRequiredParameter(String),
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("storage: {0}")]
    Store(#[from] store::Error),
}
