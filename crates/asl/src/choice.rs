//! Choice rules (JSONPath query language): parsed once from a `Choices[]` entry, evaluated
//! against a state's effective input.
//!
//! Semantics, as recorded on AWS:
//! - a comparison whose operands have the wrong type is simply false (`NumericEquals` on a
//!   string, `TimestampEquals` on a string that is not a timestamp, …), never an error;
//! - a `Variable` (or a `…Path` operand) that does not resolve fails the state with
//!   `States.Runtime` — except under `IsPresent`, which exists to ask exactly that;
//! - numbers compare by value, exactly: `1 == 1.0`, and integers beyond 2^53 do not collapse;
//! - strings compare by UTF-16 code unit, as Java does; timestamps by instant
//!   (see [`crate::timestamp`]).

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::definition::Payload;
use crate::jsonpath::{JsonPath, Root};
use crate::template::Template;
use crate::{jsonata, timestamp, ErrorCause};

/// One entry of a Choice state's `Choices`.
#[derive(Debug, Clone)]
pub struct Choice {
    pub condition: Condition,
    pub next: String,
    /// The entry's `Assign` block, applied when this entry is taken.
    pub assign: Option<Payload>,
    /// The entry's JSONata `Output`, used when this entry is taken.
    pub output: Option<jsonata::Template>,
}

/// When an entry is taken: a JSONPath rule, or a JSONata `Condition`.
#[derive(Debug, Clone)]
pub enum Condition {
    Rule(Rule),
    Jsonata(jsonata::Template),
}

/// A problem in a Choice rule: AWS's wording and the JSON pointer of the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub message: String,
    pub location: String,
}

impl From<Invalid> for String {
    fn from(invalid: Invalid) -> String {
        invalid.message
    }
}

/// A compiled Choice rule (a comparison, or `And`/`Or`/`Not` over nested rules).
#[derive(Debug, Clone)]
pub struct Rule(Node);

#[derive(Debug, Clone)]
enum Node {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    IsPresent { variable: JsonPath, expected: bool },
    Test { variable: JsonPath, test: Test },
}

#[derive(Debug, Clone)]
enum Test {
    Is(Kind, bool),
    Compare(Kind, Op, Operand),
    Matches(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Numeric,
    String,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

#[derive(Debug, Clone)]
enum Operand {
    Literal(Value),
    Path(JsonPath),
}

/// What a comparison operator's name says.
enum Operator {
    IsPresent,
    Is(Kind),
    Compare { kind: Kind, op: Op, path: bool },
    Matches,
}

/// Parses one `Choices[]` entry found at `location` (e.g. `/States/S/Choices[0]`).
pub fn parse_choice(value: &Value, location: &str) -> Result<Choice, Invalid> {
    let obj = as_object(value, location)?;
    let next = match obj.get("Next") {
        Some(Value::String(next)) => next.clone(),
        Some(_) => {
            return Err(invalid(
                "The field 'Next' must be a string",
                format!("{location}/Next"),
            ))
        }
        None => {
            return Err(invalid(
                "The field 'Next' is required but was missing",
                location,
            ))
        }
    };
    let rule = parse_rule(obj, location, &["Next", "Assign"])?;
    let assign = match obj.get("Assign") {
        Some(v) => Some(Payload::Path(
            Template::compile(v).map_err(|m| invalid(m, format!("{location}/Assign")))?,
        )),
        None => None,
    };
    Ok(Choice {
        condition: Condition::Rule(rule),
        next,
        assign,
        output: None,
    })
}

/// Whether `field` belongs to a JSONPath choice rule (`Variable`, `And`, `StringEquals`, ...).
pub fn is_rule_field(field: &str) -> bool {
    matches!(field, "Variable" | "And" | "Or" | "Not") || operator(field).is_some()
}

/// The first entry whose JSONPath rule holds, if any.
pub fn select<'c>(
    choices: &'c [Choice],
    input: &Value,
    context: &Value,
    variables: &Map<String, Value>,
) -> Result<Option<&'c Choice>, ErrorCause> {
    for choice in choices {
        if let Condition::Rule(rule) = &choice.condition {
            if rule.evaluate(input, context, variables)? {
                return Ok(Some(choice));
            }
        }
    }
    Ok(None)
}

impl Rule {
    /// Evaluates against the effective input (`$`), the context object (`$$`) and the
    /// workflow variables (`$name`).
    pub fn evaluate(
        &self,
        input: &Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<bool, ErrorCause> {
        self.eval(&Roots {
            input,
            context,
            variables,
        })
    }

    fn eval(&self, roots: &Roots) -> Result<bool, ErrorCause> {
        match &self.0 {
            Node::And(rules) => {
                for rule in rules {
                    if !rule.eval(roots)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Node::Or(rules) => {
                for rule in rules {
                    if rule.eval(roots)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Node::Not(rule) => Ok(!rule.eval(roots)?),
            Node::IsPresent { variable, expected } => {
                Ok(roots.resolve(variable).is_some() == *expected)
            }
            Node::Test { variable, test } => {
                let value = roots.require(variable)?;
                Ok(match test {
                    Test::Is(kind, expected) => is_kind(*kind, &value) == *expected,
                    Test::Compare(kind, op, Operand::Literal(literal)) => {
                        compare(*kind, &value, literal).is_some_and(|o| op.holds(o))
                    }
                    Test::Compare(kind, op, Operand::Path(path)) => {
                        let other = roots.require(path)?;
                        compare(*kind, &value, &other).is_some_and(|o| op.holds(o))
                    }
                    Test::Matches(segments) => {
                        value.as_str().is_some_and(|s| glob_matches(segments, s))
                    }
                })
            }
        }
    }
}

/// The values paths are evaluated against.
struct Roots<'a> {
    input: &'a Value,
    context: &'a Value,
    variables: &'a Map<String, Value>,
}

impl Roots<'_> {
    fn resolve(&self, path: &JsonPath) -> Option<Value> {
        let root = match path.root() {
            Root::Input => self.input,
            Root::Context => self.context,
            Root::Variable(name) => self.variables.get(name)?,
        };
        path.select(root)
    }

    fn require(&self, path: &JsonPath) -> Result<Value, ErrorCause> {
        self.resolve(path).ok_or_else(|| {
            ErrorCause::runtime(format!(
                "Invalid path '{}': The choice state's condition path references an invalid value.",
                path.text()
            ))
        })
    }
}

impl Op {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Equals => ordering.is_eq(),
            Op::LessThan => ordering.is_lt(),
            Op::GreaterThan => ordering.is_gt(),
            Op::LessThanEquals => ordering.is_le(),
            Op::GreaterThanEquals => ordering.is_ge(),
        }
    }
}

fn is_kind(kind: Kind, value: &Value) -> bool {
    match kind {
        Kind::Null => value.is_null(),
        Kind::Numeric => value.is_number(),
        Kind::String => value.is_string(),
        Kind::Boolean => value.is_boolean(),
        Kind::Timestamp => value.as_str().and_then(timestamp::parse_nanos).is_some(),
    }
}

/// Orders two values as `kind`; `None` when either is not of that kind.
fn compare(kind: Kind, left: &Value, right: &Value) -> Option<Ordering> {
    match (kind, left, right) {
        (Kind::String, Value::String(a), Value::String(b)) => {
            Some(a.encode_utf16().cmp(b.encode_utf16()))
        }
        (Kind::Numeric, Value::Number(a), Value::Number(b)) => Some(compare_numbers(a, b)),
        (Kind::Boolean, Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Kind::Timestamp, Value::String(a), Value::String(b)) => {
            Some(timestamp::parse_nanos(a)?.cmp(&timestamp::parse_nanos(b)?))
        }
        _ => None,
    }
}

/// Exact numeric order across integers and floats.
fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    let integer = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    let float = |n: &Number| n.as_f64().unwrap_or(0.0);
    match (integer(a), integer(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(x), None) => compare_integer_float(x, float(b)),
        (None, Some(y)) => compare_integer_float(y, float(a)).reverse(),
        (None, None) => float(a).partial_cmp(&float(b)).unwrap_or(Ordering::Equal),
    }
}

/// Rounding `i` to f64 is monotonic, so a strict float order is the true order; when the
/// rounded value equals `f`, `f` is integral and the exact comparison is in i128.
fn compare_integer_float(i: i128, f: f64) -> Ordering {
    match (i as f64).partial_cmp(&f) {
        Some(Ordering::Equal) | None => i.cmp(&(f as i128)),
        Some(ordering) => ordering,
    }
}

/// `StringMatches`: the pattern's literal pieces between unescaped `*` wildcards.
fn glob_segments(pattern: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => segments.push(std::mem::take(&mut current)),
            '\\' if matches!(chars.peek(), Some('*' | '\\')) => current.extend(chars.next()),
            c => current.push(c),
        }
    }
    segments.push(current);
    segments
}

fn glob_matches(segments: &[String], text: &str) -> bool {
    let Some((first, rest)) = segments.split_first() else {
        return text.is_empty();
    };
    let Some(mut tail) = text.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return tail.is_empty();
    };
    for segment in middle {
        match tail.find(segment.as_str()) {
            Some(at) => tail = &tail[at + segment.len()..],
            None => return false,
        }
    }
    tail.ends_with(last.as_str())
}

fn operator(name: &str) -> Option<Operator> {
    const KINDS: [(&str, Kind); 4] = [
        ("String", Kind::String),
        ("Numeric", Kind::Numeric),
        ("Boolean", Kind::Boolean),
        ("Timestamp", Kind::Timestamp),
    ];
    match name {
        "StringMatches" => return Some(Operator::Matches),
        "IsPresent" => return Some(Operator::IsPresent),
        "IsNull" => return Some(Operator::Is(Kind::Null)),
        "IsNumeric" => return Some(Operator::Is(Kind::Numeric)),
        "IsString" => return Some(Operator::Is(Kind::String)),
        "IsBoolean" => return Some(Operator::Is(Kind::Boolean)),
        "IsTimestamp" => return Some(Operator::Is(Kind::Timestamp)),
        _ => {}
    }
    let (base, path) = name
        .strip_suffix("Path")
        .map_or((name, false), |b| (b, true));
    let (kind, relation) = KINDS
        .iter()
        .find_map(|(prefix, kind)| Some((*kind, base.strip_prefix(prefix)?)))?;
    let op = match relation {
        "Equals" => Op::Equals,
        "LessThan" => Op::LessThan,
        "GreaterThan" => Op::GreaterThan,
        "LessThanEquals" => Op::LessThanEquals,
        "GreaterThanEquals" => Op::GreaterThanEquals,
        _ => return None,
    };
    (kind != Kind::Boolean || op == Op::Equals).then_some(Operator::Compare { kind, op, path })
}

/// Parses the rule in `obj`; `extra` lists the entry-level fields the caller handles.
fn parse_rule(obj: &Map<String, Value>, at: &str, extra: &[&str]) -> Result<Rule, Invalid> {
    let mut variable = None;
    let mut operators = Vec::new();
    let mut combinators = Vec::new();
    for (key, value) in obj {
        match key.as_str() {
            "Comment" => {}
            "Variable" => variable = Some(value),
            "And" | "Or" | "Not" => combinators.push((key.as_str(), value)),
            k if extra.contains(&k) => {}
            k => match operator(k) {
                Some(op) => operators.push((k, op, value)),
                None => {
                    return Err(invalid(
                        format!("The field '{k}' is not supported by Step Functions"),
                        at,
                    ))
                }
            },
        }
    }
    match (combinators.as_slice(), variable, operators.as_slice()) {
        ([(name, value)], None, []) => parse_combinator(name, value, &format!("{at}/{name}")),
        ([], Some(variable), [(name, op, value)]) => {
            let variable = parse_path("Variable", variable, &format!("{at}/Variable"))?;
            Ok(Rule(parse_test(variable, name, op, value, &format!("{at}/{name}"))?))
        }
        _ => Err(invalid(
            "A choice rule must contain either exactly one of 'And', 'Or' and 'Not', or a 'Variable' and exactly one comparison operator",
            at,
        )),
    }
}

fn parse_combinator(name: &str, value: &Value, at: &str) -> Result<Rule, Invalid> {
    if name == "Not" {
        return Ok(Rule(Node::Not(Box::new(parse_rule(
            as_object(value, at)?,
            at,
            &[],
        )?))));
    }
    let entries = match value {
        Value::Array(entries) if !entries.is_empty() => entries,
        Value::Array(_) => return Err(invalid("Value cannot be empty", at)),
        _ => return Err(invalid(format!("The field '{name}' must be an array"), at)),
    };
    let rules = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let at = format!("{at}[{i}]");
            parse_rule(as_object(entry, &at)?, &at, &[])
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Rule(if name == "And" {
        Node::And(rules)
    } else {
        Node::Or(rules)
    }))
}

/// The comparison `name: value` on `variable`.
fn parse_test(
    variable: JsonPath,
    name: &str,
    op: &Operator,
    value: &Value,
    at: &str,
) -> Result<Node, Invalid> {
    let test = match *op {
        Operator::IsPresent => {
            let expected = parse_boolean(name, value, at)?;
            return Ok(Node::IsPresent { variable, expected });
        }
        Operator::Is(kind) => Test::Is(kind, parse_boolean(name, value, at)?),
        Operator::Matches => match value {
            Value::String(pattern) => Test::Matches(glob_segments(pattern)),
            _ => return Err(invalid(format!("The field '{name}' must be a string"), at)),
        },
        Operator::Compare {
            kind,
            op,
            path: true,
        } => Test::Compare(kind, op, Operand::Path(parse_path(name, value, at)?)),
        Operator::Compare {
            kind,
            op,
            path: false,
        } => Test::Compare(
            kind,
            op,
            Operand::Literal(parse_literal(name, kind, value, at)?),
        ),
    };
    Ok(Node::Test { variable, test })
}

/// The literal operand of a comparison, checked against the operator's type.
fn parse_literal(name: &str, kind: Kind, value: &Value, at: &str) -> Result<Value, Invalid> {
    let (well_typed, expected) = match kind {
        Kind::Numeric => (value.is_number(), "a number"),
        Kind::Boolean => (value.is_boolean(), "a boolean"),
        _ => (value.is_string(), "a string"),
    };
    if !well_typed {
        return Err(invalid(
            format!("The field '{name}' must be {expected}"),
            at,
        ));
    }
    if kind == Kind::Timestamp && value.as_str().and_then(timestamp::parse_nanos).is_none() {
        return Err(invalid("String does not match RFC3339 timestamp", at));
    }
    Ok(value.clone())
}

fn parse_boolean(name: &str, value: &Value, at: &str) -> Result<bool, Invalid> {
    value
        .as_bool()
        .ok_or_else(|| invalid(format!("The field '{name}' must be a boolean"), at))
}

fn parse_path(name: &str, value: &Value, at: &str) -> Result<JsonPath, Invalid> {
    value
        .as_str()
        .and_then(|text| JsonPath::parse(text).ok())
        .ok_or_else(|| {
            invalid(
                format!("The value for the field '{name}' must be a valid JSONPath"),
                at,
            )
        })
}

fn as_object<'v>(value: &'v Value, at: &str) -> Result<&'v Map<String, Value>, Invalid> {
    value
        .as_object()
        .ok_or_else(|| invalid("Value must be an object", at))
}

fn invalid(message: impl Into<String>, location: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        location: location.into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Evaluates the rule `rule` (JSON text) on `input` (JSON text).
    fn eval(rule: &str, input: &str) -> Result<bool, ErrorCause> {
        let parse = |text: &str| serde_json::from_str::<Value>(text).expect("test JSON");
        let rule = parse(rule);
        let rule = parse_rule(rule.as_object().expect("an object"), "/r", &[]).expect("valid");
        let variables = json!({"count": 3, "cfg": {"on": true}});
        let context = json!({"Execution": {"Input": {"n": 0}}});
        rule.evaluate(
            &parse(input),
            &context,
            variables.as_object().expect("an object"),
        )
    }

    #[test]
    fn evaluates_operators() {
        #[rustfmt::skip]
        let cases = [
            (r#"{"Variable": "$.x", "StringEquals": "a"}"#, r#"{"x": "a"}"#, true),
            (r#"{"Variable": "$.x", "StringEquals": "a"}"#, r#"{"x": 1}"#, false),
            (r#"{"Variable": "$.x", "StringLessThan": "b"}"#, r#"{"x": "a"}"#, true),
            (r#"{"Variable": "$.x", "StringLessThan": "\uff61"}"#, r#"{"x": "\ud83d\ude00"}"#, true),
            (r#"{"Variable": "$.x", "StringGreaterThanEquals": "a"}"#, r#"{"x": "a"}"#, true),
            (r#"{"Variable": "$.x", "StringLessThanEqualsPath": "$.y"}"#, r#"{"x": "A", "y": "AB"}"#, true),
            (r#"{"Variable": "$.x", "StringEqualsPath": "$.y"}"#, r#"{"x": "A", "y": 1}"#, false),
            (r#"{"Variable": "$.x", "StringMatches": "log-*.txt"}"#, r#"{"x": "log-2024.txt"}"#, true),
            (r#"{"Variable": "$.x", "StringMatches": "log-*.txt"}"#, r#"{"x": "log-1.txt.gz"}"#, false),
            (r#"{"Variable": "$.x", "StringMatches": "*a*b*"}"#, r#"{"x": "xxaxxbxx"}"#, true),
            (r#"{"Variable": "$.x", "StringMatches": "*a*b"}"#, r#"{"x": "ab_a"}"#, false),
            (r#"{"Variable": "$.x", "StringMatches": "a*a"}"#, r#"{"x": "a"}"#, false),
            (r#"{"Variable": "$.x", "StringMatches": "a\\*"}"#, r#"{"x": "a*"}"#, true),
            (r#"{"Variable": "$.x", "StringMatches": "a\\*"}"#, r#"{"x": "ab"}"#, false),
            (r#"{"Variable": "$.x", "StringMatches": "a\\\\*"}"#, r#"{"x": "a\\bc"}"#, true),
            (r#"{"Variable": "$.x", "StringMatches": "*"}"#, r#"{"x": ""}"#, true),
            (r#"{"Variable": "$.x", "StringMatches": "*"}"#, r#"{"x": 1}"#, false),
            (r#"{"Variable": "$.x", "NumericEquals": 1}"#, r#"{"x": 1.0}"#, true),
            (r#"{"Variable": "$.x", "NumericEquals": 9007199254740993}"#, r#"{"x": 9007199254740992}"#, false),
            (r#"{"Variable": "$.x", "NumericEquals": 9007199254740992.0}"#, r#"{"x": 9007199254740993}"#, false),
            (r#"{"Variable": "$.x", "NumericGreaterThan": 9007199254740992.0}"#, r#"{"x": 9007199254740993}"#, true),
            (r#"{"Variable": "$.x", "NumericLessThan": -1}"#, r#"{"x": 18446744073709551615}"#, false),
            (r#"{"Variable": "$.x", "NumericLessThan": 1.5}"#, r#"{"x": 1}"#, true),
            (r#"{"Variable": "$.x", "NumericGreaterThanEquals": -2.5}"#, r#"{"x": -2.5}"#, true),
            (r#"{"Variable": "$.x", "NumericLessThanEquals": 0}"#, r#"{"x": "0"}"#, false),
            (r#"{"Variable": "$.x", "NumericEqualsPath": "$.y"}"#, r#"{"x": 2.22, "y": 2.22}"#, true),
            (r#"{"Variable": "$.x", "NumericGreaterThanPath": "$.y"}"#, r#"{"x": 1, "y": "0"}"#, false),
            (r#"{"Variable": "$.x", "BooleanEquals": false}"#, r#"{"x": false}"#, true),
            (r#"{"Variable": "$.x", "BooleanEquals": false}"#, r#"{"x": 0}"#, false),
            (r#"{"Variable": "$.x", "BooleanEqualsPath": "$.y"}"#, r#"{"x": null, "y": true}"#, false),
            (r#"{"Variable": "$.x", "TimestampEquals": "2012-10-09T19:00:55Z"}"#, r#"{"x": "2012-10-09T20:00:55+01:00"}"#, true),
            (r#"{"Variable": "$.x", "TimestampLessThan": "2012-10-09T19:00:55Z"}"#, r#"{"x": "2012-10-09T19:00:54.999999999Z"}"#, true),
            (r#"{"Variable": "$.x", "TimestampGreaterThan": "2012-10-09T19:00:55Z"}"#, r#"{"x": "2012-10-09T19:00:56"}"#, false),
            (r#"{"Variable": "$.x", "TimestampGreaterThanEquals": "2012-10-09T19:00:55Z"}"#, r#"{"x": 1}"#, false),
            (r#"{"Variable": "$.x", "TimestampLessThanEqualsPath": "$.y"}"#, r#"{"x": "2012-10-09T19:00:55Z", "y": "no"}"#, false),
            (r#"{"Variable": "$.x", "IsNull": true}"#, r#"{"x": null}"#, true),
            (r#"{"Variable": "$.x", "IsNull": false}"#, r#"{"x": null}"#, false),
            (r#"{"Variable": "$.x", "IsNumeric": true}"#, r#"{"x": 1.1}"#, true),
            (r#"{"Variable": "$.x", "IsNumeric": true}"#, r#"{"x": "1"}"#, false),
            (r#"{"Variable": "$.x", "IsString": true}"#, r#"{"x": ""}"#, true),
            (r#"{"Variable": "$.x", "IsBoolean": false}"#, r#"{"x": []}"#, true),
            (r#"{"Variable": "$.x", "IsTimestamp": true}"#, r#"{"x": "2016-03-05T21:29:29.243167252Z"}"#, true),
            (r#"{"Variable": "$.x", "IsTimestamp": true}"#, r#"{"x": "2023-02-24"}"#, false),
            (r#"{"Variable": "$.x", "IsPresent": true}"#, r#"{"x": null}"#, true),
            (r#"{"Variable": "$.x", "IsPresent": false}"#, r#"{}"#, true),
            (r#"{"Variable": "$.x", "IsPresent": true}"#, r#"{}"#, false),
            (r#"{"Variable": "$$.Execution.Input.n", "NumericEquals": 0}"#, r#"{}"#, true),
            (r#"{"Variable": "$count", "NumericGreaterThan": 2}"#, r#"{}"#, true),
            (r#"{"Variable": "$cfg.on", "BooleanEquals": true}"#, r#"{}"#, true),
            (r#"{"Variable": "$nope", "IsPresent": false}"#, r#"{}"#, true),
            (r#"{"And": [{"Variable": "$.x", "IsNumeric": true}, {"Variable": "$.x", "NumericGreaterThan": 1}]}"#, r#"{"x": "s"}"#, false),
            (r#"{"And": [{"Variable": "$.x", "IsPresent": true}, {"Variable": "$.x", "NumericEquals": 1}]}"#, r#"{"x": 1}"#, true),
            (r#"{"Or": [{"Variable": "$.x", "IsPresent": false}, {"Variable": "$.x", "NumericEquals": 1}]}"#, r#"{}"#, true),
            (r#"{"Or": [{"Variable": "$.x", "IsNull": true}, {"Variable": "$.x", "StringEquals": "a"}]}"#, r#"{"x": "b"}"#, false),
            (r#"{"Not": {"Variable": "$.x", "StringEquals": "a"}}"#, r#"{"x": "b"}"#, true),
            (r#"{"Not": {"Not": {"Variable": "$.x", "StringEquals": "a"}}}"#, r#"{"x": "a"}"#, true),
        ];
        for (rule, input, expected) in cases {
            assert_eq!(eval(rule, input), Ok(expected), "{rule} on {input}");
        }
    }

    #[test]
    fn unresolved_paths_fail_with_states_runtime() {
        #[rustfmt::skip]
        let cases = [
            (r#"{"Variable": "$.missing", "NumericEquals": 1}"#, r#"{}"#, "$.missing"),
            (r#"{"Variable": "$.x", "IsNull": true}"#, r#"{}"#, "$.x"),
            (r#"{"Variable": "$.x", "StringEqualsPath": "$.y"}"#, r#"{"x": "a"}"#, "$.y"),
            (r#"{"Variable": "$nope", "IsString": false}"#, r#"{}"#, "$nope"),
            (r#"{"Not": {"Variable": "$.a.b", "IsBoolean": true}}"#, r#"{"a": 1}"#, "$.a.b"),
        ];
        for (rule, input, path) in cases {
            let cause = format!(
                "Invalid path '{path}': The choice state's condition path references an invalid value."
            );
            assert_eq!(eval(rule, input), Err(ErrorCause::runtime(cause)), "{rule}");
        }
    }

    #[test]
    fn parses_entries_and_selects_the_first_match() {
        let entry = json!({"Variable": "$.x", "IsPresent": true, "Next": "A", "Assign": {"v": 1}});
        let choice = parse_choice(&entry, "/c").expect("valid entry");
        assert_eq!(choice.next, "A");
        assert!(matches!(choice.assign, Some(Payload::Path(_))));
        let choices = [
            json!({"Variable": "$.x", "IsNull": true, "Next": "Null", "Comment": "first"}),
            json!({"Variable": "$.x", "IsPresent": true, "Next": "Present"}),
        ]
        .map(|entry| parse_choice(&entry, "/c").expect("valid entry"));
        let pick = |input: Value| {
            let chosen = select(&choices, &input, &Value::Null, &Map::new());
            chosen.map(|c| c.map(|c| c.next.as_str()))
        };
        assert_eq!(pick(json!({"x": 1})), Ok(Some("Present")));
        assert_eq!(pick(json!({"x": null})), Ok(Some("Null")));
        assert!(pick(json!({})).is_err());
    }

    #[test]
    fn rejects_invalid_rules() {
        const SHAPE: &str =
            "A choice rule must contain either exactly one of 'And', 'Or' and 'Not', \
                             or a 'Variable' and exactly one comparison operator";
        #[rustfmt::skip]
        let cases = [
            (r#""x""#, "Value must be an object", ""),
            (r#"{"Variable": "$.x", "IsNull": true}"#, "The field 'Next' is required but was missing", ""),
            (r#"{"Variable": "$.x", "IsNull": true, "Next": 1}"#, "The field 'Next' must be a string", "/Next"),
            (r#"{"Variable": "$.x", "Next": "A"}"#, SHAPE, ""),
            (r#"{"Variable": "$.x", "IsNull": true, "IsString": true, "Next": "A"}"#, SHAPE, ""),
            (r#"{"Variable": "$.x", "IsNull": true, "Not": {}, "Next": "A"}"#, SHAPE, ""),
            (r#"{"IsNull": true, "Next": "A"}"#, SHAPE, ""),
            (r#"{"Variable": "$.x", "StringEqual": "a", "Next": "A"}"#, "The field 'StringEqual' is not supported by Step Functions", ""),
            (r#"{"Variable": "$.x", "BooleanLessThan": true, "Next": "A"}"#, "The field 'BooleanLessThan' is not supported by Step Functions", ""),
            (r#"{"Variable": "$.x", "StringMatchesPath": "$.y", "Next": "A"}"#, "The field 'StringMatchesPath' is not supported by Step Functions", ""),
            (r#"{"Variable": "x", "IsNull": true, "Next": "A"}"#, "The value for the field 'Variable' must be a valid JSONPath", "/Variable"),
            (r#"{"Variable": 1, "IsNull": true, "Next": "A"}"#, "The value for the field 'Variable' must be a valid JSONPath", "/Variable"),
            (r#"{"Variable": "$.x", "NumericEquals": "1", "Next": "A"}"#, "The field 'NumericEquals' must be a number", "/NumericEquals"),
            (r#"{"Variable": "$.x", "StringEquals": 1, "Next": "A"}"#, "The field 'StringEquals' must be a string", "/StringEquals"),
            (r#"{"Variable": "$.x", "BooleanEquals": "true", "Next": "A"}"#, "The field 'BooleanEquals' must be a boolean", "/BooleanEquals"),
            (r#"{"Variable": "$.x", "IsPresent": 1, "Next": "A"}"#, "The field 'IsPresent' must be a boolean", "/IsPresent"),
            (r#"{"Variable": "$.x", "StringMatches": null, "Next": "A"}"#, "The field 'StringMatches' must be a string", "/StringMatches"),
            (r#"{"Variable": "$.x", "TimestampEquals": "2016-12-05 21:29:29Z", "Next": "A"}"#, "String does not match RFC3339 timestamp", "/TimestampEquals"),
            (r#"{"Variable": "$.x", "TimestampEquals": 0, "Next": "A"}"#, "The field 'TimestampEquals' must be a string", "/TimestampEquals"),
            (r#"{"Variable": "$.x", "NumericEqualsPath": "y", "Next": "A"}"#, "The value for the field 'NumericEqualsPath' must be a valid JSONPath", "/NumericEqualsPath"),
            (r#"{"And": [], "Next": "A"}"#, "Value cannot be empty", "/And"),
            (r#"{"Or": {}, "Next": "A"}"#, "The field 'Or' must be an array", "/Or"),
            (r#"{"Not": [], "Next": "A"}"#, "Value must be an object", "/Not"),
            (r#"{"And": [{"Variable": "$.x", "IsNull": true, "Next": "B"}], "Next": "A"}"#, "The field 'Next' is not supported by Step Functions", "/And[0]"),
            (r#"{"Or": [{"Variable": "$.x", "IsNull": true}, 1], "Next": "A"}"#, "Value must be an object", "/Or[1]"),
            (r#"{"Not": {"Variable": "$.x", "IsNull": true, "Assign": {}}, "Next": "A"}"#, "The field 'Assign' is not supported by Step Functions", "/Not"),
        ];
        let at = "/States/S/Choices[0]";
        for (entry, message, suffix) in cases {
            let entry: Value = serde_json::from_str(entry).expect("test JSON");
            let expected = invalid(message, format!("{at}{suffix}"));
            assert_eq!(
                parse_choice(&entry, at).map(|c| c.next),
                Err(expected),
                "{entry}"
            );
        }
    }
}

#[cfg(test)]
mod corpus {
    //! Replays the recorded `choice_operators` conformance cases: each is a Choice state whose
    //! branches are Pass states with distinct `Result`s, so the recorded output names the branch.

    use serde_json::{json, Value};

    use super::*;

    /// The state the recorded execution went to after `choice_state`.
    fn recorded_branch(case: &Value, choice_state: &str) -> Option<String> {
        let states = case["definition"]["States"].as_object()?;
        if let Some(events) = case["expected"]["get_execution_history"]["events"].as_array() {
            let entered: Vec<&str> = events
                .iter()
                .filter_map(|e| e["stateEnteredEventDetails"]["name"].as_str())
                .collect();
            let at = entered.iter().position(|name| *name == choice_state)?;
            return entered.get(at + 1).map(|name| name.to_string());
        }
        let output = case["expected"]
            .as_object()?
            .values()
            .find_map(|v| v.get("output"))
            .or(case["expected"].get("output"))?;
        states
            .iter()
            .find(|(_, state)| state.get("Result") == Some(output))
            .map(|(name, _)| name.clone())
    }

    /// The state our rules send the case's input to.
    fn our_branch(case: &Value, choice_state: &Value) -> Result<String, String> {
        let input: Value = serde_json::from_str(case["input"].as_str().unwrap_or("{}"))
            .map_err(|e| e.to_string())?;
        let entries = choice_state["Choices"].as_array().ok_or("no Choices")?;
        let choices = entries
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                parse_choice(entry, &format!("/Choices[{i}]")).map_err(|e| format!("{e:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let context = json!({"Execution": {"Input": input}});
        match select(&choices, &input, &context, &Map::new()).map_err(|e| e.to_string())? {
            Some(choice) => Ok(choice.next.clone()),
            None => choice_state["Default"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| "no match, no Default".into()),
        }
    }

    #[test]
    fn agrees_with_recorded_aws_executions() {
        let Some(cases) = crate::shared_dir::shared_path("conformance/cases/choice_operators")
        else {
            return;
        };
        let dir = std::fs::read_dir(&cases).expect("the corpus folder is readable");
        let mut files: Vec<_> = dir.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        files.sort();
        let (mut agree, mut skipped, mut disagree) = (0, 0, Vec::new());
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "json"))
        {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let case: Value = serde_json::from_str(&text).unwrap_or_default();
            let start = case["definition"]["StartAt"].as_str().unwrap_or_default();
            let state = &case["definition"]["States"][start];
            let expected = recorded_branch(&case, start);
            let Some(expected) = expected.filter(|_| state["Type"] == "Choice") else {
                skipped += 1;
                continue;
            };
            match our_branch(&case, state) {
                Ok(ours) if ours == expected => agree += 1,
                ours => disagree.push(format!("{}: AWS {expected}, ours {ours:?}", file.display())),
            }
        }
        let compared = agree + disagree.len();
        println!("choice_operators: {agree} of {compared} cases agree ({skipped} skipped)");
        assert!(disagree.is_empty(), "{}", disagree.join("\n"));
    }
}
