//! What a redrive would run again: the unsuccessful state, or inside a Parallel or Map the
//! unsuccessful lanes, read from a closed execution's checkpoint the way the interpreter's
//! `Redrive` signal re-opens them. Used by the dry run of a bulk redrive and by
//! `DescribeExecutionRedrives`.
//!
//! A place is named by a path: the top-level state's name, then for each lane inside a
//! Parallel or Map the lane's index and the state it is at (`Fan/3/Work`). A lane that never
//! started is named by its index alone (`Fan/7`): it runs from its `StartAt`.

use asl::interpreter::{Current, LaneStatus, Runtime};

/// At most this many places are listed per execution (a Map of 10,000 failed iterations).
pub const MAX_PLACES: usize = 100;

/// The places a redrive would run again, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reruns {
    /// The first [`MAX_PLACES`] places.
    pub places: Vec<String>,
    /// How many there are in all.
    pub total: usize,
}

impl Reruns {
    fn add(&mut self, place: String) {
        if self.places.len() < MAX_PLACES {
            self.places.push(place);
        }
        self.total += 1;
    }
}

/// The places a redrive of a closed execution with this runtime would run again. As the
/// interpreter does, `States.DataLimitExceeded` re-runs the state whole.
pub fn reruns(runtime: &Runtime) -> Reruns {
    let mut out = Reruns::default();
    if let Some(current) = &runtime.current {
        let whole = runtime.error.as_deref() == Some(asl::error::names::DATA_LIMIT_EXCEEDED);
        walk(current, whole, "", &mut out);
    }
    out
}

fn walk(current: &Current, whole: bool, prefix: &str, out: &mut Reruns) {
    let here = format!("{prefix}{}", current.state);
    let container = current.container.as_ref().filter(|_| !whole);
    let Some(container) = container else {
        out.add(here);
        return;
    };
    let before = out.total;
    for (i, lane) in container.lanes.iter().enumerate() {
        if lane.status == LaneStatus::Succeeded {
            continue;
        }
        match &lane.current {
            Some(inner) => walk(inner, false, &format!("{here}/{i}/"), out),
            None => out.add(format!("{here}/{i}")),
        }
    }
    if out.total == before {
        // Every lane succeeded: the state itself failed after them (its ResultSelector, …).
        out.add(here);
    }
}
