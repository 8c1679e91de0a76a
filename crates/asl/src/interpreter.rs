//! The pure interpreter: runtime state + one signal → new runtime state + history events.
//!
//! Architecture invariant: [`advance`] does no IO and reads no clock; `now` and entropy are
//! arguments. The engine persists the returned events together with the new [`Runtime`] in
//! one atomic write, and calls again when the returned `wake_at` time has come.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::choice;
use crate::definition::{Definition, Source, State, StateKind, TaskState, WaitFor};
use crate::error::{names, StatesError};
use crate::history::{ErrorCause, EventDetails, HistoryEvent, TaskFamily, TaskRef};
use crate::io;
use crate::task::{error_matches, Resource, Seconds};
use crate::template::Scope;
use crate::{timestamp, Entropy};

/// AWS's payload limit for inputs, outputs and results: 256 KiB of UTF-8.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// What identifies an execution to the states it runs (the `$$.Execution` and
/// `$$.StateMachine` parts of the context object).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecutionInfo {
    pub execution_arn: String,
    pub name: String,
    pub state_machine_arn: String,
    pub state_machine_name: String,
    pub role_arn: String,
    pub start_time: i64,
    pub input: Value,
    pub redrive_count: u32,
    pub redrive_time: Option<i64>,
    /// The input exactly as the client sent it: AWS records it verbatim in
    /// `ExecutionStarted` and in the first state's `…StateEntered`.
    #[serde(default)]
    pub input_text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl Status {
    /// AWS's `ExecutionStatus` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "RUNNING",
            Status::Succeeded => "SUCCEEDED",
            Status::Failed => "FAILED",
            Status::TimedOut => "TIMED_OUT",
            Status::Aborted => "ABORTED",
        }
    }
}

/// An execution's checkpointed runtime state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Runtime {
    pub status: Status,
    pub last_event_id: u64,
    /// The state being executed (kept after a failure: redrive resumes from it).
    pub current: Option<Current>,
    /// When the execution times out (epoch ms), from the definition's `TimeoutSeconds`.
    pub deadline: Option<i64>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// The state an execution is in, with the raw input it received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Current {
    pub state: String,
    pub input: Value,
    /// The id of its `…StateEntered` event; `None` until it has been entered.
    pub entered_event_id: Option<u64>,
    pub entered_time: i64,
    /// Set while a Wait state waits.
    pub wait_until: Option<i64>,
    /// Set while a Task state runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskRun>,
}

/// A Task state in progress: the current attempt, its deadlines and its retry budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRun {
    /// The id of the current attempt's `…Scheduled` event; tokens carry it.
    pub id: u64,
    pub phase: TaskPhase,
    /// Retries used per retrier (a fresh budget on every entry into the state).
    pub retries: Vec<u32>,
    /// `$$.State.RetryCount`.
    pub retry_count: u32,
    pub timeout_at: Option<i64>,
    pub heartbeat_seconds: Option<u64>,
    pub heartbeat_at: Option<i64>,
    /// What the engine must perform for the current attempt (kept for re-dispatch after a
    /// restart: tasks are at-least-once).
    pub dispatch: Option<Dispatch>,
    /// An outcome that arrived and is not processed yet.
    pub outcome: Option<TaskOutcome>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskPhase {
    Scheduled,
    Started,
    /// Waiting to retry.
    Retrying {
        until: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskOutcome {
    Succeeded(Value),
    Failed(ErrorCause),
    TimedOut(ErrorCause),
}

/// A task the engine must perform once the transition is committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dispatch {
    pub task_id: u64,
    /// The Task state's name.
    pub state: String,
    /// 0 for the first attempt, then the retry number.
    pub attempt: u32,
    pub token: String,
    pub resource: Resource,
    /// The effective parameters (after InputPath and Parameters).
    pub input: Value,
    pub timeout_seconds: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
}

/// A task token: the execution and the attempt's scheduled-event id, URL-safe encoded.
pub fn task_token(execution_arn: &str, task_id: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{task_id}#{execution_arn}"))
}

/// The inverse of [`task_token`]: `(execution ARN, task id)`.
pub fn parse_task_token(token: &str) -> Option<(String, u64)> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, arn) = text.split_once('#')?;
    Some((arn.to_owned(), id.parse().ok()?))
}

/// What drives an execution forward.
#[derive(Debug, Clone)]
pub enum Signal {
    /// The execution was started (the runtime is fresh from [`Runtime::new`]).
    Start,
    /// A time the interpreter asked for (`wake_at`) has come, or the engine resumes after a
    /// restart or a yield.
    Wake,
    /// `RedriveExecution`: re-open a failed, aborted or timed-out execution at its
    /// unsuccessful state. `redrive_count` includes this redrive.
    Redrive { redrive_count: u32 },
    /// `StopExecution`.
    Stop {
        error: Option<String>,
        cause: Option<String>,
    },
    /// A worker picked up an activity task (`GetActivityTask`).
    TaskStarted {
        task_id: u64,
        worker_name: Option<String>,
    },
    /// A `.sync` job was submitted; its output is recorded and the task keeps waiting.
    TaskSubmitted { task_id: u64, output: Value },
    /// `SendTaskHeartbeat`.
    TaskHeartbeat { task_id: u64 },
    /// The task finished (a result, `SendTaskSuccess`/`Failure`, a child execution ended).
    TaskFinished { task_id: u64, outcome: TaskOutcome },
}

/// The result of one [`advance`] call.
#[derive(Debug, Default)]
pub struct Advance {
    pub events: Vec<HistoryEvent>,
    /// When to call again with [`Signal::Wake`] (epoch ms), if the execution is still running.
    pub wake_at: Option<i64>,
    /// The state budget ran out: call again with [`Signal::Wake`] right away.
    pub yielded: bool,
    /// Tasks to perform after the transition is committed.
    pub dispatches: Vec<Dispatch>,
    /// A task signal named a task that is no longer current (its token is stale).
    pub stale: bool,
}

/// Limits the interpreter enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How many states one call may run before yielding to other executions.
    pub states_per_call: u32,
    /// Multiplies Wait durations (tests use < 1).
    pub wait_time_scale: f64,
    /// The longest an execution may stay open, from its start (Standard: one year).
    pub max_execution_millis: i64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            states_per_call: 256,
            wait_time_scale: 1.0,
            max_execution_millis: 365 * 24 * 3600 * 1000,
        }
    }
}

impl Runtime {
    pub fn new() -> Runtime {
        Runtime {
            status: Status::Running,
            last_event_id: 0,
            current: None,
            deadline: None,
            output: None,
            error: None,
            cause: None,
        }
    }
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime::new()
    }
}

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
    let mut run = Run {
        def,
        info,
        rt,
        now,
        entropy,
        limits,
        out: Advance::default(),
    };
    run.handle(signal);
    run.out.wake_at = match run.rt.status {
        Status::Running if !run.out.yielded => {
            let current = run.rt.current.as_ref();
            let task = current.and_then(|c| c.task.as_ref());
            [
                current.and_then(|c| c.wait_until),
                run.rt.deadline,
                task.and_then(|t| t.timeout_at),
                task.and_then(|t| t.heartbeat_at),
                task.and_then(|t| match t.phase {
                    TaskPhase::Retrying { until } => Some(until),
                    _ => None,
                }),
            ]
            .into_iter()
            .flatten()
            .min()
        }
        _ => None,
    };
    run.out
}

struct Run<'a> {
    def: &'a Definition,
    info: &'a ExecutionInfo,
    rt: &'a mut Runtime,
    now: i64,
    entropy: &'a mut Entropy,
    limits: Limits,
    out: Advance,
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
}

impl Run<'_> {
    fn handle(&mut self, signal: Signal) {
        match signal {
            Signal::Start => {
                self.push(
                    0,
                    EventDetails::ExecutionStarted {
                        input: self.info.input_text.clone(),
                        role_arn: self.info.role_arn.clone(),
                        state_machine_alias_arn: None,
                        state_machine_version_arn: None,
                    },
                );
                self.rt.deadline = self.deadline(self.info.start_time);
                self.rt.current = Some(Current {
                    state: self.def.start_at.clone(),
                    input: self.info.input.clone(),
                    entered_event_id: None,
                    entered_time: self.now,
                    wait_until: None,
                    task: None,
                });
                self.run();
            }
            Signal::Redrive { redrive_count } => {
                if !matches!(
                    self.rt.status,
                    Status::Failed | Status::Aborted | Status::TimedOut
                ) {
                    self.out.stale = true;
                    return;
                }
                let prev = self.last();
                self.push(prev, EventDetails::ExecutionRedriven { redrive_count });
                self.rt.status = Status::Running;
                (self.rt.output, self.rt.error, self.rt.cause) = (None, None, None);
                // The execution timeout restarts at the redrive.
                self.rt.deadline = self.deadline(self.now);
                // The unsuccessful state is entered again with the input it received, with a
                // fresh retry budget and fresh task timers.
                let now = self.now;
                if let Some(c) = self.rt.current.as_mut() {
                    c.entered_event_id = None;
                    c.entered_time = now;
                    c.wait_until = None;
                    c.task = None;
                }
                self.run();
            }
            Signal::Wake => {
                if self.rt.status == Status::Running {
                    self.run();
                }
            }
            Signal::Stop { error, cause } => {
                if self.rt.status == Status::Running {
                    // AWS records ExecutionAborted with previousEventId 0.
                    (self.rt.error, self.rt.cause) = (error.clone(), cause.clone());
                    self.push(
                        0,
                        EventDetails::ExecutionAborted(ErrorCause { error, cause }),
                    );
                    self.rt.status = Status::Aborted;
                }
            }
            Signal::TaskStarted {
                task_id,
                worker_name,
            } => {
                let now = self.now;
                let scale = self.limits.wait_time_scale;
                let Some(run) = self.task_run(task_id) else {
                    return;
                };
                if run.phase != TaskPhase::Scheduled {
                    return;
                }
                run.phase = TaskPhase::Started;
                run.heartbeat_at = run.heartbeat_seconds.map(|h| now + scaled(h, scale));
                if let Some(task) = self.current_task_ref() {
                    self.push(task_id, EventDetails::TaskStarted { task, worker_name });
                }
            }
            Signal::TaskSubmitted { task_id, output } => {
                if self.task_run(task_id).is_none() {
                    return;
                }
                if let Some(task) = self.current_task_ref() {
                    let prev = self.last();
                    let output = output.to_string();
                    self.push(prev, EventDetails::TaskSubmitted { task, output });
                }
            }
            Signal::TaskHeartbeat { task_id } => {
                let now = self.now;
                let scale = self.limits.wait_time_scale;
                let Some(run) = self.task_run(task_id) else {
                    return;
                };
                run.heartbeat_at = run.heartbeat_seconds.map(|h| now + scaled(h, scale));
            }
            Signal::TaskFinished { task_id, outcome } => {
                let Some(run) = self.task_run(task_id) else {
                    return;
                };
                if matches!(run.phase, TaskPhase::Retrying { .. }) || run.outcome.is_some() {
                    self.out.stale = true;
                    return;
                }
                run.outcome = Some(outcome);
                self.run();
            }
        }
    }

    /// The current task attempt, if `task_id` names it; otherwise marks the signal stale.
    fn task_run(&mut self, task_id: u64) -> Option<&mut TaskRun> {
        let running = self.rt.status == Status::Running;
        let run = self
            .rt
            .current
            .as_mut()
            .and_then(|c| c.task.as_mut())
            .filter(|t| running && t.id == task_id);
        if run.is_none() {
            self.out.stale = true;
        }
        run
    }

    fn current_task_ref(&self) -> Option<TaskRef> {
        let name = &self.rt.current.as_ref()?.state;
        match &self.def.state(name)?.kind {
            StateKind::Task(t) => Some(task_ref(&t.resource)),
            _ => None,
        }
    }

    /// When the execution times out if it (re)starts at `from`: its `TimeoutSeconds`, and
    /// never later than its maximum lifetime counted from the original start.
    fn deadline(&self, from: i64) -> Option<i64> {
        let lifetime = self
            .info
            .start_time
            .saturating_add(self.limits.max_execution_millis);
        let timeout = self.def.timeout_seconds.map(|s| from + self.scaled(s));
        Some(timeout.map_or(lifetime, |t| t.min(lifetime)))
    }

    fn scaled(&self, seconds: u64) -> i64 {
        scaled(seconds, self.limits.wait_time_scale)
    }

    fn push(&mut self, previous_event_id: u64, details: EventDetails) -> u64 {
        let id = self.rt.last_event_id + 1;
        self.rt.last_event_id = id;
        self.out.events.push(HistoryEvent {
            id,
            previous_event_id,
            timestamp: self.now,
            details,
        });
        id
    }

    fn last(&self) -> u64 {
        self.rt.last_event_id
    }

    fn run(&mut self) {
        let mut budget = self.limits.states_per_call;
        while self.rt.status == Status::Running {
            if self.rt.deadline.is_some_and(|d| d <= self.now) {
                self.push(
                    self.last(),
                    EventDetails::ExecutionTimedOut(ErrorCause {
                        error: Some(names::TIMEOUT.into()),
                        cause: Some("The execution has timed out.".into()),
                    }),
                );
                self.rt.status = Status::TimedOut;
                return;
            }
            if budget == 0 {
                self.out.yielded = true;
                return;
            }
            budget -= 1;
            let Some(current) = self.rt.current.clone() else {
                return;
            };
            let Some(state) = self.def.state(&current.state) else {
                let cause = format!("The state '{}' does not exist", current.state);
                self.fail(ErrorCause {
                    error: Some(names::RUNTIME.into()),
                    cause: Some(cause),
                });
                return;
            };
            let entered_id = match current.entered_event_id {
                Some(id) => id,
                None => self.enter(state, &current.input),
            };
            let outcome = self.execute(state, &current.input);
            match outcome {
                Ok(Outcome::Wait(until)) => {
                    if until > self.now {
                        if let Some(c) = self.rt.current.as_mut() {
                            c.wait_until = Some(until);
                        }
                        return;
                    }
                    // The time has come: exit the Wait state with its output.
                    let exit = self.wait_output(state, &current.input);
                    self.finish_state(state, entered_id, exit, state.next.clone());
                }
                Ok(Outcome::Exit(output)) => {
                    self.finish_state(state, entered_id, Ok(output), state.next.clone())
                }
                Ok(Outcome::Branch(next, output)) => {
                    self.finish_state(state, entered_id, Ok(output), Some(next))
                }
                Ok(Outcome::Fail(ec)) => self.fail(ec),
                Ok(Outcome::Blocked) => return,
                Ok(Outcome::Again) => {}
                Err(e) => self.state_error(state, entered_id, e),
            }
        }
    }

    fn enter(&mut self, state: &State, input: &Value) -> u64 {
        // AWS quirks: the first state entered after ExecutionStarted has previousEventId 0,
        // and receives the execution input verbatim.
        let first = self.rt.last_event_id == 1;
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
        if let Some(c) = self.rt.current.as_mut() {
            c.entered_event_id = Some(id);
            c.entered_time = self.now;
        }
        id
    }

    fn context(&self, state: &State) -> Value {
        let i = self.info;
        let mut execution = json!({
            "Id": i.execution_arn,
            "Input": i.input,
            "StartTime": timestamp::format_millis(i.start_time),
            "Name": i.name,
            "RoleArn": i.role_arn,
            "RedriveCount": i.redrive_count,
        });
        if let (Some(t), Some(obj)) = (i.redrive_time, execution.as_object_mut()) {
            obj.insert(
                "RedriveTime".into(),
                Value::String(timestamp::format_millis(t)),
            );
        }
        let entered = self
            .rt
            .current
            .as_ref()
            .map(|c| c.entered_time)
            .unwrap_or(self.now);
        let mut context = json!({
            "Execution": execution,
            "StateMachine": { "Id": i.state_machine_arn, "Name": i.state_machine_name },
            "State": { "Name": state.name, "EnteredTime": timestamp::format_millis(entered) },
        });
        if let StateKind::Task(t) = &state.kind {
            let task = self.rt.current.as_ref().and_then(|c| c.task.as_ref());
            context["State"]["RetryCount"] = json!(task.map_or(0, |r| r.retry_count));
            if t.resource.is_callback() {
                // The token of the attempt about to be scheduled: its event is the next one.
                let token = task_token(&i.execution_arn, self.rt.last_event_id + 1);
                context["Task"] = json!({ "Token": token });
            }
        }
        context
    }

    fn execute(&mut self, state: &State, raw: &Value) -> Result<Outcome, StatesError> {
        let context = self.context(state);
        match &state.kind {
            StateKind::Pass {
                result,
                parameters,
                result_path,
            } => {
                let effective = io::input_path(&state.input_path, raw, &context)?;
                let produced = match (parameters, result) {
                    (Some(t), _) => {
                        let mut scope = Scope::new(&effective, &context, self.entropy);
                        t.render(&mut scope)?
                    }
                    (None, Some(r)) => r.clone(),
                    (None, None) => effective,
                };
                let combined = io::result_path(result_path, raw.clone(), produced)?;
                Ok(Outcome::Exit(io::output_path(
                    &state.output_path,
                    &combined,
                    &context,
                )?))
            }
            StateKind::Choice { choices, default } => {
                let effective = io::input_path(&state.input_path, raw, &context)?;
                let chosen = choice::select(choices, &effective, &context, &Map::new())?;
                let Some(next) = chosen.map(|c| c.next.clone()).or_else(|| default.clone()) else {
                    return Err(StatesError::new("States.NoChoiceMatched", "No Matches!"));
                };
                let output = io::output_path(&state.output_path, &effective, &context)?;
                Ok(Outcome::Branch(next, output))
            }
            StateKind::Wait(wait) => {
                if let Some(until) = self.rt.current.as_ref().and_then(|c| c.wait_until) {
                    return Ok(Outcome::Wait(until));
                }
                let effective = io::input_path(&state.input_path, raw, &context)?;
                let until = self.wait_until(wait, &effective, &context)?;
                Ok(Outcome::Wait(until))
            }
            StateKind::Succeed => {
                let effective = io::input_path(&state.input_path, raw, &context)?;
                Ok(Outcome::Exit(io::output_path(
                    &state.output_path,
                    &effective,
                    &context,
                )?))
            }
            StateKind::Fail { error, cause } => Ok(Outcome::Fail(ErrorCause {
                error: self.fail_field(error, "ErrorPath", raw, &context)?,
                cause: self.fail_field(cause, "CausePath", raw, &context)?,
            })),
            StateKind::Task(task) => self.task(state, task, raw, &context),
            StateKind::Unsupported(ty) => Err(StatesError::runtime(format!(
                "The state type '{ty}' is not supported by this version of stepwise."
            ))),
        }
    }

    /// Drives a Task state: schedules an attempt, waits, or processes what came back.
    fn task(
        &mut self,
        state: &State,
        spec: &TaskState,
        raw: &Value,
        context: &Value,
    ) -> Result<Outcome, StatesError> {
        let Some(mut run) = self.rt.current.as_ref().and_then(|c| c.task.clone()) else {
            let run = TaskRun {
                id: 0,
                phase: TaskPhase::Scheduled,
                retries: vec![0; spec.retry.len()],
                retry_count: 0,
                timeout_at: None,
                heartbeat_seconds: None,
                heartbeat_at: None,
                dispatch: None,
                outcome: None,
            };
            return self.schedule(state, spec, run, raw, context);
        };
        if let Some(outcome) = run.outcome.take() {
            let task = task_ref(&spec.resource);
            let prev = self.last();
            let ec = match outcome {
                TaskOutcome::Succeeded(result) => {
                    let output = result.to_string();
                    self.push(prev, EventDetails::TaskSucceeded { task, output });
                    self.set_task(None);
                    let selected = match &spec.result_selector {
                        Some(t) => t.render(&mut Scope::new(&result, context, self.entropy))?,
                        None => result,
                    };
                    let combined = io::result_path(&spec.result_path, raw.clone(), selected)?;
                    let output = io::output_path(&state.output_path, &combined, context)?;
                    return Ok(Outcome::Exit(output));
                }
                TaskOutcome::Failed(ec) => {
                    self.push(
                        prev,
                        EventDetails::TaskFailed {
                            task,
                            error: ec.clone(),
                        },
                    );
                    ec
                }
                TaskOutcome::TimedOut(ec) => {
                    self.push(
                        prev,
                        EventDetails::TaskTimedOut {
                            task,
                            error: ec.clone(),
                        },
                    );
                    ec
                }
            };
            return self.task_error(spec, run, raw, ec);
        }
        match run.phase {
            TaskPhase::Retrying { until } if until <= self.now => {
                self.schedule(state, spec, run, raw, context)
            }
            TaskPhase::Retrying { .. } => Ok(Outcome::Blocked),
            _ => {
                let error = if run.timeout_at.is_some_and(|t| t <= self.now) {
                    names::TIMEOUT
                } else if run.heartbeat_at.is_some_and(|t| t <= self.now) {
                    names::HEARTBEAT_TIMEOUT
                } else {
                    return Ok(Outcome::Blocked);
                };
                let ec = ErrorCause {
                    error: Some(error.into()),
                    cause: None,
                };
                run.outcome = Some(TaskOutcome::TimedOut(ec));
                self.set_task(Some(run));
                Ok(Outcome::Again)
            }
        }
    }

    /// Schedules an attempt: the `…Scheduled` (and, but for activities, `…Started`) events
    /// and a dispatch for the engine to perform.
    fn schedule(
        &mut self,
        state: &State,
        spec: &TaskState,
        mut run: TaskRun,
        raw: &Value,
        context: &Value,
    ) -> Result<Outcome, StatesError> {
        let effective = io::input_path(&state.input_path, raw, context)?;
        let input = match &spec.parameters {
            Some(t) => t.render(&mut Scope::new(&effective, context, self.entropy))?,
            None => effective,
        };
        let timeout = self.seconds(&spec.timeout, "TimeoutSecondsPath", raw, context)?;
        let heartbeat = self.seconds(&spec.heartbeat, "HeartbeatSecondsPath", raw, context)?;
        let task = task_ref(&spec.resource);
        let region = self
            .info
            .execution_arn
            .split(':')
            .nth(3)
            .unwrap_or_default()
            .to_owned();
        let prev = self.last();
        let id = self.push(
            prev,
            EventDetails::TaskScheduled {
                task: task.clone(),
                region,
                input: input.to_string(),
                timeout,
                heartbeat,
                credentials: spec.credentials.as_ref().map(Value::to_string),
            },
        );
        run.id = id;
        run.timeout_at = timeout.map(|t| self.now + self.scaled(t));
        run.heartbeat_seconds = heartbeat;
        run.heartbeat_at = None;
        run.phase = TaskPhase::Scheduled;
        if !matches!(spec.resource, Resource::Activity { .. }) {
            self.push(
                id,
                EventDetails::TaskStarted {
                    task,
                    worker_name: None,
                },
            );
            run.phase = TaskPhase::Started;
            run.heartbeat_at = heartbeat.map(|h| self.now + self.scaled(h));
        }
        let dispatch = Dispatch {
            task_id: id,
            state: state.name.clone(),
            attempt: run.retry_count,
            token: task_token(&self.info.execution_arn, id),
            resource: spec.resource.clone(),
            input,
            timeout_seconds: timeout,
            heartbeat_seconds: heartbeat,
        };
        self.out.dispatches.push(dispatch.clone());
        run.dispatch = Some(dispatch);
        self.set_task(Some(run));
        Ok(Outcome::Blocked)
    }

    /// Retries, catches or fails after a task error.
    fn task_error(
        &mut self,
        spec: &TaskState,
        mut run: TaskRun,
        raw: &Value,
        ec: ErrorCause,
    ) -> Result<Outcome, StatesError> {
        let error = ec.error.clone().unwrap_or_default();
        let retrier = spec
            .retry
            .iter()
            .position(|r| error_matches(&r.error_equals, &error));
        if let Some((i, r)) = retrier.map(|i| (i, &spec.retry[i])) {
            let used = run.retries.get(i).copied().unwrap_or(0);
            if used < r.max_attempts {
                let mut delay = r.delay_seconds(used);
                if r.full_jitter {
                    delay *= self.entropy.next_f64();
                }
                let delay_ms = (delay * 1000.0 * self.limits.wait_time_scale) as i64;
                if let Some(slot) = run.retries.get_mut(i) {
                    *slot += 1;
                }
                run.retry_count += 1;
                run.phase = TaskPhase::Retrying {
                    until: self.now + delay_ms,
                };
                run.dispatch = None;
                self.set_task(Some(run));
                return Ok(if delay_ms <= 0 {
                    Outcome::Again
                } else {
                    Outcome::Blocked
                });
            }
        }
        self.set_task(None);
        match spec
            .catch
            .iter()
            .find(|c| error_matches(&c.error_equals, &error))
        {
            Some(c) => {
                let error_output = json!({ "Error": error, "Cause": ec.cause.unwrap_or_default() });
                let output = io::result_path(&c.result_path, raw.clone(), error_output)?;
                Ok(Outcome::Branch(c.next.clone(), output))
            }
            None => Ok(Outcome::Fail(ec)),
        }
    }

    fn set_task(&mut self, run: Option<TaskRun>) {
        if let Some(c) = self.rt.current.as_mut() {
            c.task = run;
        }
    }

    /// Resolves `TimeoutSeconds(Path)` or `HeartbeatSeconds(Path)`.
    fn seconds(
        &self,
        spec: &Option<Seconds>,
        field: &str,
        raw: &Value,
        context: &Value,
    ) -> Result<Option<u64>, StatesError> {
        match spec {
            None => Ok(None),
            Some(Seconds::Fixed(n)) => Ok(Some(*n)),
            Some(Seconds::Path(p)) => match select(p, raw, context) {
                Some(v) if v.as_u64().is_some_and(|n| n > 0) => Ok(v.as_u64()),
                Some(v) => Err(StatesError::runtime(format!(
                    "The {field} field refers to value \"{v}\" which is not a valid positive integer."
                ))),
                None => Err(StatesError::runtime(format!(
                    "The JSONPath '{}' specified for the field '{field}' could not be found in the input '{raw}'",
                    p.text()
                ))),
            },
        }
    }

    fn wait_output(&mut self, state: &State, raw: &Value) -> Result<Value, StatesError> {
        let context = self.context(state);
        let effective = io::input_path(&state.input_path, raw, &context)?;
        io::output_path(&state.output_path, &effective, &context)
    }

    fn wait_until(&self, wait: &WaitFor, input: &Value, ctx: &Value) -> Result<i64, StatesError> {
        let entered = self
            .rt
            .current
            .as_ref()
            .map(|c| c.entered_time)
            .unwrap_or(self.now);
        let scale = self.limits.wait_time_scale;
        let from_timestamp = |ms: i64| {
            // Scaled relative to the state's entry, so `--wait-time-scale` shortens it too.
            entered + ((ms - entered).max(0) as f64 * scale) as i64
        };
        match wait {
            WaitFor::Seconds(s) => Ok(entered + self.scaled(*s)),
            WaitFor::Timestamp(ms) => Ok(from_timestamp(*ms)),
            WaitFor::SecondsPath(path) => {
                let value = select(path, input, ctx).ok_or_else(|| {
                    StatesError::runtime(format!(
                        "The SecondsPath parameter does not reference an input value: {}",
                        path.text()
                    ))
                })?;
                let seconds = value.as_i64().filter(|_| !value.is_f64()).ok_or_else(|| {
                    StatesError::runtime(format!(
                        "The SecondsPath parameter cannot be parsed as a long value: {} == {}",
                        path.text(),
                        value
                    ))
                })?;
                if seconds < 0 {
                    return Err(StatesError::runtime(format!(
                        "The SecondsPath parameter references a negative value: {} == {}",
                        path.text(),
                        seconds
                    )));
                }
                Ok(entered + self.scaled(seconds as u64))
            }
            WaitFor::TimestampPath(path) => {
                let value = select(path, input, ctx);
                let parsed = value
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(timestamp::parse);
                match parsed {
                    Some(ms) => Ok(from_timestamp(ms)),
                    None => Err(StatesError::runtime(format!(
                        "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {} == {}",
                        path.text(),
                        value.map(|v| match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        }).unwrap_or_else(|| "null".into())
                    ))),
                }
            }
        }
    }

    fn fail_field(
        &mut self,
        source: &Source,
        field: &str,
        raw: &Value,
        context: &Value,
    ) -> Result<Option<String>, StatesError> {
        let value = match source {
            Source::None => return Ok(None),
            Source::Literal(s) => return Ok(Some(s.clone())),
            Source::Path(path) => select(path, raw, context).ok_or_else(|| {
                StatesError::runtime(format!(
                    "The JSONPath '{}' specified for the field '{}' could not be found in the input '{}'",
                    path.text(),
                    field,
                    raw
                ))
            })?,
            Source::Intrinsic(f) => {
                let mut scope = Scope::new(raw, context, self.entropy);
                f.eval(&mut scope)?
            }
        };
        Ok(Some(match value {
            Value::String(s) => s,
            other => other.to_string(),
        }))
    }

    fn finish_state(
        &mut self,
        state: &State,
        entered_id: u64,
        output: Result<Value, StatesError>,
        next: Option<String>,
    ) {
        let output = match output {
            Ok(o) => o,
            Err(e) => return self.state_error(state, entered_id, e),
        };
        let text = output.to_string();
        if text.len() > MAX_PAYLOAD_BYTES {
            let cause = format!(
                "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                state.name
            );
            return self.fail(ErrorCause {
                error: Some(names::DATA_LIMIT_EXCEEDED.into()),
                cause: Some(cause),
            });
        }
        let prev = self.last();
        self.push(
            prev,
            EventDetails::StateExited {
                state_type: state.kind.event_prefix().into(),
                name: state.name.clone(),
                output: text.clone(),
            },
        );
        match next {
            Some(next) => {
                self.rt.current = Some(Current {
                    state: next,
                    input: output,
                    entered_event_id: None,
                    entered_time: self.now,
                    wait_until: None,
                    task: None,
                });
            }
            None => {
                let prev = self.last();
                self.push(
                    prev,
                    EventDetails::ExecutionSucceeded {
                        output: text.clone(),
                    },
                );
                self.rt.status = Status::Succeeded;
                self.rt.output = Some(text);
            }
        }
    }

    fn state_error(&mut self, state: &State, entered_id: u64, e: StatesError) {
        let cause = format!(
            "An error occurred while executing the state '{}' (entered at the event id #{}). {}",
            state.name, entered_id, e.cause
        );
        self.fail(ErrorCause {
            error: Some(e.error),
            cause: Some(cause),
        });
    }

    fn fail(&mut self, ec: ErrorCause) {
        self.rt.error = ec.error.clone();
        self.rt.cause = ec.cause.clone();
        let prev = self.last();
        self.push(prev, EventDetails::ExecutionFailed(ec));
        self.rt.status = Status::Failed;
    }
}

fn scaled(seconds: u64, scale: f64) -> i64 {
    (seconds as f64 * 1000.0 * scale) as i64
}

/// How the history names a task's resource.
fn task_ref(resource: &Resource) -> TaskRef {
    match resource {
        Resource::Activity { arn } => TaskRef {
            family: TaskFamily::Activity,
            resource: arn.clone(),
            resource_type: None,
        },
        Resource::Lambda { arn } => TaskRef {
            family: TaskFamily::LambdaFunction,
            resource: arn.clone(),
            resource_type: None,
        },
        Resource::Service {
            service, action, ..
        } => TaskRef {
            family: TaskFamily::Task,
            resource: action.clone(),
            resource_type: Some(service.clone()),
        },
    }
}

fn select(path: &crate::jsonpath::JsonPath, input: &Value, context: &Value) -> Option<Value> {
    match path.root() {
        crate::jsonpath::Root::Context => path.select(context),
        _ => path.select(input),
    }
}
