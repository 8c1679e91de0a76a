//! Mocked integrations in the Step Functions Local MockConfigFile format.

use asl::interpreter::Dispatch;

use crate::tasks::Reply;
use crate::Engine;

/// The mocked reply for this task, if the execution runs a test case that mocks it.
pub async fn answer(_engine: &Engine, _execution_arn: &str, _d: &Dispatch) -> Option<Reply> {
    None
}
