//! The JSONPath input/output pipeline: `InputPath`, `ResultPath`, `OutputPath`, and the
//! payload size limit.

use serde_json::{Map, Value};

use crate::jsonpath::{JsonPath, ReferencePath, Root};
use crate::ErrorCause;

/// An `InputPath` or `OutputPath` field.
#[derive(Debug, Clone)]
pub enum PathField {
    /// Absent: `$`, the whole value.
    Default,
    /// JSON `null`: discard the value, `{}`.
    Null,
    Path(JsonPath),
}

/// A `ResultPath` field.
#[derive(Debug, Clone)]
pub enum ResultPathField {
    /// Absent: the result replaces the input.
    Default,
    /// JSON `null`: the result is discarded, the input passes through.
    Null,
    Path(ReferencePath),
}

/// Applies `InputPath` to the raw state input.
pub fn input_path(
    field: &PathField,
    scope_input: &Value,
    context: &Value,
) -> Result<Value, ErrorCause> {
    select(field, scope_input, context, None)
}

/// Applies `OutputPath` to the state's combined output.
pub fn output_path(
    field: &PathField,
    output: &Value,
    context: &Value,
) -> Result<Value, ErrorCause> {
    select(field, output, context, None)
}

/// `InputPath`/`OutputPath` with workflow variables in scope (for `$name` paths).
pub fn select(
    field: &PathField,
    input: &Value,
    context: &Value,
    variables: Option<&Map<String, Value>>,
) -> Result<Value, ErrorCause> {
    let path = match field {
        PathField::Default => return Ok(input.clone()),
        PathField::Null => return Ok(Value::Object(Map::new())),
        PathField::Path(p) => p,
    };
    let root = match path.root() {
        Root::Input => Ok(input),
        Root::Context => Ok(context),
        Root::Variable(name) => variables
            .and_then(|vars| vars.get(name))
            .ok_or_else(|| format!("No results for path: {}", path.normalized())),
    };
    root.and_then(|r| path.query(r))
        .map_err(|reason| ErrorCause::runtime(format!("Invalid path '{}' : {reason}", path.text())))
}

/// Applies `ResultPath`: combines the state's raw input with its result.
pub fn result_path(
    field: &ResultPathField,
    state_input: Value,
    result: Value,
) -> Result<Value, ErrorCause> {
    match field {
        ResultPathField::Default => Ok(result),
        ResultPathField::Null => Ok(state_input),
        ResultPathField::Path(p) => p.set(state_input, result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(text: &str) -> PathField {
        PathField::Path(JsonPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")))
    }

    #[test]
    fn path_table() {
        let input = json!({"int-literal": 0, "a": {"b": [1, 2]}});
        let context = json!({"Execution": {"Input": {"x": 1}}});
        let vars = json!({"v": {"w": 5}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let runtime = |c: &str| Err(ErrorCause::runtime(c));
        let cases = [
            (PathField::Default, Ok(input.clone())),
            (PathField::Null, Ok(json!({}))),
            (path("$"), Ok(input.clone())),
            (path("$.a.b[1]"), Ok(json!(2))),
            (path("$.a.b[*]"), Ok(json!([1, 2]))),
            (path("$$.Execution.Input"), Ok(json!({"x": 1}))),
            (path("$v.w"), Ok(json!(5))),
            (
                path("$.NoSuchInputPath"),
                runtime(
                    "Invalid path '$.NoSuchInputPath' : No results for path: $['NoSuchInputPath']",
                ),
            ),
            (
                path("$.x.y"),
                runtime("Invalid path '$.x.y' : Missing property in path $['x']"),
            ),
            (
                path("$nope"),
                runtime("Invalid path '$nope' : No results for path: $"),
            ),
        ];
        for (field, want) in cases {
            assert_eq!(
                select(&field, &input, &context, Some(&vars)),
                want,
                "{field:?}"
            );
        }
        assert_eq!(
            input_path(&path("$.a"), &input, &context),
            Ok(json!({"b": [1, 2]}))
        );
        assert_eq!(
            output_path(&PathField::Null, &input, &context),
            Ok(json!({}))
        );
    }

    #[test]
    fn result_path_table() {
        let reference = |t: &str| {
            ResultPathField::Path(ReferencePath::parse(t).unwrap_or_else(|e| panic!("{t}: {e}")))
        };
        let cases = [
            (ResultPathField::Default, Ok(json!("R"))),
            (ResultPathField::Null, Ok(json!({"a": 1}))),
            (reference("$"), Ok(json!("R"))),
            (reference("$.r.s"), Ok(json!({"a": 1, "r": {"s": "R"}}))),
            (
                reference("$.a.b"),
                Err(ErrorCause::new(
                    "States.ReferencePathConflict",
                    "Unable to apply ReferencePath $.a.b to input {\"a\":1}",
                )),
            ),
        ];
        for (field, want) in cases {
            assert_eq!(
                result_path(&field, json!({"a": 1}), json!("R")),
                want,
                "{field:?}"
            );
        }
    }
}
