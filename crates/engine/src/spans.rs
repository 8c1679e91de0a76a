//! OpenTelemetry spans of executions, made from the history events of each committed
//! transition (as the metrics are): one span per run of an execution (from
//! `ExecutionStarted` or `ExecutionRedriven` to the event that closes it) and, as its
//! children, one span per state (from `…StateEntered` to `…StateExited`), timed by the
//! events' timestamps.
//!
//! Off unless the binary hands the engine a [`Tracer`] (`--otlp-endpoint`); off, the runner
//! holds no [`ExecutionSpans`] and nothing here runs.
//!
//! A run's span has as parent the OpenTelemetry context current where the run began: the
//! API's request span for StartExecution (see `Runner::on_engine`). A state's exit does not
//! name its entry, so an exit closes the earliest open entry of the same state name: exact
//! for states one after the other, approximate in duration when several Map iterations are
//! in the same state at once. States still open when the run closes (the failed state, and
//! the Parallel or Map around it) end with it, as errors when the run did not succeed.
//! The spans live in memory: a run resumed after a restart gets a new span from its start
//! date, without the states entered before the restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use asl::error::ErrorCause;
use asl::history::{EventDetails, HistoryEvent};
use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use store::ExecutionRecord;

/// Where the engine's spans go: the binary's tracer (the OpenTelemetry SDK's, exporting
/// over OTLP).
#[derive(Clone)]
pub struct Tracer(Arc<BoxedTracer>);

impl Tracer {
    pub fn new(tracer: BoxedTracer) -> Tracer {
        Tracer(Arc::new(tracer))
    }

    /// The tracer itself, for the API's request spans.
    pub fn otel(&self) -> &BoxedTracer {
        &self.0
    }
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tracer")
    }
}

/// Attribute names.
pub mod attribute {
    pub const EXECUTION_ARN: &str = "stepwise.execution.arn";
    pub const STATE_MACHINE_ARN: &str = "stepwise.state_machine.arn";
    pub const STATUS: &str = "stepwise.execution.status";
    pub const REDRIVE_COUNT: &str = "stepwise.execution.redrive_count";
    pub const STATE_NAME: &str = "stepwise.state.name";
    pub const STATE_TYPE: &str = "stepwise.state.type";
    /// The error of a failed run, or of the run a state was in when it ended.
    pub const ERROR: &str = "error.type";
}

/// The runs in progress on this node, by execution ARN.
pub(crate) struct ExecutionSpans {
    tracer: Tracer,
    runs: Mutex<HashMap<String, Run>>,
}

/// A run in progress: its span (in a context, the parent of its states' spans) and the
/// states entered and not yet exited.
struct Run {
    cx: Context,
    open: Vec<OpenState>,
}

struct OpenState {
    name: String,
    state_type: String,
    entered: i64,
}

/// How a run closed.
struct End<'a> {
    at: i64,
    status: &'a str,
    error: Option<&'a ErrorCause>,
}

impl ExecutionSpans {
    pub(crate) fn new(tracer: Tracer) -> ExecutionSpans {
        ExecutionSpans {
            tracer,
            runs: Mutex::new(HashMap::new()),
        }
    }

    /// Opens, closes and records the spans the committed `events` of `record` tell.
    pub(crate) fn observe(&self, record: &ExecutionRecord, events: &[HistoryEvent]) {
        let mut runs = crate::lock::lock(&self.runs);
        for e in events {
            let end = |status, error| End {
                at: e.timestamp,
                status,
                error,
            };
            match &e.details {
                EventDetails::ExecutionStarted { .. } | EventDetails::ExecutionRedriven { .. } => {
                    let run = self.begin(record, e.timestamp, &Context::current());
                    if let Some(stale) = runs.insert(record.arn.clone(), run) {
                        stale.cx.span().end_with_timestamp(time(e.timestamp));
                    }
                }
                EventDetails::StateEntered {
                    state_type, name, ..
                } => {
                    let run = self.run(&mut runs, record);
                    run.open.push(OpenState {
                        name: name.clone(),
                        state_type: state_type.clone(),
                        entered: e.timestamp,
                    });
                }
                EventDetails::StateExited { name, .. } => {
                    let run = self.run(&mut runs, record);
                    if let Some(i) = run.open.iter().position(|s| s.name == *name) {
                        let state = run.open.remove(i);
                        self.state_span(record, &run.cx, &state, e.timestamp, None);
                    }
                }
                EventDetails::ExecutionSucceeded { .. } => {
                    let run = runs.remove(&record.arn);
                    self.close(record, run, end("SUCCEEDED", None));
                }
                EventDetails::ExecutionFailed(error) => {
                    let run = runs.remove(&record.arn);
                    self.close(record, run, end("FAILED", Some(error)));
                }
                EventDetails::ExecutionAborted(error) => {
                    let run = runs.remove(&record.arn);
                    self.close(record, run, end("ABORTED", Some(error)));
                }
                EventDetails::ExecutionTimedOut(error) => {
                    let run = runs.remove(&record.arn);
                    self.close(record, run, end("TIMED_OUT", Some(error)));
                }
                _ => {}
            }
        }
    }

    /// Ends the spans of the runs still in progress (the engine is stopping): they are
    /// exported as they stand, marked as interrupted.
    pub(crate) fn interrupt(&self, now: i64) {
        let runs = std::mem::take(&mut *crate::lock::lock(&self.runs));
        for (_, run) in runs {
            let span = run.cx.span();
            span.set_attribute(KeyValue::new("stepwise.interrupted", true));
            span.end_with_timestamp(time(now));
        }
    }

    /// The run of `record`; one that began before this node started gets its span now.
    fn run<'a>(&self, runs: &'a mut HashMap<String, Run>, record: &ExecutionRecord) -> &'a mut Run {
        runs.entry(record.arn.clone()).or_insert_with(|| {
            let start = record.redrive_date.unwrap_or(record.start_date);
            self.begin(record, start, &Context::new())
        })
    }

    fn begin(&self, record: &ExecutionRecord, at: i64, parent: &Context) -> Run {
        let tracer = self.tracer.otel();
        let span = tracer
            .span_builder("Execution")
            .with_kind(SpanKind::Internal)
            .with_start_time(time(at))
            .with_attributes([
                KeyValue::new(attribute::EXECUTION_ARN, record.arn.clone()),
                KeyValue::new(
                    attribute::STATE_MACHINE_ARN,
                    record.state_machine_arn.clone(),
                ),
                KeyValue::new(attribute::REDRIVE_COUNT, i64::from(record.redrive_count)),
            ])
            .start_with_context(tracer, parent);
        Run {
            cx: Context::new().with_span(span),
            open: Vec::new(),
        }
    }

    /// Ends a run's span, and the spans of the states still open in it.
    fn close(&self, record: &ExecutionRecord, run: Option<Run>, end: End<'_>) {
        let Some(run) = run else { return };
        // A run stopped without an error name (StopExecution) is named by its status.
        let failure = end.error.map(|e| e.error.as_deref().unwrap_or(end.status));
        for state in &run.open {
            self.state_span(record, &run.cx, state, end.at, failure);
        }
        let span = run.cx.span();
        span.set_attribute(KeyValue::new(attribute::STATUS, end.status.to_owned()));
        if let Some(error) = failure {
            span.set_attribute(KeyValue::new(attribute::ERROR, error.to_owned()));
            let cause = end.error.and_then(|e| e.cause.clone()).unwrap_or_default();
            span.set_status(Status::error(cause));
        }
        span.end_with_timestamp(time(end.at));
    }

    /// Records a state's span, under its run's; `failure`: the run closed, with that error,
    /// while the state was open.
    fn state_span(
        &self,
        record: &ExecutionRecord,
        run: &Context,
        state: &OpenState,
        exited: i64,
        failure: Option<&str>,
    ) {
        let tracer = self.tracer.otel();
        let mut attributes = vec![
            KeyValue::new(attribute::STATE_NAME, state.name.clone()),
            KeyValue::new(attribute::STATE_TYPE, state.state_type.clone()),
            KeyValue::new(attribute::EXECUTION_ARN, record.arn.clone()),
        ];
        attributes.extend(failure.map(|e| KeyValue::new(attribute::ERROR, e.to_owned())));
        let mut span = tracer
            .span_builder(state.name.clone())
            .with_kind(SpanKind::Internal)
            .with_start_time(time(state.entered))
            .with_attributes(attributes)
            .start_with_context(tracer, run);
        if let Some(error) = failure {
            span.set_status(Status::error(error.to_owned()));
        }
        span.end_with_timestamp(time(exited));
    }
}

/// Epoch milliseconds as a point in time.
fn time(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}
