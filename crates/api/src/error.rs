//! The one place where errors become AWS error responses.

use axum::http::StatusCode;
use engine::Error;

/// An AWS JSON 1.0 error response: `{"__type": "...#Code", "message": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The fully qualified `__type` (namespace#Code).
    pub type_name: String,
    pub message: String,
    /// `ValidationException`'s `reason`.
    pub reason: Option<&'static str>,
    /// `ResourceNotFound`'s and `TooManyTags`'s `resourceName`.
    pub resource_name: Option<String>,
}

/// The namespace real Step Functions responses use for service exceptions.
const SFN: &str = "com.amazonaws.swf.service.v2.model";
const CORAL_SERVICE: &str = "com.amazon.coral.service";
const CORAL_VALIDATE: &str = "com.amazon.coral.validate";

impl ApiError {
    fn new(namespace: &str, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            type_name: format!("{namespace}#{code}"),
            message: message.into(),
            reason: None,
            resource_name: None,
        }
    }

    /// A Step Functions error code (`StateMachineDoesNotExist`, ...).
    pub fn sfn(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(SFN, code, message)
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(CORAL_VALIDATE, "ValidationException", message)
    }

    /// An error of AWS's request layer (authentication and authorization).
    pub fn coral(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(CORAL_SERVICE, code, message)
    }

    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new(CORAL_SERVICE, "SerializationException", message)
    }

    pub fn unknown_operation(target: &str) -> ApiError {
        ApiError::new(
            CORAL_SERVICE,
            "UnknownOperationException",
            format!("The operation '{target}' is not recognized by AWSStepFunctions"),
        )
    }

    /// An operation of the Step Functions API that this build does not implement yet.
    pub fn not_supported(op: &str) -> ApiError {
        ApiError::new(
            SFN,
            "UnsupportedOperation",
            format!("The operation '{op}' is not supported by stepwise yet"),
        )
    }

    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            type_name: format!("{CORAL_SERVICE}#RequestEntityTooLargeException"),
            message: format!("Request body exceeds the maximum size of {limit} bytes"),
            reason: None,
            resource_name: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            type_name: format!("{CORAL_SERVICE}#InternalFailure"),
            message: message.into(),
            reason: None,
            resource_name: None,
        }
    }

    pub fn body(&self) -> String {
        let mut body = serde_json::json!({ "__type": self.type_name, "message": self.message });
        if let Some(reason) = self.reason {
            body["reason"] = reason.into();
        }
        if let Some(name) = &self.resource_name {
            body["resourceName"] = name.as_str().into();
        }
        body.to_string()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        match e {
            Error::Validation(m) => ApiError::validation(m),
            Error::CannotUpdateCompletedMapRun(m) => ApiError {
                reason: Some("CANNOT_UPDATE_COMPLETED_MAP_RUN"),
                ..ApiError::validation(m)
            },
            Error::InvalidRoutingConfiguration(m) => ApiError {
                reason: Some("INVALID_ROUTING_CONFIGURATION"),
                ..ApiError::validation(m)
            },
            // The statuses of the Smithy model's `httpError` traits (ARCHITECTURE.md).
            Error::ResourceNotFound {
                message,
                resource_name,
            } => ApiError {
                status,
                resource_name: Some(resource_name),
                ..ApiError::sfn("ResourceNotFound", message)
            },
            Error::Conflict(m) => ApiError {
                status,
                ..ApiError::sfn("ConflictException", m)
            },
            // An IAM-level refusal: coral's namespace, as AWS answers it.
            Error::AccessDenied(m) => ApiError {
                status,
                ..ApiError::coral("AccessDeniedException", m)
            },
            Error::TooManyTags {
                message,
                resource_name,
            } => ApiError {
                resource_name: Some(resource_name),
                ..ApiError::sfn("TooManyTags", message)
            },
            // The engine's message already names the storage failure: said once.
            e @ Error::Store(_) => {
                tracing::error!(error = %e, "request failed");
                ApiError::internal(e.to_string())
            }
            other => ApiError::sfn(other.code(), other.message()),
        }
    }
}
