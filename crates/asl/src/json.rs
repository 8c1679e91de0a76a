//! How deeply JSON values may nest.
//!
//! Every walk over a `serde_json::Value` (cloning, comparing, serialising, dropping) recurses
//! once per level, so a value nested without bound can overflow a thread's stack and abort
//! the process. Text that stepwise parses (an execution input, a task result) is held to
//! serde_json's 128 levels; values built while an execution runs (state outputs, variables,
//! JSONata results) may nest up to [`MAX_DEPTH`] levels, and a state whose output or
//! variables nest deeper fails with `States.Runtime`. [GUESS] AWS documents no nesting
//! limit; these bounds keep every walk well inside a 2 MiB stack.

use serde_json::Value;

/// The deepest a value built at run time may nest (a scalar is depth 0, `[1]` depth 1).
pub const MAX_DEPTH: usize = 256;

/// Whether `value` nests deeper than `max` levels. Walks the value without recursion, so
/// it is safe on any value.
pub fn deeper_than(value: &Value, max: usize) -> bool {
    tree_deeper_than(value, max, |v| match v {
        Value::Array(items) => Some(Box::new(items.iter())),
        Value::Object(members) => Some(Box::new(members.values())),
        _ => None,
    })
}

/// The children of a tree node (`None` for a leaf).
pub type Children<'v, T> = Option<Box<dyn Iterator<Item = &'v T> + 'v>>;

/// [`deeper_than`] for any tree of values (e.g. JSONata's), given its nodes' children.
pub fn tree_deeper_than<'v, T>(
    value: &'v T,
    max: usize,
    children: impl Fn(&'v T) -> Children<'v, T>,
) -> bool {
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let Some(below) = children(v) else { continue };
        if depth == max {
            return true;
        }
        stack.extend(below.map(|c| (c, depth + 1)));
    }
    false
}

/// Drops `value` level by level, without recursion, so a value of any depth can be let go.
pub fn dismantle(value: Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(members) => stack.extend(members.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_table() {
        // Built by hand: `json!` would serialise the inner value, recursively.
        let nested = |n: usize| {
            (0..n).fold(json!(1), |v, i| match i % 2 {
                0 => Value::Array(vec![v]),
                _ => Value::Object([("k".to_owned(), v)].into_iter().collect()),
            })
        };
        for (value, depth) in [
            (json!(1), 0),
            (json!([]), 1),
            (json!({"a": [1, {"b": 2}]}), 3),
            (nested(10), 10),
        ] {
            assert!(!deeper_than(&value, depth), "{value} within {depth}");
            assert!(
                depth == 0 || deeper_than(&value, depth - 1),
                "{value} over {depth}"
            );
        }
        let deep = nested(100_000);
        assert!(deeper_than(&deep, MAX_DEPTH));
        // Dropping it as usual would recurse 100,000 levels.
        dismantle(deep);
    }
}
