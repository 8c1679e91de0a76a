//! Whether a closed execution can be redriven onto another definition (stepwise's "redrive
//! onto another definition"). The redrive resumes the checkpoint as it is, so every state it
//! resumes must exist in the new definition with a shape the checkpoint fits: the state it
//! re-opens and, inside a Parallel or Map state whose lanes are kept, the state each
//! unsuccessful lane is in. Lanes that never started begin at the new `StartAt`, and a state
//! re-run whole (a chosen or re-input Parallel or Map, `States.DataLimitExceeded`) needs only
//! its type to match. A Parallel state's lanes are its branches by index, so their number
//! must match too.

use crate::definition::{Definition, Machine, State, StateKind};

use super::{Current, LaneStatus, Runtime};

/// A resumed state the new definition does not fit. Its `Display` is what the caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The state's path, as a redrive names it (`Fan/3/Work`).
    pub path: String,
    pub reason: ConflictReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictReason {
    Missing,
    Type {
        old: &'static str,
        new: &'static str,
    },
    MapMode {
        old_distributed: bool,
    },
    Branches {
        old: usize,
        new: usize,
    },
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = &self.path;
        match &self.reason {
            ConflictReason::Missing => write!(f, "state '{path}' does not exist"),
            ConflictReason::Type { old, new } => {
                write!(
                    f,
                    "state '{path}' is a {old} state, the new one a {new} state"
                )
            }
            ConflictReason::MapMode { old_distributed } => {
                let mode = |d: bool| if d { "DISTRIBUTED" } else { "INLINE" };
                write!(
                    f,
                    "Map state '{path}' runs {}, the new one {}",
                    mode(*old_distributed),
                    mode(!old_distributed)
                )
            }
            ConflictReason::Branches { old, new } => {
                write!(
                    f,
                    "Parallel state '{path}' has {old} branches, the new one {new}"
                )
            }
        }
    }
}

/// Every place where `new` does not fit the redrive of a closed execution that ran `old`
/// and whose checkpoint (as the redrive will re-open it) is `runtime`; empty when it fits.
pub fn conflicts(old: &Definition, new: &Definition, runtime: &Runtime) -> Vec<Conflict> {
    let mut out = Vec::new();
    if let Some(current) = &runtime.current {
        let whole = runtime.error.as_deref() == Some(crate::error::names::DATA_LIMIT_EXCEEDED);
        walk(&old.root, &new.root, current, whole, "", &mut out);
    }
    out
}

fn walk(
    old: &Machine,
    new: &Machine,
    current: &Current,
    whole: bool,
    prefix: &str,
    out: &mut Vec<Conflict>,
) {
    let path = format!("{prefix}{}", current.state);
    let conflict = |reason| Conflict {
        path: path.clone(),
        reason,
    };
    let Some(new_state) = new.state(&current.state) else {
        out.push(conflict(ConflictReason::Missing));
        return;
    };
    // A state new to the definition (chosen with an explicit input) has nothing to fit.
    let Some(old_state) = old.state(&current.state) else {
        return;
    };
    let (old_type, new_type) = (old_state.kind.event_prefix(), new_state.kind.event_prefix());
    if old_type != new_type {
        out.push(conflict(ConflictReason::Type {
            old: old_type,
            new: new_type,
        }));
        return;
    }
    if let (StateKind::Map(o), StateKind::Map(n)) = (&old_state.kind, &new_state.kind) {
        if o.distributed.is_some() != n.distributed.is_some() {
            out.push(conflict(ConflictReason::MapMode {
                old_distributed: o.distributed.is_some(),
            }));
            return;
        }
    }
    let Some(container) = current.container.as_ref().filter(|_| !whole) else {
        return;
    };
    if let (StateKind::Parallel(o), StateKind::Parallel(n)) = (&old_state.kind, &new_state.kind) {
        // The lanes of the branches both have are still checked: every conflict is listed.
        if o.branches.len() != n.branches.len() {
            out.push(conflict(ConflictReason::Branches {
                old: o.branches.len(),
                new: n.branches.len(),
            }));
        }
    }
    for (i, lane) in container.lanes.iter().enumerate() {
        if lane.status == LaneStatus::Succeeded {
            continue;
        }
        let (Some(inner), Some(old_lane), Some(new_lane)) = (
            &lane.current,
            lane_machine(old_state, i),
            lane_machine(new_state, i),
        ) else {
            continue;
        };
        walk(
            old_lane,
            new_lane,
            inner,
            false,
            &format!("{path}/{i}/"),
            out,
        );
    }
}

/// The machine lane `i` of a Parallel or Map state runs.
fn lane_machine(state: &State, i: usize) -> Option<&Machine> {
    match &state.kind {
        StateKind::Parallel(p) => p.branches.get(i),
        StateKind::Map(m) => Some(&m.processor),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(v: serde_json::Value) -> Definition {
        Definition::parse(&v.to_string()).expect("valid definition")
    }

    fn at(state: &str, lanes: Vec<Option<Current>>) -> Current {
        crate::interpreter::test_support::holding(state, false, lanes)
    }

    fn runtime(current: Current) -> Runtime {
        Runtime {
            current: Some(current),
            ..Runtime::new()
        }
    }

    fn pass(next_end: &str) -> serde_json::Value {
        match next_end {
            "" => json!({"Type": "Pass", "End": true}),
            next => json!({"Type": "Pass", "Next": next}),
        }
    }

    fn par(branches: &[&str]) -> serde_json::Value {
        let branches: Vec<_> = branches
            .iter()
            .map(|s| json!({"StartAt": s, "States": {*s: pass("")}}))
            .collect();
        json!({"Type": "Parallel", "Branches": branches, "End": true})
    }

    /// Each case: the old definition's states, the new one's, where the checkpoint stopped,
    /// and the conflicts expected.
    #[test]
    fn conflicts_list_every_resumed_state_that_does_not_fit() {
        let old = def(json!({"StartAt": "A", "States": {
            "A": pass("P"), "P": par(&["X", "Y"])}}));
        let cases = [
            (
                "same definition",
                json!({"A": pass("P"), "P": par(&["X", "Y"])}),
                at("P", vec![Some(at("X", vec![])), None]),
                vec![],
            ),
            (
                "the failed state removed",
                json!({"A": pass("")}),
                at("P", vec![]),
                vec!["state 'P' does not exist"],
            ),
            (
                "another type",
                json!({"A": pass("P"), "P": pass("")}),
                at("P", vec![]),
                vec!["state 'P' is a Parallel state, the new one a Pass state"],
            ),
            (
                "a branch added",
                json!({"A": pass("P"), "P": par(&["X", "Y", "Z"])}),
                at("P", vec![Some(at("X", vec![])), None]),
                vec!["Parallel state 'P' has 2 branches, the new one 3"],
            ),
            (
                "the lane's state renamed",
                json!({"A": pass("P"), "P": par(&["X2", "Y"])}),
                at("P", vec![Some(at("X", vec![])), None]),
                vec!["state 'P/0/X' does not exist"],
            ),
            (
                "a branch added and the lane's state renamed: both listed",
                json!({"A": pass("P"), "P": par(&["X2", "Y", "Z"])}),
                at("P", vec![Some(at("X", vec![])), None]),
                vec![
                    "Parallel state 'P' has 2 branches, the new one 3",
                    "state 'P/0/X' does not exist",
                ],
            ),
            (
                "re-run whole: only the type counts",
                json!({"A": pass("P"), "P": par(&["X", "Y", "Z"])}),
                at("P", vec![]),
                vec![],
            ),
        ];
        for (name, states, current, want) in cases {
            let new = def(json!({"StartAt": "A", "States": states}));
            let got: Vec<String> = conflicts(&old, &new, &runtime(current))
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
