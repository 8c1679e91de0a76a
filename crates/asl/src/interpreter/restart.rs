//! Where a redrive re-opens a closed execution, when it is not where it stopped (stepwise's
//! "redrive from a chosen state" and "redrive with new input"). This only moves the runtime;
//! the `Redrive` signal that follows re-opens it as usual: the chosen state is entered afresh
//! and the states after it run again, the states before it are not touched.
//!
//! A place is a path: a top-level state's name, or, inside the Parallel or Map state the
//! execution stopped in, `State/lane/State…` (the lane's index, then a state of its branch or
//! item processor).

use serde_json::Value;

use crate::definition::{Definition, Machine, StateKind};

use super::{Current, LaneStatus, Runtime};

/// Why a redrive cannot re-open at a place. Its `Display` is what the caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartError {
    UnknownState(String),
    NeverEntered(String),
    BadPath { path: String, reason: String },
    InputNeeded(String),
    NothingToReopen,
}

impl std::fmt::Display for RestartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartError::UnknownState(s) => {
                write!(f, "State '{s}' does not exist in the definition")
            }
            RestartError::NeverEntered(s) => write!(f, "State '{s}' was never entered"),
            RestartError::BadPath { path, reason } => {
                write!(f, "Invalid state path '{path}': {reason}")
            }
            RestartError::InputNeeded(s) => write!(
                f,
                "State '{s}' was never entered in this lane: give the input it should receive"
            ),
            RestartError::NothingToReopen => f.write_str("The execution has no state to re-open"),
        }
    }
}

impl std::error::Error for RestartError {}

/// Re-opens the redrive at `path` with `input`. For a top-level state `input` is required
/// (the caller reads it from the state's last `…StateEntered` event, or was given a new
/// one); inside a lane, without `input`, the state receives the input it is known to have
/// had: the one it received when the lane stopped in it, or, in a lane that never started,
/// the lane's input for its first state. For a state the lane left, the caller reads the
/// input from the history (see [`lane_trail`]). A Parallel or Map chosen as a whole re-runs
/// all its lanes.
pub fn restart_at(
    def: &Definition,
    runtime: &mut Runtime,
    path: &str,
    input: Option<Value>,
    now: i64,
) -> Result<(), RestartError> {
    let bad = |reason: &str| RestartError::BadPath {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let mut parts = path.split('/');
    let top = parts
        .next()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("empty"))?;
    let mut machine: &Machine = &def.root;
    if machine.state(top).is_none() {
        return Err(RestartError::UnknownState(top.to_owned()));
    }
    let Some(mut lane_index) = parts.next() else {
        let input = input.ok_or_else(|| RestartError::NeverEntered(top.to_owned()))?;
        runtime.current = Some(Current::new(top.to_owned(), input, now));
        return Ok(());
    };
    let mut current = runtime
        .current
        .as_mut()
        .filter(|c| c.state == top)
        .ok_or_else(|| bad(&format!("the execution did not stop in '{top}'")))?;
    let mut holder = top.to_owned();
    loop {
        let index: usize = lane_index
            .parse()
            .map_err(|_| bad(&format!("'{lane_index}' is not a lane index")))?;
        let state_name = parts
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("a lane index must be followed by a state name"))?;
        let holder_state = machine
            .state(&holder)
            .ok_or_else(|| RestartError::UnknownState(holder.clone()))?;
        machine = match &holder_state.kind {
            StateKind::Map(m) => &m.processor,
            StateKind::Parallel(p) => p
                .branches
                .get(index)
                .ok_or_else(|| bad(&format!("'{holder}' has no branch {index}")))?,
            _ => return Err(bad(&format!("'{holder}' is not a Parallel or Map state"))),
        };
        if machine.state(state_name).is_none() {
            return Err(RestartError::UnknownState(state_name.to_owned()));
        }
        let lane = current
            .container
            .as_mut()
            .and_then(|c| c.lanes.get_mut(index))
            .ok_or_else(|| bad(&format!("'{holder}' has no lane {index}")))?;
        match parts.next() {
            None => {
                // A lane keeps its input until it starts, then the input of the state it is
                // in: only those are known.
                let known = match &lane.current {
                    Some(c) if c.state == state_name => Some(c.input.clone()),
                    None if machine.start_at == state_name => Some(lane.input.clone()),
                    _ => None,
                };
                let input = input
                    .or(known)
                    .ok_or_else(|| RestartError::InputNeeded(state_name.to_owned()))?;
                let left = lane.current.as_ref().map(trail).unwrap_or_default();
                let mut restarted = Current::new(state_name.to_owned(), input, now);
                restarted.left = left;
                lane.current = Some(restarted);
                // Not succeeded, so the redrive runs it again.
                lane.status = LaneStatus::Failed;
                lane.output = None;
                return Ok(());
            }
            Some(next) => {
                lane_index = next;
                current = lane
                    .current
                    .as_mut()
                    .filter(|c| c.state == state_name)
                    .ok_or_else(|| {
                        bad(&format!(
                            "lane {index} of '{holder}' did not stop in '{state_name}'"
                        ))
                    })?;
                holder = state_name.to_owned();
            }
        }
    }
}

/// The `…StateEntered` event ids of the states a lane's state has been in, oldest first: the
/// states it left, then its own.
fn trail(current: &Current) -> Vec<u64> {
    let mut ids = current.left.clone();
    ids.extend(current.entered_event_id);
    ids
}

/// For a path into a lane (`State/lane/State…`), the `…StateEntered` event ids of the states
/// that lane has been in, oldest first: where to find the input of a state it left, which
/// the lane does not keep ([`RestartError::InputNeeded`]). Empty when the path does not lead
/// into a lane of the checkpoint.
pub fn lane_trail(runtime: &Runtime, path: &str) -> Vec<u64> {
    let mut parts = path.split('/').peekable();
    let top = parts.next().unwrap_or_default();
    let Some(mut current) = runtime.current.as_ref().filter(|c| c.state == top) else {
        return Vec::new();
    };
    while let (Some(index), Some(state)) = (parts.next(), parts.next()) {
        let lane = index
            .parse::<usize>()
            .ok()
            .and_then(|i| current.container.as_ref()?.lanes.get(i))
            .and_then(|l| l.current.as_ref());
        let Some(lane) = lane else {
            return Vec::new();
        };
        if parts.peek().is_none() {
            return trail(lane);
        }
        if lane.state != state {
            return Vec::new();
        }
        current = lane;
    }
    Vec::new()
}

/// Gives the state a redrive re-opens (the one the execution stopped in, at the top level) a
/// new input. A Parallel or Map given new input re-runs all its lanes.
pub fn replace_input(runtime: &mut Runtime, input: Value, now: i64) -> Result<(), RestartError> {
    let current = runtime
        .current
        .as_mut()
        .ok_or(RestartError::NothingToReopen)?;
    *current = Current::new(std::mem::take(&mut current.state), input, now);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state that entered at `entered` after leaving states entered at `left`, holding
    /// `lanes` (each in the state given, or not started).
    fn at(state: &str, left: &[u64], entered: u64, lanes: Vec<Option<Current>>) -> Current {
        let mut c = crate::interpreter::test_support::holding(state, true, lanes);
        (c.left, c.entered_event_id) = (left.to_vec(), Some(entered));
        c
    }

    #[test]
    fn lane_trail_names_the_states_the_lane_was_in() {
        let inner = at("X", &[11], 12, vec![]);
        let lane0 = at("B", &[5, 7], 9, vec![Some(inner)]);
        let runtime = Runtime {
            current: Some(at("Fan", &[], 3, vec![Some(lane0), None])),
            ..Runtime::new()
        };
        let cases: [(&str, &[u64]); 8] = [
            ("Fan/0/A", &[5, 7, 9]),
            ("Fan/0/B/0/W", &[11, 12]),
            ("Fan/1/A", &[]),
            ("Fan/2/A", &[]),
            ("Fan/0/C/0/W", &[]),
            ("Other/0/A", &[]),
            ("Fan", &[]),
            ("Fan/x/A", &[]),
        ];
        for (path, want) in cases {
            assert_eq!(lane_trail(&runtime, path), want, "{path}");
        }
    }
}
