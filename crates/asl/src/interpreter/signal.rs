//! What drives an execution ([`Signal`]), what one [`advance`](super::advance) call returns
//! ([`Advance`], [`Touched`]), and how each signal is applied to the runtime.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::names;
use crate::error::ErrorCause;
use crate::history::{EventDetails, HistoryEvent};
use crate::task::Resource;

use super::{scaled, Current, Dispatch, Run, Status, TaskOutcome, TaskPhase, TaskRun};

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

/// What drives an execution forward.
#[derive(Debug, Clone)]
pub enum Signal {
    /// The execution was started (the runtime is fresh from
    /// [`Runtime::new`](super::Runtime::new)).
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

impl Signal {
    /// The task attempt a signal about a task's progress names (not its end).
    pub(super) fn task_id(&self) -> Option<u64> {
        match self {
            Signal::TaskStarted { task_id, .. }
            | Signal::TaskSubmitted { task_id, .. }
            | Signal::TaskHeartbeat { task_id }
            | Signal::MapRunStarted { task_id, .. } => Some(*task_id),
            _ => None,
        }
    }
}

/// The result of one [`advance`](super::advance) call.
#[derive(Debug, Default)]
pub struct Advance {
    pub events: Vec<HistoryEvent>,
    /// When to call again with [`Signal::Wake`] (epoch ms), if the execution is still running.
    pub wake_at: Option<i64>,
    /// The state budget ran out in this call: call again with [`Signal::Wake`] right away.
    pub yielded: bool,
    /// Tasks to perform after the transition is committed.
    pub dispatches: Vec<Dispatch>,
    /// A task signal named a task that is no longer current (its token is stale).
    pub stale: bool,
    /// The lanes this call may have changed.
    pub touched: Touched,
}

/// Which lanes (branches, iterations) an [`advance`](super::advance) call may have changed, so an
/// engine that stores each lane on its own writes only those. A lane is named by its path: lane
/// indexes from the top-level state down (`[3]`: lane 3 of the top-level Parallel or Map; `[3, 0]`:
/// lane 0 of the container in lane 3). A lane's own part is everything but the lanes of a container
/// inside it, which are lanes of their own.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Touched {
    /// Lanes whose own part may have changed.
    pub lanes: BTreeSet<Vec<usize>>,
    /// The paths of states whose container was created by this call ([] = the top-level
    /// state): every lane below them is new.
    pub containers: BTreeSet<Vec<usize>>,
}

impl<'a> Run<'a> {
    pub(super) fn handle(&mut self, signal: Signal) {
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
                        EventDetails::ExecutionAborted(ErrorCause {
                            error,
                            cause,
                            location: None,
                        }),
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
                    let id = self.push(task_id, EventDetails::TaskStarted { task, worker_name });
                    if let Some(run) = self.task_run(task_id) {
                        run.last_event = Some(id);
                    }
                }
            }
            Signal::TaskSubmitted { task_id, output } => {
                let Some(run) = self.task_run(task_id) else {
                    return;
                };
                if let Some(d) = run.dispatch.as_mut() {
                    d.submitted = Some(output.clone());
                }
                let last = run.last_event;
                if let Some(task) = self.current_task_ref() {
                    let prev = last.unwrap_or_else(|| self.last());
                    let output = output.to_string();
                    let id = self.push(prev, EventDetails::TaskSubmitted { task, output });
                    if let Some(run) = self.task_run(task_id) {
                        run.last_event = Some(id);
                    }
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
                if self.take_outcome(task_id, outcome) {
                    self.run();
                }
            }
        }
    }

    /// Gives the current task attempt `task_id` its outcome, to be taken when the execution
    /// runs next; whether it was current (else the signal is marked stale).
    pub(super) fn take_outcome(&mut self, task_id: u64, outcome: TaskOutcome) -> bool {
        let Some(run) = self.task_run(task_id) else {
            return false;
        };
        if matches!(run.phase, TaskPhase::Retrying { .. }) || run.outcome.is_some() {
            self.out.stale = true;
            return false;
        }
        run.outcome = Some(outcome);
        true
    }

    /// The current task attempt, if `task_id` names it; otherwise marks the signal stale.
    pub(super) fn task_run(&mut self, task_id: u64) -> Option<&mut TaskRun> {
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
}
