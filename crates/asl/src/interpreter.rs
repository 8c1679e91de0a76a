//! The pure interpreter: runtime state + one signal → new runtime state + history events.
//!
//! Architecture invariant: [`advance`] does no IO and reads no clock; `now` and entropy are
//! arguments. The engine persists the returned events together with the new [`Runtime`] in
//! one atomic write, and calls again when the returned `wake_at` time has come.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::choice::{self, Condition};
use crate::definition::{
    ContextUse, Definition, Machine, MapState, Payload, QueryLanguage, Source, State, StateKind,
    TaskState, WaitFor,
};
use crate::error::{names, StatesError};
use crate::history::{ErrorCause, EventDetails, HistoryEvent, TaskFamily, TaskRef};
use crate::io::{self, ResultPathField};
use crate::jsonata::{self, Env, States};
use crate::task::{error_matches, Catcher, Resource, Seconds};
use crate::template::{Scope, Template};
use crate::{timestamp, Entropy};

mod map_run;
pub mod test_state;

pub use map_run::{exceeded_tolerance, tolerance_exceeded, MapRunSpec, S3Call};

/// AWS's payload limit for inputs, outputs and results: 256 KiB of UTF-8.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// What identifies an execution to the states it runs (the `$$.Execution` and
/// `$$.StateMachine` parts of the context object).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
    /// The version the execution runs (started through a version or an alias ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_version_arn: Option<String>,
    /// The alias the execution was started through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine_alias_arn: Option<String>,
}

impl ExecutionInfo {
    /// Whether this is an Express execution (`arn:aws:states:R:A:express:…`).
    pub fn is_express(&self) -> bool {
        self.execution_arn.split(':').nth(5) == Some("express")
    }
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
    /// AWS quirk: after a Map iteration ends or a Map/Parallel succeeds, the next event
    /// names the event before that one as its previous event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<u64>,
    /// The workflow variables of the top-level scope.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
}

/// The state an execution is in, with the raw input it received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Current {
    pub state: String,
    pub input: Value,
    /// The id of its `…StateEntered` event; `None` until it has been entered.
    pub entered_event_id: Option<u64>,
    /// The `previousEventId` of that event.
    #[serde(default)]
    pub entered_after: u64,
    pub entered_time: i64,
    /// Set while a Wait state waits.
    pub wait_until: Option<i64>,
    /// Set while a Task state runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskRun>,
    /// Set while a Parallel or Map state runs: its branches or iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Box<Container>>,
    /// Retries used per retrier of a Parallel or Map state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_retries: Vec<u32>,
}

impl Current {
    fn new(state: String, input: Value, now: i64) -> Current {
        Current {
            state,
            input,
            entered_event_id: None,
            entered_after: 0,
            entered_time: now,
            wait_until: None,
            task: None,
            container: None,
            container_retries: Vec::new(),
        }
    }

    /// Prepares an unsuccessful state to run again (redrive): it is entered afresh, with a
    /// fresh retry budget; inside a Parallel or Map only unsuccessful lanes run again.
    fn reopen(&mut self, now: i64, rerun_all: bool, path: &mut Vec<usize>, touched: &mut Touched) {
        self.entered_event_id = None;
        self.entered_time = now;
        self.wait_until = None;
        // A Distributed Map's Map Run is redriven in place (unless everything re-runs); any
        // other task is scheduled afresh.
        self.task = self
            .task
            .take()
            .filter(|_| !rerun_all)
            .and_then(map_run::reopen);
        self.container_retries.clear();
        if rerun_all {
            self.container = None;
        }
        if let Some(c) = self.container.as_mut() {
            c.started = false;
            for (i, lane) in c.lanes.iter_mut().enumerate() {
                if lane.status == LaneStatus::Succeeded {
                    continue;
                }
                path.push(i);
                touched.lanes.insert(path.clone());
                match lane.current.as_mut() {
                    Some(cur) => {
                        lane.status = LaneStatus::Running;
                        cur.reopen(now, rerun_all, path, touched);
                    }
                    None => lane.status = LaneStatus::Pending,
                }
                path.pop();
            }
        }
    }

    /// Whether running the state now is certain to do nothing: a task attempt in flight with
    /// no outcome and no deadline due, or a wait (a Wait state, a container's retry delay)
    /// not yet due. The checks mirror [`Run::task`]; a state holding a container is never
    /// certain (a lane inside may have work).
    fn idle_at(&self, now: i64) -> bool {
        if self.wait_until.is_some_and(|until| until > now) {
            return true;
        }
        if self.container.is_some() {
            return false;
        }
        let Some(t) = &self.task else {
            return false;
        };
        let due = |at: Option<i64>| at.is_some_and(|at| at <= now);
        t.outcome.is_none()
            && match t.phase {
                TaskPhase::Retrying { until } => until > now,
                _ => !due(t.timeout_at) && !due(t.heartbeat_at),
            }
    }

    /// The tasks waiting for an outcome in this state and the lanes below it.
    fn pending_tasks<'c>(&'c self, out: &mut Vec<&'c TaskRun>) {
        if let Some(t) = &self.task {
            if t.outcome.is_none() && !matches!(t.phase, TaskPhase::Retrying { .. }) {
                out.push(t);
            }
        }
        for lane in self.running_lanes() {
            lane.pending_tasks(out);
        }
    }

    /// The earliest time anything in this state waits for.
    fn wake_at(&self) -> Option<i64> {
        let task = self.task.as_ref();
        let own = [
            self.wait_until,
            task.and_then(|t| t.timeout_at),
            task.and_then(|t| t.heartbeat_at),
            task.and_then(|t| match t.phase {
                TaskPhase::Retrying { until } => Some(until),
                _ => None,
            }),
        ];
        let lanes = self.running_lanes().map(Current::wake_at);
        own.into_iter().chain(lanes).flatten().min()
    }

    fn running_lanes(&self) -> impl Iterator<Item = &Current> {
        self.container
            .iter()
            .flat_map(|c| c.lanes.iter())
            .filter(|l| l.status == LaneStatus::Running)
            .filter_map(|l| l.current.as_ref())
    }

    /// The lane path to the state whose task attempt is `task_id`.
    fn find_task(&self, task_id: u64, path: &mut Vec<usize>) -> bool {
        if self.task.as_ref().is_some_and(|t| t.id == task_id) {
            return true;
        }
        let Some(c) = &self.container else {
            return false;
        };
        for (i, lane) in c.lanes.iter().enumerate() {
            let Some(cur) = lane
                .current
                .as_ref()
                .filter(|_| lane.status == LaneStatus::Running)
            else {
                continue;
            };
            path.push(i);
            if cur.find_task(task_id, path) {
                return true;
            }
            path.pop();
        }
        false
    }
}

/// The branches of a Parallel state or the iterations of a Map state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub lanes: Vec<Lane>,
    /// Whether `…StateStarted` was recorded for the current entry.
    pub started: bool,
    /// How many lanes may run at once (0: no limit), fixed when the state is entered.
    #[serde(default)]
    pub max_concurrency: u64,
    /// In a stored checkpoint whose lanes are kept apart (one row each, see [`Touched`]):
    /// how many there are. 0 while `lanes` holds them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub detached: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One branch or iteration: its input until it starts, where it is, and its result once it
/// succeeded (then nothing else).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lane {
    pub status: LaneStatus,
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Current>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The lane's own variables: a copy of the outer scope's when it started.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LaneStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Aborted,
}

/// The `ExecutionRedriven` event that re-opens a closed execution of `history_length`
/// events. It follows the close event, so the engine can record it from the execution's
/// record alone, before it parses the checkpoint.
pub fn redriven_event(history_length: u64, redrive_count: u32, now: i64) -> HistoryEvent {
    HistoryEvent {
        id: history_length + 1,
        previous_event_id: history_length,
        timestamp: now,
        details: EventDetails::ExecutionRedriven { redrive_count },
    }
}

impl Runtime {
    /// Task attempts the execution waits on that have no outcome yet (performed again after
    /// a restart, cancelled when the execution ends).
    pub fn pending_tasks(&self) -> Vec<&TaskRun> {
        let mut out = Vec::new();
        if let Some(c) = &self.current {
            c.pending_tasks(&mut out);
        }
        out
    }
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
    /// unsuccessful state. `redrive_count` includes this redrive. With `recorded`, its
    /// `ExecutionRedriven` event (made by [`redriven_event`]) is already in the history.
    Redrive { redrive_count: u32, recorded: bool },
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
    /// The task finished (a result, `SendTaskSuccess`/`Failure`, a child execution ended, a
    /// Map Run ended).
    TaskFinished { task_id: u64, outcome: TaskOutcome },
    /// A Distributed Map's Map Run started with `length` items, or was redriven for the
    /// `redrive_count`th time.
    MapRunStarted {
        task_id: u64,
        map_run_arn: String,
        length: u64,
        redrive_count: Option<u32>,
    },
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
    /// The lanes this call may have changed.
    pub touched: Touched,
}

/// Which lanes (branches, iterations) an [`advance`] call may have changed, so an engine that
/// stores each lane on its own writes only those. A lane is named by its path: lane indexes
/// from the top-level state down (`[3]`: lane 3 of the top-level Parallel or Map; `[3, 0]`:
/// lane 0 of the container in lane 3). A lane's own part is everything but the lanes of a
/// container inside it, which are lanes of their own.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Touched {
    /// Lanes whose own part may have changed.
    pub lanes: BTreeSet<Vec<usize>>,
    /// The paths of states whose container was created by this call ([] = the top-level
    /// state): every lane below them is new.
    pub containers: BTreeSet<Vec<usize>>,
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
    /// The history cap (AWS: 25,000 events): the event that would reach it fails the
    /// execution instead, so the last event is `ExecutionFailed` with `States.Runtime`.
    pub max_history_events: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            states_per_call: 256,
            wait_time_scale: 1.0,
            max_execution_millis: 365 * 24 * 3600 * 1000,
            max_history_events: 25_000,
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
            chain: None,
            variables: Map::new(),
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
        path: Vec::new(),
        budget: limits.states_per_call,
        vars: Map::new(),
        pending_assign: None,
        context_override: None,
        capped: false,
    };
    run.handle(signal);
    if run.capped {
        run.fail_at_cap();
    }
    run.out.wake_at = match run.rt.status {
        Status::Running if !run.out.yielded => {
            let nested = run.rt.current.as_ref().and_then(Current::wake_at);
            [nested, run.rt.deadline].into_iter().flatten().min()
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
    fn handle(&mut self, signal: Signal) {
        match signal {
            Signal::Start => {
                self.push(
                    0,
                    EventDetails::ExecutionStarted {
                        input: self.info.input_text.clone(),
                        role_arn: self.info.role_arn.clone(),
                        state_machine_alias_arn: self.info.state_machine_alias_arn.clone(),
                        state_machine_version_arn: self.info.state_machine_version_arn.clone(),
                    },
                );
                self.rt.deadline = self.deadline(self.info.start_time);
                let start = self.def.root.start_at.clone();
                self.rt.current = Some(Current::new(start, self.info.input.clone(), self.now));
                self.run();
            }
            Signal::Redrive {
                redrive_count,
                recorded,
            } => {
                if !matches!(
                    self.rt.status,
                    Status::Failed | Status::Aborted | Status::TimedOut
                ) {
                    self.out.stale = true;
                    return;
                }
                let event = redriven_event(self.rt.last_event_id, redrive_count, self.now);
                self.rt.last_event_id = event.id;
                self.rt.chain = None;
                if !recorded {
                    self.out.events.push(event);
                }
                self.rt.status = Status::Running;
                // The execution timeout restarts at the redrive.
                self.rt.deadline = self.deadline(self.now);
                // The unsuccessful state is entered again with the input it received, with a
                // fresh retry budget and fresh task timers.
                // States.DataLimitExceeded re-runs a Parallel or Map completely.
                let rerun_all = self.rt.error.as_deref() == Some(names::DATA_LIMIT_EXCEEDED);
                let now = self.now;
                if let Some(c) = self.rt.current.as_mut() {
                    c.reopen(now, rerun_all, &mut Vec::new(), &mut self.out.touched);
                }
                // Map Runs kept for redrive go back to the engine.
                let redriven = self.rt.pending_tasks().into_iter();
                let dispatches = redriven.filter_map(|t| t.dispatch.clone());
                self.out.dispatches.extend(dispatches);
                (self.rt.output, self.rt.error, self.rt.cause) = (None, None, None);
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
                run.heartbeat_at = run
                    .heartbeat_seconds
                    .map(|h| now.saturating_add(scaled(h, scale)));
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
            Signal::MapRunStarted {
                task_id,
                map_run_arn,
                length,
                redrive_count,
            } => {
                let Some(run) = self.task_run(task_id) else {
                    return;
                };
                if run.phase != TaskPhase::Scheduled {
                    return;
                }
                run.phase = TaskPhase::Started;
                // The state starts only now when an ItemReader reads its items; AWS then
                // records a length of 0 (the items are the Map Run's).
                let read = matches!(
                    &run.dispatch,
                    Some(Dispatch { resource: Resource::MapRun(spec), .. }) if spec.items.is_none()
                );
                if read || redrive_count.is_some() {
                    let prev = self.last();
                    let state_type = "Map".into();
                    let length = Some(if read { 0 } else { length });
                    self.push(prev, EventDetails::ContainerStarted { state_type, length });
                }
                let prev = self.last();
                let details = match redrive_count {
                    Some(redrive_count) => EventDetails::MapRunRedriven {
                        map_run_arn,
                        redrive_count,
                    },
                    None => EventDetails::MapRunStarted { map_run_arn },
                };
                self.push(prev, details);
            }
            Signal::TaskHeartbeat { task_id } => {
                let now = self.now;
                let scale = self.limits.wait_time_scale;
                let Some(run) = self.task_run(task_id) else {
                    return;
                };
                run.heartbeat_at = run
                    .heartbeat_seconds
                    .map(|h| now.saturating_add(scaled(h, scale)));
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
        let mut path = Vec::new();
        let running = self.rt.status == Status::Running;
        let found = running
            && self
                .rt
                .current
                .as_ref()
                .is_some_and(|c| c.find_task(task_id, &mut path));
        if !found {
            self.out.stale = true;
            return None;
        }
        self.path = path;
        self.cur_mut().and_then(|c| c.task.as_mut())
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

    fn current_task_ref(&self) -> Option<TaskRef> {
        let name = &self.cur()?.state;
        match &self.state_def(name)?.kind {
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
                    EventDetails::ExecutionTimedOut(ErrorCause {
                        error: Some(names::TIMEOUT.into()),
                        cause: Some("The execution has timed out.".into()),
                    }),
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
                return ScopeEnd::Failed(ErrorCause {
                    error: Some(names::RUNTIME.into()),
                    cause: Some(cause),
                });
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
                    return Err(StatesError::new("States.NoChoiceMatched", "No Matches!"));
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
                    return Err(StatesError::new("States.NoChoiceMatched", "No Matches!"));
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
            })),
            StateKind::Task(task) => self.task(state, task, raw, &context),
            StateKind::Parallel(_) | StateKind::Map(_) => self.container(state, raw, &context),
            StateKind::Unsupported(ty) => Err(StatesError::runtime(format!(
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
    ) -> Result<Value, StatesError> {
        let mut env = Env {
            states,
            variables: &self.vars,
            now: self.now,
            entropy: &mut *self.entropy,
        };
        let rendered = template.render(&mut env);
        rendered.map_err(|e| self.evaluation_failed(state, e))
    }

    /// How a JSONata state leaves: its `Assign` takes effect at the exit, and its output is
    /// `Output`, or `default` (the input, the result or the error output).
    fn jsonata_exit(
        &mut self,
        state: &State,
        assign: Option<&jsonata::Template>,
        output: Option<&jsonata::Template>,
        states: States,
        default: &Value,
    ) -> Result<Value, StatesError> {
        self.pending_assign = match assign {
            Some(t) => match self.render(state, t, states)? {
                Value::Object(map) => Some(map),
                _ => None,
            },
            None => None,
        };
        match output {
            Some(t) => self.render(state, t, states),
            None => Ok(default.clone()),
        }
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
    ) -> Result<i64, StatesError> {
        let value = self.render(state, template, states)?;
        let Some(n) = value.as_f64() else {
            let e = template.unexpected_type(field, "number", &value);
            return Err(self.evaluation_failed(state, e));
        };
        if n.fract() != 0.0 || n < min as f64 || n > max as f64 {
            let e = StatesError::query(
                format!("The {field} field must be an integer between {min} and {max}, but was: {value}"),
                Some(field.to_owned()),
            );
            return Err(self.evaluation_failed(state, e));
        }
        Ok(n as i64)
    }

    /// Records `EvaluationFailed` for a `States.QueryEvaluationError` raised in `state`.
    fn evaluation_failed(&mut self, state: &State, e: StatesError) -> StatesError {
        if e.error == names::QUERY_EVALUATION_ERROR {
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
                    error: e.error.clone(),
                    cause: cause.unwrap_or_default(),
                    location: e.location.clone(),
                },
            );
        }
        e
    }

    /// The output of a state that produced `result` (a task's, a Parallel's, a Map's): JSONata
    /// `Assign` and `Output`, or `ResultSelector`, `Assign`, `ResultPath` and `OutputPath`
    /// (`exit`: the state's `ResultSelector` and `ResultPath`). A JSONata evaluation error
    /// comes back as `Ok(Err(cause))`, for the state's Retry and Catch.
    fn exit_with_result(
        &mut self,
        state: &State,
        (result_selector, result_path): (Option<&Template>, &ResultPathField),
        raw: &Value,
        context: &Value,
        result: Value,
    ) -> Result<Result<Value, ErrorCause>, StatesError> {
        if state.query_language == QueryLanguage::Jsonata {
            let states = States {
                result: Some(&result),
                ..States::new(raw, context)
            };
            let assign = state.assign.as_ref().and_then(Payload::jsonata);
            let output = state.output.as_ref();
            return match self.jsonata_exit(state, assign, output, states, &result) {
                Ok(output) => Ok(Ok(output)),
                Err(e) => match self.query_error(state, e.clone()) {
                    Some(ec) => Ok(Err(ec)),
                    None => Err(e),
                },
            };
        }
        let selected = match result_selector {
            Some(t) => t.render(
                &mut Scope::new(&result, context, self.entropy).with_variables(&self.vars),
            )?,
            None => result,
        };
        let assign = state.assign.as_ref().and_then(Payload::path);
        self.assign(assign, &selected, context)?;
        let combined = io::result_path(result_path, raw.clone(), selected)?;
        Ok(Ok(self.apply_path(
            &state.output_path,
            &combined,
            context,
        )?))
    }

    /// A JSONata state's `States.QueryEvaluationError` as a `Retry`/`Catch` sees it.
    fn query_error(&self, state: &State, e: StatesError) -> Option<ErrorCause> {
        let catchable = state.query_language == QueryLanguage::Jsonata
            && e.error == names::QUERY_EVALUATION_ERROR;
        let entered = self
            .cur()
            .and_then(|c| c.entered_event_id)
            .unwrap_or_default();
        catchable.then(|| self.state_error(state, entered, e))
    }

    /// Where a caught error leads: the catcher's `Next`, with the error output placed by
    /// `ResultPath` (JSONPath) or shaped by `Output` (JSONata), and the catcher's `Assign`.
    fn caught(
        &mut self,
        state: &State,
        catcher: &Catcher,
        raw: &Value,
        ec: ErrorCause,
    ) -> Result<Outcome, StatesError> {
        let error_output = json!({
            "Error": ec.error.unwrap_or_default(),
            "Cause": ec.cause.unwrap_or_default(),
        });
        let context = self.context(state);
        let output = match state.query_language {
            QueryLanguage::JsonPath => {
                let assign = catcher.assign.as_ref().and_then(Payload::path);
                self.assign(assign, &error_output, &context)?;
                io::result_path(&catcher.result_path, raw.clone(), error_output)?
            }
            QueryLanguage::Jsonata => {
                let states = States {
                    error_output: Some(&error_output),
                    ..States::new(raw, &context)
                };
                let assign = catcher.assign.as_ref().and_then(Payload::jsonata);
                let output = catcher.output.as_ref();
                self.jsonata_exit(state, assign, output, states, &error_output)?
            }
        };
        Ok(Outcome::Branch(catcher.next.clone(), output))
    }

    /// Drives a Task state: schedules an attempt, waits, or processes what came back.
    fn task(
        &mut self,
        state: &State,
        spec: &TaskState,
        raw: &Value,
        context: &Value,
    ) -> Result<Outcome, StatesError> {
        let Some(mut run) = self.cur().and_then(|c| c.task.clone()) else {
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
                    let selector = spec.result_selector.as_ref();
                    let exit = (selector, &spec.result_path);
                    return match self.exit_with_result(state, exit, raw, context, result)? {
                        Ok(output) => Ok(Outcome::Exit(output)),
                        Err(ec) => self.task_error(state, spec, run, raw, ec),
                    };
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
            return self.task_error(state, spec, run, raw, ec);
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

    /// Drives a Parallel or Map state: builds its lanes on entry, runs every lane that may
    /// run, and exits once all succeeded. A failed lane aborts the others and fails the
    /// state, which then retries, is caught or fails its scope.
    fn container(
        &mut self,
        state: &State,
        raw: &Value,
        context: &Value,
    ) -> Result<Outcome, StatesError> {
        let (retry, catch, result_selector, result_path) = match &state.kind {
            StateKind::Parallel(p) => (&p.retry, &p.catch, &p.result_selector, &p.result_path),
            StateKind::Map(m) => (&m.retry, &m.catch, &m.result_selector, &m.result_path),
            _ => return Ok(Outcome::Blocked),
        };
        let is_map = matches!(state.kind, StateKind::Map(_));
        let state_type = state.kind.event_prefix().to_owned();
        if let Some(until) = self.cur().and_then(|c| c.wait_until) {
            if until > self.now {
                return Ok(Outcome::Blocked);
            }
            if let Some(c) = self.cur_mut() {
                c.wait_until = None;
            }
        }
        if let StateKind::Map(m) = &state.kind {
            if let Some(d) = &m.distributed {
                return self.map_run(state, m, d, raw, context);
            }
        }
        if self.cur().is_some_and(|c| c.container.is_none()) {
            let max_concurrency = self.max_concurrency(state, raw, context)?;
            let lanes = match self.lanes(state, raw, context) {
                Ok(lanes) => lanes,
                Err(e) => {
                    let prev = self.last();
                    self.push(prev, EventDetails::ContainerFailed { state_type });
                    return Err(e);
                }
            };
            if let Some(c) = self.cur_mut() {
                c.container = Some(Box::new(Container {
                    lanes,
                    started: false,
                    max_concurrency,
                    detached: 0,
                }));
            }
            self.out.touched.containers.insert(self.path.clone());
        }
        let count = self.lanes_ref().len();
        if self
            .cur()
            .and_then(|c| c.container.as_ref())
            .is_some_and(|c| !c.started)
        {
            let prev = self.last();
            let length = is_map.then_some(count as u64);
            self.push(
                prev,
                EventDetails::ContainerStarted {
                    state_type: state_type.clone(),
                    length,
                },
            );
            if let Some(c) = self.cur_mut().and_then(|c| c.container.as_mut()) {
                c.started = true;
            }
        }
        let name = state.name.clone();
        let mut last_iteration_end = None;
        loop {
            let mut progressed = false;
            let mut running = self
                .lanes_ref()
                .iter()
                .filter(|l| l.status == LaneStatus::Running)
                .count() as u64;
            for i in 0..count {
                let pending = self.lanes_ref()[i].status == LaneStatus::Pending;
                let max_concurrency = self
                    .cur()
                    .and_then(|c| c.container.as_ref())
                    .map_or(0, |c| c.max_concurrency);
                if !pending || (max_concurrency > 0 && running >= max_concurrency) {
                    continue;
                }
                let start_at = match &state.kind {
                    StateKind::Parallel(p) => p.branches.get(i).map(|b| b.start_at.clone()),
                    StateKind::Map(m) => Some(m.processor.start_at.clone()),
                    _ => None,
                }
                .unwrap_or_default();
                if is_map {
                    let prev = self.last();
                    self.push(
                        prev,
                        EventDetails::MapIteration {
                            phase: "Started".into(),
                            name: name.clone(),
                            index: i as u64,
                        },
                    );
                }
                let now = self.now;
                let vars = self.vars.clone();
                if let Some(lane) = self.lane_mut(i) {
                    let input = std::mem::take(&mut lane.input);
                    lane.current = Some(Current::new(start_at, input, now));
                    lane.status = LaneStatus::Running;
                    lane.variables = vars;
                }
                running += 1;
            }
            let now = self.now;
            for i in 0..count {
                let lane = &self.lanes_ref()[i];
                // Lanes that wait are not visited: a Map of 10,000 iterations waiting on
                // tasks would otherwise look at all of them for each task that ends.
                let idle = lane.current.as_ref().is_some_and(|c| c.idle_at(now));
                if lane.status != LaneStatus::Running || idle {
                    continue;
                }
                // Taking the variables out and putting them back does not touch the lane: if
                // the lane's states change them, they change the lane too.
                let lane_vars = self
                    .lanes_mut()
                    .get_mut(i)
                    .map(|l| std::mem::take(&mut l.variables));
                let outer = std::mem::replace(&mut self.vars, lane_vars.unwrap_or_default());
                self.path.push(i);
                let end = self.run_scope();
                self.path.pop();
                let lane_vars = std::mem::replace(&mut self.vars, outer);
                if let Some(lane) = self.lanes_mut().get_mut(i) {
                    lane.variables = lane_vars;
                }
                match end {
                    ScopeEnd::Done(output) => {
                        progressed = true;
                        if let Some(lane) = self.lane_mut(i) {
                            // A lane that succeeded never runs again: only its output is kept.
                            lane.status = LaneStatus::Succeeded;
                            lane.output = Some(output);
                            lane.current = None;
                            lane.variables = Map::new();
                        }
                        if is_map {
                            let prev = self.last();
                            let details = EventDetails::MapIteration {
                                phase: "Succeeded".into(),
                                name: name.clone(),
                                index: i as u64,
                            };
                            last_iteration_end = Some(self.push(prev, details));
                            self.rt.chain = Some(prev);
                        }
                    }
                    ScopeEnd::Failed(ec) => {
                        self.lane_failed(i, is_map, &name);
                        return self.container_error(state, retry, catch, raw, ec);
                    }
                    ScopeEnd::TimedOut => return Ok(Outcome::TimedOut),
                    ScopeEnd::Blocked if self.out.yielded => return Ok(Outcome::Blocked),
                    ScopeEnd::Blocked => {}
                }
            }
            if self
                .lanes_ref()
                .iter()
                .all(|l| l.status == LaneStatus::Succeeded)
            {
                let outputs: Vec<Value> = self
                    .lanes_ref()
                    .iter()
                    .map(|l| l.output.clone().unwrap_or(Value::Null))
                    .collect();
                let prev = last_iteration_end.unwrap_or_else(|| self.last());
                self.push(prev, EventDetails::ContainerSucceeded { state_type });
                self.rt.chain = Some(prev);
                let result = Value::Array(outputs);
                let exit = (result_selector.as_ref(), result_path);
                return match self.exit_with_result(state, exit, raw, context, result)? {
                    Ok(output) => Ok(Outcome::Exit(output)),
                    Err(ec) => self.container_error(state, retry, catch, raw, ec),
                };
            }
            if !progressed {
                return Ok(Outcome::Blocked);
            }
        }
    }

    /// `MaxConcurrency`, or `MaxConcurrencyPath` read from the state input.
    fn max_concurrency(
        &mut self,
        state: &State,
        raw: &Value,
        context: &Value,
    ) -> Result<u64, StatesError> {
        let StateKind::Map(m) = &state.kind else {
            return Ok(0);
        };
        if let Some(t) = &m.max_concurrency_expr {
            let states = States::new(raw, context);
            let range = (0, i64::from(u32::MAX));
            return Ok(self.jsonata_integer(state, t, "MaxConcurrency", states, range)? as u64);
        }
        let Some(path) = &m.max_concurrency_path else {
            return Ok(m.max_concurrency);
        };
        let value = select(path, raw, context, &self.vars).unwrap_or(Value::Null);
        // A float is truncated and a string holding an integer is read as one (as AWS does);
        // anything else is refused, a negative number with its own message.
        let n = match &value {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n < 0 => Err(StatesError::runtime(format!(
                "Expected non-negative integer for MaxConcurrency, got '{n}' instead."
            ))),
            Some(n) => Ok(n as u64),
            None => Err(StatesError::runtime(format!(
                "The MaxConcurrencyPath field refers to value \"{}\" which is not a valid integer: {}",
                map_run::quoted_value(&value),
                path.text()
            ))),
        }
    }

    /// Marks lane `i` failed and aborts the lanes still running.
    fn lane_failed(&mut self, i: usize, is_map: bool, name: &str) {
        let mut aborted = Vec::new();
        for (j, lane) in self.lanes_mut().iter_mut().enumerate() {
            if j == i {
                lane.status = LaneStatus::Failed;
            } else if lane.status == LaneStatus::Running {
                lane.status = LaneStatus::Aborted;
                aborted.push(j);
            }
        }
        for j in aborted.iter().copied().chain([i]) {
            self.touch_lane(j);
        }
        if is_map {
            let prev = self.last();
            self.push(
                prev,
                EventDetails::MapIteration {
                    phase: "Failed".into(),
                    name: name.into(),
                    index: i as u64,
                },
            );
            self.rt.chain = Some(prev);
            for j in aborted {
                let prev = self.last();
                self.push(
                    prev,
                    EventDetails::MapIteration {
                        phase: "Aborted".into(),
                        name: name.into(),
                        index: j as u64,
                    },
                );
            }
        }
    }

    /// The lanes of a Parallel or Map state on entry: one per branch, or one per item.
    fn lanes(
        &mut self,
        state: &State,
        raw: &Value,
        context: &Value,
    ) -> Result<Vec<Lane>, StatesError> {
        let effective = self.apply_path(&state.input_path, raw, context)?;
        let pending = |input: Value| Lane {
            status: LaneStatus::Pending,
            input,
            current: None,
            output: None,
            variables: Map::new(),
        };
        match &state.kind {
            StateKind::Parallel(p) => {
                let input = match &p.parameters {
                    Some(Payload::Path(t)) => t.render(
                        &mut Scope::new(&effective, context, self.entropy)
                            .with_variables(&self.vars),
                    )?,
                    Some(Payload::Jsonata(t)) => {
                        self.render(state, t, States::new(raw, context))?
                    }
                    None => effective,
                };
                Ok(p.branches.iter().map(|_| pending(input.clone())).collect())
            }
            StateKind::Map(m) => {
                let items = self.map_items(state, m, raw, &effective, context)?;
                let mut lanes = Vec::with_capacity(items.len());
                // One copy of the context for all items: only `$$.Map` changes between them.
                let mut ctx = context.clone();
                for (index, item) in items.into_iter().enumerate() {
                    let input = match &m.item_selector {
                        Some(selector) => {
                            ctx["Map"] = json!({ "Item": { "Index": index, "Value": item } });
                            match selector {
                                Payload::Path(t) => t.render(
                                    &mut Scope::new(&effective, &ctx, self.entropy)
                                        .with_variables(&self.vars),
                                )?,
                                Payload::Jsonata(t) => {
                                    self.render(state, t, States::new(raw, &ctx))?
                                }
                            }
                        }
                        None => item,
                    };
                    lanes.push(pending(input));
                }
                Ok(lanes)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// A Map state's items: `ItemsPath` (JSONPath) or `Items` (JSONata; by default the
    /// input), which must be an array.
    fn map_items(
        &mut self,
        state: &State,
        m: &MapState,
        raw: &Value,
        effective: &Value,
        context: &Value,
    ) -> Result<Vec<Value>, StatesError> {
        let items = match (state.query_language, &m.items) {
            (QueryLanguage::JsonPath, _) => self.apply_path(&m.items_path, effective, context)?,
            (QueryLanguage::Jsonata, None) => effective.clone(),
            (QueryLanguage::Jsonata, Some(t)) => {
                match self.render(state, t, States::new(raw, context))? {
                    items @ Value::Array(_) => items,
                    other => {
                        let e = t.unexpected_type("Items", "array", &other);
                        return Err(self.evaluation_failed(state, e));
                    }
                }
            }
        };
        let Value::Array(items) = items else {
            let cause = format!("Map state input must be an array but was: {items}");
            return Err(match state.query_language {
                QueryLanguage::JsonPath => StatesError::runtime(cause),
                QueryLanguage::Jsonata => {
                    self.evaluation_failed(state, StatesError::query(cause, None))
                }
            });
        };
        Ok(items)
    }

    /// Retries the whole Parallel or Map state, catches its error, or fails its scope. The
    /// lanes are kept when the error ends the scope: redrive re-runs only the unsuccessful ones.
    fn container_error(
        &mut self,
        state: &State,
        retry: &[crate::task::Retrier],
        catch: &[Catcher],
        raw: &Value,
        ec: ErrorCause,
    ) -> Result<Outcome, StatesError> {
        let error = ec.error.clone().unwrap_or_default();
        if let Some(i) = retry
            .iter()
            .position(|r| error_matches(&r.error_equals, &error))
        {
            let r = &retry[i];
            let used = self
                .cur()
                .and_then(|c| c.container_retries.get(i).copied())
                .unwrap_or(0);
            if used < r.max_attempts {
                let mut delay = r.delay_seconds(used);
                if r.full_jitter {
                    delay *= self.entropy.next_f64();
                }
                let until = self
                    .now
                    .saturating_add((delay * 1000.0 * self.limits.wait_time_scale) as i64);
                if let Some(c) = self.cur_mut() {
                    c.container_retries
                        .resize(c.container_retries.len().max(i + 1), 0);
                    c.container_retries[i] += 1;
                    c.container = None;
                    c.wait_until = Some(until);
                }
                return Ok(Outcome::Again);
            }
        }
        // Not retried: the state fails (and is caught, or fails its scope).
        let prev = self.last();
        let state_type = state.kind.event_prefix().to_owned();
        self.push(prev, EventDetails::ContainerFailed { state_type });
        match catch
            .iter()
            .find(|c| error_matches(&c.error_equals, &error))
        {
            Some(c) => self.caught(state, c, raw, ec),
            None => Ok(Outcome::Fail(ec)),
        }
    }

    fn lanes_ref(&self) -> &[Lane] {
        self.cur()
            .and_then(|c| c.container.as_ref())
            .map_or(&[], |c| c.lanes.as_slice())
    }

    /// Lane `i` of the container being run, for a change: it is marked touched.
    fn lane_mut(&mut self, i: usize) -> Option<&mut Lane> {
        self.touch_lane(i);
        self.lanes_mut().get_mut(i)
    }

    fn touch_lane(&mut self, i: usize) {
        let mut path = self.path.clone();
        path.push(i);
        self.out.touched.lanes.insert(path);
    }

    /// The lanes of the container being run; a change to one must be marked
    /// ([`Run::touch_lane`]).
    fn lanes_mut(&mut self) -> &mut [Lane] {
        match self.cur_mut().and_then(|c| c.container.as_mut()) {
            Some(c) => c.lanes.as_mut_slice(),
            None => &mut [],
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
        let (input, timeout, heartbeat) = match self.task_input(state, spec, raw, context) {
            Ok(prepared) => prepared,
            Err(e) => {
                return match self.query_error(state, e.clone()) {
                    Some(ec) => self.task_error(state, spec, run, raw, ec),
                    None => Err(e),
                }
            }
        };
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
        run.timeout_at = timeout.map(|t| self.now.saturating_add(self.scaled(t)));
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
            run.heartbeat_at = heartbeat.map(|h| self.now.saturating_add(self.scaled(h)));
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

    /// What an attempt is given: its input (`Parameters` or `Arguments`) and its timeouts.
    fn task_input(
        &mut self,
        state: &State,
        spec: &TaskState,
        raw: &Value,
        context: &Value,
    ) -> Result<(Value, Option<u64>, Option<u64>), StatesError> {
        let effective = self.apply_path(&state.input_path, raw, context)?;
        let input = match &spec.parameters {
            Some(Payload::Path(t)) => t.render(
                &mut Scope::new(&effective, context, self.entropy).with_variables(&self.vars),
            )?,
            Some(Payload::Jsonata(t)) => self.render(state, t, States::new(raw, context))?,
            None => effective,
        };
        let timeout = self.seconds(state, &spec.timeout, "TimeoutSeconds", raw, context)?;
        let heartbeat = self.seconds(state, &spec.heartbeat, "HeartbeatSeconds", raw, context)?;
        Ok((input, timeout, heartbeat))
    }

    /// Retries, catches or fails after a task error.
    fn task_error(
        &mut self,
        state: &State,
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
                    until: self.now.saturating_add(delay_ms),
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
            Some(c) => self.caught(state, c, raw, ec),
            None => Ok(Outcome::Fail(ec)),
        }
    }

    fn set_task(&mut self, run: Option<TaskRun>) {
        if let Some(c) = self.cur_mut() {
            c.task = run;
        }
    }

    /// Resolves `TimeoutSeconds` or `HeartbeatSeconds` (`field`), or its `…Path` form.
    fn seconds(
        &mut self,
        state: &State,
        spec: &Option<Seconds>,
        field: &str,
        raw: &Value,
        context: &Value,
    ) -> Result<Option<u64>, StatesError> {
        match spec {
            None => Ok(None),
            Some(Seconds::Fixed(n)) => Ok(Some(*n)),
            Some(Seconds::Jsonata(t)) => {
                let states = States::new(raw, context);
                let n = self.jsonata_integer(state, t, field, states, (1, 99_999_999))?;
                Ok(Some(n as u64))
            }
            Some(Seconds::Path(p)) => match select(p, raw, context, &self.vars) {
                Some(v) if v.as_u64().is_some_and(|n| n > 0) => Ok(v.as_u64()),
                Some(v) => Err(StatesError::runtime(format!(
                    "The {field}Path field refers to value \"{v}\" which is not a valid positive integer."
                ))),
                None => Err(StatesError::runtime(format!(
                    "The JSONPath '{}' specified for the field '{field}Path' could not be found in the input '{raw}'",
                    p.text()
                ))),
            },
        }
    }

    fn wait_output(&mut self, state: &State, raw: &Value) -> Result<Value, StatesError> {
        let context = self.context(state);
        if state.query_language == QueryLanguage::Jsonata {
            let assign = state.assign.as_ref().and_then(Payload::jsonata);
            let states = States::new(raw, &context);
            return self.jsonata_exit(state, assign, state.output.as_ref(), states, raw);
        }
        let effective = self.apply_path(&state.input_path, raw, &context)?;
        let assign = state.assign.as_ref().and_then(Payload::path);
        self.assign(assign, &effective, &context)?;
        self.apply_path(&state.output_path, &effective, &context)
    }

    fn wait_until(
        &mut self,
        state: &State,
        wait: &WaitFor,
        input: &Value,
        ctx: &Value,
    ) -> Result<i64, StatesError> {
        let entered = self.cur().map(|c| c.entered_time).unwrap_or(self.now);
        let scale = self.limits.wait_time_scale;
        let from_timestamp = |ms: i64| {
            // Scaled relative to the state's entry, so `--wait-time-scale` shortens it too.
            entered.saturating_add((ms.saturating_sub(entered).max(0) as f64 * scale) as i64)
        };
        match wait {
            WaitFor::Seconds(s) => Ok(entered.saturating_add(self.scaled(*s))),
            WaitFor::Timestamp(ms) => Ok(from_timestamp(*ms)),
            WaitFor::SecondsJsonata(t) => {
                let states = States::new(input, ctx);
                let seconds = self.jsonata_integer(state, t, "Seconds", states, (0, 99_999_999))?;
                Ok(entered.saturating_add(self.scaled(seconds as u64)))
            }
            WaitFor::TimestampJsonata(t) => {
                let value = self.render(state, t, States::new(input, ctx))?;
                let Value::String(text) = &value else {
                    let e = t.unexpected_type("Timestamp", "string", &value);
                    return Err(self.evaluation_failed(state, e));
                };
                match timestamp::parse(text) {
                    Some(ms) => Ok(from_timestamp(ms)),
                    None => {
                        let e = StatesError::query(
                            format!("The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {text}"),
                            Some("Timestamp".into()),
                        );
                        Err(self.evaluation_failed(state, e))
                    }
                }
            }
            WaitFor::SecondsPath(path) => {
                let value = select(path, input, ctx, &self.vars).ok_or_else(|| {
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
                Ok(entered.saturating_add(self.scaled(seconds as u64)))
            }
            WaitFor::TimestampPath(path) => {
                let value = select(path, input, ctx, &self.vars);
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
        state: &State,
        source: &Source,
        field: &str,
        raw: &Value,
        context: &Value,
    ) -> Result<Option<String>, StatesError> {
        let value = match source {
            Source::None => return Ok(None),
            Source::Literal(s) => return Ok(Some(s.clone())),
            Source::Jsonata(t) => self.render(state, t, States::new(raw, context))?,
            Source::Path(path) => select(path, raw, context, &self.vars).ok_or_else(|| {
                StatesError::runtime(format!(
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

    /// Exits a state: its `…StateExited` event, then the next state, or the end of the
    /// scope (`None` when the scope goes on).
    fn finish_state(
        &mut self,
        state: &State,
        entered_id: u64,
        output: Result<Value, StatesError>,
        next: Option<String>,
    ) -> Option<ScopeEnd> {
        let output = match output {
            Ok(o) => o,
            Err(e) => return Some(ScopeEnd::Failed(self.state_error(state, entered_id, e))),
        };
        let assigned_too_deep = self.pending_assign.as_ref().is_some_and(|a| {
            a.values()
                .any(|v| crate::json::deeper_than(v, crate::json::MAX_DEPTH))
        });
        if assigned_too_deep || crate::json::deeper_than(&output, crate::json::MAX_DEPTH) {
            let cause = format!(
                "The state/task '{}' returned a result or assigned a variable nested more than {} levels deep.",
                state.name,
                crate::json::MAX_DEPTH
            );
            self.pending_assign = None;
            crate::json::dismantle(output);
            return Some(ScopeEnd::Failed(ErrorCause {
                error: Some(names::RUNTIME.into()),
                cause: Some(cause),
            }));
        }
        let text = output.to_string();
        if text.len() > MAX_PAYLOAD_BYTES {
            let cause = format!(
                "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                state.name
            );
            let error = Some(names::DATA_LIMIT_EXCEEDED.into());
            return Some(ScopeEnd::Failed(ErrorCause {
                error,
                cause: Some(cause),
            }));
        }
        let assigned = self.pending_assign.take().filter(|a| !a.is_empty());
        let assigned_variables = assigned.as_ref().map(|a| {
            a.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
                .collect()
        });
        let prev = self.last();
        self.push(
            prev,
            EventDetails::StateExited {
                state_type: state.kind.event_prefix().into(),
                name: state.name.clone(),
                output: text,
                assigned_variables,
            },
        );
        // Variables change only when the state exits: everything the state evaluated saw
        // the values it was entered with.
        self.vars.extend(assigned.unwrap_or_default());
        let now = self.now;
        match next {
            Some(next) => {
                if let Some(c) = self.cur_mut() {
                    *c = Current::new(next, output, now);
                }
                None
            }
            None => Some(ScopeEnd::Done(output)),
        }
    }

    /// Applies `InputPath`, `OutputPath` or `ItemsPath` with the scope's variables readable.
    fn apply_path(
        &self,
        field: &io::PathField,
        value: &Value,
        context: &Value,
    ) -> Result<Value, StatesError> {
        io::select(field, value, context, Some(&self.vars))
    }

    /// Evaluates an `Assign` template against `value` (the state's result, or its input for
    /// Choice and Wait); the assignment takes effect when the state exits.
    fn assign(
        &mut self,
        assign: Option<&Template>,
        value: &Value,
        context: &Value,
    ) -> Result<(), StatesError> {
        self.pending_assign = match assign {
            Some(t) => match t
                .render(&mut Scope::new(value, context, self.entropy).with_variables(&self.vars))?
            {
                Value::Object(map) => Some(map),
                _ => None,
            },
            None => None,
        };
        Ok(())
    }

    /// A runtime error in a state, with AWS's prefix naming the state and its entry event.
    fn state_error(&self, state: &State, entered_id: u64, e: StatesError) -> ErrorCause {
        let cause = format!(
            "An error occurred while executing the state '{}' (entered at the event id #{}). {}",
            state.name, entered_id, e.cause
        );
        ErrorCause {
            error: Some(e.error),
            cause: Some(cause),
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
        self.fail(ErrorCause {
            error: Some(names::RUNTIME.into()),
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

/// Seconds as scaled milliseconds. Saturates (a float-to-int cast does), and every sum of a
/// time and a duration saturates too: a Wait of 2^62 seconds waits for good, it does not
/// wrap into the past.
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
        Resource::MapRun(_) => TaskRef {
            family: TaskFamily::Task,
            resource: "mapRun".into(),
            resource_type: Some("states".into()),
        },
    }
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
