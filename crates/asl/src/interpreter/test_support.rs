//! What the interpreter's unit tests build their checkpoints from.

use serde_json::json;

use super::{Container, Current, Lane, LaneStatus};

/// A `state` that holds `lanes` (failed ones, each in the state given or not started) when
/// there are any; `started`: whether its container has started them.
pub(super) fn holding(state: &str, started: bool, lanes: Vec<Option<Current>>) -> Current {
    let mut c = Current::new(state.into(), json!({}), 0);
    if !lanes.is_empty() {
        let lanes = lanes
            .into_iter()
            .map(|current| Lane {
                status: LaneStatus::Failed,
                input: json!({}),
                current,
                output: None,
                variables: Default::default(),
            })
            .collect();
        c.container = Some(Box::new(Container {
            lanes,
            started,
            max_concurrency: 0,
        }));
    }
    c
}
