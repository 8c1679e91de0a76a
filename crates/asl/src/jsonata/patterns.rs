//! Regular expressions that the `regex` crate cannot run: look-around and back-references.
//!
//! AWS runs JSONata's regular expressions in a backtracking engine, jsonata-core in `regex`,
//! which refuses them. When the definition is parsed, a call of `$contains`, `$match`,
//! `$replace` or `$split` whose regular expression literal only `fancy-regex` compiles is
//! routed to the functions here, which follow jsonata 2.0.6's. Each match is bounded by
//! [`BACKTRACK_LIMIT`].
//!
//! Known gaps: such a regular expression held in a variable, called directly (`/a(?=b)/(s)`),
//! or given to `$replace` with a function as the replacement still fails.

use fancy_regex::{Captures, Regex, RegexBuilder};
use jsonata_core::ast::{AstNode, BinaryOp, Stage};
use jsonata_core::evaluator::{Evaluator, EvaluatorError};
use jsonata_core::value::JValue;
use serde_json::{json, Value};

use super::{bad_argument, integer, HostResult};

/// The most backtracking steps one match may take before it fails.
const BACKTRACK_LIMIT: usize = 1_000_000;

/// The functions that take a regular expression, and the host functions they are routed to
/// (a name with a space cannot be written in an expression).
const ROUTES: [(&str, &str); 4] = [
    ("contains", "contains (fancy-regex)"),
    ("match", "match (fancy-regex)"),
    ("replace", "replace (fancy-regex)"),
    ("split", "split (fancy-regex)"),
];

/// Routes the calls whose regular expression literal needs `fancy-regex`; whether it did.
pub(super) fn route(root: &mut AstNode) -> bool {
    let mut routed = false;
    let mut work = vec![root];
    while let Some(node) = work.pop() {
        match node {
            AstNode::Function {
                name,
                args,
                is_builtin: true,
            } => {
                routed |= reroute(name, args, 1);
                work.extend(args.iter_mut());
            }
            AstNode::Path { steps } => {
                for step in steps {
                    work.push(&mut step.node);
                    for stage in &mut step.stages {
                        if let Stage::Filter(e) = stage {
                            work.push(e);
                        }
                    }
                }
            }
            AstNode::Binary { op, lhs, rhs } => {
                // `s ~> $match(/re/)`: the string is the call's missing first argument.
                if let (
                    BinaryOp::ChainPipe,
                    AstNode::Function {
                        name,
                        args,
                        is_builtin: true,
                    },
                ) = (op, rhs.as_mut())
                {
                    routed |= reroute(name, args, 0);
                }
                work.push(lhs);
                work.push(rhs);
            }
            AstNode::Unary { operand, .. } => work.push(operand),
            AstNode::Function { args, .. } => work.extend(args.iter_mut()),
            AstNode::Call { procedure, args } => {
                work.push(procedure);
                work.extend(args.iter_mut());
            }
            AstNode::Lambda { body, .. } => work.push(body),
            AstNode::Array(items) | AstNode::Block(items) | AstNode::ArrayGroup(items) => {
                work.extend(items.iter_mut());
            }
            AstNode::Object(pairs) => {
                for (k, v) in pairs {
                    work.push(k);
                    work.push(v);
                }
            }
            AstNode::ObjectTransform { input, pattern } => {
                work.push(input);
                for (k, v) in pattern {
                    work.push(k);
                    work.push(v);
                }
            }
            AstNode::Conditional {
                condition,
                then_branch,
                else_branch,
            } => {
                work.push(condition);
                work.push(then_branch);
                if let Some(e) = else_branch {
                    work.push(e);
                }
            }
            AstNode::FunctionApplication(e) => work.push(e),
            AstNode::Sort { input, terms } => {
                work.push(input);
                work.extend(terms.iter_mut().map(|(t, _)| t));
            }
            AstNode::Transform {
                location,
                update,
                delete,
            } => {
                work.push(location);
                work.push(update);
                if let Some(d) = delete {
                    work.push(d);
                }
            }
            _ => {}
        }
    }
    routed
}

/// Routes a call of a regular-expression function whose argument `at` is a literal that
/// needs `fancy-regex`; whether it did.
fn reroute(name: &mut String, args: &[AstNode], at: usize) -> bool {
    let route = ROUTES.iter().find(|(builtin, _)| builtin == name);
    match (route, args.get(at)) {
        (Some((_, host)), Some(AstNode::Regex { pattern, flags }))
            if needs_fancy(pattern, flags) =>
        {
            *name = (*host).to_owned();
            true
        }
        _ => false,
    }
}

/// The pattern with JSONata's flags (`i`, `m`) written inline.
fn with_flags(pattern: &str, flags: &str) -> String {
    let inline: String = flags.chars().filter(|f| matches!(f, 'i' | 'm')).collect();
    if inline.is_empty() {
        pattern.to_owned()
    } else {
        format!("(?{inline}){pattern}")
    }
}

fn needs_fancy(pattern: &str, flags: &str) -> bool {
    let full = with_flags(pattern, flags);
    regex::Regex::new(&full).is_err() && compile(&full).is_ok()
}

fn compile(full: &str) -> Result<Regex, fancy_regex::Error> {
    RegexBuilder::new(full)
        .backtrack_limit(BACKTRACK_LIMIT)
        .build()
}

/// Makes the routed functions callable.
pub(super) fn register(ev: &mut Evaluator) -> Result<(), EvaluatorError> {
    let [contains_fn, match_fn, replace_fn, split_fn] = ROUTES.map(|(_, host)| host);
    ev.register_fn(contains_fn, contains)?;
    ev.register_fn(match_fn, match_all)?;
    ev.register_fn(replace_fn, replace)?;
    ev.register_fn(split_fn, split)?;
    Ok(())
}

/// The string argument; `Ok(None)` when it is undefined (the function then returns nothing).
fn text<'a>(args: &'a [JValue], function: &str) -> Result<Option<&'a str>, EvaluatorError> {
    match args.first() {
        None | Some(JValue::Undefined) => Ok(None),
        Some(JValue::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad_argument(1, function)),
    }
}

fn regex(args: &[JValue], function: &str) -> Result<Regex, EvaluatorError> {
    match args.get(1) {
        Some(JValue::Regex { pattern, flags }) => compile(&with_flags(pattern, flags))
            .map_err(|e| EvaluatorError::EvaluationError(format!("Invalid regex: {e}"))),
        _ => Err(bad_argument(2, function)),
    }
}

/// A limit argument: `Ok(None)` when it is absent; negative is jsonata's `code` error.
fn limit(
    args: &[JValue],
    i: usize,
    function: &str,
    code: &str,
) -> Result<Option<usize>, EvaluatorError> {
    match integer(args, i, function)? {
        None => Ok(None),
        Some(n) if n < 0.0 => Err(EvaluatorError::EvaluationError(format!(
            "{code}: {} argument of {function} function must evaluate to a positive number",
            if i == 2 { "Third" } else { "Fourth" }
        ))),
        Some(n) => Ok(Some(n as usize)),
    }
}

/// The first `limit` matches, each refused when it is empty (jsonata's D1004).
fn matches<'t>(
    re: &Regex,
    s: &'t str,
    limit: Option<usize>,
) -> Result<Vec<Captures<'t, str>>, EvaluatorError> {
    let mut out = Vec::new();
    for caps in re.captures_iter(s).take(limit.unwrap_or(usize::MAX)) {
        let caps = caps.map_err(|e| EvaluatorError::EvaluationError(e.to_string()))?;
        if caps.get(0).is_none_or(|m| m.as_str().is_empty()) {
            return Err(EvaluatorError::EvaluationError(
                "D1004: Regular expression matches zero length string".into(),
            ));
        }
        out.push(caps);
    }
    Ok(out)
}

/// A match's whole text, start and end (byte offsets) and groups (unmatched ones `None`).
fn whole<'t>(caps: &Captures<'t, str>) -> (&'t str, usize, usize) {
    caps.get(0)
        .map_or(("", 0, 0), |m| (m.as_str(), m.start(), m.end()))
}

fn groups(caps: &Captures<str>) -> Vec<Option<String>> {
    (1..caps.len())
        .map(|i| caps.get(i).map(|m| m.as_str().to_owned()))
        .collect()
}

/// `$contains(str, pattern)`.
fn contains(args: &[JValue]) -> HostResult {
    let Some(s) = text(args, "contains")? else {
        return Ok(JValue::Undefined);
    };
    let re = regex(args, "contains")?;
    re.is_match(s)
        .map(JValue::Bool)
        .map_err(|e| EvaluatorError::EvaluationError(e.to_string()))
}

/// `$match(str, pattern [, limit])`: `{match, index, groups}` for each match, the index
/// counted in UTF-16 code units as JavaScript and Java count.
fn match_all(args: &[JValue]) -> HostResult {
    let Some(s) = text(args, "match")? else {
        return Ok(JValue::Undefined);
    };
    let re = regex(args, "match")?;
    let limit = limit(args, 2, "match", "D3040")?;
    let found: Vec<Value> = matches(&re, s, limit)?
        .iter()
        .map(|caps| {
            let (m, start, _) = whole(caps);
            json!({
                "match": m,
                "index": s[..start].encode_utf16().count(),
                "groups": groups(caps),
            })
        })
        .collect();
    Ok(match found.len() {
        0 => JValue::Undefined,
        1 => JValue::from(found.into_iter().next().unwrap_or_default()),
        _ => JValue::from(Value::Array(found)),
    })
}

/// `$replace(str, pattern, replacement [, limit])` with a string replacement.
fn replace(args: &[JValue]) -> HostResult {
    let Some(s) = text(args, "replace")? else {
        return Ok(JValue::Undefined);
    };
    let re = regex(args, "replace")?;
    let replacement = match args.get(2) {
        Some(JValue::String(r)) => r,
        _ => return Err(bad_argument(3, "replace")),
    };
    let limit = limit(args, 3, "replace", "D3011")?;
    let mut out = String::with_capacity(s.len());
    let mut position = 0;
    for caps in matches(&re, s, limit)? {
        let (m, start, end) = whole(&caps);
        out.push_str(&s[position..start]);
        substitute(replacement, m, &groups(&caps), &mut out);
        position = end;
    }
    out.push_str(&s[position..]);
    Ok(JValue::from(out))
}

/// jsonata's replacement string: `$$` is `$`, `$0` the match, `$n` group `n` (as many digits
/// as the group count has, one fewer when that names no group), any other `$` itself.
fn substitute(replacement: &str, m: &str, groups: &[Option<String>], out: &mut String) {
    let digits = groups.len().max(1).to_string().len();
    let mut rest = replacement;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix('0') {
            out.push_str(m);
            rest = after;
        } else {
            let lead = rest
                .bytes()
                .take(digits)
                .take_while(u8::is_ascii_digit)
                .count();
            let mut index: usize = rest[..lead].parse().unwrap_or(0);
            let mut used = lead;
            if lead > 1 && index > groups.len() {
                used = lead - 1;
                index = rest[..used].parse().unwrap_or(0);
            }
            if used == 0 {
                out.push('$');
                continue;
            }
            if let Some(Some(g)) = index.checked_sub(1).and_then(|i| groups.get(i)) {
                out.push_str(g);
            }
            rest = &rest[index.to_string().len().min(used)..];
        }
    }
    out.push_str(rest);
}

/// `$split(str, pattern [, limit])`.
fn split(args: &[JValue]) -> HostResult {
    let Some(s) = text(args, "split")? else {
        return Ok(JValue::Undefined);
    };
    let re = regex(args, "split")?;
    let limit = limit(args, 2, "split", "D3020")?;
    let found = matches(&re, s, limit)?;
    let mut parts = Vec::with_capacity(found.len() + 1);
    let mut position = 0;
    for caps in &found {
        let (_, start, end) = whole(caps);
        parts.push(JValue::from(&s[position..start]));
        position = end;
    }
    if limit.is_none_or(|l| found.len() < l) {
        parts.push(JValue::from(&s[position..]));
    }
    Ok(JValue::array(parts))
}
