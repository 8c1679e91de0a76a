//! The Distributed Map in the interpreter: the state resolves its fields against its input
//! and hands a [`MapRunSpec`] to the engine, like a task. The engine runs the Map Run (child
//! executions, S3 reads and writes) and answers with [`Signal::MapRunStarted`] and then
//! [`Signal::TaskFinished`] carrying the array of results or the Map Run's error.
//!
//! Events: `MapStateStarted` and `MapRunStarted` when the Map Run starts; `MapRunSucceeded`
//! then `MapStateSucceeded`, or `MapRunFailed` then `MapStateFailed` (and Retry/Catch as for
//! any Map state: a retry starts a new Map Run).
//!
//! [`Signal::MapRunStarted`]: super::Signal::MapRunStarted
//! [`Signal::TaskFinished`]: super::Signal::TaskFinished

use crate::error::names;
use serde_json::{json, Map, Value};

use super::{select, Dispatch, Outcome, Run, TaskOutcome, TaskPhase, TaskRun};
use crate::definition::{Distributed, MapState, Payload, QueryLanguage, State, Threshold};
use crate::error::ErrorCause;
use crate::history::EventDetails;
use crate::jsonata::{self, Env, States};
use crate::task::Resource;
use crate::template::{Scope, Template};
use crate::Entropy;

/// Everything the engine needs to run a Map Run, resolved against the state input.
#[derive(Debug, Clone, PartialEq)]
pub struct MapRunSpec {
    pub label: Option<String>,
    /// The children are Express executions.
    pub express: bool,
    /// The item processor as a definition: what every child runs.
    pub definition: String,
    /// The items, when they come from the state input (`ItemsPath`).
    pub items: Option<Vec<Value>>,
    /// Where to read the items otherwise (`ItemReader`).
    pub reader: Option<S3Call>,
    /// `ItemSelector` (or `Parameters`) as written, with what it evaluates against.
    pub item_selector: Option<Value>,
    pub selector_input: Value,
    pub context: Value,
    pub variables: Map<String, Value>,
    /// `ItemBatcher` with its paths and `BatchInput` resolved.
    pub batcher: Option<Value>,
    /// `ResultWriter`.
    pub writer: Option<S3Call>,
    /// 0 = unlimited.
    pub max_concurrency: u64,
    pub tolerated_failure_count: Option<u64>,
    pub tolerated_failure_percentage: Option<f64>,
    /// How many times the parent redrove this Map Run: the engine redrives a stored Map Run
    /// that has been redriven fewer times.
    pub redrive: u32,
    /// The `ItemSelector` is JSONata, evaluated at `now` (epoch milliseconds).
    pub jsonata: bool,
    pub now: i64,
}

/// An `ItemReader` or `ResultWriter` call with its parameters evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Call {
    pub resource: String,
    pub arguments: Value,
    /// `ReaderConfig` (with `MaxItemsPath` resolved) or `WriterConfig`.
    pub config: Option<Value>,
}

impl MapRunSpec {
    /// The input of every child: `ItemSelector` applied to each item, with
    /// `$$.Map.Item.Index`/`Value` set.
    pub fn child_inputs(
        &self,
        items: Vec<Value>,
        entropy: &mut Entropy,
    ) -> Result<Vec<Value>, ErrorCause> {
        let Some(selector) = &self.item_selector else {
            return Ok(items);
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ctx = self.context.clone();
        if self.jsonata {
            let template = jsonata::Template::compile(selector, "ItemSelector", false)
                .map_err(|e| ErrorCause::runtime(e.message))?;
            for (index, item) in items.into_iter().enumerate() {
                ctx["Map"] = json!({ "Item": { "Index": index, "Value": item } });
                let mut env = Env {
                    states: States::new(&self.selector_input, &ctx),
                    variables: &self.variables,
                    now: self.now,
                    entropy: &mut *entropy,
                };
                out.push(template.render(&mut env)?);
            }
            return Ok(out);
        }
        let template = Template::compile(selector).map_err(ErrorCause::runtime)?;
        for (index, item) in items.into_iter().enumerate() {
            ctx["Map"] = json!({ "Item": { "Index": index, "Value": item } });
            let mut scope =
                Scope::new(&self.selector_input, &ctx, entropy).with_variables(&self.variables);
            out.push(template.render(&mut scope)?);
        }
        Ok(out)
    }
}

impl Run<'_> {
    /// Drives a Distributed Map state: dispatches its Map Run, then processes the outcome.
    pub(super) fn map_run(
        &mut self,
        state: &State,
        m: &MapState,
        d: &Distributed,
        raw: &Value,
        context: &Value,
    ) -> Result<Outcome, ErrorCause> {
        let Some(mut run) = self.cur().and_then(|c| c.task.clone()) else {
            let spec = self.map_run_spec(state, m, d, raw, context)?;
            // The last event is unique to this attempt: a retry follows a MapStateFailed.
            let id = self.rt.last_event_id;
            let dispatch = Dispatch {
                task_id: id,
                state: state.name.clone(),
                attempt: 0,
                token: crate::task_token::task_token(
                    &self.limits.token_key,
                    &self.info.execution_arn,
                    id,
                ),
                resource: Resource::MapRun(Box::new(spec)),
                input: Value::Null,
                timeout_seconds: None,
                heartbeat_seconds: None,
                submitted: None,
                role_arn: None,
            };
            self.out.dispatches.push(dispatch.clone());
            self.set_task(Some(TaskRun {
                id,
                phase: TaskPhase::Scheduled,
                retries: Vec::new(),
                retry_count: 0,
                timeout_at: None,
                heartbeat_seconds: None,
                heartbeat_at: None,
                dispatch: Some(dispatch),
                outcome: None,
                last_event: None,
            }));
            return Ok(Outcome::Blocked);
        };
        let Some(outcome) = run.outcome.take() else {
            return Ok(Outcome::Blocked);
        };
        let started = run.phase == TaskPhase::Started;
        self.set_task(None);
        let kept = run.clone();
        let ec = match outcome {
            TaskOutcome::Succeeded(result) => {
                let prev = self.last();
                let id = self.push(prev, EventDetails::MapRunSucceeded);
                let state_type = "Map".into();
                self.push(id, EventDetails::ContainerSucceeded { state_type });
                // MapStateExited follows the Map Run's start (`MapRunStarted`), not its end:
                // every recording since November 2024 shows it; the older ones (up to June
                // 2024) show MapRunSucceeded.
                self.rt.chain = Some(prev);
                return match self.exit_with_result(state, &m.handling, raw, context, result)? {
                    Ok(output) => Ok(Outcome::Exit(output)),
                    Err(ec) => self.container_error(state, &m.handling, raw, ec),
                };
            }
            TaskOutcome::Failed(ec) | TaskOutcome::TimedOut(ec) => ec,
        };
        if started {
            let prev = self.last();
            self.push(prev, EventDetails::MapRunFailed(ec.clone()));
        }
        // A Map Run that failed reading its items has none to redrive: a redrive of the
        // execution starts a new one, which reads them again (docs/redrive.md §6.7).
        let redrivable = started && !ec.is(names::ITEM_READER_FAILED);
        let outcome = self.container_error(state, &m.handling, raw, ec)?;
        if redrivable && matches!(outcome, Outcome::Fail(_)) {
            // Kept for a redrive of the execution, which redrives this Map Run.
            self.set_task(Some(kept));
        }
        Ok(outcome)
    }

    /// Resolves the state's fields against its input.
    fn map_run_spec(
        &mut self,
        state: &State,
        m: &MapState,
        d: &Distributed,
        raw: &Value,
        context: &Value,
    ) -> Result<MapRunSpec, ErrorCause> {
        let effective = self.apply_path(&state.input_path, raw, context)?;
        let items = match &d.item_reader {
            Some(_) => None,
            None => match self.map_items(state, m, raw, &effective, context) {
                Ok(items) => Some(items),
                Err(e) => {
                    let prev = self.last();
                    let state_type = "Map".into();
                    self.push(prev, EventDetails::ContainerFailed { state_type });
                    return Err(e);
                }
            },
        };
        // With the items in the input, the state starts before its other fields are read.
        if let Some(items) = &items {
            let prev = self.last();
            let length = Some(items.len() as u64);
            let state_type = "Map".into();
            self.push(prev, EventDetails::ContainerStarted { state_type, length });
        }
        let jsonata = state.query_language == QueryLanguage::Jsonata;
        let reader = match &d.item_reader {
            Some(r) => {
                let mut config = r.reader_config.clone();
                if jsonata {
                    config = self.render_config(state, config, "ReaderConfig", raw, context)?;
                }
                // A negative MaxItems is the reader's to refuse: AWS starts the Map Run and
                // fails it (`States.ItemReaderFailed`).
                self.resolve_paths(&mut config, &["MaxItems"], true, &effective, context)?;
                Some(S3Call {
                    resource: r.resource.clone(),
                    arguments: self.render_payload(
                        state,
                        r.parameters.as_ref(),
                        raw,
                        &effective,
                        context,
                    )?,
                    config,
                })
            }
            None => None,
        };
        let writer = match &d.result_writer {
            Some(w) => Some(S3Call {
                resource: w.resource.clone(),
                arguments: self.render_payload(
                    state,
                    w.parameters.as_ref(),
                    raw,
                    &effective,
                    context,
                )?,
                config: w.writer_config.clone(),
            }),
            None => None,
        };
        let mut batcher = d.item_batcher.clone();
        if jsonata {
            batcher = self.render_config(state, batcher, "ItemBatcher", raw, context)?;
        }
        let fields = ["MaxItemsPerBatch", "MaxInputBytesPerBatch"];
        self.resolve_paths(&mut batcher, &fields, false, &effective, context)?;
        if let Some(Value::Object(b)) = batcher.as_mut().filter(|_| !jsonata) {
            if let Some(input) = b.get("BatchInput") {
                let t = Template::compile(input).map_err(ErrorCause::runtime)?;
                let rendered =
                    self.render_payload(state, Some(&Payload::Path(t)), raw, &effective, context)?;
                b.insert("BatchInput".into(), rendered);
            }
        }
        let (count, percentage) = self.thresholds(state, d, &effective, context)?;
        Ok(MapRunSpec {
            label: d.label.clone(),
            express: d.express,
            definition: d.processor_definition.clone(),
            items,
            reader,
            item_selector: d.item_selector.clone(),
            selector_input: effective,
            context: context.clone(),
            variables: self.vars.clone(),
            batcher,
            writer,
            max_concurrency: self.max_concurrency(state, raw, context)?,
            tolerated_failure_count: count.map(|c| c as u64),
            tolerated_failure_percentage: percentage,
            redrive: 0,
            jsonata: state.query_language == QueryLanguage::Jsonata,
            now: self.now,
        })
    }

    /// Renders `Parameters` (against `input`, the effective input) or JSONata `Arguments`;
    /// none renders `{}`.
    fn render_payload(
        &mut self,
        state: &State,
        payload: Option<&Payload>,
        raw: &Value,
        input: &Value,
        context: &Value,
    ) -> Result<Value, ErrorCause> {
        match payload {
            Some(Payload::Path(t)) => {
                t.render(&mut Scope::new(input, context, self.entropy).with_variables(&self.vars))
            }
            Some(Payload::Jsonata(t)) => self.render(state, t, States::new(raw, context)),
            None => Ok(Value::Object(Map::new())),
        }
    }

    /// JSONata: `config` (`ItemReader.ReaderConfig`, `ItemBatcher`) with its `{% %}` strings
    /// evaluated.
    fn render_config(
        &mut self,
        state: &State,
        config: Option<Value>,
        field: &str,
        raw: &Value,
        context: &Value,
    ) -> Result<Option<Value>, ErrorCause> {
        let Some(value) = config else {
            return Ok(None);
        };
        let template = jsonata::Template::compile(&value, field, false)
            .map_err(|e| ErrorCause::new(e.code, e.message))?;
        self.render(state, &template, States::new(raw, context))
            .map(Some)
    }

    /// Replaces each `FieldPath` in `config` by `Field` with the value the path selects: a
    /// non-negative integer, or with `signed` any integer.
    fn resolve_paths(
        &self,
        config: &mut Option<Value>,
        fields: &[&str],
        signed: bool,
        input: &Value,
        context: &Value,
    ) -> Result<(), ErrorCause> {
        let Some(Value::Object(obj)) = config.as_mut() else {
            return Ok(());
        };
        for field in fields {
            let path_field = format!("{field}Path");
            let Some(Value::String(text)) = obj.remove(&path_field) else {
                continue;
            };
            let path = crate::jsonpath::JsonPath::parse(&text).map_err(|_| {
                ErrorCause::runtime(format!("Invalid JSONPath in {path_field}: {text}"))
            })?;
            let value = select(&path, input, context, &self.vars).unwrap_or(Value::Null);
            // AWS takes a string of digits too (`"2"`, say from a variable).
            let number = match &value {
                Value::String(digits) => digits.trim().parse::<i64>().ok(),
                other => other.as_i64(),
            };
            let Some(number) = number.filter(|n| signed || *n >= 0) else {
                return Err(ErrorCause::runtime(format!(
                    "The {path_field} field refers to value \"{}\" which is not a valid integer: {text}",
                    quoted_value(&value)
                )));
            };
            obj.insert((*field).into(), Value::from(number));
        }
        Ok(())
    }

    /// `ToleratedFailureCount` and `ToleratedFailurePercentage` for the state input `input`.
    pub(super) fn thresholds(
        &mut self,
        state: &State,
        d: &Distributed,
        input: &Value,
        context: &Value,
    ) -> Result<(Option<f64>, Option<f64>), ErrorCause> {
        let count = self.threshold(
            state,
            d.tolerated_failure_count.as_ref(),
            "ToleratedFailureCount",
            input,
            context,
        )?;
        let percentage = self.threshold(
            state,
            d.tolerated_failure_percentage.as_ref(),
            "ToleratedFailurePercentage",
            input,
            context,
        )?;
        Ok((count, percentage))
    }

    /// A tolerated failure count or percentage: a literal, read with `…Path` from the state
    /// input, or a JSONata expression. A number written as a string is accepted, as AWS does.
    pub(super) fn threshold(
        &mut self,
        state: &State,
        threshold: Option<&Threshold>,
        field: &str,
        input: &Value,
        context: &Value,
    ) -> Result<Option<f64>, ErrorCause> {
        let (value, source) = match threshold {
            None => return Ok(None),
            Some(Threshold::Fixed(n)) => return Ok(Some(*n)),
            Some(Threshold::Path(p)) => {
                let value = select(p, input, context, &self.vars).unwrap_or(Value::Null);
                (value, Ok(p))
            }
            Some(Threshold::Jsonata(t)) => {
                (self.render(state, t, States::new(input, context))?, Err(t))
            }
        };
        let value = match &value {
            Value::String(t) => serde_json::from_str::<Value>(t)
                .ok()
                .filter(Value::is_number)
                .unwrap_or(value),
            _ => value,
        };
        let integral = field == "ToleratedFailureCount";
        match (integral, value.as_i64(), value.as_f64()) {
            (true, Some(n), _) if n < 0 => {
                Err(ErrorCause::runtime(format!("{field} cannot be negative.")))
            }
            (true, Some(n), _) => Ok(Some(n as f64)),
            (false, _, Some(n)) if !(0.0..=100.0).contains(&n) => Err(ErrorCause::runtime(
                format!("{field} must be between 0 and 100."),
            )),
            (false, _, Some(n)) => Ok(Some(n)),
            _ => {
                let kind = if integral { "integer" } else { "float" };
                Err(match source {
                    Ok(p) => ErrorCause::runtime(format!(
                        "The {field}Path field refers to value \"{}\" which is not a valid {kind}: {}",
                        quoted_value(&value),
                        p.text()
                    )),
                    Err(t) => {
                        let e = t.unexpected_type(field, kind, &value);
                        self.evaluation_failed(state, e)
                    }
                })
            }
        }
    }
}

/// A value as AWS quotes it in a `…Path` runtime error: a string as it is, anything else as
/// JSON.
pub(super) fn quoted_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A Map Run task kept through a failure, made ready to be dispatched again for a redrive;
/// `None` for anything else (a task is scheduled afresh).
pub(super) fn reopen(mut run: TaskRun) -> Option<TaskRun> {
    let Some(Dispatch {
        resource: Resource::MapRun(spec),
        ..
    }) = run.dispatch.as_mut()
    else {
        return None;
    };
    if run.phase != TaskPhase::Started {
        return None;
    }
    spec.redrive += 1;
    run.phase = TaskPhase::Scheduled;
    run.outcome = None;
    Some(run)
}

/// The error a Map Run fails with when too many children failed.
/// Whether `failures` of `total` iterations exceed what a Map tolerates: any failure when it
/// sets no threshold, else more than the count or a larger share than the percentage.
pub fn tolerance_exceeded(
    failures: u64,
    total: u64,
    count: Option<u64>,
    percentage: Option<f64>,
) -> bool {
    if failures == 0 {
        return false;
    }
    let share = failures as f64 * 100.0 / total.max(1) as f64;
    match (count, percentage) {
        (None, None) => true,
        (count, pct) => count.is_some_and(|c| failures > c) || pct.is_some_and(|p| share > p),
    }
}

pub fn exceeded_tolerance() -> ErrorCause {
    ErrorCause::new(
        names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
        "The specified tolerated failure threshold was exceeded",
    )
}
