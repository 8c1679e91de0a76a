//! Service integrations: how a Task's resource is invoked.
//!
//! Each integration turns a [`Dispatch`] into a [`Reply`]. Activities and nested executions
//! live in the engine itself (`activities.rs`, `tasks.rs`); everything reached over the
//! network lives here.

pub mod mock;

use asl::interpreter::Dispatch;
use asl::task::Resource;

use crate::tasks::{failed, Reply};
use crate::Engine;

/// Invokes a resource that is neither an activity nor a nested execution.
pub async fn invoke(_engine: &Engine, resource: &Resource, _d: &Dispatch) -> Reply {
    unsupported(resource)
}

/// The task fails with `States.Runtime` naming the resource: never a hang.
pub fn unsupported(resource: &Resource) -> Reply {
    failed(
        "States.Runtime",
        format!(
            "The resource '{}' is not supported by stepwise yet; mock it with a MockConfigFile (--mock-config).",
            resource.arn()
        ),
    )
}
