//! The pure interpreter: runtime state + one signal → new runtime state + history events.
//!
//! Architecture invariant: [`advance`] does no IO and reads no clock; `now` and entropy are
//! arguments. The engine persists the returned events together with the new [`Runtime`] in
//! one atomic write, and calls again when the returned `wake_at` time has come.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::choice::{self, Condition};
use crate::definition::{
    ContextUse, Definition, Machine, Payload, QueryLanguage, Source, State, StateKind,
};
use crate::error::{names, ErrorCause};
use crate::history::{EventDetails, HistoryEvent};
use crate::io;
use crate::jsonata::{self, Env, States};
use crate::task::{Pattern, Resource};
use crate::template::Scope;
use crate::{timestamp, Entropy};

mod container;
mod exit;
mod map_run;
mod redefine;
mod restart;
mod runtime;
mod signal;
mod tasks;
pub mod test_state;
#[cfg(test)]
mod test_support;
mod wait;

pub use map_run::{exceeded_tolerance, tolerance_exceeded, MapRunSpec, S3Call};
pub use redefine::{conflicts, Conflict, ConflictReason};
pub use restart::{lane_trail, replace_input, restart_at, RestartError};
pub use runtime::{
    Container, Current, Dispatch, ExecutionInfo, Lane, LaneStatus, Limits, Runtime, Status,
    TaskOutcome, TaskPhase, TaskRun,
};
pub use signal::{redriven_event, Advance, Signal, Touched};

/// AWS's payload limit for inputs, outputs and results: 256 KiB of UTF-8.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Moves an execution forward as far as it can go without waiting.
pub fn advance(
    def: &Definition,
    info: &ExecutionInfo,
    rt: &mut Runtime,
    signal: Signal,
    now: i64,
    entropy: &mut Entropy,
    limits: Limits,
) -> Advance {
    let mut run = Run::new(def, info, rt, now, entropy, limits);
    run.handle(signal);
    run.finish()
}

/// What became of one signal of [`advance_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// It changed the execution (or may have: a task's outcome was taken).
    Applied,
    /// It named a task attempt that is no longer current, and changed nothing.
    Stale,
    /// The execution had ended before it.
    NotRunning,
}

/// Applies `signals` in their order as one transition, as [`advance`] would one after the
/// other, except that task ends take their outcomes first and the execution runs once, before
/// the first signal that needs it run (a stop, a wake, a signal about a task whose end is
/// waiting) or at the end: a Map whose many iterations end together is looked at once, not
/// once per iteration. The lanes run in their order in the container, not in the signals'.
pub fn advance_batch(
    def: &Definition,
    info: &ExecutionInfo,
    rt: &mut Runtime,
    signals: Vec<Signal>,
    now: i64,
    entropy: &mut Entropy,
    limits: Limits,
) -> (Advance, Vec<Received>) {
    let mut run = Run::new(def, info, rt, now, entropy, limits);
    let mut received = Vec::with_capacity(signals.len());
    // The tasks whose ends wait for the run.
    let mut deferred = HashSet::new();
    for signal in signals {
        let independent = match &signal {
            Signal::TaskFinished { .. } => true,
            other => other.task_id().is_some_and(|id| !deferred.contains(&id)),
        };
        if !independent && !deferred.is_empty() {
            run.run();
            deferred.clear();
        }
        if run.rt.status != Status::Running {
            received.push(Received::NotRunning);
            continue;
        }
        let (events, stale) = (run.out.events.len(), std::mem::take(&mut run.out.stale));
        match signal {
            Signal::TaskFinished { task_id, outcome } => {
                if run.take_outcome(task_id, outcome) {
                    deferred.insert(task_id);
                }
            }
            signal => run.handle(signal),
        }
        let unchanged = run.out.stale && run.out.events.len() == events;
        received.push(match unchanged {
            true => Received::Stale,
            false => Received::Applied,
        });
        run.out.stale |= stale;
    }
    if !deferred.is_empty() {
        run.run();
    }
    (run.finish(), received)
}

struct Run<'a> {
    def: &'a Definition,
    info: &'a ExecutionInfo,
    rt: &'a mut Runtime,
    now: i64,
    entropy: &'a mut Entropy,
    limits: Limits,
    out: Advance,
    /// Which state is being executed: lane indexes from the top-level state down.
    path: Vec<usize>,
    /// States left to run in this call.
    budget: u32,
    /// The variables of the scope being run.
    vars: Map<String, Value>,
    /// Variables the state being executed assigns when it exits.
    pending_assign: Option<Map<String, Value>>,
    /// The context object, when it is given rather than derived (TestState's `context`).
    context_override: Option<Value>,
    /// An event was refused because the history is full: the execution fails at the end of
    /// the call ([`Run::fail_at_cap`]).
    capped: bool,
    /// The call ran states ([`Run::run`]).
    ran: bool,
}

/// How a scope (the execution, a branch, an iteration) ended, or that it waits.
enum ScopeEnd {
    Done(Value),
    Failed(ErrorCause),
    TimedOut,
    Blocked,
}

/// How a state finished.
enum Outcome {
    /// Go to `next` (or end the execution) with this output.
    Exit(Value),
    /// Wait until the given time; the state stays current.
    Wait(i64),
    /// A Choice picked the next state.
    Branch(String, Value),
    /// A Fail state ended the execution.
    Fail(ErrorCause),
    /// The state waits for a task, a timer or a signal; nothing more to do now.
    Blocked,
    /// The state changed and must be executed again right away (a retry with no delay).
    Again,
    /// A lane of a Parallel or Map state ran into the execution's deadline.
    TimedOut,
}

impl<'a> Run<'a> {
    fn new(
        def: &'a Definition,
        info: &'a ExecutionInfo,
        rt: &'a mut Runtime,
        now: i64,
        entropy: &'a mut Entropy,
        limits: Limits,
    ) -> Run<'a> {
        Run {
            def,
            info,
            rt,
            now,
            entropy,
            limits,
            out: Advance::default(),
            path: Vec::new(),
            budget: limits.states_per_call,
            vars: Map::new(),
            pending_assign: None,
            context_override: None,
            capped: false,
            ran: false,
        }
    }

    /// Ends the call: a history that ran full fails the execution; when to call again. A call
    /// that ran no states leaves states an earlier call yielded still to run, and the
    /// execution due at once.
    fn finish(mut self) -> Advance {
        if self.capped {
            self.fail_at_cap();
        }
        if self.ran {
            self.rt.yielded = self.out.yielded;
        }
        self.rt.yielded &= self.rt.status == Status::Running;
        // No wake-up time while states wait to run: the Wake the yield asked for runs them
        // (asking again would walk the execution once more for nothing).
        self.out.wake_at = match self.rt.status {
            Status::Running if !self.rt.yielded => {
                let nested = self.rt.current.as_ref().and_then(Current::wake_at);
                [nested, self.rt.deadline].into_iter().flatten().min()
            }
            _ => None,
        };
        self.out
    }

    /// The state being executed (at `self.path`).
    fn cur(&self) -> Option<&Current> {
        let mut c = self.rt.current.as_ref()?;
        for &i in &self.path {
            c = c.container.as_ref()?.lanes.get(i)?.current.as_ref()?;
        }
        Some(c)
    }

    /// The state being executed, for a change: its lane is marked touched.
    fn cur_mut(&mut self) -> Option<&mut Current> {
        if !self.path.is_empty() && !self.out.touched.lanes.contains(&self.path) {
            self.out.touched.lanes.insert(self.path.clone());
        }
        let mut c = self.rt.current.as_mut()?;
        for &i in &self.path {
            c = c.container.as_mut()?.lanes.get_mut(i)?.current.as_mut()?;
        }
        Some(c)
    }

    /// The set of states the state at `self.path` belongs to.
    fn machine(&self) -> Option<&'a Machine> {
        let def: &'a Definition = self.def;
        let mut m = &def.root;
        let mut c = self.rt.current.as_ref()?;
        for &i in &self.path {
            m = match &m.state(&c.state)?.kind {
                StateKind::Parallel(p) => p.branches.get(i)?,
                StateKind::Map(map) => &map.processor,
                _ => return None,
            };
            c = c.container.as_ref()?.lanes.get(i)?.current.as_ref()?;
        }
        Some(m)
    }

    fn state_def(&self, name: &str) -> Option<&'a State> {
        self.machine()?.state(name)
    }

    /// When the execution times out if it (re)starts at `from`: its `TimeoutSeconds`, and
    /// never later than its maximum lifetime counted from the original start.
    fn deadline(&self, from: i64) -> Option<i64> {
        let lifetime = self
            .info
            .start_time
            .saturating_add(self.limits.max_execution_millis);
        let timeout = self
            .def
            .timeout_seconds
            .map(|s| from.saturating_add(self.scaled(s)));
        Some(timeout.map_or(lifetime, |t| t.min(lifetime)))
    }

    fn scaled(&self, seconds: u64) -> i64 {
        scaled(seconds, self.limits.wait_time_scale)
    }

    fn push(&mut self, previous_event_id: u64, details: EventDetails) -> u64 {
        let id = self.rt.last_event_id + 1;
        // The last slot is kept for the execution's end; anything else that would take it
        // is dropped, and the execution fails when the call returns.
        let ends = matches!(
            details,
            EventDetails::ExecutionSucceeded { .. }
                | EventDetails::ExecutionFailed(_)
                | EventDetails::ExecutionAborted(_)
                | EventDetails::ExecutionTimedOut(_)
        );
        if self.capped || (id >= self.limits.max_history_events && !ends) {
            self.capped = true;
            return id;
        }
        self.rt.last_event_id = id;
        self.rt.chain = None;
        self.out.events.push(HistoryEvent {
            id,
            previous_event_id,
            timestamp: self.now,
            details,
        });
        id
    }

    fn last(&self) -> u64 {
        self.rt.chain.unwrap_or(self.rt.last_event_id)
    }

    /// Runs the execution from the top-level state until it waits or ends.
    fn run(&mut self) {
        self.ran = true;
        self.path.clear();
        self.vars = std::mem::take(&mut self.rt.variables);
        let end = self.run_scope();
        self.rt.variables = std::mem::take(&mut self.vars);
        match end {
            ScopeEnd::Done(output) => {
                let text = output.to_string();
                let prev = self.last();
                let details = EventDetails::ExecutionSucceeded {
                    output: text.clone(),
                };
                self.push(prev, details);
                self.rt.status = Status::Succeeded;
                self.rt.output = Some(text);
            }
            ScopeEnd::Failed(ec) => self.fail(ec),
            ScopeEnd::TimedOut => {
                let prev = self.last();
                self.push(
                    prev,
                    EventDetails::ExecutionTimedOut(ErrorCause::new(
                        names::TIMEOUT,
                        "The execution has timed out.",
                    )),
                );
                self.rt.status = Status::TimedOut;
            }
            ScopeEnd::Blocked => {}
        }
    }

    /// Runs the scope at `self.path` (the execution, a branch or an iteration) state by
    /// state until it ends, waits, or the call's state budget runs out.
    fn run_scope(&mut self) -> ScopeEnd {
        loop {
            if self.rt.deadline.is_some_and(|d| d <= self.now) {
                return ScopeEnd::TimedOut;
            }
            if self.capped {
                return ScopeEnd::Blocked;
            }
            if self.budget == 0 {
                self.out.yielded = true;
                return ScopeEnd::Blocked;
            }
            self.budget -= 1;
            let Some((name, input, entered)) = self
                .cur()
                .map(|c| (c.state.clone(), c.input.clone(), c.entered_event_id))
            else {
                return ScopeEnd::Blocked;
            };
            let Some(state) = self.state_def(&name) else {
                let cause = format!("The state '{name}' does not exist");
                return ScopeEnd::Failed(ErrorCause::new(names::RUNTIME, cause));
            };
            let events = self.out.events.len();
            let entered_id = match entered {
                Some(id) => id,
                None => self.enter(state, &input),
            };
            let end = match self.execute(state, &input) {
                Ok(Outcome::Wait(until)) if until > self.now => {
                    if self.cur().and_then(|c| c.wait_until) != Some(until) {
                        if let Some(c) = self.cur_mut() {
                            c.wait_until = Some(until);
                        }
                    }
                    Some(ScopeEnd::Blocked)
                }
                Ok(Outcome::Wait(_)) => {
                    // The time has come: exit the Wait state with its output.
                    let exit = self.wait_output(state, &input);
                    self.finish_state(state, entered_id, exit, state.next.clone())
                }
                Ok(Outcome::Exit(output)) => {
                    self.finish_state(state, entered_id, Ok(output), state.next.clone())
                }
                Ok(Outcome::Branch(next, output)) => {
                    self.finish_state(state, entered_id, Ok(output), Some(next))
                }
                Ok(Outcome::Fail(ec)) => Some(ScopeEnd::Failed(ec)),
                Ok(Outcome::Blocked) => Some(ScopeEnd::Blocked),
                Ok(Outcome::TimedOut) => Some(ScopeEnd::TimedOut),
                Ok(Outcome::Again) => None,
                Err(e) => Some(ScopeEnd::Failed(self.state_error(state, entered_id, e))),
            };
            let idle = matches!(end, Some(ScopeEnd::Blocked)) && self.out.events.len() == events;
            if idle && !self.out.yielded {
                // Looking at a state that still waits is not progress. Were it counted, a
                // Map with more waiting iterations than the budget would spend every call on
                // the first ones and never reach the others.
                self.budget += 1;
            }
            if let Some(end) = end {
                return end;
            }
        }
    }

    fn enter(&mut self, state: &State, input: &Value) -> u64 {
        // AWS quirks: the first state entered after ExecutionStarted has previousEventId 0,
        // and receives the execution input verbatim.
        let first = self.path.is_empty() && self.rt.last_event_id == 1;
        let prev = if first { 0 } else { self.last() };
        let input = if first {
            self.info.input_text.clone()
        } else {
            input.to_string()
        };
        let id = self.push(
            prev,
            EventDetails::StateEntered {
                state_type: state.kind.event_prefix().into(),
                name: state.name.clone(),
                input,
            },
        );
        let now = self.now;
        if let Some(c) = self.cur_mut() {
            c.entered_event_id = Some(id);
            c.entered_after = prev;
            c.entered_time = now;
        }
        id
    }

    /// The context object (`$$`, `$states.context`) for `state`; `null` when nothing in the
    /// state reads it, so the execution input is not copied for every state.
    fn context(&self, state: &State) -> Value {
        if let Some(context) = &self.context_override {
            return context.clone();
        }
        let input = match state.context {
            ContextUse::None => return Value::Null,
            ContextUse::WithoutInput => Value::Null,
            ContextUse::Full => self.info.input.clone(),
        };
        let i = self.info;
        let mut execution = json!({
            "Id": i.execution_arn,
            "Input": input,
            "StartTime": timestamp::format_millis(i.start_time),
            "Name": i.name,
            "RoleArn": i.role_arn,
        });
        // An Express execution cannot be redriven, and its context has no RedriveCount (as
        // the made-up Express execution of AWS's TestState shows).
        if let (false, Some(obj)) = (i.is_express(), execution.as_object_mut()) {
            obj.insert("RedriveCount".into(), json!(i.redrive_count));
            if let Some(t) = i.redrive_time {
                obj.insert(
                    "RedriveTime".into(),
                    Value::String(timestamp::format_millis(t)),
                );
            }
        }
        let entered = self.cur().map(|c| c.entered_time).unwrap_or(self.now);
        let mut context = json!({
            "Execution": execution,
            "StateMachine": { "Id": i.state_machine_arn, "Name": i.state_machine_name },
            "State": { "Name": state.name, "EnteredTime": timestamp::format_millis(entered) },
        });
        if let StateKind::Task(t) = &state.kind {
            let task = self.cur().and_then(|c| c.task.as_ref());
            context["State"]["RetryCount"] = json!(task.map_or(0, |r| r.retry_count));
            let sync = matches!(
                t.resource,
                Resource::Service {
                    pattern: Pattern::Sync | Pattern::Sync2,
                    ..
                }
            );
            // A `.sync` task has a token too (AWS: `SendTaskSuccess` with it ends the task).
            if t.resource.is_callback() || sync {
                // The token of the attempt about to be scheduled: its event is the next one.
                let token = crate::task_token::task_token(
                    &self.limits.token_key,
                    &i.execution_arn,
                    self.rt.last_event_id + 1,
                );
                context["Task"] = json!({ "Token": token });
            }
        }
        context
    }

    fn execute(&mut self, state: &State, raw: &Value) -> Result<Outcome, ErrorCause> {
        let context = self.context(state);
        let jsonata = state.query_language == QueryLanguage::Jsonata;
        match &state.kind {
            StateKind::Pass { .. } | StateKind::Succeed if jsonata => {
                let assign = state.assign.as_ref().and_then(Payload::jsonata);
                let states = States::new(raw, &context);
                let output =
                    self.jsonata_exit(state, assign, state.output.as_ref(), states, raw)?;
                Ok(Outcome::Exit(output))
            }
            StateKind::Pass {
                result,
                parameters,
                result_path,
            } => {
                let effective = self.apply_path(&state.input_path, raw, &context)?;
                // `Result` is the output of the Pass state's virtual task: it wins over the
                // task's input (`Parameters`), as on AWS.
                let produced = match (parameters, result) {
                    (_, Some(r)) => r.clone(),
                    (Some(t), None) => {
                        let mut scope = Scope::new(&effective, &context, self.entropy)
                            .with_variables(&self.vars);
                        t.render(&mut scope)?
                    }
                    (None, None) => effective,
                };
                let assign = state.assign.as_ref().and_then(Payload::path);
                self.assign(assign, &produced, &context)?;
                let combined = io::result_path(result_path, raw.clone(), produced)?;
                Ok(Outcome::Exit(self.apply_path(
                    &state.output_path,
                    &combined,
                    &context,
                )?))
            }
            StateKind::Choice { choices, default } if jsonata => {
                let states = States::new(raw, &context);
                let mut chosen = None;
                for (i, c) in choices.iter().enumerate() {
                    let Condition::Jsonata(condition) = &c.condition else {
                        continue;
                    };
                    match self.render(state, condition, states)? {
                        Value::Bool(true) => {
                            chosen = Some(c);
                            break;
                        }
                        Value::Bool(false) => {}
                        other => {
                            let field = format!("Choices[{i}]/Condition");
                            let e = condition.unexpected_type(&field, "boolean", &other);
                            return Err(self.evaluation_failed(state, e));
                        }
                    }
                }
                let Some(next) = chosen.map(|c| c.next.clone()).or_else(|| default.clone()) else {
                    return Err(ErrorCause::new(names::NO_CHOICE_MATCHED, "No Matches!"));
                };
                let assign = chosen
                    .and_then(|c| c.assign.as_ref())
                    .or(state.assign.as_ref())
                    .and_then(Payload::jsonata);
                let output = chosen
                    .and_then(|c| c.output.as_ref())
                    .or(state.output.as_ref());
                let output = self.jsonata_exit(state, assign, output, states, raw)?;
                Ok(Outcome::Branch(next, output))
            }
            StateKind::Choice { choices, default } => {
                let effective = self.apply_path(&state.input_path, raw, &context)?;
                let chosen = choice::select(choices, &effective, &context, &self.vars)?;
                let Some(next) = chosen.map(|c| c.next.clone()).or_else(|| default.clone()) else {
                    return Err(ErrorCause::new(names::NO_CHOICE_MATCHED, "No Matches!"));
                };
                let assign = chosen
                    .and_then(|c| c.assign.as_ref())
                    .or(state.assign.as_ref())
                    .and_then(Payload::path);
                self.assign(assign, &effective, &context)?;
                let output = self.apply_path(&state.output_path, &effective, &context)?;
                Ok(Outcome::Branch(next, output))
            }
            StateKind::Wait(wait) => {
                if let Some(until) = self.cur().and_then(|c| c.wait_until) {
                    return Ok(Outcome::Wait(until));
                }
                let effective = self.apply_path(&state.input_path, raw, &context)?;
                let until = self.wait_until(state, wait, &effective, &context)?;
                Ok(Outcome::Wait(until))
            }
            StateKind::Succeed => {
                let effective = self.apply_path(&state.input_path, raw, &context)?;
                Ok(Outcome::Exit(self.apply_path(
                    &state.output_path,
                    &effective,
                    &context,
                )?))
            }
            StateKind::Fail { error, cause } => Ok(Outcome::Fail(ErrorCause {
                error: self.fail_field(state, error, "ErrorPath", raw, &context)?,
                cause: self.fail_field(state, cause, "CausePath", raw, &context)?,
                location: None,
            })),
            StateKind::Task(task) => self.task(state, task, raw, &context),
            StateKind::Parallel(_) | StateKind::Map(_) => self.container(state, raw, &context),
            StateKind::Unsupported(ty) => Err(ErrorCause::runtime(format!(
                "The state type '{ty}' is not supported by this version of stepwise."
            ))),
        }
    }

    /// Renders a JSONata field of `state`; a failure is recorded (`EvaluationFailed`).
    fn render(
        &mut self,
        state: &State,
        template: &jsonata::Template,
        states: States,
    ) -> Result<Value, ErrorCause> {
        let mut env = Env {
            states,
            variables: &self.vars,
            now: self.now,
            entropy: &mut *self.entropy,
        };
        let rendered = template.render(&mut env);
        rendered.map_err(|e| self.evaluation_failed(state, e))
    }

    /// A JSONata field that must be a whole number in `min..=max` (`Seconds`,
    /// `TimeoutSeconds`, `MaxConcurrency`, ...).
    fn jsonata_integer(
        &mut self,
        state: &State,
        template: &jsonata::Template,
        field: &str,
        states: States,
        (min, max): (i64, i64),
    ) -> Result<i64, ErrorCause> {
        let value = self.render(state, template, states)?;
        let Some(n) = value.as_f64() else {
            let e = template.unexpected_type(field, "number", &value);
            return Err(self.evaluation_failed(state, e));
        };
        if n.fract() != 0.0 || n < min as f64 || n > max as f64 {
            let e = ErrorCause::query(
                format!("The {field} field must be an integer between {min} and {max}, but was: {value}"),
                Some(field.to_owned()),
            );
            return Err(self.evaluation_failed(state, e));
        }
        Ok(n as i64)
    }

    /// Records `EvaluationFailed` for a `States.QueryEvaluationError` raised in `state`.
    fn evaluation_failed(&mut self, state: &State, e: ErrorCause) -> ErrorCause {
        if e.is(names::QUERY_EVALUATION_ERROR) {
            let (entered, after) = self
                .cur()
                .map(|c| (c.entered_event_id.unwrap_or_default(), c.entered_after))
                .unwrap_or_default();
            // AWS quirk: the event follows the one before the state was entered, except in a
            // Wait state, where it follows the state's entry.
            let prev = match state.kind {
                StateKind::Wait(_) => entered,
                _ => after,
            };
            let cause = self.state_error(state, entered, e.clone()).cause;
            self.push(
                prev,
                EventDetails::EvaluationFailed {
                    state: state.name.clone(),
                    error: e.error_name().to_owned(),
                    cause: cause.unwrap_or_default(),
                    location: e.location.clone(),
                },
            );
        }
        e
    }

    fn fail_field(
        &mut self,
        state: &State,
        source: &Source,
        field: &str,
        raw: &Value,
        context: &Value,
    ) -> Result<Option<String>, ErrorCause> {
        let value = match source {
            Source::None => return Ok(None),
            Source::Literal(s) => return Ok(Some(s.clone())),
            Source::Jsonata(t) => self.render(state, t, States::new(raw, context))?,
            Source::Path(path) => select(path, raw, context, &self.vars).ok_or_else(|| {
                ErrorCause::runtime(format!(
                    "The JSONPath '{}' specified for the field '{}' could not be found in the input '{}'",
                    path.text(),
                    field,
                    raw
                ))
            })?,
            Source::Intrinsic(f) => {
                let mut scope = Scope::new(raw, context, self.entropy).with_variables(&self.vars);
                f.eval(&mut scope)?
            }
        };
        Ok(Some(match value {
            Value::String(s) => s,
            other => other.to_string(),
        }))
    }

    /// Applies `InputPath`, `OutputPath` or `ItemsPath` with the scope's variables readable.
    fn apply_path(
        &self,
        field: &io::PathField,
        value: &Value,
        context: &Value,
    ) -> Result<Value, ErrorCause> {
        io::select(field, value, context, Some(&self.vars))
    }

    /// A runtime error in a state, with AWS's prefix naming the state and its entry event.
    fn state_error(&self, state: &State, entered_id: u64, e: ErrorCause) -> ErrorCause {
        let cause = format!(
            "An error occurred while executing the state '{}' (entered at the event id #{}). {}",
            state.name,
            entered_id,
            e.cause_text()
        );
        ErrorCause {
            error: e.error,
            cause: Some(cause),
            location: None,
        }
    }

    /// The history is full: the execution fails with AWS's `States.Runtime`, its failure
    /// being the last event the history can hold. Tasks this call scheduled are not sent.
    fn fail_at_cap(&mut self) {
        self.capped = false;
        self.rt.chain = None;
        self.rt.output = None;
        self.out.dispatches.clear();
        self.out.yielded = false;
        let cause = format!(
            "The execution reached the maximum number of history events ({}).",
            self.limits.max_history_events
        );
        self.fail(ErrorCause::new(names::RUNTIME, cause));
    }

    fn fail(&mut self, ec: ErrorCause) {
        self.rt.error = ec.error.clone();
        self.rt.cause = ec.cause.clone();
        let prev = self.last();
        self.push(prev, EventDetails::ExecutionFailed(ec));
        self.rt.status = Status::Failed;
    }
}

/// Seconds as scaled milliseconds. Saturates (a float-to-int cast does), and every sum of a
/// time and a duration saturates too: a Wait of 2^62 seconds waits for good, it does not
/// wrap into the past.
fn scaled(seconds: u64, scale: f64) -> i64 {
    (seconds as f64 * 1000.0 * scale) as i64
}

fn select(
    path: &crate::jsonpath::JsonPath,
    input: &Value,
    context: &Value,
    vars: &Map<String, Value>,
) -> Option<Value> {
    match path.root() {
        crate::jsonpath::Root::Context => path.select(context),
        crate::jsonpath::Root::Variable(name) => path.select(vars.get(name)?),
        crate::jsonpath::Root::Input => path.select(input),
    }
}
