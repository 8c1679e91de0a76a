//! Metrics and the execution log, taken from the history events of each committed transition.
//!
//! The names are CloudWatch's for Step Functions (`ExecutionsStarted`, `ActivityRunTime`, ...),
//! labelled with CloudWatch's dimension names (`StateMachineArn`, `ActivityArn`,
//! `LambdaFunctionArn`, `ServiceIntegrationResourceArn`); times are in milliseconds, as
//! CloudWatch reports them. They go to the `metrics` facade: whoever installs a recorder (the
//! binary's Prometheus exporter) sees them, and without one they cost a lookup that finds
//! nothing. A transition whose events are only states (a Pass chain) touches no metric.

use std::collections::HashMap;
use std::sync::Mutex;

use asl::history::{EventDetails, HistoryEvent, TaskFamily, TaskRef};
use store::ExecutionRecord;

/// When each task attempt in flight was scheduled and started, by execution and by the id of
/// its latest event (`…Scheduled`, then `…Started`): the events that follow name it as their
/// `previousEventId`. Entries leave when the task ends or its execution does.
#[derive(Default)]
pub(crate) struct TaskTimes {
    open: Mutex<HashMap<String, HashMap<u64, Attempt>>>,
}

#[derive(Clone, Copy)]
struct Attempt {
    scheduled: i64,
    started: Option<i64>,
}

/// Which CloudWatch family a task belongs to, and its dimension.
struct TaskMetric {
    /// The stems of the metric names: `Activities` (`ActivitiesStarted`) and `Activity`
    /// (`ActivityRunTime`), ...
    plural: &'static str,
    singular: &'static str,
    label: &'static str,
    arn: String,
}

fn task_metric(task: &TaskRef) -> TaskMetric {
    match task.family {
        TaskFamily::Activity => TaskMetric {
            plural: "Activities",
            singular: "Activity",
            label: "ActivityArn",
            arn: task.resource.clone(),
        },
        TaskFamily::LambdaFunction => TaskMetric {
            plural: "LambdaFunctions",
            singular: "LambdaFunction",
            label: "LambdaFunctionArn",
            arn: task.resource.clone(),
        },
        TaskFamily::Task => TaskMetric {
            plural: "ServiceIntegrations",
            singular: "ServiceIntegration",
            label: "ServiceIntegrationResourceArn",
            arn: match &task.resource_type {
                Some(kind) => format!("arn:aws:states:::{kind}:{}", task.resource),
                None => task.resource.clone(),
            },
        },
    }
}

impl TaskMetric {
    fn count(&self, what: &str) {
        let name = format!("{}{what}", self.plural);
        metrics::counter!(name, self.label => self.arn.clone()).increment(1);
    }

    fn time(&self, what: &str, millis: i64) {
        let name = format!("{}{what}", self.singular);
        metrics::histogram!(name, self.label => self.arn.clone()).record(millis.max(0) as f64);
    }
}

/// A StartExecution or RedriveExecution refused with `ExecutionLimitExceeded`
/// (`--max-open-executions`): stepwise's `ExecutionThrottled`. AWS counts throttled state
/// transitions under that name; stepwise never throttles transitions, and this refusal is
/// the only place it holds an execution back.
pub(crate) fn execution_throttled(state_machine_arn: &str) {
    metrics::counter!("ExecutionThrottled", "StateMachineArn" => state_machine_arn.to_owned())
        .increment(1);
}

fn execution_count(name: &'static str, record: &ExecutionRecord) {
    let arn = record.state_machine_arn.clone();
    metrics::counter!(name, "StateMachineArn" => arn).increment(1);
}

/// An execution ended: `Executions{outcome}` (and `RedrivenExecutions{outcome}` for a
/// redriven one) and its `ExecutionTime`.
fn execution_end(outcome: &'static str, record: &ExecutionRecord, at: i64) {
    let arn = &record.state_machine_arn;
    metrics::counter!(format!("Executions{outcome}"), "StateMachineArn" => arn.clone())
        .increment(1);
    if record.redrive_count > 0 {
        metrics::counter!(format!("RedrivenExecutions{outcome}"), "StateMachineArn" => arn.clone())
            .increment(1);
    }
    let millis = (at - record.start_date).max(0) as f64;
    metrics::histogram!("ExecutionTime", "StateMachineArn" => arn.clone()).record(millis);
}

impl TaskTimes {
    /// Counts what the committed `events` of the execution `record` tell, and logs each of them
    /// at debug level.
    pub(crate) fn observe(&self, record: &ExecutionRecord, events: &[HistoryEvent]) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            for e in events {
                let state = match &e.details {
                    EventDetails::StateEntered { name, .. }
                    | EventDetails::StateExited { name, .. } => Some(name.as_str()),
                    _ => None,
                };
                tracing::debug!(
                    execution_arn = %record.arn,
                    event = %e.details.event_type(),
                    event_id = e.id,
                    state,
                    status = %record.status,
                    "execution event"
                );
            }
        }
        for e in events {
            match &e.details {
                EventDetails::ExecutionStarted { .. } => {
                    execution_count("ExecutionsStarted", record)
                }
                EventDetails::ExecutionRedriven { .. } => {
                    execution_count("ExecutionsRedriven", record)
                }
                EventDetails::ExecutionSucceeded { .. } => {
                    execution_end("Succeeded", record, e.timestamp)
                }
                EventDetails::ExecutionFailed(_) => execution_end("Failed", record, e.timestamp),
                EventDetails::ExecutionAborted(_) => execution_end("Aborted", record, e.timestamp),
                EventDetails::ExecutionTimedOut(_) => {
                    execution_end("TimedOut", record, e.timestamp)
                }
                EventDetails::TaskScheduled { task, .. } => {
                    task_metric(task).count("Scheduled");
                    self.with(&record.arn, |open| {
                        let attempt = Attempt {
                            scheduled: e.timestamp,
                            started: None,
                        };
                        open.insert(e.id, attempt);
                    });
                }
                EventDetails::TaskStarted { task, .. } => {
                    let m = task_metric(task);
                    m.count("Started");
                    self.with(&record.arn, |open| {
                        if let Some(mut a) = open.remove(&e.previous_event_id) {
                            m.time("ScheduleTime", e.timestamp - a.scheduled);
                            a.started = Some(e.timestamp);
                            open.insert(e.id, a);
                        }
                    });
                }
                EventDetails::TaskSucceeded { task, .. } => {
                    self.ended(record, e, task, "Succeeded")
                }
                EventDetails::TaskFailed { task, .. } => self.ended(record, e, task, "Failed"),
                EventDetails::TaskTimedOut { task, error } => {
                    let heartbeat = error.error.as_deref() == Some("States.HeartbeatTimeout");
                    let what = match (task.family, heartbeat) {
                        (TaskFamily::Activity, true) => "HeartbeatTimedOut",
                        _ => "TimedOut",
                    };
                    self.ended(record, e, task, what)
                }
                _ => {}
            }
        }
        if record.status.is_closed() {
            crate::lock::lock(&self.open).remove(&record.arn);
        }
    }

    /// A task attempt ended: its count, and its run time (from `…Started`) and total time
    /// (from `…Scheduled`).
    fn ended(&self, record: &ExecutionRecord, e: &HistoryEvent, task: &TaskRef, what: &str) {
        let m = task_metric(task);
        m.count(what);
        self.with(&record.arn, |open| {
            if let Some(a) = open.remove(&e.previous_event_id) {
                if let Some(started) = a.started {
                    m.time("RunTime", e.timestamp - started);
                }
                m.time("Time", e.timestamp - a.scheduled);
            }
        });
    }

    fn with(&self, arn: &str, f: impl FnOnce(&mut HashMap<u64, Attempt>)) {
        {
            let mut open = crate::lock::lock(&self.open);
            match open.get_mut(arn) {
                Some(attempts) => f(attempts),
                None => {
                    let mut attempts = HashMap::new();
                    f(&mut attempts);
                    if !attempts.is_empty() {
                        open.insert(arn.to_owned(), attempts);
                    }
                }
            }
        }
    }
}

/// The runner's state, for the health gauges.
#[derive(Debug, Clone, Copy, Default)]
pub struct Health {
    /// Executions the engine holds in memory (running, Standard and Express).
    pub open_executions: usize,
    /// Executions waiting on a timer (Wait, retry back-off, timeouts).
    pub parked_executions: usize,
    /// Executions queued for a worker.
    pub ready_queue: usize,
}
