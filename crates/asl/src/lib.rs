//! The Amazon States Language, as a pure library.
//!
//! Architecture invariant: nothing in this crate does IO, reads a clock or draws randomness.
//! Time and entropy come in as arguments ([`Entropy`], `now` in milliseconds), so every
//! behaviour is testable without a server and every run is replayable.

pub mod choice;
pub mod definition;
pub mod entropy;
pub mod error;
pub mod history;
pub mod interpreter;
pub mod intrinsics;
pub mod io;
pub mod jackson;
pub mod java_random;
pub mod json;
pub mod jsonata;
pub mod jsonpath;
pub mod lint;
pub mod memory;
pub mod resource_name;
pub mod task;
pub mod task_token;
pub mod template;
pub mod timestamp;

pub use entropy::Entropy;
pub use error::ErrorCause;

/// How tests find the corpora kept beside the repository (`../shared`).
#[cfg(test)]
#[path = "../../../tests/shared_dir.rs"]
mod shared_dir;
