//! The interpreter's runtime types: what an execution's checkpoint holds (the state it is in,
//! the lanes of its Parallel and Map states, its task attempts) and the limits it runs under.
//! They carry no serde: the engine stores them as its own twin types
//! (`engine::checkpoint::stored`), so they may change freely.

use serde_json::{Map, Value};

use crate::error::ErrorCause;
use crate::task::Resource;

use super::{map_run, Touched};

/// What identifies an execution to the states it runs (the `$$.Execution` and
/// `$$.StateMachine` parts of the context object).
#[derive(Debug, Clone, Default)]
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
    pub input_text: String,
    /// The version the execution runs (started through a version or an alias ARN).
    pub state_machine_version_arn: Option<String>,
    /// The alias the execution was started through.
    pub state_machine_alias_arn: Option<String>,
}

impl ExecutionInfo {
    /// Whether this is an Express execution (`arn:aws:states:R:A:express:…`).
    pub fn is_express(&self) -> bool {
        self.execution_arn.split(':').nth(5) == Some("express")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone)]
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
    pub chain: Option<u64>,
    /// The workflow variables of the top-level scope.
    pub variables: Map<String, Value>,
    /// A call ran out of its state budget with states left to run. A signal applied before
    /// the [`Signal::Wake`](super::Signal::Wake) that the yield asked for runs no states, so
    /// this stays set (and the call asks for no wake-up time) until a call runs them.
    pub yielded: bool,
}

/// The state an execution is in, with the raw input it received.
#[derive(Debug, Clone)]
pub struct Current {
    pub state: String,
    pub input: Value,
    /// The id of its `…StateEntered` event; `None` until it has been entered.
    pub entered_event_id: Option<u64>,
    /// The `previousEventId` of that event.
    pub entered_after: u64,
    pub entered_time: i64,
    /// Set while a Wait state waits.
    pub wait_until: Option<i64>,
    /// Set while a Task state runs.
    pub task: Option<TaskRun>,
    /// Set while a Parallel or Map state runs: its branches or iterations.
    pub container: Option<Box<Container>>,
    /// Retries used per retrier of a Parallel or Map state.
    pub container_retries: Vec<u32>,
    /// Inside a lane: the `…StateEntered` event ids of the states the lane has left, oldest
    /// first, so a redrive from one of them finds the input it had (at the top level the
    /// history is searched by name; in a lane it cannot tell lanes apart).
    pub left: Vec<u64>,
}

impl Current {
    pub(super) fn new(state: String, input: Value, now: i64) -> Current {
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
            left: Vec::new(),
        }
    }

    /// Prepares an unsuccessful state to run again (redrive): it is entered afresh, with a
    /// fresh retry budget; inside a Parallel or Map only unsuccessful lanes run again.
    pub(super) fn reopen(
        &mut self,
        now: i64,
        rerun_all: bool,
        path: &mut Vec<usize>,
        touched: &mut Touched,
    ) {
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

    /// Whether running the state now is certain to do nothing: a task attempt in flight with no
    /// outcome and no deadline due, or a wait (a Wait state, a container's retry delay) not yet
    /// due. The checks mirror [`Run::task`](super::Run::task); a state holding a container is never
    /// certain (a lane inside may have work).
    pub(super) fn idle_at(&self, now: i64) -> bool {
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
    pub(super) fn pending_tasks<'c>(&'c self, out: &mut Vec<&'c TaskRun>) {
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
    pub(super) fn wake_at(&self) -> Option<i64> {
        // A task waiting to retry waits for its retry time only: the deadlines of the attempt
        // that failed no longer count (a heartbeat deadline already past would wake the
        // execution again and again until the retry).
        let (retry, attempt) = match self.task.as_ref().map(|t| (t, &t.phase)) {
            Some((_, TaskPhase::Retrying { until })) => (Some(*until), None),
            Some((t, _)) => (None, Some(t)),
            None => (None, None),
        };
        let own = [
            self.wait_until,
            attempt.and_then(|t| t.timeout_at),
            attempt.and_then(|t| t.heartbeat_at),
            retry,
        ];
        let lanes = self.running_lanes().map(Current::wake_at);
        own.into_iter().chain(lanes).flatten().min()
    }

    pub(super) fn running_lanes(&self) -> impl Iterator<Item = &Current> {
        self.container
            .iter()
            .flat_map(|c| c.lanes.iter())
            .filter(|l| l.status == LaneStatus::Running)
            .filter_map(|l| l.current.as_ref())
    }

    /// The lane path to the state whose task attempt is `task_id`.
    pub(super) fn find_task(&self, task_id: u64, path: &mut Vec<usize>) -> bool {
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
#[derive(Debug, Clone)]
pub struct Container {
    pub lanes: Vec<Lane>,
    /// Whether `…StateStarted` was recorded for the current entry.
    pub started: bool,
    /// How many lanes may run at once (0: no limit), fixed when the state is entered.
    pub max_concurrency: u64,
}

/// One branch or iteration: its input until it starts, where it is, and its result once it
/// succeeded (then nothing else).
#[derive(Debug, Clone)]
pub struct Lane {
    pub status: LaneStatus,
    pub input: Value,
    pub current: Option<Current>,
    pub output: Option<Value>,
    /// The lane's own variables: a copy of the outer scope's when it started.
    pub variables: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaneStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Aborted,
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
#[derive(Debug, Clone)]
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
    /// The id of the attempt's latest event (`…Scheduled`, `…Started`, `…Submitted`): the
    /// `previousEventId` of its next one, so that a task's events chain within its lane
    /// while other lanes' events interleave (`None` in checkpoints written before).
    pub last_event: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskPhase {
    Scheduled,
    Started,
    /// Waiting to retry.
    Retrying {
        until: i64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    Succeeded(Value),
    Failed(ErrorCause),
    TimedOut(ErrorCause),
}

/// A task the engine must perform once the transition is committed.
#[derive(Debug, Clone, PartialEq)]
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
    /// What a `.sync` job answered when it was submitted (`TaskSubmitted`): after a restart
    /// the engine follows that job again rather than starting another.
    pub submitted: Option<Value>,
    /// The role the Task's `Credentials` name (rendered): its calls assume it.
    pub role_arn: Option<String>,
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
    /// The secret task tokens are sealed with (`crate::task_token`).
    pub token_key: crate::task_token::TokenKey,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            states_per_call: 256,
            wait_time_scale: 1.0,
            max_execution_millis: 365 * 24 * 3600 * 1000,
            max_history_events: 25_000,
            token_key: Default::default(),
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
            yielded: false,
        }
    }
}

impl Default for Runtime {
    fn default() -> Runtime {
        Runtime::new()
    }
}
