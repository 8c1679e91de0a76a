//! JSONata, the second query language (`"QueryLanguage": "JSONata"`).
//!
//! A string of the form `{% expression %}` anywhere inside a JSONata field is an expression.
//! Expressions are parsed once, with the definition, by jsonata-core (JSONata 2.x), and checked
//! the way AWS checks them then. An evaluation binds `$states` and the workflow variables the
//! expression names, and adds Step Functions' functions (`$partition`, `$range`, `$hash`,
//! `$random`, `$uuid`, `$parse`). The impure built-ins are replaced: `$now`/`$millis` read the
//! `now` handed in, `$random`/`$shuffle`/`$uuid` draw from the [`Entropy`] handed in, and
//! `$eval` is disabled, as on AWS. Failures are `States.QueryEvaluationError`s worded as AWS
//! words them.
//!
//! jsonata-core runs regular expressions with the `regex` crate; the calls whose literal needs
//! look-around or back-references go to [`patterns`] instead.
//!
//! One evaluation may hold at most [`MAX_EVALUATION_BYTES`] ([`crate::memory`]); past it, it
//! fails like any other.
//!
//! Known gaps: `$toMillis` with a picture that leaves out date parts fills them in from the host clock.
//! The evaluation time limit measures elapsed time: it only ever stops a runaway expression.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use jsonata_core::ast::{AstNode, BinaryOp, Stage};
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorError, EvaluatorOptions};
use jsonata_core::parser;
use jsonata_core::value::JValue;
use serde_json::{Map, Number, Value};

use crate::java_random::JavaRandom;
use crate::memory::Meter;
use crate::{timestamp, Entropy, ErrorCause};

mod patterns;

/// Diagnostic codes of definitions whose expressions AWS refuses.
pub mod codes {
    pub const INVALID_JSONATA_EXPRESSION: &str = "INVALID_JSONATA_EXPRESSION";
    pub const UNSUPPORTED_JSONATA_EXPRESSION: &str = "UNSUPPORTED_JSONATA_EXPRESSION";
}

/// How long one expression may run before it fails (AWS bounds evaluation too).
const TIMEOUT_MS: u64 = 5_000;
/// The most memory one evaluation may hold at once: values it builds and their intermediates
/// (AWS's payload limit is 256 KiB; intermediates may be larger). Enforced where the server
/// counts allocations ([`crate::memory`]), and by `$pad` itself.
pub const MAX_EVALUATION_BYTES: usize = 64 * 1024 * 1024;
/// The longest sequence an expression may build.
const MAX_SEQUENCE: usize = 1_000_000;
/// The most numbers `$range` produces (AWS's bound).
const MAX_RANGE: f64 = 360_145.0;

/// Whether a JSON string is a `{% %}` expression.
pub fn is_expression(s: &str) -> bool {
    s.len() >= 4 && s.starts_with("{%") && s.ends_with("%}")
}

/// A problem with an expression found when the definition is parsed: AWS's code and message,
/// and the field it is in, relative to the state (`Output/a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: &'static str,
    pub message: String,
    pub field: String,
}

/// One parsed expression.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    ast: AstNode,
    /// The variable names it reads (`states` included); only these are bound.
    names: Vec<String>,
    /// The workflow variables it reads: names it neither binds itself nor is `states`.
    free: Vec<String>,
    /// Whether it calls a function [routed](patterns) to `fancy-regex`.
    fancy_regex: bool,
}

impl Expression {
    /// Parses the text between `{%` and `%}` and checks it as AWS does. `catcher` says whether
    /// the field belongs to a `Catch` entry, the one place `$states.errorOutput` is defined.
    fn parse(source: &str, field: &str, catcher: bool) -> Result<Expression, Invalid> {
        let invalid = |code, message: String| Invalid {
            code,
            message,
            field: field.to_owned(),
        };
        let mut ast = parser::parse(source)
            .map_err(|e| invalid(codes::INVALID_JSONATA_EXPRESSION, e.to_string()))?;
        let facts = inspect(&ast);
        if let Some(symbol) = facts.newer_operator {
            return Err(invalid(
                codes::INVALID_JSONATA_EXPRESSION,
                format!("S0211: The symbol {symbol} cannot be used as a unary operator"),
            ));
        }
        let unsupported = |what: &str| {
            invalid(
                codes::UNSUPPORTED_JSONATA_EXPRESSION,
                format!("Reference to '{what}' is not supported."),
            )
        };
        if facts.context_root {
            return Err(unsupported("$$"));
        }
        if facts.error_output && !catcher {
            return Err(unsupported("$states.errorOutput"));
        }
        if let Some(name) = facts.top_level_name {
            return Err(invalid(
                codes::UNSUPPORTED_JSONATA_EXPRESSION,
                format!("Reference to '{name}' at the top level is not supported."),
            ));
        }
        let free = facts
            .names
            .iter()
            .filter(|n| *n != "states" && !facts.bound.contains(*n))
            .cloned()
            .collect();
        let fancy_regex = patterns::route(&mut ast);
        Ok(Expression {
            source: source.to_owned(),
            ast,
            fancy_regex,
            names: facts.names.into_iter().collect(),
            free,
        })
    }

    /// The expression as written between `{%` and `%}`, trimmed.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// What a walk over an expression found.
#[derive(Default)]
struct Facts {
    names: BTreeSet<String>,
    bound: BTreeSet<String>,
    context_root: bool,
    error_output: bool,
    top_level_name: Option<String>,
    /// The symbol jsonata-js 2.0.6 (AWS's version) stumbles on in an operator added by
    /// JSONata 2.1 (`??`, `?:`), which its parser does not know.
    newer_operator: Option<char>,
}

/// Walks an expression (with an explicit stack: expressions can nest deeply). A node is "top"
/// when it is evaluated against the expression's own context item, which does not exist in
/// Step Functions: a field name there reads nothing, and AWS refuses it.
fn inspect(root: &AstNode) -> Facts {
    let mut facts = Facts::default();
    let mut work: Vec<(&AstNode, bool)> = vec![(root, true)];
    while let Some((node, top)) = work.pop() {
        match node {
            AstNode::Name(name) if top && facts.top_level_name.is_none() => {
                facts.top_level_name = Some(name.clone());
            }
            AstNode::Variable(name) if !name.is_empty() => {
                facts.names.insert(name.clone());
            }
            AstNode::ParentVariable(_) => facts.context_root = true,
            AstNode::Path { steps } => {
                let names: Vec<Option<&str>> = steps
                    .iter()
                    .take(2)
                    .map(|s| match &s.node {
                        AstNode::Variable(n) | AstNode::Name(n) => Some(n.as_str()),
                        _ => None,
                    })
                    .collect();
                if names == [Some("states"), Some("errorOutput")]
                    && matches!(steps[0].node, AstNode::Variable(_))
                {
                    facts.error_output = true;
                }
                for (i, step) in steps.iter().enumerate() {
                    work.push((&step.node, top && i == 0));
                    facts.bound.extend(step.focus.iter().cloned());
                    facts.bound.extend(step.index_var.iter().cloned());
                    for stage in &step.stages {
                        if let Stage::Filter(e) = stage {
                            work.push((e, false));
                        }
                    }
                }
            }
            AstNode::Binary { op, lhs, rhs } => {
                let newer = match op {
                    BinaryOp::Coalesce => Some('?'),
                    BinaryOp::Default => Some(':'),
                    _ => None,
                };
                facts.newer_operator = facts.newer_operator.or(newer);
                if let (BinaryOp::ColonEqual, AstNode::Variable(name)) = (op, lhs.as_ref()) {
                    facts.bound.insert(name.clone());
                }
                work.push((lhs, top));
                work.push((rhs, top));
            }
            AstNode::Unary { operand, .. } => work.push((operand, top)),
            AstNode::Function { args, .. } => work.extend(args.iter().map(|a| (a, top))),
            AstNode::Call { procedure, args } => {
                work.push((procedure, top));
                work.extend(args.iter().map(|a| (a, top)));
            }
            AstNode::Lambda { params, body, .. } => {
                facts.bound.extend(params.iter().cloned());
                work.push((body, top));
            }
            AstNode::Array(items) | AstNode::Block(items) => {
                work.extend(items.iter().map(|i| (i, top)));
            }
            AstNode::ArrayGroup(items) => work.extend(items.iter().map(|i| (i, false))),
            AstNode::Object(pairs) => {
                for (k, v) in pairs {
                    work.push((k, top));
                    work.push((v, top));
                }
            }
            AstNode::ObjectTransform { input, pattern } => {
                work.push((input, top));
                for (k, v) in pattern {
                    work.push((k, false));
                    work.push((v, false));
                }
            }
            AstNode::Conditional {
                condition,
                then_branch,
                else_branch,
            } => {
                work.push((condition, top));
                work.push((then_branch, top));
                if let Some(e) = else_branch {
                    work.push((e, top));
                }
            }
            AstNode::FunctionApplication(e) => work.push((e, false)),
            AstNode::Sort { input, terms } => {
                work.push((input, top));
                work.extend(terms.iter().map(|(t, _)| (t, false)));
            }
            AstNode::Transform {
                location,
                update,
                delete,
            } => {
                work.push((location, false));
                work.push((update, false));
                if let Some(d) = delete {
                    work.push((d, false));
                }
            }
            _ => {}
        }
    }
    facts
}

/// A JSONata field's value: JSON in which `{% %}` strings are expressions (`Output`,
/// `Arguments`, `Assign`, `Items`, `Condition`, `Seconds`, ...).
#[derive(Debug, Clone)]
pub struct Template {
    root: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Literal(Value),
    Expr {
        field: String,
        expr: Box<Expression>,
    },
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

impl Template {
    /// Compiles the value of `field` (`Output`, `Catch[0]/Assign`); `catcher` as for
    /// [`Expression`]s.
    pub fn compile(value: &Value, field: &str, catcher: bool) -> Result<Template, Invalid> {
        Ok(Template {
            root: compile(value, field, catcher)?,
        })
    }

    /// The keys of the object it produces, when it is an object written out (not one
    /// expression).
    pub fn keys(&self) -> Option<Vec<&str>> {
        match &self.root {
            Node::Object(fields) => Some(fields.iter().map(|(k, _)| k.as_str()).collect()),
            Node::Literal(Value::Object(fields)) => {
                Some(fields.keys().map(String::as_str).collect())
            }
            _ => None,
        }
    }

    /// Produces the field's value.
    pub fn render(&self, env: &mut Env) -> Result<Value, ErrorCause> {
        let entropy = Rc::new(RefCell::new(env.entropy.clone()));
        let out = self.root.render(&mut Run {
            env: &*env,
            bindings: HashMap::new(),
            entropy: Rc::clone(&entropy),
        });
        *env.entropy = entropy.borrow().clone();
        out
    }

    /// The expression, when the whole field is one (`"Items": "{% ... %}"`).
    pub fn expression(&self) -> Option<&Expression> {
        match &self.root {
            Node::Expr { expr, .. } => Some(expr),
            _ => None,
        }
    }

    /// The workflow variables the field reads.
    pub fn variables(&self, out: &mut BTreeSet<String>) {
        let mut work = vec![&self.root];
        while let Some(node) = work.pop() {
            match node {
                Node::Literal(_) => {}
                Node::Expr { expr, .. } => out.extend(expr.free.iter().cloned()),
                Node::Object(members) => work.extend(members.iter().map(|(_, n)| n)),
                Node::Array(items) => work.extend(items.iter()),
            }
        }
    }

    /// A `States.QueryEvaluationError` for a result of the wrong JSON type, quoting the
    /// expression when the field is one.
    pub fn unexpected_type(&self, field: &str, expected: &str, value: &Value) -> ErrorCause {
        let source = self.expression().map_or("", Expression::source);
        ErrorCause::query(
            format!(
                "The JSONata expression '{source}' specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{}' for value: {value}",
                type_name(value)
            ),
            Some(field.to_owned()),
        )
    }
}

fn compile(value: &Value, field: &str, catcher: bool) -> Result<Node, Invalid> {
    let node = match value {
        Value::String(s) if is_expression(s) => Node::Expr {
            field: field.to_owned(),
            expr: Box::new(Expression::parse(s[2..s.len() - 2].trim(), field, catcher)?),
        },
        Value::Object(m) => Node::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), compile(v, &format!("{field}/{k}"), catcher)?)))
                .collect::<Result<_, Invalid>>()?,
        ),
        Value::Array(items) => Node::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| compile(v, &format!("{field}[{i}]"), catcher))
                .collect::<Result<_, Invalid>>()?,
        ),
        other => Node::Literal(other.clone()),
    };
    Ok(match node {
        Node::Object(_) | Node::Array(_) if node.is_static() => Node::Literal(value.clone()),
        node => node,
    })
}

impl Node {
    fn is_static(&self) -> bool {
        match self {
            Node::Literal(_) => true,
            Node::Expr { .. } => false,
            Node::Object(members) => members.iter().all(|(_, n)| n.is_static()),
            Node::Array(items) => items.iter().all(Node::is_static),
        }
    }

    fn render(&self, run: &mut Run) -> Result<Value, ErrorCause> {
        Ok(match self {
            Node::Literal(v) => v.clone(),
            Node::Expr { field, expr } => run.evaluate(expr, field)?,
            Node::Object(members) => {
                let mut out = Map::with_capacity(members.len());
                for (key, node) in members {
                    out.insert(key.clone(), node.render(run)?);
                }
                Value::Object(out)
            }
            Node::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|n| n.render(run))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

/// `$states`: what a field can see of the state.
#[derive(Clone, Copy)]
pub struct States<'a> {
    pub input: &'a Value,
    /// The context object (`$$` in JSONPath).
    pub context: &'a Value,
    /// The task, branch or iteration results (`Output` and `Assign` of Task, Parallel, Map).
    pub result: Option<&'a Value>,
    /// `{"Error", "Cause"}` (a `Catch` entry's `Output` and `Assign`).
    pub error_output: Option<&'a Value>,
}

impl<'a> States<'a> {
    /// What every field sees: the state input and the context object.
    pub fn new(input: &'a Value, context: &'a Value) -> States<'a> {
        States {
            input,
            context,
            result: None,
            error_output: None,
        }
    }
}

/// What expressions are evaluated with.
pub struct Env<'a> {
    pub states: States<'a>,
    pub variables: &'a Map<String, Value>,
    /// Epoch milliseconds: `$now()` and `$millis()`.
    pub now: i64,
    pub entropy: &'a mut Entropy,
}

/// One rendering: the bindings converted so far, shared by the field's expressions.
struct Run<'e, 'a> {
    env: &'e Env<'a>,
    bindings: HashMap<String, JValue>,
    entropy: Rc<RefCell<Entropy>>,
}

impl Run<'_, '_> {
    fn binding(&mut self, name: &str) -> Option<JValue> {
        if let Some(v) = self.bindings.get(name) {
            return Some(v.clone());
        }
        let value = if name == "states" {
            let s = &self.env.states;
            let mut states = Map::new();
            states.insert("input".into(), s.input.clone());
            states.insert("context".into(), s.context.clone());
            if let Some(r) = s.result {
                states.insert("result".into(), r.clone());
            }
            if let Some(e) = s.error_output {
                states.insert("errorOutput".into(), e.clone());
            }
            JValue::from(Value::Object(states))
        } else {
            JValue::from(self.env.variables.get(name)?.clone())
        };
        self.bindings.insert(name.to_owned(), value.clone());
        Some(value)
    }

    fn evaluate(&mut self, expr: &Expression, field: &str) -> Result<Value, ErrorCause> {
        let mut context = Context::new();
        for name in &expr.names {
            if let Some(v) = self.binding(name) {
                context.bind(name.clone(), v);
            }
        }
        let meter = Meter::open(MAX_EVALUATION_BYTES);
        let options = EvaluatorOptions {
            timeout_ms: Some(TIMEOUT_MS),
            max_sequence_length: Some(MAX_SEQUENCE),
            cancel: Some(meter.token()),
            ..EvaluatorOptions::default()
        };
        let mut evaluator = Evaluator::with_options(context, options);
        let quoted = |what: String| {
            ErrorCause::query(
                format!(
                    "The JSONata expression '{}' specified for the field '{field}' {what}",
                    expr.source
                ),
                Some(field.to_owned()),
            )
        };
        register(&mut evaluator, self.env.now, &self.entropy)
            .and_then(|()| {
                if expr.fancy_regex {
                    patterns::register(&mut evaluator)?;
                }
                Ok(())
            })
            .map_err(|e| quoted(format!("threw an error during evaluation. {}", e.message())))?;
        let result = evaluator.evaluate(&expr.ast, &JValue::Undefined);
        // The last step may have gone past the limit after the evaluator's last look.
        if meter.exceeded() {
            drop(result);
            return Err(quoted(format!(
                "threw an error during evaluation. {}",
                out_of_memory()
            )));
        }
        drop(meter);
        match result {
            Err(e) => Err(quoted(format!(
                "threw an error during evaluation. {}",
                aws_message(&e)
            ))),
            Ok(JValue::Undefined) => Err(quoted("returned nothing (undefined).".into())),
            Ok(v) if jvalue_deeper_than(&v, crate::json::MAX_DEPTH) => Err(quoted(format!(
                "returned a result nested more than {} levels deep.",
                crate::json::MAX_DEPTH
            ))),
            Ok(v) => {
                to_json(&v).ok_or_else(|| quoted("returned an unsupported result type.".into()))
            }
        }
    }
}

/// The error text as jsonata-js 2.0.6 (AWS's version) words it.
fn aws_message(e: &EvaluatorError) -> String {
    const NON_FUNCTION: &str = "T1006: Attempted to invoke a non-function";
    let message = e.message();
    if message.starts_with(NON_FUNCTION) {
        NON_FUNCTION.to_owned()
    } else {
        message.to_owned()
    }
}

/// The JSON type names AWS's messages use.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether a JSONata value nests deeper than `max` levels (walked without recursion: the
/// value can be as deep as the evaluator let it grow; [`to_json`] recurses).
fn jvalue_deeper_than(value: &JValue, max: usize) -> bool {
    crate::json::tree_deeper_than(value, max, |v| match v {
        JValue::Array(items) => Some(Box::new(items.iter())),
        JValue::Object(members) => Some(Box::new(members.values())),
        _ => None,
    })
}

/// A JSONata value as JSON; `None` for a function or a regex, which JSON cannot hold.
/// Inside an object such members are left out, inside an array they become `null` (as
/// `JSON.stringify` does); a non-finite number becomes the string JavaScript names it by.
fn to_json(v: &JValue) -> Option<Value> {
    Some(match v {
        JValue::Null | JValue::Undefined => Value::Null,
        JValue::Bool(b) => Value::Bool(*b),
        JValue::Number(n) => number(*n),
        JValue::String(s) => Value::String(s.to_string()),
        JValue::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| !i.is_undefined())
                .map(|i| to_json(i).unwrap_or(Value::Null))
                .collect(),
        ),
        JValue::Object(members) => Value::Object(
            members
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), to_json(v)?)))
                .collect(),
        ),
        _ => return None,
    })
}

/// A JSONata number as JSON: whole numbers without a fraction (`2`, not `2.0`).
fn number(n: f64) -> Value {
    if n.is_nan() {
        return Value::String("NaN".into());
    }
    if n.is_infinite() {
        return Value::String(if n > 0.0 { "Infinity" } else { "-Infinity" }.into());
    }
    if n.fract() == 0.0 && n.abs() < 9.0e18 {
        return Value::from(n as i64);
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}

type HostResult = Result<JValue, EvaluatorError>;

/// Adds Step Functions' functions and replaces the impure built-ins.
fn register(
    ev: &mut Evaluator,
    now: i64,
    entropy: &Rc<RefCell<Entropy>>,
) -> Result<(), EvaluatorError> {
    ev.register_fn("partition", partition)?;
    ev.register_fn("range", range)?;
    ev.register_fn("hash", hash)?;
    ev.register_fn("parse", parse)?;
    let e = Rc::clone(entropy);
    ev.register_fn("uuid", move |_: &[JValue]| {
        Ok(JValue::from(e.borrow_mut().uuid_v4()))
    })?;
    let e = Rc::clone(entropy);
    ev.register_fn_override("random", move |args: &[JValue]| random(args, &e))?;
    let e = Rc::clone(entropy);
    ev.register_fn_override("shuffle", move |args: &[JValue]| shuffle(args, &e))?;
    ev.register_fn_override("now", move |args: &[JValue]| now_fn(args, now))?;
    ev.register_fn_override("millis", move |_: &[JValue]| Ok(JValue::Number(now as f64)))?;
    ev.register_fn_override("encodeUrl", |args: &[JValue]| encode_uri(args, "encodeUrl"))?;
    ev.register_fn_override("encodeUrlComponent", |args: &[JValue]| {
        encode_uri(args, "encodeUrlComponent")
    })?;
    ev.register_fn_override("pad", pad)?;
    ev.register_fn_override("eval", |_: &[JValue]| {
        Err(EvaluatorError::ReferenceError(
            "T1006: Attempted to invoke a non-function".into(),
        ))
    })?;
    Ok(())
}

/// `$encodeUrl`/`$encodeUrlComponent` as JavaScript's `encodeURI`/`encodeURIComponent`
/// (jsonata-core 2.2.13 escapes too much in one and too little in the other).
fn encode_uri(args: &[JValue], function: &str) -> HostResult {
    let s = match args.first() {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::String(s)) => s,
        Some(_) => return Err(bad_argument(1, function)),
    };
    let reserved: &[u8] = if function == "encodeUrl" {
        b";,/?:@&=+$#"
    } else {
        b""
    };
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) || reserved.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(JValue::from(out))
}

/// An evaluation that went past [`MAX_EVALUATION_BYTES`].
fn out_of_memory() -> String {
    format!("U1004: Evaluation used more than {MAX_EVALUATION_BYTES} bytes of memory")
}

/// `$pad(string, width[, char])` as jsonata-core's, but refusing to build more than
/// [`MAX_EVALUATION_BYTES`]: one built-in call finishes before the memory meter stops it.
fn pad(args: &[JValue]) -> HostResult {
    let s = match args.first() {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::String(s)) => s.clone(),
        Some(JValue::Null) => return Ok(JValue::Null),
        Some(_) => return Err(bad_argument(1, "pad")),
    };
    let width = match args.get(1) {
        None | Some(JValue::Undefined) => return Ok(JValue::String(s)),
        Some(JValue::Number(n)) => n.trunc(),
        Some(_) => return Err(bad_argument(2, "pad")),
    };
    let fill: Vec<char> = match args.get(2) {
        None | Some(JValue::Undefined) => vec![' '],
        Some(JValue::String(c)) if c.is_empty() => vec![' '],
        Some(JValue::String(c)) => c.chars().collect(),
        Some(_) => return Err(bad_argument(3, "pad")),
    };
    let length = s.chars().count() as f64;
    if width.is_nan() || width.abs() <= length {
        return Ok(JValue::String(s));
    }
    let needed = width.abs() - length;
    let widest = fill.iter().map(|c| c.len_utf8()).max().unwrap_or(1);
    if needed * widest as f64 + s.len() as f64 > MAX_EVALUATION_BYTES as f64 {
        return Err(EvaluatorError::EvaluationError(out_of_memory()));
    }
    let padding: String = fill.iter().cycle().take(needed as usize).collect();
    Ok(JValue::from(if width < 0.0 {
        format!("{padding}{s}")
    } else {
        format!("{s}{padding}")
    }))
}

/// The signature error jsonata uses for an argument of the wrong type.
fn bad_argument(index: usize, function: &str) -> EvaluatorError {
    EvaluatorError::TypeError(format!(
        "T0410: Argument {index} of function \"{function}\" does not match function signature"
    ))
}

/// A number argument, truncated towards zero; `Ok(None)` when it is undefined.
fn integer(args: &[JValue], i: usize, function: &str) -> Result<Option<f64>, EvaluatorError> {
    match args.get(i) {
        None | Some(JValue::Undefined) => Ok(None),
        Some(JValue::Number(n)) if n.is_finite() => Ok(Some(n.trunc())),
        Some(_) => Err(bad_argument(i + 1, function)),
    }
}

/// `$partition(array, size)`: chunks of `size` items, the last one holding the rest.
fn partition(args: &[JValue]) -> HostResult {
    let items: Vec<JValue> = match args.first() {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::Array(a)) => a.iter().cloned().collect(),
        Some(v) => vec![v.clone()],
    };
    let Some(size) = integer(args, 1, "partition")? else {
        return Ok(JValue::Undefined);
    };
    if size < 1.0 || items.is_empty() {
        return Ok(JValue::Undefined);
    }
    let size = size.min(items.len() as f64) as usize;
    Ok(JValue::array(
        items
            .chunks(size)
            .map(|c| JValue::array(c.to_vec()))
            .collect(),
    ))
}

/// `$range(start, end, step)`: `start`, `start + step`, ... up to `end` inclusive; a single
/// number stays a number.
fn range(args: &[JValue]) -> HostResult {
    let (Some(start), Some(end), Some(step)) = (
        integer(args, 0, "range")?,
        integer(args, 1, "range")?,
        integer(args, 2, "range")?,
    ) else {
        return Ok(JValue::Undefined);
    };
    if start != end && (step == 0.0 || (end - start).signum() != step.signum()) {
        return Ok(JValue::Undefined);
    }
    let count = if start == end {
        1.0
    } else {
        ((end - start) / step).floor() + 1.0
    };
    if count > MAX_RANGE {
        return Err(EvaluatorError::EvaluationError(
            "Expression evaluation memory limit exceeded".into(),
        ));
    }
    let values: Vec<JValue> = (0..count as u64)
        .map(|i| JValue::Number(start + i as f64 * step))
        .collect();
    Ok(match values.as_slice() {
        [one] => one.clone(),
        _ => JValue::array(values),
    })
}

/// `$hash(string, algorithm)`: the hex digest, for MD5, SHA-1, SHA-256, SHA-384 or SHA-512.
fn hash(args: &[JValue]) -> HostResult {
    let data = match args.first() {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::String(s)) => s,
        Some(_) => return Err(bad_argument(1, "hash")),
    };
    let algorithm = match args.get(1) {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::String(s)) => s,
        Some(_) => return Err(bad_argument(2, "hash")),
    };
    crate::intrinsics::hash_hex(algorithm, data)
        .map(JValue::from)
        .ok_or_else(|| {
            EvaluatorError::EvaluationError(format!(
                "The hash algorithm '{algorithm}' is not supported; use one of [MD5, SHA-1, SHA-256, SHA-384, SHA-512]"
            ))
        })
}

/// `$parse(jsonString)`: the value the JSON text describes.
fn parse(args: &[JValue]) -> HostResult {
    match args.first() {
        None | Some(JValue::Undefined) => Ok(JValue::Undefined),
        Some(JValue::String(s)) => {
            serde_json::from_str::<Value>(s)
                .map(JValue::from)
                .map_err(|e| {
                    EvaluatorError::EvaluationError(format!("Unable to parse '{s}' as JSON: {e}"))
                })
        }
        Some(_) => Err(bad_argument(1, "parse")),
    }
}

/// `$random([seed])`: a number in `[0, 1)`. Seeded, it is the first `nextDouble()` of a
/// `java.util.Random` given the seed as a Java `long` (AWS's results match Java's; a fraction
/// is cut off as Java's `(long)` cast does [GUESS: AWS documents only whole seeds]).
fn random(args: &[JValue], entropy: &RefCell<Entropy>) -> HostResult {
    let n = match integer(args, 0, "random")? {
        Some(seed) => JavaRandom::new(seed as i64).next_double(),
        None => entropy.borrow_mut().next_f64(),
    };
    Ok(JValue::Number(n))
}

/// `$shuffle(array)`, drawing from the execution's entropy.
fn shuffle(args: &[JValue], entropy: &RefCell<Entropy>) -> HostResult {
    let mut items: Vec<JValue> = match args.first() {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::Array(a)) => a.iter().cloned().collect(),
        Some(v) => vec![v.clone()],
    };
    let mut e = entropy.borrow_mut();
    for i in (1..items.len()).rev() {
        let j = (e.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    Ok(JValue::array(items))
}

/// `$now([picture [, timezone]])` at the injected time.
fn now_fn(args: &[JValue], now: i64) -> HostResult {
    if args.iter().all(JValue::is_undefined) {
        return Ok(JValue::from(timestamp::format_millis(now)));
    }
    let ast = parser::parse("$fromMillis($m, $p, $t)")
        .map_err(|e| EvaluatorError::EvaluationError(e.to_string()))?;
    let mut context = Context::new();
    context.bind("m".into(), JValue::Number(now as f64));
    for (name, arg) in ["p", "t"].into_iter().zip(args) {
        context.bind(name.into(), arg.clone());
    }
    Evaluator::with_context(context).evaluate(&ast, &JValue::Undefined)
}
