//! The state machine definition: parsed once, validated with AWS's diagnostics, then shared.
//!
//! Parsing walks the JSON with a location (`/States/S/Field`) and collects [`Diagnostic`]s
//! instead of stopping at the first problem, so `ValidateStateMachineDefinition` can list
//! them all and `CreateStateMachine` can render them in AWS's `InvalidDefinition` message.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::choice::{self, Choice, Condition};
use crate::io::{PathField, ResultPathField};
use crate::jsonata;
use crate::jsonpath::{JsonPath, ReferencePath};
use crate::task::{self, Catcher, Pattern, Resource, Retrier, Seconds};
use crate::template::Template;
use crate::timestamp;

mod distributed;

pub use distributed::{Distributed, ItemReader, ResultWriter, Threshold};

/// One problem found in a definition, as `ValidateStateMachineDefinition` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: &'static str,
    pub message: String,
    /// A JSON pointer such as `/States/S/Next`; `None` when the document is not JSON.
    pub location: Option<String>,
}

pub mod codes {
    pub const SCHEMA_VALIDATION_FAILED: &str = "SCHEMA_VALIDATION_FAILED";
    pub const MISSING_TRANSITION_TARGET: &str = "MISSING_TRANSITION_TARGET";
    pub const INVALID_JSON_DESCRIPTION: &str = "INVALID_JSON_DESCRIPTION";
    /// A check AWS reports as a Python `ValueError` quoting the definition (Map Run labels).
    pub const VALUE_ERROR: &str = "VALUE_ERROR";
}

/// Renders diagnostics as AWS's `InvalidDefinition` message for the definition `text`.
pub fn invalid_definition_message(text: &str, diagnostics: &[Diagnostic]) -> String {
    if let Some(d) = diagnostics.iter().find(|d| d.code == codes::VALUE_ERROR) {
        let args = distributed::python_repr(&d.message);
        return format!("Error=ValueError Args=[{args}] in definition '{text}'.");
    }
    let parts: Vec<String> = diagnostics
        .iter()
        .map(|d| match &d.location {
            Some(at) => format!("{}: {} at {}", d.code, d.message, at),
            None => format!("{}: {}", d.code, d.message),
        })
        .collect();
    format!("Invalid State Machine Definition: '{}'", parts.join(", "))
}

/// A JSON syntax error, worded as AWS's (Jackson's) parser words it; serde's wording where
/// Jackson would have read a value (content after it).
fn json_error(text: &str, e: &serde_json::Error) -> Diagnostic {
    let (message, location) = match crate::jackson::syntax_error(text) {
        Some(j) => (j.to_string(), j.location),
        None => {
            let location = format!(
                "[Source: (String)\"{text}\"; line: {}, column: {}]",
                e.line(),
                e.column() + 1
            );
            (format!("{e}\n at {location}"), location)
        }
    };
    Diagnostic {
        code: codes::INVALID_JSON_DESCRIPTION,
        message,
        location: Some(location),
    }
}

/// A resource that parses but AWS still refuses: a Lambda function or an activity without a
/// name, or `.sync` on an integration that has no such pattern (the AWS SDK integrations,
/// `lambda:invoke`).
fn refused(resource: Resource, text: &str) -> Result<Resource, String> {
    let unnamed = || text.splitn(7, ':').nth(6).is_none_or(|n| n.is_empty());
    let bad = match &resource {
        Resource::Lambda { .. } | Resource::Activity { .. } => unnamed(),
        Resource::Service {
            service,
            pattern: Pattern::Sync | Pattern::Sync2,
            ..
        } => service.starts_with("aws-sdk:") || service == "lambda",
        _ => false,
    };
    if bad {
        Err(format!("Invalid resource: {text}"))
    } else {
        Ok(resource)
    }
}

/// A validated state machine definition.
#[derive(Debug, Clone)]
pub struct Definition {
    pub root: Machine,
    pub timeout_seconds: Option<u64>,
}

/// A set of states with a start: the definition itself, a Parallel branch or a Map's
/// item processor.
#[derive(Debug, Clone)]
pub struct Machine {
    pub start_at: String,
    states: HashMap<String, State>,
}

impl Machine {
    pub fn state(&self, name: &str) -> Option<&State> {
        self.states.get(name)
    }

    /// All states, nested ones included, in a stable order, with their locations.
    fn walk<'a>(&'a self, out: &mut Vec<(&'a State, String)>, at: &str) {
        let mut names: Vec<&String> = self.states.keys().collect();
        names.sort();
        for name in names {
            let state = &self.states[name];
            let here = format!("{at}/States/{name}");
            out.push((state, here.clone()));
            match &state.kind {
                StateKind::Parallel(p) => {
                    for (i, b) in p.branches.iter().enumerate() {
                        b.walk(out, &format!("{here}/Branches[{i}]"));
                    }
                }
                StateKind::Map(m) => m.processor.walk(out, &format!("{here}/ItemProcessor")),
                _ => {}
            }
        }
    }
}

impl Definition {
    /// Parses and validates a definition document.
    pub fn parse(text: &str) -> Result<Definition, Vec<Diagnostic>> {
        let not_an_object = || {
            vec![Diagnostic {
                code: codes::SCHEMA_VALIDATION_FAILED,
                message: "Definition must be a valid JSON object".into(),
                location: None,
            }]
        };
        if text.trim().is_empty() {
            return Err(not_an_object());
        }
        let value: Value = serde_json::from_str(text).map_err(|e| vec![json_error(text, &e)])?;
        let Value::Object(obj) = value else {
            return Err(not_an_object());
        };
        Definition::validate(&obj, false)
    }

    /// Parses one state on its own (TestState's `definition` without `stateName`): the state
    /// becomes the only state of a machine, named `StateName` as AWS names it, and its
    /// transitions may point at states that do not exist.
    pub fn parse_state(text: &str) -> Result<Definition, Vec<Diagnostic>> {
        let value: Value = serde_json::from_str(text).map_err(|e| vec![json_error(text, &e)])?;
        let Value::Object(state) = value else {
            return Err(vec![Diagnostic {
                code: codes::SCHEMA_VALIDATION_FAILED,
                message: "Definition must be a valid JSON object".into(),
                location: None,
            }]);
        };
        let mut states = Map::new();
        states.insert(SINGLE_STATE_NAME.into(), Value::Object(state));
        let mut machine = Map::new();
        machine.insert("StartAt".into(), Value::String(SINGLE_STATE_NAME.into()));
        machine.insert("States".into(), Value::Object(states));
        Definition::validate(&machine, true)
    }

    fn validate(
        obj: &Map<String, Value>,
        open_transitions: bool,
    ) -> Result<Definition, Vec<Diagnostic>> {
        let mut v = Validator {
            diagnostics: Vec::new(),
            language: QueryLanguage::JsonPath,
            open_transitions,
        };
        let def = v.machine(obj);
        match def {
            Some(def) if v.diagnostics.is_empty() => Ok(def),
            _ => Err(v.diagnostics),
        }
    }

    /// The state named `name` anywhere in the definition: at the top level, in a Parallel
    /// branch or in a Map's item processor.
    pub fn find_state(&self, name: &str) -> Option<&State> {
        self.all_states()
            .into_iter()
            .map(|(s, _)| s)
            .find(|s| s.name == name)
    }

    /// Every state, nested ones included, in a stable order, with its location
    /// (`/States/P/Branches[0]/States/S`).
    pub fn all_states(&self) -> Vec<(&State, String)> {
        let mut all = Vec::new();
        self.root.walk(&mut all, "");
        all
    }

    pub fn state(&self, name: &str) -> Option<&State> {
        self.root.state(name)
    }

    /// What an EXPRESS state machine may not use: activities, `.waitForTaskToken` and `.sync`
    /// (`.sync:2`), the patterns that wait longer than an Express execution lives.
    pub fn express_diagnostics(&self) -> Vec<Diagnostic> {
        let mut all = Vec::new();
        self.root.walk(&mut all, "");
        let mut out = Vec::new();
        for (state, at) in all {
            let StateKind::Task(t) = &state.kind else {
                continue;
            };
            let message = match &t.resource {
                Resource::Activity { .. } => "Express state machine does not support Activity ARN",
                r if r.is_callback() => {
                    "Express state machine does not support '.waitForTaskToken' service integration "
                }
                Resource::Service {
                    pattern: Pattern::Sync | Pattern::Sync2,
                    ..
                } => "Express state machine does not support '.sync' service integration ",
                _ => continue,
            };
            out.push(Diagnostic {
                code: codes::SCHEMA_VALIDATION_FAILED,
                message: message.into(),
                location: Some(format!("{at}/Resource")),
            });
        }
        out
    }
}

/// One state of a definition.
#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub kind: StateKind,
    pub input_path: PathField,
    pub output_path: PathField,
    /// `None` for terminal states (End, Succeed, Fail).
    pub next: Option<String>,
    /// Workflow variables the state assigns when it exits successfully.
    pub assign: Option<Payload>,
    pub query_language: QueryLanguage,
    /// JSONata `Output` (default: the result, or the input for states without one).
    pub output: Option<jsonata::Template>,
    /// How much of the context object (`$$`, `$states.context`) its fields may read.
    pub context: ContextUse,
}

/// How much of the context object a state's fields may read, found by a conservative scan of
/// the state as written (a nested state's fields count too): a false positive only costs a
/// copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContextUse {
    None,
    /// Only paths that cannot reach `$$.Execution.Input` (`$$.Map.Item.Index`,
    /// `$$.Execution.Id`, ...): the execution input, which may be large, is left out.
    WithoutInput,
    /// Anything: a bare `$$`, `$$.Execution`, `$$.Execution.Input`, `$states.context`.
    Full,
}

fn context_use(spec: &Value) -> ContextUse {
    match spec {
        Value::String(t) => text_context_use(t),
        Value::Array(items) => items
            .iter()
            .map(context_use)
            .max()
            .unwrap_or(ContextUse::None),
        Value::Object(obj) => obj
            .iter()
            .map(|(k, v)| text_context_use(k).max(context_use(v)))
            .max()
            .unwrap_or(ContextUse::None),
        _ => ContextUse::None,
    }
}

fn text_context_use(t: &str) -> ContextUse {
    // `$states` but `$states.input`, `.result`, `.errorOutput` (JSONata) may be the context.
    const DATA: [&str; 3] = [".input", ".result", ".errorOutput"];
    // JSONPath context paths that cannot reach the execution input.
    const SMALL: [&str; 10] = [
        ".Execution.Id",
        ".Execution.Name",
        ".Execution.StartTime",
        ".Execution.RoleArn",
        ".Execution.RedriveCount",
        ".Execution.RedriveTime",
        ".StateMachine",
        ".State",
        ".Map",
        ".Task",
    ];
    let followed_by = |rest: &str, prefixes: &[&str]| {
        prefixes.iter().any(|p| {
            rest.strip_prefix(p)
                .is_some_and(|r| !r.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
    };
    let states = t
        .match_indices("$states")
        .any(|(at, m)| !followed_by(&t[at + m.len()..], &DATA));
    if states {
        return ContextUse::Full;
    }
    let mut uses = t
        .match_indices("$$")
        .map(|(at, m)| &t[at + m.len()..])
        .peekable();
    if uses.peek().is_none() {
        ContextUse::None
    } else if uses.all(|rest| followed_by(rest, &SMALL)) {
        ContextUse::WithoutInput
    } else {
        ContextUse::Full
    }
}

/// How a state reads and shapes its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLanguage {
    /// `InputPath`, `Parameters`, `ResultSelector`, `ResultPath`, `OutputPath` (the default).
    JsonPath,
    /// `{% %}` expressions in `Arguments`, `Output` and the other fields.
    Jsonata,
}

impl QueryLanguage {
    fn name(self) -> &'static str {
        match self {
            QueryLanguage::JsonPath => "JSONPath",
            QueryLanguage::Jsonata => "JSONata",
        }
    }
}

/// A payload in the state's query language: `Parameters`/`Arguments`, `ItemSelector`,
/// `Assign`.
#[derive(Debug, Clone)]
pub enum Payload {
    Path(Template),
    Jsonata(jsonata::Template),
}

impl Payload {
    /// The keys of the object it produces (without their `.$`), when it is an object
    /// written out.
    pub fn keys(&self) -> Option<Vec<&str>> {
        match self {
            Payload::Path(t) => t.keys(),
            Payload::Jsonata(t) => t.keys(),
        }
    }

    /// The JSONPath template, in a JSONPath state.
    pub fn path(&self) -> Option<&Template> {
        match self {
            Payload::Path(t) => Some(t),
            Payload::Jsonata(_) => None,
        }
    }

    /// The JSONata template, in a JSONata state.
    pub fn jsonata(&self) -> Option<&jsonata::Template> {
        match self {
            Payload::Jsonata(t) => Some(t),
            Payload::Path(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum StateKind {
    Pass {
        result: Option<Value>,
        parameters: Option<Template>,
        result_path: ResultPathField,
    },
    Choice {
        choices: Vec<Choice>,
        default: Option<String>,
    },
    Wait(WaitFor),
    Succeed,
    Fail {
        error: Source,
        cause: Source,
    },
    Task(Box<TaskState>),
    Parallel(Box<ParallelState>),
    Map(Box<MapState>),
    /// A state type this build accepts in definitions but cannot execute yet.
    Unsupported(&'static str),
}

impl StateKind {
    /// What the state does with its result and its errors (Task, Parallel and Map states).
    pub fn result_handling(&self) -> Option<&ResultHandling> {
        match self {
            StateKind::Task(t) => Some(&t.handling),
            StateKind::Parallel(p) => Some(&p.handling),
            StateKind::Map(m) => Some(&m.handling),
            _ => None,
        }
    }

    /// The prefix of the state's history event types (`Pass` → `PassStateEntered`).
    pub fn event_prefix(&self) -> &'static str {
        match self {
            StateKind::Pass { .. } => "Pass",
            StateKind::Choice { .. } => "Choice",
            StateKind::Wait(_) => "Wait",
            StateKind::Succeed => "Succeed",
            StateKind::Fail { .. } => "Fail",
            StateKind::Task(_) => "Task",
            StateKind::Parallel(_) => "Parallel",
            StateKind::Map(_) => "Map",
            StateKind::Unsupported(t) => t,
        }
    }
}

/// A Task state's fields beyond the common ones.
#[derive(Debug, Clone)]
pub struct TaskState {
    pub resource: Resource,
    /// `Parameters` or `Arguments`.
    pub parameters: Option<Payload>,
    pub handling: ResultHandling,
    pub timeout: Option<Seconds>,
    pub heartbeat: Option<Seconds>,
    /// `Credentials`: the role the task's calls assume, a template (`RoleArn`, `RoleArn.$`,
    /// or JSONata) rendered when an attempt is scheduled.
    pub credentials: Option<Payload>,
}

/// A Parallel state: its branches and the fields it shares with Task states.
#[derive(Debug, Clone)]
pub struct ParallelState {
    pub branches: Vec<Machine>,
    /// `Parameters` or `Arguments`.
    pub parameters: Option<Payload>,
    pub handling: ResultHandling,
}

/// A Map state: inline, or distributed when `distributed` is set.
#[derive(Debug, Clone)]
pub struct MapState {
    pub processor: Machine,
    pub distributed: Option<Box<Distributed>>,
    pub items_path: PathField,
    /// JSONata `Items` (default: the state input).
    pub items: Option<jsonata::Template>,
    /// `ItemSelector` (or the legacy `Parameters`).
    pub item_selector: Option<Payload>,
    pub max_concurrency: MaxConcurrency,
    pub handling: ResultHandling,
}

/// What Task, Parallel and Map states do with their result (`ResultSelector`, `ResultPath`)
/// and with their errors (`Retry`, `Catch`).
#[derive(Debug, Clone)]
pub struct ResultHandling {
    pub result_selector: Option<Template>,
    pub result_path: ResultPathField,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
}

/// How many iterations of a Map state may run at once.
#[derive(Debug, Clone)]
pub enum MaxConcurrency {
    /// `MaxConcurrency` (0, the default: no limit).
    Fixed(u64),
    /// `MaxConcurrencyPath`: read from the state input.
    Path(JsonPath),
    /// A JSONata `MaxConcurrency` expression.
    Jsonata(jsonata::Template),
}

/// How long a Wait state waits.
#[derive(Debug, Clone)]
pub enum WaitFor {
    Seconds(u64),
    SecondsPath(JsonPath),
    /// Epoch milliseconds.
    Timestamp(i64),
    TimestampPath(JsonPath),
    /// A JSONata `Seconds` expression.
    SecondsJsonata(jsonata::Template),
    /// A JSONata `Timestamp` expression.
    TimestampJsonata(jsonata::Template),
}

/// A Fail state's `Error` or `Cause`: a literal, a path, an expression, or absent.
#[derive(Debug, Clone)]
pub enum Source {
    None,
    Literal(String),
    Path(JsonPath),
    Intrinsic(crate::intrinsics::Intrinsic),
    Jsonata(jsonata::Template),
}

const STATE_TYPES: &str = "[Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map]";

const COMMON_FIELDS: &[&str] = &["Type", "Comment", "QueryLanguage"];

fn allowed_fields(ty: &str) -> &'static [&'static str] {
    match ty {
        "Pass" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "Result",
            "Assign",
            "Output",
        ],
        "Choice" => &[
            "InputPath",
            "OutputPath",
            "Choices",
            "Default",
            "Assign",
            "Output",
        ],
        "Wait" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
            "Assign",
            "Output",
        ],
        "Succeed" => &["InputPath", "OutputPath", "Output"],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Branches",
            "Retry",
            "Catch",
            "Assign",
            "Output",
            "Arguments",
        ],
        "Map" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "ItemsPath",
            "ItemSelector",
            "ItemProcessor",
            "Iterator",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "Retry",
            "Catch",
            "Assign",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
            "Output",
            "Items",
        ],
        "Task" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "ResultPath",
            "Parameters",
            "ResultSelector",
            "Resource",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Retry",
            "Catch",
            "Credentials",
            "Assign",
            "Output",
            "Arguments",
        ],
        _ => &[],
    }
}

/// The query language a state field belongs to, for fields only one of them has.
fn field_language(field: &str) -> Option<QueryLanguage> {
    match field {
        "InputPath"
        | "OutputPath"
        | "ResultPath"
        | "ResultSelector"
        | "Parameters"
        | "Result"
        | "ItemsPath"
        | "MaxConcurrencyPath"
        | "SecondsPath"
        | "TimestampPath"
        | "TimeoutSecondsPath"
        | "HeartbeatSecondsPath"
        | "ErrorPath"
        | "CausePath"
        | "ToleratedFailureCountPath"
        | "ToleratedFailurePercentagePath" => Some(QueryLanguage::JsonPath),
        "Output" | "Arguments" | "Items" => Some(QueryLanguage::Jsonata),
        _ => None,
    }
}

/// The field that holds a Task's or Parallel's effective input.
fn parameters_field(language: QueryLanguage) -> &'static str {
    match language {
        QueryLanguage::JsonPath => "Parameters",
        QueryLanguage::Jsonata => "Arguments",
    }
}

/// AWS's message for a field of the other query language.
fn wrong_language(language: QueryLanguage, field: &str) -> String {
    let other = match language {
        QueryLanguage::JsonPath => QueryLanguage::Jsonata,
        QueryLanguage::Jsonata => QueryLanguage::JsonPath,
    };
    format!(
        "The QueryLanguage is set to '{}', but field '{field}' is only supported for the '{}' QueryLanguage",
        language.name(),
        other.name()
    )
}

struct Validator {
    diagnostics: Vec<Diagnostic>,
    /// The state machine's `QueryLanguage`: states without one use it, nested ones included.
    language: QueryLanguage,
    /// Top-level transitions may name states that are not in the definition (a state tested
    /// on its own).
    open_transitions: bool,
}

/// The name AWS gives a state tested on its own (`$$.State.Name`, diagnostics locations).
pub const SINGLE_STATE_NAME: &str = "StateName";

impl Validator {
    fn error(&mut self, code: &'static str, message: impl Into<String>, at: &str) {
        self.diagnostics.push(Diagnostic {
            code,
            message: message.into(),
            location: Some(if at.is_empty() { "/".into() } else { at.into() }),
        });
    }

    fn schema(&mut self, message: impl Into<String>, at: &str) {
        self.error(codes::SCHEMA_VALIDATION_FAILED, message, at);
    }

    fn machine(&mut self, obj: &Map<String, Value>) -> Option<Definition> {
        let timeout_seconds = match obj.get("TimeoutSeconds") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => {
                    self.schema("Value must be a non-negative integer", "/TimeoutSeconds");
                    None
                }
            },
        };
        if let Some(value) = obj.get("QueryLanguage") {
            self.language = self.query_language(value, "/QueryLanguage");
        }
        let root = self.scope(obj, "")?;
        Some(Definition {
            root,
            timeout_seconds,
        })
    }

    /// A set of states (`StartAt` + `States`) at `at`: the root or a nested one.
    fn scope(&mut self, obj: &Map<String, Value>, at: &str) -> Option<Machine> {
        let missing: Vec<&str> = ["States", "StartAt"]
            .into_iter()
            .filter(|f| !obj.contains_key(*f))
            .collect();
        if !missing.is_empty() {
            self.schema(
                format!("These fields are required: [{}]", missing.join(", ")),
                at,
            );
            return None;
        }
        let start_at = self.string(obj, "StartAt", at)?;
        let Some(Value::Object(states_obj)) = obj.get("States") else {
            self.schema("Value must be an object", &format!("{at}/States"));
            return None;
        };
        if states_obj.is_empty() {
            self.schema("Value cannot be empty", &format!("{at}/States"));
        }
        if !at.is_empty() && obj.contains_key("QueryLanguage") {
            self.schema("Field 'QueryLanguage' is not supported", at);
        }
        let mut states = HashMap::new();
        for (name, spec) in states_obj {
            let here = format!("{at}/States/{name}");
            if let Some(state) = self.state(name, spec, &here) {
                states.insert(name.clone(), state);
            }
        }
        let open = self.open_transitions && at.is_empty();
        if !states_obj.contains_key(&start_at) {
            self.error(
                codes::MISSING_TRANSITION_TARGET,
                format!("Missing 'Next' target: {start_at}"),
                &format!("{at}/StartAt"),
            );
        }
        let mut names: Vec<&String> = states.keys().collect();
        names.sort();
        for name in names {
            let state = &states[name];
            let catchers: &[Catcher] = match state.kind.result_handling() {
                Some(h) => &h.catch,
                None => &[],
            };
            let choices: Vec<&String> = match &state.kind {
                StateKind::Choice { choices, default } => choices
                    .iter()
                    .map(|c| &c.next)
                    .chain(default.iter())
                    .collect(),
                _ => Vec::new(),
            };
            let targets = state
                .next
                .iter()
                .chain(choices)
                .chain(catchers.iter().map(|c| &c.next));
            for target in targets {
                if !open && !states_obj.contains_key(target) {
                    self.error(
                        codes::MISSING_TRANSITION_TARGET,
                        format!("Missing 'Next' target: {target}"),
                        &format!("{at}/States/{}/Next", state.name),
                    );
                }
            }
        }
        Some(Machine { start_at, states })
    }

    fn string(&mut self, obj: &Map<String, Value>, field: &str, at: &str) -> Option<String> {
        match obj.get(field)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.schema("Value must be a string", &format!("{at}/{field}"));
                None
            }
        }
    }

    fn state(&mut self, name: &str, spec: &Value, at: &str) -> Option<State> {
        let Value::Object(obj) = spec else {
            self.schema("Value must be an object", at);
            return None;
        };
        let ty = match obj.get("Type") {
            Some(Value::String(t)) => t.as_str(),
            Some(_) | None => {
                self.schema("These fields are required: [Type]", at);
                return None;
            }
        };
        let kind_known = matches!(
            ty,
            "Pass" | "Choice" | "Wait" | "Succeed" | "Fail" | "Task" | "Parallel" | "Map"
        );
        if !kind_known {
            self.schema(
                format!("The field 'Type' should have one of these values: {STATE_TYPES}"),
                &format!("{at}/Type"),
            );
            return None;
        }
        let language = match obj.get("QueryLanguage") {
            None => self.language,
            Some(v) => self.query_language(v, &format!("{at}/QueryLanguage")),
        };
        // A JSONata state machine cannot go back to JSONPath one state at a time; that
        // diagnostic is the whole answer about the state's fields.
        let downgraded =
            self.language == QueryLanguage::Jsonata && language == QueryLanguage::JsonPath;
        if downgraded {
            self.schema(
                "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine",
                at,
            );
        }
        for field in obj.keys() {
            if !COMMON_FIELDS.contains(&field.as_str())
                && !allowed_fields(ty).contains(&field.as_str())
            {
                self.schema(
                    format!("The field '{field}' is not supported by Step Functions"),
                    at,
                );
            } else if !downgraded && field_language(field).is_some_and(|l| l != language) {
                self.schema(wrong_language(language, field), at);
            }
        }
        let jsonata = language == QueryLanguage::Jsonata;
        let terminal = matches!(ty, "Succeed" | "Fail" | "Choice");
        let next = if terminal {
            None
        } else {
            self.transition(obj, at)
        };
        let (input_path, output_path) = if jsonata {
            (PathField::Default, PathField::Default)
        } else {
            (
                self.path_field(obj, "InputPath", at),
                self.path_field(obj, "OutputPath", at),
            )
        };
        let kind = match ty {
            "Pass" if jsonata => StateKind::Pass {
                result: None,
                parameters: None,
                result_path: ResultPathField::Default,
            },
            "Pass" => StateKind::Pass {
                result: obj.get("Result").cloned(),
                parameters: self.template(obj, "Parameters", at),
                result_path: self.result_path(obj, at),
            },
            "Choice" => self.choice(obj, at, language)?,
            "Wait" => StateKind::Wait(self.wait(obj, at, language)?),
            "Succeed" => StateKind::Succeed,
            "Fail" => StateKind::Fail {
                error: self.source(obj, "Error", "ErrorPath", at, language),
                cause: self.source(obj, "Cause", "CausePath", at, language),
            },
            "Task" => StateKind::Task(Box::new(self.task(obj, at, language)?)),
            "Parallel" => StateKind::Parallel(Box::new(self.parallel(obj, at, language)?)),
            _ => self.map(obj, at, language)?,
        };
        let assign = self.payload(obj, "Assign", at, language);
        let output = if jsonata {
            self.jsonata(obj, "Output", at)
        } else {
            None
        };
        Some(State {
            name: name.to_owned(),
            kind,
            input_path,
            output_path,
            next,
            assign,
            query_language: language,
            output,
            context: context_use(spec),
        })
    }

    /// A `QueryLanguage` value; anything but `"JSONPath"` means JSONata.
    fn query_language(&mut self, value: &Value, at: &str) -> QueryLanguage {
        match value.as_str() {
            Some("JSONPath") => return QueryLanguage::JsonPath,
            Some("JSONata") => {}
            Some(_) => self.schema(
                "Value should be one of the following: [JSONPath, JSONata]",
                at,
            ),
            None => self.schema("Expected value of type [STRING]", at),
        }
        QueryLanguage::Jsonata
    }

    /// A payload field (`Assign`, `Arguments`, ...) in the state's query language.
    fn payload(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        at: &str,
        language: QueryLanguage,
    ) -> Option<Payload> {
        match language {
            QueryLanguage::JsonPath => self.template(obj, field, at).map(Payload::Path),
            QueryLanguage::Jsonata => self.jsonata(obj, field, at).map(Payload::Jsonata),
        }
    }

    /// A JSONata field of the state.
    fn jsonata(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        at: &str,
    ) -> Option<jsonata::Template> {
        let value = obj.get(field)?;
        self.compile_jsonata(value, field, at, false)
    }

    /// Compiles `value` as the JSONata field `field` (relative to the state at `at`).
    fn compile_jsonata(
        &mut self,
        value: &Value,
        field: &str,
        at: &str,
        catcher: bool,
    ) -> Option<jsonata::Template> {
        match jsonata::Template::compile(value, field, catcher) {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(e.code, e.message, &format!("{at}/{}", e.field));
                None
            }
        }
    }

    fn transition(&mut self, obj: &Map<String, Value>, at: &str) -> Option<String> {
        let end = matches!(obj.get("End"), Some(Value::Bool(true)));
        match (obj.get("Next"), end) {
            (Some(Value::String(n)), false) => Some(n.clone()),
            (None, true) => None,
            (Some(_), true) => {
                self.schema("Only one of 'Next' or 'End' can be present", at);
                None
            }
            (Some(_), false) => {
                self.schema("Value must be a string", &format!("{at}/Next"));
                None
            }
            (None, false) => {
                self.schema("No terminal state found in machine", at);
                None
            }
        }
    }

    fn path_field(&mut self, obj: &Map<String, Value>, field: &str, at: &str) -> PathField {
        match obj.get(field) {
            None => PathField::Default,
            Some(Value::Null) => PathField::Null,
            Some(Value::String(s)) => match JsonPath::parse(s) {
                Ok(p) => PathField::Path(p),
                Err(_) => {
                    self.schema(
                        format!("The value for the field '{field}' must be a valid JSONPath"),
                        &format!("{at}/{field}"),
                    );
                    PathField::Default
                }
            },
            Some(_) => {
                self.schema("Value must be a string", &format!("{at}/{field}"));
                PathField::Default
            }
        }
    }

    fn result_path(&mut self, obj: &Map<String, Value>, at: &str) -> ResultPathField {
        match obj.get("ResultPath") {
            None => ResultPathField::Default,
            Some(Value::Null) => ResultPathField::Null,
            Some(Value::String(s)) => match ReferencePath::parse(s) {
                Ok(p) => ResultPathField::Path(p),
                Err(_) => {
                    self.schema(
                        "The value for the field 'ResultPath' must be a valid JSONPath",
                        &format!("{at}/ResultPath"),
                    );
                    ResultPathField::Default
                }
            },
            Some(_) => {
                self.schema("Value must be a string", &format!("{at}/ResultPath"));
                ResultPathField::Default
            }
        }
    }

    fn template(&mut self, obj: &Map<String, Value>, field: &str, at: &str) -> Option<Template> {
        let value = obj.get(field)?;
        match Template::compile(value) {
            Ok(t) => Some(t),
            Err(message) => {
                self.schema(message, &format!("{at}/{field}"));
                None
            }
        }
    }

    fn choice(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        language: QueryLanguage,
    ) -> Option<StateKind> {
        let Some(Value::Array(entries)) = obj.get("Choices") else {
            self.schema("These fields are required: [Choices]", at);
            return None;
        };
        if entries.is_empty() {
            self.schema("Value cannot be empty", &format!("{at}/Choices"));
        }
        let mut choices = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let loc = format!("{at}/Choices[{i}]");
            let parsed = match (language, entry.as_object()) {
                (QueryLanguage::Jsonata, Some(fields)) => self.jsonata_choice(fields, i, at),
                (QueryLanguage::JsonPath, Some(fields))
                    if fields.contains_key("Condition") || fields.contains_key("Output") =>
                {
                    for field in ["Condition", "Output"] {
                        if fields.contains_key(field) {
                            self.schema(wrong_language(language, field), &loc);
                        }
                    }
                    None
                }
                _ => match choice::parse_choice(entry, &loc) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        self.schema(e.message, &e.location);
                        None
                    }
                },
            };
            choices.extend(parsed);
        }
        let default = self.string(obj, "Default", at);
        Some(StateKind::Choice { choices, default })
    }

    /// A JSONata `Choices[i]` entry: `Condition`, `Next`, and optionally `Assign` and `Output`.
    fn jsonata_choice(
        &mut self,
        fields: &Map<String, Value>,
        i: usize,
        at: &str,
    ) -> Option<Choice> {
        let loc = format!("{at}/Choices[{i}]");
        for field in fields.keys() {
            if choice::is_rule_field(field) {
                self.schema(wrong_language(QueryLanguage::Jsonata, field), &loc);
            } else if !matches!(
                field.as_str(),
                "Condition" | "Next" | "Assign" | "Output" | "Comment"
            ) {
                self.schema(
                    format!("The field '{field}' is not supported by Step Functions"),
                    &loc,
                );
            }
        }
        let next = match fields.get("Next") {
            Some(Value::String(next)) => next.clone(),
            Some(_) => {
                self.schema("The field 'Next' must be a string", &format!("{loc}/Next"));
                return None;
            }
            None => {
                self.schema("The field 'Next' is required but was missing", &loc);
                return None;
            }
        };
        let Some(condition) = fields.get("Condition") else {
            self.schema("These fields are required: [Condition]", &loc);
            return None;
        };
        let condition =
            self.compile_jsonata(condition, &format!("Choices[{i}]/Condition"), at, false)?;
        let mut optional = |field: &str| {
            let value = fields.get(field)?;
            self.compile_jsonata(value, &format!("Choices[{i}]/{field}"), at, false)
        };
        Some(Choice {
            condition: Condition::Jsonata(condition),
            next,
            assign: optional("Assign").map(Payload::Jsonata),
            output: optional("Output"),
        })
    }

    fn retry_catch(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        language: QueryLanguage,
    ) -> (Vec<Retrier>, Vec<Catcher>) {
        let mut retry = Vec::new();
        for (i, r) in self.array(obj, "Retry", at).iter().enumerate() {
            match task::parse_retrier(r) {
                Ok(r) => retry.push(r),
                Err(m) => self.schema(m, &format!("{at}/Retry[{i}]")),
            }
        }
        let mut catch = Vec::new();
        for (i, c) in self.array(obj, "Catch", at).iter().enumerate() {
            let loc = format!("{at}/Catch[{i}]");
            let mut catcher = match task::parse_catcher(c) {
                Ok(c) => c,
                Err(m) => {
                    self.schema(m, &loc);
                    continue;
                }
            };
            let Some(fields) = c.as_object() else {
                continue;
            };
            for field in ["ResultPath", "Output"] {
                if fields.contains_key(field) && field_language(field) != Some(language) {
                    self.schema(wrong_language(language, field), &loc);
                }
            }
            catcher.assign = match (language, fields.get("Assign")) {
                (_, None) => None,
                (QueryLanguage::JsonPath, Some(v)) => match Template::compile(v) {
                    Ok(t) => Some(Payload::Path(t)),
                    Err(m) => {
                        self.schema(m, &format!("{loc}/Assign"));
                        None
                    }
                },
                (QueryLanguage::Jsonata, Some(v)) => self
                    .compile_jsonata(v, &format!("Catch[{i}]/Assign"), at, true)
                    .map(Payload::Jsonata),
            };
            if language == QueryLanguage::Jsonata {
                catcher.output = fields
                    .get("Output")
                    .and_then(|v| self.compile_jsonata(v, &format!("Catch[{i}]/Output"), at, true));
            }
            catch.push(catcher);
        }
        (retry, catch)
    }

    /// `ResultSelector` and `ResultPath`, with the `Retry` and `Catch` read before them.
    fn result_handling(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        (retry, catch): (Vec<Retrier>, Vec<Catcher>),
    ) -> ResultHandling {
        ResultHandling {
            result_selector: self.template(obj, "ResultSelector", at),
            result_path: self.result_path(obj, at),
            retry,
            catch,
        }
    }

    fn parallel(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        language: QueryLanguage,
    ) -> Option<ParallelState> {
        let branches_at = format!("{at}/Branches");
        let specs = match obj.get("Branches") {
            Some(Value::Array(b)) if !b.is_empty() => b.clone(),
            Some(Value::Array(_)) => {
                self.schema("Value cannot be empty", &branches_at);
                return None;
            }
            _ => {
                self.schema("These fields are required: [Branches]", at);
                return None;
            }
        };
        let mut branches = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let here = format!("{branches_at}[{i}]");
            match spec {
                Value::Object(b) => branches.push(self.scope(b, &here)?),
                _ => {
                    self.schema("Value must be an object", &here);
                    return None;
                }
            }
        }
        let retry_catch = self.retry_catch(obj, at, language);
        Some(ParallelState {
            branches,
            parameters: self.payload(obj, parameters_field(language), at, language),
            handling: self.result_handling(obj, at, retry_catch),
        })
    }

    /// A Map state, inline or distributed.
    fn map(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        language: QueryLanguage,
    ) -> Option<StateKind> {
        let (field, spec) = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
            (Some(Value::Object(p)), _) => ("ItemProcessor", p),
            (None, Some(Value::Object(p))) => ("Iterator", p),
            _ => {
                self.schema("These fields are required: [ItemProcessor]", at);
                return None;
            }
        };
        if let Some(config) = spec.get("ProcessorConfig") {
            self.processor_config(config, &format!("{at}/{field}/ProcessorConfig"));
        }
        let processor = self.scope(spec, &format!("{at}/{field}"))?;
        let distributed = spec
            .get("ProcessorConfig")
            .and_then(|c| c.get("Mode"))
            .and_then(Value::as_str)
            == Some("DISTRIBUTED");
        let distributed = match (distributed, obj.contains_key("ItemReader")) {
            (true, _) => Some(Box::new(self.distributed(obj, spec, at, language))),
            // An ItemReader needs the distributed mode.
            (false, true) => return Some(StateKind::Unsupported("Map")),
            (false, false) => None,
        };
        let item_selector = match (language, obj.get("ItemSelector")) {
            (QueryLanguage::Jsonata, _) | (_, Some(_)) => {
                self.payload(obj, "ItemSelector", at, language)
            }
            (QueryLanguage::JsonPath, None) => {
                self.template(obj, "Parameters", at).map(Payload::Path)
            }
        };
        let max_concurrency_expr = match obj.get("MaxConcurrency") {
            Some(Value::String(s))
                if language == QueryLanguage::Jsonata && jsonata::is_expression(s) =>
            {
                self.jsonata(obj, "MaxConcurrency", at)
            }
            _ => None,
        };
        let max_concurrency_fixed = match obj.get("MaxConcurrency") {
            None => 0,
            Some(_) if max_concurrency_expr.is_some() => 0,
            Some(v) => match v.as_u64() {
                Some(n) => n,
                None => {
                    self.schema(
                        "Value must be a non-negative integer",
                        &format!("{at}/MaxConcurrency"),
                    );
                    0
                }
            },
        };
        let retry_catch = self.retry_catch(obj, at, language);
        let items_path = self.path_field(obj, "ItemsPath", at);
        let items = self.jsonata(obj, "Items", at);
        let max_concurrency_path = match obj.get("MaxConcurrencyPath") {
            Some(Value::String(p)) => match JsonPath::parse(p) {
                Ok(p) => Some(p),
                Err(_) => {
                    self.schema(
                        "The value for the field 'MaxConcurrencyPath' must be a valid JSONPath",
                        &format!("{at}/MaxConcurrencyPath"),
                    );
                    None
                }
            },
            _ => None,
        };
        // A JSONata expression wins over a path, a path over a number.
        let max_concurrency = match (max_concurrency_expr, max_concurrency_path) {
            (Some(t), _) => MaxConcurrency::Jsonata(t),
            (None, Some(p)) => MaxConcurrency::Path(p),
            (None, None) => MaxConcurrency::Fixed(max_concurrency_fixed),
        };
        Some(StateKind::Map(Box::new(MapState {
            processor,
            distributed,
            items_path,
            items,
            item_selector,
            max_concurrency,
            handling: self.result_handling(obj, at, retry_catch),
        })))
    }

    fn task(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        language: QueryLanguage,
    ) -> Option<TaskState> {
        let resource = match obj.get("Resource") {
            Some(Value::String(r)) => match Resource::parse(r).and_then(|res| refused(res, r)) {
                Ok(r) => r,
                Err(m) => {
                    self.schema(m, &format!("{at}/Resource"));
                    return None;
                }
            },
            _ => {
                self.schema("These fields are required: [Resource]", at);
                return None;
            }
        };
        let retry_catch = self.retry_catch(obj, at, language);
        if let Some(c) = obj.get("Credentials") {
            if c.get("RoleArn").is_none() && c.get("RoleArn.$").is_none() {
                self.schema(
                    "The field 'RoleArn' is required but was missing",
                    &format!("{at}/Credentials"),
                );
            }
        }
        let credentials = self.payload(obj, "Credentials", at, language);
        Some(TaskState {
            resource,
            parameters: self.payload(obj, parameters_field(language), at, language),
            handling: self.result_handling(obj, at, retry_catch),
            timeout: self.seconds(obj, "TimeoutSeconds", at, language),
            heartbeat: self.seconds(obj, "HeartbeatSeconds", at, language),
            credentials,
        })
    }

    fn array(&mut self, obj: &Map<String, Value>, field: &str, at: &str) -> Vec<Value> {
        match obj.get(field) {
            None => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => {
                self.schema("Value must be an array", &format!("{at}/{field}"));
                Vec::new()
            }
        }
    }

    /// `TimeoutSeconds`/`HeartbeatSeconds`, their `…Path` forms, or a JSONata expression.
    fn seconds(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        at: &str,
        language: QueryLanguage,
    ) -> Option<Seconds> {
        let path_field = format!("{field}Path");
        match (obj.get(field), obj.get(&path_field)) {
            (Some(Value::String(s)), None)
                if language == QueryLanguage::Jsonata && jsonata::is_expression(s) =>
            {
                self.jsonata(obj, field, at).map(Seconds::Jsonata)
            }
            (Some(v), None) => match v.as_u64().filter(|n| *n > 0) {
                Some(n) => Some(Seconds::Fixed(n)),
                None => {
                    self.schema("Value must be a positive integer", &format!("{at}/{field}"));
                    None
                }
            },
            (None, Some(Value::String(p))) => match JsonPath::parse(p) {
                Ok(p) => Some(Seconds::Path(p)),
                Err(_) => {
                    self.schema(
                        format!("The value for the field '{path_field}' must be a valid JSONPath"),
                        &format!("{at}/{path_field}"),
                    );
                    None
                }
            },
            (None, None) => None,
            _ => {
                self.schema(
                    format!("Only one of '{field}' or '{path_field}' can be present"),
                    at,
                );
                None
            }
        }
    }

    fn wait(
        &mut self,
        obj: &Map<String, Value>,
        at: &str,
        language: QueryLanguage,
    ) -> Option<WaitFor> {
        let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
            .into_iter()
            .filter(|f| obj.contains_key(*f))
            .collect();
        if given.len() != 1 {
            self.schema(
                "A Wait state must contain exactly one of 'Seconds', 'SecondsPath', 'Timestamp' or 'TimestampPath'",
                at,
            );
            return None;
        }
        let field = given[0];
        let value = &obj[field];
        let loc = format!("{at}/{field}");
        let wait = match (field, value) {
            ("Seconds" | "Timestamp", Value::String(s))
                if language == QueryLanguage::Jsonata && jsonata::is_expression(s) =>
            {
                let template = self.jsonata(obj, field, at)?;
                if field == "Seconds" {
                    WaitFor::SecondsJsonata(template)
                } else {
                    WaitFor::TimestampJsonata(template)
                }
            }
            ("Seconds", v) => match v.as_u64() {
                Some(n) => WaitFor::Seconds(n),
                None => {
                    self.schema("Value must be a non-negative integer", &loc);
                    return None;
                }
            },
            ("Timestamp", Value::String(s)) => match timestamp::parse(s) {
                Some(ms) => WaitFor::Timestamp(ms),
                None => {
                    self.schema("String does not match RFC3339 timestamp", &loc);
                    return None;
                }
            },
            (_, Value::String(s)) => match JsonPath::parse(s) {
                Ok(p) if field == "SecondsPath" => WaitFor::SecondsPath(p),
                Ok(p) => WaitFor::TimestampPath(p),
                Err(_) => {
                    self.schema(
                        format!("The value for the field '{field}' must be a valid JSONPath"),
                        &loc,
                    );
                    return None;
                }
            },
            _ => {
                self.schema("Value must be a string", &loc);
                return None;
            }
        };
        Some(wait)
    }

    fn source(
        &mut self,
        obj: &Map<String, Value>,
        lit: &str,
        path: &str,
        at: &str,
        language: QueryLanguage,
    ) -> Source {
        match (obj.get(lit), obj.get(path)) {
            (Some(Value::String(s)), None)
                if language == QueryLanguage::Jsonata && jsonata::is_expression(s) =>
            {
                self.jsonata(obj, lit, at)
                    .map_or(Source::None, Source::Jsonata)
            }
            (Some(_), Some(_)) => {
                self.schema(
                    format!("Only one of '{lit}' or '{path}' can be present"),
                    at,
                );
                Source::None
            }
            (Some(Value::String(s)), None) => Source::Literal(s.clone()),
            (Some(_), None) => {
                self.schema("Value must be a string", &format!("{at}/{lit}"));
                Source::None
            }
            (None, Some(Value::String(s))) => {
                if crate::intrinsics::is_intrinsic(s) {
                    match crate::intrinsics::Intrinsic::parse(s) {
                        Ok(f) => return Source::Intrinsic(f),
                        Err(message) => self.schema(message, &format!("{at}/{path}")),
                    }
                } else {
                    match JsonPath::parse(s) {
                        Ok(p) => return Source::Path(p),
                        Err(_) => self.schema(
                            format!("The value for the field '{path}' must be a valid JSONPath"),
                            &format!("{at}/{path}"),
                        ),
                    }
                }
                Source::None
            }
            (None, Some(_)) => {
                self.schema("Value must be a string", &format!("{at}/{path}"));
                Source::None
            }
            (None, None) => Source::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_use_table() {
        use ContextUse::{Full, None, WithoutInput};
        let cases = [
            (r#"{"Type":"Pass","End":true}"#, None),
            (
                r#"{"Type":"Pass","Parameters":{"a.$":"$.x"},"End":true}"#,
                None,
            ),
            (
                r#"{"Type":"Pass","Parameters":{"a.$":"$$.Execution.Id"},"End":true}"#,
                WithoutInput,
            ),
            (
                r#"{"Type":"Pass","Parameters":{"a.$":"States.Format('{}', $$.State.Name)"},"End":true}"#,
                WithoutInput,
            ),
            (
                r#"{"Type":"Choice","Choices":[{"Variable":"$$.Map.Item.Index","NumericEquals":0,"Next":"A"}]}"#,
                WithoutInput,
            ),
            (
                r#"{"Type":"Pass","Parameters":{"a.$":"$$.Execution.Input.x","b.$":"$$.Task.Token"},"End":true}"#,
                Full,
            ),
            (
                r#"{"Type":"Pass","Parameters":{"a.$":"$$.Execution"},"End":true}"#,
                Full,
            ),
            (
                r#"{"Type":"Pass","Parameters":{"a.$":"$$.Execution.IdX"},"End":true}"#,
                Full,
            ),
            (
                r#"{"Type":"Pass","Parameters":{"a.$":"$$['Execution']"},"End":true}"#,
                Full,
            ),
            (
                r#"{"Type":"Pass","Parameters":{"a.$":"$$"},"End":true}"#,
                Full,
            ),
            (
                r#"{"Type":"Pass","Output":"{% $states.input.a & $states.result %}","End":true}"#,
                None,
            ),
            (
                r#"{"Type":"Pass","Output":"{% $states.context.Execution.Name %}","End":true}"#,
                Full,
            ),
            (
                r#"{"Type":"Pass","Output":"{% $states %}","End":true}"#,
                Full,
            ),
            (
                r#"{"Type":"Pass","Output":"{% $states.inputs %}","End":true}"#,
                Full,
            ),
            (r#"{"Type":"Pass","Output":{"$$":1},"End":true}"#, Full),
            (
                r#"{"Type":"Pass","Output":{"$$.Map":1},"End":true}"#,
                WithoutInput,
            ),
        ];
        for (spec, expected) in cases {
            let spec: Value = serde_json::from_str(spec).expect(spec);
            assert_eq!(context_use(&spec), expected, "{spec}");
        }
    }

    #[test]
    fn diagnostics_table() {
        let cases: &[(&str, &str)] = &[
            ("{}", "SCHEMA_VALIDATION_FAILED: These fields are required: [States, StartAt] at /"),
            (r#"{"States":{}}"#, "SCHEMA_VALIDATION_FAILED: These fields are required: [StartAt] at /"),
            ("[]", "SCHEMA_VALIDATION_FAILED: Definition must be a valid JSON object"),
            (
                r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"B"}}}"#,
                "MISSING_TRANSITION_TARGET: Missing 'Next' target: B at /States/A/Next",
            ),
            (
                r#"{"StartAt":"A","States":{"A":{"Type":"Nope"}}}"#,
                "SCHEMA_VALIDATION_FAILED: The field 'Type' should have one of these values: [Task, Wait, Pass, Succeed, Fail, Choice, Parallel, Map] at /States/A/Type",
            ),
            (
                r#"{"StartAt":"A","States":{"A":{"Type":"Wait","Timestamp":"2016-12-05 21:29:29Z","End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: String does not match RFC3339 timestamp at /States/A/Timestamp",
            ),
            (
                r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Foo":1,"End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: The field 'Foo' is not supported by Step Functions at /States/A",
            ),
            // Query languages.
            (
                r#"{"QueryLanguage":"JSONata","StartAt":"A","States":{"A":{"Type":"Pass","QueryLanguage":"JSONPath","Output":1,"End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: 'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine at /States/A",
            ),
            (
                r#"{"QueryLanguage":"JSONata","StartAt":"A","States":{"A":{"Type":"Pass","InputPath":"$.a","End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: The QueryLanguage is set to 'JSONata', but field 'InputPath' is only supported for the 'JSONPath' QueryLanguage at /States/A",
            ),
            (
                r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Output":{},"End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: The QueryLanguage is set to 'JSONPath', but field 'Output' is only supported for the 'JSONata' QueryLanguage at /States/A",
            ),
            (
                r#"{"QueryLanguage":"jsonata","StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: Value should be one of the following: [JSONPath, JSONata] at /QueryLanguage",
            ),
            (
                r#"{"StartAt":"A","States":{"A":{"Type":"Pass","QueryLanguage":1,"End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: Expected value of type [STRING] at /States/A/QueryLanguage",
            ),
            (
                r#"{"StartAt":"C","States":{"C":{"Type":"Choice","QueryLanguage":"JSONata","Choices":[{"Variable":"$.a","IsNull":true,"Condition":true,"Next":"C"}]}}}"#,
                "SCHEMA_VALIDATION_FAILED: The QueryLanguage is set to 'JSONata', but field 'Variable' is only supported for the 'JSONPath' QueryLanguage at /States/C/Choices[0], SCHEMA_VALIDATION_FAILED: The QueryLanguage is set to 'JSONata', but field 'IsNull' is only supported for the 'JSONPath' QueryLanguage at /States/C/Choices[0]",
            ),
            (
                r#"{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Condition":true,"Next":"C"}]}}}"#,
                "SCHEMA_VALIDATION_FAILED: The QueryLanguage is set to 'JSONPath', but field 'Condition' is only supported for the 'JSONata' QueryLanguage at /States/C/Choices[0]",
            ),
            (
                r#"{"QueryLanguage":"JSONata","StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Catch":[{"ErrorEquals":["States.ALL"],"ResultPath":"$.e","Next":"T"}],"End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: The QueryLanguage is set to 'JSONata', but field 'ResultPath' is only supported for the 'JSONPath' QueryLanguage at /States/T/Catch[0]",
            ),
            (
                r#"{"StartAt":"M","States":{"M":{"Type":"Map","ItemProcessor":{"ProcessorConfig":{"Mode":"WEIRD","ExecutionType":"SLOW"},"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}},"End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: The field 'Mode' should have one of these values: [INLINE, DISTRIBUTED] at /States/M/ItemProcessor/ProcessorConfig/Mode, SCHEMA_VALIDATION_FAILED: The field 'ExecutionType' should have one of these values: [STANDARD, EXPRESS] at /States/M/ItemProcessor/ProcessorConfig/ExecutionType",
            ),
            (
                r#"{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:123456789012:function:","Next":"B"},"B":{"Type":"Task","Resource":"arn:aws:states:::aws-sdk:s3:getObject.sync","End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: Invalid resource: arn:aws:lambda:us-east-1:123456789012:function: at /States/A/Resource, SCHEMA_VALIDATION_FAILED: Invalid resource: arn:aws:states:::aws-sdk:s3:getObject.sync at /States/B/Resource",
            ),
            (
                r#"{"StartAt":"M","States":{"M":{"Type":"Map","ItemProcessor":{"ProcessorConfig":{"Mode":"DISTRIBUTED"},"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}},"End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: These fields are required: [ExecutionType] at /States/M/ItemProcessor/ProcessorConfig",
            ),
            (
                r#"{"QueryLanguage":"JSONata","StartAt":"M","States":{"M":{"Type":"Map","ItemProcessor":{"QueryLanguage":"JSONata","StartAt":"P","States":{"P":{"Type":"Pass","End":true}}},"End":true}}}"#,
                "SCHEMA_VALIDATION_FAILED: Field 'QueryLanguage' is not supported at /States/M/ItemProcessor",
            ),
            (
                r#"{"QueryLanguage":"JSONata","StartAt":"E","States":{"E":{"Type":"Pass","Output":{"v":"{% phone %}"},"End":true}}}"#,
                "UNSUPPORTED_JSONATA_EXPRESSION: Reference to 'phone' at the top level is not supported. at /States/E/Output/v",
            ),
            (
                r#"{"QueryLanguage":"JSONata","StartAt":"E","States":{"E":{"Type":"Pass","Assign":{"v":"{% $states.errorOutput %}"},"End":true}}}"#,
                "UNSUPPORTED_JSONATA_EXPRESSION: Reference to '$states.errorOutput' is not supported. at /States/E/Assign/v",
            ),
            (
                r#"{"QueryLanguage":"JSONata","StartAt":"E","States":{"E":{"Type":"Wait","Seconds":"{% (1 %}","End":true}}}"#,
                "INVALID_JSONATA_EXPRESSION: S0203: Expected RightParen before end of expression at /States/E/Seconds",
            ),
        ];
        for (text, expected) in cases {
            let diags = Definition::parse(text).err().unwrap_or_default();
            let got = invalid_definition_message(text, &diags);
            assert_eq!(
                got,
                format!("Invalid State Machine Definition: '{expected}'"),
                "{text}"
            );
        }
    }

    #[test]
    fn jsonata_definition_parses() {
        let text = r#"{"QueryLanguage":"JSONata","StartAt":"T","States":{
            "T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Arguments":{"p":"{% $states.input.a %}"},
                 "TimeoutSeconds":"{% 5 %}","Output":"{% $states.result %}","Assign":{"x":"{% 1 %}"},
                 "Catch":[{"ErrorEquals":["States.ALL"],"Output":"{% $states.errorOutput %}","Next":"C"}],"Next":"C"},
            "C":{"Type":"Choice","Choices":[{"Condition":"{% $x = 1 %}","Output":{"ok":true},"Next":"W"}],"Default":"F"},
            "W":{"Type":"Wait","Seconds":"{% 0 %}","Next":"M"},
            "M":{"Type":"Map","Items":"{% [1, 2] %}","MaxConcurrency":"{% 1 %}","ItemSelector":{"i":"{% $states.context.Map.Item.Value %}"},
                 "ItemProcessor":{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}},"Next":"S"},
            "S":{"Type":"Succeed","Output":"{% $states.input %}"},
            "F":{"Type":"Fail","Error":"{% 'E' %}","Cause":"{% 'C' %}"}}}"#;
        let def = Definition::parse(text).unwrap_or_else(|d| panic!("{d:?}"));
        let state = def.state("T").expect("T");
        assert_eq!(state.query_language, QueryLanguage::Jsonata);
        assert!(state.output.is_some());
        assert!(matches!(state.assign, Some(Payload::Jsonata(_))));
        let StateKind::Task(task) = &state.kind else {
            panic!("a Task");
        };
        assert!(matches!(task.parameters, Some(Payload::Jsonata(_))));
        assert!(matches!(task.timeout, Some(Seconds::Jsonata(_))));
        assert!(task.handling.catch[0].output.is_some());
        // The nested states use the state machine's language.
        let StateKind::Map(map) = &def.state("M").expect("M").kind else {
            panic!("a Map");
        };
        let inner = map.processor.state("P").expect("P");
        assert_eq!(inner.query_language, QueryLanguage::Jsonata);
    }

    #[test]
    fn valid_definition_parses() {
        let text = r#"{"StartAt":"A","TimeoutSeconds":5,"States":{
            "A":{"Type":"Pass","Result":1,"ResultPath":"$.r","Next":"B"},
            "B":{"Type":"Wait","Seconds":1,"Next":"C"},
            "C":{"Type":"Succeed"}}}"#;
        let def = Definition::parse(text).expect("valid");
        assert_eq!(def.root.start_at, "A");
        assert_eq!(def.timeout_seconds, Some(5));
        assert_eq!(def.state("A").and_then(|s| s.next.as_deref()), Some("B"));
    }
}

/// `variableReferences` of DescribeStateMachine: for each state (nested ones included) that
/// reads workflow variables, their names, sorted. Read from the document as written, so it
/// never fails: a definition that does not parse has no references.
pub fn variable_references(text: &str) -> Map<String, Value> {
    /// Whether a member's string value is evaluated (a path or an intrinsic) rather than
    /// taken literally: `….$` template keys and the path fields.
    fn evaluated(key: &str) -> bool {
        key.ends_with(".$") || key.ends_with("Path") || key == "Variable"
    }
    /// The variables a JSONata state's field reads: those of its `{% %}` strings.
    fn scan_jsonata(v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::String(s) if jsonata::is_expression(s) => {
                if let Ok(t) = jsonata::Template::compile(v, "", true) {
                    t.variables(out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| scan_jsonata(i, out)),
            Value::Object(obj) => obj.values().for_each(|i| scan_jsonata(i, out)),
            _ => {}
        }
    }
    fn scan(v: &Value, is_evaluated: bool, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::String(s) if is_evaluated => {
                let bytes = s.as_bytes();
                for (i, _) in s.match_indices('$') {
                    let after_dollar = i > 0 && bytes[i - 1] == b'$';
                    let name: String = s[i + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let starts_ok = name
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
                    if !after_dollar && starts_ok {
                        out.insert(name);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| scan(i, is_evaluated, out)),
            Value::Object(obj) => obj.iter().for_each(|(k, i)| scan(i, evaluated(k), out)),
            _ => {}
        }
    }
    /// `jsonata`: whether the state machine's `QueryLanguage` is JSONata.
    fn machine(m: &Value, jsonata: bool, out: &mut Map<String, Value>) {
        let Some(states) = m.get("States").and_then(Value::as_object) else {
            return;
        };
        for (name, state) in states {
            let Some(fields) = state.as_object() else {
                continue;
            };
            let state_jsonata = match fields.get("QueryLanguage") {
                None => jsonata,
                Some(language) => language.as_str() != Some("JSONPath"),
            };
            let mut names = std::collections::BTreeSet::new();
            for (field, value) in fields {
                match field.as_str() {
                    "Branches" => value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .for_each(|b| machine(b, jsonata, out)),
                    "ItemProcessor" | "Iterator" => machine(value, jsonata, out),
                    _ if state_jsonata => scan_jsonata(value, &mut names),
                    _ => scan(value, evaluated(field), &mut names),
                }
            }
            if !names.is_empty() {
                out.insert(
                    name.clone(),
                    Value::Array(names.into_iter().map(Value::String).collect()),
                );
            }
        }
    }
    let mut out = Map::new();
    if let Ok(doc) = serde_json::from_str::<Value>(text) {
        let jsonata = doc.get("QueryLanguage").and_then(Value::as_str) == Some("JSONata");
        machine(&doc, jsonata, &mut out);
    }
    out
}

#[cfg(test)]
mod variable_reference_tests {
    use super::*;

    #[test]
    fn references_per_state_sorted_nested_included() {
        let text = r#"{"StartAt":"A","States":{
            "A":{"Type":"Pass","Assign":{"x":1},"Parameters":{"v.$":"$$.Execution.Id","w.$":"$.a","lit":"$notread"},"Next":"M"},
            "M":{"Type":"Map","ItemsPath":"$list","ItemProcessor":{"StartAt":"S","States":{
                "S":{"Type":"Pass","Assign":{"s.$":"States.MathAdd($zeta, $alpha)"},"End":true}}},"End":true}}}"#;
        let refs = variable_references(text);
        let jsonata = r#"{"StartAt":"A","States":{
            "A":{"Type":"Pass","QueryLanguage":"JSONata","Output":{"v":"{% $x + $states.input.n %}","l":"$lit"},
                 "Assign":{"y":"{% ($local := 1; $local + $z) %}"},"Next":"B"},
            "B":{"Type":"Pass","Parameters":{"p.$":"$q","r":"{% $notread %}"},"End":true}}}"#;
        assert_eq!(
            Value::Object(variable_references(jsonata)),
            serde_json::json!({"A": ["x", "z"], "B": ["q"]})
        );
        assert_eq!(
            Value::Object(refs),
            serde_json::json!({"M": ["list"], "S": ["alpha", "zeta"]})
        );
    }
}
