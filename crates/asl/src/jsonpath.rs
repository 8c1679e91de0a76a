//! JSONPath as AWS Step Functions evaluates it: the Jayway dialect.
//!
//! * Roots: `$` (the input), `$$` (the context object) and `$name` (a variable).
//! * Steps: `.name` (hyphens and leading digits allowed), `['name']`, `.['name']`, `[n]`
//!   (negative too), `[*]`, `.*`, `..` (deep scan), `[a:b]`, `[0,1]`, `['a','b']` and filters
//!   `[?(…)]` with `== != < <= > >= =~ in nin subsetof anyof noneof size empty contains`,
//!   `&& || !` and existence tests.
//! * Tail functions: `length() min() max() avg() sum() stddev() keys() first() last()`.
//!
//! A *definite* path (no wildcard, deep scan, filter, slice or index union) yields one value
//! and fails when it does not resolve; an indefinite one yields the array of its matches.
//! Quoted names are taken verbatim: AWS resolves `$['Test\""Name"']` against the key
//! `Test\""Name"`, so a backslash only stops the next character from closing the quote.
//! [`ReferencePath`] is the restricted, writable form used by `ResultPath` and Choice rules.

use crate::error::names;
use std::fmt::Write as _;

use regex::Regex;
use serde_json::{Map, Value};

use crate::ErrorCause;

/// What a path is evaluated against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the effective input of the field.
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a workflow variable.
    Variable(String),
}

/// A parsed JSONPath.
#[derive(Debug, Clone)]
pub struct JsonPath {
    text: String,
    root: Root,
    query: Query,
}

impl PartialEq for JsonPath {
    fn eq(&self, other: &JsonPath) -> bool {
        self.text == other.text
    }
}

impl JsonPath {
    /// Parses `text`; the error is a short description of what is wrong.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let mut p = Parser::new(text);
        let root = p.root()?;
        let query = p.query(false)?;
        if let Some(c) = p.peek() {
            return Err(format!(
                "unexpected character '{c}' at position {} in '{text}'",
                p.pos
            ));
        }
        Ok(JsonPath {
            text: text.to_owned(),
            root,
            query,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// A definite path (no wildcard, deep scan, filter, slice or union) yields one value.
    pub fn is_definite(&self) -> bool {
        self.query.is_definite()
    }

    /// Evaluates against the value of the path's root. A definite path yields its value, or
    /// `None` when it does not resolve; an indefinite path yields an array (maybe empty).
    pub fn select(&self, root: &Value) -> Option<Value> {
        self.query(root).ok()
    }

    /// Like [`JsonPath::select`], but a path that does not resolve gives Jayway's reason,
    /// e.g. `No results for path: $['a']`, which AWS quotes in its error messages.
    pub fn query(&self, root: &Value) -> Result<Value, String> {
        let budget = Budget::new();
        let value = self.query.eval(root, root, &budget);
        if budget.exhausted() {
            return Err(format!(
                "The path {} selects more than {MAX_VISITS} values",
                self.text
            ));
        }
        value
    }

    /// Jayway's normalized rendering, e.g. `$['a'][0][*]`.
    pub fn normalized(&self) -> String {
        self.query.normalized()
    }
}

/// How many values one evaluation may visit or copy (deep scans, wildcards, filters and
/// their sub-paths, the values it returns), so that `$..*..*..*` on a small input cannot take
/// the server's memory and time. A 256 KiB payload has fewer than 200,000 values.
pub const MAX_VISITS: usize = 4_000_000;

/// What is left of an evaluation's [`MAX_VISITS`].
struct Budget {
    left: std::cell::Cell<usize>,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            left: std::cell::Cell::new(MAX_VISITS),
        }
    }

    /// Takes `n` visits; false once the budget is spent (and ever after).
    fn charge(&self, n: usize) -> bool {
        let left = self.left.get();
        self.left.set(left.saturating_sub(n));
        left >= n
    }

    fn exhausted(&self) -> bool {
        self.left.get() == 0
    }
}

/// A reference path: a definite path of names and indexes only (`ResultPath`, `ItemsPath`,
/// Choice `Variable`). It can be read and written.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferencePath {
    path: JsonPath,
}

impl ReferencePath {
    pub fn parse(text: &str) -> Result<ReferencePath, String> {
        let path = JsonPath::parse(text)?;
        let simple = path.query.function.is_none()
            && path
                .query
                .steps
                .iter()
                .all(|s| matches!(s, Step::Name(_) | Step::Index(_)));
        if !simple {
            return Err(format!("'{text}' is not a reference path"));
        }
        if path.query.steps.len() > MAX_NESTING {
            // Writing through it nests the value one level per step.
            return Err(format!("'{text}' has more than {MAX_NESTING} steps"));
        }
        Ok(ReferencePath { path })
    }

    pub fn text(&self) -> &str {
        self.path.text()
    }

    pub fn root(&self) -> &Root {
        self.path.root()
    }

    pub fn path(&self) -> &JsonPath {
        &self.path
    }

    /// The value the path points at, if any.
    pub fn get<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        self.path
            .query
            .steps
            .iter()
            .try_fold(root, |v, step| match step {
                Step::Name(n) => v.as_object()?.get(n),
                Step::Index(i) => v
                    .as_array()
                    .and_then(|a| a.get(resolve_index(*i, a.len())?)),
                _ => None,
            })
    }

    /// Writes `value` at the path inside `target` (ResultPath semantics): `$` replaces the
    /// whole target, missing objects on the way are created. Writing through a value that is
    /// not an object (or an array, for an index) fails as AWS does, with
    /// `States.ReferencePathConflict`.
    pub fn set(&self, mut target: Value, value: Value) -> Result<Value, ErrorCause> {
        let steps = &self.path.query.steps;
        if !writable(&target, steps) {
            return Err(ErrorCause::new(
                names::REFERENCE_PATH_CONFLICT,
                format!(
                    "Unable to apply ReferencePath {} to input {}",
                    self.text(),
                    target
                ),
            ));
        }
        write(&mut target, steps, value);
        Ok(target)
    }
}

/// Writes through `steps`, which [`writable`] has accepted; a missing member becomes `{}`.
fn write(node: &mut Value, steps: &[Step], value: Value) {
    let Some((step, rest)) = steps.split_first() else {
        *node = value;
        return;
    };
    if node.is_null() {
        *node = Value::Object(Map::new());
    }
    match (step, node) {
        (Step::Name(n), Value::Object(m)) => {
            write(m.entry(n.clone()).or_insert(Value::Null), rest, value)
        }
        (Step::Index(i), Value::Array(a)) => {
            let len = a.len();
            if let Some(slot) = resolve_index(*i, len).and_then(|i| a.get_mut(i)) {
                write(slot, rest, value);
            }
        }
        _ => {}
    }
}

/// Whether writing through `steps` into `node` succeeds: names need an object (or a missing
/// member, which is created), indexes need an existing element.
fn writable(node: &Value, steps: &[Step]) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return true;
    };
    match (step, node) {
        (Step::Name(n), Value::Object(m)) => match m.get(n) {
            Some(child) => writable(child, rest),
            None => rest.iter().all(|s| matches!(s, Step::Name(_))),
        },
        (Step::Index(i), Value::Array(a)) => {
            resolve_index(*i, a.len()).is_some_and(|i| writable(&a[i], rest))
        }
        _ => false,
    }
}

fn resolve_index(i: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if i < 0 { len + i } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// JSON equality where numbers compare by value (`1 == 1.0`), as Jackson nodes do.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax tree

/// The steps after a root, plus an optional tail function.
#[derive(Debug, Clone)]
struct Query {
    steps: Vec<Step>,
    function: Option<Function>,
}

#[derive(Debug, Clone)]
enum Step {
    Name(String),
    /// `['a','b']`: at the end of a path, Jayway merges the members into one object.
    Names(Vec<String>),
    Index(i64),
    Indexes(Vec<i64>),
    Slice(Option<i64>, Option<i64>),
    Wildcard,
    /// `..`: the following step applies to every descendant (and the node itself).
    Descendants,
    Filter(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Length,
    Min,
    Max,
    Avg,
    Sum,
    Stddev,
    Keys,
    First,
    Last,
}

impl Function {
    fn named(name: &str) -> Option<Function> {
        Some(match name {
            "length" | "size" => Function::Length,
            "min" => Function::Min,
            "max" => Function::Max,
            "avg" => Function::Avg,
            "sum" => Function::Sum,
            "stddev" => Function::Stddev,
            "keys" => Function::Keys,
            "first" => Function::First,
            "last" => Function::Last,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Function::Length => "length",
            Function::Min => "min",
            Function::Max => "max",
            Function::Avg => "avg",
            Function::Sum => "sum",
            Function::Stddev => "stddev",
            Function::Keys => "keys",
            Function::First => "first",
            Function::Last => "last",
        }
    }

    fn apply(self, v: &Value) -> Result<Value, String> {
        let numbers = || -> Result<Vec<f64>, String> {
            let ns: Vec<f64> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_f64)
                .collect();
            if ns.is_empty() {
                return Err(
                    "Aggregation function attempted to calculate value using empty array"
                        .to_owned(),
                );
            }
            Ok(ns)
        };
        let float = |f: f64| {
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .ok_or("not a number")
        };
        Ok(match self {
            Function::Length => match v {
                Value::Array(a) => a.len().into(),
                Value::Object(m) => m.len().into(),
                Value::String(s) => s.chars().count().into(),
                _ => return Err(format!("Invalid property type for length(): {v}")),
            },
            Function::Keys => match v {
                Value::Object(m) => m.keys().map(|k| Value::String(k.clone())).collect(),
                _ => return Err("keys() can only be applied to objects".to_owned()),
            },
            Function::First | Function::Last => {
                let a = v
                    .as_array()
                    .ok_or("first()/last() can only be applied to arrays")?;
                let item = if self == Function::First {
                    a.first()
                } else {
                    a.last()
                };
                item.cloned().ok_or("first()/last() of an empty array")?
            }
            Function::Min => float(numbers()?.into_iter().fold(f64::INFINITY, f64::min))?,
            Function::Max => float(numbers()?.into_iter().fold(f64::NEG_INFINITY, f64::max))?,
            Function::Sum => float(numbers()?.iter().sum())?,
            Function::Avg => {
                let ns = numbers()?;
                float(ns.iter().sum::<f64>() / ns.len() as f64)?
            }
            Function::Stddev => {
                let ns = numbers()?;
                let n = ns.len() as f64;
                let mean = ns.iter().sum::<f64>() / n;
                float(
                    (ns.iter().map(|x| x * x).sum::<f64>() / n - mean * mean)
                        .max(0.0)
                        .sqrt(),
                )?
            }
        })
    }
}

/// A filter expression.
#[derive(Debug, Clone)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Exists(Operand),
    Compare(Operand, Op, Operand),
}

#[derive(Debug, Clone)]
enum Operand {
    /// `@…`: relative to the element under test.
    Current(Query),
    /// `$…`: relative to the document root.
    Root(Query),
    Literal(Value),
    Regex(Regex),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Matches,
    In,
    Nin,
    SubsetOf,
    AnyOf,
    NoneOf,
    Size,
    Empty,
    Contains,
}

const SYMBOL_OPS: [(&str, Op); 7] = [
    ("==", Op::Eq),
    ("!=", Op::Ne),
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("=~", Op::Matches),
    ("<", Op::Lt),
    (">", Op::Gt),
];

const WORD_OPS: [(&str, Op); 8] = [
    ("nin", Op::Nin),
    ("in", Op::In),
    ("subsetof", Op::SubsetOf),
    ("anyof", Op::AnyOf),
    ("noneof", Op::NoneOf),
    ("size", Op::Size),
    ("empty", Op::Empty),
    ("contains", Op::Contains),
];

// ---------------------------------------------------------------------------------------------
// Evaluation

impl Query {
    fn is_definite(&self) -> bool {
        let last = self.steps.len().saturating_sub(1);
        self.steps.iter().enumerate().all(|(i, s)| match s {
            Step::Name(_) | Step::Index(_) => true,
            Step::Names(_) => i == last,
            _ => false,
        })
    }

    fn normalized(&self) -> String {
        let mut out = String::from("$");
        for step in &self.steps {
            let _ = match step {
                Step::Name(n) => write!(out, "['{n}']"),
                Step::Names(ns) => write!(out, "['{}']", ns.join("','")),
                Step::Index(i) => write!(out, "[{i}]"),
                Step::Indexes(is) => {
                    let is: Vec<String> = is.iter().map(i64::to_string).collect();
                    write!(out, "[{}]", is.join(","))
                }
                Step::Slice(a, b) => {
                    let show = |x: &Option<i64>| x.map(|x| x.to_string()).unwrap_or_default();
                    write!(out, "[{}:{}]", show(a), show(b))
                }
                Step::Wildcard => write!(out, "[*]"),
                Step::Descendants => write!(out, ".."),
                Step::Filter(_) => write!(out, "[?]"),
            };
        }
        if let Some(f) = self.function {
            let _ = write!(out, ".{}()", f.name());
        }
        out
    }

    /// Evaluates from `start`; `root` is what `$` means inside filters.
    fn eval(&self, start: &Value, root: &Value, budget: &Budget) -> Result<Value, String> {
        let value = if self.is_definite() {
            let value = self.eval_definite(start)?;
            if !budget.charge(size(&value)) {
                return Err("evaluation budget spent".into());
            }
            value
        } else {
            Value::Array(self.eval_indefinite(start, root, budget)?)
        };
        match self.function {
            Some(f) => f.apply(&value),
            None => Ok(value),
        }
    }

    fn eval_definite(&self, start: &Value) -> Result<Value, String> {
        let mut node = start;
        let mut at = String::from("$");
        let last = self.steps.len().saturating_sub(1);
        for (i, step) in self.steps.iter().enumerate() {
            node = match (step, node) {
                (Step::Name(n), Value::Object(m)) => match m.get(n) {
                    Some(v) => v,
                    None if i == last => return Err(self.no_results()),
                    None => return Err(format!("Missing property in path {at}['{n}']")),
                },
                (Step::Name(n), other) => {
                    return Err(format!(
                        "Expected to find an object with property ['{n}'] in path {at} but found \
                         '{}'. This is not a json object according to the JsonProvider: \
                         'com.jayway.jsonpath.spi.json.JacksonJsonProvider'.",
                        java_class(other)
                    ))
                }
                (Step::Names(ns), Value::Object(m)) => {
                    let merged = ns
                        .iter()
                        .filter_map(|n| Some((n.clone(), m.get(n)?.clone())));
                    return Ok(Value::Object(merged.collect()));
                }
                (Step::Index(i), Value::Array(a)) => {
                    match resolve_index(*i, a.len()).and_then(|i| a.get(i)) {
                        Some(v) => v,
                        None => return Err(self.no_results()),
                    }
                }
                (Step::Index(_), Value::Null) => return Err(format!("The path {at} is null")),
                (Step::Index(i), other) => {
                    return Err(format!(
                        "Filter: [{i}] can only be applied to arrays. Current context is: {other}"
                    ))
                }
                _ => return Err(self.no_results()),
            };
            let _ = match step {
                Step::Name(n) => write!(at, "['{n}']"),
                Step::Index(i) => write!(at, "[{i}]"),
                _ => Ok(()),
            };
        }
        Ok(node.clone())
    }

    fn no_results(&self) -> String {
        format!("No results for path: {}", self.normalized())
    }

    /// The matches, copied; fails once `budget` is spent.
    fn eval_indefinite(
        &self,
        start: &Value,
        root: &Value,
        budget: &Budget,
    ) -> Result<Vec<Value>, String> {
        let spent = || Err(String::from("evaluation budget spent"));
        let mut nodes = vec![start];
        let mut steps = self.steps.iter().peekable();
        while let Some(step) = steps.next() {
            if matches!(step, Step::Descendants) {
                let mut all = Vec::new();
                for n in nodes {
                    if !descendants(n, &mut all, budget) {
                        return spent();
                    }
                }
                nodes = all;
                continue;
            }
            if let (Step::Names(ns), None) = (step, steps.peek()) {
                let merge = |m: &Map<String, Value>| {
                    Value::Object(
                        ns.iter()
                            .filter_map(|n| Some((n.clone(), m.get(n)?.clone())))
                            .collect(),
                    )
                };
                if !budget.charge(nodes.iter().map(|n| size(n)).sum()) {
                    return spent();
                }
                return Ok(nodes
                    .into_iter()
                    .filter_map(Value::as_object)
                    .map(merge)
                    .collect());
            }
            let mut next = Vec::new();
            for n in nodes {
                let selected = step.select(n, root, budget);
                if !budget.charge(selected.len() + 1) {
                    return spent();
                }
                next.extend(selected);
            }
            nodes = next;
        }
        // Copying a match costs one visit per value in it.
        if !budget.charge(nodes.iter().map(|n| size(n)).sum()) {
            return spent();
        }
        Ok(nodes.into_iter().cloned().collect())
    }
}

impl Step {
    /// The children of `node` this step selects (indefinite evaluation: misses are skipped).
    fn select<'v>(&self, node: &'v Value, root: &Value, budget: &Budget) -> Vec<&'v Value> {
        match (self, node) {
            (Step::Name(n), Value::Object(m)) => m.get(n).into_iter().collect(),
            (Step::Names(ns), Value::Object(m)) => ns.iter().filter_map(|n| m.get(n)).collect(),
            (Step::Index(i), Value::Array(a)) => resolve_index(*i, a.len())
                .and_then(|i| a.get(i))
                .into_iter()
                .collect(),
            (Step::Indexes(is), Value::Array(a)) => is
                .iter()
                .filter_map(|i| a.get(resolve_index(*i, a.len())?))
                .collect(),
            (Step::Slice(from, to), Value::Array(a)) => {
                let len = a.len() as i64;
                let clamp = |x: i64| (if x < 0 { len + x } else { x }).clamp(0, len) as usize;
                let (from, to) = (clamp(from.unwrap_or(0)), clamp(to.unwrap_or(len)));
                a.get(from..to.max(from))
                    .unwrap_or_default()
                    .iter()
                    .collect()
            }
            (Step::Wildcard, Value::Array(a)) => a.iter().collect(),
            (Step::Wildcard, Value::Object(m)) => m.values().collect(),
            (Step::Filter(e), Value::Array(a)) => {
                a.iter().filter(|v| e.test(v, root, budget)).collect()
            }
            (Step::Filter(e), Value::Object(_)) => {
                if e.test(node, root, budget) {
                    vec![node]
                } else {
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }
}

/// `node` and everything below it, in document order; false once `budget` is spent.
fn descendants<'v>(node: &'v Value, out: &mut Vec<&'v Value>, budget: &Budget) -> bool {
    if !budget.charge(1) {
        return false;
    }
    out.push(node);
    match node {
        Value::Array(a) => a.iter().all(|v| descendants(v, out, budget)),
        Value::Object(m) => m.values().all(|v| descendants(v, out, budget)),
        _ => true,
    }
}

/// How many values `node` holds, itself included.
fn size(node: &Value) -> usize {
    let mut stack = vec![node];
    let mut n = 0;
    while let Some(v) = stack.pop() {
        n += 1;
        match v {
            Value::Array(a) => stack.extend(a),
            Value::Object(m) => stack.extend(m.values()),
            _ => {}
        }
    }
    n
}

fn java_class(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "java.lang.Boolean",
        Value::Number(n) if n.is_f64() => "java.lang.Double",
        Value::Number(_) => "java.lang.Integer",
        Value::String(_) => "java.lang.String",
        Value::Array(_) => "java.util.ArrayList",
        Value::Object(_) => "java.util.LinkedHashMap",
    }
}

impl Expr {
    fn test(&self, current: &Value, root: &Value, budget: &Budget) -> bool {
        if !budget.charge(1) {
            return false;
        }
        match self {
            Expr::Or(a, b) => a.test(current, root, budget) || b.test(current, root, budget),
            Expr::And(a, b) => a.test(current, root, budget) && b.test(current, root, budget),
            Expr::Not(e) => !e.test(current, root, budget),
            Expr::Exists(o) => o.resolve(current, root, budget).is_some(),
            Expr::Compare(l, op, r) => {
                if let (Op::Matches, Operand::Regex(re)) = (op, r) {
                    return l
                        .resolve(current, root, budget)
                        .is_some_and(|v| re.is_match(&regex_input(&v)));
                }
                let (a, b) = (
                    l.resolve(current, root, budget),
                    r.resolve(current, root, budget),
                );
                match (a, b) {
                    (Some(a), Some(b)) => compare(&a, *op, &b),
                    _ => *op == Op::Ne || *op == Op::Nin,
                }
            }
        }
    }
}

impl Operand {
    fn resolve(&self, current: &Value, root: &Value, budget: &Budget) -> Option<Value> {
        match self {
            Operand::Current(q) => q.eval(current, root, budget).ok(),
            Operand::Root(q) => q.eval(root, root, budget).ok(),
            Operand::Literal(v) => Some(v.clone()),
            Operand::Regex(re) => Some(Value::String(re.as_str().to_owned())),
        }
    }
}

fn regex_input(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) => v.to_string(),
        _ => String::new(),
    }
}

fn compare(a: &Value, op: Op, b: &Value) -> bool {
    let contains = |list: &Value, item: &Value| match list {
        Value::Array(xs) => xs.iter().any(|x| loose_eq(x, item)),
        _ => false,
    };
    let all_in = |xs: &Value, ys: &Value| {
        xs.as_array()
            .is_some_and(|xs| xs.iter().all(|x| contains(ys, x)))
    };
    let any_in = |xs: &Value, ys: &Value| {
        xs.as_array()
            .is_some_and(|xs| xs.iter().any(|x| contains(ys, x)))
    };
    let size = |v: &Value| match v {
        Value::Array(a) => Some(a.len()),
        Value::String(s) => Some(s.chars().count()),
        _ => None,
    };
    match op {
        Op::Eq => loose_eq(a, b),
        Op::Ne => !loose_eq(a, b),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ord = match (a, b) {
                (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()),
                (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
                _ => None,
            };
            ord.is_some_and(|o| match op {
                Op::Lt => o.is_lt(),
                Op::Le => o.is_le(),
                Op::Gt => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        Op::Matches => match b {
            Value::String(re) => Regex::new(re).is_ok_and(|re| re.is_match(&regex_input(a))),
            _ => false,
        },
        Op::In => contains(b, a),
        Op::Nin => !contains(b, a),
        Op::SubsetOf => all_in(a, b),
        Op::AnyOf => any_in(a, b),
        Op::NoneOf => a.is_array() && !any_in(a, b),
        Op::Size => b
            .as_u64()
            .is_some_and(|n| size(a) == usize::try_from(n).ok()),
        Op::Empty => b
            .as_bool()
            .is_some_and(|e| size(a).is_some_and(|n| (n == 0) == e)),
        Op::Contains => match (a, b) {
            (Value::String(s), Value::String(t)) => s.contains(t.as_str()),
            _ => contains(a, b),
        },
    }
}

/// Jayway's `==`: numbers by value, and a number equals a string that spells it.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            s.trim().parse::<f64>().ok() == n.as_f64()
        }
        _ => json_eq(a, b),
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

struct Parser<'t> {
    text: &'t str,
    chars: Vec<char>,
    pos: usize,
    /// How deep the filter expression being parsed nests (filters, parentheses, `!`,
    /// `&&`/`||` chains), bounded by [`MAX_NESTING`].
    depth: usize,
}

/// How deeply a path's filter expressions may nest. Parsing, evaluating and dropping a
/// filter recurse once per level, so this bounds the stack a path can use; real paths nest a
/// handful of levels. [GUESS] AWS documents no limit.
pub const MAX_NESTING: usize = 64;

/// Characters that end a dot-notation name.
fn ends_name(c: char, embedded: bool) -> bool {
    matches!(c, '.' | '[' | '(' | ')')
        || c.is_whitespace()
        || (embedded && matches!(c, ']' | '=' | '!' | '<' | '>' | '&' | '|' | ','))
}

impl<'t> Parser<'t> {
    fn new(text: &'t str) -> Parser<'t> {
        Parser {
            text,
            chars: text.chars().collect(),
            pos: 0,
            depth: 0,
        }
    }

    /// One more level of nesting, refused past [`MAX_NESTING`]; undone by [`Parser::leave`].
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error(&format!(
                "expression nested more than {MAX_NESTING} levels deep"
            )));
        }
        Ok(())
    }

    fn leave(&mut self, levels: usize) {
        self.depth -= levels;
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn eat_str(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        let hit = self
            .chars
            .get(self.pos..self.pos + n)
            .is_some_and(|w| w.iter().copied().eq(s.chars()));
        if hit {
            self.pos += n;
        }
        hit
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_ws();
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at position {} in '{}'", self.pos, self.text)
    }

    fn root(&mut self) -> Result<Root, String> {
        if !self.eat('$') {
            return Err(format!("'{}' does not start with '$'", self.text));
        }
        if self.eat('$') {
            return Ok(Root::Context);
        }
        let start = self.pos;
        while self.peek().is_some_and(|c| !ends_name(c, false)) {
            self.pos += 1;
        }
        if self.pos == start {
            return Ok(Root::Input);
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!("'{name}' is not a valid variable name"));
        }
        Ok(Root::Variable(name))
    }

    /// Steps and an optional tail function. `embedded` paths (inside a filter) stop at the
    /// first character that cannot continue them.
    fn query(&mut self, embedded: bool) -> Result<Query, String> {
        let mut steps = Vec::new();
        loop {
            match self.peek() {
                Some('.') if self.peek_at(1) == Some('.') => {
                    self.pos += 2;
                    steps.push(Step::Descendants);
                    steps.push(match self.peek() {
                        Some('[') => self.bracket()?,
                        Some('*') => {
                            self.pos += 1;
                            Step::Wildcard
                        }
                        _ => Step::Name(self.name(embedded)?),
                    });
                }
                Some('.') => {
                    self.pos += 1;
                    match self.peek() {
                        Some('[') => steps.push(self.bracket()?),
                        Some('*') => {
                            self.pos += 1;
                            steps.push(Step::Wildcard);
                        }
                        _ => {
                            let name = self.name(embedded)?;
                            if self.eat('(') {
                                self.expect(')')?;
                                let f = Function::named(&name).ok_or_else(|| {
                                    self.error(&format!("unknown function '{name}()'"))
                                })?;
                                return Ok(Query {
                                    steps,
                                    function: Some(f),
                                });
                            }
                            steps.push(Step::Name(name));
                        }
                    }
                }
                Some('[') => steps.push(self.bracket()?),
                _ => {
                    return Ok(Query {
                        steps,
                        function: None,
                    })
                }
            }
        }
    }

    fn name(&mut self, embedded: bool) -> Result<String, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| !ends_name(c, embedded)) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("expected a name"));
        }
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn bracket(&mut self) -> Result<Step, String> {
        self.pos += 1; // '['
        self.skip_ws();
        let step = match self.peek() {
            Some('*') => {
                self.pos += 1;
                Step::Wildcard
            }
            Some('?') => {
                self.pos += 1;
                self.expect('(')?;
                self.enter()?;
                let e = self.or()?;
                self.leave(1);
                self.expect(')')?;
                Step::Filter(Box::new(e))
            }
            Some(q @ ('\'' | '"')) => {
                let mut names = vec![self.quoted_raw(q)?];
                while {
                    self.skip_ws();
                    self.eat(',')
                } {
                    self.skip_ws();
                    match self.peek() {
                        Some(q @ ('\'' | '"')) => names.push(self.quoted_raw(q)?),
                        _ => return Err(self.error("expected a quoted name")),
                    }
                }
                if names.len() == 1 {
                    Step::Name(names.remove(0))
                } else {
                    Step::Names(names)
                }
            }
            _ => self.indexes()?,
        };
        self.expect(']')?;
        Ok(step)
    }

    /// A quoted name, verbatim: a backslash only keeps the next character from ending it.
    fn quoted_raw(&mut self, quote: char) -> Result<String, String> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated quoted name")),
                Some('\\') => self.pos += 2,
                Some(c) if c == quote => break,
                Some(_) => self.pos += 1,
            }
        }
        let s = self.chars[start..self.pos.min(self.chars.len())]
            .iter()
            .collect();
        self.pos += 1;
        Ok(s)
    }

    fn int(&mut self) -> Result<Option<i64>, String> {
        self.skip_ws();
        let start = self.pos;
        self.eat('-');
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return Ok(None);
        }
        let s: String = self.chars[start..self.pos].iter().collect();
        s.parse().map(Some).map_err(|_| self.error("invalid index"))
    }

    fn indexes(&mut self) -> Result<Step, String> {
        let first = self.int()?;
        self.skip_ws();
        if self.eat(':') {
            let to = self.int()?;
            return Ok(Step::Slice(first, to));
        }
        let first = first.ok_or_else(|| self.error("expected an index"))?;
        let mut all = vec![first];
        while {
            self.skip_ws();
            self.eat(',')
        } {
            all.push(self.int()?.ok_or_else(|| self.error("expected an index"))?);
        }
        Ok(if all.len() == 1 {
            Step::Index(first)
        } else {
            Step::Indexes(all)
        })
    }

    /// `a || b || …`: each operator nests the chain one level deeper (it is left-nested).
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        let mut levels = 0;
        while {
            self.skip_ws();
            self.eat_str("||")
        } {
            self.enter()?;
            levels += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        self.leave(levels);
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.unary()?;
        let mut levels = 0;
        while {
            self.skip_ws();
            self.eat_str("&&")
        } {
            self.enter()?;
            levels += 1;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        self.leave(levels);
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.skip_ws();
        if self.peek() == Some('!') && self.peek_at(1) != Some('=') {
            self.pos += 1;
            self.enter()?;
            let e = Expr::Not(Box::new(self.unary()?));
            self.leave(1);
            return Ok(e);
        }
        if self.eat('(') {
            self.enter()?;
            let e = self.or()?;
            self.leave(1);
            self.expect(')')?;
            return Ok(e);
        }
        let left = self.operand()?;
        self.skip_ws();
        let op = self.operator();
        match op {
            None => match left {
                Operand::Current(_) | Operand::Root(_) => Ok(Expr::Exists(left)),
                _ => Err(self.error("expected a comparison")),
            },
            Some(op) => {
                self.skip_ws();
                Ok(Expr::Compare(left, op, self.operand()?))
            }
        }
    }

    fn operator(&mut self) -> Option<Op> {
        if let Some(&(_, op)) = SYMBOL_OPS.iter().find(|(s, _)| self.eat_str(s)) {
            return Some(op);
        }
        let &(word, op) = WORD_OPS.iter().find(|(w, _)| {
            let n = w.chars().count();
            let at = self.chars.get(self.pos..self.pos + n);
            at.is_some_and(|s| s.iter().copied().eq(w.chars()))
                && self.peek_at(n).is_none_or(|c| !c.is_alphanumeric())
        })?;
        self.pos += word.len();
        Some(op)
    }

    fn operand(&mut self) -> Result<Operand, String> {
        self.skip_ws();
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Current(self.query(true)?))
            }
            Some('$') => {
                self.pos += 1;
                Ok(Operand::Root(self.query(true)?))
            }
            Some('/') => self.regex(),
            _ => Ok(Operand::Literal(self.literal()?)),
        }
    }

    fn regex(&mut self) -> Result<Operand, String> {
        self.pos += 1;
        let mut pattern = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated regular expression")),
                Some('/') => break,
                Some('\\') if self.peek_at(1) == Some('/') => {
                    pattern.push('/');
                    self.pos += 2;
                }
                Some(c) => {
                    pattern.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        let mut flags = String::new();
        while let Some(c @ ('i' | 'm' | 's' | 'x' | 'u')) = self.peek() {
            if c != 'u' {
                flags.push(c);
            }
            self.pos += 1;
        }
        // Jayway matches the whole input.
        let full = if flags.is_empty() {
            format!("^(?:{pattern})$")
        } else {
            format!("(?{flags})^(?:{pattern})$")
        };
        Regex::new(&full)
            .map(Operand::Regex)
            .map_err(|e| self.error(&format!("invalid regex: {e}")))
    }

    fn literal(&mut self) -> Result<Value, String> {
        self.skip_ws();
        match self.peek() {
            Some(q @ ('\'' | '"')) => self.string(q).map(Value::String),
            Some('[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if !self.eat(']') {
                    loop {
                        items.push(self.literal()?);
                        self.skip_ws();
                        if self.eat(']') {
                            break;
                        }
                        self.expect(',')?;
                    }
                }
                Ok(Value::Array(items))
            }
            Some('{') => {
                let start = self.pos;
                let mut depth = 0usize;
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                serde_json::from_str(&text).map_err(|_| self.error("invalid JSON object"))
            }
            _ => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '+' | '.' | '_'))
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" => Ok(Value::Null),
                    _ => match serde_json::from_str::<serde_json::Number>(&word) {
                        Ok(n) => Ok(Value::Number(n)),
                        // An unquoted word is a string (`@.Name==Receipt`), as AWS accepts it
                        // in deployed definitions.
                        Err(_) if word.starts_with(|c: char| c.is_alphabetic() || c == '_') => {
                            Ok(Value::String(word))
                        }
                        Err(_) => Err(self.error("expected a value")),
                    },
                }
            }
        }
    }

    /// A string literal in a filter, with Java-style escapes resolved.
    fn string(&mut self, quote: char) -> Result<String, String> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(c) if c == quote => break,
                Some('\\') => {
                    let c = self
                        .peek_at(1)
                        .ok_or_else(|| self.error("unterminated string"))?;
                    s.push(match c {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                    self.pos += 2;
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "a-b": 1, "1abc": 2, "x y": 3, "Test\\\"\"Name\"": "escaped",
            "store": {
                "book": [
                    {"title": "A", "price": 8.95, "cat": "ref"},
                    {"title": "B", "price": 12.99, "cat": "fiction", "isbn": "1"},
                    {"title": "C", "price": 8.99, "cat": "fiction", "isbn": "2"},
                    {"title": "D", "price": 22.99, "cat": "fiction"}
                ],
                "bicycle": {"color": "red", "price": 19.95}
            },
            "nums": [1, 2, 3, 4],
            "empty": [],
            "n": null
        })
    }

    #[test]
    fn select_table() {
        let d = doc();
        let cases: &[(&str, Option<Value>)] = &[
            ("$", Some(d.clone())),
            ("$.a-b", Some(json!(1))),
            ("$.1abc", Some(json!(2))),
            ("$['x y']", Some(json!(3))),
            ("$.['x y']", Some(json!(3))),
            ("$[\"x y\"]", Some(json!(3))),
            ("$['Test\\\"\"Name\"']", Some(json!("escaped"))),
            ("$.store.book[0].title", Some(json!("A"))),
            ("$.store.book[-1].title", Some(json!("D"))),
            ("$.store.book[ 1 ].title", Some(json!("B"))),
            ("$.store.book[9]", None),
            ("$.nope", None),
            ("$.nope.deeper", None),
            ("$.n.x", None),
            ("$.nums[*]", Some(json!([1, 2, 3, 4]))),
            ("$.nums.*", Some(json!([1, 2, 3, 4]))),
            ("$.store.bicycle.*", Some(json!(["red", 19.95]))),
            ("$.nums[1:3]", Some(json!([2, 3]))),
            ("$.nums[:2]", Some(json!([1, 2]))),
            ("$.nums[-1:]", Some(json!([4]))),
            ("$.nums[2:]", Some(json!([3, 4]))),
            ("$.nums[3:1]", Some(json!([]))),
            ("$.nums[0,2]", Some(json!([1, 3]))),
            ("$.nums[0,9]", Some(json!([1]))),
            (
                "$.store.bicycle['color','price']",
                Some(json!({"color": "red", "price": 19.95})),
            ),
            (
                "$.store.book[*]['title','cat']",
                Some(json!([
                {"title": "A", "cat": "ref"}, {"title": "B", "cat": "fiction"},
                {"title": "C", "cat": "fiction"}, {"title": "D", "cat": "fiction"}])),
            ),
            ("$.missing[*]", Some(json!([]))),
            ("$.missing[1:5].x", Some(json!([]))),
            (
                "$[*]",
                Some(json!([
                    1,
                    2,
                    3,
                    "escaped",
                    d["store"],
                    [1, 2, 3, 4],
                    [],
                    null
                ])),
            ),
            ("$..title", Some(json!(["A", "B", "C", "D"]))),
            ("$..book[1].title", Some(json!(["B"]))),
            (
                "$.store..price",
                Some(json!([8.95, 12.99, 8.99, 22.99, 19.95])),
            ),
            ("$..book[?(@.isbn)].title", Some(json!(["B", "C"]))),
            ("$..book[?(!@.isbn)].title", Some(json!(["A", "D"]))),
            (
                "$.store.book[?(@.price < 10)].title",
                Some(json!(["A", "C"])),
            ),
            ("$.store.book[?(@.price <= 8.95)].title", Some(json!(["A"]))),
            (
                "$.store.book[?(@.price > 10 && @.cat == 'fiction')].title",
                Some(json!(["B", "D"])),
            ),
            (
                "$.store.book[?(@.price > 20 || @.cat == \"ref\")].title",
                Some(json!(["A", "D"])),
            ),
            (
                "$.store.book[?(@.cat != 'fiction')].title",
                Some(json!(["A"])),
            ),
            // An unquoted word is a string literal, as in deployed AWS definitions.
            ("$.store.book[?(@.cat==ref)].title", Some(json!(["A"]))),
            (
                "$.store.book[?(@.cat == fiction && @.price < 10)].title",
                Some(json!(["C"])),
            ),
            (
                "$.store.book[?(@.title =~ /[ab]/i)].title",
                Some(json!(["A", "B"])),
            ),
            ("$.store.book[?(@.title =~ /A/)].title", Some(json!(["A"]))),
            (
                "$.store.book[?(@.title in ['A','C'])].title",
                Some(json!(["A", "C"])),
            ),
            (
                "$.store.book[?(@.title nin ['A','C'])].title",
                Some(json!(["B", "D"])),
            ),
            (
                "$.store.book[?(@.price > $.store.bicycle.price)].title",
                Some(json!(["D"])),
            ),
            (
                "$.store.book[?((@.price < 9) && !(@.cat == 'ref'))].title",
                Some(json!(["C"])),
            ),
            ("$.store.book[?(@.isbn == 2)].title", Some(json!(["C"]))),
            (
                "$.store.bicycle[?(@.color == 'red')].price",
                Some(json!([19.95])),
            ),
            ("$.nums.length()", Some(json!(4))),
            ("$.store.book.length()", Some(json!(4))),
            ("$.nums.sum()", Some(json!(10.0))),
            ("$.nums.min()", Some(json!(1.0))),
            ("$.nums.max()", Some(json!(4.0))),
            ("$.nums.avg()", Some(json!(2.5))),
            ("$.nums.stddev()", Some(json!(1.118_033_988_749_895))),
            ("$.nums.first()", Some(json!(1))),
            ("$.nums.last()", Some(json!(4))),
            ("$.store.bicycle.keys()", Some(json!(["color", "price"]))),
            ("$.store.book[*].price.max()", Some(json!(22.99))),
            ("$.empty.sum()", None),
        ];
        for (text, want) in cases {
            let p = JsonPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(&p.select(&d), want, "{text}");
        }
    }

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<(Root, bool)>)] = &[
            ("$", Some((Root::Input, true))),
            ("$$", Some((Root::Context, true))),
            ("$$.Execution.Input", Some((Root::Context, true))),
            ("$..a", Some((Root::Input, false))),
            ("$var", Some((Root::Variable("var".into()), true))),
            (
                "$constant_obj.in_obj[0]",
                Some((Root::Variable("constant_obj".into()), true)),
            ),
            ("$.a[0]", Some((Root::Input, true))),
            ("$.a[*]", Some((Root::Input, false))),
            ("$.a[0,1]", Some((Root::Input, false))),
            ("$['a','b']", Some((Root::Input, true))),
            ("$['a','b'].c", Some((Root::Input, false))),
            ("$.a[1:]", Some((Root::Input, false))),
            ("$.a[?(@.b)]", Some((Root::Input, false))),
            ("$.a[?(@.b==AMOUNT_PAID)]", Some((Root::Input, false))),
            ("$.a.length()", Some((Root::Input, true))),
            ("", None),
            ("a.b", None),
            ("$.", None),
            ("$.a.", None),
            ("$[", None),
            ("$['a'", None),
            ("$.a[x]", None),
            ("$.a.nosuch()", None),
            ("$.a.length().b", None),
            ("$.a[?(@.b ==)]", None),
            ("$.a[?(@.b =~ /(/)]", None),
            ("$.a b", None),
            ("$v-x", None),
        ];
        for (text, want) in cases {
            let got = JsonPath::parse(text).map(|p| (p.root().clone(), p.is_definite()));
            assert_eq!(got.ok(), *want, "{text}");
        }
    }

    #[test]
    fn error_messages() {
        let d = json!({"a": {"b": 1}, "s": "x", "arr": [1]});
        let cases = [
            ("$.NoSuchInputPath", "No results for path: $['NoSuchInputPath']"),
            ("$.x.y", "Missing property in path $['x']"),
            ("$.arr[5]", "No results for path: $['arr'][5]"),
            ("$.s.t", "Expected to find an object with property ['t'] in path $['s'] but found 'java.lang.String'. This is not a json object according to the JsonProvider: 'com.jayway.jsonpath.spi.json.JacksonJsonProvider'."),
            ("$.a[0]", "Filter: [0] can only be applied to arrays. Current context is: {\"b\":1}"),
        ];
        for (text, want) in cases {
            let p = JsonPath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.query(&d), Err(want.to_owned()), "{text}");
        }
    }

    #[test]
    fn reference_paths() {
        let conflict = |p: &str, input: &str| {
            Err(ErrorCause::new(
                "States.ReferencePathConflict",
                format!("Unable to apply ReferencePath {p} to input {input}"),
            ))
        };
        let cases: Vec<(&str, Value, Result<Value, ErrorCause>)> = vec![
            ("$", json!({"a": 1}), Ok(json!("R"))),
            ("$.r", json!({"a": 1}), Ok(json!({"a": 1, "r": "R"}))),
            ("$.a", json!({"a": 1}), Ok(json!({"a": "R"}))),
            ("$.x.y.z", json!({}), Ok(json!({"x": {"y": {"z": "R"}}}))),
            (
                "$['k 1'].v",
                json!({"k 1": {}}),
                Ok(json!({"k 1": {"v": "R"}})),
            ),
            ("$.l[1]", json!({"l": [0, 1]}), Ok(json!({"l": [0, "R"]}))),
            (
                "$.l[-1].x",
                json!({"l": [{}]}),
                Ok(json!({"l": [{"x": "R"}]})),
            ),
            ("$.r", json!("input1"), conflict("$.r", "\"input1\"")),
            ("$.a.b", json!({"a": 1}), conflict("$.a.b", "{\"a\":1}")),
            ("$.l[5]", json!({"l": []}), conflict("$.l[5]", "{\"l\":[]}")),
            ("$.m[0]", json!({}), conflict("$.m[0]", "{}")),
        ];
        for (text, input, want) in cases {
            let p = ReferencePath::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(p.set(input, json!("R")), want, "{text}");
        }
        for bad in [
            "$.a[*]",
            "$..a",
            "$.a.length()",
            "$.a[0:1]",
            "$['a','b']",
            "$.a[?(@.b)]",
        ] {
            assert!(ReferencePath::parse(bad).is_err(), "{bad}");
        }
        let d = json!({"a": [{"b": true}]});
        let get = |p: &str| {
            ReferencePath::parse(p)
                .ok()
                .and_then(|p| p.get(&d).cloned())
        };
        assert_eq!(get("$.a[0].b"), Some(json!(true)));
        assert_eq!(get("$.a[1].b"), None);
        assert_eq!(get("$"), Some(d.clone()));
    }

    #[test]
    fn never_panics_on_odd_input() {
        let d = doc();
        for text in [
            "$[",
            "$..",
            "$...a",
            "$[?(",
            "$[?(@",
            "$[?(@.a == 'x",
            "$['\\",
            "$[-]",
            "$[:]",
            "$[?(@.a == {)]",
            "$[?(@.a in [1,)]",
            "$[99999999999999999999]",
            "$.a/b",
            "$[?(/x)]",
        ] {
            if let Ok(p) = JsonPath::parse(text) {
                let _ = p.select(&d);
            }
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |n: usize, open: &str, close: &str| {
            format!("$[?({}@.a == 1{})]", open.repeat(n), close.repeat(n))
        };
        let within = MAX_NESTING - 1;
        for (open, close) in [("(", ")"), ("!", ""), ("@.b[?(", ")]")] {
            let ok = nested(within, open, close);
            assert!(JsonPath::parse(&ok).is_ok(), "{open} x {within}");
            for n in [MAX_NESTING + 1, 5_000] {
                let err = JsonPath::parse(&nested(n, open, close)).err();
                assert!(
                    err.is_some_and(|e| e.contains("nested more than")),
                    "{open} x {n}"
                );
            }
        }
        let chain = |n: usize, op: &str| format!("$[?({}@.a)]", format!("@.a {op} ").repeat(n));
        for op in ["&&", "||"] {
            assert!(JsonPath::parse(&chain(within, op)).is_ok());
            assert!(JsonPath::parse(&chain(10_000, op)).is_err());
        }
    }

    #[test]
    fn evaluation_is_bounded() {
        // A few hundred bytes nested 120 deep: each `..*` multiplies the matches by the depth.
        let doc: Value =
            serde_json::from_str(&format!("{}1{}", "[0,".repeat(120), "]".repeat(120)))
                .unwrap_or_default();
        let started = std::time::Instant::now();
        let result = JsonPath::parse("$..*..*..*..*").map(|p| p.query(&doc).map(|_| ()));
        assert!(
            matches!(&result, Ok(Err(e)) if e.contains("more than")),
            "{result:?}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let fewer = JsonPath::parse("$..*..*").map(|p| p.query(&doc).map(|_| ()));
        assert!(matches!(fewer, Ok(Ok(()))));
        // Within the budget, the same path still answers.
        let small = json!({"a": {"b": [1, 2]}});
        let all = JsonPath::parse("$..*..*")
            .ok()
            .and_then(|p| p.select(&small));
        assert_eq!(all, Some(json!([[1, 2], 1, 2, 1, 2])));
        // A filter that copies the whole input for every item is charged for each copy.
        let items: Vec<Value> = (0..2_000)
            .map(|i| json!({ "n": i, "pad": vec![0; 1_000] }))
            .collect();
        let doc = json!({ "items": items });
        let path = JsonPath::parse("$.items[?(@.n == $.items)]").map(|p| p.query(&doc).map(|_| ()));
        assert!(
            matches!(&path, Ok(Err(e)) if e.contains("more than")),
            "{path:?}"
        );
    }
}
