//! Intrinsic functions (`States.Format(...)` and the rest): parser and evaluator.
//!
//! A call is parsed once, when the definition is validated: unknown functions, wrong argument
//! counts, illegal escapes and literal arguments of the wrong type are rejected then. Values
//! coming from paths are checked at run time, and failures raise `States.IntrinsicFailure`.
//!
//! String literals are single-quoted; the only escapes are `\'`, `\{`, `\}` and `\\` (AWS
//! rejects `\"`). In `States.Format` an unescaped `{}` is a placeholder.
//! Numbers are rendered as Java (Jackson) renders them: `1.0`, `1.1`, `1.0E21`.

use base64::Engine as _;
use md5::Md5;
use serde_json::{Map, Number, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::jsonpath::{json_eq, JsonPath, Root};
use crate::template::Scope;
use crate::{Entropy, ErrorCause};

/// Whether a string is an intrinsic function call rather than a path.
pub fn is_intrinsic(s: &str) -> bool {
    s.starts_with("States.")
}

/// A parsed intrinsic function call.
#[derive(Debug, Clone)]
pub struct Intrinsic {
    text: String,
    call: Call,
}

impl Intrinsic {
    /// Parses a call; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<Intrinsic, String> {
        let mut p = Parser {
            chars: text.chars().collect(),
            pos: 0,
            text,
            depth: 0,
        };
        p.skip_ws();
        let call = p.call()?;
        p.skip_ws();
        if p.pos < p.chars.len() {
            return Err(p.error("unexpected text after the call"));
        }
        Ok(Intrinsic {
            text: text.to_owned(),
            call,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Evaluates the call.
    pub fn eval(&self, scope: &mut Scope) -> Result<Value, ErrorCause> {
        self.eval_field(scope, "")
    }

    /// Evaluates the call for the named field (`key.$`, `CausePath`, ...), which a missing
    /// path's `States.Runtime` error names.
    pub fn eval_field(&self, scope: &mut Scope, field: &str) -> Result<Value, ErrorCause> {
        self.call.eval(scope, field)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

/// Name, function, and the least and most number of arguments.
const FUNCTIONS: [(&str, Func, usize, usize); 18] = [
    ("Format", Func::Format, 1, usize::MAX),
    ("StringToJson", Func::StringToJson, 1, 1),
    ("JsonToString", Func::JsonToString, 1, 1),
    ("Array", Func::Array, 0, usize::MAX),
    ("ArrayPartition", Func::ArrayPartition, 2, 2),
    ("ArrayContains", Func::ArrayContains, 2, 2),
    ("ArrayRange", Func::ArrayRange, 3, 3),
    ("ArrayGetItem", Func::ArrayGetItem, 2, 2),
    ("ArrayLength", Func::ArrayLength, 1, 1),
    ("ArrayUnique", Func::ArrayUnique, 1, 1),
    ("Base64Encode", Func::Base64Encode, 1, 1),
    ("Base64Decode", Func::Base64Decode, 1, 1),
    ("Hash", Func::Hash, 2, 2),
    ("JsonMerge", Func::JsonMerge, 3, 3),
    ("MathRandom", Func::MathRandom, 2, 3),
    ("MathAdd", Func::MathAdd, 2, 2),
    ("StringSplit", Func::StringSplit, 2, 2),
    ("UUID", Func::Uuid, 0, 0),
];

/// The most characters `Base64Encode`, `Base64Decode` and `Hash` accept, and the most
/// elements `ArrayRange` produces.
const MAX_INPUT_CHARS: usize = 10_000;
const MAX_RANGE_ITEMS: usize = 1_000;
const HASH_ALGORITHMS: [&str; 5] = ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"];

impl Func {
    fn name(self) -> String {
        let name = FUNCTIONS.iter().find(|f| f.1 == self).map_or("", |f| f.0);
        format!("States.{name}")
    }

    /// Checks argument `i` of a call with `count` arguments.
    fn check(self, i: usize, v: &Value) -> Result<(), String> {
        let want = match (self, i) {
            (Func::Format, 0)
            | (Func::StringToJson, _)
            | (Func::Base64Encode | Func::Base64Decode, _)
            | (Func::Hash, _)
            | (Func::StringSplit, _) => Kind::String,
            (Func::ArrayPartition | Func::ArrayContains | Func::ArrayGetItem, 0)
            | (Func::ArrayLength | Func::ArrayUnique, _) => Kind::Array,
            (Func::ArrayPartition, _) => Kind::PositiveInt,
            (Func::ArrayGetItem, _) => Kind::NonNegativeInt,
            (Func::ArrayRange, _) => Kind::Int,
            (Func::MathAdd | Func::MathRandom, _) => Kind::Number,
            (Func::JsonMerge, 2) => Kind::False,
            (Func::JsonMerge, _) => Kind::Object,
            _ => Kind::Any,
        };
        if !want.accepts(v) {
            return Err(format!(
                "The {} argument of {} must be {}, but was: {}",
                ordinal(i),
                self.name(),
                want.describe(),
                java_json(v)
            ));
        }
        let too_long = |s: &str| s.chars().count() > MAX_INPUT_CHARS;
        match (self, i, v) {
            (Func::Base64Encode | Func::Base64Decode, _, Value::String(s))
            | (Func::Hash, 0, Value::String(s))
                if too_long(s) =>
            {
                Err(format!(
                    "The input to {} exceeds {MAX_INPUT_CHARS} characters",
                    self.name()
                ))
            }
            (Func::Hash, 1, Value::String(s)) if !HASH_ALGORITHMS.contains(&s.as_str()) => {
                Err(format!(
                    "The hash algorithm '{s}' is not supported by States.Hash; use one of [{}]",
                    HASH_ALGORITHMS.join(", ")
                ))
            }
            _ => Ok(()),
        }
    }
}

fn ordinal(i: usize) -> &'static str {
    ["first", "second", "third"]
        .get(i)
        .copied()
        .unwrap_or("next")
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Any,
    String,
    Array,
    Object,
    Number,
    Int,
    PositiveInt,
    NonNegativeInt,
    False,
}

impl Kind {
    fn accepts(self, v: &Value) -> bool {
        match self {
            Kind::Any => true,
            Kind::String => v.is_string(),
            Kind::Array => v.is_array(),
            Kind::Object => v.is_object(),
            Kind::Number => v.is_number(),
            Kind::Int => int(v).is_some(),
            Kind::PositiveInt => int(v).is_some_and(|n| n > 0),
            Kind::NonNegativeInt => int(v).is_some_and(|n| n >= 0),
            Kind::False => v == &Value::Bool(false),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Any => "a value",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "a JSON object",
            Kind::Number => "a number",
            Kind::Int => "an integer",
            Kind::PositiveInt => "a positive integer",
            Kind::NonNegativeInt => "a non-negative integer",
            Kind::False => "false (deep merge is not supported)",
        }
    }
}

/// An integral number (`2` or `2.0`) as an `i64`.
fn int(v: &Value) -> Option<i64> {
    let n = v.as_number()?;
    n.as_i64().or_else(|| {
        let f = n.as_f64()?;
        (f.fract() == 0.0 && f.abs() < 9.2e18).then_some(f as i64)
    })
}

#[derive(Debug, Clone)]
struct Call {
    func: Func,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    /// A string literal: its value, and the text between its unescaped `{}` placeholders.
    Text {
        value: String,
        segments: Vec<String>,
    },
    Literal(Value),
    Path(JsonPath),
    Call(Call),
}

impl Call {
    fn eval(&self, scope: &mut Scope, field: &str) -> Result<Value, ErrorCause> {
        let mut values = Vec::with_capacity(self.args.len());
        for (i, arg) in self.args.iter().enumerate() {
            let v = match arg {
                Arg::Text { value, .. } => Value::String(value.clone()),
                Arg::Literal(v) => v.clone(),
                Arg::Path(p) => resolve(p, scope, field)?,
                Arg::Call(c) => c.eval(scope, field)?,
            };
            self.func.check(i, &v).map_err(ErrorCause::intrinsic)?;
            values.push(v);
        }
        self.apply(values, scope.entropy)
            .map_err(ErrorCause::intrinsic)
    }

    fn apply(&self, args: Vec<Value>, entropy: &mut Entropy) -> Result<Value, String> {
        let name = self.func.name();
        let mut args = args.into_iter();
        let mut next = || args.next().unwrap_or(Value::Null);
        let string = |v: Value| match v {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let array = |v: Value| match v {
            Value::Array(a) => a,
            _ => Vec::new(),
        };
        let number = |v: &Value| int(v).unwrap_or_default();
        Ok(match self.func {
            Func::Format => {
                let template = next();
                let segments = match self.args.first() {
                    Some(Arg::Text { segments, .. }) => segments.clone(),
                    _ => string(template).split("{}").map(str::to_owned).collect(),
                };
                let values: Vec<Value> = std::iter::from_fn(|| args.next()).collect();
                if values.len() + 1 != segments.len() {
                    return Err(format!(
                        "Number of arguments in {name} do not match the number of placeholders: \
                         {} placeholders, {} arguments",
                        segments.len() - 1,
                        values.len()
                    ));
                }
                let mut out = segments[0].clone();
                for (v, s) in values.iter().zip(&segments[1..]) {
                    out.push_str(&format_value(v));
                    out.push_str(s);
                }
                Value::String(out)
            }
            Func::StringToJson => {
                let s = string(next());
                if s.trim().is_empty() {
                    Value::Null
                } else {
                    let v = serde_json::from_str(&s)
                        .map_err(|e| format!("Invalid JSON string passed to {name}: {e}"))?;
                    without_negative_zero(v)
                }
            }
            Func::JsonToString => Value::String(java_json(&next())),
            Func::Array => Value::Array(std::iter::from_fn(|| args.next()).collect()),
            Func::ArrayPartition => {
                let items = array(next());
                let size = usize::try_from(number(&next()))
                    .unwrap_or(usize::MAX)
                    .max(1);
                items
                    .chunks(size)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect()
            }
            Func::ArrayContains => {
                let (items, wanted) = (array(next()), next());
                Value::Bool(items.iter().any(|v| json_eq(v, &wanted)))
            }
            Func::ArrayRange => {
                let (start, end, step) = (number(&next()), number(&next()), number(&next()));
                range(start, end, step).map_err(|e| format!("{e} in {name}"))?
            }
            Func::ArrayGetItem => {
                let (items, index) = (array(next()), number(&next()));
                usize::try_from(index).ok().and_then(|i| items.get(i)).cloned().ok_or_else(|| {
                    format!("The index {index} is out of bounds for an array of length {} in {name}", items.len())
                })?
            }
            Func::ArrayLength => array(next()).len().into(),
            Func::ArrayUnique => {
                let mut unique: Vec<Value> = Vec::new();
                for v in array(next()) {
                    if !unique.iter().any(|u| json_eq(u, &v)) {
                        unique.push(v);
                    }
                }
                Value::Array(unique)
            }
            Func::Base64Encode => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(string(next())))
            }
            Func::Base64Decode => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(string(next()))
                    .map_err(|_| format!("The input to {name} is not valid base64"))?;
                Value::String(
                    String::from_utf8(bytes).map_err(|_| {
                        format!("The input to {name} does not decode to UTF-8 text")
                    })?,
                )
            }
            Func::Hash => {
                let data = string(next());
                let algorithm = string(next());
                Value::String(hash_hex(&algorithm, &data).unwrap_or_default())
            }
            Func::JsonMerge => {
                let mut merged = match next() {
                    Value::Object(m) => m,
                    _ => Map::new(),
                };
                if let Value::Object(m) = next() {
                    merged.extend(m);
                }
                Value::Object(merged)
            }
            Func::MathRandom => {
                // AWS accepts fractional bounds and truncates them (corpus: 12.5, 44.51).
                let truncated =
                    |v: &Value| v.as_f64().map(|f| f.trunc() as i64).unwrap_or_default();
                let (start, end) = (truncated(&next()), truncated(&next()));
                if start >= end {
                    return Err(format!(
                        "The start {start} must be less than the end {end} in {name}"
                    ));
                }
                let span = (i128::from(end) - i128::from(start)) as u128;
                let draw = match self.args.len() {
                    3 => Entropy::new(number(&next()) as u64).next_u64(),
                    _ => entropy.next_u64(),
                };
                let n = i128::from(start) + (u128::from(draw) % span) as i128;
                i64::try_from(n)
                    .map_err(|_| format!("{name} result out of range"))?
                    .into()
            }
            Func::MathAdd => {
                let (a, b) = (next(), next());
                let (a, b) = (
                    java_round(a.as_f64().unwrap_or_default()),
                    java_round(b.as_f64().unwrap_or_default()),
                );
                a.checked_add(b)
                    .ok_or_else(|| format!("Overflow in {name}"))?
                    .into()
            }
            Func::StringSplit => {
                let (s, delimiters) = (string(next()), string(next()));
                let parts = s
                    .split(|c| delimiters.contains(c))
                    .filter(|p| !p.is_empty());
                parts.map(|p| Value::String(p.to_owned())).collect()
            }
            Func::Uuid => Value::String(entropy.uuid_v4()),
        })
    }
}

/// Jackson reads `-0` as the integer 0; serde_json keeps a negative zero double.
fn without_negative_zero(v: Value) -> Value {
    match v {
        Value::Number(n) if n.as_f64() == Some(0.0) && n.is_f64() => {
            if n.as_f64().is_some_and(f64::is_sign_negative) {
                Value::from(0)
            } else {
                Value::Number(n)
            }
        }
        Value::Array(a) => a.into_iter().map(without_negative_zero).collect(),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, without_negative_zero(v)))
                .collect(),
        ),
        other => other,
    }
}

fn range(start: i64, end: i64, step: i64) -> Result<Value, String> {
    if step == 0 {
        return Err("The step must not be 0".to_owned());
    }
    let count = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
    if count > MAX_RANGE_ITEMS as i128 {
        return Err(format!(
            "The result would exceed {MAX_RANGE_ITEMS} elements"
        ));
    }
    let count = count.max(0) as i64;
    // Every element lies between start and end, so it fits an i64.
    let item = |k: i64| i128::from(start) + i128::from(k) * i128::from(step);
    Ok((0..count).map(|k| Value::from(item(k) as i64)).collect())
}

/// Java's `Math.round`: halves round up (towards positive infinity).
fn java_round(f: f64) -> i64 {
    (f + 0.5).floor() as i64
}

/// The lowercase hex digest of `data` (`States.Hash`, JSONata `$hash`); `None` for an
/// algorithm other than MD5, SHA-1, SHA-256, SHA-384 and SHA-512.
pub(crate) fn hash_hex(algorithm: &str, data: &str) -> Option<String> {
    let bytes = data.as_bytes();
    Some(match algorithm {
        "MD5" => hex(&Md5::digest(bytes)),
        "SHA-1" => hex(&Sha1::digest(bytes)),
        "SHA-256" => hex(&Sha256::digest(bytes)),
        "SHA-384" => hex(&Sha384::digest(bytes)),
        "SHA-512" => hex(&Sha512::digest(bytes)),
        _ => return None,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn resolve(path: &JsonPath, scope: &Scope, field: &str) -> Result<Value, ErrorCause> {
    let root = match path.root() {
        Root::Input => Some(scope.input),
        Root::Context => Some(scope.context),
        Root::Variable(name) => scope.variables.and_then(|vars| vars.get(name)),
    };
    root.and_then(|r| path.select(r))
        .ok_or_else(|| missing_path(path, field, scope.input))
}

/// AWS's error for a path that does not resolve in a payload template or intrinsic.
pub(crate) fn missing_path(path: &JsonPath, field: &str, input: &Value) -> ErrorCause {
    let field = if field.is_empty() {
        String::new()
    } else {
        format!(" specified for the field '{field}'")
    };
    ErrorCause::runtime(format!(
        "The JSONPath '{}'{field} could not be found in the input '{input}'",
        path.text()
    ))
}

/// A number as Java renders it: integers plainly, doubles as `Double.toString` does.
pub(crate) fn java_number(n: &Number) -> String {
    if !n.is_f64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or_default();
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    if (1e-3..1e7).contains(&f.abs()) {
        let s = f.to_string();
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let s = format!("{f:e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_owned()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

/// Compact JSON with Java number rendering (what Jackson writes).
pub(crate) fn java_json(v: &Value) -> String {
    match v {
        Value::Number(n) => java_number(n),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(java_json).collect::<Vec<_>>().join(",")
        ),
        Value::Object(m) => {
            let members: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), java_json(v)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        other => other.to_string(),
    }
}

/// A value as `States.Format` inserts it: strings raw, containers as Java's `toString`.
fn format_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => java_number(n),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(format_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => {
            let members: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", format_value(v)))
                .collect();
            format!("{{{}}}", members.join(", "))
        }
        other => other.to_string(),
    }
}

/// How deeply intrinsic calls may nest in one field: the developer guide allows nesting "up
/// to 10 intrinsic functions within a field". It also bounds the parser's and evaluator's
/// recursion.
pub const MAX_NESTING: usize = 10;

struct Parser<'t> {
    text: &'t str,
    chars: Vec<char>,
    pos: usize,
    /// The number of calls open around the one being parsed.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error(&self, what: &str) -> String {
        format!("{what} at position {} in '{}'", self.pos, self.text)
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected '{c}'")))
        }
    }

    fn call(&mut self) -> Result<Call, String> {
        if self.depth == MAX_NESTING {
            return Err(self.error(&format!(
                "intrinsic functions nested more than {MAX_NESTING} deep"
            )));
        }
        self.depth += 1;
        let call = self.call_inner();
        self.depth -= 1;
        call
    }

    fn call_inner(&mut self) -> Result<Call, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '.') {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let (_, func, min, max) = name
            .strip_prefix("States.")
            .and_then(|n| FUNCTIONS.iter().find(|f| f.0 == n))
            .copied()
            .ok_or_else(|| format!("'{name}' is not a known intrinsic function"))?;
        self.expect('(')?;
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                args.push(self.arg()?);
                self.skip_ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error("expected ',' or ')'")),
                }
            }
        }
        if args.len() < min || args.len() > max {
            let expected = match (min, max) {
                (a, b) if a == b => a.to_string(),
                (a, usize::MAX) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return Err(format!(
                "{} takes {expected} arguments, but got {}",
                func.name(),
                args.len()
            ));
        }
        for (i, arg) in args.iter().enumerate() {
            match arg {
                Arg::Text { value, .. } => func.check(i, &Value::String(value.clone()))?,
                Arg::Literal(v) => func.check(i, v)?,
                _ => {}
            }
        }
        Ok(Call { func, args })
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.skip_ws();
        match self.peek() {
            Some('\'') => self.string(),
            Some('$') => self.path(),
            Some('S') => self.call().map(Arg::Call),
            _ => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '+' | '.'))
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "true" => Ok(Arg::Literal(Value::Bool(true))),
                    "false" => Ok(Arg::Literal(Value::Bool(false))),
                    "null" => Ok(Arg::Literal(Value::Null)),
                    _ => serde_json::from_str::<Number>(&word)
                        .map(|n| Arg::Literal(Value::Number(n)))
                        .map_err(|_| self.error("expected an argument")),
                }
            }
        }
    }

    fn string(&mut self) -> Result<Arg, String> {
        self.pos += 1;
        let (mut value, mut segments, mut current) = (String::new(), Vec::new(), String::new());
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string literal")),
                Some('\'') => break,
                Some('\\') => {
                    let c = self.chars.get(self.pos + 1).copied();
                    let c = c.filter(|c| matches!(c, '\'' | '{' | '}' | '\\'));
                    let c = c.ok_or_else(|| self.error("illegal escape sequence"))?;
                    value.push(c);
                    current.push(c);
                    self.pos += 2;
                }
                Some('{') if self.chars.get(self.pos + 1) == Some(&'}') => {
                    value.push_str("{}");
                    segments.push(std::mem::take(&mut current));
                    self.pos += 2;
                }
                Some(c) => {
                    value.push(c);
                    current.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        segments.push(current);
        Ok(Arg::Text { value, segments })
    }

    /// A path argument: everything up to the `,` or `)` that ends it.
    fn path(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        let (mut depth, mut quote) = (0usize, None);
        while let Some(c) = self.peek() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), '\\') => self.pos += 1,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[' | '(') => depth += 1,
                (None, ']' | ')') if depth > 0 => depth -= 1,
                (None, ',' | ')') => break,
                _ => {}
            }
            self.pos += 1;
        }
        let end = self.pos.min(self.chars.len());
        let text: String = self.chars[start..end].iter().collect();
        JsonPath::parse(text.trim()).map(Arg::Path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{output_path, result_path, PathField, ResultPathField};
    use crate::jsonpath::ReferencePath;
    use serde_json::json;

    fn eval(text: &str, input: &Value) -> Result<Value, ErrorCause> {
        let context = json!({"Execution": {"Name": "exec-1"}, "StateMachine": {"Id": "arn:x", "Name": "sm-name"}});
        let vars: Map<String, Value> = json!({"v": {"n": 3}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut entropy = Entropy::new(7);
        let mut scope = Scope::new(input, &context, &mut entropy);
        scope.variables = Some(&vars);
        let f = Intrinsic::parse(text).map_err(|e| ErrorCause::new("parse", e))?;
        f.eval_field(&mut scope, "r.$")
    }

    #[test]
    fn eval_table() {
        let input = json!({
            "s": "a,b", "n": 1.5, "i": 2, "arr": [1, 2, 2, [1], [1]], "o": {"Arg1": 1, "Arg2": []},
            "f": 1.0, "big": 1e21, "t": "x={}", "deep": {"k": [1.25, "s", null]}
        });
        let ok = |v: Value| Ok::<Value, ErrorCause>(v);
        let cases: Vec<(&str, Result<Value, ErrorCause>)> = vec![
            ("States.Format('a {} b {}', 1, 'x')", ok(json!("a 1 b x"))),
            ("States.Format('esc \\{\\} {}', $.i)", ok(json!("esc {} 2"))),
            ("States.Format('it\\'s {}', $.o)", ok(json!("it's {Arg1=1, Arg2=[]}"))),
            ("States.Format('{} {} {} {}', $.f, $.big, $.deep, null)", ok(json!("1.0 1.0E21 {k=[1.25, s, null]} null"))),
            ("States.Format($.t, 'y')", ok(json!("x=y"))),
            ("States.Format('{}', $$.Execution.Name)", ok(json!("exec-1"))),
            ("States.Format('{}', $v.n)", ok(json!("3"))),
            ("States.StringToJson('{\"a\": [1, 2.5]}')", ok(json!({"a": [1, 2.5]}))),
            ("States.StringToJson(' ')", ok(Value::Null)),
            ("States.StringToJson('[-0, -0.5]')", ok(json!([0, -0.5]))),
            ("States.JsonToString($.deep)", ok(json!("{\"k\":[1.25,\"s\",null]}"))),
            ("States.JsonToString($.big)", ok(json!("1.0E21"))),
            ("States.Array(1, 'a', $.i, States.Array())", ok(json!([1, "a", 2, []]))),
            ("States.ArrayPartition($.arr, 2)", ok(json!([[1, 2], [2, [1]], [[1]]]))),
            ("States.ArrayContains($.arr, States.Array(1))", ok(json!(true))),
            ("States.ArrayContains($.arr, 3)", ok(json!(false))),
            ("States.ArrayRange(1, 9, 2)", ok(json!([1, 3, 5, 7, 9]))),
            ("States.ArrayRange(5, 1, -2)", ok(json!([5, 3, 1]))),
            ("States.ArrayRange(5, 1, 2)", ok(json!([]))),
            ("States.ArrayRange(-9000000000000000000, 9000000000000000000, 9000000000000000000)",
                ok(json!([-9000000000000000000i64, 0, 9000000000000000000i64]))),
            ("States.ArrayGetItem($.arr, 3)", ok(json!([1]))),
            ("States.ArrayLength($.arr)", ok(json!(5))),
            ("States.ArrayUnique($.arr)", ok(json!([1, 2, [1]]))),
            ("States.Base64Encode('Data to encode')", ok(json!("RGF0YSB0byBlbmNvZGU="))),
            ("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", ok(json!("Data to encode"))),
            ("States.Hash('input data', 'SHA-1')", ok(json!("aaff4a450a104cd177d28d18d74485e8cae074b7"))),
            ("States.Hash('input data', 'SHA-256')", ok(json!("b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"))),
            ("States.JsonMerge($.o, States.StringToJson('{\"Arg1\": 2}'), false)", ok(json!({"Arg1": 2, "Arg2": []}))),
            ("States.MathAdd($.n, -2.5)", ok(json!(0))),
            ("States.MathAdd(1, $.i)", ok(json!(3))),
            ("States.StringSplit('a.b+c', '.+')", ok(json!(["a", "b", "c"]))),
            ("States.StringSplit(States.Format('{},,x', $.s), ',')", ok(json!(["a", "b", "x"]))),
            ("States.MathRandom(5, 6)", ok(json!(5))),
            ("States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), 0)", ok(json!("sm"))),
            ("States.ArrayGetItem($.arr, 9)", Err(ErrorCause::intrinsic("The index 9 is out of bounds for an array of length 5 in States.ArrayGetItem"))),
            ("States.Format('{} {}', 1)", Err(ErrorCause::intrinsic("Number of arguments in States.Format do not match the number of placeholders: 2 placeholders, 1 arguments"))),
            ("States.StringToJson($.s)", Err(ErrorCause::intrinsic("Invalid JSON string passed to States.StringToJson: expected value at line 1 column 1"))),
            ("States.ArrayLength($.s)", Err(ErrorCause::intrinsic("The first argument of States.ArrayLength must be an array, but was: \"a,b\""))),
            ("States.Base64Decode('%%%')", Err(ErrorCause::intrinsic("The input to States.Base64Decode is not valid base64"))),
            ("States.ArrayRange(0, 5000, 1)", Err(ErrorCause::intrinsic("The result would exceed 1000 elements in States.ArrayRange"))),
            ("States.Array($.missing)", Err(ErrorCause::runtime(format!("The JSONPath '$.missing' specified for the field 'r.$' could not be found in the input '{input}'")))),
        ];
        for (text, want) in cases {
            assert_eq!(eval(text, &input), want, "{text}");
        }
    }

    #[test]
    fn random_is_deterministic() {
        let input = json!({});
        let seeded = |seed: i64| eval(&format!("States.MathRandom(0, 1000000, {seed})"), &input);
        assert_eq!(seeded(3), seeded(3));
        assert_ne!(seeded(3), seeded(4));
        let uuid = eval("States.UUID()", &input).ok();
        assert_eq!(uuid, eval("States.UUID()", &input).ok());
        assert_eq!(uuid.and_then(|u| u.as_str().map(str::len)), Some(36));
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "States.Nope(1)",
            "States.Format()",
            "States.UUID(1)",
            "States.ArrayRange(1, 2)",
            "States.MathRandom(1, 2, 3, 4)",
            "States.StringToJson('{\"text\":\"An \\\"escaped\\\" here\"}')",
            "States.Format('He said, \\\"Hello, {}!\\\"', 'x')",
            "States.Format('x'",
            "States.Format('x') trailing",
            "States.Format('unterminated)",
            "States.Array(1,)",
            "States.Array($.a[)",
            "States.ArrayLength('not an array')",
            "States.JsonMerge($.a, $.b, true)",
            "States.Hash('x', 'SHA-3')",
            "States.ArrayPartition($.a, 0)",
            "States.Format(1)",
            "States.Array(nope)",
        ] {
            assert!(Intrinsic::parse(bad).is_err(), "{bad}");
        }
        assert!(is_intrinsic("States.UUID()") && !is_intrinsic("$.States"));
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |n: usize| format!("{}1{}", "States.Array(".repeat(n), ")".repeat(n));
        assert!(Intrinsic::parse(&nested(MAX_NESTING)).is_ok());
        for n in [MAX_NESTING + 1, 3_500] {
            let err = Intrinsic::parse(&nested(n)).err();
            assert!(err.is_some_and(|e| e.contains("nested more than")), "{n}");
        }
    }

    #[test]
    fn java_numbers() {
        let cases = [
            ("1", "1"),
            ("1.0", "1.0"),
            ("1.1", "1.1"),
            ("100.0", "100.0"),
            ("1e2", "100.0"),
            ("1e21", "1.0E21"),
            ("1.5e-7", "1.5E-7"),
            ("12345678.9", "1.23456789E7"),
            ("0.001", "0.001"),
            ("0.0001", "1.0E-4"),
            ("-0.0", "-0.0"),
            ("12345678901234567890", "12345678901234567890"),
        ];
        for (text, want) in cases {
            let n: Number = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(java_number(&n), want, "{text}");
        }
    }

    /// Replays the `intrinsic_functions` conformance cases whose first state is a JSONPath
    /// Pass state with `Parameters`, comparing with the recorded `PassStateExited` output.
    #[test]
    fn corpus_pass_states() {
        let Some(dir) = crate::shared_dir::shared_path("conformance/cases/intrinsic_functions")
        else {
            return;
        };
        let entries = std::fs::read_dir(&dir).expect("the corpus folder is readable");
        let (mut passed, mut failures) = (0, Vec::new());
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let Ok(case) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let Some(replay) = CorpusCase::from(&case) else {
                continue;
            };
            match replay.run() {
                Ok(()) => passed += 1,
                Err(e) => failures.push(format!("{}: {e}", case["id"])),
            }
        }
        println!(
            "intrinsic_functions corpus: {passed} passed, {} failed",
            failures.len()
        );
        assert!(failures.is_empty(), "{failures:#?}");
        assert!(passed > 0);
    }

    struct CorpusCase {
        parameters: Value,
        result_path: ResultPathField,
        output_path: PathField,
        input: Value,
        expected: Value,
    }

    impl CorpusCase {
        fn from(case: &Value) -> Option<CorpusCase> {
            let definition = &case["definition"];
            if case["kind"] != "execution" || definition.get("QueryLanguage").is_some() {
                return None;
            }
            let start = definition["StartAt"].as_str()?;
            let state = &definition["States"][start];
            let parameters = state.get("Parameters")?.clone();
            let input = serde_json::from_str(case["input"].as_str()?).ok()?;
            let events = case["expected"]
                .as_object()?
                .values()
                .find_map(|v| v["events"].as_array())?;
            let exited = events.iter().find(|e| e["type"] == "PassStateExited")?;
            let expected = exited["stateExitedEventDetails"]["output"].clone();
            let result_path = match state.get("ResultPath") {
                Some(Value::String(p)) => ResultPathField::Path(ReferencePath::parse(p).ok()?),
                _ => ResultPathField::Default,
            };
            let output_path = match state.get("OutputPath") {
                Some(Value::String(p)) => PathField::Path(JsonPath::parse(p).ok()?),
                _ => PathField::Default,
            };
            Some(CorpusCase {
                parameters,
                result_path,
                output_path,
                input,
                expected,
            })
        }

        fn run(&self) -> Result<(), String> {
            // The recording replaced ARN parts with placeholders; build the context the same way.
            let context = json!({
                "Execution": {"Input": self.input, "Name": "<ExecArnPart_0idx>"},
                "StateMachine": {
                    "Id": "arn:<partition>:states:<region>:111111111111:stateMachine:<ArnPart_0idx>",
                    "Name": "<ArnPart_0idx>"
                }
            });
            let template = crate::template::Template::compile(&self.parameters)?;
            let mut entropy = Entropy::new(0);
            let mut scope = Scope::new(&self.input, &context, &mut entropy);
            let result = template.render(&mut scope).map_err(|e| e.to_string())?;
            let combined = result_path(&self.result_path, self.input.clone(), result)
                .map_err(|e| e.to_string())?;
            let got =
                output_path(&self.output_path, &combined, &context).map_err(|e| e.to_string())?;
            if json_eq(&got, &self.expected) {
                Ok(())
            } else {
                Err(format!("got {got}, expected {}", self.expected))
            }
        }
    }
}
